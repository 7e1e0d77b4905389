"""The sentences of the report pages, written from the figures of :mod:`analytics.kpis`.

Each function takes a scoped :class:`~analytics.history.History` and returns Markdown: a
heading naming the practice, period and selection, and bullets on revenue, denials and
contracts. Every number in them is formatted by :func:`analytics.kpis.fmt_money`,
:func:`~analytics.kpis.fmt_pct` or :func:`~analytics.kpis.fmt_days` from the same figures the
tables show, so a page's words and tables agree to the character. A scope without lines,
without insurance or without remittances gets a sentence saying so instead of empty figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from analytics.history import History
from analytics.kpis import (
    by_payer,
    denial_reasons,
    denials_by_payer,
    fmt_days,
    fmt_money,
    fmt_pct,
    insurance,
    paid_lines,
    percent_of_medicare,
    summary,
    underpayments,
)

__all__ = [
    "heading",
    "revenue_narrative",
    "denials_narrative",
    "contracts_narrative",
    "data_notes",
]


def heading(history: History, title: str = "", practice_name: str = "") -> str:
    """Markdown heading: title, practice, period, as-of date and the payers/providers covered.

    When some of the payers selected have no line in the period, a sentence names them and
    the payers the figures are for.
    """
    name = practice_name or history.practice_name or "The practice"
    who = []
    if history.payer_ids:
        who.append("payers: " + ", ".join(_payer_names(history, history.payer_ids)))
    if history.provider_ids:
        who.append("providers: " + ", ".join(history.provider_ids))
    scope = ("; " + "; ".join(who)) if who else ""
    text = (f"# {title or 'Practice report'}\n\n**{name}**  \n"
            f"Services from {history.start.date()} to {history.end.date()}; "
            f"remittances and A/R as of {history.as_of.date()}{scope}.")
    absent = _payers_without_claims(history)
    shown = [p for p in history.payer_ids if p not in absent]
    if absent and shown:  # with no payer shown at all, the summary says so
        text += (f"\n\n{_no_claims_sentence(history, absent)[:-1]}; the figures below are for "
                 f"{_joined(_payer_names(history, shown), 'and')} only.")
    return text


def _payer_names(history: History, ids: Iterable[str]) -> list[str]:
    return [history.payers[i].name or i if i in history.payers else i for i in ids]


def _payers_without_claims(history: History) -> list[str]:
    """The selected payers with no line in the period (none when every payer is selected)."""
    if not history.payer_ids:
        return []
    present = set(pd.unique(history.period["payer_id"].astype(str)))
    return [p for p in history.payer_ids if p not in present]


def _joined(words: Sequence[str], last: str) -> str:
    """``a``, ``a and b``, ``a, b and c`` (``last`` is the final joining word)."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _no_claims_sentence(history: History, payer_ids: Sequence[str]) -> str:
    """E.g. "No claims for Blue Choice PPO in this period." """
    return f"No claims for {_joined(_payer_names(history, payer_ids), 'or')} in this period."


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _nothing_selected(history: History, consequence: str) -> str:
    """The sentence for a scope without a single line: which payers had none, and what follows."""
    absent = _payers_without_claims(history)
    if absent and not history.provider_ids:
        return _no_claims_sentence(history, absent)[:-1] + f": {consequence}."
    return f"No services in this period for the payers and providers selected: {consequence}."


def _insurance_lines(history: History) -> int:
    """Number of insurance (not self-pay) lines in the period."""
    return int((~history.period["self_pay"].to_numpy()).sum())


_NO_REMITTANCE = "No remittance (835) covers services in this period"


def _bullets(sentences: Iterable[str]) -> str:
    return "\n".join(f"- {s}" for s in sentences if s)


def revenue_narrative(history: History) -> str:
    """A few sentences on revenue, collections and A/R, written from the figures (Markdown)."""
    s = summary(history)
    if s["lines"] == 0:
        return "- " + _nothing_selected(history, "nothing was billed, paid or left open")
    billed = (f"{_plural(s['visits'], 'visit was', 'visits were')} billed {fmt_money(s['gross_charges'])} in charges "
              f"({fmt_money(s['self_pay_charges'])} self-pay).")
    if _insurance_lines(history) == 0:
        out = [billed, "Every visit in this period was self-pay: no insurance claims, so no collection or "
                       "first-pass rates."]
    elif s["adjudicated_lines"] == 0:
        out = [billed, f"{_NO_REMITTANCE}; every charge is still open, so there is no net collection rate or "
                       "first-pass rate for it yet."]
    else:
        gap = (s["adjudicated_charges"] - s["contractual_adjustments"] - s["payer_paid"]
               - s["patient_responsibility"])
        rest = ("nothing was left uncollected" if abs(gap) < 1 and s["denied_amount"] < 1
                else f"the rest ({fmt_money(gap)}) was denied" if abs(gap - s["denied_amount"]) < 1
                else f"of the {fmt_money(gap)} not collected, denials account for {fmt_money(s['denied_amount'])}")
        out = [
            f"{billed} Payers allowed {fmt_money(s['allowed'])}, paid "
            f"{fmt_money(s['payer_paid'])} and left {fmt_money(s['patient_responsibility'])} to patients.",
            f"Net collection rate {fmt_pct(s['net_collection_rate'])}: of charges less contractual write-downs, "
            f"that share was paid by payers or owed by patients; {rest}. "
            f"{fmt_pct(s['first_pass_resolution_rate'])} of claims were resolved on the first pass.",
        ]
    bp = by_payer(history).dropna(subset=["net_collection_rate"])
    if len(bp) > 1:
        worst = bp.sort_values("net_collection_rate", kind="stable").iloc[0]
        best = bp.sort_values("net_collection_rate", ascending=False, kind="stable").iloc[0]
        out.append(f"By payer, {best['payer']} collected best ({fmt_pct(best['net_collection_rate'])}) and "
                   f"{worst['payer']} worst ({fmt_pct(worst['net_collection_rate'])}).")
    if s["ar_balance"] > 0:
        out.append(f"Insurance A/R as of {history.as_of.date()}: {fmt_money(s['ar_balance'])}, "
                   f"{fmt_days(s['days_in_ar'])} of charges; {fmt_money(s['ar_over_90'])} is over 90 days old.")
    else:
        out.append(f"No insurance claim was waiting on a payer as of {history.as_of.date()}.")
    if s["unbilled_charges"] > 0:
        out.append(f"{fmt_money(s['unbilled_charges'])} of services had not been billed by then.")
    return _bullets(out)


