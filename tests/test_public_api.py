"""The curated public API: every name resolves, and the list changes only on purpose."""

import analytics

EXPECTED = {
    "__version__", "Reference", "load_reference", "PayerPolicy", "load_payers", "compute_units", "apply_edits",
    "apply_threshold_edits", "price_lines", "split_cost_share", "evaluate", "read_service_lines", "pseudonymise",
    "read_835", "read_835_many", "link_remittance", "Session", "Service", "alternatives", "compare", "claim_form",
    "generate_practice", "Practice", "line_outcomes", "denial_rates", "monthly_trend", "DenialRiskModel",
    "iter_835", "evaluate_parquet", "evaluate_dask", "write_dask_parquet", "load_history", "History", "run_reports", "check_outputs",
}


def test_all_is_pinned():
    assert set(analytics.__all__) == EXPECTED


def test_every_name_resolves():
    for name in analytics.__all__:
        assert getattr(analytics, name) is not None, name
