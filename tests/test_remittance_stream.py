"""Tests for streamed 835 reading: :func:`iter_835` parts, ``read_835`` on top of them, and the
``remit`` command writing tables part by part.

The equivalence tests read the same file whole (one part) and in pieces as small as one byte,
so that piece ends land inside segments, delimiters, CRLF pairs, multi-byte characters and the
IEA, and part ends fall inside large transactions.
"""

from __future__ import annotations

import json
import re
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import analytics.cli.remit as remit_command
import analytics.remittance as remittance
import analytics.remittance.tables as remittance_tables
from analytics._files import csv_text
from analytics.cli import main
from analytics.exceptions import (
    AnalyticsError,
    BalanceWarning,
    ParameterError,
    X12Error,
    X12Warning,
)
from analytics.remittance import Remittance, iter_835, read_835, read_835_many
from analytics.remittance.sources import TextPieces

FIXTURES = Path(__file__).resolve().parent / "data" / "x12-835"
TABLES = ("payments", "claims", "service_lines", "adjustments", "remarks", "plb", "balance")

# ---- a generator of balanced 835s with several interchanges and transactions ----------------


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _negated(seg: list[str]) -> list[str]:
    """A SVC or CAS with its amounts negated, as a reversal sends them."""
    amounts = {"SVC": (2, 3), "CAS": (3,)}.get(seg[0], ())
    return [_money(-round(float(e) * 100)) if i in amounts else e for i, e in enumerate(seg)]


def _transaction(
    rng: np.random.Generator, control: str, n_claims: int, *, first: int = 0, plb: int = 500
) -> list[list[str]]:
    """One balanced ST..SE as lists of elements; composites use ':'."""
    segs = [
        ["ST", "835", control],
        [],  # BPR, once the total is known
        ["TRN", "1", f"TRACE{control}", "1999999999"],
        ["DTM", "405", "20260316"],
        ["N1", "PR", "GENERATED HEALTH PLAN", "XV", "GP01"],
        ["N1", "PE", "EXAMPLE MASSAGE", "XX", "1234567893"],
        ["REF", "TJ", "990000001"],
        ["LX", "1"],
    ]
    paid_total = 0
    for c in range(first, first + n_claims):
        n_lines = int(rng.integers(0, 4))
        lines, charge, paid = [], 0, 0
        for i in range(1, n_lines + 1):
            line_charge = int(rng.integers(2_000, 20_000))
            co = int(line_charge * rng.uniform(0, 0.6))
            pr = int(rng.integers(0, line_charge - co)) if rng.random() < 0.4 else 0
            line_paid = line_charge - co - pr
            code = ("97140", "97124", "97112", "97010")[int(rng.integers(0, 4))]
            mods = ("GP", "GP:59", "", "GP:KX")[int(rng.integers(0, 4))]
            lines.append(
                ["SVC", f"HC:{code}" + (f":{mods}" if mods else ""), _money(line_charge),
                 _money(line_paid), "", str(int(rng.integers(1, 5)))]
            )  # fmt: skip
            lines.append(["DTM", "472", f"202603{1 + c % 28:02d}"])
            lines.append(["CAS", "CO", "45", _money(co)])
            if pr:
                lines.append(["CAS", "PR", "3", _money(pr)])
            lines.append(["REF", "6R", f"L{i}"])
            lines.append(["AMT", "B6", _money(line_charge - co)])
            if rng.random() < 0.2:
                lines.append(["LQ", "HE", "M15"])
            charge += line_charge
            paid += line_paid
        claim_cas = []
        if not n_lines:  # a claim without service lines: claim-level CAS only
            charge = int(rng.integers(5_000, 30_000))
            denied = int(rng.integers(0, charge))
            claim_cas = [["CAS", "CO", "97", _money(denied)]]
            paid = charge - denied
        status = "22" if rng.random() < 0.05 else "1"
        if status == "22":  # a reversal negates every amount
            charge, paid = -charge, -paid
            lines = [_negated(s) for s in lines]
            claim_cas = [_negated(s) for s in claim_cas]
        clp = ["CLP", f"PCN{c:06d}", status, _money(charge), _money(paid), "", "12", f"CLM{c:06d}"]
        segs.append([*clp, "11", "1"])
        segs.extend(claim_cas)
        segs.append(["NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", f"M{c % 97:05d}"])
        if rng.random() < 0.1:
            segs.append(["MOA", "", "", "MA01"])
        segs.append(["DTM", "050", "20260310"])
        segs.extend(lines)
        paid_total += paid
    segs.append(["PLB", "1234567893", "20261231", "WO:ADJ1", _money(plb)])
    segs[1] = ["BPR", "I", _money(paid_total - plb), "C", "ACH", *[""] * 11, "20260318"]
    segs.append(["SE", str(len(segs) + 1), control])
    return segs


