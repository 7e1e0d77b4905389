"""Charts return figures that render, with or without data; tables format money and rates."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from test_kpis import AS_OF, PAYERS, charge_lines, remittance

from analytics import kpis, plots


@pytest.fixture(scope="module")
def hand() -> kpis.History:
    return kpis.build_history(charge_lines(), remittance(), payers=PAYERS, as_of=AS_OF, salt="test")


def render(fig: Figure) -> np.ndarray:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    buf.seek(0)
    return mpimg.imread(buf, format="png")


def colours(image: np.ndarray) -> int:
    """Number of distinct colours in an RGB(A) image."""
    rgba = np.round(image[..., :4] * 255).astype(np.uint8)
    if rgba.shape[-1] == 3:
        rgba = np.concatenate([rgba, np.full(rgba.shape[:-1] + (1,), 255, np.uint8)], axis=-1)
    return len(np.unique(np.ascontiguousarray(rgba).view(np.uint32)))


def charts(h: kpis.History) -> dict[str, Figure]:
    return {
        "monthly": plots.monthly_charges_collections(kpis.monthly(h)),
        "aging": plots.ar_aging(kpis.ar_aging(h)),
        "denial rates": plots.denial_rates(kpis.denials_by_payer(h)),
        "pareto": plots.denial_pareto(kpis.denial_reasons(h)),
        "underpayments": plots.underpayments_over_time(kpis.underpayments(h).summary),
        "medicare": plots.percent_of_medicare(kpis.percent_of_medicare(h, locality="00000-00")),
    }


def titles(fig: Figure) -> list[str]:
    return [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center") if ax.get_title(loc)]


def test_every_chart_is_a_figure_that_renders(hand):
    for name, fig in charts(hand).items():
        assert isinstance(fig, Figure), name
        assert titles(fig), f"{name} has no title"
        image = render(fig)
        assert image.shape[1] >= 800, name  # 8 inches at 110 dpi
        assert colours(image) > 2, f"{name} is blank"


def test_charts_without_data_say_so(hand):
    empty = hand.select(start="2024-01-01", end="2024-01-31", as_of="2024-02-01")
    for name, fig in charts(empty).items():
        assert isinstance(fig, Figure), name
        texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
        assert texts.startswith("No ") or "matched" in texts, name
        render(fig)


def test_print_legibility(hand):
    # no text smaller than 8 pt, so a page printed at width stays readable
    for name, fig in charts(hand).items():
        fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
        for text in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text")):
            if text.get_text():
                assert text.get_fontsize() >= 8, (name, text.get_text())


def test_charts_show_the_numbers(hand):
    fig = plots.ar_aging(kpis.ar_aging(hand))
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert labels == [" $200", " $200"]
    fig = plots.denial_rates(kpis.denials_by_payer(hand))
    assert any("50.0% of 2 lines" in t.get_text() for t in fig.axes[0].texts)


def test_pareto_folds_the_tail():
    reasons = pd.DataFrame({"reason": [f"r{i}" for i in range(14)], "lines": 1,
                            "denied_amount": np.arange(14, 0, -1, dtype=float)})
    fig = plots.denial_pareto(reasons, top=5)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[-1] == "all other" and len(labels) == 6


def test_scenario_chart_comes_from_the_comparison():
    class Comparison:
        def plot(self, *, title=None):
            fig = Figure()
            fig.subplots().set_title(title or "")
            return fig

    assert isinstance(plots.scenario_comparison(Comparison(), title="x"), Figure)


def test_table_formats_money_rates_and_headings(hand):
    html = plots.table(kpis.by_payer(hand)).to_html()
    assert "Acme Health" in html and "acme" not in html.replace("Acme", "")  # payer name, not its id
    assert "$500" in html and "Net collection" in html
    assert "33.3%" in html  # acme's net collection: $50 of $150
    capped = plots.table(kpis.by_payer(hand), max_rows=1, title="Payers").to_html()
    assert "first 1 of 3 rows" in capped
