"""The export headers the intake knows: which column each names, and which are never read.

Headers are compared in snake case (:func:`analytics.privacy.header_key`: ``"Date of
Service"`` is ``date_of_service``, ``"Account #"`` is ``account``). A header names a
canonical column (:data:`analytics.schemas.CANONICAL_COLUMNS`) directly, through
:data:`HEADER_ALIASES`, or through a numbered pattern (``Dx 1`` .. ``Dx 12``, ``Mod 1`` ..
``Mod 4``). Columns the rules engine reads besides the canonical ones are
:data:`ENGINE_COLUMNS`. Everything else is ignored, with a reason (:func:`ignore_reason`).
"""

from __future__ import annotations

import re

from analytics.privacy import (
    CONTACT_COLUMNS,
    DOB_COLUMNS,
    MEMBER_ID_COLUMNS,
    NAME_COLUMNS,
    SSN_COLUMNS,
    header_key,
    is_identifying,
)
from analytics.schemas import CANONICAL_COLUMNS

__all__ = [
    "HEADER_ALIASES",
    "ENGINE_COLUMNS",
    "MODIFIER_COLUMNS",
    "JOINED_TARGETS",
    "TARGETS",
    "header_target",
    "money_header",
    "ignore_reason",
    "column_letter",
    "unnamed_header",
]

#: Separate modifier columns, merged into ``modifiers``.
MODIFIER_COLUMNS = ("modifier_1", "modifier_2", "modifier_3", "modifier_4")
#: Columns the rules engine reads when present, kept beside the canonical ones:
#: authorisation on file (CARC 197), visits already used this year (visit limits), therapy
#: dollars already allowed this year (KX threshold) and deductible left.
ENGINE_COLUMNS = ("prior_auth", "visits_before", "therapy_allowed_before", "deductible_remaining")
#: Targets that several export columns may fill; their values are joined in column order
#: (``Dx 1`` .. ``Dx 4`` into one diagnosis list, ``Mod 1`` and ``Mod 2`` into one modifier list).
JOINED_TARGETS = frozenset({"dx_codes", "modifiers"})
#: Every name a column can be mapped to.
TARGETS = frozenset(CANONICAL_COLUMNS) | frozenset(MODIFIER_COLUMNS) | frozenset(ENGINE_COLUMNS)

