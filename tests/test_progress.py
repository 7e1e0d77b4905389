"""Progress of long commands: drawn on a terminal (stage, count, rate, time left), silent in
cron, CI, pipes and logs; domain functions report through a callback and never print."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from analytics import cli
from analytics.progress import PROGRESS_ENV, Progress, enabled, track

REPO = Path(__file__).resolve().parents[1]


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as a shell's standard error does."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_setting(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)


class Recorder:
    """A progress callback that remembers what it was told."""

    def __init__(self):
        self.done, self.stages, self.totals = 0, [], []

    def __call__(self, n=1, *, stage=None, total=None):
        self.done += n
        if stage is not None:
            self.stages.append(stage)
        if total is not None:
            self.totals.append(total)
            self.done = 0


def test_silent_when_not_on_a_terminal():
    log = io.StringIO()  # cron mail, CI log, a pipe
    with Progress("evaluate", total=10, unit="lines", stream=log) as bar:
        bar(4)
        bar(0, stage="writing")
        bar(6)
    assert log.getvalue() == ""
    assert list(track([1, 2, 3], "remit", stream=log)) == [1, 2, 3]
    assert log.getvalue() == ""


def test_on_a_terminal_it_shows_stage_count_rate_and_time_left():
    tty = Terminal()
    with Progress("evaluate", total=10, unit="lines", stage="reading lines", stream=tty, heartbeat=0) as bar:
        bar(3)
        bar(0, stage="evaluating")  # a new stage redraws at once
        drawn = tty.getvalue()
    last = drawn.split("\r")[-1]
    assert "evaluate: evaluating" in last
    assert "3/10" in last
    assert re.search(r"lines/s\]|s/ lines\]", last)  # the rate (or its inverse while slow)
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", last)  # elapsed < time left
    assert "evaluate: reading lines" in drawn


def test_the_environment_setting_wins(monkeypatch):
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert not enabled(Terminal())
    monkeypatch.setenv(PROGRESS_ENV, "1")
    log = io.StringIO()
    assert enabled(log)
    with Progress("remit", total=2, unit="files", stream=log, heartbeat=0) as bar:
        bar(0, stage="reading 835s")
    assert "remit: reading 835s" in log.getvalue()


def test_lines_printed_meanwhile_stay_whole(monkeypatch):
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    err = Terminal()
    with Progress("report all", total=4, unit="reports", stream=err, heartbeat=0) as bar:
        print("Reading the practice in data/sample ...")
        bar(1, stage="revenue ok")
    assert sys.stdout is out
    assert out.getvalue() == "Reading the practice in data/sample ...\n"


def test_evaluate_parquet_reports_every_line(tmp_path):
    from analytics.payers import load_payers
    from analytics.pipeline import evaluate_parquet

    pol = load_payers({"payers": {"mc": {"kind": "medicare"}}})
    lines = pd.DataFrame({
        "patient_id": [f"p{i // 2}" for i in range(40)], "service_date": pd.Timestamp("2025-06-02"),
        "provider_id": "a", "payer_id": "mc", "cpt": ["97110", "97140"] * 20, "minutes": [33, 7] * 20,
        "modifiers": "GP",
    })
    lines.to_parquet(tmp_path / "lines.parquet")
    seen = Recorder()
    run = evaluate_parquet(tmp_path / "lines.parquet", tmp_path / "out", pol, workers=1, chunk_lines=10,
                           progress=seen)
    assert seen.stages == ["evaluating"] and seen.totals == [40]
    assert seen.done == run.lines_out == 40


def test_generate_practice_reports_its_stages():
    from analytics.datasets import GENERATION_STAGES, generate_practice

    seen = Recorder()
    generate_practice(60, seed=2, progress=seen)
    assert seen.totals == [GENERATION_STAGES] and seen.done == GENERATION_STAGES
    assert "adjudicating" in seen.stages


def test_sample_command_is_quiet_in_a_log_and_shows_stages_on_request(tmp_path, capsys, monkeypatch):
    assert cli.main(["sample", "--out", str(tmp_path / "a"), "--visits", "60", "--seed", "3"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and "visits" in quiet.out
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert cli.main(["sample", "--out", str(tmp_path / "b"), "--visits", "60", "--seed", "3", "--no-835"]) == 0
    shown = capsys.readouterr().err
    assert "sample (60 visits): adjudicating" in shown
    assert "sample (60 visits): writing files" in shown


def test_remit_counts_the_files(tmp_path, capsys, monkeypatch):
    files = sorted((REPO / "tests" / "data" / "x12-835").rglob("*.835"))[:3]
    assert len(files) == 3, "tests/data/x12-835 holds the sample 835s"
    monkeypatch.setenv(PROGRESS_ENV, "1")
    monkeypatch.setenv("ANALYTICS_PRACTICE_KEY", "ab" * 32)  # the remittance tables' pseudonym key
    cli.main(["remit", *map(str, files), "--out", str(tmp_path / "tables")])
    err = capsys.readouterr().err
    assert "remit: reading 835s" in err
    assert re.search(r"\d/3 \[", err)  # files done of the 3 given
