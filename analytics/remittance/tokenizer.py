"""X12 tokenizer: delimiters from each ISA, and the segments of an 835 read piece by piece.

Delimiters come from each interchange's ISA (element separator = 4th character, repetition
separator = ISA11 in 5010, component separator = ISA16, segment terminator = the character
after ISA16); a file that starts at ST uses the separators of its first segment. The component
separator is settled from the composites the interchange actually uses.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from typing import NamedTuple

from analytics.exceptions import X12Error, X12Warning
from analytics.remittance.sources import CHUNK_BYTES, Pieces, open_source

#: Padding for short segments, so that elements a sender left off read as empty.
PAD = [""] * 24


class _Delimiters(NamedTuple):
    element: str
    repetition: str | None
    component: str
    segment: str


Note = tuple[type[Warning], str]

_ISA_LENGTH = 106  # fixed-width ISA, terminator included (X12.5 interchange control header)
_ISA_WINDOW = 2 * _ISA_LENGTH  # enough text to find the ISA's 16 elements and its terminator
_BREAKS = "\r\n"
_SAMPLES = 20  # composites looked at to settle the component separator


class Interchange:
    """One interchange (or a file that starts at ST): its delimiters, and the first composites
    it uses, from which its component separator is settled."""

    __slots__ = ("declared", "delimiters", "first_number", "resolved", "samples")

    def __init__(self, delimiters: _Delimiters, first_number: int, declared: bool) -> None:
        self.delimiters = delimiters
        self.first_number = first_number  # segment number of its first segment
        self.declared = declared  # the component separator came from ISA16
        self.samples: list[str] = []
        self.resolved = False


def _isa_delimiters(text: str, pos: int, name: str, number: int) -> tuple[_Delimiters, int]:
    """Delimiters from the ISA starting at ``pos``; returns them and the ISA length."""
    element = text[pos + 3 : pos + 4]
    if not element or element.isalnum() or element.isspace():
        raise X12Error(
            f"{name}: segment {number} (ISA) has no element separator after 'ISA' "
            f"(found {element!r}). Restore the original interchange header.",
            where=f"{name} segment {number}",
        )
    # ISA has exactly 16 elements; ISA16 (component separator) is one character and the
    # character right after it is the segment terminator.
    parts = text[pos : pos + _ISA_WINDOW].split(element, 16)
    if len(parts) < 17 or len(parts[16]) < 2:
        raise X12Error(
            f"{name}: segment {number} (ISA) is incomplete: an ISA has 16 elements and ends "
            f"with the component separator and the segment terminator. The file is truncated or "
            f"was edited; ask the sender for the original file.",
            where=f"{name} segment {number}",
        )
    component, terminator = parts[16][0], parts[16][1]
    length = sum(len(p) for p in parts[:16]) + 16 + 2
    if terminator.isalnum() or terminator == element or terminator == " ":
        raise X12Error(
            f"{name}: segment {number} (ISA) has no valid segment terminator after ISA16 "
            f"(found {terminator!r}). Restore the original interchange header.",
            where=f"{name} segment {number}",
        )
    # ISA11 is the repetition separator from version 00501 on; in 4010 it is the standards id.
    repetition = parts[11] if parts[12].strip() >= "00501" and len(parts[11]) == 1 else None
    return _Delimiters(element, repetition, component, terminator), length


def _not_x12(text: str, name: str) -> X12Error:
    head = text[:20]
    return X12Error(
        f"{name}: not an X12 file: it begins with {head!r}, but an 835 begins with 'ISA' "
        f"(interchange header) or 'ST*835'. Check that this is the 835/ERA file from the payer "
        f"or clearinghouse, not a report, PDF or spreadsheet.",
        where=f"{name} segment 1",
    )


def _clean_breaks(text: str, terminator: str) -> str:
    # Line breaks after terminators (and 80-column wrapping) are common; they are not data.
    # When the line break is itself the terminator, only normalise CRLF/CR to LF.
    if terminator == "\n":
        return text.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in text or "\r" in text:
        return text.replace("\r", "").replace("\n", "")
    return text


def _resolve_component(ic: Interchange, name: str, notes: list[Note]) -> None:
    """Use the component separator the composites actually use.

    Procedure codes and PLB reasons are qualified by a two-character code (HC, AD, WO ...), so
    the character after it is the separator. Some files declare ':' in ISA16 yet write
    ``HC>97140``; files that start at ST declare nothing and default to ':'.
    """
    ic.resolved = True
    d = ic.delimiters
    samples = ic.samples
    ic.samples = []
    if not samples or any(d.component in s for s in samples):
        return
    for s in samples:
        c = s[2:3]
        if c and not c.isalnum() and c not in (" ", d.element, "-", "."):
            if ic.declared:
                notes.append(
                    (
                        X12Warning,
                        f"{name}: ISA16 at segment {ic.first_number} declares component "
                        f"separator {d.component!r}, but the composites use {c!r} "
                        f"(e.g. {s!r}); read with {c!r}.",
                    )
                )
            ic.delimiters = d._replace(component=c)
            return


class Tokenizer:
    """Segments of an 835, read piece by piece and never whole.

    Yields ``(interchange, segments)`` batches in file order, about one per piece read; the
    segments are raw text with the terminator removed, and their 1-based positions in the file
    follow on from batch to batch. The rules are those of a whole-file read: delimiters from each
    ISA, an interchange ends after the terminator that follows an IEA at the start of a segment,
    line breaks are dropped (or are the terminator), blank segments are skipped, and text after
    the last IEA that is not another interchange is reported and left.

    Between batches, all state is in attributes, so :meth:`settle` can copy the tokenizer and
    read ahead for an interchange's first composites without consuming anything.
    """

    def __init__(self, pieces: Pieces, name: str, notes: list[Note]) -> None:
        self.pieces = pieces
        self.name = name
        self.notes = notes  # reading notes: component separators, text after the last IEA
        self.buf = ""  # text read but not yet cut into segments
        self.eof = False
        self.number = 0  # segments handed out so far
        self.ic: Interchange | None = None
        self.envelope = True  # False for a file that starts at ST: it runs to the end
        self.fresh = True  # buf begins at the current interchange's ISA
        self.iea = -1  # where in buf the IEA that ends the interchange begins, once found
        self.search = 0  # where in buf to look for that IEA next
        self.checked = False  # the interchange's ISA has been checked without line breaks

    def _more(self) -> bool:
        """Append the next piece to the buffer; False at the end of the file."""
        if self.eof:
            return False
        piece = self.pieces.read()
        if not piece:
            self.eof = True
            return False
        self.buf += piece
        return True

    def _fill(self, n: int) -> None:
        while len(self.buf) < n and self._more():
            pass

    def _skip(self, chars: str) -> None:
        """Drop leading ``chars``, reading on while the buffer holds nothing else."""
        while True:
            self.buf = self.buf.lstrip(chars)
            if self.buf or not self._more():
                return

    def batches(self) -> Iterator[tuple[Interchange, list[str]]]:
        name = self.name
        self._skip("\ufeff \t\r\n")
        if not self.buf:
            raise X12Error(
                f"{name}: the file is empty. Download the 835 again from the payer or "
                f"clearinghouse.",
                where=name,
            )
        self._fill(3)
        if self.buf.startswith("ST"):
            self.ic = Interchange(self._st_delimiters(), 1, declared=False)
            self.envelope, self.checked = False, True
            yield from self._interchange()
            return
        if not self.buf.startswith("ISA"):
            self._fill(20)
            raise _not_x12(self.buf, name)
        while True:
            # Each interchange has its own delimiters; line breaks are removed per interchange,
            # once its terminator is known.
            self._fill(_ISA_WINDOW)
            raw, _ = _isa_delimiters(self.buf, 0, name, self.number + 1)
            term = "\n" if raw.segment in _BREAKS else raw.segment
            self.ic = Interchange(raw._replace(segment=term), self.number + 1, declared=True)
            self.fresh, self.iea, self.search, self.checked = True, -1, 0, False
            yield from self._interchange()
            self._skip(" \t\r\n")
            if not self.buf:
                return
            self._fill(3)
            if not self.buf.startswith("ISA"):
                self._fill(20)
                head, count = self.buf[:20], len(self.buf)
                self.buf = ""
                while piece := self.pieces.read():
                    count += len(piece)
                self.notes.append(
                    (
                        X12Warning,
                        f"{name}: {count} character(s) after the IEA at segment {self.number} "
                        f"are not an interchange (they begin {head!r}) and were not read.",
                    )
                )
                return

    def _st_delimiters(self) -> _Delimiters:
        """Delimiters for a file that starts at ST (no ISA envelope)."""
        self._fill(20)
        element = self.buf[2:3]
        if not element or element.isalnum() or element.isspace():
            raise _not_x12(self.buf, self.name)
        stop = re.compile(r"[^A-Za-z0-9 .\-_" + re.escape(element) + "]")
        start = 3
        while (found := stop.search(self.buf, start)) is None:
            start = max(start, len(self.buf))
            if not self._more():
                raise X12Error(
                    f"{self.name}: segment 1 (ST) has no segment terminator. The file is "
                    f"truncated; ask the sender for the complete file.",
                    where=f"{self.name} segment 1",
                )
        terminator = found.group()
        if terminator in _BREAKS:
            terminator = "\n"
        return _Delimiters(element, None, ":", terminator)

    def _interchange(self) -> Iterator[tuple[Interchange, list[str]]]:
        """The segments of the current interchange, region by region."""
        ic = self.ic
        assert ic is not None
        term = ic.delimiters.segment
        head, held = "", []
        while True:
            region, last = self._region(term)
            text = probe = _clean_breaks(region, term)
            segments = text.split(term)
            if term + " " in text or term + "\t" in text or text.startswith((" ", "\t")):
                segments = [s.lstrip(" \t") for s in segments]
            # A region that is not the last ends with a terminator, so its final item is empty;
            # the interchange's own final item is dropped when blank.
            if not last or not segments[-1].strip():
                segments.pop()
            if "" in segments:
                segments = [s for s in segments if s]
            if not self.checked:
                # The ISA is checked without its line breaks before any of its segments go out.
                head += text[: _ISA_WINDOW - len(head)]
                if len(head) < _ISA_WINDOW and not last:
                    held += segments
                    continue
                self._check_isa(ic, head)
                if held:
                    segments, held, probe = held + segments, [], None
            if not ic.resolved:
                self._sample(ic, segments, probe)
                if last and not ic.resolved:
                    _resolve_component(ic, self.name, self.notes)
            if segments:
                self.number += len(segments)
                yield ic, segments
            if last:
                return

    def _check_isa(self, ic: Interchange, head: str) -> None:
        delimiters, isa_length = _isa_delimiters(head, 0, self.name, ic.first_number)
        if isa_length < _ISA_LENGTH:
            number = ic.first_number
            raise X12Error(
                f"{self.name}: segment {number} (ISA) is {isa_length} characters long, but an "
                f"ISA is always {_ISA_LENGTH} (its fields are fixed-width, padded with spaces). "
                f"The padding was probably trimmed; restore it or ask the sender for the "
                f"original file.",
                where=f"{self.name} segment {number}",
            )
        ic.delimiters = delimiters._replace(segment=ic.delimiters.segment)
        self.checked = True

    def _sample(self, ic: Interchange, segments: list[str], text: str | None) -> None:
        """Collect SVC01/SVC06 and PLB03... composites until there are enough to settle on;
        ``text`` (the segments' text, when at hand) lets a stretch without any be skipped."""
        element = ic.delimiters.element
        svc, plb = "SVC" + element, "PLB" + element
        if text is not None and svc not in text and plb not in text:
            return
        samples = ic.samples
        for raw in segments:
            if raw.startswith(svc):
                parts = raw.split(element)
                samples.extend(p for p in (parts[1:2] + parts[6:7]) if p)
            elif raw.startswith(plb):
                parts = raw.split(element)
                samples.extend(p for p in parts[3::2] if p)
            else:
                continue
            if len(samples) >= _SAMPLES:
                break
        component = ic.delimiters.component
        # Any sample with the declared separator settles it; so do enough samples.
        if len(samples) >= _SAMPLES or any(component in s for s in samples):
            _resolve_component(ic, self.name, self.notes)

    def _region(self, term: str) -> tuple[str, bool]:
        """The next stretch of the interchange's text that ends at a terminator, and whether
        it is the interchange's last (then the buffer holds what follows the interchange)."""
        while True:
            buf = self.buf
            if self.envelope:
                if self.iea < 0:
                    self.iea = self._find_iea(buf, term)
                if self.iea >= 0:
                    end = buf.find(term, self.iea)
                    if end >= 0:
                        self.buf = buf[end + 1 :]
                        return buf[: end + 1], True
            cut = buf.rfind(term)
            if term == "\n":
                cut = max(cut, buf.rfind("\r"))
            if cut >= 0:
                shift = cut + 1
                self.buf = buf[shift:]
                self.search = max(0, self.search - shift)
                if self.iea >= 0:
                    self.iea = max(0, self.iea - shift)
                self.fresh = False
                return buf[:shift], False
            if not self._more():
                self.buf = ""
                return buf, True

    def _find_iea(self, buf: str, term: str) -> int:
        """Where the IEA that ends the interchange starts in ``buf``, or -1 (not yet read).

        An IEA counts only at the start of a segment: right after a line break when that is the
        terminator, else after the terminator and any line breaks. The buffer starts at the ISA
        or right after a terminator (a line break when that is the terminator).
        """
        key = "IEA" + self.ic.delimiters.element  # type: ignore[union-attr]
        start = self.search
        while True:
            i = buf.find(key, start)
            if i < 0:
                self.search = max(start, len(buf) - len(key) + 1)
                return -1
            j = i - 1
            if term == "\n":
                at_segment_start = j < 0 or buf[j] in _BREAKS
            else:
                floor = 0 if self.fresh else -1
                while j > floor and buf[j] in _BREAKS:
                    j -= 1
                at_segment_start = j < 0 or buf[j] == term
            if at_segment_start:
                return i
            start = i + 1

    def settle(self, ic: Interchange) -> None:
        """Settle ``ic``'s component separator now, reading ahead on a copy of the tokenizer
        when its first composites are still to come."""
        if ic.resolved:
            return
        if ic is not self.ic:  # an interchange read to its end is always settled; be safe
            _resolve_component(ic, self.name, self.notes)
            return
        ahead = copy.copy(self)
        ahead.pieces = self.pieces.fork()
        try:
            for _ in ahead._interchange():
                if ic.resolved:
                    break
        finally:
            ahead.pieces.close()
        if not ic.resolved:
            _resolve_component(ic, self.name, self.notes)


def tokenize(
    source: str | os.PathLike[str] | bytes, *, source_name: str | None = None
) -> list[list[str]]:
    """Split an 835 into segments and elements.

    Delimiters come from the ISA (element separator = 4th character, repetition separator =
    ISA11 in 5010, component separator = ISA16, segment terminator = the character after
    ISA16). A file that starts at ST (no envelope) uses the separators of its first segment.
    Line breaks after terminators are ignored. Composite elements are not split.

    Parameters
    ----------
    source
        A path, the raw bytes, or the 835 text itself.
    source_name
        Name used in error messages (defaults to the file name).

    Returns
    -------
    list of list of str
        One list per segment: the segment id, then its elements. Item ``i`` is segment number
        ``i + 1`` in error messages.

    Examples
    --------
    >>> tokenize("ST*835*0001~BPR*I*10*C*CHK~SE*3*0001~")[1]
    ['BPR', 'I', '10', 'C', 'CHK']
    """
    pieces, name = open_source(source, source_name, CHUNK_BYTES)
    out: list[list[str]] = []
    try:
        for ic, segments in Tokenizer(pieces, name, []).batches():
            sep = ic.delimiters.element
            out.extend(s.split(sep) for s in segments)
    finally:
        pieces.close()
    return out
