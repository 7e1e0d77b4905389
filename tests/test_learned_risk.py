"""Denial risk learned from a practice's history: its basis in words, thin histories, the
time-based validation, the worklist, and the chance the scenarios page shows (analytics/denials/
learned.py, worklist.py; analytics/scenarios/compare.py with ``risk=``)."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import kpis
from analytics.denials import calibration_table, history_frame, learned_risk, worklist
from analytics.denials.learned import fit_learned_risk, score_predictions
from analytics.pipeline import evaluate
from analytics.scenarios import Session, common_session, compare

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def sample(sample_history):
    """The sample practice (read once per session, conftest) and its learned risk."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sample_history, learned_risk(sample_history)


def _observed(history, payer: str, cpt: str) -> tuple[int, int]:
    """Answered lines of a payer and code that the payer rules pass, and their denials, counted
    from the history's own columns (not through the learned-risk code)."""
    lines = history.lines
    pick = (lines["payer_id"].eq(payer) & lines["cpt"].eq(cpt) & lines["adjudicated"]
            & ~lines["engine_disposition"].astype(str).isin(["denied", "not_billed"]))
    denied = lines["denied"] | lines["partially_denied"]
    return int(pick.sum()), int((pick & denied).sum())


def test_sample_gold_ppo_97124_learned_chance_lies_in_the_observed_interval(sample):
    """Acceptance: on the sample, the chance of denial the scenarios page gives Gold PPO 97124
    (the period's most common session, priced with the learned risk) lies inside the 95%
    Jeffreys interval of that pair's observed denial rate, and the page's line says what it was
    learned from.

    The observed rate is that of the Gold PPO 97124 lines the payer rules pass: the rules engine
    gives the lines it denies (97124 bundled into 97140 without XS, which Gold PPO's contract
    requires) a chance of 1 on the same page, so the learned chance is the chance of the rest.
    """
    history, risk = sample
    n, k = _observed(history, "ppo_gold", "97124")
    assert n > 100 and k > 5
    lo, hi = stats.beta.ppf([0.025, 0.975], k + 0.5, n - k + 0.5)
    typical = common_session(history)
    session = Session.from_minutes(typical["minutes"], service_date=typical["service_date"],
                                   provider_type=typical["provider_type"],
                                   prescription_on_file=typical["prescription_on_file"])
    assert "97124" in session.codes
    table = compare(session, history.payers, payer_ids=["ppo_gold"], risk=risk).table
    line = table[(table["cpt"] == "97124") & (table["alternative"] == "97124 only")].iloc[0]
    assert lo <= line["p_deny"] <= hi, (line["p_deny"], lo, hi)
    assert line["p_deny_basis"] == f"learned from {n:,} Gold PPO 97124 lines, {k:,} denied"
    assert f"learned from {n:,} Gold PPO 97124 lines" in line["explanation"]


def test_basis_words_name_the_fallbacks(sample):
    history, risk = sample
    lines = pd.DataFrame({"payer_id": ["ppo_gold", "ppo_gold", "cash", "nobody"],
                          "cpt": ["97124", "97139", "97124", "97124"]})
    words = risk.basis_words(lines).tolist()
    assert words[0].startswith("learned from ") and "Gold PPO 97124" in words[0]
    assert words[1].endswith("no 97139 history")
    assert words[2] == "self-pay: nothing to deny"
    assert words[3] == "payer prior, no history"


