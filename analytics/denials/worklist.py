"""The denial-risk worklist: every line not yet billed and every billed line not yet answered,
scored with its chance of denial, the dollars at risk and what to check.

:func:`worklist` takes a :class:`~analytics.history.History` and its
:class:`~analytics.denials.learned.LearnedRisk`. A line the payer rules deny for certain (an
edit of the rules engine under the payer's policy) has a chance of 1 and the edit as its
reason; the others get the learned chance and its two main factors. The dollars at risk are
the chance times what the line should bring in (the contract amount; else the payer's average
allowed for the code on paid lines; else the charge), and the checks name what a biller can
fix before sending or chase after: the prescription on file, the modifier, the authorisation,
the visit limit and the days left to the payer's filing limit. The table carries the claim
and line ids the practice uses, never a patient's name or id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analytics.denials.learned import LearnedRisk, fit_learned_risk, history_frame

__all__ = ["WORKLIST_COLUMNS", "worklist", "worklist_page", "worklist_summary", "visit_numbers"]

#: Columns of :func:`worklist`, in order.
WORKLIST_COLUMNS = (
    "claim_id", "line_id", "status", "service_date", "payer_id", "payer", "cpt", "modifiers", "units", "p_deny",
    "p_basis", "value", "value_basis", "dollars_at_risk", "reason_1", "reason_2", "check", "days_left_to_file",
)
NOT_BILLED, NO_ANSWER = "not billed yet", "billed, no 835 yet"


def visit_numbers(frame: pd.DataFrame) -> np.ndarray:
    """Each line's visit number in the calendar year with its payer (visits before the data counted).

    Examples
    --------
    >>> f = pd.DataFrame({"patient_id": ["a", "a", "a"], "payer_id": "x", "provider_id": "p",
    ...     "service_date": pd.to_datetime(["2025-01-02", "2025-01-02", "2025-01-09"]), "visits_before": 3})
    >>> visit_numbers(f).tolist()
    [4, 4, 5]
    """
    date = pd.to_datetime(frame["service_date"])
    keys = pd.DataFrame({"patient": frame["patient_id"].astype(str).to_numpy(),
                         "payer": frame["payer_id"].astype(str).to_numpy(),
                         "year": date.dt.year.to_numpy(), "date": date.to_numpy(),
                         "provider": frame["provider_id"].astype(str).to_numpy()
                         if "provider_id" in frame.columns else ""})
    visits = keys.drop_duplicates().sort_values(["patient", "payer", "year", "date", "provider"], kind="stable")
    visits["number"] = visits.groupby(["patient", "payer", "year"], sort=False).cumcount() + 1
    number = keys.merge(visits, on=list(keys.columns), how="left")["number"].to_numpy(dtype=np.int64)
    before = (pd.to_numeric(frame["visits_before"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
              if "visits_before" in frame.columns else 0)
    return number + before


def _policy(payers: Mapping[str, Any], payer_ids: np.ndarray, attr: str) -> np.ndarray:
    """A numeric policy setting per line (NaN when unset)."""
    values = {p: getattr(pol, attr, None) for p, pol in payers.items()}
    return pd.Series(payer_ids).map(lambda p: np.nan if values.get(p) is None else float(values[p])).to_numpy(float)


def _value_at_stake(frame: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What each line of ``rows`` should bring in, and the basis of that figure in words."""
    expected = frame["contract_expected"].to_numpy(dtype=float)[rows]
    paid = (frame["adjudicated"].to_numpy(dtype=bool) & ~frame["denied"].to_numpy(dtype=bool)
            & (frame["allowed"].to_numpy(dtype=float) > 0))
    typical = (pd.DataFrame({"payer_id": frame["payer_id"].astype(str).to_numpy()[paid],
                             "cpt": frame["cpt"].astype(str).to_numpy()[paid],
                             "allowed": frame["allowed"].to_numpy(dtype=float)[paid]})
               .groupby(["payer_id", "cpt"])["allowed"].agg(["mean", "size"]))
    key = pd.MultiIndex.from_arrays([frame["payer_id"].astype(str).to_numpy()[rows],
                                     frame["cpt"].astype(str).to_numpy()[rows]])
    mean = typical["mean"].reindex(key).to_numpy(dtype=float)
    size = typical["size"].reindex(key).fillna(0).to_numpy(dtype=np.int64)
    charge = frame["charge"].to_numpy(dtype=float)[rows]
    has_contract = np.isfinite(expected) & (expected > 0)
    has_typical = np.isfinite(mean) & (mean > 0)
    value = np.where(has_contract, expected, np.where(has_typical, mean, charge))
    basis = np.where(has_contract, "contract amount",
                     np.where(has_typical, "average allowed of " + pd.Series(size).map("{:,}".format).to_numpy(
                         dtype=object) + " paid lines", "the charge (no contract amount or paid history)"))
    return np.round(np.nan_to_num(value), 2), basis.astype(object)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """Non-empty texts of each line joined with "; "."""
    out = np.full(len(parts[0]) if parts else 0, "", dtype=object)
    for p in parts:
        out = np.where(p == "", out, np.where(out == "", p, out + "; " + p))
    return out


