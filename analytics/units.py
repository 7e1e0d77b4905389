"""Billable units of timed and untimed codes.

Two methods are in use:

* ``"cms"``: the Medicare 8-minute rule (Medicare Claims Processing Manual, Pub. 100-04,
  ch. 5, sec. 20.2). The direct minutes of all timed codes in a visit are added; the total
  sets the number of units (8-22 min = 1, 23-37 = 2, ..., ``(T + 7) // 15``), which are then
  allocated to the codes: every full 15 minutes of a code is a unit, and the units left over
  go one at a time to the codes with the most minutes left over.
* ``"ama"``: the CPT midpoint rule used by many commercial payers. Each timed code is counted
  on its own: a unit once more than half of it (8 minutes) has passed, i.e.
  ``(m + 7) // 15`` per code, summed over the code's minutes in the visit.

Untimed (service-based) codes such as 97010 or an evaluation bill one unit and neither add
minutes to nor take minutes from the timed total.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError, MinutesError
from analytics.refdata import Reference, load_reference

__all__ = ["compute_units", "visit_codes", "factorize", "distinct_rows", "VISIT_KEYS", "UNIT_METHODS"]

#: Columns that identify a visit: same patient, same date, same provider.
VISIT_KEYS = ("patient_id", "service_date", "provider_id")
UNIT_METHODS = ("cms", "ama")
_MAX_KEY = 2**62
#: evaluate() runs frames of more than 1.5 x this many lines in blocks of whole patients of
#: about this size (see :func:`_in_blocks`).
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
    else:
        codes, uniq = pd.factorize(values, use_na_sentinel=True)
        codes = codes.astype(np.int64, copy=False)
        cats = np.asarray(pd.Index(uniq).astype(str), dtype=object)
    if (codes < 0).any():
        cats = np.append(cats, "")
        codes = np.where(codes < 0, len(cats) - 1, codes)
    return codes, cats


def _small_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes ``0 <= c < size`` of an array: integers in a narrow range are used as they are
    (offset by their minimum), anything else is hashed."""
    values = np.asarray(values)
    if values.dtype == bool:
        return values.astype(np.int64), 2
    if values.dtype.kind in "iu" and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 4 * len(values) + 1024:
            return values.astype(np.int64) - lo, hi - lo + 1
    codes, uniq = pd.factorize(values, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), max(len(uniq), 1)


def _factorize_ints(key: np.ndarray) -> np.ndarray:
    """``pd.factorize`` of an integer key (ids in order of first appearance), hashing each run
    of equal adjacent keys once: the lines of a visit or claim usually come together."""
    if len(key) > 1:
        start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        if len(start) < 0.75 * len(key):
            ids = pd.factorize(key[start])[0].astype(np.int64, copy=False)
            return np.repeat(ids, np.diff(np.r_[start, len(key)]))
    return pd.factorize(key)[0].astype(np.int64, copy=False)


def _dense_ids(key: np.ndarray, size: int) -> np.ndarray:
    """Ids ``0 <= id < size`` of the groups of non-negative integer keys below ``size``: the
    keys themselves when ``size`` is small next to the number of rows (no hashing), else dense
    ids from a hash table. Only equality of ids is meaningful, not their order."""
    if size <= 4 * len(key) + 1024:
        return key.astype(np.int64, copy=False)
    return _factorize_ints(key)


def _first_rows(group: np.ndarray) -> np.ndarray:
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
        codes, size = _small_codes(col)
        if radix * size > _MAX_KEY:  # would overflow: fold the key so far first
            key = pd.factorize(key)[0].astype(np.int64, copy=False)
            radix = int(key.max()) + 1 if n else 1
        key += codes * radix
        radix *= size
    group = _factorize_ints(key)
    return group, _first_rows(group)


