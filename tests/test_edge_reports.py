"""The report pack on edge inputs: a payer without claims, a year without remittances, an
empty and a one-line export.

Each scenario is a copy of the sample practice (or a small folder beside it) run once through
``report all`` by a module-scoped fixture; the tests read the published HTML pages. A page of
an edge case must still run (status ok) and say in words what is missing: "No claims for
Blue Choice PPO in this period", "No remittance (835) covers services in this period", never
a NaN, a misleading 0% denial rate or "every paid line matched its contract" when nothing
was paid.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_kpis import PAYERS, charge_lines, remittance

from analytics import cli, kpis, plots, reports
from analytics.exceptions import ParameterError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
HISTORY_PAGES = ("revenue", "denials", "contracts")

# A payer the practice has signed with but not billed yet: in payers.yaml, not in the export.
NEW_PAYER = "blue_choice"
NEW_PAYER_NAME = "Blue Choice PPO"
NEW_POLICY = {
    "name": NEW_PAYER_NAME, "kind": "commercial", "unit_method": "ama",
    "fee": {"basis": "percent_of_medicare", "percent": 105, "locality": "00000-00"},
    "ncci": {"follow": True}, "cost_share": {"deductible": 0, "copay": 20, "coinsurance": 0},
}
# The year whose remittances are taken away, and the as-of date of the sample (practice.yaml).
OPEN_YEAR = "2026"
AS_OF = "2026-02-28"

NO_REMITTANCE = "No remittance (835) covers services in this period"
NOTHING_TO_COMPARE = "nothing paid to compare with the contracts or with Medicare"


# --- helpers -----------------------------------------------------------------------------------


def sample_copy(root: Path) -> Path:
    """A copy of data/sample (without its truth tables) under ``root``."""
    if not (SAMPLE / "service_lines.csv").exists():
        pytest.skip("data/sample has no service_lines.csv yet: generate it with "
                    "`python -m analytics sample --out data/sample`")
    folder = root / "practice"
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns("truth"))
    return folder


def text_of(result: reports.RunResult, name: str) -> str:
    """The words of a published page: tags, styles and images dropped, entities decoded, spaces collapsed."""
    report = next(r for r in result.reports if r.name == name)
    assert report.status == "ok", f"{name}: {report.status} {report.failed_cell} {report.error}"
    raw = report.html.read_text()
    raw = re.sub(r"<(style|script)\b.*?</\1>", " ", raw, flags=re.DOTALL | re.IGNORECASE)
    words = html.unescape(re.sub(r"<[^>]+>", " ", raw)).replace("\u00b6", " ")
    return re.sub(r"\s+", " ", words).strip()


def assert_no_nan_soup(text: str, where: str) -> None:
    """No undefined number reaches the words of a page (a '-' in a table cell is fine)."""
    found = re.findall(r"\b(?:nan|NaN|NaT|inf)\b|-: ", text)
    assert not found, f"{where}: {found[:5]}"


def history_of(result: reports.RunResult, folder: Path) -> kpis.History:
    """The history a run's pages were computed from (same period, as-of date and payers)."""
    params = next(r for r in result.reports if r.name == "revenue").parameters
    return kpis.load_history(folder).select(start=params["period_start"], end=params["period_end"],
                                            as_of=params["as_of"], payers=params["payers"])


# --- the words on a small hand-built history (no notebooks) --------------------------------------


@pytest.fixture(scope="module")
def hand() -> kpis.History:
    """tests/test_kpis.py's history (acme, beta, self-pay) with a fourth payer that has no claims."""
    policies = {"payers": {**PAYERS["payers"], "gamma": {"name": "Gamma Care", "kind": "commercial",
                                                         "fee": {"basis": "flat", "rates": {"97140": 55.0}}}}}
    return kpis.build_history(charge_lines(), remittance(), payers=policies, as_of="2026-03-31", salt="test")


