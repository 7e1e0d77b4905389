"""Re-keying: a practice's stored tables moved from its old pseudonym key to a new one.

A pseudonym cannot be turned back into its id, so the ids are read again from the practice's
own inputs (the export and the 835s, which never leave the practice): each id's pseudonym
under the old key is mapped to its pseudonym under the new key, and every pseudonym column
of the stored tables (``patient_id`` of ``intake`` and ``evaluate`` tables, ``patient_key``
of ``remit`` tables) is rewritten. Nothing is written unless every pseudonym in every table
is re-keyed: a pseudonym whose id is in no input stops the run, naming the file and how many
there are. The tables are staged first, then moved into place, then the key is replaced.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from analytics._files import csv_text
from analytics.exceptions import PrivacyError
from analytics.privacy.identifiers import practice_inputs, read_raw_export
from analytics.privacy.keys import KEY_FILE, PracticeKey, practice_key, write_key_file
from analytics.privacy.pseudonyms import (
    KEY_FINGERPRINT_KEY,
    PSEUDONYMISED_KEY,
    marked_fingerprint,
    marked_pseudonymous,
    pseudonyms,
    rekey_values,
)

__all__ = ["Rekeyed", "rekey_practice", "raw_ids", "PSEUDONYM_COLUMNS"]

#: Columns that hold pseudonyms in the toolkit's tables.
PSEUDONYM_COLUMNS = ("patient_id", "patient_key")
_PSEUDONYM = re.compile(r"^[0-9a-f]{16}$")


@dataclasses.dataclass
class Rekeyed:
    """What a re-keying did: files rewritten, pseudonyms changed, the keys' fingerprints."""

    files: list[Path]
    values: int
    ids: int
    old_fingerprint: str
    new_fingerprint: str
    key_file: Path


def raw_ids(export: Path | None, remittances: Iterable[Path], mapping: Path | None = None) -> set[str]:
    """Every value that may have been pseudonymised: the export's cells as the intake reads
    them (stripped, as written), and the patient and subscriber ids of the 835s."""
    found: set[str] = set()
    if export is not None:
        frame = read_raw_export(export)
        for col in frame.columns:
            values = frame[col].astype("str")
            found |= set(values.unique()) | set(values.str.strip().unique())
        try:  # the ids exactly as the intake reads them (mapped, cleaned)
            from analytics.intake import read_service_lines

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                intake = read_service_lines(export, mapping=mapping)
            found |= set(intake.lines["patient_id"].astype("str").unique())
        except Exception:  # noqa: BLE001 - the raw cells above already cover a plain export
            pass
    for path in remittances:
        text = Path(path).read_text(errors="replace").lstrip("\ufeff")
        element = text[3] if text.startswith("ISA") and len(text) > 3 else "*"
        for seg in re.split(r"~\s*|\r?\n", text):
            parts = seg.strip().split(element)
            if parts[0].strip() == "NM1" and len(parts) > 9 and parts[1] in ("QC", "IL", "74"):
                found.add(parts[9].strip())
    found.discard("")
    return found