def test_evaluate_carries_the_basis_of_every_chance(sample):
    history, risk = sample
    visit = pd.DataFrame({"patient_id": "p1", "service_date": pd.Timestamp("2026-02-02"), "provider_id": "PT1",
                          "provider_type": "pt", "payer_id": "ppo_gold", "cpt": ["97140", "97124", "97010"],
                          "minutes": [30, 30, np.nan], "modifiers": ["", "", ""]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = evaluate(visit, history.payers, denial_model=risk)
        plain = evaluate(visit, history.payers)
    basis = out["p_deny_basis"].astype(str).tolist()
    assert basis[0].startswith("learned from") and "Gold PPO 97140" in basis[0]
    assert basis[1] == basis[2] == "denied by an edit"  # bundled 97124, 97010 not covered
    assert plain["p_deny_basis"].astype(str).iloc[0] == "payer prior (policy denial_prior)"
    assert out["p_deny"].iloc[0] == pytest.approx(risk.predict_proba(out).iloc[0])


def test_time_validation_holds_out_the_last_months_and_beats_the_overall_rate(sample):
    _, risk = sample
    v = risk.validation
    assert v is not None and v.train_end < v.test_start
    assert v.test_end <= risk.end
    scores = v.scores.set_index("predictor")
    assert list(scores.index) == ["learned risk (model)", "practice's overall rate", "shrunk payer x code rates"]
    assert scores.loc["learned risk (model)", "brier"] < scores.loc["practice's overall rate", "brier"]
    assert scores.loc["practice's overall rate", "auc"] == pytest.approx(0.5)
    assert v.calibration["lines"].sum() == scores.loc["learned risk (model)", "lines"]


def test_thin_history_scores_with_shrunk_rates_and_says_so(sample):
    history, _ = sample
    thin = history.select(start="2025-03-01", end="2025-03-31", as_of="2025-04-10")
    risk = learned_risk(thin)
    assert risk.mode == "rates" and risk.model is None and risk.validation is None
    assert risk.denials < 20
    open_lines = worklist(thin, risk)
    assert len(open_lines) > 0
    learned = open_lines[open_lines["p_deny"] < 1]
    shrunk = learned["p_basis"].str.startswith("shrunk rate of")
    assert shrunk.any() and (shrunk | learned["p_basis"].eq("payer prior, no history")).all()
    assert learned.loc[shrunk, "p_basis"].str.endswith("(too few denials to fit the model)").all()
    card = dict(zip(risk.card()["figure"], risk.card()["value"], strict=True))
    assert card["Risk learned with"].startswith("shrunk payer x code rates")


def test_no_answer_at_all_uses_the_payer_priors(sample):
    history, _ = sample
    empty = history.select(as_of="2025-03-05")
    risk = learned_risk(empty)
    assert risk.mode == "prior" and risk.lines == 0
    p = risk.predict_proba(pd.DataFrame({"payer_id": ["ppo_gold", "cash"], "cpt": ["97124", "97124"]}))
    assert p.tolist() == [history.payers["ppo_gold"].denial_prior, 0.0]


def test_worklist_scores_every_open_line_without_patient_ids(sample):
    history, risk = sample
    frame = history_frame(history)
    open_lines = worklist(history, risk, frame=frame)
    insured = ~frame["self_pay"]
    expected = frame[insured & (~frame["submitted"] | ~frame["adjudicated"])]
    assert sorted(open_lines["line_id"]) == sorted(expected["line_id"])  # every open line, nothing dropped
    assert "patient_id" not in open_lines.columns
    assert not set(history.base["patient_id"].astype(str)) & set(open_lines.astype(str).stack())
    assert (np.diff(open_lines["dollars_at_risk"].to_numpy()) <= 1e-9).all()
    assert np.allclose(open_lines["dollars_at_risk"], (open_lines["p_deny"] * open_lines["value"]).round(2),
                       atol=0.011)
    rule = frame.set_index("line_id").loc[open_lines["line_id"], "disposition"].eq("denied").to_numpy()
    assert (open_lines.loc[rule, "p_deny"] == 1).all()
    assert (open_lines.loc[rule, "reason_1"] != "").all()
    unbilled = open_lines["status"] == "not billed yet"
    assert open_lines.loc[unbilled, "check"].str.contains("filing limit|bill now").all()


def test_calibration_bins_have_equal_counts_and_keep_ties_together():
    p = np.r_[np.full(150, 0.05), np.linspace(0.1, 0.5, 250)]
    y = np.zeros(400, dtype=bool)
    y[::5] = True
    t = calibration_table(p, y, bins=4, min_lines=100)
    assert t["lines"].sum() == 400
    assert t.loc[0, "bin"] == "5.0%-5.0%" and t.loc[0, "lines"] == 150  # the tied 5% lines in one bin
    assert all(t["observed_lo_95"] <= t["observed_rate"]) and all(t["observed_rate"] <= t["observed_hi_95"])


def test_scores_by_hand():
    # Brier = mean((p - y)^2) = ((0.2)^2 + (0.4)^2) / 2 = 0.1; log loss = -(ln 0.8 + ln 0.6) / 2
    s = score_predictions(np.array([0.2, 0.6]), np.array([False, True]))
    assert s["brier"] == pytest.approx(0.1)
    assert s["log_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    assert s["auc"] == 1.0


# --- acceptance on a synthetic practice with known truth -------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 30,000-visit practice (seed 29, used by no other test) written as files and read back
    the way a practice folder is: charge export, payers.yaml and 835 remittances."""
    from analytics.datasets import generate_practice

    folder = tmp_path_factory.mktemp("synthetic-29")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        practice = generate_practice(30_000, seed=29)
        practice.write(folder)
        history = kpis.load_history(folder)
    return practice, history, learned_risk(history)


@pytest.mark.slow
def test_worklist_top_decile_holds_the_denied_lines(synthetic):
    """Acceptance: the top 10% of the worklist by dollars at risk holds at least 2.5 times its
    share of the open lines the payers in fact deny (the generator's truth)."""
    practice, history, risk = synthetic
    open_lines = worklist(history, risk)
    truth = practice.truth.set_index("line_id")["denied"]
    denied = truth.reindex(open_lines["line_id"]).to_numpy(dtype=bool)
    assert len(open_lines) > 1000 and denied.sum() > 50
    top = np.arange(len(open_lines)) < int(np.ceil(0.10 * len(open_lines)))
    share = denied[top].sum() / denied.sum()
    assert share >= 2.5 * 0.10, share


@pytest.mark.slow
def test_calibration_on_held_out_months(synthetic):
    """Acceptance: on the held-out last months, every calibration bin of 100 lines or more has
    an observed denial rate within 0.03 of its mean predicted chance."""
    _, _, risk = synthetic
    cal = risk.validation.calibration
    big = cal[cal["lines"] >= 100]
    assert len(big) >= 5
    gap = (big["observed_rate"] - big["mean_predicted"]).abs()
    assert (gap <= 0.03).all(), big.assign(gap=gap).to_string()


def test_fit_learned_risk_names_missing_columns():
    from analytics.exceptions import InputError

    with pytest.raises(InputError, match="history_frame"):
        fit_learned_risk(pd.DataFrame({"payer_id": ["a"]}), {})


def test_learned_risk_is_read_from_the_selected_payers_only(sample):
    history, _ = sample
    gold = history.select(payers=["ppo_gold"])
    risk = learned_risk(gold, validate=False)
    assert set(risk.counts["payer_id"]) == {"ppo_gold"}
    assert dataclasses.is_dataclass(risk)
