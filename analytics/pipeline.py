"""One entry point for the rules engine: units, edits, pricing, cost share and denial risk.

* :func:`evaluate` runs every rule stage on a DataFrame of service lines.
* :func:`evaluate_parquet` reads service lines from Parquet (a file or a directory), evaluates
  them in chunks of whole patients (optionally in several processes) and writes the result
  as Parquet partitioned by year-month. ``python -m analytics evaluate`` runs it.
* :func:`evaluate_dask` runs the same :func:`evaluate` on a ``dask.dataframe`` partitioned by
  patient, for data larger than one machine (the optional ``[dask]`` extra);
  :func:`write_dask_parquet` writes its result.

Saved tables carry no direct identifiers: both writers replace the patient id by the salted
pseudonym of :func:`analytics.privacy.pseudonymise` (``ANALYTICS_ID_SALT``, the scheme intake
uses, so the keys match those of ``intake`` outputs) and leave out the columns that name or
identify a patient (names, dates of birth, member, subscriber and account ids, contact
details). A pseudonym stands for exactly one id, so visits and patient-years group as before
and every other column is unchanged.

Every rule looks at one visit (patient + service date + provider) or at one patient's year
with a payer, never across patients. Lines split by patient into parts, each part evaluated
on its own, give exactly the figures of evaluating all lines at once; this is what lets a
large file run in chunks that fit the processor's cache and on Dask partitions.

Running on a multi-machine Dask cluster
---------------------------------------
1. Install the toolkit with the extra, at the same version, on the client, the scheduler and
   every worker: ``pip install "massage-billing-analytics[dask]"`` (the workers import
   ``analytics``).
2. Start a scheduler on one machine and workers on the others, one single-threaded process per
   core (the engine is numpy/pandas code that holds one core)::

       dask scheduler                                   # listens on tcp://HOST:8786
       dask worker tcp://HOST:8786 --nworkers auto --nthreads 1

3. Put the service lines where every worker can read them (S3, GCS, HDFS or a shared file
   system) as Parquet; ``s3://`` paths need ``s3fs`` on every machine.
4. Run from the client::

       python -m analytics evaluate --lines s3://bucket/lines/ --payers payers.yaml \
           --out s3://bucket/evaluated/ --dask --scheduler tcp://HOST:8786

   or in Python::

       import dask.dataframe as dd
       from distributed import Client
       from analytics.payers import load_payers
       from analytics.pipeline import evaluate_dask, write_dask_parquet

       client = Client("tcp://HOST:8786")
       lines = dd.read_parquet("s3://bucket/lines/")
       out = evaluate_dask(lines, load_payers("payers.yaml"))
       write_dask_parquet(out, "s3://bucket/evaluated/")   # partitioned by year_month, ids pseudonymised

   Set ``ANALYTICS_ID_SALT`` on the client: the salt is read there and travels with the
   tasks, so every worker makes the same pseudonyms.

The lines are shuffled so that each patient's lines land in one partition (a network shuffle
of every column), then :func:`evaluate` runs on each partition. Partitions of about a million
lines keep the shuffle cheap and each task's memory near 1 GB. The payer policies and the
reference tables are small and travel with the tasks.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics._frame import (
    BLOCK_LINES,
    VISIT_KEYS,
    LineKeys,
    categorical,
    factorize_below,
    in_blocks,
    reissue,
)
from analytics.edits import DISPOSITIONS, apply_edits_with_keys, apply_threshold_edits_with_keys
from analytics.exceptions import InputError, UnpricedCodeWarning
from analytics.payers import PayerPolicy, load_payers, payer_columns
from analytics.pricing import price_lines_with_keys, split_cost_share_with_keys, warn_unpriced
from analytics.privacy import (
    identifying_columns,
    marked_pseudonymous,
    pseudonymise_frame,
    pseudonymise_table,
    pseudonyms,
    resolve_salt,
)
from analytics.refdata import Reference, load_reference
from analytics.units import UNIT_METHODS, check_codes, checked_minutes, compute_units_with_keys

__all__ = ["evaluate", "evaluate_parquet", "evaluate_dask", "write_dask_parquet", "ParquetRun", "PARTITION_COLUMN",
           "CHUNK_LINES", "read_lines_table", "prepare_output", "keep_freed_memory"]

#: Name of the year-month partition column (``2025-03``) of the evaluated Parquet output.
PARTITION_COLUMN = "year_month"
#: Lines per chunk: big enough that per-chunk costs (a month file per chunk, each call's fixed
#: work) stay small, below the 1.5 million lines from which evaluate splits a frame into blocks
#: (measured in benchmarks/bench_scale.py: ten million lines in 8 chunks take 1 s less CPU than
#: in 12).
CHUNK_LINES = 1_400_000
#: Text columns of few distinct values, read as categoricals (dictionary-encoded) when the
#: file stores plain strings. Ids with many values (patient, claim, line) stay Arrow strings.
_CODE_COLUMNS = ("provider_id", "provider_type", "payer_id", "cpt", "modifiers", "dx_codes", "body_region",
                 "locality")


def evaluate(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
    denial_model: Any | None = None,
) -> pd.DataFrame:
    """Run every rule stage on service lines and return them with each stage's columns.

    Units are counted with each line's payer method (when the lines carry ``units`` and no
    ``minutes``, the given units are used as billed) (``cms`` or ``ama``); the payer's edits
    run before pricing and the KX threshold after it; cost share splits the allowed amount.
    ``p_deny`` is 1 where an edit denies, else the fitted ``denial_model``'s probability
    when one is given, else the payer's prior (``denial_prior`` in its policy).
    ``expected`` = allowed x (1 - p_deny), plus what the patient owes on a denied line the
    plan makes the patient's (``noncovered_applied``: a plan exclusion under
    ``noncovered_liability: patient``, a visit past the visit limit under
    ``visit_limit_liability: patient``), owed although the payer denies.

    Frames of more than 1.5 million lines are evaluated in blocks of about a million lines
    of whole patients and put back together: no rule crosses patients, so the figures are
    those of one pass, in about half the time and memory.

    Examples
    --------
    >>> from analytics.payers import load_payers
    >>> pol = load_payers({"payers": {"mc": {"kind": "medicare"}}})
    >>> df = pd.DataFrame({"patient_id": "p", "service_date": "2025-06-02", "provider_id": "a",
    ...     "payer_id": "mc", "cpt": ["97110", "97140"], "minutes": [33, 7], "modifiers": "GP"})
    >>> evaluate(df, pol)[["cpt", "units", "allowed"]].values.tolist()
    [['97110', 2, 50.62], ['97140', 1, 20.7]]
    """
    ref = reference or load_reference()
    # The columns every stage groups or looks up by are coded once, here, and shared.
    keys = LineKeys(lines, visit_keys)
    pol = payer_columns(lines, payers, keys)  # raises naming lines whose payer has no policy
    count_units = "minutes" in lines.columns or "units" not in lines.columns
    methods = pol.per_payer("unit_method", object)
    if count_units:
        bad = ~np.isin(methods, UNIT_METHODS)[pol.codes]
        if bad.any():
            raise InputError.for_rows(lines[bad], "have an unknown unit method", "Use 'cms' or 'ama'.")
    if len(lines) > 1.5 * BLOCK_LINES:
        # Blocks of whole patients: the same figures, faster and in less memory. The input is
        # checked as a whole first, so that an error names every bad row at once.
        check_codes(lines, "cpt", *keys.cpt, ref)
        if count_units:
            checked_minutes(lines, "minutes", ref.code_table(pd.Series(keys.cpt[1]))["timed"].to_numpy(bool)[
                keys.cpt[0]])
        return in_blocks(lines, visit_keys[0], lambda part, rows: evaluate(
            part, payers, ref, visit_keys=visit_keys, denial_model=denial_model), block_lines=BLOCK_LINES,
            on_warnings=_block_warnings)
    if count_units:
        out = compute_units_with_keys(lines, (methods == "cms")[pol.codes], ref, keys, payers=payers)
    else:  # units given (e.g. a claim as billed): keep them, still validate the codes
        check_codes(lines, "cpt", *keys.cpt, ref)
        out = lines.assign(units=pd.to_numeric(lines["units"]).astype("int64"), units_reason="units as given")
    out = apply_edits_with_keys(out, payers, ref, keys)
    out = price_lines_with_keys(out, payers, ref, keys)
    out = apply_threshold_edits_with_keys(out, payers, ref, keys)
    out = split_cost_share_with_keys(out, payers, ref, keys)
    disposition = np.asarray(pd.Categorical(out["disposition"], categories=DISPOSITIONS).codes)
    denied = np.isin(disposition, [DISPOSITIONS.index("denied"), DISPOSITIONS.index("not_billed")])
    if denial_model is not None:
        p = denial_model.predict_proba(out).to_numpy(dtype=float)
        # a learned risk says per line what its chance rests on ("learned from 276 ... lines")
        words = getattr(denial_model, "basis_words", None)
        basis = words(out) if words is not None else "learned from remittances"
    else:
        p = pol.array("denial_prior")
        basis = "payer prior (policy denial_prior)"
    p = np.where(denied, 1.0, p)
    allowed = np.nan_to_num(out["allowed"].to_numpy(dtype=float, na_value=np.nan))
    # a line the plan excludes and makes the patient's is denied by the payer yet owed in full
    owed = np.nan_to_num(out["noncovered_applied"].to_numpy(dtype=float, na_value=np.nan))
    share = out["patient_part"].to_numpy(dtype=float) - owed
    return out.assign(
        p_deny=p,
        p_deny_basis=_basis_column(basis, disposition, denied),
        expected=np.round(allowed * (1 - p) + owed, 2),
        expected_payer=np.round(out["payer_paid"].to_numpy(dtype=float) * (1 - p), 2),
        expected_patient=np.round(share * (1 - p) + owed, 2),
    )


def _basis_column(basis, disposition: np.ndarray, denied: np.ndarray) -> pd.Categorical:
    """Why each line has its chance of denial: ``basis`` (one text, or one per line) unless an
    edit denies it or it has no billable units."""
    if np.ndim(basis) == 0:  # one text for every line (the payer prior): no per-line strings to sort
        words, inverse = np.asarray([basis], dtype=str), np.zeros(denied.shape, dtype=np.int64)
    else:
        words, inverse = np.unique(np.broadcast_to(np.asarray(basis, dtype=str), denied.shape), return_inverse=True)
    rule = np.where(disposition == DISPOSITIONS.index("not_billed"), 2, denied.astype(np.int64))
    return categorical(np.where(rule == 0, inverse.reshape(-1), len(words) + rule - 1),
                       [*words, "denied by an edit", "not billed: no billable units"])


def _block_warnings(result: pd.DataFrame, caught: list[warnings.WarningMessage]) -> None:
    """The warnings of evaluate's blocks as one call would have issued them: one count of
    unpriced lines for all blocks, every other message once."""
    unpriced = [w for w in caught if issubclass(w.category, UnpricedCodeWarning)]
    if unpriced:
        mask = (result["disposition"] == "unpriced").to_numpy()
        warn_unpriced(int(mask.sum()), result["cpt"][mask].astype(str).unique(), stacklevel=5)
    reissue([w for w in caught if not issubclass(w.category, UnpricedCodeWarning)], stacklevel=5)


@dataclasses.dataclass(frozen=True)
class ParquetRun:
    """What :func:`evaluate_parquet` did: lines in and out, chunks, partitions and files.

    ``lines_in == lines_out`` always: :func:`evaluate` raises on bad input rather than drop it.
    ``pseudonymised`` says whether the patient ids were replaced by pseudonyms;
    ``dropped_columns`` names the identifying input columns left out of the output;
    ``cpu_seconds`` is the processor time of each step (reading and dealing the patients in
    this process; taking, evaluating and writing the chunks summed over every chunk, in
    whichever process ran it).
    """

    lines_in: int
    lines_out: int
    patients: int
    chunks: int
    workers: int
    partitions: list[str]
    files: list[Path]
    seconds: float
    pseudonymised: bool = False
    dropped_columns: tuple[str, ...] = ()
    cpu_seconds: dict[str, float] = dataclasses.field(default_factory=dict)


def _as_payers(payers: Mapping[str, PayerPolicy] | str | Path) -> Mapping[str, PayerPolicy]:
    return load_payers(payers) if isinstance(payers, (str, Path)) else payers


def read_lines_table(src: str | Path, columns: Sequence[str] | None = None):
    """Service lines from Parquet (a file or a directory of files) as an Arrow table.

    Text columns that hold codes (provider, payer, code, modifiers ...) are dictionary-encoded,
    so they become categoricals in pandas, whatever the writer stored.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(src)
    if not path.exists():
        raise InputError(f"No Parquet file or directory at {src}. Pass the service lines written as Parquet "
                         "(e.g. by `python -m analytics sample --no-835`).")
    table = pq.read_table(path, columns=list(columns) if columns else None)
    for name in _CODE_COLUMNS:
        if name in table.column_names:
            col = table.column(name)
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                table = table.set_column(table.column_names.index(name), name, pc.dictionary_encode(col))
    return table


