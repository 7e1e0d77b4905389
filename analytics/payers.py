"""Payer policies: how each payer counts units, applies edits, prices and shares cost.

Policies are data. A YAML file holds a ``payers:`` mapping of payer id to policy; every key is
optional except ``kind`` and ``fee.basis``. The full schema, with defaults::

    payers:
      ppo_gold:
        name: Gold PPO                 # shown in reports (default: the id)
        aliases: [Blue Shield Gold PPO, "BSC Gold"]   # other names of the payer (see below)
        kind: commercial               # medicare | commercial | medicaid | auto | workers_comp | cash
        unit_method: ama               # cms (8-minute rule) | ama (CPT midpoint per code)
        fee:
          basis: percent_of_medicare   # medicare | percent_of_medicare | flat | charges
          percent: 110                 # percent_of_medicare only
          year: null                   # fee-schedule year; null = the year of service
          locality: 00000-00           # Medicare locality (MAC-locality); 00000-00 = national
          apm_status: non_qp           # non_qp | qp (2026 onward)
          participating: true          # false = non-par (95%) with the limiting charge shown
          rates: {"97139": 40.0}       # flat $ per unit; also the rate of contractor-priced codes
          per_visit_cap: null          # most the payer allows for one visit, in $
        mppr: false                    # 50% PE reduction on every unit but the first (Medicare)
        medicare_status: false         # status B/N/I codes unpaid (97010 bundled)
        require_gp: false              # therapy lines need GP/GO (CARC 4 otherwise)
        kx_threshold: false            # lines without KX denied past the annual threshold
                                       # (PT/SLP and OT counted apart; see below)
        mue: false                     # medically unlikely edits per code per day
        ncci:
          follow: true                 # apply NCCI procedure-to-procedure pairs
          modifiers: [59, XE, XS, XP, XU]   # modifiers honoured on an indicator-1 pair
          pairs:                       # payer-specific pair rules (override the modifiers)
            - {column1: "97140", column2: "97124", modifiers: [XS]}
        not_covered: ["97010"]         # codes the plan never pays (CARC 96)
        noncovered_liability: provider # who owes a not_covered line: provider | patient
        noncovered_carc: "96"          # CARC of a not_covered line: "96" | "204"
        provider_types: {"97124": [pt, dc, md]}   # rendering provider types allowed per code
        prescription_required: false   # a prescription/referral must be on file (CARC 174)
        visit_limit: null              # visits per calendar year (CARC 119 past it)
        visit_limit_liability: patient # who owes a visit past visit_limit: patient | provider
        prior_auth_after_visits: null  # visits allowed before an authorisation is needed (CARC 197)
        cost_share:
          deductible: 0                # $ per year ("part_b" = Medicare Part B deductible of the year)
          copay: 0                     # $ per visit
          coinsurance: 0               # fraction (0.2 for 20%)
          copay_waives_deductible: false   # true: a visit with a copay skips the deductible
        sequestration: 0.0             # Medicare 2% payment reduction (CARC 253); set 0.02 to apply
        timely_filing_days: 365
        denial_prior: 0.05             # denial probability used before any history is learned
        grouping: {mppr: patient_day}  # which lines each rule sees together (docs/rules.md)

Sequestration is off by default because its 2% figure is unconfirmed in the reference pack.

Payer names and aliases (``aliases``)
    An export's payer column and an 835's payer (``N1*PR`` name, payer id) rarely use the
    ids of this file: "Medicare Part B", "Blue Shield Gold PPO", "BSC01". A payer is found by
    its id, its ``name`` or any of its ``aliases``, compared without regard to case, spaces
    and punctuation (``"Blue-Shield  gold ppo"`` finds ``Blue Shield Gold PPO``), so
    ``--payer Medicare`` works wherever a payer is named (:func:`resolve_payer`,
    :func:`resolve_payers`). An id or alias claimed by two payers is an error; a name shared
    by two payers is not used to find either.

Plan exclusions (``not_covered``, ``noncovered_liability``, ``noncovered_carc``)
    A line whose code the plan excludes is denied and the payer allows nothing. Who owes it
    is the plan's rule:

    * ``provider`` (the default): group code CO, the practice writes the line off and the
      patient owes nothing (CO-96 with RARC N130).
    * ``patient``: group code PR, the patient owes the line (PR-96, or PR-204 with
      ``noncovered_carc: "204"``, "not covered under the patient's current benefit plan").
      The amount, in ``noncovered_applied`` and ``patient_part``, is the contract rate
      times the units when ``fee.rates`` names a rate for the code, otherwise the line's
      ``charge`` (the practice's charge; 0 when the line carries no charge). A
      percent-of-Medicare contract sets no price for a service the plan does not cover, so
      no Medicare-based amount is used; when the contract fixes the member's price for the
      excluded code, put that price under ``fee.rates``. The amount counts toward neither
      the deductible nor the copay, and draws no coinsurance; ``allowed`` stays 0.

    ``noncovered_carc`` takes ``"96"`` (the default, "non-covered charge") or ``"204"``; the
    group code follows ``noncovered_liability`` whichever CARC is used.

Visits past the benefit maximum (``visit_limit``, ``visit_limit_liability``)
    Every line of a visit past the plan's yearly ``visit_limit`` (visits with the payer in the
    calendar year, counting ``visits_before`` on the lines) is denied with CARC 119 and the
    payer allows nothing. Who owes it is the plan's rule:

    * ``patient`` (the default): group code PR, the patient owes the line, as a plan exclusion
      with ``noncovered_liability: patient`` (same amount, same column): the ``fee.rates``
      rate times the units, else the line's ``charge``, in ``noncovered_applied`` and
      ``patient_part``, outside the deductible, copay and coinsurance. Most plans let the
      practice bill the patient for visits past the benefit maximum, and PR is the group
      CARC 119 usually comes with, so the default keeps the group code and the money in
      agreement.
    * ``provider``: group code CO (CO-119), for contracts that bar billing the member once
      the benefit is used up; the practice writes the line off and the patient owes nothing.

    Only the visit limit follows this setting. A line past the visits allowed without prior
    authorisation (CO-197), a claim past the timely-filing limit (CO-29) and a Medicare line
    over the KX threshold without KX (CO-119) are always the practice's write-off.

Copay and deductible (``cost_share.copay_waives_deductible``)
    By default (``false``) the deductible comes first, then the copay once per visit, then
    coinsurance on the rest. With ``true`` (PPOs whose copay visits are "deductible waived")
    a visit of a plan with a copay owes the copay and coinsurance on the rest, and the
    deductible is neither applied nor drawn down by that visit. A plan with no copay
    (``copay: 0``) keeps its deductible whatever this setting says.

KX threshold (``kx_threshold``)
    Medicare's therapy threshold is one amount for physical therapy and speech-language
    pathology combined and a separate amount, of the same size, for occupational therapy.
    The running total of allowed dollars is kept per patient, calendar year and discipline:
    a line is occupational therapy when it carries GO, or when it carries none of GP/GO/GN
    and its rendering ``provider_type`` is ``ot`` or ``ota``; every other therapy line counts
    toward PT/SLP. ``therapy_allowed_before`` on a line (dollars already used this year) is
    read as the dollars of that line's own discipline. Thresholds are in
    ``analytics/reference/thresholds.csv`` (2025 $2,410, 2026 $2,480 per discipline group).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analytics._frame import LineKeys, factorize
from analytics.exceptions import PayerPolicyError, UnknownPayerError
from analytics.grouping import DEFAULT_GROUPING, rule_groupings
from analytics.refdata import NCCI_MODIFIERS

__all__ = ["PayerPolicy", "FeeSchedule", "NcciPolicy", "load_payers", "payer_table", "get_policy",
           "PAYER_KINDS", "check_payers_known", "PayerColumns", "payer_columns", "payer_key", "resolve_payer",
           "resolve_payers"]

PAYER_KINDS = ("medicare", "commercial", "medicaid", "auto", "workers_comp", "cash")
FEE_BASES = ("medicare", "percent_of_medicare", "flat", "charges")
#: Who owes a line the payer denies but the plan may put on the patient
#: (``noncovered_liability``, ``visit_limit_liability``): the practice (``provider``, group
#: CO) or the patient (``patient``, group PR).
LIABILITIES = ("provider", "patient")
#: CARCs a plan may send for an excluded code (``noncovered_carc``): 96 non-covered charge,
#: 204 not covered under the patient's current benefit plan.
NONCOVERED_CARCS = ("96", "204")


@dataclasses.dataclass(frozen=True)
class FeeSchedule:
    basis: str = "medicare"
    percent: float = 100.0
    year: int | None = None
    locality: str = "00000-00"
    apm_status: str = "non_qp"
    participating: bool = True
    rates: Mapping[str, float] = dataclasses.field(default_factory=dict)
    per_visit_cap: float | None = None


@dataclasses.dataclass(frozen=True)
class NcciPolicy:
    follow: bool = True
    modifiers: tuple[str, ...] = NCCI_MODIFIERS
    pairs: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


@dataclasses.dataclass(frozen=True)
class CostShare:
    deductible: float = 0.0
    copay: float = 0.0
    coinsurance: float = 0.0
    copay_waives_deductible: bool = False


@dataclasses.dataclass(frozen=True)
class PayerPolicy:
    """One payer's rules. Build from a mapping with :meth:`from_dict` or a file with :func:`load_payers`."""

    payer_id: str
    kind: str
    name: str = ""
    unit_method: str = "cms"
    fee: FeeSchedule = FeeSchedule()
    mppr: bool = False
    medicare_status: bool = False
    require_gp: bool = False
    kx_threshold: bool = False
    mue: bool = False
    ncci: NcciPolicy = NcciPolicy()
    not_covered: tuple[str, ...] = ()
    noncovered_liability: str = "provider"
    noncovered_carc: str = "96"
    provider_types: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    prescription_required: bool = False
    visit_limit: int | None = None
    visit_limit_liability: str = "patient"
    prior_auth_after_visits: int | None = None
    cost_share: CostShare = CostShare()
    sequestration: float = 0.0
    timely_filing_days: int | None = 365
    denial_prior: float = 0.05
    aliases: tuple[str, ...] = ()
    #: which lines each rule sees together (analytics.grouping, docs/rules.md)
    grouping: Mapping[str, str] = dataclasses.field(default_factory=lambda: DEFAULT_GROUPING)

    @classmethod
    def from_dict(cls, payer_id: str, spec: Mapping[str, Any], *, where: str = "payer policy") -> PayerPolicy:
        """Validate one policy mapping; errors name the payer, the key and the fix."""
        here = f"{where}: payer {payer_id!r}"
        if not isinstance(spec, Mapping):
            raise PayerPolicyError(f"{here} must be a mapping of settings, got {type(spec).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)} - {"payer_id"}
        unknown = set(spec) - known
        if unknown:
            raise PayerPolicyError(
                f"{here} has unknown key(s) {sorted(unknown)}; allowed keys: {sorted(known)} "
                "(see the schema in analytics/payers.py)."
            )
        kind = spec.get("kind")
        if kind not in PAYER_KINDS:
            raise PayerPolicyError(f"{here}: kind must be one of {PAYER_KINDS}, got {kind!r}.")
        medicare = kind == "medicare"
        unit_method = spec.get("unit_method", "cms" if medicare else "ama")
        if unit_method not in ("cms", "ama"):
            raise PayerPolicyError(f"{here}: unit_method must be 'cms' or 'ama', got {unit_method!r}.")
        fee = _fee(spec.get("fee", {"basis": "medicare" if medicare else "charges"}), here)
        ncci = _ncci(spec.get("ncci", {}), here)
        cs = spec.get("cost_share") or {}
        if not isinstance(cs, Mapping) or set(cs) - {"deductible", "copay", "coinsurance", "copay_waives_deductible"}:
            raise PayerPolicyError(
                f"{here}: cost_share takes deductible, copay, coinsurance and copay_waives_deductible, "
                f"got {sorted(cs) if isinstance(cs, Mapping) else cs!r}.")
        cost = CostShare(**{
            k: float("nan") if (k == "deductible" and v == "part_b") else _number(v, f"{here}: cost_share.{k}", lo=0)
            for k, v in cs.items() if k != "copay_waives_deductible"
        }, copay_waives_deductible=_flag(cs, "copay_waives_deductible", False, f"{here}: cost_share"))
        if cost.coinsurance > 1:
            raise PayerPolicyError(f"{here}: cost_share.coinsurance is a fraction (0.2 for 20%), got {cost.coinsurance}.")
        pt = spec.get("provider_types") or {}
        if not isinstance(pt, Mapping):
            raise PayerPolicyError(f"{here}: provider_types maps a code to a list of provider types.")
        return cls(
            payer_id=str(payer_id),
            kind=kind,
            name=str(spec.get("name", payer_id)),
            unit_method=unit_method,
            fee=fee,
            mppr=_flag(spec, "mppr", medicare, here),
            medicare_status=_flag(spec, "medicare_status", medicare, here),
            require_gp=_flag(spec, "require_gp", medicare, here),
            kx_threshold=_flag(spec, "kx_threshold", medicare, here),
            mue=_flag(spec, "mue", medicare, here),
            ncci=ncci,
            not_covered=tuple(_code(c) for c in spec.get("not_covered") or ()),
            noncovered_liability=_choice(spec, "noncovered_liability", "provider", LIABILITIES, here),
            noncovered_carc=_choice(spec, "noncovered_carc", "96", NONCOVERED_CARCS, here),
            provider_types={_code(k): tuple(str(x).lower() for x in v) for k, v in pt.items()},
            prescription_required=_flag(spec, "prescription_required", False, here),
            visit_limit=_int_or_none(spec.get("visit_limit"), f"{here}: visit_limit"),
            visit_limit_liability=_choice(spec, "visit_limit_liability", "patient", LIABILITIES,
                                          here),
            prior_auth_after_visits=_int_or_none(spec.get("prior_auth_after_visits"),
                                                 f"{here}: prior_auth_after_visits"),
            cost_share=cost,
            sequestration=_number(spec.get("sequestration", 0.0), f"{here}: sequestration", lo=0, hi=1),
            timely_filing_days=_int_or_none(spec.get("timely_filing_days", 365), f"{here}: timely_filing_days"),
            denial_prior=_number(spec.get("denial_prior", 0.05), f"{here}: denial_prior", lo=0, hi=1),
            aliases=_aliases(spec.get("aliases"), here),
            grouping=rule_groupings(spec.get("grouping"), here),
        )


def _aliases(value: Any, here: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) and not isinstance(v, bool)
                                                       for v in value):
        raise PayerPolicyError(f"{here}: aliases is a list of the payer's other names, e.g. "
                               f"aliases: [Medicare Part B, \"Noridian JF\"]; got {value!r}.")
    out = tuple(str(v).strip() for v in value if str(v).strip())
    blank = [v for v in out if not payer_key(v)]
    if blank:
        raise PayerPolicyError(f"{here}: alias {blank[0]!r} has no letters or digits; give the payer's name.")
    return out


