"""The run's spreadsheet (``tables.xlsx``) written as SpreadsheetML directly, column-wise.

Every sheet is compared, read back with openpyxl, with what the former writer made (openpyxl,
cell by cell; kept below as :func:`reference_write_workbook`): the sample's tables
(``tests/data/workbook_run``, the tables a ``report all`` of ``data/sample`` saved) and tables
of edge cases. Where the two differ on purpose (control characters, a carriage return, text
longer than a cell, a table longer than a sheet), the test says why.

Excel's limits quoted here are Microsoft's "Excel specifications and limits": 1,048,576 rows
by 16,384 columns a sheet, 32,767 characters a cell.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from analytics import workbook
from analytics._files import FORMULA_STARTS, atomic_write, neutralise_cells
from analytics.plots import CENTS_COLUMNS, MONEY_COLUMNS, PERCENT_COLUMNS, save_table

openpyxl = pytest.importorskip("openpyxl")

SAMPLE_RUN = Path(__file__).parent / "data" / "workbook_run"
REPORTS = ["revenue", "denials", "denial_risk", "scenarios", "contracts"]


# --- the former writer, kept as the reference (analytics/workbook.py before it wrote XML itself) ---

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WHOLE = re.compile(r"^[+-]?\d+$")
_LEADING_ZERO = re.compile(r"^0\d")
_FIXED = dt.datetime(2000, 1, 1)


def reference_formula_like(text: str) -> bool:
    return bool(text) and text.startswith(FORMULA_STARTS) and not _NUMBER.match(text)


def reference_cell_values(column: str, values: pd.Series) -> tuple[list[object], str | None]:
    cells = [None if v is None or v != v else str(v) for v in values.tolist()]
    present = [v for v in cells if v is not None]
    if column in workbook.TEXT_COLUMNS or column.endswith("_id") or any(_LEADING_ZERO.match(v) for v in present):
        return cells, None
    if present and all(_NUMBER.match(v) for v in present):
        whole = all(_WHOLE.match(v) for v in present)
        numbers = [None if v is None else (int(v) if whole else float(v)) for v in cells]
        if column in MONEY_COLUMNS or column in CENTS_COLUMNS:
            return numbers, '"$"#,##0.00'
        if column in PERCENT_COLUMNS:
            return numbers, "0.0%"
        return numbers, "#,##0" if whole else None
    if present and all(v in ("True", "False") for v in present):
        return [None if v is None else v == "True" for v in cells], None
    if present and all(_DATE.match(v) for v in present):
        fmt = "yyyy-mm" if column == "month" else "yyyy-mm-dd"
        return [None if v is None else dt.datetime.fromisoformat(v) for v in cells], fmt
    return cells, None


def _reference_neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    values = frame.to_numpy(dtype=object).ravel().tolist() + [str(c) for c in frame.columns]
    if any(isinstance(v, str) and v.startswith(FORMULA_STARTS) for v in values):
        return neutralise_cells(frame)
    return frame


def reference_write_workbook(run_dir, reports, path):
    """The former ``write_workbook``, verbatim but for the helpers' names."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    run_dir = Path(run_dir)
    tables = []
    for report in reports:
        folder = run_dir / report / "tables"
        if folder.is_dir():
            tables += [(report, p.stem, p) for p in sorted(folder.glob("*.csv"))]
    if not tables:
        return None
    wb = Workbook()
    contents = wb.active
    contents.title = "Contents"
    contents.append(["Sheet", "Report", "Table", "CSV file", "Rows"])
    taken = {"Contents"}
    bold = Font(bold=True)
    for report, table, csv in tables:
        frame = _reference_neutralised(pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""]))
        name = workbook.sheet_name(report, table, taken)
        contents.append([name, report, table, f"tables/{report}/{csv.name}", len(frame)])
        ws = wb.create_sheet(name)
        ws.append([str(c) for c in frame.columns])
        for cell in ws[1]:
            cell.font = bold
        for j, column in enumerate(frame.columns, start=1):
            cells, number_format = reference_cell_values(str(column), frame[column])
            for i, value in enumerate(cells, start=2):
                cell = ws.cell(row=i, column=j)
                if isinstance(value, str):
                    cell.value = value
                    cell.data_type = "s"  # never a formula, whatever the text
                    if reference_formula_like(value):
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
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
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
    return atomic_write(Path(path), out.getvalue())


