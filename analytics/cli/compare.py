"""The ``compare`` command: every documented way to code one session, priced for each payer."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.exceptions import InputError
from analytics.history import load_history
from analytics.payers import load_payers
from analytics.scenarios import Session, compare, learned_risk

__all__ = ["register_cli"]

_SERVICE_ARG = re.compile(r"^(?P<code>[0-9A-Z]{5,7})(?:=(?P<minutes>[^=]*))?$")
_DEFAULT_PAYERS = Path("data/sample/payers.yaml")


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to ``python -m analytics``."""
    p = sub.add_parser(
        "compare",
        help="every documented way to code one session, priced for each payer",
        description="Compare the ways to report one session. Each argument is CODE=MINUTES, or a bare "
        "CODE for an untimed code (97010). Alternatives needing documentation the session "
        "lacks are marked not supported.",
    )
    p.add_argument("services", nargs="+", metavar="CODE=MINUTES")
    p.add_argument(
        "--payer",
        action="append",
        dest="payer_ids",
        metavar="ID",
        help="payer id from the policies (repeat; default: all)",
    )
    p.add_argument("--payers", type=Path, help=f"payer policy YAML (default {_DEFAULT_PAYERS})")
    p.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="practice folder (service_lines.csv, payers.yaml, remittances/): the chance of denial is learned "
        "from its remittances, and its payers.yaml is used unless --payers is given",
    )
    p.add_argument(
        "--distinct-regions",
        action="store_true",
        help="the notes place each service on its own body region (59, XS, XU)",
    )
    p.add_argument(
        "--separate-time-blocks",
        action="store_true",
        help="the notes show each service in its own time block (59, XU)",
    )
    p.add_argument("--date", help="date of service (default: 1 June of --year, else today)")
    p.add_argument("--year", type=int, help="year of service when --date is not given")
    p.add_argument("--provider-type", default="pt", help="rendering provider type (default pt)")
    p.add_argument("--prescription", action="store_true", help="a prescription/referral is on file")
    p.add_argument(
        "--deductible-remaining",
        type=float,
        help="deductible left this year, for every payer (default: each plan's full deductible)",
    )
    p.add_argument(
        "--visits-used", type=int, default=0, help="visits already used this year (default 0)"
    )
    p.add_argument(
        "--plan-of-care",
        choices=("pt", "ot", "slp", "none"),
        default="pt",
        help="therapy plan of care; payers that require it get GP/GO/GN (default pt)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    minutes: dict[str, int | None] = {}
    for a in args.services:
        m = _SERVICE_ARG.match(a.strip().upper())
        if not m:
            raise InputError(
                f"Cannot read {a!r}: write CODE=MINUTES (e.g. 97124=30) or a bare untimed CODE (97010)."
            )
        value = m["minutes"]
        if value is not None:
            try:
                number = float(value)
            except ValueError:
                raise InputError(
                    f"Minutes in {a!r} are not a number; write e.g. 97124=30."
                ) from None
            value = int(number) if number == int(number) else number
        minutes[m["code"]] = value
    if args.date:
        date = pd.Timestamp(args.date)
    elif args.year:
        date = pd.Timestamp(f"{args.year}-06-01")
    else:
        date = pd.Timestamp.today().normalize()
    risk = None
    if args.data is not None:
        history = load_history(args.data)  # names the folder and the fix when it is not a practice
        risk = learned_risk(history, validate=False)
    path = args.payers or (args.data / "payers.yaml" if args.data is not None else _DEFAULT_PAYERS)
    payers = (
        load_payers(path)
        if Path(path).exists() or args.payers
        else load_payers({"payers": {"medicare": {"kind": "medicare"}}})
    )
    hot_pack = "97010" in minutes
    minutes.pop("97010", None)
    session = Session.from_minutes(
        minutes,
        service_date=date,
        distinct_regions=args.distinct_regions,
        separate_time_blocks=args.separate_time_blocks,
        hot_pack=hot_pack,
        provider_type=args.provider_type,
        prescription_on_file=args.prescription,
        deductible_remaining=args.deductible_remaining,
        visits_used=args.visits_used,
        plan_of_care=None if args.plan_of_care == "none" else args.plan_of_care,
    )
    result = compare(session, payers, payer_ids=args.payer_ids, risk=risk)
    if args.json:
        print(json.dumps(result.to_json_dict(), indent=2))
        return 0
    t = result.totals
    show = t.assign(
        supported=np.where(t["supported"], "yes", "NO"),
        best=np.where(t["best"], "*", ""),
        **{
            c: t[c].map("${:,.2f}".format)
            for c in ("expected_total", "expected_payer", "expected_patient")
        },
    )
    print(
        f"Session of {date.date()}: "
        + ", ".join(
            f"{s.code}" + (f" {s.minutes} min" if s.minutes is not None else "")
            for s in session.services
        )
    )
    for pid, part in show.groupby("payer_id", sort=False):
        print(f"\n{part['payer_name'].iloc[0]} ({pid})")
        print(
            part[
                [
                    "best",
                    "alternative",
                    "supported",
                    "expected_total",
                    "expected_payer",
                    "expected_patient",
                    "denied_lines",
                ]
            ]
            .rename(
                columns={
                    "expected_total": "expected",
                    "expected_payer": "payer",
                    "expected_patient": "patient",
                    "denied_lines": "denied",
                }
            )
            .to_string(index=False)
        )
    denied = result.denied()
    if len(denied):
        print("\nDenied or not billed:")
        for r in denied.drop_duplicates(["payer_id", "cpt", "modifiers", "edit_reason"]).itertuples(
            index=False
        ):
            code = f"{r.group_code}-{r.carc}" if r.carc else r.disposition
            billed = "-".join([r.cpt, *filter(None, str(r.modifiers).split(","))])
            print(f"  {r.payer_id}: {billed} ({code}): {r.edit_reason}")
    _print_chances(result)
    unsupported = t.loc[~t["supported"]].drop_duplicates("alternative")
    if len(unsupported):
        print("\nNot supported by the documentation (do not bill unless the record shows it):")
        for r in unsupported.itertuples(index=False):
            print(f"  {r.alternative}: {r.missing}")
    print("\n* = the supported alternative with the highest expected collections for that payer")
    return 0


def _print_chances(result) -> None:
    """Each payer and code's chance of denial on lines no edit denies, and what it rests on."""
    t = result.table
    live = t[~t["disposition"].isin(["denied", "not_billed"])]
    live = live.drop_duplicates(["payer_id", "cpt", "p_deny_basis"])
    if live.empty:
        return
    print("\nChance of denial (lines no edit denies):")
    for r in live.itertuples(index=False):
        print(f"  {r.payer_id} {r.cpt}: {r.p_deny:.0%} ({r.p_deny_basis})")
