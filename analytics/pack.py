"""The client pack: cover, contents, executive summary and every report, as one HTML and one PDF.

``report all --pack`` writes ``pack.html`` and ``pack.pdf`` beside the pages of a run. The
pack is made from what the run published, so it shows nothing a page or a saved table does
not:

* **cover**: the pack's title (``-p title``, default "Billing review"), the practice, the
  period, who it is prepared for (``-p prepared_for``, default the practice) and by
  (``-p prepared_by``), and the run's date;
* **contents**: each part and each report's sections, with their page numbers;
* **executive summary**: the headline figures against the previous period (or the same period
  a year earlier, ``--compare last-year``), from the revenue page's ``headline_comparison``
  table; and the top recommendations of every report ranked by dollars. A report that saves
  a ``recommendations`` table (columns ``recommendation`` or ``action``, ``dollars``, and
  optionally ``source``) supplies its own; otherwise the pack takes the findings in dollars of
  the saved tables: claims to appeal by payer (contracts), denied dollars by reason
  (denials), unbilled services and A/R over 90 days (revenue), each naming its table;
* then each report's page, unchanged, starting on a new page.

Pages are numbered throughout ("page N of M") while each part's footer names its report
(CSS named pages, :mod:`analytics.printing`). The contents' page numbers come from a first
printing: the pack is printed, each part and section is found in the PDF's text, and the pack
is printed again with the numbers in (again until they hold, at most three times).

The summary's tables are saved in ``tables/pack/`` like every other table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics import periods
from analytics._files import atomic_write, csv_text
from analytics.printing import Footer, Printer, find_pages, page_css, pdf_outline, pdf_pages
from analytics.reports import ReportResult, page_footer

__all__ = ["Pack", "build_pack", "recommendations", "summary_figures", "SUMMARY_FIGURES", "DEFAULT_TITLE"]

DEFAULT_TITLE = "Billing review"
#: The headline figures the executive summary shows, in order.
SUMMARY_FIGURES = ("gross_charges", "payer_paid", "patient_responsibility", "denied_amount", "denial_rate",
                   "net_collection_rate", "first_pass_resolution_rate", "paid_per_visit", "unbilled_charges",
                   "ar_balance", "days_in_ar")
_TOP = 8
_MAX_PASSES = 3
_PACK_CSS = """<style id="analytics-pack">
.pack-part { break-before: page; }
.pack-part:first-of-type { break-before: auto; }
.pack-cover { text-align: left; padding-top: 28vh; }
.pack-cover h1 { font-size: 28pt; margin: 0 0 18pt 0; }
.pack-cover .practice { font-size: 16pt; font-weight: bold; margin-bottom: 6pt; }
.pack-cover .period { font-size: 13pt; margin-bottom: 28pt; }
.pack-cover dl { font-size: 11pt; display: grid; grid-template-columns: max-content auto; gap: 4pt 14pt; }
.pack-cover dt { font-weight: bold; }
.pack-cover dd { margin: 0; }
.pack-contents ol { list-style: none; padding: 0; font-size: 11pt; }
.pack-contents li { display: flex; align-items: baseline; margin: 3pt 0; }
.pack-contents li.section { padding-left: 16pt; font-size: 10pt; }
.pack-contents li.part { font-weight: bold; margin-top: 9pt; }
.pack-contents .dots { flex: 1; border-bottom: 1px dotted #999; margin: 0 6pt; }
.pack-contents .page { min-width: 2.5em; text-align: right; }
.pack-contents .missing { color: #8a1c1c; font-size: 10pt; }
.pack-contents a, .pack-contents a:link, .pack-contents a:visited { color: inherit; text-decoration: none; }
.pack-summary table { border-collapse: collapse; font-size: 9.5pt; margin: 6pt 0 14pt 0; }
.pack-summary th, .pack-summary td { padding: 3pt 8pt; border-bottom: 1px solid #ddd; }
.pack-summary th { text-align: right; } .pack-summary th:first-child, .pack-summary th.text { text-align: left; }
.pack-summary td { text-align: right; white-space: nowrap; } .pack-summary td.text { text-align: left; white-space: normal; }
.pack-summary .basis { font-size: 9pt; color: #444; }
</style>
"""


@dataclasses.dataclass(frozen=True)
class Pack:
    """The pack a run wrote (in its run folder) and its number of printed pages."""

    html: Path
    pdf: Path
    pages: int
    tables: tuple[Path, ...] = ()


@dataclasses.dataclass
class _Part:
    key: str  # cover | contents | summary | <report name>
    title: str
    sections: list[str]
    body: str
    page_name: str | None = None
    footer: Footer | None = None


# ---------------------------------------------------------------------------------------
# The figures of the summary, from the run's saved tables
# ---------------------------------------------------------------------------------------


def _table(run_dir: Path, report: str, name: str) -> pd.DataFrame | None:
    path = run_dir / report / "tables" / f"{name}.csv"
    if not path.exists():
        return None
    return pd.read_csv(path, dtype={"cpt": str, "figure": str, "label": str, "unit": str})


def summary_figures(run_dir: str | Path, *, compare: str = "previous") -> pd.DataFrame:
    """The executive summary's headline figures: this period against ``compare``.

    From the revenue page's ``headline_comparison`` table (``headline`` when the run did
    not compare). Columns ``figure, label, unit, value`` and, when compared, ``base``,
    ``change``, ``change_pct`` and ``against`` (the period's words).
    """
    run_dir = Path(run_dir)
    kind = {"previous": "previous", "last-year": "last_year"}.get(compare)
    table = _table(run_dir, "revenue", "headline_comparison")
    if table is None or kind is None or kind not in table.columns:
        table = _table(run_dir, "revenue", "headline")
        kind = None
    if table is None:
        return pd.DataFrame(columns=["figure", "label", "unit", "value"])
    rows = table.set_index("figure").reindex([f for f in SUMMARY_FIGURES if f in set(table["figure"])])
    out = rows[["label", "unit", "value"]].reset_index()
    if kind is not None:
        out["base"] = rows[kind].to_numpy(dtype=float)
        out["change"] = rows[f"{kind}_change"].to_numpy(dtype=float)
        out["change_pct"] = rows[f"{kind}_change_pct"].to_numpy(dtype=float)
        out["against"] = "the previous period" if kind == "previous" else "the same period a year earlier"
    return out


def _own_recommendations(table: pd.DataFrame, report: str) -> pd.DataFrame:
    text = next((c for c in ("recommendation", "action", "text") if c in table.columns), None)
    dollars = next((c for c in ("dollars", "amount", "value") if c in table.columns), None)
    if text is None or dollars is None:
        return pd.DataFrame()
    source = table["source"].astype(str) if "source" in table.columns else pd.Series(f"{report}: recommendations",
                                                                                     index=table.index)
    return pd.DataFrame({"report": report, "recommendation": table[text].astype(str),
                         "dollars": pd.to_numeric(table[dollars], errors="coerce"), "source": source})


def _findings(run_dir: Path, report: str) -> pd.DataFrame:
    """Findings in dollars from a report's saved tables, for a report without recommendations."""
    rows: list[tuple[str, float, str]] = []
    if report == "contracts":
        claims = _table(run_dir, report, "claims_to_appeal")
        if claims is not None and len(claims):
            by = claims.groupby("payer", sort=True).agg(n=("recoverable", "size"), dollars=("recoverable", "sum"))
            rows += [(f"Appeal the {int(r.n):,} claim(s) {payer} paid below its contract", float(r.dollars),
                      "contracts: Claims to appeal") for payer, r in zip(by.index, by.itertuples(), strict=True)]
    elif report == "denials":
        reasons = _table(run_dir, report, "denial_reasons")
        if reasons is not None and len(reasons):
            top = reasons.nlargest(3, "denied_amount")
            rows += [(f"Work the denials for {reason}: {int(n):,} lines denied in the period", float(d),
                      "denials: Why lines are denied")
                     for reason, n, d in zip(top["reason"], top["lines"], top["denied_amount"], strict=True)]
    elif report == "revenue":
        head = _table(run_dir, report, "headline")
        if head is not None:
            value = dict(zip(head["figure"], head["value"], strict=True))
            if value.get("unbilled_charges", 0) > 0:
                rows.append(("Bill the services of the period not yet billed", float(value["unbilled_charges"]),
                             "revenue: Summary (not yet billed)"))
            if value.get("ar_over_90", 0) > 0:
                rows.append(("Follow up the insurance claims open for over 90 days", float(value["ar_over_90"]),
                             "revenue: Summary (insurance A/R over 90 days)"))
    return pd.DataFrame({"report": report, "recommendation": [r[0] for r in rows],
                         "dollars": [r[1] for r in rows], "source": [r[2] for r in rows]})


def recommendations(run_dir: str | Path, reports: Sequence[str], *, top: int = _TOP) -> pd.DataFrame:
    """The top recommendations of the ``reports`` of a run, largest dollars first.

    Columns ``rank, report, recommendation, dollars, source`` (the page and table each comes
    from). Ties keep report order.
    """
    run_dir = Path(run_dir)
    found = []
    for report in reports:
        own = _table(run_dir, report, "recommendations")
        # a report that saves recommendations speaks for itself, even when it has none
        found.append(_own_recommendations(own, report) if own is not None else _findings(run_dir, report))
    found = [f for f in found if len(f)]
    cols = ["rank", "report", "recommendation", "dollars", "source"]
    if not found:
        return pd.DataFrame(columns=cols)
    out = pd.concat(found, ignore_index=True)
    out = out[np.isfinite(out["dollars"].to_numpy(dtype=float))]
    out = out.sort_values("dollars", ascending=False, kind="stable").head(top).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out[cols]


# ---------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------

_PRINT_STYLE = re.compile(r'<style id="analytics-print">.*?</style>\s*', re.DOTALL)


def _page_parts(page: str) -> tuple[str, str, str]:
    """(head without its title and print style, body tag, main content) of a report page."""
    head = page[page.index("<head>") + len("<head>"):page.index("</head>")]
    head = _PRINT_STYLE.sub("", re.sub(r"<title>.*?</title>", "", head, flags=re.DOTALL))
    body_tag = re.search(r"<body[^>]*>", page)
    main = page[page.index("<main>") + len("<main>"):page.rindex("</main>")]
    return head, body_tag.group(0) if body_tag else "<body>", main


def _all_headings(body: str) -> list[tuple[int, str]]:
    """Every heading of a page in order, ``(level, text)``: what the printed PDF's bookmarks hold."""
    out = []
    for level, inner in re.findall(r"<h([1-6])[^>]*>(.*?)</h\1>", body, flags=re.DOTALL):
        text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", inner)).replace("¶", "")).strip()
        if text:
            out.append((int(level), text))
    return out


def _headings(main: str) -> list[str]:
    """The text of the h2 headings of a page, in order (the contents' sections)."""
    return [text for level, text in _all_headings(main) if level == 2]


def _money(v: float) -> str:
    if not np.isfinite(v):
        return "-"
    return f"-${abs(v):,.0f}" if v < 0 else f"${v:,.0f}"


def _value(v: float, unit: str, *, change: bool = False) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    sign = ("+" if v > 0 else "-" if v < 0 else "") if change else ("-" if v < 0 else "")
    a = abs(float(v))
    if unit == "dollars":
        return f"{sign}${a:,.2f}" if a < 1000 and not a.is_integer() else f"{sign}${a:,.0f}"
    if unit == "percent":
        return f"{sign}{100 * a:.1f}" + (" pts" if change else "%")
    if unit == "days":
        return f"{sign}{a:.1f} days"
    return f"{sign}{a:,.0f}"


def _summary_html(figures: pd.DataFrame, recs: pd.DataFrame, failed: Sequence[str]) -> str:
    e = html.escape
    out = ['<div class="jp-RenderedHTMLCommon pack-summary"><h1>Executive summary</h1>']
    if len(figures):
        compared = "base" in figures.columns
        against = figures["against"].iloc[0] if compared else ""
        out.append(f"<h2>Headline figures{' against ' + e(against) if compared else ''}</h2>")
        head = "<th>Figure</th><th>This period</th>" + (
            "<th>Before</th><th>Change</th><th>Change %</th>" if compared else "")
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
        for row in figures.itertuples(index=False):
            cells = [f'<td class="text">{e(str(row.label))}</td>', f"<td>{_value(row.value, row.unit)}</td>"]
            if compared:
                pct = "-" if not np.isfinite(row.change_pct) else f"{100 * row.change_pct:+.1f}%"
                cells += [f"<td>{_value(row.base, row.unit)}</td>",
                          f"<td>{_value(row.change, row.unit, change=True)}</td>", f"<td>{pct}</td>"]
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        if compared and not np.isfinite(figures["base"].to_numpy(dtype=float)).any():
            out.append(f'<p class="basis">The data hold no services for {e(against)}: nothing to compare.</p>')
    out.append("<h2>Top recommendations, by dollars</h2>")
    if len(recs):
        out.append('<table><thead><tr><th class="text">#</th><th class="text">Recommendation</th><th>Dollars</th>'
                   '<th class="text">From</th></tr></thead><tbody>')
        for r in recs.itertuples(index=False):
            out.append(f'<tr><td>{r.rank}</td><td class="text">{e(r.recommendation)}</td>'
                       f'<td>{_money(float(r.dollars))}</td><td class="text">{e(r.source)}</td></tr>')
        out.append("</tbody></table>")
    else:
        out.append('<p class="none">none</p>')
    if failed:
        out.append("<h2>Not in this pack</h2><ul>")
        out += [f"<li>{e(name)}: its page failed in this run (see the run's manifest)</li>" for name in failed]
        out.append("</ul>")
    out.append("</div>")
    return "\n".join(out)


def _cover_html(title: str, practice: str, period: str, prepared_for: str, prepared_by: str, date: str) -> str:
    e = html.escape
    rows = [("Prepared for", prepared_for)] + ([("Prepared by", prepared_by)] if prepared_by else []) + [
        ("Date", date)]
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows)
    return (f'<div class="jp-RenderedHTMLCommon"><h1>{e(title)}</h1><div class="practice">{e(practice)}</div>'
            f'<div class="period">{e(period)}</div><dl>{items}</dl></div>')


def _contents_html(parts: Sequence[_Part], numbers: Mapping[str, int | None], failed: Sequence[str]) -> str:
    e = html.escape

    def entry(cls: str, text: str, key: str) -> str:
        n = numbers.get(key)
        name = f'<a href="#part-{e(key)}">{e(text)}</a>' if cls == "part" else e(text)
        return (f'<li class="{cls}"><span class="name">{name}</span><span class="dots"></span>'
                f'<span class="page">{"" if n is None else n}</span></li>')

    items = []
    for p in parts:
        if p.key in ("cover", "contents"):
            continue
        items.append(entry("part", p.title, p.key))
        items += [entry("section", s, f"{p.key}/{i}") for i, s in enumerate(p.sections)]
    items += [f'<li class="missing">{e(n)}: not included, its page failed in this run</li>' for n in failed]
    return f'<div class="jp-RenderedHTMLCommon"><h1>Contents</h1><ol>{"".join(items)}</ol></div>'


def _assemble(head: str, body_tag: str, title: str, parts: Sequence[_Part], default: Footer) -> str:
    named = {p.page_name: p.footer for p in parts if p.page_name and p.footer is not None}
    sections = []
    for p in parts:
        style = f' style="page: {p.page_name}"' if p.page_name else ""
        sections.append(f'<section class="pack-part pack-{p.key if p.key in ("cover", "contents", "summary") else "report"}"'
                        f' id="part-{p.key}"{style}>\n{p.body}\n</section>')
    return ("<!DOCTYPE html>\n<html>\n<head>\n" f"<title>{html.escape(title)}</title>\n{head}\n"
            f"{page_css(default, named=named)}{_PACK_CSS}</head>\n{body_tag}\n<main>\n" + "\n".join(sections)
            + "\n</main>\n</body>\n</html>\n")


# ---------------------------------------------------------------------------------------
# The pack
# ---------------------------------------------------------------------------------------


def _page_numbers(pdf: Path, parts: Sequence[_Part]) -> tuple[dict[str, int | None], int]:
    """Where each part and each section starts in the printed pack, and its number of pages.

    Read from the PDF's bookmarks (one per heading, in order); a part without a heading is
    found by its footer in the pages' text instead.
    """
    outline = pdf_outline(pdf)
    total = _page_count(pdf)
    numbers: dict[str, int | None] = {}
    at = 0
    for p in parts:
        first: int | None = None
        section = 0
        for level, text in _all_headings(p.body):
            hit = next((i for i in range(at, len(outline)) if outline[i][1] == text), None)
            if hit is not None:
                at = hit + 1
                first = first if first is not None else outline[hit][2]
            if level == 2:
                if p.key not in ("cover", "contents") and section < len(p.sections):
                    numbers[f"{p.key}/{section}"] = None if hit is None else outline[hit][2]
                section += 1
        if p.key not in ("cover", "contents"):
            numbers[p.key] = first
    missing = [p for p in parts if p.key not in ("cover", "contents") and numbers.get(p.key) is None]
    if missing:
        _by_footer(pdf, missing, numbers)
    return numbers, total


def _page_count(pdf: Path) -> int:
    from pypdf import PdfReader

    return len(PdfReader(str(pdf)).pages)


def _by_footer(pdf: Path, parts: Sequence[_Part], numbers: dict[str, int | None]) -> None:
    """The start (and sections) of parts without headings, found in the pages' text."""
    pages = pdf_pages(pdf)
    for p in parts:
        if p.key in ("cover", "contents"):
            continue
        # each part's footer names it, and the contents page lists titles but no footer
        start = find_pages(pages, [f" · {p.footer.report} · " if p.footer is not None else p.title])[0]
        numbers[p.key] = start
        if start is None:
            continue
        found = find_pages(pages[start - 1:], p.sections)
        for i, hit in enumerate(found):
            numbers[f"{p.key}/{i}"] = None if hit is None else hit + start - 1


def _expected_numbers(printer: Printer, run_dir: Path, head: str, body_tag: str, title: str, default: Footer,
                      cover: _Part, summary: _Part, reports: Sequence[_Part], pdfs: Sequence[Path],
                      failed: Sequence[str]) -> dict[str, int | None]:
    """The contents' page numbers from the reports' own PDFs and a printing of the front pages.

    Each report starts on a new page and prints in the pack as on its own, so its pages follow
    the cover, contents and summary; the pack is then printed once (and again only if a
    number turns out otherwise).
    """
    front_html, front_pdf = run_dir / "pack-front.html", run_dir / "pack-front.pdf"
    contents = _Part("contents", "Contents", [], _contents_html([summary, *reports], {}, failed))
    atomic_write(front_html, _assemble(head, body_tag, title, [cover, contents, summary], default))
    printer.print_pdf(front_html, front_pdf)
    numbers, offset = _page_numbers(front_pdf, [cover, contents, summary])
    for part, pdf in zip(reports, pdfs, strict=True):
        own, pages = _page_numbers(pdf, [part])
        numbers.update({k: None if v is None else v + offset for k, v in own.items()})
        offset += pages
    front_html.unlink(missing_ok=True)
    front_pdf.unlink(missing_ok=True)
    return numbers


def build_pack(results: Sequence[ReportResult], run_dir: str | Path, *, cover: Mapping[str, Any],
               date: dt.date, failed: Sequence[str] = (), printer: Printer | None = None,
               compare: str = "previous") -> Pack:
    """Write ``pack.html`` and ``pack.pdf`` into ``run_dir`` from the run's report pages.

    Parameters
    ----------
    results
        The reports whose pages go in, in order (their pages are ``run_dir/<name>.html``).
    cover
        ``title``, ``prepared_for`` and ``prepared_by`` (each optional).
    date
        The run's date (cover and footers).
    failed
        Reports of the run whose pages failed: the contents name them.
    printer
        The run's browser (a new one when None).
    compare
        The period the summary's figures are set against (``previous``, ``last-year``, ``none``).
    """
    run_dir = Path(run_dir)
    if not results:
        raise ValueError("no report page to put in the pack: every report of the run failed")
    params = results[0].parameters
    title = str(cover.get("title") or DEFAULT_TITLE)
    practice = str(params.get("practice_name") or "")
    start, end = params.get("period_start"), params.get("period_end")
    period = (periods.Period.of(start, end).describe() if start and end else "")
    day = date.isoformat()
    default = Footer(practice=practice, period=period, report=title, date=day)
    head = body_tag = ""
    reports: list[_Part] = []
    for r in results:
        page = (run_dir / f"{r.name}.html").read_text(encoding="utf-8")
        h, b, main = _page_parts(page)
        head, body_tag = (head or h), (body_tag or b)
        reports.append(_Part(key=r.name, title=r.title or r.name, sections=_headings(main), body=main,
                             page_name=f"report-{r.name}", footer=page_footer(r.parameters, r.title or r.name, date)))
    figures = summary_figures(run_dir, compare=compare)
    recs = recommendations(run_dir, [r.name for r in results])
    tables = [atomic_write(run_dir / "pack" / "tables" / "summary_figures.csv",
                           csv_text(figures)),
              atomic_write(run_dir / "pack" / "tables" / "recommendations.csv",
                           csv_text(recs))]
    if start and end:
        period_text = f"{period} (services {start} to {end})" if period != f"{start} to {end}" else f"Services {period}"
    else:
        period_text = period
    summary_html = _summary_html(figures, recs, failed)
    summary = _Part("summary", "Executive summary", _headings(summary_html), summary_html, page_name="summary",
                    footer=Footer(practice=practice, period=period, report="Executive summary", date=day))
    cover_part = _Part("cover", title, [], _cover_html(title, practice or "The practice", period_text,
                                                      str(cover.get("prepared_for") or practice or "The practice"),
                                                      str(cover.get("prepared_by") or ""), day))
    numbers: dict[str, int | None] = {}
    html_path, pdf_path = run_dir / "pack.html", run_dir / "pack.pdf"
    own = printer is None
    printer = printer or Printer()
    try:
        if all(r.pdf is not None and Path(r.pdf).exists() for r in results):
            numbers = _expected_numbers(printer, run_dir, head, body_tag, title, default, cover_part, summary,
                                        reports, [Path(r.pdf) for r in results], failed)
        for _ in range(_MAX_PASSES):
            contents = _Part("contents", "Contents", [], _contents_html([summary, *reports], numbers, failed))
            parts = [cover_part, contents, summary, *reports]
            atomic_write(html_path, _assemble(head, body_tag, title, parts, default))
            printer.print_pdf(html_path, pdf_path)
            found, total = _page_numbers(pdf_path, parts)
            if found == numbers:
                break
            numbers = found
    finally:
        if own:
            printer.close()
    return Pack(html=html_path, pdf=pdf_path, pages=total, tables=tuple(tables))