def _checks(frame: pd.DataFrame, rows: np.ndarray, history: Any, reasons: np.ndarray) -> tuple[np.ndarray, ...]:
    """What to check on each line, in words, and the days left to the payer's filing limit."""
    payers = history.payers
    f = frame.iloc[rows]
    pid = f["payer_id"].astype(str).to_numpy()
    cpt = f["cpt"].astype(str).to_numpy(dtype=object)
    names = pd.Series(pid).map(lambda p: getattr(payers.get(p), "name", "") or p).to_numpy(dtype=object)
    edit = f["edit_reason"].astype(str).to_numpy(dtype=object) if "edit_reason" in f else np.full(len(f), "", object)
    rule = f["disposition"].astype(str).isin(["denied"]).to_numpy()
    edit = np.where(rule, edit, "")
    as_of = np.datetime64(history.as_of, "D")
    age = (as_of - pd.to_datetime(f["service_date"]).to_numpy().astype("datetime64[D]")).astype(np.int64)
    limit = _policy(payers, pid, "timely_filing_days")
    billed = f["submitted"].to_numpy(dtype=bool)
    left = np.where(np.isfinite(limit), limit - age, np.nan)
    txt = lambda a: pd.Series(a).map(lambda v: f"{v:,.0f}").to_numpy(dtype=object)  # noqa: E731
    filing = np.where(~billed & np.isfinite(left) & (left >= 0),
                      "bill within " + txt(left) + " days (" + names + "'s " + txt(limit) + "-day filing limit)",
                      np.where(~billed & np.isfinite(left), "past " + names + "'s " + txt(limit)
                               + "-day filing limit by " + txt(-left) + " days: expect CO-29",
                               np.where(~billed, "bill now", "")))
    sent = (as_of - pd.to_datetime(f["submission_date"]).to_numpy().astype("datetime64[D]")).astype(float)
    follow = np.where(billed & (sent > 30), "follow up: sent " + txt(sent) + " days ago, no 835 yet",
                      np.where(billed, "await the 835 (sent " + txt(np.nan_to_num(sent)) + " days ago)", ""))
    rx_needed = _policy(payers, pid, "prescription_required") > 0
    rx_on = f["prescription_on_file"].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy() \
        if "prescription_on_file" in f else np.zeros(len(f), bool)
    rx_word = np.char.find(reasons.astype(str), "prescription") >= 0
    rx = np.where((rx_needed | rx_word) & ~rx_on, "prescription on file? none recorded", "")
    paired = (np.char.find(reasons.astype(str), "column-1 code") >= 0) | (np.char.find(edit.astype(str), "NCCI") >= 0)
    modifier = np.where(paired, "modifier on " + cpt + ": 59 or XS/XU only when the notes show a separate region "
                        "or time block", np.where(np.char.find(edit.astype(str), "modifier:") == 0,
                                              "modifier: add the therapy modifier (GP/GO/GN)", ""))
    visit = visit_numbers(frame)[rows]  # counted over every line, not the open ones only
    auth_after = _policy(payers, pid, "prior_auth_after_visits")
    has_auth = f["prior_auth"].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy() \
        if "prior_auth" in f else np.zeros(len(f), bool)
    auth = np.where(np.isfinite(auth_after) & (visit > auth_after) & ~has_auth,
                    "authorisation: visit " + txt(visit) + " is past the " + txt(auth_after)
                    + " allowed without one", "")
    cap = _policy(payers, pid, "visit_limit")
    cap_txt = np.where(np.isfinite(cap) & (visit > cap), "visit limit: visit " + txt(visit) + " of " + txt(cap)
                       + " (past it: the patient may owe)",
                       np.where(np.isfinite(cap) & (visit >= 0.8 * cap), "visit limit: visit " + txt(visit)
                                + " of " + txt(cap), ""))
    covered = np.where(np.char.find(edit.astype(str), "does not cover") >= 0,
                       "not covered: leave " + cpt + " off the claim (bill the patient only where the plan allows)",
                       "")
    ptype = np.where(np.char.find(edit.astype(str), "provider types") >= 0,
                     "provider: " + names + " does not pay " + cpt + " by this provider type", "")
    units = np.where(f["disposition"].astype(str).to_numpy() == "not_billed",
                     "no billable units: leave the line off the claim or check the minutes", "")
    check = _joined([units, covered, ptype, rx, modifier, auth, cap_txt, filing, follow])
    return check, np.where(~billed, left, np.nan)


