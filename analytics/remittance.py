"""X12 835 (005010X221A1) health care claim payment/advice: read remittances into tidy tables.

An 835 (ERA) tells the practice what a payer did with each claim and service line: what it
paid, what it adjusted and why (CAS group + CARC), which remarks (RARC) apply, and what it took
back at provider level (PLB). :func:`read_835` turns one file into a :class:`Remittance` of
pandas tables, checks the three balancing rules the 835 guarantees, and never stores patient
names or raw member ids. :func:`link_remittance` joins the remittance back to the practice's
own service lines so open A/R and unexplained payments show up.

Files are streamed, never loaded whole: they are read in binary chunks, cut into segments at the
terminator each ISA declares, and scanned into parts that end before a claim (CLP) or a
transaction (ST). :func:`iter_835` yields those parts, in memory bounded by the chunk size
whatever the size of the file (one check may cover millions of claims); :func:`read_835` stacks
them, and the ``remit`` command writes them to Parquet and CSV as they come.

Structure followed (005010X221A1 TR3): ISA/GS(HP)/ST*835, BPR (payment), TRN (trace),
DTM*405, loop 1000A N1*PR payer, loop 1000B N1*PE payee, LX header, loop 2100 CLP claim,
loop 2110 SVC service line, PLB provider adjustments, SE/GE/IEA.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import copy
import functools
import gc
import hashlib
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import warnings
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field, fields
from itertools import chain
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.exceptions import (
    BalanceWarning,
    InputError,
    ParameterError,
    X12Error,
    X12Warning,
)

__all__ = [
    "DEFAULT_SALT",
    "Linked",
    "Remittance",
    "iter_835",
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
        payments=_empty(_PAYMENT_SCHEMA),
        claims=_empty(_CLAIM_SCHEMA),
        service_lines=_empty(_LINE_SCHEMA),
        adjustments=_empty(_ADJUSTMENT_SCHEMA),
        remarks=_empty(_REMARK_SCHEMA),
        plb=_empty(_PLB_SCHEMA),
        balance=_empty(_BALANCE_SCHEMA),
    )


# --------------------------------------------------------------------------------------------
# Sources: a file, its bytes or its text, handed out piece by piece
# --------------------------------------------------------------------------------------------

#: Size of each binary read, and so roughly of each part :func:`iter_835` yields. The memory a
#: read needs grows with this, not with the file.
_CHUNK_BYTES = 32 * 2**20

#: :func:`read_835_many` builds the tables of files read whole in batches of at most about this
#: many rows (claims, service lines, adjustments, remarks and PLB amounts; a 32 MB part holds
#: some 600,000), so the rows waiting to be built never take more memory than one part does.
_BATCH_ROWS = 250_000

# The UTF-8 check of a file that is not ASCII reads at least this much at a time.
_CHECK_BYTES = 2**20


class _TextPieces:
    """An 835 already in memory as text, handed out ``chunk`` characters at a time."""

    def __init__(self, text: str, chunk: int, pos: int = 0) -> None:
        self.text = text
        self.chunk = chunk
        self.pos = pos

    @property
    def exhausted(self) -> bool:
        """Everything has been handed out."""
        return self.pos >= len(self.text)

    def read(self) -> str:
        piece = self.text[self.pos : self.pos + self.chunk]
        self.pos += len(piece)
        return piece

    def fork(self) -> _TextPieces:
        return _TextPieces(self.text, self.chunk, self.pos)

    def close(self) -> None:
        pass


class _BytePieces:
    """A file (or bytes) read ``chunk`` bytes at a time, decoded as the whole file would be.

    The rule for the whole file is UTF-8, or Latin-1 when any of it is not UTF-8: X12 uses the
    basic and extended character sets, and Latin-1 never fails, so a binary file is reported as
    "not X12" rather than as a decoding crash. While the bytes are ASCII both decode alike; at
    the first chunk that is not, the rest of the file is checked once to choose.
    """

    def __init__(
        self,
        opener: Callable[[], BinaryIO],
        chunk: int,
        offset: int = 0,
        encoding: str | None = None,
        state: tuple[bytes, int] | None = None,
    ) -> None:
        self.opener = opener
        self.chunk = chunk
        self.file = opener()
        if offset:
            self.file.seek(offset)
        self.encoding = encoding
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        if state is not None:
            self.decoder.setstate(state)
        self.exhausted = False  # a short read: everything has been handed out
        # The size of a regular file, so that a read asks for no more than is left (plus one
        # byte, to see the end): a small file is read without a chunk-sized buffer.
        self.size: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            status = os.fstat(self.file.fileno())
            if stat.S_ISREG(status.st_mode):
                self.size = status.st_size

    def read(self) -> str:
        while True:
            start = self.file.tell()
            want = self.chunk if self.size is None else min(self.chunk, self.size - start + 1)
            data = self.file.read(max(want, 1))
            self.exhausted = len(data) < max(want, 1)
            if self.encoding is None:
                if data.isascii():
                    return data.decode("ascii")
                self.encoding = "utf-8" if self._utf8_from(start) else "latin-1"
            if self.encoding == "latin-1":
                return data.decode("latin-1")
            text = self.decoder.decode(data, final=not data)
            # a chunk that ends inside a multi-byte character may decode to nothing yet
            if text or not data:
                return text

    def _utf8_from(self, offset: int) -> bool:
        decoder = codecs.getincrementaldecoder("utf-8")()
        with self.opener() as file:
            file.seek(offset)
            try:
                while data := file.read(max(self.chunk, _CHECK_BYTES)):
                    decoder.decode(data)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return False
        return True

    def fork(self) -> _BytePieces:
        return _BytePieces(
            self.opener, self.chunk, self.file.tell(), self.encoding, self.decoder.getstate()
        )

    def close(self) -> None:
        self.file.close()


_Pieces = _TextPieces | _BytePieces


def _open(
    source: str | os.PathLike[str] | bytes, source_name: str | None, chunk: int
) -> tuple[_Pieces, str]:
    """The pieces and the name of a path, raw bytes or 835 text."""
    if isinstance(source, bytes):
        return _BytePieces(functools.partial(io.BytesIO, source), chunk), source_name or "<bytes>"
    # A string is the 835 itself when it looks like X12, is blank, or comes with a name for
    # it; otherwise it is a path.
    if isinstance(source, str) and (
        source_name is not None or not source.strip() or _looks_like_x12(source)
    ):
        return _TextPieces(source, chunk), source_name or "<text>"
    path = Path(source)
    try:
        pieces = _BytePieces(functools.partial(open, path, "rb"), chunk)
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
    return pieces, source_name or path.name


_X12_START = re.compile(r"[\ufeff\s]*(ISA|ST)[^A-Za-z0-9 _.\-/\\]")


def _looks_like_x12(text: str) -> bool:
    # A path never holds a line break, and a one-line 835 starts with ISA or ST and a separator.
    return "\n" in text or "\r" in text or _X12_START.match(text) is not None


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


class _Delimiters(NamedTuple):
    element: str
    repetition: str | None
    component: str
    segment: str


_Note = tuple[type[Warning], str]

_ISA_LENGTH = 106  # fixed-width ISA, terminator included (X12.5 interchange control header)
_ISA_WINDOW = 2 * _ISA_LENGTH  # enough text to find the ISA's 16 elements and its terminator
_BREAKS = "\r\n"
_SAMPLES = 20  # composites looked at to settle the component separator


class _Interchange:
    """One interchange (or a file that starts at ST): its delimiters, and the first composites
    it uses, from which its component separator is settled."""

    __slots__ = ("declared", "delimiters", "first_number", "resolved", "samples")

    def __init__(self, delimiters: _Delimiters, first_number: int, declared: bool) -> None:
        self.delimiters = delimiters
        self.first_number = first_number  # segment number of its first segment
        self.declared = declared  # the component separator came from ISA16
        self.samples: list[str] = []
        self.resolved = False


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
    parts = text[pos : pos + _ISA_WINDOW].split(element, 16)
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


def _resolve_component(ic: _Interchange, name: str, notes: list[_Note]) -> None:
    """Use the component separator the composites actually use.

    Procedure codes and PLB reasons are qualified by a two-character code (HC, AD, WO ...), so
    the character after it is the separator. Some files declare ':' in ISA16 yet write
    ``HC>97140``; files that start at ST declare nothing and default to ':'.
    """
    ic.resolved = True
    d = ic.delimiters
    samples = ic.samples
    ic.samples = []
    if not samples or any(d.component in s for s in samples):
        return
    for s in samples:
        c = s[2:3]
        if c and not c.isalnum() and c not in (" ", d.element, "-", "."):
            if ic.declared:
                notes.append(
                    (
                        X12Warning,
                        f"{name}: ISA16 at segment {ic.first_number} declares component "
                        f"separator {d.component!r}, but the composites use {c!r} "
                        f"(e.g. {s!r}); read with {c!r}.",
                    )
                )
            ic.delimiters = d._replace(component=c)
            return


class _Tokenizer:
    """Segments of an 835, read piece by piece and never whole.

    Yields ``(interchange, segments)`` batches in file order, about one per piece read; the
    segments are raw text with the terminator removed, and their 1-based positions in the file
    follow on from batch to batch. The rules are those of a whole-file read: delimiters from each
    ISA, an interchange ends after the terminator that follows an IEA at the start of a segment,
    line breaks are dropped (or are the terminator), blank segments are skipped, and text after
    the last IEA that is not another interchange is reported and left.

    Between batches, all state is in attributes, so :meth:`settle` can copy the tokenizer and
    read ahead for an interchange's first composites without consuming anything.
    """

    def __init__(self, pieces: _Pieces, name: str, notes: list[_Note]) -> None:
        self.pieces = pieces
        self.name = name
        self.notes = notes  # reading notes: component separators, text after the last IEA
        self.buf = ""  # text read but not yet cut into segments
        self.eof = False
        self.number = 0  # segments handed out so far
        self.ic: _Interchange | None = None
        self.envelope = True  # False for a file that starts at ST: it runs to the end
        self.fresh = True  # buf begins at the current interchange's ISA
        self.iea = -1  # where in buf the IEA that ends the interchange begins, once found
        self.search = 0  # where in buf to look for that IEA next
        self.checked = False  # the interchange's ISA has been checked without line breaks

    def _more(self) -> bool:
        """Append the next piece to the buffer; False at the end of the file."""
        if self.eof:
            return False
        piece = self.pieces.read()
        if not piece:
            self.eof = True
            return False
        self.buf += piece
        return True

    def _fill(self, n: int) -> None:
        while len(self.buf) < n and self._more():
            pass

    def _skip(self, chars: str) -> None:
        """Drop leading ``chars``, reading on while the buffer holds nothing else."""
        while True:
            self.buf = self.buf.lstrip(chars)
            if self.buf or not self._more():
                return

    def batches(self) -> Iterator[tuple[_Interchange, list[str]]]:
        name = self.name
        self._skip("\ufeff \t\r\n")
        if not self.buf:
            raise X12Error(
                f"{name}: the file is empty. Download the 835 again from the payer or "
                f"clearinghouse.",
                where=name,
            )
        self._fill(3)
        if self.buf.startswith("ST"):
            self.ic = _Interchange(self._st_delimiters(), 1, declared=False)
            self.envelope, self.checked = False, True
            yield from self._interchange()
            return
        if not self.buf.startswith("ISA"):
            self._fill(20)
            raise _not_x12(self.buf, name)
        while True:
            # Each interchange has its own delimiters; line breaks are removed per interchange,
            # once its terminator is known.
            self._fill(_ISA_WINDOW)
            raw, _ = _isa_delimiters(self.buf, 0, name, self.number + 1)
            term = "\n" if raw.segment in _BREAKS else raw.segment
            self.ic = _Interchange(raw._replace(segment=term), self.number + 1, declared=True)
            self.fresh, self.iea, self.search, self.checked = True, -1, 0, False
            yield from self._interchange()
            self._skip(" \t\r\n")
            if not self.buf:
                return
            self._fill(3)
            if not self.buf.startswith("ISA"):
                self._fill(20)
                head, count = self.buf[:20], len(self.buf)
                self.buf = ""
                while piece := self.pieces.read():
                    count += len(piece)
                self.notes.append(
                    (
                        X12Warning,
                        f"{name}: {count} character(s) after the IEA at segment {self.number} "
                        f"are not an interchange (they begin {head!r}) and were not read.",
                    )
                )
                return

    def _st_delimiters(self) -> _Delimiters:
        """Delimiters for a file that starts at ST (no ISA envelope)."""
        self._fill(20)
        element = self.buf[2:3]
        if not element or element.isalnum() or element.isspace():
            raise _not_x12(self.buf, self.name)
        stop = re.compile(r"[^A-Za-z0-9 .\-_" + re.escape(element) + "]")
        start = 3
        while (found := stop.search(self.buf, start)) is None:
            start = max(start, len(self.buf))
            if not self._more():
                raise X12Error(
                    f"{self.name}: segment 1 (ST) has no segment terminator. The file is "
                    f"truncated; ask the sender for the complete file.",
                    where=f"{self.name} segment 1",
                )
        terminator = found.group()
        if terminator in _BREAKS:
            terminator = "\n"
        return _Delimiters(element, None, ":", terminator)

    def _interchange(self) -> Iterator[tuple[_Interchange, list[str]]]:
        """The segments of the current interchange, region by region."""
        ic = self.ic
        assert ic is not None
        term = ic.delimiters.segment
        head, held = "", []
        while True:
            region, last = self._region(term)
            text = probe = _clean_breaks(region, term)
            segments = text.split(term)
            if term + " " in text or term + "\t" in text or text.startswith((" ", "\t")):
                segments = [s.lstrip(" \t") for s in segments]
            # A region that is not the last ends with a terminator, so its final item is empty;
            # the interchange's own final item is dropped when blank.
            if not last or not segments[-1].strip():
                segments.pop()
            if "" in segments:
                segments = [s for s in segments if s]
            if not self.checked:
                # The ISA is checked without its line breaks before any of its segments go out.
                head += text[: _ISA_WINDOW - len(head)]
                if len(head) < _ISA_WINDOW and not last:
                    held += segments
                    continue
                self._check_isa(ic, head)
                if held:
                    segments, held, probe = held + segments, [], None
            if not ic.resolved:
                self._sample(ic, segments, probe)
                if last and not ic.resolved:
                    _resolve_component(ic, self.name, self.notes)
            if segments:
                self.number += len(segments)
                yield ic, segments
            if last:
                return

    def _check_isa(self, ic: _Interchange, head: str) -> None:
        delimiters, isa_length = _isa_delimiters(head, 0, self.name, ic.first_number)
        if isa_length < _ISA_LENGTH:
            number = ic.first_number
            raise X12Error(
                f"{self.name}: segment {number} (ISA) is {isa_length} characters long, but an "
                f"ISA is always {_ISA_LENGTH} (its fields are fixed-width, padded with spaces). "
                f"The padding was probably trimmed; restore it or ask the sender for the "
                f"original file.",
                where=f"{self.name} segment {number}",
            )
        ic.delimiters = delimiters._replace(segment=ic.delimiters.segment)
        self.checked = True

    def _sample(self, ic: _Interchange, segments: list[str], text: str | None) -> None:
        """Collect SVC01/SVC06 and PLB03... composites until there are enough to settle on;
        ``text`` (the segments' text, when at hand) lets a stretch without any be skipped."""
        element = ic.delimiters.element
        svc, plb = "SVC" + element, "PLB" + element
        if text is not None and svc not in text and plb not in text:
            return
        samples = ic.samples
        for raw in segments:
            if raw.startswith(svc):
                parts = raw.split(element)
                samples.extend(p for p in (parts[1:2] + parts[6:7]) if p)
            elif raw.startswith(plb):
                parts = raw.split(element)
                samples.extend(p for p in parts[3::2] if p)
            else:
                continue
            if len(samples) >= _SAMPLES:
                break
        component = ic.delimiters.component
        # Any sample with the declared separator settles it; so do enough samples.
        if len(samples) >= _SAMPLES or any(component in s for s in samples):
            _resolve_component(ic, self.name, self.notes)

    def _region(self, term: str) -> tuple[str, bool]:
        """The next stretch of the interchange's text that ends at a terminator, and whether
        it is the interchange's last (then the buffer holds what follows the interchange)."""
        while True:
            buf = self.buf
            if self.envelope:
                if self.iea < 0:
                    self.iea = self._find_iea(buf, term)
                if self.iea >= 0:
                    end = buf.find(term, self.iea)
                    if end >= 0:
                        self.buf = buf[end + 1 :]
                        return buf[: end + 1], True
            cut = buf.rfind(term)
            if term == "\n":
                cut = max(cut, buf.rfind("\r"))
            if cut >= 0:
                shift = cut + 1
                self.buf = buf[shift:]
                self.search = max(0, self.search - shift)
                if self.iea >= 0:
                    self.iea = max(0, self.iea - shift)
                self.fresh = False
                return buf[:shift], False
            if not self._more():
                self.buf = ""
                return buf, True

    def _find_iea(self, buf: str, term: str) -> int:
        """Where the IEA that ends the interchange starts in ``buf``, or -1 (not yet read).

        An IEA counts only at the start of a segment: right after a line break when that is the
        terminator, else after the terminator and any line breaks. The buffer starts at the ISA
        or right after a terminator (a line break when that is the terminator).
        """
        key = "IEA" + self.ic.delimiters.element  # type: ignore[union-attr]
        start = self.search
        while True:
            i = buf.find(key, start)
            if i < 0:
                self.search = max(start, len(buf) - len(key) + 1)
                return -1
            j = i - 1
            if term == "\n":
                at_segment_start = j < 0 or buf[j] in _BREAKS
            else:
                floor = 0 if self.fresh else -1
                while j > floor and buf[j] in _BREAKS:
                    j -= 1
                at_segment_start = j < 0 or buf[j] == term
            if at_segment_start:
                return i
            start = i + 1

    def settle(self, ic: _Interchange) -> None:
        """Settle ``ic``'s component separator now, reading ahead on a copy of the tokenizer
        when its first composites are still to come."""
        if ic.resolved:
            return
        if ic is not self.ic:  # an interchange read to its end is always settled; be safe
            _resolve_component(ic, self.name, self.notes)
            return
        ahead = copy.copy(self)
        ahead.pieces = self.pieces.fork()
        try:
            for _ in ahead._interchange():
                if ic.resolved:
                    break
        finally:
            ahead.pieces.close()
        if not ic.resolved:
            _resolve_component(ic, self.name, self.notes)


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
    pieces, name = _open(source, source_name, _CHUNK_BYTES)
    out: list[list[str]] = []
    try:
        for ic, segments in _Tokenizer(pieces, name, []).batches():
            sep = ic.delimiters.element
            out.extend(s.split(sep) for s in segments)
    finally:
        pieces.close()
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

# Patient keys already hashed are kept for reuse up to this many distinct ids, then forgotten,
# so that the cache cannot grow with the file.
_HASH_CACHE = 2**16

# Date warnings, in the order a whole-file read words them.
_DATE_FIELDS = (
    "BPR16", "DTM*405", "DTM*232", "DTM*233", "DTM*472", "DTM*150", "DTM*050", "DTM*151", "PLB02",
)  # fmt: skip
_LEVELS = ("line", "claim", "transaction")


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


class _Notes:
    """The warnings about one file, gathered part by part and worded once at the end, exactly
    as a read of the whole file at once words them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reading: list[_Note] = []  # component separators, text after the last IEA
        self.transactions: list[_Note] = []  # SE counts and control numbers
        self.scan: list[_Note] = []  # envelope counts, empty amounts, stray segments, groups
        self.no_bpr: list[int] = []
        self.undated: list[int] = []
        self.dates: dict[str, tuple[int, list[str]]] = {}
        self.checks = 0
        self.failed = dict.fromkeys(_LEVELS, 0)
        self.first_failed: dict[str, list[pd.DataFrame]] = {level: [] for level in _LEVELS}

    def bad_dates(self, what: str, count: int, shown: list[str]) -> None:
        before, first = self.dates.get(what, (0, []))
        self.dates[what] = (before + count, (first + shown)[:5])

    def balance(self, table: pd.DataFrame) -> None:
        self.checks += len(table)
        failed = table[~table["balanced"].to_numpy(dtype=bool)]
        if failed.empty:
            return
        levels = failed["level"].to_numpy(dtype=object)
        for level in _LEVELS:
            rows = failed[levels == level]
            if len(rows):
                if self.failed[level] < 3:
                    self.first_failed[level].append(rows.head(3))
                self.failed[level] += len(rows)

    def messages(self) -> list[_Note]:
        name = self.name
        out = [*self.reading, *self.transactions, *self.scan]
        if self.no_bpr:
            where = ", ".join(str(s) for s in self.no_bpr)
            out.append(
                (
                    X12Warning,
                    f"{name}: the transaction(s) at segment(s) {where} have no BPR; paid_amount "
                    f"is missing and the transaction cannot balance.",
                )
            )
        if self.undated:
            where = ", ".join(str(s) for s in self.undated)
            out.append(
                (
                    X12Warning,
                    f"{name}: BPR at segment(s) {where} has no payment date in BPR16 (count the "
                    f"separators: BPR16 is the 16th element); payment_date is missing.",
                )
            )
        for what in _DATE_FIELDS:
            if what in self.dates:
                count, shown = self.dates[what]
                out.append(
                    (
                        X12Warning,
                        f"{name}: {count} {what} value(s) are not CCYYMMDD dates: "
                        f"{', '.join(shown)}; read as missing (NaT).",
                    )
                )
        failed = sum(self.failed.values())
        if failed:
            heads = [frame for level in _LEVELS for frame in self.first_failed[level]]
            first = pd.concat(heads, ignore_index=True).head(3)
            out.append((BalanceWarning, _balance_message(name, first, failed, self.checks)))
        return out


def _balance_message(name: str, first: pd.DataFrame, failed: int, checks: int) -> str:
    shown = []
    for row in first.itertuples(index=False):
        where = {
            "line": f"line {row.line_index} of claim {row.claim_id!r}",
            "claim": f"claim {row.claim_id!r}",
            "transaction": f"transaction {row.st_index}",
        }[row.level]
        shown.append(f"{where}: expected {row.expected:.2f}, file says {row.actual:.2f}")
    more = failed - len(shown)
    return (
        f"{name}: {failed} of {checks} balance check(s) fail "
        f"({'; '.join(shown)}{f'; and {more} more' if more > 0 else ''}). See "
        f"Remittance.balance; ask the payer for a corrected 835 if the amounts matter."
    )


@dataclass
class _Scan:
    """What the scan collected for one part, column by column.

    Amounts and indexes are typed arrays (no Python object per value); codes that repeat are
    shared string objects. Values that arrive after their CLP or SVC (DTM, REF, AMT, NM1) sit
    in dicts keyed by the 1-based claim or line number in the file. ``claim_base``,
    ``line_base`` and ``st_base`` count the claims, lines and transactions of the parts
    before this one.
    """

    claim_base: int
    line_base: int
    st_base: int
    payments: list[dict[str, object]] = field(default_factory=list)
    c_seg: array = field(default_factory=lambda: array("q"))
    c_st: array = field(default_factory=lambda: array("q"))
    c_charge: array = field(default_factory=lambda: array("d"))
    c_paid: array = field(default_factory=lambda: array("d"))
    c_pr: array = field(default_factory=lambda: array("d"))
    c_id: list[str] = field(default_factory=list)
    c_status: list[str] = field(default_factory=list)
    c_filing: list[str] = field(default_factory=list)
    c_payer_claim: list[str] = field(default_factory=list)
    c_facility: list[str] = field(default_factory=list)
    c_freq: list[str] = field(default_factory=list)
    c_key: dict[int, str] = field(default_factory=dict)
    c_dates: dict[str, dict[int, str]] = field(
        default_factory=lambda: {"232": {}, "233": {}, "050": {}}
    )
    l_seg: array = field(default_factory=lambda: array("q"))
    l_claim: array = field(default_factory=lambda: array("q"))
    l_charge: array = field(default_factory=lambda: array("d"))
    l_paid: array = field(default_factory=lambda: array("d"))
    l_units: array = field(default_factory=lambda: array("d"))
    l_svc01: list[str] = field(default_factory=list)
    # (first line number, interchange) for each interchange the part's lines come from
    l_chunk: list[tuple[int, _Interchange]] = field(default_factory=list)
    l_more: dict[str, dict[int, object]] = field(
        default_factory=lambda: {k: {} for k in ("472", "150", "151", "6R", "B6", "SVC04", "SVC06")}
    )
    a_seg: array = field(default_factory=lambda: array("q"))
    a_owner: array = field(default_factory=lambda: array("q"))  # line number, or -claim number
    a_amount: array = field(default_factory=lambda: array("d"))
    a_group: list[str] = field(default_factory=list)
    a_carc: list[str] = field(default_factory=list)
    a_qty: dict[int, float] = field(default_factory=dict)
    remarks: list[tuple[int, int, int, str, str]] = field(default_factory=list)
    plb: list[tuple[int, int, str, str, str, _Interchange, float]] = field(default_factory=list)


@dataclass
class _OpenTransaction:
    """Running sums of the transaction still open where a part ends: its balance check
    (BPR02 = sum of CLP04 - sum of PLB) needs every claim and PLB of the transaction."""

    st_index: int = 0
    paid: float = 0.0
    plb: float = 0.0


@dataclass
class _Entry:
    """A part to build (:func:`_build`): what the scan collected, and the file it comes from.

    ``carried`` holds the sums of a transaction begun in an earlier part of the file,
    ``open_st`` is the transaction still open after this part (0 if none), and ``st_end`` the
    number of transactions begun in the file up to the end of the part, so every transaction
    of the part is numbered ``scan.st_base`` to ``st_end``.
    """

    scan: _Scan
    name: str
    notes: _Notes
    settle: Callable[[_Interchange], None]
    carried: _OpenTransaction
    open_st: int
    st_end: int

    @property
    def rows(self) -> int:
        """Rows the part adds to the tables, a measure of the memory its scan holds."""
        s = self.scan
        return len(s.c_seg) + len(s.l_seg) + len(s.a_seg) + len(s.remarks) + len(s.plb)


def _last_boundary(segments: list[str], element: str) -> int:
    """Index of the last CLP or ST in ``segments`` (-1 if none): a part may end before it,
    since nothing after a new claim or transaction belongs to the claims before it."""
    clp, st = "CLP" + element, "ST" + element
    for i in range(len(segments) - 1, -1, -1):
        raw = segments[i]
        if raw.startswith(clp) or raw.startswith(st) or raw == "CLP" or raw == "ST":
            return i
    return -1


class _Reader:
    """Reads one 835 part by part.

    The scan is one pass over the segments, dispatching on the segment id; each segment is
    split while it is fresh in memory and only the values the tables need are kept, which is
    what makes the reader fast. Its context (transaction, claim, service line, counters) lives
    on across parts; what it collects starts afresh with each part. A part ends before a CLP
    or ST once a batch of segments has been scanned, so every claim is whole in one part, and
    claim, line and segment numbers count through the file.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        salt: str | None,
        source_name: str | None,
        chunk_bytes: int,
    ) -> None:
        self.pieces, self.name = _open(source, source_name, chunk_bytes)
        self.notes = _Notes(self.name)
        self.tokenizer = _Tokenizer(self.pieces, self.name, self.notes.reading)
        self.salt = _resolve_salt(salt).encode()
        self.hashes: dict[str, str] = {}
        self.pay: dict[str, object] | None = None
        self.st_index = 0
        self.in_st = False
        self.st_seg = 0
        self.st_control = ""
        self.level = 0  # 0: header or between claims, 1: in a claim (2100), 2: in a line (2110)
        self.claim_no = 0  # counts across transactions, so claim_index is unique in a file
        self.st_claims = 0
        self.line_no = 0
        self.isa_count = 0
        self.iea_count = 0
        self.number = 0
        self.empties: list[str] = []
        self.outside: list[str] = []
        self.groups: set[str] = set()
        self.open = _OpenTransaction()
        self.part = _Scan(0, 0, 0)
        self.pending: tuple[_Interchange, list[str]] | None = None

    def parts(self) -> Iterator[Remittance]:
        """The file's parts, in order; warnings are gathered in ``self.notes``."""
        try:
            batches = self.tokenizer.batches()
            while True:
                with _gc_paused():
                    part, done = self._next_part(batches)
                if part is not None:
                    yield part
                if done:
                    return
        finally:
            self.pieces.close()

    def collect(self) -> tuple[list[Remittance], _Entry | None]:
        """Read the whole file: the parts that end before the file does, built as they come,
        and the last part unbuilt (None when it holds nothing), for the caller to build with
        :meth:`build`, or together with the last parts of other files (:func:`_build`)."""
        built: list[Remittance] = []
        try:
            batches = self.tokenizer.batches()
            while True:
                with _gc_paused():
                    part, done = self._next_part(batches, build_last=False)
                if done:
                    return built, part  # type: ignore[return-value]
                if part is not None:
                    built.append(part)  # type: ignore[arg-type]
        finally:
            self.pieces.close()

    def _next_part(
        self, batches: Iterator[tuple[_Interchange, list[str]]], *, build_last: bool = True
    ) -> tuple[Remittance | _Entry | None, bool]:
        while True:
            if self.pending is not None:
                ic, segments = self.pending
                self.pending = None
            else:
                batch = next(batches, None)
                if batch is None:
                    self._finish()
                    return (self._flush() if build_last else self._take()), True
                ic, segments = batch
            # Once the rest of the file is in memory, ending the part early saves nothing.
            cut = -1 if self.pieces.exhausted else _last_boundary(segments, ic.delimiters.element)
            if cut > 0 or (cut == 0 and self._collected()):
                self._feed(ic, segments[:cut])
                self.pending = (ic, segments[cut:])
                part = self._flush()
                if part is not None:
                    return part, False
            else:
                self._feed(ic, segments)

    def _collected(self) -> bool:
        # lines, adjustments and remarks always come with a claim
        p = self.part
        return bool(p.payments or p.c_seg or p.plb)

    def _take(self) -> _Entry | None:
        """The part collected so far, unbuilt, with what building it needs; the next part
        starts afresh."""
        scan = self.part
        collected = self._collected()
        self.part = _Scan(self.claim_no, self.line_no, self.st_index)
        if not collected:
            return None
        self.groups.update(scan.a_group)
        entry = _Entry(
            scan=scan,
            name=self.name,
            notes=self.notes,
            settle=self.tokenizer.settle,
            carried=self.open,
            open_st=self.st_index if self.in_st else 0,
            st_end=self.st_index,
        )
        if len(self.hashes) > _HASH_CACHE:
            self.hashes.clear()
        return entry

    def build(self, entry: _Entry) -> Remittance:
        """The tables of a part from :meth:`_take`; its open transaction carries on."""
        remit, (self.open,) = _build([entry])
        return remit

    def _flush(self) -> Remittance | None:
        """Build the part collected so far and start the next one."""
        entry = self._take()
        return None if entry is None else self.build(entry)

    def _feed(self, ic: _Interchange, segments: list[str]) -> None:
        """Scan a batch of segments into the current part."""
        if not segments:
            return
        p = self.part
        if not p.l_chunk or p.l_chunk[-1][1] is not ic:
            p.l_chunk.append((self.line_no + 1, ic))
        name = self.name
        sep = ic.delimiters.element
        same = {}.setdefault  # one shared object per distinct code or date
        salt_bytes = self.salt
        hashes = self.hashes
        empties = self.empties
        outside = self.outside
        notes = self.notes.transactions

        def empty_amount(number: int, element: str) -> float:
            empties.append(f"{number} ({element})")
            return 0.0

        payments = p.payments
        c_seg, c_st, c_charge, c_paid, c_pr = p.c_seg, p.c_st, p.c_charge, p.c_paid, p.c_pr
        c_id, c_status, c_filing = p.c_id, p.c_status, p.c_filing
        c_payer_claim, c_facility, c_freq = p.c_payer_claim, p.c_facility, p.c_freq
        c_key, c_dates = p.c_key, p.c_dates
        l_seg, l_claim, l_svc01 = p.l_seg, p.l_claim, p.l_svc01
        l_charge, l_paid, l_units = p.l_charge, p.l_paid, p.l_units
        more = p.l_more
        l_dates = {"472": more["472"], "150": more["150"], "151": more["151"]}
        l_control, l_allowed = more["6R"], more["B6"]
        l_revenue, l_original = more["SVC04"], more["SVC06"]
        a_seg, a_owner, a_amount = p.a_seg, p.a_owner, p.a_amount
        a_group, a_carc, a_qty = p.a_group, p.a_carc, p.a_qty
        remarks, plb = p.remarks, p.plb

        pay = self.pay
        st_index, in_st = self.st_index, self.in_st
        st_seg, st_control = self.st_seg, self.st_control
        level, claim_no = self.level, self.claim_no
        st_claims, line_no = self.st_claims, self.line_no
        isa_count, iea_count, number = self.isa_count, self.iea_count, self.number

        seg: list[str] = []
        try:
            for raw in segments:
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
                                    ic,
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

        # Only the first few are ever named in a warning.
        del empties[11:]
        del outside[10:]
        self.pay = pay
        self.st_index, self.in_st = st_index, in_st
        self.st_seg, self.st_control = st_seg, st_control
        self.level, self.claim_no = level, claim_no
        self.st_claims, self.line_no = st_claims, line_no
        self.isa_count, self.iea_count, self.number = isa_count, iea_count, number

    def _finish(self) -> None:
        """End-of-file checks: an open transaction, no transaction at all, and the notes that
        sum up the whole file."""
        name, number = self.name, self.number
        if self.in_st:
            inside = ""
            if self.st_claims:  # the last claim began after the last part boundary
                p = self.part
                inside = f", inside claim {p.c_id[-1]!r} (CLP at segment {p.c_seg[-1]})"
            raise X12Error(
                f"{name}: the file ends at segment {number}{inside} in the transaction that "
                f"starts at segment {self.st_seg} (ST*835*{self.st_control}), with no SE trailer. "
                f"The file looks truncated; download it again from the payer or clearinghouse.",
                where=f"{name} segment {number}",
            )
        if self.st_index == 0:
            raise X12Error(
                f"{name}: no ST*835 transaction found in {number} segment(s). Check that this "
                f"is an 835 (ERA) file and not only an envelope or acknowledgement.",
                where=name,
            )

        def note(message: str) -> None:
            self.notes.scan.append((X12Warning, f"{name}: {message}"))

        if self.isa_count != self.iea_count:
            note(
                f"{self.isa_count} ISA header(s) but {self.iea_count} IEA trailer(s); the "
                f"envelope is incomplete (the transactions themselves were complete and read)."
            )
        if self.empties:
            shown = ", ".join(self.empties[:10])
            more = " ..." if len(self.empties) > 10 else ""
            note(
                f"required amount(s) empty at segment(s) {shown}{more}; read as 0. Ask the "
                f"sender for a corrected file if these lines matter."
            )
        if self.outside:
            note(
                f"segment(s) {', '.join(self.outside[:10])} are outside a claim or transaction "
                f"and were not read."
            )
        unknown = sorted((self.groups | set(self.part.a_group)) - _GROUP_CODES)
        if unknown:
            note(f"CAS group code(s) {unknown} are not CO, PR, OA, PI or CR; the rows were kept.")


