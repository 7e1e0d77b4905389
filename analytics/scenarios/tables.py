"""The service lines of a comparison, and its per-line table and totals.

:func:`scenario_lines` lays out every alternative x payer as its own synthetic visit for
one pass of the rules engine; :func:`line_table` explains each priced line in words and
:func:`alternative_totals` sums them per alternative and payer and marks the best.

Sources: FACTS sec. 3 (units), sec. 4 (NCCI modifiers: 59 only when no X modifier fits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analytics.payers import PayerPolicy
from analytics.pricing import to_cents
from analytics.refdata import Reference
from analytics.scenarios.alternatives import Alternative
from analytics.scenarios.catalog import code_catalog
from analytics.scenarios.session import THERAPY_MODIFIER, Session

__all__ = ["scenario_lines", "line_table", "alternative_totals"]

_MODIFIER_PENALTY = {"": 0, "XS": 1, "XE": 1, "59": 2, "XU": 3}

_TABLE_COLUMNS = [
    "alternative",
    "payer_id",
    "payer_name",
    "supported",
    "missing",
    "line",
    "cpt",
    "minutes",
    "modifiers",
    "units",
    "units_reason",
    "disposition",
    "edit_reason",
    "carc",
    "group_code",
    "rarc",
    "charge",
    "allowed",
    "medicare_allowed",
    "price_basis",
    "deductible_applied",
    "copay_applied",
    "coinsurance_applied",
    "patient_part",
    "payer_part",
    "payer_paid",
    "p_deny",
    "p_deny_basis",
    "expected",
    "expected_payer",
    "expected_patient",
    "documentation",
    "explanation",
]


def scenario_lines(
    session: Session, alts: Sequence[Alternative], pol: Mapping[str, PayerPolicy], ref: Reference
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Service lines for every alternative x payer, each pair its own synthetic visit."""
    payer_ids = list(pol)
    n_pay = len(payer_ids)
    spans = np.cumsum([0] + [len(a.codes) for a in alts])
    base_code = np.array([c for a in alts for c in a.codes], dtype=object)
    base_mod = np.array([m for a in alts for m in a.modifiers], dtype=object)
    base_doc = np.array([d for a in alts for d in a.line_documentation], dtype=object)
    base_alt = np.repeat(np.arange(len(alts)), np.diff(spans))
    base_line = np.concatenate([np.arange(1, len(a.codes) + 1) for a in alts])
    # rows in alternative, payer, line order
    take = np.concatenate(
        [np.tile(np.arange(spans[i], spans[i + 1]), n_pay) for i in range(len(alts))]
    )
    payer_idx = np.concatenate(
        [np.repeat(np.arange(n_pay), spans[i + 1] - spans[i]) for i in range(len(alts))]
    )
    alt_idx = base_alt[take]
    code = base_code[take]
    n = len(take)

    svc = {s.code: s for s in session.services}
    catalog = code_catalog(ref, list(svc))
    minutes_of = {
        c: (np.nan if s.minutes is None or not catalog[c][0] else float(s.minutes))
        for c, s in svc.items()
    }
    minutes = np.array([minutes_of[c] for c in code], dtype=float)
    therapy = np.array([catalog[c][1] for c in code], dtype=bool)

    pays = [pol[p] for p in payer_ids]
    gp_payer = np.array([p.require_gp for p in pays], dtype=bool)[payer_idx]
    kx_payer = np.array([p.kx_threshold for p in pays], dtype=bool)[payer_idx]
    tag = THERAPY_MODIFIER.get(session.plan_of_care or "", "")
    gp_added = gp_payer & therapy & bool(tag)
    mods = np.where(gp_added, tag, "").astype(object)
    ncci = base_mod[take]
    mods = np.where((mods != "") & (ncci != ""), mods + "," + ncci, mods + ncci)
    kx = kx_payer & therapy & session.kx_documented
    mods = np.where(kx & (mods != ""), mods + ",KX", np.where(kx, "KX", mods))

    def per_payer(name: str, default: float) -> np.ndarray:
        vals = [session.plan_value(name, p, default) for p in payer_ids]
        return np.array([np.nan if v is None else float(v) for v in vals], dtype=float)[payer_idx]

    fee = np.array([session.charges.get(c, np.nan) for c in code], dtype=float)
    frame = pd.DataFrame(
        {
            "patient_id": (alt_idx * n_pay + payer_idx).astype(np.int64),
            "service_date": pd.Timestamp(session.service_date),
            "provider_id": session.rendering_npi or "rendering",
            "provider_type": session.provider_type,
            "payer_id": np.array(payer_ids, dtype=object)[payer_idx],
            "cpt": code,
            "minutes": minutes,
            "modifiers": mods,
            "prescription_on_file": session.prescription_on_file,
            "prior_auth": session.prior_auth,
            "visits_before": per_payer("visits_used", 0.0),
            "deductible_remaining": per_payer("deductible_remaining", None),
            "therapy_allowed_before": float(session.therapy_allowed_before),
            "charge": np.full(n, np.nan),
            "dx_codes": ",".join(session.dx_codes),
        }
    )
    # The practice's charge is per unit, so payers paid at charges need the units first
    # (the same engine count evaluate makes).
    by_charges = np.array([p.fee.basis == "charges" for p in pays], dtype=bool)[payer_idx]
    if by_charges.any():
        from analytics.units import compute_units

        sub = frame[by_charges]
        method = pd.Series(
            np.array([p.unit_method for p in pays], dtype=object)[payer_idx[by_charges]],
            index=sub.index,
        )
        units = compute_units(sub, method, reference=ref)["units"].to_numpy(dtype=float)
        frame.loc[by_charges, "charge"] = fee[by_charges] * units
    meta = {
        "alt": alt_idx,
        "payer": payer_idx,
        "line": base_line[take],
        "fee": fee,
        "gp_added": gp_added,
        "kx_added": kx,
        "doc": base_doc[take],
    }
    return frame, meta


