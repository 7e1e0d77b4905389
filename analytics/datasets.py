"""A synthetic massage and manual-therapy practice whose denial mechanisms are known.

:func:`generate_practice` builds, from a seed, everything a real practice would hand the
toolkit, plus the truth a real practice never has:

* providers (licensed massage therapists, a physical therapist, a chiropractor) and
  patients with pseudonymous ids, a payer, ICD-10-CM diagnoses (FACTS 9), a prescription
  on file or not, and visits spread over the months;
* sessions mixing 97124, 97140, 97112, 97110 and 97010 with the minutes of each code,
  modifiers (GP, 59, XS), charges from the practice's fee sheet, and the days each claim
  waited before submission (mostly days, a tail past timely filing);
* adjudication by the rules engine (:func:`analytics.pipeline.evaluate`): the engine's
  denials are certain (probability 1), and on top of them random denials whose probability
  is a known logistic-additive function of what a biller can see (payer, code, modifiers,
  other codes of the visit, units, diagnosis group, prescription, visit number against the
  payer's limit, days to submission, provider type). The table of terms is
  :attr:`Practice.mechanisms`; each denied line carries the mechanism that denied it
  (bundling, medical necessity, visit cap, no prescription, late filing, provider type ...);
* one payer underpaying its contract on some codes in some months (recorded in the truth);
* 835 remittances (005010X221A1), one file per payer per week of payment.

Nothing here names a person: patients are ``P`` + digits, members ``M`` + digits, and
providers are known by id, type and a synthetic NPI.

``python -m analytics sample --out DIR --seed N --visits N [--no-835]`` (the command is
in :mod:`analytics.cli.sample`) writes::

    DIR/service_lines.csv            the practice's charge export (one row per code performed)
    DIR/remittances/<payer>_<YYYY-Www>.835
    DIR/truth/line_truth.csv         true denial probability and mechanism of every line
    DIR/truth/denial_mechanisms.csv  the logistic terms the random denials follow
    DIR/practice.yaml                practice name, locality, fee sheet, seed, visits

With ``--no-835`` (large sets) the tables are written as Parquet and no 835 is written.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from analytics._files import write_csv
from analytics.denials import (
    BUNDLE_STATES,
    NO_PRESCRIPTION,
    PRESCRIPTION,
    filing_band,
    units_band,
    visit_band,
)
from analytics.exceptions import InputError
from analytics.payers import PayerPolicy, load_payers, payer_table
from analytics.pipeline import evaluate
from analytics.pricing import price_lines, split_cost_share
from analytics.refdata import Reference, load_reference
from analytics.units import compute_units

__all__ = [
    "Practice",
    "generate_practice",
    "write_practice",
    "write_remittances",
    "LINE_COLUMNS",
    "FEE_SHEET",
]

#: Columns of the practice's charge export (``service_lines.csv``), in order.
LINE_COLUMNS = (
    "patient_id",
    "service_date",
    "provider_id",
    "provider_type",
    "payer_id",
    "cpt",
    "minutes",
    "modifiers",
    "dx_codes",
    "charge",
    "prescription_on_file",
    "prior_auth",
    "visits_before",
    "submission_date",
    "claim_id",
    "line_id",
)

PRACTICE_NAME = "Harbor Street Massage and Rehab (synthetic)"
PRACTICE_LOCALITY = "00000-00"
#: The practice's fee sheet: dollars charged per billed unit.
FEE_SHEET = {"97010": 28.00, "97110": 76.00, "97112": 82.00, "97124": 72.00, "97140": 78.00}

_DEFAULT_PAYERS = Path(__file__).resolve().parents[1] / "data" / "sample" / "payers.yaml"
_PTYPES = ("lmt", "pt", "dc")
_DX_GROUPS = ("back", "neck", "myalgia_spasm", "headache", "injury")

# ---------------------------------------------------------------------------------------
# Payer profiles. Mix, episodes and risk terms are set per profile, so any payers.yaml
# works: each payer gets the profile of its kind (a commercial plan with a visit limit is
# "capped").
# ---------------------------------------------------------------------------------------
_PROFILE_MIX = {
    "medicare": 0.16,
    "commercial": 0.30,
    "capped": 0.20,
    "auto": 0.14,
    "workers_comp": 0.08,
    "cash": 0.12,
}
_PROFILE_PTYPE = {  # lmt, pt, dc
    "medicare": (0.03, 0.85, 0.12),
    "commercial": (0.55, 0.25, 0.20),
    "capped": (0.45, 0.30, 0.25),
    "auto": (0.50, 0.20, 0.30),
    "workers_comp": (0.25, 0.60, 0.15),
    "cash": (0.90, 0.00, 0.10),
}
_PROFILE_DX = {  # back, neck, myalgia_spasm, headache, injury
    "medicare": (0.45, 0.17, 0.23, 0.08, 0.07),
    "commercial": (0.35, 0.20, 0.25, 0.12, 0.08),
    "capped": (0.35, 0.20, 0.25, 0.12, 0.08),
    "auto": (0.10, 0.10, 0.03, 0.02, 0.75),
    "workers_comp": (0.20, 0.02, 0.08, 0.00, 0.70),
    "cash": (0.30, 0.20, 0.35, 0.15, 0.00),
}
_PROFILE_RX = {
    "medicare": 0.88,
    "commercial": 0.65,
    "capped": 0.70,
    "auto": 0.93,
    "workers_comp": 0.93,
    "cash": 0.20,
}
_PROFILE_AUTH = {"workers_comp": 0.82}
_PROFILE_EPISODE = {
    "medicare": 10.0,
    "commercial": 7.0,
    "capped": 9.0,
    "auto": 12.0,
    "workers_comp": 12.0,
    "cash": 5.0,
}
# Days from submission to the payer's adjudication, low and high.
_PROFILE_PAYLAG = {
    "medicare": (10, 18),
    "commercial": (14, 30),
    "capped": (14, 35),
    "auto": (18, 45),
    "workers_comp": (21, 50),
    "cash": (0, 0),
}
_CLAIM_FILING = {
    "medicare": "MB",
    "commercial": "12",
    "capped": "HM",
    "auto": "AM",
    "workers_comp": "WC",
    "cash": "09",
}
# Modifier on 97124 when 97140 is billed the same visit: none, 59, XS.
_PROFILE_NCCI_MOD = {
    "medicare": (0.15, 0.60, 0.25),
    "commercial": (0.15, 0.35, 0.50),
    "capped": (0.20, 0.50, 0.30),
    "auto": (0.50, 0.35, 0.15),
    "workers_comp": (0.20, 0.50, 0.30),
    "cash": (1.0, 0.0, 0.0),
}


def _profile(policy: PayerPolicy) -> str:
    if policy.kind == "medicare":
        return "medicare"
    if policy.kind in ("commercial", "medicaid"):
        return "capped" if policy.visit_limit else "commercial"
    return policy.kind  # auto, workers_comp, cash


# ---------------------------------------------------------------------------------------
# Diagnoses (FACTS 9). Injury codes get their 7th character per visit: A on the patient's
# first visit, D (subsequent encounter, the healing phase) afterwards.
# ---------------------------------------------------------------------------------------
_DX_CODES = {
    "back": ("M54.50", "M54.51", "M54.59", "M54.41", "M54.42", "M54.6"),
    "neck": ("M54.2",),
    "myalgia_spasm": ("M79.10", "M79.12", "M79.18", "M79.7", "M62.830", "M62.831", "M62.838"),
    "headache": ("G44.209",),
    "injury": ("S13.4XX", "S16.1XX", "S33.5XX", "S39.012"),
}
_DX_SECONDARY = ("G89.29", "M62.81", "M25.511", "M25.512", "M54.2", "M62.830")

# ---------------------------------------------------------------------------------------
# Sessions: codes with a range of direct minutes (None = untimed), and how often each
# provider type delivers each session.
# ---------------------------------------------------------------------------------------
_SESSIONS = (
    # name, components, weight for lmt, pt, dc
    ("massage 60", (("97124", 53, 62),), (0.33, 0.0, 0.0)),
    ("massage 45", (("97124", 38, 47),), (0.12, 0.0, 0.0)),
    ("massage 30", (("97124", 23, 32),), (0.05, 0.0, 0.0)),
    ("massage 75", (("97124", 68, 77),), (0.05, 0.0, 0.0)),
    ("massage + manual", (("97124", 28, 35), ("97140", 15, 25)), (0.20, 0.0, 0.0)),
    ("massage + hot pack", (("97124", 45, 55), ("97010", None, None)), (0.09, 0.0, 0.0)),
    (
        "massage + manual + hot pack",
        (("97124", 25, 32), ("97140", 15, 22), ("97010", None, None)),
        (0.10, 0.0, 0.0),
    ),
    ("manual", (("97140", 23, 40),), (0.06, 0.0, 0.0)),
    (
        "exercise + manual + hot pack",
        (("97110", 20, 32), ("97140", 10, 18), ("97010", None, None)),
        (0.0, 0.35, 0.0),
    ),
    (
        "neuro + exercise + manual",
        (("97112", 15, 25), ("97110", 15, 25), ("97140", 8, 15)),
        (0.0, 0.25, 0.0),
    ),
    ("neuro + manual", (("97112", 20, 30), ("97140", 15, 22)), (0.0, 0.20, 0.0)),
    (
        "massage + manual + exercise",
        (("97124", 15, 22), ("97140", 10, 15), ("97110", 15, 25)),
        (0.0, 0.20, 0.0),
    ),
    ("manual + neuro", (("97140", 15, 22), ("97112", 10, 18)), (0.0, 0.0, 0.35)),
    ("manual + hot pack", (("97140", 15, 25), ("97010", None, None)), (0.0, 0.0, 0.35)),
    (
        "massage + manual + hot pack (dc)",
        (("97124", 15, 22), ("97140", 12, 18), ("97010", None, None)),
        (0.0, 0.0, 0.30),
    ),
)

# ---------------------------------------------------------------------------------------
# The true random-denial model: logit p = sum of the terms that apply to a line. Each term
# is (feature, level, feature, level, log-odds, mechanism); features are those a biller
# can see before submission. "payer" levels are profiles here and payer ids in
# Practice.mechanisms. Baseline terms carry the payer's residual denials (missing
# information, eligibility, coordination of benefits).
# ---------------------------------------------------------------------------------------
_BNONE, _B59, _BX = BUNDLE_STATES[1:]
_NO_RX = NO_PRESCRIPTION
_TERMS: tuple[tuple[str, str, str | None, str | None, float, str], ...] = (
    ("payer", "medicare", None, None, -3.9, "baseline"),
    ("payer", "commercial", None, None, -3.8, "baseline"),
    ("payer", "capped", None, None, -3.9, "baseline"),
    ("payer", "auto", None, None, -3.6, "baseline"),
    ("payer", "workers_comp", None, None, -3.6, "baseline"),
    # payer-specific code policies
    ("payer", "auto", "cpt", "97010", 1.2, "bundling"),
    ("payer", "commercial", "cpt", "97112", 0.5, "medical_necessity"),
    ("payer", "medicare", "cpt", "97124", 0.6, "medical_necessity"),
    ("payer", "workers_comp", "cpt", "97124", 0.7, "medical_necessity"),
    ("payer", "capped", "cpt", "97140", 0.3, "medical_necessity"),
    # payer-specific bundling of 97124 with 97140 (FACTS 4.3: some payers deny the column-2
    # code even with 59)
    ("payer", "auto", "bundle", _BNONE, 1.5, "bundling"),
    ("payer", "auto", "bundle", _B59, 0.6, "bundling"),
    ("payer", "auto", "bundle", _BX, 0.4, "bundling"),
    ("payer", "medicare", "bundle", _B59, 0.4, "bundling"),
    ("payer", "medicare", "bundle", _BX, 0.2, "bundling"),
    ("payer", "commercial", "bundle", _BX, 0.8, "bundling"),
    ("payer", "capped", "bundle", _B59, 1.3, "bundling"),
    ("payer", "capped", "bundle", _BX, 1.0, "bundling"),
    ("payer", "workers_comp", "bundle", _B59, 0.9, "bundling"),
    ("payer", "workers_comp", "bundle", _BX, 0.5, "bundling"),
    # medical necessity by diagnosis group; injuries billed to health plans look like
    # another carrier's liability
    ("payer", "medicare", "dx", "headache", 1.1, "medical_necessity"),
    ("payer", "commercial", "dx", "headache", 1.2, "medical_necessity"),
    ("payer", "capped", "dx", "headache", 1.4, "medical_necessity"),
    ("payer", "auto", "dx", "headache", 0.8, "medical_necessity"),
    ("payer", "medicare", "dx", "myalgia_spasm", 0.7, "medical_necessity"),
    ("payer", "capped", "dx", "myalgia_spasm", 0.5, "medical_necessity"),
    ("payer", "commercial", "dx", "myalgia_spasm", 0.3, "medical_necessity"),
    ("payer", "auto", "dx", "back", 0.6, "medical_necessity"),
    ("payer", "auto", "dx", "myalgia_spasm", 0.9, "medical_necessity"),
    ("payer", "auto", "dx", "neck", 0.3, "medical_necessity"),
    ("payer", "workers_comp", "dx", "back", 0.6, "medical_necessity"),
    ("payer", "workers_comp", "dx", "myalgia_spasm", 0.9, "medical_necessity"),
    ("payer", "medicare", "dx", "injury", 0.7, "cob"),
    ("payer", "commercial", "dx", "injury", 0.9, "cob"),
    ("payer", "capped", "dx", "injury", 0.9, "cob"),
    ("cpt", "97112", "dx", "myalgia_spasm", 0.6, "medical_necessity"),
    ("cpt", "97110", "dx", "headache", 0.7, "medical_necessity"),
    # visit number against the limit: visits used elsewhere exhaust the cap first
    ("payer", "capped", "visit", "51-80% of the visit limit", 0.4, "benefit_max"),
    ("payer", "capped", "visit", "81-100% of the visit limit", 1.5, "benefit_max"),
    ("payer", "medicare", "visit", "visits 13-24 of the year", 0.3, "medical_necessity"),
    ("payer", "medicare", "visit", "visit 25 or later in the year", 0.8, "medical_necessity"),
    ("payer", "commercial", "visit", "visits 13-24 of the year", 0.4, "medical_necessity"),
    ("payer", "commercial", "visit", "visit 25 or later in the year", 1.0, "medical_necessity"),
    ("payer", "auto", "visit", "visit 25 or later in the year", 0.9, "benefit_max"),
    ("payer", "workers_comp", "visit", "visits 13-24 of the year", 0.3, "authorization"),
    ("payer", "workers_comp", "visit", "visit 25 or later in the year", 0.7, "authorization"),
    # prescription or referral missing where the engine does not require one
    ("payer", "medicare", "rx", _NO_RX, 0.9, "prescription_referral"),
    ("payer", "commercial", "rx", _NO_RX, 0.5, "prescription_referral"),
    ("payer", "capped", "rx", _NO_RX, 1.0, "prescription_referral"),
    ("cpt", "97124", "rx", _NO_RX, 0.5, "prescription_referral"),
    # late filing: the payer's receipt date runs later than the practice's submission
    ("filing", "26-50% of the filing limit", None, None, 0.2, "timely_filing"),
    ("filing", "51-75% of the filing limit", None, None, 0.8, "timely_filing"),
    ("filing", "76-100% of the filing limit", None, None, 1.7, "timely_filing"),
    # rendering provider type not credentialed with some plans
    ("payer", "commercial", "ptype", "lmt", 0.9, "provider_eligibility"),
    ("payer", "workers_comp", "ptype", "lmt", 1.1, "provider_eligibility"),
    ("payer", "capped", "ptype", "lmt", 0.5, "provider_eligibility"),
    ("payer", "auto", "ptype", "dc", 0.4, "provider_eligibility"),
    ("payer", "medicare", "ptype", "dc", 0.8, "provider_eligibility"),
    ("cpt", "97112", "ptype", "dc", 0.6, "provider_eligibility"),
    # many units on one line
    ("payer", "capped", "units", "4+ units", 0.9, "frequency"),
    ("payer", "commercial", "units", "4+ units", 0.7, "frequency"),
    ("payer", "auto", "units", "4+ units", 0.4, "frequency"),
)
# How the baseline log-odds split among residual causes, per profile.
_BASELINE_SPLIT = {
    "auto": (("missing_info", 0.5), ("cob", 0.3), ("eligibility", 0.2)),
    "workers_comp": (("missing_info", 0.5), ("cob", 0.3), ("eligibility", 0.2)),
}
_BASELINE_DEFAULT = (("missing_info", 0.6), ("eligibility", 0.4))
_BASELINE_WEIGHT = 1.0  # weight of the baseline when choosing which mechanism denied a line
# CARC (and RARC) a payer sends for each mechanism of a random denial.
_MECHANISM_CARC = {
    "bundling": ("236", "M80"),
    "medical_necessity": ("50", ""),
    "benefit_max": ("119", ""),
    "prescription_referral": ("174", ""),
    "timely_filing": ("29", ""),
    "provider_eligibility": ("185", ""),
    "frequency": ("151", "N362"),
    "authorization": ("198", ""),
    "cob": ("22", ""),
    "missing_info": ("16", "MA130"),
    "eligibility": ("27", ""),
}
_MECHANISM_CARC_BY_PROFILE = {("capped", "prescription_referral"): ("165", "")}
_MECHANISMS = tuple(_MECHANISM_CARC)

# The underpaying payer: a commercial contract at a percent of Medicare paid at 100% of
# Medicare instead, on two codes, for three months of service.
_UNDERPAID_CODES = ("97140", "97112")
_UNDERPAID_MONTHS = (3, 4, 5)  # months after the start of the data


@dataclasses.dataclass(frozen=True)
class Practice:
    """A generated practice: what it exports, how its payers adjudicated, and the truth.

    Attributes
    ----------
    lines
        The practice's charge export, columns :data:`LINE_COLUMNS` (one row per code
        performed; ``submission_date`` is empty for claims not yet submitted at ``as_of``).
    adjudicated
        The rules engine's output for every line (:func:`analytics.pipeline.evaluate`, run
        with each claim's eventual submission date; ``allowed`` is the contract amount) plus
        the payer's actual decision: ``denied``, ``random_denied``, ``underpaid``,
        ``remit_disposition``/``remit_carc``/``remit_group_code``/``remit_rarc``,
        ``remit_allowed`` (what the payer allowed), the cost share on it
        (``remit_deductible``, ``remit_copay``, ``remit_coinsurance``, ``remit_patient``),
        ``remit_paid``, ``submitted``, ``adjudicated`` (a remittance exists at ``as_of``)
        and ``payment_date``.
    truth
        One row per line: ``p_true`` (1 for the engine's denials, the logistic
        probability otherwise, 0 for self-pay and unbilled lines), ``p_random`` (the
        logistic part alone), ``source`` (``rule``/``random``/``self_pay``/``not_billed``),
        ``denied``, ``mechanism`` (the denial category of a denied line, empty otherwise),
        ``main_risk`` (for lines open to random denial, the mechanism with the largest
        log-odds term), ``carc``/``group_code`` of the denial, ``visit_number``,
        ``lag_days``, and the underpayment columns (``contract_allowed``,
        ``paid_allowed``, ``underpaid``, ``underpaid_amount``).
    providers, patients
        Rosters (pseudonymous; no names).
    mechanisms
        The logistic terms of the random denials, by payer id.
    payers
        The payer policies used.
    settings
        Seed, visits, start, months, ``as_of``, practice name, locality and fee sheet.
    payers_text
        The payers.yaml text the policies came from (written beside the files), if any.
    """

    lines: pd.DataFrame
    adjudicated: pd.DataFrame
    truth: pd.DataFrame
    providers: pd.DataFrame
    patients: pd.DataFrame
    mechanisms: pd.DataFrame
    payers: Mapping[str, PayerPolicy]
    settings: Mapping[str, Any]
    payers_text: str | None = None

    def write(
        self, out: str | Path, *, remittances: bool = True, parquet: bool = False
    ) -> list[Path]:
        """Write the practice's files under ``out`` (see :func:`write_practice`)."""
        return write_practice(self, out, remittances=remittances, parquet=parquet)


