"""The practice what-if priced once per visit shape gives the figures of pricing every visit.

:func:`~analytics.scenarios.practice_whatif` prices each visit's alternatives once per shape
(:mod:`analytics.scenarios.visit_shapes`) and checks the shapes against the lines as billed,
falling back to pricing every visit when they disagree. These tests pin the fast path to the
plain one (every visit priced on its own) on the sample practice and on generated visits that
sit on each side of the rules' thresholds, and the shape helpers to worked cases.

Known values: FACTS sec. 1.3 (conversion factors): the CY2024 factor changed on 2024-03-09
(32.7442 for Jan 1 - Mar 8, 33.2875 from Mar 9, Consolidated Appropriations Act 2024) and
each calendar year has its own; the sample payers (``data/sample/payers.yaml``): Silver HMO
pays 20 visits a year, workers' compensation authorises 6 visits without review, timely filing
is 90 / 180 / 365 days.
"""

from __future__ import annotations

import dataclasses
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.history import build_history
from analytics.refdata import load_reference
from analytics.scenarios import practice, practice_whatif
from analytics.scenarios.visit_shapes import (
    block_rows,
    combine,
    first_of_each,
    rule_date_classes,
    sequence_ids,
    visit_shapes,
)

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _plain(monkeypatch) -> None:
    """Price every visit's alternatives on its own (no shapes)."""
    monkeypatch.setattr(practice, "_alternatives_by_shape", lambda *a, **k: None)


def _count_plain_calls(monkeypatch) -> list:
    calls = []
    each = practice._alternatives_each

    def spy(*a, **k):
        calls.append(1)
        return each(*a, **k)

    monkeypatch.setattr(practice, "_alternatives_each", spy)
    return calls


def _assert_same(a, b) -> None:
    pd.testing.assert_frame_equal(a.by_payer, b.by_payer)
    pd.testing.assert_frame_equal(a.by_alternative, b.by_alternative)
    assert (a.months, a.visits) == (b.months, b.visits)


class _VisitRisk:
    """A chance of denial that reads what the shapes leave out (diagnoses, provider): each
    visit keeps its own chance, so a shape's alternatives must take each visit's."""

    def predict_proba(self, lines: pd.DataFrame) -> pd.Series:
        dx = lines["dx_codes"].astype(str).str.len().to_numpy()
        provider = lines["provider_id"].astype(str).str[-1].map(ord).to_numpy()
        return pd.Series((dx * 7 + provider) % 23 / 40.0, index=lines.index)


