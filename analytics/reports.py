"""The report pack: run the notebooks in ``notebooks/`` with papermill into HTML (and PDF) by period.

``python -m analytics report {revenue,denials,scenarios,contracts,all} --data DIR --out DIR
[-p NAME VALUE ...] [--params FILE.yaml] [--period PERIOD] [--pdf] [--pack] [--compare WHAT]``
executes each report's notebook with the parameters given, and writes into ``<out>/<period>/``
(the period's label: ``2025-Q4``, ``2025-11``, ``2025``, else ``FIRST_LAST`` date; see
:mod:`analytics.periods`), so runs for different periods never overwrite each other:

* ``<report>.html``: the page without code (nbconvert with inputs and prompts excluded,
  charts embedded as images, no scripts fetched from the internet), laid out for print with
  a footer on every printed page (:mod:`analytics.printing`);
* ``<report>.pdf`` with ``--pdf``: that page printed by headless Chromium (Debian package
  ``chromium``), for sending to clients;
* ``pack.html`` and ``pack.pdf`` with ``--pack``: the client pack, cover, contents, executive
  summary and every page, numbered throughout (:mod:`analytics.pack`);
* ``tables.xlsx``: every table of the run as a sheet (:mod:`analytics.workbook`);
* ``<report>.ipynb``: the executed notebook;
* ``tables/<report>/<name>.csv`` and ``figures/<report>/<name>.png`` (and ``.svg``): every
  table on the page, whole and unformatted, and every chart (see :func:`analytics.plots.save_table`);
* ``manifest.json``: the period; for each report, its parameters, the sha256 of every input
  file and of every table and chart, the package version, start and end time and status; and
  ``files``: every published file with its sha256 and the run that wrote it;
* ``runs/<run id>/``: everything one run made, with its own ``manifest.json``. A failed
  notebook stays here (the command names it and the failing cell); pages are published to
  the period folder only when their notebook ran through and the privacy guard passed.

The same inputs and parameters give the same bytes: tables, charts and the HTML page (table
element ids come from their content, not a random uuid).

Privacy: the identifiers in the inputs (names, member and patient ids, dates of birth) are
collected first; the page, the executed notebook and the tables of each report are scanned
for them before anything is published. A report that shows one is refused (exit 1): its
page, notebook and tables are deleted from the run folder too, and the command says which
cell shows which kind of identifier (masked), so nothing identifying stays on disk.

Runs into the same folder at the same time do not clobber each other: each works in its own
run folder and publishes each page by an atomic rename.

Parameters are checked before anything runs: a name no selected notebook declares, a date
that is not ``YYYY-MM-DD``, a payer neither in the data nor in ``payers.yaml``, a provider the
data lacks, an export without charge lines, or a missing data folder is an error with the fix
in the message (exit code 2). A notebook that fails makes the command exit 1. Parameters
every report understands: ``data_dir`` (from ``--data``), ``period_start``, ``period_end``,
``as_of``, ``payers``, ``providers``, ``fee_schedule_year``, ``locality``, ``practice_name``,
``title``. Unset period dates, as-of date and practice name are resolved
from the data once, so every page of a run shows the same period.

A monthly run from cron (06:00 on the 1st: last month's services, A/R as of that day, with
PDFs; ``%`` needs no escaping here because the period is a keyword)::

    0 6 1 * * cd /opt/massage-billing-analytics && .venv/bin/python -m analytics report all --data /srv/practice --out /srv/reports --period previous-month --pdf >> /srv/reports/cron.log 2>&1

Examples
--------
>>> result = run_reports(["revenue"], "data/sample", "reports")  # doctest: +SKIP
>>> result.ok, result.pages  # doctest: +SKIP
(True, [PosixPath('reports/2026-03-01/revenue.html')])
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from analytics import kernels, periods
from analytics._files import atomic_write as _atomic_write
from analytics._files import publish as _publish
from analytics.exceptions import InputError, ParameterError
from analytics.printing import (
    Footer,
    Printer,
    find_chromium,
    missing_chromium,
    page_css,
    print_pdf,
    screenshot,
)

if TYPE_CHECKING:  # served by __getattr__ at the end of this module
    from analytics.cli.report import main_job

__all__ = [
    "REPORTS",
    "STANDARD_PARAMETERS",
    "Parameter",
    "ReportResult",
    "RunResult",
    "notebook_parameters",
    "run_reports",
    "main_job",
    "export_html",
    "print_pdf",
    "screenshot",
    "find_chromium",
]

#: Report name -> notebook file under ``notebooks/``, in the order ``all`` runs them.
REPORTS: dict[str, str] = {
    "revenue": "revenue.ipynb",
    "denials": "denials.ipynb",
    "denial_risk": "denial_risk.ipynb",
    "scenarios": "coding_scenarios.ipynb",
    "contracts": "payer_contracts.ipynb",
}
#: Parameters every report notebook declares.
STANDARD_PARAMETERS = ("data_dir", "period_start", "period_end", "as_of", "payers", "providers",
                       "fee_schedule_year", "locality", "practice_name", "title")
# Reports that read the practice's history (the others only need data_dir for payers.yaml).
_HISTORY_REPORTS = frozenset({"revenue", "denials", "denial_risk", "contracts"})
_DATE_NAMES = frozenset({"period_start", "period_end", "as_of"})
_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: Parameters that name and address the client pack rather than a page (``-p title`` names the
#: pack when several reports run; each page keeps its own report name).
PACK_PARAMETERS = ("title", "prepared_for", "prepared_by")
#: ``--compare`` choices: the period the headline figures and denial rates are set against.
COMPARE_CHOICES = ("previous", "last-year", "none")
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*", re.IGNORECASE)


# ---------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One parameter a notebook declares in its ``parameters`` cell."""

    name: str
    type: str
    default: Any
    help: str = ""


