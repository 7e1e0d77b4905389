"""Coding scenarios: every documented way to report one session, priced side by side.

A practice owner asks: "We did 30 minutes of massage (97124) and 30 of manual therapy
(97140). Do we bill both with 59, with XS, or only one of them? What does each payer pay,
what does the patient owe, and what gets denied?" This module answers it for one
:class:`Session`:

* :func:`alternatives` lists the legitimate ways to report what the record shows: subsets
  of the services performed, the NCCI modifier on the column-2 code of each code pair
  present (none, 59, XS, XU; XE when a separate encounter is recorded), and the hot/cold
  pack (97010) on or off when one was applied. No alternative names a code that was not
  performed, and units always come from the documented minutes of the services it
  includes. An alternative whose modifier needs documentation the session lacks is kept,
  marked ``supported=False``, with what is missing in words: it must not be billed unless
  the record shows it.
* :func:`compare` prices every alternative for every payer in one pass of the rules engine
  (:func:`analytics.pipeline.evaluate`) and returns a :class:`Comparison`: one row per
  alternative x payer x line, each with its units, edits, allowed amount, payer and
  patient parts, denial probability, expected collections and an explanation in words;
  totals per alternative x payer; and a chart.
* :func:`claim_form` shows an alternative as the CMS-1500 would carry it (items 17, 21
  and 24), as a table and as CSV.

Sources: FACTS sec. 3 (units), sec. 4 (NCCI pairs and modifiers; CMS accepts 59 or the
more specific X{EPSU} subsets), sec. 8 (CMS-1500 items, code sets), sec. 9 (ICD-10-CM).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import functools
import itertools
import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError, MinutesError, UnknownCodeError, UnpricedCodeWarning
from analytics.payers import PayerPolicy, get_policy, load_payers
from analytics.pipeline import evaluate
from analytics.pricing import to_cents
from analytics.refdata import Reference, load_reference

__all__ = [
    "Service",
    "Referring",
    "Session",
    "Alternative",
    "Comparison",
    "ClaimForm",
    "alternatives",
    "compare",
    "claim_form",
    "with_fee_schedule",
    "practice_defaults",
    "explorer",
    "register_cli",
    "MODIFIER_CHOICES",
    "SAMPLE_CHARGES",
]

#: NCCI modifiers offered on the column-2 code of a pair, in display order ("" = none).
#: XE (separate encounter) is offered only when the session records a separate encounter.
MODIFIER_CHOICES = ("", "59", "XS", "XU")

#: An illustrative practice fee sheet: the charge per unit (per service for untimed codes).
#: It sets CMS-1500 item 24F and what self-pay patients are charged; pass ``charges=`` with
#: the practice's own fees.
SAMPLE_CHARGES: Mapping[str, float] = {
    "97010": 25.0,
    "97035": 40.0,
    "97110": 60.0,
    "97112": 65.0,
    "97116": 60.0,
    "97124": 55.0,
    "97139": 50.0,
    "97140": 65.0,
    "97530": 70.0,
    "97161": 180.0,
    "97162": 180.0,
    "97163": 180.0,
    "97164": 120.0,
}

_THERAPY_MODIFIER = {"pt": "GP", "ot": "GO", "slp": "GN"}
_PLAN_NAME = {
    "pt": "physical therapy",
    "ot": "occupational therapy",
    "slp": "speech-language pathology",
}
_REFERRING_QUALIFIERS = {
    "DN": "referring provider",
    "DK": "ordering provider",
    "DQ": "supervising provider",
}
_CPT = re.compile(r"\d{5}|\d{4}[FTUM]|[A-Z]\d{4}")
_ICD10CM_SHAPE = re.compile(r"[A-Z]\d[A-Z0-9](\.?[A-Z0-9]{1,4})?")
_MAX_LINES_PER_FORM = 6  # CMS-1500 item 24 has six service lines
_MAX_DIAGNOSES = 12  # item 21, A-L
_MODIFIER_PENALTY = {"": 0, "XS": 1, "XE": 1, "59": 2, "XU": 3}
_MAX_POINTERS = 4  # item 24E
_MAX_MODIFIERS = 4  # item 24D
_DX_LETTERS = "ABCDEFGHIJKL"


# ---------------------------------------------------------------------------------------
# The session as documented
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Service:
    """One service performed in the session, as the treatment notes record it.

    Parameters
    ----------
    code
        CPT/HCPCS code, e.g. ``"97124"``.
    minutes
        Direct one-on-one minutes (timed codes); ``None`` for untimed codes such as 97010.
    regions
        Body regions treated, in the notes' words (``("neck",)``). Modifiers 59, XS and XU
        need the column-2 service on a region separate from the column-1 service.
    time_block
        Label of the time block the service was given in. Services in different blocks
        were not overlapping (59/XU).
    dx
        Diagnoses this service treats (item 24E pointers, primary first, at most 4); by
        default the session's first four diagnoses.
    """

    code: str
    minutes: int | None = None
    regions: tuple[str, ...] = ()
    time_block: int | str | None = None
    dx: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", str(self.code).strip().upper())
        regions = (self.regions,) if isinstance(self.regions, str) else tuple(self.regions or ())
        object.__setattr__(
            self, "regions", tuple(r for r in (str(x).strip().lower() for x in regions) if r)
        )
        dx = (self.dx,) if isinstance(self.dx, str) else tuple(self.dx or ())
        object.__setattr__(self, "dx", _dx_canonical(dx))


@dataclasses.dataclass(frozen=True)
class Referring:
    """CMS-1500 item 17: the referring, ordering or supervising provider.

    ``qualifier`` is DN (referring), DK (ordering) or DQ (supervising); ``npi`` goes in 17b.
    """

    name: str
    npi: str = ""
    qualifier: str = "DN"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Session:
    """One treatment session as documented, and the patient's plan state.

    Parameters
    ----------
    services
        The services performed (:class:`Service`), each code once.
    service_date
        Date of service.
    dx_codes
        ICD-10-CM diagnoses in priority order (item 21, at most 12).
    provider_type
        Rendering provider type as payer policies name it (``pt``, ``lmt``, ``dc`` ...).
    plan_of_care
        ``"pt"``, ``"ot"`` or ``"slp"`` when the services are under a therapy plan of care
        (payers that require it get GP, GO or GN on therapy lines), or ``None``.
    prescription_on_file, prior_auth
        A prescription/referral is on file; an authorisation is on file.
    separate_encounter
        The record shows the services at separate encounters the same day (modifier XE).
    kx_documented
        The record supports medical necessity past the Medicare therapy threshold (KX).
    deductible_remaining, copay, coinsurance, visits_used
        Plan state: a number applies to every payer compared, a mapping gives it per payer
        id, ``None`` uses the payer's plan (deductible: the full annual deductible; copay
        and coinsurance: the policy's). ``visits_used`` counts visits this year before
        this one.
    therapy_allowed_before
        Medicare therapy dollars already allowed this year (KX threshold).
    place_of_service, rendering_npi, referring
        CMS-1500 items 24B, 24J and 17.
    charges
        The practice's charge per unit (per service for untimed codes), by code.

    Examples
    --------
    >>> s = Session(services=[Service("97124", 30, regions="low back"),
    ...                       Service("97140", 30, regions="neck")],
    ...             service_date="2026-06-01", dx_codes=["M54.50", "M54.2"])
    >>> s.codes, s.distinct_regions
    (('97124', '97140'), True)
    """

    services: tuple[Service, ...]
    service_date: _dt.date
    dx_codes: tuple[str, ...] = ()
    provider_type: str = "pt"
    plan_of_care: str | None = "pt"
    prescription_on_file: bool = False
    prior_auth: bool = False
    separate_encounter: bool = False
    kx_documented: bool = False
    deductible_remaining: float | Mapping[str, float] | None = None
    copay: float | Mapping[str, float] | None = None
    coinsurance: float | Mapping[str, float] | None = None
    visits_used: int | Mapping[str, int] = 0
    therapy_allowed_before: float = 0.0
    place_of_service: str = "11"
    rendering_npi: str = ""
    referring: Referring | None = None
    charges: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(SAMPLE_CHARGES))

    def __post_init__(self) -> None:
        services = tuple(self.services or ())
        services = tuple(s if isinstance(s, Service) else Service(**s) for s in services)
        object.__setattr__(self, "services", services)
        object.__setattr__(self, "service_date", pd.Timestamp(self.service_date).date())
        dx = (self.dx_codes,) if isinstance(self.dx_codes, str) else tuple(self.dx_codes or ())
        object.__setattr__(self, "dx_codes", _dx_canonical(dx))
        object.__setattr__(self, "provider_type", str(self.provider_type or "").strip().lower())
        pos = str(self.place_of_service).strip()
        object.__setattr__(self, "place_of_service", pos.zfill(2) if pos.isdigit() else pos)
        object.__setattr__(self, "rendering_npi", str(self.rendering_npi or "").strip())
        if self.plan_of_care is not None:
            object.__setattr__(self, "plan_of_care", str(self.plan_of_care).strip().lower() or None)
        object.__setattr__(
            self, "charges", {str(k).strip().upper(): float(v) for k, v in self.charges.items()}
        )
        _validate(self)

    @classmethod
    def from_minutes(
        cls,
        minutes: Mapping[str, int | None],
        *,
        service_date: Any,
        distinct_regions: bool = False,
        separate_time_blocks: bool = False,
        hot_pack: bool = False,
        **fields: Any,
    ) -> Session:
        """A session from minutes per code and two documentation facts.

        ``distinct_regions=True`` states that the notes place each timed service on its own
        body region (labelled ``region 1``, ``region 2`` ...); ``separate_time_blocks=True``
        that each was given in its own time block. Codes with 0 minutes were not performed
        and are left out; ``hot_pack=True`` adds 97010. Other keywords go to :class:`Session`.

        Examples
        --------
        >>> s = Session.from_minutes({"97124": 30, "97140": 30}, service_date="2026-06-01",
        ...                          distinct_regions=True)
        >>> [x.regions for x in s.services]
        [('region 1',), ('region 2',)]
        """
        services = []
        performed = [(str(c).strip().upper(), m) for c, m in minutes.items() if m is None or m != 0]
        for i, (code, m) in enumerate(performed, start=1):
            services.append(
                Service(
                    code,
                    m,
                    regions=(f"region {i}",) if distinct_regions else (),
                    time_block=i if separate_time_blocks else None,
                )
            )
        if hot_pack and "97010" not in {s.code for s in services}:
            services.append(Service("97010"))
        return cls(services=tuple(services), service_date=service_date, **fields)

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes performed, in the order recorded."""
        return tuple(s.code for s in self.services)

    def service(self, code: str) -> Service:
        """The service of one code."""
        for s in self.services:
            if s.code == code:
                return s
        raise InputError(
            f"Code {code} was not performed in this session (it has {', '.join(self.codes)})."
        )

    @property
    def distinct_regions(self) -> bool:
        """True when every service records its body regions and no two share one."""
        regions = [set(s.regions) for s in self.services]
        return all(regions) and all(not (a & b) for a, b in itertools.combinations(regions, 2))

    @property
    def separate_time_blocks(self) -> bool:
        """True when every service records its time block and no two share one."""
        blocks = [s.time_block for s in self.services]
        return None not in blocks and len(set(blocks)) == len(blocks)

    def _plan_value(self, name: str, payer_id: str, default: Any = None) -> Any:
        value = getattr(self, name)
        if isinstance(value, Mapping):
            return value.get(payer_id, default)
        return default if value is None else value


