"""The privacy guard finds planted identifiers and passes clean outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.exceptions import PrivacyError
from analytics.intake import read_service_lines
from analytics.privacy import (
    IDENTIFYING_COLUMNS,
    Identifiers,
    check_outputs,
    identifiers_from_835,
    identifiers_from_export,
    identifying_columns,
    is_identifying,
    scan_outputs,
)

EXPORT = """patient_id,Patient Name,DOB,cpt,charge
PT-88231,"Qwertyson, Zelda",1961-03-04,97140,60
PT-88232,Vexmore Brannigan,02/11/1975,97124,55
"""


def test_identifiers_from_export(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(EXPORT)
    ids = identifiers_from_export(path)
    assert {"PT-88231", "PT-88232"} <= ids.ids
    assert {"QWERTYSON", "ZELDA", "VEXMORE", "BRANNIGAN"} <= ids.names
    assert "1961-03-04" in ids.dates_of_birth and "02/11/1975" in ids.dates_of_birth


def test_identifiers_from_835(x12_dir):
    ids = identifiers_from_835([x12_dir / "synthetic_835_massage.edi"])
    assert "SYNMBR001" in ids.ids and "SAMPLE" in ids.names


@pytest.mark.parametrize("leak", [
    "<td>PT-88231</td>", "Patient: zelda qwertyson", "born 03/04/1961", '{"member": "pt-88232"}',
])
def test_planted_identifier_is_found(tmp_path, leak):
    ids = Identifiers()
    ids.add_ids(["PT-88231", "PT-88232"])
    ids.add_names(["Qwertyson, Zelda"])
    ids.add_dates(["1961-03-04"])
    out = tmp_path / "report"
    out.mkdir()
    (out / "page.html").write_text(f"<html><body><p>Totals</p>{leak}</body></html>")
    with pytest.raises(PrivacyError, match="page.html") as err:
        check_outputs([out], ids)
    assert len(err.value.rows) >= 1
    assert "PT-88231" not in str(err.value)  # the message itself masks values


def test_clean_outputs_and_whole_tokens_only(tmp_path):
    ids = Identifiers()
    ids.add_ids(["MBR001"])
    page = tmp_path / "page.html"
    page.write_text("<p>MBR0012 is another token; 97140 paid $27.17</p>")
    pd.DataFrame({"cpt": ["97140"], "paid": [27.17]}).to_parquet(tmp_path / "t.parquet")
    assert scan_outputs([tmp_path], ids).empty
    check_outputs([tmp_path], ids)


def test_parquet_outputs_are_scanned(tmp_path):
    ids = Identifiers()
    ids.add_ids(["PT-88231"])
    pd.DataFrame({"patient_id": ["PT-88231"]}).to_parquet(tmp_path / "lines.parquet")
    assert scan_outputs([tmp_path], ids)["kind"].tolist() == ["id"]


# Every header (snake case) that names or identifies a patient, written out here so that a
# header dropped from the list in analytics/privacy.py fails a test.
IDENTIFYING_HEADERS = (
    # names
    "patient_name", "name", "first_name", "last_name", "firstname", "lastname", "patient_first_name",
    "patient_last_name", "subscriber_name", "insured_name", "patient", "full_name", "patient_full_name",
    "middle_name", "guarantor_name",
    # dates of birth
    "dob", "date_of_birth", "birth_date", "birthdate", "patient_dob",
    # social security numbers
    "ssn", "patient_ssn", "social_security_number",
    # health plan member ids
    "member_id", "subscriber_id", "insured_id",
    # the practice's patient and account numbers
    "patient_id", "mrn", "chart_number", "account_number", "patient_account", "patient_account_number",
    "patient_number",
    # contact details
    "address", "street_address", "patient_address", "phone", "phone_number", "patient_phone", "email",
    "patient_email",
)
REQUIRED = {"patient_id": "PT-1", "service_date": "2025-03-04", "provider_id": "t1", "provider_type": "lmt",
            "payer_id": "aetna", "cpt": "97140", "charge": "60"}


def test_one_list_of_identifying_headers():
    assert set(IDENTIFYING_HEADERS) == IDENTIFYING_COLUMNS


@pytest.mark.parametrize("header", IDENTIFYING_HEADERS)
def test_each_identifying_header_is_recognised(header, tmp_path):
    exported = header.replace("_", " ").title()  # as an export heads it: "Patient Ssn"
    assert is_identifying(header) and is_identifying(exported)
    # saved tables leave it out (the patient column itself is kept, to be pseudonymised)
    assert identifying_columns([exported, "cpt", "units"], patient_column="line_id") == [exported]
    assert identifying_columns([exported, "cpt"], patient_column=exported) == []
    if header == "patient_id":
        return
    # the intake drops it, or reads it as the patient id, which a patient_id column outranks
    path = tmp_path / "export.csv"
    pd.DataFrame({**REQUIRED, exported: "Zqxplanted 9981"}, index=[0]).to_csv(path, index=False)
    intake = read_service_lines(path)
    assert intake.accepted == 1
    assert exported not in intake.lines.columns
    assert not intake.lines.astype(str).isin(["Zqxplanted 9981"]).any().any()
