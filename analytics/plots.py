"""Charts and tables for the report pages, legible on screen and in print.

Every chart function takes the DataFrame a :mod:`analytics.kpis` function returns and gives
back a :class:`matplotlib.figure.Figure` (built without pyplot, so a notebook shows it once,
and a script can ``fig.savefig(...)``). Colours are the Okabe-Ito palette, which stays
distinct for colour-blind readers; sequences (A/R age) run light to dark so they survive a
grey-scale printer. Text is at least 9 pt at the default width of 8 inches.

:func:`table` turns a KPI frame into a styled table with dollars, percents and headings in
words.

Every chart function and :func:`table` take ``name=``: when the report runner has set
``ANALYTICS_OUTPUT_DIR`` (it does so in each report's kernel), the chart is also written to
``figures/<name>.png`` (at least 1,800 pixels wide, for slides) and ``figures/<name>.svg``
(scalable), and the table, whole and unformatted, to ``tables/<name>.csv`` in that folder,
byte for byte the same for the same inputs. Outside a report run nothing is written
(:func:`save_table` and :func:`save_figure` do the writing and can be called directly).
A table without rows shows its caption and one line saying "none".

Examples
--------
>>> from analytics import kpis, plots
>>> h = kpis.load_history("data/sample")  # doctest: +SKIP
>>> plots.ar_aging(kpis.ar_aging(h)).savefig("aging.png")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import html as _html
import math
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from analytics._files import atomic_write, csv_text

__all__ = [
    "PALETTE",
    "monthly_charges_collections",
    "ar_aging",
    "denial_rates",
    "denial_pareto",
    "underpayments_over_time",
    "scenario_comparison",
    "percent_of_medicare",
    "monthly_trend",
    "table",
    "comparison_table",
    "figures_table",
    "shorten",
    "reasons_in_short",
    "EmptyTable",
    "MONEY_COLUMNS",
    "CENTS_COLUMNS",
    "PERCENT_COLUMNS",
    "PNG_WIDTH_PX",
    "save_table",
    "save_figure",
    "OUTPUT_ENV",
]

#: Environment variable naming the folder a report run saves its tables and charts into.
OUTPUT_ENV = "ANALYTICS_OUTPUT_DIR"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")

#: Okabe-Ito colours (blue, orange, green, vermillion, purple, sky blue, yellow, black).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
_GREY = "#9a9a9a"
_AGING = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08306b")  # light to dark
_WIDTH = 8.0
_DPI = 110
#: Text columns with values longer than this many characters are given room on the page.
_LONG_TEXT = 40
#: Saved charts are at least this many pixels wide (a full-width slide).
PNG_WIDTH_PX = 1800
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
}


def _output_dir(kind: str, folder: str | os.PathLike[str] | None) -> Path | None:
    base = folder if folder is not None else os.environ.get(OUTPUT_ENV)
    return None if not base else Path(base) / kind


def _checked(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"Output name {name!r} must be lower-case letters, digits, '-' or '_' (e.g. 'by_payer').")
    return name


def save_table(frame: pd.DataFrame, name: str, folder: str | os.PathLike[str] | None = None) -> Path | None:
    """Write ``frame`` to ``<folder>/tables/<name>.csv`` (folder: ``$ANALYTICS_OUTPUT_DIR``).

    The CSV holds every row and the raw values (no dollar signs or rounding), with the
    frame's index when it is named, ``\\n`` line ends and UTF-8, so the same frame always
    gives the same bytes. A text cell that a spreadsheet would run as a formula (first
    character ``=``, ``+``, ``-``, ``@``, tab or CR) gets a leading ``'``
    (:func:`analytics._files.neutralise_cells`); numbers stay numbers. Returns the path, or
    None when no folder is set.
    """
    out = _output_dir("tables", folder)
    if out is None:
        return None
    keep_index = any(n is not None for n in frame.index.names)
    # cells a spreadsheet would run as formulas (=, +, -, @ first) are written as text
    text = csv_text(frame, index=keep_index, lineterminator="\n", date_format="%Y-%m-%d")
    return atomic_write(out / f"{_checked(name)}.csv", text.encode("utf-8"))


def save_figure(fig: Figure, name: str, folder: str | os.PathLike[str] | None = None) -> Path | None:
    """Write ``fig`` to ``<folder>/figures/<name>.png`` and ``.svg`` (folder: ``$ANALYTICS_OUTPUT_DIR``).

    The PNG is at least :data:`PNG_WIDTH_PX` pixels wide (the resolution is raised to fit
    the figure's width); the SVG scales to any size. Neither carries software or date
    metadata, and the SVG's element ids are drawn from a fixed salt, so the same chart gives
    the same bytes. The layout solved for the PNG is kept (the figure's layout engine is set
    to none), so the SVG and the page's image are not laid out again: draw everything before
    saving. Returns the PNG's path, or None when no folder is set.
    """
    out = _output_dir("figures", folder)
    if out is None:
        return None
    import io

    stem = _checked(name)
    dpi = max(float(fig.dpi), float(math.ceil(PNG_WIDTH_PX / float(fig.get_figwidth()))))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    png = atomic_write(out / f"{stem}.png", buf.getvalue())
    # the layout is solved in figure units, whatever the resolution: keep the one just solved
    # for the SVG and the page's own image instead of solving it again at each drawing
    fig.set_layout_engine("none")
    svg = io.BytesIO()
    with mpl.rc_context({"svg.hashsalt": f"analytics-{stem}", "svg.fonttype": "path"}):
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    atomic_write(out / f"{stem}.svg", svg.getvalue())
    return png


def _styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Draw the whole chart under the house style (rc settings are read as artists are made).

    The wrapped function also takes ``name=``: the chart is saved with :func:`save_figure`.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, name: str | None = None, **kwargs: Any) -> Figure:
        with mpl.rc_context(_STYLE):
            fig = func(*args, **kwargs)
        if name is not None:
            save_figure(fig, name)
        return fig

    return wrapper


def _figure(height: float = 4.2, width: float = _WIDTH) -> Figure:
    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def _axes(fig: Figure, *args: Any, **kwargs: Any):
    return fig.subplots(*args, **kwargs)


def _dollars(x: float, _pos: Any = None) -> str:
    a = abs(x)
    sign = "-" if x < 0 else ""
    if a >= 1e6:
        text = f"{a / 1e6:.1f}M"
    elif a >= 1e3:
        text = f"{a / 1e3:.1f}k"
    else:
        return f"{sign}${a:.0f}"
    return sign + "$" + text.replace(".0", "")


@_styled
def _no_data(title: str, message: str = "No data for this period.") -> Figure:
    fig = _figure(height=1.6)
    ax = _axes(fig)
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.45, message, ha="center", va="center", fontsize=11, color="#555555", transform=ax.transAxes)
    return fig


def _wrap(labels: Iterable[Any], width: int = 16) -> list[str]:
    return ["\n".join(textwrap.wrap(str(s), width)) or str(s) for s in labels]


@_styled
def monthly_charges_collections(monthly: pd.DataFrame, *, title: str = "Charges and collections by month") -> Figure:
    """Charges by month of service beside payer payments received each month.

    ``monthly`` is :func:`analytics.kpis.monthly` (``month``, ``charges``, ``collections``;
    ``payer_paid`` + ``patient_responsibility`` drawn as a line when present).
    """
    if monthly.empty or not np.any(monthly[["charges", "collections"]].to_numpy(dtype=float)):
        return _no_data(title)
    fig = _figure()
    ax = _axes(fig)
    x = np.arange(len(monthly))
    w = 0.4
    ax.bar(x - w / 2, monthly["charges"], w, color=_GREY, label="charges (month of service)")
    ax.bar(x + w / 2, monthly["collections"], w, color=PALETTE[0], label="payer payments received")
    if {"payer_paid", "patient_responsibility"} <= set(monthly.columns):
        due = monthly["payer_paid"] + monthly["patient_responsibility"]
        ax.plot(x, due, color=PALETTE[1], marker="o", lw=2, label="paid + patient share, by month of service")
    ax.set_xticks(x, [pd.Timestamp(m).strftime("%b\n%Y") if i == 0 or pd.Timestamp(m).month == 1
                      else pd.Timestamp(m).strftime("%b") for i, m in enumerate(monthly["month"])])
    ax.yaxis.set_major_formatter(FuncFormatter(_dollars))
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncols=3)
    ax.grid(axis="x", visible=False)
    return fig


@_styled
def ar_aging(aging: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Insurance A/R by payer, stacked by age bucket (light = recent, dark = old).

    ``aging`` is :func:`analytics.kpis.ar_aging` (by payer).
    """
    from analytics.kpis import AGING_BUCKETS

    title = title or "Insurance A/R by payer and age"
    if aging.empty or float(aging["total"].sum()) == 0:
        return _no_data(title, "No open insurance claims.")
    rows = aging.sort_values("total", kind="stable")
    labels = rows["payer"] if "payer" in rows else pd.Series(["all payers"] * len(rows))
    fig = _figure(height=max(2.2, 0.55 * len(rows) + 1.4))
    ax = _axes(fig)
    left = np.zeros(len(rows))
    for color, bucket in zip(_AGING, AGING_BUCKETS, strict=True):
        values = rows[bucket].to_numpy(dtype=float)
        ax.barh(_wrap(labels, 28), values, left=left, color=color, label=bucket, edgecolor="white", linewidth=0.6)
        left += values
    for y, total in enumerate(left):
        ax.text(total, y, " " + _dollars(total), va="center", fontsize=9)
    ax.xaxis.set_major_formatter(FuncFormatter(_dollars))
    ax.set_xlim(0, left.max() * 1.15)
    ax.set_title(title)
    fig.legend(*ax.get_legend_handles_labels(), title="days from date of service", ncols=len(AGING_BUCKETS),
               loc="outside lower center")
    ax.grid(axis="y", visible=False)
    return fig


@_styled
def denial_rates(rates: pd.DataFrame, *, title: str = "Denial rate by payer (95% interval)") -> Figure:
    """Each payer's line denial rate with its interval, highest first.

    ``rates`` is :func:`analytics.kpis.denials_by_payer` (``payer``, ``rate``, ``low``,
    ``high``, ``lines``).
    """
    rows = rates.dropna(subset=["rate"])
    if rows.empty:
        return _no_data(title, "No adjudicated insurance lines.")
    rows = rows.sort_values("rate", kind="stable")
    fig = _figure(height=max(2.2, 0.5 * len(rows) + 1.3))
    ax = _axes(fig)
    y = np.arange(len(rows))
    rate = rows["rate"].to_numpy(dtype=float)
    err = np.vstack([rate - rows["low"].to_numpy(dtype=float), rows["high"].to_numpy(dtype=float) - rate])
    ax.errorbar(rate, y, xerr=err, fmt="o", color=PALETTE[3], ecolor="#444444", elinewidth=1.5, capsize=4, ms=7)
    for yi, r, hi, n in zip(y, rate, rows["high"].to_numpy(dtype=float), rows["lines"], strict=True):
        ax.text(hi, yi, f"  {100 * r:.1f}% of {int(n):,} lines", va="center", fontsize=9)
    ax.set_yticks(y, _wrap(rows["payer"], 28))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, min(1.0, float(rows["high"].max()) * 1.45 + 0.02))
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    return fig


