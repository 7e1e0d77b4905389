"""Speed of the denial analysis: the denial-risk model, and the outcome of every 835 line.

``--stage model`` (the default): fit the denial-risk model on 1M lines and score 1M lines
(median of 3 runs). The lines come from the synthetic practice generator: insured lines with
the engine's disposition and the payer's outcome, as a practice's history would be after its
835s are linked. ``fit`` includes the held-out validation (a fit on 80% of patients, the
report, then the refit on all lines); ``fit (no holdout)`` is one fit.

``--stage outcomes``: :func:`analytics.denials.line_outcomes` (what the ``denials`` command
runs on every remittance of the practice) on exactly ``--lines`` remittance lines: a
generated practice written as real 835 files and read back (made once per size and kept
under ``--data-dir``), cut to its first ``--lines`` service lines with their claims,
adjustments and remarks. It times line_outcomes and the row-by-row implementation it had
before it was vectorised (kept in tests/test_denials.py as the specification), checks that
both give the same frame, and prints each one's first call in the process (a fresh
process: run one ``--implementation`` at a time to compare first calls) and the median of
``--repeat`` calls after it.

Run::

    .venv/bin/python benchmarks/bench_denials.py [--lines 1000000] [--repeat 3]
    .venv/bin/python benchmarks/bench_denials.py --stage outcomes --lines 1e6 --repeat 3

Prints markdown table rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import pickle
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import machine  # noqa: E402

from analytics.datasets import generate_practice, write_remittances  # noqa: E402
from analytics.denials import DenialRiskModel, line_outcomes  # noqa: E402
from analytics.remittance import Remittance, read_835_many  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "benchmarks" / "out" / "denials"
REMIT_LINES_PER_VISIT = 1.85  # adjudicated lines in the 835s per generated visit (about 1.9)
SEED = 2


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def count(text: str) -> int:
    return int(float(text))


def run_model(args) -> None:
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


def remittance(lines: int, data_dir: Path) -> Remittance:
    """The 835s of a generated practice with at least ``lines`` lines (made once, then reused)."""
    visits = max(1, math.ceil(lines / REMIT_LINES_PER_VISIT))
    out = data_dir / f"remittances_{visits}_visits_seed{SEED}"
    cached = out / "remittance.pickle"
    if cached.exists():
        with cached.open("rb") as f:
            return pickle.load(f)
    print(f"generating {visits:,} visits into {out} ...", file=sys.stderr, flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = write_remittances(generate_practice(visits, seed=SEED), out / "835")
        remit, errors = read_835_many(files)
    if not errors.empty:
        raise SystemExit(f"generated 835s did not read: {errors.head().to_dict('records')}")
    with cached.open("wb") as f:
        pickle.dump(remit, f, protocol=pickle.HIGHEST_PROTOCOL)
    return remit


def first_lines(remit: Remittance, n: int) -> Remittance:
    """The first ``n`` service lines with their claims, transactions, adjustments and remarks."""
    sl = remit.service_lines.iloc[:n]
    if len(sl) < n:
        raise SystemExit(f"only {len(sl):,} remittance lines generated; raise the visit count")
    claim = ["file", "claim_index"]
    kept_claims = pd.MultiIndex.from_frame(sl[claim])
    kept_lines = pd.MultiIndex.from_frame(
        sl[[*claim, "line_index"]].astype({"line_index": "Int64"})
    )

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        on_line = (frame["level"] == "line").to_numpy()
        by_line = pd.MultiIndex.from_frame(frame[[*claim, "line_index"]]).isin(kept_lines)
        by_claim = pd.MultiIndex.from_frame(frame[claim]).isin(kept_claims)
        return frame[np.where(on_line, by_line, by_claim)].reset_index(drop=True)

    claims = remit.claims[pd.MultiIndex.from_frame(remit.claims[claim]).isin(kept_claims)]
    st = pd.MultiIndex.from_frame(claims[["file", "st_index"]])
    payments = remit.payments[
        pd.MultiIndex.from_frame(remit.payments[["file", "st_index"]]).isin(st)
    ]
    return Remittance(
        payments=payments.reset_index(drop=True),
        claims=claims.reset_index(drop=True),
        service_lines=sl.reset_index(drop=True),
        adjustments=keep(remit.adjustments),
        remarks=keep(remit.remarks),
        plb=remit.plb.iloc[:0],
        balance=remit.balance.iloc[:0],
    )


def reference_implementation():
    """The row-by-row line_outcomes kept in tests/test_denials.py."""
    path = REPO / "tests" / "test_denials.py"
    spec = importlib.util.spec_from_file_location("_denials_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module._reference_line_outcomes, module._assert_same_outcomes


def run_outcomes(args) -> None:
    remit = first_lines(remittance(args.lines, args.data_dir), args.lines)
    n = len(remit.service_lines)
    print(machine())
    print(
        f"line_outcomes, {n:,} remittance lines, {len(remit.claims):,} claims, "
        f"{len(remit.adjustments):,} adjustments, {len(remit.remarks):,} remarks; first call, "
        f"then the median of {args.repeat}"
    )
    print("| implementation | lines | first call s | median s | runs s | lines/s |")
    print("|---|---:|---:|---:|---:|---:|")
    candidates = []
    if args.implementation in ("vectorised", "both"):
        candidates.append(("vectorised (line_outcomes)", line_outcomes))
    if args.implementation in ("reference", "both"):
        reference, same = reference_implementation()
        candidates.append(("row by row (reference)", reference))
    medians, results = {}, {}
    for label, fn in candidates:
        times = []
        for _ in range(1 + args.repeat):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                results[label] = fn(remit)
                times.append(time.perf_counter() - start)
        first, times = times[0], times[1:]
        medians[label] = statistics.median(times)
        runs = " / ".join(f"{t:.3f}" for t in times)
        print(
            f"| {label} | {n:,} | {first:.3f} | {medians[label]:.3f} | {runs} | "
            f"{n / medians[label]:,.0f} |",
            flush=True,
        )
    if len(candidates) == 2:
        (new_label, _), (old_label, _) = candidates
        same(results[new_label], results[old_label])
        counts = results[new_label]["outcome"].value_counts().to_dict()
        print(
            f"\nsame frame: yes ({len(results[new_label]):,} rows; {counts}); "
            f"speed-up of the median {medians[old_label] / medians[new_label]:.1f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=("model", "outcomes"), default="model")
    parser.add_argument("--lines", type=count, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--implementation",
        choices=("vectorised", "reference", "both"),
        default="both",
        help="outcomes: which line_outcomes to time (both: also check they give the same frame)",
    )
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    if args.stage == "outcomes":
        run_outcomes(args)
    else:
        run_model(args)


if __name__ == "__main__":
    main()
