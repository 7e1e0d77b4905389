"""Cold and warm report runs: what the cache of the practice read (analytics.cache) saves.

Usage: python benchmarks/bench_cache.py [--data data/sample] [--repeat 3] [--reports all]

For each repeat: ``load_history`` cold (empty cache folder) and warm (the entry just written),
then ``report all`` cold (empty cache folder: one read, shared by the notebooks, which run in
parallel), warm (same inputs: every notebook reads the cache), and one report alone (cold),
the yardstick of the acceptance "cold no more than twice one report's time". Prints one
markdown table of medians with the machine and its load (the machine may be shared: the
load average is printed so noisy figures can be told apart).

The report runs are ``python -m analytics report`` commands, each a new process, as a user
or cron runs them: in one long-lived process the imports, papermill and the kernel preloader
(:mod:`analytics.kernels`) would be paid by the first run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from analytics.history import load_history

REPO = Path(__file__).resolve().parents[1]


def _timed(fn, *args, **kwargs) -> float:
    t = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t


def _report_command(names: str, data: Path, out: Path, cache: Path) -> None:
    """``python -m analytics report NAMES --data DATA --out OUT --cache-dir CACHE``."""
    subprocess.run([sys.executable, "-m", "analytics", "report", names, "--data", str(data), "--out", str(out),
                    "--cache-dir", str(cache)], check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO / "data" / "sample"), help="practice folder")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reports", default="all")
    ap.add_argument("--one", default="revenue", help="the single report timed alone")
    ap.add_argument("--skip-reports", action="store_true", help="time load_history only")
    args = ap.parse_args()
    data = Path(args.data)
    rows: dict[str, list[float]] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        for i in range(args.repeat):
            store = work / f"cache-{i}"
            rows.setdefault("load_history cold", []).append(_timed(load_history, data, cache_dir=store))
            rows.setdefault("load_history warm", []).append(_timed(load_history, data, cache_dir=store))
            if args.skip_reports:
                continue
            store = work / f"report-cache-{i}"
            for label, names, cache in ((f"report {args.reports} cold", args.reports, store),
                                        (f"report {args.reports} warm", args.reports, store),
                                        (f"report {args.one} alone cold", args.one, work / f"one-{i}")):
                out = work / f"out-{i}-{len(rows)}"
                seconds = _timed(_report_command, names, data, out, cache)
                rows.setdefault(label, []).append(seconds)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = len(load_history(data).base)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU, CPython {platform.python_version()}, "
          f"pandas {pd.__version__}; load average {os.getloadavg()[0]:.2f}; {data} ({lines:,} lines); "
          f"median of {args.repeat}")
    print("| step | median s | min s | max s |")
    print("|---|---|---|---|")
    for label, values in rows.items():
        print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")


if __name__ == "__main__":
    main()
