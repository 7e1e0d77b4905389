"""One spreadsheet per report run: every saved table as a sheet of ``tables.xlsx``.

A run saves each table of its pages as CSV (``tables/<report>/<name>.csv``, see
:func:`analytics.plots.save_table`). :func:`write_workbook` gathers them into one Excel
workbook: a ``Contents`` sheet listing each sheet with its report, table and CSV path, then
one sheet per table with its header row frozen and filtered.

* Numbers are stored as numbers: dollar columns with a ``$#,##0.00`` format, rates and
  shares as percents (``0.0%``), counts as whole numbers; dates (``YYYY-MM-DD``) as dates.
* Codes and identifiers stay text whatever they look like: CPT codes (``97140``), CARCs,
  claim numbers, NPIs, localities, and any value with a leading zero.
* Text that a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, a tab
  or a carriage return) is neutralised as in the CSV tables (a leading ``'``,
  :func:`analytics._files.neutralise_cells`), and every text cell is stored as text, never as
  a formula, so opening the file runs nothing (CSV/formula injection, OWASP).

The same tables give the same bytes: the workbook's dates and the zip entries' times are
fixed.

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
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analytics._files import FORMULA_STARTS, atomic_write, neutralise_cells
from analytics.plots import CENTS_COLUMNS, MONEY_COLUMNS, PERCENT_COLUMNS

__all__ = ["write_workbook", "sheet_name", "cell_values", "TEXT_COLUMNS", "formula_like"]

#: Columns kept as text whatever their values look like (codes and identifiers).
TEXT_COLUMNS = frozenset({
    "cpt", "code", "codes", "carc", "rarc", "group_code", "modifiers", "claim_id", "payer_claim_id", "line_id",
    "npi", "locality", "locality_id", "payer_id", "provider_id", "figure", "label", "unit", "reason", "category",
})
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIXED = dt.datetime(2000, 1, 1)
_MONEY_FORMAT = '"$"#,##0.00'
_PERCENT_FORMAT = "0.0%"


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


_WHOLE = re.compile(r"^[+-]?\d+$")
_LEADING_ZERO = re.compile(r"^0\d")


def cell_values(column: str, values: pd.Series) -> tuple[list[object], str | None]:
    """The cells of one CSV column (text as read) and the number format for them.

    Numbers become floats or ints, ``True``/``False`` booleans, ISO dates dates, empty
    cells None; code and identifier columns, and any column with a leading zero, stay text.
    (A report's tables are small: plain Python over the values is quicker here than a
    pandas string operation per test.)
    """
    cells = [None if v is None or v != v else str(v) for v in values.tolist()]
    present = [v for v in cells if v is not None]
    if column in TEXT_COLUMNS or column.endswith("_id") or any(_LEADING_ZERO.match(v) for v in present):
        return cells, None
    if present and all(_NUMBER.match(v) for v in present):
        whole = all(_WHOLE.match(v) for v in present)
        numbers = [None if v is None else (int(v) if whole else float(v)) for v in cells]
        if column in MONEY_COLUMNS or column in CENTS_COLUMNS:
            return numbers, _MONEY_FORMAT
        if column in PERCENT_COLUMNS:
            return numbers, _PERCENT_FORMAT
        return numbers, "#,##0" if whole else None
    if present and all(v in ("True", "False") for v in present):
        return [None if v is None else v == "True" for v in cells], None
    if present and all(_DATE.match(v) for v in present):
        fmt = "yyyy-mm" if column == "month" else "yyyy-mm-dd"
        return [None if v is None else dt.datetime.fromisoformat(v) for v in cells], fmt
    return cells, None


def _neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with formula-like text neutralised as the CSV tables are (when any is there)."""
    values = frame.to_numpy(dtype=object).ravel().tolist() + [str(c) for c in frame.columns]
    if any(isinstance(v, str) and v.startswith(FORMULA_STARTS) for v in values):
        return neutralise_cells(frame)
    return frame


def _tables(run_dir: Path, reports: Sequence[str]) -> list[tuple[str, str, Path]]:
    found = []
    for report in reports:
        folder = run_dir / report / "tables"
        if folder.is_dir():
            found += [(report, p.stem, p) for p in sorted(folder.glob("*.csv"))]
    return found


def write_workbook(run_dir: str | os.PathLike[str], reports: Sequence[str],
                   path: str | os.PathLike[str]) -> Path | None:
    """Write the CSV tables the ``reports`` of a run saved into one workbook at ``path``.

    Returns the path, or None when the reports saved no table.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    run_dir = Path(run_dir)
    tables = _tables(run_dir, reports)
    if not tables:
        return None
    wb = Workbook()
    contents = wb.active
    contents.title = "Contents"
    contents.append(["Sheet", "Report", "Table", "CSV file", "Rows"])
    taken = {"Contents"}
    bold = Font(bold=True)
    for report, table, csv in tables:
        frame = _neutralised(pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""]))
        name = sheet_name(report, table, taken)
        contents.append([name, report, table, f"tables/{report}/{csv.name}", len(frame)])
        ws = wb.create_sheet(name)
        ws.append([str(c) for c in frame.columns])
        for cell in ws[1]:
            cell.font = bold
        for j, column in enumerate(frame.columns, start=1):
            cells, number_format = cell_values(str(column), frame[column])
            for i, value in enumerate(cells, start=2):
                cell = ws.cell(row=i, column=j)
                if isinstance(value, str):
                    cell.value = value
                    cell.data_type = "s"  # never a formula, whatever the text
                    if formula_like(value):
                        cell.quotePrefix = True
                else:
                    cell.value = value
                    if number_format and value is not None:
                        cell.number_format = number_format
            width = max([len(str(column))] + [len(str(v)) for v in frame[column].dropna().head(200)])
            ws.column_dimensions[get_column_letter(j)].width = min(60, max(8, width + 2))
        ws.freeze_panes = "A2"
        if len(frame.columns):
            ws.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{max(1, len(frame) + 1)}"
    for cell in contents[1]:
        cell.font = bold
    contents.column_dimensions["A"].width = 34
    contents.column_dimensions["D"].width = 44
    wb.properties.creator = "massage-billing-analytics"
    wb.properties.created = wb.properties.modified = _FIXED
    buf = io.BytesIO()
    wb.save(buf)
    return atomic_write(Path(path), _fixed_zip(buf.getvalue()))


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with every entry dated 1980-01-01 and the core properties' dates fixed."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dest:
        for info in src.infolist():
            raw = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                raw = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2000-01-01T00:00:00Z", raw)
            entry = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dest.writestr(entry, raw)
    return out.getvalue()
