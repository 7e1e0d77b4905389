"""Executed report notebooks kept for a later run with the same inputs, parameters and code.

A report page is a pure function of its notebook, its parameters, the practice's input files,
the pseudonym key, the toolkit's code and reference tables, the Python packages that draw it and
the day it is read on: two runs with all of these equal give byte-identical pages, tables and
charts (``tests/test_reproducibility.py``). So when a run finds an executed notebook made from
exactly these, it reuses it with the tables and charts the notebook saved, instead of starting
a kernel to compute them again (the way ``jupyter-cache`` serves Jupyter Book). The page is still
exported, checked by the privacy guard and published as in any run; the manifest marks the
report ``"cached": true``.

The entry lives in the practice cache folder (:mod:`analytics.cache`) as ``page-<key>/``:
the notebook, the files it saved and ``entry.json``, whose HMAC-SHA-256 under the practice's
pseudonym key covers every file's SHA-256. An entry that fails that check is removed and the
notebook runs. Only notebooks whose page passed the privacy guard are kept. ``--no-cache``
(``ANALYTICS_NO_CACHE=1``) neither reads nor keeps entries.

What the key covers
    The notebook's bytes, every parameter it runs with, the practice state (the key of
    :class:`analytics.cache.HistoryCache`: the SHA-256 of each input file, the pseudonym key's
    fingerprint, the toolkit's version and code digest, the day), the kernel, and the versions
    of Python, pandas, NumPy, matplotlib, nbformat and nbconvert.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import hmac
import json
import os
import secrets
import shutil
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from analytics.cache import sweep_folder, write_private

__all__ = ["MAX_PAGES", "PageCache"]

#: Executed notebooks kept in one cache folder; the least recently used beyond it are removed.
MAX_PAGES = 40

_FORMAT = 1
_PREFIX = "page-"
_TMP = ".page-tmp-"  # not ".tmp-": the history cache sweeps those by their pid
_NOTEBOOK = "notebook.ipynb"
_SAVED = "saved"
#: Stands for the run's own folder inside a kept notebook (papermill's output path, the
#: kernel's folder), which differs from run to run.
_RUN = "@@ANALYTICS_RUN_FOLDER@@"
_PACKAGES = ("pandas", "numpy", "matplotlib", "nbformat", "nbconvert", "ipykernel")


def _versions() -> dict[str, str]:
    found = {"python": sys.version}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = ""
    return found


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _escaped(path: Path) -> str:
    """How a folder's path is written inside a notebook's JSON."""
    return json.dumps(str(path))[1:-1]


@dataclasses.dataclass(frozen=True)
class PageCache:
    """Executed notebooks of one practice state, in a cache folder.

    Build it with :meth:`for_practice`; :meth:`key` names one report's entry,
    :meth:`restore` puts a kept notebook and its saved files into a run folder, :meth:`keep`
    stores them after the page has passed the privacy guard.
    """

    folder: Path
    state: str
    secret: bytes = dataclasses.field(repr=False)

    @classmethod
    def for_practice(cls, folder: str | os.PathLike[str], data: str | os.PathLike[str], *,
                     today: _dt.date | None = None) -> PageCache:
        """The executed notebooks of the practice in ``data`` as it is now."""
        from analytics.cache import HistoryCache
        from analytics.practice import locate_practice
        from analytics.privacy import resolve_key

        files = locate_practice(data)
        secret = resolve_key(near=[files.folder])
        # the same practice state the notebooks' load_history reads from the history cache
        history = HistoryCache.for_practice(folder, files, secret, parameters={"max_set_aside": None}, today=today)
        return cls(folder=Path(folder), state=history.key, secret=history.secret)

    def key(self, notebook: str | os.PathLike[str], parameters: Mapping[str, Any], kernel: str) -> str:
        """The entry's key for ``notebook`` run with ``parameters`` in ``kernel``."""
        described = {
            "format": _FORMAT, "state": self.state, "kernel": kernel, "versions": _versions(),
            "notebook": _digest(Path(notebook).read_bytes()),
            "parameters": json.dumps(dict(parameters), sort_keys=True, default=repr),
        }
        return _digest(json.dumps(described, sort_keys=True).encode())[:32]

    def _path(self, key: str) -> Path:
        return self.folder / f"{_PREFIX}{key}"

    def _mac(self, meta: Mapping[str, Any]) -> str:
        body = json.dumps({k: v for k, v in meta.items() if k != "mac"}, sort_keys=True).encode()
        return hmac.new(self.secret, b"analytics-page-cache|" + body, hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ reading
    def restore(self, key: str, notebook: Path, saved: Path) -> bool:
        """Write the kept notebook to ``notebook`` and its saved files under ``saved``.

        Returns False, having written nothing, when there is no entry or it fails its checks
        (then it is removed).
        """
        entry = self._path(key)
        if not (entry / "entry.json").is_file():
            return False
        try:
            contents = self._checked(entry, key)
        except (OSError, ValueError, KeyError, TypeError):  # torn, edited or foreign: run the notebook
            shutil.rmtree(entry, ignore_errors=True)
            return False
        run = _escaped(notebook.parent.resolve())
        notebook.write_bytes(contents.pop(_NOTEBOOK).replace(_RUN.encode(), run.encode()))
        for rel, data in contents.items():
            dest = saved / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        try:
            os.utime(entry / "entry.json")  # most recently used
        except OSError:
            pass
        return True

    def _checked(self, entry: Path, key: str) -> dict[str, bytes]:
        meta = json.loads((entry / "entry.json").read_text())
        if not hmac.compare_digest(str(meta.get("mac", "")), self._mac(meta)):
            raise ValueError("entry not signed by this practice's key")
        if meta.get("format") != _FORMAT or meta.get("key") != key:
            raise ValueError("entry of another format or key")
        contents = {}
        for rel, digest in meta["files"].items():
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError("entry names a file outside itself")
            data = (entry / rel).read_bytes()
            if not hmac.compare_digest(_digest(data), digest):
                raise ValueError(f"{rel} does not match its hash")
            contents[rel.removeprefix(f"{_SAVED}/") if rel != _NOTEBOOK else rel] = data
        if _NOTEBOOK not in contents:
            raise ValueError("entry without its notebook")
        return contents

    # ------------------------------------------------------------------ writing
    def keep(self, key: str, notebook: Path, saved: Path) -> Path | None:
        """Store an executed notebook and the files it saved under ``saved``; ``None`` when the
        folder cannot be written. Call it only for a page the privacy guard passed."""
        tmp = self.folder / f"{_TMP}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.sweep()
            tmp.mkdir(mode=0o700)
            run = _escaped(notebook.parent.resolve())
            files = {_NOTEBOOK: notebook.read_bytes().replace(run.encode(), _RUN.encode())}
            if saved.is_dir():
                for p in sorted(saved.rglob("*")):
                    if p.is_file():
                        files[f"{_SAVED}/{p.relative_to(saved).as_posix()}"] = p.read_bytes()
            for rel, data in files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                write_private(tmp / rel, data)
            meta = {"format": _FORMAT, "key": key, "files": {rel: _digest(d) for rel, d in files.items()},
                    "written": _dt.datetime.now().isoformat(timespec="seconds")}
            meta["mac"] = self._mac(meta)
            write_private(tmp / "entry.json", json.dumps(meta, indent=1).encode())
            try:
                os.rename(tmp, self._path(key))
            except OSError:  # kept meanwhile by another run
                pass
            return self._path(key)
        except OSError:
            return None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def sweep(self) -> None:
        """Remove temporary folders of runs no longer alive and the least recently used entries."""
        sweep_folder(self.folder, tmp_prefix=_TMP, entry_prefix=_PREFIX, keep=MAX_PAGES - 1)
