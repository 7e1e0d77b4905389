"""Throughput of the rules engine (units + edits + pricing + cost share) on synthetic lines.

Usage: python benchmarks/bench_engine.py [--lines 1000000] [--repeat 3]
Prints one markdown table row per stage with the median of the runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.edits import apply_edits, apply_threshold_edits
from analytics.payers import load_payers, payer_columns
from analytics.pricing import price_lines, split_cost_share
from analytics.units import compute_units

REPO = Path(__file__).resolve().parents[1]


def synthetic_lines(n: int, seed: int = 0) -> pd.DataFrame:
    """n service lines in visits of 1-4 codes, vectorised."""
    rng = np.random.default_rng(seed)
    n_visits = n // 2
    sizes = rng.integers(1, 4, n_visits)
    visit = np.repeat(np.arange(n_visits), sizes)[:n]
    n = len(visit)
    codes = np.array(["97124", "97140", "97112", "97110", "97010"])
    payers = np.array(["medicare", "ppo_gold", "auto_pip", "workers_comp", "hmo_capped", "cash"])
    cpt = codes[rng.choice(5, n, p=[0.35, 0.3, 0.12, 0.13, 0.1])]
    minutes = np.where(cpt == "97010", np.nan, rng.integers(5, 46, n).astype(float))
    patient = visit // 8
    return pd.DataFrame({
        "patient_id": pd.Categorical(patient.astype(str)),
        "service_date": pd.Timestamp("2026-01-01") + pd.to_timedelta(visit % 300, unit="D"),
        "provider_id": pd.Categorical(np.array(["lmt1", "pt1", "dc1"])[visit % 3]),
        "provider_type": pd.Categorical(np.array(["lmt", "pt", "dc"])[visit % 3]),
        "payer_id": pd.Categorical(payers[patient % 6]),
        "cpt": pd.Categorical(cpt),
        "minutes": minutes,
        "modifiers": pd.Categorical(np.array(["GP", "GP,59", "", "XS"])[rng.choice(4, n, p=[0.5, 0.1, 0.3, 0.1])]),
        "prescription_on_file": rng.random(n) < 0.9,
        "charge": 60.0,
    })


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    payers = load_payers(REPO / "data" / "sample" / "payers.yaml")
    lines = synthetic_lines(args.lines)
    n = len(lines)
    warnings.simplefilter("ignore")
    method = payer_columns(lines, payers)["unit_method"]
    t_units, u = timed(lambda: compute_units(lines, method), args.repeat)
    t_edits, e = timed(lambda: apply_edits(u, payers), args.repeat)
    t_price, p = timed(lambda: split_cost_share(apply_threshold_edits(price_lines(e, payers), payers), payers),
                       args.repeat)
    total = t_units + t_edits + t_price
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"pandas {pd.__version__}; {n:,} lines; median of {args.repeat}")
    print("| stage | seconds | lines/s |")
    print("|---|---|---|")
    for name, t in (("units", t_units), ("edits", t_edits), ("pricing + KX + cost share", t_price),
                    ("all three", total)):
        print(f"| {name} | {t:.2f} | {n / t:,.0f} |")


if __name__ == "__main__":
    main()
