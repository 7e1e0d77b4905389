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

Visits alike in everything the payer rules read get the same units, edits and allowed amounts,
so each visit shape's alternatives are priced once (:mod:`analytics.scenarios.visit_shapes`)
and each visit weighs them with its own learned chance of denial; the lines as billed are
priced one by one, and when two visits of one shape got different figures as billed, every
visit's alternatives are priced on their own. The figures are those of pricing each visit.

:func:`common_session` gives the period's most common session mix, for the single-session
section of the scenarios page.
"""

from __future__ import annotations

import dataclasses
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from analytics.pipeline import evaluate
from analytics.refdata import Reference, load_reference
from analytics.scenarios.alternatives import alternatives
from analytics.scenarios.session import Session
from analytics.scenarios.visit_shapes import (
    block_rows,
    combine,
    first_of_each,
    rule_inputs,
    sequence_ids,
    visit_shapes,
)

__all__ = ["PracticeWhatIf", "practice_whatif", "common_session", "DOCUMENTATION_COLUMNS"]

#: Visit-level documentation flags read from the export when present (true on any line of the
#: visit: documented; false: documented as not so; absent or empty: unknown).
DOCUMENTATION_COLUMNS = ("distinct_regions", "separate_time_blocks")
SUPPORTED, UNKNOWN, UNSUPPORTED, BILLED = "supported", "documentation unknown", "not supported", "as billed"
_THERAPY = ("GP", "GO", "GN")
#: Columns of a period's line the what-if reads (the visit, what was billed, the plan state).
_LINE_COLUMNS = ("visit", "payer_id", "service_date", "provider_id", "provider_type", "cpt", "minutes", "modifiers",
                 "dx_codes", "prescription_on_file", "prior_auth", "submission_date", "charge", "visits_before",
                 "body_region", *DOCUMENTATION_COLUMNS)
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
    without_minutes
        Insurance visits left out because a timed code of theirs has no minutes (an export of
        units): every way of coding a visit counts its units from the minutes.
    """

    by_payer: pd.DataFrame
    by_alternative: pd.DataFrame
    months: float
    visits: int
    without_minutes: int = 0

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


