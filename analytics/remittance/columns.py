"""Columns of the 835 tables from what the scan collected: typed arrays joined across parts,
values placed at their rows, composites decoded, dates parsed and amounts checked.

Codes and dates repeat a lot in a remittance, so each distinct value is split or parsed once.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from itertools import chain

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.exceptions import X12Error
from analytics.remittance.notes import Notes
from analytics.remittance.tables import DATE
from analytics.remittance.tokenizer import PAD

NAT = np.datetime64("NaT", "us")

Placed = Sequence[tuple[dict[int, object], int]]


def spread(items: Placed, n: int, fill: object = None) -> np.ndarray:
    """A length-``n`` array from ``(values, shift)`` pairs: each ``{number: value}`` dict puts
    its values at rows ``number + shift``; ``fill`` elsewhere."""
    items = [(values, shift) for values, shift in items if values]
    numeric = isinstance(fill, float)
    out = np.full(n, fill) if numeric else np.full(n, fill, dtype=object)
    if not items:
        return out
    count = sum(len(values) for values, _ in items)
    if len(items) == 1:
        values, shift = items[0]
        rows = np.fromiter(values, dtype="int64", count=count) + shift
        found: Iterable[object] = values.values()
    else:
        rows = np.fromiter(
            chain.from_iterable(values for values, _ in items), dtype="int64", count=count
        ) + np.repeat([shift for _, shift in items], [len(values) for values, _ in items])
        found = chain.from_iterable(values.values() for values, _ in items)
    if numeric:
        out[rows] = np.fromiter(found, dtype="float64", count=count)
    else:
        vals = np.empty(count, dtype=object)
        vals[:] = list(found)
        out[rows] = vals
    return out


def join_arrays(pieces: Sequence[array], dtype: str) -> np.ndarray:
    """One typed array from the scans' arrays, in order."""
    if len(pieces) == 1:
        return np.array(pieces[0], dtype=dtype)
    joined = array(pieces[0].typecode)
    for piece in pieces:
        joined.extend(piece)
    return np.array(joined, dtype=dtype)


def chain_lists(pieces: Sequence[list[object]]) -> list[object]:
    return pieces[0] if len(pieces) == 1 else list(chain.from_iterable(pieces))


def row_starts(counts: np.ndarray) -> np.ndarray:
    """Where each part's rows start when the parts are stacked."""
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype("int64")


def factorize(values: Sequence[object]) -> tuple[np.ndarray, list[object]]:
    """Codes (-1 for None) and distinct values, hashed in C; codes and dates repeat a lot."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    codes, distinct = pd.factorize(column, use_na_sentinel=True)
    return codes, list(distinct)


def decode_procedures(values: Sequence[str], separator: str) -> list[np.ndarray]:
    """SVC01 composites (qualifier:code:mod1:mod2:mod3:mod4) to seven columns: qualifier,
    code, four modifiers and the modifiers joined with commas. Each distinct composite is
    split once (a practice bills a few dozen code/modifier combinations)."""
    codes, distinct = factorize(values)
    parts = [(v.split(separator) + PAD[:6])[:6] for v in distinct]
    for p in parts:
        p.append(",".join([m for m in p[2:6] if m]))
    columns = []
    for k in range(7):
        column = np.empty(len(parts), dtype=object)
        column[:] = [p[k] for p in parts]
        columns.append(column[codes])
    return columns


class DateParser:
    """CCYYMMDD to datetime64[us], parsing each distinct value once; notes invalid ones in the
    notes of the file they come from (``files``: the part of each value, when there are
    several parts)."""

    def __init__(self, notes: Sequence[Notes]) -> None:
        self.notes = notes

    def __call__(
        self,
        values: Sequence[object],
        segments: Sequence[int],
        what: str,
        files: np.ndarray | None = None,
    ) -> np.ndarray:
        n = len(values)
        if n == 0:
            return np.empty(0, dtype=DATE)
        codes, distinct = factorize(values)
        present = [v if isinstance(v, str) and v else None for v in distinct]
        if not any(present):  # nothing to parse (a date the file does not use)
            return np.full(n, NAT)
        raw = pd.Series(present, dtype=object)
        # one extra NaT at the end for the missing values (code -1)
        parsed = np.append(
            pd.to_datetime(raw, format="%Y%m%d", errors="coerce").to_numpy(dtype=DATE), NAT
        )
        bad = np.flatnonzero(np.isnat(parsed[:-1]) & raw.notna().to_numpy())
        if len(bad):
            rows = np.flatnonzero(np.isin(codes, bad))
            if files is None:
                by_file = [(0, rows)]
            else:
                owner = files[rows]
                by_file = [(f, rows[owner == f]) for f in np.unique(owner).tolist()]
            for f, found in by_file:
                shown = [f"{values[i]!r} (segment {segments[i]})" for i in found[:5].tolist()]
                self.notes[f].bad_dates(what, len(found), shown)
        return parsed[codes]


def check_finite(
    values: np.ndarray,
    segments: np.ndarray,
    what: str,
    names: Sequence[str],
    files: np.ndarray | None = None,
) -> np.ndarray:
    # float() accepts "nan" and "inf"; an amount must be a finite number.
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        number = int(segments[bad[0]])
        name = names[0 if files is None else int(files[bad[0]])]
        raise X12Error(
            f"{name}: segment {number} {what} is not a finite number. Correct the amount in the "
            f"file or ask the sender for a corrected file.",
            where=f"{name} segment {number}",
        )
    return values


def label_column(labels: Sequence[str], codes: np.ndarray) -> pa.Array:
    """A string column from a few labels and each row's label number."""
    return pa.array(labels, type=pa.large_string()).take(pa.array(codes, type=pa.int64()))


def or_none(values: list[str]) -> list[str | None]:
    return [v or None for v in values]
