"""The one list of identifying column headers, and the columns a table fills with patient data.

The intake drops these columns on read, the engine's Parquet and Dask writers leave them out
of saved tables, and the guard collects their values. Headers are compared in snake case
(:func:`header_key`: "Patient Name" is ``patient_name``). They are the HIPAA Safe Harbor
identifiers practice-management exports carry (45 CFR 164.514(b)(2)(i): names, dates of
birth, telephone numbers, e-mail and street addresses, social security, medical record,
health plan beneficiary and account numbers).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["NAME_COLUMNS", "DOB_COLUMNS", "SSN_COLUMNS", "MEMBER_ID_COLUMNS", "ACCOUNT_COLUMNS", "CONTACT_COLUMNS",
           "ID_COLUMNS", "NEVER_READ_COLUMNS", "PRIVATE_COLUMNS", "IDENTIFYING_COLUMNS", "PATIENT_HEADER_WORDS",
           "FREE_TEXT", "header_key", "is_identifying", "is_free_text", "identifying_columns", "is_name_header", "is_birth_date_header",
           "is_patient_data_header"]

#: Headers of columns holding a patient's, subscriber's or guarantor's name.
NAME_COLUMNS = ("patient_name", "name", "first_name", "last_name", "firstname", "lastname", "patient_first_name",
                "patient_last_name", "subscriber_name", "insured_name", "patient", "full_name", "patient_full_name",
                "middle_name", "guarantor_name")
#: Headers of columns holding a date of birth.
DOB_COLUMNS = ("dob", "date_of_birth", "birth_date", "birthdate", "patient_dob")
#: Headers of columns holding a social security number.
SSN_COLUMNS = ("ssn", "patient_ssn", "social_security_number")
#: Headers of columns holding a health plan member id.
MEMBER_ID_COLUMNS = ("member_id", "subscriber_id", "insured_id")
#: Headers of the practice's own patient numbers; the intake reads them as ``patient_id``
#: (then pseudonymised) when the export has no patient id column.
ACCOUNT_COLUMNS = ("mrn", "chart_number", "account_number", "patient_account", "patient_account_number",
                   "patient_number")
#: Headers of columns holding contact details.
CONTACT_COLUMNS = ("address", "street_address", "patient_address", "phone", "phone_number", "patient_phone", "email",
                   "patient_email")
#: Headers of columns holding an id of one patient; the guard collects their values.
ID_COLUMNS = ("patient_id", *MEMBER_ID_COLUMNS, *ACCOUNT_COLUMNS, *SSN_COLUMNS)
#: Headers never read, not even through an explicit mapping: names, dates of birth, SSNs.
NEVER_READ_COLUMNS: frozenset[str] = frozenset({*NAME_COLUMNS, *DOB_COLUMNS, *SSN_COLUMNS})
#: Headers the intake drops on read. Of these, only the member ids may be read deliberately,
#: by mapping one to a canonical column (e.g. ``{"Member ID": "patient_id"}``, which is then
#: pseudonymised like any patient id); names, dates of birth and SSNs never.
PRIVATE_COLUMNS: frozenset[str] = NEVER_READ_COLUMNS | {*MEMBER_ID_COLUMNS, *CONTACT_COLUMNS}
#: Every identifying header: saved tables leave these columns out (:func:`identifying_columns`).
IDENTIFYING_COLUMNS: frozenset[str] = PRIVATE_COLUMNS | set(ID_COLUMNS)

#: Words of a header (snake case) that make its column one a table fills with patient data:
#: a name, an id, a claim number. A name alone in such a cell counts as a name.
PATIENT_HEADER_WORDS = frozenset({"patient", "patients", "pt", "name", "names", "first", "last", "firstname",
                                  "lastname", "surname", "member", "subscriber", "insured", "guarantor", "account",
                                  "acct", "mrn", "chart", "claim", "pcn", "icn", "control", "client", "person",
                                  "who", "dob", "birth", "ssn"})
# Headers that describe the payer or the provider themselves ("payer", "provider_name"):
# their cells are not patient data even though "name" is one of the words above.
_ENTITY_WORDS = frozenset({"payer", "provider", "practice", "rendering", "referring", "name", "id", "npi", "plan",
                           "insurance", "carrier", "therapist", "clinician", "code", "reason", "type", "kind"})


def header_key(name: object) -> str:
    """A column header in snake case, as the header lists hold it: ``"Patient Name"`` -> ``patient_name``."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def is_identifying(header: object) -> bool:
    """True when a column with this header names or identifies a patient.

    The header is compared in snake case with :data:`IDENTIFYING_COLUMNS`; any other
    ``patient..._name`` header, and any header of a person's name or a date of birth
    (:func:`is_name_header`, :func:`is_birth_date_header`: ``Pt Name``, ``Pt DOB``) counts too.

    Examples
    --------
    >>> is_identifying("Patient SSN"), is_identifying("Pt DOB"), is_identifying("CPT")
    (True, True, False)
    """
    key = header_key(header)
    return (key in IDENTIFYING_COLUMNS or ("patient" in key and key.endswith("_name")) or is_name_header(header)
            or is_birth_date_header(header))


