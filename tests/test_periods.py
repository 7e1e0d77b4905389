"""Period labels, the period before and a year earlier, and the comparison figures built on them.

Calendar facts (Gregorian calendar): 2024 is a leap year (February has 29 days), 2025 is not;
quarters are January-March, April-June, July-September, October-December. The comparison
figures are checked against the hand-built history of ``test_kpis`` (ten lines, documented
there line by line), not against this code's own output.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from test_kpis import AS_OF, PAYERS, charge_lines, remittance

from analytics import comparisons, kpis, periods, reports
from analytics.exceptions import ParameterError
from analytics.periods import Period


@pytest.mark.parametrize(("start", "end", "label", "words"), [
    ("2025-01-01", "2025-12-31", "2025", "2025"),
    ("2025-10-01", "2025-12-31", "2025-Q4", "Q4 2025"),
    ("2025-11-01", "2025-11-30", "2025-11", "November 2025"),
    ("2024-02-01", "2024-02-29", "2024-02", "February 2024"),
    ("2025-03-03", "2026-02-14", "2025-03-03_2026-02-14", "2025-03-03 to 2026-02-14"),
    ("2025-02-01", "2025-03-31", "2025-02-01_2025-03-31", "2025-02-01 to 2025-03-31"),  # two months: no name
    ("2025-11-01", "2025-11-29", "2025-11-01_2025-11-29", "2025-11-01 to 2025-11-29"),  # not the whole month
])
def test_labels_name_whole_years_quarters_and_months(start, end, label, words):
    p = Period.of(start, end)
    assert p.label == label == periods.label(start, end)
    assert p.describe() == words


@pytest.mark.parametrize(("start", "end", "previous", "year_earlier"), [
    ("2025-10-01", "2025-12-31", ("2025-07-01", "2025-09-30"), ("2024-10-01", "2024-12-31")),
    ("2026-01-01", "2026-01-31", ("2025-12-01", "2025-12-31"), ("2025-01-01", "2025-01-31")),
    ("2024-03-01", "2024-03-31", ("2024-02-01", "2024-02-29"), ("2023-03-01", "2023-03-31")),
    ("2024-02-01", "2024-02-29", ("2024-01-01", "2024-01-31"), ("2023-02-01", "2023-02-28")),
    ("2025-01-01", "2025-12-31", ("2024-01-01", "2024-12-31"), ("2024-01-01", "2024-12-31")),
    # not whole months: as many days just before; the same dates a year back, 29 Feb on the 28th
    ("2024-02-20", "2024-02-29", ("2024-02-10", "2024-02-19"), ("2023-02-20", "2023-02-28")),
])
def test_previous_period_and_a_year_earlier(start, end, previous, year_earlier):
    p = Period.of(start, end)
    assert p.previous().as_text() == previous
    assert p.year_earlier().as_text() == year_earlier
    assert p.previous().end == p.start - dt.timedelta(days=1)


def test_thirteen_months_back_end_with_the_periods_last_month():
    window = Period.of("2025-10-01", "2025-12-31").months_back(13)
    assert window.as_text() == ("2024-12-01", "2025-12-31") and window.months == 13


@pytest.mark.parametrize(("keyword", "today", "expected"), [
    ("previous-month", dt.date(2026, 1, 15), ("2025-12-01", "2025-12-31")),
    ("previous-month", dt.date(2024, 3, 1), ("2024-02-01", "2024-02-29")),
    ("previous-quarter", dt.date(2026, 2, 10), ("2025-10-01", "2025-12-31")),
    ("previous-quarter", dt.date(2026, 8, 1), ("2026-04-01", "2026-06-30")),
    ("2025-Q3", dt.date(2026, 1, 1), ("2025-07-01", "2025-09-30")),
    ("2025-07", dt.date(2026, 1, 1), ("2025-07-01", "2025-07-31")),
    ("2025", dt.date(2026, 1, 1), ("2025-01-01", "2025-12-31")),
])
def test_period_keywords(keyword, today, expected):
    assert periods.parse(keyword, today).as_text() == expected
    assert reports._period(keyword, today) == expected  # the runner reads --period the same way


@pytest.mark.parametrize("keyword", ["last-week", "2025-Q5", "2025-13", "25"])
def test_a_bad_period_keyword_says_what_to_write(keyword):
    with pytest.raises(ParameterError, match="--period"):
        periods.parse(keyword, dt.date(2026, 1, 1))


def test_a_period_that_ends_before_it_starts_is_refused():
    with pytest.raises(ParameterError, match="swap"):
        Period.of("2026-02-01", "2026-01-01")


# --- comparison figures on the hand-built history --------------------------------------------


@pytest.fixture(scope="module")
def february() -> kpis.History:
    """February 2026 of the hand-built history (as of 2026-03-31): L3, L4 (Beta Mutual), L8 (self-pay)."""
    hand = kpis.build_history(charge_lines(), remittance(), payers=PAYERS, as_of=AS_OF, salt="test")
    return hand.select(start="2026-02-01", end="2026-02-28")


def _row(frame: pd.DataFrame, figure: str) -> pd.Series:
    return frame.set_index("figure").loc[figure]


def test_headline_comparison_against_january_and_a_year_earlier(february):
    table = comparisons.headline_comparison(february, compare="previous")
    # February: three visits, $300 of charges; no line denied (L3 and L4 paid).
    assert _row(table, "visits")["value"] == 3
    assert _row(table, "gross_charges")["value"] == 300.0
    assert _row(table, "denial_rate")["value"] == 0.0
    # January: L1 + L2 (one visit), L7: two visits, $300. A/R is taken as many days after January's
    # end (31 + 31 = 2026-03-03) as February's is after its own (2026-03-31): L1/L2 adjudicated on
    # 01-20, one of the two denied (CO-97).
    jan = _row(table, "visits")
    assert (jan["previous"], jan["previous_change"]) == (2, 1)
    assert jan["previous_change_pct"] == pytest.approx(0.5)
    rate = _row(table, "denial_rate")
    assert rate["previous"] == 0.5 and rate["previous_change"] == -0.5
    assert _row(table, "gross_charges")["previous_change_pct"] == 0.0
    # February 2025 has no service in the data: no figures, and the basis says so
    assert np.isnan(table["last_year"]).all()
    assert "2026-01-01 to 2026-01-31, A/R as of 2026-03-03" in table["basis"].iloc[0]
    assert "no services in the data" in table["basis"].iloc[0]


def test_headline_comparison_equals_the_figures_of_the_period_scoped_directly(february):
    table = comparisons.headline_comparison(february, compare="last-year")
    january = february.select(start="2026-01-01", end="2026-01-31", as_of="2026-03-03")
    direct = kpis.summary(january)
    for key in ("gross_charges", "payer_paid", "denied_amount", "ar_balance", "net_collection_rate"):
        assert _row(table, key)["previous"] == pytest.approx(float(direct[key]), nan_ok=True), key
    assert list(table.columns[4:7]) == ["last_year", "last_year_change", "last_year_change_pct"]  # asked first


def test_no_comparison_leaves_the_figures_alone(february):
    table = comparisons.headline_comparison(february, compare="none")
    assert list(table.columns) == ["figure", "label", "unit", "value", "basis"]
    assert comparisons.denial_rate_change(february, compare="none").empty
    with pytest.raises(ParameterError, match="--compare"):
        comparisons.headline_comparison(february, compare="last-month")


def test_denial_rates_by_payer_against_the_previous_period(february):
    change = comparisons.denial_rate_change(february).set_index("payer_id")
    # Beta Mutual: February's two lines paid; no claim in January. Acme: January 1 of 2 denied, none in February.
    assert (change.loc["beta", "lines"], change.loc["beta", "rate"]) == (2, 0.0)
    assert change.loc["beta", "base_lines"] == 0 and np.isnan(change.loc["beta", "base_rate"])
    assert change.loc["acme", "base_rate"] == 0.5 and change.loc["acme", "lines"] == 0
    assert change.loc["acme", "payer"] == "Acme Health"


def test_monthly_trend_starts_where_the_data_start(february):
    trend = comparisons.monthly_trend(february)
    # 13 months back from February 2026 would start in February 2025; the data start with L6 in December 2025.
    assert [m.strftime("%Y-%m") for m in trend["month"]] == ["2025-12", "2026-01", "2026-02"]
    assert trend["charges"].tolist() == [100.0, 300.0, 300.0]
    assert trend["visits"].tolist() == [1, 2, 3]
    assert trend["in_period"].tolist() == [False, False, True]
    assert trend["denial_rate"].iloc[1] == 0.5  # January: L2 denied of L1, L2


def test_headline_figures_are_numbers_with_labels(february):
    figures = kpis.headline_figures(february)
    assert list(figures.columns) == ["figure", "label", "value", "unit", "basis"]
    assert figures["value"].dtype == float
    assert _row(figures, "gross_charges")["value"] == 300.0
    assert _row(figures, "denial_rate")["unit"] == "percent"
    assert set(figures["figure"]) == {k for k, _l, _u in kpis.HEADLINE_FIGURES}
