"""Sniffing an export: where its header is, what each column holds, and the mapping.yaml that
reads it.

:func:`sniff_export` reads an export once and proposes, for every column, the toolkit's column
it fills, from its header (the known spellings of :mod:`analytics.intake.headers`) and from its
cells (:mod:`analytics.intake.contents`): dates, CPT/HCPCS codes, money, modifiers, ICD-10
codes, payer names, provider names with a credential. Repeated columns (``Dx 1`` .. ``Dx 4``,
``Mod 1`` .. ``Mod 4``) are joined; columns the toolkit does not use are listed with the
reason. :meth:`ExportLayout.to_yaml` and :func:`write_mapping` give the mapping file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analytics._files import atomic_write
from analytics.intake.contents import KIND_TARGETS, column_contents, total_labels
from analytics.intake.credentials import credential_types
from analytics.intake.files import read_export
from analytics.intake.headers import (
    JOINED_TARGETS,
    column_letter,
    header_target,
    ignore_reason,
    money_header,
)
from analytics.intake.mapping import MappingLine, render_mapping
from analytics.intake.values import EXCEL_DAYS
from analytics.privacy import PRIVATE_COLUMNS, header_key
from analytics.schemas import REQUIRED_COLUMNS

__all__ = ["ExportLayout", "sniff_export", "write_mapping"]



@dataclass(frozen=True)
class ExportLayout:
    """What :func:`sniff_export` found in an export, and the mapping it proposes.

    Attributes
    ----------
    path, kind, sheet, header_row, delimiter, encoding
        The file and how to read it (``header_row`` as the spreadsheet shows it).
    rows
        Non-blank data rows, TOTAL rows included.
    total_rows
        Rows that read as the export's TOTAL or subtotal lines.
    columns
        One row per export column: ``column`` (its name in mapping.yaml), ``letter``,
        ``target`` (the toolkit's column, ``""`` when not read), ``basis`` (why: the header, the
        cells, or the reason it is not read) and ``contents`` (what its cells look like).
    date_format, decimal_comma, century_pivot
        Reading settings proposed from the cells (``date_format`` ``None``: ISO or US dates).
    payers
        Payer names in the payer column with their line counts (``payer``, ``lines``).
    providers
        Providers with the type their credential gives (``provider``, ``provider_type``,
        ``lines``).
    questions
        What the owner should confirm before trusting the mapping.
    """

    path: Path
    kind: str
    header_row: int
    rows: int
    columns: pd.DataFrame
    sheet: str | int | None = None
    delimiter: str | None = None
    encoding: str | None = None
    total_rows: int = 0
    date_format: str | None = None
    decimal_comma: bool = False
    century_pivot: int | None = None
    payers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["payer", "lines"]))
    providers: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["provider", "provider_type",
                                                                                   "lines"]))
    questions: tuple[str, ...] = ()

    @property
    def mapping(self) -> dict[str, str]:
        """Export column -> the toolkit's column, for the columns read."""
        read = self.columns[self.columns["target"] != ""]
        return dict(zip(read["column"], read["target"], strict=True))

    @property
    def ignored(self) -> pd.DataFrame:
        """The columns not read: ``column`` and ``reason``."""
        out = self.columns[self.columns["target"] == ""]
        return out[["column", "basis"]].rename(columns={"basis": "reason"}).reset_index(drop=True)

    def to_yaml(self, *, export: str | None = None) -> str:
        """The mapping.yaml text for this layout (``export``: the file name it names; default the
        sniffed file's name). Every header is quoted, so it reads back unchanged."""
        lines = [MappingLine(header=c, target=t or None, note=b.replace("\n", " "))
                 for c, t, b in self.columns[["column", "target", "basis"]].itertuples(index=False, name=None)]
        return render_mapping(lines, export=export or self.path.name, sheet=self.sheet if self.kind == "xlsx" else None,
                              header_row=self.header_row, delimiter=self.delimiter if self.kind == "csv" else None,
                              encoding=self.encoding if self.encoding not in (None, "utf-8") else None,
                              date_format=self.date_format, decimal_comma=self.decimal_comma,
                              century_pivot=self.century_pivot, title=f"{self.path.name}, {self.rows} rows")


def write_mapping(layout: ExportLayout, path: str | Path, *, export: str | None = None) -> Path:
    """Write ``layout``'s mapping.yaml to ``path`` (whole-file write: a reader never sees half).

    Examples
    --------
    >>> write_mapping(sniff_export("export.xlsx"), "practice/mapping.yaml")  # doctest: +SKIP
    PosixPath('practice/mapping.yaml')
    """
    return atomic_write(Path(path), layout.to_yaml(export=export))


