"""Units: the CMS 8-minute rule and the AMA midpoint rule, against their public examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.exceptions import MinutesError, UnknownCodeError
from analytics.units import compute_units


def visit(*services, patient="p1", date="2025-03-03", provider="pt1"):
    return pd.DataFrame({
        "patient_id": patient, "service_date": pd.Timestamp(date), "provider_id": provider,
        "cpt": [c for c, _ in services], "minutes": [m for _, m in services],
    })


def units_of(df, method):
    out = compute_units(df, method)
    return dict(zip(out["cpt"], out["units"], strict=True))


# Medicare Claims Processing Manual, Pub. 100-04, ch. 5, sec. 20.2 (FACTS 3.1)
def test_cms_manual_example_1():
    assert units_of(visit(("97112", 24), ("97110", 23)), "cms") == {"97112": 2, "97110": 1}


def test_cms_manual_example_2_never_three_units_of_one_code():
    u = units_of(visit(("97112", 20), ("97110", 20)), "cms")
    assert sum(u.values()) == 3 and sorted(u.values()) == [1, 2]


def test_cms_manual_example_3_leftover_minutes_win():
    assert units_of(visit(("97110", 33), ("97140", 7)), "cms") == {"97110": 2, "97140": 1}


def test_cms_manual_example_4_smallest_leftover_gets_none():
    u = units_of(visit(("97110", 18), ("97140", 13), ("97116", 10), ("97035", 8)), "cms")
    assert u == {"97110": 1, "97140": 1, "97116": 1, "97035": 0}


def test_cms_several_short_services_bill_one_unit():
    u = units_of(visit(("97112", 7), ("97110", 7), ("97140", 7)), "cms")
    assert sum(u.values()) == 1


def test_cms_single_service_under_eight_minutes_is_not_billed():
    out = compute_units(visit(("97140", 7)), "cms")
    assert out["units"].tolist() == [0]
    assert "under 8" in out["units_reason"].iloc[0]


# FACTS 3.2: the sessions where the two methods differ
@pytest.mark.parametrize("services, cms, ama", [
    ((("97110", 10), ("97140", 10), ("97112", 10)), 2, 3),
    ((("97140", 7), ("97124", 7)), 1, 0),
    ((("97110", 33), ("97140", 7)), 3, 2),
])
def test_cms_versus_ama(services, cms, ama):
    df = visit(*services)
    assert compute_units(df, "cms")["units"].sum() == cms
    assert compute_units(df, "ama")["units"].sum() == ama


def test_ama_per_code_sums_minutes_of_the_same_code():
    # two regions of 97140, 10 minutes each: one code with 20 minutes -> 1 unit under AMA
    out = compute_units(visit(("97140", 10), ("97140", 10)), "ama")
    assert out["units"].sum() == 1


def test_untimed_codes_bill_one_unit_and_add_no_minutes():
    out = compute_units(visit(("97140", 20), ("97010", 15)), "cms")
    assert dict(zip(out["cpt"], out["units"], strict=True)) == {"97140": 1, "97010": 1}
    assert out.loc[out["cpt"] == "97140", "visit_timed_minutes"].item() == 20
    assert out.loc[out["cpt"] == "97010", "units_reason"].item().startswith("untimed")


def test_untimed_code_without_minutes_is_fine():
    out = compute_units(visit(("97140", 30), ("97010", None)), "cms")
    assert out["units"].tolist() == [2, 1]


def test_every_line_has_a_reason():
    out = compute_units(visit(("97110", 33), ("97140", 7)), "cms")
    assert out["units_reason"].str.contains("40 timed minutes").all()


def test_many_visits_at_once_and_method_per_line():
    a = visit(("97110", 33), ("97140", 7), patient="a")
    b = visit(("97110", 33), ("97140", 7), patient="b")
    df = pd.concat([a, b], ignore_index=True)
    method = pd.Series(["cms", "cms", "ama", "ama"])
    out = compute_units(df, method)
    assert out["units"].tolist() == [2, 1, 2, 0]


def test_custom_visit_columns():
    df = visit(("97110", 33), ("97140", 7)).rename(columns={"patient_id": "member"})
    out = compute_units(df, "cms", visit_keys=("member", "service_date", "provider_id"))
    assert out["units"].sum() == 3


@pytest.mark.parametrize("minutes, match", [
    (-5, "negative minutes"), ("ten", "not a number"), (None, "no minutes for timed code 97140"),
])
def test_bad_minutes_name_the_row(minutes, match):
    df = visit(("97110", 20), ("97140", minutes))
    with pytest.raises(MinutesError, match=match) as err:
        compute_units(df, "cms")
    assert "rows 1" in str(err.value)
    assert err.value.rows.index.tolist() == [1]


def test_unknown_code_names_it():
    with pytest.raises(UnknownCodeError, match="99999"):
        compute_units(visit(("99999", 20)), "cms")


timed_codes = st.sampled_from(["97110", "97112", "97124", "97140", "97530"])
services = st.lists(st.tuples(timed_codes, st.integers(0, 70)), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(services, st.randoms(use_true_random=False))
def test_properties(svc, rnd):
    df = visit(*svc)
    t = sum(m for _, m in svc)
    out = compute_units(df, "cms")
    # CMS total units never exceed what the total timed minutes support
    assert out["units"].sum() == ((t + 7) // 15 if t >= 8 else 0)
    # no line gets more units than its own minutes could, rounded up
    assert (out["units"] <= (out["minutes"] + 14) // 15).all()
    # AMA: each code on its own
    ama = compute_units(df, "ama")
    per_code = df.groupby("cpt")["minutes"].sum()
    expect = sum((m + 7) // 15 if m >= 8 else 0 for m in per_code)
    assert ama["units"].sum() == expect
    # shuffling rows changes nothing per code
    order = list(range(len(df)))
    rnd.shuffle(order)
    shuffled = compute_units(df.iloc[order], "cms")
    pd.testing.assert_series_equal(
        out.groupby("cpt")["units"].sum(), shuffled.groupby("cpt")["units"].sum())
    assert np.array_equal(shuffled.sort_index()["units"].groupby(df["cpt"]).sum().to_numpy(),
                          out["units"].groupby(df["cpt"]).sum().to_numpy())
