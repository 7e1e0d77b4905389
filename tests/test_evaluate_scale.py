"""``evaluate`` at scale: the shortcuts for lines in date order, and a run's folder read back whole.

Exports come in date order, and a chunk of ten million lines has a few hundred days: the
engine then hashes its keys a day at a time, sorts 16 bits at a time, skips sort keys the
lines are already in order of, and marks a patient's days in a small table. Each shortcut
must give exactly what the general path gives; the tests switch the shortcuts off and
compare every column, categories and their order included.

A run writes one file per chunk and month. Each chunk codes its categoricals on its own, so
a column can have fewer than 128 categories in one chunk and more in another; the files must
still read back as one table (``pd.read_parquet(OUT)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import analytics._frame as _frame
import analytics.units as units
from analytics._frame import (
    LineKeys,
    cases,
    factorize_below,
    factorize_ints,
    put,
    put_rows,
    sort_order,
    sorted_unique,
)
from analytics.cli import main
from analytics.datasets import generate_practice
from analytics.grouping import GROUPINGS, group_ids
from analytics.intake import pseudonymise
from analytics.payers import load_payers
from analytics.pipeline import PARTITION_COLUMN, evaluate, evaluate_parquet
from analytics.pricing import to_cents

REPO = Path(__file__).resolve().parents[1]
PAYERS_YAML = REPO / "data" / "sample" / "payers.yaml"
PAYERS = load_payers(PAYERS_YAML)


@pytest.fixture(scope="module")
def dated_practice() -> pd.DataFrame:
    """A generated practice of about 12,800 lines, in date order as exports usually are."""
    lines = generate_practice(6000, seed=21, payers=PAYERS).lines
    return lines.sort_values("service_date", kind="stable").reset_index(drop=True)


@pytest.fixture(scope="module")
def dated_edge_cases() -> pd.DataFrame:
    """Visits in date order built to reach every rule: equal leftovers (ties settled by the
    payer's edits and by line id), NCCI pairs with and without modifiers, two providers and
    several payers per patient and day, visit limits, caps, deductibles, KX."""
    rng = np.random.default_rng(8)
    n_visits = 4000
    sizes = rng.integers(1, 6, n_visits)
    visit = np.repeat(np.arange(n_visits), sizes)
    n = len(visit)
    patient = rng.integers(0, 300, n_visits)[visit]
    day = np.sort(rng.integers(0, 400, n_visits))[visit]  # visits in date order
    codes = np.array(["97124", "97140", "97112", "97110", "97010", "97530"])
    payer_ids = np.array(sorted(PAYERS))
    lines = pd.DataFrame({
        "patient_id": pd.Series(patient).map("P{:03d}".format),
        "service_date": pd.Timestamp("2025-01-02") + pd.to_timedelta(day, unit="D"),
        "provider_id": np.array(["LMT1", "PT1"])[rng.integers(0, 2, n_visits)[visit]],
        "provider_type": np.array(["lmt", "pt", "pta"])[rng.integers(0, 3, n)],
        "payer_id": payer_ids[rng.integers(0, len(payer_ids), n_visits)[visit]],
        "cpt": codes[rng.integers(0, len(codes), n)],
        "minutes": rng.choice([7, 8, 10, 12, 15, 22, 23, 30, 38, 45], n).astype(float),
        "modifiers": np.array(["GP", "GP,59", "", "XS", "GP,KX", "CQ"])[rng.integers(0, 6, n)],
        "prescription_on_file": rng.random(n) < 0.9,
        "visits_before": rng.integers(0, 25, n),
        "charge": rng.choice([40.0, 60.0, 99.99], n),
        "line_id": pd.Series(rng.permutation(n)).map("L{:06d}".format),
    })
    lines.loc[lines["cpt"] == "97010", "minutes"] = np.nan
    return lines


def general_paths_only(monkeypatch) -> None:
    """Switch off every shortcut for lines in date order."""
    monkeypatch.setattr(_frame, "_HASH_ROWS", 1 << 40)  # no hashing day by day
    monkeypatch.setattr(_frame, "_RADIX_ROWS", 1 << 40)  # no radix sort
    monkeypatch.setattr(_frame, "_ordered_prefix", lambda keys: 0)  # sort on every key
    # groupings from every line's columns, not from the first line of each visit
    monkeypatch.setattr(_frame.LineKeys, "one_payer_per_visit", property(lambda keys: False))

    def through_groups(keys, rows):
        group = units.group_ids(keys, "patient_day", payer=False)
        return np.flatnonzero(np.isin(group, np.unique(group[rows])))

    monkeypatch.setattr(units, "_same_patient_day", through_groups)


def assert_same_frame(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    assert_frame_equal(got, expected, check_exact=True)
    for col in expected.columns:  # categoricals: the same categories in the same order
        if isinstance(expected[col].dtype, pd.CategoricalDtype):
            assert list(got[col].cat.categories) == list(expected[col].cat.categories), col


@pytest.mark.filterwarnings("ignore::analytics.exceptions.UnpricedCodeWarning")
@pytest.mark.parametrize("which", ["dated_practice", "dated_edge_cases"])
def test_shortcuts_for_lines_in_date_order_give_the_figures_of_the_general_paths(which, request, monkeypatch):
    lines = request.getfixturevalue(which)
    days = lines["service_date"].to_numpy()
    assert (days[1:] >= days[:-1]).all()
    # the thresholds of a million-line chunk, scaled to these lines: every shortcut is taken
    monkeypatch.setattr(_frame, "_HASH_ROWS", 64)
    monkeypatch.setattr(_frame, "_RADIX_ROWS", 256)
    fast = evaluate(lines, PAYERS)
    general_paths_only(monkeypatch)
    assert_same_frame(evaluate(lines, PAYERS), fast)


@pytest.mark.parametrize("which", ["dated_practice", "dated_edge_cases"])
def test_groupings_found_per_visit_are_those_of_every_line(which, request, monkeypatch):
    """``patient_day`` and ``discipline`` found on each visit's first line: the same ids, in the
    same order, as grouping every line by its columns; a visit billed to two payers (a line
    moved to another payer here) takes the general path and still groups by payer."""
    lines = request.getfixturevalue(which)
    mixed = lines.assign(payer_id=lines["payer_id"].where(lines.index != 1, "cash"))
    for frame in (lines, mixed):
        fast = {(g, p): group_ids(LineKeys(frame), g, payer=p) for g in GROUPINGS for p in (True, False)}
        if frame is mixed or which == "dated_practice":  # the generator bills each visit to one payer
            assert LineKeys(frame).one_payer_per_visit == (frame is lines)
        monkeypatch.setattr(_frame.LineKeys, "one_payer_per_visit", property(lambda keys: False))
        for (g, p), ids in fast.items():
            assert np.array_equal(ids, group_ids(LineKeys(frame), g, payer=p)), (g, p)
        monkeypatch.undo()


def _category_counts(files: list[Path], column: str) -> set[int]:
    return {len(pq.read_table(f, columns=[column]).column(0).chunk(0).dictionary) for f in files}


def test_a_run_whose_chunks_have_few_and_many_categories_reads_back_as_one_table(tmp_path):
    """A practice of 232 patients in chunks of about 300 lines: ``units_reason`` has fewer than
    128 texts in some chunks and more in others (8- and 16-bit dictionary indices before the
    fix, and ``pd.read_parquet`` of the folder failed)."""
    lines = generate_practice(2000, seed=3, payers=PAYERS).lines
    src = tmp_path / "lines.parquet"
    lines.to_parquet(src, index=False)
    out = tmp_path / "out"
    assert main(["evaluate", "--lines", str(src), "--payers", str(PAYERS_YAML), "--out", str(out),
                 "--chunk-lines", "300", "--workers", "2"]) == 0
    files = sorted(out.rglob("*.parquet"))
    counts = _category_counts(files, "units_reason")
    assert min(counts) < 128 <= max(counts)  # the case of the report
    for f in files:
        for field in pq.read_schema(f):
            if pa.types.is_dictionary(field.type):
                assert field.type.index_type == pa.int32(), (f, field.name)
    got = pd.read_parquet(out)  # the whole folder, every chunk and month
    assert len(got) == len(lines)
    expected = evaluate(lines, PAYERS)
    expected = expected.assign(patient_id=pseudonymise(expected[["patient_id"]])["patient_id"].to_numpy())
    a = expected.sort_values("line_id").reset_index(drop=True)
    b = got.drop(columns=PARTITION_COLUMN).sort_values("line_id").reset_index(drop=True)
    for col in ("patient_id", "cpt", "units", "units_reason", "disposition", "edit_reason", "allowed",
                "price_basis", "patient_part", "payer_paid", "expected"):
        x, y = a[col], b[col]
        if isinstance(x.dtype, pd.CategoricalDtype) or x.dtype == object or pd.api.types.is_string_dtype(x):
            x, y = x.astype(str), y.astype(str)
        assert (x.to_numpy() == y.to_numpy()).all(), col


def test_a_few_patients_in_many_small_chunks_read_back_whole(tmp_path):
    lines = generate_practice(60, seed=4, payers=PAYERS).lines
    src = tmp_path / "lines.parquet"
    lines.to_parquet(src, index=False)
    run = evaluate_parquet(src, tmp_path / "out", PAYERS, workers=1, chunk_lines=40)
    got = pd.read_parquet(tmp_path / "out").sort_values("line_id").reset_index(drop=True)
    expected = evaluate(lines, PAYERS).sort_values("line_id").reset_index(drop=True)
    assert run.chunks > 1 and run.lines_out == len(got) == len(lines)
    for col in ("units", "allowed", "expected"):
        assert got[col].tolist() == expected[col].tolist(), col


# --- the kernels the shortcuts rest on ------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 40)), min_size=0, max_size=300))
def test_factorize_ints_by_blocks_is_pd_factorize(pairs):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(_frame, "_HASH_ROWS", 4)  # small blocks on small arrays
    try:
        pairs = sorted(pairs, key=lambda p: p[0])  # the block (a day) in order, the rest in any order
        day = np.array([p[0] for p in pairs], dtype=np.int64)
        key = day * 1000 + np.array([p[1] for p in pairs], dtype=np.int64)
        expected = pd.factorize(key)[0]
        assert (factorize_ints(key, day) == expected).all()
        assert (factorize_ints(key) == expected).all()
    finally:
        monkeypatch.undo()


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_sort_order_is_lexsort_with_rows_partly_in_order(data):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(_frame, "_RADIX_ROWS", 1)  # radix sort and ordered prefixes on small arrays
    try:
        n = data.draw(st.integers(0, 200))
        spans = data.draw(st.lists(st.sampled_from([1, 2, 7, 300, 70_000, 2**20]), min_size=1, max_size=4))
        keys = [np.array(data.draw(st.lists(st.integers(-3, s), min_size=n, max_size=n)), dtype=np.int64)
                for s in spans]
        in_order = data.draw(st.integers(0, len(keys)))  # the rows already in order of the first keys
        if in_order and n:
            o = np.lexsort(keys[:in_order])
            keys = [k[o] if i < in_order else k for i, k in enumerate(keys)]
        assert (sort_order(*keys) == np.lexsort(keys)).all()
    finally:
        monkeypatch.undo()


@given(st.lists(st.integers(0, 50), max_size=400), st.integers(51, 80))
def test_factorize_below_is_pd_factorize(values, size):
    v = np.array(values, dtype=np.int32)
    codes, used = factorize_below(v, size)
    expected_codes, expected_used = pd.factorize(v)
    assert codes.tolist() == expected_codes.tolist() and used.tolist() == expected_used.tolist()


@given(st.lists(st.integers(-5000, 5000), max_size=300))
def test_sorted_unique_is_np_unique(values):
    v = np.array(values, dtype=np.int64)
    assert sorted_unique(v).tolist() == np.unique(v).tolist()


def test_put_appends_new_values_in_order_of_first_appearance_and_keeps_the_rest():
    col = pd.Series(pd.Categorical(["a", "b", "a", "c", "b"]), index=[10, 11, 12, 13, 14], name="x")
    mask = np.array([False, True, True, False, True])
    got = put(col, mask, np.array(["q", "a", "y", "q", "z"], dtype=object))
    assert got.tolist() == ["a", "a", "y", "c", "z"]
    assert list(got.cat.categories) == ["a", "b", "c", "y", "z"]  # b is no longer used but stays
    assert got.index.tolist() == [10, 11, 12, 13, 14] and got.name == "x"
    scalar = put_rows(col, np.array([0, 3]), "new")
    assert scalar.tolist() == ["new", "b", "a", "new", "b"] and list(scalar.cat.categories) == ["a", "b", "c", "new"]
    assert col.tolist() == ["a", "b", "a", "c", "b"]  # the input is not changed
    plain = put(pd.Series(["p", "q"]), np.array([True, False]), "q")
    assert plain.tolist() == ["q", "q"] and list(plain.cat.categories) == ["p", "q"]


def test_to_cents_rounds_half_up_to_the_cent():
    """Half a cent rounds up, as CMS rounds fee schedule amounts (a binary float just below
    the half, such as 2.675, still rounds up: the one-ten-millionth nudge)."""
    x = np.array([2.675, -2.675, 1.005, 0.004999, 28.785, -0.0, 0.0, np.nan])
    got = to_cents(x)
    assert got[:5].tolist() == [2.68, -2.68, 1.01, 0.0, 28.79]
    assert np.isnan(got[-1]) and to_cents(1.005) == 1.01


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_cases_are_the_distinct_rows_with_the_rows_outside_where_as_one(data):
    n = data.draw(st.integers(1, 120))
    spans = data.draw(st.lists(st.sampled_from([0, 1, 3, 40]), min_size=1, max_size=5))  # 0: one value
    columns = [np.array(data.draw(st.lists(st.integers(0, s), min_size=n, max_size=n)), dtype=np.int64)
               for s in spans]
    columns.append(np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n))))
    where = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n))) if data.draw(st.booleans()) else None
    case, row = cases(columns, where=where)
    frame = pd.DataFrame({i: c for i, c in enumerate(columns)})
    if where is not None:
        frame = frame.where(pd.Series(where), -1).assign(inside=where)
    expected = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    # the same partition of the rows, and each case's row one of its own
    assert len(np.unique(case)) == len(row) == len(np.unique(expected))
    assert len(np.unique(case * (expected.max() + 1) + expected)) == len(row)
    assert np.array_equal(case[row], np.arange(len(row)))
