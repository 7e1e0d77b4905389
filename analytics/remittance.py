"""X12 835 (005010X221A1) health care claim payment/advice: read remittances into tidy tables.

An 835 (ERA) tells the practice what a payer did with each claim and service line: what it
paid, what it adjusted and why (CAS group + CARC), which remarks (RARC) apply, and what it took
back at provider level (PLB). :func:`read_835` turns one file into a :class:`Remittance` of
pandas tables, checks the three balancing rules the 835 guarantees, and never stores patient
names or raw member ids. :func:`link_remittance` joins the remittance back to the practice's
own service lines so open A/R and unexplained payments show up.

Structure followed (005010X221A1 TR3): ISA/GS(HP)/ST*835, BPR (payment), TRN (trace),
DTM*405, loop 1000A N1*PR payer, loop 1000B N1*PE payee, LX header, loop 2100 CLP claim,
loop 2110 SVC service line, PLB provider adjustments, SE/GE/IEA.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import math
import os
import re
import warnings
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.exceptions import BalanceWarning, InputError, X12Error, X12Warning

__all__ = [
    "DEFAULT_SALT",
    "Linked",
    "Remittance",
    "link_remittance",
    "read_835",
    "read_835_many",
    "register_cli",
    "tokenize",
]

#: Salt used for ``patient_key`` when neither the ``salt`` argument nor the
#: ``ANALYTICS_ID_SALT`` environment variable is set. It is public, so keys made with it only
#: stop casual reading of ids; set ``ANALYTICS_ID_SALT`` to a private value for real data.
DEFAULT_SALT = "massage-billing-analytics/patient-key/v1"

_SALT_ENV = "ANALYTICS_ID_SALT"

# Balancing tolerance: amounts are dollars with cents, so anything under half a cent is
# floating-point noise, not an imbalance.
_CENT_TOLERANCE = 0.005

# CAS01 group codes. CR (correction/reversal) was eliminated in 5010 (X12 RFI 1147) but is
# still accepted so that legacy 4010 files read.
_GROUP_CODES = frozenset({"CO", "PR", "OA", "PI", "CR"})

_DATE = "datetime64[us]"

_PAYMENT_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "st_control_number": "str",
    "bpr_handling": "str",
    "paid_amount": "float64",
    "credit_debit": "str",
    "method": "str",
    "payment_date": _DATE,
    "trace_number": "str",
    "trn_payer_id": "str",
    "production_date": _DATE,
    "payer_name": "str",
    "payer_id": "str",
    "payee_name": "str",
    "payee_npi": "str",
    "payee_tin": "str",
    "segment": "int64",
}
_CLAIM_SCHEMA = {
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
    "statement_from": _DATE,
    "statement_to": _DATE,
    "received_date": _DATE,
    "claim_service_date": _DATE,
    "is_reversal": "bool",
    "segment": "int64",
}
_LINE_SCHEMA = {
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
    "service_date": _DATE,
    "service_date_end": _DATE,
    "service_date_source": "str",
    "line_control_number": "str",
    "allowed": "float64",
    "segment": "int64",
}
_ADJUSTMENT_SCHEMA = {
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
_REMARK_SCHEMA = {
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
_PLB_SCHEMA = {
    "file": "str",
    "st_index": "int64",
    "provider_id": "str",
    "fiscal_period_date": _DATE,
    "reason": "str",
    "reference": "str",
    "amount": "float64",
    "segment": "int64",
}
_BALANCE_SCHEMA = {
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
_SUMMARY_SCHEMA = {
    "file": "str",
    "claims": "int64",
    "service_lines": "int64",
    "paid_total": "float64",
    "adjustments_total": "float64",
    "plb_total": "float64",
    "balanced": "bool",
}
_ERROR_SCHEMA = {"file": "str", "error": "str"}

_LINE_RULE = "SVC02 - sum(line CAS) = SVC03"
_CLAIM_RULE = "CLP03 - sum(claim and line CAS) = CLP04"
_TRANSACTION_RULE = "sum(CLP04) - sum(PLB) = BPR02"


def _empty(schema: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=d) for c, d in schema.items()})


def _typed(data: dict[str, object], schema: dict[str, str]) -> pd.DataFrame:
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
        return out.astype(_SUMMARY_SCHEMA)

    @classmethod
    def concat(cls, parts: Sequence[Remittance]) -> Remittance:
        """Stack the tables of several remittances (e.g. one per file)."""
        if not parts:
            return _empty_remittance()
        return cls(
            **{
                f.name: pd.concat([getattr(p, f.name) for p in parts], ignore_index=True)
                for f in fields(cls)
            }
        )


def _empty_remittance() -> Remittance:
    return Remittance(
        payments=_empty(_PAYMENT_SCHEMA),
        claims=_empty(_CLAIM_SCHEMA),
        service_lines=_empty(_LINE_SCHEMA),
        adjustments=_empty(_ADJUSTMENT_SCHEMA),
        remarks=_empty(_REMARK_SCHEMA),
        plb=_empty(_PLB_SCHEMA),
        balance=_empty(_BALANCE_SCHEMA),
    )


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


class _Delimiters(NamedTuple):
    element: str
    repetition: str | None
    component: str
    segment: str


class _Interchange(NamedTuple):
    delimiters: _Delimiters
    segments: list[str]  # raw segment text, terminator removed
    first_number: int  # segment number of segments[0] (1-based position in the file)
    declared_component: bool  # the component separator came from ISA16


_ISA_LENGTH = 106  # fixed-width ISA, terminator included (X12.5 interchange control header)
_BREAKS = "\r\n"


def _load(source: str | os.PathLike[str] | bytes, source_name: str | None) -> tuple[str, str]:
    """Return (text, name) for a path, raw bytes or 835 text."""
    if isinstance(source, bytes):
        return _decode(source), source_name or "<bytes>"
    # A string is the 835 itself when it looks like X12, is blank, or comes with a name for
    # it; otherwise it is a path.
    if isinstance(source, str) and (source_name is not None or not source.strip() or _looks_like_x12(source)):
        return source, source_name or "<text>"
    path = Path(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise X12Error(
            f"{path}: file not found. Check the path (directories go to read_835_many).",
            where=str(path),
        ) from None
    except IsADirectoryError:
        raise X12Error(
            f"{path}: is a directory. Use read_835_many to read every file in a directory.",
            where=str(path),
        ) from None
    return _decode(data), source_name or path.name


_X12_START = re.compile(r"[\ufeff\s]*(ISA|ST)[^A-Za-z0-9 _.\-/\\]")


def _looks_like_x12(text: str) -> bool:
    # A path never holds a line break, and a one-line 835 starts with ISA or ST and a separator.
    return "\n" in text or "\r" in text or _X12_START.match(text) is not None


def _decode(data: bytes) -> str:
    # X12 uses the basic/extended character sets; latin-1 never fails, so a binary file is
    # reported as "not X12" rather than as a decoding crash.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _isa_delimiters(text: str, pos: int, name: str, number: int) -> tuple[_Delimiters, int]:
    """Delimiters from the ISA starting at ``pos``; returns them and the ISA length."""
    element = text[pos + 3 : pos + 4]
    if not element or element.isalnum() or element.isspace():
        raise X12Error(
            f"{name}: segment {number} (ISA) has no element separator after 'ISA' "
            f"(found {element!r}). Restore the original interchange header.",
            where=f"{name} segment {number}",
        )
    # ISA has exactly 16 elements; ISA16 (component separator) is one character and the
    # character right after it is the segment terminator.
    parts = text[pos : pos + 2 * _ISA_LENGTH].split(element, 16)
    if len(parts) < 17 or len(parts[16]) < 2:
        raise X12Error(
            f"{name}: segment {number} (ISA) is incomplete: an ISA has 16 elements and ends "
            f"with the component separator and the segment terminator. The file is truncated or "
            f"was edited; ask the sender for the original file.",
            where=f"{name} segment {number}",
        )
    component, terminator = parts[16][0], parts[16][1]
    length = sum(len(p) for p in parts[:16]) + 16 + 2
    if terminator.isalnum() or terminator == element or terminator == " ":
        raise X12Error(
            f"{name}: segment {number} (ISA) has no valid segment terminator after ISA16 "
            f"(found {terminator!r}). Restore the original interchange header.",
            where=f"{name} segment {number}",
        )
    # ISA11 is the repetition separator from version 00501 on; in 4010 it is the standards id.
    repetition = parts[11] if parts[12].strip() >= "00501" and len(parts[11]) == 1 else None
    return _Delimiters(element, repetition, component, terminator), length


def _st_delimiters(text: str, name: str) -> _Delimiters:
    """Delimiters for a file that starts at ST (no ISA envelope)."""
    element = text[2:3]
    if not element or element.isalnum() or element.isspace():
        raise _not_x12(text, name)
    stop = re.compile(r"[^A-Za-z0-9 .\-_" + re.escape(element) + "]")
    found = stop.search(text, 3)
    if found is None:
        raise X12Error(
            f"{name}: segment 1 (ST) has no segment terminator. The file is truncated; ask "
            f"the sender for the complete file.",
            where=f"{name} segment 1",
        )
    terminator = found.group()
    if terminator in _BREAKS:
        terminator = "\n"
    return _Delimiters(element, None, ":", terminator)


def _not_x12(text: str, name: str) -> X12Error:
    head = text[:20]
    return X12Error(
        f"{name}: not an X12 file: it begins with {head!r}, but an 835 begins with 'ISA' "
        f"(interchange header) or 'ST*835'. Check that this is the 835/ERA file from the payer "
        f"or clearinghouse, not a report, PDF or spreadsheet.",
        where=f"{name} segment 1",
    )


def _clean_breaks(text: str, terminator: str) -> str:
    # Line breaks after terminators (and 80-column wrapping) are common; they are not data.
    # When the line break is itself the terminator, only normalise CRLF/CR to LF.
    if terminator == "\n":
        return text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in text or "\r" in text:
        return text.replace("\r", "").replace("\n", "")
    return text


def _split_segments(chunk: str, terminator: str) -> list[str]:
    segments = chunk.split(terminator)
    if terminator + " " in chunk or terminator + "\t" in chunk:
        segments = [s.lstrip(" \t") for s in segments]
    if segments and not segments[-1].strip():
        segments.pop()
    if "" in segments:
        segments = [s for s in segments if s]
    return segments


def _interchanges(
    text: str, name: str, notes: list[tuple[type[Warning], str]]
) -> list[_Interchange]:
    """Split an 835 text into interchanges of raw segments, delimiters resolved."""
    text = text.lstrip("\ufeff \t\r\n")
    if not text:
        raise X12Error(
            f"{name}: the file is empty. Download the 835 again from the payer or clearinghouse.",
            where=name,
        )
    if text.startswith("ST"):
        delimiters = _st_delimiters(text, name)
        text = _clean_breaks(text, delimiters.segment)
        segments = _split_segments(text, delimiters.segment)
        return [_resolve_component(_Interchange(delimiters, segments, 1, False), name, notes)]
    if not text.startswith("ISA"):
        raise _not_x12(text, name)

    out: list[_Interchange] = []
    pos, number = 0, 1
    while True:
        # Each interchange has its own delimiters; line breaks are removed per interchange,
        # after its terminator is known.
        raw_delimiters, _ = _isa_delimiters(text, pos, name, number)
        term = "\n" if raw_delimiters.segment in _BREAKS else raw_delimiters.segment
        end = _interchange_end(text, pos, raw_delimiters.element, term)
        chunk = _clean_breaks(text[pos:end], term)
        delimiters, isa_length = _isa_delimiters(chunk, 0, name, number)
        if isa_length < _ISA_LENGTH:
            raise X12Error(
                f"{name}: segment {number} (ISA) is {isa_length} characters long, but an ISA "
                f"is always {_ISA_LENGTH} (its fields are fixed-width, padded with spaces). The "
                f"padding was probably trimmed; restore it or ask the sender for the original "
                f"file.",
                where=f"{name} segment {number}",
            )
        delimiters = delimiters._replace(segment=term)
        segments = _split_segments(chunk, term)
        out.append(
            _resolve_component(_Interchange(delimiters, segments, number, True), name, notes)
        )
        number += len(segments)
        rest = text[end:].lstrip(" \t\r\n")
        if not rest:
            return out
        if not rest.startswith("ISA"):
            notes.append(
                (
                    X12Warning,
                    f"{name}: {len(rest)} character(s) after the IEA at segment {number - 1} "
                    f"are not an interchange (they begin {rest[:20]!r}) and were not read.",
                )
            )
            return out
        pos = len(text) - len(rest)


def _interchange_end(text: str, pos: int, element: str, terminator: str) -> int:
    """Position just after the IEA segment of the interchange at ``pos`` (or the text end)."""
    start = pos
    while True:
        i = text.find("IEA" + element, start)
        if i < 0:
            return len(text)
        j = i - 1
        if terminator == "\n":
            at_segment_start = text[j] in _BREAKS
        else:
            while j > pos and text[j] in _BREAKS:
                j -= 1
            at_segment_start = text[j] == terminator
        if at_segment_start:
            end = text.find(terminator, i)
            return len(text) if end < 0 else end + 1
        start = i + 1


def _composite_samples(chunk: list[str], element: str, limit: int = 20) -> list[str]:
    """A few SVC01/SVC06 and PLB03 composites, to check the component separator."""
    samples: list[str] = []
    svc, plb = "SVC" + element, "PLB" + element
    for raw in chunk:
        if raw.startswith(svc):
            parts = raw.split(element)
            samples.extend(p for p in (parts[1:2] + parts[6:7]) if p)
        elif raw.startswith(plb):
            parts = raw.split(element)
            samples.extend(p for p in parts[3::2] if p)
        if len(samples) >= limit:
            break
    return samples


def _resolve_component(
    ic: _Interchange, name: str, notes: list[tuple[type[Warning], str]]
) -> _Interchange:
    """Use the component separator the composites actually use.

    Procedure codes and PLB reasons are qualified by a two-character code (HC, AD, WO ...), so
    the character after it is the separator. Some files declare ':' in ISA16 yet write
    ``HC>97140``; files that start at ST declare nothing and default to ':'.
    """
    d = ic.delimiters
    samples = _composite_samples(ic.segments, d.element)
    if not samples or any(d.component in s for s in samples):
        return ic
    for s in samples:
        c = s[2:3]
        if c and not c.isalnum() and c not in (" ", d.element, "-", "."):
            if ic.declared_component:
                notes.append(
                    (
                        X12Warning,
                        f"{name}: ISA16 at segment {ic.first_number} declares component "
                        f"separator {d.component!r}, but the composites use {c!r} "
                        f"(e.g. {s!r}); read with {c!r}.",
                    )
                )
            return ic._replace(delimiters=d._replace(component=c))
    return ic


def tokenize(
    source: str | os.PathLike[str] | bytes, *, source_name: str | None = None
) -> list[list[str]]:
    """Split an 835 into segments and elements.

    Delimiters come from the ISA (element separator = 4th character, repetition separator =
    ISA11 in 5010, component separator = ISA16, segment terminator = the character after
    ISA16). A file that starts at ST (no envelope) uses the separators of its first segment.
    Line breaks after terminators are ignored. Composite elements are not split.

    Parameters
    ----------
    source
        A path, the raw bytes, or the 835 text itself.
    source_name
        Name used in error messages (defaults to the file name).

    Returns
    -------
    list of list of str
        One list per segment: the segment id, then its elements. Item ``i`` is segment number
        ``i + 1`` in error messages.

    Examples
    --------
    >>> tokenize("ST*835*0001~BPR*I*10*C*CHK~SE*3*0001~")[1]
    ['BPR', 'I', '10', 'C', 'CHK']
    """
    text, name = _load(source, source_name)
    notes: list[tuple[type[Warning], str]] = []
    out: list[list[str]] = []
    for ic in _interchanges(text, name, notes):
        sep = ic.delimiters.element
        out.extend(s.split(sep) for s in ic.segments)
    return out


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------

_PAD = [""] * 24
_NAT = np.datetime64("NaT", "us")

# Element positions that hold amounts (X12 type R), to name the bad element in an error.
_NUMERIC = {
    "BPR": (2,),
    "CLP": (3, 4, 5),
    "SVC": (2, 3, 5),
    "CAS": (3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19),
    "AMT": (2,),
    "PLB": (4, 6, 8, 10, 12, 14),
}

# MOA03-MOA07 (professional) and MIA05, MIA20-MIA23 (institutional) carry claim-level
# remark codes (TR3 loop 2100).
_REMARK_ELEMENTS = {"MOA": (3, 4, 5, 6, 7), "MIA": (5, 20, 21, 22, 23)}


def _resolve_salt(salt: str | None) -> str:
    if salt is not None:
        return salt
    return os.environ.get(_SALT_ENV) or DEFAULT_SALT


def _bad_number(seg: list[str], number: int, name: str) -> X12Error:
    tag = seg[0] if seg else "?"
    for i in _NUMERIC.get(tag, ()):
        if i < len(seg) and seg[i]:
            try:
                ok = math.isfinite(float(seg[i]))
            except ValueError:
                ok = False
            if not ok:
                return X12Error(
                    f"{name}: segment {number} ({tag}) element {tag}{i:02d} is {seg[i]!r}, "
                    f"which is not a number. Correct it in the file (digits with an optional "
                    f"minus sign and decimal point) or ask the sender for a corrected file.",
                    where=f"{name} segment {number}",
                )
    return X12Error(
        f"{name}: segment {number} ({tag}) could not be read: {seg!r}. Check it against the "
        f"005010X221A1 layout or ask the sender for a corrected file.",
        where=f"{name} segment {number}",
    )


@dataclass
class _Scan:
    """What one pass over the segments collected, column by column.

    Amounts and indexes are typed arrays (no Python object per value); codes that repeat are
    shared string objects. Values that arrive after their CLP or SVC (DTM, REF, AMT, NM1)
    sit in dicts keyed by the 1-based claim or line number.
    """

    payments: list[dict[str, object]]
    c_seg: array
    c_st: array
    c_charge: array
    c_paid: array
    c_pr: array
    c_id: list[str]
    c_status: list[str]
    c_filing: list[str]
    c_payer_claim: list[str]
    c_facility: list[str]
    c_freq: list[str]
    c_key: dict[int, str]
    c_dates: dict[str, dict[int, str]]
    l_seg: array
    l_claim: array
    l_charge: array
    l_paid: array
    l_units: array
    l_svc01: list[str]
    l_chunk: list[tuple[int, str]]  # (first line number, component separator) per interchange
    l_more: dict[str, dict[int, object]]
    a_seg: array
    a_owner: array  # line number for line-level CAS, minus the claim number for claim-level
    a_amount: array
    a_group: list[str]
    a_carc: list[str]
    a_qty: dict[int, float]
    remarks: list[tuple[int, int, int, str, str]]
    plb: list[tuple[int, int, str, str, str, str, float]]


def _scan(
    chunks: list[_Interchange], name: str, salt: str, notes: list[tuple[type[Warning], str]]
) -> _Scan:
    """One pass over the segments, dispatching on the segment id.

    Each segment is split while it is fresh in memory and only the values the tables need are
    kept, which is what makes the reader fast; the context (transaction, claim, service line)
    is the state of this loop.
    """
    same = {}.setdefault  # one shared object per distinct code or date
    salt_bytes = salt.encode()
    hashes: dict[str, str] = {}
    empties: list[str] = []
    outside: list[str] = []

    def empty_amount(number: int, element: str) -> float:
        empties.append(f"{number} ({element})")
        return 0.0

    payments: list[dict[str, object]] = []
    pay: dict[str, object] | None = None
    # claims (loop 2100): typed arrays for numbers, lists for text
    c_seg, c_st = array("q"), array("q")
    c_charge, c_paid, c_pr = array("d"), array("d"), array("d")
    c_id: list[str] = []
    c_status: list[str] = []
    c_filing: list[str] = []
    c_payer_claim: list[str] = []
    c_facility: list[str] = []
    c_freq: list[str] = []
    c_key: dict[int, str] = {}
    c_dates: dict[str, dict[int, str]] = {"232": {}, "233": {}, "050": {}}
    # service lines (loop 2110); values from later segments go to dicts keyed by line number
    l_seg, l_claim = array("q"), array("q")
    l_charge, l_paid, l_units = array("d"), array("d"), array("d")
    l_svc01: list[str] = []
    l_chunk: list[tuple[int, str]] = []
    l_dates: dict[str, dict[int, object]] = {"472": {}, "150": {}, "151": {}}
    l_control: dict[int, object] = {}
    l_allowed: dict[int, object] = {}
    l_revenue: dict[int, object] = {}
    l_original: dict[int, object] = {}
    # CAS triplets
    a_seg, a_owner, a_amount = array("q"), array("q"), array("d")
    a_group: list[str] = []
    a_carc: list[str] = []
    a_qty: dict[int, float] = {}
    remarks: list[tuple[int, int, int, str, str]] = []
    plb: list[tuple[int, int, str, str, str, str, float]] = []

    st_index = 0
    in_st = False
    st_seg = 0
    st_control = ""
    level = 0  # 0: header or between claims, 1: in a claim (2100), 2: in a service line (2110)
    claim_no = 0  # counts across transactions, so claim_index is unique in a file
    st_claims = 0
    line_no = 0
    isa_count = iea_count = 0
    number = 0

    for ic in chunks:
        sep, cs = ic.delimiters.element, ic.delimiters.component
        l_chunk.append((line_no + 1, cs))
        number = ic.first_number - 1
        seg: list[str] = []
        try:
            for raw in ic.segments:
                number += 1
                seg = raw.split(sep)
                tag = seg[0]
                if tag == "CAS":
                    if level == 0:
                        outside.append(f"{number} (CAS)")
                        continue
                    group = same(seg[1], seg[1])
                    owner = line_no if level == 2 else -claim_no
                    k = len(seg)
                    # Up to six (reason, amount, quantity) triplets per CAS (X12 RFI 213).
                    for i in range(2, k, 3):
                        carc = seg[i]
                        if not carc:
                            continue
                        amount = seg[i + 1] if i + 1 < k else ""
                        a_amount.append(
                            float(amount) if amount else empty_amount(number, f"CAS{i + 1:02d}")
                        )
                        if i + 2 < k and seg[i + 2]:
                            a_qty[len(a_seg)] = float(seg[i + 2])
                        a_seg.append(number)
                        a_owner.append(owner)
                        a_group.append(group)
                        a_carc.append(same(carc, carc))
                elif tag == "DTM":
                    if level == 2:
                        found = l_dates.get(seg[1])
                        if found is not None:
                            found[line_no] = same(seg[2], seg[2])
                    elif level == 1:
                        found = c_dates.get(seg[1])
                        if found is not None:
                            found[claim_no] = same(seg[2], seg[2])
                    elif seg[1] == "405" and pay is not None and st_claims == 0:
                        pay.setdefault("production_date", seg[2])
                elif tag == "SVC":
                    if level == 0:
                        outside.append(f"{number} (SVC)")
                        continue
                    level = 2
                    line_no += 1
                    if len(seg) < 7:
                        seg += _PAD[: 7 - len(seg)]
                    l_seg.append(number)
                    l_claim.append(claim_no)
                    l_svc01.append(same(seg[1], seg[1]))
                    v = seg[2]
                    l_charge.append(float(v) if v else empty_amount(number, "SVC02"))
                    v = seg[3]
                    l_paid.append(float(v) if v else empty_amount(number, "SVC03"))
                    if seg[4]:
                        l_revenue[line_no] = same(seg[4], seg[4])
                    # SVC05 absent means one unit paid (TR3 loop 2110 SVC05).
                    v = seg[5]
                    l_units.append(float(v) if v else 1.0)
                    if seg[6]:
                        l_original[line_no] = same(seg[6], seg[6])
                elif tag == "REF":
                    if level == 2:
                        if seg[1] == "6R":
                            l_control[line_no] = seg[2]
                    elif level == 0 and pay is not None and st_claims == 0:
                        if seg[1] == "2U":
                            pay.setdefault("payer_id", seg[2])
                        elif seg[1] == "TJ":
                            pay.setdefault("payee_tin", seg[2])
                elif tag == "AMT":
                    if level == 2 and seg[1] == "B6":
                        l_allowed[line_no] = float(seg[2])
                elif tag == "CLP":
                    if not in_st:
                        outside.append(f"{number} (CLP)")
                        continue
                    if len(seg) < 10:
                        seg += _PAD[: 10 - len(seg)]
                    level = 1
                    claim_no += 1
                    st_claims += 1
                    c_seg.append(number)
                    c_st.append(st_index)
                    c_id.append(seg[1])
                    # CLP02 is kept as sent: in 5010 a recognised claim paid $0 stays 1/2/3
                    # and 4 means "not recognised" (X12 RFI 1423), so paid 0 is no denial flag.
                    c_status.append(same(seg[2], seg[2]))
                    v = seg[3]
                    c_charge.append(float(v) if v else empty_amount(number, "CLP03"))
                    v = seg[4]
                    c_paid.append(float(v) if v else empty_amount(number, "CLP04"))
                    # CLP05 is situational: empty means no patient responsibility.
                    v = seg[5]
                    c_pr.append(float(v) if v else 0.0)
                    c_filing.append(same(seg[6], seg[6]))
                    c_payer_claim.append(seg[7])
                    c_facility.append(same(seg[8], seg[8]))
                    c_freq.append(same(seg[9], seg[9]))
                elif tag == "NM1":
                    # Names (NM103-NM107) are never read. Only the patient (QC) id, or failing
                    # that the insured (IL) id, is kept, and only as a salted hash.
                    if level == 1 and len(seg) > 9:
                        qual = seg[1]
                        if qual == "QC" or (qual == "IL" and claim_no not in c_key):
                            ident = seg[9].strip()
                            if ident:
                                key = hashes.get(ident)
                                if key is None:
                                    key = hashlib.sha256(salt_bytes + ident.encode()).hexdigest()
                                    key = hashes[ident] = key[:16]
                                c_key[claim_no] = key
                elif tag == "LQ":
                    # LQ*HE: remark codes of the service line (loop 2110).
                    if level and len(seg) > 2 and seg[2]:
                        line = line_no if level == 2 else 0
                        remarks.append((number, claim_no, line, seg[2], "LQ*" + seg[1]))
                elif tag == "MOA" or tag == "MIA":
                    if level == 1:
                        for i in _REMARK_ELEMENTS[tag]:
                            if i < len(seg) and seg[i]:
                                remarks.append((number, claim_no, 0, seg[i], f"{tag}{i:02d}"))
                elif tag == "LX":
                    level = 0
                elif tag == "PLB":
                    level = 0
                    if not in_st:
                        outside.append(f"{number} (PLB)")
                        continue
                    # PLB03/05/...: composite reason:reference, then its amount. A positive
                    # amount reduces the payment (TR3 PLB segment notes).
                    k = len(seg)
                    for i in range(3, k, 2):
                        if seg[i]:
                            amount = seg[i + 1] if i + 1 < k else ""
                            plb.append(
                                (
                                    number,
                                    st_index,
                                    seg[1],
                                    seg[2],
                                    seg[i],
                                    cs,
                                    float(amount)
                                    if amount
                                    else empty_amount(number, f"PLB{i + 1:02d}"),
                                )
                            )
                elif tag == "BPR":
                    if pay is not None and "bpr_handling" not in pay:
                        if len(seg) < 17:
                            seg += _PAD[: 17 - len(seg)]
                        v = seg[2]
                        pay.update(
                            bpr_handling=seg[1],
                            paid_amount=float(v) if v else empty_amount(number, "BPR02"),
                            credit_debit=seg[3],
                            method=seg[4],
                            payment_date=seg[16],
                            bpr_segment=number,
                        )
                elif tag == "TRN":
                    if pay is not None and "trace_number" not in pay:
                        seg += _PAD[:4]
                        pay.update(trace_number=seg[2], trn_payer_id=seg[3])
                elif tag == "N1":
                    # Payer (1000A) and payee (1000B) come before the first claim; an N1 inside
                    # the claim loops is not part of 005010X221A1 and is not read.
                    if pay is not None and st_claims == 0 and level == 0:
                        seg += _PAD[:5]
                        if seg[1] == "PR" and "payer_name" not in pay:
                            pay["payer_name"] = seg[2]
                            if seg[4]:
                                pay["payer_id"] = seg[4]
                        elif seg[1] == "PE" and "payee_name" not in pay:
                            pay["payee_name"] = seg[2]
                            if seg[3] == "XX":
                                pay["payee_npi"] = seg[4]
                            elif seg[3] == "FI" and seg[4]:
                                pay["payee_tin"] = seg[4]
                elif tag == "ST":
                    if in_st:
                        raise X12Error(
                            f"{name}: segment {number} starts a new transaction (ST) but the "
                            f"one from segment {st_seg} (ST*835*{st_control}) has no SE trailer. "
                            f"The file was cut or two files were joined; ask the sender for the "
                            f"complete file.",
                            where=f"{name} segment {number}",
                        )
                    kind = seg[1] if len(seg) > 1 else ""
                    if kind != "835":
                        raise X12Error(
                            f"{name}: segment {number} is ST*{kind}: a {kind or 'blank'} "
                            f"transaction, not an 835 remittance. Pass only 835 (ERA) files.",
                            where=f"{name} segment {number}",
                        )
                    in_st = True
                    st_index += 1
                    st_seg = number
                    st_control = seg[2] if len(seg) > 2 else ""
                    level = 0
                    st_claims = 0
                    pay = {"st_index": st_index, "st_control_number": st_control, "segment": number}
                elif tag == "SE":
                    if not in_st or pay is None:
                        outside.append(f"{number} (SE)")
                        continue
                    count = number - st_seg + 1
                    declared = seg[1] if len(seg) > 1 else ""
                    if declared != str(count):
                        notes.append(
                            (
                                X12Warning,
                                f"{name}: SE at segment {number} says the transaction has "
                                f"{declared or 'no'} segments, but ST (segment {st_seg}) to SE "
                                f"count {count}. The data were read; tell the sender the count "
                                f"is wrong.",
                            )
                        )
                    control = seg[2] if len(seg) > 2 else ""
                    if control != st_control:
                        notes.append(
                            (
                                X12Warning,
                                f"{name}: SE02 {control!r} at segment {number} does not match "
                                f"ST02 {st_control!r} at segment {st_seg}. The data were read.",
                            )
                        )
                    payments.append(pay)
                    in_st = False
                    level = 0
                    pay = None
                elif tag == "ISA":
                    isa_count += 1
                elif tag == "IEA":
                    iea_count += 1
        except X12Error:
            raise
        except (ValueError, IndexError) as exc:  # float() of a non-number, a short segment
            raise _bad_number(seg, number, name) from exc

    if in_st:
        inside = ""
        if st_claims:
            inside = f", inside claim {c_id[-1]!r} (CLP at segment {c_seg[-1]})"
        raise X12Error(
            f"{name}: the file ends at segment {number}{inside} in the transaction that starts "
            f"at segment {st_seg} (ST*835*{st_control}), with no SE trailer. The file looks "
            f"truncated; download it again from the payer or clearinghouse.",
            where=f"{name} segment {number}",
        )
    if st_index == 0:
        raise X12Error(
            f"{name}: no ST*835 transaction found in {number} segment(s). Check that this is an "
            f"835 (ERA) file and not only an envelope or acknowledgement.",
            where=name,
        )

    def note(message: str) -> None:
        notes.append((X12Warning, f"{name}: {message}"))

    if isa_count != iea_count:
        note(
            f"{isa_count} ISA header(s) but {iea_count} IEA trailer(s); the envelope is "
            f"incomplete (the transactions themselves were complete and read)."
        )
    if empties:
        more = " ..." if len(empties) > 10 else ""
        note(
            f"required amount(s) empty at segment(s) {', '.join(empties[:10])}{more}; read as 0. "
            f"Ask the sender for a corrected file if these lines matter."
        )
    if outside:
        note(
            f"segment(s) {', '.join(outside[:10])} are outside a claim or transaction and were "
            f"not read."
        )
    unknown = sorted(set(a_group) - _GROUP_CODES)
    if unknown:
        note(f"CAS group code(s) {unknown} are not CO, PR, OA, PI or CR; the rows were kept.")

    return _Scan(
        payments=payments,
        c_seg=c_seg,
        c_st=c_st,
        c_charge=c_charge,
        c_paid=c_paid,
        c_pr=c_pr,
        c_id=c_id,
        c_status=c_status,
        c_filing=c_filing,
        c_payer_claim=c_payer_claim,
        c_facility=c_facility,
        c_freq=c_freq,
        c_key=c_key,
        c_dates=c_dates,
        l_seg=l_seg,
        l_claim=l_claim,
        l_charge=l_charge,
        l_paid=l_paid,
        l_units=l_units,
        l_svc01=l_svc01,
        l_chunk=l_chunk,
        l_more={
            **l_dates,
            "6R": l_control,
            "B6": l_allowed,
            "SVC04": l_revenue,
            "SVC06": l_original,
        },
        a_seg=a_seg,
        a_owner=a_owner,
        a_amount=a_amount,
        a_group=a_group,
        a_carc=a_carc,
        a_qty=a_qty,
        remarks=remarks,
        plb=plb,
    )


def _spread(values: dict[int, object], n: int, fill: object = None) -> np.ndarray:
    """A length-``n`` array from a {1-based number: value} dict; ``fill`` elsewhere."""
    if isinstance(fill, float):
        out = np.full(n, fill)
        if values:
            out[np.fromiter(values, dtype="int64", count=len(values)) - 1] = np.fromiter(
                values.values(), dtype="float64", count=len(values)
            )
        return out
    out = np.full(n, fill, dtype=object)
    if values:
        idx = np.fromiter(values, dtype="int64", count=len(values)) - 1
        vals = np.empty(len(values), dtype=object)
        vals[:] = list(values.values())
        out[idx] = vals
    return out


def _factorize(values: Sequence[object]) -> tuple[np.ndarray, list[object]]:
    """Codes (-1 for None) and distinct values, hashed in C; codes and dates repeat a lot."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    codes, distinct = pd.factorize(column, use_na_sentinel=True)
    return codes, list(distinct)


