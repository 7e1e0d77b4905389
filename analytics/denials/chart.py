"""The calibration chart of the learned denial risk: predicted against observed, with counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["calibration_chart"]

_BLUE, _ORANGE, _GREY = "#0072B2", "#E69F00", "#9a9a9a"


def calibration_chart(table: pd.DataFrame, *, title: str = "Predicted against observed denial rate, last months"):
    """Each bin of :func:`~analytics.denials.calibration_table` as a point (mean predicted,
    observed rate) with its 95% interval and its line count, beside the diagonal of a perfect
    forecast. Returns a :class:`matplotlib.figure.Figure`; a table without rows gives a chart
    that says so."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    if table.empty:
        ax.set_axis_off()
        ax.text(0.5, 0.45, "No held-out months to validate on.", ha="center", va="center", fontsize=11,
                color="#555555", transform=ax.transAxes)
        return fig
    x = table["mean_predicted"].to_numpy(dtype=float)
    y = table["observed_rate"].to_numpy(dtype=float)
    lo = table["observed_lo_95"].to_numpy(dtype=float)
    hi = table["observed_hi_95"].to_numpy(dtype=float)
    top = float(max(np.max(hi), np.max(x))) * 1.1 + 0.01
    ax.plot([0, top], [0, top], color=_GREY, lw=1, ls="--", label="perfect forecast")
    ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color=_BLUE, ecolor=_BLUE, capsize=3, lw=1,
                label="observed (95% interval)")
    for xi, yi, n in zip(x, y, table["lines"].to_numpy(), strict=True):
        ax.annotate(f"{int(n):,} lines", (xi, yi), textcoords="offset points", xytext=(6, -10), fontsize=8,
                    color="#444444")
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("Predicted chance of denial (mean of the bin)", fontsize=10)
    ax.set_ylabel("Observed denial rate", fontsize=10)
    ax.xaxis.set_major_formatter("{x:.0%}")
    ax.yaxis.set_major_formatter("{x:.0%}")
    ax.grid(color="#dddddd", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper left", fontsize=9, frameon=False)
    return fig
