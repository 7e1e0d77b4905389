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

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analytics.exceptions import InputError, MinutesError
from analytics.refdata import Reference, load_reference

__all__ = ["compute_units", "visit_codes", "factorize", "distinct_rows", "VISIT_KEYS", "UNIT_METHODS"]

#: Columns that identify a visit: same patient, same date, same provider.
VISIT_KEYS = ("patient_id", "service_date", "provider_id")
UNIT_METHODS = ("cms", "ama")


def factorize(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and distinct values (as ``str``) of a column; missing values become ``""``.

    The rule stages work on these codes and look things up once per distinct value, which
    keeps them fast at millions of lines whatever the column's dtype.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy().astype(np.int64)
        cats = np.asarray(values.cat.categories.astype(str), dtype=object)
    else:
        codes, uniq = pd.factorize(values, use_na_sentinel=True)
        codes = codes.astype(np.int64)
        cats = np.asarray(pd.Index(uniq).astype(str), dtype=object)
    if (codes < 0).any():
        cats = np.append(cats, "")
        codes = np.where(codes < 0, len(cats) - 1, codes)
    return codes, cats


def distinct_rows(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group id of each row over several aligned arrays, and the first row of each group.

    Each column is factorized, then the codes are combined in mixed radix into one integer
    key, which is much faster than a multi-column groupby at millions of rows.
    """
    n = len(columns[0]) if columns else 0
    key = np.zeros(n, dtype=np.int64)
    radix = 1
    for col in columns:
        codes, uniq = pd.factorize(np.asarray(col))
        if radix * max(len(uniq), 1) > 2**62:  # would overflow: fold the key so far first
            key = pd.factorize(key)[0].astype(np.int64)
            radix = int(key.max()) + 1 if n else 1
        key = key + codes.astype(np.int64) * radix
        radix *= max(len(uniq), 1)
    group, _ = pd.factorize(key)
    first = np.unique(group, return_index=True)[1]
    return group.astype(np.int64), first


def visit_codes(lines: pd.DataFrame, keys: Sequence[str] = VISIT_KEYS) -> np.ndarray:
    """Dense integer id of each line's visit (lines sharing all ``keys`` share an id)."""
    missing = [k for k in keys if k not in lines.columns]
    if missing:
        raise InputError(
            f"The service lines lack the visit column(s) {missing}. A visit is patient + service "
            f"date + provider; pass visit_keys=... naming the columns your data uses."
        )
    if len(keys) == 1:
        return pd.factorize(lines[keys[0]], sort=False)[0].astype(np.int64)
    return lines.groupby(list(keys), sort=False, observed=True, dropna=False).ngroup().to_numpy(np.int64)


def _allocate(group: np.ndarray, minutes: np.ndarray, total: np.ndarray, tiebreak: list[np.ndarray]):
    """Hand out ``total[g]`` units among the lines of each group ``g``.

    Every full 15 minutes of a line is a unit; the units left over go one at a time to the
    lines with the largest leftover minutes (then more minutes, then the ``tiebreak`` keys). This
    reproduces every worked example in Pub. 100-04 ch. 5 sec. 20.2. Returns
    ``(units, whole, got_leftover)`` per line.
    """
    whole = minutes // 15
    rem = minutes - 15 * whole
    n_groups = int(total.shape[0])
    whole_sum = np.bincount(group, weights=whole, minlength=n_groups)
    extra = np.clip(total - whole_sum, 0, None)
    order = np.lexsort((*tiebreak[::-1], -minutes, -rem, group))
    g_sorted = group[order]
    first = np.r_[0, np.flatnonzero(np.diff(g_sorted)) + 1]
    starts = np.repeat(first, np.diff(np.r_[first, len(order)]))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts
    got = (rank < extra[group]) & (rem > 0)
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
    cpt_codes, cpt_values = factorize(lines[code_col])
    _check_codes(lines, code_col, cpt_codes, cpt_values, ref)
    timed = ref.code_table(pd.Series(cpt_values))["timed"].to_numpy(bool)[cpt_codes]

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

    minutes = _checked_minutes(lines, minutes_col, timed)
    group = visit_codes(lines, visit_keys)
    n_visits = int(group.max()) + 1 if len(group) else 0
    m = np.where(timed, np.nan_to_num(minutes), 0).astype(np.int64)

    visit_total = np.bincount(group, weights=m, minlength=n_visits).astype(np.int64)
    t_line = visit_total[group]
    # Ties between equal leftovers are the provider's choice (ch. 5 sec. 20.2); break them by
    # code, then modifiers, then line id, so the result never depends on row order.
    tiebreak = [_ranks(cpt_codes, cpt_values)]
    for col in ("modifiers", "line_id"):
        if col in lines.columns:
            tiebreak.append(_ranks(*factorize(lines[col])))
    units = np.zeros(len(lines), dtype=np.int64)
    whole = m // 15
    got = np.zeros(len(lines), dtype=bool)

    # CMS: the total over all timed minutes of the visit sets the units (ch. 5 sec. 20.2).
    sel = timed & is_cms
    if sel.any():
        g = group[sel]
        cms_total = np.where(visit_total >= 8, (visit_total + 7) // 15, 0)
        u, _, gt = _allocate(g, m[sel], cms_total, [t[sel] for t in tiebreak])
        units[sel] = u
        got[sel] = gt

    # AMA/CPT: each code counted on its own (its minutes summed over the visit's lines).
    sel = timed & ~is_cms
    code_total = np.zeros(len(lines), dtype=np.int64)
    if sel.any():
        gc = pd.factorize(group[sel] * (int(tiebreak[0].max()) + 1) + tiebreak[0][sel])[0]
        per_code = np.bincount(gc, weights=m[sel]).astype(np.int64)
        ama_total = np.where(per_code >= 8, (per_code + 7) // 15, 0)
        u, _, gt = _allocate(gc, m[sel], ama_total, [t[sel] for t in tiebreak])
        units[sel] = u
        got[sel] = gt
        code_total[sel] = per_code[gc]

    units[~timed] = 1
    reason = _reasons(timed, is_cms, m, t_line, code_total, units, whole, got)
    return lines.assign(
        units=units,
        timed=timed,
        visit_timed_minutes=np.where(is_cms, t_line, code_total),
        units_reason=reason,
    )


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
    num = pd.to_numeric(raw, errors="coerce")
    non_numeric = num.isna() & raw.notna()
    if non_numeric.any():  # blank text counts as missing, not as "not a number"
        non_numeric[non_numeric] = raw[non_numeric].astype(str).str.strip().ne("")
    if non_numeric.any():
        raise MinutesError.for_rows(
            lines[non_numeric.to_numpy()], "have minutes that are not a number",
            "Give minutes as whole numbers, e.g. 23.",
        )
    if (num < 0).any():
        raise MinutesError.for_rows(
            lines[(num < 0).to_numpy()], "have negative minutes", "Minutes are 0 or more."
        )
    no_minutes = num.isna().to_numpy() & timed
    if no_minutes.any():
        rows = lines[no_minutes]
        codes = ", ".join(sorted(set(rows["cpt"].astype(str)))) if "cpt" in rows else "timed codes"
        raise MinutesError.for_rows(
            rows, f"have no minutes for timed code {codes}",
            "Add the direct minutes, or mark the code untimed in the catalog if your payer treats it so.",
        )
    frac = num.notna() & (num != np.floor(num))
    if frac.any():
        raise MinutesError.for_rows(
            lines[frac.to_numpy()], "have fractional minutes", "Round direct minutes to whole minutes."
        )
    return num.to_numpy(dtype=float, na_value=np.nan)


def _reasons(timed, is_cms, m, t_line, code_total, units, whole, got) -> pd.Categorical:
    """Build the reason text once per distinct case and map it back (fast at 10M lines)."""
    cols = {"timed": timed, "cms": is_cms, "m": m, "t": t_line, "c": code_total, "u": units, "w": whole, "g": got}
    codes, first = distinct_rows(list(cols.values()))
    u = pd.DataFrame({k: np.asarray(v)[first] for k, v in cols.items()})
    text = np.empty(len(u), dtype=object)
    for i, r in enumerate(u.itertuples(index=False)):  # one pass per distinct case, not per line
        text[i] = _reason_text(r.timed, r.cms, r.m, r.t, r.c, r.u, r.w, r.g)
    cats, inverse = np.unique(text.astype(str), return_inverse=True)
    return pd.Categorical.from_codes(inverse[codes], categories=cats, validate=False)


def _reason_text(timed, cms, m, t, c, u, w, g) -> str:
    if not timed:
        return "untimed code: one unit per session; its minutes are not counted"
    if cms:
        total = (t + 7) // 15 if t >= 8 else 0
        if t < 8:
            return f"CMS 8-minute rule: {t} timed minutes in the visit is under 8, so no timed unit is billed"
        head = f"CMS 8-minute rule: {t} timed minutes in the visit -> {total} unit(s); this code {m} min"
    else:
        if c < 8:
            return f"AMA midpoint rule: this code has {c} min in the visit, under the 8-minute midpoint -> 0 units"
        head = f"AMA midpoint rule: this code has {c} min in the visit -> {(c + 7) // 15} unit(s); this line {m} min"
    parts = [f"{w} full 15-min unit(s)"] if w else []
    left = m - 15 * w
    if g:
        parts.append(f"+1 for its {left} leftover min (among the largest leftovers)")
    elif left:
        parts.append(f"its {left} leftover min did not earn a unit")
    return f"{head} = {', '.join(parts) if parts else 'no unit'} -> {u} unit(s)"
