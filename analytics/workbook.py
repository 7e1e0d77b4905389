"""One spreadsheet per report run: every saved table as a sheet of ``tables.xlsx``.

A run saves each table of its pages as CSV (``tables/<report>/<name>.csv``, see
:func:`analytics.plots.save_table`). :func:`write_workbook` gathers them into one Excel
workbook: a ``Contents`` sheet listing each sheet with its report, table, CSV path and row
count, then one sheet per table with its header row bold, frozen and filtered.

* Numbers are stored as numbers: dollar columns with a ``$#,##0.00`` format, rates and
  shares as percents (``0.0%``), counts as whole numbers; dates (``YYYY-MM-DD``) as dates.
* Codes and identifiers stay text whatever they look like: CPT codes (``97140``), CARCs,
  claim numbers, NPIs, localities, and any value with a leading zero.
* Text that a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return) is neutralised as in the CSV tables (a leading ``'``,
  :func:`analytics._files.neutralise_cells`), and every text cell is stored as text, never as
  a formula, so opening the file runs nothing (CSV/formula injection, OWASP).
* What a spreadsheet cannot hold is said, not lost: characters XML forbids (control
  characters other than tab, line feed and carriage return) are left out of the cell; a text
  longer than a cell's 32,767 characters is cut with a note pointing to the CSV file; a table
  longer than a sheet's 1,048,576 rows goes on over further sheets (``<table> part 2``), each
  listed in ``Contents``.

The sheets are written as SpreadsheetML directly, column by column: each column's distinct
values are classified and turned into cell XML once (:func:`column_cells`), and the rows are
joined by Arrow string kernels, so a 55,000-row table costs a fraction of a second. The same
tables give the same bytes: the workbook's dates and the zip entries' times are fixed.

Examples
--------
>>> write_workbook("reports/2025-Q4/runs/r1", ["revenue"], "tables.xlsx")  # doctest: +SKIP
PosixPath('tables.xlsx')
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics._files import FORMULA_STARTS, atomic_write, neutralise_cells
from analytics.exceptions import InputError
from analytics.plots import CENTS_COLUMNS, MONEY_COLUMNS, PERCENT_COLUMNS

__all__ = [
    "write_workbook", "read_table", "sheet_name", "cell_values", "column_cells", "ColumnCells", "column_width",
    "column_letter", "TEXT_COLUMNS", "formula_like", "xml_text", "MAX_CELL_CHARACTERS", "MAX_SHEET_ROWS",
    "MAX_SHEET_COLUMNS", "CUT_NOTE",
]

#: Columns kept as text whatever their values look like (codes and identifiers).
TEXT_COLUMNS = frozenset({
    "cpt", "code", "codes", "carc", "rarc", "group_code", "modifiers", "claim_id", "payer_claim_id", "line_id",
    "npi", "locality", "locality_id", "payer_id", "provider_id", "figure", "label", "unit", "reason", "category",
})
#: The most characters (UTF-16 code units) an Excel cell holds ("Excel specifications and limits").
MAX_CELL_CHARACTERS = 32_767
#: The most rows an Excel sheet holds, the header row included.
MAX_SHEET_ROWS = 1_048_576
#: The most columns an Excel sheet holds.
MAX_SHEET_COLUMNS = 16_384
#: What ends a text cut at :data:`MAX_CELL_CHARACTERS`.
CUT_NOTE = " [cut at 32,767 characters, the most a spreadsheet cell holds: the CSV file has the whole text]"

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
# What a column's distinct values are tested with, in Arrow's RE2, as the first workbook writer
# tested every value with Python's re (a plain number, a whole number, an ISO date, a leading
# zero): Python's \d is any Unicode decimal digit (\p{Nd}) and its $ also matches before a
# final line feed (hence \n?$).
_RE2_NUMBER = r"^[+-]?(\p{Nd}+(\.\p{Nd}*)?|\.\p{Nd}+)([eE][+-]?\p{Nd}+)?\n?$"
_RE2_WHOLE = r"^[+-]?\p{Nd}+\n?$"
_RE2_DATE = r"^\p{Nd}{4}-\p{Nd}{2}-\p{Nd}{2}\n?$"
_RE2_LEADING_ZERO = r"^0\p{Nd}"
_RE2_FORMULA_START = r"^[=+\-@\t\r\x00]"
_RE2_TESTS = {"number": _RE2_NUMBER, "whole": _RE2_WHOLE, "date": _RE2_DATE, "leading_zero": _RE2_LEADING_ZERO}
# a plain number in ASCII digits: a number for Python's re and RE2 alike
_RE2_ASCII_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
#: Characters XML 1.0 does not allow in a document (so neither does a spreadsheet cell).
_RE2_NOT_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x{fffe}\x{ffff}]"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_SPACE_AT_END = r"^[ \t\n\r]|[ \t\n\r]$"

_FIXED = dt.datetime(2000, 1, 1)
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_MONEY_FORMAT = '"$"#,##0.00'
_PERCENT_FORMAT = "0.0%"
#: Rows joined into one piece of sheet XML at a time (bounds the memory of a long table).
_ROWS_PER_PIECE = 100_000

# Cell styles (indexes into styles.xml's cellXfs): see _STYLES_XML.
_STYLE_BOLD = 1
_STYLE_QUOTED = 7
_FORMAT_STYLES = {_MONEY_FORMAT: 2, "#,##0": 3, _PERCENT_FORMAT: 4, "yyyy-mm": 5, "yyyy-mm-dd": 6}


def formula_like(text: str) -> bool:
    """True when a spreadsheet would read ``text`` as a formula (and it is not a plain number)."""
    return bool(text) and text.startswith(FORMULA_STARTS) and not _NUMBER.match(text)


def sheet_name(report: str, table: str, taken: set[str]) -> str:
    """An Excel sheet name (31 characters, no ``[]:*?/\\``) unique among ``taken``.

    Examples
    --------
    >>> sheet_name("contracts", "claims_to_appeal", set())
    'contracts claims_to_appeal'
    """
    base = re.sub(r"[\[\]:*?/\\]", "_", f"{report} {table}")[:31]
    name, n = base, 2
    while name.lower() in {t.lower() for t in taken}:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name)
    return name


def xml_text(text: str) -> str:
    """``text`` as the content of an XML element: characters XML forbids left out, ``&<>``
    escaped and a carriage return kept as ``&#13;`` (a parser would read a bare one as a line
    feed).

    Examples
    --------
    >>> xml_text("A & B <1>\\x01\\r")
    'A &amp; B &lt;1&gt;&#13;'
    """
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


# --------------------------------------------------------------------------- one column's cells


@dataclass(frozen=True)
class ColumnCells:
    """One column of a table as sheet cells.

    Attributes
    ----------
    kind
        ``text``, ``number``, ``whole`` (every value a whole number), ``boolean``, ``date`` or
        ``empty`` (no value at all).
    number_format
        The Excel number format of its cells (None: General).
    codes
        For each row, the position of its value in ``tails`` (null: an empty cell, not written).
    tails
        For each distinct value, the cell's XML after its ``r="B2`` reference: the closing
        quote, style, type and value, then ``</c>``.
    """

    kind: str
    number_format: str | None
    codes: pa.Array
    tails: pa.Array


def _arrow_text(values: pd.Series) -> pa.Array:
    """The column as one Arrow string array (nulls where the CSV cell was empty)."""
    if not (pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values.dtype)):
        values = values.astype("str")
    array = pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.string()) if array.type != pa.string() else array


def _every(values: pa.Array, pattern: str) -> bool:
    return len(values) > 0 and bool(pc.all(pc.match_substring_regex(values, pattern)).as_py())


def _patterns(distinct: pa.Array) -> dict[str, str]:
    """The RE2 tests for these values: ASCII digits when every value is ASCII (quicker to
    compile), else any Unicode decimal digit, as Python's ``\\d``."""
    if pc.all(pc.string_is_ascii(distinct)).as_py() is not False:
        return {k: v.replace(r"\p{Nd}", "[0-9]") for k, v in _RE2_TESTS.items()}
    return _RE2_TESTS


