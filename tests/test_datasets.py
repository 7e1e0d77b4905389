"""Tests for the synthetic practice generator (analytics/datasets.py).

The generator is checked against what it promises: the same seed gives the same files, the
rules engine adjudicates every line, the saved truth is exactly the logistic model that drew
the random denials, the 835 files are real 005010X221A1 that the reader balances, and no
person is named anywhere.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analytics.cli import main
from analytics.datasets import FEE_SHEET, LINE_COLUMNS, generate_practice
from analytics.denials import (
    BUNDLE_STATES,
    DIAGNOSIS_GROUPS,
    diagnosis_group,
    filing_band,
    line_outcomes,
    units_band,
    visit_band,
)
from analytics.pipeline import evaluate
from analytics.remittance import read_835_many

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def practice():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return generate_practice(1500, seed=21)


@pytest.fixture(scope="module")
def written(practice, tmp_path_factory):
    out = tmp_path_factory.mktemp("practice")
    practice.write(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remit, errors = read_835_many(out / "remittances")
    return out, remit, errors, caught


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


# --- determinism --------------------------------------------------------------------------


def test_same_seed_same_practice_other_seed_other_practice(practice):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = generate_practice(1500, seed=21)
        other = generate_practice(1500, seed=22)
    _frames_equal(practice.lines, again.lines)
    _frames_equal(practice.truth, again.truth)
    _frames_equal(practice.adjudicated, again.adjudicated)
    assert not practice.lines["minutes"].equals(other.lines["minutes"])


def test_sample_regenerates_byte_for_byte(tmp_path):
    """data/sample is exactly what its seed and visit count generate: every file, every byte."""
    meta = yaml.safe_load((SAMPLE / "practice.yaml").read_text())
    code = main(
        [
            "sample",
            "--out",
            str(tmp_path),
            "--seed",
            str(meta["seed"]),
            "--visits",
            str(meta["visits"]),
            "--start",
            meta["start"],
            "--months",
            str(meta["months"]),
        ]
    )
    assert code == 0
    ours = sorted(p.relative_to(SAMPLE) for p in SAMPLE.rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert ours == fresh
    different = [str(p) for p in ours if (SAMPLE / p).read_bytes() != (tmp_path / p).read_bytes()]
    assert different == []


def test_sample_is_small_and_complete():
    files = [p for p in SAMPLE.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 3_000_000
    assert (SAMPLE / "service_lines.csv").exists() and (
        SAMPLE / "truth" / "line_truth.csv"
    ).exists()
    names = [p.name for p in (SAMPLE / "remittances").iterdir()]
    assert names and all(re.fullmatch(r"[a-z_]+_\d{4}-W\d{2}\.835", n) for n in names)


# --- the practice -------------------------------------------------------------------------


def test_lines_have_the_export_columns_and_plausible_values(practice):
    lines = practice.lines
    assert tuple(lines.columns) == LINE_COLUMNS
    assert set(lines["provider_type"].astype(str)) == {"lmt", "pt", "dc"}
    assert set(lines["cpt"].astype(str)) <= {"97124", "97140", "97112", "97110", "97010"}
    assert set(lines["payer_id"].astype(str)) == set(practice.payers)
    timed = lines["cpt"].astype(str) != "97010"
    assert lines.loc[timed, "minutes"].notna().all() and lines.loc[~timed, "minutes"].isna().all()
    assert lines["line_id"].is_unique
    # a claim is one visit: one patient, date, provider and payer
    per_claim = lines.groupby("claim_id", observed=True)[
        ["patient_id", "service_date", "provider_id", "payer_id"]
    ]
    assert (per_claim.nunique() == 1).all().all()
    # charges are the fee sheet times the units billed
    units = practice.adjudicated["units"].to_numpy()
    fee = lines["cpt"].astype(str).map(FEE_SHEET).to_numpy(dtype=float)
    np.testing.assert_allclose(lines["charge"].to_numpy(dtype=float), np.round(fee * units, 2))


def test_no_person_is_named(practice, written):
    out, *_ = written
    assert practice.lines["patient_id"].astype(str).str.fullmatch(r"P\d+").all()
    assert practice.patients["member_id"].astype(str).str.fullmatch(r"M\d+").all()
    assert not {"name", "first_name", "last_name", "patient_name"} & set(practice.patients.columns)
    for path in (out / "remittances").iterdir():
        for seg in path.read_text().split("~"):
            if seg.strip().startswith("NM1*QC"):
                parts = seg.strip().split("*")
                assert parts[3:8] == ["", "", "", "", ""] and parts[8] == "MI"


def test_diagnoses_follow_the_groups_and_the_seventh_character(practice):
    lines = practice.lines
    groups = diagnosis_group(lines["dx_codes"])
    assert set(groups) <= set(DIAGNOSIS_GROUPS)
    pat = practice.patients.set_index("patient_id")["dx_group"]
    np.testing.assert_array_equal(groups, lines["patient_id"].astype(str).map(pat).to_numpy())
    injury = lines[groups == "injury"]
    first = (
        injury.groupby("patient_id", observed=True)["service_date"].transform("min")
        == injury["service_date"]
    )
    primary = injury["dx_codes"].astype(str).str.split(",").str[0]
    assert primary[first].str.endswith("A").all() and primary[~first].str.endswith("D").all()


def test_submission_lags_reach_past_timely_filing(practice):
    t = practice.truth
    assert (t["lag_days"] <= 7).mean() > 0.6
    late = practice.adjudicated["carc"].astype(str) == "29"
    assert late.any()
    hmo = (t["payer_id"].astype(str) == "hmo_capped") & (t["lag_days"] > 90)
    assert (
        practice.adjudicated.loc[hmo, "disposition"].astype(str).isin(["denied", "not_billed"])
    ).all()


# --- adjudication and truth ----------------------------------------------------------------


def test_the_rules_engine_adjudicates_every_submitted_line(practice):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = evaluate(practice.lines, practice.payers)
    a = practice.adjudicated
    known = a["submitted"].to_numpy() | (a["payer_id"].astype(str) == "cash").to_numpy()
    for col in ("units", "disposition", "carc", "allowed"):
        np.testing.assert_array_equal(
            again[col].astype(str).to_numpy()[known], a[col].astype(str).to_numpy()[known]
        )


def test_truth_is_consistent(practice):
    t, a = practice.truth, practice.adjudicated
    assert t["p_true"].between(0, 1).all() and t["p_random"].between(0, 1).all()
    source = t["source"].astype(str)
    rule = source == "rule"
    assert (t.loc[rule, "p_true"] == 1).all() and t.loc[rule, "denied"].all()
    assert (t.loc[source.isin(["self_pay", "not_billed"]), "p_true"] == 0).all()
    assert not t.loc[source.isin(["self_pay", "not_billed"]), "denied"].any()
    random = source == "random"
    assert t.loc[random, "p_true"].between(0.001, 0.999).all()
    # denied lines carry a mechanism and the CARC the 835 shows
    assert (t.loc[t["denied"], "mechanism"].astype(str) != "").all()
    np.testing.assert_array_equal(
        t.loc[t["denied"], "carc"].astype(str), a.loc[t["denied"], "remit_carc"].astype(str)
    )
    # random denials occur at the rate the truth says (binomial, 4 standard deviations)
    p = t.loc[random, "p_true"].to_numpy()
    k = t.loc[random, "denied"].sum()
    assert abs(k - p.sum()) < 4 * np.sqrt((p * (1 - p)).sum())


def test_truth_recomputes_from_the_published_mechanism_table(practice):
    """logit(p_random) of every billed insured line is the sum of the published terms that
    apply, with the features recomputed here from the exported lines."""
    t, a, mech = practice.truth, practice.adjudicated, practice.mechanisms
    lines = practice.lines
    sel = t["source"].astype(str).isin(["random", "rule"]).to_numpy()
    limits = {pid: (p.visit_limit, p.timely_filing_days) for pid, p in practice.payers.items()}
    payer = lines["payer_id"].astype(str).to_numpy()
    visit_limit = np.array([limits[x][0] or np.nan for x in payer], dtype=float)
    filing_limit = np.array([limits[x][1] or np.nan for x in payer], dtype=float)
    visit_key = lines["claim_id"].astype(str)
    codes_in_visit = lines.groupby(visit_key)["cpt"].transform(lambda s: ",".join(s.astype(str)))
    mods = lines["modifiers"].astype(str)
    paired = (lines["cpt"].astype(str) == "97124") & codes_in_visit.str.contains("97140")
    bundle = np.where(
        ~paired,
        BUNDLE_STATES[0],
        np.where(
            mods.str.contains("XS"),
            BUNDLE_STATES[3],
            np.where(mods.str.contains("59"), BUNDLE_STATES[2], BUNDLE_STATES[1]),
        ),
    )
    feats = {
        "payer_id": payer,
        "cpt": lines["cpt"].astype(str).to_numpy(),
        "ptype": lines["provider_type"].astype(str).to_numpy(),
        "dx": diagnosis_group(lines["dx_codes"]),
        "rx": np.where(
            lines["prescription_on_file"], "prescription on file", "no prescription on file"
        ),
        "bundle": bundle,
        "units": units_band(a["units"].to_numpy()),
        "visit": visit_band(t["visit_number"].to_numpy(), visit_limit),
        "filing": filing_band(t["lag_days"].to_numpy(), filing_limit),
    }
    eta = np.zeros(len(lines))
    for r in mech.itertuples(index=False):
        hit = feats[r.feature] == r.level
        if r.with_feature:
            hit = hit & (feats[r.with_feature] == r.with_level)
        eta += np.where(hit, r.log_odds, 0.0)
    expected = 1 / (1 + np.exp(-eta))
    np.testing.assert_allclose(t["p_random"].to_numpy()[sel], expected[sel], atol=1e-6)


def test_one_payer_underpays_some_codes_in_some_months(practice):
    t, s = practice.truth, practice.settings
    under = t[t["underpaid"]]
    assert len(under) > 0
    assert set(under["payer_id"].astype(str)) == {s["underpaying_payer"]}
    codes = practice.lines.loc[under.index, "cpt"].astype(str)
    months = pd.to_datetime(practice.lines.loc[under.index, "service_date"]).dt.strftime("%Y-%m")
    assert set(codes) <= set(s["underpaid_codes"]) and set(months) <= set(s["underpaid_months"])
    np.testing.assert_allclose(under["paid_allowed"], np.round(under["contract_allowed"] / 1.10, 2))
    assert (under["underpaid_amount"] > 0).all()


# --- 835 files ---------------------------------------------------------------------------------


def test_remittances_read_back_and_balance(practice, written):
    out, remit, errors, caught = written
    assert errors.empty
    assert not [str(w.message) for w in caught], "the reader warned (SE count, balance, dates ...)"
    assert remit.balance["balanced"].all()
    a = practice.adjudicated
    billed = a[a["adjudicated"]]
    assert len(remit.service_lines) == len(billed)
    key = remit.service_lines["line_control_number"].astype(str)
    assert key.is_unique and set(key) == set(billed["line_id"].astype(str))
    got = remit.service_lines.set_index("line_control_number")
    want = billed.set_index(billed["line_id"].astype(str))
    np.testing.assert_allclose(got.loc[want.index, "paid"], want["remit_paid"])
    np.testing.assert_allclose(got.loc[want.index, "charge"], want["charge"])
    np.testing.assert_allclose(got.loc[want.index, "allowed"], want["remit_allowed"])
    np.testing.assert_allclose(got.loc[want.index, "paid_units"], want["units"])
    # each file is one payer and one ISO week of payment
    for path in out.joinpath("remittances").iterdir():
        text = path.read_text()
        payer, week = path.stem.rsplit("_", 1)
        assert f"REF*2U*{payer}~" in text
        bpr = re.search(r"BPR\*[^~]*\*(\d{8})~", text).group(1)
        iso = pd.Timestamp(bpr).isocalendar()
        assert week == f"{iso.year}-W{iso.week:02d}"


def test_remittance_structure_and_codes(written):
    out, remit, _, _ = written
    text = next(iter(sorted((out / "remittances").glob("medicare_*.835")))).read_text()
    segs = [s.strip() for s in text.split("~") if s.strip()]
    assert len(segs[0]) == 105 and segs[0].startswith("ISA*00*")  # fixed-width ISA (+ terminator)
    tags = [s.split("*")[0] for s in segs]
    assert tags[:3] == ["ISA", "GS", "ST"] and tags[-3:] == ["SE", "GE", "IEA"]
    for tag in ("BPR", "TRN", "DTM", "N1", "LX", "CLP", "NM1", "SVC", "CAS", "REF", "AMT"):
        assert tag in tags
    st, se = tags.index("ST"), tags.index("SE")
    assert segs[se].split("*")[1] == str(se - st + 1)
    adj = remit.adjustments
    pairs = set(zip(adj["group_code"], adj["carc"], strict=True))
    assert {("CO", "45"), ("PR", "1"), ("PR", "2"), ("PR", "3"), ("CO", "59")} <= pairs
    assert ("PR", "119") in pairs and ("CO", "97") in pairs
    assert remit.plb["reason"].eq("L6").any()


def test_line_outcomes_of_the_remittances_match_the_truth(practice, written):
    _, remit, _, _ = written
    outcomes = line_outcomes(remit).set_index("line_control_number")
    t = practice.truth.set_index(practice.truth["line_id"].astype(str))
    t = t.loc[outcomes.index]
    np.testing.assert_array_equal(
        outcomes["outcome"].eq("denied").to_numpy(), t["denied"].to_numpy()
    )
    assert not outcomes["outcome"].eq("partially_denied").any()
    denied = t["denied"].to_numpy()
    np.testing.assert_array_equal(
        outcomes["carc"].to_numpy()[denied], t["carc"].astype(str).to_numpy()[denied]
    )
    # the category from the catalog is the mechanism the generator chose
    np.testing.assert_array_equal(
        outcomes["category"].to_numpy()[denied], t["mechanism"].astype(str).to_numpy()[denied]
    )


# --- command line --------------------------------------------------------------------------------


def test_cli_sample_and_no_835(tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path / "a"), "--seed", "4", "--visits", "300"]) == 0
    assert "300 visits" in capsys.readouterr().out
    assert (tmp_path / "a" / "payers.yaml").exists() and list(
        (tmp_path / "a" / "remittances").glob("*.835")
    )
    assert (
        main(["sample", "--out", str(tmp_path / "b"), "--seed", "4", "--visits", "300", "--no-835"])
        == 0
    )
    b = tmp_path / "b"
    assert not (b / "remittances").exists()
    lines = pd.read_parquet(b / "service_lines.parquet")
    truth = pd.read_parquet(b / "truth" / "line_truth.parquet")
    assert len(lines) == len(truth) and list(lines.columns) == list(LINE_COLUMNS)


def test_bad_arguments_are_explained():
    from analytics.exceptions import InputError

    with pytest.raises(InputError, match="at least 1"):
        generate_practice(0, seed=1)
    with pytest.raises(InputError, match="reference data prices only"):
        generate_practice(100, seed=1, start="2024-11-01", months=3)


def test_remittances_pass_an_independent_x12_validator(written, tmp_path):
    """pyx12 checks the files against its 005010X221A1 map (segments, loops, codes, counts).

    One file per payer. pyx12 4.0 re-enters its summary wrapper at each PLB segment although
    the map itself allows more than one PLB (max use >1), so files with two PLB segments
    (more than six interest adjustments in a week) are not sent to it.
    """
    pytest.importorskip("pyx12")
    import shutil
    import subprocess
    import sys

    validator = Path(sys.executable).parent / "x12valid"
    if not validator.exists():
        pytest.skip("pyx12's x12valid script is not installed")
    out, *_ = written
    chosen = {}
    for path in sorted((out / "remittances").glob("*.835")):
        if path.read_text().count("PLB*") <= 1:
            chosen.setdefault(path.name.rsplit("_", 1)[0], path)
    assert len(chosen) == 5
    for path in chosen.values():
        copy = tmp_path / path.name  # the validator writes its acknowledgement beside the file
        shutil.copy(path, copy)
        run = subprocess.run(
            [str(validator), "--log-file", str(tmp_path / "x12.log"), str(copy)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert f"{copy}: OK" in run.stdout + run.stderr, (
            path.name,
            run.stdout[-500:],
            run.stderr[-500:],
        )
