"""X12 tokenizer: delimiters from each ISA, and the segments of an 835 read piece by piece.

Delimiters come from each interchange's ISA (element separator = 4th character, repetition
separator = ISA11 in 5010, component separator = ISA16, segment terminator = the character
after ISA16); a file that starts at ST uses the separators of its first segment. An ISA whose
padding was trimmed or added is read from its structure (16 elements, then ISA16 and the
terminator) with a warning, and so is an ISA with ISA16 left out. The component separator is
settled from the composites the interchange actually uses.

Line breaks are never data unless they are the terminator: a file wrapped at 80 columns is read
as if it were one line, even where a break falls inside an ISA or an IEA.

Segments are handed out in batches: a list of strings, or for a long stretch of text a
:class:`SegmentText`, split only where the segments are read one by one.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

import numpy as np

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
_ISA_WINDOW = 512  # raw text enough to find the ISA's 16 elements and its terminator
_BREAKS = "\r\n"
_SAMPLES = 20  # composites looked at to settle the component separator
_SPACES = " \t\r\n\x0b\x0c"  # never a separator (the information separators \x1c-\x1f may be)
_START = re.compile(r"[^\ufeff \t\r\n]")
_ISA_AT = re.compile(r"I[\r\n]*S[\r\n]*A[\r\n]*[^A-Za-z0-9 \r\n]")

# Fixed-width ISA elements that show whether its 16 elements were found where they belong:
# ISA09 date YYMMDD, ISA10 time HHMM, ISA12 version, ISA13 control number.
_ISA_DIGITS = (9, 10, 12, 13)


class SegmentText(Sequence[str]):
    """The segments of a long stretch of ASCII text, split only where they are read one by
    one: ``text`` is the segments joined by the terminator ``term``.

    Long runs of claims are read from the text itself
    (:class:`~analytics.remittance.scan.ClaimRuns`), so those segments are never made into
    strings; iterating or slicing gives them as strings.
    """

    __slots__ = ("_ends", "_size", "longest", "term", "text")

    def __init__(self, text: str, term: str, longest: int | None = None) -> None:
        self.text = text
        self.term = term
        #: the longest stretch of it that is one interchange, in characters (at most)
        self.longest = len(text) if longest is None else longest
        self._size = -1
        self._ends: np.ndarray | None = None

    @property
    def size(self) -> int:
        if self._size < 0:
            self._size = self.text.count(self.term) + 1 if self.text else 0
        return self._size

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return bool(self.text)

    def __iter__(self) -> Iterator[str]:
        return iter(self.split())

    def split(self) -> list[str]:
        return self.text.split(self.term) if self.text else []

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> SegmentText: ...

    def __getitem__(self, i: int | slice) -> str | SegmentText:
        if not isinstance(i, slice):
            k = range(self.size)[i]
            return self.text[self._start(k) : self._start(k + 1) - 1]
        start, stop, step = i.indices(self.size)
        if step != 1:
            raise ValueError("segments are sliced in steps of one")
        if start >= stop:
            return SegmentText("", self.term)
        text = self.text[self._start(start) : self._start(stop) - 1]
        return SegmentText(text, self.term, min(self.longest, len(text)))

    def _start(self, k: int) -> int:
        """Where segment ``k`` begins (``len(text) + 1`` for ``k == size``)."""
        if k == 0:
            return 0
        if self._ends is None:
            raw = np.frombuffer(self.text.encode("ascii"), dtype=np.uint8)
            self._ends = np.append(np.flatnonzero(raw == ord(self.term)), len(self.text))
        return int(self._ends[k - 1]) + 1

    def from_end(self) -> Iterator[tuple[int, str]]:
        """The segments and their indexes, last first."""
        text, term = self.text, self.term
        end = len(text)
        for k in range(self.size - 1, -1, -1):
            start = text.rfind(term, 0, end) + 1
            yield k, text[start:end]
            end = start - 1


#: Regions at least this long (in characters) are handed out as :class:`SegmentText`.
LONG_REGION = 2**20

#: A batch of segments: a list, or a long stretch of text not split yet.
Segments = list[str] | SegmentText


class Interchange:
    """One interchange (or a file that starts at ST): its delimiters, and the first composites
    it uses, from which its component separator is settled."""

    __slots__ = ("declared", "delimiters", "first_number", "isa", "resolved", "samples")

    def __init__(self, delimiters: _Delimiters, first_number: int, declared: bool) -> None:
        self.delimiters = delimiters
        self.isa = delimiters  # as its ISA declares them
        self.first_number = first_number  # segment number of its first segment
        self.declared = declared  # the component separator came from ISA16
        self.samples: list[str] = []
        self.resolved = False


def _isa_error(name: str, number: int, what: str) -> X12Error:
    return X12Error(
        f"{name}: segment {number} (ISA) {what} Restore the original interchange header or ask "
        f"the sender for the original file.",
        where=f"{name} segment {number}",
    )


def _separator(c: str, element: str) -> bool:
    """``c`` can be a component separator or a terminator (one character, not a letter, digit,
    space or the element separator)."""
    return len(c) == 1 and not c.isalnum() and c != " " and c != element


def _isa_end(window: str, element: str, name: str, number: int) -> tuple[str | None, str, str]:
    """ISA16 and the terminator of the ISA at the start of ``window`` (raw text, line breaks
    kept), and how they were found: ``""`` as the standard says, ``"empty"`` when ISA16 is
    empty, ``"missing"`` when ISA16 and its separator are left out."""
    # where the 15th and the 16th element separators are in the raw text
    at = [-1]
    for _ in range(16):
        at.append(window.find(element, at[-1] + 1))
        if at[-1] < 0:
            raise _isa_error(
                name,
                number,
                "is incomplete: an ISA has 16 elements, then the component separator (ISA16) "
                "and the segment terminator. The file is truncated or was edited.",
            )
    isa15 = window[at[15] + 1 : at[16]].replace("\r", "").replace("\n", "")
    if len(isa15) > 1 and isa15[:1].isalnum() and _separator(isa15[1], element):
        # "...*T~GS*...": ISA15 is one character and the terminator follows it at once
        return None, isa15[1], "missing"
    after = window[at[16] + 1 :]
    first = after[:1]
    if first and first in _BREAKS:
        rest = after.lstrip(_BREAKS)
        if rest[:1].isalpha():  # "*\nGS": ISA16 empty, a line break ends the ISA
            return None, "\n", "empty"
        if _separator(rest[:1], element) and _separator(rest[1:2], element):
            return rest[0], rest[1], ""  # wrapped right after the 16th separator
        if _separator(rest[:1], element) and rest[1:2].isalpha():
            return None, rest[0], "empty"
    elif _separator(first, element):
        second = after[1:2]
        if second and second in _BREAKS:
            rest = after[1:].lstrip(_BREAKS)
            if not rest or rest[:1].isalpha():
                line = re.split("[\r\n]", rest, maxsplit=1)[0]
                if line.endswith(first):  # "*~\nGS*...~\n": ISA16 empty, '~' ends segments
                    return None, first, "empty"
                return first, "\n", ""  # a line break is the terminator
            if _separator(rest[:1], element):
                return first, rest[0], ""  # wrapped between ISA16 and the terminator
        elif second.isalpha():  # "*~GS": ISA16 empty, the terminator right after ISA15
            return None, first, "empty"
        elif _separator(second, element):
            return first, second, ""
    elif first.isalnum():
        raise _isa_error(
            name,
            number,
            f"has {first!r} in ISA16, where the component separator belongs (one character "
            f"that is not a letter or digit, such as ':' or '>').",
        )
    found = after[:2].replace("\r", "\\r").replace("\n", "\\n")
    raise _isa_error(
        name,
        number,
        f"has no component separator (ISA16) and segment terminator after its 16th element "
        f"(found {found!r}).",
    )


def _standard_isa(window: str) -> _Delimiters | None:
    """The delimiters of an ISA laid out as the standard says (106 characters, every element
    separator where its fixed width puts it), else None: the common case, read at once."""
    element = window[3:4]
    head = window[:106]
    if (
        len(head) < 106
        or head.count(element) != 16
        or head[103] != element
        or "\r" in head[:105]
        or "\n" in head[:105]
        or element.isalnum()
        or element in _SPACES
        or not _separator(head[104], element)
    ):
        return None
    terminator = head[105]
    if terminator in _BREAKS:
        rest = window[106:].lstrip(_BREAKS)
        if rest and not rest[0].isalpha():
            return None
        if re.split("[\r\n]", rest, maxsplit=1)[0].endswith(head[104]):
            return None  # ISA16 may be empty, and head[104] the terminator: read slowly
        terminator = "\n"
    elif not _separator(terminator, element):
        return None
    repetition = head[82] if head[84:89] >= "00501" else None
    return _Delimiters(element, repetition, head[104], terminator)


def read_isa(window: str, name: str, number: int, notes: list[Note]) -> tuple[_Delimiters, bool]:
    """Delimiters of the ISA at the start of ``window`` (raw text, line breaks kept), and
    whether ISA16 declared the component separator.

    An ISA is fixed-width (106 characters, terminator included). One of another length is read
    from its structure when that is unambiguous (16 elements, its fixed-width numbers where they
    belong), with a warning; an ISA16 left out is named, and the composites settle the
    component separator.
    """
    fast = _standard_isa(window)
    if fast is not None:
        return fast, True
    flat = window.replace("\r", "").replace("\n", "")
    element = flat[3:4]
    if not element or element.isalnum() or element in _SPACES:
        raise _isa_error(
            name, number, f"has no element separator after 'ISA' (found {element!r})."
        )
    component, terminator, how = _isa_end(window, element, name, number)
    parts = flat.split(element, 16)
    if how == "missing":
        parts[15:] = [parts[15][:1], ""]
    # "ISA", 15 or 16 elements with their separators, ISA16 if any, the terminator
    length = sum(len(p) for p in parts[:16]) + (15 if how == "missing" else 16)
    length += (1 if component else 0) + 1
    said: list[str] = []
    if length != _ISA_LENGTH:
        wrong = [
            f"ISA{k:02d}"
            for k in _ISA_DIGITS
            if not (parts[k].strip().isdigit() and parts[k].isascii())
        ]
        if wrong:
            raise _isa_error(
                name,
                number,
                f"is {length} characters long, not {_ISA_LENGTH}, and its separators cannot "
                f"be told from its structure: {', '.join(wrong)} is not the fixed-width number "
                f"it should be.",
            )
        said.append(
            f"is {length} characters long, but an ISA is always {_ISA_LENGTH} (its fields "
            f"are fixed-width, padded with spaces)"
        )
    if how == "empty":
        said.append("has an empty ISA16 (component separator)")
    elif how == "missing":
        said.append("has no ISA16 (component separator) and ends after ISA15")
    if said:
        shown = {"\n": "a line break"}.get(terminator, repr(terminator))
        notes.append(
            (
                X12Warning,
                f"{name}: segment {number} (ISA) {' and '.join(said)}; read from its structure "
                f"with element separator {element!r}, segment terminator {shown}"
                + (
                    f" and component separator {component!r}."
                    if component
                    else ", and the component separator the composites use (':' if none)."
                ),
            )
        )
    # ISA11 is the repetition separator from version 00501 on; in 4010 it is the standards id.
    repetition = parts[11] if parts[12].strip() >= "00501" and len(parts[11]) == 1 else None
    delimiters = _Delimiters(element, repetition, component or ":", terminator)
    return delimiters, component is not None


def _not_x12(text: str, name: str) -> X12Error:
    head = text[:20]
    if head[:2] in ("\xff\xfe", "\xfe\xff"):  # a UTF-16 byte-order mark, read as bytes
        return X12Error(
            f"{name}: the file was saved as UTF-16 (Unicode) text, two bytes per character; an 835 is plain "
            f"ASCII. Use the file as the payer or clearinghouse sent it, or save it again as ANSI or UTF-8.",
            where=f"{name} segment 1",
        )
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
        if "\r" in text:
            return text.replace("\r\n", "\n").replace("\r", "\n")
        return text
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


_END_PATTERNS: dict[tuple[str, str], re.Pattern[str]] = {}
_COMPOSITE_PATTERNS: dict[tuple[str, str], tuple[re.Pattern[str], re.Pattern[str]]] = {}


def _uses_component(text: str, delimiters: _Delimiters) -> bool:
    """Every SVC01 and PLB03 of ``text`` (segments, line breaks removed) uses the component
    separator of ``delimiters``, or none that :func:`_resolve_component` would take."""
    element, component, term = delimiters.element, delimiters.component, delimiters.segment
    patterns = _COMPOSITE_PATTERNS.get((element, term))
    if patterns is None:
        # Each pattern begins with a literal, which the regular expression engine finds fast,
        # and looks ahead, so every occurrence is looked at (they cannot overlap).
        e, t = re.escape(element), re.escape(term)
        patterns = (
            # an id padded with spaces ("SVC *") is still the segment (read with a warning)
            re.compile(rf"SVC *{e}(?=[^{e}{t}]{{2}}(.))"),
            re.compile(rf"PLB *{e}(?=[^{e}{t}]*{e}[^{e}{t}]*{e}[^{e}{t}]{{2}}(.))"),
        )
        _COMPOSITE_PATTERNS[(element, term)] = patterns
    for c in set(patterns[0].findall(text)) | set(patterns[1].findall(text)):
        if c != component and not c.isalnum() and c not in (" ", element, "-", ".", term):
            return False
    return True


_BLANK_PATTERNS: dict[str, re.Pattern[str]] = {}


def _blank_segment(terminator: str) -> re.Pattern[str]:
    """A segment that begins with a space or a tab, or is empty: one search of the text
    instead of one for each."""
    pattern = _BLANK_PATTERNS.get(terminator)
    if pattern is None:
        t = re.escape(terminator)
        pattern = _BLANK_PATTERNS[terminator] = re.compile(rf"{t}[ \t{t}]")
    return pattern


def _end_pattern(element: str, terminator: str) -> re.Pattern[str]:
    """Where an interchange may end: its IEA, or the ISA of the next interchange when the IEA
    is missing, with line breaks inside the segment id when the file is wrapped at a fixed
    width. Only a match at the start of a segment counts (:meth:`Tokenizer._segment_start`);
    the pattern begins with the letter, which the regular expression engine finds fast."""
    key = (element, terminator)
    pattern = _END_PATTERNS.get(key)
    if pattern is None:
        b = "" if terminator == "\n" else r"[\r\n]*"
        pattern = re.compile(
            rf"I{b}(?:(E{b}A{b}{re.escape(element)})|S{b}A{b}[^A-Za-z0-9 \r\n])"
        )
        _END_PATTERNS[key] = pattern
    return pattern


class Tokenizer:
    """Segments of an 835, read piece by piece and never whole.

    Yields ``(interchange, segments)`` batches in file order, about one per piece read or per
    interchange; the segments (a list, or a :class:`SegmentText` for a long region) are raw
    text with the terminator removed, and their 1-based positions in the file follow on from
    batch to batch. Delimiters come from each ISA; an
    interchange ends after the terminator of an IEA at the start of a segment (or before the
    next ISA when its IEA is missing); line breaks are dropped (or are the terminator), blank
    segments are skipped, and text after the last IEA that is not another interchange is
    reported and left.

    The buffer is consumed by moving an offset, never by copying what is left of it, so the
    time a file takes grows with its size, not with its number of interchanges. Between
    batches, all state is in attributes, so :meth:`settle` can copy the tokenizer and read
    ahead for an interchange's first composites without consuming anything.
    """

    def __init__(self, pieces: Pieces, name: str, notes: list[Note]) -> None:
        self.pieces = pieces
        self.name = name
        self.notes = notes  # reading notes: ISA oddities, component separators, trailing text
        self.buf = ""  # text read; what is before ``pos`` has been handed out
        self.pos = 0
        self.search = 0  # where in buf to look for the end of the interchange next
        self.eof = False
        self.number = 0  # segments handed out so far
        self.ic: Interchange | None = None
        self.envelope = True  # False for a file that starts at ST: it runs to the end
        # Consecutive interchanges with the same separators are read as one run (one region,
        # one batch), which is what keeps a file of many small interchanges fast.
        self.merging = True
        self.merged = False  # the last region runs across an interchange boundary
        # the longest stretch of the last region inside one interchange, and where in buf the
        # interchange being read begins (or the region, if later)
        self.longest = 0
        self.joined = 0

    def _more(self) -> bool:
        """Append the next piece to the buffer, dropping what has been handed out; False at
        the end of the file."""
        if self.eof:
            return False
        piece = self.pieces.read()
        if not piece:
            self.eof = True
            return False
        keep = min(self.pos, self.search)
        if keep:
            self.buf = self.buf[keep:] + piece
            self.pos -= keep
            self.search -= keep
            self.joined = max(self.joined - keep, 0)
        else:
            self.buf += piece
        return True

    def _fill(self, n: int) -> None:
        while len(self.buf) - self.pos < n and self._more():
            pass

    def _skip(self) -> None:
        """Move past blank text (a BOM, spaces, line breaks), reading on while that is all."""
        while True:
            found = _START.search(self.buf, self.pos)
            if found is not None:
                self.pos = found.start()
                return
            self.pos = len(self.buf)
            if not self._more():
                return

    def _head(self, n: int) -> str:
        self._fill(n)
        return self.buf[self.pos : self.pos + n]

    def batches(self) -> Iterator[tuple[Interchange, Segments]]:
        name = self.name
        self._skip()
        if self.pos >= len(self.buf):
            raise X12Error(
                f"{name}: the file is empty. Download the 835 again from the payer or "
                f"clearinghouse.",
                where=name,
            )
        if self._head(3).startswith("ST"):
            self.ic = Interchange(self._st_delimiters(), 1, declared=False)
            self.envelope = False
            yield from self._interchange()
            return
        if _ISA_AT.match(self._head(_ISA_WINDOW)) is None:
            raise _not_x12(self._head(20), name)
        while True:
            # Each interchange has its own delimiters; line breaks are removed per interchange,
            # once its terminator is known.
            delimiters, declared = read_isa(
                self._head(_ISA_WINDOW), name, self.number + 1, self.notes
            )
            self.ic = Interchange(delimiters, self.number + 1, declared=declared)
            self.search = self.pos + 1
            yield from self._interchange()
            self._skip()
            if self.pos >= len(self.buf):
                return
            if _ISA_AT.match(self._head(_ISA_WINDOW)) is None:
                head = self._head(20)
                count = len(self.buf) - self.pos
                self.pos = len(self.buf)
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
        head = self._head(20)
        element = head[2:3]
        if not element or element.isalnum() or element in _SPACES:
            raise _not_x12(head, self.name)
        stop = re.compile(r"[^A-Za-z0-9 .\-_" + re.escape(element) + "]")
        start = self.pos + 3
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

    def _interchange(self) -> Iterator[tuple[Interchange, Segments]]:
        """The segments of the current interchange, region by region."""
        ic = self.ic
        assert ic is not None
        term = ic.delimiters.segment
        end = _end_pattern(ic.delimiters.element, term)
        while True:
            start = (self.pos, self.search)
            self.merged = False
            region, last = self._region(end, term)
            text = _clean_breaks(region, term)
            if self.merged and not _uses_component(text, ic.delimiters):
                # an interchange of the run uses another component separator: read the rest
                # of the file one interchange at a time, each with its own
                self.pos, self.search = start
                self.merging = False
                continue
            longest = max(self.longest, self.pos - self.joined) if self.merged else len(text)
            segments = self._segments(text, term, last, longest)
            if not ic.resolved:
                self._sample(ic, segments, text)
                if last and not ic.resolved:
                    _resolve_component(ic, self.name, self.notes)
            if segments:
                self.number += len(segments)
                yield ic, segments
            if last:
                return

    @staticmethod
    def _segments(text: str, term: str, last: bool, longest: int) -> Segments:
        """The segments of a region: split at the terminator, leading spaces and blank
        segments dropped. A long region of ASCII text without those is not split yet."""
        if (
            len(text) >= LONG_REGION
            and term in text
            and text.isascii()
            and not text.startswith((" ", "\t", term))
            and _blank_segment(term).search(text) is None
        ):
            # A region that is not the last ends with a terminator, so its final item is
            # empty; the interchange's own final item is dropped when blank.
            tail = text[text.rfind(term) + 1 :]
            if not last or not tail.strip():
                text = text[: len(text) - len(tail) - 1]
            return SegmentText(text, term, min(longest, len(text)))
        segments = text.split(term)
        if term + " " in text or term + "\t" in text or text.startswith((" ", "\t")):
            segments = [s.lstrip(" \t") for s in segments]
        if not last or not segments[-1].strip():
            segments.pop()
        if "" in segments:
            segments = [s for s in segments if s]
        return segments

    def _sample(self, ic: Interchange, segments: list[str], text: str | None) -> None:
        """Collect SVC01/SVC06 and PLB03... composites, in file order, until there are enough
        to settle on; ``text`` (the segments' text, when at hand) is searched for them, so the
        segments before the first one are never looked at."""
        element = ic.delimiters.element
        if text is None:
            text = ic.delimiters.segment.join(segments)
        if "SVC" not in text and "PLB" not in text:
            return
        samples = ic.samples
        component = ic.delimiters.component
        term = ic.delimiters.segment
        # an id padded with spaces ("SVC *") is still the segment (the reader warns about it)
        for found in re.finditer(rf"(SVC|PLB) *{re.escape(element)}", text):
            i, key = found.start(), found.group(1)
            j = i - 1
            while j >= 0 and text[j] in " \t":
                j -= 1
            if j >= 0 and text[j] != term:
                continue  # not at the start of a segment
            stop = text.find(term, i)
            parts = text[i : stop if stop >= 0 else len(text)].split(element)
            new = parts[1:2] + parts[6:7] if key == "SVC" else parts[3::2]
            samples.extend(p for p in new if p)
            # Any sample with the declared separator settles it; so do enough samples.
            if len(samples) >= _SAMPLES or any(component in s for s in samples):
                _resolve_component(ic, self.name, self.notes)
                return

    def _region(self, end: re.Pattern[str], term: str) -> tuple[str, bool]:
        """The next stretch of the interchange's text that ends at a terminator, and whether
        it is the interchange's last (then ``pos`` is where what follows it begins)."""
        self.joined, self.longest = self.pos, 0
        while True:
            buf, pos = self.buf, self.pos
            if self.envelope:
                found = end.search(buf, self.search)
                while found is not None and self._segment_start(found.start(), term) < 0:
                    found = end.search(buf, found.start() + 1)
                if found is not None:
                    if found.group(1) is None:  # the next ISA: this interchange has no IEA
                        stop = self._segment_start(found.start(), term) + 1
                        self.pos = self.search = stop
                        return buf[pos:stop], True
                    stop = buf.find(term, found.end()) if term != "\n" else self._line_end(found)
                    if stop >= 0:
                        following = self._same_interchange_at(stop + 1, term)
                        if following >= 0:  # read on: the next interchange joins this run
                            self.longest = max(self.longest, following - self.joined)
                            self.search = self.joined = following
                            self.search += 1
                            self.merged = True
                            continue
                        self.pos = self.search = stop + 1
                        return buf[pos : stop + 1], True
                    self.search = self._segment_start(found.start(), term)
                else:
                    # a match still to come can only begin at the last terminator or after it
                    last = buf.rfind(term, self.search)
                    if term == "\n":
                        last = max(last, buf.rfind("\r", self.search))
                    self.search = last if last >= 0 else len(buf)
            if self.eof:
                self.pos = len(buf)
                return buf[pos:], True
            cut = buf.rfind(term, pos)
            if term == "\n":
                cut = max(cut, buf.rfind("\r", pos))
            if cut >= pos:
                self.pos = cut + 1
                return buf[pos : cut + 1], False
            self._more()

    def _same_interchange_at(self, i: int, term: str) -> int:
        """Where the next interchange begins when it starts at ``buf[i]`` (past blank text)
        and can join the current run: its ISA is laid out as the standard says, with the same
        separators as the current one, whose composites use the component separator it
        declares. Else -1 (also when too little of it has been read to tell)."""
        ic = self.ic
        if not self.merging or ic is None or not ic.declared or ic.delimiters != ic.isa:
            return -1
        found = _START.search(self.buf, i)
        if found is None:
            return -1
        j = found.start()
        window = self.buf[j : j + _ISA_WINDOW]
        if len(window) < _ISA_WINDOW or not window.startswith("ISA"):
            return -1
        if _standard_isa(window) != ic.isa:
            return -1
        if not ic.resolved:
            self._sample(ic, [], _clean_breaks(self.buf[self.pos : i], term))
            if not ic.resolved:
                _resolve_component(ic, self.name, self.notes)
        return j if ic.delimiters == ic.isa else -1

    def _segment_start(self, i: int, term: str) -> int:
        """Where the terminator before ``buf[i]`` is, when only spaces and line breaks stand
        between them (``buf[i]`` starts a segment); else -1."""
        buf = self.buf
        j = i - 1
        if term == "\n":
            while j >= 0 and buf[j] in " \t":
                j -= 1
            return j if j >= 0 and buf[j] in _BREAKS else -1
        while j >= 0 and buf[j] in " \t\r\n":
            j -= 1
        return j if j >= 0 and buf[j] == term else -1

    def _line_end(self, found: re.Match[str]) -> int:
        """Where the IEA found by ``found`` ends, in a file whose terminator is a line break;
        -1 if not read yet."""
        buf = self.buf
        i = found.end()
        cr, lf = buf.find("\r", i), buf.find("\n", i)
        stops = [s for s in (cr, lf) if s >= 0]
        if not stops:
            return -1
        stop = min(stops)
        if buf[stop] == "\r" and stop + 1 < len(buf) and buf[stop + 1] == "\n":
            stop += 1
        return stop

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