@functools.lru_cache(maxsize=1024)
def _pcs_like(codes: tuple[str, ...]) -> tuple[bool, ...]:
    from analytics.schemas import is_icd10pcs_like

    return tuple(is_icd10pcs_like(pd.Series(list(codes), dtype=str)).tolist()) if codes else ()


@functools.lru_cache(maxsize=1024)
def _dx_problems(codes: tuple[str, ...]) -> tuple[str, ...]:
    from analytics.schemas import check_icd10cm

    return tuple(check_icd10cm(pd.Series(list(codes), dtype=str)).tolist()) if codes else ()


@functools.lru_cache(maxsize=256)
def _npi_ok(npi: str) -> bool:
    from analytics.schemas import valid_npi

    return bool(valid_npi(pd.Series([npi], dtype=str)).iloc[0])


def _dx_canonical(codes: Sequence[Any]) -> tuple[str, ...]:
    """Upper case, with the ICD-10-CM dot after the 3rd character; PCS-shaped codes as given."""
    text = tuple(str(c).strip().upper() for c in codes)
    return tuple(
        t if p or "." in t or len(t) <= 3 or not t[:1].isalpha() else t[:3] + "." + t[3:]
        for t, p in zip(text, _pcs_like(text), strict=True)
    )


def _validate(session: Session) -> None:
    """Collect every problem of a session and raise one error naming them all."""
    problems: list[tuple[str, str, str]] = []  # (kind, where, what)
    catalog = _catalog_table(load_reference())
    if not session.services:
        problems.append(("input", "services", "no service was given; list the services performed"))
    pcs = _pcs_like(tuple(s.code for s in session.services))
    seen: set[str] = set()
    for i, s in enumerate(session.services):
        where = f"service {i + 1} ({s.code})"
        if pcs[i]:
            meaning = (
                " (8E0KX1Z is therapeutic massage of the musculoskeletal system, external approach)"
                if s.code == "8E0KX1Z"
                else ""
            )
            problems.append(
                (
                    "input",
                    where,
                    (
                        f"{s.code} is an ICD-10-PCS code, the inpatient hospital procedure system{meaning}. "
                        "Professional claims (CMS-1500/837P) carry CPT/HCPCS procedure codes and ICD-10-CM "
                        "diagnoses: report massage as 97124, manual therapy as 97140, with their minutes"
                    ),
                )
            )
            continue
        if not _CPT.fullmatch(s.code):
            if _ICD10CM_SHAPE.fullmatch(s.code):
                what = (
                    f"{s.code} looks like an ICD-10-CM diagnosis, not a procedure; put it in dx_codes "
                    "and give the service as a CPT/HCPCS code such as 97124"
                )
            else:
                what = (
                    f"{s.code} is not a CPT/HCPCS code (five digits, or a letter and four digits)"
                )
            problems.append(("input", where, what))
            continue
        if s.code not in catalog:
            problems.append(
                (
                    "code",
                    where,
                    (
                        f"{s.code} is not in the code catalog; use one of {', '.join(catalog)} or add it "
                        "to analytics/reference/codes.csv"
                    ),
                )
            )
            continue
        if s.code in seen:
            problems.append(
                (
                    "input",
                    where,
                    (
                        f"{s.code} is listed twice; give each code once with its total minutes and all its regions"
                    ),
                )
            )
        seen.add(s.code)
        timed = catalog[s.code][0]
        m = s.minutes
        if m is not None:
            if (
                isinstance(m, bool)
                or not isinstance(m, (int, float, np.integer, np.floating))
                or not np.isfinite(m)
            ):
                problems.append(
                    (
                        "minutes",
                        where,
                        f"minutes {m!r} are not a number; give whole minutes, e.g. 23",
                    )
                )
            elif m < 0:
                problems.append(
                    ("minutes", where, f"has negative minutes ({m}); minutes are 0 or more")
                )
            elif m != int(m):
                problems.append(
                    ("minutes", where, f"has fractional minutes ({m}); round to whole minutes")
                )
        elif timed:
            problems.append(
                (
                    "minutes",
                    where,
                    (
                        f"{s.code} is a timed (15-minute) code and needs its direct one-on-one minutes"
                    ),
                )
            )
        if len(s.dx) > _MAX_POINTERS:
            problems.append(
                (
                    "input",
                    where,
                    (
                        f"points to {len(s.dx)} diagnoses; a claim line carries at most {_MAX_POINTERS} (item 24E)"
                    ),
                )
            )
        stray = [d for d in s.dx if d not in session.dx_codes]
        if stray:
            problems.append(
                (
                    "input",
                    where,
                    (f"points to {', '.join(stray)}, which is not among the session's dx_codes"),
                )
            )
    if session.dx_codes:
        reasons = _dx_problems(session.dx_codes)
        for i, (code, why) in enumerate(zip(session.dx_codes, reasons, strict=True)):
            if why:
                extra = ""
                if _CPT.fullmatch(code):
                    extra = " (it looks like a CPT code: procedures go in services)"
                problems.append(("input", f"diagnosis {i + 1} ({code})", why + extra))
        if len(set(session.dx_codes)) < len(session.dx_codes):
            problems.append(("input", "dx_codes", "a diagnosis is listed twice"))
    if len(session.dx_codes) > _MAX_DIAGNOSES:
        problems.append(
            (
                "input",
                "dx_codes",
                (
                    f"{len(session.dx_codes)} diagnoses; a CMS-1500 carries at most {_MAX_DIAGNOSES} (item 21, A-L)"
                ),
            )
        )
    if session.plan_of_care is not None and session.plan_of_care not in _THERAPY_MODIFIER:
        problems.append(
            (
                "input",
                "plan_of_care",
                (f"{session.plan_of_care!r} is not a plan of care; use 'pt', 'ot', 'slp' or None"),
            )
        )
    if not session.provider_type:
        problems.append(
            ("input", "provider_type", "the rendering provider type is empty (e.g. pt, lmt, dc)")
        )
    if not re.fullmatch(r"\d{2}", session.place_of_service):
        problems.append(
            (
                "input",
                "place_of_service",
                (
                    f"{session.place_of_service!r} is not a two-digit place-of-service code (11 = office)"
                ),
            )
        )
    npis = [("rendering_npi", session.rendering_npi)]
    if session.referring is not None:
        npis.append(("referring.npi", str(session.referring.npi or "").strip()))
        if session.referring.qualifier not in _REFERRING_QUALIFIERS:
            problems.append(
                (
                    "input",
                    "referring.qualifier",
                    (
                        f"{session.referring.qualifier!r} is not an item 17 qualifier; use DN (referring), "
                        "DK (ordering) or DQ (supervising)"
                    ),
                )
            )
    for name, npi in npis:
        if npi and not _npi_ok(npi):
            problems.append(
                ("input", name, f"{npi} is not a valid NPI (10 digits with a Luhn check digit)")
            )
    for name in ("deductible_remaining", "copay", "coinsurance", "visits_used"):
        value = getattr(session, name)
        values = value.values() if isinstance(value, Mapping) else [value]
        for v in values:
            if v is None:
                continue
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.integer, np.floating))
                or v < 0
            ):
                problems.append(("input", name, f"{v!r} must be a number of 0 or more"))
            elif name == "coinsurance" and v > 1:
                problems.append(("input", name, f"{v} is a fraction (0.2 for 20%)"))
            elif name == "visits_used" and v != int(v):
                problems.append(("input", name, f"{v} must be a whole number of visits"))
    if session.therapy_allowed_before < 0:
        problems.append(("input", "therapy_allowed_before", "must be 0 or more dollars"))
    bad_charges = [c for c, v in session.charges.items() if not v >= 0]
    if bad_charges:
        problems.append(
            ("input", "charges", f"charges for {', '.join(bad_charges)} must be 0 or more dollars")
        )
    if not problems:
        return
    kinds = {k for k, _, _ in problems}
    cls = (
        {"code": UnknownCodeError, "minutes": MinutesError}.get(kinds.pop(), InputError)
        if len(kinds) == 1
        else InputError
    )
    rows = pd.DataFrame(problems, columns=["kind", "where", "problem"]).drop(columns="kind")
    listing = "\n".join(f"  - {w}: {p}" for _, w, p in problems)
    raise cls(
        f"The session cannot be priced; {len(problems)} problem(s):\n{listing}",
        rows=rows,
        where=", ".join(rows["where"]),
    )


