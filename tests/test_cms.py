"""Tests for the CMS file loaders (analytics/cms.py).

Known values are typed in from the public CMS figures quoted in FACTS 1.1 (CY2025 PPRRVU,
October release) and FACTS 1.4 (CY2025 GPCIs, addendum E). The PTP and MUE fixtures are
built here in the CMS layout; their codes and indicators are test data, not CMS figures.

The real files are read from tests/data/cms (fixtures ``cms_dir``, ``cms26_dir``): the GPCI
and locality files whole, the PPRRVU files as extracts that keep CMS's title and header lines
and the rows of the therapy, manipulation and a few component-split codes (see
tests/data/README.md).

CPT descriptors are AMA copyright: the extracts carry an empty DESCRIPTION column, no test
prints a descriptor, and the copies written to tmp_path carry a placeholder in that column.
"""

from __future__ import annotations

import csv
import functools
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cms import (
    GPCI_COLUMNS,
    LOCALITY_COLUMNS,
    MUE_COLUMNS,
    PTP_COLUMNS,
    RVU_COLUMNS,
    read_gpci,
    read_localities,
    read_mue,
    read_ncci_ptp,
    read_pprrvu,
    reference_from_cms,
)
from analytics.exceptions import ReferenceDataError, UnpricedCodeWarning

PPRRVU_2025 = "PPRRVU2025_Oct.csv"
GPCI_2025 = "GPCI2025.csv"
LOCCO_2025 = "25LOCCO.csv"
PPRRVU_2026 = "PPRRVU2026_Jul_nonQPP.csv"
GPCI_2026 = "GPCI2026.csv"
SHIPPED = Path(__file__).resolve().parents[1] / "analytics" / "reference"
CODE = re.compile(r"[0-9A-Z]{5}")

# FACTS 1.1, CY2025 (RVU25D): status, work, PE non-facility, PE facility, MP, total.
RVU_2025 = {
    "97010": ("B", 0.06, 0.13, 0.13, 0.01, 0.20),
    "97110": ("A", 0.45, 0.43, 0.43, 0.01, 0.89),
    "97112": ("A", 0.50, 0.48, 0.48, 0.01, 0.99),
    "97124": ("A", 0.35, 0.56, 0.56, 0.01, 0.92),
    "97139": ("C", 0.00, 0.00, 0.00, 0.00, 0.00),
    "97140": ("A", 0.43, 0.40, 0.40, 0.01, 0.84),
    "97530": ("A", 0.44, 0.62, 0.62, 0.01, 1.07),
    "97161": ("A", 1.54, 1.45, 1.45, 0.04, 3.03),
    "97162": ("A", 1.54, 1.45, 1.45, 0.04, 3.03),
    "97163": ("A", 1.54, 1.45, 1.45, 0.04, 3.03),
    "97164": ("A", 0.96, 1.11, 1.11, 0.02, 2.09),
}
CF_2025 = 32.3465

# FACTS 1.4, CY2025 (addendum E): PW / PE / MP.
GPCI_2025_VALUES = {
    "10112-00": (1.000, 0.869, 0.575),  # Alabama
    "02102-01": (1.500, 1.081, 0.592),  # Alaska
    "04412-99": (1.000, 0.945, 0.934),  # Rest of Texas
    "07302-00": (1.000, 0.852, 0.768),  # Mississippi
    "13202-01": (1.065, 1.166, 1.656),  # Manhattan
    "06102-16": (1.007, 1.023, 2.018),  # Chicago
    "09102-04": (1.000, 1.027, 2.500),  # Miami
    "01112-05": (1.088, 1.419, 0.445),  # San Francisco
    "01182-18": (1.042, 1.194, 0.690),  # Los Angeles
    "01112-75": (1.014, 1.093, 0.560),  # Rest of California
}


# --------------------------------------------------------------------------------------------
# Helpers: copies of the real file, and small files in the CMS layouts
# --------------------------------------------------------------------------------------------


def _records(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="latin-1") as fh:
        return list(csv.reader(fh))


def _header_at(records: list[list[str]]) -> int:
    return next(i for i, r in enumerate(records) if r and r[0].strip() == "HCPCS")


def _count_data_rows(path: Path) -> int:
    records = _records(path)
    start = _header_at(records) + 1
    return sum(1 for r in records[start:] if r and CODE.fullmatch(r[0].strip()))


def _write(path: Path, records: list[list[str]], *, trailing_blank_lines: int = 0) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\r\n").writerows(records)
        fh.write("\r\n" * trailing_blank_lines)
    return path


def _without_descriptors(records: list[list[str]]) -> list[list[str]]:
    """The records with our own placeholder (quoted: it holds a comma) in DESCRIPTION."""
    at = _header_at(records)
    desc = records[at].index("DESCRIPTION")
    out = [list(r) for r in records]
    for r in out[at + 1 :]:
        if r and CODE.fullmatch(r[0].strip()):
            r[desc] = "placeholder, not a descriptor"
    return out


def _with_pric_ind(records: list[list[str]]) -> list[list[str]]:
    """The CY2026 shape: a PRIC IND column right after TEAM SURG, in every row."""
    at = _header_at(records)
    team = next(j for j, c in enumerate(records[at - 1]) if c.strip() == "TEAM")
    assert records[at][team].strip() == "SURG"
    out = []
    for i, r in enumerate(records):
        if i == at - 1:
            extra = "PRIC"
        elif i == at:
            extra = "IND"
        elif i > at and r:
            extra = "0"
        else:
            extra = ""
        out.append([*r[: team + 1], extra, *r[team + 1 :]])
    return out


