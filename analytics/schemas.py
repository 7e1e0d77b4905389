"""DataFrame contracts for the toolkit's tables, and the code-set checks behind them.

The canonical service-line table is what every later stage (units, edits, pricing, denials,
KPIs) reads. :mod:`analytics.intake` turns a practice-management export into it; the
pandera model :class:`ServiceLineSchema` states the contract.

The value-level checks here are vectorised and reusable on their own:

- :func:`check_icd10cm` gives the reason an ICD-10-CM diagnosis code is unusable on a
  professional claim, or ``""``: its form, then whether it is a billable code of the code set
  of the date of service's fiscal year (:mod:`analytics.icd10cm`);
- :func:`is_icd10pcs_like` spots ICD-10-PCS inpatient procedure codes (e.g. ``8E0KX1Z``,
  therapeutic massage) that do not belong on a CMS-1500/837P;
- :func:`normalise_dx_codes` and :func:`normalise_modifiers` put code lists in canonical
  form (``"M54.50,M62.830"``, ``"GP,59"``);
- :func:`valid_npi` applies the NPI check digit (Luhn with the ``80840`` prefix);
- :func:`normalise_provider_type` maps credentials ("LMT", "Physical Therapist") to the
  short provider types payer policies use;
- :func:`dx_list_problems` finds the unusable codes in comma-separated diagnosis lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from analytics.icd10cm import code_problem, fiscal_years

if TYPE_CHECKING:
    from analytics.line_schema import ServiceLineSchema

__all__ = [
    "CANONICAL_COLUMNS",
    "CANONICAL_DTYPES",
    "REQUIRED_COLUMNS",
    "PROVIDER_TYPES",
    "PROVIDER_TYPE_ALIASES",
    "CPT_PATTERN",
    "ServiceLineSchema",
    "check_icd10cm",
    "is_icd10pcs_like",
    "normalise_dx_codes",
    "normalise_modifiers",
    "check_modifiers",
    "valid_npi",
    "normalise_provider_type",
    "dx_list_problems",
]

#: Canonical service-line columns, in output order, with the dtype each holds after intake.
#: Text columns never hold NaN: an absent value is ``""``.
CANONICAL_DTYPES: dict[str, str] = {
    "line_id": "str",
    "claim_id": "str",
    "visit_id": "str",
    "patient_id": "str",
    "service_date": "datetime64[ns]",
    "provider_id": "str",
    "provider_type": "str",
    "payer_id": "str",
    "cpt": "str",
    "minutes": "float64",
    "modifiers": "str",
    "dx_codes": "str",
    "charge": "float64",
    "units_billed": "Int64",
    "body_region": "str",
    "prescription_on_file": "boolean",
    "submission_date": "datetime64[ns]",
    "place_of_service": "str",
    "rendering_npi": "str",
    "referring_npi": "str",
}

#: Canonical column names, in output order.
CANONICAL_COLUMNS: tuple[str, ...] = tuple(CANONICAL_DTYPES)

#: Columns an export must provide (directly, through a mapping, or as a default).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "service_date",
    "provider_id",
    "provider_type",
    "payer_id",
    "cpt",
    "charge",
)

#: Rendering-provider types that payer policies distinguish.
PROVIDER_TYPES: tuple[str, ...] = (
    "lmt",  # licensed massage therapist (WA: licensed massage practitioner)
    "pt",
    "pta",
    "ot",
    "ota",
    "dc",
    "md",
    "do",
    "np",
    "pa",
    "other",
)

#: Common spellings of provider credentials, keyed in the cleaned form that
#: :func:`normalise_provider_type` compares (lower case, no dots, single spaces).
PROVIDER_TYPE_ALIASES: dict[str, str] = {
    "licensed massage therapist": "lmt",
    "massage therapist": "lmt",
    "licensed massage practitioner": "lmt",
    "lmp": "lmt",
    "cmt": "lmt",
    "rmt": "lmt",
    "physical therapist": "pt",
    "physiotherapist": "pt",
    "dpt": "pt",
    "physical therapist assistant": "pta",
    "physical therapy assistant": "pta",
    "occupational therapist": "ot",
    "otr": "ot",
    "otr/l": "ot",
    "occupational therapist assistant": "ota",
    "occupational therapy assistant": "ota",
    "cota": "ota",
    "chiropractor": "dc",
    "doctor of chiropractic": "dc",
    "physician": "md",
    "medical doctor": "md",
    "osteopath": "do",
    "osteopathic physician": "do",
    "doctor of osteopathy": "do",
    "nurse practitioner": "np",
    "arnp": "np",
    "aprn": "np",
    "physician assistant": "pa",
    "physician associate": "pa",
    "pa-c": "pa",
}

#: A CPT code (5 digits; category II/III and PLA codes end in F, T, U or M) or a HCPCS
#: level II code (a letter and 4 digits, e.g. G0283).
CPT_PATTERN = r"\d{5}|\d{4}[FTUM]|[A-Z]\d{4}"

# Whitespace is spelled out: pandas runs \s through Python's re, the rest through Arrow.
_MODIFIER_SEPARATORS = r"[ \t\r\n,;:|]+"
_DX_SEPARATORS = r"[ \t\r\n,;|]+"
CANONICAL_MODIFIERS_PATTERN = r"(?:[A-Z0-9]{2}(?:,[A-Z0-9]{2}){0,3})?"
# A claim line carries at most four modifiers (CMS-1500 item 24D; 837P SV101-3..6).
_MAX_MODIFIERS = 4

# ICD-10-CM shape: letter, digit, letter or digit, then optionally a dot and 1-4 more.
_ICD10CM_DOTTED = r"[A-Z]\d[A-Z0-9](?:\.[A-Z0-9]{1,4})?"
_ICD10CM_BARE = r"[A-Z]\d[A-Z0-9]{1,5}"
CANONICAL_DX_PATTERN = f"(?:{_ICD10CM_DOTTED}(?:,{_ICD10CM_DOTTED})*)?"
_ICD9_NUMERIC = r"\d{3}(?:\.\d{1,2})?"
# ICD-10-PCS: seven characters from digits and letters other than I and O.
_ICD10PCS = r"[0-9A-HJ-NP-Z]{7}"
# Injury codes take a 7th character: A initial encounter, D subsequent, S sequela. Fracture
# categories (S?2, and the physeal fractures in S49/S59/S79/S89/S99) also use the
# healing-status characters B-R.
_INJURY_7TH = "ADS"
_FRACTURE_7TH = "ABCDEFGHJKMNPQRS"
_FRACTURE_CATEGORY = r"S\d2|S[4-9]9"
# Burn-extent categories T31 and T32 take no 7th character.
_NO_7TH_CATEGORY = r"T3[12]"


def _text(values: pd.Series) -> pd.Series:
    """Values as stripped upper-case text; missing values become ``""``."""
    return values.astype("str").fillna("").str.strip().str.upper()


def is_icd10pcs_like(codes: pd.Series) -> pd.Series:
    """Flag codes shaped like ICD-10-PCS inpatient procedure codes.

    A PCS code has seven characters, no dot and never the letters I or O. It is told apart
    from an ICD-10-CM code written without its dot (``S39012A``) by a digit in the first
    place, a letter in the second, or a letter other than the placeholder X in places 4-6,
    none of which happen in ICD-10-CM.

    Parameters
    ----------
    codes
        One code per element.

    Returns
    -------
    pandas.Series
        Boolean, on the input index.

    Examples
    --------
    >>> import pandas as pd
    >>> is_icd10pcs_like(pd.Series(["8E0KX1Z", "S39012A", "M54.50"])).tolist()
    [True, False, False]
    """
    text = _text(codes)
    shaped = text.str.fullmatch(_ICD10PCS)
    not_cm = (
        text.str.slice(0, 1).str.isdigit()
        | ~text.str.slice(1, 2).str.isdigit()
        | text.str.slice(3, 6).str.contains(r"[A-WYZ]", regex=True)
    )
    return (shaped & not_cm).astype(bool).rename(codes.name)


def _insert_dot(text: pd.Series) -> pd.Series:
    """Insert the ICD-10-CM dot after the 3rd character of bare codes longer than 3."""
    bare = ~text.str.contains(".", regex=False) & (text.str.len() > 3)
    dotted = text.str.slice(0, 3) + "." + text.str.slice(3)
    return text.where(~bare, dotted)


def _icd10cm_problems(codes: pd.Series, years: np.ndarray | None = None) -> tuple[pd.Series, pd.Series]:
    """Return ``(kind, reason)`` for each code; both ``""`` when the code is usable.

    ``years`` is the fiscal year of each code's date of service (0: none). Each distinct
    code (and year) is checked once (an export repeats a few hundred codes over millions of
    lines) and the answers are spread back to the lines.
    """
    text = _text(codes)
    if years is None:
        years = np.zeros(len(text), dtype=np.int64)
    pair = pd.MultiIndex.from_arrays([text.to_numpy(dtype=object), np.asarray(years)])
    position, distinct = pd.factorize(pair)
    if len(distinct) < len(text):
        kind, reason = _icd10cm_problems(pd.Series(distinct.get_level_values(0), dtype="str"),
                                         distinct.get_level_values(1).to_numpy(dtype=np.int64))
        return (
            pd.Series(kind.to_numpy(dtype=object)[position], index=codes.index, dtype="str"),
            pd.Series(reason.to_numpy(dtype=object)[position], index=codes.index, dtype="str", name=codes.name),
        )
    pcs = is_icd10pcs_like(text)
    canonical = _insert_dot(text).where(~pcs, text)
    bare = canonical.str.replace(".", "", regex=False)
    blank = text == ""
    icd9 = text.str.fullmatch(_ICD9_NUMERIC)
    shape_ok = canonical.str.fullmatch(_ICD10CM_DOTTED) & bare.str.fullmatch(_ICD10CM_BARE)

    category = bare.str.slice(0, 3)
    injury = bare.str.match(r"[ST]") & ~category.str.fullmatch(_NO_7TH_CATEGORY)
    short = injury & (bare.str.len() < 7)
    seventh = bare.str.slice(6, 7)
    fracture = category.str.fullmatch(_FRACTURE_CATEGORY)
    allowed_7th = seventh.str.fullmatch(f"[{_INJURY_7TH}]") | (
        fracture & seventh.str.fullmatch(f"[{_FRACTURE_7TH}]")
    )
    bad_7th = bare.str.match("S") & (bare.str.len() == 7) & ~allowed_7th

    conditions = [c.to_numpy(bool) for c in (blank, pcs, icd9, ~shape_ok, short, bad_7th)]
    kinds = [
        "",
        "dx is an ICD-10-PCS procedure code",
        "dx is an ICD-9 code",
        "dx is not an ICD-10-CM code",
        "dx injury code lacks its 7th character",
        "dx injury code has an invalid 7th character",
    ]
    kind = np.select(conditions, kinds, default="")
    reason = np.full(len(text), "", dtype=object)
    # well-formed codes: billable in the code set of the date of service's fiscal year
    for i in np.flatnonzero((kind == "") & ~blank.to_numpy(bool)):
        kind[i], reason[i] = code_problem(bare.iloc[i], int(years[i]))
    flagged = np.flatnonzero((kind != "") & (reason == ""))
    if len(flagged):
        # Messages are built for the flagged codes only.
        code, dotted, seventh = text.iloc[flagged], canonical.iloc[flagged], seventh.iloc[flagged]
        suggestion = _insert_dot(bare.iloc[flagged].str.pad(6, side="right", fillchar="X") + "A")
        messages = [
            "",
            code + " is an ICD-10-PCS inpatient procedure code; "
            "professional claims carry ICD-10-CM diagnoses",
            code + " looks like an ICD-9-CM code (claims since Oct 1, 2015 carry ICD-10-CM)",
            code + " is not an ICD-10-CM code (a letter, a digit, a letter or digit, then "
            "optionally a dot and 1-4 letters or digits, e.g. M54.50)",
            dotted + " is an injury code and needs a 7th character (A initial encounter, "
            "D subsequent encounter, S sequela), e.g. " + suggestion,
            dotted + " has 7th character " + seventh + ", but injury codes take A, D or S "
            "(fractures also B-R)",
        ]
        reason[flagged] = np.select(
            [c[flagged] for c in conditions],
            [np.asarray(m, dtype=object) for m in messages],
            default="",
        )
    return (
        pd.Series(kind, index=codes.index, dtype="str"),
        pd.Series(reason, index=codes.index, dtype="str", name=codes.name),
    )


def check_icd10cm(codes: pd.Series, service_dates: pd.Series | None = None) -> pd.Series:
    """Say why each diagnosis code cannot go on a professional claim; ``""`` when it can.

    Codes may carry their dot or not (``M54.50`` or ``M5450``) and any case. Blank values
    are not checked and give ``""``. The checks, in order:

    - ICD-10-PCS procedure codes (e.g. ``8E0KX1Z``, therapeutic massage), which belong on
      inpatient institutional claims only (FACTS sec. 8);
    - numeric ICD-9-CM codes (``724.2``);
    - the ICD-10-CM shape: a letter, a digit, a letter or digit, then optionally a dot and
      1-4 letters or digits;
    - injury codes (S and T chapters, except burn extent T31/T32) must have their 7th
      character, and for S-codes it is A, D or S (fracture categories also B-R);
    - the code is a billable code (not a category header) of the ICD-10-CM code set of the
      fiscal year of the date of service (:func:`analytics.icd10cm.code_problem`: FY2025 and
      FY2026 are held; a later date is checked against FY2026, an earlier one for form and the
      known changes only; without dates, FY2026). A category names the billable codes under
      it (M54.5 from 2021-10-01: M54.50, M54.51 or M54.59).

    Parameters
    ----------
    codes
        One code per element.
    service_dates
        The date of service of each code (aligned to ``codes``), which picks the code set.

    Returns
    -------
    pandas.Series
        Reason text per code (``""`` when usable), on the input index.

    Examples
    --------
    >>> import pandas as pd
    >>> check_icd10cm(pd.Series(["M54.50", "M5450", "8E0KX1Z"])).tolist()[:2]
    ['', '']
    >>> check_icd10cm(pd.Series(["S39.012"])).iloc[0]
    'S39.012 is an injury code and needs a 7th character (A initial encounter, D subsequent encounter, S sequela), e.g. S39.012A'
    >>> dates = pd.Series(pd.to_datetime(["2021-09-30", "2025-10-01"]))
    >>> [r[:60] for r in check_icd10cm(pd.Series(["M54.5", "M54.5"]), dates)]
    ['', 'M54.5 is a category, not a billable code, in the ICD-10-CM c']
    """
    years = None if service_dates is None else fiscal_years(pd.Series(service_dates).reset_index(drop=True))
    return _icd10cm_problems(codes, years)[1]


def _arrow_text(text: pd.Series) -> pyarrow.Array:
    """The text as one contiguous Arrow array (pandas may hold it in several chunks)."""
    values = pyarrow.array(text.astype("str").fillna(""), type=pyarrow.large_string())
    if isinstance(values, pyarrow.ChunkedArray):
        values = values.combine_chunks()
    return values


def _split_lists(text: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Split comma-separated lists: (row position of each item, items); empty items dropped."""
    lists = pc.split_pattern(_arrow_text(text), ",")
    pos = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    items = pd.Series(pd.array(pc.list_flatten(lists), dtype="str"))
    keep = (items != "").to_numpy(bool)
    return pos[keep], items[keep].reset_index(drop=True)


