"""A practice's own export and 835s: ``init``, the drafted payer policies, one locality per run.

Known values come from public sources: the Medicare fees from FACTS 1.2 and 1.4 (CMS PPRRVU
RVU25D/RVU26C and GPCI addenda, our own products rounded to cents), and the contract terms the
synthetic practice's 835s were paid by from ``data/sample/payers.yaml`` (the generator
adjudicates every claim by those policies, so a draft learned from its 835s must find them).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml

from analytics.cli import main
from analytics.datasets import generate_practice, write_remittances
from analytics.onboarding import CONFIRM, draft_policies, medicare_unit_fees, payers_yaml
from analytics.payers import load_payers, resolve_payer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"

# Patients named with common English words: the privacy guard must not mistake the page's words
# for them, and they must reach no page.
FIRST = ("Will", "Mark", "May", "Rich", "Bill", "Page", "Donna", "Grace", "Hope", "Faith")
LAST = ("White", "Page", "Case", "Gold", "Cash", "Mark", "Will", "May", "Rich", "Bill")
PAYER_NAMES = {"medicare": "Medicare Part B", "ppo_gold": "Blue Shield Gold PPO", "hmo_capped": "Silver HMO Plus",
               "auto_pip": "Progressive Auto PIP", "workers_comp": "State Fund Workers Comp", "cash": "Self Pay"}
PROVIDERS = {"LMT1": "Tessa Ng, LMT", "LMT2": "Owen Pratt, LMT", "LMT3": "Rosa Diaz, LMT",
             "PT1": "Hannah Reyes, PT", "DC1": "Sam Ortiz, DC"}


def _us(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates)
    return d.dt.strftime("%m/%d/%Y").where(d.notna(), "")


def messy_export(practice, path: Path) -> pd.DataFrame:
    """The practice's lines as a practice-management system exports them, saved as .xlsx.

    A report title row and a blank row above the header; patient names, DOB and account
    numbers; MM/DD/YYYY dates; "$1,234.50" charges; full payer names; provider names with a
    credential; ``Dx 1``..``Dx 4``; modifiers space-separated, some in lower case; CPT codes
    with a trailing space; one code outside the catalog (98941, row 10), one blank minutes
    cell on a timed code; a TOTAL row at the bottom.
    """
    lines = practice.lines.reset_index(drop=True)
    units = practice.adjudicated["units"].reset_index(drop=True)
    number = lines["patient_id"].astype(str).str.extract(r"(\d+)")[0].astype(int)
    dx = lines["dx_codes"].astype(str).str.split(",", expand=True).reindex(columns=range(4)).astype(object)
    dx = dx.where(dx.notna(), "")
    mods = lines["modifiers"].fillna("").astype(str).str.replace(",", " ")
    every = np.arange(len(lines))
    frame = pd.DataFrame({
        "Patient Name": number.map(lambda n: f"{LAST[(n // 10) % 10]}, {FIRST[n % 10]}"),
        "DOB": (pd.Timestamp("1960-01-01") + pd.to_timedelta(number % 9000, unit="D")).dt.strftime("%m/%d/%Y"),
        "Account #": "A" + number.astype(str),
        "Date of Service": _us(lines["service_date"]),
        "Claim #": lines["claim_id"].astype(str),
        "CPT": lines["cpt"].astype(str).where(every % 9 != 2, lines["cpt"].astype(str) + " "),
        "Modifier(s)": mods.where(every % 4 != 1, mods.str.lower()),
        "Units": units.astype(int),
        "Minutes": lines["minutes"].astype("Float64").astype(object).where(lines["minutes"].notna(), ""),
        "Charge": lines["charge"].map(lambda x: f"${x:,.2f}"),
        "Primary Insurance": lines["payer_id"].map(PAYER_NAMES),
        "Rendering Provider": lines["provider_id"].map(PROVIDERS),
        "Dx 1": dx[0], "Dx 2": dx[1], "Dx 3": dx[2], "Dx 4": dx[3],
        "Date Billed": _us(lines["submission_date"]),
        "Rx on File": lines["prescription_on_file"].map({True: "Y", False: "N"}),
        "Auth": lines["prior_auth"].map({True: "Y", False: "N"}),
    })
    frame.loc[8, "CPT"] = "98941"  # spreadsheet row 11: outside the catalog, kept and not priced
    timed = lines.index[lines["cpt"].isin(["97110", "97112", "97124", "97140"]) & (lines.index != 8)]
    frame.loc[timed[3], "Minutes"] = ""  # one blank minutes cell on a timed code: set aside
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Charge Detail Report - all providers, all payers"])
    sheet.append([])
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        sheet.append([None if v == "" else v for v in row])
    sheet.append(["TOTAL", *[None] * 8, f"${lines['charge'].sum():,.2f}", *[None] * (len(frame.columns) - 10)])
    book.save(path)
    return frame


@pytest.fixture(scope="module")
def practice():
    """A synthetic practice adjudicated by data/sample/payers.yaml (the known contract terms)."""
    return generate_practice(400, seed=11)


@pytest.fixture(scope="module")
def remittance(practice, tmp_path_factory):
    from analytics.remittance import read_835_many

    folder = tmp_path_factory.mktemp("era")
    write_remittances(practice, folder)
    remit, errors = read_835_many([folder])
    assert errors.empty
    return remit


@pytest.fixture(scope="module")
def messy(practice, tmp_path_factory):
    """The messy export and a clearinghouse folder: 835s named *.txt in a subfolder, and a PDF."""
    base = tmp_path_factory.mktemp("messy")
    export = base / "Charges Export.xlsx"
    frame = messy_export(practice, export)
    era = base / "era"
    (era / "2025").mkdir(parents=True)
    for f in write_remittances(practice, era / "2025"):
        f.rename(f.with_suffix(".txt"))
    (era / "remittance summary.pdf").write_bytes(b"%PDF-1.4 not an 835")
    return {"export": export, "era": era, "frame": frame, "base": base}


def init(folder: Path, messy: dict, *extra: str) -> int:
    return main(["init", str(folder), "--export", str(messy["export"]), "--remittances", str(messy["era"]),
                 "--locality", "01182-18", "--name", "Harbor Massage", *extra])


# ---------------------------------------------------------------------------------------
# The Medicare fee schedule at a locality
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("locality, year, code, fee", [
    ("00000-00", 2025, "97110", 28.79),  # FACTS 1.2, national 2025
    ("00000-00", 2025, "97140", 27.17),
    ("00000-00", 2026, "97140", 27.72),  # FACTS 1.2, 2026 non-QP
    ("00000-00", 2026, "97124", 29.73),
    ("13202-01", 2025, "97140", 30.44),  # FACTS 1.4 worked locality amounts
    ("10112-00", 2025, "97140", 25.34),
    ("04412-99", 2025, "97140", 26.44),
    ("13202-01", 2026, "97140", 30.95),
    ("10112-00", 2026, "97140", 25.95),
    ("04412-99", 2026, "97140", 27.03),
    ("13202-01", 2025, "97124", 33.71),
    ("10112-00", 2025, "97124", 27.25),
])
def test_medicare_unit_fee_at_a_locality(locality, year, code, fee):
    """FACTS 1.2 and 1.4: [(wRVU x GPCI) + (PE x GPCI) + (MP x GPCI)] x CF, one unit, to cents."""
    fees = medicare_unit_fees(locality, [year])
    assert float(fees.loc[fees["cpt"] == code, "fee"].iloc[0]) == fee


# ---------------------------------------------------------------------------------------
# Drafts learned from the 835s
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drafts(practice, remittance):
    return draft_policies(practice.lines, remittance, "00000-00")


def test_drafts_find_the_contracts_the_835s_were_paid_by(drafts):
    """data/sample/payers.yaml: ppo_gold pays 110% of Medicare (national), honours only XS on
    97124 with 97140, never covers 97010, $25 copay and a $500 deductible; hmo_capped 100% of
    Medicare; auto_pip flat $48 (97124) and $52 (97140) a unit and pays 97124 with 97140
    whatever the modifier (ncci.follow false); Medicare is kind medicare."""
    gold = drafts["ppo_gold"].spec
    assert gold["kind"] == "commercial"
    assert gold["fee"]["basis"] == "percent_of_medicare"
    assert gold["fee"]["percent"] == pytest.approx(110, abs=1.0)
    assert gold["ncci"]["pairs"] == [{"column1": "97140", "column2": "97124", "modifiers": ["XS"]}]
    assert gold["not_covered"] == ["97010"]
    assert gold["cost_share"]["copay"] == 25.0
    assert 0 < gold["cost_share"]["deductible"] <= 500  # the most one member paid toward it: a lower bound
    hmo = drafts["hmo_capped"].spec
    assert hmo["fee"]["basis"] == "percent_of_medicare" and hmo["fee"]["percent"] == pytest.approx(100, abs=1.0)
    pip = drafts["auto_pip"].spec
    assert pip["kind"] == "auto" and pip["fee"]["basis"] == "flat"
    assert pip["fee"]["rates"]["97124"] == 48.0 and pip["fee"]["rates"]["97140"] == 52.0
    assert pip["ncci"]["follow"] is False
    medicare = drafts["medicare"].spec
    assert medicare["kind"] == "medicare" and medicare["fee"] == {"basis": "medicare", "locality": "00000-00"}
    assert drafts["cash"].spec["fee"]["basis"] == "charges"


def test_every_learned_figure_says_its_lines_and_every_guess_is_marked(drafts):
    text = payers_yaml(drafts)
    learned_from_835s = payers_yaml({k: d for k, d in drafts.items() if d.kind not in ("medicare", "cash")})
    learned = [ln for ln in learned_from_835s.splitlines()
               if re.match(r"\s+('9\d{4}'|percent|copay|coinsurance):", ln)]
    assert learned
    for line in learned:
        assert re.search(r"\d[\d,]* (\w+ )?(lines?|claims?)\b", line), line
    for draft in drafts.values():
        for _, _, comment in draft.entries:
            if "guess" in comment or "placeholder" in comment:
                assert CONFIRM in comment
    assert text.count(f"# {CONFIRM}") == sum(d.guesses for d in drafts.values()) > 0


def test_the_drafted_file_is_a_valid_payers_yaml(drafts, tmp_path):
    path = tmp_path / "payers.yaml"
    path.write_text(payers_yaml(drafts, header=["drafted"]))
    policies = load_payers(path)
    assert set(policies) == set(drafts)
    assert policies["ppo_gold"].fee.percent == drafts["ppo_gold"].spec["fee"]["percent"]
    assert policies["medicare"].cost_share.coinsurance == 0.2


@pytest.mark.parametrize(("name", "kind"), [
    ("Patient", "cash"), ("SELF", "cash"), ("Uninsured", "cash"), ("Self Pay", "cash"),
    ("Patient First Health Plan", "commercial"), ("Blue Shield Gold PPO", "commercial"),
    ("Medicare Part B", "medicare"), ("Progressive Auto PIP", "auto"),
])
def test_a_payer_named_for_the_patient_is_drafted_as_self_pay(name, kind):
    from analytics.onboarding.drafts import draft_policies

    lines = pd.DataFrame({"payer_id": [name], "cpt": ["97124"], "claim_id": ["C1"]})
    (draft,) = draft_policies(lines, None, "00000-00").values()
    assert draft.kind == kind


def test_export_names_and_835_names_become_aliases_of_one_payer(practice, remittance):
    """The export says "Blue Shield Gold PPO", its 835s "GOLD PPO" (N1*PR) and ppo_gold (REF*2U)."""
    lines = practice.lines.assign(payer_id=practice.lines["payer_id"].map(PAYER_NAMES))
    drafts = draft_policies(lines, remittance, "01182-18")
    assert "medicare" in drafts  # the one Medicare payer gets the id --payer medicare finds
    policies = load_payers(yaml.safe_load(payers_yaml(drafts)))
    assert resolve_payer("GOLD PPO", policies) == resolve_payer("blue shield gold ppo", policies)
    assert resolve_payer("Gold PPO", policies) == "blue_shield_gold_ppo"
    assert resolve_payer("Medicare Part B", policies) == "medicare"
    assert drafts["medicare"].spec["fee"]["locality"] == "01182-18"


# ---------------------------------------------------------------------------------------
# The init command
# ---------------------------------------------------------------------------------------


def _rows(out: str) -> tuple[int, int, int, int]:
    m = re.search(r"Rows in ([\d,]+) = rows used ([\d,]+) \+ rows set aside ([\d,]+)"
                  r"(?: \+ report rows \(totals, repeated headers, page lines\) ([\d,]+))?", out)
    assert m, out
    return tuple(int((g or "0").replace(",", "")) for g in m.groups())


def test_init_writes_the_practice_folder(messy, tmp_path, capsys):
    folder = tmp_path / "practice"
    assert init(folder, messy) == 0
    out = capsys.readouterr().out
    rows_in, used, set_aside, totals = _rows(out)
    assert rows_in == used + set_aside + totals == len(messy["frame"]) + 1
    assert (set_aside, totals) == (1, 1)  # the blank minutes cell; the TOTAL row
    assert (folder / "service_lines.xlsx").read_bytes() == messy["export"].read_bytes()
    assert yaml.safe_load((folder / "practice.yaml").read_text())["locality"] == "01182-18"
    assert yaml.safe_load((folder / "mapping.yaml").read_text())["header_row"] == 3
    copied = sorted(p.name for p in (folder / "remittances").iterdir())
    assert copied and all(name.endswith(".txt") for name in copied)  # the clearinghouse's names kept
    assert "remittance summary.pdf" in out and "not an X12 file" in out
    key = folder / ".analytics-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "Confirm before the first report" in out and CONFIRM in out
    assert f"Next: python -m analytics report all --data {folder}" in out
    text = (folder / "payers.yaml").read_text()
    assert "White" not in text and "A1000" not in text  # no patient name or account number


def test_init_with_835s_and_an_export_without_claim_numbers(messy, tmp_path, capsys):
    """No claim number to tie an 835 to an export payer: the 835s' payers are drafted by name."""
    export = tmp_path / "charges.csv"
    export.write_text("Account #,Date of Service,CPT,Minutes,Charge,Primary Insurance,Rendering Provider\n"
                      'A1,03/10/2025,97140,30,$78.00,Blue Shield Gold PPO,"Tessa Ng, LMT"\n'
                      'A2,03/11/2025,97124,25,$72.00,Medicare Part B,"Hannah Reyes, PT"\n')
    folder = tmp_path / "practice"
    assert main(["init", str(folder), "--export", str(export), "--remittances", str(messy["era"]),
                 "--locality", "01182-18"]) == 0
    assert yaml.safe_load((folder / "payers.yaml").read_text())["payers"]
    assert "Next: python -m analytics report all" in capsys.readouterr().out


