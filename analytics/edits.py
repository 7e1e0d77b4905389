"""Claim edits: which lines a payer denies, and why, before and after pricing.

Each line gets a ``disposition`` (``payable``, ``denied`` or ``not_billed``; pricing later
marks ``reduced`` and ``unpriced``), an ``edit_reason`` in words, the ``carc`` and
``group_code`` a payer would send on the 835, and a ``rarc`` where one is customary.

Rules, in the order they are checked (the first that denies a line names its reason):

1. no billable units (from :mod:`analytics.units`);
2. code not covered by the plan (CARC 96, or 204 with ``noncovered_carc``): group CO, or PR
   when the policy's ``noncovered_liability`` is ``patient`` (the patient owes the line;
   :func:`analytics.pricing.split_cost_share` puts the amount in ``patient_part``);
3. Medicare status B (e.g. 97010): bundled, never paid separately (CO-97, M15);
4. rendering provider type not allowed for the code (CARC 170);
5. prescription required and not on file (CARC 174);
6. Medicare therapy line without GP/GO/GN (CARC 4);
7. visit past the plan's annual visit limit (CARC 119): group PR, the patient owes the line
   (``visit_limit_liability: patient``, the default; priced as a patient-owed plan exclusion),
   or CO when the policy says ``provider``; a visit past the visits allowed without prior
   authorisation is always the practice's (CO-197);
8. claim submitted after the timely-filing limit (CO-29, always the practice's);
9. medically unlikely edits per code per day (the visit, grouping ``mue``), by MUE
   adjudication indicator (CO-151);
10. NCCI procedure-to-procedure pairs: the column-2 code is denied when the column-1 code is
    billed the same visit (grouping ``ncci``), unless the indicator is 1 and the column-2 line carries a modifier
    the payer honours (CO-97, M80);
11. after pricing: Medicare lines without KX once the patient's allowed therapy dollars for
    the year pass the KX threshold (CO-119), counted apart for PT/SLP and for OT.

A denial's group code is the CARC's usual one (``reference/carc.csv``: PR for 119 and 204,
CO for the others), except on the two denials whose liability the plan decides (rules 2 and
7), where the policy's ``noncovered_liability`` or ``visit_limit_liability`` sets PR or CO.
A denied line with group PR is what :func:`analytics.pricing.split_cost_share` bills the
patient for.
"""


from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analytics._frame import (
    VISIT_KEYS,
    LineKeys,
    case_rows,
    categorical,
    coded_modifier_flags,
    dense_ids,
    distinct_rows,
    factorize,
    lookup_pairs,
    modifier_flags,
    normalise_modifier_text,
    put_rows,
    sort_order,
)
from analytics.grouping import group_ids, grouping_per_line
from analytics.payers import NONCOVERED_CARCS, PayerColumns, PayerPolicy, payer_columns
from analytics.refdata import NCCI_MODIFIERS, Reference, load_reference

__all__ = ["apply_edits", "apply_threshold_edits", "modifier_flags", "EDIT_COLUMNS", "DISPOSITIONS",
           "OT_PROVIDER_TYPES", "apply_edits_with_keys", "apply_threshold_edits_with_keys"]

EDIT_COLUMNS = ("disposition", "edit_reason", "carc", "group_code", "rarc")
_THERAPY_MODS = ("GP", "GO", "GN")
#: Rendering provider types whose lines count toward the occupational-therapy KX threshold
#: when the line carries no therapy modifier (GP/GO/GN).
OT_PROVIDER_TYPES = ("ot", "ota")