def denials_narrative(history: History) -> str:
    """A few sentences on denials: rate, dollars, the payers and reasons that matter most."""
    s = summary(history)
    if s["lines"] == 0:
        return "- " + _nothing_selected(history, "no denial rate to report")
    ins = _insurance_lines(history)
    if ins == 0:
        return "- Every visit in this period was self-pay: no insurance lines, so no denial rate."
    if s["adjudicated_lines"] == 0:
        return ("- Nothing has been adjudicated yet: no remittance (835) covers services in this period, so there is "
                f"no denial rate for its {_plural(ins, 'insurance line', 'insurance lines')}.")
    out = [f"Payers denied {s['denied_lines']:,} of "
           f"{_plural(s['adjudicated_lines'], 'adjudicated line', 'adjudicated lines')} "
           f"({fmt_pct(s['denial_rate'])}), {fmt_money(s['denied_amount'])} in charges."]
    dp = denials_by_payer(history)
    dp = dp[dp["lines"] >= 10]
    if len(dp):
        top = dp.iloc[0]
        out.append(f"{top['payer']} denies most often: {fmt_pct(top['rate'])} of lines "
                   f"(95% interval {fmt_pct(top['low'])} to {fmt_pct(top['high'])}).")
    reasons = denial_reasons(history)
    if len(reasons):
        r = reasons.iloc[0]
        out.append(f"The leading reason is {r['reason']}: {fmt_money(r['denied_amount'])} across "
                   f"{_plural(r['lines'], 'line', 'lines')} ({fmt_pct(r['share'], 0)} of denied dollars).")
        k = int((reasons["cumulative_share"] < 0.8).sum()) + 1
        if 1 < k < len(reasons):
            out.append(f"{k} reasons account for 80% of denied dollars; fixing them first pays most.")
    return _bullets(out)


def contracts_narrative(history: History, *, locality: str | None = None, year: int | None = None,
                        tolerance: float = 0.05) -> str:
    """Sentences on underpayments against contract and each payer's rate against Medicare.

    E.g. "Gold PPO paid 90.9% of contract on 97140 in Q3 2025; $1,240 recoverable across 31 claims."
    """
    nothing = _nothing_to_compare(history)
    if nothing:
        return "- " + nothing
    u = underpayments(history, tolerance=tolerance)
    out = []
    compared = int(u.summary["lines"].sum())
    if compared == 0:
        out.append(f"{_plural(len(paid_lines(history)), 'line was', 'lines were')} paid, but the policies in "
                   "payers.yaml give no contract amount for them: nothing to compare.")
    elif u.lines.empty:
        out.append("Every paid line matched its contract (within "
                   f"{fmt_money(tolerance, cents=True)} a line): nothing to appeal.")
    else:
        out.append(f"{fmt_money(u.recoverable)} is recoverable across {_plural(len(u.claims), 'claim', 'claims')} paid "
                   "below contract.")
        for r in u.highlights().itertuples(index=False):
            out.append(f"{r.payer} paid {fmt_pct(r.pct_of_contract)} of contract on {r.cpt} in {r.period}; "
                       f"{fmt_money(r.recoverable)} recoverable across {_plural(r.claims, 'claim', 'claims')}.")
    pm = percent_of_medicare(history, locality=locality, year=year)
    if len(pm):
        per_payer = pm.groupby(["payer_id", "payer"], sort=False)[["paid", "medicare"]].sum()
        per_payer = (per_payer["paid"] / per_payer["medicare"]).sort_values(ascending=False)
        loc = locality or history.locality
        where = "national rates" if loc == "00000-00" else f"locality {loc}"
        out.append("Against Medicare (" + where + "): " + "; ".join(
            f"{name} {fmt_pct(v, 0)}" for (_, name), v in per_payer.items()) + ".")
    return _bullets(out)


def _nothing_to_compare(history: History) -> str:
    """Why no line of the scope was paid (empty when some line was): the contracts page says it."""
    if len(paid_lines(history)):
        return ""
    what = "nothing paid to compare with the contracts or with Medicare"
    p = history.period
    if p.empty:
        return _nothing_selected(history, what)
    ins = insurance(p)
    if ins.empty:
        return f"Every visit in this period was self-pay: {what}."
    if not ins["adjudicated"].any():
        return f"{_NO_REMITTANCE}: {what} yet."
    return f"Payers paid nothing on the lines of this period (each was denied or adjusted to $0): {what}."


def data_notes(history: History) -> str:
    """The history's data notes as Markdown bullets (empty when there are none)."""
    return _bullets(history.notes)
