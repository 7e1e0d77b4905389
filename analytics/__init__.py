"""Reimbursement analytics for massage and manual-therapy practices.

The public API is listed in ``__all__``; names load on first use so that a command or a
notebook pays only for the parts it touches.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # reference data and payer policies
    "Reference": "analytics.refdata",
    "load_reference": "analytics.refdata",
    "PayerPolicy": "analytics.payers",
    "load_payers": "analytics.payers",
    # rule stages
    "compute_units": "analytics.units",
    "apply_edits": "analytics.edits",
    "apply_threshold_edits": "analytics.edits",
    "price_lines": "analytics.pricing",
    "split_cost_share": "analytics.pricing",
    "evaluate": "analytics.pipeline",
    "evaluate_parquet": "analytics.pipeline",
    "evaluate_dask": "analytics.pipeline",
    "write_dask_parquet": "analytics.pipeline",
    # practice data
    "read_service_lines": "analytics.intake",
    "pseudonymise": "analytics.privacy",
    "read_835": "analytics.remittance",
    "read_835_many": "analytics.remittance",
    "link_remittance": "analytics.remittance",
    "iter_835": "analytics.remittance",
    # coding scenarios
    "Session": "analytics.scenarios",
    "Service": "analytics.scenarios",
    "alternatives": "analytics.scenarios",
    "compare": "analytics.scenarios",
    "claim_form": "analytics.scenarios",
    # synthetic practice and denials
    "generate_practice": "analytics.datasets",
    "Practice": "analytics.datasets",
    "line_outcomes": "analytics.denials",
    "denial_rates": "analytics.denials",
    "monthly_trend": "analytics.denials",
    "DenialRiskModel": "analytics.denials",
    # reports
    "load_history": "analytics.history",
    "History": "analytics.history",
    "run_reports": "analytics.reports",
    "check_outputs": "analytics.privacy",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analytics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
