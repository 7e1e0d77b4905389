"""835 files that break the standard in the ways real files do, and the ``remit`` command's
outputs beside a practice's files.

Every file here is built from the synthetic remittance of FACTS section 6.1
(``tests/data/x12-835/synthetic_835_massage.edi``): 2 claims, 3 service lines, CAS
CO-45 64.56 + PR-3 10 + CO-97 45 + CO-97 25 = 144.56, PLB WO 5, BPR02 40.44 = 45.44 - 5.
The rules checked are those of the X12 standards: the ISA is fixed-width (106 characters,
X12.5), X12 decimal numbers (type R) are ASCII digits with an optional leading minus sign and
decimal point (X12.6), and GE01, IEA01 and IEA02 count and name what they close.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.cli import main
from analytics.cli.remit import practice_files_in
from analytics.exceptions import AnalyticsWarning, BalanceWarning, X12Error
from analytics.remittance import Remittance, iter_835, read_835

DATA = Path(__file__).resolve().parent / "data" / "x12-835"
SYNTHETIC = (DATA / "synthetic_835_massage.edi").read_text().replace("\r\n", "\n")
# a second interchange, with its own control numbers and claim ids
SECOND = (
    SYNTHETIC.replace("000000101", "000000102")
    .replace("*101*X*", "*102*X*")
    .replace("GE*1*101", "GE*1*102")
    .replace("PCN100", "PCN200")
)


def _read(text: str, **kwargs) -> tuple[Remittance, list[str]]:
    """The tables and the warning messages of one read."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remit = read_835(text, source_name="q.835", **kwargs)
    return remit, [str(w.message) for w in caught if issubclass(w.category, AnalyticsWarning)]


def _content(remit: Remittance) -> dict[str, pd.DataFrame]:
    """The tables without segment numbers (which move when segments are added or removed)."""
    return {
        name: frame.drop(columns=["segment", "file"], errors="ignore").reset_index(drop=True)
        for name, frame in remit.tables().items()
    }


def _assert_same_content(a: Remittance, b: Remittance) -> None:
    left, right = _content(a), _content(b)
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)


BASE, BASE_NOTES = _read(SYNTHETIC)


def test_the_base_file_reads_clean():
    assert BASE_NOTES == []
    assert BASE.summary()[["claims", "service_lines", "paid_total"]].values.tolist() == [
        [2, 3, 45.44]
    ]


# ---- mixed transaction sets ------------------------------------------------------------------

_ISA = SYNTHETIC.split("\n", 1)[0] + "\n"
_GS_HP = "GS*HP*SYNTHPAYER01*SYNTHCLINIC01*20260316*0930*101*X*005010X221A1~\n"
_835 = SYNTHETIC[SYNTHETIC.index("ST*835") : SYNTHETIC.index("GE*")]
_837 = (
    "ST*837*0001*005010X222A1~\nBHT*0019*00*0123*20260301*1023*CH~\n"
    "NM1*41*2*EXAMPLE MASSAGE*****46*12345~\nCLM*PCN9001*120***11:B:1*Y*A*Y*Y~\n"
    "SV1*HC:97140:GP*120*UN*2***1~\nSE*6*0001~\n"
)
_277 = "ST*277*0002*005010X212~\nBHT*0010*08*0001*20260301*1200*DG~\nSE*3*0002~\n"


def test_mixed_transaction_sets_read_the_835s_and_name_the_others():
    # X12 lets one interchange carry several functional groups, and a group several
    # transaction sets: here an 837 (its own GS*HC), the 835, and a 277 in the 835's group.
    text = (
        _ISA
        + "GS*HC*SYNTHCLINIC01*SYNTHPAYER01*20260301*1023*100*X*005010X222A1~\n"
        + _837
        + "GE*1*100~\n"
        + _GS_HP
        + _835
        + _277
        + "GE*2*101~\nIEA*2*000000101~\n"
    )
    remit, notes = _read(text)
    _assert_same_content(remit, BASE)
    assert len(notes) == 1, notes
    assert re.search(r"2 transaction set\(s\) that are not 835s were skipped", notes[0])
    assert "ST*837*0001 at segments 3-8 (health care claim)" in notes[0]
    assert "ST*277*0002 at segments 48-50 (claim status response)" in notes[0]
    # read in pieces, the outcome is the same
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = list(iter_835(text, source_name="q.835", chunk_bytes=7))
    _assert_same_content(Remittance.concat(parts), BASE)
    assert [str(w.message) for w in caught] == notes


