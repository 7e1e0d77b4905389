"""A practice's history: its charge lines joined to their 835 remittances and contracts.

:func:`load_history` joins what a practice has on disk (the charge export, the 835
remittances, the payer policies) into one :class:`History`: one row per charge line with
what the payer did with it and what the contract says it should have paid.
:func:`build_history` does the same from tables already in memory. :meth:`History.select`
scopes a history to a period of service dates, an as-of date, payers and providers; the
figures of :mod:`analytics.kpis` and the sentences of :mod:`analytics.narratives` are
functions of a scoped history.

Reading a folder parses every 835 file, so :func:`load_history` can keep a parsed copy in a
cache folder (:data:`CACHE_ENV`) as Parquet, keyed by the inputs' hashes (:mod:`analytics.cache`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError, ParameterError
from analytics.payers import PayerPolicy, load_payers, resolve_payer
from analytics.practice import load_practice, locate_practice, not_priced_reasons, practice_name
from analytics.refdata import Reference, load_reference
from analytics.units import VISIT_KEYS, visit_codes

__all__ = [
    "History",
    "build_history",
    "load_history",
    "practice_name",
    "CACHE_ENV",
    "CENT",
]

#: Environment variable naming a folder where :func:`load_history` keeps parsed histories.
CACHE_ENV = "ANALYTICS_CACHE_DIR"
#: Half a cent: a dollar amount below it is zero (a line with less paid counts as unpaid).
CENT = 0.005

# Money columns that describe the payer's answer: zero until the line is adjudicated.
_REMIT_MONEY = ("paid", "patient_responsibility", "contractual", "sequestration", "denied_amount", "allowed")


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
        Data notes in words (lines set aside, unreadable 835s, codes outside the catalog ...).
    set_aside
        The export's rows set aside, without their values: ``source_file``, ``source_row`` (as
        the spreadsheet shows it), ``kind`` and ``reason``; a report may save it as a table.
    ignored_columns
        The export's columns left out, with the reason (``column``, ``reason``).
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
    set_aside: pd.DataFrame | None = None
    ignored_columns: pd.DataFrame | None = None

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
                     else _checked_ids(self._payer_ids(payers), self.base["payer_id"], "payer", also=self.payers))
        provider_ids = (self.provider_ids if not providers
                        else _checked_ids(providers, self.base["provider_id"], "provider"))
        lines = _scope(self.base, start, end, as_of, payer_ids, provider_ids)
        return dataclasses.replace(self, lines=lines, start=start, end=end, as_of=as_of,
                                   payer_ids=payer_ids, provider_ids=provider_ids)

    def _payer_ids(self, wanted: Iterable[str] | str) -> list[str]:
        """Payers as named by the user ("Medicare", "Blue Shield Gold PPO") as their ids, through
        the names and aliases of payers.yaml; a name no policy knows stays as written."""
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        return [resolve_payer(n, self.payers) or str(n).strip() for n in names]


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
    "contract_allowed", "contract_expected", "not_priced",
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
    has_denial = adjudicated & (out["denied_amount"] > CENT)
    out["denied"] = has_denial & (paid < CENT)
    out["partially_denied"] = has_denial & (paid >= CENT)
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
    salt: Any = None,
    key: Any = None,
    files: Sequence[str] = (),
    notes: Sequence[str] = (),
    set_aside: pd.DataFrame | None = None,
    ignored_columns: pd.DataFrame | None = None,
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
    key, salt
        The pseudonym key for ``patient_id`` (``salt`` is its older name), passed to
        :func:`analytics.privacy.pseudonymise` (default: the privacy module's choice).
    set_aside, ignored_columns
        The export's rows set aside and columns left out (:class:`analytics.practice.PracticeData`).

    A line whose code is outside the catalog, or whose payer has no policy, is kept with its
    charge and marked in ``not_priced`` (:func:`analytics.practice.not_priced_reasons`); the
    rules engine prices the others.

    Examples
    --------
    >>> from analytics.remittance import read_835
    >>> charges = pd.DataFrame({"claim_id": ["C1"], "line_id": ["C1-1"], "patient_id": ["P1"],
    ...     "service_date": pd.to_datetime(["2026-03-02"]), "provider_id": ["LMT1"],
    ...     "provider_type": ["lmt"], "payer_id": ["cash"], "cpt": ["97124"], "minutes": [60.0],
    ...     "modifiers": [""], "charge": [288.0]})
    >>> h = build_history(charges, None, payers={"payers": {"cash": {"kind": "cash"}}}, as_of="2026-03-31")
    >>> from analytics.kpis import summary
    >>> summary(h)["gross_charges"]
    288.0
    """
    from analytics.intake import pseudonymise

    pol = load_payers(payers) if not _is_policies(payers) else dict(payers)
    ref = reference or load_reference()
    practice = dict(practice or {})
    notes = list(notes)
    charges = _charge_frame(lines)
    charges = pseudonymise(charges, key=key if key is not None else salt, columns=("patient_id",))
    charges["not_priced"] = not_priced_reasons(charges, pol, ref).to_numpy(dtype=object)
    kinds = {pid: p.kind for pid, p in pol.items()}
    names = {pid: (p.name or pid) for pid, p in pol.items()}
    charges["self_pay"] = charges["payer_id"].map(kinds).eq("cash").to_numpy()
    charges["payer"] = pd.Categorical(charges["payer_id"].map(names).fillna(charges["payer_id"]))
    charges["visit"] = visit_codes(charges, VISIT_KEYS)

    contract, engine_notes = contract_prices(charges, pol, ref)
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
                   start=start, end=end, as_of=as_of_ts, files=tuple(files), notes=tuple(dict.fromkeys(notes)),
                   set_aside=set_aside, ignored_columns=ignored_columns)


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