def notebook_parameters(path: str | os.PathLike[str]) -> dict[str, Parameter]:
    """The parameters a notebook declares, by name, in declaration order.

    Read from the cell tagged ``parameters`` with Python's parser (``name: type = value  #
    help``), merged with :func:`papermill.inspect_notebook` (which skips a line whose
    comment holds an ``=``).

    Examples
    --------
    >>> sorted(notebook_parameters("notebooks/revenue.ipynb"))[:3]  # doctest: +SKIP
    ['as_of', 'data_dir', 'fee_schedule_year']
    """
    import nbformat
    import papermill

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise InputError(f"{path} has no cell tagged 'parameters'; tag the first code cell 'parameters'.")
    found: dict[str, Parameter] = {}
    lines = cell.source.splitlines()
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise InputError(f"The parameters cell of {path} is not valid Python ({exc.msg}, line {exc.lineno}).") from None
    for node in tree.body:
        targets: list[ast.expr] = []
        annotation = None
        if isinstance(node, ast.AnnAssign):
            targets, annotation, value = [node.target], node.annotation, node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        try:
            default = ast.literal_eval(value) if value is not None else None
        except ValueError:
            default = ast.unparse(value)
        type_name = ast.unparse(annotation) if annotation is not None else type(default).__name__
        comment = lines[node.end_lineno - 1].split("#", 1)[1].strip() if "#" in lines[node.end_lineno - 1] else ""
        for t in targets:
            if isinstance(t, ast.Name):
                found[t.id] = Parameter(t.id, type_name, default, comment)
    with contextlib.suppress(Exception):  # papermill only adds help where our reading found none
        for name, p in papermill.inspect_notebook(str(path)).items():
            if name in found and not found[name].help and p.get("help"):
                found[name] = dataclasses.replace(found[name], help=p["help"])
    return found


def _valid_date(name: str, value: Any, report: str | None = None) -> str:
    text = value.isoformat() if isinstance(value, _dt.date) else str(value).strip()
    if text == "":
        return text
    try:
        _dt.date.fromisoformat(text)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError("not in YYYY-MM-DD form")
    except ValueError as exc:
        where = f" (report {report})" if report else ""
        raise ParameterError(
            f"Parameter {name}{where} is {text!r}, which is not a valid date ({exc}). Write dates as YYYY-MM-DD, "
            f"e.g. {name} 2026-03-31."
        ) from None
    return text


def _coerce(param: Parameter, value: Any, report: str) -> Any:
    """``value`` (text from -p, or a YAML value) as the type the notebook declares."""
    kind = param.type.split("[")[0].strip().lower()
    name = param.name
    fix = f"Give {name} as {kind}" + (f" (help: {param.help})" if param.help else "") + "."
    try:
        if kind == "str":
            out = value.isoformat() if isinstance(value, _dt.date) else ("" if value is None else str(value))
        elif kind == "bool":
            if isinstance(value, bool):
                out = value
            elif str(value).strip().lower() in ("true", "yes", "y", "1", "on"):
                out = True
            elif str(value).strip().lower() in ("false", "no", "n", "0", "off"):
                out = False
            else:
                raise ValueError(value)
        elif kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            out = int(str(value).strip()) if not isinstance(value, int | float) else int(value)
        elif kind == "float":
            if isinstance(value, bool):
                raise ValueError(value)
            out = float(value)
        elif kind in ("list", "tuple"):
            if isinstance(value, str):
                text = value.strip()
                parsed = yaml.safe_load(text) if text.startswith("[") else None
                out = [str(v) for v in parsed] if isinstance(parsed, list) else [
                    v.strip() for v in text.split(",") if v.strip()]
            elif isinstance(value, list | tuple):
                out = [str(v) for v in value]
            elif value is None:
                out = []
            else:
                out = [str(value)]
        elif kind == "dict":
            out = yaml.safe_load(value) if isinstance(value, str) else value
            if not isinstance(out, dict):
                raise ValueError(value)
        else:
            out = yaml.safe_load(value) if isinstance(value, str) else value
    except (TypeError, ValueError, yaml.YAMLError):
        raise ParameterError(f"Parameter {name} of report {report} is {value!r}, not a {kind}. {fix}") from None
    if name in _DATE_NAMES or name.endswith("_date"):
        out = _valid_date(name, out, report)
    return out


def _period(keyword: str, today: _dt.date) -> tuple[str, str]:
    """``previous-month``, ``previous-quarter``, ``YYYY``, ``YYYY-MM`` or ``YYYY-Qn`` as two dates."""
    return periods.parse(keyword, today).as_text()


def _check_names(given: Mapping[str, Any], declared: Mapping[str, Mapping[str, Parameter]]) -> None:
    known = {n for params in declared.values() for n in params}
    unknown = sorted(set(given) - known)
    if "data_dir" in given:
        raise ParameterError("Give the data folder with --data DIR, not as a parameter.")
    if unknown:
        listing = "; ".join(f"{r}: {', '.join(sorted(p))}" for r, p in declared.items())
        raise ParameterError(
            f"Unknown parameter(s) {unknown} for report(s) {', '.join(declared)}. Known parameters - {listing}."
        )


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class ReportResult:
    """What happened to one report of a run."""

    name: str
    status: str = "pending"  # ok | failed | privacy | pending
    notebook: Path | None = None
    html: Path | None = None
    pdf: Path | None = None
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    started: str = ""
    finished: str = ""
    seconds: float = 0.0
    error: str = ""
    failed_cell: str = ""
    #: Published tables and charts: path relative to the period folder -> sha256.
    outputs: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The page's title (its report name in footers and in the pack's contents).
    title: str = ""
    #: Every file of this report published (page, PDF, notebook, tables, charts) -> sha256.
    published: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The executed notebook came from an earlier run with the same inputs (:mod:`analytics.page_cache`).
    cached: bool = False

    def as_dict(self, root: Path) -> dict[str, Any]:
        def rel(p: Path | None) -> str | None:
            return None if p is None else os.path.relpath(p, root)

        return {"status": self.status, "notebook": rel(self.notebook), "html": rel(self.html), "pdf": rel(self.pdf),
                "parameters": self.parameters, "started": self.started, "finished": self.finished,
                "seconds": round(self.seconds, 2), "error": self.error or None,
                "failed_cell": self.failed_cell or None, "outputs": dict(self.outputs), "title": self.title,
                "files": dict(self.published), "cached": self.cached}


@dataclasses.dataclass
class RunResult:
    """One run of the report pack."""

    run_id: str
    folder: Path  # <out>/<period label>
    run_folder: Path  # <out>/<period label>/runs/<run id>
    manifest: Path
    reports: list[ReportResult]
    period: periods.Period | None = None
    pack_html: Path | None = None
    pack_pdf: Path | None = None
    workbook: Path | None = None  # tables.xlsx
    #: What went wrong after the pages (the pack, the workbook), in words.
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.status == "ok" for r in self.reports) and not self.problems

    @property
    def pages(self) -> list[Path]:
        return [r.html for r in self.reports if r.html is not None]

    @property
    def failed(self) -> list[ReportResult]:
        return [r for r in self.reports if r.status != "ok"]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _input_sha256(path: Path) -> str:
    """An input's SHA-256, computed once per run (:func:`analytics.cache.file_digest`)."""
    from analytics.cache import file_digest

    return file_digest(path)