def _date_format(cells: pd.Series) -> tuple[str | None, int | None, list[str]]:
    """The date format the service dates need, a century pivot for two-digit years, questions."""
    distinct = pd.Series(pd.unique(cells[cells != ""]), dtype="str")
    text = distinct.str.replace(r"[T ]+[0-9]{1,2}:[0-9]{2}.*$", "", regex=True)
    if not len(text):
        return None, None, []
    questions = []
    parts = text.str.extract(r"^([0-9]{1,2})([/.-])([0-9]{1,2})[/.-]([0-9]{2,4})$")
    fmt = None
    pivot = None
    serial = pd.to_numeric(text.where(text.str.fullmatch(r"[0-9]{5}(?:\.0+)?")), errors="coerce")
    if serial.between(20000, 80000).mean() >= 0.8:  # a spreadsheet's day numbers: 1954-10-03 .. 2119
        first = int(serial.dropna().iloc[0])
        questions.append(f"Service dates are a spreadsheet's day numbers ({first} is "
                         f"{(pd.Timestamp('1899-12-30') + pd.Timedelta(days=first)).date()}): date_format excel reads "
                         "them; check one against the practice system.")
        return EXCEL_DAYS, None, questions
    if parts[0].notna().mean() < 0.8 and text.str.contains("[A-Za-z]", regex=True).mean() >= 0.8:
        # months written as words: 4-Mar-2025, Mar 4, 2025, 4 March 2025
        for candidate in _WORD_MONTH_FORMATS:
            if pd.to_datetime(text, format=candidate, errors="coerce").notna().mean() >= 0.8:
                questions.append(f"Service dates are read as {candidate} ({text.iloc[0]!r}); check one against the "
                                 "practice system.")
                return candidate, None, questions
    if parts[0].notna().mean() >= 0.8:
        first = pd.to_numeric(parts[0], errors="coerce")
        second = pd.to_numeric(parts[2], errors="coerce")
        sep = parts[1].mode().iloc[0]
        day_first = bool((first > 12).any()) and not bool((second > 12).any())
        year = "%Y" if parts[3].str.len().mode().iloc[0] == 4 else "%y"
        if day_first or sep == ".":
            fmt = f"%d{sep}%m{sep}{year}"
            questions.append(f"Service dates are read day first ({fmt}); check one against the practice system.")
        elif sep != "/":
            fmt = f"%m{sep}%d{sep}{year}"
        if not day_first and sep != "." and not bool((first > 12).any()) and not bool((second > 12).any()):
            questions.append(f"No service date has a number above 12 ({text.iloc[0]!r}), so each could be read month "
                             f"first or day first: they are read month first. If the practice system writes the day "
                             f"first, set date_format: \"%d{sep}%m{sep}%Y\" in mapping.yaml.")
        if year == "%y":
            pivot = pd.Timestamp.today().year % 100 + 1
            fmt = fmt and fmt.replace("%y", "%Y")
            questions.append(f"Dates have two-digit years; century_pivot {pivot} reads 00-{pivot - 1:02d} as 20xx and "
                             f"{pivot:02d}-99 as 19xx. Confirm it in mapping.yaml.")
    return fmt, pivot, questions


#: Date formats with the month as a word, tried in order on dates that are not numbers.
_WORD_MONTH_FORMATS = ("%d-%b-%Y", "%d %b %Y", "%b %d, %Y", "%b %d %Y", "%d-%B-%Y", "%d %B %Y", "%B %d, %Y",
                       "%B %d %Y", "%d/%b/%Y", "%d.%b.%Y")


def _decimal_comma(cells: pd.Series) -> tuple[bool, list[str]]:
    text = pd.Series(pd.unique(cells[cells != ""]), dtype="str").str.replace(r"[\s$()]", "", regex=True)
    comma = text.str.fullmatch(r"-?[0-9.]*,[0-9]{2}").mean() if len(text) else 0.0
    point = text.str.fullmatch(r"-?[0-9,]*\.[0-9]{2}").mean() if len(text) else 0.0
    if comma >= 0.5 and point == 0:
        return True, ["Charges are written with a decimal comma (120,50 = $120.50): decimal_comma is set; confirm it."]
    return False, []


def _proposals(table) -> list[dict]:
    """One proposal per column: the header first, then the cells."""
    out = []
    for position, (name, raw) in enumerate(zip(table.headers, table.raw_headers, strict=True)):
        contents = column_contents(table.cells[name])
        money = money_header(raw) if raw else None
        if money and contents.kind in ("minutes", "units"):
            # whole numbers under a header of dollars ("Amount": 85, 120) are dollars, not minutes
            contents = replace(contents, kind="dollar amounts")
        target, rank = header_target(raw) if raw else (None, 0)
        private = header_key(raw) in PRIVATE_COLUMNS if raw else False
        if private:
            basis, target, rank = ignore_reason(raw), None, 0
        elif target is not None:
            basis = "header" + (f"; {contents.evidence}" if contents.kind else "")
        elif contents.kind in ("person names", "dates of birth"):
            basis = f"{contents.evidence}: looks like patients' {contents.kind.split()[-1]}; never read"
        elif money == "paid":  # "Ins Paid", "Balance": never the charge, whole dollars or cents
            basis = "money paid, owed or adjusted (the 835s say what was paid): not read"
        elif KIND_TARGETS.get(contents.kind) and not (raw and ignore_reason(raw).startswith(("identifies", "free"))):
            target, rank = KIND_TARGETS[contents.kind], 3
            basis = f"{contents.evidence}" + ("" if raw else " (no header)") + ": check"
        elif not raw:
            basis = "no header" + (f"; {contents.evidence}" if contents.kind else "") + ": not read"
        else:
            basis = ignore_reason(raw) + (f"; {contents.evidence}" if contents.kind else "")
        out.append({"column": name, "letter": column_letter(position), "raw": raw, "target": target, "rank": rank,
                    "basis": basis, "contents": contents.kind, "position": position})
    return out