def test_init_check_reads_the_export_and_the_835s_as_the_reports_do(messy, tmp_path, capsys):
    folder = tmp_path / "practice"
    assert init(folder, messy) == 0
    remit = folder / "remittances"
    good = sorted(remit.rglob("*.txt"))[0]
    (remit / "cut.835").write_text(good.read_text()[:300])  # truncated
    (remit / "again.txt").write_bytes(good.read_bytes())  # downloaded twice
    capsys.readouterr()
    assert main(["init", str(folder), "--check"]) == 0
    out = capsys.readouterr().out
    read = re.search(r"read as the reports read them: ([\d,]+) service line\(s\), ([\d,]+) 835 file\(s\)", out)
    assert read and int(read[1].replace(",", "")) == len(messy["frame"]) - 1  # the blank minutes line set aside
    assert "1 835 file(s) could not be read and are not in these figures: cut.835" in out
    copies = next(line for line in out.splitlines() if "byte-identical copies" in line)
    assert "1 835 file(s)" in copies and "again.txt" in copies and good.name in copies
    assert "were set aside" in out  # the line set aside, with its row


def test_init_again_keeps_the_owners_edits(messy, tmp_path, capsys):
    folder = tmp_path / "practice"
    assert init(folder, messy) == 0
    drafted = (folder / "payers.yaml").read_text()
    confirmed = re.sub(rf"\s+# {CONFIRM}:.*", "", drafted)
    (folder / "payers.yaml").write_text(confirmed)
    capsys.readouterr()
    assert init(folder, messy) == 0
    out = capsys.readouterr().out
    assert (folder / "payers.yaml").read_text() == confirmed
    assert (folder / "payers.yaml.new").read_text() == drafted
    assert "payers.yaml.new" in out and "kept" in out
    assert re.search(r"mapping\.yaml\s+unchanged", out)
    assert init(folder, messy, "--force") == 0
    assert (folder / "payers.yaml").read_text() == drafted


