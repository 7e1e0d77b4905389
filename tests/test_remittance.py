"""Tests for analytics.remittance: the X12 835 (005010X221A1) reader, linking and CLI."""

from __future__ import annotations

import doctest
import functools
import importlib
import json
import pkgutil
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analytics.remittance as remittance
import analytics.remittance.files as remittance_files
import analytics.remittance.reader as remittance_reader
import analytics.remittance.tables as remittance_tables
from analytics.cli import main
from analytics.exceptions import BalanceWarning, X12Error, X12Warning
from analytics.remittance import (
    DEFAULT_SALT,
    Remittance,
    link_remittance,
    read_835,
    read_835_many,
    tokenize,
)

REPO = Path(__file__).resolve().parents[1]

# The fully synthetic example of FACTS section 6.1 (also shared/fixtures/x12-835/
# synthetic_835_massage.edi). Names, ids and bank numbers are fake.
SYNTHETIC = """\
ISA*00*          *00*          *ZZ*SYNTHPAYER01   *ZZ*SYNTHCLINIC01  *260316*0930*^*00501*000000101*0*T*:~
GS*HP*SYNTHPAYER01*SYNTHCLINIC01*20260316*0930*101*X*005010X221A1~
ST*835*0001~
BPR*I*40.44*C*ACH*CCP*01*999999999*DA*000111222*1999999999**01*888888888*DA*333444555*20260318~
TRN*1*SYNEFT000001*1999999999~
DTM*405*20260316~
N1*PR*SYNTHETIC HEALTH PLAN~
N3*100 EXAMPLE WAY~
N4*ANYTOWN*CA*90000~
PER*BL*EDI HELP DESK*TE*5555550100~
N1*PE*EXAMPLE MASSAGE AND REHAB*XX*1234567893~
REF*TJ*990000001~
LX*1~
CLP*PCN1001*1*120*45.44*10*12*SYNCLM0001*11*1~
NM1*QC*1*SAMPLE*PAT****MI*SYNMBR001~
DTM*050*20260310~
SVC*HC:97140:GP*120*45.44**2~
DTM*472*20260302~
CAS*CO*45*64.56~
CAS*PR*3*10~
REF*6R*L1~
AMT*B6*55.44~
CLP*PCN1002*1*70*0*0*12*SYNCLM0002*11*1~
NM1*QC*1*SAMPLE*PAT****MI*SYNMBR001~
DTM*050*20260310~
SVC*HC:97124:GP*45*0**1~
DTM*472*20260302~
CAS*CO*97*45~
REF*6R*L1~
AMT*B6*0~
LQ*HE*M80~
SVC*HC:97010:GP*25*0**1~
DTM*472*20260302~
CAS*CO*97*25~
REF*6R*L2~
AMT*B6*0~
LQ*HE*M15~
PLB*1234567893*20261231*WO:SYNCLM0000*5~
SE*37*0001~
GE*1*101~
IEA*1*000000101~
"""

# Per-fixture figures, worked out by hand from the file text (not by running the reader):
# (claims, service lines, sum of CLP04, sum of all CAS amounts, sum of PLB amounts, balanced,
#  failing checks as (level, expected, actual), warnings expected (regex)).
EXPECTED = {
    # The project's own notification-only remittance (tests/data/README.md). 3 CLP, no SVC.
    # CLP04 = 0 + 0 + 0. CAS: OA-147 50016 + CO-26 22216 (claim 1) + OA-176 3002 (claim 2)
    #      + OA-147 9365.04 + CO-26 31866 (claim 3) = 116465.04; each claim balances (72232,
    #      3002, 41231.04). PLB: 72 -14, WO +14, B2 -14 = -14. Transaction: sum CLP04 - sum PLB
    #      = 0 - (-14) = 14, but BPR02 is 0 (BPR01 H, notification only), so the check fails.
    # SE02 is 0003 while ST02 is 0001; IEA02 000000712 while ISA13 is 000000711.
    "synthetic_835_plb_notification.edi": (
        3, 0, 0.0, 116465.04, -14.0, False,
        [("transaction", 14.0, 0.0)],
        [
            r"SE02 '0003' .* ST02 '0001'",
            r"IEA02 '000000712' .* ISA13 '000000711'",
            r"transaction 1: expected 14\.00",
        ],
    ),
    # Starts at ST (no envelope). 1 CLP, 3 SVC (59430, 59440, 59426); CLP04 1922.86.
    # CAS: CO-42 34.6 + PR-2 117.54 (line 1) + PR-3 25 (line 2) = 177.14.
    # Lines: 1210 - 152.14 = 1057.86; 890 - 25 = 865; the third SVC is
    # "SVC*HC:59426******742*742**1": SVC02/SVC03 are empty (read as 0, warned), so 0 - 0 = 0.
    # Claim: 2100 - 177.14 = 1922.86 = CLP04 = BPR02. SE says 33 segments; ST..SE count 32.
    "edi835parser_blue_cross_nc_sample.txt": (
        1, 3, 1922.86, 177.14, 0.0, True, [],
        [r"says the transaction has 33 segments.* count 32", r"28 \(SVC02\), 28 \(SVC03\)"],
    ),
    # 3 CLP with 4 + 2 + 4 SVC. CLP04: 34.25 + 0 + 11.5 = 45.75 = BPR02.
    # CAS: CO-29 12 + CO-29 22 (claim 2) + CO-251 2.75 + CO-251 20 (claim 3) = 56.75.
    # Claim 1: lines 6 + 2.75 + 5.5 + 20 = 34.25 paid in full; claim 2: 34 - 34 = 0;
    # claim 3: 34.25 - 22.75 = 11.5.
    "edi835parser_emedny_sample.txt": (3, 10, 45.75, 56.75, 0.0, True, [], []),
    # ISA16 is '>'. 2 CLP with 2 + 3 SVC. CLP04: 88.92 + 261.07 = 349.99 = BPR02.
    # CAS: 67.5 + (105.26 + 79.6) + 255.72 + (5.13 + 110 in one CAS with two triplets) + 184.32
    #      = 807.53. Claim 1: 341.28 - 252.36 = 88.92; claim 2: 816.24 - 555.17 = 261.07.
    "edi835parser_united_healthcare_legacy_sample.txt": (2, 5, 349.99, 807.53, 0.0, True, [], []),
    # 1 CLP, 1 SVC (HC>55669 although ISA16 says ':'). CLP04 34 = BPR02.
    # CAS: OA-23 516 + OA-94 -9 = 507; 541 - 507 = 34. BPR has 15 elements (no BPR16 date).
    "lfh_cob-contractural-adjustment.835": (
        1, 1, 34.0, 507.0, 0.0, True, [],
        [r"declares component separator ':', but the composites use '>'", r"no payment date"],
    ),
    # 2 CLP, 1 SVC each. CLP04: 450 + 495 = 945 = BPR02.
    # CAS: CO-A2 50 (claim) + PR-1 300 (line) + CO-A2 55 (claim) + PR-1 600 + CO-45 50 (line)
    #      = 1055. Claim 1: 800 - 350 = 450; claim 2: 1200 - 705 = 495. BPR16 is 20002316.
    "lfh_managed-care.835": (
        2, 2, 945.0, 1055.0, 0.0, True, [], [r"BPR16 value\(s\) are not CCYYMMDD dates: '20002316'"]
    ),
    # 2 CLP; the first has no SVC, the second two. CLP04: 912 + 310 = 1222 = BPR02.
    # CAS: OA-23 9411.64 (claim 1) + OA-23 136.5 + PR-1 150 + PR-2 70 + CO-42 85 = 9853.14.
    # Claim 1: 10323.64 - 9411.64 = 912; claim 2: 751.5 - 441.5 = 310.
    "lfh_secondary-payment.835": (
        2, 2, 1222.0, 9853.14, 0.0, True, [],
        [r"declares component separator ':', but the composites use '>'", r"no payment date"],
    ),
    # FACTS 6.1: CO-45 64.56 + PR-3 10 + CO-97 45 + CO-97 25 = 144.56; PLB WO 5;
    # BPR 40.44 = 45.44 - 5.
    "synthetic_835_massage.edi": (2, 3, 45.44, 144.56, 5.0, True, [], []),
}  # fmt: skip


