"""Reading any CMS file: zip members, encodings, title lines, header rows and cell checks.

The loaders of :mod:`analytics.cms.fee_schedule` and :mod:`analytics.cms.ncci` share these: a
file (or a zip member) is split at its header row, the rest is read as text by column
position, and every bad cell of a file is collected and reported at once
(:class:`Problems`), naming the file's line numbers and where to download the file.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.exceptions import ReferenceDataError

__all__ = [
    "PathArg", "CONFIDENCE", "CODE_PATTERN", "CODE_FORM", "SCAN_ROWS", "RVU_PAGE", "PTP_PAGE", "MUE_PAGE", "FIX",
    "Member", "Table", "file_members", "decode", "canon", "read_table", "layout_error", "labels_of",
    "find_column", "line_list", "Problems", "to_float", "to_int", "to_date", "split_rows", "years_in",
    "settle_year", "no_rows", "check_unique", "is_mac_label",
]

PathArg = str | PathLike[str]

CONFIDENCE = "C"

# A HCPCS/CPT code: five letters or digits (CPT 97140, category III 0001T, HCPCS G0283).
CODE_PATTERN = r"[0-9A-Z]{5}"
CODE_FORM = "a five-character HCPCS/CPT code"
# Records scanned for a header row before the file is declared unrecognisable.
SCAN_ROWS = 200

RVU_PAGE = "https://www.cms.gov/medicare/payment/fee-schedules/physician/pfs-relative-value-files"
PTP_PAGE = (
    "https://www.cms.gov/medicare/coding-billing/national-correct-coding-initiative-ncci-edits/"
    "medicare-ncci-procedure-procedure-ptp-edits"
)
MUE_PAGE = (
    "https://www.cms.gov/medicare/coding-billing/national-correct-coding-initiative-ncci-edits/"
    "medicare-ncci-medically-unlikely-edits"
)
FIX = {
    "pprrvu": (
        "Download the national physician fee schedule relative value file (the RVUyyX zip; "
        f"use PPRRVUyyyy_*.csv inside it) from CMS: {RVU_PAGE}"
    ),
    "gpci": (
        "Download the GPCI file (GPCIyyyy.csv, addendum E, in the same RVUyyX zip as the "
        f"PPRRVU file) from CMS: {RVU_PAGE}"
    ),
    "locco": (
        "Download the locality/county file (yyLOCCO.csv, in the same RVUyyX zip as the "
        f"PPRRVU file) from CMS: {RVU_PAGE}"
    ),
    "ptp": (
        "Download the quarterly Medicare NCCI PTP edits for practitioners "
        f"(ccipra-v*-f1 .. f4, .txt or .xlsx inside each zip) from CMS: {PTP_PAGE}"
    ),
    "mue": (
        "Download the quarterly Medicare NCCI practitioner services MUE table "
        f"(MCR_MUE_PractitionerServices_*.csv or .xlsx) from CMS: {MUE_PAGE}"
    ),
}


# --------------------------------------------------------------------------------------------
# Reading files: zip members, encodings, title lines, header rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One readable file: a plain file, or one member of a zip."""

    name: str  # shown in messages and in `source`, e.g. "RVU25D.zip/PPRRVU2025_Oct.csv"
    data: bytes
    ext: str  # ".csv", ".txt" or ".xlsx"


@dataclass(frozen=True)
class Table:
    """A CMS table split at its header row.

    ``head`` holds the records up to and including the header row (cells stripped);
    ``body`` holds the cells after it as strings, columns numbered by position, indexed by
    the line number in the file (the row number for a spreadsheet).
    """

    name: str
    head: list[list[str]]
    body: pd.DataFrame