class _Outcome:
    """The first denial of each line, with its reason kept as an id into a table of texts."""

    PAYABLE = "payable: passes the payer's edits"

    def __init__(self, n: int):
        self.denied = np.zeros(n, dtype=bool)
        self.not_billed = np.zeros(n, dtype=bool)
        self.reason = np.zeros(n, dtype=np.int64)
        self.texts: list[str] = [self.PAYABLE]
        self._ids = {self.PAYABLE: 0}
        # CARC and RARC per line as ids into small tables ("" = none), not a string per line
        self.carc = np.zeros(n, dtype=np.int64)
        self.rarc = np.zeros(n, dtype=np.int64)
        self.carc_codes: list[str] = [""]
        self.rarc_codes: list[str] = [""]
        # Denials whose liability the plan decides (plan exclusions, visits past the visit
        # limit): True in ``liability_set`` where the policy sets the group code, and in
        # ``patient_owes`` where that group is PR (the patient owes the line), else CO.
        self.liability_set = np.zeros(n, dtype=bool)
        self.patient_owes = np.zeros(n, dtype=bool)

    @property
    def open(self) -> np.ndarray:
        return ~(self.denied | self.not_billed)

    def text_id(self, text: str) -> int:
        if text not in self._ids:
            self._ids[text] = len(self.texts)
            self.texts.append(text)
        return self._ids[text]

    @staticmethod
    def _code_id(table: list[str], code: str) -> int:
        if code not in table:
            table.append(code)
        return table.index(code)

    def set_codes(self, mask: np.ndarray, carc: str, rarc: str) -> None:
        self.carc[mask] = self._code_id(self.carc_codes, carc)
        self.rarc[mask] = self._code_id(self.rarc_codes, rarc)

    def worded(self, mask: np.ndarray, keys: dict[str, np.ndarray], words) -> np.ndarray:
        """Reason ids for the rows in ``mask``: ``words(row)`` is called once per distinct key."""
        idx = np.flatnonzero(mask)
        if not keys:
            return np.full(len(idx), self.text_id(words(None)))
        cols = {k: np.asarray(v)[idx] for k, v in keys.items()}
        group, first = distinct_rows(list(cols.values()))
        rows = case_rows({k: v[first] for k, v in cols.items()})
        ids = np.array([self.text_id(words(r)) for r in rows], dtype=np.int64)
        return ids[group]

    def deny(self, mask, carc: str, rarc: str, keys: dict[str, np.ndarray], words) -> None:
        mask = np.asarray(mask, dtype=bool) & self.open
        if not mask.any():
            return
        self.denied[mask] = True
        self.reason[mask] = self.worded(mask, keys, words)
        self.set_codes(mask, carc, rarc)

    def deny_owed(self, mask, patient_owes: bool, carc: str, rarc: str, keys: dict[str, np.ndarray],
                  words) -> None:
        """:meth:`deny`, with the group code set by the plan: PR when ``patient_owes`` (the
        patient owes the line), else CO (the practice writes it off)."""
        mask = np.asarray(mask, dtype=bool) & self.open
        if not mask.any():
            return
        self.deny(mask, carc, rarc, keys, words)
        self.liability_set[mask] = True
        self.patient_owes[mask] = patient_owes

    def categorical(self, ids: np.ndarray | None = None) -> pd.Categorical:
        ids = self.reason if ids is None else ids
        return pd.Categorical.from_codes(ids, categories=pd.Index(self.texts, dtype=object).astype(str),
                                         validate=False)


def apply_edits(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
    patient_col: str | None = None,
) -> pd.DataFrame:
    """Run the payer's pre-pricing edits on unit-counted service lines.

    Parameters
    ----------
    lines
        Output of :func:`analytics.units.compute_units`, with ``payer_id``, ``cpt``,
        ``modifiers`` and the visit columns; optional ``provider_type``,
        ``prescription_on_file`` (absent = not on file), ``prior_auth`` (bool),
        ``visits_before`` (visits already used this year with the payer),
        ``submission_date``.
    payers
        Policies by payer id (:func:`analytics.payers.load_payers`).

    Returns
    -------
    DataFrame
        ``lines`` with ``disposition``, ``edit_reason``, ``carc``, ``group_code``, ``rarc``.
    """
    ref = reference or load_reference()
    return apply_edits_with_keys(lines, payers, ref, LineKeys(lines, visit_keys, patient_col=patient_col))


