"""The practice's secret pseudonym key: created once, kept beside the inputs, never written out.

A practice folder holds its key in ``.analytics-key`` (64 hex digits, mode 0600), made by
``python -m analytics init`` (:func:`create_key`). Scheduled runs and Dask workers that cannot
read the folder get it from the ``ANALYTICS_PRACTICE_KEY`` environment variable instead.
The key itself never goes into a report, table, manifest, notebook, cache or log: manifests
record its fingerprint (:func:`key_fingerprint`), which names the key without revealing it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from analytics.exceptions import PrivacyError

__all__ = ["KEY_FILE", "KEY_ENV", "SALT_ENV", "DEFAULT_SALT", "REMITTANCE_SALT", "UNKEYED_FLAG", "PracticeKey",
           "create_key", "load_key", "practice_key", "parse_key", "key_fingerprint", "find_key_file", "resolve_key",
           "command_key", "write_key_file"]

#: Name of the practice's key file, kept beside the practice's inputs (mode 0600).
KEY_FILE = ".analytics-key"
#: Environment variable holding the practice's key (64 hex digits) for scheduled runs and
#: Dask workers; it takes the place of the key file.
KEY_ENV = "ANALYTICS_PRACTICE_KEY"
#: Older environment variable: a secret text used as the key when no key file or
#: ``ANALYTICS_PRACTICE_KEY`` is there. Still read; a key made by ``init`` is stronger.
SALT_ENV = "ANALYTICS_ID_SALT"
#: Key of pseudonyms made without a practice key. It is public, so such pseudonyms can be
#: reversed by anyone who hashes guessed ids (account numbers are short): commands refuse to
#: write them unless told ``--unkeyed-pseudonyms``.
DEFAULT_SALT = "massage-billing-analytics/public-default-salt"
#: The remittance ``patient_key`` uses the same pseudonym and the same key as every table.
REMITTANCE_SALT = DEFAULT_SALT
#: The command-line flag that allows unkeyed (reversible) pseudonyms.
UNKEYED_FLAG = "--unkeyed-pseudonyms"
_KEY_BYTES = 32


@dataclasses.dataclass(frozen=True, repr=False)
class PracticeKey:
    """A pseudonym key and where it came from; its text form never shows the key.

    ``keyed`` is False for the public key of unkeyed pseudonyms. Instances travel with Dask
    tasks and to worker processes; their ``repr`` shows only the fingerprint, so a logged
    task never carries the key.
    """

    secret: bytes
    source: str
    keyed: bool = True

    @property
    def fingerprint(self) -> str:
        """First 12 hex digits of ``HMAC-SHA-256(key, "fingerprint")``."""
        return key_fingerprint(self.secret)

    def __repr__(self) -> str:
        return f"PracticeKey(fingerprint={self.fingerprint}, source={self.source!r}, keyed={self.keyed})"

    __str__ = __repr__

    def describe(self) -> dict[str, object]:
        """What a manifest records about the key: scheme, fingerprint, keyed or not; never the key."""
        return {"pseudonyms": "HMAC-SHA-256, first 16 hex digits", "key_fingerprint": self.fingerprint,
                "keyed": self.keyed}


def key_fingerprint(key: bytes | str | PracticeKey) -> str:
    """First 12 hex digits of ``HMAC-SHA-256(key, "fingerprint")``: names a key without revealing it.

    Examples
    --------
    >>> key_fingerprint(bytes(32))
    '2c3767eca986'
    """
    if isinstance(key, PracticeKey):
        key = key.secret
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return hmac.new(raw, b"fingerprint", hashlib.sha256).hexdigest()[:12]


def write_key_file(path: Path, key: bytes, *, replace: bool = False) -> Path:
    """Write ``key`` as 64 hex digits to ``path``, readable by its owner only (mode 0600).

    A new file is created exclusively (``O_EXCL``), so an existing key is never replaced by
    accident; ``replace`` writes a temporary file beside it and renames it over the old one.
    """
    path = Path(path)
    target = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp") if replace else path
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise PrivacyError(
            f"{path} already exists: this practice already has a pseudonym key. Keep it; to replace it, run "
            f"`python -m analytics rekey {path.parent}` (which re-keys the practice's stored tables).",
            where=str(path),
        ) from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key.hex() + "\n")
        os.chmod(target, 0o600)
        if replace:
            os.replace(target, path)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return path


def create_key(folder: str | Path) -> Path:
    """Create the practice's secret pseudonym key in ``folder``; return the key file's path.

    The key is 32 random bytes (:func:`secrets.token_bytes`) written as 64 hex digits to
    ``folder/.analytics-key``, readable by its owner only (mode 0600). An existing key is
    never replaced: re-keying is the explicit ``rekey`` command.

    Parameters
    ----------
    folder
        The practice folder (created when missing).

    Returns
    -------
    pathlib.Path
        The key file.

    Raises
    ------
    PrivacyError
        When the folder already holds a key file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return write_key_file(folder / KEY_FILE, secrets.token_bytes(_KEY_BYTES))