def test_a_file_of_other_transaction_sets_only_is_refused_with_their_names():
    text = _ISA + _GS_HP.replace("HP", "HC", 1) + _837 + "GE*1*101~\nIEA*1*000000101~\n"
    with pytest.raises(X12Error, match=r"no ST\*835 .*holds only ST\*837\*0001"):
        read_835(text, source_name="q.835")


def test_an_other_transaction_set_without_se_ends_at_the_next_envelope():
    text = _ISA + _GS_HP + _277.replace("SE*3*0002~\n", "") + "GE*1*101~\n" + _GS_HP + _835
    text += "GE*1*101~\nIEA*2*000000101~\n"
    remit, notes = _read(text)
    _assert_same_content(remit, BASE)
    assert any("ST*277*0002 at segments 3-4 (claim status response, no SE)" in n for n in notes)


# ---- amounts that are not X12 numbers ----------------------------------------------------------

NOT_X12_NUMBERS = ["\u0661\u0662\u0663", "1_000", "1e5", "+5", "NaN", "inf", "1,0", "12O", "9" * 40]


@pytest.mark.parametrize("value", NOT_X12_NUMBERS)
def test_a_bad_cas_amount_sets_aside_its_claim_and_keeps_the_rest(value):
    # two transactions, four claims; the bad amount is in claim PCN1001 (CAS*PR*3 of its line)
    text = SYNTHETIC.replace("CAS*PR*3*10~", f"CAS*PR*3*{value}~") + SECOND
    remit, notes = _read(text)
    assert remit.claims["claim_id"].tolist() == ["PCN1002", "PCN2001", "PCN2002"]
    assert "PCN1001" not in set(remit.service_lines["claim_id"])
    assert "PCN1001" not in set(remit.adjustments["claim_id"])
    assert len(remit.service_lines) == 2 + 3
    message = next(n for n in notes if "set aside" in n)
    shown = re.escape(repr(value[:40]))
    assert re.search(rf"segment 20 \(CAS\) element CAS03 is {shown}, which is not an X12", message)
    assert "Claim 'PCN1001' (CLP at segment 14) was set aside" in message
    # the first transaction no longer balances (sum CLP04 0 - PLB 5 = -5, BPR02 40.44); the
    # second, untouched, does
    transactions = remit.balance[remit.balance["level"] == "transaction"]
    assert transactions["balanced"].tolist() == [False, True]
    assert transactions["expected"].tolist() == [-5.0, 40.44]


@pytest.mark.parametrize("value", NOT_X12_NUMBERS)
def test_a_bad_allowed_amount_sets_aside_its_claim(value):
    remit, notes = _read(SYNTHETIC.replace("AMT*B6*55.44~", f"AMT*B6*{value}~"))
    assert remit.claims["claim_id"].tolist() == ["PCN1002"]
    assert any("element AMT02" in n and "'PCN1001'" in n for n in notes)


@pytest.mark.parametrize("value", NOT_X12_NUMBERS)
def test_a_bad_payment_amount_is_missing_and_named(value):
    remit, notes = _read(SYNTHETIC.replace("BPR*I*40.44*", f"BPR*I*{value}*"))
    assert len(remit.claims) == 2  # nothing else is lost
    assert np.isnan(remit.payments["paid_amount"].iloc[0])
    assert remit.payments["payment_date"].notna().all()  # the rest of the BPR is read
    assert any("segment 4 (BPR) element BPR02" in n and "paid_amount is missing" in n for n in notes)
    assert not remit.balance.loc[remit.balance["level"] == "transaction", "balanced"].any()


def test_a_bad_plb_amount_sets_aside_that_plb():
    remit, notes = _read(SYNTHETIC.replace("WO:SYNCLM0000*5~", "WO:SYNCLM0000*5e0~"))
    assert remit.plb.empty and len(remit.claims) == 2
    assert any("element PLB04 is '5e0'" in n and "set aside" in n for n in notes)


