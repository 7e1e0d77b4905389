"""Export files as text tables: CSV, TSV, XLSX and Parquet alike, the header found under any
title rows, every row numbered as a spreadsheet shows it.

:func:`read_export` returns an :class:`ExportTable`: the header row's cells as column names
and every later row as stripped text (missing -> ``""``), with its spreadsheet row number.
The header is the first row that reads as one (several distinct text cells, most of them
known headers or at least not numbers or dates, with data below); ``header_row`` in
mapping.yaml overrides the search.

Text files are read as UTF-8, else cp1252 (Windows exports); bytes that are neither stop the
read with the byte offset, unless mapping.yaml names the ``encoding``. Line breaks inside a
cell become spaces: no canonical value holds one, and a bare carriage return would split the
row when a written CSV is read again.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from analytics.exceptions import InputError
from analytics.intake.headers import column_letter, header_target, unnamed_header

__all__ = ["ExportTable", "read_export", "find_header_row", "TEXT_SUFFIXES", "EXPORT_SUFFIXES", "decode_export",
           "workbook_has_formulas", "sheet_names", "EXCEL_ENGINE"]

#: Text exports, read with the delimiter they use.
TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".tab")
#: Every export the intake reads.
EXPORT_SUFFIXES = (*TEXT_SUFFIXES, ".xlsx", ".xlsm", ".parquet", ".pq")
_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE_ROWS = 60  # rows searched for the header (title blocks are a few rows)
_NUMBER_OR_DATE = re.compile(r"^[\s$()+\-.,/:0-9]*$")


@dataclass(frozen=True)
class ExportTable:
    """One export read as text.

    Attributes
    ----------
    path
        The file read.
    kind
        ``csv``, ``tsv``, ``xlsx`` or ``parquet``.
    header_row
        The header's row number as the spreadsheet shows it (1 = the first row).
    headers
        Column names in file order: the header cells, stripped; a blank header cell is named
        ``unnamed column 7 (G)`` and a header repeated in the file ``Dx (column H)`` from its
        second time on.
    raw_headers
        The header cells as written (blank ``""``), one per column.
    cells
        The data rows as text, one column per header, blank rows included.
    rows
        Each data row's number as the spreadsheet shows it.
    sheet, delimiter, encoding
        What was read: the Excel sheet, the text delimiter and the text encoding.
    notes
        What a reader of the figures should know about the read (an encoding fallback).
    """

    path: Path
    kind: str
    header_row: int
    headers: tuple[str, ...]
    raw_headers: tuple[str, ...]
    cells: pd.DataFrame
    rows: np.ndarray
    sheet: str | int | None = None
    delimiter: str | None = None
    encoding: str | None = None
    notes: tuple[str, ...] = field(default=())


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".xls":
        raise InputError(f"{path}: old-style .xls workbooks are not read. Open it in Excel and save it as .xlsx or "
                         "CSV.", where=str(path))
    if suffix in TEXT_SUFFIXES:
        return "tsv" if suffix in (".tsv", ".tab") else "csv"
    raise InputError(f"{path}: unknown file type {suffix or '(no extension)'!r}. Give a .csv, .tsv, .xlsx or "
                     ".parquet export.", where=str(path))


def decode_export(path: Path, data: bytes, encoding: str | None) -> tuple[str, str, tuple[str, ...]]:
    """The text of a text export: ``(text, encoding used, notes)``.

    UTF-8 (a byte-order mark is dropped), else cp1252; ``encoding`` (from mapping.yaml) is
    used as given. Bytes that are neither stop with the offset of the first bad byte.
    """
    if encoding:
        try:
            return data.decode(encoding), encoding, ()
        except LookupError:
            raise InputError(f"{path}: mapping.yaml names the encoding {encoding!r}, which is unknown; use utf-8, "
                             "cp1252 or latin-1.", where=str(path)) from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: byte {exc.start} (0x{data[exc.start]:02x}) is not {encoding}. Save the "
                             "export as UTF-8, or name its encoding in mapping.yaml (encoding: latin-1).",
                             where=f"{path} byte {exc.start}") from None
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # Excel's "Unicode Text": UTF-16 with its byte-order mark
        try:
            return data.decode("utf-16"), "utf-16", ()
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: starts as UTF-16 (Excel's Unicode Text) but byte {exc.start} is not. Save the "
                             "export again as 'CSV UTF-8'.", where=f"{path} byte {exc.start}") from None
    try:
        return data.decode("utf-8-sig"), "utf-8", ()
    except UnicodeDecodeError as first:
        if _mostly_utf8(data):
            # A UTF-8 file with a few Windows bytes (a name pasted from another program): each
            # byte that is not UTF-8 is read as cp1252, the rest as UTF-8, so neither turns to mojibake.
            with contextlib.suppress(UnicodeDecodeError):
                text = data.decode("utf-8-sig", errors=_CP1252_BYTES)
                return text, "utf-8", (f"{path.name}: byte {first.start} and others are not UTF-8; they were read "
                                       "as Windows cp1252 and the rest as UTF-8.",)
        try:
            # Exports from Windows practice-management systems are often cp1252.
            return data.decode("cp1252"), "cp1252", ()
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{path}: the bytes at offset {exc.start} (0x{data[exc.start]:02x}) are neither UTF-8 (first bad byte "
                f"at offset {first.start}) nor Windows cp1252. Export the file again as UTF-8 (Excel: Save As, "
                "'CSV UTF-8'), or, if you know its encoding, name it in mapping.yaml (encoding: latin-1).",
                where=f"{path} byte {exc.start}") from None


def _cp1252_bytes(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: the bytes UTF-8 could not read, read as cp1252. A byte cp1252
    does not define either (0x81, 0x8D, 0x8F, 0x90, 0x9D) is an error still: such a file is
    neither, and the caller names the byte."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start:error.end].decode("cp1252"), error.end


_CP1252_BYTES = "analytics-cp1252-bytes"
codecs.register_error(_CP1252_BYTES, _cp1252_bytes)


def _mostly_utf8(data: bytes) -> bool:
    """Whether the text holds UTF-8 sequences of two or more bytes (so its non-ASCII text is
    UTF-8 and the bytes that are not are strays); a cp1252 file has none, or by chance few."""
    return len(re.findall(rb"[\xc2-\xf4][\x80-\xbf]+", data)) >= 3


def _sample_records(text: str, delimiter: str) -> list[list[str]]:
    """The first records of a text export, cells stripped (blank lines are records too)."""
    reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
    records: list[list[str]] = []
    try:
        while len(records) < _SAMPLE_ROWS:
            records.append([c.strip() for c in next(reader)])
    except (StopIteration, csv.Error):  # the end, or a broken quote (pandas reports it with the line)
        pass
    return records


def _choose_delimiter(text: str, suffix_kind: str) -> str:
    if suffix_kind == "tsv":
        return "\t"
    best, best_width = ",", 0
    for delimiter in _DELIMITERS:
        records = _sample_records(text[:200_000], delimiter)
        widths = [sum(1 for c in r if c) for r in records]
        width = max(widths, default=0)
        if width > best_width:
            best, best_width = delimiter, width
    return best


def find_header_row(records: list[list[str]]) -> int:
    """The position of the header among the first rows of an export (0 when none reads as one).

    A header has at least two distinct non-blank cells, at least half as many as the widest
    row; most of them are not numbers or dates, and a row with cells follows it. A row whose
    cells include two known headers ("CPT", "Date of Service") wins over one that merely reads
    as text.

    Examples
    --------
    >>> find_header_row([["Harbor Massage: charges"], [], ["Date of Service", "CPT", "Charge"],
    ...                  ["03/02/2026", "97140", "$60.00"]])
    2
    """
    widths = [sum(1 for c in r if c) for r in records]
    widest = max(widths, default=0)
    fallback = None
    for i, record in enumerate(records):
        cells = [c for c in record if c]
        if len(cells) < 2 or len(cells) * 2 < widest or len(set(cells)) < len(cells) * 0.8:
            continue
        text_like = sum(1 for c in cells if not _NUMBER_OR_DATE.match(c))
        if text_like < 0.8 * len(cells):
            continue
        if not any(widths[j] >= 2 for j in range(i + 1, min(i + 4, len(records)))) and i + 1 < len(records):
            continue
        known = sum(1 for c in cells if header_target(c)[0] is not None)
        if known >= 2:
            return i
        if fallback is None:
            fallback = i
    return fallback if fallback is not None else 0


def _names(raw: list[str], has_data: np.ndarray) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Unique column names: blank headers named by position, repeats by their letter."""
    names: list[str] = []
    seen: set[str] = set()
    for i, header in enumerate(raw):
        name = header if header else unnamed_header(i)
        if name.lower() in seen:
            name = f"{header} (column {column_letter(i)})"
        seen.add(name.lower())
        names.append(name)
    return tuple(names), tuple(raw)