# A small PPRRVU in the CMS layout: title lines, then labels stacked over four rows.
_MINI_LABELS = [
    ("HCPCS",),
    ("MOD",),
    ("DESCRIPTION",),
    ("STATUS", "CODE"),
    ("NOT USED", "FOR", "MEDICARE", "PAYMENT"),
    ("WORK", "RVU"),
    ("NON-FAC", "PE RVU"),
    ("NON-FAC", "NA", "INDICATOR"),
    ("FACILITY", "PE RVU"),
    ("FACILITY ", "NA", "INDICATOR"),
    ("MP", "RVU"),
    ("NON-FACILITY", "TOTAL"),
    ("FACILITY", "TOTAL"),
    ("PCTC", "IND"),
    ("GLOB", "DAYS"),
    ("MULT", "PROC"),
    ("TEAM", "SURG"),
    ("ENDO", "BASE"),
    ("CONV", "FACTOR"),
]
_MINI_ROW = {
    "cpt": "97140",
    "mod": "",
    "status": "A",
    "plus": "",
    "work": "0.43",
    "pe_nf": "0.40",
    "na_nf": "",
    "pe_f": "0.40",
    "na_f": "NA",
    "mp": "0.01",
    "tot_nf": "0.84",
    "tot_f": "0.84",
    "pctc": "7",
    "glob": "XXX",
    "mult": "5",
    "team": "9",
    "endo": "",
    "cf": "32.3465",
}


def _mini_pprrvu(
    path: Path,
    rows: list[dict[str, str]],
    *,
    title: str = "2025 National Physician Fee Schedule Relative Value File",
) -> Path:
    width = len(_MINI_LABELS)
    blank = [""] * width
    titles = [
        ["", "", title],
        ["", "", "CPT codes and descriptions only are copyright AMA."],
        blank,
    ]
    header = [
        [
            (labels[len(labels) - 4 + k] if len(labels) - 4 + k >= 0 else "")
            for labels in _MINI_LABELS
        ]
        for k in range(4)
    ]
    data = []
    for r in rows:
        row = {**_MINI_ROW, **r}
        data.append(
            [row["cpt"], row["mod"], "own label", row["status"], row["plus"], row["work"], row["pe_nf"], row["na_nf"],
             row["pe_f"], row["na_f"], row["mp"], row["tot_nf"], row["tot_f"], row["pctc"], row["glob"], row["mult"],
             row["team"], row["endo"], row["cf"]]
        )  # fmt: skip
    return _write(path, [t + [""] * (width - len(t)) for t in titles] + header + data)


# NCCI PTP, practitioner file f1, in the CMS text layout (tab-delimited; title lines; the
# header labels continue over the rows below "Column 1").
_PTP_TITLE = [
    ["CPT only copyright 2025 American Medical Association.  All rights reserved."],
    ["Column1/Column2 Edits"],
]
_PTP_HEADER = [
    [
        "Column 1",
        "Column 2",
        "*=in existence",
        "Effective",
        "Deletion",
        "Modifier",
        "PTP Edit Rationale",
    ],
    ["", "", "prior to 1996", "Date", "Date", "0=not allowed", ""],
    ["", "", "", "", "*=no data", "1=allowed", ""],
    ["", "", "", "", "", "9=not applicable", ""],
]
_PTP_ROWS = [
    ["97140", "97124", "", "20000101", "*", "1", "Mutually exclusive procedures"],
    ["97140", "97530", "", "20200101", "*", "1", "Mutually exclusive procedures"],
    [
        "97530",
        "97161",
        "",
        "20200101",
        "20200101",
        "9",
        "CPT Manual or CMS manual coding instruction",
    ],
]


def _ptp_records(rows: list[list[str]]) -> list[list[str]]:
    return [r + [""] * (7 - len(r)) for r in _PTP_TITLE] + _PTP_HEADER + rows


def _ptp_txt(path: Path, rows: list[list[str]] = _PTP_ROWS) -> Path:
    with path.open("w", newline="", encoding="cp1252") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\r\n").writerows(_ptp_records(rows))
    return path


# Practitioner MUE table in the CMS CSV layout: a multi-line quoted copyright cell, then a
# header whose first label breaks inside its cell.
_MUE_TEXT = (
    '"Current Procedural Terminology (CPT) codes, descriptions and other data only are copyright '
    "2025 American Medical Association. All rights reserved.\n\nCPT\u00ae is a registered "
    'trademark of the American Medical Association.",,,\n'
    '"HCPCS/\nCPT Code",Practitioner Services MUE Values,MUE Adjudication Indicator,MUE Rationale\n'
    "97110,6,3 Date of Service Edit: Clinical,Nature of Service/Procedure\n"
    "97140,4,3 Date of Service Edit: Clinical,Nature of Service/Procedure\n"
    "97161,1,2 Date of Service Edit: Policy,Code Descriptor / CPT Instruction\n"
    "97530,6,1 Line Edit,Clinical: Data\n"
)


def _mue_csv(path: Path, text: str = _MUE_TEXT) -> Path:
    path.write_bytes(text.replace("\n", "\r\n").encode("cp1252"))
    return path


# --------------------------------------------------------------------------------------------
# PPRRVU on the real CY2025 file
# --------------------------------------------------------------------------------------------


