"""The 835 reader: one pass over the segments of a file, part by part.

The scan dispatches on the segment id and keeps only the values the tables need; names are
never read, and a member id is kept only as its keyed pseudonym (``patient_key``). Structure followed
(005010X221A1 TR3): ISA/GS(HP)/ST*835, BPR (payment), TRN (trace), DTM*405, loop 1000A N1*PR
payer, loop 1000B N1*PE payee, LX header, loop 2100 CLP claim, loop 2110 SVC service line, PLB
provider adjustments, SE/GE/IEA.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
import os
import re
from collections.abc import Iterator

from analytics.exceptions import X12Error, X12Warning
from analytics.privacy.keys import DEFAULT_SALT as PUBLIC_KEY_TEXT
from analytics.privacy.keys import PracticeKey, resolve_key
from analytics.privacy.pseudonyms import pseudonym, pseudonyms
from analytics.remittance.builder import build_tables
from analytics.remittance.notes import Notes
from analytics.remittance.scan import (
    RUN_MINIMUM,
    ClaimRuns,
    ClaimState,
    Entry,
    OpenTransaction,
    Scan,
    scan_claims,
)
from analytics.remittance.sources import open_source
from analytics.remittance.tables import Remittance
from analytics.remittance.tokenizer import PAD, Interchange, Segments, SegmentText, Tokenizer

#: Key of ``patient_key`` when no practice key is given or set (public: see
#: :data:`analytics.privacy.DEFAULT_SALT`); ``patient_key`` is the keyed pseudonym of
#: :func:`analytics.privacy.pseudonym`, the one every table of the practice uses.
DEFAULT_SALT = PUBLIC_KEY_TEXT


# CAS01 group codes. CR (correction/reversal) was eliminated in 5010 (X12 RFI 1147) but is
# still accepted so that legacy 4010 files read.
_GROUP_CODES = frozenset({"CO", "PR", "OA", "PI", "CR"})

# Element positions that hold amounts (X12 type R), to name the bad element in an error.
_NUMERIC = {
    "BPR": (2,),
    "CLP": (3, 4, 5),
    "SVC": (2, 3, 5),
    "CAS": (3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19),
    "AMT": (2,),
    "PLB": (4, 6, 8, 10, 12, 14),
}

# MOA03-MOA07 (professional) and MIA05, MIA20-MIA23 (institutional) carry claim-level
# remark codes (TR3 loop 2100).
_REMARK_ELEMENTS = {"MOA": (3, 4, 5, 6, 7), "MIA": (5, 20, 21, 22, 23)}

# Patient keys already hashed are kept for reuse up to this many distinct ids, then forgotten,
# so that the cache cannot grow with the file.
_HASH_CACHE = 2**16

# Distinct amounts kept checked and converted in a part, at most (:meth:`Reader._feed`).
_AMOUNT_CACHE = 2**15


def _resolve_salt(salt: str | bytes | PracticeKey | None) -> PracticeKey:
    return resolve_key(salt)


# X12 decimal numbers (type R): ASCII digits, an optional leading minus sign and an optional
# decimal point (X12.6 data element types). float() also takes '1e5', '1_000', '+5', 'NaN',
# 'inf' and non-ASCII digits, so an amount is converted only when every character is one of
# these (the check is a strip) and it is no longer than an amount can be (R is at most 18
# digits); float() then rejects what is left ('-', '1.2.3', '5-').
_DECIMAL_CHARS = "0123456789.-"
_X12_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)")

# Segment ids of the 835 (005010X221A1, and 004010X091A1 for legacy files). Those the tables
# do not need are passed over; any other id is warned about.
_ENVELOPE = frozenset({"ISA", "IEA", "GS", "GE"})
_KNOWN_UNREAD = frozenset({"CUR", "N2", "N3", "N4", "PER", "RDM", "TS3", "TS2", "QTY", "TA1"})
_SEGMENT_IDS = frozenset(
    {"ST", "SE", "BPR", "TRN", "REF", "DTM", "N1", "LX", "CLP", "CAS", "NM1", "MIA", "MOA"}
    | {"AMT", "SVC", "LQ", "PLB"}
    | _ENVELOPE
    | _KNOWN_UNREAD
)
# What ends the skipping of a claim set aside, or of a transaction that is not an 835.
_CLAIM_ENDS = frozenset({"CLP", "LX", "PLB", "SE", "ST"}) | _ENVELOPE
_TRANSACTION_ENDS = frozenset({"ST"}) | _ENVELOPE

# Transaction sets that may share a file with 835s, named in the warning that skips them.
_TRANSACTION_NAMES = {
    "837": "health care claim",
    "277": "claim status response",
    "276": "claim status request",
    "278": "services review",
    "270": "eligibility inquiry",
    "271": "eligibility response",
    "820": "premium payment",
    "834": "benefit enrollment",
    "997": "functional acknowledgment",
    "999": "implementation acknowledgment",
}


def _reject() -> float:
    # an amount that is not an X12 number: the scan's handler says which and sets it aside
    raise ValueError("not an X12 number")


def _number_problem(seg: list[str], number: int, name: str) -> str | None:
    """What is wrong with the first amount of ``seg`` that is not an X12 number (None when
    every amount is one)."""
    tag = seg[0] if seg else "?"
    for i in _NUMERIC.get(tag, ()):
        value = seg[i] if i < len(seg) else ""
        if value and not (_X12_NUMBER.fullmatch(value) and len(value) < 32):
            return (
                f"{name}: segment {number} ({tag}) element {tag}{i:02d} is {value[:40]!r}, "
                f"which is not an X12 number (ASCII digits with an optional leading minus sign "
                f"and one decimal point, at most 18 digits)"
            )
    return None


def _roll_back(p: Scan, mark: tuple[int, ...], claim_no: int, line_no: int) -> None:
    """Take out of the part everything of the claim that begins at ``mark``."""
    claims, lines, adjustments, remarks, first_claim, first_line, _ = mark
    for column in (
        p.c_seg, p.c_st, p.c_charge, p.c_paid, p.c_pr, p.c_id, p.c_status, p.c_filing,
        p.c_payer_claim, p.c_facility, p.c_freq,
    ):  # fmt: skip
        del column[claims:]
    for column in (p.l_seg, p.l_claim, p.l_charge, p.l_paid, p.l_units, p.l_svc01):
        del column[lines:]
    for column in (p.a_seg, p.a_owner, p.a_amount, p.a_group, p.a_carc):
        del column[adjustments:]
    del p.remarks[remarks:]
    for by_claim in (p.c_key, *p.c_dates.values()):
        for k in range(first_claim + 1, claim_no + 1):
            by_claim.pop(k, None)
    for by_line in p.l_more.values():
        for k in range(first_line + 1, line_no + 1):
            by_line.pop(k, None)
    for k in [k for k in p.a_qty if k >= adjustments]:
        del p.a_qty[k]


def _count_matches(said: str, count: object) -> bool:
    return said == str(count) or (said.isdigit() and said.isascii() and int(said) == count)


def _same_control(a: str, b: object) -> bool:
    if a == b:
        return True
    b = str(b)
    return a.isdigit() and b.isdigit() and a.isascii() and b.isascii() and int(a) == int(b)


def _last_boundary(segments: Segments, element: str) -> int:
    """Index of the last CLP or ST in ``segments`` (-1 if none): a part may end before it,
    since nothing after a new claim or transaction belongs to the claims before it."""
    clp, st = "CLP" + element, "ST" + element
    last = (
        segments.from_end()
        if isinstance(segments, SegmentText)
        else ((i, segments[i]) for i in range(len(segments) - 1, -1, -1))
    )
    for i, raw in last:
        if raw.startswith(clp) or raw.startswith(st) or raw == "CLP" or raw == "ST":
            return i
    return -1


class Reader:
    """Reads one 835 part by part.

    The scan is one pass over the segments, dispatching on the segment id; each segment is
    split while it is fresh in memory and only the values the tables need are kept, which is
    what makes the reader fast. Long runs of claim loops (a large interchange) are read
    column-wise instead (:func:`~analytics.remittance.scan.scan_claims`), into the same
    columns. Its context (transaction, claim, service line, counters) lives on across parts;
    what it collects starts afresh with each part. A part ends before a CLP or ST once a batch
    of segments has been scanned, so every claim is whole in one part, and claim, line and
    segment numbers count through the file.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        salt: str | bytes | PracticeKey | None,
        source_name: str | None,
        chunk_bytes: int,
    ) -> None:
        self.pieces, self.name = open_source(source, source_name, chunk_bytes)
        self.notes = Notes(self.name)
        self.tokenizer = Tokenizer(self.pieces, self.name, self.notes.reading)
        self.salt = _resolve_salt(salt)
        self.hashes: dict[str, str] = {}
        self.amounts: dict[str, float] = {}  # amount text -> its value, checked
        self.pay: dict[str, object] | None = None
        self.st_index = 0
        self.in_st = False
        self.st_seg = 0
        self.st_control = ""
        self.level = 0  # 0: header or between claims, 1: in a claim (2100), 2: in a line (2110)
        self.claim_no = 0  # counts across transactions, so claim_index is unique in a file
        self.st_claims = 0
        self.line_no = 0
        self.isa_count = 0
        self.iea_count = 0
        self.number = 0
        self.empties: list[str] = []
        self.outside: list[str] = []
        self.groups: set[str] = set()
        self.open = OpenTransaction()
        self.part = Scan(0, 0, 0)
        self.pending: tuple[Interchange, Segments] | None = None
        self.aside = ""  # "claim" or "transaction" while the rest of one is skipped
        self.mark: tuple[int, ...] = (0,) * 7  # where the current claim begins in the part
        # ISA segment and ISA13, groups, GS segment and GS06, transactions in the group
        self.env: list[object] = [0, "", 0, 0, "", 0]
        self.others: list[list[object]] = []  # [kind, control, ST segment, SE segment]
        self.unknown: list[str] = []  # segments with an id the 835 does not use (first 10)
        self.unknown_count = 0
        self.outside_count = 0  # segments outside a claim or transaction beyond the first 10
        self.trimmed: list[str] = []  # segment ids read without their spaces (first 10)
        self.trimmed_count = 0

    def parts(self) -> Iterator[Remittance]:
        """The file's parts, in order; warnings are gathered in ``self.notes``."""
        try:
            batches = self.tokenizer.batches()
            while True:
                with gc_paused():
                    part, done = self._next_part(batches)
                if part is not None:
                    yield part
                if done:
                    return
        finally:
            self.pieces.close()

    def collect(self) -> tuple[list[Remittance], Entry | None]:
        """Read the whole file: the parts that end before the file does, built as they come,
        and the last part unbuilt (None when it holds nothing), for the caller to build with
        :meth:`build`, or together with the last parts of other files (:func:`build_tables`)."""
        built: list[Remittance] = []
        try:
            batches = self.tokenizer.batches()
            while True:
                with gc_paused():
                    part, done = self._next_part(batches, build_last=False)
                if done:
                    return built, part  # type: ignore[return-value]
                if part is not None:
                    built.append(part)  # type: ignore[arg-type]
        finally:
            self.pieces.close()

    def _next_part(
        self, batches: Iterator[tuple[Interchange, Segments]], *, build_last: bool = True
    ) -> tuple[Remittance | Entry | None, bool]:
        while True:
            if self.pending is not None:
                ic, segments = self.pending
                self.pending = None
            else:
                batch = next(batches, None)
                if batch is None:
                    self._finish()
                    return (self._flush() if build_last else self._take()), True
                ic, segments = batch
            # Once the rest of the file is in memory, ending the part early saves nothing.
            cut = -1 if self.pieces.exhausted else _last_boundary(segments, ic.delimiters.element)
            if cut > 0 or (cut == 0 and self._collected()):
                self._scan(ic, segments[:cut])
                self.pending = (ic, segments[cut:])
                part = self._flush()
                if part is not None:
                    return part, False
            else:
                self._scan(ic, segments)

    def _collected(self) -> bool:
        # lines, adjustments and remarks always come with a claim
        p = self.part
        return bool(p.payments or p.c_seg or p.plb)

    def _take(self) -> Entry | None:
        """The part collected so far, unbuilt, with what building it needs; the next part
        starts afresh."""
        scan = self.part
        collected = self._collected()
        self.part = Scan(self.claim_no, self.line_no, self.st_index)
        if not collected:
            return None
        self.groups.update(scan.a_group)
        entry = Entry(
            scan=scan,
            name=self.name,
            notes=self.notes,
            settle=self.tokenizer.settle,
            carried=self.open,
            open_st=self.st_index if self.in_st else 0,
            st_end=self.st_index,
        )
        if len(self.hashes) > _HASH_CACHE:
            self.hashes.clear()
        self.amounts.clear()  # memory stays bounded by the part, not the file
        return entry

    def build(self, entry: Entry) -> Remittance:
        """The tables of a part from :meth:`_take`; its open transaction carries on."""
        remit, (self.open,) = build_tables([entry])
        return remit

    def _flush(self) -> Remittance | None:
        """Build the part collected so far and start the next one."""
        entry = self._take()
        return None if entry is None else self.build(entry)

    def _scan(self, ic: Interchange, segments: Segments) -> None:
        """Scan a batch of segments into the current part: long runs of claim loops column
        by column (:func:`~analytics.remittance.scan.scan_claims`), the rest segment by
        segment (:meth:`_feed`)."""
        d = ic.delimiters
        found = ClaimRuns.find(segments, d.element, d.segment, RUN_MINIMUM)
        if found is None:
            self._feed(ic, segments)
            return
        runs, spans = found
        at = 0
        for lo, hi in spans:
            if lo > at:
                self._feed(ic, runs.segments(segments, at, lo))
            if not self._scan_claims(ic, runs, lo, hi):
                self._feed(ic, runs.segments(segments, lo, hi))
            at = hi
        if at < len(segments):
            self._feed(ic, runs.segments(segments, at, len(segments)))

    def _scan_claims(self, ic: Interchange, runs: ClaimRuns, lo: int, hi: int) -> bool:
        """Read the run of claim loops ``lo`` to ``hi`` column-wise; False when it must go
        through the segment loop (outside an 835 transaction, or anything it would warn
        about)."""
        if not self.in_st or self.pay is None or self.aside not in ("", "claim"):
            return False
        p = self.part
        if not p.l_chunk or p.l_chunk[-1][1] is not ic:
            p.l_chunk.append((self.line_no + 1, ic))
        state = ClaimState(
            self.number, self.claim_no, self.line_no, self.st_claims, self.level, self.mark
        )
        after = scan_claims(runs, lo, hi, p, state, self.st_index, self._patient_keys)
        if after is None:
            return False
        self.number, self.claim_no, self.line_no = after.number, after.claim_no, after.line_no
        self.st_claims, self.level, self.mark = after.st_claims, after.level, after.mark
        self.aside = ""  # a claim set aside ends at the CLP that begins the run
        return True

    def _patient_keys(self, idents: list[str]) -> list[str]:
        """The keyed pseudonym of each id (distinct, not blank), hashed once per file part."""
        hashes = self.hashes
        new = [i for i in idents if i not in hashes]
        if new:
            hashes.update(zip(new, pseudonyms(new, self.salt).tolist(), strict=True))
        return [hashes[i] for i in idents]

    def _feed(self, ic: Interchange, segments: Segments) -> None:
        """Scan a batch of segments into the current part, segment by segment."""
        if not segments:
            return
        p = self.part
        if not p.l_chunk or p.l_chunk[-1][1] is not ic:
            p.l_chunk.append((self.line_no + 1, ic))
        name = self.name
        sep = ic.delimiters.element
        same = {}.setdefault  # one shared object per distinct code or date
        salt_bytes = self.salt
        hashes = self.hashes
        empties = self.empties
        outside = self.outside
        notes = self.notes.transactions
        D = _DECIMAL_CHARS  # amounts are converted only when they are X12 numbers

        def empty_amount(number: int, element: str) -> float:
            empties.append(f"{number} ({element})")
            return 0.0

        # Amounts repeat (fees, copays, contractual write-offs): each distinct one is checked
        # and converted once, up to _AMOUNT_CACHE of them. Zero is looked at each time.
        amounts = self.amounts
        known = amounts.get

        def number_of(v: str) -> float:
            x = float(v) if len(v) < 32 and not v.strip(D) else _reject()
            if len(amounts) < _AMOUNT_CACHE:
                amounts[v] = x
            return x

        payments = p.payments
        c_seg, c_st, c_charge, c_paid, c_pr = p.c_seg, p.c_st, p.c_charge, p.c_paid, p.c_pr
        c_id, c_status, c_filing = p.c_id, p.c_status, p.c_filing
        c_payer_claim, c_facility, c_freq = p.c_payer_claim, p.c_facility, p.c_freq
        c_key, c_dates = p.c_key, p.c_dates
        l_seg, l_claim, l_svc01 = p.l_seg, p.l_claim, p.l_svc01
        l_charge, l_paid, l_units = p.l_charge, p.l_paid, p.l_units
        more = p.l_more
        l_dates = {"472": more["472"], "150": more["150"], "151": more["151"]}
        l_control, l_allowed = more["6R"], more["B6"]
        l_revenue, l_original = more["SVC04"], more["SVC06"]
        a_seg, a_owner, a_amount = p.a_seg, p.a_owner, p.a_amount
        a_group, a_carc, a_qty = p.a_group, p.a_carc, p.a_qty
        remarks, plb = p.remarks, p.plb
        # bound once: the loop appends about a million values to these
        c_seg_add, c_st_add, c_id_add = c_seg.append, c_st.append, c_id.append
        c_charge_add, c_paid_add, c_pr_add = c_charge.append, c_paid.append, c_pr.append
        c_status_add, c_filing_add = c_status.append, c_filing.append
        c_payer_claim_add, c_facility_add = c_payer_claim.append, c_facility.append
        c_freq_add = c_freq.append
        l_seg_add, l_claim_add, l_svc01_add = l_seg.append, l_claim.append, l_svc01.append
        l_charge_add, l_paid_add, l_units_add = l_charge.append, l_paid.append, l_units.append
        a_seg_add, a_owner_add, a_amount_add = a_seg.append, a_owner.append, a_amount.append
        a_group_add, a_carc_add = a_group.append, a_carc.append

        pay = self.pay
        st_index, in_st = self.st_index, self.in_st
        st_seg, st_control = self.st_seg, self.st_control
        level, claim_no = self.level, self.claim_no
        st_claims, line_no = self.st_claims, self.line_no
        isa_count, iea_count, number = self.isa_count, self.iea_count, self.number

        aside, mark, env = self.aside, self.mark, self.env
        plb_start = len(plb)
        it: Iterator[str] = iter(segments)
        seg: list[str] = []
        while True:
            try:
                for raw in it:
                    number += 1
                    seg = raw.split(sep)
                    tag = seg[0]
                    if aside:
                        # the rest of a claim set aside, or a transaction that is not an 835
                        if aside == "claim":
                            if tag not in _CLAIM_ENDS and tag.rstrip() not in _CLAIM_ENDS:
                                continue
                        elif tag == "SE":
                            self.others[-1][3] = number
                            aside = ""
                            in_st = False
                            continue
                        elif tag not in _TRANSACTION_ENDS:
                            continue
                        else:  # it has no SE: it ends where the next envelope begins
                            self.others[-1][3] = -(number - 1)
                            in_st = False
                        aside = ""
                    if tag == "CAS":
                        if level == 0:
                            outside.append(f"{number} (CAS)")
                            continue
                        group = same(seg[1], seg[1])
                        owner = line_no if level == 2 else -claim_no
                        k = len(seg)
                        if k == 4 and seg[2] and seg[3]:
                            # one triplet without a quantity, the common case
                            v = seg[3]
                            a_amount_add(known(v) or number_of(v))
                            a_seg_add(number)
                            a_owner_add(owner)
                            a_group_add(group)
                            a_carc_add(same(seg[2], seg[2]))
                            continue
                        # Up to six (reason, amount, quantity) triplets per CAS (X12 RFI 213).
                        for i in range(2, k, 3):
                            carc = seg[i]
                            if not carc:
                                continue
                            v = seg[i + 1] if i + 1 < k else ""
                            if v:
                                a_amount_add(known(v) or number_of(v))
                            else:
                                a_amount_add(empty_amount(number, f"CAS{i + 1:02d}"))
                            if i + 2 < k and seg[i + 2]:
                                v = seg[i + 2]
                                a_qty[len(a_seg)] = known(v) or number_of(v)
                            a_seg_add(number)
                            a_owner_add(owner)
                            a_group_add(group)
                            a_carc_add(same(carc, carc))
                    elif tag == "DTM":
                        if level == 2:
                            found = l_dates.get(seg[1])
                            if found is not None:
                                found[line_no] = same(seg[2], seg[2])
                        elif level == 1:
                            found = c_dates.get(seg[1])
                            if found is not None:
                                found[claim_no] = same(seg[2], seg[2])
                        elif not in_st:
                            outside.append(f"{number} (DTM)")
                        elif seg[1] == "405" and pay is not None and st_claims == 0:
                            pay.setdefault("production_date", seg[2])
                    elif tag == "SVC":
                        if level == 0:
                            outside.append(f"{number} (SVC)")
                            continue
                        level = 2
                        line_no += 1
                        if len(seg) < 7:
                            seg += PAD[: 7 - len(seg)]
                        l_seg_add(number)
                        l_claim_add(claim_no)
                        l_svc01_add(same(seg[1], seg[1]))
                        v = seg[2]
                        if v:
                            l_charge_add(known(v) or number_of(v))
                        else:
                            l_charge_add(empty_amount(number, "SVC02"))
                        v = seg[3]
                        if v:
                            l_paid_add(known(v) or number_of(v))
                        else:
                            l_paid_add(empty_amount(number, "SVC03"))
                        if seg[4]:
                            l_revenue[line_no] = same(seg[4], seg[4])
                        # SVC05 absent means one unit paid (TR3 loop 2110 SVC05).
                        v = seg[5]
                        if v:
                            l_units_add(known(v) or number_of(v))
                        else:
                            l_units_add(1.0)
                        if seg[6]:
                            l_original[line_no] = same(seg[6], seg[6])
                    elif tag == "REF":
                        if level == 2:
                            if seg[1] == "6R":
                                l_control[line_no] = seg[2]
                        elif not in_st:
                            outside.append(f"{number} (REF)")
                        elif level == 0 and pay is not None and st_claims == 0:
                            if seg[1] == "2U":
                                pay.setdefault("payer_id", seg[2])
                            elif seg[1] == "TJ":
                                pay.setdefault("payee_tin", seg[2])
                    elif tag == "AMT":
                        if level == 2 and seg[1] == "B6":
                            v = seg[2]
                            l_allowed[line_no] = known(v) or number_of(v)
                        elif not in_st:
                            outside.append(f"{number} (AMT)")
                    elif tag == "CLP":
                        if not in_st:
                            outside.append(f"{number} (CLP)")
                            continue
                        # where the claim begins in the part, to set it aside if need be
                        mark = (
                            len(c_seg), len(l_seg), len(a_seg), len(remarks),
                            claim_no, line_no, st_claims,
                        )  # fmt: skip
                        if len(seg) < 10:
                            seg += PAD[: 10 - len(seg)]
                        level = 1
                        claim_no += 1
                        st_claims += 1
                        c_seg_add(number)
                        c_st_add(st_index)
                        c_id_add(seg[1])
                        # CLP02 is kept as sent: in 5010 a recognised claim paid $0 stays 1/2/3
                        # and 4 means "not recognised" (X12 RFI 1423), so paid 0 is no denial flag.
                        c_status_add(same(seg[2], seg[2]))
                        v = seg[3]
                        if v:
                            c_charge_add(known(v) or number_of(v))
                        else:
                            c_charge_add(empty_amount(number, "CLP03"))
                        v = seg[4]
                        if v:
                            c_paid_add(known(v) or number_of(v))
                        else:
                            c_paid_add(empty_amount(number, "CLP04"))
                        # CLP05 is situational: empty means no patient responsibility.
                        v = seg[5]
                        if v:
                            c_pr_add(known(v) or number_of(v))
                        else:
                            c_pr_add(0.0)
                        c_filing_add(same(seg[6], seg[6]))
                        c_payer_claim_add(seg[7])
                        c_facility_add(same(seg[8], seg[8]))
                        c_freq_add(same(seg[9], seg[9]))
                    elif tag == "NM1":
                        # Names (NM103-NM107) are never read. Only the patient (QC) id, or failing
                        # that the insured (IL) id, is kept, and only as a salted hash.
                        if level == 1 and len(seg) > 9:
                            qual = seg[1]
                            if qual == "QC" or (qual == "IL" and claim_no not in c_key):
                                ident = seg[9].strip()
                                if ident:
                                    key = hashes.get(ident)
                                    if key is None:
                                        key = hashes[ident] = pseudonym(ident, salt_bytes)
                                    c_key[claim_no] = key
                    elif tag == "LQ":
                        # LQ*HE: remark codes of the service line (loop 2110).
                        if level and len(seg) > 2 and seg[2]:
                            line = line_no if level == 2 else 0
                            remarks.append((number, claim_no, line, seg[2], "LQ*" + seg[1]))
                        elif not in_st:
                            outside.append(f"{number} (LQ)")
                    elif tag == "MOA" or tag == "MIA":
                        if level == 1:
                            for i in _REMARK_ELEMENTS[tag]:
                                if i < len(seg) and seg[i]:
                                    remarks.append((number, claim_no, 0, seg[i], f"{tag}{i:02d}"))
                        elif not in_st:
                            outside.append(f"{number} ({tag})")
                    elif tag == "LX":
                        level = 0
                        if not in_st:
                            outside.append(f"{number} (LX)")
                    elif tag == "PLB":
                        level = 0
                        if not in_st:
                            outside.append(f"{number} (PLB)")
                            continue
                        # PLB03/05/...: composite reason:reference, then its amount. A positive
                        # amount reduces the payment (TR3 PLB segment notes).
                        plb_start = len(plb)
                        k = len(seg)
                        for i in range(3, k, 2):
                            if seg[i]:
                                v = seg[i + 1] if i + 1 < k else ""
                                if v:
                                    amount = known(v) or number_of(v)
                                else:
                                    amount = empty_amount(number, f"PLB{i + 1:02d}")
                                plb.append((number, st_index, seg[1], seg[2], seg[i], ic, amount))
                    elif tag == "BPR":
                        if pay is None:
                            outside.append(f"{number} (BPR)")
                        elif "bpr_handling" not in pay:
                            if len(seg) < 17:
                                seg += PAD[: 17 - len(seg)]
                            v = seg[2]
                            if v:
                                paid = known(v) or number_of(v)
                            else:
                                paid = empty_amount(number, "BPR02")
                            pay.update(
                                bpr_handling=seg[1],
                                paid_amount=paid,
                                credit_debit=seg[3],
                                method=seg[4],
                                payment_date=seg[16],
                                bpr_segment=number,
                            )
                    elif tag == "TRN":
                        if pay is None:
                            outside.append(f"{number} (TRN)")
                        elif "trace_number" not in pay:
                            seg += PAD[:4]
                            pay.update(trace_number=seg[2], trn_payer_id=seg[3])
                    elif tag == "N1":
                        # Payer (1000A) and payee (1000B) come before the first claim; an N1
                        # inside the claim loops is not part of 005010X221A1 and is not read.
                        if pay is None:
                            outside.append(f"{number} (N1)")
                        elif st_claims == 0 and level == 0:
                            seg += PAD[:5]
                            if seg[1] == "PR" and "payer_name" not in pay:
                                pay["payer_name"] = seg[2]
                                if seg[4]:
                                    pay["payer_id"] = seg[4]
                            elif seg[1] == "PE" and "payee_name" not in pay:
                                pay["payee_name"] = seg[2]
                                if seg[3] == "XX":
                                    pay["payee_npi"] = seg[4]
                                elif seg[3] == "FI" and seg[4]:
                                    pay["payee_tin"] = seg[4]
                    elif tag == "ST":
                        if in_st:
                            raise X12Error(
                                f"{name}: segment {number} starts a new transaction (ST) but the "
                                f"one from segment {st_seg} (ST*835*{st_control}) has no SE "
                                f"trailer. The file was cut or two files were joined; ask the "
                                f"sender for the complete file.",
                                where=f"{name} segment {number}",
                            )
                        env[5] += 1
                        kind = seg[1] if len(seg) > 1 else ""
                        if kind != "835":
                            # X12 allows other transaction sets beside the 835s: skip to its SE
                            control = seg[2] if len(seg) > 2 else ""
                            self.others.append([kind, control, number, 0])
                            aside = "transaction"
                            in_st = True
                            level = 0
                            continue
                        in_st = True
                        st_index += 1
                        st_seg = number
                        st_control = seg[2] if len(seg) > 2 else ""
                        level = 0
                        st_claims = 0
                        pay = {
                            "st_index": st_index,
                            "st_control_number": st_control,
                            "segment": number,
                        }
                    elif tag == "SE":
                        if not in_st or pay is None:
                            outside.append(f"{number} (SE)")
                            continue
                        count = number - st_seg + 1
                        declared = seg[1] if len(seg) > 1 else ""
                        if declared != str(count):
                            notes.append(
                                (
                                    X12Warning,
                                    f"{name}: SE at segment {number} says the transaction has "
                                    f"{declared or 'no'} segments, but ST (segment {st_seg}) to "
                                    f"SE count {count}. The data were read; tell the sender the "
                                    f"count is wrong.",
                                )
                            )
                        control = seg[2] if len(seg) > 2 else ""
                        if control != st_control:
                            notes.append(
                                (
                                    X12Warning,
                                    f"{name}: SE02 {control!r} at segment {number} does not "
                                    f"match ST02 {st_control!r} at segment {st_seg}. The data "
                                    f"were read.",
                                )
                            )
                        payments.append(pay)
                        in_st = False
                        level = 0
                        pay = None
                    elif tag in _ENVELOPE:
                        if in_st:
                            # an envelope segment inside a transaction: the SE was lost
                            outside.append(f"{number} ({tag})")
                        if tag == "ISA":
                            isa_count += 1
                        elif tag == "IEA":
                            iea_count += 1
                        self._envelope(seg, number, env)
                    elif tag in _KNOWN_UNREAD:
                        pass
                    else:
                        fixed = tag.strip()
                        if fixed != tag and fixed in _SEGMENT_IDS:
                            # "SVC " for SVC: read it as the segment it is, and say so
                            self.trimmed_count += 1
                            if self.trimmed_count <= 10:
                                self.trimmed.append(f"{number} ({tag!r})")
                            seg[0] = fixed
                            it = itertools.chain([sep.join(seg)], it)
                            number -= 1
                            break
                        self.unknown_count += 1
                        if self.unknown_count <= 10:
                            self.unknown.append(f"{number} ({tag[:10]!r})")
                else:
                    break
            except X12Error:
                raise
            except (ValueError, IndexError):
                # an amount that is not an X12 number, or a segment too short for its kind
                tag = seg[0] if seg else ""
                problem = _number_problem(seg, number, name)
                if problem is None:
                    notes.append(
                        (
                            X12Warning,
                            f"{name}: segment {number} ({tag}) has too few elements for its "
                            f"kind and was not read: {raw[:60]!r}.",
                        )
                    )
                elif tag == "BPR" and pay is not None and "bpr_handling" not in pay:
                    pay.update(
                        bpr_handling=seg[1],
                        paid_amount=math.nan,
                        credit_debit=seg[3],
                        method=seg[4],
                        payment_date=seg[16],
                        bpr_segment=number,
                    )
                    notes.append(
                        (
                            X12Warning,
                            f"{problem}; paid_amount is missing, so the transaction cannot "
                            f"balance. Ask the sender for a corrected file.",
                        )
                    )
                elif tag == "PLB":
                    del plb[plb_start:]
                    notes.append(
                        (
                            X12Warning,
                            f"{problem}; the provider adjustments of that PLB were set aside, "
                            f"so the transaction will not balance. Ask the sender for a "
                            f"corrected file.",
                        )
                    )
                elif level or tag == "CLP":
                    claim_id = p.c_id[mark[0]] if len(p.c_id) > mark[0] else "?"
                    first = p.c_seg[mark[0]] if len(p.c_seg) > mark[0] else number
                    _roll_back(p, mark, claim_no, line_no)
                    claim_no, line_no, st_claims = mark[4], mark[5], mark[6]
                    level = 0
                    aside = "claim"
                    notes.append(
                        (
                            X12Warning,
                            f"{problem}. Claim {claim_id!r} (CLP at segment {first}) was set "
                            f"aside with its service lines and adjustments; the other claims "
                            f"were read. Ask the payer for a corrected 835 if it matters.",
                        )
                    )
                else:
                    notes.append((X12Warning, f"{problem}; the segment was not read."))

        # Only the first few are ever named in a warning; the others are counted.
        del empties[11:]
        if len(outside) > 10:
            self.outside_count += len(outside) - 10
            del outside[10:]
        self.pay = pay
        self.st_index, self.in_st = st_index, in_st
        self.st_seg, self.st_control = st_seg, st_control
        self.level, self.claim_no = level, claim_no
        self.st_claims, self.line_no = st_claims, line_no
        self.isa_count, self.iea_count, self.number = isa_count, iea_count, number
        self.aside, self.mark = aside, mark

    def _envelope(self, seg: list[str], number: int, env: list[object]) -> None:
        """Check the counts and control numbers of the envelope: GE01 (transactions in the
        group), GE02 = GS06, IEA01 (groups in the interchange), IEA02 = ISA13."""
        tag = seg[0]
        if tag == "ISA":
            env[:] = [number, seg[13].strip() if len(seg) > 13 else "", 0, 0, "", 0]
            return
        if tag == "GS":
            env[2] = int(env[2]) + 1  # type: ignore[call-overload]
            env[3:] = [number, seg[6].strip() if len(seg) > 6 else "", 0]
            return
        first = seg[1].strip() if len(seg) > 1 else ""
        second = seg[2].strip() if len(seg) > 2 else ""
        said = []
        if tag == "GE":
            if not env[3]:
                said.append(f"GE at segment {number} closes a group that no GS opened.")
            else:
                if not _count_matches(first, env[5]):
                    said.append(
                        f"GE01 at segment {number} says the group holds {first or 'no'} "
                        f"transaction set(s), but the group from GS (segment {env[3]}) holds "
                        f"{env[5]}."
                    )
                if not _same_control(second, env[4]):
                    said.append(
                        f"GE02 {second!r} at segment {number} does not match GS06 {env[4]!r} "
                        f"at segment {env[3]} (the group control number)."
                    )
            env[3:] = [0, "", 0]
        elif tag == "IEA" and env[0]:
            if not _count_matches(first, env[2]):
                said.append(
                    f"IEA01 at segment {number} says the interchange holds {first or 'no'} "
                    f"functional group(s), but the interchange from ISA (segment {env[0]}) "
                    f"holds {env[2]}."
                )
            if not _same_control(second, env[1]):
                said.append(
                    f"IEA02 {second!r} at segment {number} does not match ISA13 {env[1]!r} at "
                    f"segment {env[0]} (the interchange control number)."
                )
            env[:] = [0, "", 0, 0, "", 0]
        for message in said:
            self.notes.transactions.append(
                (X12Warning, f"{self.name}: {message} The data were read; tell the sender.")
            )

    def _finish(self) -> None:
        """End-of-file checks: an open transaction, no transaction at all, and the notes that
        sum up the whole file."""
        name, number = self.name, self.number
        if self.in_st:
            inside = ""
            if self.st_claims:  # the last claim began after the last part boundary
                p = self.part
                inside = f", inside claim {p.c_id[-1]!r} (CLP at segment {p.c_seg[-1]})"
            raise X12Error(
                f"{name}: the file ends at segment {number}{inside} in the transaction that "
                f"starts at segment {self.st_seg} (ST*835*{self.st_control}), with no SE trailer. "
                f"The file looks truncated; download it again from the payer or clearinghouse.",
                where=f"{name} segment {number}",
            )
        if self.aside == "transaction":
            self.others[-1][3] = -number
        others = [
            f"ST*{kind}*{control} at segments {start}-{abs(end)} "
            f"({_TRANSACTION_NAMES.get(str(kind), 'not an 835')}"
            + (", no SE" if end <= 0 else "")
            + ")"
            for kind, control, start, end in self.others
        ]
        if self.st_index == 0:
            held = f"; it holds only {'; '.join(others[:5])}" if others else ""
            raise X12Error(
                f"{name}: no ST*835 transaction found in {number} segment(s){held}. Check that "
                f"this is an 835 (ERA) file and not only an envelope, a claim or an "
                f"acknowledgement.",
                where=name,
            )

        def note(message: str) -> None:
            self.notes.scan.append((X12Warning, f"{name}: {message}"))

        if others:
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            note(
                f"{len(others)} transaction set(s) that are not 835s were skipped: "
                f"{'; '.join(others[:5])}{more}. Only the 835 transactions were read."
            )
        if self.isa_count != self.iea_count:
            note(
                f"{self.isa_count} ISA header(s) but {self.iea_count} IEA trailer(s): an "
                f"interchange is not closed. Every 835 transaction that ends with its SE was "
                f"read; the other warnings name anything that was not."
            )
        if self.trimmed:
            more = f" and {self.trimmed_count - 10} more" if self.trimmed_count > 10 else ""
            note(
                f"segment id(s) with spaces at segment(s) {', '.join(self.trimmed)}{more} were "
                f"read as the segments they name, without the spaces. Tell the sender."
            )
        if self.unknown:
            more = f" and {self.unknown_count - 10} more" if self.unknown_count > 10 else ""
            note(
                f"segment(s) {', '.join(self.unknown)}{more} have ids an 835 does not use and "
                f"were not read."
            )
        if self.empties:
            shown = ", ".join(self.empties[:10])
            more = " ..." if len(self.empties) > 10 else ""
            note(
                f"required amount(s) empty at segment(s) {shown}{more}; read as 0. Ask the "
                f"sender for a corrected file if these lines matter."
            )
        if self.outside:
            more = f" and {self.outside_count} more" if self.outside_count else ""
            note(
                f"segment(s) {', '.join(self.outside[:10])}{more} are outside a claim or "
                f"transaction and were not read."
            )
        unknown = sorted((self.groups | set(self.part.a_group)) - _GROUP_CODES)
        if unknown:
            note(f"CAS group code(s) {unknown} are not CO, PR, OA, PI or CR; the rows were kept.")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    # Reading creates hundreds of thousands of container objects (segment lists, object
    # arrays) that the cyclic collector would inspect again and again without finding garbage;
    # pausing it makes a large file read about 20% faster. Restored on exit, also after errors.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
