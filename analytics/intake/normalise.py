"""From the mapped text columns of an export to canonical service lines, and every problem found.

The steps run in a fixed order (ids, visit, codes, amounts, claim), which is the order a row's
reasons are listed in. Each problem is ``(row position, column, kind, reason)``: ``kind`` is a
short label without values (for counts), ``reason`` names the value and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analytics.intake.credentials import credential_types
from analytics.intake.headers import ENGINE_COLUMNS, MODIFIER_COLUMNS
from analytics.intake.mapping import MappingSettings
from analytics.intake.values import (
    per_distinct,
    read_amounts,
    read_dates,
    read_numbers,
    read_yes_no,
)
from analytics.schemas import (
    CANONICAL_COLUMNS,
    CANONICAL_DTYPES,
    CPT_PATTERN,
    PROVIDER_TYPES,
    check_modifiers,
    dx_list_problems,
    normalise_dx_codes,
    normalise_modifiers,
    normalise_provider_type,
    valid_npi,
)

__all__ = ["Problems", "normalise", "ReadingContext"]

# A code written with its modifiers: "97140-GP 59", "97140:GP", or run together "97140GP59"
# (every modifier is two characters).
_CODE_WITH_MODIFIERS = r"^([A-Z0-9]{5})[ \-:]*([A-Z0-9]{2}(?:[ \-:,;|]*[A-Z0-9]{2})*)$"


class Problems:
    """Problems as (row position, column, kind, reason), in check order."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(self, mask: Any, column: str, kind: str, *parts: pd.Series | str) -> None:
        """A problem for the rows in ``mask``; the reason is ``parts`` joined, where a Series part
        gives each row's own value (messages are built for these rows only)."""
        hit = np.asarray(mask, dtype=bool)
        if not hit.any():
            return
        pos = np.flatnonzero(hit)
        text = np.full(len(pos), "", dtype=object)
        for part in parts:
            text = text + (part if isinstance(part, str) else part.iloc[pos].to_numpy(dtype=object))
        self._parts.append(pd.DataFrame({"pos": pos, "column": column, "kind": kind, "reason": text}))

    def add_reasons(self, reasons: pd.Series, column: str) -> None:
        """A problem for every row with a reason; the kind is the reason without its value
        (``"charge '120,50' has a comma ..."`` counts as ``charge has a comma ...``)."""
        hit = (reasons != "").to_numpy(bool)
        if not hit.any():
            return
        pos = np.flatnonzero(hit)
        text = reasons.iloc[pos].astype("str")
        kind = (text.str.replace(r" '.*?'", "", regex=True).str.split(r"[:(]", n=1, regex=True).str[0]
                .str.replace(r"\s+\S*[?]$", "", regex=True).str.strip())
        self._parts.append(pd.DataFrame({"pos": pos, "column": column, "kind": kind.to_numpy(dtype=object),
                                         "reason": text.to_numpy(dtype=object)}))

    def add_frame(self, frame: pd.DataFrame) -> None:
        if len(frame):
            self._parts.append(frame[["pos", "column", "kind", "reason"]])

    def frame(self) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame({"pos": pd.Series(dtype="int64"), "column": pd.Series(dtype="str"),
                                 "kind": pd.Series(dtype="str"), "reason": pd.Series(dtype="str")})
        out = pd.concat(self._parts, ignore_index=True)
        return out.astype({"pos": "int64", "column": "str", "kind": "str", "reason": "str"})


@dataclass(frozen=True)
class ReadingContext:
    """What the checks need besides the mapping: the timed codes of the catalog (a blank
    minutes value on one of them cannot be counted into units) and the day the export is read
    (a date of service after it is a question, not a fact)."""

    timed_codes: frozenset[str]
    today: pd.Timestamp


def _by_value(fn: Any, text: pd.Series) -> pd.Series:
    """``fn`` (text in, text out) run once per distinct value of ``text`` and spread to the rows."""
    codes, uniques = pd.factorize(text.astype("str").fillna(""))
    if len(uniques) * 2 > len(text):
        return fn(text).astype("str")
    done = fn(pd.Series(uniques, dtype="str")).to_numpy(dtype=object)
    return pd.Series(done[np.maximum(codes, 0)], index=text.index, dtype="str")


