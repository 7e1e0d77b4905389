"""Executed report notebooks reused by a later run with the same inputs (analytics.page_cache).

The store is checked on its own (a kept notebook and its saved files come back byte for byte
under another run folder; a torn, edited or foreign entry is removed and not used; another
notebook, parameter, practice state or kernel is another key), and through ``run_reports``:
a second run of the same report reuses the notebook and publishes the same bytes, and a
changed input file runs the notebook again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analytics import cache
from analytics.page_cache import PageCache


@pytest.fixture()
def store(tmp_path) -> PageCache:
    return PageCache(folder=tmp_path / "cache", state="a" * 32, secret=b"k" * 32)


@pytest.fixture()
def executed(tmp_path) -> tuple[Path, Path, Path]:
    """A run folder with an executed notebook that names its folder, and two saved files."""
    run = tmp_path / "runs" / "first"
    (run / "revenue" / "tables").mkdir(parents=True)
    nb = run / "revenue.ipynb"
    nb.write_text(json.dumps({"metadata": {"papermill": {"output_path": str(nb)}}, "cells": []}))
    (run / "revenue" / "tables" / "kpis.csv").write_text("metric,value\nallowed,1.00\n")
    (run / "revenue" / "chart.png").write_bytes(bytes(range(256)))
    src = tmp_path / "revenue.ipynb"
    src.write_text('{"cells": []}')
    return src, nb, run / "revenue"


def _restore_into(store: PageCache, key: str, tmp_path: Path) -> tuple[bool, Path]:
    other = tmp_path / "runs" / "second"
    other.mkdir(parents=True, exist_ok=True)
    return store.restore(key, other / "revenue.ipynb", other / "revenue"), other


def test_a_kept_notebook_and_its_files_come_back_under_another_run_folder(store, executed, tmp_path):
    src, nb, saved = executed
    key = store.key(src, {"period_start": "2025-01-01"}, "python3")
    assert store.restore(key, nb.with_name("x.ipynb"), saved) is False  # nothing kept yet
    assert store.keep(key, nb, saved) is not None
    ok, other = _restore_into(store, key, tmp_path)
    assert ok
    assert (other / "revenue" / "tables" / "kpis.csv").read_bytes() == (saved / "tables" / "kpis.csv").read_bytes()
    assert (other / "revenue" / "chart.png").read_bytes() == bytes(range(256))
    # the notebook now names the folder it was restored into, not the first run's
    meta = json.loads((other / "revenue.ipynb").read_text())["metadata"]["papermill"]
    assert meta["output_path"] == str(other / "revenue.ipynb")
    # kept files are the owner's only
    entry = next(store.folder.glob("page-*"))
    assert (entry / "entry.json").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("damage", ["edit", "truncate", "remove", "foreign key", "bad json"])
def test_a_damaged_or_foreign_entry_is_removed_and_not_used(store, executed, tmp_path, damage):
    src, nb, saved = executed
    key = store.key(src, {}, "python3")
    entry = store.keep(key, nb, saved)
    target = entry / "saved" / "tables" / "kpis.csv"
    if damage == "edit":
        target.write_text("metric,value\nallowed,999.00\n")
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:5])
    elif damage == "remove":
        target.unlink()
    elif damage == "foreign key":
        store = PageCache(folder=store.folder, state=store.state, secret=b"x" * 32)
    else:
        (entry / "entry.json").write_text("{")
    ok, other = _restore_into(store, key, tmp_path)
    assert not ok
    assert not entry.exists()
    assert not (other / "revenue.ipynb").exists() and not (other / "revenue").exists()


def test_each_input_of_the_key_changes_it(store, executed, tmp_path):
    src, _, _ = executed
    base = store.key(src, {"payers": ["medicare"]}, "python3")
    assert store.key(src, {"payers": ["medicare"]}, "python3") == base
    other_nb = tmp_path / "other.ipynb"
    other_nb.write_text('{"cells": [1]}')
    assert store.key(other_nb, {"payers": ["medicare"]}, "python3") != base
    assert store.key(src, {"payers": ["bcbs"]}, "python3") != base
    assert store.key(src, {"payers": ["medicare"]}, "other-kernel") != base
    moved = PageCache(folder=store.folder, state="b" * 32, secret=store.secret)
    assert moved.key(src, {"payers": ["medicare"]}, "python3") != base


def test_the_history_cache_sweep_leaves_a_page_being_written_alone(store, executed, tmp_path):
    """The practice cache sweeps its own temporary folders by process id; a page entry being
    written in the same folder by this process must survive it."""
    tmp = store.folder / f".page-tmp-{__import__('os').getpid()}-abcd"
    tmp.mkdir(parents=True)
    cache.HistoryCache(folder=store.folder, key="k", secret=b"k").sweep()
    assert tmp.exists()
    shutil.rmtree(tmp)


@pytest.mark.slow
def test_a_second_run_reuses_the_notebook_and_a_changed_input_runs_it_again(tmp_path, monkeypatch):
    from analytics import reports

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    practice = tmp_path / "practice"
    shutil.copytree(sample, practice)
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    store = tmp_path / "cache"

    def run(out: str):
        result = reports.run_reports("contracts", practice, tmp_path / out, cache_dir=store, timeout=600)
        assert result.ok, [f.error for f in result.failed]
        page = result.reports[0]
        return page, page.html.read_bytes(), json.loads(result.manifest.read_text())

    first, page1, _ = run("first")
    second, page2, manifest = run("second")
    assert (first.cached, second.cached) == (False, True)
    assert page2 == page1
    assert manifest["reports"]["contracts"]["cached"] is True
    # one 835 changes (a line break after its ISA: the same data, other bytes): the notebook runs again
    remit = sorted((practice / "remittances").iterdir())[0]
    text = remit.read_text()
    remit.write_text(text.replace("~", "~\n", 1))
    third, _, _ = run("third")
    assert third.cached is False
