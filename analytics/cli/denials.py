"""The ``denials`` command: denial rates with credible intervals, the costliest reasons and a
denial-risk model, from a directory of 835 remittances (and the practice's charge export)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.denials import (
    DenialRiskModel,
    denial_rates,
    label_lines,
    line_outcomes,
    top_reasons,
)
from analytics.exceptions import InputError
from analytics.pipeline import evaluate
from analytics.practice import PracticeData, load_practice
from analytics.remittance import read_835_many

__all__ = ["register_cli"]


def register_cli(sub) -> None:
    """Add the ``denials`` command to the command line's subparsers."""
    p = sub.add_parser(
        "denials",
        help="denial rates with credible intervals, top reasons and a denial-risk model",
        description="Read the practice folder DIR as every --data command does (the export through mapping.yaml, "
        "payers.yaml with its aliases, every 835 under DIR/remittances/ whatever its name), classify every "
        "remittance line's outcome, and summarise denial rates by payer and by category with empirical-Bayes "
        "credible intervals and the costliest reasons. With a charge export (CSV, TSV, XLSX or Parquet), also "
        "fit the denial-risk model and report its held-out accuracy and top risk factors. A folder of 835 files "
        "alone works too.",
    )
    p.add_argument("--data", type=str, required=True, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_denials)


def _remittance_only(data: Path) -> list[Path]:
    """The 835 files of a folder that is not a practice folder (no charge export): every X12 file
    in DIR/remittances/, else in DIR."""
    from analytics.practice import is_x12_file

    remit_dir = data / "remittances" if (data / "remittances").is_dir() else data
    files = sorted(p for p in remit_dir.iterdir() if p.is_file() and not p.name.startswith(".")
                   and is_x12_file(p)) if remit_dir.is_dir() else []
    if not files:
        raise InputError(f"No 835 files in {remit_dir}; put the remittances in DIR/remittances/ (any file name: "
                         "*.835, *.txt, *.edi ...).", where=str(remit_dir))
    return files


def _risk_model_summary(practice: PracticeData, outcomes: pd.DataFrame) -> dict[str, Any] | None:
    """Fit the denial-risk model on the practice's charge lines labelled with the outcomes; its
    counts, held-out accuracy and top factors. Lines the rules engine cannot price (a code
    outside the catalog, a payer without a policy) are left out of the fit."""
    payers = practice.payers or None
    service = practice.lines[practice.lines["not_priced"] == ""] if payers is not None else practice.lines
    service = service.drop(columns=["not_priced", "payer_name", "source_row", "source_file"], errors="ignore")
    if not len(service):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        if payers is not None:  # the rules' dispositions, so the model learns the rest
            service = evaluate(service, payers)
        model = DenialRiskModel(payers=payers).fit(label_lines(service, outcomes, all_lines=True))
    factors = model.summary
    if model.mode_ == "model":
        factors = factors[(factors["feature"] != "intercept") & (factors["same_lines_as"] == "")]
    return {
        "lines": model.n_lines_,
        "denials": model.n_denials_,
        "rule_denied_left_out": model.n_rule_denied_,
        "mode": model.mode_,
        "validation": None if model.validation_ is None else model.validation_.to_dict(),
        "top_factors": factors.head(10)[["term", "log_odds", "odds_ratio", "lines", "denied"]].to_dict("records"),
    }


def _print_json(files, errors, outcomes, by_payer, by_cat, reasons, model_part) -> None:
    """The summary as one JSON document."""

    def rec(frame, cols):
        return json.loads(frame[cols].to_json(orient="records"))

    cols = [
        "lines",
        "denied",
        "raw_rate",
        "rate",
        "rate_lo_90",
        "rate_hi_90",
        "rate_lo_95",
        "rate_hi_95",
        "denied_dollars",
        "dollars_at_risk",
    ]
    out = {
        "remittances": {
            "files": len(files),
            "unreadable": errors.to_dict("records"),
            "lines": int(len(outcomes)),
            "outcomes": {k: int(v) for k, v in outcomes["outcome"].value_counts().items()},
        },
        "by_payer": rec(by_payer, ["payer_id", *cols]),
        "by_category": rec(by_cat, ["category", *cols]),
        "top_reasons": rec(reasons, list(reasons.columns)),
        "model": model_part,
    }
    print(json.dumps(out, indent=2, default=str))


