"""The sentences of the report pages, written from the figures of :mod:`analytics.kpis`.

Each function takes a scoped :class:`~analytics.history.History` and returns Markdown: a
heading naming the practice, period and selection, and bullets on revenue, denials and
contracts. Every number in them is formatted by :func:`analytics.kpis.fmt_money`,
:func:`~analytics.kpis.fmt_pct` or :func:`~analytics.kpis.fmt_days` from the same figures the
tables show, so a page's words and tables agree to the character. A scope without lines,
without insurance or without remittances gets a sentence saying so instead of empty figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from analytics.history import History
from analytics.kpis import (
    adjudicated_insurance_mask,
    by_payer,
    denial_reasons,
    denials_by_payer,
    fmt_days,
    fmt_money,
    fmt_pct,
    insurance,
    paid_line_mask,
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
    "RECOMMENDATION_COLUMNS",
    "recommendation_table",
    "recommendations_markdown",
    "denial_actions",
    "underpayment_actions",
    "denials_recommendations",
    "revenue_recommendations",
    "contracts_recommendations",
    "denial_risk_recommendations",
    "scenarios_recommendations",
    "denial_risk_narrative",
    "whatif_narrative",
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
        out.append(f"{_plural(int(paid_line_mask(history).sum()), 'line was', 'lines were')} paid, but the policies in "
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
    if paid_line_mask(history).any():
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


# ---------------------------------------------------------------------------------------
# Recommendations: up to five actions in dollars, each resting on one row of a page's table
# ---------------------------------------------------------------------------------------

#: Columns of every recommendations table (:func:`recommendation_table`).
RECOMMENDATION_COLUMNS = ("rank", "action", "dollars", "source", "payer", "code", "lines", "count")


def recommendation_table(rows: Sequence[Mapping[str, object]], top: int = 5) -> pd.DataFrame:
    """The actions, largest dollars first (at most ``top``), as a table.

    Each row: ``rank``, ``action`` (the sentence), ``dollars`` (the figure it cites),
    ``source`` (the table of the page whose row holds the figures, and that row), ``payer``,
    ``code``, ``lines`` and ``count`` (the lines and the denials or claims it counts).
    """
    frame = pd.DataFrame(list(rows), columns=[c for c in RECOMMENDATION_COLUMNS if c != "rank"])
    frame = frame[frame["dollars"].astype(float) > 0.5]
    frame = frame.sort_values(["dollars", "action"], ascending=[False, True], kind="stable").head(top)
    frame.insert(0, "rank", range(1, len(frame) + 1))
    return frame.reset_index(drop=True)


def recommendations_markdown(table: pd.DataFrame) -> str:
    """The actions as a numbered Markdown list under "What to do next" (a sentence when none)."""
    if table.empty:
        return "**What to do next**\n\n- Nothing stands out in this period: no action is worth a dollar figure."
    items = "\n".join(f"{int(r.rank)}. {r.action}" for r in table.itertuples(index=False))
    return f"**What to do next** (largest dollars first; the figures are in the table below)\n\n{items}"


def _name(history: History, payer_id: str) -> str:
    return _payer_names(history, [payer_id])[0]


def denial_actions(history: History) -> pd.DataFrame:
    """The period's denials by payer, reason category and code: the table the denials page's
    actions rest on.

    Columns ``payer_id, payer, category, cpt, lines`` (adjudicated insurance lines of that
    payer and code), ``denied_lines`` (of them, denied in that category), ``denied_amount``
    and ``carc`` (the most frequent CARC).
    """
    p = history.period
    adj = p[["payer_id", "cpt", "denied_amount", "denial_category", "denial_carc"]][adjudicated_insurance_mask(history)]
    cols = ["payer_id", "payer", "category", "cpt", "lines", "denied_lines", "denied_amount", "carc"]
    d = adj[(adj["denied_amount"] > 0.005).to_numpy()]
    if d.empty:
        return pd.DataFrame(columns=cols)
    lines = adj.groupby(["payer_id", "cpt"], observed=True).size().rename("lines")
    g = d.assign(category=d["denial_category"].astype(str).replace("", "other")).groupby(
        ["payer_id", "category", "cpt"], observed=True, sort=True).agg(
        denied_lines=("denied_amount", "size"), denied_amount=("denied_amount", "sum"),
        carc=("denial_carc", lambda s: s.astype(str).value_counts().index[0]))
    g = g.reset_index().join(lines, on=["payer_id", "cpt"])
    g["payer"] = [_name(history, p) for p in g["payer_id"]]
    g["denied_amount"] = g["denied_amount"].round(2)
    return g[cols].sort_values(["denied_amount", "payer_id", "cpt"], ascending=[False, True, True],
                               kind="stable").reset_index(drop=True)


def _category_label(category: str) -> str:
    """A CARC catalog category in words ("prescription_referral" -> "prescription referral")."""
    return str(category).replace("_", " ") or "other"


_PER_CODE = ("non_covered", "coverage", "bundling", "provider_eligibility", "medical_necessity")


def _column1(history: History, payer_id: str, cpt: str) -> tuple[str, str]:
    """The column-1 code a payer pairs ``cpt`` with, and the modifier it honours (XS default)."""
    from analytics.refdata import load_reference

    pol = history.payers.get(payer_id)
    for c1, c2, mods in getattr(getattr(pol, "ncci", None), "pairs", ()):
        if c2 == cpt:
            return c1, (list(mods) or ["XS"])[0]
    ptp = load_reference().ncci_ptp
    hit = ptp[(ptp["column2"].astype(str) == cpt) & (ptp["modifier_indicator"] == 1)]
    return (str(hit["column1"].iloc[0]), "XS") if len(hit) else ("", "")


def _denial_sentence(history: History, r) -> str:
    """The action for one row of :func:`denial_actions` (codes summed for per-payer categories)."""
    payer, k, n, money = r.payer, int(r.denied_lines), int(r.lines), fmt_money(r.denied_amount)
    cat, cpt = str(r.category), str(r.cpt)
    pol = history.payers.get(r.payer_id)
    if cat in ("non_covered", "coverage") or (cat == "bundling" and cpt == "97010"):
        return f"Stop billing {cpt} to {payer}: denied on {k:,} of {n:,} lines, {money}."
    if cat == "bundling":
        c1, mod = _column1(history, r.payer_id, cpt)
        if c1:
            return (f"When {cpt} and {c1} treat separate body regions, document it and bill {cpt}-{mod} at "
                    f"{payer}; otherwise bill one of the two: {k:,} bundling denials of {cpt}, {money}.")
        return f"Check the code pairs billed with {cpt} at {payer}: {k:,} bundling denials, {money}."
    if cat == "provider_eligibility":
        return (f"Have {payer}'s {cpt} services rendered by a provider type the plan pays: {k:,} denials, "
                f"{money}.")
    if cat == "medical_necessity":
        return (f"Record the diagnosis and plan of care that support {cpt} for {payer}: {k:,} medical-necessity "
                f"denials, {money}.")
    words = {
        "prescription_referral": f"Check prescriptions before {payer} visits",
        "authorization": f"Get the authorisation before {payer} visits that need one",
        "timely_filing": (f"Send {payer} claims within its {pol.timely_filing_days}-day filing limit"
                          if pol is not None and pol.timely_filing_days else f"Send {payer} claims sooner"),
        "benefit_max": f"Check the visits left on the plan before {payer} visits",
        "frequency": f"Check units and visit counts against {payer}'s limits",
        "eligibility": f"Verify {payer} eligibility before each visit",
    }
    lead = words.get(cat, f"Fix the claim data behind {payer}'s '{_category_label(cat)}' denials before resubmitting")
    return f"{lead}: {k:,} denials (CARC {r.carc}), {money}."


def denials_recommendations(history: History, top: int = 5) -> pd.DataFrame:
    """Up to ``top`` actions from the period's denials (:func:`recommendation_table`).

    A plan exclusion or a bundled 97010 becomes "stop billing"; a bundling denial "document
    separate regions and bill the X modifier, otherwise one code" (never billing what the
    notes do not show); prescriptions, authorisations, filing limits and visit limits become
    checks before the visit. Each row cites its row of :func:`denial_actions` (summed over
    codes for the per-payer reasons).
    """
    acts = denial_actions(history)
    rows = []
    if len(acts):
        per_code = acts[acts["category"].isin(_PER_CODE)]
        rest = acts[~acts["category"].isin(_PER_CODE)]
        if len(rest):
            lines = history.period["payer_id"][adjudicated_insurance_mask(history)]
            lines = lines.groupby(lines, observed=True).size()
            rest = rest.groupby(["payer_id", "payer", "category"], sort=True).agg(
                denied_lines=("denied_lines", "sum"), denied_amount=("denied_amount", "sum"),
                carc=("carc", "first")).reset_index().assign(cpt="all codes")
            rest["lines"] = rest["payer_id"].map(lines).fillna(0).astype(np.int64)
        for r in pd.concat([per_code, rest], ignore_index=True).itertuples(index=False):
            rows.append({"action": _denial_sentence(history, r), "dollars": round(float(r.denied_amount), 2),
                         "source": f"denials by payer, reason and code: {r.payer}, {_category_label(r.category)}, "
                                   f"{r.cpt}", "payer": r.payer, "code": r.cpt, "lines": int(r.lines),
                         "count": int(r.denied_lines)})
    return recommendation_table(rows, top)


def revenue_recommendations(history: History, top: int = 5) -> pd.DataFrame:
    """Up to ``top`` actions from the revenue figures: bill what is unbilled, chase A/R over 90
    days, work each payer's denials. Each cites a row of the headline, A/R or by-payer table."""
    from analytics.kpis import ar_aging

    rows = []
    s = summary(history)
    p = history.period
    unbilled = p[["claim_id"]][~p["self_pay"].to_numpy() & ~p["submitted"].to_numpy()]
    if s["unbilled_charges"] > 0:
        rows.append({"action": f"Bill the {len(unbilled):,} insurance lines not yet billed: "
                               f"{fmt_money(s['unbilled_charges'])} in charges.",
                     "dollars": float(s["unbilled_charges"]), "source": "headline: Not yet billed", "payer": "",
                     "code": "", "lines": len(unbilled), "count": int(unbilled["claim_id"].nunique())})
    aging = ar_aging(history)
    for r in aging.itertuples(index=False):
        old = float(r[aging.columns.get_loc("91-120")] + r[aging.columns.get_loc("over 120")])
        if old > 0:
            rows.append({"action": f"Follow up {r.payer}'s claims waiting over 90 days for an answer: "
                                   f"{fmt_money(old)} of {fmt_money(r.total)} open.",
                         "dollars": round(old, 2), "source": f"insurance A/R: {r.payer}", "payer": r.payer,
                         "code": "", "lines": int(r.lines), "count": int(r.claims)})
    for r in by_payer(history).itertuples(index=False):
        if r.denied_amount > 0:
            rows.append({"action": f"Work {r.payer}'s denials (the denials page names the reasons): "
                                   f"{fmt_money(r.denied_amount)} denied in this period.",
                         "dollars": float(r.denied_amount), "source": f"by payer: {r.payer}", "payer": r.payer,
                         "code": "", "lines": int(r.visits), "count": int(r.visits)})
    return recommendation_table(rows, top)


