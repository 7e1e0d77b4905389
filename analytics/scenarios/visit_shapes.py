"""Visits the payer rules price alike: a visit's shape, so that each shape is priced once.

The practice what-if (:func:`~analytics.scenarios.practice_whatif`) prices every visit of the
period each documented way. Thousands of visits share everything the rules read: the payer,
the codes with their minutes, modifiers and charges, the provider type, the prescription and
authorisation flags, and where the visit stands against each payer's thresholds. Such visits
get the same units, edits and allowed amounts, so the alternatives of one of them stand for
all; only the learned chance of denial, which reads the visit's own diagnoses and provider,
stays per visit.

What a visit's shape keeps of each rule input (see ``docs/rules.md`` and the engine modules
:mod:`analytics.units`, :mod:`analytics.edits`, :mod:`analytics.pricing`):

* the patient and the rendering provider are read only as the visit's key (each alternative
  is priced as its own patient); within a visit, which lines share a provider and a date is
  kept;
* diagnoses are not read by the rules (only by the learned chance of denial);
* the date of service is read through the calendar year (fee schedule, deductibles, visit
  counts, the KX threshold), the conversion factor in force (``effective_from`` ..
  ``effective_to``) and the NCCI pairs in force (``effective_date`` .. ``deletion_date``):
  the shape keeps the year and the span between those dates the date falls in;
* the submission date is read only against the payer's ``timely_filing_days``: the shape
  keeps whether the line is past it;
* the visits before in the year are read only against the payer's ``visit_limit`` and
  ``prior_auth_after_visits`` (the visit's number, one more, past either): the shape keeps
  whether the visit is past each (each alternative is priced as its own patient's one visit).

Every other column of the priced lines is kept as it is. The caller checks the shapes
against a full pricing of the lines as billed, and prices every visit on its own when any
differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.payers import payer_table
from analytics.refdata import Reference

__all__ = ["sequence_ids", "block_rows", "rule_date_classes", "rule_inputs", "combine", "visit_shapes",
           "first_of_each", "KEY_ONLY_COLUMNS", "CLASSED_COLUMNS"]

#: Columns the rules read only as the visit's key (patient, provider) or not at all (diagnoses),
#: and the row labels of the what-if (visit, alternative).
KEY_ONLY_COLUMNS = ("visit", "alt", "patient_id", "provider_id", "dx_codes")
#: Columns the rules read through a calendar or a payer threshold: kept as their class.
CLASSED_COLUMNS = ("service_date", "submission_date", "visits_before")


def _dense(values: Any) -> np.ndarray:
    """Dense integer codes of a column in order of first appearance, a missing value its own
    code (never merged with ``""``)."""
    return pd.factorize(values if isinstance(values, pd.Series) else pd.Series(values),
                        use_na_sentinel=False)[0].astype(np.int64, copy=False)


def _codes(values: Any) -> np.ndarray:
    """Non-negative integer codes of a column (equal values, equal codes): small non-negative
    integers stand for themselves, anything else is numbered by :func:`_dense`."""
    array = values.to_numpy() if isinstance(values, pd.Series) and values.dtype.kind in "iub" else values
    if isinstance(array, np.ndarray) and array.dtype.kind in "iub" and len(array) and array.min() >= 0 \
            and array.max() < 4 * len(array):
        return array.astype(np.int64, copy=False)
    return _dense(values)


def _pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dense codes (in order of first appearance) of the pairs (a, b) of non-negative integers."""
    if not len(a):
        return np.zeros(0, dtype=np.int64)
    return _dense(a * (int(b.max()) + 1) + b)


def sequence_ids(starts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """One id per group of consecutive rows, equal for groups with the same sequence of values.

    Parameters
    ----------
    starts
        First row of each group (increasing; the last group runs to the end of ``values``).
    values
        Non-negative integer code of each row.

    Returns
    -------
    numpy.ndarray
        Dense ids numbered in order of first appearance; two groups share one exactly when
        they hold the same values in the same order.

    Examples
    --------
    >>> sequence_ids(np.array([0, 2, 3, 5]), np.array([1, 2, 1, 1, 2, 1])).tolist()
    [0, 1, 0, 1]
    """
    n = len(values)
    if not len(starts):
        return np.zeros(0, dtype=np.int64)
    lengths = np.diff(np.r_[starts, n])
    key = np.zeros(len(starts), dtype=np.int64)
    active = np.arange(len(starts))
    step = 0
    while len(active):
        # only the groups still running get a new id: (their id so far, this row's value)
        code = values[starts[active] + step].astype(np.int64) + 1
        fresh = _pair(key[active], code)
        key[active] = int(key.max()) + 1 + fresh
        step += 1
        active = active[lengths[active] > step]
    return _dense(key)


def block_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The rows of several blocks one after another: ``starts[i] .. starts[i] + lengths[i] - 1``.

    Examples
    --------
    >>> block_rows(np.array([5, 0]), np.array([2, 3])).tolist()
    [5, 6, 0, 1, 2]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lengths), lengths) + np.arange(total)


