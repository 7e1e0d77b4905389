"""Service-line intake: reading exports, quarantine, privacy and the command line."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import privacy
from analytics.cli import main
from analytics.exceptions import InputError, QuarantineWarning
from analytics.intake import (
    DEFAULT_SALT,
    Intake,
    pseudonymise,
    read_service_lines,
    read_service_lines_many,
)
from analytics.schemas import CANONICAL_COLUMNS, CANONICAL_DTYPES, ServiceLineSchema

pytestmark = pytest.mark.filterwarnings("ignore::analytics.exceptions.QuarantineWarning")

COLUMNS = [
    "line_id",
    "claim_id",
    "patient_id",
    "service_date",
    "provider_id",
    "provider_type",
    "payer_id",
    "cpt",
    "minutes",
    "modifiers",
    "dx_codes",
    "charge",
    "units_billed",
    "prescription_on_file",
    "submission_date",
    "rendering_npi",
]

GOOD_ROWS = [
    {
        "line_id": "A1",
        "claim_id": "C1",
        "patient_id": "P001",
        "service_date": "2025-03-04",
        "provider_id": "T1",
        "provider_type": "LMT",
        "payer_id": "AETNA",
        "cpt": "97140",
        "minutes": "23",
        "modifiers": "GP 59",
        "dx_codes": "M5450;M62830",
        "charge": "95.5",
        "units_billed": "2",
        "prescription_on_file": "yes",
        "submission_date": "2025-03-10",
        "rendering_npi": "1234567893",
    },
    {
        "line_id": "A2",
        "claim_id": "C1",
        "patient_id": "P001",
        "service_date": "2025-03-04",
        "provider_id": "T1",
        "provider_type": "Licensed Massage Therapist",
        "payer_id": "AETNA",
        "cpt": "G0283",
        "minutes": "",
        "modifiers": "",
        "dx_codes": "M54.50",
        "charge": "20",
        "units_billed": "1",
        "prescription_on_file": "n",
        "submission_date": "",
        "rendering_npi": "",
    },
    {
        "line_id": "A3",
        "claim_id": "C2",
        "patient_id": "P002",
        "service_date": "2025-03-05",
        "provider_id": "T2",
        "provider_type": "Physical Therapist",
        "payer_id": "NA",
        "cpt": "97124",
        "minutes": "38",
        "modifiers": "GP",
        "dx_codes": "S39.012A",
        "charge": "120",
        "units_billed": "3",
        "prescription_on_file": "",
        "submission_date": "2025-03-05",
        "rendering_npi": "1234567893",
    },
]

PCS_REASON = (
    "8E0KX1Z is an ICD-10-PCS inpatient procedure code; "
    "professional claims carry ICD-10-CM diagnoses"
)

# One way to spoil a good row per kind of problem, with a fragment of the reason.
BAD_KINDS = {
    "negative_minutes": ({"minutes": "-5"}, "minutes '-5' is negative"),
    "text_minutes": ({"minutes": "abc"}, "minutes 'abc' is not a number"),
    "short_cpt": ({"cpt": "9714"}, "cpt '9714' is not a CPT/HCPCS code"),
    "bad_date": ({"service_date": "2025-02-30"}, "service_date '2025-02-30' is not a date"),
    "pcs_dx": ({"dx_codes": "M54.50,8E0KX1Z"}, PCS_REASON),
    "injury_no_7th": ({"dx_codes": "S39.012"}, "S39.012 is an injury code and needs a 7th"),
    "bad_npi": ({"rendering_npi": "1234567890"}, "rendering_npi '1234567890' fails the NPI"),
    "submitted_early": (
        {"submission_date": "2025-03-01"},
        "submission_date '2025-03-01' is before service_date '2025-03-04'",
    ),
    "empty_patient": ({"patient_id": ""}, "patient_id is empty"),
    "negative_charge": ({"charge": "(10.00)"}, "charge '(10.00)' is negative"),
    "unknown_provider": ({"provider_type": "reiki"}, "provider_type 'reiki' is not one of"),
    "bad_modifier": ({"modifiers": "GP,5"}, "modifier '5' is not two letters or digits"),
}


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    frame = pd.DataFrame(rows, columns=columns or COLUMNS, dtype="str")
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "export.csv", GOOD_ROWS)


# ----------------------------------------------------------------- good files


def test_known_good_csv_loads_with_codes_as_text(good_csv):
    intake = read_service_lines(good_csv)
    lines = intake.lines
    assert isinstance(intake, Intake)
    assert intake.rows_in == 3 and intake.quarantined == 0
    assert lines["cpt"].tolist() == ["97140", "G0283", "97124"]
    assert lines["line_id"].tolist() == ["A1", "A2", "A3"]
    assert lines["source_row"].tolist() == [2, 3, 4]
    assert lines["payer_id"].tolist() == ["AETNA", "AETNA", "NA"]  # "NA" is not missing
    assert lines["provider_type"].tolist() == ["lmt", "lmt", "pt"]
    assert lines["modifiers"].tolist() == ["GP,59", "", "GP"]
    assert lines["dx_codes"].tolist() == ["M54.50,M62.830", "M54.50", "S39.012A"]
    assert lines["minutes"].isna().tolist() == [False, True, False]
    assert lines["units_billed"].tolist() == [2, 1, 3]
    assert lines["prescription_on_file"].tolist() == [True, False, pd.NA]
    assert lines["place_of_service"].tolist() == ["11", "11", "11"]
    assert list(lines.columns[: len(CANONICAL_COLUMNS)]) == list(CANONICAL_COLUMNS)
    for name, dtype in CANONICAL_DTYPES.items():
        assert lines[name].dtype == dtype, name
    ServiceLineSchema.validate(lines)
    assert str(intake) == f"{good_csv}: rows in 3 = accepted 3 + quarantined 0"


def test_leading_zeros_and_float_looking_codes(tmp_path):
    rows = [dict(GOOD_ROWS[0], cpt="00100"), dict(GOOD_ROWS[1], cpt="97140.0", minutes="20")]
    lines = read_service_lines(write_csv(tmp_path / "x.csv", rows)).lines
    assert lines["cpt"].tolist() == ["00100", "97140"]


def test_code_with_modifiers_attached_is_split(tmp_path):
    rows = [dict(GOOD_ROWS[0], cpt="97140-GP", modifiers="59")]
    lines = read_service_lines(write_csv(tmp_path / "x.csv", rows)).lines
    assert lines.loc[0, "cpt"] == "97140"
    assert lines.loc[0, "modifiers"] == "59,GP"


@pytest.mark.parametrize(("written", "code", "modifiers"), [
    ("97140GP", "97140", "GP"), ("97124XS", "97124", "XS"), ("97124GP59", "97124", "GP,59"),
    ("97140-GP 59", "97140", "GP,59"), ("97140:GP:59", "97140", "GP,59"), ('="97140"', "97140", ""),
    ('="97124-GP"', "97124", "GP"), ("G0283", "G0283", ""),
])
def test_codes_with_modifiers_run_together_or_as_spreadsheet_text(tmp_path, written, code, modifiers):
    rows = [dict(GOOD_ROWS[0], cpt=written, modifiers="")]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert intake.accepted == 1, intake.quarantine["reason"].tolist()
    assert (intake.lines.loc[0, "cpt"], intake.lines.loc[0, "modifiers"]) == (code, modifiers)


def test_a_code_too_long_to_be_a_code_and_modifiers_is_set_aside(tmp_path):
    intake = read_service_lines(write_csv(tmp_path / "x.csv", [dict(GOOD_ROWS[0], cpt="97140G")]))
    assert intake.accepted == 0 and "cpt '97140G' is not a CPT/HCPCS code" in intake.quarantine.loc[0, "reason"]


def _typed_cell(column: str, value: str):
    """The value as a spreadsheet program would store it (numbers, dates, booleans)."""
    if value == "":
        return None
    if column in ("service_date", "submission_date"):
        return dt.datetime.fromisoformat(value)
    if column in ("minutes", "charge"):
        return float(value)
    if column in ("units_billed", "rendering_npi") or (column == "cpt" and value.isdigit()):
        return int(value)
    if column == "prescription_on_file":
        return value in ("yes", "y")
    return value


def test_xlsx_and_parquet_give_identical_lines(tmp_path, good_csv):
    from_csv = read_service_lines(good_csv).lines.drop(columns="source_file")

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    for row in GOOD_ROWS:
        sheet.append([_typed_cell(c, row[c]) for c in COLUMNS])
    book.save(tmp_path / "export.xlsx")
    from_xlsx = read_service_lines(tmp_path / "export.xlsx").lines.drop(columns="source_file")

    typed = pd.DataFrame(GOOD_ROWS, columns=COLUMNS)
    typed = typed.assign(
        service_date=pd.to_datetime(typed["service_date"]),
        submission_date=pd.to_datetime(typed["submission_date"].replace("", None)),
        minutes=pd.to_numeric(typed["minutes"]),
        charge=pd.to_numeric(typed["charge"]),
        units_billed=pd.to_numeric(typed["units_billed"]).astype("Int64"),
        prescription_on_file=typed["prescription_on_file"]
        .map({"yes": True, "n": False})
        .astype("boolean"),
    )
    typed.to_parquet(tmp_path / "export.parquet", index=False)
    from_parquet = read_service_lines(tmp_path / "export.parquet").lines.drop(columns="source_file")

    pd.testing.assert_frame_equal(from_xlsx, from_csv)
    pd.testing.assert_frame_equal(from_parquet, from_csv)


def test_excel_sheet_by_name_and_place_of_service_padding(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Notes"
    sheet = book.create_sheet("Lines")
    sheet.append([*COLUMNS, "POS"])
    sheet.append([_typed_cell(c, GOOD_ROWS[0][c]) for c in COLUMNS] + [2])
    book.save(tmp_path / "book.xlsx")
    lines = read_service_lines(tmp_path / "book.xlsx", sheet="Lines").lines
    assert lines["place_of_service"].tolist() == ["02"]
    assert lines["cpt"].tolist() == ["97140"]


def test_mapping_dict_with_other_column_names(tmp_path):
    names = {
        "Account": "patient_id",
        "DOS": "service_date",
        "Therapist": "provider_id",
        "Credential": "provider_type",
        "Plan": "payer_id",
        "Proc": "cpt",
        "Time": "minutes",
        "Fee": "charge",
    }
    frame = pd.DataFrame(
        {
            "Account": ["P001"],
            "DOS": ["03/04/2025"],
            "Therapist": ["T1"],
            "Credential": ["LMT"],
            "Plan": ["AETNA"],
            "Proc": ["97140"],
            "Time": ["23"],
            "Fee": ["$1,095.00"],
        }
    )
    frame.to_csv(tmp_path / "pm.csv", index=False)
    intake = read_service_lines(tmp_path / "pm.csv", mapping=names)
    line = intake.lines.iloc[0]
    assert (line["patient_id"], line["cpt"], line["charge"]) == ("P001", "97140", 1095.0)
    assert line["service_date"] == pd.Timestamp("2025-03-04")
    assert line["line_id"] == "L2"
    assert intake.column_map["Proc"] == "cpt"


def test_mapping_yaml_with_date_format_and_defaults(tmp_path):
    (tmp_path / "map.yaml").write_text(
        "columns:\n"
        "  Patient Acct: patient_id\n"
        "  Visit Date: service_date\n"
        "  Provider: provider_id\n"
        "  Type: provider_type\n"
        "  Code: cpt\n"
        "  Amount: charge\n"
        "  Internal note: null\n"
        'date_format: "%d.%m.%Y"\n'
        "defaults:\n"
        "  payer_id: WC-STATE\n"
        "provider_types:\n"
        "  Bodywork: lmt\n",
        encoding="utf-8",
    )
    frame = pd.DataFrame(
        {
            "Patient Acct": ["P1", "P2"],
            "Visit Date": ["04.03.2025", "2025-03-05"],
            "Provider": ["T1", "T1"],
            "Type": ["Bodywork", "LMT"],
            "Code": ["97124", "97140"],
            "Amount": ["60", "70"],
            "Internal note": ["x", "y"],
        }
    )
    frame.to_csv(tmp_path / "pm.csv", index=False)
    intake = read_service_lines(tmp_path / "pm.csv", mapping=tmp_path / "map.yaml")
    assert intake.quarantined == 0
    assert intake.lines["service_date"].tolist() == [
        pd.Timestamp("2025-03-04"),
        pd.Timestamp("2025-03-05"),
    ]
    assert intake.lines["payer_id"].tolist() == ["WC-STATE", "WC-STATE"]
    assert intake.lines["provider_type"].tolist() == ["lmt", "lmt"]
    assert "Internal note" not in intake.lines.columns


def test_common_header_spellings_match_without_a_mapping(tmp_path):
    frame = pd.DataFrame(
        {
            "Patient ID": ["P1"],
            "Date of Service": ["2025-03-04"],
            "Provider ID": ["T1"],
            "Provider Type": ["DC"],
            "Payer": ["BCBS"],
            "CPT Code": ["97140"],
            "Charge Amount": ["80"],
            "Units": ["2"],
        }
    )
    frame.to_csv(tmp_path / "pm.csv", index=False)
    lines = read_service_lines(tmp_path / "pm.csv").lines
    assert lines.loc[0, ["cpt", "payer_id", "provider_type"]].tolist() == ["97140", "BCBS", "dc"]
    assert lines.loc[0, "units_billed"] == 2


def test_modifiers_in_separate_columns_are_merged(tmp_path):
    rows = [
        dict(GOOD_ROWS[0], modifiers="", **{"Modifier 1": "gp", "Mod2": "59", "modifier_3": ""}),
        dict(GOOD_ROWS[1], modifiers="KX", **{"Modifier 1": "GP", "Mod2": "", "modifier_3": "GP"}),
    ]
    columns = [*COLUMNS, "Modifier 1", "Mod2", "modifier_3"]
    lines = read_service_lines(write_csv(tmp_path / "x.csv", rows, columns)).lines
    assert lines["modifiers"].tolist() == ["GP,59", "KX,GP"]
    assert not {"Modifier 1", "Mod2", "modifier_3"} & set(lines.columns)


def test_other_columns_are_kept_only_when_declared_safe(tmp_path):
    rows = [dict(GOOD_ROWS[0], Location="Main St", **{"Visit Notes": "Jane Doe, DOB 1/2/1960"})]
    path = write_csv(tmp_path / "x.csv", rows, [*COLUMNS, "Location", "Visit Notes"])
    intake = read_service_lines(path)
    assert not {"Location", "Visit Notes"} & set(intake.lines.columns)
    reasons = dict(zip(intake.ignored["column"], intake.ignored["reason"], strict=True))
    assert reasons["Location"].startswith("not used by the toolkit")
    assert reasons["Visit Notes"].startswith("free text")
    kept = read_service_lines(path, mapping={"columns": {}, "keep": ["Location"]}).lines
    assert kept["Location"].tolist() == ["Main St"] and "Visit Notes" not in kept.columns
    with pytest.raises(InputError, match="identifies a patient"):
        read_service_lines(path, mapping={"columns": {}, "keep": ["Patient Name"]})


# ----------------------------------------------------------------- quarantine


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_each_bad_row_kind_is_quarantined_with_row_and_reason(tmp_path, kind):
    change, fragment = BAD_KINDS[kind]
    rows = [GOOD_ROWS[0], dict(GOOD_ROWS[0], line_id="BAD", **change), GOOD_ROWS[2]]
    with pytest.warns(QuarantineWarning, match="1 of 3 row"):
        intake = read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert intake.lines["line_id"].tolist() == ["A1", "A3"]
    assert intake.quarantine["source_row"].tolist() == [3]
    assert fragment in intake.quarantine.loc[0, "reason"]
    assert intake.quarantine.loc[0, "line_id"] == "BAD"  # original values kept as text
    assert intake.rows_in == intake.accepted + intake.quarantined


def test_all_reasons_of_a_row_are_listed(tmp_path):
    bad = dict(GOOD_ROWS[0], minutes="-5", cpt="9714", dx_codes="8E0KX1Z", rendering_npi="1")
    intake = read_service_lines(write_csv(tmp_path / "x.csv", [GOOD_ROWS[0], bad]))
    reason = intake.quarantine.loc[0, "reason"]
    for fragment in ("cpt '9714'", "minutes '-5' is negative", PCS_REASON, "rendering_npi '1'"):
        assert fragment in reason
    assert reason.count("; ") >= 3
    assert set(intake.problems["source_row"]) == {3}
    counts = intake.reason_counts()
    assert counts["minutes is negative"] == 1
    assert counts["dx is an ICD-10-PCS procedure code"] == 1


def test_quarantine_warning_points_at_the_caller(tmp_path):
    rows = [dict(GOOD_ROWS[0], minutes="-1")]
    with pytest.warns(QuarantineWarning) as record:
        read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert Path(record[0].filename).resolve() == Path(__file__).resolve()


def test_row_numbers_count_blank_lines_like_a_spreadsheet(tmp_path):
    path = tmp_path / "x.csv"
    write_csv(path, [GOOD_ROWS[0]])
    bad = pd.DataFrame([dict(GOOD_ROWS[1], cpt="123")], columns=COLUMNS)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n")
        bad.to_csv(handle, header=False, index=False)
    intake = read_service_lines(path)
    assert intake.rows_in == 2  # a fully blank line is not a row
    assert intake.quarantine["source_row"].tolist() == [4]


def test_duplicate_line_ids_are_quarantined(tmp_path):
    rows = [GOOD_ROWS[0], GOOD_ROWS[1], dict(GOOD_ROWS[2], line_id="A1")]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert intake.quarantine["reason"].tolist() == ["line_id 'A1' repeats row 2"]


def test_missing_required_column_names_it_and_the_fix(tmp_path):
    columns = [c for c in COLUMNS if c != "cpt"]
    path = write_csv(tmp_path / "x.csv", [{c: GOOD_ROWS[0][c] for c in columns}], columns)
    with pytest.raises(InputError) as caught:
        read_service_lines(path)
    message = str(caught.value)
    assert str(path) in message
    assert "missing required column(s) cpt" in message
    assert "'patient_id'" in message  # columns found
    assert '"Your Column": cpt' in message and "mapping.yaml" in message
    assert isinstance(caught.value, ValueError)


def test_bad_mapping_target_and_ambiguous_columns(tmp_path, good_csv):
    with pytest.raises(InputError, match="not a column of the toolkit"):
        read_service_lines(good_csv, mapping={"cpt": "procedure"})
    rows = [dict(GOOD_ROWS[0], **{"CPT Code": "97140", "Procedure Code": "97124"})]
    columns = [c for c in COLUMNS if c != "cpt"] + ["CPT Code", "Procedure Code"]
    with pytest.raises(InputError, match="all look like cpt"):
        read_service_lines(write_csv(tmp_path / "y.csv", rows, columns))
    lines = read_service_lines(tmp_path / "y.csv", mapping={"Procedure Code": "cpt"}).lines
    assert lines["cpt"].tolist() == ["97124"]


def test_empty_export_with_header(tmp_path):
    path = write_csv(tmp_path / "empty.csv", [])
    intake = read_service_lines(path)
    assert (intake.rows_in, intake.accepted, intake.quarantined) == (0, 0, 0)
    for name, dtype in CANONICAL_DTYPES.items():
        assert intake.lines[name].dtype == dtype
    assert str(intake).endswith("rows in 0 = accepted 0 + quarantined 0")


def test_file_without_header_is_an_input_error(tmp_path):
    (tmp_path / "blank.csv").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        read_service_lines(tmp_path / "blank.csv")
    with pytest.raises(InputError, match="no such file"):
        read_service_lines(tmp_path / "absent.csv")


def test_one_line_export(tmp_path):
    intake = read_service_lines(write_csv(tmp_path / "one.csv", [GOOD_ROWS[2]]))
    assert intake.accepted == 1 and intake.lines.loc[0, "source_row"] == 2


def test_read_many_stacks_and_reconciles(tmp_path):
    first = write_csv(tmp_path / "jan.csv", GOOD_ROWS[:2])
    second = write_csv(tmp_path / "feb.csv", [GOOD_ROWS[2], dict(GOOD_ROWS[0], cpt="1")])
    intake = read_service_lines_many([first, second])
    assert (intake.rows_in, intake.accepted, intake.quarantined) == (4, 3, 1)
    assert intake.lines["source_file"].tolist() == ["jan.csv", "jan.csv", "feb.csv"]
    assert intake.quarantine[["source_file", "source_row"]].values.tolist() == [["feb.csv", 3]]
    ServiceLineSchema.validate(intake.lines)  # line ids stay unique across files


def test_read_many_generated_ids_name_the_file_and_repeats_are_caught(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "line_id"} for row in GOOD_ROWS]
    columns = [c for c in COLUMNS if c != "line_id"]
    first = write_csv(tmp_path / "jan.csv", rows[:2], columns)
    second = write_csv(tmp_path / "feb.csv", rows[2:], columns)
    intake = read_service_lines_many([first, second])
    assert intake.lines["line_id"].tolist() == ["jan.csv:L2", "jan.csv:L3", "feb.csv:L2"]

    overlap = write_csv(tmp_path / "feb_overlap.csv", GOOD_ROWS[1:])
    again = read_service_lines_many([write_csv(tmp_path / "jan2.csv", GOOD_ROWS[:2]), overlap])
    assert again.lines["line_id"].tolist() == ["A1", "A2", "A3"]
    assert again.quarantine["reason"].tolist() == ["line_id 'A2' repeats jan2.csv row 3"]
    assert again.rows_in == again.accepted + again.quarantined == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-04", "2025-03-04"),
        ("3/4/2025", "2025-03-04"),
        ("03/04/25", None),  # 1925 or 2025? set aside unless mapping.yaml sets century_pivot
        ("03-04-2025", "2025-03-04"),
        ("20250304", "2025-03-04"),
        ("2025-03-04 14:30:00", "2025-03-04"),
        ("2025-03-04T14:30:00+02:00", "2025-03-04"),
        ("2025", None),
        ("2025-03", None),
        ("0025-03-04", None),
        ("next tuesday", None),
    ],
)
def test_service_date_forms(tmp_path, text, expected):
    intake = read_service_lines(
        write_csv(tmp_path / "x.csv", [dict(GOOD_ROWS[1], service_date=text)])
    )
    if expected is None:
        assert intake.quarantined == 1
        assert f"service_date '{text}'" in intake.quarantine.loc[0, "reason"]
    else:
        assert intake.lines.loc[0, "service_date"] == pd.Timestamp(expected)


def test_unreadable_inputs_are_input_errors(tmp_path, good_csv):
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf")
    with pytest.raises(InputError, match="xlsx"):
        read_service_lines(tmp_path / "old.xls")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .xlsx"):
        read_service_lines(tmp_path / "broken.xlsx")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        read_service_lines(tmp_path / "broken.parquet")
    (tmp_path / "notes.docx").write_bytes(b"")
    with pytest.raises(InputError, match="unknown file type"):
        read_service_lines(tmp_path / "notes.docx")
    (tmp_path / "bad.yaml").write_text("colums: {Proc: cpt}\n", encoding="utf-8")
    with pytest.raises(InputError, match="unknown setting"):
        read_service_lines(good_csv, mapping=tmp_path / "bad.yaml")
    with pytest.raises(InputError, match="defaults name unknown"):
        read_service_lines(good_csv, defaults={"payer": "aetna"})


def test_cp1252_export(tmp_path):
    path = tmp_path / "win.csv"
    pd.DataFrame([dict(GOOD_ROWS[0], claim_id="Café")], columns=COLUMNS).to_csv(
        path, index=False, encoding="cp1252"
    )
    assert read_service_lines(path).lines.loc[0, "claim_id"] == "Café"


# ----------------------------------------------------------------- privacy


def test_name_and_birth_date_columns_are_dropped(tmp_path):
    private = {"Patient Name": "Doe, Jane", "DOB": "1980-01-01", "member_id": "XYZ1", "SSN": "1"}
    rows = [dict(GOOD_ROWS[0], **private), dict(GOOD_ROWS[1], cpt="1", **private)]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows, [*COLUMNS, *private]))
    assert set(intake.dropped_columns) == set(private)
    for table in (intake.lines, intake.quarantine):
        assert not set(private) & set(table.columns)
        assert not table.astype(str).isin(["Doe, Jane", "1980-01-01", "XYZ1"]).any().any()


def test_names_cannot_be_mapped_in(tmp_path, good_csv):
    rows = [dict(GOOD_ROWS[0], **{"Patient Name": "Doe"})]
    path = write_csv(tmp_path / "x.csv", rows, [*COLUMNS, "Patient Name"])
    with pytest.raises(InputError, match="never read"):
        read_service_lines(path, mapping={"Patient Name": "body_region"})


def test_pseudonymise_is_deterministic_per_salt():
    lines = pd.DataFrame({"patient_id": ["P001", "P002", "P001", ""], "x": [1, 2, 3, 4]})
    one = pseudonymise(lines, salt="alpha")
    again = pseudonymise(lines, salt="alpha")
    other = pseudonymise(lines, salt="beta")
    pd.testing.assert_frame_equal(one, again)
    assert one["patient_id"].iloc[0] == one["patient_id"].iloc[2]
    assert one["patient_id"].iloc[0] != one["patient_id"].iloc[1]
    assert one["patient_id"].iloc[3] == ""
    assert (one["patient_id"].iloc[:3] != other["patient_id"].iloc[:3]).all()
    assert pseudonymise is privacy.pseudonymise  # the intake's pseudonyms are the privacy module's
    assert lines["patient_id"].iloc[0] == "P001"  # the caller's frame is untouched


def test_pseudonymise_salt_from_environment(monkeypatch):
    lines = pd.DataFrame({"patient_id": ["P001"]})
    monkeypatch.delenv("ANALYTICS_ID_SALT", raising=False)
    monkeypatch.delenv("ANALYTICS_PRACTICE_KEY", raising=False)
    default = pseudonymise(lines)["patient_id"].iloc[0]
    assert default == pseudonymise(lines, salt=DEFAULT_SALT)["patient_id"].iloc[0] != "P001"
    monkeypatch.setenv("ANALYTICS_ID_SALT", "practice-secret")
    assert (
        pseudonymise(lines)["patient_id"].iloc[0]
        == pseudonymise(lines, salt="practice-secret")["patient_id"].iloc[0]
    )
    with pytest.raises(InputError, match="no column"):
        pseudonymise(lines, columns=("claim_id",))


# ----------------------------------------------------------------- command line


def test_cli_json_writes_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ANALYTICS_ID_SALT", "cli-test")
    rows = [*GOOD_ROWS, dict(GOOD_ROWS[0], line_id="B", minutes="-5", **{"Patient Name": "Doe"})]
    path = write_csv(tmp_path / "x.csv", rows, [*COLUMNS, "Patient Name"])
    out = tmp_path / "out"
    assert main(["intake", str(path), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["file"] == str(path)
    assert (summary["rows_in"], summary["accepted"], summary["quarantined"]) == (4, 3, 1)
    assert summary["reasons"] == {"minutes is negative": 1}

    lines = pd.read_parquet(out / "lines.parquet")
    assert len(lines) == 3 and not lines["patient_id"].isin(["P001", "P002"]).any()
    csv = pd.read_csv(out / "lines.csv", dtype=str, keep_default_na=False)
    assert csv["patient_id"].tolist() == lines["patient_id"].tolist()
    assert csv["cpt"].tolist() == ["97140", "G0283", "97124"]
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert quarantine["source_row"].tolist() == ["5"]
    assert quarantine["patient_id"].tolist() != ["P001"]
    assert "Patient Name" not in quarantine.columns


def test_cli_prints_reconciliation_and_fails_on_input_error(tmp_path, capsys, good_csv):
    assert main(["intake", str(good_csv), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.strip() == f"{good_csv}: rows in 3 = accepted 3 + quarantined 0"
    bad = write_csv(tmp_path / "bad.csv", [{"cpt": "97140"}], ["cpt"])
    assert main(["intake", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "missing required column(s)" in capsys.readouterr().err


# ----------------------------------------------------------------- invariants


@settings(max_examples=20, deadline=None)
@given(st.lists(st.sampled_from(["good", *sorted(BAD_KINDS)]), max_size=25), st.randoms())
def test_random_mixes_always_reconcile(kinds, rng):
    rows = []
    for i, kind in enumerate(kinds):
        base = dict(rng.choice(GOOD_ROWS), line_id=f"R{i}")
        if kind != "good":
            base.update(BAD_KINDS[kind][0])
        rows.append(base)
    with tempfile.TemporaryDirectory() as folder:
        intake = read_service_lines(write_csv(Path(folder) / "mix.csv", rows))
    assert intake.rows_in == len(kinds) == intake.accepted + intake.quarantined
    expected_bad = [i + 2 for i, kind in enumerate(kinds) if kind != "good"]
    assert intake.quarantine["source_row"].tolist() == expected_bad
    assert (intake.quarantine["reason"].str.len() > 0).all()
    assert intake.lines["source_row"].tolist() == [
        i + 2 for i, kind in enumerate(kinds) if kind == "good"
    ]
    ServiceLineSchema.validate(intake.lines)

    # Row order does not change which lines are accepted or why the others are not.
    shuffled = rng.sample(rows, len(rows))
    with tempfile.TemporaryDirectory() as folder:
        again = read_service_lines(write_csv(Path(folder) / "mix.csv", shuffled))
    assert set(again.lines["line_id"]) == set(intake.lines["line_id"])
    reasons = dict(zip(intake.quarantine["line_id"], intake.quarantine["reason"], strict=True))
    assert (
        dict(zip(again.quarantine["line_id"], again.quarantine["reason"], strict=True)) == reasons
    )


# ----------------------------------------------------------------- messy exports
#
# The export a practice-management system gives: a title row and a blank row above the header,
# names that are ordinary words, "$1,234.50", MM/DD/YYYY, "Dx 1".."Dx 4", credentials after the
# provider's name, a TOTAL row at the bottom, a notes column and a column with no header.

MESSY_HEADERS = ["Patient Name", "DOB", "Account #", "Date of Service", "Claim #", "CPT", "Modifier(s)", "Units",
                 "Minutes", "Charge", "Primary Insurance", "Rendering Provider", "Dx 1", "Dx 2", "Dx 3", "Dx 4",
                 "Date Billed", "Rx on File", "Auth", "Notes"]
MESSY_ROWS = [
    ["White, Donna", "04/12/1961", "A1001", "03/02/2026", "CLM-1", "97140 ", "GP 59", "2", "30", "$120.00",
     "Medicare Part B", "Hannah Reyes, PT", "M54.50", "M62.830", "", "", "03/04/2026", "Y", "", "called Donna"],
    ["White, Donna", "04/12/1961", "A1001", "03/02/2026", "CLM-1", "97110", "gp", "1", "15", "$60.00",
     "Medicare Part B", "Hannah Reyes, PT", "M54.50", "", "", "", "03/04/2026", "Y", "", ""],
    ["Will, Mark", "01/01/1970", "A1002", "03/03/2026", "CLM-2", "97124", "", "4", "60", "$1,234.50",
     "Blue Shield Gold PPO", "Tessa Ng, LMT", "M62.830", "M54.2", "R51.9", "M25.511", "03/05/2026", "N",
     "AUTH123", ""],
    ["Page, May", "02/02/1980", "A1003", "03/04/2026", "CLM-3", "98941", "", "1", "", "$55.00",
     "Progressive Auto PIP", "Tessa Ng, LMT", "S13.4XXA", "", "", "", "03/06/2026", "Y", "", ""],
    ["Rich, Case", "03/03/1990", "A1004", "03/05/2026", "CLM-4", "97140", "", "2", "", "$80.00",
     "Progressive Auto PIP", "Tessa Ng, LMT", "S13.4XXA", "", "", "", "03/06/2026", "Y", "", "DOB 3/3/1990"],
    ["TOTAL", "", "", "", "", "", "", "10", "", "$1,549.50", "", "", "", "", "", "", "", "", "", ""],
]


def write_messy_xlsx(path: Path, headers=MESSY_HEADERS, rows=MESSY_ROWS) -> Path:
    """The messy export as a workbook: title on row 1, blank row 2, header on row 3."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Harbor Massage - Service Line Detail, 03/01/2026 to 03/31/2026"])
    sheet.append([])
    sheet.append(headers)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_title_rows_above_the_header_are_skipped_and_rows_numbered_as_the_sheet_shows(tmp_path):
    intake = read_service_lines(write_messy_xlsx(tmp_path / "export.xlsx"), today="2026-04-01")
    assert intake.header_row == 3
    assert intake.rows_in == 6 == intake.accepted + intake.quarantined
    # row 4 is the first data row; row 8 has a blank minutes cell on timed 97140; row 9 is the TOTAL
    assert intake.lines["source_row"].tolist() == [4, 5, 6, 7]
    reasons = dict(zip(intake.quarantine["source_row"], intake.quarantine["reason"], strict=True))
    assert set(reasons) == {8, 9}
    assert "minutes are blank on timed code 97140" in reasons[8]
    assert reasons[9] == "a TOTAL/subtotal row of the export, not a service line"
    assert (intake.total_rows, intake.set_aside) == (1, 1)


