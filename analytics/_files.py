"""Whole-file writes: readers see the old file or the new one, never a part; and tables
written so that no cell runs as a formula when a spreadsheet opens them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd


def atomic_write(path: Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` through a temporary file and a rename.

    The parent folder is created; the file is readable by all (0644).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def publish(src: Path, dest: Path) -> Path:
    """Copy ``src`` to ``dest`` the same way: a reader only ever sees a whole file."""
    return atomic_write(dest, Path(src).read_bytes())


# --------------------------------------------------------------------------- spreadsheet-safe tables

#: First characters that make a spreadsheet (Excel, LibreOffice Calc, Google Sheets) read a
#: cell as a formula: ``=``, ``+``, ``-``, ``@``, tab, carriage return and NUL (OWASP "CSV
#: Injection"; ASVS 5.0 requirement 1.2.10).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
_FORMULA = r"^[=+\-@\t\r\x00]"
# a plain number (a spreadsheet reads it as the number, not as a formula): kept as it is
_NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"


def neutralise_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and header that a spreadsheet would run as a formula
    prefixed by ``'`` (the OWASP rule), so it shows as text.

    Numbers stay numbers: numeric columns are not touched, and text that is a plain number
    (``-12.50``, ``+5``, ``1e3``) is kept as it is. A lone ``-`` (a blank shown as a dash) is
    kept too. The frame is not modified; columns with nothing to neutralise are shared.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"note": ["=HYPERLINK(\\"x\\")", "-12.50", "@SUM(A1)", "ok"], "paid": [-1.5, 2, 3, 4]})
    >>> neutralise_cells(t)["note"].tolist(), neutralise_cells(t)["paid"].tolist()
    (['\\'=HYPERLINK("x")', '-12.50', "'@SUM(A1)", 'ok'], [-1.5, 2.0, 3.0, 4.0])
    """
    out = frame
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if not _is_text(values):
            continue
        text = values.astype("str")
        risky = (text.str.contains(_FORMULA, regex=True) & ~text.str.fullmatch(_NUMBER) & text.ne("-")
                 & values.notna()).fillna(False).to_numpy(dtype=bool)
        if risky.any():
            if out is frame:
                out = frame.copy()
            base = values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values
            out.isetitem(position, base.mask(risky, "'" + text))
    headers = [_neutral_text(c) for c in out.columns]
    if headers != list(out.columns):
        out = out.set_axis(headers, axis="columns") if out is not frame else frame.set_axis(headers, axis="columns")
    if out.index.dtype == object or str(out.index.dtype) in ("str", "string"):
        names = [_neutral_text(v) for v in out.index]
        if names != list(out.index):
            out = (out if out is not frame else frame.copy()).set_axis(
                pd.Index(names, name=out.index.name), axis="index")
    return out


def _is_text(values: pd.Series) -> bool:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return not pd.api.types.is_numeric_dtype(dtype.categories.dtype)
    return pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)


def _neutral_text(value: object) -> object:
    if not isinstance(value, str) or value == "-" or not value.startswith(FORMULA_STARTS):
        return value
    import re

    return value if re.fullmatch(_NUMBER, value) else "'" + value


def csv_text(frame: pd.DataFrame, **options: Any) -> str:
    """``frame`` as CSV text, with formula-like cells neutralised (:func:`neutralise_cells`).

    A carriage return inside a cell stays inside its cell when the file is read back.

    Options go to :meth:`pandas.DataFrame.to_csv` (default: no index, ``\\n`` line ends).
    """
    options = {"index": False, "lineterminator": "\n", **options}
    safe = neutralise_cells(frame)
    if "quoting" not in options and _has_cr(safe):
        # Python's csv module quotes a cell holding "\n" but not one holding a bare "\r"
        # when lines end in "\n", and a reader then splits the row there: quote every text cell
        import csv

        options["quoting"] = csv.QUOTE_NONNUMERIC
    return safe.to_csv(**options)


def _has_cr(frame: pd.DataFrame) -> bool:
    if any("\r" in str(c) for c in frame.columns):
        return True
    for position in range(frame.shape[1]):
        values = frame.iloc[:, position]
        if _is_text(values) and values.astype("str").str.contains("\r", regex=False).fillna(False).any():
            return True
    return False


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], **options: Any) -> Path:
    """Write ``frame`` to ``path`` as UTF-8 CSV, whole-file (:func:`atomic_write`), with
    formula-like cells neutralised so a spreadsheet shows them as text.

    Every CSV the toolkit writes goes through here (or :func:`csv_text` for a file written
    in parts), so no cell of an export, an 835 or a report table runs as a formula when the
    file is opened in Excel. Options go to :meth:`pandas.DataFrame.to_csv` (default: no
    index, ``\\n`` line ends).
    """
    return atomic_write(Path(path), csv_text(frame, **options).encode("utf-8"))
