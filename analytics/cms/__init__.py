"""Loaders for the real CMS files behind the shipped reference tables.

Each loader reads one kind of CMS file as CMS publishes it and returns a DataFrame with the
same columns as the toolkit's shipped table of that kind, plus ``source`` (the file it came
from) and ``confidence`` (``"C"``: read in a primary CMS file). A user can therefore swap in
next year's (or next quarter's) files without touching anything downstream.

============================  ======================================  =====================
loader                        CMS file                                shipped table
============================  ======================================  =====================
:func:`read_pprrvu`           ``PPRRVUyyyy_*.csv`` (RVUyyX zip)       ``reference/rvu.csv``
:func:`read_gpci`             ``GPCIyyyy.csv`` (addendum E)           ``reference/gpci.csv``
:func:`read_localities`       ``yyLOCCO.csv`` (counties by locality)  --
:func:`read_ncci_ptp`         ``ccipra-v*-f1..f4`` (practitioner PTP) ``reference/ncci_ptp.csv``
:func:`read_mue`              practitioner services MUE table         ``reference/mue.csv``
============================  ======================================  =====================

Columns are found by their header text, never by position: CMS adds columns between
releases (the CY2026 PPRRVU has ``PRIC IND`` after ``TEAM SURG``), stacks header labels over
several rows and puts title, copyright and footnote lines around the table.

The PPRRVU ``DESCRIPTION`` column holds CPT descriptors, which are AMA copyright. The reader
leaves that column out while reading (``usecols``), so descriptors never enter a DataFrame
and are neither returned nor written anywhere.

Every loader raises :class:`~analytics.exceptions.ReferenceDataError` when a file is missing
or its layout is not recognised (the message names the file, the header it looked for and
where to download the file), and when cells fail to parse (the message names the file's
line numbers; ``.rows`` holds the offending cells). All problems found in one file are
reported together.

Modules, one per job: :mod:`analytics.cms.files` (reading any CMS file: zip members, encodings,
header rows, cell checks), :mod:`analytics.cms.fee_schedule` (PPRRVU, GPCI, LOCCO) and
:mod:`analytics.cms.ncci` (PTP and MUE edits). Import the loaders from ``analytics.cms``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from analytics.cms.fee_schedule import (
    GPCI_COLUMNS,
    LOCALITY_COLUMNS,
    RVU_COLUMNS,
    read_gpci,
    read_localities,
    read_pprrvu,
)
from analytics.cms.files import CONFIDENCE, PathArg
from analytics.cms.ncci import MUE_COLUMNS, PTP_COLUMNS, read_mue, read_ncci_ptp

__all__ = [
    "read_pprrvu",
    "read_gpci",
    "read_localities",
    "read_ncci_ptp",
    "read_mue",
    "reference_from_cms",
    "RVU_COLUMNS",
    "GPCI_COLUMNS",
    "LOCALITY_COLUMNS",
    "PTP_COLUMNS",
    "MUE_COLUMNS",
    "CONFIDENCE",
    "PathArg",
]


# --------------------------------------------------------------------------------------------
# All at once
# --------------------------------------------------------------------------------------------


def reference_from_cms(
    pprrvu: PathArg | None = None,
    gpci: PathArg | None = None,
    ptp: PathArg | Iterable[PathArg] | None = None,
    mue: PathArg | None = None,
    *,
    codes: str | Iterable[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read whichever CMS files are given into reference tables.

    Parameters
    ----------
    pprrvu, gpci, ptp, mue
        Paths as accepted by :func:`read_pprrvu`, :func:`read_gpci`, :func:`read_ncci_ptp`
        (one path or several) and :func:`read_mue`. Leave out what you do not have.
    codes
        Keep only these codes in the RVU table (e.g. the practice's code catalog).

    Returns
    -------
    dict of str to pandas.DataFrame
        Keys ``"rvu"``, ``"gpci"``, ``"ncci_ptp"``, ``"mue"``, for the files given only.

    Examples
    --------
    >>> ref = reference_from_cms(pprrvu="PPRRVU2025_Oct.csv", gpci="GPCI2025.csv",
    ...                          codes=["97110", "97140"])  # doctest: +SKIP
    >>> sorted(ref)  # doctest: +SKIP
    ['gpci', 'rvu']
    """
    tables: dict[str, pd.DataFrame] = {}
    if pprrvu is not None:
        tables["rvu"] = read_pprrvu(pprrvu, codes=codes)
    if gpci is not None:
        tables["gpci"] = read_gpci(gpci)
    if ptp is not None:
        tables["ncci_ptp"] = read_ncci_ptp(ptp)
    if mue is not None:
        tables["mue"] = read_mue(mue)
    return tables
