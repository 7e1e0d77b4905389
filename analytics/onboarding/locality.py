"""The practice's Medicare locality, and its practice.yaml read and checked."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.refdata import Reference, load_reference

__all__ = ["known_localities", "check_locality", "check_practice_settings", "LIST_LOCALITIES", "PRACTICE_FILE"]

#: The practice's settings file in a practice folder.
PRACTICE_FILE = "practice.yaml"


# ---------------------------------------------------------------------------------------
# The practice's locality and practice.yaml
# ---------------------------------------------------------------------------------------

#: The command that lists the Medicare localities (named in every locality error).
LIST_LOCALITIES = "python -m analytics init --localities"


def known_localities(state: str | None = None, reference: Reference | None = None) -> pd.DataFrame:
    """The Medicare localities the reference data has GPCIs for, one row each.

    Parameters
    ----------
    state
        Two-letter state (``CA``) to list only its localities; ``None`` for all.

    Returns
    -------
    DataFrame
        ``locality_id`` (MAC-locality, as practice.yaml and ``-p locality`` take it),
        ``state``, ``locality_name`` and ``years`` (the fee-schedule years it has GPCIs for).

    Examples
    --------
    >>> "13202-01" in set(known_localities("NY")["locality_id"])
    True
    """
    ref = reference or load_reference()
    g = ref.gpci
    if state:
        g = g[g["state"].astype("str").str.upper() == str(state).strip().upper()]
    if g.empty:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in ("locality_id", "state", "locality_name",
                                                                       "years")})
    years = g.groupby("locality_id")["year"].agg(lambda y: ", ".join(str(v) for v in sorted(set(y))))
    first = g.sort_values("year", kind="stable").drop_duplicates("locality_id", keep="last")
    out = first[["locality_id", "state", "locality_name"]].assign(years=first["locality_id"].map(years).to_numpy())
    return out.sort_values(["state", "locality_id"], kind="stable").reset_index(drop=True)


def check_locality(value: object, *, where: str, reference: Reference | None = None) -> str:
    """``value`` as a Medicare locality id, or a :class:`ParameterError` naming ``where``.

    ``where`` says where the value came from in the user's words (``-p locality``,
    ``practice.yaml (/srv/practice/practice.yaml)``, ``--locality``).

    Examples
    --------
    >>> check_locality(" 13202-01 ", where="--locality")
    '13202-01'
    """
    from analytics.exceptions import ParameterError

    text = str(value).strip() if value is not None else ""
    ref = reference or load_reference()
    known = set(ref.gpci["locality_id"].astype("str"))
    if text in known:
        return text
    shape = ("" if re.fullmatch(r"\d{5}-\d{2}", text) else
             " A locality is written MAC-locality, five digits, a dash and two digits (e.g. 01182-18 for Los "
             "Angeles, 00000-00 for national rates).")
    raise ParameterError(
        f"{where} gives Medicare locality {text!r}, which is not one of the {len(known)} localities the fee "
        f"schedule has.{shape} List them with `{LIST_LOCALITIES}` (or `{LIST_LOCALITIES} CA` for one state) "
        "and give one of those ids.",
        where=where,
    )


def check_practice_settings(folder: str | os.PathLike[str], *, reference: Reference | None = None) -> dict[str, Any]:
    """``practice.yaml`` of a practice folder, read (:func:`analytics.practice.read_practice_settings`)
    and checked: ``{}`` when the folder has none.

    Its locality must be one the fee schedule has, and the export it names must be in the
    folder; the error names the file, the value and the fix, so that a report run stops before
    any page is made.
    """
    from analytics.exceptions import InputError
    from analytics.practice import read_practice_settings

    path = Path(folder) / PRACTICE_FILE
    out = dict(read_practice_settings(path))
    if out.get("locality") not in (None, ""):
        out["locality"] = check_locality(out["locality"], where=f"{path} (locality:)", reference=reference)
    export = out.get("export")
    if export and not (Path(folder) / str(export)).is_file():
        raise InputError(f"{path} names the export {export!r}, which is not in {Path(folder)}. Put the export "
                         "there under that name, or run `python -m analytics init` again with --export FILE.",
                         where=str(path))
    return out
