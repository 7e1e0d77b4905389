"""Planted identifiers: none reaches any report, and a page that shows one is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from analytics import cli, reports
from analytics.privacy import identifiers_from_835, identifiers_from_export, scan_outputs

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
PLANTED_NAMES = ("Qwertyson", "Zelda", "Vexmore")
PLANTED_DOB = "1961-03-04"


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """The sample practice with names and dates of birth in the export and names in every 835."""
    data = tmp_path_factory.mktemp("planted") / "practice"
    shutil.copytree(SAMPLE, data, ignore=shutil.ignore_patterns("truth"))
    lines = pd.read_csv(data / "service_lines.csv", dtype=str, keep_default_na=False)
    lines["patient_name"] = "Qwertyson, Zelda"
    lines["dob"] = PLANTED_DOB
    lines.to_csv(data / "service_lines.csv", index=False)
    for f in (data / "remittances").iterdir():
        f.write_text(f.read_text().replace("NM1*QC*1******MI*", "NM1*QC*1*VEXMORE*ZELDA****MI*"))
    return data


def test_planted_identifiers_are_known_to_the_guard(planted):
    ids = identifiers_from_export(planted / "service_lines.csv") | identifiers_from_835(
        sorted((planted / "remittances").iterdir()))
    assert {"QWERTYSON", "ZELDA", "VEXMORE"} <= ids.names
    assert "P100077" in ids.ids and PLANTED_DOB in ids.dates_of_birth


def test_no_planted_identifier_reaches_any_report(planted, tmp_path):
    run = reports.run_reports("all", planted, tmp_path / "out", date="2026-03-01", timeout=600)
    assert all(r.status == "ok" for r in run.reports), [(r.name, r.status, r.error) for r in run.reports]
    ids = identifiers_from_export(planted / "service_lines.csv") | identifiers_from_835(
        sorted((planted / "remittances").iterdir()))
    found = scan_outputs([tmp_path / "out"], ids)
    assert found.empty, found
    # the scan covered the saved tables too
    assert len(list((tmp_path / "out" / "2026-03-01" / "tables").rglob("*.csv"))) >= 10


def test_a_page_showing_an_identifier_is_refused(planted, tmp_path, capsys):
    nbs = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", nbs)
    nb = nbformat.read(nbs / "revenue.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell('print("patient: Zelda Qwertyson")'))
    nbformat.write(nb, nbs / "revenue.ipynb")
    out = tmp_path / "out"
    code = cli.main(["report", "revenue", "--data", str(planted), "--out", str(out), "--notebooks", str(nbs)])
    assert code != 0
    err = capsys.readouterr()
    assert "identifier" in (err.out + err.err)
    (day,) = [d for d in out.iterdir() if d.is_dir()]
    assert not (day / "revenue.html").exists()  # never published
    manifest = json.loads((day / "manifest.json").read_text())
    entry = manifest["reports"]["revenue"]
    assert entry["status"] == "privacy"
    # the message says which cell shows what, masked; the leaked text is nowhere on disk
    assert "code cell" in entry["error"] and "name" in entry["error"] and "Q*******N" in entry["error"]
    assert entry["notebook"] is None
    assert not list(out.rglob("revenue.ipynb")) and not list(out.rglob("revenue.html"))
    ids = identifiers_from_export(planted / "service_lines.csv")
    assert scan_outputs([out], ids).empty


def _leaky_notebooks(tmp_path: Path, code: str) -> Path:
    nbs = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", nbs)
    nb = nbformat.read(nbs / "revenue.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(code))
    nbformat.write(nb, nbs / "revenue.ipynb")
    return nbs


def test_a_saved_table_with_an_identifier_is_refused(planted, tmp_path, capsys):
    nbs = _leaky_notebooks(tmp_path, 'import pandas as pd\nplots.save_table(pd.DataFrame({"who": ["Vexmore"]}), '
                                     '"leak")')
    out = tmp_path / "out"
    code = cli.main(["report", "revenue", "--data", str(planted), "--out", str(out), "--notebooks", str(nbs)])
    assert code == 1
    err = capsys.readouterr().err
    assert "leak.csv" in err and "refused by the privacy guard" in err
    assert not list(out.rglob("*.csv")), "no table of a refused report stays on disk"
    assert not list(out.rglob("revenue.html"))


def test_a_failed_notebook_that_shows_an_identifier_is_not_kept(planted, tmp_path, capsys):
    nbs = _leaky_notebooks(tmp_path, 'print("Zelda Qwertyson")\nraise RuntimeError("stop")')
    out = tmp_path / "out"
    code = cli.main(["report", "revenue", "--data", str(planted), "--out", str(out), "--notebooks", str(nbs)])
    assert code == 1
    err = capsys.readouterr().err
    assert "RuntimeError: stop" in err and "was deleted" in err
    assert not list(out.rglob("revenue.ipynb"))
    ids = identifiers_from_export(planted / "service_lines.csv")
    assert scan_outputs([out], ids).empty
