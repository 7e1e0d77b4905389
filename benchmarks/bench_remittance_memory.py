"""Benchmark: peak memory of ``python -m analytics remit`` on a generated 835 of about 500 MB.

The file is one interchange with one transaction, a single check covering every claim (about
1.6 million claims for 500 MB), which is the hardest case for reading part by part. It is
written with the generator of ``bench_remittance.py`` to a temporary folder (not into the
repository), then the ``remit`` command reads it and writes its tables (Parquet and CSV) under
``/usr/bin/time -v``. Run::

    .venv/bin/python benchmarks/bench_remittance_memory.py [--size-mb 500] [--keep]

Needs GNU time (Debian: ``apt-get install -y time``). Prints the wall time, the maximum resident
set size and a markdown line for benchmarks/RESULTS.md. Target: peak RSS below 2 GB.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_remittance import build_835, write_835  # noqa: E402

TARGET_GB = 2.0
TIME = Path("/usr/bin/time")
REPO = Path(__file__).resolve().parents[1]


def _claims_for(size_mb: float) -> int:
    """Claims that make a file of about ``size_mb`` MB (measured on a sample of the generator)."""
    sample = 20_000
    per_claim = len(build_835(sample)) / sample
    return int(size_mb * 1e6 / per_claim)


def _gnu_time(stderr: str) -> tuple[float, int]:
    """Wall time (s) and maximum resident set size (KiB) from ``/usr/bin/time -v``."""
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", stderr).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds, rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=500.0, help="size of the generated 835")
    parser.add_argument("--keep", action="store_true", help="keep the file and the tables")
    args = parser.parse_args(argv)
    if not TIME.exists():
        print(f"{TIME} not found: install GNU time (Debian: apt-get install -y time).")
        return 2

    folder = Path(tempfile.mkdtemp(prefix="bench-835-memory-"))
    try:
        path = folder / "large.835"
        n_claims = _claims_for(args.size_mb)
        start = time.perf_counter()
        size = write_835(path, n_claims)
        print(f"wrote {path}: {n_claims:,} claims, {size / 1e6:,.1f} MB "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip

        out = folder / "tables"
        command = [str(TIME), "-v", sys.executable, "-m", "analytics", "remit", str(path),
                   "--out", str(out), "--json"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
        if result.returncode != 0:
            print(result.stdout[-2000:], result.stderr[-4000:])
            return 1
        wall, rss_kib = _gnu_time(result.stderr)
        summary = json.loads(result.stdout)["files"][0]
        claims = pq.ParquetFile(out / "remit_claims.parquet").metadata.num_rows
        assert summary["claims"] == claims == n_claims, (summary, claims, n_claims)
        assert summary["balanced"], summary
        written = sum(p.stat().st_size for p in out.iterdir())
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    rss_gb = rss_kib * 1024 / 1e9
    rate = size / 1e6 / wall
    print(
        f"remit: {claims:,} claims, {summary['service_lines']:,} service lines, balanced; "
        f"tables {written / 1e6:,.0f} MB (Parquet + CSV)"
    )
    print(f"wall {wall:.1f} s ({rate:.1f} MB/s), maximum resident set size {rss_gb:.2f} GB "
          f"(target < {TARGET_GB:g} GB)")  # fmt: skip
    status = "meets" if rss_gb < TARGET_GB else "ABOVE"
    print(
        f"| remit CLI, streamed | {n_claims:,} claims, {size / 1e6:,.0f} MB, one transaction | "
        f"wall {wall:.1f} s | max RSS {rss_gb:.2f} GB | {status} target < {TARGET_GB:g} GB | "
        f"Python {platform.python_version()} |"
    )
    if args.keep:
        print(f"kept {folder}")
    return 0 if rss_gb < TARGET_GB else 1


if __name__ == "__main__":
    sys.exit(main())
