"""Reporting periods: their labels, the period before and the same period a year earlier.

A report covers the services of a period, from a first to a last date of service. The
period names the output folder (``OUT/<label>/``), so runs for different periods never
overwrite each other, and it is what the comparison figures are set against:

* **label**: ``2025`` (a calendar year), ``2025-Q4`` (a quarter), ``2025-11`` (a month), else
  ``2025-03-03_2026-02-14`` (first and last date);
* **previous**: the period of the same length just before: the month, quarter or year before
  a whole month, quarter or year (more generally, as many whole months before a span of whole
  months), else as many days just before;
* **a year earlier**: the same dates twelve months back (29 February falls on the 28th).

:func:`parse` reads the ``--period`` keywords (``previous-month``, ``previous-quarter``,
``YYYY``, ``YYYY-MM``, ``YYYY-Qn``).

Examples
--------
>>> p = Period.of("2025-10-01", "2025-12-31")
>>> p.label, p.previous().label, p.year_earlier().label
('2025-Q4', '2025-Q3', '2024-Q4')
>>> Period.of("2026-02-01", "2026-02-28").describe()
'February 2026'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from analytics.exceptions import ParameterError

__all__ = ["Period", "parse", "label", "month_end"]

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date") and callable(value.date):  # pandas Timestamp
        return value.date()
    return dt.date.fromisoformat(str(value).strip()[:10])


def month_end(year: int, month: int) -> dt.date:
    """The last day of a month.

    Examples
    --------
    >>> month_end(2024, 2), month_end(2025, 12)
    (datetime.date(2024, 2, 29), datetime.date(2025, 12, 31))
    """
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, kept within the month (31 March - 1 month = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, month_end(year, month + 1).day))


@dataclasses.dataclass(frozen=True, order=True)
class Period:
    """A period of dates of service, ``start`` to ``end`` inclusive."""

    start: dt.date
    end: dt.date

    @classmethod
    def of(cls, start: Any, end: Any) -> Period:
        """A period from two dates (``YYYY-MM-DD`` text, dates or timestamps)."""
        a, b = _date(start), _date(end)
        if a > b:
            raise ParameterError(f"period_start {a} is after period_end {b}; swap them.")
        return cls(a, b)

    # --- shape --------------------------------------------------------------------------

    @property
    def months(self) -> int:
        """Number of whole calendar months the period spans, 0 when it is not whole months."""
        if self.start.day != 1 or self.end != month_end(self.end.year, self.end.month):
            return 0
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        """Folder name: ``2025``, ``2025-Q4``, ``2025-11`` or ``2025-03-03_2026-02-14``."""
        return label(self.start, self.end)

    def describe(self) -> str:
        """The period in words for a page: ``November 2025``, ``Q4 2025``, ``2025`` or two dates."""
        n, s = self.months, self.start
        if n == 12 and s.month == 1:
            return f"{s.year}"
        if n == 3 and s.month % 3 == 1:
            return f"Q{(s.month + 2) // 3} {s.year}"
        if n == 1:
            return f"{_MONTHS[s.month - 1]} {s.year}"
        return f"{self.start.isoformat()} to {self.end.isoformat()}"

    # --- comparison periods ---------------------------------------------------------------

    def previous(self) -> Period:
        """The period of the same length just before this one."""
        n = self.months
        if n:
            start = _shift_months(self.start, -n)
            return Period(start, self.start - dt.timedelta(days=1))
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def year_earlier(self) -> Period:
        """The same dates twelve months earlier."""
        if self.months:
            start = _shift_months(self.start, -12)
            return Period(start, month_end(self.end.year - 1, self.end.month))
        return Period(_shift_months(self.start, -12), _shift_months(self.end, -12))

    def months_back(self, months: int) -> Period:
        """The ``months`` calendar months ending with this period's last month (a trend window)."""
        last = self.end
        first = _shift_months(dt.date(last.year, last.month, 1), -(months - 1))
        return Period(first, month_end(last.year, last.month))

    def as_text(self) -> tuple[str, str]:
        """``(start, end)`` as ``YYYY-MM-DD`` text."""
        return self.start.isoformat(), self.end.isoformat()


def label(start: Any, end: Any) -> str:
    """The folder label of a period (see :class:`Period`).

    Examples
    --------
    >>> label("2025-01-01", "2025-12-31"), label("2025-11-01", "2025-11-30"), label("2025-03-03", "2026-02-14")
    ('2025', '2025-11', '2025-03-03_2026-02-14')
    """
    p = Period(_date(start), _date(end))
    n, s = p.months, p.start
    if n == 12 and s.month == 1:
        return f"{s.year}"
    if n == 3 and s.month % 3 == 1:
        return f"{s.year}-Q{(s.month + 2) // 3}"
    if n == 1:
        return f"{s.year}-{s.month:02d}"
    return f"{p.start.isoformat()}_{p.end.isoformat()}"


def parse(keyword: str, today: dt.date) -> Period:
    """``previous-month``, ``previous-quarter``, ``YYYY``, ``YYYY-MM`` or ``YYYY-Qn`` as a period.

    The previous month and quarter are counted from ``today``.

    Examples
    --------
    >>> parse("previous-quarter", dt.date(2026, 2, 10)).label
    '2025-Q4'
    >>> parse("2025-Q3", dt.date(2026, 1, 1)).as_text()
    ('2025-07-01', '2025-09-30')
    """
    k = keyword.strip().lower()
    try:
        if k == "previous-month":
            this = dt.date(today.year, today.month, 1)
            start = _shift_months(this, -1)
            return Period(start, this - dt.timedelta(days=1))
        if k == "previous-quarter":
            this = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
            return Period(_shift_months(this, -3), this - dt.timedelta(days=1))
        if re.fullmatch(r"\d{4}", k):
            return Period(dt.date(int(k), 1, 1), dt.date(int(k), 12, 31))
        if m := re.fullmatch(r"(\d{4})-q([1-4])", k):
            first = dt.date(int(m[1]), 3 * int(m[2]) - 2, 1)
            return Period(first, month_end(first.year, first.month + 2))
        if m := re.fullmatch(r"(\d{4})-(\d{2})", k):
            return Period(dt.date(int(m[1]), int(m[2]), 1), month_end(int(m[1]), int(m[2])))
    except ValueError:
        pass
    raise ParameterError(
        f"--period {keyword!r} is not a period: use previous-month, previous-quarter, YYYY, YYYY-MM or YYYY-Qn "
        "(e.g. 2026-Q1), or give -p period_start and -p period_end."
    )
