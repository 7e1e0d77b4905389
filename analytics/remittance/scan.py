"""What the reader collects from one part of an 835, what building its tables needs, and the
column-wise reading of long runs of claims into it.

A part ends before a claim (CLP) or a transaction (ST), so every claim is whole in one part;
a transaction may span parts, and its running sums carry from one part to the next.

A large interchange is mostly claim loops (CLP, NM1, DTM, then per service line SVC, DTM, CAS,
REF, AMT, LQ). :class:`ClaimRuns` finds the long runs of them in a batch from the positions of
the terminators and separators in its bytes, and :func:`scan_claims` reads a run column by
column with NumPy, without making a string of every segment and element: it gives the part
exactly what the reader's segment loop gives, or leaves the run to that loop.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics.remittance.notes import Notes
from analytics.remittance.tokenizer import Interchange, Segments, SegmentText


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


# ---- long runs of claims, read column by column -------------------------------------------
#
# Where a run of claim loops is long, its segments are not split one by one: the positions of
# the terminators and element separators in its bytes give every element's place, the ids are
# compared as numbers, amounts are converted column by column, and the values are gathered
# into the part's columns with a few array operations each. Anything the reader would warn
# about or set aside makes the run go through the segment loop instead, so the tables and
# warnings are the same either way.

# Segment ids read column-wise (loops 2100 and 2110); any other id ends a run.
_CLP, _SVC, _CAS, _DTM, _REF, _AMT, _NM1, _LQ, _MOA, _MIA = range(1, 11)
_CLAIM_LOOP_IDS = {
    "CLP": _CLP, "SVC": _SVC, "CAS": _CAS, "DTM": _DTM, "REF": _REF, "AMT": _AMT,
    "NM1": _NM1, "LQ": _LQ, "MOA": _MOA, "MIA": _MIA,
}  # fmt: skip
# MOA03-MOA07 and MIA05, MIA20-MIA23: claim-level remark codes (TR3 loop 2100).
_REMARK_ELEMENTS = {_MOA: ("MOA", (3, 4, 5, 6, 7)), _MIA: ("MIA", (5, 20, 21, 22, 23))}
_LINE_DATES = ("472", "150", "151")  # DTM of a service line the tables keep
_CLAIM_DATES = ("232", "233", "050")  # DTM of a claim
_MAX_DIGITS = 15  # below 2**53: digits / 10**k is then exactly what float() gives
_MAX_TRIPLETS = 10  # CAS (reason, amount, quantity) triplets read column-wise; 6 in the TR3
_POWERS = 10.0 ** np.arange(_MAX_DIGITS + 1)
_PAD = 32  # bytes after the text, so that reads a little past its end stay in the array

#: Fewest segments of a run read column-wise; shorter runs cost less through the loop.
RUN_MINIMUM = 2000
#: Segments read column-wise at a time (whole claims, so a stretch may be a little longer):
#: fewer, longer stretches cost less; a stretch with a claim the loop must read is read by it.
RUN_SEGMENTS = 65536


def _id_key(tag: str) -> int:
    raw = tag.encode("ascii") + b"\0"
    return (len(tag) << 24) | (raw[0] << 16) | (raw[1] << 8) | raw[2]


_ID_KEYS = np.array(sorted(_id_key(t) for t in _CLAIM_LOOP_IDS), dtype="int64")
_ID_CODES = np.array(
    [code for _, code in sorted((_id_key(t), c) for t, c in _CLAIM_LOOP_IDS.items())], dtype="int8"
)


@dataclass
class ClaimState:
    """The reader's context where a run begins and where it ends: segments read, claims and
    lines counted through the file, claims of the transaction, the loop level (1 in a claim,
    2 in a service line) and where the last claim begins in the part (to set it aside)."""

    number: int
    claim_no: int
    line_no: int
    st_claims: int
    level: int
    mark: tuple[int, ...]


class ClaimRuns:
    """The segments of a batch as positions in its bytes, and the runs of claim loops in it.

    ``delims`` holds the position of every separator and terminator, after a ``-1`` that
    stands for the terminator before the first segment; ``head[k]`` is the index in it of the
    terminator before segment ``k`` and ``count[k]`` the number of element separators of the
    segment, so its element ``j`` (0 is the id) runs from ``delims[head + j] + 1`` to
    ``delims[head + j + 1]``. ``codes`` is the id of each segment as one of the claim-loop
    codes (0 for any other).
    """

    def __init__(self, segments: Segments, element: str, terminator: str) -> None:
        if isinstance(segments, SegmentText):
            data = (segments.text + terminator).encode("ascii")
        else:
            data = (terminator.join(segments) + terminator).encode("utf-8")
        self.term = terminator
        self.term_byte = ord(terminator)
        self.b = b = np.frombuffer(data + b"\0" * _PAD, dtype=np.uint8)
        body = b[: len(data)]
        found = np.flatnonzero((body == ord(element)) | (body == self.term_byte))
        # positions in a region of a few tens of MB: half the memory in 32 bits
        position = "int32" if len(data) < 2**31 - _PAD else "int64"
        self.delims = delims = np.concatenate([[-1], found]).astype(position)
        ends = np.flatnonzero(b[found] == self.term_byte) + 1  # each terminator, in delims
        self.head = head = np.concatenate([[0], ends[:-1]]).astype(position)
        self.count = count = (ends - head - 1).astype(position)
        # the id: element 0, two or three characters, then an element separator
        key = self.short_keys(delims[head] + 1, delims[head + 1])
        at = np.minimum(np.searchsorted(_ID_KEYS, key), len(_ID_KEYS) - 1)
        known = (_ID_KEYS[at] == key) & (count > 0)
        self.codes = np.where(known, _ID_CODES[at], 0).astype("int8")

    def segments(self, segments: Segments, lo: int, hi: int) -> Segments:
        """Segments ``lo`` to ``hi`` of the batch, for the segment loop."""
        if not isinstance(segments, SegmentText):
            return segments[lo:hi]
        start = int(self.delims[self.head[lo]]) + 1
        stop = int(self.delims[self.head[hi]]) if hi < len(self.head) else len(segments.text)
        return segments.text[start:stop].split(self.term) if hi > lo else []

    @classmethod
    def find(
        cls, segments: Segments, element: str, terminator: str, minimum: int
    ) -> tuple[ClaimRuns, list[tuple[int, int]]] | None:
        """The positions of a batch and its runs of claim loops.

        Parameters
        ----------
        segments
            The batch, as the tokenizer hands it out.
        element, terminator
            The interchange's element separator and segment terminator.
        minimum
            Fewest segments of a run worth reading column-wise.

        Returns
        -------
        tuple of (ClaimRuns, list of (int, int)) or None
            The positions, and each run (from a CLP to the segment before the first one of
            another id, cut into stretches of whole claims of about :data:`RUN_SEGMENTS`) as
            its first segment and the one after its last; None when there is no such run or
            the separators are not single ASCII characters.
        """
        if isinstance(segments, SegmentText) and segments.longest < 4 * minimum:
            # no interchange is long enough (each segment of a run is at least four
            # characters with its terminator), as in a file of many small interchanges
            return None
        if len(segments) < minimum or len(element) != 1 or len(terminator) != 1:
            return None
        if element == terminator or not (element + terminator).isascii():
            return None
        try:
            runs = cls(segments, element, terminator)
        except UnicodeEncodeError:  # text with lone surrogates: the loop reads it
            return None
        codes = runs.codes
        if len(codes) != len(segments):
            return None
        edges = np.flatnonzero(np.diff(np.concatenate([[0], codes > 0, [0]]).astype("int8")))
        begin, end = edges[0::2], edges[1::2]
        clp = np.flatnonzero(codes == _CLP)
        if not len(clp) or not len(begin):
            return None
        at = np.searchsorted(clp, begin)
        first = clp[np.minimum(at, len(clp) - 1)]
        keep = (at < len(clp)) & (first < end) & (end - first >= minimum)
        spans = []
        for lo, hi in zip(first[keep].tolist(), end[keep].tolist(), strict=True):
            # a long run is read in stretches of whole claims: each stays in the processor's
            # cache, and a claim the loop must read costs only its own stretch
            at = np.searchsorted(clp, np.arange(lo, hi, RUN_SEGMENTS))
            cuts = clp[at[at < len(clp)]]
            bounds = [*np.unique(cuts[cuts < hi]).tolist(), hi]
            spans.extend(zip(bounds[:-1], bounds[1:], strict=True))
        return (runs, spans) if spans else None

    # ---- elements ---------------------------------------------------------------------

    def element(self, rows: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where element ``j`` (1 = the first after the id) of segments ``rows`` begins and
        ends, and whether it is there; an element that is not there is empty (0, 0)."""
        at = self.head[rows] + j
        present = self.count[rows] >= j
        if present.all():
            return self.delims[at] + 1, self.delims[at + 1], present
        at = np.where(present, at, 0)
        start = np.where(present, self.delims[at] + 1, 0)
        return start, np.where(present, self.delims[at + 1], 0), present

    def equals(self, start: np.ndarray, stop: np.ndarray, text: str) -> np.ndarray:
        """Whether each element is ``text`` (ASCII)."""
        raw = text.encode("ascii")
        same = (stop - start) == len(raw)
        for i, c in enumerate(raw):
            same &= self.b[start + i] == c
        return same

    def texts(self, start: np.ndarray, stop: np.ndarray) -> list[str]:
        """The elements as strings: their bytes gathered, each followed by the terminator,
        decoded and split once."""
        if not len(start):
            return []
        size = stop - start + 1
        end = np.cumsum(size)
        # positions to gather: consecutive within an element, jumping between elements
        step = np.ones(int(end[-1]), dtype="int64")
        step[0] = start[0]
        step[end[:-1]] = start[1:] - stop[:-1]
        out = self.b[np.cumsum(step)]
        out[end - 1] = self.term_byte
        values = out.tobytes().decode("utf-8").split(self.term)
        values.pop()
        return values

    def distinct(self, start: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The elements as codes (in order of first appearance) and the distinct strings they
        stand for: each distinct element is decoded once. Elements are compared as up to 24
        bytes and their length, 8 bytes at a time (one hash table each)."""
        width = stop - start
        widest = int(width.max()) if len(start) else 0
        if widest > 24:
            values = np.empty(len(start), dtype=object)
            values[:] = self.texts(start, stop)
            return np.arange(len(start)), values
        chunks = max((widest + 7) // 8, 1)
        raw = np.lib.stride_tricks.sliding_window_view(self.b, 8 * chunks)[start]  # a copy
        raw[np.arange(8 * chunks) >= width[:, None]] = 0
        keys = raw.view("<u8")
        codes = width
        for c in range(chunks):
            part, found = pd.factorize(keys[:, c])
            codes = pd.factorize(codes * len(found) + part)[0]
        # codes count up from 0 in order of first appearance: where each first appears
        highest = np.maximum.accumulate(codes)
        first = np.flatnonzero(np.concatenate([[True], highest[1:] > highest[:-1]]))
        values = np.empty(len(first), dtype=object)
        values[:] = self.texts(start[first], stop[first])
        return codes, values

    def codes_of(self, start: np.ndarray, stop: np.ndarray) -> list[str]:
        """The elements as strings, for codes and dates that repeat: each distinct one is
        decoded once and shared."""
        if not len(start):
            return []
        codes, values = self.distinct(start, stop)
        return values[codes].tolist()

    def short_keys(self, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """Each element of two or three characters as a number (:func:`_id_key`), -1 for any
        other, to compare with qualifiers."""
        width = stop - start
        key = (
            (width << 24)
            | (self.b[start].astype("int64") << 16)
            | (self.b[start + 1].astype("int64") << 8)
            | np.where(width == 3, self.b[start + 2], 0)
        )
        return np.where((width == 2) | (width == 3), key, -1)

    def numbers(self, start: np.ndarray, stop: np.ndarray) -> np.ndarray | None:
        """The elements as X12 decimal numbers (ASCII digits, an optional leading minus, one
        optional point), exactly as ``float()`` reads them; None if any is empty, is not
        such a number or has more digits than are converted exactly here."""
        n = len(start)
        if not n:
            return np.empty(0)
        width = stop - start
        widest = int(width.max())
        if int(width.min()) < 1 or widest > _MAX_DIGITS + 2:
            return None
        # one row per position in the numbers, one column per number
        chars = np.lib.stride_tricks.sliding_window_view(self.b, widest)[start].T.copy()
        inside = np.arange(widest)[:, None] < width
        digit = ((chars - np.uint8(48)) < 10) & inside
        point = (chars == 46) & inside
        negative = chars[0] == 45
        allowed = digit | point | ~inside
        allowed[0] |= negative
        if not allowed.all():
            return None
        digits = digit.sum(axis=0)
        points = point.sum(axis=0)
        if digits.min() < 1 or digits.max() > _MAX_DIGITS or points.max() > 1:
            return None
        mantissa = np.zeros(n, dtype="int64")
        values = chars - np.uint8(48)
        for i in range(widest):
            mantissa = np.where(digit[i], mantissa * 10 + values[i], mantissa)
        # everything after the point is a digit: the decimals are what follows it
        decimals = np.where(points > 0, width - 1 - point.argmax(axis=0), 0)
        # mantissa < 2**53 and 10**k exact: one correctly rounded division, as float() rounds
        value = mantissa / _POWERS[decimals]
        return np.where(negative, -value, value)


def _extend(column: array, values: np.ndarray) -> None:
    column.frombytes(np.ascontiguousarray(values, dtype=column.typecode).tobytes())


class _Kind:
    """The segments of one id in a run: their run positions and their elements."""

    def __init__(self, runs: ClaimRuns, codes: np.ndarray, code: int, lo: int) -> None:
        self.runs = runs
        self.lo = lo
        self.at = np.flatnonzero(codes == code)
        self.rows = self.at + lo

    def __len__(self) -> int:
        return len(self.at)

    def element(self, j: int, where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rows if where is None else self.rows[where]
        start, stop, _ = self.runs.element(rows, j)
        return start, stop


def scan_claims(
    runs: ClaimRuns,
    lo: int,
    hi: int,
    part: Scan,
    state: ClaimState,
    st_index: int,
    keys_of: Callable[[list[str]], list[str]],
) -> ClaimState | None:
    """Read a run of claim loops into a part, as the reader's segment loop would.

    Parameters
    ----------
    runs
        The batch's positions (:meth:`ClaimRuns.find`).
    lo, hi
        The run's first segment (a CLP) and the one after its last, in the batch; the run is
        inside an 835 transaction.
    part
        What the reader has collected of the current part; the run's rows are added to it.
    state
        The reader's context before the run.
    st_index
        The transaction the claims belong to.
    keys_of
        The keyed pseudonym of each of a list of member ids (distinct, not blank).

    Returns
    -------
    ClaimState or None
        The context after the run; or None, with nothing changed, when the run holds anything
        the loop warns about or sets aside (an amount that is empty or not an X12 number, a
        segment too short for what it carries): the loop then reads it.
    """
    codes = runs.codes[lo:hi]
    n = hi - lo
    at = np.arange(n)
    is_clp, is_svc = codes == _CLP, codes == _SVC
    line_local = np.cumsum(is_svc)
    in_line = np.maximum.accumulate(np.where(is_svc, at, -1)) > np.maximum.accumulate(
        np.where(is_clp, at, -1)
    )
    claim_no = state.claim_no + np.cumsum(is_clp)
    line_no = state.line_no + line_local
    number = state.number + 1 + at
    count = runs.count[lo:hi]
    nums, texts, codes_of = runs.numbers, runs.texts, runs.codes_of
    clp, svc, dtm, ref, amt = (_Kind(runs, codes, k, lo) for k in (_CLP, _SVC, _DTM, _REF, _AMT))

    # ---- amounts first: any that the loop would not read as they are ends here ----------
    c_charge = nums(*clp.element(3))
    c_paid = nums(*clp.element(4))
    c_pr = np.zeros(len(clp))
    start, stop = clp.element(5)
    given = stop > start  # CLP05 empty: no patient responsibility
    pr = nums(start[given], stop[given])
    l_charge = nums(*svc.element(2))
    l_paid = nums(*svc.element(3))
    l_units = np.ones(len(svc))  # SVC05 absent means one unit paid (TR3 loop 2110 SVC05)
    start, stop = svc.element(5)
    has_units = stop > start
    units = nums(start[has_units], stop[has_units])
    in_amt = in_line[amt.at]
    b6 = amt.at[in_amt][runs.equals(*amt.element(1, in_amt), "B6")]
    allowed = nums(*runs.element(b6 + lo, 2)[:2])
    cas = _adjustments(runs, _Kind(runs, codes, _CAS, lo), in_line, claim_no, line_no, number)
    if any(x is None for x in (c_charge, c_paid, pr, l_charge, l_paid, units, allowed, cas)):
        return None
    assert cas is not None
    c_pr[given] = pr
    l_units[has_units] = units

    # ---- values filed by claim or line number: short segments end here too --------------
    filed: list[tuple[dict[int, object], np.ndarray, list[object]]] = []
    dates = {q: part.l_more[q] for q in _LINE_DATES} | part.c_dates
    line_dtm = in_line[dtm.at]
    qualifier = runs.short_keys(*dtm.element(1))
    for where, qualifiers, owner in (
        (line_dtm, _LINE_DATES, line_no),
        (~line_dtm, _CLAIM_DATES, claim_no),
    ):
        for q in qualifiers:
            chosen = dtm.at[where & (qualifier == _id_key(q))]
            if (count[chosen] < 2).any():
                return None
            filed.append((dates[q], owner[chosen], codes_of(*runs.element(chosen + lo, 2)[:2])))
    in_ref = in_line[ref.at]
    chosen = ref.at[in_ref][runs.equals(*ref.element(1, in_ref), "6R")]
    if (count[chosen] < 2).any():
        return None
    filed.append((part.l_more["6R"], line_no[chosen], texts(*runs.element(chosen + lo, 2)[:2])))
    filed.append((part.l_more["B6"], line_no[b6], allowed.tolist()))  # type: ignore[union-attr]
    for j, key in ((4, "SVC04"), (6, "SVC06")):
        start, stop = svc.element(j)
        given = stop > start
        filed.append((part.l_more[key], line_no[svc.at[given]], texts(start[given], stop[given])))
    keys = _patient_keys(runs, _Kind(runs, codes, _NM1, lo), in_line, count, claim_no, keys_of)
    remarks = _remarks(runs, codes, lo, in_line, claim_no, line_no, number)

    # ---- nothing can fail from here on: the part takes the run -------------------------
    last = int(clp.at[-1])
    before = (
        len(part.c_seg) + len(clp) - 1,
        len(part.l_seg) + int(line_local[last]),
        len(part.a_seg) + int(np.searchsorted(cas[0], last)),
        len(part.remarks) + sum(1 for r in remarks if r[0] < number[last]),
        state.claim_no + len(clp) - 1,
        state.line_no + int(line_local[last]),
        state.st_claims + len(clp) - 1,
    )
    _extend(part.c_seg, number[clp.at])
    _extend(part.c_st, np.full(len(clp), st_index))
    _extend(part.c_charge, c_charge)  # type: ignore[arg-type]
    _extend(part.c_paid, c_paid)  # type: ignore[arg-type]
    _extend(part.c_pr, c_pr)
    part.c_id.extend(texts(*clp.element(1)))
    part.c_status.extend(codes_of(*clp.element(2)))
    part.c_filing.extend(codes_of(*clp.element(6)))
    part.c_payer_claim.extend(texts(*clp.element(7)))
    part.c_facility.extend(codes_of(*clp.element(8)))
    part.c_freq.extend(codes_of(*clp.element(9)))
    _extend(part.l_seg, number[svc.at])
    _extend(part.l_claim, claim_no[svc.at])
    _extend(part.l_charge, l_charge)  # type: ignore[arg-type]
    _extend(part.l_paid, l_paid)  # type: ignore[arg-type]
    _extend(part.l_units, l_units)
    part.l_svc01.extend(codes_of(*svc.element(1)))
    for by_number, numbers, values in filed:
        by_number.update(zip(numbers.tolist(), values, strict=True))
    part.c_key.update(keys)
    _, segment, owner, amount, group, carc, quantity = cas
    base = len(part.a_seg)
    _extend(part.a_seg, segment)
    _extend(part.a_owner, owner)
    _extend(part.a_amount, amount)
    part.a_group.extend(group)
    part.a_carc.extend(carc)
    part.a_qty.update((base + k, v) for k, v in quantity)
    part.remarks.extend(remarks)
    return ClaimState(
        number=state.number + n,
        claim_no=state.claim_no + len(clp),
        line_no=state.line_no + len(svc),
        st_claims=state.st_claims + len(clp),
        level=2 if in_line[-1] else 1,
        mark=before,
    )


Adjustments = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], list[str], list]


def _adjustments(
    runs: ClaimRuns,
    cas: _Kind,
    in_line: np.ndarray,
    claim_no: np.ndarray,
    line_no: np.ndarray,
    number: np.ndarray,
) -> Adjustments | None:
    """The CAS rows of a run, one per (reason, amount, quantity) triplet with a reason (X12
    RFI 213), in file order: the run position of each row's CAS, its segment, owner (a line
    number, or minus a claim number), amount, group, reason and the quantities given (by row);
    None when an amount is empty or not an X12 number."""
    count = runs.count[cas.rows]
    if not len(cas) or (count.min() == count.max() == 3):
        # one triplet without a quantity each, the common case
        start, stop = cas.element(2)
        if (stop > start).all():
            amount = runs.numbers(*cas.element(3))
            if amount is None:
                return None
            at = cas.at
            return (
                at,
                number[at],
                np.where(in_line[at], line_no[at], -claim_no[at]),
                amount,
                runs.codes_of(*cas.element(1)),
                runs.codes_of(start, stop),
                [],
            )
    triplets = int((count.max() - 2) // 3 + 1)
    if triplets > _MAX_TRIPLETS:
        return None
    which, carcs, amounts, quantities = [], [], [], []
    for t in range(max(triplets, 0)):
        start, stop, present = runs.element(cas.rows, 2 + 3 * t)
        has = np.flatnonzero(present & (stop > start))
        which.append(has * _MAX_TRIPLETS + t)
        carcs.append((start[has], stop[has]))
        amounts.append(runs.element(cas.rows[has], 3 + 3 * t)[:2])
        quantities.append(runs.element(cas.rows[has], 4 + 3 * t)[:2])
    empty = np.empty(0, dtype="int64")
    order = np.argsort(np.concatenate([empty, *which]), kind="stable")
    of = np.concatenate([empty, *which])[order] // _MAX_TRIPLETS  # the CAS of each row

    def stacked(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        starts = np.concatenate([empty, *(p[0] for p in pairs)])
        stops = np.concatenate([empty, *(p[1] for p in pairs)])
        return starts[order], stops[order]

    amount = runs.numbers(*stacked(amounts))
    q_start, q_stop = stacked(quantities)
    given = np.flatnonzero(q_stop > q_start)
    quantity = runs.numbers(q_start[given], q_stop[given])
    if amount is None or quantity is None:
        return None
    at = cas.at[of]
    groups = np.empty(len(cas), dtype=object)
    groups[:] = runs.codes_of(*cas.element(1))
    return (
        at,
        number[at],
        np.where(in_line[at], line_no[at], -claim_no[at]),
        amount,
        groups[of].tolist(),
        runs.codes_of(*stacked(carcs)),
        list(zip(given.tolist(), quantity.tolist(), strict=True)),
    )


def _patient_keys(
    runs: ClaimRuns,
    nm1: _Kind,
    in_line: np.ndarray,
    count: np.ndarray,
    claim_no: np.ndarray,
    keys_of: Callable[[list[str]], list[str]],
) -> dict[int, str]:
    """Each claim's patient key: from the last NM1*QC with an id, else the first NM1*IL
    with one (loop 2100; a service line's NM1 is not read). Names are never read; each
    distinct id is stripped and keyed once."""
    where = ~in_line[nm1.at] & (count[nm1.at] >= 9)
    qualifier = runs.short_keys(*nm1.element(1, where))
    is_qc = qualifier == _id_key("QC")
    chosen = is_qc | (qualifier == _id_key("IL"))
    rows, is_qc = nm1.rows[where][chosen], is_qc[chosen]
    if not len(rows):
        return {}
    codes, idents = runs.distinct(*runs.element(rows, 9)[:2])
    stripped = [i.strip() for i in idents.tolist()]
    keyed = iter(keys_of([i for i in stripped if i]))
    keys = np.empty(len(idents), dtype=object)
    keys[:] = [next(keyed) if i else "" for i in stripped]
    has = keys[codes] != ""
    claims = claim_no[rows - nm1.lo]
    found: dict[int, str] = {}
    # the first IL of a claim (written last, over later ones), then its last QC over that
    il = has & ~is_qc
    found.update(zip(claims[il][::-1].tolist(), keys[codes[il][::-1]].tolist(), strict=True))
    qc = has & is_qc
    found.update(zip(claims[qc].tolist(), keys[codes[qc]].tolist(), strict=True))
    return found


def _remarks(
    runs: ClaimRuns,
    codes: np.ndarray,
    lo: int,
    in_line: np.ndarray,
    claim_no: np.ndarray,
    line_no: np.ndarray,
    number: np.ndarray,
) -> list[tuple[int, int, int, str, str]]:
    """Remark codes in file order: LQ of a line (or of the claim before its first line),
    MOA/MIA of a claim."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]] = []
    lq = np.flatnonzero(codes == _LQ)
    start, stop, present = runs.element(lq + lo, 2)
    lq = lq[present & (stop > start)]
    if len(lq):
        qualifiers = runs.codes_of(*runs.element(lq + lo, 1)[:2])
        found.append(
            (
                lq * 32,
                lq,
                np.where(in_line[lq], line_no[lq], 0),
                runs.codes_of(*runs.element(lq + lo, 2)[:2]),
                ["LQ*" + q for q in qualifiers],
            )
        )
    for code, (tag, elements) in _REMARK_ELEMENTS.items():
        rows = np.flatnonzero(codes == code)
        rows = rows[~in_line[rows]]
        for k, i in enumerate(elements):
            start, stop, present = runs.element(rows + lo, i)
            has = rows[present & (stop > start)]
            if len(has):
                values = runs.codes_of(*runs.element(has + lo, i)[:2])
                source = [f"{tag}{i:02d}"] * len(has)
                found.append((has * 32 + 1 + k, has, np.zeros(len(has), "int64"), values, source))
    if not found:
        return []
    order = np.argsort(np.concatenate([f[0] for f in found]), kind="stable")
    at = np.concatenate([f[1] for f in found])[order]
    line = np.concatenate([f[2] for f in found])[order]
    values = np.empty(len(order), dtype=object)
    values[:] = [v for f in found for v in f[3]]
    sources = np.empty(len(order), dtype=object)
    sources[:] = [s for f in found for s in f[4]]
    return list(
        zip(
            number[at].tolist(),
            claim_no[at].tolist(),
            line.tolist(),
            values[order].tolist(),
            sources[order].tolist(),
            strict=True,
        )
    )
