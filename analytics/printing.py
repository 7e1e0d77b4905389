"""Printed pages: the print layout of every report page, and PDFs from headless Chromium.

Layout
    :func:`page_css` is the style sheet a page carries for printing (US letter): body text
    at 10 pt and tables at 9 pt (no shrinking zoom), headings kept with what follows them,
    tables that break between rows with their header row repeated, charts never split, and a
    footer on every printed page with the practice, the period, the report, the date and
    "page N of M". The footer is written with CSS page-margin boxes (``@page { @bottom-left
    {...} }``, Chromium 131 and later), so the page prints the same from the command line and
    from a browser's own Print dialog, and a pack of several reports numbers its pages
    throughout while each part names its own report (named pages, ``page: <name>``).

PDF
    :class:`Printer` drives one headless Chromium (Debian package ``chromium``) through the
    DevTools protocol over a pipe (``--remote-debugging-pipe``, ``Page.printToPDF``): the
    browser starts once per run and prints every page of it, about half a second a page
    instead of a browser start each. Nothing beyond the Python standard library is needed
    to drive it (no Playwright, whose browser download a practice's server may not allow).
    :func:`print_pdf` prints one page; :func:`screenshot` takes a PNG of one.

Examples
--------
>>> footer = Footer("Harbor Massage", "Q4 2025", "Revenue and collections", "2026-01-05")
>>> footer.text
'Harbor Massage · Q4 2025 · Revenue and collections · 2026-01-05'
>>> with Printer() as printer:  # doctest: +SKIP
...     printer.print_pdf("revenue.html", "revenue.pdf")
"""

from __future__ import annotations

import base64
import dataclasses
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from analytics.exceptions import InputError

__all__ = [
    "Footer",
    "page_css",
    "css_string",
    "Printer",
    "find_chromium",
    "missing_chromium",
    "print_pdf",
    "screenshot",
    "run_chromium",
]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio")

#: The print rules every page carries (the footer's text is added by :func:`page_css`).
PRINT_RULES = """
@media print {
  :root { --jp-content-font-size1: 10pt; --jp-ui-font-size1: 10pt; --jp-code-font-size: 9pt; }
  html, body { font-size: 10pt; }
  body { margin: 0; padding: 0; }
  main { padding: 0 !important; }
  .jp-Cell, .jp-Notebook-cell { padding: 0 !important; }
  .jp-RenderedHTMLCommon { font-size: 10pt; padding-right: 0 !important; }
  .jp-RenderedHTMLCommon p, .jp-RenderedHTMLCommon li { font-size: 10pt; line-height: 1.35; }
  .jp-RenderedHTMLCommon h1 { font-size: 18pt; margin-top: 0; }
  .jp-RenderedHTMLCommon h2 { font-size: 14pt; margin-top: 12pt; }
  .jp-RenderedHTMLCommon h3 { font-size: 11.5pt; }
  h1, h2, h3, h4 { break-after: avoid; }
  a.anchor-link { display: none; }
  /* JupyterLab lays outputs out as fixed tables (which squeezes wide tables) and keeps each
     output on one page (which leaves half-empty pages before long tables): undo both */
  .jp-OutputArea-child { display: block !important; break-inside: auto !important; }
  .jp-OutputArea-output { display: block !important; width: auto !important; overflow: visible !important; }
  .jp-RenderedHTMLCommon table { font-size: 9pt; table-layout: auto; max-width: 100%; }
  .jp-RenderedHTMLCommon table thead { display: table-header-group; }
  .jp-RenderedHTMLCommon th, .jp-RenderedHTMLCommon td { padding: 2pt 5pt !important; white-space: normal; }
  .jp-RenderedHTMLCommon th { vertical-align: bottom; }
  .jp-RenderedHTMLCommon tr { break-inside: avoid; }
  .jp-RenderedHTMLCommon caption { break-after: avoid; font-size: 10pt; }
  img, svg { max-width: 100%; height: auto; break-inside: avoid; }
  .jp-OutputArea-child:has(img), .jp-Cell:has(img) { break-inside: avoid !important; }
  .jp-MarkdownCell { break-inside: avoid; break-after: avoid; }
  .jp-Cell:has(.jp-OutputArea-output :is(h1, h2, h3)) { break-after: avoid; }
  .empty-table { break-inside: avoid; }
}
.empty-table .caption { font-weight: bold; margin-bottom: 2pt; }
.empty-table .none { color: #444; font-style: italic; }
"""

_FOOTER_BOX = "font-family: sans-serif; font-size: 9pt; color: #333;"


