"""Provider credentials written after a provider's name: ``"Hannah Reyes, PT"`` is a physical
therapist, ``"Tessa Ng, LMT"`` a licensed massage therapist.

Payer policies name rendering-provider types with the short codes of
:data:`analytics.schemas.PROVIDER_TYPES` (``lmt`` is the massage therapist). Practice-management
exports often carry no provider-type column but put the credential after the name; the
intake reads the type from there when the export gives none.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["CREDENTIALS", "credential_types", "CREDENTIAL_PATTERN"]

#: Credential (as written after a name, upper case, dots dropped) -> provider type. A massage
#: therapist's credential varies by state: LMT, MT, LMP (WA), LMBT (NC), CMT, RMT, NCMT,
#: BCTMB (the NCBTMB board certification).
CREDENTIALS = {
    "PT": "pt", "DPT": "pt", "MPT": "pt", "MSPT": "pt",
    "PTA": "pta", "LPTA": "pta",
    "OT": "ot", "OTR": "ot", "OTR/L": "ot", "OTD": "ot", "OT/L": "ot",
    "OTA": "ota", "COTA": "ota", "COTA/L": "ota",
    "DC": "dc",
    "LMT": "lmt", "MT": "lmt", "LMP": "lmt", "LMBT": "lmt", "CMT": "lmt", "RMT": "lmt", "NCMT": "lmt",
    "BCTMB": "lmt", "LMBT/CMT": "lmt",
    "MD": "md", "DO": "do",
    "NP": "np", "FNP": "np", "ARNP": "np", "APRN": "np", "FNP-C": "np",
    "PA": "pa", "PA-C": "pa",
}

_ONE = "|".join(re.escape(c) for c in sorted(CREDENTIALS, key=len, reverse=True))
_MANY = rf"(?:{_ONE})(?:\s*[,/ ]\s*(?:{_ONE}))*"
#: A name, a comma and one or more credentials: ``"Hannah Reyes, PT"``, ``"Jo Smith, PT, DPT"``,
#: ``"Tessa Ng, L.M.T."`` (compared in capitals, dots dropped). Without the comma the credential
#: must be written in capitals (``"Ana Ruiz MT"``), so that a surname such as Do or Pa is not
#: read as one.
CREDENTIAL_PATTERN = rf"^(?P<name>.*?[^\s,])\s*,\s*(?P<cred>{_MANY})$"
_SPACED_PATTERN = rf"^(?P<name>.*?[^\s,])\s+(?P<cred>{_MANY})$"


def credential_types(providers: pd.Series) -> pd.Series:
    """The provider type of each provider whose name ends in a credential, ``""`` otherwise.

    With several credentials (``"Jo Smith, PTA, LMT"``) the first one written after the name
    decides. Each distinct name is read once.

    Examples
    --------
    >>> import pandas as pd
    >>> credential_types(pd.Series(["Hannah Reyes, PT", "Tessa Ng, lmt", "Ana Ruiz MT", "Reyes, Hannah",
    ...                             "Bo Li, O.T.R./L", "Jo Smith, PTA, LMT", "Minh Do", "Lan Pa"])).tolist()
    ['pt', 'lmt', 'lmt', '', 'ot', 'pta', '', '']
    """
    codes, uniques = pd.factorize(providers.astype("str").fillna(""))
    if not len(uniques):
        return pd.Series("", index=providers.index, dtype="str")
    plain = pd.Series(uniques, dtype="str").str.replace(".", "", regex=False).str.strip()
    with_comma = plain.str.upper().str.extract(CREDENTIAL_PATTERN)["cred"]
    spaced = plain.str.extract(_SPACED_PATTERN)["cred"]
    cred = with_comma.fillna(spaced).fillna("")
    first = cred.str.split(r"\s*[,/ ]\s*", regex=True).str[0].fillna("")
    # "OTR/L" and "COTA/L" hold a slash: the two parts together before the first alone
    pair = cred.str.extract(r"^([A-Z]+/[A-Z])")[0].fillna("")
    kind = pair.map(CREDENTIALS).fillna(first.map(CREDENTIALS)).fillna("")
    values = kind.to_numpy(dtype=object)
    out = np.where(codes >= 0, values[np.maximum(codes, 0)], "")
    return pd.Series(out, index=providers.index, dtype="str", name=providers.name)