@_styled
def denial_pareto(reasons: pd.DataFrame, *, top: int = 10, title: str = "Top denial reasons (Pareto)") -> Figure:
    """Denied dollars by reason, largest first, with the cumulative share of denied dollars.

    ``reasons`` is :func:`analytics.kpis.denial_reasons`; reasons past ``top`` are summed
    as "all other".
    """
    if reasons.empty:
        return _no_data(title, "No denied lines to show.")
    rows = reasons.sort_values("denied_amount", ascending=False, kind="stable")
    if len(rows) > top:
        rest = rows.iloc[top:]
        rows = pd.concat([rows.iloc[:top], pd.DataFrame({
            "reason": ["all other"], "lines": [int(rest["lines"].sum())],
            "denied_amount": [float(rest["denied_amount"].sum())]})], ignore_index=True)
    total = float(rows["denied_amount"].sum())
    cum = rows["denied_amount"].cumsum() / total if total else rows["denied_amount"] * 0
    fig = _figure(height=4.8)
    ax = _axes(fig)
    x = np.arange(len(rows))
    ax.bar(x, rows["denied_amount"], color=PALETTE[3], width=0.7)
    ax.set_xticks(x, rows["reason"], rotation=30, ha="right", rotation_mode="anchor", fontsize=9)
    ax.yaxis.set_major_formatter(FuncFormatter(_dollars))
    ax.set_ylabel("denied charges")
    ax.grid(axis="x", visible=False)
    ax2 = ax.twinx()
    ax2.plot(x, cum, color="#222222", marker="o", lw=1.8)
    ax2.axhline(0.8, color="#777777", ls="--", lw=1)
    ax2.text(len(rows) - 0.5, 0.81, "80%", ha="right", va="bottom", fontsize=9, color="#555555")
    ax2.set_ylim(0, 1.05)
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax2.set_ylabel("cumulative share")
    ax2.grid(False)
    ax2.spines["right"].set_visible(True)
    ax.set_title(title)
    return fig


