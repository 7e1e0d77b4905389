"""A precise guard: names found when shown as names, and nowhere else.

The cases are the ones a real export met: the surname "White" in a page's CSS, "TOTAL" as a
column header and a totals row, common-word names (Will, Mark, Page, May, Rich, Case, Gold,
Bill, Cash) in the toolkit's own words and in payer names ("Blue Shield Gold PPO"), and names
hidden inside claim numbers (``SMITH-JOHN-0423``, ``PCN-FENWICK-HOLLY``).
"""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.exceptions import PrivacyError
from analytics.privacy import (
    Identifiers,
    Matcher,
    check_outputs,
    identifiers_from_835,
    identifiers_from_export,
    scan_html,
    scan_outputs,
    scan_table,
    scan_text,
)


@pytest.fixture
def ids() -> Identifiers:
    found = Identifiers()
    found.add_names(["White, Donna", "Will, Mark", "Page, May", "Cash, Total", "Smith, John", "Fenwick, Holly",
                     "Qwertyson, Zelda"])
    found.add_ids(["100234", "MBR77120"])
    found.add_dates(["1961-03-04"])
    found.add_protected(["Blue Shield Gold PPO", "Hannah Reyes, PT", "Medicare Part B"])
    return found


PAGE = """<html><head><style>body { color: white; } .total { background: gold }</style>
<script>var will = "Mark White";</script><title>Revenue</title></head>
<body><h1>Revenue</h1>
<p>White claims will be paid in May. Bill the payer; cash totals mark the page.</p>
<p title="Donna White"><img alt="Donna White chart" src="data:image/png;base64,MTAwMjM0"></p>
<table><caption>By payer</caption>
<thead><tr><th>Payer</th><th>White</th><th>Total</th><th>Provider</th></tr></thead>
<tbody><tr><td>Blue Shield Gold PPO</td><td>12</td><td>$1,234</td><td>Hannah Reyes, PT</td></tr>
<tr><td>Cash</td><td>May</td><td>Will</td><td>Mark</td></tr>
<tr><td>Total</td><td>White</td><td>Gold</td><td>Page</td></tr></tbody></table>
</body></html>"""


def test_a_page_of_common_words_css_headers_payers_and_totals_is_clean(ids):
    assert scan_html(PAGE, ids) == []


@pytest.mark.parametrize(("html", "kind", "where"), [
    ("<p>Seen: Donna White on 3/2</p>", "name", "page text"),
    ("<p>WHITE, DONNA</p>", "name", "page text"),
    ("<p>Donna M. White</p>", "name", "page text"),
    ("<p>claim SMITH-JOHN-0423 was denied</p>", "name", "page text"),
    ("<table><thead><tr><th>payer_claim_id</th></tr></thead><tbody><tr><td>PCN-FENWICK-HOLLY</td></tr></tbody>"
     "</table>", "name", "row 1 column 'payer_claim_id'"),
    ("<table><thead><tr><th>Patient</th></tr></thead><tbody><tr><td>White</td></tr></tbody></table>", "name",
     "row 1 column 'Patient'"),
    ("<table><thead><tr><th>Claim</th></tr></thead><tbody><tr><td>WHITE-0423</td></tr></tbody></table>", "name",
     "column 'Claim'"),
    ("<table><thead><tr><th>who</th></tr></thead><tbody><tr><td>Qwertyson</td></tr></tbody></table>", "name",
     "table 1"),
    ("<table><tr><td>Cash Total</td></tr></table>", "name", "row 1"),
    ("<p>account 100234</p>", "id", "page text"),
    ("<p>ref C-100234-01</p>", "id", "page text"),
    ('<pre>{"member": "mbr77120"}</pre>', "id", "page text"),
    ("<p>born 03/04/1961</p>", "date_of_birth", "page text"),
], ids=lambda v: v if len(v) < 30 else v[:30])
def test_identifiers_shown_as_such_are_found(ids, html, kind, where):
    found = scan_html(html, ids, name="revenue.html")
    assert found, html
    assert found[0][1] == kind and where in found[0][0]
    assert all("*" in value for _, _, value in found)  # masked


def test_common_word_names_in_running_text_are_not_names(ids):
    assert scan_text("Total cash collected in May: Mark the page, will you", ids) == []
    # two common words count only as the whole of a cell
    assert Matcher(ids).cell("Cash Total", patient_column=False)
    assert not Matcher(ids).cell("Cash total for May", patient_column=False)


def test_saved_tables_are_scanned_by_cell_not_header(ids, tmp_path):
    table = pd.DataFrame({"Total": ["TOTAL", "x"], "White": ["Mark", "Cash"], "paid": [1.0, 2.0]})
    assert scan_table(table, ids) == []
    leak = pd.DataFrame({"claim_id": ["C1", "SMITH-JOHN-0423"], "paid": [1.0, 2.0]})
    ((where, kind, value),) = scan_table(leak, ids, name="claims_to_appeal.csv")
    assert where == "claims_to_appeal.csv row 3 column 'claim_id'" and kind == "name" and value == "S***H J**N"
    leak.to_csv(tmp_path / "claims_to_appeal.csv", index=False)
    with pytest.raises(PrivacyError, match=r"claims_to_appeal.csv row 3 column 'claim_id': name S\*\*\*H J\*\*N"):
        check_outputs([tmp_path], ids)


