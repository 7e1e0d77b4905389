"""Medicare billing rules to the cent: MPPR across disciplines, per-unit cents, the limiting
charge after MPPR and CQ, 8-minute ties, assistants without CQ/CO, and the grouping of each rule.

Every figure is worked by hand from the CMS files (RVUs of PPRRVU2025_Oct, GPCIs of GPCI2025,
CF 32.3465; FACTS 1.1-1.4) and the rules quoted in each docstring.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.edits import apply_edits
from analytics.exceptions import PayerPolicyError
from analytics.grouping import group_ids
from analytics.payers import load_payers
from analytics.pipeline import evaluate
from analytics.pricing import price_lines
from analytics.units import LineKeys, compute_units

POLICIES = load_payers({"payers": {
    "mc": {"kind": "medicare"},
    "mc_visit": {"kind": "medicare", "grouping": {"mppr": "visit"}},
    "mc_nonpar": {"kind": "medicare", "fee": {"basis": "medicare", "participating": False}},
    "manhattan": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "13202-01"}},
    "manhattan_nonpar": {"kind": "medicare", "fee": {"basis": "medicare", "locality": "13202-01",
                                                     "participating": False}},
    "ppo": {"kind": "commercial", "fee": {"basis": "percent_of_medicare", "percent": 100}},
}})


def lines(payer, *rows, date="2025-05-01", patient="p1"):
    """Service lines: (provider_id, provider_type, code, minutes, modifiers)."""
    return pd.DataFrame({
        "patient_id": patient, "service_date": pd.Timestamp(date), "payer_id": payer,
        "provider_id": [r[0] for r in rows], "provider_type": [r[1] for r in rows], "cpt": [r[2] for r in rows],
        "minutes": [r[3] for r in rows], "modifiers": [r[4] for r in rows],
    })


# -- 1. MPPR across the patient's day, every discipline -----------------------------------------

def test_mppr_runs_across_disciplines_and_therapists():
    """One patient, one day: a PT bills 97110 (15 min, GP) and an OT bills 97530 (15 min, GO).

    CMS MPPR page and NGS (FACTS sec. 2): the reduction applies to the second and later units
    of the patient's therapy that day, across all disciplines in a group practice. 97530 has
    the highest PE (0.62) and is paid in full: 1.07 x 32.3465 = 34.6108 -> $34.61. 97110 gets
    50% PE: (0.45 + 0.215 + 0.01) x 32.3465 = 21.8339 -> $21.83. Total $56.44 (not $63.40).
    """
    out = evaluate(lines("mc", ("pt1", "pt", "97110", 15, "GP"), ("ot1", "ot", "97530", 15, "GO")), POLICIES)
    assert out["allowed"].tolist() == [21.83, 34.61]
    assert out["mppr_reduced_units"].tolist() == [1, 0]
    assert round(out["allowed"].sum(), 2) == 56.44


def test_mppr_grouping_is_a_policy_setting():
    """``grouping: {mppr: visit}`` counts each therapist's visit apart: 97110 $28.79
    (0.89 x 32.3465 = 28.7884) and 97530 $34.61, both in full: $63.40."""
    out = evaluate(lines("mc_visit", ("pt1", "pt", "97110", 15, "GP"), ("ot1", "ot", "97530", 15, "GO")), POLICIES)
    assert out["allowed"].tolist() == [28.79, 34.61]


def test_mppr_never_pools_payers_or_patients():
    """MPPR is one payer's rule for one patient: the same two lines for two patients, or
    for one patient under two payers, are each the first unit of their group ($28.79 and
    $34.61, FACTS 1.2)."""
    two = pd.concat([lines("mc", ("pt1", "pt", "97110", 15, "GP")),
                     lines("mc", ("ot1", "ot", "97530", 15, "GO"), patient="p2")], ignore_index=True)
    assert evaluate(two, POLICIES)["allowed"].tolist() == [28.79, 34.61]
    payers = pd.concat([lines("mc", ("pt1", "pt", "97110", 15, "GP")),
                        lines("mc_visit", ("ot1", "ot", "97530", 15, "GO"))], ignore_index=True)
    assert evaluate(payers, POLICIES)["allowed"].tolist() == [28.79, 34.61]


# -- 2 and 3. Per-unit cents; non-par and the limiting charge after MPPR and CQ ------------------

def test_units_are_priced_in_cents_then_added():
    """README example, Manhattan (13202-01) 2025, 97110 x2 + 97140 (GPCI 1.065 / 1.166 / 1.656).

    CMS prices units from per-unit amounts in cents. 97110 full: (0.45 x 1.065 + 0.43 x 1.166
    + 0.01 x 1.656) x 32.3465 = 0.99719 x 32.3465 = 32.2556 -> $32.26; reduced: (0.47925 +
    0.25069 + 0.01656) x 32.3465 = 24.1467 -> $24.15; 97140 reduced: (0.45795 + 0.2332 +
    0.01656) x 32.3465 = 22.8920 -> $22.89. Total $32.26 + $24.15 + $22.89 = $79.30.
    """
    out = evaluate(lines("manhattan", ("pt1", "pt", "97110", 30, "GP"), ("pt1", "pt", "97140", 15, "GP")),
                   POLICIES)
    assert out["allowed"].tolist() == [56.41, 22.89]
    assert round(out["allowed"].sum(), 2) == 79.30
    assert "$32.26 per unit" in out["price_basis"].iloc[0] and "$24.15" in out["price_basis"].iloc[0]


def test_non_par_and_limiting_charge_from_the_unit_amount_in_cents():
    """Manhattan 2025 97140, non-participating: the unit amount is $30.44 ((0.45795 + 0.4664
    + 0.01656) x 32.3465 = 30.4353); 95% = 28.918 -> $28.92; the limiting charge (109.25%,
    42 CFR 414.48) = 33.2557 -> $33.26 (CMS's own figures; not $28.91 / $33.25 from the
    unrounded amount)."""
    out = evaluate(lines("manhattan_nonpar", ("pt1", "pt", "97140", 15, "GP")), POLICIES)
    assert (out["allowed"].item(), out["limiting_charge"].item()) == (28.92, 33.26)


def test_limiting_charge_follows_mppr():
    """Non-par 97110 x2, national 2025: units $28.79 and $21.83 (MPPR). Allowed: 95% of each,
    27.3505 -> $27.35 and 20.7385 -> $20.74: $48.09. The limiting charge is 109.25% of the
    reduced participating amount: 31.4531 -> $31.45 and 23.8493 -> $23.85: $55.30, not 109.25%
    of two full units ($62.90)."""
    out = evaluate(lines("mc_nonpar", ("pt1", "pt", "97110", 30, "GP")), POLICIES)
    assert (out["allowed"].item(), out["limiting_charge"].item()) == (48.09, 55.30)


def test_limiting_charge_follows_cq():
    """Non-par 97110 with CQ, national 2025: the CQ unit is 85% of $28.79 = 24.4715 -> $24.47;
    the limiting charge 109.25% of it = 26.733 -> $26.73 (not $31.45); allowed 95% of it =
    23.2465 -> $23.25."""
    out = evaluate(lines("mc_nonpar", ("pta1", "pta", "97110", 15, "GP,CQ")), POLICIES)
    assert (out["allowed"].item(), out["limiting_charge"].item()) == (23.25, 26.73)


# -- 4. 8-minute ties go to the service the payer pays --------------------------------------------

def test_tied_leftover_unit_goes_to_the_paid_service():
    """97140 22 min + 97124 22 min = 44 min -> 3 units (Pub. 100-04 ch. 5 sec. 20.2: 38-52 min).
    Each has 1 whole unit and 7 leftover minutes: a tie, which the manual leaves to the
    provider. NCCI bundles 97124 into 97140 (column 2, no modifier), so the unit goes to 97140:
    97140 x2 = $27.17 + $20.70 ((0.43 + 0.20 + 0.01) x 32.3465 = 20.7018) = $47.87; the tie
    given to 97124 would leave $27.17."""
    df = lines("mc", ("pt1", "pt", "97140", 22, "GP"), ("pt1", "pt", "97124", 22, "GP"))
    out = price_lines(apply_edits(compute_units(df, "cms", payers=POLICIES), POLICIES), POLICIES)
    assert out["units"].tolist() == [2, 1]
    assert round(out["allowed"].sum(), 2) == 47.87
    assert out["units_reason"].str.contains("the service the payer pays").all()
    # without the policies the tie is the provider's choice, settled by code order, and said so
    plain = compute_units(df, "cms")
    assert plain["units"].tolist() == [1, 2]
    assert plain["units_reason"].str.contains("provider's choice").all()


def test_a_clear_leftover_is_not_a_tie():
    """Pub. 100-04 ch. 5 sec. 20.2 example: 33 min 97110 + 7 min 97140 = 40 min -> 3 units,
    97110 x2 and 97140 x1 (its 7 min beat the 3 left on 97110): no tie is mentioned."""
    out = compute_units(lines("mc", ("pt1", "pt", "97110", 33, "GP"), ("pt1", "pt", "97140", 7, "GP")), "cms",
                        payers=POLICIES)
    assert out["units"].tolist() == [2, 1]
    assert not out["units_reason"].str.contains("tied").any()


# -- 5. PTA/OTA without CQ/CO --------------------------------------------------------------------

def test_assistant_without_modifier_is_reduced_and_flagged():
    """Medicare pays services furnished in whole or in part by a PTA/OTA at 85% (Bipartisan
    Budget Act of 2018 sec. 53107; FACTS 3.1): 97140 national 2025, 85% of $27.17 = 23.0945 ->
    $23.09, whether or not the line carries CQ; without it the line is flagged."""
    out = evaluate(pd.concat([lines("mc", ("pta1", "pta", "97140", 15, "GP")),
                              lines("mc", ("pta1", "pta", "97140", 15, "GP,CQ"), patient="p2")],
                             ignore_index=True), POLICIES)
    assert out["allowed"].tolist() == [23.09, 23.09]
    assert out["assistant_modifier_missing"].tolist() == [True, False]
    assert "add CQ" in out["price_basis"].iloc[0]


def test_assistant_rule_is_medicare_law_not_a_contract_term():
    """A commercial plan at 100% of Medicare pays the PTA's unmodified line at the full
    Medicare amount ($27.17): the 85% is the Medicare statute's, not the contract's."""
    out = evaluate(lines("ppo", ("pta1", "pta", "97140", 15, "")), POLICIES)
    assert (out["allowed"].item(), out["assistant_modifier_missing"].item()) == (27.17, False)


# -- Groupings ------------------------------------------------------------------------------------

def test_unit_count_is_per_discipline_by_default():
    """Two PTs see the patient the same day, 10 min of 97110 and 10 min of 97140 (GP): the
    8-minute rule totals the day's timed minutes of the discipline (20 min -> 1 unit;
    physicaltherapy.com on Pub. 100-04 ch. 5 sec. 20.2, "for a single discipline"); counted
    per visit each 10 min would earn a unit (2 units)."""
    df = lines("mc", ("pt1", "pt", "97110", 10, "GP"), ("pt2", "pt", "97140", 10, "GP"))
    assert compute_units(df, "cms")["units"].sum() == 1
    per_visit = load_payers({"payers": {"mc": {"kind": "medicare", "grouping": {"units": "visit"}}}})
    assert compute_units(df, "cms", payers=per_visit)["units"].sum() == 2
    # a PT and an OT the same day: two disciplines, each 10 min -> a unit each
    mixed = lines("mc", ("pt1", "pt", "97110", 10, "GP"), ("ot1", "ot", "97530", 10, "GO"))
    assert compute_units(mixed, "cms")["units"].tolist() == [1, 1]


def test_group_ids_follow_the_grouping():
    df = lines("mc", ("pt1", "pt", "97110", 10, "GP"), ("pt2", "pta", "97140", 10, ""),
               ("ot1", "ot", "97530", 10, "GO"), ("lmt1", "lmt", "97124", 10, ""))
    keys = LineKeys(df)
    assert group_ids(keys, "visit").tolist() == [0, 1, 2, 3]
    assert group_ids(keys, "patient_day").tolist() == [0, 0, 0, 0]
    # PT (GP, or a PTA without a modifier), OT, and a massage therapist's line on its own
    assert group_ids(keys, "discipline").tolist() == [0, 0, 1, 2]


def test_unknown_grouping_is_a_policy_error():
    with pytest.raises(PayerPolicyError, match="grouping.mppr must be one of"):
        load_payers({"payers": {"mc": {"kind": "medicare", "grouping": {"mppr": "claim"}}}})
    with pytest.raises(PayerPolicyError, match="grouping.kx is not a rule"):
        load_payers({"payers": {"mc": {"kind": "medicare", "grouping": {"kx": "visit"}}}})
