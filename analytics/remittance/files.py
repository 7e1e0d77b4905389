"""Read 835 files: one file whole (:func:`read_835`), one file part by part
(:func:`iter_835`), or many files and directories at once (:func:`read_835_many`).

Files are streamed, never loaded whole: they are read in binary chunks, cut into segments at
the terminator each ISA declares, and scanned into parts that end before a claim (CLP) or a
transaction (ST). Warnings are given once per file, worded for the whole file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from analytics.exceptions import ParameterError, X12Error
from analytics.remittance.builder import amounts_finite, build_tables
from analytics.remittance.reader import Reader, gc_paused
from analytics.remittance.scan import Entry
from analytics.remittance.sources import CHUNK_BYTES
from analytics.remittance.tables import ERROR_SCHEMA, Remittance
from analytics.remittance.tokenizer import Note

#: :func:`read_835_many` builds the tables of files read whole in batches of at most about this
#: many rows (claims, service lines, adjustments, remarks and PLB amounts; a 32 MB part holds
#: some 600,000), so the rows waiting to be built never take more memory than one part does.
_BATCH_ROWS = 250_000


def _check_chunk(chunk_bytes: int) -> int:
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise ParameterError(
            f"chunk_bytes must be a positive whole number of bytes, not {chunk_bytes!r}; the "
            f"default, {CHUNK_BYTES}, suits files of any size.",
            where="chunk_bytes",
        )
    return chunk_bytes


def _read(
    source: str | os.PathLike[str] | bytes,
    salt: str | None,
    source_name: str | None,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[Remittance, list[Note]]:
    reader = Reader(source, salt=salt, source_name=source_name, chunk_bytes=chunk_bytes)
    parts = list(reader.parts())
    remit = parts[0] if len(parts) == 1 else Remittance.concat(parts)
    return remit, reader.notes.messages()


def read_835(
    path_or_text: str | os.PathLike[str] | bytes,
    *,
    salt: str | None = None,
    source_name: str | None = None,
) -> Remittance:
    """Read one 835 remittance file into tidy tables.

    The file is read in chunks (see :func:`iter_835`), never held whole, so only the tables
    take memory. When even the tables are too large, take them part by part with
    :func:`iter_835`, or run the ``remit`` command, which writes them part by part.

    Parameters
    ----------
    path_or_text
        A path to the file, its raw bytes, or the 835 text itself (a string that contains a
        line break, or starts with ``ISA`` or ``ST`` and a separator, is taken as text).
    salt
        Salt for ``patient_key`` (first 16 hex characters of sha256(salt + member id)).
        Defaults to the ``ANALYTICS_ID_SALT`` environment variable, then to
        :data:`DEFAULT_SALT`, which is public and so not a secret.
    source_name
        Value of the ``file`` column and the name used in messages; defaults to the file
        name (``"<text>"`` for text).

    Returns
    -------
    Remittance
        ``payments``, ``claims``, ``service_lines``, ``adjustments``, ``remarks``, ``plb`` and
        ``balance`` tables; ``.summary()`` gives per-file totals.

    Raises
    ------
    X12Error
        Not X12, an ISA whose separators cannot be told from its structure, a transaction with
        no SE (truncated file), or no 835 transaction at all. The message names the file and
        segment number.

    Warns
    -----
    X12Warning
        For what does not stop the read, each named: a claim set aside because one of its
        amounts is not an X12 number (ASCII digits, an optional leading minus sign and decimal
        point; the other claims are read), other transaction sets (837, 277 ...) skipped, an ISA
        of the wrong length or without ISA16 read from its structure, segment ids with spaces,
        unknown segment ids, segments outside a transaction, SE01/GE01/IEA01 counts and
        GE02/IEA02 control numbers that do not match, an SVC01 without a procedure code, a
        component separator that differs from ISA16, invalid dates, empty required amounts.
    BalanceWarning
        Once per file when any line, claim or transaction check fails (see ``.balance``).

    Examples
    --------
    >>> remit = read_835(
    ...     "ST*835*1~BPR*I*5*C*CHK************20260318~LX*1~CLP*A1*1*9*5~CAS*CO*45*4~SE*6*1~"
    ... )
    >>> remit.claims[["claim_id", "charge", "paid"]].to_dict("records")
    [{'claim_id': 'A1', 'charge': 9.0, 'paid': 5.0}]
    >>> bool(remit.balance["balanced"].all())
    True
    """
    remit, notes = _read(path_or_text, salt, source_name)
    for category, message in notes:
        warnings.warn(message, category, stacklevel=2)
    return remit


def iter_835(
    path_or_text: str | os.PathLike[str] | bytes,
    *,
    salt: str | None = None,
    source_name: str | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[Remittance]:
    """Read an 835 of any size part by part, in memory bounded by ``chunk_bytes``.

    The file is read ``chunk_bytes`` at a time and cut into segments at the terminator its ISA
    declares; each part ends before a claim (CLP) or a transaction (ST), so one transaction for
    a check covering millions of claims is split too. Each part is a :class:`Remittance` whose
    claim and line indexes, segment numbers and values are those of a whole-file read, so
    ``Remittance.concat(list(iter_835(path)))`` equals ``read_835(path)``, table for table.

    A transaction's ``payments`` row and its transaction balance check (BPR02 = sum of CLP04 -
    sum of PLB, summed over every part) are in the part that reads its SE; line and claim
    checks are in the part that holds the line or claim.

    Parameters
    ----------
    path_or_text
        A path, the raw bytes, or the 835 text (as for :func:`read_835`).
    salt
        Salt for ``patient_key``; see :func:`read_835`.
    source_name
        Value of the ``file`` column and the name used in messages.
    chunk_bytes
        Bytes read at a time (characters, for text); parts hold about this much of the file.
        Memory use grows with it, not with the size of the file.

    Yields
    ------
    Remittance
        The tables of consecutive claims, in file order.

    Raises
    ------
    X12Error
        As :func:`read_835`, when the iteration reaches the fault; the parts before it have
        already been yielded.

    Warns
    -----
    X12Warning, BalanceWarning
        The warnings :func:`read_835` gives, worded for the whole file, once the last part has
        been yielded.

    Examples
    --------
    >>> text = (
    ...     "ST*835*1~BPR*I*12*C*CHK************20260318~LX*1~CLP*A1*1*9*5~CAS*CO*45*4~"
    ...     "CLP*A2*1*9*7~CAS*CO*45*2~SE*8*1~"
    ... )
    >>> [len(part.claims) for part in iter_835(text, chunk_bytes=16)]
    [1, 1]
    """
    reader = Reader(
        path_or_text, salt=salt, source_name=source_name, chunk_bytes=_check_chunk(chunk_bytes)
    )
    yield from reader.parts()
    for category, message in reader.notes.messages():
        warnings.warn(message, category, stacklevel=2)


def expand_paths(
    paths_or_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[Path]:
    """The files named, and the files of the directories named and of their subfolders (as a
    clearinghouse's download folder is kept, by year or payer), in path order; hidden files
    and folders are left out."""
    if isinstance(paths_or_dirs, (str, os.PathLike)):
        paths_or_dirs = [paths_or_dirs]
    out: list[Path] = []
    for item in paths_or_dirs:
        path = Path(item)
        if path.is_dir():
            out.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            out.append(path)
    return out


def file_names(paths: list[Path]) -> list[str]:
    """The name of each file in the tables and messages."""
    # Files are named by file name; when two share a name, their full paths are used instead.
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else str(p) for p in paths]


def _collect(
    path: Path, salt: str | None, name: str, chunk_bytes: int = CHUNK_BYTES
) -> tuple[Reader, list[Remittance], Entry | None]:
    """Read one file of :func:`read_835_many` as :func:`_read` does (the same chunks), leaving
    its last part unbuilt (:meth:`Reader.collect`)."""
    reader = Reader(path, salt=salt, source_name=name, chunk_bytes=chunk_bytes)
    built, last = reader.collect()
    return reader, built, last


def read_835_many(
    paths_or_dirs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    salt: str | None = None,
) -> tuple[Remittance, pd.DataFrame]:
    """Read many 835 files (and every file in the given directories) into one set of tables.

    A file that cannot be read does not stop the others: it is listed in the errors table.
    The tables equal those of :func:`read_835` on each file, stacked with
    :meth:`Remittance.concat`, and each file's warnings are given in file order; but files are
    built into tables in batches, so many small files cost about what one file of their total
    size does.

    Parameters
    ----------
    paths_or_dirs
        Files and/or directories. Directories are read with their subfolders, in path order,
        skipping hidden files.
    salt
        Salt for ``patient_key``; see :func:`read_835`.

    Returns
    -------
    (Remittance, pandas.DataFrame)
        The stacked tables of every file read, and the errors table with columns ``file`` and
        ``error`` (one row per file that could not be read). Files are named by file name;
        when two files share a name their full paths are used instead.

    Examples
    --------
    >>> remit, errors = read_835_many(["era/"])  # doctest: +SKIP
    >>> errors.empty  # doctest: +SKIP
    True
    """
    paths = expand_paths(paths_or_dirs)
    parts: list[Remittance] = []
    errors: list[dict[str, str]] = []
    # Files read in one part (all but those of tens of MB) wait, unbuilt, to be built together:
    # building tables costs about the same for a few rows as for many, so a batch of small
    # files costs about what one file of their total size does.
    batch: list[Entry] = []
    batch_rows = 0

    def build_batch() -> None:
        nonlocal batch_rows
        if not batch:
            return
        remit, _ = build_tables(batch)
        parts.append(remit)
        for entry in batch:
            for category, message in entry.notes.messages():
                warnings.warn(message, category, stacklevel=3)
        batch.clear()
        batch_rows = 0

    # The collector stays paused for the whole run (see gc_paused), not switched on again
    # after each file, where it would look through the batch's rows each time.
    with gc_paused():
        for path, name in zip(paths, file_names(paths), strict=True):
            try:
                reader, built, last = _collect(path, salt, name)
                if not built and last is not None and amounts_finite(last.scan):
                    if batch and batch_rows + last.rows > _BATCH_ROWS:
                        build_batch()
                    batch.append(last)
                    batch_rows += last.rows
                    if batch_rows >= _BATCH_ROWS:
                        build_batch()
                    continue
                # A file of several parts, or one with an amount that is not a finite number (its
                # build fails with the message naming the segment), is built on its own.
                if last is not None:
                    built.append(reader.build(last))
            except (X12Error, OSError) as exc:
                errors.append({"file": name, "error": str(exc)})
                continue
            build_batch()  # the files before this one come first
            for category, message in reader.notes.messages():
                warnings.warn(message, category, stacklevel=2)
            parts.extend(built)
        build_batch()
    error_frame = pd.DataFrame(errors, columns=list(ERROR_SCHEMA)).astype(ERROR_SCHEMA)
    return Remittance.concat(parts), error_frame
