"""What each payable line is worth: Medicare fee schedule, contracts, MPPR and cost share.

Medicare (Physician Fee Schedule)::

    fee per unit = [(work RVU x work GPCI) + (PE RVU x PE GPCI) + (MP RVU x MP GPCI)] x CF

for the service year, the payer's locality and APM status. As CMS does, each unit is priced
from per-unit amounts in cents: the fee schedule amount and the therapy-reduction amount
(``(work RVU x work GPCI + 50% x PE RVU x PE GPCI + MP RVU x MP GPCI) x CF``) are each rounded
to cents, and a line of n units is the sum of its n unit amounts. The RVU x GPCI products stay
unrounded until then.

Multiple procedure payment reduction (MPPR, "always therapy" codes, since April 2013): of all
the patient's therapy units that day billed by the practice to the payer, whatever the
discipline and the rendering therapist (grouping ``mppr``, default ``patient_day``; see
:mod:`analytics.grouping`), the unit with the highest PE RVU (ties: the highest amount) is paid
in full; every other unit of every MPPR code, including further units of the same code, is
paid the therapy-reduction amount (50% of its PE).

Assistant services (CQ/CO) are paid 85% of the unit amount, in cents. A Medicare line
rendered by a PTA or OTA without CQ/CO gets the same 85% (the reduction the law requires
whatever the claim says) and ``assistant_modifier_missing``. Non-participating providers are
paid 95% of the participating unit amount, in cents; the limiting charge is 109.25% of the
participating unit amount after MPPR and CQ/CO, in cents (42 CFR 414.48).

Other payers: a percent of the Medicare amount for a locality and year (with or without
MPPR), a flat rate per unit, the practice's own charges (cash), and an optional cap per visit.
Cost share then splits each allowed amount into the payer's and the patient's parts
(deductible, copay per visit, coinsurance; Medicare also 2% sequestration when configured;
optionally a copay that waives the deductible), and puts what the patient owes on a denied
line the plan makes the patient's (group PR: a plan exclusion with ``noncovered_liability:
patient``, a visit past the yearly visit limit with ``visit_limit_liability: patient``) into
the patient's part.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analytics._frame import (
    VISIT_KEYS,
    LineKeys,
    break_ties,
    case_rows,
    cases,
    coded_modifier_flags,
    distinct_rows,
    factorize,
    lookup_pairs,
    put,
    ranks,
    sort_order,
    sorted_unique,
)
from analytics.edits import DISPOSITIONS
from analytics.exceptions import InputError, ReferenceDataError, UnpricedCodeWarning
from analytics.grouping import group_ids, grouping_per_line
from analytics.payers import PayerPolicy, payer_columns
from analytics.refdata import Reference, load_reference

__all__ = ["price_lines", "split_cost_share", "to_cents", "MPPR_PE_SHARE", "ASSISTANT_SHARE",
           "NON_PAR_SHARE", "LIMITING_CHARGE_SHARE", "price_lines_with_keys", "split_cost_share_with_keys",
           "warn_unpriced", "ASSISTANT_PROVIDER_TYPES"]

MPPR_PE_SHARE = 0.5  # PE paid on every unit after the first (CMS, since 2013-04-01)
ASSISTANT_SHARE = 0.85  # CQ/CO services (since 2022-01-01)
NON_PAR_SHARE = 0.95
LIMITING_CHARGE_SHARE = 1.0925  # 115% of the 95% non-par amount = 109.25% of par (42 CFR 414.48)
#: Rendering provider types whose Medicare services are paid at 85% (CQ for a PTA, CO for an OTA).
ASSISTANT_PROVIDER_TYPES = ("pta", "ota")


def to_cents(x) -> np.ndarray:
    """Round dollars half-up to cents (the one place money is rounded)."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 0:
        return np.floor(np.abs(a) * 100 + 0.5 + 1e-7) / 100 * np.sign(a)
    # the same operations in the same order, in place (no temporary arrays)
    out = np.abs(a)
    out *= 100
    out += 0.5
    out += 1e-7
    np.floor(out, out=out)
    out /= 100
    out *= np.sign(a)
    return out


