"""The direct identifiers of a practice's inputs, which no output may show.

The guard (:mod:`analytics.privacy.guard`) needs to know what to look for: patient and member
ids, account numbers, dates of birth, and people's names, both as single words and as first
and last name together. They are read from the raw export (whatever row its header is on, a
totals row left out) and from the 835s (``NM1*QC``, ``NM1*IL``, ``NM1*74`` and ``DMG``). The
names of payers, providers and the practice are collected too, as words a page may show.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.privacy.headers import (
    ID_COLUMNS,
    NAME_COLUMNS,
    header_key,
    is_birth_date_header,
    is_identifying,
    is_name_header,
)

__all__ = ["Identifiers", "identifiers_from_export", "identifiers_from_835", "identifiers_from_folder",
           "read_raw_export", "totals_rows", "name_words", "is_totals_label", "normalise_phrase", "EXPORT_NAMES", "MIN_ID", "practice_inputs"]

#: File names a practice folder's export may have, in the order they are looked for.
EXPORT_NAMES = ("service_lines.csv", "service_lines.parquet", "service_lines.xlsx", "service_lines.tsv",
                "service_lines.xlsm")
#: Shorter ids ("1", "p1") are too common as ordinary tokens to guard meaningfully.
MIN_ID = 4
_WORD = re.compile(r"[^\W\d_]+")
_TOTALS = frozenset({"TOTAL", "TOTALS", "GRAND TOTAL", "SUBTOTAL", "SUB TOTAL", "TOTAL CHARGES", "REPORT TOTAL",
                     "TOTAL ALL", "ALL PATIENTS", "ALL PAYERS"})
_HEADER_HINTS = frozenset({"cpt", "code", "charge", "charges", "dos", "service_date", "date_of_service", "units",
                           "minutes", "payer", "provider", "modifier", "modifiers", "claim", "account", "dx"})
_ID_WORDS = frozenset({"account", "acct", "mrn", "chart", "member", "subscriber", "insured", "ssn", "patient", "pt"})
_NUMBER_WORDS = frozenset({"id", "no", "num", "number", "nbr"})
_PAYER_WORDS = frozenset({"payer", "insurance", "carrier", "plan", "insurer", "primary", "secondary"})
_PROVIDER_WORDS = frozenset({"provider", "rendering", "therapist", "clinician", "referring", "doctor", "physician"})


def name_words(text: object) -> list[str]:
    """The words of a text as the guard compares names: letters only, upper case.

    Examples
    --------
    >>> name_words("SMITH-JOHN-0423 and O'Brien")
    ['SMITH', 'JOHN', 'AND', 'O', 'BRIEN']
    """
    return [w.upper() for w in _WORD.findall(str(text))]


def normalise_phrase(text: object) -> str:
    """Words of ``text`` in upper case joined by one space: how payer and provider names are compared."""
    return " ".join(w.upper() for w in re.findall(r"[^\W_]+", str(text)))


def is_totals_label(text: object) -> bool:
    """True for a totals row's label (``TOTAL``, ``Totals:``, ``Grand total``): never a patient.

    Examples
    --------
    >>> is_totals_label("TOTAL:"), is_totals_label("Grand Total"), is_totals_label("Total, Mark")
    (True, True, False)
    """
    return normalise_phrase(text) in _TOTALS


@dataclasses.dataclass
class Identifiers:
    """Direct identifiers to keep out of outputs, as upper-case tokens.

    ``ids`` are whole tokens (patient, member and account numbers); ``names`` every word of
    a person's name; ``people`` each person's (first name words, last name words), so that a
    name shown as a name is found; ``dates_of_birth`` in the forms pages print dates;
    ``protected`` the payer, provider and practice names (normalised phrases), which a page
    may show although a patient shares one of their words.
    """

    ids: set[str] = dataclasses.field(default_factory=set)
    names: set[str] = dataclasses.field(default_factory=set)
    dates_of_birth: set[str] = dataclasses.field(default_factory=set)
    people: set[tuple[tuple[str, ...], tuple[str, ...]]] = dataclasses.field(default_factory=set)
    protected: set[str] = dataclasses.field(default_factory=set)

    def __or__(self, other: Identifiers) -> Identifiers:
        return Identifiers(self.ids | other.ids, self.names | other.names, self.dates_of_birth | other.dates_of_birth,
                           self.people | other.people, self.protected | other.protected)

    def __len__(self) -> int:
        return len(self.ids) + len(self.names) + len(self.dates_of_birth)

    def add_ids(self, values: Iterable[object]) -> None:
        """Add patient, member or account numbers (4 characters or more)."""
        self.ids |= {str(v).strip().upper() for v in values if len(str(v).strip()) >= MIN_ID}

    def add_names(self, values: Iterable[object]) -> None:
        """Add full names as an export writes them: ``Last, First Middle`` or ``First Middle Last``."""
        for v in values:
            text = str(v).strip()
            if not text or is_totals_label(text):
                continue
            if "," in text:
                last, _, rest = text.partition(",")
                self.add_person(rest.split()[0] if rest.split() else "", last, middle=" ".join(rest.split()[1:]))
            else:
                words = text.split()
                self.add_person(words[0] if len(words) > 1 else "", words[-1] if words else "",
                                middle=" ".join(words[1:-1]))

    def add_person(self, first: object, last: object, *, middle: object = "") -> None:
        """Add one person's name from separate first, last (and middle) name values."""
        first_words = tuple(w for w in name_words(first) if len(w) >= 2)
        last_words = tuple(w for w in name_words(last) if len(w) >= 2)
        for w in (*first_words, *last_words, *name_words(middle)):
            if len(w) >= 3 and not is_totals_label(w):
                self.names.add(w)
        if first_words and last_words:
            self.people.add((first_words, last_words))

    def add_dates(self, values: Iterable[object]) -> None:
        """Add dates of birth, in the forms a page or table prints dates."""
        for v in values:
            text = str(v).strip()
            if not text:
                continue
            ts = pd.to_datetime(text, errors="coerce", format="%Y%m%d" if re.fullmatch(r"\d{8}", text) else None)
            if pd.isna(ts):
                continue
            self.dates_of_birth |= {ts.strftime("%Y-%m-%d"), ts.strftime("%m/%d/%Y"), ts.strftime("%Y%m%d"),
                                    f"{ts.month}/{ts.day}/{ts.year}"}

    def add_protected(self, values: Iterable[object]) -> None:
        """Add payer, provider or practice names: a page may show them as they are."""
        self.protected |= {p for p in map(normalise_phrase, values) if p}


