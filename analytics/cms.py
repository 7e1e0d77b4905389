"""Loaders for the real CMS files behind the shipped reference tables.

Each loader reads one kind of CMS file as CMS publishes it and returns a DataFrame with the
same columns as the toolkit's shipped table of that kind, plus ``source`` (the file it came
from) and ``confidence`` (``"C"``: read in a primary CMS file). A user can therefore swap in
next year's (or next quarter's) files without touching anything downstream.

============================  ======================================  =====================
loader                        CMS file                                shipped table
============================  ======================================  =====================
:func:`read_pprrvu`           ``PPRRVUyyyy_*.csv`` (RVUyyX zip)       ``reference/rvu.csv``
:func:`read_gpci`             ``GPCIyyyy.csv`` (addendum E)           ``reference/gpci.csv``
:func:`read_localities`       ``yyLOCCO.csv`` (counties by locality)  --
:func:`read_ncci_ptp`         ``ccipra-v*-f1..f4`` (practitioner PTP) ``reference/ncci_ptp.csv``
:func:`read_mue`              practitioner services MUE table         ``reference/mue.csv``
============================  ======================================  =====================

Columns are found by their header text, never by position: CMS adds columns between
releases (the CY2026 PPRRVU has ``PRIC IND`` after ``TEAM SURG``), stacks header labels over
several rows and puts title, copyright and footnote lines around the table.

The PPRRVU ``DESCRIPTION`` column holds CPT descriptors, which are AMA copyright. The reader
leaves that column out while reading (``usecols``), so descriptors never enter a DataFrame
and are neither returned nor written anywhere.

Every loader raises :class:`~analytics.exceptions.ReferenceDataError` when a file is missing
or its layout is not recognised (the message names the file, the header it looked for and
where to download the file), and when cells fail to parse (the message names the file's
line numbers; ``.rows`` holds the offending cells). All problems found in one file are
reported together.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.exceptions import ReferenceDataError, UnpricedCodeWarning

__all__ = [
    "read_pprrvu",
    "read_gpci",
    "read_localities",
    "read_ncci_ptp",
    "read_mue",
    "reference_from_cms",
]

PathArg = str | PathLike[str]

CONFIDENCE = "C"

# A HCPCS/CPT code: five letters or digits (CPT 97140, category III 0001T, HCPCS G0283).
_CODE = r"[0-9A-Z]{5}"
_CODE_FORM = "a five-character HCPCS/CPT code"
# Records scanned for a header row before the file is declared unrecognisable.
_SCAN = 200

_RVU_PAGE = "https://www.cms.gov/medicare/payment/fee-schedules/physician/pfs-relative-value-files"
_PTP_PAGE = (
    "https://www.cms.gov/medicare/coding-billing/national-correct-coding-initiative-ncci-edits/"
    "medicare-ncci-procedure-procedure-ptp-edits"
)
_MUE_PAGE = (
    "https://www.cms.gov/medicare/coding-billing/national-correct-coding-initiative-ncci-edits/"
    "medicare-ncci-medically-unlikely-edits"
)
_FIX = {
    "pprrvu": (
        "Download the national physician fee schedule relative value file (the RVUyyX zip; "
        f"use PPRRVUyyyy_*.csv inside it) from CMS: {_RVU_PAGE}"
    ),
    "gpci": (
        "Download the GPCI file (GPCIyyyy.csv, addendum E, in the same RVUyyX zip as the "
        f"PPRRVU file) from CMS: {_RVU_PAGE}"
    ),
    "locco": (
        "Download the locality/county file (yyLOCCO.csv, in the same RVUyyX zip as the "
        f"PPRRVU file) from CMS: {_RVU_PAGE}"
    ),
    "ptp": (
        "Download the quarterly Medicare NCCI PTP edits for practitioners "
        f"(ccipra-v*-f1 .. f4, .txt or .xlsx inside each zip) from CMS: {_PTP_PAGE}"
    ),
    "mue": (
        "Download the quarterly Medicare NCCI practitioner services MUE table "
        f"(MCR_MUE_PractitionerServices_*.csv or .xlsx) from CMS: {_MUE_PAGE}"
    ),
}

# Output columns, in order. They match the shipped reference tables of the same kind.
RVU_COLUMNS = [
    "year",
    "cpt",
    "modifier",
    "status",
    "not_used_for_medicare",
    "work_rvu",
    "pe_rvu_nonfacility",
    "pe_rvu_facility",
    "mp_rvu",
    "total_nonfacility",
    "total_facility",
    "nonfacility_na",
    "facility_na",
    "pctc",
    "global_days",
    "mult_proc",
    "conversion_factor",
    "source",
    "confidence",
]
GPCI_COLUMNS = [
    "year",
    "mac",
    "state",
    "locality_number",
    "locality_id",
    "locality_name",
    "pw_gpci",
    "pe_gpci",
    "mp_gpci",
    "source",
    "confidence",
]
LOCALITY_COLUMNS = [
    "mac",
    "locality_number",
    "locality_id",
    "state",
    "fee_schedule_area",
    "counties",
    "source",
    "confidence",
]
PTP_COLUMNS = [
    "column1",
    "column2",
    "effective_date",
    "deletion_date",
    "modifier_indicator",
    "rationale",
    "source",
    "confidence",
]
MUE_COLUMNS = ["cpt", "mue", "mai", "mai_text", "rationale", "source", "confidence"]

# PPRRVU header labels (stacked header rows joined, then canonicalised by `_canon`) and the
# output column each one feeds. DESCRIPTION is located only so that it can be skipped.
_PPRRVU_FIELDS = {
    "HCPCS": "cpt",
    "MOD": "modifier",
    "STATUS CODE": "status",
    "NOT USED FOR MEDICARE PAYMENT": "not_used_for_medicare",
    "WORK RVU": "work_rvu",
    "NON FAC PE RVU": "pe_rvu_nonfacility",
    "NON FAC NA IND": "nonfacility_na",
    "FAC PE RVU": "pe_rvu_facility",
    "FAC NA IND": "facility_na",
    "MP RVU": "mp_rvu",
    "NON FAC TOTAL": "total_nonfacility",
    "FAC TOTAL": "total_facility",
    "PCTC IND": "pctc",
    "GLOB DAYS": "global_days",
    "MULT PROC": "mult_proc",
    "CONV FACTOR": "conversion_factor",
}
_PPRRVU_NUMBERS = [
    "work_rvu",
    "pe_rvu_nonfacility",
    "pe_rvu_facility",
    "mp_rvu",
    "total_nonfacility",
    "total_facility",
    "conversion_factor",
]
_PPRRVU_EXPECTED = (
    "a header row starting HCPCS, MOD, DESCRIPTION with STATUS CODE, WORK RVU, NON-FAC PE RVU, "
    "FACILITY PE RVU, MP RVU, NON-FACILITY TOTAL, FACILITY TOTAL, PCTC IND, GLOB DAYS, MULT PROC "
    "and CONV FACTOR (labels may be stacked over several rows)"
)


# --------------------------------------------------------------------------------------------
# Reading files: zip members, encodings, title lines, header rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Member:
    """One readable file: a plain file, or one member of a zip."""

    name: str  # shown in messages and in `source`, e.g. "RVU25D.zip/PPRRVU2025_Oct.csv"
    data: bytes
    ext: str  # ".csv", ".txt" or ".xlsx"


@dataclass(frozen=True)
class _Table:
    """A CMS table split at its header row.

    ``head`` holds the records up to and including the header row (cells stripped);
    ``body`` holds the cells after it as strings, columns numbered by position, indexed by
    the line number in the file (the row number for a spreadsheet).
    """

    name: str
    head: list[list[str]]
    body: pd.DataFrame


def _members(
    path: PathArg,
    *,
    kind: str,
    exts: Sequence[str],
    pattern: str | None = None,
    many: bool = False,
) -> list[_Member]:
    """Read ``path`` (or the members of a zip at ``path``) into memory.

    In a zip, members whose name matches ``pattern`` are preferred; when one table is present
    in several formats (CMS ships some as .txt and .xlsx side by side) the first format in
    ``exts`` wins, so a table is never read twice.
    """
    p = Path(path)
    if not p.is_file():
        where = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ReferenceDataError(f"{p} {where}. {_FIX[kind]}", where=str(p))
    ext = p.suffix.lower()
    if ext in exts:
        return [_Member(p.name, p.read_bytes(), ext)]
    if ext != ".zip":
        raise ReferenceDataError(
            f"{p.name}: cannot read a '{ext}' file here; expected one of "
            f"{', '.join(exts)} or a .zip holding one. {_FIX[kind]}",
            where=p.name,
        )
    try:
        with zipfile.ZipFile(p) as zf:
            names = [
                n
                for n in zf.namelist()
                if not n.endswith("/") and "__MACOSX" not in n and Path(n).suffix.lower() in exts
            ]
            if pattern is not None:
                matching = [n for n in names if re.search(pattern, Path(n).name, re.I)]
                names = matching or names
            by_stem: dict[str, str] = {}
            for n in sorted(names, key=lambda n: exts.index(Path(n).suffix.lower())):
                by_stem.setdefault(Path(n).stem.lower(), n)
            chosen = sorted(by_stem.values())
            if not chosen:
                raise ReferenceDataError(
                    f"{p.name}: the zip holds no {'/'.join(exts)} file"
                    + (f" named like '{pattern}'" if pattern else "")
                    + f" (members: {', '.join(zf.namelist()) or 'none'}). {_FIX[kind]}",
                    where=p.name,
                )
            if len(chosen) > 1 and not many:
                raise ReferenceDataError(
                    f"{p.name}: the zip holds several candidate files ({', '.join(chosen)}); "
                    "unzip it and pass the one you mean.",
                    where=p.name,
                )
            return [
                _Member(f"{p.name}/{Path(n).name}", zf.read(n), Path(n).suffix.lower())
                for n in chosen
            ]
    except zipfile.BadZipFile as exc:
        raise ReferenceDataError(
            f"{p.name}: not a readable zip ({exc}). {_FIX[kind]}", where=p.name
        ) from exc


def _decode(data: bytes) -> str:
    # CMS files are mostly ASCII; the MUE and PTP files carry a (R) sign in cp1252.
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _canon(label: str) -> str:
    """Canonical header label: upper case, punctuation to spaces, FACILITY -> FAC, INDICATOR -> IND."""
    words = re.sub(r"[^A-Z0-9+*]+", " ", label.upper()).split()
    short = {"FACILITY": "FAC", "INDICATOR": "IND"}
    return " ".join(short.get(w, w) for w in words)


def _read_table(
    member: _Member,
    *,
    kind: str,
    is_header: Callable[[list[str]], bool],
    expected: str,
    columns: Callable[[list[list[str]]], list[int]] | None = None,
) -> _Table:
    """Split a CMS file at its header row and read the rest as strings.

    ``columns`` maps the head records to the positions to read; positions it leaves out are
    never parsed (this is how the PPRRVU descriptor column is skipped).
    """
    if member.ext == ".xlsx":
        return _read_sheet(
            member, kind=kind, is_header=is_header, expected=expected, columns=columns
        )
    text = _decode(member.data)
    sample = text[:20000]
    sep = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    head: list[list[str]] = []
    try:
        for record in reader:
            head.append([c.strip() for c in record])
            if is_header(head[-1]):
                break
            if len(head) >= _SCAN:
                head = []
                break
        else:
            head = []
    except csv.Error as exc:
        raise ReferenceDataError(
            f"{member.name}: cannot read line {reader.line_num} as delimited text ({exc}). "
            f"{_FIX[kind]}",
            where=f"{member.name} line {reader.line_num}",
        ) from exc
    if not head:
        raise _layout_error(member.name, kind, expected)
    header_lines = reader.line_num
    offset = 0
    for _ in range(header_lines):
        found = text.find("\n", offset)
        offset = len(text) if found < 0 else found + 1
    rest = text[offset:]
    width = len(head[-1])
    wanted = columns(head) if columns is not None else list(range(width))
    width = max(width, max(wanted) + 1)
    if not rest.strip():
        body = pd.DataFrame({c: pd.Series([], dtype="str") for c in wanted})
    else:
        try:
            body = pd.read_csv(
                io.StringIO(rest),
                sep=sep,
                header=None,
                names=list(range(width)),
                usecols=wanted,
                index_col=False,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
            )
        except (pd.errors.ParserError, ValueError) as exc:
            raise ReferenceDataError(
                f"{member.name}: the rows after the header (line {header_lines}) cannot be "
                f"read ({exc}; line numbers there count from line {header_lines + 1}). "
                f"{_FIX[kind]}",
                where=member.name,
            ) from exc
    body = body.fillna("").astype("str")
    body = body.apply(lambda col: col.str.strip())
    # Line numbers in the file: a record spans one line plus one per newline quoted in it.
    spans = np.ones(len(body), dtype=np.int64)
    if '"' in rest:
        for col in body.columns:
            spans += body[col].str.count("\n").to_numpy(dtype=np.int64)
    starts = header_lines + 1 + np.concatenate(([0], np.cumsum(spans)[:-1])) if len(body) else spans
    body.index = pd.Index(starts, name="line")
    return _Table(member.name, head, body)


def _read_sheet(
    member: _Member,
    *,
    kind: str,
    is_header: Callable[[list[str]], bool],
    expected: str,
    columns: Callable[[list[list[str]]], list[int]] | None,
) -> _Table:
    try:
        sheet = pd.read_excel(io.BytesIO(member.data), header=None, dtype=str, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several unrelated types for a damaged workbook
        raise ReferenceDataError(
            f"{member.name}: not a readable .xlsx workbook ({exc}). {_FIX[kind]}", where=member.name
        ) from exc
    sheet = sheet.fillna("").astype("str").apply(lambda col: col.str.strip())
    sheet.columns = list(range(sheet.shape[1]))
    sheet.index = pd.Index(np.arange(1, len(sheet) + 1), name="line")
    records = sheet.head(_SCAN).to_numpy().tolist()
    at = next((i for i, r in enumerate(records) if is_header(r)), None)
    if at is None:
        raise _layout_error(member.name, kind, expected)
    head = records[: at + 1]
    wanted = columns(head) if columns is not None else list(range(sheet.shape[1]))
    body = sheet.iloc[at + 1 :].reindex(columns=wanted, fill_value="")
    return _Table(member.name, head, body)


def _layout_error(name: str, kind: str, expected: str) -> ReferenceDataError:
    return ReferenceDataError(
        f"{name}: no header row found in the first {_SCAN} rows; expected {expected}. "
        f"This does not look like the CMS file this loader reads. {_FIX[kind]}",
        where=name,
    )


def _labels(row: Sequence[str]) -> list[str]:
    return [_canon(c) for c in row]


def _find(labels: Sequence[str], *tests: Callable[[str], bool]) -> int | None:
    """Position of the first label passing the first test that any label passes."""
    for test in tests:
        hits = [i for i, label in enumerate(labels) if label and test(label)]
        if hits:
            return hits[0]
    return None


def _lines(index: Iterable[object], limit: int = 10) -> str:
    """``"line 4"`` or ``"lines 4, 9 and 3 more"``."""
    values = [str(i) for i in index]
    more = len(values) - limit
    listed = ", ".join(values[:limit]) + (f" and {more} more" if more > 0 else "")
    return ("line " if len(values) == 1 else "lines ") + listed


# --------------------------------------------------------------------------------------------
# Checking and converting cells (vectorised; every problem in a file is reported at once)
# --------------------------------------------------------------------------------------------


class _Problems:
    """Collects bad cells of one file and raises them together."""

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind
        self.messages: list[str] = []
        self.rows: list[pd.DataFrame] = []

    def add(
        self,
        mask: pd.Series,
        frame: pd.DataFrame,
        column: str,
        label: str,
        problem: str,
        key: str | None,
    ) -> None:
        if not mask.any():
            return
        bad = frame.loc[mask]
        shown = [
            f"{line}: {value!r}"
            for line, value in zip(bad.index[:5], bad[column].iloc[:5], strict=True)
        ]
        extra = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        self.messages.append(
            f"{len(bad)} row(s) have {label} {problem} (line {', line '.join(shown)}{extra})"
        )
        rows = pd.DataFrame(
            {
                "file": self.name,
                "line": bad.index.to_numpy(),
                "code": bad[key].to_numpy() if key else "",
                "column": label,
                "value": bad[column].to_numpy(),
                "problem": problem,
            }
        )
        self.rows.append(rows)

    def raise_any(self) -> None:
        if not self.messages:
            return
        rows = pd.concat(self.rows, ignore_index=True)
        raise ReferenceDataError(
            f"{self.name}: " + "; ".join(self.messages) + ". Correct those cells, or download a "
            f"fresh copy if the file was edited by hand. {_FIX[self.kind]}",
            rows=rows,
            where=f"{self.name} {_lines(sorted(set(rows['line'])))}",
        )


def _to_float(
    frame: pd.DataFrame, column: str, label: str, problems: _Problems, key: str | None
) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    problems.add(values.isna(), frame, column, label, "that is blank or not a number", key)
    return values.astype("float64")


def _to_int(
    frame: pd.DataFrame, column: str, label: str, problems: _Problems, key: str | None
) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    problems.add(bad, frame, column, label, "that is not a whole number", key)
    return values.where(~bad, 0).astype("int64")


def _to_date(
    frame: pd.DataFrame,
    column: str,
    label: str,
    problems: _Problems,
    key: str | None,
    *,
    none: Sequence[str] = (),
) -> pd.Series:
    text = frame[column]
    # CMS text files write YYYYMMDD; a spreadsheet may hold a real date instead.
    compact = pd.to_datetime(
        text.where(text.str.fullmatch(r"\d{8}")), format="%Y%m%d", errors="coerce"
    )
    other = pd.to_datetime(
        text.where(compact.isna() & ~text.isin(none)), format="ISO8601", errors="coerce"
    )
    dates = compact.fillna(other).astype("datetime64[ns]")
    problems.add(
        dates.isna() & ~text.isin(none), frame, column, label, "that is not a date (YYYYMMDD)", key
    )
    return dates


def _split_rows(
    body: pd.DataFrame,
    key: str,
    values: Sequence[str],
    pattern: str,
    problems: _Problems,
    label: str,
    form: str,
) -> pd.DataFrame:
    """Keep the data rows of ``body``: those whose ``key`` cell matches ``pattern``.

    Rows whose value cells are all blank (separator lines, title and footnote text) are not
    data and are left out. A row with values but no valid key is a problem, not a footnote.
    """
    is_data = body[key].str.upper().str.fullmatch(pattern)
    blank = (body[list(values)] == "").all(axis=1)
    stray = ~is_data & ~blank
    problems.add(stray, body, key, label, f"that is not {form}", None)
    return body.loc[is_data]


def _year_in(texts: Iterable[str], pattern: str) -> set[int]:
    found: set[int] = set()
    for t in texts:
        found.update(int(m) for m in re.findall(pattern, t, flags=re.I))
    return found


def _settle_year(name: str, kind: str, found: set[int], year: int | None, what: str) -> int:
    if year is not None:
        if found and year not in found:
            raise ReferenceDataError(
                f"{name}: the file holds {what} for {', '.join(map(str, sorted(found)))}, not "
                f"{year}. Pass the {year} file, or leave year unset. {_FIX[kind]}",
                where=name,
            )
        return int(year)
    if len(found) == 1:
        return found.pop()
    if not found:
        raise ReferenceDataError(
            f"{name}: the year is neither in the title nor in the file name; pass year=.",
            where=name,
        )
    raise ReferenceDataError(
        f"{name}: the file mentions several years ({', '.join(map(str, sorted(found)))}); "
        "pass year= to choose one.",
        where=name,
    )


def _no_rows(name: str, kind: str) -> ReferenceDataError:
    return ReferenceDataError(
        f"{name}: the header was found but no data rows follow it. {_FIX[kind]}", where=name
    )


# --------------------------------------------------------------------------------------------
# PPRRVU: national relative value units
# --------------------------------------------------------------------------------------------


def _pprrvu_header(row: list[str]) -> bool:
    return len(row) > 1 and _canon(row[0]) == "HCPCS" and _canon(row[1]).startswith("MOD")


def _pprrvu_names(head: list[list[str]]) -> list[str]:
    """Join the stacked header rows into one label per column.

    The stacked rows are the records directly above the HCPCS row that label data columns
    (anything from the fourth column on); the title lines above them carry text in the
    DESCRIPTION column only.
    """
    last = len(head) - 1
    first = last
    while first > 0 and any(c for c in head[first - 1][3:]):
        first -= 1
    width = max(len(r) for r in head[first:])
    rows = [r + [""] * (width - len(r)) for r in head[first:]]
    return [_canon(" ".join(c for c in column if c)) for column in zip(*rows, strict=True)]


def _pprrvu_positions(name: str) -> Callable[[list[list[str]]], list[int]]:
    def positions(head: list[list[str]]) -> list[int]:
        labels = _pprrvu_names(head)
        missing = [label for label in _PPRRVU_FIELDS if label not in labels]
        doubled = [label for label in _PPRRVU_FIELDS if labels.count(label) > 1]
        if missing or doubled:
            detail = []
            if missing:
                detail.append(f"missing {', '.join(missing)}")
            if doubled:
                detail.append(f"more than one {', '.join(doubled)}")
            raise ReferenceDataError(
                f"{name}: the header does not have the columns this loader needs "
                f"({'; '.join(detail)}); expected {_PPRRVU_EXPECTED}. {_FIX['pprrvu']}",
                where=name,
            )
        return sorted(labels.index(label) for label in _PPRRVU_FIELDS)

    return positions


def _flag(
    frame: pd.DataFrame, column: str, label: str, true: str, problems: _Problems
) -> pd.Series:
    values = frame[column].str.upper()
    problems.add(
        ~values.isin(["", true]), frame, column, label, f"other than blank or {true!r}", "cpt"
    )
    return values == true


def read_pprrvu(
    path: PathArg, *, year: int | None = None, codes: str | Iterable[str] | None = None
) -> pd.DataFrame:
    """Read a CMS national physician fee schedule relative value file (PPRRVU).

    Parameters
    ----------
    path
        ``PPRRVUyyyy_*.csv`` from the RVUyyX zip, or the zip itself.
    year
        Calendar year of the RVUs. Read from the title line ("2025 National Physician Fee
        Schedule ...") or else the file name; pass it only for a file that carries neither.
        A year that contradicts the file raises.
    codes
        Keep only these HCPCS/CPT codes (every modifier row of each). Codes absent from the
        file emit an :class:`~analytics.exceptions.UnpricedCodeWarning`. Default: all rows.

    Returns
    -------
    pandas.DataFrame
        One row per code and modifier, in file order, with columns ``year, cpt, modifier,
        status, not_used_for_medicare, work_rvu, pe_rvu_nonfacility, pe_rvu_facility,
        mp_rvu, total_nonfacility, total_facility, nonfacility_na, facility_na, pctc,
        global_days, mult_proc, conversion_factor, source, confidence``. ``modifier`` is
        ``""`` when none; ``not_used_for_medicare`` is True where CMS marks "+";
        the ``*_na`` flags are True where CMS marks "NA". CPT descriptors are not read.

    Raises
    ------
    ReferenceDataError
        The file is missing, has no recognisable header, or has cells that do not parse
        (the message names the lines; ``.rows`` lists the cells).

    Examples
    --------
    >>> rvu = read_pprrvu("PPRRVU2025_Oct.csv", codes=["97140", "97124"])  # doctest: +SKIP
    >>> rvu.loc[rvu.modifier.eq(""), ["cpt", "work_rvu", "total_nonfacility"]]  # doctest: +SKIP
         cpt  work_rvu  total_nonfacility
    0  97124      0.35               0.92
    1  97140      0.43               0.84
    """
    member = _members(path, kind="pprrvu", exts=(".csv",), pattern=r"^PPRRVU")[0]
    table = _read_table(
        member,
        kind="pprrvu",
        is_header=_pprrvu_header,
        expected=_PPRRVU_EXPECTED,
        columns=_pprrvu_positions(member.name),
    )
    labels = _pprrvu_names(table.head)
    body = table.body.rename(columns={labels.index(k): v for k, v in _PPRRVU_FIELDS.items()})
    problems = _Problems(member.name, "pprrvu")
    rows = _split_rows(body, "cpt", _PPRRVU_NUMBERS, _CODE, problems, "HCPCS", _CODE_FORM)
    if rows.empty and not problems.messages:
        raise _no_rows(member.name, "pprrvu")

    titles = [c for r in table.head for c in r]
    found = _year_in(titles, r"\b(20\d\d)\s+National Physician Fee Schedule")
    if not found:
        found = _year_in([Path(member.name).name], r"(?<!\d)(20\d\d)(?!\d)")
    the_year = _settle_year(member.name, "pprrvu", found, year, "relative value units")

    out = pd.DataFrame(index=rows.index)
    out["year"] = np.int64(the_year)
    out["cpt"] = rows["cpt"].str.upper()
    out["modifier"] = rows["modifier"].str.upper()
    out["status"] = rows["status"].str.upper()
    out["not_used_for_medicare"] = _flag(
        rows, "not_used_for_medicare", "NOT USED FOR MEDICARE PAYMENT", "+", problems
    )
    for column in _PPRRVU_NUMBERS[:-1]:
        label = next(k for k, v in _PPRRVU_FIELDS.items() if v == column)
        out[column] = _to_float(rows, column, label, problems, "cpt")
    out["nonfacility_na"] = _flag(rows, "nonfacility_na", "NON-FAC NA INDICATOR", "NA", problems)
    out["facility_na"] = _flag(rows, "facility_na", "FACILITY NA INDICATOR", "NA", problems)
    out["pctc"] = rows["pctc"]
    out["global_days"] = rows["global_days"].str.upper()
    out["mult_proc"] = rows["mult_proc"]
    out["conversion_factor"] = _to_float(rows, "conversion_factor", "CONV FACTOR", problems, "cpt")
    problems.raise_any()
    out["source"] = f"CMS {member.name}"
    out["confidence"] = CONFIDENCE
    out = out[RVU_COLUMNS].reset_index(drop=True)
    return _keep_codes(out, codes, member.name)


def _keep_codes(rvu: pd.DataFrame, codes: str | Iterable[str] | None, name: str) -> pd.DataFrame:
    if codes is None:
        return rvu
    wanted = [codes] if isinstance(codes, str) else list(codes)
    wanted = list(dict.fromkeys(str(c).strip().upper() for c in wanted))
    absent = sorted(set(wanted) - set(rvu["cpt"]))
    if absent:
        warnings.warn(
            f"{name}: {len(absent)} code(s) are not in the file ({', '.join(absent)}); they "
            "have no RVUs for this year. Check the code, or price it by payer contract.",
            UnpricedCodeWarning,
            stacklevel=3,
        )
    return rvu.loc[rvu["cpt"].isin(wanted)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# GPCI (addendum E) and localities (LOCCO)
# --------------------------------------------------------------------------------------------


def _mac_test(label: str) -> bool:
    return "CONTRACTOR" in label or label == "MAC"


def _prefer_floor(labels: list[str], positions: list[int]) -> int | None:
    """The GPCI column to use: the one "with 1.0 floor" if CMS prints floored and unfloored."""
    if not positions:
        return None
    floored = [i for i in positions if "FLOOR" in labels[i] and "WITHOUT" not in labels[i]]
    plain = [i for i in positions if "WITHOUT" not in labels[i]]
    return (floored or plain or positions)[0]


def read_gpci(path: PathArg, *, year: int | None = None) -> pd.DataFrame:
    """Read a CMS GPCI file (addendum E: GPCIs by state and Medicare locality).

    Parameters
    ----------
    path
        ``GPCIyyyy.csv`` from the RVUyyX zip (or the zip itself).
    year
        Year of the GPCIs. Read from the header ("2025 PW GPCI ..."), else the title or file
        name. When the file prints GPCIs for more than one year, this chooses the columns.

    Returns
    -------
    pandas.DataFrame
        One row per locality with columns ``year, mac, state, locality_number, locality_id,
        locality_name, pw_gpci, pe_gpci, mp_gpci, source, confidence``. ``mac`` is five
        digits and ``locality_number`` two, zero-padded; ``locality_id`` is ``"MAC-LL"``
        (e.g. ``"13202-01"``). Footnote markers ("*", "**") are removed from the names. The
        work GPCI is the column "with 1.0 floor" when CMS prints one.

    Raises
    ------
    ReferenceDataError
        Missing file, no recognisable header, cells that do not parse, or one locality
        listed twice with different GPCIs.

    Examples
    --------
    >>> gpci = read_gpci("GPCI2025.csv")  # doctest: +SKIP
    >>> gpci.set_index("locality_id").loc["13202-01", ["pw_gpci", "pe_gpci", "mp_gpci"]]  # doctest: +SKIP
    pw_gpci    1.065
    pe_gpci    1.166
    mp_gpci    1.656
    Name: 13202-01, dtype: object
    """
    member = _members(path, kind="gpci", exts=(".csv",), pattern=r"GPCI")[0]
    expected = (
        "a header row with Medicare Administrative Contractor (MAC), State, Locality Number, "
        "Locality Name, yyyy PW GPCI, yyyy PE GPCI and yyyy MP GPCI"
    )

    def is_header(row: list[str]) -> bool:
        labels = _labels(row)
        return any("LOCALITY NUMBER" in c for c in labels) and any("GPCI" in c for c in labels)

    table = _read_table(member, kind="gpci", is_header=is_header, expected=expected)
    labels = _labels(table.head[-1])
    years = _year_in(table.head[-1], r"\b(20\d\d)\s+(?:PW|PE|MP)\s+GPCI")
    if not years:
        years = _year_in([c for r in table.head for c in r], r"\bCY\s*(20\d\d)\b")
    if not years:
        years = _year_in([member.name], r"(?<!\d)(20\d\d)(?!\d)")
    the_year = _settle_year(member.name, "gpci", years, year, "GPCIs")

    def gpci_column(part: str) -> int | None:
        hits = [i for i, c in enumerate(labels) if f"{part} GPCI" in c]
        dated = [i for i in hits if str(the_year) in labels[i]]
        return _prefer_floor(labels, dated or hits)

    positions = {
        "mac": _find(labels, _mac_test),
        "state": _find(labels, lambda c: c == "STATE", lambda c: "STATE" in c),
        "locality_number": _find(labels, lambda c: "LOCALITY NUMBER" in c),
        "locality_name": _find(labels, lambda c: "LOCALITY NAME" in c),
        "pw_gpci": gpci_column("PW"),
        "pe_gpci": gpci_column("PE"),
        "mp_gpci": gpci_column("MP"),
    }
    missing = [k for k, v in positions.items() if v is None]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{expected}. {_FIX['gpci']}",
            where=member.name,
        )
    body = table.body[[positions[k] for k in positions]]
    body.columns = list(positions)
    problems = _Problems(member.name, "gpci")
    rows = _split_rows(
        body, "mac", ["pw_gpci", "pe_gpci", "mp_gpci"], r"\d{1,5}", problems, "MAC", "a MAC number"
    )
    if rows.empty and not problems.messages:
        raise _no_rows(member.name, "gpci")
    out = pd.DataFrame(index=rows.index)
    out["year"] = np.int64(the_year)
    out["mac"] = rows["mac"].str.zfill(5)
    out["state"] = rows["state"].str.upper()
    bad_locality = ~rows["locality_number"].str.fullmatch(r"\d{1,2}")
    problems.add(
        bad_locality, rows, "locality_number", "Locality Number", "that is not 1-2 digits", "mac"
    )
    out["locality_number"] = rows["locality_number"].str.zfill(2)
    out["locality_id"] = out["mac"] + "-" + out["locality_number"]
    out["locality_name"] = rows["locality_name"].str.rstrip("*").str.strip()
    for column, label in (("pw_gpci", "PW GPCI"), ("pe_gpci", "PE GPCI"), ("mp_gpci", "MP GPCI")):
        out[column] = _to_float(rows, column, label, problems, "mac")
    problems.raise_any()
    out["source"] = f"CMS {member.name}"
    out["confidence"] = CONFIDENCE
    out = out[GPCI_COLUMNS]
    _check_unique(out, "locality_id", ["pw_gpci", "pe_gpci", "mp_gpci"], member.name, "gpci")
    return out.drop_duplicates().reset_index(drop=True)


def _check_unique(frame: pd.DataFrame, key: str, values: list[str], name: str, kind: str) -> None:
    distinct = frame.drop_duplicates([key, *values])
    clash = distinct[distinct[key].duplicated(keep=False)]
    if not clash.empty:
        raise ReferenceDataError(
            f"{name}: {clash[key].nunique()} {key}(s) are listed more than once with different "
            f"values ({', '.join(sorted(set(clash[key])))}; {_lines(clash.index)}). "
            f"Keep one row per {key}. {_FIX[kind]}",
            rows=clash,
            where=f"{name} {_lines(clash.index)}",
        )


def read_localities(path: PathArg) -> pd.DataFrame:
    """Read the CMS locality/county file (``yyLOCCO.csv``: counties in each payment locality).

    The file lists the states alphabetically, one block per state, with blank lines between
    blocks. The loader handles what the CY2025 file contains:

    - MAC and locality numbers without leading zeros (``2102``, ``1``) are zero-padded to
      five and two digits (``02102``, ``01``);
    - the state name is printed on the first row of its block only; later rows of the
      block (blank state) carry it forward;
    - a row with blank MAC and locality but more counties continues the row above; its
      counties are appended (", ") to that row (the CY2025 file has none);
    - rows repeated word for word (the CY2025 file lists 05302-99 twice) are kept once;
    - "*" footnote markers are removed from the area name (in the CY2025 file, "*" means
      "payment locality is serviced by two carriers");
    - cells are stripped of surrounding whitespace.

    Parameters
    ----------
    path
        ``yyLOCCO.csv`` from the RVUyyX zip (or the zip itself).

    Returns
    -------
    pandas.DataFrame
        One row per locality with columns ``mac, locality_number, locality_id, state,
        fee_schedule_area, counties, source, confidence``. ``state`` is the state name as
        CMS prints it here (e.g. ``"ALABAMA"``, ``"HAWAII/GUAM"``); the GPCI file carries
        the two-letter code for the same ``locality_id``.

    Raises
    ------
    ReferenceDataError
        Missing file, no recognisable header, malformed numbers, or a block with no state.

    Examples
    --------
    >>> loc = read_localities("25LOCCO.csv")  # doctest: +SKIP
    >>> loc.set_index("locality_id").loc["13202-01", "fee_schedule_area"]  # doctest: +SKIP
    'MANHATTAN'
    """
    member = _members(path, kind="locco", exts=(".csv",), pattern=r"LOCCO")[0]
    expected = (
        "a header row with Medicare Administrative Contractor, Locality Number, State, "
        "Fee Schedule Area and Counties"
    )

    def is_header(row: list[str]) -> bool:
        labels = _labels(row)
        return any("LOCALITY NUMBER" in c for c in labels) and any("COUNTIES" in c for c in labels)

    table = _read_table(member, kind="locco", is_header=is_header, expected=expected)
    labels = _labels(table.head[-1])
    positions = {
        "mac": _find(labels, _mac_test),
        "locality_number": _find(labels, lambda c: "LOCALITY NUMBER" in c),
        "state": _find(labels, lambda c: c == "STATE", lambda c: "STATE" in c),
        "fee_schedule_area": _find(
            labels, lambda c: "FEE SCHEDULE AREA" in c, lambda c: "AREA" in c
        ),
        "counties": _find(labels, lambda c: "COUNTIES" in c),
    }
    missing = [k for k, v in positions.items() if v is None]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{expected}. {_FIX['locco']}",
            where=member.name,
        )
    body = table.body[[positions[k] for k in positions]]
    body.columns = list(positions)
    problems = _Problems(member.name, "locco")

    blank = (body == "").all(axis=1)
    block = blank.cumsum()  # blank separator lines delimit the state blocks
    is_mac = body["mac"].str.fullmatch(r"\d{1,5}")
    continues = (body["mac"] == "") & (body["locality_number"] == "") & (body["counties"] != "")
    footnote = (
        ~is_mac
        & ~continues
        & (body[["locality_number", "state", "fee_schedule_area", "counties"]] == "").all(axis=1)
    )
    stray = ~blank & ~is_mac & ~continues & ~footnote
    problems.add(
        stray, body, "mac", "Medicare Administrative Contractor", "that is not a MAC number", None
    )
    rows = body.loc[is_mac | continues].copy()
    bad_locality = is_mac.loc[rows.index] & ~rows["locality_number"].str.fullmatch(r"\d{1,2}")
    problems.add(
        bad_locality, rows, "locality_number", "Locality Number", "that is not 1-2 digits", "mac"
    )
    problems.raise_any()
    if not is_mac.any():
        raise _no_rows(member.name, "locco")
    if continues.loc[rows.index].iloc[0]:
        raise ReferenceDataError(
            f"{member.name}: line {rows.index[0]} continues a locality but no locality comes "
            f"before it. {_FIX['locco']}",
            where=f"{member.name} line {rows.index[0]}",
        )

    # Carry MAC, locality, state and area down onto continuation rows, and the state down
    # its block; then fold each locality's continuation rows into it.
    record = (~continues.loc[rows.index]).cumsum()
    keys = rows[["mac", "locality_number", "fee_schedule_area"]].where(~continues.loc[rows.index])
    rows[["mac", "locality_number", "fee_schedule_area"]] = keys.ffill()
    state = rows["state"].where(rows["state"] != "")
    rows["state"] = state.groupby(block.loc[rows.index]).ffill()
    stateless = rows["state"].isna()
    if stateless.any():
        raise ReferenceDataError(
            f"{member.name}: {int(stateless.sum())} row(s) have no state and no state above "
            f"them in their block ({_lines(rows.index[stateless])}). Add the state name. "
            f"{_FIX['locco']}",
            rows=rows.loc[stateless],
            where=f"{member.name} {_lines(rows.index[stateless])}",
        )
    rows["line"] = rows.index
    folded = rows.groupby(record.to_numpy(), sort=False).agg(
        line=("line", "first"),
        mac=("mac", "first"),
        locality_number=("locality_number", "first"),
        state=("state", "first"),
        fee_schedule_area=("fee_schedule_area", "first"),
        counties=("counties", lambda c: ", ".join(x for x in c if x)),
    )
    folded.index = pd.Index(folded.pop("line").to_numpy(), name="line")

    out = pd.DataFrame(index=folded.index)
    out["mac"] = folded["mac"].str.zfill(5)
    out["locality_number"] = folded["locality_number"].str.zfill(2)
    out["locality_id"] = out["mac"] + "-" + out["locality_number"]
    out["state"] = folded["state"].str.upper()
    out["fee_schedule_area"] = folded["fee_schedule_area"].str.rstrip("*").str.strip()
    out["counties"] = folded["counties"]
    out["source"] = f"CMS {member.name}"
    out["confidence"] = CONFIDENCE
    out = out[LOCALITY_COLUMNS].drop_duplicates()
    _check_unique(
        out, "locality_id", ["state", "fee_schedule_area", "counties"], member.name, "locco"
    )
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# NCCI procedure-to-procedure edits and medically unlikely edits
# --------------------------------------------------------------------------------------------

_PTP_EXPECTED = (
    "a header row with Column 1, Column 2, '*=in existence prior to 1996', Effective Date, "
    "Deletion Date, Modifier (0/1/9) and PTP Edit Rationale (labels may continue on the rows "
    "below)"
)


def _ptp_header(row: list[str]) -> bool:
    squeezed = {re.sub(r"\s+", "", c.upper()) for c in row}
    return "COLUMN1" in squeezed and "COLUMN2" in squeezed


def _ptp_one(member: _Member) -> pd.DataFrame:
    table = _read_table(member, kind="ptp", is_header=_ptp_header, expected=_PTP_EXPECTED)
    body = table.body
    squeezed = [re.sub(r"\s+", "", c.upper()) for c in table.head[-1]]
    key = squeezed.index("COLUMN1")
    # CMS continues the header labels on the rows below the "Column 1" row, with column 1
    # blank, until the first edit.
    is_code = body[key].str.upper().str.fullmatch(_CODE)
    first = int(np.argmax(is_code.to_numpy())) if is_code.any() else len(body)
    continuation = body.iloc[:first]
    labels = [
        _canon(" ".join([table.head[-1][i] if i < len(table.head[-1]) else "", *continuation[i]]))
        for i in body.columns
    ]
    positions = {
        "column1": key,
        "column2": squeezed.index("COLUMN2"),
        "effective_date": _find(labels, lambda c: c.startswith("EFFECTIVE")),
        "deletion_date": _find(labels, lambda c: c.startswith("DELETION")),
        "modifier_indicator": _find(labels, lambda c: c.startswith("MODIFIER")),
        "rationale": _find(labels, lambda c: "RATIONALE" in c),
    }
    missing = [k for k, v in positions.items() if v is None and k != "rationale"]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{_PTP_EXPECTED}. {_FIX['ptp']}",
            where=member.name,
        )
    # Files from before CMS added the rationale column get an empty rationale.
    found = {k: v for k, v in positions.items() if v is not None}
    body = body.iloc[first:][list(found.values())]
    body.columns = list(found)
    if "rationale" not in found:
        body = body.assign(rationale="")
    problems = _Problems(member.name, "ptp")
    value_columns = ["column2", "effective_date", "modifier_indicator"]
    rows = _split_rows(body, "column1", value_columns, _CODE, problems, "Column 1", _CODE_FORM)
    if rows.empty and not problems.messages:
        raise _no_rows(member.name, "ptp")
    out = pd.DataFrame(index=rows.index)
    out["column1"] = rows["column1"].str.upper()
    out["column2"] = rows["column2"].str.upper()
    problems.add(
        ~out["column2"].str.fullmatch(_CODE),
        rows,
        "column2",
        "Column 2",
        "that is not a code",
        "column1",
    )
    out["effective_date"] = _to_date(rows, "effective_date", "Effective Date", problems, "column1")
    # "*" = no deletion date. A blank cell (seen in spreadsheet copies) means the same.
    out["deletion_date"] = _to_date(
        rows, "deletion_date", "Deletion Date", problems, "column1", none=("*", "")
    )
    indicator = _to_int(rows, "modifier_indicator", "Modifier indicator", problems, "column1")
    problems.add(
        ~indicator.isin([0, 1, 9]),
        rows,
        "modifier_indicator",
        "Modifier indicator",
        "other than 0, 1 or 9",
        "column1",
    )
    out["modifier_indicator"] = indicator
    out["rationale"] = rows["rationale"]
    problems.raise_any()
    out["source"] = f"CMS {member.name}"
    out["confidence"] = CONFIDENCE
    return out[PTP_COLUMNS]


def read_ncci_ptp(paths: PathArg | Iterable[PathArg]) -> pd.DataFrame:
    """Read CMS NCCI procedure-to-procedure (PTP) edit files for practitioners.

    CMS publishes the practitioner table every quarter, split into four files
    (``ccipra-v<version>-f1`` .. ``f4``). Each file opens with copyright and title lines, then
    a header whose labels continue over the next rows, then one edit per row: column 1 code,
    column 2 code, "*" if the edit existed before 1996, effective date (YYYYMMDD), deletion
    date ("*" = none), modifier indicator and rationale.

    Parameters
    ----------
    paths
        One path or several: tab-delimited ``.txt``, ``.csv``, ``.xlsx``, or a ``.zip``
        holding any of these (when a zip holds one file in several formats, it is read once).

    Returns
    -------
    pandas.DataFrame
        One row per edit, files in the order given, with columns ``column1, column2,
        effective_date, deletion_date, modifier_indicator, rationale, source, confidence``.
        ``deletion_date`` is NaT where CMS writes "*" (edit in force). The pre-1996 flag is
        not kept. Modifier indicator: 0 = no modifier bypasses the edit, 1 = an
        NCCI-associated modifier may, 9 = not applicable. ``rationale`` is ``""`` for files
        from before CMS added the rationale column.

    Raises
    ------
    ReferenceDataError
        A file is missing, has no "Column 1 / Column 2" header, or has cells that do not
        parse (the message names the lines).

    Examples
    --------
    >>> ptp = read_ncci_ptp([f"ccipra-v321r0-f{i}.zip" for i in range(1, 5)])  # doctest: +SKIP
    >>> in_force = ptp[ptp.deletion_date.isna()]  # doctest: +SKIP
    """
    items = [paths] if isinstance(paths, str | PathLike) else list(paths)
    if not items:
        raise ReferenceDataError(f"read_ncci_ptp was given no files. {_FIX['ptp']}")
    members = [
        m
        for p in items
        for m in _members(
            p,
            kind="ptp",
            exts=(".txt", ".csv", ".xlsx"),
            pattern=r"ccipra|ptp|practitioner",
            many=True,
        )
    ]
    frames = [_ptp_one(m) for m in members]
    return pd.concat(frames, ignore_index=True)


def read_mue(path: PathArg) -> pd.DataFrame:
    """Read the CMS practitioner services MUE table (medically unlikely edits).

    Parameters
    ----------
    path
        The CMS CSV (``MCR_MUE_PractitionerServices_Eff_*.csv``), an ``.xlsx`` copy, or a
        ``.zip`` holding either. Title and copyright lines before the header are skipped;
        the header may break inside a cell ("HCPCS/\\nCPT Code").

    Returns
    -------
    pandas.DataFrame
        One row per code with columns ``cpt, mue, mai, mai_text, rationale, source,
        confidence``. ``mue`` is the most units per day; ``mai`` is the MUE adjudication
        indicator (1 = claim line, 2 = date of service by policy, 3 = date of service by
        clinical data), the first character of ``mai_text`` ("2 Date of Service Edit:
        Policy"). Codes whose MUE CMS keeps confidential are not in the file.

    Raises
    ------
    ReferenceDataError
        Missing file, no recognisable header, or cells that do not parse.

    Examples
    --------
    >>> mue = read_mue("MCR_MUE_PractitionerServices_Eff_01-01-2026.csv")  # doctest: +SKIP
    >>> mue.set_index("cpt").loc["97140", ["mue", "mai"]]  # doctest: +SKIP
    """
    member = _members(path, kind="mue", exts=(".csv", ".xlsx"), pattern=r"practitioner")[0]
    expected = (
        "a header row with HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication "
        "Indicator and MUE Rationale"
    )

    def is_header(row: list[str]) -> bool:
        labels = _labels(row)
        return any("HCPCS" in c or c == "CPT CODE" for c in labels) and any(
            "ADJUDICATION" in c for c in labels
        )

    table = _read_table(member, kind="mue", is_header=is_header, expected=expected)
    labels = _labels(table.head[-1])
    positions = {
        "cpt": _find(labels, lambda c: "HCPCS" in c, lambda c: "CPT" in c),
        "mue": _find(labels, lambda c: "MUE VALUE" in c),
        "mai_text": _find(labels, lambda c: "ADJUDICATION" in c),
        "rationale": _find(labels, lambda c: "RATIONALE" in c),
    }
    missing = [k for k, v in positions.items() if v is None]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{expected}. {_FIX['mue']}",
            where=member.name,
        )
    body = table.body[[positions[k] for k in positions]]
    body.columns = list(positions)
    problems = _Problems(member.name, "mue")
    rows = _split_rows(
        body, "cpt", ["mue", "mai_text"], _CODE, problems, "HCPCS/CPT Code", _CODE_FORM
    )
    if rows.empty and not problems.messages:
        raise _no_rows(member.name, "mue")
    out = pd.DataFrame(index=rows.index)
    out["cpt"] = rows["cpt"].str.upper()
    out["mue"] = _to_int(rows, "mue", "MUE value", problems, "cpt")
    first = rows["mai_text"].str[:1]
    problems.add(
        ~first.isin(["1", "2", "3"]),
        rows,
        "mai_text",
        "MUE Adjudication Indicator",
        "that does not start with 1, 2 or 3",
        "cpt",
    )
    out["mai"] = pd.to_numeric(first.where(first.isin(["1", "2", "3"]), "0")).astype("int64")
    out["mai_text"] = rows["mai_text"]
    out["rationale"] = rows["rationale"]
    problems.raise_any()
    out["source"] = f"CMS {member.name}"
    out["confidence"] = CONFIDENCE
    out = out[MUE_COLUMNS]
    _check_unique(out, "cpt", ["mue", "mai"], member.name, "mue")
    return out.drop_duplicates().reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# All at once
# --------------------------------------------------------------------------------------------


def reference_from_cms(
    pprrvu: PathArg | None = None,
    gpci: PathArg | None = None,
    ptp: PathArg | Iterable[PathArg] | None = None,
    mue: PathArg | None = None,
    *,
    codes: str | Iterable[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read whichever CMS files are given into reference tables.

    Parameters
    ----------
    pprrvu, gpci, ptp, mue
        Paths as accepted by :func:`read_pprrvu`, :func:`read_gpci`, :func:`read_ncci_ptp`
        (one path or several) and :func:`read_mue`. Leave out what you do not have.
    codes
        Keep only these codes in the RVU table (e.g. the practice's code catalog).

    Returns
    -------
    dict of str to pandas.DataFrame
        Keys ``"rvu"``, ``"gpci"``, ``"ncci_ptp"``, ``"mue"``, for the files given only.

    Examples
    --------
    >>> ref = reference_from_cms(pprrvu="PPRRVU2025_Oct.csv", gpci="GPCI2025.csv",
    ...                          codes=["97110", "97140"])  # doctest: +SKIP
    >>> sorted(ref)  # doctest: +SKIP
    ['gpci', 'rvu']
    """
    tables: dict[str, pd.DataFrame] = {}
    if pprrvu is not None:
        tables["rvu"] = read_pprrvu(pprrvu, codes=codes)
    if gpci is not None:
        tables["gpci"] = read_gpci(gpci)
    if ptp is not None:
        tables["ncci_ptp"] = read_ncci_ptp(ptp)
    if mue is not None:
        tables["mue"] = read_mue(mue)
    return tables