def _cases(columns: Sequence[np.ndarray], where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`distinct_rows`, for building words once per case: a case id per row and one
    row of each case (any row: every row of a case reads the same). Rows outside ``where``
    are one case whatever their values. Narrow integer columns whose combined range is small
    are grouped through a lookup table, without hashing."""
    n = len(columns[0]) if len(columns) else 0
    coded = [_small_codes(c) for c in columns]
    size = math.prod(s for _, s in coded)
    if size >= _MAX_KEY:
        if where is None:
            return distinct_rows(columns)
        return distinct_rows([where] + [np.where(where, c, np.zeros(1, dtype=np.asarray(c).dtype)) for c in columns])
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for codes, s in coded:
        key += codes * radix
        radix *= s
    if where is not None:
        key = np.where(where, key + 1, 0)
        size += 1
    if size > 4 * n + 1024:
        group = _factorize_ints(key)
        return group, _first_rows(group)
    present = np.zeros(size, dtype=bool)
    present[key] = True
    case_of_key = np.cumsum(present) - 1
    row = np.empty(int(present.sum()), dtype=np.int64)
    row[case_of_key[key]] = np.arange(n)
    return case_of_key[key], row


class _Column:
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


def _in_blocks(lines: pd.DataFrame, key_col: str, fn: Callable[[pd.DataFrame, np.ndarray], pd.DataFrame],
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
    block = (_key_codes(lines[key_col])[0] % k).astype(np.int16 if k < 2**15 else np.int64)
    order = np.argsort(block, kind="stable")  # a radix sort for 16-bit ids
    bounds = np.searchsorted(block[order], np.arange(k + 1))
    columns: dict[str, _Column] = {}
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
                columns.setdefault(name, _Column(n)).put(rows, out[name])
        del out, part
    result = pd.DataFrame({c: lines[c] if c in same else columns[c].finish() for c in names or lines.columns},
                          index=lines.index, copy=False)  # no copy into consolidated blocks
    if on_warnings is not None:
        on_warnings(result, caught)
    else:
        _reissue(caught)
    return result


def _reissue(caught: Sequence[warnings.WarningMessage], stacklevel: int = 4) -> None:
    """Issue recorded warnings again, each distinct message once."""
    seen = set()
    for w in caught:
        if (w.category, str(w.message)) not in seen:
            seen.add((w.category, str(w.message)))
            warnings.warn(w.message, stacklevel=stacklevel)


def _key_codes(values: pd.Series) -> tuple[np.ndarray, int]:
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
    for k in keys:
        codes, size = _key_codes(lines[k])
        if radix * size > _MAX_KEY:
            key = pd.factorize(key)[0].astype(np.int64, copy=False)
            radix = int(key.max()) + 1 if len(key) else 1
        key += codes * radix
        radix *= size
    return _factorize_ints(key)


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
        """Calendar year of service."""
        return self.date.astype("datetime64[Y]").astype(np.int64) + 1970

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
        return _first_rows(self.visit)


def sort_order(*keys: np.ndarray) -> np.ndarray:
    """``np.lexsort(keys)`` (last key primary, ties kept in row order) via one integer sort
    when the keys are integers whose ranges multiply to less than 2**62.

    With the row number as the last digit the keys are distinct, so a plain (unstable, SIMD)
    sort of the values gives the order, read back from that digit; this is faster than any
    argsort of the same keys.
    """
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
    if radix * n <= _MAX_KEY:
        packed = composite * n + np.arange(n)
        packed.sort()
        return packed % n
    return np.argsort(composite, kind="stable")


def _break_ties(order: np.ndarray, keys: Sequence[np.ndarray],
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


def _allocate(group: np.ndarray, minutes: np.ndarray, total: np.ndarray,
              tiebreak: Callable[[np.ndarray], list[np.ndarray]],
              last_tiebreak: Callable[[np.ndarray], np.ndarray] | None = None):
    """Hand out ``total[g]`` units among the lines of each group ``g``.

    Every full 15 minutes of a line is a unit; the units left over go one at a time to the
    lines with the largest leftover minutes (then more minutes, then the ``tiebreak`` keys of
    the lines, then ``last_tiebreak``; both are given for a subset of line positions, and the
    last one is asked only for lines equal on everything else). This reproduces every worked
    example in Pub. 100-04 ch. 5 sec. 20.2. Returns ``(units, whole, got_leftover)`` per line.
    """
    whole = minutes // 15
    rem = minutes - 15 * whole
    n_groups = int(total.shape[0])
    whole_sum = np.bincount(group, weights=whole, minlength=n_groups).astype(np.int64)
    extra = np.maximum(total - whole_sum, 0)[group]
    has_rem = rem > 0
    with_rem = np.bincount(group[has_rem], minlength=n_groups)[group]
    # Where the leftover units cover every line with leftover minutes (or there are none),
    # no ranking is needed; only the other groups are sorted.
    got = has_rem & (extra >= with_rem)
    contested = has_rem & (extra > 0) & (extra < with_rem)
    if contested.any():
        idx = np.flatnonzero(contested)
        g = group[idx]
        keys = (*tiebreak(idx)[::-1], -minutes[idx], -rem[idx], g)
        order = sort_order(*keys)
        if last_tiebreak is not None:
            order = _break_ties(order, keys, lambda at: last_tiebreak(idx[at]))
        g_sorted = g[order]
        first = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1]
        starts = np.repeat(first, np.diff(np.r_[first, len(order)]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - starts
        got[idx] = rank < extra[idx]
    return whole + got, whole, got


def compute_units(
    lines: pd.DataFrame,
    method: str | pd.Series = "cms",
    *,
    reference: Reference | None = None,
    visit_keys: Sequence[str] = VISIT_KEYS,
    code_col: str = "cpt",
    minutes_col: str = "minutes",
) -> pd.DataFrame:
    """Billable units of every line, with the reason in words.

    Parameters
    ----------
    lines
        Service lines: one row per code performed in a visit, with its direct minutes.
        Several rows of the same code in one visit are allowed (e.g. two body regions).
    method
        ``"cms"`` (8-minute rule over the visit), ``"ama"`` (CPT midpoint per code), or a
        Series aligned to ``lines`` giving the method per line (e.g. from the payer).
    visit_keys
        Columns that identify a visit (patient, service date, provider).

    Returns
    -------
    DataFrame
        ``lines`` with ``units``, ``timed``, ``visit_timed_minutes`` and ``units_reason``.

    Examples
    --------
    >>> df = pd.DataFrame({"patient_id": "p", "service_date": "2025-03-01", "provider_id": "a",
    ...                    "cpt": ["97110", "97140"], "minutes": [33, 7]})
    >>> compute_units(df, "cms")["units"].tolist()
    [2, 1]
    >>> compute_units(df, "ama")["units"].tolist()
    [2, 0]
    """
    ref = reference or load_reference()
    if code_col not in lines.columns:
        raise InputError(f"The service lines have no {code_col!r} column (the CPT/HCPCS code).")
    keys = LineKeys(lines, visit_keys, code_col=code_col)
    _check_codes(lines, code_col, *keys.cpt, ref)
    if isinstance(method, str):
        if method not in UNIT_METHODS:
            raise InputError(f"Unknown unit method {method!r}; use 'cms' (Medicare 8-minute rule) or 'ama'.")
        is_cms = np.full(len(lines), method == "cms")
    else:
        bad = ~method.isin(UNIT_METHODS)
        if bad.any():
            raise InputError.for_rows(
                lines[bad.to_numpy()], "have an unknown unit method", "Use 'cms' or 'ama'."
            )
        is_cms = np.asarray(method == "cms", dtype=bool)
    return _compute_units(lines, is_cms, ref, keys, minutes_col=minutes_col)


def _compute_units(lines: pd.DataFrame, is_cms: np.ndarray, ref: Reference, keys: LineKeys, *,
                   minutes_col: str = "minutes") -> pd.DataFrame:
    """:func:`compute_units` on codes computed once (``keys``); ``is_cms`` per line."""
    c = _count_units(lines, is_cms, ref, keys, minutes_col=minutes_col)
    reason = _reasons(c["timed"], is_cms, c["m"], c["t_line"], c["code_total"], c["got"])
    return lines.assign(
        units=c["units"],
        timed=c["timed"],
        visit_timed_minutes=np.where(is_cms, c["t_line"], c["code_total"]),
        units_reason=reason,
    )


def _count_units(lines: pd.DataFrame, is_cms: np.ndarray, ref: Reference, keys: LineKeys, *,
                 minutes_col: str = "minutes") -> dict[str, np.ndarray]:
    """The units of every line and what its reason needs: the allocation alone, no words."""
    code_col = keys.code_col
    if code_col not in lines.columns:
        raise InputError(f"The service lines have no {code_col!r} column (the CPT/HCPCS code).")
    cpt_codes, cpt_values = keys.cpt
    _check_codes(lines, code_col, cpt_codes, cpt_values, ref)
    timed = ref.code_table(pd.Series(cpt_values))["timed"].to_numpy(bool)[cpt_codes]

    minutes = _checked_minutes(lines, minutes_col, timed)
    group = keys.visit
    n_visits = keys.n_visits
    m = np.where(timed, np.nan_to_num(minutes), 0).astype(np.int64)

    visit_total = np.bincount(group, weights=m, minlength=n_visits).astype(np.int64)
    t_line = visit_total[group]
    # Ties between equal leftovers are the provider's choice (ch. 5 sec. 20.2); break them by
    # code, then modifiers, then line id, so the result never depends on row order.
    cpt_rank = _ranks(cpt_codes, cpt_values)
    mod_rank = _ranks(*keys.modifiers) if "modifiers" in lines.columns else None

    def tiebreak_for(sel: np.ndarray) -> Callable[[np.ndarray], list[np.ndarray]]:
        rows = np.flatnonzero(sel)

        def keys_of(idx: np.ndarray) -> list[np.ndarray]:
            at = rows[idx]
            return [cpt_rank[at]] if mod_rank is None else [cpt_rank[at], mod_rank[at]]

        return keys_of

    def line_id_for(sel: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
        if "line_id" not in lines.columns:
            return None
        rows = np.flatnonzero(sel)
        # ranked among the tied lines only (few of them)
        return lambda idx: _ranks(*factorize(lines["line_id"].iloc[rows[idx]]))

    units = np.zeros(len(lines), dtype=np.int64)
    got = np.zeros(len(lines), dtype=bool)

    # CMS: the total over all timed minutes of the visit sets the units (ch. 5 sec. 20.2).
    sel = timed & is_cms
    if sel.any():
        g = group[sel]
        cms_total = np.where(visit_total >= 8, (visit_total + 7) // 15, 0)
        u, _, gt = _allocate(g, m[sel], cms_total, tiebreak_for(sel), line_id_for(sel))
        units[sel] = u
        got[sel] = gt

    # AMA/CPT: each code counted on its own (its minutes summed over the visit's lines).
    sel = timed & ~is_cms
    code_total = np.zeros(len(lines), dtype=np.int64)
    if sel.any():
        gc = _dense_ids(group[sel] * (int(cpt_rank.max()) + 1) + cpt_rank[sel], n_visits * (int(cpt_rank.max()) + 1))
        per_code = np.bincount(gc, weights=m[sel]).astype(np.int64)
        ama_total = np.where(per_code >= 8, (per_code + 7) // 15, 0)
        u, _, gt = _allocate(gc, m[sel], ama_total, tiebreak_for(sel), line_id_for(sel))
        units[sel] = u
        got[sel] = gt
        code_total[sel] = per_code[gc]

    units[~timed] = 1
    return {"units": units, "timed": timed, "m": m, "t_line": t_line, "code_total": code_total, "got": got}


def _ranks(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sort rank of each line's value (so ties break the same way whatever the row order)."""
    return np.argsort(np.argsort(values.astype(str), kind="stable"), kind="stable")[codes]


def _check_codes(lines, code_col, codes, values, ref: Reference) -> None:
    known = np.isin(values, ref.codes["cpt"].to_numpy())
    if not known.all():
        bad = lines[~known[codes]]
        ref.code_table(bad[code_col].astype(str))  # raises naming the rows and codes


def _checked_minutes(lines: pd.DataFrame, col: str, timed: np.ndarray) -> np.ndarray:
    if col not in lines.columns:
        if timed.any():
            raise MinutesError(
                f"The service lines have no {col!r} column, but timed codes need their direct "
                "minutes. Add the column, or pass minutes_col=... naming it."
            )
        return np.zeros(len(lines))
    raw = lines[col]
    if pd.api.types.is_numeric_dtype(raw.dtype):  # numbers already: nothing to parse
        num = raw
    else:
        num = pd.to_numeric(raw, errors="coerce")
        non_numeric = num.isna() & raw.notna()
        if non_numeric.any():  # blank text counts as missing, not as "not a number"
            non_numeric[non_numeric] = raw[non_numeric].astype(str).str.strip().ne("")
        if non_numeric.any():
            raise MinutesError.for_rows(
                lines[non_numeric.to_numpy()], "have minutes that are not a number",
                "Give minutes as whole numbers, e.g. 23.",
            )
    values = num.to_numpy(dtype=float, na_value=np.nan)
    negative = values < 0
    if negative.any():
        raise MinutesError.for_rows(lines[negative], "have negative minutes", "Minutes are 0 or more.")
    no_minutes = np.isnan(values) & timed
    if no_minutes.any():
        rows = lines[no_minutes]
        codes = ", ".join(sorted(set(rows["cpt"].astype(str)))) if "cpt" in rows else "timed codes"
        raise MinutesError.for_rows(
            rows, f"have no minutes for timed code {codes}",
            "Add the direct minutes, or mark the code untimed in the catalog if your payer treats it so.",
        )
    if values.dtype.kind == "f" and num.dtype.kind not in "iub":
        frac = values != np.floor(values)
        frac &= ~np.isnan(values)
        if frac.any():
            raise MinutesError.for_rows(
                lines[frac], "have fractional minutes", "Round direct minutes to whole minutes."
            )
    return values


def _reasons(timed, is_cms, m, t_line, code_total, got) -> pd.Categorical:
    """Build the reason text once per distinct case and map it back (fast at 10M lines).

    A case is what the words depend on: untimed, or the rule, the minutes it counts (the
    visit's for CMS, the code's for AMA) and, once those reach 8, the line's own minutes and
    whether it earned a leftover unit.
    """
    kind = np.where(timed, np.where(is_cms, 1, 2), 0)
    total = np.where(timed, np.where(is_cms, t_line, code_total), 0)
    counted = total >= 8
    codes, first = _cases([kind, total, np.where(counted, m, 0), counted & got])
    text = [_reason_text(k, t, mm, g) for k, t, mm, g in
            zip(kind[first].tolist(), total[first].tolist(), m[first].tolist(), got[first].tolist(), strict=True)]
    cats, inverse = np.unique(np.asarray(text, dtype=str), return_inverse=True)
    return pd.Categorical.from_codes(inverse[codes], categories=cats, validate=False)


@functools.lru_cache(maxsize=1 << 17)
def _reason_text(kind: int, total: int, m: int, g: bool) -> str:
    if kind == 0:
        return "untimed code: one unit per session; its minutes are not counted"
    if kind == 1:
        if total < 8:
            return f"CMS 8-minute rule: {total} timed minutes in the visit is under 8, so no timed unit is billed"
        head = f"CMS 8-minute rule: {total} timed minutes in the visit -> {(total + 7) // 15} unit(s); this code {m} min"
    else:
        if total < 8:
            return f"AMA midpoint rule: this code has {total} min in the visit, under the 8-minute midpoint -> 0 units"
        head = (f"AMA midpoint rule: this code has {total} min in the visit -> {(total + 7) // 15} unit(s); "
                f"this line {m} min")
    w = m // 15
    parts = [f"{w} full 15-min unit(s)"] if w else []
    left = m - 15 * w
    if g:
        parts.append(f"+1 for its {left} leftover min (among the largest leftovers)")
    elif left:
        parts.append(f"its {left} leftover min did not earn a unit")
    return f"{head} = {', '.join(parts) if parts else 'no unit'} -> {w + g} unit(s)"