def test_the_messy_export_reads_without_a_mapping(tmp_path):
    intake = read_service_lines(write_messy_xlsx(tmp_path / "export.xlsx"), today="2026-04-01")
    lines = intake.lines
    assert lines["patient_id"].tolist() == ["A1001", "A1001", "A1002", "A1003"]
    assert lines["cpt"].tolist() == ["97140", "97110", "97124", "98941"]  # the trailing space is gone
    assert lines["modifiers"].tolist() == ["GP,59", "GP", "", ""]
    assert lines["charge"].tolist() == [120.0, 60.0, 1234.5, 55.0]
    assert lines["service_date"].tolist() == list(pd.to_datetime(["2026-03-02", "2026-03-02", "2026-03-03",
                                                                   "2026-03-04"]))
    # Dx 1..Dx 4 are joined into one list, in column order
    assert lines["dx_codes"].tolist()[2] == "M62.830,M54.2,R51.9,M25.511"
    # "Hannah Reyes, PT" and "Tessa Ng, LMT": the credential gives the provider type
    assert lines["provider_type"].tolist() == ["pt", "pt", "lmt", "lmt"]
    assert lines["prior_auth"].tolist() == [False, False, True, False]  # an authorisation number is on file
    assert lines["prescription_on_file"].tolist() == [True, True, False, True]
    ignored = dict(zip(intake.ignored["column"], intake.ignored["reason"], strict=True))
    assert set(ignored) == {"Patient Name", "DOB", "Notes"}
    assert ignored["Notes"].startswith("free text")
    assert not {"Patient Name", "DOB", "Notes"} & (set(lines.columns) | set(intake.quarantine.columns))
    assert set(intake.dropped_columns) == {"Patient Name", "DOB"}


