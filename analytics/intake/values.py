"""Reading the values of an export: amounts, whole numbers, dates and yes/no, from text.

Every reader takes a column of text and returns the values with the reason each unreadable
value is set aside (``""`` where the value is fine), so the intake can quarantine the row with
its spreadsheet row number. A value that could mean two things is not guessed:

- ``120,50`` is 120.50 written with a decimal comma, or 12,050 with a slip; ``1.234,56`` is
  1,234.56 in European notation. Both are set aside unless ``decimal_comma: true`` in
  mapping.yaml says the export writes cents after a comma (then ``1,234.56`` is set aside).
- ``$ 1,2,3`` groups its digits wrongly; ``1e5``, ``NaN``, ``inf``, ``+5``, ``1_000`` and digits
  of other scripts (``١٢٣``) are not how an export writes an amount; more than seven digits
  before the point (ten million dollars) is not a charge.
- ``3/14/68`` could be 1968 or 2068: a two-digit year is set aside unless ``century_pivot``
  says which (``century_pivot: 50``: 00-49 are 2000-2049, 50-99 are 1950-1999).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["read_amounts", "read_numbers", "read_dates", "read_yes_no", "per_distinct", "US_DATE_FORMATS", "EXCEL_DAYS",
           "YES",
           "NO"]

#: Dates an export may hold without a ``date_format``: ISO, US (month first) and compact.
US_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%Y%m%d")
#: The ``date_format`` of dates written as a spreadsheet's day numbers (45726 is 2025-03-10).
EXCEL_DAYS = "excel"
#: Yes/no spellings (compared in lower case).
YES = ("yes", "y", "true", "t", "1", "x")
NO = ("no", "n", "false", "f", "0")

_EARLIEST = pd.Timestamp("1900-01-01")
_LATEST = pd.Timestamp("2099-12-31")
_MAX_INTEGER_DIGITS = 7  # $9,999,999.99: no single service line is billed at ten million dollars
_PLAIN = r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+"
_GROUPED = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?"
_PLAIN_COMMA = r"[0-9]+(?:,[0-9]+)?|,[0-9]+"
_GROUPED_COMMA = r"[0-9]{1,3}(?:\.[0-9]{3})+(?:,[0-9]+)?"
_TWO_DIGIT_YEAR = re.compile(r"^([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{2})$")


def per_distinct(reader: Callable[..., tuple[pd.Series, pd.Series]], text: pd.Series,
                 **options: Any) -> tuple[pd.Series, pd.Series]:
    """``reader(text, **options)`` run once per distinct value and spread back to the rows.

    An export repeats a few hundred charges, minutes and dates over a million lines, so each
    value is parsed (and its reason written) once.
    """
    codes, uniques = pd.factorize(text.astype("str").fillna(""))
    if len(uniques) * 2 > len(text):
        return reader(text, **options)
    values, reasons = reader(pd.Series(uniques, dtype="str"), **options)
    at = np.maximum(codes, 0)
    return (pd.Series(values.array.take(at), index=text.index),
            pd.Series(reasons.to_numpy(dtype=object)[at], index=text.index, dtype="str"))


def _fail(reasons: np.ndarray, mask: np.ndarray, text: pd.Series, what: str, why: str) -> None:
    """Write ``what 'value' why`` into ``reasons`` where ``mask`` holds and no reason is set yet."""
    hit = mask & (reasons == "")
    if hit.any():
        pos = np.flatnonzero(hit)
        reasons[pos] = (f"{what} '" + text.iloc[pos].astype("str") + f"' {why}").to_numpy(dtype=object)


def read_amounts(text: pd.Series, *, decimal_comma: bool = False, what: str = "charge") -> tuple[pd.Series, pd.Series]:
    """Dollar amounts from text: ``$1,234.50``, ``1234.5``, ``(5.00)`` and ``-5`` are read;
    blanks are NaN.

    Returns
    -------
    (values, reasons)
        Floats (NaN for blanks and unreadable values) and the reason per value (``""`` when
        read or blank).

    Examples
    --------
    >>> import pandas as pd
    >>> values, why = read_amounts(pd.Series(["$1,234.50", "120,50", "(5.00)", "$ 1,2,3", ""]))
    >>> values.tolist()[:1], values.tolist()[2]
    ([1234.5], -5.0)
    >>> why[1]
    "charge '120,50' has a comma before two digits: a decimal comma (120.50) or a slip (12,050)? Set decimal_comma: true in mapping.yaml if the export writes cents after a comma"
    """
    raw = text.astype("str").fillna("")
    cleaned = raw.str.replace(r"[\s$]", "", regex=True)
    in_parens = cleaned.str.fullmatch(r"\(.*\)").to_numpy(bool)
    cleaned = cleaned.where(~in_parens, cleaned.str.slice(1, -1))
    negative = cleaned.str.startswith("-").to_numpy(bool)
    cleaned = cleaned.where(~negative, cleaned.str.slice(1))
    reasons = np.full(len(raw), "", dtype=object)
    blank = (raw == "").to_numpy(bool)
    if decimal_comma:
        plain = cleaned.str.fullmatch(_PLAIN_COMMA).to_numpy(bool)
        grouped = cleaned.str.fullmatch(_GROUPED_COMMA).to_numpy(bool)
        point = cleaned.str.fullmatch(_PLAIN).to_numpy(bool) | cleaned.str.fullmatch(_GROUPED).to_numpy(bool)
        _fail(reasons, ~blank & ~plain & ~grouped & point & cleaned.str.contains(".", regex=False).to_numpy(bool),
              raw, what, "has a decimal point, but mapping.yaml says decimal_comma: true")
        number = cleaned.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
        ok = plain | grouped
    else:
        plain = cleaned.str.fullmatch(_PLAIN).to_numpy(bool)
        grouped = cleaned.str.fullmatch(_GROUPED).to_numpy(bool)
        comma_cents = cleaned.str.fullmatch(r"[0-9]+,[0-9]{1,2}|[0-9]{1,3}(?:\.[0-9]{3})*,[0-9]{1,2}").to_numpy(bool)
        _fail(reasons, ~blank & comma_cents, raw, what,
              "has a comma before two digits: a decimal comma (120.50) or a slip (12,050)? Set decimal_comma: "
              "true in mapping.yaml if the export writes cents after a comma")
        number = cleaned.str.replace(",", "", regex=False)
        ok = plain | grouped
        _fail(reasons, ~blank & ~ok & cleaned.str.fullmatch(r"[0-9][0-9,]*(?:\.[0-9]+)?").to_numpy(bool), raw,
              what, "groups its digits wrongly (thousands go in threes: 1,234.50)")
    digits = number.str.split(".", n=1, regex=False).str[0].str.lstrip("0").str.len().fillna(0).to_numpy()
    _fail(reasons, ~blank & ok & (digits > _MAX_INTEGER_DIGITS), raw, what,
          f"has more than {_MAX_INTEGER_DIGITS} digits before the point: not a plausible amount")
    _fail(reasons, ~blank & ~ok, raw, what, "is not an amount (write it as 1234.50 or $1,234.50)")
    good = ~blank & (reasons == "")
    values = np.full(len(raw), np.nan)
    if good.any():
        values[good] = pd.to_numeric(number[good], errors="coerce").to_numpy(dtype=float)
        values[good & negative] *= -1
        values[good & in_parens & ~negative] *= -1
    return (pd.Series(values, index=text.index, dtype="float64"),
            pd.Series(reasons, index=text.index, dtype="str"))


def read_numbers(text: pd.Series, *, what: str) -> tuple[pd.Series, pd.Series]:
    """Plain numbers (minutes, units) from text: ASCII digits, one optional leading minus, one
    optional point. ``1e5``, ``NaN``, ``inf``, ``+5``, ``1_000`` and other scripts' digits are
    not numbers here.

    Examples
    --------
    >>> import pandas as pd
    >>> values, why = read_numbers(pd.Series(["23", "-5", "1e5", ""]), what="minutes")
    >>> values.tolist()[:2], why[2]
    ([23.0, -5.0], "minutes '1e5' is not a number")
    """
    raw = text.astype("str").fillna("")
    blank = (raw == "").to_numpy(bool)
    ok = raw.str.fullmatch(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)").to_numpy(bool)
    reasons = np.full(len(raw), "", dtype=object)
    _fail(reasons, ~blank & ~ok, raw, what, "is not a number")
    long = ok & (raw.str.lstrip("-").str.split(".", n=1, regex=False).str[0].str.len().to_numpy() > 9)
    _fail(reasons, long, raw, what, "has more than 9 digits: not a plausible count")
    values = np.full(len(raw), np.nan)
    good = ok & ~long
    if good.any():
        values[good] = pd.to_numeric(raw[good], errors="coerce").to_numpy(dtype=float)
    return (pd.Series(values, index=text.index, dtype="float64"),
            pd.Series(reasons, index=text.index, dtype="str"))


def read_dates(text: pd.Series, *, what: str, date_format: str | None = None,
               century_pivot: int | None = None) -> tuple[pd.Series, pd.Series]:
    """Dates (at midnight) from text, with the reason each unreadable date is set aside.

    Without ``date_format``: ISO (``2025-03-04``), US month first (``03/04/2025``,
    ``3/4/2025``, ``03-04-2025``) and compact (``20250304``). With it: that format and ISO. A
    time of day is dropped. A two-digit year (``3/14/68``) is read only with
    ``century_pivot``, month first unless ``date_format`` starts with the day (``%d/%m/%Y``);
    dates outside 1900-2099 are set aside.

    Examples
    --------
    >>> import pandas as pd
    >>> dates, why = read_dates(pd.Series(["03/14/2026", "3/14/68", "2026-02-30"]), what="service_date")
    >>> str(dates[0].date()), why[1]
    ('2026-03-14', "service_date '3/14/68' has a two-digit year (1968 or 2068?): set century_pivot in mapping.yaml (e.g. 50 reads 00-49 as 20xx and 50-99 as 19xx) or export four-digit years")
    >>> dates, why = read_dates(pd.Series(["3/14/68"]), what="service_date", century_pivot=50)
    >>> str(dates[0].date())
    '1968-03-14'
    >>> dates, why = read_dates(pd.Series(["14/03/68", "01/04/25"]), what="service_date", date_format="%d/%m/%Y",
    ...                         century_pivot=50)
    >>> [str(d.date()) for d in dates]
    ['1968-03-14', '2025-04-01']
    """
    raw = text.astype("str").fillna("")
    if not date_format or not re.search("%[HIMSp]", date_format):
        raw = raw.str.replace(r"[T ]+[0-9]{1,2}:[0-9]{2}.*$", "", regex=True)
    serial = date_format == EXCEL_DAYS
    formats = [f for f in (("%Y-%m-%d", "%m/%d/%Y") if serial else (date_format, "%Y-%m-%d") if date_format
                           else US_DATE_FORMATS) if "%y" not in f]
    dates = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[ns]")
    todo = (raw != "").to_numpy(bool).copy()
    outside = np.zeros(len(raw), dtype=bool)
    if serial:  # a spreadsheet's day numbers: 45726 is 2025-03-10 (day 1 is 1900-01-01, as Excel counts)
        digits = raw.str.fullmatch(r"[0-9]{5}(?:\.0+)?").fillna(False).to_numpy(bool)  # 1927-05-18 .. 2173
        whole = digits & todo
        if whole.any():
            number = pd.to_numeric(raw[whole], errors="coerce").to_numpy(dtype=float)
            day = np.datetime64("1899-12-30") + number.astype("int64").astype("timedelta64[D]")
            stamps = day.astype("datetime64[ns]")
            inside = (stamps >= np.datetime64(_EARLIEST)) & (stamps <= np.datetime64(_LATEST))
            pos = np.flatnonzero(whole)
            dates[pos[inside]] = stamps[inside]
            outside[pos[~inside]] = True
            todo[pos] = False
    for fmt in formats:
        if not todo.any():
            break
        pos = np.flatnonzero(todo)
        parsed = pd.to_datetime(raw.iloc[pos], format=fmt, errors="coerce")
        got = parsed.notna().to_numpy(bool)
        inside = got & (parsed >= _EARLIEST).to_numpy(bool) & (parsed <= _LATEST).to_numpy(bool)
        dates[pos[inside]] = parsed[inside].dt.normalize().astype("datetime64[ns]").to_numpy()
        outside[pos[got & ~inside]] = True
        todo[pos[got]] = False
    reasons = np.full(len(raw), "", dtype=object)
    if todo.any():
        pos = np.flatnonzero(todo)
        parts = raw.iloc[pos].str.extract(_TWO_DIGIT_YEAR)
        two = parts[2].notna().to_numpy(bool)
        if two.any() and century_pivot is not None:
            yy = parts[2].astype("float64").to_numpy()
            year = np.where(yy < century_pivot, 2000 + yy, 1900 + yy)
            # the day comes first where the date format says so (10/03/25 with %d/%m/%Y), else the month
            month, day = (2, 1) if (date_format or "").lstrip().startswith("%d") else (1, 2)
            parsed = pd.to_datetime(pd.DataFrame({"year": year, "month": parts[month - 1].astype("float64"),
                                                  "day": parts[day - 1].astype("float64")}), errors="coerce")
            got = two & parsed.notna().to_numpy(bool)
            dates[pos[got]] = parsed[got].astype("datetime64[ns]").to_numpy()  # 1900-2099 by construction
            todo[pos[got]] = False
        elif two.any():
            at = pos[two]
            yy = parts[2][two].astype("str")
            reasons[at] = (f"{what} '" + raw.iloc[at].astype("str").to_numpy(dtype=object) + "' has a two-digit year (19"
                           + yy.to_numpy(dtype=object) + " or 20" + yy.to_numpy(dtype=object)
                           + "?): set century_pivot in mapping.yaml (e.g. 50 reads 00-49 as 20xx and 50-99 as 19xx) "
                           "or export four-digit years")
            todo[at] = False
    hint = ("a spreadsheet day number such as 45726, or YYYY-MM-DD, as date_format: excel in mapping.yaml says"
            if serial else f"{date_format} or YYYY-MM-DD, as date_format in mapping.yaml says" if date_format
            else "YYYY-MM-DD or MM/DD/YYYY; another form needs date_format in mapping.yaml, e.g. %d-%b-%Y for "
                 "4-Mar-2025")
    _fail(reasons, todo, raw, what, f"is not a date (expected {hint})")
    _fail(reasons, outside, raw, what, "is outside 1900-2099")
    return pd.Series(dates, index=text.index), pd.Series(reasons, index=text.index, dtype="str")


def read_yes_no(text: pd.Series, *, what: str, other_is_yes: bool = False) -> tuple[pd.Series, pd.Series]:
    """Yes/no from text (:data:`YES`, :data:`NO`; blank is unknown).

    ``other_is_yes`` reads any other text as yes: an authorisation column often holds the
    authorisation number itself.

    Examples
    --------
    >>> import pandas as pd
    >>> values, why = read_yes_no(pd.Series(["Y", "n", "", "maybe"]), what="prescription_on_file")
    >>> values.tolist(), why[3]
    ([True, False, <NA>, <NA>], "prescription_on_file 'maybe' is not yes/no/true/false/1/0")
    """
    raw = text.astype("str").fillna("")
    lower = raw.str.lower()
    values = pd.Series(pd.NA, index=text.index, dtype="boolean")
    values[lower.isin(YES).to_numpy(bool)] = True
    values[lower.isin(NO).to_numpy(bool)] = False
    other = ((raw != "") & values.isna()).to_numpy(bool)
    reasons = np.full(len(raw), "", dtype=object)
    if other_is_yes:
        values[other] = True
    else:
        _fail(reasons, other, raw, what, "is not yes/no/true/false/1/0")
    return values, pd.Series(reasons, index=text.index, dtype="str")
