"""Each input is hashed once per report run: a digest is reused only for the same file unchanged.

The SHA-256 values are those of the NIST examples ("abc", FIPS 180-2 appendix B.1) and of the
empty message.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from analytics import cache

ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture(autouse=True)
def fresh_memo(monkeypatch):
    monkeypatch.setattr(cache, "_DIGESTS", {})
    monkeypatch.delenv(cache.DIGESTS_ENV, raising=False)


def test_known_values(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    (tmp_path / "empty").write_bytes(b"")
    assert cache.file_digest(tmp_path / "abc") == ABC
    assert cache.file_digest(tmp_path / "empty") == EMPTY


def test_a_file_is_read_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "export.csv"
    path.write_bytes(b"abc")
    opened = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    assert cache.file_digest(path) == ABC
    assert cache.file_digest(str(path)) == ABC
    assert len(opened) == 1
    # same size, other bytes, another modification time: hashed again
    path.write_bytes(b"abd")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert cache.file_digest(path) == hashlib.sha256(b"abd").hexdigest()
    assert len(opened) == 2


def test_a_notebook_process_takes_the_runs_digests_only_for_the_same_file(tmp_path, monkeypatch):
    path = tmp_path / "a.835"
    path.write_bytes(b"abc")
    cache.file_digest(path)
    handed = cache.digests_for_children([path])
    # a notebook's process: nothing computed yet, the run's digests in its environment
    monkeypatch.setattr(cache, "_DIGESTS", {})
    monkeypatch.setenv(cache.DIGESTS_ENV, handed.replace(ABC, "0" * 64))
    assert cache.file_digest(path) == "0" * 64  # taken, not recomputed: the file is the same
    # the file written since: the handed digest no longer applies
    path.write_bytes(b"xyz")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert cache.file_digest(path) == hashlib.sha256(b"xyz").hexdigest()


def test_a_damaged_hand_over_is_ignored(tmp_path, monkeypatch):
    path = tmp_path / "a.csv"
    path.write_bytes(b"abc")
    for text in ("not json", json.dumps({"a": 1}), json.dumps([[1, 2]])):
        monkeypatch.setattr(cache, "_DIGESTS", {})
        monkeypatch.setenv(cache.DIGESTS_ENV, text)
        assert cache.file_digest(path) == ABC


def test_the_hand_over_holds_only_the_runs_inputs_and_stays_small(tmp_path, monkeypatch):
    """A long-lived process (a scheduler, a test session) hashes many files; the notebooks of one
    run get the digests of that run's inputs only, and nothing rather than an environment value
    the operating system would refuse (128 KiB at most per value on Linux)."""
    files = []
    for i in range(3000):
        files.append(tmp_path / f"f{i}.835")
        files[-1].write_bytes(str(i).encode())
        cache.file_digest(files[-1])
    assert len(cache._DIGESTS) <= cache._MAX_DIGESTS
    one_run = json.loads(cache.digests_for_children(files[:2]))
    assert [item[0] for item in one_run] == [os.path.abspath(p) for p in files[:2]]
    # a practice of thousands of 835s: too long to hand over, so nothing is, and each notebook
    # hashes its inputs itself
    handed = cache.digests_for_children(files)
    assert handed == "[]" or len(handed) <= cache._MAX_HANDOVER
    # a file that is gone is left out, not an error
    assert cache.digests_for_children([tmp_path / "missing.csv"]) == "[]"


def test_two_threads_hashing_one_input_read_it_once(tmp_path, monkeypatch):
    """A report run hashes its inputs for the manifest and for the cache key in two threads."""
    import threading

    path = tmp_path / "export.csv"
    path.write_bytes(b"abc" * 1000)
    opened = []
    real_open = open
    second = threading.Event()

    def counting_open(file, *args, **kwargs):
        if os.fspath(file) == os.fspath(path):
            opened.append(file)
            if len(opened) == 1:
                # the first reader holds on (up to a second) while the others start: a second
                # reader of the same file, if there is one, opens it meanwhile
                second.wait(timeout=1.0)
            else:
                second.set()
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.file_digest(path))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [hashlib.sha256(b"abc" * 1000).hexdigest()] * 4
    assert len(opened) == 1