def _clean(frame: pd.DataFrame, *, breaks: bool = True) -> pd.DataFrame:
    """Every cell as stripped text, line breaks inside a cell turned into spaces (``breaks``:
    the cells may hold line breaks; a text file without quotes cannot). A cell written as a
    spreadsheet text formula to keep its zeros (``="00123"``, as some systems export codes and
    ids) is its text."""
    out = {}
    for i, name in enumerate(frame.columns):
        values = frame[name].astype("str").fillna("")
        if breaks and values.str.contains("[\r\n]", regex=True).any():
            values = values.str.replace(r"\s*[\r\n]+\s*", " ", regex=True)
        values = values.str.strip()
        if values.str.startswith('="').any():
            values = values.str.replace(r'^="(.*)"$', r"\1", regex=True).str.strip()
        out[i] = values
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _read_text(path: Path, kind: str, header_row: int | None, delimiter: str | None,
               encoding: str | None) -> ExportTable:
    text, used, notes = decode_export(path, path.read_bytes(), encoding)
    if not text.strip():
        raise InputError(f"{path}: the file is empty (not even a header row). Export it again with its header.",
                         where=str(path))
    delimiter = delimiter or _choose_delimiter(text, kind)
    records = _sample_records(text, delimiter)
    if header_row is not None:
        if header_row > len(records):
            raise InputError(f"{path}: the header is said to be on row {header_row} (header_row in mapping.yaml, or "
                             f"--header-row), but the file's first rows end at row {len(records)}. Give the row the "
                             "header is on as the spreadsheet shows it.", where=str(path))
        at = header_row - 1
    else:
        at = find_header_row(records)
    raw = records[at] if at < len(records) else []
    # pandas skips records, not lines (a quoted cell may hold a line break), blank ones included
    frame = _parse_text(path, text, delimiter, at + 1 if records else 0, max(len(raw), 1), at)
    cells = _clean(frame, breaks='"' in text)
    rows = np.arange(at + 2, at + 2 + len(cells), dtype=np.int64)
    return _table(path, kind, at + 1, raw, cells, rows, delimiter=delimiter, encoding=used, notes=notes)


