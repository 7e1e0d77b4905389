"""Benchmark: the run's spreadsheet ``tables.xlsx``, the former writer (openpyxl, cell by cell)
against the present one (SpreadsheetML written column-wise), on the same tables.

``--tables`` is either a run folder (``<report>/tables/*.csv``, as ``report all`` leaves it)
or a folder of saved tables by page (``<report>/*.csv``, as the ``tables/`` folder of a
published period); by default the sample's tables in ``tests/data/workbook_run``. Both
writers run in this process, one warm-up each, then in turn ``--repeat`` times (the former
``--before-repeat`` times: it is slow); the figures are the medians of wall and CPU seconds.
The former writer is the reference kept in ``tests/test_workbook_fast.py``. ``--check`` also
reads both workbooks back with openpyxl and compares every cell, format, font, width, pane and
filter (slow on large tables).

Run::

    .venv/bin/python benchmarks/bench_workbook.py [--tables DIR] [--repeat 5] [--before-repeat 3] [--check]

Prints the timings and a markdown line for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REPORTS = ["revenue", "denials", "denial_risk", "scenarios", "contracts", "pack", "portfolio"]


def reference_module():
    """``tests/test_workbook_fast.py``, which keeps the former writer as its reference."""
    spec = importlib.util.spec_from_file_location("workbook_reference", REPO / "tests" / "test_workbook_fast.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_folder(tables: Path, scratch: Path) -> Path:
    """A run folder over ``tables``: itself, or links ``<report>/tables -> tables/<report>``."""
    if any((tables / r / "tables").is_dir() for r in REPORTS):
        return tables
    for report in REPORTS:
        if (tables / report).is_dir():
            (scratch / report).mkdir(parents=True)
            (scratch / report / "tables").symlink_to((tables / report).resolve())
    return scratch


def timed(write, run: Path, out: Path) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    write(run, REPORTS, out)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=Path, default=REPO / "tests" / "data" / "workbook_run")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--before-repeat", type=int, default=3)
    ap.add_argument("--check", action="store_true", help="compare the two workbooks as openpyxl reads them")
    args = ap.parse_args()
    from analytics import workbook

    reference = reference_module()
    with tempfile.TemporaryDirectory(prefix="bench-workbook-") as scratch:
        scratch = Path(scratch)
        run = run_folder(args.tables, scratch / "run")
        csvs = sorted(run.glob("*/tables/*.csv"))
        megabytes = sum(p.stat().st_size for p in csvs) / 1e6
        rows = sum(len(workbook.read_table(p)) for p in csvs)
        before_out, after_out = scratch / "before.xlsx", scratch / "after.xlsx"
        timed(reference.reference_write_workbook, run, before_out)  # warm-up: imports, caches
        timed(workbook.write_workbook, run, after_out)
        before, after = [], []
        for i in range(max(args.repeat, args.before_repeat)):
            if i < args.before_repeat:
                before.append(timed(reference.reference_write_workbook, run, before_out))
            if i < args.repeat:
                after.append(timed(workbook.write_workbook, run, after_out))
            print(f"round {i + 1}: " + (f"before {before[-1][0]:.2f} s wall / {before[-1][1]:.2f} s CPU; "
                                        if i < args.before_repeat else "")
                  + (f"after {after[-1][0]:.2f} s wall / {after[-1][1]:.2f} s CPU" if i < args.repeat else ""),
                  flush=True)
        sizes = before_out.stat().st_size / 1e6, after_out.stat().st_size / 1e6
        if args.check:
            reference.assert_same_workbook(after_out, before_out)
            print("check: the two workbooks read back the same (cells, types, formats, fonts, widths, panes, filters)")

    def median(pairs, k):
        return statistics.median(p[k] for p in pairs)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, load {load:.1f}")
    print(f"{len(csvs)} tables, {rows:,} rows, {megabytes:.1f} MB of CSV; {machine}")
    print(f"before: median {median(before, 0):.2f} s wall / {median(before, 1):.2f} s CPU ({args.before_repeat} runs), "
          f"{sizes[0]:.1f} MB")
    print(f"after:  median {median(after, 0):.2f} s wall / {median(after, 1):.2f} s CPU ({args.repeat} runs), "
          f"{sizes[1]:.1f} MB")
    print(f"| {args.tables.name}: {len(csvs)} tables, {rows:,} rows, {megabytes:.1f} MB CSV | "
          f"{median(before, 0):.2f} / {median(before, 1):.2f} s | {median(after, 0):.2f} / {median(after, 1):.2f} s | "
          f"{median(before, 1) / median(after, 1):.0f}x | {sizes[0]:.1f} -> {sizes[1]:.1f} MB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
