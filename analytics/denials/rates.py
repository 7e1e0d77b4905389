"""Denial rates with empirical-Bayes shrinkage, by payer, code, modifiers and category.

Groups are counted with a beta-binomial prior fitted across them, so that a payer with three
claims is not shown at 0% or 100%, with credible intervals and the dollars at risk;
:func:`top_reasons` names the denial reasons that cost the most.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.denials.outcomes import DENIAL_OUTCOMES
from analytics.exceptions import InputError

__all__ = ["denial_rates", "fit_beta_prior", "monthly_trend", "shrunk_rates", "top_reasons"]


def _denied_flag(frame: pd.DataFrame) -> np.ndarray:
    if "outcome" in frame.columns:
        return frame["outcome"].astype(str).isin(DENIAL_OUTCOMES).to_numpy()
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
    # Beta quantiles as the inverse regularised incomplete beta function (what
    # scipy.stats.beta.ppf computes), without importing scipy.stats
    from scipy.special import betaincinv

    a1 = a + k
    b1 = b + n - k
    out = {"rate": a1 / (a1 + b1)}
    for lev in levels:
        tail = (1 - lev) / 2
        pct = f"{round(lev * 100):d}"
        out[f"rate_lo_{pct}"] = betaincinv(a1, b1, tail)
        out[f"rate_hi_{pct}"] = betaincinv(a1, b1, 1 - tail)
    return out


def _rate_frame(outcomes: pd.DataFrame, by: list[str], denied: np.ndarray) -> pd.DataFrame:
    """The outcomes with the denial flag, charges and denied dollars of each line, and missing
    grouping values as ``""``."""
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
    return frame


def _count_table(frame: pd.DataFrame, by: list[str], denied: np.ndarray) -> pd.DataFrame:
    """Lines, denials, charges and denied dollars per group (every category seen in the data
    for every group when grouping by category)."""
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
    return table


def _group_priors(table, by, prior, prior_by, min_groups, strength):
    """The prior Beta(a, b) of each row of ``table`` and how it was obtained, fitted (or given)
    within each level of ``prior_by``."""
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
    return a, b, basis


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
    frame = _rate_frame(outcomes, by, denied)
    table = _count_table(frame, by, denied)
    return shrunk_rates(table, by, prior=prior, prior_by=prior_by, min_groups=min_groups, strength=strength)


def shrunk_rates(
    counts: pd.DataFrame,
    by: tuple[str, ...] | list[str],
    *,
    prior: tuple[float, float] | float | None = None,
    prior_by: tuple[str, ...] | list[str] | None = None,
    min_groups: int = 5,
    strength: float = 10.0,
) -> pd.DataFrame:
    """:func:`denial_rates` from lines and denials already counted per group.

    ``counts`` has the ``by`` columns, ``lines`` and ``denied`` (and ``charges``,
    ``denied_dollars`` when known, else 0), one row per group in the order wanted; the other
    parameters and the columns returned are those of :func:`denial_rates`, which counts the
    lines and calls it. A million lines counted with integer codes need no text column.

    Examples
    --------
    >>> c = pd.DataFrame({"payer_id": ["a", "b"], "lines": [3, 100], "denied": [3, 0]})
    >>> r = shrunk_rates(c, ("payer_id",))
    >>> r["raw_rate"].tolist(), bool(r.loc[0, "rate"] < 1)
    ([1.0, 0.0], True)
    """
    by = list(by)
    table = counts.copy()
    for c in ("charges", "denied_dollars"):
        if c not in table.columns:
            table[c] = 0.0
    table["lines"] = table["lines"].astype(np.int64)
    table["denied"] = table["denied"].astype(np.int64)
    a, b, basis = _group_priors(table, by, prior, prior_by, min_groups, strength)
    k = table["denied"].to_numpy(dtype=float)
    n = table["lines"].to_numpy(dtype=float)
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


def top_reasons(outcomes: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The denial reasons (group code + CARC) that cost the most, with lines and payers."""
    den = outcomes[outcomes["outcome"].isin(DENIAL_OUTCOMES)]
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
