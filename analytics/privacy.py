"""A privacy guard for everything that leaves the practice: reports, notebooks, saved tables.

The guard collects the direct identifiers present in the inputs (raw patient and member ids,
patient names, dates of birth) and scans every output file for them. Identifiers are matched
as whole tokens, case-insensitively, so an id such as ``MBR001`` is found inside HTML or CSV
text but not inside ``MBR0012``. The report runner refuses to finish when the guard finds one.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from analytics.exceptions import PrivacyError

__all__ = ["Identifiers", "identifiers_from_export", "identifiers_from_835", "scan_text", "scan_outputs",
           "scan_notebook", "redact", "check_outputs"]

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
# Headers in snake case. They cover every name, id and birth-date header the intake drops or
# reads as the patient id (analytics/intake.py PRIVATE_COLUMNS and its patient_id aliases).
_NAME_COLUMNS = ("patient_name", "name", "first_name", "last_name", "firstname", "lastname", "patient_first_name",
                 "patient_last_name", "subscriber_name", "insured_name", "patient", "full_name", "patient_full_name",
                 "middle_name", "guarantor_name")
_ID_COLUMNS = ("patient_id", "member_id", "subscriber_id", "insured_id", "mrn", "chart_number", "account_number",
               "patient_account", "patient_account_number", "patient_number", "ssn", "patient_ssn",
               "social_security_number")
_DOB_COLUMNS = ("dob", "date_of_birth", "birth_date", "birthdate", "patient_dob")
_TEXT_SUFFIXES = {".html", ".htm", ".ipynb", ".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".svg"}
_MIN_ID = 4  # shorter ids ("1", "p1") are too common as ordinary tokens to guard meaningfully


@dataclasses.dataclass
class Identifiers:
    """Direct identifiers to keep out of outputs, as upper-case tokens."""

    ids: set[str] = dataclasses.field(default_factory=set)
    names: set[str] = dataclasses.field(default_factory=set)
    dates_of_birth: set[str] = dataclasses.field(default_factory=set)

    def __or__(self, other: Identifiers) -> Identifiers:
        return Identifiers(self.ids | other.ids, self.names | other.names, self.dates_of_birth | other.dates_of_birth)

    def __len__(self) -> int:
        return len(self.ids) + len(self.names) + len(self.dates_of_birth)

    def add_ids(self, values: Iterable[object]) -> None:
        self.ids |= {str(v).strip().upper() for v in values if len(str(v).strip()) >= _MIN_ID}

    def add_names(self, values: Iterable[object]) -> None:
        for v in values:
            for token in _TOKEN.findall(str(v)):
                if len(token) >= 3 and not token.isdigit():
                    self.names.add(token.upper())

    def add_dates(self, values: Iterable[object]) -> None:
        for v in values:
            ts = pd.to_datetime(str(v), errors="coerce")
            if pd.isna(ts):
                continue
            self.dates_of_birth |= {ts.strftime("%Y-%m-%d"), ts.strftime("%m/%d/%Y"), ts.strftime("%Y%m%d")}


def _header(name: object) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def identifiers_from_export(path: str | Path, *, sheet: str | int | None = None) -> Identifiers:
    """Identifiers in a practice-management export (CSV, Excel or Parquet), read raw."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        frame = pd.read_excel(path, dtype=str, sheet_name=sheet or 0)
    elif path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path).astype(str)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    found = Identifiers()
    for col in frame.columns:
        key = _header(col)
        values = frame[col].dropna().unique()
        if key in _NAME_COLUMNS or key.endswith("_name") and "patient" in key:
            found.add_names(values)
        elif key in _ID_COLUMNS:
            found.add_ids(values)
        elif key in _DOB_COLUMNS:
            found.add_dates(values)
    return found


def identifiers_from_835(paths: Iterable[str | Path]) -> Identifiers:
    """Patient and subscriber names and ids (NM1*QC / NM1*IL / NM1*74) and birth dates in raw 835 files."""
    found = Identifiers()
    for path in paths:
        text = Path(path).read_text(errors="replace")
        element = text[3] if text.startswith("ISA") and len(text) > 3 else "*"
        for seg in re.split(r"~\s*|\r?\n", text):
            parts = seg.strip().split(element)
            if parts[0] == "NM1" and len(parts) > 2 and parts[1] in ("QC", "IL", "74"):
                found.add_names(p for p in parts[3:6] if p)
                if len(parts) > 9 and parts[9]:
                    found.add_ids([parts[9]])
            elif parts[0] == "DMG" and len(parts) > 2:
                found.add_dates([parts[2]])
    return found