_Placed = Sequence[tuple[dict[int, object], int]]


def _spread(items: _Placed, n: int, fill: object = None) -> np.ndarray:
    """A length-``n`` array from ``(values, shift)`` pairs: each ``{number: value}`` dict puts
    its values at rows ``number + shift``; ``fill`` elsewhere."""
    items = [(values, shift) for values, shift in items if values]
    numeric = isinstance(fill, float)
    out = np.full(n, fill) if numeric else np.full(n, fill, dtype=object)
    if not items:
        return out
    count = sum(len(values) for values, _ in items)
    if len(items) == 1:
        values, shift = items[0]
        rows = np.fromiter(values, dtype="int64", count=count) + shift
        found: Iterable[object] = values.values()
    else:
        rows = np.fromiter(
            chain.from_iterable(values for values, _ in items), dtype="int64", count=count
        ) + np.repeat([shift for _, shift in items], [len(values) for values, _ in items])
        found = chain.from_iterable(values.values() for values, _ in items)
    if numeric:
        out[rows] = np.fromiter(found, dtype="float64", count=count)
    else:
        vals = np.empty(count, dtype=object)
        vals[:] = list(found)
        out[rows] = vals
    return out


def _joined(pieces: Sequence[array], dtype: str) -> np.ndarray:
    """One typed array from the scans' arrays, in order."""
    if len(pieces) == 1:
        return np.array(pieces[0], dtype=dtype)
    joined = array(pieces[0].typecode)
    for piece in pieces:
        joined.extend(piece)
    return np.array(joined, dtype=dtype)