# --- what a reader sees ---------------------------------------------------------------------------


def snapshot(path: Path) -> dict:
    """Everything openpyxl reads of a workbook that the writer decides: sheets in order, and per
    sheet every written cell (value, type, number format, bold, font, quote prefix), frozen
    panes, filter, column widths, size; the document's author and dates."""
    book = openpyxl.load_workbook(path)
    seen: dict = {"sheets": book.sheetnames, "creator": book.properties.creator,
                  "created": book.properties.created, "modified": book.properties.modified}
    for ws in book.worksheets:
        cells = {c.coordinate: (c.value, c.data_type, c.number_format, c.font.b, c.font.name, c.font.sz,
                                c.quotePrefix)
                 for row in ws.iter_rows() for c in row if c.value is not None or c.has_style}
        widths = {k: (d.width, d.customWidth, d.min, d.max) for k, d in ws.column_dimensions.items()}
        seen[ws.title] = {"cells": cells, "frozen": ws.freeze_panes, "filter": ws.auto_filter.ref,
                          "widths": widths, "size": (ws.max_row, ws.max_column), "dimension": ws.calculate_dimension()}
    return seen


def assert_same_workbook(new: Path, reference: Path) -> None:
    a, b = snapshot(new), snapshot(reference)
    assert a["sheets"] == b["sheets"]
    for key in b:
        if isinstance(b[key], dict):
            for part in b[key]:
                if part == "cells":
                    differing = {c: (a[key]["cells"].get(c), b[key]["cells"].get(c))
                                 for c in set(a[key]["cells"]) | set(b[key]["cells"])
                                 if a[key]["cells"].get(c) != b[key]["cells"].get(c)}
                    assert not differing, (key, sorted(differing.items())[:5])
                else:
                    assert a[key][part] == b[key][part], (key, part)
        else:
            assert a[key] == b[key], key


def write_run(folder: Path, tables: dict[str, pd.DataFrame], report: str = "revenue") -> Path:
    """Save ``tables`` as a report's CSV tables the way a page does (:func:`analytics.plots.save_table`)."""
    for name, frame in tables.items():
        save_table(frame, name, folder / report)
    return folder


# --- the sample's tables ------------------------------------------------------------------------


def test_the_sample_tables_read_back_as_the_former_writer_wrote_them(tmp_path):
    new = workbook.write_workbook(SAMPLE_RUN, REPORTS, tmp_path / "new.xlsx")
    reference = reference_write_workbook(SAMPLE_RUN, REPORTS, tmp_path / "reference.xlsx")
    assert_same_workbook(new, reference)
    book = openpyxl.load_workbook(new)
    assert len(book.sheetnames) == 1 + len(list(SAMPLE_RUN.rglob("*.csv")))
    by_payer = book["revenue by_payer"]
    heads = [c.value for c in by_payer[1]]
    assert all(c.font.b for c in by_payer[1]) and by_payer.freeze_panes == "A2"
    assert by_payer.cell(row=2, column=heads.index("charges") + 1).number_format == '"$"#,##0.00'
    assert by_payer.cell(row=2, column=heads.index("denial_rate") + 1).number_format == "0.0%"
    codes = book["revenue paid_per_unit"]
    cpt = [c.value for c in codes[1]].index("cpt") + 1
    assert all(re.fullmatch(r"97\d{3}", codes.cell(row=i, column=cpt).value) for i in range(2, codes.max_row + 1))