def _notebook_env(cache: Path, data: Path) -> dict[str, str]:
    """What every notebook of a run gets in its environment beside the runner's own: the cache
    folder, and the digests of the practice's inputs, so that no notebook hashes them again."""
    from analytics.cache import CACHE_ENV, DIGESTS_ENV, digests_for_children

    return {CACHE_ENV: str(cache), DIGESTS_ENV: digests_for_children(_input_files(data))}


def _input_files(data_dir: Path) -> list[Path]:
    files = [p for p in sorted(data_dir.iterdir()) if p.is_file() and not p.name.startswith(".")]
    remit = data_dir / "remittances"
    if remit.is_dir():
        files += [p for p in sorted(remit.iterdir()) if p.is_file() and not p.name.startswith(".")]
    return files


def _hash_inputs(data: Path) -> list[dict[str, Any]]:
    return [{"path": os.path.relpath(p, data), "sha256": _input_sha256(p), "bytes": p.stat().st_size}
            for p in _input_files(data)]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------
# HTML, PDF and screenshots
# ---------------------------------------------------------------------------------------


_EXPORTERS = threading.local()


def export_html(notebook: str | os.PathLike[str], *, title: str | None = None, footer: Footer | None = None) -> str:
    """The executed notebook as an HTML page without code, laid out for print.

    Inputs and prompts are excluded (``nbconvert --no-input``), charts are embedded as
    PNG data, stderr streams (warnings) are left out, and scripts the template would fetch
    from the internet (require.js, MathJax) are dropped, so the page opens offline and
    makes no third-party requests. The page carries its print layout
    (:func:`analytics.printing.page_css`), with ``footer`` on every printed page.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell["id"] = "injected-parameters"  # papermill draws a random id; the page keeps a fixed one
    exporter = getattr(_EXPORTERS, "html", None)
    if exporter is None:  # one per thread: building one compiles its templates again
        exporter = _EXPORTERS.html = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                                                  exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or Path(notebook).stem}})
    return _REMOTE_SCRIPT.sub("", body).replace("</head>", page_css(footer) + "</head>", 1)


# ---------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------


def _selected(reports: str | Iterable[str]) -> list[str]:
    names = [reports] if isinstance(reports, str) else list(reports)
    if "all" in names:
        return list(REPORTS)
    unknown = [n for n in names if n not in REPORTS]
    if unknown or not names:
        raise ParameterError(f"Unknown report(s) {unknown}; choose from {', '.join(REPORTS)} or all.")
    return list(dict.fromkeys(names))


def _failed_cell(notebook: Path) -> tuple[str, str]:
    """(cell label, error text) of the first cell with an error output in an executed notebook."""
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception:  # the notebook was not written: the kernel died before it could be
        return "", ""
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            continue
        number += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
                label = f"cell {cell.get('id', '?')!r} (code cell {number}: {first[:80]})"
                return label, f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"
    return "", ""


_ENGINE = "analytics"
_POLL_SECONDS = 0.5


def _register_engine() -> str:
    """Register (once) the papermill engine the runner uses, and return its name.

    It is papermill's nbclient engine with three changes. The kernel gets its environment from
    ``kernel_env=`` (one report's output folder, one run's cache), not from ``os.environ``,
    which threads share. The kernel client waits for a message in short polls instead of one
    long one. A long poll can miss the socket's wake-up and sit
    until its timeout, or for ever without one, although the reply has arrived (seen with
    widget cells; jupyter/nbclient#312, jupyter/nbconvert#2029). Re-polling every half
    second finds the waiting message, so a cell costs its own run time and nothing more.
    """
    from jupyter_core.utils import run_sync
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    if _ENGINE in papermill_engines._engines:
        return _ENGINE

    def polled(get_msg):
        async def get(timeout: float | None = None):
            from queue import Empty

            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                wait = _POLL_SECONDS if deadline is None else max(0.0, min(_POLL_SECONDS,
                                                                           deadline - time.monotonic()))
                try:
                    return await get_msg(timeout=wait)
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

        return get

    class Client(PapermillNotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            for channel in (kc.shell_channel, kc.iopub_channel):
                channel.get_msg = polled(channel.get_msg)
            return kc

        # nbclient binds the blocking twin to its own coroutine; bind it to ours
        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    class Engine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            env = kwargs.pop("kernel_env", None)
            cwd = kwargs.pop("kernel_cwd", None)
            manager = kwargs.pop("kernel_manager", None)
            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            if manager is not None:  # a kernel forked from the preloader (analytics.kernels)
                kwargs["kernel_manager_class"] = manager
            final = merge_kwargs(kwargs, timeout=execution_timeout, startup_timeout=start_timeout,
                                 kernel_name=kernel_name, log=logger, log_output=log_output, stdout_file=stdout_file,
                                 stderr_file=stderr_file)
            # the kernel's own environment: runs in parallel threads must not share os.environ
            # and its own working folder: papermill's cwd= changes the folder of the whole process,
            # which threads running notebooks in parallel would undo for one another
            start = {**({} if env is None else {"env": env}), **({} if cwd is None else {"cwd": cwd})}
            return Client(nb_man, **final).execute(**start)

    papermill_engines.register(_ENGINE, Engine)
    return _ENGINE


def _thread_loop() -> asyncio.AbstractEventLoop | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        return None


@contextlib.contextmanager
def _closing_thread_loop() -> Iterator[None]:
    """Close the event loop papermill's client leaves behind in a worker thread.

    jupyter_core makes one loop per thread and never closes it; in a worker thread (runs in
    parallel) the loop would be dropped unclosed when the thread ends.
    """
    if threading.current_thread() is threading.main_thread():
        yield
        return
    before = _thread_loop()
    try:
        yield
    finally:
        after = _thread_loop()
        if after is not None and after is not before and not after.is_running():
            after.close()
            asyncio.set_event_loop(None)


#: Times a report's kernel is started before its report fails: a kernel can die before it
#: answers (jupyter_client picks its ports free, and another process may take one before the
#: kernel binds it: "Address already in use"); no cell has run then, so starting it again is safe.
KERNEL_START_ATTEMPTS = 3


def _died_starting(exc: BaseException) -> bool:
    """Whether ``exc`` is jupyter_client's word for a kernel that died before its first reply."""
    return isinstance(exc, RuntimeError) and str(exc).startswith("Kernel died before replying to kernel_info")


def _run_one(name: str, source: Path, params: dict[str, Any], *, run_dir: Path, kernel_name: str,
             progress: bool, timeout: float | None, env: Mapping[str, str], kept: Callable[..., bool],
             manager: type | None = None) -> ReportResult:
    result = ReportResult(name=name, parameters=params, notebook=run_dir / f"{name}.ipynb", started=_now())
    t0 = time.perf_counter()
    if kept(result.notebook, run_dir / name):  # the same inputs, parameters and code ran before
        result.status, result.cached = "ok", True
        result.seconds, result.finished = time.perf_counter() - t0, _now()
        return result
    import papermill

    from analytics.plots import OUTPUT_ENV

    # absolute: the kernel runs in run_dir, so a relative path would be taken from there
    kernel_env = {**os.environ, **env, OUTPUT_ENV: str((run_dir / name).resolve())}
    try:
        for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
            try:
                # The kernel's own log (transport notices, the interrupt at shutdown) is noise in a
                # cron mail; what a cell does wrong is in the executed notebook.
                with _closing_thread_loop():
                    papermill.execute_notebook(
                        str(source), str(result.notebook), parameters=params, kernel_name=kernel_name,
                        engine_name=_register_engine(), progress_bar=progress, request_save_on_cell_execute=False,
                        kernel_cwd=str(run_dir.resolve()), execution_timeout=timeout,
                        extra_arguments=["--IPKernelApp.log_level=CRITICAL"], kernel_env=kernel_env,
                        kernel_manager=manager,
                    )
                break
            except RuntimeError as exc:
                if not _died_starting(exc) or attempt == KERNEL_START_ATTEMPTS:
                    raise
        result.status = "ok"
    except papermill.PapermillExecutionError as exc:
        result.status = "failed"
        cell, error = _failed_cell(result.notebook)
        result.failed_cell = cell or f"code cell {exc.exec_count}"
        result.error = error or f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, timeout, unreadable notebook
        result.status = "failed"
        result.error = f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - t0
    result.finished = _now()
    return result


def _progress_hooks(progress: Any, n_reports: int) -> tuple[Callable[..., None] | None, bool]:
    """(callback, papermill's bars): a callback (an :class:`analytics.progress.Progress`) is
    stepped once per finished report and replaces papermill's per-notebook bars."""
    if callable(progress):
        progress(0, stage="running the notebooks", total=n_reports)
        return progress, False
    return None, sys.stderr.isatty() if progress is None else bool(progress)


def _report_done(result: ReportResult, echo: bool, tick: Callable[..., None] | None) -> None:
    if echo:
        _echo(result)
    if tick is not None:
        tick(1, stage=f"{result.name} {result.status}")


def run_reports(
    reports: str | Iterable[str],
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    period: str | None = None,
    pdf: bool = False,
    compare: str = "previous",
    pack: bool = False,
    notebooks_dir: str | os.PathLike[str] | None = None,
    date: _dt.date | str | None = None,
    kernel_name: str = "python3",
    progress: bool | Callable[..., None] | None = None,
    timeout: float | None = None,
    echo: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    no_cache: bool = False,
    workers: int | None = None,
) -> RunResult:
    """Run report notebooks into ``<out_dir>/<period label>/`` (HTML, optional PDF, notebooks).

    The folder is named by the period (:func:`analytics.periods.label`; by ``date`` for a run
    without one); every run also writes ``tables.xlsx`` (:mod:`analytics.workbook`).

    Parameters
    ----------
    reports
        ``"all"`` or names from :data:`REPORTS` (``revenue``, ``denials``, ``scenarios``,
        ``contracts``).
    data_dir
        The practice folder (``service_lines.csv``, ``payers.yaml``, ``remittances/``).
    out_dir
        Where the dated folders go.
    parameters
        Notebook parameters by name: text (as from ``-p NAME VALUE``) or typed values (as
        from a YAML file); each is converted to the type the notebook declares.
    period
        ``previous-month``, ``previous-quarter``, ``YYYY``, ``YYYY-MM`` or ``YYYY-Qn``: sets
        ``period_start`` and ``period_end`` (relative to ``date``).
    pdf
        Also print each page to PDF with headless Chromium.
    compare
        ``previous``, ``last-year`` or ``none`` (:mod:`analytics.comparisons`).
    pack
        Also write the client pack (:mod:`analytics.pack`; its cover: :data:`PACK_PARAMETERS`).
    notebooks_dir
        Folder of the notebooks (default: ``notebooks/`` beside the package).
    date
        The run's date (default: today): footers, ``previous-month``, a folder without a period.
    kernel_name
        Jupyter kernel; ``python3`` runs the interpreter running this function.
    progress
        Show papermill's bars (default: on a terminal); or a callback, stepped per report.
    timeout
        Seconds a cell may run (default: no limit).
    echo
        Print one line per report as it finishes.
    cache_dir, no_cache
        The cache of the practice read (:mod:`analytics.cache`), read by every notebook and
        later run; ``no_cache`` (or ``ANALYTICS_NO_CACHE=1``) keeps nothing after the run.
    workers
        Notebooks run at the same time (default: the cores available).

    Raises
    ------
    InputError, ParameterError
        Before running anything: a missing data folder or notebook, an unknown parameter, a
        malformed date, a payer neither in the data nor in ``payers.yaml``, a provider the data
        lacks, an export without charge lines.
    """
    names = _selected(reports)
    data = Path(data_dir)
    if not data.is_dir():
        raise InputError(
            f"Data folder {data} does not exist. Pass --data with the practice folder that holds "
            "service_lines.csv, payers.yaml and remittances/ (e.g. --data data/sample)."
        )
    data = data.resolve()
    from analytics.privacy import resolve_key

    # the manifest names the pseudonym key by its fingerprint, never the key; resolved before any
    # notebook runs, so a key file and ANALYTICS_PRACTICE_KEY that differ stop the run at once
    pseudonym_key = resolve_key(near=[data]).describe()
    sources = _sources(names, notebooks_dir)
    declared = {n: notebook_parameters(p) for n, p in sources.items()}
    given = dict(parameters or {})
    cover = _cover_parameters(given, names, pack=pack, compare=compare)
    _check_names(given, declared)
    today = (_dt.date.fromisoformat(date) if isinstance(date, str) else date) or _dt.date.today()
    _given_period(given, period, today)
    _check_fee_schedule(given)
    if (pdf or pack) and find_chromium() is None:
        raise missing_chromium()

    run_id = f"{_dt.datetime.now():%H%M%S}-{os.getpid()}-{secrets.token_hex(2)}"
    started = _now()
    # Hashing the inputs and collecting the identifiers to guard against run beside the history
    # load and the notebooks, which run at the same time (pages are finished in report order).
    cache, temporary = _report_cache(cache_dir, no_cache)
    manager = kernels.manager_class(kernel_name, _preloads(names))  # started now: it imports while the practice is read
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="report-inputs")
    notebooks = _kernel_pool(len(names), workers)
    try:
        hashing = pool.submit(_hash_inputs, data)
        guarding = pool.submit(_privacy_guard, data)
        if echo:
            print(f"Reading the practice in {data} ...", flush=True)
        common = _resolve(names, data, given, cache)
        # absolute: notebooks run in threads, and papermill's path handling is shared by them
        span, folder, run_dir = _run_folders(Path(out_dir).absolute(), {**common, **given}, today, run_id)
        per_report = {n: _report_parameters(n, declared[n], common, given, data, compare) for n in names}
        pages = _page_cache(cache, data, temporary)
        keys = {n: pages.key(sources[n], per_report[n], kernel_name) if pages else "" for n in names}
        tick, show_progress = _progress_hooks(progress, len(names))
        results = []
        run = functools.partial(_run_one, run_dir=run_dir, kernel_name=kernel_name, progress=show_progress,
                                timeout=timeout, env=_notebook_env(cache, data), manager=manager)
        running = {n: notebooks.submit(run, n, sources[n], per_report[n], kept=_kept(pages, keys[n])) for n in names}
        for n in names:
            r = running[n].result()
            # the manifest records every parameter the notebook ran with, defaults included
            r.parameters = {**{k: p.default for k, p in declared[n].items()}, **per_report[n]}
            if r.status == "ok":
                default = declared[n].get("title")
                title = per_report[n].get("title") or (default.default if default else None)
                _finish(r, run_dir, folder, pdf=pdf, guard=guarding.result(), title=title, date=today)
                if pages and r.status == "ok" and not r.cached:  # only a page the privacy guard passed
                    pages.keep(keys[n], r.notebook, run_dir / n)
            else:
                _guard_failed(r, run_dir, guarding.result())
            results.append(r)
            _report_done(r, echo, tick)
        extras = _after_pages(results, run_dir, folder, pdf=pdf, pack=cover if pack else None,
                              guard=guarding.result(), date=today, echo=echo, compare=compare)
        inputs = hashing.result()
    finally:
        notebooks.shutdown(wait=True, cancel_futures=True)
        pool.shutdown(wait=False, cancel_futures=True)
        if temporary:
            shutil.rmtree(cache, ignore_errors=True)
    return _write_manifests(run_dir, folder, results, span, extras, {
        "run_id": run_id, "python": sys.executable, "kernel": kernel_name,
        "data_dir": str(data), "started": started, "finished": _now(),
        "status": "ok" if all(r.status == "ok" for r in results) else "failed",
        "parameters": {k: v for k, v in given.items()}, "inputs": inputs,
        "reports": {r.name: r.as_dict(folder) for r in results},
        "period": _period_entry(span), "date": today.isoformat(), "compare": compare, **extras.manifest(folder),
        "pseudonym_key": pseudonym_key,
    })


