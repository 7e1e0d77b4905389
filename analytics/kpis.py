"""Practice KPIs: revenue, collections, A/R, denials, underpayments and rates against Medicare.

:func:`load_history` joins what a practice has on disk (the charge export, the 835
remittances, the payer policies) into one :class:`History`: one row per charge line with
what the payer did with it and what the contract says it should have paid. Every KPI below
is a vectorised function of a history, scoped by :meth:`History.select` to a period of
service dates, an as-of date, payers and providers.

Definitions (the figures a billing office reports each month):

* **Gross charges**: the practice's charges for services in the period (self-pay included;
  the insurance figures below leave self-pay out).
* **Allowed**: what payers allowed on adjudicated lines (835 ``AMT*B6``; else payer paid +
  patient responsibility + sequestration).
* **Payer paid**: ``SVC03``. **Patient responsibility**: group ``PR`` adjustments that are
  cost share (deductible, coinsurance, copay), not denials.
* **Contractual adjustments**: ``CO``/``OA``/``PI`` adjustments whose CARC is not a denial
  (CO-45 write-down to the fee schedule, CO-59 MPPR, CO-253 sequestration).
* **Denials**: adjustments whose CARC the catalog marks as a denial, in any group (PR-119
  benefit maximum too). A line is *denied* when the payer paid nothing on it and a denial
  CARC is present, *partially denied* when it paid something. Denial rate = denied lines /
  adjudicated lines.
* **Net collection rate** (MGMA): (payer paid + patient responsibility) / (charges -
  contractual adjustments), over adjudicated insurance lines. Patient responsibility is
  counted as collected: the export carries no patient payments.
* **Insurance A/R**: charges of submitted insurance lines with no remittance as of the
  date. **Days in A/R** = A/R / average daily insurance charges of the 90 days up to the
  as-of date. **Aging** buckets the A/R by days from the date of service: 0-30, 31-60,
  61-90, 91-120, over 120.
* **First-pass resolution rate**: adjudicated claims paid on their first remittance with no
  line denied, over adjudicated claims.
* **Underpayments**: paid lines where payer paid + patient responsibility is below what the
  contract says (the rules engine, :func:`analytics.pipeline.evaluate`, with the payer's
  policy: allowed less sequestration), by payer, code and month of service, with the
  recoverable dollars and the claims to appeal.
* **Percent of Medicare**: for each payer and code, payer paid + patient responsibility over
  what Medicare would allow for the same lines and units (MPPR included) at the practice's
  locality.

Money is summed unrounded and rounded to cents once, at the end (:func:`analytics.pricing.to_cents`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import pickle
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analytics.exceptions import InputError, ParameterError
from analytics.payers import PayerPolicy, load_payers
from analytics.pricing import to_cents
from analytics.refdata import Reference, load_reference
from analytics.units import VISIT_KEYS, visit_codes

__all__ = [
    "AGING_BUCKETS",
    "practice_name",
    "History",
    "Underpayments",
    "load_history",
    "build_history",
    "summary",
    "headline",
    "by_payer",
    "monthly",
    "net_collection_rate",
    "ar_aging",
    "days_in_ar",
    "first_pass_resolution_rate",
    "denials_by_payer",
    "denials_by_code",
    "denial_reasons",
    "paid_per_visit",
    "paid_per_unit",
    "underpayments",
    "percent_of_medicare",
    "heading",
    "revenue_narrative",
    "denials_narrative",
    "contracts_narrative",
    "data_notes",
    "fmt_money",
    "fmt_pct",
    "fmt_days",
    "CACHE_ENV",
]

#: A/R aging buckets, in days from the date of service.
AGING_BUCKETS = ("0-30", "31-60", "61-90", "91-120", "over 120")
_AGING_EDGES = np.array([30, 60, 90, 120])

#: Environment variable naming a folder where :func:`load_history` keeps parsed histories.
CACHE_ENV = "ANALYTICS_CACHE_DIR"

_SERVICE_FILES = ("service_lines.csv", "service_lines.parquet", "service_lines.xlsx", "service_lines.tsv")
_REMIT_SUFFIXES = {".835", ".edi", ".era", ".x12", ".txt"}
_AR_WINDOW_DAYS = 90
_CENT = 0.005
# Money columns that describe the payer's answer: zero until the line is adjudicated.
_REMIT_MONEY = ("paid", "patient_responsibility", "contractual", "sequestration", "denied_amount", "allowed")
_CACHE_VERSION = 1


# ---------------------------------------------------------------------------------------
# Formatting: one place, so narrative, tables and tests agree to the character.
# ---------------------------------------------------------------------------------------


def fmt_money(x: float, *, cents: bool = False) -> str:
    """Dollars as a page shows them: ``$1,240`` (``$1,240.50`` with ``cents``).

    Examples
    --------
    >>> fmt_money(1240.499), fmt_money(-3.5, cents=True), fmt_money(float("nan"))
    ('$1,240', '-$3.50', '-')
    """
    if x is None or not np.isfinite(x):
        return "-"
    value = float(to_cents(x))
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}" if cents else f"{sign}${abs(value):,.0f}"


def fmt_pct(x: float, digits: int = 1) -> str:
    """A fraction as a percent: ``0.8234 -> '82.3%'``; NaN as ``'-'``.

    Examples
    --------
    >>> fmt_pct(0.8234), fmt_pct(1.0, 0)
    ('82.3%', '100%')
    """
    if x is None or not np.isfinite(x):
        return "-"
    return f"{100 * float(x):.{digits}f}%"


def fmt_days(x: float) -> str:
    """Days with one decimal: ``23.44 -> '23.4 days'``."""
    if x is None or not np.isfinite(x):
        return "-"
    return f"{float(x):.1f} days"


def _money(x: Any) -> Any:
    return to_cents(x) if np.ndim(x) else float(to_cents(x))


# ---------------------------------------------------------------------------------------
# The history
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class History:
    """A practice's service lines joined to its remittances and contracts, within a scope.

    Build it with :func:`load_history` (files) or :func:`build_history` (tables); narrow it
    with :meth:`select`. Patient ids are pseudonymised on the way in.

    Attributes
    ----------
    lines
        The lines in scope (service date on or before ``as_of``, payers and providers
        selected), one row per charge line. Charge columns (``line_id, claim_id, patient_id,
        service_date, provider_id, payer_id, payer, cpt, modifiers, charge, submission_date``),
        ``self_pay``, ``visit``; the payer's answer as of ``as_of`` (``submitted``,
        ``adjudicated``, ``payment_date``, ``paid``, ``allowed``, ``patient_responsibility``,
        ``contractual``, ``sequestration``, ``denied_amount``, ``denied``,
        ``partially_denied``, ``denial_carc``, ``denial_category``, ``paid_units``,
        ``payer_claim_id``); the contract's (``units``, ``contract_allowed``,
        ``contract_expected``, ``engine_disposition``); and ``in_period``. The other
        columns of the export (diagnoses, minutes ...) stay in ``base``.
    base
        Every line, unscoped and before the as-of masking (what :meth:`select` starts from).
    unmatched_remittance
        835 service lines that match no charge line (or were superseded by a later 835).
    payers
        Payer policies by id.
    practice
        ``practice.yaml`` settings when present (name, locality ...).
    start, end, as_of
        The period of service dates and the date the A/R is taken at.
    payer_ids, provider_ids
        The payers and providers selected (empty: all).
    files
        Input files read.
    notes
        Data notes in words (quarantined rows, unreadable 835s, unpriced codes ...).
    """

    lines: pd.DataFrame
    base: pd.DataFrame
    unmatched_remittance: pd.DataFrame
    payers: Mapping[str, PayerPolicy]
    practice: Mapping[str, Any]
    start: pd.Timestamp
    end: pd.Timestamp
    as_of: pd.Timestamp
    payer_ids: tuple[str, ...] = ()
    provider_ids: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def practice_name(self) -> str:
        return _practice_name(self.practice)

    @property
    def locality(self) -> str:
        return str(self.practice.get("locality") or "00000-00")

    @functools.cached_property
    def period(self) -> pd.DataFrame:
        """The lines with a service date in ``start`` .. ``end`` (computed once per scope)."""
        return self.lines[self.lines["in_period"].to_numpy()]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("period", None)  # derived: not worth its memory in a cached copy
        return state

    def select(
        self,
        *,
        start: Any = None,
        end: Any = None,
        as_of: Any = None,
        payers: Iterable[str] | None = None,
        providers: Iterable[str] | None = None,
    ) -> History:
        """The same history with another period, as-of date, payers or providers.

        ``None`` (or ``""``, or an empty list) keeps the current setting; dates are
        ``YYYY-MM-DD`` text or timestamps. Lines after ``as_of`` are out of scope, and a
        remittance paid after ``as_of`` is treated as not yet received. A payer id must be
        in the data or in the payer policies (a payer without claims gives empty figures
        whose narratives say so); a provider id must be in the data.

        Examples
        --------
        >>> q3 = history.select(start="2025-07-01", end="2025-09-30")  # doctest: +SKIP
        """
        as_of = _date_or(as_of, self.as_of, "as_of")
        start = _date_or(start, self.start, "period_start")
        # nothing after the as-of date is known, so an unset period end stops there
        end = _date_or(end, min(self.end, as_of), "period_end")
        if start > end:
            raise ParameterError(
                f"The period starts {start.date()} after it ends {end.date()}; give period_start on or "
                "before period_end."
            )
        # a payer of payers.yaml is a valid choice before its first claim: its pages say it has none
        payer_ids = (self.payer_ids if not payers
                     else _checked_ids(payers, self.base["payer_id"], "payer", also=self.payers))
        provider_ids = (self.provider_ids if not providers
                        else _checked_ids(providers, self.base["provider_id"], "provider"))
        lines = _scope(self.base, start, end, as_of, payer_ids, provider_ids)
        return dataclasses.replace(self, lines=lines, start=start, end=end, as_of=as_of,
                                   payer_ids=payer_ids, provider_ids=provider_ids)


def _date_or(value: Any, default: pd.Timestamp, name: str) -> pd.Timestamp:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        out = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ParameterError(f"{name} {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31.") from None
    if pd.isna(out):
        raise ParameterError(f"{name} {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-31.")
    return out.normalize()


def _checked_ids(wanted: Iterable[str], present: pd.Series, what: str,
                 also: Iterable[str] = ()) -> tuple[str, ...]:
    """``wanted`` as a tuple of ids, each one found in ``present`` (the data) or ``also``.

    ``also`` names ids that are valid without a line in the data (for payers: the policies
    of payers.yaml, so a new contract can be reported on before its first claim).
    """
    wanted = tuple(dict.fromkeys(str(w).strip() for w in ([wanted] if isinstance(wanted, str) else wanted)))
    in_data = set(pd.unique(present.astype(str)))
    declared = {str(a) for a in also}
    unknown = [w for w in wanted if w not in in_data | declared]
    if unknown:
        where = f"the data has {sorted(in_data)}"
        extra = sorted(declared - in_data)
        if extra:
            where += f" and payers.yaml also defines {extra}"
        raise ParameterError(
            f"Unknown {what} id(s) {unknown}: {where}. Pick from those (an empty list means every {what})."
        )
    return wanted


# The columns the KPIs read; the scoped lines carry only these (masks over a narrower frame
# are much cheaper at a million lines).
_LINE_COLUMNS = (
    "line_id", "claim_id", "patient_id", "service_date", "provider_id", "payer_id", "payer", "self_pay", "visit",
    "cpt", "modifiers", "charge", "submission_date", "remitted", "payment_date", "payer_claim_id", "paid_units",
    "remits_on_claim", "denial_carc", "denial_category", *_REMIT_MONEY, "units", "engine_disposition",
    "contract_allowed", "contract_expected",
)


def _scope(base: pd.DataFrame, start, end, as_of, payer_ids, provider_ids) -> pd.DataFrame:
    """The base lines in scope, with the payer's answer as known on ``as_of``."""
    keep = base["service_date"].to_numpy() <= np.datetime64(as_of)
    if payer_ids:
        keep &= base["payer_id"].isin(payer_ids).to_numpy()
    if provider_ids:
        keep &= base["provider_id"].isin(provider_ids).to_numpy()
    lines = base.loc[keep, [c for c in _LINE_COLUMNS if c in base.columns]]
    sub = lines["submission_date"].to_numpy()
    submitted = ~pd.isna(sub) & (sub <= np.datetime64(as_of)) & ~lines["self_pay"].to_numpy()
    pay = lines["payment_date"].to_numpy()
    adjudicated = lines["remitted"].to_numpy() & (pd.isna(pay) | (pay <= np.datetime64(as_of)))
    svc = lines["service_date"].to_numpy()
    out = {
        "submitted": submitted | adjudicated,
        "adjudicated": adjudicated,
        "in_period": (svc >= np.datetime64(start)) & (svc <= np.datetime64(end)),
    }
    for col in _REMIT_MONEY:
        out[col] = np.where(adjudicated, lines[col].to_numpy(dtype=float), 0.0)
    paid = out["paid"]
    has_denial = adjudicated & (out["denied_amount"] > _CENT)
    out["denied"] = has_denial & (paid < _CENT)
    out["partially_denied"] = has_denial & (paid >= _CENT)
    return lines.assign(**out)