def _patient_chunks(table, patient_col: str, n_chunks: int) -> tuple[np.ndarray, int, Any]:
    """Chunk number of every line, so that a patient's lines share one chunk; the number of
    patients; and the patient column coded with one dictionary of distinct ids shared by every
    line.

    A column the file stores with one dictionary of distinct ids (a pandas categorical, the usual
    export written to Parquet) keeps that dictionary and its indices: patients are dealt
    round-robin by their place in the dictionary, and no id is decoded or hashed. Any other
    column is coded by ``pyarrow.compute.dictionary_encode`` (ids in order of first
    appearance) and dealt round-robin in that order. Any assignment that keeps a patient's
    lines together gives the same figures.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if patient_col not in table.column_names:
        raise InputError(f"The service lines have no {patient_col!r} column; evaluate_parquet splits the lines "
                         "by patient. Pass visit_keys=(patient, date, provider) naming your columns.")
    col = table.column(patient_col)
    shared = _shared_dictionary(col)
    if shared is not None:
        codes, dictionary = shared
        size = len(dictionary)
        patients = int(np.count_nonzero(np.bincount(codes, minlength=size))) if len(codes) else 0
        coded = pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array(codes, type=pa.int32()), dictionary)])
    else:
        if pa.types.is_dictionary(col.type):  # one dictionary per row group: decode, then code afresh
            col = pc.cast(col, col.type.value_type)
        coded = pc.dictionary_encode(col)  # one dictionary shared by every chunk
        size = patients = len(coded.chunk(0).dictionary) if coded.num_chunks else 0
        codes = np.concatenate([c.indices.fill_null(0).to_numpy(zero_copy_only=False) for c in coded.chunks]
                               or [np.zeros(0, dtype=np.int64)])
    # lines with no patient id are one patient to the engine; they go with patient 0. The chunk
    # of each patient is looked up per line (a few bits), not divided out line by line.
    chunk_of = (np.arange(max(size, 1)) % n_chunks).astype(np.min_scalar_type(max(n_chunks - 1, 0)))
    return chunk_of[codes], patients, coded


def _shared_dictionary(col) -> tuple[np.ndarray, Any] | None:
    """The indices (``int32``, one array) and the dictionary of a text dictionary column whose
    pieces (a file's row groups and batches) all carry one dictionary of distinct values and
    no missing value; None for any other column (then the caller decodes and codes afresh).

    Equal dictionaries are compared as buffers, and the values checked distinct once, so that
    two indices never stand for one patient."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(col.type) or not col.num_chunks or col.null_count:
        return None
    value_type = col.type.value_type
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        return None
    dictionary = col.chunk(0).dictionary
    if dictionary.null_count or any(c.dictionary is not dictionary and not c.dictionary.equals(dictionary)
                                    for c in col.chunks[1:]):
        return None
    if len(pc.unique(dictionary)) != len(dictionary):
        return None
    codes = np.concatenate([c.indices.to_numpy() for c in col.chunks]).astype(np.int32, copy=False)
    return codes, dictionary


def _first_appearance(indices: np.ndarray, dictionary):
    """Indices into ``dictionary`` (distinct values) as one dictionary array of the values used, in
    order of first appearance."""
    import pyarrow as pa

    codes, used = factorize_below(indices, len(dictionary))
    return pa.chunked_array([pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                                            dictionary.take(pa.array(used)))])