def parse_key(text: str, where: str) -> bytes:
    """The key held as 64 hex digits in ``text`` (a key file's content or :data:`KEY_ENV`)."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != _KEY_BYTES:
        raise PrivacyError(
            f"{where} does not hold a pseudonym key (expected {2 * _KEY_BYTES} hex digits). Restore the key "
            "file from the practice's backup, or create a new key with `python -m analytics init` (a new key "
            "gives new pseudonyms: re-key stored tables with `python -m analytics rekey`).",
            where=where,
        )
    return key


def load_key(folder: str | Path | None = None, *, required: bool = True) -> bytes | None:
    """The practice's pseudonym key: ``folder/.analytics-key``, else :data:`KEY_ENV`.

    Parameters
    ----------
    folder
        The practice folder; ``None`` reads the environment variable only.
    required
        When True (default), a missing key raises; when False it returns ``None``.

    Returns
    -------
    bytes or None
        The 32-byte key.

    Raises
    ------
    PrivacyError
        No key (and ``required``), a malformed key, or a key file and an environment key
        that differ (the outputs would mix two practices' pseudonyms).
    """
    path = Path(folder) / KEY_FILE if folder is not None else None
    found = _key_from(path)
    if found is None and required:
        place = f"the practice folder {path.parent}" if path is not None else "this run"
        raise PrivacyError(
            f"No pseudonym key for {place}. Create one with `python -m analytics init` (it writes {KEY_FILE} "
            f"beside the inputs) or set {KEY_ENV}; or pass {UNKEYED_FLAG} to write pseudonyms that anyone can "
            "reverse by guessing ids.",
            where=str(path) if path is not None else None,
        )
    return None if found is None else found.secret


def practice_key(folder: str | Path) -> PracticeKey:
    """The practice's key (file in ``folder``, else :data:`KEY_ENV`) with where it came from.

    Raises :class:`PrivacyError` when there is none (see :func:`load_key`).
    """
    load_key(folder)  # raises with the fix when there is no key
    found = _key_from(Path(folder) / KEY_FILE)
    assert found is not None
    return found


def _key_from(path: Path | None) -> PracticeKey | None:
    file_key = env_key = None
    if path is not None and path.is_file():
        file_key = parse_key(path.read_text(errors="replace"), str(path))
    if os.environ.get(KEY_ENV, "").strip():
        env_key = parse_key(os.environ[KEY_ENV], f"The environment variable {KEY_ENV}")
    if file_key is not None and env_key is not None and not hmac.compare_digest(file_key, env_key):
        raise PrivacyError(
            f"{path} and the environment variable {KEY_ENV} hold different keys, which would mix two sets of "
            f"pseudonyms. Unset {KEY_ENV}, or set it to this practice's key.",
            where=str(path),
        )
    if file_key is not None:
        return PracticeKey(file_key, str(path))
    if env_key is not None:
        return PracticeKey(env_key, KEY_ENV)
    return None


def find_key_file(paths: Iterable[str | Path]) -> Path | None:
    """The key file beside the given inputs: in a folder given, or the folder of a file, or its parent.

    A practice folder holds the export and ``remittances/``, so an 835 under
    ``PRACTICE/remittances/`` finds ``PRACTICE/.analytics-key``. Two different key files for
    one command's inputs are an error (one output, one practice).
    """
    found: set[Path] = set()
    for p in map(Path, paths):
        if "://" in str(p):
            continue
        folder = p if p.is_dir() else p.parent
        for candidate in (folder / KEY_FILE, folder.parent / KEY_FILE):
            if candidate.is_file():
                found.add(candidate.resolve())
                break
    if len(found) > 1:
        raise PrivacyError(
            f"The inputs belong to practices with different keys ({', '.join(sorted(map(str, found)))}); run the "
            "command once per practice folder, or name the key with --key-file.",
        )
    return next(iter(found), None)


def resolve_key(key: bytes | str | PracticeKey | None = None, *, near: Iterable[str | Path] = ()) -> PracticeKey:
    """The key pseudonyms are made with, quietly: given, else found, else the public key.

    In order: ``key`` (a :class:`PracticeKey`, 32 raw bytes, or a secret text); the key file
    beside the inputs ``near`` (:func:`find_key_file`); :data:`KEY_ENV`; the older
    :data:`SALT_ENV`; else the public :data:`DEFAULT_SALT` with ``keyed=False``. Library
    functions use this; commands that write pseudonyms use :func:`command_key`, which refuses
    the public key unless told.
    """
    if isinstance(key, PracticeKey):
        return key
    if isinstance(key, bytes | bytearray):
        return PracticeKey(bytes(key), "given")
    if isinstance(key, str):
        return PracticeKey(key.encode("utf-8"), "given")
    if key is not None:
        raise PrivacyError(f"A pseudonym key must be bytes or text, not {type(key).__name__}.")
    path = find_key_file(near)
    found = _key_from(path)
    if found is not None:
        return found
    if os.environ.get(SALT_ENV):
        return PracticeKey(os.environ[SALT_ENV].encode("utf-8"), SALT_ENV)
    return PracticeKey(DEFAULT_SALT.encode("utf-8"), "public (unkeyed)", keyed=False)


def command_key(near: Iterable[str | Path] = (), *, key_file: str | Path | None = None,
                unkeyed: bool = False, what: str = "pseudonymised tables") -> PracticeKey:
    """The key for a command that writes pseudonyms; refuses the public key unless ``unkeyed``.

    Parameters
    ----------
    near
        The command's inputs; the key file is looked for beside them.
    key_file
        A key file named explicitly (``--key-file``).
    unkeyed
        ``--unkeyed-pseudonyms``: with no key, use the public key and warn loudly.
    what
        What the command writes, for the messages.

    Raises
    ------
    PrivacyError
        No key and not ``unkeyed`` (the command exits 2 and says how to create one).
    """
    import warnings

    from analytics.exceptions import AnalyticsWarning

    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise PrivacyError(f"--key-file {path} does not exist. Give the practice's {KEY_FILE} file, or create "
                               "one with `python -m analytics init`.", where=str(path))
        return PracticeKey(parse_key(path.read_text(errors="replace"), str(path)), str(path))
    near = list(near)
    chosen = resolve_key(None, near=near)
    if chosen.keyed:
        return chosen
    if not unkeyed:
        folder = next((Path(p) if Path(p).is_dir() else Path(p).parent for p in near), Path("PRACTICE_DIR"))
        if folder.name == "remittances":  # the 835s of a practice folder: the key belongs to the practice
            folder = folder.parent
        raise PrivacyError(
            f"No pseudonym key: {what} would carry pseudonyms that anyone can reverse by hashing guessed ids. "
            f"Create the practice's key with `python -m analytics init {folder} --export FILE` (it writes {KEY_FILE} "
            f"there), or set {KEY_ENV}, or name a key with --key-file; or pass {UNKEYED_FLAG} to write reversible "
            "pseudonyms anyway.",
        )
    warnings.warn(
        f"{UNKEYED_FLAG}: {what} carry pseudonyms made without a practice key. Anyone with this toolkit can "
        "reverse them by hashing guessed account numbers or member ids. Do not share these files outside the "
        f"practice; create a key with `python -m analytics init` and re-run.",
        AnalyticsWarning, stacklevel=2,
    )
    return chosen
