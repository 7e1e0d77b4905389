"""CPU time of the practice what-if: each visit shape's alternatives priced once, or every visit's.

Usage: python benchmarks/bench_practice_whatif.py [--practice data/sample] [--repeat 3]

Reads the practice's history (from the practice cache when it holds it; the first run of a large
practice reads the export and its 835s), learns its chance of denial, then alternates
``practice_whatif`` + ``common_session`` as the scenarios page calls them, priced by visit shape
(the default) and priced visit by visit (the check's fallback), and prints the process CPU seconds
of each (median of the runs) with the number of visits and shapes. The two give the same tables,
which the script checks.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import pandas as pd

from analytics import kpis
from analytics.denials.learned import learned_risk
from analytics.refdata import load_reference
from analytics.scenarios import common_session, practice_whatif
from analytics.scenarios import practice as whatif_module
from analytics.scenarios.visit_shapes import combine, visit_shapes

REPO = Path(__file__).resolve().parents[1]


def _shapes(history) -> tuple[int, int]:
    """(visits, shapes of the alternatives) of the history's period."""
    ref = load_reference()
    lines, visits = whatif_module._visit_table(history, ref)
    billed = whatif_module._as_patients(whatif_module._billed_lines(lines))
    starts = whatif_module.visit_starts(lines)
    common = whatif_module.rule_inputs(billed, starts, history.payers, ref, leave_out=["modifiers"])
    shape = visit_shapes(starts, combine([common, lines["therapy_mod"]], len(common)),
                         [visits[c].to_numpy() for c in whatif_module.DOCUMENTATION_COLUMNS])
    return len(visits), int(shape.max()) + 1 if len(shape) else 0


def _run(history, risk, plain: bool):
    by_shape = whatif_module._alternatives_by_shape
    if plain:
        whatif_module._alternatives_by_shape = lambda *a, **k: None
    whatif_module._LAST_TABLE.clear()
    try:
        t = time.process_time()
        w = practice_whatif(history, risk)
        common_session(history)
        return time.process_time() - t, w
    finally:
        whatif_module._alternatives_by_shape = by_shape


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--practice", default=str(REPO / "data" / "sample"), help="practice folder")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each (at least 2)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    history = kpis.load_history(args.practice)
    risk = learned_risk(history, validate=False)
    times: dict[str, list[float]] = {"by shape": [], "visit by visit": []}
    tables = {}
    for _ in range(max(args.repeat, 2)):
        for name, plain in (("by shape", False), ("visit by visit", True)):
            seconds, w = _run(history, risk, plain)
            times[name].append(seconds)
            tables[name] = w
    a, b = tables["by shape"], tables["visit by visit"]
    pd.testing.assert_frame_equal(a.by_payer, b.by_payer)
    pd.testing.assert_frame_equal(a.by_alternative, b.by_alternative)
    visits, shapes = _shapes(history)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU, {platform.python_implementation()} "
          f"{platform.python_version()}, pandas {pd.__version__}; load average {load:.2f}; process CPU "
          f"seconds, median of {len(times['by shape'])} alternated runs; tables equal")
    print("| practice | lines | visits | shapes | priced by shape | visit by visit |")
    print("|---|---|---|---|---|---|")
    runs = {k: ", ".join(f"{s:.2f}" for s in v) for k, v in times.items()}
    print(f"| {Path(args.practice).name} | {len(history.period):,} | {visits:,} | {shapes:,} | "
          f"{statistics.median(times['by shape']):.2f} s ({runs['by shape']}) | "
          f"{statistics.median(times['visit by visit']):.2f} s ({runs['visit by visit']}) |")


if __name__ == "__main__":
    main()