#: Export headers (snake case) for the toolkit's columns. A mapping file wins over these.
HEADER_ALIASES = {
    "line_control_number": "line_id",
    "row_id": "line_id",
    "claim": "claim_id",
    "claim_number": "claim_id",
    "claim_no": "claim_id",
    "visit_number": "visit_id",
    "encounter_id": "visit_id",
    "patient_account": "patient_id",
    "patient_account_number": "patient_id",
    "account_number": "patient_id",
    "account": "patient_id",
    "account_no": "patient_id",
    "acct": "patient_id",
    "acct_no": "patient_id",
    "patient_number": "patient_id",
    "chart_number": "patient_id",
    "mrn": "patient_id",
    "date_of_service": "service_date",
    "dos": "service_date",
    "service_date_from": "service_date",
    "dos_from": "service_date",
    "svc_date": "service_date",
    "visit_date": "service_date",
    "rendering_provider_id": "provider_id",
    "rendering_provider": "provider_id",
    "rendering_provider_name": "provider_id",
    "provider": "provider_id",
    "provider_name": "provider_id",
    "therapist": "provider_id",
    "therapist_id": "provider_id",
    "clinician": "provider_id",
    "provider_credential": "provider_type",
    "credential": "provider_type",
    "credentials": "provider_type",
    "payer": "payer_id",
    "payer_code": "payer_id",
    "payer_name": "payer_id",
    "insurance_id": "payer_id",
    "insurance": "payer_id",
    "insurance_name": "payer_id",
    "primary_insurance": "payer_id",
    "primary_payer": "payer_id",
    "primary_carrier": "payer_id",
    "carrier": "payer_id",
    "cpt_code": "cpt",
    "cpt_hcpcs": "cpt",
    "procedure_code": "cpt",
    "procedure": "cpt",
    "proc_code": "cpt",
    "proc": "cpt",
    "hcpcs": "cpt",
    "hcpcs_code": "cpt",
    "mins": "minutes",
    "min": "minutes",
    "treatment_minutes": "minutes",
    "time_minutes": "minutes",
    "modifier": "modifiers",
    "modifier_s": "modifiers",
    "mods": "modifiers",
    "dx": "dx_codes",
    "dx_code": "dx_codes",
    "dx_codes": "dx_codes",
    "diagnosis": "dx_codes",
    "diagnosis_codes": "dx_codes",
    "diagnoses": "dx_codes",
    "icd10": "dx_codes",
    "icd_10": "dx_codes",
    "icd10_codes": "dx_codes",
    "charges": "charge",
    "charge_amount": "charge",
    "billed_amount": "charge",
    "fee": "charge",
    "total_charge": "charge",
    "total_charges": "charge",
    "charge_amt": "charge",
    "amount_billed": "charge",
    "billed_charges": "charge",
    "units": "units_billed",
    "unit": "units_billed",
    "billed_units": "units_billed",
    "days_or_units": "units_billed",
    "body_part": "body_region",
    "region": "body_region",
    "rx_on_file": "prescription_on_file",
    "rx": "prescription_on_file",
    "prescription": "prescription_on_file",
    "referral_on_file": "prescription_on_file",
    # a physician's order for massage or therapy goes by many names in practice software
    "script": "prescription_on_file",
    "script_on_file": "prescription_on_file",
    "rx_script": "prescription_on_file",
    "dr_script": "prescription_on_file",
    "md_script": "prescription_on_file",
    "has_rx": "prescription_on_file",
    "has_script": "prescription_on_file",
    "prescription_received": "prescription_on_file",
    "physician_order": "prescription_on_file",
    "doctor_order": "prescription_on_file",
    "order_on_file": "prescription_on_file",
    "md_order_on_file": "prescription_on_file",
    "doctor_s_order": "prescription_on_file",
    "physician_s_order": "prescription_on_file",
    "submitted_date": "submission_date",
    "date_submitted": "submission_date",
    "date_billed": "submission_date",
    "billed_date": "submission_date",
    "bill_date": "submission_date",
    "pos": "place_of_service",
    "npi": "rendering_npi",
    "rendering_provider_npi": "rendering_npi",
    "referring_provider_npi": "referring_npi",
    "auth": "prior_auth",
    "authorization": "prior_auth",
    "authorisation": "prior_auth",
    "prior_authorization": "prior_auth",
    "auth_on_file": "prior_auth",
}

# "Mod 1", "Modifier 2", "mod_3" -> modifier_n; "Dx 1" .. "Dx 12", "Diagnosis 3", "ICD 10 Code 2".
_MODIFIER_HEADER = re.compile(r"mod(?:ifier)?_?([1-4])")
_DX_HEADER = re.compile(r"(?:dx|diag|diagnosis|icd(?:_?10)?)(?:_?code)?_?([1-9]|1[0-2])")
# Headers of free text, which may hold anything (names, phone numbers, dates of birth).
_FREE_TEXT = re.compile(r"(?:^|_)(?:note|notes|comment|comments|memo|remark|remarks|description|narrative|"
                        r"message|text|reason_for_visit|chief_complaint)(?:_|$)")
_PRIVATE_KINDS = (
    (NAME_COLUMNS, "a person's name"),
    (DOB_COLUMNS, "a date of birth"),
    (SSN_COLUMNS, "a social security number"),
    (MEMBER_ID_COLUMNS, "a member id"),
    (CONTACT_COLUMNS, "contact details"),
)