def _text_of(path: Path) -> str:
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
        return frame.astype(str).to_csv(index=False) + " ".join(map(str, frame.columns))
    return path.read_text(errors="replace")


def scan_outputs(paths: Iterable[str | Path], identifiers: Identifiers) -> pd.DataFrame:
    """Every identifier found in the given files (or files under given folders).

    Returns a DataFrame with ``file``, ``kind`` (id, name, date_of_birth) and ``value``
    (masked: first and last character only), empty when the outputs are clean.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    rows = []
    for f in files:
        if f.suffix.lower() not in _TEXT_SUFFIXES | {".parquet"}:
            continue
        rows += [{"file": str(f), "kind": k, "value": v} for k, v in scan_text(_text_of(f), identifiers)]
    return pd.DataFrame(rows, columns=["file", "kind", "value"])


def scan_text(text: str, identifiers: Identifiers) -> list[tuple[str, str]]:
    """``(kind, masked value)`` for every identifier in ``text``; empty when it is clean.

    Examples
    --------
    >>> ids = Identifiers(names={"QWERTYSON"})
    >>> scan_text("patient: Zelda Qwertyson", ids)
    [('name', 'Q*******N')]
    """
    tokens = {t.upper() for t in _TOKEN.findall(text)}
    # dates like 03/04/1961 are not one token: look for them as substrings
    hits = [("id", v) for v in sorted(identifiers.ids & tokens)]
    hits += [("name", v) for v in sorted(identifiers.names & tokens)]
    hits += [("date_of_birth", v) for v in sorted(identifiers.dates_of_birth) if v in text]
    return [(k, _mask(v)) for k, v in hits]


def redact(text: str, identifiers: Identifiers) -> str:
    """``text`` with every identifier masked (first and last character kept).

    Examples
    --------
    >>> redact("cell 3: print('Zelda Qwertyson')", Identifiers(names={"ZELDA", "QWERTYSON"}))
    "cell 3: print('Z***a Q*******n')"
    """
    tokens = identifiers.ids | identifiers.names
    out = _TOKEN.sub(lambda m: _mask(m[0]) if m[0].upper() in tokens else m[0], text)
    for date in identifiers.dates_of_birth:
        out = out.replace(date, _mask(date))
    return out


def scan_notebook(path: str | Path, identifiers: Identifiers) -> pd.DataFrame:
    """Where in an executed notebook identifiers appear: one row per cell and identifier.

    Columns ``cell`` (1-based code-cell number, counting the injected parameters cell),
    ``first_line`` (of the cell's source), ``part`` (``source`` or ``outputs``), ``kind`` and
    ``value`` (masked). Lets a refused report say which cell to fix without keeping the text.
    """
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    rows = []
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        number += 1
        first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")[:80]
        if scan_text(first, identifiers):
            first = "(this line holds an identifier)"
        outputs = json.dumps(cell.get("outputs", []))
        for part, text in (("source", cell.source), ("outputs", outputs)):
            rows += [{"cell": number, "first_line": first, "part": part, "kind": k, "value": v}
                     for k, v in scan_text(text, identifiers)]
    return pd.DataFrame(rows, columns=["cell", "first_line", "part", "kind", "value"])


def _mask(value: str) -> str:
    return value[0] + "*" * max(len(value) - 2, 1) + value[-1] if len(value) > 2 else "**"


def check_outputs(paths: Iterable[str | Path], identifiers: Identifiers) -> None:
    """Raise :class:`PrivacyError` naming the files that carry an identifier."""
    found = scan_outputs(paths, identifiers)
    if not found.empty:
        files = ", ".join(sorted(set(found["file"])))
        kinds = ", ".join(sorted(set(found["kind"])))
        raise PrivacyError(
            f"{len(found)} patient identifier(s) ({kinds}) found in outputs: {files}. These files must not "
            "leave the practice; remove the identifying columns from the inputs or the notebook, then rerun.",
            rows=found,
        )
