"""The practice-level coding what-if: the period's actual visits, coded each documented way.

For every insurance visit of the period, :func:`practice_whatif` takes the services performed
(the codes and minutes of its lines), lists the legitimate ways to report them with the same
rules as :func:`~analytics.scenarios.compare` (subsets of what was performed; the NCCI
modifier on the column-2 code of a pair), prices each with the visit's payer rules and its
learned chance of denial, and sums per payer and alternative. Modifiers 59, XS and XU need the
notes to show a separate body region or time block: a visit whose export says so
(``distinct_regions`` / ``separate_time_blocks`` columns, or a different ``body_region`` on
each line) supports them; a visit without such a flag is counted under "documentation
unknown", never assumed. What was billed is the baseline: the best supported alternative of a
visit is never below it.

:func:`common_session` gives the period's most common session mix, for the single-session
section of the scenarios page.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analytics.pipeline import evaluate
from analytics.refdata import Reference, load_reference
from analytics.scenarios.alternatives import alternatives
from analytics.scenarios.session import Session

__all__ = ["PracticeWhatIf", "practice_whatif", "common_session", "DOCUMENTATION_COLUMNS"]

#: Visit-level documentation flags read from the export when present (true on any line of the
#: visit: documented; false: documented as not so; absent or empty: unknown).
DOCUMENTATION_COLUMNS = ("distinct_regions", "separate_time_blocks")
SUPPORTED, UNKNOWN, UNSUPPORTED, BILLED = "supported", "documentation unknown", "not supported", "as billed"
_THERAPY = ("GP", "GO", "GN")
_DAYS_PER_MONTH = 365.25 / 12


@dataclasses.dataclass(frozen=True)
class PracticeWhatIf:
    """The period's visits coded each documented way (see :func:`practice_whatif`).

    Attributes
    ----------
    by_payer
        One row per payer: ``visits``, ``billed_per_month`` (expected collections of what was
        billed), ``best_per_month`` (of the best supported alternative of each visit),
        ``difference_per_month``, ``best_alternative`` (the most common best alternative, or
        "as billed"), ``visits_improved``, ``unknown_visits`` (visits whose documentation of
        separate regions or time blocks is not in the export) and ``if_documented_per_month``
        (what more a 59/X alternative would bring in on them, were it documented).
    by_alternative
        One row per payer, session mix and alternative: ``status`` (as billed, supported,
        documentation unknown, not supported), ``visits``, ``expected_per_month``,
        ``billed_visits`` (visits billed this way) and ``best_visits`` (visits for which it is
        the best supported way).
    months
        Months in the period (the per-month figures divide by it).
    visits
        Insurance visits of the period.
    """

    by_payer: pd.DataFrame
    by_alternative: pd.DataFrame
    months: float
    visits: int

    def plot(self, *, title: str | None = None):
        """Per payer, expected collections a month as billed and coded the best documented way."""
        from analytics.scenarios.chart import plot_practice_whatif

        return plot_practice_whatif(self.by_payer, title=title)


def _flag(lines: pd.DataFrame, col: str) -> np.ndarray:
    """1 (documented), 0 (documented as not so) or -1 (unknown) per line."""
    if col not in lines.columns:
        return np.full(len(lines), -1, dtype=np.int64)
    text = lines[col].astype(str).str.strip().str.lower()
    return np.where(text.isin(["true", "1", "yes", "y"]), 1, np.where(text.isin(["false", "0", "no", "n"]), 0, -1))


def _visit_table(history: Any, ref: Reference) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the period's insurance lines with the visit's features, one row per visit).

    A visit with a code outside the catalog is left out whole: its alternatives cannot be
    priced, and the data notes already list such lines as not priced.
    """
    from analytics.denials.worklist import visit_numbers

    period = history.period
    period = period[~period["self_pay"].to_numpy() & ~period["cpt"].astype(str).eq("").to_numpy()]
    outside = ~period["cpt"].astype(str).isin(ref.codes["cpt"]).to_numpy()
    if outside.any():
        period = period[~period["visit"].isin(period["visit"].to_numpy()[outside]).to_numpy()]
    extra = [c for c in ("provider_type", "minutes", "dx_codes", "prescription_on_file", "prior_auth",
                         "visits_before", "body_region", *DOCUMENTATION_COLUMNS)
             if c in history.base.columns and c not in period.columns]
    lines = period.join(history.base.loc[period.index, extra]) if extra else period.copy()
    # the visit number counts every visit of the patient with the payer that year, not the period's only
    scope = history.lines
    number = pd.Series(visit_numbers(scope.join(history.base.loc[scope.index, ["visits_before"]])
                                     if "visits_before" in history.base.columns else scope), index=scope.index)
    lines["visit_number"] = number.reindex(lines.index).to_numpy()
    mods = lines["modifiers"].astype(str).str.upper()
    lines["therapy_mod"] = np.select([mods.str.contains(m) for m in _THERAPY], list(_THERAPY), "")
    lines = lines.sort_values(["visit", "cpt"], kind="stable")
    docs = {c: _flag(lines, c) for c in DOCUMENTATION_COLUMNS}
    if "body_region" in lines.columns:  # a region on every line, all different: distinct regions
        region = lines["body_region"].astype(str).str.strip().str.lower()
        g = pd.DataFrame({"visit": lines["visit"].to_numpy(), "r": region.to_numpy()})
        full = g.groupby("visit")["r"].transform(lambda s: bool((s != "").all() and s.nunique() == len(s)))
        docs["distinct_regions"] = np.where(full.to_numpy(dtype=bool), 1, docs["distinct_regions"])
    per_visit = pd.DataFrame({"visit": lines["visit"].to_numpy(), **docs}).groupby("visit").max()
    visits = lines.groupby("visit", sort=True).agg(
        payer_id=("payer_id", "first"), service_date=("service_date", "first"),
        mix=("cpt", lambda s: " + ".join(sorted(map(str, s)))), n=("cpt", "size"),
        submission_date=("submission_date", "first"), visit_number=("visit_number", "first"))
    visits = visits.join(per_visit)
    return lines, visits.reset_index()