def _report_parameters(name: str, declared: Mapping[str, Parameter], common: Mapping[str, Any],
                       given: Mapping[str, Any], data: Path, compare: str) -> dict[str, Any]:
    """One notebook's parameters: the run's, converted to the types the notebook declares."""
    params = {k: _coerce(declared[k], v, name) for k, v in {**common, **given}.items() if k in declared}
    params["data_dir"] = str(data)
    if "compare" in declared:
        params["compare"] = compare
    return params


def _report_cache(cache_dir: str | os.PathLike[str] | None, no_cache: bool) -> tuple[Path, bool]:
    """The cache folder the run's notebooks share (:mod:`analytics.cache`), and whether it is temporary.

    Without the cache (``--no-cache``, ``ANALYTICS_NO_CACHE=1``) the notebooks still read the
    practice once, through a private folder (0700) removed when the run ends.
    """
    from analytics.cache import cache_disabled, default_cache_dir

    if no_cache or cache_disabled():
        return Path(tempfile.mkdtemp(prefix="analytics-report-")), True
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()), False


def _sources(names: Sequence[str], notebooks_dir: str | os.PathLike[str] | None) -> dict[str, Path]:
    """Each report's notebook, from ``--notebooks`` or the notebooks beside the package."""
    nb_dir = Path(notebooks_dir).absolute() if notebooks_dir is not None else _NOTEBOOKS
    sources = {n: nb_dir / REPORTS[n] for n in names}
    missing = [str(p) for p in sources.values() if not p.exists()]
    if missing:
        raise InputError(f"Report notebook(s) not found: {', '.join(missing)}. Pass --notebooks with the folder "
                         "that holds them.")
    return sources