def _read_quiet(source, **kwargs) -> Remittance:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_835(source, **kwargs)


def _fixture(x12_dir: Path, name: str) -> Path:
    path = x12_dir / name
    if not path.exists():
        pytest.skip(f"{path} is not present")
    return path


# ---- fixtures from the shared folder --------------------------------------------------------


def test_fixture_folder_is_covered(x12_dir):
    files = {p.name for p in x12_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert files == set(EXPECTED), "add hand-worked figures for new fixture files"


def test_synthetic_constant_matches_fixture(x12_dir):
    text = _fixture(x12_dir, "synthetic_835_massage.edi").read_text()
    assert text.replace("\r\n", "\n") == SYNTHETIC


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_figures(x12_dir, name):
    claims, lines, paid, adjustments, plb, balanced, failing, expected_warnings = EXPECTED[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remit = read_835(_fixture(x12_dir, name))
    summary = remit.summary().iloc[0]
    assert summary["file"] == name
    assert summary["claims"] == claims == len(remit.claims)
    assert summary["service_lines"] == lines == len(remit.service_lines)
    assert summary["paid_total"] == pytest.approx(paid, abs=0.001)
    assert summary["adjustments_total"] == pytest.approx(adjustments, abs=0.001)
    assert summary["plb_total"] == pytest.approx(plb, abs=0.001)
    assert bool(summary["balanced"]) is balanced
    bad = remit.balance[~remit.balance["balanced"]]
    assert [(r.level, r.expected, r.actual) for r in bad.itertuples()] == failing
    # every line and claim has its check, plus one per transaction
    assert len(remit.balance) == lines + claims + len(remit.payments)
    messages = [str(w.message) for w in caught]
    for pattern in expected_warnings:
        assert any(re.search(pattern, m) for m in messages), (pattern, messages)
    assert len(messages) == len(expected_warnings)
    balance_warnings = [w for w in caught if issubclass(w.category, BalanceWarning)]
    assert len(balance_warnings) == (0 if balanced else 1)


def test_every_fixture_reads_together(x12_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        remit, errors = read_835_many(x12_dir)
    assert errors.empty
    assert remit.summary()["file"].tolist() == sorted(EXPECTED)
    # claim_index is unique within a file
    assert not remit.claims.duplicated(["file", "claim_index"]).any()
    # stacking keeps the dtypes of a single read
    one = _read_quiet(SYNTHETIC)
    for name, frame in remit.tables().items():
        assert frame.dtypes.to_dict() == getattr(one, name).dtypes.to_dict(), name


def test_fixture_details(x12_dir):
    uhc = _read_quiet(_fixture(x12_dir, "edi835parser_united_healthcare_legacy_sample.txt"))
    pay = uhc.payments.iloc[0]
    assert pay["payer_id"] == "87726"  # N1*PR N104 (also REF*2U)
    assert pay["payee_npi"] == "1922164458"
    # a CAS with two triplets: PR-2 5.13 and PR-1 110 on the last line
    last = uhc.adjustments[uhc.adjustments["line_index"] == 5]
    assert last[["group_code", "carc", "amount"]].values.tolist() == [
        ["PR", "2", 5.13],
        ["PR", "1", 110.0],
        ["CO", "45", 184.32],
    ]
    blue = _read_quiet(_fixture(x12_dir, "edi835parser_blue_cross_nc_sample.txt"))
    assert blue.service_lines["original_cpt"].tolist()[:2] == ["59410", "59410"]  # SVC06
    assert pd.isna(blue.service_lines["allowed"].iloc[1])  # no AMT*B6: NaN, not 0
    managed = _read_quiet(_fixture(x12_dir, "lfh_managed-care.835"))
    lines = managed.service_lines
    assert lines["service_date_source"].tolist() == ["DTM*150", "DTM*150"]
    assert lines["paid_units"].tolist() == [1.0, 1.0]  # SVC05 absent
    assert managed.adjustments["level"].tolist() == ["claim", "line", "claim", "line", "line"]
    assert pd.isna(managed.payments["payment_date"].iloc[0])
    secondary = _read_quiet(_fixture(x12_dir, "lfh_secondary-payment.835"))
    assert secondary.service_lines["modifiers"].tolist() == ["26", "26"]
    assert secondary.claims["patient_responsibility"].tolist() == [0.0, 220.0]  # CLP05 empty
    assert secondary.claims["status"].tolist() == ["2", "2"]
    dbx = _read_quiet(_fixture(x12_dir, "synthetic_835_plb_notification.edi"))
    assert dbx.plb[["reason", "amount"]].values.tolist() == [
        ["72", -14.0],
        ["WO", 14.0],
        ["B2", -14.0],
    ]
    # the payee comes from the 1000B loop only, not the N1*PE lines inside the claims
    assert dbx.payments["payee_name"].tolist() == ["SUMMER"]
    # a file with no service lines still has a typed, empty service_lines table
    assert dbx.service_lines.empty
    assert dbx.service_lines.dtypes.to_dict() == uhc.service_lines.dtypes.to_dict()


# ---- the synthetic massage remittance (FACTS 6.1) ------------------------------------------


def test_synthetic_massage_file():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the example is clean: no warning at all
        remit = read_835(SYNTHETIC, source_name="synthetic")
    claims = remit.claims
    assert claims["claim_id"].tolist() == ["PCN1001", "PCN1002"]
    assert claims["paid"].tolist() == [45.44, 0.0]
    # paid 0 keeps CLP02 = 1 (X12 RFI 1423): not turned into a denial
    assert claims["status"].tolist() == ["1", "1"]
    assert not claims["is_reversal"].any()
    assert claims["patient_responsibility"].tolist() == [10.0, 0.0]
    assert claims["claim_service_date"].tolist() == [pd.Timestamp("2026-03-02")] * 2
    assert claims["received_date"].tolist() == [pd.Timestamp("2026-03-10")] * 2

    lines = remit.service_lines
    assert lines["cpt"].tolist() == ["97140", "97124", "97010"]
    assert lines["modifiers"].tolist() == ["GP", "GP", "GP"]
    assert lines["paid_units"].tolist() == [2.0, 1.0, 1.0]
    assert lines["allowed"].tolist() == [55.44, 0.0, 0.0]
    assert lines["line_control_number"].tolist() == ["L1", "L1", "L2"]
    assert lines["service_date"].tolist() == [pd.Timestamp("2026-03-02")] * 3

    adj = remit.adjustments
    rows = adj[["claim_id", "group_code", "carc", "amount"]].values.tolist()
    assert rows == [
        ["PCN1001", "CO", "45", 64.56],
        ["PCN1001", "PR", "3", 10.0],
        ["PCN1002", "CO", "97", 45.0],
        ["PCN1002", "CO", "97", 25.0],
    ]
    denied = adj.merge(lines[["line_index", "cpt"]], on="line_index")
    assert denied.loc[denied["carc"] == "97", ["cpt", "amount"]].values.tolist() == [
        ["97124", 45.0],
        ["97010", 25.0],
    ]
    assert (adj["level"] == "line").all()

    remarks = remit.remarks
    assert remarks[["code", "level", "line_index", "source"]].values.tolist() == [
        ["M80", "line", 2, "LQ*HE"],
        ["M15", "line", 3, "LQ*HE"],
    ]
    assert remit.plb[["reason", "reference", "amount"]].values.tolist() == [
        ["WO", "SYNCLM0000", 5.0]
    ]
    pay = remit.payments.iloc[0]
    assert pay["paid_amount"] == 40.44
    assert pay["trace_number"] == "SYNEFT000001"
    assert pay["payment_date"] == pd.Timestamp("2026-03-18")
    assert pay["payee_npi"] == "1234567893" and pay["payee_tin"] == "990000001"
    transaction = remit.balance[remit.balance["level"] == "transaction"].iloc[0]
    assert transaction["expected"] == 40.44 and transaction["actual"] == 40.44  # 45.44 - 5
    assert remit.balance["balanced"].all()
    assert len(remit.balance) == 3 + 2 + 1


def test_dtypes_and_empty_tables():
    remit = _read_quiet(SYNTHETIC)
    assert remit.claims["charge"].dtype == "float64"
    assert remit.claims["status"].dtype == "str"
    assert remit.service_lines["cpt"].dtype == "str"
    assert str(remit.claims["statement_from"].dtype).startswith("datetime64")
    assert remit.adjustments["line_index"].dtype == "Int64"
    empty, errors = read_835_many([])
    for name, frame in empty.tables().items():
        assert frame.empty
        assert list(frame.columns) == list(getattr(remit, name).columns)
        assert frame.dtypes.to_dict() == getattr(remit, name).dtypes.to_dict()
    assert list(errors.columns) == ["file", "error"]
    assert list(empty.summary().columns) == list(remit.summary().columns)


# ---- tokenizer -------------------------------------------------------------------------------


def _segments(text: str) -> list[list[str]]:
    return [s.split("*") for s in text.strip().replace("\n", "").split("~") if s]


def _rewrite(
    text: str, element: str, component: str, terminator: str, repetition: str = "^"
) -> str:
    """The same interchange written with other delimiters."""
    out = []
    for seg in _segments(text):
        if seg[0] == "ISA":
            seg = seg[:11] + [repetition] + seg[12:16] + [component]
        else:
            seg = [e.replace(":", component) for e in seg]
        out.append(element.join(seg))
    return terminator.join(out) + terminator


def _comparable(remit: Remittance) -> dict[str, pd.DataFrame]:
    return {
        name: frame.drop(columns=["file", "segment"], errors="ignore")
        for name, frame in remit.tables().items()
    }


def _assert_same_tables(a: Remittance, b: Remittance) -> None:
    left, right = _comparable(a), _comparable(b)
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], check_dtype=True, obj=name)


def test_tokenize_synthetic():
    segs = tokenize(SYNTHETIC)
    assert len(segs) == 41
    assert segs[0][0] == "ISA" and segs[0][16] == ":"
    assert segs[16] == ["SVC", "HC:97140:GP", "120", "45.44", "", "2"]  # segment 17


@pytest.mark.parametrize(
    ("element", "component", "terminator", "repetition"),
    [
        ("|", "^", "\n", "{"),
        ("*", ">", "~\r\n", "^"),
        ("*", ":", "~", "^"),  # one long line
        ("^", "\\", "'", "{"),
        ("*", ":", "~\n\n", "^"),  # blank lines between segments
    ],
)
def test_delimiter_variants_give_identical_tables(element, component, terminator, repetition):
    base = _read_quiet(SYNTHETIC)
    text = _rewrite(SYNTHETIC, element, component, terminator, repetition)
    variant = read_835(text.encode(), source_name="variant")
    _assert_same_tables(base, variant)
    assert variant.service_lines["modifiers"].tolist() == ["GP", "GP", "GP"]


def test_file_starting_at_st():
    body = [s for s in _segments(SYNTHETIC) if s[0] not in ("ISA", "GS", "GE", "IEA")]
    text = "~".join("*".join(s) for s in body) + "~"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bare = read_835(text)
    _assert_same_tables(_read_quiet(SYNTHETIC), bare)
    # ST-start with '>' composites (as some public samples have): detected, not declared
    gt = read_835(text.replace("HC:", "HC>").replace(":GP", ">GP").replace("WO:", "WO>"))
    assert gt.service_lines["cpt"].tolist() == ["97140", "97124", "97010"]
    assert gt.plb["reference"].tolist() == ["SYNCLM0000"]


def test_two_interchanges_and_two_transactions():
    second = SYNTHETIC.replace("000000101", "000000102").replace("PCN100", "PCN200")
    remit = _read_quiet(SYNTHETIC + second)
    assert remit.payments["st_index"].tolist() == [1, 2]
    assert remit.claims["claim_index"].tolist() == [1, 2, 3, 4]
    assert remit.claims["st_index"].tolist() == [1, 1, 2, 2]
    assert remit.claims["claim_id"].tolist() == ["PCN1001", "PCN1002", "PCN2001", "PCN2002"]
    assert remit.service_lines["line_index"].tolist() == [1, 2, 3, 4, 5, 6]
    assert remit.claims["segment"].tolist() == [14, 23, 41 + 14, 41 + 23]
    assert remit.balance["balanced"].all()
    # two ST/SE inside one GS
    segs = _segments(SYNTHETIC)
    st_block = segs[2:-2]
    st_block2 = [[*s] for s in st_block]
    st_block2[0][2] = st_block2[-1][2] = "0002"
    text = "~".join("*".join(s) for s in segs[:2] + st_block + st_block2 + segs[-2:]) + "~"
    both = _read_quiet(text)
    assert both.payments["st_control_number"].tolist() == ["0001", "0002"]
    assert both.summary()["paid_total"].tolist() == [90.88]
    assert both.summary()["balanced"].tolist() == [True]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tokenizer_matches_pyx12(x12_dir, name):
    x12file = pytest.importorskip("pyx12.x12file")
    path = _fixture(x12_dir, name)
    if not path.read_text().startswith("ISA"):
        pytest.skip(f"pyx12's X12Reader needs an ISA envelope; {name} starts at ST")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with x12file.X12Reader(str(path)) as reader:
            theirs = [
                [seg.get_seg_id(), *[element.format() for element in seg.elements]]
                for seg in reader
            ]
    assert tokenize(path) == theirs


# ---- reversals and legacy codes --------------------------------------------------------------

REVERSAL = """\
ST*835*0007~
BPR*I*4.56*C*CHK************20260401~
TRN*1*SYNCHK0007*1999999999~
N1*PR*SYNTHETIC HEALTH PLAN~
N1*PE*EXAMPLE MASSAGE AND REHAB*XX*1234567893~
LX*1~
CLP*PCN1001*22*-120*-45.44*-10*12*SYNCLM0001*11*1~
SVC*HC:97140:GP*-120*-45.44**-2~
DTM*472*20260302~
CAS*CO*45*-64.56~
CAS*PR*3*-10~
CLP*PCN1001*1*120*50*10*12*SYNCLM0001B*11*7~
SVC*HC:97140:GP*120*50**2~
DTM*472*20260302~
CAS*CR*45*60~
CAS*PR*3*10~
SE*17*0007~
"""


def test_reversal_keeps_negative_amounts_and_legacy_cr():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # CR is accepted without a warning
        remit = read_835(REVERSAL)
    claims = remit.claims
    assert claims["is_reversal"].tolist() == [True, False]
    assert claims[["charge", "paid", "patient_responsibility"]].values.tolist() == [
        [-120.0, -45.44, -10.0],
        [120.0, 50.0, 10.0],
    ]
    assert remit.service_lines["charge"].tolist() == [-120.0, 120.0]
    assert remit.service_lines["paid_units"].tolist() == [-2.0, 2.0]
    assert remit.adjustments["group_code"].tolist() == ["CO", "PR", "CR", "PR"]
    assert remit.adjustments["amount"].tolist() == [-64.56, -10.0, 60.0, 10.0]
    assert remit.balance["balanced"].all()  # -45.44 + 50 = 4.56 = BPR02


# ---- bad input ---------------------------------------------------------------------------------


def test_not_x12(tmp_path):
    path = tmp_path / "remit.csv"
    path.write_text("claim_id,paid\nPCN1,10\n")
    with pytest.raises(X12Error, match=r"remit\.csv: not an X12 file.*ISA") as info:
        read_835(path)
    assert info.value.where == "remit.csv segment 1"


def test_empty_file(tmp_path):
    (tmp_path / "empty.835").write_text("\n")
    with pytest.raises(X12Error, match="empty"):
        read_835(tmp_path / "empty.835")


def test_truncated_file_names_segment_and_claim():
    cut = SYNTHETIC[: SYNTHETIC.index("LQ*HE*M80")]  # ends inside claim PCN1002
    with pytest.raises(X12Error) as info:
        read_835(cut, source_name="cut.835")
    message = str(info.value)
    assert "cut.835" in message and "segment 30" in message and "no SE" in message
    assert "'PCN1002'" in message and "segment 23" in message and "truncated" in message


def test_new_st_before_se():
    segs = _segments(SYNTHETIC)
    text = "~".join("*".join(s) for s in segs[2:20] + segs[2:-2]) + "~"
    with pytest.raises(X12Error, match=r"segment 19 starts a new transaction"):
        read_835(text)


def test_isa_of_another_length_is_read_from_its_structure():
    # ISA is fixed-width, 106 characters (X12.5); with its padding trimmed or added, its 16
    # elements still tell the separators: the reader warns and reads the same tables.
    whole = _read_quiet(SYNTHETIC)
    short = SYNTHETIC.replace("SYNTHPAYER01   *", "SYNTHPAYER01*", 1)
    long = SYNTHETIC.replace("SYNTHPAYER01   *", "SYNTHPAYER01    *", 1)
    for text, length in ((short, 103), (long, 107)):
        with pytest.warns(X12Warning, match=rf"segment 1 \(ISA\) is {length} characters long"):
            remit = read_835(text, source_name="isa.835")
        _assert_same_tables(whole, remit)
    # where the structure is broken too (an element separator inside ISA06), it is an error
    broken = SYNTHETIC.replace("SYNTHPAYER01   *", "SYNTH*PAYER01*", 1)
    with pytest.raises(X12Error, match=r"ISA\) has .T. in ISA16"):
        read_835(broken, source_name="isa.835")


def test_se_count_mismatch_is_a_warning():
    text = SYNTHETIC.replace("SE*37*0001", "SE*36*0001")
    with pytest.warns(X12Warning, match=r"SE at segment 39 says .* 36 segments.* count 37"):
        remit = read_835(text)
    assert len(remit.claims) == 2


def test_unbalanced_file_warns_once():
    text = SYNTHETIC.replace("CAS*CO*97*25~", "CAS*CO*97*20~")  # line and claim off by 5
    with pytest.warns(BalanceWarning) as caught:
        remit = read_835(text)
    assert len([w for w in caught if issubclass(w.category, BalanceWarning)]) == 1
    failed = remit.balance[~remit.balance["balanced"]]
    assert failed["level"].tolist() == ["line", "claim"]
    assert failed["difference"].tolist() == [-5.0, -5.0]


def test_directory_with_one_bad_file(tmp_path):
    (tmp_path / "a.835").write_text(SYNTHETIC)
    (tmp_path / "b.835").write_text(SYNTHETIC[:400])  # truncated
    (tmp_path / "c.835").write_text(REVERSAL)
    (tmp_path / ".hidden.835").write_text("not read")
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "d.835").write_text("not read")
    (tmp_path / "2025" / "gold").mkdir(parents=True)
    (tmp_path / "2025" / "gold" / "d.835").write_text(REVERSAL)  # a subfolder of the download folder
    remit, errors = read_835_many(tmp_path)
    assert remit.summary()["file"].tolist() == ["d.835", "a.835", "c.835"]  # path order: 2025/gold/d.835 first
    assert errors["file"].tolist() == ["b.835"]
    assert "truncated" in errors["error"].iloc[0]
    remit2, errors2 = read_835_many([tmp_path / "a.835", tmp_path / "missing.835"])
    assert len(remit2.claims) == 2 and errors2["file"].tolist() == ["missing.835"]


