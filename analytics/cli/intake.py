"""The ``intake`` command: validate a practice-management export and quarantine bad rows.

Writes the accepted lines, with patient ids pseudonymised (:func:`analytics.privacy.pseudonymise`),
to ``lines.parquet`` and ``lines.csv``, and the rejected rows with their reasons to
``quarantine.csv``; prints the reconciliation ``rows in = accepted + quarantined``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow
import pyarrow.parquet

from analytics.intake import read_service_lines
from analytics.privacy import PSEUDONYMISED_KEY, pseudonymise
from analytics.schemas import CANONICAL_COLUMNS

__all__ = ["register_cli"]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``intake``: validate an export, write lines and quarantine, print the counts."""
    parser = subparsers.add_parser(
        "intake",
        help="validate a service-line export and quarantine bad rows",
        description=(
            "Read a practice-management export (CSV, XLSX, Parquet), write the accepted "
            "lines (patient ids pseudonymised with ANALYTICS_ID_SALT) to lines.parquet and "
            "lines.csv and the rejected rows with their reasons to quarantine.csv."
        ),
    )
    parser.add_argument("file", type=Path, help="the export to read")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--mapping", type=Path, help="YAML file mapping export columns")
    parser.add_argument("--sheet", help="Excel sheet name (default: the first)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    intake = read_service_lines(args.file, mapping=args.mapping, sheet=args.sheet)
    args.out.mkdir(parents=True, exist_ok=True)
    # Saved tables keep the canonical columns only: an export's extra columns may hold
    # identifiers under headers the privacy list does not know.
    lines = pseudonymise(intake.lines)
    lines = lines[[c for c in (*CANONICAL_COLUMNS, "source_row") if c in lines.columns]]
    table = pyarrow.Table.from_pandas(lines, preserve_index=False)
    # say in the file that patient_id already holds pseudonyms, so `evaluate` keeps them as they are
    marked = {**(table.schema.metadata or {}), PSEUDONYMISED_KEY: b"patient_id"}
    pyarrow.parquet.write_table(table.replace_schema_metadata(marked), args.out / "lines.parquet")
    lines.to_csv(args.out / "lines.csv", index=False, date_format="%Y-%m-%d")
    patient_columns = [
        header
        for header, target in intake.column_map.items()
        if target == "patient_id" and header in intake.quarantine.columns
    ]
    pseudonymise(intake.quarantine, columns=patient_columns).to_csv(
        args.out / "quarantine.csv", index=False
    )
    if args.json:
        summary = {
            "file": str(args.file),
            "rows_in": intake.rows_in,
            "accepted": intake.accepted,
            "quarantined": intake.quarantined,
            "reasons": intake.reason_counts(),
            "dropped_for_privacy": list(intake.dropped_columns),
        }
        print(json.dumps(summary, indent=2))
    else:
        print(intake.report())
        if intake.dropped_columns:
            print(f"dropped for privacy: {', '.join(intake.dropped_columns)}", file=sys.stderr)
    return 0