def _parse_text(path: Path, text: str, delimiter: str, skip: int, width: int, at: int) -> pd.DataFrame:
    """The rows below the header; a row wider than the header widens the table (its extra cells
    land in unnamed columns, listed like any other) instead of stopping the read or losing them."""
    for _ in range(8):
        try:
            with warnings.catch_warnings():
                # pandas warns, and drops cells, when the first rows are wider than the names given
                warnings.simplefilter("error", pd.errors.ParserWarning)
                return pd.read_csv(io.StringIO(text, newline=None), sep=delimiter, header=None, skiprows=skip,
                                   dtype=str, keep_default_na=False, skip_blank_lines=False, names=range(width),
                                   index_col=False)
        except pd.errors.EmptyDataError:
            return pd.DataFrame({i: pd.Series(dtype="str") for i in range(width)})
        except pd.errors.ParserWarning:
            reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
            widest = max((len(r) for r in reader), default=width)
            if widest <= width:
                break
            width = widest
        except pd.errors.ParserError as exc:
            wider = re.search(r"Expected \d+ fields in line \d+, saw (\d+)", str(exc))
            if wider is None or int(wider[1]) <= width:
                raise InputError(f"{path}: cannot be read as a table below the header on row {at + 1} ({exc}). "
                                 "Check the delimiter and quoting, or set header_row in mapping.yaml.",
                                 where=str(path)) from None
            width = int(wider[1])
    raise InputError(f"{path}: the rows below the header on row {at + 1} do not form a table; check the delimiter, "
                     "or set header_row in mapping.yaml.", where=str(path))