# ---- many files: built in batches, equal to reading them one by one ---------------------------

TABLES = ("payments", "claims", "service_lines", "adjustments", "remarks", "plb", "balance")


def _one_by_one(paths: list[Path]) -> tuple[Remittance, list[dict[str, str]], list[tuple]]:
    """Each file read on its own with read_835: the stacked tables, the errors and the
    warnings (category, message), in file order."""
    parts, errors, notes = [], [], []
    for path in paths:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                parts.append(read_835(path))
            except (X12Error, OSError) as exc:
                errors.append({"file": path.name, "error": str(exc)})
        notes.extend((w.category, str(w.message)) for w in caught)
    return Remittance.concat(parts), errors, notes


def _many(paths: list[Path]) -> tuple[Remittance, pd.DataFrame, list[tuple]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remit, errors = read_835_many(paths)
    return remit, errors, [(w.category, str(w.message)) for w in caught]


def _assert_many_equals_one_by_one(paths: list[Path]) -> Remittance:
    remit, errors, notes = _many(paths)
    expected, expected_errors, expected_notes = _one_by_one(paths)
    for name in TABLES:
        pd.testing.assert_frame_equal(
            getattr(remit, name), getattr(expected, name), check_exact=True, obj=name
        )
    assert errors.to_dict("records") == expected_errors
    assert notes == expected_notes
    return remit


def _varied_folder(folder: Path) -> list[Path]:
    """Readable files of every kind, with unreadable ones among them (in name order)."""
    second = SYNTHETIC.replace("000000101", "000000102").replace("PCN100", "PCN200")
    texts = {
        "a_synthetic.835": SYNTHETIC,
        "b_reversal.835": REVERSAL,  # starts at ST, legacy CR group
        "c_unbalanced.835": SYNTHETIC.replace("CAS*CO*97*25~", "CAS*CO*97*20~"),
        "d_truncated.835": SYNTHETIC[:400],  # unreadable: no SE
        "e_bad_dates.835": SYNTHETIC.replace("DTM*472*20260302", "DTM*472*20260231"),
        "f_other_delimiters.835": _rewrite(SYNTHETIC, "|", ">", "\n", "{"),
        "g_not_finite.835": SYNTHETIC.replace("CAS*PR*3*10~", "CAS*PR*3*nan~"),  # claim set aside
        "h_two_interchanges.835": SYNTHETIC + second,
        "i_declared_colon_uses_gt.835": SYNTHETIC.replace("HC:", "HC>").replace(":GP", ">GP"),
        "j_garbage.835": "garbage",  # unreadable: not X12
        "k_se_count.835": SYNTHETIC.replace("SE*37*0001", "SE*36*0001"),
        "l_unknown_group.835": REVERSAL.replace("CAS*CR*45*60", "CAS*ZZ*45*60"),
        "m_infinite_allowed.835": SYNTHETIC.replace("AMT*B6*55.44", "AMT*B6*inf"),  # set aside
        "n_synthetic_again.835": SYNTHETIC.replace("SYNMBR001", "SYNMBR002"),
    }
    paths = []
    for name, text in texts.items():
        (folder / name).write_text(text)
        paths.append(folder / name)
    return paths


@pytest.mark.parametrize(
    ("batch_rows", "chunk_bytes"),
    [
        (None, None),  # every readable file in one batch
        (1, None),  # one file per batch
        (12, None),  # a few files per batch
        (None, 256),  # files of several parts, built on their own, among batched ones
    ],
)
def test_batched_files_equal_files_read_one_by_one(tmp_path, monkeypatch, batch_rows, chunk_bytes):
    if batch_rows is not None:
        monkeypatch.setattr(remittance_files, "_BATCH_ROWS", batch_rows)
    if chunk_bytes is not None:
        collect = functools.partial(remittance_files._collect, chunk_bytes=chunk_bytes)
        monkeypatch.setattr(remittance_files, "_collect", collect)
    built: list[list[str]] = []
    build = remittance_files.build_tables
    # files read whole are built in read_835_many, the parts of a file by its reader
    for module in (remittance_files, remittance_reader):
        monkeypatch.setattr(
            module,
            "build_tables",
            lambda entries: built.append([e.name for e in entries]) or build(entries),
        )
    paths = _varied_folder(tmp_path)
    remit = _assert_many_equals_one_by_one(paths)
    unreadable = ["d_truncated.835", "j_garbage.835"]
    assert remit.summary()["file"].tolist() == [p.name for p in paths if p.name not in unreadable]
    _, errors, _ = _many(paths)
    assert errors["file"].tolist() == unreadable
    if chunk_bytes is not None:  # read in parts, each built as it comes
        assert built.count(["a_synthetic.835"]) > 1
    if batch_rows is None and chunk_bytes is None:
        # the readable files were built together
        assert max(len(names) for names in built) == len(paths) - len(unreadable)


def test_batched_sample_and_fixture_files_equal_one_by_one(tmp_path):
    sample = sorted((REPO / "data" / "sample" / "remittances").glob("*.835"))[::20]
    assert len(sample) >= 10
    (tmp_path / "unreadable.835").write_text(SYNTHETIC[: SYNTHETIC.index("SE*")])
    middle = len(sample) // 2
    paths = [*sample[:middle], tmp_path / "unreadable.835", *sample[middle:]]
    remit = _assert_many_equals_one_by_one(paths)
    assert remit.claims["file"].nunique() == len(sample)
    fixtures = REPO / "tests" / "data" / "x12-835"
    _assert_many_equals_one_by_one(sorted(p for p in fixtures.iterdir() if p.is_file()))


def test_same_file_twice_and_only_unreadable_files(tmp_path):
    (tmp_path / "a.835").write_text(SYNTHETIC)
    (tmp_path / "b.835").write_text("garbage")
    path = tmp_path / "a.835"
    remit, errors, _ = _many([path, path, tmp_path / "b.835", path])
    # a name given more than once is the full path; the three reads stack as one run
    expected = Remittance.concat([_read_quiet(path, source_name=str(path))] * 3)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(remit, name), getattr(expected, name), obj=name)
    assert errors["file"].tolist() == ["b.835"]
    empty, errors, _ = _many([tmp_path / "b.835", tmp_path / "missing.835"])
    assert errors["file"].tolist() == ["b.835", "missing.835"]
    for name, frame in empty.tables().items():
        assert frame.empty
        assert (
            frame.dtypes.to_dict() == getattr(remittance_tables._empty_remittance(), name).dtypes.to_dict()
        )