def _decode_procedures(values: Sequence[str], separator: str) -> list[np.ndarray]:
    """SVC01 composites (qualifier:code:mod1:mod2:mod3:mod4) to seven columns: qualifier,
    code, four modifiers and the modifiers joined with commas. Each distinct composite is
    split once (a practice bills a few dozen code/modifier combinations)."""
    codes, distinct = _factorize(values)
    parts = [(v.split(separator) + _PAD[:6])[:6] for v in distinct]
    for p in parts:
        p.append(",".join([m for m in p[2:6] if m]))
    columns = []
    for k in range(7):
        column = np.empty(len(parts), dtype=object)
        column[:] = [p[k] for p in parts]
        columns.append(column[codes])
    return columns


class _DateParser:
    """CCYYMMDD to datetime64[us], parsing each distinct value once; warns on invalid ones."""

    def __init__(self, name: str, notes: list[tuple[type[Warning], str]]) -> None:
        self.name = name
        self.notes = notes

    def __call__(self, values: Sequence[object], segments: Sequence[int], what: str) -> np.ndarray:
        n = len(values)
        if n == 0:
            return np.empty(0, dtype=_DATE)
        codes, distinct = _factorize(values)
        raw = pd.Series([v if isinstance(v, str) and v else None for v in distinct], dtype=object)
        # one extra NaT at the end for the missing values (code -1)
        parsed = np.append(
            pd.to_datetime(raw, format="%Y%m%d", errors="coerce").to_numpy(dtype=_DATE), _NAT
        )
        bad = np.flatnonzero(np.isnat(parsed[:-1]) & raw.notna().to_numpy())
        if len(bad):
            rows = np.flatnonzero(np.isin(codes, bad))
            shown = ", ".join(f"{values[i]!r} (segment {segments[i]})" for i in rows[:5].tolist())
            self.notes.append(
                (
                    X12Warning,
                    f"{self.name}: {len(rows)} {what} value(s) are not CCYYMMDD dates: {shown}; "
                    f"read as missing (NaT).",
                )
            )
        return parsed[codes]


