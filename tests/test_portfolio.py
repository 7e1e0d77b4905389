"""Several practices side by side: each practice's figures equal its own revenue page's.

Two practices are generated (``analytics sample``, fixed seeds) and named in their
``practice.yaml``; the portfolio page and each practice's revenue page are run for the same
quarter through the command line, and the numbers of the two pages' saved tables are compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analytics import cli

NAMES = {"elm": "Elm Street Bodywork", "oak": "Oak Avenue Manual Therapy"}
PERIOD = "2025-Q4"


def _practice(folder: Path, seed: int, visits: int, name: str) -> Path:
    assert cli.main(["sample", "--out", str(folder), "--seed", str(seed), "--visits", str(visits), "--months", "6",
                     "--start", "2025-07-01"]) == 0
    meta = yaml.safe_load((folder / "practice.yaml").read_text())
    meta["practice"] = name
    (folder / "practice.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def practices(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("practices")
    return {"elm": _practice(base / "elm", 21, 320, NAMES["elm"]),
            "oak": _practice(base / "oak", 22, 260, NAMES["oak"])}


@pytest.fixture(scope="module")
def book(practices, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """The portfolio page and each practice's revenue page, for the same quarter."""
    out = tmp_path_factory.mktemp("portfolio-out")
    assert cli.main(["report", "portfolio", "--data", str(practices["elm"]), "--data", str(practices["oak"]),
                     "--out", str(out), "--period", PERIOD, "--timeout", "600"]) == 0
    own = {}
    for key, folder in practices.items():
        single = tmp_path_factory.mktemp(f"revenue-{key}")
        assert cli.main(["report", "revenue", "--data", str(folder), "--out", str(single), "--period", PERIOD,
                         "--compare", "none", "--timeout", "600"]) == 0
        own[key] = single / PERIOD
    return out / PERIOD, own


@pytest.mark.slow
def test_each_practices_figures_equal_its_own_revenue_page(book):
    folder, own = book
    side = pd.read_csv(folder / "tables" / "portfolio" / "figures.csv").set_index("figure")
    assert list(side.columns[2:]) == [NAMES["elm"], NAMES["oak"]]  # named from practice.yaml, in --data order
    for key, page in own.items():
        headline = pd.read_csv(page / "tables" / "revenue" / "headline.csv").set_index("figure")["value"]
        column = side[NAMES[key]]
        assert set(headline.index) == set(column.index)
        for figure, value in headline.items():
            assert column[figure] == pytest.approx(value, nan_ok=True), (key, figure)
        assert f">{NAMES[key]}<" in (folder / "portfolio.html").read_text()


@pytest.mark.slow
def test_denial_rates_and_percent_of_medicare_by_payer_across_practices(book, practices):
    folder, own = book
    rates = pd.read_csv(folder / "tables" / "portfolio" / "denial_rates.csv")
    assert set(rates["practice"]) == set(NAMES.values())
    assert rates["rate"].between(0, 1).all() and (rates["denied_lines"] <= rates["lines"]).all()
    medicare = pd.read_csv(folder / "tables" / "portfolio" / "percent_of_medicare.csv")
    assert medicare["pct_of_medicare"].gt(0).all()
    assert (medicare["pct_of_medicare"] == medicare["paid"] / medicare["medicare"]).all()
    wide = pd.read_csv(folder / "tables" / "portfolio" / "denial_rates_by_practice.csv")
    assert list(wide.columns) == ["payer", NAMES["elm"], NAMES["oak"]]


@pytest.mark.slow
def test_the_portfolio_shows_aggregates_only(book, practices):
    folder, _own = book
    ids: set[str] = set()
    for data in practices.values():
        lines = pd.read_csv(data / "service_lines.csv", dtype=str)
        ids |= set(lines["patient_id"]) | set(lines["claim_id"])
    published = [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".csv", ".html")]
    assert published
    for path in published:
        words = set(re.findall(r"[A-Za-z0-9_-]+", path.read_text()))
        assert not (words & ids), path
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["period"]["label"] == PERIOD and manifest["reports"]["portfolio"]["status"] == "ok"


def test_one_report_takes_one_data_folder(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert cli.main(["report", "revenue", "--data", str(a), "--data", str(b), "--out", str(tmp_path / "o")]) == 2
    assert "report portfolio --data DIR --data DIR" in capsys.readouterr().err


def test_portfolio_names_a_missing_folder(tmp_path, capsys):
    assert cli.main(["report", "portfolio", "--data", str(tmp_path), "--data", str(tmp_path / "nowhere"),
                     "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "--data" in err


def test_portfolio_refuses_the_same_folder_twice(tmp_path, capsys):
    assert cli.main(["report", "portfolio", "--data", str(tmp_path), "--data", str(tmp_path),
                     "--out", str(tmp_path / "o")]) == 2
    assert "given twice" in capsys.readouterr().err
