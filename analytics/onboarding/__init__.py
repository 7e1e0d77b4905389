"""A new practice's folder: its export, its 835s and draft payer policies, ready to confirm.

``python -m analytics init PRACTICE_DIR --export FILE --remittances DIR`` (the command is in
:mod:`analytics.cli.init`) turns what a practice-management system and a clearinghouse hand
over into the folder every other command reads:

* ``service_lines.<ext>``: a copy of the export; ``mapping.yaml``: its columns mapped to the
  toolkit's (:func:`analytics.intake.sniff_export` proposes it);
* ``remittances/``: the 835 files, whatever the clearinghouse named them (a name without an
  835 suffix gets ``.835``; a file that is not X12 is left out and listed);
* ``practice.yaml``: the practice's name, its Medicare locality and the export's file name;
* ``payers.yaml``: one draft policy per payer found in the export and the 835s
  (:func:`draft_policies`), every learned figure with the number of 835 lines it rests on and
  every guess marked ``# CONFIRM`` for the owner;
* the practice's pseudonym key (:func:`analytics.privacy.create_key`).

Running it again never replaces a file the owner may have edited (mapping.yaml, practice.yaml,
payers.yaml): one whose content would change is written beside it as ``<name>.new``
(``force=True`` replaces it). The export and the 835s, the data the command is given, are
refreshed: a newer copy replaces the old one, and new 835 files are added.

What a draft learns from the 835s, per payer (835 lines are given to the payer of their claim
in the export, matched on the claim number; lines of claims the export lacks stay with the 835
payer, N1*PR):

* the allowed amount per unit by code and year (median, with its line count): a percent of
  Medicare when every well-observed code sits within three points of one percent of the
  Medicare fee schedule at the practice's locality, else flat rates of the latest year;
* whether 97124 billed with 97140 was paid without a modifier, with 59, with XS;
* whether 97010 was ever paid;
* the cost-share pattern: deductible (PR-1), coinsurance (PR-2), copay (PR-3).

A Medicare payer is drafted from the fee schedule at the practice's locality (kind
``medicare``); the 835 medians are set beside it in comments.
"""

from __future__ import annotations

from analytics.onboarding.drafts import CONFIRM, PayerDraft, draft_policies, payer_slug, payers_yaml
from analytics.onboarding.evidence import medicare_unit_fees, remittance_lines
from analytics.onboarding.folder import (
    MAPPING_FILE,
    PAYERS_FILE,
    REMITTANCE_DIR,
    Placed,
    PracticeCheck,
    PracticeFolder,
    check_practice,
    init_practice,
    place_file,
    place_remittances,
)
from analytics.onboarding.locality import (
    LIST_LOCALITIES,
    PRACTICE_FILE,
    check_locality,
    check_practice_settings,
    known_localities,
)

__all__ = [
    "PayerDraft",
    "draft_policies",
    "payers_yaml",
    "payer_slug",
    "medicare_unit_fees",
    "remittance_lines",
    "CONFIRM",
    "known_localities",
    "check_locality",
    "check_practice_settings",
    "LIST_LOCALITIES",
    "PRACTICE_FILE",
    "MAPPING_FILE",
    "PAYERS_FILE",
    "REMITTANCE_DIR",
    "Placed",
    "PracticeFolder",
    "init_practice",
    "check_practice",
    "PracticeCheck",
    "place_file",
    "place_remittances",
]