def _chained(pieces: Sequence[list[object]]) -> list[object]:
    return pieces[0] if len(pieces) == 1 else list(chain.from_iterable(pieces))


def _starts(counts: np.ndarray) -> np.ndarray:
    """Where each part's rows start when the parts are stacked."""
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype("int64")


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
    """CCYYMMDD to datetime64[us], parsing each distinct value once; notes invalid ones in the
    notes of the file they come from (``files``: the part of each value, when there are
    several parts)."""

    def __init__(self, notes: Sequence[_Notes]) -> None:
        self.notes = notes

    def __call__(
        self,
        values: Sequence[object],
        segments: Sequence[int],
        what: str,
        files: np.ndarray | None = None,
    ) -> np.ndarray:
        n = len(values)
        if n == 0:
            return np.empty(0, dtype=_DATE)
        codes, distinct = _factorize(values)
        present = [v if isinstance(v, str) and v else None for v in distinct]
        if not any(present):  # nothing to parse (a date the file does not use)
            return np.full(n, _NAT)
        raw = pd.Series(present, dtype=object)
        # one extra NaT at the end for the missing values (code -1)
        parsed = np.append(
            pd.to_datetime(raw, format="%Y%m%d", errors="coerce").to_numpy(dtype=_DATE), _NAT
        )
        bad = np.flatnonzero(np.isnat(parsed[:-1]) & raw.notna().to_numpy())
        if len(bad):
            rows = np.flatnonzero(np.isin(codes, bad))
            if files is None:
                by_file = [(0, rows)]
            else:
                owner = files[rows]
                by_file = [(f, rows[owner == f]) for f in np.unique(owner).tolist()]
            for f, found in by_file:
                shown = [f"{values[i]!r} (segment {segments[i]})" for i in found[:5].tolist()]
                self.notes[f].bad_dates(what, len(found), shown)
        return parsed[codes]