def test_sniff_proposes_the_mapping_from_headers_and_cells(tmp_path):
    from analytics.intake import sniff_export

    layout = sniff_export(write_messy_xlsx(tmp_path / "export.xlsx"))
    assert (layout.header_row, layout.rows, layout.total_rows) == (3, 6, 1)
    assert layout.mapping == {
        "Account #": "patient_id", "Date of Service": "service_date", "Claim #": "claim_id", "CPT": "cpt",
        "Modifier(s)": "modifiers", "Units": "units_billed", "Minutes": "minutes", "Charge": "charge",
        "Primary Insurance": "payer_id", "Rendering Provider": "provider_id", "Dx 1": "dx_codes",
        "Dx 2": "dx_codes", "Dx 3": "dx_codes", "Dx 4": "dx_codes", "Date Billed": "submission_date",
        "Rx on File": "prescription_on_file", "Auth": "prior_auth",
    }
    assert set(layout.ignored["column"]) == {"Patient Name", "DOB", "Notes"}
    assert layout.payers.set_index("payer")["lines"].to_dict() == {
        "Medicare Part B": 2, "Progressive Auto PIP": 2, "Blue Shield Gold PPO": 1}
    assert layout.providers.set_index("provider")["provider_type"].to_dict() == {
        "Tessa Ng, LMT": "lmt", "Hannah Reyes, PT": "pt"}