#: CLP02 of a claim a payer processed as secondary or tertiary (2, 3; 20, 21 when it also
#: forwarded the claim to another payer): its payment adds to the primary payer's answer.
_LATER_PAYER = ("2", "3", "20", "21")
#: The 835 line columns whose amounts are the payer's answer for a line.
_LINE_MONEY = ("paid", "allowed", "patient_responsibility", "contractual", "sequestration", "denied_amount")


def _remittance_columns(charges: pd.DataFrame, remittance: Any, ref: Reference) -> tuple[dict, pd.DataFrame]:
    """Per charge line: the payer's answer from the 835s, and the 835 lines that match none.

    A line's answer is its newest adjudication by its primary payer (a corrected claim
    supersedes the one before it). Then:

    * a reversal (CLP02 22) newer than that adjudication, with no correction after it, takes
      its amounts back (the payer's negated amounts are added);
    * a secondary or tertiary payer's payment (CLP02 2, 3, 20, 21) adds to what was paid and
      lowers what the patient owes by as much;
    * a claim answered at claim level only (a CLP with no SVC) answers each of its charge
      lines, its payment and claim-level adjustments spread in proportion to their charges.
    """
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
    if remittance is None or (len(remittance.service_lines) == 0 and len(remittance.claims) == 0):
        empty = remittance.service_lines.iloc[0:0] if remittance is not None else pd.DataFrame()
        return cols, empty
    notes: list[str] = []
    listed = remittance.service_lines.reset_index(drop=True)
    # every link is made on the claim id: the charge lines' ids, read once
    ids = (charges["claim_id"].astype("str").str.strip() if "claim_id" in charges
           else pd.Series("", index=charges.index, dtype="str"))
    bare, orphans = _claim_level_lines(charges, ids, remittance)
    sl = pd.concat([listed, bare], ignore_index=True) if len(bare) else listed
    if len(bare):
        notes.append(f"{bare[['file', 'st_index', 'claim_index']].drop_duplicates().shape[0]} claim(s) in the 835s "
                     f"are answered at claim level only (no service lines); their payment and adjustments are "
                     f"spread over their {len(bare)} charge line(s) in proportion to the charges.")
    if orphans:
        notes.append(f"{orphans} claim(s) in the 835s answered at claim level only (no service lines) name a claim "
                     "number the export does not have, and are left out.")
    claims = remittance.claims
    pay = remittance.payments
    # Claim and payment facts per remittance line.
    ckey = ["file", "st_index", "claim_index"]
    claim_facts = claims[ckey + ["received_date", "payer_claim_id", "is_reversal", "status"]]
    pay_date = pay["payment_date"].fillna(pay["production_date"]) if "production_date" in pay else pay["payment_date"]
    pay_facts = pay[["file", "st_index"]].assign(payment_date=pay_date.to_numpy())
    facts = (sl[ckey + ["line_index"]].merge(claim_facts, on=ckey, how="left", sort=False)
             .merge(pay_facts, on=["file", "st_index"], how="left", sort=False))
    reversal = facts["is_reversal"].fillna(False).to_numpy(dtype=bool)
    later = facts["status"].astype("str").str.strip().isin(_LATER_PAYER).to_numpy(dtype=bool) & ~reversal
    day = _days(facts["payment_date"])
    # The latest adjudication of a line is its current state: link newest first.
    newest = np.lexsort((np.arange(len(sl)), -day))
    primary = _link(charges, ids, sl.iloc[newest[~(reversal | later)[newest]]])

    amounts = _line_adjustments(remittance, sl, ref)
    unknown = sorted(set(remittance.adjustments["carc"].astype("str").str.strip().str.upper()) - set(ref.carc["carc"]))
    if unknown:
        notes.append(f"CARC(s) {', '.join(unknown)} are not in the reference catalog; they count as denials in "
                     "category 'other'. Add them to analytics/reference/carc.csv with their category.")
    paid = sl["paid"].to_numpy(dtype=float)
    reported = sl["allowed"].to_numpy(dtype=float) if "allowed" in sl else np.full(len(sl), np.nan)
    money = {"paid": paid, **{c: amounts[c] for c in _LINE_MONEY if c in amounts},
             "allowed": np.where(np.isfinite(reported), reported,
                                 paid + amounts["patient_responsibility"] + amounts["sequestration"])}
    answer = np.full(n, -1, dtype=np.int64)  # the 835 line that answers each charge line

    def answer_with(c_row: np.ndarray, r_row: np.ndarray) -> None:
        answer[c_row] = r_row
        cols["remitted"][c_row] = True
        cols["payment_date"][c_row] = pd.to_datetime(facts["payment_date"]).to_numpy(dtype="datetime64[ns]")[r_row]
        cols["received_date"][c_row] = pd.to_datetime(facts["received_date"]).to_numpy(dtype="datetime64[ns]")[r_row]
        cols["payer_claim_id"][c_row] = facts["payer_claim_id"].astype("str").fillna("").to_numpy(dtype=object)[r_row]
        cols["paid_units"][c_row] = sl["paid_units"].to_numpy(dtype=float)[r_row]
        for c in _LINE_MONEY:
            cols[c][c_row] = money[c][r_row]
        cols["denial_carc"][c_row] = amounts["denial_carc"][r_row]
        cols["denial_category"][c_row] = amounts["denial_category"][r_row]

    answer_with(*_pairs(primary))
    unmatched = [primary.unmatched_remittance]

    # A reversal newer than a line's answer (no correction since) takes the answer's amounts back.
    c_row, r_row = _pairs(_link(charges, ids, sl.iloc[newest[reversal[newest]]]))
    had = answer[c_row] >= 0
    a_row = answer[c_row[had]]
    newer = (day[r_row[had]] > day[a_row]) | (
        (day[r_row[had]] == day[a_row]) & (sl["file"].to_numpy()[r_row[had]] == sl["file"].to_numpy()[a_row])
        & (sl["claim_index"].to_numpy()[r_row[had]] > sl["claim_index"].to_numpy()[a_row]))
    taken, by = c_row[had][newer], r_row[had][newer]
    for c in _LINE_MONEY:
        cols[c][taken] += money[c][by]
    cleared = taken[cols["denied_amount"][taken] < CENT]
    cols["denial_carc"][cleared] = ""
    cols["denial_category"][cleared] = ""
    if len(taken):
        notes.append(f"{len(taken)} charge line(s) were paid and then reversed by the payer (CLP02 22) with no "
                     "corrected claim since: the payment is taken back in these figures.")
    if (~had).any():
        notes.append(f"{int((~had).sum())} reversal line(s) (CLP02 22) undo a payment that is not in these 835s; "
                     "they are left out. Add the earlier 835s to count the payment and its reversal.")

    # Secondary and tertiary payers: their payment adds to the primary's and lowers the patient's share.
    secondary = _link(charges, ids, sl.iloc[newest[later[newest]]])
    c_row, r_row = _pairs(secondary)
    alone = answer[c_row] < 0
    answer_with(c_row[alone], r_row[alone])  # the only answer in these 835s
    c_add, r_add = c_row[~alone], r_row[~alone]
    cols["paid"][c_add] += paid[r_add]
    cols["patient_responsibility"][c_add] = np.maximum(cols["patient_responsibility"][c_add] - paid[r_add], 0.0)
    if len(c_add):
        notes.append(f"{len(c_add)} charge line(s) were also paid by a secondary or tertiary payer (CLP02 2, 3, 20 "
                     "or 21): that payment is added to the primary payer's and taken off the patient's share.")
    unmatched.append(secondary.unmatched_remittance)
    if notes:
        cols["_notes"] = notes

    # Remittances per claim (reversals and later payers aside): more than one means the claim was reworked.
    first_answer = ~claims["is_reversal"].fillna(False).to_numpy(dtype=bool) & ~claims["status"].astype("str").str.strip(
    ).isin(_LATER_PAYER).to_numpy(dtype=bool)
    per_claim = claims.loc[first_answer, "claim_id"].astype("str").value_counts()
    cols["remits_on_claim"] = charges["claim_id"].map(per_claim).fillna(0).to_numpy(dtype=np.int64)
    left = pd.concat(unmatched)
    return cols, left[left["line_index"].to_numpy() >= 0]  # lines made from a bare claim are not the file's