def underpayment_actions(history: History, *, tolerance: float = 0.05) -> pd.DataFrame:
    """Underpaid lines by payer and code over the period: ``payer_id, payer, cpt, months``
    (first to last month of service), ``lines``, ``claims`` and ``recoverable``."""
    u = underpayments(history, tolerance=tolerance).lines
    cols = ["payer_id", "payer", "cpt", "months", "lines", "claims", "recoverable"]
    if u.empty:
        return pd.DataFrame(columns=cols)
    g = u.groupby(["payer_id", "payer", "cpt"], sort=True).agg(
        first=("month", "min"), last=("month", "max"), lines=("shortfall", "size"),
        claims=("claim_id", "nunique"), recoverable=("shortfall", "sum")).reset_index()
    g["months"] = np.where(g["first"] == g["last"], g["first"].dt.strftime("%Y-%m"),
                           g["first"].dt.strftime("%Y-%m") + " to " + g["last"].dt.strftime("%Y-%m"))
    g["recoverable"] = g["recoverable"].round(2)
    return g[cols].sort_values(["recoverable", "payer_id", "cpt"], ascending=[False, True, True],
                               kind="stable").reset_index(drop=True)


def contracts_recommendations(history: History, top: int = 5, *, tolerance: float = 0.05) -> pd.DataFrame:
    """Up to ``top`` appeals: each payer and code paid below contract, with the claims to appeal
    (rows of :func:`underpayment_actions`)."""
    rows = [{"action": f"Appeal {r.payer}'s underpaid {r.cpt} claims ({r.months}): {fmt_money(r.recoverable)} "
                       f"recoverable across {_plural(int(r.claims), 'claim', 'claims')}.",
             "dollars": float(r.recoverable), "source": f"underpaid by payer and code: {r.payer}, {r.cpt}",
             "payer": r.payer, "code": r.cpt, "lines": int(r.lines), "count": int(r.claims)}
            for r in underpayment_actions(history, tolerance=tolerance).itertuples(index=False)]
    return recommendation_table(rows, top)