def _alternative_table(visits: pd.DataFrame, payers: Mapping[str, Any], ref: Reference) -> pd.DataFrame:
    """The alternatives of each distinct (payer, mix, documentation) signature: one row per code."""
    sig_cols = ["payer_id", "mix", *DOCUMENTATION_COLUMNS]
    sigs = visits[sig_cols].drop_duplicates().reset_index(drop=True)
    rows = []
    for s in sigs.itertuples(index=False):
        codes = s.mix.split(" + ")
        mins = {c: (None if c == "97010" else 30) for c in codes}
        session = Session.from_minutes(
            {c: m for c, m in mins.items() if c != "97010"} or {"97010": None},
            service_date=visits["service_date"].max(), hot_pack="97010" in codes and len(codes) > 1,
            distinct_regions=s.distinct_regions == 1, separate_time_blocks=s.separate_time_blocks == 1)
        unknown = s.distinct_regions == -1 and s.separate_time_blocks == -1
        for i, alt in enumerate(alternatives(session, reference=ref, payers={s.payer_id: payers[s.payer_id]})):
            status = SUPPORTED if alt.supported else (UNKNOWN if unknown else UNSUPPORTED)
            for code, mod in zip(alt.codes, alt.modifiers, strict=True):
                rows.append((s.payer_id, s.mix, s.distinct_regions, s.separate_time_blocks, i, alt.name, status,
                             code, mod))
    return pd.DataFrame(rows, columns=[*sig_cols, "alt", "alternative", "status", "cpt", "ncci_mod"])