def _fee_inputs(lines: pd.DataFrame, pol, ref: Reference, cpt_c: np.ndarray, cpt_v: np.ndarray,
                keys: LineKeys) -> dict:
    """RVUs, GPCIs and CF inputs per line, looked up once per distinct (year, code, locality)."""
    date = keys.date
    service_year = keys.year
    fee_year = pol.array("fee_year")
    fee_year = np.where(np.isnan(fee_year), service_year, fee_year).astype(np.int64)
    if "locality" in lines.columns:
        loc_c, loc_v = factorize(lines["locality"])
    else:
        loc_c, loc_v = pol.codes, pol.table["fee_locality"].astype(str).to_numpy(dtype=object)
    years = sorted_unique(fee_year)
    y_c = np.searchsorted(years, fee_year)
    # RVUs by (year, code)
    r = ref.rvu_grid(years, cpt_v)
    k = y_c * len(cpt_v) + cpt_c
    # GPCIs by (year, locality)
    g = ref.gpci_grid(years, loc_v)
    kg = y_c * len(loc_v) + loc_c
    # CF by service date when the fee year is the service year (2024 changed on Mar 9), else the
    # fee year's last CF.
    same_year = fee_year == service_year
    year_end = (years - 1970).astype("datetime64[Y]").astype("datetime64[ns]") + np.timedelta64(364, "D")
    when = np.where(same_year, date, year_end[y_c])
    # the same dates as integers (equal dates, equal numbers), to find the distinct ones without hashing
    when_code = np.where(same_year, keys.date_rank, int(keys.date_rank.max(initial=-1)) + 1 + y_c)
    status = r["status"]  # per (year, code)
    return {
        "fee_year": fee_year, "loc_c": loc_c, "loc_v": loc_v, "when": when, "when_code": when_code,
        "status_a": (status == "A")[k],
        "no_rvu": pd.isna(status)[k],
        "work": r["work_rvu"][k],
        "pe": r["pe_rvu_nonfacility"][k],
        "mp": r["mp_rvu"][k],
        "gw": g["pw_gpci"][kg],
        "gpe": g["pe_gpci"][kg],
        "gmp": g["mp_gpci"][kg],
    }


def price_lines(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
) -> pd.DataFrame:
    """Allowed amount of every line under its payer's fee basis, with the basis in words.

    Parameters
    ----------
    lines
        Output of :func:`analytics.edits.apply_edits` (``units``, ``disposition`` ...).
        ``charge`` is needed for payers paid at the practice's charges; ``locality``
        (MAC-locality id) overrides the payer's locality per line.

    Returns
    -------
    DataFrame
        ``lines`` with ``allowed`` (dollars, cents; NaN only for ``unpriced`` lines),
        ``medicare_allowed`` (the Medicare amount the line would get, for comparisons),
        ``limiting_charge`` (non-par Medicare only), ``mppr_reduced_units``,
        ``assistant_modifier_missing`` (a Medicare line by a PTA/OTA without CQ/CO), ``price_basis``
        and an updated ``disposition`` (``reduced`` when MPPR or a visit cap cut it,
        ``unpriced`` when no rate exists).

    Examples
    --------
    >>> from analytics.payers import load_payers
    >>> from analytics.units import compute_units
    >>> from analytics.edits import apply_edits
    >>> pol = load_payers({"payers": {"mc": {"kind": "medicare"}}})
    >>> df = pd.DataFrame({"patient_id": "p", "service_date": "2025-06-02", "provider_id": "a",
    ...     "payer_id": "mc", "cpt": ["97110", "97140"], "minutes": [30, 15], "modifiers": "GP"})
    >>> out = price_lines(apply_edits(compute_units(df), pol), pol)
    >>> out["allowed"].tolist()
    [50.62, 20.7]
    """
    ref = reference or load_reference()
    return price_lines_with_keys(lines, payers, ref, LineKeys(lines, visit_keys))


