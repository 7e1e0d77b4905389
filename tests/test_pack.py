"""The client pack and the printed pages: page limits, footers, layout, period folders, spreadsheet.

The pack is the session's run of ``report all --period 2025-Q4 --pdf --pack`` on the sample
practice (``sample_pack_runs.quarter``, tests/conftest.py), run through the command line as a
consultant would run it, and its PDFs are read back with pypdf. Facts checked: US letter is
8.5 x 11 inches = 612 x 792 PDF points (ISO 216 does not apply; PDF user space is 1/72 inch,
ISO 32000-1 section 8.3.2.3); a typographic point is 1/72 inch, so a 9 pt font is 9 units tall
in that space.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import shutil
import unicodedata
from pathlib import Path

import pandas as pd
import pypdf
import pytest
from conftest import PACK_BY, PACK_DAY, PACK_PERIOD, PACK_TITLE

from analytics import kpis, pack, periods, reports, workbook

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
PERIOD, TITLE, BY, DAY = PACK_PERIOD, PACK_TITLE, PACK_BY, PACK_DAY

_no_chromium = pytest.mark.skipif(reports.find_chromium() is None,
                                  reason="headless Chromium is not installed (Debian package chromium; `make chromium`)")


def needs_chromium(test):
    """A test that reads the pack run (notebooks and Chromium): slow, and skipped without the browser."""
    return pytest.mark.slow(_no_chromium(test))


@pytest.fixture(scope="module")
def run(sample_pack_runs) -> reports.RunResult:
    """``report all --period 2025-Q4 --pdf --pack -p title ... -p prepared_by ...`` on the sample,
    through the command line (the session's run; tests must not modify what it wrote)."""
    if sample_pack_runs.quarter is None:
        pytest.skip("headless Chromium is not installed (Debian package chromium; `make chromium`)")
    result = sample_pack_runs.quarter
    assert sample_pack_runs.exit_codes["quarter"] == 0, [(r.name, r.status, r.error) for r in result.reports]
    return result


@functools.cache
def extracted(pdf: Path) -> tuple[str, ...]:
    """The text of each page of a PDF, as pypdf extracts it (read once per file: the session's
    PDFs do not change)."""
    return tuple(p.extract_text() or "" for p in pypdf.PdfReader(str(pdf)).pages)


def page_texts(pdf: Path) -> list[str]:
    return [re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)) for text in extracted(pdf)]


