"""Reference data: code catalog, RVUs, conversion factors, GPCIs, NCCI pairs, MUEs, CARCs.

The package ships small extracts (numbers only, with our own short labels) in
``analytics/reference/*.csv``; every row has a ``source`` and a ``confidence`` column
(C confirmed in a primary source, S secondary, R unconfirmed). A user who downloads the full
CMS files points :meth:`Reference.load` at them and gets that year's figures.

``gpci.csv`` holds the GPCIs of every Medicare locality of 2025 (CMS RVU25D ``GPCI2025.csv``)
and 2026 (RVU26C ``GPCI2026.csv``), with the counties of each from the CMS locality file
(``25LOCCO.csv``); ``python -m analytics init --localities`` lists them.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from analytics.exceptions import ReferenceDataError, UnknownCodeError

__all__ = ["Reference", "load_reference", "NCCI_MODIFIERS"]

#: Modifiers NCCI accepts to bypass an indicator-1 pair (CPT 59 and the X{EPSU} subset, 2015).
NCCI_MODIFIERS = ("59", "XE", "XS", "XP", "XU")

_TABLES = ("codes", "rvu", "conversion_factors", "gpci", "ncci_ptp", "mue", "carc", "thresholds")
#: Text columns of a shipped table that a CMS file does not carry, kept (blank) when one is loaded.
_KEEP_BLANK = ("counties",)


def _read_shipped(name: str) -> pd.DataFrame:
    text = resources.files("analytics").joinpath("reference", f"{name}.csv")
    with resources.as_file(text) as path:
        return pd.read_csv(path, dtype=str, keep_default_na=False)


def _prepare(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Give a raw table its types; shared by shipped CSVs and CMS-file loads."""
    df = df.copy()
    num = lambda c: pd.to_numeric(df[c].replace("", None), errors="raise").astype("float64")  # noqa: E731
    if name == "codes":
        for c in ("timed", "mppr", "therapy"):
            df[c] = df[c].str.lower().eq("true")
    elif name == "rvu":
        df["year"] = df["year"].astype(int)
        for c in ("work_rvu", "pe_rvu_nonfacility", "pe_rvu_facility", "mp_rvu", "total_nonfacility",
                  "total_facility"):
            df[c] = num(c)
        df["mult_proc"] = df["mult_proc"].astype(str)
    elif name == "conversion_factors":
        df["year"] = df["year"].astype(int)
        df["conversion_factor"] = num("conversion_factor")
        df["effective_from"] = pd.to_datetime(df["effective_from"])
        df["effective_to"] = pd.to_datetime(df["effective_to"])
    elif name == "gpci":
        df["year"] = df["year"].astype(int)
        for c in ("pw_gpci", "pe_gpci", "mp_gpci"):
            df[c] = num(c)
    elif name == "ncci_ptp":
        df["effective_date"] = pd.to_datetime(df["effective_date"].replace("", None))
        df["deletion_date"] = pd.to_datetime(df["deletion_date"].replace({"": None, "*": None}))
        df["modifier_indicator"] = df["modifier_indicator"].astype(int)
    elif name == "mue":
        df["mue"] = df["mue"].astype(int)
        df["mai"] = df["mai"].astype(int)
    elif name == "carc":
        df["denial"] = df["denial"].astype(str).str.lower().eq("true")
    elif name == "thresholds":
        df["year"] = df["year"].astype(int)
        df["amount"] = num("amount")
    return df


