"""Benchmark: the report pack, end to end.

1. ``report all`` on ``data/sample`` (wall time of the whole command, as ``make demo`` runs
   it; target 60 s).
2. Each report on a practice of about 1M service lines (target 120 s each): a practice is
   generated with the datasets generator (``generate_practice``), written as a real practice
   folder (charge export CSV, one 835 per payer per week, payers.yaml) under
   ``benchmarks/out/practice_<lines>/`` and reused by later runs. Each report is a separate
   run, so each pays for reading the export and the 835 files itself.

Run::

    .venv/bin/python benchmarks/bench_reports.py [--lines 1000000] [--skip-sample] [--skip-large] [--pdf]

Prints the timings and markdown lines for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
SAMPLE = REPO / "data" / "sample"
LINES_PER_VISIT = 2.07  # the generator's average; refined from the first practice written


def _machine() -> str:
    return f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"


def bench_sample(pdf: bool) -> float:
    """Wall time of ``python -m analytics report all`` on data/sample, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as out:
        cmd = [sys.executable, "-m", "analytics", "report", "all", "--data", str(SAMPLE), "--out", out]
        if pdf:
            cmd.append("--pdf")
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"report all failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    print(done.stdout.strip())
    return seconds


def large_practice(lines: int) -> Path:
    """A generated practice of about ``lines`` service lines, written once and reused."""
    from analytics.datasets import generate_practice, write_practice

    folder = OUT / f"practice_{lines}"
    if (folder / "service_lines.csv").exists() and (folder / "payers.yaml").exists():
        return folder
    visits = int(lines / LINES_PER_VISIT)
    t0 = time.perf_counter()
    practice = generate_practice(visits, seed=11)
    print(f"generated {len(practice.lines):,} lines ({visits:,} visits) in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    write_practice(practice, tmp, remittances=True)
    if not (tmp / "payers.yaml").exists():
        shutil.copyfile(SAMPLE / "payers.yaml", tmp / "payers.yaml")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    n835 = len(list((folder / "remittances").glob("*.835")))
    print(f"wrote the practice folder ({n835} 835 files) in {time.perf_counter() - t0:.0f} s")
    return folder


def bench_large(lines: int) -> dict[str, float]:
    from analytics import reports

    folder = large_practice(lines)
    n = sum(1 for _ in (folder / "service_lines.csv").open()) - 1
    print(f"practice: {folder} ({n:,} service lines)")
    times = {}
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as out:
        for name in reports.REPORTS:
            t0 = time.perf_counter()
            result = reports.run_reports(name, folder, out)
            times[name] = time.perf_counter() - t0
            r = result.reports[0]
            if r.status != "ok":
                raise SystemExit(f"{name} failed in {r.failed_cell}: {r.error}")
            print(f"  {name}: {times[name]:.1f} s (notebook {r.seconds:.1f} s)")
    times["lines"] = n
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--skip-sample", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--pdf", action="store_true", help="also print PDFs in the sample run")
    args = parser.parse_args()
    rows = []
    if not args.skip_sample:
        seconds = bench_sample(args.pdf)
        verdict = "ok" if seconds <= 60 else "over the 60 s target"
        print(f"report all on data/sample{' with PDFs' if args.pdf else ''}: {seconds:.1f} s ({verdict})")
        rows.append(f"| report all, data/sample{' + PDF' if args.pdf else ''} | {seconds:.1f} s | 60 s | "
                    f"{_machine()} |")
    if not args.skip_large:
        times = bench_large(args.lines)
        for name in ("revenue", "denials", "contracts", "scenarios"):
            verdict = "ok" if times[name] <= 120 else "over the 120 s target"
            print(f"{name} on {times['lines']:,} lines: {times[name]:.1f} s ({verdict})")
            rows.append(f"| report {name}, {times['lines']:,} lines | {times[name]:.1f} s | 120 s | {_machine()} |")
    print("\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
