"""Tables written by the commands carry no patient names, member ids, dates of birth or raw ids.

A small copy of the sample practice gets planted identifiers: a name, a date of birth and a
member id for every patient in the export (under the headers exports use, ``Patient Name``,
``Date of Birth``, ``Member ID``), and patient and subscriber names and ids in every 835.
Each command that writes files runs through ``analytics.cli.main``; the privacy guard then
scans everything it wrote (and what it printed) for the planted identifiers, and the tables
must still hold every line they were given.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import cli
from analytics.intake import pseudonymise
from analytics.payers import load_payers
from analytics.pipeline import PARTITION_COLUMN, evaluate
from analytics.privacy import (
    Identifiers,
    identifiers_from_835,
    identifiers_from_export,
    scan_outputs,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
SURNAMES = ("Qwertyson", "Vexmore", "Brannigan", "Zolnikova", "Harkwright")
PLANTED_HEADERS = ("Patient Name", "Date of Birth", "Member ID")
N_LINES = 240  # the first four weeks of the sample practice

# the evaluated lines may name an edit or a price basis; these columns must equal evaluate's
FIGURES = ["line_id", "units", "disposition", "allowed", "patient_part", "payer_paid", "p_deny", "expected"]


# --------------------------------------------------------------------------- planted inputs


def _with_subscriber(text: str) -> str:
    """An 835 whose patients have names (NM1*QC) and a named subscriber with a member id
    (NM1*IL), with the SE segment counts kept right."""
    out: list[str] = []
    start = 0
    for seg in text.split("~"):
        seg = seg.strip("\r\n")
        if not seg:
            continue
        parts = seg.split("*")
        if parts[0] == "ST":
            start = len(out)
        if parts[0] == "SE":
            parts[1] = str(len(out) - start + 1)
            seg = "*".join(parts)
        if parts[0] == "NM1" and parts[1] == "QC":
            member = parts[9]
            seg = f"NM1*QC*1*VEXMORE*ZELDA****MI*{member}"
            out.append(seg)
            seg = f"NM1*IL*1*QWERTYSON*ABELARD****MI*SUB{member}"
        out.append(seg)
    return "~\n".join(out) + "~\n"


@pytest.fixture(scope="module")
def practice(tmp_path_factory) -> Path:
    """A small practice folder: the export with planted identifiers, the payers, and the
    first three 835s of every payer with planted names and subscriber ids."""
    data = tmp_path_factory.mktemp("planted") / "practice"
    (data / "remittances").mkdir(parents=True)
    shutil.copy(SAMPLE / "payers.yaml", data / "payers.yaml")
    lines = pd.read_csv(SAMPLE / "service_lines.csv", dtype=str, keep_default_na=False).head(N_LINES)
    number = pd.Series(pd.factorize(lines["patient_id"])[0], index=lines.index)
    lines["Patient Name"] = (np.asarray(SURNAMES, dtype=object)[number % len(SURNAMES)] + ", Zelda"
                             + number.map(lambda i: "abcdefghij"[i % 10] * 3))
    lines["Date of Birth"] = (pd.Timestamp("1950-01-01") + pd.to_timedelta(number * 97, unit="D")).dt.strftime(
        "%Y-%m-%d")
    lines["Member ID"] = "MBR" + lines["patient_id"].str[1:]
    lines.to_csv(data / "service_lines.csv", index=False)
    files = sorted(SAMPLE.glob("remittances/*.835"))
    for payer in sorted({f.name.rsplit("_", 1)[0] for f in files}):
        for f in [f for f in files if f.name.rsplit("_", 1)[0] == payer][:3]:
            (data / "remittances" / f.name).write_text(_with_subscriber(f.read_text()))
    return data


@pytest.fixture(scope="module")
def identifiers(practice) -> Identifiers:
    found = identifiers_from_export(practice / "service_lines.csv") | identifiers_from_835(
        sorted((practice / "remittances").iterdir()))
    lines = pd.read_csv(practice / "service_lines.csv", dtype=str)
    # the planted identifiers are all known to the guard, else a clean scan would prove nothing
    assert {"QWERTYSON", "VEXMORE", "ZELDA", "ABELARD"} <= found.names
    assert set(lines["patient_id"]) | set(lines["Member ID"]) <= found.ids
    assert any(i.startswith("SUBM") for i in found.ids)
    assert set(lines["Date of Birth"]) <= found.dates_of_birth
    return found


def service_lines(practice: Path) -> pd.DataFrame:
    """The planted export with typed columns, as a practice system would write Parquet."""
    lines = pd.read_csv(practice / "service_lines.csv", dtype={"patient_id": str, "minutes": float},
                        parse_dates=["service_date", "submission_date", "Date of Birth"])
    return lines.astype({c: "category" for c in ("provider_id", "provider_type", "payer_id", "cpt")})


def run(argv: list[str], stdout_file: Path) -> int:
    """Run a command, keeping what it prints in ``stdout_file`` (scanned like its tables)."""
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = cli.main(argv)
    stdout_file.parent.mkdir(parents=True, exist_ok=True)
    stdout_file.write_text(buffer.getvalue())
    return code


def assert_clean(out: Path, identifiers: Identifiers) -> None:
    found = scan_outputs([out], identifiers)
    assert found.empty, found.to_string()


def test_the_scan_finds_the_planted_identifiers_in_the_inputs(practice, identifiers, tmp_path):
    service_lines(practice).to_parquet(tmp_path / "lines.parquet", index=False)
    found = scan_outputs([tmp_path, practice / "remittances"], identifiers)
    assert {"id", "name", "date_of_birth"} <= set(found["kind"])


# --------------------------------------------------------------------------- evaluate


@pytest.fixture(params=["categorical", "text", "two files"])
def lines_source(request, practice, tmp_path) -> Path:
    """The planted lines as Parquet: patient ids categorical or plain text, one file or two."""
    lines = service_lines(practice)
    if request.param == "categorical":
        path = tmp_path / "lines.parquet"
        lines.astype({"patient_id": "category"}).to_parquet(path, index=False)
        return path
    path = tmp_path / "lines"
    path.mkdir()
    if request.param == "text":
        lines.to_parquet(path / "a.parquet", index=False)
    else:
        half = len(lines) // 2
        lines.iloc[:half].to_parquet(path / "a.parquet", index=False)
        lines.iloc[half:].to_parquet(path / "b.parquet", index=False)
    return path


def test_evaluate_writes_pseudonyms_and_no_identifying_column(practice, identifiers, lines_source, tmp_path,
                                                               capsys):
    out = tmp_path / "out"
    code = run(["evaluate", "--lines", str(lines_source), "--payers", str(practice / "payers.yaml"),
                "--out", str(out / "evaluated"), "--workers", "2", "--chunk-lines", "100"], out / "stdout.txt")
    assert code == 0
    assert "dropped for privacy: Patient Name, Date of Birth, Member ID" in capsys.readouterr().err
    assert_clean(out, identifiers)

    raw = service_lines(practice)
    got = pd.read_parquet(out / "evaluated").sort_values("line_id", ignore_index=True)
    assert len(got) == len(raw)  # rows in = rows out
    assert not set(PLANTED_HEADERS) & set(got.columns)
    # the intake's scheme: the same id gives the same pseudonym
    expected_ids = pseudonymise(raw.sort_values("line_id", ignore_index=True))["patient_id"]
    assert got["patient_id"].astype(str).tolist() == expected_ids.tolist()
    # a pseudonym stands for one id: visits group as they did, the figures are those of the raw ids
    expected = evaluate(raw, load_payers(practice / "payers.yaml")).sort_values("line_id", ignore_index=True)
    pd.testing.assert_frame_equal(got[FIGURES].astype({"disposition": str}),
                                  expected[FIGURES].astype({"disposition": str}))


def test_evaluate_on_dask_writes_pseudonyms_and_no_identifying_column(practice, identifiers, tmp_path):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("dask.dataframe")
    src = tmp_path / "lines.parquet"
    raw = service_lines(practice)
    raw.to_parquet(src, index=False)
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        code = run(["evaluate", "--lines", str(src), "--payers", str(practice / "payers.yaml"),
                    "--out", str(out / "evaluated"), "--dask", "--scheduler", cluster.scheduler_address],
                   out / "stdout.txt")
    assert code == 0
    assert_clean(out, identifiers)
    got = pd.read_parquet(out / "evaluated").sort_values("line_id", ignore_index=True)
    assert len(got) == len(raw)
    assert not set(PLANTED_HEADERS) & set(got.columns)
    expected_ids = pseudonymise(raw.sort_values("line_id", ignore_index=True))["patient_id"]
    assert got["patient_id"].astype(str).tolist() == expected_ids.tolist()
    assert got[PARTITION_COLUMN].notna().all()


# Every header the intake drops for privacy or reads as the patient id, by the kind of value
NAME_HEADERS = ("name", "patient", "patient_name", "patient_full_name", "full_name", "first_name", "last_name",
                "middle_name", "patient_first_name", "patient_last_name", "guarantor_name", "subscriber_name",
                "insured_name", "firstname", "lastname")
DOB_HEADERS = ("dob", "patient_dob", "date_of_birth", "birth_date", "birthdate")
ID_HEADERS = ("ssn", "patient_ssn", "social_security_number", "member_id", "subscriber_id", "insured_id", "mrn",
              "chart_number", "account_number", "patient_account", "patient_account_number", "patient_number")
CONTACT_HEADERS = ("address", "street_address", "patient_address", "phone", "phone_number", "patient_phone",
                   "email", "patient_email")


def test_the_header_lists_cover_the_intakes(tmp_path):
    from analytics.intake import _ALIASES, PRIVATE_COLUMNS

    assert set(PRIVATE_COLUMNS) <= {*NAME_HEADERS, *DOB_HEADERS, *ID_HEADERS, *CONTACT_HEADERS}
    # every header the intake reads as the patient id ("Account #", "Acct No") is one whose
    # values the guard collects
    for alias in [a for a, target in _ALIASES.items() if target == "patient_id"] + ["Account #"]:
        export = tmp_path / "export.csv"
        pd.DataFrame({alias.replace("_", " ").title(): ["ZX90210"], "cpt": ["97140"]}).to_csv(export, index=False)
        assert "ZX90210" in identifiers_from_export(export).ids, alias


def test_every_identifying_header_is_guarded_and_left_out_by_evaluate(practice, tmp_path):
    lines = service_lines(practice).head(30).drop(columns=list(PLANTED_HEADERS))
    planted = {
        **{h: f"Plimsworth{'abcdefghijklmno'[i]}x Ophelia" for i, h in enumerate(NAME_HEADERS)},
        **{h: f"19{40 + i}-0{i + 1}-1{i}" for i, h in enumerate(DOB_HEADERS)},
        **{h: f"ZX{9000 + i}" for i, h in enumerate(ID_HEADERS)},
        **{h: f"{i} Quarrybank Lane" for i, h in enumerate(CONTACT_HEADERS)},
    }
    for header, value in planted.items():
        lines[header.replace("_", " ").title()] = value  # as an export would head it: "Patient Ssn"
    export = tmp_path / "export.csv"
    lines.to_csv(export, index=False)
    guarded = identifiers_from_export(export)
    for header in (*NAME_HEADERS, *DOB_HEADERS, *ID_HEADERS):
        kind = "names" if header in NAME_HEADERS else "dates_of_birth" if header in DOB_HEADERS else "ids"
        value = planted[header]
        token = value.split()[0].upper() if kind == "names" else value.upper()
        assert token in getattr(guarded, kind), header

    src = tmp_path / "lines.parquet"
    lines.to_parquet(src, index=False)
    out = tmp_path / "out"
    code = run(["evaluate", "--lines", str(src), "--payers", str(practice / "payers.yaml"), "--out",
                str(out / "evaluated"), "--workers", "1"], out / "stdout.txt")
    assert code == 0
    assert_clean(out, guarded | identifiers_from_export(practice / "service_lines.csv"))
    got = pd.read_parquet(out / "evaluated")
    assert len(got) == len(lines)
    assert not [c for c in got.columns if c.lower().replace(" ", "_") in planted]  # contact details too


# --------------------------------------------------------------------------- remit, denials, intake


def _count(files: list[Path], segment: str) -> int:
    return sum(len(re.findall(rf"(?:^|~)\s*{segment}\*", f.read_text())) for f in files)


def test_remit_tables_have_keys_not_names_or_member_ids(practice, identifiers, tmp_path):
    files = sorted((practice / "remittances").iterdir())
    out = tmp_path / "out"
    assert run(["remit", str(practice / "remittances"), "--out", str(out / "remit")], out / "stdout.txt") == 0
    assert_clean(out, identifiers)
    # remit names its tables remit_*.parquet/.csv (never a practice's service_lines.*)
    claims = pd.read_parquet(next((out / "remit").glob("*claims.parquet")))
    lines = pd.read_parquet(next((out / "remit").glob("*lines.parquet")))
    assert len(claims) == _count(files, "CLP") and len(lines) == _count(files, "SVC")
    assert len(pd.read_csv(next((out / "remit").glob("*claims.csv")))) == len(claims)
    assert claims["patient_key"].str.fullmatch("[0-9a-f]{16}").all()


def test_denials_writes_nothing_and_prints_no_identifier(practice, identifiers, tmp_path):
    before = sorted(p.relative_to(practice) for p in practice.rglob("*"))
    out = tmp_path / "out"
    assert run(["denials", "--data", str(practice), "--json"], out / "stdout.json") == 0
    assert sorted(p.relative_to(practice) for p in practice.rglob("*")) == before
    assert_clean(out, identifiers)
    summary = json.loads((out / "stdout.json").read_text())
    assert summary["remittances"]["lines"] == _count(sorted((practice / "remittances").iterdir()), "SVC")
    assert summary["model"] is not None


def test_intake_tables_carry_pseudonyms_and_no_identifying_column(practice, identifiers, tmp_path):
    export = tmp_path / "export.csv"
    lines = pd.read_csv(practice / "service_lines.csv", dtype=str, keep_default_na=False)
    lines.loc[[3, 7], "cpt"] = "9714X"  # two rows to quarantine, identifiers and all
    lines.to_csv(export, index=False)
    out = tmp_path / "out"
    assert run(["intake", str(export), "--out", str(out / "intake")], out / "stdout.txt") == 0
    assert_clean(out, identifiers)
    accepted = pd.read_parquet(out / "intake" / "lines.parquet")
    quarantined = pd.read_csv(out / "intake" / "quarantine.csv")
    assert len(accepted) + len(quarantined) == len(lines) and len(quarantined) == 2
    assert set(accepted["patient_id"]) <= set(pseudonymise(lines)["patient_id"])


@pytest.mark.parametrize("dask", [False, True])
def test_evaluate_keeps_the_pseudonyms_of_an_intake_file(practice, identifiers, tmp_path, dask):
    """intake's lines.parquet says its ids are pseudonyms; evaluate does not hash them again."""
    out = tmp_path / "out"
    assert run(["intake", str(practice / "service_lines.csv"), "--out", str(out / "intake")],
               out / "intake.txt") == 0
    argv = ["evaluate", "--lines", str(out / "intake" / "lines.parquet"), "--payers", str(practice / "payers.yaml"),
            "--out", str(out / "evaluated")]
    if dask:
        distributed = pytest.importorskip("distributed")
        pytest.importorskip("dask.dataframe")
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster:
            assert run([*argv, "--dask", "--scheduler", cluster.scheduler_address], out / "evaluate.txt") == 0
    else:
        assert run([*argv, "--workers", "1"], out / "evaluate.txt") == 0
    assert_clean(out, identifiers)
    accepted = pd.read_parquet(out / "intake" / "lines.parquet").sort_values("line_id", ignore_index=True)
    got = pd.read_parquet(out / "evaluated").sort_values("line_id", ignore_index=True)
    assert len(got) == len(accepted)
    assert got["patient_id"].astype(str).tolist() == accepted["patient_id"].astype(str).tolist()


# --------------------------------------------------------------------------- print-only commands


@pytest.mark.parametrize("argv", [
    ["units", "97110=33", "97140=7"],
    ["price", "--payer", "medicare", "--year", "2025", "97110x2", "97140"],
    ["compare", "--year", "2025", "97124=30", "97140=30", "--distinct-regions"],
])
def test_commands_that_only_print_write_no_file(argv, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert run(argv, tmp_path / "stdout.txt") == 0
    assert not any(cwd.iterdir())
