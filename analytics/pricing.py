"""What each payable line is worth: Medicare fee schedule, contracts, MPPR and cost share.

Medicare (Physician Fee Schedule)::

    fee per unit = [(work RVU x work GPCI) + (PE RVU x PE GPCI) + (MP RVU x MP GPCI)] x CF

for the service year, the payer's locality and APM status. Products stay unrounded; each
line's allowed amount is rounded to cents once, at the end (:func:`to_cents`).

Multiple procedure payment reduction (MPPR, "always therapy" codes, since April 2013): in a
visit, the unit with the highest PE RVU (ties: the highest total) is paid in full; every other
unit of every MPPR code, including further units of the same code, gets 50% of its PE.
Assistant services (CQ/CO) are paid at 85%; non-participating providers at 95%, with the
limiting charge at 109.25% of the participating amount.

Other payers: a percent of the Medicare amount for a locality and year (with or without
MPPR), a flat rate per unit, the practice's own charges (cash), and an optional cap per visit.
Cost share then splits each allowed amount into the payer's and the patient's parts
(deductible, copay per visit, coinsurance; Medicare also 2% sequestration when configured).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analytics.edits import _payer_columns, modifier_flags
from analytics.exceptions import InputError, ReferenceDataError, UnpricedCodeWarning
from analytics.payers import PayerPolicy
from analytics.refdata import Reference, load_reference
from analytics.units import VISIT_KEYS, visit_codes

__all__ = ["price_lines", "split_cost_share", "to_cents", "MPPR_PE_SHARE", "ASSISTANT_SHARE",
           "NON_PAR_SHARE", "LIMITING_CHARGE_SHARE"]

MPPR_PE_SHARE = 0.5  # PE paid on every unit after the first (CMS, since 2013-04-01)
ASSISTANT_SHARE = 0.85  # CQ/CO services (since 2022-01-01)
NON_PAR_SHARE = 0.95
LIMITING_CHARGE_SHARE = 0.95 * 1.15  # 109.25% of the participating amount (42 CFR 414.48)


def to_cents(x) -> np.ndarray:
    """Round dollars half-up to cents (the one place money is rounded)."""
    a = np.asarray(x, dtype=float)
    return np.floor(np.abs(a) * 100 + 0.5 + 1e-7) / 100 * np.sign(a)


def _fee_inputs(lines: pd.DataFrame, pol: pd.DataFrame, ref: Reference) -> pd.DataFrame:
    """RVUs, GPCIs and CF per line for payers priced off the Medicare fee schedule."""
    date = pd.to_datetime(lines["service_date"])
    fee_year = pol["fee_year"].astype("Float64").fillna(pd.Series(date.dt.year, index=lines.index)).astype(int)
    locality = (lines["locality"].astype(str) if "locality" in lines.columns else pol["fee_locality"].astype(str))
    apm = pol["apm_status"].astype(str)
    rvu = ref.rvu.set_index(["year", "cpt"])
    key = pd.MultiIndex.from_arrays([fee_year.to_numpy(), lines["cpt"].astype(str).to_numpy()])
    r = rvu.reindex(key)
    gp = ref.gpci.set_index(["year", "locality_id"])
    g = gp.reindex(pd.MultiIndex.from_arrays([fee_year.to_numpy(), locality.to_numpy()]))
    # CF by service date when the fee year is the service year (2024 changed on Mar 9), else the
    # fee year's last CF.
    when = date.where(fee_year == date.dt.year, pd.to_datetime(fee_year.astype(str) + "-12-31"))
    return pd.DataFrame({
        "fee_year": fee_year.to_numpy(),
        "locality": locality.to_numpy(),
        "apm": apm.to_numpy(),
        "when": when.to_numpy(),
        "status": r["status"].to_numpy(),
        "work": r["work_rvu"].to_numpy(dtype=float),
        "pe": r["pe_rvu_nonfacility"].to_numpy(dtype=float),
        "mp": r["mp_rvu"].to_numpy(dtype=float),
        "gw": g["pw_gpci"].to_numpy(dtype=float),
        "gpe": g["pe_gpci"].to_numpy(dtype=float),
        "gmp": g["mp_gpci"].to_numpy(dtype=float),
    }, index=lines.index)


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
        ``limiting_charge`` (non-par Medicare only), ``mppr_reduced_units``, ``price_basis``
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
    n = len(lines)
    pol = _payer_columns(lines, payers)
    cpt = lines["cpt"].astype(str)
    units = lines["units"].to_numpy(dtype=float)
    disp = lines["disposition"].astype(str).to_numpy()
    live = np.isin(disp, ["payable", "reduced"]) & (units > 0)
    basis = pol["fee_basis"].to_numpy()
    uses_mfs = np.isin(basis, ["medicare", "percent_of_medicare"])

    rate = _payer_rates(payers, lines["payer_id"].astype(str), cpt)
    has_rate = np.isfinite(rate)

    fi = _fee_inputs(lines, pol, ref)
    need_mfs = live & uses_mfs & ~has_rate
    _check_fee_inputs(fi, need_mfs, lines, ref)
    cf = np.full(n, np.nan)
    if need_mfs.any() or live.any():
        ok = np.isfinite(fi["work"].to_numpy()) & np.isfinite(fi["gw"].to_numpy())
        sel = ok & np.isin(fi["fee_year"].to_numpy(), ref.conversion_factors["year"].to_numpy())
        if sel.any():
            cf[sel] = ref.conversion_factors_for(
                pd.Series(fi["when"].to_numpy()[sel]), pd.Series(fi["apm"].to_numpy()[sel])
            ).to_numpy()
    w = fi["work"].to_numpy() * fi["gw"].to_numpy()
    pe = fi["pe"].to_numpy() * fi["gpe"].to_numpy()
    mp = fi["mp"].to_numpy() * fi["gmp"].to_numpy()
    full_unit = (w + pe + mp) * cf
    reduced_unit = (w + MPPR_PE_SHARE * pe + mp) * cf

    # MPPR: one full unit per visit (the highest PE RVU, then highest total); the rest reduced.
    catalog = ref.code_table(cpt)
    status = fi["status"].fillna("").to_numpy()
    mfs_priced = np.isfinite(full_unit) & (status == "A") & ~has_rate
    mppr_line = live & mfs_priced & pol["mppr"].to_numpy(bool) & catalog["mppr"].to_numpy(bool)
    group = visit_codes(lines, visit_keys)
    n_reduced = np.zeros(n)
    if mppr_line.any():
        idx = np.flatnonzero(mppr_line)
        order = np.lexsort((-full_unit[idx], -fi["pe"].to_numpy()[idx], group[idx]))
        top = idx[order][np.r_[True, np.diff(group[idx][order]) != 0]]
        n_reduced[idx] = units[idx]
        n_reduced[top] -= 1
    medicare_amount = full_unit * (units - n_reduced) + reduced_unit * n_reduced
    no_mppr_amount = full_unit * units

    mods = lines["modifiers"] if "modifiers" in lines.columns else pd.Series("", index=lines.index)
    assistant = modifier_flags(mods, ["CQ", "CO"])
    medicare_amount = np.where(assistant, medicare_amount * ASSISTANT_SHARE, medicare_amount)
    par = pol["participating"].to_numpy(bool)
    pct = pol["fee_percent"].to_numpy(dtype=float) / 100.0

    charge = (pd.to_numeric(lines["charge"], errors="coerce").to_numpy(dtype=float)
              if "charge" in lines.columns else np.full(n, np.nan))
    amount = np.full(n, np.nan)
    is_med = basis == "medicare"
    is_pct = basis == "percent_of_medicare"
    amount = np.where(is_med & mfs_priced, np.where(par, medicare_amount, medicare_amount * NON_PAR_SHARE), amount)
    amount = np.where(is_pct & mfs_priced, medicare_amount * pct, amount)
    amount = np.where(has_rate, rate * units, amount)
    amount = np.where((basis == "charges") & ~has_rate, charge, amount)
    amount = np.where(live, amount, 0.0)

    unpriced = live & ~np.isfinite(amount)
    allowed = to_cents(np.where(unpriced, 0.0, amount))
    allowed = np.where(unpriced, np.nan, allowed)

    # Per-visit caps reduce the visit's lines in proportion.
    cap = pol["per_visit_cap"].to_numpy(dtype=float, na_value=np.nan)
    capped = np.zeros(n, dtype=bool)
    if np.isfinite(cap).any():
        visit_sum = np.bincount(group, weights=np.nan_to_num(allowed), minlength=group.max() + 1)[group]
        capped = np.isfinite(cap) & live & (visit_sum > cap) & ~unpriced
        if capped.any():
            scaled = to_cents(np.where(capped, allowed * cap / np.where(visit_sum > 0, visit_sum, 1), allowed))
            # put the rounding residual on the first capped line of each visit
            resid = np.zeros(n)
            cv = np.flatnonzero(capped)
            first = cv[np.r_[True, group[cv][1:] != group[cv][:-1]]] if len(cv) else cv
            vs = pd.Series(scaled[cv]).groupby(group[cv]).sum()
            resid[first] = cap[first] - vs.reindex(group[first]).to_numpy()
            allowed = np.where(capped, scaled + resid, allowed)
            allowed = to_cents(allowed)

    medicare_allowed = np.where(mfs_priced & live, to_cents(np.where(np.isfinite(medicare_amount), medicare_amount, 0)),
                                np.nan)
    limiting = np.where(is_med & ~par & live, to_cents(np.nan_to_num(no_mppr_amount) * LIMITING_CHARGE_SHARE), np.nan)

    reduced = live & ~unpriced & ((n_reduced > 0) & (is_med | is_pct) | capped)
    new_disp = np.where(unpriced, "unpriced", np.where(reduced, "reduced", disp))
    if unpriced.any():
        codes = sorted(set(cpt[unpriced]))
        warnings.warn(
            f"{int(unpriced.sum())} payable line(s) have no rate ({', '.join(codes)}): contractor-priced or "
            "absent from the fee schedule. Add the payer's rate under fee.rates in payers.yaml; "
            "these lines are marked 'unpriced', not $0.",
            UnpricedCodeWarning,
            stacklevel=2,
        )
    basis_text = _basis_text(
        lines, pol, fi, live, unpriced, has_rate, rate, full_unit, reduced_unit, n_reduced, assistant,
        capped, cap, is_med, is_pct, par,
    )
    carc = lines["carc"].astype(str).to_numpy() if "carc" in lines.columns else np.full(n, "")
    carc = np.where(reduced & (n_reduced > 0) & (carc == ""), "59", carc)
    out = lines.assign(
        allowed=allowed,
        medicare_allowed=medicare_allowed,
        limiting_charge=limiting,
        mppr_reduced_units=n_reduced.astype(np.int64),
        price_basis=basis_text,
        disposition=pd.Categorical(new_disp, categories=lines["disposition"].cat.categories
                                   if isinstance(lines["disposition"].dtype, pd.CategoricalDtype)
                                   else ["payable", "reduced", "denied", "not_billed", "unpriced"]),
    )
    if "carc" in lines.columns:
        out["carc"] = carc.astype(str)
        if "group_code" in out.columns:
            out["group_code"] = np.where((carc == "59") & (out["group_code"].to_numpy() == ""), "CO",
                                         out["group_code"].to_numpy()).astype(str)
    return out


def _payer_rates(payers: Mapping[str, PayerPolicy], payer: pd.Series, cpt: pd.Series) -> np.ndarray:
    rows = [(p.payer_id, c, r) for p in payers.values() for c, r in p.fee.rates.items()]
    if not rows:
        return np.full(len(payer), np.nan)
    table = pd.DataFrame(rows, columns=["payer", "cpt", "rate"]).set_index(["payer", "cpt"])["rate"]
    return table.reindex(pd.MultiIndex.from_arrays([payer.to_numpy(), cpt.to_numpy()])).to_numpy(dtype=float)


def _check_fee_inputs(fi: pd.DataFrame, need: np.ndarray, lines: pd.DataFrame, ref: Reference) -> None:
    years = set(ref.rvu["year"]) & set(ref.gpci["year"]) & set(ref.conversion_factors["year"])
    no_year = need & ~np.isin(fi["fee_year"].to_numpy(), sorted(years))
    if no_year.any():
        missing = sorted(set(fi.loc[no_year, "fee_year"].tolist()))
        raise ReferenceDataError.for_rows(
            lines[no_year], f"fall in a fee-schedule year with no Medicare rates ({', '.join(map(str, missing))})",
            f"The reference data holds {', '.join(map(str, sorted(years)))}. Price in one of those years, or load "
            "that year's CMS files with Reference.load(pprrvu=..., gpci=...).",
        )
    no_gpci = need & ~np.isfinite(fi["gw"].to_numpy())
    if no_gpci.any():
        bad = fi.loc[no_gpci, ["fee_year", "locality"]].drop_duplicates()
        pairs = ", ".join(f"{y} {loc}" for y, loc in bad.itertuples(index=False))
        raise ReferenceDataError.for_rows(
            lines[no_gpci], f"are priced for a Medicare locality/year with no GPCIs ({pairs})",
            "Use a MAC-locality id such as 13202-01 (00000-00 = national) for a year the reference data "
            "holds, or load the CMS GPCI file with Reference.load(gpci=...).",
        )
    no_rvu = need & fi["status"].isna().to_numpy()
    if no_rvu.any():
        bad = fi.loc[no_rvu, ["fee_year"]].assign(cpt=lines.loc[no_rvu, "cpt"].astype(str)).drop_duplicates()
        pairs = ", ".join(f"{c} in {y}" for y, c in bad.itertuples(index=False))
        raise ReferenceDataError.for_rows(
            lines[no_rvu], f"have no Medicare RVUs ({pairs})",
            "Load that year's CMS relative value file with Reference.load(pprrvu=...), or give the payer "
            "a rate for the code under fee.rates.",
        )


def _money(x: np.ndarray) -> pd.Series:
    return pd.Series(to_cents(np.nan_to_num(x))).map("${:,.2f}".format)


def _basis_text(lines, pol, fi, live, unpriced, has_rate, rate, full_unit, reduced_unit, n_reduced,
                assistant, capped, cap, is_med, is_pct, par) -> np.ndarray:
    """Words for each line's price, built once per distinct case."""
    units = lines["units"].to_numpy(dtype=np.int64)
    key = pd.DataFrame({
        "payer": lines["payer_id"].astype(str).to_numpy(), "cpt": lines["cpt"].astype(str).to_numpy(),
        "year": fi["fee_year"].to_numpy(), "loc": fi["locality"].to_numpy(), "u": units,
        "r": n_reduced.astype(np.int64), "live": live, "unpriced": unpriced, "has_rate": has_rate,
        "rate": np.nan_to_num(rate), "full": np.nan_to_num(full_unit), "red": np.nan_to_num(reduced_unit),
        "cq": assistant, "capped": capped, "cap": np.nan_to_num(cap), "med": is_med, "pct": is_pct,
        "pctv": pol["fee_percent"].to_numpy(dtype=float), "par": par,
        "basis": pol["fee_basis"].to_numpy(),
    })
    codes = key.groupby(list(key.columns), sort=False, dropna=False).ngroup().to_numpy()
    u = key.drop_duplicates().reset_index(drop=True)
    full, red = _money(u["full"].to_numpy()), _money(u["red"].to_numpy())
    rate_s = _money(u["rate"].to_numpy())
    text = []
    for i, r in enumerate(u.itertuples(index=False)):  # one pass per distinct case, not per line
        if not r.live:
            text.append("no payment: the line is denied or not billed (see edit_reason)")
            continue
        if r.unpriced:
            text.append(f"no rate: {r.cpt} has no fee-schedule amount for {r.payer}; add fee.rates['{r.cpt}'] "
                        "to the payer policy")
            continue
        if r.has_rate:
            s = f"{r.payer} rate {rate_s[i]} per unit x {r.u}"
        elif r.basis == "charges":
            s = "the practice's charge (cash or self-pay)"
        else:
            loc = "national" if r.loc == "00000-00" else f"locality {r.loc}"
            s = f"Medicare {r.year} fee schedule, {loc}: {full[i]} per unit"
            if r.r:
                s += f"; MPPR: {r.r} of {r.u} unit(s) at {red[i]} (50% of practice expense)"
            else:
                s += f" x {r.u}"
            if r.cq:
                s += "; CQ/CO assistant service at 85%"
            if r.med and not r.par:
                s += "; non-participating at 95%"
            if r.pct:
                s += f"; contract {r.pctv:g}% of Medicare"
        if r.capped:
            s += f"; visit total cut to the payer's ${r.cap:,.2f} per-visit cap"
        text.append(s)
    cats, inverse = np.unique(np.asarray(text, dtype=str), return_inverse=True)
    return pd.Categorical.from_codes(inverse[codes], categories=cats, validate=False).astype(str)