def _kind(column: str, distinct: pa.Array) -> str:
    """How the present values of a column are stored (the rules of :func:`cell_values`)."""
    if len(distinct) == 0:
        return "empty"
    tests = _patterns(distinct)
    if (column in TEXT_COLUMNS or column.endswith("_id")
            or pc.any(pc.match_substring_regex(distinct, tests["leading_zero"])).as_py()):
        return "text"
    if _every(distinct, tests["number"]):
        return "whole" if _every(distinct, tests["whole"]) else "number"
    if pc.all(pc.is_in(distinct, value_set=pa.array(["True", "False"]))).as_py():
        return "boolean"
    if _every(distinct, tests["date"]):
        return "date"
    return "text"


def _number_format(column: str, kind: str) -> str | None:
    if kind in ("number", "whole"):
        if column in MONEY_COLUMNS or column in CENTS_COLUMNS:
            return _MONEY_FORMAT
        if column in PERCENT_COLUMNS:
            return _PERCENT_FORMAT
        return "#,##0" if kind == "whole" else None
    if kind == "date":
        return "yyyy-mm" if column == "month" else "yyyy-mm-dd"
    return None


def _number_texts(distinct: list[str], whole: bool) -> list[str] | None:
    """Each number as the first workbook writer stored it (``%.16g``: at most 16 significant
    digits), or None when one is not a finite double (``1e999``): such a column stays text."""
    out = []
    for v in distinct:
        try:
            number = int(v) if whole else float(v)
            if not np.isfinite(float(number)):
                return None
        except (OverflowError, ValueError):  # beyond a double, or an integer of over 4,300 digits
            return None
        out.append(f"{number:.16g}")
    return out