def _dx_problems(dx_text: pd.Series, service_dates: pd.Series) -> tuple[pd.Series, pd.DataFrame]:
    """Diagnosis lists in canonical form and their problems against the code set of each line's
    date of service, each distinct (list, date) checked once."""
    lists, written = pd.factorize(dx_text.astype("str").fillna(""))
    canonical = normalise_dx_codes(pd.Series(written, dtype="str")).to_numpy(dtype=object)
    days, _ = pd.factorize(service_dates.to_numpy(dtype="datetime64[D]"))
    pair_of_row, _ = pd.factorize(lists.astype(np.int64) * (int(days.max(initial=0)) + 2) + days)
    a_row = np.zeros(int(pair_of_row.max(initial=-1)) + 1, dtype=np.int64)
    a_row[pair_of_row] = np.arange(len(lists))  # a row of each pair, for its list and date
    bad_pair, kinds, reasons = dx_list_problems(pd.Series(canonical[lists[a_row]], dtype="str"),
                                                service_dates.iloc[a_row].reset_index(drop=True))
    per_pair = pd.DataFrame({"pair": np.asarray(bad_pair, dtype=np.int64), "kind": kinds.to_numpy(dtype=object),
                             "reason": reasons.to_numpy(dtype=object)})
    rows = pd.DataFrame({"pos": np.arange(len(lists), dtype=np.int64), "pair": pair_of_row})
    found = rows[rows["pair"].isin(per_pair["pair"])].merge(per_pair, on="pair", how="inner", sort=False)
    found = found.sort_values("pos", kind="stable").assign(column="dx_codes")
    values = canonical[lists] if len(lists) else np.zeros(0, dtype=object)
    return pd.Series(values, index=dx_text.index, dtype="str"), found[["pos", "column", "kind", "reason"]]


class _Fields:
    """The mapped text columns as the steps read them (blanks filled with the defaults)."""

    def __init__(self, text: pd.DataFrame, settings: MappingSettings, problems: Problems, context: ReadingContext):
        self.index = pd.RangeIndex(len(text))
        self.text = text.set_axis(self.index, axis=0)
        self.settings = settings
        self.problems = problems
        self.context = context

    def __contains__(self, name: str) -> bool:
        return name in self.text

    def column(self, name: str) -> pd.Series:
        """The column's text (``""`` where absent), blanks filled with the mapping's default."""
        values = self.text[name] if name in self.text else pd.Series("", index=self.index, dtype="str")
        default = (self.settings.defaults or {}).get(name)
        if default is not None:
            values = values.where(values != "", default)
        return values.astype("str")

    def required(self, name: str, values: pd.Series) -> None:
        self.problems.add(values == "", name, f"{name} is empty", f"{name} is empty")


def normalise(text: pd.DataFrame, settings: MappingSettings, source_row: np.ndarray, context: ReadingContext, *,
              id_prefix: str = "", earlier_ids: pd.Series | None = None) -> tuple[pd.DataFrame, Problems]:
    """Canonical columns (then any engine columns present) from the mapped text, and the problems.

    ``id_prefix`` qualifies generated line ids; ``earlier_ids`` maps line ids accepted from
    earlier files to where they were found, so a repeat is caught across files.
    """
    problems = Problems()
    fields = _Fields(text, settings, problems, context)
    out: dict[str, pd.Series] = {}
    _identity_columns(fields, out, source_row, id_prefix, earlier_ids)
    service_text = _visit_columns(fields, out)
    _code_columns(fields, out)
    _amount_columns(fields, out)
    _claim_columns(fields, out, service_text)
    canonical = pd.DataFrame({name: out[name] for name in CANONICAL_COLUMNS}, index=fields.index)
    canonical = canonical.astype(CANONICAL_DTYPES)
    for name in ENGINE_COLUMNS:
        if name in out:
            canonical[name] = out[name]
    return canonical, problems


def _identity_columns(fields: _Fields, out: dict[str, pd.Series], source_row: np.ndarray, id_prefix: str,
                      earlier_ids: pd.Series | None) -> None:
    """``line_id`` (generated where blank, unique within and across files), ``claim_id``,
    ``visit_id`` and ``patient_id``."""
    rows = pd.Series(source_row, index=fields.index).astype("str")
    line_id = fields.column("line_id")
    line_id = line_id.where(line_id != "", id_prefix + "L" + rows)
    repeated = line_id.duplicated(keep=False).to_numpy(bool)
    if repeated.any():  # the row each repeat repeats, for the repeats only
        first_row = rows[repeated].groupby(line_id[repeated].to_numpy()).transform("first").reindex(rows.index)
        fields.problems.add(line_id.duplicated(keep="first"), "line_id", "line_id repeats an earlier row",
                            "line_id '", line_id, "' repeats row ", first_row.fillna(""))
    if earlier_ids is not None and len(earlier_ids):
        fields.problems.add(line_id.isin(earlier_ids.index), "line_id", "line_id repeats an earlier file",
                            "line_id '", line_id, "' repeats ", line_id.map(earlier_ids).fillna(""))
    out["line_id"] = line_id
    out["claim_id"] = fields.column("claim_id")
    out["visit_id"] = fields.column("visit_id")
    out["patient_id"] = fields.column("patient_id")
    fields.required("patient_id", out["patient_id"])


