"""The CMS-1500 view of an alternative: items 17, 21 and 24, as a table and as CSV.

Sources: FACTS sec. 8 (CMS-1500 items); Pub. 100-04 ch. 26 (paper claim completion).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analytics._files import write_csv
from analytics.exceptions import InputError
from analytics.payers import PayerPolicy
from analytics.pricing import to_cents
from analytics.refdata import Reference, load_reference
from analytics.scenarios.alternatives import Alternative, alternatives
from analytics.scenarios.catalog import code_catalog
from analytics.scenarios.session import MAX_POINTERS, THERAPY_MODIFIER, Referring, Session

__all__ = ["ClaimForm", "claim_form"]

_MAX_LINES_PER_FORM = 6  # CMS-1500 item 24 has six service lines
_MAX_MODIFIERS = 4  # item 24D
_DX_LETTERS = "ABCDEFGHIJKL"
_LINE_COLUMNS = [
    "page",
    "line",
    "24A_from",
    "24A_to",
    "24B_place_of_service",
    "24C_emg",
    "24D_code",
    "24D_modifier_1",
    "24D_modifier_2",
    "24D_modifier_3",
    "24D_modifier_4",
    "24E_pointer",
    "24F_charges",
    "24G_units",
    "24J_rendering_npi",
]
_CLAIM_COLUMNS = ["17_qualifier", "17_name", "17b_npi", "21_icd_indicator"] + [
    f"21{x}" for x in _DX_LETTERS
]


@dataclasses.dataclass(frozen=True)
class ClaimForm:
    """An alternative as the CMS-1500 (02/12) would carry it.

    Attributes
    ----------
    lines
        Item 24, one row per service line, six to a page (``page``, ``line``).
    diagnoses
        Item 21: ``item`` (21A ... 21L), ``letter``, ``code`` as recorded and ``on_form`` (no
        period, as paper claims print it); the ICD indicator is ``icd_indicator`` (0 = ICD-10-CM).
    referring
        Item 17 (qualifier and name) and 17b (NPI), or ``None``.
    omitted
        Services of the alternative left off because they earn no unit under the payer's method.
    """

    lines: pd.DataFrame
    diagnoses: pd.DataFrame
    referring: Referring | None
    icd_indicator: str = "0"
    omitted: tuple[str, ...] = ()

    @property
    def pages(self) -> int:
        return int(self.lines["page"].max()) if len(self.lines) else 0

    def to_csv(self, path: str | Path) -> Path:
        """Write one row per service line, with items 17 and 21 repeated on each row.

        Text a spreadsheet would run as a formula is written with a leading ``'`` (the OWASP rule).
        """
        return write_csv(self._flat(), path, float_format="%.2f")

    @classmethod
    def read_csv(cls, path: str | Path) -> ClaimForm:
        """Read a claim written by :meth:`to_csv`."""
        flat = pd.read_csv(path, dtype=str, keep_default_na=False)
        lines = flat[_LINE_COLUMNS].copy()
        lines["page"] = lines["page"].astype(int)
        lines["line"] = lines["line"].astype(int)
        lines["24F_charges"] = pd.to_numeric(lines["24F_charges"].replace("", None)).astype(float)
        lines["24G_units"] = lines["24G_units"].astype(int)
        first = flat.iloc[0] if len(flat) else pd.Series("", index=_CLAIM_COLUMNS)
        codes = [(f"21{x}", x, first[f"21{x}"]) for x in _DX_LETTERS if first[f"21{x}"]]
        diagnoses = _diagnosis_frame([c for _, _, c in codes])
        referring = (
            Referring(name=first["17_name"], npi=first["17b_npi"], qualifier=first["17_qualifier"])
            if first["17_qualifier"]
            else None
        )
        return cls(
            lines=lines,
            diagnoses=diagnoses,
            referring=referring,
            icd_indicator=first["21_icd_indicator"] or "0",
        )

    def _flat(self) -> pd.DataFrame:
        flat = self.lines.copy()
        ref = self.referring
        flat["17_qualifier"] = ref.qualifier if ref else ""
        flat["17_name"] = ref.name if ref else ""
        flat["17b_npi"] = ref.npi if ref else ""
        flat["21_icd_indicator"] = self.icd_indicator if len(self.diagnoses) else ""
        by_letter = dict(zip(self.diagnoses["letter"], self.diagnoses["code"], strict=True))
        for x in _DX_LETTERS:
            flat[f"21{x}"] = by_letter.get(x, "")
        return flat


def _diagnosis_frame(codes: Sequence[str]) -> pd.DataFrame:
    letters = list(_DX_LETTERS[: len(codes)])
    return pd.DataFrame(
        {
            "item": [f"21{x}" for x in letters],
            "letter": letters,
            "code": list(codes),
            "on_form": [
                c.replace(".", "") for c in codes
            ],  # Pub. 100-04 ch. 26 sec. 10.4: no period
        },
        columns=["item", "letter", "code", "on_form"],
    )


def _modifier_order(mods: Sequence[str]) -> list[str]:
    """Therapy discipline (GP/GO/GN) first, then CQ/CO, the NCCI modifier, KX, then the rest.

    FACTS sec. 8 shows item 24D as ``97140 GP 59``.
    """
    rank = {
        "GP": 0,
        "GO": 0,
        "GN": 0,
        "CQ": 1,
        "CO": 1,
        "59": 2,
        "XE": 2,
        "XS": 2,
        "XP": 2,
        "XU": 2,
        "KX": 3,
    }
    clean = [m for m in dict.fromkeys(x.strip().upper() for x in mods) if m]
    return sorted(clean, key=lambda m: rank.get(m, 4))


def claim_form(
    session: Session,
    alternative: Alternative | str,
    payer: PayerPolicy | None = None,
    *,
    reference: Reference | None = None,
) -> ClaimForm:
    """The CMS-1500 items 17, 21 and 24 of one alternative for one payer.

    Units (24G) follow the payer's unit method on the documented minutes (CMS when no payer
    is given); a payer that requires a therapy modifier gets GP/GO/GN under the session's
    plan of care. Services that earn no unit are left off (``.omitted``). Charges (24F) are
    the practice's charge per unit x units. Diagnosis pointers (24E) are the service's own
    ``dx`` or the session's first four diagnoses, primary first.

    Examples
    --------
    >>> s = Session.from_minutes({"97124": 30, "97140": 30}, service_date="2026-06-01",
    ...                          distinct_regions=True, dx_codes=["M54.50"])
    >>> form = claim_form(s, "97140 + 97124-XS")
    >>> form.lines[["24D_code", "24D_modifier_1", "24G_units", "24E_pointer"]].values.tolist()
    [['97140', '', 2, 'A'], ['97124', 'XS', 2, 'A']]
    """
    ref = reference or load_reference()
    if isinstance(alternative, str):
        found = {
            a.name: a
            for a in alternatives(
                session, reference=ref, payers={payer.payer_id: payer} if payer else None
            )
        }
        if alternative not in found:
            raise InputError(
                f"{alternative!r} is not an alternative of this session; choose one of "
                f"{', '.join(found)}."
            )
        alternative = found[alternative]
    from analytics.units import compute_units

    svc = {s.code: s for s in session.services}
    missing = [c for c in alternative.codes if c not in svc]
    if missing:
        raise InputError(
            f"The alternative bills {', '.join(missing)}, which the session does not record as "
            "performed; a claim reports only services performed and documented."
        )
    catalog = code_catalog(ref, list(svc))
    lines = pd.DataFrame(
        {
            "patient_id": "claim",
            "service_date": pd.Timestamp(session.service_date),
            "provider_id": "claim",
            "cpt": list(alternative.codes),
            "minutes": [
                np.nan if svc[c].minutes is None or not catalog[c][0] else float(svc[c].minutes)
                for c in alternative.codes
            ],
        }
    )
    units = compute_units(lines, payer.unit_method if payer else "cms", reference=ref)[
        "units"
    ].to_numpy()
    tag = THERAPY_MODIFIER.get(session.plan_of_care or "", "")
    rows, omitted = [], []
    for code, mod, u in zip(alternative.codes, alternative.modifiers, units, strict=True):
        if u == 0:
            omitted.append(code)
            continue
        mods = [mod]
        therapy = catalog[code][1]
        if payer is not None and payer.require_gp and therapy and tag:
            mods.append(tag)
        if payer is not None and payer.kx_threshold and therapy and session.kx_documented:
            mods.append("KX")
        mods = _modifier_order(mods)
        if len(mods) > _MAX_MODIFIERS:
            raise InputError(
                f"{code} would carry {len(mods)} modifiers; item 24D holds at most {_MAX_MODIFIERS}."
            )
        mods += [""] * (_MAX_MODIFIERS - len(mods))
        dx = svc[code].dx or session.dx_codes[:MAX_POINTERS]
        pointer = "".join(_DX_LETTERS[session.dx_codes.index(d)] for d in dx)
        fee = session.charges.get(code)
        rows.append(
            [code, *mods, pointer, np.nan if fee is None else float(to_cents(fee * int(u))), int(u)]
        )
    date = session.service_date.strftime("%m%d%y")
    body = pd.DataFrame(
        rows,
        columns=[
            "24D_code",
            "24D_modifier_1",
            "24D_modifier_2",
            "24D_modifier_3",
            "24D_modifier_4",
            "24E_pointer",
            "24F_charges",
            "24G_units",
        ],
    )
    i = np.arange(len(body))
    body = body.assign(
        page=i // _MAX_LINES_PER_FORM + 1,
        line=i % _MAX_LINES_PER_FORM + 1,
        **{
            "24A_from": date,
            "24A_to": date,
            "24B_place_of_service": session.place_of_service,
            "24C_emg": "",
            "24J_rendering_npi": session.rendering_npi,
        },
    )
    body["24G_units"] = body["24G_units"].astype(np.int64)
    body["24F_charges"] = body["24F_charges"].astype(float)
    return ClaimForm(
        lines=body[_LINE_COLUMNS],
        diagnoses=_diagnosis_frame(session.dx_codes),
        referring=session.referring,
        omitted=tuple(omitted),
    )
