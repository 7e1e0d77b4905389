"""Errors and warnings raised by the toolkit.

Every error says what was wrong, where (file, row, segment) and how to fix it. Errors about
rows carry the offending rows in ``.rows`` so a caller can show or save them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = [
    "AnalyticsError",
    "InputError",
    "UnknownCodeError",
    "MinutesError",
    "UnknownPayerError",
    "PayerPolicyError",
    "ReferenceDataError",
    "X12Error",
    "ParameterError",
    "PrivacyError",
    "ModelError",
    "AnalyticsWarning",
    "UnpricedCodeWarning",
    "SmallSampleWarning",
    "BalanceWarning",
    "X12Warning",
    "QuarantineWarning",
]


def _row_list(index: Any, limit: int = 10) -> str:
    values = [str(i) for i in list(index)[:limit]]
    more = len(index) - len(values)
    return ", ".join(values) + (f" and {more} more" if more > 0 else "")


class AnalyticsError(Exception):
    """Base class of every error the toolkit raises on purpose.

    Parameters
    ----------
    message
        What was wrong, where, and how to fix it.
    rows
        The offending rows, when the error is about rows of a table.
    where
        A short locator: a file name, a row number, a segment number.
    """

    def __init__(self, message: str, *, rows: pd.DataFrame | None = None, where: str | None = None):
        super().__init__(message)
        self.rows = rows
        self.where = where

    @classmethod
    def for_rows(cls, rows: pd.DataFrame, problem: str, fix: str, *, noun: str = "line") -> AnalyticsError:
        """Build an error naming the offending rows, e.g. ``3 line(s) ... (rows 1, 4, 9). Fix.``"""
        n = len(rows)
        msg = f"{n} {noun}(s) {problem} (rows {_row_list(rows.index)}). {fix}"
        return cls(msg, rows=rows, where=f"rows {_row_list(rows.index)}")


class InputError(AnalyticsError, ValueError):
    """The caller's data or arguments are not usable as given."""


class UnknownCodeError(InputError):
    """A procedure code the code catalog does not know."""


class MinutesError(InputError):
    """Minutes missing, negative or not a number for a timed code."""


class UnknownPayerError(InputError, KeyError):
    """A payer id with no policy."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PayerPolicyError(InputError):
    """A payer policy file or mapping that does not follow the schema."""


class ReferenceDataError(AnalyticsError, LookupError):
    """Reference data missing for what was asked: a year with no rates, an unknown locality."""


class X12Error(InputError):
    """An 835 file that cannot be read; names the file and the segment number."""


class ParameterError(InputError):
    """A report parameter that is unknown or has the wrong form."""


class PrivacyError(AnalyticsError):
    """A patient identifier was found in an output that leaves the practice."""


class ModelError(AnalyticsError):
    """A model used before fitting, or fitted on data that cannot support it."""


class AnalyticsWarning(UserWarning):
    """Base class of the toolkit's warnings."""


class UnpricedCodeWarning(AnalyticsWarning):
    """A payable line has no rate (e.g. contractor-priced 97139 without a payer rate)."""


class SmallSampleWarning(AnalyticsWarning):
    """Too little history to estimate something well; a prior carries the estimate."""


class BalanceWarning(AnalyticsWarning):
    """An 835 does not balance at line, claim or transaction level."""


class X12Warning(AnalyticsWarning):
    """An 835 oddity that does not stop the read (e.g. an SE count that does not match)."""


class QuarantineWarning(AnalyticsWarning):
    """Rows were set aside in quarantine; the quarantine table says why."""
