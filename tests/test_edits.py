"""Edits: NCCI pairs and modifiers, status B, MUE, coverage, provider type, limits, KX."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.payers import load_payers
from analytics.pipeline import evaluate
from analytics.refdata import load_reference

POLICIES = load_payers({"payers": {
    "mc": {"kind": "medicare"},
    "ppo": {"kind": "commercial", "fee": {"basis": "percent_of_medicare", "percent": 110},
            "ncci": {"pairs": [{"column1": "97140", "column2": "97124", "modifiers": ["XS"]}]},
            "not_covered": ["97010"]},
    "nonncci": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97124": 40, "97140": 40}},
                "ncci": {"follow": False}},
    "pip": {"kind": "auto", "fee": {"basis": "flat", "rates": {"97124": 48}}, "prescription_required": True},
    "hmo": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97124": 40, "97140": 40, "97112": 40}},
            "provider_types": {"97112": ["pt", "dc"]}, "visit_limit": 2},
    "wc": {"kind": "workers_comp", "fee": {"basis": "flat", "rates": {"97140": 40}}, "prior_auth_after_visits": 1},
    "late": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40}}, "timely_filing_days": 90},
}})


def claim(payer, *lines, date="2026-03-02", patient="p1", **extra):
    df = pd.DataFrame({
        "patient_id": patient, "service_date": pd.Timestamp(date), "provider_id": "pt1", "payer_id": payer,
        "provider_type": "pt", "cpt": [c for c, _ in lines], "units": 1, "modifiers": [m for _, m in lines],
    })
    return df.assign(**extra)


def outcome(df, ref=None):
    out = evaluate(df, POLICIES, ref)
    return {r.cpt: (str(r.disposition), r.carc) for r in out.itertuples()}, out


def test_97124_with_97140_without_modifier_is_bundled():
    res, out = outcome(claim("mc", ("97140", "GP"), ("97124", "GP")))
    assert res["97124"] == ("denied", "97")
    assert res["97140"][0] == "payable"
    reason = out.loc[out["cpt"] == "97124", "edit_reason"].item()
    assert "bundled into 97140" in reason and out.loc[out["cpt"] == "97124", "rarc"].item() == "M80"


@pytest.mark.parametrize("modifier", ["59", "XS"])
def test_modifier_on_column_two_unbundles_indicator_1(modifier):
    res, out = outcome(claim("mc", ("97140", "GP"), ("97124", f"GP,{modifier}")))
    assert res["97124"][0] in ("payable", "reduced") and res["97140"][0] in ("payable", "reduced")
    assert f"unbundled by modifier {modifier}" in out.loc[out["cpt"] == "97124", "edit_reason"].item()


def test_modifier_on_column_one_does_not_help():
    res, _ = outcome(claim("mc", ("97140", "GP,59"), ("97124", "GP")))
    assert res["97124"] == ("denied", "97")


def test_indicator_0_denies_even_with_59():
    ref = load_reference().with_ptp_indicator("97140", "97124", 0)
    res, out = outcome(claim("mc", ("97140", "GP"), ("97124", "GP,59")), ref)
    assert res["97124"] == ("denied", "97")
    assert "indicator 0" in out.loc[out["cpt"] == "97124", "edit_reason"].item()


def test_payer_that_honours_only_xs():
    res, out = outcome(claim("ppo", ("97140", ""), ("97124", "59")))
    assert res["97124"] == ("denied", "97")
    assert "does not honour 59" in out.loc[out["cpt"] == "97124", "edit_reason"].item()
    res, _ = outcome(claim("ppo", ("97140", ""), ("97124", "XS")))
    assert res["97124"][0] == "payable"


def test_payer_that_ignores_ncci():
    res, _ = outcome(claim("nonncci", ("97140", ""), ("97124", "")))
    assert res["97124"][0] == "payable"


def test_pair_only_within_the_same_visit():
    a = claim("mc", ("97140", "GP"), date="2026-03-02")
    b = claim("mc", ("97124", "GP"), date="2026-03-03")
    out = evaluate(pd.concat([a, b], ignore_index=True), POLICIES)
    assert (out["disposition"] != "denied").all()


def test_deleted_pair_is_not_applied():
    # 97530/97161 was added and reversed (indicator 9, FACTS 4.2): both paid
    res, _ = outcome(claim("mc", ("97161", "GP"), ("97530", "GP")))
    assert res["97161"][0] in ("payable", "reduced") and res["97530"][0] in ("payable", "reduced")


def test_pair_not_in_force_before_its_effective_date():
    # 97140/97530 is shipped effective 2020-01-01: denied in 2020, paid together in 2019
    pol = load_payers({"payers": {"x": {"kind": "commercial",
                                        "fee": {"basis": "flat", "rates": {"97140": 40, "97530": 40}}}}})
    for date, expect in (("2019-06-03", ["payable", "payable"]), ("2020-06-03", ["payable", "denied"])):
        df = claim("x", ("97140", ""), ("97530", ""), date=date)
        assert evaluate(df, pol)["disposition"].astype(str).tolist() == expect


def test_status_b_under_medicare_and_not_covered_elsewhere():
    res, _ = outcome(claim("mc", ("97140", "GP"), ("97010", "GP")))
    assert res["97010"] == ("denied", "97")
    res, out = outcome(claim("ppo", ("97140", ""), ("97010", "")))
    assert res["97010"] == ("denied", "96")
    assert "does not cover 97010" in out.loc[out["cpt"] == "97010", "edit_reason"].item()


EXCLUDING = {  # one plan excluding 97124, with each liability and CARC
    f"{who}_{carc}": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40}},
                      "ncci": {"follow": False}, "not_covered": ["97124"],
                      "noncovered_liability": who, "noncovered_carc": carc}
    for who in ("provider", "patient") for carc in ("96", "204")
}


@pytest.mark.parametrize("payer, carc, group", [
    ("provider_96", "96", "CO"), ("provider_204", "204", "CO"),
    ("patient_96", "96", "PR"), ("patient_204", "204", "PR"),
])
def test_plan_exclusion_group_code_follows_liability(payer, carc, group):
    pol = load_payers({"payers": EXCLUDING})
    out = evaluate(claim(payer, ("97140", ""), ("97124", ""), charge=[60.0, 45.0]), pol)
    row = out[out["cpt"] == "97124"].iloc[0]
    assert (row["disposition"], row["carc"], row["group_code"], row["rarc"]) == ("denied", carc, group, "N130")
    assert row["allowed"] == 0 and row["payer_paid"] == 0
    # the patient owes the charge only when the plan says so
    assert row["patient_part"] == (45.0 if group == "PR" else 0.0)
    assert ("the patient owes it" in row["edit_reason"]) == (group == "PR")
    # the covered line is untouched
    other = out[out["cpt"] == "97140"].iloc[0]
    assert (other["disposition"], other["carc"], other["group_code"], other["allowed"]) == ("payable", "", "", 40.0)


def test_plan_exclusion_default_is_provider_liability():
    # no noncovered_liability key: CO-96, the practice writes the line off, the patient owes nothing
    res, out = outcome(claim("ppo", ("97140", ""), ("97010", ""), charge=[60.0, 25.0]))
    row = out[out["cpt"] == "97010"].iloc[0]
    assert (row["carc"], row["group_code"], row["patient_part"], row["noncovered_applied"]) == ("96", "CO", 0, 0)
    assert row["edit_reason"] == "ppo does not cover 97010 under this plan"


def test_medicare_therapy_line_without_gp():
    res, out = outcome(claim("mc", ("97140", "")))
    assert res["97140"] == ("denied", "4")
    assert "GP" in out["edit_reason"].item()


def test_mue_per_day():
    # 97124 MUE 4 (unconfirmed, MAI 3: date-of-service edit) -> 5 units on one day denied
    df = claim("mc", ("97124", "GP")).assign(units=5)
    res, out = outcome(df)
    assert res["97124"] == ("denied", "151")
    assert "medically unlikely" in out["edit_reason"].item()
    res, _ = outcome(claim("mc", ("97124", "GP")).assign(units=4))
    assert res["97124"][0] in ("payable", "reduced")


def test_prescription_required():
    res, out = outcome(claim("pip", ("97124", "")))
    assert res["97124"] == ("denied", "174")
    res, _ = outcome(claim("pip", ("97124", ""), prescription_on_file=True))
    assert res["97124"][0] == "payable"


def test_provider_type_not_allowed():
    res, out = outcome(claim("hmo", ("97112", ""), ("97124", "")).assign(provider_type="lmt"))
    assert res["97112"] == ("denied", "170") and res["97124"][0] == "payable"
    assert "lmt" in out.loc[out["cpt"] == "97112", "edit_reason"].item()


def test_visit_limit_counts_visits_in_the_year():
    visits = [claim("hmo", ("97124", ""), date=d) for d in ("2026-01-05", "2026-02-05", "2026-03-05")]
    visits.append(claim("hmo", ("97124", ""), date="2027-01-05"))
    out = evaluate(pd.concat(visits, ignore_index=True), POLICIES)
    assert out["carc"].tolist() == ["", "", "119", ""]
    assert out.loc[2, "group_code"] == "PR"
    # visits already used this year count too
    out = evaluate(claim("hmo", ("97124", ""), visits_before=2), POLICIES)
    assert out["carc"].item() == "119"


def test_prior_authorisation_after_n_visits():
    visits = [claim("wc", ("97140", ""), date=d) for d in ("2026-01-05", "2026-01-12")]
    out = evaluate(pd.concat(visits, ignore_index=True), POLICIES)
    assert out["carc"].tolist() == ["", "197"]
    out = evaluate(pd.concat(visits, ignore_index=True).assign(prior_auth=True), POLICIES)
    assert out["carc"].tolist() == ["", ""]


def test_timely_filing():
    df = claim("late", ("97140", ""), submission_date=pd.Timestamp("2026-07-01"))
    res, out = outcome(df)
    assert res["97140"] == ("denied", "29")
    assert "121 days" in out["edit_reason"].item()


VISIT_CAPPED = load_payers({"payers": {  # 2 visits a year; who owes the visits past them
    f"cap_{who}": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40}}, "ncci": {"follow": False},
                   "visit_limit": 2, "visit_limit_liability": who}
    for who in ("patient", "provider")
}})


def capped_visits(payer):
    # three visits of 97140 x1 (charge $60); the third is past the 2-visit limit
    visits = [claim(payer, ("97140", ""), date=d, charge=60.0) for d in ("2026-01-05", "2026-02-05", "2026-03-05")]
    return evaluate(pd.concat(visits, ignore_index=True), VISIT_CAPPED)


@pytest.mark.parametrize("who, group, owed", [("patient", "PR", 40.0), ("provider", "CO", 0.0)])
def test_visit_limit_liability_decides_group_code_and_what_the_patient_owes(who, group, owed):
    out = capped_visits(f"cap_{who}")
    assert out["carc"].tolist() == ["", "", "119"]
    third = out.iloc[2]
    assert (third["disposition"], third["group_code"], third["allowed"], third["payer_paid"]) == (
        "denied", group, 0.0, 0.0)
    # patient: the $40 contract rate x 1 unit (not the $60 charge); provider: written off
    assert (third["noncovered_applied"], third["patient_part"]) == (owed, owed)
    assert third["edit_reason"].startswith("benefit maximum: visit 3 of the year with")
    assert ("the patient owes it (PR-119)" in third["edit_reason"]) == (who == "patient")
    assert ("CO-119: the practice writes it off" in third["edit_reason"]) == (who == "provider")


def test_visit_limit_liability_defaults_to_the_patient():
    # "hmo" sets no visit_limit_liability: PR-119 and the patient owes the line at the $40 rate
    visits = [claim("hmo", ("97124", ""), date=d, charge=55.0) for d in ("2026-01-05", "2026-02-05", "2026-03-05")]
    out = evaluate(pd.concat(visits, ignore_index=True), POLICIES)
    assert (out.loc[2, "carc"], out.loc[2, "group_code"], out.loc[2, "patient_part"]) == ("119", "PR", 40.0)


def test_the_first_denial_decides_who_owes_the_line():
    # 97124 is excluded and written off (CO-96); past the visit limit (patient owes PR-119) the
    # exclusion, checked first, still decides: the patient owes the 97140 line ($40) only
    pol = load_payers({"payers": {"x": {
        "kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40}}, "ncci": {"follow": False},
        "not_covered": ["97124"], "visit_limit": 0}}})
    out = evaluate(claim("x", ("97140", ""), ("97124", ""), charge=[60.0, 45.0]), pol).set_index("cpt")
    assert (out.loc["97140", "carc"], out.loc["97140", "group_code"], out.loc["97140", "patient_part"]) == (
        "119", "PR", 40.0)
    assert (out.loc["97124", "carc"], out.loc["97124", "group_code"], out.loc["97124", "patient_part"]) == (
        "96", "CO", 0.0)


# A plan that puts every denial it may on the patient; the others stay the practice's.
PATIENT_LIABLE = {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40}}, "ncci": {"follow": False},
                  "not_covered": ["97010"], "noncovered_liability": "patient", "visit_limit": 10,
                  "visit_limit_liability": "patient", "denial_prior": 0.1}


@pytest.mark.parametrize("case, carc", [("prior_auth", "197"), ("timely_filing", "29"), ("kx", "119")])
def test_authorisation_timely_filing_and_kx_denials_are_the_practices_write_off(case, carc):
    if case == "prior_auth":
        pol = load_payers({"payers": {"x": {**PATIENT_LIABLE, "prior_auth_after_visits": 1}}})
        df = pd.concat([claim("x", ("97140", ""), date=d, charge=60.0) for d in ("2026-01-05", "2026-01-12")],
                       ignore_index=True)
    elif case == "timely_filing":
        pol = load_payers({"payers": {"x": {**PATIENT_LIABLE, "timely_filing_days": 90}}})
        df = claim("x", ("97140", ""), charge=60.0, submission_date=pd.Timestamp("2026-07-01"))
    else:  # the KX CO-119 shares its CARC with the visit limit, not its liability
        pol = load_payers({"payers": {"x": {**PATIENT_LIABLE, "kind": "medicare", "require_gp": False,
                                            "kx_threshold": True, "mue": False}}})
        df = claim("x", ("97140", "GP"), charge=60.0, therapy_allowed_before=2470.0)
    row = evaluate(df, pol).iloc[-1]
    assert (row["disposition"], row["carc"], row["group_code"]) == ("denied", carc, "CO")
    assert (row["allowed"], row["noncovered_applied"], row["patient_part"], row["payer_paid"]) == (0.0, 0.0, 0.0, 0.0)
    assert (row["expected"], row["expected_patient"]) == (0.0, 0.0)


def test_kx_threshold():
    # 2026 threshold $2,480: a patient with $2,470 of therapy already allowed this year
    df = claim("mc", ("97140", "GP")).assign(therapy_allowed_before=2470.0, deductible_remaining=0.0)
    res, out = outcome(df)
    assert res["97140"] == ("denied", "119")
    assert "KX" in out["edit_reason"].item() and out["allowed"].item() == 0
    res, _ = outcome(df.assign(modifiers="GP,KX"))
    assert res["97140"][0] == "payable"
    res, _ = outcome(df.assign(therapy_allowed_before=100.0))
    assert res["97140"][0] == "payable"


# KX threshold per discipline. A flat $100 per unit keeps the figures round: 4 units = $400 a
# visit; six visits = $2,400, under the 2026 threshold of $2,480; a seventh makes $2,800.
KX_POLICIES = load_payers({"payers": {
    "kx": {"kind": "medicare", "fee": {"basis": "flat", "rates": {"97140": 100.0}}, "require_gp": False},
}})


def therapy_visits(n, first, modifiers, provider_type="pt", patient="p1"):
    dates = pd.date_range(first, periods=n, freq="7D")
    return pd.DataFrame({
        "patient_id": patient, "service_date": dates, "provider_id": "r1", "payer_id": "kx",
        "provider_type": provider_type, "cpt": "97140", "units": 4, "modifiers": modifiers,
    })


def test_kx_threshold_counts_pt_slp_and_ot_apart():
    # PT $2,400 (6 x $400) and OT $2,400: $4,800 together, but neither discipline reaches $2,480
    pt = therapy_visits(6, "2026-01-05", "GP")
    ot = therapy_visits(6, "2026-01-06", "GO")
    out = evaluate(pd.concat([pt, ot], ignore_index=True), KX_POLICIES)
    assert out["allowed"].sum() == 4800.0
    assert (out["disposition"] == "payable").all() and (out["carc"] == "").all()


def test_kx_threshold_per_discipline_still_applies():
    # a seventh PT visit takes PT to $2,800: that line needs KX; the OT lines ($2,400) do not
    pt = therapy_visits(7, "2026-01-05", "GP")
    ot = therapy_visits(6, "2026-01-06", "GO")
    out = evaluate(pd.concat([pt, ot], ignore_index=True), KX_POLICIES)
    denied = out[out["disposition"] == "denied"]
    assert len(denied) == 1 and denied["service_date"].item() == pd.Timestamp("2026-02-16")
    assert (denied["carc"].item(), denied["group_code"].item(), denied["allowed"].item()) == ("119", "CO", 0.0)
    assert "allowed PT/SLP dollars" in denied["edit_reason"].item()
    # the same seventh visit in OT names OT
    out = evaluate(pd.concat([therapy_visits(6, "2026-01-05", "GP"), therapy_visits(7, "2026-01-06", "GO")],
                             ignore_index=True), KX_POLICIES)
    denied = out[out["disposition"] == "denied"]
    assert len(denied) == 1 and denied["modifiers"].item() == "GO"
    assert "allowed OT dollars" in denied["edit_reason"].item()
    # with KX the seventh visit is paid
    out = evaluate(therapy_visits(7, "2026-01-05", "GP,KX"), KX_POLICIES)
    assert (out["disposition"] == "payable").all()


@pytest.mark.parametrize("modifiers, provider_type, ot", [
    ("GO", "pt", True),     # the modifier names the discipline
    ("GP", "ot", False),
    ("GN", "ota", False),   # speech-language pathology counts with PT
    ("", "ota", True),      # no therapy modifier: the provider type decides
    ("", "OT", True),
    ("", "pt", False),
    ("", "lmt", False),
])
def test_kx_discipline_of_a_line(modifiers, provider_type, ot):
    # PT/SLP lines on Mondays ($2,400); the line under test six times on Tuesdays ($2,400)
    pt = therapy_visits(6, "2026-01-05", "GP")
    other = therapy_visits(6, "2026-01-06", modifiers, provider_type)
    out = evaluate(pd.concat([pt, other], ignore_index=True), KX_POLICIES)
    assert (out["disposition"] == "denied").any() != ot


def test_kx_dollars_before_are_the_lines_own_discipline():
    # one $100 line each; $2,300 already used in each discipline: PT $2,400 and OT $2,400, both
    # under $2,480 (pooled, the OT line would stand at $100 + $100 + $2,300 = $2,500)
    df = pd.concat([therapy_visits(1, "2026-03-02", "GP"), therapy_visits(1, "2026-03-03", "GO")],
                   ignore_index=True).assign(therapy_allowed_before=2300.0, units=1)
    out = evaluate(df, KX_POLICIES)
    assert out["disposition"].astype(str).tolist() == ["payable", "payable"]
    # $2,470 of PT used: the PT line passes $2,480 ($2,570), the OT line ($100) does not
    out = evaluate(df.assign(therapy_allowed_before=[2470.0, 0.0]), KX_POLICIES)
    assert out["disposition"].astype(str).tolist() == ["denied", "payable"]


def test_every_line_has_disposition_reason_and_carc_columns():
    _, out = outcome(claim("mc", ("97140", "GP"), ("97124", "GP"), ("97010", "GP")))
    assert out["edit_reason"].str.len().gt(0).all()
    assert set(out["disposition"].astype(str)) <= {"payable", "reduced", "denied", "not_billed", "unpriced"}
    assert (out.loc[out["disposition"] == "denied", "carc"] != "").all()


def test_status_b_under_a_percent_of_medicare_contract():
    pol = load_payers({"payers": {
        "wc": {"kind": "workers_comp", "fee": {"basis": "percent_of_medicare", "percent": 120}},
        "wc_rate": {"kind": "workers_comp", "fee": {"basis": "percent_of_medicare", "percent": 120,
                                                    "rates": {"97010": 12.0}}},
    }})
    out = evaluate(claim("wc", ("97140", ""), ("97010", "")), pol)
    row = out[out["cpt"] == "97010"].iloc[0]
    assert (row["disposition"], row["carc"], row["allowed"]) == ("denied", "97", 0.0)
    assert "status B" in row["edit_reason"]
    out = evaluate(claim("wc_rate", ("97140", ""), ("97010", "")), pol)
    assert out.loc[out["cpt"] == "97010", "allowed"].item() == 12.0
