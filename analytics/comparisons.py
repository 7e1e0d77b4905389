"""The period against the one before and the same period a year earlier, and 13-month trends.

Each comparison scopes the same practice, payers and providers to another period of
service dates (:mod:`analytics.periods`: the period just before, of the same length, and the
same dates a year earlier) and recomputes the figures of :mod:`analytics.kpis` there. The
A/R of a comparison period is taken as many days after its end as this period's is (as the
practice would have reported it then), never after this period's as-of date.

A comparison period with no service in the data gives empty (NaN) figures and says so in
``basis``; one that starts before the first service in the data is compared on the part
the data covers, and ``basis`` says from when.

Examples
--------
>>> h = kpis.load_history("data/sample").select(start="2025-10-01", end="2025-12-31")  # doctest: +SKIP
>>> headline_comparison(h)[["label", "value", "previous", "previous_change"]]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analytics.exceptions import ParameterError
from analytics.history import History
from analytics.kpis import HEADLINE_FIGURES, denials_by_payer, insurance, summary
from analytics.periods import Period
from analytics.pricing import to_cents

__all__ = [
    "COMPARE_CHOICES",
    "Scope",
    "comparison_scope",
    "headline_comparison",
    "denial_rate_change",
    "monthly_trend",
]

#: ``--compare`` choices and the figures' column prefix for each.
COMPARE_CHOICES = {"previous": "previous", "last-year": "last_year", "none": None}
_LABELS = {"previous": "the previous period", "last_year": "the same period a year earlier"}


@dataclasses.dataclass(frozen=True)
class Scope:
    """A comparison period and the history scoped to it (None when the data has no service then)."""

    kind: str  # previous | last_year
    period: Period
    as_of: pd.Timestamp
    history: History | None
    note: str

    @property
    def basis(self) -> str:
        p = self.period
        return (f"{_LABELS[self.kind]}: services {p.start} to {p.end}, A/R as of {self.as_of.date()}"
                + (f" ({self.note})" if self.note else ""))


def _kind(compare: str) -> str | None:
    if compare not in COMPARE_CHOICES:
        raise ParameterError(f"--compare {compare!r} is not one of {', '.join(COMPARE_CHOICES)}; e.g. --compare "
                             "previous.")
    return COMPARE_CHOICES[compare]


def comparison_scope(history: History, kind: str) -> Scope:
    """``history`` scoped to the previous period (``kind="previous"``) or a year earlier (``"last_year"``)."""
    here = Period.of(history.start, history.end)
    period = here.previous() if kind == "previous" else here.year_earlier()
    lag = max(pd.Timedelta(0), history.as_of.normalize() - history.end.normalize())
    as_of = min(pd.Timestamp(period.end) + lag, history.as_of)
    dates = history.base["service_date"]
    first = dates.min() if len(dates) else pd.NaT
    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    has = bool(((dates >= start) & (dates <= end)).any()) if len(dates) else False
    if not has:
        return Scope(kind, period, as_of, None, "no services in the data")
    note = f"the data start on {first.date()}" if pd.notna(first) and first > start else ""
    scoped = history.select(start=start.date().isoformat(), end=end.date().isoformat(),
                            as_of=as_of.date().isoformat())
    return Scope(kind, period, as_of, scoped, note)


def _change(value: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = value - base
        pct = np.where(np.isfinite(base) & (base != 0), diff / np.abs(base), np.nan)
    return diff, pct


def _figures(history: History | None) -> np.ndarray:
    if history is None:
        return np.full(len(HEADLINE_FIGURES), np.nan)
    s = summary(history)
    return np.array([float(s[key]) for key, _label, _unit in HEADLINE_FIGURES], dtype=float)


def headline_comparison(history: History, *, compare: str = "previous") -> pd.DataFrame:
    """Each headline figure with the previous period and the same period a year earlier.

    Parameters
    ----------
    compare
        ``previous`` or ``last-year`` (both comparison periods are shown; the choice puts its
        columns first, as the one a summary quotes) or ``none`` (the figures alone).

    Returns
    -------
    DataFrame
        ``figure, label, unit, value``, then for each comparison period ``<kind>`` (its
        value), ``<kind>_change`` (value - that value; points for rates) and
        ``<kind>_change_pct`` (the change over that value; NaN when it is 0 or missing), with
        ``<kind>`` ``previous`` and ``last_year``; and ``basis`` (the periods compared).
    """
    first = _kind(compare)
    value = _figures(history)
    out = pd.DataFrame({"figure": [k for k, _l, _u in HEADLINE_FIGURES],
                        "label": [label for _k, label, _u in HEADLINE_FIGURES],
                        "unit": [u for _k, _l, u in HEADLINE_FIGURES], "value": value})
    basis = [f"this period: services {history.start.date()} to {history.end.date()}, A/R as of "
             f"{history.as_of.date()}"]
    if first is not None:
        kinds = [first] + [k for k in ("previous", "last_year") if k != first]
        for kind in kinds:
            scope = comparison_scope(history, kind)
            base = _figures(scope.history)
            diff, pct = _change(value, base)
            out[kind], out[f"{kind}_change"], out[f"{kind}_change_pct"] = base, diff, pct
            basis.append(scope.basis)
    dollars = (out["unit"] == "dollars").to_numpy()
    for col in [c for c in out.columns if c in ("value", "previous", "last_year") or c.endswith("_change")]:
        vals = out[col].to_numpy(dtype=float)
        out[col] = np.where(dollars, to_cents(np.nan_to_num(vals, nan=0.0)), vals)
        out.loc[~np.isfinite(vals), col] = np.nan
    out["basis"] = "; ".join(basis)
    return out


def denial_rate_change(history: History, *, compare: str = "previous") -> pd.DataFrame:
    """Each payer's denial rate against the comparison period (``previous`` or ``last-year``).

    Returns
    -------
    DataFrame
        ``payer_id, payer, lines, denied_lines, rate`` for this period, ``base_lines``,
        ``base_rate`` for the comparison period, ``change`` (rate - base rate, in points as
        a fraction) and ``basis``; payers in either period, highest rate first. Empty when
        ``compare`` is ``none``.
    """
    kind = _kind(compare)
    cols = ["payer_id", "payer", "lines", "denied_lines", "rate", "base_lines", "base_rate", "change", "basis"]
    if kind is None:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("payer_id", "payer", "basis") else float)
                             for c in cols})
    scope = comparison_scope(history, kind)
    now = denials_by_payer(history)[["payer_id", "payer", "lines", "denied_lines", "rate"]]
    if scope.history is not None:
        then = denials_by_payer(scope.history)[["payer_id", "payer", "lines", "rate"]]
    else:
        then = pd.DataFrame({"payer_id": pd.Series(dtype=object), "payer": pd.Series(dtype=object),
                             "lines": pd.Series(dtype=np.int64), "rate": pd.Series(dtype=float)})
    then = then.rename(columns={"lines": "base_lines", "rate": "base_rate", "payer": "base_payer"})
    out = now.merge(then, on="payer_id", how="outer", sort=True)
    out["payer"] = out["payer"].fillna(out["base_payer"])
    out = out.drop(columns="base_payer")
    for c in ("lines", "denied_lines", "base_lines"):
        out[c] = out[c].fillna(0).astype(np.int64)
    out["change"] = out["rate"] - out["base_rate"]
    out["basis"] = f"this period: services {history.start.date()} to {history.end.date()}; {scope.basis}"
    return out[cols].sort_values(["rate", "payer"], ascending=[False, True], kind="stable",
                                 na_position="last").reset_index(drop=True)


def monthly_trend(history: History, *, months: int = 13) -> pd.DataFrame:
    """Month by month over the ``months`` calendar months ending with the period's last month.

    Months before the first service in the data are left out. The A/R date is this
    period's, so the latest months may still be awaiting remittances.

    Returns
    -------
    DataFrame
        ``month`` (first day), ``visits``, ``charges``, ``collected`` (payer paid + patient
        responsibility for services that month), ``denial_rate`` and ``net_collection_rate``
        (adjudicated insurance lines of services that month), and ``in_period`` (the month
        is part of the reported period).
    """
    window = Period.of(history.start, history.end).months_back(months)
    dates = history.base["service_date"]
    first = dates.min() if len(dates) else pd.Timestamp(window.start)
    start = max(pd.Timestamp(window.start), pd.Timestamp(first).to_period("M").to_timestamp())
    end = min(pd.Timestamp(window.end), history.as_of)
    cols = ["month", "visits", "charges", "collected", "denial_rate", "net_collection_rate", "in_period"]
    if start > end:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    # the window's lines: this history's lines (same as-of date, payers and providers) with a
    # service date in the window, as history.select(start=..., end=...).period would give them
    lines = history.lines[["service_date", "visit", "charge", "self_pay", "adjudicated", "denied", "paid",
                           "patient_responsibility", "contractual"]]
    svc = lines["service_date"].to_numpy()
    p = lines[(svc >= np.datetime64(start)) & (svc <= np.datetime64(end))]
    month = p["service_date"].dt.to_period("M")
    ins = insurance(p)
    adj = ins[ins["adjudicated"].to_numpy()]
    all_months = pd.period_range(start.to_period("M"), end.to_period("M"), freq="M")
    base = p.assign(month=month).groupby("month", sort=True).agg(visits=("visit", "nunique"),
                                                                 charges=("charge", "sum"))
    a = adj.assign(month=adj["service_date"].dt.to_period("M"), d=adj["denied"].astype(np.int64), n=1,
                   got=adj["paid"] + adj["patient_responsibility"]).groupby("month", sort=True).agg(
        lines=("n", "sum"), denied=("d", "sum"), got=("got", "sum"), charge=("charge", "sum"),
        contractual=("contractual", "sum"))
    out = base.reindex(all_months, fill_value=0).join(a.reindex(all_months), how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["denial_rate"] = out["denied"] / out["lines"].where(out["lines"] > 0)
        out["net_collection_rate"] = out["got"] / (out["charge"] - out["contractual"]).where(out["charge"] > 0)
    out["collected"] = to_cents(out["got"].fillna(0.0).to_numpy(dtype=float))
    out["charges"] = to_cents(out["charges"].to_numpy(dtype=float))
    out["visits"] = out["visits"].astype(np.int64)
    out = out.reset_index(names="month")
    out["month"] = out["month"].dt.to_timestamp()
    lo, hi = history.start.to_period("M").to_timestamp(), history.end.to_period("M").to_timestamp()
    out["in_period"] = (out["month"] >= lo) & (out["month"] <= hi)
    return out[cols]