def _finite(values: np.ndarray, segments: np.ndarray, what: str, name: str) -> np.ndarray:
    # float() accepts "nan" and "inf"; an amount must be a finite number.
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        number = int(segments[bad[0]])
        raise X12Error(
            f"{name}: segment {number} {what} is not a finite number. Correct the amount in the "
            f"file or ask the sender for a corrected file.",
            where=f"{name} segment {number}",
        )
    return values


def _build(scan: _Scan, name: str, notes: list[tuple[type[Warning], str]]) -> Remittance:
    """Typed tables from the scan, then the balancing checks."""
    dates = _DateParser(name, notes)

    def money(values: array, segments: np.ndarray, what: str) -> np.ndarray:
        return _finite(np.array(values, dtype="float64"), segments, what, name)

    # payments (one per ST)
    pay = pd.DataFrame(scan.payments)
    for column in _PAYMENT_SCHEMA:
        if column not in pay.columns and column != "file":
            pay[column] = None
    if "bpr_segment" not in pay.columns:
        pay["bpr_segment"] = None
    no_bpr = pay["bpr_handling"].isna()
    if no_bpr.any():
        where = ", ".join(str(s) for s in pay.loc[no_bpr, "segment"].tolist())
        notes.append(
            (
                X12Warning,
                f"{name}: the transaction(s) at segment(s) {where} have no BPR; paid_amount is "
                f"missing and the transaction cannot balance.",
            )
        )
    pay_segments = pay["bpr_segment"].fillna(pay["segment"]).astype("int64").tolist()
    undated = pay["bpr_handling"].notna() & (pay["payment_date"].fillna("") == "")
    if undated.any():
        where = ", ".join(str(s) for s in pay.loc[undated, "bpr_segment"].astype("int64"))
        notes.append(
            (
                X12Warning,
                f"{name}: BPR at segment(s) {where} has no payment date in BPR16 (count the "
                f"separators: BPR16 is the 16th element); payment_date is missing.",
            )
        )
    payments = _typed(
        {
            "file": name,
            **{c: pay[c].tolist() for c in _PAYMENT_SCHEMA if c != "file"},
            "paid_amount": pay["paid_amount"].astype("float64").to_numpy(),
            "payment_date": dates(pay["payment_date"].tolist(), pay_segments, "BPR16"),
            "production_date": dates(
                pay["production_date"].tolist(), pay["segment"].tolist(), "DTM*405"
            ),
        },
        _PAYMENT_SCHEMA,
    )

    # claims (loop 2100)
    n_claims = len(scan.c_seg)
    c_seg = np.array(scan.c_seg, dtype="int64")
    claim_from = dates(_spread(scan.c_dates["232"], n_claims), c_seg, "DTM*232")
    claim_to = dates(_spread(scan.c_dates["233"], n_claims), c_seg, "DTM*233")
    claim_ids = np.empty(n_claims, dtype=object)
    claim_ids[:] = scan.c_id

    # service lines (loop 2110)
    n_lines = len(scan.l_seg)
    l_seg = np.array(scan.l_seg, dtype="int64")
    line_claim = np.array(scan.l_claim, dtype="int64")
    pos = line_claim - 1
    # Interchanges may use different component separators; decode each one's lines with its own.
    parts = [np.empty(n_lines, dtype=object) for _ in range(7)]
    bounds = [start - 1 for start, _ in scan.l_chunk] + [n_lines]
    for (start, separator), stop in zip(scan.l_chunk, bounds[1:], strict=True):
        decoded = _decode_procedures(scan.l_svc01[start - 1 : stop], separator)
        for k in range(7):
            parts[k][start - 1 : stop] = decoded[k]
    more = scan.l_more
    original = _spread(more["SVC06"], n_lines)
    has_original = np.flatnonzero(original != None)  # noqa: E711 - elementwise on objects
    if len(has_original):
        separator_of = {}
        for (start, separator), stop in zip(scan.l_chunk, bounds[1:], strict=True):
            separator_of.update(dict.fromkeys(range(start - 1, stop), separator))
        for i in has_original.tolist():
            composite = original[i].split(separator_of[i])
            original[i] = composite[1] if len(composite) > 1 and composite[1] else composite[0]

    d472 = dates(_spread(more["472"], n_lines), l_seg, "DTM*472")
    d150 = dates(_spread(more["150"], n_lines), l_seg, "DTM*150")
    claim_from_on_line, claim_to_on_line = claim_from[pos], claim_to[pos]
    has = [
        ~np.isnat(d472),
        ~np.isnat(d150),
        ~np.isnat(claim_from_on_line),
        ~np.isnat(claim_to_on_line),
    ]
    # Line date: DTM*472, else the DTM*150 start of a span, else the claim's statement dates
    # (TR3 loop 2110: the line DTM may be left out when the claim dates cover the line).
    service_date = np.select(has, [d472, d150, claim_from_on_line, claim_to_on_line], _NAT)
    source = np.select(has, ["DTM*472", "DTM*150", "claim DTM*232", "claim DTM*233"], "")
    source = np.where(source == "", None, source.astype(object))

    # claim_service_date: DTM*232, else the claim's earliest own line date
    own_date = np.where(has[0], d472, d150)
    first = np.full(n_claims, _NAT)
    if n_lines:
        earliest = pd.Series(own_date).groupby(line_claim).min()
        first[earliest.index.to_numpy() - 1] = earliest.to_numpy(dtype=_DATE)
    claim_service = np.where(np.isnat(claim_from), first, claim_from)

    allowed = _spread(more["B6"], n_lines, math.nan)
    if np.isinf(allowed).any():
        _finite(allowed, l_seg, "(AMT02)", name)

    claim_st = np.array(scan.c_st, dtype="int64")
    claims = _typed(
        {
            "file": name,
            "st_index": claim_st,
            "claim_index": np.arange(1, n_claims + 1),
            "claim_id": claim_ids,
            "status": scan.c_status,
            "charge": money(scan.c_charge, c_seg, "(CLP03)"),
            "paid": money(scan.c_paid, c_seg, "(CLP04)"),
            "patient_responsibility": money(scan.c_pr, c_seg, "(CLP05)"),
            "filing_indicator": _or_none(scan.c_filing),
            "payer_claim_id": _or_none(scan.c_payer_claim),
            "facility_code": _or_none(scan.c_facility),
            "frequency": _or_none(scan.c_freq),
            "patient_key": _spread(scan.c_key, n_claims),
            "statement_from": claim_from,
            "statement_to": claim_to,
            "received_date": dates(_spread(scan.c_dates["050"], n_claims), c_seg, "DTM*050"),
            "claim_service_date": claim_service,
            # CLP02 22 = reversal of a previous payment; the payer has already negated its
            # amounts, so they are kept as sent (X12 RFI 1147).
            "is_reversal": np.array(scan.c_status, dtype=object) == "22",
            "segment": c_seg,
        },
        _CLAIM_SCHEMA,
    )

    service_lines = _typed(
        {
            "file": name,
            "st_index": claim_st[pos],
            "claim_index": line_claim,
            "line_index": np.arange(1, n_lines + 1),
            "claim_id": claim_ids[pos],
            "code_qualifier": parts[0],
            "cpt": parts[1],
            "modifier_1": parts[2],
            "modifier_2": parts[3],
            "modifier_3": parts[4],
            "modifier_4": parts[5],
            "modifiers": parts[6],
            "charge": money(scan.l_charge, l_seg, "(SVC02)"),
            "paid": money(scan.l_paid, l_seg, "(SVC03)"),
            "revenue_code": _spread(more["SVC04"], n_lines),
            "paid_units": money(scan.l_units, l_seg, "(SVC05)"),
            "original_cpt": original,
            "service_date": service_date,
            "service_date_end": dates(_spread(more["151"], n_lines), l_seg, "DTM*151"),
            "service_date_source": source,
            "line_control_number": _spread(more["6R"], n_lines),
            # NaN, not 0, when AMT*B6 is absent: the allowed amount is unknown.
            "allowed": allowed,
            "segment": l_seg,
        },
        _LINE_SCHEMA,
    )

    # adjustments (CAS triplets)
    owner = np.array(scan.a_owner, dtype="int64")
    a_seg = np.array(scan.a_seg, dtype="int64")
    on_line = owner > 0
    adj_line = np.where(on_line, owner, 0)
    adj_claim = np.where(on_line, line_claim[np.maximum(owner, 1) - 1] if n_lines else 0, -owner)
    adjustments = _typed(
        {
            "file": name,
            "st_index": claim_st[adj_claim - 1],
            "claim_index": adj_claim,
            "line_index": pd.arrays.IntegerArray(adj_line, ~on_line),
            "level": np.where(on_line, "line", "claim").astype(object),
            "claim_id": claim_ids[adj_claim - 1],
            "group_code": scan.a_group,
            "carc": scan.a_carc,
            "amount": money(scan.a_amount, a_seg, "(CAS amount)"),
            "quantity": _spread({k + 1: v for k, v in scan.a_qty.items()}, len(a_seg), math.nan),
            "segment": a_seg,
        },
        _ADJUSTMENT_SCHEMA,
    )

    r = list(zip(*scan.remarks, strict=True)) if scan.remarks else [()] * 5
    r_claim = np.array(r[1], dtype="int64")
    r_line = np.array(r[2], dtype="int64")
    remarks = _typed(
        {
            "file": name,
            "st_index": claim_st[r_claim - 1],
            "claim_index": r_claim,
            "line_index": pd.arrays.IntegerArray(r_line, r_line == 0),
            "level": np.where(r_line > 0, "line", "claim").astype(object),
            "claim_id": claim_ids[r_claim - 1],
            "code": list(r[3]),
            "source": list(r[4]),
            "segment": np.array(r[0], dtype="int64"),
        },
        _REMARK_SCHEMA,
    )

    p = list(zip(*scan.plb, strict=True)) if scan.plb else [()] * 7
    p_seg = np.array(p[0], dtype="int64")
    reasons = [(c.split(s, 1) + [""])[:2] for c, s in zip(p[4], p[5], strict=True)]
    plb = _typed(
        {
            "file": name,
            "st_index": np.array(p[1], dtype="int64"),
            "provider_id": list(p[2]),
            "fiscal_period_date": dates(list(p[3]), p_seg.tolist(), "PLB02"),
            "reason": [x[0] for x in reasons],
            "reference": [x[1] or None for x in reasons],
            "amount": _finite(np.array(p[6], dtype="float64"), p_seg, "(PLB amount)", name),
            "segment": p_seg,
        },
        _PLB_SCHEMA,
    )

    balance = _balance(name, payments, claims, service_lines, adjustments, plb)
    return Remittance(
        payments=payments,
        claims=claims,
        service_lines=service_lines,
        adjustments=adjustments,
        remarks=remarks,
        plb=plb,
        balance=balance,
    )