#: Words of a free-text header (notes, comments): such a column may hold a name, a date of
#: birth or a record number in any form, so saved tables leave it out.
FREE_TEXT = re.compile(r"(?:^|_)(?:note|notes|comment|comments|memo|remark|remarks|narrative|message|messages|"
                       r"free_text|freetext|reason_for_visit|chief_complaint|soap|subjective)(?:_|$)")


def is_free_text(header: object) -> bool:
    """True when the header is one of a free-text column (``Visit Notes``, ``Comments``, ``Memo``).

    Examples
    --------
    >>> is_free_text("Visit Notes"), is_free_text("Billing comment"), is_free_text("units_reason")
    (True, True, False)
    """
    return bool(FREE_TEXT.search(header_key(header)))


def is_name_header(header: object) -> bool:
    """True when the header is one of a person's name (``Patient Name``, ``Last Name``, ``Pt Name``).

    Examples
    --------
    >>> is_name_header("Patient Name"), is_name_header("Pt Name"), is_name_header("Payer Name")
    (True, True, False)
    """
    key = header_key(header)
    words = set(key.split("_"))
    if key in NAME_COLUMNS:
        return True
    if words & {"payer", "provider", "practice", "rendering", "referring", "plan", "insurance", "file"}:
        return False
    return bool(words & {"name", "surname", "firstname", "lastname"}) and bool(
        words & {"patient", "pt", "first", "last", "subscriber", "insured", "guarantor", "client", "full", "middle"})


def is_birth_date_header(header: object) -> bool:
    """True when the header is one of a date of birth (``DOB``, ``Pt DOB``, ``Birth Date``).

    Examples
    --------
    >>> is_birth_date_header("Pt DOB"), is_birth_date_header("Patient Birthdate"), is_birth_date_header("DOS")
    (True, True, False)
    """
    key = header_key(header)
    words = set(key.split("_"))
    return key in DOB_COLUMNS or "dob" in words or "birth" in words or "birthdate" in words or "born" in words


def is_patient_data_header(header: object) -> bool:
    """True when a table fills the column with patient data: names, patient or member ids, claim numbers.

    Headers about the payer or the provider themselves (``payer``, ``provider_name``,
    ``payer_id``) are not; a claim number the payer assigned (``payer_claim_id``) is.

    Examples
    --------
    >>> [is_patient_data_header(h) for h in ("claim_id", "Payer claim number", "Patient", "payer", "Provider name")]
    [True, True, True, False, False]
    """
    words = set(header_key(header).split("_")) - {""}
    if not words & PATIENT_HEADER_WORDS:
        return False
    return not words <= _ENTITY_WORDS


def identifying_columns(columns: Sequence[str], patient_column: str = "patient_id") -> list[str]:
    """The columns saved tables leave out: those that name or directly identify a patient,
    other than ``patient_column``, and free-text columns.

    Names, dates of birth (``DOB``, ``Pt DOB``), member, subscriber and account ids, medical
    record numbers, SSNs and contact details, recognised by their header
    (:func:`is_identifying`), and notes or comments (:func:`is_free_text`), which may hold any
    of these. The patient column itself is kept, to be pseudonymised; any other raw patient id
    column is listed.

    Examples
    --------
    >>> identifying_columns(["patient_id", "Patient Name", "Pt DOB", "member_id", "cpt", "Visit Notes"])
    ['Patient Name', 'Pt DOB', 'member_id', 'Visit Notes']
    """
    return [name for name in columns if name != patient_column and (is_identifying(name) or is_free_text(name))]
