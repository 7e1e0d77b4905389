"""Claim edits: which lines a payer denies, and why, before and after pricing.

Each line gets a ``disposition`` (``payable``, ``denied`` or ``not_billed``; pricing later
marks ``reduced`` and ``unpriced``), an ``edit_reason`` in words, the ``carc`` and
``group_code`` a payer would send on the 835, and a ``rarc`` where one is customary.

Rules, in the order they are checked (the first that denies a line names its reason):

1. no billable units (from :mod:`analytics.units`);
2. code not covered by the plan (CARC 96);
3. Medicare status B (e.g. 97010): bundled, never paid separately (CO-97, M15);
4. rendering provider type not allowed for the code (CARC 170);
5. prescription required and not on file (CARC 174);
6. Medicare therapy line without GP/GO/GN (CARC 4);
7. visit past the plan's annual visit limit (PR-119) or past the visits allowed without
   prior authorisation (CO-197);
8. claim submitted after the timely-filing limit (CO-29);
9. medically unlikely edits per code per day, by MUE adjudication indicator (CO-151);
10. NCCI procedure-to-procedure pairs: the column-2 code is denied when the column-1 code is
    billed the same visit, unless the indicator is 1 and the column-2 line carries a modifier
    the payer honours (CO-97, M80);
11. after pricing: Medicare lines without KX once the patient's allowed therapy dollars for
    the year pass the KX threshold (CO-119).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analytics.payers import PayerPolicy, check_payers_known, payer_table
from analytics.refdata import Reference, load_reference
from analytics.units import VISIT_KEYS, visit_codes

__all__ = ["apply_edits", "apply_threshold_edits", "modifier_flags", "EDIT_COLUMNS"]

EDIT_COLUMNS = ("disposition", "edit_reason", "carc", "group_code", "rarc")
_THERAPY_MODS = ("GP", "GO", "GN")


def _normalise_modifiers(mods: pd.Series) -> pd.Series:
    return (
        mods.fillna("").astype(str).str.upper()
        .str.replace(r"[\s:;|/]+", ",", regex=True).str.strip(",")
    )


def modifier_flags(mods: pd.Series, wanted: Sequence[str]) -> np.ndarray:
    """True where a line's modifiers include any of ``wanted`` (computed once per distinct value)."""
    codes, uniq = pd.factorize(mods.fillna(""), sort=False)
    if len(uniq) == 0:
        return np.zeros(len(mods), dtype=bool)
    norm = _normalise_modifiers(pd.Series(uniq))
    want = set(wanted)
    hit = np.array([bool(want.intersection(v.split(","))) if v else False for v in norm], dtype=bool)
    out = np.zeros(len(mods), dtype=bool)
    ok = codes >= 0
    out[ok] = hit[codes[ok]]
    return out


class _Outcome:
    """Collects the first denial per line, vectorised."""

    def __init__(self, n: int):
        self.denied = np.zeros(n, dtype=bool)
        self.not_billed = np.zeros(n, dtype=bool)
        self.reason = np.full(n, "payable: passes the payer's edits", dtype=object)
        self.carc = np.full(n, "", dtype=object)
        self.rarc = np.full(n, "", dtype=object)

    @property
    def open(self) -> np.ndarray:
        return ~(self.denied | self.not_billed)

    def deny(self, mask: np.ndarray, reason, carc: str, rarc: str = "") -> None:
        mask = np.asarray(mask, dtype=bool) & self.open
        if not mask.any():
            return
        self.denied[mask] = True
        self.reason[mask] = reason[mask] if isinstance(reason, np.ndarray) else reason
        self.carc[mask] = carc
        self.rarc[mask] = rarc


def _payer_columns(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy]) -> pd.DataFrame:
    table = payer_table(payers).set_index("payer_id")
    codes = pd.Categorical(lines["payer_id"].astype(str), categories=table.index).codes
    return table.iloc[codes].set_axis(lines.index)


