"""What the 835s and the fee schedule show: the 835 lines with their payer and cost share, and the
Medicare fee of one unit at a locality."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from analytics.refdata import Reference, load_reference

__all__ = ["remittance_lines", "medicare_unit_fees"]

#: Half a cent: a line paid less is unpaid.
CENT = 0.005


# ---------------------------------------------------------------------------------------
# The 835 lines, one row each, with what a draft needs
# ---------------------------------------------------------------------------------------


def remittance_lines(remittance: Any) -> pd.DataFrame:
    """One row per 835 service line with its payer, claim and cost share.

    Parameters
    ----------
    remittance
        A :class:`analytics.remittance.Remittance` (``read_835_many`` output), or ``None``.

    Returns
    -------
    DataFrame
        ``claim_id, cpt, modifiers, service_year, units`` (paid units, else 1), ``paid``,
        ``allowed`` (AMT*B6, else paid + PR-1/2/3 + CO-253), ``per_unit``, ``paid_line``
        (the payer allowed the line more than half a cent, its share and the patient's: a line
        that went wholly to the deductible counts as paid, a denial does not), ``pr1, pr2,
        pr3`` (deductible, coinsurance, copay),
        ``claim`` (a claim number unique across files), ``patient_key``, ``filing``
        (CLP06), ``payer_name`` (N1*PR) and ``payer_code`` (N1*PR04 or REF*2U). Reversed
        claims are left out.
    """
    columns = ["claim_id", "cpt", "modifiers", "service_year", "units", "paid", "allowed", "per_unit",
               "paid_line", "pr1", "pr2", "pr3", "claim", "patient_key", "filing", "payer_name", "payer_code"]
    if remittance is None or len(remittance.service_lines) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns})
    sl = remittance.service_lines
    claim_key = ["file", "st_index", "claim_index"]
    claims = remittance.claims[[*claim_key, "filing_indicator", "patient_key", "is_reversal"]]
    pay = remittance.payments[["file", "st_index", "payer_name", "payer_id"]].drop_duplicates(["file", "st_index"])
    frame = (sl[[*claim_key, "line_index", "claim_id", "cpt", "modifiers", "paid", "allowed", "paid_units",
                 "service_date"]]
             .merge(claims, on=claim_key, how="left", sort=False)
             .merge(pay, on=["file", "st_index"], how="left", sort=False))
    frame = frame[~frame["is_reversal"].fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
    adj = remittance.adjustments
    at_line = adj[adj["line_index"].notna()]
    group = at_line["group_code"].astype("str").str.strip().str.upper()
    carc = at_line["carc"].astype("str").str.strip().str.upper()
    tag = np.select([(group == "PR") & (carc == c) for c in ("1", "2", "3")] + [(group != "PR") & (carc == "253")],
                    ["pr1", "pr2", "pr3", "seq"], "")
    parts = at_line.assign(tag=tag, line_index=at_line["line_index"].astype("int64"))
    parts = parts[parts["tag"] != ""]
    line_key = [*claim_key, "line_index"]
    sums = (parts.pivot_table(index=line_key, columns="tag", values="amount", aggfunc="sum")
            if len(parts) else pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=line_key)))
    sums = sums.reindex(columns=["pr1", "pr2", "pr3", "seq"]).fillna(0.0).reset_index()
    frame = frame.merge(sums, on=line_key, how="left", sort=False)
    for c in ("pr1", "pr2", "pr3", "seq"):
        frame[c] = frame[c].fillna(0.0).to_numpy(dtype=float)
    paid = frame["paid"].to_numpy(dtype=float)
    reported = frame["allowed"].to_numpy(dtype=float, na_value=np.nan)
    allowed = np.where(np.isfinite(reported), reported, paid + frame["pr1"] + frame["pr2"] + frame["pr3"] + frame["seq"])
    units = frame["paid_units"].to_numpy(dtype=float, na_value=np.nan)
    units = np.where(np.isfinite(units) & (units > 0), units, 1.0)
    dates = pd.to_datetime(frame["service_date"], errors="coerce")
    out = pd.DataFrame({
        "claim_id": frame["claim_id"].astype("str").fillna("").str.strip().to_numpy(dtype=object),
        "cpt": frame["cpt"].astype("str").fillna("").str.strip().str.upper().to_numpy(dtype=object),
        "modifiers": frame["modifiers"].astype("str").fillna("").str.upper().to_numpy(dtype=object),
        "service_year": dates.dt.year.astype("Int64"),
        "units": units,
        "paid": paid,
        "allowed": allowed,
        "per_unit": allowed / units,
        "paid_line": allowed > CENT,
        "pr1": frame["pr1"].to_numpy(dtype=float),
        "pr2": frame["pr2"].to_numpy(dtype=float),
        "pr3": frame["pr3"].to_numpy(dtype=float),
        "claim": (frame["file"].astype("str") + "|" + frame["st_index"].astype("str") + "|"
                  + frame["claim_index"].astype("str")).to_numpy(dtype=object),
        "patient_key": frame["patient_key"].astype("str").fillna("").to_numpy(dtype=object),
        "filing": frame["filing_indicator"].astype("str").fillna("").str.strip().str.upper().to_numpy(dtype=object),
        "payer_name": frame["payer_name"].astype("str").fillna("").str.strip().to_numpy(dtype=object),
        "payer_code": frame["payer_id"].astype("str").fillna("").str.strip().to_numpy(dtype=object),
    })
    return out[columns]


# ---------------------------------------------------------------------------------------
# The Medicare fee schedule at one locality
# ---------------------------------------------------------------------------------------


def medicare_unit_fees(locality: str, years: Iterable[int], reference: Reference | None = None) -> pd.DataFrame:
    """The participating, non-facility Medicare fee of one unit of each code, per year.

    ``[(work RVU x work GPCI) + (PE RVU x PE GPCI) + (MP RVU x MP GPCI)] x CF`` (FACTS 1.4),
    non-QP conversion factor in effect on 1 July, rounded to cents; no MPPR. Years the
    reference data has no RVUs, GPCIs or conversion factor for are left out.

    Returns
    -------
    DataFrame
        ``year, cpt, status, fee``.

    Examples
    --------
    >>> fees = medicare_unit_fees("13202-01", [2025])
    >>> float(fees.loc[fees["cpt"] == "97140", "fee"].iloc[0])  # FACTS 1.4: Manhattan 2025
    30.44
    """
    ref = reference or load_reference()
    rows = []
    for year in sorted({int(y) for y in years}):
        rvu = ref.rvu[ref.rvu["year"] == year]
        gpci = ref.gpci[(ref.gpci["year"] == year) & (ref.gpci["locality_id"] == locality)]
        if rvu.empty or gpci.empty:
            continue
        try:
            cf = ref.conversion_factor(year, "non_qp", on=f"{year}-07-01")
        except Exception:  # a year without a conversion factor has no fee to show
            continue
        g = gpci.iloc[0]
        amount = (rvu["work_rvu"] * float(g["pw_gpci"]) + rvu["pe_rvu_nonfacility"] * float(g["pe_gpci"])
                  + rvu["mp_rvu"] * float(g["mp_gpci"])) * cf
        rows.append(pd.DataFrame({"year": year, "cpt": rvu["cpt"].to_numpy(), "status": rvu["status"].to_numpy(),
                                  "fee": np.round(amount.to_numpy(dtype=float) + 1e-9, 2)}))
    if not rows:
        return pd.DataFrame({"year": pd.Series([], dtype="int64"), "cpt": pd.Series([], dtype=object),
                             "status": pd.Series([], dtype=object), "fee": pd.Series([], dtype=float)})
    return pd.concat(rows, ignore_index=True)