def _priced_lines(lines: pd.DataFrame, visits: pd.DataFrame, alts: pd.DataFrame) -> pd.DataFrame:
    """Service lines for every visit x alternative (alternative -1: as billed), each its own
    synthetic patient, with the visit's date, provider, payer, minutes and plan state."""
    sig_cols = ["payer_id", "mix", *DOCUMENTATION_COLUMNS]
    va = visits[["visit", *sig_cols]].merge(alts, on=sig_cols, how="inner")
    base = lines.drop(columns=["payer_id"]).rename(columns={"modifiers": "billed_modifiers"})
    alt_lines = va[["visit", "payer_id", "alt", "cpt", "ncci_mod"]].merge(base, on=["visit", "cpt"], how="left")
    mods = alt_lines["therapy_mod"].astype(str)
    ncci = alt_lines["ncci_mod"].astype(str)
    alt_lines["modifiers"] = np.where((mods != "") & (ncci != ""), mods + "," + ncci, mods + ncci)
    billed = lines.assign(alt=-1)
    cols = ["visit", "alt", "payer_id", "service_date", "provider_id", "provider_type", "cpt", "minutes",
            "modifiers", "dx_codes", "prescription_on_file", "prior_auth", "visit_number", "submission_date",
            "charge"]
    frame = pd.concat([billed.reindex(columns=cols), alt_lines.reindex(columns=cols)], ignore_index=True)
    key = frame["visit"].astype(np.int64) * 1000 + frame["alt"].astype(np.int64) + 1
    frame["patient_id"] = pd.factorize(key)[0].astype(np.int64)
    frame["visits_before"] = pd.to_numeric(frame.pop("visit_number"), errors="coerce").fillna(1) - 1
    return frame