def _join_lists(
    pos: np.ndarray, items: pd.Series, index: pd.Index, *, sep: str = ",", dedupe: bool = True
) -> pd.Series:
    """Join items back into one string per row (``pos`` ascending), optionally without repeats."""
    if dedupe and len(items):
        first = ~pd.DataFrame({"pos": pos, "item": items.to_numpy()}).duplicated().to_numpy()
        pos, items = pos[first], items[first]
    offsets = np.searchsorted(pos, np.arange(len(index) + 1))
    lists = pyarrow.LargeListArray.from_arrays(
        pyarrow.array(offsets, type=pyarrow.int64()),
        _arrow_text(items),
    )
    joined = pc.binary_join(lists, pyarrow.scalar(sep, type=pyarrow.large_string()))
    return pd.Series(pd.array(joined, dtype="str"), index=index)


def dx_list_problems(dx_codes: pd.Series,
                     service_dates: pd.Series | None = None) -> tuple[np.ndarray, pd.Series, pd.Series]:
    """Problems in comma-separated diagnosis lists: (row positions, kinds, reasons).

    ``service_dates`` (aligned to ``dx_codes``) picks each row's code set (see
    :func:`check_icd10cm`); without it, the latest code set the toolkit holds.
    """
    pos, codes = _split_lists(dx_codes)
    years = None if service_dates is None else fiscal_years(pd.Series(service_dates).reset_index(drop=True))[pos]
    kinds, reasons = _icd10cm_problems(codes, years)
    bad = (reasons != "").to_numpy(bool)
    return pos[bad], kinds[bad].reset_index(drop=True), reasons[bad].reset_index(drop=True)


