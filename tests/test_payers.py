"""Payer policy files: the schema and its errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analytics.exceptions import PayerPolicyError, UnknownPayerError
from analytics.payers import get_policy, load_payers, payer_table, resolve_payer, resolve_payers

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "payers.yaml"


def test_sample_payers_load():
    pol = load_payers(SAMPLE)
    assert {"medicare", "ppo_gold", "auto_pip", "workers_comp", "hmo_capped", "cash"} <= set(pol)
    mc = pol["medicare"]
    assert mc.unit_method == "cms" and mc.mppr and mc.medicare_status and mc.ncci.follow
    ppo = pol["ppo_gold"]
    assert ppo.unit_method == "ama" and ppo.fee.percent == 110
    assert ("97140", "97124", ("XS",)) in ppo.ncci.pairs
    assert pol["auto_pip"].prescription_required and pol["auto_pip"].cost_share.copay == 0
    assert pol["workers_comp"].prior_auth_after_visits == 6
    assert pol["hmo_capped"].visit_limit == 20
    assert pol["cash"].fee.basis == "charges"


def test_medicare_defaults():
    mc = load_payers({"payers": {"m": {"kind": "medicare"}}})["m"]
    assert (mc.unit_method, mc.mppr, mc.require_gp, mc.kx_threshold, mc.fee.basis) == ("cms", True, True, True,
                                                                                       "medicare")


@pytest.mark.parametrize("text, match", [
    ("payers: [1, 2]", "non-empty 'payers:' mapping"),
    ("payers:\n  x: {kind: alien}", "kind must be one of"),
    ("payers:\n  x: {kind: commercial, unit_method: nine}", "unit_method must be"),
    ("payers:\n  x: {kind: commercial, fee: {basis: flat}}", "needs fee.rates"),
    ("payers:\n  x: {kind: commercial, colour: red}", "unknown key"),
    ("payers:\n  x: {kind: commercial, cost_share: {coinsurance: 20}}", "fraction"),
    ("payers:\n  x: {kind: commercial, visit_limit: -2}", "visit_limit"),
    ("payers:\n  x: {kind: commercial, fee: {basis: percent_of_medicare, percent: lots}}", "fee.percent"),
    ("payers:\n  x: {kind: commercial\n  y: [", "not valid YAML"),
])
def test_malformed_policy_files_name_the_problem(tmp_path, text, match):
    path = tmp_path / "payers.yaml"
    path.write_text(text)
    with pytest.raises(PayerPolicyError, match=match) as err:
        load_payers(path)
    assert str(path) in str(err.value)


def test_missing_file():
    with pytest.raises(PayerPolicyError, match="does not exist"):
        load_payers("/nonexistent/payers.yaml")


def test_unknown_payer():
    pol = load_payers(SAMPLE)
    with pytest.raises(UnknownPayerError, match="Add it to payers.yaml"):
        get_policy(pol, "acme")


def test_new_option_defaults_keep_todays_behaviour():
    p = load_payers({"payers": {"x": {"kind": "commercial"}}})["x"]
    assert (p.noncovered_liability, p.noncovered_carc, p.cost_share.copay_waives_deductible) == (
        "provider", "96", False)
    sample = load_payers(SAMPLE)
    assert all(q.noncovered_liability == "provider" and q.noncovered_carc == "96"
               and not q.cost_share.copay_waives_deductible for q in sample.values())


def test_new_options_parse():
    p = load_payers({"payers": {"x": {
        "kind": "commercial", "not_covered": ["97124"], "noncovered_liability": "patient", "noncovered_carc": 204,
        "cost_share": {"deductible": 500, "copay": 25, "copay_waives_deductible": True},
    }}})["x"]
    assert (p.noncovered_liability, p.noncovered_carc) == ("patient", "204")
    assert p.cost_share.copay_waives_deductible and p.cost_share.copay == 25 and p.cost_share.deductible == 500


def test_visit_limit_liability_defaults_to_patient_and_parses():
    # the default keeps CARC 119's usual group (PR) and makes the patient owe the line
    assert load_payers({"payers": {"x": {"kind": "commercial"}}})["x"].visit_limit_liability == "patient"
    assert all(q.visit_limit_liability == "patient" for q in load_payers(SAMPLE).values())
    pol = load_payers({"payers": {"x": {"kind": "commercial", "visit_limit": 20,
                                        "visit_limit_liability": "provider"}}})
    assert pol["x"].visit_limit_liability == "provider"
    assert payer_table(pol)["visit_limit_liability"].tolist() == ["provider"]


@pytest.mark.parametrize("text, match", [
    ("payers:\n  x: {kind: commercial, noncovered_liability: insurer}",
     r"payer 'x': noncovered_liability must be one of 'provider', 'patient', got 'insurer'"),
    ("payers:\n  x: {kind: commercial, visit_limit: 20, visit_limit_liability: practice}",
     r"payer 'x': visit_limit_liability must be one of 'provider', 'patient', got 'practice'"),
    ("payers:\n  x: {kind: commercial, noncovered_liability: true}",
     r"payer 'x': noncovered_liability must be one of 'provider', 'patient', got True"),
    ("payers:\n  x: {kind: commercial, noncovered_carc: 97}",
     r"payer 'x': noncovered_carc must be one of '96', '204', got 97"),
    ("payers:\n  x: {kind: commercial, cost_share: {copay: 20, copay_waives_deductible: sometimes}}",
     r"payer 'x': cost_share: copay_waives_deductible must be true or false, got 'sometimes'"),
    ("payers:\n  x: {kind: commercial, cost_share: {copay: 20, waive_deductible: true}}",
     r"payer 'x': cost_share takes deductible, copay, coinsurance and copay_waives_deductible"),
])
def test_bad_new_option_values_name_payer_key_and_allowed_values(tmp_path, text, match):
    path = tmp_path / "payers.yaml"
    path.write_text(text)
    with pytest.raises(PayerPolicyError, match=match) as err:
        load_payers(path)
    assert str(path) in str(err.value)


# --- payer names and aliases ------------------------------------------------------------------

ALIASED = {"payers": {
    "medicare": {"kind": "medicare", "name": "Medicare Part B", "aliases": ["Noridian JF", "MCR"]},
    "ppo_gold": {"kind": "commercial", "name": "Gold PPO", "aliases": ["Blue Shield Gold PPO", "BSC01"]},
    "cash": {"kind": "cash"},
}}


@pytest.mark.parametrize(("written", "payer"), [
    ("medicare", "medicare"), ("Medicare", "medicare"), ("MEDICARE PART B", "medicare"),
    ("Medicare  Part-B", "medicare"), ("noridian jf", "medicare"), ("Blue Shield Gold PPO", "ppo_gold"),
    ("blue-shield gold p.p.o.", "ppo_gold"), ("bsc01", "ppo_gold"), ("Gold PPO", "ppo_gold"), ("CASH", "cash"),
])
def test_a_payer_is_found_by_id_name_or_alias(written, payer):
    pol = load_payers(ALIASED)
    assert resolve_payer(written, pol) == payer
    assert get_policy(pol, written).payer_id == payer


def test_unknown_names_resolve_to_nothing_and_the_error_names_the_fix():
    pol = load_payers(ALIASED)
    assert resolve_payer("Aetna", pol) is None
    assert resolve_payers(pd.Series(["Aetna", "MCR", ""]), pol).tolist() == ["", "medicare", ""]
    with pytest.raises(UnknownPayerError, match="aliases"):
        get_policy(pol, "Aetna")


def test_an_alias_claimed_by_two_payers_is_an_error():
    spec = {"payers": {"a": {"kind": "commercial", "aliases": ["Acme Health"]},
                       "b": {"kind": "commercial", "aliases": ["ACME-health"]}}}
    with pytest.raises(PayerPolicyError, match="names both payer 'a' and payer 'b'"):
        load_payers(spec)
    # two payers may share a display name; the name then finds neither
    shared = load_payers({"payers": {"a": {"kind": "commercial", "name": "Plan"},
                                     "b": {"kind": "commercial", "name": "Plan"}}})
    assert resolve_payer("plan", shared) is None


@pytest.mark.parametrize("aliases", [{"x": 1}, [True], ["..."]])
def test_malformed_aliases_name_the_fix(aliases):
    with pytest.raises(PayerPolicyError, match="alias"):
        load_payers({"payers": {"x": {"kind": "commercial", "aliases": aliases}}})
