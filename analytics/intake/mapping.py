"""mapping.yaml: how to read one practice's export. Reading it (with errors that name the line
and the fix) and writing it (every header quoted, so ``Account #`` and ``Time: In`` survive).

The format is documented in :mod:`analytics.intake`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analytics.exceptions import InputError
from analytics.intake.headers import ENGINE_COLUMNS, MODIFIER_COLUMNS, TARGETS
from analytics.privacy import NEVER_READ_COLUMNS, header_key, is_identifying
from analytics.schemas import CANONICAL_COLUMNS, PROVIDER_TYPES

__all__ = ["MappingSettings", "read_mapping", "yaml_quote", "render_mapping", "SETTING_KEYS", "MappingLine"]

#: The keys of a mapping file.
SETTING_KEYS = ("export", "sheet", "header_row", "delimiter", "encoding", "date_format", "decimal_comma",
                "century_pivot", "columns", "keep", "defaults", "provider_types")
# Place of service 11 = office (CMS-1500 item 24B).
_BUILTIN_DEFAULTS = {"place_of_service": "11"}
# An unquoted key holding " #": YAML reads the rest of the line as a comment.
_HASH_IN_KEY = re.compile(r"^\s*(?:-\s+)?(?P<key>[^\"'\s#:{\[][^\"'#:]*?\s#[^:]*?):(?:\s|$)")


@dataclass(frozen=True)
class MappingSettings:
    """A mapping file, checked. ``columns`` maps export headers to the toolkit's columns
    (``None``: ignored on purpose); the rest are the reading settings."""

    columns: dict[str, str | None]
    keep: tuple[str, ...] = ()
    defaults: dict[str, str] | None = None
    provider_types: dict[str, str] | None = None
    sheet: str | int | None = None
    header_row: int | None = None
    delimiter: str | None = None
    encoding: str | None = None
    date_format: str | None = None
    decimal_comma: bool = False
    century_pivot: int | None = None
    export: str | None = None
    source: str = "mapping"


def _load_yaml(path: Path) -> Any:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{where}: mapping file not found. Give the path of mapping.yaml (--mapping FILE).",
                         where=where) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: byte {exc.start} is not UTF-8; save mapping.yaml as UTF-8.", where=where) from None
    for number, line in enumerate(text.splitlines(), start=1):
        found = _HASH_IN_KEY.match(line)
        if found:
            key = found["key"].strip()
            raise InputError(
                f"{where}, line {number}: the header {key!r} holds '#', which YAML reads as the start of a comment. "
                f'Quote the header: "{key}": {line.split(":", 1)[1].strip() or "..."}', where=f"{where}:{number}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise InputError(
            f"{where}{line}: {problem}. Quote any header holding ':', '#', quotes or a leading '-', e.g. "
            '"Time: In": minutes or "Account #": patient_id, and indent the columns under columns:.',
            where=f"{where}{line}") from None


def _mapping_of(value: Any, section: str, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: '{section}' must be a mapping of names to values, e.g. {section}: "
                         '{"Proc Code": cpt}.', where=where)
    return {str(k).strip(): v for k, v in value.items()}


def _whole(value: Any, name: str, where: str, low: int, high: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f"{low} or more" if high is None else f"from {low} to {high}"
        raise InputError(f"{where}: {name} must be a whole number {span}, not {value!r}.", where=where)
    return value


def _columns(spec: Mapping[str, Any], where: str) -> dict[str, str | None]:
    columns = _mapping_of(spec.get("columns"), "columns", where)
    for header, target in columns.items():
        if target is not None and str(target) not in TARGETS:
            raise InputError(
                f"{where}: {header!r} is mapped to {target!r}, which is not a column of the toolkit. Map to one of: "
                f"{', '.join(CANONICAL_COLUMNS)}, {', '.join(MODIFIER_COLUMNS)}, {', '.join(ENGINE_COLUMNS)}, or "
                "to null to ignore the column.", where=where)
        if target is not None and header_key(header) in NEVER_READ_COLUMNS:
            raise InputError(f"{where}: column {header!r} holds patient names, birth dates or SSNs and is never read. "
                             "Map the patient's account number to patient_id instead, and this column to null.",
                             where=where)
    return {h: (None if t is None else str(t)) for h, t in columns.items()}


def _keep(spec: Mapping[str, Any], where: str) -> tuple[str, ...]:
    keep = spec.get("keep") or []
    if isinstance(keep, str):
        keep = [keep]
    if not isinstance(keep, list):
        raise InputError(f'{where}: keep is a list of headers to keep as text, e.g. keep: ["Visit Type"].',
                         where=where)
    keep = [str(k).strip() for k in keep]
    private = [k for k in keep if is_identifying(k)]
    if private:
        raise InputError(f"{where}: keep lists {private[0]!r}, which identifies a patient; saved tables never keep "
                         "it. Remove it from keep:.", where=where)
    return tuple(keep)


def read_mapping(mapping: Mapping[str, Any] | str | os.PathLike[str] | None, *,
                 defaults: Mapping[str, Any] | None = None, sheet: str | int | None = None,
                 header_row: int | None = None) -> MappingSettings:
    """Check a mapping (a YAML file, a dict shaped like one, or a dict of header -> column).

    ``defaults``, ``sheet`` and ``header_row`` given here (from the command line) win over the
    file's.

    Raises
    ------
    InputError
        Naming the file, the line where YAML stopped, and the fix.

    Examples
    --------
    >>> read_mapping({"Proc Code": "cpt"}).columns
    {'Proc Code': 'cpt'}
    >>> read_mapping({"columns": {"DOS": "service_date"}, "century_pivot": 50}).century_pivot
    50
    """
    where = "mapping"
    if mapping is None:
        spec: Any = {}
    elif isinstance(mapping, (str, os.PathLike)):
        where = str(mapping)
        spec = _load_yaml(Path(mapping)) or {}
        if not isinstance(spec, Mapping):
            raise InputError(f"{where}: expected settings and a 'columns:' section (see analytics/intake "
                             "docstring), found {type(spec).__name__}.", where=where)
    elif isinstance(mapping, Mapping):
        spec = dict(mapping) if isinstance(mapping.get("columns"), Mapping) or set(mapping) & {
            "keep", "header_row", "decimal_comma", "century_pivot"} else {"columns": dict(mapping)}
    else:
        raise InputError(f"A mapping is a YAML file or a dict of export headers to columns, not "
                         f"{type(mapping).__name__}.")
    unknown = sorted(set(map(str, spec)) - set(SETTING_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown setting(s) {', '.join(unknown)}; the settings are "
                         f"{', '.join(SETTING_KEYS)}.", where=where)
    merged = {**_BUILTIN_DEFAULTS, **_mapping_of(spec.get("defaults"), "defaults", where), **(defaults or {})}
    not_canonical = sorted(set(map(str, merged)) - set(CANONICAL_COLUMNS) - set(ENGINE_COLUMNS))
    if not_canonical:
        raise InputError(f"{where}: defaults name unknown column(s) {', '.join(not_canonical)}; defaults are given "
                         f"for the toolkit's columns ({', '.join(CANONICAL_COLUMNS)}).", where=where)
    provider_types = {str(k): str(v) for k, v in _mapping_of(spec.get("provider_types"), "provider_types",
                                                               where).items()}
    wrong = {k: v for k, v in provider_types.items() if v not in PROVIDER_TYPES}
    if wrong:
        alias, target = next(iter(wrong.items()))
        raise InputError(f"{where}: provider_types maps {alias!r} to {target!r}; use one of "
                         f"{', '.join(PROVIDER_TYPES)}.", where=where)
    decimal_comma = spec.get("decimal_comma", False)
    if not isinstance(decimal_comma, bool):
        raise InputError(f"{where}: decimal_comma is true or false, not {decimal_comma!r}.", where=where)
    delimiter = spec.get("delimiter")
    if delimiter is not None:
        delimiter = {"tab": "\t", "\\t": "\t"}.get(str(delimiter), str(delimiter))
        if len(delimiter) != 1:
            raise InputError(f"{where}: delimiter is one character (',', ';', '|' or tab), not {delimiter!r}.",
                             where=where)
    date_format = spec.get("date_format")
    return MappingSettings(
        columns=_columns(spec, where),
        keep=_keep(spec, where),
        defaults={str(k): str(v).strip() for k, v in merged.items() if v is not None},
        provider_types=provider_types,
        sheet=sheet if sheet is not None else spec.get("sheet"),
        header_row=header_row if header_row is not None else _whole(spec.get("header_row"), "header_row", where, 1),
        delimiter=delimiter,
        encoding=None if spec.get("encoding") is None else str(spec["encoding"]),
        date_format=None if date_format is None else str(date_format),
        decimal_comma=decimal_comma,
        century_pivot=_whole(spec.get("century_pivot"), "century_pivot", where, 0, 100),
        export=None if spec.get("export") is None else str(spec["export"]),
        source=where,
    )


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def yaml_quote(text: object) -> str:
    """``text`` as a YAML double-quoted scalar, which reads back as exactly ``text``.

    Examples
    --------
    >>> yaml_quote('Account #'), yaml_quote('Time: "In"')
    ('"Account #"', '"Time: \\\\"In\\\\""')
    >>> yaml.safe_load(yaml_quote("- a: b # c")) == "- a: b # c"
    True
    """
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or code in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code < 0xE000:
            out.append(f"\\u{code:04x}")
        elif code > 0xFFFF:
            out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class MappingLine:
    """One column of a mapping file: the export's header, the column it fills (``None``:
    ignored) and the note written beside it (why it was chosen or ignored)."""

    header: str
    target: str | None
    note: str = ""


def render_mapping(lines: Iterable[MappingLine], *, export: str | None = None, sheet: str | int | None = None,
                   header_row: int | None = None, delimiter: str | None = None, encoding: str | None = None,
                   date_format: str | None = None, decimal_comma: bool = False, century_pivot: int | None = None,
                   keep: Iterable[str] = (), title: str = "") -> str:
    """The text of a mapping file: the settings, then one line per export column with its note.

    Every header and text value is double-quoted, so headers holding ``#``, ``:`` or quotes
    read back unchanged (:func:`read_mapping`).
    """
    def setting(name: str, value: Any, note: str) -> str:
        if value is None:
            shown = "null"
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        elif isinstance(value, int):
            shown = str(value)
        else:
            shown = yaml_quote(value)
        return f"{name}: {shown}".ljust(34) + f"  # {note}"

    head = [f"# mapping.yaml{': ' + title if title else ''}",
            "# How to read the practice's export. Check every line, then keep this file beside the export.",
            "# Format: analytics/intake/__init__.py (module docstring) and the README, 'Your own practice'."]
    body = [
        setting("export", export, "the export file, beside this one"),
        setting("sheet", sheet, "Excel sheet (name or 0-based position); null for CSV"),
        setting("header_row", header_row, "the header's row number as the spreadsheet shows it"),
        setting("delimiter", "tab" if delimiter == "\t" else delimiter, "text exports: , ; | or tab"),
        setting("encoding", encoding, "text exports: utf-8, cp1252, latin-1"),
        setting("date_format", date_format, "e.g. \"%m/%d/%Y\", or excel for day numbers; null reads ISO and US dates"),
        setting("decimal_comma", decimal_comma, "true: 120,50 means $120.50"),
        setting("century_pivot", century_pivot, "two-digit years: 50 reads 00-49 as 20xx, 50-99 as 19xx"),
        "columns:                            # export header: the toolkit's column (null: not read)",
    ]
    rows = list(lines)
    width = max((len(yaml_quote(r.header)) for r in rows), default=0) + 2
    for row in rows:
        key = (yaml_quote(row.header) + ":").ljust(width)
        value = row.target if row.target is not None else "null"
        text = f"  {key} {value}"
        if row.note:
            text = text.ljust(width + 24) + f"  # {row.note}"
        body.append(text.rstrip())
    kept = [yaml_quote(k) for k in keep]
    body.append(f"keep: [{', '.join(kept)}]".ljust(34) + "  # other headers to keep, as text (never identifiers)")
    return "\n".join(head + body) + "\n"
