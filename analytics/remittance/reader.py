"""The 835 reader: one pass over the segments of a file, part by part.

The scan dispatches on the segment id and keeps only the values the tables need; names are
never read, and a member id is kept only as a salted hash (``patient_key``). Structure followed
(005010X221A1 TR3): ISA/GS(HP)/ST*835, BPR (payment), TRN (trace), DTM*405, loop 1000A N1*PR
payer, loop 1000B N1*PE payee, LX header, loop 2100 CLP claim, loop 2110 SVC service line, PLB
provider adjustments, SE/GE/IEA.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import math
import os
from collections.abc import Iterator

from analytics.exceptions import X12Error, X12Warning
from analytics.remittance.builder import build_tables
from analytics.remittance.notes import Notes
from analytics.remittance.scan import Entry, OpenTransaction, Scan
from analytics.remittance.sources import open_source
from analytics.remittance.tables import Remittance
from analytics.remittance.tokenizer import PAD, Interchange, Tokenizer

#: Salt used for ``patient_key`` when neither the ``salt`` argument nor the
#: ``ANALYTICS_ID_SALT`` environment variable is set. It is public, so keys made with it only
#: stop casual reading of ids; set ``ANALYTICS_ID_SALT`` to a private value for real data.
DEFAULT_SALT = "massage-billing-analytics/patient-key/v1"

_SALT_ENV = "ANALYTICS_ID_SALT"

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


def _resolve_salt(salt: str | None) -> str:
    if salt is not None:
        return salt
    return os.environ.get(_SALT_ENV) or DEFAULT_SALT


def _bad_number(seg: list[str], number: int, name: str) -> X12Error:
    tag = seg[0] if seg else "?"
    for i in _NUMERIC.get(tag, ()):
        if i < len(seg) and seg[i]:
            try:
                ok = math.isfinite(float(seg[i]))
            except ValueError:
                ok = False
            if not ok:
                return X12Error(
                    f"{name}: segment {number} ({tag}) element {tag}{i:02d} is {seg[i]!r}, "
                    f"which is not a number. Correct it in the file (digits with an optional "
                    f"minus sign and decimal point) or ask the sender for a corrected file.",
                    where=f"{name} segment {number}",
                )
    return X12Error(
        f"{name}: segment {number} ({tag}) could not be read: {seg!r}. Check it against the "
        f"005010X221A1 layout or ask the sender for a corrected file.",
        where=f"{name} segment {number}",
    )


def _last_boundary(segments: list[str], element: str) -> int:
    """Index of the last CLP or ST in ``segments`` (-1 if none): a part may end before it,
    since nothing after a new claim or transaction belongs to the claims before it."""
    clp, st = "CLP" + element, "ST" + element
    for i in range(len(segments) - 1, -1, -1):
        raw = segments[i]
        if raw.startswith(clp) or raw.startswith(st) or raw == "CLP" or raw == "ST":
            return i
    return -1


class Reader:
    """Reads one 835 part by part.

    The scan is one pass over the segments, dispatching on the segment id; each segment is
    split while it is fresh in memory and only the values the tables need are kept, which is
    what makes the reader fast. Its context (transaction, claim, service line, counters) lives
    on across parts; what it collects starts afresh with each part. A part ends before a CLP
    or ST once a batch of segments has been scanned, so every claim is whole in one part, and
    claim, line and segment numbers count through the file.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | bytes,
        *,
        salt: str | None,
        source_name: str | None,
        chunk_bytes: int,
    ) -> None:
        self.pieces, self.name = open_source(source, source_name, chunk_bytes)
        self.notes = Notes(self.name)
        self.tokenizer = Tokenizer(self.pieces, self.name, self.notes.reading)
        self.salt = _resolve_salt(salt).encode()
        self.hashes: dict[str, str] = {}
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
        self.pending: tuple[Interchange, list[str]] | None = None

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
        self, batches: Iterator[tuple[Interchange, list[str]]], *, build_last: bool = True
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
                self._feed(ic, segments[:cut])
                self.pending = (ic, segments[cut:])
                part = self._flush()
                if part is not None:
                    return part, False
            else:
                self._feed(ic, segments)

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
        return entry

    def build(self, entry: Entry) -> Remittance:
        """The tables of a part from :meth:`_take`; its open transaction carries on."""
        remit, (self.open,) = build_tables([entry])
        return remit

    def _flush(self) -> Remittance | None:
        """Build the part collected so far and start the next one."""
        entry = self._take()
        return None if entry is None else self.build(entry)

    def _feed(self, ic: Interchange, segments: list[str]) -> None:
        """Scan a batch of segments into the current part."""
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

        def empty_amount(number: int, element: str) -> float:
            empties.append(f"{number} ({element})")
            return 0.0

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

        pay = self.pay
        st_index, in_st = self.st_index, self.in_st
        st_seg, st_control = self.st_seg, self.st_control
        level, claim_no = self.level, self.claim_no
        st_claims, line_no = self.st_claims, self.line_no
        isa_count, iea_count, number = self.isa_count, self.iea_count, self.number

        seg: list[str] = []
        try:
            for raw in segments:
                number += 1
                seg = raw.split(sep)
                tag = seg[0]
                if tag == "CAS":
                    if level == 0:
                        outside.append(f"{number} (CAS)")
                        continue
                    group = same(seg[1], seg[1])
                    owner = line_no if level == 2 else -claim_no
                    k = len(seg)
                    # Up to six (reason, amount, quantity) triplets per CAS (X12 RFI 213).
                    for i in range(2, k, 3):
                        carc = seg[i]
                        if not carc:
                            continue
                        amount = seg[i + 1] if i + 1 < k else ""
                        a_amount.append(
                            float(amount) if amount else empty_amount(number, f"CAS{i + 1:02d}")
                        )
                        if i + 2 < k and seg[i + 2]:
                            a_qty[len(a_seg)] = float(seg[i + 2])
                        a_seg.append(number)
                        a_owner.append(owner)
                        a_group.append(group)
                        a_carc.append(same(carc, carc))
                elif tag == "DTM":
                    if level == 2:
                        found = l_dates.get(seg[1])
                        if found is not None:
                            found[line_no] = same(seg[2], seg[2])
                    elif level == 1:
                        found = c_dates.get(seg[1])
                        if found is not None:
                            found[claim_no] = same(seg[2], seg[2])
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
                    l_seg.append(number)
                    l_claim.append(claim_no)
                    l_svc01.append(same(seg[1], seg[1]))
                    v = seg[2]
                    l_charge.append(float(v) if v else empty_amount(number, "SVC02"))
                    v = seg[3]
                    l_paid.append(float(v) if v else empty_amount(number, "SVC03"))
                    if seg[4]:
                        l_revenue[line_no] = same(seg[4], seg[4])
                    # SVC05 absent means one unit paid (TR3 loop 2110 SVC05).
                    v = seg[5]
                    l_units.append(float(v) if v else 1.0)
                    if seg[6]:
                        l_original[line_no] = same(seg[6], seg[6])
                elif tag == "REF":
                    if level == 2:
                        if seg[1] == "6R":
                            l_control[line_no] = seg[2]
                    elif level == 0 and pay is not None and st_claims == 0:
                        if seg[1] == "2U":
                            pay.setdefault("payer_id", seg[2])
                        elif seg[1] == "TJ":
                            pay.setdefault("payee_tin", seg[2])
                elif tag == "AMT":
                    if level == 2 and seg[1] == "B6":
                        l_allowed[line_no] = float(seg[2])
                elif tag == "CLP":
                    if not in_st:
                        outside.append(f"{number} (CLP)")
                        continue
                    if len(seg) < 10:
                        seg += PAD[: 10 - len(seg)]
                    level = 1
                    claim_no += 1
                    st_claims += 1
                    c_seg.append(number)
                    c_st.append(st_index)
                    c_id.append(seg[1])
                    # CLP02 is kept as sent: in 5010 a recognised claim paid $0 stays 1/2/3
                    # and 4 means "not recognised" (X12 RFI 1423), so paid 0 is no denial flag.
                    c_status.append(same(seg[2], seg[2]))
                    v = seg[3]
                    c_charge.append(float(v) if v else empty_amount(number, "CLP03"))
                    v = seg[4]
                    c_paid.append(float(v) if v else empty_amount(number, "CLP04"))
                    # CLP05 is situational: empty means no patient responsibility.
                    v = seg[5]
                    c_pr.append(float(v) if v else 0.0)
                    c_filing.append(same(seg[6], seg[6]))
                    c_payer_claim.append(seg[7])
                    c_facility.append(same(seg[8], seg[8]))
                    c_freq.append(same(seg[9], seg[9]))
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
                                    key = hashlib.sha256(salt_bytes + ident.encode()).hexdigest()
                                    key = hashes[ident] = key[:16]
                                c_key[claim_no] = key
                elif tag == "LQ":
                    # LQ*HE: remark codes of the service line (loop 2110).
                    if level and len(seg) > 2 and seg[2]:
                        line = line_no if level == 2 else 0
                        remarks.append((number, claim_no, line, seg[2], "LQ*" + seg[1]))
                elif tag == "MOA" or tag == "MIA":
                    if level == 1:
                        for i in _REMARK_ELEMENTS[tag]:
                            if i < len(seg) and seg[i]:
                                remarks.append((number, claim_no, 0, seg[i], f"{tag}{i:02d}"))
                elif tag == "LX":
                    level = 0
                elif tag == "PLB":
                    level = 0
                    if not in_st:
                        outside.append(f"{number} (PLB)")
                        continue
                    # PLB03/05/...: composite reason:reference, then its amount. A positive
                    # amount reduces the payment (TR3 PLB segment notes).
                    k = len(seg)
                    for i in range(3, k, 2):
                        if seg[i]:
                            amount = seg[i + 1] if i + 1 < k else ""
                            plb.append(
                                (
                                    number,
                                    st_index,
                                    seg[1],
                                    seg[2],
                                    seg[i],
                                    ic,
                                    float(amount)
                                    if amount
                                    else empty_amount(number, f"PLB{i + 1:02d}"),
                                )
                            )
                elif tag == "BPR":
                    if pay is not None and "bpr_handling" not in pay:
                        if len(seg) < 17:
                            seg += PAD[: 17 - len(seg)]
                        v = seg[2]
                        pay.update(
                            bpr_handling=seg[1],
                            paid_amount=float(v) if v else empty_amount(number, "BPR02"),
                            credit_debit=seg[3],
                            method=seg[4],
                            payment_date=seg[16],
                            bpr_segment=number,
                        )
                elif tag == "TRN":
                    if pay is not None and "trace_number" not in pay:
                        seg += PAD[:4]
                        pay.update(trace_number=seg[2], trn_payer_id=seg[3])
                elif tag == "N1":
                    # Payer (1000A) and payee (1000B) come before the first claim; an N1 inside
                    # the claim loops is not part of 005010X221A1 and is not read.
                    if pay is not None and st_claims == 0 and level == 0:
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
                            f"one from segment {st_seg} (ST*835*{st_control}) has no SE trailer. "
                            f"The file was cut or two files were joined; ask the sender for the "
                            f"complete file.",
                            where=f"{name} segment {number}",
                        )
                    kind = seg[1] if len(seg) > 1 else ""
                    if kind != "835":
                        raise X12Error(
                            f"{name}: segment {number} is ST*{kind}: a {kind or 'blank'} "
                            f"transaction, not an 835 remittance. Pass only 835 (ERA) files.",
                            where=f"{name} segment {number}",
                        )
                    in_st = True
                    st_index += 1
                    st_seg = number
                    st_control = seg[2] if len(seg) > 2 else ""
                    level = 0
                    st_claims = 0
                    pay = {"st_index": st_index, "st_control_number": st_control, "segment": number}
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
                                f"{declared or 'no'} segments, but ST (segment {st_seg}) to SE "
                                f"count {count}. The data were read; tell the sender the count "
                                f"is wrong.",
                            )
                        )
                    control = seg[2] if len(seg) > 2 else ""
                    if control != st_control:
                        notes.append(
                            (
                                X12Warning,
                                f"{name}: SE02 {control!r} at segment {number} does not match "
                                f"ST02 {st_control!r} at segment {st_seg}. The data were read.",
                            )
                        )
                    payments.append(pay)
                    in_st = False
                    level = 0
                    pay = None
                elif tag == "ISA":
                    isa_count += 1
                elif tag == "IEA":
                    iea_count += 1
        except X12Error:
            raise
        except (ValueError, IndexError) as exc:  # float() of a non-number, a short segment
            raise _bad_number(seg, number, name) from exc

        # Only the first few are ever named in a warning.
        del empties[11:]
        del outside[10:]
        self.pay = pay
        self.st_index, self.in_st = st_index, in_st
        self.st_seg, self.st_control = st_seg, st_control
        self.level, self.claim_no = level, claim_no
        self.st_claims, self.line_no = st_claims, line_no
        self.isa_count, self.iea_count, self.number = isa_count, iea_count, number

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
        if self.st_index == 0:
            raise X12Error(
                f"{name}: no ST*835 transaction found in {number} segment(s). Check that this "
                f"is an 835 (ERA) file and not only an envelope or acknowledgement.",
                where=name,
            )

        def note(message: str) -> None:
            self.notes.scan.append((X12Warning, f"{name}: {message}"))

        if self.isa_count != self.iea_count:
            note(
                f"{self.isa_count} ISA header(s) but {self.iea_count} IEA trailer(s); the "
                f"envelope is incomplete (the transactions themselves were complete and read)."
            )
        if self.empties:
            shown = ", ".join(self.empties[:10])
            more = " ..." if len(self.empties) > 10 else ""
            note(
                f"required amount(s) empty at segment(s) {shown}{more}; read as 0. Ask the "
                f"sender for a corrected file if these lines matter."
            )
        if self.outside:
            note(
                f"segment(s) {', '.join(self.outside[:10])} are outside a claim or transaction "
                f"and were not read."
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
