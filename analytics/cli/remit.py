"""The ``remit`` command: read 835 files, write their tables, print totals and balance.

Its outputs carry names of their own (``remit_claims.parquet``, ``remit_lines.csv`` ...), so
they never replace or shadow a practice's files, and it refuses to write into a folder that
holds a practice export or the 835s it reads.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from analytics._files import write_csv
from analytics.cli.rekey import add_key_options, key_from_args
from analytics.exceptions import ParameterError, X12Error
from analytics.progress import track
from analytics.remittance.files import expand_paths, file_names
from analytics.remittance.reader import Reader
from analytics.remittance.sources import CHUNK_BYTES
from analytics.remittance.spool import FileOutput, TableFiles
from analytics.remittance.tables import ERROR_SCHEMA, LEVELS, SUMMARY_SCHEMA, TABLE_SCHEMAS

__all__ = ["OUTPUT_NAMES", "PRACTICE_FILES", "register_cli"]

#: The file name (without extension) each table is written under in the ``--out`` folder.
OUTPUT_NAMES = {
    "payments": "remit_payments",
    "claims": "remit_claims",
    "service_lines": "remit_lines",
    "adjustments": "remit_adjustments",
    "remarks": "remit_remarks",
    "plb": "remit_plb",
    "balance": "remit_balance",
    "summary": "remit_summary",
    "errors": "remit_errors",
}

#: What makes a folder a practice's: ``remit`` never writes into one.
PRACTICE_FILES = ("service_lines.*", "mapping.yaml", "practice.yaml", "remittances/")

_RULES = {
    "line": "SVC02 - sum(line CAS) = SVC03",
    "claim": "CLP03 - sum(claim and line CAS) = CLP04",
    "transaction": "sum(CLP04) - sum(PLB) = BPR02",
}

_DESCRIPTION = (
    "Read X12 835 (ERA) files into tables, written as Parquet and CSV under names of their own "
    "(remit_payments, remit_claims, remit_lines, remit_adjustments, remit_remarks, remit_plb, "
    "remit_balance, remit_summary, and remit_errors.csv when a file cannot be read), so they "
    "never replace a practice's files: the command refuses an --out folder that holds a "
    "practice export (service_lines.*, mapping.yaml, practice.yaml or remittances/) or the 835s "
    "it reads. Patient names are never stored; member ids become a keyed pseudonym. Files of "
    "any size are read and written part by part, in bounded memory.\n\n"
    "A file is 'balanced' when every check at all three levels of the 835 passes: each service "
    "line (SVC02 charge - its CAS adjustments = SVC03 paid), each claim (CLP03 charge - its "
    "claim and line CAS adjustments = CLP04 paid) and each transaction (sum of CLP04 - sum of "
    "PLB provider adjustments = BPR02 payment), to the cent. --json gives the checks and "
    "failures of each level per file; remit_balance lists every check with its rule, expected "
    "and actual amounts."
)


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``remit`` command: read 835 files, write tables, print totals and balance."""
    parser = sub.add_parser(
        "remit",
        help="read 835 remittance files into tables",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="835 files or directories")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="folder for the remit_* tables (not a practice folder, nor the 835s' folder)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the per-file summary as JSON, with the line, claim and transaction checks",
    )
    add_key_options(parser)
    parser.set_defaults(func=_run_remit)


def practice_files_in(folder: Path) -> list[str]:
    """The files and folders in ``folder`` that show it holds a practice's data."""
    if not folder.is_dir():
        return []
    found = sorted(p.name for p in folder.glob("service_lines.*"))
    found += [n for n in ("mapping.yaml", "practice.yaml") if (folder / n).is_file()]
    if (folder / "remittances").is_dir():
        found.append("remittances/")
    return found