@functools.cache
def _read_real_pprrvu(path: Path) -> pd.DataFrame:
    return read_pprrvu(path)


@pytest.fixture
def rvu_2025(cms_dir: Path) -> pd.DataFrame:
    """The real CY2025 file, read once per session (tests must not modify it)."""
    return _read_real_pprrvu(cms_dir / PPRRVU_2025)


def test_pprrvu_reads_every_row_of_the_real_file(cms_dir: Path, rvu_2025: pd.DataFrame) -> None:
    assert len(rvu_2025) == _count_data_rows(cms_dir / PPRRVU_2025)
    assert list(rvu_2025.columns) == RVU_COLUMNS
    assert not rvu_2025.duplicated(["cpt", "modifier"]).any()
    # the extract keeps the code families the toolkit prices, and component-split rows
    assert set(RVU_2025) | {"98940", "98943", "G0283"} <= set(rvu_2025["cpt"])
    assert set(rvu_2025["modifier"]) >= {"", "26", "TC"}


@pytest.mark.parametrize("name", [f"rvu25d/{PPRRVU_2025}", f"rvu26c/{PPRRVU_2026}"])
def test_pprrvu_extracts_carry_no_descriptor(cms_dir: Path, name: str) -> None:
    """AMA rule: the DESCRIPTION cells of the project's CMS extracts stay empty."""
    records = _records(cms_dir.parent / name)
    at = _header_at(records)
    desc = records[at].index("DESCRIPTION")
    rows = [r for r in records[at + 1 :] if r and CODE.fullmatch(r[0].strip())]
    assert rows and all(r[desc] == "" for r in rows)


def test_pprrvu_returns_no_descriptor(cms_dir: Path, tmp_path: Path) -> None:
    labelled = _write(tmp_path / PPRRVU_2025, _without_descriptors(_records(cms_dir / PPRRVU_2025)))
    rvu = read_pprrvu(labelled)
    assert "description" not in {c.lower() for c in rvu.columns}
    text_columns = rvu.select_dtypes(exclude=["number", "bool"])
    values = set(pd.unique(text_columns.to_numpy().ravel()))
    assert "placeholder, not a descriptor" not in values, "the DESCRIPTION column reached the table"


@pytest.mark.parametrize("code", sorted(RVU_2025))
def test_pprrvu_reproduces_facts_2025_rvus(rvu_2025: pd.DataFrame, code: str) -> None:
    status, work, pe_nf, pe_f, mp, total = RVU_2025[code]
    row = rvu_2025[(rvu_2025["cpt"] == code) & (rvu_2025["modifier"] == "")]
    assert len(row) == 1
    r = row.iloc[0]
    assert r["year"] == 2025
    assert r["status"] == status
    assert r["work_rvu"] == pytest.approx(work)
    assert r["pe_rvu_nonfacility"] == pytest.approx(pe_nf)
    assert r["pe_rvu_facility"] == pytest.approx(pe_f)
    assert r["mp_rvu"] == pytest.approx(mp)
    assert r["total_nonfacility"] == pytest.approx(total)
    assert r["total_facility"] == pytest.approx(total)
    assert r["conversion_factor"] == pytest.approx(CF_2025)
    assert r["source"] == f"CMS {PPRRVU_2025}"
    assert r["confidence"] == "C"
    if status == "A":
        # FACTS 1.1: PCTC 7, global XXX, MULT PROC 5 (therapy MPPR), facility NA.
        assert (r["mult_proc"], r["pctc"], r["global_days"]) == ("5", "7", "XXX")
        assert r["facility_na"] and not r["nonfacility_na"]
        assert not r["not_used_for_medicare"]
    if code == "97010":
        # Bundled: RVUs for reference only, "+" in the not-used-for-Medicare column.
        assert (r["mult_proc"], r["pctc"]) == ("9", "9")
        assert r["not_used_for_medicare"]


def test_pprrvu_dtypes(rvu_2025: pd.DataFrame) -> None:
    floats = ["work_rvu", "pe_rvu_nonfacility", "pe_rvu_facility", "mp_rvu", "total_nonfacility",
              "total_facility", "conversion_factor"]  # fmt: skip
    assert all(pd.api.types.is_float_dtype(rvu_2025[c]) for c in floats)
    assert all(
        pd.api.types.is_bool_dtype(rvu_2025[c])
        for c in ["not_used_for_medicare", "nonfacility_na", "facility_na"]
    )
    assert pd.api.types.is_integer_dtype(rvu_2025["year"])
    assert all(
        pd.api.types.is_string_dtype(rvu_2025[c])
        for c in ["cpt", "modifier", "status", "pctc", "mult_proc"]
    )
    assert rvu_2025[floats].notna().all().all()


def test_pprrvu_codes_filter(cms_dir: Path) -> None:
    rvu = read_pprrvu(cms_dir / PPRRVU_2025, codes=sorted(RVU_2025))
    assert set(rvu["cpt"]) == set(RVU_2025)
    assert list(rvu.columns) == RVU_COLUMNS
    with pytest.warns(UnpricedCodeWarning, match="ZZZZZ"):
        only = read_pprrvu(cms_dir / PPRRVU_2025, codes=["97140", "ZZZZZ"])
    assert set(only["cpt"]) == {"97140"}


