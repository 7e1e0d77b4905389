"""Reading an export into canonical service lines: columns placed, rows checked, bad rows set
aside with their spreadsheet row number and every reason.

``rows in = rows accepted + rows set aside``, always. A TOTAL or subtotal row is set aside as
such (it is neither a patient nor an error). Only the columns the toolkit uses, and those
mapping.yaml declares safe to keep, are read; every other column is listed with the reason it
was left out.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError, QuarantineWarning
from analytics.intake.contents import KIND_TARGETS, column_contents, total_labels
from analytics.intake.files import ExportTable, read_export, sheet_names, workbook_has_formulas
from analytics.intake.headers import JOINED_TARGETS, header_target, ignore_reason
from analytics.intake.mapping import MappingSettings, read_mapping
from analytics.intake.normalise import Problems, ReadingContext, normalise
from analytics.privacy import PRIVATE_COLUMNS, header_key
from analytics.schemas import CPT_PATTERN, REQUIRED_COLUMNS

__all__ = ["Intake", "read_service_lines", "read_service_lines_many", "TOTAL_ROW", "ColumnPlan", "plan_columns",
           "timed_codes"]

#: The kind of problem of a TOTAL or subtotal row.
TOTAL_ROW = "total row"
#: Why a row of the report itself is left out (all of kind :data:`TOTAL_ROW`: not service lines).
TOTAL_REASON = "a TOTAL/subtotal row of the export, not a service line"
HEADER_REASON = "the header repeated (a page break), not a service line"
LONE_REASON = "a line of the report with one cell filled (a title, page number or footer), not a service line"


def _empty_problems() -> pd.DataFrame:
    return pd.DataFrame({"source_row": pd.Series(dtype="int64"), "column": pd.Series(dtype="str"),
                         "kind": pd.Series(dtype="str"), "reason": pd.Series(dtype="str"),
                         "source_file": pd.Series(dtype="str")})


def _empty_ignored() -> pd.DataFrame:
    return pd.DataFrame({"column": pd.Series(dtype="str"), "reason": pd.Series(dtype="str")})


@dataclass(eq=False)
class Intake:
    """The result of reading one export (or several).

    Attributes
    ----------
    lines
        Accepted rows: the canonical columns (dtypes in
        :data:`analytics.schemas.CANONICAL_DTYPES`), the engine's optional columns the export
        has (``prior_auth``, ``visits_before`` ...), the columns mapping.yaml keeps (as text),
        then ``source_row`` (the row number a spreadsheet shows) and ``source_file``.
    quarantine
        One row per row set aside: ``source_row``, ``reason`` (every reason, joined by
        ``"; "``), the row's values as text under the export's headers (only the columns the
        toolkit reads: never names, free text or other columns left out), and ``source_file``.
    rows_in
        Data rows read; fully blank rows are not counted.
    source
        The file (or files) read.
    problems
        Long form of the reasons: ``source_row``, ``column``, ``kind`` (a short label without
        values, for counts), ``reason`` and ``source_file``.
    dropped_columns
        Export columns left out because they identify a patient (names, dates of birth ...).
    column_map
        Export column -> the toolkit's column, as applied.
    ignored
        Every export column not read, with the reason: ``column`` and ``reason``.
    header_row
        The header's row number as the spreadsheet shows it (of the first file).
    notes
        What the owner should know of the figures read, though no row is wrong on its own
        (every charge $0.00; charges that are formulas Excel never calculated).
    """

    lines: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int
    source: str = ""
    problems: pd.DataFrame = field(default_factory=_empty_problems)
    dropped_columns: tuple[str, ...] = ()
    column_map: dict[str, str] = field(default_factory=dict)
    ignored: pd.DataFrame = field(default_factory=_empty_ignored)
    header_row: int = 1
    notes: tuple[str, ...] = ()

    @property
    def accepted(self) -> int:
        """Number of accepted rows."""
        return len(self.lines)

    @property
    def quarantined(self) -> int:
        """Number of rows set aside (TOTAL rows included)."""
        return len(self.quarantine)

    @property
    def total_rows(self) -> int:
        """Rows set aside because they are the report's own, not service lines: TOTAL and
        subtotal rows, the header repeated at page breaks, lines with one cell (titles, page
        numbers, footers)."""
        found = self.problems[self.problems["kind"] == TOTAL_ROW]
        return int(found[["source_file", "source_row"]].drop_duplicates().shape[0])

    @property
    def set_aside(self) -> int:
        """Service lines set aside for a problem (TOTAL rows not counted)."""
        return self.quarantined - self.total_rows

    def reason_counts(self) -> dict[str, int]:
        """Rows set aside per kind of problem, most frequent first (a row with two kinds of
        problem counts once under each)."""
        per_row = self.problems.drop_duplicates(["source_file", "source_row", "kind"])
        return {str(k): int(v) for k, v in per_row["kind"].value_counts().items()}

    def report(self) -> str:
        """One line reconciling the counts: ``file: rows in N = accepted A + quarantined Q``."""
        totals = f" (of which {self.total_rows} TOTAL row(s))" if self.total_rows else ""
        return f"{self.source}: rows in {self.rows_in} = accepted {self.accepted} + quarantined {self.quarantined}" \
               f"{totals}"

    def __str__(self) -> str:
        return self.report()


@dataclass(frozen=True)
class ColumnPlan:
    """Where each export column goes: ``read`` (header -> the toolkit's column; several headers
    may fill a joined column such as ``dx_codes``), ``kept`` (as text), ``private`` (left out:
    they identify a patient) and ``ignored`` (header -> reason, private ones included)."""

    read: dict[str, str]
    kept: tuple[str, ...]
    private: tuple[str, ...]
    ignored: dict[str, str]


def _explicit_target(header: str, raw: str, explicit: dict[str, str | None], by_key: dict[str, str | None]
                     ) -> tuple[bool, str | None]:
    for name in (header, raw):
        if name and name in explicit:
            return True, explicit[name]
    for name in (header, raw):
        if name and header_key(name) in by_key:
            return True, by_key[header_key(name)]
    return False, None


def plan_columns(table: ExportTable, settings: MappingSettings) -> ColumnPlan:
    """Place every column of ``table``: mapping.yaml first, then the known headers, then
    ``keep``; the rest is ignored with its reason (an unnamed column's contents are named, so
    the owner can map it)."""
    explicit = dict(settings.columns)
    by_key = {header_key(k): v for k, v in explicit.items()}
    keep = {header_key(k) for k in settings.keep}
    candidates: dict[str, list[tuple[int, int, str]]] = {}
    kept: list[str] = []
    private: list[str] = []
    ignored: dict[str, str] = {}
    where = settings.source if settings.source != "mapping" else str(table.path)
    for position, (header, raw) in enumerate(zip(table.headers, table.raw_headers, strict=True)):
        named, target = _explicit_target(header, raw, explicit, by_key)
        rank = 0
        if named and target is None:
            ignored[header] = "mapped to null in mapping.yaml"
            continue
        if not named:
            if header_key(raw) in PRIVATE_COLUMNS:
                private.append(header)
                ignored[header] = ignore_reason(raw)
                continue
            target, rank = header_target(raw) if raw else (None, 0)
        if target is not None:
            candidates.setdefault(target, []).append((rank, position, header))
        elif header_key(header) in keep or header_key(raw) in keep:
            kept.append(header)
        elif not raw:
            ignored[header] = _unnamed_reason(header, table.cells[header])
        else:
            ignored[header] = ignore_reason(raw)
            if ignored[header].startswith("identifies"):
                private.append(header)
    read: dict[str, str] = {}
    for target, found in candidates.items():
        best = min(rank for rank, _, _ in found)
        if target in JOINED_TARGETS:
            winners = sorted(found, key=lambda f: f[1])
        else:
            winners = [f for f in found if f[0] == best]
            if len(winners) > 1:
                names = ", ".join(repr(w[2]) for w in winners)
                raise InputError(
                    f"{where}: columns {names} all look like {target}. Keep one in mapping.yaml, e.g. "
                    f'columns: {{"{winners[0][2]}": {target}, "{winners[1][2]}": null}}.', where=where)
            for _, _, loser in (f for f in found if f[0] != best):
                ignored[loser] = f"another column is read as {target}"
        for _, _, header in winners:
            read[header] = target
    return ColumnPlan(read=read, kept=tuple(kept), private=tuple(private), ignored=ignored)


def _unnamed_reason(header: str, cells: pd.Series) -> str:
    contents = column_contents(cells)
    target = KIND_TARGETS.get(contents.kind)
    if target:
        return (f"no header; its {contents.evidence.removeprefix('cells: ')}: to read it, map it in mapping.yaml "
                f'("{header}": {target})')
    return "no header" + (f"; its {contents.evidence.removeprefix('cells: ')}" if contents.kind else "") + \
        ": not read"


def _check_required(plan: ColumnPlan, settings: MappingSettings, table: ExportTable, where: str) -> None:
    present = set(plan.read.values()) | set(settings.defaults or {})
    if "provider_id" in present:
        present.add("provider_type")  # the credential after the provider's name, row by row
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if not missing:
        return
    found = ", ".join(repr(h) for h in table.headers) or "(none)"
    example = missing[0]
    raise InputError(
        f"{where}: missing required column(s) {', '.join(missing)}. Columns found (header on row "
        f"{table.header_row}): {found}.{_other_sheets(table)} If the export names them differently, map them in "
        f'mapping.yaml (columns: {{"Your Column": {example}}}, --mapping FILE); if the header is on another row, set '
        f'header_row there; a value shared by every row can be a default (defaults: {{payer_id: "aetna"}}).',
        where=where)


def _other_sheets(table: ExportTable) -> str:
    """For a workbook of several sheets: which sheet was read and how to name another."""
    if table.kind != "xlsx":
        return ""
    try:
        names = sheet_names(table.path)
    except Exception:  # noqa: BLE001 - only a hint: the sheet was readable a moment ago
        return ""
    if len(names) < 2:
        return ""
    sheet = table.sheet if isinstance(table.sheet, str) else names[int(table.sheet or 0)]
    listed = ", ".join(repr(n) for n in names)
    return (f" This is sheet {sheet!r} of a workbook with sheets {listed}: if the charges are on another, name it "
            f"(--sheet NAME for init and intake, or sheet: in mapping.yaml).")


def _mapped_text(table: ExportTable, plan: ColumnPlan) -> pd.DataFrame:
    """The toolkit's columns as text; columns of a joined target are joined with commas."""
    out: dict[str, pd.Series] = {}
    for header, target in plan.read.items():
        values = table.cells[header]
        if target in out:
            both = (out[target] != "") & (values != "")
            out[target] = (out[target] + np.where(both, ",", "") + values).astype("str")
        else:
            out[target] = values
    return pd.DataFrame(out, index=table.cells.index)


