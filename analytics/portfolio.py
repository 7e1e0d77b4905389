"""Several practices side by side: a consultant's book of clients, in aggregates only.

``python -m analytics report portfolio --data A --data B ... --out OUT`` runs
``notebooks/portfolio.ipynb`` over the practice folders and writes ``portfolio.html`` (and
with ``--pdf`` ``portfolio.pdf``) into ``OUT/<period label>/`` (``OUT/<date>/`` without a
period), with its tables, charts, notebook, ``tables-portfolio.xlsx`` and the folder's
``manifest.json``, as a report run does (:mod:`analytics.reports`). The page shows:

* the headline figures of every practice side by side, each computed exactly as the
  practice's own revenue page computes them (same period, same as-of date);
* each payer's denial rate, practice by practice;
* each payer's percent of Medicare (what it paid per unit over the Medicare fee for the same
  codes and units at the practice's locality), practice by practice.

Each practice is named by ``practice.yaml`` (``practice:``), else by its folder. Nothing at
patient level reaches the page or its tables: only sums, counts and rates by practice and
payer; the privacy guard scans the page, notebook and tables for the identifiers of every
practice all the same.

Examples
--------
>>> book = load_portfolio(["data/sample", "/srv/other"])  # doctest: +SKIP
>>> book.figures[["practice", "figure", "value"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analytics import periods
from analytics._files import atomic_write, publish
from analytics.exceptions import InputError, ParameterError
from analytics.history import History, load_history
from analytics.kpis import HEADLINE_FIGURES, denials_by_payer, headline_figures, percent_of_medicare
from analytics.printing import Footer, Printer, find_chromium, missing_chromium

__all__ = ["Portfolio", "load_portfolio", "run_portfolio", "NOTEBOOK"]

NOTEBOOK = "portfolio.ipynb"
_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@dataclasses.dataclass(frozen=True)
class Portfolio:
    """Practices and their histories, each scoped to the period asked for (or its own)."""

    histories: Mapping[str, History]  # practice name -> history

    @property
    def practices(self) -> list[str]:
        return list(self.histories)

    @property
    def figures(self) -> pd.DataFrame:
        """Long form: ``practice, figure, label, unit, value, period_start, period_end, as_of``."""
        frames = [headline_figures(h).assign(practice=name, period_start=h.start.date().isoformat(),
                                             period_end=h.end.date().isoformat(), as_of=h.as_of.date().isoformat())
                  for name, h in self.histories.items()]  # the revenue page's own figures, per practice
        cols = ["practice", "figure", "label", "unit", "value", "period_start", "period_end", "as_of"]
        return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)

    def side_by_side(self) -> pd.DataFrame:
        """The headline figures with one column per practice (``figure, label, unit, <practice>...``)."""
        long = self.figures
        wide = long.pivot(index="figure", columns="practice", values="value")
        order = [k for k, _label, _unit in HEADLINE_FIGURES]
        out = pd.DataFrame({"figure": order, "label": [label for _k, label, _u in HEADLINE_FIGURES],
                            "unit": [u for _k, _l, u in HEADLINE_FIGURES]})
        for name in self.practices:
            out[name] = wide.loc[order, name].to_numpy(dtype=float)
        return out

    def denial_rates(self) -> pd.DataFrame:
        """Each payer's line denial rate, practice by practice (long form).

        Columns ``practice, payer_id, payer, lines, denied_lines, rate, low, high``.
        """
        frames = [denials_by_payer(h)[["payer_id", "payer", "lines", "denied_lines", "rate", "low", "high"]]
                  .assign(practice=name) for name, h in self.histories.items()]
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        cols = ["practice", "payer_id", "payer", "lines", "denied_lines", "rate", "low", "high"]
        return out[cols].sort_values(["payer", "practice"], kind="stable").reset_index(drop=True)

    def percent_of_medicare(self) -> pd.DataFrame:
        """Each payer's percent of Medicare over all codes, practice by practice (long form).

        Columns ``practice, payer_id, payer, lines, units, paid, medicare, pct_of_medicare``:
        paid (payer + patient) over the Medicare fee for the same lines, codes and units at
        the practice's locality (:func:`analytics.kpis.percent_of_medicare`).
        """
        frames = []
        for name, h in self.histories.items():
            per_code = percent_of_medicare(h)
            if per_code.empty:
                continue
            g = per_code.groupby(["payer_id", "payer"], sort=True).agg(
                lines=("lines", "sum"), units=("units", "sum"), paid=("paid", "sum"), medicare=("medicare", "sum"))
            frames.append(g.reset_index().assign(practice=name))
        cols = ["practice", "payer_id", "payer", "lines", "units", "paid", "medicare", "pct_of_medicare"]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
        out = pd.concat(frames, ignore_index=True)
        out["pct_of_medicare"] = out["paid"] / out["medicare"].where(out["medicare"] > 0)
        return out[cols].sort_values(["payer", "practice"], kind="stable").reset_index(drop=True)

    def wide(self, frame: pd.DataFrame, value: str) -> pd.DataFrame:
        """``frame`` (long form by practice and payer) with one ``value`` column per practice."""
        if frame.empty:
            return pd.DataFrame(columns=["payer", *self.practices])
        table = frame.pivot_table(index="payer", columns="practice", values=value, aggfunc="first", sort=True)
        table = table.reindex(columns=self.practices)
        if pd.api.types.is_integer_dtype(frame[value]):
            table = table.astype("Int64")
        return table.reset_index().rename_axis(columns=None)

    def periods_table(self) -> pd.DataFrame:
        """Each practice's period and as-of date (``practice, period_start, period_end, as_of``)."""
        return pd.DataFrame([(n, h.start.date().isoformat(), h.end.date().isoformat(), h.as_of.date().isoformat())
                             for n, h in self.histories.items()],
                            columns=["practice", "period_start", "period_end", "as_of"])


