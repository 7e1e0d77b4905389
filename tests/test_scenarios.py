"""Coding scenarios: alternatives, side-by-side pricing, the CMS-1500 view, the CLI and the notebook.

Known values are worked by hand from FACTS sec. 1-4 (2026 national, non-QP):

* conversion factor 33.4009;
* 97140: work 0.43, PE 0.39, MP 0.01 (total 0.83);
* 97124: work 0.35, PE 0.53, MP 0.01 (total 0.89);
* MPPR (Medicare): the unit with the highest PE is paid in full, every other unit gets 50%
  of its PE.

So one unit of 97140 is 0.83 x 33.4009 = 27.722747 in full and (0.43 + 0.195 + 0.01) x
33.4009 = 0.635 x 33.4009 = 21.2095715 under MPPR; one unit of 97124 is 0.89 x 33.4009 =
29.726801 in full and (0.35 + 0.265 + 0.01) x 33.4009 = 0.625 x 33.4009 = 20.8755625 under
MPPR.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.exceptions import InputError, MinutesError, UnknownCodeError, UnpricedCodeWarning
from analytics.payers import load_payers
from analytics.scenarios import (
    ClaimForm,
    Referring,
    Service,
    Session,
    alternatives,
    claim_form,
    compare,
    practice_defaults,
)

REPO = Path(__file__).resolve().parents[1]
PAYERS_FILE = REPO / "data" / "sample" / "payers.yaml"
NOTEBOOK = REPO / "notebooks" / "coding_scenarios.ipynb"
DATE = "2026-06-01"
NPI = "1234567893"  # passes the NPI check digit
REFERRING_NPI = "1987654328"


@pytest.fixture(scope="module")
def payers():
    return load_payers(PAYERS_FILE)


def session(**kw):
    """30 min of massage on the low back and 30 of manual therapy on the neck (the acceptance case)."""
    base = dict(
        services=[Service("97124", 30, regions="low back"), Service("97140", 30, regions="neck")],
        service_date=DATE,
        dx_codes=["M54.50", "M62.830"],
        provider_type="pt",
        prescription_on_file=True,
        deductible_remaining=0,
        rendering_npi=NPI,
    )
    base.update(kw)
    return Session(**base)


@pytest.fixture(scope="module")
def acceptance(payers):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compare(session(), payers)


def line(result, alternative, payer, code):
    t = result.table
    hit = t[(t["alternative"] == alternative) & (t["payer_id"] == payer) & (t["cpt"] == code)]
    assert len(hit) == 1, (alternative, payer, code)
    return hit.iloc[0]


def total(result, alternative, payer):
    t = result.totals
    return t[(t["alternative"] == alternative) & (t["payer_id"] == payer)].iloc[0]


# --- alternatives ----------------------------------------------------------------------


def test_acceptance_session_lists_every_way_to_report_it(acceptance):
    names = [a.name for a in acceptance.alternatives]
    assert names == [
        "97140 + 97124 (no modifier)",
        "97140 + 97124-59",
        "97140 + 97124-XS",
        "97140 + 97124-XU",
        "97140 only",
        "97124 only",
    ]
    assert all(a.supported for a in acceptance.alternatives)
    assert set(acceptance.table["payer_id"]) == {
        "medicare",
        "ppo_gold",
        "auto_pip",
        "workers_comp",
        "hmo_capped",
        "cash",
    }
    # one row per alternative x payer x line, one total per alternative x payer
    assert len(acceptance.table) == 6 * (2 + 2 + 2 + 2 + 1 + 1)
    assert len(acceptance.totals) == 6 * 6


def test_modifier_without_its_documentation_is_listed_but_not_supported():
    no_regions = session(services=[Service("97124", 30), Service("97140", 30)])
    alts = {a.name: a for a in alternatives(no_regions)}
    assert alts["97140 + 97124 (no modifier)"].supported
    for mod in ("59", "XS", "XU"):
        alt = alts[f"97140 + 97124-{mod}"]
        assert not alt.supported
        assert "separate from 97140" in alt.missing
    blocks = session(
        services=[Service("97124", 30, time_block=1), Service("97140", 30, time_block=2)]
    )
    alts = {a.name: a for a in alternatives(blocks)}
    assert alts["97140 + 97124-59"].supported and alts["97140 + 97124-XU"].supported
    assert not alts["97140 + 97124-XS"].supported
    assert "body region" in alts["97140 + 97124-XS"].missing


def test_shared_region_does_not_support_xs():
    s = session(
        services=[
            Service("97124", 30, regions=["neck", "back"]),
            Service("97140", 30, regions="neck"),
        ]
    )
    alt = {a.name: a for a in alternatives(s)}["97140 + 97124-XS"]
    assert not alt.supported and "neck" in alt.missing
    assert not s.distinct_regions


def test_xe_is_offered_only_for_a_recorded_separate_encounter():
    assert not any(a.name.endswith("-XE") for a in alternatives(session()))
    alts = {a.name: a for a in alternatives(session(separate_encounter=True))}
    assert alts["97140 + 97124-XE"].supported


def test_hot_pack_on_and_off(payers):
    s = session(
        services=[
            Service("97124", 30, regions="low back"),
            Service("97140", 30, regions="neck"),
            Service("97010"),
        ]
    )
    result = compare(s, payers)
    names = [a.name for a in result.alternatives]
    assert "97140 + 97124-XS + 97010" in names and "97140 + 97124-XS" in names
    assert "97010 only" not in names
    # Medicare: status B, bundled; the PPO excludes it; PIP pays its flat $15.
    med = line(result, "97140 + 97124-XS + 97010", "medicare", "97010")
    assert (med["disposition"], med["carc"], med["rarc"]) == ("denied", "97", "M15")
    assert line(result, "97140 + 97010", "ppo_gold", "97010")["carc"] == "96"
    assert line(result, "97140 + 97010", "auto_pip", "97010")["allowed"] == 15.00
    # workers' comp prices off the Medicare fee schedule, where 97010 is status B: bundled
    wc = line(result, "97140 + 97010", "workers_comp", "97010")
    assert (wc["disposition"], wc["carc"]) == ("denied", "97")


def test_no_alternative_bills_a_code_that_was_not_performed(acceptance):
    performed = {"97124", "97140"}
    assert set(acceptance.table["cpt"]) <= performed
    for a in acceptance.alternatives:
        assert set(a.codes) <= performed and len(set(a.codes)) == len(a.codes)


# --- Medicare 2026 national, by hand ------------------------------------------------------


def test_medicare_2026_both_codes_with_a_distinct_service_modifier(acceptance):
    for mod in ("59", "XS", "XU"):
        name = f"97140 + 97124-{mod}"
        m124 = line(acceptance, name, "medicare", "97124")
        m140 = line(acceptance, name, "medicare", "97140")
        # CMS 8-minute rule: 60 timed minutes -> 4 units, 2 each.
        assert (m124["units"], m140["units"]) == (2, 2)
        assert m124["modifiers"] == f"GP,{mod}" and m140["modifiers"] == "GP"
        # 97124's PE (0.53) is the highest, so one 97124 unit is full:
        # CMS prices each unit in cents, then adds them: 29.726801 -> $29.73 and
        # 20.8755625 -> $20.88, so $50.61
        assert m124["allowed"] == 50.61
        # both 97140 units under MPPR: 21.2095715 -> $21.21 each, 2 x 21.21 = $42.42
        assert m140["allowed"] == 42.42
        # deductible met: 20% coinsurance. 42.42 x 0.2 = 8.484 -> 8.48; 50.61 x 0.2 = 10.122 -> 10.12
        assert (m140["patient_part"], m140["payer_paid"]) == (8.48, 33.94)
        assert (m124["patient_part"], m124["payer_paid"]) == (10.12, 40.49)
        # denial prior 6%: 42.42 x 0.94 = 39.8748 -> 39.87; 50.61 x 0.94 = 47.5734 -> 47.57
        assert (m140["p_deny"], m140["expected"], m124["expected"]) == (0.06, 39.87, 47.57)
        t = total(acceptance, name, "medicare")
        assert (t["allowed"], t["expected_total"]) == (93.03, 87.44)  # 39.87 + 47.57
        # payer: 33.94 x 0.94 = 31.9036 -> 31.90, 40.49 x 0.94 = 38.0606 -> 38.06
        assert t["expected_payer"] == 69.96
        assert "GP added" in m124["explanation"] and "MPPR" in m124["explanation"]


def test_medicare_2026_without_modifier_bundles_97124(acceptance):
    m124 = line(acceptance, "97140 + 97124 (no modifier)", "medicare", "97124")
    assert (m124["disposition"], m124["group_code"], m124["carc"], m124["rarc"]) == (
        "denied",
        "CO",
        "97",
        "M80",
    )
    assert m124["p_deny"] == 1.0 and m124["expected"] == 0.0
    assert "bundled into 97140" in m124["explanation"]
    # 97140 alone keeps the full unit: 27.722747 + 21.2095715 = 48.9323185 -> $48.93;
    # x 0.94 = 45.9962 -> $45.99
    m140 = line(acceptance, "97140 + 97124 (no modifier)", "medicare", "97140")
    assert (m140["allowed"], m140["expected"]) == (48.93, 45.99)
    assert total(acceptance, "97140 only", "medicare")["expected_total"] == 45.99
    # 97124 alone: 50.61 x 0.94 = 47.5734 -> $47.57
    assert total(acceptance, "97124 only", "medicare")["expected_total"] == 47.57


# --- the PPO: 110% of Medicare, AMA units, no MPPR, honours XS only --------------------


def test_ppo_pays_xs_and_denies_59_xu_and_no_modifier(acceptance):
    # AMA per code: 30 min -> (30 + 7) // 15 = 2 units each.
    # 110% of the line's Medicare amount, itself the sum of unit amounts in cents:
    # 97140: 2 x $27.72 = $55.44 x 1.1 = 60.984 -> $60.98
    # 97124: 2 x $29.73 = $59.46 x 1.1 = 65.406 -> $65.41
    xs140 = line(acceptance, "97140 + 97124-XS", "ppo_gold", "97140")
    xs124 = line(acceptance, "97140 + 97124-XS", "ppo_gold", "97124")
    assert (xs140["units"], xs140["allowed"], xs124["units"], xs124["allowed"]) == (
        2,
        60.98,
        2,
        65.41,
    )
    assert xs124["modifiers"] == "XS" and "GP" not in xs140["modifiers"]
    # deductible met: the $25 copay falls on the visit's first line; no coinsurance
    assert (xs140["copay_applied"], xs140["patient_part"], xs140["payer_paid"]) == (
        25.0,
        25.0,
        35.98,
    )
    assert (xs124["patient_part"], xs124["payer_paid"]) == (0.0, 65.41)
    # denial prior 8%: 60.98 x 0.92 = 56.1016 -> 56.10; 65.41 x 0.92 = 60.1772 -> 60.18
    t = total(acceptance, "97140 + 97124-XS", "ppo_gold")
    assert (t["allowed"], t["expected_total"], t["patient_part"]) == (126.39, 116.28, 25.0)
    assert t["best"]
    for name, mod in [("97140 + 97124-59", "59"), ("97140 + 97124-XU", "XU")]:
        denied = line(acceptance, name, "ppo_gold", "97124")
        assert (denied["disposition"], denied["carc"]) == ("denied", "97")
        assert (
            f"does not honour {mod}" in denied["edit_reason"]
            and "honours XS" in denied["edit_reason"]
        )
        assert total(acceptance, name, "ppo_gold")["expected_total"] == 56.10
    assert (
        line(acceptance, "97140 + 97124 (no modifier)", "ppo_gold", "97124")["disposition"]
        == "denied"
    )
    assert total(acceptance, "97124 only", "ppo_gold")["expected_total"] == 60.18


def test_ppo_with_part_of_the_deductible_left(payers):
    result = compare(session(deductible_remaining=100), payers, payer_ids=["ppo_gold"])
    l140 = line(result, "97140 + 97124-XS", "ppo_gold", "97140")
    l124 = line(result, "97140 + 97124-XS", "ppo_gold", "97124")
    # 97140 ($60.98) goes wholly to the deductible, so nothing is left for the copay there
    assert (l140["deductible_applied"], l140["copay_applied"], l140["payer_paid"]) == (
        60.98,
        0.0,
        0.0,
    )
    # 97124: the deductible's last 100 - 60.98 = 39.02, then the $25 copay from the
    # remaining 65.41 - 39.02 = 26.39; the payer pays 1.39
    assert (l124["deductible_applied"], l124["copay_applied"]) == (39.02, 25.0)
    assert (l124["patient_part"], l124["payer_paid"]) == (64.02, 1.39)
    t = total(result, "97140 + 97124-XS", "ppo_gold")
    assert (t["patient_part"], t["payer_paid"]) == (125.0, 1.39)


def test_each_payer_denies_what_its_policy_says(acceptance):
    denied = acceptance.denied()
    by_payer = {
        p: set(zip(d["alternative"], d["cpt"], d["carc"], strict=True))
        for p, d in denied.groupby("payer_id")
    }
    no_mod = "97140 + 97124 (no modifier)"
    assert by_payer["medicare"] == {(no_mod, "97124", "97")}
    assert by_payer["ppo_gold"] == {
        (no_mod, "97124", "97"),
        ("97140 + 97124-59", "97124", "97"),
        ("97140 + 97124-XU", "97124", "97"),
    }
    assert by_payer["workers_comp"] == {(no_mod, "97124", "97")}
    assert by_payer["hmo_capped"] == {(no_mod, "97124", "97")}
    assert "auto_pip" not in by_payer and "cash" not in by_payer  # no NCCI edits


def test_plan_state_denials_prescription_cap_authorisation_and_plan_of_care(payers):
    result = compare(
        session(
            prescription_on_file=False,
            visits_used={"hmo_capped": 20, "workers_comp": 6},
            plan_of_care=None,
        ),
        payers,
    )
    t = result.table
    assert set(t.loc[t["payer_id"] == "auto_pip", "carc"]) == {"174"}  # no prescription
    assert set(t.loc[t["payer_id"] == "workers_comp", "carc"]) == {
        "174"
    }  # checked before authorisation
    assert set(t.loc[t["payer_id"] == "hmo_capped", "carc"]) == {
        "119"
    }  # visit 21 of a 20-visit cap
    assert set(t.loc[t["payer_id"] == "medicare", "carc"]) == {"4"}  # no plan of care, so no GP
    assert not t.loc[t["payer_id"] == "medicare", "explanation"].str.contains("GP added").any()
    auth = compare(session(visits_used=6), payers, payer_ids=["workers_comp"]).table
    assert set(auth["carc"]) == {"197"} and auth["edit_reason"].str.contains("visit 7").all()


def test_copay_and_coinsurance_override_per_payer(payers):
    result = compare(
        session(copay={"ppo_gold": 40}, coinsurance=0.1), payers, payer_ids=["ppo_gold", "medicare"]
    )
    assert line(result, "97140 + 97124-XS", "ppo_gold", "97140")["copay_applied"] == 40.0
    # 10% coinsurance on the PPO's 97124 line: 65.41 x 0.1 = 6.541 -> 6.54
    assert line(result, "97140 + 97124-XS", "ppo_gold", "97124")["coinsurance_applied"] == 6.54
    assert line(result, "97140 + 97124-XS", "medicare", "97124")["coinsurance_applied"] == 5.06


def test_a_fitted_denial_model_replaces_the_payer_prior(payers):
    class Flat:
        def predict_proba(self, lines):
            return pd.Series(0.25, index=lines.index)

    result = compare(session(), payers, payer_ids=["medicare"], denial_model=Flat())
    paid = line(result, "97140 + 97124-XS", "medicare", "97124")
    assert (paid["p_deny"], paid["p_deny_basis"]) == (0.25, "learned from remittances")
    assert paid["expected"] == 37.96  # 50.61 x 0.75 = 37.9575 -> 37.96
    bundled = line(result, "97140 + 97124 (no modifier)", "medicare", "97124")
    assert bundled["p_deny"] == 1.0  # an edit's denial stays certain


# --- units: 7 + 7 minutes ------------------------------------------------------------------


def test_seven_plus_seven_minutes_one_cms_unit_zero_ama_units(payers):
    s = session(
        services=[Service("97124", 7, regions="low back"), Service("97140", 7, regions="neck")]
    )
    result = compare(s, payers, payer_ids=["medicare", "ppo_gold"])
    t = result.table[result.table["alternative"] == "97140 + 97124-XS"]
    med = t[t["payer_id"] == "medicare"]
    ppo = t[t["payer_id"] == "ppo_gold"]
    # CMS: 7 + 7 = 14 timed minutes -> (14 + 7) // 15 = 1 unit for the visit
    assert med["units"].sum() == 1
    assert med["units_reason"].str.contains("14 timed minutes that day in this discipline -> 1 unit").all()
    # AMA: each code's 7 minutes is under the 8-minute midpoint -> 0 units each
    assert ppo["units"].sum() == 0
    assert ppo["units_reason"].str.contains("under the 8-minute midpoint -> 0 units").all()
    assert (ppo["disposition"] == "not_billed").all()
    assert ppo["explanation"].str.startswith("0 unit(s): AMA midpoint rule").all()
    # alone, a code of 7 minutes earns nothing under either method
    assert result.totals.loc[result.totals["alternative"] == "97140 only", "units"].tolist() == [
        0,
        0,
    ]


# --- properties ------------------------------------------------------------------------------

TIMED = ["97110", "97112", "97124", "97140", "97530"]


@st.composite
def sessions(draw):
    codes = draw(st.lists(st.sampled_from(TIMED), min_size=1, max_size=3, unique=True))
    distinct = draw(st.booleans())
    blocks = draw(st.booleans())
    services = [
        Service(
            c,
            draw(st.integers(0, 75)),
            regions=(f"r{i}",) if distinct else (),
            time_block=i if blocks else None,
        )
        for i, c in enumerate(codes)
    ]
    if draw(st.booleans()):
        services.append(Service("97010"))
    return session(services=services, deductible_remaining=draw(st.sampled_from([0, 20, None])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sessions())
def test_property_no_invented_codes_no_extra_units_totals_add_up(s):
    payers = load_payers(PAYERS_FILE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnpricedCodeWarning)
        result = compare(s, payers)
    t = result.table
    minutes = {sv.code: sv.minutes for sv in s.services}
    assert set(t["cpt"]) <= set(minutes)
    timed = t[t["cpt"] != "97010"]
    m = timed["cpt"].map(minutes).to_numpy()
    u = timed["units"].to_numpy()
    ama = timed["payer_id"].map({p: payers[p].unit_method for p in payers}).to_numpy() == "ama"
    # AMA: a code never bills more than its own minutes support
    assert (u[ama] <= np.where(m[ama] >= 8, (m[ama] + 7) // 15, 0)).all()
    # CMS: a code gets its whole 15-minute blocks plus at most one unit for leftover minutes
    # (FACTS 3.1 example 3: 7 minutes of 97140 earn a unit), and the visit never more than
    # the documented total supports: units <= (T + 7) // 15
    assert (u[~ama] <= m[~ama] // 15 + (m[~ama] % 15 > 0)).all()
    for _, g in timed[~ama].groupby(["alternative", "payer_id"], observed=True):
        total_minutes = g["cpt"].map(minutes).sum()
        supported_units = (total_minutes + 7) // 15 if total_minutes >= 8 else 0
        assert g["units"].sum() <= supported_units
    assert (t.loc[t["cpt"] == "97010", "units"] <= 1).all()
    # totals are the sums of their lines
    sums = t.groupby(["alternative", "payer_id"], observed=True, sort=False)[
        ["expected", "expected_payer", "expected_patient", "allowed", "units"]
    ].sum()
    tot = result.totals.set_index(["alternative", "payer_id"]).loc[sums.index]
    for col in ["expected", "expected_payer", "expected_patient", "allowed"]:
        other = "expected_total" if col == "expected" else col
        assert np.allclose(tot[other].to_numpy(), sums[col].round(2).to_numpy(), atol=0.005)
    assert (tot["units"].to_numpy() == sums["units"].to_numpy()).all()
    # every alternative's codes were performed, each once
    for a in result.alternatives:
        assert set(a.codes) <= set(minutes) and len(a.codes) == len(set(a.codes))


def test_totals_equal_sum_of_lines(acceptance):
    sums = (
        acceptance.table.groupby(["alternative", "payer_id"], observed=True)["expected"]
        .sum()
        .round(2)
    )
    tot = acceptance.totals.set_index(["alternative", "payer_id"])["expected_total"]
    assert np.allclose(tot.loc[sums.index].to_numpy(), sums.to_numpy())


# --- validation ----------------------------------------------------------------------------


def test_icd10pcs_is_rejected_as_a_diagnosis_and_as_a_procedure():
    with pytest.raises(InputError, match="ICD-10-PCS") as err:
        session(dx_codes=["8E0KX1Z"])
    assert "ICD-10-CM" in str(err.value)
    with pytest.raises(InputError, match="CPT/HCPCS") as err:
        session(services=[Service("8E0KX1Z", 30)])
    assert "therapeutic massage" in str(err.value) and "97124" in str(err.value)


def test_injury_codes_need_their_seventh_character():
    with pytest.raises(InputError, match="7th character"):
        session(dx_codes=["S39.012"])
    assert session(dx_codes=["S39.012A", "m5450"]).dx_codes == ("S39.012A", "M54.50")


def test_one_error_names_every_problem():
    with pytest.raises(InputError) as err:
        session(
            services=[Service("97124", -5), Service("M54.50", 10)],
            dx_codes=["97140"],
            rendering_npi="1234567890",
        )
    msg = str(err.value)
    assert "negative minutes" in msg and "looks like an ICD-10-CM diagnosis" in msg
    assert "looks like a CPT code" in msg and "not a valid NPI" in msg
    assert len(err.value.rows) == 4


def test_specific_errors_for_unknown_codes_and_minutes():
    with pytest.raises(UnknownCodeError, match="97999"):
        session(services=[Service("97999", 30)])
    with pytest.raises(MinutesError, match="needs its direct one-on-one minutes"):
        session(services=[Service("97124")])
    with pytest.raises(MinutesError, match="negative"):
        session(services=[Service("97124", -1)])
    with pytest.raises(InputError, match="at most 12"):
        session(
            dx_codes=[f"M79.1{i}" for i in range(1)]
            + [f"M54.{i}" for i in range(2, 7)]
            + [f"M25.5{i}1" for i in range(1, 8)]
        )


# --- CMS-1500 ------------------------------------------------------------------------------


def test_claim_form_items_24_21_and_17(payers):
    s = session(
        services=[
            Service("97124", 30, regions="low back", dx=["M62.830", "M54.50"]),
            Service("97140", 30, regions="neck"),
        ],
        referring=Referring("JONES MARY", REFERRING_NPI, "DN"),
    )
    form = claim_form(s, "97140 + 97124-59", payers["medicare"])
    lines = form.lines
    assert lines["24D_code"].tolist() == ["97140", "97124"]
    # therapy modifier first, then the NCCI modifier (FACTS 8: "97140 GP 59")
    assert lines[["24D_modifier_1", "24D_modifier_2", "24D_modifier_3"]].values.tolist() == [
        ["GP", "", ""],
        ["GP", "59", ""],
    ]
    assert lines["24G_units"].tolist() == [2, 2]
    assert lines["24E_pointer"].tolist() == [
        "AB",
        "BA",
    ]  # the service's own diagnoses, primary first
    assert lines["24F_charges"].tolist() == [130.0, 110.0]  # $65 and $55 per unit x 2
    assert set(lines["24A_from"]) == {"060126"} and set(lines["24A_to"]) == {"060126"}
    assert set(lines["24B_place_of_service"]) == {"11"} and set(lines["24C_emg"]) == {""}
    assert set(lines["24J_rendering_npi"]) == {NPI}
    assert form.diagnoses[["item", "code", "on_form"]].values.tolist() == [
        ["21A", "M54.50", "M5450"],
        ["21B", "M62.830", "M62830"],
    ]
    assert form.icd_indicator == "0"
    assert form.referring == Referring("JONES MARY", REFERRING_NPI, "DN")
    # a payer without the therapy-modifier rule gets the NCCI modifier alone, AMA units
    ppo = claim_form(s, "97140 + 97124-XS", payers["ppo_gold"]).lines
    assert ppo[["24D_modifier_1", "24D_modifier_2"]].values.tolist() == [["", ""], ["XS", ""]]


def test_claim_form_csv_round_trip(tmp_path, payers):
    s = session(referring=Referring("JONES MARY", REFERRING_NPI, "DK"))
    form = claim_form(s, "97140 + 97124-XS", payers["medicare"])
    path = form.to_csv(tmp_path / "claim.csv")
    back = ClaimForm.read_csv(path)
    pd.testing.assert_frame_equal(back.lines, form.lines, check_dtype=False)
    pd.testing.assert_frame_equal(back.diagnoses, form.diagnoses)
    assert back.referring == form.referring and back.icd_indicator == "0"
    raw = pd.read_csv(path, dtype=str)
    assert raw.loc[1, "24F_charges"] == "110.00" and raw.loc[0, "21A"] == "M54.50"


def test_claim_form_pages_of_six_lines_and_zero_unit_lines_left_off(payers):
    codes = ["97110", "97112", "97124", "97140", "97530", "97116", "97035"]
    s = session(services=[Service(c, 15, regions=f"r{i}") for i, c in enumerate(codes)])
    alt = next(a for a in alternatives(s) if len(a.codes) == 7)
    form = claim_form(s, alt, payers["medicare"])
    assert form.pages == 2
    assert form.lines["page"].tolist() == [1] * 6 + [2] and form.lines["line"].tolist() == [
        1,
        2,
        3,
        4,
        5,
        6,
        1,
    ]
    short = session(services=[Service("97124", 7, regions="a"), Service("97140", 7, regions="b")])
    assert len(claim_form(short, "97140 + 97124-XS", payers["ppo_gold"]).lines) == 0
    cms = claim_form(short, "97140 + 97124-XS", payers["medicare"])
    assert cms.lines["24G_units"].sum() == 1 and len(cms.omitted) == 1
    with pytest.raises(InputError, match="not an alternative"):
        claim_form(short, "97140 + 97110", payers["medicare"])


def test_practice_defaults_read_the_fee_sheet_and_the_rendering_provider(tmp_path):
    (tmp_path / "practice.yaml").write_text(
        "fee_sheet: {'97124': 72.0, '97140': 78.0}\n"
        "providers:\n"
        "- {provider_id: PT1, provider_type: pt, npi: '1234567893'}\n"
        "- {provider_id: LMT1, provider_type: lmt, npi: '1987654328'}\n"
    )
    got = practice_defaults(tmp_path, providers=["LMT1"])
    assert (got["provider_type"], got["rendering_npi"]) == ("lmt", REFERRING_NPI)
    assert (
        got["charges"]["97124"] == 72.0 and got["charges"]["97010"] == 25.0
    )  # sample for the rest
    assert practice_defaults(tmp_path, provider_type="dc")["provider_type"] == "dc"
    with pytest.raises(InputError, match="PT1, LMT1"):
        practice_defaults(tmp_path, providers="DC9")
    s = Session.from_minutes(
        {"97124": 30}, service_date=DATE, **practice_defaults(tmp_path, providers="PT1")
    )
    cash = compare(s, load_payers(PAYERS_FILE), payer_ids=["cash"])
    assert cash.totals["expected_total"].tolist() == [144.0]  # 2 units x $72 (AMA: 30 min)


# --- chart, command line, notebook -------------------------------------------------------------


def test_plot_greys_out_unsupported_alternatives(payers):
    result = compare(
        session(services=[Service("97124", 30), Service("97140", 30)]),
        payers,
        payer_ids=["medicare", "ppo_gold"],
    )
    fig = result.plot()
    ax = fig.axes[0]
    hatched = [p for p in ax.patches if p.get_hatch()]
    assert len(hatched) == 3 * 2  # 59, XS and XU unsupported, for two payers
    assert len(ax.patches) == 6 * 2
    assert any("(not supported)" in t.get_text() for t in ax.get_yticklabels())


def test_cli_compare_json_shape(capsys):
    code = main(
        [
            "compare",
            "--payers",
            str(PAYERS_FILE),
            "--payer",
            "medicare",
            "--payer",
            "ppo_gold",
            "97124=30",
            "97140=30",
            "--distinct-regions",
            "--date",
            DATE,
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"alternatives"}
    assert len(data["alternatives"]) == 6 * 2
    for alt in data["alternatives"]:
        assert set(alt) == {"name", "payer", "supported", "lines", "expected_total"}
        for ln in alt["lines"]:
            assert set(ln) == {"code", "modifiers", "units", "allowed", "p_deny", "p_deny_basis", "expected"}
        assert alt["expected_total"] == pytest.approx(
            sum(ln["expected"] for ln in alt["lines"]), abs=0.005
        )
    xs = next(
        a
        for a in data["alternatives"]
        if a["name"] == "97140 + 97124-XS" and a["payer"] == "ppo_gold"
    )
    assert xs["expected_total"] == 116.28 and xs["supported"] is True


def test_cli_compare_text_marks_unsupported(capsys):
    assert (
        main(
            [
                "compare",
                "--payers",
                str(PAYERS_FILE),
                "--payer",
                "ppo_gold",
                "97124=30",
                "97140=30",
                "--date",
                DATE,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Not supported by the documentation" in out and "does not honour 59" in out


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "parameters" in nb.cells[0].metadata.get("tags", [])
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


REPORT_PARAMETERS = {
    "data_dir",
    "payers",
    "providers",
    "period_start",
    "period_end",
    "as_of",
    "fee_schedule_year",
    "locality",
    "practice_name",
    "title",
}


def test_notebook_parameters_are_all_readable_by_papermill():
    papermill = pytest.importorskip("papermill")
    params = papermill.inspect_notebook(str(NOTEBOOK))
    assert REPORT_PARAMETERS | {
        "minutes_97124",
        "minutes_97140",
        "distinct_regions",
        "separate_time_blocks",
        "hot_pack",
        "service_date",
    } <= set(params)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    n_lines = len([ln for ln in nb.cells[0].source.splitlines() if ln.strip()])
    assert len(params) == n_lines  # every line is a typed parameter that papermill can parse
    assert all(p["help"] and p["inferred_type_name"] != "None" for p in params.values())


def test_notebook_runs_headless_as_a_batch_report(tmp_path):
    """The page as ``report scenarios`` runs it (no explorer), for a session of 30 + 30 minutes."""
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "coding_scenarios.ipynb"
    from analytics.reports import _register_engine

    # the report runner's engine re-polls the kernel (jupyter/nbclient#312) and a cell timeout
    # turns any stall into a failure, not a hang
    papermill.execute_notebook(
        str(NOTEBOOK), str(out), kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOK.parent),
        engine_name=_register_engine(), execution_timeout=300,
        parameters={"minutes_97124": 30, "minutes_97140": 30, "minutes_97112": 0, "minutes_97110": 0},
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    html = " ".join(o.get("data", {}).get("text/html", "") for o in outputs)
    markdown = " ".join(o.get("data", {}).get("text/markdown", "") for o in outputs)
    assert "Expected per visit" in html and "97140 + 97124-XS" in html  # the totals table
    assert "Gold PPO" in html and "$" in html  # payer names and dollars, not ids and bare numbers
    assert ">Why (units; outcome or price)<" in html and "8-minute rule" in html  # the appendix of reasons
    assert "learned from" in html and "Gold PPO 97124 lines" in html  # the chance of denial and its basis
    assert "documentation unknown" in html  # the practice what-if never assumes 59/X documentation
    assert "What to do next" in markdown
    assert "## Explorer" not in markdown  # no empty explorer section in a batch run
    heading = next(o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert heading.startswith("# Coding scenarios") and "\n\n." not in heading and " ." not in heading
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the charts
    assert not any(o.output_type == "error" for o in outputs)
