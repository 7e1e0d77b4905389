"""The direct identifiers of a practice's inputs, which no output may show.

The guard (:mod:`analytics.privacy.guard`) needs to know what to look for: patient and member
ids, account numbers, dates of birth, and people's names, both as single words and as first
and last name together. They are read from the raw export (whatever row its header is on, a
totals row left out) and from the 835s (``NM1*QC``, ``NM1*IL``, ``NM1*74`` and ``DMG``). The
names of payers, providers and the practice are collected too, as words a page may show.

A practice's export can hold a million lines and its 835s a hundred megabytes, and every report
run collects these, so both are read for what the collection needs only: a CSV or TSV export
whose quoting is regular is parsed by Arrow's CSV reader, only the columns the collection uses
are kept, and a totals label is looked for in the distinct values that could be one; the 835s
are searched for their ``NM1``, ``N1`` and ``DMG`` segments, each distinct one read once. Any
export the fast reader cannot read exactly as Python's :mod:`csv` module does (cp1252 text,
ragged rows, a quote inside an unquoted field...) is read by the csv-module path.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
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
           "read_raw_export", "read_export_cells", "ExportCells", "totals_rows", "totals_cells", "segments_named",
           "HEADER_SEARCH_ROWS", "name_words", "is_totals_label", "normalise_phrase", "EXPORT_NAMES", "MIN_ID",
           "practice_inputs"]

#: File names a practice folder's export may have, in the order they are looked for.
EXPORT_NAMES = ("service_lines.csv", "service_lines.parquet", "service_lines.xlsx", "service_lines.tsv",
                "service_lines.xlsm")
#: How many rows from an export's top are searched for its header row.
HEADER_SEARCH_ROWS = 30
#: Shorter ids ("1", "p1") are too common as ordinary tokens to guard meaningfully.
MIN_ID = 4
_WORD = re.compile(r"[^\W\d_]+")
#: A digit or a colon: never in a person's name, always in a report's own lines.
_REPORT_TEXT = re.compile(r"[\d:]")
_MONTH, _DAY = r"(?:0[1-9]|1[0-2])", r"(?:0[1-9]|[12]\d|3[01])"
#: Dates of birth read a form at a time (:meth:`Identifiers.add_dates`): years 1900-2099, each
#: field in its range, so that pandas reads each as it reads the text alone.
_DAY_FORMS = ((re.compile(rf"(?:19|20)\d\d{_MONTH}{_DAY}"), "%Y%m%d"),
              (re.compile(rf"(?:19|20)\d\d-{_MONTH}-{_DAY}"), "%Y-%m-%d"),
              (re.compile(r"(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:19|20)\d\d"), "%m/%d/%Y"))
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


def _written_forms(*parts: object) -> set[str]:
    """Other ways a system writes a name into an id or a file: each part's words joined
    (``O'Brien`` as ``OBRIEN``, ``Smith-Jones`` as ``SMITHJONES``) and every form without its
    accents (``Núñez`` as ``NUNEZ``)."""
    forms: set[str] = set()
    for part in parts:
        words = name_words(part)
        forms.update(words)
        if len(words) > 1 and not str(part).strip().count(" "):
            forms.add("".join(words))  # one written word: O'Brien, Smith-Jones
    return forms | {_unaccented(w) for w in forms}


def _unaccented(word: str) -> str:
    """``word`` with its letters' accents taken off (Unicode NFKD, combining marks dropped)."""
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


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
        """Add full names as an export writes them: ``Last, First Middle`` or ``First Middle Last``.

        A cell with a digit or a colon is a report's own line, not a person (``Record count:
        655``, ``Page 2 of 7``, ``Printed 03/04/2025 by jsmith``): its words would otherwise
        stop every page that prints them.
        """
        for v in values:
            text = str(v).strip()
            if not text or is_totals_label(text) or _REPORT_TEXT.search(text):
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
        for w in (*first_words, *last_words, *name_words(middle), *_written_forms(first, last, middle)):
            if len(w) >= 3 and not is_totals_label(w):
                self.names.add(w)
        if first_words and last_words:
            self.people.add((first_words, last_words))

    def add_dates(self, values: Iterable[object]) -> None:
        """Add dates of birth, in the forms a page or table prints dates.

        A text is read as pandas reads it alone (``YYYYMMDD`` by that format, any other by the
        format pandas guesses from it). Texts of the three usual forms, years 1900 to 2099
        (``19610304``, ``1961-03-04``, ``3/4/1961``), are read a form at a time, as many at once,
        which gives the same dates.
        """
        same_form: dict[str, list[str]] = {form: [] for _, form in _DAY_FORMS}
        for v in values:
            text = str(v).strip()
            if not text:
                continue
            form = next((form for pattern, form in _DAY_FORMS if pattern.fullmatch(text)), None)
            if form is not None:
                same_form[form].append(text)
                continue
            ts = pd.to_datetime(text, errors="coerce", format="%Y%m%d" if re.fullmatch(r"\d{8}", text) else None)
            if pd.isna(ts):
                continue
            self.dates_of_birth |= {ts.strftime("%Y-%m-%d"), ts.strftime("%m/%d/%Y"), ts.strftime("%Y%m%d"),
                                    f"{ts.month}/{ts.day}/{ts.year}"}
        for form, texts in same_form.items():
            if not texts:
                continue
            days = pd.DatetimeIndex(pd.to_datetime(pd.Series(texts, dtype=object), format=form, errors="coerce"))
            days = days[days.notna()].unique()
            for year, month, day in zip(days.year, days.month, days.day, strict=True):
                self.dates_of_birth |= {f"{year}-{month:02d}-{day:02d}", f"{month:02d}/{day:02d}/{year}",
                                        f"{year}{month:02d}{day:02d}", f"{month}/{day}/{year}"}

    def add_protected(self, values: Iterable[object]) -> None:
        """Add payer, provider or practice names: a page may show them as they are."""
        self.protected |= {p for p in map(normalise_phrase, values) if p}


def totals_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows of a table any of whose cells is a totals label (``TOTAL``): never a patient's row.

    Each column is tested on its distinct values that could be a label only (see
    :func:`totals_cells`); a header written twice is tested twice, column by column.
    """
    hit = np.zeros(len(frame), dtype=bool)
    for j in range(frame.shape[1]):
        hit |= totals_cells(frame.iloc[:, j])
    return pd.Series(hit, index=frame.index)


def totals_cells(values: pd.Series | Any) -> np.ndarray:
    """Which cells of one column are a totals label, as a boolean array.

    ``values`` is a Series (read as text, ``astype("str")``) or an Arrow string array. The
    cells are compared as words in upper case (``"Grand total:"`` is ``GRAND TOTAL``). Every
    label holds ``TOTAL`` or ``ALL``, so ``AL`` in upper case: only the distinct values that
    hold it are normalised, and the column is then matched against those that are labels.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pd.Series):
        text = values.astype("str")
        if getattr(text.dtype, "storage", None) != "pyarrow":  # no Arrow column: every distinct value
            codes, uniques = pd.factorize(text)
            labels = np.append(_totals_labels(pd.Series(uniques, dtype=text.dtype)).to_numpy(bool), False)
            return labels[codes]  # a missing cell (code -1) is no label
        column = pa.chunked_array(pa.array(text.array))
        upper = text.str.upper()
    else:
        column = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
        upper = _str_series(column).str.upper()
    could_be = upper.str.contains("AL", regex=False).fillna(False).to_numpy(bool)
    if not could_be.any():
        return could_be
    candidates = pc.unique(column.filter(pa.array(could_be)))
    labels = candidates.filter(pa.array(_totals_labels(_str_series(candidates)).to_numpy(bool)))
    if not len(labels):
        return np.zeros(len(could_be), dtype=bool)
    return pc.is_in(column, value_set=labels).fill_null(False).to_numpy(zero_copy_only=False)


