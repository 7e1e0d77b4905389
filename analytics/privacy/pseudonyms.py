"""Keyed pseudonyms: one function for the intake, the remittance patient key and ``evaluate``.

A pseudonym is the first 16 hex digits of ``HMAC-SHA-256(key, id)`` (RFC 2104, :mod:`hmac`),
with the practice's secret key (:mod:`analytics.privacy.keys`). The same id and key always
give the same pseudonym, so a patient has one pseudonym across the practice's tables and
runs; another practice's key gives unrelated pseudonyms; and without the key an id cannot be
found by hashing guesses.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError
from analytics.privacy.keys import PracticeKey, resolve_key

__all__ = ["PSEUDONYMISED_KEY", "KEY_FINGERPRINT_KEY", "pseudonym", "pseudonyms", "pseudonymise",
           "pseudonymise_table", "pseudonymise_frame", "marked_pseudonymous", "marked_fingerprint", "resolve_salt",
           "pseudonym_metadata", "rekey_values"]

#: Parquet schema metadata key listing (comma-separated) the columns that already hold
#: pseudonyms; :func:`analytics.pipeline.evaluate_parquet` does not hash them again.
PSEUDONYMISED_KEY = b"analytics.pseudonymised"
#: Parquet schema metadata key holding the fingerprint of the key the pseudonyms were made with.
KEY_FINGERPRINT_KEY = b"analytics.key_fingerprint"
_HEX = 16
_BLOCK = 64  # SHA-256 block size in bytes (RFC 2104's B)


def _secret(key: bytes | str | PracticeKey | None) -> bytes:
    return resolve_key(key).secret


def pseudonym(value: str, key: bytes | str | PracticeKey | None = None) -> str:
    """The pseudonym of one id: first 16 hex digits of ``HMAC-SHA-256(key, id)``.

    Examples
    --------
    RFC 4231 test case 2 (key ``Jefe``) gives HMAC-SHA-256 ``5bdcc146bf60754e6a04...``:

    >>> pseudonym("what do ya want for nothing?", key=b"Jefe")
    '5bdcc146bf60754e'
    """
    return hmac.digest(_secret(key), str(value).encode("utf-8"), "sha256").hex()[:_HEX]


def pseudonyms(values: np.ndarray | Sequence[object], salt: bytes | str | PracticeKey | None = None) -> np.ndarray:
    """The pseudonym of each of ``values`` (distinct ids), as :func:`pseudonymise` makes them.

    Blank ids stay blank; every other value is hashed as its text. The key's inner and outer
    SHA-256 states of HMAC (RFC 2104: the key, hashed first when longer than the 64-byte
    block, padded with zeros and XORed with 0x36 and 0x5C) are made once and copied for
    each id, which halves the cost of one ``hmac.digest`` call per id.

    Examples
    --------
    RFC 4231 test cases 2 (key ``Jefe``) and 6 (a 131-byte key, longer than the block):

    >>> pseudonyms(["what do ya want for nothing?", "", None], salt=b"Jefe").tolist()
    ['5bdcc146bf60754e', '', '']
    >>> pseudonyms(["Test Using Larger Than Block-Size Key - Hash Key First"], salt=b"\\xaa" * 131).tolist()
    ['60e431591ee0b67f']
    """
    secret = _secret(salt)
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    texts = series.astype("str").where(series.notna(), "").tolist()
    inner, outer = _hmac_states(secret)
    start_inner, start_outer = inner.copy, outer.copy
    out = []
    for text in texts:
        if not text:
            out.append("")
            continue
        h = start_inner()
        h.update(text.encode("utf-8"))
        o = start_outer()
        o.update(h.digest())
        out.append(o.hexdigest()[:_HEX])
    return np.array(out, dtype=object)


def _hmac_states(secret: bytes) -> tuple[Any, Any]:
    """The inner and outer SHA-256 states of ``HMAC-SHA-256(secret, .)`` before any message (RFC 2104)."""
    block = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    block = block.ljust(_BLOCK, b"\0")
    return (hashlib.sha256(bytes(b ^ 0x36 for b in block)), hashlib.sha256(bytes(b ^ 0x5C for b in block)))


def pseudonymise(
    lines: pd.DataFrame,
    *,
    key: bytes | str | PracticeKey | None = None,
    salt: bytes | str | PracticeKey | None = None,
    columns: Iterable[str] = ("patient_id",),
) -> pd.DataFrame:
    """Replace identifiers by their keyed pseudonyms (:func:`pseudonym`).

    The same value and key always give the same pseudonym, so visits and patient-years
    still group; another key gives unrelated pseudonyms. Blank values stay blank. Each
    distinct value is hashed once.

    Parameters
    ----------
    lines
        Any table; it is not modified.
    key
        The practice's key (:class:`~analytics.privacy.keys.PracticeKey`, bytes, or a secret
        text). Default: :func:`~analytics.privacy.keys.resolve_key` (``ANALYTICS_PRACTICE_KEY``,
        else the older ``ANALYTICS_ID_SALT``, else the public key: fine in memory and in
        tests, not for tables that leave the practice).
    salt
        Older name of ``key``.
    columns
        Columns to replace.

    Returns
    -------
    pandas.DataFrame
        A copy with the columns replaced.

    Examples
    --------
    >>> import pandas as pd
    >>> pseudonymise(pd.DataFrame({"patient_id": ["what do ya want for nothing?"]}), key=b"Jefe")["patient_id"][0]
    '5bdcc146bf60754e'
    """
    secret = resolve_key(key if key is not None else salt)
    out = lines.copy()
    for name in columns:
        if name not in out.columns:
            raise InputError(f"pseudonymise: no column {name!r}; columns are {', '.join(map(str, out.columns))}.")
        values = out[name].astype("str").fillna("")
        codes, uniques = pd.factorize(values)  # each distinct id hashed once, mapped back by its code
        hashed = pseudonyms(np.asarray(uniques, dtype=object), secret)
        out[name] = pd.Series(hashed[codes], index=out.index, dtype="str")
    return out


def resolve_salt(salt: bytes | str | PracticeKey | None, *, near: Iterable[object] = ()) -> PracticeKey:
    """The key :func:`pseudonymise` would use, read once here (so that forked processes and
    Dask workers need not see the environment or the key file)."""
    return resolve_key(salt, near=[str(p) for p in near])


def pseudonym_metadata(key: PracticeKey, columns: Sequence[str]) -> dict[bytes, bytes]:
    """Parquet schema metadata saying which columns hold pseudonyms and with which key's fingerprint."""
    return {PSEUDONYMISED_KEY: ",".join(columns).encode(), KEY_FINGERPRINT_KEY: key.fingerprint.encode()}