def _past_filing_limit(frame: pd.DataFrame, history: Any, billed: np.ndarray):
    """Unbilled lines whose days since the service already pass the payer's filing limit, the
    days, and the limit (NaN when the payer has none)."""
    as_of = np.datetime64(history.as_of, "D")
    days = (as_of - pd.to_datetime(frame["service_date"]).to_numpy().astype("datetime64[D]")).astype(np.int64)
    limit = _policy(history.payers, frame["payer_id"].astype(str).to_numpy(), "timely_filing_days")
    return ~billed & np.isfinite(limit) & (days > np.nan_to_num(limit, nan=np.inf)), days, limit


def worklist(history: Any, risk: LearnedRisk | None = None, *, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every line not yet billed and every billed line not yet answered by an 835, scored.

    Parameters
    ----------
    history
        The practice's history (:func:`analytics.kpis.load_history`, scoped with ``select``):
        its as-of date, payers and providers; every date of service up to ``as_of`` counts.
    risk
        The learned risk (default: learned from the same history).
    frame
        :func:`~analytics.denials.learned.history_frame` of the history, when already built.

    Returns
    -------
    DataFrame
        :data:`WORKLIST_COLUMNS`, largest ``dollars_at_risk`` first: ``status`` (not billed
        yet, or billed with no 835 yet), ``p_deny`` and its basis ``p_basis`` (a payer rule, or
        what the risk was learned from), ``value`` (what the line should bring in) and its
        ``value_basis``, ``dollars_at_risk`` (= p_deny x value), the two main reasons, the
        ``check`` to make and ``days_left_to_file`` (unbilled lines, when the payer has a
        filing limit). Self-pay lines are not on it.
    """
    frame = history_frame(history) if frame is None else frame
    risk = risk or fit_learned_risk(frame, history.payers)
    billed = frame["submitted"].to_numpy(dtype=bool)
    insured = ~frame["self_pay"].to_numpy(dtype=bool)
    open_ = insured & (~billed | ~frame["adjudicated"].to_numpy(dtype=bool))
    rows = np.flatnonzero(open_)
    if not len(rows):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in WORKLIST_COLUMNS})
    # an unbilled line is scored as if sent on the as-of date: its filing delay counts
    scoring = frame.copy()
    sub = pd.to_datetime(scoring["submission_date"])
    svc = pd.to_datetime(scoring["service_date"])
    scoring["submission_date"] = sub.where(billed, svc.clip(lower=history.as_of))
    disposition = frame["disposition"].astype(str).to_numpy().copy()
    edit = frame["edit_reason"].astype(str).to_numpy(dtype=object).copy() if "edit_reason" in frame \
        else np.full(len(frame), "a payer rule", dtype=object)
    # the payer's timely-filing rule as of today: an unbilled line past it is denied (CO-29)
    late, days, limit = _past_filing_limit(frame, history, billed)
    disposition = np.where(late & (disposition != "not_billed"), "denied", disposition)
    edit = np.where(late, "timely filing: " + pd.Series(days).map("{:,.0f}".format).to_numpy(dtype=object)
                    + " days since the service, past the payer's " + pd.Series(limit).map(
                        lambda v: f"{v:,.0f}" if np.isfinite(v) else "").to_numpy(dtype=object)
                    + "-day limit, and not billed yet", edit)
    rule = np.isin(disposition, ["denied", "not_billed"])
    scored = risk.scored(scoring, top=2)  # chance and reasons from one reading of the features
    p = np.where(rule, 1.0, scored["p_deny"].to_numpy())[rows]
    words = risk.basis_words(frame.iloc[rows])
    edit = edit[rows]
    reasons = scored.iloc[rows]
    r1 = np.where(rule[rows], edit, reasons["reason_1"].to_numpy(dtype=object))
    r2 = np.where(rule[rows], "", reasons["reason_2"].to_numpy(dtype=object))
    value, value_basis = _value_at_stake(frame, rows)
    value = np.where(disposition[rows] == "not_billed", 0.0, value)
    check, left = _checks(frame, rows, history, (r1 + " " + r2).astype(str))
    f = frame.iloc[rows]
    names = {p_: (getattr(pol, "name", "") or p_) for p_, pol in history.payers.items()}
    out = pd.DataFrame({
        "claim_id": f["claim_id"].astype(str).to_numpy(), "line_id": f["line_id"].astype(str).to_numpy(),
        "status": np.where(billed[rows], NO_ANSWER, NOT_BILLED),
        "service_date": pd.to_datetime(f["service_date"]).to_numpy(),
        "payer_id": f["payer_id"].astype(str).to_numpy(),
        "payer": f["payer_id"].astype(str).map(names).fillna(f["payer_id"].astype(str)).to_numpy(),
        "cpt": f["cpt"].astype(str).to_numpy(), "modifiers": f["modifiers"].astype(str).to_numpy(),
        "units": pd.to_numeric(f["units"], errors="coerce").fillna(0).to_numpy(dtype=np.int64),
        "p_deny": np.round(p, 4),
        "p_basis": np.where(disposition[rows] == "not_billed", "no billable units",
                            np.where(rule[rows], "a payer rule denies it for certain", words)),
        "value": value, "value_basis": value_basis,
        "dollars_at_risk": np.round(p * value, 2),
        "reason_1": r1, "reason_2": r2, "check": check, "days_left_to_file": left,
    })
    out = out.sort_values(["dollars_at_risk", "p_deny", "claim_id", "line_id"],
                          ascending=[False, False, True, True], kind="stable")
    from analytics.kpis import mask_claim_ids

    return mask_claim_ids(history, out[list(WORKLIST_COLUMNS)].reset_index(drop=True))


def worklist_summary(lines: pd.DataFrame) -> pd.DataFrame:
    """The worklist by payer and status: ``lines``, ``claims``, ``value``, ``dollars_at_risk``
    and ``certain`` (lines a payer rule denies for certain), largest risk first."""
    cols = ["payer_id", "payer", "status", "lines", "claims", "certain", "value", "dollars_at_risk"]
    if lines.empty:
        return pd.DataFrame(columns=cols)
    g = lines.assign(certain=lines["p_deny"] >= 1.0).groupby(["payer_id", "payer", "status"], sort=True).agg(
        lines=("line_id", "size"), claims=("claim_id", "nunique"), certain=("certain", "sum"),
        value=("value", "sum"), dollars_at_risk=("dollars_at_risk", "sum")).reset_index()
    g["certain"] = g["certain"].astype(np.int64)
    g["value"] = g["value"].round(2)
    g["dollars_at_risk"] = g["dollars_at_risk"].round(2)
    return g.sort_values(["dollars_at_risk", "payer_id", "status"], ascending=[False, True, True],
                         kind="stable")[cols].reset_index(drop=True)


def worklist_page(lines: pd.DataFrame, *, rows: int = 25) -> pd.DataFrame:
    """The first ``rows`` lines of :func:`worklist` as a printed page shows them.

    Ten columns that fit a portrait page: ``line`` (the claim line id), ``status`` in short
    (not billed / no 835 yet), ``service_date`` as a date, ``payer``, ``code`` (the code and
    its modifiers), ``p_deny`` and ``dollars_at_risk`` (numbers, for the page's percent and
    money formats), ``expected`` (what the line should bring in), ``why`` (the two main
    reasons joined) and ``check``. A page cuts the texts short
    (:func:`analytics.plots.shorten`); the whole list, with the full texts, is the saved
    ``worklist.csv``.

    Examples
    --------
    >>> w = pd.DataFrame({"claim_id": ["C1"], "line_id": ["C1-1"], "status": [NOT_BILLED],
    ...     "service_date": pd.to_datetime(["2026-01-12"]), "payer": ["Gold PPO"], "cpt": ["97124"],
    ...     "modifiers": ["GP,59"], "p_deny": [0.25], "value": [98.33], "dollars_at_risk": [24.58],
    ...     "reason_1": ["first reason"], "reason_2": [""], "check": ["bill within 20 days"]})
    >>> worklist_page(w).iloc[0].astype(str).tolist()
    ['C1-1', 'not billed', '2026-01-12', 'Gold PPO', '97124 GP,59', '0.25', '98.33', '24.58', 'first reason', 'bill within 20 days']
    """
    top = lines.head(rows)
    status = top["status"].astype(str).map({NOT_BILLED: "not billed", NO_ANSWER: "no 835 yet"})
    mods = top["modifiers"].fillna("").astype(str).str.strip().to_numpy(dtype=object)
    code = top["cpt"].astype(str).to_numpy(dtype=object)
    reasons = _joined([top["reason_1"].fillna("").astype(str).to_numpy(dtype=object),
                       top["reason_2"].fillna("").astype(str).to_numpy(dtype=object)])
    return pd.DataFrame({
        "line": top["line_id"].astype(str).to_numpy(),
        "status": status.fillna(top["status"].astype(str)).to_numpy(dtype=object),
        "service_date": pd.to_datetime(top["service_date"]).dt.strftime("%Y-%m-%d").to_numpy(dtype=object),
        "payer": top["payer"].astype(str).to_numpy(),
        "code": np.where(mods != "", code + " " + mods, code),
        "p_deny": top["p_deny"].to_numpy(dtype=float),
        "expected": top["value"].to_numpy(dtype=float),
        "dollars_at_risk": top["dollars_at_risk"].to_numpy(dtype=float),
        "why": reasons,
        "check": top["check"].fillna("").astype(str).to_numpy(dtype=object),
    })
