"""Labels of a service line a biller can read before submission: diagnosis group, bundling
state, prescription, and the bands of visit number, days to submission and units.

The denial-risk model (:mod:`analytics.denials.features`) and the synthetic practice
(:mod:`analytics.datasets`) speak of lines in these words, so both use the labels defined here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "BUNDLE_STATES",
    "DIAGNOSIS_GROUPS",
    "NO_PRESCRIPTION",
    "PRESCRIPTION",
    "diagnosis_group",
    "factorize",
    "filing_band",
    "units_band",
    "visit_band",
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


def factorize(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    codes, uniq = factorize(dx_codes)
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
