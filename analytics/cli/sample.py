"""The ``sample`` command: write a synthetic practice with known denial truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from analytics.datasets import generate_practice
from analytics.progress import Progress

__all__ = ["register_cli"]


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="generate a synthetic practice with known denial truth",
        description="Generate a synthetic massage/manual-therapy practice: service lines, 835 "
        "remittances per payer per week, and the true denial probability and mechanism "
        "of every line. The same seed and visits give byte-identical files.",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--visits", type=int, default=2400)
    p.add_argument(
        "--start", default="2025-03-01", help="first day of service (default 2025-03-01)"
    )
    p.add_argument("--months", type=int, default=12)
    p.add_argument(
        "--payers", type=Path, help="payer policy YAML (default data/sample/payers.yaml)"
    )
    p.add_argument(
        "--no-835",
        dest="no_835",
        action="store_true",
        help="large sets: write Parquet tables only, no 835 files",
    )
    p.set_defaults(func=_run_sample)


def _run_sample(args: argparse.Namespace) -> int:
    with Progress(f"sample ({args.visits:,} visits)", unit="stages") as bar:
        practice = generate_practice(
            args.visits, args.seed, payers=args.payers, start=args.start, months=args.months,
            progress=bar,
        )
        bar(0, stage="writing files", total=1)
        written = practice.write(args.out, remittances=not args.no_835, parquet=args.no_835)
        bar(1)
    n835 = sum(1 for p in written if p.suffix == ".835")
    t = practice.truth
    print(
        f"{practice.settings['practice']}: {args.visits:,} visits, {len(practice.lines):,} lines, "
        f"{len(practice.patients):,} patients, seed {args.seed}"
    )
    print(
        f"denied: {int(t['denied'].sum()):,} lines ({int((t['source'] == 'rule').sum()):,} by payer rules, "
        f"{int((t['denied'] & (t['source'] == 'random')).sum()):,} random); underpaid lines: "
        f"{int(t['underpaid'].sum()):,}"
    )
    print(f"wrote {len(written)} files ({n835} remittances) to {args.out}")
    return 0
