"""Progress of long commands on a terminal: stage, count, rate and time left (tqdm).

The one place that draws progress. Commands (:mod:`analytics.cli`) open a :class:`Progress`
and hand it, as a plain callback, to the domain function doing the work; the domain function
only calls ``progress(n)`` (``n`` more items done) or ``progress(0, stage="...")`` (a new
stage) and never prints. A bar looks like::

    evaluate: evaluating:  45%|████▌     | 4.50M/10.0M lines [00:13<00:16, 338k lines/s]

It draws on standard error only when that is a terminal: in cron, CI, a pipe or a log file
nothing is written, so their output stays the command's own lines. ``ANALYTICS_PROGRESS=0``
turns the bars off on a terminal too; ``ANALYTICS_PROGRESS=1`` draws them on any stream.
A bar is cleared when its work ends, leaving the command's summary lines; lines the command
prints while a bar is up appear above it.

Examples
--------
>>> import io
>>> log = io.StringIO()  # not a terminal: silent
>>> with Progress("reading 835s", total=3, unit="files", stream=log) as bar:
...     for _ in range(3):
...         bar(1)
>>> log.getvalue()
''
>>> [n for n in track(range(3), "counting", stream=log)]
[0, 1, 2]
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import IO, Any, TypeVar

__all__ = ["PROGRESS_ENV", "Progress", "enabled", "track"]

#: ``0`` hides the bars, ``1`` draws them even when standard error is not a terminal.
PROGRESS_ENV = "ANALYTICS_PROGRESS"
_T = TypeVar("_T")


def enabled(stream: IO[str] | None = None) -> bool:
    """Whether bars are drawn on ``stream`` (default standard error).

    True on a terminal, unless ``ANALYTICS_PROGRESS=0``; ``ANALYTICS_PROGRESS=1`` forces them on.

    Examples
    --------
    >>> import io
    >>> enabled(io.StringIO())
    False
    """
    setting = os.environ.get(PROGRESS_ENV, "").strip()
    if setting == "0":
        return False
    if setting == "1":
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or unusual streams
        return False


class Progress:
    """A progress bar for one piece of long work, usable as a callback.

    Parameters
    ----------
    title
        The command, or the work, in the user's words ("evaluate", "remit: reading 835s").
    total
        Items in all (lines, files, pages); ``None`` when unknown (count and rate only).
    unit
        What an item is ("lines", "files", "pages").
    stage
        The first stage ("reading lines"); shown after the title.
    scale
        Counts in thousands and millions (``4.50M/10.0M lines``): for lines, not for files.
    stream
        Where to draw (default standard error); nothing is drawn unless :func:`enabled`.
    heartbeat
        Seconds between redraws while no item completes (a stage that runs long in one call
        still shows its elapsed time); ``0`` for none.

    Calling it, ``bar(n)``, counts ``n`` more items done; ``bar(0, stage="writing")`` names a
    new stage (``total=`` starts a new count). A domain function takes it as a
    ``progress`` callback and never needs to know whether anything is drawn.
    """

    def __init__(
        self,
        title: str,
        total: int | None = None,
        unit: str = "items",
        *,
        stage: str | None = None,
        scale: bool = False,
        stream: IO[str] | None = None,
        heartbeat: float = 1.0,
    ):
        self.title = title
        self.stream = sys.stderr if stream is None else stream
        self.active = enabled(self.stream)
        self._bar: Any = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        if not self.active:
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=total,
            desc=self._describe(stage),
            unit=f" {unit}" if unit else "it",
            unit_scale=scale,
            file=self.stream,
            leave=False,
            dynamic_ncols=True,
            mininterval=0.2,
            disable=False,
        )
        # what the command prints meanwhile (lines, warnings) goes above the bar
        self._stdout, self._stderr = sys.stdout, sys.stderr
        if _same_terminal(self._stdout, self.stream):
            sys.stdout = _LinesAbove(self._bar, self._stdout)
        if self._stderr is self.stream and _same_terminal(self._stderr, self.stream):
            sys.stderr = _LinesAbove(self._bar, self._stderr)
        if heartbeat > 0:
            self._beat = threading.Thread(target=self._heartbeat, args=(heartbeat,), daemon=True)
            self._beat.start()

    def _heartbeat(self, every: float) -> None:
        while not self._stop.wait(every):
            bar = self._bar
            if bar is not None:
                bar.refresh()

    def _describe(self, stage: str | None) -> str:
        return f"{self.title}: {stage}" if stage else self.title

    def __call__(self, n: int = 1, *, stage: str | None = None, total: int | None = None) -> None:
        bar = self._bar
        if bar is None:
            return
        if stage is not None:
            bar.set_description_str(self._describe(stage), refresh=False)
        if total is not None:
            bar.reset(total=total)
        if n:
            bar.update(n)
        if stage is not None or total is not None:
            bar.refresh()  # a new stage shows at once, however short

    def close(self) -> None:
        """Clear the bar (the command prints its summary next)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=2)
        if self._bar is not None:
            for name, original in (("stdout", self._stdout), ("stderr", self._stderr)):
                current = getattr(sys, name)
                if isinstance(current, _LinesAbove) and current.bar is self._bar:
                    current.drain()
                    setattr(sys, name, original)
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _same_terminal(a: IO[str], b: IO[str]) -> bool:
    """Both streams are terminals (prints would land on the bar's line)."""
    try:
        return bool(a.isatty() and b.isatty())
    except (AttributeError, ValueError):
        return False


class _LinesAbove:
    """Standard output while a bar is drawn: whole lines are written above the bar."""

    def __init__(self, bar: Any, out: IO[str]):
        self.bar, self.out, self.pending = bar, out, ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            lines, self.pending = self.pending.rsplit("\n", 1)
            with self.bar.get_lock():
                self.bar.clear(nolock=True)
                self.out.write(lines + "\n")
                self.out.flush()
                self.bar.refresh(nolock=True)
        return len(text)

    def flush(self) -> None:
        """A partial line waits for its end (the bar would overwrite it)."""
        self.out.flush()

    def drain(self) -> None:
        """Write what is left (the bar is being closed)."""
        if self.pending:
            with self.bar.get_lock():
                self.bar.clear(nolock=True)
                self.out.write(self.pending)
                self.out.flush()
            self.pending = ""

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


def track(
    items: Iterable[_T],
    title: str,
    *,
    total: int | None = None,
    unit: str = "items",
    stream: IO[str] | None = None,
) -> Iterator[_T]:
    """Yield ``items``, counting each on a :class:`Progress` bar (``total``: ``len(items)``
    when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(title, total=total, unit=unit, stream=stream) as bar:
        for item in items:
            yield item
            bar(1)