def _money(x: np.ndarray) -> np.ndarray:
    return np.array([f"${v:,.2f}" for v in np.nan_to_num(np.asarray(x, dtype=float))], dtype=object)


def _text(col: pd.Series) -> np.ndarray:
    """A column as an object array of ``str`` (``col.astype(str)``), per category when it is
    a categorical of text with no missing value."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        cats = col.cat.categories.to_numpy(dtype=object)
        if (codes >= 0).all() and all(type(c) is str for c in cats):
            return cats[codes]
    return col.astype(str).to_numpy(dtype=object)


def line_table(
    out: pd.DataFrame,
    meta: dict[str, np.ndarray],
    alts: Sequence[Alternative],
    pol: Mapping[str, PayerPolicy],
) -> pd.DataFrame:
    payer_ids = list(pol)
    alt = meta["alt"]
    names = [a.name for a in alts]
    units = out["units"].to_numpy(dtype=np.int64)
    disp = out["disposition"].astype(str).to_numpy(dtype=object)
    allowed = out["allowed"].to_numpy(dtype=float, na_value=np.nan)
    charge = np.where(np.isnan(meta["fee"]), np.nan, meta["fee"] * units)
    charge = np.where(
        np.isfinite(out["charge"].to_numpy(dtype=float)),
        out["charge"].to_numpy(dtype=float),
        charge,
    )
    p_deny = out["p_deny"].to_numpy(dtype=float)
    s = lambda col: _text(out[col])  # noqa: E731

    # why N units
    why_units = units.astype(str).astype(object) + " unit(s): " + s("units_reason")
    # why bundled / denied
    carc, group, rarc = s("carc"), s("group_code"), s("rarc")
    code_txt = np.where(
        carc != "",
        " ("
        + np.where(group != "", group + "-", "")
        + carc
        + np.where(rarc != "", ", " + rarc, "")
        + ")",
        "",
    )
    why_edit = np.select(
        [disp == "denied", disp == "not_billed"],
        ["Denied" + code_txt + ": " + s("edit_reason"), "Not billed: no billable units"],
        default="Edits: " + s("edit_reason"),
    )
    # why $X
    live = np.isin(disp, ["payable", "reduced"])
    why_price = np.where(
        live,
        _money(allowed)
        + " allowed: "
        + s("price_basis")
        + "; patient "
        + _money(out["patient_part"])
        + " (deductible "
        + _money(out["deductible_applied"])
        + ", copay "
        + _money(out["copay_applied"])
        + ", coinsurance "
        + _money(out["coinsurance_applied"])
        + "), payer "
        + _money(out["payer_paid"]),
        np.where(disp == "unpriced", "No rate: " + s("price_basis"), ""),
    )
    pct = np.array([f"{p:.0%}" for p in p_deny], dtype=object)
    why_risk = (
        "Chance of denial "
        + pct
        + " ("
        + s("p_deny_basis")
        + ") -> expected "
        + _money(out["expected"])
    )
    tag = np.array([str(m).split(",")[0] for m in out["modifiers"]], dtype=object)
    payer_names = np.array([pol[p].name or p for p in payer_ids], dtype=object)[meta["payer"]]
    gp_note = np.where(
        meta["gp_added"],
        tag
        + " added: "
        + payer_names
        + " pays therapy lines only with a therapy modifier, and the session is under a plan "
        "of care",
        "",
    )
    kx_note = np.where(
        meta["kx_added"],
        "KX added: the record supports medical necessity past the therapy threshold",
        "",
    )
    doc = meta["doc"].copy()
    rx = np.array([pol[p].prescription_required for p in payer_ids], dtype=bool)[meta["payer"]]
    doc = np.where(rx, doc + "; a prescription or referral on file", doc)
    doc = np.where(meta["gp_added"], doc + "; the plan of care (" + tag + ")", doc)
    parts = [why_units, why_edit, why_price, why_risk, gp_note, kx_note, "Documentation: " + doc]
    explanation = parts[0]
    for p in parts[1:]:
        explanation = np.where(p != "", explanation + ". " + p, explanation)

    supported = np.array([a.supported for a in alts], dtype=bool)[alt]
    missing = np.array([a.missing for a in alts], dtype=object)[alt]
    table = out.assign(
        alternative=pd.Categorical.from_codes(
            alt, categories=pd.Index(names, dtype=object), validate=False
        )
        if len(set(names)) == len(names)
        else np.array(names, dtype=object)[alt],
        payer_name=payer_names,
        supported=supported,
        missing=missing,
        line=meta["line"],
        charge=to_cents(np.nan_to_num(charge, nan=0.0)) if np.isfinite(charge).all() else charge,
        disposition=disp,
        documentation=doc,
        explanation=explanation.astype(object),
    )
    return table[_TABLE_COLUMNS].reset_index(drop=True)


def alternative_totals(
    table: pd.DataFrame, alts: Sequence[Alternative], pol: Mapping[str, PayerPolicy]
) -> pd.DataFrame:
    payer_ids = list(pol)
    n_alt, n_pay = len(alts), len(payer_ids)
    alt = (
        table["alternative"].cat.codes.to_numpy()
        if isinstance(table["alternative"].dtype, pd.CategoricalDtype)
        else pd.factorize(table["alternative"])[0]
    ).astype(np.int64)
    pay = pd.Categorical(table["payer_id"], categories=payer_ids).codes.astype(np.int64)
    combo = alt * n_pay + pay
    size = n_alt * n_pay

    def total(col: str) -> np.ndarray:
        return to_cents(
            np.bincount(
                combo, weights=np.nan_to_num(table[col].to_numpy(dtype=float)), minlength=size
            )
        )

    denied = table["disposition"].isin(["denied", "not_billed"]).to_numpy()
    a_of = np.repeat(np.arange(n_alt), n_pay)
    p_of = np.tile(np.arange(n_pay), n_alt)
    supported = np.array([a.supported for a in alts], dtype=bool)[a_of]
    expected = total("expected")
    # best: the supported alternative with the highest expected total, per payer; on a tie
    # the one needing no NCCI modifier, then an X modifier over 59 (CMS: 59 only when no
    # more specific modifier fits), then the listing order.
    penalty = np.array(
        [max((_MODIFIER_PENALTY.get(m, 0) for m in a.modifiers), default=0) for a in alts]
    )[a_of]
    best = np.zeros(size, dtype=bool)
    order = np.lexsort((np.arange(size), penalty, -expected, ~supported, p_of))
    first = order[np.r_[True, np.diff(p_of[order]) != 0]]
    best[first[supported[first]]] = True
    labels = [
        " + ".join(c + (f"-{m}" if m else "") for c, m in zip(a.codes, a.modifiers, strict=True))
        for a in alts
    ]
    return pd.DataFrame(
        {
            "alternative": pd.Categorical.from_codes(
                a_of, categories=pd.Index([a.name for a in alts], dtype=object), validate=False
            ),
            "payer_id": np.array(payer_ids, dtype=object)[p_of],
            "payer_name": np.array([pol[p].name or p for p in payer_ids], dtype=object)[p_of],
            "supported": supported,
            "missing": np.array([a.missing for a in alts], dtype=object)[a_of],
            "codes": np.array(labels, dtype=object)[a_of],
            "units": np.bincount(
                combo, weights=table["units"].to_numpy(dtype=float), minlength=size
            ).astype(np.int64),
            "denied_lines": np.bincount(combo, weights=denied, minlength=size).astype(np.int64),
            "allowed": total("allowed"),
            "patient_part": total("patient_part"),
            "payer_paid": total("payer_paid"),
            "expected_total": expected,
            "expected_payer": total("expected_payer"),
            "expected_patient": total("expected_patient"),
            "best": best,
            "documentation": np.array([a.documentation for a in alts], dtype=object)[a_of],
        }
    )