def rule_date_classes(dates: pd.Series, cpt_values: Sequence[str], ref: Reference) -> np.ndarray:
    """Dates the rules treat alike share a class: the same year, conversion factor and NCCI pairs.

    A class is a calendar year cut at every date a conversion factor or an NCCI pair of the
    codes ``cpt_values`` comes into force or ends; a missing date is a class of its own.
    """
    day = pd.to_datetime(dates).to_numpy().astype("datetime64[D]")
    cf = ref.conversion_factors
    bounds = [pd.to_datetime(cf["effective_from"]).to_numpy().astype("datetime64[D]"),
              pd.to_datetime(cf["effective_to"]).to_numpy().astype("datetime64[D]") + np.timedelta64(1, "D")]
    pairs = ref.ncci_pairs_for(list(cpt_values))
    bounds += [np.asarray(pairs["eff"]).astype("datetime64[D]"), np.asarray(pairs["dele"]).astype("datetime64[D]")]
    cuts = np.unique(np.concatenate(bounds))
    cuts = cuts[~np.isnat(cuts)]
    missing = np.isnat(day)
    span = np.where(missing, -1, np.searchsorted(cuts, day, side="right"))
    year = np.where(missing, -1, day.astype("datetime64[Y]").astype(np.int64))
    return _pair(year + 1, span + 1)


def _payer_numbers(payer_ids: pd.Series, payers: Mapping[str, Any], columns: Sequence[str]) -> np.ndarray:
    """Each line's payer settings ``columns`` (of :func:`~analytics.payers.payer_table`) as floats."""
    table = payer_table(payers).set_index("payer_id")[list(columns)].astype(float)
    codes, ids = pd.factorize(payer_ids.astype(str))
    return np.vstack([table.reindex(np.asarray(ids, dtype=object)).to_numpy(dtype=float),
                      np.full((1, len(columns)), np.nan)])[codes]  # a missing payer: no settings


def _line_classes(frame: pd.DataFrame, payers: Mapping[str, Any], ref: Reference) -> list[np.ndarray]:
    """The classes of the date of service, the submission date and the visits before, per line."""
    date = pd.to_datetime(frame["service_date"])
    out = [rule_date_classes(date, pd.unique(frame["cpt"].astype(str)), ref)]
    limits = _payer_numbers(frame["payer_id"], payers, ["timely_filing_days", "visit_limit",
                                                        "prior_auth_after_visits"])
    days = (pd.to_datetime(frame["submission_date"]) - date).dt.days.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        out.append((days > limits[:, 0]).astype(np.int64))  # past timely filing (a missing date is not)
    # the visit's number in the year: its patient's only visit, after the visits before (missing: none)
    number = 1 + np.nan_to_num(pd.to_numeric(frame["visits_before"], errors="coerce")
                               .to_numpy(dtype=float, na_value=np.nan), nan=0.0)
    with np.errstate(invalid="ignore"):
        past = (number[:, None] > limits[:, 1:]).astype(np.int64)  # a missing threshold is never passed
    out.append(past[:, 0] * 2 + past[:, 1])
    return out


def _within_visit(starts: np.ndarray, visit_of_line: np.ndarray, values: pd.Series) -> np.ndarray:
    """Per line, the offset in its visit of the first line with the same value (which lines of a
    visit share a provider or a date)."""
    pair = _pair(visit_of_line, _codes(values))
    return first_of_each(pair)[pair] - starts[visit_of_line]


def rule_inputs(frame: pd.DataFrame, starts: np.ndarray, payers: Mapping[str, Any], ref: Reference, *,
                leave_out: Sequence[str] = ()) -> np.ndarray:
    """A code per line, equal for lines whose inputs to the rules are alike (see the module notes).

    Parameters
    ----------
    frame
        The visits' lines as the rules get them, each visit's lines together, in visit order.
    starts
        First line of each visit in ``frame``.
    payers, ref
        The payer policies and reference tables the lines are priced with.
    leave_out
        Columns of ``frame`` not to compare (the caller rebuilds them).

    Returns
    -------
    numpy.ndarray
        Dense codes, one per line.
    """
    n = len(frame)
    visit_of_line = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    skip = set(KEY_ONLY_COLUMNS) | set(CLASSED_COLUMNS) | set(leave_out)
    columns = [_codes(frame[c]) for c in frame.columns if c not in skip]
    columns += _line_classes(frame, payers, ref)
    columns += [_within_visit(starts, visit_of_line, frame[c]) for c in ("provider_id", "service_date")
                if c in frame.columns]
    return combine(columns, n)


def combine(columns: Sequence[Any], n: int) -> np.ndarray:
    """Dense codes of the rows of several aligned columns (equal rows, equal codes).

    Examples
    --------
    >>> combine([np.array([1, 1, 2]), np.array(["a", "a", "a"])], 3).tolist()
    [0, 0, 1]
    """
    key = np.zeros(n, dtype=np.int64)
    for c in columns:
        key = _pair(key, _codes(c))
    return key


def visit_shapes(starts: np.ndarray, line_key: np.ndarray, visit_columns: Sequence[Any] = ()) -> np.ndarray:
    """The shape of each visit: the sequence of its lines' codes ``line_key`` (see
    :func:`rule_inputs`) and its own ``visit_columns``; visits of one shape get the same
    figures from the rules. Dense ids, numbered in order of first appearance."""
    shape = sequence_ids(starts, line_key)
    for c in visit_columns:
        shape = _pair(shape, _codes(c))
    return shape


def first_of_each(ids: np.ndarray) -> np.ndarray:
    """The first position of each id of ids numbered in order of first appearance.

    Examples
    --------
    >>> first_of_each(np.array([0, 1, 0, 2, 1])).tolist()
    [0, 1, 3]
    """
    return np.flatnonzero(ids > np.maximum.accumulate(np.r_[-1, ids[:-1]]))
