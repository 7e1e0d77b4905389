"""The service lines of a comparison, and its per-line table and totals.

:func:`scenario_lines` lays out every alternative x payer as its own synthetic visit for
one pass of the rules engine; :func:`line_table` explains each priced line in words and
:func:`alternative_totals` sums them per alternative and payer and marks the best
(:func:`line_table_and_sums` and :func:`totals_of_lines` do both without reading the table
back). A comparison has a handful of lines, so each table is built as one frame, and the
units of lines paid at the practice's charges are counted here under the CPT midpoint rule
(:func:`midpoint_units`), not by a second pass of the engine.

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

__all__ = [
    "scenario_lines",
    "line_table",
    "line_table_and_sums",
    "alternative_totals",
    "totals_of_lines",
    "midpoint_units",
]

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


#: The dtype pandas gives a column of Python strings (``str`` in pandas 3).
_TEXT = pd.Series(np.array([""], dtype=object)).dtype


def _text_array(values: np.ndarray):
    """An object array of strings in the dtype pandas would infer for it, without the
    inference (other values are left to pandas)."""
    if all(type(v) is str for v in values):
        return pd.array(values, dtype=_TEXT)
    return values


def scenario_lines(
    session: Session, alts: Sequence[Alternative], pol: Mapping[str, PayerPolicy], ref: Reference
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Service lines for every alternative x payer, each pair its own synthetic visit.

    The frame's column labels are a plain object index rather than pandas' default text
    index: the rules engine adds some forty columns one at a time, and every insertion into
    a text index re-encodes it, about a seventh of the engine's time on a handful of lines.
    The values, and so every figure and dtype of the evaluated lines, are the same.
    """
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
    # The practice's charge is per unit, so payers paid at charges need the units first
    # (the same count evaluate makes).
    charge = np.full(n, np.nan)
    by_charges = np.array([p.fee.basis == "charges" for p in pays], dtype=bool)[payer_idx]
    units = None
    if by_charges.any():
        is_ama = np.array([p.unit_method == "ama" for p in pays], dtype=bool)[payer_idx]
        timed = np.array([catalog[c][0] for c in code], dtype=bool)
        units = midpoint_units(minutes[by_charges], timed[by_charges], is_ama[by_charges])
        if units is not None:
            charge[by_charges] = fee[by_charges] * units
    data = {
        "patient_id": (alt_idx * n_pay + payer_idx).astype(np.int64),
        "service_date": pd.Timestamp(session.service_date),
        "provider_id": _text_array(np.full(n, session.rendering_npi or "rendering", dtype=object)),
        "provider_type": _text_array(np.full(n, session.provider_type, dtype=object)),
        "payer_id": _text_array(np.array(payer_ids, dtype=object)[payer_idx]),
        "cpt": _text_array(code),
        "minutes": minutes,
        "modifiers": _text_array(mods),
        "prescription_on_file": session.prescription_on_file,
        "prior_auth": session.prior_auth,
        "visits_before": per_payer("visits_used", 0.0),
        "deductible_remaining": per_payer("deductible_remaining", None),
        "therapy_allowed_before": float(session.therapy_allowed_before),
        "charge": charge,
        "dx_codes": _text_array(np.full(n, ",".join(session.dx_codes), dtype=object)),
    }
    frame = pd.DataFrame(data, copy=False)
    frame.columns = pd.Index(list(data), dtype=object)
    if by_charges.any() and units is None:  # the 8-minute rule: the engine's own count
        from analytics.units import compute_units

        sub = frame[by_charges]
        method = pd.Series(
            np.array([p.unit_method for p in pays], dtype=object)[payer_idx[by_charges]],
            index=sub.index,
        )
        units = compute_units(sub, method, reference=ref)["units"].to_numpy(dtype=float)
        charge = charge.copy()
        charge[by_charges] = fee[by_charges] * units
        frame["charge"] = charge
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