@dataclasses.dataclass(frozen=True)
class Reference:
    """The reference tables the rules engine reads, one DataFrame each.

    Build it with :func:`load_reference` (shipped extracts) or :meth:`Reference.load`
    (shipped extracts overlaid with the CMS files a user downloaded).

    Examples
    --------
    >>> ref = load_reference()
    >>> ref.conversion_factor(2025)
    32.3465
    """

    codes: pd.DataFrame
    rvu: pd.DataFrame
    conversion_factors: pd.DataFrame
    gpci: pd.DataFrame
    ncci_ptp: pd.DataFrame
    mue: pd.DataFrame
    carc: pd.DataFrame
    thresholds: pd.DataFrame

    @classmethod
    def load(
        cls,
        *,
        pprrvu: str | Path | None = None,
        gpci: str | Path | None = None,
        ptp: str | Path | list[str | Path] | None = None,
        mue: str | Path | None = None,
    ) -> Reference:
        """Shipped reference data, with any CMS file given replacing its table.

        Parameters
        ----------
        pprrvu, gpci, ptp, mue
            Paths to the CMS relative value file (PPRRVU CSV), GPCI addendum, practitioner
            PTP edit files and practitioner MUE file. Rows of a year present in the CMS file
            replace the shipped rows of that year; other years are kept.
        """
        tables = {name: _prepare(name, _read_shipped(name)) for name in _TABLES}
        if any(p is not None for p in (pprrvu, gpci, ptp, mue)):
            from analytics import cms

            loaded = cms.reference_from_cms(pprrvu=pprrvu, gpci=gpci, ptp=ptp, mue=mue)
            for name, new in loaded.items():
                old = tables[name]
                if name == "rvu" and "modifier" in new.columns:
                    # the global service only: -26/-TC/-53 rows price other things
                    new = new[new["modifier"].fillna("") == ""]
                if "year" in new.columns and "year" in old.columns:
                    replaced = old["year"].isin(new["year"].unique())
                    if name == "gpci":  # the national row (GPCI 1.0) is ours; keep it for every year
                        replaced &= old["locality_id"] != "00000-00"
                        national = old[old["locality_id"] == "00000-00"]
                        missing = sorted(set(new["year"]) - set(national["year"]))
                        if missing:
                            base = national.iloc[[0]]
                            old = pd.concat([old] + [base.assign(year=y) for y in missing], ignore_index=True)
                            replaced = old["year"].isin(new["year"].unique()) & (old["locality_id"] != "00000-00")
                    old = old[~replaced]
                    # columns only the shipped table has (e.g. GPCI counties) stay, blank on new rows
                    extra = [c for c in old.columns if c not in new.columns and c in _KEEP_BLANK]
                    keep = [c for c in old.columns if c in new.columns or c in extra]
                    new = new.assign(**{c: "" for c in extra})
                    tables[name] = pd.concat([old[keep], new[keep]], ignore_index=True)
                else:
                    keep = [c for c in old.columns if c in new.columns]
                    tables[name] = new[keep].reset_index(drop=True)
            if pprrvu is not None:
                cf = loaded["rvu"][["year", "conversion_factor"]].drop_duplicates() if (
                    "conversion_factor" in loaded["rvu"].columns) else None
                if cf is not None and len(cf):
                    tables["conversion_factors"] = _merge_cf(tables["conversion_factors"], cf)
        return cls(**tables)

    # -- code catalog -------------------------------------------------------------------
    def code_table(self, codes: pd.Series) -> pd.DataFrame:
        """Catalog rows aligned to ``codes``; raises for codes the catalog lacks."""
        if len(codes) <= 64 and (codes.dtype == object or pd.api.types.is_string_dtype(codes.dtype)):
            key = (str(codes.dtype), *codes.to_numpy())  # a few distinct codes (the usual case)
            if all(type(c) is str for c in key):
                found = self._code_rows.get(key)
                if found is None and set(key[1:]) <= self.catalog_codes:
                    found = self.codes_by_cpt.reindex(codes.to_numpy())
                    if len(self._code_rows) >= 256:
                        self._code_rows.clear()
                    self._code_rows[key] = found
                if found is not None:
                    return found.copy(deep=False)  # copy-on-write: the remembered rows stay as they are
        known = codes.isin(self.codes["cpt"])
        if not known.all():
            bad = codes[~known].to_frame("cpt")
            raise UnknownCodeError.for_rows(
                bad,
                f"have a code the catalog does not know ({', '.join(sorted(set(bad['cpt'].astype(str))))})",
                "Use one of " + ", ".join(self.codes["cpt"]) + ", or add the code to the catalog "
                "(analytics/reference/codes.csv) with its timed flag and Medicare status.",
            )
        return self.codes_by_cpt.reindex(codes.to_numpy())

    # -- tables indexed once (the frames are read-only; every rule stage looks them up) -----
    @functools.cached_property
    def catalog_codes(self) -> frozenset:
        """The catalog's codes, as a set."""
        return frozenset(self.codes["cpt"].astype(str))

    @functools.cached_property
    def _code_rows(self) -> dict[tuple, pd.DataFrame]:
        """:meth:`code_table` results for small tuples of codes, remembered per reference."""
        return {}

    @functools.cached_property
    def codes_by_cpt(self) -> pd.DataFrame:
        """The code catalog indexed by code."""
        return self.codes.set_index("cpt")

    def rvu_grid(self, years: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
        """RVU columns (``status`` as objects, the RVUs as floats) for every (year, code) of
        ``years`` x ``codes``, year-major; missing pairs are NaN. Small grids are remembered."""
        return self._grid("rvu", self.rvu_by_year_cpt, years, codes,
                          ("status", "work_rvu", "pe_rvu_nonfacility", "mp_rvu"))

    def gpci_grid(self, years: np.ndarray, localities: np.ndarray) -> dict[str, np.ndarray]:
        """GPCI columns (floats) for every (year, locality) of ``years`` x ``localities``,
        year-major; missing pairs are NaN. Small grids are remembered."""
        return self._grid("gpci", self.gpci_by_year_locality, years, localities,
                          ("pw_gpci", "pe_gpci", "mp_gpci"))

    def _grid(self, name: str, table: pd.DataFrame, years, values, columns) -> dict[str, np.ndarray]:
        key = (name, *map(int, years), None, *values) if len(years) * len(values) <= 256 else None
        if key is not None and all(type(v) is str for v in key[len(years) + 2:]):
            found = self._code_rows.get(key)
            if found is not None:
                return found
        else:
            key = None
        r = table.reindex(pd.MultiIndex.from_product([years, values]))
        found = {c: r[c].to_numpy(dtype=object if c == "status" else float) for c in columns}
        for a in found.values():
            a.flags.writeable = False
        if key is not None:
            if len(self._code_rows) >= 256:
                self._code_rows.clear()
            self._code_rows[key] = found
        return found

    def threshold_amounts(self, kind: str) -> pd.Series:
        """The amounts of one kind of threshold (``kx_threshold``, ``part_b_deductible`` ...)
        indexed by year; read-only, built once per kind."""
        found = self._thresholds_by_kind.get(kind)
        if found is None:
            found = self.thresholds[self.thresholds["kind"] == kind].set_index("year")["amount"]
            self._thresholds_by_kind[kind] = found
        return found

    @functools.cached_property
    def _thresholds_by_kind(self) -> dict[str, pd.Series]:
        return {}

    @functools.cached_property
    def mue_by_cpt(self) -> pd.DataFrame:
        """The MUE table indexed by code."""
        return self.mue.set_index("cpt")

    @functools.cached_property
    def typical_group_by_carc(self) -> pd.Series:
        """Each CARC's typical group code (CO, PR, OA ...), indexed by CARC."""
        return self.carc.set_index("carc")["typical_group"]

    @functools.cached_property
    def rvu_by_year_cpt(self) -> pd.DataFrame:
        """The RVUs indexed by (year, code)."""
        return self.rvu.set_index(["year", "cpt"])

    @functools.cached_property
    def gpci_by_year_locality(self) -> pd.DataFrame:
        """The GPCIs indexed by (year, locality id)."""
        return self.gpci.set_index(["year", "locality_id"])

    # -- Medicare fee schedule ------------------------------------------------------------
    def conversion_factor(self, year: int, apm_status: str = "non_qp", on: str | None = None) -> float:
        """The MPFS conversion factor for a year (and APM status, and date within 2024)."""
        cf = self.conversion_factors[self.conversion_factors["year"] == int(year)]
        if cf.empty:
            years = ", ".join(map(str, sorted(self.conversion_factors["year"].unique())))
            raise ReferenceDataError(
                f"No Medicare conversion factor for {year} (known years: {years}). Price in a known year, or load "
                "that year's CMS relative value file (see README, Reference data)."
            )
        if (cf["apm_status"] != "any").any():
            match = cf[cf["apm_status"] == apm_status]
            if match.empty:
                raise ReferenceDataError(
                    f"No {year} conversion factor for APM status {apm_status!r}; "
                    f"use one of {sorted(cf['apm_status'].unique())}."
                )
            cf = match
        if len(cf) > 1:
            when = pd.Timestamp(on) if on is not None else None
            if when is None:
                raise ReferenceDataError(
                    f"{year} has {len(cf)} conversion factors by date; pass the service date."
                )
            cf = cf[(cf["effective_from"] <= when) & (cf["effective_to"] >= when)]
        return float(cf["conversion_factor"].iloc[0])

    def conversion_factors_for(self, dates: pd.Series, apm_status: pd.Series | str = "non_qp") -> pd.Series:
        """Vectorised conversion factor for each service date (2024 switches on Mar 9)."""
        cf = self.conversion_factors
        when = dates.to_numpy()
        years = dates.dt.year.to_numpy(dtype=float, na_value=np.nan)
        apm = (apm_status.to_numpy(dtype=object) if isinstance(apm_status, pd.Series)
               else np.full(len(dates), apm_status, dtype=object))
        found = np.full(len(dates), np.nan)
        for row in self.conversion_factor_rows:  # a later row wins where two match
            hit = (years == row.year) & (when >= row.effective_from) & (when <= row.effective_to)
            if row.apm_status != "any":
                hit &= apm == row.apm_status
            found[hit] = row.conversion_factor
        out = pd.Series(found, index=dates.index)
        if out.isna().any():
            bad = pd.DataFrame({"service_date": dates[out.isna()]})
            raise ReferenceDataError.for_rows(
                bad,
                "have a service date with no Medicare conversion factor",
                f"Known years: {sorted(cf['year'].unique())}. Load the CMS relative value file for "
                "that year with Reference.load(pprrvu=...).",
            )
        return out

    @functools.cached_property
    def ncci_pair_arrays(self) -> dict[str, np.ndarray]:
        """The NCCI pairs a modifier indicator other than 9 keeps, as arrays in table order:
        ``codes`` (the distinct codes), ``k1``/``k2`` (each pair's codes as positions in
        ``codes``), ``eff``, ``dele`` (dates) and ``ind`` (the indicator)."""
        ptp = self.ncci_ptp[self.ncci_ptp["modifier_indicator"] != 9]
        codes, k = np.unique(np.r_[ptp["column1"].to_numpy(dtype=object), ptp["column2"].to_numpy(dtype=object)]
                             .astype(str), return_inverse=True)
        n = len(ptp)
        return {"codes": codes, "k1": k[:n].reshape(-1), "k2": k[n:].reshape(-1),
                "eff": ptp["effective_date"].to_numpy(), "dele": ptp["deletion_date"].to_numpy(),
                "ind": ptp["modifier_indicator"].to_numpy(np.int64)}

    def ncci_pairs_for(self, cpt_values) -> dict[str, np.ndarray]:
        """The NCCI pairs (indicator 0 or 1) of two codes among ``cpt_values``, in table order:
        ``c1``/``c2`` (positions in ``cpt_values``), ``eff``, ``dele`` and ``ind``."""
        arrays = self.ncci_pair_arrays
        where = {v: i for i, v in enumerate(cpt_values)}
        position = np.array([where.get(c, -1) for c in arrays["codes"].tolist()], dtype=np.int64)
        c1, c2 = position[arrays["k1"]], position[arrays["k2"]]
        keep = (c1 >= 0) & (c2 >= 0)
        return {"c1": c1[keep], "c2": c2[keep], "eff": arrays["eff"][keep], "dele": arrays["dele"][keep],
                "ind": arrays["ind"][keep]}

    @functools.cached_property
    def conversion_factor_rows(self) -> list:
        """The conversion factor table as rows, dates as numpy datetimes."""
        cf = self.conversion_factors
        return [_CfRow(*row) for row in zip(
            cf["year"].tolist(), cf["apm_status"].tolist(), cf["effective_from"].to_numpy(),
            cf["effective_to"].to_numpy(), cf["conversion_factor"].tolist(), strict=True)]

    def gpci_for(self, year: int, locality_id: str) -> pd.Series:
        """GPCIs (pw, pe, mp) of one locality for one year; ``00000-00`` is national."""
        g = self.gpci[(self.gpci["year"] == int(year)) & (self.gpci["locality_id"] == locality_id)]
        if g.empty:
            known = self.gpci.loc[self.gpci["year"] == int(year), "locality_id"].tolist()
            if not known:
                raise ReferenceDataError(
                    f"No GPCIs for {year}. Load that year's CMS GPCI addendum with Reference.load(gpci=...)."
                )
            raise ReferenceDataError(
                f"Unknown Medicare locality {locality_id!r} for {year}: the {year} GPCIs hold {len(known)} "
                "localities, written MAC-locality (e.g. 01182-18 for Los Angeles, 00000-00 for national). List "
                "them with `python -m analytics init --localities` (add a state, e.g. CA, for its localities)."
            )
        return g.iloc[0][["pw_gpci", "pe_gpci", "mp_gpci"]].astype(float)

    def threshold(self, kind: str, year: int) -> float:
        t = self.thresholds[(self.thresholds["kind"] == kind) & (self.thresholds["year"] == int(year))]
        if t.empty:
            raise ReferenceDataError(f"No {kind} for {year}; add it to analytics/reference/thresholds.csv.")
        return float(t["amount"].iloc[0])

    def with_ptp_indicator(self, column1: str, column2: str, indicator: int) -> Reference:
        """A copy with one NCCI pair's modifier indicator set (e.g. 97140/97124 to 0).

        The CY indicator of 97140/97124 is unconfirmed (FACTS 4.2); the shipped default is 1
        (the pair may be unbundled with 59 or an X modifier when the services were distinct).
        """
        if indicator not in (0, 1, 9):
            raise ValueError("An NCCI modifier indicator is 0, 1 or 9.")
        ptp = self.ncci_ptp.copy()
        hit = (ptp["column1"] == column1) & (ptp["column2"] == column2)
        if not hit.any():
            raise ReferenceDataError(f"No NCCI pair {column1}/{column2} in the reference data.")
        ptp.loc[hit, "modifier_indicator"] = indicator
        return dataclasses.replace(self, ncci_ptp=ptp)

    def carc_category(self, carc: pd.Series) -> pd.Series:
        """Category of each CARC ("other" for codes outside the catalog)."""
        cat = self.carc.set_index("carc")["category"]
        return carc.astype(str).map(cat).fillna("other")


class _CfRow(NamedTuple):
    year: int
    apm_status: str
    effective_from: np.datetime64
    effective_to: np.datetime64
    conversion_factor: float


def _merge_cf(cf: pd.DataFrame, from_rvu: pd.DataFrame) -> pd.DataFrame:
    """Add conversion factors found in a CMS relative value file for years the table lacks."""
    new_years = sorted(set(from_rvu["year"]) - set(cf["year"]))
    rows = [
        {
            "year": y,
            "apm_status": "any",
            "effective_from": pd.Timestamp(f"{y}-01-01"),
            "effective_to": pd.Timestamp(f"{y}-12-31"),
            "conversion_factor": float(from_rvu.loc[from_rvu["year"] == y, "conversion_factor"].iloc[0]),
            "source": "CMS relative value file CONV FACTOR column",
            "confidence": "C",
        }
        for y in new_years
    ]
    return pd.concat([cf, pd.DataFrame(rows)], ignore_index=True) if rows else cf


@functools.cache
def load_reference() -> Reference:
    """The shipped reference data (cached; treat the frames as read-only)."""
    return Reference.load()
