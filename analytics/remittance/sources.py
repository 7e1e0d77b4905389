"""Sources of an 835: a file, its bytes or its text, handed out piece by piece.

A file is never loaded whole: it is read in binary chunks and decoded as the whole file would
be, so the memory a read needs grows with the chunk size, not with the file.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import io
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from analytics.exceptions import X12Error

#: Size of each binary read, and so roughly of each part :func:`iter_835` yields. The memory a
#: read needs grows with this, not with the file.
CHUNK_BYTES = 32 * 2**20

# The UTF-8 check of a file that is not ASCII reads at least this much at a time.
_CHECK_BYTES = 2**20


class TextPieces:
    """An 835 already in memory as text, handed out ``chunk`` characters at a time."""

    def __init__(self, text: str, chunk: int, pos: int = 0) -> None:
        self.text = text
        self.chunk = chunk
        self.pos = pos

    @property
    def exhausted(self) -> bool:
        """Everything has been handed out."""
        return self.pos >= len(self.text)

    def read(self) -> str:
        piece = self.text[self.pos : self.pos + self.chunk]
        self.pos += len(piece)
        return piece

    def fork(self) -> TextPieces:
        return TextPieces(self.text, self.chunk, self.pos)

    def close(self) -> None:
        pass


class BytePieces:
    """A file (or bytes) read ``chunk`` bytes at a time, decoded as the whole file would be.

    The rule for the whole file is UTF-8, or Latin-1 when any of it is not UTF-8: X12 uses the
    basic and extended character sets, and Latin-1 never fails, so a binary file is reported as
    "not X12" rather than as a decoding crash. While the bytes are ASCII both decode alike; at
    the first chunk that is not, the rest of the file is checked once to choose.
    """

    def __init__(
        self,
        opener: Callable[[], BinaryIO],
        chunk: int,
        offset: int = 0,
        encoding: str | None = None,
        state: tuple[bytes, int] | None = None,
    ) -> None:
        self.opener = opener
        self.chunk = chunk
        self.file = opener()
        if offset:
            self.file.seek(offset)
        self.encoding = encoding
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        if state is not None:
            self.decoder.setstate(state)
        self.exhausted = False  # a short read: everything has been handed out
        # The size of a regular file, so that a read asks for no more than is left (plus one
        # byte, to see the end): a small file is read without a chunk-sized buffer.
        self.size: int | None = None
        with contextlib.suppress(OSError, AttributeError):
            status = os.fstat(self.file.fileno())
            if stat.S_ISREG(status.st_mode):
                self.size = status.st_size

    def read(self) -> str:
        while True:
            start = self.file.tell()
            want = self.chunk if self.size is None else min(self.chunk, self.size - start + 1)
            data = self.file.read(max(want, 1))
            self.exhausted = len(data) < max(want, 1)
            if self.encoding is None:
                if data.isascii():
                    return data.decode("ascii")
                self.encoding = "utf-8" if self._utf8_from(start) else "latin-1"
            if self.encoding == "latin-1":
                return data.decode("latin-1")
            text = self.decoder.decode(data, final=not data)
            # a chunk that ends inside a multi-byte character may decode to nothing yet
            if text or not data:
                return text

    def _utf8_from(self, offset: int) -> bool:
        decoder = codecs.getincrementaldecoder("utf-8")()
        with self.opener() as file:
            file.seek(offset)
            try:
                while data := file.read(max(self.chunk, _CHECK_BYTES)):
                    decoder.decode(data)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return False
        return True

    def fork(self) -> BytePieces:
        return BytePieces(
            self.opener, self.chunk, self.file.tell(), self.encoding, self.decoder.getstate()
        )

    def close(self) -> None:
        self.file.close()


Pieces = TextPieces | BytePieces


def open_source(
    source: str | os.PathLike[str] | bytes, source_name: str | None, chunk: int
) -> tuple[Pieces, str]:
    """The pieces and the name of a path, raw bytes or 835 text."""
    if isinstance(source, bytes):
        return BytePieces(functools.partial(io.BytesIO, source), chunk), source_name or "<bytes>"
    # A string is the 835 itself when it looks like X12, is blank, or comes with a name for
    # it; otherwise it is a path.
    if isinstance(source, str) and (
        source_name is not None or not source.strip() or _looks_like_x12(source)
    ):
        return TextPieces(source, chunk), source_name or "<text>"
    path = Path(source)
    try:
        pieces = BytePieces(functools.partial(open, path, "rb"), chunk)
    except FileNotFoundError:
        raise X12Error(
            f"{path}: file not found. Check the path (directories go to read_835_many).",
            where=str(path),
        ) from None
    except IsADirectoryError:
        raise X12Error(
            f"{path}: is a directory. Use read_835_many to read every file in a directory.",
            where=str(path),
        ) from None
    return pieces, source_name or path.name


_X12_START = re.compile(r"[\ufeff\s]*(ISA|ST)[^A-Za-z0-9 _.\-/\\]")


def _looks_like_x12(text: str) -> bool:
    # A path never holds a line break, and a one-line 835 starts with ISA or ST and a separator.
    return "\n" in text or "\r" in text or _X12_START.match(text) is not None
