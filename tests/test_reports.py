"""The report runner: every notebook through papermill on the sample practice, pages checked
against the package API and in headless Chromium; parameters and failures handled clearly."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import matplotlib.image as mpimg
import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from test_kpis import write_folder

from analytics import cli, kpis, reports
from analytics.exceptions import ParameterError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
CHROMIUM = reports.find_chromium()
NO_CHROMIUM = "headless Chromium is not installed (Debian package chromium; `make chromium` installs it)"


# --- the pack on the sample practice ---------------------------------------------------------


@pytest.fixture(scope="module")
def pack(sample_pack) -> reports.RunResult:
    """``report all`` on the sample, the whole span, run once per session."""
    return sample_pack


@pytest.fixture(scope="module")
def history(pack, sample_history) -> kpis.History:
    params = pack.reports[0].parameters
    return sample_history.select(start=params["period_start"], end=params["period_end"], as_of=params["as_of"])


def page(pack: reports.RunResult, name: str) -> str:
    result = next(r for r in pack.reports if r.name == name)
    assert result.status == "ok", f"{name}: {result.error} ({result.failed_cell})"
    return result.html.read_text()


def test_report_all_exits_0_on_the_sample(sample_pack_runs):
    """Both of the session's runs (the whole span, and the client pack's quarter beside it at
    the same time into the same folder) exit 0, each into its own period folder."""
    assert sample_pack_runs.exit_codes == {r: 0 for r in ("whole", "quarter")[:len(sample_pack_runs.runs)]}
    if sample_pack_runs.quarter is not None:
        whole, quarter = sample_pack_runs.whole, sample_pack_runs.quarter
        assert whole.folder.parent == quarter.folder.parent == sample_pack_runs.out
        assert whole.folder != quarter.folder and whole.run_folder != quarter.run_folder


def test_every_report_ran_into_the_period_folder(pack):
    assert [r.name for r in pack.reports] == ["revenue", "denials", "denial_risk", "scenarios", "contracts"]
    assert pack.ok, [(r.name, r.status, r.failed_cell, r.error) for r in pack.failed]
    # the sample's whole span: first and last date of service
    assert pack.folder.name == "2025-03-03_2026-02-14"
    for r in pack.reports:
        assert r.html == pack.folder / f"{r.name}.html" and r.html.exists()
        assert (pack.folder / f"{r.name}.ipynb").exists()
        assert r.notebook.parent == pack.run_folder


def test_pages_show_charts_as_embedded_images(pack):
    for name, least in (("revenue", 2), ("denials", 2), ("contracts", 2), ("scenarios", 1), ("denial_risk", 1)):
        images = re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{200}', page(pack, name))
        assert len(images) >= least, name


def test_pages_have_no_code(pack):
    for r in pack.reports:
        html = page(pack, r.name)
        cells = html.split('<div class="jp-Cell ')[1:]
        code_cells = [c for c in cells if c.startswith("jp-CodeCell")]
        assert code_cells, r.name
        assert not any("jp-InputArea" in c.split('<div class="jp-Cell')[0] for c in code_cells), r.name
        assert "hl-ipython3" not in html and "input_area" not in html
        for snippet in ("load_history(", "import ", "plots.table(", "data_dir"):
            assert snippet not in html, (r.name, snippet)


def test_pages_fetch_nothing_from_the_internet(pack):
    for r in pack.reports:
        assert not re.search(r'<script[^>]+src="https?://', page(pack, r.name)), r.name


def test_key_figures_equal_the_package_api(pack, history):
    s = kpis.summary(history)
    revenue = page(pack, "revenue")
    for figure in (kpis.fmt_money(s["gross_charges"]), kpis.fmt_money(s["payer_paid"]),
                   kpis.fmt_pct(s["net_collection_rate"]), kpis.fmt_days(s["days_in_ar"]),
                   kpis.fmt_money(s["ar_balance"]), kpis.fmt_pct(s["first_pass_resolution_rate"])):
        assert figure in revenue, figure
    assert history.practice_name in revenue
    denials = page(pack, "denials")
    assert kpis.fmt_pct(s["denial_rate"]) in denials
    assert f"{s['denied_lines']:,} of {s['adjudicated_lines']:,}" in denials
    top = kpis.denial_reasons(history).iloc[0]
    assert top["reason"] in denials and kpis.fmt_money(top["denied_amount"]) in denials
    contracts = page(pack, "contracts")
    under = kpis.underpayments(history)
    assert f"{kpis.fmt_money(under.recoverable)} is recoverable across {len(under.claims):,} claims" in contracts
    best = under.highlights().iloc[0]
    assert (f"paid {kpis.fmt_pct(best['pct_of_contract'])} of contract on {best['cpt']} in {best['period']}"
            in contracts.replace("&#x27;", "'"))


def test_every_page_has_title_period_and_practice(pack, history):
    params = pack.reports[0].parameters
    for r in pack.reports:
        html = page(pack, r.name)
        assert history.practice_name in html, r.name
        assert params["period_start"] in html and params["period_end"] in html, r.name


def test_pages_carry_no_patient_identifiers(pack):
    export = pd.read_csv(SAMPLE / "service_lines.csv", dtype=str)
    ids = set(export["patient_id"])
    for r in pack.reports:
        tokens = set(re.findall(r"[A-Za-z0-9]+", page(pack, r.name)))
        assert not ids & tokens, r.name


def test_manifest_records_parameters_inputs_and_status(pack, sample_pack_runs):
    from analytics import __version__

    # the quarter's run, at the same time into the same --out, published into its own folder
    run_ids = {sample_pack_runs.whole.run_id}

    manifest = json.loads(pack.manifest.read_text())
    run = json.loads((pack.run_folder / "manifest.json").read_text())
    assert run["package_version"] == __version__ and run["status"] == "ok"
    assert run["started"] <= run["finished"]
    inputs = {i["path"]: i["sha256"] for i in run["inputs"]}
    assert inputs["service_lines.csv"] == hashlib.sha256((SAMPLE / "service_lines.csv").read_bytes()).hexdigest()
    assert any(p.startswith("remittances/") for p in inputs)
    for name in ("revenue", "denials", "denial_risk", "scenarios", "contracts"):
        entry = manifest["reports"][name]
        assert entry["status"] == "ok" and entry["run_id"] in run_ids
        assert entry["parameters"]["data_dir"] == str(SAMPLE.resolve())
        assert entry["started"] and entry["finished"] and entry["package_version"] == __version__
        assert entry["html"] == f"{name}.html"
    # the period, as-of date and practice name were resolved once for the whole pack
    periods = {json.dumps({k: manifest["reports"][n]["parameters"][k] for k in ("period_start", "period_end",
                                                                                "as_of")}) for n in manifest["reports"]}
    assert len(periods) == 1


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_pdfs_are_printed(sample_pack_runs):
    pack = sample_pack_runs.quarter  # the session's run with --pdf (test_pack.py reads its pages)
    for r in pack.reports:
        assert r.pdf == pack.folder / f"{r.name}.pdf"
        assert r.pdf.read_bytes()[:5] == b"%PDF-" and r.pdf.stat().st_size > 20_000


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_pages_render_in_headless_chromium(pack, tmp_path):
    for r in pack.reports:
        png = reports.screenshot(r.html, tmp_path / f"{r.name}.png", width=1200, height=1600)
        image = mpimg.imread(png)
        pixels = np.round(image[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
        colours = np.unique(pixels[:, 0].astype(np.uint32) << 16 | pixels[:, 1].astype(np.uint32) << 8
                            | pixels[:, 2])
        assert len(colours) > 1, f"{r.name} renders blank"
        assert (pixels.min(axis=1) < 200).mean() > 0.01, f"{r.name} shows almost nothing"


# --- parameters --------------------------------------------------------------------------------


def test_every_notebook_declares_the_standard_parameters():
    for file in reports.REPORTS.values():
        declared = reports.notebook_parameters(REPO / "notebooks" / file)
        missing = set(reports.STANDARD_PARAMETERS) - set(declared)
        assert not missing, f"{file} lacks {sorted(missing)}"


def test_parameters_cell_is_typed_and_documented():
    for file in ("revenue.ipynb", "denials.ipynb", "payer_contracts.ipynb"):
        declared = reports.notebook_parameters(REPO / "notebooks" / file)
        # the standard parameters, in their order; a report may declare its own besides
        standard = [name for name in declared if name in reports.STANDARD_PARAMETERS]
        assert standard == list(reports.STANDARD_PARAMETERS)
        assert all(p.help and p.type for p in declared.values())
        assert declared["payers"].type == "list" and declared["fee_schedule_year"].type == "int"
        nb = nbformat.read(REPO / "notebooks" / file, as_version=4)
        assert "parameters" in nb.cells[0].metadata["tags"]
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit without outputs"


def test_values_are_converted_to_the_declared_types():
    p = reports.Parameter
    assert reports._coerce(p("payers", "list", []), "medicare, ppo_gold", "r") == ["medicare", "ppo_gold"]
    assert reports._coerce(p("payers", "list", []), "[medicare]", "r") == ["medicare"]
    assert reports._coerce(p("payers", "list", []), "", "r") == []
    assert reports._coerce(p("fee_schedule_year", "int", 0), "2025", "r") == 2025
    assert reports._coerce(p("hot_pack", "bool", False), "yes", "r") is True
    assert reports._coerce(p("locality", "str", ""), "01112-05", "r") == "01112-05"
    import datetime as dt

    assert reports._coerce(p("as_of", "str", ""), dt.date(2026, 3, 31), "r") == "2026-03-31"
    with pytest.raises(ParameterError, match="not a int"):
        reports._coerce(p("fee_schedule_year", "int", 0), "next year", "r")
    with pytest.raises(ParameterError, match="not a valid date"):
        reports._coerce(p("service_date", "str", ""), "2026-06-31", "r")


def test_period_keywords():
    import datetime as dt

    day = dt.date(2026, 3, 15)
    assert reports._period("previous-month", day) == ("2026-02-01", "2026-02-28")
    assert reports._period("previous-month", dt.date(2026, 1, 1)) == ("2025-12-01", "2025-12-31")
    assert reports._period("previous-quarter", day) == ("2025-10-01", "2025-12-31")
    assert reports._period("previous-quarter", dt.date(2026, 8, 1)) == ("2026-04-01", "2026-06-30")
    assert reports._period("2025-Q3", day) == ("2025-07-01", "2025-09-30")
    assert reports._period("2025-07", day) == ("2025-07-01", "2025-07-31")
    assert reports._period("2025", day) == ("2025-01-01", "2025-12-31")
    with pytest.raises(ParameterError, match="not a period"):
        reports._period("last-week", day)


def run_cli(*args: str) -> int:
    return cli.main(["report", *args])


def test_unknown_parameter_is_an_error(tmp_path, capsys):
    assert run_cli("revenue", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "-p", "colour", "blue") == 2
    err = capsys.readouterr().err
    assert "Unknown parameter(s) ['colour']" in err and "period_start" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["2026-02-30", "03/31/2026", "yesterday"])
def test_bad_date_is_an_error(tmp_path, capsys, value):
    assert run_cli("all", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "-p", "as_of", value) == 2
    assert "not a valid date" in capsys.readouterr().err


def test_missing_data_folder_is_an_error(tmp_path, capsys):
    assert run_cli("revenue", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "Data folder" in err and "does not exist" in err and "--data" in err


def test_unknown_payer_is_an_error_before_any_notebook_runs(tmp_path, capsys):
    folder = write_folder(tmp_path)
    assert run_cli("revenue", "--data", str(folder), "--out", str(tmp_path / "out"), "-p", "payers", "nobody") == 2
    assert "Unknown payer id(s) ['nobody']" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("locality", "99999-99", "Medicare locality '99999-99'"),
    ("fee_schedule_year", "1999", "No Medicare fee schedule for 1999"),
    ("fee_schedule_year", "soon", "is not a year"),
])
def test_fee_schedule_parameters_are_checked_first(tmp_path, capsys, name, value, message):
    assert run_cli("contracts", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "-p", name, value) == 2
    assert message in capsys.readouterr().err


def test_pdf_without_chromium_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(reports, "find_chromium", lambda: None)
    assert run_cli("revenue", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--pdf") == 2
    assert "apt-get install chromium" in capsys.readouterr().err


def test_params_file_and_period_conflicts(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"period_start": "2026-01-01"}))
    assert run_cli("all", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--params", str(params),
                   "--period", "previous-month") == 2
    assert "either --period or" in capsys.readouterr().err


def test_exit_code_of_the_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "analytics", "report", "revenue", "--data", str(tmp_path / "x"),
                           "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "does not exist" in done.stderr


# --- running notebooks: failures, the kernel, concurrency (small stand-in notebooks) ----------


def stand_in(folder: Path, *cells: tuple[str, str]) -> Path:
    """A notebooks folder whose scenarios notebook declares the standard parameters and runs ``cells``."""
    folder.mkdir(parents=True, exist_ok=True)
    params = nbformat.v4.new_code_cell(
        'data_dir: str = "."  # folder\nperiod_start: str = ""  # start\nperiod_end: str = ""  # end\n'
        'as_of: str = ""  # as of\npayers: list = []  # payers\nproviders: list = []  # providers\n'
        'fee_schedule_year: int = 0  # year\nlocality: str = ""  # locality\npractice_name: str = ""  # name\n'
        'title: str = "Stand-in"  # title')
    params.metadata["tags"] = ["parameters"]
    params.id = "parameters"
    body = []
    for cell_id, source in cells:
        c = nbformat.v4.new_code_cell(source)
        c.id = cell_id
        body.append(c)
    nb = nbformat.v4.new_notebook(cells=[params, *body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / reports.REPORTS["scenarios"])
    return folder


def _dying_kernels(deaths: int) -> tuple[type, list[int]]:
    """A kernel manager whose first ``deaths`` kernels exit before answering (as a kernel whose
    port another process took does), and the list of launches it counts."""
    from jupyter_client import AsyncKernelManager

    from analytics import kernels

    launches: list[int] = []

    class Dying(kernels.manager_class("python3") or AsyncKernelManager):  # forked when it may be
        def format_kernel_cmd(self, extra_arguments=None):
            launches.append(1)
            if len(launches) <= deaths:
                return [sys.executable, "-c", "import sys; sys.exit(3)"]
            return super().format_kernel_cmd(extra_arguments)

    return Dying, launches


@pytest.mark.parametrize("attempts", [2, 1])
def test_a_kernel_that_dies_starting_is_started_again(tmp_path, monkeypatch, attempts):
    """A kernel that dies before its first reply ran no cell: the report starts another, up to
    :data:`KERNEL_START_ATTEMPTS` kernels, then fails saying the kernel died."""
    from analytics import kernels

    monkeypatch.setattr(reports, "KERNEL_START_ATTEMPTS", attempts)
    nbs = stand_in(tmp_path / "nb", ("say", "print(title)"))
    manager, launches = _dying_kernels(1)
    monkeypatch.setattr(kernels, "manager_class", lambda *a, **k: manager)
    run = reports.run_reports("scenarios", tmp_path, tmp_path / "out", notebooks_dir=nbs, timeout=120)
    (result,) = run.reports
    if attempts > 1:  # the second kernel runs the notebook
        assert result.status == "ok" and len(launches) == 2, (result.error, launches)
        assert "Stand-in" in result.html.read_text()
    else:
        assert result.status == "failed" and len(launches) == 1
        assert "Kernel died before replying" in result.error


def test_failing_notebook_names_the_cell_and_keeps_the_notebook(tmp_path, capsys):
    nbs = stand_in(tmp_path / "nb", ("fine", "x = 1"), ("explode", "raise RuntimeError('boom')"),
                   ("after", "print('never')"))
    out = tmp_path / "out"
    assert run_cli("scenarios", "--data", str(tmp_path), "--out", str(out), "--notebooks", str(nbs)) == 1
    err = capsys.readouterr().err
    assert "cell 'explode'" in err and "RuntimeError: boom" in err
    kept = next(out.glob("*/runs/*/scenarios.ipynb"))
    assert str(kept) in err
    nb = nbformat.read(kept, as_version=4)
    failed = next(c for c in nb.cells if c.get("id") == "explode")
    assert failed.outputs[0]["output_type"] == "error"
    assert not list(out.glob("*/scenarios.html"))  # nothing published
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text())
    assert manifest["reports"]["scenarios"]["status"] == "failed"
    assert "explode" in manifest["reports"]["scenarios"]["failed_cell"]


def test_kernel_is_the_interpreter_running_the_report(tmp_path):
    nbs = stand_in(tmp_path / "nb", ("exe", "import sys\nprint(sys.executable)"))
    result = reports.run_reports("scenarios", tmp_path, tmp_path / "out", notebooks_dir=nbs)
    nb = nbformat.read(result.reports[0].notebook, as_version=4)
    printed = next(c for c in nb.cells if c.get("id") == "exe").outputs[0]["text"].strip()
    assert Path(printed).resolve() == Path(sys.executable).resolve()


def test_no_progress_bar_when_output_is_not_a_terminal(tmp_path, capfd):
    nbs = stand_in(tmp_path / "nb", ("one", "x = 1"))
    assert run_cli("scenarios", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--notebooks",
                   str(nbs)) == 0
    captured = capfd.readouterr()
    assert "Executing" not in captured.err and "cell/s" not in captured.err and "%|" not in captured.err
    assert "scenarios: ok" in captured.out


def test_concurrent_runs_into_one_folder_do_not_clobber(tmp_path):
    nbs = stand_in(tmp_path / "nb", ("wait", "import time\ntime.sleep(0.5)\nprint(title)"))
    out = tmp_path / "out"
    results: list[reports.RunResult] = []

    def run(title: str) -> None:
        results.append(reports.run_reports("scenarios", tmp_path, out, notebooks_dir=nbs,
                                           parameters={"title": title}))

    threads = [threading.Thread(target=run, args=(t,)) for t in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and all(r.ok for r in results)
    assert results[0].run_folder != results[1].run_folder
    manifest = json.loads((results[0].folder / "manifest.json").read_text())
    assert set(manifest["runs"]) == {r.run_id for r in results}
    html = (results[0].folder / "scenarios.html").read_text()
    assert html.rstrip().endswith("</html>") and ("first" in html or "second" in html)
    assert not list(results[0].folder.glob(".*.tmp"))
    # the worker threads leave no event loop behind to be collected unclosed
    import gc
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        threads.clear()
        gc.collect()
    assert not [w for w in caught if "event loop" in str(w.message)]


def test_main_job_prints_where_the_pages_are(tmp_path, monkeypatch, capsys):
    page_ = tmp_path / "2026-03-01" / "revenue.html"
    fake = reports.RunResult(run_id="r", folder=page_.parent, run_folder=tmp_path, manifest=tmp_path / "m.json",
                             reports=[reports.ReportResult(name="revenue", status="ok", html=page_,
                                                           outputs={"tables/revenue/monthly.csv": "x"})])
    monkeypatch.setattr(reports, "run_reports", lambda *a, **k: fake)
    assert reports.main_job(tmp_path, tmp_path) == 0
    out = capsys.readouterr().out
    assert "Report pages:" in out and page_.as_uri() in out
    assert f"{page_.parent / 'tables'}/" in out


def test_scenarios_alone_take_the_practice_name_from_practice_yaml(tmp_path):
    nbs = stand_in(tmp_path / "nb", ("name", "print('practice:', practice_name)"))
    (tmp_path / "practice.yaml").write_text("practice: Harbor Massage\nlocality: 00000-00\n")
    run = reports.run_reports("scenarios", tmp_path, tmp_path / "out", notebooks_dir=nbs)
    assert run.ok and run.reports[0].parameters["practice_name"] == "Harbor Massage"
    assert "practice: Harbor Massage" in run.reports[0].html.read_text()
    # -p wins over the file
    run = reports.run_reports("scenarios", tmp_path, tmp_path / "out2", notebooks_dir=nbs,
                              parameters={"practice_name": "Other"})
    assert run.reports[0].parameters["practice_name"] == "Other"


def test_notebooks_in_parallel_with_a_relative_output_folder(tmp_path, monkeypatch):
    """Two notebooks at once into a relative --out: each kernel runs in its own folder, and the
    process keeps its working folder (papermill's cwd= would change it for every thread)."""
    nbs = stand_in(tmp_path / "nb", ("save", "import pandas as pd\nfrom analytics import plots\n"
                                             "plots.save_table(pd.DataFrame({'a': [1]}), 'one')"))
    nbformat.write(nbformat.read(nbs / reports.REPORTS["scenarios"], as_version=4), nbs / reports.REPORTS["denial_risk"])
    monkeypatch.chdir(tmp_path)
    run = reports.run_reports(["scenarios", "denial_risk"], SAMPLE, "out", notebooks_dir=nbs, date="2026-03-01",
                              workers=2)
    assert run.ok, [(r.name, r.error) for r in run.failed]
    assert Path.cwd() == tmp_path
    assert run.folder.resolve().parent == tmp_path / "out"
    for name in ("scenarios", "denial_risk"):
        assert (run.folder / "tables" / name / "one.csv").read_text() == "a\n1\n"


def test_tables_are_published_with_a_relative_output_folder(tmp_path, monkeypatch):
    nbs = stand_in(tmp_path / "nb", ("save", "import pandas as pd\nfrom analytics import plots\n"
                                             "plots.save_table(pd.DataFrame({'a': [1]}), 'one')"))
    monkeypatch.chdir(tmp_path)
    run = reports.run_reports("scenarios", ".", "out", notebooks_dir=nbs, date="2026-03-01")
    assert run.ok, run.failed
    assert (tmp_path / "out" / "2026-03-01" / "tables" / "scenarios" / "one.csv").read_text() == "a\n1\n"
    assert list(run.reports[0].outputs) == ["tables/scenarios/one.csv"]