def _kept(pages: Any, key: str) -> Callable[[Path, Path], bool]:
    """Restores a report's executed notebook from an earlier run, if there is one to reuse."""
    return functools.partial(pages.restore, key) if pages else (lambda notebook, saved: False)


def _page_cache(cache: Path, data: Path, temporary: bool) -> Any:
    """Executed notebooks of earlier runs (:mod:`analytics.page_cache`); none without the cache."""
    if temporary:
        return None
    from analytics.page_cache import PageCache

    try:
        return PageCache.for_practice(cache, data)
    except InputError:  # a folder without an export (a scenarios page alone): nothing to key it by
        return None


def _kernel_pool(reports: int, workers: int | None) -> ThreadPoolExecutor:
    """Threads that run the notebooks at the same time: one kernel per available core by default."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return ThreadPoolExecutor(max_workers=max(1, min(reports, workers or cores)), thread_name_prefix="report-kernel")


def _check_fee_schedule(given: Mapping[str, Any]) -> None:
    """A locality or fee-schedule year the reference data lacks fails now, not in a notebook."""
    if not given.get("locality") and not given.get("fee_schedule_year"):
        return
    from analytics.onboarding import check_locality
    from analytics.refdata import load_reference

    ref = load_reference()
    if str(given.get("locality") or "").strip():
        check_locality(given["locality"], where="-p locality", reference=ref)
    year = given.get("fee_schedule_year")
    if year not in (None, "", 0, "0"):
        try:
            year_ = int(str(year).strip())
        except ValueError:
            raise ParameterError(f"fee_schedule_year {year!r} is not a year; give e.g. 2026, or 0 for the year "
                                 "of service.") from None
        years = sorted(set(ref.rvu["year"]) & set(ref.gpci["year"]) & set(ref.conversion_factors["year"]))
        if year_ not in years:
            raise ParameterError(f"No Medicare fee schedule for {year_} in the reference data (it has "
                                 f"{', '.join(map(str, years))}); give one of those, or 0 for the year of service.")


def _resolve(names: Sequence[str], data: Path, given: dict[str, Any], cache: Path) -> dict[str, Any]:
    """Period, as-of date and practice name from the data, so every page of a run agrees.

    Also checks the payers and providers asked for against the data, before any notebook runs.
    """
    from analytics import kpis
    from analytics.onboarding import check_practice_settings

    # One locality for every page of the run (contract prices, the Medicare benchmark, the
    # scenarios): -p locality, else practice.yaml's; "" leaves each payer at its own. A bad one in
    # practice.yaml stops the run here, naming the file, before any notebook runs.
    settings = check_practice_settings(data)
    run = {"locality": str(settings.get("locality") or "")}
    if not _HISTORY_REPORTS & set(names):  # the practice's name still comes from practice.yaml
        name = kpis.practice_name(data)
        return {**run, "practice_name": name} if name else run

    history = kpis.load_history(data, cache_dir=cache)
    if _as_list(given.get("payers")):  # -p payers Medicare: a name or alias stands for its payer id
        from analytics.payers import resolve_payer

        given["payers"] = [resolve_payer(p, history.payers) or p for p in _as_list(given["payers"])]
    scoped = history.select(start=given.get("period_start") or None, end=given.get("period_end") or None,
                            as_of=given.get("as_of") or None,
                            payers=_as_list(given.get("payers")), providers=_as_list(given.get("providers")))
    return {**run, "period_start": scoped.start.date().isoformat(), "period_end": scoped.end.date().isoformat(),
            "as_of": scoped.as_of.date().isoformat(), "practice_name": history.practice_name}


def _preloads(names: Sequence[str]) -> tuple[str, ...]:
    """Modules the kernel preloader imports for these reports besides its own list: what the
    pages that fit the learned denial risk import (:data:`analytics.kernels.LEARNED_RISK`)."""
    return kernels.LEARNED_RISK if {"denial_risk", "scenarios"} & set(names) else ()


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        parsed = yaml.safe_load(value) if value.strip().startswith("[") else None
        return [str(v) for v in parsed] if isinstance(parsed, list) else [v.strip() for v in value.split(",")
                                                                           if v.strip()]
    return [str(v) for v in value]


def _privacy_guard(data: Path):
    """Identifiers to keep out of the pages (None when the privacy module is absent)."""
    try:
        from analytics import privacy
    except ImportError:
        return None
    # ids, names, dates of birth of the export and the 835s; payer, provider and practice names
    # are kept apart, as words a page may show
    return privacy.identifiers_from_folder(data)


def _report_outputs(run_dir: Path, name: str) -> list[Path]:
    """Tables and charts one report saved in its run folder, in a stable order."""
    base = run_dir / name
    return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith(".")) if base.is_dir() else []


def _finish(r: ReportResult, run_dir: Path, folder: Path, *, pdf: bool, guard: Any, title: str | None,
            date: _dt.date | None = None) -> None:
    """Write the page, check it and the tables for identifiers, publish into the period folder.

    The PDF (``pdf``) is printed after the last page of the run, by one browser for all
    (:func:`_after_pages`).
    """
    try:
        r.title = title or r.name
        html = run_dir / f"{r.name}.html"
        html.write_text(export_html(r.notebook, title=r.title, footer=page_footer(r.parameters, r.title, date)))
        saved = _report_outputs(run_dir, r.name)
        if guard is not None and _refused(r, run_dir, guard, [html, r.notebook, *saved]):
            return
        for src in saved:  # tables and charts first: a published page never points at missing ones
            rel = src.relative_to(run_dir / r.name)
            dest = folder / rel.parts[0] / r.name / Path(*rel.parts[1:])
            _publish(src, dest)
            r.outputs[dest.relative_to(folder).as_posix()] = _sha256(src)
        r.html = _publish(html, folder / f"{r.name}.html")
        _publish(r.notebook, folder / f"{r.name}.ipynb")
        r.published.update(r.outputs)
        r.published[f"{r.name}.html"] = _sha256(html)
        r.published[f"{r.name}.ipynb"] = _sha256(r.notebook)
    except Exception as exc:
        r.status = "failed"
        r.error = f"{type(exc).__name__}: {exc}"
    finally:
        r.finished = _now()


def page_footer(parameters: Mapping[str, Any], title: str, date: _dt.date | str | None) -> Footer:
    """The printed footer of a page: practice, period, report name and the run's date."""
    start, end = parameters.get("period_start"), parameters.get("period_end")
    try:
        period = periods.Period.of(start, end).describe() if start and end else ""
    except (ValueError, ParameterError):
        period = f"{start} to {end}"
    day = date.isoformat() if isinstance(date, _dt.date) else str(date or _dt.date.today().isoformat())
    return Footer(practice=str(parameters.get("practice_name") or ""), period=period, report=title, date=day)