def _resolve(proposals: list[dict]) -> None:
    """One column per single-valued target: one whose cells look like it (a provider column
    whose names carry the credential, the provider type, over one of bare names), then the
    best-ranked, then the leftmost."""
    by_target: dict[str, list[dict]] = {}
    for p in proposals:
        if p["target"]:
            by_target.setdefault(p["target"], []).append(p)
    for target, found in by_target.items():
        if target in JOINED_TARGETS:
            best = min(p["rank"] for p in found)
            keep = [p for p in found if p["rank"] <= max(best, 2)]
        else:
            keep = [min(found, key=lambda p: (KIND_TARGETS.get(p["contents"]) != target, p["rank"], p["position"]))]
        for p in found:
            if p not in keep:
                chosen = keep[0]["column"]
                p["basis"] = f"also looks like {target}; {chosen!r} is read as {target} (swap them here if wrong)"
                p["target"] = None


def sniff_export(path: str | Path, *, sheet: str | int | None = None) -> ExportLayout:
    """Find an export's header and propose how to read each of its columns.

    Parameters
    ----------
    path
        A CSV (comma, semicolon, tab or pipe), TSV, XLSX or Parquet export.
    sheet
        Excel sheet name or position (default: the first).

    Returns
    -------
    ExportLayout
        The header row, one proposal per column with its basis, the reading settings, the
        payers and providers found, and the questions for the owner.

    Examples
    --------
    >>> layout = sniff_export("export.xlsx")  # doctest: +SKIP
    >>> layout.header_row, layout.mapping["Date of Service"]  # doctest: +SKIP
    (3, 'service_date')
    >>> print(layout.to_yaml())  # doctest: +SKIP
    """
    table = read_export(path, sheet=sheet)
    cells = table.cells[~(table.cells == "").all(axis=1).to_numpy(bool)] if table.cells.shape[1] else table.cells
    proposals = _proposals(table)
    _resolve(proposals)
    columns = pd.DataFrame([{k: p[k] for k in ("column", "letter", "target", "basis", "contents")}
                            for p in proposals], columns=["column", "letter", "target", "basis", "contents"])
    columns["target"] = columns["target"].fillna("").astype("str")
    read = dict(zip(columns["target"], columns["column"], strict=False))
    questions: list[str] = []
    date_format, pivot, asked = (_date_format(cells[read["service_date"]]) if "service_date" in read
                                 else (None, None, []))
    questions += asked
    decimal_comma, asked = _decimal_comma(cells[read["charge"]]) if "charge" in read else (False, [])
    questions += asked
    missing = [c for c in REQUIRED_COLUMNS if c not in read and not (c == "provider_type" and "provider_id" in read)]
    if missing:
        questions.append(f"No column found for {', '.join(missing)}: map the export's column in mapping.yaml.")
    guessed = columns[columns["basis"].str.endswith(": check")]
    questions += [f"Column {c!r} is read as {t} from its cells alone; confirm it."
                  for c, t in zip(guessed["column"], guessed["target"], strict=True)]
    totals = int(np.logical_or.reduce([total_labels(cells[c]) for c in cells.columns[:3]]).sum()) \
        if len(cells) and len(cells.columns) else 0
    payers = _counts(cells, read.get("payer_id"), "payer")
    providers = _counts(cells, read.get("provider_id"), "provider")
    if len(providers):
        providers.insert(1, "provider_type", credential_types(providers["provider"]).to_numpy())
        if "provider_type" not in read and (providers["provider_type"] == "").any():
            names = ", ".join(providers.loc[providers["provider_type"] == "", "provider"].head(3))
            questions.append(f"No credential after the name of {names}: add the provider type (provider_types in "
                             "mapping.yaml, or a provider-type column).")
    return ExportLayout(path=table.path, kind=table.kind, sheet=table.sheet, header_row=table.header_row,
                        delimiter=table.delimiter, encoding=table.encoding, rows=len(cells), columns=columns,
                        total_rows=totals, date_format=date_format, decimal_comma=decimal_comma, century_pivot=pivot,
                        payers=payers, providers=providers, questions=tuple(questions))


def _counts(cells: pd.DataFrame, column: str | None, name: str) -> pd.DataFrame:
    if column is None or not len(cells):
        return pd.DataFrame({name: pd.Series(dtype="str"), "lines": pd.Series(dtype="int64")})
    values = cells[column]
    values = values[(values != "").to_numpy(bool) & ~total_labels(values)]
    counts = values.value_counts()
    out = pd.DataFrame({name: counts.index.astype("str"), "lines": counts.to_numpy(dtype=np.int64)})
    return out.sort_values(["lines", name], ascending=[False, True], ignore_index=True)