@_styled
def underpayments_over_time(summary: pd.DataFrame, *, title: str = "Recoverable underpayments by month of service"
                            ) -> Figure:
    """Recoverable dollars per month, stacked by payer and code.

    ``summary`` is :attr:`analytics.kpis.Underpayments.summary`.
    """
    if summary.empty:
        return _no_data(title, "No paid lines to compare with the contracts.")
    rows = summary[summary["recoverable"] > 0]
    if rows.empty:
        return _no_data(title, "Every paid line matched its contract.")
    key = rows["payer"].astype(str) + " " + rows["cpt"].astype(str)
    table_ = rows.assign(key=key.to_numpy()).pivot_table(index="month", columns="key", values="recoverable",
                                                        aggfunc="sum", fill_value=0.0)
    months = pd.date_range(summary["month"].min(), summary["month"].max(), freq="MS")
    table_ = table_.reindex(months, fill_value=0.0)
    order = table_.sum().sort_values(ascending=False).index
    fig = _figure()
    ax = _axes(fig)
    x = np.arange(len(table_))
    bottom = np.zeros(len(table_))
    for i, k in enumerate(order):
        values = table_[k].to_numpy(dtype=float)
        ax.bar(x, values, bottom=bottom, color=PALETTE[i % len(PALETTE)], label=k, width=0.7)
        bottom += values
    ax.set_xticks(x, [m.strftime("%b\n%Y") if i == 0 or m.month == 1 else m.strftime("%b")
                      for i, m in enumerate(table_.index)])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"${v:,.0f}"))
    ax.set_title(title)
    fig.legend(loc="outside lower center", ncols=min(4, len(order)))
    ax.grid(axis="x", visible=False)
    return fig