def _visit_table(history: Any, ref: Reference, *, numbered: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the period's insurance lines with the visit's features, one row per visit).

    A visit with a code outside the catalog is left out whole: its alternatives cannot be
    priced, and the data notes already list such lines as not priced. So is a visit with a
    timed code and no minutes (an export of units): its alternatives count units from minutes;
    the visits table's ``attrs["without_minutes"]`` counts them. The lines come sorted
    by visit and code; the visits by visit. ``numbered=False`` leaves out each visit's number
    in the year (``visit_number``), which only the pricing needs.
    """
    from analytics.denials.worklist import visit_numbers

    period = history.period
    period = period[~period["self_pay"].to_numpy() & ~period["cpt"].astype(str).eq("").to_numpy()]
    outside = ~period["cpt"].astype(str).isin(ref.codes["cpt"]).to_numpy()
    if outside.any():
        period = period[~period["visit"].isin(period["visit"].to_numpy()[outside]).to_numpy()]
    timed = ref.codes.loc[ref.codes["timed"].to_numpy(bool), "cpt"].astype(str)
    source = period if "minutes" in period.columns else history.base.loc[period.index]
    no_minutes = source["minutes"].isna().to_numpy() if "minutes" in source.columns else np.ones(len(period), bool)
    unknown = period["cpt"].astype(str).isin(timed).to_numpy() & no_minutes
    without_minutes = 0
    if unknown.any():
        gone = period["visit"].isin(period["visit"].to_numpy()[unknown]).to_numpy()
        without_minutes = int(period.loc[gone, "visit"].nunique())
        period = period[~gone]
    extra = [c for c in _LINE_COLUMNS if c in history.base.columns and c not in period.columns]
    period = period[[c for c in _LINE_COLUMNS if c in period.columns]]
    lines = period.join(history.base.loc[period.index, extra]) if extra else period.copy()
    if numbered:  # the visit number counts every visit of the patient with the payer that year
        scope = history.lines
        number = pd.Series(visit_numbers(scope.join(history.base.loc[scope.index, ["visits_before"]])
                                         if "visits_before" in history.base.columns else scope), index=scope.index)
        lines["visit_number"] = number.reindex(lines.index).to_numpy()
    lines["therapy_mod"] = _therapy_modifiers(lines["modifiers"])
    lines = lines.sort_values(["visit", "cpt"], kind="stable")
    starts = visit_starts(lines)
    docs = {c: _flag(lines, c) for c in DOCUMENTATION_COLUMNS}
    if "body_region" in lines.columns:  # a region on every line, all different: distinct regions
        region = lines["body_region"].astype(str).str.strip().str.lower()
        docs["distinct_regions"] = np.where(_all_distinct(starts, region), 1, docs["distinct_regions"])
    visits = lines.groupby("visit", sort=True).agg(
        payer_id=("payer_id", "first"), service_date=("service_date", "first"), n=("cpt", "size"),
        submission_date=("submission_date", "first"),
        **({"visit_number": ("visit_number", "first")} if numbered else {}))
    visits.insert(2, "mix", pd.Series(_mixes(starts, lines["cpt"]), index=visits.index, dtype="str"))
    for c, flags in docs.items():  # documented on any line of the visit
        visits[c] = np.maximum.reduceat(flags, starts) if len(starts) else flags
    visits = visits.reset_index()
    visits.attrs["without_minutes"] = without_minutes
    return lines, visits


#: The last visit table built: the scenarios page asks for the same period's twice (the
#: what-if, then the most common session). Held while its history lives.
_LAST_TABLE: dict[str, Any] = {}


def _period_visits(history: Any, ref: Reference, *, numbered: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`_visit_table`, reused for the history and reference data it was last built for
    (the frames are read, never changed in place)."""
    held = _LAST_TABLE.get("key")
    if held is not None and held[0]() is history and held[1] is ref and (held[2] or not numbered):
        return _LAST_TABLE["table"]
    table = _visit_table(history, ref, numbered=numbered)
    _LAST_TABLE.clear()
    _LAST_TABLE.update(key=(weakref.ref(history, _forget), ref, numbered), table=table)
    return table


def _forget(gone: weakref.ref) -> None:
    """Drop the held visit table when its history is gone."""
    if _LAST_TABLE.get("key", (None,))[0] is gone:
        _LAST_TABLE.clear()


def _therapy_modifiers(modifiers: pd.Series) -> np.ndarray:
    """The therapy modifier (GP, GO, GN) among each line's modifiers, "" for none; worked out
    once per distinct text."""
    codes, texts = pd.factorize(modifiers, use_na_sentinel=False)
    mods = pd.Series(texts, dtype=modifiers.dtype).astype(str).str.upper()
    return np.select([mods.str.contains(m) for m in _THERAPY], list(_THERAPY), "")[codes]


def visit_starts(lines: pd.DataFrame) -> np.ndarray:
    """First row of each visit of lines sorted by visit."""
    visit = lines["visit"].to_numpy()
    return np.flatnonzero(np.r_[True, visit[1:] != visit[:-1]]) if len(visit) else np.zeros(0, dtype=np.int64)


def _mixes(starts: np.ndarray, cpt: pd.Series) -> np.ndarray:
    """Each visit's codes, sorted and joined with " + " ("97124 + 97140"), built once per distinct mix."""
    codes = pd.factorize(cpt, use_na_sentinel=False)[0]
    mix = sequence_ids(starts, codes)
    firsts = first_of_each(mix)  # first visit of each mix
    ends = np.r_[starts[1:], len(cpt)]
    rows = block_rows(starts[firsts], ends[firsts] - starts[firsts])
    values = np.split(cpt.iloc[rows].to_numpy(dtype=object), np.cumsum(ends[firsts] - starts[firsts])[:-1])
    text = [" + ".join(sorted(map(str, v))) for v in values]
    return np.asarray(text, dtype=object)[mix]