def _cover_parameters(given: dict[str, Any], names: Sequence[str], *, pack: bool, compare: str) -> dict[str, Any]:
    """Take the pack's own parameters out of ``given`` (they name no notebook parameter).

    ``title`` names the pack when the run has one or runs several reports (each page then
    keeps its own report name); with a single report and no pack it stays the page's title.
    ``compare`` is checked here too.
    """
    if compare not in COMPARE_CHOICES:
        raise ParameterError(f"--compare {compare!r} is not one of {', '.join(COMPARE_CHOICES)}; e.g. --compare "
                             "previous.")
    cover = {k: given.pop(k) for k in ("prepared_for", "prepared_by") if k in given}
    if cover and not pack:
        raise ParameterError(f"{' and '.join(sorted(cover))} go on the cover of the client pack: add --pack, or "
                             "leave them out.")
    if "title" in given and (pack or len(names) > 1):
        cover["title"] = given.pop("title")
    return cover


def _given_period(given: dict[str, Any], period: str | None, today: _dt.date) -> None:
    """Set ``period_start``/``period_end`` from ``--period`` and check the dates given."""
    if period:
        if {"period_start", "period_end"} & set(given):
            raise ParameterError("Give either --period or -p period_start/period_end, not both.")
        given["period_start"], given["period_end"] = _period(period, today)
    for n in _DATE_NAMES & set(given):
        given[n] = _valid_date(n, given[n])
    if given.get("period_start") and given.get("period_end") and given["period_start"] > given["period_end"]:
        raise ParameterError(f"period_start {given['period_start']} is after period_end {given['period_end']}; "
                             "swap them.")


