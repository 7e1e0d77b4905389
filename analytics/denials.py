"""Denials: what each remittance line's outcome was, how often each payer denies, and why.

Three layers, from facts to forecasts:

* :func:`line_outcomes` reads the adjustments of every 835 service line and says whether the
  line was paid, partially denied or denied, which CARC carried the denial and its category
  in the reference catalog (bundling, medical necessity, authorisation, benefit maximum,
  frequency, timely filing, eligibility, coding/modifier, provider eligibility,
  prescription/referral, duplicate, coordination of benefits ...). Contractual write-downs
  (CO-45, CO-253, MPPR CO-59) and cost share (PR-1/2/3) are not denials.
* :func:`denial_rates` and :func:`monthly_trend` count denials by payer, code, modifiers and
  category with empirical-Bayes (beta-binomial) shrinkage, so that a payer with three claims
  is not shown at 0% or 100%, and give credible intervals and the dollars at risk.
* :class:`DenialRiskModel` learns, from the practice's own history, the denials the rules
  engine cannot foresee: a regularised logistic regression on features a biller can see
  before submission (payer, code, modifiers, the other codes of the visit, units, diagnosis
  group, prescription on file, visit number against the payer's limit, days to submission,
  provider type), with the top factors behind each prediction named in words.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.exceptions import AnalyticsWarning, InputError, ModelError, SmallSampleWarning
from analytics.payers import load_payers, payer_table
from analytics.pipeline import evaluate
from analytics.refdata import load_reference
from analytics.remittance import link_remittance, read_835_many
from analytics.units import VISIT_KEYS, compute_units

__all__ = [
    "DenialRiskModel",
    "RiskReport",
    "line_outcomes",
    "label_lines",
    "denial_rates",
    "monthly_trend",
    "fit_beta_prior",
    "register_cli",
    "BUNDLE_STATES",
    "DIAGNOSIS_GROUPS",
    "diagnosis_group",
    "visit_band",
    "filing_band",
    "units_band",
]

#: Diagnosis groups used as a risk feature, with the ICD-10-CM prefixes that define them
#: (FACTS 9). The first code of ``dx_codes`` (the primary diagnosis) decides the group.
DIAGNOSIS_GROUPS: dict[str, tuple[str, ...]] = {
    # Injuries (S/T chapters, 7th character A/D/S) first: an injury code outranks the rest.
    "injury": ("S", "T"),
    "headache": ("G43", "G44", "R51"),
    "neck": ("M54.2", "M50", "M53.0", "M53.1", "M99.01"),
    "back": (
        "M54.3",
        "M54.4",
        "M54.5",
        "M54.6",
        "M54.8",
        "M54.9",
        "M51",
        "M53.2",
        "M53.3",
        "M53.8",
        "M99.02",
        "M99.03",
        "M99.04",
        "M99.05",
    ),
    "myalgia_spasm": ("M79.1", "M79.7", "M62.83"),
}


def _factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and distinct values as text; missing values become ``""``."""
    s = pd.Series(values) if not isinstance(values, pd.Series) else values
    codes, uniq = pd.factorize(s, use_na_sentinel=True)
    uniq = np.asarray(pd.Index(uniq).astype(str), dtype=object)
    if (codes < 0).any():
        uniq = np.append(uniq, "")
        codes = np.where(codes < 0, len(uniq) - 1, codes)
    return codes.astype(np.int64), uniq


def diagnosis_group(dx_codes: pd.Series | np.ndarray) -> np.ndarray:
    """Diagnosis group of each line from its primary ICD-10-CM code (the first in ``dx_codes``).

    Groups: ``injury`` (S/T codes), ``headache``, ``neck``, ``back``, ``myalgia_spasm``,
    else ``other`` (and ``unknown`` when no code is given). Computed once per distinct value.

    Examples
    --------
    >>> diagnosis_group(pd.Series(["M54.50,M62.830", "S16.1XXD", "G44.209", "", "M25.511"])).tolist()
    ['back', 'injury', 'headache', 'unknown', 'other']
    """
    codes, uniq = _factorize(dx_codes)
    groups = np.empty(len(uniq), dtype=object)
    for i, text in enumerate(uniq):
        primary = str(text).replace(";", ",").replace(" ", ",").split(",")[0].strip().upper()
        if not primary or primary in ("NAN", "NONE"):
            groups[i] = "unknown"
            continue
        if "." not in primary and len(primary) > 3:  # "M5450" written without the dot
            primary = primary[:3] + "." + primary[3:]
        groups[i] = next(
            (g for g, prefixes in DIAGNOSIS_GROUPS.items() if primary.startswith(prefixes)), "other"
        )
    return groups[codes] if len(codes) else np.array([], dtype=object)


_VISIT_LIMIT_BANDS = (
    (0.5, "within 50% of the visit limit"),
    (0.8, "51-80% of the visit limit"),
    (1.0, "81-100% of the visit limit"),
    (np.inf, "past the visit limit"),
)
_VISIT_COUNT_BANDS = (
    (12, "visits 1-12 of the year"),
    (24, "visits 13-24 of the year"),
    (np.inf, "visit 25 or later in the year"),
)
_FILING_LIMIT_BANDS = (
    (0.25, "within 25% of the filing limit"),
    (0.5, "26-50% of the filing limit"),
    (0.75, "51-75% of the filing limit"),
    (1.0, "76-100% of the filing limit"),
    (np.inf, "past the filing limit"),
)
_FILING_DAY_BANDS = (
    (7, "submitted 0-7 days after service"),
    (30, "submitted 8-30 days after service"),
    (90, "submitted 31-90 days after service"),
    (180, "submitted 91-180 days after service"),
    (np.inf, "submitted over 180 days after service"),
)


#: Bundling state of a line: is it the column-2 code of an NCCI pair (or a payer's own pair)
#: whose column-1 code is billed in the same visit, and with which modifier?
BUNDLE_STATES = (
    "not paired",
    "paired with its column-1 code, no modifier",
    "paired with its column-1 code, modifier 59",
    "paired with its column-1 code, X modifier",
)
NO_PRESCRIPTION, PRESCRIPTION = "no prescription on file", "prescription on file"


def _band_codes(x: np.ndarray, bands) -> np.ndarray:
    edges = np.array([b[0] for b in bands], dtype=float)
    return np.minimum(np.searchsorted(edges, x, side="left"), len(edges) - 1)


def _labelled(codes: np.ndarray, labels: list[str], as_codes: bool):
    return (codes, labels) if as_codes else np.array(labels, dtype=object)[codes]


def visit_band(visit_number: np.ndarray, limit: np.ndarray, *, codes: bool = False):
    """Where a visit falls in the year: against the payer's visit limit, else by count.

    ``visit_number`` is the 1-based number of the visit among the patient's visits with the
    payer in the calendar year (visits before the data included); ``limit`` the payer's
    annual visit limit (NaN when it has none). With ``codes=True`` returns integer codes and
    the list of labels instead of the labels.

    Examples
    --------
    >>> visit_band(np.array([3, 17, 21, 30]), np.array([20, 20, 20, np.nan])).tolist()
    ['within 50% of the visit limit', '81-100% of the visit limit', 'past the visit limit', 'visit 25 or later in the year']
    """
    v = np.asarray(visit_number, dtype=float)
    lim = np.asarray(limit, dtype=float)
    has = np.isfinite(lim) & (lim > 0)
    by_limit = _band_codes(np.where(has, v / np.where(has, lim, 1.0), 0.0), _VISIT_LIMIT_BANDS)
    by_count = len(_VISIT_LIMIT_BANDS) + _band_codes(v, _VISIT_COUNT_BANDS)
    labels = [b[1] for b in _VISIT_LIMIT_BANDS] + [b[1] for b in _VISIT_COUNT_BANDS]
    return _labelled(np.where(has, by_limit, by_count), labels, codes)


def filing_band(lag_days: np.ndarray, limit_days: np.ndarray, *, codes: bool = False):
    """Days from service to submission: against the payer's timely-filing limit, else in days.

    Examples
    --------
    >>> filing_band(np.array([5, 80, 100, 40]), np.array([90, 90, 90, np.nan])).tolist()
    ['within 25% of the filing limit', '76-100% of the filing limit', 'past the filing limit', 'submitted 31-90 days after service']
    """
    d = np.asarray(lag_days, dtype=float)
    lim = np.asarray(limit_days, dtype=float)
    has = np.isfinite(lim) & (lim > 0)
    by_limit = _band_codes(np.where(has, d / np.where(has, lim, 1.0), 0.0), _FILING_LIMIT_BANDS)
    by_days = len(_FILING_LIMIT_BANDS) + _band_codes(d, _FILING_DAY_BANDS)
    labels = [b[1] for b in _FILING_LIMIT_BANDS] + [b[1] for b in _FILING_DAY_BANDS]
    return _labelled(np.where(has, by_limit, by_days), labels, codes)


_UNIT_BANDS = ["0 units", "1 unit", "2 units", "3 units", "4+ units"]


def units_band(units: np.ndarray, *, codes: bool = False):
    """Billed units as a band: ``0 units`` ... ``4+ units``.

    Examples
    --------
    >>> units_band(np.array([1, 2, 6])).tolist()
    ['1 unit', '2 units', '4+ units']
    """
    u = np.clip(np.nan_to_num(np.asarray(units, dtype=float)), 0, 4).astype(np.int64)
    return _labelled(u, list(_UNIT_BANDS), codes)


def _policy_array(payer_ids: np.ndarray, payers: Mapping | None, attr: str) -> np.ndarray:
    """A numeric payer-policy setting per line (NaN when unknown or unset)."""
    codes, uniq = _factorize(pd.Series(payer_ids))
    values = np.full(len(uniq), np.nan)
    for i, pid in enumerate(uniq):
        pol = payers.get(pid) if payers else None
        v = getattr(pol, attr, None) if pol is not None else None
        values[i] = np.nan if v is None else float(v)
    return values[codes]


# ---------------------------------------------------------------------------------------
# Line outcomes from 835 remittances
# ---------------------------------------------------------------------------------------

OUTCOMES = ("paid", "partially_denied", "denied", "reversal")

_OUTCOME_COLUMNS = (
    "file",
    "payer_id",
    "payer_name",
    "claim_index",
    "claim_id",
    "claim_status",
    "level",
    "line_index",
    "line_control_number",
    "cpt",
    "modifiers",
    "service_date",
    "payment_date",
    "charge",
    "allowed",
    "paid",
    "units",
    "outcome",
    "denied_amount",
    "contractual_amount",
    "patient_amount",
    "carc",
    "group_code",
    "category",
    "reason",
    "denial_codes",
    "rarc",
)


def _carc_table(reference) -> pd.DataFrame:
    ref = reference or load_reference()
    return (
        ref.carc[["carc", "label", "category", "denial"]].drop_duplicates("carc").set_index("carc")
    )


# pandas' "str" dtype, the one it gives a column of Python strings (Arrow-backed with pyarrow)
_STR = pd.Series([""], dtype="str").dtype
_ARROW_STR = getattr(_STR, "storage", "") == "pyarrow"
_KEY_LIMIT = 1 << 62  # largest key range packed into one int64 key


