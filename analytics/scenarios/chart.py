"""The charts of the coding scenarios: expected collections by coding alternative and payer (one
session), and per payer as billed and coded the best documented way (the practice what-if)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["plot_totals", "plot_practice_whatif"]


# Okabe-Ito: distinguishable in colour-blind vision and in greyscale print.
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def plot_totals(
    totals: pd.DataFrame, payer_ids: list[str], *, title: str | None, show_values: bool | None
):
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = (
        list(totals["alternative"].cat.categories)
        if isinstance(totals["alternative"].dtype, pd.CategoricalDtype)
        else list(dict.fromkeys(totals["alternative"]))
    )
    n_alt, n_pay = len(names), max(len(payer_ids), 1)
    grid = totals.set_index(["alternative", "payer_id"])["expected_total"]
    supported = totals.drop_duplicates("alternative").set_index("alternative")["supported"]
    names_of = totals.drop_duplicates("payer_id").set_index("payer_id")["payer_name"]
    bar = 0.8 / n_pay
    height = 1.4 + n_alt * (0.16 * n_pay + 0.25)
    fig = Figure(figsize=(9.5, max(3.0, height)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    show = (n_alt * n_pay <= 60) if show_values is None else show_values
    top = float(totals["expected_total"].max()) if len(totals) else 0.0
    for j, pid in enumerate(payer_ids):
        colour = _COLOURS[j % len(_COLOURS)]
        values = np.array([float(grid.get((a, pid), 0.0)) for a in names])
        y = np.arange(n_alt) + (j - (n_pay - 1) / 2) * bar
        ok = np.array([bool(supported[a]) for a in names])
        ax.barh(
            y[ok],
            values[ok],
            height=bar * 0.92,
            color=colour,
            edgecolor="black",
            linewidth=0.4,
            label=str(names_of.get(pid, pid)),
        )
        ax.barh(
            y[~ok],
            values[~ok],
            height=bar * 0.92,
            color=colour,
            alpha=0.3,
            edgecolor=colour,
            hatch="///",
            linewidth=0.6,
        )
        if show:
            for yy, v in zip(y, values, strict=True):
                ax.text(v + top * 0.01, yy, f"${v:,.0f}", va="center", fontsize=7)
    labels = [a if supported[a] else f"{a}\n(not supported)" for a in names]
    ax.set_yticks(np.arange(n_alt), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(
        "Expected collections per visit ($): allowed x (1 - chance of denial)", fontsize=9
    )
    ax.xaxis.set_major_formatter("${x:,.0f}")
    ax.set_xlim(0, top * 1.12 + 1)
    ax.grid(axis="x", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles, _ = ax.get_legend_handles_labels()
    if not supported.all():
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="0.3",
                hatch="///",
                label="not supported by the documentation",
            )
        )
    ax.legend(
        handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
    )
    ax.set_title(
        title or "Expected collections by coding alternative and payer", fontsize=11, loc="left"
    )
    return fig


def plot_practice_whatif(by_payer: pd.DataFrame, *, title: str | None = None):
    """Per payer, expected collections a month as billed and coded the best documented way, and
    what 59/X would add where the documentation is not in the export (hatched)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    n = len(by_payer)
    fig = Figure(figsize=(9.5, max(2.4, 1.2 + 0.55 * n)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title or "Expected collections a month: as billed and coded the best documented way",
                 fontsize=11, loc="left")
    if not n:
        ax.set_axis_off()
        ax.text(0.5, 0.45, "No insurance visit in this period.", ha="center", va="center", transform=ax.transAxes)
        return fig
    y = np.arange(n)
    billed = by_payer["billed_per_month"].to_numpy(dtype=float)
    best = by_payer["best_per_month"].to_numpy(dtype=float)
    extra = by_payer["if_documented_per_month"].to_numpy(dtype=float)
    ax.barh(y - 0.2, billed, height=0.38, color=_COLOURS[0], label="as billed")
    ax.barh(y + 0.2, best, height=0.38, color=_COLOURS[2], label="best documented way")
    ax.barh(y + 0.2, extra, left=best, height=0.38, color="white", edgecolor=_COLOURS[1], hatch="///",
            linewidth=0.6)
    for yy, b, d in zip(y, best, best - billed, strict=True):
        if d > 0.005:
            ax.text(b, yy + 0.2, f"  +${d:,.0f}", va="center", fontsize=8)
    ax.set_yticks(y, by_payer["payer"].astype(str).tolist(), fontsize=9)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter("${x:,.0f}")
    ax.set_xlabel("Expected collections per month ($): allowed x (1 - chance of denial)", fontsize=9)
    ax.grid(axis="x", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="white", edgecolor=_COLOURS[1], hatch="///",
                         label="more with 59/X, were separate regions documented"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig
