"""Which lines each rule sees together: the grouping of every rule, set per payer.

A rule that counts, ranks or caps looks at a group of lines, and the group is a billing fact,
not a detail of the code. Each payer policy may set the grouping of each rule under
``grouping:`` in ``payers.yaml`` (see ``docs/rules.md`` for the sources)::

    grouping:
      units: discipline     # 8-minute total: the patient's timed minutes that day, per discipline
      mppr: patient_day     # therapy MPPR: all of the patient's therapy that day, every discipline
      ncci: visit           # NCCI pairs: same patient, date and rendering provider
      mue: visit            # medically unlikely edits: same patient, date and provider
      visit_cap: visit      # fee.per_visit_cap
      copay: visit          # cost_share.copay, once per visit

The groupings:

``visit``
    one patient, one date of service, one rendering provider (the visit keys);
``patient_day``
    one patient, one date of service, every provider of the practice;
``discipline``
    one patient, one date of service, one therapy discipline: PT (GP, or a PT/PTA without a
    therapy modifier), OT (GO, or OT/OTA), SLP (GN); a line with neither a therapy modifier
    nor a therapist's provider type is its own provider's (as ``visit``).

Every group also belongs to one payer: a rule of one payer never counts another payer's lines.
Rules whose grouping is fixed by their nature are not settings: the KX threshold runs over
the patient's calendar year per discipline (PT/SLP together, OT apart), the deductible over the
patient's year with the payer, the visit limit over the patient's visits with the payer in the
year.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

from analytics._frame import (
    LineKeys,
    coded_modifier_flags,
    distinct_rows,
    factorize,
    factorize_ints,
    ordered_column,
)
from analytics.exceptions import PayerPolicyError

__all__ = ["GROUPINGS", "RULE_GROUPINGS", "DEFAULT_GROUPING", "rule_groupings", "group_ids", "disciplines",
           "grouping_per_line", "GROUPING_WORDS"]

#: The groupings a rule may use.
GROUPINGS = ("visit", "patient_day", "discipline")

#: The rules whose grouping a payer policy sets, with the groupings each accepts.
RULE_GROUPINGS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "units": GROUPINGS,
    "mppr": ("patient_day", "discipline", "visit"),
    "ncci": ("visit", "patient_day"),
    "mue": ("visit", "patient_day"),
    "visit_cap": ("visit", "patient_day"),
    "copay": ("visit", "patient_day"),
})

#: The grouping of each rule when the policy does not set it.
#:
#: * units: the CMS 8-minute rule totals "all timed modalities and procedures provided to the
#:   patient on a single date of service for a single discipline" (Pub. 100-04 ch. 5 sec. 20.2,
#:   as restated by physicaltherapy.com, "Billing CPT codes with the 8 minute rule", 2018 [S]).
#: * mppr: the therapy MPPR reduces "the second and subsequent units and procedures for the
#:   same patient on the same day", across all therapy disciplines in group practices (CMS MPPR
#:   page; NGS and Novitas, FACTS sec. 2 [C]).
#: * ncci, mue: "services ... by the same provider for the same beneficiary on the same date of
#:   service" (NCCI policy manual, FACTS sec. 4 [C]).
DEFAULT_GROUPING: Mapping[str, str] = MappingProxyType({
    "units": "discipline", "mppr": "patient_day", "ncci": "visit", "mue": "visit", "visit_cap": "visit",
    "copay": "visit",
})

#: Words for each grouping, as reasons say it.
GROUPING_WORDS: Mapping[str, str] = MappingProxyType({
    "visit": "the visit (patient, date and provider)",
    "patient_day": "the patient's day (every provider of the practice)",
    "discipline": "the patient's day in this discipline",
})

_DISCIPLINE_TYPES = {"pt": "PT", "pta": "PT", "ot": "OT", "ota": "OT", "slp": "SLP"}


def rule_groupings(spec: Any, here: str = "payer policy") -> Mapping[str, str]:
    """The grouping of every rule: ``spec`` (the policy's ``grouping:`` mapping) over the defaults.

    Raises :class:`~analytics.exceptions.PayerPolicyError` naming the payer, the rule and the
    groupings it accepts.

    Examples
    --------
    >>> rule_groupings({"mppr": "visit"})["mppr"], rule_groupings(None)["mppr"]
    ('visit', 'patient_day')
    """
    if spec is None:
        return DEFAULT_GROUPING
    if not isinstance(spec, Mapping):
        raise PayerPolicyError(f"{here}: grouping maps a rule to how its lines are grouped, e.g. "
                               "grouping: {mppr: patient_day}; see docs/rules.md.")
    out = dict(DEFAULT_GROUPING)
    for rule, value in spec.items():
        if rule not in RULE_GROUPINGS:
            raise PayerPolicyError(f"{here}: grouping.{rule} is not a rule with a grouping; the rules are "
                                   f"{', '.join(RULE_GROUPINGS)} (see docs/rules.md).")
        if value not in RULE_GROUPINGS[rule]:
            raise PayerPolicyError(f"{here}: grouping.{rule} must be one of {', '.join(RULE_GROUPINGS[rule])}, "
                                   f"got {value!r}.")
        out[rule] = value
    return MappingProxyType(out)


def grouping_per_line(rule: str, payer_codes: np.ndarray, payer_ids: Sequence[str],
                      payers: Mapping[str, Any] | None) -> np.ndarray | str:
    """The grouping of ``rule`` for each line, from its payer's policy (the default without one):
    one name when every payer of the lines uses the same, else an array aligned to the lines."""
    default = DEFAULT_GROUPING[rule]
    per_payer = [(getattr(payers.get(p), "grouping", None) or DEFAULT_GROUPING).get(rule, default)
                 if payers is not None and p in payers else default for p in payer_ids]
    if len(set(per_payer)) <= 1:
        return per_payer[0] if per_payer else default
    return np.array(per_payer, dtype=object)[payer_codes]


def disciplines(keys: LineKeys) -> tuple[np.ndarray, np.ndarray]:
    """Therapy discipline of each line: codes and values (``PT``, ``OT``, ``SLP`` or ``""``).

    GP, GO or GN on the line names it; without one, a PT/PTA provider type is PT, OT/OTA is OT,
    SLP is SLP; anything else is ``""`` (no therapy discipline).
    """
    values = np.array(["", "PT", "OT", "SLP"], dtype=object)
    number = {v: i for i, v in enumerate(values)}
    mod_c, mod_v = keys.modifiers
    lines = keys.lines
    codes = np.zeros(keys.n, dtype=np.int64)
    if "provider_type" in lines.columns:
        t_c, t_v = factorize(lines["provider_type"])
        mapped = np.array([number[_DISCIPLINE_TYPES.get(str(v).strip().lower(), "")] for v in t_v], dtype=np.int64)
        codes = mapped[t_c] if len(t_v) else codes
    # per distinct modifier list: GP wins over GO over GN; none keeps the provider type's
    by_mod = np.zeros(len(mod_v), dtype=np.int64)
    for mod, name in (("GN", "SLP"), ("GO", "OT"), ("GP", "PT")):
        hit = coded_modifier_flags(np.arange(len(mod_v)), mod_v, [mod])
        by_mod[hit] = number[name]
    from_mod = by_mod[mod_c]
    return np.where(from_mod > 0, from_mod, codes), values


def group_ids(keys: LineKeys, grouping: np.ndarray | str, *, payer: bool = True) -> np.ndarray:
    """Group id of each line under its grouping (one of :data:`GROUPINGS` per line).

    Lines share an id when they share the payer (unless ``payer=False``), the patient, the
    service date and: the provider (``visit``), nothing more (``patient_day``), or the
    discipline (``discipline``; lines without one also share the provider). Ids are dense,
    numbered in order of first appearance.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"patient_id": "p", "service_date": pd.Timestamp("2025-05-01"),
    ...     "provider_id": ["pt", "ot"], "payer_id": "mc", "modifiers": ["GP", "GO"]})
    >>> keys = LineKeys(df)
    >>> group_ids(keys, "visit").tolist(), group_ids(keys, "patient_day").tolist()
    ([0, 1], [0, 0])
    """
    if keys.n == 0:
        return np.zeros(0, dtype=np.int64)
    if isinstance(grouping, str):  # one grouping for every line: computed once per LineKeys
        if grouping not in GROUPINGS:
            raise ValueError(f"unknown grouping {grouping!r}; use one of {GROUPINGS}")
        key = (grouping, payer)
        if key not in keys.groups:
            keys.groups[key] = _group_ids(keys, np.full(1, GROUPINGS.index(grouping)), payer)
        return keys.groups[key]
    choice = np.asarray(grouping, dtype=object)
    unknown = ~np.isin(choice, GROUPINGS)
    if unknown.any():
        raise ValueError(f"unknown grouping {sorted(set(choice[unknown]))}; use one of {GROUPINGS}")
    kind = np.select([choice == g for g in GROUPINGS], range(len(GROUPINGS))).astype(np.int64)
    return _group_ids(keys, kind, payer)


def _group_ids(keys: LineKeys, kind: np.ndarray, payer: bool) -> np.ndarray:
    """Group ids for ``kind`` (index into :data:`GROUPINGS`, one per line or one for all)."""
    visit, patient_day, discipline = (GROUPINGS.index(g) for g in ("visit", "patient_day", "discipline"))
    if len(kind) == 1 and kind[0] == visit:
        if not payer or keys.one_payer_per_visit:  # one payer per visit, as usual
            return keys.visit
    if len(kind) == 1 and (not payer or keys.one_payer_per_visit):
        if kind[0] == patient_day:
            return _patient_days(keys, payer)
        if kind[0] == discipline:
            return _discipline_days(keys, payer)
    has_discipline = (kind == discipline).any()
    disc = disciplines(keys)[0] if has_discipline else None
    # the provider counts for a visit, and for a line with no discipline under "discipline"
    if len(kind) == 1:
        by_provider = (disc == 0) if kind[0] == discipline else (kind[0] == visit)
    else:
        by_provider = (kind == visit) | ((kind == discipline) & (disc == 0))
    columns = [keys.patient, keys.date_rank]
    if np.any(by_provider):
        columns.append(np.where(by_provider, keys.visit, -1) if np.ndim(by_provider) else keys.visit)
    if has_discipline:
        columns.append(np.where(kind == discipline, disc, 0) if len(kind) > 1 else disc)
    if len(kind) > 1:
        columns.append(kind)
    if payer:
        columns.append(keys.payer[0])
    return distinct_rows(columns)[0]


def _patient_days(keys: LineKeys, payer: bool) -> np.ndarray:
    """Ids of the ``patient_day`` grouping (with the payer unless ``payer=False``), found on the
    first line of each visit: a visit is of one patient, date and (checked by the caller)
    payer, so its lines share a group. Visits are numbered in order of first appearance, so
    the ids are those of grouping every line."""
    key = ("patient_day", payer)
    if key not in keys.groups:
        first = keys.visit_first
        columns = [keys.patient[first], keys.date_rank[first]] + ([keys.payer[0][first]] if payer else [])
        keys.groups[key] = distinct_rows(columns)[0][keys.visit]
    return keys.groups[key]


def _discipline_days(keys: LineKeys, payer: bool) -> np.ndarray:
    """Ids of the ``discipline`` grouping: the line's patient-day (:func:`_patient_days`) and
    discipline, or its visit when it has no discipline; numbered in order of first appearance,
    as grouping by every column would."""
    disc = disciplines(keys)[0]
    day = _patient_days(keys, payer)
    # within a day: the discipline (1-3), or 4 + the visit for a line without one
    within = np.where(disc == 0, keys.visit + 4, disc)
    return factorize_ints(day * (keys.n_visits + 4) + within, ordered_column([keys.date_rank]))
