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

from analytics.denials.keys import tuple_keys
from analytics.denials.learned import LearnedRisk, fit_learned_risk, history_frame

__all__ = ["WORKLIST_COLUMNS", "worklist", "worklist_page", "worklist_summary", "visit_numbers"]

#: Columns of :func:`worklist`, in order.
WORKLIST_COLUMNS = (
    "claim_id", "line_id", "status", "service_date", "payer_id", "payer", "cpt", "modifiers", "units", "p_deny",
    "p_basis", "value", "value_basis", "dollars_at_risk", "reason_1", "reason_2", "check", "days_left_to_file",
)
NOT_BILLED, NO_ANSWER = "not billed yet", "billed, no 835 yet"


def _text_codes(values: pd.Series | np.ndarray, *, sort: bool = False) -> np.ndarray:
    """Integer codes of the values as text (equal texts, such as 1 and "1", share a code; -1
    where missing), each distinct value read once; with ``sort``, the codes follow the texts'
    sorted order."""
    codes, uniq = pd.factorize(np.asarray(values, dtype=object) if not isinstance(values, pd.Series) else values,
                               use_na_sentinel=True)
    if not len(uniq):
        return np.full(len(codes), -1, dtype=np.int64)
    text_of = pd.factorize(pd.Index(uniq).astype(str), sort=sort)[0].astype(np.int64)
    return np.append(text_of, -1)[codes]


def _formatted(values: np.ndarray, fmt) -> np.ndarray:
    """``fmt(value)`` for each value (an object array of texts), called once per distinct value."""
    a = np.asarray(values)
    floats = a.dtype == np.float64
    codes, uniq = pd.factorize(a.view(np.int64) if floats else a)  # floats by their bits: -0.0 is not 0.0
    if floats:
        uniq = np.asarray(uniq).view(np.float64)
    texts = np.array([fmt(v) for v in np.asarray(uniq).tolist()] + [""], dtype=object)
    return texts[:-1][codes] if len(codes) else np.zeros(0, dtype=object)


def _has(texts: np.ndarray, word: str, *, at_start: bool = False) -> np.ndarray:
    """Whether each text (as ``str``) holds ``word`` (or starts with it), tested once per distinct text."""
    codes, uniq = pd.factorize(np.asarray(texts, dtype=object), use_na_sentinel=False)
    found = [str(t).startswith(word) if at_start else word in str(t) for t in uniq]
    return np.array(found + [False], dtype=bool)[:-1][codes] if len(codes) else np.zeros(0, dtype=bool)