def test_init_again_refreshes_the_drafts_nobody_edited(messy, tmp_path, capsys):
    """A draft init wrote and nobody changed is replaced by the new one (a first run whose
    export could not be read leaves a payers.yaml with no payers); an edited one is kept."""
    folder = tmp_path / "practice"
    empty = tmp_path / "charges.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["Patient ID", "Date of Service", "CPT", "Minutes", "Charge", "Primary Insurance",
                        "Rendering Provider"])
    book.active.append(["P1", "4-Mar-2025", "97140", "30", "$78.00", "Medicare Part B", "Tessa Ng, LMT"])  # no date
    book.save(empty)
    assert main(["init", str(folder), "--export", str(empty), "--locality", "01182-18"]) == 0
    first = (folder / "payers.yaml").read_text()
    (folder / "practice.yaml").write_text((folder / "practice.yaml").read_text() + "# the owner's note\n")
    capsys.readouterr()
    assert init(folder, messy) == 0
    out = capsys.readouterr().out
    assert (folder / "payers.yaml").read_text() != first and not (folder / "payers.yaml.new").exists()
    assert re.search(r"payers\.yaml\s+replaced.*not edited since init wrote it", out)
    assert (folder / "practice.yaml").read_text().endswith("# the owner's note\n")  # edited: kept
    assert (folder / "practice.yaml.new").exists()


