"""Billable units of timed and untimed codes.

Two methods are in use:

* ``"cms"``: the Medicare 8-minute rule (Medicare Claims Processing Manual, Pub. 100-04,
  ch. 5, sec. 20.2). The direct minutes of all timed codes the patient had that day in one
  discipline are added (grouping ``units``, default ``discipline``; see
  :mod:`analytics.grouping`); the total sets the number of units (8-22 min = 1, 23-37 = 2,
  ..., ``(T + 7) // 15``), which are then allocated to the codes: every full 15 minutes of a
  code is a unit, and the units left over go one at a time to the codes with the most minutes
  left over. Where leftovers tie, the manual lets the provider choose; given the payer
  policies, the unit goes to the service the payer pays (a code NCCI bundles into another of
  the day, or one the plan excludes, loses the tie), and ``units_reason`` says so.
* ``"ama"``: the CPT midpoint rule used by many commercial payers. Each timed code is counted
  on its own: a unit once more than half of it (8 minutes) has passed, i.e.
  ``(m + 7) // 15`` per code, summed over the code's minutes in the same group.

Untimed (service-based) codes such as 97010 or an evaluation bill one unit and neither add
minutes to nor take minutes from the timed total.

The column kernels the units share with the other stages (:func:`factorize`,
:func:`visit_codes`, :class:`LineKeys` ...) live in :mod:`analytics._frame` and are
re-exported here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analytics._frame import (
    BLOCK_LINES,
    VISIT_KEYS,
    LineKeys,
    break_ties,
    cases,
    dense_ids,
    distinct_rows,
    factorize,
    ordered_column,
    ranks,
    sort_order,
    visit_codes,
)
from analytics.exceptions import InputError, MinutesError
from analytics.grouping import group_ids, grouping_per_line
from analytics.refdata import Reference, load_reference

if TYPE_CHECKING:
    from analytics.payers import PayerPolicy

__all__ = ["compute_units", "visit_codes", "factorize", "distinct_rows", "VISIT_KEYS", "UNIT_METHODS",
           "LineKeys", "sort_order", "BLOCK_LINES", "compute_units_with_keys", "check_codes", "checked_minutes"]

UNIT_METHODS = ("cms", "ama")
#: How a tie between equal leftovers was settled (``units_reason``): none, for the service the
#: payer pays, or by code order (the provider's choice, Pub. 100-04 ch. 5 sec. 20.2).
TIE_NONE, TIE_PAID, TIE_CODE = 0, 1, 2


def _allocate(group: np.ndarray, minutes: np.ndarray, total: np.ndarray,
              tiebreak: Callable[[np.ndarray], list[np.ndarray]],
              last_tiebreak: Callable[[np.ndarray], np.ndarray] | None = None,
              denied: Callable[[np.ndarray], np.ndarray] | None = None):
    """Hand out ``total[g]`` units among the lines of each group ``g``.

    Every full 15 minutes of a line is a unit; the units left over go one at a time to the
    lines with the largest leftover minutes (then more minutes, then lines the payer pays
    before lines it would deny (``denied``), then the ``tiebreak`` keys of the lines, then
    ``last_tiebreak``; these are given for a subset of line positions, and the last one is
    asked only for lines equal on everything else). This reproduces every worked example in
    Pub. 100-04 ch. 5 sec. 20.2. Returns ``(units, whole, got_leftover, tie)`` per line, ``tie``
    one of :data:`TIE_NONE`, :data:`TIE_PAID`, :data:`TIE_CODE`.
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
    tie = np.zeros(len(minutes), dtype=np.int64)
    contested = has_rem & (extra > 0) & (extra < with_rem)
    if contested.any():
        idx = np.flatnonzero(contested)
        g = group[idx]
        # equal leftover and equal minutes: the manual's tie, the provider's choice
        tied_with, _ = distinct_rows([g, rem[idx], minutes[idx]])
        size = np.bincount(tied_with)
        in_tie = size[tied_with] > 1
        unpaid = np.zeros(len(idx), dtype=np.int64)
        if denied is not None and in_tie.any():
            unpaid[in_tie] = denied(idx[in_tie]).astype(np.int64)
        keys = (*tiebreak(idx)[::-1], unpaid, -minutes[idx], -rem[idx], g)
        order = sort_order(*keys)
        if last_tiebreak is not None:
            order = break_ties(order, keys, lambda at: last_tiebreak(idx[at]))
        g_sorted = g[order]
        first = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1]
        starts = np.repeat(first, np.diff(np.r_[first, len(order)]))
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order)) - starts
        won = rank < extra[idx]
        got[idx] = won
        # a tie the cut runs through: some of its lines got a unit, some did not
        winners = np.bincount(tied_with, weights=won)
        split = (winners[tied_with] > 0) & (winners[tied_with] < size[tied_with])
        by_payer = np.bincount(tied_with, weights=unpaid)
        mixed = (by_payer[tied_with] > 0) & (by_payer[tied_with] < size[tied_with])
        tie[idx] = np.where(split, np.where(mixed, TIE_PAID, TIE_CODE), TIE_NONE)
    return whole + got, whole, got, tie


