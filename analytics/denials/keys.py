"""Integer keys that join the tables of a remittance (lines, claims, adjustments, remarks,
payments) without a hash merge, and text columns built from a few distinct values.

:func:`analytics.denials.outcomes.line_outcomes` joins up to millions of 835 rows; these
helpers reproduce what ``DataFrame.merge`` would match, in the order it would give, on plain
int64 keys (binary search when the keys are sorted, which 835 tables read in file order are).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "ARROW_STR",
    "STR",
    "contained",
    "increasing",
    "inner_pairs",
    "int_codes",
    "joined",
    "positions",
    "shared_codes",
    "text_column",
    "tuple_keys",
]

# pandas' "str" dtype, the one it gives a column of Python strings (Arrow-backed with pyarrow)
STR = pd.Series([""], dtype="str").dtype
ARROW_STR = getattr(STR, "storage", "") == "pyarrow"
_KEY_LIMIT = 1 << 62  # largest key range packed into one int64 key


def shared_codes(columns, *, sort: bool = False) -> list[np.ndarray]:
    """Integer codes of the values of several columns, on one scale.

    Equal values get equal codes in every column and a missing value gets -1, so the codes
    match where ``merge`` matches the values (missing matches missing). With ``sort`` the
    codes follow the sorted order of the values, missing first.
    """
    codes, uniques = [], []
    for col in columns:
        c, u = pd.factorize(col, use_na_sentinel=True)
        codes.append(c.astype(np.int64, copy=False))
        uniques.append(pd.Series(u))
    to_shared, _ = pd.factorize(
        pd.concat(uniques, ignore_index=True), sort=sort, use_na_sentinel=True
    )
    out, start = [], 0
    for c, u in zip(codes, uniques, strict=True):
        lookup = np.append(to_shared[start : start + len(u)], -1).astype(np.int64)
        out.append(lookup[c])  # code -1 (missing) picks the appended -1
        start += len(u)
    return out


def int_codes(columns) -> tuple[list[np.ndarray], int]:
    """Integer key columns (``int64`` or ``Int64``) as int64 arrays, and the value standing
    for a missing one: one below the smallest, so that missing matches missing, sorting first."""
    filled, missing, lows = [], [], []
    for col in columns:
        s = col if isinstance(col, pd.Series) else pd.Series(col)
        plain = isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu"  # no missing values
        na = np.zeros(len(s), dtype=bool) if plain else s.isna().to_numpy()
        v = s.to_numpy(dtype=np.int64, na_value=0) if na.any() else s.to_numpy(dtype=np.int64)
        filled.append(v)
        missing.append(na)
        if not na.all():
            lows.append(int(v[~na].min()))
    below = min(lows, default=0) - 1
    out = [np.where(na, below, v) if na.any() else v for v, na in zip(filled, missing, strict=True)]
    return out, below


def tuple_keys(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
    """One int64 key per row of each part for its tuple of integer key columns.

    Every part lists the same number of equally long columns. Two rows, of the same part or
    not, get the same key exactly when their tuples are equal, and keys sort as the tuples do.
    """
    ncols = len(parts[0])
    lows, spans = [], []
    for j in range(ncols):
        present = [np.asarray(p[j]) for p in parts if len(p[j])]
        lo = min((int(c.min()) for c in present), default=0)
        lows.append(lo)
        spans.append(max((int(c.max()) for c in present), default=lo) - lo + 1)
    if int(np.prod(np.array(spans, dtype=object))) < _KEY_LIMIT:  # mixed-radix number
        keys = []
        for p in parts:
            key = np.asarray(p[0], dtype=np.int64) - lows[0]
            for j in range(1, ncols):
                key *= spans[j]
                key += np.asarray(p[j], dtype=np.int64)
                key -= lows[j]
            keys.append(key)
        return keys
    # too wide for one integer: the rank of each distinct tuple
    sizes = [len(p[0]) for p in parts]
    cols = [np.concatenate([np.asarray(p[j], dtype=np.int64) for p in parts]) for j in range(ncols)]
    order = np.lexsort(cols[::-1])
    stacked = np.stack([c[order] for c in cols])
    new = np.r_[True, (stacked[:, 1:] != stacked[:, :-1]).any(axis=0)]
    key = np.empty(sum(sizes), dtype=np.int64)
    key[order] = np.cumsum(new) - 1
    return np.split(key, np.cumsum(sizes)[:-1])


def increasing(keys: np.ndarray, strictly: bool = True) -> bool:
    """Whether ``keys`` are sorted ascending (``strictly``: with no repeats)."""
    if len(keys) < 2:
        return True
    return bool((keys[1:] > keys[:-1]).all() if strictly else (keys[1:] >= keys[:-1]).all())


def positions(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Where each ``left`` key is in ``right`` (distinct keys), -1 where it is not."""
    if len(right) and increasing(right):  # sorted: binary search, no hash table
        at = np.minimum(np.searchsorted(right, left), len(right) - 1)
        return np.where(right[at] == left, at, -1)
    return pd.Index(right).get_indexer(left)