# ---------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One category per row from the probability table ``probs[rows]`` (inverse CDF)."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(rows))
    return (u[:, None] > cum[rows]).sum(axis=1)


def _npi(base: int) -> str:
    """A 10-digit NPI with a valid Luhn check digit (prefix 80840), for synthetic providers."""
    digits = f"{base:09d}"
    total = 24  # the constant contributed by the 80840 prefix
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return digits + str((10 - total % 10) % 10)


def _prices_code(policy: PayerPolicy, cpt: str) -> bool:
    """Whether the engine can reach a decision on ``cpt`` for this payer (a rate, an
    exclusion, or Medicare status rules)."""
    if cpt in policy.fee.rates or cpt in policy.not_covered or policy.medicare_status:
        return True
    return policy.fee.basis not in ("medicare", "percent_of_medicare")


def _roster(n_visits: int, months: int) -> pd.DataFrame:
    per_year = n_visits * 12 / max(months, 1)
    counts = {
        "lmt": max(3, math.ceil(per_year * 0.5 / 1200)),
        "pt": max(1, math.ceil(per_year * 0.3 / 1500)),
        "dc": max(1, math.ceil(per_year * 0.2 / 1500)),
    }
    rows = []
    for ptype in _PTYPES:
        for k in range(counts[ptype]):
            rows.append({"provider_id": f"{ptype.upper()}{k + 1}", "provider_type": ptype})
    out = pd.DataFrame(rows)
    out["npi"] = [_npi(150_000_000 + 7_919 * i) for i in range(len(out))]
    out["label"] = out["provider_type"].map(
        {"lmt": "licensed massage therapist", "pt": "physical therapist", "dc": "chiropractor"}
    )
    return out