def compute_units(
    lines: pd.DataFrame,
    method: str | pd.Series = "cms",
    *,
    reference: Reference | None = None,
    visit_keys: Sequence[str] = VISIT_KEYS,
    code_col: str = "cpt",
    minutes_col: str = "minutes",
    payers: Mapping[str, PayerPolicy] | None = None,
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
    payers
        Payer policies by id (the lines then need ``payer_id``): each payer's ``grouping.units``
        sets which lines share an 8-minute total (default: the patient's day per discipline),
        and a tie between equal leftovers goes to the service the payer pays. Without them,
        the default grouping, and ties go by code order.

    Returns
    -------
    DataFrame
        ``lines`` with ``units``, ``timed``, ``visit_timed_minutes`` (the timed minutes the
        line's count rests on) and ``units_reason``.

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
    check_codes(lines, code_col, *keys.cpt, ref)
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
    return compute_units_with_keys(lines, is_cms, ref, keys, minutes_col=minutes_col, payers=payers)


def compute_units_with_keys(lines: pd.DataFrame, is_cms: np.ndarray, ref: Reference, keys: LineKeys, *,
                            minutes_col: str = "minutes",
                            payers: Mapping[str, PayerPolicy] | None = None) -> pd.DataFrame:
    """:func:`compute_units` on codes computed once (``keys``); ``is_cms`` per line."""
    c = _count_units(lines, is_cms, ref, keys, minutes_col=minutes_col, payers=payers)
    reason = _reasons(c["timed"], is_cms, c["m"], c["t_line"], c["code_total"], c["got"], c["tie"], c["where"])
    return lines.assign(
        units=c["units"],
        timed=c["timed"],
        visit_timed_minutes=np.where(is_cms, c["t_line"], c["code_total"]),
        units_reason=reason,
    )


def _count_units(lines: pd.DataFrame, is_cms: np.ndarray, ref: Reference, keys: LineKeys, *,
                 minutes_col: str = "minutes", payers: Mapping[str, PayerPolicy] | None = None,
                 ) -> dict[str, np.ndarray]:
    """The units of every line and what its reason needs: the allocation alone, no words."""
    code_col = keys.code_col
    if code_col not in lines.columns:
        raise InputError(f"The service lines have no {code_col!r} column (the CPT/HCPCS code).")
    cpt_codes, cpt_values = keys.cpt
    check_codes(lines, code_col, cpt_codes, cpt_values, ref)
    timed = ref.code_table(pd.Series(cpt_values))["timed"].to_numpy(bool)[cpt_codes]

    minutes = checked_minutes(lines, minutes_col, timed)
    with_payer = "payer_id" in lines.columns
    if with_payer:
        where = grouping_per_line("units", *keys.payer, payers)
    else:
        where = grouping_per_line("units", np.zeros(len(lines), dtype=np.int64), [], None)
    group = group_ids(keys, where, payer=with_payer)
    n_visits = int(group.max()) + 1 if len(group) else 0
    m = np.where(timed, np.nan_to_num(minutes), 0).astype(np.int64)
    denied = _denied_if_billed(lines, keys, ref, payers) if (payers is not None and with_payer) else None

    visit_total = np.bincount(group, weights=m, minlength=n_visits).astype(np.int64)
    t_line = visit_total[group]
    # Ties between equal leftovers are the provider's choice (ch. 5 sec. 20.2); break them by
    # code, then modifiers, then line id, so the result never depends on row order.
    cpt_rank = ranks(cpt_codes, cpt_values)
    mod_rank = ranks(*keys.modifiers) if "modifiers" in lines.columns else None

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
        return lambda idx: ranks(*factorize(lines["line_id"].iloc[rows[idx]]))

    units = np.zeros(len(lines), dtype=np.int64)
    got = np.zeros(len(lines), dtype=bool)
    tie = np.zeros(len(lines), dtype=np.int64)

    def denied_for(sel: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
        if denied is None:
            return None
        rows = np.flatnonzero(sel)
        return lambda idx: denied(rows[idx])

    # CMS: the total over all timed minutes of the visit sets the units (ch. 5 sec. 20.2).
    sel = timed & is_cms
    if sel.any():
        g = group[sel]
        cms_total = np.where(visit_total >= 8, (visit_total + 7) // 15, 0)
        u, _, gt, tt = _allocate(g, m[sel], cms_total, tiebreak_for(sel), line_id_for(sel), denied_for(sel))
        units[sel] = u
        got[sel] = gt
        tie[sel] = tt

    # AMA/CPT: each code counted on its own (its minutes summed over the visit's lines).
    sel = timed & ~is_cms
    code_total = np.zeros(len(lines), dtype=np.int64)
    if sel.any():
        # each group is of one day: on lines in date order, hashed day by day
        gc = dense_ids(group[sel] * (int(cpt_rank.max()) + 1) + cpt_rank[sel], n_visits * (int(cpt_rank.max()) + 1),
                       ordered_column([keys.date_rank[sel]]))
        per_code = np.bincount(gc, weights=m[sel]).astype(np.int64)
        ama_total = np.where(per_code >= 8, (per_code + 7) // 15, 0)
        u, _, gt, tt = _allocate(gc, m[sel], ama_total, tiebreak_for(sel), line_id_for(sel), denied_for(sel))
        units[sel] = u
        got[sel] = gt
        tie[sel] = tt
        code_total[sel] = per_code[gc]

    units[~timed] = 1
    where_code = np.select([where == "visit", where == "patient_day"], [0, 1], default=2).astype(np.int64)
    return {"units": units, "timed": timed, "m": m, "t_line": t_line, "code_total": code_total, "got": got,
            "tie": tie, "where": where_code}


def _denied_if_billed(lines: pd.DataFrame, keys: LineKeys, ref: Reference,
                      payers: Mapping[str, PayerPolicy]) -> Callable[[np.ndarray], np.ndarray]:
    """For line positions in a tie: True where the payer's edits would deny the line if it
    were billed (NCCI pair without an honoured modifier, plan exclusion, status, provider
    type ...), judged on the patient's whole day with every line billed at one unit."""
    from analytics.edits import DISPOSITIONS, apply_edits_with_keys  # edits run after units

    def denied(rows: np.ndarray) -> np.ndarray:
        day_rows = _same_patient_day(keys, rows)
        part = lines.iloc[day_rows]
        part = part.assign(units=np.ones(len(part), dtype=np.int64))
        out = apply_edits_with_keys(part, payers, ref, LineKeys(part, keys.visit_keys, patient_col=keys.patient_col,
                                                                 code_col=keys.code_col))
        verdict = np.zeros(len(lines), dtype=bool)
        verdict[day_rows] = np.asarray(pd.Categorical(out["disposition"], categories=DISPOSITIONS).codes) == (
            DISPOSITIONS.index("denied"))
        return verdict[rows]

    return denied



def _same_patient_day(keys: LineKeys, rows: np.ndarray) -> np.ndarray:
    """Positions of every line of the patient's days of the lines at ``rows`` (the same patient
    and date of service, any provider or payer), in row order: marked in a table over
    patients x days when that is small next to the lines, else through the day's group ids."""
    patient, day = keys.patient, keys.date_rank
    if len(rows) and keys.n:
        n_days = int(day.max()) + 1
        size = (int(patient.max()) + 1) * n_days
        if size <= 64 * keys.n + (1 << 20):
            key = patient * n_days + day
            mark = np.zeros(size, dtype=bool)
            mark[key[rows]] = True
            return np.flatnonzero(mark[key])
    group = group_ids(keys, "patient_day", payer=False)
    return np.flatnonzero(np.isin(group, np.unique(group[rows])))


def check_codes(lines, code_col, codes, values, ref: Reference) -> None:
    """Raise naming the lines whose code (``values[codes]``) the reference catalog lacks."""
    known = np.isin(values, ref.codes["cpt"].to_numpy())
    if not known.all():
        bad = lines[~known[codes]]
        ref.code_table(bad[code_col].astype(str))  # raises naming the rows and codes


def checked_minutes(lines: pd.DataFrame, col: str, timed: np.ndarray) -> np.ndarray:
    """The direct minutes of every line as floats (NaN where blank), raising naming the lines
    whose minutes are not numbers, negative, fractional or missing on a timed code."""
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


def _reasons(timed, is_cms, m, t_line, code_total, got, tie, where) -> pd.Categorical:
    """Build the reason text once per distinct case and map it back (fast at 10M lines).

    A case is what the words depend on: untimed, or the rule, the lines it counts together,
    the minutes it counts (the group's for CMS, the code's for AMA) and, once those reach 8,
    the line's own minutes, whether it earned a leftover unit and how a tie was settled.
    """
    kind = np.where(timed, np.where(is_cms, 1, 2), 0)
    total = np.where(timed, np.where(is_cms, t_line, code_total), 0)
    counted = total >= 8
    where = np.where(timed, where, 0)
    tie = np.where(counted, tie, 0)
    columns = [kind, total, np.where(counted, m, 0), counted & got]
    # tie and grouping only where they vary (usually they do not): fewer columns, faster cases
    columns += [c for c in (tie, where) if len(c) and (c != c[0]).any()]
    codes, first = cases(columns)
    text = [_reason_text(k, t, mm, g, tt, ww) for k, t, mm, g, tt, ww in
            zip(kind[first].tolist(), total[first].tolist(), m[first].tolist(), got[first].tolist(),
                tie[first].tolist(), where[first].tolist(), strict=True)]
    cats, inverse = np.unique(np.asarray(text, dtype=str), return_inverse=True)
    return pd.Categorical.from_codes(inverse[codes], categories=cats, validate=False)


_WHERE = ("in the visit", "that day (all providers)", "that day in this discipline")
# words for the groupings of analytics.grouping.GROUPING_WORDS, in the order visit, patient_day, discipline


@functools.lru_cache(maxsize=1 << 17)
def _reason_text(kind: int, total: int, m: int, g: bool, tie: int = TIE_NONE, where: int = 0) -> str:
    if kind == 0:
        return "untimed code: one unit per session; its minutes are not counted"
    at = _WHERE[where]
    if kind == 1:
        if total < 8:
            return f"CMS 8-minute rule: {total} timed minutes {at} is under 8, so no timed unit is billed"
        head = f"CMS 8-minute rule: {total} timed minutes {at} -> {(total + 7) // 15} unit(s); this code {m} min"
    else:
        if total < 8:
            return f"AMA midpoint rule: this code has {total} min {at}, under the 8-minute midpoint -> 0 units"
        head = (f"AMA midpoint rule: this code has {total} min {at} -> {(total + 7) // 15} unit(s); "
                f"this line {m} min")
    w = m // 15
    parts = [f"{w} full 15-min unit(s)"] if w else []
    left = m - 15 * w
    tied = {TIE_PAID: "; leftovers tied, and the unit goes to the service the payer pays",
            TIE_CODE: "; leftovers tied, the provider's choice, settled here by code order"}.get(tie, "")
    if g:
        parts.append(f"+1 for its {left} leftover min (among the largest leftovers{tied})")
    elif left:
        parts.append(f"its {left} leftover min did not earn a unit" + (f" ({tied[2:]})" if tied else ""))
    return f"{head} = {', '.join(parts) if parts else 'no unit'} -> {w + g} unit(s)"