def _link(charges: pd.DataFrame, ids: pd.Series, remit_lines: pd.DataFrame) -> Any:
    """:func:`~analytics.remittance.link_remittance` of the charge lines whose claim id (``ids``,
    stripped) the 835 lines name (every tier matches on the claim id, so the pairs are the
    same): a few reversals or secondary payments are linked without keying every charge line."""
    from analytics.remittance import link_remittance

    named = pd.unique(remit_lines["claim_id"].astype("str").str.strip()) if len(remit_lines) else []
    return link_remittance(charges[ids.isin(named).to_numpy()], remit_lines)


def _pairs(linked: Any) -> tuple[np.ndarray, np.ndarray]:
    """The charge rows and 835 line rows ``link_remittance`` paired."""
    return (linked.matched["charge_row"].to_numpy(dtype=np.int64),
            linked.matched["remit_row"].to_numpy(dtype=np.int64))


def _claim_level_lines(charges: pd.DataFrame, ids: pd.Series, remittance: Any) -> tuple[pd.DataFrame, int]:
    """835 lines standing for the charge lines of claims answered at claim level only (a CLP
    with no SVC), one per charge line of the claim (CLP01 = the practice's claim id), each
    carrying the line's id as its control number, its charge, and the claim's payment in
    proportion to its charge. Line numbers are negative: no CAS names such a line, and the
    claim's own CAS are spread over them as over any claim's lines. Also the number of such
    claims whose claim number no charge line has."""
    from analytics.remittance.tables import LINE_SCHEMA, typed_frame

    claims, listed = remittance.claims, remittance.service_lines
    ckey = ["file", "st_index", "claim_index"]
    with_lines = claims[ckey].merge(listed[ckey].drop_duplicates(), on=ckey, how="left", indicator=True)
    bare = claims[(with_lines["_merge"] == "left_only").to_numpy()]
    if bare.empty:
        return listed.iloc[0:0], 0
    known = ids.notna() & (ids != "")
    bare_ids = bare["claim_id"].astype("str").str.strip()
    orphans = int((~bare_ids.isin(ids[known].to_numpy())).sum())
    own = pd.DataFrame({"claim_id": ids[known].to_numpy(), "_c": np.flatnonzero(known.to_numpy())})
    hit = bare.assign(claim_id=bare_ids).merge(own, on="claim_id", how="inner", sort=False)
    if hit.empty:
        return listed.iloc[0:0], orphans
    c = hit["_c"].to_numpy()
    charge = pd.to_numeric(charges["charge"], errors="coerce").to_numpy(dtype=float)[c]
    charge = np.nan_to_num(charge)
    group = hit.groupby(ckey, sort=False)
    share = _charge_shares(charge, group.ngroup().to_numpy())
    text = {k: charges[k].astype("str").fillna("").to_numpy(dtype=object)[c] if k in charges else "" for k in
            ("cpt", "modifiers", "line_id")}
    return typed_frame({
        "file": hit["file"].to_numpy(), "st_index": hit["st_index"].to_numpy(),
        "claim_index": hit["claim_index"].to_numpy(), "line_index": -1 - group.cumcount().to_numpy(),
        "claim_id": hit["claim_id"].to_numpy(), "code_qualifier": "HC", "cpt": text["cpt"],
        "modifier_1": "", "modifier_2": "", "modifier_3": "", "modifier_4": "", "modifiers": text["modifiers"],
        "charge": charge, "paid": hit["paid"].to_numpy(dtype=float) * share, "revenue_code": "",
        "paid_units": np.full(len(hit), np.nan), "original_cpt": "",
        "service_date": pd.to_datetime(charges["service_date"]).to_numpy()[c] if "service_date" in charges
        else np.full(len(hit), np.datetime64("NaT")),
        "service_date_end": np.full(len(hit), np.datetime64("NaT")), "service_date_source": "claim",
        "line_control_number": text["line_id"], "allowed": np.full(len(hit), np.nan),
        "segment": hit["segment"].to_numpy(),
    }, LINE_SCHEMA), orphans


