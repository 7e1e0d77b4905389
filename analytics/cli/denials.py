"""The ``denials`` command: denial rates with credible intervals, the costliest reasons and a
denial-risk model, from a directory of 835 remittances (and the practice's charge export)."""

from __future__ import annotations

import json
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
from analytics.payers import load_payers
from analytics.pipeline import evaluate
from analytics.remittance import read_835_many

__all__ = ["register_cli"]

_SERVICE_LINE_TEXT = (
    "patient_id",
    "provider_id",
    "provider_type",
    "payer_id",
    "cpt",
    "modifiers",
    "dx_codes",
    "claim_id",
    "line_id",
)


def _read_service_lines(path) -> pd.DataFrame:
    """The practice's charge export with ids and codes kept as text (``97124`` is not a number)."""
    frame = pd.read_csv(
        path,
        dtype={c: str for c in _SERVICE_LINE_TEXT},
        keep_default_na=False,
        na_values={"minutes": [""], "charge": [""], "submission_date": [""], "service_date": [""]},
    )
    for c in ("service_date", "submission_date"):
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c], errors="coerce")
    for c in ("prescription_on_file", "prior_auth"):
        if c in frame.columns:
            frame[c] = frame[c].astype(str).str.lower().isin(["true", "1", "yes", "y"])
    return frame


def register_cli(sub) -> None:
    """Add the ``denials`` command to the command line's subparsers."""
    p = sub.add_parser(
        "denials",
        help="denial rates with credible intervals, top reasons and a denial-risk model",
        description="Read DIR/remittances/*.835 (or the 835 files in DIR), classify every line's outcome, and "
        "summarise denial rates by payer and by category with empirical-Bayes credible intervals and "
        "the costliest reasons. With DIR/service_lines.csv, also fit the denial-risk model and report "
        "its held-out accuracy and top risk factors.",
    )
    p.add_argument("--data", type=str, required=True, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_denials)


def _remittance_files(data: Path) -> list[Path]:
    """The 835 files of DIR/remittances/ (or of DIR), by name."""
    remit_dir = data / "remittances" if (data / "remittances").is_dir() else data
    files = (
        sorted(
            p
            for p in remit_dir.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and p.suffix.lower() in (".835", ".edi", ".txt", ".x12")
        )
        if remit_dir.is_dir()
        else []
    )
    if not files:
        raise InputError(
            f"No 835 files in {remit_dir}; put the remittances in DIR/remittances/ (*.835)."
        )
    return files


def _risk_model_summary(data: Path, outcomes: pd.DataFrame) -> dict[str, Any] | None:
    """Fit the denial-risk model on DIR/service_lines.csv labelled with the outcomes; its
    counts, held-out accuracy and top factors (``None`` without a charge export)."""
    model_part: dict[str, Any] | None = None
    lines_path = data / "service_lines.csv"
    if lines_path.exists():
        payers = load_payers(data / "payers.yaml") if (data / "payers.yaml").exists() else None
        service = _read_service_lines(lines_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            if payers is not None:  # the rules' dispositions, so the model learns the rest
                service = evaluate(service, payers)
            model = DenialRiskModel(payers=payers).fit(
                label_lines(service, outcomes, all_lines=True)
            )
        factors = model.summary
        if model.mode_ == "model":
            factors = factors[
                (factors["feature"] != "intercept") & (factors["same_lines_as"] == "")
            ]
        model_part = {
            "lines": model.n_lines_,
            "denials": model.n_denials_,
            "rule_denied_left_out": model.n_rule_denied_,
            "mode": model.mode_,
            "validation": None if model.validation_ is None else model.validation_.to_dict(),
            "top_factors": factors.head(10)[
                ["term", "log_odds", "odds_ratio", "lines", "denied"]
            ].to_dict("records"),
        }
    return model_part


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


def _run_denials(args) -> int:
    """Summarise the denials of DIR's remittances; returns the exit code."""
    data = Path(args.data)
    files = _remittance_files(data)
    remit, errors = read_835_many(files)
    outcomes = line_outcomes(remit)
    by_payer = denial_rates(outcomes, by=("payer_id",))
    by_cat = denial_rates(outcomes, by=("category",))
    by_cat = by_cat[by_cat["denied"] > 0].sort_values("denied", ascending=False)
    reasons = top_reasons(outcomes)
    model_part = _risk_model_summary(data, outcomes)
    if args.json:
        _print_json(files, errors, outcomes, by_payer, by_cat, reasons, model_part)
        return 0
    _print_text(files, outcomes, by_payer, by_cat, reasons, model_part)
    return 0
