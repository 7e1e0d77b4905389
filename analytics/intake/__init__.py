"""Service-line intake: practice-management exports in, canonical service lines out.

A practice-management system exports one row per billed service line (CSV, TSV, Excel or
Parquet), often under a title row or two, with its own column names. The intake finds the
header, places the columns, reads every value as text (so CPT ``97140`` never becomes
``97140.0``), normalises codes, dates and amounts, and checks every row at once. Rows that
break a rule are not dropped: they are set aside (quarantined) with their row number as the
spreadsheet shows it and every reason, so that::

    rows in = rows accepted + rows set aside

Only the columns the toolkit uses, and those mapping.yaml declares safe, are read; patient
names, dates of birth, free-text notes and any other column are left out and listed with the
reason (:attr:`Intake.ignored`). Patient ids are replaced by pseudonyms
(:func:`analytics.privacy.pseudonymise`, re-exported here) before anything leaves the practice.

Modules, one job each: ``files`` (an export as text, its header found), ``headers`` (the
header names known), ``contents`` (what a column's cells hold), ``credentials`` ("Name, PT"
-> ``pt``), ``values`` (amounts, numbers, dates, yes/no), ``mapping`` (mapping.yaml read and
written), ``normalise`` (the row checks), ``reader`` (:func:`read_service_lines`) and
``sniff`` (:func:`sniff_export`: the proposed mapping of a new export).

mapping.yaml
------------
One file beside the export says how to read it. Every key is optional::

    export: "service_lines.xlsx"   # the export file, in the same folder
    sheet: "Lines"                 # Excel: sheet name or 0-based position (default: the first)
    header_row: 3                  # the header's row number as the spreadsheet shows it
                                   # (default: found below any title or blank rows)
    delimiter: ","                 # text exports: , ; | or tab (default: found)
    encoding: "cp1252"             # text exports (default: UTF-8, else cp1252)
    date_format: "%d/%m/%Y"        # default: ISO 2026-03-14 and US 03/14/2026
    decimal_comma: false           # true: "120,50" is $120.50 (and "1,234.56" is set aside)
    century_pivot: null            # two-digit years: 50 reads 00-49 as 20xx, 50-99 as 19xx
                                   # (null: a two-digit year is set aside)
    columns:                       # export header: the toolkit's column (null: not read)
      "Account #": patient_id      # quote every header: '#' starts a YAML comment,
      "Date of Service": service_date    # ': ' ends a key
      "CPT": cpt
      "Modifier(s)": modifiers
      "Dx 1": dx_codes             # several columns to dx_codes or modifiers are joined
      "Dx 2": dx_codes
      "Rendering Provider": provider_id  # "Hannah Reyes, PT": the credential gives provider_type
      "unnamed column 7 (G)": minutes    # a column whose header cell is blank
      "Patient Name": null
    keep: ["Visit Type"]           # other columns to keep, as text (never identifiers)
    defaults: {payer_id: "cash"}   # value where a column is absent or a cell blank
    provider_types: {"Massage": lmt}   # more credential spellings

The toolkit's columns are :data:`analytics.schemas.CANONICAL_COLUMNS`, ``modifier_1`` ..
``modifier_4`` and the engine's optional ``prior_auth``, ``visits_before``,
``therapy_allowed_before`` and ``deductible_remaining``. A column whose header repeats is
named ``Dx (column H)`` from its second time on; a blank header cell ``unnamed column 7
(G)``. :func:`sniff_export` proposes the whole file for a new export and
:func:`write_mapping` writes it. A header holding ``#`` or ``:`` left unquoted is an error
naming the file, the line and the fix.

Command line::

    python -m analytics intake export.csv --out out/ [--mapping mapping.yaml] [--sniff] [--json]
"""

from __future__ import annotations

from analytics.intake.files import ExportTable, read_export
from analytics.intake.headers import HEADER_ALIASES
from analytics.intake.headers import HEADER_ALIASES as _ALIASES  # the name older code imports  # noqa: F401
from analytics.intake.mapping import MappingSettings, read_mapping, yaml_quote
from analytics.intake.reader import TOTAL_ROW, Intake, read_service_lines, read_service_lines_many
from analytics.intake.sniff import ExportLayout, sniff_export, write_mapping
from analytics.privacy import (
    DEFAULT_SALT,
    PRIVATE_COLUMNS,
    PSEUDONYMISED_KEY,
    SALT_ENV,
    pseudonymise,
)

__all__ = [
    "Intake",
    "read_service_lines",
    "read_service_lines_many",
    "sniff_export",
    "ExportLayout",
    "write_mapping",
    "read_mapping",
    "MappingSettings",
    "read_export",
    "ExportTable",
    "yaml_quote",
    "HEADER_ALIASES",
    "TOTAL_ROW",
    "pseudonymise",
    "PRIVATE_COLUMNS",
    "DEFAULT_SALT",
    "SALT_ENV",
    "PSEUDONYMISED_KEY",
]