def _interchange(
    transactions: list[list[list[str]]],
    control: int,
    *,
    element: str = "*",
    component: str = ":",
    declared: str | None = None,
    terminator: str = "~\n",
) -> str:
    """An ISA..IEA around the transactions, written with the given delimiters."""
    isa = [
        "ISA", "00", " " * 10, "00", " " * 10, "ZZ", "SYNTHPAYER01   ", "ZZ", "SYNTHCLINIC01  ",
        "260316", "0930", "^", "00501", f"{control:09d}", "0", "T", declared or component,
    ]  # fmt: skip
    segs = [isa, ["GS", "HP", "SYNTHPAYER01", "SYNTHCLINIC01", "20260316", "0930", str(control),
                  "X", "005010X221A1"]]  # fmt: skip
    for t in transactions:
        segs.extend([[e.replace(":", component) for e in s] for s in t])
    segs += [["GE", str(len(transactions)), str(control)], ["IEA", "1", f"{control:09d}"]]
    return "".join(element.join(s) + terminator for s in segs)


def _generated(seed: int = 0, claims: int = 40) -> str:
    """Three interchanges with different delimiters (one of them wrapped at 80 columns, one
    declaring ':' but writing '>'), five transactions in all."""
    rng = np.random.default_rng(seed)
    first = _interchange(
        [_transaction(rng, "0001", claims), _transaction(rng, "0002", claims // 2, first=claims)],
        101,
    )
    second = _interchange(
        [_transaction(rng, "0003", claims, first=2 * claims, plb=0)],
        102,
        element="|",
        component="^",
        terminator="\n",
    )
    third = _interchange(
        [
            _transaction(rng, "0004", claims, first=3 * claims, plb=-250),
            _transaction(rng, "0005", 3, first=4 * claims),
        ],
        103,
        component=">",
        declared=":",
    )
    flat = third.replace("\n", "")
    wrapped = "\r\n".join(flat[i : i + 80] for i in range(0, len(flat), 80)) + "\r\n"
    return first + second + wrapped


# ---- helpers --------------------------------------------------------------------------------


def _read_with_notes(source, **kwargs) -> tuple[Remittance, list[tuple[type, str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remit = read_835(source, **kwargs)
    return remit, [(w.category, str(w.message)) for w in caught]


def _parts_with_notes(source, **kwargs) -> tuple[list[Remittance], list[tuple[type, str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = list(iter_835(source, **kwargs))
    return parts, [(w.category, str(w.message)) for w in caught]


def _assert_identical(a: Remittance, b: Remittance) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(
            getattr(a, name), getattr(b, name), check_exact=True, obj=name
        )


def _assert_parts_are_consistent(parts: list[Remittance]) -> None:
    """Claims are whole in one part, indexes run on, and each transaction is checked once, in
    the part that has its payments row."""
    next_claim = next_line = 1
    for part in parts:
        claims = part.claims["claim_index"].to_numpy()
        lines = part.service_lines["line_index"].to_numpy()
        assert (claims == np.arange(next_claim, next_claim + len(claims))).all()
        assert (lines == np.arange(next_line, next_line + len(lines))).all()
        next_claim += len(claims)
        next_line += len(lines)
        for table in ("service_lines", "adjustments", "remarks"):
            assert set(getattr(part, table)["claim_index"]) <= set(claims), table
        checked = part.balance.loc[part.balance["level"] == "transaction", "st_index"].tolist()
        assert checked == part.payments["st_index"].tolist()
        for table in TABLES:
            frame = getattr(part, table)
            if "segment" in frame.columns:
                assert frame["segment"].is_monotonic_increasing, table


# ---- equivalence: parts stack to the whole read ------------------------------------------------


def _fixture_names() -> list[str]:
    if not FIXTURES.exists():
        return []
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and not p.name.startswith("."))


def test_every_fixture_is_covered(x12_dir):
    files = {p.name for p in x12_dir.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert files == set(_fixture_names())


@pytest.mark.parametrize("chunk", [1, 7, 200, 4096])
@pytest.mark.parametrize("name", _fixture_names())
def test_fixture_parts_stack_to_whole_read(x12_dir, name, chunk):
    path = x12_dir / name
    whole, whole_notes = _read_with_notes(path)
    parts, notes = _parts_with_notes(path, chunk_bytes=chunk)
    _assert_identical(Remittance.concat(parts), whole)
    assert notes == whole_notes
    _assert_parts_are_consistent(parts)
    if chunk <= 7 and len(whole.claims) > 1:
        assert len(parts) > 1  # the splits really happened


@pytest.mark.parametrize(
    ("form", "chunk"),
    [("text", 200), ("text", 1000), ("text", 8192), ("bytes", 333), ("path", 257), ("path", 4096)],
)
def test_generated_interchanges_stack_to_whole_read(tmp_path, chunk, form):
    text = _generated()
    source = {"text": text, "bytes": text.encode(), "path": tmp_path / "gen.835"}[form]
    if form == "path":
        source.write_bytes(text.encode())
    name = {"text": "<text>", "bytes": "<bytes>", "path": "gen.835"}[form]
    whole, whole_notes = _read_with_notes(source)
    parts, notes = _parts_with_notes(source, chunk_bytes=chunk)
    assert len(parts) >= min(10, len(text) // chunk)
    _assert_parts_are_consistent(parts)
    stacked = Remittance.concat(parts)
    _assert_identical(stacked, whole)
    assert notes == whole_notes
    # the figures the generator built in: 5 transactions, 163 claims, all balanced, and the
    # third interchange read with '>' although it declares ':'
    assert stacked.payments["st_control_number"].tolist() == [
        "0001",
        "0002",
        "0003",
        "0004",
        "0005",
    ]
    assert len(stacked.claims) == 40 + 20 + 40 + 40 + 3
    assert stacked.balance["balanced"].all()
    assert set(stacked.service_lines["cpt"]) <= {"97140", "97124", "97112", "97010"}
    assert stacked.plb["reason"].tolist() == ["WO", "WO", "WO", "WO", "WO"]
    third_isa = [i for i, s in enumerate(remittance.tokenize(text)) if s[0] == "ISA"][2] + 1
    assert len(notes) == 1
    assert re.fullmatch(
        rf"{re.escape(name)}: ISA16 at segment {third_isa} declares component separator ':', "
        rf"but the composites use '>' \(e\.g\. 'HC>\d+[^']*'\); read with '>'\.",
        notes[0][1],
    ), notes


@pytest.mark.filterwarnings("ignore:.*declares component separator:analytics.exceptions.X12Warning")
def test_whole_read_matches_tokenizer_and_segment_numbers():
    text = _generated(seed=3, claims=25)
    segments = remittance.tokenize(text)
    parts = list(iter_835(text, chunk_bytes=150))
    stacked = Remittance.concat(parts)
    for claim in stacked.claims.itertuples():
        assert segments[claim.segment - 1][:2] == ["CLP", claim.claim_id]
    for line in stacked.service_lines.itertuples():
        assert segments[line.segment - 1][0] == "SVC"
    for row in stacked.payments.itertuples():
        assert segments[row.segment - 1][:3] == ["ST", "835", row.st_control_number]


def test_one_large_transaction_is_split_and_balanced_once():
    rng = np.random.default_rng(1)
    text = _interchange([_transaction(rng, "0001", 600, plb=1234)], 1)
    bpr = next(s for s in text.split("~\n") if s.startswith("BPR"))
    declared = float(bpr.split("*")[2])
    parts = list(iter_835(text, chunk_bytes=2048))
    assert len(parts) > 20
    _assert_parts_are_consistent(parts)
    # the payments row and the transaction check come with the SE, in the last part
    assert [len(p.payments) for p in parts] == [0] * (len(parts) - 1) + [1]
    transaction = parts[-1].balance[parts[-1].balance["level"] == "transaction"]
    paid = sum(p.claims["paid"].sum() for p in parts)
    assert transaction["expected"].iloc[0] == pytest.approx(paid - 12.34, abs=0.001)
    assert transaction["actual"].iloc[0] == declared
    assert bool(transaction["balanced"].iloc[0])
    # an amount that does not add up is caught with the sums of every part
    wrong = text.replace(bpr, bpr.replace(f"*{bpr.split('*')[2]}*", "*1.00*", 1))
    with pytest.warns(BalanceWarning, match=r"1 of \d+ balance check\(s\) fail \(transaction 1: "):
        parts = list(iter_835(wrong, chunk_bytes=2048))
    failing = Remittance.concat(parts).balance.query("not balanced")
    assert failing["level"].tolist() == ["transaction"]
    assert failing["expected"].iloc[0] == pytest.approx(paid - 12.34, abs=0.001)


@pytest.mark.filterwarnings("ignore:.*declares component separator:analytics.exceptions.X12Warning")
def test_concat_puts_balance_rows_in_whole_read_order():
    text = _generated(seed=5, claims=10)
    parts = list(iter_835(text, chunk_bytes=300))
    raw = pd.concat([p.balance for p in parts], ignore_index=True)
    assert raw["level"].tolist() != sorted(raw["level"], key=["line", "claim", "transaction"].index)
    balance = Remittance.concat(parts).balance
    assert balance["level"].tolist() == sorted(
        balance["level"], key=["line", "claim", "transaction"].index
    )
    # stacking two files keeps each file's rows together and in order
    other = read_835(text, source_name="other.835")
    both = Remittance.concat([*parts, other]).balance
    assert both["file"].tolist() == ["<text>"] * len(balance) + ["other.835"] * len(other.balance)
    pd.testing.assert_frame_equal(both.iloc[: len(balance)].reset_index(drop=True), balance)


# ---- warnings and errors --------------------------------------------------------------------


def _troubled() -> str:
    """A generated file with a warning of each kind, spread over many parts."""
    rng = np.random.default_rng(2)
    text = _interchange([_transaction(rng, "0001", 80), _transaction(rng, "0002", 30, first=80)], 7)
    text = text.replace("DTM*472*20260305", "DTM*472*20260231")  # not a date, several times
    text = text.replace("SE*", "SE*9", 1)  # a wrong segment count
    text = text.replace("CAS*PR*3*", "CAS*ZZ*3*", 3)  # an unknown group code
    text = text.replace("CAS*CO*45*", "CAS*CO*45*1", 4)  # lines and claims that do not balance
    segs = text.split("~\n")
    k = next(i for i, s in enumerate(segs) if s.startswith("SVC") and i > len(segs) // 2)
    parts = segs[k].split("*")
    parts[3] = ""  # an empty SVC03
    segs[k] = "*".join(parts)
    return "~\n".join(segs) + "TRAILING TEXT THAT IS NOT AN INTERCHANGE\n"


@pytest.mark.parametrize("chunk", [1, 97, 1000])
def test_warnings_are_worded_for_the_whole_file(chunk):
    text = _troubled()
    whole, whole_notes = _read_with_notes(text)
    parts, notes = _parts_with_notes(text, chunk_bytes=chunk)
    assert len(parts) > 5
    _assert_identical(Remittance.concat(parts), whole)
    assert notes == whole_notes
    messages = [m for _, m in notes]
    for pattern in (
        r"SE at segment \d+ says the transaction has 9\d+ segments",
        r"required amount\(s\) empty at segment\(s\) \d+ \(SVC03\)",
        r"CAS group code\(s\) \['ZZ'\]",
        r"\d+ DTM\*472 value\(s\) are not CCYYMMDD dates: '20260231' \(segment \d+\)",
        r"character\(s\) after the IEA at segment \d+ are not an interchange",
        r"balance check\(s\) fail \(line \d+ of claim 'PCN\d+'",
    ):
        assert sum(bool(re.search(pattern, m)) for m in messages) == 1, pattern
    assert [c for c, _ in notes].count(BalanceWarning) == 1


@pytest.mark.parametrize("chunk", [3, 500])
def test_truncated_file_fails_after_its_parts(chunk):
    text = _interchange([_transaction(np.random.default_rng(4), "0001", 60)], 9)
    cut = text[: text.rindex("CLP*")] + "CLP*PCNLAST*1*10*10~\n"
    with pytest.raises(X12Error) as whole:
        read_835(cut, source_name="cut.835")
    parts = iter_835(cut, source_name="cut.835", chunk_bytes=chunk)
    assert len(next(parts).claims) >= 1  # parts come before the fault is reached
    with pytest.raises(X12Error) as streamed:
        list(parts)
    assert str(streamed.value) == str(whole.value)
    message = str(streamed.value)
    assert "inside claim 'PCNLAST'" in message and "no SE trailer" in message


def test_bad_amount_in_a_late_part_sets_aside_its_claim():
    text = _interchange([_transaction(np.random.default_rng(6), "0001", 60)], 9)
    segs = text.split("~\n")
    k = max(i for i, s in enumerate(segs) if s.startswith("CLP*") and s.split("*")[2] == "1")
    claim_id = segs[k].split("*")[1]
    segs[k] = segs[k].replace("*1*", "*1*12O", 1)
    bad = "~\n".join(segs)
    pattern = (
        rf"bad\.835: segment {k + 1} \(CLP\) element CLP03 is '12O.*not an X12 number.*"
        rf"Claim '{claim_id}' \(CLP at segment {k + 1}\) was set aside"
    )
    with pytest.warns(X12Warning, match=pattern):
        whole = read_835(bad, source_name="bad.835")
    assert claim_id not in set(whole.claims["claim_id"])
    assert claim_id not in set(whole.service_lines["claim_id"])
    assert len(whole.claims) == 59
    with pytest.warns(X12Warning, match=pattern):
        parts = list(iter_835(bad, source_name="bad.835", chunk_bytes=256))
    assert len(parts) > 1
    _assert_identical(Remittance.concat(parts), whole)


def test_missing_file_and_bad_chunk_size(tmp_path):
    with pytest.raises(X12Error, match="file not found"):
        list(iter_835(tmp_path / "missing.835"))
    for chunk in (0, -5, 1.5, True, "32"):
        with pytest.raises(ParameterError, match="chunk_bytes"):
            list(iter_835(_generated(claims=2), chunk_bytes=chunk))


@pytest.mark.filterwarnings("ignore:.*declares component separator:analytics.exceptions.X12Warning")
@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_decoding_matches_the_whole_file(chunk):
    text = _generated(seed=8, claims=6)
    # UTF-8 text late in the file (after ASCII chunks), split across chunk ends
    utf8 = text.replace("GENERATED HEALTH PLAN", "PLAN DE SALUD ÑANDÚ €").encode("utf-8")
    remit = read_835(utf8)
    assert remit.payments["payer_name"].tolist()[-1] == "PLAN DE SALUD ÑANDÚ €"
    _assert_identical(Remittance.concat(list(iter_835(utf8, chunk_bytes=chunk))), remit)
    # one byte that is not UTF-8 near the end: the whole file is Latin-1
    head, payee, tail = utf8.rpartition(b"EXAMPLE MASSAGE")
    latin = head + payee + b" \xff" + tail
    expected = read_835(latin.decode("latin-1"), source_name="<bytes>")
    mojibake = "PLAN DE SALUD ÑANDÚ €".encode().decode("latin-1")
    assert expected.payments["payer_name"].iloc[-1] == mojibake
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _assert_identical(Remittance.concat(list(iter_835(latin, chunk_bytes=chunk))), expected)


def test_component_separator_settled_by_reading_ahead(monkeypatch):
    # ':' declared, '>' written, and only two composites, one at each end of the interchange:
    # the first part is built long before the second is read, so the reader looks ahead for
    # it (on a copy, without consuming the file).
    segs = [
        ["ST", "835", "0001"],
        ["BPR", "I", "0", "C", "ACH", *[""] * 11, "20260318"],
        ["TRN", "1", "T1", "1999999999"],
        ["N1", "PR", "PLAN"],
        ["N1", "PE", "CLINIC", "XX", "1234567893"],
        ["LX", "1"],
        ["CLP", "EARLY", "1", "5", "0", "", "12", "X", "11", "1"],
        ["SVC", "HC:97140:GP", "5", "0", "", "1"],
        ["CAS", "CO", "97", "5"],
    ]
    for c in range(60):
        segs += [
            ["CLP", f"PCN{c:03d}", "1", "1.00", "0", "", "12", f"CLM{c:03d}", "11", "1"],
            ["CAS", "CO", "97", "1.00"],
        ]
    segs += [["PLB", "1234567893", "20261231", "WO:ADJ1", "0"]]
    segs.append(["SE", str(len(segs) + 1), "0001"])
    text = _interchange([segs], 5, component=">", declared=":")
    whole, whole_notes = _read_with_notes(text)
    assert whole.service_lines[["cpt", "modifiers"]].values.tolist() == [["97140", "GP"]]
    assert whole.plb[["reason", "reference"]].values.tolist() == [["WO", "ADJ1"]]
    assert whole_notes == [
        (
            X12Warning,
            "<text>: ISA16 at segment 1 declares component separator ':', but the composites "
            "use '>' (e.g. 'HC>97140>GP'); read with '>'.",
        )
    ]
    forks = []
    fork = TextPieces.fork
    monkeypatch.setattr(TextPieces, "fork", lambda self: forks.append(1) or fork(self))
    parts, notes = _parts_with_notes(text, chunk_bytes=64)
    assert len(parts) > 10 and forks
    _assert_identical(Remittance.concat(parts), whole)
    assert notes == whole_notes


_FUZZ_SEEDS = [_generated(seed=11, claims=4), _troubled()[:6000]] + [
    (FIXTURES / n).read_text(errors="replace") for n in _fixture_names()
]


@st.composite
def _mutated(draw) -> str:
    text = draw(st.sampled_from(_FUZZ_SEEDS))
    kind = draw(st.sampled_from(["none", "truncate", "insert", "delete", "crlf", "join"]))
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if kind == "insert":
        pos = draw(st.integers(0, len(text)))
        return text[:pos] + draw(st.text(min_size=1, max_size=12)) + text[pos:]
    if kind == "delete":
        a = draw(st.integers(0, len(text)))
        return text[:a] + text[a + draw(st.integers(1, 40)) :]
    if kind == "crlf":
        return text.replace("\n", "\r\n")
    if kind == "join":
        return text + draw(st.sampled_from(_FUZZ_SEEDS))
    return text


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=_mutated(), chunk=st.integers(1, 400), as_bytes=st.booleans())
def test_chunking_never_changes_the_outcome(text, chunk, as_bytes):
    source = text.encode() if as_bytes else text
    try:
        whole, whole_notes = _read_with_notes(source, source_name="fuzz.835")
    except AnalyticsError as exc:
        assert "fuzz.835" in str(exc)
        # a file with several faults may report another of them first, but never reads
        with pytest.raises(X12Error, match=r"fuzz\.835"):
            _parts_with_notes(source, source_name="fuzz.835", chunk_bytes=chunk)
        return
    parts, notes = _parts_with_notes(source, source_name="fuzz.835", chunk_bytes=chunk)
    _assert_identical(Remittance.concat(parts), whole)
    assert notes == whole_notes


# ---- bounded memory -------------------------------------------------------------------------


def _peak_memory(path: Path, chunk: int) -> tuple[int, int]:
    """Peak traced memory while reading ``path`` part by part (dropping each part), and claims."""
    claims = 0
    tracemalloc.start()
    try:
        for part in iter_835(path, chunk_bytes=chunk):
            claims += len(part.claims)
            del part
        return tracemalloc.get_traced_memory()[1], claims
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_chunk_not_the_file(tmp_path):
    peaks, sizes = [], []
    for n in (1, 4):
        rng = np.random.default_rng(12)
        path = tmp_path / f"{n}.835"
        path.write_text(
            "".join(
                _interchange([_transaction(rng, f"{k:04d}", 1000, first=1000 * k)], 100 + k)
                for k in range(n)
            )
        )
        peak, claims = _peak_memory(path, 32 * 1024)
        assert claims == 1000 * n
        peaks.append(peak)
        sizes.append(path.stat().st_size)
    # four times the file, about the same peak, and never the whole file in memory (a whole
    # read needs many times the size of the file)
    assert sizes[1] > 4 * sizes[0] * 0.95 and sizes[1] > 500_000
    assert peaks[1] < 1.25 * peaks[0], peaks
    assert peaks[1] < sizes[1], (peaks, sizes)


# ---- the remit command writes part by part ----------------------------------------------------


def _levels(balance: pd.DataFrame, file: str) -> dict[str, dict[str, object]]:
    """The checks and failures of each level of one file, as ``remit --json`` gives them."""
    rules = {
        "line": "SVC02 - sum(line CAS) = SVC03",
        "claim": "CLP03 - sum(claim and line CAS) = CLP04",
        "transaction": "sum(CLP04) - sum(PLB) = BPR02",
    }
    mine = balance[balance["file"] == file]
    out = {}
    for level, rule in rules.items():
        rows = mine[mine["level"] == level]
        failed = int((~rows["balanced"]).sum())
        out[level] = {"rule": rule, "checks": len(rows), "failed": failed, "balanced": failed == 0}
    return out


def test_cli_writes_parts_like_a_whole_read(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(remit_command, "CHUNK_BYTES", 4096)  # several parts per file
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_generated.835").write_text(_generated(seed=13, claims=30))
    (folder / "b_troubled.835").write_text(_troubled())
    big = _interchange([_transaction(np.random.default_rng(14), "0001", 80)], 3)
    (folder / "c_truncated.835").write_text(big[: big.rindex("SE*")])  # fails after many parts
    (folder / "d_garbage.835").write_text("garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected, expected_errors = read_835_many(folder)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["remit", str(folder), "--out", str(out), "--json"])
    assert code == 1
    payload = json.loads(capsys.readouterr().out)
    summary = expected.summary()
    assert payload["files"] == [
        {
            "file": r.file,
            "claims": int(r.claims),
            "service_lines": int(r.service_lines),
            "paid_total": float(r.paid_total),
            "adjustments_total": float(r.adjustments_total),
            "plb_total": float(r.plb_total),
            "balanced": bool(r.balanced),
            "balance": _levels(expected.balance, r.file),
        }
        for r in summary.itertuples(index=False)
    ]
    assert [e["file"] for e in payload["errors"]] == ["c_truncated.835", "d_garbage.835"]
    assert payload["errors"] == expected_errors.to_dict("records")
    for name in TABLES:
        frame = getattr(expected, name)
        assert len(frame)
        stem = out / remit_command.OUTPUT_NAMES[name]
        pd.testing.assert_frame_equal(pd.read_parquet(f"{stem}.parquet"), frame, obj=name)
        assert Path(f"{stem}.csv").read_text() == csv_text(frame), name
    pd.testing.assert_frame_equal(pd.read_parquet(out / "remit_summary.parquet"), summary)
    errors = pd.read_csv(out / "remit_errors.csv")
    assert errors["file"].tolist() == ["c_truncated.835", "d_garbage.835"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no spool left


def test_cli_with_only_failing_files_writes_empty_tables(tmp_path, capsys):
    (tmp_path / "bad.835").write_text("garbage")
    out = tmp_path / "out"
    assert main(["remit", str(tmp_path / "bad.835"), "--out", str(out)]) == 1
    assert "No 835 file was read." in capsys.readouterr().out
    empty = remittance_tables._empty_remittance()
    for name in TABLES:
        stem = out / remit_command.OUTPUT_NAMES[name]
        frame = pd.read_parquet(f"{stem}.parquet")
        assert frame.empty and frame.dtypes.to_dict() == getattr(empty, name).dtypes.to_dict()
        assert Path(f"{stem}.csv").read_text() == getattr(empty, name).to_csv(index=False)
