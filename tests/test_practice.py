"""A practice folder read one way: a messy export in any format, payer aliases, 835s whatever
their names, lines set aside with their spreadsheet row, and the share that stops a run.

Every folder here is built in the test: a practice-management export with a title row, names
that are ordinary words, "$1,234.50", MM/DD/YYYY dates, "Dx 1".."Dx 4", credentials after the
provider's name, a code outside the catalog (98941, chiropractic manipulation), a payer without
a policy and a TOTAL row; and 835s named as clearinghouses name them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analytics import history as practice_history
from analytics.cli import main
from analytics.exceptions import InputError
from analytics.intake import sniff_export, write_mapping
from analytics.practice import NO_POLICY, OUTSIDE_CATALOG, load_practice, locate_practice

pytestmark = pytest.mark.filterwarnings("ignore::analytics.exceptions.AnalyticsWarning")

HEADERS = ["Patient Name", "DOB", "Account #", "Date of Service", "Claim #", "CPT", "Modifier(s)", "Units", "Minutes",
           "Charge", "Primary Insurance", "Rendering Provider", "Dx 1", "Dx 2", "Dx 3", "Dx 4", "Date Billed",
           "Rx on File", "Notes"]
ROWS = [
    ["White, Donna", "04/12/1961", "A1001", "03/02/2026", "CLM-1", "97140", "GP 59", "2", "30", "$120.00",
     "Medicare Part B", "Hannah Reyes, PT", "M54.50", "M62.830", "", "", "03/04/2026", "Y", "called Donna"],
    ["White, Donna", "04/12/1961", "A1001", "03/02/2026", "CLM-1", "97110", "gp", "1", "15", "$60.00",
     "Medicare Part B", "Hannah Reyes, PT", "M54.50", "", "", "", "03/04/2026", "Y", ""],
    ["Will, Mark", "01/01/1970", "A1002", "03/03/2026", "CLM-2", "97124", "", "4", "60", "$1,234.50",
     "Blue Shield Gold PPO", "Tessa Ng, LMT", "M62.830", "M54.2", "R51.9", "M25.511", "03/05/2026", "N", ""],
    ["Page, May", "02/02/1980", "A1003", "03/04/2026", "CLM-3", "98941", "", "1", "", "$55.00",
     "Progressive Auto PIP", "Tessa Ng, LMT", "S13.4XXA", "", "", "", "03/06/2026", "Y", ""],
    ["Rich, Case", "03/03/1990", "A1004", "03/05/2026", "CLM-4", "97140", "", "2", "", "$80.00",
     "Medicare Part B", "Tessa Ng, LMT", "S13.4XXA", "", "", "", "03/06/2026", "Y", ""],
    ["TOTAL", "", "", "", "", "", "", "10", "", "$1,549.50", "", "", "", "", "", "", "", "", ""],
]
PAYERS = """payers:
  medicare: {kind: medicare, name: Medicare Part B}
  ppo_gold:
    kind: commercial
    name: Gold PPO
    aliases: [Blue Shield Gold PPO, BSC01]
    fee: {basis: percent_of_medicare, percent: 110}
  cash: {kind: cash, fee: {basis: charges}}