def _date_serials(distinct: list[str]) -> list[str] | None:
    """Each ISO date as an Excel day number (1900 date system), or None when one is no date."""
    out = []
    for v in distinct:
        try:
            days = (dt.datetime.fromisoformat(v).date() - _EXCEL_EPOCH).days
        except ValueError:
            return None
        out.append(str(days - 1 if 0 < days <= 60 else days))  # Excel's 1900-02-29
    return out


def _cut(text: str) -> str:
    """``text`` cut to a cell's :data:`MAX_CELL_CHARACTERS` UTF-16 code units, ending in :data:`CUT_NOTE`."""
    if len(text.encode("utf-16-le")) // 2 <= MAX_CELL_CHARACTERS:
        return text
    room = MAX_CELL_CHARACTERS - len(CUT_NOTE)
    keep = text[:room]
    while len(keep.encode("utf-16-le")) // 2 > room:
        keep = keep[: len(keep) - max(1, (len(keep.encode("utf-16-le")) // 2 - room) // 2)]
    return keep + CUT_NOTE


def _cell_texts(distinct: pa.Array) -> pa.Array:
    """Each text as a cell holds it: characters XML forbids left out, cut to a cell's length."""
    text = distinct
    if pc.any(pc.match_substring_regex(text, _RE2_NOT_XML)).as_py():
        text = pc.replace_substring_regex(text, _RE2_NOT_XML, "")
    if pc.any(pc.greater(pc.utf8_length(text), MAX_CELL_CHARACTERS // 2)).as_py():
        text = pa.array([_cut(t) for t in text.to_pylist()], pa.string())
    return text


def _text_elements(distinct: pa.Array) -> tuple[pa.Array, pa.Array]:
    """The ``<t>`` opening (keeping spaces at either end) and the escaped content of each text."""
    text = _cell_texts(distinct)
    opening = pc.if_else(pc.match_substring_regex(text, _XML_SPACE_AT_END), '<t xml:space="preserve">', "<t>")
    for raw, escaped in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        text = pc.replace_substring(text, raw, escaped)
    return opening, text


def _text_tails(distinct: pa.Array, style: int | None = None) -> pa.Array:
    """Inline-string cell XML for each distinct text, in ``style``; without one, text that
    reads as a formula (``-`` alone, kept by the neutraliser) gets the quote-prefix style."""
    opening, text = _text_elements(distinct)
    if style is not None:
        head: object = f'" s="{style}" t="inlineStr"><is>'
    else:
        quoted = pc.and_(pc.match_substring_regex(distinct, _RE2_FORMULA_START),
                         pc.invert(pc.match_substring_regex(distinct, _patterns(distinct)["number"])))
        head = pc.if_else(quoted, f'" s="{_STYLE_QUOTED}" t="inlineStr"><is>', '" t="inlineStr"><is>')
    return pc.binary_join_element_wise(head, opening, text, "</t></is></c>", "")


def _utf8(joined: pa.Array) -> memoryview:
    """The strings of an Arrow string array, one after the other, without a copy."""
    _, offsets, data = joined.buffers()
    if data is None:
        return memoryview(b"")
    bounds = np.frombuffer(offsets, dtype=np.int32)[[joined.offset, joined.offset + len(joined)]]
    return memoryview(data)[int(bounds[0]):int(bounds[1])]


def column_cells(column: str, values: pd.Series | pa.Array) -> ColumnCells:
    """The cells of one CSV column (text as read, neutralised) as sheet XML, column-wise.

    Numbers become numbers, ``True``/``False`` booleans, ISO dates dates, empty cells are not
    written; code and identifier columns, and any column with a leading zero, stay text (the
    rules of :func:`cell_values`, tested on the column's distinct values only). Text that
    reads as a formula (``-`` alone, kept by the neutraliser) gets a quote prefix.

    Parameters
    ----------
    column
        The column's header (its name decides codes, money, percents and months).
    values
        The column as read from the CSV with ``dtype=str`` (missing values NaN), or as an
        Arrow string array (missing values null).
    """
    if not isinstance(values, pa.Array):
        values = _arrow_text(values)
    encoded = pc.dictionary_encode(values)
    distinct, codes = encoded.dictionary, encoded.indices
    kind = _kind(column, distinct)
    number_format = _number_format(column, kind)
    style = _FORMAT_STYLES.get(number_format) if number_format else None
    plain = "" if style is None else f' s="{style}"'
    texts: list[str] | None = None
    if kind in ("number", "whole"):
        texts = _number_texts(distinct.to_pylist(), kind == "whole")
    elif kind == "date":
        texts = _date_serials(distinct.to_pylist())
    if texts is not None:
        tails = pa.array([f'"{plain}><v>{t}</v></c>' for t in texts], pa.string())
    elif kind == "boolean":
        tails = pc.if_else(pc.equal(distinct, "True"), '" t="b"><v>1</v></c>', '" t="b"><v>0</v></c>')
    else:
        kind, number_format = ("empty" if kind == "empty" else "text"), None
        tails = _text_tails(distinct)
    return ColumnCells(kind, number_format, codes, tails)


def cell_values(column: str, values: pd.Series) -> tuple[list[object], str | None]:
    """The cells of one CSV column (text as read) as Python values, and their number format.

    Numbers become floats or ints, ``True``/``False`` booleans, ISO dates datetimes, empty
    cells None; code and identifier columns, and any column with a leading zero, stay text
    (the same decision as :func:`column_cells`, which is what the workbook is written from).
    """
    cells = [None if v is None or v != v else str(v) for v in values.tolist()]
    kind = column_cells(column, values).kind
    if kind in ("number", "whole"):
        numbers = [None if v is None else (int(v) if kind == "whole" else float(v)) for v in cells]
        return numbers, _number_format(column, kind)
    if kind == "boolean":
        return [None if v is None else v == "True" for v in cells], None
    if kind == "date":
        return [None if v is None else dt.datetime.fromisoformat(v) for v in cells], _number_format(column, kind)
    return cells, None


# --------------------------------------------------------------------------- one sheet's XML


def column_letter(position: int) -> str:
    """The letters of a 1-based column position (1 -> ``A``, 28 -> ``AB``)."""
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


_SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
               '<sheetPr><outlinePr summaryBelow="1" summaryRight="1"/><pageSetUpPr/></sheetPr>')
_FROZEN_VIEW = ('<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A1" '
                'sqref="A1"/></sheetView></sheetViews>')
_PLAIN_VIEW = '<sheetViews><sheetView workbookViewId="0"><selection activeCell="A1" sqref="A1"/></sheetView></sheetViews>'
_SHEET_TAIL = '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/></worksheet>'


def _sheet_head(columns: int, rows: int, widths: Sequence[tuple[int, float]], *, frozen: bool) -> str:
    last = f"{column_letter(max(1, columns))}{max(1, rows)}"
    cols = "".join(f'<col min="{j}" max="{j}" width="{w:.16g}" customWidth="1"/>' for j, w in widths)
    return (_SHEET_HEAD + f'<dimension ref="A1:{last}"/>' + (_FROZEN_VIEW if frozen else _PLAIN_VIEW)
            + '<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/>'
            + (f"<cols>{cols}</cols>" if cols else "") + "<sheetData>")


def _sheet_end(columns: int, rows: int) -> str:
    if not columns:
        return "</sheetData>" + _SHEET_TAIL
    return f'</sheetData><autoFilter ref="{_filter_range(columns, rows)}"/>' + _SHEET_TAIL


def _filter_range(columns: int, rows: int) -> str:
    return f"A1:{column_letter(columns)}{max(1, rows)}"


def _header_row(headers: Sequence[str]) -> str:
    tails = _text_tails(pa.array(list(headers), pa.string()), _STYLE_BOLD).to_pylist()
    return '<row r="1">' + "".join(f'<c r="{column_letter(j)}1{t}' for j, t in enumerate(tails, 1)) + "</row>"


def _row_pieces(cells: Sequence[ColumnCells], first: int, rows: int) -> Iterator[memoryview]:
    """The ``<row>`` elements of the table's rows ``first`` to ``first + rows - 1`` (0-based),
    on sheet rows 2 onwards, as UTF-8 pieces of at most :data:`_ROWS_PER_PIECE` rows (fewer
    when the longest cells would make a piece pass 1 GiB, within Arrow's 32-bit offsets)."""
    written = [(j, column) for j, column in enumerate(cells, start=1) if column.kind != "empty"]
    widest = sum((pc.max(pc.binary_length(c.tails)).as_py() or 0) + 16 for _, c in written) + 32
    step = max(1, min(_ROWS_PER_PIECE, 2**30 // widest))
    for start in range(0, rows, step):
        length = min(step, rows - start)
        numbers = pa.array(np.arange(start + 2, start + 2 + length), pa.int64()).cast(pa.string())
        parts: list[object] = ['<row r="', numbers, '">']
        for j, column in written:
            tails = pc.take(column.tails, column.codes.slice(first + start, length))
            parts.append(pc.binary_join_element_wise(f'<c r="{column_letter(j)}', numbers, tails, ""))
        parts.append("</row>")
        yield _utf8(pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement=""))


def column_width(header: str, values: pa.Array) -> int:
    """A column's width in characters: its header or longest of its first 200 values, plus 2,
    between 8 and 60."""
    longest = pc.max(pc.utf8_length(values.drop_null().slice(0, 200))).as_py() or 0
    return min(60, max(8, max(len(header), longest) + 2))


# --------------------------------------------------------------------------- the workbook's parts

_CONTENT_TYPES_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
    '<Override PartName="/xl/theme/theme1.xml" ContentType="application/vnd.openxmlformats-officedocument.theme+xml"/>'
    '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>')
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    f'<Relationship Id="rId3" Type="{_RELS}/extended-properties" Target="docProps/app.xml"/></Relationships>')
_APP_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>massage-billing-analytics</Application></Properties>")
_CORE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>massage-billing-analytics</dc:creator>'
    f'<dcterms:created xsi:type="dcterms:W3CDTF">{_FIXED:%Y-%m-%dT%H:%M:%SZ}</dcterms:created>'
    f'<dcterms:modified xsi:type="dcterms:W3CDTF">{_FIXED:%Y-%m-%dT%H:%M:%SZ}</dcterms:modified></cp:coreProperties>')
# cellXfs: 0 General, 1 bold header, 2 money, 3 whole number, 4 percent, 5 month, 6 date,
# 7 text with a quote prefix (shown as typed, never run)
_STYLES_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="4"><numFmt numFmtId="164" formatCode="&quot;$&quot;#,##0.00"/>'
    '<numFmt numFmtId="165" formatCode="0.0%"/><numFmt numFmtId="166" formatCode="yyyy-mm"/>'
    '<numFmt numFmtId="167" formatCode="yyyy-mm-dd"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/>'
    '<scheme val="minor"/></font><font><b val="1"/></font></fonts>'
    '<fills count="2"><fill><patternFill/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="8"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    + "".join(f'<xf numFmtId="{n}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
              for n in (164, 3, 165, 166, 167))
    + '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" quotePrefix="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '<dxfs count="0"/><tableStyles count="0" defaultTableStyle="TableStyleMedium9" '
    'defaultPivotStyle="PivotStyleLight16"/></styleSheet>')


