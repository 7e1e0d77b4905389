"""The session as documented: the services performed, the diagnoses and the plan state.

:class:`Session` holds one treatment session as the notes record it (:class:`Service` per
code, with minutes, body regions and time blocks; item 17's :class:`Referring` provider)
and checks it on creation, raising one error that names every problem found.

Sources: FACTS sec. 3 (units), sec. 8 (CMS-1500 items, code sets), sec. 9 (ICD-10-CM).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError, MinutesError, UnknownCodeError
from analytics.refdata import load_reference
from analytics.scenarios.catalog import code_catalog_table

__all__ = [
    "Service",
    "Referring",
    "Session",
    "SAMPLE_CHARGES",
    "THERAPY_MODIFIER",
    "MAX_POINTERS",
]

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

#: Therapy modifier per plan of care (GP physical, GO occupational, GN speech-language
#: therapy), added on therapy lines for payers that require one.
THERAPY_MODIFIER = {"pt": "GP", "ot": "GO", "slp": "GN"}
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
_MAX_DIAGNOSES = 12  # item 21, A-L
MAX_POINTERS = 4  # item 24E


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

    def plan_value(self, name: str, payer_id: str, default: Any = None) -> Any:
        """The plan-state field ``name`` (``copay``, ``coinsurance`` ...) for one payer.

        A mapping gives it per payer id; a single value applies to every payer; ``None``, or
        a payer the mapping does not name, gives ``default``.
        """
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
    problems += _service_problems(session)
    problems += _diagnosis_problems(session)
    problems += _claim_field_problems(session)
    problems += _plan_state_problems(session)
    if not problems:
        return
    _raise_problems(problems)


def _service_problems(session: Session) -> list[tuple[str, str, str]]:
    """Problems of the services: code sets, the catalog, minutes and diagnosis pointers."""
    problems: list[tuple[str, str, str]] = []
    catalog = code_catalog_table(load_reference())
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
        problems += _minutes_problems(s, where, timed)
        if len(s.dx) > MAX_POINTERS:
            problems.append(
                (
                    "input",
                    where,
                    (
                        f"points to {len(s.dx)} diagnoses; a claim line carries at most {MAX_POINTERS} (item 24E)"
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
    return problems


def _minutes_problems(s: Service, where: str, timed: bool) -> list[tuple[str, str, str]]:
    """Problems of one service's minutes: not a number, negative, fractional or missing."""
    problems: list[tuple[str, str, str]] = []
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
                (f"{s.code} is a timed (15-minute) code and needs its direct one-on-one minutes"),
            )
        )
    return problems


def _diagnosis_problems(session: Session) -> list[tuple[str, str, str]]:
    """Problems of the diagnoses (item 21): code checks, duplicates and how many."""
    problems: list[tuple[str, str, str]] = []
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
    return problems


def _claim_field_problems(session: Session) -> list[tuple[str, str, str]]:
    """Problems of the claim fields: plan of care, provider type, place of service, NPIs."""
    problems: list[tuple[str, str, str]] = []
    if session.plan_of_care is not None and session.plan_of_care not in THERAPY_MODIFIER:
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
    return problems


def _plan_state_problems(session: Session) -> list[tuple[str, str, str]]:
    """Problems of the plan state and the fee sheet: negative or out-of-range numbers."""
    problems: list[tuple[str, str, str]] = []
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
    return problems


def _raise_problems(problems: list[tuple[str, str, str]]) -> None:
    """Raise one error listing every problem; its class names the kind when all share one."""
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