def _compact(table, unique: Sequence[str] = ()):
    """Large dictionary columns re-encoded with the values a chunk uses (its patients, not all).

    The columns named in ``unique`` hold a dictionary of distinct values (the patient column
    :func:`_patient_chunks` codes): in one chunk and with no missing values, they are
    re-encoded from their indices, with the same result.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if pa.types.is_dictionary(field.type):
            col = table.column(i)
            if sum(len(c.dictionary) for c in col.chunks) > 4096:
                if field.name in unique and col.num_chunks == 1 and not col.null_count:
                    chunk = col.chunk(0)
                    table = table.set_column(i, field.name, _first_appearance(chunk.indices.to_numpy(),
                                                                              chunk.dictionary))
                else:
                    table = table.set_column(i, field.name,
                                             pc.dictionary_encode(pc.cast(col, field.type.value_type)))
    return table


def _take_rows(table, rows: np.ndarray):
    """``table.take(rows)`` for ascending ``rows``, gathered piece by piece.

    A file is read in batches of some 100,000 lines, so each column is in many pieces, and
    Arrow's take on such a column joins the pieces into one array first: a copy of the whole
    column for every chunk. Here each piece gives its own rows and only those are joined, with
    the same result (one array per column): numbers and times without missing values are
    gathered by numpy straight into the joined array, other columns by Arrow piece by piece.
    The rows of each piece are found once for all columns cut the same way. Dictionary
    columns, whose indices are small and whose pieces may each carry a dictionary, are left
    to Arrow.
    """
    import pyarrow as pa

    columns = []
    cuts: dict[tuple[int, ...], list[tuple[int, int, int, np.ndarray]]] = {}
    for col in table.columns:
        pieces = col.chunks
        if len(pieces) < 2 or pa.types.is_dictionary(col.type):
            columns.append(col.take(rows))
            continue
        lengths = tuple(len(p) for p in pieces)
        if lengths not in cuts:
            bounds = np.cumsum((0,) + lengths)
            cut = np.searchsorted(rows, bounds).tolist()
            cuts[lengths] = [(i, a, b, rows[a:b] - lo) for i, (a, b, lo) in
                             enumerate(zip(cut[:-1], cut[1:], bounds[:-1].tolist(), strict=True)) if b > a]
        where = cuts[lengths]
        if _fixed_width(col.type) and not col.null_count:
            out = np.empty(len(rows), dtype=np.dtype(f"V{col.type.bit_width // 8}"))
            for i, a, b, local in where:
                piece = pieces[i]
                values = np.frombuffer(piece.buffers()[1], dtype=out.dtype)[piece.offset:piece.offset + len(piece)]
                np.take(values, local, out=out[a:b])
            columns.append(pa.chunked_array([pa.Array.from_buffers(col.type, len(rows), [None, pa.py_buffer(out)])]))
            continue
        taken = [pieces[i].take(pa.array(local)) for i, _, _, local in where]
        columns.append(pa.chunked_array([pa.concat_arrays(taken)] if taken else [], type=col.type))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _fixed_width(kind) -> bool:
    """Whether an Arrow type stores each value in one fixed-width buffer of whole bytes
    (integers, floats, timestamps, dates, durations; not booleans, which are bits)."""
    import pyarrow as pa

    kinds = (pa.types.is_integer, pa.types.is_floating, pa.types.is_timestamp, pa.types.is_date,
             pa.types.is_duration, pa.types.is_time)
    return any(is_kind(kind) for is_kind in kinds) and kind.bit_width % 8 == 0


def _return_freed_memory() -> None:
    """Hand the memory this process has freed back to the system (glibc ``malloc_trim``).

    Once the patients are coded, the file's copies of the patient dictionary (one per batch
    read) are freed, some 400 MB for ten million lines; a process that keeps freed memory
    (:func:`keep_freed_memory`) would otherwise hold them while the workers run. Nothing to
    do elsewhere than glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:  # not glibc
        pass


