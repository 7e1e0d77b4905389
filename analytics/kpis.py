"""Practice KPIs: revenue, collections, A/R, denials, underpayments and rates against Medicare.

:func:`load_history` (:mod:`analytics.history`) joins what a practice has on disk (the
charge export, the 835 remittances, the payer policies) into one :class:`History`: one row
per charge line with what the payer did with it and what the contract says it should have
paid. Every KPI below is a vectorised function of a history, scoped by
:meth:`History.select` to a period of service dates, an as-of date, payers and providers.
A figure of one scope is computed once (:func:`per_scope`) and shared by the page's sentences,
actions and tables; it reads only the columns it needs.
The sentences written from these figures are in :mod:`analytics.narratives`.

Definitions (the figures a billing office reports each month):

* **Gross charges**: the practice's charges for services in the period (self-pay included;
  the insurance figures below leave self-pay out).
* **Allowed**: what payers allowed on adjudicated lines (835 ``AMT*B6``; else payer paid +
  patient responsibility + sequestration).
* **Payer paid**: ``SVC03``. **Patient responsibility**: group ``PR`` adjustments that are
  cost share (deductible, coinsurance, copay), not denials.
* **Contractual adjustments**: ``CO``/``OA``/``PI`` adjustments whose CARC is not a denial
  (CO-45 write-down to the fee schedule, CO-59 MPPR, CO-253 sequestration).
* **Denials**: adjustments whose CARC the catalog marks as a denial, in any group (PR-119
  benefit maximum too). A line is *denied* when the payer paid nothing on it and a denial
  CARC is present, *partially denied* when it paid something. Denial rate = denied lines /
  adjudicated lines.
* **Net collection rate** (MGMA): (payer paid + patient responsibility) / (charges -
  contractual adjustments), over adjudicated insurance lines. Patient responsibility is
  counted as collected: the export carries no patient payments.
* **Insurance A/R**: charges of submitted insurance lines with no remittance as of the
  date. **Days in A/R** = A/R / average daily insurance charges of the 90 days up to the
  as-of date. **Aging** buckets the A/R by days from the date of service: 0-30, 31-60,
  61-90, 91-120, over 120.
* **First-pass resolution rate**: adjudicated claims paid on their first remittance with no
  line denied, over adjudicated claims.
* **Underpayments**: paid lines where payer paid + patient responsibility is below what the
  contract says (the rules engine, :func:`analytics.pipeline.evaluate`, with the payer's
  policy: allowed less sequestration), by payer, code and month of service, with the
  recoverable dollars and the claims to appeal.
* **Percent of Medicare**: for each payer and code, payer paid + patient responsibility over
  what Medicare would allow for the same lines and units (MPPR included) at the practice's
  locality.

Money is summed unrounded and rounded to cents once, at the end (:func:`analytics.pricing.to_cents`).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError
from analytics.history import (
    CACHE_ENV,
    CENT,
    History,
    build_history,
    contract_prices,
    load_history,
    practice_name,
)
from analytics.payers import PayerPolicy
from analytics.pricing import to_cents
from analytics.refdata import Reference, load_reference

if TYPE_CHECKING:  # served by __getattr__ below; named here for readers and type checkers
    from analytics.narratives import (
        contracts_narrative,
        data_notes,
        denials_narrative,
        heading,
        revenue_narrative,
    )

__all__ = [
    "AGING_BUCKETS",
    "practice_name",
    "History",
    "Underpayments",
    "load_history",
    "build_history",
    "summary",
    "headline",
    "headline_figures",
    "HEADLINE_FIGURES",
    "by_payer",
    "monthly",
    "net_collection_rate",
    "ar_aging",
    "days_in_ar",
    "first_pass_resolution_rate",
    "denials_by_payer",
    "denials_by_code",
    "denial_reasons",
    "paid_per_visit",
    "paid_per_unit",
    "underpayments",
    "percent_of_medicare",
    "at_locality",
    "heading",
    "revenue_narrative",
    "denials_narrative",
    "contracts_narrative",
    "data_notes",
    "fmt_money",
    "fmt_pct",
    "fmt_days",
    "CACHE_ENV",
]


#: A/R aging buckets, in days from the date of service.
AGING_BUCKETS = ("0-30", "31-60", "61-90", "91-120", "over 120")
_AGING_EDGES = np.array([30, 60, 90, 120])
_AR_WINDOW_DAYS = 90


# ---------------------------------------------------------------------------------------
# Formatting: one place, so narrative, tables and tests agree to the character.
# ---------------------------------------------------------------------------------------


def fmt_money(x: float, *, cents: bool = False) -> str:
    """Dollars as a page shows them: ``$1,240`` (``$1,240.50`` with ``cents``).

    Examples
    --------
    >>> fmt_money(1240.499), fmt_money(-3.5, cents=True), fmt_money(float("nan"))
    ('$1,240', '-$3.50', '-')
    """
    if x is None or not np.isfinite(x):
        return "-"
    value = float(to_cents(x))
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}" if cents else f"{sign}${abs(value):,.0f}"


def fmt_pct(x: float, digits: int = 1) -> str:
    """A fraction as a percent: ``0.8234 -> '82.3%'``; NaN as ``'-'``.

    Examples
    --------
    >>> fmt_pct(0.8234), fmt_pct(1.0, 0)
    ('82.3%', '100%')
    """
    if x is None or not np.isfinite(x):
        return "-"
    return f"{100 * float(x):.{digits}f}%"


def fmt_days(x: float) -> str:
    """Days with one decimal: ``23.44 -> '23.4 days'``."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"{float(x):.1f} days"


def _money(x: Any) -> Any:
    return to_cents(x) if np.ndim(x) else float(to_cents(x))


# ---------------------------------------------------------------------------------------
# KPIs
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# One scope's figures, computed once
# ---------------------------------------------------------------------------------------

# A History never changes once built (a frozen dataclass; select and at_locality return new
# ones), so a figure of one scope is the same every time a page asks for it: the narrative,
# the recommendations and the table of a page share it. Kept per history object while it lives.
_PER_SCOPE: dict[int, dict[Any, Any]] = {}


def per_scope(history: History, key: Any, compute: Any) -> Any:
    """``compute()`` for ``history``, worked out once per history object and ``key``.

    The figures of a scope (its summary, underpayments, percent of Medicare ...) are asked for
    by the page's sentences, its actions and its tables; each is computed on the first request
    and kept while ``history`` lives. Frames come back as copies that share the data (pandas
    copy-on-write), so a caller that changes one leaves the kept figure as it was.

    Examples
    --------
    >>> s = per_scope(history, "summary", lambda: summary(history))  # doctest: +SKIP
    """
    ident = id(history)
    memo = _PER_SCOPE.get(ident)
    if memo is None:
        memo = _PER_SCOPE[ident] = {}
        weakref.finalize(history, _PER_SCOPE.pop, ident, None)
    if key not in memo:
        memo[key] = compute()
    return _copy(memo[key])


def _copy(value: Any) -> Any:
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.copy(deep=False)
    if isinstance(value, Underpayments):
        return dataclasses.replace(value, lines=value.lines.copy(deep=False), summary=value.summary.copy(deep=False),
                                   claims=value.claims.copy(deep=False))
    return value