def _default_payers(payers) -> tuple[dict[str, PayerPolicy], str | None]:
    """Policies and, when they come from YAML, its text (copied beside the generated files)."""
    if payers is None:
        if not _DEFAULT_PAYERS.exists():
            raise InputError(
                f"No payer policies given and {_DEFAULT_PAYERS} is absent; pass payers=... "
                "(a payers.yaml path or load_payers(...))."
            )
        payers = _DEFAULT_PAYERS
    if isinstance(payers, (str, Path)):
        return load_payers(payers), Path(payers).read_text()
    if isinstance(payers, Mapping) and all(isinstance(v, PayerPolicy) for v in payers.values()):
        return dict(payers), None
    return load_payers(payers), yaml.safe_dump(dict(payers), sort_keys=False)


#: Stages generate_practice reports to its ``progress`` callback.
GENERATION_STAGES = 9


def generate_practice(
    n_visits: int,
    seed: int,
    *,
    payers: str | Path | Mapping[str, Any] | None = None,
    start: str = "2025-03-01",
    months: int = 12,
    reference: Reference | None = None,
    progress: Callable[..., None] | None = None,
) -> Practice:
    """Generate a synthetic practice with known denial truth.

    Parameters
    ----------
    n_visits
        Number of visits (each visit is one claim of 1-3 service lines; about 2.1 lines per
        visit on average).
    seed
        Seed of ``numpy.random.default_rng``: the same arguments give the same practice.
    payers
        Payer policies (a payers.yaml path, a parsed mapping or ``load_payers`` output);
        default ``data/sample/payers.yaml``.
    start, months
        First day and length of the service window. Claims are submitted and paid as of the
        window's last day (``as_of``); later ones stay open.
    reference
        Reference data for the rules engine (default: the shipped extracts).
    progress
        Called as ``progress(1, stage=...)`` as each of the generation's stages ends (an
        :class:`analytics.progress.Progress` draws it on a terminal).

    Returns
    -------
    Practice

    Examples
    --------
    >>> p = generate_practice(200, seed=1)
    >>> list(p.lines.columns) == list(LINE_COLUMNS)
    True
    >>> bool(p.truth["p_true"].between(0, 1).all())
    True
    """
    if n_visits < 1 or months < 1:
        raise InputError(f"n_visits and months must be at least 1 (got {n_visits} and {months}).")
    ref = reference or load_reference()
    pol, payers_text = _default_payers(payers)
    # One generator for every stage: the stages draw from it in this order, so a seed gives
    # the same practice byte for byte.
    rng = np.random.default_rng(seed)
    step = progress or (lambda *_, **__: None)
    step(0, stage="patients", total=GENERATION_STAGES)
    t0, window, as_of = _service_window(start, months, ref)
    mix = _payer_mix(pol)
    providers = _roster(n_visits, months)
    pat = _patients(rng, n_visits, window, mix, providers)
    step(1, stage="visits")
    vis = _visits(rng, pat, t0, window)
    step(1, stage="claim lines")
    cl = _claim_lines(rng, pat, vis, mix, pol)
    mods = _modifiers(pat, vis, cl, mix)
    step(1, stage="diagnoses")
    dx = _diagnoses(pat, vis, cl)
    step(1, stage="charge export")
    export = _charge_export(t0, pat, vis, cl, mods, dx, mix, providers)
    lines = export.lines
    priced = _fee_sheet_charges(lines, cl, mix, pol, ref)
    lines["charge"] = priced.charge
    step(1, stage="adjudicating")
    engine = _adjudicate(lines, priced, pat, vis, cl, export, mix, t0, pol, ref)
    step(1, stage="denial odds")
    odds = _denial_odds(pat, vis, cl, mods, engine, mix, ref)
    under = _underpayment(engine, odds, cl, export, mix, t0, pol)
    step(1, stage="payer decisions")
    decision = _payer_decision(lines, priced, engine, odds, under, vis, cl, export, mix, as_of, pol, ref)
    lines["submission_date"] = lines["submission_date"].where(decision.submitted)
    step(1, stage="truth table")
    truth = _truth_table(lines, engine, odds, under, decision, vis, cl, ref)
    step(1)
    return Practice(
        lines=lines,
        adjudicated=decision.adj,
        truth=truth,
        providers=providers,
        patients=_patient_table(pat, dx, export, mix),
        mechanisms=_mechanism_table(mix.payer_ids, mix.profiles),
        payers=pol,
        settings=_settings(seed, n_visits, t0, months, as_of, under.under_payer, pol),
        payers_text=payers_text,
    )


# The stages of generate_practice, in the order they run. Arrays are named by what they
# index: ``p_`` one entry per patient, ``v_`` per visit, ``l_`` per service line, ``c_`` per
# session component (a code of a session in _SESSIONS).


def _service_window(start: str, months: int, ref: Reference) -> tuple[pd.Timestamp, int, pd.Timestamp]:
    """First day, length in days and last day (``as_of``) of the service window.

    Raises
    ------
    InputError
        The window reaches a year the reference data does not price.
    """
    t0 = pd.Timestamp(start).normalize()
    t_end = (t0 + pd.DateOffset(months=months)).normalize()
    window = int((t_end - t0).days)
    as_of = t_end - pd.Timedelta(days=1)
    years = set(range(t0.year, as_of.year + 1))
    priced = set(ref.rvu["year"]) & set(ref.gpci["year"]) & set(ref.conversion_factors["year"])
    if years - priced:
        raise InputError(
            f"The service window {t0.date()} to {as_of.date()} reaches {sorted(years - priced)}, but the "
            f"reference data prices only {sorted(priced)}. Choose start= and months= within those years, "
            "or pass reference=Reference.load(pprrvu=..., gpci=...) with that year's CMS files."
        )
    return t0, window, as_of


@dataclasses.dataclass(frozen=True)
class _PayerMix:
    """The payers in id order, the profile of each, and the share of patients each gets."""

    payer_ids: np.ndarray
    profiles: np.ndarray
    prof_names: list[str]
    payer_prof: np.ndarray  # payer -> profile index
    mix: np.ndarray


def _payer_mix(pol: Mapping[str, PayerPolicy]) -> _PayerMix:
    payer_ids = np.array(sorted(pol), dtype=object)
    profiles = np.array([_profile(pol[p]) for p in payer_ids], dtype=object)
    prof_names = list(_PROFILE_MIX)
    payer_prof = np.array([prof_names.index(x) for x in profiles])  # payer -> profile index
    mix = np.array([_PROFILE_MIX[pr] / (profiles == pr).sum() for pr in profiles])
    mix = mix / mix.sum()
    return _PayerMix(payer_ids, profiles, prof_names, payer_prof, mix)


@dataclasses.dataclass(frozen=True)
class _Patients:
    """The patients: payer, visits, provider, diagnoses, prescription and visit cadence."""

    n_pat: int
    p_payer: np.ndarray
    p_prof: np.ndarray
    counts: np.ndarray  # visits per patient
    p_ptype: np.ndarray
    p_dx: np.ndarray
    p_rx: np.ndarray
    p_auth: np.ndarray
    p_before: np.ndarray
    p_provider: np.ndarray
    p_primary: np.ndarray
    has_second: np.ndarray
    p_second: np.ndarray
    p_member: np.ndarray
    p_number: np.ndarray
    cadence: np.ndarray
    p_start: np.ndarray


