"""The on-disk cache of a practice read and evaluated: Parquet tables keyed by the inputs' hashes.

Reading a practice folder (the export, every 835, the rules engine over every line) is the
slow part of a report. :func:`load_history <analytics.history.load_history>` therefore keeps
what it built, a :class:`~analytics.history.History`, in a cache folder, and every notebook
of a report run, and every later run with the same inputs, reads that copy instead.

What an entry holds
    One folder ``history-<key>/`` per practice state: the charge lines joined to their 835
    answers and contract prices (``base.parquet``), the 835 lines that match no charge
    (``unmatched.parquet``), the export's rows set aside and columns left out (without their
    values), and ``entry.json`` (period, as-of date, data notes, the files read). Patient ids
    are the practice's keyed pseudonyms, as in the evaluated Parquet of ``evaluate``; names,
    dates of birth and member ids are never read into these tables. The payer policies and
    practice.yaml are read again from their files (cheap), so nothing else is stored.

What the key covers
    The SHA-256 of every input file (the export, mapping.yaml, payers.yaml, practice.yaml,
    each 835), the pseudonym key's fingerprint (never the key), the toolkit's version and a
    digest of its code and reference tables, the share of lines that may be set aside, and
    the day of the read (a date of service after today is set aside, and an as-of date
    defaults to today). A changed input gives another key: that state is read again, the
    other entries stay. The period, as-of date, payers and providers a report selects are not
    in the key: they are applied to the cached copy.

Trust
    ``entry.json`` carries an HMAC-SHA-256, under the practice's pseudonym key, of the entry's
    description and of each table's SHA-256. An entry that is torn, edited, written by another
    toolkit version or under another key fails that check and is rebuilt, never read. An entry
    is written into a temporary folder and published by one rename, so a killed run leaves no
    half entry; temporary folders of runs that are no longer alive are swept away.

Where
    ``--cache-dir``, else the ``ANALYTICS_CACHE_DIR`` environment variable, else
    ``$XDG_CACHE_HOME/massage-billing-analytics`` (``~/.cache/massage-billing-analytics``),
    created readable by its owner only (0700). ``--no-cache`` (or ``ANALYTICS_NO_CACHE=1``)
    keeps nothing after the run. The :data:`MAX_ENTRIES` most recently used entries are kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import functools
import hashlib
import hmac
import io
import json
import os
import secrets
import shutil
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "CACHE_ENV",
    "DIGESTS_ENV",
    "NO_CACHE_ENV",
    "MAX_ENTRIES",
    "HistoryCache",
    "cache_disabled",
    "clear",
    "default_cache_dir",
    "digests_for_children",
    "entries",
    "file_digest",
    "process_alive",
    "sweep_folder",
    "toolkit_digest",
    "write_private",
]

#: Environment variable naming the cache folder (the report runner passes it to its notebooks).
CACHE_ENV = "ANALYTICS_CACHE_DIR"
#: Environment variable that turns the persistent cache off (``1``), like ``--no-cache``.
NO_CACHE_ENV = "ANALYTICS_NO_CACHE"
#: Entries kept in one cache folder; the least recently used beyond it are removed.
MAX_ENTRIES = 8

_FORMAT = 1
_TABLES = ("base", "unmatched", "set_aside", "ignored")
_PREFIX = "history-"
_TMP = ".tmp-"


def default_cache_dir() -> Path:
    """The cache folder when none is given: ``ANALYTICS_CACHE_DIR``, else the user's cache folder.

    Examples
    --------
    >>> default_cache_dir().name in {"massage-billing-analytics"} or bool(os.environ.get(CACHE_ENV))
    True
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "massage-billing-analytics"


def cache_disabled() -> bool:
    """Whether ``ANALYTICS_NO_CACHE`` asks for no persistent cache (``1``, ``true``, ``yes``)."""
    return os.environ.get(NO_CACHE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


#: Environment variable through which a report run hands the digests it computed to its
#: notebooks (JSON, see :func:`digests_for_children`), so a run hashes each input once.
DIGESTS_ENV = "ANALYTICS_FILE_DIGESTS"

#: Held while a file is hashed (see :func:`file_digest`).
_HASHING = threading.Lock()
#: Digests computed in this process, by the file's identity (see :func:`_identity`).
_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}


