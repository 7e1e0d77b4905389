"""The practice key through every command, and names kept out of claim numbers.

``intake``, ``remit`` and ``evaluate`` find the practice's key beside their inputs
(``.analytics-key``), take ``--key-file`` or ``ANALYTICS_PRACTICE_KEY``, and without one
refuse (exit 2) unless told ``--unkeyed-pseudonyms``. Expected pseudonyms are computed here
with the standard library alone: the first 16 hex digits of HMAC-SHA-256(key, id) (RFC 2104
with SHA-256, the scheme the README describes). The practice history uses the key of its
folder, and a report's manifest names the key by its fingerprint, never the key.
"""

from __future__ import annotations

import hmac
import json
import re
import shutil
import warnings
from pathlib import Path

import nbformat
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analytics import reports
from analytics.cli import main
from analytics.privacy import (
    KEY_ENV,
    KEY_FINGERPRINT_KEY,
    PSEUDONYMISED_KEY,
    SALT_ENV,
    create_key,
    key_fingerprint,
    load_key,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
DATA = Path(__file__).resolve().parent / "data"
#: Synthetic 835 of tests/data: two claims of one patient, member id SYNMBR001 (NM1*QC ... MI*SYNMBR001).
ERA = DATA / "x12-835" / "synthetic_835_massage.edi"
MEMBER = "SYNMBR001"


def hmac16(key: bytes, ident: str) -> str:
    """First 16 hex digits of HMAC-SHA-256(key, id), with the standard library alone."""
    return hmac.new(key, ident.encode(), "sha256").hexdigest()[:16]


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    """Each test starts with no key but the ones it makes (the suite's own key is removed)."""
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(SALT_ENV, raising=False)


@pytest.fixture()
def export(tmp_path) -> Path:
    """The first 30 lines of the sample practice's export, in a practice folder."""
    folder = tmp_path / "practice"
    folder.mkdir()
    lines = pd.read_csv(SAMPLE / "service_lines.csv", dtype=str, keep_default_na=False).head(30)
    lines.to_csv(folder / "service_lines.csv", index=False)
    shutil.copy(SAMPLE / "payers.yaml", folder / "payers.yaml")
    return folder / "service_lines.csv"


def _raw_ids(export: Path) -> list[str]:
    return pd.read_csv(export, dtype=str)["patient_id"].tolist()


# ----------------------------------------------------------------- intake


def test_intake_refuses_without_a_key_and_writes_nothing(export, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["intake", str(export), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "init" in err and "--unkeyed-pseudonyms" in err and KEY_ENV in err
    assert not out.exists()


def test_intake_unkeyed_flag_writes_with_a_loud_warning(export, tmp_path, capsys):
    assert main(["intake", str(export), "--out", str(tmp_path / "out"), "--unkeyed-pseudonyms"]) == 0
    assert "warning: --unkeyed-pseudonyms" in capsys.readouterr().err
    meta = pq.read_schema(tmp_path / "out" / "lines.parquet").metadata
    assert meta[PSEUDONYMISED_KEY] == b"patient_id"


def test_intake_uses_the_key_beside_the_export(export, tmp_path):
    key = load_key(create_key(export.parent).parent)
    assert main(["intake", str(export), "--out", str(tmp_path / "out")]) == 0
    lines = pd.read_parquet(tmp_path / "out" / "lines.parquet")
    assert lines["patient_id"].tolist() == [hmac16(key, i) for i in _raw_ids(export)]
    meta = pq.read_schema(tmp_path / "out" / "lines.parquet").metadata
    assert meta[PSEUDONYMISED_KEY] == b"patient_id"
    assert meta[KEY_FINGERPRINT_KEY] == key_fingerprint(key).encode()
    assert key.hex().encode() not in (tmp_path / "out" / "lines.parquet").read_bytes()
    csv = pd.read_csv(tmp_path / "out" / "lines.csv", dtype=str)
    assert csv["patient_id"].tolist() == lines["patient_id"].tolist()


def test_intake_key_file_option(export, tmp_path):
    key = load_key(create_key(tmp_path / "elsewhere").parent)
    assert main(["intake", str(export), "--out", str(tmp_path / "out"), "--key-file",
                 str(tmp_path / "elsewhere" / ".analytics-key")]) == 0
    lines = pd.read_parquet(tmp_path / "out" / "lines.parquet")
    assert lines["patient_id"].tolist() == [hmac16(key, i) for i in _raw_ids(export)]


# ----------------------------------------------------------------- remit


def test_remit_refuses_without_a_key(tmp_path, capsys):
    out = tmp_path / "remit"
    assert main(["remit", str(ERA), "--out", str(out)]) == 2
    assert "--unkeyed-pseudonyms" in capsys.readouterr().err
    assert not out.exists()


def test_remit_patient_key_uses_the_practice_key(tmp_path):
    practice = tmp_path / "practice"
    (practice / "remittances").mkdir(parents=True)
    shutil.copy(ERA, practice / "remittances" / ERA.name)
    key = load_key(create_key(practice).parent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["remit", str(practice / "remittances"), "--out", str(tmp_path / "remit")]) == 0
    claims = pd.read_parquet(tmp_path / "remit" / "remit_claims.parquet")
    assert set(claims["patient_key"]) == {hmac16(key, MEMBER)}


# ----------------------------------------------------------------- evaluate


def _lines_parquet(export: Path, path: Path) -> Path:
    frame = pd.read_csv(export, dtype=str).assign(minutes=lambda f: f["minutes"].astype(float))
    frame.to_parquet(path)
    return path


def test_evaluate_refuses_without_a_key(export, tmp_path, capsys):
    src = _lines_parquet(export, tmp_path / "lines.parquet")
    assert main(["evaluate", "--lines", str(src), "--payers", str(export.parent / "payers.yaml"), "--out",
                 str(tmp_path / "evaluated"), "--workers", "1"]) == 2
    assert "--unkeyed-pseudonyms" in capsys.readouterr().err
    assert not (tmp_path / "evaluated").exists()


def test_evaluate_lines_use_the_key_beside_them(export, tmp_path):
    src = _lines_parquet(export, export.parent / "lines.parquet")
    key = load_key(create_key(export.parent).parent)
    assert main(["evaluate", "--lines", str(src), "--payers", str(export.parent / "payers.yaml"), "--out",
                 str(tmp_path / "evaluated"), "--workers", "1"]) == 0
    evaluated = pd.read_parquet(tmp_path / "evaluated")
    assert set(evaluated["patient_id"].astype(str)) == {hmac16(key, i) for i in _raw_ids(export)}


def test_evaluate_practice_folder_uses_its_key(export, tmp_path):
    key = load_key(create_key(export.parent).parent)
    assert main(["evaluate", "--data", str(export.parent), "--out", str(tmp_path / "evaluated"),
                 "--workers", "1"]) == 0
    evaluated = pd.read_parquet(tmp_path / "evaluated")
    assert set(evaluated["patient_id"].astype(str)) <= {hmac16(key, i) for i in _raw_ids(export)}
    assert len(evaluated)


# ----------------------------------------------------------------- history and claim numbers


NAMED = "OSTRAVIAK-QUILLON-"


@pytest.fixture(scope="module")
def named_practice(tmp_path_factory) -> tuple[Path, Path]:
    """The sample's ppo_gold lines of June-August 2025 (underpaid 97140/97112: practice.yaml of
    data/sample) and their 835s, twice: with plain claim numbers, and with claim numbers built
    from a patient's name (also in a ``Patient Name`` column) and a key file."""
    base = tmp_path_factory.mktemp("named")
    plain, named = base / "plain", base / "named"
    lines = pd.read_csv(SAMPLE / "service_lines.csv", dtype=str, keep_default_na=False)
    lines = lines[(lines["payer_id"] == "ppo_gold") & lines["service_date"].between("2025-06-01", "2025-08-31")]
    eras = sorted(SAMPLE.glob("remittances/ppo_gold_2025-W2*.835")) + sorted(
        SAMPLE.glob("remittances/ppo_gold_2025-W3*.835"))
    for folder, rename in ((plain, lambda t: t), (named, lambda t: re.sub(r"\bC(\d{6})", NAMED + r"\1", t))):
        (folder / "remittances").mkdir(parents=True)
        shutil.copy(SAMPLE / "payers.yaml", folder / "payers.yaml")
        (folder / "practice.yaml").write_text("practice: Named claims\nlocality: 00000-00\nas_of: '2026-02-28'\n")
        frame = lines.assign(claim_id=lines["claim_id"].map(rename), line_id=lines["line_id"].map(rename))
        if folder == named:
            frame = frame.assign(**{"Patient Name": "Ostraviak, Quillon"})
        frame.to_csv(folder / "service_lines.csv", index=False)
        for era in eras:
            (folder / "remittances" / era.name).write_text(rename(era.read_text()))
    create_key(named)
    return plain, named


@pytest.mark.slow
def test_history_uses_the_folder_key(named_practice, tmp_path):
    from analytics.history import load_history

    _, named = named_practice
    key = load_key(named)
    raw = pd.read_csv(named / "service_lines.csv", dtype=str)
    history = load_history(named, cache_dir=tmp_path / "cache")
    assert set(history.base["patient_id"].astype(str)) == {hmac16(key, i) for i in raw["patient_id"]}


@pytest.mark.slow
def test_claims_to_appeal_show_no_name(named_practice, tmp_path):
    """Same figures as with plain claim numbers; the names starred in ``claims`` and keyed in ``lines``."""
    from analytics.history import load_history
    from analytics.kpis import underpayments

    plain, named = named_practice
    key = load_key(named)
    want = underpayments(load_history(plain, cache_dir=tmp_path / "a"))
    got = underpayments(load_history(named, cache_dir=tmp_path / "b"))
    assert len(want.claims) > 0 and got.recoverable == want.recoverable
    assert got.claims[["expected", "paid", "recoverable"]].equals(want.claims[["expected", "paid", "recoverable"]])
    shown = got.claims["claim_id"].astype(str)
    assert not shown.str.contains("OSTRAVIAK|QUILLON").any()
    assert shown.tolist() == [re.sub(r"^C", "*********-*******-", c) for c in want.claims["claim_id"]]
    assert got.lines["claim_id"].tolist() == ["ID-" + hmac16(key, NAMED + c[1:]) for c in want.lines["claim_id"]]
    assert got.highlights().equals(want.highlights())


def test_the_worklist_shows_no_name(named_practice, tmp_path):
    """The denial-risk worklist lists claims by the practice's own numbers, names starred out."""
    from analytics.denials.worklist import worklist
    from analytics.history import load_history

    plain, named = named_practice
    want = worklist(load_history(plain, cache_dir=tmp_path / "a"))
    got = worklist(load_history(named, cache_dir=tmp_path / "b"))
    assert len(got) == len(want) > 0
    shown = got["claim_id"].astype(str)
    assert not shown.str.contains("OSTRAVIAK|QUILLON").any()
    assert shown.tolist() == [re.sub(r"^C", "*********-*******-", c) for c in want["claim_id"]]
    assert got["p_deny"].equals(want["p_deny"])


# ----------------------------------------------------------------- the report manifest


@pytest.mark.slow
def test_manifest_names_the_key_by_fingerprint_only(tmp_path):
    data = tmp_path / "practice"
    key = load_key(create_key(data).parent)
    nbs = tmp_path / "nb"
    nbs.mkdir()
    params = nbformat.v4.new_code_cell(
        'data_dir: str = "."  # folder\nperiod_start: str = ""  # start\nperiod_end: str = ""  # end\n'
        'as_of: str = ""  # as of\npayers: list = []  # payers\nproviders: list = []  # providers\n'
        'fee_schedule_year: int = 0  # year\nlocality: str = ""  # locality\npractice_name: str = ""  # name\n'
        'title: str = "Stand-in"  # title')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell("from analytics.privacy import resolve_key\n"
                                     "print(resolve_key(near=[data_dir]).fingerprint)")
    nb = nbformat.v4.new_notebook(cells=[params, body])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbs / reports.REPORTS["scenarios"])
    result = reports.run_reports("scenarios", data, tmp_path / "out", notebooks_dir=nbs)
    run = json.loads((result.run_folder / "manifest.json").read_text())
    period = json.loads(result.manifest.read_text())
    assert run["pseudonym_key"] == {"pseudonyms": "HMAC-SHA-256, first 16 hex digits",
                                    "key_fingerprint": key_fingerprint(key), "keyed": True}
    assert period["reports"]["scenarios"]["pseudonym_key"]["key_fingerprint"] == key_fingerprint(key)
    printed = nbformat.read(result.reports[0].notebook, as_version=4).cells[-1].outputs[0]["text"].strip()
    assert printed == key_fingerprint(key)  # the notebooks pseudonymise with the key the manifest names
    for f in (tmp_path / "out").rglob("*"):
        if f.is_file():
            assert key.hex().encode() not in f.read_bytes().lower(), f


# ----------------------------------------------------------------- every CSV through the safe writer


def test_no_csv_is_written_past_the_spreadsheet_safe_writer(package_sources):
    """Every ``DataFrame.to_csv`` call in the package is in ``_files.py`` (``write_csv`` /
    ``csv_text``), except text hashed for a table's name (never written)."""
    import ast

    found = []
    for path, (_, tree) in package_sources.items():
        if path.name == "_files.py":
            continue
        hashed = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call)
                  and isinstance(call.func, ast.Attribute) and call.func.attr.startswith("sha")
                  for n in ast.walk(call)}
        found += [f"{path.relative_to(REPO)}:{node.lineno}" for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("to_csv", "to_excel") and id(node) not in hashed]
    assert not found, f"CSV written without write_csv/csv_text: {found}"


def test_claim_form_csv_keeps_a_formula_as_text(tmp_path):
    """OWASP "CSV Injection": a cell starting with ``=`` gets a leading ``'``; numbers stay numbers."""
    import dataclasses

    from analytics.scenarios.claim_form import ClaimForm, claim_form
    from analytics.scenarios.session import Referring, Session

    s = Session.from_minutes({"97124": 30, "97140": 30}, service_date="2026-06-01", distinct_regions=True,
                             dx_codes=["M54.50"])
    form = dataclasses.replace(claim_form(s, "97140 + 97124-XS"),
                               referring=Referring(name='=HYPERLINK("http://x.test","y")', npi="1234567893"))
    path = form.to_csv(tmp_path / "claim.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["17_name"].tolist() == ["'" + '=HYPERLINK("http://x.test","y")'] * 2
    assert ClaimForm.read_csv(path).lines["24F_charges"].tolist() == form.lines["24F_charges"].tolist()