def _charge_shares(charge: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Each line's share of its group (a claim): its charge over the group's charges, or an
    equal share when they add to nothing. How a claim's payment or adjustments are spread."""
    codes, _ = pd.factorize(group)
    total = np.bincount(codes, weights=charge)[codes] if len(codes) else np.zeros(0)
    count = np.bincount(codes)[codes] if len(codes) else np.zeros(0)
    return np.where(total > 0, charge / np.where(total > 0, total, 1), 1.0 / np.maximum(count, 1))


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
        w = _charge_shares(spread["_charge"].to_numpy(dtype=float), spread["_i"].to_numpy())
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


def contract_prices(charges: pd.DataFrame, payers: Mapping[str, PayerPolicy],
                    ref: Reference) -> tuple[dict, list[str]]:
    """What the contract says each line is worth: the rules engine with the payer's policy.

    Lines marked ``not_priced`` (a code outside the catalog, a payer without a policy) are not
    run through the engine: they keep their billed units and no contract price, and their
    ``edit_reason`` says why.
    """
    from analytics.pipeline import evaluate

    n = len(charges)
    reason = charges["not_priced"].to_numpy(dtype=object)
    priced = reason == ""
    billed = (charges["units_billed"].to_numpy(dtype=float, na_value=np.nan) if "units_billed" in charges
              else np.full(n, np.nan))
    units = np.where(np.isfinite(billed), billed, 1).astype(np.int64)
    disposition = np.full(n, "not priced", dtype=object)
    edit_reason = reason.copy()
    allowed = np.full(n, np.nan)
    seq = np.zeros(n)
    notes: list[str] = []
    wanted = ("patient_id", "service_date", "provider_id", "provider_type", "payer_id", "cpt", "minutes",
              "modifiers", "charge", "prescription_on_file", "prior_auth", "visits_before", "submission_date",
              "units_billed")
    frame = charges.loc[priced, [c for c in wanted if c in charges.columns]]
    if "minutes" in frame and frame["minutes"].isna().all() and "units_billed" in frame:
        # an export with units and no minutes: price the units as billed
        frame = frame.drop(columns="minutes").assign(units=frame["units_billed"].fillna(1))
    if len(frame):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = evaluate(frame, payers, ref)
        notes += [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        units[priced] = out["units"].to_numpy(dtype=np.int64)
        disposition[priced] = out["disposition"].astype("str").to_numpy(dtype=object)
        edit_reason[priced] = out["edit_reason"].to_numpy(dtype=object)
        allowed[priced] = out["allowed"].to_numpy(dtype=float, na_value=np.nan)
        seq[priced] = out["sequestration"].to_numpy(dtype=float)
    return {
        "units": units,
        "engine_disposition": disposition,
        "edit_reason": edit_reason,
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
    salt: Any = None,
    key: Any = None,
    payers: Mapping[str, PayerPolicy] | str | Path | None = None,
    mapping: Mapping[str, Any] | str | Path | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    max_set_aside: float | None = None,
) -> History:
    """Read a practice folder into a :class:`History`.

    The folder is read by :func:`analytics.practice.load_practice`, as every command that takes
    ``--data`` reads it: the charge export (any name practice.yaml or mapping.yaml gives, else
    ``service_lines.*``: CSV, TSV, XLSX or Parquet, read through mapping.yaml), ``payers.yaml``
    (payers found by id, name or alias), the 835 files under ``remittances/`` whatever their
    names, and ``practice.yaml`` (``practice`` name, Medicare ``locality``, ``as_of``,
    ``max_set_aside``). What a reader of the figures should know (lines set aside and where,
    codes outside the catalog, payers without a policy, 835 files that do not balance or cannot
    be read) becomes :attr:`History.notes`.

    Parameters
    ----------
    data_dir
        The practice folder.
    as_of
        Date the A/R is taken at (default: ``as_of`` in practice.yaml, else today).
    key, salt
        The pseudonym key (``salt``: its older name) for patient keys; default: the privacy
        module's choice for the folder.
    payers
        Payer policies to use instead of ``payers.yaml``.
    mapping
        How to read the export, instead of the folder's mapping.yaml.
    cache_dir
        Folder for a parsed copy keyed by the inputs' hashes (:mod:`analytics.cache`; default: the
        ``ANALYTICS_CACHE_DIR`` environment variable; none when unset). The report runner
        sets it so that the reports of one run read the 835 files once.
    max_set_aside
        Share of the export's lines that may be set aside (default: practice.yaml, else 20%).

    Raises
    ------
    InputError
        The folder, its export or payers.yaml is missing; nothing usable remains; or more than
        ``max_set_aside`` of the lines were set aside (the message says which).

    Examples
    --------
    >>> h = load_history("data/sample")  # doctest: +SKIP
    >>> from analytics.kpis import fmt_pct, summary  # doctest: +SKIP
    >>> fmt_pct(summary(h)["net_collection_rate"])  # doctest: +SKIP
    '96.1%'
    """
    from analytics.privacy import resolve_key

    files = locate_practice(data_dir, payers=payers, mapping=mapping)
    # the privacy module's key for this folder (its key file, the environment, else the public key)
    secret = resolve_key(key if key is not None else salt, near=[files.folder])
    cache = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV) or None
    store = None
    if cache is not None and not isinstance(payers, Mapping) and not isinstance(mapping, Mapping):
        from analytics.cache import HistoryCache

        # keyed by the inputs' hashes, the key's fingerprint, the toolkit and max_set_aside
        store = HistoryCache.for_practice(cache, files, secret, payers=payers,
                                          parameters={"max_set_aside": max_set_aside})
        cached = store.read()
        if cached is not None:
            return cached.select(as_of=as_of) if as_of else cached

    practice = load_practice(data_dir, payers=payers, mapping=mapping, key=secret, max_set_aside=max_set_aside,
                             files=files)
    history = build_history(practice.lines, practice.remittance, payers=practice.payers, practice=practice.settings,
                            key=secret, files=[str(p) for p in files.inputs], notes=practice.notes,
                            set_aside=practice.set_aside, ignored_columns=practice.ignored)
    if history.unmatched_remittance is not None and len(history.unmatched_remittance):
        history = dataclasses.replace(history, notes=(*history.notes, (
            f"{len(history.unmatched_remittance)} 835 service line(s) match no charge line (or were superseded "
            "by a later remittance) and are left out.")))
    if store is not None:
        store.write(history)
    return history.select(as_of=as_of) if as_of else history


def _practice_name(practice: Mapping[str, Any]) -> str:
    return str(practice.get("practice") or practice.get("name") or "")