_BATCH_SEEDS = [
    SYNTHETIC,
    REVERSAL,
    SYNTHETIC.replace("HC:", "HC>").replace(":GP", ">GP"),
    _rewrite(SYNTHETIC, "|", "^", "\n", "{"),
]


@st.composite
def _file_texts(draw) -> list[str]:
    """A few 835 texts, some of them damaged (cut, with text inserted or deleted, or with a
    non-number where an amount goes)."""
    texts = []
    for _ in range(draw(st.integers(1, 6))):
        text = draw(st.sampled_from(_BATCH_SEEDS))
        kind = draw(st.sampled_from(["none", "none", "truncate", "insert", "delete", "amount"]))
        if kind == "truncate":
            text = text[: draw(st.integers(0, len(text)))]
        elif kind == "insert":
            pos = draw(st.integers(0, len(text)))
            text = text[:pos] + draw(st.text(min_size=1, max_size=8)) + text[pos:]
        elif kind == "delete":
            start = draw(st.integers(0, len(text)))
            text = text[:start] + text[start + draw(st.integers(1, 30)) :]
        elif kind == "amount":
            amount = draw(st.sampled_from(["nan", "inf", "-inf", "1e999", "x", ""]))
            text = text.replace("*45.44*", f"*{amount}*", 1)
        texts.append(text)
    return texts


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=_file_texts(), batch_rows=st.sampled_from([1, 5, 250_000]))
def test_batches_never_change_the_outcome(tmp_path_factory, texts, batch_rows):
    folder = tmp_path_factory.mktemp("batch")
    paths = []
    for i, text in enumerate(texts):
        paths.append(folder / f"{i:02d}.835")
        paths[-1].write_text(text)
    saved = remittance_files._BATCH_ROWS
    remittance_files._BATCH_ROWS = batch_rows
    try:
        _assert_many_equals_one_by_one(paths)
    finally:
        remittance_files._BATCH_ROWS = saved