def _totals_labels(text: pd.Series) -> pd.Series:
    """The one normalisation of a totals label: upper case, runs of non-word characters as one space."""
    words = text.astype("str").str.upper().str.replace(r"[\W_]+", " ", regex=True).str.strip()
    return words.isin(_TOTALS).fillna(False)


def _str_series(column: Any) -> pd.Series:
    """An Arrow string column as a pandas text Series (the ``str`` dtype the csv-module path gives)."""
    return pd.Series(column, dtype="str")


@dataclasses.dataclass(frozen=True)
class ExportCells:
    """An export's cells as text: the columns asked for, and which rows are totals rows.

    ``totals`` is tested over every column of the export, the ones not asked for too.
    """

    cells: pd.DataFrame
    totals: pd.Series


def read_raw_export(path: str | Path, *, sheet: str | int | None = None,
                    columns: Callable[[str], bool] | None = None) -> pd.DataFrame:
    """Every cell of an export as text, with the header taken from its header row.

    Title rows and blank rows above the header are skipped: the header row is the first of
    the first 30 that names a column the toolkit knows (a patient name, a date of birth, a
    code, a charge...). ``columns``, a test of a header, keeps only the columns it passes
    (every row stays).
    """
    return _read_export(Path(path), sheet, columns, with_totals=False).cells