@pytest.mark.parametrize(("text", "value"), [("010.", 10.0), ("0010.00", 10.0), ("10", 10.0)])
def test_x12_numbers_in_every_allowed_form(text, value):
    remit, notes = _read(SYNTHETIC.replace("CAS*PR*3*10~", f"CAS*PR*3*{text}~"))
    assert notes == []
    assert remit.adjustments["amount"].tolist()[1] == value


def test_negative_and_leading_point_amounts_are_numbers():
    # CAS*OA*94*-9 style negative adjustments (X12 allows a leading minus) and ".5"
    text = SYNTHETIC.replace("CAS*PR*3*10~", "CAS*PR*3*10.5~CAS*OA*94*-.5~")
    remit, notes = _read(text.replace("SE*37*", "SE*38*"))
    assert notes == []
    assert remit.adjustments["amount"].tolist()[1:3] == [10.5, -0.5]
    assert remit.balance["balanced"].all()


# ---- the ISA ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("isa_end", "pattern"),
    [
        ("*T*~", r"has an empty ISA16"),  # ISA16 left empty
        ("*T~", r"has no ISA16 \(component separator\) and ends after ISA15"),
    ],
)
def test_a_missing_isa16_is_named_and_the_file_read(isa_end, pattern):
    text = SYNTHETIC.replace("*T*:~", isa_end, 1)
    remit, notes = _read(text)
    _assert_same_content(remit, BASE)
    assert len(notes) == 1 and re.search(pattern, notes[0]), notes
    assert "segment terminator '~'" in notes[0]
    assert "composites use (':' if none)" in notes[0]


def test_a_letter_in_isa16_is_an_error_naming_isa16():
    with pytest.raises(X12Error, match=r"segment 1 \(ISA\) has 'A' in ISA16"):
        read_835(SYNTHETIC.replace("*T*:~", "*T*A~", 1), source_name="q.835")


def test_a_short_isa_of_a_later_interchange_is_read():
    short = SECOND.replace("SYNTHCLINIC01  *", "SYNTHCLINIC01*", 1)
    remit, notes = _read(SYNTHETIC + short)
    assert len(remit.claims) == 4
    assert notes == [
        "q.835: segment 42 (ISA) is 104 characters long, but an ISA is always 106 (its fields "
        "are fixed-width, padded with spaces); read from its structure with element separator "
        "'*', segment terminator '~' and component separator ':'."
    ]


# ---- wrapped files -------------------------------------------------------------------------------


def test_wrapped_at_80_columns_with_breaks_anywhere_in_a_later_isa_or_iea():
    # Some systems wrap the whole file at 80 columns, cutting through segments. Shifting the
    # text one character at a time puts a line break at every position of the second ISA and
    # of both IEAs; every interchange is read whole each time.
    flat = (SYNTHETIC + SECOND).replace("\n", "")
    whole, whole_notes = _read(flat)
    second_isa = flat.index("ISA", 10)
    covered: set[int] = set()
    for shift in range(80):
        text = " " * shift + flat
        wrapped = "\r\n".join(text[i : i + 80] for i in range(0, len(text), 80))
        covered.update(range(80 - shift, len(flat), 80))  # a break before flat[j]
        remit, notes = _read(wrapped)
        _assert_same_content(remit, whole)
        assert notes == whole_notes, shift
    assert set(range(second_isa, len(flat))) <= covered
    assert len(whole.claims) == 4


def test_a_lost_iea_is_never_called_complete():
    cut = SECOND[: SECOND.index("GE*")]  # the second interchange has no GE and no IEA
    remit, notes = _read(SYNTHETIC + cut)
    assert len(remit.claims) == 4
    message = next(n for n in notes if "IEA trailer" in n)
    assert "2 ISA header(s) but 1 IEA trailer(s)" in message
    assert "complete" not in message  # not "the transactions were complete and read"


# ---- segment ids and envelope counts -----------------------------------------------------------


