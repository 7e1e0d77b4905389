"""Structure-aware fuzzing of the 835 reader, seeded from the 835 samples in ``tests/data``.

The mutations are those real files show: separators changed consistently, segment ids with
trailing spaces, files wrapped at a fixed width, other transaction sets (837, 277) beside the
835s, and amounts written with digits of other scripts. Those that keep the meaning must give
the same tables; every input must end in a read or in one of the package's own errors (never
another exception, never a hang: a deadline per input), and nothing may be lost silently: each
claim of the input is read or named in a warning.

CI tries ``ANALYTICS_FUZZ_835`` inputs per test (default 100).
"""

from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.exceptions import AnalyticsError, AnalyticsWarning
from analytics.remittance import Remittance, read_835, tokenize

DATA = Path(__file__).resolve().parent / "data" / "x12-835"
SEEDS = {p.name: p.read_text(errors="replace") for p in sorted(DATA.iterdir()) if p.is_file()}
EXAMPLES = int(os.environ.get("ANALYTICS_FUZZ_835", "100"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Characters a consistent separator change may use: none of them is a letter, a digit or a
# space, and each is used only where it is not already in the file.
_SEPARATORS = "|^!{}<>`#$%&;?/\\\x1c\x1d\x1e\x1f"
# Other transaction sets that may share an interchange with 835s (X12 allows it).
_FOREIGN = [
    ["ST*837*9001*005010X222A1", "BHT*0019*00*1*20260301*1023*CH", "CLM*X1*120***11:B:1*Y*A*Y*Y",
     "SE*4*9001"],
    ["ST*277*9002*005010X212", "BHT*0010*08*1*20260301*1200*DG", "SE*3*9002"],
]  # fmt: skip
_DIGITS = ["\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669", "\uff10\uff11\uff12"
           "\uff13\uff14\uff15\uff16\uff17\uff18\uff19"]  # fmt: skip


def _read(text: str) -> tuple[Remittance, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remit = read_835(text, source_name="fuzz.835")
    return remit, [str(w.message) for w in caught if issubclass(w.category, AnalyticsWarning)]


BASE = {name: _read(text) for name, text in SEEDS.items()}


def _separators(text: str) -> tuple[str, str, str] | None:
    """Element, component and terminator of a file with a standard ISA, wrapped or not (else
    None)."""
    flat = text[:400].replace("\r", "").replace("\n", "")
    if not flat.startswith("ISA") or len(flat) < 107:
        return None
    element, component, terminator = flat[3], flat[104], flat[105]
    if flat[:106].count(element) != 16 or terminator.isalnum() or flat[106].isspace():
        return None
    return element, component, terminator


def _segments(text: str) -> tuple[list[str], str, str] | None:
    found = _separators(text)
    if found is None:
        return None
    element, _, terminator = found
    return text.split(terminator), element, terminator


def _mutate(draw, text: str, kind: str) -> str:
    if kind == "separators" and (found := _separators(text)):
        free = [c for c in _SEPARATORS if c not in text]
        new = draw(st.permutations(free))[:3]
        return text.translate({ord(old): ord(c) for old, c in zip(found, new, strict=True)})
    if kind == "spaces" and (parts := _segments(text)):
        segs, element, terminator = parts
        i = draw(st.integers(1, len(segs) - 1))
        head = segs[i].lstrip("\r\n")
        if element in head and not head.startswith(("ISA", "IEA")):
            lead = segs[i][: len(segs[i]) - len(head)]
            spaces = " " * draw(st.integers(1, 3))
            segs[i] = lead + head.replace(element, spaces + element, 1)
        return terminator.join(segs)
    if kind == "wrap" and _separators(text):
        flat = text.replace("\r", "").replace("\n", "")
        width = draw(st.integers(20, 200))
        newline = draw(st.sampled_from(["\n", "\r\n"]))
        return newline.join(flat[i : i + width] for i in range(0, len(flat), width))
    if kind == "mixed" and (parts := _segments(text)):
        segs, element, terminator = parts
        ends = [i for i, s in enumerate(segs) if s.lstrip("\r\n").startswith("SE" + element)]
        if ends:
            at = draw(st.sampled_from(ends)) + 1
            foreign = [s.replace("*", element) for s in draw(st.sampled_from(_FOREIGN))]
            segs[at:at] = [("\n" if "\n" in segs[at - 1] else "") + s for s in foreign]
        return terminator.join(segs)
    if kind == "digits":
        amounts = list(re.finditer(r"(?<=[*|])\d+\.\d\d(?=[*~|\n])", text))
        if amounts:
            m = draw(st.sampled_from(amounts))
            script = draw(st.sampled_from(_DIGITS))
            digits = "".join(script[int(c)] if c.isdigit() else c for c in m.group())
            return text[: m.start()] + digits + text[m.end() :]
    return text


_MEANING_KEPT = ["separators", "spaces", "wrap", "mixed"]


def _content(remit: Remittance) -> dict[str, pd.DataFrame]:
    # segment numbers move when segments are added (another transaction set)
    return {
        n: f.drop(columns=["segment"], errors="ignore").reset_index(drop=True)
        for n, f in remit.tables().items()
    }


def _set_aside(notes: list[str]) -> Counter:
    return Counter(m.group(1) for n in notes for m in re.finditer(r"Claim '(.*?)' \(CLP at", n))


@FUZZ
@given(
    name=st.sampled_from(sorted(SEEDS)),
    kinds=st.lists(st.sampled_from(_MEANING_KEPT), min_size=1, max_size=3),
    data=st.data(),
)
def test_mutations_that_keep_the_meaning_give_the_same_tables(name, kinds, data):
    text = SEEDS[name]
    for kind in kinds:
        text = _mutate(data.draw, text, kind)
    base, _ = BASE[name]
    remit, notes = _read(text)
    left, right = _content(remit), _content(base)
    for table in left:
        pd.testing.assert_frame_equal(left[table], right[table], obj=table)
    if _padded_835_ids(text) > _padded_835_ids(SEEDS[name]) and "spaces" in kinds and "separators" not in kinds:
        assert any("segment id(s) with spaces" in n for n in notes)
    if "ST*837*9001" in text or "ST*277*9002" in text:
        assert any("that are not 835s were skipped" in n for n in notes)


@FUZZ
@given(name=st.sampled_from(sorted(SEEDS)), data=st.data())
def test_an_amount_in_other_digits_loses_nothing_silently(name, data):
    text = _mutate(data.draw, SEEDS[name], "digits")
    base, _ = BASE[name]
    remit, notes = _read(text)
    # every claim of the file is read, or named in a warning as set aside
    read = Counter(remit.claims["claim_id"])
    assert read + _set_aside(notes) == Counter(base.claims["claim_id"])
    # an amount the tables hold that changed is named (AMT*AU, say, is not read at all)
    now, before = _content(remit), _content(base)
    changed = any(not now[table].equals(before[table]) for table in now)
    if changed:
        assert any("which is not an X12 number" in n for n in notes), notes


def _padded_835_ids(text: str) -> int:
    """Segment ids padded with spaces (``"CLM *"``) outside the other transaction sets: those
    are skipped whole, so the reader has nothing to say about their ids. Line breaks are taken
    out first: a file wrapped at a fixed width may break a line just after an id (``"CLP\n*"``),
    which the reader joins back and which is not padding."""
    count, foreign = 0, False
    for seg in text.replace("\r", "").replace("\n", "").split("~"):
        head, _, rest = seg.strip().partition("*")
        if head.strip() == "ST":
            foreign = not rest.startswith("835")
        if not foreign and head != head.rstrip():
            count += 1
        if head.strip() == "SE":
            foreign = False
    return count


def _random(draw, text: str) -> str:
    """A mutation that may break the file: cut it, drop or repeat a segment, insert junk."""
    kind = draw(st.sampled_from(["truncate", "delete", "duplicate", "bytes"]))
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    pos = draw(st.integers(0, len(text)))
    if kind == "bytes":
        return text[:pos] + draw(st.text(min_size=1, max_size=12)) + text[pos:]
    end = text.find("~", pos)
    start = text.rfind("~", 0, pos) + 1
    if end < 0:
        return text
    if kind == "delete":
        return text[:start] + text[end + 1 :]
    return text[: end + 1] + text[start : end + 1] + text[end + 1 :]


def _clp_numbers(text: str) -> list[int]:
    return [i for i, seg in enumerate(tokenize(text, source_name="fuzz.835"), 1)
            if seg[0].strip() == "CLP"]  # fmt: skip


def _named(number: int, notes: list[str]) -> bool:
    for note in notes:
        if re.search(rf"(?<![\d-]){number} \((?:CLP|'CLP)|segment {number}\b", note):
            return True
        for start, end in re.findall(r"segments (\d+)-(\d+)", note):
            if int(start) <= number <= int(end):
                return True
    return False


@FUZZ
@given(
    name=st.sampled_from(sorted(SEEDS)),
    kinds=st.lists(st.sampled_from([*_MEANING_KEPT, "digits", "random"]), min_size=1, max_size=4),
    data=st.data(),
)
def test_stacked_mutations_fail_clearly_or_account_for_every_claim(name, kinds, data):
    text = SEEDS[name]
    for kind in kinds:
        text = _random(data.draw, text) if kind == "random" else _mutate(data.draw, text, kind)
    try:
        remit, notes = _read(text)
    except AnalyticsError as exc:
        assert "fuzz.835" in str(exc), str(exc)  # the error names the file
        return
    assert set(remit.service_lines["claim_index"]) <= set(remit.claims["claim_index"])
    assert remit.balance["balanced"].notna().all()
    # a CLP that is not a claim of the tables is named in a warning (or counted in one)
    missing = sorted(set(_clp_numbers(text)) - set(remit.claims["segment"]))
    unnamed = [n for n in missing if not _named(n, notes)]
    counted = sum(int(m) for n in notes for m in re.findall(r" and (\d+) more", n))
    set_aside = sum(_set_aside(notes).values())
    assert len(unnamed) <= counted + set_aside, (unnamed, notes)