# ---------------------------------------------------------------------------------------
# Alternatives
# ---------------------------------------------------------------------------------------


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


_CACHE: dict[str, tuple[object, Any]] = {}


def _cached(name: str, table: pd.DataFrame, build) -> Any:
    """A plain-Python view of a reference table, rebuilt when the table object changes."""
    hit = _CACHE.get(name)
    if hit is None or hit[0] is not table:
        hit = (table, build(table))
        _CACHE[name] = hit
    return hit[1]


def _catalog_table(ref: Reference) -> dict[str, tuple[bool, bool]]:
    return _cached(
        "codes",
        ref.codes,
        lambda t: {
            c: (bool(x), bool(y))
            for c, x, y in zip(t["cpt"], t["timed"], t["therapy"], strict=True)
        },
    )


def _catalog(ref: Reference, codes: Sequence[str]) -> dict[str, tuple[bool, bool]]:
    """``{code: (timed, therapy)}`` for ``codes``; raises for codes the catalog lacks."""
    table = _catalog_table(ref)
    if any(c not in table for c in codes):
        ref.code_table(pd.Series(list(codes), dtype=str))  # raises, naming the codes
    return {c: table[c] for c in codes}


def _pairs_present(session: Session, ref: Reference, payers: Mapping[str, PayerPolicy] | None):
    """NCCI column-1/column-2 pairs (and payer pair rules) among the codes performed."""
    codes = set(session.codes)
    when = pd.Timestamp(session.service_date)
    rows = _cached(
        "ptp",
        ref.ncci_ptp,
        lambda t: list(
            t.loc[
                t["modifier_indicator"] != 9,
                ["column1", "column2", "effective_date", "deletion_date", "modifier_indicator"],
            ].itertuples(index=False)
        ),
    )
    pairs = {
        (c1, c2): int(ind)
        for c1, c2, start, end, ind in rows
        if c1 in codes
        and c2 in codes
        and (pd.isna(start) or start <= when)
        and (pd.isna(end) or when < end)
    }
    for p in (payers or {}).values():
        for c1, c2, _ in p.ncci.pairs:
            if c1 in codes and c2 in codes and c1 != c2:
                pairs.setdefault((c1, c2), 1)
    return pairs


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
    timed = {c: t for c, (t, _) in _catalog(ref, session.codes).items()}
    pairs = _pairs_present(session, ref, payers)
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


# ---------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------

_TABLE_COLUMNS = [
    "alternative",
    "payer_id",
    "payer_name",
    "supported",
    "missing",
    "line",
    "cpt",
    "minutes",
    "modifiers",
    "units",
    "units_reason",
    "disposition",
    "edit_reason",
    "carc",
    "group_code",
    "rarc",
    "charge",
    "allowed",
    "medicare_allowed",
    "price_basis",
    "deductible_applied",
    "copay_applied",
    "coinsurance_applied",
    "patient_part",
    "payer_part",
    "payer_paid",
    "p_deny",
    "p_deny_basis",
    "expected",
    "expected_payer",
    "expected_patient",
    "documentation",
    "explanation",
]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Every alternative priced for every payer.

    Attributes
    ----------
    table
        One row per alternative x payer x line: units and why, edits and why, allowed and
        the price basis, cost share, ``p_deny``, ``expected`` collections (allowed x
        (1 - p_deny)) split into payer and patient, the documentation the line needs and an
        ``explanation`` in words.
    totals
        One row per alternative x payer: ``expected_total`` (the sum of the lines'
        ``expected``), ``expected_payer``, ``expected_patient``, allowed and cost-share
        totals, denied lines, ``supported`` and ``missing``, and ``best`` (the supported
        alternative with the highest expected total for that payer).
    """

    session: Session
    alternatives: tuple[Alternative, ...]
    payers: tuple[str, ...]
    table: pd.DataFrame
    totals: pd.DataFrame

    def overview(self) -> pd.DataFrame:
        """The totals for reading: expected collections and their split, per alternative and payer."""
        return self.totals[
            [
                "alternative",
                "payer_id",
                "supported",
                "expected_total",
                "expected_payer",
                "expected_patient",
                "denied_lines",
                "best",
                "missing",
            ]
        ].reset_index(drop=True)

    def explain(self, payer: str | None = None, alternative: str | None = None) -> pd.DataFrame:
        """The per-line table in short: code, units, outcome, dollars and the explanation."""
        t = self.table
        if payer is not None:
            t = t[t["payer_id"] == payer]
        if alternative is not None:
            t = t[t["alternative"] == alternative]
        return t[
            [
                "alternative",
                "payer_id",
                "cpt",
                "modifiers",
                "units",
                "disposition",
                "allowed",
                "p_deny",
                "expected",
                "explanation",
            ]
        ].reset_index(drop=True)

    def denied(self) -> pd.DataFrame:
        """The lines a payer would deny or not bill, with the reason and codes."""
        t = self.table
        t = t[t["disposition"].isin(["denied", "not_billed"])]
        return t[
            [
                "alternative",
                "payer_id",
                "cpt",
                "modifiers",
                "disposition",
                "group_code",
                "carc",
                "rarc",
                "edit_reason",
            ]
        ].reset_index(drop=True)

    def best(self) -> pd.DataFrame:
        """Per payer, the supported alternative with the highest expected collections."""
        t = self.totals[self.totals["best"]]
        t = t.iloc[
            np.argsort(
                pd.Categorical(t["payer_id"], categories=list(self.payers)).codes, kind="stable"
            )
        ]
        return t[
            [
                "payer_id",
                "alternative",
                "expected_total",
                "expected_payer",
                "expected_patient",
                "documentation",
            ]
        ].reset_index(drop=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The comparison in the shape of ``python -m analytics compare --json``."""
        t = self.table
        keys = list(zip(t["alternative"].astype(str), t["payer_id"].astype(str), strict=True))
        lines: dict[tuple[str, str], list[dict[str, Any]]] = {}
        allowed = t["allowed"].to_numpy(dtype=float, na_value=np.nan)
        for k, code, mods, units, a, p, e in zip(
            keys,
            t["cpt"],
            t["modifiers"],
            t["units"],
            allowed,
            t["p_deny"],
            t["expected"],
            strict=True,
        ):
            lines.setdefault(k, []).append(
                {
                    "code": str(code),
                    "modifiers": str(mods),
                    "units": int(units),
                    "allowed": None if np.isnan(a) else float(a),
                    "p_deny": round(float(p), 4),
                    "expected": float(e),
                }
            )
        return {
            "alternatives": [
                {
                    "name": str(r.alternative),
                    "payer": str(r.payer_id),
                    "supported": bool(r.supported),
                    "lines": lines[(str(r.alternative), str(r.payer_id))],
                    "expected_total": float(r.expected_total),
                }
                for r in self.totals.itertuples(index=False)
            ]
        }

    def plot(self, *, title: str | None = None, show_values: bool | None = None):
        """Grouped bars of expected collections per visit, by alternative and payer.

        Alternatives the documentation does not support are hatched and pale, with
        "(not supported)" in their label. Returns a :class:`matplotlib.figure.Figure`.
        """
        return _plot(self.totals, list(self.payers), title=title, show_values=show_values)