def apply_edits_with_keys(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy], ref: Reference,
                          keys: LineKeys) -> pd.DataFrame:
    """:func:`apply_edits` on codes computed once (``keys``)."""
    n = len(lines)
    pol = PayerColumns(lines, payers, keys.payer)
    payer_c, payer_v = pol.codes, pol.values
    cpt_c, cpt_v = keys.cpt
    catalog = ref.code_table(pd.Series(cpt_v))
    mod_c, mod_v = keys.modifiers
    out = _Outcome(n)
    keys_pc = {"p": payer_c, "c": cpt_c}

    # 1. units
    zero = lines["units"].to_numpy() == 0
    out.not_billed[zero] = True
    out.reason[zero] = out.text_id("not billed: no billable units (see units_reason)")

    # 2. plan exclusions: CO (the practice writes the line off) or PR (the patient owes it),
    # with CARC 96 or 204, as each policy says
    excluded = {(p.payer_id, c) for p in payers.values() for c in p.not_covered}
    if excluded:
        mask = lookup_pairs(payer_c, payer_v, cpt_c, cpt_v, excluded) & out.open
        # the policy settings compared once per payer, then looked up per line
        patient_owes = pol.per_payer("noncovered_liability", object) == "patient"
        nc_carc = pol.per_payer("noncovered_carc", object)
        for carc in NONCOVERED_CARCS:
            for owes in (False, True):
                m = mask & ((nc_carc == carc) & (patient_owes == owes))[payer_c]
                out.deny_owed(m, owes, carc, "N130", keys_pc, _exclusion_words(payer_v, cpt_v, carc, owes))

    # 3. Medicare status indicators
    status = catalog["medicare_status"].to_numpy(dtype=object)  # per distinct code
    med = pol.array("medicare_status", bool)
    out.deny(med & (status == "B")[cpt_c], "97", "M15", {"c": cpt_c}, lambda r: (
        f"bundled: {cpt_v[r.c]} has Medicare status B (paid only as part of other services, never separately)"))
    out.deny(med & np.isin(status, ["N", "I"])[cpt_c], "96", "", {"c": cpt_c},
             lambda r: f"{cpt_v[r.c]} is not payable by Medicare (status N or I)")
    # A contract priced off the Medicare fee schedule has no amount for a status-B code: it is
    # bundled there too, unless the contract names a rate for it (fee.rates).
    off_mfs = (pol.per_payer("fee_basis", object) == "percent_of_medicare")[payer_c]
    if (off_mfs & ~med).any():
        rated = {(p.payer_id, c) for p in payers.values() for c in p.fee.rates}
        has_rate = lookup_pairs(payer_c, payer_v, cpt_c, cpt_v, rated) if rated else np.zeros(n, dtype=bool)
        out.deny(off_mfs & ~med & (status == "B")[cpt_c] & ~has_rate, "97", "M15", keys_pc, lambda r: (
            f"bundled: {payer_v[r.p]} prices off the Medicare fee schedule, where {cpt_v[r.c]} is status B "
            "(never paid separately); a contract rate under fee.rates would pay it"))

    # 4. provider type allowed per code (an unknown type is not held against the line)
    if any(p.provider_types for p in payers.values()):
        pt_src = lines["provider_type"] if "provider_type" in lines.columns else pd.Series("", index=lines.index)
        pt_c, pt_v = factorize(pt_src)
        pt_v = np.array([str(v).lower() for v in pt_v], dtype=object)
        restricted = {(p.payer_id, c) for p in payers.values() for c in p.provider_types}
        is_restricted = lookup_pairs(payer_c, payer_v, cpt_c, cpt_v, restricted)
        if is_restricted.any():
            pc = payer_c * len(cpt_v) + cpt_c
            pc_v = np.array([f"{a}|{b}" for a in payer_v for b in cpt_v], dtype=object)
            allowed = {(f"{p.payer_id}|{c}", t) for p in payers.values() for c, ts in p.provider_types.items()
                       for t in ts}
            ok = lookup_pairs(pc, pc_v, pt_c, pt_v, allowed)
            out.deny(is_restricted & ~ok & (pt_v != "")[pt_c], "170", "", {**keys_pc, "t": pt_c}, lambda r: (
                f"{payer_v[r.p]} pays {cpt_v[r.c]} only to certain provider types, not {pt_v[r.t]} "
                "(the rendering provider)"))

    # 5. prescription on file
    need_rx = pol.array("prescription_required", bool)
    if need_rx.any():
        rx = (lines["prescription_on_file"].fillna(False).astype(bool).to_numpy()
              if "prescription_on_file" in lines.columns else np.zeros(n, dtype=bool))
        out.deny(need_rx & ~rx, "174", "", {"p": payer_c}, lambda r: (
            f"{payer_v[r.p]} requires a prescription or referral on file before the service; none is recorded"))

    # 6. Medicare therapy modifier
    need_gp = pol.array("require_gp", bool) & catalog["therapy"].to_numpy(bool)[cpt_c]
    if need_gp.any():
        has_gp = coded_modifier_flags(mod_c, mod_v, _THERAPY_MODS)
        out.deny(need_gp & ~has_gp, "4", "", {"c": cpt_c}, lambda r: (
            f"modifier: Medicare therapy lines need GP (PT plan of care), GO (OT) or GN (SLP); {cpt_v[r.c]} has none"))

    # 7. visit limits and prior authorisation
    limit = pol.array("visit_limit")
    auth_after = pol.array("prior_auth_after_visits")
    if np.isfinite(limit).any() or np.isfinite(auth_after).any():
        vnum = _visit_number(lines, keys, payer_c)
        over = np.isfinite(limit) & (vnum > np.nan_to_num(limit, nan=np.inf))
        if over.any():
            patient_owes = pol.per_payer("visit_limit_liability", object) == "patient"
            for owes in (False, True):
                out.deny_owed(over & (patient_owes == owes)[payer_c], owes, "119", "",
                              {"p": payer_c, "v": vnum, "l": limit}, _visit_limit_words(payer_v, owes))
        auth = (lines["prior_auth"].fillna(False).astype(bool).to_numpy() if "prior_auth" in lines.columns
                else np.zeros(n, dtype=bool))
        need_auth = np.isfinite(auth_after) & (vnum > np.nan_to_num(auth_after, nan=np.inf)) & ~auth
        out.deny(need_auth, "197", "", {"v": vnum, "l": auth_after}, lambda r: (
            f"authorisation: visit {r.v:.0f} is past the {r.l:.0f} visits allowed without prior authorisation "
            "and none is on file"))

    # 8. timely filing
    if "submission_date" in lines.columns:
        days = _days_between(keys.date, pd.to_datetime(lines["submission_date"]).to_numpy())
        lim = pol.array("timely_filing_days")
        out.deny(days > lim, "29", "", {"d": days, "l": lim}, lambda r: (
            f"timely filing: submitted {r.d:.0f} days after the service, past the payer's {r.l:.0f}-day limit"))

    # 9. MUE, per date of service of the patient with the provider (grouping "mue")
    use_mue = pol.array("mue", bool)
    if use_mue.any():
        group = group_ids(keys, grouping_per_line("mue", payer_c, payer_v, payers))
        _mue(lines, cpt_c, cpt_v, group, use_mue, ref, out)

    # 10. NCCI procedure-to-procedure pairs, within the visit (grouping "ncci")
    follow = pol.array("ncci_follow", bool)
    if follow.any():
        group = group_ids(keys, grouping_per_line("ncci", payer_c, payer_v, payers))
        _ptp(keys, cpt_c, cpt_v, payer_c, payer_v, group, follow, payers, ref, out)

    disposition = np.where(out.denied, 2, np.where(out.not_billed, 3, 0))
    carc = categorical(out.carc, out.carc_codes)
    group_code = _group_codes(carc, ref)
    if out.liability_set.any():  # the plan, not the CARC's usual group, says who owes these lines
        rows = np.flatnonzero(out.liability_set)
        group_code = put_rows(pd.Series(group_code, index=lines.index), rows,
                              np.where(out.patient_owes[rows], "PR", "CO").astype(object)).array
    return lines.assign(
        disposition=pd.Categorical.from_codes(disposition, categories=DISPOSITIONS),
        edit_reason=out.categorical(),
        carc=carc,
        group_code=group_code,
        rarc=categorical(out.rarc, out.rarc_codes),
    )


