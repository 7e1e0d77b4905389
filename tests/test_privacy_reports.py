"""Planted identifiers: none reaches any report, and a page that shows one is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from analytics import cli, reports
from analytics.privacy import (
    KEY_ENV,
    create_key,
    identifiers_from_835,
    identifiers_from_export,
    identifiers_from_folder,
    load_key,
    scan_outputs,
)

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
    assert len(list((run.folder / "tables").rglob("*.csv"))) >= 10


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


# --------------------------------------------------------------------------- 2,000 patients

LAST_NAMES = ("White", "Will", "Mark", "Page", "May", "Rich", "Case", "Gold", "Bill", "Cash", "Total", "Brown",
              "Green", "Young", "King", "Price", "Hall", "Wood", "Stone", "Paid")
FIRST_NAMES = ("Will", "Mark", "May", "Bill", "Rich", "Page", "Grace", "Hope", "Frank", "Jack", "Rose", "June",
               "Cash", "Gold", "Donna", "Claim")
PATIENTS = 2000


def _common_word_practice(folder: Path) -> Path:
    """The sample practice with its 2,500 visits spread over 2,000 patients, each with a
    6-digit account number as patient id, a name made of common English words ("White, Will",
    "Total, Cash"), a date of birth and a member id; the 835s name each claim's patient."""
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("truth"))
    lines = pd.read_csv(folder / "service_lines.csv", dtype=str, keep_default_na=False)
    visit = pd.Series(pd.factorize(lines["claim_id"])[0], index=lines.index)
    k = visit % PATIENTS
    accounts = np.random.default_rng(12).choice(np.arange(100000, 1000000), size=PATIENTS, replace=False)
    lines["patient_id"] = accounts[k].astype(str)
    last = np.asarray(LAST_NAMES, dtype=object)[k % len(LAST_NAMES)]
    first = np.asarray(FIRST_NAMES, dtype=object)[(k // len(LAST_NAMES)) % len(FIRST_NAMES)]
    lines.insert(1, "Patient Name", last + ", " + first)
    lines.insert(2, "DOB", (pd.Timestamp("1940-01-01") + pd.to_timedelta(k * 11, unit="D")).dt.strftime("%m/%d/%Y"))
    lines.insert(3, "Member ID", "MB" + (700000 + k).astype(str))
    lines.to_csv(folder / "service_lines.csv", index=False)
    names = dict(zip(lines["claim_id"], zip(last, first, strict=True), strict=True))
    for f in (folder / "remittances").iterdir():
        out, claim = [], None
        for seg in f.read_text().split("~"):
            if seg.strip().startswith("CLP*"):
                claim = seg.strip().split("*")[1]
            if seg.strip().startswith("NM1*QC*1******MI*") and claim in names:
                surname, given = names[claim]
                seg = seg.replace("NM1*QC*1******", f"NM1*QC*1*{surname.upper()}*{given.upper()}****")
            out.append(seg)
        f.write_text("~".join(out))
    return folder


@pytest.mark.slow
def test_two_thousand_patients_named_with_common_words(tmp_path, monkeypatch):
    """No refusal, and no planted name, date of birth, member id or account number on any
    page, table, notebook or manifest (issue: "White" in the CSS, "Total" as a header); the
    practice's key, set for the run, is in no file either."""
    data = _common_word_practice(tmp_path / "practice")
    key = load_key(create_key(data).parent)
    monkeypatch.setenv(KEY_ENV, key.hex())
    guard = identifiers_from_folder(data)
    assert len(guard.people) == len(LAST_NAMES) * len(FIRST_NAMES)
    assert len([i for i in guard.ids if i.isdigit() and len(i) == 6]) == PATIENTS
    assert {"WHITE", "TOTAL", "CASH", "WILL"} <= guard.names and len(guard.dates_of_birth) >= 3 * PATIENTS
    out = tmp_path / "out"
    run = reports.run_reports("all", data, out, date="2026-03-01", timeout=900)
    assert [(r.name, r.status, r.error) for r in run.reports if r.status != "ok"] == []
    found = scan_outputs([out], guard)
    assert found.empty, found.to_string()
    for f in (f for f in out.rglob("*") if f.is_file()):
        data_bytes = f.read_bytes()
        assert key not in data_bytes and key.hex().encode() not in data_bytes, f
    # the pages and tables were there to scan
    assert len(list(out.rglob("*.html"))) >= 4 and len(list(out.rglob("*.csv"))) >= 10