def read_export_cells(path: str | Path, *, sheet: str | int | None = None,
                      columns: Callable[[str], bool] | None = None) -> ExportCells:
    """The cells of an export (as :func:`read_raw_export` reads them) and its totals rows.

    ``columns`` keeps the columns whose header it passes; the totals rows are found in all.
    """
    return _read_export(Path(path), sheet, columns, with_totals=True)


def _read_export(path: Path, sheet: str | int | None, columns: Callable[[str], bool] | None,
                 with_totals: bool) -> ExportCells:
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".xlsx", ".xlsm"):
        fast = _read_delimited_fast(path, "\t" if suffix == ".tsv" else ",", columns, with_totals)
        if fast is not None:
            return fast
    frame = _read_raw_export_plain(path, sheet)
    totals = totals_rows(frame) if with_totals else pd.Series(False, index=frame.index)
    if columns is not None:
        frame = frame.iloc[:, [j for j, name in enumerate(frame.columns) if columns(name)]]
    return ExportCells(frame, totals)


def _read_raw_export_plain(path: Path, sheet: str | int | None) -> pd.DataFrame:
    """The export read whole through Python's csv module (or pandas for Excel and Parquet)."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
        return frame.astype("str").where(frame.notna(), "")
    if suffix in (".xlsx", ".xlsm"):
        grid = pd.read_excel(path, dtype=str, sheet_name=sheet or 0, header=None, keep_default_na=False, engine="openpyxl")
        rows = grid.fillna("").astype(str).to_numpy().tolist()
    else:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","))
    start = next((i for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]) if _looks_like_header(row)), 0)
    if not rows:
        return pd.DataFrame()
    header = _header_names(rows[start])
    width = len(header)
    body = [(list(r) + [""] * width)[:width] for r in rows[start + 1:]]
    return pd.DataFrame(body, columns=pd.Index(header, dtype=object)).astype(str)


def _header_names(row: list[Any]) -> list[str]:
    return [str(h).strip() or f"column {j + 1}" for j, h in enumerate(row)]


class _Lines:
    """The lines of a text as ``io.StringIO(text, newline="")`` gives them, with the offset read so far."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.end = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.end >= len(self.text):
            raise StopIteration
        found = _LINE_END.search(self.text, self.end)
        start, self.end = self.end, found.end() if found else len(self.text)
        return self.text[start:self.end]