def _or_none(values: list[str]) -> list[str | None]:
    return [v or None for v in values]


def _balance(
    name: str,
    payments: pd.DataFrame,
    claims: pd.DataFrame,
    lines: pd.DataFrame,
    adjustments: pd.DataFrame,
    plb: pd.DataFrame,
) -> pd.DataFrame:
    """Line, claim and transaction balancing (MLN: the 835 balances at all three levels)."""
    n_lines, n_claims, n_st = len(lines), len(claims), len(payments)
    amount = adjustments["amount"].to_numpy()
    claim_of = adjustments["claim_index"].to_numpy()
    line_raw = adjustments["line_index"].fillna(0).to_numpy(dtype="int64")
    line_cas = np.zeros(n_lines)
    claim_cas = np.zeros(n_claims)
    on_line = line_raw > 0
    np.add.at(line_cas, line_raw[on_line] - 1, amount[on_line])
    # The claim rule uses claim CAS plus the CAS of its lines; a claim with no SVC has only
    # claim-level CAS, so one sum over all CAS of the claim covers both cases.
    np.add.at(claim_cas, claim_of - 1, amount)
    claim_st = claims["st_index"].to_numpy()
    claim_paid = claims["paid"].to_numpy()
    st_paid = np.zeros(n_st)
    st_plb = np.zeros(n_st)
    np.add.at(st_paid, claim_st - 1, claim_paid)
    np.add.at(st_plb, plb["st_index"].to_numpy() - 1, plb["amount"].to_numpy())
    line_claim = lines["claim_index"].to_numpy()
    claim_ids = claims["claim_id"].to_numpy(dtype=object)

    parts = [
        _balance_part(
            name, "line", lines["st_index"].to_numpy(), line_claim, lines["line_index"].to_numpy(),
            claim_ids[line_claim - 1], _LINE_RULE,
            lines["charge"].to_numpy() - line_cas, lines["paid"].to_numpy(),
        ),
        _balance_part(
            name, "claim", claim_st, claims["claim_index"].to_numpy(), None,
            claim_ids, _CLAIM_RULE, claims["charge"].to_numpy() - claim_cas, claim_paid,
        ),
        _balance_part(
            name, "transaction", payments["st_index"].to_numpy(), None, None,
            None, _TRANSACTION_RULE, st_paid - st_plb, payments["paid_amount"].to_numpy(),
        ),
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True).astype(_BALANCE_SCHEMA)