def _finite(
    values: np.ndarray,
    segments: np.ndarray,
    what: str,
    names: Sequence[str],
    files: np.ndarray | None = None,
) -> np.ndarray:
    # float() accepts "nan" and "inf"; an amount must be a finite number.
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        number = int(segments[bad[0]])
        name = names[0 if files is None else int(files[bad[0]])]
        raise X12Error(
            f"{name}: segment {number} {what} is not a finite number. Correct the amount in the "
            f"file or ask the sender for a corrected file.",
            where=f"{name} segment {number}",
        )
    return values


def _amounts_finite(scan: _Scan) -> bool:
    """Every amount :func:`_build` checks is finite, so the part builds without an error and
    can be built together with other files' parts."""
    for values in (
        scan.c_charge, scan.c_paid, scan.c_pr, scan.l_charge, scan.l_paid, scan.l_units,
        scan.a_amount,
    ):  # fmt: skip
        # a finite sum means finite values; a sum that overflows is looked at value by value
        if not math.isfinite(sum(values)) and not np.isfinite(np.frombuffer(values)).all():
            return False
    if not all(math.isfinite(row[6]) for row in scan.plb):
        return False
    allowed = scan.l_more["B6"]
    return not any(math.isinf(v) for v in allowed.values())  # type: ignore[arg-type]