_LINE_END = re.compile(r"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"


def _read_delimited_fast(path: Path, delimiter: str, columns: Callable[[str], bool] | None,
                         with_totals: bool) -> ExportCells | None:
    """A CSV or TSV export read by Arrow, or None where that would not equal the csv-module read.

    Arrow reads the rows below the header row (found as the csv-module path finds it) when the
    text is UTF-8 without NUL characters, every quote opens a field, closes one or is doubled
    inside one, no field is longer than the csv module takes, and every row has the header's
    width (Arrow refuses a ragged row).
    """
    if getattr(pd.Series([], dtype="str").dtype, "storage", None) != "pyarrow":  # text columns not kept by Arrow
        return None
    raw = path.read_bytes()
    if raw.startswith(_UTF8_BOM):  # what decoding as utf-8-sig removes
        raw = raw[len(_UTF8_BOM):]
    if b"\x00" in raw:
        return None
    if raw.isascii():
        found = _header_row(raw, delimiter)
    else:
        try:
            found = _header_row(raw.decode("utf-8"), delimiter)
        except UnicodeDecodeError:  # read as cp1252 by the csv-module path
            return None
    if found is None:
        return None
    header, offset = found
    body = memoryview(raw)[offset:]
    if not _quoting_is_regular(np.frombuffer(body, dtype=np.uint8), ord(delimiter)):
        return None
    may_total = with_totals and _may_hold_totals(raw, offset)
    keep = [j for j, name in enumerate(header) if columns is None or columns(name)]
    parse = list(range(len(header))) if may_total else keep
    table = _arrow_rows(body, delimiter, len(header), parse or [0])
    if table is None:
        return None
    names = [f"f{j}" for j in range(len(header))]
    rows = table.num_rows
    totals = np.zeros(rows, dtype=bool)
    if may_total:
        for j in parse:
            totals |= totals_cells(table.column(names[j]))
    cells = pd.DataFrame({i: _str_series(table.column(names[j])) for i, j in enumerate(keep)},
                         index=pd.RangeIndex(rows))
    cells.columns = pd.Index([header[j] for j in keep], dtype=object)
    return ExportCells(cells, pd.Series(totals, index=cells.index))


def _header_row(data: bytes | str, delimiter: str) -> tuple[list[str], int] | None:
    """The header (as the csv-module path names it) and the byte offset of the first row below it.

    ``data`` is the text, or its bytes when they are ASCII (then only the beginning is decoded).
    """
    size = 1 << 20
    while True:
        text = data if isinstance(data, str) else data[:size].decode("ascii")
        whole = len(text) == len(data)
        lines = _Lines(text)
        head: list[tuple[list[str], int]] = []
        try:
            for row in csv.reader(lines, delimiter=delimiter):
                head.append((row, lines.end))
                if len(head) == HEADER_SEARCH_ROWS:
                    break
        except csv.Error:
            return None
        if whole or (len(head) == HEADER_SEARCH_ROWS and lines.end < len(text)):
            break
        size *= 8  # the first rows are longer than the part decoded
    start = next((i for i, (row, _) in enumerate(head) if _looks_like_header(row)), 0)
    if not head or not head[start][0]:
        return None
    offset = head[start][1]  # in characters; in bytes too when the text is ASCII
    return _header_names(head[start][0]), len(text[:offset].encode("utf-8")) if isinstance(data, str) else offset


def _may_hold_totals(raw: bytes, offset: int) -> bool:
    """False when no cell from ``offset`` on can be a totals label: the bytes hold no "tal" or "all", in any case.

    A label holds TOTAL or ALL in upper case, and no character but t, a and l (either case)
    has T, A or L in its upper case (``tests/test_identifiers_fast.py`` checks every one).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(np.array([offset, len(raw)], np.int64)),
                                                          pa.py_buffer(raw)])
    return any(pc.match_substring(whole, word, ignore_case=True)[0].as_py() for word in ("tal", "all"))


def _quoting_is_regular(body: np.ndarray, delimiter: int) -> bool:
    """True when every quote of ``body`` opens a field, closes one, or is one of a doubled pair in one,
    and no field is longer than the csv module takes (:func:`csv.field_size_limit`).

    Counted from the body's start (a row's start), the even quotes open a field (after a
    delimiter, a line end, or the quote before them: a doubled pair) and the odd ones close it
    (before a delimiter, a line end, the end, or a quote: a doubled pair). Where that holds,
    Arrow and the csv module split the fields alike; a quote anywhere else (``ab"c``,
    ``"ab"c``, `` "ab"``) is read differently by the two, so the csv-module path reads the file.
    """
    quotes = np.flatnonzero(body == ord('"'))
    if len(quotes) % 2:
        return False
    limit = csv.field_size_limit()
    if len(body) > limit:  # an unquoted field lies within a line
        line_ends = np.flatnonzero(body == ord("\n"))
        if np.diff(line_ends, prepend=-1, append=len(body)).max() - 1 > limit:
            return False
    if not len(quotes):
        return True
    ends = np.array([delimiter, ord("\n"), ord("\r"), ord('"')], dtype=np.uint8)
    opening, closing = quotes[0::2], quotes[1::2]
    before = body[np.maximum(opening - 1, 0)]  # an opening quote at the start is its own "before"
    after = body[np.minimum(closing + 1, len(body) - 1)]
    if not (np.isin(before, ends).all() and np.isin(after, ends).all()):
        return False
    if len(body) <= limit:
        return True
    starts = opening[(before != ord('"')) | (opening == 0)]  # a field's first quote, not a doubled pair's
    stops = closing[(after != ord('"')) | (closing == len(body) - 1)]
    return len(starts) == len(stops) and bool((stops - starts - 1 <= limit).all())


def _arrow_rows(body: memoryview, delimiter: str, width: int, parse: list[int]) -> Any:
    """The rows of ``body`` parsed by Arrow as text (columns ``f0``, ``f1``...), or None if Arrow refuses them."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [f"f{j}" for j in range(width)]
    include = [names[j] for j in parse]
    if not len(body):
        return pa.table({name: pa.array([], pa.string()) for name in include})
    try:
        return pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(body)),
            read_options=pa_csv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 24),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                              escape_char=False, newlines_in_values=True,
                                              ignore_empty_lines=False),
            convert_options=pa_csv.ConvertOptions(column_types={name: pa.string() for name in include},
                                                  include_columns=include, strings_can_be_null=False,
                                                  quoted_strings_can_be_null=False, null_values=[],
                                                  check_utf8=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a ragged row, a blank line...
        return None


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


def _column_role(header: object, targets: Mapping[str, Any]) -> str | None:
    """What the collection takes from a column: first or last names, full names, dates of birth, ids,
    protected names, or nothing (None)."""
    key = header_key(header)
    target = str(targets.get(header) or "")  # type: ignore[call-overload]
    words = set(key.split("_"))
    if key in ("first_name", "firstname", "patient_first_name") or (words >= {"first", "name"} and not
                                                                     words & _PROVIDER_WORDS):
        return "first"
    if key in ("last_name", "lastname", "patient_last_name", "surname") or (
            words >= {"last", "name"} and not words & _PROVIDER_WORDS):
        return "last"
    if key in NAME_COLUMNS or is_name_header(header):
        return "names"
    if is_birth_date_header(header):
        return "dates"
    if target == "patient_id" or _id_header(str(header)):
        return "ids"
    if target in ("payer_id", "provider_id") or words & (_PAYER_WORDS | _PROVIDER_WORDS):
        return "protected"
    return None


def identifiers_from_export(path: str | Path, *, sheet: str | int | None = None,
                            mapping: Mapping[str, Any] | None = None) -> Identifiers:
    """Identifiers in a practice-management export (CSV, TSV, Excel or Parquet), read raw.

    Names come from name columns (``Patient Name`` as ``Last, First`` or ``First Last``, or
    separate first and last name columns), ids from patient, member and account number
    columns (and any column ``mapping`` maps to ``patient_id``), dates of birth from any
    birth-date column (``DOB``, ``Pt DOB``). A totals row is not a patient. Payer and
    provider names are kept as :attr:`Identifiers.protected`. Only these columns are read,
    and each column's distinct values once.
    """
    targets = dict((mapping or {}).get("columns", mapping or {})) if mapping else {}
    read = read_export_cells(path, sheet=sheet, columns=lambda header: _column_role(header, targets) is not None)
    frame = read.cells
    if read.totals.any():
        frame = frame[~read.totals.to_numpy(bool)]
    found = Identifiers()
    firsts: list[pd.Series] = []
    lasts: list[pd.Series] = []
    for j, col in enumerate(frame.columns):
        role = _column_role(col, targets)
        values = frame.iloc[:, j].dropna()
        if role == "first":
            firsts.append(values)
        elif role == "last":
            lasts.append(values)
        elif role == "names":
            found.add_names(values.unique())
        elif role == "dates":
            found.add_dates(values.unique())
        elif role == "ids":
            found.add_ids(values.unique())
        elif role == "protected":
            found.add_protected(values.unique())
    for values in (*firsts, *lasts):  # every word of every first and last name column
        found.names |= {w for v in values.unique() if not _REPORT_TEXT.search(str(v))
                        for w in name_words(v) if len(w) >= 3}
    if firsts and lasts:  # and each row's person, first and last name together
        pairs = pd.DataFrame({"first": firsts[0], "last": lasts[0]}).drop_duplicates()
        for first, last in pairs.itertuples(index=False):
            found.add_person(first, last)
    return found


#: A segment named NM1 or N1, or DMG, to the next ``~`` or line end (the segment's start is checked apart).
_NM1_N1 = re.compile(r"N(?:M1|1)[^~\n]*")
_DMG = re.compile(r"DMG[^~\n]*")


def identifiers_from_835(paths: Iterable[str | Path]) -> Identifiers:
    """Patient and subscriber names and ids (NM1*QC / NM1*IL / NM1*74) and birth dates in raw 835 files.

    Payer and payee names (``N1*PR``, ``N1*PE``) and rendering providers (``NM1*82``) are
    kept as :attr:`Identifiers.protected`. Segments end at ``~`` (and the white space after it)
    or at a line end; elements are split on the separator the ISA segment names. Only the
    ``NM1``, ``N1`` and ``DMG`` segments are looked at, each distinct one once, and each
    distinct person, id and date once.
    """
    people: set[tuple[str, str, str]] = set()
    employers: set[str] = set()
    ids: set[str] = set()
    protected: set[str] = set()
    dates: set[str] = set()
    for path in paths:
        text = Path(path).read_text(errors="replace").lstrip("\ufeff")
        element = text[3] if text.startswith("ISA") and len(text) > 3 else "*"
        for segment in segments_named(text):
            parts = segment.split(element)
            tag = parts[0].strip()
            if tag == "NM1" and len(parts) > 2 and parts[1] in ("QC", "IL", "74"):
                last = parts[3] if len(parts) > 3 else ""
                if parts[2] == "2":  # a non-person subscriber (an employer)
                    employers.add(last)
                else:
                    people.add((parts[4] if len(parts) > 4 else "", last, parts[5] if len(parts) > 5 else ""))
                if len(parts) > 9 and parts[9]:
                    ids.add(parts[9])
            elif tag == "NM1" and len(parts) > 3 and parts[1] == "82":
                protected.add(" ".join(p for p in (parts[4] if len(parts) > 4 else "", parts[3]) if p))
            elif tag == "N1" and len(parts) > 2 and parts[1] in ("PR", "PE"):
                protected.add(parts[2])
            elif tag == "DMG" and len(parts) > 2:
                dates.add(parts[2])
    found = Identifiers()
    found.add_names(employers)
    for first, last, middle in people:
        found.add_person(first, last, middle=middle)
        found.names |= {w for w in name_words(last) if len(w) >= 3}
    found.add_ids(ids)
    found.add_protected(protected)
    found.add_dates(dates)
    return found


def segments_named(text: str) -> set[str]:
    """The distinct segments of an 835's text that may be ``NM1``, ``N1`` or ``DMG`` ones, white space stripped.

    A segment is a run of characters between ``~`` and line ends, white space at its ends not
    counted; these are the runs that start with one of the three names (a name written with a
    space before its element separator included).
    """
    found: set[str] = set()
    for pattern in (_NM1_N1, _DMG):
        for match in pattern.finditer(text):
            start = match.start()
            if start and text[start - 1] not in "~\n" and not _run_starts_at(text, start):
                continue
            found.add(match.group().rstrip())
    return found


def _run_starts_at(text: str, start: int) -> bool:
    """True when only white space stands between ``start`` and the ``~`` or line end before it."""
    i = start - 1
    while i >= 0 and text[i] != "\n" and text[i].isspace():
        i -= 1
    return i < 0 or text[i] in "~\n"


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