def _all_distinct(starts: np.ndarray, region: pd.Series) -> np.ndarray:
    """Per line, whether every line of its visit names a region and no two the same one."""
    n = len(region)
    visit = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    named = np.minimum.reduceat((region != "").to_numpy(dtype=bool), starts) if n else np.zeros(0, dtype=bool)
    codes = pd.factorize(region)[0]  # a missing region is not a value (as nunique counts)
    seen = codes >= 0
    pairs = np.unique(visit[seen] * (int(codes.max(initial=0)) + 1) + codes[seen])
    distinct = np.bincount(pairs // (int(codes.max(initial=0)) + 1), minlength=len(starts))
    full = named & (distinct == np.diff(np.r_[starts, n]))
    return full[visit]


def _signatures(visits: pd.DataFrame) -> np.ndarray:
    """Each visit's signature number (payer, mix and documentation), in order of first appearance."""
    return combine([visits[c] for c in ("payer_id", "mix", *DOCUMENTATION_COLUMNS)], len(visits))


def _alternative_table(visits: pd.DataFrame, payers: Mapping[str, Any], ref: Reference) -> pd.DataFrame:
    """The alternatives of each distinct (payer, mix, documentation) signature (``sig``, as
    :func:`_signatures` numbers them): one row per code."""
    sig_cols = ["payer_id", "mix", *DOCUMENTATION_COLUMNS]
    sigs = visits[sig_cols].iloc[first_of_each(_signatures(visits))].reset_index(drop=True)
    rows = []
    for n, s in enumerate(sigs.itertuples(index=False)):
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
                rows.append((s.payer_id, s.mix, s.distinct_regions, s.separate_time_blocks, n, i, alt.name,
                             status, code, mod))
    return pd.DataFrame(rows, columns=[*sig_cols, "sig", "alt", "alternative", "status", "cpt", "ncci_mod"])


#: Columns of the lines priced for each visit and alternative.
_PRICED_COLUMNS = ["visit", "alt", "payer_id", "service_date", "provider_id", "provider_type", "cpt", "minutes",
                   "modifiers", "dx_codes", "prescription_on_file", "prior_auth", "visit_number",
                   "submission_date", "charge"]


def _billed_lines(lines: pd.DataFrame) -> pd.DataFrame:
    """The visits' lines as billed (alternative -1)."""
    return lines.assign(alt=-1).reindex(columns=_PRICED_COLUMNS)


def _alternative_lines(lines: pd.DataFrame, visits: pd.DataFrame, alts: pd.DataFrame) -> pd.DataFrame:
    """Service lines for every visit x alternative, with the visit's date, provider, payer,
    minutes and plan state, and the therapy modifier with the alternative's NCCI modifier."""
    sig_cols = ["payer_id", "mix", *DOCUMENTATION_COLUMNS]
    va = visits[["visit", *sig_cols]].merge(alts, on=sig_cols, how="inner")
    # the visit's line of each code gives the alternative's minutes, date, provider and plan state
    base = lines[[c for c in (*_PRICED_COLUMNS, "therapy_mod")
                  if c in lines.columns and c not in ("payer_id", "alt", "modifiers")]]
    alt_lines = va[["visit", "payer_id", "alt", "cpt", "ncci_mod"]].merge(base, on=["visit", "cpt"], how="left")
    mods = alt_lines["therapy_mod"].astype(str)
    ncci = alt_lines["ncci_mod"].astype(str)
    alt_lines["modifiers"] = np.where((mods != "") & (ncci != ""), mods + "," + ncci, mods + ncci)
    return alt_lines.reindex(columns=_PRICED_COLUMNS)


def _as_patients(frame: pd.DataFrame) -> pd.DataFrame:
    """Each visit x alternative its own synthetic patient, with its visits before in the year."""
    frame = frame.reset_index(drop=True)
    key = frame["visit"].astype(np.int64) * 1000 + frame["alt"].astype(np.int64) + 1
    frame["patient_id"] = pd.factorize(key)[0].astype(np.int64)
    frame["visits_before"] = pd.to_numeric(frame.pop("visit_number"), errors="coerce").fillna(1) - 1
    return frame


def _evaluated(frame: pd.DataFrame, pol: Mapping[str, Any], ref: Reference) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(frame.drop(columns=["visit", "alt"]), pol, ref)


def _rule_figures(out: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(allowed, what a patient owes, denied by a rule) of each evaluated line."""
    rule = out["disposition"].astype(str).isin(["denied", "not_billed"]).to_numpy()
    allowed = np.nan_to_num(out["allowed"].to_numpy(dtype=float, na_value=np.nan))
    owed = np.nan_to_num(out["noncovered_applied"].to_numpy(dtype=float, na_value=np.nan))
    return allowed, owed, rule


def _billed_chance(out: pd.DataFrame, billed: pd.DataFrame, pol: Mapping[str, Any], risk: Any | None) -> np.ndarray:
    """The chance of denial of each line as billed: learned, else the payer's prior."""
    if risk is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return risk.predict_proba(out).to_numpy(dtype=float)
    # the payer's prior (evaluate's p_deny is 1 on the lines an edit denies as billed)
    prior = {k: float(v.denial_prior or 0.0) for k, v in pol.items()}
    return billed["payer_id"].astype(str).map(prior).fillna(0.0).to_numpy(dtype=float)


def _line_expected(allowed: np.ndarray, owed: np.ndarray, rule: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Expected collections of a line: allowed x (1 - chance of denial) + what a patient owes.

    The payer rules of each alternative decide its certain denials (chance 1); every other
    line takes the chance learned for its code as billed in the visit (``p``), so that
    dropping a code or changing a modifier changes the rules that apply, not the learned chance.
    """
    p = np.where(rule, 1.0, np.nan_to_num(p, nan=0.0))
    return np.round(allowed * (1 - p) + owed, 2)


def _visit_expected(lines: pd.DataFrame, visits: pd.DataFrame, alts: pd.DataFrame, pol: Mapping[str, Any],
                    ref: Reference, risk: Any | None) -> tuple:
    """Expected collections of each visit as billed (alternative -1) and coded each way (0, 1 ...).

    The lines as billed are priced one by one (the learned chance of denial reads each); the
    alternatives once per visit shape (:mod:`analytics.scenarios.visit_shapes`), or once per
    visit when visits of one shape got different figures as billed. Returns arrays (the
    visit's row in ``visits``, alternative, expected), sorted by visit and alternative.
    """
    billed = _as_patients(_billed_lines(lines))
    out = _evaluated(billed, pol, ref)
    p_billed = _billed_chance(out, billed, pol, risk)
    starts = visit_starts(lines)
    lengths = np.diff(np.r_[starts, len(lines)])
    vrank = np.repeat(np.arange(len(starts)), lengths)
    cpt_v = pd.Index(pd.unique(billed["cpt"].astype(str)))
    cpt = cpt_v.get_indexer(billed["cpt"].astype(str))
    chance = _chance_by_code(vrank, cpt, p_billed, len(cpt_v))
    figures = _rule_figures(out)
    expected = [_line_expected(*figures, chance(vrank, cpt))]
    found = _alternatives_by_shape(lines, visits, alts, billed, out, figures, starts, pol, ref, cpt_v)
    if found is None:
        found = _alternatives_each(lines, visits, alts, pol, ref, cpt_v)
    a_rank, a_alt, a_cpt, a_figures = found
    expected.append(_line_expected(*a_figures, chance(a_rank, a_cpt)))
    return _visit_sums(vrank, a_rank, a_alt, expected)


def _visit_sums(vrank: np.ndarray, a_rank: np.ndarray, a_alt: np.ndarray, expected: list) -> tuple:
    """Per visit and alternative, the sum of its lines' expected collections in row order:
    arrays (visit rank, alternative, sum) sorted by visit and alternative. ``expected`` holds
    the lines as billed (by ``vrank``) and those of the alternatives (``a_rank``, ``a_alt``)."""
    order = np.arange(len(a_rank)) if (np.diff(a_rank) >= 0).all() else np.argsort(a_rank, kind="stable")
    n_visits = int(max(vrank.max(initial=-1), a_rank.max(initial=-1))) + 1
    per_b = np.bincount(vrank, minlength=n_visits)
    per_a = np.bincount(a_rank, minlength=n_visits)
    begin = np.cumsum(per_b + per_a) - per_b - per_a
    # each visit's lines as billed, then its alternatives' lines: the groups come in order
    at_b = begin[vrank] + np.arange(len(vrank)) - (np.cumsum(per_b) - per_b)[vrank]
    rank_a = a_rank[order]
    at_a = begin[rank_a] + per_b[rank_a] + np.arange(len(order)) - (np.cumsum(per_a) - per_a)[rank_a]
    width = int(a_alt.max(initial=-1)) + 2
    key = np.empty(len(vrank) + len(order), dtype=np.int64)
    key[at_b] = vrank * width
    key[at_a] = rank_a * width + a_alt[order] + 1
    values = np.empty(len(key))
    values[at_b] = expected[0]
    values[at_a] = expected[1][order]
    sums = pd.Series(values).groupby(key, sort=False).sum()
    if not sums.index.is_monotonic_increasing:
        sums = sums.sort_index()
    key = sums.index.to_numpy()
    return key // width, key % width - 1, sums.to_numpy()


def _chance_by_code(vrank: np.ndarray, code: np.ndarray, p: np.ndarray, n_codes: int):
    """A look-up of the chance of denial learned for a code as billed in a visit (the visit's
    first line of the code); NaN where the visit did not bill the code."""
    key = vrank.astype(np.int64) * n_codes + code
    table = np.full(int(vrank.max(initial=-1)) * n_codes + n_codes, np.nan)
    first = ~pd.Index(key).duplicated()
    table[key[first]] = p[first]
    return lambda rank, codes: np.where(codes >= 0, table[rank.astype(np.int64) * n_codes + codes], np.nan)


def _alternatives_each(lines: pd.DataFrame, visits: pd.DataFrame, alts: pd.DataFrame, pol: Mapping[str, Any],
                       ref: Reference, cpt_v: pd.Index) -> tuple:
    """Every visit's alternatives priced: (visit rank, alt, code's place in ``cpt_v``, rule
    figures) per line."""
    frame = _as_patients(_alternative_lines(lines, visits, alts))
    out = _evaluated(frame, pol, ref)
    rank = np.searchsorted(visits["visit"].to_numpy(), frame["visit"].to_numpy())
    return (rank, frame["alt"].to_numpy(dtype=np.int64), cpt_v.get_indexer(frame["cpt"].astype(str)),
            _rule_figures(out))


def _alternatives_by_shape(lines: pd.DataFrame, visits: pd.DataFrame, alts: pd.DataFrame, billed: pd.DataFrame,
                           out: pd.DataFrame, figures: tuple, starts: np.ndarray, pol: Mapping[str, Any],
                           ref: Reference, cpt_v: pd.Index) -> tuple | None:
    """The alternatives of one visit per shape priced, their figures given to every visit of the
    shape; None when visits whose lines as billed the shapes call alike got different figures
    from the rules (``out``, ``figures``): then each visit is priced on its own."""
    common = rule_inputs(billed, starts, pol, ref, leave_out=["modifiers"])
    lengths = np.diff(np.r_[starts, len(lines)])
    # as billed: visits of one shape must have had the same figures, line for line
    shape = visit_shapes(starts, combine([common, billed["modifiers"]], len(common)))
    reps = first_of_each(shape)
    same = block_rows(starts[reps][shape], lengths)
    for a in (out["units"].to_numpy(), combine([out["disposition"]], len(out)), *figures):
        if not np.array_equal(a[same], a):
            return None
    # the alternatives are built from the therapy modifier, not the modifiers as billed
    shape = visit_shapes(starts, combine([common, lines["therapy_mod"]], len(common)),
                         [visits[c].to_numpy() for c in DOCUMENTATION_COLUMNS])
    reps = first_of_each(shape)
    frame = _as_patients(_alternative_lines(lines.iloc[block_rows(starts[reps], lengths[reps])],
                                            visits.iloc[reps], alts))
    allowed, owed, rule = _rule_figures(_evaluated(frame, pol, ref))
    # each visit takes its shape's alternatives, line for line in the shape's order
    rep_rank = np.searchsorted(visits["visit"].to_numpy(), frame["visit"].to_numpy())
    order = np.argsort(rep_rank, kind="stable")
    count = np.bincount(rep_rank, minlength=len(visits))[reps]
    begin = np.r_[0, np.cumsum(count)[:-1]]
    rows = order[block_rows(begin[shape], count[shape])]
    rank = np.repeat(np.arange(len(visits)), count[shape])
    cpt = cpt_v.get_indexer(frame["cpt"].astype(str))
    return rank, frame["alt"].to_numpy(dtype=np.int64)[rows], cpt[rows], (allowed[rows], owed[rows], rule[rows])


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
    lines, visits = _period_visits(history, ref)
    without = int(visits.attrs.get("without_minutes", 0))
    if visits.empty:
        return PracticeWhatIf(_empty_payers(), _empty_alternatives(), months, 0, without)
    alts = _alternative_table(visits, pol, ref)
    rank, alt, expected = _visit_expected(lines, visits, alts, pol, ref, risk)
    return dataclasses.replace(_summaries(_Ways(rank, alt, expected, visits, alts), pol, months),
                               without_minutes=without)


class _Ways:
    """Each visit x alternative's expected collections, with the alternative's row of the
    names (``at``: -1 for the way it was billed), as arrays sorted by visit and alternative."""

    def __init__(self, rank: np.ndarray, alt: np.ndarray, expected: np.ndarray, visits: pd.DataFrame,
                 alts: pd.DataFrame):
        self.rank, self.alt, self.expected, self.visits = rank, alt, expected, visits
        #: one row per signature and alternative: its name and status
        self.names = alts.drop_duplicates(["sig", "alt"]).reset_index(drop=True)
        width = int(alts["alt"].to_numpy().max(initial=-1)) + 2
        sig = _signatures(visits)[rank]
        self.at = pd.Index(self.names["sig"].to_numpy() * width + self.names["alt"].to_numpy() + 1).get_indexer(
            sig * width + alt + 1)
        self.name_code = pd.factorize(self.names["alternative"])[0]

    def name_of(self, at: np.ndarray) -> np.ndarray:
        """The names of rows ``at`` of the names ("as billed" for -1)."""
        return np.append(self.names["alternative"].to_numpy(dtype=object), BILLED)[at]

    def status_is(self, status: str) -> np.ndarray:
        """Rows whose alternative has ``status``."""
        return np.append(self.names["status"].to_numpy(dtype=object) == status, False)[self.at]

    def per_visit_max(self, rows: np.ndarray) -> np.ndarray:
        """Per visit, the largest expected of its ``rows``; NaN for a visit without one."""
        out = np.full(len(self.visits), np.nan)
        rows = np.flatnonzero(rows)
        if len(rows):
            rank = self.rank[rows]
            starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]])
            out[rank[starts]] = np.maximum.reduceat(self.expected[rows], starts)
        return out


def _summaries(ways: _Ways, pol: Mapping[str, Any], months: float) -> PracticeWhatIf:
    v = ways.visits.set_index("visit")
    rank, e = ways.rank, ways.expected
    is_billed = ways.alt == -1
    billed = np.full(len(v), np.nan)
    billed[rank[is_billed]] = e[is_billed]
    b = np.nan_to_num(billed, nan=0.0)
    top_rows = _best_rows(rank, e, ways.status_is(SUPPORTED))
    s = np.full(len(v), -np.inf)
    s[rank[top_rows]] = e[top_rows]
    best_at = np.full(len(v), -1)
    best_at[rank[top_rows]] = ways.at[top_rows]
    improved = s > b + 0.005
    best = np.where(improved, s, b)
    best_name = np.where(improved, ways.name_of(best_at), BILLED)
    u = ways.per_visit_max(ways.status_is(UNKNOWN))
    extra = np.where(np.isfinite(u), np.maximum(u - best, 0.0), 0.0)
    work = pd.DataFrame({"payer_id": v["payer_id"].to_numpy(), "billed": b, "best": best,
                         "improved": improved, "best_name": best_name,
                         "unknown": np.isfinite(u), "extra": extra}, index=v.index)
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
    best_code = np.where(improved, np.append(ways.name_code, -2)[best_at], -2)
    return PracticeWhatIf(result, _by_alternative(ways, billed, best_code, pol, months), months, int(len(v)))


def _by_alternative(ways: _Ways, billed: np.ndarray, best_code: np.ndarray, pol: Mapping[str, Any],
                    months: float) -> pd.DataFrame:
    """Per payer, mix and alternative: visits, expected a month, visits billed this way and
    visits for which it is the best way (``best_code``: the best way's name per visit, -2 none)."""
    rows = np.flatnonzero(ways.alt >= 0)
    rank, e, at = ways.rank[rows], ways.expected[rows], ways.at[rows]
    name = ways.name_code[at]
    # the way it was billed: the first alternative expected to bring in what was billed
    same = np.isclose(e, billed[rank], atol=0.005)
    first = np.flatnonzero(same)
    first = first[np.r_[True, rank[first][1:] != rank[first][:-1]]] if len(first) else first
    billed_code = np.full(len(billed), -2, dtype=np.int64)
    billed_code[rank[first]] = name[first]
    keys = ["payer_id", "mix", "alternative", "status"]
    group_of_name = pd.MultiIndex.from_frame(ways.names[keys]).factorize()[0]
    group = group_of_name[at]
    n = int(group_of_name.max(initial=-1)) + 1
    visits = np.bincount(group, minlength=n)
    billed_visits = np.bincount(group, weights=name == billed_code[rank], minlength=n)
    best_visits = np.bincount(group, weights=name == best_code[rank], minlength=n)
    expected = pd.Series(e).groupby(group, sort=False).sum().reindex(np.arange(n)).to_numpy()
    table = ways.names[keys].iloc[first_of_each(group_of_name)].reset_index(drop=True).assign(
        visits=visits, billed_visits=billed_visits.astype(np.int64), best_visits=best_visits.astype(np.int64),
        expected_per_month=(pd.Series(expected) / months).round(2))
    table = table[visits > 0].sort_values(keys, kind="stable").reset_index(drop=True)
    table.insert(1, "payer", table["payer_id"].map(lambda p: getattr(pol.get(p), "name", "") or p))
    return table


def _best_rows(rank: np.ndarray, expected: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per visit, the row of the ``allowed`` alternative expected to bring in most (on a tie the
    first); rows are sorted by visit and alternative."""
    rows = np.flatnonzero(allowed)
    if not len(rows):
        return rows
    visit = rank[rows]
    e = expected[rows]
    starts = np.flatnonzero(np.r_[True, visit[1:] != visit[:-1]])
    top = np.maximum.reduceat(e, starts)
    hit = e == np.repeat(top, np.diff(np.r_[starts, len(rows)]))
    best = rows[hit]
    return best[np.r_[True, visit[hit][1:] != visit[hit][:-1]]]


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
    lines, visits = (_period_visits(history, load_reference(), numbered=False) if len(history.period)
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
