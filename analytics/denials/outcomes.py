"""Line outcomes from 835 remittances: paid, partially denied or denied, which CARC carried
the denial and its category in the reference catalog.

Contractual write-downs (CO-45, CO-253, MPPR CO-59) and cost share (PR-1/2/3) are not
denials; every CARC the catalog marks as a denial is, whatever its group.
:func:`label_lines` puts these outcomes on the practice's own service lines, the training data
of the denial-risk model.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from analytics.denials.keys import (
    STR,
    contained,
    increasing,
    inner_pairs,
    int_codes,
    joined,
    positions,
    shared_codes,
    text_column,
    tuple_keys,
)
from analytics.exceptions import AnalyticsWarning
from analytics.refdata import load_reference
from analytics.remittance import link_remittance

__all__ = ["DENIAL_OUTCOMES", "OUTCOMES", "label_lines", "line_outcomes"]

OUTCOMES = ("paid", "partially_denied", "denied", "reversal")
#: The outcomes counted as denials by the rates, the training labels and the risk model.
DENIAL_OUTCOMES = ("denied", "partially_denied")

_OUTCOME_COLUMNS = (
    "file",
    "payer_id",
    "payer_name",
    "claim_index",
    "claim_id",
    "claim_status",
    "level",
    "line_index",
    "line_control_number",
    "cpt",
    "modifiers",
    "service_date",
    "payment_date",
    "charge",
    "allowed",
    "paid",
    "units",
    "outcome",
    "denied_amount",
    "contractual_amount",
    "patient_amount",
    "carc",
    "group_code",
    "category",
    "reason",
    "denial_codes",
    "rarc",
)


def _carc_table(reference) -> pd.DataFrame:
    ref = reference or load_reference()
    return (
        ref.carc[["carc", "label", "category", "denial"]].drop_duplicates("carc").set_index("carc")
    )


class _AdjustmentClasses(NamedTuple):
    """Every CAS adjustment classed by its CARC and group code, as codes into small tables."""

    raw_codes: np.ndarray  # each adjustment's code into carc_value (-1: no CARC)
    carc_value: np.ndarray  # the distinct CARCs (stripped, upper case), then NaN
    carc_code: np.ndarray  # each adjustment's code into category and label
    category: np.ndarray  # catalog category of each distinct CARC ("other" when unknown)
    label: np.ndarray  # catalog label of each distinct CARC
    group_codes: np.ndarray  # each adjustment's code into group_text (-1: no group code)
    group_text: np.ndarray  # the distinct group codes, then NaN
    is_denial: np.ndarray  # per adjustment
    is_pr_share: np.ndarray  # per adjustment: the patient's cost share, not a denial
    amount: np.ndarray  # per adjustment


def _classify_adjustments(adj: pd.DataFrame, catalog: pd.DataFrame) -> _AdjustmentClasses:
    """Class every adjustment, once per distinct CARC and group code."""
    raw_codes, raw_uniq = pd.factorize(adj["carc"], use_na_sentinel=True)
    upper = pd.Series(raw_uniq).astype(str).str.strip().str.upper()
    carc_value = np.append(upper.to_numpy(dtype=object), np.nan)  # by raw code; -1 is missing
    known = np.append(upper.isin(catalog.index).to_numpy(dtype=bool), False)
    if not known[raw_codes].all():
        seen = np.zeros(len(known), dtype=bool)
        seen[raw_codes] = True
        unknown = sorted(set(carc_value[seen & ~known]))
        warnings.warn(
            f"CARC(s) {', '.join(unknown)} are not in the reference catalog; they are counted as denials "
            "in category 'other'. Add them to analytics/reference/carc.csv with their category.",
            AnalyticsWarning,
            stacklevel=3,  # the caller of line_outcomes
        )
    # the catalog entry of each distinct CARC (a missing CARC reads as "")
    codes_u, carc_uniq = pd.factorize(upper, use_na_sentinel=True)
    uniq = np.append(np.asarray(pd.Index(carc_uniq).astype(str), dtype=object), "")
    carc_code = np.append(np.where(codes_u < 0, len(uniq) - 1, codes_u), len(uniq) - 1)[raw_codes]
    info = catalog.reindex(uniq)
    denial_u = (
        info["denial"].astype(object).where(info["denial"].notna(), True).to_numpy(dtype=bool)
    )
    category_u = info["category"].astype(object).where(info["category"].notna(), "other").to_numpy()
    label_u = (
        info["label"]
        .astype(object)
        .where(info["label"].notna(), "not in the CARC catalog")
        .to_numpy()
    )
    group_codes, group_uniq = pd.factorize(adj["group_code"], use_na_sentinel=True)
    group_text = np.append(np.asarray(group_uniq, dtype=object), np.nan)  # -1 is missing
    pr_u = (pd.Series(group_text, dtype=object).astype(str).str.upper() == "PR").to_numpy(
        dtype=bool, na_value=False
    )
    is_denial = denial_u[carc_code]
    is_pr_share = pr_u[group_codes] & ~is_denial
    amount = adj["amount"].to_numpy(dtype=float)
    return _AdjustmentClasses(
        raw_codes=raw_codes,
        carc_value=carc_value,
        carc_code=carc_code,
        category=category_u,
        label=label_u,
        group_codes=group_codes,
        group_text=group_text,
        is_denial=is_denial,
        is_pr_share=is_pr_share,
        amount=amount,
    )


class _TableKeys(NamedTuple):
    """int64 keys of (file, claim) and of (file, claim, line) in the remittance tables."""

    file_lines: np.ndarray
    file_claims: np.ndarray
    file_pay: np.ndarray
    claim_lines: np.ndarray
    claim_claims: np.ndarray
    claim_adj: np.ndarray
    line_lines: np.ndarray
    line_claims: np.ndarray
    line_adj: np.ndarray
    line_rem: np.ndarray


def _table_keys(lines, claims, adj, rem, pay) -> _TableKeys:
    """Integer keys of (file, claim) and of (file, claim, line), equal across the tables exactly
    where the values are equal, and ordered as the values (files by name, a claim's own row,
    whose line index is missing, before its lines)."""
    f_lines, f_claims, f_adj, f_rem, f_pay = shared_codes(
        [lines["file"], claims["file"], adj["file"], rem["file"], pay["file"]], sort=True
    )
    (c_lines, c_claims, c_adj, c_rem), _ = int_codes(
        [lines["claim_index"], claims["claim_index"], adj["claim_index"], rem["claim_index"]]
    )
    (l_lines, l_adj, l_rem), no_line = int_codes(
        [lines["line_index"], adj["line_index"], rem["line_index"]]
    )
    claim_k_lines, claim_k_claims, claim_k_adj = tuple_keys(
        [[f_lines, c_lines], [f_claims, c_claims], [f_adj, c_adj]]
    )
    line_k_lines, line_k_claims, line_k_adj, line_k_rem = tuple_keys(
        [
            [f_lines, c_lines, l_lines],
            [f_claims, c_claims, np.full(len(claims), no_line, dtype=np.int64)],
            [f_adj, c_adj, l_adj],
            [f_rem, c_rem, l_rem],
        ]
    )
    return _TableKeys(
        file_lines=f_lines,
        file_claims=f_claims,
        file_pay=f_pay,
        claim_lines=claim_k_lines,
        claim_claims=claim_k_claims,
        claim_adj=claim_k_adj,
        line_lines=line_k_lines,
        line_claims=line_k_claims,
        line_adj=line_k_adj,
        line_rem=line_k_rem,
    )


class _RowKeys(NamedTuple):
    """The keys of each outcome row, and whether it is a service line (not a lone claim)."""

    file: np.ndarray
    claim: np.ndarray
    line: np.ndarray
    is_line: np.ndarray


def _outcome_rows(lines, claims, keys: _TableKeys) -> tuple[pd.DataFrame, _RowKeys]:
    """One row per service line and per claim without service lines, in file, claim and line
    order."""
    f_lines, f_claims = keys.file_lines, keys.file_claims
    claim_k_lines, claim_k_claims = keys.claim_lines, keys.claim_claims
    line_k_lines, line_k_claims = keys.line_lines, keys.line_claims
    rows = lines[
        [
            "file",
            "st_index",
            "claim_index",
            "line_index",
            "claim_id",
            "line_control_number",
            "cpt",
            "modifiers",
            "service_date",
            "charge",
            "allowed",
            "paid",
            "paid_units",
        ]
    ]
    rows = rows.rename(columns={"paid_units": "units"})
    rows["level"] = "line"
    row_file, row_claim_k, row_line_k = f_lines, claim_k_lines, line_k_lines
    is_line_row = np.ones(len(lines), dtype=bool)
    # claims with no service line stand as one row
    lone_at = np.flatnonzero(~contained(claim_k_claims, claim_k_lines))
    if len(lone_at):
        lone = claims.iloc[lone_at]
        rows = pd.concat(
            [
                rows,
                pd.DataFrame(
                    {
                        "file": lone["file"].to_numpy(),
                        "st_index": lone["st_index"].to_numpy(),
                        "claim_index": lone["claim_index"].to_numpy(),
                        "line_index": pd.array([pd.NA] * len(lone), "Int64"),
                        "claim_id": lone["claim_id"].to_numpy(),
                        "line_control_number": None,
                        "cpt": "",
                        "modifiers": "",
                        "service_date": lone["claim_service_date"].to_numpy(),
                        "charge": lone["charge"].to_numpy(),
                        "allowed": np.nan,
                        "paid": lone["paid"].to_numpy(),
                        "units": np.nan,
                        "level": "claim",
                    }
                ),
            ],
            ignore_index=True,
        )
        row_file = np.concatenate([f_lines, f_claims[lone_at]])
        row_claim_k = np.concatenate([claim_k_lines, claim_k_claims[lone_at]])
        row_line_k = np.concatenate([line_k_lines, line_k_claims[lone_at]])
        is_line_row = np.r_[is_line_row, np.zeros(len(lone_at), dtype=bool)]
    # in file, claim and line order (a stable sort, a claim's own row first)
    if not increasing(row_line_k, strictly=False):
        order = np.argsort(row_line_k, kind="stable")
        rows = rows.take(order)
        row_file, row_claim_k, row_line_k, is_line_row = (
            row_file[order],
            row_claim_k[order],
            row_line_k[order],
            is_line_row[order],
        )
    rows = rows.reset_index(drop=True)
    return rows, _RowKeys(row_file, row_claim_k, row_line_k, is_line_row)


def _adjustments_on_rows(adj, carcs: _AdjustmentClasses, keys: _TableKeys, at: _RowKeys, charge):
    """Adjustments onto rows: line level by line index, claim level shared by charge.

    Returns the adjustment (``src``) and the row (``row``) of each pairing, the line level
    ones first (in the order of the table), then the claim level ones; ``share`` is the
    row's share of each claim level adjustment and ``cut`` where they start.
    """
    is_line_row, row_line_k, row_claim_k = at.is_line, at.line, at.claim
    line_k_adj, claim_k_adj = keys.line_adj, keys.claim_adj
    on_line = np.flatnonzero((adj["level"] == "line").to_numpy(dtype=bool, na_value=False))
    if is_line_row.all():
        li, line_row = inner_pairs(line_k_adj[on_line], row_line_k)
    else:
        line_rows = np.flatnonzero(is_line_row)
        li, ri = inner_pairs(line_k_adj[on_line], row_line_k[line_rows])
        line_row = line_rows[ri]
    line_adj = on_line[li]
    on_claim = np.flatnonzero((adj["level"] == "claim").to_numpy(dtype=bool, na_value=False))
    li, claim_row = inner_pairs(claim_k_adj[on_claim], row_claim_k)
    claim_adj = on_claim[li]
    spread = pd.DataFrame(
        {
            "file": adj["file"].array.take(claim_adj),
            "claim_index": adj["claim_index"].to_numpy()[claim_adj],
            "segment": adj["segment"].to_numpy()[claim_adj],
            "carc": carcs.carc_value[carcs.raw_codes[claim_adj]],
            "charge": charge[claim_row],
        }
    )
    by = spread.groupby(["file", "claim_index", "segment", "carc"], sort=False)["charge"]
    total = by.transform("sum")
    count = by.transform("size")
    share = np.where(total.abs() > 0, spread["charge"] / total.where(total.abs() > 0, 1), 1 / count)

    # each row's adjustments: its line's (in the order of the table), then its share of its
    # claim's
    src = np.concatenate([line_adj, claim_adj])
    row = np.concatenate([line_row, claim_row])
    cut = len(line_adj)
    return src, row, share, cut


def _adjustment_amounts(carcs: _AdjustmentClasses, src, row, share, cut, n: int):
    """Denied, contractual and patient dollars of each of the ``n`` rows, and the amount of each
    pairing (a row's share of a claim level adjustment)."""
    den_mask, pr_mask = carcs.is_denial[src], carcs.is_pr_share[src]
    raw = carcs.amount[src]
    amt = raw.copy()
    amt[cut:] = amt[cut:] * share
    parts = {}
    for name, mask in (
        ("denied", den_mask),
        ("contractual", ~den_mask & ~pr_mask),
        ("patient", pr_mask),
    ):
        v = np.where(mask, raw, 0.0)
        v[cut:] = v[cut:] * share
        parts[name] = v
    # pandas' grouped sum, in this order (the order decides the last bit of a total)
    sums = pd.DataFrame(parts).groupby(row).sum()
    totals = {}
    for name in ("denied", "contractual", "patient"):
        t = np.zeros(n)
        t[sums.index.to_numpy()] = sums[name].to_numpy()
        totals[f"{name}_amount"] = np.where(np.isnan(t), 0.0, t).round(2)
    return totals, amt


def _main_denial(adj, carcs: _AdjustmentClasses, src, row, amt, n: int):
    """The main denial of a row: the largest amount, then the first segment.

    Returns the ``carc``, ``group_code``, ``category`` and ``reason`` columns, and the row and
    adjustment of every denial (by row, the main one first).
    """
    den_mask = carcs.is_denial[src]
    carc_value, group_text = carcs.carc_value, carcs.group_text
    raw_codes, group_codes, carc_code = carcs.raw_codes, carcs.group_codes, carcs.carc_code
    d = np.flatnonzero(den_mask)
    d_order = np.lexsort((adj["segment"].to_numpy()[src[d]], -np.abs(amt[d]), row[d]))
    d_row, d_src = row[d][d_order], src[d][d_order]
    first = np.flatnonzero(np.r_[True, d_row[1:] != d_row[:-1]]) if len(d_row) else d_row[:0]
    main_row, main_src = d_row[first], d_src[first]

    def on_main(texts: np.ndarray, code: np.ndarray):
        """``texts[code]`` on the rows with a denial, "" on the others (and for code -1)."""
        pick = np.full(n, len(texts), dtype=np.int64)
        pick[main_row] = np.where(code < 0, len(texts), code)
        return text_column(np.append(np.asarray(texts, dtype=object), ""), pick)

    carc_fill = np.where(pd.isna(carc_value), "", carc_value)[:-1]
    group_fill = np.where(pd.isna(group_text), "", group_text)[:-1]
    columns = {
        "carc": on_main(carc_fill, raw_codes[main_src]),
        "group_code": on_main(group_fill, group_codes[main_src]),
        "category": on_main(carcs.category, carc_code[main_src]),
        "reason": on_main(carcs.label, carc_code[main_src]),
    }
    return columns, d_row, d_src


def _denial_codes(carcs: _AdjustmentClasses, d_row, d_src, n: int):
    """Every denial code of a row ("GROUP-CARC"), once each, in the order of its denials."""
    carc_value, group_text = carcs.carc_value, carcs.group_text
    raw_codes, group_codes = carcs.raw_codes, carcs.group_codes
    width = len(carc_value)
    pair = group_codes[d_src].astype(np.int64) * width + raw_codes[d_src] % width
    pair_codes, pair_uniq = pd.factorize(pair)
    pair_text = (
        pd.Series(group_text[pair_uniq // width], dtype=object).astype(str)
        + "-"
        + pd.Series(carc_value[pair_uniq % width], dtype=object).astype(str)
    )
    text_codes, text_uniq = pd.factorize(pair_text)
    code_id = text_codes[pair_codes]
    keep = ~pd.Series(d_row * max(len(text_uniq), 1) + code_id).duplicated().to_numpy()
    return joined(d_row[keep], np.asarray(text_uniq, dtype=object)[code_id[keep]], n)


def _remark_codes(rem, line_k_rem, row_line_k, n: int):
    """The remark codes (RARC) of each line, once each, in file order."""
    rem_line = np.flatnonzero((rem["level"] == "line").to_numpy(dtype=bool, na_value=False))
    li, ri = inner_pairs(line_k_rem[rem_line], row_line_k)
    r_order = np.argsort(ri, kind="stable")
    r_row, r_src = ri[r_order], rem_line[li][r_order]
    r_codes, r_uniq = pd.factorize(rem["code"], use_na_sentinel=True)
    r_text = pd.Series(np.append(np.asarray(r_uniq, dtype=object), np.nan), dtype=object)
    t_codes, t_uniq = pd.factorize(r_text.astype(str))
    r_id = t_codes[r_codes[r_src]]
    keep = ~pd.Series(r_row * max(len(t_uniq), 1) + r_id).duplicated().to_numpy()
    return joined(r_row[keep], np.asarray(t_uniq, dtype=object)[r_id[keep]], n)


def _claim_status(claims, claim_k_claims, row_claim_k, n: int):
    """The status (CLP02) of each row's claim, and whether the claim is a reversal."""
    c_at = positions(claim_k_claims, row_claim_k)
    c_at = np.where(c_at >= 0, c_at, len(claims))  # past the end: no such claim
    status = claims["status"]
    if n and (c_at < len(claims)).all() and status.dtype == STR and not status.isna().any():
        claim_status = status.array.take(c_at)
    else:
        claim_status = np.append(status.to_numpy(dtype=object), np.nan)[c_at]
    reversal = (
        pd.Series(
            np.append(claims["is_reversal"].to_numpy(dtype=object), np.nan)[c_at], dtype=object
        )
        .fillna(False)
        .to_numpy(dtype=bool)
    )
    return claim_status, reversal


def _outcome(paid_column, denied_amount, reversal):
    """``reversal`` on a reversal claim; else ``denied`` (``partially_denied``) when the row has
    denial dollars and paid nothing (something); else ``paid``."""
    paid = paid_column.to_numpy(dtype=float)
    has_denial = np.abs(denied_amount.to_numpy()) >= 0.005
    outcome = np.where(reversal, 3, np.where(has_denial, np.where(np.abs(paid) >= 0.005, 1, 2), 0))
    return pd.array(
        np.array(["paid", "partially_denied", "denied", "reversal"], dtype=object), dtype=STR
    ).take(outcome)


def _payer_columns(pay, f_pay, row_file, row_st_index) -> dict[str, object]:
    """The payer (id and name) and payment date of each row's transaction."""
    (p_st, r_st), _ = int_codes([pay["st_index"], row_st_index])
    pk, pl = tuple_keys([[f_pay, p_st], [row_file, r_st]])
    p_at = positions(pk, pl)
    p_at = np.where(p_at >= 0, p_at, len(pay))  # past the end: no such transaction
    payer_id = np.append(pay["payer_id"].to_numpy(dtype=object), np.nan)
    payer_name = np.append(pay["payer_name"].to_numpy(dtype=object), np.nan)
    payer_id = np.where(pd.isna(payer_id), payer_name, payer_id)
    payer_id_column = text_column(
        pd.Series(payer_id, dtype=object).fillna("unknown payer").to_numpy(), p_at
    )
    payer_name_column = text_column(pd.Series(payer_name, dtype=object).fillna("").to_numpy(), p_at)
    pdate = pay["payment_date"].fillna(pay["production_date"])
    payment_date = pd.concat(
        [pdate, pd.Series([pd.NaT], dtype=pdate.dtype)], ignore_index=True
    ).to_numpy()[p_at]
    return {
        "payer_id": payer_id_column,
        "payer_name": payer_name_column,
        "payment_date": payment_date,
    }


def line_outcomes(remittance, reference=None) -> pd.DataFrame:
    """The outcome of every remittance service line: paid, partially denied or denied, and why.

    Each CAS adjustment is classed by its CARC in the reference catalog: cost share (PR-1/2/3)
    and contractual write-downs (CO-45, CO-253, MPPR CO-59, OA-23 prior payer ...) are not
    denials; every CARC the catalog marks as a denial is, whatever its group (PR-119, a benefit
    maximum passed to the patient, is a denial). A line is ``denied`` when denial adjustments
    are present and it paid nothing, ``partially_denied`` when it also paid something, else
    ``paid``; lines of a reversal claim (CLP02 = 22) are ``reversal``. Claim-level adjustments
    are shared among the claim's lines in proportion to their charges; a claim with no service
    lines gets one row of its own (``level`` = ``"claim"``).

    Parameters
    ----------
    remittance
        A :class:`analytics.remittance.Remittance` (from ``read_835`` / ``read_835_many``).
    reference
        Reference data (CARC catalog); default the shipped tables.

    Returns
    -------
    DataFrame
        One row per service line (and per claim without lines): ``payer_id``, ``claim_id``,
        ``cpt``, ``modifiers``, ``service_date``, ``payment_date``, ``charge``, ``allowed``,
        ``paid``, ``outcome``, ``denied_amount``, ``contractual_amount``, ``patient_amount``,
        the main denial ``carc`` (largest denial amount), its ``group_code``, ``category`` and
        ``reason``, all ``denial_codes`` (e.g. ``"CO-97"``) and the line's ``rarc``.

    Warns
    -----
    AnalyticsWarning
        When a CARC is not in the catalog (it is counted as a denial in category ``other``).

    Examples
    --------
    >>> from analytics.remittance import read_835
    >>> remit = read_835("ST*835*1~BPR*I*40*C*CHK************20260320~CLP*A1*1*70*40~SVC*HC:97140*45*40~"
    ...                  "CAS*CO*45*5~SVC*HC:97124*25*0~CAS*CO*97*25~SE*8*1~")
    >>> line_outcomes(remit)[["cpt", "outcome", "carc", "category"]].values.tolist()
    [['97140', 'paid', '', ''], ['97124', 'denied', '97', 'bundling']]
    """
    catalog = _carc_table(reference)
    lines = remittance.service_lines
    claims = remittance.claims
    adj = remittance.adjustments
    pay = remittance.payments
    rem = remittance.remarks

    carcs = _classify_adjustments(adj, catalog)
    keys = _table_keys(lines, claims, adj, rem, pay)
    rows, at = _outcome_rows(lines, claims, keys)
    n = len(rows)

    src, row, share, cut = _adjustments_on_rows(
        adj, carcs, keys, at, rows["charge"].to_numpy(dtype=float)
    )
    amounts, amt = _adjustment_amounts(carcs, src, row, share, cut, n)
    main, d_row, d_src = _main_denial(adj, carcs, src, row, amt, n)
    for name, values in (*amounts.items(), *main.items()):
        rows[name] = values
    rows["denial_codes"] = _denial_codes(carcs, d_row, d_src, n)
    rows["rarc"] = _remark_codes(rem, keys.line_rem, at.line, n)

    rows["claim_status"], reversal = _claim_status(claims, keys.claim_claims, at.claim, n)
    rows["outcome"] = _outcome(rows["paid"], rows["denied_amount"], reversal)
    payer = _payer_columns(pay, keys.file_pay, at.file, rows["st_index"])
    for name, values in payer.items():
        rows[name] = values
    rows["modifiers"] = rows["modifiers"].fillna("").astype(str)
    rows["cpt"] = rows["cpt"].fillna("").astype(str)
    return rows[list(_OUTCOME_COLUMNS)].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Training lines: the practice's service lines labelled with their remittance outcome
# ---------------------------------------------------------------------------------------


def label_lines(
    service_lines: pd.DataFrame, outcomes: pd.DataFrame, *, all_lines: bool = False
) -> pd.DataFrame:
    """The practice's service lines with the outcome of their remittance line.

    Lines are linked to :func:`line_outcomes` rows by claim id + line control number, then
    claim id + code + date (:func:`analytics.remittance.link_remittance`).

    Parameters
    ----------
    all_lines
        Keep the lines without a remittance (open claims, self-pay) with an unknown
        (``<NA>``) ``denied``. :meth:`DenialRiskModel.fit` learns from the known ones and
        uses all of them for the visit-level features (visit number in the year, other codes
        of the visit), so pass every line of the practice.

    Returns
    -------
    DataFrame
        The service lines (their own index and columns) plus ``outcome``, ``denied``
        (outcome denied or partially denied), ``category``, ``carc``, ``group_code``,
        ``denied_amount``, ``paid`` and ``payment_date``.
    """

    remit = outcomes[outcomes["level"] == "line"]
    linked = link_remittance(service_lines, remit)
    m = linked.matched
    cols = ("outcome", "category", "carc", "group_code", "denied_amount", "paid", "payment_date")
    if all_lines:
        out = service_lines.copy()
        where = out.index.get_indexer(m["charge_row"].to_numpy())
        for col in cols:
            values = pd.Series(pd.NA, index=out.index, dtype=object)
            values.iloc[where] = m[f"remit_{col}"].to_numpy()
            out[col] = values
        denied = pd.array([pd.NA] * len(out), dtype="boolean")
        denied[where] = m["remit_outcome"].isin(DENIAL_OUTCOMES).to_numpy()
        out["denied"] = denied
        return out
    out = service_lines.loc[m["charge_row"].to_numpy()].copy()
    for col in cols:
        out[col] = m[f"remit_{col}"].to_numpy()
    out["denied"] = out["outcome"].isin(DENIAL_OUTCOMES).to_numpy()
    return out