@pytest.mark.parametrize("argv, flag", [
    (["init", "{tmp}/p", "--export", "{tmp}/missing.xlsx"], "--export"),
    (["init", "{tmp}/p", "--export", "{export}", "--locality", "99999-99"], "--locality"),
    (["init", "{tmp}/p", "--export", "{export}", "--remittances", "{tmp}/no-era"], "--remittances"),
    (["init", "--localities", "ZZ"], "--localities"),
])
def test_init_mistakes_name_the_flag(argv, flag, messy, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, export=messy["export"]) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and flag in err and "Traceback" not in err


def test_init_lists_localities(capsys):
    """FACTS 1.4: Manhattan NY is MAC-locality 13202-01."""
    assert main(["init", "--localities", "NY"]) == 0
    assert "13202-01" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------
# One locality per run
# ---------------------------------------------------------------------------------------


def _sample_copy(tmp_path: Path, locality: str) -> Path:
    folder = tmp_path / "practice"
    folder.mkdir()
    for name in ("service_lines.csv", "payers.yaml"):
        shutil.copy(SAMPLE / name, folder / name)
    (folder / "practice.yaml").write_text(f"name: Harbor\nlocality: '{locality}'\n")
    return folder


def test_a_bad_locality_in_practice_yaml_stops_the_run_before_any_notebook(tmp_path, capsys):
    folder = _sample_copy(tmp_path, "99999-99")
    out = tmp_path / "reports"
    assert main(["report", "all", "--data", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(folder / "practice.yaml") in err and "99999-99" in err and "init --localities" in err
    assert not list(out.rglob("*.html")) and not list(out.rglob("*.ipynb"))


def test_a_bad_locality_parameter_names_the_flag(tmp_path, capsys):
    folder = _sample_copy(tmp_path, "00000-00")
    assert main(["report", "contracts", "--data", str(folder), "--out", str(tmp_path / "r"),
                 "-p", "locality", "1234"]) == 2
    err = capsys.readouterr().err
    assert "-p locality" in err and "'1234'" in err and "init --localities" in err


def test_one_locality_prices_the_contracts_and_the_benchmark():
    """A 110%-of-Medicare contract at Los Angeles (01182-18) in 2025: FACTS 1.4 GPCIs
    1.042/1.194/0.690, FACTS 1.1 RVUs of 97140 0.43/0.40/0.01, CF 32.3465."""
    from analytics.kpis import at_locality, build_history, percent_of_medicare

    charges = pd.DataFrame({
        "claim_id": ["C1"], "line_id": ["C1-1"], "patient_id": ["P1"], "service_date": pd.to_datetime(["2025-06-02"]),
        "provider_id": ["LMT1"], "provider_type": ["lmt"], "payer_id": ["ppo"], "cpt": ["97140"],
        "minutes": [15.0], "modifiers": [""], "charge": [120.0]})
    payers = {"payers": {"ppo": {"kind": "commercial", "fee": {"basis": "percent_of_medicare", "percent": 110,
                                                               "locality": "00000-00"}}}}
    national = build_history(charges, None, payers=payers, practice={"locality": "01182-18"}, as_of="2025-12-31")
    assert national.base["contract_allowed"].iloc[0] == pytest.approx(1.10 * 27.17, abs=0.01)  # FACTS 1.2
    la = at_locality(national)  # practice.yaml's locality
    fee = (0.43 * 1.042 + 0.40 * 1.194 + 0.01 * 0.690) * 32.3465
    assert la.base["contract_allowed"].iloc[0] == pytest.approx(1.10 * fee, abs=0.01)
    assert la.payers["ppo"].fee.locality == la.locality == "01182-18"
    assert at_locality(national, "13202-01").base["contract_allowed"].iloc[0] == pytest.approx(1.10 * 30.44, abs=0.01)
    pct = percent_of_medicare(la.select(), locality=None)  # the benchmark takes the same locality
    assert pct.empty or set(pct["payer_id"]) <= {"ppo"}
    no_locality = build_history(charges, None, payers=payers, as_of="2025-12-31")
    assert at_locality(no_locality) is no_locality


def test_every_report_notebook_prices_at_the_run_locality():
    """The pages load the history through kpis.at_locality with the run's locality parameter."""
    from analytics.reports import REPORTS

    for name in REPORTS.values():
        nb = json.loads((REPO / "notebooks" / name).read_text())
        source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
        assert "locality" in source
        if "load_history(" in source:
            assert re.search(r"at_locality\(kpis\.load_history\([^)]*\), locality\)", source), name


# ---------------------------------------------------------------------------------------
# The README's three commands, end to end
# ---------------------------------------------------------------------------------------


def readme_commands() -> list[list[str]]:
    """The commands of the README's "Your own practice" section, as argv lists."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Your own practice", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line)[3:] for line in block.splitlines() if line.startswith(".venv/bin/python -m analytics")]


@pytest.mark.slow
def test_the_readme_takes_a_messy_export_to_four_pages(messy, tmp_path, capsys):
    commands = readme_commands()
    assert [c[0] for c in commands] == ["init", "init", "report"]
    home = tmp_path / "home"
    downloads = home / "Downloads"
    downloads.mkdir(parents=True)
    shutil.copy(messy["export"], downloads / "charges.xlsx")
    shutil.copytree(messy["era"], downloads / "era")

    def run(argv: list[str]) -> int:
        return main([os.path.expanduser(a).replace(os.path.expanduser("~"), str(home)) if "~" in a else a
                     for a in argv])

    assert run(commands[0]) == 0
    out = capsys.readouterr().out
    rows_in, used, set_aside, totals = _rows(out)
    assert set_aside == 1 and rows_in == used + set_aside + totals
    payers = home / "practice" / "payers.yaml"
    payers.write_text(re.sub(rf"\s+# {CONFIRM}:.*", "", payers.read_text()))  # the owner confirms every guess
    assert run(commands[1]) == 0
    assert f"No {CONFIRM} mark left" in capsys.readouterr().out
    assert run(commands[2]) == 0, capsys.readouterr().err
    manifests = list((home / "practice" / "reports").glob("*/manifest.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    from analytics.reports import REPORTS

    assert {n: r["status"] for n, r in manifest["reports"].items()} == dict.fromkeys(REPORTS, "ok")
    pages = {p.stem: p.read_text() for p in manifests[0].parent.glob("*.html") if p.stem != "pack"}
    assert {"revenue", "denials", "scenarios", "contracts"} <= set(REPORTS) <= set(pages)
    assert any(re.search(r"\b1\b[^<]{0,80}set aside|set aside[^<]{0,80}\b1\b", page) for page in pages.values())
    for page in pages.values():
        assert "Donna" not in page and "A1000" not in page