def _masks(history: History) -> dict[str, np.ndarray]:
    """The period's line masks: ``insurance``, ``adjudicated`` (insurance lines with an answer)
    and ``paid`` (of those, not denied and something paid: :func:`paid_lines`)."""
    def compute() -> dict[str, np.ndarray]:
        p = history.period
        ins = ~p["self_pay"].to_numpy()
        adj = ins & p["adjudicated"].to_numpy()
        got = (p["paid"] + p["patient_responsibility"] > CENT).to_numpy()
        return {name: _read_only(mask) for name, mask in (
            ("insurance", ins), ("adjudicated", adj), ("paid", adj & ~p["denied"].to_numpy() & got))}
    return per_scope(history, "masks", compute)


def _read_only(values: np.ndarray) -> np.ndarray:
    """``values`` kept for every figure of a scope: made read-only so no caller changes them."""
    values = np.array(values, copy=True)
    values.flags.writeable = False
    return values


def _take(frame: pd.DataFrame, mask: np.ndarray | None, columns: Sequence[str]) -> pd.DataFrame:
    """``frame[mask]`` with only ``columns``: a million lines carry some 35 columns, most of them
    text, and a figure needs a few."""
    narrow = frame[list(dict.fromkeys(columns))]
    return narrow if mask is None else narrow[mask]


def insurance(lines: pd.DataFrame) -> pd.DataFrame:
    """The insurance lines of ``lines`` (self-pay left out)."""
    return lines[~lines["self_pay"].to_numpy()]


def _sum(lines: pd.DataFrame, col: str) -> float:
    return float(lines[col].to_numpy(dtype=float).sum())


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _ar_lines(history: History, columns: Sequence[str] = ("service_date", "charge")) -> pd.DataFrame:
    """Open insurance A/R as of the date: submitted, not yet adjudicated (``columns`` only)."""
    lines = history.lines
    return _take(lines, lines["submitted"].to_numpy() & ~lines["adjudicated"].to_numpy()
                 & ~lines["self_pay"].to_numpy(), columns)


def summary(history: History) -> pd.Series:
    """The period's headline figures as numbers (dollars unrounded to cents once).

    Returns
    -------
    Series
        ``visits, lines, gross_charges, self_pay_charges, insurance_charges, unbilled_charges,
        adjudicated_charges, allowed, payer_paid, patient_responsibility,
        contractual_adjustments, denied_amount, denied_lines, adjudicated_lines, denial_rate,
        net_collection_rate, first_pass_resolution_rate, paid_per_visit, ar_balance,
        ar_over_90, days_in_ar``. The A/R figures are as of ``history.as_of`` whatever the
        period.
    """
    return per_scope(history, "summary", lambda: _summary(history))


def _summary(history: History) -> pd.Series:
    p = history.period
    m = _masks(history)
    ins, adj = m["insurance"], m["adjudicated"]
    self_pay = p["self_pay"].to_numpy()

    def total(col: str, mask: np.ndarray | None = None) -> float:
        values = p[col].to_numpy(dtype=float)
        return float((values if mask is None else values[mask]).sum())

    fpr = first_pass_resolution_rate(history)
    ar = _ar_lines(history)
    age = (history.as_of - ar["service_date"]).dt.days.to_numpy()
    denied = p["denied"].to_numpy()[adj]
    adjudicated_lines = int(adj.sum())
    paid, responsibility = total("paid", adj), total("patient_responsibility", adj)
    values = {
        "visits": int(p["visit"].nunique()),
        "lines": int(len(p)),
        "gross_charges": total("charge"),
        "self_pay_charges": total("charge", self_pay),
        "insurance_charges": total("charge", ins),
        "unbilled_charges": total("charge", ins & ~p["submitted"].to_numpy()),
        "adjudicated_charges": total("charge", adj),
        "allowed": total("allowed", adj),
        "payer_paid": paid,
        "patient_responsibility": responsibility,
        "contractual_adjustments": total("contractual", adj),
        "denied_amount": total("denied_amount", adj),
        "denied_lines": int(denied.sum()),
        "adjudicated_lines": adjudicated_lines,
        "denial_rate": _ratio(denied.sum(), adjudicated_lines),
        "net_collection_rate": _ratio(paid + responsibility, total("charge", adj) - total("contractual", adj)),
        "first_pass_resolution_rate": float(fpr["rate"].iloc[0]) if len(fpr) else float("nan"),
        "paid_per_visit": _ratio(paid + responsibility, p["visit"][adj].nunique()),
        "ar_balance": _sum(ar, "charge"),
        "ar_over_90": float(ar["charge"].to_numpy(dtype=float)[age > 90].sum()),
        "days_in_ar": days_in_ar(history),
    }
    money = ("gross_charges", "self_pay_charges", "insurance_charges", "unbilled_charges", "adjudicated_charges",
             "allowed", "payer_paid", "patient_responsibility", "contractual_adjustments", "denied_amount",
             "ar_balance", "ar_over_90")
    for k in money:
        values[k] = _money(values[k])
    return pd.Series(values, dtype=object)