def _exclusion_words(payer_v: np.ndarray, cpt_v: np.ndarray, carc: str, patient_owes: bool):
    """Reason text of a line the plan excludes (rule 2), per distinct (payer, code)."""
    if not patient_owes:
        if carc == "96":
            return lambda r: f"{payer_v[r.p]} does not cover {cpt_v[r.c]} under this plan"
        return lambda r: (f"{payer_v[r.p]} does not cover {cpt_v[r.c]} under this plan (CO-{carc}: the "
                          "practice writes it off)")
    return lambda r: (f"{payer_v[r.p]} does not cover {cpt_v[r.c]} under this plan; the patient owes it (PR-{carc}): "
                      "the contract rate under fee.rates, else the practice's charge")


def _visit_limit_words(payer_v: np.ndarray, patient_owes: bool):
    """Reason text of a visit past the plan's yearly visit limit (rule 7), per distinct (payer, visit, limit)."""
    if patient_owes:
        tail = "; the patient owes it (PR-119): the contract rate under fee.rates, else the practice's charge"
    else:
        tail = "; the plan bars billing the patient (CO-119: the practice writes it off)"
    return lambda r: (f"benefit maximum: visit {r.v:.0f} of the year with {payer_v[r.p]}, past its limit of "
                      f"{r.l:.0f} visits" + tail)