def test_segment_ids_with_trailing_spaces_are_read_with_a_warning():
    text = SYNTHETIC.replace("SVC*", "SVC *").replace("CLP*PCN1002", "CLP  *PCN1002")
    remit, notes = _read(text)
    _assert_same_content(remit, BASE)
    assert notes == [
        "q.835: segment id(s) with spaces at segment(s) 17 ('SVC '), 23 ('CLP  '), 26 ('SVC '), "
        "32 ('SVC ') were read as the segments they name, without the spaces. Tell the sender."
    ]


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ("IEA*1*000000101", "IEA*1*000000109", r"IEA02 '000000109' at segment 41 does not match "
         r"ISA13 '000000101' at segment 1"),
        ("IEA*1*", "IEA*2*", r"IEA01 at segment 41 says the interchange holds 2 functional "
         r"group\(s\), but .* holds 1"),
        ("GE*1*101", "GE*2*101", r"GE01 at segment 40 says the group holds 2 transaction set\(s\), "
         r"but the group from GS \(segment 2\) holds 1"),
        ("GE*1*101", "GE*1*105", r"GE02 '105' at segment 40 does not match GS06 '101'"),
        ("SE*37*0001", "SE*36*0001", r"SE at segment 39 says the transaction has 36 segments, but "
         r"ST \(segment 3\) to SE count 37"),
        ("GS*HP", "BPR*I*1*C*CHK~\nGS*HP", r"segment\(s\) 2 \(BPR\) are outside a claim or "
         r"transaction and were not read"),
        ("REF*6R*L2~", "REF*6R*L2~\nXYZ*1*2~", r"segment\(s\) 36 \('XYZ'\) have ids an 835 does "
         r"not use and were not read"),
    ],
)  # fmt: skip
def test_envelope_and_segment_warnings(old, new, pattern):
    text = SYNTHETIC.replace(old, new, 1)
    if "XYZ" in new:
        text = text.replace("SE*37*", "SE*38*")
    remit, notes = _read(text)
    assert len(notes) == 1 and re.search(pattern, notes[0]), notes
    assert len(remit.claims) == 2 and len(remit.service_lines) == 3


def test_svc01_without_a_procedure_code_keeps_its_amounts_in_place():
    text = SYNTHETIC.replace("SVC*HC:97124:GP*45*0**1", "SVC**45*0**1")
    remit, notes = _read(text)
    line = remit.service_lines.iloc[1]
    assert pd.isna(line["cpt"])
    assert (line["charge"], line["paid"], line["paid_units"]) == (45.0, 0.0, 1.0)
    assert remit.balance["balanced"].all()
    assert len(notes) == 1 and "SVC01 at segment(s) 26 ('') holds no procedure code" in notes[0]


# ---- the remit command beside a practice's files -----------------------------------------------


@pytest.mark.parametrize(
    "practice_file",
    ["service_lines.parquet", "service_lines.csv", "mapping.yaml", "practice.yaml", "remittances/"],
)
def test_remit_refuses_a_practice_folder_and_leaves_it_as_it_was(tmp_path, capsys, practice_file):
    era = tmp_path / "era"
    era.mkdir()
    (era / "a.835").write_text(SYNTHETIC)
    practice = tmp_path / "practice"
    practice.mkdir()
    if practice_file.endswith("/"):
        (practice / practice_file).mkdir()
    else:
        (practice / practice_file).write_bytes(b"the practice's own data")
    before = sorted(p.name for p in practice.rglob("*"))
    assert main(["remit", str(era), "--out", str(practice)]) == 2
    err = capsys.readouterr().err
    assert f"--out {practice} holds a practice's files ({practice_file})" in err
    assert "Give --out a folder of its own" in err
    assert sorted(p.name for p in practice.rglob("*")) == before
    if not practice_file.endswith("/"):
        assert (practice / practice_file).read_bytes() == b"the practice's own data"


