"""The ``units`` command: billable units of one visit."""

from __future__ import annotations

import argparse
import json
import re

import pandas as pd

from analytics.exceptions import InputError
from analytics.units import compute_units

_UNITS_ARG = re.compile(r"^(?P<code>[0-9A-Z]\d{4})(?:=(?P<minutes>-?[^=]*))?$")


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("units", help="billable units of one visit (CMS 8-minute rule or AMA midpoint)",
                       description="Units of one visit. Each argument is CODE=MINUTES, or a bare CODE for "
                                   "an untimed code such as 97010.")
    p.add_argument("services", nargs="+", metavar="CODE=MINUTES")
    p.add_argument("--method", choices=("cms", "ama"), default="cms")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_units)


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
