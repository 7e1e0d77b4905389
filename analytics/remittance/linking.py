"""Link the practice's own service lines to the service lines of its remittances.

A line the remittance never answers is open A/R (or not yet adjudicated); a remittance line
no charge matches is a payment or denial the practice cannot place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.exceptions import InputError
from analytics.remittance.tables import DATE


@dataclass(frozen=True)
class Linked:
    """Service lines linked to remittance lines.

    Attributes
    ----------
    matched
        One row per pair: the service-line columns as given, the remittance columns prefixed
        ``remit_``, ``match_rule`` (which key matched), and ``charge_row`` / ``remit_row``
        (index labels in the two inputs).
    open_charges
        Service lines with no remittance line: open A/R (or not yet adjudicated).
    unmatched_remittance
        Remittance lines with no service line: paid or denied lines the practice cannot
        place (wrong claim id, a line added by the payer, a reversal/correction pair).
    """

    matched: pd.DataFrame
    open_charges: pd.DataFrame
    unmatched_remittance: pd.DataFrame


_MATCH_TIERS = (
    # REF*6R echoes the 837 line item control number: the exact key (TR3 loop 2110 REF*6R).
    ("claim_id+line_control_number", ("claim_id", "line_id"), ("claim_id", "line_control_number")),
    # Payers may drop REF*6R; CLP01 echoes CLM01, so claim + code + date is the next best.
    (
        "claim_id+cpt+service_date",
        ("claim_id", "cpt", "service_date"),
        ("claim_id", "cpt", "service_date"),
    ),
    # A payer that paid another code than the one billed names the billed one in SVC06.
    (
        "claim_id+original_cpt+service_date",
        ("claim_id", "cpt", "service_date"),
        ("claim_id", "original_cpt", "service_date"),
    ),
)


def _key_frame(frame: pd.DataFrame, columns: Sequence[str], row: str) -> pd.DataFrame:
    keys = pd.DataFrame({row: frame[row].to_numpy()})
    ok = np.ones(len(frame), dtype=bool)
    for i, col in enumerate(columns):
        if col not in frame.columns:
            return keys.iloc[0:0].assign(
                **{f"_k{j}": pd.Series([], dtype=object) for j in range(len(columns))}
            )
        values = frame[col]
        if col == "service_date":
            key = pd.to_datetime(values, errors="coerce").dt.normalize().astype(DATE)
        else:
            key = values.astype("str").str.strip()
            ok &= (key != "").fillna(False).to_numpy(dtype=bool)
        ok &= key.notna().to_numpy()
        keys[f"_k{i}"] = key.to_numpy()
    keys = keys[ok]
    # Duplicate keys (two identical lines on a claim) pair one-to-one in file order.
    keys["_pair"] = keys.groupby([f"_k{i}" for i in range(len(columns))], sort=False).cumcount()
    return keys


def link_remittance(service_lines: pd.DataFrame, remit_lines: pd.DataFrame) -> Linked:
    """Link the practice's service lines to 835 service lines.

    Tier 1 matches ``claim_id`` + ``line_id`` to CLP01 + REF*6R ``line_control_number``.
    Tier 2 matches the lines still open on ``claim_id`` + ``cpt`` + ``service_date`` (day),
    tier 3 on the code billed where the payer paid another (SVC06, ``original_cpt``).
    Within a key, duplicates pair one-to-one in order. Matching without a claim id (code +
    date + charge) is deliberately not done: in a massage practice many patients have the same
    code, date and charge, so it would pair the wrong patients.

    Parameters
    ----------
    service_lines
        The practice's lines: ``claim_id``, ``line_id`` (the 837 line item control number,
        optional), ``cpt``, ``service_date``, ``charge`` and any other columns.
    remit_lines
        :attr:`Remittance.service_lines` (or a subset).

    Returns
    -------
    Linked
        ``matched`` + ``open_charges`` has every service line once;
        ``matched`` + ``unmatched_remittance`` has every remittance line once.

    Examples
    --------
    >>> from analytics.remittance import read_835
    >>> charges = pd.DataFrame({"claim_id": ["PCN1001"], "line_id": ["L1"], "cpt": ["97140"],
    ...                         "service_date": ["2026-03-02"], "charge": [120.0]})
    >>> remit = read_835("ST*835*1~BPR*I*45.44*C*CHK************20260318~LX*1~"
    ...                  "CLP*PCN1001*1*120*45.44~SVC*HC:97140*120*45.44~DTM*472*20260302~"
    ...                  "CAS*CO*45*74.56~REF*6R*L1~SE*9*1~")
    >>> link_remittance(charges, remit.service_lines).matched["match_rule"].tolist()
    ['claim_id+line_control_number']
    """
    missing = [c for c in ("claim_id", "cpt", "service_date") if c not in service_lines.columns]
    missing_r = [
        c
        for c in ("claim_id", "cpt", "service_date", "line_control_number")
        if c not in remit_lines.columns
    ]
    if missing or missing_r:
        raise InputError(
            f"link_remittance needs columns {missing} in service_lines and {missing_r} in "
            f"remit_lines. Pass the practice's lines with claim_id, line_id, cpt, service_date "
            f"and charge, and Remittance.service_lines.",
            where="columns",
        )
    charges = service_lines.reset_index(drop=True)
    remits = remit_lines.reset_index(drop=True)
    charges["_c"] = np.arange(len(charges))
    remits["_r"] = np.arange(len(remits))

    pairs = []
    used_c = np.zeros(len(charges), dtype=bool)
    used_r = np.zeros(len(remits), dtype=bool)
    for rule, c_cols, r_cols in _MATCH_TIERS:
        left = _key_frame(charges[~used_c], c_cols, "_c")
        right = _key_frame(remits[~used_r], r_cols, "_r")
        if left.empty or right.empty:
            continue
        on = [f"_k{i}" for i in range(len(c_cols))] + ["_pair"]
        hit = left.merge(right, on=on, how="inner")[["_c", "_r"]]
        hit["match_rule"] = rule
        used_c[hit["_c"].to_numpy()] = True
        used_r[hit["_r"].to_numpy()] = True
        pairs.append(hit)

    pair_frame = (
        pd.concat(pairs, ignore_index=True)
        if pairs
        else pd.DataFrame(
            {
                "_c": pd.Series([], dtype="int64"),
                "_r": pd.Series([], dtype="int64"),
                "match_rule": pd.Series([], dtype="str"),
            }
        )
    )
    remit_prefixed = remits.rename(columns={c: f"remit_{c}" for c in remits.columns if c != "_r"})
    matched = (
        pair_frame.merge(charges, on="_c", how="left")
        .merge(remit_prefixed, on="_r", how="left")
        .sort_values(["_c"], kind="stable")
    )
    matched.insert(
        len(matched.columns), "charge_row", service_lines.index.to_numpy()[matched["_c"].to_numpy()]
    )
    matched.insert(
        len(matched.columns), "remit_row", remit_lines.index.to_numpy()[matched["_r"].to_numpy()]
    )
    matched["match_rule"] = matched.pop("match_rule").astype("str")
    matched = matched.drop(columns=["_c", "_r"]).reset_index(drop=True)

    open_charges = service_lines[~used_c]
    unmatched = remit_lines[~used_r]
    return Linked(matched=matched, open_charges=open_charges, unmatched_remittance=unmatched)