def header_target(header: str) -> tuple[str | None, int]:
    """The column a header names and how surely: ``(target, rank)``, rank 1 for the
    toolkit's own name, 2 for a known export spelling; ``(None, 0)`` for neither.

    Examples
    --------
    >>> header_target("Date of Service"), header_target("Dx 3"), header_target("Modifier 2")
    (('service_date', 2), ('dx_codes', 2), ('modifier_2', 1))
    >>> header_target("Notes")
    (None, 0)
    """
    key = header_key(header)
    if key in TARGETS:
        return key, 1
    if match := _MODIFIER_HEADER.fullmatch(key):
        return f"modifier_{match[1]}", 1
    if key in HEADER_ALIASES:
        return HEADER_ALIASES[key], 2
    if _DX_HEADER.fullmatch(key):
        return "dx_codes", 2
    return None, 0


#: Header words of a column of dollars: its whole numbers are dollars, never minutes or units.
_MONEY_WORDS = re.compile(
    r"(?:^|_)(?:amount|amt|charges?|charged|billed|fees?|price|cost|total|net|paid|payments?|pmt|pymt|balance|bal|"
    r"due|owed|allowed|adjustments?|adj|write_?offs?|writeoff|copay|co_pay|coins|coinsurance|deductible|"
    r"receipts?|revenue|dollars?|usd|ins_pd|pt_pd|pd)(?:_|$)")
#: Of those, the ones of money paid, owed, allowed or adjusted: what the 835s say, not the charge.
_PAID_WORDS = re.compile(
    r"(?:^|_)(?:paid|payments?|pmt|pymt|balance|bal|due|owed|allowed|adjustments?|adj|write_?offs?|writeoff|"
    r"copay|co_pay|coins|coinsurance|deductible|receipts?|net|ins_pd|pt_pd|pd)(?:_|$)")

#: Header words of time or counts: "Total Minutes" and "Units Billed" are not dollars.
_COUNT_WORDS = re.compile(r"(?:^|_)(?:mins?|minutes?|time|units?|qty|quantity|duration|hours?|hrs?|visits?|count|"
                          r"days?|age|sessions?)(?:_|$)")


def money_header(header: str) -> str | None:
    """``"charge"`` for a header naming the amount billed, ``"paid"`` for one naming money paid,
    owed, allowed or adjusted, None for any other header: a column of whole numbers under such a
    header holds dollars ($85), not minutes or units.

    Examples
    --------
    >>> money_header("Amount"), money_header("Total Charges"), money_header("Ins Paid"), money_header("Total Minutes")
    ('charge', 'charge', 'paid', None)
    """
    key = header_key(header)
    if not _MONEY_WORDS.search(key) or _COUNT_WORDS.search(key):  # "Total Minutes", "Units Billed"
        return None
    return "paid" if _PAID_WORDS.search(key) else "charge"


def ignore_reason(header: str) -> str:
    """Why a column the toolkit does not use is left out, in words for the owner.

    Examples
    --------
    >>> print(ignore_reason("Patient Name"))
    identifies a patient (a person's name): never read
    >>> print(ignore_reason("Visit Notes"))
    free text (it may hold names or dates of birth): not read
    """
    key = header_key(header)
    for headers, kind in _PRIVATE_KINDS:
        if key in headers:
            return f"identifies a patient ({kind}): never read"
    if is_identifying(header) or re.search(r"(?:^|_)(?:dob|birth|ssn)(?:_|$)", key):
        return "identifies a patient: never read"
    if _FREE_TEXT.search(key):
        return "free text (it may hold names or dates of birth): not read"
    return "not used by the toolkit (list it under keep: in mapping.yaml to keep it as text)"


def column_letter(position: int) -> str:
    """The spreadsheet letter of a 0-based column position: 0 -> ``A``, 26 -> ``AA``.

    Examples
    --------
    >>> column_letter(0), column_letter(6), column_letter(27)
    ('A', 'G', 'AB')
    """
    letters = ""
    n = position + 1
    while n:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def unnamed_header(position: int) -> str:
    """The name the intake gives a column whose header cell is blank.

    Examples
    --------
    >>> unnamed_header(6)
    'unnamed column 7 (G)'
    """
    return f"unnamed column {position + 1} ({column_letter(position)})"