def _check_out(out: Path, inputs: list[str]) -> None:
    found = practice_files_in(out)
    if found:
        raise ParameterError(
            f"--out {out} holds a practice's files ({', '.join(found)}); remit does not write "
            f"into a practice folder. Give --out a folder of its own, such as {out / 'remit'}.",
            where="--out",
        )
    resolved = out.resolve()
    for item in inputs:
        path = Path(item).resolve()
        if path == resolved or (path.is_file() and path.parent == resolved):
            raise ParameterError(
                f"--out {out} is the folder of the 835s given ({item}); the tables written there "
                f"would be read as 835s the next time. Give --out another folder, such as "
                f"{out / 'remit'}.",
                where="--out",
            )


def _run_remit(args: argparse.Namespace) -> int:
    out: Path = args.out
    _check_out(out, args.paths)
    key = key_from_args(args, args.paths, "the remittance tables")
    out.mkdir(parents=True, exist_ok=True)
    paths = expand_paths(args.paths)
    outputs = {
        table: TableFiles(out / OUTPUT_NAMES[table], schema)
        for table, schema in TABLE_SCHEMAS.items()
    }
    rows: list[dict[str, object]] = []
    levels: list[dict[str, dict[str, object]]] = []
    failed: list[pd.DataFrame] = []
    errors: list[dict[str, str]] = []
    staging = Path(tempfile.mkdtemp(prefix=".remit-", dir=out))
    try:
        named = list(zip(paths, file_names(paths), strict=True))
        for i, (path, name) in enumerate(track(named, "remit: reading 835s", unit="files")):
            folder = staging / str(i)
            folder.mkdir()
            spool = FileOutput(folder, name)
            try:
                reader = Reader(path, salt=key, source_name=name, chunk_bytes=CHUNK_BYTES)
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
            levels.append(
                {
                    level: {
                        "rule": _RULES[level],
                        "checks": spool.checks[level],
                        "failed": spool.failures[level],
                        "balanced": spool.failures[level] == 0,
                    }
                    for level in LEVELS
                }
            )
            failed.extend(frame for level in LEVELS for frame in spool.failed[level])
    finally:
        for files in outputs.values():
            files.close()
        shutil.rmtree(staging, ignore_errors=True)

    summary = pd.DataFrame(rows, columns=list(SUMMARY_SCHEMA)).astype(SUMMARY_SCHEMA)
    summary.to_parquet(out / f"{OUTPUT_NAMES['summary']}.parquet", index=False)
    write_csv(summary, out / f"{OUTPUT_NAMES['summary']}.csv")
    error_frame = pd.DataFrame(errors, columns=list(ERROR_SCHEMA)).astype(ERROR_SCHEMA)
    if errors:
        write_csv(error_frame, out / f"{OUTPUT_NAMES['errors']}.csv")

    if args.json:
        payload: dict[str, object] = {
            "balanced_means": (
                "every line, claim and transaction check of the file passes; see 'balance'"
            ),
            "files": [
                {
                    "file": str(r.file),
                    "claims": int(r.claims),
                    "service_lines": int(r.service_lines),
                    "paid_total": float(r.paid_total),
                    "adjustments_total": float(r.adjustments_total),
                    "plb_total": float(r.plb_total),
                    "balanced": bool(r.balanced),
                    "balance": by_level,
                }
                for r, by_level in zip(summary.itertuples(index=False), levels, strict=True)
            ],
        }
        if errors:
            payload["errors"] = error_frame.to_dict("records")
        print(json.dumps(payload, indent=2))
    else:
        _print_text(summary, failed, error_frame, out)
    return 1 if errors else 0


def _print_text(
    summary: pd.DataFrame, failed: list[pd.DataFrame], error_frame: pd.DataFrame, out: Path
) -> None:
    if summary.empty:
        print("No 835 file was read.")
    else:
        print(summary.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
        print(
            "\nbalanced: every service line (SVC02 - CAS = SVC03), claim (CLP03 - CAS = CLP04) "
            "and transaction (sum CLP04 - PLB = BPR02) check passes."
        )
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
    if len(error_frame):
        print(f"\n{len(error_frame)} file(s) could not be read:")
        for r in error_frame.itertuples(index=False):
            print(f"  {r.file}: {r.error}")
    print(f"\nTables written to {out} (remit_*.parquet and remit_*.csv)")
