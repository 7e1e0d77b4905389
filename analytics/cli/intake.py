"""The ``intake`` command: read a practice-management export, set bad rows aside, list the
columns left out.

Writes the accepted lines, with patient ids pseudonymised (:func:`analytics.privacy.pseudonymise`),
to ``lines.parquet`` and ``lines.csv``, and the rows set aside with their spreadsheet row number
and reasons to ``quarantine.csv`` (only the columns the toolkit reads: never names or free text);
prints the reconciliation ``rows in = accepted + quarantined`` and the columns left out. With
``--sniff`` it prints the proposed mapping.yaml for the export instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pyarrow
import pyarrow.parquet

from analytics._files import atomic_write, write_csv
from analytics.cli.rekey import add_key_options, key_from_args
from analytics.exceptions import InputError
from analytics.intake import read_service_lines, sniff_export
from analytics.intake.headers import ENGINE_COLUMNS
from analytics.privacy import pseudonym_metadata, pseudonymise
from analytics.schemas import CANONICAL_COLUMNS

__all__ = ["register_cli"]


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``intake``: read an export, write lines and quarantine, print the counts."""
    parser = subparsers.add_parser(
        "intake",
        help="read a service-line export, set bad rows aside, list the columns left out",
        description=(
            "Read a practice-management export (CSV, TSV, XLSX, Parquet; the header is found under any title "
            "rows), write the accepted lines (patient ids pseudonymised) to lines.parquet and lines.csv and the "
            "rows set aside, with their spreadsheet row number and reasons, to quarantine.csv. Only the columns "
            "the toolkit uses (and those mapping.yaml keeps) are read; the others are listed with the reason. "
            "--sniff prints the proposed mapping.yaml instead."
        ),
    )
    parser.add_argument("file", type=Path, help="the export to read")
    parser.add_argument("--out", type=Path, help="output folder (needed unless --sniff)")
    parser.add_argument("--mapping", type=Path, help="mapping.yaml: how to read the export's columns")
    parser.add_argument("--sheet", help="Excel sheet name (default: the mapping's, else the first)")
    parser.add_argument("--header-row", type=int, metavar="N",
                        help="the header's row number as the spreadsheet shows it (default: found)")
    parser.add_argument("--sniff", action="store_true",
                        help="print the proposed mapping.yaml (and write it to OUT/mapping.yaml with --out)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    add_key_options(parser)
    parser.set_defaults(func=_run_cli)


def _run_sniff(args: argparse.Namespace) -> int:
    layout = sniff_export(args.file, sheet=args.sheet)
    text = layout.to_yaml()
    if args.out is not None:
        target = args.out / "mapping.yaml"
        if target.exists():
            target = args.out / "mapping.yaml.new"
        atomic_write(target, text)
        print(f"wrote {target}", file=sys.stderr)
    if args.json:
        print(json.dumps({"file": str(args.file), "header_row": layout.header_row, "rows": layout.rows,
                          "total_rows": layout.total_rows, "mapping": layout.mapping,
                          "ignored": layout.ignored.to_dict("records"), "questions": list(layout.questions)},
                         indent=2))
    else:
        print(text, end="")
        for question in layout.questions:
            print(f"check: {question}", file=sys.stderr)
    return 0


def _output_folder(out: Path) -> None:
    """Make ``--out`` (before the export is read, so a wrong folder costs nothing)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder; give a folder for lines.parquet, lines.csv and "
                         "quarantine.csv.", where=str(out))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out} cannot be made ({exc.strerror}); give a folder you can write to.",
                         where=str(out)) from None


def _run_cli(args: argparse.Namespace) -> int:
    if args.sniff:
        return _run_sniff(args)
    if args.out is None:
        raise InputError("intake needs --out DIR (where lines.parquet, lines.csv and quarantine.csv go), or --sniff.")
    if args.header_row is not None and args.header_row < 1:
        raise InputError("--header-row is the row number as the spreadsheet shows it: 1 or more.")
    key = key_from_args(args, [args.file], "lines.parquet, lines.csv and quarantine.csv")
    _output_folder(args.out)
    intake = read_service_lines(args.file, mapping=args.mapping, sheet=args.sheet, header_row=args.header_row)
    lines = pseudonymise(intake.lines, key=key)
    kept = [c for c in lines.columns if c not in (*CANONICAL_COLUMNS, *ENGINE_COLUMNS, "source_row", "source_file")]
    lines = lines[[c for c in (*CANONICAL_COLUMNS, *ENGINE_COLUMNS, *kept, "source_row") if c in lines.columns]]
    table = pyarrow.Table.from_pandas(lines, preserve_index=False)
    # say in the file that patient_id already holds pseudonyms (and whose key), so `evaluate` keeps them
    marked = {**(table.schema.metadata or {}), **pseudonym_metadata(key, ["patient_id"])}
    pyarrow.parquet.write_table(table.replace_schema_metadata(marked), args.out / "lines.parquet")
    write_csv(lines, args.out / "lines.csv", date_format="%Y-%m-%d")
    patient_columns = [header for header, target in intake.column_map.items()
                       if target == "patient_id" and header in intake.quarantine.columns]
    write_csv(pseudonymise(intake.quarantine, key=key, columns=patient_columns), args.out / "quarantine.csv")
    if args.json:
        summary = {
            "file": str(args.file),
            "header_row": intake.header_row,
            "rows_in": intake.rows_in,
            "accepted": intake.accepted,
            "quarantined": intake.quarantined,
            "total_rows": intake.total_rows,
            "reasons": intake.reason_counts(),
            "dropped_for_privacy": list(intake.dropped_columns),
            "ignored_columns": intake.ignored.to_dict("records"),
        }
        print(json.dumps(summary, indent=2))
    else:
        print(intake.report())
        if intake.dropped_columns:
            print(f"dropped for privacy: {', '.join(intake.dropped_columns)}", file=sys.stderr)
        others = intake.ignored[~intake.ignored["column"].isin(intake.dropped_columns)]
        for column, reason in others.itertuples(index=False, name=None):
            print(f"column not read: {column}: {reason}", file=sys.stderr)
    return 0
