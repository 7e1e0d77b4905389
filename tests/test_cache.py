"""The on-disk cache of a practice read and evaluated (analytics.cache).

A small synthetic practice (fixed seed) is read once into a cache folder; each test copies
what it changes. The checks: a cached read equals a fresh one, is read without parsing the
inputs again, a changed input file gives a new entry (and new figures) while the old entry
stays, a torn, edited or foreign entry is rebuilt and never read, nothing identifying is in
the cached tables, and a killed write leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analytics import cache, history
from analytics.datasets import generate_practice, write_practice


@pytest.fixture(scope="module")
def practice_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cache-practice") / "practice"
    write_practice(generate_practice(120, seed=18), folder)
    shutil.copy(Path(__file__).resolve().parents[1] / "data" / "sample" / "payers.yaml", folder / "payers.yaml")
    return folder


@pytest.fixture()
def reads(monkeypatch) -> list[str]:
    """Counts the reads of a practice folder (the parse the cache saves)."""
    seen: list[str] = []
    real = history.load_practice

    def counting(folder, **kw):
        seen.append(str(folder))
        return real(folder, **kw)

    monkeypatch.setattr(history, "load_practice", counting)
    return seen


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _same(a: history.History, b: history.History) -> None:
    pd.testing.assert_frame_equal(a.base, b.base)
    pd.testing.assert_frame_equal(a.lines, b.lines)
    pd.testing.assert_frame_equal(a.unmatched_remittance, b.unmatched_remittance)
    pd.testing.assert_frame_equal(a.set_aside, b.set_aside)
    pd.testing.assert_frame_equal(a.ignored_columns, b.ignored_columns)
    assert (a.start, a.end, a.as_of, a.files, a.notes) == (b.start, b.end, b.as_of, b.files, b.notes)
    assert dict(a.practice) == dict(b.practice) and list(a.payers) == list(b.payers)


def test_a_cached_read_equals_a_fresh_one_and_parses_nothing(practice_dir, tmp_path, reads):
    store = tmp_path / "cache"
    fresh = history.load_history(practice_dir)
    first = history.load_history(practice_dir, cache_dir=store)
    assert len(reads) == 2 and len(cache.entries(store)) == 1
    again = history.load_history(practice_dir, cache_dir=store)
    assert len(reads) == 2  # read from the cache: the folder was not parsed again
    _same(fresh, first)
    _same(fresh, again)
    # a report's selection is applied to the cached copy, as to a fresh one
    _same(fresh.select(start="2025-06-01", end="2025-08-31"),
          history.load_history(practice_dir, cache_dir=store).select(start="2025-06-01", end="2025-08-31"))
    # the environment variable the report runner hands its notebooks finds the same entry
    os.environ[cache.CACHE_ENV] = str(store)
    try:
        history.load_history(practice_dir)
    finally:
        del os.environ[cache.CACHE_ENV]
    assert len(reads) == 2


def test_a_changed_835_rebuilds_its_entry_and_keeps_the_other(practice_dir, tmp_path, reads):
    folder = _copy(practice_dir, tmp_path / "practice")
    store = tmp_path / "cache"
    before = history.load_history(folder, cache_dir=store)
    old = cache.entries(store)
    # one 835 file goes: the lines it answered are open again
    gone = sorted((folder / "remittances").glob("*.835"))[0]
    gone.unlink()
    after = history.load_history(folder, cache_dir=store)
    assert len(reads) == 2
    new = [p for p in cache.entries(store) if p not in old]
    assert len(new) == 1 and old[0].exists()  # a new entry; the other state's entry stays
    assert after.base["remitted"].sum() < before.base["remitted"].sum()
    assert str(gone) not in after.files
    _same(after, history.load_history(folder))  # the rebuilt entry is the fresh read (a third read)
    # the same inputs again: no read
    history.load_history(folder, cache_dir=store)
    assert len(reads) == 3


def test_a_changed_payer_policy_or_key_is_another_entry(practice_dir, tmp_path, reads):
    folder = _copy(practice_dir, tmp_path / "practice")
    store = tmp_path / "cache"
    history.load_history(folder, cache_dir=store)
    history.load_history(folder, cache_dir=store, key=b"k" * 32)  # another practice key
    text = (folder / "payers.yaml").read_text()
    (folder / "payers.yaml").write_text(text + "\n# contract renewed\n")
    history.load_history(folder, cache_dir=store)
    assert len(reads) == 3 and len(cache.entries(store)) == 3
    # a file that is not an input changes nothing
    (folder / "notes.txt").write_text("call the payer on Monday")
    history.load_history(folder, cache_dir=store)
    assert len(reads) == 3


@pytest.mark.parametrize("damage", ["torn table", "edited notes", "foreign entry", "no entry.json"])
def test_a_corrupt_or_foreign_entry_is_rebuilt_never_read(practice_dir, tmp_path, reads, damage):
    folder = _copy(practice_dir, tmp_path / "practice")
    store = tmp_path / "cache"
    fresh = history.load_history(folder, cache_dir=store)
    (entry,) = cache.entries(store)
    if damage == "torn table":
        data = (entry / "base.parquet").read_bytes()
        (entry / "base.parquet").write_bytes(data[: len(data) // 2])
    elif damage == "edited notes":
        meta = json.loads((entry / "entry.json").read_text())
        meta["notes"] = ["All claims paid in full."]
        (entry / "entry.json").write_text(json.dumps(meta))
    elif damage == "foreign entry":
        # an entry signed under another practice's key, placed under this key's name
        other = tmp_path / "other"
        history.load_history(folder, cache_dir=other, key=b"x" * 32)
        (theirs,) = cache.entries(other)
        shutil.rmtree(entry)
        shutil.copytree(theirs, entry)
    else:
        (entry / "entry.json").unlink()
    rebuilt = history.load_history(folder, cache_dir=store)
    assert len(reads) == 2 + (damage == "foreign entry")
    _same(fresh, rebuilt)
    # rebuilt and valid again: the next read is from the cache
    history.load_history(folder, cache_dir=store)
    assert len(reads) == 2 + (damage == "foreign entry")


def test_the_cache_holds_no_patient_id_and_is_private(practice_dir, tmp_path):
    from analytics import privacy

    store = tmp_path / "cache"
    history.load_history(practice_dir, cache_dir=store)
    (entry,) = cache.entries(store)
    raw_ids = set(pd.read_csv(practice_dir / "service_lines.csv", dtype=str)["patient_id"])
    guard = privacy.identifiers_from_folder(practice_dir)
    assert raw_ids and {i.upper() for i in raw_ids} <= guard.ids
    for table in entry.glob("*.parquet"):
        frame = pd.read_parquet(table)
        cells = set(frame.astype(str).to_numpy().ravel())
        assert not cells & raw_ids, table.name
        assert privacy.scan_table(frame, guard, name=table.name) == [], table.name
    assert not any(i in (entry / "entry.json").read_text() for i in raw_ids)
    assert stat.S_IMODE(store.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in entry.iterdir())


def test_a_killed_write_leaves_nothing_behind(practice_dir, tmp_path):
    store = tmp_path / "cache"
    store.mkdir()
    # the temporary folder of a run that was killed mid-write (its process is gone)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = store / f".tmp-{done.stdout.strip()}-0000"
    dead.mkdir()
    (dead / "base.parquet").write_bytes(b"PAR1 half")
    alive = store / f".tmp-{os.getpid()}-0001"  # a run still writing: left alone
    alive.mkdir()
    history.load_history(practice_dir, cache_dir=store)
    assert not dead.exists() and alive.exists()
    assert [p.name for p in store.iterdir() if not p.name.startswith(".tmp-")] == [cache.entries(store)[0].name]
    assert not list(store.rglob("*.pickle"))


def test_old_entries_beyond_the_limit_are_removed(practice_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    store = tmp_path / "cache"
    for n in range(3):
        history.load_history(practice_dir, cache_dir=store, max_set_aside=0.2 + n / 100)
    assert len(cache.entries(store)) == 2


def _outputs(run) -> dict[str, str]:
    """Every page, table and chart of a run by its path in the period folder, with its SHA-256."""
    folder = run.folder
    keep = [p for p in folder.rglob("*") if p.is_file() and "runs" not in p.relative_to(folder).parts
            and (p.suffix in {".html", ".csv", ".png", ".svg"})]
    return {str(p.relative_to(folder)): cache.file_digest(p) for p in sorted(keep)}


@pytest.mark.slow
def test_pages_tables_and_charts_are_byte_identical_cached_or_not_serial_or_parallel(sample_pack_runs, tmp_path,
                                                                                     monkeypatch):
    """``report all`` on the sample: the session's pack (notebooks in parallel, the cache filled,
    kernels forked from the preloader), a warm run that reuses its cache and executed notebooks,
    and a run without the cache with one notebook at a time, each in a kernel started afresh
    (:mod:`analytics.kernels` switched off), give the same bytes."""
    from analytics import kernels, reports

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    runs = {
        "parallel": sample_pack_runs.whole,
        "warm": reports.run_reports("all", sample, tmp_path / "warm", cache_dir=sample_pack_runs.cache, timeout=600),
    }
    monkeypatch.setenv(kernels.FORK_ENV, "0")
    runs["serial"] = reports.run_reports("all", sample, tmp_path / "serial", no_cache=True, workers=1, timeout=600)
    assert all(r.ok for r in runs.values()), {k: [f.error for f in r.failed] for k, r in runs.items()}
    # the warm run reuses executed notebooks (analytics.page_cache); the run without the cache runs them
    assert [r.cached for r in runs["warm"].reports] == [True] * len(runs["warm"].reports)
    assert not any(r.cached for r in runs["serial"].reports)
    parallel = _outputs(runs["parallel"])
    assert any(k.endswith(".html") for k in parallel) and any(k.endswith(".png") for k in parallel)
    assert _outputs(runs["warm"]) == parallel
    assert _outputs(runs["serial"]) == parallel
