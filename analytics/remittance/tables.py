"""The tables an 835 is read into: their columns and dtypes, and the :class:`Remittance` that
holds them.

Every table has a ``file`` column, so the tables of several files (or of the parts of one
file) stack; building a table column by column in its final dtype skips pandas' inference
pass over Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyarrow as pa

DATE = "datetime64[us]"

PAYMENT_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "st_control_number": "str",
    "bpr_handling": "str",
    "paid_amount": "float64",
    "credit_debit": "str",
    "method": "str",
    "payment_date": DATE,
    "trace_number": "str",
    "trn_payer_id": "str",
    "production_date": DATE,
    "payer_name": "str",
    "payer_id": "str",
    "payee_name": "str",
    "payee_npi": "str",
    "payee_tin": "str",
    "segment": "int64",
}
CLAIM_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "claim_index": "int64",
    "claim_id": "str",
    "status": "str",
    "charge": "float64",
    "paid": "float64",
    "patient_responsibility": "float64",
    "filing_indicator": "str",
    "payer_claim_id": "str",
    "facility_code": "str",
    "frequency": "str",
    "patient_key": "str",
    "statement_from": DATE,
    "statement_to": DATE,
    "received_date": DATE,
    "claim_service_date": DATE,
    "is_reversal": "bool",
    "segment": "int64",
}
LINE_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "claim_index": "int64",
    "line_index": "int64",
    "claim_id": "str",
    "code_qualifier": "str",
    "cpt": "str",
    "modifier_1": "str",
    "modifier_2": "str",
    "modifier_3": "str",
    "modifier_4": "str",
    "modifiers": "str",
    "charge": "float64",
    "paid": "float64",
    "revenue_code": "str",
    "paid_units": "float64",
    "original_cpt": "str",
    "service_date": DATE,
    "service_date_end": DATE,
    "service_date_source": "str",
    "line_control_number": "str",
    "allowed": "float64",
    "segment": "int64",
}
ADJUSTMENT_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "claim_index": "int64",
    "line_index": "Int64",
    "level": "str",
    "claim_id": "str",
    "group_code": "str",
    "carc": "str",
    "amount": "float64",
    "quantity": "float64",
    "segment": "int64",
}
REMARK_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "claim_index": "int64",
    "line_index": "Int64",
    "level": "str",
    "claim_id": "str",
    "code": "str",
    "source": "str",
    "segment": "int64",
}
PLB_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "provider_id": "str",
    "fiscal_period_date": DATE,
    "reason": "str",
    "reference": "str",
    "amount": "float64",
    "segment": "int64",
}
BALANCE_SCHEMA = {
    "file": "str",
    "level": "str",
    "st_index": "int64",
    "claim_index": "Int64",
    "line_index": "Int64",
    "claim_id": "str",
    "rule": "str",
    "expected": "float64",
    "actual": "float64",
    "difference": "float64",
    "balanced": "bool",
}
SUMMARY_SCHEMA = {
    "file": "str",
    "claims": "int64",
    "service_lines": "int64",
    "paid_total": "float64",
    "adjustments_total": "float64",
    "plb_total": "float64",
    "balanced": "bool",
}
ERROR_SCHEMA = {"file": "str", "error": "str"}

#: The tables of a :class:`Remittance`, by name, in its field order.
TABLE_SCHEMAS = {
    "payments": PAYMENT_SCHEMA,
    "claims": CLAIM_SCHEMA,
    "service_lines": LINE_SCHEMA,
    "adjustments": ADJUSTMENT_SCHEMA,
    "remarks": REMARK_SCHEMA,
    "plb": PLB_SCHEMA,
    "balance": BALANCE_SCHEMA,
}

#: The levels of the balancing checks, in the order a whole-file read gives them.
LEVELS = ("line", "claim", "transaction")


def empty_frame(schema: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in schema.items()})


def typed_frame(data: dict[str, object], schema: dict[str, str]) -> pd.DataFrame:
    """Build a table column by column in its final dtype (no inference pass over objects)."""
    n = next((len(v) for v in data.values() if not isinstance(v, str)), 0)
    columns = {name: _column(data[name], dtype, n) for name, dtype in schema.items()}
    return pd.DataFrame(columns, copy=False)


# pandas 3 "str" dtype; with pyarrow present it is Arrow-backed, and an Arrow array built
# straight from the Python list skips pandas' per-element check (about 3x faster).
_STR = pd.Series([""], dtype="str").dtype
_ARROW_STR = getattr(_STR, "storage", "") == "pyarrow"


def _str_array(values: object) -> pd.api.extensions.ExtensionArray:
    if isinstance(values, pd.api.extensions.ExtensionArray) and values.dtype == _STR:
        return values
    if _ARROW_STR:
        try:
            if isinstance(values, pa.Array | pa.ChunkedArray):
                arrow = values.cast(pa.large_string())
            else:
                arrow = pa.array(values, type=pa.large_string(), from_pandas=True)
            return pd.arrays.ArrowStringArray(arrow, dtype=_STR)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass
    if isinstance(values, pa.Array | pa.ChunkedArray):
        values = values.to_pylist()
    return pd.array(list(values), dtype="str")  # type: ignore[call-overload]


def _column(values: object, dtype: str, n: int) -> object:
    if isinstance(values, str):  # a constant such as the file name
        values = [values] * n
    if dtype == "str":
        return _str_array(values)  # type: ignore[arg-type]
    if dtype == "Int64":
        return pd.array(values, dtype="Int64")
    return np.asarray(values, dtype=dtype)


@dataclass(frozen=True)
class Remittance:
    """The tables read from one or more 835 files.

    Every table has a ``file`` column, so tables from several files can be stacked. Indexes
    ``st_index``, ``claim_index`` and ``line_index`` count from 1 within a file, in file order;
    ``segment`` is the 1-based position of the source segment in its file.

    Attributes
    ----------
    payments
        One row per ST transaction: BPR payment, TRN trace, payer and payee.
    claims
        One row per CLP (loop 2100). ``patient_key`` is a salted hash, never a raw id.
    service_lines
        One row per SVC (loop 2110), with ``allowed`` from AMT*B6 (NaN when absent).
    adjustments
        One row per CAS (reason, amount, quantity) triplet, at claim or line level.
    remarks
        Remark codes: LQ*HE (line), MOA/MIA (claim).
    plb
        One row per PLB reason/amount pair; a positive amount reduces the payment.
    balance
        Line, claim and transaction balancing checks with expected, actual and difference.
    """

    payments: pd.DataFrame
    claims: pd.DataFrame
    service_lines: pd.DataFrame
    adjustments: pd.DataFrame
    remarks: pd.DataFrame
    plb: pd.DataFrame
    balance: pd.DataFrame

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name, in a stable order (``payments`` ... ``balance``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> pd.DataFrame:
        """Per-file counts, totals and overall balance.

        Returns
        -------
        pandas.DataFrame
            Columns ``file, claims, service_lines, paid_total`` (sum of CLP04),
            ``adjustments_total`` (sum of all CAS amounts), ``plb_total`` and ``balanced``
            (every line, claim and transaction check passes). Totals are rounded to cents.

        Examples
        --------
        >>> from analytics.remittance import read_835
        >>> read_835("era/2026-03-18.835").summary()  # doctest: +SKIP
        """
        files = self.payments["file"].drop_duplicates()
        out = pd.DataFrame({"file": files.to_numpy()})

        def per_file(series: pd.Series, by: pd.Series, how: str) -> np.ndarray:
            grouped = series.groupby(by.to_numpy()).agg(how)
            return grouped.reindex(out["file"].to_numpy()).fillna(0).to_numpy()

        out["claims"] = per_file(self.claims["claim_index"], self.claims["file"], "size")
        out["service_lines"] = per_file(
            self.service_lines["line_index"], self.service_lines["file"], "size"
        )
        out["paid_total"] = per_file(self.claims["paid"], self.claims["file"], "sum").round(2)
        out["adjustments_total"] = per_file(
            self.adjustments["amount"], self.adjustments["file"], "sum"
        ).round(2)
        out["plb_total"] = per_file(self.plb["amount"], self.plb["file"], "sum").round(2)
        failed = (~self.balance["balanced"]).groupby(self.balance["file"].to_numpy()).sum()
        out["balanced"] = failed.reindex(out["file"].to_numpy()).fillna(0).to_numpy() == 0
        return out.astype(SUMMARY_SCHEMA)

    @classmethod
    def concat(cls, parts: Sequence[Remittance]) -> Remittance:
        """Stack the tables of several remittances: one per file, or the parts of one file
        from :func:`iter_835`.

        Rows stay in order. In ``balance``, consecutive rows of the same file are put in the
        order a whole-file read gives (line, then claim, then transaction checks), so the parts
        of a file stack to exactly what :func:`read_835` returns.
        """
        if not parts:
            return _empty_remittance()
        tables = {
            f.name: pd.concat([getattr(p, f.name) for p in parts], ignore_index=True)
            for f in fields(cls)
        }
        tables["balance"] = _level_order(tables["balance"])
        return cls(**tables)


def _level_order(balance: pd.DataFrame) -> pd.DataFrame:
    """Balance rows by file (each run of one file stays where it is), then by level."""
    if len(balance) < 2:
        return balance
    files = balance["file"].to_numpy(dtype=object)
    run = np.concatenate([[0], np.cumsum(files[1:] != files[:-1])])
    levels = balance["level"].to_numpy(dtype=object)
    key = run * 3 + np.select([levels == "claim", levels == "transaction"], [1, 2], 0)
    if (key[1:] >= key[:-1]).all():
        return balance
    return balance.take(np.argsort(key, kind="stable")).reset_index(drop=True)


def _empty_remittance() -> Remittance:
    return Remittance(
        payments=empty_frame(PAYMENT_SCHEMA),
        claims=empty_frame(CLAIM_SCHEMA),
        service_lines=empty_frame(LINE_SCHEMA),
        adjustments=empty_frame(ADJUSTMENT_SCHEMA),
        remarks=empty_frame(REMARK_SCHEMA),
        plb=empty_frame(PLB_SCHEMA),
        balance=empty_frame(BALANCE_SCHEMA),
    )
