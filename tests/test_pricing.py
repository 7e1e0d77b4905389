"""Pricing: Medicare fee schedule figures (FACTS 1.2, 1.4, 2), contracts and cost share."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.exceptions import ReferenceDataError, UnpricedCodeWarning
from analytics.payers import load_payers
from analytics.pipeline import evaluate
from analytics.pricing import split_cost_share

POLICIES = load_payers({"payers": {
    "mc": {"kind": "medicare"},
    "mc_qp": {"kind": "medicare", "fee": {"basis": "medicare", "apm_status": "qp"}},
    "mc_nonpar": {"kind": "medicare", "fee": {"basis": "medicare", "participating": False}},
    "manhattan": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "13202-01"}},
    "alabama": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "10112-00"}},
    "mc_cost": {"kind": "medicare", "cost_share": {"deductible": "part_b", "coinsurance": 0.2},
                "sequestration": 0.02},
    "ppo": {"kind": "commercial", "fee": {"basis": "percent_of_medicare", "percent": 110}},
    "flat": {"kind": "auto", "fee": {"basis": "flat", "rates": {"97124": 48.0, "97140": 52.0}},
             "ncci": {"follow": False}},
    "capped": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97124": 50.0, "97140": 50.0},
               "per_visit_cap": 120.0}, "ncci": {"follow": False}},
    "copay": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40.0, "97110": 40.0}},
              "cost_share": {"deductible": 50, "copay": 20, "coinsurance": 0.1}},
    "cash": {"kind": "cash", "fee": {"basis": "charges"}},
}})


def claim(payer, date, *lines, patient="p1"):
    """Lines as billed: (code, units, modifiers)."""
    return pd.DataFrame({
        "patient_id": patient, "service_date": pd.Timestamp(date), "provider_id": "pt1", "payer_id": payer,
        "cpt": [c for c, _, _ in lines], "units": [u for _, u, _ in lines], "modifiers": [m for _, _, m in lines],
        "provider_type": "pt",
    })


def total(df):
    return round(float(evaluate(df, POLICIES)["allowed"].sum()), 2)


# FACTS 1.2: national, participating, one unit
@pytest.mark.parametrize("code, year, amount", [
    ("97140", "2025", 27.17), ("97124", "2025", 29.76), ("97110", "2025", 28.79), ("97112", "2025", 32.02),
    ("97530", "2025", 34.61), ("97161", "2025", 98.01), ("97164", "2025", 67.60),
    ("97140", "2026", 27.72), ("97124", "2026", 29.73), ("97110", "2026", 29.06), ("97112", "2026", 32.73),
])
def test_national_unit_amounts(code, year, amount):
    assert total(claim("mc", f"{year}-05-01", (code, 1, "GP"))) == amount


def test_2026_qp_conversion_factor():
    # 97140: 0.83 x 33.5675 = 27.86 (FACTS 1.2)
    assert total(claim("mc_qp", "2026-05-01", ("97140", 1, "GP"))) == 27.86


def test_non_par_and_limiting_charge():
    out = evaluate(claim("mc_nonpar", "2025-05-01", ("97140", 1, "GP")), POLICIES)
    assert out["allowed"].item() == 25.81  # 95% of $27.17
    assert out["limiting_charge"].item() == 29.68  # 109.25% of $27.17


def test_mppr_2025_two_codes():
    # FACTS 2: 97110 x2 + 97140 = 28.79 + 21.83 + 20.70
    assert total(claim("mc", "2025-05-01", ("97110", 2, "GP"), ("97140", 1, "GP"))) == 71.32


def test_mppr_2026_non_qp():
    assert total(claim("mc", "2026-05-01", ("97110", 2, "GP"), ("97140", 1, "GP"))) == 72.48


def test_mppr_highest_pe_first():
    # 97530 (PE 0.62) paid in full; 97112 and both 97140 units at 50% PE. The 97140/97530 NCCI
    # pair is bypassed with 59 (separate time blocks) so the MPPR figure stands alone.
    df = claim("mc", "2025-05-01", ("97530", 1, "GP,59"), ("97112", 1, "GP"), ("97140", 2, "GP"))
    out = evaluate(df, POLICIES)
    assert out["allowed"].tolist() == [34.61, 24.26, 41.40]
    assert round(out["allowed"].sum(), 2) == 100.27
    assert out["disposition"].astype(str).tolist() == ["payable", "reduced", "reduced"]


def test_mppr_is_per_visit():
    a = claim("mc", "2025-05-01", ("97140", 1, "GP"))
    b = claim("mc", "2025-05-02", ("97140", 1, "GP"))
    assert total(pd.concat([a, b], ignore_index=True)) == 2 * 27.17


@pytest.mark.parametrize("payer, year, code, amount", [
    ("manhattan", "2025", "97140", 30.44), ("alabama", "2025", "97140", 25.34),
    ("manhattan", "2025", "97124", 33.71), ("alabama", "2025", "97124", 27.25),
    ("manhattan", "2026", "97140", 30.95), ("alabama", "2026", "97140", 25.95),
])
def test_locality_amounts(payer, year, code, amount):
    assert total(claim(payer, f"{year}-05-01", (code, 1, "GP"))) == amount


def test_assistant_modifier_85_percent():
    """CQ/CO: 85% of the unit's fee schedule amount, which CMS gives in cents (FACTS 1.2: 97140
    2025 national $27.17 = 0.84 x 32.3465 rounded): 0.85 x 27.17 = 23.0945 -> $23.09."""
    assert total(claim("mc", "2025-05-01", ("97140", 1, "GP,CQ"))) == 23.09


def test_percent_of_medicare_contract():
    """110% of the Medicare amount of the line: 2 units of 97140 2026 at the CMS unit amount
    $27.72 (FACTS 1.2: 0.83 x 33.4009 = 27.7227 -> $27.72) = $55.44; x 1.1 = 60.984 -> $60.98."""
    assert total(claim("ppo", "2026-05-01", ("97140", 2, ""))) == 60.98


def test_flat_fee_and_cash():
    assert total(claim("flat", "2026-05-01", ("97124", 2, ""), ("97140", 1, ""))) == 148.0
    df = claim("cash", "2026-05-01", ("97124", 4, "")).assign(charge=120.0)
    assert total(df) == 120.0


def test_per_visit_cap_reduces_the_visit():
    out = evaluate(claim("capped", "2026-05-01", ("97124", 2, ""), ("97140", 2, "")), POLICIES)
    assert out["allowed"].sum() == pytest.approx(120.0)
    assert (out["disposition"] == "reduced").all()
    assert out["price_basis"].str.contains("per-visit cap").all()


def test_97010_unpaid_by_medicare_with_bundled_reason():
    out = evaluate(claim("mc", "2026-05-01", ("97140", 1, "GP"), ("97010", 1, "GP")), POLICIES)
    row = out[out["cpt"] == "97010"].iloc[0]
    assert row["allowed"] == 0 and row["disposition"] == "denied"
    assert row["carc"] == "97" and row["rarc"] == "M15" and "bundled" in row["edit_reason"]


def test_97139_without_rate_is_flagged_not_zero():
    with pytest.warns(UnpricedCodeWarning, match="97139"):
        out = evaluate(claim("mc", "2026-05-01", ("97139", 1, "GP")), POLICIES)
    assert out["disposition"].item() == "unpriced"
    assert np.isnan(out["allowed"].item())
    assert "fee.rates" in out["price_basis"].item()


def test_97139_with_payer_rate_is_priced():
    pol = load_payers({"payers": {"wc": {"kind": "workers_comp", "fee": {"basis": "percent_of_medicare",
                                                                       "percent": 120, "rates": {"97139": 30}}}}})
    df = claim("wc", "2026-05-01", ("97139", 1, ""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = evaluate(df, pol)
    assert out["allowed"].item() == 30.0


def test_year_without_rates_is_an_error():
    with pytest.raises(ReferenceDataError, match="no Medicare rates"):
        evaluate(claim("mc", "2019-05-01", ("97140", 1, "GP")), POLICIES)


def test_unknown_locality_is_an_error():
    pol = load_payers({"payers": {"x": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "99999-99"}}}})
    with pytest.raises(ReferenceDataError, match="99999-99"):
        evaluate(claim("x", "2025-05-01", ("97140", 1, "GP")), pol)


def test_cost_share_medicare_deductible_coinsurance_sequestration():
    # 2025 Part B deductible $257: visits of $271.70 (10 x 97140 at $27.17 is one line here)
    df = claim("mc_cost", "2025-05-01", ("97140", 1, "GP"))
    one = evaluate(df, POLICIES)
    assert one["deductible_applied"].item() == 27.17 and one["payer_part"].item() == 0
    df = df.assign(deductible_remaining=0.0)
    out = evaluate(df, POLICIES)
    assert out["coinsurance_applied"].item() == 5.43  # 20% of 27.17
    assert out["payer_part"].item() == 21.74
    assert out["sequestration"].item() == 0.43  # 2% of the payer part
    assert out["payer_paid"].item() == 21.31


def test_cost_share_runs_over_the_year_in_date_order():
    # deductible $50 then copay $20 per visit then 10% coinsurance; two visits of $80
    a = claim("copay", "2026-02-01", ("97140", 1, ""), ("97110", 1, ""))
    b = claim("copay", "2026-01-01", ("97140", 1, ""), ("97110", 1, ""))
    out = evaluate(pd.concat([a, b], ignore_index=True), POLICIES)
    jan = out[out["service_date"] == "2026-01-01"]
    feb = out[out["service_date"] == "2026-02-01"]
    assert jan["deductible_applied"].sum() == 50 and feb["deductible_applied"].sum() == 0
    assert jan["copay_applied"].sum() == 20 and feb["copay_applied"].sum() == 20
    assert jan["coinsurance_applied"].sum() == pytest.approx(1.0)  # 10% of (80 - 50 - 20)
    assert feb["coinsurance_applied"].sum() == pytest.approx(6.0)  # 10% of (80 - 20)
    assert (out["patient_part"] + out["payer_part"]).sum() == pytest.approx(out["allowed"].sum())


COST_SHARE = load_payers({"payers": {
    # the "copay" plan above with the deductible waived on copay visits
    "waived": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40.0, "97110": 40.0}},
               "cost_share": {"deductible": 50, "copay": 20, "coinsurance": 0.1, "copay_waives_deductible": True}},
    # no copay: the waiver has nothing to act on, the deductible applies
    "waived_no_copay": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40.0, "97110": 40.0}},
                        "cost_share": {"deductible": 50, "coinsurance": 0.1, "copay_waives_deductible": True}},
    # 97124 excluded; the patient owes it
    "excl_patient": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40.0}},
                     "ncci": {"follow": False}, "not_covered": ["97124"], "noncovered_liability": "patient",
                     "cost_share": {"deductible": 50, "copay": 20, "coinsurance": 0.1}},
    # the same, with a contract rate for the excluded code
    "excl_rate": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40.0, "97124": 35.0}},
                  "ncci": {"follow": False}, "not_covered": ["97124"], "noncovered_liability": "patient",
                  "noncovered_carc": "204", "cost_share": {"deductible": 50, "copay": 20, "coinsurance": 0.1}},
    # the same plan, provider liable (the default)
    "excl_provider": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40.0}},
                      "ncci": {"follow": False}, "not_covered": ["97124"],
                      "cost_share": {"deductible": 50, "copay": 20, "coinsurance": 0.1}},
}})


def visit_sums(out, date):
    day = out[out["service_date"] == date]
    return {c: round(float(day[c].sum()), 2) for c in (
        "allowed", "deductible_applied", "copay_applied", "coinsurance_applied", "noncovered_applied",
        "patient_part", "payer_part")}


def test_copay_waives_deductible():
    # Two $80 visits (97140 $40 + 97110 $40). Waived: each visit owes the $20 copay and 10% of
    # the other $60 ($6.00): patient $26.00, payer $54.00; the $50 deductible is never touched.
    # Not waived (test above): January $50 + $20 + $1.00 = $71.00, February $20 + $6.00 = $26.00.
    a = claim("waived", "2026-02-01", ("97140", 1, ""), ("97110", 1, ""))
    b = claim("waived", "2026-01-01", ("97140", 1, ""), ("97110", 1, ""))
    out = evaluate(pd.concat([a, b], ignore_index=True), COST_SHARE)
    for date in ("2026-01-01", "2026-02-01"):
        assert visit_sums(out, date) == {
            "allowed": 80.0, "deductible_applied": 0.0, "copay_applied": 20.0, "coinsurance_applied": 6.0,
            "noncovered_applied": 0.0, "patient_part": 26.0, "payer_part": 54.0}
    # the same visits without the waiver: the deductible comes first
    base = evaluate(pd.concat([a, b], ignore_index=True).assign(payer_id="copay"), POLICIES)
    assert visit_sums(base, "2026-01-01")["patient_part"] == 71.0
    assert visit_sums(base, "2026-02-01")["patient_part"] == 26.0


def test_copay_waiver_without_a_copay_keeps_the_deductible():
    # $80 visit: deductible $50, no copay, 10% of $30 = $3.00: patient $53.00, payer $27.00
    out = evaluate(claim("waived_no_copay", "2026-01-01", ("97140", 1, ""), ("97110", 1, "")), COST_SHARE)
    assert visit_sums(out, "2026-01-01") == {
        "allowed": 80.0, "deductible_applied": 50.0, "copay_applied": 0.0, "coinsurance_applied": 3.0,
        "noncovered_applied": 0.0, "patient_part": 53.0, "payer_part": 27.0}


def excluded_visits(payer):
    # Jan 5: 97140 x1 (charge $60, allowed $40) and 97124 x2 (excluded, charge $90);
    # Jan 12: 97140 x2 (charge $120, allowed $80)
    a = claim(payer, "2026-01-05", ("97140", 1, ""), ("97124", 2, "")).assign(charge=[60.0, 90.0])
    b = claim(payer, "2026-01-12", ("97140", 2, "")).assign(charge=120.0)
    return evaluate(pd.concat([a, b], ignore_index=True), COST_SHARE)


def test_excluded_service_owed_by_the_patient_at_the_charge():
    out = excluded_visits("excl_patient")
    ex = out[out["cpt"] == "97124"].iloc[0]
    assert (ex["disposition"], ex["carc"], ex["group_code"]) == ("denied", "96", "PR")
    # the patient owes the $90 charge; the payer allows and pays nothing
    assert (ex["allowed"], ex["noncovered_applied"], ex["patient_part"], ex["payer_part"], ex["payer_paid"]) == (
        0.0, 90.0, 90.0, 0.0, 0.0)
    assert (ex["deductible_applied"], ex["copay_applied"], ex["coinsurance_applied"]) == (0.0, 0.0, 0.0)
    # Jan 5 covered line: $40 all to the deductible ($10 of it left), no copay left to take
    assert visit_sums(out, "2026-01-05") == {
        "allowed": 40.0, "deductible_applied": 40.0, "copay_applied": 0.0, "coinsurance_applied": 0.0,
        "noncovered_applied": 90.0, "patient_part": 130.0, "payer_part": 0.0}
    # Jan 12: the $90 did not count toward the deductible: $10 deductible, $20 copay,
    # 10% of $50 = $5.00 -> patient $35.00, payer $45.00
    assert visit_sums(out, "2026-01-12") == {
        "allowed": 80.0, "deductible_applied": 10.0, "copay_applied": 20.0, "coinsurance_applied": 5.0,
        "noncovered_applied": 0.0, "patient_part": 35.0, "payer_part": 45.0}


def test_excluded_service_owed_by_the_patient_at_the_contract_rate():
    # fee.rates names $35 for 97124: the patient owes 2 x $35 = $70, not the $90 charge (PR-204)
    out = excluded_visits("excl_rate")
    ex = out[out["cpt"] == "97124"].iloc[0]
    assert (ex["carc"], ex["group_code"], ex["allowed"], ex["patient_part"]) == ("204", "PR", 0.0, 70.0)
    assert visit_sums(out, "2026-01-12")["patient_part"] == 35.0


def test_excluded_service_without_a_charge_owes_nothing_known():
    df = claim("excl_patient", "2026-01-05", ("97124", 1, ""))
    out = evaluate(df, COST_SHARE)
    assert (out["group_code"].item(), out["patient_part"].item(), out["noncovered_applied"].item()) == ("PR", 0, 0)


def test_excluded_service_written_off_by_default():
    out = excluded_visits("excl_provider")
    ex = out[out["cpt"] == "97124"].iloc[0]
    assert (ex["carc"], ex["group_code"], ex["noncovered_applied"], ex["patient_part"]) == ("96", "CO", 0.0, 0.0)
    assert visit_sums(out, "2026-01-05")["patient_part"] == 40.0
    assert visit_sums(out, "2026-01-12")["patient_part"] == 35.0


VISIT_LIMIT = load_payers({"payers": {
    # 2 visits a year, then CARC 119; 97124 has no rate, so a patient-owed 97124 is owed at its charge
    f"limit_{who}": {"kind": "commercial", "fee": {"basis": "flat", "rates": {"97140": 40.0}},
                     "ncci": {"follow": False}, "visit_limit": 2, "visit_limit_liability": who,
                     "cost_share": {"deductible": 50, "copay": 20, "coinsurance": 0.1}}
    for who in ("patient", "provider")
}})


def limited_visits(payer):
    # Jan 5 and Feb 2: 97140 x1 (charge $60, allowed $40); Mar 2, the third visit, past the
    # 2-visit limit: 97140 x2 (charge $120) and 97124 x1 (charge $45)
    a = claim(payer, "2026-01-05", ("97140", 1, "")).assign(charge=60.0)
    b = claim(payer, "2026-02-02", ("97140", 1, "")).assign(charge=60.0)
    c = claim(payer, "2026-03-02", ("97140", 2, ""), ("97124", 1, "")).assign(charge=[120.0, 45.0])
    return evaluate(pd.concat([a, b, c], ignore_index=True), VISIT_LIMIT)


def test_visit_past_the_limit_owed_by_the_patient_at_rate_else_charge():
    out = limited_visits("limit_patient")
    # Jan 5: $40 all to the deductible ($10 left); Feb 2: $10 deductible, $20 copay, 10% of $10
    assert visit_sums(out, "2026-01-05") == {
        "allowed": 40.0, "deductible_applied": 40.0, "copay_applied": 0.0, "coinsurance_applied": 0.0,
        "noncovered_applied": 0.0, "patient_part": 40.0, "payer_part": 0.0}
    assert visit_sums(out, "2026-02-02") == {
        "allowed": 40.0, "deductible_applied": 10.0, "copay_applied": 20.0, "coinsurance_applied": 1.0,
        "noncovered_applied": 0.0, "patient_part": 31.0, "payer_part": 9.0}
    # Mar 2, PR-119: 97140 at the contract rate 2 x $40 = $80 (not its $120 charge), 97124 at its
    # $45 charge: the patient owes $125; no deductible, copay or coinsurance; the payer nothing
    third = out[out["service_date"] == "2026-03-02"].set_index("cpt")
    assert third["carc"].tolist() == ["119", "119"] and third["group_code"].tolist() == ["PR", "PR"]
    assert third["noncovered_applied"].to_dict() == {"97140": 80.0, "97124": 45.0}
    assert visit_sums(out, "2026-03-02") == {
        "allowed": 0.0, "deductible_applied": 0.0, "copay_applied": 0.0, "coinsurance_applied": 0.0,
        "noncovered_applied": 125.0, "patient_part": 125.0, "payer_part": 0.0}
    assert out["payer_paid"].sum() == 9.0


def test_visit_past_the_limit_written_off_when_the_contract_says_so():
    out = limited_visits("limit_provider")
    third = out[out["service_date"] == "2026-03-02"]
    assert third["group_code"].tolist() == ["CO", "CO"]
    assert visit_sums(out, "2026-03-02") == {
        "allowed": 0.0, "deductible_applied": 0.0, "copay_applied": 0.0, "coinsurance_applied": 0.0,
        "noncovered_applied": 0.0, "patient_part": 0.0, "payer_part": 0.0}
    # the visits within the limit are the same either way
    assert visit_sums(out, "2026-02-02")["patient_part"] == 31.0


def test_split_cost_share_bills_the_patient_for_denials_with_group_pr():
    # denied lines as the edits leave them: PR-119 owed at the $40 rate x 2; the same line
    # with CO-119 (KX, or visit_limit_liability: provider) or CO-197 is written off
    df = pd.DataFrame({
        "patient_id": "p1", "service_date": pd.Timestamp("2026-03-02"), "provider_id": "a",
        "payer_id": "limit_patient", "cpt": "97140", "units": 2, "charge": 120.0, "disposition": "denied",
        "carc": ["119", "119", "197"], "group_code": ["PR", "CO", "CO"], "allowed": 0.0,
    })
    out = split_cost_share(df, VISIT_LIMIT)
    assert out["noncovered_applied"].tolist() == [80.0, 0.0, 0.0]
    assert out["patient_part"].tolist() == [80.0, 0.0, 0.0]


def test_split_cost_share_without_group_codes_reads_the_plan_exclusions():
    # lines not run through the edits: an excluded code of a patient-liable plan is the
    # patient's ($45 charge), a denial the plan does not name is not
    df = pd.DataFrame({
        "patient_id": "p1", "service_date": pd.Timestamp("2026-01-05"), "provider_id": "a",
        "payer_id": ["excl_patient", "excl_patient", "excl_provider"], "cpt": ["97124", "97140", "97124"],
        "units": 1, "charge": 45.0, "disposition": "denied", "allowed": 0.0,
    })
    assert split_cost_share(df, COST_SHARE)["patient_part"].tolist() == [45.0, 0.0, 0.0]


line = st.tuples(st.sampled_from(["97110", "97112", "97124", "97140", "97530", "97010"]),
                 st.integers(0, 60), st.sampled_from(["", "GP", "GP,59", "XS", "GP,CQ"]))


@settings(max_examples=40, deadline=None)
@given(st.lists(line, min_size=1, max_size=5), st.sampled_from(["mc", "ppo", "flat", "manhattan", "copay"]),
       st.randoms(use_true_random=False))
def test_pricing_properties(lines, payer, rnd):
    df = pd.DataFrame({
        "patient_id": "p", "service_date": pd.Timestamp("2026-04-01"), "provider_id": "a", "payer_id": payer,
        "provider_type": "pt", "cpt": [c for c, _, _ in lines],
        "minutes": [float(m) if c != "97010" else np.nan for c, m, _ in lines],
        "modifiers": [x for _, _, x in lines],
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnpricedCodeWarning)
        out = evaluate(df, POLICIES)
        order = list(range(len(df)))
        rnd.shuffle(order)
        shuffled = evaluate(df.iloc[order], POLICIES).sort_index()
    allowed = out["allowed"].fillna(0)
    assert (allowed >= 0).all()
    assert (out["patient_part"] >= 0).all() and (out["payer_part"] >= -0.005).all()
    assert out.loc[out["disposition"].isin(["denied", "not_billed"]), "allowed"].eq(0).all()
    # results do not depend on row order (per code: ties between equal lines may swap)
    assert round(allowed.sum(), 2) == round(shuffled["allowed"].fillna(0).sum(), 2)
    pd.testing.assert_series_equal(out.groupby("cpt")["units"].sum(), shuffled.groupby("cpt")["units"].sum())