def _generated(seed: int = 7, visits: int = 1500):
    """Visits of five payers on both sides of each threshold: dates across the 2025/2026
    year (fee schedule, conversion factor, deductibles), visits before the year's around the
    HMO's 20-visit limit and the carrier's 6 visits before review, submissions 2 to 400 days
    after the service or none (timely filing), prescriptions and authorisations on file or
    not, modifiers with and without GP/59/XS, a region per line or a documentation flag,
    codes repeated in a visit; few values of each, so that many visits share a shape."""
    rng = np.random.default_rng(seed)

    def pick(options, p=None):
        return options[rng.choice(len(options), p=p)]

    providers = {"PT1": "pt", "PT2": "pt", "LMT1": "lmt", "DC1": "dc"}
    mixes = [["97124"], ["97124", "97140"], ["97110", "97140"], ["97010", "97124"], ["97112", "97140", "97124"],
             ["97124", "97124"], ["97010"]]
    # forty kinds of session (payer, provider, codes, minutes, modifiers), each seen many times
    kinds = [(pick(["medicare", "ppo_gold", "auto_pip", "workers_comp", "hmo_capped"]), pick(list(providers)),
              mix, [None if c == "97010" else pick([15, 30]) for c in mix],
              pick([["", ""], ["GP", "GP"], ["GP", "GP,59"], ["", "XS"], ["GP,XS", "GP"], [None, ""]]))
             for mix in (pick(mixes) for _ in range(40))]
    dates = pd.date_range("2025-12-10", "2026-01-20", freq="D")
    rows = []
    for v in range(visits):
        payer, provider, mix, minutes, mods = kinds[rng.integers(len(kinds))]
        date = pick(dates)
        late = pick([2, 2, 2, 2, 100, 200, 400, None])
        before = pick([0, 0, 0, 0, 5, 6, 19, 20, 25])
        rx, auth = bool(rng.random() < 0.9), bool(rng.random() < 0.9)
        regions = rng.random() < 0.1
        flag = pick(["", "", "", "", "true", "false"])
        for i, cpt in enumerate(mix):
            rows.append({
                "claim_id": f"C{v}", "line_id": f"C{v}-{i + 1}", "patient_id": f"P{v}", "service_date": date,
                "provider_id": provider, "provider_type": providers[provider], "payer_id": payer, "cpt": cpt,
                "minutes": minutes[i], "modifiers": mods[min(i, 1)], "charge": {"97010": 28.0}.get(cpt, 144.0),
                "submission_date": date + pd.Timedelta(days=late) if late is not None else pd.NaT,
                "visits_before": before, "prescription_on_file": rx, "prior_auth": auth,
                "dx_codes": pick(["M54.50", "M54.2,M62.830", "S13.4XXA"]),
                "body_region": ["neck", "back", "shoulder"][i % 3] if regions else "", "distinct_regions": flag,
            })
    rows = pd.DataFrame(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        h = build_history(rows.drop(columns=["body_region", "distinct_regions"]), None,
                          payers=SAMPLE / "payers.yaml", as_of="2026-02-28", salt="test")
    # the export's documentation columns, as a practice's mapping would carry them
    notes = rows.set_index("line_id")[["body_region", "distinct_regions"]]
    return dataclasses.replace(h, base=h.base.join(notes, on="line_id"))


@pytest.fixture(scope="module")
def generated():
    return _generated()


@pytest.mark.parametrize("risk", [None, _VisitRisk()], ids=["payer prior", "per-visit chance"])
def test_generated_visits_price_alike_by_shape_and_one_by_one(generated, risk, monkeypatch):
    calls = _count_plain_calls(monkeypatch)
    fast = practice_whatif(generated, risk)
    assert not calls, "the shapes disagreed with the lines as billed and every visit was priced"
    _plain(monkeypatch)
    _assert_same(fast, practice_whatif(generated, risk))
    assert calls


def test_generated_visits_share_shapes_yet_split_at_each_threshold(generated):
    """Many visits share a shape; visits either side of a threshold never do."""
    ref = load_reference()
    lines, visits = practice._visit_table(generated, ref)
    billed = practice._as_patients(practice._billed_lines(lines))
    starts = practice.visit_starts(lines)
    inputs = practice.rule_inputs(billed, starts, generated.payers, ref)
    shape = visit_shapes(starts, combine([inputs, billed["modifiers"]], len(inputs)))
    assert shape.max() + 1 < 0.6 * len(visits)
    first = billed.iloc[starts].assign(shape=shape)
    # the HMO's 20th visit of the year (19 before) is paid, the 21st (20 before) is not
    hmo = first[first["payer_id"] == "hmo_capped"]
    assert not set(hmo.loc[hmo["visits_before"] == 19, "shape"]) & set(hmo.loc[hmo["visits_before"] == 20, "shape"])
    # Gold PPO files within 180 days: 100 days late and 200 days late are priced apart
    ppo = first[first["payer_id"] == "ppo_gold"]
    days = (ppo["submission_date"] - ppo["service_date"]).dt.days
    assert not set(ppo.loc[days == 100, "shape"]) & set(ppo.loc[days == 200, "shape"])
    # the year changes the fee schedule: December and January visits never share a shape
    med = first[first["payer_id"] == "medicare"]
    year = med["service_date"].dt.year
    assert not set(med.loc[year == 2025, "shape"]) & set(med.loc[year == 2026, "shape"])


def test_sample_practice_prices_alike_by_shape_and_one_by_one(sample_history, monkeypatch):
    from analytics.denials import learned_risk

    risk = learned_risk(sample_history, validate=False)
    calls = _count_plain_calls(monkeypatch)
    fast = practice_whatif(sample_history, risk)
    assert not calls
    _plain(monkeypatch)
    _assert_same(fast, practice_whatif(sample_history, risk))


def test_shapes_that_lump_unlike_visits_fall_back_to_pricing_each(generated, monkeypatch):
    """A shape key that forgets what the rules read (here: everything but the modifiers) puts
    visits with different figures together; the check against the lines as billed sees it and
    every visit is priced on its own, with the plain path's figures."""
    plain = None
    with monkeypatch.context() as m:
        _plain(m)
        plain = practice_whatif(generated)
    calls = _count_plain_calls(monkeypatch)
    monkeypatch.setattr(practice, "rule_inputs", lambda frame, *a, **k: np.zeros(len(frame), dtype=np.int64))
    lumped = practice_whatif(generated)
    assert calls
    _assert_same(lumped, plain)


def test_visit_table_matches_its_definition(generated):
    """Mixes, region documentation and therapy modifiers, computed once per distinct value,
    equal the per-visit definitions: the codes sorted and joined; a region on every line, all
    different; the first of GP, GO, GN found in the modifiers."""
    lines, visits = practice._visit_table(generated, load_reference())
    mix = lines.groupby("visit")["cpt"].agg(lambda s: " + ".join(sorted(map(str, s))))
    assert visits.set_index("visit")["mix"].equals(mix.astype("str"))
    region = lines["body_region"].astype(str).str.strip().str.lower()
    full = region.groupby(lines["visit"].to_numpy()).agg(lambda s: bool((s != "").all() and s.nunique() == len(s)))
    flag = lines["distinct_regions"].astype(str).str.strip().str.lower()
    said = flag.isin(["true", "1", "yes", "y"]).groupby(lines["visit"].to_numpy()).any()
    said_not = flag.isin(["false", "0", "no", "n"]).groupby(lines["visit"].to_numpy()).any()
    expect = np.where(full | said, 1, np.where(said_not, 0, -1))
    assert visits["distinct_regions"].tolist() == expect.tolist()
    mods = lines["modifiers"].astype(str).str.upper()
    therapy = [next((m for m in ("GP", "GO", "GN") if isinstance(t, str) and m in t), "") for t in mods]
    assert lines["therapy_mod"].tolist() == therapy


def test_sequence_ids_number_equal_sequences_alike():
    starts = np.array([0, 2, 3, 5, 7])
    values = np.array([1, 2, 1, 1, 2, 1, 2, 1])
    # groups (1 2) (1) (1 2) (1 2) (1): a prefix is not the same sequence
    assert sequence_ids(starts, values).tolist() == [0, 1, 0, 0, 1]
    assert sequence_ids(np.array([0, 1]), np.array([3, 3, 3])).tolist() == [0, 1]


def test_block_rows_and_first_of_each():
    assert block_rows(np.array([4, 0, 9]), np.array([2, 0, 1])).tolist() == [4, 5, 9]
    assert first_of_each(np.array([0, 0, 1, 0, 2, 1])).tolist() == [0, 2, 4]


def test_date_classes_cut_at_the_conversion_factor_and_the_year():
    """CY2024's factor changed on 2024-03-09 (FACTS sec. 1.3): Mar 8 and Mar 9 differ; June and
    July 2025 share one factor and one year; Dec 31 and Jan 1 are different years."""
    days = pd.Series(pd.to_datetime(["2024-03-08", "2024-03-09", "2025-06-01", "2025-07-01", "2025-12-31",
                                     "2026-01-01", None]))
    c = rule_date_classes(days, ["97124", "97140"], load_reference())
    assert c[0] != c[1] and c[2] == c[3] == c[4] and c[4] != c[5] and len(set(c)) == 5  # and a missing date


def test_date_classes_cut_where_an_ncci_pair_starts_or_ends():
    """A pair effective 2025-04-01 and deleted 2025-10-01 cuts 2025 in three."""
    cf = pd.DataFrame({"effective_from": pd.to_datetime(["2025-01-01"]), "effective_to": pd.to_datetime(["2025-12-31"])})
    pairs = {"eff": np.array(["2025-04-01"], dtype="datetime64[ns]"), "dele": np.array(["2025-10-01"],
                                                                                         dtype="datetime64[ns]")}
    ref = types.SimpleNamespace(conversion_factors=cf, ncci_pairs_for=lambda codes: pairs)
    days = pd.Series(pd.to_datetime(["2025-03-31", "2025-04-01", "2025-09-30", "2025-10-01", "2025-12-31"]))
    c = rule_date_classes(days, ["97140", "97124"], ref).tolist()
    assert c[0] != c[1] and c[1] == c[2] and c[2] != c[3] and c[3] == c[4]