def test_pprrvu_2026_shape_with_pric_ind_gives_identical_results(
    cms_dir: Path, tmp_path: Path
) -> None:
    original = _without_descriptors(_records(cms_dir / PPRRVU_2025))
    plain = read_pprrvu(_write(tmp_path / "PPRRVU2025_plain.csv", original))
    shaped = read_pprrvu(
        _write(tmp_path / "PPRRVU2025_shaped.csv", _with_pric_ind(original), trailing_blank_lines=3)
    )
    real = read_pprrvu(cms_dir / PPRRVU_2025)
    drop = ["source"]
    pd.testing.assert_frame_equal(shaped.drop(columns=drop), real.drop(columns=drop))
    pd.testing.assert_frame_equal(plain.drop(columns=drop), real.drop(columns=drop))


def test_pprrvu_reads_the_csv_inside_a_zip(cms_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "RVU25D.zip"
    csv_copy = _write(tmp_path / PPRRVU_2025, _without_descriptors(_records(cms_dir / PPRRVU_2025)))
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(csv_copy, PPRRVU_2025)
        zf.writestr("RVU25D_readme.txt", "not a table")
    from_zip = read_pprrvu(archive, codes=["97140"])
    assert from_zip["source"].iloc[0] == f"CMS RVU25D.zip/{PPRRVU_2025}"
    assert from_zip.loc[from_zip["modifier"] == "", "total_nonfacility"].item() == pytest.approx(
        0.84
    )


# --------------------------------------------------------------------------------------------
# The real CY2026 files (RVU26C, July release)
# --------------------------------------------------------------------------------------------


def test_pprrvu_2026_with_pric_ind_reproduces_the_shipped_2026_rvus(cms26_dir: Path) -> None:
    """The CY2026 file has PRIC IND after TEAM SURG; read by header name it gives the shipped table."""
    rvu = read_pprrvu(cms26_dir / PPRRVU_2026)
    assert list(rvu.columns) == RVU_COLUMNS
    assert (rvu["year"] == 2026).all() and (rvu["source"] == f"CMS {PPRRVU_2026}").all()
    shipped = pd.read_csv(SHIPPED / "rvu.csv", dtype={"cpt": str, "mult_proc": str}).query("year == 2026")
    assert len(shipped) > 0
    got = rvu[rvu["modifier"] == ""].set_index("cpt").loc[shipped["cpt"]]
    numbers = ["work_rvu", "pe_rvu_nonfacility", "pe_rvu_facility", "mp_rvu", "total_nonfacility",
               "total_facility"]  # fmt: skip
    assert got[numbers].to_numpy() == pytest.approx(shipped[numbers].to_numpy(dtype=float))
    assert got["status"].tolist() == shipped["status"].tolist()
    assert got["mult_proc"].tolist() == shipped["mult_proc"].tolist()
    factors = pd.read_csv(SHIPPED / "conversion_factors.csv").query("year == 2026 and apm_status == 'non_qp'")
    assert (rvu["conversion_factor"] == factors["conversion_factor"].item()).all()


def test_gpci_2026_reproduces_the_shipped_2026_gpcis(cms26_dir: Path) -> None:
    gpci = read_gpci(cms26_dir / GPCI_2026)
    assert list(gpci.columns) == GPCI_COLUMNS
    assert len(gpci) == 109 and (gpci["year"] == 2026).all()
    # FACTS: the 1.0 work GPCI floor is in force for 2026 (the file prints the floored values)
    assert (gpci["pw_gpci"] >= 1.0).all()
    shipped = pd.read_csv(SHIPPED / "gpci.csv", dtype={"locality_id": str}).query(
        "year == 2026 and locality_id != '00000-00'"
    )
    got = gpci.set_index("locality_id").loc[shipped["locality_id"]]
    for column in ["pw_gpci", "pe_gpci", "mp_gpci"]:
        assert got[column].to_numpy() == pytest.approx(shipped[column].to_numpy()), column


# --------------------------------------------------------------------------------------------
# PPRRVU on small files
# --------------------------------------------------------------------------------------------


def test_pprrvu_mini_file_layout(tmp_path: Path) -> None:
    path = _mini_pprrvu(
        tmp_path / "PPRRVU_test.csv",
        [{}, {"cpt": "97010", "status": "B", "plus": "+", "mult": "9", "pctc": "9", "na_f": ""},
         {"cpt": "97140", "mod": "gp"}],
    )  # fmt: skip
    rvu = read_pprrvu(path)
    assert list(rvu.columns) == RVU_COLUMNS
    assert rvu["cpt"].tolist() == ["97140", "97010", "97140"]
    assert rvu["modifier"].tolist() == ["", "", "GP"]
    assert rvu["not_used_for_medicare"].tolist() == [False, True, False]
    assert rvu["facility_na"].tolist() == [True, False, True]
    assert (rvu["year"] == 2025).all()


def test_pprrvu_non_numeric_rvu_names_the_row(tmp_path: Path) -> None:
    path = _mini_pprrvu(
        tmp_path / "PPRRVU2025_bad.csv",
        [{}, {"cpt": "97124", "work": "0.3S"}, {"cpt": "97110", "mp": ""}],
    )
    with pytest.raises(ReferenceDataError) as info:
        read_pprrvu(path)
    message = str(info.value)
    # 3 title lines + 4 header rows: the data start on line 8.
    assert "PPRRVU2025_bad.csv" in message
    assert "WORK RVU" in message and "line 9: '0.3S'" in message
    assert "MP RVU" in message and "line 10: ''" in message
    assert "cms.gov" in message
    rows = info.value.rows
    assert rows[["line", "code", "column"]].values.tolist() == [
        [9, "97124", "WORK RVU"],
        [10, "97110", "MP RVU"],
    ]


def test_pprrvu_bad_flag_is_reported(tmp_path: Path) -> None:
    path = _mini_pprrvu(tmp_path / "PPRRVU2025_flag.csv", [{"plus": "Y"}])
    with pytest.raises(ReferenceDataError, match="NOT USED FOR MEDICARE PAYMENT"):
        read_pprrvu(path)


def test_pprrvu_year_from_argument_or_name(tmp_path: Path) -> None:
    untitled = _mini_pprrvu(tmp_path / "relative_values.csv", [{}], title="Relative Value File")
    with pytest.raises(ReferenceDataError, match="year="):
        read_pprrvu(untitled)
    assert read_pprrvu(untitled, year=2026)["year"].tolist() == [2026]
    named = _mini_pprrvu(tmp_path / "PPRRVU2026_Jan.csv", [{}], title="Relative Value File")
    assert read_pprrvu(named)["year"].tolist() == [2026]
    titled = _mini_pprrvu(tmp_path / "PPRRVU2025_x.csv", [{}])
    with pytest.raises(ReferenceDataError, match="not 2026"):
        read_pprrvu(titled, year=2026)


def test_pprrvu_stray_row_is_reported_not_dropped(tmp_path: Path) -> None:
    path = _mini_pprrvu(tmp_path / "PPRRVU2025_stray.csv", [{}, {"cpt": "9714"}])
    with pytest.raises(ReferenceDataError, match="HCPCS.*line 9"):
        read_pprrvu(path)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    work=st.decimals(min_value=0, max_value=99, places=2),
    pe=st.decimals(min_value=0, max_value=99, places=2),
    mp=st.decimals(min_value=0, max_value=9, places=2),
)
def test_pprrvu_round_trips_any_rvu(tmp_path: Path, work, pe, mp) -> None:
    path = _mini_pprrvu(
        tmp_path / "PPRRVU2025_h.csv", [{"work": str(work), "pe_nf": str(pe), "mp": str(mp)}]
    )
    r = read_pprrvu(path).iloc[0]
    assert (r["work_rvu"], r["pe_rvu_nonfacility"], r["mp_rvu"]) == (
        float(work),
        float(pe),
        float(mp),
    )