def headline(history: History) -> pd.DataFrame:
    """The headline figures formatted for a page: columns ``figure`` and ``value``.

    The values are :func:`fmt_money` / :func:`fmt_pct` / :func:`fmt_days` of
    :func:`summary`, so a test can recompute them from the API.
    """
    s = summary(history)
    rows = [
        ("Visits", f"{s['visits']:,}"),
        ("Gross charges", fmt_money(s["gross_charges"])),
        ("  of which self-pay", fmt_money(s["self_pay_charges"])),
        ("Allowed by payers", fmt_money(s["allowed"])),
        ("Paid by payers", fmt_money(s["payer_paid"])),
        ("Patient responsibility", fmt_money(s["patient_responsibility"])),
        ("Contractual adjustments", fmt_money(s["contractual_adjustments"])),
        ("Denied", f"{fmt_money(s['denied_amount'])} ({s['denied_lines']:,} lines)"),
        ("Denial rate (lines)", fmt_pct(s["denial_rate"])),
        ("Net collection rate", fmt_pct(s["net_collection_rate"])),
        ("First-pass resolution rate", fmt_pct(s["first_pass_resolution_rate"])),
        ("Paid per visit (payer + patient)", fmt_money(s["paid_per_visit"], cents=True)),
        ("Not yet billed", fmt_money(s["unbilled_charges"])),
        (f"Insurance A/R as of {history.as_of.date()}", fmt_money(s["ar_balance"])),
        ("  of which over 90 days", fmt_money(s["ar_over_90"])),
        ("Days in A/R", fmt_days(s["days_in_ar"])),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"])


#: The headline figures in page order: (key in :func:`summary`, label, unit). Units are
#: ``dollars``, ``percent`` (a fraction), ``days`` or ``count``.
HEADLINE_FIGURES = (
    ("visits", "Visits", "count"),
    ("gross_charges", "Gross charges", "dollars"),
    ("self_pay_charges", "of which self-pay", "dollars"),
    ("allowed", "Allowed by payers", "dollars"),
    ("payer_paid", "Paid by payers", "dollars"),
    ("patient_responsibility", "Patient responsibility", "dollars"),
    ("contractual_adjustments", "Contractual adjustments", "dollars"),
    ("denied_amount", "Denied", "dollars"),
    ("denied_lines", "Denied lines", "count"),
    ("denial_rate", "Denial rate (lines)", "percent"),
    ("net_collection_rate", "Net collection rate", "percent"),
    ("first_pass_resolution_rate", "First-pass resolution rate", "percent"),
    ("paid_per_visit", "Paid per visit (payer + patient)", "dollars"),
    ("unbilled_charges", "Not yet billed", "dollars"),
    ("ar_balance", "Insurance A/R", "dollars"),
    ("ar_over_90", "Insurance A/R over 90 days", "dollars"),
    ("days_in_ar", "Days in A/R", "days"),
)


def headline_figures(history: History) -> pd.DataFrame:
    """The headline figures as numbers, for a spreadsheet (``headline.csv``).

    Returns
    -------
    DataFrame
        ``figure`` (the key of :func:`summary`), ``label`` (as the page words it), ``value``
        (a number: dollars to the cent, rates as fractions, days, counts), ``unit`` and
        ``basis`` (the services counted and the A/R date).
    """
    s = summary(history)
    basis = (f"services {history.start.date()} to {history.end.date()}; remittances and A/R as of "
             f"{history.as_of.date()}")
    rows = [(key, label, float(s[key]), unit, basis) for key, label, unit in HEADLINE_FIGURES]
    out = pd.DataFrame(rows, columns=["figure", "label", "value", "unit", "basis"])
    out.loc[out["figure"] == "paid_per_visit", "value"] = to_cents(
        out.loc[out["figure"] == "paid_per_visit", "value"].to_numpy(dtype=float))
    return out


def _group_keys(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    keys = [by] if isinstance(by, str) else list(by)
    return [("payer_id" if k == "payer" else "provider_id" if k == "provider" else k) for k in keys]


def _with_payer_name(frame: pd.DataFrame, history: History) -> pd.DataFrame:
    if "payer_id" in frame.columns and "payer" not in frame.columns:
        names = {pid: (p.name or pid) for pid, p in history.payers.items()}
        frame.insert(frame.columns.get_loc("payer_id") + 1, "payer",
                     frame["payer_id"].map(names).fillna(frame["payer_id"]).astype(str))
    return frame


def _agg(lines: pd.DataFrame, keys: list[str], spec: dict[str, tuple[str, str]]) -> pd.DataFrame:
    if keys:
        out = lines.groupby(keys, observed=True, sort=True).agg(**spec).reset_index()
    else:
        out = pd.DataFrame({k: [getattr(lines[c], how)() if how != "nunique" else lines[c].nunique()]
                            for k, (c, how) in spec.items()})
    return out


def by_payer(history: History) -> pd.DataFrame:
    """Charges, payments, adjustments, denials and net collection rate per payer for the period.

    Columns ``payer_id, payer, visits, charges, allowed, payer_paid, patient_responsibility,
    contractual, denied_amount, denial_rate, net_collection_rate, paid_per_visit``; the
    rates are NaN for self-pay.
    """
    return per_scope(history, "by_payer", lambda: _by_payer(history))


def _by_payer(history: History) -> pd.DataFrame:
    p = history.period
    sums = ("charge", "allowed", "paid", "patient_responsibility", "contractual", "denied_amount")
    out = _take(p, None, ("payer_id", "visit", *sums)).groupby("payer_id", observed=True, sort=True).agg(
        visits=("visit", "nunique"), charges=("charge", "sum"), allowed=("allowed", "sum"),
        payer_paid=("paid", "sum"), patient_responsibility=("patient_responsibility", "sum"),
        contractual=("contractual", "sum"), denied_amount=("denied_amount", "sum"))
    adj = _take(p, p["adjudicated"].to_numpy(), ("payer_id", "charge", "denied", "visit"))
    a = adj.groupby("payer_id", observed=True, sort=True).agg(
        adjudicated_charges=("charge", "sum"), adjudicated_lines=("charge", "size"), denied_lines=("denied", "sum"),
        adjudicated_visits=("visit", "nunique"))
    out = out.join(a, how="left").fillna({c: 0 for c in a.columns}).reset_index()
    collected = out["payer_paid"] + out["patient_responsibility"]
    out["denial_rate"] = out["denied_lines"] / out["adjudicated_lines"].where(out["adjudicated_lines"] > 0)
    out["net_collection_rate"] = collected / (out["adjudicated_charges"] - out["contractual"]).where(
        out["adjudicated_charges"] > 0)
    out["paid_per_visit"] = to_cents((collected / out["adjudicated_visits"].where(
        out["adjudicated_visits"] > 0)).to_numpy(dtype=float))
    self_pay = [pid for pid, pol in history.payers.items() if pol.kind == "cash"]
    out.loc[out["payer_id"].isin(self_pay), ["denial_rate", "net_collection_rate", "paid_per_visit"]] = np.nan
    for c in ("charges", "allowed", "payer_paid", "patient_responsibility", "contractual", "denied_amount"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    out = out.drop(columns=["adjudicated_charges", "adjudicated_lines", "denied_lines", "adjudicated_visits"])
    return _with_payer_name(out, history)


def monthly(history: History) -> pd.DataFrame:
    """Charges by month of service and payer payments by month received, over the period.

    Columns ``month`` (first day), ``charges`` (services that month), ``allowed``,
    ``payer_paid`` and ``patient_responsibility`` (for services that month, as paid by the
    as-of date), ``denied_amount``, and ``collections``: payer payments received that month
    for any date of service (cash basis). The months stop at the as-of date: nothing after
    it is known, so a period reaching past it has no rows for those months.
    """
    p = history.period
    first = history.start.to_period("M")
    months = pd.period_range(first, max(first, min(history.end, history.as_of).to_period("M")), freq="M")
    p = _take(p, None, ("service_date", "charge", "allowed", "paid", "patient_responsibility", "denied_amount"))
    base = p.assign(month=p["service_date"].dt.to_period("M")).groupby("month", sort=True).agg(
        charges=("charge", "sum"), allowed=("allowed", "sum"), payer_paid=("paid", "sum"),
        patient_responsibility=("patient_responsibility", "sum"), denied_amount=("denied_amount", "sum"),
    )
    lines = history.lines
    paid = _take(lines, lines["adjudicated"].to_numpy() & lines["payment_date"].notna().to_numpy(),
                 ("payment_date", "paid"))
    coll = paid.assign(month=paid["payment_date"].dt.to_period("M")).groupby("month")["paid"].sum()
    out = base.reindex(months, fill_value=0.0)
    out["collections"] = coll.reindex(months, fill_value=0.0).to_numpy()
    for c in out.columns:
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    out = out.reset_index(names="month")
    out["month"] = out["month"].dt.to_timestamp()
    return out


def net_collection_rate(history: History, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """(payer paid + patient responsibility) / (charges - contractual) on adjudicated insurance
    lines of the period, overall or ``by`` payer/provider/cpt.

    Columns: the group keys, ``charges``, ``contractual``, ``collected``, ``rate``.
    """
    keys = _group_keys(by)
    adj = _take(history.period, _masks(history)["adjudicated"],
                (*keys, "charge", "contractual", "paid", "patient_responsibility"))
    out = _agg(adj.assign(collected=adj["paid"] + adj["patient_responsibility"]), keys, {
        "charges": ("charge", "sum"), "contractual": ("contractual", "sum"), "collected": ("collected", "sum")})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = out["collected"] / (out["charges"] - out["contractual"]).where(out["charges"] > 0)
    for c in ("charges", "contractual", "collected"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


def ar_aging(history: History, by: str | Sequence[str] | None = "payer") -> pd.DataFrame:
    """Insurance A/R as of ``history.as_of`` in aging buckets, by payer (or ``by=None``).

    A line is open when it was submitted by the as-of date and no remittance had come back;
    its age is counted in days from the date of service. Like any balance it ignores the
    period: every open line up to the as-of date counts.

    Returns
    -------
    DataFrame
        One row per group (largest balance first): the group keys, one column per bucket of
        :data:`AGING_BUCKETS` (dollars), ``total``, ``lines`` and ``claims``.

    Examples
    --------
    >>> ar_aging(history).columns.tolist()  # doctest: +SKIP
    ['payer_id', 'payer', '0-30', '31-60', '61-90', '91-120', 'over 120', 'total', 'lines', 'claims']
    """
    keys = _group_keys(by)
    return per_scope(history, ("ar_aging", tuple(keys)), lambda: _ar_aging(history, keys))


def _ar_aging(history: History, keys: list[str]) -> pd.DataFrame:
    ar = _ar_lines(history, (*keys, "service_date", "charge", "claim_id"))
    age = (history.as_of - ar["service_date"]).dt.days.to_numpy()
    bucket = np.searchsorted(_AGING_EDGES, age, side="left")
    if keys:
        grouped = ar.groupby(keys, observed=True, sort=True)
        group = grouped.ngroup().to_numpy()  # numbered in the sorted key order of agg()
        counts = grouped.agg(lines=("charge", "size"), claims=("claim_id", "nunique")).reset_index()
        out = counts[keys].copy()
        lines_n, claims_n = counts["lines"].to_numpy(), counts["claims"].to_numpy()
    else:
        group = np.zeros(len(ar), dtype=np.int64)
        out = pd.DataFrame(index=pd.RangeIndex(1))
        lines_n, claims_n = np.array([len(ar)]), np.array([ar["claim_id"].nunique()])
    dollars = np.zeros((len(out), len(AGING_BUCKETS)))
    np.add.at(dollars, (group, bucket), ar["charge"].to_numpy(dtype=float))
    for j, b in enumerate(AGING_BUCKETS):
        out[b] = to_cents(dollars[:, j])
    out["total"] = to_cents(dollars.sum(axis=1))
    out["lines"] = np.asarray(lines_n, dtype=np.int64)
    out["claims"] = np.asarray(claims_n, dtype=np.int64)
    if keys:
        out = out.sort_values("total", ascending=False, kind="stable").reset_index(drop=True)
    return _with_payer_name(out, history)


def days_in_ar(history: History, *, window_days: int = _AR_WINDOW_DAYS) -> float:
    """Insurance A/R / average daily insurance charges of the ``window_days`` up to ``as_of``.

    The average is the charges for services in (as_of - window_days, as_of] divided by
    ``window_days``. NaN when there were no charges in the window.
    """
    lines = history.lines
    lines = _take(lines, ~lines["self_pay"].to_numpy(), ("service_date", "charge"))
    ar = _sum(_ar_lines(history, ("charge",)), "charge")
    svc = lines["service_date"].to_numpy()
    lo = np.datetime64(history.as_of - pd.Timedelta(days=window_days))
    window = lines["charge"].to_numpy(dtype=float)[(svc > lo) & (svc <= np.datetime64(history.as_of))].sum()
    return _ratio(ar, window / window_days)


def first_pass_resolution_rate(history: History, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Share of adjudicated claims paid on their first remittance with no line denied.

    Claims are the period's insurance claims with at least one adjudicated line. A claim is
    resolved on the first pass when one remittance answered it and none of its lines was
    denied, fully or in part. Columns: the group keys, ``claims``, ``first_pass``, ``rate``.
    """
    keys = _group_keys(by)
    return per_scope(history, ("first_pass", tuple(keys)), lambda: _first_pass(history, keys))


def _claim_numbers(history: History) -> np.ndarray:
    """The period's claims numbered (``-1``: no claim id), so claims group on integers."""
    return per_scope(history, "claim_numbers", lambda: _read_only(pd.factorize(history.period["claim_id"])[0]))


def _first_pass(history: History, keys: list[str]) -> pd.DataFrame:
    adj_mask = _masks(history)["adjudicated"]
    adj = _take(history.period, adj_mask, (*keys, "denied", "partially_denied", "remits_on_claim"))
    claim_number = _claim_numbers(history)[adj_mask]
    adj = adj.assign(claim_id=claim_number)
    if (claim_number < 0).any():  # a line without a claim id belongs to no claim, as in a groupby
        adj, claim_number = adj[claim_number >= 0], claim_number[claim_number >= 0]
    if not keys and len(adj) and pd.api.types.is_integer_dtype(adj["remits_on_claim"].dtype):
        # the whole period: a claim passes when none of its lines was denied (fully or in part) and
        # one remittance answered it, i.e. when it has no line that fails; counted on claim numbers
        fails = (adj["denied"].to_numpy(dtype=bool) | adj["partially_denied"].to_numpy(dtype=bool)
                 | (adj["remits_on_claim"].to_numpy() > 1))
        present = np.bincount(claim_number) > 0
        failing = np.bincount(claim_number, weights=fails) > 0
        claims, passed = np.int64(present.sum()), np.int64((present & ~failing).sum())
        out = pd.DataFrame({"claims": [claims], "first_pass": [passed]})
        out["rate"] = out["first_pass"] / out["claims"].where(out["claims"] > 0)
        return out
    claim = adj.groupby(["claim_id", *keys], observed=True, sort=False).agg(
        denied=("denied", "any"), partial=("partially_denied", "any"), remits=("remits_on_claim", "max"))
    ok = (~claim["denied"] & ~claim["partial"] & (claim["remits"] <= 1)).astype(np.int64)
    claim = claim.assign(first_pass=ok, n=1).reset_index()
    out = _agg(claim, keys, {"claims": ("n", "sum"), "first_pass": ("first_pass", "sum")})
    out["rate"] = out["first_pass"] / out["claims"].where(out["claims"] > 0)
    return _with_payer_name(out, history)


def _jeffreys(k: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Jeffreys interval of a binomial proportion: Beta(k + 1/2, n - k + 1/2) quantiles.

    The quantiles are the inverse of the regularised incomplete beta function, which is what
    ``scipy.stats.beta.ppf`` computes, without importing ``scipy.stats`` (half a second).
    """
    from scipy.special import betaincinv

    a = (1 - level) / 2
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    lo = np.where(k > 0, betaincinv(k + 0.5, n - k + 0.5, a), 0.0)
    hi = np.where(k < n, betaincinv(k + 0.5, n - k + 0.5, 1 - a), 1.0)
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


def _denials(history: History, keys: list[str]) -> pd.DataFrame:
    adj = _take(history.period, _masks(history)["adjudicated"],
                (*keys, "denied", "partially_denied", "denied_amount", "charge"))
    out = _agg(adj.assign(n=1, d=adj["denied"].astype(np.int64), pd_=adj["partially_denied"].astype(np.int64)),
               keys, {"lines": ("n", "sum"), "denied_lines": ("d", "sum"), "partially_denied": ("pd_", "sum"),
                      "denied_amount": ("denied_amount", "sum"), "charges": ("charge", "sum")})
    out["rate"] = out["denied_lines"] / out["lines"].where(out["lines"] > 0)
    out["low"], out["high"] = _jeffreys(out["denied_lines"].to_numpy(), out["lines"].to_numpy())
    for c in ("denied_amount", "charges"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


def denials_by_payer(history: History) -> pd.DataFrame:
    """Denied lines and dollars per payer with the rate's 95% interval.

    Columns ``payer_id, payer, lines`` (adjudicated), ``denied_lines``, ``partially_denied``,
    ``denied_amount``, ``charges``, ``rate``, ``low``, ``high``. The interval is the Jeffreys
    interval (Beta(denied + 1/2, paid + 1/2)), so a payer with three lines gets a wide one.
    """
    return per_scope(history, "denials_by_payer", lambda: _denials(history, ["payer_id"]).sort_values(
        "rate", ascending=False, kind="stable").reset_index(drop=True))


def denials_by_code(history: History) -> pd.DataFrame:
    """Denial rates per payer and code, shrunk by empirical Bayes, with dollars at risk.

    Many payer x code groups are small, so each rate is the posterior mean of
    :func:`analytics.denials.denial_rates` (a beta prior fitted across the groups): a group
    with a handful of lines sits near the practice's usual rate, a large one at its own.

    Returns
    -------
    DataFrame
        ``payer_id, payer, cpt, lines, denied_lines, raw_rate, rate, low, high`` (95%
        credible interval), ``denied_amount`` and ``dollars_at_risk`` (rate x charges).
    """
    from analytics.denials import denial_rates

    adj = _take(history.period, _masks(history)["adjudicated"], ("payer_id", "cpt", "denied", "charge", "denied_amount"))
    cols = ["payer_id", "cpt", "lines", "denied_lines", "raw_rate", "rate", "low", "high", "denied_amount",
            "dollars_at_risk"]
    if adj.empty:
        return _with_payer_name(pd.DataFrame({c: pd.Series(dtype=float) for c in cols}).astype(
            {"payer_id": object, "cpt": object}), history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # thin groups are the point of shrinking
        rates = denial_rates(adj, by=("payer_id", "cpt"))
    out = rates.rename(columns={"denied": "denied_lines", "rate_lo_95": "low", "rate_hi_95": "high",
                                "denied_dollars": "denied_amount"})[cols]
    for c in ("denied_amount", "dollars_at_risk"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out.reset_index(drop=True), history)


def denial_reasons(history: History, by: str = "category") -> pd.DataFrame:
    """Denials by reason, largest first, with the cumulative share (a Pareto table).

    Parameters
    ----------
    by
        ``"category"`` (the CARC catalog's category: bundling, medical necessity ...) or
        ``"carc"`` (the code, with its label).

    Returns
    -------
    DataFrame
        ``reason``, ``lines``, ``denied_amount``, ``share`` (of denied dollars) and
        ``cumulative_share``; ``carc`` rows also carry ``category``.
    """
    if by not in ("carc", "category"):
        raise InputError(f"denial_reasons(by=...) takes 'category' or 'carc', not {by!r}.")
    return per_scope(history, ("denial_reasons", by), lambda: _denial_reasons(history, by))


def _per_distinct(values: pd.Series, words: Any) -> np.ndarray:
    """``words(values)`` worked out on the distinct values only and spread back to every row."""
    codes, distinct = pd.factorize(values, use_na_sentinel=False)
    return np.asarray(words(pd.Series(distinct, dtype=values.dtype)).to_numpy(), dtype=object)[codes]


def _denial_reasons(history: History, by: str) -> pd.DataFrame:
    p = history.period
    denied = _masks(history)["adjudicated"] & (p["denied_amount"] > CENT).to_numpy()
    d = _take(p, denied, ("denial_carc", "denial_category", "denied_amount"))
    ref = load_reference()
    category = _per_distinct(d["denial_category"], lambda s: s.map(_category_label))
    if by == "carc":
        labels = ref.carc.set_index("carc")["label"]
        text = _per_distinct(d["denial_carc"].astype(str), lambda reason: "CARC " + reason + ": " + reason.map(
            labels).fillna("code outside the catalog"))
        work = d.assign(reason=text, category=category)
        keys = ["reason", "category"]
    else:
        work = d.assign(reason=category)
        keys = ["reason"]
    out = work.assign(n=1).groupby(keys, sort=False).agg(lines=("n", "sum"), denied_amount=("denied_amount", "sum"))
    out = out.reset_index().sort_values(["denied_amount", "lines"], ascending=False, kind="stable")
    total = out["denied_amount"].sum()
    out["share"] = out["denied_amount"] / total if total else np.nan
    out["cumulative_share"] = out["share"].cumsum()
    out["denied_amount"] = to_cents(out["denied_amount"].to_numpy(dtype=float))
    return out.reset_index(drop=True)


_CATEGORY_LABELS = {
    "bundling": "bundling (code pairs)", "medical_necessity": "medical necessity",
    "non_covered": "not covered", "authorization": "authorisation", "benefit_max": "benefit maximum reached",
    "frequency": "frequency / MUE", "timely_filing": "timely filing", "provider_eligibility": "provider not eligible",
    "prescription_referral": "prescription or referral", "missing_info": "missing information",
    "duplicate": "duplicate", "cob": "another payer liable", "eligibility": "eligibility",
    "coding_modifier": "coding or modifier", "coverage": "coverage guidelines",
}


def _category_label(category: str) -> str:
    return _CATEGORY_LABELS.get(str(category), str(category).replace("_", " ") or "other")


def paid_per_visit(history: History, by: str | Sequence[str] | None = "payer") -> pd.DataFrame:
    """Average paid per adjudicated visit (payer paid + patient responsibility).

    Columns: the group keys, ``visits``, ``payer_paid``, ``patient_responsibility``,
    ``per_visit`` and ``payer_paid_per_visit``.
    """
    keys = _group_keys(by)
    adj = _take(history.period, _masks(history)["adjudicated"], (*keys, "visit", "paid", "patient_responsibility"))
    out = _agg(adj, keys, {"visits": ("visit", "nunique"), "payer_paid": ("paid", "sum"),
                           "patient_responsibility": ("patient_responsibility", "sum")})
    visits = out["visits"].where(out["visits"] > 0)
    out["per_visit"] = to_cents(((out["payer_paid"] + out["patient_responsibility"]) / visits).to_numpy(dtype=float))
    out["payer_paid_per_visit"] = to_cents((out["payer_paid"] / visits).to_numpy(dtype=float))
    for c in ("payer_paid", "patient_responsibility"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


def paid_lines(history: History) -> pd.DataFrame:
    """The period's insurance lines a payer paid: adjudicated, not denied, something paid."""
    return history.period[_masks(history)["paid"]]


def paid_line_mask(history: History) -> np.ndarray:
    """Which of the period's lines (``history.period``) :func:`paid_lines` keeps, as a boolean array."""
    return _masks(history)["paid"]


def adjudicated_insurance_mask(history: History) -> np.ndarray:
    """Which of the period's lines (``history.period``) are insurance lines with a payer's answer."""
    return _masks(history)["adjudicated"]


def _paid(history: History, columns: Sequence[str]) -> pd.DataFrame:
    """:func:`paid_lines` with only ``columns``."""
    return _take(history.period, _masks(history)["paid"], columns)


def paid_per_unit(history: History, by: str | Sequence[str] = ("payer", "cpt")) -> pd.DataFrame:
    """Average paid per unit (payer paid + patient responsibility) on the lines a payer paid.

    Units are the 835's paid units (``SVC05``), else the units the rules engine counts.
    Columns: the group keys, ``lines``, ``units``, ``paid``, ``per_unit``.
    """
    keys = _group_keys(by)
    p = _paid(history, (*keys, "paid_units", "units", "paid", "patient_responsibility"))
    units = np.where(np.isfinite(p["paid_units"].to_numpy(dtype=float)) & (p["paid_units"].to_numpy(dtype=float) > 0),
                     p["paid_units"].to_numpy(dtype=float), p["units"].to_numpy(dtype=float))
    work = p.assign(n=1, u=units, total=p["paid"] + p["patient_responsibility"])
    out = _agg(work, keys, {"lines": ("n", "sum"), "units": ("u", "sum"), "paid": ("total", "sum")})
    out["per_unit"] = to_cents((out["paid"] / out["units"].where(out["units"] > 0)).to_numpy(dtype=float))
    out["paid"] = to_cents(out["paid"].to_numpy(dtype=float))
    out["units"] = out["units"].astype(np.int64)
    return _with_payer_name(out, history)


# ---------------------------------------------------------------------------------------
# Underpayments and rates against Medicare
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Underpayments:
    """Paid lines that came in below the contract.

    Attributes
    ----------
    lines
        One row per underpaid line: ``line_id, claim_id, payer_claim_id, payer_id, payer,
        cpt, month, expected, paid, shortfall`` (no patient identifiers).
    summary
        By payer, code and month of service, over every compared line: ``lines``,
        ``expected``, ``paid``, ``pct_of_contract`` (paid / expected), ``underpaid_lines``,
        ``recoverable`` (sum of shortfalls) and ``claims`` (claims to appeal).
    claims
        The claims to appeal, largest shortfall first: ``claim_id, payer_claim_id, payer_id,
        payer, month, codes, lines, expected, paid, recoverable``.
        A claim number built from a patient's name in the inputs (``SMITH-JOHN-0423``) has
        the name starred here (``*****-****-0423``) and is ``ID-`` and its keyed pseudonym in
        ``lines`` (one per claim, so counts of claims stay exact); other claim numbers are
        kept as they are (:func:`analytics.privacy.mask_names_in_ids`).
    tolerance
        Shortfalls at or under this many dollars per line are treated as rounding.
    """

    lines: pd.DataFrame
    summary: pd.DataFrame
    claims: pd.DataFrame
    tolerance: float

    @property
    def recoverable(self) -> float:
        """Total recoverable dollars."""
        return float(to_cents(self.lines["shortfall"].sum()))

    def highlights(self, freq: str = "Q", top: int = 3) -> pd.DataFrame:
        """The largest underpayments by payer, code and quarter (``freq="Q"``) or month.

        Columns ``payer_id, payer, cpt, period`` (e.g. ``Q3 2025``), ``pct_of_contract``,
        ``recoverable``, ``claims``.
        """
        s = self.summary
        if s.empty:
            return s.assign(period=pd.Series(dtype=str))
        per = s["month"].dt.to_period(freq)
        label = ("Q" + per.dt.quarter.astype(str) + " " + per.dt.year.astype(str)) if freq == "Q" else per.astype(str)
        g = s.assign(period=label.to_numpy(), _order=per.dt.start_time.to_numpy()).groupby(
            ["payer_id", "payer", "cpt", "period", "_order"], sort=False, observed=True).agg(
            expected=("expected", "sum"), paid=("paid", "sum"), recoverable=("recoverable", "sum"))
        claims = self.lines.assign(
            period=(lambda p: ("Q" + p.dt.quarter.astype(str) + " " + p.dt.year.astype(str)) if freq == "Q"
                    else p.astype(str))(self.lines["month"].dt.to_period(freq)).to_numpy()
        ).groupby(["payer_id", "cpt", "period"])["claim_id"].nunique().rename("claims")
        g = g.reset_index().merge(claims.reset_index(), on=["payer_id", "cpt", "period"], how="left")
        g["claims"] = g["claims"].fillna(0).astype(np.int64)
        g["pct_of_contract"] = g["paid"] / g["expected"].where(g["expected"] > 0)
        g["recoverable"] = to_cents(g["recoverable"].to_numpy(dtype=float))
        g = g[g["recoverable"] > 0].sort_values(["recoverable", "_order"], ascending=[False, True], kind="stable")
        return g.head(top)[["payer_id", "payer", "cpt", "period", "pct_of_contract", "recoverable", "claims"]] \
            .reset_index(drop=True)


def underpayments(history: History, *, tolerance: float = 0.05) -> Underpayments:
    """Lines the payer paid below its contract, by payer, code and month of service.

    A line is compared when the payer paid it (adjudicated, not denied) and the rules engine
    says the contract pays it (``contract_expected`` > 0). Paid = payer paid + patient
    responsibility; expected = the contract's allowed less sequestration. A shortfall above
    ``tolerance`` dollars is recoverable; an appeal names the claim.

    Examples
    --------
    >>> u = underpayments(history)  # doctest: +SKIP
    >>> fmt_money(u.recoverable), len(u.claims)  # doctest: +SKIP
    ('$1,240', 31)
    """
    key = ("underpayments", type(tolerance).__name__, tolerance)
    return per_scope(history, key, lambda: _underpayments(history, tolerance))


# The dtype a frame gives a column of Python strings (pandas' default text dtype).
_TEXT_DTYPE = pd.DataFrame({"text": np.array(["x"], dtype=object)})["text"].dtype


def _text_column(values: pd.Series) -> Any:
    """A column's values for a new frame, which gets the dtype it would from ``values.to_numpy()``:
    text already in the default text dtype is passed as it is (no round trip through a million
    Python strings), anything else (no text in it at all, other dtypes) as its NumPy array."""
    if values.dtype == _TEXT_DTYPE and values.notna().any():
        return values.array
    return values.to_numpy()


def _month_start(dates: pd.Series) -> np.ndarray:
    """The first day of each date's month, in the dates' own unit (``dt.to_period("M").dt.to_timestamp()``)."""
    values = dates.to_numpy()
    return values.astype("datetime64[M]").astype(values.dtype)


def _underpayments(history: History, tolerance: float) -> Underpayments:
    p = _paid(history, ("contract_expected", "paid", "patient_responsibility", "service_date", "line_id", "claim_id",
                        "payer_claim_id", "payer_id", "payer", "cpt"))
    expected = p["contract_expected"].to_numpy(dtype=float)
    keep = np.isfinite(expected) & (expected > 0)
    p = p[keep]
    expected = expected[keep]
    got = (p["paid"] + p["patient_responsibility"]).to_numpy(dtype=float)
    short = expected - got
    under = short > tolerance
    month = p["service_date"].dt.to_period("M").dt.to_timestamp()
    work = pd.DataFrame({
        "line_id": _text_column(p["line_id"]),
        "claim_id": _text_column(p["claim_id"]), "payer_claim_id": _text_column(p["payer_claim_id"]),
        "payer_id": _text_column(p["payer_id"]), "payer": _text_column(p["payer"].astype(str)),
        "cpt": _text_column(p["cpt"]), "month": month.to_numpy(), "expected": expected, "paid": got,
        "shortfall": np.where(under, short, 0.0), "underpaid": under,
    })
    summary_ = work.assign(n=1, u=under.astype(np.int64)).groupby(
        ["payer_id", "payer", "cpt", "month"], sort=True).agg(
        lines=("n", "sum"), expected=("expected", "sum"), paid=("paid", "sum"), underpaid_lines=("u", "sum"),
        recoverable=("shortfall", "sum")).reset_index()
    claim_count = work[under].groupby(["payer_id", "cpt", "month"])["claim_id"].nunique().rename("claims")
    summary_ = summary_.merge(claim_count.reset_index(), on=["payer_id", "cpt", "month"], how="left")
    summary_["claims"] = summary_["claims"].fillna(0).astype(np.int64)
    summary_["pct_of_contract"] = summary_["paid"] / summary_["expected"]
    for c in ("expected", "paid", "recoverable"):
        summary_[c] = to_cents(summary_[c].to_numpy(dtype=float))
    lines = work[under].drop(columns="underpaid").reset_index(drop=True)
    claims = _claims_to_appeal(lines)
    for c in ("expected", "paid", "recoverable"):
        claims[c] = to_cents(claims[c].to_numpy(dtype=float))
    claims = claims.sort_values(["recoverable", "claim_id"], ascending=[False, True], kind="stable").reset_index(
        drop=True)
    for c in ("expected", "paid", "shortfall"):
        lines[c] = to_cents(lines[c].to_numpy(dtype=float))
    lines, claims = _claim_ids_without_names(history, lines, claims)
    return Underpayments(lines=lines, summary=summary_, claims=claims, tolerance=tolerance)


def _claims_to_appeal(lines: pd.DataFrame) -> pd.DataFrame:
    """The underpaid lines by claim (first appearance order): ``month`` (the first), ``codes``
    (the claim's distinct codes, sorted, joined by ", "), ``lines`` and the dollar sums."""
    grouped = lines.groupby(["claim_id", "payer_claim_id", "payer_id", "payer"], sort=False)
    claims = grouped.agg(month=("month", "min"), lines=("cpt", "size"), expected=("expected", "sum"),
                         paid=("paid", "sum"), recoverable=("shortfall", "sum")).reset_index()
    number, codes = grouped.ngroup().to_numpy(), pd.Series(lines["cpt"])
    code, distinct = pd.factorize(codes, sort=True)
    if lines.empty or len(distinct) > 62 or (code < 0).any() or np.isnan(number.astype(float)).any():
        # beyond what one 64-bit set of codes per claim holds, or a missing code or key: claim by claim
        joined = grouped["cpt"].agg(lambda s: ", ".join(sorted(set(s)))).array
    else:
        # each claim's set of codes as bits (codes numbered in sorted order), written once per distinct set
        bits = np.zeros(len(claims), dtype=np.int64)
        np.bitwise_or.at(bits, number.astype(np.int64), np.left_shift(1, code.astype(np.int64)))
        sets, at = np.unique(bits, return_inverse=True)
        names = [str(c) for c in distinct]
        words = [", ".join(names[j] for j in range(len(names)) if s >> j & 1) for s in sets.tolist()]
        joined = np.asarray(words, dtype=object)[at.reshape(-1)]
    claims.insert(claims.columns.get_loc("month") + 1, "codes", joined)
    return claims


def input_identifiers(history: History):
    """The patients' names and ids in the files ``history`` was read from (its export and 835s).

    The export is the first of :attr:`History.files` (as :func:`load_history` lists them), read
    through the ``mapping.yaml`` among them; the other files that are not YAML are the 835s. A
    file no longer on disk is passed over. Read once per set of files and their sizes and
    modification times.

    Returns
    -------
    analytics.privacy.Identifiers
    """
    stamped = []
    for name in map(str, history.files):
        try:
            stat = Path(name).stat()
        except OSError:
            continue
        stamped.append((name, stat.st_size, stat.st_mtime_ns))
    return _identifiers_of(tuple(stamped))


@functools.lru_cache(maxsize=8)
def _identifiers_of(stamped: tuple[tuple[str, int, int], ...]):
    import yaml

    from analytics.privacy import Identifiers, identifiers_from_835, identifiers_from_export

    paths = [Path(name) for name, _, _ in stamped]
    data = [p for p in paths if p.suffix.lower() not in (".yaml", ".yml")]
    if not data:
        return Identifiers()
    mapping = next((yaml.safe_load(p.read_text()) for p in paths if p.name == "mapping.yaml"), None)
    mapping = mapping if isinstance(mapping, dict) else None
    export = identifiers_from_export(data[0], mapping=mapping, sheet=mapping.get("sheet") if mapping else None)
    return export | identifiers_from_835(data[1:])


def _claim_ids_without_names(history: History, lines: pd.DataFrame,
                             claims: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``claim_id`` and ``payer_claim_id`` with the patients' names taken out (see :class:`Underpayments`)."""
    from analytics.privacy import Matcher, mask_names_in_ids, resolve_key

    found = input_identifiers(history)
    if not found.names or (lines.empty and claims.empty):
        return lines, claims
    matcher = Matcher(found)
    key = resolve_key(near=list(history.files)[:1])
    columns = [c for c in ("claim_id", "payer_claim_id") if c in claims.columns]
    claims = claims.assign(**{c: mask_names_in_ids(claims[c], matcher) for c in columns})
    lines = lines.assign(**{c: mask_names_in_ids(lines[c], matcher, key=key) for c in columns})
    return lines, claims


def _may_hold_a_name(values: pd.Series) -> bool:
    """Whether any of ``values`` could hold a word of a patient's name.

    The privacy guard reads names as words of two letters or more
    (:class:`analytics.privacy.Identifiers`); numbers whose letters stand alone (``C048172``)
    hold none.
    """
    texts = pd.Series(pd.unique(values.dropna().astype(str).to_numpy(dtype=object)), dtype=object)
    return bool(texts.str.contains(r"[^\W\d_]{2}", regex=True).any())


def mask_claim_ids(history: History, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with patients' names starred out of its ``claim_id`` and ``payer_claim_id``.

    For a table shown on a page (the denial-risk worklist, for example): a practice whose
    claim numbers are built from names (``SMITH-JOHN-0423``) keeps the rest of the number, so
    the biller can still find the claim.
    """
    from analytics.privacy import Matcher, mask_names_in_ids

    columns = [c for c in ("claim_id", "payer_claim_id") if c in frame.columns]
    if not any(_may_hold_a_name(frame[c]) for c in columns):
        return frame  # no inputs read for names that could not be there
    found = input_identifiers(history)
    if not columns or not found.names or frame.empty:
        return frame
    matcher = Matcher(found)
    return frame.assign(**{c: mask_names_in_ids(frame[c], matcher) for c in columns})


def percent_of_medicare(
    history: History,
    *,
    locality: str | None = None,
    year: int | None = None,
    reference: Reference | None = None,
) -> pd.DataFrame:
    """Each payer's effective percent of Medicare per code, at the practice's locality.

    For the lines each payer paid, what it paid (payer + patient responsibility) is set
    against the Medicare fee schedule amount for the same code and units: the fee of
    ``year`` (``None``/0: the year of service) for ``locality`` (default: the practice's).
    The comparison is per unit, as contracts quote it, so payment policies show in the
    effective percent: Medicare's own MPPR (every unit after the first loses half its
    practice expense) puts Medicare itself below 100%, and a per-visit cap lowers a
    payer's figure.

    Returns
    -------
    DataFrame
        ``payer_id, payer, cpt, lines, units, paid, medicare, pct_of_medicare`` and
        ``contract`` (the policy's percent of Medicare, NaN for other fee bases).
    """
    if reference is not None:
        return _percent_of_medicare(history, locality, year, reference)
    return per_scope(history, ("percent_of_medicare", locality, year),
                     lambda: _percent_of_medicare(history, locality, year, None))


def _percent_of_medicare(history: History, locality: str | None, year: int | None,
                         reference: Reference | None) -> pd.DataFrame:
    from analytics.edits import DISPOSITIONS

    ref = reference or load_reference()
    loc = locality or history.locality
    p = _paid(history, ("cpt", "paid_units", "units", "patient_id", "service_date", "provider_id", "modifiers",
                        "payer_id", "paid", "patient_responsibility"))
    p = p[p["cpt"].astype(str).isin(ref.codes["cpt"]).to_numpy()]  # no Medicare price outside the catalog
    units = np.where(np.isfinite(p["paid_units"].to_numpy(dtype=float)) & (p["paid_units"].to_numpy(dtype=float) > 0),
                     p["paid_units"].to_numpy(dtype=float), p["units"].to_numpy(dtype=float)).astype(np.int64)
    bench_id = "_medicare_benchmark"
    bench = {bench_id: PayerPolicy.from_dict(bench_id, {
        "kind": "medicare", "fee": {"basis": "medicare", "locality": loc, "year": int(year) if year else None},
        "mppr": False}, where="Medicare benchmark")}
    frame = pd.DataFrame({
        "patient_id": _text_column(p["patient_id"]), "service_date": p["service_date"].to_numpy(),
        "provider_id": _text_column(p["provider_id"]), "payer_id": bench_id, "cpt": _text_column(p["cpt"]),
        "modifiers": _text_column(p["modifiers"]), "units": units,
        "disposition": pd.Categorical.from_codes(np.full(len(p), list(DISPOSITIONS).index("payable")),
                                                 categories=DISPOSITIONS),
    })
    medicare = _medicare_allowed(frame, bench, ref)
    ok = np.isfinite(medicare) & (medicare > 0)
    work = pd.DataFrame({"payer_id": _text_column(p["payer_id"][ok]), "cpt": _text_column(p["cpt"][ok]),
                         "units": units[ok], "paid": (p["paid"] + p["patient_responsibility"]).to_numpy()[ok],
                         "medicare": medicare[ok], "n": 1})
    out = work.groupby(["payer_id", "cpt"], sort=True).agg(
        lines=("n", "sum"), units=("units", "sum"), paid=("paid", "sum"), medicare=("medicare", "sum")).reset_index()
    out["pct_of_medicare"] = out["paid"] / out["medicare"]
    out["contract"] = out["payer_id"].map(
        {pid: (pol.fee.percent / 100.0 if pol.fee.basis == "percent_of_medicare"
               else 1.0 if pol.fee.basis == "medicare" else np.nan) for pid, pol in history.payers.items()})
    for c in ("paid", "medicare"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


def _medicare_allowed(frame: pd.DataFrame, bench: Mapping[str, PayerPolicy], ref: Reference) -> np.ndarray:
    """What the Medicare benchmark allows each line of ``frame``, priced once per distinct line.

    The benchmark has neither MPPR nor a visit cap, so a line's amount depends on its own date of
    service, provider, code, modifiers and units only: the lines alike are priced once (a
    million paid lines are a few thousand distinct ones). Should pricing fail (no rates for a
    fee-schedule year, say), every line is priced as it is, so the error names the lines.
    """
    from analytics._frame import distinct_rows
    from analytics.pricing import price_lines

    if not len(frame):
        return np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            coded = [pd.factorize(frame[c], use_na_sentinel=False)[0]
                     for c in ("service_date", "provider_id", "cpt", "modifiers")]
            line, first = distinct_rows([*coded, frame["units"].to_numpy()])
            priced = price_lines(frame.iloc[first].reset_index(drop=True), bench, ref)
            return priced["allowed"].to_numpy(dtype=float, na_value=np.nan)[line]
        except Exception:  # noqa: BLE001 - the lines one by one raise the error that names them
            priced = price_lines(frame, bench, ref)
    return priced["allowed"].to_numpy(dtype=float, na_value=np.nan)


def at_locality(history: History, locality: str | None = None, *, reference: Reference | None = None) -> History:
    """The history with its payers priced off the Medicare fee schedule at one locality.

    One locality per run applies to every page: ``locality`` (a report's ``-p locality``),
    else the practice's (``locality`` in practice.yaml). Every payer whose fee basis is
    ``medicare`` or ``percent_of_medicare`` is set to it
    (:func:`analytics.scenarios.with_fee_schedule`, as the scenarios page does) and the
    contract columns (``units``, ``engine_disposition``, ``edit_reason``,
    ``contract_allowed``, ``contract_expected``) are priced again, so the contract prices,
    the Medicare benchmark of :func:`percent_of_medicare` and the scenarios agree. With
    neither, or when every such payer is already there, the history is returned unchanged.

    Examples
    --------
    >>> h = at_locality(load_history("data/sample"), "01182-18")  # doctest: +SKIP
    >>> {p.fee.locality for p in h.payers.values() if p.fee.basis != "flat"}  # doctest: +SKIP
    {'01182-18'}
    """
    from analytics.scenarios import with_fee_schedule

    loc = str(locality or history.practice.get("locality") or "").strip()
    if not loc:
        return history
    payers = with_fee_schedule(history.payers, locality=loc)
    practice = {**history.practice, "locality": loc}
    if payers == dict(history.payers):
        return dataclasses.replace(history, practice=practice)
    base = history.base
    if "not_priced" not in base.columns:
        base = base.assign(not_priced="")
    contract, _ = contract_prices(base, payers, reference or load_reference())  # notes kept from the first pricing
    priced = base.assign(**contract)
    return dataclasses.replace(history, base=priced, payers=payers, practice=practice).select()


# ---------------------------------------------------------------------------------------
# Words for the page: analytics.narratives
# ---------------------------------------------------------------------------------------

# The sentences of the pages are in analytics.narratives, which imports the figures above, so
# importing it at the top of this module would be circular. They are looked up there on first
# use instead (a module __getattr__, PEP 562): ``kpis.heading(...)`` in the notebooks and
# ``from analytics.kpis import heading`` keep working.
_NARRATIVES = frozenset({"heading", "revenue_narrative", "denials_narrative", "contracts_narrative", "data_notes"})


def __getattr__(name: str) -> Any:
    if name in _NARRATIVES:
        from analytics import narratives

        return getattr(narratives, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _NARRATIVES)
