"""Alternatives: every legitimate way to report one documented session.

Subsets of the services performed, the NCCI modifier on the column-2 code of each code pair
present (none, 59, XS, XU; XE when a separate encounter is recorded), and the hot/cold pack
(97010) on or off when one was applied. No alternative names a code that was not performed.
An alternative whose modifier needs documentation the session lacks is kept, marked
``supported=False``, with what is missing in words.

Sources: FACTS sec. 4 (NCCI pairs and modifiers; CMS accepts 59 or the more specific
X{EPSU} subsets).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping

from analytics.payers import PayerPolicy
from analytics.refdata import Reference, load_reference
from analytics.scenarios.catalog import code_catalog, pairs_present
from analytics.scenarios.session import Service, Session

__all__ = ["Alternative", "alternatives", "MODIFIER_CHOICES"]

#: NCCI modifiers offered on the column-2 code of a pair, in display order ("" = none).
#: XE (separate encounter) is offered only when the session records a separate encounter.
MODIFIER_CHOICES = ("", "59", "XS", "XU")


@dataclasses.dataclass(frozen=True)
class Alternative:
    """One way to report the session: which codes, with which NCCI modifier each.

    ``codes`` and ``modifiers`` are aligned (``""`` = no NCCI modifier; therapy modifiers such
    as GP are added per payer when the session is priced). ``supported`` is False when a
    modifier needs documentation the session lacks; ``missing`` says what, in words, and
    ``documentation`` what the record must show for the whole alternative.
    """

    name: str
    codes: tuple[str, ...]
    modifiers: tuple[str, ...]
    supported: bool
    missing: str
    documentation: str
    line_documentation: tuple[str, ...]


def _region_text(s: Service) -> str:
    return ", ".join(s.regions) if s.regions else "no region recorded"


def _modifier_check(session: Session, c1: str, c2: str, mod: str) -> tuple[str, str]:
    """(what the record must show, what is missing or "") for ``mod`` on column-2 code ``c2``."""
    s1, s2 = session.service(c1), session.service(c2)
    regions = bool(s1.regions) and bool(s2.regions) and not set(s1.regions) & set(s2.regions)
    blocks = (
        s1.time_block is not None and s2.time_block is not None and s1.time_block != s2.time_block
    )
    where = f"{c1}: {_region_text(s1)}; {c2}: {_region_text(s2)}"
    if mod == "XS":
        need = f"XS (separate structure): the notes show {c2} on a body region separate from {c1}"
        miss = "" if regions else f"XS needs {c2} on a body region separate from {c1} ({where})"
    elif mod in ("59", "XU"):
        label = (
            "59 (distinct procedural service)"
            if mod == "59"
            else "XU (unusual non-overlapping service)"
        )
        need = f"{label}: the notes show {c2} on a body region separate from {c1} or in a separate time block"
        if mod == "59":
            need += " (CMS prefers XS or XU when one fits)"
        miss = (
            ""
            if regions or blocks
            else (
                f"{mod} needs {c2} on a body region separate from {c1} or in a separate time block; "
                f"neither is documented ({where}; time blocks not separate)"
            )
        )
    elif mod == "XE":
        need = f"XE (separate encounter): the notes show {c2} at an encounter separate from {c1}"
        miss = (
            ""
            if session.separate_encounter
            else f"XE needs {c2} at a separate encounter; none is recorded"
        )
    else:
        need, miss = "", ""
    return need, miss


def alternatives(
    session: Session,
    *,
    reference: Reference | None = None,
    payers: Mapping[str, PayerPolicy] | None = None,
) -> list[Alternative]:
    """Every legitimate way to report the documented session.

    Subsets of the services performed (the hot/cold pack, 97010, on or off with each), and
    for every NCCI pair present (and every pair a payer in ``payers`` has its own rule for)
    the modifier choices on the column-2 code: none, 59, XS, XU, and XE when the session
    records a separate encounter. Choices whose documentation is missing are listed with
    ``supported=False``.

    Examples
    --------
    >>> s = Session.from_minutes({"97124": 30, "97140": 30}, service_date="2026-06-01",
    ...                          distinct_regions=True)
    >>> [a.name for a in alternatives(s)]  # doctest: +NORMALIZE_WHITESPACE
    ['97140 + 97124 (no modifier)', '97140 + 97124-59', '97140 + 97124-XS', '97140 + 97124-XU',
     '97140 only', '97124 only']
    """
    ref = reference or load_reference()
    timed = {c: t for c, (t, _) in code_catalog(ref, session.codes).items()}
    pairs = pairs_present(session, ref, payers)
    column2 = {c2 for _, c2 in pairs}
    order = {c: i for i, c in enumerate(session.codes)}
    pack = "97010" in order and len(order) > 1
    choices = MODIFIER_CHOICES + (("XE",) if session.separate_encounter else ())

    def sort_key(code: str) -> tuple[int, int, int]:
        return (code == "97010", code in column2, order[code])

    main = sorted((c for c in session.codes if not (pack and c == "97010")), key=sort_key)

    out: list[Alternative] = []
    for size in range(len(main), 0, -1):
        for subset in itertools.combinations(main, size):
            codes = sorted(subset, key=sort_key)
            inside = set(codes)
            # column-2 codes whose column-1 code is billed too, with their column-1 codes
            col2 = {}
            for c1, c2 in sorted(pairs, key=lambda p: (order[p[1]], order[p[0]])):
                if c1 in inside and c2 in inside:
                    col2.setdefault(c2, []).append(c1)
            col2_codes = [c for c in codes if c in col2]
            for combo in itertools.product(choices, repeat=len(col2_codes)):
                mods = dict(zip(col2_codes, combo, strict=True))
                with_pack = [False, True] if pack else [False]
                for add_pack in with_pack:
                    out.append(
                        _alternative(
                            session,
                            codes + (["97010"] if add_pack else []),
                            mods,
                            col2,
                            timed,
                            single=size == 1,
                        )
                    )
    return out


def _alternative(
    session: Session,
    codes: list[str],
    mods: dict[str, str],
    col2: dict[str, list[str]],
    timed: dict[str, bool],
    single: bool,
) -> Alternative:
    line_mods, line_docs, missing, needs = [], [], [], []
    for code in codes:
        mod = mods.get(code, "")
        s = session.service(code)
        docs = [
            f"{s.minutes:g} min of direct one-on-one time"
            if timed.get(code, False) and s.minutes is not None
            else "the service noted (untimed: one unit)"
        ]
        for c1 in col2.get(code, []):
            need, miss = _modifier_check(session, c1, code, mod)
            if need:
                docs.append(need)
                needs.append(need)
            if miss:
                missing.append(miss)
        line_mods.append(mod)
        line_docs.append("; ".join(docs))
    labels = [c + (f"-{m}" if m else "") for c, m in zip(codes, line_mods, strict=True)]
    bare = [c for c in codes if c in col2 and not mods.get(c)]
    if single and len(codes) == 1:
        name = f"{codes[0]} only"
    else:
        name = " + ".join(labels)
        if bare:
            name += (
                " (no modifier)"
                if len([c for c in codes if c in col2]) == 1
                else f" (no modifier on {', '.join(bare)})"
            )
    documentation = "; ".join(dict.fromkeys(needs)) or "the minutes and services as recorded"
    return Alternative(
        name=name,
        codes=tuple(codes),
        modifiers=tuple(line_mods),
        supported=not missing,
        missing="; ".join(dict.fromkeys(missing)),
        documentation=documentation,
        line_documentation=tuple(line_docs),
    )