# --------------------------------------------------------------------------------------------
# GPCI and localities
# --------------------------------------------------------------------------------------------


def test_gpci_reproduces_facts_2025(cms_dir: Path) -> None:
    gpci = read_gpci(cms_dir / GPCI_2025)
    assert list(gpci.columns) == GPCI_COLUMNS
    assert len(gpci) == 109
    assert (gpci["year"] == 2025).all()
    assert gpci["locality_id"].str.fullmatch(r"\d{5}-\d{2}").all()
    assert (gpci["locality_id"] == gpci["mac"] + "-" + gpci["locality_number"]).all()
    assert gpci["locality_id"].is_unique
    by_id = gpci.set_index("locality_id")
    for locality, (pw, pe, mp) in GPCI_2025_VALUES.items():
        got = by_id.loc[locality, ["pw_gpci", "pe_gpci", "mp_gpci"]].astype(float).tolist()
        assert got == pytest.approx([pw, pe, mp]), locality
    assert by_id.loc["02102-01", "locality_name"] == "ALASKA"  # "*" footnote marker removed
    assert by_id.loc["03602-21", "locality_name"] == "WYOMING"  # "**"
    assert by_id.loc["13202-01", "state"] == "NY"
    assert not gpci["locality_name"].str.contains(r"\*").any()
    assert (gpci["source"] == f"CMS {GPCI_2025}").all() and (gpci["confidence"] == "C").all()


def test_gpci_prefers_the_floored_work_column_and_asks_which_year(tmp_path: Path) -> None:
    two_years = tmp_path / "GPCI_both.csv"
    two_years.write_text(
        "ADDENDUM E. GPCIs BY STATE AND MEDICARE LOCALITY,,,,,,,,,\n,,,,,,,,,\n"
        "Medicare Administrative Contractor (MAC),State,Locality Number,Locality Name,"
        "2026 PW GPCI (without 1.0 Floor),2026 PW GPCI (with 1.0 Floor),2026 PE GPCI,2026 MP GPCI,"
        "2025 PW GPCI (with 1.0 Floor),2025 PE GPCI\n"
        "10112,AL,0,ALABAMA,0.911,1,0.875,0.566,1,0.869\n"
        "*Footnote text.,,,,,,,,,\n"
    )
    with pytest.raises(ReferenceDataError, match="several years"):
        read_gpci(two_years)
    row = read_gpci(two_years, year=2026).iloc[0]
    assert (row["locality_id"], row["pw_gpci"], row["pe_gpci"], row["mp_gpci"]) == (
        "10112-00",
        1.0,
        0.875,
        0.566,
    )


def test_gpci_non_numeric_names_the_row(tmp_path: Path) -> None:
    bad = tmp_path / "GPCI2025.csv"
    bad.write_text(
        "ADDENDUM E,,,,,,\n,,,,,,\n"
        "Medicare Administrative Contractor (MAC),State,Locality Number,Locality Name,"
        "2025 PW GPCI (with 1.0 Floor),2025 PE GPCI,2025 MP GPCI\n"
        "10112,AL,00,ALABAMA,1,0.869,0.575\n"
        "02102,AK,01,ALASKA*,1.5,n/a,0.592\n"
    )
    with pytest.raises(ReferenceDataError, match=r"PE GPCI.*line 5: 'n/a'"):
        read_gpci(bad)


