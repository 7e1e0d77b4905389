"""Coding scenarios: every documented way to report one session, priced side by side.

A practice owner asks: "We did 30 minutes of massage (97124) and 30 of manual therapy
(97140). Do we bill both with 59, with XS, or only one of them? What does each payer pay,
what does the patient owe, and what gets denied?" This package answers it for one
:class:`Session`:

* :func:`alternatives` lists the legitimate ways to report what the record shows: subsets
  of the services performed, the NCCI modifier on the column-2 code of each code pair
  present (none, 59, XS, XU; XE when a separate encounter is recorded), and the hot/cold
  pack (97010) on or off when one was applied. No alternative names a code that was not
  performed, and units always come from the documented minutes of the services it
  includes. An alternative whose modifier needs documentation the session lacks is kept,
  marked ``supported=False``, with what is missing in words: it must not be billed unless
  the record shows it.
* :func:`compare` prices every alternative for every payer in one pass of the rules engine
  (:func:`analytics.pipeline.evaluate`) and returns a :class:`Comparison`: one row per
  alternative x payer x line, each with its units, edits, allowed amount, payer and
  patient parts, denial probability, expected collections and an explanation in words;
  totals per alternative x payer; and a chart.
* :func:`claim_form` shows an alternative as the CMS-1500 would carry it (items 17, 21
  and 24), as a table and as CSV.

Modules, one job each: :mod:`~analytics.scenarios.session` (the documented session and its
checks), :mod:`~analytics.scenarios.catalog` (code catalog and NCCI pairs),
:mod:`~analytics.scenarios.alternatives`, :mod:`~analytics.scenarios.tables` (the lines,
per-line table and totals of a comparison), :mod:`~analytics.scenarios.chart`,
:mod:`~analytics.scenarios.compare`, :mod:`~analytics.scenarios.claim_form`,
:mod:`~analytics.scenarios.practice` (the practice-level what-if over the period's actual
visits), :mod:`~analytics.scenarios.visit_shapes` (visits the payer rules price alike, so the
what-if prices each shape once) and :mod:`~analytics.scenarios.explorer`. :func:`learned_risk` (from
:mod:`analytics.denials.learned`) gives the chance of denial learned from a practice's
history, for ``compare(..., risk=...)`` and :func:`practice_whatif`. The ``compare`` command is in
:mod:`analytics.cli.compare`.

Sources: FACTS sec. 3 (units), sec. 4 (NCCI pairs and modifiers; CMS accepts 59 or the
more specific X{EPSU} subsets), sec. 8 (CMS-1500 items, code sets), sec. 9 (ICD-10-CM).
"""

from __future__ import annotations

from analytics.denials.learned import learned_risk
from analytics.scenarios.alternatives import MODIFIER_CHOICES, Alternative, alternatives
from analytics.scenarios.claim_form import ClaimForm, claim_form
from analytics.scenarios.compare import (
    Comparison,
    compare,
    practice_defaults,
    with_fee_schedule,
)
from analytics.scenarios.explorer import explorer
from analytics.scenarios.practice import PracticeWhatIf, common_session, practice_whatif
from analytics.scenarios.session import SAMPLE_CHARGES, Referring, Service, Session

__all__ = [
    "Service",
    "Referring",
    "Session",
    "Alternative",
    "Comparison",
    "ClaimForm",
    "alternatives",
    "compare",
    "claim_form",
    "with_fee_schedule",
    "practice_defaults",
    "explorer",
    "learned_risk",
    "practice_whatif",
    "PracticeWhatIf",
    "common_session",
    "MODIFIER_CHOICES",
    "SAMPLE_CHARGES",
]


