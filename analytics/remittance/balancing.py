"""Balancing: the checks an 835 must pass at line, claim and transaction level (MLN).

A service line's charge less its adjustments is its payment (SVC02 - CAS = SVC03); a claim's
charge less its claim and line adjustments is its payment (CLP03 - CAS = CLP04); and a
transaction's claim payments less its provider adjustments are the payment (sum of CLP04 -
sum of PLB = BPR02, or minus BPR02 when BPR03 is ``D``: the payer debits the provider).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.remittance.columns import label_column, row_starts
from analytics.remittance.scan import Entry, OpenTransaction
from analytics.remittance.tables import BALANCE_SCHEMA, LEVELS, typed_frame

# Balancing tolerance: amounts are dollars with cents, so anything under half a cent is
# floating-point noise, not an imbalance.
_CENT_TOLERANCE = 0.005

_LINE_RULE = "SVC02 - sum(line CAS) = SVC03"
_CLAIM_RULE = "CLP03 - sum(claim and line CAS) = CLP04"
_TRANSACTION_RULE = "sum(CLP04) - sum(PLB) = BPR02"


def transaction_sums(
    entries: Sequence[Entry],
    claim_st: np.ndarray,
    claim_paid: np.ndarray,
    n_c: np.ndarray,
    plb_st: np.ndarray,
    plb_amount: np.ndarray,
    n_p: np.ndarray,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[OpenTransaction]]:
    """Sum of CLP04 and of PLB amounts per transaction, and the sums to carry on.

    A transaction may span parts of a file: its sums run on from the part's ``carried`` in
    file order (the same additions in the same order as for a whole-file read), and its check
    is made in the part that reads its SE. Each part's transactions ``st_base`` ... ``st_end``
    get rows of their own; returns the two sums by row, the shift from a part's transaction
    number to its row, and each part's open transaction.
    """
    st_base = np.array([e.scan.st_base for e in entries], dtype="int64")
    width = np.array([e.st_end for e in entries], dtype="int64") - st_base + 1
    shift = row_starts(width) - st_base
    st_paid = np.zeros(int(width.sum()))
    st_plb = np.zeros(int(width.sum()))
    for e, at in zip(entries, shift.tolist(), strict=True):
        if e.carried.st_index:
            st_paid[e.carried.st_index + at] = e.carried.paid
            st_plb[e.carried.st_index + at] = e.carried.plb
    np.add.at(st_paid, claim_st + np.repeat(shift, n_c), claim_paid)
    np.add.at(st_plb, plb_st + np.repeat(shift, n_p), plb_amount)
    carries = []
    for e, at in zip(entries, shift.tolist(), strict=True):
        carry = OpenTransaction()
        if e.open_st:
            carry.st_index = e.open_st
            carry.paid = float(st_paid[e.open_st + at])
            carry.plb = float(st_plb[e.open_st + at])
        carries.append(carry)
    return (st_paid, st_plb, shift), carries


_RULES = (_LINE_RULE, _CLAIM_RULE, _TRANSACTION_RULE)


def balance_table(
    names: Sequence[str],
    file_names: pa.Array | None,
    n_lines: int,
    n_claims: int,
    files: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    *,
    st: tuple[np.ndarray, np.ndarray, np.ndarray],
    claim_index: tuple[np.ndarray, np.ndarray],
    line_index: np.ndarray,
    claim_id: tuple[np.ndarray, np.ndarray],
    expected: tuple[np.ndarray, np.ndarray, np.ndarray],
    actual: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """The line, claim and transaction checks (each a tuple of three, in that order) as one
    table: each file's rows together, by level, in the order a whole-file read gives."""
    n_st = len(st[2])
    level = np.repeat(np.array([0, 1, 2], dtype="int64"), [n_lines, n_claims, n_st])
    none = np.full(n_st, None, dtype=object)
    columns = {
        "st_index": np.concatenate(st),
        "claim_index": np.concatenate([*claim_index, np.zeros(n_st, dtype="int64")]),
        "claim_mask": level == 2,
        "line_index": np.concatenate([line_index, np.zeros(n_claims + n_st, dtype="int64")]),
        "line_mask": level > 0,
        "claim_id": np.concatenate([*claim_id, none]),
        "expected": np.concatenate(expected),
        "actual": np.concatenate(actual),
        "level": level,
    }
    file_column: str | pa.Array = names[0]
    if file_names is not None:
        owner = np.concatenate(files)  # type: ignore[arg-type]
        order = np.argsort(owner * 3 + level, kind="stable")
        columns = {k: v[order] for k, v in columns.items()}
        file_column = file_names.take(pa.array(owner[order], type=pa.int64()))
    diff = columns["actual"] - columns["expected"]
    return typed_frame(
        {
            "file": file_column,
            "level": label_column(LEVELS, columns["level"]),
            "st_index": columns["st_index"],
            "claim_index": pd.arrays.IntegerArray(columns["claim_index"], columns["claim_mask"]),
            "line_index": pd.arrays.IntegerArray(columns["line_index"], columns["line_mask"]),
            "claim_id": columns["claim_id"],
            "rule": label_column(_RULES, columns["level"]),
            # Money is rounded here, once, for display; the test uses the unrounded gap.
            "expected": np.round(columns["expected"], 2),
            "actual": np.round(columns["actual"], 2),
            "difference": np.round(diff, 2),
            "balanced": np.abs(diff) < _CENT_TOLERANCE,
        },
        BALANCE_SCHEMA,
    )


def note_balance(
    entries: Sequence[Entry],
    balance: pd.DataFrame,
    n_l: np.ndarray,
    n_c: np.ndarray,
    n_pay: np.ndarray,
) -> None:
    """Count each part's checks, and its failed ones, in the notes of its file; ``n_l``,
    ``n_c`` and ``n_pay`` are the lines, claims and closed transactions of each part."""
    if len(entries) == 1:
        entries[0].notes.balance(balance)
    else:
        checks = n_l + n_c + n_pay
        failed = np.bincount(
            np.repeat(np.arange(len(entries)), checks)[~balance["balanced"].to_numpy()],
            minlength=len(entries),
        )
        for e, start, count, bad in zip(
            entries, row_starts(checks).tolist(), checks.tolist(), failed.tolist(), strict=True
        ):
            if bad:
                e.notes.balance(balance.iloc[start : start + count])
            else:
                e.notes.checks += count