def _balance_part(
    name: str,
    level: str,
    st: np.ndarray,
    claim_index: np.ndarray | None,
    line_index: np.ndarray | None,
    claim_id: np.ndarray | None,
    rule: str,
    expected: np.ndarray,
    actual: np.ndarray,
) -> pd.DataFrame:
    n = len(st)
    diff = actual - expected
    return pd.DataFrame(
        {
            "file": name,
            "level": level,
            "st_index": st,
            "claim_index": pd.array(
                claim_index if claim_index is not None else [None] * n, dtype="Int64"
            ),
            "line_index": pd.array(
                line_index if line_index is not None else [None] * n, dtype="Int64"
            ),
            "claim_id": claim_id if claim_id is not None else np.full(n, None, dtype=object),
            "rule": rule,
            # Money is rounded here, once, for display; the test uses the unrounded gap.
            "expected": np.round(expected, 2),
            "actual": np.round(actual, 2),
            "difference": np.round(diff, 2),
            "balanced": np.abs(diff) < _CENT_TOLERANCE,
        },
        index=pd.RangeIndex(n),
    )


def _balance_note(remit: Remittance, name: str) -> str | None:
    failed = remit.balance[~remit.balance["balanced"]]
    if failed.empty:
        return None
    shown = []
    for row in failed.head(3).itertuples(index=False):
        where = {
            "line": f"line {row.line_index} of claim {row.claim_id!r}",
            "claim": f"claim {row.claim_id!r}",
            "transaction": f"transaction {row.st_index}",
        }[row.level]
        shown.append(f"{where}: expected {row.expected:.2f}, file says {row.actual:.2f}")
    more = len(failed) - len(shown)
    return (
        f"{name}: {len(failed)} of {len(remit.balance)} balance check(s) fail "
        f"({'; '.join(shown)}{f'; and {more} more' if more > 0 else ''}). See "
        f"Remittance.balance; ask the payer for a corrected 835 if the amounts matter."
    )


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Reading creates hundreds of thousands of container objects (segment lists, object
    # arrays) that the cyclic collector would inspect again and again without finding garbage;
    # pausing it makes a large file read about 20% faster. Restored on exit, also after errors.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(
    source: str | os.PathLike[str] | bytes, salt: str | None, source_name: str | None
) -> tuple[Remittance, list[tuple[type[Warning], str]]]:
    text, name = _load(source, source_name)
    notes: list[tuple[type[Warning], str]] = []
    with _gc_paused():
        chunks = _interchanges(text, name, notes)
        remit = _build(_scan(chunks, name, _resolve_salt(salt), notes), name, notes)
    note = _balance_note(remit, name)
    if note:
        notes.append((BalanceWarning, note))
    return remit, notes