# ---------------------------------------------------------------------------------------
# Building a history from tables
# ---------------------------------------------------------------------------------------


def build_history(
    lines: pd.DataFrame,
    remittance: Any = None,
    *,
    payers: Mapping[str, PayerPolicy] | str | Path,
    practice: Mapping[str, Any] | None = None,
    as_of: Any = None,
    reference: Reference | None = None,
    salt: str | None = None,
    files: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> History:
    """Join canonical service lines, an 835 :class:`~analytics.remittance.Remittance` and
    payer policies into a :class:`History`.

    Parameters
    ----------
    lines
        Service lines with the canonical columns (:func:`analytics.intake.read_service_lines`
        ``.lines``): at least ``claim_id, patient_id, service_date, provider_id, payer_id,
        cpt, charge``; ``line_id`` (the 837 line control number), ``minutes``,
        ``modifiers`` and ``submission_date`` when known.
    remittance
        The 835 tables (:func:`analytics.remittance.read_835_many`), or ``None``.
    payers
        Payer policies (``load_payers`` output or a payers.yaml path).
    practice
        Practice settings: ``practice`` (name), ``locality``, ``as_of``.
    as_of
        The date the A/R is taken at; default ``practice["as_of"]``, else today.
    salt
        Salt for pseudonymising ``patient_id`` (default: ``ANALYTICS_ID_SALT``, else the
        public default).

    Examples
    --------
    >>> from analytics.remittance import read_835
    >>> charges = pd.DataFrame({"claim_id": ["C1"], "line_id": ["C1-1"], "patient_id": ["P1"],
    ...     "service_date": pd.to_datetime(["2026-03-02"]), "provider_id": ["LMT1"],
    ...     "provider_type": ["lmt"], "payer_id": ["cash"], "cpt": ["97124"], "minutes": [60.0],
    ...     "modifiers": [""], "charge": [288.0]})
    >>> h = build_history(charges, None, payers={"payers": {"cash": {"kind": "cash"}}}, as_of="2026-03-31")
    >>> summary(h)["gross_charges"]
    288.0
    """
    from analytics.intake import pseudonymise

    pol = load_payers(payers) if not _is_policies(payers) else dict(payers)
    ref = reference or load_reference()
    practice = dict(practice or {})
    notes = list(notes)
    charges = _charge_frame(lines)
    charges = pseudonymise(charges, salt=salt, columns=("patient_id",))
    kinds = {pid: p.kind for pid, p in pol.items()}
    names = {pid: (p.name or pid) for pid, p in pol.items()}
    charges["self_pay"] = charges["payer_id"].map(kinds).eq("cash").to_numpy()
    charges["payer"] = pd.Categorical(charges["payer_id"].map(names).fillna(charges["payer_id"]))
    charges["visit"] = visit_codes(charges, VISIT_KEYS)

    contract, engine_notes = _contract(charges, pol, ref)
    notes += engine_notes
    remit_cols, unmatched = _remittance_columns(charges, remittance, ref)
    notes += remit_cols.pop("_notes", [])
    base = charges.assign(**remit_cols, **contract)

    svc = base["service_date"]
    first = svc.min() if len(base) else pd.Timestamp.today().normalize()
    last = svc.max() if len(base) else first
    as_of_ts = _date_or(as_of, _date_or(practice.get("as_of"), pd.Timestamp.today().normalize(), "as_of"),
                        "as_of")
    end = min(last, as_of_ts) if len(base) else as_of_ts
    start = min(first, end)
    scoped = _scope(base, start, end, as_of_ts, (), ())
    return History(lines=scoped, base=base, unmatched_remittance=unmatched, payers=pol, practice=practice,
                   start=start, end=end, as_of=as_of_ts, files=tuple(files), notes=tuple(notes))


def _is_policies(payers: Any) -> bool:
    return isinstance(payers, Mapping) and bool(payers) and all(isinstance(v, PayerPolicy) for v in payers.values())


def _charge_frame(lines: pd.DataFrame) -> pd.DataFrame:
    need = ("claim_id", "patient_id", "service_date", "provider_id", "payer_id", "cpt", "charge")
    missing = [c for c in need if c not in lines.columns]
    if missing:
        raise InputError(
            f"The service lines lack column(s) {missing}. Read the export with "
            "analytics.intake.read_service_lines, which maps common export headers to these names."
        )
    n = len(lines)
    out = pd.DataFrame(index=pd.RangeIndex(n))

    def text(col: str) -> np.ndarray:
        if col not in lines.columns:
            return np.full(n, "", dtype=object)
        return lines[col].astype("str").fillna("").to_numpy(dtype=object)

    def boolean(col: str) -> np.ndarray:
        if col not in lines.columns:
            return np.zeros(n, dtype=bool)
        s = lines[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            return s.astype("str").str.strip().str.lower().isin(["true", "yes", "y", "1", "t"]).to_numpy()
        return s.fillna(False).astype(bool).to_numpy()

    for col in ("line_id", "claim_id", "patient_id", "provider_id", "provider_type", "payer_id", "cpt",
                "modifiers", "dx_codes"):
        out[col] = text(col)
    out["service_date"] = pd.to_datetime(lines["service_date"]).dt.normalize().to_numpy()
    out["submission_date"] = (pd.to_datetime(lines["submission_date"], errors="coerce").dt.normalize().to_numpy()
                              if "submission_date" in lines.columns else np.datetime64("NaT"))
    out["charge"] = pd.to_numeric(lines["charge"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    out["minutes"] = (pd.to_numeric(lines["minutes"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                      if "minutes" in lines.columns else np.nan)
    if "units_billed" in lines.columns:
        out["units_billed"] = pd.to_numeric(lines["units_billed"], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan)
    out["prescription_on_file"] = boolean("prescription_on_file")
    out["prior_auth"] = boolean("prior_auth")
    if "visits_before" in lines.columns:
        out["visits_before"] = pd.to_numeric(lines["visits_before"], errors="coerce").fillna(0).to_numpy()
    if out["charge"].isna().any():
        bad = out[out["charge"].isna()]
        raise InputError.for_rows(bad, "have no charge", "Give every line its charge in dollars.")
    return out


def _remittance_columns(charges: pd.DataFrame, remittance: Any, ref: Reference) -> tuple[dict, pd.DataFrame]:
    """Per charge line: the payer's answer from the 835s, and the 835 lines that match none."""
    n = len(charges)
    cols: dict[str, Any] = {
        "remitted": np.zeros(n, dtype=bool),
        "payment_date": np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
        "received_date": np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"),
        "payer_claim_id": np.full(n, "", dtype=object),
        "paid_units": np.full(n, np.nan),
        "remits_on_claim": np.zeros(n, dtype=np.int64),
        "denial_carc": np.full(n, "", dtype=object),
        "denial_category": np.full(n, "", dtype=object),
    }
    for c in _REMIT_MONEY:
        cols[c] = np.zeros(n)
    if remittance is None or len(remittance.service_lines) == 0:
        empty = remittance.service_lines.iloc[0:0] if remittance is not None else pd.DataFrame()
        return cols, empty
    from analytics.remittance import link_remittance

    sl = remittance.service_lines.reset_index(drop=True)
    claims = remittance.claims
    pay = remittance.payments
    # Claim and payment facts per remittance line.
    ckey = ["file", "st_index", "claim_index"]
    claim_facts = claims[ckey + ["received_date", "payer_claim_id", "is_reversal"]]
    pay_date = pay["payment_date"].fillna(pay["production_date"]) if "production_date" in pay else pay["payment_date"]
    pay_facts = pay[["file", "st_index"]].assign(payment_date=pay_date.to_numpy())
    facts = (sl[ckey + ["line_index"]].merge(claim_facts, on=ckey, how="left", sort=False)
             .merge(pay_facts, on=["file", "st_index"], how="left", sort=False))
    reversal = facts["is_reversal"].fillna(False).to_numpy(dtype=bool)
    # The latest adjudication of a line is its current state: link newest first, reversals never.
    order = np.lexsort((np.arange(len(sl)), -_days(facts["payment_date"])))
    order = order[~reversal[order]]
    linked = link_remittance(charges, sl.iloc[order])
    c_row = linked.matched["charge_row"].to_numpy(dtype=np.int64)
    r_row = linked.matched["remit_row"].to_numpy(dtype=np.int64)

    amounts = _line_adjustments(remittance, sl, ref)
    unknown = sorted(set(remittance.adjustments["carc"].astype("str").str.strip().str.upper()) - set(ref.carc["carc"]))
    if unknown:
        cols["_notes"] = [f"CARC(s) {', '.join(unknown)} are not in the reference catalog; they count as denials in "
                          "category 'other'. Add them to analytics/reference/carc.csv with their category."]
    paid = sl["paid"].to_numpy(dtype=float)
    reported = sl["allowed"].to_numpy(dtype=float) if "allowed" in sl else np.full(len(sl), np.nan)
    allowed = np.where(np.isfinite(reported), reported,
                       paid + amounts["patient_responsibility"] + amounts["sequestration"])
    cols["remitted"][c_row] = True
    cols["payment_date"][c_row] = pd.to_datetime(facts["payment_date"]).to_numpy(dtype="datetime64[ns]")[r_row]
    cols["received_date"][c_row] = pd.to_datetime(facts["received_date"]).to_numpy(dtype="datetime64[ns]")[r_row]
    cols["payer_claim_id"][c_row] = facts["payer_claim_id"].astype("str").fillna("").to_numpy(dtype=object)[r_row]
    cols["paid_units"][c_row] = sl["paid_units"].to_numpy(dtype=float)[r_row]
    cols["paid"][c_row] = paid[r_row]
    cols["allowed"][c_row] = allowed[r_row]
    for c in ("patient_responsibility", "contractual", "sequestration", "denied_amount"):
        cols[c][c_row] = amounts[c][r_row]
    cols["denial_carc"][c_row] = amounts["denial_carc"][r_row]
    cols["denial_category"][c_row] = amounts["denial_category"][r_row]
    # Remittances per claim (reversals aside): more than one means the claim was reworked.
    live_claims = claims.loc[~claims["is_reversal"].fillna(False).to_numpy(dtype=bool), "claim_id"].astype("str")
    per_claim = live_claims.value_counts()
    cols["remits_on_claim"] = charges["claim_id"].map(per_claim).fillna(0).to_numpy(dtype=np.int64)
    return cols, linked.unmatched_remittance


def _days(dates: pd.Series) -> np.ndarray:
    d = pd.to_datetime(dates).to_numpy(dtype="datetime64[D]").astype("int64").astype(float)
    return np.where(pd.isna(dates).to_numpy(), -np.inf, d)


def _line_adjustments(remittance: Any, sl: pd.DataFrame, ref: Reference) -> dict[str, np.ndarray]:
    """Each 835 line's adjustments split into cost share, contractual, sequestration and denial.

    Claim-level adjustments are spread over the claim's lines in proportion to their charges.
    """
    n = len(sl)
    adj = remittance.adjustments
    catalog = ref.carc.set_index("carc")
    carc = adj["carc"].astype("str").str.strip().str.upper().to_numpy(dtype=object)
    # A CARC outside the catalog counts as a denial (category "other"), as in
    # analytics.denials.line_outcomes: an unexplained take-back deserves a look.
    denial = pd.Series(carc).map(catalog["denial"]).fillna(True).to_numpy(dtype=bool)
    group = adj["group_code"].astype("str").str.upper().to_numpy(dtype=object)
    amount = adj["amount"].to_numpy(dtype=float)
    # Position of each adjustment's line; claim-level rows get a weight per line of the claim.
    line_key = ["file", "st_index", "claim_index", "line_index"]
    sl_keys = sl[line_key].assign(_pos=np.arange(n))
    at_line = adj["line_index"].notna().to_numpy()
    rows = adj[at_line][line_key].assign(_i=np.flatnonzero(at_line))
    rows["line_index"] = rows["line_index"].astype("int64")
    hit = rows.merge(sl_keys, on=line_key, how="inner")
    idx, pos, weight = [hit["_i"].to_numpy()], [hit["_pos"].to_numpy()], [np.ones(len(hit))]
    if (~at_line).any():
        claim_rows = adj[~at_line][["file", "st_index", "claim_index"]].assign(_i=np.flatnonzero(~at_line))
        sl_charge = sl_keys.assign(_charge=sl["charge"].to_numpy(dtype=float))
        spread = claim_rows.merge(sl_charge, on=["file", "st_index", "claim_index"], how="inner")
        total = spread.groupby("_i")["_charge"].transform("sum").to_numpy()
        count = spread.groupby("_i")["_charge"].transform("size").to_numpy()
        w = np.where(total > 0, spread["_charge"].to_numpy() / np.where(total > 0, total, 1), 1.0 / count)
        idx.append(spread["_i"].to_numpy())
        pos.append(spread["_pos"].to_numpy())
        weight.append(w)
    idx_a, pos_a, w_a = np.concatenate(idx), np.concatenate(pos), np.concatenate(weight)
    value = amount[idx_a] * w_a
    is_den = denial[idx_a]
    is_pr = group[idx_a] == "PR"
    is_seq = (carc[idx_a] == "253") & ~is_pr
    out = {
        "patient_responsibility": np.bincount(pos_a, weights=np.where(is_pr & ~is_den, value, 0), minlength=n),
        "sequestration": np.bincount(pos_a, weights=np.where(is_seq, value, 0), minlength=n),
        "contractual": np.bincount(pos_a, weights=np.where(~is_pr & ~is_den, value, 0), minlength=n),
        "denied_amount": np.bincount(pos_a, weights=np.where(is_den, value, 0), minlength=n),
    }
    # The denial reason of a line: its largest denial adjustment.
    den = pd.DataFrame({"pos": pos_a[is_den], "carc": carc[idx_a][is_den], "value": value[is_den]})
    reason = np.full(n, "", dtype=object)
    category = np.full(n, "", dtype=object)
    if len(den):
        top = den.sort_values(["pos", "value"], ascending=[True, False], kind="stable").drop_duplicates("pos")
        reason[top["pos"].to_numpy()] = top["carc"].to_numpy(dtype=object)
        category[top["pos"].to_numpy()] = ref.carc_category(top["carc"]).to_numpy(dtype=object)
    out["denial_carc"] = reason
    out["denial_category"] = category
    return out


def _contract(charges: pd.DataFrame, payers: Mapping[str, PayerPolicy], ref: Reference) -> tuple[dict, list[str]]:
    """What the contract says each line is worth: the rules engine with the payer's policy."""
    from analytics.pipeline import evaluate

    wanted = ("patient_id", "service_date", "provider_id", "provider_type", "payer_id", "cpt", "minutes",
              "modifiers", "charge", "prescription_on_file", "prior_auth", "visits_before", "submission_date",
              "units_billed")
    frame = charges[[c for c in wanted if c in charges.columns]]
    if "minutes" in frame and frame["minutes"].isna().all() and "units_billed" in frame:
        # an export with units and no minutes: price the units as billed
        frame = frame.drop(columns="minutes").assign(units=frame["units_billed"].fillna(1))
    notes = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = evaluate(frame, payers, ref)
    notes += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    allowed = out["allowed"].to_numpy(dtype=float, na_value=np.nan)
    seq = out["sequestration"].to_numpy(dtype=float)
    return {
        "units": out["units"].to_numpy(dtype=np.int64),
        "engine_disposition": out["disposition"].astype("str").to_numpy(dtype=object),
        "edit_reason": out["edit_reason"].to_numpy(),
        "contract_allowed": allowed,
        # what payer paid + patient responsibility should add up to
        "contract_expected": allowed - seq,
    }, notes


# ---------------------------------------------------------------------------------------
# Loading a practice folder
# ---------------------------------------------------------------------------------------


def load_history(
    data_dir: str | os.PathLike[str],
    *,
    as_of: Any = None,
    salt: str | None = None,
    payers: Mapping[str, PayerPolicy] | str | Path | None = None,
    mapping: Mapping[str, Any] | str | Path | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> History:
    """Read a practice folder into a :class:`History`.

    The folder holds the charge export ``service_lines.csv`` (or ``.parquet``/``.xlsx``),
    ``payers.yaml``, the 835 files under ``remittances/`` and, optionally, ``practice.yaml``
    (``practice`` name, Medicare ``locality``, ``as_of``). Warnings met on the way (rows
    quarantined, 835 files that do not balance or cannot be read, codes without a rate)
    become :attr:`History.notes`.

    Parameters
    ----------
    data_dir
        The practice folder.
    as_of
        Date the A/R is taken at (default: ``as_of`` in practice.yaml, else today).
    salt
        Salt for pseudonymous patient keys (default ``ANALYTICS_ID_SALT``).
    payers
        Payer policies to use instead of ``payers.yaml``.
    mapping
        Column mapping for the export (see :func:`analytics.intake.read_service_lines`).
    cache_dir
        Folder for a parsed copy keyed by the inputs' names, sizes and times (default: the
        ``ANALYTICS_CACHE_DIR`` environment variable; none when unset). The report runner
        sets it so that the reports of one run read the 835 files once.

    Raises
    ------
    InputError
        The folder or its charge export is missing, or the export has no usable charge
        line (a header only, or every row quarantined by intake).

    Examples
    --------
    >>> h = load_history("data/sample")  # doctest: +SKIP
    >>> fmt_pct(summary(h)["net_collection_rate"])  # doctest: +SKIP
    '96.1%'
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise InputError(
            f"Data folder {folder} does not exist. Pass the practice folder that holds service_lines.csv, "
            "payers.yaml and remittances/ (e.g. --data data/sample)."
        )
    export = next((folder / f for f in _SERVICE_FILES if (folder / f).exists()), None)
    if export is None:
        raise InputError(
            f"Data folder {folder} has no charge export: expected one of {', '.join(_SERVICE_FILES)}."
        )
    payer_file = folder / "payers.yaml"
    if payers is None and not payer_file.exists():
        raise InputError(f"Data folder {folder} has no payers.yaml; add the payer policies there.")
    remit_dir = folder / "remittances"
    remit_files = sorted(p for p in remit_dir.iterdir()
                         if p.is_file() and p.suffix.lower() in _REMIT_SUFFIXES) if remit_dir.is_dir() else []
    practice_file = folder / "practice.yaml"
    inputs = [export, *([payer_file] if payers is None else []), *remit_files,
              *([practice_file] if practice_file.exists() else [])]

    cache = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or None
    key = None
    if cache is not None and not isinstance(payers, Mapping) and not isinstance(mapping, Mapping):
        key = _cache_key(inputs, salt, payers, mapping)
        cached = _cache_read(Path(cache), key)
        if cached is not None:
            return cached.select(as_of=as_of) if as_of else cached

    notes: list[str] = []
    practice = _read_practice(practice_file)
    pol = payers if _is_policies(payers) else load_payers(payers if payers is not None else payer_file)
    from analytics.intake import read_service_lines
    from analytics.remittance import read_835_many

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        intake = read_service_lines(export, mapping=mapping)
        remit, errors = read_835_many(remit_files) if remit_files else (None, None)
    notes += _unique_messages(caught)
    _check_not_empty(intake, export)
    if intake.quarantined:
        notes.append(f"{intake.quarantined} of {intake.rows_in} charge line(s) were quarantined by intake "
                     "and are not in these figures.")
    if errors is not None and len(errors):
        notes.append(f"{len(errors)} 835 file(s) could not be read and are not in these figures: "
                     + ", ".join(errors["file"].astype(str).head(5)) + ("" if len(errors) <= 5 else " ..."))
    if not remit_files:
        notes.append(f"No 835 remittances under {remit_dir}: every submitted line counts as open A/R.")
    history = build_history(intake.lines, remit, payers=pol, practice=practice, salt=salt,
                            files=[str(p) for p in inputs], notes=notes)
    if history.unmatched_remittance is not None and len(history.unmatched_remittance):
        history = dataclasses.replace(history, notes=(*history.notes, (
            f"{len(history.unmatched_remittance)} 835 service line(s) match no charge line (or were superseded "
            "by a later remittance) and are left out.")))
    if key is not None:
        _cache_write(Path(cache), key, history)
    return history.select(as_of=as_of) if as_of else history


def _check_not_empty(intake: Any, export: Path) -> None:
    """Stop on an export without a single usable charge line, naming the file and the fix.

    A header-only export is almost always a failed or mis-filtered export; reports of
    nothing would hide that (and a monthly job would publish empty pages without a word).
    """
    if intake.accepted:
        return
    if intake.rows_in == 0:
        raise InputError(
            f"{export} has a header and no charge lines, so there is nothing to report. Export the service lines "
            "again from the practice-management system (every line of the dates to report, not only the header) "
            f"and save the export as {export}."
        )
    raise InputError(
        f"None of the {intake.rows_in:,} charge line(s) in {export} passed intake, so there is nothing to report. "
        f"Run `python -m analytics intake {export} --out DIR` and read DIR/quarantine.csv for each row's reasons; "
        "fix the export (or map its columns, see analytics/intake.py) and run again."
    )


def practice_name(data_dir: str | os.PathLike[str]) -> str:
    """The practice's name from ``<data_dir>/practice.yaml`` (``""`` without one)."""
    return _practice_name(_read_practice(Path(data_dir) / "practice.yaml"))


def _practice_name(practice: Mapping[str, Any]) -> str:
    return str(practice.get("practice") or practice.get("name") or "")


def _read_practice(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}.") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{path} must be a mapping (practice: ..., locality: ...).")
    keep = ("practice", "name", "practice_name", "locality", "as_of", "start", "months")
    out = {k: data[k] for k in keep if k in data}
    if "practice" not in out and out.get("practice_name"):
        out["practice"] = out["practice_name"]
    return out


def _unique_messages(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    seen: dict[str, None] = {}
    for w in caught:
        if issubclass(w.category, UserWarning):
            seen.setdefault(str(w.message), None)
    msgs = list(seen)
    if len(msgs) > 8:
        msgs = msgs[:8] + [f"... and {len(msgs) - 8} more notes of the same kinds."]
    return msgs


def _cache_key(inputs: Sequence[Path], salt: str | None, payers: Any, mapping: Any) -> str:
    from analytics import __version__

    h = hashlib.sha256()
    h.update(f"v{_CACHE_VERSION}|{__version__}|{salt or os.environ.get('ANALYTICS_ID_SALT', '')}".encode())
    for p in [*inputs, *(Path(x) for x in (payers, mapping) if isinstance(x, (str, Path)))]:
        st = p.stat()
        h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _cache_read(folder: Path, key: str) -> History | None:
    path = folder / f"history-{key}.pickle"
    if not path.exists():
        return None
    try:
        with path.open("rb") as fh:
            value = pickle.load(fh)
    except Exception:  # a torn or stale cache file is rebuilt, never trusted
        return None
    return value if isinstance(value, History) else None


def _cache_write(folder: Path, key: str, history: History) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".history-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(history, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / f"history-{key}.pickle")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------
# KPIs
# ---------------------------------------------------------------------------------------


def _insurance(lines: pd.DataFrame) -> pd.DataFrame:
    return lines[~lines["self_pay"].to_numpy()]


def _sum(lines: pd.DataFrame, col: str) -> float:
    return float(lines[col].to_numpy(dtype=float).sum())


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def _ar_lines(history: History) -> pd.DataFrame:
    """Open insurance A/R as of the date: submitted, not yet adjudicated."""
    lines = history.lines
    return lines[lines["submitted"].to_numpy() & ~lines["adjudicated"].to_numpy() & ~lines["self_pay"].to_numpy()]


def summary(history: History) -> pd.Series:
    """The period's headline figures as numbers (dollars unrounded to cents once).

    Returns
    -------
    Series
        ``visits, lines, gross_charges, self_pay_charges, insurance_charges, unbilled_charges,
        adjudicated_charges, allowed, payer_paid, patient_responsibility,
        contractual_adjustments, denied_amount, denied_lines, adjudicated_lines, denial_rate,
        net_collection_rate, first_pass_resolution_rate, paid_per_visit, ar_balance,
        ar_over_90, days_in_ar``. The A/R figures are as of ``history.as_of`` whatever the
        period.
    """
    p = history.period
    ins = _insurance(p)
    adj = ins[ins["adjudicated"].to_numpy()]
    fpr = first_pass_resolution_rate(history)
    ar = _ar_lines(history)
    age = (history.as_of - ar["service_date"]).dt.days.to_numpy()
    visits_adj = adj["visit"].nunique()
    values = {
        "visits": int(p["visit"].nunique()),
        "lines": int(len(p)),
        "gross_charges": _sum(p, "charge"),
        "self_pay_charges": _sum(p[p["self_pay"].to_numpy()], "charge"),
        "insurance_charges": _sum(ins, "charge"),
        "unbilled_charges": _sum(ins[~ins["submitted"].to_numpy()], "charge"),
        "adjudicated_charges": _sum(adj, "charge"),
        "allowed": _sum(adj, "allowed"),
        "payer_paid": _sum(adj, "paid"),
        "patient_responsibility": _sum(adj, "patient_responsibility"),
        "contractual_adjustments": _sum(adj, "contractual"),
        "denied_amount": _sum(adj, "denied_amount"),
        "denied_lines": int(adj["denied"].sum()),
        "adjudicated_lines": int(len(adj)),
        "denial_rate": _ratio(adj["denied"].sum(), len(adj)),
        "net_collection_rate": _ratio(_sum(adj, "paid") + _sum(adj, "patient_responsibility"),
                                      _sum(adj, "charge") - _sum(adj, "contractual")),
        "first_pass_resolution_rate": float(fpr["rate"].iloc[0]) if len(fpr) else float("nan"),
        "paid_per_visit": _ratio(_sum(adj, "paid") + _sum(adj, "patient_responsibility"), visits_adj),
        "ar_balance": _sum(ar, "charge"),
        "ar_over_90": float(ar["charge"].to_numpy(dtype=float)[age > 90].sum()),
        "days_in_ar": days_in_ar(history),
    }
    money = ("gross_charges", "self_pay_charges", "insurance_charges", "unbilled_charges", "adjudicated_charges",
             "allowed", "payer_paid", "patient_responsibility", "contractual_adjustments", "denied_amount",
             "ar_balance", "ar_over_90")
    for k in money:
        values[k] = _money(values[k])
    return pd.Series(values, dtype=object)


def headline(history: History) -> pd.DataFrame:
    """The headline figures formatted for a page: columns ``figure`` and ``value``.

    The values are :func:`fmt_money` / :func:`fmt_pct` / :func:`fmt_days` of
    :func:`summary`, so a test can recompute them from the API.
    """
    s = summary(history)
    rows = [
        ("Visits", f"{s['visits']:,}"),
        ("Gross charges", fmt_money(s["gross_charges"])),
        ("  of which self-pay", fmt_money(s["self_pay_charges"])),
        ("Allowed by payers", fmt_money(s["allowed"])),
        ("Paid by payers", fmt_money(s["payer_paid"])),
        ("Patient responsibility", fmt_money(s["patient_responsibility"])),
        ("Contractual adjustments", fmt_money(s["contractual_adjustments"])),
        ("Denied", f"{fmt_money(s['denied_amount'])} ({s['denied_lines']:,} lines)"),
        ("Denial rate (lines)", fmt_pct(s["denial_rate"])),
        ("Net collection rate", fmt_pct(s["net_collection_rate"])),
        ("First-pass resolution rate", fmt_pct(s["first_pass_resolution_rate"])),
        ("Paid per visit (payer + patient)", fmt_money(s["paid_per_visit"], cents=True)),
        ("Not yet billed", fmt_money(s["unbilled_charges"])),
        (f"Insurance A/R as of {history.as_of.date()}", fmt_money(s["ar_balance"])),
        ("  of which over 90 days", fmt_money(s["ar_over_90"])),
        ("Days in A/R", fmt_days(s["days_in_ar"])),
    ]
    return pd.DataFrame(rows, columns=["figure", "value"])


def _group_keys(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    keys = [by] if isinstance(by, str) else list(by)
    return [("payer_id" if k == "payer" else "provider_id" if k == "provider" else k) for k in keys]


def _with_payer_name(frame: pd.DataFrame, history: History) -> pd.DataFrame:
    if "payer_id" in frame.columns and "payer" not in frame.columns:
        names = {pid: (p.name or pid) for pid, p in history.payers.items()}
        frame.insert(frame.columns.get_loc("payer_id") + 1, "payer",
                     frame["payer_id"].map(names).fillna(frame["payer_id"]).astype(str))
    return frame


def _agg(lines: pd.DataFrame, keys: list[str], spec: dict[str, tuple[str, str]]) -> pd.DataFrame:
    if keys:
        out = lines.groupby(keys, observed=True, sort=True).agg(**spec).reset_index()
    else:
        out = pd.DataFrame({k: [getattr(lines[c], how)() if how != "nunique" else lines[c].nunique()]
                            for k, (c, how) in spec.items()})
    return out


def by_payer(history: History) -> pd.DataFrame:
    """Charges, payments, adjustments, denials and net collection rate per payer for the period.

    Columns ``payer_id, payer, visits, charges, allowed, payer_paid, patient_responsibility,
    contractual, denied_amount, denial_rate, net_collection_rate, paid_per_visit``; the
    rates are NaN for self-pay.
    """
    p = history.period
    out = p.groupby("payer_id", observed=True, sort=True).agg(
        visits=("visit", "nunique"), charges=("charge", "sum"), allowed=("allowed", "sum"),
        payer_paid=("paid", "sum"), patient_responsibility=("patient_responsibility", "sum"),
        contractual=("contractual", "sum"), denied_amount=("denied_amount", "sum"))
    adj = p[p["adjudicated"].to_numpy()]
    a = adj.groupby("payer_id", observed=True, sort=True).agg(
        adjudicated_charges=("charge", "sum"), adjudicated_lines=("charge", "size"), denied_lines=("denied", "sum"),
        adjudicated_visits=("visit", "nunique"))
    out = out.join(a, how="left").fillna({c: 0 for c in a.columns}).reset_index()
    collected = out["payer_paid"] + out["patient_responsibility"]
    out["denial_rate"] = out["denied_lines"] / out["adjudicated_lines"].where(out["adjudicated_lines"] > 0)
    out["net_collection_rate"] = collected / (out["adjudicated_charges"] - out["contractual"]).where(
        out["adjudicated_charges"] > 0)
    out["paid_per_visit"] = to_cents((collected / out["adjudicated_visits"].where(
        out["adjudicated_visits"] > 0)).to_numpy(dtype=float))
    self_pay = [pid for pid, pol in history.payers.items() if pol.kind == "cash"]
    out.loc[out["payer_id"].isin(self_pay), ["denial_rate", "net_collection_rate", "paid_per_visit"]] = np.nan
    for c in ("charges", "allowed", "payer_paid", "patient_responsibility", "contractual", "denied_amount"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    out = out.drop(columns=["adjudicated_charges", "adjudicated_lines", "denied_lines", "adjudicated_visits"])
    return _with_payer_name(out, history)


def monthly(history: History) -> pd.DataFrame:
    """Charges by month of service and payer payments by month received, over the period.

    Columns ``month`` (first day), ``charges`` (services that month), ``allowed``,
    ``payer_paid`` and ``patient_responsibility`` (for services that month, as paid by the
    as-of date), ``denied_amount``, and ``collections``: payer payments received that month
    for any date of service (cash basis). The months stop at the as-of date: nothing after
    it is known, so a period reaching past it has no rows for those months.
    """
    p = history.period
    first = history.start.to_period("M")
    months = pd.period_range(first, max(first, min(history.end, history.as_of).to_period("M")), freq="M")
    base = p.assign(month=p["service_date"].dt.to_period("M")).groupby("month", sort=True).agg(
        charges=("charge", "sum"), allowed=("allowed", "sum"), payer_paid=("paid", "sum"),
        patient_responsibility=("patient_responsibility", "sum"), denied_amount=("denied_amount", "sum"),
    )
    lines = history.lines
    paid = lines[lines["adjudicated"].to_numpy() & lines["payment_date"].notna().to_numpy()]
    coll = paid.assign(month=paid["payment_date"].dt.to_period("M")).groupby("month")["paid"].sum()
    out = base.reindex(months, fill_value=0.0)
    out["collections"] = coll.reindex(months, fill_value=0.0).to_numpy()
    for c in out.columns:
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    out = out.reset_index(names="month")
    out["month"] = out["month"].dt.to_timestamp()
    return out


def net_collection_rate(history: History, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """(payer paid + patient responsibility) / (charges - contractual) on adjudicated insurance
    lines of the period, overall or ``by`` payer/provider/cpt.

    Columns: the group keys, ``charges``, ``contractual``, ``collected``, ``rate``.
    """
    adj = _insurance(history.period)
    adj = adj[adj["adjudicated"].to_numpy()]
    keys = _group_keys(by)
    out = _agg(adj.assign(collected=adj["paid"] + adj["patient_responsibility"]), keys, {
        "charges": ("charge", "sum"), "contractual": ("contractual", "sum"), "collected": ("collected", "sum")})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = out["collected"] / (out["charges"] - out["contractual"]).where(out["charges"] > 0)
    for c in ("charges", "contractual", "collected"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


def ar_aging(history: History, by: str | Sequence[str] | None = "payer") -> pd.DataFrame:
    """Insurance A/R as of ``history.as_of`` in aging buckets, by payer (or ``by=None``).

    A line is open when it was submitted by the as-of date and no remittance had come back;
    its age is counted in days from the date of service. Like any balance it ignores the
    period: every open line up to the as-of date counts.

    Returns
    -------
    DataFrame
        One row per group (largest balance first): the group keys, one column per bucket of
        :data:`AGING_BUCKETS` (dollars), ``total``, ``lines`` and ``claims``.

    Examples
    --------
    >>> ar_aging(history).columns.tolist()  # doctest: +SKIP
    ['payer_id', 'payer', '0-30', '31-60', '61-90', '91-120', 'over 120', 'total', 'lines', 'claims']
    """
    ar = _ar_lines(history)
    age = (history.as_of - ar["service_date"]).dt.days.to_numpy()
    bucket = np.searchsorted(_AGING_EDGES, age, side="left")
    keys = _group_keys(by)
    if keys:
        grouped = ar.groupby(keys, observed=True, sort=True)
        group = grouped.ngroup().to_numpy()  # numbered in the sorted key order of agg()
        counts = grouped.agg(lines=("charge", "size"), claims=("claim_id", "nunique")).reset_index()
        out = counts[keys].copy()
        lines_n, claims_n = counts["lines"].to_numpy(), counts["claims"].to_numpy()
    else:
        group = np.zeros(len(ar), dtype=np.int64)
        out = pd.DataFrame(index=pd.RangeIndex(1))
        lines_n, claims_n = np.array([len(ar)]), np.array([ar["claim_id"].nunique()])
    dollars = np.zeros((len(out), len(AGING_BUCKETS)))
    np.add.at(dollars, (group, bucket), ar["charge"].to_numpy(dtype=float))
    for j, b in enumerate(AGING_BUCKETS):
        out[b] = to_cents(dollars[:, j])
    out["total"] = to_cents(dollars.sum(axis=1))
    out["lines"] = np.asarray(lines_n, dtype=np.int64)
    out["claims"] = np.asarray(claims_n, dtype=np.int64)
    if keys:
        out = out.sort_values("total", ascending=False, kind="stable").reset_index(drop=True)
    return _with_payer_name(out, history)


def days_in_ar(history: History, *, window_days: int = _AR_WINDOW_DAYS) -> float:
    """Insurance A/R / average daily insurance charges of the ``window_days`` up to ``as_of``.

    The average is the charges for services in (as_of - window_days, as_of] divided by
    ``window_days``. NaN when there were no charges in the window.
    """
    lines = _insurance(history.lines)
    ar = _sum(_ar_lines(history), "charge")
    svc = lines["service_date"].to_numpy()
    lo = np.datetime64(history.as_of - pd.Timedelta(days=window_days))
    window = lines["charge"].to_numpy(dtype=float)[(svc > lo) & (svc <= np.datetime64(history.as_of))].sum()
    return _ratio(ar, window / window_days)


def first_pass_resolution_rate(history: History, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Share of adjudicated claims paid on their first remittance with no line denied.

    Claims are the period's insurance claims with at least one adjudicated line. A claim is
    resolved on the first pass when one remittance answered it and none of its lines was
    denied, fully or in part. Columns: the group keys, ``claims``, ``first_pass``, ``rate``.
    """
    ins = _insurance(history.period)
    adj = ins[ins["adjudicated"].to_numpy()]
    keys = _group_keys(by)
    claim = adj.groupby(["claim_id", *keys], observed=True, sort=False).agg(
        denied=("denied", "any"), partial=("partially_denied", "any"), remits=("remits_on_claim", "max"))
    ok = (~claim["denied"] & ~claim["partial"] & (claim["remits"] <= 1)).astype(np.int64)
    claim = claim.assign(first_pass=ok, n=1).reset_index()
    out = _agg(claim, keys, {"claims": ("n", "sum"), "first_pass": ("first_pass", "sum")})
    out["rate"] = out["first_pass"] / out["claims"].where(out["claims"] > 0)
    return _with_payer_name(out, history)


def _jeffreys(k: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Jeffreys interval of a binomial proportion: Beta(k + 1/2, n - k + 1/2) quantiles."""
    from scipy.stats import beta

    a = (1 - level) / 2
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    lo = np.where(k > 0, beta.ppf(a, k + 0.5, n - k + 0.5), 0.0)
    hi = np.where(k < n, beta.ppf(1 - a, k + 0.5, n - k + 0.5), 1.0)
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


def _denials(history: History, keys: list[str]) -> pd.DataFrame:
    ins = _insurance(history.period)
    adj = ins[ins["adjudicated"].to_numpy()]
    out = _agg(adj.assign(n=1, d=adj["denied"].astype(np.int64), pd_=adj["partially_denied"].astype(np.int64)),
               keys, {"lines": ("n", "sum"), "denied_lines": ("d", "sum"), "partially_denied": ("pd_", "sum"),
                      "denied_amount": ("denied_amount", "sum"), "charges": ("charge", "sum")})
    out["rate"] = out["denied_lines"] / out["lines"].where(out["lines"] > 0)
    out["low"], out["high"] = _jeffreys(out["denied_lines"].to_numpy(), out["lines"].to_numpy())
    for c in ("denied_amount", "charges"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


def denials_by_payer(history: History) -> pd.DataFrame:
    """Denied lines and dollars per payer with the rate's 95% interval.

    Columns ``payer_id, payer, lines`` (adjudicated), ``denied_lines``, ``partially_denied``,
    ``denied_amount``, ``charges``, ``rate``, ``low``, ``high``. The interval is the Jeffreys
    interval (Beta(denied + 1/2, paid + 1/2)), so a payer with three lines gets a wide one.
    """
    return _denials(history, ["payer_id"]).sort_values("rate", ascending=False, kind="stable").reset_index(drop=True)


def denials_by_code(history: History) -> pd.DataFrame:
    """Denial rates per payer and code, shrunk by empirical Bayes, with dollars at risk.

    Many payer x code groups are small, so each rate is the posterior mean of
    :func:`analytics.denials.denial_rates` (a beta prior fitted across the groups): a group
    with a handful of lines sits near the practice's usual rate, a large one at its own.

    Returns
    -------
    DataFrame
        ``payer_id, payer, cpt, lines, denied_lines, raw_rate, rate, low, high`` (95%
        credible interval), ``denied_amount`` and ``dollars_at_risk`` (rate x charges).
    """
    from analytics.denials import denial_rates

    ins = _insurance(history.period)
    adj = ins[ins["adjudicated"].to_numpy()]
    cols = ["payer_id", "cpt", "lines", "denied_lines", "raw_rate", "rate", "low", "high", "denied_amount",
            "dollars_at_risk"]
    if adj.empty:
        return _with_payer_name(pd.DataFrame({c: pd.Series(dtype=float) for c in cols}).astype(
            {"payer_id": object, "cpt": object}), history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # thin groups are the point of shrinking
        rates = denial_rates(adj[["payer_id", "cpt", "denied", "charge", "denied_amount"]], by=("payer_id", "cpt"))
    out = rates.rename(columns={"denied": "denied_lines", "rate_lo_95": "low", "rate_hi_95": "high",
                                "denied_dollars": "denied_amount"})[cols]
    for c in ("denied_amount", "dollars_at_risk"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out.reset_index(drop=True), history)


def denial_reasons(history: History, by: str = "category") -> pd.DataFrame:
    """Denials by reason, largest first, with the cumulative share (a Pareto table).

    Parameters
    ----------
    by
        ``"category"`` (the CARC catalog's category: bundling, medical necessity ...) or
        ``"carc"`` (the code, with its label).

    Returns
    -------
    DataFrame
        ``reason``, ``lines``, ``denied_amount``, ``share`` (of denied dollars) and
        ``cumulative_share``; ``carc`` rows also carry ``category``.
    """
    ins = _insurance(history.period)
    d = ins[(ins["adjudicated"] & (ins["denied_amount"] > _CENT)).to_numpy()]
    ref = load_reference()
    if by == "carc":
        labels = ref.carc.set_index("carc")["label"]
        reason = d["denial_carc"].astype(str)
        text = "CARC " + reason + ": " + reason.map(labels).fillna("code outside the catalog")
        work = d.assign(reason=text.to_numpy(), category=d["denial_category"].map(_category_label).to_numpy())
        keys = ["reason", "category"]
    elif by == "category":
        work = d.assign(reason=d["denial_category"].map(_category_label).to_numpy())
        keys = ["reason"]
    else:
        raise InputError(f"denial_reasons(by=...) takes 'category' or 'carc', not {by!r}.")
    out = work.assign(n=1).groupby(keys, sort=False).agg(lines=("n", "sum"), denied_amount=("denied_amount", "sum"))
    out = out.reset_index().sort_values(["denied_amount", "lines"], ascending=False, kind="stable")
    total = out["denied_amount"].sum()
    out["share"] = out["denied_amount"] / total if total else np.nan
    out["cumulative_share"] = out["share"].cumsum()
    out["denied_amount"] = to_cents(out["denied_amount"].to_numpy(dtype=float))
    return out.reset_index(drop=True)


_CATEGORY_LABELS = {
    "bundling": "bundling (code pairs)", "medical_necessity": "medical necessity",
    "non_covered": "not covered", "authorization": "authorisation", "benefit_max": "benefit maximum reached",
    "frequency": "frequency / MUE", "timely_filing": "timely filing", "provider_eligibility": "provider not eligible",
    "prescription_referral": "prescription or referral", "missing_info": "missing information",
    "duplicate": "duplicate", "cob": "another payer liable", "eligibility": "eligibility",
    "coding_modifier": "coding or modifier", "coverage": "coverage guidelines",
}


def _category_label(category: str) -> str:
    return _CATEGORY_LABELS.get(str(category), str(category).replace("_", " ") or "other")


def paid_per_visit(history: History, by: str | Sequence[str] | None = "payer") -> pd.DataFrame:
    """Average paid per adjudicated visit (payer paid + patient responsibility).

    Columns: the group keys, ``visits``, ``payer_paid``, ``patient_responsibility``,
    ``per_visit`` and ``payer_paid_per_visit``.
    """
    ins = _insurance(history.period)
    adj = ins[ins["adjudicated"].to_numpy()]
    keys = _group_keys(by)
    out = _agg(adj, keys, {"visits": ("visit", "nunique"), "payer_paid": ("paid", "sum"),
                           "patient_responsibility": ("patient_responsibility", "sum")})
    visits = out["visits"].where(out["visits"] > 0)
    out["per_visit"] = to_cents(((out["payer_paid"] + out["patient_responsibility"]) / visits).to_numpy(dtype=float))
    out["payer_paid_per_visit"] = to_cents((out["payer_paid"] / visits).to_numpy(dtype=float))
    for c in ("payer_paid", "patient_responsibility"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


def _paid_lines(history: History) -> pd.DataFrame:
    ins = _insurance(history.period)
    keep = ins["adjudicated"].to_numpy() & ~ins["denied"].to_numpy() & (ins["paid"] + ins["patient_responsibility"]
                                                                           > _CENT).to_numpy()
    return ins[keep]


def paid_per_unit(history: History, by: str | Sequence[str] = ("payer", "cpt")) -> pd.DataFrame:
    """Average paid per unit (payer paid + patient responsibility) on the lines a payer paid.

    Units are the 835's paid units (``SVC05``), else the units the rules engine counts.
    Columns: the group keys, ``lines``, ``units``, ``paid``, ``per_unit``.
    """
    p = _paid_lines(history)
    units = np.where(np.isfinite(p["paid_units"].to_numpy(dtype=float)) & (p["paid_units"].to_numpy(dtype=float) > 0),
                     p["paid_units"].to_numpy(dtype=float), p["units"].to_numpy(dtype=float))
    work = p.assign(n=1, u=units, total=p["paid"] + p["patient_responsibility"])
    out = _agg(work, _group_keys(by), {"lines": ("n", "sum"), "units": ("u", "sum"), "paid": ("total", "sum")})
    out["per_unit"] = to_cents((out["paid"] / out["units"].where(out["units"] > 0)).to_numpy(dtype=float))
    out["paid"] = to_cents(out["paid"].to_numpy(dtype=float))
    out["units"] = out["units"].astype(np.int64)
    return _with_payer_name(out, history)


# ---------------------------------------------------------------------------------------
# Underpayments and rates against Medicare
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Underpayments:
    """Paid lines that came in below the contract.

    Attributes
    ----------
    lines
        One row per underpaid line: ``line_id, claim_id, payer_claim_id, payer_id, payer,
        cpt, month, expected, paid, shortfall`` (no patient identifiers).
    summary
        By payer, code and month of service, over every compared line: ``lines``,
        ``expected``, ``paid``, ``pct_of_contract`` (paid / expected), ``underpaid_lines``,
        ``recoverable`` (sum of shortfalls) and ``claims`` (claims to appeal).
    claims
        The claims to appeal, largest shortfall first: ``claim_id, payer_claim_id, payer_id,
        payer, month, codes, lines, expected, paid, recoverable``.
    tolerance
        Shortfalls at or under this many dollars per line are treated as rounding.
    """

    lines: pd.DataFrame
    summary: pd.DataFrame
    claims: pd.DataFrame
    tolerance: float

    @property
    def recoverable(self) -> float:
        """Total recoverable dollars."""
        return float(to_cents(self.lines["shortfall"].sum()))

    def highlights(self, freq: str = "Q", top: int = 3) -> pd.DataFrame:
        """The largest underpayments by payer, code and quarter (``freq="Q"``) or month.

        Columns ``payer_id, payer, cpt, period`` (e.g. ``Q3 2025``), ``pct_of_contract``,
        ``recoverable``, ``claims``.
        """
        s = self.summary
        if s.empty:
            return s.assign(period=pd.Series(dtype=str))
        per = s["month"].dt.to_period(freq)
        label = ("Q" + per.dt.quarter.astype(str) + " " + per.dt.year.astype(str)) if freq == "Q" else per.astype(str)
        g = s.assign(period=label.to_numpy(), _order=per.dt.start_time.to_numpy()).groupby(
            ["payer_id", "payer", "cpt", "period", "_order"], sort=False, observed=True).agg(
            expected=("expected", "sum"), paid=("paid", "sum"), recoverable=("recoverable", "sum"))
        claims = self.lines.assign(
            period=(lambda p: ("Q" + p.dt.quarter.astype(str) + " " + p.dt.year.astype(str)) if freq == "Q"
                    else p.astype(str))(self.lines["month"].dt.to_period(freq)).to_numpy()
        ).groupby(["payer_id", "cpt", "period"])["claim_id"].nunique().rename("claims")
        g = g.reset_index().merge(claims.reset_index(), on=["payer_id", "cpt", "period"], how="left")
        g["claims"] = g["claims"].fillna(0).astype(np.int64)
        g["pct_of_contract"] = g["paid"] / g["expected"].where(g["expected"] > 0)
        g["recoverable"] = to_cents(g["recoverable"].to_numpy(dtype=float))
        g = g[g["recoverable"] > 0].sort_values(["recoverable", "_order"], ascending=[False, True], kind="stable")
        return g.head(top)[["payer_id", "payer", "cpt", "period", "pct_of_contract", "recoverable", "claims"]] \
            .reset_index(drop=True)


def underpayments(history: History, *, tolerance: float = 0.05) -> Underpayments:
    """Lines the payer paid below its contract, by payer, code and month of service.

    A line is compared when the payer paid it (adjudicated, not denied) and the rules engine
    says the contract pays it (``contract_expected`` > 0). Paid = payer paid + patient
    responsibility; expected = the contract's allowed less sequestration. A shortfall above
    ``tolerance`` dollars is recoverable; an appeal names the claim.

    Examples
    --------
    >>> u = underpayments(history)  # doctest: +SKIP
    >>> fmt_money(u.recoverable), len(u.claims)  # doctest: +SKIP
    ('$1,240', 31)
    """
    p = _paid_lines(history)
    expected = p["contract_expected"].to_numpy(dtype=float)
    keep = np.isfinite(expected) & (expected > 0)
    p = p[keep]
    expected = expected[keep]
    got = (p["paid"] + p["patient_responsibility"]).to_numpy(dtype=float)
    short = expected - got
    under = short > tolerance
    month = p["service_date"].dt.to_period("M").dt.to_timestamp()
    work = pd.DataFrame({
        "line_id": p["line_id"].to_numpy(),
        "claim_id": p["claim_id"].to_numpy(), "payer_claim_id": p["payer_claim_id"].to_numpy(),
        "payer_id": p["payer_id"].to_numpy(), "payer": p["payer"].astype(str).to_numpy(),
        "cpt": p["cpt"].to_numpy(), "month": month.to_numpy(), "expected": expected, "paid": got,
        "shortfall": np.where(under, short, 0.0), "underpaid": under,
    })
    summary_ = work.assign(n=1, u=under.astype(np.int64)).groupby(
        ["payer_id", "payer", "cpt", "month"], sort=True).agg(
        lines=("n", "sum"), expected=("expected", "sum"), paid=("paid", "sum"), underpaid_lines=("u", "sum"),
        recoverable=("shortfall", "sum")).reset_index()
    claim_count = work[under].groupby(["payer_id", "cpt", "month"])["claim_id"].nunique().rename("claims")
    summary_ = summary_.merge(claim_count.reset_index(), on=["payer_id", "cpt", "month"], how="left")
    summary_["claims"] = summary_["claims"].fillna(0).astype(np.int64)
    summary_["pct_of_contract"] = summary_["paid"] / summary_["expected"]
    for c in ("expected", "paid", "recoverable"):
        summary_[c] = to_cents(summary_[c].to_numpy(dtype=float))
    lines = work[under].drop(columns="underpaid").reset_index(drop=True)
    claims = lines.groupby(["claim_id", "payer_claim_id", "payer_id", "payer"], sort=False).agg(
        month=("month", "min"), codes=("cpt", lambda s: ", ".join(sorted(set(s)))), lines=("cpt", "size"),
        expected=("expected", "sum"), paid=("paid", "sum"), recoverable=("shortfall", "sum")).reset_index()
    for c in ("expected", "paid", "recoverable"):
        claims[c] = to_cents(claims[c].to_numpy(dtype=float))
    claims = claims.sort_values(["recoverable", "claim_id"], ascending=[False, True], kind="stable").reset_index(
        drop=True)
    for c in ("expected", "paid", "shortfall"):
        lines[c] = to_cents(lines[c].to_numpy(dtype=float))
    return Underpayments(lines=lines, summary=summary_, claims=claims, tolerance=tolerance)


def percent_of_medicare(
    history: History,
    *,
    locality: str | None = None,
    year: int | None = None,
    reference: Reference | None = None,
) -> pd.DataFrame:
    """Each payer's effective percent of Medicare per code, at the practice's locality.

    For the lines each payer paid, what it paid (payer + patient responsibility) is set
    against the Medicare fee schedule amount for the same code and units: the fee of
    ``year`` (``None``/0: the year of service) for ``locality`` (default: the practice's).
    The comparison is per unit, as contracts quote it, so payment policies show in the
    effective percent: Medicare's own MPPR (every unit after the first loses half its
    practice expense) puts Medicare itself below 100%, and a per-visit cap lowers a
    payer's figure.

    Returns
    -------
    DataFrame
        ``payer_id, payer, cpt, lines, units, paid, medicare, pct_of_medicare`` and
        ``contract`` (the policy's percent of Medicare, NaN for other fee bases).
    """
    from analytics.edits import DISPOSITIONS
    from analytics.pricing import price_lines

    ref = reference or load_reference()
    loc = locality or history.locality
    p = _paid_lines(history)
    units = np.where(np.isfinite(p["paid_units"].to_numpy(dtype=float)) & (p["paid_units"].to_numpy(dtype=float) > 0),
                     p["paid_units"].to_numpy(dtype=float), p["units"].to_numpy(dtype=float)).astype(np.int64)
    bench_id = "_medicare_benchmark"
    bench = {bench_id: PayerPolicy.from_dict(bench_id, {
        "kind": "medicare", "fee": {"basis": "medicare", "locality": loc, "year": int(year) if year else None},
        "mppr": False}, where="Medicare benchmark")}
    frame = pd.DataFrame({
        "patient_id": p["patient_id"].to_numpy(), "service_date": p["service_date"].to_numpy(),
        "provider_id": p["provider_id"].to_numpy(), "payer_id": bench_id, "cpt": p["cpt"].to_numpy(),
        "modifiers": p["modifiers"].to_numpy(), "units": units,
        "disposition": pd.Categorical(np.full(len(p), "payable"), categories=DISPOSITIONS),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        priced = price_lines(frame, bench, ref) if len(frame) else frame.assign(allowed=np.zeros(0))
    medicare = priced["allowed"].to_numpy(dtype=float, na_value=np.nan)
    ok = np.isfinite(medicare) & (medicare > 0)
    work = pd.DataFrame({"payer_id": p["payer_id"].to_numpy()[ok], "cpt": p["cpt"].to_numpy()[ok],
                         "units": units[ok], "paid": (p["paid"] + p["patient_responsibility"]).to_numpy()[ok],
                         "medicare": medicare[ok], "n": 1})
    out = work.groupby(["payer_id", "cpt"], sort=True).agg(
        lines=("n", "sum"), units=("units", "sum"), paid=("paid", "sum"), medicare=("medicare", "sum")).reset_index()
    out["pct_of_medicare"] = out["paid"] / out["medicare"]
    out["contract"] = out["payer_id"].map(
        {pid: (pol.fee.percent / 100.0 if pol.fee.basis == "percent_of_medicare"
               else 1.0 if pol.fee.basis == "medicare" else np.nan) for pid, pol in history.payers.items()})
    for c in ("paid", "medicare"):
        out[c] = to_cents(out[c].to_numpy(dtype=float))
    return _with_payer_name(out, history)


# ---------------------------------------------------------------------------------------
# Words for the page
# ---------------------------------------------------------------------------------------


def heading(history: History, title: str = "", practice_name: str = "") -> str:
    """Markdown heading: title, practice, period, as-of date and the payers/providers covered.

    When some of the payers selected have no line in the period, a sentence names them and
    the payers the figures are for.
    """
    name = practice_name or history.practice_name or "The practice"
    who = []
    if history.payer_ids:
        who.append("payers: " + ", ".join(_payer_names(history, history.payer_ids)))
    if history.provider_ids:
        who.append("providers: " + ", ".join(history.provider_ids))
    scope = ("; " + "; ".join(who)) if who else ""
    text = (f"# {title or 'Practice report'}\n\n**{name}**  \n"
            f"Services from {history.start.date()} to {history.end.date()}; "
            f"remittances and A/R as of {history.as_of.date()}{scope}.")
    absent = _payers_without_claims(history)
    shown = [p for p in history.payer_ids if p not in absent]
    if absent and shown:  # with no payer shown at all, the summary says so
        text += (f"\n\n{_no_claims_sentence(history, absent)[:-1]}; the figures below are for "
                 f"{_joined(_payer_names(history, shown), 'and')} only.")
    return text


def _payer_names(history: History, ids: Iterable[str]) -> list[str]:
    return [history.payers[i].name or i if i in history.payers else i for i in ids]


def _payers_without_claims(history: History) -> list[str]:
    """The selected payers with no line in the period (none when every payer is selected)."""
    if not history.payer_ids:
        return []
    present = set(pd.unique(history.period["payer_id"].astype(str)))
    return [p for p in history.payer_ids if p not in present]


def _joined(words: Sequence[str], last: str) -> str:
    """``a``, ``a and b``, ``a, b and c`` (``last`` is the final joining word)."""
    words = list(words)
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _no_claims_sentence(history: History, payer_ids: Sequence[str]) -> str:
    """E.g. "No claims for Blue Choice PPO in this period." """
    return f"No claims for {_joined(_payer_names(history, payer_ids), 'or')} in this period."


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _nothing_selected(history: History, consequence: str) -> str:
    """The sentence for a scope without a single line: which payers had none, and what follows."""
    absent = _payers_without_claims(history)
    if absent and not history.provider_ids:
        return _no_claims_sentence(history, absent)[:-1] + f": {consequence}."
    return f"No services in this period for the payers and providers selected: {consequence}."


def _insurance_lines(history: History) -> int:
    """Number of insurance (not self-pay) lines in the period."""
    return int((~history.period["self_pay"].to_numpy()).sum())


_NO_REMITTANCE = "No remittance (835) covers services in this period"


def _bullets(sentences: Iterable[str]) -> str:
    return "\n".join(f"- {s}" for s in sentences if s)


def revenue_narrative(history: History) -> str:
    """A few sentences on revenue, collections and A/R, written from the figures (Markdown)."""
    s = summary(history)
    if s["lines"] == 0:
        return "- " + _nothing_selected(history, "nothing was billed, paid or left open")
    billed = (f"{_plural(s['visits'], 'visit was', 'visits were')} billed {fmt_money(s['gross_charges'])} in charges "
              f"({fmt_money(s['self_pay_charges'])} self-pay).")
    if _insurance_lines(history) == 0:
        out = [billed, "Every visit in this period was self-pay: no insurance claims, so no collection or "
                       "first-pass rates."]
    elif s["adjudicated_lines"] == 0:
        out = [billed, f"{_NO_REMITTANCE}; every charge is still open, so there is no net collection rate or "
                       "first-pass rate for it yet."]
    else:
        gap = (s["adjudicated_charges"] - s["contractual_adjustments"] - s["payer_paid"]
               - s["patient_responsibility"])
        rest = ("nothing was left uncollected" if abs(gap) < 1 and s["denied_amount"] < 1
                else f"the rest ({fmt_money(gap)}) was denied" if abs(gap - s["denied_amount"]) < 1
                else f"of the {fmt_money(gap)} not collected, denials account for {fmt_money(s['denied_amount'])}")
        out = [
            f"{billed} Payers allowed {fmt_money(s['allowed'])}, paid "
            f"{fmt_money(s['payer_paid'])} and left {fmt_money(s['patient_responsibility'])} to patients.",
            f"Net collection rate {fmt_pct(s['net_collection_rate'])}: of charges less contractual write-downs, "
            f"that share was paid by payers or owed by patients; {rest}. "
            f"{fmt_pct(s['first_pass_resolution_rate'])} of claims were resolved on the first pass.",
        ]
    bp = by_payer(history).dropna(subset=["net_collection_rate"])
    if len(bp) > 1:
        worst = bp.sort_values("net_collection_rate", kind="stable").iloc[0]
        best = bp.sort_values("net_collection_rate", ascending=False, kind="stable").iloc[0]
        out.append(f"By payer, {best['payer']} collected best ({fmt_pct(best['net_collection_rate'])}) and "
                   f"{worst['payer']} worst ({fmt_pct(worst['net_collection_rate'])}).")
    if s["ar_balance"] > 0:
        out.append(f"Insurance A/R as of {history.as_of.date()}: {fmt_money(s['ar_balance'])}, "
                   f"{fmt_days(s['days_in_ar'])} of charges; {fmt_money(s['ar_over_90'])} is over 90 days old.")
    else:
        out.append(f"No insurance claim was waiting on a payer as of {history.as_of.date()}.")
    if s["unbilled_charges"] > 0:
        out.append(f"{fmt_money(s['unbilled_charges'])} of services had not been billed by then.")
    return _bullets(out)


def denials_narrative(history: History) -> str:
    """A few sentences on denials: rate, dollars, the payers and reasons that matter most."""
    s = summary(history)
    if s["lines"] == 0:
        return "- " + _nothing_selected(history, "no denial rate to report")
    ins = _insurance_lines(history)
    if ins == 0:
        return "- Every visit in this period was self-pay: no insurance lines, so no denial rate."
    if s["adjudicated_lines"] == 0:
        return ("- Nothing has been adjudicated yet: no remittance (835) covers services in this period, so there is "
                f"no denial rate for its {_plural(ins, 'insurance line', 'insurance lines')}.")
    out = [f"Payers denied {s['denied_lines']:,} of "
           f"{_plural(s['adjudicated_lines'], 'adjudicated line', 'adjudicated lines')} "
           f"({fmt_pct(s['denial_rate'])}), {fmt_money(s['denied_amount'])} in charges."]
    dp = denials_by_payer(history)
    dp = dp[dp["lines"] >= 10]
    if len(dp):
        top = dp.iloc[0]
        out.append(f"{top['payer']} denies most often: {fmt_pct(top['rate'])} of lines "
                   f"(95% interval {fmt_pct(top['low'])} to {fmt_pct(top['high'])}).")
    reasons = denial_reasons(history)
    if len(reasons):
        r = reasons.iloc[0]
        out.append(f"The leading reason is {r['reason']}: {fmt_money(r['denied_amount'])} across "
                   f"{_plural(r['lines'], 'line', 'lines')} ({fmt_pct(r['share'], 0)} of denied dollars).")
        k = int((reasons["cumulative_share"] < 0.8).sum()) + 1
        if 1 < k < len(reasons):
            out.append(f"{k} reasons account for 80% of denied dollars; fixing them first pays most.")
    return _bullets(out)


def contracts_narrative(history: History, *, locality: str | None = None, year: int | None = None,
                        tolerance: float = 0.05) -> str:
    """Sentences on underpayments against contract and each payer's rate against Medicare.

    E.g. "Gold PPO paid 90.9% of contract on 97140 in Q3 2025; $1,240 recoverable across 31 claims."
    """
    nothing = _nothing_to_compare(history)
    if nothing:
        return "- " + nothing
    u = underpayments(history, tolerance=tolerance)
    out = []
    compared = int(u.summary["lines"].sum())
    if compared == 0:
        out.append(f"{_plural(len(_paid_lines(history)), 'line was', 'lines were')} paid, but the policies in "
                   "payers.yaml give no contract amount for them: nothing to compare.")
    elif u.lines.empty:
        out.append("Every paid line matched its contract (within "
                   f"{fmt_money(tolerance, cents=True)} a line): nothing to appeal.")
    else:
        out.append(f"{fmt_money(u.recoverable)} is recoverable across {_plural(len(u.claims), 'claim', 'claims')} paid "
                   "below contract.")
        for r in u.highlights().itertuples(index=False):
            out.append(f"{r.payer} paid {fmt_pct(r.pct_of_contract)} of contract on {r.cpt} in {r.period}; "
                       f"{fmt_money(r.recoverable)} recoverable across {_plural(r.claims, 'claim', 'claims')}.")
    pm = percent_of_medicare(history, locality=locality, year=year)
    if len(pm):
        per_payer = pm.groupby(["payer_id", "payer"], sort=False)[["paid", "medicare"]].sum()
        per_payer = (per_payer["paid"] / per_payer["medicare"]).sort_values(ascending=False)
        loc = locality or history.locality
        where = "national rates" if loc == "00000-00" else f"locality {loc}"
        out.append("Against Medicare (" + where + "): " + "; ".join(
            f"{name} {fmt_pct(v, 0)}" for (_, name), v in per_payer.items()) + ".")
    return _bullets(out)


def _nothing_to_compare(history: History) -> str:
    """Why no line of the scope was paid (empty when some line was): the contracts page says it."""
    if len(_paid_lines(history)):
        return ""
    what = "nothing paid to compare with the contracts or with Medicare"
    p = history.period
    if p.empty:
        return _nothing_selected(history, what)
    ins = _insurance(p)
    if ins.empty:
        return f"Every visit in this period was self-pay: {what}."
    if not ins["adjudicated"].any():
        return f"{_NO_REMITTANCE}: {what} yet."
    return f"Payers paid nothing on the lines of this period (each was denied or adjusted to $0): {what}."


def data_notes(history: History) -> str:
    """The history's data notes as Markdown bullets (empty when there are none)."""
    return _bullets(history.notes)