def _pseudonymised_patients(table, column: str, key, kind):
    """The chunk with its patient column (raw ids, one dictionary) replaced by pseudonyms: the
    dictionary is hashed, the codes are kept; ``kind`` is the column's type as read (a text
    column stays text, a dictionary stays a dictionary)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    index = table.column_names.index(column)
    col = table.column(index)
    value_type = col.type.value_type
    chunks, last, hashed = [], None, None
    for c in col.chunks:
        if last is None or not c.dictionary.equals(last):  # chunks that share a dictionary hash it once
            last = c.dictionary
            hashed = pa.array(pseudonyms(last.to_numpy(zero_copy_only=False), key), type=value_type)
        chunks.append(pa.DictionaryArray.from_arrays(c.indices, hashed))
    out = pa.chunked_array(chunks, type=col.type)
    if not pa.types.is_dictionary(kind):
        out = pc.cast(out, value_type)
    return table.set_column(index, column, out)


def _months(dates: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Month number of every service date (months since 1970-01), the distinct numbers in
    order, and their ``YYYY-MM`` labels (``unknown`` for a missing date)."""
    number = pd.to_datetime(dates).to_numpy().astype("datetime64[M]").astype(np.int64)
    uniq = np.sort(pd.unique(number))
    as_month = uniq.astype("datetime64[M]")
    labels = np.where(np.isnat(as_month), "unknown", np.datetime_as_string(as_month, unit="M"))
    return number, uniq, labels


