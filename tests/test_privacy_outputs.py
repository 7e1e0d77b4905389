"""What the commands write with a practice key: keyed pseudonyms, and never the key.

The key reaches the commands through ``ANALYTICS_PRACTICE_KEY`` (the documented way for
scheduled runs); every output file and everything printed is then searched for the key, as
hex (either case) and as raw bytes. The same export through two practices' keys gives
unrelated pseudonyms, twice through one gives the same.
"""

from __future__ import annotations

import io
import shutil
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from analytics import cli
from analytics.privacy import (
    KEY_ENV,
    create_key,
    identifiers_from_folder,
    load_key,
    pseudonym,
    pseudonyms,
    scan_outputs,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


@pytest.fixture(scope="module")
def practice(tmp_path_factory) -> Path:
    """The first 240 lines of the sample practice with an unrecognised birth-date column, a
    free-text column holding a name, and two 835s."""
    data = tmp_path_factory.mktemp("keyed") / "practice"
    (data / "remittances").mkdir(parents=True)
    shutil.copy(SAMPLE / "payers.yaml", data / "payers.yaml")
    lines = pd.read_csv(SAMPLE / "service_lines.csv", dtype=str, keep_default_na=False).head(240)
    lines["Pt DOB"] = "1961-03-04"
    lines["Visit Notes"] = "seen with Quillon Ostraviak, chart 88412"
    lines.to_csv(data / "service_lines.csv", index=False)
    for f in sorted(SAMPLE.glob("remittances/*.835"))[:2]:
        shutil.copy(f, data / "remittances" / f.name)
    create_key(data)
    return data


def _run(argv: list[str], log: Path) -> int:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli.main(argv)
    log.write_text(out.getvalue() + err.getvalue())
    return code


def _outputs(practice: Path, out: Path) -> Path:
    out.mkdir(parents=True)
    export = practice / "service_lines.csv"
    assert _run(["intake", str(export), "--out", str(out / "intake")], out / "intake.log") == 0
    assert _run(["remit", str(practice / "remittances"), "--out", str(out / "remit")], out / "remit.log") == 0
    src = out / "lines.parquet"
    pd.read_csv(export, dtype=str).assign(minutes=lambda f: f["minutes"].astype(float)).to_parquet(src)
    assert _run(["evaluate", "--lines", str(src), "--payers", str(practice / "payers.yaml"), "--out",
                 str(out / "evaluated"), "--workers", "1"], out / "evaluate.log") == 0
    src.unlink()
    return out


@pytest.fixture(scope="module")
def written(practice, tmp_path_factory):
    key = load_key(practice)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, key.hex())
        return _outputs(practice, tmp_path_factory.mktemp("out") / "a"), key


def test_no_output_or_log_holds_the_key(written):
    out, key = written
    files = [f for f in out.rglob("*") if f.is_file()]
    assert len(files) > 10
    for f in files:
        data = f.read_bytes()
        for needle in (key, key.hex().encode(), key.hex().upper().encode()):
            assert needle not in data, f


def test_every_pseudonym_is_keyed(written, practice):
    out, key = written
    lines = pd.read_csv(practice / "service_lines.csv", dtype=str)
    expected = set(pseudonyms(lines["patient_id"].unique(), key))
    assert set(pd.read_parquet(out / "intake" / "lines.parquet")["patient_id"]) <= expected
    assert set(pd.read_parquet(out / "evaluated")["patient_id"].astype(str)) == expected
    claims = pd.read_csv(next((out / "remit").rglob("*claims*.csv")), dtype=str)
    assert claims["patient_key"].str.fullmatch(r"[0-9a-f]{16}").all()
    members = {ln.split("*")[9] for f in (practice / "remittances").iterdir()
               for ln in f.read_text().replace("\n", "").split("~") if ln.startswith("NM1*QC") and len(ln.split("*")) > 9}
    assert set(claims["patient_key"]) <= {pseudonym(m, key) for m in members}


def test_birth_dates_and_free_text_are_left_out(written, practice):
    out, _ = written
    evaluated = pd.read_parquet(out / "evaluated")
    assert "Pt DOB" not in evaluated.columns and "Visit Notes" not in evaluated.columns
    assert "Pt DOB" in (out / "evaluate.log").read_text()  # listed as dropped
    ids = identifiers_from_folder(practice)
    assert "1961-03-04" in ids.dates_of_birth
    found = scan_outputs([out / "evaluated", out / "remit"], ids)
    assert found.empty, found


def test_two_practices_unrelated_one_practice_the_same(practice, written, tmp_path):
    out, key = written
    other = tmp_path / "other"
    shutil.copytree(practice, other, ignore=shutil.ignore_patterns(".analytics-key"))
    create_key(other)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, load_key(other).hex())
        assert _run(["intake", str(other / "service_lines.csv"), "--out", str(tmp_path / "b")], tmp_path / "b.log") == 0
        mp.setenv(KEY_ENV, key.hex())
        assert _run(["intake", str(practice / "service_lines.csv"), "--out", str(tmp_path / "a2")],
                    tmp_path / "a2.log") == 0
    first = pd.read_parquet(out / "intake" / "lines.parquet")["patient_id"]
    again = pd.read_parquet(tmp_path / "a2" / "lines.parquet")["patient_id"]
    elsewhere = pd.read_parquet(tmp_path / "b" / "lines.parquet")["patient_id"]
    assert first.tolist() == again.tolist()
    assert not set(first) & set(elsewhere)
