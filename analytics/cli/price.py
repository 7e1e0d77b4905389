"""The ``price`` command: edits and allowed amounts of one visit for a payer."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path

import pandas as pd

from analytics.edits import modifier_flags
from analytics.exceptions import InputError, UnknownPayerError
from analytics.onboarding import check_locality
from analytics.payers import PayerPolicy, get_policy, load_payers
from analytics.pipeline import evaluate
from analytics.refdata import load_reference

DEFAULT_PAYERS = Path("data/sample/payers.yaml")
_BUILTIN = {"payers": {"medicare": {"kind": "medicare"}}}

_PRICE_ARG = re.compile(r"^(?P<code>[0-9A-Z]\d{4})(?:X(?P<units>\d+))?(?P<mods>(?::[0-9A-Z]{2})*)$")


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("price", help="edits and allowed amounts of one visit for a payer",
                       description="Price one visit. Each argument is CODE, optional xUNITS, optional "
                                   ":MOD:MOD (e.g. 97110x2 97124:59). Edits run first, so a denied line "
                                   "shows $0 with its reason.")
    p.add_argument("services", nargs="+", metavar="CODE[xUNITS][:MOD...]")
    p.add_argument("--payer", default="medicare", help="payer id, name or alias from the policies (default medicare)")
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


def _policies(path: Path | None) -> dict[str, PayerPolicy]:
    if path is not None:
        return load_payers(path)
    if DEFAULT_PAYERS.exists():
        return load_payers(DEFAULT_PAYERS)
    return load_payers(_BUILTIN)


def _run_price(args: argparse.Namespace) -> int:
    payers = _policies(args.payers)
    try:
        policy = get_policy(payers, args.payer)  # by id, name or alias: --payer Medicare
    except UnknownPayerError as exc:
        source = args.payers or (DEFAULT_PAYERS if DEFAULT_PAYERS.exists() else "the built-in Medicare policy")
        raise UnknownPayerError(f"--payer {args.payer}: {exc} (policies read from {source}; another file: "
                                "--payers FILE)") from None
    payer_id = policy.payer_id
    fee = policy.fee
    if args.locality:
        fee = dataclasses.replace(fee, locality=check_locality(args.locality, where="--locality"))
    if args.apm:
        fee = dataclasses.replace(fee, apm_status=args.apm)
    if args.year and args.date and pd.Timestamp(args.date).year != args.year:
        fee = dataclasses.replace(fee, year=args.year)
    policy = dataclasses.replace(policy, fee=fee)
    payers = {**payers, payer_id: policy}
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
        patient_id="cli", service_date=date, provider_id="cli", payer_id=payer_id,
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
            "payer": payer_id,
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
    print(f"{policy.name} ({payer_id}), service date {date.date()}")
    print(show[["cpt", "modifiers", "units", "disposition", "allowed", "carc", "edit_reason", "price_basis"]]
          .rename(columns={"cpt": "code", "edit_reason": "edits", "price_basis": "price"}).to_string(index=False))
    print(f"total allowed: ${total:,.2f}  (patient ${out['patient_part'].sum():,.2f}, "
          f"payer ${out['payer_paid'].sum():,.2f})")
    if note:
        print(f"note: {note}")
    return 0