def test_payer_without_claims_can_be_selected_and_is_named(hand):
    alone = hand.select(payers=["gamma"])
    assert alone.lines.empty and alone.payer_ids == ("gamma",)
    assert kpis.heading(alone).endswith("payers: Gamma Care.")  # the summary below says there is nothing
    assert kpis.revenue_narrative(alone) == ("- No claims for Gamma Care in this period: nothing was billed, paid "
                                             "or left open.")
    assert kpis.denials_narrative(alone) == "- No claims for Gamma Care in this period: no denial rate to report."
    assert kpis.contracts_narrative(alone) == (f"- No claims for Gamma Care in this period: {NOTHING_TO_COMPARE}.")
    beside = hand.select(payers=["gamma", "acme"])
    assert set(beside.period["payer_id"]) == {"acme"}
    assert kpis.heading(beside).endswith("No claims for Gamma Care in this period; the figures below are for "
                                         "Acme Health only.")
    assert kpis.summary(beside)["gross_charges"] == kpis.summary(hand.select(payers=["acme"]))["gross_charges"]
    # every payer selected: no sentence about missing ones
    assert "No claims" not in kpis.heading(hand)


def test_a_payer_neither_billed_nor_in_payers_yaml_is_still_unknown(hand):
    with pytest.raises(ParameterError, match=r"Unknown payer id\(s\) \['nobody'\]") as caught:
        hand.select(payers=["nobody", "gamma"])
    assert "payers.yaml also defines ['gamma']" in str(caught.value)
    with pytest.raises(ParameterError, match=r"Unknown provider id\(s\) \['gamma'\]"):
        hand.select(providers=["gamma"])  # providers come from the data only


def test_nothing_adjudicated_reads_as_nothing_adjudicated(hand):
    # As of 2026-01-19 no remittance had come back: January's services are open, not 0% denied.
    early = hand.select(as_of="2026-01-19", start="2026-01-01")
    s = kpis.summary(early)
    assert s["lines"] > 0 and s["adjudicated_lines"] == 0
    revenue = kpis.revenue_narrative(early)
    assert f"{NO_REMITTANCE}; every charge is still open" in revenue
    assert "2 visits were billed $300 in charges ($0 self-pay)." in revenue
    assert "Net collection rate" not in revenue and "first pass" not in revenue
    denials = kpis.denials_narrative(early)
    assert denials == ("- Nothing has been adjudicated yet: no remittance (835) covers services in this period, "
                       "so there is no denial rate for its 3 insurance lines.")
    assert kpis.contracts_narrative(early) == f"- {NO_REMITTANCE}: {NOTHING_TO_COMPARE} yet."
    assert kpis.monthly(early)["month"].dt.strftime("%Y-%m").tolist() == ["2026-01"]


def test_self_pay_only_has_no_insurance_rates(hand):
    cash = hand.select(payers=["self"])  # L8, a self-pay visit
    assert "1 visit was billed $100 in charges ($100 self-pay)." in kpis.revenue_narrative(cash)
    assert "Every visit in this period was self-pay" in kpis.revenue_narrative(cash)
    assert kpis.denials_narrative(cash) == ("- Every visit in this period was self-pay: no insurance lines, so no "
                                            "denial rate.")
    assert kpis.contracts_narrative(cash) == f"- Every visit in this period was self-pay: {NOTHING_TO_COMPARE}."


def test_one_line_sentences_are_singular(hand):
    one = hand.select(start="2026-02-10", end="2026-02-10")  # L3: beta, paid with the patient's share
    assert "1 visit was billed $100 in charges" in kpis.revenue_narrative(one)
    assert "Payers denied 0 of 1 adjudicated line (0.0%)" in kpis.denials_narrative(one)
    assert "nothing was left uncollected" in kpis.revenue_narrative(one)


# --- 1. a payer in payers.yaml without a single claim --------------------------------------------


@pytest.fixture(scope="module")
def new_payer_folder(tmp_path_factory) -> Path:
    folder = sample_copy(tmp_path_factory.mktemp("new-payer"))
    policies = yaml.safe_load((folder / "payers.yaml").read_text())
    assert NEW_PAYER not in policies["payers"]
    policies["payers"][NEW_PAYER] = NEW_POLICY
    (folder / "payers.yaml").write_text(yaml.safe_dump(policies, sort_keys=False))
    export = pd.read_csv(folder / "service_lines.csv", dtype=str)
    assert NEW_PAYER not in set(export["payer_id"])
    return folder


