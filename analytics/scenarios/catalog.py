"""The code catalog and the NCCI pairs of a session, as plain-Python views of the reference.

A session has a handful of codes, so the reference tables are read once into dictionaries
and lists (rebuilt when a table object changes) instead of being filtered per call.

Sources: FACTS sec. 4 (NCCI procedure-to-procedure pairs, modifier indicators).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from analytics.payers import PayerPolicy
from analytics.refdata import Reference

if TYPE_CHECKING:
    from analytics.scenarios.session import Session

__all__ = ["code_catalog_table", "code_catalog", "pairs_present"]

_CACHE: dict[str, tuple[object, Any]] = {}


def _cached(name: str, table: pd.DataFrame, build) -> Any:
    """A plain-Python view of a reference table, rebuilt when the table object changes."""
    hit = _CACHE.get(name)
    if hit is None or hit[0] is not table:
        hit = (table, build(table))
        _CACHE[name] = hit
    return hit[1]


def code_catalog_table(ref: Reference) -> dict[str, tuple[bool, bool]]:
    """``{code: (timed, therapy)}`` for every code of the catalog (``codes.csv``)."""
    return _cached(
        "codes",
        ref.codes,
        lambda t: {
            c: (bool(x), bool(y))
            for c, x, y in zip(t["cpt"], t["timed"], t["therapy"], strict=True)
        },
    )


def code_catalog(ref: Reference, codes: Sequence[str]) -> dict[str, tuple[bool, bool]]:
    """``{code: (timed, therapy)}`` for ``codes``; raises for codes the catalog lacks."""
    table = code_catalog_table(ref)
    if any(c not in table for c in codes):
        ref.code_table(pd.Series(list(codes), dtype=str))  # raises, naming the codes
    return {c: table[c] for c in codes}


def pairs_present(session: Session, ref: Reference, payers: Mapping[str, PayerPolicy] | None):
    """NCCI column-1/column-2 pairs (and payer pair rules) among the codes performed."""
    codes = set(session.codes)
    when = pd.Timestamp(session.service_date)
    rows = _cached(
        "ptp",
        ref.ncci_ptp,
        lambda t: list(
            t.loc[
                t["modifier_indicator"] != 9,
                ["column1", "column2", "effective_date", "deletion_date", "modifier_indicator"],
            ].itertuples(index=False)
        ),
    )
    pairs = {
        (c1, c2): int(ind)
        for c1, c2, start, end, ind in rows
        if c1 in codes
        and c2 in codes
        and (pd.isna(start) or start <= when)
        and (pd.isna(end) or when < end)
    }
    for p in (payers or {}).values():
        for c1, c2, _ in p.ncci.pairs:
            if c1 in codes and c2 in codes and c1 != c2:
                pairs.setdefault((c1, c2), 1)
    return pairs
