"""Each charge line's answer from several 835s: claims answered at claim level only, reversals
without a correction, secondary payers, and codes the payer changed (SVC06).

The 835s are written here in the shape of the X12 835 (005010X221A1): one claim of three
charge lines (a 97110, a 97140 and a 97010 on one day), answered in the ways payers answer.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analytics.history import build_history
from analytics.remittance import read_835_many

PAYERS = {"payers": {"ppo": {"kind": "commercial", "fee": {"basis": "percent_of_medicare", "percent": 100,
                                                                   "locality": "00000-00"}}}}
CHARGES = {"97110": 152.0, "97140": 78.0, "97010": 28.0}


def charges() -> pd.DataFrame:
    codes = list(CHARGES)
    return pd.DataFrame({
        "claim_id": "C1", "line_id": [f"C1-{i + 1}" for i in range(3)], "patient_id": "P1",
        "service_date": pd.Timestamp("2025-05-05"), "provider_id": "PT1", "provider_type": "pt",
        "payer_id": "ppo", "cpt": codes, "minutes": [30.0, 15.0, 10.0], "modifiers": "GP",
        "charge": [CHARGES[c] for c in codes],
    })


def era(paid_on: str, *claims: str, total: float | None = None) -> str:
    """An 835 paid on ``paid_on`` (CCYYMMDD) holding the claims' segments."""
    body = [seg for claim in claims for seg in claim.strip().split("\n")]
    amount = 0.0 if total is None else total
    head = [
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*PRACTICE       *250520*1200*^*00501*000000001*0*P*:",
        "GS*HP*PAYER*PRACTICE*20250520*1200*1*X*005010X221A1", "ST*835*0001",
        f"BPR*I*{amount:.2f}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999999999*DA*654321*{paid_on}",
        f"TRN*1*EFT{paid_on}*1512345678", f"DTM*405*{paid_on}", "N1*PR*PPO PLAN", "N1*PE*PRACTICE*XX*1234567893",
        "LX*1",
    ]
    segments = head + body
    segments += [f"SE*{len(segments) - 1}*0001", "GE*1*1", "IEA*1*000000001"]
    return "~\n".join(segments) + "~\n"


def line(code: str, paid: float, *cas: str, original: str = "", units: int = 1) -> str:
    svc = f"SVC*HC:{code}:GP*{CHARGES.get(original or code, 0):.2f}*{paid:.2f}**{units}"
    if original:
        svc += f"*HC:{original}:GP"
    return "\n".join([svc, "DTM*472*20250505", *cas])


def claim(status: str, charge: float, paid: float, *lines: str, cas: str = "", pr: float = 0.0) -> str:
    head = f"CLP*C1*{status}*{charge:.2f}*{paid:.2f}*{pr:.2f}*12*PCN{status}*11*1"
    return "\n".join([head, *([cas] if cas else []), "NM1*QC*1*DOE*JANE****MI*M1", "DTM*232*20250505", *lines])


def history(tmp_path, *files: str):
    for i, text in enumerate(files):
        (tmp_path / f"era_{i}.835").write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        remittance, errors = read_835_many(sorted(tmp_path.glob("*.835")))
    assert errors.empty, errors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_history(charges(), remittance, payers=PAYERS, as_of="2025-12-31", key=b"k" * 32)


def by_code(h) -> pd.DataFrame:
    return h.base.set_index(h.base["cpt"].astype(str))


PRIMARY = claim("1", 258, 68.23,
                line("97110", 38.34, "CAS*CO*45*88.66", "CAS*PR*3*25"),
                line("97140", 29.89, "CAS*CO*45*48.11"),
                line("97010", 0, "CAS*CO*96*28"), pr=25)


def test_a_claim_denied_at_claim_level_answers_each_of_its_lines(tmp_path):
    """CLP02 4 with a claim-level CAS and no SVC: every charge line is answered and denied, the
    denied amount spread in proportion to the charges, the CARC kept."""
    h = history(tmp_path, era("20250516", claim("4", 258, 0, cas="CAS*CO*16*258")))
    b = by_code(h)
    assert b["remitted"].all()
    assert b["denied_amount"].to_dict() == pytest.approx(CHARGES)
    assert set(b["denial_carc"]) == {"16"}
    assert b["paid"].sum() == 0
    assert len(h.unmatched_remittance) == 0
    assert any("claim level only" in n for n in h.notes)


def test_a_claim_paid_at_claim_level_spreads_its_payment(tmp_path):
    h = history(tmp_path, era("20250516", claim("1", 258, 129, cas="CAS*CO*45*129"), total=129))
    b = by_code(h)
    assert b["paid"].sum() == pytest.approx(129)
    assert b["paid"].to_dict() == pytest.approx({c: 129 * v / 258 for c, v in CHARGES.items()})
    assert b["contractual"].sum() == pytest.approx(129)


def test_a_reversal_with_no_correction_takes_the_payment_back(tmp_path):
    reversal = claim("22", -258, -68.23,
                     line("97110", -38.34, "CAS*CO*45*-88.66", "CAS*PR*3*-25"),
                     line("97140", -29.89, "CAS*CO*45*-48.11"),
                     line("97010", 0, "CAS*CO*96*-28"), pr=-25)
    (tmp_path / "first").mkdir()
    (tmp_path / "both").mkdir()
    paid_first = history(tmp_path / "first", era("20250516", PRIMARY, total=68.23))
    assert paid_first.base["paid"].sum() == pytest.approx(68.23)
    h = history(tmp_path / "both", era("20250516", PRIMARY, total=68.23), era("20250613", reversal, total=-68.23))
    b = by_code(h)
    assert b["remitted"].all()
    for col in ("paid", "patient_responsibility", "contractual", "denied_amount"):
        assert b[col].abs().max() < 0.005, col
    assert (b["denial_carc"] == "").all()
    assert any("reversed by the payer" in n for n in h.notes)