def visit_numbers(frame: pd.DataFrame) -> np.ndarray:
    """Each line's visit number in the calendar year with its payer (visits before the data counted).

    A visit is a patient's services with one payer on one date by one provider; the visits of a
    patient, payer and year are numbered by date, then provider. Counted on integer codes of
    the ids, one sort of the lines' keys.

    Examples
    --------
    >>> f = pd.DataFrame({"patient_id": ["a", "a", "a"], "payer_id": "x", "provider_id": "p",
    ...     "service_date": pd.to_datetime(["2025-01-02", "2025-01-02", "2025-01-09"]), "visits_before": 3})
    >>> visit_numbers(f).tolist()
    [4, 4, 5]
    """
    n = len(frame)
    date = pd.to_datetime(frame["service_date"])
    day = date.to_numpy().astype("datetime64[D]").view(np.int64)
    nat = np.isnat(date.to_numpy())
    if nat.any():  # a missing date sorts after every date
        day = np.where(nat, (day[~nat].max() + 1) if (~nat).any() else 0, day)
    patient = _text_codes(frame["patient_id"])
    payer = _text_codes(frame["payer_id"])
    provider = (_text_codes(frame["provider_id"], sort=True) if "provider_id" in frame.columns
                else np.zeros(n, dtype=np.int64))
    # patient, payer, date, provider: the date orders the years too
    key = tuple_keys([[patient, payer, day, provider]])[0]
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    year = date.dt.year.to_numpy(dtype=float, na_value=np.nan)[first]
    group = np.stack([patient[first], payer[first], np.nan_to_num(year, nan=-1).astype(np.int64)])
    new = np.r_[True, (group[:, 1:] != group[:, :-1]).any(axis=0)] if len(first) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new)
    rank = np.arange(len(first)) - np.repeat(starts, np.diff(np.r_[starts, len(first)]))
    number = (rank + 1)[inv.ravel()] if n else np.zeros(0, dtype=np.int64)
    before = (pd.to_numeric(frame["visits_before"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
              if "visits_before" in frame.columns else 0)
    return number.astype(np.int64) + before


def _policy(payers: Mapping[str, Any], payer_ids: np.ndarray, attr: str) -> np.ndarray:
    """A numeric policy setting per line (NaN when unset), looked up once per payer."""
    values = {p: getattr(pol, attr, None) for p, pol in payers.items()}
    codes, uniq = pd.factorize(np.asarray(payer_ids, dtype=object), use_na_sentinel=False)
    per_payer = np.array([np.nan if values.get(p) is None else float(values[p]) for p in uniq] + [np.nan])
    return per_payer[:-1][codes] if len(codes) else np.zeros(0)


def _value_at_stake(frame: pd.DataFrame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What each line of ``rows`` should bring in, and the basis of that figure in words.

    The payer's average allowed for the code is taken over its paid lines, grouped on integer
    codes of the payer and code texts."""
    expected = frame["contract_expected"].to_numpy(dtype=float)[rows]
    allowed = frame["allowed"].to_numpy(dtype=float)
    paid = frame["adjudicated"].to_numpy(dtype=bool) & ~frame["denied"].to_numpy(dtype=bool) & (allowed > 0)
    payer, cpt = _text_codes(frame["payer_id"]), _text_codes(frame["cpt"])
    known = (payer >= 0) & (cpt >= 0)  # a line without its payer or code has no average
    pair = np.where(known, payer * (int(cpt.max(initial=0)) + 1) + cpt, -1)
    take = paid & known
    typical = pd.Series(allowed[take]).groupby(pair[take]).agg(["mean", "size"])
    mean = typical["mean"].reindex(pair[rows]).to_numpy(dtype=float)
    size = typical["size"].reindex(pair[rows]).fillna(0).to_numpy(dtype=np.int64)
    charge = frame["charge"].to_numpy(dtype=float)[rows]
    has_contract = np.isfinite(expected) & (expected > 0)
    has_typical = np.isfinite(mean) & (mean > 0)
    value = np.where(has_contract, expected, np.where(has_typical, mean, charge))
    basis = np.where(has_contract, "contract amount",
                     np.where(has_typical, "average allowed of " + _formatted(size, "{:,}".format) + " paid lines",
                              "the charge (no contract amount or paid history)"))
    return np.round(np.nan_to_num(value), 2), basis.astype(object)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """Non-empty texts of each line joined with "; " (joined only on the lines that have them)."""
    out = np.full(len(parts[0]) if parts else 0, "", dtype=object)
    for p in parts:
        has = np.asarray(p != "", dtype=bool)
        first = has & (out == "")
        more = has & ~first
        out[first] = p[first]
        if more.any():
            out[more] = out[more] + "; " + p[more]
    return out


def _true_text(column: pd.Series) -> np.ndarray:
    """Whether each value reads as yes (true, 1, yes), read once per distinct value."""
    codes, uniq = pd.factorize(column.astype(str), use_na_sentinel=False)
    yes = [str(v).lower() in ("true", "1", "yes") for v in uniq]
    return np.array(yes + [False], dtype=bool)[:-1][codes] if len(codes) else np.zeros(0, dtype=bool)


class _Texts:
    """A column of texts filled case by case, each text built on the lines it is for only."""

    def __init__(self, n: int) -> None:
        self.out = np.full(n, "", dtype=object)
        self.left = np.ones(n, dtype=bool)  # lines no earlier case has taken

    def case(self, when: np.ndarray, text) -> _Texts:
        """Lines where ``when`` (and no earlier case) holds get ``text(rows)``, or ``text``."""
        rows = np.flatnonzero(self.left & when)
        self.left &= ~when
        if len(rows):
            self.out[rows] = text(rows) if callable(text) else text
        return self


def _checks(f: pd.DataFrame, visit: np.ndarray, history: Any, r1: np.ndarray,
            r2: np.ndarray) -> tuple[np.ndarray, ...]:
    """What to check on each line of ``f``, in words, and the days left to the payer's filing
    limit; ``visit``: each line's visit number (counted over every line of the history);
    ``r1``, ``r2``: its two reasons."""
    payers = history.payers
    n = len(f)
    pid = f["payer_id"].astype(str).to_numpy()
    cpt = f["cpt"].astype(str).to_numpy(dtype=object)
    pcodes, puniq = pd.factorize(np.asarray(pid, dtype=object), use_na_sentinel=False)
    names = np.array([getattr(payers.get(p), "name", "") or p for p in puniq] + [""], dtype=object)[:-1][pcodes]
    edit = f["edit_reason"].astype(str).to_numpy(dtype=object) if "edit_reason" in f else np.full(n, "", object)
    rule = f["disposition"].astype(str).isin(["denied"]).to_numpy()
    edit = np.where(rule, edit, "")
    # the two reasons as one text, looked at once per distinct pair
    c1, u1 = pd.factorize(r1, use_na_sentinel=False)
    c2, u2 = pd.factorize(r2, use_na_sentinel=False)
    pair, at = np.unique(c1 * max(len(u2), 1) + c2, return_inverse=True)
    both = [str(u1[p // max(len(u2), 1)] + " " + u2[p % max(len(u2), 1)]) for p in pair]

    def in_reasons(word: str) -> np.ndarray:
        return np.array([word in t for t in both] + [False], dtype=bool)[:-1][at.ravel()] if n else np.zeros(0, bool)

    as_of = np.datetime64(history.as_of, "D")
    age = (as_of - pd.to_datetime(f["service_date"]).to_numpy().astype("datetime64[D]")).astype(np.int64)
    limit = _policy(payers, pid, "timely_filing_days")
    billed = f["submitted"].to_numpy(dtype=bool)
    left = np.where(np.isfinite(limit), limit - age, np.nan)
    txt = lambda a: _formatted(a, lambda v: f"{v:,.0f}")  # noqa: E731
    filing = (_Texts(n)
              .case(~billed & np.isfinite(left) & (left >= 0),
                    lambda r: "bill within " + txt(left[r]) + " days (" + names[r] + "'s " + txt(limit[r])
                    + "-day filing limit)")
              .case(~billed & np.isfinite(left),
                    lambda r: "past " + names[r] + "'s " + txt(limit[r]) + "-day filing limit by " + txt(-left[r])
                    + " days: expect CO-29")
              .case(~billed, "bill now").out)
    sent = (as_of - pd.to_datetime(f["submission_date"]).to_numpy().astype("datetime64[D]")).astype(float)
    follow = (_Texts(n)
              .case(billed & (sent > 30), lambda r: "follow up: sent " + txt(sent[r]) + " days ago, no 835 yet")
              .case(billed, lambda r: "await the 835 (sent " + txt(np.nan_to_num(sent[r])) + " days ago)").out)
    rx_needed = _policy(payers, pid, "prescription_required") > 0
    rx_on = _true_text(f["prescription_on_file"]) if "prescription_on_file" in f else np.zeros(n, bool)
    rx = _Texts(n).case((rx_needed | in_reasons("prescription")) & ~rx_on, "prescription on file? none recorded").out
    modifier = (_Texts(n)
                .case(in_reasons("column-1 code") | _has(edit, "NCCI"),
                      lambda r: "modifier on " + cpt[r] + ": 59 or XS/XU only when the notes show a separate "
                      "region or time block")
                .case(_has(edit, "modifier:", at_start=True), "modifier: add the therapy modifier (GP/GO/GN)").out)
    auth_after = _policy(payers, pid, "prior_auth_after_visits")
    has_auth = _true_text(f["prior_auth"]) if "prior_auth" in f else np.zeros(n, bool)
    auth = _Texts(n).case(np.isfinite(auth_after) & (visit > auth_after) & ~has_auth,
                          lambda r: "authorisation: visit " + txt(visit[r]) + " is past the " + txt(auth_after[r])
                          + " allowed without one").out
    cap = _policy(payers, pid, "visit_limit")
    cap_txt = (_Texts(n)
               .case(np.isfinite(cap) & (visit > cap),
                     lambda r: "visit limit: visit " + txt(visit[r]) + " of " + txt(cap[r])
                     + " (past it: the patient may owe)")
               .case(np.isfinite(cap) & (visit >= 0.8 * cap),
                     lambda r: "visit limit: visit " + txt(visit[r]) + " of " + txt(cap[r])).out)
    covered = _Texts(n).case(_has(edit, "does not cover"), lambda r: "not covered: leave " + cpt[r]
                             + " off the claim (bill the patient only where the plan allows)").out
    ptype = _Texts(n).case(_has(edit, "provider types"), lambda r: "provider: " + names[r] + " does not pay "
                           + cpt[r] + " by this provider type").out
    units = _Texts(n).case(f["disposition"].astype(str).to_numpy() == "not_billed",
                           "no billable units: leave the line off the claim or check the minutes").out
    check = _joined([units, covered, ptype, rx, modifier, auth, cap_txt, filing, follow])
    return check, np.where(~billed, left, np.nan)


def _past_filing_limit(f: pd.DataFrame, history: Any, billed: np.ndarray):
    """Unbilled lines of ``f`` whose days since the service already pass the payer's filing
    limit, the days, and the limit (NaN when the payer has none)."""
    as_of = np.datetime64(history.as_of, "D")
    days = (as_of - pd.to_datetime(f["service_date"]).to_numpy().astype("datetime64[D]")).astype(np.int64)
    limit = _policy(history.payers, f["payer_id"].astype(str).to_numpy(), "timely_filing_days")
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
        :func:`~analytics.denials.learned.history_frame` of the history, when already built
        (the frame the risk was fitted on lends its features: they are not built again).

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
    billed_all = frame["submitted"].to_numpy(dtype=bool)
    insured = ~frame["self_pay"].to_numpy(dtype=bool)
    open_ = insured & (~billed_all | ~frame["adjudicated"].to_numpy(dtype=bool))
    rows = np.flatnonzero(open_)
    if not len(rows):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in WORKLIST_COLUMNS})
    # the open lines only: a line's features come from its whole visit, read on every line,
    # and everything else of a line is its own
    f = frame.iloc[rows]
    billed = billed_all[rows]
    # an unbilled line is scored as if sent on the as-of date: its filing delay counts
    sub = pd.to_datetime(f["submission_date"])
    svc = pd.to_datetime(f["service_date"])
    features = risk.line_features(frame)
    if features is not None:
        features = risk.model.with_submission_dates(features.take(rows), f,
                                                    sub.where(billed, svc.clip(lower=history.as_of)))
    disposition = f["disposition"].astype(str).to_numpy().copy()
    edit = f["edit_reason"].astype(str).to_numpy(dtype=object).copy() if "edit_reason" in f \
        else np.full(len(f), "a payer rule", dtype=object)
    # the payer's timely-filing rule as of today: an unbilled line past it is denied (CO-29)
    late, days, limit = _past_filing_limit(f, history, billed)
    disposition = np.where(late & (disposition != "not_billed"), "denied", disposition)
    if late.any():
        edit[late] = ("timely filing: " + _formatted(days[late], "{:,.0f}".format)
                      + " days since the service, past the payer's "
                      + _formatted(limit[late], lambda v: f"{v:,.0f}" if np.isfinite(v) else "")
                      + "-day limit, and not billed yet")
    rule = np.isin(disposition, ["denied", "not_billed"])
    reasons = risk.scored(f, top=2, features=features)  # chance and reasons from one reading of the features
    p = np.where(rule, 1.0, reasons["p_deny"].to_numpy())
    words = risk.basis_words(f)
    r1 = np.where(rule, edit, reasons["reason_1"].to_numpy(dtype=object))
    r2 = np.where(rule, "", reasons["reason_2"].to_numpy(dtype=object))
    value, value_basis = _value_at_stake(frame, rows)
    value = np.where(disposition == "not_billed", 0.0, value)
    visit = visit_numbers(frame)[rows]  # counted over every line, not the open ones only
    check, left = _checks(f, visit, history, r1, r2)
    names = {p_: (getattr(pol, "name", "") or p_) for p_, pol in history.payers.items()}
    out = pd.DataFrame({
        "claim_id": f["claim_id"].astype(str).to_numpy(), "line_id": f["line_id"].astype(str).to_numpy(),
        "status": np.where(billed, NO_ANSWER, NOT_BILLED),
        "service_date": pd.to_datetime(f["service_date"]).to_numpy(),
        "payer_id": f["payer_id"].astype(str).to_numpy(),
        "payer": f["payer_id"].astype(str).map(names).fillna(f["payer_id"].astype(str)).to_numpy(),
        "cpt": f["cpt"].astype(str).to_numpy(), "modifiers": f["modifiers"].astype(str).to_numpy(),
        "units": pd.to_numeric(f["units"], errors="coerce").fillna(0).to_numpy(dtype=np.int64),
        "p_deny": np.round(p, 4),
        "p_basis": np.where(disposition == "not_billed", "no billable units",
                            np.where(rule, "a payer rule denies it for certain", words)),
        "value": value, "value_basis": value_basis,
        "dollars_at_risk": np.round(p * value, 2),
        "reason_1": r1, "reason_2": r2, "check": check, "days_left_to_file": left,
    })
    out = out.sort_values(["dollars_at_risk", "p_deny", "claim_id", "line_id"],
                          ascending=[False, False, True, True], kind="stable")
    out = out[list(WORKLIST_COLUMNS)].reset_index(drop=True)
    from analytics.kpis import mask_claim_ids

    # the inputs are read for names only if a claim number could hold one
    return mask_claim_ids(history, out)


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
