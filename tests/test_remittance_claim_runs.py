"""Long runs of claim loops read column by column give what the segment loop gives.

A large interchange is read with :class:`~analytics.remittance.scan.ClaimRuns` and
:func:`~analytics.remittance.scan.scan_claims` (no segment split one by one), and the
tokenizer hands long regions out unsplit (:class:`~analytics.remittance.tokenizer.SegmentText`).
Both only apply to long files, so here the thresholds are lowered to make small inputs take
that path, and every table, dtype and warning is compared with a read that never takes it.
Anything the column-wise scan cannot read exactly as the loop does (an amount that is not an
X12 number, a segment too short for what it carries) must leave the run to the loop.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analytics.remittance.reader as remittance_reader
import analytics.remittance.scan as remittance_scan
import analytics.remittance.tokenizer as remittance_tokenizer
from analytics.exceptions import AnalyticsError
from analytics.remittance import iter_835, read_835, tokenize
from analytics.remittance.tokenizer import SegmentText

FIXTURES = Path(__file__).resolve().parent / "data" / "x12-835"


def _claims(n_claims: int, seed: int) -> list[str]:
    """Segments of an 835 with the claim-loop features the column-wise scan reads: several
    CAS triplets with quantities, MOA/MIA remarks, NM1*QC and NM1*IL, claim and line dates,
    SVC04/SVC05/SVC06, REF*6R, AMT*B6, LQ, negative and unusual but valid X12 numbers."""
    rng = random.Random(seed)
    segs = [
        "ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *260316*0930*^*"
        "00501*000000101*0*T*:",
        "GS*HP*PAYER*CLINIC*20260316*0930*101*X*005010X221A1",
        "ST*835*0001",
        "BPR*I*100.00*C*ACH*CCP*01*999999999*DA*000111222*1999999999**01*888888888*DA*"
        "333444555*20260318",
        "TRN*1*TRACE01*1999999999",
        "DTM*405*20260316",
        "N1*PR*EXAMPLE PLAN",
        "N1*PE*EXAMPLE CLINIC*XX*1234567893",
        "LX*1",
    ]
    amounts = ["10.00", "-2.50", "5.", ".25", "007.10", "-0", "0.00", "1234.5", "3"]
    for c in range(n_claims):
        pr = rng.choice(["", "12.00", "0"])
        segs.append(f"CLP*PCN{c:05d}*{rng.choice('1234')}*{rng.choice(amounts)}*"
                    f"{rng.choice(amounts)}*{pr}*{rng.choice(['12', 'MC', ''])}*CLM{c}*11*1")  # fmt: skip
        if rng.random() < 0.2:
            segs.append(f"NM1*IL*1*DOE*JOHN****MI*IL{rng.randrange(5)}")
        segs.append(f"NM1*QC*1*DOE*JANE****MI*{rng.choice(['M1', 'M2', ' M3 ', ' ', 'M4'])}")
        if rng.random() < 0.2:
            segs.append(f"NM1*IL*1*DOE*JOHN****MI*IL{rng.randrange(5)}")
        if rng.random() < 0.2:
            segs.append("LQ*HE*N2")  # remarks stay in file order whatever their segment
        if rng.random() < 0.3:
            segs.append(rng.choice(["MOA***MA01*N130", "MIA*0***12.5*M1*" + "*" * 14 + "X1"]))
        for q in rng.sample(["232", "233", "050"], rng.randrange(4)):
            segs.append(f"DTM*{q}*202603{rng.randrange(1, 29):02d}")
        if rng.random() < 0.1:
            segs.append("LQ*HE*N1")  # a remark of the claim, before its first line
        for i in range(rng.randrange(4)):
            svc = f"SVC*HC:{rng.choice(['97140', '97124:GP', '97112:GP:59'])}*{rng.choice(amounts)}*"
            svc += f"{rng.choice(amounts)}{rng.choice(['', '*', '*0420', '**2', '*0420*1.5*HC:97110'])}"
            segs.append(svc)
            segs.append(rng.choice(["DTM*472*20260301", "DTM*150*20260301", "DTM*151*20260302",
                                    "DTM*999*1", "DTM*472*2026"]))  # fmt: skip
            for _ in range(rng.randrange(3)):
                # (reason, amount, quantity) triplets; a triplet without a reason is skipped
                cas = ["CAS", rng.choice(["CO", "PR", "OA"])]
                for t in range(rng.randrange(1, 5)):
                    reason = rng.choice(["45", "253", "2", ""]) if t else "45"
                    cas += [reason, rng.choice(amounts), rng.choice(["", "1", "2.5"])]
                while not cas[-1]:
                    cas.pop()
                segs.append("*".join(cas))
            segs.append(rng.choice([f"REF*6R*L{c}-{i}", "REF*LU*11", "REF*6R*X"]))
            segs.append(rng.choice([f"AMT*B6*{rng.choice(amounts)}", "AMT*AU*1"]))
            if rng.random() < 0.3:
                # MOA, MIA and NM1 belong to the claim: after a service line they are not read
                segs.append(rng.choice(["LQ*HE*M15", "LQ*RX*N1", "LQ*HE", "NM1*74*1*X",
                                        "MOA***MA02", "NM1*QC*1*A*B****MI*LINE"]))  # fmt: skip
    segs += ["PLB*1234567893*20261231*WO:REF1*5.00", f"SE*{len(segs) - 1}*0001", "GE*1*101",
             "IEA*1*000000101"]  # fmt: skip
    return segs


def _text(segs: list[str]) -> str:
    return "~\n".join(segs) + "~\n"


def _read(text: str, *, column_wise: bool, monkeypatch, chunk_bytes: int | None = None):
    """Tables and warnings of one read, with the column-wise scan on every run of claims (and
    regions of any length handed out unsplit), or never."""
    with monkeypatch.context() as m:
        m.setattr(remittance_reader, "RUN_MINIMUM", 1 if column_wise else 10**12)
        m.setattr(remittance_tokenizer, "LONG_REGION", 1 if column_wise else 10**12)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if chunk_bytes is None:
                    tables: object = read_835(text, source_name="runs.835").tables()
                else:
                    parts = iter_835(text, source_name="runs.835", chunk_bytes=chunk_bytes)
                    tables = [p.tables() for p in parts]
                error = None
            except AnalyticsError as exc:
                tables, error = None, str(exc)
    return tables, error, [(w.category, str(w.message)) for w in caught]


def _assert_same_read(text: str, monkeypatch, chunk_bytes: int | None = None) -> None:
    loop = _read(text, column_wise=False, monkeypatch=monkeypatch, chunk_bytes=chunk_bytes)
    runs = _read(text, column_wise=True, monkeypatch=monkeypatch, chunk_bytes=chunk_bytes)
    assert runs[1] == loop[1]
    assert runs[2] == loop[2]
    left, right = runs[0], loop[0]
    if left is None:
        assert right is None
        return
    if not isinstance(left, list):
        left, right = [left], [right]
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


class _Spy:
    """Counts the runs :func:`scan_claims` read and those it left to the loop."""

    def __init__(self, monkeypatch) -> None:
        self.read = self.left = 0
        scan = remittance_scan.scan_claims

        def spy(*args, **kwargs):
            after = scan(*args, **kwargs)
            if after is None:
                self.left += 1
            else:
                self.read += 1
            return after

        monkeypatch.setattr(remittance_reader, "scan_claims", spy)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_claim_runs_read_column_wise_equal_the_segment_loop(seed, monkeypatch):
    """Every table, dtype and warning is the same, and the runs were read column-wise."""
    text = _text(_claims(200, seed))
    spy = _Spy(monkeypatch)
    _assert_same_read(text, monkeypatch)
    assert spy.read >= 1 and spy.left == 0


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.iterdir()))
def test_public_fixtures_read_column_wise_equal_the_segment_loop(name, monkeypatch):
    """The public 835 samples (4010 and 5010, MIA/MOA, PLB, several transactions)."""
    _assert_same_read((FIXTURES / name).read_text(errors="replace"), monkeypatch)


@pytest.mark.parametrize("chunk_bytes", [512, 4096])
def test_parts_of_a_file_read_column_wise_equal_the_segment_loop(chunk_bytes, monkeypatch):
    """Read in parts (:func:`iter_835`): the same parts, each with the same tables."""
    _assert_same_read(_text(_claims(120, 7)), monkeypatch, chunk_bytes=chunk_bytes)


def _with(segs: list[str], at: int, change) -> str:
    """The file with the segments of the claim at ``at`` changed by ``change``."""
    out = list(segs)
    claims = [i for i, s in enumerate(out) if s.startswith("CLP*")]
    start = claims[at]
    stop = claims[at + 1] if at + 1 < len(claims) else len(out) - 4
    out[start:stop] = change(out[start:stop])
    return _text(out)


_AWKWARD = {
    # an amount the loop sets the claim aside for, or warns about: the run is left to it
    "empty CLP03": lambda c: ["CLP*EMPTY*1**5*0*12*CLM*11*1", *c[1:]],
    "exponent": lambda c: [*c, "SVC*HC:97140*1e5*10"],
    "plus sign": lambda c: [*c, "SVC*HC:97140*+5*10"],
    "NaN": lambda c: [*c, "SVC*HC:97140*10*10", "AMT*B6*NaN"],
    "Arabic-Indic digits": lambda c: [*c, "SVC*HC:97140*\u0661\u0662*10"],
    "two points": lambda c: [*c, "SVC*HC:97140*10*10", "CAS*CO*45*1.2.3"],
    "sixteen digits": lambda c: [*c, "SVC*HC:97140*1234567890123456*10"],
    "empty CAS amount": lambda c: [*c, "SVC*HC:97140*10*10", "CAS*CO*45**1"],
    "eleven CAS triplets": lambda c: [*c, "SVC*HC:97140*10*10", "CAS*CO" + "*45*1" * 11],
    "short REF*6R": lambda c: [*c, "SVC*HC:97140*10*10", "REF*6R"],
    "short DTM*472": lambda c: [*c, "SVC*HC:97140*10*10", "DTM*472"],
    "short AMT*B6": lambda c: [*c, "SVC*HC:97140*10*10", "AMT*B6"],
    # a segment that ends a run, then the same claim read on by the loop and set aside: the
    # rows the run gave that claim are taken back
    "unknown id, then a bad CAS": lambda c: [*c, "SVC*HC:97140*10*10", "ZZZ*1", "DTM*472*20260309", "CAS*CO*45*x"],
    "padded id, then a bad amount": lambda c: [*c, "SVC *HC:97140*10*10", "AMT*B6*1,5"],
    "LX inside a claim": lambda c: [*c, "LX*2", "CAS*CO*45*1"],
}


@pytest.mark.parametrize("case", sorted(_AWKWARD))
def test_what_the_loop_warns_about_is_read_by_the_loop(case, monkeypatch):
    """X12 numbers are ASCII digits with an optional leading minus and one optional decimal
    point (X12.6, data element type R); anything else is named by the loop. Those claims, and
    the claims around them, read the same either way."""
    segs = _claims(60, 11)
    text = _with(segs, 30, _AWKWARD[case])
    _assert_same_read(text, monkeypatch)


def test_a_run_with_an_awkward_claim_is_left_to_the_loop(monkeypatch):
    """The column-wise scan takes nothing of a run it cannot read exactly (the loop reads
    it), and reads the runs around it."""
    monkeypatch.setattr(remittance_scan, "RUN_SEGMENTS", 40)
    segs = _claims(60, 11)
    text = _with(segs, 30, _AWKWARD["exponent"])
    spy = _Spy(monkeypatch)
    _assert_same_read(text, monkeypatch)
    assert spy.left >= 1 and spy.read >= 2


def test_numbers_are_read_as_float_reads_them():
    """Each X12 decimal converts to exactly the double ``float()`` gives (correctly rounded,
    IEEE 754), including signed zero and the forms without digits on one side of the point."""
    values = ["0", "-0", "-0.00", "5.", ".5", "-.5", "0.1", "0.3", "1234567.89", "-999999999999.99",
              "123456789012345", "0.00000000000001", "007.10", "2.675", "1.005"]  # fmt: skip
    runs = remittance_scan.ClaimRuns([f"X*{v}" for v in values], "*", "~")
    start, stop, _ = runs.element(np.arange(len(values)), 1)
    got = runs.numbers(start, stop)
    assert got is not None
    assert [float(v) for v in values] == got.tolist()
    assert [str(float(v)) for v in values] == [str(x) for x in got.tolist()]  # -0.0 stays -0.0
    # not X12 numbers, or (16 digits and more) left to float() in the loop
    for bad in ["", "-", ".", "1.2.3", "5-", "+5", "1e5", "1_0", " 5", "1234567890123456", "0.000000000000001"]:
        runs = remittance_scan.ClaimRuns([f"X*{bad}"], "*", "~")
        start, stop, _ = runs.element(np.arange(1), 1)
        assert runs.numbers(start, stop) is None, bad


def test_segment_text_splits_like_the_tokenizer():
    """A long region handed out unsplit gives the same segments, by index, slice and from
    the end."""
    segs = _claims(30, 5)
    parts = SegmentText("~".join(segs), "~")
    assert len(parts) == len(segs) and list(parts) == segs
    assert parts[3] == segs[3] and parts[-1] == segs[-1]
    assert list(parts[5:40]) == segs[5:40] and list(parts[7:7]) == []
    assert list(parts.from_end()) == list(reversed(list(enumerate(segs))))


def test_tokenize_is_the_same_with_long_regions_unsplit(monkeypatch):
    text = _text(_claims(50, 9))
    whole = tokenize(text)
    monkeypatch.setattr(remittance_tokenizer, "LONG_REGION", 1)
    assert tokenize(text) == whole


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_mutated_runs_read_column_wise_equal_the_segment_loop(data):
    """Segments dropped, repeated, or given an amount that is not an X12 number, anywhere in
    the file: the two reads still agree (or fail with the same error)."""
    segs = _claims(40, 13)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(1, len(segs) - 2))
        kind = data.draw(st.sampled_from(["drop", "repeat", "amount", "junk"]))
        if kind == "drop":
            del segs[i]
        elif kind == "repeat":
            segs.insert(i, segs[i])
        elif kind == "junk":
            segs.insert(i, data.draw(st.sampled_from(["ZZZ*1", "SVC *HC:97140*1*1", "CAS*CO", "LX*9", "SE*1*1"])))
        else:
            parts = segs[i].split("*")
            j = data.draw(st.integers(0, len(parts) - 1))
            parts[j] = data.draw(st.sampled_from(["", "1e5", "-", "1.2.3", "+5", "0.5", "-0"]))
            segs[i] = "*".join(parts)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _assert_same_read(_text(segs), monkeypatch)
