"""The ``report`` command: run the report notebooks into dated HTML (and PDF) pages.

The runner is :func:`analytics.reports.run_reports`; this module reads the command line and
parameter files, runs it and prints where the pages are. :func:`main_job` is ``report all``
with the defaults, as ``python -m analytics demo`` runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# The runner is called through its module (``reports.run_reports``), not bound here, so that
# a replacement of analytics.reports.run_reports (tests, embedding applications) is honoured.
from analytics import reports
from analytics.exceptions import ParameterError
from analytics.reports import REPORTS, RunResult

__all__ = ["register_cli", "main_job"]


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``report``: run report notebooks into dated HTML (and PDF) pages."""
    p = sub.add_parser(
        "report", help="run the report notebooks into dated HTML (and PDF) pages",
        description="Run parameterised report notebooks with papermill and write <out>/<YYYY-MM-DD>/<report>.html "
                    "(no code), the executed notebooks, a manifest.json and, with --pdf, PDFs printed by headless "
                    "Chromium.",
        epilog="Example: python -m analytics report all --data data/sample --out reports -p payers ppo_gold,medicare")
    p.add_argument("report", choices=[*REPORTS, "all"], help="which report (all: every one)")
    p.add_argument("--data", type=Path, required=True, help="practice folder (service_lines.csv, payers.yaml, "
                                                            "remittances/)")
    p.add_argument("--out", type=Path, required=True, help="output folder; pages go to OUT/YYYY-MM-DD/")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a notebook parameter (repeatable); lists are comma-separated, dates YYYY-MM-DD")
    p.add_argument("--params", type=Path, metavar="FILE.yaml", help="parameters from a YAML mapping (-p wins)")
    p.add_argument("--period", help="previous-month, previous-quarter, YYYY, YYYY-MM or YYYY-Qn: sets period_start "
                                    "and period_end")
    p.add_argument("--pdf", action="store_true", help="also print each page to PDF with headless Chromium")
    p.add_argument("--notebooks", type=Path, help="folder of the report notebooks (default: notebooks/)")
    p.add_argument("--timeout", type=float, help="seconds a notebook cell may run (default: no limit)")
    p.set_defaults(func=_run_cli)


def main_job(data_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> int:
    """``report all`` on a practice folder; prints where the pages are. Returns the exit code."""
    result = reports.run_reports("all", data_dir, out_dir, echo=True)
    _summary(result)
    return 0 if result.ok else 1


def _summary(result: RunResult) -> None:
    if result.pages:
        print(f"\nReport pages: {result.folder.resolve()}/")
        for p in result.pages:
            print(f"  {p.resolve().as_uri()}")
    if any(r.outputs for r in result.reports):
        print(f"Tables (CSV) and charts (PNG): {result.folder / 'tables'}/, {result.folder / 'figures'}/")
    print(f"Manifest: {result.manifest}")
    if not result.ok:
        print(f"{len(result.failed)} report(s) failed: {', '.join(r.name for r in result.failed)}; see above.",
              file=sys.stderr)


def _read_params(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.exists():
        raise ParameterError(f"Parameter file {path} does not exist.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path} is not valid YAML: {exc}.") from None
    if not isinstance(data, Mapping):
        raise ParameterError(f"{path} must be a mapping of parameter name to value, e.g. 'as_of: 2026-03-31'.")
    return dict(data)


def _run_cli(args: argparse.Namespace) -> int:
    params = _read_params(args.params)
    params.update({name: value for name, value in args.parameter})
    result = reports.run_reports(args.report, args.data, args.out, parameters=params, period=args.period,
                                 pdf=args.pdf, notebooks_dir=args.notebooks, timeout=args.timeout, echo=True)
    _summary(result)
    return 0 if result.ok else 1
