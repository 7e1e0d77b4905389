"""``rekey``: a new key for a practice, and its stored tables carried over to it."""

from __future__ import annotations

import argparse
import os
import stat

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.cli import rekey as rekey_command
from analytics.exceptions import PrivacyError
from analytics.privacy import (
    KEY_ENV,
    KEY_FILE,
    create_key,
    key_fingerprint,
    load_key,
    marked_fingerprint,
    pseudonym,
    pseudonym_metadata,
    pseudonymise,
    resolve_key,
)
from analytics.privacy.rekey import rekey_practice

EXPORT = "patient_id,service_date,cpt,charge\n100234,2026-03-02,97140,60\n100235,2026-03-02,97124,55\n"
ERA = "ISA*00*~CLP*C1*1*60*40**12*PCN1~NM1*QC*1*WHITE*DONNA****MI*MBR77120~SE*4*0001~"


@pytest.fixture
def practice(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    folder = tmp_path / "practice"
    (folder / "remittances").mkdir(parents=True)
    (folder / "service_lines.csv").write_text(EXPORT)
    (folder / "remittances" / "a.835").write_text(ERA)
    create_key(folder)
    key = resolve_key(load_key(folder))
    tables = tmp_path / "tables"
    tables.mkdir()
    lines = pseudonymise(pd.read_csv(folder / "service_lines.csv", dtype=str), key=key)
    arrow = pa.Table.from_pandas(lines, preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                                  **pseudonym_metadata(key, ["patient_id"])}),
                   tables / "lines.parquet")
    pd.DataFrame({"claim_id": ["C1"], "patient_key": [pseudonym("MBR77120", key)], "paid": [40.0]}).to_csv(
        tables / "claims.csv", index=False)
    return folder, tables, key


def test_rekey_moves_every_pseudonym_to_the_new_key(practice):
    folder, tables, old = practice
    done = rekey_practice(folder, [tables])
    new = resolve_key(load_key(folder))
    assert new.secret != old.secret and done.new_fingerprint == key_fingerprint(new.secret)
    assert done.old_fingerprint == old.fingerprint and done.values == 3 and len(done.files) == 2
    assert stat.S_IMODE(os.stat(folder / KEY_FILE).st_mode) == 0o600
    lines = pq.read_table(tables / "lines.parquet")
    assert lines.column("patient_id").to_pylist() == [pseudonym("100234", new), pseudonym("100235", new)]
    assert marked_fingerprint(lines.schema) == new.fingerprint
    claims = pd.read_csv(tables / "claims.csv", dtype=str)
    assert claims["patient_key"].tolist() == [pseudonym("MBR77120", new)]
    assert claims["claim_id"].tolist() == ["C1"] and claims["paid"].tolist() == ["40.0"]
    assert not list(folder.glob(f"{KEY_FILE}.*")) and not list(tables.glob(".*"))


def test_nothing_is_written_when_a_pseudonym_cannot_be_rekeyed(practice):
    folder, tables, old = practice
    pd.DataFrame({"patient_key": [pseudonym("SOMEONE-ELSE", old)]}).to_csv(tables / "z.csv", index=False)
    before = {p.name: p.read_bytes() for p in tables.iterdir()}
    with pytest.raises(PrivacyError, match=r"Nothing was re-keyed.*z\.csv \(1 value"):
        rekey_practice(folder, [tables])
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == before
    assert load_key(folder) == old.secret


def test_a_table_of_another_key_is_refused(practice, tmp_path):
    folder, tables, _ = practice
    other = resolve_key(b"x" * 32)
    frame = pseudonymise(pd.DataFrame({"patient_id": ["100234"]}), key=other)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata(pseudonym_metadata(other, ["patient_id"])), tables / "x.parquet")
    with pytest.raises(PrivacyError, match="written with the key"):
        rekey_practice(folder, [tables])


def test_the_command_prints_fingerprints_never_the_key(practice, capsys):
    folder, tables, old = practice
    parser = argparse.ArgumentParser()
    rekey_command.register_cli(parser.add_subparsers())
    args = parser.parse_args(["rekey", str(folder), "--tables", str(tables)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    new = load_key(folder)
    assert key_fingerprint(new) in out and old.fingerprint in out
    assert new.hex() not in out and old.secret.hex() not in out