@pytest.fixture(scope="module")
def payer_alone(new_payer_folder, tmp_path_factory) -> reports.RunResult:
    return reports.run_reports("all", new_payer_folder, tmp_path_factory.mktemp("alone"),
                               parameters={"payers": NEW_PAYER}, timeout=300)


@pytest.fixture(scope="module")
def payer_beside(new_payer_folder, tmp_path_factory) -> reports.RunResult:
    # the pages of the practice's history; the model and scenario pages on a payer without
    # claims are payer_alone's
    return reports.run_reports(list(HISTORY_PAGES), new_payer_folder, tmp_path_factory.mktemp("beside"),
                               parameters={"payers": f"{NEW_PAYER},medicare"}, timeout=300)


def test_payer_without_claims_alone_runs_every_page(payer_alone):
    """``-p payers blue_choice``: a payer of payers.yaml is a valid choice before its first claim."""
    assert [r.name for r in payer_alone.reports] == list(reports.REPORTS)
    assert payer_alone.ok, [(r.name, r.status, r.failed_cell, r.error) for r in payer_alone.failed]
    manifest = json.loads(payer_alone.manifest.read_text())
    assert {e["status"] for e in manifest["reports"].values()} == {"ok"}
    assert manifest["reports"]["revenue"]["parameters"]["payers"] == [NEW_PAYER]


def test_payer_without_claims_alone_pages_say_so(payer_alone):
    for name in HISTORY_PAGES:
        text = text_of(payer_alone, name)
        assert f"payers: {NEW_PAYER_NAME}." in text, name
        assert text.count(f"No claims for {NEW_PAYER_NAME} in this period") == 1, name
        assert_no_nan_soup(text, name)
    revenue = text_of(payer_alone, "revenue")
    assert f"No claims for {NEW_PAYER_NAME} in this period: nothing was billed, paid or left open." in revenue
    denials = text_of(payer_alone, "denials")
    assert f"No claims for {NEW_PAYER_NAME} in this period: no denial rate to report." in denials
    assert "0.0%" not in denials and "denied 0 of" not in denials
    contracts = text_of(payer_alone, "contracts")
    assert f"No claims for {NEW_PAYER_NAME} in this period: {NOTHING_TO_COMPARE}." in contracts
    assert "matched its contract" not in contracts
    # the coding scenarios model one session under the payer's contract, claims or not
    scenarios = text_of(payer_alone, "scenarios")
    assert NEW_PAYER_NAME in scenarios or NEW_PAYER in scenarios
    others = ("ppo_gold", "Gold PPO", "auto_pip", "Auto PIP carrier", "hmo_capped", "Silver HMO", "workers_comp")
    assert not [o for o in others if o in scenarios]


def test_payer_without_claims_beside_one_with_claims(payer_beside, new_payer_folder):
    """``-p payers blue_choice,medicare``: the pages show Medicare's figures and say Blue Choice had none."""
    assert payer_beside.ok, [(r.name, r.status, r.failed_cell, r.error) for r in payer_beside.failed]
    history = history_of(payer_beside, new_payer_folder)
    assert set(history.period["payer_id"]) == {"medicare"}
    s = kpis.summary(history)
    assert s["lines"] > 0 and s["adjudicated_lines"] > 0
    sentence = f"No claims for {NEW_PAYER_NAME} in this period; the figures below are for Medicare Part B only."
    for name in HISTORY_PAGES:
        text = text_of(payer_beside, name)
        assert f"payers: {NEW_PAYER_NAME}, Medicare Part B." in text, name
        assert sentence in text, name
        assert_no_nan_soup(text, name)
    revenue = text_of(payer_beside, "revenue")
    for figure in (kpis.fmt_money(s["gross_charges"]), kpis.fmt_money(s["payer_paid"]),
                   kpis.fmt_pct(s["net_collection_rate"]), kpis.fmt_money(s["ar_balance"])):
        assert figure in revenue, figure
    assert "Medicare Part B" in revenue.split("By payer", 1)[1]
    denials = text_of(payer_beside, "denials")
    assert (f"Payers denied {s['denied_lines']:,} of {s['adjudicated_lines']:,} adjudicated lines "
            f"({kpis.fmt_pct(s['denial_rate'])})") in denials
    contracts = text_of(payer_beside, "contracts")
    assert "Against Medicare (national rates): Medicare Part B" in contracts


