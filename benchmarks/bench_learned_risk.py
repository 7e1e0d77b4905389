"""Speed of the learned denial risk and of the denial-risk page.

``--stage fit`` (the default): learn the risk from a practice history of ``--lines`` lines
(the synthetic practice generator's lines, in the shape :func:`analytics.denials.history_frame`
gives: features, the engine's disposition, the payer's answer) with the validation by time (a
fit on the earlier months, scored on the last ones, then the fit on every month), and score
every line with its chance of denial and its basis in words. Median of ``--repeat`` runs.

``--stage report``: ``python -m analytics report denial_risk --data data/sample`` as a user runs
it (a fresh process: reading the practice, the notebook kernel, the page), median of
``--repeat`` runs.

Run::

    .venv/bin/python benchmarks/bench_learned_risk.py --lines 1000000 --repeat 3
    .venv/bin/python benchmarks/bench_learned_risk.py --stage report --repeat 3

Prints markdown table rows.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import machine  # noqa: E402

from analytics.datasets import generate_practice  # noqa: E402
from analytics.denials.learned import fit_learned_risk  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEED = 31
LINES_PER_VISIT = 2.1


def history_like(lines: int) -> tuple[pd.DataFrame, dict]:
    """A generated practice's lines as a history frame (every line up to the as-of date)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        practice = generate_practice(int(lines / LINES_PER_VISIT) + 1, seed=SEED)
    a = practice.adjudicated.head(lines)
    cash = [p for p, pol in practice.payers.items() if pol.kind == "cash"]
    frame = a[["line_id", "claim_id", "patient_id", "service_date", "provider_id", "provider_type", "payer_id", "cpt",
               "minutes", "modifiers", "dx_codes", "prescription_on_file", "prior_auth", "visits_before",
               "submission_date", "units", "charge", "edit_reason"]].copy()
    frame["disposition"] = a["disposition"].astype(str).to_numpy()
    frame["self_pay"] = a["payer_id"].astype(str).isin(cash).to_numpy()
    frame["submitted"] = a["submitted"].to_numpy(dtype=bool)
    frame["adjudicated"] = a["adjudicated"].to_numpy(dtype=bool)
    frame["denied"] = a["denied"].to_numpy(dtype=bool) & frame["adjudicated"].to_numpy()
    frame["contract_expected"] = a["allowed"].to_numpy(dtype=float)
    frame["allowed"] = a["remit_allowed"].to_numpy(dtype=float)
    return frame, practice.payers


def run_fit(args) -> None:
    frame, payers = history_like(args.lines)
    print(f"learned risk, {len(frame):,} lines ({int(frame['adjudicated'].sum()):,} answered, "
          f"{int(frame['denied'].sum()):,} denied); median of {args.repeat}; {machine()}")
    print("| step | lines | seconds |")
    print("|---|---:|---:|")
    fits, scores = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        risk = fit_learned_risk(frame, payers)
        t1 = time.perf_counter()
        p = risk.predict_proba(frame)
        words = risk.basis_words(frame)
        t2 = time.perf_counter()
        fits.append(t1 - t0)
        scores.append(t2 - t1)
    assert len(p) == len(words) == len(frame) and np.isfinite(p).all()
    fit, score = statistics.median(fits), statistics.median(scores)
    print(f"| fit with validation by time | {len(frame):,} | {fit:.2f} |")
    print(f"| score (chance and basis) | {len(frame):,} | {score:.2f} |")
    print(f"| fit + score | {len(frame):,} | {fit + score:.2f} |")
    v = risk.validation
    if v is not None:
        s = v.scores.set_index("predictor")
        print(f"\nheld-out months {v.test_start.date()} to {v.test_end.date()}: Brier "
              + ", ".join(f"{k} {r.brier:.4f}" for k, r in s.iterrows()))


def run_report(args) -> None:
    times = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "analytics", "report", "denial_risk", "--data",
                                   str(REPO / "data" / "sample"), "--out", out], capture_output=True, text=True)
            times.append(time.perf_counter() - t0)
            pages = list(Path(out).rglob("denial_risk.html"))
            if not pages:
                raise SystemExit(f"no page written (exit {done.returncode}): {done.stderr[-2000:]}")
    print(f"| report denial_risk on data/sample | {statistics.median(times):.1f} s | min {min(times):.1f} | "
          f"max {max(times):.1f} | {machine()} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage", choices=("fit", "report"), default="fit")
    p.add_argument("--lines", type=lambda s: int(float(s)), default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    (run_fit if args.stage == "fit" else run_report)(args)


if __name__ == "__main__":
    main()