def _table(path: Path, kind: str, header_row: int, raw: list[str], cells: pd.DataFrame, rows: np.ndarray,
           **extra) -> ExportTable:
    width = max(len(raw), cells.shape[1])
    raw = [re.sub(r"\s*[\r\n]+\s*", " ", h) for h in [*raw, *[""] * (width - len(raw))]]
    for i in range(cells.shape[1], width):
        cells[i] = ""
    has_data = (cells != "").any(axis=0).to_numpy(bool) if len(cells) else np.zeros(width, bool)
    names, raw_headers = _names(raw, has_data)
    # columns with neither a header nor a value are not columns (a spreadsheet's used range)
    keep = [i for i in range(width) if raw[i] or has_data[i]]
    cells = cells[keep].set_axis([names[i] for i in keep], axis=1)
    return ExportTable(path=path, kind=kind, header_row=header_row, headers=tuple(names[i] for i in keep),
                       raw_headers=tuple(raw_headers[i] for i in keep), cells=cells, rows=rows, **extra)


@functools.lru_cache(maxsize=1)
def _excel_cells(path: str, modified: int, size: int, sheet: str | int) -> pd.DataFrame:
    """Every cell of a sheet as stripped text. Parsing a workbook is the slow part of reading one,
    and ``init`` reads the same workbook twice in a row (to sniff it, then to read it): the last
    sheet parsed is kept, keyed by the file's time and size (callers never change it)."""
    frame = pd.read_excel(path, sheet_name=sheet, header=None, dtype=str, keep_default_na=False, engine=EXCEL_ENGINE)
    return _clean(frame)


#: A formula element of a worksheet's XML (``<f>``, ``<f t="shared" .../>``, ``<x:f>``).
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")


def workbook_has_formulas(path: str | os.PathLike[str]) -> bool:
    """Whether any worksheet of an .xlsx holds a formula (its XML read in pieces, not parsed);
    False for a file that is not a readable workbook."""
    try:
        with zipfile.ZipFile(path) as book:
            for name in book.namelist():
                if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                    continue
                with book.open(name) as f:
                    tail = b""
                    while piece := f.read(1 << 20):
                        if _FORMULA.search(tail + piece):
                            return True
                        tail = piece[-16:]
    except (zipfile.BadZipFile, OSError, KeyError):
        return False
    return False


def sheet_names(path: str | os.PathLike[str]) -> list[str]:
    """The sheet names of a workbook, in order."""
    return list(pd.ExcelFile(path, engine=EXCEL_ENGINE).sheet_names)


def _excel_engine() -> tuple[str, tuple[type[Exception], ...]]:
    """The workbook reader and the errors it raises on a file that is not a workbook: Calamine
    (Rust) reads a workbook many times faster than openpyxl, to the same text."""
    broken: tuple[type[Exception], ...] = (zipfile.BadZipFile, KeyError, OSError)
    try:
        import python_calamine
    except ImportError:
        return "openpyxl", broken
    return "calamine", (*broken, python_calamine.CalamineError)


#: The engine pandas reads workbooks with here and in the privacy guard (calamine, else openpyxl).
EXCEL_ENGINE, _BROKEN_WORKBOOK = _excel_engine()