def price_lines_with_keys(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy], ref: Reference,
                          keys: LineKeys) -> pd.DataFrame:
    """:func:`price_lines` on codes computed once (``keys``)."""
    n = len(lines)
    pol = payer_columns(lines, payers, keys)
    cpt_c, cpt_v = keys.cpt
    units = lines["units"].to_numpy(dtype=float)
    disp_cat = pd.Categorical(lines["disposition"], categories=DISPOSITIONS)
    disp = np.asarray(disp_cat.codes)
    live = np.isin(disp, [0, 1]) & (units > 0)  # payable or reduced
    basis = pol.per_payer("fee_basis", object)  # per distinct payer
    is_med = (basis == "medicare")[pol.codes]
    is_pct = (basis == "percent_of_medicare")[pol.codes]
    uses_mfs = is_med | is_pct

    rate = _payer_rates(payers, pol, cpt_c, cpt_v)
    has_rate = np.isfinite(rate)

    fi = _fee_inputs(lines, pol, ref, cpt_c, cpt_v, keys)
    need_mfs = live & uses_mfs & ~has_rate
    _check_fee_inputs(fi, need_mfs, lines, ref, cpt_v[cpt_c] if need_mfs.any() else None)
    cf = np.full(n, np.nan)
    cf_code = np.zeros(n, dtype=np.int64)  # the distinct conversion factors numbered, 0 for none
    sel = (np.isfinite(fi["work"]) & np.isfinite(fi["gw"]) & uses_mfs
           & np.isin(fi["fee_year"], ref.conversion_factors["year"].to_numpy()))
    if sel.any():
        cf[sel], cf_code[sel] = _conversion_factors(ref, fi["when"][sel], fi["when_code"][sel], pol.codes[sel],
                                                    pol.per_payer("apm_status", object))
    w = fi["work"] * fi["gw"]
    pe = fi["pe"] * fi["gpe"]
    mp = fi["mp"] * fi["gmp"]
    # per-unit amounts in cents, as CMS publishes and pays them
    full_unit = to_cents((w + pe + mp) * cf)
    reduced_unit = to_cents((w + MPPR_PE_SHARE * pe + mp) * cf)

    catalog_mppr = ref.code_table(pd.Series(cpt_v))["mppr"].to_numpy(bool)[cpt_c]
    mfs_priced = np.isfinite(full_unit) & fi["status_a"] & ~has_rate
    mppr_line = live & mfs_priced & pol.array("mppr", bool) & catalog_mppr
    mod_c, mod_v = keys.modifiers
    assistant, missing_mod = _assistant_lines(lines, pol, mod_c, mod_v, live & mfs_priced)
    # MPPR: one full unit per group (by default the patient's day with the payer, every
    # discipline and therapist), the highest PE RVU then the highest amount; the rest reduced.
    group = group_ids(keys, grouping_per_line("mppr", pol.codes, pol.values, payers))
    n_reduced = np.zeros(n)
    if mppr_line.any():
        idx = np.flatnonzero(mppr_line)
        # Ties on PE go to the higher fee-schedule amount (after the CQ/CO 85%), then to the
        # line's content (code, modifiers, more units, then line id), so the ranking never
        # depends on row order.
        paid_unit = _share_in_cents(full_unit, assistant, ASSISTANT_SHARE)
        mod_rank = np.argsort(np.argsort(mod_v.astype(str), kind="stable"))[mod_c]
        cpt_rank = np.argsort(np.argsort(cpt_v.astype(str), kind="stable"))[cpt_c]
        ranking = (-units[idx].astype(np.int64), mod_rank[idx], cpt_rank[idx], _dense_rank(-paid_unit[idx]),
                   _dense_rank(-fi["pe"][idx]), group[idx])
        order = sort_order(*ranking)
        if "line_id" in lines.columns:
            order = break_ties(order, ranking, lambda at: ranks(*factorize(lines["line_id"].iloc[idx[at]])))
        top = idx[order][np.r_[True, np.diff(group[idx][order]) != 0]]
        n_reduced[idx] = units[idx]
        n_reduced[top] -= 1
    # Each unit's participating amount after CQ/CO, in cents; a line is the sum of its units.
    par_full = _share_in_cents(full_unit, assistant, ASSISTANT_SHARE)
    par_reduced = _share_in_cents(reduced_unit, assistant, ASSISTANT_SHARE)
    n_full = units - n_reduced
    medicare_amount = _line_sum(par_full, n_full, par_reduced, n_reduced)
    par = pol.array("participating", bool)
    pct = pol.array("fee_percent") / 100.0
    # non-participating: 95% of each unit, and the limiting charge 109.25% of it, in cents
    non_par = is_med & ~par & mfs_priced & live
    non_par_amount = np.full(n, np.nan)
    limiting_amount = np.full(n, np.nan)
    if non_par.any():
        f, r, nf, nr = par_full[non_par], par_reduced[non_par], n_full[non_par], n_reduced[non_par]
        non_par_amount[non_par] = _line_sum(to_cents(f * NON_PAR_SHARE), nf, to_cents(r * NON_PAR_SHARE), nr)
        limiting_amount[non_par] = _line_sum(to_cents(f * LIMITING_CHARGE_SHARE), nf,
                                             to_cents(r * LIMITING_CHARGE_SHARE), nr)

    charge = (pd.to_numeric(lines["charge"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
              if "charge" in lines.columns else np.full(n, np.nan))
    amount = np.full(n, np.nan)
    amount = np.where(is_med & mfs_priced, np.where(par, medicare_amount, non_par_amount), amount)
    amount = np.where(is_pct & mfs_priced, medicare_amount * pct, amount)
    amount = np.where(has_rate, rate * units, amount)
    amount = np.where((basis == "charges")[pol.codes] & ~has_rate, charge, amount)
    amount = np.where(live, amount, 0.0)

    unpriced = live & ~np.isfinite(amount)
    allowed = to_cents(np.where(unpriced, 0.0, amount))
    allowed = np.where(unpriced, np.nan, allowed)

    # Per-visit caps reduce the visit's lines in proportion.
    cap = pol.array("per_visit_cap")
    capped = np.zeros(n, dtype=bool)
    if np.isfinite(cap).any():
        group = group_ids(keys, grouping_per_line("visit_cap", pol.codes, pol.values, payers))
        n_groups = int(group.max()) + 1
        visit_sum = np.bincount(group, weights=np.nan_to_num(allowed), minlength=n_groups)[group]
        capped = np.isfinite(cap) & live & (visit_sum > cap) & ~unpriced
        if capped.any():
            scaled = to_cents(np.where(capped, allowed * cap / np.where(visit_sum > 0, visit_sum, 1), allowed))
            # put the rounding residual on the first capped line of each visit
            cv = np.flatnonzero(capped)
            cv = cv[np.argsort(group[cv], kind="stable")]
            first = cv[np.r_[True, group[cv][1:] != group[cv][:-1]]]
            vs = np.bincount(group[cv], weights=scaled[cv], minlength=n_groups)
            resid = np.zeros(n)
            resid[first] = cap[first] - vs[group[first]]
            allowed = to_cents(np.where(capped, scaled + resid, allowed))

    medicare_allowed = np.where(mfs_priced & live, to_cents(np.where(np.isfinite(medicare_amount), medicare_amount, 0)),
                                np.nan)
    limiting = np.where(non_par, to_cents(np.nan_to_num(limiting_amount)), np.nan)

    reduced = live & ~unpriced & (((n_reduced > 0) & uses_mfs) | capped)
    new_disp = np.where(unpriced, 4, np.where(reduced, 1, disp))
    if unpriced.any():
        warn_unpriced(int(unpriced.sum()), cpt_v[np.unique(cpt_c[unpriced])], stacklevel=4)
    basis_text = _basis_text(
        pol, cpt_c, cpt_v, units, fi, live, unpriced, has_rate, rate, full_unit, reduced_unit, n_reduced,
        assistant, missing_mod, capped, cap, is_med, is_pct, par, basis, cf_code,
    )
    out = lines.assign(
        allowed=allowed,
        medicare_allowed=medicare_allowed,
        limiting_charge=limiting,
        mppr_reduced_units=n_reduced.astype(np.int64),
        assistant_modifier_missing=missing_mod,
        price_basis=basis_text,
        disposition=pd.Categorical.from_codes(new_disp, categories=DISPOSITIONS),
    )
    mppr_cut = reduced & (n_reduced > 0)
    if "carc" in lines.columns and mppr_cut.any():
        carc = lines["carc"]
        if isinstance(carc.dtype, pd.CategoricalDtype):
            codes = carc.cat.codes.to_numpy()
            no_carc = np.append(carc.cat.categories.astype(str).to_numpy(dtype=object) == "", False)[codes]
        else:
            no_carc = carc.astype(str).to_numpy() == ""
        cut = mppr_cut & no_carc
        out["carc"] = put(lines["carc"], cut, "59")
        if "group_code" in out.columns:
            out["group_code"] = put(lines["group_code"], cut, "CO")
    return out


def warn_unpriced(count: int, codes, stacklevel: int = 2) -> None:
    """Warn that ``count`` payable lines of ``codes`` have no rate (:class:`UnpricedCodeWarning`)."""
    warnings.warn(
        f"{count} payable line(s) have no rate ({', '.join(sorted(set(map(str, codes))))}): contractor-priced or "
        "absent from the fee schedule. Add the payer's rate under fee.rates in payers.yaml; "
        "these lines are marked 'unpriced', not $0.",
        UnpricedCodeWarning,
        stacklevel=stacklevel,
    )


def _line_sum(full: np.ndarray, n_full: np.ndarray, reduced: np.ndarray, n_reduced: np.ndarray) -> np.ndarray:
    """A line's amount: its full units at ``full`` and its reduced units at ``reduced`` (unit
    amounts in cents; the sum is rounded where it is used)."""
    return np.where(n_full > 0, full * n_full, 0.0) + np.where(n_reduced > 0, reduced * n_reduced, 0.0)


def _share_in_cents(unit: np.ndarray, where: np.ndarray, share: float) -> np.ndarray:
    """``unit`` with ``share`` of it, in cents, where ``where`` (e.g. 85% for CQ/CO)."""
    if not where.any():
        return unit
    out = unit.copy()
    out[where] = to_cents(unit[where] * share)
    return out


def _assistant_lines(lines: pd.DataFrame, pol, mod_c: np.ndarray, mod_v: np.ndarray,
                     priced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lines paid as assistant services (85%), and the Medicare lines among them that lack the modifier.

    A line with CQ or CO is an assistant service. So is a Medicare line (payer kind
    ``medicare``) rendered by a PTA or OTA (:data:`ASSISTANT_PROVIDER_TYPES`) without either:
    the 15% reduction for services furnished in whole or in part by a therapy assistant applies
    by law (Bipartisan Budget Act of 2018 sec. 53107, Social Security Act sec. 1834(v)), the
    claim line is wrong, and ``assistant_modifier_missing`` says so.
    """
    with_mod = coded_modifier_flags(mod_c, mod_v, ["CQ", "CO"])
    if "provider_type" not in lines.columns:
        return with_mod, np.zeros(len(lines), dtype=bool)
    t_c, t_v = factorize(lines["provider_type"])
    assistant_type = np.array([str(v).strip().lower() in ASSISTANT_PROVIDER_TYPES for v in t_v], dtype=bool)[t_c]
    medicare = (pol.per_payer("payer_kind", object) == "medicare")[pol.codes]
    missing = medicare & assistant_type & ~with_mod & priced
    return with_mod | missing, missing


def _dense_rank(x: np.ndarray) -> np.ndarray:
    """Rank of each value among the distinct values (equal values share a rank)."""
    codes, uniq = pd.factorize(x, use_na_sentinel=False)
    return np.argsort(np.argsort(uniq, kind="stable"), kind="stable")[codes]


def _conversion_factors(ref: Reference, when: np.ndarray, when_code: np.ndarray, payer_c: np.ndarray,
                        apm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Conversion factor of each line, looked up once per distinct (date, payer's APM status),
    and a number for each distinct factor (1, 2 ...; 0 stands for none): the factor's code
    for building words once per case. ``when_code`` numbers the dates ``when``."""
    group, first = distinct_rows([when_code, payer_c])
    try:
        cf = ref.conversion_factors_for(pd.Series(when[first]), pd.Series(apm[payer_c[first]])).to_numpy()
    except ReferenceDataError:  # name every line in the error, not one per date
        ref.conversion_factors_for(pd.Series(when), pd.Series(apm[payer_c]))
        raise
    number = pd.factorize(np.r_[np.nan, cf.astype(float)], use_na_sentinel=False)[0]  # a missing factor is 0
    return cf[group], number[1:][group]


def _payer_rates(payers: Mapping[str, PayerPolicy], pol, cpt_c: np.ndarray, cpt_v: np.ndarray) -> np.ndarray:
    """Each line's payer rate per unit (fee.rates), NaN where the payer has none for the code."""
    table = np.full((len(pol.values), len(cpt_v)), np.nan)
    pi = {v: i for i, v in enumerate(pol.values)}
    ci = {v: i for i, v in enumerate(cpt_v)}
    for p in payers.values():
        for c, r in p.fee.rates.items():
            if p.payer_id in pi and c in ci:
                table[pi[p.payer_id], ci[c]] = r
    return table[pol.codes, cpt_c]


def _check_fee_inputs(fi: dict, need: np.ndarray, lines: pd.DataFrame, ref: Reference, cpt) -> None:
    if not need.any():
        return
    years = set(ref.rvu["year"]) & set(ref.gpci["year"]) & set(ref.conversion_factors["year"])
    no_year = need & ~np.isin(fi["fee_year"], sorted(years))
    if no_year.any():
        missing = sorted(set(fi["fee_year"][no_year].tolist()))
        raise ReferenceDataError.for_rows(
            lines[no_year], f"fall in a fee-schedule year with no Medicare rates ({', '.join(map(str, missing))})",
            f"The reference data holds {', '.join(map(str, sorted(years)))}. Price in one of those years (fee.year "
            "in payers.yaml, or -p fee_schedule_year in a report), or load that year's CMS relative value and GPCI "
            "files (see README, Reference data).",
        )
    no_gpci = need & ~np.isfinite(fi["gw"])
    if no_gpci.any():
        bad = sorted({(int(y), str(fi["loc_v"][c])) for y, c in zip(fi["fee_year"][no_gpci], fi["loc_c"][no_gpci],
                                                                     strict=True)})
        pairs = ", ".join(f"{y} {loc}" for y, loc in bad)
        known_years = sorted(set(ref.gpci["year"]))
        raise ReferenceDataError.for_rows(
            lines[no_gpci], f"are priced for a Medicare locality/year with no GPCIs ({pairs})",
            "A locality is a MAC-locality id such as 01182-18 (Los Angeles; 00000-00 = national). List the "
            "localities with `python -m analytics init --localities` (add a state, e.g. CA) and give one as "
            f"--locality, -p locality or fee.locality in payers.yaml; GPCIs are held for {known_years}.",
        )
    no_rvu = need & fi["no_rvu"]
    if no_rvu.any():
        bad = sorted({(int(y), str(c)) for y, c in zip(fi["fee_year"][no_rvu], cpt[no_rvu], strict=True)})
        pairs = ", ".join(f"{c} in {y}" for y, c in bad)
        raise ReferenceDataError.for_rows(
            lines[no_rvu], f"have no Medicare RVUs ({pairs})",
            "Load that year's CMS relative value file with Reference.load(pprrvu=...), or give the payer "
            "a rate for the code under fee.rates.",
        )


def _money(x: np.ndarray) -> pd.Series:
    return pd.Series(to_cents(np.nan_to_num(x))).map("${:,.2f}".format)


def _basis_text(pol, cpt_c, cpt_v, units, fi, live, unpriced, has_rate, rate, full_unit, reduced_unit,
                n_reduced, assistant, missing_mod, capped, cap, is_med, is_pct, par, basis, cf) -> pd.Categorical:
    """Words for each line's price, built once per distinct case (``cf`` numbers the distinct
    conversion factors)."""
    # The words depend on these; the payer's rate, cap, participation and basis follow from
    # the payer and the code, and the unit amounts from the year, code, locality and CF.
    cols = {
        "payer": pol.codes, "cpt": cpt_c, "year": fi["fee_year"], "loc": fi["loc_c"], "cf": cf,
        "u": units.astype(np.int64), "r": n_reduced.astype(np.int64), "unpriced": unpriced,
        "cq": assistant, "missing": missing_mod, "capped": capped,
    }
    codes, first = cases(list(cols.values()), where=live)  # one text for every unpaid line
    u = {
        "payer": pol.codes[first], "cpt": cpt_c[first], "year": fi["fee_year"][first], "loc": fi["loc_c"][first],
        "u": units[first].astype(np.int64), "r": n_reduced[first].astype(np.int64), "live": live[first],
        "unpriced": unpriced[first], "has_rate": has_rate[first], "rate": np.nan_to_num(rate[first]),
        "full": to_cents(np.nan_to_num(full_unit[first])), "red": to_cents(np.nan_to_num(reduced_unit[first])),
        "cq": assistant[first], "missing": missing_mod[first], "capped": capped[first],
        "cap": np.nan_to_num(cap[first]), "par": par[first],
    }
    u_basis = basis[pol.codes[first]]
    u_med, u_pct = is_med[first], is_pct[first]
    u_pctv = pol.array("fee_percent")[first]
    text = []
    for i, r in enumerate(case_rows(u)):  # one pass per distinct case, not per line
        payer, cpt = pol.values[r.payer], cpt_v[r.cpt]
        if not r.live:
            text.append("no payment: the line is denied or not billed (see edit_reason)")
            continue
        if r.unpriced:
            text.append(f"no rate: {cpt} has no fee-schedule amount for {payer}; add fee.rates['{cpt}'] "
                        "to the payer policy")
            continue
        if r.has_rate:
            s = f"{payer} rate ${r.rate:,.2f} per unit x {r.u}"
        elif u_basis[i] == "charges":
            s = "the practice's charge (cash or self-pay)"
        else:
            loc_id = fi["loc_v"][r.loc]
            loc = "national" if loc_id == "00000-00" else f"locality {loc_id}"
            s = f"Medicare {r.year} fee schedule, {loc}: ${r.full:,.2f} per unit"
            s += (f"; MPPR: {r.r} of {r.u} unit(s) at ${r.red:,.2f} (50% of practice expense)" if r.r
                  else f" x {r.u}")
            if r.missing:
                s += ("; rendered by a PTA/OTA without CQ/CO: each unit paid at 85% as the law requires (add CQ "
                      "for a PTA, CO for an OTA)")
            elif r.cq:
                s += "; CQ/CO assistant service: each unit at 85%"
            if u_med[i] and not r.par:
                s += "; non-participating: each unit at 95%, limiting charge 109.25% of the participating amount"
            if u_pct[i]:
                s += f"; contract {u_pctv[i]:g}% of Medicare"
        if r.capped:
            s += f"; visit total cut to the payer's ${r.cap:,.2f} per-visit cap"
        text.append(s)
    cats, inverse = np.unique(np.asarray(text, dtype=object).astype(str), return_inverse=True)
    return pd.Categorical.from_codes(inverse[codes], categories=cats, validate=False)


def split_cost_share(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
    allowed_col: str = "allowed",
    patient_col: str | None = None,
) -> pd.DataFrame:
    """Split each allowed amount into the patient's part and the payer's part.

    Order within a patient's year with a payer, by service date: the deductible first (from
    ``deductible_remaining`` on the lines when given, else the plan's annual deductible), then
    the copay once per visit, then coinsurance on the rest. Medicare sequestration, when the
    policy sets it, reduces the payer's part (CARC 253).

    Two policy settings change this (schema in :mod:`analytics.payers`):

    * ``cost_share.copay_waives_deductible: true``: a visit of a plan with a copay skips the
      deductible (none applied, none drawn down); the copay and coinsurance still apply.
    * ``noncovered_liability: patient`` and ``visit_limit_liability: patient`` (the latter
      the default): a line the payer denies with group code PR, because the plan excludes
      its code (``not_covered``, PR-96/PR-204) or because the visit is past the plan's
      yearly ``visit_limit`` (PR-119), is owed by the patient: ``noncovered_applied`` is the
      payer's ``fee.rates`` rate for the code times the units when the policy names one,
      else the line's ``charge`` (0 without one). It is part of ``patient_part`` and
      touches neither the deductible nor the copay. The same denials with group CO (the
      ``provider`` setting) are written off and the patient owes nothing; so are the other
      denials the edits make (CO-197, CO-29, KX CO-119 ...).

    The group code comes from :func:`analytics.edits.apply_edits` (``group_code``). Lines
    without that column are read by the plan exclusions alone (``not_covered`` with
    ``noncovered_liability: patient``).

    Returns
    -------
    DataFrame
        ``lines`` with ``deductible_applied``, ``copay_applied``, ``coinsurance_applied``,
        ``noncovered_applied``, ``patient_part`` (the sum of the four), ``payer_part``
        (allowed less deductible, copay and coinsurance), ``sequestration`` and
        ``payer_paid`` (payer part after sequestration).

    Examples
    --------
    >>> from analytics.payers import load_payers
    >>> pol = load_payers({"payers": {"ppo": {"kind": "commercial", "fee": {"basis": "flat",
    ...     "rates": {"97140": 40.0}}, "cost_share": {"deductible": 500, "copay": 25,
    ...     "copay_waives_deductible": True}}}})
    >>> df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2026-03-02"),
    ...     "provider_id": "a", "payer_id": "ppo", "cpt": ["97140"], "units": [2],
    ...     "disposition": "payable", "allowed": [80.0]})
    >>> split_cost_share(df, pol)[["deductible_applied", "copay_applied", "patient_part",
    ...     "payer_part"]].values.tolist()
    [[0.0, 25.0, 25.0, 55.0]]
    """
    ref = reference or load_reference()
    if allowed_col not in lines.columns:
        raise InputError(f"The lines have no {allowed_col!r} column; run price_lines first.")
    keys = LineKeys(lines, visit_keys, patient_col=patient_col)
    return split_cost_share_with_keys(lines, payers, ref, keys, allowed_col=allowed_col)


def split_cost_share_with_keys(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy], ref: Reference,
                               keys: LineKeys, *, allowed_col: str = "allowed") -> pd.DataFrame:
    """:func:`split_cost_share` on codes computed once (``keys``)."""
    if allowed_col not in lines.columns:
        raise InputError(f"The lines have no {allowed_col!r} column; run price_lines first.")
    n = len(lines)
    pol = payer_columns(lines, payers, keys)
    allowed = np.nan_to_num(lines[allowed_col].to_numpy(dtype=float, na_value=np.nan))
    year = keys.year
    ded_plan = pol.array("deductible")
    # "part_b" in a policy means the Medicare Part B deductible of the service year.
    part_b = np.isnan(ded_plan)
    if part_b.any():
        tbl = ref.threshold_amounts("part_b_deductible")
        years = np.unique(year[part_b])
        by_year = pd.Series(years).map(tbl).to_numpy(dtype=float)
        ded_plan = ded_plan.copy()
        ded_plan[part_b] = by_year[np.searchsorted(years, year[part_b])]
        if np.isnan(ded_plan).any():
            raise ReferenceDataError("No Part B deductible for some service years; add them to thresholds.csv.")
    if "deductible_remaining" in lines.columns:
        ded_start = pd.to_numeric(lines["deductible_remaining"], errors="coerce").to_numpy(dtype=float,
                                                                                          na_value=np.nan)
        ded_start = np.where(np.isnan(ded_start), ded_plan, ded_start)
    else:
        ded_start = ded_plan
    group = keys.visit
    patient = keys.patient
    # Visits of a plan whose copay waives the deductible neither pay toward it nor use it up.
    waived = pol.array("copay_waives_deductible", bool) & (pol.array("copay") > 0)
    toward = np.where(waived, 0.0, allowed) if waived.any() else allowed
    # running allowed before each line within the patient's year with the payer, in date order
    # (then visit, then row order)
    order = sort_order(group, keys.date_rank, pol.codes, patient)
    # the patient's year with the payer as one number per line: one gather in sorted order, not three
    segment = _one_key(patient, pol.codes, year)
    cum_before = np.empty(n)
    cum_before[order] = _cumsum_before(toward[order], *([segment[order]] if segment is not None else
                                                        [patient[order], pol.codes[order], year[order]]))
    ded = to_cents(np.clip(np.minimum(ded_start - cum_before, toward), 0, None))

    after_ded = allowed - ded
    # the copay, once per visit (grouping "copay")
    copay_group = group_ids(keys, grouping_per_line("copay", pol.codes, pol.values, payers))
    order = sort_order(copay_group)
    cb = np.empty(n)
    cb[order] = _cumsum_before(after_ded[order], copay_group[order])
    copay = to_cents(np.clip(np.minimum(pol.array("copay") - cb, after_ded), 0, None))
    coins = to_cents((after_ded - copay) * pol.array("coinsurance"))
    cost_share = to_cents(ded + copay + coins)
    noncovered = _owed_on_denial(lines, payers, pol, keys)
    patient_part = to_cents(cost_share + noncovered) if noncovered.any() else cost_share
    payer_part = to_cents(allowed - cost_share)
    seq = to_cents(payer_part * pol.array("sequestration"))
    return lines.assign(
        deductible_applied=ded, copay_applied=copay, coinsurance_applied=coins, noncovered_applied=noncovered,
        patient_part=patient_part, payer_part=payer_part, sequestration=seq, payer_paid=to_cents(payer_part - seq),
    )


def _owed_on_denial(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy], pol, keys: LineKeys) -> np.ndarray:
    """What the patient owes on each denied line the plan makes the patient's (else 0).

    A line counts when it is denied with group code PR: the edits give PR to a plan
    exclusion under ``noncovered_liability: patient`` and to a visit past the visit limit
    under ``visit_limit_liability: patient``, and CO to every denial the practice writes
    off. Lines that carry no ``group_code`` (not run through the edits) count when their
    code is in the payer's ``not_covered`` and the payer has ``noncovered_liability:
    patient``. The amount is the payer's ``fee.rates`` rate for the code times the units
    when the policy names one, else the line's ``charge`` (0 when the line has none), in
    cents.
    """
    n = len(lines)
    if "disposition" not in lines.columns:
        return np.zeros(n)
    disp = np.asarray(pd.Categorical(lines["disposition"], categories=DISPOSITIONS).codes)
    line = disp == DISPOSITIONS.index("denied")
    if not line.any():
        return np.zeros(n)
    cpt_c, cpt_v = keys.cpt
    if "group_code" in lines.columns:
        group_c, group_v = factorize(lines["group_code"])
        line &= (group_v == "PR")[group_c]
    else:
        owed = {(p.payer_id, c) for p in payers.values() if p.noncovered_liability == "patient"
                for c in p.not_covered}
        line &= lookup_pairs(pol.codes, pol.values, cpt_c, cpt_v, owed) if owed else False
    if not line.any():
        return np.zeros(n)
    units = pd.to_numeric(lines["units"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    rate = _payer_rates(payers, pol, cpt_c, cpt_v)
    charge = (pd.to_numeric(lines["charge"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
              if "charge" in lines.columns else np.full(n, np.nan))
    amount = np.where(np.isfinite(rate), rate * units, charge)
    return to_cents(np.where(line & np.isfinite(amount), amount, 0.0))


def _one_key(*columns: np.ndarray) -> np.ndarray | None:
    """One integer per row that differs exactly where any of the integer ``columns`` differs
    (mixed radix over their ranges); None when the ranges multiply past 2**62."""
    key, radix = None, 1
    for col in columns:
        lo = int(col.min()) if len(col) else 0
        size = (int(col.max()) if len(col) else 0) - lo + 1
        radix *= size
        if radix > 2**62:
            return None
        part = col.astype(np.int64) - lo
        key = part if key is None else key * size + part
    return key


def _cumsum_before(values: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` before each position, restarting where any of ``keys`` (aligned,
    sorted) changes."""
    if len(values) == 0:
        return values.astype(float)
    new = np.zeros(len(values), dtype=bool)
    new[0] = True
    for key in keys:
        new[1:] |= key[1:] != key[:-1]
    total = np.cumsum(values)
    start = np.maximum.accumulate(np.where(new, np.arange(len(values)), 0))
    base = (total - values)[start]
    return total - values - base
