"""Loaders of the CMS NCCI files: practitioner procedure-to-procedure (PTP) edits and MUEs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from os import PathLike

import numpy as np
import pandas as pd

from analytics.cms.files import (
    CODE_FORM,
    CODE_PATTERN,
    CONFIDENCE,
    FIX,
    Member,
    PathArg,
    Problems,
    canon,
    check_unique,
    file_members,
    find_column,
    labels_of,
    no_rows,
    read_table,
    split_rows,
    to_date,
    to_int,
)
from analytics.exceptions import ReferenceDataError

__all__ = ["read_ncci_ptp", "read_mue", "PTP_COLUMNS", "MUE_COLUMNS"]

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


def _ptp_one(member: Member) -> pd.DataFrame:
    table = read_table(member, kind="ptp", is_header=_ptp_header, expected=_PTP_EXPECTED)
    body = table.body
    squeezed = [re.sub(r"\s+", "", c.upper()) for c in table.head[-1]]
    key = squeezed.index("COLUMN1")
    # CMS continues the header labels on the rows below the "Column 1" row, with column 1
    # blank, until the first edit.
    is_code = body[key].str.upper().str.fullmatch(CODE_PATTERN)
    first = int(np.argmax(is_code.to_numpy())) if is_code.any() else len(body)
    continuation = body.iloc[:first]
    labels = [
        canon(" ".join([table.head[-1][i] if i < len(table.head[-1]) else "", *continuation[i]]))
        for i in body.columns
    ]
    positions = {
        "column1": key,
        "column2": squeezed.index("COLUMN2"),
        "effective_date": find_column(labels, lambda c: c.startswith("EFFECTIVE")),
        "deletion_date": find_column(labels, lambda c: c.startswith("DELETION")),
        "modifier_indicator": find_column(labels, lambda c: c.startswith("MODIFIER")),
        "rationale": find_column(labels, lambda c: "RATIONALE" in c),
    }
    missing = [k for k, v in positions.items() if v is None and k != "rationale"]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{_PTP_EXPECTED}. {FIX['ptp']}",
            where=member.name,
        )
    # Files from before CMS added the rationale column get an empty rationale.
    found = {k: v for k, v in positions.items() if v is not None}
    body = body.iloc[first:][list(found.values())]
    body.columns = list(found)
    if "rationale" not in found:
        body = body.assign(rationale="")
    problems = Problems(member.name, "ptp")
    value_columns = ["column2", "effective_date", "modifier_indicator"]
    rows = split_rows(body, "column1", value_columns, CODE_PATTERN, problems, "Column 1", CODE_FORM)
    if rows.empty and not problems.messages:
        raise no_rows(member.name, "ptp")
    out = pd.DataFrame(index=rows.index)
    out["column1"] = rows["column1"].str.upper()
    out["column2"] = rows["column2"].str.upper()
    problems.add(
        ~out["column2"].str.fullmatch(CODE_PATTERN),
        rows,
        "column2",
        "Column 2",
        "that is not a code",
        "column1",
    )
    out["effective_date"] = to_date(rows, "effective_date", "Effective Date", problems, "column1")
    # "*" = no deletion date. A blank cell (seen in spreadsheet copies) means the same.
    out["deletion_date"] = to_date(
        rows, "deletion_date", "Deletion Date", problems, "column1", none=("*", "")
    )
    indicator = to_int(rows, "modifier_indicator", "Modifier indicator", problems, "column1")
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
        raise ReferenceDataError(f"read_ncci_ptp was given no files. {FIX['ptp']}")
    members = [
        m
        for p in items
        for m in file_members(
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
    member = file_members(path, kind="mue", exts=(".csv", ".xlsx"), pattern=r"practitioner")[0]
    expected = (
        "a header row with HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication "
        "Indicator and MUE Rationale"
    )

    def is_header(row: list[str]) -> bool:
        labels = labels_of(row)
        return any("HCPCS" in c or c == "CPT CODE" for c in labels) and any(
            "ADJUDICATION" in c for c in labels
        )

    table = read_table(member, kind="mue", is_header=is_header, expected=expected)
    labels = labels_of(table.head[-1])
    positions = {
        "cpt": find_column(labels, lambda c: "HCPCS" in c, lambda c: "CPT" in c),
        "mue": find_column(labels, lambda c: "MUE VALUE" in c),
        "mai_text": find_column(labels, lambda c: "ADJUDICATION" in c),
        "rationale": find_column(labels, lambda c: "RATIONALE" in c),
    }
    missing = [k for k, v in positions.items() if v is None]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{expected}. {FIX['mue']}",
            where=member.name,
        )
    body = table.body[[positions[k] for k in positions]]
    body.columns = list(positions)
    problems = Problems(member.name, "mue")
    rows = split_rows(
        body, "cpt", ["mue", "mai_text"], CODE_PATTERN, problems, "HCPCS/CPT Code", CODE_FORM
    )
    if rows.empty and not problems.messages:
        raise no_rows(member.name, "mue")
    out = pd.DataFrame(index=rows.index)
    out["cpt"] = rows["cpt"].str.upper()
    out["mue"] = to_int(rows, "mue", "MUE value", problems, "cpt")
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
    check_unique(out, "cpt", ["mue", "mai"], member.name, "mue")
    return out.drop_duplicates().reset_index(drop=True)
