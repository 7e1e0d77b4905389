"""Privacy for everything that leaves the practice: keyed pseudonyms and a guard for outputs.

Keys (:mod:`analytics.privacy.keys`)
    Each practice has a secret key, 32 random bytes in ``PRACTICE/.analytics-key`` (mode
    0600), made by ``python -m analytics init`` (:func:`create_key`) and read by
    :func:`load_key`; scheduled runs and Dask workers may get it from
    ``ANALYTICS_PRACTICE_KEY`` instead. The key is never written into an output; manifests
    record its fingerprint. ``python -m analytics rekey`` replaces it and re-keys stored
    tables.

Pseudonyms (:mod:`analytics.privacy.pseudonyms`)
    :func:`pseudonymise` replaces patient ids by the first 16 hex digits of
    ``HMAC-SHA-256(key, id)``. The intake, the remittance ``patient_key`` and the engine's
    Parquet and Dask writers all use this one function, so a patient has one pseudonym across
    the practice's tables and runs, and another practice's key gives unrelated ones.

Identifying columns (:mod:`analytics.privacy.headers`)
    The one list of headers (names, dates of birth, member, subscriber and account ids,
    contact details) that the intake drops, saved tables leave out and the guard collects.

The guard (:mod:`analytics.privacy.identifiers`, :mod:`analytics.privacy.guard`)
    Collects the identifiers of the inputs (ids, names, dates of birth) and finds them in
    pages, notebooks and tables: in visible text and table cells only, names when shown as
    names. The report runner refuses a report that shows one.
"""

from __future__ import annotations

from analytics.privacy.guard import (
    COMMON_WORDS,
    Matcher,
    check_outputs,
    describe_hits,
    mask,
    mask_names_in_ids,
    redact,
    scan_file,
    scan_html,
    scan_notebook,
    scan_outputs,
    scan_table,
    scan_text,
)
from analytics.privacy.headers import (
    ACCOUNT_COLUMNS,
    CONTACT_COLUMNS,
    DOB_COLUMNS,
    ID_COLUMNS,
    IDENTIFYING_COLUMNS,
    MEMBER_ID_COLUMNS,
    NAME_COLUMNS,
    NEVER_READ_COLUMNS,
    PRIVATE_COLUMNS,
    SSN_COLUMNS,
    header_key,
    identifying_columns,
    is_birth_date_header,
    is_free_text,
    is_identifying,
    is_name_header,
    is_patient_data_header,
)
from analytics.privacy.identifiers import (
    Identifiers,
    identifiers_from_835,
    identifiers_from_export,
    identifiers_from_folder,
    is_totals_label,
)
from analytics.privacy.keys import (
    DEFAULT_SALT,
    KEY_ENV,
    KEY_FILE,
    REMITTANCE_SALT,
    SALT_ENV,
    UNKEYED_FLAG,
    PracticeKey,
    command_key,
    create_key,
    find_key_file,
    key_fingerprint,
    load_key,
    parse_key,
    resolve_key,
)
from analytics.privacy.pseudonyms import (
    KEY_FINGERPRINT_KEY,
    PSEUDONYMISED_KEY,
    marked_fingerprint,
    marked_pseudonymous,
    pseudonym,
    pseudonym_metadata,
    pseudonymise,
    pseudonymise_frame,
    pseudonymise_table,
    pseudonyms,
    resolve_salt,
)

__all__ = ["Identifiers", "identifiers_from_export", "identifiers_from_835", "identifiers_from_folder", "scan_text",
           "scan_html", "scan_table", "scan_file", "scan_outputs", "scan_notebook", "redact", "check_outputs", "mask", "mask_names_in_ids",
           "describe_hits", "Matcher", "COMMON_WORDS", "is_totals_label", "pseudonym", "pseudonymise", "pseudonyms",
           "pseudonymise_table", "pseudonymise_frame", "resolve_salt", "marked_pseudonymous", "marked_fingerprint",
           "pseudonym_metadata", "identifying_columns", "header_key", "is_identifying", "is_free_text", "is_name_header",
           "is_birth_date_header", "is_patient_data_header", "SALT_ENV", "DEFAULT_SALT", "REMITTANCE_SALT",
           "PSEUDONYMISED_KEY", "KEY_FINGERPRINT_KEY", "NAME_COLUMNS", "DOB_COLUMNS", "SSN_COLUMNS",
           "MEMBER_ID_COLUMNS", "ACCOUNT_COLUMNS", "CONTACT_COLUMNS", "ID_COLUMNS", "NEVER_READ_COLUMNS",
           "PRIVATE_COLUMNS", "IDENTIFYING_COLUMNS", "KEY_FILE", "KEY_ENV", "UNKEYED_FLAG", "PracticeKey", "create_key",
           "load_key", "parse_key", "key_fingerprint", "find_key_file", "resolve_key", "command_key"]