def split_cost_share(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
    allowed_col: str = "allowed",
) -> pd.DataFrame:
    """Split each allowed amount into the patient's part and the payer's part.

    Order within a patient's year with a payer, by service date: the deductible first (from
    ``deductible_remaining`` on the lines when given, else the plan's annual deductible), then
    the copay once per visit, then coinsurance on the rest. Medicare sequestration, when the
    policy sets it, reduces the payer's part (CARC 253).

    Returns
    -------
    DataFrame
        ``lines`` with ``deductible_applied``, ``copay_applied``, ``coinsurance_applied``,
        ``patient_part``, ``payer_part``, ``sequestration`` and ``payer_paid`` (payer part
        after sequestration).
    """
    ref = reference or load_reference()
    if allowed_col not in lines.columns:
        raise InputError(f"The lines have no {allowed_col!r} column; run price_lines first.")
    n = len(lines)
    pol = _payer_columns(lines, payers)
    allowed = np.nan_to_num(lines[allowed_col].to_numpy(dtype=float, na_value=np.nan))
    date = pd.to_datetime(lines["service_date"])
    year = date.dt.year.to_numpy()
    ded_plan = pol["deductible"].to_numpy(dtype=float)
    # "part_b" in a policy means the Medicare Part B deductible of the service year.
    part_b = np.isnan(ded_plan)
    if part_b.any():
        tbl = ref.thresholds[ref.thresholds["kind"] == "part_b_deductible"].set_index("year")["amount"]
        ded_plan = np.where(part_b, pd.Series(year).map(tbl).to_numpy(dtype=float), ded_plan)
        if np.isnan(ded_plan).any():
            raise ReferenceDataError("No Part B deductible for some service years; add them to thresholds.csv.")
    if "deductible_remaining" in lines.columns:
        ded_start = pd.to_numeric(lines["deductible_remaining"], errors="coerce").to_numpy(dtype=float)
        ded_start = np.where(np.isnan(ded_start), ded_plan, ded_start)
    else:
        ded_start = ded_plan
    group = visit_codes(lines, visit_keys)
    frame = pd.DataFrame({
        "p": lines[visit_keys[0]].to_numpy(), "payer": lines["payer_id"].astype(str).to_numpy(), "y": year,
        "d": date.to_numpy(), "g": group, "o": np.arange(n), "a": allowed,
    }).sort_values(["p", "payer", "y", "d", "g", "o"])
    before_year = frame.groupby(["p", "payer", "y"], sort=False)["a"].cumsum().to_numpy() - frame["a"].to_numpy()
    pos = frame["o"].to_numpy()
    cum_before = np.empty(n)
    cum_before[pos] = before_year
    ded = np.clip(np.minimum(ded_start - cum_before, allowed), 0, None)
    ded = to_cents(ded)

    after_ded = allowed - ded
    frame2 = pd.DataFrame({"g": group, "o": np.arange(n), "x": after_ded}).sort_values(["g", "o"])
    before_visit = frame2.groupby("g", sort=False)["x"].cumsum().to_numpy() - frame2["x"].to_numpy()
    cb = np.empty(n)
    cb[frame2["o"].to_numpy()] = before_visit
    copay_plan = pol["copay"].to_numpy(dtype=float)
    copay = to_cents(np.clip(np.minimum(copay_plan - cb, after_ded), 0, None))
    coins = to_cents((after_ded - copay) * pol["coinsurance"].to_numpy(dtype=float))
    patient = to_cents(ded + copay + coins)
    payer_part = to_cents(allowed - patient)
    seq = to_cents(payer_part * pol["sequestration"].to_numpy(dtype=float))
    return lines.assign(
        deductible_applied=ded, copay_applied=copay, coinsurance_applied=coins,
        patient_part=patient, payer_part=payer_part, sequestration=seq, payer_paid=to_cents(payer_part - seq),
    )