def scenario_comparison(comparison: Any, *, title: str | None = None, name: str | None = None) -> Figure:
    """The coding-scenario chart of a :class:`analytics.scenarios.Comparison`."""
    fig = comparison.plot(title=title)
    fig = fig if isinstance(fig, Figure) else fig.figure
    if name is not None:
        save_figure(fig, name)
    return fig


@_styled
def monthly_trend(trend: pd.DataFrame, *, title: str = "The last 13 months") -> Figure:
    """Charges and collections by month (top) and the denial and net collection rates (bottom).

    ``trend`` is :func:`analytics.comparisons.monthly_trend`; the months of the reported
    period are drawn solid, the months before it lighter.
    """
    if trend.empty or not np.any(trend["charges"].to_numpy(dtype=float)):
        return _no_data(title)
    fig = _figure(height=5.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    x = np.arange(len(trend))
    inside = trend["in_period"].to_numpy(dtype=bool)
    alpha = np.where(inside, 1.0, 0.45)
    w = 0.4
    top.bar(x - w / 2, trend["charges"], w, color=mpl.colors.to_rgba_array(_GREY, alpha))
    top.bar(x + w / 2, trend["collected"], w, color=mpl.colors.to_rgba_array(PALETTE[0], alpha))
    top.yaxis.set_major_formatter(FuncFormatter(_dollars))
    top.set_title(title)
    top.grid(axis="x", visible=False)
    bottom.plot(x, trend["denial_rate"], color=PALETTE[3], marker="o", lw=2, label="denial rate (lines)")
    bottom.plot(x, trend["net_collection_rate"], color=PALETTE[2], marker="s", lw=2, label="net collection rate")
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    bottom.set_ylim(0, 1.05)
    bottom.grid(axis="x", visible=False)
    months = pd.to_datetime(trend["month"])
    bottom.set_xticks(x, [m.strftime("%b\n%Y") if i == 0 or m.month == 1 else m.strftime("%b")
                          for i, m in enumerate(months)])
    from matplotlib.patches import Patch

    handles = [Patch(color=_GREY, label="charges (month of service)"),
               Patch(color=PALETTE[0], label="paid + patient share"), *bottom.get_legend_handles_labels()[0]]
    if not inside.all():
        handles.append(Patch(color=_GREY, alpha=0.45, label="lighter: before the period"))
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


@_styled
def percent_of_medicare(table_: pd.DataFrame, *, title: str = "What each payer pays per unit, as % of Medicare"
                        ) -> Figure:
    """Each payer's effective percent of Medicare, one marker per code, with the 100% line.

    ``table_`` is :func:`analytics.kpis.percent_of_medicare`. Payers run from the lowest
    overall percent (bottom) to the highest.
    """
    rows = table_.dropna(subset=["pct_of_medicare"])
    if rows.empty:
        return _no_data(title, "No paid lines with a Medicare fee to compare.")
    codes = sorted(rows["cpt"].unique())
    overall = rows.groupby("payer")["paid"].sum() / rows.groupby("payer")["medicare"].sum()
    payers = overall.sort_values().index
    ypos = {p: i for i, p in enumerate(payers)}
    fig = _figure(height=max(2.4, 0.55 * len(payers) + 1.5))
    ax = _axes(fig)
    markers = ("o", "s", "D", "^", "v", "P", "X", "*")
    offsets = np.linspace(-0.22, 0.22, len(codes)) if len(codes) > 1 else np.zeros(1)
    for i, code in enumerate(codes):
        sub = rows[rows["cpt"] == code]
        y = sub["payer"].map(ypos).to_numpy(dtype=float) + offsets[i]
        ax.scatter(sub["pct_of_medicare"], y, marker=markers[i % len(markers)], s=46,
                   color=PALETTE[i % len(PALETTE)], label=code, zorder=3, edgecolor="white", linewidth=0.5)
    for p, v in overall.items():
        ax.text(1.0, ypos[p] + 0.36, f"all codes {100 * v:.0f}%", fontsize=8, color="#444444",
                transform=ax.get_yaxis_transform(), ha="right", va="center")
    ax.axvline(1.0, color="#222222", lw=1.2, ls="--", zorder=2)
    ax.set_yticks(np.arange(len(payers)), _wrap(payers, 28))
    ax.set_ylim(-0.6, len(payers) - 0.4)
    lo = min(0.5, float(rows["pct_of_medicare"].min()) * 0.9)
    ax.set_xlim(lo, float(rows["pct_of_medicare"].max()) * 1.08)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_title(title)
    fig.legend(*ax.get_legend_handles_labels(), title="code", ncols=len(codes), loc="outside lower center")
    ax.grid(axis="y", visible=False)
    return fig


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------

_LABELS = {
    "payer": "Payer", "payer_id": "Payer id", "cpt": "Code", "month": "Month", "visits": "Visits",
    "lines": "Lines", "units": "Units", "claims": "Claims", "charges": "Charges", "allowed": "Allowed",
    "payer_paid": "Paid by payer", "patient_responsibility": "Patient share", "contractual": "Contractual",
    "denied_amount": "Denied $", "denied_lines": "Denied lines", "partially_denied": "Partly denied",
    "denial_rate": "Denial rate", "net_collection_rate": "Net collection", "paid_per_visit": "Paid per visit",
    "per_visit": "Paid per visit", "payer_paid_per_visit": "Payer paid per visit", "per_unit": "Paid per unit",
    "paid": "Paid", "rate": "Rate", "low": "95% low", "high": "95% high", "reason": "Reason",
    "category": "Category", "share": "Share", "cumulative_share": "Cumulative", "expected": "Contract",
    "recoverable": "Recoverable", "underpaid_lines": "Underpaid lines", "pct_of_contract": "% of contract",
    "medicare": "Medicare fee", "pct_of_medicare": "% of Medicare", "contract": "Contract % of Medicare",
    "claim_id": "Claim", "payer_claim_id": "Payer claim no.", "codes": "Codes", "total": "Total",
    "first_pass": "First pass", "figure": "", "value": "", "collections": "Payments received",
    "collected": "Collected", "period": "Period", "raw_rate": "Raw rate", "dollars_at_risk": "$ at risk",
    "alternative": "Alternative", "payer_name": "Payer", "supported": "Documented", "best": "Best for payer",
    "expected_total": "Expected per visit", "expected_payer": "from payer", "expected_patient": "from patient",
    "missing": "Documentation missing", "modifiers": "Modifiers", "disposition": "Outcome",
    "p_deny": "Chance of denial", "explanation": "Why", "group_code": "Group", "carc": "CARC", "rarc": "RARC",
    "edit_reason": "Reason",
}
_MONEY = {"charges", "allowed", "payer_paid", "patient_responsibility", "contractual", "denied_amount", "paid",
          "expected", "recoverable", "medicare", "total", "collections", "collected", "0-30", "31-60", "61-90",
          "91-120", "over 120", "dollars_at_risk"}
_CENTS = {"paid_per_visit", "per_visit", "payer_paid_per_visit", "per_unit", "expected_total", "expected_payer",
          "expected_patient"}
_PCT = {"denial_rate", "net_collection_rate", "rate", "raw_rate", "low", "high", "share", "cumulative_share",
        "pct_of_contract", "pct_of_medicare", "contract", "p_deny", "first_pass_resolution_rate", "previous_rate",
        "last_year_rate", "change_pct", "previous_change_pct", "last_year_change_pct", "base_rate", "change"}
#: Columns holding whole-dollar amounts, amounts with cents, and fractions shown as percents
#: (the formats of pages and of the run's spreadsheet, :mod:`analytics.workbook`).
MONEY_COLUMNS = frozenset(_MONEY)
CENTS_COLUMNS = frozenset(_CENTS)
PERCENT_COLUMNS = frozenset(_PCT)


class EmptyTable:
    """What :func:`table` shows for a frame without rows: the caption and "none".

    A printed page gets one line instead of a bare header row. ``data`` is the (empty)
    frame; :meth:`to_html` is what a notebook shows.
    """

    def __init__(self, data: pd.DataFrame, caption: str = "") -> None:
        self.data = data
        self.caption = caption

    def to_html(self) -> str:
        caption = f'<p class="caption">{_html.escape(self.caption)}</p>' if self.caption else ""
        return f'<div class="empty-table">{caption}<p class="none">none</p></div>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        return f"{self.caption + ': ' if self.caption else ''}none"


def _dollar_text(v: Any, *, cents: bool) -> str:
    if pd.isna(v):
        return "-"
    text = f"${abs(v):,.2f}" if cents else f"${abs(v):,.0f}"
    return "-" + text if v < 0 and text.strip("$0.,") else text


def table(
    frame: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    max_rows: int | None = None,
    labels: dict[str, str] | None = None,
    cents: bool = False,
    name: str | None = None,
    percent: Sequence[str] = (),
):
    """A KPI frame as a styled table: dollars, percents and headings in words, no index.

    Parameters
    ----------
    frame
        Any :mod:`analytics.kpis` result.
    columns
        Columns to show, in order (default: all but ``payer_id`` when ``payer`` is there).
    title
        Caption above the table.
    max_rows
        Show at most this many rows (a caption says how many were left out).
    labels
        Extra or replacement headings.
    cents
        Show every dollar column with cents (claims to appeal); whole dollars otherwise.
    name
        Also save ``frame`` (every row and column, raw values) with :func:`save_table`.
    percent
        More columns to show as percents (fractions), e.g. one column per practice.

    Returns
    -------
    pandas.io.formats.style.Styler or EmptyTable
        An :class:`EmptyTable` (caption and "none") when the frame has no rows.
    """
    if name is not None:
        save_table(frame, name)
    if columns is None:
        columns = [c for c in frame.columns if not (c == "payer_id" and "payer" in frame.columns)]
    shown = frame.loc[:, list(columns)]
    caption = title or ""
    if shown.empty:
        return EmptyTable(shown, caption)
    if max_rows is not None and len(shown) > max_rows:
        caption = (caption + " " if caption else "") + f"(first {max_rows} of {len(shown):,} rows)"
        shown = shown.head(max_rows)
    fmt: dict[str, Any] = {}
    for c in shown.columns:
        if c in _MONEY or c in _CENTS:
            fmt[c] = functools.partial(_dollar_text, cents=cents or c in _CENTS)
        elif c in _PCT or c in percent:
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{100 * v:.1f}%"
        elif c == "month":
            fmt[c] = lambda v: pd.Timestamp(v).strftime("%Y-%m")
        elif pd.api.types.is_bool_dtype(shown[c]):
            fmt[c] = lambda v: "yes" if v else "no"
        elif pd.api.types.is_integer_dtype(shown[c]):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:,}"
    names = {**_LABELS, **(labels or {})}
    # the element ids come from the content, not a random uuid, so a page is the same twice
    digest = hashlib.sha256(f"{caption}\x1f{list(shown.columns)}\x1f{shown.to_csv()}".encode()).hexdigest()[:10]
    styler = shown.reset_index(drop=True).style.format(fmt).hide(axis="index").set_uuid(digest)
    styler = styler.relabel_index([names.get(c, c.replace("_", " ")) for c in shown.columns], axis="columns")
    styler = styler.set_table_styles([
        {"selector": "th", "props": [("text-align", "left"), ("padding", "4px 10px")]},
        {"selector": "td", "props": [("padding", "3px 10px")]},
        {"selector": "caption", "props": [("caption-side", "top"), ("text-align", "left"), ("font-weight", "bold")]},
    ])
    numeric = [c for c in shown.columns if c in _MONEY | _CENTS | _PCT | {"value"} or c in percent
               or pd.api.types.is_numeric_dtype(shown[c])]
    text = [c for c in shown.columns if c not in numeric]
    if numeric:
        styler = styler.set_properties(subset=numeric, **{"text-align": "right", "white-space": "nowrap"})
    if text:
        styler = styler.set_properties(subset=text, **{"text-align": "left"})
        # sentences (reasons, explanations) get room, so that codes and numbers wrap first
        long = [c for c in text if shown[c].astype(str).str.len().max() > _LONG_TEXT]
        if long:
            styler = styler.set_properties(subset=long, **{"min-width": "16em"})
    if caption:
        styler = styler.set_caption(caption)
    return styler