def with_fee_schedule(
    payers: Mapping[str, PayerPolicy],
    *,
    year: int | None = None,
    locality: str | None = None,
) -> dict[str, PayerPolicy]:
    """Payers priced off the Medicare fee schedule, set to one fee-schedule year and locality.

    ``None`` keeps each payer's own setting. Flat-fee and cash payers are unchanged.
    """
    out = {}
    for pid, p in payers.items():
        if p.fee.basis in ("medicare", "percent_of_medicare") and (year is not None or locality):
            fee = dataclasses.replace(
                p.fee,
                year=p.fee.year if year is None else int(year),
                locality=locality or p.fee.locality,
            )
            p = dataclasses.replace(p, fee=fee)
        out[pid] = p
    return out


def practice_defaults(
    data_dir: str | Path, *, providers: Sequence[str] | str = (), provider_type: str = "pt"
) -> dict[str, Any]:
    """Session settings from a practice folder's ``practice.yaml``, when it has one.

    Returns keyword arguments for :class:`Session`: ``charges`` (the practice's fee sheet
    over :data:`SAMPLE_CHARGES` for codes it does not list), and ``provider_type`` and
    ``rendering_npi`` of the first provider id in ``providers`` (else ``provider_type``).

    Examples
    --------
    >>> practice_defaults("no/such/folder", provider_type="lmt")["provider_type"]
    'lmt'
    """
    import yaml

    path = Path(data_dir) / "practice.yaml"
    settings = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    out: dict[str, Any] = {"charges": dict(SAMPLE_CHARGES), "provider_type": provider_type}
    out["charges"].update({str(k): float(v) for k, v in (settings.get("fee_sheet") or {}).items()})
    ids = (
        [p.strip() for p in providers.split(",")] if isinstance(providers, str) else list(providers)
    )
    ids = [p for p in ids if p]
    if ids:
        known = {str(p.get("provider_id")): p for p in settings.get("providers") or []}
        if ids[0] not in known:
            raise InputError(
                f"Provider {ids[0]!r} is not in {path}; its providers are {', '.join(known) or 'none'}. "
                "Give a provider id from that list, or leave providers empty and set provider_type."
            )
        out["provider_type"] = str(known[ids[0]].get("provider_type") or provider_type).lower()
        out["rendering_npi"] = str(known[ids[0]].get("npi") or "")
    return out


def _policies(
    payers: Mapping[str, PayerPolicy] | str | Path,
    payer_ids: Sequence[str] | None,
    session: Session,
) -> dict[str, PayerPolicy]:
    pol = load_payers(payers) if isinstance(payers, (str, Path)) else dict(payers)
    if payer_ids is not None:
        if isinstance(payer_ids, str):  # "medicare,ppo_gold", e.g. from a report parameter
            payer_ids = [p.strip() for p in payer_ids.split(",") if p.strip()]
        pol = {pid: get_policy(pol, pid) for pid in payer_ids}
    if not pol:
        raise InputError(
            "No payer to compare; pass payer policies (load_payers('data/sample/payers.yaml'))."
        )
    out = {}
    for pid, p in pol.items():
        copay = session._plan_value("copay", pid)
        coins = session._plan_value("coinsurance", pid)
        if copay is not None or coins is not None:
            cs = dataclasses.replace(
                p.cost_share,
                copay=p.cost_share.copay if copay is None else float(copay),
                coinsurance=p.cost_share.coinsurance if coins is None else float(coins),
            )
            p = dataclasses.replace(p, cost_share=cs)
        out[pid] = p
    return out


def compare(
    session: Session,
    payers: Mapping[str, PayerPolicy] | str | Path,
    *,
    payer_ids: Sequence[str] | None = None,
    reference: Reference | None = None,
    denial_model: Any | None = None,
) -> Comparison:
    """Price every alternative of a session for every payer, side by side.

    All alternatives x payers go through the rules engine in one call of
    :func:`analytics.pipeline.evaluate`, each (alternative, payer) as its own visit, so
    units follow the payer's method, edits and MPPR see only that alternative's lines, and
    the deductible and copay start from the session's plan state for each.

    Parameters
    ----------
    session
        The documented session.
    payers
        Payer policies (:func:`analytics.payers.load_payers`) or the path of a payers YAML.
    payer_ids
        Compare only these payers, in this order (default: all, in policy order); a string
        is read as comma-separated ids.
    reference
        Reference data (default: the shipped extracts).
    denial_model
        A fitted model with ``predict_proba(lines)``; without one each payer's
        ``denial_prior`` is the chance of a denial on lines no edit denies.

    Returns
    -------
    Comparison
        ``.table`` (per line), ``.totals`` (per alternative and payer), ``.plot()``.

    Examples
    --------
    >>> s = Session.from_minutes({"97124": 30, "97140": 30}, service_date="2026-06-01",
    ...                          distinct_regions=True, deductible_remaining=0)
    >>> pol = load_payers({"payers": {"medicare": {"kind": "medicare", "denial_prior": 0.06}}})
    >>> c = compare(s, pol)
    >>> float(c.totals.set_index("alternative").loc["97140 + 97124-XS", "expected_total"])
    87.43
    """
    ref = reference or load_reference()
    pol = _policies(payers, payer_ids, session)
    alts = alternatives(session, reference=ref, payers=pol)
    frame, meta = _scenario_lines(session, alts, pol, ref)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = evaluate(frame, pol, ref, denial_model=denial_model)
    _reissue(caught, out)
    table = _table(out, meta, alts, pol)
    totals = _totals(table, alts, pol)
    return Comparison(
        session=session, alternatives=tuple(alts), payers=tuple(pol), table=table, totals=totals
    )