def midpoint_units(minutes: np.ndarray, timed: np.ndarray, is_ama: np.ndarray) -> np.ndarray | None:
    """Units of a session's lines under the CPT midpoint rule, as the engine counts them.

    Each code is counted on its own, ``(m + 7) // 15`` units for its minutes (a unit once
    more than half of it, 8 minutes, has passed; :mod:`analytics.units`), and an untimed code
    is one unit. A session lists each code once, so each synthetic visit of a comparison has
    one line per code and no leftover minutes to share out. ``None`` when a line is counted by
    the 8-minute rule (``is_ama`` False: it shares the visit's total among the codes) or a
    timed line has no minutes: :func:`analytics.units.compute_units` counts (or rejects) those.

    Examples
    --------
    >>> midpoint_units(np.array([7.0, 8.0, 22.0, 23.0, np.nan]),
    ...                np.array([True, True, True, True, False]), np.ones(5, dtype=bool)).tolist()
    [0.0, 1.0, 1.0, 2.0, 1.0]
    """
    if not is_ama.all() or np.isnan(minutes[timed]).any():
        return None
    m = np.nan_to_num(minutes).astype(np.int64)
    return np.where(timed, (m + 7) // 15, 1).astype(float)


#: Texts of numbers already formatted, by format and the number's bit pattern (so -0.0 keeps
#: its sign); a comparison's amounts repeat from one redraw to the next.
_FORMATTED: dict[str, dict[int, str]] = {}


def _formatted(x: np.ndarray, spec: str) -> np.ndarray:
    """``format(v, spec)`` of every value, as an object array."""
    a = np.ascontiguousarray(x, dtype=float)
    known = _FORMATTED.setdefault(spec, {})
    if len(known) > 10_000:
        known.clear()
    out = []
    for bits, v in zip(a.view(np.int64).tolist(), a.tolist(), strict=True):
        text = known.get(bits)
        if text is None:
            text = known[bits] = format(v, spec)
        out.append(text)
    return np.array(out, dtype=object)


def _money(x: np.ndarray) -> np.ndarray:
    return "$" + _formatted(np.nan_to_num(np.asarray(x, dtype=float)), ",.2f")


def _text(col: pd.Series) -> np.ndarray:
    """A column as an object array of ``str`` (``col.astype(str)``), per category when it is
    a categorical of text with no missing value."""
    values = col.array
    if isinstance(values, pd.Categorical):
        codes = values.codes
        cats = values.categories.to_numpy(dtype=object)
        if (codes >= 0).all() and all(type(c) is str for c in cats):
            return cats[codes]
    return col.astype(str).to_numpy(dtype=object)


def _floats(col: pd.Series) -> np.ndarray:
    return col.to_numpy(dtype=float, na_value=np.nan)


#: Amounts of the lines that :func:`alternative_totals` adds up per alternative and payer.
_SUMMED = (
    "allowed",
    "patient_part",
    "payer_paid",
    "expected",
    "expected_payer",
    "expected_patient",
)
#: Amounts of the evaluated lines put in words or added up.
_AMOUNTS = (
    *_SUMMED,
    "deductible_applied",
    "copay_applied",
    "coinsurance_applied",
)
#: Columns of the per-line table taken from the evaluated lines as they are (same values and
#: dtypes); the others are derived in :func:`line_table`.
_ENGINE_COLUMNS = frozenset(_TABLE_COLUMNS) - {
    "alternative",
    "payer_name",
    "supported",
    "missing",
    "line",
    "charge",
    "disposition",
    "documentation",
    "explanation",
}
#: The evaluated columns the per-line table reads: its own and the ones it derives from.
_LINE_INPUTS = (*sorted(_ENGINE_COLUMNS), "disposition", "charge")


def line_table(
    out: pd.DataFrame,
    meta: dict[str, np.ndarray],
    alts: Sequence[Alternative],
    pol: Mapping[str, PayerPolicy],
) -> pd.DataFrame:
    """One row per alternative x payer x line: the engine's figures and their explanation.

    Built as one new frame from the evaluated columns and the derived ones (rather than
    columns added to the evaluated lines one by one), which on a handful of lines is most of
    the cost.
    """
    return line_table_and_sums(out, meta, alts, pol)[0]


def line_table_and_sums(
    out: pd.DataFrame,
    meta: dict[str, np.ndarray],
    alts: Sequence[Alternative],
    pol: Mapping[str, PayerPolicy],
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """:func:`line_table` and the per-line arrays :func:`alternative_totals` adds up (the
    alternative and payer of each line, its amounts, units and whether it is denied), so the
    totals need not read them back from the table."""
    payer_ids = list(pol)
    alt = meta["alt"]
    names = [a.name for a in alts]
    cols = {c: out[c] for c in _LINE_INPUTS}  # each evaluated column read once
    units = cols["units"].to_numpy(dtype=np.int64)
    disp = _text(cols["disposition"])
    allowed = _floats(cols["allowed"])
    out_charge = cols["charge"].to_numpy(dtype=float)
    charge = np.where(np.isnan(meta["fee"]), np.nan, meta["fee"] * units)
    charge = np.where(np.isfinite(out_charge), out_charge, charge)
    p_deny = cols["p_deny"].to_numpy(dtype=float)
    s = lambda col: _text(cols[col])  # noqa: E731
    amount = {c: _floats(cols[c]) for c in _AMOUNTS}

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
    edit_reason = s("edit_reason")
    why_edit = np.select(
        [disp == "denied", disp == "not_billed"],
        ["Denied" + code_txt + ": " + edit_reason, "Not billed: no billable units"],
        default="Edits: " + edit_reason,
    )
    # why $X
    live = (disp == "payable") | (disp == "reduced")
    price_basis = s("price_basis")
    why_price = np.where(
        live,
        _money(allowed)
        + " allowed: "
        + price_basis
        + "; patient "
        + _money(amount["patient_part"])
        + " (deductible "
        + _money(amount["deductible_applied"])
        + ", copay "
        + _money(amount["copay_applied"])
        + ", coinsurance "
        + _money(amount["coinsurance_applied"])
        + "), payer "
        + _money(amount["payer_paid"]),
        np.where(disp == "unpriced", "No rate: " + price_basis, ""),
    )
    pct = _formatted(p_deny, ".0%")
    why_risk = (
        "Chance of denial "
        + pct
        + " ("
        + s("p_deny_basis")
        + ") -> expected "
        + _money(amount["expected"])
    )
    modifiers = cols["modifiers"].to_numpy(dtype=object)
    tag = np.array([str(m).split(",")[0] for m in modifiers], dtype=object)
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

    derived = {
        "alternative": pd.Categorical.from_codes(
            alt, categories=pd.Index(names, dtype=object), validate=False
        )
        if len(set(names)) == len(names)
        else np.array(names, dtype=object)[alt],
        "payer_name": _text_array(payer_names),
        "supported": np.array([a.supported for a in alts], dtype=bool)[alt],
        "missing": _text_array(np.array([a.missing for a in alts], dtype=object)[alt]),
        "line": meta["line"],
        "charge": to_cents(np.nan_to_num(charge, nan=0.0)) if np.isfinite(charge).all() else charge,
        "disposition": _text_array(disp),
        "documentation": _text_array(doc.astype(object)),
        "explanation": _text_array(explanation.astype(object)),
    }
    table = pd.DataFrame(
        {c: cols[c].array if c in _ENGINE_COLUMNS else derived[c] for c in _TABLE_COLUMNS},
        copy=False,
    )
    sums = {c: amount[c] for c in _SUMMED}
    sums["units"] = units.astype(float)
    sums["denied"] = (disp == "denied") | (disp == "not_billed")
    names_of = derived["alternative"]
    sums["alt"] = (
        alt if isinstance(names_of, pd.Categorical) else pd.factorize(names_of)[0]
    ).astype(np.int64)
    sums["payer"] = np.asarray(meta["payer"], dtype=np.int64)
    return table, sums


def alternative_totals(
    table: pd.DataFrame, alts: Sequence[Alternative], pol: Mapping[str, PayerPolicy]
) -> pd.DataFrame:
    """One row per alternative x payer: the lines' sums, what is denied and the best choice."""
    alt_col = table["alternative"].array
    position = {p: i for i, p in enumerate(pol)}
    disposition = table["disposition"].to_numpy(dtype=object)
    sums = {c: table[c].to_numpy(dtype=float) for c in (*_SUMMED, "units")}
    sums["denied"] = (disposition == "denied") | (disposition == "not_billed")
    sums["alt"] = (
        alt_col.codes if isinstance(alt_col, pd.Categorical) else pd.factorize(alt_col)[0]
    ).astype(np.int64)
    sums["payer"] = np.array(
        [position.get(p, -1) for p in table["payer_id"].to_numpy(dtype=object)], dtype=np.int64
    )
    return totals_of_lines(sums, alts, pol)


def totals_of_lines(
    sums: Mapping[str, np.ndarray], alts: Sequence[Alternative], pol: Mapping[str, PayerPolicy]
) -> pd.DataFrame:
    """:func:`alternative_totals` from the per-line arrays of :func:`line_table_and_sums`."""
    payer_ids = list(pol)
    n_alt, n_pay = len(alts), len(payer_ids)
    combo = sums["alt"] * n_pay + sums["payer"]
    size = n_alt * n_pay

    def total(col: str) -> np.ndarray:
        return to_cents(np.bincount(combo, weights=np.nan_to_num(sums[col]), minlength=size))

    denied = sums["denied"]
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
            "payer_id": _text_array(np.array(payer_ids, dtype=object)[p_of]),
            "payer_name": _text_array(
                np.array([pol[p].name or p for p in payer_ids], dtype=object)[p_of]
            ),
            "supported": supported,
            "missing": _text_array(np.array([a.missing for a in alts], dtype=object)[a_of]),
            "codes": _text_array(np.array(labels, dtype=object)[a_of]),
            "units": np.bincount(combo, weights=sums["units"], minlength=size).astype(np.int64),
            "denied_lines": np.bincount(combo, weights=denied, minlength=size).astype(np.int64),
            "allowed": total("allowed"),
            "patient_part": total("patient_part"),
            "payer_paid": total("payer_paid"),
            "expected_total": expected,
            "expected_payer": total("expected_payer"),
            "expected_patient": total("expected_patient"),
            "best": best,
            "documentation": _text_array(
                np.array([a.documentation for a in alts], dtype=object)[a_of]
            ),
        },
        copy=False,
    )
