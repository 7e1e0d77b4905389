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


# -- every Medicare locality, and the CMS CY2026 files -------------------------------------------

def test_every_medicare_locality_ships_for_2025_and_2026(cms_dir, cms26_dir):
    """The shipped GPCIs are those of the CMS GPCI files, every locality (109 in RVU25D's
    GPCI2025.csv and in RVU26C's GPCI2026.csv) plus national, with the counties of 25LOCCO."""
    from analytics.cms import read_gpci

    g = load_reference().gpci
    for year, path in ((2025, cms_dir / "GPCI2025.csv"), (2026, cms26_dir / "GPCI2026.csv")):
        cms = read_gpci(path).set_index("locality_id")[["pw_gpci", "pe_gpci", "mp_gpci"]]
        shipped = g[(g["year"] == year) & (g["locality_id"] != "00000-00")].set_index("locality_id")
        assert len(cms) == 109 and set(shipped.index) == set(cms.index)
        pd.testing.assert_frame_equal(shipped.loc[cms.index, cms.columns], cms, check_names=False)
    la = g[(g["year"] == 2025) & (g["locality_id"] == "01182-18")].iloc[0]
    assert la["state"] == "CA" and "LOS ANGELES" in la["locality_name"] and la["counties"]


@pytest.mark.parametrize("year, locality, amount", [
    # GPCI2025 Los Angeles 1.042 / 1.194 / 0.690: (0.43 x 1.042 + 0.40 x 1.194 + 0.01 x 0.690)
    # x 32.3465 = 30.1651 -> $30.17
    ("2025", "01182-18", 30.17),
    # GPCI2026 Rest of Oregon 1.000 / 0.996 / 0.703: (0.43 + 0.39 x 0.996 + 0.01 x 0.703)
    # x 33.4009 = 27.5714 -> $27.57 (a locality the old extract lacked)
    ("2026", "02302-99", 27.57),
])
def test_any_locality_prices(year, locality, amount):
    """97140, one unit, participating, from the RVUs of FACTS 1.1 and the CMS GPCI files."""
    pol = load_payers({"payers": {"x": {"kind": "medicare", "fee": {"basis": "medicare", "locality": locality}}}})
    df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp(f"{year}-05-01"), "provider_id": "a",
                       "payer_id": "x", "cpt": ["97140"], "units": [1], "modifiers": "GP"})
    assert evaluate(df, pol)["allowed"].item() == amount


def test_unknown_locality_names_it_and_how_to_list_them():
    pol = load_payers({"payers": {"x": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "99999-99"}}}})
    df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2025-05-01"), "provider_id": "a",
                       "payer_id": "x", "cpt": ["97140"], "units": [1], "modifiers": "GP"})
    with pytest.raises(ReferenceDataError, match=r"99999-99.*analytics init --localities"):
        evaluate(df, pol)
    with pytest.raises(ReferenceDataError, match=r"'99999-99'.*MAC-locality.*init --localities"):
        load_reference().gpci_for(2025, "99999-99")


def test_cms_2026_files_reproduce_the_shipped_2026_reference(cms26_dir):
    """RVU26C (PPRRVU2026_Jul_nonQPP.csv, GPCI2026.csv), read by column name (the 2026 file has
    PRIC IND after TEAM SURG), gives the shipped 2026 RVUs of every catalog code, the 2026
    GPCIs and the non-QP conversion factor 33.4009 (FACTS 1.1, 1.3), hence the same prices."""
    cms = Reference.load(pprrvu=cms26_dir / "PPRRVU2026_Jul_nonQPP.csv", gpci=cms26_dir / "GPCI2026.csv")
    shipped = load_reference()
    cols = ["status", "work_rvu", "pe_rvu_nonfacility", "pe_rvu_facility", "mp_rvu", "total_nonfacility",
            "total_facility", "mult_proc"]
    want = shipped.rvu[shipped.rvu["year"] == 2026].set_index("cpt")[cols]
    got = cms.rvu[(cms.rvu["year"] == 2026) & cms.rvu["cpt"].isin(want.index)].set_index("cpt")[cols]
    pd.testing.assert_frame_equal(got.loc[want.index], want)
    gcols = ["pw_gpci", "pe_gpci", "mp_gpci"]
    g_want = shipped.gpci[shipped.gpci["year"] == 2026].set_index("locality_id")[gcols].sort_index()
    g_got = cms.gpci[cms.gpci["year"] == 2026].set_index("locality_id")[gcols].sort_index()
    pd.testing.assert_frame_equal(g_got, g_want)
    assert cms.conversion_factor(2026, "non_qp") == 33.4009
    pol = load_payers({"payers": {
        "nat": {"kind": "medicare"},
        "la": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "01182-18"}},
        "or": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "02302-99"}},
    }})
    for payer in pol:
        df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2026-05-01"), "provider_id": "a",
                           "payer_id": payer, "cpt": ["97110", "97140", "97124", "97112", "97530"],
                           "units": [2, 1, 1, 1, 1], "modifiers": "GP,59"})
        assert evaluate(df, pol, cms)["allowed"].tolist() == evaluate(df, pol, shipped)["allowed"].tolist(), payer
