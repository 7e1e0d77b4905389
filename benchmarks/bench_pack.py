"""Benchmark: the client pack, ``report all --pack --pdf`` on the sample practice (target 45 s).

Each repeat runs the command in a fresh process into a fresh folder and times it from start
to exit (wall clock), as a consultant's terminal or cron would; it also reads back the page
counts of the pack and of each report's PDF. The median of the repeats is the figure. With
``--baseline`` each repeat also runs plain ``report all`` (no PDF, no pack) just before, so
that the cost of the printing and the pack shows on a machine whose load varies.

Run::

    .venv/bin/python benchmarks/bench_pack.py [--repeat 3] [--period 2025-Q4] [--baseline]

Prints the timings and a markdown line for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


def run_once(period: str | None, *, pack: bool = True) -> tuple[float, dict[str, int]]:
    from pypdf import PdfReader

    with tempfile.TemporaryDirectory(prefix="bench-pack-") as out:
        cmd = [sys.executable, "-m", "analytics", "report", "all", "--data", str(SAMPLE), "--out", out,
               *(["--pack", "--pdf"] if pack else []), *(["--period", period] if period else [])]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"report all --pack --pdf failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        folder = next(p for p in Path(out).iterdir() if p.is_dir())
        pages = {p.stem: len(PdfReader(str(p)).pages) for p in sorted(folder.glob("*.pdf"))}
    return seconds, pages


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--period", default=None, help="e.g. 2025-Q4 (default: the whole sample)")
    ap.add_argument("--baseline", action="store_true", help="also time plain report all before each run")
    args = ap.parse_args()
    times, plain, pages = [], [], {}
    for i in range(args.repeat):
        if args.baseline:
            plain.append(run_once(args.period, pack=False)[0])
        seconds, pages = run_once(args.period)
        times.append(seconds)
        print(f"run {i + 1}: {seconds:.1f} s" + (f" (plain report all {plain[-1]:.1f} s)" if plain else "")
              + f"; pages {pages}", flush=True)
    median = statistics.median(times)
    if plain:
        print(f"plain report all: median {statistics.median(plain):.1f} s; --pack --pdf adds "
              f"{median - statistics.median(plain):.1f} s")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"median {median:.1f} s (min {min(times):.1f}, max {max(times):.1f}) on {machine}")
    where = args.period or "the whole sample"
    print(f"| `report all --pack --pdf`, {where} | {median:.1f} s (median of {args.repeat}; "
          f"{min(times):.1f}-{max(times):.1f}) | pack {pages.get('pack', 0)} pages, scenarios "
          f"{pages.get('scenarios', 0)} | {machine} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
