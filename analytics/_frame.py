"""Vectorised kernels the rule stages share: integer codes of columns, grouping without
hashing, stable orders, block-wise evaluation and small lookup tables.

The rule stages (:mod:`analytics.units`, :mod:`analytics.edits`, :mod:`analytics.pricing`)
never loop over lines. They code each column once (:func:`factorize`, :class:`LineKeys`),
work on the integer codes, and build any words or lookups once per distinct value or case
(:func:`distinct_rows`, :func:`cases`), which keeps them fast at millions of lines.
"""

from __future__ import annotations

import collections
import functools
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError

__all__ = [
    "VISIT_KEYS", "BLOCK_LINES", "factorize", "small_codes", "factorize_ints", "ordered_column", "factorize_below",
    "sorted_unique", "dense_ids", "first_rows", "distinct_rows", "cases", "ranks", "key_codes", "visit_codes",
    "LineKeys", "sort_order", "break_ties", "BlockColumn", "in_blocks", "reissue", "categorical", "lookup_pairs",
    "put", "put_rows", "normalise_modifier_text", "modifier_flags", "coded_modifier_flags", "case_rows",
]

#: Columns that identify a visit: same patient, same date, same provider.
VISIT_KEYS = ("patient_id", "service_date", "provider_id")
_MAX_KEY = 2**62
#: evaluate() runs frames of more than 1.5 x this many lines in blocks of whole patients of
#: about this size (see :func:`in_blocks`).
BLOCK_LINES = 1_000_000


def factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and distinct values (as ``str``) of a column; missing values become ``""``.

    Only values that occur are kept (a categorical's unused categories are dropped).

    The rule stages work on these codes and look things up once per distinct value, which
    keeps them fast at millions of lines whatever the column's dtype.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.int64)
        cats = values.cat.categories
        used = np.bincount(codes[codes >= 0], minlength=len(cats)) > 0
        if not used.all():  # only the values the lines use (a chunk's patients, not all)
            codes = np.where(codes >= 0, (np.cumsum(used) - 1)[codes], codes)
            cats = cats[used]
        cats = np.asarray(cats.astype(str), dtype=object)
    elif len(values) <= 4096 and (values.dtype == object or values.dtype == "str") and (
            small := _small_text_codes(values.to_numpy(dtype=object))) is not None:
        codes, cats = small  # a few text values: a dict, no hash-table setup
    else:
        codes, uniq = pd.factorize(values, use_na_sentinel=True)
        codes = codes.astype(np.int64, copy=False)
        cats = np.asarray(pd.Index(uniq).astype(str), dtype=object)
    if (codes < 0).any():
        cats = np.append(cats, "")
        codes = np.where(codes < 0, len(cats) - 1, codes)
    return codes, cats


def _small_text_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``pd.factorize`` of a short array of text (missing values coded -1), or None when a
    value is neither text nor missing."""
    seen: dict[str, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if type(v) is str:
            codes[i] = seen.setdefault(v, len(seen))
        elif v is None or v is pd.NA or (type(v) is float and v != v):
            codes[i] = -1
        else:
            return None
    return codes, np.array(list(seen), dtype=object)


def small_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes ``0 <= c < size`` of an array: integers in a narrow range are used as they are
    (offset by their minimum), anything else is hashed."""
    values = np.asarray(values)
    if values.dtype == bool:
        return values.astype(np.int64), 2
    if values.dtype.kind in "iu" and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 4 * len(values) + 1024:
            return np.subtract(values, lo, dtype=np.int64), hi - lo + 1  # one pass, one new array
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), max(len(uniq), 1)


def factorize_ints(key: np.ndarray, block: np.ndarray | None = None) -> np.ndarray:
    """``pd.factorize`` of an integer key (ids in order of first appearance), hashing each run
    of equal adjacent keys once: the lines of a visit or claim usually come together.

    ``block``, when given, is a non-decreasing array aligned to ``key`` that the key
    determines (e.g. the service day of keys that include the date, on lines in date order):
    no key then occurs in two runs of equal ``block``, so the key is hashed a few thousand
    lines at a time, in tables that stay in the processor's cache, with the same ids.
    """
    n = len(key)
    if n > 1:
        start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        if len(start) < 0.75 * n:
            ids = _factorize_in_blocks(key[start], None if block is None else block[start])
            return np.repeat(ids, np.diff(np.r_[start, n]))
    return _factorize_in_blocks(key, block)