def _read_excel(path: Path, sheet: str | int | None, header_row: int | None) -> ExportTable:
    try:
        stat = path.stat()
        cells = _excel_cells(str(path.resolve()), stat.st_mtime_ns, stat.st_size, 0 if sheet is None else sheet)
    except _BROKEN_WORKBOOK as exc:
        raise InputError(f"{path}: not a readable .xlsx workbook ({exc}). Open it in Excel and save it again.",
                         where=str(path)) from None
    except ValueError as exc:
        if "sheet" in str(exc).lower() or "worksheet" in str(exc).lower():
            raise InputError(f"{path}: {exc}. Name an existing sheet (--sheet NAME, or sheet: in mapping.yaml).",
                             where=str(path)) from None
        raise
    sample = [list(row) for row in cells.head(_SAMPLE_ROWS).itertuples(index=False, name=None)]
    at = header_row - 1 if header_row is not None else find_header_row(sample)
    if at >= max(len(cells), 1):
        raise InputError(f"{path}: the header row {at + 1} is below the last row of the sheet. Fix header_row in "
                         "mapping.yaml.", where=str(path))
    raw = list(cells.iloc[at]) if len(cells) else []
    body = cells.iloc[at + 1:].reset_index(drop=True).set_axis(range(cells.shape[1]), axis=1)
    rows = np.arange(at + 2, at + 2 + len(body), dtype=np.int64)
    return _table(path, "xlsx", at + 1, raw, body, rows, sheet=0 if sheet is None else sheet)


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Typed columns (from Parquet) as the text a CSV export would hold."""
    out = {}
    for i, name in enumerate(frame.columns):
        values = frame[name]
        missing = values.isna().to_numpy()
        if pd.api.types.is_bool_dtype(values.dtype):
            text = values.map({True: "true", False: "false"})
        elif pd.api.types.is_datetime64_any_dtype(values.dtype):
            kept = values.dropna()
            has_time = bool((kept != kept.dt.normalize()).any())
            text = values.dt.strftime("%Y-%m-%d %H:%M:%S" if has_time else "%Y-%m-%d")
        elif pd.api.types.is_float_dtype(values.dtype):
            number = values.astype("float64")
            whole = (np.isfinite(number) & (number == np.floor(number)) & (number.abs() < 1e15)).to_numpy()
            text = number.astype("str")
            text[whole] = number[whole].astype("int64").astype("str")
        else:
            text = values.astype(object).where(~missing, "").astype("str")
        out[i] = text.astype("str").where(~missing, "")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _read_parquet(path: Path) -> ExportTable:
    try:
        frame = pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc}). Export it again.", where=str(path)) from None
    raw = [str(c).strip() for c in frame.columns]
    cells = _clean(_as_text(frame))
    return _table(path, "parquet", 1, raw, cells, np.arange(2, 2 + len(cells), dtype=np.int64))


def read_export(path: str | Path, *, sheet: str | int | None = None, header_row: int | None = None,
                delimiter: str | None = None, encoding: str | None = None) -> ExportTable:
    """Read an export as text, its header found under any title rows.

    Parameters
    ----------
    path
        A ``.csv``/``.txt`` (comma, semicolon, tab or pipe delimited), ``.tsv``, ``.xlsx`` or
        ``.parquet`` file.
    sheet
        Excel sheet name or position (default: the first sheet).
    header_row
        The header's row number as the spreadsheet shows it; default: found.
    delimiter, encoding
        For text exports; default: found (UTF-8, else cp1252).

    Raises
    ------
    InputError
        The file is missing, empty, of an unknown kind, not decodable or not a table.

    Examples
    --------
    >>> table = read_export("service_lines.xlsx")  # doctest: +SKIP
    >>> table.header_row, table.headers[:3]  # doctest: +SKIP
    (3, ('Patient Name', 'DOB', 'Account #'))
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file. Check the export's name and folder.", where=str(path))
    kind = _kind(path)
    if kind == "xlsx":
        return _read_excel(path, sheet, header_row)
    if kind == "parquet":
        return _read_parquet(path)
    return _read_text(path, kind, header_row, delimiter, encoding)