def _theme_xml() -> str:
    from openpyxl.writer.theme import theme_xml  # the standard Office theme the fonts refer to

    return theme_xml


def _workbook_xml(sheets: Sequence[tuple[str, int, int]]) -> str:
    """``xl/workbook.xml``: the sheets in order, and each table sheet's filter range."""
    listed = "".join(f'<sheet name="{_attribute(name)}" sheetId="{i}" r:id="rId{i}"/>'
                     for i, (name, _, _) in enumerate(sheets, start=1))
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
        f"{xml_text(_quoted(name))}!{_absolute(_filter_range(columns, rows))}</definedName>"
        for i, (name, columns, rows) in enumerate(sheets) if i and columns)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="{_RELS}">'
            '<workbookPr/><bookViews><workbookView activeTab="0"/></bookViews>'
            f"<sheets>{listed}</sheets>" + (f"<definedNames>{filters}</definedNames>" if filters else "")
            + '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>')


def _workbook_rels(count: int) -> str:
    sheets = "".join(f'<Relationship Id="rId{i}" Type="{_RELS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
                     for i in range(1, count + 1))
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' + sheets
            + f'<Relationship Id="rId{count + 1}" Type="{_RELS}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId{count + 2}" Type="{_RELS}/theme" Target="theme/theme1.xml"/></Relationships>')