def headings(html: str) -> set[str]:
    found = re.findall(r"<h[1-3][^>]*>(.*?)</h[1-3]>", html, flags=re.DOTALL)
    return {re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", h)).replace("¶", "").strip() for h in found}


def footer(r: reports.ReportResult) -> str:
    return f"Harbor Street Massage and Rehab (synthetic) · Q4 2025 · {r.title} · {DAY}"


# --- the period folder and its manifest ---------------------------------------------------------


@needs_chromium
def test_outputs_go_to_the_period_folder(run):
    assert run.folder.name == PERIOD and run.period == periods.Period.of("2025-10-01", "2025-12-31")
    for r in run.reports:
        assert r.html == run.folder / f"{r.name}.html" and r.pdf == run.folder / f"{r.name}.pdf"
    assert run.pack_pdf == run.folder / "pack.pdf" and run.pack_html == run.folder / "pack.html"
    assert run.workbook == run.folder / "tables.xlsx"


@needs_chromium
def test_manifest_records_the_period_every_file_and_the_run(run):
    manifest = json.loads(run.manifest.read_text())
    assert manifest["period"] == {"label": PERIOD, "start": "2025-10-01", "end": "2025-12-31",
                                  "description": "Q4 2025"}
    files = manifest["files"]
    for name in ("pack.pdf", "pack.html", "tables.xlsx", "revenue.pdf", "revenue.html", "revenue.ipynb",
                 "tables/revenue/headline.csv", "figures/revenue/monthly.svg", "tables/pack/recommendations.csv"):
        assert name in files, name
    for rel, entry in files.items():
        assert entry["run_id"] == run.run_id, rel
        assert hashlib.sha256((run.folder / rel).read_bytes()).hexdigest() == entry["sha256"], rel


# --- printed pages ------------------------------------------------------------------------------


@needs_chromium
def test_scenarios_page_fits_in_eight_pages_and_every_pdf_is_letter(run):
    for r in [*run.reports]:
        reader = pypdf.PdfReader(str(r.pdf))
        box = reader.pages[0].mediabox
        assert (round(float(box.width)), round(float(box.height))) == (612, 792), r.name
        assert len(reader.pages) >= 1
    scenarios = next(r for r in run.reports if r.name == "scenarios")
    assert len(pypdf.PdfReader(str(scenarios.pdf)).pages) <= 8


@needs_chromium
def test_every_printed_page_has_the_footer_and_its_page_number(run):
    for r in run.reports:
        pages = page_texts(r.pdf)
        for i, text in enumerate(pages, start=1):
            assert footer(r) in text, (r.name, i, text[:200])
            assert f"page {i} of {len(pages)}" in text, (r.name, i)
    pages = page_texts(run.pack_pdf)
    for i, text in enumerate(pages, start=1):
        assert f"page {i} of {len(pages)}" in text, ("pack", i)
        assert "Harbor Street Massage and Rehab (synthetic) · Q4 2025 ·" in text and DAY in text, ("pack", i)


@needs_chromium
def test_no_printed_page_holds_only_a_heading(run):
    for r in run.reports:
        titles = headings(r.html.read_text())
        for i, text in enumerate(extracted(r.pdf), start=1):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
            body = [ln for ln in lines if "page " not in ln and DAY not in ln]  # the footer
            assert body, (r.name, i, "empty page")
            assert not all(ln in titles for ln in body), (r.name, i, body)


@needs_chromium
def test_printed_text_is_at_least_nine_points(run):
    sizes: list[float] = []

    def visit(text, cm, tm, font, size):
        if text.strip():
            # the text matrix times the page's matrix: its vertical scale times the font size
            c, d = tm[2] * cm[0] + tm[3] * cm[2], tm[2] * cm[1] + tm[3] * cm[3]
            sizes.append(size * math.hypot(c, d))

    for r in run.reports:
        for page in pypdf.PdfReader(str(r.pdf)).pages:
            page.extract_text(visitor_text=visit)
    assert sizes and min(sizes) >= 8.95, min(sizes)


@needs_chromium
def test_an_empty_table_prints_none(run):
    contracts = next(r for r in run.reports if r.name == "contracts")
    claims = pd.read_csv(run.folder / "tables" / "contracts" / "claims_to_appeal.csv")
    assert claims.empty  # the sample's underpayments are in June to August 2025, not in Q4
    assert '<div class="empty-table"><p class="caption">Claims to appeal' in contracts.html.read_text()
    text = " ".join(page_texts(contracts.pdf))
    assert re.search(r"Claims to appeal, largest shortfall first none", text)


# --- the pack -----------------------------------------------------------------------------------


@needs_chromium
def test_pack_has_cover_contents_summary_then_every_report(run):
    pages = page_texts(run.pack_pdf)
    counts = {r.name: len(pypdf.PdfReader(str(r.pdf)).pages) for r in run.reports}
    assert TITLE in pages[0] and f"Prepared by {BY}" in pages[0] and "Q4 2025" in pages[0]
    assert "Prepared for Harbor Street Massage and Rehab (synthetic)" in pages[0]
    assert "Contents" in pages[1]
    summary = next(i for i, t in enumerate(pages) if " · Executive summary · " in t)
    first = next(i for i, t in enumerate(pages) if f" · {run.reports[0].title} · " in t)
    assert 2 <= summary < first <= summary + 2
    # each report starts on a new page and keeps its own pages: the pack is the pages put together
    assert len(pages) == first + sum(counts.values())


@needs_chromium
def test_contents_page_numbers_point_at_their_parts(run):
    pages = page_texts(run.pack_pdf)
    summary = next(i for i, t in enumerate(pages) if " · Executive summary · " in t)
    contents = " ".join(pages[1:summary])
    for r in run.reports:
        m = re.search(re.escape(r.title) + r" \.* ?(\d+)", contents)
        assert m, (r.title, contents[:500])
        n = int(m.group(1))
        assert f" · {r.title} · " in pages[n - 1], (r.name, n)
        assert f" · {r.title} · " not in pages[n - 2], (r.name, n)


@needs_chromium
def test_pages_keep_their_report_names_and_title_names_the_pack(run):
    for r in run.reports:
        assert r.title != TITLE
        assert f"<title>{r.title}</title>" in r.html.read_text()
    assert f"<title>{TITLE}</title>" in run.pack_html.read_text()
    assert f" · {TITLE} · " in page_texts(run.pack_pdf)[0]


@needs_chromium
def test_summary_figures_are_the_quarter_against_the_one_before(run):
    figures = pd.read_csv(run.folder / "tables" / "pack" / "summary_figures.csv").set_index("figure")
    history = kpis.load_history(SAMPLE)
    q4 = kpis.summary(history.select(start="2025-10-01", end="2025-12-31"))
    # the sample's A/R date is 2026-02-28 (practice.yaml), 59 days after Q4 ends; Q3's is 59 days after
    # its own end: 2025-11-28
    q3 = kpis.summary(history.select(start="2025-07-01", end="2025-09-30", as_of="2025-11-28"))
    for key in ("gross_charges", "payer_paid", "denied_amount", "net_collection_rate", "ar_balance"):
        assert figures.loc[key, "value"] == pytest.approx(float(q4[key])), key
        assert figures.loc[key, "base"] == pytest.approx(float(q3[key])), key
        assert figures.loc[key, "change"] == pytest.approx(float(q4[key]) - float(q3[key]), abs=0.011), key
    assert (figures["against"] == "the previous period").all()


@needs_chromium
def test_recommendations_are_ranked_by_dollars_and_name_their_table(run):
    recs = pd.read_csv(run.folder / "tables" / "pack" / "recommendations.csv")
    assert 1 <= len(recs) <= 8
    assert recs["dollars"].is_monotonic_decreasing
    assert recs["rank"].tolist() == list(range(1, len(recs) + 1))
    assert recs["source"].str.len().min() > 0
    summary_page = next(t for t in page_texts(run.pack_pdf) if " · Executive summary · " in t)
    assert recs["recommendation"].iloc[0][:40] in summary_page


# --- for slides and spreadsheets ----------------------------------------------------------------


@needs_chromium
def test_charts_are_svg_and_png_at_least_1800_pixels_wide(run):
    from PIL import Image

    pngs = sorted((run.folder / "figures").rglob("*.png"))
    assert pngs
    for png in pngs:
        assert Image.open(png).size[0] >= 1800, png
        svg = png.with_suffix(".svg")
        assert svg.exists() and svg.read_text()[:400].find("<svg") >= 0, svg


@needs_chromium
def test_headline_csv_holds_numbers(run):
    table = pd.read_csv(run.folder / "tables" / "revenue" / "headline.csv")
    assert {"figure", "label", "value"} <= set(table.columns)
    assert pd.api.types.is_float_dtype(table["value"])
    q4 = kpis.summary(kpis.load_history(SAMPLE).select(start="2025-10-01", end="2025-12-31"))
    values = table.set_index("figure")["value"]
    assert values["gross_charges"] == pytest.approx(float(q4["gross_charges"]))
    assert values["visits"] == q4["visits"]


@needs_chromium
def test_workbook_equals_the_csv_tables(run):
    from openpyxl import load_workbook

    book = load_workbook(run.workbook)
    contents = list(book["Contents"].iter_rows(min_row=2, values_only=True))
    assert len(contents) == len(list((run.folder / "tables").rglob("*.csv")))
    for sheet, _report, _table, csv, rows in contents:
        ws = book[sheet]
        raw = pd.read_csv(run.folder / csv, dtype=str, keep_default_na=False)
        assert rows == len(raw) and ws.max_row == len(raw) + 1, sheet
        assert [c.value for c in ws[1]] == list(raw.columns), sheet
        for j, column in enumerate(raw.columns, start=1):
            for i, text in enumerate(raw[column], start=2):
                cell = ws.cell(row=i, column=j).value
                if text == "":
                    assert cell is None, (sheet, column, i)
                elif isinstance(cell, bool):
                    assert str(cell) == text
                elif isinstance(cell, int | float):
                    assert cell == pytest.approx(float(text)), (sheet, column, i)
                elif hasattr(cell, "strftime"):
                    assert cell.strftime("%Y-%m-%d") == text
                else:
                    assert cell == text, (sheet, column, i)
    by_payer = book["revenue by_payer"]
    heads = [c.value for c in by_payer[1]]
    charges = by_payer.cell(row=2, column=heads.index("charges") + 1)
    rate = by_payer.cell(row=2, column=heads.index("denial_rate") + 1)
    assert isinstance(charges.value, int | float) and not isinstance(charges.value, bool)
    assert "$" in charges.number_format
    assert rate.number_format == "0.0%"
    codes = book["revenue paid_per_unit"]
    cpt = [c.value for c in codes[1]].index("cpt") + 1
    cells = [codes.cell(row=i, column=cpt).value for i in range(2, codes.max_row + 1)]
    assert cells and all(isinstance(v, str) and re.fullmatch(r"97\d{3}", v) for v in cells)  # codes stay text


# --- two periods into one folder ----------------------------------------------------------------


@needs_chromium
def test_a_second_period_into_the_same_out_leaves_the_first(run, tmp_path):
    out = tmp_path / "out"  # a copy of the quarter's folder: the session's run is read by other tests
    shutil.copytree(run.folder, out / run.folder.name)
    first = out / run.folder.name
    before = {p: p.read_bytes() for p in (first / "revenue.html", first / "pack.pdf", first / "manifest.json")}
    second = reports.run_reports(["revenue"], SAMPLE, out, period="2025-11", date=DAY)
    assert second.ok and second.folder == out / "2025-11"
    assert (second.folder / "revenue.html").exists()
    for path, data in before.items():
        assert path.read_bytes() == data, path
    assert "Services from 2025-11-01 to 2025-11-30" in (second.folder / "revenue.html").read_text()


# --- the pack's parts, on tables written here ---------------------------------------------------


def _save(folder: Path, report: str, name: str, frame: pd.DataFrame) -> None:
    path = folder / report / "tables" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_recommendations_rank_every_reports_actions_by_dollars(tmp_path):
    _save(tmp_path, "denials", "recommendations", pd.DataFrame({
        "rank": [1, 2], "action": ["Stop billing 97010 to Gold PPO", "Get the authorisation first"],
        "dollars": [2016.0, 2584.0], "source": ["denials by code", "denials by payer"]}))
    _save(tmp_path, "contracts", "claims_to_appeal", pd.DataFrame({
        "claim_id": ["C1", "C2", "C3"], "payer": ["Gold PPO", "Gold PPO", "Medicare Part B"],
        "recoverable": [100.0, 50.5, 3000.0]}))
    _save(tmp_path, "scenarios", "recommendations", pd.DataFrame(columns=["rank", "action", "dollars", "source"]))
    recs = pack.recommendations(tmp_path, ["denials", "contracts", "scenarios", "revenue"])
    assert recs["dollars"].tolist() == [3000.0, 2584.0, 2016.0, 150.5]
    assert recs["recommendation"].iloc[0] == "Appeal the 1 claim(s) Medicare Part B paid below its contract"
    assert recs["report"].tolist() == ["contracts", "denials", "denials", "contracts"]
    assert recs["rank"].tolist() == [1, 2, 3, 4]
    # a report whose own recommendations table is empty has none: no findings are made up for it
    assert "scenarios" not in set(recs["report"])


def test_workbook_stores_formula_like_text_as_text_and_the_same_bytes_twice(tmp_path):
    _save(tmp_path, "revenue", "by_payer", pd.DataFrame({
        "payer": ["=HYPERLINK(\"http://x\",\"y\")", "+1 Health", "Gold PPO"], "cpt": ["97140", "97124", "97010"],
        "charges": [100.5, 200.0, -3.0], "denial_rate": [0.25, 0.1, None], "lines": [3, 4, 5]}))
    first = workbook.write_workbook(tmp_path, ["revenue"], tmp_path / "a.xlsx").read_bytes()
    second = workbook.write_workbook(tmp_path, ["revenue"], tmp_path / "b.xlsx").read_bytes()
    assert first == second
    from openpyxl import load_workbook

    ws = load_workbook(tmp_path / "a.xlsx")["revenue by_payer"]
    formula = ws["A2"]
    # neutralised as the CSV tables are (a leading '), and stored as text, not as a formula
    assert formula.value == "'=HYPERLINK(\"http://x\",\"y\")" and formula.data_type == "s"
    assert ws["A3"].value == "'+1 Health"
    assert ws["B2"].value == "97140" and ws["C2"].value == 100.5 and ws["E2"].value == 3
    assert ws["D4"].value is None and ws["D2"].number_format == "0.0%"
    import zipfile

    sheets = [n for n in zipfile.ZipFile(tmp_path / "a.xlsx").namelist() if n.startswith("xl/worksheets/")]
    assert not any(b"<f>" in zipfile.ZipFile(tmp_path / "a.xlsx").read(n) for n in sheets)
