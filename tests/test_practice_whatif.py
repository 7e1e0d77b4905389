"""The practice-level coding what-if (analytics/scenarios/practice.py) against a case computed by
hand, and the recommendations of every page checked against the table row each one cites."""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import kpis, narratives
from analytics.history import build_history
from analytics.scenarios import common_session, practice_whatif

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"

# Two payers paying flat rates per unit, with no cost share (so expected = allowed x (1 - chance)):
# Alpha bundles 97124 into 97140 unless 97124 carries XS (the contract's own pair); Beta follows no
# NCCI pairs. The chance of denial is each payer's denial_prior (no remittances).
PAYERS = {"payers": {
    "alpha": {"name": "Alpha Health", "kind": "commercial", "unit_method": "ama",
              "fee": {"basis": "flat", "rates": {"97124": 40.0, "97140": 50.0}},
              "ncci": {"follow": True, "pairs": [{"column1": "97140", "column2": "97124", "modifiers": ["XS"]}]},
              "cost_share": {"deductible": 0, "copay": 0, "coinsurance": 0}, "denial_prior": 0.10},
    "beta": {"name": "Beta Care", "kind": "commercial", "unit_method": "ama",
             "fee": {"basis": "flat", "rates": {"97124": 30.0, "97140": 60.0}},
             "ncci": {"follow": False},
             "cost_share": {"deductible": 0, "copay": 0, "coinsurance": 0}, "denial_prior": 0.20},
}}