# --- 2. a year whose 835 remittances are missing ---------------------------------------------


@pytest.fixture(scope="module")
def open_year_folder(tmp_path_factory) -> Path:
    """The sample without every 835 file that answers a claim for a service in OPEN_YEAR."""
    folder = sample_copy(tmp_path_factory.mktemp("open-year"))
    removed = [p for p in (folder / "remittances").iterdir() if f"DTM*472*{OPEN_YEAR}" in p.read_text()]
    assert removed and len(removed) < len(list((folder / "remittances").iterdir()))
    for p in removed:
        p.unlink()
    return folder


@pytest.fixture(scope="module")
def open_year(open_year_folder, tmp_path_factory) -> reports.RunResult:
    return reports.run_reports("all", open_year_folder, tmp_path_factory.mktemp("open-year-out"),
                               period=OPEN_YEAR, timeout=300)


@pytest.fixture(scope="module")
def open_year_history(open_year, open_year_folder) -> kpis.History:
    return history_of(open_year, open_year_folder)


def test_year_without_remittances_runs_every_page(open_year, open_year_history):
    assert open_year.ok, [(r.name, r.status, r.failed_cell, r.error) for r in open_year.failed]
    params = open_year.reports[0].parameters
    assert (params["period_start"], params["period_end"], params["as_of"]) == (
        f"{OPEN_YEAR}-01-01", f"{OPEN_YEAR}-12-31", AS_OF)
    s = kpis.summary(open_year_history)
    assert s["lines"] > 0 and s["insurance_charges"] > 0 and s["adjudicated_lines"] == 0


def test_year_without_remittances_shows_everything_open(open_year, open_year_history):
    h = open_year_history
    s = kpis.summary(h)
    ins = h.period[~h.period["self_pay"].to_numpy()]
    # every submitted insurance charge of the year is open A/R (the rest is not billed yet)
    assert not ins["adjudicated"].any()
    submitted = float(ins.loc[ins["submitted"].to_numpy(), "charge"].sum())
    assert s["unbilled_charges"] == pytest.approx(float(ins["charge"].sum()) - submitted, abs=0.01)
    assert s["ar_balance"] >= submitted - 0.01
    revenue = text_of(open_year, "revenue")
    assert f"{NO_REMITTANCE}; every charge is still open" in revenue
    assert f"Insurance A/R as of {AS_OF}: {kpis.fmt_money(s['ar_balance'])}" in revenue
    assert "resolved on the first pass" not in revenue and "was denied" not in revenue
    # every insurance payer of the year has its open claims in the A/R table
    aging = revenue.split("Insurance A/R", 1)[1]
    for payer in set(ins["payer"].astype(str)):
        assert payer in aging, payer
    assert_no_nan_soup(revenue, "revenue")
    # the months stop at the as-of date: nothing after it is known
    months = kpis.monthly(h)["month"].dt.strftime("%Y-%m").tolist()
    assert months == [f"{OPEN_YEAR}-01", f"{OPEN_YEAR}-02"]
    assert f"{OPEN_YEAR}-03 " not in revenue


def test_year_without_remittances_has_no_denial_rate(open_year, open_year_history):
    denials = text_of(open_year, "denials")
    n = int((~open_year_history.period["self_pay"].to_numpy()).sum())
    assert ("Nothing has been adjudicated yet: no remittance (835) covers services in this period, so there is "
            f"no denial rate for its {n:,} insurance lines.") in denials
    assert "0.0%" not in denials and "denied 0 of" not in denials
    assert_no_nan_soup(denials, "denials")


def test_year_without_remittances_has_nothing_to_compare(open_year):
    contracts = text_of(open_year, "contracts")
    assert f"{NO_REMITTANCE}: {NOTHING_TO_COMPARE} yet." in contracts
    assert "matched its contract" not in contracts and "is recoverable" not in contracts
    assert_no_nan_soup(contracts, "contracts")


def chart_words(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in (*ax.texts, ax.title))


def test_underpayment_chart_does_not_claim_a_match_when_nothing_was_paid(open_year_history):
    summary = kpis.underpayments(open_year_history).summary
    assert summary.empty
    words = chart_words(plots.underpayments_over_time(summary))
    assert words.strip() and "matched its contract" not in words