def marked_pseudonymous(schema) -> set[str]:
    """Columns a Parquet schema says already hold pseudonyms (written by ``intake``)."""
    value = (schema.metadata or {}).get(PSEUDONYMISED_KEY, b"")
    return {c.strip() for c in value.decode("utf-8", "replace").split(",") if c.strip()}


def marked_fingerprint(schema) -> str | None:
    """The key fingerprint a Parquet schema records for its pseudonyms, if any."""
    value = (schema.metadata or {}).get(KEY_FINGERPRINT_KEY)
    return value.decode("ascii", "replace") if value else None


def pseudonymise_table(table, column: str, salt: bytes | str | PracticeKey | None):
    """The Arrow table with ``column`` replaced by pseudonyms, each distinct id hashed once.

    The ids are dictionary-encoded (one dictionary for every chunk), the dictionary is hashed
    and the codes are kept: no per-line work outside Arrow. The column keeps its kind
    (dictionary stays dictionary, text stays text); numeric ids are hashed as their text;
    missing ids stay missing.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    index = table.column_names.index(column)
    col = table.column(index)
    kind = col.type
    is_dictionary = pa.types.is_dictionary(col.type)
    value_type = col.type.value_type if is_dictionary else col.type
    if is_dictionary:  # one dictionary per row group: decode, then code afresh
        col = pc.cast(col, value_type)
    if not (pa.types.is_string(value_type) or pa.types.is_large_string(value_type)):
        value_type = pa.string()
        col = pc.cast(col, value_type)
    coded = pc.dictionary_encode(col)
    if not coded.num_chunks:  # no lines
        return table.set_column(index, column, pa.chunked_array([], type=kind if is_dictionary else value_type))
    dictionary = coded.chunk(0).dictionary
    hashed = pa.array(pseudonyms(dictionary.to_numpy(zero_copy_only=False), salt), type=value_type)
    out = pa.chunked_array([pa.DictionaryArray.from_arrays(c.indices, hashed) for c in coded.chunks])
    if not is_dictionary:
        out = pc.cast(out, value_type)
    return table.set_column(index, column, out)


def pseudonymise_frame(frame: pd.DataFrame, column: str | None, salt: bytes | str | PracticeKey | None,
                       drop: Sequence[str]) -> pd.DataFrame:
    """The frame without the ``drop`` columns and with ``column`` replaced by pseudonyms.

    Each distinct id is hashed once and mapped back by its factorize code. A categorical
    stays categorical; other ids become text; missing ids stay missing.
    """
    out = frame.drop(columns=list(drop))
    if column is None:
        return out
    values = out[column]
    codes, uniques = pd.factorize(values)
    hashed = pseudonyms(np.asarray(uniques, dtype=object), salt)
    # equal pseudonyms (blank ids, 7 and "7") share one category
    hashed_codes, categories = pd.factorize(hashed)
    mapped = np.full(len(codes), -1, dtype=np.int64)
    present = codes >= 0
    mapped[present] = hashed_codes[codes[present]]
    if isinstance(values.dtype, pd.CategoricalDtype):
        new = pd.Categorical.from_codes(mapped, categories=pd.Index(categories, dtype="str"))
    else:
        new = pd.array(np.asarray(categories, dtype=object), dtype="str").take(mapped, allow_fill=True)
    out[column] = pd.Series(new, index=out.index, name=column)
    return out


def rekey_values(values: pd.Series, mapping: Mapping[str, str]) -> tuple[pd.Series, pd.Series]:
    """``values`` (pseudonyms made with an old key) mapped to new pseudonyms.

    Returns the new values and a boolean mask of the non-blank values the mapping does not
    know (left as they were; the caller refuses to write a table that has any).
    """
    text = values.astype("str").fillna("")
    new = text.map(mapping)
    unknown = new.isna() & text.ne("")
    return new.fillna(text).astype("str"), unknown