def _print_text(files, outcomes, by_payer, by_cat, reasons, model_part) -> None:
    """The summary as tables for a terminal."""

    def pct(x):
        return f"{x:.1%}"

    print(
        f"{len(files)} remittance file(s), {len(outcomes):,} lines: "
        + ", ".join(f"{v:,} {k}" for k, v in outcomes["outcome"].value_counts().items())
    )
    for title, frame, key in (
        ("Denial rate by payer", by_payer, "payer_id"),
        ("Denial rate by category (share of all lines)", by_cat, "category"),
    ):
        print(f"\n{title} (posterior mean, 90% credible interval):")
        show = pd.DataFrame(
            {
                key: frame[key],
                "lines": frame["lines"],
                "denied": frame["denied"],
                "raw": frame["raw_rate"].map(pct),
                "rate": frame["rate"].map(pct),
                "90% interval": frame["rate_lo_90"].map(pct) + " - " + frame["rate_hi_90"].map(pct),
                "denied $": frame["denied_dollars"].map("{:,.2f}".format),
            }
        )
        print(show.to_string(index=False))
    print("\nTop denial reasons by dollars:")
    print(reasons.to_string(index=False) if len(reasons) else "(none)")
    if model_part is not None:
        print(
            f"\nDenial-risk model ({model_part['mode']}): {model_part['lines']:,} lines, "
            f"{model_part['denials']:,} denials; {model_part['rule_denied_left_out']:,} lines the payer rules "
            "deny left out"
        )
        v = model_part["validation"]
        if v:
            print(
                f"held-out: Brier {v['brier']:.4f} (base {v['brier_base']:.4f}), AUC {v['auc']:.3f}, "
                f"{v['lines']:,} lines"
            )
        print("top risk factors (log-odds):")
        for f in model_part["top_factors"]:
            print(
                f"  {f['log_odds']:+.2f}  {f['term']}  ({f['lines']:,} lines, {f['denied']:,} denied)"
            )


def _read_folder(data: Path) -> tuple[list[Path], Any, pd.DataFrame, PracticeData | None]:
    """The 835s (and the practice, when DIR is a practice folder) of ``--data DIR``."""
    try:
        practice = load_practice(data, require_payers=False)
    except InputError as exc:
        if "has no charge export" not in str(exc):
            raise
        files = _remittance_only(data)  # a folder of 835s alone: denial rates without the model
        remit, errors = read_835_many(files)
        return files, remit, errors, None
    if practice.remittance is None:
        raise InputError(f"No 835 files under {data / 'remittances'}; put the remittances there (any file name: "
                         "*.835, *.txt, *.edi ...).", where=str(data))
    return list(practice.files.remittances), practice.remittance, practice.remittance_errors, practice


def _run_denials(args) -> int:
    """Summarise the denials of DIR's remittances; returns the exit code."""
    data = Path(args.data)
    if not data.is_dir():
        raise InputError(f"--data {data}: no such folder. Give the practice folder (the export, payers.yaml and "
                         "remittances/).", where=str(data))
    files, remit, errors, practice = _read_folder(data)
    outcomes = line_outcomes(remit)
    by_payer = denial_rates(outcomes, by=("payer_id",))
    by_cat = denial_rates(outcomes, by=("category",))
    by_cat = by_cat[by_cat["denied"] > 0].sort_values("denied", ascending=False)
    reasons = top_reasons(outcomes)
    model_part = _risk_model_summary(practice, outcomes) if practice is not None else None
    if args.json:
        _print_json(files, errors, outcomes, by_payer, by_cat, reasons, model_part)
        return 0
    _print_text(files, outcomes, by_payer, by_cat, reasons, model_part)
    if practice is not None:
        for note in practice.notes:
            print(f"note: {note}", file=sys.stderr)
    return 0