def test_sniff_reads_a_column_from_its_cells_when_the_header_says_nothing(tmp_path):
    from analytics.intake import sniff_export

    frame = pd.DataFrame({
        "Field A": ["P1", "P2", "P3"], "Field B": ["2026-03-02", "2026-03-03", "2026-03-04"],
        "Field C": ["97140", "97124", "G0283"], "Field D": ["$60.00", "$1,120.50", "$20.00"],
        "Field E": ["GP 59", "GP", "KX GP"], "Field F": ["M54.50", "M62.830", "S13.4XXA"],
        "Field G": ["Hannah Reyes, PT", "Tessa Ng, LMT", "Ana Ruiz, DC"],
        "Field H": ["Medicare Part B", "Aetna Choice POS II", "Progressive Auto PIP"],
        "Field I": ["23", "38", "53"],
    })
    frame.to_csv(tmp_path / "export.csv", index=False)
    layout = sniff_export(tmp_path / "export.csv")
    assert layout.mapping == {"Field B": "service_date", "Field C": "cpt", "Field D": "charge",
                              "Field E": "modifiers", "Field F": "dx_codes", "Field G": "provider_id",
                              "Field H": "payer_id", "Field I": "minutes"}
    # a mapping read from cells alone is a question for the owner
    assert any("'Field C' is read as cpt" in q for q in layout.questions)
    assert any("patient_id" in q for q in layout.questions)  # no column found for it


