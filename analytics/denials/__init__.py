"""Denials: what each remittance line's outcome was, how often each payer denies, and why.

Three layers, from facts to forecasts:

* :func:`line_outcomes` reads the adjustments of every 835 service line and says whether the
  line was paid, partially denied or denied, which CARC carried the denial and its category
  in the reference catalog (bundling, medical necessity, authorisation, benefit maximum,
  frequency, timely filing, eligibility, coding/modifier, provider eligibility,
  prescription/referral, duplicate, coordination of benefits ...). Contractual write-downs
  (CO-45, CO-253, MPPR CO-59) and cost share (PR-1/2/3) are not denials.
* :func:`denial_rates` and :func:`monthly_trend` count denials by payer, code, modifiers and
  category with empirical-Bayes (beta-binomial) shrinkage, so that a payer with three claims
  is not shown at 0% or 100%, and give credible intervals and the dollars at risk.
* :class:`DenialRiskModel` learns, from the practice's own history, the denials the rules
  engine cannot foresee: a regularised logistic regression on features a biller can see
  before submission (payer, code, modifiers, the other codes of the visit, units, diagnosis
  group, prescription on file, visit number against the payer's limit, days to submission,
  provider type), with the top factors behind each prediction named in words.

The package holds one job per module: :mod:`~analytics.denials.outcomes` (line outcomes and
training labels), :mod:`~analytics.denials.rates` (shrunk rates, trends, top reasons),
:mod:`~analytics.denials.bands` (diagnosis groups and the bands of visit number, filing delay
and units), :mod:`~analytics.denials.features` and :mod:`~analytics.denials.design` (the
model's features and design matrix) and :mod:`~analytics.denials.model` (the model);
:mod:`~analytics.denials.keys` joins the remittance tables for the outcomes;
:mod:`~analytics.denials.learned` learns the risk from a practice's history (model, or shrunk
payer x code rates when the history is thin, validated by time) and
:mod:`~analytics.denials.worklist` scores the lines not yet billed or answered. The ``denials``
command lives in :mod:`analytics.cli.denials`.
"""

from __future__ import annotations

from analytics.denials.bands import (
    BUNDLE_STATES,
    DIAGNOSIS_GROUPS,
    NO_PRESCRIPTION,
    PRESCRIPTION,
    diagnosis_group,
    filing_band,
    units_band,
    visit_band,
)
from analytics.denials.chart import calibration_chart
from analytics.denials.features import INTERACTIONS
from analytics.denials.learned import (
    LearnedRisk,
    TimeValidation,
    calibration_table,
    fit_learned_risk,
    history_frame,
    learned_risk,
)
from analytics.denials.model import DenialRiskModel, RiskReport
from analytics.denials.outcomes import OUTCOMES, label_lines, line_outcomes
from analytics.denials.rates import denial_rates, fit_beta_prior, monthly_trend, top_reasons
from analytics.denials.worklist import worklist, worklist_page, worklist_summary

__all__ = [
    "DenialRiskModel",
    "LearnedRisk",
    "TimeValidation",
    "learned_risk",
    "fit_learned_risk",
    "history_frame",
    "calibration_table",
    "calibration_chart",
    "worklist",
    "worklist_page",
    "worklist_summary",
    "RiskReport",
    "line_outcomes",
    "label_lines",
    "denial_rates",
    "monthly_trend",
    "top_reasons",
    "fit_beta_prior",
    "BUNDLE_STATES",
    "DIAGNOSIS_GROUPS",
    "INTERACTIONS",
    "NO_PRESCRIPTION",
    "OUTCOMES",
    "PRESCRIPTION",
    "diagnosis_group",
    "visit_band",
    "filing_band",
    "units_band",
]
