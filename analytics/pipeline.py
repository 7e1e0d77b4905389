"""One entry point for the rules engine: units, edits, pricing, cost share and denial risk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.edits import _payer_columns, apply_edits, apply_threshold_edits
from analytics.payers import PayerPolicy, check_payers_known
from analytics.pricing import price_lines, split_cost_share
from analytics.refdata import Reference, load_reference
from analytics.units import VISIT_KEYS, compute_units, visit_codes

__all__ = ["evaluate"]


def evaluate(
    lines: pd.DataFrame,
    payers: Mapping[str, PayerPolicy],
    reference: Reference | None = None,
    *,
    visit_keys: Sequence[str] = VISIT_KEYS,
    denial_model: Any | None = None,
) -> pd.DataFrame:
    """Run every rule stage on service lines and return them with each stage's columns.

    Units are counted with each line's payer method (when the lines carry ``units`` and no
    ``minutes``, the given units are used as billed) (``cms`` or ``ama``); the payer's edits
    run before pricing and the KX threshold after it; cost share splits the allowed amount.
    ``p_deny`` is 1 where an edit denies, else the fitted ``denial_model``'s probability
    when one is given, else the payer's prior (``denial_prior`` in its policy).
    ``expected`` = allowed x (1 - p_deny).

    Examples
    --------
    >>> from analytics.payers import load_payers
    >>> pol = load_payers({"payers": {"mc": {"kind": "medicare"}}})
    >>> df = pd.DataFrame({"patient_id": "p", "service_date": "2025-06-02", "provider_id": "a",
    ...     "payer_id": "mc", "cpt": ["97110", "97140"], "minutes": [33, 7], "modifiers": "GP"})
    >>> evaluate(df, pol)[["cpt", "units", "allowed"]].values.tolist()
    [['97110', 2, 50.62], ['97140', 1, 20.7]]
    """
    ref = reference or load_reference()
    check_payers_known(lines["payer_id"], payers)
    # Number the visits once; every stage groups by this integer column.
    lines = lines.assign(_visit=visit_codes(lines, visit_keys))
    patient_col = visit_keys[0]
    visit_keys = ("_visit",)
    if "minutes" in lines.columns or "units" not in lines.columns:
        method = _payer_columns(lines, payers)["unit_method"]
        out = compute_units(lines, method, reference=ref, visit_keys=visit_keys)
    else:  # units given (e.g. a claim as billed): keep them, still validate the codes
        ref.code_table(lines["cpt"].astype(str))
        out = lines.assign(units=pd.to_numeric(lines["units"]).astype("int64"), units_reason="units as given")
    out = apply_edits(out, payers, ref, visit_keys=visit_keys, patient_col=patient_col)
    out = price_lines(out, payers, ref, visit_keys=visit_keys)
    out = apply_threshold_edits(out, payers, ref, patient_col=patient_col)
    out = split_cost_share(out, payers, ref, visit_keys=visit_keys, patient_col=patient_col)
    denied = out["disposition"].isin(["denied", "not_billed"]).to_numpy()
    if denial_model is not None:
        p = denial_model.predict_proba(out).to_numpy(dtype=float)
        basis = np.full(len(out), "learned from remittances", dtype=object)
    else:
        p = _payer_columns(out, payers)["denial_prior"].to_numpy(dtype=float)
        basis = np.full(len(out), "payer prior (policy denial_prior)", dtype=object)
    p = np.where(denied, 1.0, p)
    basis = np.where(denied, "denied by an edit", basis)
    allowed = np.nan_to_num(out["allowed"].to_numpy(dtype=float, na_value=np.nan))
    return out.drop(columns="_visit").assign(
        p_deny=p,
        p_deny_basis=pd.Categorical(basis),
        expected=np.round(allowed * (1 - p), 2),
        expected_payer=np.round(out["payer_paid"].to_numpy(dtype=float) * (1 - p), 2),
        expected_patient=np.round(out["patient_part"].to_numpy(dtype=float) * (1 - p), 2),
    )