def load_portfolio(data_dirs: Sequence[str | os.PathLike[str]], *, start: Any = None, end: Any = None,
                   as_of: Any = None, cache_dir: str | os.PathLike[str] | None = None) -> Portfolio:
    """Read every practice folder and scope it to the period (each its own when none is given).

    Two folders with the same practice name are told apart by a number: ``Harbor (2)``.
    """
    histories: dict[str, History] = {}
    for d in data_dirs:
        h = load_history(d, cache_dir=cache_dir).select(start=start or None, end=end or None, as_of=as_of or None)
        base = h.practice_name or Path(d).resolve().name
        name, n = base, 2
        while name in histories:
            name, n = f"{base} ({n})", n + 1
        histories[name] = h
    return Portfolio(histories)


# ---------------------------------------------------------------------------------------
# The command: run the portfolio notebook into the period folder
# ---------------------------------------------------------------------------------------


def _folders(data_dirs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    if not data_dirs:
        raise ParameterError("Give the practice folders with --data DIR, once per practice (e.g. --data "
                             "/srv/harbor --data /srv/elm).")
    found = []
    for d in data_dirs:
        p = Path(d)
        if not p.is_dir():
            raise InputError(f"Data folder {p} does not exist. Pass --data with a practice folder that holds "
                             "service_lines.csv, payers.yaml and remittances/ (once per practice).")
        if p.resolve() in found:
            raise ParameterError(f"--data {p} is given twice; give each practice folder once.")
        found.append(p.resolve())
    return found


def _identifiers(folders: Sequence[Path]) -> Any:
    """The identifiers of every practice's inputs, to keep out of the page (None without the guard)."""
    try:
        from analytics import privacy
    except ImportError:
        return None
    found = privacy.Identifiers()
    for data in folders:
        export = next((data / f for f in ("service_lines.csv", "service_lines.parquet", "service_lines.xlsx")
                       if (data / f).exists()), None)
        if export is not None:
            found = found | privacy.identifiers_from_export(export)
        remit = data / "remittances"
        if remit.is_dir():
            found = found | privacy.identifiers_from_835(sorted(p for p in remit.iterdir() if p.is_file()))
    return found


def run_portfolio(
    data_dirs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    period: str | None = None,
    pdf: bool = False,
    notebooks_dir: str | os.PathLike[str] | None = None,
    date: dt.date | str | None = None,
    kernel_name: str = "python3",
    timeout: float | None = None,
    echo: bool = False,
):
    """Run the portfolio page over several practice folders (see the module's description).

    Parameters are those of :func:`analytics.reports.run_reports` that apply: ``period`` (or
    ``-p period_start`` / ``period_end``), ``as_of`` and ``title`` as parameters, ``pdf``,
    ``date`` (footer; folder name without a period), ``timeout`` per cell.

    Returns
    -------
    analytics.reports.RunResult
        With one report, ``portfolio``.
    """
    import papermill

    from analytics import reports, workbook

    folders = _folders(data_dirs)
    source = Path(notebooks_dir or _NOTEBOOKS) / NOTEBOOK
    if not source.exists():
        raise InputError(f"Portfolio notebook {source} not found. Pass --notebooks with the folder that holds it.")
    declared = reports.notebook_parameters(source)
    given = dict(parameters or {})
    allowed = set(declared) - {"data_dirs", "output_dir"}
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ParameterError(f"Unknown parameter(s) {unknown} for the portfolio; it knows "
                             f"{', '.join(sorted(allowed))} (the practices come from --data, once each).")
    today = (dt.date.fromisoformat(date) if isinstance(date, str) else date) or dt.date.today()
    if period:
        if {"period_start", "period_end"} & set(given):
            raise ParameterError("Give either --period or -p period_start/period_end, not both.")
        given["period_start"], given["period_end"] = periods.parse(period, today).as_text()
    params = {k: reports.coerce_parameter(declared[k], v, "portfolio") for k, v in given.items()}
    span = (periods.Period.of(params["period_start"], params["period_end"])
            if params.get("period_start") and params.get("period_end") else None)
    if pdf and find_chromium() is None:
        raise missing_chromium()
    folder = Path(out_dir) / (span.label if span is not None else today.isoformat())
    run_id = f"{dt.datetime.now():%H%M%S}-{os.getpid()}-{secrets.token_hex(2)}"
    run_dir = folder / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    started = reports.now()
    title = params.get("title") or declared["title"].default
    r = reports.ReportResult(name="portfolio", notebook=run_dir / "portfolio.ipynb", started=started, title=title)
    r.parameters = {**{k: p.default for k, p in declared.items()}, **params,
                    "data_dirs": [str(f) for f in folders]}
    kernel_params = {**params, "data_dirs": [str(f) for f in folders],
                     "output_dir": str((run_dir / "portfolio").resolve())}
    if echo:
        print(f"Reading {len(folders)} practice(s) ...", flush=True)
    t0 = time.perf_counter()
    try:
        papermill.execute_notebook(str(source), str(r.notebook), parameters=kernel_params, kernel_name=kernel_name,
                                   progress_bar=False, request_save_on_cell_execute=False, cwd=str(run_dir),
                                   execution_timeout=timeout, extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
        r.status = "ok"
    except papermill.PapermillExecutionError as exc:
        r.status, r.failed_cell = "failed", f"code cell {exc.exec_count}"
        r.error = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, timeout
        r.status, r.error = "failed", f"{type(exc).__name__}: {exc}"
    r.seconds = time.perf_counter() - t0
    problems: list[str] = []
    book_path = None
    if r.status == "ok":
        _publish_page(r, run_dir, folder, _identifiers(folders), today, span, pdf=pdf)
        if r.status == "ok":
            try:
                made = workbook.write_workbook(run_dir, ["portfolio"], run_dir / "tables-portfolio.xlsx")
                if made is not None:
                    book_path = publish(made, folder / "tables-portfolio.xlsx")
                    r.published["tables-portfolio.xlsx"] = reports.sha256_file(made)
            except Exception as exc:
                problems.append(f"tables-portfolio.xlsx was not written: {type(exc).__name__}: {exc}")
    r.finished = reports.now()
    if echo:
        if r.status == "ok":
            print(f"portfolio: ok in {r.seconds:.1f} s -> {r.html}" + (f", {r.pdf}" if r.pdf else ""))
        else:
            print(f"portfolio: {r.status}{' in ' + r.failed_cell if r.failed_cell else ''}: {r.error}.",
                  file=sys.stderr)
    from analytics import __version__

    manifest = {"run_id": run_id, "package_version": __version__, "python": sys.executable, "kernel": kernel_name,
                "data_dir": [str(f) for f in folders], "started": started, "finished": reports.now(),
                "status": "ok" if r.status == "ok" and not problems else "failed",
                "parameters": {k: v for k, v in given.items()},
                "inputs": {str(f): reports.hash_inputs(f) for f in folders},
                "reports": {"portfolio": r.as_dict(folder)}, "period": reports.period_entry(span),
                "date": today.isoformat(), "run_files": {}, "problems": problems,
                "workbook": None if book_path is None else book_path.name}
    atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=str))
    reports.merge_manifest(folder, manifest)
    return reports.RunResult(run_id=run_id, folder=folder, run_folder=run_dir, manifest=folder / "manifest.json",
                             reports=[r], period=span, workbook=book_path, problems=problems)