def _content_types(count: int) -> str:
    return (_CONTENT_TYPES_HEAD + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_SHEET_TYPE}"/>'
                                          for i in range(1, count + 1)) + "</Types>")


def _attribute(text: str) -> str:
    return xml_text(text).replace('"', "&quot;")


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _absolute(cells: str) -> str:
    return re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", cells)


def _contents_sheet(rows: Sequence[tuple[str, str, str, str, int]]) -> str:
    """The ``Contents`` sheet: one row per sheet (name, report, table, CSV file, rows)."""
    header = _header_row(["Sheet", "Report", "Table", "CSV file", "Rows"])
    body = "".join(
        f'<row r="{i}">' + "".join(f'<c r="{column_letter(j)}{i}" t="inlineStr"><is>{_inline(v)}</is></c>'
                                   for j, v in enumerate(texts, start=1))
        + f'<c r="E{i}"><v>{count}</v></c></row>'
        for i, (*texts, count) in enumerate(rows, start=2))
    return (_sheet_head(5, len(rows) + 1, [(1, 34), (4, 44)], frozen=False) + header + body
            + "</sheetData>" + _SHEET_TAIL)


def _inline(text: str) -> str:
    space = ' xml:space="preserve"' if re.search(_XML_SPACE_AT_END, text) else ""
    return f"<t{space}>{xml_text(_cut(text))}</t>"