def test_localities_real_file(cms_dir: Path) -> None:
    loc = read_localities(cms_dir / LOCCO_2025)
    assert list(loc.columns) == LOCALITY_COLUMNS
    # 110 locality rows in the file; 05302-99 is listed twice word for word.
    assert len(loc) == 109
    assert loc["locality_id"].is_unique
    assert loc["locality_id"].str.fullmatch(r"\d{5}-\d{2}").all()
    by_id = loc.set_index("locality_id")
    assert by_id.loc["10112-00", ["mac", "locality_number", "state", "fee_schedule_area", "counties"]].tolist() == [
        "10112", "00", "ALABAMA", "STATEWIDE", "ALL COUNTIES"
    ]  # fmt: skip
    assert by_id.loc["13202-01", ["state", "fee_schedule_area", "counties"]].tolist() == [
        "NEW YORK",
        "MANHATTAN",
        "NEW YORK",
    ]
    # State printed only on the first row of the block: carried down.
    assert by_id.loc["01112-05", "state"] == "CALIFORNIA"
    assert by_id.loc["13282-99", "state"] == "NEW YORK"
    assert by_id.loc["09102-04", "counties"] == "DADE AND MONROE"
    assert by_id.loc["05302-99", "fee_schedule_area"] == "REST OF STATE"
    for column in ["state", "fee_schedule_area", "counties"]:
        assert (loc[column] == loc[column].str.strip()).all()
        assert (loc[column] != "").all()


def test_localities_agree_with_gpci(cms_dir: Path) -> None:
    loc = read_localities(cms_dir / LOCCO_2025)
    gpci = read_gpci(cms_dir / GPCI_2025)
    assert set(loc["locality_id"]) == set(gpci["locality_id"])


def test_localities_continuation_rows_are_folded(tmp_path: Path) -> None:
    path = tmp_path / "26LOCCO.csv"
    path.write_text(
        "COUNTIES INCLUDED IN 2026 LOCALITIES.,,,,\n,,,,\n"
        "Medicare Adminstrative Contractor,Locality Number,State ,Fee Schedule Area ,Counties\n,,,,\n"
        '6102,16,ILLINOIS ,CHICAGO,COOK \n6102,12,,EAST ST. LOUIS,"BOND, CALHOUN"\n,,,,"CLINTON, JERSEY"\n'
        ",,,,\n7302,0,MISSISSIPPI ,STATEWIDE ,ALL COUNTIES \n , , , , \n"
        "*  Payment locality is serviced by two carriers.,,,,\n"
    )
    loc = read_localities(path)
    assert loc[["locality_id", "state", "counties"]].values.tolist() == [
        ["06102-16", "ILLINOIS", "COOK"],
        ["06102-12", "ILLINOIS", "BOND, CALHOUN, CLINTON, JERSEY"],
        ["07302-00", "MISSISSIPPI", "ALL COUNTIES"],
    ]


def test_localities_block_without_state_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "26LOCCO.csv"
    path.write_text(
        "Medicare Adminstrative Contractor,Locality Number,State,Fee Schedule Area,Counties\n"
        "6102,16,ILLINOIS,CHICAGO,COOK\n,,,,\n7302,0,,STATEWIDE,ALL COUNTIES\n"
    )
    with pytest.raises(ReferenceDataError, match="no state.*line 4"):
        read_localities(path)


# --------------------------------------------------------------------------------------------
# NCCI PTP edits
# --------------------------------------------------------------------------------------------


def test_ptp_text_file_in_cms_layout(tmp_path: Path) -> None:
    ptp = read_ncci_ptp(_ptp_txt(tmp_path / "ccipra-v321r0-f1.txt"))
    assert list(ptp.columns) == PTP_COLUMNS
    assert ptp[["column1", "column2", "modifier_indicator"]].values.tolist() == [
        ["97140", "97124", 1], ["97140", "97530", 1], ["97530", "97161", 9]
    ]  # fmt: skip
    assert ptp["effective_date"].tolist() == [
        pd.Timestamp("2000-01-01"),
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2020-01-01"),
    ]
    assert ptp["deletion_date"].isna().tolist() == [True, True, False]
    assert ptp["deletion_date"].iloc[2] == pd.Timestamp("2020-01-01")
    assert pd.api.types.is_datetime64_any_dtype(ptp["effective_date"])
    assert pd.api.types.is_datetime64_any_dtype(ptp["deletion_date"])
    assert pd.api.types.is_integer_dtype(ptp["modifier_indicator"])
    assert ptp["rationale"].iloc[0] == "Mutually exclusive procedures"
    assert (ptp["source"] == "CMS ccipra-v321r0-f1.txt").all() and (ptp["confidence"] == "C").all()


