"""The warnings about one 835 file, gathered part by part and worded once at the end.

A file read in parts gives the same warnings, in the same order and words, as a read of the
whole file at once: each kind is collected as the parts come and worded by :meth:`Notes.messages`.
"""

from __future__ import annotations

import pandas as pd

from analytics.exceptions import BalanceWarning, X12Warning
from analytics.remittance.tables import LEVELS
from analytics.remittance.tokenizer import Note

# Date warnings, in the order a whole-file read words them.
_DATE_FIELDS = (
    "BPR16", "DTM*405", "DTM*232", "DTM*233", "DTM*472", "DTM*150", "DTM*050", "DTM*151", "PLB02",
)  # fmt: skip


class Notes:
    """The warnings about one file, gathered part by part and worded once at the end, exactly
    as a read of the whole file at once words them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reading: list[Note] = []  # component separators, text after the last IEA
        self.transactions: list[Note] = []  # SE counts and control numbers
        self.scan: list[Note] = []  # envelope counts, empty amounts, stray segments, groups
        self.no_bpr: list[int] = []
        self.undated: list[int] = []
        self.codeless: tuple[int, list[str]] = (0, [])  # lines whose SVC01 has no code
        self.dates: dict[str, tuple[int, list[str]]] = {}
        self.checks = 0
        self.failed = dict.fromkeys(LEVELS, 0)
        self.first_failed: dict[str, list[pd.DataFrame]] = {level: [] for level in LEVELS}

    def bad_dates(self, what: str, count: int, shown: list[str]) -> None:
        before, first = self.dates.get(what, (0, []))
        self.dates[what] = (before + count, (first + shown)[:5])

    def no_code(self, count: int, shown: list[str]) -> None:
        before, first = self.codeless
        self.codeless = (before + count, (first + shown)[:5])

    def balance(self, table: pd.DataFrame) -> None:
        self.checks += len(table)
        failed = table[~table["balanced"].to_numpy(dtype=bool)]
        if failed.empty:
            return
        levels = failed["level"].to_numpy(dtype=object)
        for level in LEVELS:
            rows = failed[levels == level]
            if len(rows):
                if self.failed[level] < 3:
                    self.first_failed[level].append(rows.head(3))
                self.failed[level] += len(rows)

    def messages(self) -> list[Note]:
        name = self.name
        out = [*self.reading, *self.transactions, *self.scan]
        if self.no_bpr:
            where = ", ".join(str(s) for s in self.no_bpr)
            out.append(
                (
                    X12Warning,
                    f"{name}: the transaction(s) at segment(s) {where} have no BPR; paid_amount "
                    f"is missing and the transaction cannot balance.",
                )
            )
        if self.undated:
            where = ", ".join(str(s) for s in self.undated)
            out.append(
                (
                    X12Warning,
                    f"{name}: BPR at segment(s) {where} has no payment date in BPR16 (count the "
                    f"separators: BPR16 is the 16th element); payment_date is missing.",
                )
            )
        if self.codeless[0]:
            count, shown = self.codeless
            more = f" and {count - len(shown)} more" if count > len(shown) else ""
            out.append(
                (
                    X12Warning,
                    f"{name}: SVC01 at segment(s) {', '.join(shown)}{more} holds no procedure "
                    f"code (SVC01 is qualifier, then code: 'HC:97140'); cpt is missing, and the "
                    f"amounts were read where SVC02 (charge) and SVC03 (paid) put them.",
                )
            )
        for what in _DATE_FIELDS:
            if what in self.dates:
                count, shown = self.dates[what]
                out.append(
                    (
                        X12Warning,
                        f"{name}: {count} {what} value(s) are not CCYYMMDD dates: "
                        f"{', '.join(shown)}; read as missing (NaT).",
                    )
                )
        failed = sum(self.failed.values())
        if failed:
            heads = [frame for level in LEVELS for frame in self.first_failed[level]]
            first = pd.concat(heads, ignore_index=True).head(3)
            out.append((BalanceWarning, _balance_message(name, first, failed, self.checks)))
        return out


def _balance_message(name: str, first: pd.DataFrame, failed: int, checks: int) -> str:
    shown = []
    for row in first.itertuples(index=False):
        where = {
            "line": f"line {row.line_index} of claim {row.claim_id!r}",
            "claim": f"claim {row.claim_id!r}",
            "transaction": f"transaction {row.st_index}",
        }[row.level]
        shown.append(f"{where}: expected {row.expected:.2f}, file says {row.actual:.2f}")
    more = failed - len(shown)
    return (
        f"{name}: {failed} of {checks} balance check(s) fail "
        f"({'; '.join(shown)}{f'; and {more} more' if more > 0 else ''}). See "
        f"Remittance.balance; ask the payer for a corrected 835 if the amounts matter."
    )