@dataclasses.dataclass(frozen=True)
class Footer:
    """What the footer of a printed page says: practice, period, report and date."""

    practice: str
    period: str
    report: str
    date: str

    @property
    def text(self) -> str:
        return " · ".join(p for p in (self.practice, self.period, self.report, self.date) if p)


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string (quotes, backslashes, line ends and ``<`` escaped).

    Examples
    --------
    >>> css_string('Anna\\'s "best" <spa>')
    '"Anna\\'s \\\\22 best\\\\22  \\\\3c spa>"'
    """
    out = []
    for ch in str(text):
        if ch in '"\\<' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def margin_boxes(footer: Footer | None) -> str:
    """The ``@bottom-left`` (footer text) and ``@bottom-right`` (page N of M) boxes of a page."""
    left = css_string(footer.text) if footer is not None else '""'
    return (f"@bottom-left {{ content: {left}; {_FOOTER_BOX} }}\n"
            f'  @bottom-right {{ content: "page " counter(page) " of " counter(pages); {_FOOTER_BOX} '
            "white-space: nowrap; }")


def page_css(footer: Footer | None = None, *, named: dict[str, Footer] | None = None) -> str:
    """The ``<style>`` element for printing a page: letter size, print rules and footer.

    ``named`` gives footers for named pages (``page: <name>`` in the body), as a pack uses
    to name each report in its footer while numbering pages throughout.
    """
    rules = [f"@page {{ size: letter; margin: 14mm 13mm 17mm 13mm;\n  {margin_boxes(footer)}\n}}"]
    for name, f in (named or {}).items():
        rules.append(f"@page {name} {{\n  {margin_boxes(f)}\n}}")
    return '<style id="analytics-print">\n' + "\n".join(rules) + PRINT_RULES + "</style>\n"


# ---------------------------------------------------------------------------------------
# Chromium
# ---------------------------------------------------------------------------------------


def find_chromium() -> str | None:
    """Path of a headless-capable Chromium (``$CHROMIUM``, then chromium, chrome), or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    return next((shutil.which(n) for n in CHROMIUM_NAMES if shutil.which(n)), None)


def missing_chromium() -> InputError:
    """The error for a PDF asked for on a machine without Chromium, with how to install it."""
    return InputError(
        "Headless Chromium is needed for PDF pages and was not found. Install the Debian package "
        "(apt-get install chromium; `make chromium` does it) or set CHROMIUM to the browser's path, "
        "or run without --pdf and --pack."
    )


def run_chromium(args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess:
    """Run headless Chromium once with ``args`` and a throw-away profile."""
    exe = find_chromium()
    if exe is None:
        raise missing_chromium()
    with tempfile.TemporaryDirectory(prefix="analytics-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InputError(f"Chromium did not finish within {timeout:.0f} s: {' '.join(cmd)}") from None


# The browser reads DevTools commands on its file descriptor 3 and answers on 4. A small
# Python trampoline puts the pipe ends there (no shell: dash knows only descriptors 0-9).
_TRAMPOLINE = ("import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
               "os.execv(sys.argv[3], sys.argv[3:])")


class Printer:
    """One headless Chromium that prints pages to PDF (DevTools protocol over a pipe).

    Use it as a context manager; the browser starts at the first page printed and is
    closed at the end. Each page is loaded in its own tab, printed with the page's own
    ``@page`` size and margins, and the tab closed.

    Parameters
    ----------
    timeout
        Seconds one page may take to load and print.
    """

    def __init__(self, *, timeout: float = 180) -> None:
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._profile: str | None = None
        self._out: Any = None
        self._in: Any = None
        self._buffer = b""
        self._next_id = 0

    def __enter__(self) -> Printer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the browser ----------------------------------------------------------------------

    def _start(self) -> None:
        exe = find_chromium()
        if exe is None:
            raise missing_chromium()
        self._profile = tempfile.mkdtemp(prefix="analytics-chromium-")
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        # keep the child's ends clear of 3 and 4 so that dup2 cannot close one with the other
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 5)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 5)
        os.close(to_browser_r)
        os.close(from_browser_w)
        flags = [*CHROMIUM_FLAGS, "--remote-debugging-pipe", f"--user-data-dir={self._profile}", "about:blank"]
        log = open(Path(self._profile) / "chromium.log", "wb")  # noqa: SIM115 - closed with the process
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _TRAMPOLINE, str(child_r), str(child_w), exe, *flags],
                pass_fds=(child_r, child_w), stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            os.close(child_r)
            os.close(child_w)
            log.close()
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)

    def close(self) -> None:
        """Close the browser (if it started) and remove its profile."""
        if self._proc is None:
            return
        try:
            self._call("Browser.close", timeout=10)
        except Exception:  # already gone
            pass
        for stream in (self._out, self._in):
            try:
                stream.close()
            except Exception:
                pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return (Path(self._profile) / "chromium.log").read_text(errors="replace").strip()[-500:]
        except (OSError, TypeError):
            return ""

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise InputError(f"Chromium did not answer within {self.timeout:.0f} s while printing.")
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = self._in.read(1 << 20)
            if not chunk:
                raise InputError(f"Chromium stopped while printing: {self._log_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
              until: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Send one command; wait for its answer (and for the event ``until`` of the session)."""
        if self._proc is None:
            self._start()
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            self._out.write(json.dumps(message).encode("utf-8") + b"\0")
        except BrokenPipeError:
            raise InputError(f"Chromium stopped before printing: {self._log_tail()}") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        result: dict[str, Any] | None = None
        seen = until is None
        while result is None or not seen:
            msg = self._message(deadline)
            if msg.get("id") == self._next_id:
                if "error" in msg:
                    raise InputError(f"Chromium refused {method}: {msg['error'].get('message', msg['error'])}")
                result = msg.get("result", {})
            elif until and msg.get("method") == until and msg.get("sessionId") == session:
                seen = True
        return result

    # --- pages ----------------------------------------------------------------------------

    def print_pdf(self, html: str | os.PathLike[str], pdf: str | os.PathLike[str]) -> Path:
        """Print the page ``html`` to ``pdf`` (page size and margins from its ``@page`` rule)."""
        html, pdf = Path(html).resolve(), Path(pdf)
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        try:
            session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            self._call("Page.enable", session=session)
            nav = self._call("Page.navigate", {"url": html.as_uri()}, session=session, until="Page.loadEventFired")
            if nav.get("errorText"):
                raise InputError(f"Chromium could not open {html}: {nav['errorText']}")
            # the outline (PDF bookmarks) follows the page's headings: readers can jump to each
            # section, and the pack reads its contents' page numbers from it
            data = self._call("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True,
                                                  "generateDocumentOutline": True}, session=session)["data"]
        finally:
            try:
                self._call("Target.closeTarget", {"targetId": target})
            except InputError:  # the browser is gone: the error that stopped the page is the one to tell
                pass
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(base64.b64decode(data))
        return pdf


def print_pdf(html: str | os.PathLike[str], pdf: str | os.PathLike[str], *, timeout: float = 180) -> Path:
    """Print one HTML page to PDF with headless Chromium (see :class:`Printer`)."""
    with Printer(timeout=timeout) as printer:
        return printer.print_pdf(html, pdf)


def screenshot(html: str | os.PathLike[str], png: str | os.PathLike[str], *, width: int = 1200, height: int = 1600,
               timeout: float = 120) -> Path:
    """A PNG screenshot of an HTML page in headless Chromium (``--screenshot``)."""
    html, png = Path(html).resolve(), Path(png)
    done = run_chromium([f"--screenshot={png.resolve()}", f"--window-size={width},{height}",
                         "--virtual-time-budget=10000", html.as_uri()], timeout=timeout)
    if not png.exists() or png.stat().st_size == 0:
        raise InputError(f"Chromium made no screenshot of {html} (exit {done.returncode}): "
                         f"{done.stderr.strip()[-500:]}")
    return png


# ---------------------------------------------------------------------------------------
# Reading printed pages back
# ---------------------------------------------------------------------------------------


def pdf_outline(pdf: str | os.PathLike[str]) -> list[tuple[int, str, int]]:
    """The bookmarks of a PDF in document order: ``(level, title, page)``, pages from 1.

    Chromium writes one bookmark per heading of the page (h1 at level 0, the headings
    below it nested), so this is where each section of a printed page starts.
    """
    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    out: list[tuple[int, str, int]] = []

    def walk(items: list, level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
            else:
                out.append((level, _normal(item.title or ""), reader.get_destination_page_number(item) + 1))

    walk(reader.outline, 0)
    return out


def _normal(text: str) -> str:
    import unicodedata

    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()


def pdf_pages(pdf: str | os.PathLike[str]) -> list[str]:
    """The text of each page of a PDF (pypdf), whitespace and ligatures normalised."""
    import unicodedata

    from pypdf import PdfReader

    return [re.sub(r"\s+", " ", unicodedata.normalize("NFKC", page.extract_text() or "")).strip()
            for page in PdfReader(str(pdf)).pages]


def find_pages(pages: Sequence[str], markers: Iterable[str]) -> list[int | None]:
    """For each marker in order, the first page (1-based) at or after the previous find that holds it."""
    import unicodedata

    out: list[int | None] = []
    at = 0
    for marker in markers:
        text = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", marker)).strip()
        hit = next((i for i in range(at, len(pages)) if text and text in pages[i]), None)
        out.append(None if hit is None else hit + 1)
        if hit is not None:
            at = hit
    return out