@pytest.mark.parametrize(("header", "target"), [
    ("Amount", "charge"), ("Amt", "charge"), ("Total Charges", "charge"), ("Billed", "charge"),
    ("Charge Amt", "charge"), ("Price", "charge"),
    ("Ins Paid", None), ("Payment", None), ("Pt Balance", None), ("Adj", None), ("Allowed", None),
    ("Copay", None), ("Net Amount", None),
    ("Total Minutes", "minutes"), ("Units Billed", "units_billed"), ("Total Time", "minutes"),
])
def test_whole_dollars_under_a_money_header_are_never_minutes(tmp_path, header, target):
    """Charges in whole dollars (85, 120) look like minutes by their cells; a header of dollars
    decides: the amount billed is read as the charge, money paid, owed or adjusted is not read
    (the 835s say what was paid), and neither is read as minutes (it would change the units)."""
    from analytics.intake import sniff_export

    counts = target in ("minutes", "units_billed")
    frame = pd.DataFrame({"Patient ID": ["P1", "P2", "P3"], "DOS": ["2026-03-02", "2026-03-03", "2026-03-04"],
                          "CPT": ["97140", "97124", "97110"],
                          header: ["2", "1", "3"] if target == "units_billed" else
                          ["23", "38", "53"] if counts else ["85", "120", "90"]})
    if target != "charge":  # the export's charge column beside it
        frame["Charges"] = ["85.00", "120.00", "90.00"]
    frame.to_csv(tmp_path / "export.csv", index=False)
    layout = sniff_export(tmp_path / "export.csv")
    assert layout.mapping.get(header) == target
    if not counts:  # dollars are never read as minutes
        assert "minutes" not in layout.mapping.values()
    if target is None:
        assert "not read" in layout.ignored.set_index("column").loc[header, "reason"]


def test_money_paid_is_never_the_charge_and_whole_dollars_are_said_to_be_dollars(tmp_path):
    """A payment column left of the charges, in dollars and cents, is not taken for the charge;
    a charge column whose header says so and whose cells are whole dollars is described as
    dollars in mapping.yaml, not as minutes."""
    from analytics.intake import sniff_export

    base = {"Patient ID": ["P1", "P2"], "DOS": ["2026-03-02", "2026-03-03"], "CPT": ["97140", "97124"]}
    pd.DataFrame({**base, "Ins Paid": ["$60.00", "$45.00"], "Amount": ["$85.00", "$60.00"]}).to_csv(
        tmp_path / "paid.csv", index=False)
    layout = sniff_export(tmp_path / "paid.csv")
    assert layout.mapping["Amount"] == "charge" and "Ins Paid" not in layout.mapping
    pd.DataFrame({**base, "Fee": ["85", "60"]}).to_csv(tmp_path / "fee.csv", index=False)
    layout = sniff_export(tmp_path / "fee.csv")
    assert layout.mapping["Fee"] == "charge"
    fee = layout.columns.set_index("column").loc["Fee"]
    assert fee["contents"] == "dollar amounts" and "minutes" not in fee["basis"]


def test_the_line_total_is_the_charge_beside_a_unit_price(tmp_path):
    """A line's charge (CMS-1500 box 24F) is its total; a unit price beside it is not read."""
    from analytics.intake import sniff_export

    frame = pd.DataFrame({"Patient ID": ["P1", "P2"], "DOS": ["2026-03-02", "2026-03-03"], "CPT": ["97140", "97124"],
                          "Units": ["2", "1"], "Unit Charge": ["$60.00", "$45.00"], "Total Charge": ["$120.00", "$45.00"]})
    frame.to_csv(tmp_path / "export.csv", index=False)
    layout = sniff_export(tmp_path / "export.csv")
    assert layout.mapping["Total Charge"] == "charge" and "Unit Charge" not in layout.mapping