def normalise_dx_codes(dx_codes: pd.Series) -> pd.Series:
    """Put diagnosis lists in canonical form: ``"M54.50,M62.830"``.

    Codes may be separated by commas, semicolons, pipes or spaces; they are upper-cased,
    given their dot after the 3rd character when written without it, and repeats are
    dropped. ICD-10-PCS-shaped codes are left as written so :func:`check_icd10cm` can name
    them.

    Examples
    --------
    >>> import pandas as pd
    >>> normalise_dx_codes(pd.Series(["m5450; M62830", ""])).tolist()
    ['M54.50,M62.830', '']
    """
    text = _text(dx_codes).str.replace(_DX_SEPARATORS, ",", regex=True)
    pos, codes = _split_lists(text)
    codes = codes.where(is_icd10pcs_like(codes), _insert_dot(codes))
    return _join_lists(pos, codes, text.index).rename(dx_codes.name)


def normalise_modifiers(modifiers: pd.Series) -> pd.Series:
    """Put modifier lists in canonical form: ``"GP,59"``, or ``""`` when none.

    Accepts commas, spaces, colons, semicolons and pipes as separators, any case, and
    drops repeats. To merge separate ``modifier_1`` .. ``modifier_4`` columns, join them
    with commas first. The result is not validated; see :func:`check_modifiers`.

    Examples
    --------
    >>> import pandas as pd
    >>> normalise_modifiers(pd.Series(["gp 59", "GP:GP|KX", None])).tolist()
    ['GP,59', 'GP,KX', '']
    """
    text = _text(modifiers).str.replace(_MODIFIER_SEPARATORS, ",", regex=True)
    pos, items = _split_lists(text)
    return _join_lists(pos, items, text.index).rename(modifiers.name)


