"""Compare: every alternative of a session priced for every payer, side by side.

:func:`compare` prices all alternatives x payers in one pass of the rules engine
(:func:`analytics.pipeline.evaluate`) and returns a :class:`Comparison`: one row per
alternative x payer x line, totals per alternative x payer, and a chart.
:func:`with_fee_schedule` and :func:`practice_defaults` set up the payers and the session.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analytics.exceptions import InputError, UnpricedCodeWarning
from analytics.payers import PayerPolicy, get_policy, load_payers
from analytics.pipeline import evaluate
from analytics.refdata import Reference, load_reference
from analytics.scenarios.alternatives import Alternative, alternatives
from analytics.scenarios.chart import plot_totals
from analytics.scenarios.session import SAMPLE_CHARGES, Session
from analytics.scenarios.tables import line_table_and_sums, scenario_lines, totals_of_lines

__all__ = ["Comparison", "compare", "with_fee_schedule", "practice_defaults", "payer_policies"]

#: The column that names a comparison's synthetic visits (see :func:`scenario_lines`).
_VISIT_KEY = "patient_id"


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
        for k, code, mods, units, a, p, e, why in zip(
            keys,
            t["cpt"],
            t["modifiers"],
            t["units"],
            allowed,
            t["p_deny"],
            t["expected"],
            t["p_deny_basis"].astype(str),
            strict=True,
        ):
            lines.setdefault(k, []).append(
                {
                    "code": str(code),
                    "modifiers": str(mods),
                    "units": int(units),
                    "allowed": None if np.isnan(a) else float(a),
                    "p_deny": round(float(p), 4),
                    "p_deny_basis": why,
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
        return plot_totals(self.totals, list(self.payers), title=title, show_values=show_values)


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


#: :func:`payer_policies` with a session's own copay or coinsurance, by the identity of the
#: policies and the plan values: the same policy objects come back for the same inputs, so the
#: engine's tables keyed by policy identity are built once, not on every redraw.
_PLAN_POLICIES: dict[tuple, tuple[tuple, dict[str, PayerPolicy]]] = {}


def payer_policies(
    payers: Mapping[str, PayerPolicy] | str | Path,
    payer_ids: Sequence[str] | None,
    session: Session,
) -> dict[str, PayerPolicy]:
    """The policies compared, in order, with the session's copay and coinsurance applied.

    Parameters
    ----------
    payers
        Payer policies, or the path of a payers YAML.
    payer_ids
        Only these payers, in this order (a string is read as comma-separated ids).
    session
        The session whose plan state (``copay``, ``coinsurance``) overrides the policies'.

    Returns
    -------
    dict
        Policies by payer id. Called again with the same policy objects and plan values, it
        returns the same (frozen) policy objects.
    """
    pol = load_payers(payers) if isinstance(payers, (str, Path)) else dict(payers)
    if payer_ids is not None:
        if isinstance(payer_ids, str):  # "medicare,ppo_gold", e.g. from a report parameter
            payer_ids = [p.strip() for p in payer_ids.split(",") if p.strip()]
        pol = {(found := get_policy(pol, pid)).payer_id: found for pid in payer_ids}
    if not pol:
        raise InputError(
            "No payer to compare; pass payer policies (load_payers('data/sample/payers.yaml'))."
        )
    plan = tuple(
        (session.plan_value("copay", pid), session.plan_value("coinsurance", pid)) for pid in pol
    )
    if all(copay is None and coins is None for copay, coins in plan):
        return pol
    held = tuple(pol.items())
    key = (tuple((pid, id(p)) for pid, p in held), plan)
    hit = _PLAN_POLICIES.get(key)
    if hit is not None and all(a is b for (_, a), (_, b) in zip(hit[0], held, strict=True)):
        return dict(hit[1])
    out = {}
    for (pid, p), (copay, coins) in zip(held, plan, strict=True):
        if copay is not None or coins is not None:
            cs = dataclasses.replace(
                p.cost_share,
                copay=p.cost_share.copay if copay is None else float(copay),
                coinsurance=p.cost_share.coinsurance if coins is None else float(coins),
            )
            p = dataclasses.replace(p, cost_share=cs)
        out[pid] = p
    if len(_PLAN_POLICIES) >= 32:
        _PLAN_POLICIES.pop(next(iter(_PLAN_POLICIES)))
    _PLAN_POLICIES[key] = (held, out)
    return dict(out)


def compare(
    session: Session,
    payers: Mapping[str, PayerPolicy] | str | Path,
    *,
    payer_ids: Sequence[str] | None = None,
    reference: Reference | None = None,
    denial_model: Any | None = None,
    risk: Any | None = None,
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
    risk
        The practice's learned risk (:func:`analytics.scenarios.learned_risk` of its
        history): the chance of denial of every line no edit denies, with its basis in words
        ("learned from 276 Gold PPO 97124 lines, 26 denied"; "payer prior, no history" for a
        payer without remittances). It takes the place of ``denial_model``.

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
    87.44
    """
    ref = reference or load_reference()
    denial_model = risk if risk is not None else denial_model
    pol = payer_policies(payers, payer_ids, session)
    alts = alternatives(session, reference=ref, payers=pol)
    frame, meta = scenario_lines(session, alts, pol, ref)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Every synthetic visit has its own patient id, on one date with one provider: the
        # patient id alone names the visit, so the engine codes one column instead of three.
        out = evaluate(frame, pol, ref, visit_keys=(_VISIT_KEY,), denial_model=denial_model)
    _reissue(caught, out)
    table, sums = line_table_and_sums(out, meta, alts, pol)
    totals = totals_of_lines(sums, alts, pol)
    return Comparison(
        session=session, alternatives=tuple(alts), payers=tuple(pol), table=table, totals=totals
    )


def _reissue(caught: list[warnings.WarningMessage], out: pd.DataFrame) -> None:
    """Pass the engine's warnings on, with one unpriced-code warning naming payer and code."""
    for w in caught:
        if not issubclass(w.category, UnpricedCodeWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    is_unpriced = (out["disposition"] == "unpriced").to_numpy(dtype=bool, na_value=False)
    if not is_unpriced.any():
        return
    unpriced = out.loc[is_unpriced, ["payer_id", "cpt"]].drop_duplicates()
    if len(unpriced):
        which = ", ".join(f"{c} for {p}" for p, c in unpriced.itertuples(index=False))
        warnings.warn(
            f"No rate for {which}: those lines are shown as 'unpriced' with $0 expected. Add the "
            "payer's rate under fee.rates in payers.yaml to price them.",
            UnpricedCodeWarning,
            stacklevel=3,
        )
