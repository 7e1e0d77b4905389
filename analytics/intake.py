"""Service-line intake: practice-management exports in, canonical service lines out.

A practice-management system exports one row per billed service line (CSV, Excel or
Parquet). :func:`read_service_lines` reads every value as text (so CPT ``97140`` never
becomes ``97140.0`` and ``"NA"`` stays a string), maps the export's column names to the
canonical ones in :data:`analytics.schemas.CANONICAL_COLUMNS`, normalises codes, dates and
numbers, and checks every row at once. Rows that break a rule are not dropped: they go to
a quarantine table with their spreadsheet row number and every reason, so that::

    rows in = rows accepted + rows quarantined

Patient names, dates of birth and similar columns are dropped as the file is read, and
:func:`analytics.privacy.pseudonymise` (re-exported here) replaces patient ids by salted
hashes before anything leaves the practice.

Command line::

    python -m analytics intake export.csv --out out/ [--mapping mapping.yaml] [--json]
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import yaml

from analytics.exceptions import InputError, QuarantineWarning
from analytics.privacy import (
    DEFAULT_SALT,
    NEVER_READ_COLUMNS,
    PRIVATE_COLUMNS,
    PSEUDONYMISED_KEY,
    SALT_ENV,
    header_key,
    pseudonymise,
)
from analytics.schemas import (
    CANONICAL_COLUMNS,
    CANONICAL_DTYPES,
    CPT_PATTERN,
    PROVIDER_TYPES,
    REQUIRED_COLUMNS,
    ServiceLineSchema,
    check_modifiers,
    dx_list_problems,
    normalise_dx_codes,
    normalise_modifiers,
    normalise_provider_type,
    valid_npi,
)

__all__ = [
    "Intake",
    "read_service_lines",
    "read_service_lines_many",
    "pseudonymise",
    "PRIVATE_COLUMNS",
    "DEFAULT_SALT",
    "SALT_ENV",
    "PSEUDONYMISED_KEY",
]

_MODIFIER_COLUMNS = ("modifier_1", "modifier_2", "modifier_3", "modifier_4")
_MODIFIER_HEADER = re.compile(r"mod(?:ifier)?_?([1-4])")
_TARGETS = frozenset(CANONICAL_COLUMNS) | frozenset(_MODIFIER_COLUMNS)

# Frequent export headers (snake case) for canonical columns. An explicit mapping wins.
_ALIASES = {
    "line_control_number": "line_id",
    "row_id": "line_id",
    "claim": "claim_id",
    "claim_number": "claim_id",
    "claim_no": "claim_id",
    "visit_number": "visit_id",
    "encounter_id": "visit_id",
    "patient_account": "patient_id",
    "patient_account_number": "patient_id",
    "account_number": "patient_id",
    "patient_number": "patient_id",
    "chart_number": "patient_id",
    "mrn": "patient_id",
    "date_of_service": "service_date",
    "dos": "service_date",
    "service_date_from": "service_date",
    "dos_from": "service_date",
    "rendering_provider_id": "provider_id",
    "therapist_id": "provider_id",
    "provider_credential": "provider_type",
    "credential": "provider_type",
    "payer": "payer_id",
    "payer_code": "payer_id",
    "insurance_id": "payer_id",
    "cpt_code": "cpt",
    "cpt_hcpcs": "cpt",
    "procedure_code": "cpt",
    "proc_code": "cpt",
    "hcpcs": "cpt",
    "hcpcs_code": "cpt",
    "mins": "minutes",
    "treatment_minutes": "minutes",
    "modifier": "modifiers",
    "mods": "modifiers",
    "dx": "dx_codes",
    "dx_code": "dx_codes",
    "diagnosis": "dx_codes",
    "diagnosis_codes": "dx_codes",
    "diagnoses": "dx_codes",
    "icd10": "dx_codes",
    "icd_10": "dx_codes",
    "icd10_codes": "dx_codes",
    "charges": "charge",
    "charge_amount": "charge",
    "billed_amount": "charge",
    "units": "units_billed",
    "billed_units": "units_billed",
    "days_or_units": "units_billed",
    "body_part": "body_region",
    "region": "body_region",
    "rx_on_file": "prescription_on_file",
    "prescription": "prescription_on_file",
    "submitted_date": "submission_date",
    "date_submitted": "submission_date",
    "pos": "place_of_service",
    "npi": "rendering_npi",
    "rendering_provider_npi": "rendering_npi",
    "referring_provider_npi": "referring_npi",
}

# Place of service 11 = office (CMS-1500 item 24B).
_BUILTIN_DEFAULTS = {"place_of_service": "11"}
_CONFIG_KEYS = ("columns", "date_format", "defaults", "provider_types", "sheet")
# ISO, US (as practice-management systems in the US export them) and compact X12 style.
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y", "%Y%m%d")
_EARLIEST = pd.Timestamp("1900-01-01")
_LATEST = pd.Timestamp("2099-12-31")
_BOOLEANS = {
    "yes": True,
    "y": True,
    "true": True,
    "t": True,
    "1": True,
    "no": False,
    "n": False,
    "false": False,
    "f": False,
    "0": False,
}
_PROBLEM_COLUMNS = ("source_row", "column", "kind", "reason")


def _empty_problems() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_row": pd.Series(dtype="int64"),
            "column": pd.Series(dtype="str"),
            "kind": pd.Series(dtype="str"),
            "reason": pd.Series(dtype="str"),
            "source_file": pd.Series(dtype="str"),
        }
    )


@dataclass(eq=False)
class Intake:
    """The result of reading one export (or several).

    Attributes
    ----------
    lines
        Accepted rows: the canonical columns (dtypes in
        :data:`analytics.schemas.CANONICAL_DTYPES`), then ``source_row`` (the row number a
        spreadsheet shows, header = row 1), ``source_file`` and any extra export columns
        as text.
    quarantine
        One row per rejected input row: ``source_row``, ``reason`` (every reason, joined
        by ``"; "``), the row's original values as text under the export's own column
        names (privacy columns excluded), and ``source_file``.
    rows_in
        Data rows read; fully blank rows are not counted.
    source
        The file (or files) read.
    problems
        Long form of the reasons: one row per problem, with ``source_row``, ``column``,
        ``kind`` (a short label without values, used for counts) and ``reason``.
    dropped_columns
        Export columns dropped for privacy (names, dates of birth, member ids, ...).
    column_map
        Export column -> canonical column, as applied.
    """

    lines: pd.DataFrame
    quarantine: pd.DataFrame
    rows_in: int
    source: str = ""
    problems: pd.DataFrame = field(default_factory=_empty_problems)
    dropped_columns: tuple[str, ...] = ()
    column_map: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        """Number of accepted rows."""
        return len(self.lines)

    @property
    def quarantined(self) -> int:
        """Number of quarantined rows."""
        return len(self.quarantine)

    def reason_counts(self) -> dict[str, int]:
        """Quarantined rows per kind of problem, most frequent first.

        A row with two kinds of problem counts once under each.
        """
        per_row = self.problems.drop_duplicates(["source_file", "source_row", "kind"])
        counts = per_row["kind"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}

    def report(self) -> str:
        """One line reconciling the counts: ``file: rows in N = accepted A + quarantined Q``."""
        return (
            f"{self.source}: rows in {self.rows_in} = accepted {self.accepted}"
            f" + quarantined {self.quarantined}"
        )

    def __str__(self) -> str:
        return self.report()


@dataclass(frozen=True)
class _Config:
    columns: dict[str, str | None]
    date_format: str | None
    defaults: dict[str, str]
    provider_types: dict[str, str]
    sheet: str | int | None


@dataclass
class _Plan:
    rename: dict[str, str]
    private: list[str]
    extras: list[str]


class _Problems:
    """Collects problems as (row position, column, kind, reason), in check order."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(self, mask: Any, column: str, kind: str, *parts: pd.Series | str) -> None:
        """Record a problem for the rows in ``mask``; the reason is ``parts`` joined, where a
        Series part gives each row's own value (messages are built for these rows only)."""
        hit = np.asarray(mask, dtype=bool)
        if not hit.any():
            return
        pos = np.flatnonzero(hit)
        text = np.full(len(pos), "", dtype=object)
        for part in parts:
            text = text + (part if isinstance(part, str) else part.iloc[pos].to_numpy(dtype=object))
        self._parts.append(
            pd.DataFrame({"pos": pos, "column": column, "kind": kind, "reason": text})
        )

    def add_frame(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self._parts.append(frame[["pos", "column", "kind", "reason"]])

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame(
                {
                    "pos": pd.Series(dtype="int64"),
                    "column": pd.Series(dtype="str"),
                    "kind": pd.Series(dtype="str"),
                    "reason": pd.Series(dtype="str"),
                }
            )
        out = pd.concat(self._parts, ignore_index=True)
        return out.astype({"pos": "int64", "column": "str", "kind": "str", "reason": "str"})


# --------------------------------------------------------------------------- reading


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Render typed columns (from Parquet) as the text a CSV export would hold."""
    out = {}
    for name in frame.columns:
        values = frame[name]
        missing = values.isna().to_numpy()
        if pd.api.types.is_bool_dtype(values.dtype):
            text = values.map({True: "true", False: "false"})
        elif pd.api.types.is_datetime64_any_dtype(values.dtype):
            has_time = (values.dropna() != values.dropna().dt.normalize()).any()
            text = values.dt.strftime("%Y-%m-%d %H:%M:%S" if has_time else "%Y-%m-%d")
        elif pd.api.types.is_float_dtype(values.dtype):
            number = values.astype("float64")
            whole = (
                np.isfinite(number) & (number == np.floor(number)) & (number.abs() < 1e15)
            ).to_numpy()
            text = number.astype("str")
            text[whole] = number[whole].astype("int64").astype("str")
        else:
            text = values.astype(object).where(~missing, "").astype("str")
        out[str(name).strip()] = text.astype("str").where(~missing, "")
    return pd.DataFrame(out, index=frame.index)


def _read_table(path: Path, sheet: str | int | None) -> pd.DataFrame:
    """Every value of the file as stripped text (missing -> ``""``), headers stripped."""
    if not path.exists():
        raise InputError(f"{path}: no such file.", where=str(path))
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            frame = _read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        elif suffix in (".xlsx", ".xlsm"):
            frame = pd.read_excel(
                path,
                sheet_name=0 if sheet is None else sheet,
                dtype=str,
                keep_default_na=False,
                engine="openpyxl",
            )
        elif suffix in (".parquet", ".pq"):
            frame = _as_text(pd.read_parquet(path))
        elif suffix == ".xls":
            raise InputError(
                f"{path}: old-style .xls workbooks are not read. Save it as .xlsx or CSV.",
                where=str(path),
            )
        else:
            raise InputError(
                f"{path}: unknown file type {suffix!r}. Give a .csv, .tsv, .xlsx or .parquet file.",
                where=str(path),
            )
    except pd.errors.EmptyDataError as exc:
        raise InputError(
            f"{path}: the file is empty (not even a header row). Export it with its header.",
            where=str(path),
        ) from exc
    except pd.errors.ParserError as exc:
        raise InputError(
            f"{path}: cannot be read as a table ({exc}). Check the delimiter and quoting.",
            where=str(path),
        ) from exc
    except (zipfile.BadZipFile, pyarrow.ArrowException) as exc:
        raise InputError(
            f"{path}: not a readable {suffix} file ({exc}). Export it again.", where=str(path)
        ) from exc
    except ValueError as exc:
        if "Worksheet" in str(exc) or "sheet" in str(exc).lower():
            raise InputError(f"{path}: {exc}. Pass sheet= with an existing sheet name.") from exc
        raise
    frame.columns = [str(c).strip() for c in frame.columns]
    text = pd.DataFrame(
        {name: frame[name].astype("str").fillna("").str.strip() for name in frame.columns},
        index=frame.index,
    )
    unnamed = [c for c in text.columns if c.startswith("Unnamed: ") and (text[c] == "").all()]
    return text.drop(columns=unnamed).reset_index(drop=True)


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    options = {
        "sep": sep,
        "dtype": str,
        "keep_default_na": False,
        # Blank lines are kept so row numbers match what a spreadsheet shows.
        "skip_blank_lines": False,
    }
    try:
        return pd.read_csv(path, encoding="utf-8-sig", **options)
    except UnicodeDecodeError:
        # Exports from Windows practice-management systems are often cp1252.
        return pd.read_csv(path, encoding="cp1252", **options)


# --------------------------------------------------------------------------- mapping


def _load_config(
    mapping: Mapping[str, Any] | str | os.PathLike[str] | None,
    defaults: Mapping[str, Any] | None,
    sheet: str | int | None,
) -> _Config:
    where = "mapping"
    if mapping is None:
        spec: dict[str, Any] = {}
    elif isinstance(mapping, (str, os.PathLike)):
        where = str(mapping)
        try:
            spec = yaml.safe_load(Path(mapping).read_text(encoding="utf-8")) or {}
        except FileNotFoundError as exc:
            raise InputError(f"{where}: mapping file not found.", where=where) from exc
        except yaml.YAMLError as exc:
            raise InputError(f"{where}: not valid YAML ({exc}).", where=where) from exc
        if not isinstance(spec, dict):
            raise InputError(
                f"{where}: expected a YAML mapping with a 'columns:' section.", where=where
            )
    elif isinstance(mapping, Mapping):
        spec = (
            dict(mapping)
            if isinstance(mapping.get("columns"), Mapping)
            else {"columns": dict(mapping)}
        )
    else:
        raise InputError(
            f"mapping must be a dict or a YAML file path, not {type(mapping).__name__}."
        )

    unknown = sorted(set(map(str, spec)) - set(_CONFIG_KEYS))
    if unknown:
        raise InputError(
            f"{where}: unknown section(s) {', '.join(unknown)}; "
            f"the sections are {', '.join(_CONFIG_KEYS)}.",
            where=where,
        )
    for section in ("columns", "defaults", "provider_types"):
        if not isinstance(spec.get(section) or {}, Mapping):
            raise InputError(
                f"{where}: '{section}' must be a mapping of names to values, "
                f"e.g. {section}: {{Proc Code: cpt}}.",
                where=where,
            )
    columns = spec.get("columns") or {}
    bad = {str(k): v for k, v in columns.items() if v is not None and str(v) not in _TARGETS}
    if bad:
        first, target = next(iter(bad.items()))
        raise InputError(
            f"{where}: {first!r} is mapped to {target!r}, which is not a canonical column. "
            f"Map to one of: {', '.join(CANONICAL_COLUMNS)}, modifier_1..modifier_4, or to "
            "null to ignore the column.",
            where=where,
        )

    merged = {**_BUILTIN_DEFAULTS, **(spec.get("defaults") or {}), **(defaults or {})}
    not_canonical = sorted(set(map(str, merged)) - set(CANONICAL_COLUMNS))
    if not_canonical:
        raise InputError(
            f"defaults name unknown column(s) {', '.join(not_canonical)}; "
            f"defaults are given for canonical columns ({', '.join(CANONICAL_COLUMNS)}).",
            where=where,
        )

    provider_types = {str(k): str(v) for k, v in (spec.get("provider_types") or {}).items()}
    wrong = {k: v for k, v in provider_types.items() if v not in PROVIDER_TYPES}
    if wrong:
        alias, target = next(iter(wrong.items()))
        raise InputError(
            f"{where}: provider_types maps {alias!r} to {target!r}; "
            f"use one of {', '.join(PROVIDER_TYPES)}.",
            where=where,
        )
    date_format = spec.get("date_format")
    return _Config(
        columns={str(k): (None if v is None else str(v)) for k, v in columns.items()},
        date_format=None if date_format is None else str(date_format),
        defaults={str(k): str(v).strip() for k, v in merged.items() if v is not None},
        provider_types=provider_types,
        sheet=sheet if sheet is not None else spec.get("sheet"),
    )


def _plan_columns(headers: Iterable[str], config: _Config, where: str) -> _Plan:
    """Decide, per export column, its canonical target, or privacy drop, or extra."""
    explicit = {header_key(k): v for k, v in config.columns.items()}
    candidates: dict[str, list[tuple[int, str]]] = {}
    private: list[str] = []
    extras: list[str] = []
    for header in headers:
        key = header_key(header)
        target: str | None = None
        rank = 0
        if explicit.get(key) is not None:
            if key in NEVER_READ_COLUMNS:
                raise InputError(
                    f"{where}: column {header!r} holds patient names or birth dates or SSNs "
                    "and is never read. Map a patient account number to patient_id instead.",
                    where=where,
                )
            target, rank = explicit[key], 0
        elif key in PRIVATE_COLUMNS:
            private.append(header)
            continue
        elif key in explicit:  # mapped to None: ignored on purpose
            continue
        elif key in _TARGETS:
            target, rank = key, 1
        elif match := _MODIFIER_HEADER.fullmatch(key):
            target, rank = f"modifier_{match[1]}", 1
        elif key in _ALIASES:
            target, rank = _ALIASES[key], 2
        if target is None:
            extras.append(header)
        else:
            candidates.setdefault(target, []).append((rank, header))

    rename: dict[str, str] = {}
    for target, found in candidates.items():
        best = min(rank for rank, _ in found)
        winners = [header for rank, header in found if rank == best]
        if len(winners) > 1:
            names = ", ".join(repr(w) for w in winners)
            raise InputError(
                f"{where}: columns {names} all map to {target}. Keep one with an explicit "
                f"mapping, e.g. {{{winners[0]!r}: {target!r}}}, and map the others to None "
                "to ignore them.",
                where=where,
            )
        rename[winners[0]] = target
    return _Plan(rename=rename, private=private, extras=extras)


def _check_required(plan: _Plan, config: _Config, headers: list[str], where: str) -> None:
    present = set(plan.rename.values()) | set(config.defaults)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if not missing:
        return
    found = ", ".join(repr(h) for h in headers) or "(none)"
    example = missing[0]
    raise InputError(
        f"{where}: missing required column(s) {', '.join(missing)}. Columns found: {found}. "
        f'If the export names them differently, add a mapping {{"Your Column": "{example}"}} '
        f"(mapping= dict, or a YAML file with columns: {{Your Column: {example}}}); a value "
        'shared by every row can be given as a default, e.g. defaults={"payer_id": "aetna"}.',
        where=where,
    )


# --------------------------------------------------------------------------- normalising


def _parse_dates(
    text: pd.Series, date_format: str | None
) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse dates; returns (dates at midnight, unparsed mask, out-of-range mask).

    Each format is tried in turn on the values still unparsed. Only whole dates are
    accepted (a bare "2025" or "2025-03" is not a date); a time of day is dropped.
    """
    formats = (date_format, "%Y-%m-%d") if date_format else _DATE_FORMATS
    if not date_format or not re.search("%[HIMSp]", date_format):
        text = text.str.replace(r"[T ]+\d{1,2}:\d{2}.*$", "", regex=True)
    dates = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    todo = (text != "").to_numpy(dtype=bool).copy()
    out_of_range = np.zeros(len(text), dtype=bool)
    for fmt in formats:
        if not todo.any():
            break
        pos = np.flatnonzero(todo)
        parsed = pd.to_datetime(text.iloc[pos], format=fmt, errors="coerce")
        got = parsed.notna().to_numpy(dtype=bool)
        inside = got & (parsed >= _EARLIEST).to_numpy(bool) & (parsed <= _LATEST).to_numpy(bool)
        if inside.any():
            dates.iloc[pos[inside]] = (
                parsed[inside].dt.normalize().astype("datetime64[ns]").to_numpy()
            )
        out_of_range[pos[got & ~inside]] = True
        todo[pos[got]] = False
    return dates, todo, out_of_range


def _parse_number(text: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Numbers from text; returns (values with NaN for blanks, not-a-number mask)."""
    number = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = (text != "").to_numpy(bool) & ~np.isfinite(number.to_numpy())
    return number.where(~bad), bad


class _Fields:
    """The mapped text columns of one export as the normalising steps read them (blanks
    filled with the mapping's defaults), and the problems found in them so far."""

    def __init__(self, text: pd.DataFrame, config: _Config, problems: _Problems):
        self.index = pd.RangeIndex(len(text))
        self.text = text.set_axis(self.index, axis=0)
        self.config = config
        self.problems = problems
        self.date_hint = (
            f"{config.date_format} or YYYY-MM-DD" if config.date_format else "YYYY-MM-DD or MM/DD/YYYY"
        )

    def __contains__(self, name: str) -> bool:
        return name in self.text

    def column(self, name: str) -> pd.Series:
        """The column's text (``""`` where absent), blanks filled with the mapping's default."""
        values = self.text[name] if name in self.text else pd.Series("", index=self.index, dtype="str")
        default = self.config.defaults.get(name)
        if default is not None:
            values = values.where(values != "", default)
        return values.astype("str")

    def required(self, name: str, values: pd.Series) -> None:
        """Record a problem on every row where ``values`` is blank."""
        self.problems.add(values == "", name, f"{name} is empty", f"{name} is empty")


def _normalise(
    text: pd.DataFrame,
    config: _Config,
    source_row: np.ndarray,
    *,
    id_prefix: str = "",
    earlier_ids: pd.Series | None = None,
) -> tuple[pd.DataFrame, _Problems]:
    """Canonical columns from the mapped text columns, plus every problem found.

    ``id_prefix`` qualifies generated line ids; ``earlier_ids`` maps line ids accepted
    from earlier files to where they were found, so a repeat is caught across files.
    The steps run in a fixed order, which is the order a row's reasons are listed in.
    """
    problems = _Problems()
    fields = _Fields(text, config, problems)
    out: dict[str, pd.Series] = {}
    _identity_columns(fields, out, source_row, id_prefix, earlier_ids)
    service_text = _visit_columns(fields, out)
    _code_columns(fields, out)
    _amount_columns(fields, out)
    _claim_columns(fields, out, service_text)
    canonical = pd.DataFrame({name: out[name] for name in CANONICAL_COLUMNS}, index=fields.index)
    return canonical.astype(CANONICAL_DTYPES), problems


def _identity_columns(
    fields: _Fields,
    out: dict[str, pd.Series],
    source_row: np.ndarray,
    id_prefix: str,
    earlier_ids: pd.Series | None,
) -> None:
    """``line_id`` (generated where blank, unique within and across files), ``claim_id``,
    ``visit_id`` and ``patient_id``."""
    rows = pd.Series(source_row, index=fields.index).astype("str")

    line_id = fields.column("line_id")
    line_id = line_id.where(line_id != "", id_prefix + "L" + rows)
    first_row = rows.groupby(line_id.to_numpy()).transform("first")
    fields.problems.add(
        line_id.duplicated(keep="first"),
        "line_id",
        "line_id repeats an earlier row",
        "line_id '",
        line_id,
        "' repeats row ",
        first_row,
    )
    if earlier_ids is not None and len(earlier_ids):
        fields.problems.add(
            line_id.isin(earlier_ids.index),
            "line_id",
            "line_id repeats an earlier file",
            "line_id '",
            line_id,
            "' repeats ",
            line_id.map(earlier_ids).fillna(""),
        )
    out["line_id"] = line_id
    out["claim_id"] = fields.column("claim_id")
    out["visit_id"] = fields.column("visit_id")

    for name in ("patient_id",):
        out[name] = fields.column(name)
        fields.required(name, out[name])


def _visit_columns(fields: _Fields, out: dict[str, pd.Series]) -> pd.Series:
    """``service_date``, ``provider_id``, ``provider_type`` and ``payer_id``; returns the
    service dates as written, for the messages of later checks."""
    service_text = fields.column("service_date")
    service_date, unparsed, out_of_range = _parse_dates(service_text, fields.config.date_format)
    fields.required("service_date", service_text)
    fields.problems.add(
        unparsed,
        "service_date",
        "service_date is not a date",
        "service_date '",
        service_text,
        f"' is not a date (expected {fields.date_hint})",
    )
    fields.problems.add(
        out_of_range,
        "service_date",
        "service_date is out of range",
        "service_date '",
        service_text,
        "' is outside 1900-2099",
    )
    out["service_date"] = service_date

    out["provider_id"] = fields.column("provider_id")
    fields.required("provider_id", out["provider_id"])

    type_text = fields.column("provider_type")
    provider_type = normalise_provider_type(type_text, fields.config.provider_types)
    fields.required("provider_type", type_text)
    fields.problems.add(
        (type_text != "") & ~provider_type.isin(PROVIDER_TYPES),
        "provider_type",
        "provider_type is unknown",
        "provider_type '",
        type_text,
        f"' is not one of {', '.join(PROVIDER_TYPES)} (add the spelling under "
        "provider_types in the mapping)",
    )
    out["provider_type"] = provider_type

    out["payer_id"] = fields.column("payer_id")
    fields.required("payer_id", out["payer_id"])
    return service_text


def _code_columns(fields: _Fields, out: dict[str, pd.Series]) -> None:
    """``cpt`` (with modifiers written into the code split off), ``minutes``, ``modifiers``
    (the list and ``modifier_1`` .. ``modifier_4`` merged) and ``dx_codes``."""
    # Codes are text. Excel or a float column can turn 97140 into "97140.0"; a code
    # written with its modifiers ("97140-GP 59") is split.
    cpt_text = fields.column("cpt").str.upper().str.replace(r"^(\d{5})\.0+$", r"\1", regex=True)
    split = cpt_text.str.extract(r"^([A-Z0-9]{5})[ \-:]+([A-Z0-9]{2}(?:[ \-:,;|]+[A-Z0-9]{2})*)$")
    embedded = split[0].notna()
    cpt = cpt_text.where(~embedded, split[0]).astype("str")
    fields.required("cpt", cpt)
    fields.problems.add(
        (cpt != "") & ~cpt.str.fullmatch(CPT_PATTERN),
        "cpt",
        "cpt is not a CPT/HCPCS code",
        "cpt '",
        fields.column("cpt"),
        "' is not a CPT/HCPCS code (5 digits, or a letter and 4 digits, e.g. 97140, G0283)",
    )
    out["cpt"] = cpt

    minutes_text = fields.column("minutes")
    minutes, not_number = _parse_number(minutes_text)
    fields.problems.add(
        not_number,
        "minutes",
        "minutes is not a number",
        "minutes '",
        minutes_text,
        "' is not a number",
    )
    fields.problems.add(
        minutes < 0,
        "minutes",
        "minutes is negative",
        "minutes '",
        minutes_text,
        "' is negative",
    )
    out["minutes"] = minutes.where(~(minutes < 0))

    pieces = [fields.column("modifiers")]
    pieces += [fields.column(name) for name in _MODIFIER_COLUMNS if name in fields]
    pieces.append(split[1].fillna("").str.replace("-", ",", regex=False).astype("str"))
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = joined + "," + piece
    modifiers = normalise_modifiers(joined)
    modifier_reason = check_modifiers(modifiers)
    fields.problems.add(modifier_reason != "", "modifiers", "modifiers are invalid", modifier_reason)
    out["modifiers"] = modifiers

    dx_codes = normalise_dx_codes(fields.column("dx_codes"))
    bad_pos, kinds, reasons = dx_list_problems(dx_codes)
    fields.problems.add_frame(
        pd.DataFrame({"pos": bad_pos, "column": "dx_codes", "kind": kinds, "reason": reasons})
    )
    out["dx_codes"] = dx_codes


def _amount_columns(fields: _Fields, out: dict[str, pd.Series]) -> None:
    """``charge`` (``$1,200.00`` and ``(5.00)`` accepted), ``units_billed`` and
    ``prescription_on_file``."""
    charge_text = fields.column("charge")
    cleaned = charge_text.str.replace(r"[$, ]", "", regex=True)
    in_parens = cleaned.str.fullmatch(r"\(.*\)")
    cleaned = cleaned.where(~in_parens, "-" + cleaned.str.strip("()"))
    charge, not_number = _parse_number(cleaned)
    fields.required("charge", charge_text)
    fields.problems.add(
        not_number,
        "charge",
        "charge is not a number",
        "charge '",
        charge_text,
        "' is not a number",
    )
    fields.problems.add(
        charge < 0,
        "charge",
        "charge is negative",
        "charge '",
        charge_text,
        "' is negative",
    )
    out["charge"] = charge

    units_text = fields.column("units_billed")
    units, not_number = _parse_number(units_text)
    fields.problems.add(
        not_number,
        "units_billed",
        "units_billed is not a number",
        "units_billed '",
        units_text,
        "' is not a number",
    )
    fractional = units.notna() & (units != np.floor(units))
    fields.problems.add(
        fractional,
        "units_billed",
        "units_billed is not a whole number",
        "units_billed '",
        units_text,
        "' is not a whole number",
    )
    fields.problems.add(
        units < 0,
        "units_billed",
        "units_billed is negative",
        "units_billed '",
        units_text,
        "' is negative",
    )
    usable = units.notna() & ~fractional & (units >= 0)
    out["units_billed"] = units.where(usable).astype("Int64")

    rx_text = fields.column("prescription_on_file")
    rx = rx_text.str.lower().map(_BOOLEANS)
    fields.problems.add(
        (rx_text != "") & rx.isna(),
        "prescription_on_file",
        "prescription_on_file is not yes/no",
        "prescription_on_file '",
        rx_text,
        "' is not yes/no/true/false/1/0",
    )
    out["prescription_on_file"] = rx.astype("boolean")


def _claim_columns(fields: _Fields, out: dict[str, pd.Series], service_text: pd.Series) -> None:
    """``submission_date`` (not before the service), ``place_of_service``, the NPIs and
    ``body_region``."""
    service_date = out["service_date"]
    submitted_text = fields.column("submission_date")
    submitted, unparsed, out_of_range = _parse_dates(submitted_text, fields.config.date_format)
    fields.problems.add(
        unparsed,
        "submission_date",
        "submission_date is not a date",
        "submission_date '",
        submitted_text,
        f"' is not a date (expected {fields.date_hint})",
    )
    fields.problems.add(
        out_of_range,
        "submission_date",
        "submission_date is out of range",
        "submission_date '",
        submitted_text,
        "' is outside 1900-2099",
    )
    fields.problems.add(
        submitted < service_date,
        "submission_date",
        "submission_date is before service_date",
        "submission_date '",
        submitted_text,
        "' is before service_date '",
        service_text,
        "'",
    )
    out["submission_date"] = submitted

    pos_text = fields.column("place_of_service")
    # Place-of-service codes are two digits; a spreadsheet turns 02 into 2.
    pos = pos_text.where(~pos_text.str.fullmatch(r"\d"), "0" + pos_text)
    fields.problems.add(
        (pos != "") & ~pos.str.fullmatch(r"\d{2}"),
        "place_of_service",
        "place_of_service is not two digits",
        "place_of_service '",
        pos_text,
        "' is not a two-digit code (11 = office)",
    )
    out["place_of_service"] = pos

    for name in ("rendering_npi", "referring_npi"):
        npi = fields.column(name)
        ten_digits = npi.str.fullmatch(r"\d{10}")
        fields.problems.add(
            (npi != "") & ~valid_npi(npi),
            name,
            f"{name} is not a valid NPI",
            f"{name} '",
            npi,
            "'",
            pd.Series(
                np.where(ten_digits, " fails the NPI check digit", " is not a 10-digit NPI"),
                index=fields.index,
            ),
        )
        out[name] = npi

    out["body_region"] = fields.column("body_region")


def _contract_problems(candidates: pd.DataFrame) -> pd.DataFrame:
    """Rows the pandera contract still rejects, as problems (normally none)."""
    try:
        ServiceLineSchema.validate(candidates, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if cases["index"].isna().any():
            raise
        cases = cases.drop_duplicates(["index", "check"])
        return pd.DataFrame(
            {
                "pos": cases["index"].astype("int64").to_numpy(),
                "column": cases["column"].astype("str").to_numpy(),
                "kind": ("contract: " + cases["check"].astype("str")).to_numpy(),
                "reason": (
                    cases["column"].astype("str")
                    + " "
                    + cases["failure_case"].astype("str")
                    + " fails the check "
                    + cases["check"].astype("str")
                ).to_numpy(),
            }
        )
    return pd.DataFrame(columns=["pos", "column", "kind", "reason"])


def _read_one(
    path: str | os.PathLike[str],
    mapping: Mapping[str, Any] | str | os.PathLike[str] | None,
    sheet: str | int | None,
    defaults: Mapping[str, Any] | None,
    *,
    id_prefix: str = "",
    earlier_ids: pd.Series | None = None,
) -> Intake:
    path = Path(path)
    where = str(path)
    config = _load_config(mapping, defaults, sheet)
    raw = _read_table(path, config.sheet)
    headers = list(raw.columns)
    # Spreadsheet row numbers: the header is row 1, so data row i (0-based) is row i + 2.
    source_row = np.arange(2, len(raw) + 2, dtype="int64")
    blank = (raw == "").all(axis=1).to_numpy(bool) if len(raw.columns) else np.ones(len(raw), bool)
    raw = raw[~blank].reset_index(drop=True)
    source_row = source_row[~blank]
    rows_in = len(raw)

    plan = _plan_columns(headers, config, where)
    _check_required(plan, config, headers, where)
    mapped = pd.DataFrame(
        {target: raw[header] for header, target in plan.rename.items()}, index=raw.index
    )
    canonical, problems = _normalise(
        mapped, config, source_row, id_prefix=id_prefix, earlier_ids=earlier_ids
    )

    found = problems.frame()
    clean = ~np.isin(np.arange(rows_in), found["pos"].to_numpy())
    problems.add_frame(_contract_problems(canonical[clean]))
    found = problems.frame()
    bad = np.isin(np.arange(rows_in), found["pos"].to_numpy())

    name = path.name
    lines = canonical[~bad].assign(source_row=source_row[~bad], source_file=name)
    for header in plan.extras:
        lines[header] = raw.loc[~bad, header]
    lines = lines.reset_index(drop=True)

    found = found.assign(order=np.arange(len(found)))
    joined = (
        found.sort_values(["pos", "order"], kind="stable")
        .groupby("pos", sort=True)["reason"]
        .agg("; ".join)
    )
    kept = [h for h in headers if h not in plan.private]
    original = raw.loc[bad, kept]
    quarantine = pd.concat(
        [
            pd.DataFrame(
                {
                    "source_row": source_row[bad],
                    "reason": joined.reindex(np.flatnonzero(bad)).to_numpy(),
                },
                index=original.index,
            ).astype({"reason": "str"}),
            original,
        ],
        axis=1,
    ).assign(source_file=name)
    quarantine = quarantine.reset_index(drop=True)

    problem_table = pd.DataFrame(
        {
            "source_row": source_row[found["pos"].to_numpy()],
            "column": found["column"].to_numpy(),
            "kind": found["kind"].to_numpy(),
            "reason": found["reason"].to_numpy(),
        }
    ).astype({"column": "str", "kind": "str", "reason": "str"})
    problem_table = problem_table.sort_values("source_row", kind="stable").reset_index(drop=True)

    if rows_in != len(lines) + len(quarantine):  # the reconciliation the toolkit promises
        raise AssertionError(
            f"{where}: rows in {rows_in} != accepted {len(lines)} + quarantined {len(quarantine)}"
        )
    return Intake(
        lines=lines,
        quarantine=quarantine,
        rows_in=rows_in,
        source=where,
        problems=problem_table.assign(source_file=name),
        dropped_columns=tuple(plan.private),
        column_map=dict(plan.rename),
    )


def _quarantine_message(intake: Intake) -> str:
    rows = intake.quarantine["source_row"].astype(str).tolist()
    shown = ", ".join(rows[:10]) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
    return (
        f"{intake.source}: {intake.quarantined} of {intake.rows_in} row(s) quarantined "
        f"(rows {shown}); Intake.quarantine gives each row's reasons."
    )


def read_service_lines(
    path: str | os.PathLike[str],
    *,
    mapping: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    sheet: str | int | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Intake:
    """Read a practice-management export of service lines, validating every row.

    Every value is read as text (CSV with no NA guessing, Excel with ``dtype=str``,
    Parquet rendered to text), so codes keep their form. Export columns are matched to
    :data:`analytics.schemas.CANONICAL_COLUMNS` ignoring case, spaces and punctuation
    ("Service Date" -> ``service_date``), then through a small table of common export
    headers ("Date of Service", "CPT Code", "Units"); ``mapping`` overrides both. Other
    columns are kept, as text, after the canonical ones. Columns holding patient names,
    birth dates, SSNs, member ids or contact details are dropped on read
    (:data:`analytics.privacy.PRIVATE_COLUMNS`).

    All rows are checked at once: required values present; dates real and not before
    service; CPT/HCPCS shape; minutes, charge and units numbers and not negative;
    modifiers two characters, at most four; diagnoses ICD-10-CM
    (:func:`analytics.schemas.check_icd10cm`); NPIs passing their check digit; line ids
    unique. A row that breaks any rule goes to ``quarantine`` with all its reasons, the
    rest to ``lines``, and ``rows_in == accepted + quarantined`` always holds. Fully
    blank rows are skipped and not counted.

    Dates are read as ISO (``2025-03-04``), US (``03/04/2025``, ``3/4/25``,
    ``03-04-2025``) or compact (``20250304``), with any time of day dropped, unless the
    mapping gives ``date_format``; then that format and ISO are accepted. A day-first
    export (``04/03/2025`` for 4 March) needs ``date_format: "%d/%m/%Y"``.

    Parameters
    ----------
    path
        A ``.csv`` (UTF-8 or cp1252), ``.tsv``, ``.xlsx`` or ``.parquet`` file.
    mapping
        Export column name -> canonical name, e.g. ``{"Proc Code": "cpt"}`` (map a
        column to ``None`` to ignore it), or the path of a YAML file::

            columns: {Proc Code: cpt, DOS: service_date, Mod 1: modifier_1}
            date_format: "%d.%m.%Y"        # optional
            defaults: {payer_id: "00123"}  # optional: value for an absent or blank column
                                           # (quote ids: YAML reads 00123 as a number)
            provider_types: {Massage: lmt} # optional: extra credential spellings
            sheet: Lines                   # optional, Excel only

        A dict with a ``columns`` key is read the same way as the YAML file.
    sheet
        Excel sheet name or position (default: the first sheet).
    defaults
        Canonical column -> value used where the column is absent or a cell is blank, e.g.
        ``{"payer_id": "aetna"}`` for a single-payer export. Overrides the mapping's
        defaults; ``place_of_service`` defaults to ``"11"`` (office).

    Returns
    -------
    Intake
        ``lines`` (accepted, canonical), ``quarantine`` (rejected rows with reasons),
        ``rows_in`` and the reconciliation in ``report()``.

    Raises
    ------
    InputError
        The file is missing or unreadable, the mapping is malformed, or a required column
        is absent after mapping (the message names the columns found and the fix).

    Warns
    -----
    QuarantineWarning
        When any row was quarantined.

    Examples
    --------
    >>> intake = read_service_lines("export.csv", mapping={"Proc": "cpt"})  # doctest: +SKIP
    >>> print(intake)  # doctest: +SKIP
    export.csv: rows in 120 = accepted 117 + quarantined 3
    >>> intake.quarantine[["source_row", "reason"]]  # doctest: +SKIP
    """
    intake = _read_one(path, mapping, sheet, defaults)
    if intake.quarantined:
        warnings.warn(_quarantine_message(intake), QuarantineWarning, stacklevel=2)
    return intake


def _concat_text(frames: list[pd.DataFrame]) -> pd.DataFrame:
    combined = pd.concat(frames, ignore_index=True)
    text = [
        c for c in combined.columns if combined[c].dtype == "str" or combined[c].dtype == object
    ]
    return combined.astype({c: "str" for c in text}).fillna({c: "" for c in text})


def read_service_lines_many(
    paths: Iterable[str | os.PathLike[str]],
    *,
    mapping: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    sheet: str | int | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Intake:
    """Read several exports with the same mapping and stack them.

    ``source_file`` and ``source_row`` locate each line. Line ids stay unique across the
    files: generated ids name their file (``jan.csv:L2``), and a line id already accepted
    from an earlier file (overlapping exports) is quarantined rather than counted twice.

    Examples
    --------
    >>> intake = read_service_lines_many(["jan.csv", "feb.csv"])  # doctest: +SKIP
    >>> intake.rows_in == intake.accepted + intake.quarantined  # doctest: +SKIP
    True
    """
    parts: list[Intake] = []
    earlier = pd.Series(dtype="str")
    for path in paths:
        part = _read_one(
            path,
            mapping,
            sheet,
            defaults,
            id_prefix=f"{Path(path).name}:",
            earlier_ids=earlier,
        )
        found = part.lines["source_file"] + " row " + part.lines["source_row"].astype("str")
        earlier = pd.concat([earlier, pd.Series(found.to_numpy(), index=part.lines["line_id"])])
        parts.append(part)
    if not parts:
        raise InputError("read_service_lines_many needs at least one file.")
    dropped = tuple(dict.fromkeys(c for part in parts for c in part.dropped_columns))
    column_map: dict[str, str] = {}
    for part in parts:
        column_map.update(part.column_map)
    intake = Intake(
        lines=_concat_text([p.lines for p in parts]),
        quarantine=_concat_text([p.quarantine for p in parts]),
        rows_in=sum(p.rows_in for p in parts),
        source=", ".join(p.source for p in parts),
        problems=pd.concat([p.problems for p in parts], ignore_index=True),
        dropped_columns=dropped,
        column_map=column_map,
    )
    if intake.quarantined:
        warnings.warn(_quarantine_message(intake), QuarantineWarning, stacklevel=2)
    return intake
