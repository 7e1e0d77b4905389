"""Loaders of the CMS physician fee schedule files: PPRRVU (RVUs), GPCI (addendum E) and LOCCO.

Columns are found by their header text, never by position: the CY2026 PPRRVU has ``PRIC IND``
after ``TEAM SURG``. The PPRRVU ``DESCRIPTION`` column (AMA CPT descriptors) is never read.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.cms.files import (
    CODE_FORM,
    CODE_PATTERN,
    CONFIDENCE,
    FIX,
    PathArg,
    Problems,
    canon,
    check_unique,
    file_members,
    find_column,
    is_mac_label,
    labels_of,
    line_list,
    no_rows,
    read_table,
    settle_year,
    split_rows,
    to_float,
    years_in,
)
from analytics.exceptions import ReferenceDataError, UnpricedCodeWarning

__all__ = ["read_pprrvu", "read_gpci", "read_localities", "RVU_COLUMNS", "GPCI_COLUMNS", "LOCALITY_COLUMNS"]

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

# PPRRVU header labels (stacked header rows joined, then canonicalised by `canon`) and the
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
# PPRRVU: national relative value units
# --------------------------------------------------------------------------------------------


def _pprrvu_header(row: list[str]) -> bool:
    return len(row) > 1 and canon(row[0]) == "HCPCS" and canon(row[1]).startswith("MOD")


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
    return [canon(" ".join(c for c in column if c)) for column in zip(*rows, strict=True)]


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
                f"({'; '.join(detail)}); expected {_PPRRVU_EXPECTED}. {FIX['pprrvu']}",
                where=name,
            )
        return sorted(labels.index(label) for label in _PPRRVU_FIELDS)

    return positions


def _flag(
    frame: pd.DataFrame, column: str, label: str, true: str, problems: Problems
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
    member = file_members(path, kind="pprrvu", exts=(".csv",), pattern=r"^PPRRVU")[0]
    table = read_table(
        member,
        kind="pprrvu",
        is_header=_pprrvu_header,
        expected=_PPRRVU_EXPECTED,
        columns=_pprrvu_positions(member.name),
    )
    labels = _pprrvu_names(table.head)
    body = table.body.rename(columns={labels.index(k): v for k, v in _PPRRVU_FIELDS.items()})
    problems = Problems(member.name, "pprrvu")
    rows = split_rows(body, "cpt", _PPRRVU_NUMBERS, CODE_PATTERN, problems, "HCPCS", CODE_FORM)
    if rows.empty and not problems.messages:
        raise no_rows(member.name, "pprrvu")

    titles = [c for r in table.head for c in r]
    found = years_in(titles, r"\b(20\d\d)\s+National Physician Fee Schedule")
    if not found:
        found = years_in([Path(member.name).name], r"(?<!\d)(20\d\d)(?!\d)")
    the_year = settle_year(member.name, "pprrvu", found, year, "relative value units")

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
        out[column] = to_float(rows, column, label, problems, "cpt")
    out["nonfacility_na"] = _flag(rows, "nonfacility_na", "NON-FAC NA INDICATOR", "NA", problems)
    out["facility_na"] = _flag(rows, "facility_na", "FACILITY NA INDICATOR", "NA", problems)
    out["pctc"] = rows["pctc"]
    out["global_days"] = rows["global_days"].str.upper()
    out["mult_proc"] = rows["mult_proc"]
    out["conversion_factor"] = to_float(rows, "conversion_factor", "CONV FACTOR", problems, "cpt")
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
    member = file_members(path, kind="gpci", exts=(".csv",), pattern=r"GPCI")[0]
    expected = (
        "a header row with Medicare Administrative Contractor (MAC), State, Locality Number, "
        "Locality Name, yyyy PW GPCI, yyyy PE GPCI and yyyy MP GPCI"
    )

    def is_header(row: list[str]) -> bool:
        labels = labels_of(row)
        return any("LOCALITY NUMBER" in c for c in labels) and any("GPCI" in c for c in labels)

    table = read_table(member, kind="gpci", is_header=is_header, expected=expected)
    labels = labels_of(table.head[-1])
    years = years_in(table.head[-1], r"\b(20\d\d)\s+(?:PW|PE|MP)\s+GPCI")
    if not years:
        years = years_in([c for r in table.head for c in r], r"\bCY\s*(20\d\d)\b")
    if not years:
        years = years_in([member.name], r"(?<!\d)(20\d\d)(?!\d)")
    the_year = settle_year(member.name, "gpci", years, year, "GPCIs")

    def gpci_column(part: str) -> int | None:
        hits = [i for i, c in enumerate(labels) if f"{part} GPCI" in c]
        dated = [i for i in hits if str(the_year) in labels[i]]
        return _prefer_floor(labels, dated or hits)

    positions = {
        "mac": find_column(labels, is_mac_label),
        "state": find_column(labels, lambda c: c == "STATE", lambda c: "STATE" in c),
        "locality_number": find_column(labels, lambda c: "LOCALITY NUMBER" in c),
        "locality_name": find_column(labels, lambda c: "LOCALITY NAME" in c),
        "pw_gpci": gpci_column("PW"),
        "pe_gpci": gpci_column("PE"),
        "mp_gpci": gpci_column("MP"),
    }
    missing = [k for k, v in positions.items() if v is None]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{expected}. {FIX['gpci']}",
            where=member.name,
        )
    body = table.body[[positions[k] for k in positions]]
    body.columns = list(positions)
    problems = Problems(member.name, "gpci")
    rows = split_rows(
        body, "mac", ["pw_gpci", "pe_gpci", "mp_gpci"], r"\d{1,5}", problems, "MAC", "a MAC number"
    )
    if rows.empty and not problems.messages:
        raise no_rows(member.name, "gpci")
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
        out[column] = to_float(rows, column, label, problems, "mac")
    problems.raise_any()
    out["source"] = f"CMS {member.name}"
    out["confidence"] = CONFIDENCE
    out = out[GPCI_COLUMNS]
    check_unique(out, "locality_id", ["pw_gpci", "pe_gpci", "mp_gpci"], member.name, "gpci")
    return out.drop_duplicates().reset_index(drop=True)



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
    member = file_members(path, kind="locco", exts=(".csv",), pattern=r"LOCCO")[0]
    expected = (
        "a header row with Medicare Administrative Contractor, Locality Number, State, "
        "Fee Schedule Area and Counties"
    )

    def is_header(row: list[str]) -> bool:
        labels = labels_of(row)
        return any("LOCALITY NUMBER" in c for c in labels) and any("COUNTIES" in c for c in labels)

    table = read_table(member, kind="locco", is_header=is_header, expected=expected)
    labels = labels_of(table.head[-1])
    positions = {
        "mac": find_column(labels, is_mac_label),
        "locality_number": find_column(labels, lambda c: "LOCALITY NUMBER" in c),
        "state": find_column(labels, lambda c: c == "STATE", lambda c: "STATE" in c),
        "fee_schedule_area": find_column(
            labels, lambda c: "FEE SCHEDULE AREA" in c, lambda c: "AREA" in c
        ),
        "counties": find_column(labels, lambda c: "COUNTIES" in c),
    }
    missing = [k for k, v in positions.items() if v is None]
    if missing:
        raise ReferenceDataError(
            f"{member.name}: the header has no column for {', '.join(missing)}; expected "
            f"{expected}. {FIX['locco']}",
            where=member.name,
        )
    body = table.body[[positions[k] for k in positions]]
    body.columns = list(positions)
    problems = Problems(member.name, "locco")

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
        raise no_rows(member.name, "locco")
    if continues.loc[rows.index].iloc[0]:
        raise ReferenceDataError(
            f"{member.name}: line {rows.index[0]} continues a locality but no locality comes "
            f"before it. {FIX['locco']}",
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
            f"them in their block ({line_list(rows.index[stateless])}). Add the state name. "
            f"{FIX['locco']}",
            rows=rows.loc[stateless],
            where=f"{member.name} {line_list(rows.index[stateless])}",
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
    check_unique(
        out, "locality_id", ["state", "fee_schedule_area", "counties"], member.name, "locco"
    )
    return out.reset_index(drop=True)
