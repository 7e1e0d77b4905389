"""Print layout and exports without a report run: footers, empty tables, chart files, short reasons.

Facts used: CSS string escapes are a backslash, the code point in hex and an optional space
(CSS Syntax Level 3, 4.3.7); a PNG's width is the big-endian integer at bytes 16-19 (PNG
specification, IHDR chunk).
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from analytics import plots, printing
from analytics.exceptions import InputError


def test_footer_text_and_page_numbers_are_css_margin_boxes():
    footer = printing.Footer("Harbor Massage", "Q4 2025", "Denials", "2026-01-15")
    css = printing.page_css(footer, named={"report-x": printing.Footer("Harbor Massage", "Q4 2025", "X", "d")})
    assert footer.text == "Harbor Massage · Q4 2025 · Denials · 2026-01-15"
    assert '@bottom-left { content: "Harbor Massage · Q4 2025 · Denials · 2026-01-15";' in css
    assert '@bottom-right { content: "page " counter(page) " of " counter(pages);' in css
    assert "@page report-x {" in css and "size: letter" in css
    assert "font-size: 9pt" in css and "font-size: 10pt" in css
    assert "thead { display: table-header-group; }" in css and "tr { break-inside: avoid; }" in css


def test_a_practice_name_cannot_break_out_of_the_style_sheet():
    text = 'Anna\'s "Spa" </style><script>x</script>\\'
    quoted = printing.css_string(text)
    assert quoted.startswith('"') and quoted.endswith('"')
    inner = quoted[1:-1]
    assert '"' not in inner and "<" not in inner and "\\5c " in inner
    assert "\\22 Spa\\22 " in inner and "\\3c /style>" in inner


def test_an_empty_table_prints_one_line_saying_none():
    empty = pd.DataFrame({"payer": pd.Series(dtype=str), "charges": pd.Series(dtype=float)})
    shown = plots.table(empty, title="Claims to appeal")
    assert isinstance(shown, plots.EmptyTable)
    assert shown.to_html() == ('<div class="empty-table"><p class="caption">Claims to appeal</p>'
                               '<p class="none">none</p></div>')
    assert shown._repr_html_() == shown.to_html()
    assert plots.table(empty).to_html() == '<div class="empty-table"><p class="none">none</p></div>'


def test_an_empty_table_is_still_saved_whole(tmp_path):
    empty = pd.DataFrame({"payer": pd.Series(dtype=str), "charges": pd.Series(dtype=float)})
    plots.table(empty, name="claims")
    assert not (tmp_path / "tables").exists()  # no output folder set: nothing written
    plots.save_table(empty, "claims", tmp_path)
    assert (tmp_path / "tables" / "claims.csv").read_text() == "payer,charges\n"


def _chart() -> Figure:
    fig = Figure(figsize=(8, 4), dpi=110)
    ax = fig.subplots()
    ax.bar(["a", "b"], [1, 2])
    ax.set_title("two bars")
    return fig


def test_charts_are_saved_as_png_of_1800_pixels_and_svg_the_same_bytes_twice(tmp_path):
    png = plots.save_figure(_chart(), "bars", tmp_path)
    assert png == tmp_path / "figures" / "bars.png"
    raw = png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    assert width >= plots.PNG_WIDTH_PX == 1800 and height == 900  # 8 x 4 inches at 225 dpi
    svg = (tmp_path / "figures" / "bars.svg").read_bytes()
    assert ET.fromstring(svg).tag.endswith("svg")
    assert b"<dc:date>" not in svg
    plots.save_figure(_chart(), "again", tmp_path)
    assert (tmp_path / "figures" / "again.png").read_bytes() == raw
    # the same chart under another name differs only by the ids drawn from its name
    again = (tmp_path / "figures" / "again.svg").read_bytes()
    plots.save_figure(_chart(), "bars", tmp_path)
    assert (tmp_path / "figures" / "bars.svg").read_bytes() == svg and len(again) == len(svg)


def test_an_odd_width_still_gives_1800_pixels(tmp_path):
    fig = Figure(figsize=(7.3, 3), dpi=100)
    fig.subplots().plot([0, 1], [0, 1])
    raw = plots.save_figure(fig, "odd", tmp_path).read_bytes()
    assert struct.unpack(">I", raw[16:20])[0] >= 1800


def test_comparison_table_formats_each_row_in_its_unit():
    comparison = pd.DataFrame({
        "figure": ["gross_charges", "denial_rate", "days_in_ar", "visits"],
        "label": ["Gross charges", "Denial rate", "Days in A/R", "Visits"],
        "unit": ["dollars", "percent", "days", "count"],
        "value": [193656.0, 0.2705, 11.8, 841.0], "previous": [198518.0, 0.2828, 23.7, 848.0],
        "previous_change": [-4862.0, -0.0123, -11.9, -7.0],
        "previous_change_pct": [-4862 / 198518, -0.0123 / 0.2828, -11.9 / 23.7, -7 / 848],
        "last_year": [np.nan] * 4, "last_year_change": [np.nan] * 4, "last_year_change_pct": [np.nan] * 4,
    })
    html = plots.comparison_table(comparison).to_html()
    for text in ("$193,656", "-$4,862", "27.1%", "-1.2 pts", "11.8 days", "-11.9 days", "841", "-2.4%"):
        assert f">{text}<" in html, text
    assert "A year earlier" not in html  # no data a year earlier: the columns are left out


def test_short_reasons_keep_units_outcome_and_price():
    lines = pd.DataFrame({
        "alternative": ["97140 + 97124", "97140 + 97124"], "payer_name": ["Medicare Part B", "Gold PPO"],
        "payer_id": ["medicare", "ppo_gold"], "cpt": ["97124", "97140"], "modifiers": ["GP", None], "units": [2, 2],
        "units_reason": ["CMS 8-minute rule: 60 timed minutes -> 4 unit(s)", "AMA midpoint rule: 30 min -> 2 unit(s)"],
        "disposition": ["denied", "payable"], "group_code": ["CO", ""], "carc": ["97", ""],
        "edit_reason": ["NCCI pair 97140/97124: 97124 is bundled into 97140 billed the same visit", "payable: ok"],
        "price_basis": ["no payment", "contract 110% of Medicare; " + "x" * 300],
    })
    short = plots.reasons_in_short(lines, width=100)
    assert short["reason"].iloc[0] == ("2 unit(s), CMS 8-minute rule. denied CO-97: 97124 is bundled into 97140 "
                                       "billed the same visit")
    assert short["reason"].iloc[1] == "2 unit(s), AMA midpoint rule. contract 110% of Medicare…"
    assert short["modifiers"].tolist() == ["GP", ""]
    assert (short["reason"].str.len() <= 100).all()


@pytest.mark.parametrize(("text", "width", "expected"), [
    ("short", 10, "short"),
    ("one; two; three four five", 14, "one; two…"),
    ("a few plain words here", 12, "a few plain…"),
])
def test_shorten_cuts_at_a_clause_or_word(text, width, expected):
    assert plots.shorten(pd.Series([text]), width).iloc[0] == expected


def test_pdf_needs_chromium_and_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(printing, "find_chromium", lambda: None)
    with pytest.raises(InputError, match="apt-get install chromium"):
        printing.print_pdf("page.html", "page.pdf")


def test_find_pages_looks_for_each_marker_after_the_last():
    pages = ["Contents Denials 4", "Summary · Revenue · x", "more", "Denials · x", "Denials again"]
    assert printing.find_pages(pages, ["· Revenue ·", "Denials", "Summary"]) == [2, 4, None]
