"""A comparison's handful of lines: the cheap paths give the engine's own figures.

``compare`` hands the rules engine a frame with plain object column labels, counts the units
of payers paid at the practice's charges itself under the CPT midpoint rule, builds its tables
as one frame each and keeps the policies it derives from a session's copay and coinsurance.
These tests pin each shortcut to what the plain path gives, and to worked unit counts.

Known values: FACTS sec. 3 (CMS Claims Processing Manual, Pub. 100-04, ch. 5, sec. 20.2, and
the CPT midpoint rule):

* 33 min 97110 + 7 min 97140: 8-minute rule (total 40 min) 3 units, 97110 x2 and 97140 x1;
  CPT midpoint 97110 (33 + 7) // 15 = 2 and 97140 0 (under 8 minutes);
* 10 min each of 97110, 97140 and 97112: 8-minute rule (total 30 min) 2 units; CPT midpoint
  1 unit each, 3 units.

Charges per unit are the sample fee sheet's (``SAMPLE_CHARGES``): 97110 $60, 97140 $65,
97112 $65.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.payers import load_payers
from analytics.pipeline import evaluate
from analytics.refdata import load_reference
from analytics.scenarios import SAMPLE_CHARGES, Service, Session, alternatives, compare
from analytics.scenarios.compare import payer_policies
from analytics.scenarios.tables import (
    alternative_totals,
    line_table,
    midpoint_units,
    scenario_lines,
)
from analytics.units import compute_units

REPO = Path(__file__).resolve().parents[1]
PAYERS_FILE = REPO / "data" / "sample" / "payers.yaml"
DATE = "2026-06-01"

# Two self-pay payers: one counts by the CPT midpoint rule, one by the 8-minute rule.
CASH = {
    "payers": {
        "cash_ama": {"name": "Self-pay (midpoint)", "kind": "cash", "unit_method": "ama",
                     "fee": {"basis": "charges"}},
        "cash_cms": {"name": "Self-pay (8-minute rule)", "kind": "cash", "unit_method": "cms",
                     "fee": {"basis": "charges"}},
    }
}


@pytest.fixture(scope="module")
def ref():
    return load_reference()


@pytest.fixture(scope="module")
def sample_payers():
    return load_payers(PAYERS_FILE)


def _lines_of_all_codes(result, payer: str) -> pd.DataFrame:
    """The lines of the alternative that bills every code performed, for one payer."""
    first = result.alternatives[0].name  # alternatives list the largest subset first
    t = result.table
    return t[(t["payer_id"] == payer) & (t["alternative"] == first)].set_index("cpt")


@pytest.mark.parametrize(
    ("minutes", "ama_units", "cms_units"),
    [
        ({"97110": 33, "97140": 7}, {"97110": 2, "97140": 0}, {"97110": 2, "97140": 1}),
        ({"97110": 10, "97140": 10, "97112": 10}, {"97110": 1, "97140": 1, "97112": 1}, None),
    ],
)
def test_self_pay_charges_follow_each_payers_unit_rule(minutes, ama_units, cms_units):
    """FACTS sec. 3: the charge of a self-pay line is the fee per unit x the payer's units."""
    s = Session.from_minutes(minutes, service_date=DATE, plan_of_care=None)
    result = compare(s, load_payers(CASH))
    ama = _lines_of_all_codes(result, "cash_ama")
    for code, units in ama_units.items():
        assert ama.loc[code, "units"] == units
        assert ama.loc[code, "charge"] == pytest.approx(units * SAMPLE_CHARGES[code])
    cms = _lines_of_all_codes(result, "cash_cms")
    if cms_units is not None:
        for code, units in cms_units.items():
            assert cms.loc[code, "units"] == units
            assert cms.loc[code, "charge"] == pytest.approx(units * SAMPLE_CHARGES[code])
    else:  # 30 min in total: 2 units under the 8-minute rule, whichever codes carry them
        assert cms["units"].sum() == 2
        assert cms["charge"].sum() == pytest.approx(
            sum(u * SAMPLE_CHARGES[c] for c, u in cms["units"].items())
        )
    # self-pay is allowed what the practice charges
    assert (ama["allowed"] == ama["charge"]).all() and (cms["allowed"] == cms["charge"]).all()