def _reissue(caught: list[warnings.WarningMessage], out: pd.DataFrame) -> None:
    """Pass the engine's warnings on, with one unpriced-code warning naming payer and code."""
    for w in caught:
        if not issubclass(w.category, UnpricedCodeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    unpriced = out.loc[
        out["disposition"].astype(str) == "unpriced", ["payer_id", "cpt"]
    ].drop_duplicates()
    if len(unpriced):
        which = ", ".join(f"{c} for {p}" for p, c in unpriced.itertuples(index=False))
        warnings.warn(
            f"No rate for {which}: those lines are shown as 'unpriced' with $0 expected. Add the "
            "payer's rate under fee.rates in payers.yaml to price them.",
            UnpricedCodeWarning,
            stacklevel=3,
        )


def _scenario_lines(
    session: Session, alts: Sequence[Alternative], pol: Mapping[str, PayerPolicy], ref: Reference
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Service lines for every alternative x payer, each pair its own synthetic visit."""
    payer_ids = list(pol)
    n_pay = len(payer_ids)
    spans = np.cumsum([0] + [len(a.codes) for a in alts])
    base_code = np.array([c for a in alts for c in a.codes], dtype=object)
    base_mod = np.array([m for a in alts for m in a.modifiers], dtype=object)
    base_doc = np.array([d for a in alts for d in a.line_documentation], dtype=object)
    base_alt = np.repeat(np.arange(len(alts)), np.diff(spans))
    base_line = np.concatenate([np.arange(1, len(a.codes) + 1) for a in alts])
    # rows in alternative, payer, line order
    take = np.concatenate(
        [np.tile(np.arange(spans[i], spans[i + 1]), n_pay) for i in range(len(alts))]
    )
    payer_idx = np.concatenate(
        [np.repeat(np.arange(n_pay), spans[i + 1] - spans[i]) for i in range(len(alts))]
    )
    alt_idx = base_alt[take]
    code = base_code[take]
    n = len(take)

    svc = {s.code: s for s in session.services}
    catalog = _catalog(ref, list(svc))
    minutes_of = {
        c: (np.nan if s.minutes is None or not catalog[c][0] else float(s.minutes))
        for c, s in svc.items()
    }
    minutes = np.array([minutes_of[c] for c in code], dtype=float)
    therapy = np.array([catalog[c][1] for c in code], dtype=bool)

    pays = [pol[p] for p in payer_ids]
    gp_payer = np.array([p.require_gp for p in pays], dtype=bool)[payer_idx]
    kx_payer = np.array([p.kx_threshold for p in pays], dtype=bool)[payer_idx]
    tag = _THERAPY_MODIFIER.get(session.plan_of_care or "", "")
    gp_added = gp_payer & therapy & bool(tag)
    mods = np.where(gp_added, tag, "").astype(object)
    ncci = base_mod[take]
    mods = np.where((mods != "") & (ncci != ""), mods + "," + ncci, mods + ncci)
    kx = kx_payer & therapy & session.kx_documented
    mods = np.where(kx & (mods != ""), mods + ",KX", np.where(kx, "KX", mods))

    def per_payer(name: str, default: float) -> np.ndarray:
        vals = [session._plan_value(name, p, default) for p in payer_ids]
        return np.array([np.nan if v is None else float(v) for v in vals], dtype=float)[payer_idx]

    fee = np.array([session.charges.get(c, np.nan) for c in code], dtype=float)
    frame = pd.DataFrame(
        {
            "patient_id": (alt_idx * n_pay + payer_idx).astype(np.int64),
            "service_date": pd.Timestamp(session.service_date),
            "provider_id": session.rendering_npi or "rendering",
            "provider_type": session.provider_type,
            "payer_id": np.array(payer_ids, dtype=object)[payer_idx],
            "cpt": code,
            "minutes": minutes,
            "modifiers": mods,
            "prescription_on_file": session.prescription_on_file,
            "prior_auth": session.prior_auth,
            "visits_before": per_payer("visits_used", 0.0),
            "deductible_remaining": per_payer("deductible_remaining", None),
            "therapy_allowed_before": float(session.therapy_allowed_before),
            "charge": np.full(n, np.nan),
            "dx_codes": ",".join(session.dx_codes),
        }
    )
    # The practice's charge is per unit, so payers paid at charges need the units first
    # (the same engine count evaluate makes).
    by_charges = np.array([p.fee.basis == "charges" for p in pays], dtype=bool)[payer_idx]
    if by_charges.any():
        from analytics.units import compute_units

        sub = frame[by_charges]
        method = pd.Series(
            np.array([p.unit_method for p in pays], dtype=object)[payer_idx[by_charges]],
            index=sub.index,
        )
        units = compute_units(sub, method, reference=ref)["units"].to_numpy(dtype=float)
        frame.loc[by_charges, "charge"] = fee[by_charges] * units
    meta = {
        "alt": alt_idx,
        "payer": payer_idx,
        "line": base_line[take],
        "fee": fee,
        "gp_added": gp_added,
        "kx_added": kx,
        "doc": base_doc[take],
    }
    return frame, meta


def _money(x: np.ndarray) -> np.ndarray:
    return np.array([f"${v:,.2f}" for v in np.nan_to_num(np.asarray(x, dtype=float))], dtype=object)


def _table(
    out: pd.DataFrame,
    meta: dict[str, np.ndarray],
    alts: Sequence[Alternative],
    pol: Mapping[str, PayerPolicy],
) -> pd.DataFrame:
    payer_ids = list(pol)
    alt = meta["alt"]
    names = [a.name for a in alts]
    units = out["units"].to_numpy(dtype=np.int64)
    disp = out["disposition"].astype(str).to_numpy(dtype=object)
    allowed = out["allowed"].to_numpy(dtype=float, na_value=np.nan)
    charge = np.where(np.isnan(meta["fee"]), np.nan, meta["fee"] * units)
    charge = np.where(
        np.isfinite(out["charge"].to_numpy(dtype=float)),
        out["charge"].to_numpy(dtype=float),
        charge,
    )
    p_deny = out["p_deny"].to_numpy(dtype=float)
    s = lambda col: out[col].astype(str).to_numpy(dtype=object)  # noqa: E731

    # why N units
    why_units = units.astype(str).astype(object) + " unit(s): " + s("units_reason")
    # why bundled / denied
    carc, group, rarc = s("carc"), s("group_code"), s("rarc")
    code_txt = np.where(
        carc != "",
        " ("
        + np.where(group != "", group + "-", "")
        + carc
        + np.where(rarc != "", ", " + rarc, "")
        + ")",
        "",
    )
    why_edit = np.select(
        [disp == "denied", disp == "not_billed"],
        ["Denied" + code_txt + ": " + s("edit_reason"), "Not billed: no billable units"],
        default="Edits: " + s("edit_reason"),
    )
    # why $X
    live = np.isin(disp, ["payable", "reduced"])
    why_price = np.where(
        live,
        _money(allowed)
        + " allowed: "
        + s("price_basis")
        + "; patient "
        + _money(out["patient_part"])
        + " (deductible "
        + _money(out["deductible_applied"])
        + ", copay "
        + _money(out["copay_applied"])
        + ", coinsurance "
        + _money(out["coinsurance_applied"])
        + "), payer "
        + _money(out["payer_paid"]),
        np.where(disp == "unpriced", "No rate: " + s("price_basis"), ""),
    )
    pct = np.array([f"{p:.0%}" for p in p_deny], dtype=object)
    why_risk = (
        "Chance of denial "
        + pct
        + " ("
        + s("p_deny_basis")
        + ") -> expected "
        + _money(out["expected"])
    )
    tag = np.array([str(m).split(",")[0] for m in out["modifiers"]], dtype=object)
    payer_names = np.array([pol[p].name or p for p in payer_ids], dtype=object)[meta["payer"]]
    gp_note = np.where(
        meta["gp_added"],
        tag
        + " added: "
        + payer_names
        + " pays therapy lines only with a therapy modifier, and the session is under a plan "
        "of care",
        "",
    )
    kx_note = np.where(
        meta["kx_added"],
        "KX added: the record supports medical necessity past the therapy threshold",
        "",
    )
    doc = meta["doc"].copy()
    rx = np.array([pol[p].prescription_required for p in payer_ids], dtype=bool)[meta["payer"]]
    doc = np.where(rx, doc + "; a prescription or referral on file", doc)
    doc = np.where(meta["gp_added"], doc + "; the plan of care (" + tag + ")", doc)
    parts = [why_units, why_edit, why_price, why_risk, gp_note, kx_note, "Documentation: " + doc]
    explanation = parts[0]
    for p in parts[1:]:
        explanation = np.where(p != "", explanation + ". " + p, explanation)

    supported = np.array([a.supported for a in alts], dtype=bool)[alt]
    missing = np.array([a.missing for a in alts], dtype=object)[alt]
    table = out.assign(
        alternative=pd.Categorical.from_codes(
            alt, categories=pd.Index(names, dtype=object), validate=False
        )
        if len(set(names)) == len(names)
        else np.array(names, dtype=object)[alt],
        payer_name=payer_names,
        supported=supported,
        missing=missing,
        line=meta["line"],
        charge=to_cents(np.nan_to_num(charge, nan=0.0)) if np.isfinite(charge).all() else charge,
        disposition=disp,
        documentation=doc,
        explanation=explanation.astype(object),
    )
    return table[_TABLE_COLUMNS].reset_index(drop=True)


def _totals(
    table: pd.DataFrame, alts: Sequence[Alternative], pol: Mapping[str, PayerPolicy]
) -> pd.DataFrame:
    payer_ids = list(pol)
    n_alt, n_pay = len(alts), len(payer_ids)
    alt = (
        table["alternative"].cat.codes.to_numpy()
        if isinstance(table["alternative"].dtype, pd.CategoricalDtype)
        else pd.factorize(table["alternative"])[0]
    ).astype(np.int64)
    pay = pd.Categorical(table["payer_id"], categories=payer_ids).codes.astype(np.int64)
    combo = alt * n_pay + pay
    size = n_alt * n_pay

    def total(col: str) -> np.ndarray:
        return to_cents(
            np.bincount(
                combo, weights=np.nan_to_num(table[col].to_numpy(dtype=float)), minlength=size
            )
        )

    denied = table["disposition"].isin(["denied", "not_billed"]).to_numpy()
    a_of = np.repeat(np.arange(n_alt), n_pay)
    p_of = np.tile(np.arange(n_pay), n_alt)
    supported = np.array([a.supported for a in alts], dtype=bool)[a_of]
    expected = total("expected")
    # best: the supported alternative with the highest expected total, per payer; on a tie
    # the one needing no NCCI modifier, then an X modifier over 59 (CMS: 59 only when no
    # more specific modifier fits), then the listing order.
    penalty = np.array(
        [max((_MODIFIER_PENALTY.get(m, 0) for m in a.modifiers), default=0) for a in alts]
    )[a_of]
    best = np.zeros(size, dtype=bool)
    order = np.lexsort((np.arange(size), penalty, -expected, ~supported, p_of))
    first = order[np.r_[True, np.diff(p_of[order]) != 0]]
    best[first[supported[first]]] = True
    labels = [
        " + ".join(c + (f"-{m}" if m else "") for c, m in zip(a.codes, a.modifiers, strict=True))
        for a in alts
    ]
    return pd.DataFrame(
        {
            "alternative": pd.Categorical.from_codes(
                a_of, categories=pd.Index([a.name for a in alts], dtype=object), validate=False
            ),
            "payer_id": np.array(payer_ids, dtype=object)[p_of],
            "payer_name": np.array([pol[p].name or p for p in payer_ids], dtype=object)[p_of],
            "supported": supported,
            "missing": np.array([a.missing for a in alts], dtype=object)[a_of],
            "codes": np.array(labels, dtype=object)[a_of],
            "units": np.bincount(
                combo, weights=table["units"].to_numpy(dtype=float), minlength=size
            ).astype(np.int64),
            "denied_lines": np.bincount(combo, weights=denied, minlength=size).astype(np.int64),
            "allowed": total("allowed"),
            "patient_part": total("patient_part"),
            "payer_paid": total("payer_paid"),
            "expected_total": expected,
            "expected_payer": total("expected_payer"),
            "expected_patient": total("expected_patient"),
            "best": best,
            "documentation": np.array([a.documentation for a in alts], dtype=object)[a_of],
        }
    )


# Okabe-Ito: distinguishable in colour-blind vision and in greyscale print.
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _plot(
    totals: pd.DataFrame, payer_ids: list[str], *, title: str | None, show_values: bool | None
):
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = (
        list(totals["alternative"].cat.categories)
        if isinstance(totals["alternative"].dtype, pd.CategoricalDtype)
        else list(dict.fromkeys(totals["alternative"]))
    )
    n_alt, n_pay = len(names), max(len(payer_ids), 1)
    grid = totals.set_index(["alternative", "payer_id"])["expected_total"]
    supported = totals.drop_duplicates("alternative").set_index("alternative")["supported"]
    names_of = totals.drop_duplicates("payer_id").set_index("payer_id")["payer_name"]
    bar = 0.8 / n_pay
    height = 1.4 + n_alt * (0.16 * n_pay + 0.25)
    fig = Figure(figsize=(9.5, max(3.0, height)), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    show = (n_alt * n_pay <= 60) if show_values is None else show_values
    top = float(totals["expected_total"].max()) if len(totals) else 0.0
    for j, pid in enumerate(payer_ids):
        colour = _COLOURS[j % len(_COLOURS)]
        values = np.array([float(grid.get((a, pid), 0.0)) for a in names])
        y = np.arange(n_alt) + (j - (n_pay - 1) / 2) * bar
        ok = np.array([bool(supported[a]) for a in names])
        ax.barh(
            y[ok],
            values[ok],
            height=bar * 0.92,
            color=colour,
            edgecolor="black",
            linewidth=0.4,
            label=str(names_of.get(pid, pid)),
        )
        ax.barh(
            y[~ok],
            values[~ok],
            height=bar * 0.92,
            color=colour,
            alpha=0.3,
            edgecolor=colour,
            hatch="///",
            linewidth=0.6,
        )
        if show:
            for yy, v in zip(y, values, strict=True):
                ax.text(v + top * 0.01, yy, f"${v:,.0f}", va="center", fontsize=7)
    labels = [a if supported[a] else f"{a}\n(not supported)" for a in names]
    ax.set_yticks(np.arange(n_alt), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel(
        "Expected collections per visit ($): allowed x (1 - chance of denial)", fontsize=9
    )
    ax.xaxis.set_major_formatter("${x:,.0f}")
    ax.set_xlim(0, top * 1.12 + 1)
    ax.grid(axis="x", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles, _ = ax.get_legend_handles_labels()
    if not supported.all():
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="0.3",
                hatch="///",
                label="not supported by the documentation",
            )
        )
    ax.legend(
        handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False
    )
    ax.set_title(
        title or "Expected collections by coding alternative and payer", fontsize=11, loc="left"
    )
    return fig


# ---------------------------------------------------------------------------------------
# CMS-1500
# ---------------------------------------------------------------------------------------

_LINE_COLUMNS = [
    "page",
    "line",
    "24A_from",
    "24A_to",
    "24B_place_of_service",
    "24C_emg",
    "24D_code",
    "24D_modifier_1",
    "24D_modifier_2",
    "24D_modifier_3",
    "24D_modifier_4",
    "24E_pointer",
    "24F_charges",
    "24G_units",
    "24J_rendering_npi",
]
_CLAIM_COLUMNS = ["17_qualifier", "17_name", "17b_npi", "21_icd_indicator"] + [
    f"21{x}" for x in _DX_LETTERS
]


@dataclasses.dataclass(frozen=True)
class ClaimForm:
    """An alternative as the CMS-1500 (02/12) would carry it.

    Attributes
    ----------
    lines
        Item 24, one row per service line, six to a page (``page``, ``line``).
    diagnoses
        Item 21: ``item`` (21A ... 21L), ``letter``, ``code`` as recorded and ``on_form`` (no
        period, as paper claims print it); the ICD indicator is ``icd_indicator`` (0 = ICD-10-CM).
    referring
        Item 17 (qualifier and name) and 17b (NPI), or ``None``.
    omitted
        Services of the alternative left off because they earn no unit under the payer's method.
    """

    lines: pd.DataFrame
    diagnoses: pd.DataFrame
    referring: Referring | None
    icd_indicator: str = "0"
    omitted: tuple[str, ...] = ()

    @property
    def pages(self) -> int:
        return int(self.lines["page"].max()) if len(self.lines) else 0

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per service line, with items 17 and 21 repeated on each row."""
        path = Path(path)
        self._flat().to_csv(path, index=False, float_format="%.2f")
        return path

    @classmethod
    def read_csv(cls, path: str | Path) -> ClaimForm:
        """Read a claim written by :meth:`to_csv`."""
        flat = pd.read_csv(path, dtype=str, keep_default_na=False)
        lines = flat[_LINE_COLUMNS].copy()
        lines["page"] = lines["page"].astype(int)
        lines["line"] = lines["line"].astype(int)
        lines["24F_charges"] = pd.to_numeric(lines["24F_charges"].replace("", None)).astype(float)
        lines["24G_units"] = lines["24G_units"].astype(int)
        first = flat.iloc[0] if len(flat) else pd.Series("", index=_CLAIM_COLUMNS)
        codes = [(f"21{x}", x, first[f"21{x}"]) for x in _DX_LETTERS if first[f"21{x}"]]
        diagnoses = _diagnosis_frame([c for _, _, c in codes])
        referring = (
            Referring(name=first["17_name"], npi=first["17b_npi"], qualifier=first["17_qualifier"])
            if first["17_qualifier"]
            else None
        )
        return cls(
            lines=lines,
            diagnoses=diagnoses,
            referring=referring,
            icd_indicator=first["21_icd_indicator"] or "0",
        )

    def _flat(self) -> pd.DataFrame:
        flat = self.lines.copy()
        ref = self.referring
        flat["17_qualifier"] = ref.qualifier if ref else ""
        flat["17_name"] = ref.name if ref else ""
        flat["17b_npi"] = ref.npi if ref else ""
        flat["21_icd_indicator"] = self.icd_indicator if len(self.diagnoses) else ""
        by_letter = dict(zip(self.diagnoses["letter"], self.diagnoses["code"], strict=True))
        for x in _DX_LETTERS:
            flat[f"21{x}"] = by_letter.get(x, "")
        return flat


def _diagnosis_frame(codes: Sequence[str]) -> pd.DataFrame:
    letters = list(_DX_LETTERS[: len(codes)])
    return pd.DataFrame(
        {
            "item": [f"21{x}" for x in letters],
            "letter": letters,
            "code": list(codes),
            "on_form": [
                c.replace(".", "") for c in codes
            ],  # Pub. 100-04 ch. 26 sec. 10.4: no period
        },
        columns=["item", "letter", "code", "on_form"],
    )


def _modifier_order(mods: Sequence[str]) -> list[str]:
    """Therapy discipline (GP/GO/GN) first, then CQ/CO, the NCCI modifier, KX, then the rest.

    FACTS sec. 8 shows item 24D as ``97140 GP 59``.
    """
    rank = {
        "GP": 0,
        "GO": 0,
        "GN": 0,
        "CQ": 1,
        "CO": 1,
        "59": 2,
        "XE": 2,
        "XS": 2,
        "XP": 2,
        "XU": 2,
        "KX": 3,
    }
    clean = [m for m in dict.fromkeys(x.strip().upper() for x in mods) if m]
    return sorted(clean, key=lambda m: rank.get(m, 4))


def claim_form(
    session: Session,
    alternative: Alternative | str,
    payer: PayerPolicy | None = None,
    *,
    reference: Reference | None = None,
) -> ClaimForm:
    """The CMS-1500 items 17, 21 and 24 of one alternative for one payer.

    Units (24G) follow the payer's unit method on the documented minutes (CMS when no payer
    is given); a payer that requires a therapy modifier gets GP/GO/GN under the session's
    plan of care. Services that earn no unit are left off (``.omitted``). Charges (24F) are
    the practice's charge per unit x units. Diagnosis pointers (24E) are the service's own
    ``dx`` or the session's first four diagnoses, primary first.

    Examples
    --------
    >>> s = Session.from_minutes({"97124": 30, "97140": 30}, service_date="2026-06-01",
    ...                          distinct_regions=True, dx_codes=["M54.50"])
    >>> form = claim_form(s, "97140 + 97124-XS")
    >>> form.lines[["24D_code", "24D_modifier_1", "24G_units", "24E_pointer"]].values.tolist()
    [['97140', '', 2, 'A'], ['97124', 'XS', 2, 'A']]
    """
    ref = reference or load_reference()
    if isinstance(alternative, str):
        found = {
            a.name: a
            for a in alternatives(
                session, reference=ref, payers={payer.payer_id: payer} if payer else None
            )
        }
        if alternative not in found:
            raise InputError(
                f"{alternative!r} is not an alternative of this session; choose one of "
                f"{', '.join(found)}."
            )
        alternative = found[alternative]
    from analytics.units import compute_units

    svc = {s.code: s for s in session.services}
    missing = [c for c in alternative.codes if c not in svc]
    if missing:
        raise InputError(
            f"The alternative bills {', '.join(missing)}, which the session does not record as "
            "performed; a claim reports only services performed and documented."
        )
    catalog = _catalog(ref, list(svc))
    lines = pd.DataFrame(
        {
            "patient_id": "claim",
            "service_date": pd.Timestamp(session.service_date),
            "provider_id": "claim",
            "cpt": list(alternative.codes),
            "minutes": [
                np.nan if svc[c].minutes is None or not catalog[c][0] else float(svc[c].minutes)
                for c in alternative.codes
            ],
        }
    )
    units = compute_units(lines, payer.unit_method if payer else "cms", reference=ref)[
        "units"
    ].to_numpy()
    tag = _THERAPY_MODIFIER.get(session.plan_of_care or "", "")
    rows, omitted = [], []
    for code, mod, u in zip(alternative.codes, alternative.modifiers, units, strict=True):
        if u == 0:
            omitted.append(code)
            continue
        mods = [mod]
        therapy = catalog[code][1]
        if payer is not None and payer.require_gp and therapy and tag:
            mods.append(tag)
        if payer is not None and payer.kx_threshold and therapy and session.kx_documented:
            mods.append("KX")
        mods = _modifier_order(mods)
        if len(mods) > _MAX_MODIFIERS:
            raise InputError(
                f"{code} would carry {len(mods)} modifiers; item 24D holds at most {_MAX_MODIFIERS}."
            )
        mods += [""] * (_MAX_MODIFIERS - len(mods))
        dx = svc[code].dx or session.dx_codes[:_MAX_POINTERS]
        pointer = "".join(_DX_LETTERS[session.dx_codes.index(d)] for d in dx)
        fee = session.charges.get(code)
        rows.append(
            [code, *mods, pointer, np.nan if fee is None else float(to_cents(fee * int(u))), int(u)]
        )
    date = session.service_date.strftime("%m%d%y")
    body = pd.DataFrame(
        rows,
        columns=[
            "24D_code",
            "24D_modifier_1",
            "24D_modifier_2",
            "24D_modifier_3",
            "24D_modifier_4",
            "24E_pointer",
            "24F_charges",
            "24G_units",
        ],
    )
    i = np.arange(len(body))
    body = body.assign(
        page=i // _MAX_LINES_PER_FORM + 1,
        line=i % _MAX_LINES_PER_FORM + 1,
        **{
            "24A_from": date,
            "24A_to": date,
            "24B_place_of_service": session.place_of_service,
            "24C_emg": "",
            "24J_rendering_npi": session.rendering_npi,
        },
    )
    body["24G_units"] = body["24G_units"].astype(np.int64)
    body["24F_charges"] = body["24F_charges"].astype(float)
    return ClaimForm(
        lines=body[_LINE_COLUMNS],
        diagnoses=_diagnosis_frame(session.dx_codes),
        referring=session.referring,
        omitted=tuple(omitted),
    )


# ---------------------------------------------------------------------------------------
# Explorer (ipywidgets)
# ---------------------------------------------------------------------------------------


def explorer(
    session: Session,
    payers: Mapping[str, PayerPolicy],
    *,
    reference: Reference | None = None,
    denial_model: Any | None = None,
    max_minutes: int = 60,
):
    """Sliders for minutes per code, a payer picker, the modifier toggle and the hot pack.

    Returns an ``ipywidgets.VBox``; each change re-runs :func:`compare` and redraws the
    totals table and the chart. Without a live front end the widgets simply show their
    initial state.
    """
    import ipywidgets as widgets
    from IPython.display import display

    ref = reference or load_reference()
    catalog = _catalog(ref, session.codes)
    timed = [s for s in session.services if catalog[s.code][0]]
    sliders = {
        s.code: widgets.IntSlider(
            value=int(s.minutes or 0),
            min=0,
            max=max(max_minutes, int(s.minutes or 0)),
            step=1,
            description=f"{s.code} min",
            continuous_update=False,
        )
        for s in timed
    }
    pairs = _pairs_present(session, ref, payers)
    column2 = sorted({c2 for _, c2 in pairs})
    label = column2[0] if column2 else "column-2 code"
    modifier = widgets.ToggleButtons(
        options=[("all", "all"), ("none", ""), ("59", "59"), ("XS", "XS"), ("XU", "XU")],
        value="all",
        description=f"on {label}",
        disabled=not column2,
        tooltips=[
            "every alternative",
            "no modifier",
            "distinct service",
            "separate structure",
            "non-overlapping service",
        ],
    )
    picker = widgets.SelectMultiple(
        options=list(payers), value=tuple(payers), description="payers", rows=min(len(payers), 6)
    )
    pack = widgets.Checkbox(value="97010" in session.codes, description="hot/cold pack (97010)")
    regions = widgets.Checkbox(
        value=session.distinct_regions, description="separate body regions documented"
    )
    blocks = widgets.Checkbox(
        value=session.separate_time_blocks, description="separate time blocks documented"
    )
    controls = {f"m_{c}": w for c, w in sliders.items()}
    controls.update(
        payer_ids=picker, modifier=modifier, hot_pack=pack, distinct=regions, separate=blocks
    )

    def redraw(payer_ids, modifier, hot_pack, distinct, separate, **minutes):
        mins = {k[2:]: v for k, v in minutes.items()}
        untimed = [s for s in session.services if s.code not in mins and s.code != "97010"]
        services = [
            Service(
                c,
                m,
                regions=(f"region {i}",) if distinct else (),
                time_block=i if separate else None,
            )
            for i, (c, m) in enumerate(((c, m) for c, m in mins.items() if m > 0), start=1)
        ]
        services += untimed + ([Service("97010")] if hot_pack else [])
        if not services or not payer_ids:
            print("Choose at least one service (minutes above 0) and one payer.")
            return
        try:
            s = dataclasses.replace(session, services=tuple(services))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UnpricedCodeWarning)
                result = compare(
                    s, payers, payer_ids=list(payer_ids), reference=ref, denial_model=denial_model
                )
        except InputError as exc:
            print(exc)
            return
        totals = result.totals
        if modifier != "all" and column2:
            keep = [
                a.name for a in result.alternatives if _shows_modifier(a, label, modifier, pairs)
            ]
            totals = totals[totals["alternative"].isin(keep)]
            totals = totals.assign(alternative=totals["alternative"].cat.remove_unused_categories())
        display(
            totals[
                [
                    "alternative",
                    "payer_id",
                    "supported",
                    "expected_total",
                    "expected_payer",
                    "expected_patient",
                    "denied_lines",
                    "missing",
                ]
            ].reset_index(drop=True)
        )
        display(_png(_plot(totals, list(payer_ids), title=None, show_values=None)))

    out = widgets.interactive_output(redraw, controls)
    return widgets.VBox(
        [
            widgets.HBox(list(sliders.values())),
            widgets.HBox([picker, widgets.VBox([modifier, pack, regions, blocks])]),
            out,
        ]
    )


def _png(fig):
    """The figure as a PNG image, whatever matplotlib backend the kernel runs."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return Image(data=buf.getvalue(), format="png")


def _shows_modifier(
    alt: Alternative, code: str, modifier: str, pairs: Mapping[tuple[str, str], int]
) -> bool:
    """True when ``alt`` bills ``code`` with ``modifier`` as a column-2 code, or does not pair it."""
    if code not in alt.codes:
        return True
    paired = any(c2 == code and c1 in alt.codes for c1, c2 in pairs)
    return not paired or alt.modifiers[alt.codes.index(code)] == modifier


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------

_SERVICE_ARG = re.compile(r"^(?P<code>[0-9A-Z]{5,7})(?:=(?P<minutes>[^=]*))?$")
_DEFAULT_PAYERS = Path("data/sample/payers.yaml")


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``compare`` to ``python -m analytics``."""
    p = sub.add_parser(
        "compare",
        help="every documented way to code one session, priced for each payer",
        description="Compare the ways to report one session. Each argument is CODE=MINUTES, or a bare "
        "CODE for an untimed code (97010). Alternatives needing documentation the session "
        "lacks are marked not supported.",
    )
    p.add_argument("services", nargs="+", metavar="CODE=MINUTES")
    p.add_argument(
        "--payer",
        action="append",
        dest="payer_ids",
        metavar="ID",
        help="payer id from the policies (repeat; default: all)",
    )
    p.add_argument("--payers", type=Path, help=f"payer policy YAML (default {_DEFAULT_PAYERS})")
    p.add_argument(
        "--distinct-regions",
        action="store_true",
        help="the notes place each service on its own body region (59, XS, XU)",
    )
    p.add_argument(
        "--separate-time-blocks",
        action="store_true",
        help="the notes show each service in its own time block (59, XU)",
    )
    p.add_argument("--date", help="date of service (default: 1 June of --year, else today)")
    p.add_argument("--year", type=int, help="year of service when --date is not given")
    p.add_argument("--provider-type", default="pt", help="rendering provider type (default pt)")
    p.add_argument("--prescription", action="store_true", help="a prescription/referral is on file")
    p.add_argument(
        "--deductible-remaining",
        type=float,
        help="deductible left this year, for every payer (default: each plan's full deductible)",
    )
    p.add_argument(
        "--visits-used", type=int, default=0, help="visits already used this year (default 0)"
    )
    p.add_argument(
        "--plan-of-care",
        choices=("pt", "ot", "slp", "none"),
        default="pt",
        help="therapy plan of care; payers that require it get GP/GO/GN (default pt)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    minutes: dict[str, int | None] = {}
    for a in args.services:
        m = _SERVICE_ARG.match(a.strip().upper())
        if not m:
            raise InputError(
                f"Cannot read {a!r}: write CODE=MINUTES (e.g. 97124=30) or a bare untimed CODE (97010)."
            )
        value = m["minutes"]
        if value is not None:
            try:
                number = float(value)
            except ValueError:
                raise InputError(
                    f"Minutes in {a!r} are not a number; write e.g. 97124=30."
                ) from None
            value = int(number) if number == int(number) else number
        minutes[m["code"]] = value
    if args.date:
        date = pd.Timestamp(args.date)
    elif args.year:
        date = pd.Timestamp(f"{args.year}-06-01")
    else:
        date = pd.Timestamp.today().normalize()
    path = args.payers or _DEFAULT_PAYERS
    payers = (
        load_payers(path)
        if Path(path).exists() or args.payers
        else load_payers({"payers": {"medicare": {"kind": "medicare"}}})
    )
    hot_pack = "97010" in minutes
    minutes.pop("97010", None)
    session = Session.from_minutes(
        minutes,
        service_date=date,
        distinct_regions=args.distinct_regions,
        separate_time_blocks=args.separate_time_blocks,
        hot_pack=hot_pack,
        provider_type=args.provider_type,
        prescription_on_file=args.prescription,
        deductible_remaining=args.deductible_remaining,
        visits_used=args.visits_used,
        plan_of_care=None if args.plan_of_care == "none" else args.plan_of_care,
    )
    result = compare(session, payers, payer_ids=args.payer_ids)
    if args.json:
        print(json.dumps(result.to_json_dict(), indent=2))
        return 0
    t = result.totals
    show = t.assign(
        supported=np.where(t["supported"], "yes", "NO"),
        best=np.where(t["best"], "*", ""),
        **{
            c: t[c].map("${:,.2f}".format)
            for c in ("expected_total", "expected_payer", "expected_patient")
        },
    )
    print(
        f"Session of {date.date()}: "
        + ", ".join(
            f"{s.code}" + (f" {s.minutes} min" if s.minutes is not None else "")
            for s in session.services
        )
    )
    for pid, part in show.groupby("payer_id", sort=False):
        print(f"\n{part['payer_name'].iloc[0]} ({pid})")
        print(
            part[
                [
                    "best",
                    "alternative",
                    "supported",
                    "expected_total",
                    "expected_payer",
                    "expected_patient",
                    "denied_lines",
                ]
            ]
            .rename(
                columns={
                    "expected_total": "expected",
                    "expected_payer": "payer",
                    "expected_patient": "patient",
                    "denied_lines": "denied",
                }
            )
            .to_string(index=False)
        )
    denied = result.denied()
    if len(denied):
        print("\nDenied or not billed:")
        for r in denied.drop_duplicates(["payer_id", "cpt", "modifiers", "edit_reason"]).itertuples(
            index=False
        ):
            code = f"{r.group_code}-{r.carc}" if r.carc else r.disposition
            billed = "-".join([r.cpt, *filter(None, str(r.modifiers).split(","))])
            print(f"  {r.payer_id}: {billed} ({code}): {r.edit_reason}")
    unsupported = t.loc[~t["supported"]].drop_duplicates("alternative")
    if len(unsupported):
        print("\nNot supported by the documentation (do not bill unless the record shows it):")
        for r in unsupported.itertuples(index=False):
            print(f"  {r.alternative}: {r.missing}")
    print("\n* = the supported alternative with the highest expected collections for that payer")
    return 0