# ---- privacy -----------------------------------------------------------------------------------

_PERSON_QUALIFIERS = {"QC", "IL", "74", "GB"}  # patient, insured, corrected name, other subscriber


def _string_cells(remit: Remittance) -> list[str]:
    cells: list[str] = []
    for frame in remit.tables().values():
        for column in frame.columns:
            if frame[column].dtype == "str" or frame[column].dtype == object:
                cells.extend(str(v) for v in frame[column].dropna())
    return cells


def _people(segments: list[list[str]]) -> tuple[set[str], set[str]]:
    names, ids = set(), set()
    for seg in segments:
        if seg[0] == "NM1" and len(seg) > 1 and seg[1] in _PERSON_QUALIFIERS:
            names.update(x for x in seg[3:8] if len(x.strip()) > 1)  # initials alone are not names
            if len(seg) > 9 and seg[9].strip():
                ids.add(seg[9].strip())
    return names, ids


def _privacy_check(source, segments: list[list[str]]) -> None:
    remit = _read_quiet(source)
    names, ids = _people(segments)
    assert names and ids
    cells = _string_cells(remit)
    outside_nm1 = "~".join("*".join(s) for s in segments if s[0] != "NM1")
    for cell in cells:
        assert cell not in names and cell not in ids
        for ident in ids:
            # an id may legitimately appear elsewhere in the file (fake data reuses digits)
            if ident not in outside_nm1:
                assert ident not in cell, (ident, cell)
    keys = remit.claims["patient_key"].dropna()
    assert keys.str.fullmatch(r"[0-9a-f]{16}").all()