# --------------------------------------------------------------------------- reading and writing


def _tables(run_dir: Path, reports: Sequence[str]) -> list[tuple[str, str, Path]]:
    found = []
    for report in reports:
        folder = run_dir / report / "tables"
        if folder.is_dir():
            found += [(report, p.stem, p) for p in sorted(folder.glob("*.csv"))]
    return found


def read_table(csv: Path) -> pd.DataFrame:
    """A saved table as its text (``dtype=str``, empty cells missing), formula-like text
    neutralised as in the CSV tables (:func:`analytics._files.neutralise_cells`); a file
    without even a header row is a table without columns."""
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    # only the columns holding a value that may start a formula go through the neutraliser
    risky = [j for j, (_, values) in enumerate(frame.items()) if _may_run(_arrow_text(values))]
    out = frame
    if risky:
        safe = neutralise_cells(frame.iloc[:, risky])
        out = frame.copy()
        for k, j in enumerate(risky):
            out.isetitem(j, safe.iloc[:, k])
    if any(str(c).startswith(FORMULA_STARTS) for c in frame.columns):
        out = out.set_axis(neutralise_cells(pd.DataFrame(columns=frame.columns)).columns, axis="columns")
    return out


def _may_run(values: pa.Array) -> bool:
    """True when a value starts like a formula and is neither a plain number nor ``-``."""
    starts = pc.match_substring_regex(values, _RE2_FORMULA_START)
    if not pc.any(starts).as_py():
        return False
    plain = pc.or_(pc.match_substring_regex(values, _RE2_ASCII_NUMBER), pc.equal(values, "-"))
    return bool(pc.any(pc.and_(starts, pc.invert(plain))).as_py())


