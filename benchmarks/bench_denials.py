"""Speed of the denial-risk model: fit on 1M lines, score 1M lines (median of 3 runs).

Run: ``.venv/bin/python benchmarks/bench_denials.py [--lines 1000000] [--repeat 3]``.
The lines come from the synthetic practice generator: insured lines with the engine's
disposition and the payer's outcome, as a practice's history would be after its 835s are
linked. ``fit`` includes the held-out validation (a fit on 80% of patients, the report, then
the refit on all lines); ``fit (no holdout)`` is one fit. Prints markdown table rows.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from analytics.datasets import generate_practice
from analytics.denials import DenialRiskModel


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        practice = generate_practice(int(args.lines / 1.7), seed=2)
    a = practice.adjudicated
    insured = a[
        (a["payer_id"].astype(str) != "cash") & (a["disposition"].astype(str) != "not_billed")
    ]
    lines = insured.head(args.lines)
    if len(lines) < args.lines:
        raise SystemExit(f"only {len(lines):,} insured lines generated; raise the visit count")
    payers = practice.payers
    print(
        f"DenialRiskModel, {len(lines):,} lines ({int(lines['denied'].sum()):,} denied), median of {args.repeat}"
    )
    print("| step | lines | seconds | lines/s |")
    print("|---|---:|---:|---:|")
    for label, holdout in (("fit", 0.2), ("fit (no holdout)", 0.0)):
        seconds, model = timed(
            lambda h=holdout: DenialRiskModel(payers=payers, holdout=h).fit(lines, "denied"),
            args.repeat,
        )
        print(
            f"| {label} | {len(lines):,} | {seconds:.2f} | {len(lines) / seconds:,.0f} |",
            flush=True,
        )
    seconds, _ = timed(lambda: model.predict_proba(lines), args.repeat)
    print(
        f"| predict_proba | {len(lines):,} | {seconds:.2f} | {len(lines) / seconds:,.0f} |",
        flush=True,
    )
    v = (
        model.validation_
        if model.validation_ is not None
        else DenialRiskModel(payers=payers).fit(lines, "denied").validation_
    )
    print(
        f"\nheld-out: Brier {v.brier:.4f} (base {v.brier_base:.4f}), AUC {v.auc:.3f} on {v.lines:,} lines"
    )


if __name__ == "__main__":
    main()