def _days_between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Whole days from ``start`` to ``end`` (floor, as ``Timedelta.days``); NaN where either is missing."""
    diff = end - start
    missing = np.isnat(diff)
    days = np.floor_divide(np.where(missing, np.timedelta64(0, "D"), diff), np.timedelta64(1, "D"))
    return np.where(missing, np.nan, days.astype(float))


DISPOSITIONS = ["payable", "reduced", "denied", "not_billed", "unpriced"]


def _group_codes(carc: pd.Categorical, ref: Reference) -> pd.Categorical:
    typical = ref.typical_group_by_carc
    cats = pd.Series(carc.categories.astype(str))
    groups = np.where(cats == "", "", cats.map(typical).fillna("CO").to_numpy())
    codes = np.asarray(carc.codes)
    return categorical(np.where(codes < 0, len(groups), codes), np.append(groups, ""))


def _visit_number(lines: pd.DataFrame, keys: LineKeys, payer_c: np.ndarray) -> np.ndarray:
    """1-based number of each line's visit among the patient's visits with that payer that year."""
    visit, patient, year = keys.visit, keys.patient, keys.year
    first = keys.visit_first  # first line of each visit, in visit order
    # by patient, payer, date (hence year), then visit; the sort keeps visit order on ties
    order = first[sort_order(keys.date_rank[first], payer_c[first], patient[first])]
    # visits already used, read on each visit's first line only
    before = (pd.to_numeric(lines["visits_before"].iloc[order], errors="coerce").fillna(0).to_numpy()
              if "visits_before" in lines.columns else np.zeros(len(order)))
    # position of each visit among those of its patient, payer and year
    same = np.ones(len(order), dtype=bool)  # the visit before is of the same patient, payer and year
    same[:1] = False
    for key in (patient[order], payer_c[order], year[order]):
        same[1:] &= key[1:] == key[:-1]
    at = np.arange(len(order))
    pos = at - np.maximum.accumulate(np.where(same, 0, at))
    number = np.empty(keys.n_visits)
    number[visit[order]] = pos + 1 + before
    return number[visit]


def _mue(lines, cpt_c, cpt_v, group, use_mue, ref: Reference, out: _Outcome) -> None:
    """Medically unlikely edits: MAI 1 per claim line, MAI 2/3 per code per date of service.

    When units exceed the MUE value the whole line is denied (CMS NCCI MUE policy).
    """
    mue = ref.mue_by_cpt
    val = pd.Series(cpt_v).map(mue["mue"]).to_numpy(dtype=float, na_value=np.nan)[cpt_c]
    mai = pd.Series(cpt_v).map(mue["mai"]).to_numpy(dtype=float, na_value=np.nan)[cpt_c]
    units = lines["units"].to_numpy(dtype=float)
    live = use_mue & out.open & np.isfinite(val)
    if not live.any():
        return
    n_visits = int(group.max()) + 1 if len(group) else 0
    gc = dense_ids(group * len(cpt_v) + cpt_c, n_visits * len(cpt_v))
    day_units = np.bincount(gc, weights=np.where(live, units, 0))[gc]
    over = live & np.where(mai == 1, units > val, day_units > val)
    out.deny(over, "151", "N362", {"c": cpt_c, "m": val}, lambda r: (
        f"frequency: {cpt_v[r.c]} billed for more units than its medically unlikely edit of {r.m:.0f} per day "
        "(MUE values are unconfirmed; load the CMS MUE file)"))


def _ptp(keys: LineKeys, cpt_c, cpt_v, payer_c, payer_v, group, follow, payers: Mapping[str, PayerPolicy],
         ref: Reference, out: _Outcome) -> None:
    live = follow & out.open
    if not live.any():
        return
    idx = np.flatnonzero(live)
    dates = keys.date
    cpt_index = {v: i for i, v in enumerate(cpt_v)}
    pairs = ref.ncci_pairs_for(cpt_v)  # the pairs of two codes on the lines, in table order
    if not len(pairs["c1"]):
        return
    # every open line of a column-2 code, with each pair it is column 2 of (line order, then
    # table order: what an inner merge on the code gives)
    order = np.argsort(pairs["c2"], kind="stable")
    line_c2 = cpt_c[idx]
    lo = np.searchsorted(pairs["c2"][order], line_c2, "left")
    count = np.searchsorted(pairs["c2"][order], line_c2, "right") - lo
    if not count.any():
        return
    left = np.repeat(idx, count)
    right = order[np.repeat(lo, count) + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)]
    date = dates[left]
    eff, dele = pairs["eff"][right], pairs["dele"][right]
    active = (eff <= date) & (np.isnat(dele) | (date < dele))
    # the column-1 code must be on an open line of the same visit
    n_codes = len(cpt_v)
    c1 = pairs["c1"][right]
    present = np.isin(group[left] * n_codes + c1, group[idx] * n_codes + cpt_c[idx])
    keep = active & present
    if not keep.any():
        return
    cand = {"i": left[keep], "p": payer_c[left[keep]], "c1": c1[keep], "c2": cpt_c[left[keep]],
            "ind": pairs["ind"][right[keep]]}
    # Modifiers the payer honours on this pair: a payer-specific rule, else its general list.
    payer_index = {v: i for i, v in enumerate(payer_v)}
    honour = {}
    for p in payers.values():
        if p.payer_id in payer_index:
            for c1, c2, m in p.ncci.pairs:
                if c1 in cpt_index and c2 in cpt_index:
                    honour[(payer_index[p.payer_id], cpt_index[c1], cpt_index[c2])] = frozenset(m)
    general = {payer_index[p.payer_id]: frozenset(p.ncci.modifiers) for p in payers.values()
               if p.payer_id in payer_index}
    mod_c, mod_v = keys.modifiers
    mod_sets = [frozenset(x for x in v.split(",") if x) for v in normalise_modifier_text(pd.Series(mod_v))]
    cand["m"] = mod_c[cand["i"]]
    case, first = distinct_rows([cand[k] for k in ("p", "c1", "c2", "ind", "m")])
    case_deny = np.zeros(len(first), dtype=bool)
    case_text = np.zeros(len(first), dtype=np.int64)
    for j, row in enumerate(first.tolist()):  # one pass per distinct case, not per line
        p, k1, k2, ind, m = (int(cand[k][row]) for k in ("p", "c1", "c2", "ind", "m"))
        honoured = honour.get((p, k1, k2), general.get(p, frozenset()))
        on_line = mod_sets[m]
        used = sorted(on_line & honoured)
        ncci_on_line = sorted(on_line & set(NCCI_MODIFIERS))
        c1, c2, payer = cpt_v[k1], cpt_v[k2], payer_v[p]
        pair = f"NCCI pair {c1}/{c2}: "
        if ind == 1 and used:
            text = (f"{_Outcome.PAYABLE}; NCCI pair {c1}/{c2} unbundled by modifier {','.join(used)} "
                    "(documentation must show distinct services)")
            case_text[j] = out.text_id(text)
            continue
        if ind == 0:
            text = pair + f"{c2} is bundled into {c1} billed the same visit; indicator 0, no modifier can unbundle it"
        elif ncci_on_line:
            text = (pair + f"{c2} is bundled into {c1}; {payer} does not honour {','.join(ncci_on_line)} on this "
                    f"pair (it honours {','.join(sorted(honoured)) or 'none'})")
        else:
            text = (pair + f"{c2} is bundled into {c1} billed the same visit; 59 or an X modifier on {c2} unbundles "
                    "it only when the services were distinct (separate region or time block)")
        case_deny[j], case_text[j] = True, out.text_id(text)
    deny, text, line = case_deny[case], case_text[case], cand["i"]
    # a line denied by any pair is denied (first such pair names the reason)
    d_line, d_text = _first_per_line(line[deny], text[deny])
    mask = np.zeros(len(out.denied), dtype=bool)
    mask[d_line] = True
    mask &= out.open
    out.denied[mask] = True
    reason_of = np.zeros(len(out.denied), dtype=np.int64)
    reason_of[d_line] = d_text
    out.reason[mask] = reason_of[mask]
    out.set_codes(mask, "97", "M80")
    rest = ~deny & ~np.isin(line, d_line)
    ii, ok_text = _first_per_line(line[rest], text[rest])
    keep = out.open[ii] & (out.reason[ii] == 0)
    out.reason[ii[keep]] = ok_text[keep]


def _first_per_line(line: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct lines of ``line`` (in order of first appearance) and the value at each's first row."""
    first = distinct_rows([line])[1] if len(line) else np.zeros(0, dtype=np.int64)
    return line[first], value[first]


