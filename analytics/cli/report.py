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
from analytics.progress import Progress
from analytics.reports import COMPARE_CHOICES, REPORTS, RunResult

__all__ = ["register_cli", "main_job"]


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``report``: run report notebooks into dated HTML (and PDF) pages."""
    p = sub.add_parser(
        "report", help="run the report notebooks into dated HTML (and PDF) pages",
        description="Run parameterised report notebooks with papermill and write <out>/<period>/<report>.html "
                    "(no code), the executed notebooks, tables (CSV and tables.xlsx), charts (PNG and SVG), a "
                    "manifest.json and, with --pdf, PDFs printed by headless Chromium; --pack adds the client pack "
                    "(pack.html, pack.pdf). The period folder is named 2025-Q4, 2025-11, 2025 or FIRST_LAST date.",
        epilog="Examples: python -m analytics report all --data data/sample --out reports --period 2025-Q4 --pack "
               "-p title 'Quarterly review' -p prepared_by 'J. Doe'; python -m analytics report portfolio --data "
               "/srv/harbor --data /srv/elm --out reports --period 2025")
    p.add_argument("report", choices=[*REPORTS, "all", "portfolio"],
                   help="which report (all: every one; portfolio: several practices side by side)")
    p.add_argument("--data", type=Path, required=True, action="append",
                   help="practice folder (service_lines.csv, payers.yaml, remittances/); for portfolio, once per "
                        "practice")
    p.add_argument("--out", type=Path, required=True, help="output folder; pages go to OUT/<period>/")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a notebook parameter (repeatable); lists are comma-separated, dates YYYY-MM-DD")
    p.add_argument("--params", type=Path, metavar="FILE.yaml", help="parameters from a YAML mapping (-p wins)")
    p.add_argument("--period", help="previous-month, previous-quarter, YYYY, YYYY-MM or YYYY-Qn: sets period_start "
                                    "and period_end")
    p.add_argument("--pdf", action="store_true", help="also print each page to PDF with headless Chromium")
    p.add_argument("--pack", action="store_true",
                   help="also write the client pack: cover, contents, executive summary and every page, as "
                        "pack.html and pack.pdf (-p title, -p prepared_for, -p prepared_by go on the cover)")
    p.add_argument("--compare", choices=COMPARE_CHOICES, default="previous",
                   help="set the headline figures and denial rates against the previous period (default), the "
                        "same period last year, or nothing")
    p.add_argument("--notebooks", type=Path, help="folder of the report notebooks (default: notebooks/)")
    p.add_argument("--timeout", type=float, help="seconds a notebook cell may run (default: no limit)")
    p.add_argument("--no-cache", action="store_true",
                   help="read the practice afresh and keep nothing (default: reuse the on-disk cache)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR",
                   help="where the read practice is cached (default $ANALYTICS_CACHE_DIR, "
                        "else ~/.cache/massage-billing-analytics)")
    p.set_defaults(func=_run_cli)


def main_job(data_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> int:
    """``report all`` on a practice folder; prints where the pages are. Returns the exit code."""
    with Progress("report all", unit="reports", stage="reading the practice") as bar:
        result = reports.run_reports("all", data_dir, out_dir, echo=True, progress=bar)
    _summary(result)
    return 0 if result.ok else 1


def _summary(result: RunResult) -> None:
    if result.pages:
        print(f"\nReport pages: {result.folder.resolve()}/")
        for p in result.pages:
            print(f"  {p.resolve().as_uri()}")
    if any(r.outputs for r in result.reports):
        print(f"Tables (CSV) and charts (PNG, SVG): {result.folder / 'tables'}/, {result.folder / 'figures'}/")
    if result.workbook is not None:
        print(f"Spreadsheet of every table: {result.workbook}")
    if result.pack_pdf is not None:
        print(f"Client pack: {result.pack_pdf}, {result.pack_html}")
    for problem in result.problems:
        print(f"Not done: {problem}.", file=sys.stderr)
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
    if args.report == "portfolio":
        from analytics.portfolio import run_portfolio

        if args.pack:
            raise ParameterError("--pack makes the client pack of one practice; run it per practice, or leave it "
                                 "out of report portfolio.")
        result = run_portfolio(args.data, args.out, parameters=params, period=args.period, pdf=args.pdf,
                               notebooks_dir=args.notebooks, timeout=args.timeout, echo=True)
        _summary(result)
        return 0 if result.ok else 1
    if len(args.data) > 1:
        raise ParameterError(f"report {args.report} takes one --data folder ({len(args.data)} given); several "
                             "practices go side by side with: report portfolio --data DIR --data DIR.")
    with Progress(f"report {args.report}", unit="reports", stage="reading the practice") as bar:
        result = reports.run_reports(args.report, args.data[0], args.out, parameters=params, period=args.period,
                                     pdf=args.pdf, compare=args.compare, pack=args.pack,
                                     notebooks_dir=args.notebooks, timeout=args.timeout, echo=True,
                                     progress=bar, no_cache=args.no_cache, cache_dir=args.cache_dir)
    _summary(result)
    return 0 if result.ok else 1