def _year_month(dates: pd.Series) -> pd.Categorical:
    """``YYYY-MM`` of every service date, as a categorical built once per month."""
    number, uniq, labels = _months(dates)
    return pd.Categorical.from_codes(np.searchsorted(uniq, number), categories=labels.astype(str), validate=False)


#: Columns whose min/max statistics are written (what readers filter on); the others'
#: cost time and help no filter.
_STATISTICS = ("service_date", "payer_id", "cpt", "disposition")


def _write_partitioned(out: pd.DataFrame, dst: Path, part: int, partition_by: str) -> list[Path]:
    """Write one chunk's lines as ``dst/{partition_by}=YYYY-MM/part-{part}.parquet``, one file per month.

    Each file carries only what its lines use of a large dictionary (the month's patients, not
    the chunk's), and text columns of mostly distinct values (claim and line ids) are stored
    without a Parquet dictionary. Read back, the values and dtypes are those of the chunk.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = _int32_dictionaries(pa.Table.from_pandas(out, preserve_index=False))
    number, uniq, labels = _months(out["service_date"])
    if len(number) > 1 and (np.diff(number) < 0).any():  # exports are usually in date order already
        order = np.argsort(number, kind="stable")
        table, number = table.take(order), number[order]
    starts = np.r_[0, np.flatnonzero(np.diff(number)) + 1] if len(number) else np.zeros(0, dtype=np.int64)
    stops = np.r_[starts[1:], len(number)]
    label_of = dict(zip(uniq.tolist(), labels.tolist(), strict=True))
    stats = [c for c in _STATISTICS if c in table.column_names]
    encoded = _dictionary_encoded(table)
    written = []
    for a, b in zip(starts.tolist(), stops.tolist(), strict=True):
        folder = dst / f"{partition_by}={label_of[int(number[a])]}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{part:05d}.parquet"
        pq.write_table(_used_dictionaries(table.slice(a, b - a)), path, write_statistics=stats,
                       use_dictionary=encoded, write_batch_size=_WRITE_BATCH)
        written.append(path)
    return written


#: Values the Parquet writer encodes at a time (pyarrow's default is 1,024): fewer, larger
#: batches cost less per line; pages are still cut at the default page size.
_WRITE_BATCH = 1 << 16
#: Dictionaries of more entries than this are cut to the values a file uses (:func:`_used_dictionaries`).
_LARGE_DICTIONARY = 4096


def _used_dictionaries(table):
    """The table with each large dictionary column (the patients) re-encoded with only the
    values its lines use, in order of first appearance: the same values, a smaller file."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if not pa.types.is_dictionary(field.type):
            continue
        col = table.column(i)
        if col.num_chunks != 1 or col.null_count or len(col.chunk(0).dictionary) <= _LARGE_DICTIONARY:
            continue
        chunk = col.chunk(0)
        codes, used = factorize_below(chunk.indices.to_numpy(), len(chunk.dictionary))
        array = pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), chunk.dictionary.take(pa.array(used)))
        table = table.set_column(i, field, pa.chunked_array([array], type=field.type))
    return table


#: Rows of a text column looked at to judge whether a Parquet dictionary is worth it.
_SAMPLE_ROWS = 4096


def _dictionary_encoded(table) -> list[str]:
    """The columns worth a Parquet dictionary: all but text columns of mostly distinct values
    (claim and line ids: over a quarter of their first rows distinct), where a dictionary
    saves little space and costs a hash of every value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = []
    for field, col in zip(table.schema, table.columns, strict=True):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            head = col.slice(0, _SAMPLE_ROWS)
            if len(head) and pc.count_distinct(head).as_py() * 4 > len(head):
                continue
        names.append(field.name)
    return names


def _int32_dictionaries(table):
    """The table with 32-bit dictionary indices in every categorical column.

    Each chunk codes its categoricals on its own, and Arrow gives a column of 100 categories
    8-bit indices and one of 200 categories 16-bit ones: files of one run would then disagree
    on a column's type and the folder would not read back as one table. Fixed at 32 bits, as
    :func:`write_dask_parquet` does, every file has the same schema (the data pages are the
    same; only the Arrow type stored with the file differs).
    """
    import pyarrow as pa

    fields = [pa.field(f.name, pa.dictionary(pa.int32(), f.type.value_type, f.type.ordered), f.nullable, f.metadata)
              if pa.types.is_dictionary(f.type) and f.type.index_type != pa.int32() else f for f in table.schema]
    schema = pa.schema(fields, metadata=table.schema.metadata)
    return table if schema.equals(table.schema, check_metadata=True) else table.cast(schema)


# The table a forked worker reads its chunk from (inherited from the parent, never copied).
_SHARED: dict[str, Any] = {}


def keep_freed_memory() -> None:
    """Let this process reuse the memory it frees instead of handing it back to the kernel.

    Every chunk allocates and frees the same large arrays. By default glibc returns blocks of
    more than a few MB to the kernel on free (mallopt(3): M_MMAP_THRESHOLD, M_TRIM_THRESHOLD),
    so the next chunk has the kernel fault in and zero every page again, which costs a
    quarter of the CPU time. Arrow's own allocator (mimalloc) does the same with the memory
    of the tables read, taken and written; Arrow is set to allocate through the same C
    allocator instead (``pyarrow.set_memory_pool``), which halves the system time of reading
    the Parquet file and of taking each chunk. Called only in processes that exist to
    evaluate chunks (the workers and the command line), never in a caller's process.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "mallopt"):
            libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD: blocks below 256 MB come from the heap
            libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GB of freed heap
            import pyarrow as pa

            pa.set_memory_pool(pa.system_memory_pool())
    except OSError:  # not glibc: nothing to tune
        pass