def file_members(
    path: PathArg,
    *,
    kind: str,
    exts: Sequence[str],
    pattern: str | None = None,
    many: bool = False,
) -> list[Member]:
    """Read ``path`` (or the members of a zip at ``path``) into memory.

    In a zip, members whose name matches ``pattern`` are preferred; when one table is present
    in several formats (CMS ships some as .txt and .xlsx side by side) the first format in
    ``exts`` wins, so a table is never read twice.
    """
    p = Path(path)
    if not p.is_file():
        where = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ReferenceDataError(f"{p} {where}. {FIX[kind]}", where=str(p))
    ext = p.suffix.lower()
    if ext in exts:
        return [Member(p.name, p.read_bytes(), ext)]
    if ext != ".zip":
        raise ReferenceDataError(
            f"{p.name}: cannot read a '{ext}' file here; expected one of "
            f"{', '.join(exts)} or a .zip holding one. {FIX[kind]}",
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
                    + f" (members: {', '.join(zf.namelist()) or 'none'}). {FIX[kind]}",
                    where=p.name,
                )
            if len(chosen) > 1 and not many:
                raise ReferenceDataError(
                    f"{p.name}: the zip holds several candidate files ({', '.join(chosen)}); "
                    "unzip it and pass the one you mean.",
                    where=p.name,
                )
            return [
                Member(f"{p.name}/{Path(n).name}", zf.read(n), Path(n).suffix.lower())
                for n in chosen
            ]
    except zipfile.BadZipFile as exc:
        raise ReferenceDataError(
            f"{p.name}: not a readable zip ({exc}). {FIX[kind]}", where=p.name
        ) from exc


def decode(data: bytes) -> str:
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


def canon(label: str) -> str:
    """Canonical header label: upper case, punctuation to spaces, FACILITY -> FAC, INDICATOR -> IND."""
    words = re.sub(r"[^A-Z0-9+*]+", " ", label.upper()).split()
    short = {"FACILITY": "FAC", "INDICATOR": "IND"}
    return " ".join(short.get(w, w) for w in words)


def read_table(
    member: Member,
    *,
    kind: str,
    is_header: Callable[[list[str]], bool],
    expected: str,
    columns: Callable[[list[list[str]]], list[int]] | None = None,
) -> Table:
    """Split a CMS file at its header row and read the rest as strings.

    ``columns`` maps the head records to the positions to read; positions it leaves out are
    never parsed (this is how the PPRRVU descriptor column is skipped).
    """
    if member.ext == ".xlsx":
        return _read_sheet(
            member, kind=kind, is_header=is_header, expected=expected, columns=columns
        )
    text = decode(member.data)
    sample = text[:20000]
    sep = "\t" if sample.count("\t") > sample.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=sep)
    head: list[list[str]] = []
    try:
        for record in reader:
            head.append([c.strip() for c in record])
            if is_header(head[-1]):
                break
            if len(head) >= SCAN_ROWS:
                head = []
                break
        else:
            head = []
    except csv.Error as exc:
        raise ReferenceDataError(
            f"{member.name}: cannot read line {reader.line_num} as delimited text ({exc}). "
            f"{FIX[kind]}",
            where=f"{member.name} line {reader.line_num}",
        ) from exc
    if not head:
        raise layout_error(member.name, kind, expected)
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
                f"{FIX[kind]}",
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
    return Table(member.name, head, body)


