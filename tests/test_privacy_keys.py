"""Keyed pseudonyms: a secret key per practice, and pseudonyms nobody can reverse without it.

Known values: HMAC-SHA-256 test vectors of RFC 4231 (section 4.2 and 4.3, test cases 1 and 2),
whose first 16 hex digits are the pseudonyms of those messages under those keys.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.exceptions import AnalyticsWarning, PrivacyError
from analytics.privacy import (
    DEFAULT_SALT,
    KEY_ENV,
    KEY_FILE,
    PracticeKey,
    command_key,
    create_key,
    key_fingerprint,
    load_key,
    pseudonym,
    pseudonymise,
    pseudonyms,
    resolve_key,
)

DATA = Path(__file__).resolve().parent / "data"
# RFC 4231, 4.2 (test case 1) and 4.3 (test case 2): key, data, HMAC-SHA-256
RFC4231 = [
    (bytes([0x0B] * 20), b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
]


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv("ANALYTICS_ID_SALT", raising=False)


@pytest.mark.parametrize(("key", "data", "mac"), RFC4231)
def test_the_pseudonym_is_hmac_sha256(key, data, mac):
    assert pseudonym(data.decode("latin-1"), key=key) == mac[:16]
    assert pseudonyms(np.array([data.decode("latin-1"), ""], dtype=object), key).tolist() == [mac[:16], ""]


def test_create_key_is_random_private_and_never_replaced(tmp_path):
    path = create_key(tmp_path / "practice")
    assert path == tmp_path / "practice" / KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = path.read_text().strip()
    assert len(text) == 64 and bytes.fromhex(text) == load_key(tmp_path / "practice")
    other = create_key(tmp_path / "other")
    assert other.read_text() != path.read_text()  # 32 random bytes each
    with pytest.raises(PrivacyError, match="already exists.*rekey"):
        create_key(tmp_path / "practice")
    assert path.read_text().strip() == text


def test_load_key_from_the_environment_and_its_errors(tmp_path, monkeypatch):
    with pytest.raises(PrivacyError, match="init.*--unkeyed-pseudonyms"):
        load_key(tmp_path)
    assert load_key(tmp_path, required=False) is None
    monkeypatch.setenv(KEY_ENV, "ab" * 32)
    assert load_key(tmp_path) == bytes.fromhex("ab" * 32)
    create_key(tmp_path)
    with pytest.raises(PrivacyError, match="different keys"):
        load_key(tmp_path)
    monkeypatch.setenv(KEY_ENV, "not a key")
    with pytest.raises(PrivacyError, match="64 hex digits"):
        load_key(None)


def test_the_fingerprint_and_the_text_of_a_key_do_not_show_it(tmp_path):
    key = load_key(create_key(tmp_path).parent)
    held = resolve_key(key)
    assert held.fingerprint == key_fingerprint(key) and len(held.fingerprint) == 12
    shown = repr(held) + str(held) + str(held.describe())
    assert key.hex() not in shown and key.hex()[:12] not in shown
    assert key_fingerprint(key) not in key.hex()


def test_commands_refuse_without_a_key_or_warn_when_told(tmp_path):
    export = tmp_path / "practice" / "service_lines.csv"
    export.parent.mkdir()
    export.write_text("patient_id\nP1\n")
    with pytest.raises(PrivacyError, match=r"init .*--unkeyed-pseudonyms"):
        command_key([export])
    with pytest.warns(AnalyticsWarning, match="reverse"):
        public = command_key([export], unkeyed=True)
    assert not public.keyed and public.secret == DEFAULT_SALT.encode()
    create_key(export.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        keyed = command_key([export])
    assert keyed.keyed and keyed.secret == load_key(export.parent)
    # an 835 in PRACTICE/remittances/ finds the practice's key too
    (export.parent / "remittances").mkdir()
    era = export.parent / "remittances" / "a.835"
    era.write_text("ISA*")
    assert command_key([era]).secret == keyed.secret
    with pytest.raises(PrivacyError, match="--key-file"):
        command_key([export], key_file=tmp_path / "missing")


def _accounts() -> np.ndarray:
    return np.char.zfill(np.arange(1_000_000).astype(str), 6).astype(object)


@pytest.mark.slow
def test_no_six_digit_account_number_is_found_without_the_key(tmp_path):
    """An attacker with the outputs and the code hashes every 6-digit account number with
    every key the code holds (the public key, the old unkeyed sha256 scheme): none of the
    pseudonyms of a keyed practice comes back; with the key all of them do."""
    rng = np.random.default_rng(20)
    accounts = rng.choice(1_000_000, size=500, replace=False)
    lines = pd.DataFrame({"patient_id": np.char.zfill(accounts.astype(str), 6)})
    folder = tmp_path / "practice"
    key = resolve_key(load_key(create_key(folder).parent))
    out = set(pseudonymise(lines, key=key)["patient_id"])
    every = _accounts()
    public = set(pseudonyms(every, DEFAULT_SALT))
    assert not out & public
    old_scheme = {hashlib.sha256((DEFAULT_SALT + a).encode()).hexdigest()[:16] for a in every}
    assert not out & old_scheme
    # the enumeration works: unkeyed pseudonyms are all recovered, keyed ones only with the key
    assert set(pseudonymise(lines)["patient_id"]) <= public
    assert out <= set(pseudonyms(every, key))


def test_same_export_two_practices_unrelated_one_practice_same(tmp_path):
    lines = pd.DataFrame({"patient_id": ["100234", "100235", "P100077", "100234"]})
    one = resolve_key(load_key(create_key(tmp_path / "a").parent))
    two = resolve_key(load_key(create_key(tmp_path / "b").parent))
    first = pseudonymise(lines, key=one)["patient_id"]
    again = pseudonymise(lines, key=resolve_key(load_key(tmp_path / "a")))["patient_id"]
    other = pseudonymise(lines, key=two)["patient_id"]
    assert first.tolist() == again.tolist()
    assert first[0] == first[3] and first.nunique() == 3
    assert not set(first) & set(other)


def test_one_pseudonym_for_intake_remittance_and_evaluate(tmp_path):
    """The intake, the 835 patient key and the engine's writers give one id one pseudonym."""
    import pyarrow as pa

    from analytics.privacy import pseudonymise_frame, pseudonymise_table
    from analytics.remittance import read_835

    key = PracticeKey(bytes(range(32)), "test")
    frame = pd.DataFrame({"patient_id": ["SYNMBR001"]})
    expected = pseudonym("SYNMBR001", key)
    assert pseudonymise(frame, key=key)["patient_id"][0] == expected
    assert pseudonymise_frame(frame, "patient_id", key, [])["patient_id"][0] == expected
    assert pseudonymise_table(pa.Table.from_pandas(frame), "patient_id", key).column(0)[0].as_py() == expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        remit = read_835(DATA / "x12-835" / "synthetic_835_massage.edi", salt=key)
    assert set(remit.claims["patient_key"]) == {expected}