def test_the_same_tables_give_the_same_bytes_wherever_the_run_is(tmp_path):
    shutil.copytree(SAMPLE_RUN, tmp_path / "elsewhere")
    first = workbook.write_workbook(SAMPLE_RUN, REPORTS, tmp_path / "a.xlsx").read_bytes()
    second = workbook.write_workbook(tmp_path / "elsewhere", REPORTS, tmp_path / "b.xlsx").read_bytes()
    assert first == second
    for info in zipfile.ZipFile(tmp_path / "a.xlsx").infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0) and info.external_attr == 0o644 << 16


def test_no_tables_no_workbook(tmp_path):
    assert workbook.write_workbook(tmp_path, REPORTS, tmp_path / "t.xlsx") is None
    assert not (tmp_path / "t.xlsx").exists()


# --- edge cases -----------------------------------------------------------------------------------

EDGE = {
    "mixed": pd.DataFrame({
        "claim_id": ["=1+1", "+", "-", "@SUM(A1)", "00123"],
        "payer": ["A & B <Health> \"PPO\" 'x'", " leading space", "trailing space ", "tab\tinside", "ünïcödé 医保 🙂"],
        "note": ["-", "-12.50", "+5", "line\nbreak", None],
        "charges": [100.5, -3.0, None, 1e-7, 12345678.9],
        "denial_rate": [0.25, None, 0.1, 1.0, 0.0],
        "lines": [3, 4, 5, 6, 7],
        "big": [2**53 + 1, 2**63 - 1, 10**20, -(2**60), 0],
        "service_date": ["2025-01-01", "1900-01-01", "1900-03-01", None, "2026-02-28"],
        "month": ["2025-10-01"] * 5,
        "flag": [True, False, None, True, False],
        "empty": [None] * 5,
        "ratio": [1.0, 2.0, 0.30000000000000004, 1 / 3, None],
        "zip": ["02134", "10001", None, "94105", "00501"],
        "long": ["x" * 5000, "y", None, "z" * 300, "w"],
        "=header": ["a", "b", "c", "d", "e"],
    }),
    "header_only": pd.DataFrame({"claim_id": pd.Series([], dtype=str), "paid": pd.Series([], dtype=float)}),
    "numbers_as_text": pd.DataFrame({"value": ["1e3", ".5", "-0", "+7", "3."]}),
}


def test_edge_cases_read_back_as_the_former_writer_wrote_them(tmp_path):
    run = write_run(tmp_path / "run", EDGE)
    new = workbook.write_workbook(run, ["revenue"], tmp_path / "new.xlsx")
    assert_same_workbook(new, reference_write_workbook(run, ["revenue"], tmp_path / "reference.xlsx"))
    ws = openpyxl.load_workbook(new)["revenue mixed"]
    heads = [c.value for c in ws[1]]

    def column(name):
        j = heads.index(name) + 1
        return [ws.cell(row=i, column=j) for i in range(2, 7)]

    assert heads[-1] == "'=header"
    assert [c.value for c in column("claim_id")] == ["'=1+1", "'+", "-", "'@SUM(A1)", "00123"]
    assert [c.quotePrefix for c in column("claim_id")] == [False, False, True, False, False]
    assert all(c.data_type == "s" for c in column("claim_id"))
    assert column("payer")[0].value == "A & B <Health> \"PPO\" 'x'" and column("payer")[1].value == " leading space"
    assert column("payer")[4].value == "ünïcödé 医保 🙂"
    assert column("flag")[0].value is True and column("flag")[2].value is None
    assert column("lines")[0].number_format == "#,##0"
    assert column("month")[0].number_format == "yyyy-mm"
    assert column("service_date")[0].value == dt.datetime(2025, 1, 1)
    assert column("zip")[0].value == "02134"  # a leading zero keeps the column text
    sheets = [n for n in zipfile.ZipFile(new).namelist() if n.startswith("xl/worksheets/")]
    assert not any(b"<f>" in zipfile.ZipFile(new).read(n) for n in sheets)  # never a formula