def _practice() -> kpis.History:
    """Four visits: (1) Alpha, 97124 30 min (2 units by the AMA midpoint) billed -59 with 97140
    15 min (1 unit); (2) Alpha, 97140 20 min; (3) Beta, 97124 30 min + 97140 15 min, no
    modifier; (4) Beta, 97124 45 min (3 units)."""
    rows = [
        ("V1", "P1", "2026-01-05", "alpha", "97124", 30, "59"), ("V1", "P1", "2026-01-05", "alpha", "97140", 15, ""),
        ("V2", "P2", "2026-01-12", "alpha", "97140", 20, ""),
        ("V3", "P3", "2026-01-19", "beta", "97124", 30, ""), ("V3", "P3", "2026-01-19", "beta", "97140", 15, ""),
        ("V4", "P4", "2026-01-26", "beta", "97124", 45, ""),
    ]
    lines = pd.DataFrame(rows, columns=["claim_id", "patient_id", "service_date", "payer_id", "cpt", "minutes",
                                        "modifiers"])
    lines = lines.assign(line_id=lines["claim_id"] + "-" + (lines.groupby("claim_id").cumcount() + 1).astype(str),
                         service_date=pd.to_datetime(lines["service_date"]), provider_id="LMT1",
                         provider_type="lmt", charge=100.0, dx_codes="M54.50",
                         submission_date=pd.to_datetime(lines["service_date"]) + pd.Timedelta(days=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_history(lines, None, payers=PAYERS, as_of="2026-01-31", salt="test")


def test_practice_whatif_equals_the_hand_computed_case():
    """By hand (allowed x (1 - denial_prior); Alpha 10%, Beta 20%):

    Visit 1 (Alpha): billed 97140 $50 x 0.9 = $45 + 97124-59 denied (Alpha honours XS only) = $45.
    Supported ways (no documentation of separate regions in the export): both without modifier
    ($45, 97124 bundled), 97140 only ($45), 97124 only (2 x $40 x 0.9 = $72): best $72. With XS,
    were separate regions documented: $45 + $72 = $117, $45 more than the best supported.
    Visit 2 (Alpha): 97140 only, $45, nothing else to bill.
    Visit 3 (Beta): 2 x $30 x 0.8 + $60 x 0.8 = $96 as billed, and no way pays more.
    Visit 4 (Beta): 3 x $30 x 0.8 = $72.
    Alpha: billed $90, best $117 (+$27), one visit better coded, one with documentation unknown
    (+$45 if documented). Beta: $168 either way; visit 3 pairs the codes, so its 59/X ways are
    "documentation unknown" too, and worth nothing more. The period runs 2026-01-05 to
    2026-01-26: 22 days, 22 / (365.25 / 12) months.
    """
    w = practice_whatif(_practice())
    months = 22 / (365.25 / 12)
    assert w.months == pytest.approx(months) and w.visits == 4
    t = w.by_payer.set_index("payer_id")
    assert t.loc["alpha", "billed_per_month"] == pytest.approx(90 / months, abs=0.01)
    assert t.loc["alpha", "best_per_month"] == pytest.approx(117 / months, abs=0.01)
    assert t.loc["alpha", "difference_per_month"] == pytest.approx(27 / months, abs=0.01)
    assert t.loc["alpha", "best_alternative"] == "97124 only"
    assert (t.loc["alpha", "visits_improved"], t.loc["alpha", "unknown_visits"]) == (1, 1)
    assert t.loc["alpha", "if_documented_per_month"] == pytest.approx(45 / months, abs=0.01)
    assert t.loc["beta", "billed_per_month"] == pytest.approx(168 / months, abs=0.01)
    assert t.loc["beta", "difference_per_month"] == 0
    assert t.loc["beta", "best_alternative"] == "as billed"
    assert (t.loc["beta", "unknown_visits"], t.loc["beta", "if_documented_per_month"]) == (1, 0)
    alts = w.by_alternative.set_index(["payer_id", "mix", "alternative"])
    xs = alts.loc[("alpha", "97124 + 97140", "97140 + 97124-XS")]
    assert xs["status"] == "documentation unknown" and xs["expected_per_month"] == pytest.approx(117 / months,
                                                                                                   abs=0.01)
    assert alts.loc[("alpha", "97124 + 97140", "97124 only"), "best_visits"] == 1


def test_documented_separate_regions_make_xs_a_supported_way():
    """Visit 1 with its notes' separate body regions in the export: XS is supported ($117, and
    visit 2's $45: $162 for Alpha)."""
    h = _practice()
    flag = h.base["claim_id"].eq("V1").map({True: "true", False: ""})
    h = dataclasses.replace(h, base=h.base.assign(distinct_regions=flag.to_numpy()))
    w = practice_whatif(h)
    t = w.by_payer.set_index("payer_id")
    assert t.loc["alpha", "best_per_month"] == pytest.approx(162 / w.months, abs=0.01)
    assert t.loc["alpha", "best_alternative"] == "97140 + 97124-XS"
    assert t.loc["alpha", "unknown_visits"] == 0


def test_visits_without_minutes_are_left_out_and_said():
    """An export of units: a visit whose timed code has no minutes cannot be coded another way
    (each way counts units from minutes); it is left out, counted, and the page says why."""
    from analytics import narratives

    h = _practice()
    no_minutes = h.base["claim_id"].isin(["V3", "V4"]).to_numpy()
    h = dataclasses.replace(h, base=h.base.assign(minutes=h.base["minutes"].mask(no_minutes)))
    w = practice_whatif(h)
    assert (w.visits, w.without_minutes) == (2, 2)
    assert list(w.by_payer["payer_id"]) == ["alpha"]
    assert "2 insurance visits are left out: a timed code of theirs has no minutes" in narratives.whatif_narrative(w)
    all_out = dataclasses.replace(h, base=h.base.assign(minutes=float("nan")))
    none = practice_whatif(all_out)
    assert (none.visits, none.without_minutes) == (0, 4) and none.by_payer.empty
    assert "with minutes: no coding what-if to show" in narratives.whatif_narrative(none)


def test_common_session_is_dated_inside_the_period():
    h = _practice()
    s = common_session(h)
    assert h.start.date() <= s["service_date"] <= h.end.date()
    assert s["minutes"] == {"97124": 30, "97140": 15} and s["visits"] == 2


# --- recommendations, each checked against the table row it cites ---------------------------------


@pytest.fixture(scope="module")
def sample(sample_history):
    """The sample practice, read once per session (conftest)."""
    return sample_history


def _money_in(text: str) -> list[str]:
    return re.findall(r"\$[\d,]+", text)


def test_denials_page_actions_match_their_rows(sample):
    actions = narratives.denials_recommendations(sample)
    assert 1 <= len(actions) <= 5 and list(actions["rank"]) == list(range(1, len(actions) + 1))
    assert (np.diff(actions["dollars"].to_numpy()) <= 0).all()
    period = sample.period[~sample.period["self_pay"] & sample.period["adjudicated"]]
    by_code = kpis.denials_by_code(sample).set_index(["payer", "cpt"])
    for r in actions.itertuples(index=False):
        assert kpis.fmt_money(r.dollars) in r.action
        payer = period[period["payer"].astype(str) == r.payer]
        category = r.source.split(", ")[-2].replace(" ", "_")
        rows = payer[(payer["denied_amount"] > 0.005) & payer["denial_category"].eq(category)]
        if r.code != "all codes":
            rows = rows[rows["cpt"] == r.code]
        assert len(rows) == r.count, r.action
        assert round(float(rows["denied_amount"].sum()), 2) == pytest.approx(r.dollars, abs=0.01)
        if r.action.startswith("Stop billing"):  # "denied on k of n lines": the denials-by-code row
            row = by_code.loc[(r.payer, r.code)]
            assert f"denied on {int(row['denied_lines']):,} of {int(row['lines']):,} lines" in r.action
        assert "bill" not in r.action.lower() or any(w in r.action for w in ("Stop billing", "document it",
                                                                              "Before billing"))


def test_sample_actions_name_what_the_issue_expects(sample):
    text = " ".join(narratives.denials_recommendations(sample, top=10)["action"])
    assert "Stop billing 97010 to Gold PPO" in text
    assert "When 97124 and 97140 treat separate body regions, document it and bill 97124-XS at Gold PPO" in text


def test_revenue_and_contracts_actions_match_their_rows(sample):
    rev = narratives.revenue_recommendations(sample)
    s = kpis.summary(sample)
    aging = kpis.ar_aging(sample).set_index("payer")
    by_payer = kpis.by_payer(sample).set_index("payer")
    for r in rev.itertuples(index=False):
        if r.source == "headline: Not yet billed":
            assert r.dollars == pytest.approx(s["unbilled_charges"])
        elif r.source.startswith("insurance A/R: "):
            row = aging.loc[r.payer]
            assert r.dollars == pytest.approx(row["91-120"] + row["over 120"])
        else:
            assert r.dollars == pytest.approx(by_payer.loc[r.payer, "denied_amount"])
        assert kpis.fmt_money(r.dollars) in r.action
    con = narratives.contracts_recommendations(sample)
    lines = kpis.underpayments(sample).lines
    assert len(con)
    for r in con.itertuples(index=False):
        mine = lines[(lines["payer"] == r.payer) & (lines["cpt"] == r.code)]
        assert r.dollars == pytest.approx(round(float(mine["shortfall"].sum()), 2))
        assert r.count == mine["claim_id"].nunique() and f"{r.count} claims" in r.action


def test_risk_and_scenarios_actions_match_their_rows(sample):
    from analytics.denials import learned_risk, worklist, worklist_summary

    risk = learned_risk(sample, validate=False)
    summary = worklist_summary(worklist(sample, risk)).set_index(["payer", "status"])
    for r in narratives.denial_risk_recommendations(summary.reset_index()).itertuples(index=False):
        row = summary.loc[(r.payer, r.source.removeprefix(f"worklist by payer: {r.payer}, "))]
        assert r.dollars == pytest.approx(row["dollars_at_risk"]) and r.lines == row["lines"]
    w = practice_whatif(sample, risk)
    t = w.by_payer.set_index("payer")
    actions = narratives.scenarios_recommendations(w.by_payer)
    assert len(actions)
    for r in actions.itertuples(index=False):
        row = t.loc[r.payer]
        assert r.dollars in (pytest.approx(row["difference_per_month"]), pytest.approx(row["if_documented_per_month"]))
        assert kpis.fmt_money(r.dollars) in r.action
        # never a modifier the export does not show as documented: only "when the notes show ..."
        if "modifier" in r.action:
            assert "when the notes show" in r.action