def _read_sheet(
    member: Member,
    *,
    kind: str,
    is_header: Callable[[list[str]], bool],
    expected: str,
    columns: Callable[[list[list[str]]], list[int]] | None,
) -> Table:
    try:
        sheet = pd.read_excel(io.BytesIO(member.data), header=None, dtype=str, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several unrelated types for a damaged workbook
        raise ReferenceDataError(
            f"{member.name}: not a readable .xlsx workbook ({exc}). {FIX[kind]}", where=member.name
        ) from exc
    sheet = sheet.fillna("").astype("str").apply(lambda col: col.str.strip())
    sheet.columns = list(range(sheet.shape[1]))
    sheet.index = pd.Index(np.arange(1, len(sheet) + 1), name="line")
    records = sheet.head(SCAN_ROWS).to_numpy().tolist()
    at = next((i for i, r in enumerate(records) if is_header(r)), None)
    if at is None:
        raise layout_error(member.name, kind, expected)
    head = records[: at + 1]
    wanted = columns(head) if columns is not None else list(range(sheet.shape[1]))
    body = sheet.iloc[at + 1 :].reindex(columns=wanted, fill_value="")
    return Table(member.name, head, body)


def layout_error(name: str, kind: str, expected: str) -> ReferenceDataError:
    return ReferenceDataError(
        f"{name}: no header row found in the first {SCAN_ROWS} rows; expected {expected}. "
        f"This does not look like the CMS file this loader reads. {FIX[kind]}",
        where=name,
    )


def labels_of(row: Sequence[str]) -> list[str]:
    return [canon(c) for c in row]


def find_column(labels: Sequence[str], *tests: Callable[[str], bool]) -> int | None:
    """Position of the first label passing the first test that any label passes."""
    for test in tests:
        hits = [i for i, label in enumerate(labels) if label and test(label)]
        if hits:
            return hits[0]
    return None


def line_list(index: Iterable[object], limit: int = 10) -> str:
    """``"line 4"`` or ``"lines 4, 9 and 3 more"``."""
    values = [str(i) for i in index]
    more = len(values) - limit
    listed = ", ".join(values[:limit]) + (f" and {more} more" if more > 0 else "")
    return ("line " if len(values) == 1 else "lines ") + listed


# --------------------------------------------------------------------------------------------
# Checking and converting cells (vectorised; every problem in a file is reported at once)
# --------------------------------------------------------------------------------------------


class Problems:
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
            f"fresh copy if the file was edited by hand. {FIX[self.kind]}",
            rows=rows,
            where=f"{self.name} {line_list(sorted(set(rows['line'])))}",
        )


def to_float(
    frame: pd.DataFrame, column: str, label: str, problems: Problems, key: str | None
) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    problems.add(values.isna(), frame, column, label, "that is blank or not a number", key)
    return values.astype("float64")


def to_int(
    frame: pd.DataFrame, column: str, label: str, problems: Problems, key: str | None
) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    problems.add(bad, frame, column, label, "that is not a whole number", key)
    return values.where(~bad, 0).astype("int64")


def to_date(
    frame: pd.DataFrame,
    column: str,
    label: str,
    problems: Problems,
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


def split_rows(
    body: pd.DataFrame,
    key: str,
    values: Sequence[str],
    pattern: str,
    problems: Problems,
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


def years_in(texts: Iterable[str], pattern: str) -> set[int]:
    found: set[int] = set()
    for t in texts:
        found.update(int(m) for m in re.findall(pattern, t, flags=re.I))
    return found


def settle_year(name: str, kind: str, found: set[int], year: int | None, what: str) -> int:
    if year is not None:
        if found and year not in found:
            raise ReferenceDataError(
                f"{name}: the file holds {what} for {', '.join(map(str, sorted(found)))}, not "
                f"{year}. Pass the {year} file, or leave year unset. {FIX[kind]}",
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


def no_rows(name: str, kind: str) -> ReferenceDataError:
    return ReferenceDataError(
        f"{name}: the header was found but no data rows follow it. {FIX[kind]}", where=name
    )



def is_mac_label(label: str) -> bool:
    return "CONTRACTOR" in label or label == "MAC"


def check_unique(frame: pd.DataFrame, key: str, values: list[str], name: str, kind: str) -> None:
    distinct = frame.drop_duplicates([key, *values])
    clash = distinct[distinct[key].duplicated(keep=False)]
    if not clash.empty:
        raise ReferenceDataError(
            f"{name}: {clash[key].nunique()} {key}(s) are listed more than once with different "
            f"values ({', '.join(sorted(set(clash[key])))}; {line_list(clash.index)}). "
            f"Keep one row per {key}. {FIX[kind]}",
            rows=clash,
            where=f"{name} {line_list(clash.index)}",
        )
