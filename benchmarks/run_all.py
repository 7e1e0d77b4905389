"""Run every ``benchmarks/bench_*.py`` with modest sizes and print their result lines.

``make bench`` calls this. Each script runs in its own process (so one's memory and imports
do not colour the next), with the arguments below when it has an entry, else with its own
defaults. ``--full`` runs every script with its own defaults (the sizes recorded in
benchmarks/RESULTS.md); ``--only NAME`` runs the scripts whose name contains NAME.

Run::

    .venv/bin/python benchmarks/run_all.py [--full] [--only scale] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: Arguments for a quick run of each known script (about a minute or less each).
MODEST = {
    "bench_scale.py": ["--sizes", "1e5", "--repeat", "3"],
    "bench_units_alternatives.py": ["--lines", "1e5", "--repeat", "3"],
    "bench_engine.py": ["--lines", "100000", "--repeat", "3"],
    "bench_denials.py": ["--lines", "100000", "--repeat", "3"],
    "bench_generate.py": ["--lines", "100000", "--repeat", "3"],
    "bench_remittance.py": ["--claims", "5000", "--runs", "3"],
    "bench_remittance_memory.py": ["--size-mb", "20"],
    "bench_reports.py": ["--skip-large"],
    "bench_scenarios.py": ["--repeat", "5", "--warmup", "1"],
    "bench_intake.py": ["--lines", "2000", "100000", "--repeat", "3"],
    "bench_guard.py": ["--patients", "100", "2000", "--runs", "1"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="run each script with its own default sizes")
    ap.add_argument("--only", help="run only the scripts whose file name contains this")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds allowed per script")
    args = ap.parse_args()
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not args.only or args.only in p.name)
    failed = []
    for script in scripts:
        extra = [] if args.full else MODEST.get(script.name, [])
        command = [sys.executable, str(script), *extra]
        shown = " ".join([Path(sys.executable).name, f"benchmarks/{script.name}", *extra])
        print(f"\n## {script.name}\n\n$ {shown}", flush=True)
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=HERE.parent, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"timed out after {args.timeout:.0f} s")
            failed.append(script.name)
            continue
        print(done.stdout.rstrip())
        if done.returncode != 0:
            print(f"exit code {done.returncode}:\n{done.stderr.strip()[-2000:]}")
            failed.append(script.name)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