def _evaluate_chunk(part: int) -> tuple[int, list[Path], dict[str, float]]:
    """Evaluate and write chunk ``part``: its lines, its files and the CPU seconds of each step."""
    s = _SHARED
    cpu = time.process_time()
    rows = np.flatnonzero(s["chunk"] == part)
    if not len(rows):
        return 0, [], {}
    table = s["table"]
    part_of = table if len(rows) == table.num_rows else _compact(_take_rows(table, rows), s["unique"])
    if s["key"] is not None:  # each worker hashes the ids of its own patients, each distinct id once
        part_of = _pseudonymised_patients(part_of, s["visit_keys"][0], s["key"], s["patient_type"])
    # indexed by row in the source, so that an error names the rows a user can find
    lines = part_of.to_pandas().set_axis(pd.Index(rows, name="row"))
    steps = {"take the chunk's lines": time.process_time() - cpu}
    cpu = time.process_time()
    out = evaluate(lines, s["payers"], s["reference"], visit_keys=s["visit_keys"], denial_model=s["denial_model"])
    steps["evaluate (rule stages)"] = time.process_time() - cpu
    cpu = time.process_time()
    files = _write_partitioned(out, s["dst"], part, s["partition_by"])
    steps["write the month files"] = time.process_time() - cpu
    return len(out), files, steps


def evaluate_parquet(
    src: str | Path,
    dst: str | Path,
    payers: Mapping[str, PayerPolicy] | str | Path,
    reference: Reference | None = None,
    *,
    partition_by: str = PARTITION_COLUMN,
    visit_keys: Sequence[str] = VISIT_KEYS,
    chunk_lines: int = CHUNK_LINES,
    workers: int | None = None,
    denial_model: Any | None = None,
    overwrite: bool = False,
    pseudonymise: bool = True,
    salt: str | None = None,
    progress: Callable[..., None] | None = None,
) -> ParquetRun:
    """Evaluate service lines stored as Parquet and write the result partitioned by year-month.

    The lines are split by patient into chunks of about ``chunk_lines`` lines (a patient's
    lines always in one chunk); every chunk is evaluated with :func:`evaluate` and written under
    ``dst/year_month=YYYY-MM/part-CCCCC.parquet``. Because no rule crosses patients, the
    figures equal those of one :func:`evaluate` over all lines.

    The written lines carry no direct identifiers: columns that name or identify a patient
    (names, dates of birth, member, subscriber and account ids, contact details) are not even
    read, and the patient id is replaced, before evaluation, by the salted pseudonym of
    :func:`analytics.privacy.pseudonymise`. Each distinct id is hashed once; a pseudonym
    stands for one id, so every figure is that of the raw ids.

    Parameters
    ----------
    src
        A Parquet file, or a directory of them (Hive partitions are read as columns).
    dst
        Output directory. It must be empty or absent unless ``overwrite=True``, which first
        removes the ``{partition_by}=*`` directories a previous run wrote there.
    payers
        Policies by payer id, or the path of a payers.yaml.
    chunk_lines
        Lines per chunk (whole patients, so chunks vary a little). More than one chunk is
        rounded up to a multiple of the processes, so that none waits idle at the end.
    workers
        Processes evaluating chunks at once (default: the CPU count, at most the number of
        chunks). Workers are forked and read their chunk from the parent's table, so only
        results are written, nothing is copied between processes; where ``fork`` is not
        available one process is used.
    pseudonymise
        Replace the patient id (``visit_keys[0]``) by its pseudonym and leave the identifying
        columns out (default). False writes the ids and columns as read, for tables that
        never leave the machine. Ids of a file ``intake`` wrote (its ``lines.parquet`` says
        in its metadata that they are pseudonyms already) are kept as they are, so the
        evaluated lines carry the same pseudonyms as the intake's.
    salt
        Secret for the pseudonyms. Default: the ``ANALYTICS_ID_SALT`` environment variable,
        else the public default of :func:`analytics.privacy.pseudonymise`.
    progress
        Called as ``progress(0, stage="evaluating", total=lines)`` once the lines are read,
        then ``progress(n)`` as each chunk of ``n`` lines is written (an
        :class:`analytics.progress.Progress` draws it on a terminal).

    Returns
    -------
    ParquetRun

    Examples
    --------
    >>> import tempfile
    >>> from analytics.payers import load_payers
    >>> pol = load_payers({"payers": {"mc": {"kind": "medicare"}}})
    >>> df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2025-06-02"),
    ...     "provider_id": "a", "payer_id": "mc", "cpt": ["97110", "97140"], "minutes": [33, 7],
    ...     "modifiers": "GP"})
    >>> tmp = Path(tempfile.mkdtemp())
    >>> df.to_parquet(tmp / "lines.parquet")
    >>> run = evaluate_parquet(tmp / "lines.parquet", tmp / "out", pol, workers=1)
    >>> run.lines_out, run.partitions
    (2, ['2025-06'])
    >>> out = pd.read_parquet(tmp / "out")
    >>> out["allowed"].tolist()
    [50.62, 20.7]
    >>> from analytics.privacy import pseudonym
    >>> out["patient_id"].astype(str).unique().tolist() == [pseudonym("p")]  # "p", pseudonymised
    True
    """
    import pyarrow as pa

    started, cpu = time.perf_counter(), time.process_time()
    ref = reference or load_reference()
    pol = _as_payers(payers)
    dst = Path(dst)
    patient_col = visit_keys[0]
    dropped: list[str] = []
    if pseudonymise and Path(src).exists():
        import pyarrow.parquet as pq

        names = pq.ParquetDataset(src).schema.names
        dropped = identifying_columns(names, patient_col)
        table = read_lines_table(src, [c for c in names if c not in dropped])
    else:
        table = read_lines_table(src)
    prepare_output(dst, partition_by, overwrite)
    steps = {"read the lines": time.process_time() - cpu}
    cpu = time.process_time()
    n = table.num_rows
    n_chunks = _chunk_count(n, chunk_lines, _workers(workers, n))
    chunk, patients, coded = _patient_chunks(table, patient_col, n_chunks)  # raises when there is no patient column
    key, kind, unique = None, None, ()
    if pseudonymise and patient_col not in marked_pseudonymous(table.schema):
        kind = table.schema.field(patient_col).type
        value_type = kind.value_type if pa.types.is_dictionary(kind) else kind
        if pa.types.is_string(value_type) or pa.types.is_large_string(value_type):
            # the raw ids, coded once: every chunk hashes its own patients' ids (in the workers)
            key, unique = resolve_salt(salt), (patient_col,)
            table = table.set_column(table.column_names.index(patient_col), patient_col, coded)
        else:  # numeric ids: hashed here as their text
            table = pseudonymise_table(table, patient_col, resolve_salt(salt))
    workers = _workers(workers, n_chunks)
    _return_freed_memory()  # the file's copies of the patient dictionary, one per batch read
    steps["code the patients, deal them to chunks"] = time.process_time() - cpu
    _SHARED.update(table=table, chunk=chunk, payers=pol, reference=ref, visit_keys=tuple(visit_keys),
                   denial_model=denial_model, dst=dst, partition_by=partition_by, key=key, patient_type=kind,
                   unique=unique)
    try:
        tick = progress or (lambda *_, **__: None)
        tick(0, stage="evaluating", total=n)
        results = []
        if workers == 1:
            for part in range(n_chunks):
                results.append(_evaluate_chunk(part))
                tick(results[-1][0])
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("fork"), initializer=keep_freed_memory) as pool:
                for done in pool.map(_evaluate_chunk, range(n_chunks)):
                    results.append(done)
                    tick(done[0])
    except BaseException:
        for written in dst.glob(f"{partition_by}=*"):  # no half-written output is left behind
            shutil.rmtree(written, ignore_errors=True)
        raise
    finally:
        _SHARED.clear()
    files = sorted(f for _, fs, _ in results for f in fs)
    partitions = sorted({f.parent.name.split("=", 1)[1] for f in files})
    for _, _, chunk_steps in results:
        for name, seconds in chunk_steps.items():
            steps[name] = steps.get(name, 0.0) + seconds
    return ParquetRun(lines_in=n, lines_out=sum(k for k, _, _ in results), patients=patients, chunks=n_chunks,
                      workers=workers, partitions=partitions, files=files,
                      seconds=time.perf_counter() - started, pseudonymised=pseudonymise,
                      dropped_columns=tuple(dropped), cpu_seconds=steps)


