"""Shipped reference data and its overlay with the real CMS files."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.exceptions import ReferenceDataError
from analytics.payers import load_payers
from analytics.pipeline import evaluate
from analytics.refdata import Reference, load_reference

REQUIRED = {
    "codes": ["97124", "97140", "97112", "97110", "97010", "97139", "97530", "97161", "97162", "97163", "97164"],
}


def test_every_shipped_row_has_source_and_confidence():
    ref = load_reference()
    for name in ("codes", "rvu", "conversion_factors", "gpci", "ncci_ptp", "mue", "carc", "thresholds"):
        table = getattr(ref, name)
        assert {"source", "confidence"} <= set(table.columns), name
        assert table["source"].str.len().gt(0).all(), name
        assert table["confidence"].isin(["C", "S", "R"]).all(), name


def test_catalog_covers_the_codes():
    ref = load_reference()
    cat = ref.codes.set_index("cpt")
    assert set(REQUIRED["codes"]) <= set(cat.index)
    assert not cat.loc["97010", "timed"] and cat.loc["97010", "medicare_status"] == "B"
    assert cat.loc["97139", "medicare_status"] == "C"
    assert cat.loc[["97110", "97112", "97124", "97140", "97530"], "timed"].all()
    assert not cat.loc[["97161", "97164"], "timed"].any()
    assert cat.loc["97140", "mppr"] and not cat.loc["97010", "mppr"]


def test_rvus_both_years_for_every_catalog_code():
    rvu = load_reference().rvu
    for year in (2025, 2026):
        assert set(REQUIRED["codes"]) <= set(rvu.loc[rvu["year"] == year, "cpt"])


def test_conversion_factors():
    ref = load_reference()
    assert ref.conversion_factor(2025) == 32.3465
    assert ref.conversion_factor(2026, "non_qp") == 33.4009
    assert ref.conversion_factor(2026, "qp") == 33.5675
    assert ref.conversion_factor(2024, on="2024-03-08") == 32.7442
    assert ref.conversion_factor(2024, on="2024-03-09") == 33.2875
    with pytest.raises(ReferenceDataError, match="2019"):
        ref.conversion_factor(2019)


def test_gpcis_ten_localities_both_years():
    g = load_reference().gpci
    for year in (2025, 2026):
        assert (g["year"] == year).sum() >= 11  # ten localities + national


def test_ptp_indicator_is_a_setting():
    ref = load_reference()
    row = ref.ncci_ptp.query("column1 == '97140' and column2 == '97124'")
    assert row["modifier_indicator"].item() == 1
    zero = ref.with_ptp_indicator("97140", "97124", 0)
    assert zero.ncci_ptp.query("column1 == '97140' and column2 == '97124'")["modifier_indicator"].item() == 0
    assert ref.ncci_ptp.query("column1 == '97140' and column2 == '97124'")["modifier_indicator"].item() == 1


def test_mue_marked_unconfirmed():
    assert (load_reference().mue["confidence"] == "R").all()


def test_carc_categories():
    ref = load_reference()
    cats = ref.carc_category(pd.Series(["45", "97", "119", "29", "170", "1", "ZZZ"]))
    assert cats.tolist() == ["contractual", "bundling", "benefit_max", "timely_filing",
                             "provider_eligibility", "patient_responsibility", "other"]


def test_cms_files_reproduce_shipped_prices(cms_dir):
    """Loading the real CY2025 CMS files gives the same 2025 prices as the shipped extract."""
    cms = Reference.load(pprrvu=cms_dir / "PPRRVU2025_Oct.csv", gpci=cms_dir / "GPCI2025.csv")
    shipped = load_reference()
    assert set(shipped.rvu["cpt"]) <= set(cms.rvu["cpt"])  # every shipped code is in the CMS file
    pol = load_payers({"payers": {
        "nat": {"kind": "medicare"},
        "ny": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "13202-01"}},
        "ak": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "02102-01"}},
    }})
    for payer in pol:
        df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2025-05-01"), "provider_id": "a",
                           "payer_id": payer, "cpt": ["97110", "97140", "97124", "97112"], "units": [2, 1, 1, 1],
                           "modifiers": "GP,59"})
        a = evaluate(df, pol, cms)["allowed"].tolist()
        b = evaluate(df, pol, shipped)["allowed"].tolist()
        assert a == b, payer
    # a locality only the full CMS file has: Rest of Oregon (02302-99)
    assert "02302-99" in set(cms.gpci["locality_id"])