def test_ptp_many_files_and_formats_agree(tmp_path: Path) -> None:
    f1 = _ptp_txt(tmp_path / "ccipra-v321r0-f1.txt", _PTP_ROWS[:2])
    f2 = _ptp_txt(tmp_path / "ccipra-v321r0-f2.txt", _PTP_ROWS[2:])
    expected = read_ncci_ptp(_ptp_txt(tmp_path / "ccipra-v321r0-all.txt")).drop(columns="source")

    split = read_ncci_ptp([f1, f2])
    assert split["source"].tolist() == ["CMS ccipra-v321r0-f1.txt"] * 2 + [
        "CMS ccipra-v321r0-f2.txt"
    ]
    pd.testing.assert_frame_equal(split.drop(columns="source"), expected)

    as_csv = tmp_path / "ccipra-v321r0-f1.csv"
    with as_csv.open("w", newline="") as fh:
        csv.writer(fh).writerows(_ptp_records(_PTP_ROWS))
    pd.testing.assert_frame_equal(read_ncci_ptp(as_csv).drop(columns="source"), expected)

    as_xlsx = tmp_path / "ccipra-v321r0-f1.xlsx"
    # A spreadsheet holds dates and indicators as numbers, and "*" as text.
    records = _ptp_records(_PTP_ROWS)
    at = len(_PTP_TITLE) + len(_PTP_HEADER)
    numbers = [
        [int(c) if j in (3, 4, 5) and c.isdigit() else c for j, c in enumerate(r)]
        for r in records[at:]
    ]
    numbers[1][3] = pd.Timestamp("2020-01-01").to_pydatetime()  # a real date cell
    sheet = pd.DataFrame(records[:at] + numbers, dtype=object)
    sheet.to_excel(as_xlsx, header=False, index=False)
    pd.testing.assert_frame_equal(read_ncci_ptp(as_xlsx).drop(columns="source"), expected)

    archive = tmp_path / "ccipra-v321r0-f1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(f1, "ccipra-v321r0-f1.txt")
        zf.write(as_xlsx, "ccipra-v321r0-f1.xlsx")  # same table twice: read once
        zf.writestr("README.pdf", b"%PDF-")
    from_zip = read_ncci_ptp(str(archive))
    assert from_zip["source"].tolist() == ["CMS ccipra-v321r0-f1.zip/ccipra-v321r0-f1.txt"] * 2
    pd.testing.assert_frame_equal(from_zip.drop(columns="source"), expected.iloc[:2])


def test_ptp_bad_cells_are_reported_together(tmp_path: Path) -> None:
    rows = [
        *_PTP_ROWS,
        ["97112", "97110", "", "2020-13-01", "*", "2", "Mutually exclusive procedures"],
    ]
    with pytest.raises(ReferenceDataError) as info:
        read_ncci_ptp(_ptp_txt(tmp_path / "ccipra-v321r0-f3.txt", rows))
    message = str(info.value)
    # 2 title lines + 4 header rows + 3 good edits: the bad edit is on line 10.
    assert "Effective Date" in message and "Modifier indicator" in message and "line 10" in message
    assert set(info.value.rows["line"]) == {10}


def test_ptp_older_layout_without_rationale(tmp_path: Path) -> None:
    path = tmp_path / "ccipra-v200r0-f1.txt"
    lines = [
        "Column 1\tColumn 2\t*=in existence prior to 1996\tEffective Date\tDeletion Date\tModifier"
    ]
    lines += ["97140\t97530\t\t20200101\t*\t1", "97140\t97124\t*\t19960101\t*\t1"]
    path.write_text("\n".join(lines) + "\n")
    ptp = read_ncci_ptp(path)
    assert ptp["rationale"].tolist() == ["", ""]
    assert ptp["effective_date"].iloc[1] == pd.Timestamp("1996-01-01")


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(range(len(_PTP_ROWS))))
def test_ptp_row_order_does_not_change_the_edits(tmp_path: Path, order: list[int]) -> None:
    shuffled = read_ncci_ptp(
        _ptp_txt(tmp_path / "ccipra-shuffled.txt", [_PTP_ROWS[i] for i in order])
    )
    expected = read_ncci_ptp(_ptp_txt(tmp_path / "ccipra-sorted.txt"))
    key = ["column1", "column2"]
    pd.testing.assert_frame_equal(
        shuffled.drop(columns="source").sort_values(key).reset_index(drop=True),
        expected.drop(columns="source").sort_values(key).reset_index(drop=True),
    )


def test_ptp_without_header_is_unrecognised(tmp_path: Path) -> None:
    path = tmp_path / "ccipra-v321r0-f4.txt"
    path.write_text("97140\t97530\t\t20200101\t*\t1\tx\n")
    with pytest.raises(ReferenceDataError, match="Column 1.*ccipra"):
        read_ncci_ptp(path)


# --------------------------------------------------------------------------------------------
# MUE
# --------------------------------------------------------------------------------------------


def test_mue_csv_in_cms_layout(tmp_path: Path) -> None:
    mue = read_mue(_mue_csv(tmp_path / "MCR_MUE_PractitionerServices_Eff_01-01-2026.csv"))
    assert list(mue.columns) == MUE_COLUMNS
    assert mue[["cpt", "mue", "mai"]].values.tolist() == [
        ["97110", 6, 3],
        ["97140", 4, 3],
        ["97161", 1, 2],
        ["97530", 6, 1],
    ]
    assert mue["mai_text"].iloc[2] == "2 Date of Service Edit: Policy"
    assert mue["rationale"].iloc[2] == "Code Descriptor / CPT Instruction"
    assert pd.api.types.is_integer_dtype(mue["mue"]) and pd.api.types.is_integer_dtype(mue["mai"])
    assert (mue["confidence"] == "C").all()


