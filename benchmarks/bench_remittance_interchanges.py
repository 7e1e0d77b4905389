"""Benchmark: ``read_835`` on one file of many interchanges, and on one large interchange.

Clearinghouses often deliver one file that concatenates thousands of interchanges (one ISA ..
IEA per payment); the reader must stay linear in their number. The many-interchange file
repeats 200 generated one-claim interchanges (``bench_remittance.build_835``, each with its own
seed, so with its own control numbers, amounts and codes) as often as needed; the large file is
one interchange of one transaction (``build_835``) of about 15 MB. Both balance at every level.
Run::

    .venv/bin/python benchmarks/bench_remittance_interchanges.py [--interchanges 20000]
        [--claims 48000] [--runs 5] [--scaling]

Prints the median wall time and CPU time of each read, the throughput from each, and markdown
lines for benchmarks/RESULTS.md. Targets: 15 MB/s for 20,000 interchanges, 20 MB/s for the
single 15 MB interchange. ``--scaling`` also times 5,000 and 10,000 interchanges, to show the
time grows with the size of the file, not with the square of its number of interchanges.

On a shared machine, compare CPU time with the code before a change read in turn: copy the
package first (``cp -r analytics /tmp/before/``), then ``--baseline /tmp/before`` reads each
file with that copy and with this checkout in alternate processes, ``--rounds`` times each
(``--runs`` reads after a warm-up read per process), and prints the CPU medians of both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_remittance import OUT, build_835  # noqa: E402

TARGET_MANY_MB_S = 15.0
TARGET_ONE_MB_S = 20.0


def build_many(n: int) -> str:
    """``n`` one-claim interchanges in one file (200 distinct ones, repeated)."""
    distinct = [build_835(1, seed=1000 + i) for i in range(min(n, 200))]
    return "".join(distinct[i % len(distinct)] for i in range(n))


def _time(path: Path, runs: int, claims: int) -> tuple[float, float, list[float]]:
    """Median wall and CPU seconds of ``read_835(path)``, after one warm-up read."""
    walls, cpus = _reads(path, runs, claims)
    return statistics.median(walls), statistics.median(cpus), walls


def _reads(path: Path, runs: int, claims: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``runs`` reads of ``path``, after one warm-up read; each read
    gives ``claims`` claims that balance, without a warning."""
    from analytics.remittance import read_835

    walls, cpus = [], []
    for i in range(runs + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the generated files read without a warning
            remit = read_835(path)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if i:
            walls.append(wall)
            cpus.append(cpu)
    assert len(remit.claims) == claims, (len(remit.claims), claims)
    assert bool(remit.balance["balanced"].all())
    return walls, cpus


def _child_cpus(package_root: Path, path: Path, runs: int, claims: int) -> list[float]:
    """CPU seconds of ``runs`` reads of ``path`` in a new process that imports the package
    from ``package_root``."""
    env = dict(os.environ, PYTHONPATH=str(package_root))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(path)]
    command += ["--runs", str(runs), "--claims", str(claims)]
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    found = json.loads(out.strip().splitlines()[-1])
    assert Path(found["package"]).resolve().is_relative_to(package_root.resolve()), found
    return found["cpu"]


def _compare(label: str, path: Path, baseline: Path, rounds: int, runs: int, claims: int) -> None:
    """CPU time of the code in ``baseline`` and of this checkout on ``path``, read in turn."""
    size = path.stat().st_size / 1e6
    before: list[float] = []
    after: list[float] = []
    for _ in range(rounds):
        before += _child_cpus(baseline, path, runs, claims)
        after += _child_cpus(HERE.parent, path, runs, claims)
    b, a = statistics.median(before), statistics.median(after)
    print(f"{label}: CPU before " + ", ".join(f"{t:.3f}" for t in before))
    print(f"{label}: CPU after  " + ", ".join(f"{t:.3f}" for t in after))
    print(
        f"| {label} | {size:.1f} MB | {b:.2f} / {min(before):.2f} s | {a:.2f} / {min(after):.2f} s "
        f"| {size / b:.1f} -> {size / a:.1f} MB/s | Python {platform.python_version()} |"
    )


def _report(label: str, path: Path, runs: int, claims: int, target: float) -> bool:
    size = path.stat().st_size / 1e6
    wall, cpu, walls = _time(path, runs, claims)
    status = "meets" if size / wall >= target else "BELOW"
    print(f"{label}: {size:.1f} MB; runs " + ", ".join(f"{w:.3f}s" for w in walls))
    print(
        f"| {label} | {size:.1f} MB | median of {runs}: wall {wall:.2f} s, CPU {cpu:.2f} s | "
        f"{size / wall:.1f} MB/s (CPU: {size / cpu:.1f} MB/s) | {status} target {target:g} MB/s "
        f"| Python {platform.python_version()} |"
    )
    return size / wall >= target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interchanges", type=int, default=20_000)
    parser.add_argument("--claims", type=int, default=48_000, help="claims of the large file")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scaling", action="store_true", help="also 5,000 and 10,000")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="folder holding a copy of the analytics package to compare with, read in turn",
    )
    parser.add_argument("--rounds", type=int, default=3, help="processes of each, with --baseline")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:  # one process of --baseline: its CPU times as JSON
        import analytics

        _, cpus = _reads(args.child, args.runs, args.claims)
        print(json.dumps({"package": analytics.__file__, "cpu": cpus}))
        return 0
    OUT.mkdir(exist_ok=True)

    ok = True
    counts = [5_000, 10_000, args.interchanges] if args.scaling else [args.interchanges]
    for n in counts:
        path = OUT / f"bench_835_{n}_interchanges.edi"
        path.write_text(build_many(n), encoding="ascii")
        if args.baseline is not None:
            _compare(f"{n:,} interchanges", path, args.baseline, args.rounds, args.runs, n)
            continue
        met = _report(f"{n:,} interchanges", path, args.runs, n, TARGET_MANY_MB_S)
        ok = ok and (met or n != args.interchanges)
    path = OUT / f"bench_835_one_interchange_{args.claims}.edi"
    path.write_text(build_835(args.claims), encoding="ascii")
    if args.baseline is not None:
        label = f"one interchange, {args.claims:,} claims"
        _compare(label, path, args.baseline, args.rounds, args.runs, args.claims)
        return 0
    ok = _report("one interchange", path, args.runs, args.claims, TARGET_ONE_MB_S) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