def apply_threshold_edits(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    allowed_col: str = "allowed",
    patient_col: str = "patient_id",
) -> pd.DataFrame:
    """Deny Medicare therapy lines without KX once the year's allowed therapy dollars pass the threshold.

    Medicare sets one threshold for physical therapy and speech-language pathology combined
    and a separate one, of the same amount, for occupational therapy. The running total is
    therefore kept per patient, calendar year and discipline: the allowed amount of the
    patient's payable therapy lines of that discipline, in service-date order, plus
    ``therapy_allowed_before`` when the lines carry it (dollars of the line's discipline
    already used this year). A line that takes its discipline's total past the threshold
    needs KX (KX thresholds: 2025 $2,410, 2026 $2,480, ``thresholds.csv``).

    A line is occupational therapy when it carries GO, or when it carries none of GP, GO and
    GN and its ``provider_type`` is ``ot`` or ``ota`` (see :data:`OT_PROVIDER_TYPES`); every
    other therapy line counts toward PT/SLP.

    Parameters
    ----------
    lines
        Priced lines (:func:`analytics.pricing.price_lines`) with ``disposition``,
        ``modifiers``, ``service_date``, ``payer_id`` and the allowed amount; optional
        ``provider_type`` and ``therapy_allowed_before``.
    payers
        Policies by payer id; only payers with ``kx_threshold: true`` are checked.

    Returns
    -------
    DataFrame
        ``lines`` with the lines over the threshold without KX denied (CO-119, RARC N640,
        allowed 0) and the discipline named in ``edit_reason``.
    """
    ref = reference or load_reference()
    keys = LineKeys(lines, (patient_col, "service_date"), patient_col=patient_col)
    return apply_threshold_edits_with_keys(lines, payers, ref, keys, allowed_col=allowed_col)