"""


def era(claim: str, payer: str, paid: float = 50.0) -> str:
    """A balanced 835 paying 97124 x4 on ``claim`` (CO-45 writes off the rest of $1,234.50)."""
    segs = ["ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *260316*0930*^*00501*000000101*0*T*:",
            "GS*HP*PAYER*CLINIC*20260316*0930*101*X*005010X221A1", "ST*835*0001",
            f"BPR*I*{paid:.2f}*C*ACH*CCP*01*011000015*DA*1*1999999999**01*021000021*DA*1*20260320",
            "TRN*1*X1*1999999999", "DTM*405*20260320", f"N1*PR*{payer}", "LX*1",
            f"CLP*{claim}*1*1234.50*{paid:.2f}*0*12*PCN{claim}", f"SVC*HC:97124*1234.50*{paid:.2f}**4",
            "DTM*472*20260303", f"CAS*CO*45*{1234.5 - paid:.2f}"]
    segs.append(f"SE*{len(segs) - 1}*0001")
    segs += ["GE*1*101", "IEA*1*000000101"]
    return "~".join(segs) + "~"


def write_export(path: Path, rows=ROWS, *, title: bool = True) -> Path:
    frame = pd.DataFrame(rows, columns=HEADERS, dtype="str")
    if path.suffix == ".xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        if title:
            sheet.append(["Service line detail, March 2026"])
            sheet.append([])
        sheet.append(HEADERS)
        for row in rows:
            sheet.append(row)
        book.save(path)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        sep = "\t" if path.suffix == ".tsv" else ","
        text = frame.to_csv(index=False, sep=sep)
        path.write_text(("Service line detail, March 2026\n\n" if title else "") + text)
    return path


def messy_practice(folder: Path, export: str = "service_lines.xlsx", rows=ROWS, *, mapping: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_export(folder / export, rows)
    if mapping:
        write_mapping(sniff_export(path), folder / "mapping.yaml")
    (folder / "payers.yaml").write_text(PAYERS)
    (folder / "practice.yaml").write_text("practice: Messy Massage\nas_of: 2026-03-31\n")
    remit = folder / "remittances"
    remit.mkdir(exist_ok=True)
    (remit / "era_0320.txt").write_text(era("CLM-2", "BLUE SHIELD GOLD PPO"))
    (remit / "ERA0321").write_text(era("CLM-9", "BLUE SHIELD GOLD PPO"))  # no extension, no charge line
    (remit / "README.md").write_text("ERAs downloaded from the clearinghouse\n")
    return folder


def test_the_messy_folder_reads_with_every_line_accounted_for(tmp_path):
    practice = load_practice(messy_practice(tmp_path / "p"), today="2026-04-01")
    intake = practice.intake
    # 6 rows: 4 lines read, 1 set aside (row 8: blank minutes on timed 97140), 1 TOTAL (row 9)
    assert (intake.rows_in, intake.accepted, intake.set_aside, intake.total_rows) == (6, 4, 1, 1)
    assert practice.set_aside.set_index("source_row")["kind"].to_dict() == {8: "minutes blank on a timed code",
                                                                           9: "total row"}
    lines = practice.lines
    assert lines["payer_id"].tolist() == ["medicare", "medicare", "ppo_gold", "Progressive Auto PIP"]
    assert lines["payer_name"].tolist()[2] == "Blue Shield Gold PPO"
    assert lines["not_priced"].tolist() == ["", "", "", OUTSIDE_CATALOG]
    names = {p.name for p in practice.files.remittances}
    assert names == {"era_0320.txt", "ERA0321"}
    assert [p.name for p, _ in practice.files.skipped] == ["README.md"]
    # the 835's payer name is one of the aliases: its payments are the policy's
    assert set(practice.remittance.payments["payer_id"]) == {"ppo_gold"}
    notes = " | ".join(practice.notes)
    assert "1 of 5 charge line(s) of service_lines.xlsx were set aside" in notes and "rows 8" in notes
    assert "1 TOTAL/subtotal row(s) of" in notes
    assert f"code(s) 98941: kept in the charges, {OUTSIDE_CATALOG}" in notes
    assert f"payer(s) Progressive Auto PIP: kept in the charges, {NO_POLICY}" in notes
    assert "README.md" in notes
    assert set(practice.ignored["column"]) == {"Patient Name", "DOB", "Notes"}


@pytest.mark.parametrize("export", ["service_lines.csv", "service_lines.tsv", "service_lines.parquet",
                                    "service_lines.xlsx", "service_lines.txt"])
def test_every_export_format_reads_alike(tmp_path, export):
    reference = load_practice(messy_practice(tmp_path / "xlsx", mapping=False), today="2026-04-01").lines
    practice = load_practice(messy_practice(tmp_path / "other", export, mapping=False), today="2026-04-01")
    columns = ["patient_id", "service_date", "provider_id", "provider_type", "payer_id", "cpt", "minutes",
               "modifiers", "dx_codes", "charge", "units_billed", "not_priced"]
    pd.testing.assert_frame_equal(practice.lines[columns], reference[columns])


def test_the_share_set_aside_decides_whether_a_run_stops(tmp_path):
    folder = messy_practice(tmp_path / "p")
    # one line in five set aside is 20%: the run goes on
    assert load_practice(folder, today="2026-04-01").intake.set_aside == 1
    bad = [*ROWS[:1], [*ROWS[1][:3], "3/14/68", *ROWS[1][4:]], *ROWS[2:]]
    write_export(folder / "service_lines.xlsx", bad)
    with pytest.raises(InputError) as caught:
        load_practice(folder, today="2026-04-01")
    message = str(caught.value)
    assert "Too many lines set aside: 2 of 5 charge lines (40%)" in message and "more than the 20%" in message
    assert "max_set_aside in practice.yaml" in message
    (folder / "practice.yaml").write_text("practice: Messy Massage\nmax_set_aside: 0.5\n")
    assert load_practice(folder, today="2026-04-01").intake.set_aside == 2
    with pytest.raises(InputError, match="more than the 10%"):
        load_practice(folder, today="2026-04-01", max_set_aside=0.1)


def test_nothing_usable_left_says_so(tmp_path):
    folder = messy_practice(tmp_path / "p", rows=[[*ROWS[4]], ROWS[5]])  # blank minutes, then TOTAL
    with pytest.raises(InputError, match="Nothing usable remains: none of the 1 charge line"):
        load_practice(folder, today="2026-04-01")
    folder = messy_practice(tmp_path / "q", rows=[], mapping=False)
    with pytest.raises(InputError, match="has a header and no charge lines"):
        load_practice(folder, today="2026-04-01")


def test_the_export_is_found_by_name_or_named(tmp_path):
    folder = messy_practice(tmp_path / "p", "march_export.xlsx")
    # mapping.yaml names the export (sniff wrote it)
    assert locate_practice(folder).export.name == "march_export.xlsx"
    (folder / "mapping.yaml").unlink()
    with pytest.raises(InputError, match="no charge export"):
        locate_practice(folder)
    (folder / "practice.yaml").write_text("export: march_export.xlsx\n")
    assert locate_practice(folder).export.name == "march_export.xlsx"
    (folder / "practice.yaml").unlink()
    write_export(folder / "service_lines.csv")
    write_export(folder / "service_lines.parquet")
    with pytest.raises(InputError, match=r"holds 2 charge exports \(service_lines.csv, service_lines.parquet\)"):
        locate_practice(folder)


def test_history_reads_through_the_practice_loader(tmp_path):
    folder = messy_practice(tmp_path / "p")
    (folder / "practice.yaml").write_text("practice: Messy Massage\nas_of: 2026-03-31\n")
    history = practice_history.load_history(folder, salt="t")
    base = history.base.set_index("claim_id")
    assert base.loc["CLM-2", "paid"] == 50.0 and base.loc["CLM-2", "payer_id"] == "ppo_gold"
    unpriced = base.loc["CLM-3"]
    assert unpriced["not_priced"] == OUTSIDE_CATALOG and pd.isna(unpriced["contract_allowed"])
    assert history.base["charge"].sum() == 120 + 60 + 1234.5 + 55  # kept in the charges
    assert history.select(payers=["Blue Shield Gold PPO"]).payer_ids == ("ppo_gold",)
    assert history.select(payers="medicare part b").payer_ids == ("medicare",)
    assert history.set_aside["source_row"].tolist() == [8, 9]
    assert any("set aside" in n for n in history.notes)


def test_denials_fits_its_model_on_any_export_format(tmp_path):
    sample = tmp_path / "sample"
    assert main(["sample", "--out", str(sample), "--seed", "3", "--visits", "150"]) == 0
    results = {}
    for suffix in (".csv", ".xlsx", ".parquet"):
        folder = tmp_path / suffix[1:]
        shutil.copytree(sample, folder)
        if suffix != ".csv":
            frame = pd.read_csv(folder / "service_lines.csv", dtype=str, keep_default_na=False)
            (folder / "service_lines.csv").unlink()
            if suffix == ".xlsx":
                frame.to_excel(folder / "service_lines.xlsx", index=False)
            else:
                frame.to_parquet(folder / "service_lines.parquet")
        out = tmp_path / f"{suffix[1:]}.json"
        with out.open("w") as fh, pytest.MonkeyPatch.context() as mp:
            mp.setattr("sys.stdout", fh)
            assert main(["denials", "--data", str(folder), "--json"]) == 0
        results[suffix] = json.loads(out.read_text())["model"]
    assert results[".csv"] is not None and results[".csv"]["lines"] > 0
    assert results[".xlsx"]["lines"] == results[".parquet"]["lines"] == results[".csv"]["lines"]


def test_evaluate_takes_a_practice_folder(tmp_path, capsys):
    folder = messy_practice(tmp_path / "p")
    out = tmp_path / "evaluated"
    assert main(["evaluate", "--data", str(folder), "--out", str(out), "--workers", "1"]) == 0
    lines = pd.read_parquet(out)
    # the three priced lines: 98941 is outside the catalog
    assert sorted(lines["cpt"].astype(str)) == ["97110", "97124", "97140"]
    assert not lines["patient_id"].astype(str).isin(["A1001", "A1002"]).any()
    assert "outside the catalog" in capsys.readouterr().err


def test_an_era_downloaded_twice_is_read_once(tmp_path):
    """A byte-identical copy of an 835 (downloaded again, into a subfolder) is named in a note and
    not read: its payments would otherwise count twice."""
    folder = messy_practice(tmp_path / "p")
    once = load_practice(folder, today="2026-04-01")
    (folder / "remittances" / "again").mkdir()
    (folder / "remittances" / "again" / "era_0320.txt").write_bytes((folder / "remittances" / "era_0320.txt").read_bytes())
    (folder / "remittances" / "era_0320_other.txt").write_text(era("CLM-2", "BLUE SHIELD GOLD PPO", paid=60.0))
    twice = load_practice(folder, today="2026-04-01")
    assert len(twice.remittance.claims) == len(once.remittance.claims) + 1  # the changed file is read
    note = next(n for n in twice.notes if "byte-identical" in n)
    assert note.startswith("1 835 file(s)") and "again/era_0320.txt is a copy of era_0320.txt" in note


def test_provider_level_adjustments_are_named_in_a_note(tmp_path):
    folder = messy_practice(tmp_path / "p")
    text = era("CLM-2", "BLUE SHIELD GOLD PPO").replace("BPR*I*50.00", "BPR*I*15.00")
    text = text.replace("~SE*", "~PLB*1999999999*20261231*WO:CLM-1*40*L6*-5~SE*")
    text = text.replace("~SE*12*", "~SE*13*")
    (folder / "remittances" / "era_0320.txt").write_text(text)
    practice = load_practice(folder, today="2026-04-01")
    note = next(n for n in practice.notes if "provider-level adjustment" in n)
    assert note.startswith("2 provider-level adjustment(s) (PLB) in 1 835 file(s) come to $35.00")
    assert "L6 $-5.00, WO $40.00" in note


def test_an_export_without_claim_numbers_says_why_no_835_links(tmp_path):
    column = HEADERS.index("Claim #")
    rows = [[*row[:column], "", *row[column + 1:]] for row in ROWS]
    practice = load_practice(messy_practice(tmp_path / "p", rows=rows), today="2026-04-01")
    note = next(n for n in practice.notes if "have no claim number" in n)
    assert note.startswith(f"{len(practice.lines)} of {len(practice.lines)} charge line(s)")
    with_numbers = load_practice(messy_practice(tmp_path / "q"), today="2026-04-01")
    assert not any("have no claim number" in n for n in with_numbers.notes)