def _sheet_parts(report: str, table: str, rows: int, taken: set[str]) -> list[tuple[str, int, int]]:
    """(sheet name, first row, rows) for each sheet of a table: one, unless it is longer than
    a sheet holds."""
    per_sheet = MAX_SHEET_ROWS - 1
    starts = range(0, max(rows, 1), per_sheet)
    return [(sheet_name(report, table if k == 0 else f"{table} part {k + 1}", taken), start,
             min(per_sheet, rows - start)) for k, start in enumerate(starts)]


def _entry(book: zipfile.ZipFile, name: str, pieces: Sequence[object] | Iterator[object], *,
           large: bool = False) -> None:
    """Add one part to the zip, streamed piece by piece (a new entry is dated 1980-01-01, so
    the same content gives the same bytes)."""
    with book.open(name, "w", force_zip64=large) as out:
        for piece in pieces:
            out.write(piece.encode("utf-8") if isinstance(piece, str) else piece)


def write_workbook(run_dir: str | os.PathLike[str], reports: Sequence[str],
                   path: str | os.PathLike[str]) -> Path | None:
    """Write the CSV tables the ``reports`` of a run saved into one workbook at ``path``.

    Returns the path, or None when the reports saved no table.

    Raises
    ------
    InputError
        A table with more columns than a sheet holds (16,384).
    """
    run_dir = Path(run_dir)
    tables = _tables(run_dir, reports)
    if not tables:
        return None
    buffer = io.BytesIO()
    sheets: list[tuple[str, int, int]] = [("Contents", 5, 0)]
    contents: list[tuple[str, str, str, str, int]] = []
    taken = {"Contents"}
    # deflate level 1: a third of level 6's time on sheet XML, for a file about a quarter larger
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        _entry(book, "docProps/app.xml", [_APP_XML])
        _entry(book, "docProps/core.xml", [_CORE_XML])
        _entry(book, "xl/theme/theme1.xml", [_theme_xml()])
        _entry(book, "xl/styles.xml", [_STYLES_XML])
        for report, table, csv in tables:
            frame = read_table(csv)
            if frame.shape[1] > MAX_SHEET_COLUMNS:
                raise InputError(f"{csv}: {frame.shape[1]:,} columns, more than the {MAX_SHEET_COLUMNS:,} a "
                                 "spreadsheet sheet holds, so tables.xlsx is not written; the table is whole "
                                 "in its CSV file: open that instead", where=str(csv))
            headers = [str(c) for c in frame.columns]
            columns = [_arrow_text(values) for _, values in frame.items()]
            cells = [column_cells(h, v) for h, v in zip(headers, columns, strict=True)]
            widths = [(j, column_width(h, v)) for j, (h, v) in enumerate(zip(headers, columns, strict=True), start=1)]
            large = csv.stat().st_size > 32 * 2**20
            for name, first, rows in _sheet_parts(report, table, len(frame), taken):
                sheets.append((name, len(headers), rows + 1))
                contents.append((name, report, table, f"tables/{report}/{csv.name}", rows))
                head = _sheet_head(len(headers), rows + 1, widths, frozen=True) + (
                    _header_row(headers) if headers else "")
                body = _row_pieces(cells, first, rows)
                _entry(book, f"xl/worksheets/sheet{len(sheets)}.xml",
                       _chain(head, body, _sheet_end(len(headers), rows + 1)), large=large)
        _entry(book, "xl/worksheets/sheet1.xml", [_contents_sheet(contents)])
        _entry(book, "xl/workbook.xml", [_workbook_xml(sheets)])
        _entry(book, "xl/_rels/workbook.xml.rels", [_workbook_rels(len(sheets))])
        _entry(book, "_rels/.rels", [_PACKAGE_RELS])
        _entry(book, "[Content_Types].xml", [_content_types(len(sheets))])
        for entry in book.infolist():
            entry.external_attr = 0o644 << 16  # readable by all once unzipped
    return atomic_write(Path(path), buffer.getvalue())


def _chain(head: str, body: Iterator[memoryview], end: str) -> Iterator[object]:
    yield head
    yield from body
    yield end