def test_excel_day_numbers_and_number_text(tmp_path):
    """Excel's 1900 date system counts 1900-01-01 as day 1 and keeps the 1900-02-29 Lotus bug, so
    2025-01-01 is day 45658 and 1900-03-01 day 61 (Microsoft, "DATEVALUE function"; "Excel
    incorrectly assumes that the year 1900 is a leap year"). Numbers are stored as the former
    writer stored them (``%.16g``): a whole float as a whole number."""
    run = write_run(tmp_path, {"t": pd.DataFrame({"service_date": ["2025-01-01", "1900-01-01", "1900-03-01"],
                                                  "ratio": [3.0, 0.1, 0.30000000000000004]})})
    workbook.write_workbook(run, ["revenue"], tmp_path / "t.xlsx")
    sheet = zipfile.ZipFile(tmp_path / "t.xlsx").read("xl/worksheets/sheet2.xml").decode()
    assert re.findall(r'<c r="A\d+" s="\d+"><v>([^<]*)</v>', sheet) == ["45658", "1", "61"]
    assert re.findall(r'<c r="B\d+"><v>([^<]*)</v>', sheet) == ["3", "0.1", "0.3"]


def test_characters_xml_forbids_are_left_out_and_a_carriage_return_kept(tmp_path):
    """XML 1.0 allows no control character but tab, line feed and carriage return (W3C XML 1.0,
    section 2.2 "Characters"): the former writer failed on them (openpyxl raises), this one
    leaves them out of the cell. A carriage return is written ``&#13;``: a bare one would be read
    back as a line feed (XML end-of-line handling, section 2.11), as the former writer's was."""
    frame = pd.DataFrame({"note": ["bell\x07here", "nul\x00", "cr\rinside", "ok\ufffe"]})
    run = write_run(tmp_path, {"t": frame})
    with pytest.raises(Exception, match="cannot be used in worksheets"):
        reference_write_workbook(run, ["revenue"], tmp_path / "reference.xlsx")
    workbook.write_workbook(run, ["revenue"], tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["revenue t"]
    assert [ws.cell(row=i, column=1).value for i in range(2, 6)] == ["bellhere", "nul", "cr\rinside", "ok"]


def test_text_longer_than_a_cell_is_cut_with_a_note(tmp_path):
    """An Excel cell holds 32,767 characters; a longer one makes Excel repair the file."""
    emoji = "🙂" * 20_000  # 2 UTF-16 code units each: 40,000 units
    frame = pd.DataFrame({"note": ["a" * 40_000, "b" * 32_767, emoji]})
    run = write_run(tmp_path, {"t": frame})
    workbook.write_workbook(run, ["revenue"], tmp_path / "t.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["revenue t"]
    cut, whole, wide = (ws.cell(row=i, column=1).value for i in range(2, 5))
    assert whole == "b" * 32_767
    assert cut.endswith(workbook.CUT_NOTE) and len(cut) == 32_767 and cut.startswith("a" * 30_000)
    assert wide.endswith(workbook.CUT_NOTE) and len(wide.encode("utf-16-le")) // 2 <= 32_767
    assert len(wide.encode("utf-16-le")) // 2 >= 32_767 - 1  # no more cut than a character


def test_a_table_longer_than_a_sheet_goes_on_over_part_sheets(tmp_path, monkeypatch):
    monkeypatch.setattr(workbook, "MAX_SHEET_ROWS", 4)  # 3 data rows a sheet
    monkeypatch.setattr(workbook, "_ROWS_PER_PIECE", 2)  # and rows joined two at a time
    frame = pd.DataFrame({"claim_id": [f"C{i}" for i in range(8)], "paid": np.arange(8) * 1.5})
    run = write_run(tmp_path, {"t": frame, "u": frame.head(2)})
    workbook.write_workbook(run, ["revenue"], tmp_path / "t.xlsx")
    book = openpyxl.load_workbook(tmp_path / "t.xlsx")
    assert book.sheetnames == ["Contents", "revenue t", "revenue t part 2", "revenue t part 3", "revenue u"]
    contents = list(book["Contents"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2], r[4]) for r in contents] == [
        ("revenue t", "t", 3), ("revenue t part 2", "t", 3), ("revenue t part 3", "t", 2), ("revenue u", "u", 2)]
    rows = [r for name in book.sheetnames[1:4] for r in book[name].iter_rows(min_row=2, values_only=True)]
    assert rows == list(frame.itertuples(index=False, name=None))  # every row, once, in order
    assert [book[n].auto_filter.ref for n in book.sheetnames[1:]] == ["A1:B4", "A1:B4", "A1:B3", "A1:B3"]
    assert all([c.value for c in book[n][1]] == ["claim_id", "paid"] for n in book.sheetnames[1:])


def test_an_empty_csv_file_is_a_sheet_without_columns(tmp_path):
    (tmp_path / "revenue" / "tables").mkdir(parents=True)
    (tmp_path / "revenue" / "tables" / "blank.csv").write_text("")
    workbook.write_workbook(tmp_path, ["revenue"], tmp_path / "t.xlsx")
    book = openpyxl.load_workbook(tmp_path / "t.xlsx")
    assert book.sheetnames == ["Contents", "revenue blank"]
    assert list(book["Contents"].iter_rows(min_row=2, values_only=True)) == [
        ("revenue blank", "revenue", "blank", "tables/revenue/blank.csv", 0)]


# --- the file as a whole --------------------------------------------------------------------------


def test_every_part_is_well_formed_xml_and_declared(tmp_path):
    path = workbook.write_workbook(SAMPLE_RUN, REPORTS, tmp_path / "t.xlsx")
    book = zipfile.ZipFile(path)
    names = book.namelist()
    for name in names:
        ElementTree.fromstring(book.read(name))  # raises on malformed XML
    types = book.read("[Content_Types].xml").decode()
    for name in names:
        if name.endswith(".xml") and name != "[Content_Types].xml":
            assert f'PartName="/{name}"' in types, name
    rels = book.read("xl/_rels/workbook.xml.rels").decode()
    assert all(f'Target="{n.removeprefix("xl/")}"' in rels for n in names if n.startswith("xl/worksheets/"))


@pytest.mark.skipif(shutil.which("soffice") is None and shutil.which("libreoffice") is None,
                    reason="LibreOffice is not installed")
def test_libreoffice_opens_the_workbook(tmp_path):
    run = write_run(tmp_path / "run", EDGE)
    path = workbook.write_workbook(run, ["revenue"], tmp_path / "t.xlsx")
    office = shutil.which("soffice") or shutil.which("libreoffice")
    subprocess.run([office, "--headless", "--convert-to", "ods", "--outdir", str(tmp_path), str(path)],
                   check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert (tmp_path / "t.ods").stat().st_size > 0


# --- one column's cells -----------------------------------------------------------------------------

ODD_VALUES = ["1", "-2", "+3", "4.5", ".5", "5.", "1e3", "1E-2", "-0", "007", "0.5", "True", "False",
              "2025-01-31", "2025-13-45", "12\n", "٣", "٣.٥", "١٢٣", "2025-01-01\n", "1e999", "abc", "-", "",
              "9" * 30, "  7", "7 "]


@pytest.mark.parametrize("seed", range(40))
def test_a_columns_cells_are_decided_as_the_former_writer_decided(seed):
    """Random columns of odd values: the same kind, Python values and number format as before
    (Unicode digits and a final line feed included, which Python's ``re`` counts as digits and
    end of text), except where the former writer failed: a date that is no date, a number that is
    not finite, stay text."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 6))
    names = ["value", "charges", "denial_rate", "month", "cpt", "payer_id", "lines"]
    column = names[seed % len(names)]
    picks = rng.choice(ODD_VALUES, size=size)
    values = pd.Series([None if v == "" else v for v in picks], dtype="str")
    new = workbook.cell_values(column, values)
    try:
        expected = reference_cell_values(column, values)
        finite = all(not isinstance(v, float) or np.isfinite(v) for v in expected[0])
    except ValueError:  # the former writer failed on this column (a date that is no date)
        expected, finite = None, False
    if expected is not None and finite:
        assert new == expected
    else:
        assert new == ([None if v != v else v for v in values.tolist()], None)  # kept as text