def _expected(frame: pd.DataFrame, pol: Mapping[str, Any], ref: Reference, risk: Any | None) -> np.ndarray:
    """Expected collections of each line: allowed x (1 - chance of denial) + what a patient owes.

    The payer rules of each alternative decide its certain denials (chance 1); every other
    line takes the chance learned for its code as billed in the visit, so that dropping a
    code or changing a modifier changes the rules that apply, not the learned chance.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = evaluate(frame.drop(columns=["visit", "alt"]), pol, ref)
        billed = (frame["alt"] == -1).to_numpy()
        if risk is not None:
            p_billed = risk.predict_proba(out[billed]).to_numpy(dtype=float)
        else:  # the payer's prior (evaluate's p_deny is 1 on the lines an edit denies as billed)
            prior = {k: float(v.denial_prior or 0.0) for k, v in pol.items()}
            p_billed = frame["payer_id"].astype(str).map(prior).fillna(0.0).to_numpy(dtype=float)[billed]
    learned = pd.Series(p_billed, index=pd.MultiIndex.from_arrays(
        [frame["visit"].to_numpy()[billed], frame["cpt"].astype(str).to_numpy()[billed]]))
    learned = learned[~learned.index.duplicated()]
    p = learned.reindex(pd.MultiIndex.from_arrays([frame["visit"].to_numpy(), frame["cpt"].astype(str).to_numpy()]))
    p = p.to_numpy(dtype=float)
    rule = out["disposition"].astype(str).isin(["denied", "not_billed"]).to_numpy()
    p = np.where(rule, 1.0, np.nan_to_num(p, nan=0.0))
    allowed = np.nan_to_num(out["allowed"].to_numpy(dtype=float, na_value=np.nan))
    owed = np.nan_to_num(out["noncovered_applied"].to_numpy(dtype=float, na_value=np.nan))
    return np.round(allowed * (1 - p) + owed, 2)


def practice_whatif(
    history: Any,
    risk: Any | None = None,
    *,
    payers: Mapping[str, Any] | None = None,
    reference: Reference | None = None,
) -> PracticeWhatIf:
    """The period's insurance visits coded each documented way, priced, summed per payer.

    Parameters
    ----------
    history
        A scoped :class:`~analytics.history.History`: its period's visits, for its payers.
    risk
        The chance of denial (:func:`~analytics.denials.learned_risk`; ``None``: each payer's
        ``denial_prior``).
    payers
        Payer policies to price with (default the history's).
    reference
        Reference data (default the shipped tables).

    Returns
    -------
    PracticeWhatIf
        ``by_payer`` and ``by_alternative`` tables (expected collections per month: allowed x
        (1 - chance of denial), plus what a patient owes on a line the plan makes theirs).
    """
    ref = reference or load_reference()
    pol = dict(payers or history.payers)
    months = max(((history.end - history.start).days + 1) / _DAYS_PER_MONTH, 1.0 / _DAYS_PER_MONTH)
    lines, visits = _visit_table(history, ref)
    if visits.empty:
        return PracticeWhatIf(_empty_payers(), _empty_alternatives(), months, 0)
    alts = _alternative_table(visits, pol, ref)
    frame = _priced_lines(lines, visits, alts)
    per = pd.DataFrame({"visit": frame["visit"].to_numpy(), "alt": frame["alt"].to_numpy(),
                        "expected": _expected(frame, pol, ref, risk)})
    per = per.groupby(["visit", "alt"], sort=True)["expected"].sum().reset_index()
    names = alts.drop_duplicates(["payer_id", "mix", *DOCUMENTATION_COLUMNS, "alt"])
    per = per.merge(visits[["visit", "payer_id", "mix", *DOCUMENTATION_COLUMNS]], on="visit", how="left")
    per = per.merge(names[["payer_id", "mix", *DOCUMENTATION_COLUMNS, "alt", "alternative", "status"]],
                    on=["payer_id", "mix", *DOCUMENTATION_COLUMNS, "alt"], how="left")
    per["alternative"] = per["alternative"].fillna(BILLED)
    per["status"] = per["status"].fillna(BILLED)
    return _summaries(per, visits, pol, months)


def _summaries(per: pd.DataFrame, visits: pd.DataFrame, pol: Mapping[str, Any], months: float) -> PracticeWhatIf:
    billed = per[per["alt"] == -1].set_index("visit")["expected"]
    sup = per[per["status"] == SUPPORTED]
    best_sup = sup.sort_values(["visit", "expected", "alt"], ascending=[True, False, True], kind="stable") \
        .drop_duplicates("visit").set_index("visit")
    unk = per[per["status"] == UNKNOWN].groupby("visit")["expected"].max()
    v = visits.set_index("visit")
    b = billed.reindex(v.index).fillna(0.0)
    s = best_sup["expected"].reindex(v.index).fillna(-np.inf)
    improved = s > b + 0.005
    best = np.where(improved, s, b)
    best_name = np.where(improved, best_sup["alternative"].reindex(v.index).fillna(BILLED), BILLED)
    u = unk.reindex(v.index)
    extra = np.where(np.isfinite(u), np.maximum(u - best, 0.0), 0.0)
    work = pd.DataFrame({"payer_id": v["payer_id"].to_numpy(), "billed": b.to_numpy(), "best": best,
                         "improved": improved.to_numpy(), "best_name": best_name,
                         "unknown": np.isfinite(u.to_numpy()), "extra": extra}, index=v.index)
    g = work.groupby("payer_id", sort=True)
    out = g.agg(visits=("billed", "size"), billed=("billed", "sum"), best=("best", "sum"),
                visits_improved=("improved", "sum"), unknown_visits=("unknown", "sum"), extra=("extra", "sum"))
    top = work[work["improved"]].groupby("payer_id")["best_name"].agg(lambda x: x.value_counts().index[0])
    out["best_alternative"] = top.reindex(out.index).fillna(BILLED)
    out = out.reset_index()
    out.insert(1, "payer", out["payer_id"].map(lambda p: getattr(pol.get(p), "name", "") or p))
    result = pd.DataFrame({
        "payer_id": out["payer_id"], "payer": out["payer"], "visits": out["visits"].astype(np.int64),
        "billed_per_month": (out["billed"] / months).round(2), "best_alternative": out["best_alternative"],
        "best_per_month": (out["best"] / months).round(2),
        "difference_per_month": ((out["best"] - out["billed"]) / months).round(2),
        "visits_improved": out["visits_improved"].astype(np.int64),
        "unknown_visits": out["unknown_visits"].astype(np.int64),
        "if_documented_per_month": (out["extra"] / months).round(2),
    })
    # per payer, mix and alternative
    per = per.assign(is_best=False)
    per.loc[per.set_index(["visit", "alternative"]).index.isin(
        list(zip(v.index[improved.to_numpy()], best_name[improved.to_numpy()], strict=True))), "is_best"] = True
    billed_name = _billed_names(per)
    per["billed_this_way"] = per.set_index(["visit", "alternative"]).index.isin(billed_name)
    alt = per[per["alt"] >= 0].groupby(["payer_id", "mix", "alternative", "status"], sort=True).agg(
        visits=("visit", "size"), expected=("expected", "sum"), billed_visits=("billed_this_way", "sum"),
        best_visits=("is_best", "sum")).reset_index()
    alt["expected_per_month"] = (alt.pop("expected") / months).round(2)
    alt.insert(1, "payer", alt["payer_id"].map(lambda p: getattr(pol.get(p), "name", "") or p))
    for c in ("billed_visits", "best_visits"):
        alt[c] = alt[c].astype(np.int64)
    return PracticeWhatIf(result, alt, months, int(len(v)))


def _billed_names(per: pd.DataFrame) -> list[tuple[int, str]]:
    """(visit, alternative) pairs whose expected equals what was billed: the way it was billed."""
    billed = per[per["alt"] == -1].set_index("visit")["expected"]
    alt = per[per["alt"] >= 0]
    same = np.isclose(alt["expected"].to_numpy(), billed.reindex(alt["visit"]).to_numpy(), atol=0.005)
    first = alt[same].drop_duplicates("visit")
    return list(zip(first["visit"], first["alternative"], strict=True))


def _empty_payers() -> pd.DataFrame:
    return pd.DataFrame(columns=["payer_id", "payer", "visits", "billed_per_month", "best_alternative",
                                 "best_per_month", "difference_per_month", "visits_improved", "unknown_visits",
                                 "if_documented_per_month"])


def _empty_alternatives() -> pd.DataFrame:
    return pd.DataFrame(columns=["payer_id", "payer", "mix", "alternative", "status", "visits", "billed_visits",
                                 "best_visits", "expected_per_month"])


def common_session(history: Any) -> dict[str, Any]:
    """The period's most common session mix: codes with their median minutes, and a date in it.

    Returns keyword arguments for :meth:`Session.from_minutes` (``minutes``, ``service_date``:
    the period's last date of service, ``hot_pack``, ``provider_type``,
    ``prescription_on_file``) and ``visits`` (how many of the period's insurance visits have
    that mix); with no visit in the period, 30 minutes each of 97124 and 97140.

    Examples
    --------
    >>> common_session(load_history("data/sample"))["minutes"]  # doctest: +SKIP
    {'97124': 38, '97140': 30}
    """
    lines, visits = (_visit_table(history, load_reference()) if len(history.period)
                     else (pd.DataFrame(), pd.DataFrame()))
    when = pd.Timestamp(history.end).date()
    if visits.empty:
        return {"minutes": {"97124": 30, "97140": 30}, "service_date": when, "hot_pack": False,
                "provider_type": "pt", "prescription_on_file": True, "visits": 0}
    counts = visits["mix"].value_counts()
    mix = str(counts.index[0])
    chosen = lines[lines["visit"].isin(visits.loc[visits["mix"] == mix, "visit"])]
    timed = chosen[chosen["cpt"].astype(str) != "97010"]
    med = timed.groupby("cpt")["minutes"].median()
    minutes = {str(c): int(round(float(m))) if np.isfinite(m) else None for c, m in med.items()}
    ptype = chosen["provider_type"].astype(str).str.lower().mode() if "provider_type" in chosen else pd.Series()
    rx = chosen["prescription_on_file"].astype(str).str.lower().isin(["true", "1", "yes"]).mean() \
        if "prescription_on_file" in chosen else 1.0
    return {"minutes": minutes or {"97124": 30}, "service_date": pd.Timestamp(chosen["service_date"].max()).date(),
            "hot_pack": "97010" in mix.split(" + "), "provider_type": str(ptype.iloc[0]) if len(ptype) else "pt",
            "prescription_on_file": bool(rx >= 0.5), "visits": int(counts.iloc[0])}