def _visit_columns(fields: _Fields, out: dict[str, pd.Series]) -> pd.Series:
    """``service_date`` (not in the future), ``provider_id``, ``provider_type`` (from the
    credential after the provider's name when the export has none) and ``payer_id``."""
    settings = fields.settings
    service_text = fields.column("service_date")
    fields.required("service_date", service_text)
    service_date, reasons = per_distinct(read_dates, service_text, what="service_date", date_format=settings.date_format,
                                       century_pivot=settings.century_pivot)
    fields.problems.add_reasons(reasons, "service_date")
    today = fields.context.today
    future = (service_date > today).to_numpy(bool)
    fields.problems.add(future, "service_date", "service_date is in the future", "service_date '", service_text,
                        f"' is after today ({today.date()}): a date of service cannot be in the future "
                        "(a typo, or a date of birth in the wrong column?)")
    out["service_date"] = service_date.where(~future)

    provider = fields.column("provider_id")
    out["provider_id"] = provider
    fields.required("provider_id", provider)
    type_text = fields.column("provider_type")
    from_credential = credential_types(provider)
    use_credential = (type_text == "") & (from_credential != "")
    type_text = type_text.where(~use_credential, from_credential)
    provider_type = _by_value(lambda t: normalise_provider_type(t, settings.provider_types), type_text)
    fields.problems.add((type_text == "") & (provider != ""), "provider_type", "provider_type is empty",
                        "provider_type is empty and '", provider,
                        "' ends in no credential (e.g. ', PT' or ', LMT'); map the export's provider-type column, or "
                        "add the credential after the provider's name")
    fields.problems.add((type_text == "") & (provider == ""), "provider_type", "provider_type is empty",
                        "provider_type is empty")
    fields.problems.add((type_text != "") & ~provider_type.isin(PROVIDER_TYPES), "provider_type",
                        "provider_type is unknown", "provider_type '", type_text,
                        f"' is not one of {', '.join(PROVIDER_TYPES)} (add the spelling under provider_types in "
                        "mapping.yaml)")
    out["provider_type"] = provider_type
    out["payer_id"] = fields.column("payer_id")
    fields.problems.add(out["payer_id"] == "", "payer_id", "payer_id is empty",
                        "payer_id is empty: no payer to bill (write the payer, or 'cash' for self-pay)")
    return service_text


def _code_columns(fields: _Fields, out: dict[str, pd.Series]) -> None:
    """``cpt`` (modifiers written into the code split off), ``minutes`` (needed on a timed
    code), ``modifiers`` (the list and ``modifier_1`` .. ``modifier_4`` merged) and ``dx_codes``."""
    # Codes are text. Excel or a float column can turn 97140 into "97140.0"; a code written
    # with its modifiers ("97140-GP 59") is split.
    written = fields.column("cpt")
    cpt_text = _by_value(lambda t: t.str.upper().str.replace(r"^([0-9]{5})\.0+$", r"\1", regex=True), written)
    embedded_modifiers = _by_value(lambda t: t.str.extract(_CODE_WITH_MODIFIERS)[1].fillna("").str.replace(
        r"[ \-:,;|]+", "", regex=True).str.replace(r"(..)(?=.)", r"\1,", regex=True), cpt_text)
    cpt = _by_value(lambda t: t.str.extract(_CODE_WITH_MODIFIERS)[0].fillna(t), cpt_text)
    fields.required("cpt", cpt)
    not_code = _by_value(lambda t: pd.Series(np.where(t.str.fullmatch(CPT_PATTERN), "", "x"), dtype="str"), cpt)
    fields.problems.add((cpt != "") & (not_code != ""), "cpt", "cpt is not a CPT/HCPCS code", "cpt '", written,
                        "' is not a CPT/HCPCS code (5 digits, or a letter and 4 digits, e.g. 97140, G0283)")
    out["cpt"] = cpt

    minutes_text = fields.column("minutes")
    minutes, reasons = per_distinct(read_numbers, minutes_text, what="minutes")
    fields.problems.add_reasons(reasons, "minutes")
    fields.problems.add(minutes < 0, "minutes", "minutes is negative", "minutes '", minutes_text, "' is negative")
    if "minutes" in fields:
        timed = cpt.isin(fields.context.timed_codes).to_numpy(bool)
        fields.problems.add(timed & (minutes_text == "").to_numpy(bool), "minutes", "minutes blank on a timed code",
                            "minutes are blank on timed code ", cpt,
                            ": its units cannot be counted (write the direct minutes)")
    out["minutes"] = minutes.where(~(minutes < 0))

    pieces = [fields.column("modifiers")]
    pieces += [fields.column(name) for name in MODIFIER_COLUMNS if name in fields]
    pieces.append(embedded_modifiers.astype("str"))
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = joined + "," + piece
    modifiers = _by_value(normalise_modifiers, joined)
    why = _by_value(check_modifiers, modifiers)
    fields.problems.add(why != "", "modifiers", "modifiers are invalid", why)
    out["modifiers"] = modifiers

    dx_codes, problems = _dx_problems(fields.column("dx_codes"), out["service_date"])
    fields.problems.add_frame(problems)
    out["dx_codes"] = dx_codes