def _figure_text(values: np.ndarray, unit: np.ndarray, *, change: bool = False) -> np.ndarray:
    """Numbers of mixed units as a page shows them (``$1,240``, ``27.0%``, ``11.8 days``, ``841``)."""
    out = np.full(len(values), "-", dtype=object)
    for i, (v, u) in enumerate(zip(values, unit, strict=True)):
        if v is None or not np.isfinite(v):
            continue
        sign = ("+" if v > 0 else "-" if v < 0 else "") if change else ("-" if v < 0 else "")
        a = abs(float(v))
        if u == "dollars":
            out[i] = f"{sign}${a:,.2f}" if a < 1000 and not float(a).is_integer() else f"{sign}${a:,.0f}"
        elif u == "percent":
            out[i] = f"{sign}{100 * a:.1f}" + (" pts" if change else "%")
        elif u == "days":
            out[i] = f"{sign}{a:.1f} days"
        else:
            out[i] = f"{sign}{a:,.0f}"
    return out


def _pct_text(values: np.ndarray) -> np.ndarray:
    return np.array(["-" if not np.isfinite(v) else f"{100 * v:+.1f}%" for v in values.astype(float)],
                    dtype=object)


def comparison_table(comparison: pd.DataFrame, *, title: str | None = None, name: str | None = None):
    """:func:`analytics.comparisons.headline_comparison` as a page table, each row in its unit.

    Dollars, percents (changes of rates in points), days and counts are formatted row by
    row; the comparison columns of a period without data are left out. ``name`` saves the
    numeric frame (:func:`save_table`).
    """
    if name is not None:
        save_table(comparison, name)
    unit = comparison["unit"].to_numpy(dtype=object)
    shown = pd.DataFrame({"Figure": comparison["label"].to_numpy(dtype=object),
                          "This period": _figure_text(comparison["value"].to_numpy(dtype=float), unit)})
    heads = {"previous": ("Previous period", "Change", "Change %"),
             "last_year": ("A year earlier", "Change ", "Change % ")}
    for kind, (head, change, pct) in heads.items():
        if kind not in comparison.columns or not np.isfinite(comparison[kind].to_numpy(dtype=float)).any():
            continue
        shown[head] = _figure_text(comparison[kind].to_numpy(dtype=float), unit)
        shown[change] = _figure_text(comparison[f"{kind}_change"].to_numpy(dtype=float), unit, change=True)
        shown[pct] = _pct_text(comparison[f"{kind}_change_pct"].to_numpy(dtype=float))
    return _figure_styler(shown, title)


