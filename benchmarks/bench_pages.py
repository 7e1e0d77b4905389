"""Each report page alone, its notebook executed in a kernel, with the practice already read.

Usage: python benchmarks/bench_pages.py [--data data/sample] [--repeat 3] [--pages revenue,denials,...]

The practice is read once into a temporary cache folder (``load_history``, not timed); then each
page is run alone with ``run_reports`` (one kernel), ``--repeat`` times, each time with the
executed notebooks of earlier runs removed from the cache folder, so the notebook really runs:
what is timed is the kernel's start, the notebook's imports, its reading of the cached practice,
its figures, tables and charts, and the page's export and privacy check. Prints one markdown
table of medians (wall seconds of the run, and the notebook's own seconds as the manifest gives
them) with the machine and its load average.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from analytics.history import load_history
from analytics.reports import REPORTS, run_reports

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO / "data" / "sample"), help="practice folder")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pages", default=",".join(REPORTS), help="comma-separated report names")
    args = ap.parse_args()
    data = Path(args.data)
    work = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    store = work / "cache"
    rows: list[tuple[str, float, float]] = []
    try:
        lines = len(load_history(data, cache_dir=store).base)
        for page in args.pages.split(","):
            walls, kernels = [], []
            for i in range(args.repeat):
                for kept in store.glob("page-*"):  # executed notebooks of earlier runs
                    shutil.rmtree(kept, ignore_errors=True)
                out = work / f"out-{page}-{i}"
                t = time.perf_counter()
                run = run_reports(page, data, out, cache_dir=store, workers=1, timeout=1800)
                walls.append(time.perf_counter() - t)
                report = run.reports[0]
                if report.status != "ok" or report.cached:
                    raise SystemExit(f"{page}: status {report.status}, cached {report.cached}: {report.error}")
                kernels.append(report.seconds)
                shutil.rmtree(out, ignore_errors=True)
            rows.append((page, statistics.median(walls), statistics.median(kernels)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU, CPython {platform.python_version()}, "
          f"pandas {pd.__version__}; load average {os.getloadavg()[0]:.2f}; {data} ({lines:,} lines); "
          f"median of {args.repeat}")
    print("| page | run, wall s | notebook, s |")
    print("|---|---:|---:|")
    for page, wall, kernel in rows:
        print(f"| {page} | {wall:.2f} | {kernel:.2f} |")


if __name__ == "__main__":
    main()