def test_remit_refuses_the_folder_of_its_835s(tmp_path, capsys):
    (tmp_path / "a.835").write_text(SYNTHETIC)
    assert main(["remit", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is the folder of the 835s given" in capsys.readouterr().err
    assert main(["remit", str(tmp_path / "a.835"), "--out", str(tmp_path)]) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["a.835"]


def test_remit_outputs_have_their_own_names(tmp_path, capsys):
    (tmp_path / "a.835").write_text(SYNTHETIC)
    out = tmp_path / "practice" / "remit"
    assert main(["remit", str(tmp_path / "a.835"), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names and all(n.startswith("remit_") for n in names), names
    assert practice_files_in(out) == []
    # a second run into the same folder is allowed: it is not a practice folder
    assert main(["remit", str(tmp_path / "a.835"), "--out", str(out)]) == 0
    capsys.readouterr()


def test_remit_help_says_what_balanced_covers(capsys):
    assert main(["remit", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in (
        "each service line (SVC02 charge - its CAS adjustments = SVC03 paid)",
        "each claim (CLP03 charge - its claim and line CAS adjustments = CLP04 paid)",
        "each transaction (sum of CLP04 - sum of PLB provider adjustments = BPR02 payment)",
        "service_lines.*, mapping.yaml, practice.yaml or remittances/",
    ):
        assert words in text, words


def test_remit_json_carries_each_level(tmp_path, capsys):
    # CO-97 20 instead of 25 on the third line: that line (25 - 20 = 5, paid 0) and its claim
    # (70 - 65 = 5, paid 0) fail; the transaction (45.44 - 5 = 40.44) still balances.
    (tmp_path / "a.835").write_text(SYNTHETIC.replace("CAS*CO*97*25~", "CAS*CO*97*20~"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BalanceWarning)
        assert main(["remit", str(tmp_path / "a.835"), "--out", str(tmp_path / "o"), "--json"]) == 0
    balance = json.loads(capsys.readouterr().out)["files"][0]["balance"]
    assert {level: (b["checks"], b["failed"]) for level, b in balance.items()} == {
        "line": (3, 1),
        "claim": (2, 1),
        "transaction": (1, 0),
    }


def test_remit_csv_cells_never_run_as_formulas(tmp_path, capsys):
    # claim ids a spreadsheet would run (OWASP CSV injection); amounts stay numbers
    text = SYNTHETIC.replace("PCN1001", "=2+5").replace("SYNCLM0002", "@SUM(1)")
    text = text.replace("CAS*PR*3*10~", "CAS*PR*3*10.5~CAS*OA*94*-.5~").replace("SE*37*", "SE*38*")
    (tmp_path / "a.835").write_text(text)
    out = tmp_path / "o"
    assert main(["remit", str(tmp_path / "a.835"), "--out", str(out)]) == 0
    capsys.readouterr()
    claims = pd.read_csv(out / "remit_claims.csv", dtype={"claim_id": str})
    assert claims["claim_id"].tolist() == ["'=2+5", "PCN1002"]
    assert claims["payer_claim_id"].tolist() == ["SYNCLM0001", "'@SUM(1)"]
    lines = pd.read_csv(out / "remit_lines.csv")
    assert lines["claim_id"].tolist()[0] == "'=2+5"
    adjustments = pd.read_csv(out / "remit_adjustments.csv")
    assert adjustments["amount"].dtype == float and -0.5 in adjustments["amount"].tolist()
    # Parquet is no spreadsheet: it keeps the value as sent
    assert pd.read_parquet(out / "remit_claims.parquet")["claim_id"].tolist()[0] == "=2+5"


def test_an_835_saved_as_utf16_says_so(tmp_path):
    text = ("ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *260316*0930*^*00501*000000101*0*T*:~"
            "GS*HP*PAYER*CLINIC*20260316*0930*101*X*005010X221A1~ST*835*0001~")
    path = tmp_path / "era.835"
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(X12Error, match=r"era\.835: the file was saved as UTF-16 .* save it again as ANSI or UTF-8"):
        read_835(path)


def test_a_debit_bpr_balances_against_negative_claim_payments(tmp_path):
    """BPR03 D: the payer takes money back (a reversal outweighs what it pays); sum of CLP04 -
    PLB is minus BPR02."""
    segs = ["ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *260316*0930*^*00501*000000101*0*T*:",
            "GS*HP*PAYER*CLINIC*20260316*0930*101*X*005010X221A1", "ST*835*0001",
            "BPR*D*60.00*D*ACH*CCP*01*011000015*DA*1*1999999999**01*021000021*DA*1*20260320",
            "TRN*1*X1*1999999999", "DTM*405*20260320", "N1*PR*GOLD PPO", "LX*1",
            "CLP*C1*22*-100.00*-60.00*0*12*PCN1", "SVC*HC:97140*-100.00*-60.00**-1", "CAS*CO*45*-40.00"]
    segs += [f"SE*{len(segs) - 1}*0001", "GE*1*101", "IEA*1*000000101"]
    path = tmp_path / "debit.835"
    path.write_text("~".join(segs) + "~")
    with warnings.catch_warnings():
        warnings.simplefilter("error", BalanceWarning)
        remit = read_835(path)
    assert remit.balance["balanced"].all()
    assert remit.payments.loc[0, "paid_amount"] == 60.0