def check_modifiers(modifiers: pd.Series) -> pd.Series:
    """Say why a canonical modifier list is unusable; ``""`` when it is fine.

    Each modifier is two letters or digits, and a line carries at most four.

    Examples
    --------
    >>> import pandas as pd
    >>> check_modifiers(pd.Series(["GP,59", "G"])).tolist()
    ['', "modifier 'G' is not two letters or digits"]
    """
    text = _text(modifiers)
    pos, items = _split_lists(text)
    bad = ~items.str.fullmatch(r"[A-Z0-9]{2}").to_numpy(bool)
    message = "modifier '" + items[bad] + "' is not two letters or digits"
    reasons = _join_lists(pos[bad], message, text.index, sep="; ", dedupe=False)
    count = pd.Series(np.bincount(pos, minlength=len(text)), index=text.index)
    too_many = count > _MAX_MODIFIERS
    message = count.astype("str") + f" modifiers, but a claim line carries at most {_MAX_MODIFIERS}"
    sep = pd.Series(np.where(reasons != "", "; ", ""), index=text.index)
    return reasons.where(~too_many, reasons + sep + message).rename(modifiers.name)


def valid_npi(npi: pd.Series) -> pd.Series:
    """Check National Provider Identifiers: 10 digits whose last is the Luhn check digit.

    The check digit is computed over the first nine digits prefixed with ``80840`` (the
    card-issuer prefix for US health applications), which adds a constant 24 to the Luhn
    sum. Blank or malformed values are ``False``.

    Examples
    --------
    >>> import pandas as pd
    >>> valid_npi(pd.Series(["1234567893", "1234567890", ""])).tolist()
    [True, False, False]
    """
    text = npi.astype("str").fillna("").str.strip()
    shaped = text.str.fullmatch(r"\d{10}").to_numpy(bool)
    out = np.zeros(len(text), dtype=bool)
    if shaped.any():
        raw = "".join(text[shaped].tolist()).encode("ascii")
        digits = (np.frombuffer(raw, dtype=np.uint8).reshape(-1, 10) - ord("0")).astype(np.int64)
        # Positions 1, 3, 5, 7, 9 (counting from the left) are doubled: they sit an odd
        # distance from the check digit.
        doubled = digits[:, 0:9:2] * 2
        total = 24 + (doubled // 10 + doubled % 10).sum(axis=1) + digits[:, 1:9:2].sum(axis=1)
        out[shaped] = (10 - total % 10) % 10 == digits[:, 9]
    return pd.Series(out, index=npi.index, name=npi.name)


def normalise_provider_type(
    provider_type: pd.Series, aliases: Mapping[str, str] | None = None
) -> pd.Series:
    """Map provider credentials to :data:`PROVIDER_TYPES`.

    Comparison ignores case, dots and repeated spaces, so ``"L.M.T."``, ``"LMT"`` and
    ``"Licensed Massage Therapist"`` all give ``"lmt"``. Values that match nothing are
    returned cleaned (lower case) so a check can name them.

    Parameters
    ----------
    provider_type
        Credentials as exported.
    aliases
        Extra spellings, ``{"Massage": "lmt"}``; they take precedence over the built-in
        :data:`PROVIDER_TYPE_ALIASES`.

    Examples
    --------
    >>> import pandas as pd
    >>> normalise_provider_type(pd.Series(["LMT", "Physical Therapist", "D.C."])).tolist()
    ['lmt', 'pt', 'dc']
    """
    clean = (
        provider_type.astype("str")
        .fillna("")
        .str.lower()
        .str.replace(".", "", regex=False)
        .str.replace(r"[ \t\r\n]+", " ", regex=True)
        .str.strip()
    )
    table = {code: code for code in PROVIDER_TYPES}
    table.update(PROVIDER_TYPE_ALIASES)
    for alias, code in (aliases or {}).items():
        key = " ".join(str(alias).lower().replace(".", "").split())
        table[key] = code
    return clean.map(table).fillna(clean).astype("str").rename(provider_type.name)


def __getattr__(name: str) -> object:
    # The pandera model is built on first use: importing pandera costs about half a second,
    # which every report kernel would pay for a contract only tests and ``validate`` use.
    if name == "ServiceLineSchema":
        from analytics.line_schema import ServiceLineSchema

        return ServiceLineSchema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
