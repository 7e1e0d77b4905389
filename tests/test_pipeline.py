"""The pipeline at scale: partition independence, Parquet in and out, and the shared line keys.

Every rule is local to a patient (a visit, or a patient's year with a payer), so evaluating
the lines split by patient and concatenating the parts must give exactly the figures of one
evaluation of all lines. This is what makes chunked evaluation of ten million lines and Dask
partitions correct; the tests here check it figure by figure on smaller sets.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.datasets import generate_practice
from analytics.edits import apply_edits, apply_threshold_edits
from analytics.exceptions import InputError, MinutesError, UnpricedCodeWarning
from analytics.intake import pseudonymise
from analytics.payers import load_payers
from analytics.pipeline import PARTITION_COLUMN, evaluate, evaluate_parquet
from analytics.pricing import price_lines, split_cost_share
from analytics.units import compute_units, distinct_rows, sort_order, visit_codes

# the edge cases bill codes some payers have no rate for, on purpose
pytestmark = pytest.mark.filterwarnings("ignore::analytics.exceptions.UnpricedCodeWarning")

REPO = Path(__file__).resolve().parents[1]
PAYERS_YAML = REPO / "data" / "sample" / "payers.yaml"
PAYERS = load_payers(PAYERS_YAML)


def assert_same_figures(expected: pd.DataFrame, got: pd.DataFrame, key: str = "line_id") -> None:
    """Every column equal line by line (after sorting on ``key``); text compared as text."""
    a = expected.sort_values(key, kind="stable").reset_index(drop=True)
    b = got.sort_values(key, kind="stable").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    for col in a.columns:
        x, y = a[col], b[col]
        if x.dtype.kind in "biufM" and y.dtype.kind in "biufM":
            assert x.dtype == y.dtype, col
            xa, ya = x.to_numpy(), y.to_numpy()
            same = (xa == ya) | (pd.isna(xa) & pd.isna(ya))
        else:
            xo, yo = x.astype(object).to_numpy(), y.astype(object).to_numpy()
            same = (xo == yo) | (pd.isna(xo) & pd.isna(yo))
        bad = np.flatnonzero(~np.asarray(same, dtype=bool))
        assert not len(bad), f"{col}: {len(bad)} line(s) differ, e.g. {x.iloc[bad[0]]!r} vs {y.iloc[bad[0]]!r}"


def with_pseudonyms(evaluated: pd.DataFrame) -> pd.DataFrame:
    """Evaluated lines with the patient ids the written tables carry (pseudonyms)."""
    return evaluated.assign(patient_id=pseudonymise(evaluated[["patient_id"]])["patient_id"].to_numpy())


def by_patient(lines: pd.DataFrame, k: int, seed: int) -> list[pd.DataFrame]:
    """The lines split into ``k`` parts of whole patients, each part in the original row order."""
    patients = pd.unique(lines["patient_id"].astype(str))
    part_of = pd.Series(np.random.default_rng(seed).integers(0, k, len(patients)), index=patients)
    part = lines["patient_id"].astype(str).map(part_of).to_numpy()
    return [lines[part == i] for i in range(k)]


def edge_case_lines(n_visits: int, seed: int) -> pd.DataFrame:
    """Visits built to hit every rule: equal leftovers (ties broken by line id), the same code
    twice, short sessions, NCCI pairs with and without modifiers, visit limits, late claims,
    KX, caps, deductibles across two calendar years, untimed and unpriced codes, rows shuffled."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, n_visits)
    visit = np.repeat(np.arange(n_visits), sizes)
    n = len(visit)
    patient = visit // 6
    codes = np.array(["97124", "97140", "97112", "97110", "97010", "97530", "97139"])
    cpt = codes[rng.choice(len(codes), n, p=[0.3, 0.25, 0.12, 0.15, 0.08, 0.06, 0.04])]
    minutes = rng.choice([0, 3, 7, 8, 10, 12, 15, 22, 23, 30, 37, 38, 45, 52, 60], n).astype(float)
    minutes[cpt == "97010"] = np.nan
    payer_ids = np.array(sorted(PAYERS))
    dates = pd.Timestamp("2025-01-02") + pd.to_timedelta((visit * 5) % 700, unit="D")
    lines = pd.DataFrame({
        "patient_id": "P" + pd.Series(patient).astype(str),
        "service_date": dates,
        "provider_id": np.array(["LMT1", "PT1"])[visit % 2],
        "provider_type": np.array(["lmt", "pt", "dc"])[rng.integers(0, 3, n)],
        "payer_id": payer_ids[(patient * 7 + 3) % len(payer_ids)],
        "cpt": cpt,
        "minutes": minutes,
        "modifiers": np.array(["GP", "GP,59", "", "XS", "GP,XS", "59", "GP,KX", "CQ"])[rng.integers(0, 8, n)],
        "prescription_on_file": rng.random(n) < 0.8,
        "prior_auth": rng.random(n) < 0.5,
        "visits_before": rng.integers(0, 25, n),
        "submission_date": dates + pd.to_timedelta(rng.integers(0, 400, n), unit="D"),
        "charge": rng.choice([40.0, 60.0, 99.99], n),
        "therapy_allowed_before": np.where(rng.random(n) < 0.3, 2300.0, 0.0),
        "line_id": pd.Series(rng.permutation(n)).astype(str).radd("L"),
    })
    return lines.sample(frac=1, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def practice() -> pd.DataFrame:
    return generate_practice(1500, seed=11, payers=PAYERS).lines


@pytest.fixture(scope="module")
def edge_cases() -> pd.DataFrame:
    return edge_case_lines(3000, seed=5)


# --- partition independence -----------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 7])
def test_practice_equals_the_concatenation_of_its_patient_partitions(practice, k):
    whole = evaluate(practice, PAYERS)
    parts = pd.concat([evaluate(p, PAYERS) for p in by_patient(practice, k, seed=k)])
    assert_same_figures(whole, parts)


def test_edge_cases_equal_the_concatenation_of_their_patient_partitions(edge_cases):
    whole = evaluate(edge_cases, PAYERS)
    # the set reaches the rules whose order depends on other lines of the patient
    reasons = " ".join(whole["edit_reason"].astype(str).unique())
    for words in ("NCCI pair", "benefit maximum", "timely filing", "therapy threshold", "authorisation"):
        assert words in reasons
    assert (whole["deductible_applied"] > 0).any() and (whole["mppr_reduced_units"] > 0).any()
    assert whole["units_reason"].astype(str).str.contains("did not earn a unit").any()
    parts = pd.concat([evaluate(p, PAYERS) for p in by_patient(edge_cases, 5, seed=1)])
    assert_same_figures(whole, parts)


@settings(max_examples=8, deadline=None)
@given(k=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_any_split_by_patient_gives_the_same_figures(k, seed):
    lines = edge_case_lines(400, seed=seed % 7)
    whole = evaluate(lines, PAYERS)
    parts = pd.concat([evaluate(p, PAYERS) for p in by_patient(lines, k, seed=seed) if len(p)])
    assert_same_figures(whole, parts)


@pytest.fixture
def small_blocks(monkeypatch):
    """Frames of more than 1.5 x 400 lines are evaluated in blocks of whole patients."""
    import analytics.pipeline

    monkeypatch.setattr(analytics.pipeline, "BLOCK_LINES", 400)


def test_evaluate_in_blocks_equals_one_pass(edge_cases, small_blocks):
    import analytics.pipeline

    lines = edge_cases.set_axis(pd.RangeIndex(1000, 1000 + len(edge_cases)))
    with pytest.warns(UnpricedCodeWarning) as blocked_warnings:
        blocked = evaluate(lines, PAYERS)
    analytics.pipeline.BLOCK_LINES = 10**9
    with pytest.warns(UnpricedCodeWarning) as one_warnings:
        whole = evaluate(lines, PAYERS)
    assert blocked.index.equals(lines.index)
    assert list(blocked.columns) == list(whole.columns)
    assert (blocked.dtypes == whole.dtypes).all()
    assert list(blocked["disposition"].cat.categories) == list(whole["disposition"].cat.categories)
    assert_same_figures(whole, blocked)
    # one warning counting the unpriced lines of every block, as one pass gives
    assert [str(w.message) for w in blocked_warnings] == [str(w.message) for w in one_warnings]


def test_errors_in_blocks_name_every_bad_row(edge_cases, small_blocks):
    bad = edge_cases.copy()
    rows = [5, 2000, 6000]
    bad.loc[rows, "cpt"] = "97140"
    bad.loc[rows, "minutes"] = -1.0
    with pytest.raises(MinutesError, match="negative minutes") as err:
        evaluate(bad, PAYERS)
    assert sorted(err.value.rows.index) == rows


def test_evaluate_equals_the_public_stages_one_by_one(edge_cases):
    # evaluate shares one set of line keys across the stages; each public stage codes its own
    method = edge_cases["payer_id"].map({k: p.unit_method for k, p in PAYERS.items()})
    # the units stage is given the policies too: an 8-minute tie goes to the code the payer pays
    units = compute_units(edge_cases, method, payers=PAYERS)
    staged = split_cost_share(apply_threshold_edits(price_lines(apply_edits(units, PAYERS), PAYERS), PAYERS), PAYERS)
    out = evaluate(edge_cases, PAYERS)
    assert_same_figures(staged, out[staged.columns])


def test_evaluate_of_no_lines_has_every_column(practice):
    out = evaluate(practice.iloc[:0], PAYERS)
    assert len(out) == 0
    assert {"units", "disposition", "allowed", "payer_paid", "p_deny", "expected"} <= set(out.columns)


def test_categorical_input_gives_the_same_figures(edge_cases):
    cats = edge_cases.astype({c: "category" for c in ("patient_id", "payer_id", "cpt", "modifiers",
                                                       "provider_id", "provider_type")})
    assert_same_figures(evaluate(edge_cases, PAYERS), evaluate(cats, PAYERS))


# --- the shared keys ---------------------------------------------------------------------


small_ints = st.lists(st.integers(-3, 3), min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(st.lists(small_ints, min_size=1, max_size=4), st.booleans())
def test_sort_order_is_lexsort(columns, with_float):
    n = min(len(c) for c in columns)
    keys = [np.array(c[:n], dtype=np.int64) for c in columns]
    if with_float:
        keys.append(keys[0] / 2.0)
    assert np.array_equal(sort_order(*keys), np.lexsort(keys))


@settings(max_examples=100, deadline=None)
@given(st.lists(small_ints, min_size=1, max_size=4))
def test_distinct_rows_is_a_groupby(columns):
    n = min(len(c) for c in columns)
    frame = pd.DataFrame({f"c{i}": np.array(c[:n]) for i, c in enumerate(columns)})
    group, first = distinct_rows([frame[c].to_numpy() for c in frame.columns])
    expected = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    assert np.array_equal(group, expected)
    assert np.array_equal(first, np.unique(expected, return_index=True)[1])


def test_visit_codes_is_a_groupby_with_missing_values_and_any_dtype():
    df = pd.DataFrame({
        "patient_id": ["a", "b", None, "a", None, "b"],
        "service_date": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-02", "2025-01-01", None, None]),
        "provider_id": pd.Categorical(["x", "x", "y", "x", "y", None]),
    })
    expected = df.groupby(list(df.columns), sort=False, dropna=False, observed=True).ngroup().to_numpy()
    assert np.array_equal(visit_codes(df), expected)


# --- Parquet in, Parquet out -----------------------------------------------------------------


@pytest.fixture(scope="module")
def practice_file(practice, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lines") / "service_lines.parquet"
    practice.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_evaluate_parquet_equals_evaluate(practice, practice_file, tmp_path, workers):
    run = evaluate_parquet(practice_file, tmp_path / "out", PAYERS, chunk_lines=700, workers=workers)
    assert run.lines_in == run.lines_out == len(practice)
    # chunks of about 700 lines, rounded up to a multiple of the processes (none idle at the end)
    chunks = math.ceil(len(practice) / 700)
    assert run.chunks == math.ceil(chunks / workers) * workers and run.workers == workers
    assert run.patients == practice["patient_id"].nunique()
    got = pd.read_parquet(tmp_path / "out")
    # the written patient ids are pseudonyms; every other column is as evaluate gives it
    assert_same_figures(with_pseudonyms(evaluate(pd.read_parquet(practice_file), PAYERS)),
                        got.drop(columns=PARTITION_COLUMN))


def test_output_is_partitioned_by_year_month_with_categorical_codes(practice_file, tmp_path):
    run = evaluate_parquet(practice_file, tmp_path / "out", PAYERS, chunk_lines=1000, workers=1)
    months = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert months == [f"{PARTITION_COLUMN}={m}" for m in run.partitions] and len(months) == 12
    for path in run.files:
        dates = pq.read_table(path, columns=["service_date"]).column(0).to_pandas()
        assert (dates.dt.strftime("%Y-%m") == path.parent.name.split("=")[1]).all()
    got = pd.read_parquet(tmp_path / "out")
    assert not any(t == np.dtype(object) for t in got.dtypes)
    for col in ("cpt", "payer_id", "modifiers", "units_reason", "edit_reason", "price_basis", "disposition", "carc"):
        assert isinstance(got[col].dtype, pd.CategoricalDtype), col


def test_plain_text_input_in_a_directory_of_files(practice, tmp_path):
    src = tmp_path / "lines"
    src.mkdir()
    plain = practice.astype({c: str for c in ("patient_id", "payer_id", "cpt", "modifiers", "provider_id")})
    half = len(plain) // 2
    plain.iloc[:half].to_parquet(src / "a.parquet", index=False)
    plain.iloc[half:].to_parquet(src / "b.parquet", index=False)
    run = evaluate_parquet(src, tmp_path / "out", PAYERS, chunk_lines=900, workers=1)
    got = pd.read_parquet(tmp_path / "out")
    assert run.lines_out == len(practice)
    assert isinstance(got["cpt"].dtype, pd.CategoricalDtype)
    expected = evaluate(pd.concat([pd.read_parquet(src / "a.parquet"), pd.read_parquet(src / "b.parquet")],
                                  ignore_index=True), PAYERS)
    assert_same_figures(with_pseudonyms(expected), got.drop(columns=PARTITION_COLUMN))


def test_output_directory_must_be_empty_unless_overwrite(practice_file, tmp_path):
    out = tmp_path / "out"
    evaluate_parquet(practice_file, out, PAYERS, workers=1)
    with pytest.raises(InputError, match="not empty"):
        evaluate_parquet(practice_file, out, PAYERS, workers=1)
    run = evaluate_parquet(practice_file, out, PAYERS, workers=1, overwrite=True)
    assert len(pd.read_parquet(out)) == run.lines_out


def test_missing_source_says_what_to_pass(tmp_path):
    with pytest.raises(InputError, match="No Parquet file"):
        evaluate_parquet(tmp_path / "nope.parquet", tmp_path / "out", PAYERS)


def test_evaluate_command(practice, practice_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["evaluate", "--lines", str(practice_file), "--payers", str(PAYERS_YAML), "--out", str(out),
                 "--workers", "2", "--chunk-lines", "1000"])
    assert code == 0
    text = capsys.readouterr().out
    assert f"evaluated {len(practice):,} lines" in text and "12 partitions" in text
    assert len(pd.read_parquet(out)) == len(practice)


def test_denial_basis_names_unbilled_lines():
    from analytics.payers import load_payers

    pol = load_payers({"payers": {"ppo": {"kind": "commercial", "unit_method": "ama",
                                          "fee": {"basis": "flat", "rates": {"97140": 40, "97124": 40}},
                                          "ncci": {"follow": False}}}})
    df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2026-03-02"), "provider_id": "a",
                       "payer_id": "ppo", "cpt": ["97140", "97124"], "minutes": [7, 30]})
    out = evaluate(df, pol)
    assert out["p_deny_basis"].astype(str).tolist() == ["not billed: no billable units",
                                                        "payer prior (policy denial_prior)"]
    assert out["p_deny"].tolist()[0] == 1.0


@pytest.mark.parametrize("liability, owed", [("patient", 90.0), ("provider", 0.0)])
def test_an_excluded_line_the_patient_owes_is_expected_from_the_patient(liability, owed):
    # 97124 x2 at a $45 charge each is excluded; 97140 x1 allowed $40 with a 10% denial prior
    pol = load_payers({"payers": {"ppo": {"kind": "commercial", "unit_method": "ama",
                                          "fee": {"basis": "flat", "rates": {"97140": 40}},
                                          "ncci": {"follow": False}, "not_covered": ["97124"],
                                          "noncovered_liability": liability, "denial_prior": 0.1,
                                          "cost_share": {"coinsurance": 0.2}}}})
    df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2026-03-02"), "provider_id": "a",
                       "payer_id": "ppo", "cpt": ["97140", "97124"], "minutes": [15, 30], "charge": [60.0, 90.0]})
    out = evaluate(df, pol).set_index("cpt")
    assert out.loc["97124", "p_deny"] == 1.0 and out.loc["97124", "allowed"] == 0
    assert out.loc["97124", "expected_patient"] == owed and out.loc["97124", "expected"] == owed
    assert out.loc["97124", "expected_payer"] == 0
    # the covered line: $8 coinsurance, $32 payer, each x 0.9
    assert out.loc["97140", "expected_patient"] == 7.2 and out.loc["97140", "expected"] == 36.0