#: Keys hashed at a time by :func:`factorize_ints` given blocks (a table that stays in cache).
_HASH_ROWS = 4096


def _factorize_in_blocks(key: np.ndarray, block: np.ndarray | None) -> np.ndarray:
    n = len(key)
    if block is not None and n > 2 * _HASH_ROWS:
        change = np.flatnonzero(block[1:] != block[:-1]) + 1
        if len(change):
            cuts = change[np.r_[True, np.diff(change // _HASH_ROWS) > 0]]  # at most one in _HASH_ROWS keys
            bounds = np.r_[0, cuts, n].tolist()
            ids = np.empty(n, dtype=np.int64)
            offset = 0
            for a, b in zip(bounds[:-1], bounds[1:], strict=True):
                part = ids[a:b]
                part[:] = pd.factorize(key[a:b])[0]
                if offset:
                    part += offset
                offset = int(part.max()) + 1
            return ids
    return pd.factorize(key)[0].astype(np.int64, copy=False)


def ordered_column(columns: Sequence[np.ndarray]) -> np.ndarray | None:
    """The first of ``columns`` (integer codes) that is non-decreasing in row order and not
    constant (e.g. the service day of lines in date order), else None: the ``block`` of
    :func:`factorize_ints` for a key built of these columns."""
    for col in columns:
        col = np.asarray(col)
        if len(col) > 2 * _HASH_ROWS and col.dtype.kind in "iu" and col[0] != col[-1] and (col[1:] >= col[:-1]).all():
            return col
    return None


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of integers, counted rather than sorted when their range is narrow (years,
    days, small codes)."""
    values = np.asarray(values)
    if values.dtype.kind in "iu" and values.dtype != np.uint64 and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < len(values) + 1024:
            present = np.bincount(values - lo if lo else values, minlength=hi - lo + 1) > 0
            return (np.flatnonzero(present) + lo).astype(values.dtype, copy=False)
    return np.unique(values)


def factorize_below(values: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of integers ``0 <= v < size`` (e.g. the indices of a dictionary):
    codes in order of first appearance and the distinct values in that order, found from the
    first position of each value rather than by hashing."""
    n = len(values)
    at = np.arange(n)
    first = np.full(size, n, dtype=np.int64)
    np.minimum.at(first, values, at)
    used = values[first[values] == at]  # each value where it first appears, in row order
    code = np.zeros(size, dtype=np.int64)
    code[used] = np.arange(len(used))
    return code[values], used.astype(np.int64, copy=False)


def dense_ids(key: np.ndarray, size: int, block: np.ndarray | None = None) -> np.ndarray:
    """Ids ``0 <= id < size`` of the groups of non-negative integer keys below ``size``: the
    keys themselves when ``size`` is small next to the number of rows (no hashing), else dense
    ids from a hash table (``block`` as for :func:`factorize_ints`). Only equality of ids is
    meaningful, not their order."""
    if size <= 4 * len(key) + 1024:
        return key.astype(np.int64, copy=False)
    return factorize_ints(key, block)


def first_rows(group: np.ndarray) -> np.ndarray:
    """First row of each group, for ids numbered in order of first appearance (pd.factorize)."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    top = np.maximum.accumulate(group)
    return np.flatnonzero(np.r_[True, top[1:] != top[:-1]])


def distinct_rows(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group id of each row over several aligned arrays, and the first row of each group.

    The columns' codes are combined in mixed radix into one integer key (narrow integer
    columns need no hashing), which is much faster than a multi-column groupby at millions of
    rows. Groups are numbered in order of first appearance.
    """
    n = len(columns[0]) if len(columns) else 0
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for col in columns:
        codes, size = small_codes(col)
        if radix * size > _MAX_KEY:  # would overflow: fold the key so far first
            key = pd.factorize(key)[0].astype(np.int64, copy=False)
            radix = int(key.max()) + 1 if n else 1
        key += codes * radix
        radix *= size
    group = factorize_ints(key, ordered_column(columns))
    return group, first_rows(group)


def cases(columns: Sequence[np.ndarray], where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`distinct_rows`, for building words once per case: a case id per row and one
    row of each case (any row: every row of a case reads the same). Rows outside ``where``
    are one case whatever their values. Narrow integer columns whose combined range is small
    are grouped through a lookup table, without hashing."""
    n = len(columns[0]) if len(columns) else 0
    coded = [small_codes(c) for c in columns]
    size = math.prod(s for _, s in coded)
    if size >= _MAX_KEY:
        if where is None:
            return distinct_rows(columns)
        return distinct_rows([where] + [np.where(where, c, np.zeros(1, dtype=np.asarray(c).dtype)) for c in columns])
    key = None
    radix = 1
    for codes, s in coded:
        if s == 1:  # one value: adds nothing to the key
            continue
        if key is None:
            key = codes if codes.dtype == np.int64 else codes.astype(np.int64)
        else:  # the codes are a new array of this call's: scaled in place
            np.multiply(codes, radix, out=codes, casting="unsafe")
            key += codes
        radix *= s
    if key is None:
        key = np.zeros(n, dtype=np.int64)
    if where is not None:
        key = np.where(where, key + 1, 0)
        size += 1
    if size > 4 * n + 1024:
        group = factorize_ints(key)
        return group, first_rows(group)
    present = np.zeros(size, dtype=bool)
    present[key] = True
    case_of_key = np.cumsum(present) - 1
    case = case_of_key[key]
    row = np.empty(int(present.sum()), dtype=np.int64)
    row[case] = np.arange(n)
    return case, row


def ranks(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sort rank of each line's value (so ties break the same way whatever the row order)."""
    return np.argsort(np.argsort(values.astype(str), kind="stable"), kind="stable")[codes]


def key_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Codes of one visit-key column (missing values are a value of their own)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy().astype(np.int64) + 1, len(values.cat.categories) + 1
    if isinstance(values.dtype, np.dtype) and values.dtype.kind == "M":
        days = values.to_numpy().astype("datetime64[D]")
        if len(days) and not np.isnat(days).any() and (days == values.to_numpy()).all():  # dates: no hashing
            v = days.astype(np.int64)
            lo = int(v.min())
            if int(v.max()) - lo < 4 * len(v) + 1024:
                return v - lo, int(v.max()) - lo + 1
        values = values.to_numpy().view(np.int64)
    codes, uniq = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int64) + 1, len(uniq) + 1


def visit_codes(lines: pd.DataFrame, keys: Sequence[str] = VISIT_KEYS) -> np.ndarray:
    """Dense integer id of each line's visit (lines sharing all ``keys`` share an id).

    Ids are numbered in order of first appearance.
    """
    missing = [k for k in keys if k not in lines.columns]
    if missing:
        raise InputError(
            f"The service lines lack the visit column(s) {missing}. A visit is patient + service "
            f"date + provider; pass visit_keys=... naming the columns your data uses."
        )
    if len(keys) == 1:
        return pd.factorize(lines[keys[0]], sort=False)[0].astype(np.int64, copy=False)
    key = np.zeros(len(lines), dtype=np.int64)
    radix = 1
    block = None
    for k in keys:
        codes, size = key_codes(lines[k])
        if radix * size > _MAX_KEY:
            key = pd.factorize(key)[0].astype(np.int64, copy=False)
            radix = int(key.max()) + 1 if len(key) else 1
        key += codes * radix
        radix *= size
        if block is None:  # lines in date order: the key is hashed day by day
            block = ordered_column([codes])
    return factorize_ints(key, block)


class LineKeys:
    """Integer codes of the columns every rule stage groups or looks up by.

    Each is computed on first use and kept, so a pipeline that passes one ``LineKeys`` from
    stage to stage factorizes a column once, not once per stage. The stages add columns but
    never reorder or drop rows, so the codes stay aligned to every stage's frame.
    """

    def __init__(self, lines: pd.DataFrame, visit_keys: Sequence[str] = VISIT_KEYS, *,
                 patient_col: str | None = None, code_col: str = "cpt"):
        self.lines = lines
        self.visit_keys = tuple(visit_keys)
        self.patient_col = patient_col or self.visit_keys[0]
        self.code_col = code_col
        self.n = len(lines)
        #: group ids already computed, by grouping (see :func:`analytics.grouping.group_ids`)
        self.groups: dict[tuple, np.ndarray] = {}

    @functools.cached_property
    def cpt(self) -> tuple[np.ndarray, np.ndarray]:
        return factorize(self.lines[self.code_col])

    @functools.cached_property
    def payer(self) -> tuple[np.ndarray, np.ndarray]:
        return factorize(self.lines["payer_id"])

    @functools.cached_property
    def modifiers(self) -> tuple[np.ndarray, np.ndarray]:
        if "modifiers" not in self.lines.columns:
            return np.zeros(self.n, dtype=np.int64), np.array([""], dtype=object)
        return factorize(self.lines["modifiers"])

    @functools.cached_property
    def visit(self) -> np.ndarray:
        return visit_codes(self.lines, self.visit_keys)

    @functools.cached_property
    def n_visits(self) -> int:
        return int(self.visit.max()) + 1 if self.n else 0

    @functools.cached_property
    def patient(self) -> np.ndarray:
        return factorize(self.lines[self.patient_col])[0]

    @functools.cached_property
    def date(self) -> np.ndarray:
        """Service dates as ``datetime64`` (converted once)."""
        return pd.to_datetime(self.lines["service_date"]).to_numpy()

    @functools.cached_property
    def year(self) -> np.ndarray:
        """Calendar year of service (converted once per distinct date)."""
        rank = self.date_rank
        if not len(rank) or self.date.dtype.kind != "M":
            return self.date.astype("datetime64[Y]").astype(np.int64) + 1970
        dates = np.full(int(rank.max()) + 1, np.datetime64("NaT"), dtype=self.date.dtype)
        dates[rank] = self.date  # every line of a rank has the same date
        return (dates.astype("datetime64[Y]").astype(np.int64) + 1970)[rank]

    @functools.cached_property
    def date_rank(self) -> np.ndarray:
        """Integers in the order of the service dates (whole days when every date is at midnight)."""
        d = self.date
        if d.dtype.kind == "M" and len(d):
            day = d.astype("datetime64[D]")
            if not np.isnat(day).any() and (day == d).all():
                v = day.astype(np.int64)
                return v - v.min()
        return np.unique(d, return_inverse=True)[1].astype(np.int64).reshape(-1)

    @functools.cached_property
    def visit_first(self) -> np.ndarray:
        """First line of each visit, in visit order."""
        return first_rows(self.visit)

    @functools.cached_property
    def one_payer_per_visit(self) -> bool:
        """Whether every line of a visit has the visit's payer (as usual): a grouping by payer
        is then one of visits, computed on each visit's first line."""
        payer_c = self.payer[0]
        return bool((payer_c == payer_c[self.visit_first][self.visit]).all())


def sort_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort(keys)`` (last key primary, ties kept in row order) via one integer sort
    when the keys are integers whose ranges multiply to less than 2**62.

    With the row number as the last digit the keys are distinct, so a plain (unstable, SIMD)
    sort of the values gives the order, read back from that digit; this is faster than any
    argsort of the same keys. Many lines whose keys fit in 48 bits are ordered by a stable
    radix sort of 16 bits at a time (``np.argsort`` of ``uint16``, a counting sort), faster
    still; lines already in order (e.g. an export in date order, sorted by date) are left as
    they are, and the least significant keys along which the rows are already in order are
    not sorted on again.
    """
    keys = keys[_ordered_prefix(keys):]
    radix, composite = 1, None
    for k in keys:  # least significant first, as np.lexsort
        k = np.asarray(k)
        if k.dtype.kind not in "iub" or len(k) == 0:
            return np.lexsort(keys)
        lo, hi = int(k.min()), int(k.max())
        size = hi - lo + 1
        if radix * size > _MAX_KEY:
            return np.lexsort(keys)
        part = k.astype(np.int64, copy=False) - lo
        composite = part if composite is None else composite + part * radix
        radix *= size
    if composite is None:
        return np.arange(0)
    n = len(composite)
    if n > 1 and (composite[1:] >= composite[:-1]).all():
        return np.arange(n)
    if n >= _RADIX_ROWS and radix <= 1 << 48:
        return _radix_order(composite, radix)
    if radix * n <= _MAX_KEY:
        packed = composite * n + np.arange(n)
        packed.sort()
        return packed % n
    return np.argsort(composite, kind="stable")


def _ordered_prefix(keys: Sequence[np.ndarray]) -> int:
    """How many of the least significant ``keys`` (integer arrays) the rows are already in
    lexicographic order of: sorting stably on the other keys alone then gives the same order,
    as ties keep the row order. Never all of them (the caller's checks handle that case)."""
    if len(keys) < 2 or len(keys[0]) < _RADIX_ROWS:
        return 0
    ordered = None  # for each pair of adjacent rows: in order on the keys so far
    done = 0
    for k in keys[:-1]:
        k = np.asarray(k)
        if k.dtype.kind not in "iub":
            break
        a, b = k[:-1], k[1:]
        ordered = (b >= a) if ordered is None else (b > a) | ((b == a) & ordered)
        if not ordered.all():
            break
        done += 1
    return done


#: Lines from which :func:`sort_order` sorts 16 bits at a time rather than packing the row number.
_RADIX_ROWS = 1 << 15


def _radix_order(composite: np.ndarray, radix: int) -> np.ndarray:
    """Stable order of non-negative integers below ``radix`` (at most 2**48): a least
    significant digit radix sort, 16 bits per pass."""
    order, values = None, composite
    for shift in range(0, max(int(radix - 1).bit_length(), 1), 16):
        digit = (values >> shift).astype(np.uint16) if shift else values.astype(np.uint16)
        step = np.argsort(digit, kind="stable")
        order = step if order is None else order[step]
        if shift + 16 < int(radix - 1).bit_length():
            values = values[step]
    return order


def break_ties(order: np.ndarray, keys: Sequence[np.ndarray],
               last: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``order`` (sorted by ``keys``) with runs of equal keys put in the order of ``last``."""
    if len(order) < 2:
        return order
    same = np.ones(len(order) - 1, dtype=bool)
    for k in keys:
        ks = k[order]
        same &= ks[1:] == ks[:-1]
    if not same.any():
        return order
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    at = order[tied]  # runs stay where they are; only their members are reordered
    order = order.copy()
    order[tied] = at[np.lexsort((last(at), *(k[at] for k in keys)))]
    return order


class BlockColumn:
    """One output column filled block by block; categoricals are recoded to shared categories."""

    def __init__(self, n: int):
        self.n = n
        self.values: np.ndarray | None = None
        self.categories: dict | None = None
        self.first_categories: pd.Index | None = None
        self.same_categories = True
        self.pieces: list[tuple[np.ndarray, Any]] = []

    def put(self, rows: np.ndarray, s: pd.Series) -> None:
        if isinstance(s.dtype, pd.CategoricalDtype):
            cats = s.cat.categories
            if self.categories is None:
                self.categories, self.first_categories = {}, cats
                self.values = np.full(self.n, -1, dtype=np.int32)
            elif self.same_categories and not cats.equals(self.first_categories):
                self.same_categories = False
            ids = np.array([self.categories.setdefault(c, len(self.categories)) for c in cats.tolist()] + [-1],
                           dtype=np.int32)
            self.values[rows] = ids[s.cat.codes.to_numpy()]  # code -1 (missing) takes the appended -1
        elif isinstance(s.dtype, np.dtype) and self.categories is None and not self.pieces:
            arr = s.to_numpy()
            if self.values is None:
                self.values = np.empty(self.n, dtype=arr.dtype)
            elif self.values.dtype != arr.dtype:
                self.values = self.values.astype(np.result_type(self.values.dtype, arr.dtype))
            self.values[rows] = arr
        else:  # extension arrays (nullable integers, Arrow strings): put in order at the end
            self.pieces.append((rows, s.array))

    def finish(self):
        if self.categories is not None:
            cats = list(self.categories)
            if self.same_categories:  # every block had the same categories: keep their order
                return pd.Categorical.from_codes(self.values, categories=self.first_categories, validate=False)
            order = np.argsort(np.asarray([str(c) for c in cats], dtype=object), kind="stable")
            rank = np.empty(len(cats) + 1, dtype=np.int32)
            rank[order] = np.arange(len(cats), dtype=np.int32)
            rank[-1] = -1
            return pd.Categorical.from_codes(rank[self.values], categories=pd.Index([cats[i] for i in order]),
                                             validate=False)
        if self.pieces:
            rows = np.concatenate([r for r, _ in self.pieces])
            joined = type(self.pieces[0][1])._concat_same_type([a for _, a in self.pieces])
            return joined.take(np.argsort(rows, kind="stable"))
        return self.values


def in_blocks(lines: pd.DataFrame, key_col: str, fn: Callable[[pd.DataFrame, np.ndarray], pd.DataFrame],
              block_lines: int = BLOCK_LINES,
              on_warnings: Callable[[pd.DataFrame, list[warnings.WarningMessage]], None] | None = None,
              ) -> pd.DataFrame:
    """``fn(part, rows)`` on blocks of about ``block_lines`` lines that share no value of
    ``key_col`` (whole patients), put back together in the original row order.

    Every rule is local to a patient, so the figures equal those of one call on all lines;
    small blocks keep the arrays in the processor's cache and the temporaries few. Columns
    ``fn`` passes through unchanged are taken from ``lines``. Warnings raised in the blocks
    go to ``on_warnings(result, warnings)`` when given, else are issued once each afterwards.
    """
    n = len(lines)
    k = max(1, -(-n // block_lines))
    block = (key_codes(lines[key_col])[0] % k).astype(np.int16 if k < 2**15 else np.int64)
    order = np.argsort(block, kind="stable")  # a radix sort for 16-bit ids
    bounds = np.searchsorted(block[order], np.arange(k + 1))
    columns: dict[str, BlockColumn] = {}
    names: list[str] | None = None
    same: set[str] = set()
    caught: list[warnings.WarningMessage] = []
    for b in range(k):
        rows = order[bounds[b]:bounds[b + 1]]
        if not len(rows):
            continue
        part = lines.iloc[rows]
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            out = fn(part, rows)
        caught += got
        if names is None:
            names = list(out.columns)
            same = {c for c in names if c in part.columns and out[c].dtype == part[c].dtype and out[c].equals(part[c])}
        for name in names:
            if name not in same:
                columns.setdefault(name, BlockColumn(n)).put(rows, out[name])
        del out, part
    result = pd.DataFrame({c: lines[c] if c in same else columns[c].finish() for c in names or lines.columns},
                          index=lines.index, copy=False)  # no copy into consolidated blocks
    if on_warnings is not None:
        on_warnings(result, caught)
    else:
        reissue(caught)
    return result


def reissue(caught: Sequence[warnings.WarningMessage], stacklevel: int = 4) -> None:
    """Issue recorded warnings again, each distinct message once."""
    seen = set()
    for w in caught:
        if (w.category, str(w.message)) not in seen:
            seen.add((w.category, str(w.message)))
            warnings.warn(w.message, stacklevel=stacklevel)


def categorical(codes: np.ndarray, values) -> pd.Categorical:
    """``values[codes]`` as a categorical whose categories are the distinct values used, sorted
    (what ``pd.Categorical`` of the strings gives, without building a string per line)."""
    uniq, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
    line = inverse[codes]
    used = np.bincount(line, minlength=len(uniq)) > 0
    if not used.all():
        line = (np.cumsum(used) - 1)[line]
        uniq = uniq[used]
    return pd.Categorical.from_codes(line, categories=uniq, validate=False)


@functools.lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]) -> type:
    return collections.namedtuple("Case", names)


def case_rows(columns: dict[str, Any]) -> Iterator[tuple]:
    """Rows of aligned columns as named tuples of Python scalars: what
    ``pd.DataFrame(columns).itertuples(index=False)`` gives, without building a frame (for
    words built once per case)."""
    row = _row_type(tuple(columns))
    values = [np.asarray(v) for v in columns.values()]
    values = [v.tolist() if v.dtype.kind in "biufO" else list(pd.Series(v)) for v in values]
    return (row(*vals) for vals in zip(*values, strict=True))


def lookup_pairs(a_codes, a_values, b_codes, b_values, pairs: set[tuple[str, str]]) -> np.ndarray:
    """True where (a, b) is in ``pairs``, via a small table over the distinct values."""
    table = np.zeros((len(a_values), len(b_values)), dtype=bool)
    ai = {v: i for i, v in enumerate(a_values)}
    bi = {v: i for i, v in enumerate(b_values)}
    for a, b in pairs:
        if a in ai and b in bi:
            table[ai[a], bi[b]] = True
    return table[a_codes, b_codes]


def put(col: pd.Series, mask: np.ndarray, values) -> pd.Series:
    """``col`` with ``values`` (a scalar or an aligned array) where ``mask``, kept categorical.

    Values not yet among the categories are appended to them in order of first appearance.
    """
    rows = np.flatnonzero(mask)
    return put_rows(col, rows, values[rows] if isinstance(values, np.ndarray) else values)


def put_rows(col: pd.Series, rows: np.ndarray, values) -> pd.Series:
    """``col`` with ``values`` (a scalar, or one text per row) at the positions ``rows``
    (ascending), kept categorical: :func:`put` given the rows rather than a mask over every
    line. The codes are set directly, once per distinct value, not a text per line; a missing
    value leaves the line missing."""
    s = col.astype("category") if not isinstance(col.dtype, pd.CategoricalDtype) else col
    if isinstance(values, np.ndarray):
        codes_new, new = pd.factorize(values, use_na_sentinel=True)  # missing values: code -1
        new = list(new)
    else:
        codes_new, new = np.zeros(len(rows), dtype=np.int64), [values]
    at = s.cat.categories.get_indexer(new)
    if (at < 0).any():
        s = s.cat.add_categories([v for v, i in zip(new, at.tolist(), strict=True) if i < 0])
        at = s.cat.categories.get_indexer(new)
    codes = s.cat.codes.to_numpy().copy()
    codes[rows] = np.append(at, -1)[codes_new]  # code -1 takes the appended -1: missing
    return pd.Series(pd.Categorical.from_codes(codes, dtype=s.dtype), index=col.index, name=col.name)


_MODIFIER_SEPARATORS = re.compile(r"[ :;|/]+")


def normalise_modifier_text(mods: pd.Series) -> pd.Series:
    """Modifier lists as upper-case text separated by single commas (``"gp 59"`` -> ``"GP,59"``)."""
    if len(mods) <= 4096 and mods.dtype == object and all(
            type(v) is str and v.isascii() and v.isprintable() for v in mods):
        # a few distinct lists (the usual case): plain string methods, no per-call vector setup.
        # Printable ASCII has no whitespace but the space, so the separators are the same.
        text = [_MODIFIER_SEPARATORS.sub(",", v.upper()).strip(",") for v in mods]
        return pd.Series(text, index=mods.index, dtype="str", name=mods.name)
    return (
        mods.fillna("").astype(str).str.upper()
        .str.replace(r"[\s:;|/]+", ",", regex=True).str.strip(",")
    )


def modifier_flags(mods: pd.Series, wanted: Sequence[str]) -> np.ndarray:
    """True where a line's modifiers include any of ``wanted`` (computed once per distinct value)."""
    return coded_modifier_flags(*factorize(mods), wanted)


def coded_modifier_flags(codes: np.ndarray, uniq: np.ndarray, wanted: Sequence[str]) -> np.ndarray:
    """:func:`modifier_flags` on factorized modifiers."""
    if len(uniq) == 0:
        return np.zeros(len(codes), dtype=bool)
    if len(uniq) <= 256:  # a few distinct lists (the usual case): the flags are remembered
        return _modifier_hits(tuple(uniq), tuple(wanted))[codes]
    return _modifier_hit_array(uniq, wanted)[codes]


def _modifier_hit_array(uniq, wanted: Sequence[str]) -> np.ndarray:
    """Per distinct modifier list, whether it includes any of ``wanted``."""
    norm = normalise_modifier_text(pd.Series(list(uniq), dtype=object))
    want = set(wanted)
    return np.array([bool(want.intersection(v.split(","))) if v else False for v in norm], dtype=bool)


@functools.lru_cache(maxsize=4096)
def _modifier_hits(uniq: tuple, wanted: tuple) -> np.ndarray:
    """:func:`_modifier_hit_array`, remembered for small tuples of lists (read-only result)."""
    hit = _modifier_hit_array(uniq, wanted)
    hit.flags.writeable = False
    return hit