def _amount_columns(fields: _Fields, out: dict[str, pd.Series]) -> None:
    """``charge`` (``$1,200.00`` and ``(5.00)`` read; ambiguous amounts set aside),
    ``units_billed``, ``prescription_on_file`` and the engine's optional columns."""
    charge_text = fields.column("charge")
    fields.required("charge", charge_text)
    charge, reasons = per_distinct(read_amounts, charge_text, decimal_comma=fields.settings.decimal_comma, what="charge")
    fields.problems.add_reasons(reasons, "charge")
    fields.problems.add(charge < 0, "charge", "charge is negative", "charge '", charge_text, "' is negative")
    out["charge"] = charge

    units_text = fields.column("units_billed")
    units, reasons = per_distinct(read_numbers, units_text, what="units_billed")
    fields.problems.add_reasons(reasons, "units_billed")
    fractional = units.notna() & (units != np.floor(units))
    fields.problems.add(fractional, "units_billed", "units_billed is not a whole number", "units_billed '",
                        units_text, "' is not a whole number")
    fields.problems.add(units < 0, "units_billed", "units_billed is negative", "units_billed '", units_text,
                        "' is negative")
    usable = units.notna() & ~fractional & (units >= 0)
    out["units_billed"] = units.where(usable).astype("Int64")

    rx, reasons = per_distinct(read_yes_no, fields.column("prescription_on_file"), what="prescription_on_file")
    fields.problems.add_reasons(reasons, "prescription_on_file")
    out["prescription_on_file"] = rx
    if "prior_auth" in fields:
        # an authorisation column often holds the authorisation number itself: on file
        auth, _ = per_distinct(read_yes_no, fields.column("prior_auth"), what="prior_auth", other_is_yes=True)
        out["prior_auth"] = auth.fillna(False).astype("bool")
    for name in ("visits_before", "therapy_allowed_before", "deductible_remaining"):
        if name in fields:
            number, reasons = (read_numbers(fields.column(name), what=name) if name == "visits_before"
                               else read_amounts(fields.column(name), what=name,
                                                 decimal_comma=fields.settings.decimal_comma))
            fields.problems.add_reasons(reasons, name)
            out[name] = number


def _claim_columns(fields: _Fields, out: dict[str, pd.Series], service_text: pd.Series) -> None:
    """``submission_date`` (not before the service), ``place_of_service``, the NPIs and
    ``body_region``."""
    settings = fields.settings
    submitted_text = fields.column("submission_date")
    submitted, reasons = per_distinct(read_dates, submitted_text, what="submission_date", date_format=settings.date_format,
                                    century_pivot=settings.century_pivot)
    fields.problems.add_reasons(reasons, "submission_date")
    fields.problems.add(submitted < out["service_date"], "submission_date", "submission_date is before service_date",
                        "submission_date '", submitted_text, "' is before service_date '", service_text, "'")
    out["submission_date"] = submitted

    pos_text = fields.column("place_of_service")
    # Place-of-service codes are two digits; a spreadsheet turns 02 into 2.
    pos = pos_text.where(~pos_text.str.fullmatch(r"[0-9]"), "0" + pos_text)
    fields.problems.add((pos != "") & ~pos.str.fullmatch(r"[0-9]{2}"), "place_of_service",
                        "place_of_service is not two digits", "place_of_service '", pos_text,
                        "' is not a two-digit code (11 = office)")
    out["place_of_service"] = pos

    for name in ("rendering_npi", "referring_npi"):
        npi = fields.column(name)
        ten_digits = npi.str.fullmatch(r"[0-9]{10}")
        fields.problems.add((npi != "") & ~valid_npi(npi), name, f"{name} is not a valid NPI", f"{name} '", npi, "'",
                            pd.Series(np.where(ten_digits, " fails the NPI check digit", " is not a 10-digit NPI"),
                                      index=fields.index))
        out[name] = npi
    out["body_region"] = fields.column("body_region")
