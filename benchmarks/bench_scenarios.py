"""Latency of one coding-scenario comparison: one session, every alternative, six payers.

Usage: python benchmarks/bench_scenarios.py [--repeat 20] [--warmup 3] [--hot-pack] [--thread-time]
       [--learned-risk]

The target is 20 ms or less per comparison after warm-up (the explorer redraws on every
slider change; its whole redraw should stay under 300 ms). Prints one markdown table row with the
median (and the fastest and slowest) of the timed runs, plus the engine's share.
``--learned-risk`` adds the chance of denial learned from the sample practice's history, as the
explorer passes it (the history is read once, before the timed runs).
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

from analytics.payers import load_payers
from analytics.pipeline import evaluate
from analytics.refdata import load_reference
from analytics.scenarios import Session, alternatives, compare
from analytics.scenarios.compare import payer_policies as _policies
from analytics.scenarios.tables import scenario_lines as _scenario_lines

REPO = Path(__file__).resolve().parents[1]
TARGET_MS = 20.0


def _times(fn, repeat: int, warmup: int, clock=time.perf_counter) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = clock()
        fn()
        out.append((clock() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=20, help="timed runs (at least 5)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--hot-pack", action="store_true", help="add 97010 (doubles the alternatives)")
    ap.add_argument("--thread-time", action="store_true",
                    help="time the CPU of this thread, not the wall clock (steadier on a shared machine)")
    ap.add_argument("--learned-risk", action="store_true",
                    help="price with the risk learned from data/sample's history, as the explorer does")
    args = ap.parse_args()
    repeat = max(args.repeat, 5)
    warnings.simplefilter("ignore")
    payers = load_payers(REPO / "data" / "sample" / "payers.yaml")
    ref = load_reference()
    session = Session.from_minutes(
        {"97124": 30, "97140": 30},
        service_date="2026-06-01",
        distinct_regions=True,
        hot_pack=args.hot_pack,
        prescription_on_file=True,
        deductible_remaining=0,
    )
    risk = None
    if args.learned_risk:
        from analytics.denials.learned import learned_risk
        from analytics.kpis import load_history

        risk = learned_risk(load_history(REPO / "data" / "sample"), validate=False)
    result = compare(session, payers, reference=ref, risk=risk)
    n_alt, n_pay, n_lines = len(result.alternatives), len(result.payers), len(result.table)
    clock = time.thread_time if args.thread_time else time.perf_counter
    total = _times(lambda: compare(session, payers, reference=ref, risk=risk), repeat, args.warmup, clock)
    pol = _policies(payers, None, session)
    frame, _ = _scenario_lines(session, alternatives(session, reference=ref, payers=pol), pol, ref)
    # the engine as compare runs it: each synthetic visit named by its patient id
    engine = _times(lambda: evaluate(frame, pol, ref, visit_keys=("patient_id",), denial_model=risk),
                    repeat, args.warmup, clock)
    med = statistics.median(total)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU, {platform.python_implementation()} "
        f"{platform.python_version()}, pandas {pd.__version__}; load average {load:.2f}; "
        f"{'thread CPU time' if args.thread_time else 'wall clock'}; "
        f"median of {repeat} runs after {args.warmup} warm-up"
    )
    print(
        "| benchmark | alternatives x payers | lines | median ms | min ms | max ms | engine median ms | "
        f"target {TARGET_MS:.0f} ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| scenarios.compare (97124=30, 97140=30{', 97010' if args.hot_pack else ''}"
        f"{', learned risk' if risk is not None else ''}) | {n_alt} x {n_pay} | "
        f"{n_lines} | {med:.1f} | {min(total):.1f} | {max(total):.1f} | {statistics.median(engine):.1f} | "
        f"{'met' if med <= TARGET_MS else 'MISSED'} |"
    )


if __name__ == "__main__":
    main()