def _run_folders(out: Path, params: Mapping[str, Any], today: _dt.date,
                 run_id: str) -> tuple[periods.Period | None, Path, Path]:
    """The period of the run, its folder ``OUT/<period label>/`` (``OUT/<date>/`` without one) and run folder."""
    span = _run_period(params)
    folder = out / (span.label if span is not None else today.isoformat())
    run_dir = folder / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return span, folder, run_dir


def _run_period(params: Mapping[str, Any]) -> periods.Period | None:
    """The period the run's pages cover (resolved from the data or given), if there is one."""
    start, end = params.get("period_start"), params.get("period_end")
    if not start or not end:
        return None
    return periods.Period.of(start, end)


def _write_manifests(run_dir: Path, folder: Path, results: list[ReportResult], span: periods.Period | None,
                     extras: _Extras, manifest: Mapping[str, Any]) -> RunResult:
    """The run's own ``manifest.json``, folded into the period folder's; the run's result."""
    from analytics import __version__

    manifest = {"run_id": manifest["run_id"], "package_version": __version__, **manifest}
    _atomic_write(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=str))
    _merge_manifest(folder, manifest)
    return RunResult(run_id=manifest["run_id"], folder=folder, run_folder=run_dir, manifest=folder / "manifest.json",
                     reports=results, period=span, pack_html=extras.pack_html, pack_pdf=extras.pack_pdf,
                     workbook=extras.workbook, problems=extras.problems)


def _period_entry(span: periods.Period | None) -> dict[str, Any] | None:
    if span is None:
        return None
    return {"label": span.label, "start": span.start.isoformat(), "end": span.end.isoformat(),
            "description": span.describe()}


@dataclasses.dataclass
class _Extras:
    """What a run made after its pages: PDFs, the client pack, the workbook."""

    pack_html: Path | None = None
    pack_pdf: Path | None = None
    workbook: Path | None = None
    published: dict[str, str] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)

    def manifest(self, folder: Path) -> dict[str, Any]:
        def rel(p: Path | None) -> str | None:
            return None if p is None else os.path.relpath(p, folder)

        return {"pack": {"html": rel(self.pack_html), "pdf": rel(self.pack_pdf)} if self.pack_html else None,
                "workbook": rel(self.workbook), "run_files": dict(self.published), "problems": list(self.problems)}


def _after_pages(results: Sequence[ReportResult], run_dir: Path, folder: Path, *, pdf: bool,
                 pack: Mapping[str, Any] | None, guard: Any, date: _dt.date, echo: bool,
                 compare: str = "previous") -> _Extras:
    """Print the pages to PDF (one browser for the run), write the pack, then the workbook."""
    extras = _Extras()
    done = [r for r in results if r.status == "ok"]
    if pdf or pack is not None:
        with Printer() as printer:
            if pdf:
                for r in done:
                    _print_page(r, run_dir, folder, printer, echo=echo)
            if pack is not None:
                _write_pack(extras, results, run_dir, folder, cover=pack, guard=guard, date=date, echo=echo,
                            printer=printer, compare=compare)
    from analytics import workbook

    try:
        names = [r.name for r in results if r.status == "ok"] + (["pack"] if extras.pack_html else [])
        book = workbook.write_workbook(run_dir, names, run_dir / "tables.xlsx")
        if book is not None:
            extras.workbook = _publish(book, folder / "tables.xlsx")
            extras.published["tables.xlsx"] = _sha256(book)
    except Exception as exc:
        extras.problems.append(f"tables.xlsx was not written: {type(exc).__name__}: {exc}")
    return extras


def _print_page(r: ReportResult, run_dir: Path, folder: Path, printer: Printer, *, echo: bool) -> None:
    try:
        pdf_path = printer.print_pdf(run_dir / f"{r.name}.html", run_dir / f"{r.name}.pdf")
        r.pdf = _publish(pdf_path, folder / f"{r.name}.pdf")
        r.published[f"{r.name}.pdf"] = _sha256(pdf_path)
        if echo:
            print(f"{r.name}: PDF -> {r.pdf}")
    except Exception as exc:
        r.status, r.error = "failed", f"the PDF was not printed: {type(exc).__name__}: {exc}"
        if echo:
            _echo(r)


def _write_pack(extras: _Extras, results: Sequence[ReportResult], run_dir: Path, folder: Path, *,
                cover: Mapping[str, Any], guard: Any, date: _dt.date, echo: bool, printer: Printer,
                compare: str) -> None:
    """Build the client pack from the run's pages, check it for identifiers, publish it."""
    from analytics.pack import build_pack

    try:
        made = build_pack([r for r in results if r.status == "ok"], run_dir, cover=cover, date=date,
                          failed=[r.name for r in results if r.status != "ok"], printer=printer, compare=compare)
        if guard is not None:
            from analytics import privacy

            found = privacy.scan_outputs([made.html, *made.tables], guard)
            if not found.empty:
                for f in (made.html, made.pdf, *made.tables):
                    f.unlink(missing_ok=True)
                raise InputError(f"the pack would show {len(found)} patient identifier(s) "
                                 f"({', '.join(sorted(set(found['kind'])))}); it was deleted")
        for table in made.tables:
            rel = Path("tables") / "pack" / table.name
            _publish(table, folder / rel)
            extras.published[rel.as_posix()] = _sha256(table)
        extras.pack_html = _publish(made.html, folder / "pack.html")
        extras.pack_pdf = _publish(made.pdf, folder / "pack.pdf")
        extras.published.update({"pack.html": _sha256(made.html), "pack.pdf": _sha256(made.pdf)})
        if echo:
            print(f"pack: {made.pages} pages -> {extras.pack_pdf}, {extras.pack_html}")
    except Exception as exc:
        extras.problems.append(f"the client pack was not written: {type(exc).__name__}: {exc}")