def _shared_codes(columns, *, sort: bool = False) -> list[np.ndarray]:
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


def _int_codes(columns) -> tuple[list[np.ndarray], int]:
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


def _tuple_keys(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
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


def _increasing(keys: np.ndarray, strictly: bool = True) -> bool:
    if len(keys) < 2:
        return True
    return bool((keys[1:] > keys[:-1]).all() if strictly else (keys[1:] >= keys[:-1]).all())


def _positions(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Where each ``left`` key is in ``right`` (distinct keys), -1 where it is not."""
    if len(right) and _increasing(right):  # sorted: binary search, no hash table
        at = np.minimum(np.searchsorted(right, left), len(right) - 1)
        return np.where(right[at] == left, at, -1)
    return pd.Index(right).get_indexer(left)


def _contained(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Whether each ``left`` key is among the ``right`` keys."""
    if len(right) and _increasing(right, strictly=False):
        at = np.minimum(np.searchsorted(right, left), len(right) - 1)
        return right[at] == left
    return pd.Series(left).isin(right).to_numpy(dtype=bool)


def _inner_pairs(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the row pairs of an inner ``merge`` of ``left`` with ``right`` on one
    integer key, in the order merge gives them (left rows in order, each with its matches)."""
    if not len(left) or not len(right):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if _increasing(right, strictly=False):  # sorted: each left key's run of equal right keys
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


def _text_column(texts: np.ndarray, codes: np.ndarray):
    """``texts[codes]`` as a column.

    When every text is a string, a pandas "str" array (the dtype pandas infers for Python
    strings) taken from the few distinct texts; else the object values, for pandas to infer
    the dtype as it does for any object array. An empty column stays object.
    """
    texts = np.asarray(texts, dtype=object)
    if len(codes) and _ARROW_STR and all(isinstance(t, str) for t in texts):
        return pd.array(texts, dtype=_STR).take(codes)
    return texts[codes]


def _joined(row: np.ndarray, values: np.ndarray, n: int):
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
    if _ARROW_STR:
        return pd.arrays.ArrowStringArray(texts, dtype=_STR)
    return texts.to_numpy(zero_copy_only=False)


def line_outcomes(remittance, reference=None) -> pd.DataFrame:
    """The outcome of every remittance service line: paid, partially denied or denied, and why.

    Each CAS adjustment is classed by its CARC in the reference catalog: cost share (PR-1/2/3)
    and contractual write-downs (CO-45, CO-253, MPPR CO-59, OA-23 prior payer ...) are not
    denials; every CARC the catalog marks as a denial is, whatever its group (PR-119, a benefit
    maximum passed to the patient, is a denial). A line is ``denied`` when denial adjustments
    are present and it paid nothing, ``partially_denied`` when it also paid something, else
    ``paid``; lines of a reversal claim (CLP02 = 22) are ``reversal``. Claim-level adjustments
    are shared among the claim's lines in proportion to their charges; a claim with no service
    lines gets one row of its own (``level`` = ``"claim"``).

    Parameters
    ----------
    remittance
        A :class:`analytics.remittance.Remittance` (from ``read_835`` / ``read_835_many``).
    reference
        Reference data (CARC catalog); default the shipped tables.

    Returns
    -------
    DataFrame
        One row per service line (and per claim without lines): ``payer_id``, ``claim_id``,
        ``cpt``, ``modifiers``, ``service_date``, ``payment_date``, ``charge``, ``allowed``,
        ``paid``, ``outcome``, ``denied_amount``, ``contractual_amount``, ``patient_amount``,
        the main denial ``carc`` (largest denial amount), its ``group_code``, ``category`` and
        ``reason``, all ``denial_codes`` (e.g. ``"CO-97"``) and the line's ``rarc``.

    Warns
    -----
    AnalyticsWarning
        When a CARC is not in the catalog (it is counted as a denial in category ``other``).

    Examples
    --------
    >>> from analytics.remittance import read_835
    >>> remit = read_835("ST*835*1~BPR*I*40*C*CHK************20260320~CLP*A1*1*70*40~SVC*HC:97140*45*40~"
    ...                  "CAS*CO*45*5~SVC*HC:97124*25*0~CAS*CO*97*25~SE*8*1~")
    >>> line_outcomes(remit)[["cpt", "outcome", "carc", "category"]].values.tolist()
    [['97140', 'paid', '', ''], ['97124', 'denied', '97', 'bundling']]
    """

    catalog = _carc_table(reference)
    lines = remittance.service_lines
    claims = remittance.claims
    adj = remittance.adjustments
    pay = remittance.payments
    rem = remittance.remarks

    # class every adjustment, once per distinct CARC and group code
    raw_codes, raw_uniq = pd.factorize(adj["carc"], use_na_sentinel=True)
    upper = pd.Series(raw_uniq).astype(str).str.strip().str.upper()
    carc_value = np.append(upper.to_numpy(dtype=object), np.nan)  # by raw code; -1 is missing
    known = np.append(upper.isin(catalog.index).to_numpy(dtype=bool), False)
    if not known[raw_codes].all():
        seen = np.zeros(len(known), dtype=bool)
        seen[raw_codes] = True
        unknown = sorted(set(carc_value[seen & ~known]))
        warnings.warn(
            f"CARC(s) {', '.join(unknown)} are not in the reference catalog; they are counted as denials "
            "in category 'other'. Add them to analytics/reference/carc.csv with their category.",
            AnalyticsWarning,
            stacklevel=2,
        )
    # the catalog entry of each distinct CARC (a missing CARC reads as "")
    codes_u, carc_uniq = pd.factorize(upper, use_na_sentinel=True)
    uniq = np.append(np.asarray(pd.Index(carc_uniq).astype(str), dtype=object), "")
    carc_code = np.append(np.where(codes_u < 0, len(uniq) - 1, codes_u), len(uniq) - 1)[raw_codes]
    info = catalog.reindex(uniq)
    denial_u = (
        info["denial"].astype(object).where(info["denial"].notna(), True).to_numpy(dtype=bool)
    )
    category_u = info["category"].astype(object).where(info["category"].notna(), "other").to_numpy()
    label_u = (
        info["label"]
        .astype(object)
        .where(info["label"].notna(), "not in the CARC catalog")
        .to_numpy()
    )
    group_codes, group_uniq = pd.factorize(adj["group_code"], use_na_sentinel=True)
    group_text = np.append(np.asarray(group_uniq, dtype=object), np.nan)  # -1 is missing
    pr_u = (pd.Series(group_text, dtype=object).astype(str).str.upper() == "PR").to_numpy(
        dtype=bool, na_value=False
    )
    is_denial = denial_u[carc_code]
    is_pr_share = pr_u[group_codes] & ~is_denial
    amount = adj["amount"].to_numpy(dtype=float)

    # integer keys of (file, claim) and of (file, claim, line), equal across the tables exactly
    # where the values are equal, and ordered as the values (files by name, a claim's own
    # row, whose line index is missing, before its lines)
    f_lines, f_claims, f_adj, f_rem, f_pay = _shared_codes(
        [lines["file"], claims["file"], adj["file"], rem["file"], pay["file"]], sort=True
    )
    (c_lines, c_claims, c_adj, c_rem), _ = _int_codes(
        [lines["claim_index"], claims["claim_index"], adj["claim_index"], rem["claim_index"]]
    )
    (l_lines, l_adj, l_rem), no_line = _int_codes(
        [lines["line_index"], adj["line_index"], rem["line_index"]]
    )
    claim_k_lines, claim_k_claims, claim_k_adj = _tuple_keys(
        [[f_lines, c_lines], [f_claims, c_claims], [f_adj, c_adj]]
    )
    line_k_lines, line_k_claims, line_k_adj, line_k_rem = _tuple_keys(
        [
            [f_lines, c_lines, l_lines],
            [f_claims, c_claims, np.full(len(claims), no_line, dtype=np.int64)],
            [f_adj, c_adj, l_adj],
            [f_rem, c_rem, l_rem],
        ]
    )

    rows = lines[
        [
            "file",
            "st_index",
            "claim_index",
            "line_index",
            "claim_id",
            "line_control_number",
            "cpt",
            "modifiers",
            "service_date",
            "charge",
            "allowed",
            "paid",
            "paid_units",
        ]
    ]
    rows = rows.rename(columns={"paid_units": "units"})
    rows["level"] = "line"
    row_file, row_claim_k, row_line_k = f_lines, claim_k_lines, line_k_lines
    is_line_row = np.ones(len(lines), dtype=bool)
    # claims with no service line stand as one row
    lone_at = np.flatnonzero(~_contained(claim_k_claims, claim_k_lines))
    if len(lone_at):
        lone = claims.iloc[lone_at]
        rows = pd.concat(
            [
                rows,
                pd.DataFrame(
                    {
                        "file": lone["file"].to_numpy(),
                        "st_index": lone["st_index"].to_numpy(),
                        "claim_index": lone["claim_index"].to_numpy(),
                        "line_index": pd.array([pd.NA] * len(lone), "Int64"),
                        "claim_id": lone["claim_id"].to_numpy(),
                        "line_control_number": None,
                        "cpt": "",
                        "modifiers": "",
                        "service_date": lone["claim_service_date"].to_numpy(),
                        "charge": lone["charge"].to_numpy(),
                        "allowed": np.nan,
                        "paid": lone["paid"].to_numpy(),
                        "units": np.nan,
                        "level": "claim",
                    }
                ),
            ],
            ignore_index=True,
        )
        row_file = np.concatenate([f_lines, f_claims[lone_at]])
        row_claim_k = np.concatenate([claim_k_lines, claim_k_claims[lone_at]])
        row_line_k = np.concatenate([line_k_lines, line_k_claims[lone_at]])
        is_line_row = np.r_[is_line_row, np.zeros(len(lone_at), dtype=bool)]
    # in file, claim and line order (a stable sort, a claim's own row first)
    if not _increasing(row_line_k, strictly=False):
        order = np.argsort(row_line_k, kind="stable")
        rows = rows.take(order)
        row_file, row_claim_k, row_line_k, is_line_row = (
            row_file[order],
            row_claim_k[order],
            row_line_k[order],
            is_line_row[order],
        )
    rows = rows.reset_index(drop=True)
    n = len(rows)

    # adjustments onto rows: line level by line index, claim level shared by charge
    on_line = np.flatnonzero((adj["level"] == "line").to_numpy(dtype=bool, na_value=False))
    if is_line_row.all():
        li, line_row = _inner_pairs(line_k_adj[on_line], row_line_k)
    else:
        line_rows = np.flatnonzero(is_line_row)
        li, ri = _inner_pairs(line_k_adj[on_line], row_line_k[line_rows])
        line_row = line_rows[ri]
    line_adj = on_line[li]
    on_claim = np.flatnonzero((adj["level"] == "claim").to_numpy(dtype=bool, na_value=False))
    li, claim_row = _inner_pairs(claim_k_adj[on_claim], row_claim_k)
    claim_adj = on_claim[li]
    spread = pd.DataFrame(
        {
            "file": adj["file"].array.take(claim_adj),
            "claim_index": adj["claim_index"].to_numpy()[claim_adj],
            "segment": adj["segment"].to_numpy()[claim_adj],
            "carc": carc_value[raw_codes[claim_adj]],
            "charge": rows["charge"].to_numpy(dtype=float)[claim_row],
        }
    )
    by = spread.groupby(["file", "claim_index", "segment", "carc"], sort=False)["charge"]
    total = by.transform("sum")
    count = by.transform("size")
    share = np.where(total.abs() > 0, spread["charge"] / total.where(total.abs() > 0, 1), 1 / count)

    # each row's adjustments: its line's (in the order of the table), then its share of its
    # claim's
    src = np.concatenate([line_adj, claim_adj])
    row = np.concatenate([line_row, claim_row])
    cut = len(line_adj)
    den_mask, pr_mask = is_denial[src], is_pr_share[src]
    raw = amount[src]
    amt = raw.copy()
    amt[cut:] = amt[cut:] * share
    parts = {}
    for name, mask in (
        ("denied", den_mask),
        ("contractual", ~den_mask & ~pr_mask),
        ("patient", pr_mask),
    ):
        v = np.where(mask, raw, 0.0)
        v[cut:] = v[cut:] * share
        parts[name] = v
    # pandas' grouped sum, in this order (the order decides the last bit of a total)
    sums = pd.DataFrame(parts).groupby(row).sum()
    for name in ("denied", "contractual", "patient"):
        t = np.zeros(n)
        t[sums.index.to_numpy()] = sums[name].to_numpy()
        rows[f"{name}_amount"] = np.where(np.isnan(t), 0.0, t).round(2)

    # the main denial of a row: the largest amount, then the first segment
    d = np.flatnonzero(den_mask)
    d_order = np.lexsort((adj["segment"].to_numpy()[src[d]], -np.abs(amt[d]), row[d]))
    d_row, d_src = row[d][d_order], src[d][d_order]
    first = np.flatnonzero(np.r_[True, d_row[1:] != d_row[:-1]]) if len(d_row) else d_row[:0]
    main_row, main_src = d_row[first], d_src[first]

    def on_main(texts: np.ndarray, code: np.ndarray):
        """``texts[code]`` on the rows with a denial, "" on the others (and for code -1)."""
        pick = np.full(n, len(texts), dtype=np.int64)
        pick[main_row] = np.where(code < 0, len(texts), code)
        return _text_column(np.append(np.asarray(texts, dtype=object), ""), pick)

    carc_fill = np.where(pd.isna(carc_value), "", carc_value)[:-1]
    group_fill = np.where(pd.isna(group_text), "", group_text)[:-1]
    rows["carc"] = on_main(carc_fill, raw_codes[main_src])
    rows["group_code"] = on_main(group_fill, group_codes[main_src])
    rows["category"] = on_main(category_u, carc_code[main_src])
    rows["reason"] = on_main(label_u, carc_code[main_src])

    # every denial code of a row ("GROUP-CARC"), once each, in the same order
    width = len(carc_value)
    pair = group_codes[d_src].astype(np.int64) * width + raw_codes[d_src] % width
    pair_codes, pair_uniq = pd.factorize(pair)
    pair_text = (
        pd.Series(group_text[pair_uniq // width], dtype=object).astype(str)
        + "-"
        + pd.Series(carc_value[pair_uniq % width], dtype=object).astype(str)
    )
    text_codes, text_uniq = pd.factorize(pair_text)
    code_id = text_codes[pair_codes]
    keep = ~pd.Series(d_row * max(len(text_uniq), 1) + code_id).duplicated().to_numpy()
    rows["denial_codes"] = _joined(
        d_row[keep], np.asarray(text_uniq, dtype=object)[code_id[keep]], n
    )

    # the remark codes of each line, once each, in file order
    rem_line = np.flatnonzero((rem["level"] == "line").to_numpy(dtype=bool, na_value=False))
    li, ri = _inner_pairs(line_k_rem[rem_line], row_line_k)
    r_order = np.argsort(ri, kind="stable")
    r_row, r_src = ri[r_order], rem_line[li][r_order]
    r_codes, r_uniq = pd.factorize(rem["code"], use_na_sentinel=True)
    r_text = pd.Series(np.append(np.asarray(r_uniq, dtype=object), np.nan), dtype=object)
    t_codes, t_uniq = pd.factorize(r_text.astype(str))
    r_id = t_codes[r_codes[r_src]]
    keep = ~pd.Series(r_row * max(len(t_uniq), 1) + r_id).duplicated().to_numpy()
    rows["rarc"] = _joined(r_row[keep], np.asarray(t_uniq, dtype=object)[r_id[keep]], n)

    # claim status, outcome
    c_at = _positions(claim_k_claims, row_claim_k)
    c_at = np.where(c_at >= 0, c_at, len(claims))  # past the end: no such claim
    status = claims["status"]
    if n and (c_at < len(claims)).all() and status.dtype == _STR and not status.isna().any():
        rows["claim_status"] = status.array.take(c_at)
    else:
        rows["claim_status"] = np.append(status.to_numpy(dtype=object), np.nan)[c_at]
    reversal = (
        pd.Series(
            np.append(claims["is_reversal"].to_numpy(dtype=object), np.nan)[c_at], dtype=object
        )
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    paid = rows["paid"].to_numpy(dtype=float)
    has_denial = np.abs(rows["denied_amount"].to_numpy()) >= 0.005
    outcome = np.where(reversal, 3, np.where(has_denial, np.where(np.abs(paid) >= 0.005, 1, 2), 0))
    rows["outcome"] = pd.array(
        np.array(["paid", "partially_denied", "denied", "reversal"], dtype=object), dtype=_STR
    ).take(outcome)

    # payer and payment date of the row's transaction
    (p_st, r_st), _ = _int_codes([pay["st_index"], rows["st_index"]])
    pk, pl = _tuple_keys([[f_pay, p_st], [row_file, r_st]])
    p_at = _positions(pk, pl)
    p_at = np.where(p_at >= 0, p_at, len(pay))  # past the end: no such transaction
    payer_id = np.append(pay["payer_id"].to_numpy(dtype=object), np.nan)
    payer_name = np.append(pay["payer_name"].to_numpy(dtype=object), np.nan)
    payer_id = np.where(pd.isna(payer_id), payer_name, payer_id)
    rows["payer_id"] = _text_column(
        pd.Series(payer_id, dtype=object).fillna("unknown payer").to_numpy(), p_at
    )
    rows["payer_name"] = _text_column(
        pd.Series(payer_name, dtype=object).fillna("").to_numpy(), p_at
    )
    pdate = pay["payment_date"].fillna(pay["production_date"])
    rows["payment_date"] = pd.concat(
        [pdate, pd.Series([pd.NaT], dtype=pdate.dtype)], ignore_index=True
    ).to_numpy()[p_at]
    rows["modifiers"] = rows["modifiers"].fillna("").astype(str)
    rows["cpt"] = rows["cpt"].fillna("").astype(str)
    return rows[list(_OUTCOME_COLUMNS)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Denial rates with empirical-Bayes shrinkage
# ---------------------------------------------------------------------------------------

_DENIAL_OUTCOMES = ("denied", "partially_denied")


def _denied_flag(frame: pd.DataFrame) -> np.ndarray:
    if "outcome" in frame.columns:
        return frame["outcome"].astype(str).isin(_DENIAL_OUTCOMES).to_numpy()
    if "denied" in frame.columns:
        return frame["denied"].fillna(False).astype(bool).to_numpy()

    raise InputError(
        "The outcomes have neither an 'outcome' column (line_outcomes) nor a boolean 'denied' "
        "column; pass line_outcomes(remittance) or lines with 'denied'."
    )


def fit_beta_prior(
    denied: np.ndarray,
    lines: np.ndarray,
    *,
    min_groups: int = 5,
    strength: float = 10.0,
    max_strength: float = 100.0,
) -> tuple[float, float, str]:
    """Beta prior for denial rates across groups, by beta-binomial marginal likelihood.

    Parameters
    ----------
    denied, lines
        Denials and lines per group.
    min_groups
        Fewer groups with lines than this: no fit; the prior is centred on the pooled rate
        with ``strength`` pseudo-lines.
    strength, max_strength
        Pseudo-lines of the fallback prior, and the most the fitted prior may carry. When the
        groups differ no more than chance would make them, the likelihood wants to pool them
        completely; the cap keeps a group of three lines from getting an interval as narrow
        as if it had hundreds.

    Returns
    -------
    (a, b, basis)
        The prior Beta(a, b) and how it was obtained, in words.

    Examples
    --------
    Two groups are too few to fit a spread: the prior is the pooled rate (1 + 0.5) / (7 + 1).

    >>> a, b, basis = fit_beta_prior(np.array([0, 1]), np.array([3, 4]))
    >>> round(a / (a + b), 4), round(a + b, 1), basis.split(":")[0]
    (0.1875, 10.0, 'pooled rate')
    """
    from scipy import optimize, special

    k = np.asarray(denied, dtype=float)
    n = np.asarray(lines, dtype=float)
    live = n > 0
    k, n = k[live], n[live]
    total_n, total_k = float(n.sum()), float(k.sum())
    pooled = (total_k + 0.5) / (total_n + 1.0)  # Jeffreys-adjusted, never exactly 0 or 1
    fallback = (strength * pooled, strength * (1 - pooled))
    if len(n) < min_groups or total_k == 0 or total_k == total_n:
        why = (
            f"pooled rate: {len(n)} group(s), too few to fit a spread"
            if len(n) < min_groups
            else "pooled rate: no spread to fit (all lines paid or all denied)"
        )
        return fallback[0], fallback[1], f"{why}; {strength:g} pseudo-lines at {pooled:.1%}"

    def nll(theta):
        mu = special.expit(theta[0])
        s = np.exp(theta[1])
        a, b = mu * s, (1 - mu) * s
        return -(special.betaln(k + a, n - k + b) - special.betaln(a, b)).sum()

    lo, hi = np.log(0.5), np.log(max_strength)
    res = optimize.minimize(
        nll,
        x0=np.array([special.logit(pooled), np.log(strength)]),
        method="L-BFGS-B",
        bounds=[(-12, 12), (lo, hi)],
    )
    if not res.success or not np.all(np.isfinite(res.x)):
        return (
            fallback[0],
            fallback[1],
            f"pooled rate (fit did not converge); {strength:g} pseudo-lines",
        )
    mu, s = float(special.expit(res.x[0])), float(np.exp(res.x[1]))
    return (
        mu * s,
        (1 - mu) * s,
        (
            f"fitted across {len(n)} groups (beta-binomial marginal likelihood): "
            f"mean {mu:.1%}, {s:.3g} pseudo-lines"
        ),
    )


def _posterior(k, n, a, b, levels=(0.90, 0.95)) -> dict[str, np.ndarray]:
    from scipy import stats

    a1 = a + k
    b1 = b + n - k
    out = {"rate": a1 / (a1 + b1)}
    for lev in levels:
        tail = (1 - lev) / 2
        pct = f"{round(lev * 100):d}"
        out[f"rate_lo_{pct}"] = stats.beta.ppf(tail, a1, b1)
        out[f"rate_hi_{pct}"] = stats.beta.ppf(1 - tail, a1, b1)
    return out


def denial_rates(
    outcomes: pd.DataFrame,
    by: tuple[str, ...] | list[str] = ("payer_id", "cpt", "modifiers", "category"),
    *,
    prior: tuple[float, float] | float | None = None,
    prior_by: tuple[str, ...] | list[str] | None = None,
    min_groups: int = 5,
    strength: float = 10.0,
) -> pd.DataFrame:
    """Denial rates by group, shrunk toward a prior fitted across groups (empirical Bayes).

    Each group's rate is the posterior mean of Beta(a + denied, b + lines - denied), so a
    payer with three lines is shown near the practice-wide rate, and a group with thousands
    of lines at its own rate. ``a`` and ``b`` are fitted by beta-binomial marginal likelihood
    across the groups (:func:`fit_beta_prior`); with fewer than ``min_groups`` groups, or no
    spread, the prior is the pooled rate carried by ``strength`` pseudo-lines.

    Parameters
    ----------
    outcomes
        :func:`line_outcomes` (``outcome``, ``category``, ``charge``, ``denied_amount``), or any
        lines with a boolean ``denied`` column.
    by
        Grouping columns. With ``category`` among them, the rate of a group and category is
        the share of the group's lines denied for that category (every category seen in the
        data, so categories a group never had count as zero).
    prior
        ``(a, b)`` to impose a prior, a rate (with ``strength`` pseudo-lines), or ``None`` to
        fit it.
    prior_by
        Fit a separate prior within each level of these columns (default: per ``category``
        when grouping by category, else one prior).

    Returns
    -------
    DataFrame
        ``by`` columns, ``lines``, ``denied``, ``raw_rate``, ``rate`` (posterior mean),
        ``rate_lo_90``/``rate_hi_90`` and ``rate_lo_95``/``rate_hi_95`` (equal-tailed
        credible intervals), ``charges``, ``denied_dollars``, ``dollars_at_risk`` (rate x
        charges: what the group's volume stands to lose), ``prior_a``, ``prior_b`` and
        ``prior_basis``.

    Examples
    --------
    >>> df = pd.DataFrame({"payer_id": ["a"] * 3 + ["b"] * 100, "denied": [True] * 3 + [False] * 100})
    >>> r = denial_rates(df, by=("payer_id",))
    >>> r["raw_rate"].tolist(), bool(r.loc[0, "rate"] < 1)
    ([1.0, 0.0], True)
    """
    by = list(by)
    missing = [c for c in by if c not in outcomes.columns and c != "month"]
    if missing:
        raise InputError(
            f"denial_rates: the outcomes have no column(s) {missing}; group by some of "
            f"{list(outcomes.columns)}."
        )
    denied = _denied_flag(outcomes)
    frame = outcomes.copy()
    frame["_denied"] = denied
    frame["_charge"] = (
        pd.to_numeric(frame["charge"], errors="coerce").fillna(0.0) if "charge" in frame else 0.0
    )
    frame["_ddollars"] = (
        pd.to_numeric(frame["denied_amount"], errors="coerce").fillna(0.0)
        if "denied_amount" in frame
        else np.where(denied, frame["_charge"], 0.0)
    )
    for c in by:
        if c != "category":
            frame[c] = frame[c].astype(object).where(frame[c].notna(), "")
    cells = [c for c in by if c != "category"]
    if "category" in by:
        if "category" not in frame.columns:
            frame["category"] = np.where(denied, "denied", "")
        cats = sorted(set(frame.loc[denied, "category"].astype(str)))
        base = (
            frame.groupby(cells, sort=True, dropna=False)
            .agg(lines=("_denied", "size"), charges=("_charge", "sum"))
            .reset_index()
            if cells
            else pd.DataFrame({"lines": [len(frame)], "charges": [frame["_charge"].sum()]})
        )
        grid = base.merge(pd.DataFrame({"category": cats}), how="cross")
        d = (
            frame[denied]
            .groupby([*cells, "category"], sort=True, dropna=False)
            .agg(denied=("_denied", "size"), denied_dollars=("_ddollars", "sum"))
            .reset_index()
        )
        table = grid.merge(d, on=[*cells, "category"], how="left")
        table = table[[*cells, "category", "lines", "denied", "charges", "denied_dollars"]]
        table = table[[c for c in by] + ["lines", "denied", "charges", "denied_dollars"]]
    else:
        if cells:
            table = (
                frame.groupby(cells, sort=True, dropna=False)
                .agg(
                    lines=("_denied", "size"),
                    denied=("_denied", "sum"),
                    charges=("_charge", "sum"),
                    denied_dollars=("_ddollars", "sum"),
                )
                .reset_index()
            )
        else:
            table = pd.DataFrame(
                {
                    "lines": [len(frame)],
                    "denied": [int(denied.sum())],
                    "charges": [frame["_charge"].sum()],
                    "denied_dollars": [frame["_ddollars"].sum()],
                }
            )
    table["denied"] = table["denied"].fillna(0).astype(np.int64)
    table["denied_dollars"] = table["denied_dollars"].fillna(0.0)
    table["lines"] = table["lines"].astype(np.int64)
    if prior_by is None:
        prior_by = ["category"] if "category" in by else []
    prior_by = [c for c in prior_by if c in table.columns]
    k = table["denied"].to_numpy(dtype=float)
    n = table["lines"].to_numpy(dtype=float)
    a = np.zeros(len(table))
    b = np.zeros(len(table))
    basis = np.empty(len(table), dtype=object)
    groups = (
        table.groupby(prior_by, sort=False, dropna=False).indices
        if prior_by
        else {None: np.arange(len(table))}
    )
    for idx in groups.values():
        if prior is None:
            pa_, pb_, why = fit_beta_prior(k[idx], n[idx], min_groups=min_groups, strength=strength)
        elif np.ndim(prior) == 0:
            r = float(prior)
            pa_, pb_, why = (
                strength * r,
                strength * (1 - r),
                f"given rate {r:.1%} with {strength:g} pseudo-lines",
            )
        else:
            pa_, pb_ = (float(x) for x in prior)
            why = f"given Beta({pa_:g}, {pb_:g})"
        a[idx], b[idx], basis[idx] = pa_, pb_, why
    post = _posterior(k, n, a, b)
    table["raw_rate"] = np.where(n > 0, k / np.where(n > 0, n, 1), np.nan)
    for col, values in post.items():
        table[col] = values
    table["dollars_at_risk"] = (table["rate"] * table["charges"]).round(2)
    table["charges"] = table["charges"].round(2)
    table["denied_dollars"] = table["denied_dollars"].round(2)
    table["prior_a"], table["prior_b"], table["prior_basis"] = a, b, basis
    cols = [
        *by,
        "lines",
        "denied",
        "raw_rate",
        "rate",
        "rate_lo_90",
        "rate_hi_90",
        "rate_lo_95",
        "rate_hi_95",
        "charges",
        "denied_dollars",
        "dollars_at_risk",
        "prior_a",
        "prior_b",
        "prior_basis",
    ]
    return table[cols].reset_index(drop=True)


def monthly_trend(
    outcomes: pd.DataFrame,
    by: tuple[str, ...] | list[str] = ("payer_id",),
    *,
    date: str = "service_date",
    prior: tuple[float, float] | float | None = None,
    min_groups: int = 5,
) -> pd.DataFrame:
    """Denial rate per calendar month (of ``date``), shrunk within each ``by`` group.

    The prior of each group is fitted across its months, so a thin month is pulled toward the
    group's usual rate, not the practice's.

    Returns
    -------
    DataFrame
        ``by`` columns, ``month`` (``YYYY-MM``) and the columns of :func:`denial_rates`.

    Examples
    --------
    >>> df = pd.DataFrame({"payer_id": "a", "service_date": pd.to_datetime(["2025-01-05", "2025-02-03"]),
    ...                    "denied": [True, False]})
    >>> monthly_trend(df)["month"].tolist()
    ['2025-01', '2025-02']
    """
    frame = outcomes.copy()
    when = pd.to_datetime(frame[date], errors="coerce")
    frame["month"] = when.dt.strftime("%Y-%m").fillna("unknown")
    return denial_rates(
        frame, by=(*by, "month"), prior=prior, prior_by=list(by), min_groups=min_groups
    )


# ---------------------------------------------------------------------------------------
# Training lines: the practice's service lines labelled with their remittance outcome
# ---------------------------------------------------------------------------------------


def label_lines(
    service_lines: pd.DataFrame, outcomes: pd.DataFrame, *, all_lines: bool = False
) -> pd.DataFrame:
    """The practice's service lines with the outcome of their remittance line.

    Lines are linked to :func:`line_outcomes` rows by claim id + line control number, then
    claim id + code + date (:func:`analytics.remittance.link_remittance`).

    Parameters
    ----------
    all_lines
        Keep the lines without a remittance (open claims, self-pay) with an unknown
        (``<NA>``) ``denied``. :meth:`DenialRiskModel.fit` learns from the known ones and
        uses all of them for the visit-level features (visit number in the year, other codes
        of the visit), so pass every line of the practice.

    Returns
    -------
    DataFrame
        The service lines (their own index and columns) plus ``outcome``, ``denied``
        (outcome denied or partially denied), ``category``, ``carc``, ``group_code``,
        ``denied_amount``, ``paid`` and ``payment_date``.
    """

    remit = outcomes[outcomes["level"] == "line"]
    linked = link_remittance(service_lines, remit)
    m = linked.matched
    cols = ("outcome", "category", "carc", "group_code", "denied_amount", "paid", "payment_date")
    if all_lines:
        out = service_lines.copy()
        where = out.index.get_indexer(m["charge_row"].to_numpy())
        for col in cols:
            values = pd.Series(pd.NA, index=out.index, dtype=object)
            values.iloc[where] = m[f"remit_{col}"].to_numpy()
            out[col] = values
        denied = pd.array([pd.NA] * len(out), dtype="boolean")
        denied[where] = m["remit_outcome"].isin(_DENIAL_OUTCOMES).to_numpy()
        out["denied"] = denied
        return out
    out = service_lines.loc[m["charge_row"].to_numpy()].copy()
    for col in cols:
        out[col] = m[f"remit_{col}"].to_numpy()
    out["denied"] = out["outcome"].isin(_DENIAL_OUTCOMES).to_numpy()
    return out


# ---------------------------------------------------------------------------------------
# Denial-risk model
# ---------------------------------------------------------------------------------------

_FEATURE_WORDS = {
    "payer": "payer",
    "code": "code",
    "ptype": "provider type",
    "dx": "diagnosis group",
    "rx": "prescription",
    "bundle": "bundling",
    "units": "units",
    "visit": "visit number",
    "filing": "days to submission",
}
#: Feature pairs the model learns jointly (payer-specific policies, and code-specific ones).
INTERACTIONS = (
    ("payer", "code"),
    ("payer", "ptype"),
    ("payer", "dx"),
    ("payer", "rx"),
    ("payer", "bundle"),
    ("payer", "units"),
    ("payer", "visit"),
    ("payer", "filing"),
    ("code", "ptype"),
    ("code", "dx"),
    ("code", "rx"),
)
_FLAGS = {
    "therapy modifier (GP/GO/GN)": ("GP", "GO", "GN"),
    "modifier 59": ("59",),
    "X modifier (XE/XS/XP/XU)": ("XE", "XS", "XP", "XU"),
    "modifier KX": ("KX",),
    "assistant modifier (CQ/CO)": ("CQ", "CO"),
}
_RULE_DISPOSITIONS = ("denied", "not_billed")


@dataclasses.dataclass(frozen=True)
class RiskReport:
    """How well predicted denial probabilities match outcomes (held-out or given lines).

    ``brier`` is the mean squared error of the probabilities; ``brier_base`` the same for a
    constant prediction at the observed rate (lower is better; ``brier_skill`` = 1 -
    brier / brier_base). ``auc`` ranks denied above paid lines (0.5 = chance). The
    ``calibration`` table compares mean predicted and observed rates by predicted band, with
    a 95% Jeffreys interval for the observed rate.
    """

    lines: int
    denials: int
    base_rate: float
    brier: float
    brier_base: float
    brier_skill: float
    auc: float
    log_loss: float
    calibration: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        d = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "calibration"
        }
        d["calibration"] = self.calibration.to_dict("records")
        return d


def _report(p: np.ndarray, y: np.ndarray) -> RiskReport:
    from scipy import stats
    from sklearn.metrics import roc_auc_score

    p = np.clip(np.asarray(p, dtype=float), 1e-9, 1 - 1e-9)
    y = np.asarray(y, dtype=bool)
    n = len(y)
    k = int(y.sum())
    base = k / n if n else float("nan")
    brier = float(np.mean((p - y) ** 2)) if n else float("nan")
    brier_base = float(np.mean((base - y) ** 2)) if n else float("nan")
    auc = float(roc_auc_score(y, p)) if 0 < k < n else float("nan")
    ll = float(-np.mean(np.where(y, np.log(p), np.log(1 - p)))) if n else float("nan")
    edges = np.array([0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
    band = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for i in range(len(edges) - 1):
        sel = band == i
        m = int(sel.sum())
        if not m:
            continue
        d = int(y[sel].sum())
        rows.append(
            {
                "predicted_band": f"{edges[i]:.0%}-{edges[i + 1]:.0%}",
                "lines": m,
                "mean_predicted": float(p[sel].mean()),
                "observed_rate": d / m,
                "observed_lo_95": float(stats.beta.ppf(0.025, d + 0.5, m - d + 0.5)),
                "observed_hi_95": float(stats.beta.ppf(0.975, d + 0.5, m - d + 0.5)),
            }
        )
    skill = (
        1 - brier / brier_base
        if brier_base and np.isfinite(brier_base) and brier_base > 0
        else float("nan")
    )
    return RiskReport(
        lines=n,
        denials=k,
        base_rate=base,
        brier=brier,
        brier_base=brier_base,
        brier_skill=skill,
        auc=auc,
        log_loss=ll,
        calibration=pd.DataFrame(rows),
    )


@dataclasses.dataclass(frozen=True)
class _Features:
    """Features of lines as codes into small label tables (never a string per line)."""

    cats: dict[str, tuple[np.ndarray, np.ndarray]]
    flags: dict[str, np.ndarray]
    with_codes: dict[str, np.ndarray]

    def take(self, mask: np.ndarray) -> _Features:
        return _Features(
            cats={f: (c[mask], v) for f, (c, v) in self.cats.items()},
            flags={k: v[mask] for k, v in self.flags.items()},
            with_codes={k: v[mask] for k, v in self.with_codes.items()},
        )

    def payer_ids(self) -> np.ndarray:
        codes, labels = self.cats["payer"]
        return labels.astype(object)[codes] if len(labels) else np.array([], dtype=object)


class DenialRiskModel:
    """Probability that a payer denies a service line, learned from the practice's remittances.

    A logistic regression with an L2 penalty (each coefficient has prior variance ``C`` on
    the log-odds scale) on one-hot features a biller can see before submission:

    * payer, code, provider type, diagnosis group (from the primary ICD-10-CM code),
      prescription on file, billed units (band);
    * bundling state: the line is the column-2 code of an NCCI pair, or of a payer's own
      pair, whose column-1 code is in the same visit, with no modifier, 59 or an X modifier;
    * the other codes billed in the visit, and modifier flags (GP, 59, X, KX, CQ/CO);
    * visit number in the calendar year with the payer (visits before the data included),
      against the payer's visit limit when ``payers`` gives one;
    * days from service to submission, against the payer's timely-filing limit when known
      (unsubmitted lines are scored as if submitted after ``assume_lag_days``);

    and their pairs in :data:`INTERACTIONS` (payer x every feature; code x provider type,
    diagnosis and prescription). Visit-level features are computed from the lines given, so
    pass whole visits (all of a patient's lines) to :meth:`fit` and :meth:`predict_proba`.

    Lines the rules engine denies for certain (``disposition`` denied or not billed, when the
    lines carry it, else computed with :func:`analytics.pipeline.evaluate` when ``payers`` is
    given) are left out of the fit: the model learns the denials the rules cannot foresee,
    and :func:`~analytics.pipeline.evaluate` sets those lines to 1 anyway.

    Thin history never breaks it: with fewer than ``min_denials`` denials or ``min_lines``
    lines (or none at all), it warns (:class:`~analytics.exceptions.SmallSampleWarning`)
    and predicts each payer's rate shrunk toward its prior (``denial_prior`` of the payer
    policy, else ``prior_rate``) with ``prior_strength`` pseudo-lines. Lines of a payer or a
    code the history never saw get the same prior-only prediction; self-pay lines get 0.

    Parameters
    ----------
    payers
        Payer policies (``load_payers``): visit and filing limits, payer-specific NCCI pairs,
        priors and self-pay payers.
    C
        Prior variance of each coefficient (inverse L2 strength, as in scikit-learn).
    holdout
        Share of patients held out to report Brier score, AUC and calibration
        (``validation_``); the model is then refitted on every line. 0 to skip.

    Examples
    --------
    >>> from analytics.datasets import generate_practice
    >>> p = generate_practice(3000, seed=3)
    >>> lines = p.adjudicated[p.adjudicated["adjudicated"]]  # lines with a remittance
    >>> model = DenialRiskModel(payers=p.payers).fit(lines, lines["denied"])
    >>> model.mode_, float(model.predict_proba(lines).between(0, 1).mean())
    ('model', 1.0)
    >>> model.explain(lines.head(3), top=2).columns.tolist()
    ['p_deny', 'basis', 'factor_1', 'log_odds_1', 'factor_2', 'log_odds_2']
    """

    def __init__(
        self,
        *,
        payers: Mapping | None = None,
        C: float = 1.0,
        interactions: tuple[tuple[str, str], ...] = INTERACTIONS,
        holdout: float = 0.2,
        random_state: int = 0,
        min_denials: int = 20,
        min_lines: int = 200,
        prior_rate: float = 0.05,
        prior_strength: float = 20.0,
        assume_lag_days: int = 7,
        exclude_rule_denials: bool = True,
        max_iter: int = 1000,
        tol: float = 1e-6,
        reference=None,
    ):
        self.payers = payers
        self.C = C
        self.interactions = interactions
        self.holdout = holdout
        self.random_state = random_state
        self.min_denials = min_denials
        self.min_lines = min_lines
        self.prior_rate = prior_rate
        self.prior_strength = prior_strength
        self.assume_lag_days = assume_lag_days
        self.exclude_rule_denials = exclude_rule_denials
        self.max_iter = max_iter
        self.tol = tol
        self.reference = reference

    # -- features -----------------------------------------------------------------------
    def _features(self, lines: pd.DataFrame) -> _Features:
        """Each line's features as codes into small tables of labels, computed from the line
        columns alone (visit-level features from the lines of the same visit)."""

        n = len(lines)

        def col(name, default=""):
            if name in lines.columns:
                return lines[name]
            return pd.Series(default, index=lines.index)

        def text(name, default="unknown", lower=False):
            codes, uniq = _factorize(col(name, ""))
            labels = np.array(
                [(str(v).lower() if lower else str(v)) or default for v in uniq], dtype=object
            )
            return codes, labels

        payer_c, payer_v = text("payer_id")
        cpt_c, cpt_v = text("cpt")
        pt = text("provider_type", lower=True)
        dx_c, dx_v = _factorize(col("dx_codes", ""))
        dx_groups = diagnosis_group(pd.Series(dx_v, dtype=object))
        dx_labels, dx_map = np.unique(dx_groups.astype(str), return_inverse=True)
        rx_c, rx_v = _factorize(col("prescription_on_file", False))
        rx_yes = np.array([str(v).lower() in ("true", "1", "yes", "y") for v in rx_v], dtype=bool)
        mods_c, mods_v = _factorize(col("modifiers", ""))
        mod_sets = [
            set(str(v).upper().replace(" ", ",").replace(":", ",").split(",")) - {""}
            for v in mods_v
        ]
        flags = {
            name: np.array([bool(s & set(want)) for s in mod_sets], dtype=bool)[mods_c]
            for name, want in _FLAGS.items()
        }

        keys = [k for k in VISIT_KEYS if k in lines.columns]
        date = pd.to_datetime(col("service_date", pd.NaT), errors="coerce")
        if keys and n:
            visit = (
                lines.groupby(keys, sort=False, observed=True, dropna=False)
                .ngroup()
                .to_numpy(np.int64)
            )
        else:
            visit = np.arange(n, dtype=np.int64)
        n_visits = int(visit.max()) + 1 if n else 0
        n_codes = len(cpt_v)
        counts = np.bincount(visit * n_codes + cpt_c, minlength=n_visits * n_codes).reshape(
            n_visits, n_codes
        )
        with_codes = {}
        for j, c in enumerate(cpt_v):
            others = counts[visit, j] - (cpt_c == j)
            with_codes[str(c)] = others > 0

        if "units" in lines.columns:
            units = pd.to_numeric(lines["units"], errors="coerce").fillna(1).to_numpy()
        else:
            units = self._units(lines)
        # visit number in the calendar year with the payer
        year = date.dt.year.fillna(0).to_numpy(np.int64)
        pat_c, _ = _factorize(col("patient_id", ""))
        before = pd.to_numeric(col("visits_before", 0), errors="coerce").fillna(0).to_numpy()
        first = np.unique(visit, return_index=True)[1] if n else np.zeros(0, dtype=np.int64)
        d_first = (
            date.to_numpy()[first].astype("datetime64[D]").astype(np.int64)
            if n
            else np.zeros(0, np.int64)
        )
        order = np.lexsort((visit[first], d_first, year[first], payer_c[first], pat_c[first]))
        grp = np.stack([pat_c[first], payer_c[first], year[first]])[:, order]
        new = (
            np.r_[True, (np.diff(grp, axis=1) != 0).any(axis=0)]
            if len(order)
            else np.zeros(0, bool)
        )
        starts = np.flatnonzero(new)
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        vnum = np.zeros(n_visits)
        vnum[visit[first][order]] = rank + 1 + before[first][order]
        limit = _policy_array(payer_v, self.payers, "visit_limit")[payer_c]
        visit_c, visit_v = visit_band(vnum[visit], limit, codes=True)
        sub = pd.to_datetime(col("submission_date", pd.NaT), errors="coerce")
        lag = (sub - date).dt.days.to_numpy(dtype=float, na_value=np.nan)
        lag = np.where(np.isfinite(lag), lag, self.assume_lag_days)
        filing_c, filing_v = filing_band(
            lag, _policy_array(payer_v, self.payers, "timely_filing_days")[payer_c], codes=True
        )
        units_c, units_v = units_band(units, codes=True)
        bundle_c = self._bundle(cpt_c, cpt_v, payer_c, payer_v, visit, counts, flags, date)
        cats = {
            "payer": (payer_c, payer_v),
            "code": (cpt_c, cpt_v),
            "ptype": pt,
            "dx": (dx_map.reshape(-1)[dx_c], dx_labels.astype(object)),
            "rx": (
                rx_yes[rx_c].astype(np.int64),
                np.array([NO_PRESCRIPTION, PRESCRIPTION], dtype=object),
            ),
            "bundle": (bundle_c, np.array(BUNDLE_STATES, dtype=object)),
            "units": (units_c, np.array(units_v, dtype=object)),
            "visit": (visit_c, np.array(visit_v, dtype=object)),
            "filing": (filing_c, np.array(filing_v, dtype=object)),
        }
        return _Features(cats=cats, flags=flags, with_codes=with_codes)

    def _units(self, lines: pd.DataFrame) -> np.ndarray:

        if self.payers is not None and "payer_id" in lines.columns and "minutes" in lines.columns:
            try:
                methods = payer_table(self.payers).set_index("payer_id")["unit_method"]
                method = lines["payer_id"].astype(object).map(methods).fillna("ama")
                return compute_units(lines, method, reference=self.reference)["units"].to_numpy()
            except Exception:  # unknown codes or visit columns: fall back to per-line counting
                pass
        m = (
            pd.to_numeric(lines["minutes"], errors="coerce").to_numpy(dtype=float)
            if "minutes" in lines
            else None
        )
        if m is None:
            return np.ones(len(lines))
        return np.where(np.isfinite(m), np.where(m >= 8, (m + 7) // 15, 0), 1)

    def _bundle(self, cpt_c, cpt_v, payer_c, payer_v, visit, counts, flags, date) -> np.ndarray:

        ref = self.reference or load_reference()
        ptp = ref.ncci_ptp[ref.ncci_ptp["modifier_indicator"] != 9]
        code_ix = {str(c): j for j, c in enumerate(cpt_v)}
        paired = np.zeros(len(cpt_c), dtype=bool)
        d = date.to_numpy()
        for r in ptp.itertuples(index=False):
            c1, c2 = code_ix.get(str(r.column1)), code_ix.get(str(r.column2))
            if c1 is None or c2 is None:
                continue
            live = (cpt_c == c2) & (counts[visit, c1] > 0)
            if pd.notna(r.effective_date):
                live &= ~(d < np.datetime64(r.effective_date))
            if pd.notna(r.deletion_date):
                live &= ~(d >= np.datetime64(r.deletion_date))
            paired |= live
        for pid, pol in (self.payers or {}).items():
            ncci = getattr(pol, "ncci", None)
            for c1s, c2s, _mods in getattr(ncci, "pairs", ()):
                c1, c2 = code_ix.get(c1s), code_ix.get(c2s)
                pj = np.flatnonzero(payer_v == pid)
                if c1 is None or c2 is None or not len(pj):
                    continue
                paired |= (payer_c == pj[0]) & (cpt_c == c2) & (counts[visit, c1] > 0)
        return np.where(
            ~paired,
            0,
            np.where(flags["X modifier (XE/XS/XP/XU)"], 3, np.where(flags["modifier 59"], 2, 1)),
        ).astype(np.int64)

    def _learn_levels(self, feats: _Features) -> None:
        self.levels_ = {}
        for f, (codes, labels) in feats.cats.items():
            present = np.unique(codes) if len(codes) else np.zeros(0, dtype=np.int64)
            self.levels_[f] = pd.Index(sorted(set(labels[present].astype(str))))
        self.with_codes_ = sorted(feats.with_codes)

    def _encode(self, feats: _Features) -> np.ndarray:
        """Training-level code of each categorical feature (-1 when unseen), then the flags and
        the other-codes-in-the-visit indicators: one small integer row per line."""
        parts = []
        for f in _FEATURE_WORDS:
            codes, labels = feats.cats[f]
            lut = self.levels_[f].get_indexer(pd.Index(labels.astype(str)))
            parts.append(lut[codes] if len(labels) else np.full(len(codes), -1))
        n = len(parts[0])
        parts += [feats.flags[name].astype(np.int64) for name in _FLAGS]
        parts += [
            feats.with_codes.get(c, np.zeros(n, dtype=bool)).astype(np.int64)
            for c in self.with_codes_
        ]
        return (
            np.column_stack(parts).astype(np.int64)
            if n
            else np.zeros((0, len(parts)), dtype=np.int64)
        )

    def _patterns(self, enc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct rows of the encoded features and each line's row among them."""
        n, m = enc.shape
        if n == 0:
            return enc, np.zeros(0, dtype=np.int64)
        radix = np.array(
            [len(self.levels_[f]) + 1 for f in _FEATURE_WORDS] + [2] * (m - len(_FEATURE_WORDS)),
            dtype=np.float64,
        )
        if np.prod(radix) < 2.0**62:
            mult = np.cumprod(np.r_[1.0, radix[:-1]]).astype(np.int64)
            key = (
                enc
                + np.r_[
                    np.ones(len(_FEATURE_WORDS), dtype=np.int64),
                    np.zeros(m - len(_FEATURE_WORDS), dtype=np.int64),
                ]
            ) @ mult
            inv, _ = pd.factorize(key)
        else:
            frame = pd.DataFrame(enc)
            inv = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
        inv = inv.astype(np.int64)
        first = np.unique(inv, return_index=True)[1]
        return enc[first], inv

    def _columns(self, patterns: np.ndarray, fit: bool) -> tuple[np.ndarray, int]:
        """Column index of each active one-hot term per pattern (-1 where a term does not
        apply); learns the interaction columns when ``fit``."""
        k = len(patterns)
        names: list[tuple[str, str, str, str]] = []
        blocks, offset = [], 0
        codes = {f: patterns[:, i] for i, f in enumerate(_FEATURE_WORDS)}
        for f in _FEATURE_WORDS:
            c = codes[f]
            blocks.append(np.where(c >= 0, offset + c, -1))
            names += [(f, str(v), "", "") for v in self.levels_[f]]
            offset += len(self.levels_[f])
        if fit:
            self.pairs_ = {}
            for fa, fb in self.interactions:
                ca, cb = codes[fa], codes[fb]
                ok = (ca >= 0) & (cb >= 0)
                combo = np.unique(ca[ok] * len(self.levels_[fb]) + cb[ok])
                lut = np.full(len(self.levels_[fa]) * len(self.levels_[fb]), -1, dtype=np.int64)
                lut[combo] = np.arange(len(combo))
                self.pairs_[(fa, fb)] = (lut, combo)
        for fa, fb in self.interactions:
            lut, combo = self.pairs_[(fa, fb)]
            ca, cb = codes[fa], codes[fb]
            ok = (ca >= 0) & (cb >= 0)
            ix = (
                np.where(ok, lut[np.where(ok, ca * len(self.levels_[fb]) + cb, 0)], -1)
                if len(lut)
                else np.full(k, -1)
            )
            blocks.append(np.where(ix >= 0, offset + ix, -1))
            nb = len(self.levels_[fb])
            names += [
                (fa, str(self.levels_[fa][c // nb]), fb, str(self.levels_[fb][c % nb]))
                for c in combo
            ]
            offset += len(combo)
        extra = patterns[:, len(_FEATURE_WORDS) :]
        labels = [("modifier", name, "", "") for name in _FLAGS] + [
            ("other code in the visit", c, "", "") for c in self.with_codes_
        ]
        for j, label in enumerate(labels):
            blocks.append(np.where(extra[:, j] > 0, offset, -1))
            names.append(label)
            offset += 1
        if fit:
            self.columns_ = names
        cols = np.column_stack(blocks) if blocks else np.zeros((k, 0), dtype=np.int64)
        return cols, offset

    @staticmethod
    def _matrix(cols: np.ndarray, width: int):
        from scipy import sparse

        r, c = np.nonzero(cols >= 0)
        return sparse.csr_matrix((np.ones(len(r)), (r, cols[r, c])), shape=(len(cols), width))

    # -- fitting -------------------------------------------------------------------------
    def _target(self, lines: pd.DataFrame, y) -> tuple[np.ndarray, np.ndarray]:
        """(denied, known): missing outcomes (NA) are lines without a remittance yet."""

        if y is None:
            if "denied" in lines.columns:
                y = lines["denied"]
            elif "outcome" in lines.columns:
                out = lines["outcome"]
                return out.astype(str).isin(_DENIAL_OUTCOMES).to_numpy(), out.notna().to_numpy()
            else:
                raise InputError(
                    "DenialRiskModel.fit needs the outcome of each line: pass y=..., or lines with a "
                    "boolean 'denied' column or an 'outcome' column (see label_lines)."
                )
        elif isinstance(y, str):
            y = lines[y]
        series = pd.Series(
            y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y, dtype=object), dtype=object
        )
        if len(series) != len(lines):
            raise InputError(
                f"y has {len(series)} values for {len(lines)} lines; give one outcome per line."
            )
        known = series.notna().to_numpy()
        return series.where(known, False).astype(bool).to_numpy(), known

    def _rule_denied(self, lines: pd.DataFrame) -> np.ndarray:
        if not self.exclude_rule_denials:
            return np.zeros(len(lines), dtype=bool)
        if "disposition" in lines.columns:
            return lines["disposition"].astype(str).isin(_RULE_DISPOSITIONS).to_numpy()
        if self.payers is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = evaluate(lines, self.payers, self.reference)
            return out["disposition"].astype(str).isin(_RULE_DISPOSITIONS).to_numpy()
        return np.zeros(len(lines), dtype=bool)

    def _self_pay(self, payer_ids: np.ndarray) -> np.ndarray:
        if not self.payers:
            return np.zeros(len(payer_ids), dtype=bool)
        cash = [p for p, pol in self.payers.items() if getattr(pol, "kind", "") == "cash"]
        return np.isin(payer_ids.astype(str), cash)

    def fit(self, lines: pd.DataFrame, y=None) -> DenialRiskModel:
        """Learn denial risk from lines with known outcomes.

        Parameters
        ----------
        lines
            Service lines (columns as in the practice's export; ``units`` and
            ``disposition`` when evaluated) of whole visits.
        y
            Denied or not, per line: an array, a column name, or ``None`` to use the
            ``denied`` (or ``outcome``) column. Missing values mark lines with no outcome yet:
            they count for the visit-level features of the others but are not learned from.

        Returns
        -------
        DenialRiskModel
            ``self``, with ``coef_``, ``intercept_``, ``summary``, ``validation_``
            (held-out :class:`RiskReport`, when ``holdout`` > 0), ``mode_`` (``"model"`` or
            ``"prior"``) and the training counts.
        """
        y, known = self._target(lines, y)
        rule = self._rule_denied(lines)
        feats = self._features(lines)
        payer = feats.payer_ids()
        keep = known & ~rule & ~self._self_pay(payer)
        self.n_rule_denied_ = int((rule & known).sum())
        self.n_lines_ = int(keep.sum())
        self.n_denials_ = int(y[keep].sum())
        self.validation_ = None
        self._fit_priors(payer[keep], y[keep])
        if not self._enough(payer[keep], y[keep]):
            self.mode_ = "prior"
            self.coef_ = np.zeros(0)
            self.intercept_ = 0.0
            self.columns_ = []
            return self
        self.mode_ = "model"
        train_all = feats.take(keep)
        yk = y[keep]
        if self.holdout and 0 < self.holdout < 1:
            pid = (
                lines["patient_id"]
                if "patient_id" in lines.columns
                else pd.Series(np.arange(len(lines)))
            )
            codes, uniq = _factorize(pid)
            draw = np.random.default_rng(self.random_state).random(len(uniq))
            test = (draw[codes] < self.holdout)[keep]
            if 0 < test.sum() < len(test) and 0 < yk[~test].sum():
                self._fit_logistic(train_all.take(~test), yk[~test])
                self.validation_ = _report(self._predict_features(train_all.take(test)), yk[test])
        self._fit_logistic(train_all, yk)
        return self

    def _fit_priors(self, payer: np.ndarray, y: np.ndarray) -> None:
        frame = pd.DataFrame({"payer": pd.Series(payer, dtype=object), "y": y})
        g = frame.groupby("payer", sort=True)["y"].agg(["size", "sum"])
        self.payer_counts_ = g.rename(columns={"size": "lines", "sum": "denied"})
        self.base_rate_ = float(y.mean()) if len(y) else float(self.prior_rate)

    def _payer_prior(self, payer_ids: np.ndarray) -> np.ndarray:
        """Each payer's rate shrunk toward its prior (policy denial_prior, else prior_rate)."""
        codes, uniq = _factorize(pd.Series(payer_ids, dtype=object))
        prior = _policy_array(uniq, self.payers, "denial_prior")
        prior = np.where(np.isfinite(prior), prior, self.prior_rate)
        counts = self.payer_counts_.reindex(uniq)
        n = counts["lines"].fillna(0).to_numpy(dtype=float)
        k = counts["denied"].fillna(0).to_numpy(dtype=float)
        m = self.prior_strength
        return ((m * prior + k) / (m + n))[codes]

    def _enough(self, payer: np.ndarray, y: np.ndarray) -> bool:

        n, k = len(y), int(y.sum())
        if n == 0 or k == 0 or k == n or k < self.min_denials or n < self.min_lines:
            what = (
                "no lines with outcomes"
                if n == 0
                else f"no denials in {n:,} lines"
                if k == 0
                else f"every one of {n:,} lines denied"
                if k == n
                else f"only {k:,} denials in {n:,} lines (the model needs {self.min_denials} denials and "
                f"{self.min_lines} lines)"
            )
            warnings.warn(
                f"DenialRiskModel: {what} after leaving out lines the payer rules deny; the model cannot learn "
                f"what drives denials. Predictions are each payer's observed rate shrunk toward its prior "
                f"(denial_prior of the payer policy, else {self.prior_rate:.0%}) with {self.prior_strength:g} "
                "pseudo-lines. Fit again when more remittances have come in.",
                SmallSampleWarning,
                stacklevel=3,
            )
            return False
        if len(set(payer)) == 1:
            warnings.warn(
                f"DenialRiskModel: the history has one payer ({payer[0]}), so differences between payers "
                "cannot be learned; lines of other payers get prior-only predictions.",
                SmallSampleWarning,
                stacklevel=3,
            )
        return True

    def _fit_logistic(self, feats: _Features, y: np.ndarray) -> None:
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits

        self._learn_levels(feats)
        patterns, inv = self._patterns(self._encode(feats))
        cols, width = self._columns(patterns, fit=True)
        n_pat = np.bincount(inv, minlength=len(patterns)).astype(float)
        k_pat = np.bincount(inv, weights=y.astype(float), minlength=len(patterns))
        X = self._matrix(cols, width)
        # one weighted row per distinct pattern and outcome: the same likelihood as one row per
        # line, in a fraction of the time
        pos, neg = k_pat > 0, (n_pat - k_pat) > 0
        Xs = sparse.vstack([X[pos], X[neg]]).tocsr()
        ys = np.r_[np.ones(pos.sum()), np.zeros(neg.sum())]
        ws = np.r_[k_pat[pos], (n_pat - k_pat)[neg]]
        clf = LogisticRegression(C=self.C, solver="lbfgs", max_iter=self.max_iter, tol=self.tol)
        # L-BFGS makes many tiny BLAS calls; with BLAS threads each call pays thread start-up and
        # the fit runs an order of magnitude slower on a small machine.
        with threadpool_limits(1):
            clf.fit(Xs, ys, sample_weight=ws)
        self.coef_ = clf.coef_.ravel()
        self.intercept_ = float(clf.intercept_[0])
        self.width_ = width
        self.train_lines_ = np.asarray(X.T @ n_pat).ravel()
        self.train_denials_ = np.asarray(X.T @ k_pat).ravel()
        self.group_ = self._alias_groups(X, n_pat)

    def _alias_groups(self, X, n_pat: np.ndarray) -> np.ndarray:
        """Terms that applied to exactly the same training lines share one effect (the penalty
        splits it between them); each column's group is its most specific alias."""
        from scipy import sparse

        co = (X.T @ sparse.diags(n_pat) @ X).tocoo()
        lines = self.train_lines_
        same = (
            (co.row < co.col)
            & np.isclose(co.data, lines[co.row])
            & np.isclose(co.data, lines[co.col])
        )
        parent = np.arange(X.shape[1])

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        # the representative is the column listed later: interactions come after main effects
        for r, c in zip(co.row[same], co.col[same], strict=True):
            ra, rb = find(r), find(c)
            if ra != rb:
                parent[min(ra, rb)] = max(ra, rb)
        return np.array([find(i) for i in range(X.shape[1])], dtype=np.int64)

    # -- prediction ----------------------------------------------------------------------
    def _check_fitted(self) -> None:

        if not hasattr(self, "mode_"):
            raise ModelError(
                "This DenialRiskModel is not fitted yet; call fit(lines, y) with lines whose "
                "outcomes are known (see label_lines)."
            )

    def _scored(self, feats: _Features):
        """(probability per line, unseen payer/code mask, patterns, line -> pattern)."""
        enc = self._encode(feats)
        patterns, inv = self._patterns(enc)
        cols, width = self._columns(patterns, fit=False)
        eta = self._matrix(cols, width) @ self.coef_ + self.intercept_
        p = (1.0 / (1.0 + np.exp(-eta)))[inv]
        unseen = (enc[:, 0] < 0) | (enc[:, 1] < 0) if len(enc) else np.zeros(0, dtype=bool)
        return p, unseen, cols, inv

    def _predict_features(self, feats: _Features) -> np.ndarray:
        codes, labels = feats.cats["payer"]
        labels = labels.astype(object)
        prior = self._payer_prior(labels)[codes] if len(labels) else np.zeros(0)
        if self.mode_ == "prior":
            p = prior
        else:
            p, unseen, _, _ = self._scored(feats)
            p = np.where(unseen, prior, p)
        cash = self._self_pay(labels)[codes] if len(labels) else np.zeros(0, dtype=bool)
        p = np.where(cash, 0.0, p)
        return np.clip(np.nan_to_num(p, nan=self.prior_rate), 0.0, 1.0)

    def predict_proba(self, lines: pd.DataFrame) -> pd.Series:
        """Probability that each line is denied (a Series ``p_deny`` on the input index).

        Lines of self-pay payers get 0; lines whose payer or code the history never saw,
        and every line when the model is in prior mode, get the payer's shrunk prior rate
        (with a :class:`~analytics.exceptions.SmallSampleWarning` naming them).
        """

        self._check_fitted()
        feats = self._features(lines)
        p = self._predict_features(feats)
        if self.mode_ == "model":
            cash = set(self._cash_ids())
            new_payers = sorted(
                set(feats.cats["payer"][1].astype(str)) - set(self.levels_["payer"]) - cash
            )
            new_codes = sorted(set(feats.cats["code"][1].astype(str)) - set(self.levels_["code"]))
            if new_payers or new_codes:
                what = "; ".join(
                    x
                    for x in (
                        f"payer(s) {', '.join(new_payers)}" if new_payers else "",
                        f"code(s) {', '.join(new_codes)}" if new_codes else "",
                    )
                    if x
                )
                warnings.warn(
                    f"DenialRiskModel: the history has no lines of {what}; those lines get prior-only "
                    "predictions (the payer's rate shrunk toward its policy denial_prior).",
                    SmallSampleWarning,
                    stacklevel=2,
                )
        return pd.Series(p, index=lines.index, name="p_deny")

    def _cash_ids(self) -> list[str]:
        return [p for p, pol in (self.payers or {}).items() if getattr(pol, "kind", "") == "cash"]

    # -- reading the model ----------------------------------------------------------------
    def _term_words(self) -> list[str]:
        out = []
        for fa, la, fb, lb in self.columns_:
            if fa == "modifier":
                out.append(la)
            elif fa == "other code in the visit":
                out.append(f"{fa}: {la}")
            elif fb:
                out.append(f"{_FEATURE_WORDS[fa]} {la} x {_FEATURE_WORDS[fb]} {lb}")
            else:
                out.append(f"{_FEATURE_WORDS[fa]}: {la}")
        return out

    @property
    def summary(self) -> pd.DataFrame:
        """Coefficients in words: log-odds, odds ratio, training lines and denials per term.

        ``same_lines_as`` names the term a coefficient is aliased with (both applied to the
        same training lines, so only their sum is identified; :meth:`explain` reports it).
        In prior mode, one row per payer with its shrunk rate as log-odds.
        """
        self._check_fitted()
        if self.mode_ == "prior":
            pc_ = self.payer_counts_.reset_index()
            rate = self._payer_prior(pc_["payer"].to_numpy(dtype=object))
            return pd.DataFrame(
                {
                    "term": "payer prior: " + pc_["payer"].astype(str),
                    "feature": "payer prior",
                    "log_odds": np.log(rate / (1 - rate)),
                    "odds_ratio": rate / (1 - rate),
                    "lines": pc_["lines"].to_numpy(),
                    "denied": pc_["denied"].to_numpy(),
                    "same_lines_as": "",
                }
            )
        words = np.array(self._term_words(), dtype=object)
        alias = np.where(self.group_ != np.arange(len(self.group_)), words[self.group_], "")
        frame = pd.DataFrame(
            {
                "term": ["baseline (intercept)", *words],
                "feature": [
                    "intercept",
                    *[c[0] if not c[2] else f"{c[0]} x {c[2]}" for c in self.columns_],
                ],
                "log_odds": np.r_[self.intercept_, self.coef_],
                "lines": np.r_[self.n_lines_, self.train_lines_].astype(np.int64),
                "denied": np.r_[self.n_denials_, self.train_denials_].astype(np.int64),
                "same_lines_as": np.concatenate(
                    [np.array([""], dtype=object), alias.astype(object)]
                ),
            }
        )
        frame["odds_ratio"] = np.exp(frame["log_odds"])
        head = frame.iloc[:1]
        rest = frame.iloc[1:].sort_values("log_odds", ascending=False, kind="stable")
        return pd.concat([head, rest], ignore_index=True)[
            ["term", "feature", "log_odds", "odds_ratio", "lines", "denied", "same_lines_as"]
        ]

    def explain(self, lines: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        """The ``top`` factors that raise each line's denial risk, in words.

        Pass whole visits: the bundling and other-codes features of a line come from the
        other lines of its visit in ``lines``. Aliased terms (see :attr:`summary`) are summed
        under the most specific name.

        Returns
        -------
        DataFrame
            On the input index: ``p_deny``, ``basis`` (model, prior-only and why, self-pay),
            and ``factor_1`` ... with ``log_odds_1`` ... (the terms with the largest positive
            log-odds among those that apply to the line).
        """
        self._check_fitted()
        feats = self._features(lines)
        payer = feats.payer_ids()
        n = len(lines)
        out = pd.DataFrame({"p_deny": self._predict_features(feats)}, index=lines.index)
        factors = np.full((n, top), "", dtype=object)
        effects = np.full((n, top), np.nan)
        basis = np.full(n, "model", dtype=object)
        if self.mode_ == "model":
            _, unseen, cols, inv = self._scored(feats)
            words = np.array(self._term_words(), dtype=object)
            r, c = np.nonzero(cols >= 0)
            col = cols[r, c]
            terms = pd.DataFrame({"row": r, "group": self.group_[col], "effect": self.coef_[col]})
            terms = terms.groupby(["row", "group"], sort=False)["effect"].sum().reset_index()
            terms = terms[terms["effect"] > 0].sort_values(
                ["row", "effect"], ascending=[True, False], kind="stable"
            )
            terms["rank"] = terms.groupby("row", sort=False).cumcount()
            terms = terms[terms["rank"] < top]
            f = np.full((len(cols), top), "", dtype=object)
            e = np.full((len(cols), top), np.nan)
            f[terms["row"].to_numpy(), terms["rank"].to_numpy()] = words[terms["group"].to_numpy()]
            e[terms["row"].to_numpy(), terms["rank"].to_numpy()] = terms["effect"].to_numpy()
            factors, effects = f[inv], e[inv]
            basis = np.where(unseen, "prior only: payer or code not in the history", basis)
            factors = np.where(unseen[:, None], "", factors)
            effects = np.where(unseen[:, None], np.nan, effects)
        else:
            basis[:] = "prior only: too little history to fit the model"
        basis = np.where(self._self_pay(payer), "self-pay: nothing to deny", basis)
        out["basis"] = basis
        for i in range(top):
            out[f"factor_{i + 1}"] = factors[:, i]
            out[f"log_odds_{i + 1}"] = effects[:, i]
        return out

    def evaluate(self, lines: pd.DataFrame, y=None) -> RiskReport:
        """Brier score, AUC and calibration of the predictions on ``lines`` with known outcomes.

        Lines the payer rules deny (as in :meth:`fit`) and self-pay lines are left out.
        """
        self._check_fitted()
        yy, known = self._target(lines, y)
        feats = self._features(lines)
        keep = known & ~self._rule_denied(lines) & ~self._self_pay(feats.payer_ids())
        return _report(self._predict_features(feats)[keep], yy[keep])


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

_SERVICE_LINE_TEXT = (
    "patient_id",
    "provider_id",
    "provider_type",
    "payer_id",
    "cpt",
    "modifiers",
    "dx_codes",
    "claim_id",
    "line_id",
)


def _read_service_lines(path) -> pd.DataFrame:
    """The practice's charge export with ids and codes kept as text (``97124`` is not a number)."""
    frame = pd.read_csv(
        path,
        dtype={c: str for c in _SERVICE_LINE_TEXT},
        keep_default_na=False,
        na_values={"minutes": [""], "charge": [""], "submission_date": [""], "service_date": [""]},
    )
    for c in ("service_date", "submission_date"):
        if c in frame.columns:
            frame[c] = pd.to_datetime(frame[c], errors="coerce")
    for c in ("prescription_on_file", "prior_auth"):
        if c in frame.columns:
            frame[c] = frame[c].astype(str).str.lower().isin(["true", "1", "yes", "y"])
    return frame


def top_reasons(outcomes: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The denial reasons (group code + CARC) that cost the most, with lines and payers."""
    den = outcomes[outcomes["outcome"].isin(_DENIAL_OUTCOMES)]
    if den.empty:
        return pd.DataFrame(
            columns=["code", "category", "reason", "lines", "denied_dollars", "payers"]
        )
    den = den.assign(code=den["group_code"].astype(str) + "-" + den["carc"].astype(str))
    g = (
        den.groupby(["code", "category", "reason"], sort=False)
        .agg(
            lines=("outcome", "size"),
            denied_dollars=("denied_amount", "sum"),
            payers=("payer_id", lambda s: ", ".join(sorted(set(map(str, s))))),
        )
        .reset_index()
    )
    g["denied_dollars"] = g["denied_dollars"].round(2)
    return (
        g.sort_values(["denied_dollars", "lines", "code"], ascending=[False, False, True])
        .head(n)
        .reset_index(drop=True)
    )


def register_cli(sub) -> None:
    p = sub.add_parser(
        "denials",
        help="denial rates with credible intervals, top reasons and a denial-risk model",
        description="Read DIR/remittances/*.835 (or the 835 files in DIR), classify every line's outcome, and "
        "summarise denial rates by payer and by category with empirical-Bayes credible intervals and "
        "the costliest reasons. With DIR/service_lines.csv, also fit the denial-risk model and report "
        "its held-out accuracy and top risk factors.",
    )
    p.add_argument("--data", type=str, required=True, metavar="DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_denials)


def _run_denials(args) -> int:

    data = Path(args.data)
    remit_dir = data / "remittances" if (data / "remittances").is_dir() else data
    files = (
        sorted(
            p
            for p in remit_dir.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and p.suffix.lower() in (".835", ".edi", ".txt", ".x12")
        )
        if remit_dir.is_dir()
        else []
    )
    if not files:
        raise InputError(
            f"No 835 files in {remit_dir}; put the remittances in DIR/remittances/ (*.835)."
        )
    remit, errors = read_835_many(files)
    outcomes = line_outcomes(remit)
    by_payer = denial_rates(outcomes, by=("payer_id",))
    by_cat = denial_rates(outcomes, by=("category",))
    by_cat = by_cat[by_cat["denied"] > 0].sort_values("denied", ascending=False)
    reasons = top_reasons(outcomes)
    model_part: dict[str, Any] | None = None
    lines_path = data / "service_lines.csv"
    if lines_path.exists():
        payers = load_payers(data / "payers.yaml") if (data / "payers.yaml").exists() else None
        service = _read_service_lines(lines_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            if payers is not None:  # the rules' dispositions, so the model learns the rest
                service = evaluate(service, payers)
            model = DenialRiskModel(payers=payers).fit(
                label_lines(service, outcomes, all_lines=True)
            )
        factors = model.summary
        if model.mode_ == "model":
            factors = factors[
                (factors["feature"] != "intercept") & (factors["same_lines_as"] == "")
            ]
        model_part = {
            "lines": model.n_lines_,
            "denials": model.n_denials_,
            "rule_denied_left_out": model.n_rule_denied_,
            "mode": model.mode_,
            "validation": None if model.validation_ is None else model.validation_.to_dict(),
            "top_factors": factors.head(10)[
                ["term", "log_odds", "odds_ratio", "lines", "denied"]
            ].to_dict("records"),
        }
    if args.json:

        def rec(frame, cols):
            return json.loads(frame[cols].to_json(orient="records"))

        cols = [
            "lines",
            "denied",
            "raw_rate",
            "rate",
            "rate_lo_90",
            "rate_hi_90",
            "rate_lo_95",
            "rate_hi_95",
            "denied_dollars",
            "dollars_at_risk",
        ]
        out = {
            "remittances": {
                "files": len(files),
                "unreadable": errors.to_dict("records"),
                "lines": int(len(outcomes)),
                "outcomes": {k: int(v) for k, v in outcomes["outcome"].value_counts().items()},
            },
            "by_payer": rec(by_payer, ["payer_id", *cols]),
            "by_category": rec(by_cat, ["category", *cols]),
            "top_reasons": rec(reasons, list(reasons.columns)),
            "model": model_part,
        }
        print(json.dumps(out, indent=2, default=str))
        return 0

    def pct(x):
        return f"{x:.1%}"

    print(
        f"{len(files)} remittance file(s), {len(outcomes):,} lines: "
        + ", ".join(f"{v:,} {k}" for k, v in outcomes["outcome"].value_counts().items())
    )
    for title, frame, key in (
        ("Denial rate by payer", by_payer, "payer_id"),
        ("Denial rate by category (share of all lines)", by_cat, "category"),
    ):
        print(f"\n{title} (posterior mean, 90% credible interval):")
        show = pd.DataFrame(
            {
                key: frame[key],
                "lines": frame["lines"],
                "denied": frame["denied"],
                "raw": frame["raw_rate"].map(pct),
                "rate": frame["rate"].map(pct),
                "90% interval": frame["rate_lo_90"].map(pct) + " - " + frame["rate_hi_90"].map(pct),
                "denied $": frame["denied_dollars"].map("{:,.2f}".format),
            }
        )
        print(show.to_string(index=False))
    print("\nTop denial reasons by dollars:")
    print(reasons.to_string(index=False) if len(reasons) else "(none)")
    if model_part is not None:
        print(
            f"\nDenial-risk model ({model_part['mode']}): {model_part['lines']:,} lines, "
            f"{model_part['denials']:,} denials; {model_part['rule_denied_left_out']:,} lines the payer rules "
            "deny left out"
        )
        v = model_part["validation"]
        if v:
            print(
                f"held-out: Brier {v['brier']:.4f} (base {v['brier_base']:.4f}), AUC {v['auc']:.3f}, "
                f"{v['lines']:,} lines"
            )
        print("top risk factors (log-odds):")
        for f in model_part["top_factors"]:
            print(
                f"  {f['log_odds']:+.2f}  {f['term']}  ({f['lines']:,} lines, {f['denied']:,} denied)"
            )
    return 0