def _tables(folders: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            raise PrivacyError(f"--tables {folder} does not exist. Give the folders that `intake`, `remit` or "
                               "`evaluate` wrote (their --out).", where=str(folder))
        candidates = [folder] if folder.is_file() else sorted(folder.rglob("*"))
        files += [f for f in candidates if f.is_file() and f.suffix.lower() in (".parquet", ".csv")
                  and not f.name.startswith(".")]
    return files


def _pseudonym_columns(frame: pd.DataFrame, marked: set[str]) -> list[str]:
    out = []
    for col in frame.columns:
        if col not in PSEUDONYM_COLUMNS and col not in marked:
            continue
        values = frame[col].dropna().astype("str")
        values = values[values != ""]
        if len(values) and values.str.fullmatch(_PSEUDONYM).all():
            out.append(col)
    return out


def _stage(path: Path, mapping: dict[str, str], old: PracticeKey, new: PracticeKey) -> tuple[Path | None, int, int]:
    """Write the re-keyed copy of one table beside it; returns (staged file, values, unknown)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.rekey")
    if path.suffix.lower() == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        recorded = marked_fingerprint(table.schema)
        if recorded is not None and recorded != old.fingerprint:
            raise PrivacyError(f"{path} was written with the key {recorded}, not with this practice's key "
                               f"{old.fingerprint}; re-key it with the practice folder whose key made it.",
                               where=str(path))
        frame = table.to_pandas()
        columns = _pseudonym_columns(frame, marked_pseudonymous(table.schema))
        if not columns:
            return None, 0, 0
        changed = unknown = 0
        for col in columns:
            values, missing = rekey_values(frame[col], mapping)
            unknown += int(missing.sum())
            changed += int((~missing & frame[col].notna()).sum())
            index = table.column_names.index(col)
            kind = table.schema.field(index).type
            array = pa.array(values.where(frame[col].notna(), None).tolist(), type=pa.string())
            table = table.set_column(index, col, array.cast(kind) if kind != pa.string() else array)
        meta = {**(table.schema.metadata or {}), KEY_FINGERPRINT_KEY: new.fingerprint.encode()}
        if PSEUDONYMISED_KEY not in meta:
            meta[PSEUDONYMISED_KEY] = ",".join(columns).encode()
        if not unknown:
            pq.write_table(table.replace_schema_metadata(meta), tmp)
        return (tmp if not unknown else None), changed, unknown
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    columns = _pseudonym_columns(frame, set())
    if not columns:
        return None, 0, 0
    changed = unknown = 0
    for col in columns:
        values, missing = rekey_values(frame[col], mapping)
        unknown += int(missing.sum())
        changed += int((~missing & frame[col].ne("")).sum())
        frame[col] = values
    if not unknown:
        tmp.write_text(csv_text(frame), encoding="utf-8")
    return (tmp if not unknown else None), changed, unknown


def rekey_practice(folder: str | Path, tables: Sequence[str | Path], *, export: str | Path | None = None,
                   remittances: str | Path | None = None) -> Rekeyed:
    """Replace the practice's key by a new random one and re-key its stored tables.

    Parameters
    ----------
    folder
        The practice folder, holding ``.analytics-key`` (or the key in
        ``ANALYTICS_PRACTICE_KEY``; the new key is then written to the folder's key file).
    tables
        Folders (or files) of tables written with the old key: ``intake``, ``remit`` and
        ``evaluate`` outputs (Parquet and CSV).
    export, remittances
        The inputs holding the raw ids (default: the folder's export and ``remittances/``).

    Returns
    -------
    Rekeyed
        The files rewritten and the fingerprints of the old and new keys.

    Raises
    ------
    PrivacyError
        No key in the folder; a table made with another key; a pseudonym whose id is in no
        input (nothing is written then).
    """
    folder = Path(folder)
    old = practice_key(folder)
    found_export, found_remits, mapping_file = practice_inputs(folder)
    export_path = Path(export) if export is not None else found_export
    remit_dir = Path(remittances) if remittances is not None else None
    remit_files = (sorted(p for p in remit_dir.rglob("*") if p.is_file()) if remit_dir.is_dir() else []) \
        if remit_dir is not None else found_remits
    ids = raw_ids(export_path, remit_files, mapping_file)
    new = PracticeKey(secrets.token_bytes(32), str(folder / KEY_FILE))
    values = sorted(ids)
    mapping = dict(zip(pseudonyms(values, old), pseudonyms(values, new), strict=True))
    staged: list[tuple[Path, Path]] = []
    problems: list[str] = []
    changed = 0
    pending = folder / f"{KEY_FILE}.new"
    if pending.exists():
        raise PrivacyError(
            f"{pending} exists: an earlier rekey stopped part-way. The tables it had moved use that key; move it over "
            f"{folder / KEY_FILE} if the tables were all moved, else restore them from backup, then remove it.",
            where=str(pending))
    try:
        for path in _tables([Path(t) for t in tables]):
            tmp, n, unknown = _stage(path, mapping, old, new)
            changed += n
            if unknown:
                problems.append(f"{path} ({unknown} value(s))")
            elif tmp is not None:
                staged.append((tmp, path))
        if problems:
            raise PrivacyError(
                f"Nothing was re-keyed: {len(problems)} table(s) hold pseudonyms whose ids are in none of the inputs "
                f"read ({'; '.join(problems[:5])}). Give the export and the 835s those tables were made from with "
                "--export and --remittances, or leave those tables out of --tables.",
            )
        write_key_file(pending, new.secret)  # first the new key, then the tables, then the switch
        for tmp, path in staged:
            os.replace(tmp, path)
        staged_done = [path for _, path in staged]
        os.replace(pending, folder / KEY_FILE)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
    key_file = folder / KEY_FILE
    return Rekeyed(files=staged_done, values=changed, ids=len(ids), old_fingerprint=old.fingerprint,
                   new_fingerprint=new.fingerprint, key_file=key_file)
