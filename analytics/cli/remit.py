"""The ``remit`` command: read 835 files, write their tables, print totals and balance."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from analytics.exceptions import X12Error
from analytics.remittance.files import expand_paths, file_names
from analytics.remittance.reader import Reader
from analytics.remittance.sources import CHUNK_BYTES
from analytics.remittance.spool import FileOutput, TableFiles
from analytics.remittance.tables import ERROR_SCHEMA, LEVELS, SUMMARY_SCHEMA, TABLE_SCHEMAS

__all__ = ["register_cli"]


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``remit`` command: read 835 files, write tables, print totals and balance."""
    parser = sub.add_parser(
        "remit",
        help="read 835 remittance files into tables",
        description=(
            "Read X12 835 (ERA) files into tables (payments, claims, service_lines, "
            "adjustments, remarks, plb, balance, summary), written as Parquet and CSV. Patient "
            "names are never stored; member ids become a salted key (set ANALYTICS_ID_SALT). "
            "Files of any size are read and written part by part, in bounded memory."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="835 files or directories")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--json", action="store_true", help="print the per-file summary as JSON")
    parser.set_defaults(func=_run_remit)


def _run_remit(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    paths = expand_paths(args.paths)
    outputs = {table: TableFiles(out / table, schema) for table, schema in TABLE_SCHEMAS.items()}
    rows: list[dict[str, object]] = []
    failed: list[pd.DataFrame] = []
    errors: list[dict[str, str]] = []
    staging = Path(tempfile.mkdtemp(prefix=".remit-", dir=out))
    try:
        for i, (path, name) in enumerate(zip(paths, file_names(paths), strict=True)):
            folder = staging / str(i)
            folder.mkdir()
            spool = FileOutput(folder, name)
            try:
                reader = Reader(path, salt=None, source_name=name, chunk_bytes=CHUNK_BYTES)
                for part in reader.parts():
                    spool.add(part)
            except (X12Error, OSError) as exc:
                errors.append({"file": name, "error": str(exc)})
                continue
            finally:
                spool.close()
            for category, message in reader.notes.messages():
                warnings.warn(message, category, stacklevel=2)
            spool.commit(outputs)
            shutil.rmtree(folder)
            rows.append(spool.summary_row())
            failed.extend(frame for level in LEVELS for frame in spool.failed[level])
    finally:
        for files in outputs.values():
            files.close()
        shutil.rmtree(staging, ignore_errors=True)

    summary = pd.DataFrame(rows, columns=list(SUMMARY_SCHEMA)).astype(SUMMARY_SCHEMA)
    summary.to_parquet(out / "summary.parquet", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    error_frame = pd.DataFrame(errors, columns=list(ERROR_SCHEMA)).astype(ERROR_SCHEMA)
    if errors:
        error_frame.to_csv(out / "errors.csv", index=False)

    if args.json:
        payload: dict[str, object] = {
            "files": [
                {
                    "file": str(r.file),
                    "claims": int(r.claims),
                    "service_lines": int(r.service_lines),
                    "paid_total": float(r.paid_total),
                    "adjustments_total": float(r.adjustments_total),
                    "plb_total": float(r.plb_total),
                    "balanced": bool(r.balanced),
                }
                for r in summary.itertuples(index=False)
            ]
        }
        if errors:
            payload["errors"] = error_frame.to_dict("records")
        print(json.dumps(payload, indent=2))
    else:
        if summary.empty:
            print("No 835 file was read.")
        else:
            print(summary.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
            if failed:
                print("\nBalance checks that fail:")
                cols = [
                    "file",
                    "level",
                    "st_index",
                    "claim_id",
                    "line_index",
                    "rule",
                    "expected",
                    "actual",
                    "difference",
                ]
                print(pd.concat(failed, ignore_index=True)[cols].to_string(index=False))
        if errors:
            print(f"\n{len(errors)} file(s) could not be read:")
            for r in error_frame.itertuples(index=False):
                print(f"  {r.file}: {r.error}")
        print(f"\nTables written to {out}")
    return 1 if errors else 0
