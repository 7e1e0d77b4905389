"""The ``units``, ``price`` and ``demo`` commands of ``python -m analytics``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import pandas as pd

from analytics.edits import modifier_flags
from analytics.exceptions import InputError
from analytics.payers import PayerPolicy, get_policy, load_payers
from analytics.pipeline import evaluate
from analytics.refdata import load_reference
from analytics.units import compute_units

DEFAULT_PAYERS = Path("data/sample/payers.yaml")
_BUILTIN = {"payers": {"medicare": {"kind": "medicare"}}}

_UNITS_ARG = re.compile(r"^(?P<code>[0-9A-Z]\d{4})(?:=(?P<minutes>-?[^=]*))?$")
_PRICE_ARG = re.compile(r"^(?P<code>[0-9A-Z]\d{4})(?:X(?P<units>\d+))?(?P<mods>(?::[0-9A-Z]{2})*)$")


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("units", help="billable units of one visit (CMS 8-minute rule or AMA midpoint)",
                       description="Units of one visit. Each argument is CODE=MINUTES, or a bare CODE for "
                                   "an untimed code such as 97010.")
    p.add_argument("services", nargs="+", metavar="CODE=MINUTES")
    p.add_argument("--method", choices=("cms", "ama"), default="cms")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_units)

    p = sub.add_parser("price", help="edits and allowed amounts of one visit for a payer",
                       description="Price one visit. Each argument is CODE, optional xUNITS, optional "
                                   ":MOD:MOD (e.g. 97110x2 97124:59). Edits run first, so a denied line "
                                   "shows $0 with its reason.")
    p.add_argument("services", nargs="+", metavar="CODE[xUNITS][:MOD...]")
    p.add_argument("--payer", default="medicare")
    p.add_argument("--payers", type=Path, help=f"payer policy YAML (default {DEFAULT_PAYERS} when present)")
    p.add_argument("--year", type=int, help="fee-schedule year (default: the year of --date)")
    p.add_argument("--date", help="date of service (default: 1 June of --year, else today)")
    p.add_argument("--locality", help="Medicare locality as MAC-locality, e.g. 13202-01 (default: the payer's)")
    p.add_argument("--apm", choices=("non_qp", "qp"), help="APM status for the conversion factor")
    p.add_argument("--provider-type", default="pt", help="rendering provider type (default pt)")
    p.add_argument("--prescription", action="store_true", help="a prescription/referral is on file")
    p.add_argument("--plan-of-care", choices=("pt", "ot", "none"), default="pt",
                   help="add GP (pt) or GO (ot) to Medicare therapy lines that lack a therapy modifier")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_price)

    p = sub.add_parser("demo", help="the main job on the bundled sample data")
    p.add_argument("--data", type=Path, default=Path("data/sample"))
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.set_defaults(func=_run_demo)


def _parse_units_args(args: list[str]) -> pd.DataFrame:
    rows = []
    for a in args:
        m = _UNITS_ARG.match(a.strip().upper())
        if not m:
            raise InputError(f"Cannot read {a!r}: write CODE=MINUTES (e.g. 97110=33) or a bare untimed CODE (97010).")
        minutes = m["minutes"]
        if minutes is not None:
            try:
                minutes = float(minutes)
            except ValueError:
                raise InputError(f"Minutes in {a!r} are not a number; write e.g. 97110=33.") from None
        rows.append({"cpt": m["code"], "minutes": minutes})
    frame = pd.DataFrame(rows).assign(patient_id="cli", service_date=pd.Timestamp("2026-01-01"), provider_id="cli")
    return frame.set_axis(pd.RangeIndex(1, len(frame) + 1, name="argument"))


def _run_units(args: argparse.Namespace) -> int:
    lines = _parse_units_args(args.services)
    out = compute_units(lines, args.method)
    if args.json:
        print(json.dumps({
            "method": args.method,
            "lines": [
                {"code": r.cpt, "minutes": None if pd.isna(r.minutes) else int(r.minutes), "units": int(r.units),
                 "reason": str(r.units_reason)}
                for r in out.itertuples()
            ],
            "total_units": int(out["units"].sum()),
        }, indent=2))
        return 0
    table = out.assign(minutes=out["minutes"].map(lambda m: "" if pd.isna(m) else f"{m:.0f}"))
    print(table[["cpt", "minutes", "units", "units_reason"]].rename(columns={"cpt": "code", "units_reason": "why"})
          .to_string(index=False))
    print(f"total units: {int(out['units'].sum())} ({args.method.upper()} method)")
    return 0


def _policies(path: Path | None) -> dict[str, PayerPolicy]:
    if path is not None:
        return load_payers(path)
    if DEFAULT_PAYERS.exists():
        return load_payers(DEFAULT_PAYERS)
    return load_payers(_BUILTIN)


def _run_price(args: argparse.Namespace) -> int:
    payers = _policies(args.payers)
    policy = get_policy(payers, args.payer)
    fee = policy.fee
    if args.locality:
        fee = dataclasses.replace(fee, locality=args.locality)
    if args.apm:
        fee = dataclasses.replace(fee, apm_status=args.apm)
    if args.year and args.date and pd.Timestamp(args.date).year != args.year:
        fee = dataclasses.replace(fee, year=args.year)
    policy = dataclasses.replace(policy, fee=fee)
    payers = {**payers, args.payer: policy}
    if args.date:
        date = pd.Timestamp(args.date)
    elif args.year:
        date = pd.Timestamp(f"{args.year}-06-01")
    else:
        date = pd.Timestamp.today().normalize()

    rows = []
    for a in args.services:
        m = _PRICE_ARG.match(a.strip().upper())
        if not m:
            raise InputError(f"Cannot read {a!r}: write CODE, optional xUNITS and :MODIFIERS, e.g. 97110x2 or 97124:59.")
        mods = [x for x in m["mods"].split(":") if x]
        rows.append({"cpt": m["code"], "units": int(m["units"] or 1), "modifiers": ",".join(mods)})
    lines = pd.DataFrame(rows).assign(
        patient_id="cli", service_date=date, provider_id="cli", payer_id=args.payer,
        provider_type=args.provider_type, prescription_on_file=args.prescription,
    ).set_axis(pd.RangeIndex(1, len(rows) + 1, name="argument"))
    note = ""
    if policy.require_gp and args.plan_of_care != "none":
        ref = load_reference()
        therapy = ref.code_table(lines["cpt"])["therapy"].to_numpy(bool)
        lacking = therapy & ~modifier_flags(lines["modifiers"], ("GP", "GO", "GN"))
        if lacking.any():
            tag = "GP" if args.plan_of_care == "pt" else "GO"
            lines.loc[lacking, "modifiers"] = (lines.loc[lacking, "modifiers"] + "," + tag).str.strip(",")
            note = f"{tag} added to therapy lines ({args.plan_of_care.upper()} plan of care); --plan-of-care none prices them as given"
    out = evaluate(lines, payers)
    total = round(float(out["allowed"].fillna(0).sum()), 2)
    if args.json:
        print(json.dumps({
            "payer": args.payer,
            "service_date": str(date.date()),
            "lines": [
                {"code": r.cpt, "modifiers": r.modifiers, "units": int(r.units), "disposition": str(r.disposition),
                 "allowed": None if pd.isna(r.allowed) else float(r.allowed), "carc": r.carc or None,
                 "patient": float(r.patient_part), "payer_paid": float(r.payer_paid),
                 "reason": r.edit_reason, "basis": r.price_basis}
                for r in out.itertuples()
            ],
            "total_allowed": total,
            "unpriced_lines": int((out["disposition"] == "unpriced").sum()),
            "note": note or None,
        }, indent=2))
        return 0
    show = out.assign(allowed=out["allowed"].map(lambda x: "no rate" if pd.isna(x) else f"${x:,.2f}"))
    print(f"{policy.name} ({args.payer}), service date {date.date()}")
    print(show[["cpt", "modifiers", "units", "disposition", "allowed", "carc", "edit_reason", "price_basis"]]
          .rename(columns={"cpt": "code", "edit_reason": "edits", "price_basis": "price"}).to_string(index=False))
    print(f"total allowed: ${total:,.2f}  (patient ${out['patient_part'].sum():,.2f}, "
          f"payer ${out['payer_paid'].sum():,.2f})")
    if note:
        print(f"note: {note}")
    return 0


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
