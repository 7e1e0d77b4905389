"""Privacy for everything that leaves the practice: pseudonyms for patient ids, and a guard
for reports, notebooks and saved tables.

Pseudonyms
    :func:`pseudonymise` replaces patient ids by the first 16 hex digits of
    ``sha256(salt + id)``; the salt is the practice's secret (``ANALYTICS_ID_SALT``). The
    intake, the Parquet and Dask writers of the rules engine and the reports all use this one
    scheme, so their keys match. :func:`identifying_columns` names the columns (patient
    names, dates of birth, member, subscriber and account ids, contact details) that saved
    tables leave out.

The guard
    It collects the direct identifiers present in the inputs (raw patient and member ids,
    patient names, dates of birth) and scans every output file for them. Identifiers are
    matched as whole tokens, case-insensitively, so an id such as ``MBR001`` is found inside
    HTML or CSV text but not inside ``MBR0012``. The report runner refuses to finish when the
    guard finds one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analytics._frame import VISIT_KEYS
from analytics.exceptions import InputError, PrivacyError

__all__ = ["Identifiers", "identifiers_from_export", "identifiers_from_835", "scan_text", "scan_outputs",
           "scan_notebook", "redact", "check_outputs", "pseudonymise", "pseudonyms", "pseudonymise_table",
           "pseudonymise_frame", "resolve_salt", "marked_pseudonymous", "identifying_columns", "header_key",
           "is_identifying", "SALT_ENV", "DEFAULT_SALT", "REMITTANCE_SALT", "PSEUDONYMISED_KEY", "NAME_COLUMNS",
           "DOB_COLUMNS", "SSN_COLUMNS", "MEMBER_ID_COLUMNS", "ACCOUNT_COLUMNS", "CONTACT_COLUMNS", "ID_COLUMNS",
           "NEVER_READ_COLUMNS", "PRIVATE_COLUMNS", "IDENTIFYING_COLUMNS"]

#: Environment variable holding the practice's secret salt for :func:`pseudonymise`.
SALT_ENV = "ANALYTICS_ID_SALT"

#: Salt used when none is given. It is public, so hashes made with it can be reversed by
#: anyone who can guess the ids (account numbers are short); set ``ANALYTICS_ID_SALT`` to a
#: secret before sharing outputs outside the practice.
DEFAULT_SALT = "massage-billing-analytics/public-default-salt"

#: Salt of the remittance ``patient_key`` when neither a ``salt`` argument nor
#: ``ANALYTICS_ID_SALT`` is set. It is public, so keys made with it only stop casual reading
#: of ids; set ``ANALYTICS_ID_SALT`` to a private value for real data.
REMITTANCE_SALT = "massage-billing-analytics/patient-key/v1"

#: Parquet schema metadata key listing (comma-separated) the columns that already hold
#: pseudonyms; :func:`analytics.pipeline.evaluate_parquet` does not hash them again.
PSEUDONYMISED_KEY = b"analytics.pseudonymised"

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")

# The one list of identifying column headers, used by the intake (dropped on read), by the
# engine's Parquet and Dask writers (left out of saved tables) and by the guard (values
# collected). Headers are compared in snake case (:func:`header_key`: "Patient Name" is
# ``patient_name``). They are the HIPAA Safe Harbor identifiers practice-management exports
# carry (45 CFR 164.514(b)(2)(i): names, dates of birth, telephone numbers, e-mail and street
# addresses, social security, medical record, health plan beneficiary and account numbers).

#: Headers of columns holding a patient's, subscriber's or guarantor's name.
NAME_COLUMNS = ("patient_name", "name", "first_name", "last_name", "firstname", "lastname", "patient_first_name",
                "patient_last_name", "subscriber_name", "insured_name", "patient", "full_name", "patient_full_name",
                "middle_name", "guarantor_name")
#: Headers of columns holding a date of birth.
DOB_COLUMNS = ("dob", "date_of_birth", "birth_date", "birthdate", "patient_dob")
#: Headers of columns holding a social security number.
SSN_COLUMNS = ("ssn", "patient_ssn", "social_security_number")
#: Headers of columns holding a health plan member id.
MEMBER_ID_COLUMNS = ("member_id", "subscriber_id", "insured_id")
#: Headers of the practice's own patient numbers; the intake reads them as ``patient_id``
#: (then pseudonymised) when the export has no patient id column.
ACCOUNT_COLUMNS = ("mrn", "chart_number", "account_number", "patient_account", "patient_account_number",
                   "patient_number")
#: Headers of columns holding contact details.
CONTACT_COLUMNS = ("address", "street_address", "patient_address", "phone", "phone_number", "patient_phone", "email",
                   "patient_email")
#: Headers of columns holding an id of one patient; the guard collects their values.
ID_COLUMNS = ("patient_id", *MEMBER_ID_COLUMNS, *ACCOUNT_COLUMNS, *SSN_COLUMNS)
#: Headers never read, not even through an explicit mapping: names, dates of birth, SSNs.
NEVER_READ_COLUMNS: frozenset[str] = frozenset({*NAME_COLUMNS, *DOB_COLUMNS, *SSN_COLUMNS})
#: Headers the intake drops on read. Of these, only the member ids may be read deliberately,
#: by mapping one to a canonical column (e.g. ``{"Member ID": "patient_id"}``, which is then
#: pseudonymised like any patient id); names, dates of birth and SSNs never.
PRIVATE_COLUMNS: frozenset[str] = NEVER_READ_COLUMNS | {*MEMBER_ID_COLUMNS, *CONTACT_COLUMNS}
#: Every identifying header: saved tables leave these columns out (:func:`identifying_columns`).
IDENTIFYING_COLUMNS: frozenset[str] = PRIVATE_COLUMNS | set(ID_COLUMNS)

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


def header_key(name: object) -> str:
    """A column header in snake case, as the header lists hold it: ``"Patient Name"`` -> ``patient_name``."""
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
        key = header_key(col)
        values = frame[col].dropna().unique()
        if key in NAME_COLUMNS or key.endswith("_name") and "patient" in key:
            found.add_names(values)
        elif key in ID_COLUMNS:
            found.add_ids(values)
        elif key in DOB_COLUMNS:
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


# --------------------------------------------------------------------------- pseudonyms


def pseudonymise(
    lines: pd.DataFrame,
    *,
    salt: str | None = None,
    columns: Iterable[str] = ("patient_id",),
) -> pd.DataFrame:
    """Replace identifiers by the first 16 hex digits of ``sha256(salt + value)``.

    The same value and salt always give the same pseudonym, so visits and patient-years
    still group; another salt gives unrelated pseudonyms. Blank values stay blank. Each
    distinct value is hashed once.

    Parameters
    ----------
    lines
        Any table; it is not modified.
    salt
        Secret text. Default: the ``ANALYTICS_ID_SALT`` environment variable, else the
        public :data:`DEFAULT_SALT` (fine for tests, not for data that leaves the practice:
        short account numbers can be recovered by hashing guesses).
    columns
        Columns to replace.

    Returns
    -------
    pandas.DataFrame
        A copy with the columns replaced.

    Examples
    --------
    >>> import pandas as pd
    >>> pseudonymise(pd.DataFrame({"patient_id": ["A17"]}), salt="s3cret")["patient_id"][0]
    'e10c3340131d82fb'
    """
    key = salt if salt is not None else (os.environ.get(SALT_ENV) or DEFAULT_SALT)
    out = lines.copy()
    for name in columns:
        if name not in out.columns:
            raise InputError(
                f"pseudonymise: no column {name!r}; columns are {', '.join(map(str, out.columns))}."
            )
        values = out[name].astype("str").fillna("")
        uniques = pd.unique(values[values != ""])
        table = {v: hashlib.sha256((key + v).encode("utf-8")).hexdigest()[:16] for v in uniques}
        out[name] = values.map(table).fillna("").astype("str")
    return out


def marked_pseudonymous(schema) -> set[str]:
    """Columns a Parquet schema says already hold pseudonyms (written by ``intake``)."""
    value = (schema.metadata or {}).get(PSEUDONYMISED_KEY, b"")
    return {c.strip() for c in value.decode("utf-8", "replace").split(",") if c.strip()}


def identifying_columns(columns: Sequence[str], patient_column: str = VISIT_KEYS[0]) -> list[str]:
    """The columns that name or directly identify a patient, other than ``patient_column``.

    Names, dates of birth, member, subscriber and account ids, medical record numbers, SSNs
    and contact details, recognised by their header (:func:`is_identifying`). The patient
    column itself is kept, to be pseudonymised; any other raw patient id column is listed.

    Examples
    --------
    >>> identifying_columns(["patient_id", "Patient Name", "DOB", "member_id", "cpt"])
    ['Patient Name', 'DOB', 'member_id']
    """
    return [name for name in columns if name != patient_column and is_identifying(name)]


def is_identifying(header: object) -> bool:
    """True when a column with this header names or identifies a patient.

    The header is compared in snake case with :data:`IDENTIFYING_COLUMNS`; any other
    ``patient..._name`` header counts too.

    Examples
    --------
    >>> is_identifying("Patient SSN"), is_identifying("Date of Birth"), is_identifying("CPT")
    (True, True, False)
    """
    key = header_key(header)
    return key in IDENTIFYING_COLUMNS or ("patient" in key and key.endswith("_name"))


def resolve_salt(salt: str | None) -> str:
    """The salt :func:`pseudonymise` would use, read once here (so that forked processes and
    Dask workers need not see the environment)."""
    return salt if salt is not None else (os.environ.get(SALT_ENV) or DEFAULT_SALT)


def pseudonyms(values: np.ndarray, salt: str) -> np.ndarray:
    """The pseudonym of each of ``values`` (distinct ids), as :func:`pseudonymise` makes them."""
    ids = pd.DataFrame({"patient_id": pd.Series(values, dtype=object).astype("str")})
    return pseudonymise(ids, salt=salt)["patient_id"].to_numpy(dtype=object)


def pseudonymise_table(table, column: str, salt: str):
    """The Arrow table with ``column`` replaced by pseudonyms, each distinct id hashed once.

    The ids are dictionary-encoded (one dictionary for every chunk), the dictionary is hashed
    and the codes are kept: no per-line work outside Arrow. The column keeps its kind
    (dictionary stays dictionary, text stays text); numeric ids are hashed as their text;
    missing ids stay missing.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    index = table.column_names.index(column)
    col = table.column(index)
    kind = col.type
    is_dictionary = pa.types.is_dictionary(col.type)
    value_type = col.type.value_type if is_dictionary else col.type
    if is_dictionary:  # one dictionary per row group: decode, then code afresh
        col = pc.cast(col, value_type)
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        value_type = pa.string()
        col = pc.cast(col, value_type)
    coded = pc.dictionary_encode(col)
    if not coded.num_chunks:  # no lines
        return table.set_column(index, column, pa.chunked_array([], type=kind if is_dictionary else value_type))
    dictionary = coded.chunk(0).dictionary
    hashed = pa.array(pseudonyms(dictionary.to_numpy(zero_copy_only=False), salt), type=value_type)
    out = pa.chunked_array([pa.DictionaryArray.from_arrays(c.indices, hashed) for c in coded.chunks])
    if not is_dictionary:
        out = pc.cast(out, value_type)
    return table.set_column(index, column, out)


def pseudonymise_frame(frame: pd.DataFrame, column: str | None, salt: str, drop: Sequence[str]) -> pd.DataFrame:
    """The frame without the ``drop`` columns and with ``column`` replaced by pseudonyms.

    Each distinct id is hashed once and mapped back by its factorize code. A categorical
    stays categorical; other ids become text; missing ids stay missing.
    """
    out = frame.drop(columns=list(drop))
    if column is None:
        return out
    values = out[column]
    codes, uniques = pd.factorize(values)
    hashed = pseudonyms(np.asarray(uniques, dtype=object), salt)
    # equal pseudonyms (blank ids, 7 and "7") share one category
    hashed_codes, categories = pd.factorize(hashed)
    mapped = np.full(len(codes), -1, dtype=np.int64)
    present = codes >= 0
    mapped[present] = hashed_codes[codes[present]]
    if isinstance(values.dtype, pd.CategoricalDtype):
        new = pd.Categorical.from_codes(mapped, categories=pd.Index(categories, dtype="str"))
    else:
        new = pd.array(np.asarray(categories, dtype=object), dtype="str").take(mapped, allow_fill=True)
    out[column] = pd.Series(new, index=out.index, name=column)
    return out
