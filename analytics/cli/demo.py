"""The ``demo`` command: the main job on the bundled sample practice."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from analytics.payers import load_payers
from analytics.pipeline import evaluate


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the bundled sample data")
    p.add_argument("--data", type=Path, default=Path("data/sample"))
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    try:
        from analytics import reports
    except ImportError:
        reports = None
    if reports is not None and hasattr(reports, "run_reports"):
        return reports.main_job(args.data, args.out)
    payers = load_payers(args.data / "payers.yaml")
    sessions = pd.DataFrame({
        "patient_id": ["s1", "s1", "s2", "s2", "s3", "s3", "s3"],
        "service_date": pd.Timestamp("2026-03-02"),
        "provider_id": "pt1", "provider_type": "pt",
        "payer_id": ["medicare", "medicare", "ppo_gold", "ppo_gold", "medicare", "medicare", "medicare"],
        "cpt": ["97110", "97140", "97140", "97124", "97124", "97140", "97010"],
        "minutes": [33, 7, 30, 30, 30, 30, None],
        "modifiers": ["GP", "GP", "", "XS", "GP,59", "GP", "GP"],
    })
    out = evaluate(sessions, payers)
    print(out[["patient_id", "payer_id", "cpt", "minutes", "units", "disposition", "allowed", "edit_reason"]]
          .to_string(index=False))
    return 0