def test_notebook_outputs_and_sources(ids, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1  # white will mark"),
                nbformat.v4.new_code_cell("show()", outputs=[nbformat.v4.new_output(
                    "display_data", data={"text/html": "<table><thead><tr><th>patient</th></tr></thead><tbody>"
                                                       "<tr><td>Fenwick</td></tr></tbody></table>",
                                          "text/plain": "patient\nFenwick"})])]
    nbformat.write(nb, tmp_path / "revenue.ipynb")
    found = scan_outputs([tmp_path], ids)
    assert found["where"].tolist() == ["revenue.ipynb code cell 2 outputs"]
    assert found["value"].tolist() == ["F*****K"]


def test_identifiers_from_a_messy_export(tmp_path):
    """Title rows above the header, a totals row, separate first and last names, an
    unrecognised birth-date header and an account number column."""
    rows = [["Harbor Street Massage - charges"], [],
            ["Account #", "Last Name", "First Name", "Pt DOB", "CPT", "Primary Insurance", "Rendering Provider"],
            ["100234", "White", "Donna", "03/04/1961", "97140", "Blue Shield Gold PPO", "Hannah Reyes, PT"],
            ["100235", "Will", "Mark", "1970-12-01", "97124", "Medicare Part B", "Tessa Ng, LMT"],
            ["", "TOTAL", "", "", "", "", ""]]
    rows = [r + [""] * (7 - len(r)) for r in rows]
    path = tmp_path / "export.xlsx"
    pd.DataFrame(rows).to_excel(path, header=False, index=False)
    found = identifiers_from_export(path)
    assert found.ids == {"100234", "100235"}
    assert (("DONNA",), ("WHITE",)) in found.people and (("MARK",), ("WILL",)) in found.people
    assert "TOTAL" not in found.names
    assert {"1961-03-04", "1970-12-01"} <= found.dates_of_birth
    assert {"BLUE SHIELD GOLD PPO", "HANNAH REYES PT"} <= found.protected


def test_identifiers_from_835_people_and_payers(tmp_path):
    path = tmp_path / "a.835"
    path.write_text("ISA*00*~N1*PR*GOLD PPO~NM1*QC*1*FENWICK*HOLLY*Q***MI*MBR1234~NM1*82*1*REYES*HANNAH~"
                    "DMG*D8*19610304~")
    found = identifiers_from_835([path])
    assert (("HOLLY",), ("FENWICK",)) in found.people and "MBR1234" in found.ids
    assert {"GOLD PPO", "HANNAH REYES"} <= found.protected and "1961-03-04" in found.dates_of_birth


def test_names_inside_ids_are_taken_out(ids):
    from analytics.privacy import PracticeKey, mask_names_in_ids, pseudonym

    claims = pd.Series(["SMITH-JOHN-0423", "PCN-FENWICK-HOLLY", "C000123", None], dtype=object)
    shown = mask_names_in_ids(claims, ids)
    assert shown.tolist()[:3] == ["*****-****-0423", "PCN-*******-*****", "C000123"] and shown[3] is None
    assert not scan_table(pd.DataFrame({"claim_id": shown}), ids)
    key = PracticeKey(bytes(32), "test")
    keyed = mask_names_in_ids(claims, ids, key=key)
    assert keyed[0] == "ID-" + pseudonym("SMITH-JOHN-0423", key) and keyed[2] == "C000123"


def test_names_written_without_apostrophes_hyphens_or_accents_are_found():
    """A practice system writes O'Brien as OBRIEN and Núñez as NUNEZ in its claim numbers."""
    from analytics.privacy import mask_names_in_ids

    found = Identifiers()
    found.add_names(["O'Brien, Mary", "Núñez, José", "Smith-Jones, Ann", "Ann Marie Brzęczyszczykiewicz"])
    claims = pd.Series(["OBRIEN-000003", "NUNEZ-000004", "SMITHJONES-5", "BRZECZYSZCZYKIEWICZ-6", "Núñez-7"])
    assert mask_names_in_ids(claims, found).tolist() == [
        "******-000003", "*****-000004", "**********-5", "*******************-6", "*****-7"]
    for claim in claims:
        assert scan_table(pd.DataFrame({"claim_id": [claim]}), found), claim
    assert not scan_table(pd.DataFrame({"claim_id": ["C000123", "BRIENZ-1"]}), found)