def _chunk_count(n: int, chunk_lines: int, workers: int) -> int:
    """Chunks of about ``chunk_lines`` lines for ``n`` lines, rounded up to a multiple of the
    processes when there is more than one chunk: no process then waits idle for another's last
    chunk (11 chunks on 2 processes leave one idle for a whole chunk; 12 do not)."""
    n_chunks = max(1, math.ceil(n / max(int(chunk_lines), 1)))
    if n_chunks > 1 and workers > 1:
        n_chunks = math.ceil(n_chunks / workers) * workers
    return n_chunks


def _workers(workers: int | None, n_chunks: int) -> int:
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"workers must be 1 or more (got {workers}).")
    try:
        get_context("fork")
    except ValueError:  # no fork on this platform: chunks run one after another
        return 1
    return max(1, min(int(workers), n_chunks))


def prepare_output(dst: Path, partition_by: str, overwrite: bool) -> None:
    """Make ``dst`` ready for evaluated partitions: absent or empty, or (with ``overwrite``)
    cleared of the ``{partition_by}=*`` directories of a previous run."""
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst} is a file; pass a directory for the evaluated lines.")
    if dst.exists() and any(dst.iterdir()):
        if not overwrite:
            raise InputError(f"{dst} is not empty. Choose a new directory, or pass overwrite=True "
                             "(--overwrite) to replace the partitions a previous run wrote there.")
        for old in dst.glob(f"{partition_by}=*"):
            shutil.rmtree(old)
    dst.mkdir(parents=True, exist_ok=True)