def denial_risk_recommendations(summary_: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Up to ``top`` actions from the worklist by payer and status
    (:func:`analytics.denials.worklist_summary`)."""
    rows = []
    for r in summary_.itertuples(index=False):
        if r.status == "not billed yet":
            what = (f"Before billing {r.payer}'s {_plural(int(r.lines), 'open line', 'open lines')}, work the "
                    f"checks on the worklist")
        else:
            what = f"Follow up {r.payer}'s {_plural(int(r.lines), 'billed line', 'billed lines')} with no 835 yet"
        certain = f", {int(r.certain):,} of them denied for certain as they stand" if r.certain else ""
        rows.append({"action": f"{what}: {fmt_money(r.dollars_at_risk)} at risk{certain}.",
                     "dollars": float(r.dollars_at_risk), "source": f"worklist by payer: {r.payer}, {r.status}",
                     "payer": r.payer, "code": "", "lines": int(r.lines), "count": int(r.claims)})
    return recommendation_table(rows, top)


def scenarios_recommendations(by_payer_: pd.DataFrame, top: int = 5) -> pd.DataFrame:
    """Up to ``top`` actions from the practice what-if by payer
    (:attr:`analytics.scenarios.PracticeWhatIf.by_payer`): code each visit its best documented
    way, and record separate regions or time blocks where the notes show them."""
    rows = []
    for r in by_payer_.itertuples(index=False):
        if r.difference_per_month > 0:
            rows.append({"action": f"At {r.payer}, bill each visit its best documented way (most often "
                                   f"{r.best_alternative}): {fmt_money(r.difference_per_month)} more a month in "
                                   f"expected collections, on {r.visits_improved:,} of {r.visits:,} visits.",
                         "dollars": float(r.difference_per_month), "source": f"practice what-if: {r.payer}",
                         "payer": r.payer, "code": "", "lines": int(r.visits), "count": int(r.visits_improved)})
        if r.if_documented_per_month > 0:
            rows.append({"action": f"At {r.payer}, when the notes show 97124 and 97140 (or another pair) on "
                                   "separate body regions or in separate time blocks, record it in the export: "
                                   f"up to {fmt_money(r.if_documented_per_month)} a month more with the right "
                                   f"modifier, on {r.unknown_visits:,} visits whose documentation is not in it.",
                         "dollars": float(r.if_documented_per_month), "source": f"practice what-if: {r.payer}",
                         "payer": r.payer, "code": "", "lines": int(r.visits), "count": int(r.unknown_visits)})
    return recommendation_table(rows, top)


def denial_risk_narrative(risk, worklist_: pd.DataFrame) -> str:
    """Sentences on the learned risk (how, from what, how well it did on the last months) and
    on the worklist (Markdown bullets). ``risk`` is :func:`analytics.denials.learned_risk`."""
    out = []
    if risk.mode == "prior":
        out.append("No line has an answer from a payer (835) yet, so nothing can be learned: every chance of "
                   "denial below is the payer's denial_prior in payers.yaml, marked \"payer prior, no history\".")
    elif risk.mode == "rates":
        out.append(f"The history is too thin to fit the model: {_plural(risk.denials, 'denial', 'denials')} in "
                   f"{_plural(risk.lines, 'answered line', 'answered lines')} (it needs {risk.min_denials}). Each "
                   "chance below is the payer and code's denial rate shrunk toward the payer's rate, marked "
                   "\"shrunk rate\".")
    else:
        out.append(f"The chance of denial is learned from {_plural(risk.lines, 'answered line', 'answered lines')} "
                   f"for services from {risk.start.date()} to {risk.end.date()}, {risk.denials:,} denied. "
                   f"{_plural(risk.rule_denied, 'more line was', 'more lines were')} denied by payer rules the "
                   "toolkit applies itself: those count as certain, not learned.")
        v = risk.validation
        if v is None:
            out.append(f"Not validated by time: {risk.validation_note}.")
        else:
            s = v.scores.set_index("predictor")
            m, o, r = (s.iloc[i] for i in range(3))
            better = m["brier"] < o["brier"] and m["brier"] < r["brier"]
            auc = f"{m['auc']:.2f}" if np.isfinite(m["auc"]) else "-"
            out.append(f"Fitted on {v.train_start.date()} to {v.train_end.date()} and scored on the "
                       f"{_plural(int(m['lines']), 'line', 'lines')} of {v.test_start.date()} to "
                       f"{v.test_end.date()}: Brier score {m['brier']:.4f} against {o['brier']:.4f} for the "
                       f"practice's overall rate and {r['brier']:.4f} for shrunk payer x code rates (lower is "
                       f"better); AUC {auc} (0.5 is chance). "
                       + ("The model beats both baselines." if better else
                          "The model does not beat both baselines on the last months: read its chances as rough."))
    if worklist_.empty:
        out.append("No line is waiting: every insurance line has been billed and answered by an 835.")
    else:
        unbilled = int((worklist_["status"] == "not billed yet").sum())
        certain = int((worklist_["p_deny"] >= 1).sum())
        out.append(f"{_plural(len(worklist_), 'line is', 'lines are')} open ({unbilled:,} not billed yet, "
                   f"{len(worklist_) - unbilled:,} billed with no 835 yet), worth "
                   f"{fmt_money(worklist_['value'].sum())}; {fmt_money(worklist_['dollars_at_risk'].sum())} of it "
                   f"is at risk, and {_plural(certain, 'line is', 'lines are')} denied for certain as "
                   f"{'it stands' if certain == 1 else 'they stand'}.")
    return _bullets(out)


def whatif_narrative(whatif) -> str:
    """Sentences on the practice what-if (:func:`analytics.scenarios.practice_whatif`)."""
    t = whatif.by_payer
    without = getattr(whatif, "without_minutes", 0)
    left_out = (f"{_plural(without, 'insurance visit is', 'insurance visits are')} left out: a timed code of theirs "
                "has no minutes in the export (units only), and each way of coding a visit counts its units from "
                "the minutes. An export with the direct minutes of each timed code brings them in.") if without else ""
    if t.empty:
        return _bullets([*([left_out] if left_out else []),
                         "No insurance visit in this period" + (" with minutes" if without else "")
                         + ": no coding what-if to show."])
    billed, best = float(t["billed_per_month"].sum()), float(t["best_per_month"].sum())
    unknown = int(t["unknown_visits"].sum())
    out = [f"The period's {whatif.visits:,} insurance visits, as billed, are expected to bring in "
           f"{fmt_money(billed)} a month; coded each its best documented way, {fmt_money(best)} "
           f"({fmt_money(best - billed)} more)."]
    if unknown:
        out.append(f"{_plural(unknown, 'visit pairs', 'visits pair')} codes that a 59 or X modifier would unbundle, "
                   "but the export does not say whether the notes show separate body regions or time blocks: "
                   "they are counted under \"documentation unknown\", never assumed "
                   f"(up to {fmt_money(float(t['if_documented_per_month'].sum()))} a month more, were it documented).")
    if left_out:
        out.append(left_out)
    return _bullets(out)
