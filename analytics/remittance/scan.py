"""What the reader collects from one part of an 835, and what building its tables needs.

A part ends before a claim (CLP) or a transaction (ST), so every claim is whole in one part;
a transaction may span parts, and its running sums carry from one part to the next.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from analytics.remittance.notes import Notes
from analytics.remittance.tokenizer import Interchange


@dataclass
class Scan:
    """What the scan collected for one part, column by column.

    Amounts and indexes are typed arrays (no Python object per value); codes that repeat are
    shared string objects. Values that arrive after their CLP or SVC (DTM, REF, AMT, NM1) sit
    in dicts keyed by the 1-based claim or line number in the file. ``claim_base``,
    ``line_base`` and ``st_base`` count the claims, lines and transactions of the parts
    before this one.
    """

    claim_base: int
    line_base: int
    st_base: int
    payments: list[dict[str, object]] = field(default_factory=list)
    c_seg: array = field(default_factory=lambda: array("q"))
    c_st: array = field(default_factory=lambda: array("q"))
    c_charge: array = field(default_factory=lambda: array("d"))
    c_paid: array = field(default_factory=lambda: array("d"))
    c_pr: array = field(default_factory=lambda: array("d"))
    c_id: list[str] = field(default_factory=list)
    c_status: list[str] = field(default_factory=list)
    c_filing: list[str] = field(default_factory=list)
    c_payer_claim: list[str] = field(default_factory=list)
    c_facility: list[str] = field(default_factory=list)
    c_freq: list[str] = field(default_factory=list)
    c_key: dict[int, str] = field(default_factory=dict)
    c_dates: dict[str, dict[int, str]] = field(
        default_factory=lambda: {"232": {}, "233": {}, "050": {}}
    )
    l_seg: array = field(default_factory=lambda: array("q"))
    l_claim: array = field(default_factory=lambda: array("q"))
    l_charge: array = field(default_factory=lambda: array("d"))
    l_paid: array = field(default_factory=lambda: array("d"))
    l_units: array = field(default_factory=lambda: array("d"))
    l_svc01: list[str] = field(default_factory=list)
    # (first line number, interchange) for each interchange the part's lines come from
    l_chunk: list[tuple[int, Interchange]] = field(default_factory=list)
    l_more: dict[str, dict[int, object]] = field(
        default_factory=lambda: {k: {} for k in ("472", "150", "151", "6R", "B6", "SVC04", "SVC06")}
    )
    a_seg: array = field(default_factory=lambda: array("q"))
    a_owner: array = field(default_factory=lambda: array("q"))  # line number, or -claim number
    a_amount: array = field(default_factory=lambda: array("d"))
    a_group: list[str] = field(default_factory=list)
    a_carc: list[str] = field(default_factory=list)
    a_qty: dict[int, float] = field(default_factory=dict)
    remarks: list[tuple[int, int, int, str, str]] = field(default_factory=list)
    plb: list[tuple[int, int, str, str, str, Interchange, float]] = field(default_factory=list)


@dataclass
class OpenTransaction:
    """Running sums of the transaction still open where a part ends: its balance check
    (BPR02 = sum of CLP04 - sum of PLB) needs every claim and PLB of the transaction."""

    st_index: int = 0
    paid: float = 0.0
    plb: float = 0.0


@dataclass
class Entry:
    """A part to build (:func:`~analytics.remittance.builder.build_tables`): what the scan
    collected, and the file it comes from.

    ``carried`` holds the sums of a transaction begun in an earlier part of the file,
    ``open_st`` is the transaction still open after this part (0 if none), and ``st_end`` the
    number of transactions begun in the file up to the end of the part, so every transaction
    of the part is numbered ``scan.st_base`` to ``st_end``.
    """

    scan: Scan
    name: str
    notes: Notes
    settle: Callable[[Interchange], None]
    carried: OpenTransaction
    open_st: int
    st_end: int

    @property
    def rows(self) -> int:
        """Rows the part adds to the tables, a measure of the memory its scan holds."""
        s = self.scan
        return len(s.c_seg) + len(s.l_seg) + len(s.a_seg) + len(s.remarks) + len(s.plb)