def test_mue_bad_cells_name_the_line(tmp_path: Path) -> None:
    text = (
        _MUE_TEXT
        + "97124,four,3 Date of Service Edit: Clinical,x\n97010,1,Date of Service Edit,x\n"
    )
    with pytest.raises(ReferenceDataError) as info:
        read_mue(_mue_csv(tmp_path / "MCR_MUE_PractitionerServices.csv", text))
    # The copyright cell spans 3 lines and the header 2: data start on line 6.
    assert "line 10: 'four'" in str(info.value)
    assert "line 11: 'Date of Service Edit'" in str(info.value)


# --------------------------------------------------------------------------------------------
# Missing and unrecognisable files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "loader, name",
    [
        (read_pprrvu, "PPRRVU2025_Oct.csv"),
        (read_gpci, "GPCI2025.csv"),
        (read_localities, "25LOCCO.csv"),
        (read_ncci_ptp, "ccipra-v321r0-f1.txt"),
        (read_mue, "MCR_MUE_PractitionerServices.csv"),
    ],
)
def test_missing_and_garbage_files(tmp_path: Path, loader, name: str) -> None:
    with pytest.raises(ReferenceDataError, match=rf"{re.escape(name)} does not exist.*cms\.gov"):
        loader(tmp_path / name)
    garbage = tmp_path / name
    garbage.write_text("this is not,a CMS file\n1,2\n\n")
    with pytest.raises(
        ReferenceDataError, match=rf"{re.escape(name)}: no header row.*expected.*cms\.gov"
    ) as info:
        loader(garbage)
    assert isinstance(info.value, LookupError)


def test_wrong_kind_of_file_is_refused(tmp_path: Path) -> None:
    pdf = tmp_path / "PPRRVU2025.pdf"
    pdf.write_bytes(b"%PDF-")
    with pytest.raises(ReferenceDataError, match=r"'\.pdf'"):
        read_pprrvu(pdf)
    broken = tmp_path / "RVU25D.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ReferenceDataError, match="not a readable zip"):
        read_pprrvu(broken)


def test_zip_with_several_candidates_asks_for_one(tmp_path: Path) -> None:
    first = _mini_pprrvu(tmp_path / "PPRRVU2026_Jul_QPP.csv", [{}])
    second = _mini_pprrvu(tmp_path / "PPRRVU2026_Jul_nonQPP.csv", [{}])
    archive = tmp_path / "RVU26C.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(first, first.name)
        zf.write(second, second.name)
    with pytest.raises(ReferenceDataError, match="several candidate files.*nonQPP"):
        read_pprrvu(archive)


def test_locality_listed_twice_with_different_counties(tmp_path: Path) -> None:
    path = tmp_path / "26LOCCO.csv"
    path.write_text(
        "Medicare Adminstrative Contractor,Locality Number,State,Fee Schedule Area,Counties\n"
        "5302,99,MISSOURI,REST OF STATE*,ALL OTHER COUNTIES\n5302,99,,REST OF STATE,CLAY\n"
    )
    with pytest.raises(ReferenceDataError, match="05302-99.*lines 2, 3"):
        read_localities(path)


def test_mue_code_listed_twice_with_different_values(tmp_path: Path) -> None:
    text = _MUE_TEXT + "97140,6,3 Date of Service Edit: Clinical,Nature of Service/Procedure\n"
    with pytest.raises(ReferenceDataError, match="97140"):
        read_mue(_mue_csv(tmp_path / "MCR_MUE_PractitionerServices.csv", text))


def test_gpci_row_without_mac_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "GPCI2025.csv"
    bad.write_text(
        "Medicare Administrative Contractor (MAC),State,Locality Number,Locality Name,"
        "2025 PW GPCI (with 1.0 Floor),2025 PE GPCI,2025 MP GPCI\n"
        "10112,AL,00,ALABAMA,1,0.869,0.575\nAK,01,ALASKA,1.5,1.081,0.592,\n"
    )
    with pytest.raises(ReferenceDataError, match="MAC that is not a MAC number.*line 3: 'AK'"):
        read_gpci(bad)


def test_header_without_needed_columns(tmp_path: Path) -> None:
    path = tmp_path / "PPRRVU2025_cut.csv"
    path.write_text(
        "2025 National Physician Fee Schedule,,\nHCPCS,MOD,DESCRIPTION\n97140,,own label\n"
    )
    with pytest.raises(ReferenceDataError, match="missing STATUS CODE"):
        read_pprrvu(path)


# --------------------------------------------------------------------------------------------
# reference_from_cms
# --------------------------------------------------------------------------------------------


def test_reference_from_cms(cms_dir: Path, tmp_path: Path) -> None:
    tables = reference_from_cms(
        pprrvu=cms_dir / PPRRVU_2025,
        gpci=cms_dir / GPCI_2025,
        ptp=[_ptp_txt(tmp_path / "ccipra-v321r0-f1.txt")],
        mue=_mue_csv(tmp_path / "MCR_MUE_PractitionerServices.csv"),
        codes=sorted(RVU_2025),
    )
    assert sorted(tables) == ["gpci", "mue", "ncci_ptp", "rvu"]
    assert set(tables["rvu"]["cpt"]) == set(RVU_2025)
    assert len(tables["gpci"]) == 109
    assert len(tables["ncci_ptp"]) == 3 and len(tables["mue"]) == 4
    assert reference_from_cms() == {}
    only_gpci = reference_from_cms(gpci=cms_dir / GPCI_2025)
    assert list(only_gpci) == ["gpci"]