def test_denial_chart_does_not_claim_no_denials_when_nothing_was_adjudicated(open_year_history):
    reasons = kpis.denial_reasons(open_year_history)
    assert reasons.empty
    words = chart_words(plots.denial_pareto(reasons))
    assert words.strip() and "No denials in this period" not in words


# --- 3. an empty and a one-line export ----------------------------------------------------------


def small_folder(root: Path, rows: int, *, with_835: bool) -> Path:
    """The sample's payers.yaml and practice.yaml with the export's header and its first ``rows`` lines."""
    if not (SAMPLE / "service_lines.csv").exists():
        pytest.skip("data/sample has no service_lines.csv yet")
    folder = root / "practice"
    (folder / "remittances").mkdir(parents=True)
    for name in ("payers.yaml", "practice.yaml"):
        shutil.copyfile(SAMPLE / name, folder / name)
    head = (SAMPLE / "service_lines.csv").read_text().splitlines(keepends=True)[: rows + 1]
    (folder / "service_lines.csv").write_text("".join(head))
    if with_835:
        claims = pd.read_csv(folder / "service_lines.csv", dtype=str)["claim_id"]
        for p in sorted((SAMPLE / "remittances").iterdir()):
            if any(f"CLP*{c}*" in p.read_text() for c in claims):
                shutil.copyfile(p, folder / "remittances" / p.name)
    return folder


def test_header_only_export_stops_with_exit_2_naming_the_file(tmp_path, capsys):
    """An export with its header and no line stops ``report all`` with exit code 2.

    A practice owner who runs the monthly reports on an empty export has a failed or
    mis-filtered export, not a month without patients; four pages of $0 would hide that (and
    a cron job would publish them silently). So the command names the file and the fix and
    writes nothing. A period without services in a non-empty export still gives pages that
    say so (see the payer tests above).
    """
    folder = small_folder(tmp_path, 0, with_835=False)
    out = tmp_path / "out"
    code = cli.main(["report", "all", "--data", str(folder), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{folder.resolve() / 'service_lines.csv'} has a header and no charge lines" in err
    assert "Export the service lines again" in err
    assert not out.exists()


def test_export_whose_every_line_is_quarantined_stops_with_exit_2(tmp_path, capsys):
    """Every row rejected by intake is the same as an empty export: exit 2, with the way to see why."""
    folder = small_folder(tmp_path, 1, with_835=False)
    export = pd.read_csv(folder / "service_lines.csv", dtype=str, keep_default_na=False)
    export.assign(cpt="MASSAGE").to_csv(folder / "service_lines.csv", index=False)
    code = cli.main(["report", "all", "--data", str(folder), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "none of the 1 charge line(s)" in err.lower() and "python -m analytics intake" in err
    assert "quarantine.csv" in err


@pytest.fixture(scope="module")
def one_line(tmp_path_factory) -> tuple[reports.RunResult, Path]:
    folder = small_folder(tmp_path_factory.mktemp("one-line"), 1, with_835=True)
    return reports.run_reports("all", folder, tmp_path_factory.mktemp("one-line-out"), timeout=300), folder


def test_one_line_export_gives_pages_about_that_line(one_line):
    """A one-line export (a practice's first claim) is a report, not an error: the pages show it."""
    result, folder = one_line
    assert result.ok, [(r.name, r.status, r.failed_cell, r.error) for r in result.failed]
    line = pd.read_csv(folder / "service_lines.csv", dtype=str).iloc[0]
    history = history_of(result, folder)
    s = kpis.summary(history)
    assert (s["lines"], s["visits"], s["adjudicated_lines"]) == (1, 1, 1)
    for name in HISTORY_PAGES:
        text = text_of(result, name)
        assert f"Services from {line['service_date']} to {line['service_date']}" in text, name
        assert_no_nan_soup(text, name)
    revenue = text_of(result, "revenue")
    assert f"1 visit was billed {kpis.fmt_money(float(line['charge']))} in charges" in revenue
    assert f"paid {kpis.fmt_money(s['payer_paid'])}" in revenue
    denials = text_of(result, "denials")
    assert f"Payers denied {s['denied_lines']} of 1 adjudicated line (" in denials
    contracts = text_of(result, "contracts")
    assert NOTHING_TO_COMPARE not in contracts