@pytest.mark.parametrize("header", ["Script?", "Script on file", "Has Rx", "Dr. Script", "Physician Order",
                                    "MD order on file", "Doctor's order"])
def test_a_prescription_column_is_proposed_under_the_names_practices_give_it(tmp_path, header):
    """Practice software calls the physician's order for massage a script, an Rx or an order;
    the Y/N column is read as prescription_on_file, not listed as unused."""
    from analytics.intake import sniff_export

    frame = pd.DataFrame({"Patient ID": ["P1", "P2"], "DOS": ["2026-03-02", "2026-03-03"],
                          "Provider": ["t1", "t1"], "Provider Type": ["lmt", "lmt"], "Payer": ["aetna", "aetna"],
                          "CPT": ["97140", "97124"], "Charge": ["60.00", "45.00"], header: ["Y", "N"]})
    frame.to_csv(tmp_path / "export.csv", index=False)
    layout = sniff_export(tmp_path / "export.csv")
    assert layout.mapping[header] == "prescription_on_file"
    lines = read_service_lines(tmp_path / "export.csv", mapping=layout.mapping).lines
    assert lines["prescription_on_file"].tolist() == [True, False]


SPECIAL_HEADERS = ["Account #", "Time: In", 'Say "hi"', "- dash", "? query", "& anchor", "* star", "! bang",
                   "% pct", "@ at", "`tick`", "Café #2", "a\tb", "{brace}", "[list]", "Nº", "#lead"]


def test_mapping_yaml_round_trips_headers_yaml_would_misread(tmp_path):
    import yaml

    from analytics.intake import read_mapping, sniff_export, write_mapping

    frame = pd.DataFrame({h: ["x", "y"] for h in SPECIAL_HEADERS})
    frame.to_csv(tmp_path / "export.csv", index=False)
    layout = sniff_export(tmp_path / "export.csv")
    path = write_mapping(layout, tmp_path / "mapping.yaml")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(loaded["columns"]) == SPECIAL_HEADERS
    assert list(read_mapping(path).columns) == SPECIAL_HEADERS
    assert loaded["header_row"] == 1 and loaded["export"] == "export.csv"


def test_an_unquoted_hash_in_a_mapping_key_names_the_line_and_the_fix(tmp_path, good_csv):
    path = tmp_path / "mapping.yaml"
    path.write_text("columns:\n  CPT: cpt\n  Account #: patient_id\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_service_lines(good_csv, mapping=path)
    message = str(caught.value)
    assert f"{path}, line 3" in message and '"Account #": patient_id' in message and "Quote" in message
    path.write_text("columns:\n  Time: In: minutes\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 2: mapping values are not allowed here\. Quote"):
        read_service_lines(good_csv, mapping=path)
    # a comment after a setting is fine, even one holding '#' and ':'
    path.write_text('header_row: 1  # see row 1: # of rows\ncolumns: {"Account #": patient_id}\n', encoding="utf-8")
    assert read_service_lines(good_csv, mapping=path).rows_in == 3


def test_header_row_and_sheet_settings(tmp_path):
    path = write_messy_xlsx(tmp_path / "export.xlsx")
    with pytest.raises(InputError, match="header on row 1"):
        read_service_lines(path, header_row=1)  # the title row as header: no known columns
    assert read_service_lines(path, mapping={"columns": {}, "header_row": 3, "sheet": 0},
                              today="2026-04-01").header_row == 3


@pytest.mark.parametrize(("written", "why"), [
    ("120,50", "a decimal comma (120.50) or a slip (12,050)"),
    ("1.234,56", "a decimal comma"),
    ("$ 1,2,3", "groups its digits wrongly"),
    ("9" * 40, "more than 7 digits before the point"),
    ("1e5", "is not an amount"),
    ("NaN", "is not an amount"),
])
def test_ambiguous_or_implausible_amounts_are_set_aside(tmp_path, written, why):
    intake = read_service_lines(write_csv(tmp_path / "x.csv", [dict(GOOD_ROWS[0], charge=written)]))
    assert intake.accepted == 0 and why in intake.quarantine.loc[0, "reason"]
    assert f"charge '{written}'" in intake.quarantine.loc[0, "reason"]


def test_decimal_comma_setting_reads_european_amounts(tmp_path):
    rows = [dict(GOOD_ROWS[0], line_id=f"A{i}", charge=c) for i, c in enumerate(["120,50", "1.234,56", "1,234.56"])]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows), mapping={"columns": {}, "decimal_comma": True})
    assert intake.lines["charge"].tolist() == [120.5, 1234.56]
    assert "has a decimal point, but mapping.yaml says decimal_comma: true" in intake.quarantine.loc[0, "reason"]


@pytest.mark.parametrize("written", ["1e5", "NaN", "inf", "+5", "1_000", "\u0661\u0662", "\uff13\uff10"])
def test_numbers_an_export_does_not_write_are_not_minutes(tmp_path, written):
    intake = read_service_lines(write_csv(tmp_path / "x.csv", [dict(GOOD_ROWS[0], minutes=written)]))
    assert intake.accepted == 0 and f"minutes '{written}' is not a number" in intake.quarantine.loc[0, "reason"]


def test_two_digit_years_and_future_dates_of_service(tmp_path):
    rows = [dict(GOOD_ROWS[0], line_id="A", service_date="3/14/68", submission_date=""),
            dict(GOOD_ROWS[0], line_id="B", service_date="03/14/2026", submission_date=""),
            dict(GOOD_ROWS[0], line_id="C", service_date="12/01/2026", submission_date="")]
    path = write_csv(tmp_path / "x.csv", rows)
    intake = read_service_lines(path, today="2026-04-01")
    reasons = dict(zip(intake.quarantine["line_id"], intake.quarantine["reason"], strict=True))
    assert "two-digit year (1968 or 2068?)" in reasons["A"] and "century_pivot" in reasons["A"]
    assert "is after today (2026-04-01)" in reasons["C"]
    assert intake.lines["line_id"].tolist() == ["B"]
    settled = read_service_lines(path, mapping={"columns": {}, "century_pivot": 27}, today="2026-04-01")
    assert settled.lines.set_index("line_id").loc["A", "service_date"] == pd.Timestamp("1968-03-14")


def test_day_first_dates_with_two_digit_years_are_read_day_first(tmp_path):
    """10/03/25 in an export written day first is 10 March 2025: the drafted mapping reads it so."""
    days = ["10/03/25", "01/04/25", "28/02/25", "05.06.25"]
    rows = [dict(GOOD_ROWS[0], line_id=f"L{i}", service_date=d, submission_date="") for i, d in enumerate(days)]
    path = write_csv(tmp_path / "x.csv", rows)
    from analytics.intake import sniff_export

    layout = sniff_export(path)
    assert layout.date_format.startswith("%d") and layout.century_pivot
    (tmp_path / "mapping.yaml").write_text(layout.to_yaml())
    intake = read_service_lines(path, mapping=tmp_path / "mapping.yaml", today="2026-04-01")
    assert intake.accepted == len(days), intake.quarantine
    assert intake.lines["service_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2025-03-10", "2025-04-01", "2025-02-28", "2025-06-05"]


def test_every_charge_zero_is_said(tmp_path):
    rows = [dict(r, charge="0.00") for r in GOOD_ROWS]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert intake.accepted == len(rows)
    assert len(intake.notes) == 1 and "Every charge read from column 'charge' of x.csv is $0.00" in intake.notes[0]
    assert not read_service_lines(write_csv(tmp_path / "y.csv", GOOD_ROWS)).notes