def apply_threshold_edits_with_keys(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy], ref: Reference,
                                    keys: LineKeys, *, allowed_col: str = "allowed") -> pd.DataFrame:
    """:func:`apply_threshold_edits` on codes computed once (``keys``)."""
    pol = payer_columns(lines, payers, keys)
    use = pol.array("kx_threshold", bool)
    if not use.any():
        return lines
    cpt_c, cpt_v = keys.cpt
    therapy = ref.code_table(pd.Series(cpt_v))["therapy"].to_numpy(bool)[cpt_c]
    payable = np.isin(np.asarray(pd.Categorical(lines["disposition"], categories=DISPOSITIONS).codes), [0, 1])
    counted = np.flatnonzero(use & therapy & payable)
    if not len(counted):
        return lines
    # Running allowed therapy dollars of the patient's year in each discipline (PT/SLP, OT),
    # in service-date order (row order within a date), over the lines that count; the others
    # add nothing.
    ot = _occupational_therapy(lines, keys, counted).astype(np.int64)
    year = keys.year[counted]
    patient = keys.patient[counted]
    amount = np.nan_to_num(lines[allowed_col].to_numpy(dtype=float, na_value=np.nan)[counted])
    order = sort_order(keys.date_rank[counted], ot, patient)
    running = np.cumsum(amount[order])
    new = np.r_[True, (np.diff(patient[order]) != 0) | (np.diff(ot[order]) != 0) | (np.diff(year[order]) != 0)]
    start = np.maximum.accumulate(np.where(new, np.arange(len(order)), 0))
    cum = np.empty(len(counted))
    cum[order] = running - (running - amount[order])[start]
    if "therapy_allowed_before" in lines.columns:
        before = pd.to_numeric(lines["therapy_allowed_before"], errors="coerce").fillna(0).to_numpy()
        cum = cum + before[counted]
    thresholds = ref.threshold_amounts("kx_threshold")
    years = np.unique(year)
    limit = pd.Series(years).map(thresholds).to_numpy(dtype=float, na_value=np.nan)[np.searchsorted(years, year)]
    has_kx = coded_modifier_flags(*keys.modifiers, ["KX"])[counted]
    hit = (cum > limit) & ~has_kx & np.isfinite(limit)
    if not hit.any():
        return lines
    over = np.zeros(len(lines), dtype=bool)
    over[counted[hit]] = True
    limit_text = pd.Series(limit[hit]).map("{:,.0f}".format).to_numpy(dtype=object)
    discipline = np.array(["PT/SLP", "OT"], dtype=object)[ot[hit]]
    rows = counted[hit]  # ascending, as np.flatnonzero(over)
    reason = ("therapy threshold: the patient's allowed " + discipline + " dollars this year pass the $"
              + limit_text + " KX threshold; the line needs KX (and documentation of medical necessity)")
    allowed = lines[allowed_col].to_numpy(dtype=float, na_value=np.nan, copy=True)
    allowed[over] = 0.0
    return lines.assign(**{
        "disposition": put_rows(lines["disposition"], rows, "denied"),
        "edit_reason": put_rows(lines["edit_reason"], rows, reason),
        "carc": put_rows(lines["carc"], rows, "119"),
        "group_code": put_rows(lines["group_code"], rows, "CO"),
        "rarc": put_rows(lines["rarc"], rows, "N640"),
        allowed_col: allowed,
    })


def _occupational_therapy(lines: pd.DataFrame, keys: LineKeys, rows: np.ndarray) -> np.ndarray:
    """For the lines at positions ``rows``: True for occupational therapy (GO on the line, or
    none of GP/GO/GN and an OT provider type), False for PT/SLP.

    Looked up once per distinct modifier value and provider type.
    """
    mod_c, mod_v = keys.modifiers
    go = coded_modifier_flags(mod_c, mod_v, ["GO"])[rows]
    no_mod = ~go & ~coded_modifier_flags(mod_c, mod_v, ["GP", "GN"])[rows]
    if "provider_type" not in lines.columns or not no_mod.any():
        return go
    pt_c, pt_v = factorize(lines["provider_type"].iloc[rows])
    ot_type = np.array([str(v).strip().lower() in OT_PROVIDER_TYPES for v in pt_v], dtype=bool)[pt_c]
    return go | (no_mod & ot_type)