def _identity(path: str | os.PathLike[str]) -> tuple[str, int, int, int, int]:
    """A file's path, device, inode, size and modification time (ns): any write changes it."""
    st = os.stat(path)
    return os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@functools.cache
def _inherited(text: str) -> dict[tuple[str, int, int, int, int], str]:
    try:
        return {tuple(item[:5]): str(item[5]) for item in json.loads(text)
                if isinstance(item, list) and len(item) == 6}
    except (ValueError, TypeError):
        return {}


#: Digests kept in memory by one process (a long-lived process hashes many files); the oldest go.
_MAX_DIGESTS = 4096
#: The largest hand-over :func:`digests_for_children` writes (an environment value of a few KB
#: per practice; the operating system refuses one of over 128 KiB).
_MAX_HANDOVER = 64 * 1024


def digests_for_children(paths: Iterable[str | os.PathLike[str]]) -> str:
    """The digests of ``paths`` this process computed, as JSON for :data:`DIGESTS_ENV`.

    A notebook's process uses a digest only for a file whose path, device, inode, size and
    modification time are those recorded, so a file changed in between is hashed again. Files
    not hashed yet are left out; so is everything when the list would be too long for an
    environment variable (the notebooks then hash the files themselves).
    """
    wanted = set()
    for p in paths:
        with contextlib.suppress(OSError):
            wanted.add(_identity(p))
    text = json.dumps([[*k, v] for k, v in _DIGESTS.items() if k in wanted])
    return text if len(text) <= _MAX_HANDOVER else "[]"


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks.

    A file is hashed once per process (and once per report run, see :data:`DIGESTS_ENV`)
    while its path, inode, size and modification time stay the same.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as fh:
    ...     _ = fh.write(b"abc"); fh.flush()
    ...     file_digest(fh.name)[:16]
    'ba7816bf8f01cfea'
    """
    identity = _identity(path)
    known = _DIGESTS.get(identity) or _inherited(os.environ.get(DIGESTS_ENV, "[]")).get(identity)
    if known:
        return known
    # one file at a time: a report run hashes its inputs in two threads (the manifest's list and
    # the cache key), and the second must find the first one's digest rather than read again
    with _HASHING:
        known = _DIGESTS.get(identity)
        if known:
            return known
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        if _identity(path) == identity:  # not written to while it was read
            if len(_DIGESTS) >= _MAX_DIGESTS:
                del _DIGESTS[next(iter(_DIGESTS))]
            _DIGESTS[identity] = h.hexdigest()
        return h.hexdigest()


@functools.cache
def toolkit_digest() -> str:
    """The toolkit's version and a digest of its code and reference tables.

    An upgrade, or an edited rule or reference CSV, changes it, so a cache written by other
    code is never read.
    """
    from analytics import __version__

    root = Path(__file__).resolve().parent
    h = hashlib.sha256(f"{__version__}|format {_FORMAT}".encode())
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in {".py", ".csv", ".yaml", ".json", ".txt"} and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return f"{__version__}+{h.hexdigest()[:16]}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclasses.dataclass(frozen=True)
class HistoryCache:
    """The cache entry of one practice state: where it lives and how it is checked.

    Build it with :meth:`for_practice`; :meth:`read` gives the cached
    :class:`~analytics.history.History` or ``None`` (absent, corrupt or foreign: then it is
    removed), :meth:`write` stores one.

    Attributes
    ----------
    folder
        The cache folder.
    key
        The entry's key (hex): the inputs' hashes, the key fingerprint, the toolkit, the settings.
    secret
        The practice's pseudonym key, which signs the entry (never written).
    inputs
        The input files and their SHA-256, as recorded in the entry.
    payers, settings
        The payer policies file (or ``None``) and practice.yaml (or ``None``), read again on a hit.
    """

    folder: Path
    key: str
    secret: bytes = dataclasses.field(repr=False)
    inputs: tuple[tuple[str, str], ...] = ()
    payers: Path | None = None
    settings: Path | None = None

    @classmethod
    def for_practice(cls, folder: str | os.PathLike[str], files: Any, secret: Any, *,
                     payers: str | os.PathLike[str] | None = None, parameters: Mapping[str, Any] | None = None,
                     today: _dt.date | None = None) -> HistoryCache:
        """The entry for a practice folder's files (:class:`analytics.practice.PracticeFiles`).

        Parameters
        ----------
        folder
            The cache folder.
        files
            The practice's files (``inputs``: every file read; ``payers``, ``settings``).
        secret
            The pseudonym key (:class:`analytics.privacy.PracticeKey` or bytes).
        payers
            A payer policies file given instead of the folder's payers.yaml.
        parameters
            Other settings that change what is read (``max_set_aside``).
        today
            The day of the read (default: today).
        """
        raw = getattr(secret, "secret", secret)
        raw = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        paths = list(dict.fromkeys(Path(p) for p in [*files.inputs, *([payers] if payers is not None else [])]))
        inputs = tuple((str(p), file_digest(p)) for p in paths)
        fingerprint = hmac.new(raw, b"fingerprint", hashlib.sha256).hexdigest()[:12]
        described = {
            "format": _FORMAT, "toolkit": toolkit_digest(), "key_fingerprint": fingerprint,
            "day": (today or _dt.date.today()).isoformat(),
            "parameters": {k: repr(v) for k, v in sorted((parameters or {}).items())},
            "inputs": [list(x) for x in inputs],
            # files skipped under remittances/ (not 835s, copies): the notes name them
            "skipped": sorted(str(path) for path, _ in getattr(files, "skipped", ())),
        }
        key = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]
        return cls(folder=Path(folder), key=key, secret=raw, inputs=inputs,
                   payers=Path(payers) if payers is not None else files.payers, settings=files.settings)

    @property
    def path(self) -> Path:
        """The entry's folder."""
        return self.folder / f"{_PREFIX}{self.key}"

    # ------------------------------------------------------------------ reading
    def read(self) -> Any:
        """The cached history, or ``None`` when there is no entry or it fails its checks."""
        entry = self.path
        if not (entry / "entry.json").is_file():
            return None
        try:
            history = self._load(entry)
        except Exception:  # torn, edited, foreign or unreadable: rebuilt, never trusted
            shutil.rmtree(entry, ignore_errors=True)
            return None
        try:
            os.utime(entry / "entry.json")  # most recently used
        except OSError:
            pass
        return history

    def _load(self, entry: Path) -> Any:
        from analytics.history import History
        from analytics.payers import load_payers
        from analytics.practice import read_practice_settings

        meta = json.loads((entry / "entry.json").read_text())
        mac = meta.pop("mac")
        if not hmac.compare_digest(mac, self._mac(meta)):
            raise ValueError("entry not signed by this practice's key")
        if meta.get("format") != _FORMAT or meta.get("key") != self.key or meta.get("toolkit") != toolkit_digest():
            raise ValueError("entry of another format, key or toolkit")
        tables: dict[str, pd.DataFrame | None] = {}
        for name in _TABLES:
            spec = meta["tables"].get(name)
            if spec is None:
                tables[name] = None
                continue
            data = (entry / f"{name}.parquet").read_bytes()
            if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), spec["sha256"]):
                raise ValueError(f"{name}.parquet does not match its hash")
            tables[name] = pd.read_parquet(io.BytesIO(data))
        base = tables["base"]
        payers = load_payers(self.payers) if self.payers is not None else {}
        full = History(lines=base, base=base, unmatched_remittance=tables["unmatched"], payers=payers,
                       practice=read_practice_settings(self.settings), start=pd.Timestamp(meta["start"]),
                       end=pd.Timestamp(meta["end"]), as_of=pd.Timestamp(meta["as_of"]), files=tuple(meta["files"]),
                       notes=tuple(meta["notes"]), set_aside=tables["set_aside"], ignored_columns=tables["ignored"])
        # the lines in scope are derived from the base, as when the history was built
        return full.select(start=full.start, end=full.end, as_of=full.as_of)

    # ------------------------------------------------------------------ writing
    def write(self, history: Any) -> Path | None:
        """Store ``history`` as this entry; ``None`` when the folder cannot be written.

        A concurrent run that published the same entry first wins; ours is discarded.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.sweep()
        except OSError:
            return None
        tmp = self.folder / f"{_TMP}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir(mode=0o700)
            tables = {"base": history.base, "unmatched": history.unmatched_remittance,
                      "set_aside": history.set_aside, "ignored": history.ignored_columns}
            specs: dict[str, Any] = {}
            for name, frame in tables.items():
                if frame is None:
                    continue
                buf = io.BytesIO()
                frame.to_parquet(buf, engine="pyarrow")
                data = buf.getvalue()
                write_private(tmp / f"{name}.parquet", data)
                specs[name] = {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(frame)}
            meta = {
                "format": _FORMAT, "key": self.key, "toolkit": toolkit_digest(), "tables": specs,
                "start": history.start.isoformat(), "end": history.end.isoformat(),
                "as_of": history.as_of.isoformat(), "files": list(history.files), "notes": list(history.notes),
                "inputs": [list(x) for x in self.inputs], "written": _dt.datetime.now().isoformat(timespec="seconds"),
            }
            meta["mac"] = self._mac(meta)
            write_private(tmp / "entry.json", json.dumps(meta, indent=1).encode())
            try:
                os.rename(tmp, self.path)
            except OSError:  # published meanwhile by another run
                return self.path if (self.path / "entry.json").is_file() else None
            return self.path
        except OSError:
            return None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _mac(self, meta: Mapping[str, Any]) -> str:
        body = json.dumps({k: v for k, v in meta.items() if k != "mac"}, sort_keys=True).encode()
        return hmac.new(self.secret, b"analytics-cache|" + body, hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ housekeeping
    def sweep(self) -> None:
        """Remove temporary folders of runs no longer alive and the least recently used entries."""
        sweep_folder(self.folder, tmp_prefix=_TMP, entry_prefix=_PREFIX, keep=MAX_ENTRIES - 1)


def sweep_folder(folder: Path, *, tmp_prefix: str, entry_prefix: str, keep: int) -> None:
    """Housekeeping of a cache folder's entries of one kind: temporary folders ``<tmp_prefix><pid>-...``
    of processes no longer alive, folders ``<entry_prefix>...`` without an ``entry.json`` (torn), and
    all but the ``keep`` most recently used entries."""
    for p in folder.glob(f"{tmp_prefix}*"):
        pid = p.name[len(tmp_prefix):].split("-", 1)[0]
        if not pid.isdigit() or not process_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
    found = []
    for p in folder.glob(f"{entry_prefix}*"):
        try:
            found.append(((p / "entry.json").stat().st_mtime, p))
        except OSError:  # no entry.json: not an entry of ours, or a torn one
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
    for _, p in sorted(found, reverse=True)[keep:]:
        shutil.rmtree(p, ignore_errors=True)


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def entries(folder: str | os.PathLike[str]) -> list[Path]:
    """The entries of a cache folder, newest first."""
    found = [p for p in Path(folder).glob(f"{_PREFIX}*") if (p / "entry.json").is_file()]
    return sorted(found, key=lambda p: (p / "entry.json").stat().st_mtime, reverse=True)


def clear(folder: str | os.PathLike[str], keep: Iterable[Path] = ()) -> int:
    """Remove every entry of a cache folder (except ``keep``); returns how many."""
    kept = {Path(p) for p in keep}
    gone = [p for p in entries(folder) if p not in kept]
    for p in gone:
        shutil.rmtree(p, ignore_errors=True)
    return len(gone)
