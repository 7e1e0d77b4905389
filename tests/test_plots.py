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


def test_nothing_is_saved_outside_a_report_run(hand, tmp_path, monkeypatch):
    monkeypatch.delenv(plots.OUTPUT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    plots.table(kpis.by_payer(hand), name="by_payer")
    plots.ar_aging(kpis.ar_aging(hand), name="aging")
    assert list(tmp_path.iterdir()) == []


def test_tables_and_charts_are_saved_whole_and_the_same_twice(hand, tmp_path, monkeypatch):
    monkeypatch.setenv(plots.OUTPUT_ENV, str(tmp_path))
    frame = kpis.by_payer(hand)
    plots.table(frame, max_rows=1, name="by_payer")  # the page shows one row, the CSV has all
    first = (tmp_path / "tables" / "by_payer.csv").read_bytes()
    assert len(pd.read_csv(io.BytesIO(first))) == len(frame) == 3
    assert b"$" not in first and b"\r\n" not in first
    plots.ar_aging(kpis.ar_aging(hand), name="aging")
    png = (tmp_path / "figures" / "aging.png").read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png
    plots.table(kpis.by_payer(hand), max_rows=1, name="by_payer")
    plots.ar_aging(kpis.ar_aging(hand), name="aging")
    assert (tmp_path / "tables" / "by_payer.csv").read_bytes() == first
    assert (tmp_path / "figures" / "aging.png").read_bytes() == png


def test_a_named_index_is_kept_in_the_csv(tmp_path):
    frame = pd.DataFrame({"value": [1.5]}, index=pd.Index(["charges"], name="measure"))
    path = plots.save_table(frame, "summary", tmp_path)
    assert path.read_text() == "measure,value\ncharges,1.5\n"


@pytest.mark.parametrize("name", ["", "By Payer", "../x", "a/b", "x.csv"])
def test_output_names_are_checked(tmp_path, name):
    with pytest.raises(ValueError, match="lower-case letters"):
        plots.save_table(pd.DataFrame({"a": [1]}), name, tmp_path)


def test_table_html_is_the_same_twice(hand):
    # element ids come from the content; pandas would draw a random uuid per table
    assert plots.table(kpis.by_payer(hand)).to_html() == plots.table(kpis.by_payer(hand)).to_html()
    assert plots.table(kpis.by_payer(hand)).to_html() != plots.table(kpis.by_payer(hand), title="x").to_html()