def test_midpoint_units_are_the_engines_count(ref):
    """Every minute from 0 to 130 on each timed code, and the untimed codes, as compute_units
    counts them under the CPT midpoint rule (FACTS sec. 3.2: 0 below 8 min, else (m + 7) // 15)."""
    catalog = ref.codes.set_index("cpt")["timed"].astype(bool)
    codes = [c for c in ("97110", "97112", "97124", "97140", "97010", "97139") if c in catalog.index]
    rows = [(c, m) for c in codes for m in range(131)]
    lines = pd.DataFrame(
        {
            "patient_id": np.arange(len(rows)),  # one visit per line, as in a comparison
            "service_date": DATE,
            "provider_id": "p",
            "cpt": [c for c, _ in rows],
            "minutes": [float(m) if catalog[c] else np.nan for c, m in rows],
        }
    )
    timed = catalog[lines["cpt"]].to_numpy()
    expected = compute_units(lines, "ama", reference=ref)["units"].to_numpy()
    got = midpoint_units(lines["minutes"].to_numpy(), timed, np.ones(len(lines), dtype=bool))
    np.testing.assert_array_equal(got, expected)
    assert got[(lines["cpt"] == "97124").to_numpy() & (lines["minutes"] == 7).to_numpy()] == [0]
    assert got[(lines["cpt"] == "97124").to_numpy() & (lines["minutes"] == 23).to_numpy()] == [2]
    # the 8-minute rule shares a visit's total between codes: left to the engine
    assert midpoint_units(np.array([30.0]), np.array([True]), np.array([False])) is None


SESSIONS = {
    "massage and manual therapy": dict(
        services=[Service("97124", 30, regions="low back"), Service("97140", 30, regions="neck")]
    ),
    "with a hot pack and 97139": dict(
        services=[Service("97124", 23, regions="back"), Service("97139"), Service("97010")],
        copay={"ppo_gold": 10.0},
        coinsurance=0.3,
    ),
    "minutes at the edges": dict(
        services=[Service("97110", 7), Service("97112", 8), Service("97140", 38, time_block=2)],
        plan_of_care=None,
        kx_documented=True,
    ),
}


@pytest.mark.filterwarnings("ignore::analytics.exceptions.UnpricedCodeWarning")  # 97139
@pytest.mark.parametrize("name", list(SESSIONS))
def test_scenario_engine_figures_equal_a_plain_frames(name, ref, sample_payers):
    """The engine run on the comparison's frame (object column labels, charges counted by the
    midpoint shortcut) gives every column, value and dtype of a plain frame with pandas'
    default labels and the charges counted by compute_units."""
    payers = {**sample_payers, **load_payers(CASH)}
    s = Session(service_date=DATE, prescription_on_file=True, **SESSIONS[name])
    pol = payer_policies(payers, None, s)
    alts = alternatives(s, reference=ref, payers=pol)
    frame, meta = scenario_lines(s, alts, pol, ref)

    plain = pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns})
    assert plain.columns.dtype != frame.columns.dtype  # the plain frame has text labels
    by_charges = plain["payer_id"].isin(["cash", "cash_ama", "cash_cms"]).to_numpy()
    method = plain.loc[by_charges, "payer_id"].map({p: pol[p].unit_method for p in pol})
    units = compute_units(plain[by_charges], method, reference=ref)["units"].to_numpy()
    plain.loc[by_charges, "charge"] = meta["fee"][by_charges] * units
    pd.testing.assert_series_equal(frame["charge"], plain["charge"], check_exact=True)

    got, want = evaluate(frame, pol, ref), evaluate(plain, pol, ref)
    assert list(got.columns) == list(want.columns)
    got.columns = want.columns
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    table = line_table(want, meta, alts, pol)
    pd.testing.assert_frame_equal(line_table(got, meta, alts, pol), table, check_exact=True)
    result = compare(s, payers, reference=ref)
    pd.testing.assert_frame_equal(result.table, table, check_exact=True)
    # compare adds up the lines' arrays; the totals read back from the table are the same
    pd.testing.assert_frame_equal(
        result.totals, alternative_totals(table, alts, pol), check_exact=True
    )


def test_a_sessions_copay_keeps_the_same_policy_objects_between_calls(sample_payers):
    """Redrawing with the same copay and coinsurance reuses the derived policies (the engine's
    payer tables are kept by policy identity); a new value makes new ones, with that value."""
    s = Session.from_minutes({"97124": 30}, service_date=DATE, copay={"ppo_gold": 10.0},
                             coinsurance=0.3)
    first = payer_policies(sample_payers, None, s)
    again = payer_policies(sample_payers, None, Session.from_minutes(
        {"97124": 45}, service_date=DATE, copay={"ppo_gold": 10.0}, coinsurance=0.3))
    assert all(first[p] is again[p] for p in first)
    assert first["ppo_gold"].cost_share.copay == 10.0
    assert first["medicare"].cost_share.coinsurance == 0.3
    assert first["medicare"].cost_share.copay == sample_payers["medicare"].cost_share.copay
    other = payer_policies(sample_payers, None, Session.from_minutes(
        {"97124": 30}, service_date=DATE, copay={"ppo_gold": 15.0}, coinsurance=0.3))
    assert other["ppo_gold"].cost_share.copay == 15.0 and other["ppo_gold"] is not first["ppo_gold"]
    # no session copay or coinsurance: the caller's own policy objects
    plain = payer_policies(sample_payers, None, Session.from_minutes({"97124": 30}, service_date=DATE))
    assert all(plain[p] is sample_payers[p] for p in sample_payers)
