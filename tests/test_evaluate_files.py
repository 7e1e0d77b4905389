"""``evaluate_parquet``'s month files: the same figures however the lines are chunked, the same
bytes for the same input, and files that carry only what their lines use.

The written tables are read back with ``pd.read_parquet`` (the whole folder) and compared with
one in-memory ``evaluate`` of the same lines, value by value: the chunking (patients dealt by
their place in the file's dictionary, chunks a multiple of the processes), the per-file patient
dictionaries and the Parquet encodings may change the files' bytes, never what reads back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analytics.pipeline as pipeline
from analytics.datasets import generate_practice
from analytics.intake import pseudonymise
from analytics.payers import load_payers
from analytics.pipeline import PARTITION_COLUMN, evaluate, evaluate_parquet

REPO = Path(__file__).resolve().parents[1]
PAYERS = load_payers(REPO / "data" / "sample" / "payers.yaml")


@pytest.fixture(scope="module")
def practice() -> pd.DataFrame:
    """A generated practice of about 3,000 lines in date order, patients as a categorical with
    ids no line uses (as a practice-management export written by pandas stores them)."""
    lines = generate_practice(1400, seed=12, payers=PAYERS).lines
    lines = lines.sort_values("service_date", kind="stable").reset_index(drop=True)
    ids = sorted(set(lines["patient_id"].astype(str)) | {"P-NOT-SEEN-1", "P-NOT-SEEN-2"})
    return lines.assign(patient_id=pd.Categorical(lines["patient_id"].astype(str), categories=ids))


@pytest.fixture(scope="module")
def practice_file(practice, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lines") / "service_lines.parquet"
    practice.to_parquet(path, index=False, row_group_size=500)  # several row groups, one dictionary each
    return path


def read_back(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder).drop(columns=PARTITION_COLUMN).sort_values("line_id").reset_index(drop=True)


def expected_lines(practice: pd.DataFrame) -> pd.DataFrame:
    """One ``evaluate`` of every line in memory, patient ids pseudonymised as the files carry them."""
    out = evaluate(practice.assign(patient_id=practice["patient_id"].astype(str)), PAYERS)
    out = out.assign(patient_id=pseudonymise(out[["patient_id"]])["patient_id"].to_numpy())
    return out.sort_values("line_id").reset_index(drop=True)


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame, *, same_dtypes: bool = True) -> None:
    """Same columns, rows and values, exactly; with ``same_dtypes`` the same dtypes too (a
    categorical's categories compared as a set: each file codes its own)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in a.columns:
        x, y = a[col], b[col]
        if same_dtypes:
            assert x.dtype == y.dtype, (col, x.dtype, y.dtype)  # unordered categories: compared as sets
        if isinstance(x.dtype, pd.CategoricalDtype) or isinstance(y.dtype, pd.CategoricalDtype):
            x, y = x.astype(object), y.astype(object)
            assert ((x.isna() & y.isna()) | (x == y)).all(), col
            continue
        if not same_dtypes and x.dtype.kind == "M":  # the time unit the file stores, e.g. ms against s
            x, y = x.astype("datetime64[ns]"), y.astype("datetime64[ns]")
        pd.testing.assert_series_equal(x, y, check_exact=True, check_dtype=same_dtypes, obj=col)


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.parquet"))}


@pytest.mark.parametrize("workers, chunk_lines", [(1, 10**6), (1, 700), (2, 700)])
def test_every_chunking_reads_back_as_one_evaluate(practice, practice_file, tmp_path, workers, chunk_lines):
    run = evaluate_parquet(practice_file, tmp_path / "out", PAYERS, workers=workers, chunk_lines=chunk_lines)
    assert run.lines_in == run.lines_out == len(practice)
    assert run.patients == practice["patient_id"].nunique()  # ids in the dictionary that no line uses not counted
    got = read_back(tmp_path / "out")
    assert_same_table(got, expected_lines(practice), same_dtypes=False)
    one_chunk = evaluate_parquet(practice_file, tmp_path / "one", PAYERS, workers=1)
    assert one_chunk.chunks == 1
    assert_same_table(got, read_back(tmp_path / "one"))


def test_chunks_are_a_multiple_of_the_processes(practice_file, tmp_path):
    n = pq.ParquetFile(practice_file).metadata.num_rows
    run = evaluate_parquet(practice_file, tmp_path / "a", PAYERS, workers=2, chunk_lines=n // 3 + 1)  # 3 -> 4
    assert (run.chunks, run.workers) == (4, 2)
    one = evaluate_parquet(practice_file, tmp_path / "b", PAYERS, workers=2, chunk_lines=n)  # one chunk stays one
    assert (one.chunks, one.workers) == (1, 1)


def test_each_patient_is_in_one_chunk(practice, practice_file, tmp_path):
    # the file's row groups share one dictionary of the ids: patients are dealt by their place in it
    column = pq.read_table(practice_file, columns=["patient_id"]).column(0)
    assert column.num_chunks > 1 and pipeline._shared_dictionary(column) is not None
    run = evaluate_parquet(practice_file, tmp_path / "out", PAYERS, workers=1, chunk_lines=500)
    parts = pd.concat([pq.read_table(f, columns=["patient_id"]).to_pandas().assign(part=f.name) for f in run.files])
    assert run.chunks > 4 and parts["patient_id"].astype(str).nunique() == practice["patient_id"].nunique()
    assert (parts.groupby(parts["patient_id"].astype(str))["part"].nunique() == 1).all()


def test_the_same_input_gives_the_same_bytes(practice_file, tmp_path):
    for name in ("a", "b"):
        evaluate_parquet(practice_file, tmp_path / name, PAYERS, workers=2, chunk_lines=600)
    first = digests(tmp_path / "a")
    assert len(first) > 12 and first == digests(tmp_path / "b")


def test_a_file_carries_only_its_own_patients_and_ids_without_a_parquet_dictionary(practice_file, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setattr(pipeline, "_LARGE_DICTIONARY", 16)  # the sample's few hundred patients count as many
    run = evaluate_parquet(practice_file, tmp_path / "out", PAYERS, workers=1, chunk_lines=1500)
    for path in run.files:
        column = pq.read_table(path, columns=["patient_id"]).column(0).combine_chunks()
        assert len(column.dictionary) == len(pa.compute.unique(column.indices)), path  # no patient of another month
        meta = pq.ParquetFile(path).metadata.row_group(0)
        encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
        assert "RLE_DICTIONARY" not in encodings["line_id"] and "RLE_DICTIONARY" in encodings["cpt"], path


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_taking_a_chunk_is_arrows_take(data):
    """The piece-by-piece gather equals ``Table.take`` on pieces of any length, with and without
    missing values, sliced pieces, numbers, times, booleans, text and dictionaries."""
    sizes = data.draw(st.lists(st.integers(0, 9), min_size=1, max_size=5))
    n = sum(sizes)
    values = data.draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n))
    with_nulls = data.draw(st.booleans())
    ints = [0 if v is None else v for v in values] if not with_nulls else values
    offset = data.draw(st.integers(0, 2))

    def pieces(kind, make):
        out, at = [], 0
        for size in sizes:
            block = [make(v) for v in ints[at:at + size]]
            at += size
            out.append(pa.array([make(0)] * offset + block, type=kind).slice(offset))
        return pa.chunked_array(out, type=kind)

    table = pa.table({
        "i8": pieces(pa.int8(), lambda v: v), "i64": pieces(pa.int64(), lambda v: v),
        "f": pieces(pa.float64(), lambda v: None if v is None else v / 4),
        "t": pieces(pa.timestamp("ms"), lambda v: v), "d": pieces(pa.date32(), lambda v: v),
        "b": pieces(pa.bool_(), lambda v: None if v is None else v > 0),
        "s": pieces(pa.large_string(), lambda v: None if v is None else f"id{v}"),
        "c": pieces(pa.dictionary(pa.int32(), pa.string()), lambda v: None if v is None else "abc"[v % 3]),
    })
    rows = np.flatnonzero(np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool))
    got = pipeline._take_rows(table, rows)
    assert got.schema.equals(table.schema) and got.equals(table.take(rows))