def contained(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Whether each ``left`` key is among the ``right`` keys."""
    if len(right) and increasing(right, strictly=False):
        at = np.minimum(np.searchsorted(right, left), len(right) - 1)
        return right[at] == left
    return pd.Series(left).isin(right).to_numpy(dtype=bool)


def inner_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the row pairs of an inner ``merge`` of ``left`` with ``right`` on one
    integer key, in the order merge gives them (left rows in order, each with its matches)."""
    if not len(left) or not len(right):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if increasing(right, strictly=False):  # sorted: each left key's run of equal right keys
        lo = np.searchsorted(right, left, side="left")
        count = np.searchsorted(right, left, side="right") - lo
        li = np.repeat(np.arange(len(left)), count)
        ends = np.cumsum(count)
        ri = np.arange(len(li)) - np.repeat(ends - count - lo, count)
        return li, ri
    if pd.Index(right).is_unique:
        at = pd.Index(right).get_indexer(left)
        keep = np.flatnonzero(at >= 0)
        return keep, at[keep]
    m = pd.DataFrame({"k": left, "_l": np.arange(len(left))}).merge(
        pd.DataFrame({"k": right, "_r": np.arange(len(right))}), on="k", how="inner"
    )
    return m["_l"].to_numpy(), m["_r"].to_numpy()


def text_column(texts: np.ndarray, codes: np.ndarray):
    """``texts[codes]`` as a column.

    When every text is a string, a pandas "str" array (the dtype pandas infers for Python
    strings) taken from the few distinct texts; else the object values, for pandas to infer
    the dtype as it does for any object array. An empty column stays object.
    """
    texts = np.asarray(texts, dtype=object)
    if len(codes) and ARROW_STR and all(isinstance(t, str) for t in texts):
        return pd.array(texts, dtype=STR).take(codes)
    return texts[codes]


def joined(row: np.ndarray, values: np.ndarray, n: int):
    """The ``values`` of each of ``n`` rows joined with commas ("" for a row with none).

    ``row`` (ascending) says whose each value is; a row's values are joined in their order.
    """
    if not n:
        return np.zeros(0, dtype=object)
    start = np.flatnonzero(np.r_[True, row[1:] != row[:-1]]) if len(row) else row[:0]
    lists = pa.LargeListArray.from_arrays(
        pa.array(np.r_[start, len(row)].astype(np.int64)),
        pa.array(values, type=pa.large_string()),
    )
    joined = pc.binary_join(lists, pa.scalar(",", type=pa.large_string()))
    pick = np.full(n, len(start), dtype=np.int64)  # past the end: the "" appended below
    pick[row[start]] = np.arange(len(start))
    texts = pa.concat_arrays([joined, pa.array([""], type=pa.large_string())]).take(pa.array(pick))
    if ARROW_STR:
        return pd.arrays.ArrowStringArray(texts, dtype=STR)
    return texts.to_numpy(zero_copy_only=False)