def evaluate_dask(
    lines,
    payers: Mapping[str, PayerPolicy] | str | Path,
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
    npartitions: int | None = None,
    denial_model: Any | None = None,
    partition_by: str | None = PARTITION_COLUMN,
):
    """:func:`evaluate` on a ``dask.dataframe`` of service lines, partition by partition.

    The lines are first shuffled on the patient id so that each patient's lines are in one
    partition (every rule is local to a patient); then :func:`evaluate` runs on each
    partition with ``map_partitions``. The result is lazy; call ``.compute()``,
    ``.persist()`` or :func:`write_dask_parquet` on it. It keeps the ids as given;
    :func:`write_dask_parquet` pseudonymises them and leaves identifying columns out of the
    files (``.to_parquet(...)`` writes everything as it is).

    Parameters
    ----------
    lines
        A ``dask.dataframe.DataFrame`` of service lines (e.g. ``dd.read_parquet(path)``).
    npartitions
        Partitions after the shuffle (default: as many as the input has).
    partition_by
        Name of a ``YYYY-MM`` column to add for ``to_parquet(partition_on=[...])``; None adds none.

    Returns
    -------
    dask.dataframe.DataFrame
        The columns of :func:`evaluate` (plus ``partition_by``), categoricals with unknown
        categories (each partition has its own).

    Examples
    --------
    >>> import dask.dataframe as dd
    >>> from analytics.payers import load_payers
    >>> pol = load_payers({"payers": {"mc": {"kind": "medicare"}}})
    >>> df = pd.DataFrame({"patient_id": ["p", "q"], "service_date": pd.Timestamp("2025-06-02"),
    ...     "provider_id": "a", "payer_id": "mc", "cpt": ["97110", "97140"], "minutes": [33, 17],
    ...     "modifiers": "GP"})
    >>> out = evaluate_dask(dd.from_pandas(df, npartitions=2), pol)
    >>> out.compute(scheduler="sync").sort_values("patient_id")["units"].tolist()
    [2, 1]
    """
    try:
        from dask.dataframe.utils import clear_known_categories
    except ImportError as exc:  # pragma: no cover - the optional extra
        raise InputError('evaluate_dask needs Dask: pip install "massage-billing-analytics[dask]".') from exc
    ref = reference or load_reference()
    pol = _as_payers(payers)
    patient_col = visit_keys[0]
    if patient_col not in lines.columns:
        raise InputError(f"The service lines have no {patient_col!r} column to partition by patient.")
    shuffled = lines.shuffle(on=patient_col, npartitions=npartitions or lines.npartitions)
    meta = _with_month(evaluate(lines._meta, pol, ref, visit_keys=visit_keys, denial_model=denial_model),
                       partition_by)
    return shuffled.map_partitions(
        _evaluate_partition, pol, ref, tuple(visit_keys), denial_model, partition_by,
        meta=clear_known_categories(meta), align_dataframes=False,
    )


def write_dask_parquet(
    evaluated,
    path: str,
    *,
    partition_by: str = PARTITION_COLUMN,
    pseudonymise: bool = True,
    salt: str | None = None,
    patient_column: str = VISIT_KEYS[0],
    **kwargs,
) -> None:
    """Write the output of :func:`evaluate_dask` as Parquet partitioned by ``partition_by``.

    The files carry no direct identifiers: columns that name or identify a patient (names,
    dates of birth, member, subscriber and account ids, contact details) are left out and
    ``patient_column`` is replaced by the salted pseudonym of
    :func:`analytics.privacy.pseudonymise`, each distinct id of a partition hashed once. A
    pseudonym stands for one id, so grouping by patient gives what the raw ids give.

    Each partition codes its categoricals on its own (a few reasons here, many there), so
    their Arrow type is fixed to 32-bit dictionary indices for every file to share one schema.
    Further keyword arguments go to ``dask.dataframe.DataFrame.to_parquet``.

    Parameters
    ----------
    evaluated
        A ``dask.dataframe.DataFrame``, usually from :func:`evaluate_dask`.
    path
        Output directory (local, or a URL such as ``s3://bucket/evaluated/``).
    pseudonymise
        Pseudonymise ``patient_column`` and leave out the identifying columns (default).
        False writes them as they are, for tables that never leave the machine.
    salt
        Secret for the pseudonyms. Default: the ``ANALYTICS_ID_SALT`` environment variable of
        this (the client's) process, else the public default of
        :func:`analytics.privacy.pseudonymise`. It travels with the tasks to the workers.
    patient_column
        The patient id column.
    """
    import pyarrow as pa

    if pseudonymise:
        from dask.dataframe.utils import clear_known_categories

        drop = identifying_columns(list(evaluated.columns), patient_column)
        column = patient_column if patient_column in evaluated.columns else None
        key = resolve_salt(salt)
        meta = clear_known_categories(pseudonymise_frame(evaluated._meta, column, key, drop))
        evaluated = evaluated.map_partitions(pseudonymise_frame, column, key, drop, meta=meta,
                                             align_dataframes=False)
    categorical = [c for c, t in evaluated.dtypes.items() if isinstance(t, pd.CategoricalDtype) and c != partition_by]
    schema = {c: pa.dictionary(pa.int32(), pa.large_string()) for c in categorical}
    evaluated.to_parquet(path, partition_on=[partition_by], write_index=False,
                         schema={**schema, **kwargs.pop("schema", {})}, **kwargs)


def _evaluate_partition(part: pd.DataFrame, payers, ref, visit_keys, denial_model, partition_by) -> pd.DataFrame:
    out = evaluate(part, payers, ref, visit_keys=visit_keys, denial_model=denial_model)
    return _with_month(out, partition_by)


def _with_month(out: pd.DataFrame, partition_by: str | None) -> pd.DataFrame:
    if not partition_by:
        return out
    return out.assign(**{partition_by: _year_month(out["service_date"])})