def test_privacy_synthetic():
    _privacy_check(SYNTHETIC, tokenize(SYNTHETIC))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_privacy_fixtures(x12_dir, name):
    path = _fixture(x12_dir, name)
    segments = tokenize(path)
    if not _people(segments)[1]:
        pytest.skip(f"{name} has no patient id")
    _privacy_check(path, segments)


def _hmac16(key: bytes, ident: str) -> str:
    """First 16 hex digits of HMAC-SHA-256(key, id) (RFC 2104 with SHA-256), the keyed
    pseudonym the README describes, computed here with the standard library alone."""
    import hmac

    return hmac.new(key, ident.encode(), "sha256").hexdigest()[:16]


def test_patient_key_salt(monkeypatch):
    monkeypatch.delenv("ANALYTICS_ID_SALT", raising=False)
    monkeypatch.delenv("ANALYTICS_PRACTICE_KEY", raising=False)
    default = _read_quiet(SYNTHETIC).claims["patient_key"].iloc[0]
    assert default == _hmac16(DEFAULT_SALT.encode(), "SYNMBR001")
    salted = _read_quiet(SYNTHETIC, salt="practice-secret").claims["patient_key"].iloc[0]
    assert salted == _hmac16(b"practice-secret", "SYNMBR001")
    monkeypatch.setenv("ANALYTICS_ID_SALT", "practice-secret")
    assert _read_quiet(SYNTHETIC).claims["patient_key"].iloc[0] == salted
    # both claims belong to the same patient, so they share the key
    assert _read_quiet(SYNTHETIC).claims["patient_key"].nunique() == 1