def test_charges_that_are_formulas_never_calculated_are_explained(tmp_path):
    """A workbook written by a program keeps no value for its formulas: each charge reads empty,
    and the note says why and what to do."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append([*COLUMNS, "rate", "qty"])
    rate, qty = (openpyxl.utils.get_column_letter(len(COLUMNS) + k) for k in (1, 2))
    for i, row in enumerate(GOOD_ROWS, start=2):
        sheet.append([row[c] if c != "charge" else f"={rate}{i}*{qty}{i}" for c in COLUMNS] + [36, 2])
    book.save(tmp_path / "x.xlsx")
    intake = read_service_lines(tmp_path / "x.xlsx")
    assert intake.accepted == 0
    assert any("have an empty charge" in n and "holds formulas" in n and "LibreOffice" in n for n in intake.notes)


def test_a_blank_header_cell_is_named_not_dropped(tmp_path):
    columns = [c if c != "minutes" else "" for c in COLUMNS]
    frame = pd.DataFrame([[r[c] for c in COLUMNS] for r in GOOD_ROWS], columns=columns)
    frame.to_csv(tmp_path / "x.csv", index=False)
    position = COLUMNS.index("minutes")
    name = f"unnamed column {position + 1} ({'ABCDEFGHIJKLMNOP'[position]})"
    intake = read_service_lines(tmp_path / "x.csv")
    reason = intake.ignored.set_index("column").loc[name, "reason"]
    assert "minutes" in reason and f'"{name}": minutes' in reason
    mapped = read_service_lines(tmp_path / "x.csv", mapping={name: "minutes"})
    assert mapped.lines["minutes"].tolist()[0] == 23.0


def test_bytes_neither_utf8_nor_cp1252_name_the_file_and_offset(tmp_path):
    head = ",".join(COLUMNS) + "\n"
    row = ",".join(GOOD_ROWS[0][c] for c in COLUMNS).replace("C1", "C\x81")
    data = (head + row + "\n").encode("latin-1")
    (tmp_path / "x.csv").write_bytes(data)
    offset = data.index(b"\x81")
    with pytest.raises(InputError, match=rf"x\.csv: the bytes at offset {offset} \(0x81\)") as caught:
        read_service_lines(tmp_path / "x.csv")
    assert "UTF-8" in str(caught.value) and "encoding: latin-1" in str(caught.value)
    read = read_service_lines(tmp_path / "x.csv", mapping={"columns": {}, "encoding": "latin-1"})
    assert read.lines.loc[0, "claim_id"] == "C\x81"


def test_charges_on_another_sheet_are_pointed_to(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Summary"
    book.active.append(["Summary of charges", 1234.5])
    data = book.create_sheet("Charges")
    data.append(COLUMNS)
    for row in GOOD_ROWS:
        data.append([row[c] for c in COLUMNS])
    book.save(tmp_path / "x.xlsx")
    with pytest.raises(InputError, match="sheet 'Summary' of a workbook with sheets 'Summary', 'Charges'.*--sheet NAME"):
        read_service_lines(tmp_path / "x.xlsx")
    assert read_service_lines(tmp_path / "x.xlsx", sheet="Charges").accepted == len(GOOD_ROWS)


def test_page_break_headers_and_report_lines_are_not_set_aside_lines(tmp_path):
    """A report printed to CSV repeats its header at each page and adds page and footer lines:
    they are the report's own rows, counted apart from the service lines set aside."""
    frame = pd.DataFrame(GOOD_ROWS, columns=COLUMNS, dtype="str")
    header = ",".join(COLUMNS)
    lines = [header, *frame.to_csv(index=False, header=False).splitlines()]
    text = "\n".join([*lines[:2], "Page 1 of 2", header.upper(), *lines[2:], "Record count: 2",
                      "Printed 03/05/2026 by front desk", ""])
    (tmp_path / "x.csv").write_text(text)
    intake = read_service_lines(tmp_path / "x.csv")
    assert intake.accepted == len(GOOD_ROWS) and intake.set_aside == 0 and intake.total_rows == 4
    assert intake.rows_in == intake.accepted + intake.quarantined
    assert sorted(set(intake.quarantine["reason"])) == sorted(
        ["the header repeated (a page break), not a service line",
         "a line of the report with one cell filled (a title, page number or footer), not a service line"])


def test_of_two_provider_columns_the_one_with_credentials_is_read(tmp_path):
    from analytics.intake import sniff_export

    frame = pd.DataFrame({
        "Patient ID": ["P1", "P2"], "DOS": ["2026-03-02", "2026-03-03"], "CPT": ["97140", "97124"],
        "Minutes": ["30", "45"], "Charge": ["$78.00", "$72.00"], "Primary Insurance": ["Medicare Part B"] * 2,
        "Provider": ["Tessa Ng", "Hannah Reyes"], "Rendering Provider": ["Tessa Ng, LMT", "Hannah Reyes, PT"],
    })
    frame.to_csv(tmp_path / "export.csv", index=False)
    layout = sniff_export(tmp_path / "export.csv")
    assert layout.mapping.get("Rendering Provider") == "provider_id" and "Provider" not in layout.mapping
    (tmp_path / "mapping.yaml").write_text(layout.to_yaml())
    intake = read_service_lines(tmp_path / "export.csv", mapping=tmp_path / "mapping.yaml")
    assert intake.accepted == 2 and intake.lines["provider_type"].tolist() == ["lmt", "pt"]


@pytest.mark.parametrize(("written", "form"), [
    (["4-Mar-2025", "17-Apr-2025"], "%d-%b-%Y"), (["Mar 4, 2025", "Apr 17, 2025"], "%b %d, %Y"),
    (["4 March 2025", "17 April 2025"], "%d %B %Y"),
])
def test_dates_with_the_month_in_words_are_drafted_and_read(tmp_path, written, form):
    from analytics.intake import sniff_export

    rows = [dict(GOOD_ROWS[0], line_id=f"L{i}", service_date=d, submission_date="") for i, d in enumerate(written)]
    path = write_csv(tmp_path / "x.csv", rows)
    unread = read_service_lines(path, today="2026-04-01")  # without the format: set aside, saying what to set
    assert unread.accepted == 0 and "needs date_format in mapping.yaml" in unread.quarantine.loc[0, "reason"]
    layout = sniff_export(path)
    assert layout.date_format == form
    (tmp_path / "mapping.yaml").write_text(layout.to_yaml())
    intake = read_service_lines(path, mapping=tmp_path / "mapping.yaml", today="2026-04-01")
    assert intake.lines["service_date"].dt.strftime("%Y-%m-%d").tolist() == ["2025-03-04", "2025-04-17"]


def test_account_and_claim_numbers_are_not_taken_for_diagnosis_codes():
    """A100023 and C000001 have the shape of ICD-10 codes; only codes of the ICD-10-CM code set
    make a column of diagnoses."""
    from analytics.intake.contents import column_contents

    assert column_contents(pd.Series(["A100023", "A100024", "A100031"])).kind == "ids"
    assert column_contents(pd.Series(["C000001", "C000002", "C000003"])).kind == "ids"
    assert column_contents(pd.Series(["M54.50", "S13.4XXA", "M62.830, M54.2"])).kind == "ICD-10 codes"


def test_dates_as_a_spreadsheets_day_numbers_are_drafted_and_read(tmp_path):
    """A workbook whose date column is formatted as numbers shows 45726 for 2025-03-10."""
    book = openpyxl.Workbook()
    book.active.append(COLUMNS)
    for i, row in enumerate(GOOD_ROWS):
        book.active.append([45726 + i if c == "service_date" else "" if c == "submission_date" else row[c]
                            for c in COLUMNS])
    book.save(tmp_path / "x.xlsx")
    from analytics.intake import sniff_export

    layout = sniff_export(tmp_path / "x.xlsx")
    assert layout.date_format == "excel" and any("45726 is 2025-03-10" in q for q in layout.questions)
    (tmp_path / "mapping.yaml").write_text(layout.to_yaml())
    intake = read_service_lines(tmp_path / "x.xlsx", mapping=tmp_path / "mapping.yaml", today="2026-04-01")
    assert intake.lines["service_date"].dt.strftime("%Y-%m-%d").tolist() == [
        str((pd.Timestamp("2025-03-10") + pd.Timedelta(days=i)).date()) for i in range(len(GOOD_ROWS))]


def test_dates_that_read_either_way_ask_which(tmp_path):
    from analytics.intake import sniff_export

    rows = [dict(GOOD_ROWS[0], line_id=f"L{i}", service_date=d, submission_date="")
            for i, d in enumerate(["01/04/2025", "03/02/2025", "12/11/2025"])]
    layout = sniff_export(write_csv(tmp_path / "x.csv", rows))
    assert layout.date_format is None
    assert any("could be read month first or day first" in q and '"%d/%m/%Y"' in q for q in layout.questions)
    rows[2]["service_date"] = "12/31/2025"  # a day above 12: month first for sure
    assert not any("either" in q or "could be read" in q
                   for q in sniff_export(write_csv(tmp_path / "y.csv", rows)).questions)