def _labels(labels: Sequence[str], codes: np.ndarray) -> pa.Array:
    """A string column from a few labels and each row's label number."""
    return pa.array(labels, type=pa.large_string()).take(pa.array(codes, type=pa.int64()))


def _build(entries: Sequence[_Entry]) -> tuple[Remittance, list[_OpenTransaction]]:
    """Typed tables of one or more parts, then their balancing checks.

    The parts are either consecutive parts of one file (one at a time, as :func:`iter_835`
    reads them) or whole files read by :meth:`_Reader.collect`. Several parts are built as one:
    rows keep their file's own indexes, segment numbers and ``file`` name, each file's rows stay
    together, and the tables equal those of :meth:`Remittance.concat` over the parts built one
    by one, for the cost of one build. Warnings and balance results go to each file's notes.

    Before an interchange's composites are split its component separator is settled. Returns
    the tables and, for each part, the sums of its transaction still open (to carry into the
    file's next part).
    """
    scans = [e.scan for e in entries]
    names = [e.name for e in entries]
    single = len(entries) == 1
    dates = _DateParser([e.notes for e in entries])
    file_names = None if single else pa.array(names, type=pa.large_string())

    def counts(rows: Callable[[_Scan], Sized]) -> np.ndarray:
        return np.array([len(rows(s)) for s in scans], dtype="int64")

    def owners(per_part: np.ndarray) -> np.ndarray | None:
        """The part of each row (None for a single part)."""
        return None if single else np.repeat(np.arange(len(entries), dtype="int64"), per_part)

    def file_column(files: np.ndarray | None) -> str | pa.Array:
        if file_names is None:
            return names[0]
        return file_names.take(pa.array(files, type=pa.int64()))

    def placed(dicts: Iterable[dict[int, object]], shifts: np.ndarray) -> _Placed:
        return list(zip(dicts, shifts.tolist(), strict=True))

    # Rows per part, and shifts from a part's 1-based claim and line numbers (which count on
    # from the file's earlier parts) to rows of the stacked tables.
    n_c, n_l, n_a = counts(lambda s: s.c_seg), counts(lambda s: s.l_seg), counts(lambda s: s.a_seg)
    n_r, n_p, n_pay = (
        counts(lambda s: s.remarks),
        counts(lambda s: s.plb),
        counts(lambda s: s.payments),
    )
    claim_shift = _starts(n_c) - np.array([s.claim_base + 1 for s in scans], dtype="int64")
    line_shift = _starts(n_l) - np.array([s.line_base + 1 for s in scans], dtype="int64")
    n_claims, n_lines = int(n_c.sum()), int(n_l.sum())
    c_files, l_files, a_files = owners(n_c), owners(n_l), owners(n_a)
    r_files, p_files, pay_files = owners(n_r), owners(n_p), owners(n_pay)

    def money(values: list[array], segments: np.ndarray, what: str, files: np.ndarray | None):
        return _finite(_joined(values, "float64"), segments, what, names, files)

    # payments (one per ST, in the part that reads its SE)
    pays: list[dict[str, object]] = _chained([s.payments for s in scans])  # type: ignore[assignment]
    for e in entries:
        for pay in e.scan.payments:
            if pay.get("bpr_handling") is None:
                e.notes.no_bpr.append(pay["segment"])  # type: ignore[arg-type]
        for pay in e.scan.payments:
            if pay.get("bpr_handling") is not None and not pay.get("payment_date"):
                e.notes.undated.append(pay["bpr_segment"])  # type: ignore[arg-type]
    pay_columns = {c: [pay.get(c) for pay in pays] for c in _PAYMENT_SCHEMA if c != "file"}
    pay_segments = [pay.get("bpr_segment", pay["segment"]) for pay in pays]
    paid_amount = np.array(pay_columns["paid_amount"], dtype="float64")
    payments = _typed(
        {
            "file": file_column(pay_files),
            **pay_columns,
            "paid_amount": paid_amount,
            "payment_date": dates(pay_columns["payment_date"], pay_segments, "BPR16", pay_files),
            "production_date": dates(
                pay_columns["production_date"], pay_columns["segment"], "DTM*405", pay_files
            ),
        },
        _PAYMENT_SCHEMA,
    )

    # claims (loop 2100)
    c_seg = _joined([s.c_seg for s in scans], "int64")
    claim_from = dates(
        _spread(placed([s.c_dates["232"] for s in scans], claim_shift), n_claims),
        c_seg,
        "DTM*232",
        c_files,
    )
    claim_to = dates(
        _spread(placed([s.c_dates["233"] for s in scans], claim_shift), n_claims),
        c_seg,
        "DTM*233",
        c_files,
    )
    claim_ids = np.empty(n_claims, dtype=object)
    claim_ids[:] = _chained([s.c_id for s in scans])

    # service lines (loop 2110)
    l_seg = _joined([s.l_seg for s in scans], "int64")
    line_claim = _joined([s.l_claim for s in scans], "int64")
    pos = line_claim + np.repeat(claim_shift, n_l)  # row of each line's claim
    # Interchanges may use different component separators; decode each one's lines with its
    # own, all lines of one separator at once.
    ranges = []
    for e, first_row in zip(entries, _starts(n_l).tolist(), strict=True):
        starts = [first - (e.scan.line_base + 1) for first, _ in e.scan.l_chunk]
        stops = [*starts[1:], len(e.scan.l_seg)]
        for start, stop, (_, ic) in zip(starts, stops, e.scan.l_chunk, strict=True):
            if stop > start:
                e.settle(ic)
                ranges.append((first_row + start, first_row + stop, ic))
    spans: dict[str, list[list[int]]] = {}
    for start, stop, ic in ranges:
        joined = spans.setdefault(ic.delimiters.component, [])
        if joined and joined[-1][1] == start:
            joined[-1][1] = stop
        else:
            joined.append([start, stop])
    svc01 = _chained([s.l_svc01 for s in scans])
    parts = [np.empty(n_lines, dtype=object) for _ in range(7)]
    for separator, runs in spans.items():
        if len(runs) == 1:
            rows: slice | np.ndarray = slice(*runs[0])
            values = svc01[rows]
        else:
            rows = np.concatenate([np.arange(start, stop) for start, stop in runs])
            values = [svc01[i] for i in rows.tolist()]
        decoded = _decode_procedures(values, separator)
        for k in range(7):
            parts[k][rows] = decoded[k]
    more = [s.l_more for s in scans]

    def line_values(key: str, fill: object = None) -> np.ndarray:
        return _spread(placed([m[key] for m in more], line_shift), n_lines, fill)

    original = line_values("SVC06")
    has_original = np.flatnonzero(original != None)  # noqa: E711 - elementwise on objects
    if len(has_original):
        separator_of = np.empty(n_lines, dtype=object)
        for start, stop, ic in ranges:
            separator_of[start:stop] = ic.delimiters.component
        for i in has_original.tolist():
            composite = original[i].split(separator_of[i])
            original[i] = composite[1] if len(composite) > 1 and composite[1] else composite[0]

    d472 = dates(line_values("472"), l_seg, "DTM*472", l_files)
    d150 = dates(line_values("150"), l_seg, "DTM*150", l_files)
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
        earliest = pd.Series(own_date).groupby(pos).min()
        first[earliest.index.to_numpy()] = earliest.to_numpy(dtype=_DATE)
    claim_service = np.where(np.isnat(claim_from), first, claim_from)

    allowed = line_values("B6", math.nan)
    if np.isinf(allowed).any():
        _finite(allowed, l_seg, "(AMT02)", names, l_files)

    claim_st = _joined([s.c_st for s in scans], "int64")
    claim_charge = money([s.c_charge for s in scans], c_seg, "(CLP03)", c_files)
    claim_paid = money([s.c_paid for s in scans], c_seg, "(CLP04)", c_files)
    c_status = _chained([s.c_status for s in scans])
    claim_index = np.arange(n_claims) - np.repeat(claim_shift, n_c)
    claims = _typed(
        {
            "file": file_column(c_files),
            "st_index": claim_st,
            "claim_index": claim_index,
            "claim_id": claim_ids,
            "status": c_status,
            "charge": claim_charge,
            "paid": claim_paid,
            "patient_responsibility": money([s.c_pr for s in scans], c_seg, "(CLP05)", c_files),
            "filing_indicator": _or_none(_chained([s.c_filing for s in scans])),
            "payer_claim_id": _or_none(_chained([s.c_payer_claim for s in scans])),
            "facility_code": _or_none(_chained([s.c_facility for s in scans])),
            "frequency": _or_none(_chained([s.c_freq for s in scans])),
            "patient_key": _spread(placed([s.c_key for s in scans], claim_shift), n_claims),
            "statement_from": claim_from,
            "statement_to": claim_to,
            "received_date": dates(
                _spread(placed([s.c_dates["050"] for s in scans], claim_shift), n_claims),
                c_seg,
                "DTM*050",
                c_files,
            ),
            "claim_service_date": claim_service,
            # CLP02 22 = reversal of a previous payment; the payer has already negated its
            # amounts, so they are kept as sent (X12 RFI 1147).
            "is_reversal": np.array(c_status, dtype=object) == "22",
            "segment": c_seg,
        },
        _CLAIM_SCHEMA,
    )

    line_charge = money([s.l_charge for s in scans], l_seg, "(SVC02)", l_files)
    line_paid = money([s.l_paid for s in scans], l_seg, "(SVC03)", l_files)
    line_index = np.arange(n_lines) - np.repeat(line_shift, n_l)
    service_lines = _typed(
        {
            "file": file_column(l_files),
            "st_index": claim_st[pos],
            "claim_index": line_claim,
            "line_index": line_index,
            "claim_id": claim_ids[pos],
            "code_qualifier": parts[0],
            "cpt": parts[1],
            "modifier_1": parts[2],
            "modifier_2": parts[3],
            "modifier_3": parts[4],
            "modifier_4": parts[5],
            "modifiers": parts[6],
            "charge": line_charge,
            "paid": line_paid,
            "revenue_code": line_values("SVC04"),
            "paid_units": money([s.l_units for s in scans], l_seg, "(SVC05)", l_files),
            "original_cpt": original,
            "service_date": service_date,
            "service_date_end": dates(line_values("151"), l_seg, "DTM*151", l_files),
            "service_date_source": source,
            "line_control_number": line_values("6R"),
            # NaN, not 0, when AMT*B6 is absent: the allowed amount is unknown.
            "allowed": allowed,
            "segment": l_seg,
        },
        _LINE_SCHEMA,
    )

    # adjustments (CAS triplets); an owner is a line number, or minus a claim number
    owner = _joined([s.a_owner for s in scans], "int64")
    a_seg = _joined([s.a_seg for s in scans], "int64")
    on_line = owner > 0
    adj_line = np.where(on_line, owner, 0)
    line_row = np.where(on_line, owner + np.repeat(line_shift, n_a), -1)  # -1: a claim's CAS
    claim_of_line = line_claim[np.maximum(line_row, 0)] if n_lines else 0
    adj_claim = np.where(on_line, claim_of_line, -owner)
    adj_row = adj_claim + np.repeat(claim_shift, n_a)
    adj_amount = money([s.a_amount for s in scans], a_seg, "(CAS amount)", a_files)
    adjustments = _typed(
        {
            "file": file_column(a_files),
            "st_index": claim_st[adj_row],
            "claim_index": adj_claim,
            "line_index": pd.arrays.IntegerArray(adj_line, ~on_line),
            "level": np.where(on_line, "line", "claim").astype(object),
            "claim_id": claim_ids[adj_row],
            "group_code": _chained([s.a_group for s in scans]),
            "carc": _chained([s.a_carc for s in scans]),
            "amount": adj_amount,
            # a_qty is keyed by the 0-based position of the triplet in its scan
            "quantity": _spread(
                placed([s.a_qty for s in scans], _starts(n_a)), len(a_seg), math.nan
            ),
            "segment": a_seg,
        },
        _ADJUSTMENT_SCHEMA,
    )

    remark_rows = _chained([s.remarks for s in scans])
    r = list(zip(*remark_rows, strict=True)) if remark_rows else [()] * 5
    r_claim = np.array(r[1], dtype="int64")
    r_line = np.array(r[2], dtype="int64")
    r_row = r_claim + np.repeat(claim_shift, n_r)
    remarks = _typed(
        {
            "file": file_column(r_files),
            "st_index": claim_st[r_row],
            "claim_index": r_claim,
            "line_index": pd.arrays.IntegerArray(r_line, r_line == 0),
            "level": np.where(r_line > 0, "line", "claim").astype(object),
            "claim_id": claim_ids[r_row],
            "code": list(r[3]),
            "source": list(r[4]),
            "segment": np.array(r[0], dtype="int64"),
        },
        _REMARK_SCHEMA,
    )

    plb_rows = _chained([s.plb for s in scans])
    p = list(zip(*plb_rows, strict=True)) if plb_rows else [()] * 7
    p_seg = np.array(p[0], dtype="int64")
    for e in entries:
        for ic in {id(row[5]): row[5] for row in e.scan.plb}.values():
            e.settle(ic)  # type: ignore[arg-type]
    reasons = [
        (c.split(i.delimiters.component, 1) + [""])[:2] for c, i in zip(p[4], p[5], strict=True)
    ]
    plb_st = np.array(p[1], dtype="int64")
    plb = _typed(
        {
            "file": file_column(p_files),
            "st_index": plb_st,
            "provider_id": list(p[2]),
            "fiscal_period_date": dates(list(p[3]), p_seg.tolist(), "PLB02", p_files),
            "reason": [x[0] for x in reasons],
            "reference": [x[1] or None for x in reasons],
            "amount": _finite(
                np.array(p[6], dtype="float64"), p_seg, "(PLB amount)", names, p_files
            ),
            "segment": p_seg,
        },
        _PLB_SCHEMA,
    )

    # Balancing (MLN: the 835 balances at line, claim and transaction level). Lines and claims
    # are whole in a part. The claim rule uses claim CAS plus the CAS of its lines; a claim with
    # no SVC has only claim-level CAS, so one sum over all CAS of the claim covers both cases.
    line_cas = np.zeros(n_lines)
    claim_cas = np.zeros(n_claims)
    np.add.at(line_cas, line_row[on_line], adj_amount[on_line])
    np.add.at(claim_cas, adj_row, adj_amount)
    transactions, carries = _transaction_sums(
        entries, claim_st, claim_paid, n_c, plb_st, plb["amount"].to_numpy(), n_p
    )
    closed = np.array(pay_columns["st_index"], dtype="int64")
    closed_row = closed + np.repeat(transactions[2], n_pay)
    balance = _balance_table(
        names,
        file_names,
        n_lines,
        n_claims,
        (l_files, c_files, pay_files),
        st=(claim_st[pos], claim_st, closed),
        claim_index=(line_claim, claim_index),
        line_index=line_index,
        claim_id=(claim_ids[pos], claim_ids),
        expected=(
            line_charge - line_cas,
            claim_charge - claim_cas,
            transactions[0][closed_row] - transactions[1][closed_row],
        ),
        actual=(line_paid, claim_paid, paid_amount),
    )
    if single:
        entries[0].notes.balance(balance)
    else:
        checks = n_l + n_c + n_pay
        failed = np.bincount(
            np.repeat(np.arange(len(entries)), checks)[~balance["balanced"].to_numpy()],
            minlength=len(entries),
        )
        for e, start, count, bad in zip(
            entries, _starts(checks).tolist(), checks.tolist(), failed.tolist(), strict=True
        ):
            if bad:
                e.notes.balance(balance.iloc[start : start + count])
            else:
                e.notes.checks += count

    remit = Remittance(
        payments=payments,
        claims=claims,
        service_lines=service_lines,
        adjustments=adjustments,
        remarks=remarks,
        plb=plb,
        balance=balance,
    )
    return remit, carries