def _figure_styler(shown: pd.DataFrame, title: str | None):
    """A table whose first column names the figures (left) and the others hold them (right)."""
    digest = hashlib.sha256(f"{title}\x1f{shown.to_csv()}".encode()).hexdigest()[:10]
    styler = shown.style.hide(axis="index").set_uuid(digest).set_table_styles([
        {"selector": "th", "props": [("text-align", "right"), ("padding", "4px 10px")]},
        {"selector": "th.col0", "props": [("text-align", "left")]},
        {"selector": "td", "props": [("padding", "3px 10px")]},
        {"selector": "caption", "props": [("caption-side", "top"), ("text-align", "left"), ("font-weight", "bold")]},
    ]).set_properties(subset=["Figure"], **{"text-align": "left"})
    others = [c for c in shown.columns if c != "Figure"]
    if others:
        styler = styler.set_properties(subset=others, **{"text-align": "right", "white-space": "nowrap"})
    return styler.set_caption(title) if title else styler


def figures_table(frame: pd.DataFrame, *, title: str | None = None, name: str | None = None):
    """Figures of mixed units side by side: ``figure, label, unit`` then one column per subject.

    Each row is formatted in its unit (dollars, percents, days, counts), as
    :meth:`analytics.portfolio.Portfolio.side_by_side` gives them. ``name`` saves the
    numeric frame (:func:`save_table`).
    """
    if name is not None:
        save_table(frame, name)
    unit = frame["unit"].to_numpy(dtype=object)
    shown = pd.DataFrame({"Figure": frame["label"].to_numpy(dtype=object)})
    for col in [c for c in frame.columns if c not in ("figure", "label", "unit")]:
        shown[str(col)] = _figure_text(frame[col].to_numpy(dtype=float), unit)
    return _figure_styler(shown, title)


