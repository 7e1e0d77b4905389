"""The contract of the canonical service-line table as a pandera model.

Kept apart from :mod:`analytics.schemas` (the columns, patterns and checks it is made of) so
that reading a practice does not import pandera; ``analytics.schemas.ServiceLineSchema`` still
names it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from analytics.schemas import (
    CANONICAL_DX_PATTERN,
    CANONICAL_MODIFIERS_PATTERN,
    CPT_PATTERN,
    PROVIDER_TYPES,
    dx_list_problems,
    valid_npi,
)

__all__ = ["ServiceLineSchema"]


class ServiceLineSchema(pa.DataFrameModel):
    """Contract of the canonical service-line table (one row per billed line).

    Required columns must be present; optional ones may be absent from a frame built by
    hand, and :func:`analytics.intake.read_service_lines` always provides all of them.
    Extra columns are allowed and kept. Text columns hold ``""`` rather than NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> lines = pd.DataFrame({
    ...     "patient_id": ["p1"], "service_date": [pd.Timestamp("2025-03-04")],
    ...     "provider_id": ["t1"], "provider_type": ["lmt"], "payer_id": ["aetna"],
    ...     "cpt": ["97140"], "charge": [95.0]})
    >>> ServiceLineSchema.validate(lines).shape
    (1, 7)
    """

    line_id: Series[str] | None = pa.Field(unique=True)
    claim_id: Series[str] | None
    visit_id: Series[str] | None
    patient_id: Series[str] = pa.Field(str_length={"min_value": 1})
    service_date: Series[pd.Timestamp]
    provider_id: Series[str] = pa.Field(str_length={"min_value": 1})
    provider_type: Series[str] = pa.Field(isin=list(PROVIDER_TYPES))
    payer_id: Series[str] = pa.Field(str_length={"min_value": 1})
    cpt: Series[str] = pa.Field(str_matches=f"^(?:{CPT_PATTERN})$")
    minutes: Series[float] | None = pa.Field(ge=0, nullable=True)
    modifiers: Series[str] | None = pa.Field(str_matches=f"^{CANONICAL_MODIFIERS_PATTERN}$")
    dx_codes: Series[str] | None = pa.Field(str_matches=f"^{CANONICAL_DX_PATTERN}$")
    charge: Series[float] = pa.Field(ge=0)
    units_billed: Series[pd.Int64Dtype] | None = pa.Field(ge=0, nullable=True)
    body_region: Series[str] | None
    prescription_on_file: Series[pd.BooleanDtype] | None = pa.Field(nullable=True)
    submission_date: Series[pd.Timestamp] | None = pa.Field(nullable=True)
    place_of_service: Series[str] | None = pa.Field(str_matches=r"^\d{2}$")
    rendering_npi: Series[str] | None
    referring_npi: Series[str] | None

    class Config:
        coerce = True
        strict = False

    @pa.check("minutes", "charge", name="finite")
    @classmethod
    def _finite(cls, values: Series[float]) -> Series[bool]:
        return values.isna() | np.isfinite(values)

    @pa.dataframe_check(name="icd10cm")
    @classmethod
    def _icd10cm(cls, lines: pd.DataFrame) -> Series[bool]:
        if "dx_codes" not in lines:
            return pd.Series(True, index=lines.index)
        bad_rows = dx_list_problems(lines["dx_codes"], lines.get("service_date"))[0]
        return pd.Series(~np.isin(np.arange(len(lines)), bad_rows), index=lines.index)

    @pa.check("rendering_npi", "referring_npi", name="npi")
    @classmethod
    def _npi(cls, npi: Series[str]) -> Series[bool]:
        return (npi == "") | valid_npi(npi)

    @pa.dataframe_check(name="submission_not_before_service")
    @classmethod
    def _submission_after_service(cls, lines: pd.DataFrame) -> Series[bool]:
        if "submission_date" not in lines:
            return pd.Series(True, index=lines.index)
        return lines["submission_date"].isna() | (lines["submission_date"] >= lines["service_date"])
