"""Throughput of the synthetic practice generator (analytics.datasets.generate_practice).

Run: ``.venv/bin/python benchmarks/bench_generate.py [--lines 100000 1000000] [--repeat 3]``.
Prints one markdown table row per size: lines generated (adjudication by the rules engine
included, no files written), median seconds of ``--repeat`` runs, and lines per second.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings

from analytics.datasets import generate_practice

LINES_PER_VISIT = 2.12  # the generator's sessions average about 2.1 service lines per visit


def bench(lines: int, repeat: int, seed: int = 1) -> tuple[int, float]:
    visits = max(1, round(lines / LINES_PER_VISIT))
    times, made = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            practice = generate_practice(visits, seed)
        times.append(time.perf_counter() - start)
        made = len(practice.lines)
        del practice
    return made, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=float, nargs="+", default=[1e5, 1e6])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench(2_000, 1)  # warm up imports and caches
    print(
        f"generate_practice on {platform.processor() or platform.machine()}, median of {args.repeat}"
    )
    print("| target lines | lines | seconds | lines/s |")
    print("|---:|---:|---:|---:|")
    for target in args.lines:
        made, seconds = bench(int(target), args.repeat)
        print(f"| {int(target):,} | {made:,} | {seconds:.2f} | {made / seconds:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