def _publish_page(r: Any, run_dir: Path, folder: Path, guard: Any, today: dt.date, span: periods.Period | None,
                  *, pdf: bool) -> None:
    """Page, privacy check, PDF and publication of the portfolio (as a report's page is published)."""
    from analytics import reports

    try:
        n = len(r.parameters.get("data_dirs") or [])
        footer = Footer(practice=f"Portfolio of {n} practice{'s' if n != 1 else ''}",
                        period=span.describe() if span is not None else "", report=r.title, date=today.isoformat())
        html = run_dir / "portfolio.html"
        html.write_text(reports.export_html(r.notebook, title=r.title, footer=footer))
        saved = sorted(p for p in (run_dir / "portfolio").rglob("*") if p.is_file()) \
            if (run_dir / "portfolio").is_dir() else []
        if guard is not None:
            from analytics import privacy

            found = privacy.scan_outputs([html, r.notebook, *saved], guard)
            if not found.empty:
                for f in (html, r.notebook, *saved):
                    f.unlink(missing_ok=True)
                r.status, r.notebook = "privacy", None
                r.error = (f"the page would show {len(found)} patient identifier(s) "
                           f"({', '.join(sorted(set(found['kind'])))}); nothing was published")
                return
        for src in saved:
            rel = src.relative_to(run_dir / "portfolio")
            dest = folder / rel.parts[0] / "portfolio" / Path(*rel.parts[1:])
            publish(src, dest)
            r.outputs[dest.relative_to(folder).as_posix()] = reports.sha256_file(src)
        r.html = publish(html, folder / "portfolio.html")
        publish(r.notebook, folder / "portfolio.ipynb")
        r.published.update(r.outputs)
        r.published.update({"portfolio.html": reports.sha256_file(html),
                            "portfolio.ipynb": reports.sha256_file(r.notebook)})
        if pdf:
            with Printer() as printer:
                made = printer.print_pdf(html, run_dir / "portfolio.pdf")
            r.pdf = publish(made, folder / "portfolio.pdf")
            r.published["portfolio.pdf"] = reports.sha256_file(made)
    except Exception as exc:
        r.status, r.error = "failed", f"{type(exc).__name__}: {exc}"
