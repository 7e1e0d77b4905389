"""Payer policy files: the schema and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.exceptions import PayerPolicyError, UnknownPayerError
from analytics.payers import get_policy, load_payers

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
