"""The units and price commands, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.cli import main

REPO = Path(__file__).resolve().parents[1]


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, method, expected", [
    (["97112=24", "97110=23"], "cms", {"97112": 2, "97110": 1}),
    (["97110=33", "97140=7"], "cms", {"97110": 2, "97140": 1}),
    (["97110=18", "97140=13", "97116=10", "97035=8"], "cms", {"97110": 1, "97140": 1, "97116": 1, "97035": 0}),
    (["97110=33", "97140=7"], "ama", {"97110": 2, "97140": 0}),
    (["97110=10", "97140=10", "97112=10"], "ama", {"97110": 1, "97140": 1, "97112": 1}),
    (["97140=7", "97124=7"], "ama", {"97140": 0, "97124": 0}),
    (["97140=30", "97010"], "cms", {"97140": 2, "97010": 1}),
])
def test_units_json(capsys, args, method, expected):
    data = run_json(capsys, "units", "--method", method, "--json", *args)
    assert {line["code"]: line["units"] for line in data["lines"]} == expected
    assert data["total_units"] == sum(expected.values())
    assert all(line["reason"] for line in data["lines"])


def test_units_cms_totals_for_the_facts_sessions(capsys):
    for args, total in ((["97110=10", "97140=10", "97112=10"], 2), (["97140=7", "97124=7"], 1)):
        assert run_json(capsys, "units", "--method", "cms", "--json", *args)["total_units"] == total


def test_price_json_mppr_and_locality(capsys):
    data = run_json(capsys, "price", "--payer", "medicare", "--year", "2025", "--json", "97110x2", "97140")
    assert data["total_allowed"] == 71.32
    assert [line["units"] for line in data["lines"]] == [2, 1]
    data = run_json(capsys, "price", "--payer", "medicare", "--year", "2025", "--locality", "13202-01", "--json",
                    "97140")
    assert data["total_allowed"] == 30.44


def test_price_denied_line_shows_zero_with_reason(capsys):
    data = run_json(capsys, "price", "--payer", "medicare", "--year", "2026", "--json", "97140", "97124", "97010")
    lines = {line["code"]: line for line in data["lines"]}
    assert lines["97124"]["allowed"] == 0 and lines["97124"]["carc"] == "97"
    assert "bundled" in lines["97124"]["reason"] and "bundled" in lines["97010"]["reason"]
    data = run_json(capsys, "price", "--payer", "medicare", "--year", "2026", "--json", "97140", "97124:59")
    assert all(line["allowed"] > 0 for line in data["lines"])


@pytest.mark.parametrize("argv, message", [
    (["units", "99999=10"], "does not know (99999)"),
    (["units", "97110=-4"], "negative minutes"),
    (["units", "97110=ten"], "not a number"),
    (["units", "97110"], "no minutes for timed code 97110"),
    (["price", "--payer", "acme", "97140"], "Unknown payer 'acme'"),
    (["price", "--payer", "medicare", "--year", "2025", "--locality", "99999-99", "97140"], "99999-99"),
    (["price", "--payer", "medicare", "--year", "2019", "97140"], "no Medicare rates (2019)"),
    (["price", "--payers", "/nonexistent.yaml", "97140"], "does not exist"),
])
def test_bad_input_one_clear_error(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "analytics", "units", "--method", "cms", "97110=33", "97140=7"],
                         capture_output=True, text=True, cwd=REPO, check=True)
    assert "total units: 3" in out.stdout


# ---------------------------------------------------------------------------------------
# Plausible mistakes on any command: exit 2, the flag named, no traceback
# ---------------------------------------------------------------------------------------

SAMPLE = REPO / "data" / "sample"


@pytest.fixture
def places(tmp_path):
    """Paths the mistakes below name: a CSV where Parquet is expected, a file where a folder is."""
    csv = tmp_path / "lines.csv"
    csv.write_text("patient_id,cpt\nP1,97140\n")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    return {"tmp": tmp_path, "csv": csv, "file": a_file, "sample": SAMPLE, "payers": SAMPLE / "payers.yaml",
            "x12": REPO / "tests" / "data" / "x12-835" / "synthetic_835_massage.edi"}


@pytest.mark.parametrize("argv, flag", [
    (["price", "--date", "2025-02-30", "97140"], "--date"),  # an impossible date
    (["price", "--date", "banana", "97140"], "--date"),
    (["price", "--date", "2026-13-01", "97140"], "--date"),
    (["compare", "--date", "2026-13-01", "97124=30", "97140=30"], "--date"),
    (["sample", "--out", "{tmp}/s", "--visits", "10", "--start", "2025-02-30"], "--start"),
    (["evaluate", "--lines", "{csv}", "--payers", "{payers}", "--out", "{tmp}/ev"], "--lines"),  # CSV, not Parquet
    (["report", "all", "--data", "{sample}", "--out", "{file}"], "--out"),  # a file, not a folder
    (["report", "all", "--data", "{sample}", "--out", "{file}/reports"], "--out"),  # cannot be made
    (["remit", "{x12}", "--out", "{file}"], "--out"),
    (["intake", "{csv}", "--out", "{file}"], "--out"),
    (["report", "all", "--data", "{tmp}/no-such-practice", "--out", "{tmp}/r"], "--data"),
    (["price", "--payer", "acme", "97140"], "--payer"),  # an unknown payer
    (["compare", "--payer", "acme", "97124=30"], "--payer"),
    (["report", "revenue", "--data", "{sample}", "--out", "{tmp}/r", "-p", "payers", "acme"], "-p payers"),
    (["report", "revenue", "--data", "{sample}", "--out", "{tmp}/r", "-p", "as_of", "2025-02-30"], "-p as_of"),
    (["price", "--locality", "99999-99", "97140"], "--locality"),
    (["units", "--method", "cmz", "97110=30"], "--method"),  # not a method in any case
])
def test_plausible_mistakes_exit_2_naming_the_flag(argv, flag, places, capsys):
    argv = [a.format(**places) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err, err
    assert "Traceback" not in err
    if flag in ("--lines", "--out", "--data"):  # the file or folder is named too
        assert argv[argv.index(flag) + 1] in err, err


def test_an_output_folder_that_cannot_be_written_is_named(places, monkeypatch, capsys):
    """A read-only --out (the check asks the system, as root would be let through anyway)."""
    import os

    out = places["tmp"] / "locked"
    out.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == out else real(p, mode, **kw))
    assert main(["report", "all", "--data", str(SAMPLE), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and str(out) in err and "permission" in err


def test_choices_are_read_in_any_case(capsys):
    """``--method CMS`` is ``--method cms`` (CMS Pub. 100-04 ch. 5: 33 + 7 minutes give 3 units)."""
    upper = run_json(capsys, "units", "--method", "CMS", "--json", "97110=33", "97140=7")
    assert upper["method"] == "cms" and upper["total_units"] == 3


def test_a_payer_is_found_by_its_name(capsys):
    """``--payer "Medicare Part B"`` (the policy's name) prices as ``--payer medicare``: FACTS 1.2,
    97140 2025 national $27.17."""
    data = run_json(capsys, "price", "--payer", "Medicare Part B", "--year", "2025", "--json", "97140")
    assert data["payer"] == "medicare" and data["total_allowed"] == 27.17