def _refused(r: ReportResult, run_dir: Path, guard: Any, files: Sequence[Path]) -> bool:
    """Run the privacy guard over one report's files; on a find, delete them and say where.

    The message names the cells (by number and first line) and the kinds of identifier,
    with values masked; the files themselves are removed from the run folder, so the
    identifying text is nowhere on disk after the run.
    """
    from analytics import privacy

    matcher = privacy.Matcher(guard)
    found = privacy.scan_outputs([f for f in files if f.exists()], matcher)
    if found.empty:
        return False
    cells = privacy.scan_notebook(r.notebook, matcher) if r.notebook is not None and r.notebook.exists() else None
    where = []
    if cells is not None and not cells.empty:
        for (cell, first, part), hits in cells.groupby(["cell", "first_line", "part"], sort=True):
            kinds = ", ".join(sorted(set(hits["kind"])))
            label = f"code cell {cell} ({first})" if cell else "a text cell"
            where.append(f"{label} {part}: {kinds} {', '.join(sorted(set(hits['value'])))}")
    # the page and the tables: which table, row and column, the kind and the masked value
    shown = found[~found["file"].str.endswith(".ipynb")]
    if not shown.empty:
        where.append(privacy.describe_hits(shown, limit=6))
    kinds = ", ".join(sorted(set(found["kind"])))
    r.status = "privacy"
    r.error = (f"the page would show {len(found)} patient identifier(s) ({kinds}): {'; '.join(where) or 'page'}. "
               "Nothing of this report was published and its page, notebook and tables were deleted; remove the "
               "identifying column from the input or stop the notebook from showing it, then rerun")
    r.failed_cell = where[0] if where else ""
    _discard(r, run_dir)
    return True


def _discard(r: ReportResult, run_dir: Path) -> None:
    """Delete everything of one report in the run folder: page, PDF, notebook, tables, charts."""
    for f in (run_dir / f"{r.name}.html", run_dir / f"{r.name}.pdf", r.notebook, *run_dir.glob(f"{r.name}.*"),
              *run_dir.glob(f".{r.name}.*")):
        if f is not None and f.is_file():
            f.unlink(missing_ok=True)
    shutil.rmtree(run_dir / r.name, ignore_errors=True)
    r.notebook = None


def _guard_failed(r: ReportResult, run_dir: Path, guard: Any) -> None:
    """A failed notebook is kept for diagnosis, unless what it shows includes an identifier."""
    if guard is None or r.notebook is None or not r.notebook.exists():
        return
    from analytics import privacy

    files = [r.notebook, *_report_outputs(run_dir, r.name)]
    r.error, r.failed_cell = privacy.redact(r.error, guard), privacy.redact(r.failed_cell, guard)
    if not privacy.scan_outputs(files, guard).empty:
        _discard(r, run_dir)
        r.error += " (the executed notebook showed a patient identifier and was deleted)"


def _merge_manifest(folder: Path, run: Mapping[str, Any]) -> None:
    """Fold one run's reports into ``<period>/manifest.json`` (under a lock: runs may overlap).

    Besides each report's entry, ``files`` lists every published file (pages, PDFs,
    notebooks, tables, charts, the pack and the workbook) with its sha256 and the run that
    wrote it, and ``period`` the period the folder is for.
    """
    path = folder / "manifest.json"
    with _locked(folder / ".manifest.lock"):
        try:
            current = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            current = {}
        reports = dict(current.get("reports", {}))
        for name, entry in run["reports"].items():
            if entry["status"] != "ok" and reports.get(name, {}).get("status") == "ok":
                # a failed rerun does not hide the page that is still published
                reports[name] = {**reports[name], "last_failed_run": run["run_id"], "last_error": entry["error"]}
                continue
            reports[name] = {**entry, "run_id": run["run_id"], "run_manifest": f"runs/{run['run_id']}/manifest.json",
                             "package_version": run["package_version"], "data_dir": run["data_dir"],
                             "inputs": run["inputs"], "pseudonym_key": run.get("pseudonym_key")}
        files = dict(current.get("files", {}))
        written = dict(run.get("run_files") or {})
        for entry in run["reports"].values():
            if entry["status"] == "ok":
                written.update(entry.get("files") or {})
        for rel, digest in sorted(written.items()):
            files[rel] = {"sha256": digest, "run_id": run["run_id"]}
        merged = {"period": run.get("period") or current.get("period"), "date": run.get("date", folder.name),
                  "updated": _now(), "reports": reports, "files": dict(sorted(files.items())),
                  "runs": sorted(set(current.get("runs", [])) | {run["run_id"]})}
        _atomic_write(path, json.dumps(merged, indent=2, default=str))


def _echo(r: ReportResult) -> None:
    if r.status == "ok":
        extra = f", {r.pdf}" if r.pdf else ""
        how = "unchanged since an earlier run, notebook reused" if r.cached else f"ok in {r.seconds:.1f} s"
        print(f"{r.name}: {how} -> {r.html}{extra}")
    else:
        if r.status == "privacy":
            print(f"{r.name}: refused by the privacy guard: {r.error}.", file=sys.stderr)
            return
        where = f" in {r.failed_cell}" if r.failed_cell else ""
        kept = f" The executed notebook is kept at {r.notebook}." if r.notebook is not None else ""
        print(f"{r.name}: {r.status}{where}: {r.error}.{kept}", file=sys.stderr)


# Public names of a run's steps, for the runner of several practices (analytics.portfolio).
now = _now
sha256_file = _sha256
coerce_parameter = _coerce
hash_inputs = _hash_inputs
period_entry = _period_entry
merge_manifest = _merge_manifest


# ---------------------------------------------------------------------------------------
# The command's job
# ---------------------------------------------------------------------------------------

# main_job (``report all`` that prints where the pages are, run by ``python -m analytics
# demo``) prints and returns an exit code, so it lives with the command in
# analytics.cli.report. That module imports this one, so main_job is looked up there on first
# use (a module __getattr__, PEP 562) and ``reports.main_job(...)`` keeps working.


def __getattr__(name: str) -> Any:
    if name == "main_job":
        from analytics.cli.report import main_job

        return main_job
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
