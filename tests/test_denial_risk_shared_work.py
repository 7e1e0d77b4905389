"""The denial-risk page does each piece of work once: the model's features built for the fit are
lent to the validation by time and to the worklist, the worklist scores the open lines only, and
its counts run on integer codes (analytics/denials/learned.py, model.py, worklist.py).

Each shortcut is checked against the plain computation it replaces, written out here as it
reads in pandas: scoring every line of a copy of the history with features built afresh, the
visit count by merge, the average allowed grouped on the payer and code texts, a number
formatted line by line. Inputs: the sample practice and a generated one with the awkward cases
(several providers on one day, a year boundary, codes that read the same as text, missing ids).
"""

from __future__ import annotations

import dataclasses
import gc
import pickle
import types
import warnings

import numpy as np
import pandas as pd
import pytest

from analytics.datasets import generate_practice
from analytics.denials import fit_learned_risk, history_frame, worklist
from analytics.denials.design import learn_levels
from analytics.denials.learned import _learnable, _months, _test_months, _validate
from analytics.denials.worklist import (
    _formatted,
    _value_at_stake,
    visit_numbers,
)
from analytics.privacy import Identifiers, mask_names_in_ids


def _generated_frame(visits: int, seed: int) -> tuple[pd.DataFrame, dict, pd.Timestamp]:
    """A generated practice's lines in the shape of :func:`history_frame`, its payers and as-of date."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        practice = generate_practice(visits, seed=seed)
    a = practice.adjudicated
    cash = [p for p, pol in practice.payers.items() if pol.kind == "cash"]
    frame = a[["line_id", "claim_id", "patient_id", "service_date", "provider_id", "provider_type", "payer_id",
               "cpt", "minutes", "modifiers", "dx_codes", "prescription_on_file", "prior_auth", "visits_before",
               "submission_date", "units", "charge", "edit_reason"]].copy()
    for c in ("payer_id", "provider_type", "provider_id", "patient_id"):
        frame[c] = frame[c].astype(str)
    frame["disposition"] = a["disposition"].astype(str).to_numpy()
    frame["self_pay"] = a["payer_id"].astype(str).isin(cash).to_numpy()
    frame["submitted"] = a["submitted"].to_numpy(dtype=bool)
    frame["adjudicated"] = a["adjudicated"].to_numpy(dtype=bool)
    frame["denied"] = a["denied"].to_numpy(dtype=bool) & frame["adjudicated"].to_numpy()
    frame["contract_expected"] = a["allowed"].to_numpy(dtype=float)
    frame["allowed"] = a["remit_allowed"].to_numpy(dtype=float)
    frame["submission_date"] = pd.to_datetime(frame["submission_date"]).where(frame["submitted"].to_numpy())
    return frame.reset_index(drop=True), practice.payers, pd.Timestamp(a["service_date"].max()) + pd.Timedelta(days=20)


@pytest.fixture(scope="module")
def sample(sample_history):
    """The sample practice's lines, as the page reads them, and the risk fitted on them."""
    lines = history_frame(sample_history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sample_history, lines, fit_learned_risk(lines, sample_history.payers)


@pytest.fixture(scope="module")
def generated():
    """A generated practice (seed 11) as a history frame, its risk, and a history-like object."""
    frame, payers, as_of = _generated_frame(2500, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        risk = fit_learned_risk(frame, payers)
    return types.SimpleNamespace(payers=payers, as_of=as_of, files=()), frame, risk


def _scored_the_plain_way(history, frame, risk) -> tuple[np.ndarray, pd.DataFrame]:
    """Every line of a copy of the frame scored with features built afresh (unbilled lines as if
    sent on the as-of date), and the rows of the open lines."""
    billed = frame["submitted"].to_numpy(dtype=bool)
    open_ = ~frame["self_pay"].to_numpy(dtype=bool) & (~billed | ~frame["adjudicated"].to_numpy(dtype=bool))
    scoring = frame.copy()
    sub, svc = pd.to_datetime(scoring["submission_date"]), pd.to_datetime(scoring["service_date"])
    scoring["submission_date"] = sub.where(billed, svc.clip(lower=history.as_of))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.flatnonzero(open_), risk.scored(scoring, top=2)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["sample", "generated"])
def test_open_lines_scored_with_the_fits_features_as_every_line_scored_afresh(which, request):
    history, frame, risk = request.getfixturevalue(which)
    assert risk.mode == "model"
    assert risk.line_features(frame) is risk.fitted.features  # the fit's features, not built again
    assert risk.line_features(frame.copy()) is not risk.fitted.features  # another frame: built for it
    rows, plain = _scored_the_plain_way(history, frame, risk)
    assert len(rows) > 50
    f = frame.iloc[rows]
    billed = f["submitted"].to_numpy(dtype=bool)
    sub = pd.to_datetime(f["submission_date"])
    feats = risk.model.with_submission_dates(risk.line_features(frame).take(rows), f,
                                             sub.where(billed, pd.to_datetime(f["service_date"]).clip(
                                                 lower=history.as_of)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = risk.scored(f, top=2, features=feats)
    pd.testing.assert_frame_equal(got, plain.iloc[rows], check_exact=True)
    # the filing delay of a line not sent yet counts to the as-of date: some chances move
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        as_own = risk.scored(f, top=2, features=risk.line_features(frame).take(rows))
    assert not np.array_equal(as_own["p_deny"].to_numpy(), got["p_deny"].to_numpy())


@pytest.mark.slow
@pytest.mark.parametrize("which", ["sample", "generated"])
def test_worklist_the_same_whether_the_features_are_lent_or_built(which, request):
    history, frame, risk = request.getfixturevalue(which)
    lent = worklist(history, risk, frame=frame)
    built = worklist(history, risk, frame=frame.copy())
    assert len(lent) > 50
    pd.testing.assert_frame_equal(lent, built, check_exact=True)


@pytest.mark.slow
def test_the_validation_reads_the_fits_features_and_scores_as_before(sample):
    """The validation by time fitted with the shared features gives the figures of a risk that
    builds its own (no validation features passed down), to the last bit."""
    history, frame, risk = sample
    learn = _learnable(frame, history.payers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, _ = _validate(frame, frame["denied"].to_numpy(dtype=bool), learn, history.payers,
                             risk.min_denials, 200)
    shared = risk.validation
    pd.testing.assert_frame_equal(shared.scores, plain.scores, check_exact=True)
    pd.testing.assert_frame_equal(shared.calibration, plain.calibration, check_exact=True)
    assert (shared.train_start, shared.test_end, shared.train_lines) == (plain.train_start, plain.test_end,
                                                                         plain.train_lines)


def _months_the_plain_way(dates: np.ndarray, mask: np.ndarray):
    months = pd.PeriodIndex(dates[mask], freq="M").unique().sort_values()
    if len(months) < 4:
        return None, None
    test = months[-max(1, min(3, len(months) // 4)):]
    return test, np.asarray(pd.PeriodIndex(dates, freq="M").isin(test), dtype=bool)


@pytest.mark.parametrize("months", [3, 4, 7, 13, 30])
def test_months_held_out_are_the_last_ones_as_periods_count_them(months):
    rng = np.random.default_rng(months)
    dates = (np.datetime64("2024-11-20") + rng.integers(0, 31 * months, 4000).astype("timedelta64[D]"))
    mask = rng.random(4000) < 0.8
    frame = pd.DataFrame({"service_date": dates})
    want, held = _months_the_plain_way(dates, mask)
    got = _test_months(frame, mask)
    if want is None:
        assert got is None
        return
    assert [str(p) for p in want] == [str(np.datetime64(int(m), "M")) for m in got]
    assert np.array_equal(np.isin(_months(dates), got), held)


def _visit_numbers_the_plain_way(frame: pd.DataFrame) -> np.ndarray:
    """Distinct (patient, payer, year, date, provider) sorted as texts, counted, merged back."""
    date = pd.to_datetime(frame["service_date"])
    keys = pd.DataFrame({"patient": frame["patient_id"].astype(str).to_numpy(),
                         "payer": frame["payer_id"].astype(str).to_numpy(),
                         "year": date.dt.year.to_numpy(), "date": date.to_numpy(),
                         "provider": frame["provider_id"].astype(str).to_numpy()})
    visits = keys.drop_duplicates().sort_values(["patient", "payer", "year", "date", "provider"], kind="stable")
    visits["number"] = visits.groupby(["patient", "payer", "year"], sort=False).cumcount() + 1
    number = keys.merge(visits, on=list(keys.columns), how="left")["number"].to_numpy(dtype=np.int64)
    before = pd.to_numeric(frame["visits_before"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    return number + before


@pytest.mark.slow
def test_visit_numbers_count_as_the_plain_merge_does_on_the_practices(sample, generated):
    for frame in (sample[1], generated[1]):
        assert np.array_equal(visit_numbers(frame), _visit_numbers_the_plain_way(frame))


def test_visit_numbers_count_as_the_plain_merge_does():
    # the awkward cases: two providers on one day (P10 sorts before P9 as text), ids that read
    # the same as text (7 and "7"), a year boundary, visits before the data missing
    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame({
        "patient_id": pd.Series(rng.choice([7, "7", "A", "b", "C1"], n), dtype=object),
        "payer_id": rng.choice(["x", "y"], n),
        "provider_id": rng.choice(["P9", "P10", "P1"], n),
        "service_date": np.datetime64("2025-12-20") + rng.integers(0, 25, n).astype("timedelta64[D]"),
        "visits_before": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 4, n)),
    })
    want = _visit_numbers_the_plain_way(frame)
    assert np.array_equal(visit_numbers(frame), want)
    assert want.max() > 10  # the case is not trivial: long runs of visits in a year


def _value_the_plain_way(frame: pd.DataFrame, rows: np.ndarray):
    expected = frame["contract_expected"].to_numpy(dtype=float)[rows]
    paid = (frame["adjudicated"].to_numpy(dtype=bool) & ~frame["denied"].to_numpy(dtype=bool)
            & (frame["allowed"].to_numpy(dtype=float) > 0))
    typical = (pd.DataFrame({"payer_id": frame["payer_id"].astype(str).to_numpy()[paid],
                             "cpt": frame["cpt"].astype(str).to_numpy()[paid],
                             "allowed": frame["allowed"].to_numpy(dtype=float)[paid]})
               .groupby(["payer_id", "cpt"])["allowed"].agg(["mean", "size"]))
    key = pd.MultiIndex.from_arrays([frame["payer_id"].astype(str).to_numpy()[rows],
                                     frame["cpt"].astype(str).to_numpy()[rows]])
    mean = typical["mean"].reindex(key).to_numpy(dtype=float)
    size = typical["size"].reindex(key).fillna(0).to_numpy(dtype=np.int64)
    charge = frame["charge"].to_numpy(dtype=float)[rows]
    has_contract, has_typical = np.isfinite(expected) & (expected > 0), np.isfinite(mean) & (mean > 0)
    value = np.where(has_contract, expected, np.where(has_typical, mean, charge))
    basis = np.where(has_contract, "contract amount",
                     np.where(has_typical, "average allowed of " + pd.Series(size).map("{:,}".format).to_numpy(
                         dtype=object) + " paid lines", "the charge (no contract amount or paid history)"))
    return np.round(np.nan_to_num(value), 2), basis.astype(object)


@pytest.mark.slow
def test_value_at_stake_as_grouping_the_payer_and_code_texts_on_the_practices(sample, generated):
    for frame in (sample[1], generated[1]):
        rows = np.flatnonzero(~frame["adjudicated"].to_numpy(dtype=bool))
        got, want = _value_at_stake(frame, rows), _value_the_plain_way(frame, rows)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_value_at_stake_as_grouping_the_payer_and_code_texts():
    # codes that read the same as text (97110 and "97110") are one group; no contract amount
    rng = np.random.default_rng(8)
    n = 2000
    frame = pd.DataFrame({
        "payer_id": rng.choice(["a", "b", "c"], n),
        "cpt": pd.Series(rng.choice([97110, "97110", "97140", "97124"], n), dtype=object),
        "adjudicated": rng.random(n) < 0.7, "denied": rng.random(n) < 0.2,
        "allowed": np.round(rng.uniform(0, 120, n), 2), "charge": 150.0,
        "contract_expected": np.where(rng.random(n) < 0.5, np.nan, 80.0),
    })
    rows = np.flatnonzero(rng.random(n) < 0.3)
    got, want = _value_at_stake(frame, rows), _value_the_plain_way(frame, rows)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert any("average allowed" in b for b in got[1])


def test_numbers_formatted_once_per_value_read_as_each_line():
    values = np.array([0.0, -0.0, np.nan, 1234.5, 1234.5, -3.0, 1e6])
    fmt = lambda v: f"{v:,.0f}"  # noqa: E731
    assert _formatted(values, fmt).tolist() == [fmt(v) for v in values.tolist()]
    ints = np.array([5, 5, 1200, -1], dtype=np.int64)
    assert _formatted(ints, "{:,.0f}".format).tolist() == ["5", "5", "1,200", "-1"]
    assert _formatted(np.zeros(0), fmt).tolist() == []


def test_claim_numbers_whose_letters_stand_alone_hold_no_name(monkeypatch):
    """The guard reads names as words of two letters or more: a number like C048172 can hold none,
    so a page's claim numbers are masked without reading the inputs for names (every caller of
    ``kpis.mask_claim_ids``: the worklist, the claims to appeal)."""
    from analytics import kpis

    found = Identifiers()
    found.add_names(["Ng, Li", "C Smith", "Al Bo Xu", "Q, Ed"])
    plain = pd.Series(["C048172", "C000001-2", "X-1-Y", "A1B2C3", None])
    assert mask_names_in_ids(plain, found).equals(plain)
    named = pd.Series(["NG-0423", "C000001"])
    assert mask_names_in_ids(named, found).tolist() == ["**-0423", "C000001"]
    reads = []

    def identifiers(history):
        reads.append(history)
        return found

    monkeypatch.setattr(kpis, "input_identifiers", identifiers)
    frame = pd.DataFrame({"claim_id": plain})
    assert kpis.mask_claim_ids("history", frame) is frame and reads == []
    assert kpis.mask_claim_ids("history", pd.DataFrame({"claim_id": named}))["claim_id"].tolist() == [
        "**-0423", "C000001"]
    both = pd.DataFrame({"claim_id": plain, "payer_claim_id": ["PCN-ED"] * 5})
    kpis.mask_claim_ids("history", both)
    assert len(reads) == 2


@pytest.mark.slow
def test_levels_counted_as_sorting_the_codes_finds_them(generated):
    _, frame, risk = generated
    feats = risk.line_features(frame).take(np.flatnonzero(frame["adjudicated"].to_numpy()))
    levels, with_codes = learn_levels(feats)
    for name, (codes, labels) in feats.cats.items():
        assert levels[name].tolist() == sorted(set(labels[np.unique(codes)].astype(str)))
    assert with_codes == sorted(feats.with_codes)


@pytest.mark.slow
def test_payer_counts_of_the_fit_as_counting_the_payer_ids(generated):
    _, frame, risk = generated
    m = risk.model
    learned = frame[frame["adjudicated"] & ~frame["self_pay"] & ~frame["disposition"].isin(["denied", "not_billed"])]
    want = learned.groupby("payer_id")["denied"].agg(["size", "sum"])
    assert m.payer_counts_.index.tolist() == want.index.tolist()
    assert m.payer_counts_["lines"].tolist() == want["size"].tolist()
    assert m.payer_counts_["denied"].tolist() == want["sum"].tolist()


@pytest.mark.slow
def test_the_fits_features_are_those_built_afresh_and_not_copied(sample):
    _, frame, risk = sample
    assert pickle.loads(pickle.dumps(risk.fitted)) is None  # a copy builds its own
    afresh = dataclasses.replace(risk, fitted=None).line_features(frame)
    kept = risk.line_features(frame)
    assert afresh is not kept
    for name, (codes, labels) in kept.cats.items():
        assert np.array_equal(afresh.cats[name][0], codes) and afresh.cats[name][1].tolist() == labels.tolist()
    for group in ("flags", "with_codes"):
        mine, theirs = getattr(kept, group), getattr(afresh, group)
        assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)


@pytest.mark.slow
def test_the_features_are_let_go_with_the_frame(generated):
    """A risk kept after its lines are gone (as the explorer keeps one) holds no features."""
    history, frame, _ = generated
    lines = frame.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        risk = fit_learned_risk(lines, history.payers, validate=False)
    assert risk.fitted.features is not None and risk.line_features(lines) is risk.fitted.features
    del lines
    gc.collect()
    assert risk.fitted.features is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert risk.predict_proba(frame).between(0, 1).all()