def totals_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows of a table any of whose cells is a totals label (``TOTAL``): never a patient's row."""
    hit = pd.Series(False, index=frame.index)
    for col in frame.columns:
        words = frame[col].astype("str").str.upper().str.replace(r"[\W_]+", " ", regex=True).str.strip()
        hit |= words.isin(_TOTALS).fillna(False)
    return hit


def read_raw_export(path: str | Path, *, sheet: str | int | None = None) -> pd.DataFrame:
    """Every cell of an export as text, with the header taken from its header row.

    Title rows and blank rows above the header are skipped: the header row is the first of
    the first 30 that names a column the toolkit knows (a patient name, a date of birth, a
    code, a charge...).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
        return frame.astype("str").where(frame.notna(), "")
    if suffix in (".xlsx", ".xlsm"):
        grid = pd.read_excel(path, dtype=str, sheet_name=sheet or 0, header=None, keep_default_na=False)
        rows = grid.fillna("").astype(str).to_numpy().tolist()
    else:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","))
    start = next((i for i, row in enumerate(rows[:30]) if _looks_like_header(row)), 0)
    if not rows:
        return pd.DataFrame()
    header = [str(h).strip() or f"column {j + 1}" for j, h in enumerate(rows[start])]
    width = len(header)
    body = [(list(r) + [""] * width)[:width] for r in rows[start + 1:]]
    return pd.DataFrame(body, columns=pd.Index(header, dtype=object)).astype(str)


def _looks_like_header(row: list[Any]) -> bool:
    cells = [str(c).strip() for c in row if str(c).strip()]
    if len(cells) < 2:
        return False
    return any(is_identifying(c) or is_name_header(c) or is_birth_date_header(c) or header_key(c) in _HEADER_HINTS
               or set(header_key(c).split("_")) & _HEADER_HINTS for c in cells)


def _id_header(header: str) -> bool:
    key = header_key(header)
    words = set(key.split("_"))
    if key in ID_COLUMNS:
        return True
    if words & {"claim", "payer", "provider", "npi", "tax", "auth", "line"}:
        return False
    return bool(words & _ID_WORDS) and (bool(words & _NUMBER_WORDS) or "#" in header or key in {
        "account", "acct", "mrn", "chart", "ssn"})


def identifiers_from_export(path: str | Path, *, sheet: str | int | None = None,
                            mapping: Mapping[str, Any] | None = None) -> Identifiers:
    """Identifiers in a practice-management export (CSV, TSV, Excel or Parquet), read raw.

    Names come from name columns (``Patient Name`` as ``Last, First`` or ``First Last``, or
    separate first and last name columns), ids from patient, member and account number
    columns (and any column ``mapping`` maps to ``patient_id``), dates of birth from any
    birth-date column (``DOB``, ``Pt DOB``). A totals row is not a patient. Payer and
    provider names are kept as :attr:`Identifiers.protected`.
    """
    frame = read_raw_export(path, sheet=sheet)
    columns = dict((mapping or {}).get("columns", mapping or {})) if mapping else {}
    frame = frame[~totals_rows(frame)]
    found = Identifiers()
    firsts: list[pd.Series] = []
    lasts: list[pd.Series] = []
    for col in frame.columns:
        key = header_key(col)
        values = frame[col].dropna()
        target = str(columns.get(col) or "")
        words = set(key.split("_"))
        if key in ("first_name", "firstname", "patient_first_name") or (words >= {"first", "name"} and not
                                                                         words & _PROVIDER_WORDS):
            firsts.append(values)
        elif key in ("last_name", "lastname", "patient_last_name", "surname") or (
                words >= {"last", "name"} and not words & _PROVIDER_WORDS):
            lasts.append(values)
        elif key in NAME_COLUMNS or is_name_header(col):
            found.add_names(values.unique())
        elif is_birth_date_header(col):
            found.add_dates(values.unique())
        elif target == "patient_id" or _id_header(str(col)):
            found.add_ids(values.unique())
        elif target in ("payer_id", "provider_id") or words & (_PAYER_WORDS | _PROVIDER_WORDS):
            found.add_protected(values.unique())
    for values in (*firsts, *lasts):  # every word of every first and last name column
        found.names |= {w for v in values.unique() for w in name_words(v) if len(w) >= 3}
    if firsts and lasts:  # and each row's person, first and last name together
        pairs = pd.DataFrame({"first": firsts[0], "last": lasts[0]}).drop_duplicates()
        for first, last in pairs.itertuples(index=False):
            found.add_person(first, last)
    return found


def identifiers_from_835(paths: Iterable[str | Path]) -> Identifiers:
    """Patient and subscriber names and ids (NM1*QC / NM1*IL / NM1*74) and birth dates in raw 835 files.

    Payer and payee names (``N1*PR``, ``N1*PE``) and rendering providers (``NM1*82``) are
    kept as :attr:`Identifiers.protected`.
    """
    found = Identifiers()
    for path in paths:
        text = Path(path).read_text(errors="replace").lstrip("\ufeff")
        element = text[3] if text.startswith("ISA") and len(text) > 3 else "*"
        for seg in re.split(r"~\s*|\r?\n", text):
            parts = seg.strip().split(element)
            tag = parts[0].strip()
            if tag == "NM1" and len(parts) > 2 and parts[1] in ("QC", "IL", "74"):
                last = parts[3] if len(parts) > 3 else ""
                first = parts[4] if len(parts) > 4 else ""
                middle = parts[5] if len(parts) > 5 else ""
                if len(parts) > 2 and parts[2] == "2":  # a non-person subscriber (an employer)
                    found.add_names([last])
                else:
                    found.add_person(first, last, middle=middle)
                    found.names |= {w for w in name_words(last) if len(w) >= 3}
                if len(parts) > 9 and parts[9]:
                    found.add_ids([parts[9]])
            elif tag == "NM1" and len(parts) > 3 and parts[1] == "82":
                found.add_protected([" ".join(p for p in (parts[4] if len(parts) > 4 else "", parts[3]) if p)])
            elif tag == "N1" and len(parts) > 2 and parts[1] in ("PR", "PE"):
                found.add_protected([parts[2]])
            elif tag == "DMG" and len(parts) > 2:
                found.add_dates([parts[2]])
    return found


def identifiers_from_folder(data: str | Path) -> Identifiers:
    """Identifiers of a practice folder: its export, its 835s, its payer and practice names.

    Reads ``mapping.yaml`` (columns mapped to ``patient_id`` are ids), ``payers.yaml`` (ids,
    names and aliases: protected) and ``practice.yaml`` (the practice's name: protected).
    """
    import yaml

    data = Path(data)
    found = Identifiers()
    export, remittances, mapping_file = practice_inputs(data)
    mapping = _yaml(mapping_file, yaml) if mapping_file is not None else None
    if export is not None:
        found = found | identifiers_from_export(export, mapping=mapping if isinstance(mapping, Mapping) else None,
                                                sheet=mapping.get("sheet") if isinstance(mapping, Mapping) else None)
    if remittances:
        found = found | identifiers_from_835(remittances)
    payers = _yaml(data / "payers.yaml", yaml)
    if isinstance(payers, Mapping):
        table = payers.get("payers", payers)
        if isinstance(table, Mapping):
            for pid, spec in table.items():
                found.add_protected([pid])
                if isinstance(spec, Mapping):
                    found.add_protected([spec.get("name") or ""])
                    aliases = spec.get("aliases") or []
                    found.add_protected(aliases if isinstance(aliases, list) else [aliases])
    practice = _yaml(data / "practice.yaml", yaml)
    if isinstance(practice, Mapping):
        found.add_protected([practice.get("practice") or "", practice.get("name") or ""])
    return found


def practice_inputs(folder: str | Path) -> tuple[Path | None, list[Path], Path | None]:
    """The export, the 835s and the mapping file of a practice folder, found the way every command
    finds them (:func:`analytics.practice.locate_practice`: an export named in practice.yaml or
    mapping.yaml, 835s under any name). A folder that locator refuses (no export, two exports)
    gives what stands there under the usual names, so the guard still collects what it can.
    """
    from analytics.exceptions import InputError
    from analytics.practice import locate_practice

    folder = Path(folder)
    try:
        files = locate_practice(folder, require_payers=False)
        return files.export, sorted(files.remittances), files.mapping
    except InputError:
        export = next((folder / f for f in EXPORT_NAMES if (folder / f).is_file()), None)
        remit = folder / "remittances"
        remittances = sorted(p for p in remit.rglob("*") if p.is_file()) if remit.is_dir() else []
        mapping = folder / "mapping.yaml"
        return export, remittances, mapping if mapping.is_file() else None


def _yaml(path: Path, yaml: Any) -> Any:
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text(errors="replace"))
    except yaml.YAMLError:
        return None
