"""KPIs: known values on a small hand-built history, and checks against the sample practice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analytics import history as practice_history
from analytics import kpis
from analytics.exceptions import InputError, ParameterError
from analytics.payers import load_payers
from analytics.refdata import load_reference
from analytics.remittance import Remittance, read_835

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"

# Three payers with flat contracts, so every expected amount is a rate x 1 unit:
# acme pays its rate in full, beta leaves 20% coinsurance to the patient, self is self-pay.
PAYERS = {"payers": {
    "acme": {"name": "Acme Health", "kind": "commercial", "unit_method": "ama", "ncci": {"follow": False},
             "fee": {"basis": "flat", "rates": {"97140": 50.0, "97124": 40.0}}},
    "beta": {"name": "Beta Mutual", "kind": "commercial", "unit_method": "ama", "ncci": {"follow": False},
             "fee": {"basis": "flat", "rates": {"97140": 60.0, "97124": 45.0}},
             "cost_share": {"coinsurance": 0.2}},
    "self": {"name": "Self-pay", "kind": "cash", "fee": {"basis": "charges"}},
}}
AS_OF = "2026-03-31"

# Ten lines at $100 each, 15 minutes (one unit under the AMA midpoint rule). As of 2026-03-31:
#   L1  C1 acme 2026-01-05 97140  paid $50, CO-45 $50 (paid 01-20)
#   L2  C1 acme 2026-01-05 97124  denied CO-97 $100 (same remittance)
#   L3  C2 beta 2026-02-10 97140  allowed $60: paid $48, PR-2 $12, CO-45 $40 (paid 02-25)
#   L4  C3 beta 2026-02-20 97140  allowed $54 against a $60 contract: paid $43.20, PR-2 $10.80, CO-45 $46
#   L5  C4 acme 2026-03-02 97140  submitted, open: 29 days old
#   L6  C5 beta 2025-12-01 97124  submitted, open: 120 days old (the last day of 91-120)
#   L7  C6 acme 2026-01-15 97124  submitted, open: 75 days old
#   L8  C7 self 2026-02-01 97124  self-pay
#   L9  C8 acme 2026-03-25 97140  not submitted yet (unbilled)
#   L10 C9 beta 2026-03-20 97124  submitted; its remittance is dated 04-03, after the as-of date: open, 11 days
LINES = [
    ("L1", "C1", "P1", "2026-01-05", "acme", "97140", "2026-01-06"),
    ("L2", "C1", "P1", "2026-01-05", "acme", "97124", "2026-01-06"),
    ("L3", "C2", "P2", "2026-02-10", "beta", "97140", "2026-02-11"),
    ("L4", "C3", "P3", "2026-02-20", "beta", "97140", "2026-02-21"),
    ("L5", "C4", "P4", "2026-03-02", "acme", "97140", "2026-03-03"),
    ("L6", "C5", "P5", "2025-12-01", "beta", "97124", "2025-12-02"),
    ("L7", "C6", "P6", "2026-01-15", "acme", "97124", "2026-01-16"),
    ("L8", "C7", "P7", "2026-02-01", "self", "97124", ""),
    ("L9", "C8", "P8", "2026-03-25", "acme", "97140", ""),
    ("L10", "C9", "P9", "2026-03-20", "beta", "97124", "2026-03-21"),
]


def charge_lines() -> pd.DataFrame:
    frame = pd.DataFrame(LINES, columns=["line_id", "claim_id", "patient_id", "service_date", "payer_id", "cpt",
                                         "submission_date"])
    return frame.assign(
        service_date=pd.to_datetime(frame["service_date"]),
        submission_date=pd.to_datetime(frame["submission_date"].replace("", None)),
        provider_id="LMT1", provider_type="lmt", minutes=15.0, modifiers="", charge=100.0,
    )


def era(payer: str, pay_date: str, claims: list) -> str:
    """A minimal balanced 835: claims are (claim_id, [(line_id, cpt, date, paid, [(group, carc, amount)])])."""
    body = []
    total = 0.0
    for claim_id, lines in claims:
        charge = 100.0 * len(lines)
        paid = sum(x[3] for x in lines)
        pr = sum(a for x in lines for g, _, a in x[4] if g == "PR")
        total += paid
        body.append(f"CLP*{claim_id}*1*{charge:.2f}*{paid:.2f}*{pr:.2f}*12*{payer.upper()}{claim_id}")
        for line_id, cpt, date, line_paid, adjustments in lines:
            body.append(f"SVC*HC:{cpt}*100*{line_paid:.2f}**1")
            body.append(f"DTM*472*{date.replace('-', '')}")
            body += [f"CAS*{g}*{c}*{a:.2f}" for g, c, a in adjustments]
            body.append(f"REF*6R*{line_id}")
    ymd = pay_date.replace("-", "")
    head = ["ST*835*0001", f"BPR*I*{total:.2f}*C*ACH*CCP*01*011000015*DA*1*1999999999**01*021000021*DA*1*{ymd}",
            f"TRN*1*{payer}{ymd}*1999999999", f"DTM*405*{ymd}", f"N1*PR*{payer.upper()}", "LX*1"]
    segs = head + body
    segs.append(f"SE*{len(segs) + 1}*0001")
    return "~\n".join(segs) + "~\n"


ERAS = {
    "acme_1.835": era("acme", "2026-01-20", [("C1", [
        ("L1", "97140", "2026-01-05", 50.0, [("CO", "45", 50.0)]),
        ("L2", "97124", "2026-01-05", 0.0, [("CO", "97", 100.0)]),
    ])]),
    "beta_1.835": era("beta", "2026-02-25", [("C2", [
        ("L3", "97140", "2026-02-10", 48.0, [("CO", "45", 40.0), ("PR", "2", 12.0)]),
    ])]),
    "beta_2.835": era("beta", "2026-03-06", [("C3", [
        ("L4", "97140", "2026-02-20", 43.2, [("CO", "45", 46.0), ("PR", "2", 10.8)]),
    ])]),
    "beta_3.835": era("beta", "2026-04-03", [("C9", [
        ("L10", "97124", "2026-03-20", 36.0, [("CO", "45", 55.0), ("PR", "2", 9.0)]),
    ])]),
}


def remittance() -> Remittance:
    return Remittance.concat([read_835(text, source_name=name) for name, text in ERAS.items()])


@pytest.fixture(scope="module")
def hand() -> kpis.History:
    return kpis.build_history(charge_lines(), remittance(), payers=PAYERS, as_of=AS_OF, salt="test")


# --- the hand-built history -----------------------------------------------------------------


def test_scope_defaults_to_the_data(hand):
    assert hand.start == pd.Timestamp("2025-12-01")
    assert hand.end == pd.Timestamp("2026-03-25")  # the last date of service on or before the as-of date
    assert hand.as_of == pd.Timestamp(AS_OF)
    assert list(hand.lines["adjudicated"]) == [True, True, True, True, False, False, False, False, False, False]


def test_summary_known_values(hand):
    s = kpis.summary(hand)
    assert s["gross_charges"] == 1000.0
    assert s["self_pay_charges"] == 100.0
    assert s["unbilled_charges"] == 100.0  # L9
    assert s["adjudicated_charges"] == 400.0  # L1-L4; L10's remittance is after the as-of date
    assert s["payer_paid"] == pytest.approx(141.20)  # 50 + 0 + 48 + 43.20
    assert s["patient_responsibility"] == pytest.approx(22.80)  # 12 + 10.80
    assert s["contractual_adjustments"] == pytest.approx(136.0)  # 50 + 40 + 46
    assert s["allowed"] == pytest.approx(164.0)  # no AMT*B6: paid + patient share
    assert (s["denied_lines"], s["adjudicated_lines"], s["denied_amount"]) == (1, 4, 100.0)
    assert s["denial_rate"] == 0.25


def test_net_collection_rate_by_hand(hand):
    # (payer paid + patient responsibility) / (charges - contractual) = (141.20 + 22.80) / (400 - 136)
    assert kpis.summary(hand)["net_collection_rate"] == pytest.approx(164 / 264)
    assert kpis.fmt_pct(164 / 264) == "62.1%"
    by = kpis.net_collection_rate(hand, by="payer").set_index("payer_id")
    assert by.loc["acme", "rate"] == pytest.approx(50 / (200 - 50))  # L1 + L2: $50 of $150
    assert by.loc["beta", "rate"] == pytest.approx(114 / (200 - 86))  # L3 + L4 paid in full after write-downs


def test_days_in_ar_by_hand(hand):
    # A/R: L5, L6, L7, L10 open ($400; L9 is unbilled, L8 self-pay). Insurance charges for services
    # in (2026-01-01, 2026-03-31]: L1, L2, L3, L4, L5, L7, L9, L10 = $800 over 90 days.
    # 400 / (800 / 90) = 45.0 days.
    assert kpis.summary(hand)["ar_balance"] == 400.0
    assert kpis.days_in_ar(hand) == pytest.approx(45.0)
    assert kpis.fmt_days(kpis.days_in_ar(hand)) == "45.0 days"


def test_aging_buckets_by_hand(hand):
    aging = kpis.ar_aging(hand).set_index("payer_id")
    # acme: L5 29 days (0-30), L7 75 days (61-90); beta: L10 11 days (0-30), L6 120 days (91-120)
    assert aging.loc["acme", list(kpis.AGING_BUCKETS)].tolist() == [100.0, 0.0, 100.0, 0.0, 0.0]
    assert aging.loc["beta", list(kpis.AGING_BUCKETS)].tolist() == [100.0, 0.0, 0.0, 100.0, 0.0]
    assert aging["total"].tolist() == [200.0, 200.0]
    assert aging.loc["acme", "claims"] == 2
    overall = kpis.ar_aging(hand, by=None)
    assert overall[list(kpis.AGING_BUCKETS)].iloc[0].tolist() == [200.0, 0.0, 100.0, 100.0, 0.0]
    # a day later L6 turns 121 days old
    later = kpis.ar_aging(hand.select(as_of="2026-04-01"), by=None)
    assert later["over 120"].iloc[0] == 100.0


def test_as_of_decides_what_is_known(hand):
    # On 2026-04-03 L10's remittance has arrived: it leaves the A/R and joins the adjudicated lines.
    later = hand.select(as_of="2026-04-03", end="2026-03-31")
    s = kpis.summary(later)
    assert s["ar_balance"] == 300.0
    assert s["adjudicated_lines"] == 5
    assert s["payer_paid"] == pytest.approx(177.20)
    # Before 2026-01-20 nothing was paid.
    early = kpis.summary(hand.select(as_of="2026-01-19"))
    assert early["payer_paid"] == 0.0
    assert early["ar_balance"] == 400.0  # L1 and L2 (paid the next day), L6 and L7 were waiting


def test_first_pass_resolution_by_hand(hand):
    # Claims answered: C1 (one line denied), C2 and C3 (paid, C3 below contract but not denied).
    fpr = kpis.first_pass_resolution_rate(hand)
    assert (fpr["claims"].iloc[0], fpr["first_pass"].iloc[0]) == (3, 2)
    assert fpr["rate"].iloc[0] == pytest.approx(2 / 3)


def test_underpayments_by_hand(hand):
    u = kpis.underpayments(hand)
    assert u.lines["line_id"].tolist() == ["L4"]
    assert u.lines[["expected", "paid", "shortfall"]].iloc[0].tolist() == [60.0, 54.0, 6.0]
    assert u.recoverable == 6.0
    assert u.claims["claim_id"].tolist() == ["C3"]
    row = u.summary[(u.summary["payer_id"] == "beta") & (u.summary["month"] == pd.Timestamp("2026-02-01"))]
    assert row[["lines", "underpaid_lines", "recoverable", "claims"]].iloc[0].tolist() == [2, 1, 6.0, 1]
    assert row["pct_of_contract"].iloc[0] == pytest.approx(114 / 120)
    top = u.highlights()
    assert top[["payer", "cpt", "period", "claims"]].iloc[0].tolist() == ["Beta Mutual", "97140", "Q1 2026", 1]
    assert "patient_id" not in u.lines.columns and "patient_id" not in u.claims.columns


def test_underpayment_tolerance(hand):
    assert kpis.underpayments(hand, tolerance=6.0).lines.empty


def test_denials_by_hand(hand):
    d = kpis.denials_by_payer(hand).set_index("payer_id")
    assert d.loc["acme", ["lines", "denied_lines", "denied_amount"]].tolist() == [2, 1, 100.0]
    assert d.loc["acme", "rate"] == 0.5
    assert 0 < d.loc["acme", "low"] < 0.5 < d.loc["acme", "high"] < 1
    assert d.loc["beta", "low"] == 0.0  # no denial: the interval starts at 0
    reasons = kpis.denial_reasons(hand)
    assert reasons[["reason", "lines", "denied_amount", "cumulative_share"]].iloc[0].tolist() == [
        "bundling (code pairs)", 1, 100.0, 1.0]
    assert kpis.denial_reasons(hand, by="carc")["reason"].iloc[0].startswith("CARC 97:")


def test_denials_by_code_are_shrunk(hand):
    d = kpis.denials_by_code(hand).set_index(["payer_id", "cpt"])
    one = d.loc[("acme", "97124")]  # one line, denied: raw 100%
    assert (one["lines"], one["denied_lines"], one["raw_rate"]) == (1, 1, 1.0)
    assert 0 < one["low"] < one["rate"] < 1.0 and one["high"] <= 1.0
    assert d.loc[("beta", "97140"), "rate"] > 0  # two paid lines are not shown at 0%


def test_jeffreys_interval_known_values():
    # 1 of 2: the 2.5% and 97.5% quantiles of Beta(1.5, 1.5), whose density is proportional to
    # sqrt(x (1 - x)); integrated numerically they are 0.06083 and 0.93917. 0 of n starts at 0,
    # n of n ends at 1.
    lo, hi = kpis._jeffreys(np.array([1, 0, 5]), np.array([2, 5, 5]))
    assert lo[0] == pytest.approx(0.06083, abs=1e-5) and hi[0] == pytest.approx(0.93917, abs=1e-5)
    assert lo[1] == 0.0 and hi[2] == 1.0


def test_paid_per_visit_and_unit_by_hand(hand):
    v = kpis.paid_per_visit(hand).set_index("payer_id")
    assert v.loc["acme", ["visits", "per_visit"]].tolist() == [1, 50.0]  # the C1 visit
    assert v.loc["beta", ["visits", "per_visit", "payer_paid_per_visit"]].tolist() == [2, 57.0, 45.6]
    u = kpis.paid_per_unit(hand).set_index(["payer_id", "cpt"])
    assert u.loc[("beta", "97140"), ["lines", "units", "paid", "per_unit"]].tolist() == [2, 2, 114.0, 57.0]
    assert ("acme", "97124") not in u.index  # denied lines are not a rate


def test_percent_of_medicare_known_value(hand):
    # National 2026 fee for 97140: (work + PE + MP RVUs) x 1.0 GPCIs x the 2026 conversion factor.
    ref = load_reference()
    r = ref.rvu[(ref.rvu["year"] == 2026) & (ref.rvu["cpt"] == "97140")].iloc[0]
    fee = round((r["work_rvu"] + r["pe_rvu_nonfacility"] + r["mp_rvu"]) * ref.conversion_factor(2026), 2)
    pct = kpis.percent_of_medicare(hand, locality="00000-00").set_index(["payer_id", "cpt"])
    assert pct.loc[("acme", "97140"), "medicare"] == pytest.approx(fee)
    assert pct.loc[("acme", "97140"), "pct_of_medicare"] == pytest.approx(50.0 / fee)
    assert pct.loc[("beta", "97140"), "pct_of_medicare"] == pytest.approx(114.0 / (2 * fee))


def test_monthly_by_hand(hand):
    m = kpis.monthly(hand).set_index("month")
    assert list(m.index.strftime("%Y-%m")) == ["2025-12", "2026-01", "2026-02", "2026-03"]
    assert m["charges"].tolist() == [100.0, 300.0, 300.0, 300.0]
    # payments received: $50 in January, $48 in February, $43.20 in March (L10's April payment is unknown)
    assert m["collections"].tolist() == [0.0, 50.0, 48.0, 43.2]


def test_selecting_payers_and_providers(hand):
    acme = hand.select(payers=["acme"])
    assert set(acme.lines["payer_id"]) == {"acme"}
    assert kpis.summary(acme)["gross_charges"] == 500.0
    with pytest.raises(ParameterError, match="Unknown payer id"):
        hand.select(payers=["nobody"])
    with pytest.raises(ParameterError, match="not a date"):
        hand.select(as_of="2026-02-30")
    with pytest.raises(ParameterError, match="after it ends"):
        hand.select(start="2026-03-01", end="2026-02-01")


def test_empty_selection_gives_empty_figures(hand):
    empty = hand.select(start="2024-01-01", end="2024-12-31")
    s = kpis.summary(empty)
    assert s["gross_charges"] == 0.0 and np.isnan(s["net_collection_rate"])
    assert kpis.underpayments(empty).lines.empty
    assert "No services" in kpis.revenue_narrative(empty)
    assert kpis.headline(empty)["value"].str.len().gt(0).all()


def test_figures_do_not_depend_on_row_order(hand):
    shuffled = charge_lines().sample(frac=1.0, random_state=np.random.default_rng(0).integers(1 << 31))
    other = kpis.build_history(shuffled, remittance(), payers=PAYERS, as_of=AS_OF, salt="test")
    a, b = kpis.summary(hand), kpis.summary(other)
    for key in a.index:
        assert a[key] == pytest.approx(b[key], nan_ok=True), key


def test_patient_ids_are_pseudonymised(hand):
    assert not hand.base["patient_id"].isin([f"P{i}" for i in range(1, 10)]).any()


def test_narratives_are_written_from_the_numbers(hand):
    text = kpis.contracts_narrative(hand, locality="00000-00")
    assert "Beta Mutual paid 95.0% of contract on 97140 in Q1 2026; $6 recoverable across 1 claim." in text
    assert kpis.fmt_pct(kpis.summary(hand)["denial_rate"]) in kpis.denials_narrative(hand)
    assert kpis.fmt_days(45.0) in kpis.revenue_narrative(hand)


def test_formatting():
    assert kpis.fmt_money(1240.49) == "$1,240"
    assert kpis.fmt_money(-3.5, cents=True) == "-$3.50"
    assert kpis.fmt_pct(float("nan")) == "-"


def test_adjustments_split_like_line_outcomes(x12_dir):
    # Two paths must agree: the vectorised split used here and analytics.denials.line_outcomes,
    # on public 835 samples (claim-level adjustments, COB, negative OA-94) and the hand-built ones.
    import warnings

    from analytics.denials import line_outcomes
    from analytics.remittance import read_835_many

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        public, _ = read_835_many(x12_dir)
        for remit in (public, remittance()):
            sl = remit.service_lines.reset_index(drop=True)
            ours = practice_history._line_adjustments(remit, sl, load_reference())
            theirs = sl[["file", "claim_index", "line_index"]].merge(
                line_outcomes(remit), on=["file", "claim_index", "line_index"], how="left")
            for a, b in (("denied_amount", "denied_amount"), ("patient_amount", "patient_responsibility"),
                         ("contractual_amount", "contractual")):
                assert np.allclose(theirs[a].to_numpy(dtype=float), ours[b], atol=0.006), b
            assert (theirs["carc"].fillna("").to_numpy() == ours["denial_carc"]).all()
            assert (theirs["category"].fillna("").to_numpy() == ours["denial_category"]).all()


# --- reading a practice folder ---------------------------------------------------------------


def write_folder(root: Path) -> Path:
    folder = root / "practice"
    (folder / "remittances").mkdir(parents=True)
    lines = charge_lines()
    lines.assign(service_date=lines["service_date"].dt.strftime("%Y-%m-%d"),
                 submission_date=lines["submission_date"].dt.strftime("%Y-%m-%d").fillna("")).to_csv(
        folder / "service_lines.csv", index=False)
    (folder / "payers.yaml").write_text(yaml.safe_dump(PAYERS))
    (folder / "practice.yaml").write_text(yaml.safe_dump({"practice": "Test Practice", "locality": "00000-00",
                                                          "as_of": AS_OF}))
    for name, text in ERAS.items():
        (folder / "remittances" / name).write_text(text)
    return folder


def test_load_history_reads_a_folder_like_build_history(tmp_path, hand):
    folder = write_folder(tmp_path)
    h = kpis.load_history(folder, salt="test", cache_dir=tmp_path / "cache")
    assert h.practice_name == "Test Practice" and h.as_of == pd.Timestamp(AS_OF)
    a, b = kpis.summary(h), kpis.summary(hand)
    for key in a.index:
        assert a[key] == pytest.approx(b[key], nan_ok=True), key
    # the second read comes from the cache and agrees
    assert any(p.is_file() for p in (tmp_path / "cache").rglob("*"))  # a parsed copy was kept
    again = kpis.load_history(folder, salt="test", cache_dir=tmp_path / "cache")
    assert kpis.summary(again).equals(a)


def test_load_history_errors_name_the_fix(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        kpis.load_history(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no charge export"):
        kpis.load_history(tmp_path / "empty")


# --- the sample practice, whose truth is known -----------------------------------------------


@pytest.fixture(scope="module")
def sample(sample_history) -> kpis.History:
    """The sample practice, read once per session (conftest)."""
    return sample_history


def test_sample_underpayments_match_the_truth(sample):
    truth = pd.read_csv(SAMPLE / "truth" / "line_truth.csv", dtype=str)
    under = truth[(truth["underpaid"] == "True") & (truth["adjudicated"] == "True")]
    found = kpis.underpayments(sample)
    assert set(found.lines["line_id"]) == set(under["line_id"])
    assert found.recoverable == pytest.approx(pd.to_numeric(under["underpaid_amount"]).sum(), abs=0.01)


def test_sample_denials_match_the_truth(sample):
    truth = pd.read_csv(SAMPLE / "truth" / "line_truth.csv", dtype=str)
    adjudicated = truth[truth["adjudicated"] == "True"]
    lines = sample.lines.set_index("line_id")
    denied = set(lines.index[lines["denied"]])
    assert denied == set(adjudicated.loc[adjudicated["denied"] == "True", "line_id"])


def test_sample_medicare_pays_medicare(sample):
    pct = kpis.percent_of_medicare(sample)
    med = pct[pct["payer_id"] == "medicare"]
    # Medicare's MPPR only lowers its effective percent; it never pays above its fee schedule
    assert (med["pct_of_medicare"] <= 1.0 + 1e-9).all()
    gold = pct[(pct["payer_id"] == "ppo_gold") & (pct["cpt"] == "97124")]
    assert gold["pct_of_medicare"].iloc[0] == pytest.approx(1.10, abs=0.005)  # contract 110%, never underpaid


def test_sample_money_reconciles(sample):
    # every adjudicated charge is paid, left to the patient, written down or denied
    adj = sample.period[sample.period["adjudicated"]]
    parts = adj["paid"] + adj["patient_responsibility"] + adj["contractual"] + adj["denied_amount"]
    assert np.allclose(parts, adj["charge"], atol=0.011)


def test_payers_file_matches_policies(sample):
    assert set(sample.payers) == set(load_payers(SAMPLE / "payers.yaml"))


def test_lines_that_cannot_be_priced_stay_in_the_charges(hand):
    """98941 (chiropractic manipulation) is outside the massage code catalog and "zeta" has no
    policy: both lines count in the charges, carry no contract price, and say why."""
    extra = charge_lines().head(2).assign(line_id=["X1", "X2"], claim_id=["CX1", "CX2"], cpt=["98941", "97124"],
                                          payer_id=["acme", "zeta"])
    h = kpis.build_history(pd.concat([charge_lines(), extra], ignore_index=True), remittance(), payers=PAYERS,
                           as_of=AS_OF, salt="test")
    base = h.base.set_index("line_id")
    assert base.loc["X1", "not_priced"] == "outside the catalog: not priced"
    assert base.loc["X2", "not_priced"] == "no policy: not priced"
    assert base.loc[["X1", "X2"], "contract_allowed"].isna().all()
    assert base.loc["X1", "edit_reason"] == "outside the catalog: not priced"
    assert kpis.summary(h)["gross_charges"] == kpis.summary(hand)["gross_charges"] + 200
    assert set(kpis.underpayments(h).lines["line_id"]) == set(kpis.underpayments(hand).lines["line_id"])


def test_payers_are_selected_by_name_or_alias(hand):
    assert hand.select(payers=["Acme Health"]).payer_ids == ("acme",)
    assert hand.select(payers="BETA mutual").payer_ids == ("beta",)
    with pytest.raises(ParameterError, match="Unknown payer"):
        hand.select(payers=["Gamma"])