@pytest.mark.parametrize("liability, owed", [("patient", 130.0), ("provider", 0.0)])
def test_a_visit_past_the_limit_the_patient_owes_is_expected_from_the_patient(liability, owed):
    # one visit a year; visit 1: 97140 x1 allowed $40 (20% coinsurance, 10% denial prior);
    # visit 2, past the limit: 97140 x1 (charge $60) and 97124 x2 (charge $90, no rate)
    pol = load_payers({"payers": {"hmo": {"kind": "commercial", "unit_method": "ama",
                                          "fee": {"basis": "flat", "rates": {"97140": 40}},
                                          "ncci": {"follow": False}, "visit_limit": 1,
                                          "visit_limit_liability": liability, "denial_prior": 0.1,
                                          "cost_share": {"coinsurance": 0.2}}}})
    df = pd.DataFrame({"patient_id": "p", "provider_id": "a", "payer_id": "hmo",
                       "service_date": pd.to_datetime(["2026-03-02", "2026-03-09", "2026-03-09"]),
                       "cpt": ["97140", "97140", "97124"], "minutes": [15, 15, 30], "charge": [60.0, 60.0, 90.0]})
    out = evaluate(df, pol)
    first, past = out.iloc[:1], out.iloc[1:]
    # visit 1: $8 coinsurance, $32 payer, each x 0.9
    assert (first["expected_patient"].item(), first["expected_payer"].item(), first["expected"].item()) == (
        7.2, 28.8, 36.0)
    # visit 2: denied (p_deny 1), the payer pays nothing; PR-119 puts $40 (1 x the $40 rate) +
    # $90 (the charge) = $130 on the patient, CO-119 nothing
    assert (past["p_deny"] == 1.0).all() and past["expected_payer"].sum() == 0
    assert past["group_code"].tolist() == (["PR", "PR"] if liability == "patient" else ["CO", "CO"])
    assert past["expected_patient"].tolist() == ([40.0, 90.0] if owed else [0.0, 0.0])
    assert past["expected"].sum() == owed and past["expected_patient"].sum() == owed