def _or_none(values: list[str]) -> list[str | None]:
    return [v or None for v in values]


def _transaction_sums(
    entries: Sequence[_Entry],
    claim_st: np.ndarray,
    claim_paid: np.ndarray,
    n_c: np.ndarray,
    plb_st: np.ndarray,
    plb_amount: np.ndarray,
    n_p: np.ndarray,
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[_OpenTransaction]]:
    """Sum of CLP04 and of PLB amounts per transaction, and the sums to carry on.

    A transaction may span parts of a file: its sums run on from the part's ``carried`` in
    file order (the same additions in the same order as for a whole-file read), and its check
    is made in the part that reads its SE. Each part's transactions ``st_base`` ... ``st_end``
    get rows of their own; returns the two sums by row, the shift from a part's transaction
    number to its row, and each part's open transaction.
    """
    st_base = np.array([e.scan.st_base for e in entries], dtype="int64")
    width = np.array([e.st_end for e in entries], dtype="int64") - st_base + 1
    shift = _starts(width) - st_base
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
        carry = _OpenTransaction()
        if e.open_st:
            carry.st_index = e.open_st
            carry.paid = float(st_paid[e.open_st + at])
            carry.plb = float(st_plb[e.open_st + at])
        carries.append(carry)
    return (st_paid, st_plb, shift), carries