def test_insured_id_used_when_patient_has_none():
    text = SYNTHETIC.replace(
        "NM1*QC*1*SAMPLE*PAT****MI*SYNMBR001~\nDTM*050*20260310~\nSVC*HC:97140",
        "NM1*QC*1*SAMPLE*PAT~\nNM1*IL*1*SAMPLE*SUB****MI*SYNSUB001~\nDTM*050*20260310~\n"
        "SVC*HC:97140",
    ).replace("SE*37*", "SE*38*")
    remit = _read_quiet(text, salt="s")
    assert remit.claims["patient_key"].iloc[0] == _hmac16(b"s", "SYNSUB001")
    assert "SUB" not in _string_cells(remit)


# ---- linking -------------------------------------------------------------------------------------


def _charges() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "claim_id": ["PCN1001", "PCN1002", "PCN1002", "PCN1003"],
            "line_id": ["L1", "L1", None, "L1"],
            "cpt": ["97140", "97124", "97010", "97140"],
            "service_date": ["2026-03-02", "2026-03-02", "2026-03-02", "2026-03-09"],
            "charge": [120.0, 45.0, 25.0, 120.0],
            "patient": ["a", "a", "a", "b"],
        },
        index=[10, 11, 12, 13],
    )


def test_link_tiers_and_counts():
    remit = _read_quiet(SYNTHETIC).service_lines
    charges = _charges()
    before = charges.copy()
    linked = link_remittance(charges, remit)
    pd.testing.assert_frame_equal(charges, before)  # the caller's frame is not changed
    matched = linked.matched
    assert matched["charge_row"].tolist() == [10, 11, 12]
    assert matched["remit_row"].tolist() == [0, 1, 2]
    assert matched["match_rule"].tolist() == [
        "claim_id+line_control_number",
        "claim_id+line_control_number",
        "claim_id+cpt+service_date",
    ]
    assert matched["remit_paid"].tolist() == [45.44, 0.0, 0.0]
    assert matched["patient"].tolist() == ["a", "a", "a"]
    assert linked.open_charges.index.tolist() == [13]
    assert linked.unmatched_remittance.empty
    assert len(matched) + len(linked.open_charges) == len(charges)
    assert len(matched) + len(linked.unmatched_remittance) == len(remit)


def test_link_unmatched_remittance_and_duplicates():
    remit = _read_quiet(SYNTHETIC).service_lines
    charges = _charges().iloc[[0]]  # only the 97140 line is on the books
    linked = link_remittance(charges, remit)
    assert len(linked.matched) == 1
    assert linked.unmatched_remittance["cpt"].tolist() == ["97124", "97010"]
    # two identical lines without line ids pair one-to-one, in order
    twice = SYNTHETIC.replace("REF*6R*L1~\nAMT*B6*55.44", "AMT*B6*55.44")
    lines = _read_quiet(twice).service_lines
    lines = pd.concat([lines.iloc[[0]], lines], ignore_index=True)
    charges = pd.DataFrame(
        {
            "claim_id": ["PCN1001", "PCN1001", "PCN1001"],
            "line_id": [None, None, None],
            "cpt": ["97140"] * 3,
            "service_date": pd.to_datetime(["2026-03-02"] * 3),
            "charge": [120.0] * 3,
        }
    )
    linked = link_remittance(charges, lines)
    assert linked.matched["remit_row"].tolist() == [0, 1]
    assert linked.matched["match_rule"].unique().tolist() == ["claim_id+cpt+service_date"]
    assert linked.open_charges.index.tolist() == [2]
    assert len(linked.unmatched_remittance) == 2  # the PCN1002 lines


def test_link_needs_columns():
    with pytest.raises(Exception, match="needs columns"):
        link_remittance(pd.DataFrame({"claim_id": ["x"]}), _read_quiet(SYNTHETIC).service_lines)


# ---- command line --------------------------------------------------------------------------------