def _total_rows(table: ExportTable, mapped: pd.DataFrame) -> np.ndarray:
    """Rows that are the export's TOTAL or subtotal lines: no code, and a cell reading "Total"."""
    cpt = mapped["cpt"].str.upper().str.strip() if "cpt" in mapped else pd.Series("", index=mapped.index)
    maybe = np.flatnonzero(~cpt.str.fullmatch(rf"(?:{CPT_PATTERN})\S*").to_numpy(bool))
    found = np.zeros(len(mapped), dtype=bool)
    if len(maybe):
        cells = table.cells.iloc[maybe]
        hit = np.zeros(len(maybe), dtype=bool)
        for name in cells.columns:
            hit |= total_labels(cells[name])
        found[maybe[hit]] = True
    return found


def _report_rows(table: ExportTable, mapped: pd.DataFrame, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the report itself rather than service lines, none with a code: the header
    repeated at a page break (half or more of its filled cells, and at least two, read as
    their column's header), and lines with one cell filled (a title, ``Page 2 of 7``,
    ``Record count: 655``, a printed-by line, an unlabelled sum)."""
    n = len(table.cells)
    none = np.zeros(n, dtype=bool)
    if not n or not table.cells.shape[1]:
        return none, none
    cpt = mapped["cpt"].str.upper().str.strip() if "cpt" in mapped else pd.Series("", index=mapped.index)
    codeless = ~cpt.str.fullmatch(rf"(?:{CPT_PATTERN})\S*").to_numpy(bool) & ~totals
    filled = np.zeros(n, dtype=np.int64)
    as_header = np.zeros(n, dtype=np.int64)
    for raw, name in zip(table.raw_headers, table.headers, strict=True):
        cells = table.cells[name]
        filled += (cells != "").to_numpy(bool)
        if raw.strip():
            as_header += (cells.str.casefold() == raw.strip().casefold()).to_numpy(bool)
    headers = codeless & (as_header >= 2) & (2 * as_header >= filled)
    return headers, codeless & ~headers & (filled == 1)


def timed_codes() -> frozenset[str]:
    """The codes the catalog counts by minutes (their lines need minutes)."""
    from analytics.refdata import load_reference

    codes = load_reference().codes
    return frozenset(codes.loc[codes["timed"].astype("str").str.lower().isin(["true", "1"]), "cpt"].astype("str"))


def _read_one(path: str | os.PathLike[str], settings: MappingSettings, context: ReadingContext, *,
              id_prefix: str = "", earlier_ids: pd.Series | None = None) -> Intake:
    table = read_export(path, sheet=settings.sheet, header_row=settings.header_row, delimiter=settings.delimiter,
                        encoding=settings.encoding)
    where = str(table.path)
    blank = (table.cells == "").all(axis=1).to_numpy(bool) if table.cells.shape[1] else np.ones(len(table.cells),
                                                                                               bool)
    cells = table.cells[~blank].reset_index(drop=True)
    source_row = table.rows[~blank]
    table = dataclasses.replace(table, cells=cells, rows=source_row)
    rows_in = len(cells)

    plan = plan_columns(table, settings)
    _check_required(plan, settings, table, where)
    mapped = _mapped_text(table, plan)
    totals = _total_rows(table, mapped)
    headers, lone = _report_rows(table, mapped, totals)
    canonical, problems = normalise(mapped, settings, source_row, context, id_prefix=id_prefix,
                                    earlier_ids=earlier_ids)
    found = problems.frame()
    found = found[~np.isin(found["pos"].to_numpy(), np.flatnonzero(totals | headers | lone))]
    problems = Problems()
    problems.add_frame(found)
    problems.add(totals, "", TOTAL_ROW, TOTAL_REASON)
    problems.add(headers, "", TOTAL_ROW, HEADER_REASON)
    problems.add(lone, "", TOTAL_ROW, LONE_REASON)
    # The checks above are the contract of analytics.schemas.ServiceLineSchema, run lazily on every
    # row; the accepted lines satisfy it (the tests validate them with it). Building the pandera
    # schema costs seconds per process, more than reading a small export.
    found = problems.frame()
    bad = np.isin(np.arange(rows_in), found["pos"].to_numpy())

    name = table.path.name
    lines = canonical[~bad].assign(**{h: cells.loc[~bad, h] for h in plan.kept})
    lines = lines.assign(source_row=source_row[~bad], source_file=name).reset_index(drop=True)
    order = found.assign(order=np.arange(len(found))).sort_values(["pos", "order"], kind="stable")
    joined = order.groupby("pos", sort=True)["reason"].agg("; ".join)
    shown = [h for h in table.headers if h in plan.read or h in plan.kept]
    original = cells.loc[bad, shown]
    quarantine = pd.concat([
        pd.DataFrame({"source_row": source_row[bad], "reason": joined.reindex(np.flatnonzero(bad)).to_numpy()},
                     index=original.index).astype({"reason": "str"}),
        original,
    ], axis=1).assign(source_file=name).reset_index(drop=True)
    problem_table = pd.DataFrame({
        "source_row": source_row[found["pos"].to_numpy()], "column": found["column"].to_numpy(),
        "kind": found["kind"].to_numpy(), "reason": found["reason"].to_numpy(),
    }).astype({"column": "str", "kind": "str", "reason": "str"})
    problem_table = problem_table.sort_values("source_row", kind="stable").reset_index(drop=True)
    if rows_in != len(lines) + len(quarantine):  # the reconciliation the toolkit promises
        raise AssertionError(f"{where}: rows in {rows_in} != accepted {len(lines)} + quarantined {len(quarantine)}")
    ignored = pd.DataFrame({"column": list(plan.ignored), "reason": list(plan.ignored.values())},
                           dtype="str") if plan.ignored else _empty_ignored()
    return Intake(lines=lines, quarantine=quarantine, rows_in=rows_in, source=where,
                  problems=problem_table.assign(source_file=name), dropped_columns=plan.private,
                  column_map=dict(plan.read), ignored=ignored, header_row=table.header_row,
                  notes=(*table.notes, *_charge_notes(table.path, lines, problem_table, plan.read)))


def _charge_notes(path: Path, lines: pd.DataFrame, problems: pd.DataFrame, read: Mapping[str, str]) -> tuple[str, ...]:
    """Notes on charges no row check catches: every charge $0.00, and in a workbook, charges that
    are formulas (a workbook keeps each formula's last calculated value, and one written by a
    program other than a spreadsheet may have none: the cell reads empty or 0)."""
    header = next((h for h, target in read.items() if target == "charge"), "charge")
    zero = len(lines) > 0 and "charge" in lines and bool((lines["charge"].fillna(0) == 0).all())
    empty = int((problems["kind"] == "charge is empty").sum()) if len(problems) else 0
    if not zero and not empty:
        return ()
    formulas = path.suffix.lower() in (".xlsx", ".xlsm") and workbook_has_formulas(path)
    why = (f" {path.name} holds formulas, and a workbook keeps only each formula's last calculated value (none "
           "if it was written by a program and never opened in a spreadsheet): open it in Excel or LibreOffice, "
           "save it, and read it again.") if formulas else ""
    notes = []
    if zero:
        notes.append(f"Every charge read from column '{header}' of {path.name} is $0.00: the gross charges and "
                     f"every figure against them will be $0.00.{why or ' Check that mapping.yaml reads the charge column.'}")
    elif formulas and empty:
        notes.append(f"{empty:,} row(s) of {path.name} have an empty charge in column '{header}'.{why}")
    return tuple(notes)


def _quarantine_message(intake: Intake) -> str:
    rows = intake.quarantine["source_row"].astype(str).tolist()
    shown = ", ".join(rows[:10]) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
    return (f"{intake.source}: {intake.quarantined} of {intake.rows_in} row(s) set aside (spreadsheet rows {shown}); "
            "`python -m analytics intake FILE --out DIR` lists each row's reasons in DIR/quarantine.csv.")


def _context(today: Any) -> ReadingContext:
    day = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    return ReadingContext(timed_codes=timed_codes(), today=day)


def read_service_lines(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, Any] | str | os.PathLike[str] | MappingSettings | None = None,
    sheet: str | int | None = None,
    defaults: Mapping[str, Any] | None = None,
    header_row: int | None = None,
    today: Any = None,
) -> Intake:
    """Read a practice-management export of service lines, checking every row.

    Every value is read as text (so codes keep their form), under the header found below any
    title rows. Columns are placed by mapping.yaml, else by their headers (the toolkit's
    names, compared ignoring case, spaces and punctuation, then common export spellings:
    "Date of Service", "CPT Code", "Primary Insurance", "Dx 1" .. "Dx 12"); several
    diagnosis or modifier columns are joined. A provider's credential written after the
    name ("Hannah Reyes, PT") gives the provider type when the export has no type column.
    Only those columns, and the ones mapping.yaml lists under ``keep``, are read: the others
    are listed in :attr:`Intake.ignored` with the reason (names, dates of birth and free
    text are never read).

    All rows are checked at once: required values present; dates real, four-digit years
    (unless ``century_pivot``) and no service in the future; CPT/HCPCS shape; minutes on
    every timed code; amounts unambiguous (``120,50`` needs ``decimal_comma``); modifiers two
    characters, at most four; ICD-10-CM diagnoses; NPI check digits; line ids unique. A row
    that breaks a rule goes to ``quarantine`` with every reason and its row number as the
    spreadsheet shows it; a TOTAL or subtotal row goes there as such. ``rows_in == accepted
    + quarantined`` always holds; fully blank rows are skipped and not counted.

    Parameters
    ----------
    path
        A ``.csv``/``.txt``, ``.tsv``, ``.xlsx`` or ``.parquet`` export.
    mapping
        A mapping.yaml path, a dict shaped like one, or a dict of export header -> column
        (``{"Proc Code": "cpt"}``; ``None`` ignores a column). The format is in
        :mod:`analytics.intake`.
    sheet
        Excel sheet name or position (default: the mapping's, else the first).
    defaults
        Column -> value where the column is absent or a cell blank (``{"payer_id": "aetna"}``).
    header_row
        The header's row number as the spreadsheet shows it (default: the mapping's, else found).
    today
        The day the export is read (default: today); a date of service after it is set aside.

    Returns
    -------
    Intake
        ``lines``, ``quarantine``, ``rows_in``, ``ignored`` and the reconciliation in ``report()``.

    Raises
    ------
    InputError
        The file is missing or unreadable, the mapping is malformed, or a required column is
        absent (the message names the columns found and the fix).

    Warns
    -----
    QuarantineWarning
        When any row was set aside.

    Examples
    --------
    >>> intake = read_service_lines("export.csv", mapping={"Proc": "cpt"})  # doctest: +SKIP
    >>> print(intake)  # doctest: +SKIP
    export.csv: rows in 120 = accepted 117 + quarantined 3
    """
    settings = _settings(mapping, defaults, sheet, header_row)
    intake = _read_one(path, settings, _context(today))
    if intake.quarantined:
        warnings.warn(_quarantine_message(intake), QuarantineWarning, stacklevel=2)
    return intake


def _settings(mapping: Any, defaults: Mapping[str, Any] | None, sheet: str | int | None,
              header_row: int | None) -> MappingSettings:
    if isinstance(mapping, MappingSettings):
        if defaults or sheet is not None or header_row is not None:
            return dataclasses.replace(mapping, defaults={**(mapping.defaults or {}), **(defaults or {})},
                                       sheet=mapping.sheet if sheet is None else sheet,
                                       header_row=mapping.header_row if header_row is None else header_row)
        return mapping
    return read_mapping(mapping, defaults=defaults, sheet=sheet, header_row=header_row)


def _concat_text(frames: list[pd.DataFrame]) -> pd.DataFrame:
    combined = pd.concat(frames, ignore_index=True)
    text = [c for c in combined.columns if combined[c].dtype == "str" or combined[c].dtype == object]
    return combined.astype({c: "str" for c in text}).fillna({c: "" for c in text})


def read_service_lines_many(
    paths: Iterable[str | os.PathLike[str]],
    *,
    mapping: Mapping[str, Any] | str | os.PathLike[str] | MappingSettings | None = None,
    sheet: str | int | None = None,
    defaults: Mapping[str, Any] | None = None,
    today: Any = None,
) -> Intake:
    """Read several exports with the same mapping and stack them.

    ``source_file`` and ``source_row`` locate each line. Line ids stay unique across the
    files: generated ids name their file (``jan.csv:L2``), and a line id already accepted
    from an earlier file (overlapping exports) is set aside rather than counted twice.

    Examples
    --------
    >>> intake = read_service_lines_many(["jan.csv", "feb.csv"])  # doctest: +SKIP
    >>> intake.rows_in == intake.accepted + intake.quarantined  # doctest: +SKIP
    True
    """
    settings = _settings(mapping, defaults, sheet, None)
    context = _context(today)
    parts: list[Intake] = []
    earlier = pd.Series(dtype="str")
    for path in paths:
        part = _read_one(path, settings, context, id_prefix=f"{Path(path).name}:", earlier_ids=earlier)
        found = part.lines["source_file"] + " row " + part.lines["source_row"].astype("str")
        earlier = pd.concat([earlier, pd.Series(found.to_numpy(), index=part.lines["line_id"])])
        parts.append(part)
    if not parts:
        raise InputError("No export to read: give at least one file.")
    column_map: dict[str, str] = {}
    for part in parts:
        column_map.update(part.column_map)
    intake = Intake(
        lines=_concat_text([p.lines for p in parts]),
        quarantine=_concat_text([p.quarantine for p in parts]),
        rows_in=sum(p.rows_in for p in parts),
        source=", ".join(p.source for p in parts),
        problems=pd.concat([p.problems for p in parts], ignore_index=True),
        dropped_columns=tuple(dict.fromkeys(c for p in parts for c in p.dropped_columns)),
        column_map=column_map,
        ignored=pd.concat([p.ignored for p in parts], ignore_index=True).drop_duplicates(ignore_index=True),
        header_row=parts[0].header_row,
        notes=tuple(n for p in parts for n in p.notes),
    )
    if intake.quarantined:
        warnings.warn(_quarantine_message(intake), QuarantineWarning, stacklevel=2)
    return intake
