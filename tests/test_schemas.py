"""Contracts and code-set checks in analytics.schemas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.schemas import (
    CANONICAL_COLUMNS,
    CANONICAL_DTYPES,
    PROVIDER_TYPES,
    REQUIRED_COLUMNS,
    ServiceLineSchema,
    check_icd10cm,
    check_modifiers,
    dx_list_problems,
    is_icd10pcs_like,
    normalise_dx_codes,
    normalise_modifiers,
    normalise_provider_type,
    valid_npi,
)

# FACTS sec. 9: ICD-10-CM codes commonly used to support massage and manual therapy.
FACTS_DX = [
    "M54.50",
    "M54.51",
    "M54.59",
    "M54.2",
    "M54.6",
    "M54.41",
    "M54.42",
    "M62.830",
    "M62.831",
    "M62.838",
    "M79.10",
    "M79.11",
    "M79.12",
    "M79.18",
    "M79.7",
    "M25.511",
    "M25.512",
    "M99.01",
    "M99.09",
    "G44.209",
    "G89.29",
    "S13.4XXA",
    "S16.1XXA",
    "S33.5XXA",
    "S39.012A",
    "M62.81",
]

PCS_REASON = (
    "8E0KX1Z is an ICD-10-PCS inpatient procedure code; "
    "professional claims carry ICD-10-CM diagnoses"
)


# ----------------------------------------------------------------- ICD-10


def test_facts_diagnoses_pass_with_and_without_dots():
    codes = pd.Series(FACTS_DX)
    assert (check_icd10cm(codes) == "").all()
    assert (check_icd10cm(codes.str.replace(".", "", regex=False)) == "").all()
    assert (check_icd10cm(codes.str.lower()) == "").all()


def test_pcs_massage_code_gets_its_own_reason():
    # FACTS sec. 8: 8E0KX1Z is therapeutic massage in ICD-10-PCS, never on a CMS-1500.
    assert check_icd10cm(pd.Series(["8E0KX1Z"])).iloc[0] == PCS_REASON


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("S39.012", "needs a 7th character"),
        ("S39012", "e.g. S39.012A"),
        ("S13.4", "e.g. S13.4XXA"),
        ("T14.90", "needs a 7th character"),
        ("S39.012B", "7th character B"),
        ("724.2", "ICD-9-CM"),
        ("M5", "is not an ICD-10-CM code"),
        ("M54.", "is not an ICD-10-CM code"),
        ("M54.12345", "is not an ICD-10-CM code"),
        ("5450", "is not an ICD-10-CM code"),
        ("MM4.5", "is not an ICD-10-CM code"),
    ],
)
def test_bad_diagnoses_are_explained(code, fragment):
    assert fragment in check_icd10cm(pd.Series([code])).iloc[0]


@pytest.mark.parametrize("code", ["S52.501B", "S82.101D", "S82.101G", "T31.0", "S39.012S"])
def test_valid_injury_forms(code):
    # Fractures take healing-status 7th characters; burn extent T31/T32 takes none.
    assert check_icd10cm(pd.Series([code])).iloc[0] == ""


def test_check_icd10cm_keeps_index_and_skips_blanks():
    codes = pd.Series(["M54.50", "", None, "8E0KX1Z"], index=[10, 11, 12, 13])
    out = check_icd10cm(codes)
    assert out.index.tolist() == [10, 11, 12, 13]
    assert out.tolist()[:3] == ["", "", ""]
    assert out.iloc[3] == PCS_REASON


def test_is_icd10pcs_like():
    codes = pd.Series(["8E0KX1Z", "8E0H30Z", "F07M6ZZ", "S39012A", "S134XXA", "M54.50", ""])
    assert is_icd10pcs_like(codes).tolist() == [True, True, True, False, False, False, False]


def test_normalise_dx_codes():
    dx = pd.Series(["m5450; M62830", "M54.50 | M54.50", "", None, "8E0KX1Z,S39012A"])
    assert normalise_dx_codes(dx).tolist() == [
        "M54.50,M62.830",
        "M54.50",
        "",
        "",
        "8E0KX1Z,S39.012A",
    ]


# ----------------------------------------------------------------- modifiers


def test_normalise_modifiers_separators_case_and_repeats():
    raw = pd.Series(["gp 59", "GP:59", "GP;59", "GP|59", "GP, 59", "GP,GP", "", None, " kx "])
    assert normalise_modifiers(raw).tolist() == [
        "GP,59",
        "GP,59",
        "GP,59",
        "GP,59",
        "GP,59",
        "GP",
        "",
        "",
        "KX",
    ]


def test_check_modifiers():
    out = check_modifiers(pd.Series(["GP,59", "", "G", "GP,59,KX,XS,76", "GPX"]))
    assert out.iloc[0] == "" and out.iloc[1] == ""
    assert out.iloc[2] == "modifier 'G' is not two letters or digits"
    assert "at most 4" in out.iloc[3]
    assert "'GPX'" in out.iloc[4]


# ----------------------------------------------------------------- NPI


def test_valid_npi_known_values():
    # 1234567893 is the worked example of the NPI check digit (Luhn with prefix 80840).
    npi = pd.Series(
        ["1234567893", "1234567890", "123456789", "12345678931", "", None, "abcdefghij"]
    )
    assert valid_npi(npi).tolist() == [True, False, False, False, False, False, False]


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_exactly_one_check_digit_is_valid(body):
    candidates = pd.Series([body + str(d) for d in range(10)])
    assert valid_npi(candidates).sum() == 1


# ----------------------------------------------------------------- provider types


def test_normalise_provider_type():
    raw = pd.Series(["LMT", "Licensed Massage Therapist", "L.M.T.", "Physical  Therapist", "DC"])
    assert normalise_provider_type(raw).tolist() == ["lmt", "lmt", "lmt", "pt", "dc"]
    extra = normalise_provider_type(pd.Series(["Massage", "bodyworker"]), {"massage": "lmt"})
    assert extra.tolist() == ["lmt", "bodyworker"]


# ----------------------------------------------------------------- ServiceLineSchema


def _minimal(**overrides):
    frame = pd.DataFrame(
        {
            "patient_id": ["p1", "p2"],
            "service_date": pd.to_datetime(["2025-03-04", "2025-03-05"]),
            "provider_id": ["t1", "t1"],
            "provider_type": ["lmt", "pt"],
            "payer_id": ["aetna", "aetna"],
            "cpt": ["97140", "G0283"],
            "charge": [95, 20],
        }
    )
    return frame.assign(**overrides)


def test_schema_accepts_minimal_frame_coerces_and_keeps_extras():
    out = ServiceLineSchema.validate(_minimal(location=["main", "annex"]))
    assert out["charge"].dtype == "float64"
    assert out["service_date"].dtype == "datetime64[ns]"
    assert out["location"].tolist() == ["main", "annex"]


def test_schema_reports_every_problem_lazily():
    bad = _minimal(
        cpt=["9714", "97140"],
        minutes=[-5.0, 10.0],
        dx_codes=["M54.50", "8E0KX1Z"],
        rendering_npi=["1234567890", ""],
        submission_date=pd.to_datetime(["2025-03-01", "2025-03-06"]),
        modifiers=["GP,59", "G"],
    )
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        ServiceLineSchema.validate(bad, lazy=True)
    cases = caught.value.failure_cases
    failed = set(zip(cases["column"], cases["index"], strict=True))
    for expected in [
        ("cpt", 0),
        ("minutes", 0),
        ("dx_codes", 1),
        ("rendering_npi", 0),
        ("submission_date", 0),
        ("modifiers", 1),
    ]:
        assert expected in failed


def test_schema_wants_canonical_code_lists():
    with pytest.raises(pa.errors.SchemaError):
        ServiceLineSchema.validate(_minimal(dx_codes=["M5450", ""]))
    with pytest.raises(pa.errors.SchemaError):
        ServiceLineSchema.validate(_minimal(modifiers=["GP 59", ""]))
    ok = _minimal(dx_codes=["M54.50,M62.830", ""], modifiers=["GP,59", ""])
    assert len(ServiceLineSchema.validate(ok)) == 2


def test_canonical_constants_match_the_schema():
    schema = ServiceLineSchema.to_schema()
    assert set(schema.columns) == set(CANONICAL_COLUMNS) == set(CANONICAL_DTYPES)
    assert {n for n, c in schema.columns.items() if c.required} == set(REQUIRED_COLUMNS)
    assert "other" in PROVIDER_TYPES and "lmt" in PROVIDER_TYPES


def test_schema_on_empty_frame_with_canonical_dtypes():
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in CANONICAL_DTYPES.items()})
    assert ServiceLineSchema.validate(empty).empty
    assert np.dtype("float64") == ServiceLineSchema.validate(empty)["minutes"].dtype


# -- the ICD-10-CM code set of the date of service's fiscal year ----------------------------------

def test_m54_5_is_billable_until_the_fy2022_split():
    """CDC FY2022 ICD-10-CM addenda (FACTS sec. 9): from 2021-10-01 M54.5 (low back pain) is a
    category, expanded to M54.50, M54.51 and M54.59. A service on 2021-09-30 may bill M54.5; one
    on 2021-10-01 or later may not, and the reason names the codes to bill instead."""
    dates = pd.Series(pd.to_datetime(["2021-09-30", "2021-10-01", "2025-03-03", "2026-03-03"]))
    reasons = check_icd10cm(pd.Series(["M54.5"] * 4), dates)
    assert reasons.iloc[0] == ""
    for r in reasons.iloc[1:]:
        assert "M54.5" in r and "M54.50, M54.51 or M54.59" in r
    assert "FY2022" in reasons.iloc[1]
    assert "FY2025 (Oct 1, 2024 - Sep 30, 2025)" in reasons.iloc[2]
    assert "FY2026 (Oct 1, 2025 - Sep 30, 2026)" in reasons.iloc[3]
    assert (check_icd10cm(pd.Series(["M54.50", "M54.51", "M54.59"]), dates.iloc[1:]) == "").all()


def test_categories_and_unknown_codes_are_rejected():
    """In the FY2026 code list (CDC, April 1, 2026 update) M54 and M79.1 are categories (M79.1
    has M79.10-M79.18 under it), M62.830 and S39.012A are billable codes, and M99.99 is no code."""
    date = pd.Series(pd.to_datetime(["2026-03-03"] * 5))
    reasons = check_icd10cm(pd.Series(["M54", "M79.1", "M62.830", "S39.012A", "M99.99"]), date)
    assert "M54 is a category, not a billable code" in reasons.iloc[0]
    assert "bill M79.10, M79.11, M79.12 or M79.18" in reasons.iloc[1]
    assert reasons.iloc[2] == "" and reasons.iloc[3] == ""
    assert "M99.99 is not a code of the ICD-10-CM code set of FY2026" in reasons.iloc[4]


def test_a_code_new_in_fy2026_is_not_valid_in_fy2025():
    """E11.A (type 2 diabetes in remission) entered ICD-10-CM on 2025-10-01 (FY2026): it is in
    the FY2026 code list and not in FY2025's (reference/icd10cm_changes.csv)."""
    dates = pd.Series(pd.to_datetime(["2025-09-30", "2025-10-01"]))
    reasons = check_icd10cm(pd.Series(["E11.A", "E11.A"]), dates)
    assert "not a code of the ICD-10-CM code set of FY2025" in reasons.iloc[0]
    assert reasons.iloc[1] == ""


def test_pcs_stays_rejected_and_undated_lists_use_the_latest_code_set():
    """ICD-10-PCS 8E0KX1Z (therapeutic massage, FACTS sec. 8) is rejected whatever the date;
    without dates the FY2026 code set is used and the reason says so."""
    dated = check_icd10cm(pd.Series(["8E0KX1Z"]), pd.Series(pd.to_datetime(["2019-01-01"])))
    assert dated.iloc[0] == PCS_REASON
    undated = check_icd10cm(pd.Series(["M54.5"]))
    assert "no date of service: checked against FY2026" in undated.iloc[0]
    pos, kinds, reasons = dx_list_problems(pd.Series(["M54.50,M54.5", "M54.5"]),
                                           pd.Series(pd.to_datetime(["2025-01-02", "2021-01-04"])))
    assert pos.tolist() == [0] and "M54.50, M54.51 or M54.59" in reasons.iloc[0]