def test_a_reports_own_lines_in_the_name_column_are_not_names(tmp_path):
    """Footers a practice system prints under the rows (in the name column) name nobody: their
    words (count, printed, page) must not stop a page that prints them."""
    export = tmp_path / "charges.csv"
    export.write_text("Patient Name,DOS,CPT\n\"Holloway, Greta\",03/04/2025,97140\nRecord count: 1,,\n"
                      "Page 1 of 1,,\nPrinted 03/05/2025 by front desk,,\n")
    found = identifiers_from_export(export)
    assert {"HOLLOWAY", "GRETA"} <= found.names
    assert not found.names & {"RECORD", "COUNT", "PAGE", "PRINTED", "FRONT", "DESK"}
    assert not scan_table(pd.DataFrame({"unit": ["count", "page"]}), found)


def test_identifiers_come_from_the_export_the_mapping_names(tmp_path):
    """The guard finds the export the way every command does (:func:`analytics.practice.locate_practice`):
    one named in mapping.yaml, not only ``service_lines.*``; 835s under any file name."""
    import shutil
    from pathlib import Path

    from analytics.privacy import identifiers_from_folder

    pd.DataFrame({"Patient Name": ["Ostraviak, Quillon"], "Account #": ["884213"], "Date of Service": ["03/02/2026"],
                  "CPT": ["97140"], "Minutes": ["30"], "Charge": ["$90.00"], "Primary Insurance": ["Medicare"]}
                 ).to_csv(tmp_path / "charges.csv", index=False)
    (tmp_path / "practice.yaml").write_text("name: Test practice\n")
    (tmp_path / "mapping.yaml").write_text('export: "charges.csv"\n')
    (tmp_path / "remittances").mkdir()
    shutil.copy(Path(__file__).parent / "data" / "x12-835" / "synthetic_835_massage.edi",
                tmp_path / "remittances" / "era_0301.txt")
    found = identifiers_from_folder(tmp_path)
    assert any("OSTRAVIAK" in str(n).upper() for n in found.names)
    assert "884213" in found.ids
    assert len(found.ids) > 1, "the 835's member ids are collected from a .txt file"


def test_dates_of_birth_are_found_wherever_a_search_of_each_date_finds_them():
    """The guard looks up the text's date-shaped tokens; a search of the text for each date of
    birth, one at a time, is the reference: the same dates on random texts of dates, digits
    and separators, and a date a caller gave in another form is still found."""
    import random

    rng = random.Random(7)
    found = Identifiers()
    found.add_dates([f"{rng.randint(1930, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" for _ in range(200)])
    found.dates_of_birth |= {"03-04-1961", "4 Mar 1961"}
    dates = sorted(found.dates_of_birth)
    assert {"03/04/1961", "3/4/1961", "19610304"} & set(dates) == set()  # the odd forms only as given
    matcher = Matcher(found)

    def one_at_a_time(text: str) -> list[tuple[str, str]]:
        hits = []
        for d in dates:
            at = [i for i in range(len(text)) if text.startswith(d, i)]
            if any(not (i and text[i - 1].isdigit()) and not text[i + len(d):i + len(d) + 1].isdigit() for i in at):
                hits.append(("date_of_birth", d))
        return hits

    for _ in range(3000):
        text = "".join(rng.choice(dates) if rng.random() < 0.5 else
                       "".join(rng.choice("0123456789/- x") for _ in range(rng.randint(0, 4)))
                       for _ in range(rng.randint(0, 4)))
        assert matcher._dates(text) == one_at_a_time(text), text
    assert matcher._dates("born 4 Mar 1961, seen 03-04-1961") == [("date_of_birth", "03-04-1961"),
                                                                  ("date_of_birth", "4 Mar 1961")]
    one = Identifiers()
    one.add_dates(["1961-03-04"])
    # overlapping date shapes: the date after another is still seen; one inside a longer number is not
    assert Matcher(one)._dates("x2/3/1961-03-04") == [("date_of_birth", "1961-03-04")]
    assert Matcher(one)._dates("ref 219610304 and 1961-03-045") == []


def test_a_workbook_is_scanned_cell_by_cell_numbers_too(ids, tmp_path):
    """A spreadsheet among the outputs: an account number stored as a number and a name in a
    patient column are found, with the sheet, row and column; a clean sheet is clean."""
    from analytics.privacy import scan_file

    path = tmp_path / "tables.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as book:
        pd.DataFrame({"Payer": ["Blue Shield Gold PPO"], "Total": [1234.5]}).to_excel(book, sheet_name="clean",
                                                                                       index=False)
        pd.DataFrame({"Account": [100234], "Patient": ["Qwertyson"], "Paid": [12.5]}).to_excel(
            book, sheet_name="leaky", index=False)
    hits = scan_file(path, ids)
    assert {(where.split(" column ")[0], kind) for where, kind, _ in hits} == {
        ("tables.xlsx sheet 'leaky' row 2", "id"), ("tables.xlsx sheet 'leaky' row 2", "name")}