def test_utf16_text_as_excel_saves_it_is_read(tmp_path):
    """Excel's 'Unicode Text' is UTF-16 with a byte-order mark, tab-delimited."""
    rows = [dict(GOOD_ROWS[0], claim_id="É-1")]
    text = pd.DataFrame(rows, columns=COLUMNS, dtype="str").to_csv(index=False, sep="\t")
    (tmp_path / "x.txt").write_bytes(text.encode("utf-16"))
    intake = read_service_lines(tmp_path / "x.txt")
    assert intake.accepted == 1 and intake.lines.loc[0, "claim_id"] == "É-1"


def test_a_utf8_file_with_a_stray_windows_byte_keeps_both(tmp_path):
    """Names in UTF-8 and one pasted in cp1252: each is read right, and a note says so."""
    rows = [dict(GOOD_ROWS[0], line_id=f"A{i}", claim_id=r) for i, r in enumerate(["É-1", "Ô-2", "Ü-3"])]
    text = pd.DataFrame(rows, columns=COLUMNS, dtype="str").to_csv(index=False).encode("utf-8")
    text += ",".join(dict(GOOD_ROWS[0], line_id="A9", claim_id="O\u2019B-4")[c] for c in COLUMNS).encode("cp1252")
    (tmp_path / "x.csv").write_bytes(text + b"\n")
    intake = read_service_lines(tmp_path / "x.csv")
    assert intake.lines["claim_id"].tolist() == ["É-1", "Ô-2", "Ü-3", "O\u2019B-4"]
    assert any("not UTF-8; they were read as Windows cp1252" in n for n in intake.notes)


def test_a_utf8_file_with_a_byte_no_encoding_defines_names_it(tmp_path):
    """0x81 is neither UTF-8 nor cp1252: a UTF-8 file holding one still stops at that byte."""
    rows = [dict(GOOD_ROWS[0], line_id=f"A{i}", claim_id=r) for i, r in enumerate(["É-1", "Ô-2", "Ü-3"])]
    text = pd.DataFrame(rows, columns=COLUMNS, dtype="str").to_csv(index=False).encode("utf-8")
    (tmp_path / "x.csv").write_bytes(text + b"C\x81\n")
    with pytest.raises(InputError, match=rf"x\.csv: the bytes at offset {len(text) + 1} \(0x81\)"):
        read_service_lines(tmp_path / "x.csv")


def test_a_bare_carriage_return_in_a_quoted_cell_never_adds_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALYTICS_ID_SALT", "cr-test")
    rows = [dict(GOOD_ROWS[0], claim_id="C\r1", body_region="neck\r\nback"),
            dict(GOOD_ROWS[1], minutes="x\ry", line_id="A\r2")]
    path = tmp_path / "x.csv"
    pd.DataFrame(rows, columns=[*COLUMNS, "body_region"]).to_csv(path, index=False, quoting=1)
    assert b"\r" in path.read_bytes()
    intake = read_service_lines(path)
    assert (intake.accepted, intake.quarantined) == (1, 1)
    assert main(["intake", str(path), "--out", str(tmp_path / "out")]) == 0
    for name, expected in (("lines.csv", 1), ("quarantine.csv", 1)):
        back = pd.read_csv(tmp_path / "out" / name, dtype=str, keep_default_na=False)
        assert len(back) == expected, name
        assert not back.apply(lambda c: c.str.contains("\r")).any().any()


def test_credentials_after_the_provider_name(tmp_path):
    rows = [dict(GOOD_ROWS[0], line_id=f"A{i}", provider_id=p, provider_type="")
            for i, p in enumerate(["Hannah Reyes, PT", "Tessa Ng, LMT", "Ana Ruiz MT", "Bo Li, PTA",
                                   "Reyes, Hannah"])]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert intake.lines["provider_type"].tolist() == ["pt", "lmt", "lmt", "pta"]
    reason = intake.quarantine.loc[0, "reason"]
    assert "provider_type is empty and 'Reyes, Hannah' ends in no credential" in reason


def test_blank_minutes_on_a_timed_code_only(tmp_path):
    """97140 is timed (CPT: each 15 minutes); 97010 is not (a hot or cold pack, one unit)."""
    rows = [dict(GOOD_ROWS[0], line_id="T", cpt="97140", minutes=""),
            dict(GOOD_ROWS[0], line_id="U", cpt="97010", minutes="")]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert intake.lines["line_id"].tolist() == ["U"]
    assert intake.quarantine.loc[0, "reason"] == ("minutes are blank on timed code 97140: its units cannot be "
                                                  "counted (write the direct minutes)")


@pytest.mark.parametrize("label", ["TOTAL", "Grand Total", "Subtotal:", "totals (3 lines)", "Sub-total"])
def test_total_rows_are_set_aside_as_such(tmp_path, label):
    rows = [GOOD_ROWS[0], {c: "" for c in COLUMNS} | {"line_id": label, "charge": "95.50"}]
    intake = read_service_lines(write_csv(tmp_path / "x.csv", rows))
    assert (intake.accepted, intake.total_rows, intake.set_aside) == (1, 1, 0)
    assert intake.reason_counts() == {"total row": 1}


def test_a_total_label_on_a_real_line_is_not_a_total(tmp_path):
    rows = [dict(GOOD_ROWS[0], body_region="Total body")]
    assert read_service_lines(write_csv(tmp_path / "x.csv", rows)).accepted == 1


def test_quarantine_csv_carries_no_free_text_or_unknown_columns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANALYTICS_ID_SALT", "q-test")
    rows = [dict(GOOD_ROWS[0], minutes="-5", **{"Visit Notes": "Zebulon Quartermain DOB 1/2/1960",
                                                "Pt DOB": "01/02/1960", "Location": "Main St"})]
    path = write_csv(tmp_path / "x.csv", rows, [*COLUMNS, "Visit Notes", "Pt DOB", "Location"])
    assert main(["intake", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {r["column"] for r in summary["ignored_columns"]} == {"Visit Notes", "Pt DOB", "Location"}
    text = (tmp_path / "out" / "quarantine.csv").read_text()
    assert "Zebulon" not in text and "1960" not in text and "Main St" not in text
    assert "minutes '-5' is negative" in text


def test_repeated_modifier_and_diagnosis_columns_are_joined(tmp_path):
    """A claim line carries up to four modifiers (CMS-1500 item 24D) and a claim up to twelve
    diagnoses (item 21, A-L)."""
    rows = [{**{c: GOOD_ROWS[0][c] for c in COLUMNS if c not in ("modifiers", "dx_codes")},
             "Mod 1": "GP", "Mod 2": "59", "Diagnosis 1": "M54.50", "Diagnosis 2": "M62.830", "Dx 3": "R51.9"}]
    columns = [c for c in COLUMNS if c not in ("modifiers", "dx_codes")] + ["Mod 1", "Mod 2", "Diagnosis 1",
                                                                            "Diagnosis 2", "Dx 3"]
    lines = read_service_lines(write_csv(tmp_path / "x.csv", rows, columns)).lines
    assert lines.loc[0, "modifiers"] == "GP,59" and lines.loc[0, "dx_codes"] == "M54.50,M62.830,R51.9"


def test_a_row_wider_than_the_header_widens_the_table(tmp_path):
    text = ",".join(COLUMNS) + "\n" + ",".join(GOOD_ROWS[0][c] for c in COLUMNS) + ",surplus\n"
    (tmp_path / "x.csv").write_text(text)
    intake = read_service_lines(tmp_path / "x.csv")
    assert intake.accepted == 1
    extra = f"unnamed column {len(COLUMNS) + 1} ({'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[len(COLUMNS)]})"
    assert extra in set(intake.ignored["column"])


def test_line_breaks_in_title_and_header_cells_keep_the_row_numbers(tmp_path):
    header = ",".join(c if c != "cpt" else '"CPT\nCode"' for c in COLUMNS)
    body = "\n".join(",".join(row[c] for c in COLUMNS) for row in GOOD_ROWS[:2])
    (tmp_path / "x.csv").write_text(f'"Service lines\nMarch 2026",,\n\n{header}\n{body}\n\n' + body.split("\n")[0]
                                    .replace("A1", "A9") + "\n")
    intake = read_service_lines(tmp_path / "x.csv")
    assert intake.header_row == 3  # the title is one row however many lines its cell holds
    assert intake.lines["source_row"].tolist() == [4, 5, 7]
    assert intake.column_map["CPT Code"] == "cpt"