def _code(value: Any) -> str:
    return str(value).strip()


def _flag(spec: Mapping, key: str, default: bool, here: str) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise PayerPolicyError(f"{here}: {key} must be true or false, got {value!r}.")
    return value


def _choice(spec: Mapping, key: str, default: str, allowed: tuple[str, ...], here: str) -> str:
    """``spec[key]`` as one of ``allowed`` (numbers such as 96 read as their text)."""
    value = spec.get(key, default)
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text not in allowed:
        raise PayerPolicyError(
            f"{here}: {key} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}.")
    return text


def _number(value: Any, what: str, lo: float | None = None, hi: float | None = None) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise PayerPolicyError(f"{what} must be a number, got {value!r}.") from None
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise PayerPolicyError(f"{what} must be between {lo} and {hi}, got {value!r}.")
    return x


def _int_or_none(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayerPolicyError(f"{what} must be a whole number of 0 or more (or null), got {value!r}.")
    return value


def _fee(spec: Any, here: str) -> FeeSchedule:
    if not isinstance(spec, Mapping):
        raise PayerPolicyError(f"{here}: fee must be a mapping with at least 'basis'.")
    allowed = {f.name for f in dataclasses.fields(FeeSchedule)}
    unknown = set(spec) - allowed
    if unknown:
        raise PayerPolicyError(f"{here}: fee has unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}.")
    basis = spec.get("basis")
    if basis not in FEE_BASES:
        raise PayerPolicyError(f"{here}: fee.basis must be one of {FEE_BASES}, got {basis!r}.")
    rates = spec.get("rates") or {}
    if not isinstance(rates, Mapping):
        raise PayerPolicyError(f"{here}: fee.rates maps a code to dollars per unit.")
    if basis == "flat" and not rates:
        raise PayerPolicyError(f"{here}: a flat fee schedule needs fee.rates, e.g. {{\"97124\": 45.0}}.")
    apm = spec.get("apm_status", "non_qp")
    if apm not in ("non_qp", "qp"):
        raise PayerPolicyError(f"{here}: fee.apm_status must be 'non_qp' or 'qp', got {apm!r}.")
    year = spec.get("year")
    return FeeSchedule(
        basis=basis,
        percent=_number(spec.get("percent", 100), f"{here}: fee.percent", lo=0),
        year=_int_or_none(year, f"{here}: fee.year"),
        locality=str(spec.get("locality", "00000-00")),
        apm_status=apm,
        participating=_flag(spec, "participating", True, here),
        rates={_code(k): _number(v, f"{here}: fee.rates[{k}]", lo=0) for k, v in rates.items()},
        per_visit_cap=None if spec.get("per_visit_cap") is None
        else _number(spec["per_visit_cap"], f"{here}: fee.per_visit_cap", lo=0),
    )


def _ncci(spec: Any, here: str) -> NcciPolicy:
    if not isinstance(spec, Mapping) or set(spec) - {"follow", "modifiers", "pairs"}:
        raise PayerPolicyError(f"{here}: ncci takes follow, modifiers and pairs.")
    mods = tuple(str(m).upper() for m in spec.get("modifiers", NCCI_MODIFIERS))
    pairs = []
    for i, p in enumerate(spec.get("pairs") or ()):
        if not isinstance(p, Mapping) or not {"column1", "column2"} <= set(p):
            raise PayerPolicyError(f"{here}: ncci.pairs[{i}] needs column1 and column2 (and modifiers).")
        pairs.append((_code(p["column1"]), _code(p["column2"]),
                      tuple(str(m).upper() for m in p.get("modifiers") or ())))
    follow = spec.get("follow", True)
    if not isinstance(follow, bool):
        raise PayerPolicyError(f"{here}: ncci.follow must be true or false.")
    return NcciPolicy(follow=follow, modifiers=mods, pairs=tuple(pairs))


def load_payers(source: str | Path | Mapping[str, Any]) -> dict[str, PayerPolicy]:
    """Read payer policies from a YAML file (or an already-parsed mapping).

    Examples
    --------
    >>> pol = load_payers({"payers": {"cash": {"kind": "cash", "fee": {"basis": "charges"}}}})
    >>> pol["cash"].unit_method
    'ama'
    """
    where = "payer policies"
    if isinstance(source, (str, Path)):
        path = Path(source)
        where = str(path)
        if not path.exists():
            raise PayerPolicyError(f"Payer policy file {path} does not exist; pass the path to payers.yaml.")
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise PayerPolicyError(f"{path} is not valid YAML: {exc}. Fix the indentation or quoting there.") from None
    else:
        data = source
    if not isinstance(data, Mapping) or not isinstance(data.get("payers"), Mapping) or not data["payers"]:
        raise PayerPolicyError(f"{where} must hold a non-empty 'payers:' mapping of payer id to policy.")
    policies = {str(pid): PayerPolicy.from_dict(str(pid), spec, where=where) for pid, spec in data["payers"].items()}
    _payer_lookup(policies, where)  # an alias claimed by two payers stops here, naming both
    return policies


def payer_key(name: object) -> str:
    """A payer name as payers are compared: lower case, letters and digits only.

    Examples
    --------
    >>> payer_key("Blue-Shield  Gold P.P.O."), payer_key("MEDICARE PART B")
    ('blueshieldgoldppo', 'medicarepartb')
    """
    return "".join(ch for ch in str(name).casefold() if ch.isalnum())


def _payer_lookup(payers: Mapping[str, PayerPolicy], where: str = "payer policies") -> dict[str, str]:
    """Compared name -> payer id, from every payer's id, aliases and (unless shared) name."""
    claimed: dict[str, str] = {}
    for pid, policy in payers.items():
        for label in (pid, *policy.aliases):
            key = payer_key(label)
            other = claimed.get(key)
            if other is not None and other != pid:
                raise PayerPolicyError(
                    f"{where}: {label!r} names both payer {other!r} and payer {pid!r}; keep the id or alias "
                    "under one payer only (aliases are compared without case, spaces or punctuation).")
            claimed[key] = pid
    names: dict[str, set[str]] = {}
    for pid, policy in payers.items():
        if policy.name:
            names.setdefault(payer_key(policy.name), set()).add(pid)
    for key, ids in names.items():
        if len(ids) == 1 and key and key not in claimed:
            claimed[key] = next(iter(ids))
    claimed.pop("", None)
    return claimed


def resolve_payer(name: object, payers: Mapping[str, PayerPolicy]) -> str | None:
    """The id of the payer ``name`` names (its id, name or an alias), or ``None``.

    Examples
    --------
    >>> pol = load_payers({"payers": {"medicare": {"kind": "medicare", "name": "Medicare Part B",
    ...                                            "aliases": ["Noridian JF"]}}})
    >>> resolve_payer("MEDICARE", pol), resolve_payer("medicare part-b", pol), resolve_payer("noridian jf", pol)
    ('medicare', 'medicare', 'medicare')
    >>> resolve_payer("Aetna", pol) is None
    True
    """
    text = str(name).strip()
    if text in payers:
        return text
    return _payer_lookup(payers).get(payer_key(text))


def resolve_payers(names: pd.Series, payers: Mapping[str, PayerPolicy]) -> pd.Series:
    """The payer id each of ``names`` names, ``""`` where no payer matches (each distinct name
    is looked up once).

    Examples
    --------
    >>> pol = load_payers({"payers": {"ppo_gold": {"kind": "commercial", "aliases": ["Blue Shield Gold PPO"]}}})
    >>> resolve_payers(pd.Series(["Blue Shield Gold PPO", "ppo_gold", "Cash"]), pol).tolist()
    ['ppo_gold', 'ppo_gold', '']
    """
    lookup = _payer_lookup(payers)
    text = names.astype("str").fillna("").str.strip()
    codes, uniques = pd.factorize(text)
    found = np.array([u if u in payers else lookup.get(payer_key(u), "") for u in uniques], dtype=object)
    out = found[codes] if len(uniques) else np.full(len(text), "", dtype=object)
    out = np.where(codes < 0, "", out)
    return pd.Series(out, index=names.index, dtype="str", name=names.name)


def get_policy(payers: Mapping[str, PayerPolicy], payer_id: str) -> PayerPolicy:
    """The policy of ``payer_id``, found by id, name or alias (see :func:`resolve_payer`)."""
    found = resolve_payer(payer_id, payers)
    if found is None:
        names = sorted({p.name for p in payers.values() if p.name} - set(payers))
        raise UnknownPayerError(
            f"Unknown payer {payer_id!r}; the policies define {sorted(payers)}"
            + (f" (named {names})" if names else "")
            + ". Add it to payers.yaml, or add this name to a payer's aliases there."
        )
    return payers[found]


def payer_table(payers: Mapping[str, PayerPolicy]) -> pd.DataFrame:
    """One row per payer with the scalar settings the vectorised stages merge onto lines."""
    rows = []
    for p in payers.values():
        rows.append({
            "payer_id": p.payer_id, "payer_kind": p.kind, "unit_method": p.unit_method,
            "fee_basis": p.fee.basis, "fee_percent": p.fee.percent, "fee_year": p.fee.year,
            "fee_locality": p.fee.locality, "apm_status": p.fee.apm_status,
            "participating": p.fee.participating, "per_visit_cap": p.fee.per_visit_cap,
            "mppr": p.mppr, "medicare_status": p.medicare_status, "require_gp": p.require_gp,
            "kx_threshold": p.kx_threshold, "mue": p.mue, "ncci_follow": p.ncci.follow,
            "prescription_required": p.prescription_required, "visit_limit": p.visit_limit,
            "visit_limit_liability": p.visit_limit_liability,
            "prior_auth_after_visits": p.prior_auth_after_visits,
            "deductible": p.cost_share.deductible, "copay": p.cost_share.copay,
            "coinsurance": p.cost_share.coinsurance,
            "copay_waives_deductible": p.cost_share.copay_waives_deductible,
            "noncovered_liability": p.noncovered_liability, "noncovered_carc": p.noncovered_carc,
            "sequestration": p.sequestration,
            "timely_filing_days": p.timely_filing_days, "denial_prior": p.denial_prior,
        })
    return pd.DataFrame(rows)


#: :func:`payer_table` by payer id of the policy sets evaluated last (the rules of one session
#: or one chunk run several stages on the same policies): built once, not once per stage.
_PAYER_TABLES: dict[tuple, tuple[tuple, pd.DataFrame]] = {}


def _indexed_payer_table(payers: Mapping[str, PayerPolicy]) -> pd.DataFrame:
    """:func:`payer_table` indexed by payer id, reused while the same policy objects are passed.

    Keyed by the identity of each policy; the policies are kept with the table, so an id cannot
    be reused by another object while its entry lives. Policies are frozen, so a table built
    once stays right. Callers must not change the table in place.
    """
    held = tuple(payers.items())
    key = tuple((k, id(p)) for k, p in held)
    hit = _PAYER_TABLES.get(key)
    if hit is not None and all(a is b for (_, a), (_, b) in zip(hit[0], held, strict=True)):
        return hit[1]
    table = payer_table(payers).set_index("payer_id")
    if len(_PAYER_TABLES) >= 16:
        _PAYER_TABLES.pop(next(iter(_PAYER_TABLES)))
    _PAYER_TABLES[key] = (held, table)
    return table


def check_payers_known(payer_ids: pd.Series, payers: Mapping[str, PayerPolicy]) -> None:
    """Raise naming the rows whose payer has no policy."""
    bad = ~payer_ids.isin(list(payers))
    if bad.any():
        rows = payer_ids[bad].to_frame("payer_id")
        raise UnknownPayerError(
            f"{len(rows)} line(s) have a payer with no policy "
            f"({', '.join(sorted(set(rows['payer_id'].astype(str))))}; rows "
            f"{', '.join(map(str, rows.index[:10]))}). Add the payer to payers.yaml or fix the payer id; "
            f"known payers: {sorted(payers)}."
        )


_PAYER_ROWS: dict[tuple, tuple[pd.DataFrame, pd.DataFrame, dict]] = {}


def _payer_rows(table: pd.DataFrame, values: np.ndarray) -> tuple[pd.DataFrame, dict]:
    """The rows of ``table`` for ``values`` and a store of their per-payer settings, both
    shared while the same table and payers are asked for (the table is never changed in place;
    :meth:`PayerColumns.per_payer` arrays are read-only)."""
    key = (id(table), *values) if len(values) <= 64 else None
    hit = _PAYER_ROWS.get(key) if key is not None else None
    if hit is not None and hit[0] is table:
        return hit[1], hit[2]
    rows, store = table.reindex(values), {}
    if key is not None:
        if len(_PAYER_ROWS) >= 64:
            _PAYER_ROWS.pop(next(iter(_PAYER_ROWS)))
        _PAYER_ROWS[key] = (table, rows, store)
    return rows, store


class PayerColumns:
    """Payer policy settings aligned to lines, computed per distinct payer."""

    def __init__(self, lines: pd.DataFrame, payers: Mapping[str, PayerPolicy],
                 codes: tuple[np.ndarray, np.ndarray] | None = None):
        self.codes, self.values = codes if codes is not None else factorize(lines["payer_id"])
        known = np.isin(self.values, list(payers))
        if not known.all():
            check_payers_known(lines["payer_id"], payers)
        self.table, self._per_payer = _payer_rows(_indexed_payer_table(payers), self.values)
        self.index = lines.index

    def __getitem__(self, col: str) -> pd.Series:
        values = self.table[col]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            cat = pd.Categorical(values.to_numpy(dtype=object))
            return pd.Series(cat.take(self.codes), index=self.index, name=col)
        return pd.Series(values.to_numpy()[self.codes], index=self.index, name=col)

    def per_payer(self, col: str, dtype=float) -> np.ndarray:
        """The setting of each distinct payer (index with ``self.codes`` for lines)."""
        key = (col, dtype)
        found = self._per_payer.get(key)
        if found is None:  # each stage asks again: converted once per instance
            values = self.table[col]
            if dtype is float:
                found = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            else:
                found = values.to_numpy(dtype=dtype)
            found.flags.writeable = False
            self._per_payer[key] = found
        return found

    def array(self, col: str, dtype=float) -> np.ndarray:
        return self.per_payer(col, dtype)[self.codes]


def payer_columns(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy],
                  keys: LineKeys | None = None) -> PayerColumns:
    """The payers' settings aligned to ``lines``, reusing the payer codes of ``keys`` when given."""
    return PayerColumns(lines, payers, keys.payer if keys is not None else None)