def test_a_reversal_then_a_correction_leaves_the_correction(tmp_path):
    reversal = claim("22", -258, -68.23,
                     line("97110", -38.34, "CAS*CO*45*-88.66", "CAS*PR*3*-25"),
                     line("97140", -29.89, "CAS*CO*45*-48.11"),
                     line("97010", 0, "CAS*CO*96*-28"), pr=-25)
    corrected = claim("1", 258, 90, line("97110", 50, "CAS*CO*45*77", "CAS*PR*3*25"),
                      line("97140", 40, "CAS*CO*45*38"), line("97010", 0, "CAS*CO*96*28"), pr=25)
    h = history(tmp_path, era("20250516", PRIMARY, total=68.23), era("20250613", reversal, corrected, total=21.77))
    b = by_code(h)
    assert b["paid"].to_dict() == pytest.approx({"97110": 50, "97140": 40, "97010": 0})
    assert b["patient_responsibility"].sum() == pytest.approx(25)
    assert not any("reversed by the payer" in n for n in h.notes)


def test_a_secondary_payment_adds_to_the_primary_and_lowers_the_patient_share(tmp_path):
    secondary = claim("2", 258, 25, line("97110", 25, "CAS*OA*23*127"), line("97140", 0, "CAS*OA*23*78"),
                      line("97010", 0, "CAS*OA*23*28"))
    h = history(tmp_path, era("20250516", PRIMARY, total=68.23), era("20250601", secondary, total=25))
    b = by_code(h)
    assert b["paid"].to_dict() == pytest.approx({"97110": 63.34, "97140": 29.89, "97010": 0})
    assert b["patient_responsibility"].sum() == pytest.approx(0)
    # the primary's denial of 97010 stands
    assert b.loc["97010", "denial_carc"] == "96"
    assert b["contractual"].sum() == pytest.approx(88.66 + 48.11)
    assert any("secondary or tertiary payer" in n for n in h.notes)
    assert len(h.unmatched_remittance) == 0


def test_a_secondary_payment_alone_is_the_answer(tmp_path):
    secondary = claim("2", 258, 25, line("97110", 25, "CAS*OA*23*127"), line("97140", 0, "CAS*OA*23*78"),
                      line("97010", 0, "CAS*OA*23*28"))
    b = by_code(history(tmp_path, era("20250601", secondary, total=25)))
    assert b["remitted"].all()
    assert b["paid"].sum() == pytest.approx(25)


def test_a_line_paid_under_another_code_links_by_the_billed_code(tmp_path):
    """SVC06 names the code billed when the payer paid another; with no REF*6R the line still
    links to its charge line."""
    recoded = claim("1", 258, 90, line("97110", 50, "CAS*CO*45*102"),
                    line("97530", 40, "CAS*CO*45*38", original="97140"), line("97010", 0, "CAS*CO*96*28"))
    h = history(tmp_path, era("20250516", recoded, total=90))
    b = by_code(h)
    assert b["remitted"].all()
    assert b.loc["97140", "paid"] == pytest.approx(40)
    assert len(h.unmatched_remittance) == 0


def test_a_reversal_of_a_payment_not_in_the_835s_is_named(tmp_path):
    reversal = claim("22", -258, -68.23, line("97110", -38.34, "CAS*CO*45*-88.66", "CAS*PR*3*-25"),
                     line("97140", -29.89, "CAS*CO*45*-48.11"), line("97010", 0, "CAS*CO*96*-28"), pr=-25)
    h = history(tmp_path, era("20250613", reversal, total=-68.23))
    assert not h.base["remitted"].any()
    assert any("3 reversal line(s)" in n and "not in these 835s" in n for n in h.notes)


def test_answers_are_the_same_in_any_file_order(tmp_path):
    """The newest adjudication wins by payment date, not by the order the files are read."""
    reversal = claim("22", -258, -68.23, line("97110", -38.34, "CAS*CO*45*-88.66", "CAS*PR*3*-25"),
                     line("97140", -29.89, "CAS*CO*45*-48.11"), line("97010", 0, "CAS*CO*96*-28"), pr=-25)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = history(tmp_path / "a", era("20250516", PRIMARY, total=68.23), era("20250613", reversal, total=-68.23))
    b = history(tmp_path / "b", era("20250613", reversal, total=-68.23), era("20250516", PRIMARY, total=68.23))
    cols = ["paid", "patient_responsibility", "contractual", "denied_amount"]
    assert np.allclose(a.base[cols].to_numpy(dtype=float), b.base[cols].to_numpy(dtype=float))


def test_a_claim_level_answer_for_a_claim_not_in_the_export_is_named(tmp_path):
    other = claim("4", 258, 0, cas="CAS*CO*16*258").replace("CLP*C1*", "CLP*C9*")
    h = history(tmp_path, era("20250516", other))
    assert not h.base["remitted"].any()
    assert any(n.startswith("1 claim(s) in the 835s answered at claim level only") for n in h.notes)
