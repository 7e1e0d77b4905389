"""What a column of an export holds, read from its cells: dates, CPT/HCPCS codes, money,
minutes or units, modifiers, ICD-10 codes, payer names, provider names with a credential,
person names, yes/no or free text.

:func:`column_contents` looks at a sample of a column's non-blank cells and names the kind
most of them fit, with the share that fits; the sniffer turns kinds into proposed columns and
the intake names them for columns it cannot place (a blank header above minutes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.intake.credentials import CREDENTIAL_PATTERN
from analytics.schemas import CPT_PATTERN

__all__ = ["ColumnContents", "column_contents", "total_labels", "KIND_TARGETS", "MODIFIER_CODES", "PAYER_WORDS"]

#: Modifiers a therapy or massage line carries (CMS-1500 item 24D).
MODIFIER_CODES = frozenset({"GP", "GO", "GN", "59", "XE", "XS", "XP", "XU", "KX", "CQ", "CO", "25", "76", "77",
                            "91", "GA", "GY", "GZ", "AT", "RT", "LT", "TC", "26", "95", "GT", "KU", "HD", "U1",
                            "U2", "U3", "HN", "HO", "AF", "AG", "AH", "AJ"})
#: Words that mark a payer's name ("Blue Shield Gold PPO", "Medicare Part B", "Progressive Auto PIP").
PAYER_WORDS = ("medicare", "medicaid", "medi-cal", "blue", "bcbs", "shield", "cross", "aetna", "cigna", "united",
               "uhc", "humana", "kaiser", "anthem", "tricare", "ppo", "hmo", "epo", "insurance", "health", "auto",
               "pip", "progressive", "geico", "state farm", "allstate", "workers", "comp", "l&i", "self pay",
               "self-pay", "cash", "no-fault", "liability", "mutual", "care", "plan", "premera", "regence",
               "molina", "centene", "ambetter", "oscar", "optum", "wellcare", "highmark", "carefirst", "farmers",
               "liberty", "nationwide", "usaa", "travelers", "hartford")
#: The column a kind of contents proposes when the header says nothing.
KIND_TARGETS = {
    "service dates": "service_date",
    "CPT/HCPCS codes": "cpt",
    "dollar amounts": "charge",
    "minutes": "minutes",
    "units": "units_billed",
    "modifiers": "modifiers",
    "ICD-10 codes": "dx_codes",
    "payer names": "payer_id",
    "provider names with a credential": "provider_id",
    "yes/no": None,
    "dates of birth": None,
    "person names": None,
    "free text": None,
    "ids": None,
}
_SAMPLE = 2000
_DATE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[T ][0-9:.]+)?|[0-9]{1,2}[/-][0-9]{1,2}[/-](?:[0-9]{4}|[0-9]{2})|[0-9]{8}"
_MONEY = r"\(?-?\$?\s*-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:[.,][0-9]{2})?\)?"
_ICD10 = r"[A-TV-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?"
_PERSON = r"[A-Za-z][A-Za-z'\-]+,\s*[A-Za-z][A-Za-z'\-. ]*"


_TOTAL_LABEL = r"(?i)\s*(?:grand\s+|sub[\s\-]*)?totals?\b.*"


def total_labels(values: pd.Series) -> np.ndarray:
    """Which cells read as a TOTAL or subtotal label ("TOTAL", "Grand Total", "Subtotal:").

    Examples
    --------
    >>> import pandas as pd
    >>> total_labels(pd.Series(["TOTAL", "Sub-total", "Total body", "Totality", "97140"])).tolist()
    [True, True, True, False, False]
    """
    text = values.astype("str").fillna("")
    hit = np.zeros(len(text), dtype=bool)
    # a plain search first (Arrow), the regular expression on those few cells only (Python)
    maybe = np.flatnonzero(text.str.lower().str.contains("total", regex=False).to_numpy(bool))
    if len(maybe):
        hit[maybe] = text.iloc[maybe].str.fullmatch(_TOTAL_LABEL).to_numpy(bool)
    return hit


@dataclass(frozen=True)
class ColumnContents:
    """The kind of values a column holds (``""`` when none fits), the share of its sampled
    non-blank cells that fit, and how many non-blank cells it has."""

    kind: str
    share: float
    filled: int

    @property
    def evidence(self) -> str:
        """``"cells: 97% CPT/HCPCS codes"`` (empty when no kind fits)."""
        return f"cells: {self.share:.0%} {self.kind}" if self.kind else ""


def _share(values: pd.Series, pattern: str) -> float:
    return float(values.str.fullmatch(pattern).mean()) if len(values) else 0.0


def column_contents(values: pd.Series) -> ColumnContents:
    """The kind of values most of a column's cells are.

    Examples
    --------
    >>> import pandas as pd
    >>> column_contents(pd.Series(["97140", "97124 ", "G0283", ""])).kind
    'CPT/HCPCS codes'
    >>> column_contents(pd.Series(["Hannah Reyes, PT", "Tessa Ng, LMT"])).kind
    'provider names with a credential'
    >>> column_contents(pd.Series(["GP 59", "gp", "GP,XS"])).kind
    'modifiers'
    """
    text = values.astype("str").fillna("").str.strip()
    filled = text[text != ""]
    count = int(len(filled))
    if not count:
        return ColumnContents("", 0.0, 0)
    sample = filled.head(_SAMPLE).reset_index(drop=True)
    upper = sample.str.upper()
    checks: list[tuple[str, float]] = []
    dates = _share(sample, _DATE)
    if dates >= 0.8:
        return ColumnContents(_date_kind(sample), dates, count)
    checks.append(("CPT/HCPCS codes", _share(upper, rf"(?:{CPT_PATTERN})(?:[ \-:]+[A-Z0-9]{{2}})*(?:\.0+)?")))
    tokens = upper.str.split(r"[\s,;:|/]+", regex=True).explode()
    tokens = tokens[tokens.astype("str") != ""]
    if len(tokens):
        checks.append(("modifiers", float(tokens.isin(MODIFIER_CODES).mean())
                       * float(upper.str.fullmatch(r"[A-Z0-9]{2}(?:[\s,;:|/]+[A-Z0-9]{2})*").mean())))
    icd = _share(upper, rf"{_ICD10}(?:[\s,;|]+{_ICD10})*")
    checks.append(("ICD-10 codes", icd if icd < 0.8 else icd * _known_icd10_share(upper)))
    whole = sample.str.fullmatch(r"[0-9]{1,3}")
    if whole.mean() >= 0.9:
        numbers = pd.to_numeric(sample[whole], errors="coerce")
        kind = "units" if numbers.quantile(0.9) <= 8 else "minutes" if numbers.max() <= 480 else "ids"
        checks.append((kind, float(whole.mean())))
    money = _share(sample, _MONEY)
    if money >= 0.8 and (sample.str.contains(r"[$.,]", regex=True).mean() >= 0.5):
        checks.append(("dollar amounts", money))
    checks.append(("provider names with a credential", _share(upper.str.replace(".", "", regex=False),
                                                              CREDENTIAL_PATTERN)))
    lower = sample.str.lower()
    payer = lower.str.contains("|".join(w.replace("&", "\\&") for w in PAYER_WORDS), regex=True).mean()
    checks.append(("payer names", float(payer) * float(sample.str.contains("[A-Za-z]", regex=True).mean())))
    checks.append(("yes/no", float(lower.isin(["y", "n", "yes", "no", "true", "false"]).mean())))
    checks.append(("person names", _share(sample, _PERSON)))
    kind, share = max(checks, key=lambda c: c[1])
    if share >= 0.8 or (kind == "payer names" and share >= 0.5):
        return ColumnContents(kind, share, count)
    words = sample.str.count(r"\s+") + 1
    if float(words.mean()) >= 4 or float(sample.str.len().mean()) >= 30:
        return ColumnContents("free text", float((words >= 3).mean()), count)
    if _share(upper, r"[A-Z0-9][A-Z0-9\-_#]{2,}") >= 0.9:
        return ColumnContents("ids", _share(upper, r"[A-Z0-9][A-Z0-9\-_#]{2,}"), count)
    return ColumnContents("", share, count)


def _known_icd10_share(upper: pd.Series) -> float:
    """1.0 when most codes of a column shaped like ICD-10 codes are in the ICD-10-CM code set,
    else 0.0: account and claim numbers (``A100023``, ``C000001``) have the shape too."""
    from analytics.icd10cm import HELD_YEARS, code_set

    codes = upper.str.split(r"[\s,;|]+", regex=True).explode().astype("str").str.replace(".", "", regex=False)
    distinct = pd.unique(codes[codes != ""])[:200]
    if not len(distinct):
        return 0.0
    known = code_set(max(HELD_YEARS))
    found = sum(bool(known.billable(c) or known.billable_under(c)) for c in distinct)
    return 1.0 if found * 2 >= len(distinct) else 0.0


def _date_kind(sample: pd.Series) -> str:
    """Dates of birth when most lie more than ten years before the newest, else service dates."""
    years = pd.to_numeric(sample.str.extract(r"([0-9]{4})")[0], errors="coerce")
    two = sample.str.extract(r"[/-]([0-9]{2})$")[0]
    if years.notna().mean() < 0.5 and two.notna().mean() >= 0.5:
        return "service dates"  # two-digit years: the header decides; the reading sets them aside
    newest = years.max()
    if np.isfinite(newest) and float((years < newest - 10).mean()) >= 0.5:
        return "dates of birth"
    return "service dates"