def _pair_mask(payer: pd.Series, cpt: pd.Series, pairs: set[tuple[str, str]]) -> np.ndarray:
    if not pairs:
        return np.zeros(len(payer), dtype=bool)
    key = pd.MultiIndex.from_arrays([payer.astype(str), cpt.astype(str)])
    return key.isin(list(pairs))


def _text(*parts) -> np.ndarray:
    """Concatenate scalars and aligned Series into a string array."""
    out = None
    for p in parts:
        s = p.astype(str) if isinstance(p, pd.Series) else p
        out = s if out is None else out + s
    return np.asarray(out, dtype=object)


def apply_edits(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
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
    check_payers_known(lines["payer_id"], payers)
    n = len(lines)
    pol = _payer_columns(lines, payers)
    cpt = lines["cpt"].astype(str)
    mods = lines["modifiers"] if "modifiers" in lines.columns else pd.Series("", index=lines.index)
    out = _Outcome(n)
    catalog = ref.code_table(cpt)

    # 1. units
    zero = lines["units"].to_numpy() == 0
    out.not_billed[zero] = True
    out.reason[zero] = "not billed: no billable units (see units_reason)"

    # 2. plan exclusions
    excluded = {(p.payer_id, c) for p in payers.values() for c in p.not_covered}
    mask = _pair_mask(lines["payer_id"], cpt, excluded)
    out.deny(mask, _text(lines["payer_id"], " does not cover ", cpt, " under this plan"), "96", "N130")

    # 3. Medicare status indicators
    status = catalog["medicare_status"].to_numpy()
    med = pol["medicare_status"].to_numpy(bool)
    out.deny(med & (status == "B"), _text(
        "bundled: ", cpt, " has Medicare status B (paid only as part of other services, never separately)"
    ), "97", "M15")
    out.deny(med & np.isin(status, ["N", "I"]), _text(
        cpt, " is not payable by Medicare (status N or I)"), "96", "")

    # 4. provider type allowed per code
    if any(p.provider_types for p in payers.values()):
        ptype = (lines["provider_type"] if "provider_type" in lines.columns
                 else pd.Series("", index=lines.index)).fillna("").astype(str).str.lower()
        restricted = {(p.payer_id, c) for p in payers.values() for c in p.provider_types}
        allowed = {(p.payer_id, c, t) for p in payers.values() for c, ts in p.provider_types.items() for t in ts}
        is_restricted = _pair_mask(lines["payer_id"], cpt, restricted)
        key = pd.MultiIndex.from_arrays([lines["payer_id"].astype(str), cpt, ptype])
        ok = key.isin(list(allowed))
        # An unknown provider type is not held against the line (intake requires it for real data).
        out.deny(is_restricted & ~ok & (ptype.to_numpy() != ""), _text(
            lines["payer_id"], " pays ", cpt, " only to certain provider types, not ", ptype,
            " (the rendering provider)"), "170")

    # 5. prescription on file
    need_rx = pol["prescription_required"].to_numpy(bool)
    if need_rx.any():
        rx = (lines["prescription_on_file"].fillna(False).astype(bool).to_numpy()
              if "prescription_on_file" in lines.columns else np.zeros(n, dtype=bool))
        out.deny(need_rx & ~rx, _text(
            lines["payer_id"], " requires a prescription or referral on file before the service; none is recorded"),
            "174")

    # 6. Medicare therapy modifier
    need_gp = pol["require_gp"].to_numpy(bool) & catalog["therapy"].to_numpy(bool)
    if need_gp.any():
        has_gp = modifier_flags(mods, _THERAPY_MODS)
        out.deny(need_gp & ~has_gp, _text(
            "modifier: Medicare therapy lines need GP (PT plan of care), GO (OT) or GN (SLP); ", cpt,
            " has none"), "4", "")

    # 7. visit limits and prior authorisation
    limit = pol["visit_limit"].to_numpy(dtype=float, na_value=np.nan)
    auth_after = pol["prior_auth_after_visits"].to_numpy(dtype=float, na_value=np.nan)
    if np.isfinite(limit).any() or np.isfinite(auth_after).any():
        vnum = _visit_number(lines, visit_keys)
        over = np.isfinite(limit) & (vnum > np.nan_to_num(limit, nan=np.inf))
        out.deny(over, _text(
            "benefit maximum: visit ", pd.Series(vnum, index=lines.index), " of the year with ",
            lines["payer_id"], ", past its limit of ", pd.Series(limit, index=lines.index).fillna(0).astype(int),
            " visits"), "119")
        auth = (lines["prior_auth"].fillna(False).astype(bool).to_numpy() if "prior_auth" in lines.columns
                else np.zeros(n, dtype=bool))
        need_auth = np.isfinite(auth_after) & (vnum > np.nan_to_num(auth_after, nan=np.inf)) & ~auth
        out.deny(need_auth, _text(
            "authorisation: visit ", pd.Series(vnum, index=lines.index), " is past the ",
            pd.Series(auth_after, index=lines.index).fillna(0).astype(int),
            " visits allowed without prior authorisation and none is on file"), "197")

    # 8. timely filing
    if "submission_date" in lines.columns:
        days = (pd.to_datetime(lines["submission_date"]) - pd.to_datetime(lines["service_date"])).dt.days
        lim = pol["timely_filing_days"].to_numpy(dtype=float, na_value=np.nan)
        late = (days.to_numpy(dtype=float, na_value=np.nan) > lim)
        out.deny(late, _text(
            "timely filing: submitted ", days.fillna(0).astype(int), " days after the service, past the payer's ",
            pd.Series(lim, index=lines.index).fillna(0).astype(int), "-day limit"), "29")

    group = visit_codes(lines, visit_keys)

    # 9. MUE
    use_mue = pol["mue"].to_numpy(bool)
    if use_mue.any():
        _mue(lines, cpt, group, use_mue, ref, out)

    # 10. NCCI procedure-to-procedure pairs
    follow = pol["ncci_follow"].to_numpy(bool)
    notes = np.full(n, "", dtype=object)
    if follow.any():
        _ptp(lines, cpt, mods, group, follow, payers, ref, out, notes)

    disposition = np.where(out.denied, "denied", np.where(out.not_billed, "not_billed", "payable"))
    reason = np.where(notes != "", out.reason + "; " + notes, out.reason)
    group_code = _group_codes(out.carc, ref)
    return lines.assign(
        disposition=pd.Categorical(disposition, categories=["payable", "reduced", "denied", "not_billed",
                                                            "unpriced"]),
        edit_reason=reason.astype(str),
        carc=out.carc.astype(str),
        group_code=group_code,
        rarc=out.rarc.astype(str),
    )


def _group_codes(carc: np.ndarray, ref: Reference) -> np.ndarray:
    typical = ref.carc.set_index("carc")["typical_group"]
    s = pd.Series(carc, dtype=str)
    g = s.map(typical).fillna("CO")
    return np.where(s.to_numpy() == "", "", g.to_numpy()).astype(str)


def _visit_number(lines: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """1-based number of each line's visit among the patient's visits with that payer that year."""
    date = pd.to_datetime(lines["service_date"])
    v = pd.DataFrame({
        "visit": visit_codes(lines, keys),
        "patient": lines[keys[0]].to_numpy(),
        "payer": lines["payer_id"].to_numpy(),
        "year": date.dt.year.to_numpy(),
        "date": date.to_numpy(),
        "before": (pd.to_numeric(lines["visits_before"], errors="coerce").fillna(0).to_numpy()
                   if "visits_before" in lines.columns else np.zeros(len(lines))),
    })
    first = v.drop_duplicates("visit").sort_values(["patient", "payer", "year", "date", "visit"])
    first["n"] = first.groupby(["patient", "payer", "year"], sort=False).cumcount() + 1 + first["before"]
    return first.set_index("visit")["n"].reindex(v["visit"]).to_numpy(dtype=float)


def _mue(lines, cpt, group, use_mue, ref: Reference, out: _Outcome) -> None:
    """Medically unlikely edits: MAI 1 per claim line, MAI 2/3 per code per date of service.

    When units exceed the MUE value the whole line is denied (CMS NCCI MUE policy).
    """
    mue = ref.mue.set_index("cpt")
    val = cpt.map(mue["mue"]).to_numpy(dtype=float, na_value=np.nan)
    mai = cpt.map(mue["mai"]).to_numpy(dtype=float, na_value=np.nan)
    units = lines["units"].to_numpy(dtype=float)
    live = use_mue & out.open & np.isfinite(val)
    key = pd.DataFrame({"g": group, "c": cpt.to_numpy(), "u": np.where(live, units, 0)})
    day_units = key.groupby(["g", "c"], sort=False)["u"].transform("sum").to_numpy()
    over = live & np.where(mai == 1, units > val, day_units > val)
    if over.any():
        s_val = pd.Series(val, index=lines.index).fillna(0).astype(int)
        out.deny(over, _text(
            "frequency: ", cpt, " billed for more units than its medically unlikely edit of ", s_val,
            " per day (MUE values are unconfirmed; load the CMS MUE file)"), "151", "N362")


def _ptp(lines, cpt, mods, group, follow, payers: Mapping[str, PayerPolicy], ref: Reference,
         out: _Outcome, notes: np.ndarray) -> None:
    live = follow & out.open
    if not live.any():
        return
    idx = np.flatnonzero(live)
    sub = pd.DataFrame({
        "i": idx, "g": group[idx], "cpt": cpt.to_numpy()[idx],
        "payer": lines["payer_id"].astype(str).to_numpy()[idx],
        "date": pd.to_datetime(lines["service_date"]).to_numpy()[idx],
    })
    ptp = ref.ncci_ptp[ref.ncci_ptp["modifier_indicator"] != 9]
    cand = sub.merge(ptp[["column1", "column2", "effective_date", "deletion_date", "modifier_indicator"]],
                     left_on="cpt", right_on="column2")
    if cand.empty:
        return
    active = (cand["effective_date"] <= cand["date"]) & (
        cand["deletion_date"].isna() | (cand["date"] < cand["deletion_date"]))
    cand = cand[active]
    present = sub[["g", "cpt"]].drop_duplicates().rename(columns={"cpt": "column1"})
    cand = cand.merge(present, on=["g", "column1"])
    if cand.empty:
        return
    # Modifiers the payer honours on this pair: a payer-specific rule, else its general list.
    rules = pd.DataFrame(
        [(p.payer_id, c1, c2, ",".join(m)) for p in payers.values() for c1, c2, m in p.ncci.pairs],
        columns=["payer", "column1", "column2", "pair_mods"],
    )
    general = pd.Series({p.payer_id: ",".join(p.ncci.modifiers) for p in payers.values()})
    cand = cand.merge(rules, on=["payer", "column1", "column2"], how="left")
    honoured = cand["pair_mods"].fillna(cand["payer"].map(general)).fillna("")
    line_mods = _normalise_modifiers(mods.iloc[cand["i"].to_numpy()].reset_index(drop=True))
    cand = cand.reset_index(drop=True)
    combo = pd.DataFrame({"m": line_mods, "h": honoured})
    codes, uniq = pd.factorize(pd.MultiIndex.from_frame(combo))
    used = np.array([",".join(sorted(set(m.split(",")) & set(h.split(",")) - {""})) for m, h in uniq], dtype=object)
    used = used[codes]
    ncci_on_line = np.array([",".join(sorted(set(m.split(",")) & {"59", "XE", "XS", "XP", "XU"})) for m, _ in uniq],
                            dtype=object)[codes]
    ind = cand["modifier_indicator"].to_numpy()
    bypass = (ind == 1) & (used != "")
    c1, c2 = cand["column1"], cand["column2"]
    pair = "NCCI pair " + c1 + "/" + c2 + ": "
    why = np.where(
        ind == 0,
        pair + c2 + " is bundled into " + c1 + " billed the same visit; indicator 0, no modifier can unbundle it",
        np.where(
            ncci_on_line != "",
            pair + c2 + " is bundled into " + c1 + "; " + cand["payer"] + " does not honour " + ncci_on_line
            + " on this pair (it honours " + honoured.replace("", "none") + ")",
            pair + c2 + " is bundled into " + c1 + " billed the same visit; 59 or an X modifier on " + c2
            + " unbundles it only when the services were distinct (separate region or time block)",
        ),
    )
    deny = cand[~bypass]
    if len(deny):
        first = deny.drop_duplicates("i")
        mask = np.zeros(len(out.denied), dtype=bool)
        mask[first["i"].to_numpy()] = True
        reasons = np.full(len(out.denied), "", dtype=object)
        reasons[first["i"].to_numpy()] = np.asarray(why)[first.index.to_numpy()]
        out.deny(mask, reasons, "97", "M80")
    ok = cand[bypass]
    if len(ok):
        ii = ok["i"].to_numpy()
        notes[ii] = ("NCCI pair " + ok["column1"] + "/" + ok["column2"] + " unbundled by modifier "
                     + pd.Series(used[bypass]) .to_numpy() + " (documentation must show distinct services)").to_numpy()


def apply_threshold_edits(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    allowed_col: str = "allowed",
    patient_col: str = "patient_id",
) -> pd.DataFrame:
    """Deny Medicare therapy lines without KX once the year's allowed therapy dollars pass the threshold.

    The running total is the allowed amount of the patient's payable therapy lines in the
    calendar year, in service-date order, plus ``therapy_allowed_before`` when the lines carry
    it (dollars already used this year). A line that takes the total past the threshold
    needs KX (KX thresholds: FACTS 4.4; 2025 $2,410, 2026 $2,480).
    """
    ref = reference or load_reference()
    pol = _payer_columns(lines, payers)
    use = pol["kx_threshold"].to_numpy(bool)
    if not use.any():
        return lines
    cpt = lines["cpt"].astype(str)
    therapy = ref.code_table(cpt)["therapy"].to_numpy(bool)
    date = pd.to_datetime(lines["service_date"])
    year = date.dt.year
    thresholds = ref.thresholds[ref.thresholds["kind"] == "kx_threshold"].set_index("year")["amount"]
    limit = year.map(thresholds).to_numpy(dtype=float, na_value=np.nan)
    payable = lines["disposition"].isin(["payable", "reduced"]).to_numpy()
    amount = np.where(use & therapy & payable, lines[allowed_col].fillna(0).to_numpy(dtype=float), 0.0)
    frame = pd.DataFrame({"p": lines[patient_col].to_numpy(), "y": year.to_numpy(), "d": date.to_numpy(),
                          "a": amount, "o": np.arange(len(lines))})
    frame = frame.sort_values(["p", "y", "d", "o"])
    frame["cum"] = frame.groupby(["p", "y"], sort=False)["a"].cumsum()
    cum = frame.sort_values("o")["cum"].to_numpy()
    if "therapy_allowed_before" in lines.columns:
        cum = cum + pd.to_numeric(lines["therapy_allowed_before"], errors="coerce").fillna(0).to_numpy()
    has_kx = modifier_flags(lines["modifiers"] if "modifiers" in lines.columns
                            else pd.Series("", index=lines.index), ["KX"])
    over = use & therapy & payable & (cum > limit) & ~has_kx & np.isfinite(limit)
    if not over.any():
        return lines
    reason = np.asarray(
        "therapy threshold: the patient's allowed PT/SLP dollars this year pass the $"
        + pd.Series(limit, index=lines.index).fillna(0).map("{:,.0f}".format)
        + " KX threshold; the line needs KX (and documentation of medical necessity)", dtype=object)
    out = lines.copy()
    out["disposition"] = out["disposition"].where(~over, "denied")
    out["edit_reason"] = np.where(over, reason, out["edit_reason"].to_numpy(dtype=object)).astype(str)
    out["carc"] = np.where(over, "119", out["carc"].to_numpy(dtype=object)).astype(str)
    out["group_code"] = np.where(over, "CO", out["group_code"].to_numpy(dtype=object)).astype(str)
    out["rarc"] = np.where(over, "N640", out["rarc"].to_numpy(dtype=object)).astype(str)
    out.loc[over, allowed_col] = 0.0
    return out
