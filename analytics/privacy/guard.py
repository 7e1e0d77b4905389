"""The guard: finds the inputs' identifiers in pages, notebooks and saved tables, precisely.

What counts as found
    * an id (patient, member or account number) as a whole token, or as a part of six
      characters or more of a longer one (``C-100234-01``);
    * a date of birth, in any form pages print dates;
    * a person's name **shown as a name**: first and last name together, in either order
      (``Donna White``, ``WHITE, DONNA``, ``SMITH-JOHN-0423``), anywhere in the visible
      text; or a single name word in a cell of a column the table fills with patient data
      (:func:`~analytics.privacy.headers.is_patient_data_header`: patient, name, member,
      account or claim columns); or a cell that is nothing but one uncommon name word.

What is not looked at
    CSS, scripts, HTML attributes and embedded images; column headers; payer, provider and
    practice names; a totals row's label; a name word that is also a common English word
    (:data:`COMMON_WORDS`: White, Will, Mark, May, Gold...) unless it is shown as a name.
    When both words of a name are common words (``Cash Total``) they count only as the whole
    of a cell or in a patient-data column.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from analytics.exceptions import PrivacyError
from analytics.privacy.headers import is_patient_data_header
from analytics.privacy.identifiers import Identifiers, is_totals_label, name_words, normalise_phrase
from analytics.privacy.words import COMMON_WORDS

__all__ = ["Matcher", "scan_text", "scan_html", "scan_table", "scan_file", "scan_outputs", "scan_notebook", "redact",
           "check_outputs", "mask", "mask_names_in_ids", "describe_hits", "TEXT_SUFFIXES", "COMMON_WORDS"]

#: Files the guard reads as text (HTML and SVG by their visible text, CSV by cells).
TEXT_SUFFIXES = frozenset({".html", ".htm", ".ipynb", ".csv", ".json", ".txt", ".md", ".yaml", ".yml", ".svg",
                           ".log"})
_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-_./][A-Za-z0-9]+)*")
_PART = re.compile(r"[-_/]")
_MIN_PART = 6
#: Where a date of birth can start and end in text, in each form identifiers.py keeps it (ISO,
#: MM/DD/YYYY and M/D/YYYY, YYYYMMDD), with no digit on either side. Lookaheads: every start
#: position is tried, so overlapping candidates ("2/3/1961-03-04") are all seen.
_DATE_SHAPES = (r"\d{4}-\d{2}-\d{2}", r"\d{1,2}/\d{1,2}/\d{4}", r"\d{8}")
_DATE_FORMS = tuple(re.compile(rf"(?<!\d)(?=({shape})(?!\d))") for shape in _DATE_SHAPES)
_DATE_SHAPE = re.compile("|".join(_DATE_SHAPES))
_HIT_COLUMNS = ["file", "where", "kind", "value"]


def mask(value: str) -> str:
    """A value with all but the first and last character of each word starred.

    Examples
    --------
    >>> mask("QWERTYSON"), mask("ZELDA QWERTYSON"), mask("MA")
    ('Q*******N', 'Z***A Q*******N', '**')
    """
    if " " in value.strip():
        return " ".join(mask(w) for w in value.split())
    return value[0] + "*" * max(len(value) - 2, 1) + value[-1] if len(value) > 2 else "**"


class Matcher:
    """The identifiers of a practice, indexed for matching text and table cells."""

    def __init__(self, identifiers: Identifiers, *, common: Iterable[str] = ()) -> None:
        self.identifiers = identifiers
        self.ids = identifiers.ids
        self.dates = sorted(identifiers.dates_of_birth)
        # the forms the date regexes find, and any other a caller gave (looked for one by one)
        shaped = {d for d in self.dates if _DATE_SHAPE.fullmatch(d)}
        self._date_set, self._other_dates = frozenset(shaped), sorted(set(self.dates) - shaped)
        self.names = identifiers.names | {w for first, last in identifiers.people for w in (*first, *last)
                                          if len(w) >= 2}
        self.common = COMMON_WORDS | {w.upper() for w in common}
        self.protected = identifiers.protected
        protected_words = {w for p in identifiers.protected for w in p.split()}
        self.lone = {w for w in self.names if len(w) >= 3 and w not in self.common and w not in protected_words}
        # (first, last) and (last, first) word sequences, by their first word
        self.patterns: dict[str, list[tuple[tuple[str, ...], tuple[str, ...], bool]]] = {}
        for first, last in identifiers.people:
            both_common = all(w in self.common for w in (*first, *last))
            for a, b in ((first, last), (last, first)):
                self.patterns.setdefault(a[0], []).append((a, b, both_common))
        self.protected_seqs: dict[str, list[tuple[str, ...]]] = {}
        for phrase in identifiers.protected:  # a one-word payer id ("cash") is skipped only as a whole cell
            words = tuple(name_words(phrase))
            if len(words) > 1:
                self.protected_seqs.setdefault(words[0], []).append(words)

    # ------------------------------------------------------------------ pieces
    def ids_in(self, text: str) -> list[tuple[str, str]]:
        if not self.ids:
            return []
        hits = []
        for token in _TOKEN.findall(text):
            up = token.upper()
            if up in self.ids:
                hits.append(("id", up))
                continue
            # a part of a compound id with a word in it (C-100234-01, ACCT_100234), not the whole
            # of a decimal (100234.50) nor a run id or a time (181739-20604-8a81)
            parts = [part.upper() for part in _PART.split(token)]
            if len(parts) > 1 and any(p.isalpha() for p in parts):
                hits += [("id", p) for p in parts if len(p) >= _MIN_PART and p in self.ids]
        return hits

    def _dates(self, text: str) -> list[tuple[str, str]]:
        # the text's date-shaped tokens looked up among the dates: one pass over the text,
        # whatever the number of patients (a scan of every date against every cell was
        # quadratic: about 10 s per report run for 2,000 patients)
        found = {d for d in self._other_dates if d in text and _alone(text, d)}
        if self._date_set:
            found |= {m[1] for form in _DATE_FORMS for m in form.finditer(text)} & self._date_set
        return [("date_of_birth", d) for d in sorted(found)]

    def _unprotected(self, words: list[str]) -> list[str | None]:
        """The words, with those inside a payer, provider or practice name set to None."""
        out: list[str | None] = list(words)
        for i, w in enumerate(words):
            for seq in self.protected_seqs.get(w, ()):
                if tuple(words[i:i + len(seq)]) == seq:
                    out[i:i + len(seq)] = [None] * len(seq)
        return out

    def _people(self, words: list[str], *, whole: bool) -> list[tuple[str, str]]:
        """Full names in the word list; ``whole``: the list is a whole cell (common-word names count)."""
        if not self.patterns:
            return []
        seq = self._unprotected(words)
        hits = []
        for i, w in enumerate(seq):
            if w is None:
                continue
            for a, b, both_common in self.patterns.get(w, ()):
                if both_common and not whole:
                    continue
                n = len(a)
                if tuple(seq[i:i + n]) != a:
                    continue
                for gap in (0, 1):  # a middle initial between the names
                    j = i + n + gap
                    if gap and not (i + n < len(seq) and seq[i + n] is not None and len(seq[i + n]) == 1):
                        continue
                    if tuple(seq[j:j + len(b)]) == b:
                        if both_common and whole and len(words) != n + gap + len(b):
                            continue
                        hits.append(("name", " ".join((*a, *b))))
                        break
        return hits

    # ------------------------------------------------------------------ public
    def text(self, text: str) -> list[tuple[str, str]]:
        """Identifiers in running text: ids, dates of birth, names shown as names."""
        return self.ids_in(text) + self._dates(text) + self._people(name_words(text), whole=False)

    def cell(self, text: str, patient_column: bool) -> list[tuple[str, str]]:
        """Identifiers in one table cell; ``patient_column`` when the column holds patient data."""
        text = str(text).strip()
        if not text or is_totals_label(text) or normalise_phrase(text) in self.protected:
            return []
        hits = self.ids_in(text) + self._dates(text)
        words = name_words(text)
        hits += self._people(words, whole=True)
        if hits:
            return hits
        if patient_column:
            seq = self._unprotected(words)
            return [("name", w) for w in seq if w is not None and w in self.names]
        if len(words) == 1 and words[0] in self.lone and len(words[0]) >= 0.6 * len(text.replace(" ", "")):
            return [("name", words[0])]
        return []


def _alone(text: str, date: str) -> bool:
    """The date is not part of a longer number (``19610304`` inside ``2196103041``)."""
    for m in re.finditer(re.escape(date), text):
        before = text[m.start() - 1] if m.start() else " "
        after = text[m.end()] if m.end() < len(text) else " "
        if not (before.isdigit() or after.isdigit()):
            return True
    return False


# --------------------------------------------------------------------------- documents


@dataclasses.dataclass
class _Table:
    caption: str = ""
    headers: list[str] = dataclasses.field(default_factory=list)
    rows: list[list[str]] = dataclasses.field(default_factory=list)


class _Page(HTMLParser):
    """Visible text of a page: running text, and tables as headers and rows of cells."""

    _SKIP = frozenset({"style", "script", "template", "noscript"})
    _BLOCK = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "pre", "title",
                        "caption", "dt", "dd", "text", "tspan"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.prose: list[str] = []
        self.tables: list[_Table] = []
        self._skip = 0
        self._stack: list[_Table] = []
        self._row: list[str] | None = None
        self._row_is_header = False
        self._row_th_only = False
        self._cell: list[str] | None = None
        self._in_head = False
        self._in_caption = False

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ANN001
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "table":
            self._stack.append(_Table())
        elif tag == "thead":
            self._in_head = True
        elif tag == "caption":
            self._in_caption = True
        elif tag == "tr" and self._stack:
            self._row, self._row_is_header, self._row_th_only = [], self._in_head, True
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            if tag == "td":
                self._row_th_only = False
        elif tag in self._BLOCK:
            self.prose.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(self._skip - 1, 0)
        elif tag == "table" and self._stack:
            self.tables.append(self._stack.pop())
        elif tag == "thead":
            self._in_head = False
        elif tag == "caption":
            self._in_caption = False
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._stack:
            table = self._stack[-1]
            if self._row_is_header or (not table.headers and not table.rows and self._row and self._row_th_only):
                table.headers = self._row if not table.headers else [
                    f"{a} {b}".strip() for a, b in zip(table.headers, self._row, strict=False)]
            else:
                table.rows.append(self._row)
            self._row = None
        elif tag in self._BLOCK:
            self.prose.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption and self._stack:
            self._stack[-1].caption += data
        else:
            self.prose.append(data)


def _parse_html(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    while page._stack:  # an unclosed table
        page.tables.append(page._stack.pop())
    return page


def scan_text(text: str, identifiers: Identifiers | Matcher) -> list[tuple[str, str]]:
    """``(kind, masked value)`` for every identifier in running ``text``; empty when it is clean.

    Examples
    --------
    >>> ids = Identifiers()
    >>> ids.add_names(["Qwertyson, Zelda", "White, Will"])
    >>> scan_text("patient: Zelda Qwertyson", ids)
    [('name', 'Z***A Q*******N')]
    >>> scan_text("White claims will be paid", ids)  # common words, not a name
    []
    """
    matcher = identifiers if isinstance(identifiers, Matcher) else Matcher(identifiers)
    return [(k, mask(v)) for k, v in _unique(matcher.text(text))]


def _unique(hits: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(hits))


def scan_table(frame: pd.DataFrame, identifiers: Identifiers | Matcher, *, name: str = "table",
               first_row: int = 2) -> list[tuple[str, str, str]]:
    """``(where, kind, masked value)`` for every identifier in the cells of a table.

    Headers are not looked at. Each distinct value of a column is checked once; ``where``
    names the first row that holds it (``first_row`` is the number of the first data row as
    a spreadsheet shows it: 2 under a header row) and the column.
    """
    matcher = identifiers if isinstance(identifiers, Matcher) else Matcher(identifiers)
    out = []
    for position, col in enumerate(frame.columns):
        values = frame.iloc[:, position]
        patient = is_patient_data_header(col)
        text = values.astype("str").where(values.notna(), "")
        for value in pd.unique(text):
            hits = matcher.cell(value, patient)
            if hits:
                row = int((text.to_numpy() == value).argmax()) + first_row
                out += [(f"{name} row {row} column {col!r}", k, mask(v)) for k, v in _unique(hits)]
    return out


def scan_html(html: str, identifiers: Identifiers | Matcher, *, name: str = "page") -> list[tuple[str, str, str]]:
    """``(where, kind, masked value)`` for every identifier in the visible text and tables of HTML."""
    matcher = identifiers if isinstance(identifiers, Matcher) else Matcher(identifiers)
    page = _parse_html(html)
    found = [(f"{name} page text", k, mask(v)) for k, v in _unique(matcher.text("".join(page.prose)))]
    for number, table in enumerate(page.tables, start=1):
        label = f"{name} table {number}" + (f" ({' '.join(table.caption.split())[:60]})" if table.caption.strip()
                                            else "")
        width = max([len(table.headers), *map(len, table.rows)], default=0)
        headers = [*table.headers, *[""] * (width - len(table.headers))]
        for r, row in enumerate(table.rows, start=1):
            for c, cell in enumerate(row):
                hits = matcher.cell(cell, is_patient_data_header(headers[c]) if c < len(headers) else False)
                found += [(f"{label} row {r} column {headers[c] if c < len(headers) else c + 1!r}", k, mask(v))
                          for k, v in _unique(hits)]
        found += [(f"{label} caption", k, mask(v)) for k, v in _unique(matcher.text(table.caption))]
    return found


def scan_notebook(path: str | Path, identifiers: Identifiers | Matcher) -> pd.DataFrame:
    """Where in an executed notebook identifiers appear: one row per cell and identifier.

    Columns ``cell`` (1-based code-cell number, counting the injected parameters cell),
    ``first_line`` (of the cell's source), ``part`` (``source`` or ``outputs``), ``kind`` and
    ``value`` (masked). Sources and text outputs are read as running text; HTML outputs by
    their visible text and table cells. Lets a refused report say which cell to fix without
    keeping the text.
    """
    matcher = identifiers if isinstance(identifiers, Matcher) else Matcher(identifiers)
    nb = json.loads(Path(path).read_text(errors="replace"))
    rows = []
    number = 0
    for cell in nb.get("cells", []):
        source = _joined(cell.get("source", ""))
        if cell.get("cell_type") != "code":
            rows += [{"cell": 0, "first_line": "(a text cell)", "part": "source", "kind": k, "value": v}
                     for k, v in scan_text(source, matcher)]
            continue
        number += 1
        first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")[:80]
        if scan_text(first, matcher) or matcher.ids_in(first):
            first = "(this line holds an identifier)"
        hits = [("source", k, v) for k, v in scan_text(source, matcher)]
        for output in cell.get("outputs", []):
            hits += [("outputs", k, v) for _, k, v in _output_hits(output, matcher)]
        rows += [{"cell": number, "first_line": first, "part": part, "kind": k, "value": v}
                 for part, k, v in dict.fromkeys(hits)]
    return pd.DataFrame(rows, columns=["cell", "first_line", "part", "kind", "value"])


def _joined(value: object) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _output_hits(output: dict, matcher: Matcher) -> list[tuple[str, str, str]]:
    hits: list[tuple[str, str, str]] = []
    for key in ("text", "evalue", "ename"):
        if key in output:
            hits += [("text", k, v) for k, v in scan_text(_joined(output[key]), matcher)]
    if "traceback" in output:
        hits += [("text", k, v) for k, v in scan_text(re.sub(r"\x1b\[[0-9;]*m", "", _joined(output["traceback"])),
                                                      matcher)]
    data = output.get("data", {}) or {}
    for mime, value in data.items():
        if mime in ("text/html", "image/svg+xml"):
            hits += scan_html(_joined(value), matcher, name="output")
        elif mime.startswith("text/") or mime.endswith("json"):
            hits += [("text", k, v) for k, v in scan_text(_joined(value) if not isinstance(value, dict)
                                                          else json.dumps(value), matcher)]
    return hits


def scan_file(path: str | Path, identifiers: Identifiers | Matcher) -> list[tuple[str, str, str]]:
    """``(where, kind, masked value)`` for every identifier in one output file."""
    matcher = identifiers if isinstance(identifiers, Matcher) else Matcher(identifiers)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return scan_table(pd.read_parquet(path), matcher, name=path.name)
    if suffix in (".xlsx", ".xlsm"):
        # as the intake reads workbooks (calamine: a run's tables.xlsx about five times faster)
        from analytics.intake.files import EXCEL_ENGINE

        sheets = pd.read_excel(path, sheet_name=None, dtype=str, keep_default_na=False, engine=EXCEL_ENGINE)
        return [hit for sheet, frame in sheets.items()
                for hit in scan_table(frame, matcher, name=f"{path.name} sheet {sheet!r}")]
    if suffix not in TEXT_SUFFIXES:
        return []
    text = path.read_text(errors="replace")
    if suffix in (".html", ".htm", ".svg"):
        return scan_html(text, matcher, name=path.name)
    if suffix == ".ipynb":
        try:
            cells = scan_notebook(path, matcher)
        except (json.JSONDecodeError, AttributeError):
            return [(f"{path.name} text", k, v) for k, v in scan_text(text, matcher)]
        return [(f"{path.name} code cell {r.cell} {r.part}" if r.cell else f"{path.name} text cell", r.kind, r.value)
                for r in cells.itertuples(index=False)]
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            return []
        width = max(map(len, rows))
        header = [*rows[0], *[f"column {j + 1}" for j in range(len(rows[0]), width)]]
        frame = pd.DataFrame([[*r, *[""] * (width - len(r))] for r in rows[1:]], columns=pd.Index(header, dtype=object),
                             dtype=object)
        return scan_table(frame, matcher, name=path.name)
    return [(f"{path.name} text", k, v) for k, v in scan_text(text, matcher)]


def scan_outputs(paths: Iterable[str | Path], identifiers: Identifiers | Matcher) -> pd.DataFrame:
    """Every identifier found in the given files (or files under given folders).

    Returns a DataFrame with ``file``, ``where`` (the table, row and column, or the text or
    notebook cell), ``kind`` (id, name, date_of_birth) and ``value`` (masked: first and last
    character only), empty when the outputs are clean.
    """
    matcher = identifiers if isinstance(identifiers, Matcher) else Matcher(identifiers)
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    rows = []
    for f in files:
        rows += [{"file": str(f), "where": where, "kind": k, "value": v} for where, k, v in scan_file(f, matcher)]
    return pd.DataFrame(rows, columns=_HIT_COLUMNS)


def describe_hits(found: pd.DataFrame, *, limit: int = 5) -> str:
    """The first hits in words: ``claims_to_appeal.csv row 4 column 'claim_id': name S***H``."""
    shown = [f"{r.where}: {r.kind.replace('_', ' ')} {r.value}" for r in found.head(limit).itertuples(index=False)]
    more = len(found) - len(shown)
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def mask_names_in_ids(values: pd.Series, identifiers: Identifiers | Matcher, *, key: object = None) -> pd.Series:
    """Claim numbers and other ids with the patient's name taken out.

    An id that holds a word of a person's name from the inputs (``SMITH-JOHN-0423``,
    ``PCN-FENWICK-HOLLY``) is replaced: with ``key`` (the practice's key), by ``ID-`` and its
    keyed pseudonym, so the same id still links across the practice's tables; without, by the
    id with each name word starred (``*****-****-0423``), for pages. Ids without a name are
    kept as they are. Each distinct value is looked at once.

    Examples
    --------
    >>> ids = Identifiers()
    >>> ids.add_names(["Smith, John"])
    >>> mask_names_in_ids(pd.Series(["SMITH-JOHN-0423", "C000123"]), ids).tolist()
    ['*****-****-0423', 'C000123']
    """
    from analytics.privacy.pseudonyms import pseudonym

    matcher = identifiers if isinstance(identifiers, Matcher) else Matcher(identifiers)
    protected = {w for p in matcher.protected for w in p.split()}
    names = matcher.names - protected
    text = values.astype("str").where(values.notna(), "")
    table: dict[str, str] = {}
    for value in pd.unique(text):
        if value and set(name_words(value)) & names:
            table[value] = ("ID-" + pseudonym(value, key)) if key is not None else re.sub(
                r"[^\W\d_]+", lambda m: "*" * len(m[0]) if m[0].upper() in names else m[0], value)
    if not table:
        return values
    return values.where(~text.isin(table.keys()), text.map(table))


def redact(text: str, identifiers: Identifiers) -> str:
    """``text`` with every id, name word and date of birth masked (first and last character kept).

    Examples
    --------
    >>> redact("cell 3: print('Zelda Qwertyson')", Identifiers(names={"ZELDA", "QWERTYSON"}))
    "cell 3: print('Z***a Q*******n')"
    """
    tokens = identifiers.ids | identifiers.names | {w for first, last in identifiers.people for w in (*first, *last)
                                                    if len(w) >= 3}
    out = _TOKEN.sub(lambda m: mask(m[0]) if m[0].upper() in tokens else m[0], text)
    out = re.sub(r"[^\W\d_]+", lambda m: mask(m[0]) if m[0].upper() in tokens else m[0], out)
    for date in identifiers.dates_of_birth:
        out = out.replace(date, mask(date))
    return out


def check_outputs(paths: Iterable[str | Path], identifiers: Identifiers) -> None:
    """Raise :class:`PrivacyError` naming the files, cells and kinds of the identifiers found."""
    found = scan_outputs(paths, identifiers)
    if not found.empty:
        files = ", ".join(sorted(set(found["file"])))
        raise PrivacyError(
            f"{len(found)} patient identifier(s) found in outputs ({describe_hits(found)}) in {files}. These files "
            "must not leave the practice; remove the identifying columns from the inputs or the notebook, then rerun.",
            rows=found,
        )
