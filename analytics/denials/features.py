"""Features of a service line for the denial-risk model, from what a biller can see before
submission.

Payer, code, provider type, diagnosis group, prescription on file, billed units, bundling state
(the column-2 code of an NCCI or payer pair whose column-1 code is in the same visit), modifier
flags, the other codes of the visit, visit number in the year against the payer's visit limit
and days to submission against its timely-filing limit. Each feature is held as integer codes
into a small table of labels, never a string per line, so a million lines stay cheap.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from analytics.denials.bands import (
    BUNDLE_STATES,
    NO_PRESCRIPTION,
    PRESCRIPTION,
    diagnosis_group,
    factorize,
    filing_band,
    units_band,
    visit_band,
)
from analytics.payers import payer_table
from analytics.refdata import load_reference
from analytics.units import VISIT_KEYS, compute_units

__all__ = [
    "FEATURE_WORDS",
    "INTERACTIONS",
    "MODIFIER_FLAGS",
    "LineFeatures",
    "build_features",
    "filing_codes",
    "policy_array",
]

#: The categorical features, by key, in the words the model's terms are written in.
FEATURE_WORDS = {
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
#: Modifier flags: a line has the flag when it carries any of the modifiers.
MODIFIER_FLAGS = {
    "therapy modifier (GP/GO/GN)": ("GP", "GO", "GN"),
    "modifier 59": ("59",),
    "X modifier (XE/XS/XP/XU)": ("XE", "XS", "XP", "XU"),
    "modifier KX": ("KX",),
    "assistant modifier (CQ/CO)": ("CQ", "CO"),
}


def policy_array(payer_ids: np.ndarray, payers: Mapping | None, attr: str) -> np.ndarray:
    """A numeric payer-policy setting per line (NaN when unknown or unset)."""
    codes, uniq = factorize(pd.Series(payer_ids))
    values = np.full(len(uniq), np.nan)
    for i, pid in enumerate(uniq):
        pol = payers.get(pid) if payers else None
        v = getattr(pol, attr, None) if pol is not None else None
        values[i] = np.nan if v is None else float(v)
    return values[codes]


@dataclasses.dataclass(frozen=True)
class LineFeatures:
    """Features of lines as codes into small label tables (never a string per line)."""

    cats: dict[str, tuple[np.ndarray, np.ndarray]]
    flags: dict[str, np.ndarray]
    with_codes: dict[str, np.ndarray]

    def take(self, mask: np.ndarray) -> LineFeatures:
        """The features of the lines where ``mask`` is true."""
        return LineFeatures(
            cats={f: (c[mask], v) for f, (c, v) in self.cats.items()},
            flags={k: v[mask] for k, v in self.flags.items()},
            with_codes={k: v[mask] for k, v in self.with_codes.items()},
        )

    def with_feature(self, name: str, codes: np.ndarray, labels: np.ndarray) -> LineFeatures:
        """The same features with feature ``name`` replaced by ``codes`` into ``labels``."""
        return LineFeatures(cats={**self.cats, name: (codes, labels)}, flags=self.flags, with_codes=self.with_codes)

    def payer_ids(self) -> np.ndarray:
        """The payer id of each line."""
        codes, labels = self.cats["payer"]
        return labels.astype(object)[codes] if len(labels) else np.array([], dtype=object)


def _column(lines: pd.DataFrame, name: str, default=""):
    """A column of the lines, or ``default`` on every line when they have none."""
    if name in lines.columns:
        return lines[name]
    return pd.Series(default, index=lines.index)


def _labels(lines: pd.DataFrame, name: str, default="unknown", lower=False):
    """Codes of a text column into its distinct values (``default`` for an empty one)."""
    codes, uniq = factorize(_column(lines, name, ""))
    labels = np.array(
        [(str(v).lower() if lower else str(v)) or default for v in uniq], dtype=object
    )
    return codes, labels


def _modifier_flags(lines: pd.DataFrame) -> dict[str, np.ndarray]:
    """Whether each line carries each flag of :data:`MODIFIER_FLAGS`, read once per distinct
    modifier list."""
    mods_c, mods_v = factorize(_column(lines, "modifiers", ""))
    mod_sets = [
        set(str(v).upper().replace(" ", ",").replace(":", ",").split(",")) - {""} for v in mods_v
    ]
    return {
        name: np.array([bool(s & set(want)) for s in mod_sets], dtype=bool)[mods_c]
        for name, want in MODIFIER_FLAGS.items()
    }


def _visits(lines: pd.DataFrame, cpt_c: np.ndarray, cpt_v: np.ndarray):
    """The visit of each line, the number of visits, the count of each code in each visit, and
    for each code whether another line of the line's visit bills it."""
    n = len(lines)
    keys = [k for k in VISIT_KEYS if k in lines.columns]
    if keys and n:
        visit = (
            lines.groupby(keys, sort=False, observed=True, dropna=False).ngroup().to_numpy(np.int64)
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
    return visit, n_visits, counts, with_codes


def _visit_numbers(lines, visit, n_visits, payer_c, date) -> np.ndarray:
    """Number of each visit in the calendar year with the payer, counting the patient's
    ``visits_before`` the data."""
    n = len(lines)
    year = date.dt.year.fillna(0).to_numpy(np.int64)
    pat_c, _ = factorize(_column(lines, "patient_id", ""))
    before = pd.to_numeric(_column(lines, "visits_before", 0), errors="coerce").fillna(0).to_numpy()
    first = np.unique(visit, return_index=True)[1] if n else np.zeros(0, dtype=np.int64)
    d_first = (
        date.to_numpy()[first].astype("datetime64[D]").astype(np.int64)
        if n
        else np.zeros(0, np.int64)
    )
    order = np.lexsort((visit[first], d_first, year[first], payer_c[first], pat_c[first]))
    grp = np.stack([pat_c[first], payer_c[first], year[first]])[:, order]
    new = np.r_[True, (np.diff(grp, axis=1) != 0).any(axis=0)] if len(order) else np.zeros(0, bool)
    starts = np.flatnonzero(new)
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    vnum = np.zeros(n_visits)
    vnum[visit[first][order]] = rank + 1 + before[first][order]
    return vnum


def _line_units(lines: pd.DataFrame, payers: Mapping | None, reference) -> np.ndarray:
    """Billed units when the lines do not carry them: by each payer's unit method when the
    payers are known, else 8-minute counting per line."""
    if payers is not None and "payer_id" in lines.columns and "minutes" in lines.columns:
        try:
            methods = payer_table(payers).set_index("payer_id")["unit_method"]
            method = lines["payer_id"].astype(object).map(methods).fillna("ama")
            return compute_units(lines, method, reference=reference)["units"].to_numpy()
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


def _bundle_states(cpt_c, cpt_v, payer_c, payer_v, visit, counts, flags, date, payers, reference):
    """Code of each line's :data:`~analytics.denials.bands.BUNDLE_STATES`: the column-2 code of
    an NCCI pair (or of a payer's own pair) whose column-1 code is billed in the same visit,
    with no modifier, modifier 59 or an X modifier."""
    ref = reference or load_reference()
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
    for pid, pol in (payers or {}).items():
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


def filing_codes(
    lines: pd.DataFrame,
    payer_c: np.ndarray,
    payer_v: np.ndarray,
    *,
    payers: Mapping | None,
    assume_lag_days: int,
    submission: pd.Series | None = None,
    date: pd.Series | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Code of each line's band of days from service to submission, against its payer's
    timely-filing limit (:func:`~analytics.denials.bands.filing_band`), and the band labels.

    Parameters
    ----------
    lines
        The lines (their ``service_date`` and ``submission_date``).
    payer_c, payer_v
        Each line's payer as a code into ``payer_v``.
    payers
        Payer policies (``timely_filing_days``).
    assume_lag_days
        Days assumed for a line with no submission date.
    submission
        Submission dates to use instead of the lines' own (on the lines' index): to score a
        line as if sent on another day.
    date
        The lines' service dates, when already read.
    """
    if date is None:
        date = pd.to_datetime(_column(lines, "service_date", pd.NaT), errors="coerce")
    if submission is None:
        submission = _column(lines, "submission_date", pd.NaT)
    sub = pd.to_datetime(submission, errors="coerce")
    lag = (sub - date).dt.days.to_numpy(dtype=float, na_value=np.nan)
    lag = np.where(np.isfinite(lag), lag, assume_lag_days)
    return filing_band(lag, policy_array(payer_v, payers, "timely_filing_days")[payer_c], codes=True)


def build_features(
    lines: pd.DataFrame, *, payers: Mapping | None, reference, assume_lag_days: int
) -> LineFeatures:
    """Each line's features as codes into small tables of labels, computed from the line
    columns alone (visit-level features from the lines of the same visit).

    Parameters
    ----------
    lines
        Service lines of whole visits.
    payers
        Payer policies: visit and timely-filing limits, unit methods, payer NCCI pairs.
    reference
        Reference data (NCCI pairs, units); default the shipped tables.
    assume_lag_days
        Days from service to submission assumed for lines not submitted yet.
    """
    payer_c, payer_v = _labels(lines, "payer_id")
    cpt_c, cpt_v = _labels(lines, "cpt")
    pt = _labels(lines, "provider_type", lower=True)
    dx_c, dx_v = factorize(_column(lines, "dx_codes", ""))
    dx_groups = diagnosis_group(pd.Series(dx_v, dtype=object))
    dx_labels, dx_map = np.unique(dx_groups.astype(str), return_inverse=True)
    rx_c, rx_v = factorize(_column(lines, "prescription_on_file", False))
    rx_yes = np.array([str(v).lower() in ("true", "1", "yes", "y") for v in rx_v], dtype=bool)
    flags = _modifier_flags(lines)

    date = pd.to_datetime(_column(lines, "service_date", pd.NaT), errors="coerce")
    visit, n_visits, counts, with_codes = _visits(lines, cpt_c, cpt_v)

    if "units" in lines.columns:
        units = pd.to_numeric(lines["units"], errors="coerce").fillna(1).to_numpy()
    else:
        units = _line_units(lines, payers, reference)
    # visit number in the calendar year with the payer
    vnum = _visit_numbers(lines, visit, n_visits, payer_c, date)
    limit = policy_array(payer_v, payers, "visit_limit")[payer_c]
    visit_c, visit_v = visit_band(vnum[visit], limit, codes=True)
    filing_c, filing_v = filing_codes(
        lines, payer_c, payer_v, payers=payers, assume_lag_days=assume_lag_days, date=date
    )
    units_c, units_v = units_band(units, codes=True)
    bundle_c = _bundle_states(
        cpt_c, cpt_v, payer_c, payer_v, visit, counts, flags, date, payers, reference
    )
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
    return LineFeatures(cats=cats, flags=flags, with_codes=with_codes)