def test_cli_json(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.835").write_text(SYNTHETIC)
    out = tmp_path / "out"
    code = main(["remit", str(tmp_path / "in"), "--out", str(out), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert list(payload) == ["balanced_means", "files"]
    # FACTS 6.1: 3 lines, 2 claims, 1 transaction, every check balanced
    assert payload["files"] == [
        {
            "file": "a.835",
            "claims": 2,
            "service_lines": 3,
            "paid_total": 45.44,
            "adjustments_total": 144.56,
            "plb_total": 5.0,
            "balanced": True,
            "balance": {
                "line": {
                    "rule": "SVC02 - sum(line CAS) = SVC03",
                    "checks": 3,
                    "failed": 0,
                    "balanced": True,
                },
                "claim": {
                    "rule": "CLP03 - sum(claim and line CAS) = CLP04",
                    "checks": 2,
                    "failed": 0,
                    "balanced": True,
                },
                "transaction": {
                    "rule": "sum(CLP04) - sum(PLB) = BPR02",
                    "checks": 1,
                    "failed": 0,
                    "balanced": True,
                },
            },
        }
    ]
    for table in (
        "payments",
        "claims",
        "lines",
        "adjustments",
        "remarks",
        "plb",
        "balance",
        "summary",
    ):
        assert (out / f"remit_{table}.parquet").exists() and (out / f"remit_{table}.csv").exists()
    assert len(pd.read_parquet(out / "remit_claims.parquet")) == 2
    assert not (out / "remit_errors.csv").exists()


def test_cli_table_and_errors(tmp_path, capsys):
    (tmp_path / "a.835").write_text(SYNTHETIC.replace("CAS*CO*97*25~", "CAS*CO*97*20~"))
    (tmp_path / "b.835").write_text("garbage")
    out = tmp_path / "out"
    code = main(["remit", str(tmp_path / "a.835"), str(tmp_path / "b.835"), "--out", str(out)])
    assert code == 1
    text = capsys.readouterr().out
    assert "a.835" in text and "45.44" in text and "Balance checks that fail" in text
    assert "b.835: b.835: not an X12 file" in text
    assert pd.read_csv(out / "remit_errors.csv")["file"].tolist() == ["b.835"]


def test_cli_subprocess(tmp_path):
    (tmp_path / "a.835").write_text(SYNTHETIC)
    (tmp_path / "b.835").write_text("garbage")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "analytics",
            "remit",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    payload = json.loads(result.stdout)
    assert [f["file"] for f in payload["files"]] == ["a.835"]
    assert payload["errors"][0]["file"] == "b.835"
    assert "not an X12 file" in payload["errors"][0]["error"]


# ---- property: generated remittances balance and add up -----------------------------------------


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


_groups = st.sampled_from(["CO", "PR", "OA", "PI"])
_triplet = st.tuples(
    _groups, st.sampled_from(["1", "2", "3", "45", "97", "253"]), st.integers(-5_000, 30_000)
)
_line = st.tuples(st.integers(0, 50_000), st.lists(_triplet, min_size=0, max_size=8))
_claim = st.tuples(
    st.lists(_line, min_size=0, max_size=3),
    st.lists(_triplet, min_size=0, max_size=4),  # claim-level CAS
    st.integers(0, 90_000),  # charge of a claim without lines
)


def _cas_segments(triplets) -> list[str]:
    """CAS segments: one group per segment, at most six triplets each (X12 RFI 213)."""
    out = []
    for group in dict.fromkeys(g for g, _, _ in triplets):
        mine = [(r, a) for g, r, a in triplets if g == group]
        for i in range(0, len(mine), 6):
            elements = ["CAS", group]
            for reason, amount in mine[i : i + 6]:
                elements += [reason, _money(amount), ""]  # empty quantity
            out.append("*".join(elements).rstrip("*"))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    claims=st.lists(_claim, min_size=1, max_size=5),
    plb=st.lists(st.integers(-3_000, 3_000), max_size=3),
)
def test_generated_remittances_balance(claims, plb):
    segs = [
        "ST*835*0001",
        "",
        "TRN*1*GEN*1",
        "N1*PR*GENERATED PLAN",
        "N1*PE*CLINIC*XX*1234567893",
        "LX*1",
    ]
    paid_total = adjustments_total = triplets = 0
    for c, (lines, claim_cas, lone_charge) in enumerate(claims):
        line_segs, line_cas_total, charge = [], 0, 0
        for i, (line_charge, cas) in enumerate(lines, start=1):
            cas_total = sum(a for _, _, a in cas)
            line_segs.append(
                f"SVC*HC:97140:GP*{_money(line_charge)}*{_money(line_charge - cas_total)}**1"
            )
            line_segs.append("DTM*472*20260302")
            line_segs.extend(_cas_segments(cas))
            line_segs.append(f"REF*6R*{i}")
            line_cas_total += cas_total
            charge += line_charge
            triplets += len(cas)
        if not lines:
            charge = lone_charge
        claim_cas_total = sum(a for _, _, a in claim_cas)
        paid = charge - claim_cas_total - line_cas_total
        segs.append(f"CLP*G{c}*1*{_money(charge)}*{_money(paid)}**12*P{c}")
        segs.extend(_cas_segments(claim_cas))
        segs.append(f"NM1*QC*1*DOE*JANE****MI*M{c}")
        segs.extend(line_segs)
        paid_total += paid
        adjustments_total += claim_cas_total + line_cas_total
        triplets += len(claim_cas)
    if plb:
        segs.append(
            "PLB*1234567893*20261231*" + "*".join(f"WO:R{i}*{_money(a)}" for i, a in enumerate(plb))
        )
    segs[1] = f"BPR*I*{_money(paid_total - sum(plb))}*C*ACH************20260318"
    segs.append(f"SE*{len(segs) + 1}*0001")
    text = "~".join(segs) + "~"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        remit = read_835(text)
    summary = remit.summary().iloc[0]
    assert remit.balance["balanced"].all()
    assert summary["claims"] == len(claims)
    assert summary["service_lines"] == sum(len(lines) for lines, _, _ in claims)
    assert len(remit.adjustments) == triplets
    assert round(summary["paid_total"] * 100) == paid_total
    assert round(summary["adjustments_total"] * 100) == adjustments_total
    assert round(summary["plb_total"] * 100) == sum(plb)
    assert np.isclose(remit.payments["paid_amount"].iloc[0] * 100, paid_total - sum(plb))


def test_docstring_examples_run():
    # the package and each of its modules (testmod looks only at what a module defines)
    modules = [remittance] + [
        importlib.import_module(f"{remittance.__name__}.{m.name}")
        for m in pkgutil.iter_modules(remittance.__path__)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = [
            doctest.testmod(m, optionflags=doctest.NORMALIZE_WHITESPACE) for m in modules
        ]
    result = doctest.TestResults(
        sum(r.failed for r in results), sum(r.attempted for r in results)
    )
    assert result.failed == 0 and result.attempted >= 5


def test_interchanges_with_different_delimiters():
    second = _rewrite(SYNTHETIC.replace("PCN100", "PCN200"), "|", ">", "\n", "{")
    remit = _read_quiet(SYNTHETIC + second)
    assert remit.claims["claim_id"].tolist() == ["PCN1001", "PCN1002", "PCN2001", "PCN2002"]
    assert remit.service_lines["cpt"].tolist() == ["97140", "97124", "97010"] * 2
    assert remit.service_lines["modifiers"].tolist() == ["GP"] * 6
    assert remit.plb["reference"].tolist() == ["SYNCLM0000"] * 2
    assert remit.balance["balanced"].all()


def test_claim_level_remarks_from_moa():
    text = SYNTHETIC.replace(
        "CLP*PCN1002*1*70*0*0*12*SYNCLM0002*11*1~\n",
        "CLP*PCN1002*1*70*0*0*12*SYNCLM0002*11*1~\nMOA***MA01*MA18~\n",
    ).replace("SE*37*", "SE*38*")
    remit = _read_quiet(text)
    claim_level = remit.remarks[remit.remarks["level"] == "claim"]
    assert claim_level[["claim_id", "code", "source"]].values.tolist() == [
        ["PCN1002", "MA01", "MOA03"],
        ["PCN1002", "MA18", "MOA04"],
    ]
    assert claim_level["line_index"].isna().all()
    assert remit.remarks["code"].tolist() == ["MA01", "MA18", "M80", "M15"]


def test_fixed_width_wrapped_file():
    # some systems wrap the whole interchange at 80 columns, cutting through segments
    flat = SYNTHETIC.replace("\n", "")
    wrapped = "\r\n".join(flat[i : i + 80] for i in range(0, len(flat), 80))
    _assert_same_tables(_read_quiet(SYNTHETIC), _read_quiet(wrapped))