def shorten(texts: pd.Series, width: int = 110) -> pd.Series:
    """Each text cut to ``width`` characters at the last clause or word boundary, with "…".

    Examples
    --------
    >>> shorten(pd.Series(["one; two; three four five"]), 14).tolist()
    ['one; two…']
    """
    def cut(text: Any) -> str:
        text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text)
        if len(text) <= width:
            return text
        head = text[: width - 1]
        if text[width - 1] == " ":  # the cut falls between two words: keep the last one whole
            head += " "
        at = max(head.rfind("; "), head.rfind(". "))
        if at < width // 3:
            at = head.rstrip().rfind(" ") if not head.endswith(" ") else len(head) - 1
        return (head[:at] if at > 0 else head).rstrip(" ;,.") + "…"

    return texts.map(cut)


def reasons_in_short(lines: pd.DataFrame, *, width: int = 160) -> pd.DataFrame:
    """The reasons of coding-scenario lines in short, for a page's appendix.

    ``lines`` is :attr:`analytics.scenarios.Comparison.table`. Each reason says the units
    and the rule that counted them, then why the line is denied (group code, CARC and the
    edit) or how it is priced; the full explanation stays in the saved table ``explain``.
    Columns ``alternative, payer, cpt, modifiers, reason``.
    """
    text = {c: lines[c].astype(str).where(lines[c].notna(), "") for c in
            ("units_reason", "disposition", "edit_reason", "group_code", "carc", "price_basis")}
    rule = text["units_reason"].str.split(":", n=1).str[0]
    units = lines["units"].astype("Int64").astype(str) + " unit(s), " + rule
    clause = text["edit_reason"].str.split(": ", n=1).str[-1]
    code = np.where(text["carc"] != "", " " + text["group_code"] + "-" + text["carc"], "")
    unbundled = text["edit_reason"].str.extract(r"(unbundled by modifier \w+)", expand=False).fillna("")
    priced = text["price_basis"] + np.where(unbundled != "", "; " + unbundled, "")
    outcome = np.select(
        [text["disposition"] == "denied", text["disposition"] == "not_billed"],
        ["denied" + code + ": " + clause, "not billed: no billable units"], default=priced)
    reason = shorten(pd.Series(units.to_numpy(dtype=object) + ". " + outcome, index=lines.index), width)
    payer = lines["payer_name"] if "payer_name" in lines.columns else lines["payer_id"]
    return pd.DataFrame({"alternative": lines["alternative"].astype(str).to_numpy(),
                         "payer": payer.astype(str).to_numpy(), "cpt": lines["cpt"].astype(str).to_numpy(),
                         "modifiers": lines["modifiers"].astype(str).where(lines["modifiers"].notna(), "").to_numpy(),
                         "reason": reason.to_numpy()})