_RULES = (_LINE_RULE, _CLAIM_RULE, _TRANSACTION_RULE)


def _balance_table(
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
    return _typed(
        {
            "file": file_column,
            "level": _labels(_LEVELS, columns["level"]),
            "st_index": columns["st_index"],
            "claim_index": pd.arrays.IntegerArray(columns["claim_index"], columns["claim_mask"]),
            "line_index": pd.arrays.IntegerArray(columns["line_index"], columns["line_mask"]),
            "claim_id": columns["claim_id"],
            "rule": _labels(_RULES, columns["level"]),
            # Money is rounded here, once, for display; the test uses the unrounded gap.
            "expected": np.round(columns["expected"], 2),
            "actual": np.round(columns["actual"], 2),
            "difference": np.round(diff, 2),
            "balanced": np.abs(diff) < _CENT_TOLERANCE,
        },
        _BALANCE_SCHEMA,
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


def _check_chunk(chunk_bytes: int) -> int:
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise ParameterError(
            f"chunk_bytes must be a positive whole number of bytes, not {chunk_bytes!r}; the "
            f"default, {_CHUNK_BYTES}, suits files of any size.",
            where="chunk_bytes",
        )
    return chunk_bytes


def _read(
    source: str | os.PathLike[str] | bytes,
    salt: str | None,
    source_name: str | None,
    chunk_bytes: int = _CHUNK_BYTES,
) -> tuple[Remittance, list[_Note]]:
    reader = _Reader(source, salt=salt, source_name=source_name, chunk_bytes=chunk_bytes)
    parts = list(reader.parts())
    remit = parts[0] if len(parts) == 1 else Remittance.concat(parts)
    return remit, reader.notes.messages()


def read_835(
    path_or_text: str | os.PathLike[str] | bytes,
    *,
    salt: str | None = None,
    source_name: str | None = None,
) -> Remittance:
    """Read one 835 remittance file into tidy tables.

    The file is read in chunks (see :func:`iter_835`), never held whole, so only the tables
    take memory. When even the tables are too large, take them part by part with
    :func:`iter_835`, or run the ``remit`` command, which writes them part by part.

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


def iter_835(
    path_or_text: str | os.PathLike[str] | bytes,
    *,
    salt: str | None = None,
    source_name: str | None = None,
    chunk_bytes: int = _CHUNK_BYTES,
) -> Iterator[Remittance]:
    """Read an 835 of any size part by part, in memory bounded by ``chunk_bytes``.

    The file is read ``chunk_bytes`` at a time and cut into segments at the terminator its ISA
    declares; each part ends before a claim (CLP) or a transaction (ST), so one transaction for
    a check covering millions of claims is split too. Each part is a :class:`Remittance` whose
    claim and line indexes, segment numbers and values are those of a whole-file read, so
    ``Remittance.concat(list(iter_835(path)))`` equals ``read_835(path)``, table for table.

    A transaction's ``payments`` row and its transaction balance check (BPR02 = sum of CLP04 -
    sum of PLB, summed over every part) are in the part that reads its SE; line and claim
    checks are in the part that holds the line or claim.

    Parameters
    ----------
    path_or_text
        A path, the raw bytes, or the 835 text (as for :func:`read_835`).
    salt
        Salt for ``patient_key``; see :func:`read_835`.
    source_name
        Value of the ``file`` column and the name used in messages.
    chunk_bytes
        Bytes read at a time (characters, for text); parts hold about this much of the file.
        Memory use grows with it, not with the size of the file.

    Yields
    ------
    Remittance
        The tables of consecutive claims, in file order.

    Raises
    ------
    X12Error
        As :func:`read_835`, when the iteration reaches the fault; the parts before it have
        already been yielded.

    Warns
    -----
    X12Warning, BalanceWarning
        The warnings :func:`read_835` gives, worded for the whole file, once the last part has
        been yielded.

    Examples
    --------
    >>> text = (
    ...     "ST*835*1~BPR*I*12*C*CHK************20260318~LX*1~CLP*A1*1*9*5~CAS*CO*45*4~"
    ...     "CLP*A2*1*9*7~CAS*CO*45*2~SE*8*1~"
    ... )
    >>> [len(part.claims) for part in iter_835(text, chunk_bytes=16)]
    [1, 1]
    """
    reader = _Reader(
        path_or_text, salt=salt, source_name=source_name, chunk_bytes=_check_chunk(chunk_bytes)
    )
    yield from reader.parts()
    for category, message in reader.notes.messages():
        warnings.warn(message, category, stacklevel=2)


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


def _file_names(paths: list[Path]) -> list[str]:
    # Files are named by file name; when two share a name, their full paths are used instead.
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else str(p) for p in paths]


def _collect(
    path: Path, salt: str | None, name: str, chunk_bytes: int = _CHUNK_BYTES
) -> tuple[_Reader, list[Remittance], _Entry | None]:
    """Read one file of :func:`read_835_many` as :func:`_read` does (the same chunks), leaving
    its last part unbuilt (:meth:`_Reader.collect`)."""
    reader = _Reader(path, salt=salt, source_name=name, chunk_bytes=chunk_bytes)
    built, last = reader.collect()
    return reader, built, last


def read_835_many(
    paths_or_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    salt: str | None = None,
) -> tuple[Remittance, pd.DataFrame]:
    """Read many 835 files (and every file in the given directories) into one set of tables.

    A file that cannot be read does not stop the others: it is listed in the errors table.
    The tables equal those of :func:`read_835` on each file, stacked with
    :meth:`Remittance.concat`, and each file's warnings are given in file order; but files are
    built into tables in batches, so many small files cost about what one file of their total
    size does.

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
    parts: list[Remittance] = []
    errors: list[dict[str, str]] = []
    # Files read in one part (all but those of tens of MB) wait, unbuilt, to be built together:
    # building tables costs about the same for a few rows as for many, so a batch of small
    # files costs about what one file of their total size does.
    batch: list[_Entry] = []
    batch_rows = 0

    def build_batch() -> None:
        nonlocal batch_rows
        if not batch:
            return
        remit, _ = _build(batch)
        parts.append(remit)
        for entry in batch:
            for category, message in entry.notes.messages():
                warnings.warn(message, category, stacklevel=3)
        batch.clear()
        batch_rows = 0

    # The collector stays paused for the whole run (see _gc_paused), not switched on again
    # after each file, where it would look through the batch's rows each time.
    with _gc_paused():
        for path, name in zip(paths, _file_names(paths), strict=True):
            try:
                reader, built, last = _collect(path, salt, name)
                if not built and last is not None and _amounts_finite(last.scan):
                    if batch and batch_rows + last.rows > _BATCH_ROWS:
                        build_batch()
                    batch.append(last)
                    batch_rows += last.rows
                    if batch_rows >= _BATCH_ROWS:
                        build_batch()
                    continue
                # A file of several parts, or one with an amount that is not a finite number (its
                # build fails with the message naming the segment), is built on its own.
                if last is not None:
                    built.append(reader.build(last))
            except (X12Error, OSError) as exc:
                errors.append({"file": name, "error": str(exc)})
                continue
            build_batch()  # the files before this one come first
            for category, message in reader.notes.messages():
                warnings.warn(message, category, stacklevel=2)
            parts.extend(built)
        build_batch()
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

_TABLE_SCHEMAS = {
    "payments": _PAYMENT_SCHEMA,
    "claims": _CLAIM_SCHEMA,
    "service_lines": _LINE_SCHEMA,
    "adjustments": _ADJUSTMENT_SCHEMA,
    "remarks": _REMARK_SCHEMA,
    "plb": _PLB_SCHEMA,
    "balance": _BALANCE_SCHEMA,
}


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add the ``remit`` command: read 835 files, write tables, print totals and balance."""
    parser = sub.add_parser(
        "remit",
        help="read 835 remittance files into tables",
        description=(
            "Read X12 835 (ERA) files into tables (payments, claims, service_lines, "
            "adjustments, remarks, plb, balance, summary), written as Parquet and CSV. Patient "
            "names are never stored; member ids become a salted key (set ANALYTICS_ID_SALT). "
            "Files of any size are read and written part by part, in bounded memory."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="835 files or directories")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output directory")
    parser.add_argument("--json", action="store_true", help="print the per-file summary as JSON")
    parser.set_defaults(func=_run_remit)


def _arrow_schema(schema: dict[str, str]) -> pa.Schema:
    return pa.Schema.from_pandas(_empty(schema), preserve_index=False)


class _Spool:
    """One table of one file, spooled to disk until the whole file has been read: Arrow IPC
    (cheap to write and to read back) and CSV rows without a header."""

    def __init__(self, stem: Path, schema: pa.Schema) -> None:
        self.arrow = stem.with_name(stem.name + ".arrows")
        self.csv = stem.with_name(stem.name + ".csv")
        self.schema = schema
        self.sink: pa.NativeFile | None = None
        self.writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.csv_file: BinaryIO | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        if self.writer is None:
            self.sink = pa.OSFile(str(self.arrow), "wb")
            self.writer = pa.ipc.new_stream(self.sink, self.schema)
            self.csv_file = open(self.csv, "wb")  # noqa: SIM115 - closed in close()
        self.writer.write_table(
            pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        )
        frame.to_csv(self.csv_file, index=False, header=False)

    @property
    def written(self) -> bool:
        return self.writer is not None

    def close(self) -> None:
        for handle in (self.writer, self.sink, self.csv_file):
            if handle is not None:
                handle.close()


class _TableFiles:
    """One output table, written a file at a time as Parquet row groups and CSV rows."""

    def __init__(self, stem: Path, schema: dict[str, str]) -> None:
        self.parquet = stem.with_name(stem.name + ".parquet")
        self.csv = stem.with_name(stem.name + ".csv")
        self.schema = _arrow_schema(schema)
        self.header = _empty(schema).to_csv(index=False).encode()
        self.writer: pq.ParquetWriter | None = None
        self.csv_file: BinaryIO | None = None

    def _open(self) -> tuple[pq.ParquetWriter, BinaryIO]:
        if self.writer is None or self.csv_file is None:
            self.writer = pq.ParquetWriter(self.parquet, self.schema)
            self.csv_file = open(self.csv, "wb")  # noqa: SIM115 - closed in close()
            self.csv_file.write(self.header)
        return self.writer, self.csv_file

    def append(self, spool: _Spool) -> None:
        """Add the rows of a closed spool after the rows already written."""
        if not spool.written:
            return
        writer, csv_file = self._open()
        with pa.OSFile(str(spool.arrow), "rb") as source:
            for batch in pa.ipc.open_stream(source):
                writer.write_batch(batch)
        with open(spool.csv, "rb") as rows:
            shutil.copyfileobj(rows, csv_file, 2**20)

    def close(self) -> None:
        """Finish the files; a table with no rows still gets them, with its columns."""
        writer, csv_file = self._open()
        writer.close()
        csv_file.close()


def _sum(values: pd.Series) -> float:
    # the same (compensated) grouped sum as Remittance.summary, for one file
    return float(values.groupby(np.zeros(len(values), dtype="int8")).sum().sum())


class _FileOutput:
    """One file's tables, spooled to disk until the whole file has been read, so that a file
    that fails half-way (truncated, a bad amount) leaves nothing in the output tables. Balance
    rows are spooled by level, to come out in the order a whole-file read gives them."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name = name
        self.tables = {
            table: _Spool(folder / table, _arrow_schema(schema))
            for table, schema in _TABLE_SCHEMAS.items()
            if table != "balance"
        }
        balance = _arrow_schema(_BALANCE_SCHEMA)
        self.balance = {level: _Spool(folder / f"balance-{level}", balance) for level in _LEVELS}
        self.counts = [0, 0, 0]  # claims, service lines, failed checks
        self.sums = [0.0, 0.0, 0.0]  # paid, adjustments, PLB
        self.failed: dict[str, list[pd.DataFrame]] = {level: [] for level in _LEVELS}

    def add(self, part: Remittance) -> None:
        for table, files in self.tables.items():
            files.write(getattr(part, table))
        balance = part.balance
        levels = balance["level"].to_numpy(dtype=object)
        for level, files in self.balance.items():
            rows = balance[levels == level]
            files.write(rows)
            bad = rows[~rows["balanced"].to_numpy(dtype=bool)]
            if len(bad):
                self.failed[level].append(bad)
                self.counts[2] += len(bad)
        self.counts[0] += len(part.claims)
        self.counts[1] += len(part.service_lines)
        self.sums[0] += _sum(part.claims["paid"])
        self.sums[1] += _sum(part.adjustments["amount"])
        self.sums[2] += _sum(part.plb["amount"])

    def close(self) -> None:
        for spool in [*self.tables.values(), *self.balance.values()]:
            spool.close()

    def commit(self, outputs: dict[str, _TableFiles]) -> None:
        for table, staged in self.tables.items():
            outputs[table].append(staged)
        for level in _LEVELS:
            outputs["balance"].append(self.balance[level])

    def summary_row(self) -> dict[str, object]:
        claims, lines, failed = self.counts
        paid, adjustments, plb = (float(np.round(s, 2)) for s in self.sums)
        return {
            "file": self.name,
            "claims": claims,
            "service_lines": lines,
            "paid_total": paid,
            "adjustments_total": adjustments,
            "plb_total": plb,
            "balanced": failed == 0,
        }


def _run_remit(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    paths = _expand(args.paths)
    outputs = {table: _TableFiles(out / table, schema) for table, schema in _TABLE_SCHEMAS.items()}
    rows: list[dict[str, object]] = []
    failed: list[pd.DataFrame] = []
    errors: list[dict[str, str]] = []
    staging = Path(tempfile.mkdtemp(prefix=".remit-", dir=out))
    try:
        for i, (path, name) in enumerate(zip(paths, _file_names(paths), strict=True)):
            folder = staging / str(i)
            folder.mkdir()
            spool = _FileOutput(folder, name)
            try:
                reader = _Reader(path, salt=None, source_name=name, chunk_bytes=_CHUNK_BYTES)
                for part in reader.parts():
                    spool.add(part)
            except (X12Error, OSError) as exc:
                errors.append({"file": name, "error": str(exc)})
                continue
            finally:
                spool.close()
            for category, message in reader.notes.messages():
                warnings.warn(message, category, stacklevel=2)
            spool.commit(outputs)
            shutil.rmtree(folder)
            rows.append(spool.summary_row())
            failed.extend(frame for level in _LEVELS for frame in spool.failed[level])
    finally:
        for files in outputs.values():
            files.close()
        shutil.rmtree(staging, ignore_errors=True)

    summary = pd.DataFrame(rows, columns=list(_SUMMARY_SCHEMA)).astype(_SUMMARY_SCHEMA)
    summary.to_parquet(out / "summary.parquet", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    error_frame = pd.DataFrame(errors, columns=list(_ERROR_SCHEMA)).astype(_ERROR_SCHEMA)
    if errors:
        error_frame.to_csv(out / "errors.csv", index=False)

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
        if errors:
            payload["errors"] = error_frame.to_dict("records")
        print(json.dumps(payload, indent=2))
    else:
        if summary.empty:
            print("No 835 file was read.")
        else:
            print(summary.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
            if failed:
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
                print(pd.concat(failed, ignore_index=True)[cols].to_string(index=False))
        if errors:
            print(f"\n{len(errors)} file(s) could not be read:")
            for r in error_frame.itertuples(index=False):
                print(f"  {r.file}: {r.error}")
        print(f"\nTables written to {out}")
    return 1 if errors else 0