def _patients(
    rng: np.random.Generator, n_visits: int, window: int, payers: _PayerMix, providers: pd.DataFrame
) -> _Patients:
    payer_ids, prof_names, payer_prof, mix = payers.payer_ids, payers.prof_names, payers.payer_prof, payers.mix
    n_pat = max(1, int(round(n_visits / 8.0)))
    p_payer = rng.choice(len(payer_ids), size=n_pat, p=mix)
    p_prof = payer_prof[p_payer]
    scale = np.array([_PROFILE_EPISODE[x] for x in prof_names])[p_prof]
    weight = rng.gamma(1.3, scale)
    cap = max(1, window // 2)
    counts = rng.multinomial(n_visits, weight / weight.sum())
    for _ in range(50):  # nobody visits more often than every other day
        excess = int(np.clip(counts - cap, 0, None).sum())
        if not excess:
            break
        counts = np.minimum(counts, cap)
        room = (counts < cap) * weight
        counts += rng.multinomial(excess, room / room.sum())
    p_ptype = _pick(rng, np.array([_PROFILE_PTYPE[x] for x in prof_names]), p_prof)
    p_dx = _pick(rng, np.array([_PROFILE_DX[x] for x in prof_names]), p_prof)
    p_rx = rng.random(n_pat) < np.array([_PROFILE_RX[x] for x in prof_names])[p_prof]
    p_auth = rng.random(n_pat) < np.array([_PROFILE_AUTH.get(x, 0.0) for x in prof_names])[p_prof]
    # Visits already used this year (other clinics, earlier episodes) for some patients.
    p_before = np.where(rng.random(n_pat) < 0.25, rng.poisson(5.0, n_pat), 0)
    type_ix = providers["provider_type"].map({t: i for i, t in enumerate(_PTYPES)}).to_numpy()
    u = rng.random(n_pat)
    p_provider = np.zeros(n_pat, dtype=np.int64)
    for ti in range(len(_PTYPES)):
        roster = np.flatnonzero(type_ix == ti)
        sel = p_ptype == ti
        p_provider[sel] = roster[(u[sel] * len(roster)).astype(np.int64)]
    n_codes = np.array([len(_DX_CODES[g]) for g in _DX_GROUPS])
    p_primary = (rng.random(n_pat) * n_codes[p_dx]).astype(np.int64)
    has_second = rng.random(n_pat) < 0.5
    p_second = rng.integers(0, len(_DX_SECONDARY), n_pat)
    p_member = rng.permutation(n_pat) + 10_000_001
    p_number = rng.permutation(n_pat) + 100_001
    cadence = np.array([3.5, 7.0, 10.0, 14.0])[
        _pick(rng, np.array([[0.2, 0.45, 0.2, 0.15]]), np.zeros(n_pat, dtype=np.int64))
    ]
    usable = max(window - 7, 1)
    cadence = np.minimum(cadence, usable / np.maximum(counts, 1))
    p_start = rng.random(n_pat) * np.maximum(usable - counts * cadence, 0)
    return _Patients(
        n_pat, p_payer, p_prof, counts, p_ptype, p_dx, p_rx, p_auth, p_before, p_provider, p_primary,
        has_second, p_second, p_member, p_number, cadence, p_start,
    )


@dataclasses.dataclass(frozen=True)
class _Visits:
    """The visits: patient, day, session delivered, submission lag and the per-visit draws."""

    v_pat: np.ndarray
    n_v: int
    k: np.ndarray  # visit index within patient
    offset: np.ndarray  # days from the first day of the window
    v_session: np.ndarray
    lag: np.ndarray  # days from service to submission
    v_paylag: np.ndarray
    v_ncci: np.ndarray
    v_gp: np.ndarray


def _visits(rng: np.random.Generator, pat: _Patients, t0: pd.Timestamp, window: int) -> _Visits:
    counts, cadence, p_start, p_ptype = pat.counts, pat.cadence, pat.p_start, pat.p_ptype
    v_pat = np.repeat(np.arange(pat.n_pat), counts)
    n_v = len(v_pat)
    k = np.arange(n_v) - (np.cumsum(counts) - counts)[v_pat]  # visit index within patient
    offset = np.floor(p_start[v_pat] + k * cadence[v_pat] + rng.integers(0, 3, n_v)).astype(
        np.int64
    )
    offset = offset + ((t0.day_of_week + offset) % 7 == 6)  # Sunday sessions move to Monday
    # strictly increasing per patient, with room left for the patient's remaining visits
    big = np.int64(window + 10)
    offset = np.maximum.accumulate(offset - k + v_pat * big) - v_pat * big + k
    offset = np.minimum(offset, (window - 1) - (counts[v_pat] - 1 - k))
    sess_w = np.array([s[2] for s in _SESSIONS]).T  # provider types x sessions
    v_session = _pick(rng, sess_w / sess_w.sum(axis=1, keepdims=True), p_ptype[v_pat])
    # submission lag: mostly days, some weeks, a tail past timely filing
    mix_u = rng.random(n_v)
    lag = np.where(
        mix_u < 0.72,
        1 + rng.geometric(0.35, n_v),
        np.where(
            mix_u < 0.90,
            rng.integers(8, 46, n_v),
            np.where(mix_u < 0.975, rng.integers(30, 121, n_v), rng.integers(90, 421, n_v)),
        ),
    )
    v_paylag = rng.random(n_v)
    v_ncci = rng.random(n_v)
    v_gp = rng.random(n_v)
    return _Visits(v_pat, n_v, k, offset, v_session, lag, v_paylag, v_ncci, v_gp)


@dataclasses.dataclass(frozen=True)
class _ClaimLines:
    """The service lines, one per session component, in claim order."""

    c_cpt: np.ndarray
    c_timed: np.ndarray
    n_l: int
    l_visit: np.ndarray
    l_comp: np.ndarray
    l_pos: np.ndarray  # position of the line on its claim
    l_minutes: np.ndarray
    l_u_deny: np.ndarray
    l_u_mech: np.ndarray
    l_pat: np.ndarray
    l_payer: np.ndarray
    l_prof: np.ndarray
    cpt_names: np.ndarray
    l_cpt: np.ndarray
    v_provider: np.ndarray
    v_rank: np.ndarray  # claim number - 1 of each visit


def _claim_lines(
    rng: np.random.Generator, pat: _Patients, vis: _Visits, payers: _PayerMix, pol: Mapping[str, PayerPolicy]
) -> _ClaimLines:
    v_pat, n_v, v_session, offset = vis.v_pat, vis.n_v, vis.v_session, vis.offset
    p_payer, payer_ids = pat.p_payer, payers.payer_ids
    comps = [c for s in _SESSIONS for c in s[1]]
    sess_len = np.array([len(s[1]) for s in _SESSIONS])
    sess_first = np.cumsum(sess_len) - sess_len
    l_visit = np.repeat(np.arange(n_v), sess_len[v_session])
    n_l = len(l_visit)
    l_comp = sess_first[v_session[l_visit]] + (
        np.arange(n_l) - (np.cumsum(sess_len[v_session]) - sess_len[v_session])[l_visit]
    )
    c_cpt = np.array([c[0] for c in comps], dtype=object)
    c_lo = np.array([c[1] or 0 for c in comps])
    c_hi = np.array([c[2] or 0 for c in comps])
    c_timed = np.array([c[1] is not None for c in comps])
    l_minutes = rng.integers(0, 1 << 30, n_l) % (c_hi - c_lo + 1)[l_comp] + c_lo[l_comp]
    l_u_deny = rng.random(n_l)
    l_u_mech = rng.random(n_l)

    # Claim numbers follow the date of service; the practice does not bill a hot pack to a
    # payer that has no rate for it and neither excludes nor bundles it.
    v_provider = pat.p_provider[v_pat]
    v_order = np.lexsort((v_pat, v_provider, offset))
    v_rank = np.empty(n_v, dtype=np.int64)
    v_rank[v_order] = np.arange(n_v)
    no_rate = np.array([not _prices_code(pol[p], "97010") for p in payer_ids])
    hot = np.array([c == "97010" for c in c_cpt])
    keep = ~(hot[l_comp] & no_rate[p_payer[v_pat[l_visit]]])
    l_visit, l_comp = l_visit[keep], l_comp[keep]
    l_minutes, l_u_deny, l_u_mech = l_minutes[keep], l_u_deny[keep], l_u_mech[keep]
    n_l = len(l_visit)
    # lines into claim order by a counting sort (visits are contiguous, in patient order)
    size = np.bincount(l_visit, minlength=n_v)
    first_line = np.cumsum(size) - size
    l_pos = np.arange(n_l) - first_line[l_visit]
    size_r = size[v_order]
    start_r = np.empty(n_v, dtype=np.int64)
    start_r[v_order] = np.cumsum(size_r) - size_r
    dest = start_r[l_visit] + l_pos
    l_order = np.empty(n_l, dtype=np.int64)
    l_order[dest] = np.arange(n_l)
    l_visit, l_comp, l_pos = l_visit[l_order], l_comp[l_order], l_pos[l_order]
    l_minutes, l_u_deny, l_u_mech = l_minutes[l_order], l_u_deny[l_order], l_u_mech[l_order]
    l_pat = v_pat[l_visit]
    l_payer = p_payer[l_pat]
    l_prof = pat.p_prof[l_pat]
    cpt_names = np.array(sorted(set(c_cpt)), dtype=object)
    cpt_of_comp = np.searchsorted(cpt_names, c_cpt)
    l_cpt = cpt_of_comp[l_comp]
    return _ClaimLines(
        c_cpt, c_timed, n_l, l_visit, l_comp, l_pos, l_minutes, l_u_deny, l_u_mech, l_pat, l_payer, l_prof,
        cpt_names, l_cpt, v_provider, v_rank,
    )


def _modifiers(
    pat: _Patients, vis: _Visits, cl: _ClaimLines, payers: _PayerMix
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Modifiers of each line: ``pair_line`` (97124 billed with 97140), ``ncci`` (0 none,
    1 59, 2 XS on such a line), and the line's modifier text as ``mod_code`` into ``mod_names``.

    GP goes on the therapy lines of PTs and chiropractors and on Medicare lines (3% of
    Medicare visits forget it); 59 or XS on 97124 when 97140 is billed the same visit.
    """
    l_visit, l_comp, l_prof, l_pat = cl.l_visit, cl.l_comp, cl.l_prof, cl.l_pat
    prof_names = payers.prof_names
    has_140 = np.array([any(c[0] == "97140" for c in s[1]) for s in _SESSIONS])
    pair_line = (cl.c_cpt[l_comp] == "97124") & has_140[vis.v_session[l_visit]]
    mod_cum = np.cumsum(np.array([_PROFILE_NCCI_MOD[x] for x in prof_names]), axis=1)
    u_mod = vis.v_ncci[l_visit]
    ncci = (
        pair_line * ((u_mod >= mod_cum[l_prof, 0]).astype(np.int64) + (u_mod >= mod_cum[l_prof, 1]))
    ).astype(np.int64)
    medicare = l_prof == prof_names.index("medicare")
    gp = np.where(medicare, vis.v_gp[l_visit] >= 0.03, np.isin(pat.p_ptype[l_pat], [1, 2]))
    mod_code = gp * 3 + ncci
    mod_names = np.array(["", "59", "XS", "GP", "GP,59", "GP,XS"], dtype=object)
    return pair_line, ncci, mod_code, mod_names


def _diagnoses(pat: _Patients, vis: _Visits, cl: _ClaimLines) -> tuple[list, np.ndarray, np.ndarray, Any]:
    """Diagnoses of each line: ``flat`` (group, code) pairs, each patient's primary code
    ``p_code`` into them, and the line's diagnosis text as ``dx_inv`` into ``dx_text``.

    The injury 7th character is A on the patient's first visit, D afterwards.
    """
    l_visit, l_pat = cl.l_visit, cl.l_pat
    flat = [(g, c) for g in _DX_GROUPS for c in _DX_CODES[g]]
    group_first = np.cumsum([0] + [len(_DX_CODES[g]) for g in _DX_GROUPS])[:-1]
    p_code = group_first[pat.p_dx] + pat.p_primary
    injury_code = np.array([g == "injury" for g, _ in flat])
    second = np.where(pat.has_second, pat.p_second + 1, 0)
    l_later = (vis.k[l_visit] > 0).astype(np.int64)
    dx_key = (p_code[l_pat] * 2 + l_later) * (len(_DX_SECONDARY) + 1) + second[l_pat]
    key_space = len(flat) * 2 * (len(_DX_SECONDARY) + 1)
    present = np.bincount(dx_key, minlength=key_space) > 0
    dx_keys = np.flatnonzero(present)
    key_to_code = np.cumsum(present) - 1
    dx_inv = key_to_code[dx_key]
    dx_text = []
    for key in dx_keys:
        code_i, rest = divmod(int(key), len(_DX_SECONDARY) + 1)
        code_i, later = divmod(code_i, 2)
        code = flat[code_i][1] + (("D" if later else "A") if injury_code[code_i] else "")
        extra = _DX_SECONDARY[rest - 1] if rest else ""
        dx_text.append(code + ("," + extra if extra and extra != code else ""))
    text_code, dx_text = pd.factorize(pd.Series(dx_text, dtype=object), sort=True)
    dx_inv = text_code[dx_inv.reshape(-1)]
    return flat, p_code, dx_inv, dx_text


@dataclasses.dataclass(frozen=True)
class _Export:
    """The charge export (charges still zero) and the dates and ids the later stages reuse."""

    lines: pd.DataFrame
    year: np.ndarray  # calendar year of each visit
    l_date: np.ndarray
    v_sub: np.ndarray  # submission date of each visit
    patient_ids: pa.Array
    prov_ids: np.ndarray


def _charge_export(
    t0: pd.Timestamp,
    pat: _Patients,
    vis: _Visits,
    cl: _ClaimLines,
    mods: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    dx: tuple[list, np.ndarray, np.ndarray, Any],
    payers: _PayerMix,
    providers: pd.DataFrame,
) -> _Export:
    l_visit, l_pat, l_pos, n_v = cl.l_visit, cl.l_pat, cl.l_pos, vis.n_v
    _, _, mod_code, mod_names = mods
    _, _, dx_inv, dx_text = dx
    v_date = np.datetime64(t0.date(), "D") + vis.offset
    year = v_date.astype("datetime64[Y]").astype(np.int64) + 1970
    first_year = t0.year
    l_date = v_date[l_visit]
    l_before = np.where(year[l_visit] == first_year, pat.p_before[l_pat], 0)
    v_sub = v_date + vis.lag
    claim_ids = _ids("C", cl.v_rank + 1, max(6, len(str(n_v))))
    claim_col = claim_ids.take(pa.array(l_visit))
    line_col = pc.binary_join_element_wise(
        claim_col,
        pa.array([str(i) for i in range(1, 10)]).take(pa.array(np.minimum(l_pos, 8))),
        "-",
    )
    patient_ids = _ids("P", pat.p_number, 6)
    prov_ids = providers["provider_id"].to_numpy(dtype=object)
    minutes = pd.arrays.IntegerArray(cl.l_minutes.astype(np.int64), ~cl.c_timed[cl.l_comp])
    lines = pd.DataFrame(
        {
            "patient_id": pd.Categorical.from_codes(
                l_pat, pd.Index(patient_ids.to_numpy(zero_copy_only=False))
            ),
            "service_date": pd.to_datetime(l_date),
            "provider_id": pd.Categorical.from_codes(cl.v_provider[l_visit], prov_ids, validate=False),
            "provider_type": pd.Categorical.from_codes(
                pat.p_ptype[l_pat], list(_PTYPES), validate=False
            ),
            "payer_id": pd.Categorical.from_codes(cl.l_payer, payers.payer_ids, validate=False),
            "cpt": pd.Categorical.from_codes(cl.l_cpt, cl.cpt_names, validate=False),
            "minutes": minutes,
            "modifiers": pd.Categorical.from_codes(mod_code, mod_names, validate=False),
            "dx_codes": pd.Categorical.from_codes(dx_inv, list(dx_text), validate=False),
            "charge": np.zeros(cl.n_l),
            "prescription_on_file": pat.p_rx[l_pat],
            "prior_auth": pat.p_auth[l_pat],
            "visits_before": l_before.astype(np.int64),
            "submission_date": pd.to_datetime(v_sub[l_visit]),
            "claim_id": pd.array(claim_col, dtype="str"),
            "line_id": pd.array(line_col, dtype="str"),
        }
    )
    return _Export(lines, year, l_date, v_sub, patient_ids, prov_ids)


@dataclasses.dataclass(frozen=True)
class _Priced:
    """Each line's units under its payer's method and its charge from the fee sheet."""

    ptable: pd.DataFrame  # payer_table by payer id, in _PayerMix.payer_ids order
    rules_input: pd.DataFrame
    counted: pd.DataFrame
    units: np.ndarray
    charge: np.ndarray


def _fee_sheet_charges(
    lines: pd.DataFrame, cl: _ClaimLines, payers: _PayerMix, pol: Mapping[str, PayerPolicy], ref: Reference
) -> _Priced:
    """Charges from the fee sheet on the units each payer's method gives."""
    payer_ids, l_payer = payers.payer_ids, cl.l_payer
    ptable = payer_table(pol).set_index("payer_id").reindex(payer_ids)
    methods = ptable["unit_method"].to_numpy(dtype=object)
    # The engine sees the patient as an integer key (it only groups by it) and no claim or
    # line ids (sessions never repeat a code, so unit ties never fall to the line id): the
    # same rules, without sorting millions of strings.
    rules_input = lines.drop(columns=["claim_id", "line_id"]).assign(patient_id=cl.l_pat)
    method = pd.Series(
        pd.Categorical.from_codes(l_payer, payer_ids).map(
            dict(zip(payer_ids, methods, strict=True))
        ),
        index=lines.index,
    )
    counted = compute_units(rules_input, method, reference=ref)
    units = counted["units"].to_numpy()
    fee = np.array([FEE_SHEET.get(c, 0.0) for c in cl.cpt_names])[cl.l_cpt]
    return _Priced(ptable, rules_input, counted, units, np.round(fee * units, 2))


@dataclasses.dataclass(frozen=True)
class _Engine:
    """The rules engine's adjudication of every line and each visit's number in its year."""

    out: pd.DataFrame
    disp: _Coded
    rule_denied: np.ndarray
    billed: np.ndarray
    cash: np.ndarray
    open_line: np.ndarray  # billed, not denied by a rule, not self-pay: open to random denial
    v_num: np.ndarray
    limit_visits: np.ndarray
    limit_days: np.ndarray


def _adjudicate(
    lines: pd.DataFrame,
    priced: _Priced,
    pat: _Patients,
    vis: _Visits,
    cl: _ClaimLines,
    export: _Export,
    payers: _PayerMix,
    t0: pd.Timestamp,
    pol: Mapping[str, PayerPolicy],
    ref: Reference,
) -> _Engine:
    # Units are counted once above and passed as billed (the engine's own path for claims
    # with units), then every edit, price and cost-share rule runs on them.
    billed_in = priced.rules_input.drop(columns=["minutes"]).assign(
        units=priced.units, charge=lines["charge"].to_numpy()
    )
    out = evaluate(billed_in, pol, ref)
    disp = _codes_of(out["disposition"])
    rule_denied = disp.values_equal("denied")
    billed = ~disp.values_equal("not_billed")
    cash = cl.l_prof == payers.prof_names.index("cash")
    open_line = billed & ~rule_denied & ~cash

    # visit number in the calendar year with the payer (a patient has one payer here)
    v_pat, n_v, offset, year, first_year = vis.v_pat, vis.n_v, vis.offset, export.year, t0.year
    order_v = np.lexsort((offset, year, v_pat))
    vp, vy = v_pat[order_v], year[order_v]
    new = np.r_[True, (vp[1:] != vp[:-1]) | (vy[1:] != vy[:-1])] if n_v else np.zeros(0, bool)
    first = np.flatnonzero(new)
    v_num = np.empty(n_v, dtype=np.int64)
    v_num[order_v] = np.arange(n_v) - np.repeat(first, np.diff(np.r_[first, n_v])) + 1
    v_num += np.where(year == first_year, pat.p_before[v_pat], 0)
    limit_visits = priced.ptable["visit_limit"].to_numpy(dtype=float, na_value=np.nan)
    limit_days = priced.ptable["timely_filing_days"].to_numpy(dtype=float, na_value=np.nan)
    return _Engine(out, disp, rule_denied, billed, cash, open_line, v_num, limit_visits, limit_days)


@dataclasses.dataclass(frozen=True)
class _RandomDenials:
    """The true random-denial probability of each line, which lines it denied, and why."""

    p_random: np.ndarray
    main_risk: np.ndarray
    random_denied: np.ndarray
    rd: np.ndarray  # rows randomly denied
    mech_rd: np.ndarray
    carc_rd: np.ndarray
    rarc_rd: np.ndarray
    group_rd: pd.Series


def _denial_odds(
    pat: _Patients,
    vis: _Visits,
    cl: _ClaimLines,
    mods: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    engine: _Engine,
    payers: _PayerMix,
    ref: Reference,
) -> _RandomDenials:
    """The random denials, from the generator's own records (the model of _TERMS)."""
    l_prof, l_pat, l_visit, n_l, prof_names = cl.l_prof, cl.l_pat, cl.l_visit, cl.n_l, payers.prof_names
    v_pat, p_payer = vis.v_pat, pat.p_payer
    pair_line, ncci, _, _ = mods
    feats = {
        "payer": (l_prof, prof_names),
        "cpt": (cl.l_cpt, list(cl.cpt_names)),
        "ptype": (pat.p_ptype[l_pat], list(_PTYPES)),
        "dx": (pat.p_dx[l_pat], list(_DX_GROUPS)),
        "rx": (pat.p_rx[l_pat].astype(np.int64), [_NO_RX, PRESCRIPTION]),
        "bundle": (ncci * pair_line + pair_line, list(BUNDLE_STATES)),
        "units": units_band(engine.out["units"].to_numpy(), codes=True),
        "visit": _per_line(visit_band(engine.v_num, engine.limit_visits[p_payer[v_pat]], codes=True), l_visit),
        "filing": _per_line(filing_band(vis.lag, engine.limit_days[p_payer[v_pat]], codes=True), l_visit),
        "none": (np.zeros(n_l, dtype=np.int64), [""]),
    }
    eta, main_risk, contrib = _true_logit(feats, n_l)
    p_random = np.where(engine.cash, 0.0, 1.0 / (1.0 + np.exp(-eta)))
    random_denied = engine.open_line & (cl.l_u_deny < p_random)

    # which mechanism denied a randomly denied line: chosen in proportion to its log-odds
    # terms, the baseline (weight _BASELINE_WEIGHT) split among residual causes
    names = list(_MECHANISMS)
    rd = np.flatnonzero(random_denied)
    w = np.clip(contrib(rd), 0, None)
    for pi, prof in enumerate(prof_names):
        sel = l_prof[rd] == pi
        for m, share in _BASELINE_SPLIT.get(prof, _BASELINE_DEFAULT):
            w[sel, names.index(m)] += share * _BASELINE_WEIGHT
    cw = np.cumsum(w, axis=1)
    pick = np.minimum((cl.l_u_mech[rd, None] * cw[:, -1:] > cw).sum(axis=1), len(names) - 1)
    mech_rd = np.array(names, dtype=object)[pick]
    carc_rd = np.array([_MECHANISM_CARC[m][0] for m in names], dtype=object)[pick]
    rarc_rd = np.array([_MECHANISM_CARC[m][1] for m in names], dtype=object)[pick]
    for (prof, mech), (c, r) in _MECHANISM_CARC_BY_PROFILE.items():
        sel = (l_prof[rd] == prof_names.index(prof)) & (mech_rd == mech)
        carc_rd[sel], rarc_rd[sel] = c, r
    group_rd = (
        pd.Series(carc_rd, dtype=object)
        .map(ref.carc.set_index("carc")["typical_group"])
        .fillna("CO")
    )
    return _RandomDenials(p_random, main_risk, random_denied, rd, mech_rd, carc_rd, rarc_rd, group_rd)


@dataclasses.dataclass(frozen=True)
class _Underpaid:
    """The underpaying payer (if any), its underpaid lines, and what each line was allowed."""

    under_payer: str | None
    underpaid: np.ndarray
    contract_allowed: np.ndarray
    paid_allowed: np.ndarray


def _underpayment(
    engine: _Engine,
    odds: _RandomDenials,
    cl: _ClaimLines,
    export: _Export,
    payers: _PayerMix,
    t0: pd.Timestamp,
    pol: Mapping[str, PayerPolicy],
) -> _Underpaid:
    """The payer's allowed amounts: the contract's, zero when randomly denied, and 100% of
    Medicare on the underpaid codes and months (see _UNDERPAID_CODES)."""
    payer_ids, profiles, cpt_names = payers.payer_ids, payers.profiles, cl.cpt_names
    random_denied = odds.random_denied
    contract_allowed = np.nan_to_num(engine.out["allowed"].to_numpy(dtype=float, na_value=np.nan))
    month = export.l_date.astype("datetime64[M]").astype(np.int64) - np.datetime64(t0.date(), "M").astype(
        np.int64
    )
    under = [
        p
        for p, x in zip(payer_ids, profiles, strict=True)
        if x == "commercial"
        and pol[p].fee.basis == "percent_of_medicare"
        and pol[p].fee.percent > 100
    ]
    under_payer = under[0] if under else None
    under_factor = 100.0 / pol[under_payer].fee.percent if under_payer else 1.0
    under_ix = [i for i, p in enumerate(payer_ids) if p == under_payer]
    under_cpt = [i for i, c in enumerate(cpt_names) if c in _UNDERPAID_CODES]
    underpaid = (
        engine.open_line
        & ~random_denied
        & (contract_allowed > 0)
        & np.isin(cl.l_payer, under_ix)
        & np.isin(cl.l_cpt, under_cpt)
        & np.isin(month, _UNDERPAID_MONTHS)
    )
    paid_allowed = np.where(random_denied, 0.0, contract_allowed)
    paid_allowed = np.where(underpaid, np.round(contract_allowed * under_factor, 2), paid_allowed)
    return _Underpaid(under_payer, underpaid, contract_allowed, paid_allowed)


@dataclasses.dataclass(frozen=True)
class _Decision:
    """The payer's decision on each line, as the 835s will report it."""

    adj: pd.DataFrame  # Practice.adjudicated
    submitted: np.ndarray
    adjudicated: np.ndarray
    denied: np.ndarray
    engine_carc: _Coded
    carc: _Coded
    group: _Coded


def _payer_decision(
    lines: pd.DataFrame,
    priced: _Priced,
    engine: _Engine,
    odds: _RandomDenials,
    under: _Underpaid,
    vis: _Visits,
    cl: _ClaimLines,
    export: _Export,
    payers: _PayerMix,
    as_of: pd.Timestamp,
    pol: Mapping[str, PayerPolicy],
    ref: Reference,
) -> _Decision:
    """Engine edits, random denials, then the underpayment: codes, cost share and pay dates.

    The engine's columns come back with the practice's ids and minutes, then the payer's
    decision; one frame is built from the columns (no copies of a wide frame per added column).
    """
    out, counted, rd, l_visit, l_prof = engine.out, priced.counted, odds.rd, cl.l_visit, cl.l_prof
    prof_names, cash = payers.prof_names, engine.cash
    engine_carc = _codes_of(out["carc"])
    carc = engine_carc.replaced(rd, odds.carc_rd)
    group = _codes_of(out["group_code"]).replaced(rd, odds.group_rd.to_numpy(dtype=object))
    rarc = _codes_of(out["rarc"]).replaced(rd, odds.rarc_rd)
    share = split_cost_share(out.assign(allowed=under.paid_allowed), pol, ref)
    sub = export.v_sub[l_visit]
    pay_lo = np.array([_PROFILE_PAYLAG[x][0] for x in prof_names])[l_prof]
    pay_hi = np.array([_PROFILE_PAYLAG[x][1] for x in prof_names])[l_prof]
    decided = sub + np.floor(pay_lo + vis.v_paylag[l_visit] * (pay_hi - pay_lo + 1)).astype(np.int64)
    dow = (decided.astype(np.int64) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    pay_date = decided + (4 - dow) % 7  # the payer's Friday payment run
    last = np.datetime64(as_of.date(), "D")
    submitted = (sub <= last) & ~cash
    adjudicated = submitted & engine.billed & (pay_date <= last)
    denied = engine.rule_denied | odds.random_denied
    columns: dict[str, Any] = {}
    for col in out.columns:
        if col == "units_reason":
            for extra in ("units_reason", "timed", "visit_timed_minutes"):
                if extra in counted.columns:
                    columns[extra] = counted[extra].to_numpy()
            continue
        columns[col] = lines[col] if col == "patient_id" else out[col]
        if col == "cpt":
            columns["minutes"] = lines["minutes"]
        if col == "submission_date":
            columns["claim_id"], columns["line_id"] = lines["claim_id"], lines["line_id"]
    columns.update(
        denied=denied,
        random_denied=odds.random_denied,
        underpaid=under.underpaid,
        remit_disposition=engine.disp.replaced(rd, np.full(len(rd), "denied", dtype=object)).categorical(),
        remit_carc=carc.categorical(),
        remit_group_code=group.categorical(),
        remit_rarc=rarc.categorical(),
        remit_allowed=under.paid_allowed,
        remit_deductible=share["deductible_applied"].to_numpy(),
        remit_copay=share["copay_applied"].to_numpy(),
        remit_coinsurance=share["coinsurance_applied"].to_numpy(),
        remit_patient=share["patient_part"].to_numpy(),
        remit_sequestration=share["sequestration"].to_numpy(),
        remit_paid=share["payer_paid"].to_numpy(),
        submitted=submitted,
        adjudicated=adjudicated,
        payment_date=pd.to_datetime(np.where(adjudicated, pay_date, np.datetime64("NaT"))),
    )
    adj = pd.DataFrame(columns, index=lines.index, copy=False)
    return _Decision(adj, submitted, adjudicated, denied, engine_carc, carc, group)


def _truth_table(
    lines: pd.DataFrame,
    engine: _Engine,
    odds: _RandomDenials,
    under: _Underpaid,
    decision: _Decision,
    vis: _Visits,
    cl: _ClaimLines,
    ref: Reference,
) -> pd.DataFrame:
    """The truth of every line (see :attr:`Practice.truth`)."""
    engine_carc, denied, rule_denied, rd = decision.engine_carc, decision.denied, engine.rule_denied, odds.rd
    cash, billed, open_line, l_visit = engine.cash, engine.billed, engine.open_line, cl.l_visit
    contract_allowed, paid_allowed, underpaid = under.contract_allowed, under.paid_allowed, under.underpaid
    rule_cat = ref.carc_category(pd.Series(engine_carc.values, dtype=object)).to_numpy(dtype=object)
    mech = _Coded(
        np.where(rule_denied, engine_carc.codes, len(engine_carc.values)), np.append(rule_cat, "")
    ).replaced(rd, odds.mech_rd)
    no = np.flatnonzero(~denied)
    blank = np.full(len(no), "", dtype=object)
    return pd.DataFrame(
        {
            "line_id": lines["line_id"],
            "claim_id": lines["claim_id"],
            "payer_id": lines["payer_id"],
            "source": pd.Categorical.from_codes(
                np.where(cash, 0, np.where(~billed, 1, np.where(rule_denied, 2, 3))),
                ["self_pay", "not_billed", "rule", "random"],
            ),
            "p_true": np.round(np.where(rule_denied, 1.0, np.where(open_line, odds.p_random, 0.0)), 6),
            "p_random": np.round(odds.p_random, 6),
            "denied": denied,
            "mechanism": mech.categorical(),
            "main_risk": pd.Categorical.from_codes(
                np.where(open_line, odds.main_risk, len(_MECHANISMS) + 1), [*_MECHANISMS, "baseline", ""]
            ),
            "carc": decision.carc.replaced(no, blank).categorical(),
            "group_code": decision.group.replaced(no, blank).categorical(),
            "visit_number": engine.v_num[l_visit],
            "lag_days": vis.lag[l_visit],
            "contract_allowed": np.round(contract_allowed, 2),
            "paid_allowed": np.round(paid_allowed, 2),
            "underpaid": underpaid,
            "underpaid_amount": np.round(
                np.where(underpaid, contract_allowed - paid_allowed, 0.0), 2
            ),
            "adjudicated": decision.adjudicated,
        }
    )


def _patient_table(
    pat: _Patients, dx: tuple[list, np.ndarray, np.ndarray, Any], export: _Export, payers: _PayerMix
) -> pd.DataFrame:
    """The patient roster (pseudonymous), patients with at least one visit, by id."""
    flat, p_code, _, _ = dx
    patients = pd.DataFrame(
        {
            "patient_id": pd.array(export.patient_ids, dtype="str"),
            "payer_id": payers.payer_ids[pat.p_payer],
            "member_id": pd.array(_ids("M", pat.p_member, 8), dtype="str"),
            "provider_id": export.prov_ids[pat.p_provider],
            "dx_group": np.array(_DX_GROUPS, dtype=object)[pat.p_dx],
            "primary_dx": np.array([c for _, c in flat], dtype=object)[p_code],
            "prescription_on_file": pat.p_rx,
            "prior_auth": pat.p_auth,
            "visits_before": pat.p_before,
            "visits": pat.counts,
        }
    )
    return (
        patients[patients["visits"] > 0]
        .sort_values("patient_id", kind="stable")
        .reset_index(drop=True)
    )


def _settings(
    seed: int,
    n_visits: int,
    t0: pd.Timestamp,
    months: int,
    as_of: pd.Timestamp,
    under_payer: str | None,
    pol: Mapping[str, PayerPolicy],
) -> dict[str, Any]:
    """What practice.yaml records: the practice, the arguments and the underpayment."""
    return {
        "practice": PRACTICE_NAME,
        "locality": PRACTICE_LOCALITY,
        "seed": int(seed),
        "visits": int(n_visits),
        "start": str(t0.date()),
        "months": int(months),
        "as_of": str(as_of.date()),
        "fee_sheet": dict(FEE_SHEET),
        "underpaying_payer": under_payer,
        "underpaid_codes": list(_UNDERPAID_CODES) if under_payer else [],
        "underpaid_months": [
            (t0 + pd.DateOffset(months=m)).strftime("%Y-%m") for m in _UNDERPAID_MONTHS
        ]
        if under_payer
        else [],
        "underpaid_rate": (
            f"100% of Medicare instead of the contracted {pol[under_payer].fee.percent:g}%"
            if under_payer
            else None
        ),
    }


def _per_line(
    coded: tuple[np.ndarray, list[str]], l_visit: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Visit-level (codes, labels) spread to the visit's lines."""
    return coded[0][l_visit], coded[1]


@dataclasses.dataclass(frozen=True)
class _Coded:
    """A text column as integer codes into distinct values (cheap to edit at millions of rows)."""

    codes: np.ndarray
    values: np.ndarray

    def values_equal(self, value: str) -> np.ndarray:
        hit = np.flatnonzero(self.values == value)
        return np.isin(self.codes, hit)

    def replaced(self, rows: np.ndarray, new: np.ndarray) -> _Coded:
        """A copy with ``rows`` set to the texts ``new``."""
        if not len(rows):
            return self
        extra, inv = np.unique(np.asarray(new, dtype=object).astype(str), return_inverse=True)
        values = np.concatenate([self.values, extra.astype(object)])
        codes = self.codes.copy()
        codes[rows] = len(self.values) + inv.reshape(-1)
        return _Coded(codes, values)

    def categorical(self) -> pd.Categorical:
        cats, remap = np.unique(self.values.astype(str), return_inverse=True)
        return pd.Categorical.from_codes(remap[self.codes], cats.astype(object), validate=False)


def _codes_of(col: pd.Series) -> _Coded:
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.int64)
        values = np.asarray(col.cat.categories.astype(str), dtype=object)
        if (codes < 0).any():
            values = np.append(values, "")
            codes = np.where(codes < 0, len(values) - 1, codes)
        return _Coded(codes, values)
    codes, uniq = pd.factorize(col.astype(object).where(col.notna(), ""), use_na_sentinel=False)
    return _Coded(codes.astype(np.int64), np.asarray(pd.Index(uniq).astype(str), dtype=object))


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Text ids ``prefix`` + zero-padded number, built in Arrow (fast at millions of rows)."""
    digits = pc.utf8_lpad(
        pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string()), width, "0"
    )
    return pc.binary_join_element_wise(prefix, digits, "")


def _true_logit(feats: dict, n: int):
    """Log-odds of the true model per line, the mechanism of each line's largest term (code
    into ``[*_MECHANISMS, "baseline"]``), and a function giving the per-mechanism log-odds of
    chosen rows.

    Terms are grouped by feature pair into small lookup tables, so the cost is one gather
    per pair whatever the number of terms.
    """
    names = list(_MECHANISMS)
    pairs: dict[tuple[str, str], list] = {}
    for fa, la, fb, lb, effect, mech in _TERMS:
        pairs.setdefault((fa, fb or "none"), []).append((la, lb or "", effect, mech))
    tables = []
    for (fa, fb), terms in pairs.items():
        (ca, va), (cb, vb) = feats[fa], feats[fb]
        eff = np.zeros((len(va), len(vb)))
        mech = np.full((len(va), len(vb)), -1, dtype=np.int64)
        for la, lb, effect, m in terms:
            if la in va and lb in vb:
                eff[va.index(la), vb.index(lb)] += effect
                mech[va.index(la), vb.index(lb)] = -1 if m == "baseline" else names.index(m)
        tables.append((ca, cb, eff, mech, len(vb)))
    eta = np.zeros(n)
    best = np.zeros(n)
    best_mech = np.full(n, -1, dtype=np.int64)
    for ca, cb, eff, mech, nb in tables:
        flat_ix = ca * nb + cb
        e = eff.ravel()[flat_ix]
        eta += e
        m = mech.ravel()[flat_ix]
        better = (m >= 0) & (e > best)
        best = np.where(better, e, best)
        best_mech = np.where(better, m, best_mech)
    main = np.where(best_mech >= 0, best_mech, len(names))  # codes into [*names, "baseline"]

    def contrib(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), len(names)))
        for ca, cb, eff, mech, nb in tables:
            flat_ix = ca[rows] * nb + cb[rows]
            m = mech.ravel()[flat_ix]
            ok = m >= 0
            np.add.at(out, (np.flatnonzero(ok), m[ok]), eff.ravel()[flat_ix][ok])
        return out

    return eta, main, contrib


def _mppr_reduction(
    adj: pd.DataFrame, payers: Mapping[str, PayerPolicy], ref: Reference
) -> np.ndarray:
    """Dollars each MPPR-reduced line lost to the reduction (its fee without MPPR minus with)."""
    out = np.zeros(len(adj))
    if "mppr_reduced_units" not in adj.columns:
        return out
    reduced = (adj["mppr_reduced_units"].to_numpy() > 0) & ~adj["random_denied"].to_numpy()
    if not reduced.any():
        return out
    no_mppr = {pid: dataclasses.replace(p, mppr=False) for pid, p in payers.items()}
    full = price_lines(adj.loc[reduced], no_mppr, ref)["allowed"].to_numpy(
        dtype=float, na_value=np.nan
    )
    scale = np.where(adj.loc[reduced, "underpaid"].to_numpy(), 0.0, 1.0)
    out[reduced] = np.round(
        np.clip(np.nan_to_num(full) - adj.loc[reduced, "allowed"].to_numpy(), 0, None) * scale, 2
    )
    return out


def _mechanism_table(payer_ids: np.ndarray, profiles: np.ndarray) -> pd.DataFrame:
    rows = []
    for fa, la, fb, lb, effect, mech in _TERMS:
        targets = (
            [(p, x) for p, x in zip(payer_ids, profiles, strict=True) if x == la]
            if fa == "payer"
            else [(None, None)]
        )
        for pid, prof in targets:
            if fa == "payer":
                a, al = "payer_id", pid
            else:
                a, al = fa, la
            mech_name = mech
            carc = _MECHANISM_CARC_BY_PROFILE.get(
                (prof, mech), _MECHANISM_CARC.get(mech, ("", ""))
            )[0]
            if mech == "baseline":
                split = _BASELINE_SPLIT.get(prof, _BASELINE_DEFAULT)
                mech_name = "baseline: " + ", ".join(f"{m} {s:.0%}" for m, s in split)
                carc = "/".join(_MECHANISM_CARC[m][0] for m, _ in split)
            rows.append(
                {
                    "feature": a,
                    "level": al,
                    "with_feature": fb or "",
                    "with_level": lb or "",
                    "log_odds": effect,
                    "mechanism": mech_name,
                    "carc": carc,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def _dates(s: pd.Series) -> pd.Series:
    d = pd.to_datetime(s)
    return d.dt.strftime("%Y-%m-%d").fillna("").astype(object)


def _export_frame(lines: pd.DataFrame) -> pd.DataFrame:
    out = lines.copy()
    out["service_date"] = _dates(out["service_date"])
    out["submission_date"] = _dates(out["submission_date"])
    out["charge"] = out["charge"].map("{:.2f}".format)
    return out


def write_practice(
    practice: Practice, out: str | Path, *, remittances: bool = True, parquet: bool = False
) -> list[Path]:
    """Write a practice's files under ``out``; returns the paths written.

    CSV (the default) writes ``service_lines.csv``, ``truth/line_truth.csv``,
    ``truth/denial_mechanisms.csv``, ``practice.yaml`` and, with ``remittances``, one 835 per
    payer per payment week under ``remittances/``. ``parquet=True`` (large sets) writes the
    tables as Parquet (``adjudicated.parquet`` too) and no 835.
    """
    out = Path(out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    truth = practice.truth.copy()
    if parquet:
        paths = {
            out / "service_lines.parquet": practice.lines,
            out / "adjudicated.parquet": practice.adjudicated,
            out / "truth" / "line_truth.parquet": truth,
        }
        for path, frame in paths.items():
            frame.to_parquet(path, index=False)
            written.append(path)
    else:
        path = out / "service_lines.csv"
        write_csv(_export_frame(practice.lines), path)
        written.append(path)
        path = out / "truth" / "line_truth.csv"
        t = truth.copy()
        for col in ("p_true", "p_random"):
            t[col] = t[col].map("{:.6f}".format)
        for col in ("contract_allowed", "paid_allowed", "underpaid_amount"):
            t[col] = t[col].map("{:.2f}".format)
        write_csv(t, path)
        written.append(path)
    path = out / "truth" / "denial_mechanisms.csv"
    write_csv(practice.mechanisms, path)
    written.append(path)
    if remittances and not parquet:
        written += write_remittances(practice, out / "remittances")
    if practice.payers_text is not None:
        path = out / "payers.yaml"
        if not path.exists():
            path.write_text(practice.payers_text)
            written.append(path)
        elif path.read_text() != practice.payers_text:
            raise InputError(
                f"{path} exists and differs from the payer policies the practice was generated "
                "with; remove it, or generate with --payers pointing at it."
            )
    path = out / "practice.yaml"
    meta = dict(practice.settings)
    meta["providers"] = practice.providers[["provider_id", "provider_type", "npi"]].to_dict(
        "records"
    )
    meta["lines"] = len(practice.lines)
    meta["patients"] = len(practice.patients)
    meta["files"] = {
        "service_lines": "service_lines.parquet" if parquet else "service_lines.csv",
        "remittances": "remittances/<payer>_<YYYY-Www>.835"
        if remittances and not parquet
        else None,
        "truth": "truth/line_truth.parquet" if parquet else "truth/line_truth.csv",
        "mechanisms": "truth/denial_mechanisms.csv",
        "payers": "payers.yaml (the policies the practice was adjudicated with)",
    }
    path.write_text(
        "# Synthetic practice: every id, NPI and amount is made up. No patient names.\n"
        + yaml.safe_dump(meta, sort_keys=False, default_flow_style=False)
    )
    written.append(path)
    return written


# ---------------------------------------------------------------------------------------
# 835 remittances (005010X221A1)
# ---------------------------------------------------------------------------------------

_PAYEE_NPI = _npi(199_000_042)
_PAYEE_TIN = "990000042"


def _amt(x: float) -> str:
    """An X12 decimal amount: cents, no trailing zeros, never ``-0``."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "", "-") else s


def _x12_id(text: str, width: int = 15) -> str:
    clean = "".join(ch for ch in text.upper() if ch.isalnum())[:width]
    return clean.ljust(width)


def write_remittances(practice: Practice, directory: str | Path) -> list[Path]:
    """Write the adjudicated claims as 835 files, one per payer per ISO week of payment.

    File names are ``<payer>_<YYYY-Www>.835``. Each file is one interchange (ISA/GS/ST ...
    SE/GE/IEA) that balances at line, claim and transaction level: SVC02 - line CAS = SVC03,
    CLP03 - CAS = CLP04, BPR02 = sum(CLP04) - sum(PLB). Contractual write-downs are CO-45
    (CO-59 for the MPPR part), cost share PR-1/2/3, denials the CARC of the engine edit or
    of the random mechanism, with the catalog's group code. Auto/PIP claims paid more than
    40 days after receipt carry statutory interest as a PLB L6 adjustment.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    a = practice.adjudicated
    sel = a["adjudicated"].to_numpy()
    lines = practice.lines.loc[sel]
    adj = a.loc[sel]
    if not len(adj):
        return []
    mppr = _mppr_reduction(adj, practice.payers, load_reference())
    members = practice.patients.set_index("patient_id")["member_id"]
    pay = pd.to_datetime(adj["payment_date"])
    sub = pd.to_datetime(lines["submission_date"])
    iso = pay.dt.isocalendar()
    frame = pd.DataFrame(
        {
            "payer_id": lines["payer_id"].astype(str).to_numpy(),
            "claim_id": lines["claim_id"].astype(str).to_numpy(),
            "week": (
                iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
            ).to_numpy(),
            "order": np.arange(len(lines)),
        }
    )
    order = frame.sort_values(
        ["payer_id", "week", "claim_id", "order"], kind="stable"
    ).index.to_numpy()
    col = {
        "payer_id": frame["payer_id"].to_numpy()[order].tolist(),
        "week": frame["week"].to_numpy()[order].tolist(),
        "claim_id": frame["claim_id"].to_numpy()[order].tolist(),
        "line_id": lines["line_id"].astype(str).to_numpy()[order].tolist(),
        "member_id": lines["patient_id"].astype(str).map(members).to_numpy()[order].tolist(),
        "cpt": lines["cpt"].astype(str).to_numpy()[order].tolist(),
        "modifiers": lines["modifiers"].astype(str).to_numpy()[order].tolist(),
        "service": pd.to_datetime(lines["service_date"])
        .dt.strftime("%Y%m%d")
        .to_numpy()[order]
        .tolist(),
        "received": sub.dt.strftime("%Y%m%d").to_numpy()[order].tolist(),
        "received_yj": sub.dt.strftime("%y%j").to_numpy()[order].tolist(),
        "days": (pay - sub).dt.days.to_numpy()[order].tolist(),
        "pay": pay.to_numpy()[order],
    }
    for name, source in (
        ("charge", lines["charge"]),
        ("units", adj["units"]),
        ("allowed", adj["remit_allowed"]),
        ("ded", adj["remit_deductible"]),
        ("coins", adj["remit_coinsurance"]),
        ("copay", adj["remit_copay"]),
        ("seq", adj["remit_sequestration"]),
        ("paid", adj["remit_paid"]),
    ):
        col[name] = source.to_numpy(dtype=float)[order].tolist()
    col["mppr"] = mppr[order].tolist()
    col["denied"] = adj["denied"].to_numpy()[order].tolist()
    for name, source in (
        ("carc", "remit_carc"),
        ("group", "remit_group_code"),
        ("rarc", "remit_rarc"),
    ):
        col[name] = adj[source].astype(str).to_numpy()[order].tolist()
    profiles = {pid: _profile(p) for pid, p in practice.payers.items()}
    written = []
    keys = list(zip(col["payer_id"], col["week"], strict=True))
    start = 0
    control = 0
    while start < len(keys):
        end = start
        while end < len(keys) and keys[end] == keys[start]:
            end += 1
        control += 1
        payer_id, week = keys[start]
        text = _remittance_text(
            col, start, end, practice.payers[payer_id], profiles[payer_id], control
        )
        path = directory / f"{payer_id}_{week}.835"
        path.write_text(text)
        written.append(path)
        start = end
    return written


def _remittance_text(
    col: dict, start: int, end: int, policy: PayerPolicy, profile: str, control: int
) -> str:
    pay_date = pd.Timestamp(col["pay"][start:end].max())
    ymd = pay_date.strftime("%Y%m%d")
    payer_edi = _x12_id(policy.payer_id)
    payee_edi = _x12_id("HARBORSTREET01")
    isa_ctl = f"{control:09d}"
    claims: list[list[str]] = []
    plb: list[tuple[str, float]] = []
    total_paid = 0
    i = start
    while i < end:
        claim_id = col["claim_id"][i]
        j = i
        while j < end and col["claim_id"][j] == claim_id:
            j += 1
        seg_lines: list[str] = []
        pr_total = 0.0
        charge_sum = paid_sum = None
        for r in range(i, j):
            charge, paid = col["charge"][r], col["paid"][r]
            charge_sum = charge if charge_sum is None else charge_sum + charge
            paid_sum = paid if paid_sum is None else paid_sum + paid
            mods = [m for m in col["modifiers"][r].split(",") if m]
            svc01 = ":".join(["HC", col["cpt"][r], *mods[:4]])
            seg_lines.append(f"SVC*{svc01}*{_amt(charge)}*{_amt(paid)}**{int(col['units'][r])}")
            seg_lines.append(f"DTM*472*{col['service'][r]}")
            if col["denied"][r]:
                seg_lines.append(f"CAS*{col['group'][r]}*{col['carc'][r]}*{_amt(charge)}")
                if col["group"][r] == "PR":
                    pr_total += charge
                allowed = 0.0
            else:
                allowed, mppr = col["allowed"][r], col["mppr"][r]
                co = []
                contractual = round(charge - allowed - mppr, 2)
                if mppr > 0:
                    co += ["59", _amt(mppr), ""]
                if abs(contractual) >= 0.005:
                    co += ["45", _amt(contractual), ""]
                if col["seq"][r] > 0:
                    co += ["253", _amt(col["seq"][r]), ""]
                if co:
                    seg_lines.append("CAS*CO*" + "*".join(co).rstrip("*"))
                pr = []
                for code, value in (
                    ("1", col["ded"][r]),
                    ("2", col["coins"][r]),
                    ("3", col["copay"][r]),
                ):
                    if value > 0:
                        pr += [code, _amt(value), ""]
                        pr_total += value
                if pr:
                    seg_lines.append("CAS*PR*" + "*".join(pr).rstrip("*"))
            seg_lines.append(f"REF*6R*{col['line_id'][r]}")
            seg_lines.append(f"AMT*B6*{_amt(allowed)}")
            if col["rarc"][r]:
                seg_lines.append(f"LQ*HE*{col['rarc'][r]}")
        total_paid += paid_sum
        charge, paid = round(charge_sum, 2), round(paid_sum, 2)
        payer_ctl = f"{_x12_id(policy.payer_id, 4).strip()}{col['received_yj'][i]}{claim_id[1:]}"
        claims.append(
            [
                f"CLP*{claim_id}*1*{_amt(charge)}*{_amt(paid)}*{_amt(pr_total) if pr_total > 0 else ''}"
                f"*{_CLAIM_FILING.get(profile, 'CI')}*{payer_ctl}*11*1",
                f"NM1*QC*1******MI*{col['member_id'][i]}",
                f"DTM*050*{col['received'][i]}",
                *seg_lines,
            ]
        )
        days = col["days"][i]
        if profile == "auto" and days > 40 and paid > 0:
            # PIP statutes add interest on overdue benefits; a negative PLB raises the payment.
            interest = round(paid * 0.10 / 365 * (days - 30), 2)
            if interest >= 0.01:
                plb.append((claim_id, -interest))
        i = j
    total = round(round(total_paid, 2) - sum(x for _, x in plb), 2)
    trace = f"{_x12_id(policy.payer_id, 6).strip()}{ymd}{control:05d}"
    payer_tin = f"1{990_000_000 + (sum(map(ord, policy.payer_id)) % 999_999):09d}"
    if total > 0:
        bpr = (
            f"BPR*I*{_amt(total)}*C*ACH*CCP*01*011000015*DA*{control:010d}*{payer_tin}**01*"
            f"021000021*DA*000123456789*{ymd}"
        )
    else:
        bpr = f"BPR*H*{_amt(total)}*C*NON************{ymd}"
    body = [
        "ST*835*0001",
        bpr,
        f"TRN*1*{trace}*{payer_tin}",
        f"DTM*405*{ymd}",
        f"N1*PR*{policy.name.upper()}",
        "N3*100 SYNTHETIC PLAZA",
        "N4*ANYTOWN*CA*90000",
        f"REF*2U*{policy.payer_id}",
        "PER*BL*EDI SUPPORT*TE*5555550100",
        f"N1*PE*{PRACTICE_NAME.upper().replace('(', '').replace(')', '')}*XX*{_PAYEE_NPI}",
        f"REF*TJ*{_PAYEE_TIN}",
        "LX*1",
    ]
    for c in claims:
        body.extend(c)
    # one PLB per provider and fiscal period carries up to six adjustments (PLB03-PLB14)
    for k in range(0, len(plb), 6):
        pairs = "*".join(f"L6:{claim_id}*{_amt(amount)}" for claim_id, amount in plb[k : k + 6])
        body.append(f"PLB*{_PAYEE_NPI}*{pay_date.year}1231*{pairs}")
    body.append(f"SE*{len(body) + 1}*0001")
    segs = [
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{payer_edi}*ZZ*{payee_edi}*{pay_date:%y%m%d}*0900*^*00501*{isa_ctl}*0*T*:",
        f"GS*HP*{payer_edi.strip()}*{payee_edi.strip()}*{ymd}*0900*{control}*X*005010X221A1",
        *body,
        f"GE*1*{control}",
        f"IEA*1*{isa_ctl}",
    ]
    return "~\n".join(segs) + "~\n"