def read_835(
    path_or_text: str | os.PathLike[str] | bytes,
    *,
    salt: str | None = None,
    source_name: str | None = None,
) -> Remittance:
    """Read one 835 remittance file into tidy tables.

    Parameters
    ----------
    path_or_text
        A path to the file, its raw bytes, or the 835 text itself (a string that contains a
        line break, or starts with ``ISA`` or ``ST`` and a separator, is taken as text).
    salt
        Salt for ``patient_key`` (first 16 hex characters of sha256(salt + member id)).
        Defaults to the ``ANALYTICS_ID_SALT`` environment variable, then to
        :data:`DEFAULT_SALT`, which is public and so not a secret.
    source_name
        Value of the ``file`` column and the name used in messages; defaults to the file
        name (``"<text>"`` for text).

    Returns
    -------
    Remittance
        ``payments``, ``claims``, ``service_lines``, ``adjustments``, ``remarks``, ``plb`` and
        ``balance`` tables; ``.summary()`` gives per-file totals.

    Raises
    ------
    X12Error
        Not X12, a short ISA, a transaction with no SE (truncated file), a non-numeric amount,
        or a transaction that is not an 835. The message names the file and segment number.

    Warns
    -----
    X12Warning
        For oddities that do not stop the read: a wrong SE count, a component separator that
        differs from ISA16, invalid dates, empty required amounts.
    BalanceWarning
        Once per file when any line, claim or transaction check fails (see ``.balance``).

    Examples
    --------
    >>> remit = read_835(
    ...     "ST*835*1~BPR*I*5*C*CHK************20260318~LX*1~CLP*A1*1*9*5~CAS*CO*45*4~SE*6*1~"
    ... )
    >>> remit.claims[["claim_id", "charge", "paid"]].to_dict("records")
    [{'claim_id': 'A1', 'charge': 9.0, 'paid': 5.0}]
    >>> bool(remit.balance["balanced"].all())
    True
    """
    remit, notes = _read(path_or_text, salt, source_name)
    for category, message in notes:
        warnings.warn(message, category, stacklevel=2)
    return remit


def _expand(paths_or_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(paths_or_dirs, (str, os.PathLike)):
        paths_or_dirs = [paths_or_dirs]
    out: list[Path] = []
    for item in paths_or_dirs:
        path = Path(item)
        if path.is_dir():
            out.extend(
                p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")
            )
        else:
            out.append(path)
    return out


def read_835_many(
    paths_or_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    salt: str | None = None,
) -> tuple[Remittance, pd.DataFrame]:
    """Read many 835 files (and every file in the given directories) into one set of tables.

    A file that cannot be read does not stop the others: it is listed in the errors table.

    Parameters
    ----------
    paths_or_dirs
        Files and/or directories. Directories are read non-recursively, in name order,
        skipping hidden files.
    salt
        Salt for ``patient_key``; see :func:`read_835`.

    Returns
    -------
    (Remittance, pandas.DataFrame)
        The stacked tables of every file read, and the errors table with columns ``file`` and
        ``error`` (one row per file that could not be read). Files are named by file name;
        when two files share a name their full paths are used instead.

    Examples
    --------
    >>> remit, errors = read_835_many(["era/"])  # doctest: +SKIP
    >>> errors.empty  # doctest: +SKIP
    True
    """
    paths = _expand(paths_or_dirs)
    names = [p.name for p in paths]
    parts: list[Remittance] = []
    errors: list[dict[str, str]] = []
    for path in paths:
        name = path.name if names.count(path.name) == 1 else str(path)
        try:
            remit, notes = _read(path, salt, name)
        except (X12Error, OSError) as exc:
            errors.append({"file": name, "error": str(exc)})
            continue
        for category, message in notes:
            warnings.warn(message, category, stacklevel=2)
        parts.append(remit)
    error_frame = pd.DataFrame(errors, columns=list(_ERROR_SCHEMA)).astype(_ERROR_SCHEMA)
    return Remittance.concat(parts), error_frame


# --------------------------------------------------------------------------------------------
# Linking the practice's service lines to the remittance
# --------------------------------------------------------------------------------------------


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
            key = pd.to_datetime(values, errors="coerce").dt.normalize().astype(_DATE)
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
    Tier 2 matches the lines still open on ``claim_id`` + ``cpt`` + ``service_date`` (day).
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


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``remit`` command: read 835 files, write tables, print totals and balance."""
    parser = sub.add_parser(
        "remit",
        help="read 835 remittance files into tables",
        description=(
            "Read X12 835 (ERA) files into tables (payments, claims, service_lines, "
            "adjustments, remarks, plb, balance, summary), written as Parquet and CSV. Patient "
            "names are never stored; member ids become a salted key (set ANALYTICS_ID_SALT)."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="835 files or directories")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--json", action="store_true", help="print the per-file summary as JSON")
    parser.set_defaults(func=_run_remit)


def _run_remit(args: argparse.Namespace) -> int:
    remit, errors = read_835_many(args.paths)
    summary = remit.summary()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tables = {**remit.tables(), "summary": summary}
    for table_name, frame in tables.items():
        frame.to_parquet(out / f"{table_name}.parquet", index=False)
        frame.to_csv(out / f"{table_name}.csv", index=False)
    if not errors.empty:
        errors.to_csv(out / "errors.csv", index=False)

    if args.json:
        payload: dict[str, object] = {
            "files": [
                {
                    "file": str(r.file),
                    "claims": int(r.claims),
                    "service_lines": int(r.service_lines),
                    "paid_total": float(r.paid_total),
                    "adjustments_total": float(r.adjustments_total),
                    "plb_total": float(r.plb_total),
                    "balanced": bool(r.balanced),
                }
                for r in summary.itertuples(index=False)
            ]
        }
        if not errors.empty:
            payload["errors"] = errors.to_dict("records")
        print(json.dumps(payload, indent=2))
    else:
        if summary.empty:
            print("No 835 file was read.")
        else:
            print(summary.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
            failed = remit.balance[~remit.balance["balanced"]]
            if not failed.empty:
                print("\nBalance checks that fail:")
                cols = [
                    "file",
                    "level",
                    "st_index",
                    "claim_id",
                    "line_index",
                    "rule",
                    "expected",
                    "actual",
                    "difference",
                ]
                print(failed[cols].to_string(index=False))
        if not errors.empty:
            print(f"\n{len(errors)} file(s) could not be read:")
            for r in errors.itertuples(index=False):
                print(f"  {r.file}: {r.error}")
        print(f"\nTables written to {out}")
    return 1 if not errors.empty else 0
