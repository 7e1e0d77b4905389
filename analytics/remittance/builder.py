"""Build the typed tables of one or more parts of 835 files, and their balancing checks.

The reader collects each part column by column (:class:`~analytics.remittance.scan.Scan`);
building turns those columns into the tables of a :class:`Remittance` in one vectorised pass,
for one part of a file or for the whole of many small files at once.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Iterable, Sequence, Sized

import numpy as np
import pandas as pd
import pyarrow as pa

from analytics.remittance.balancing import balance_table, note_balance, transaction_sums
from analytics.remittance.columns import (
    NAT,
    DateParser,
    Placed,
    chain_lists,
    check_finite,
    decode_procedures,
    factorize,
    join_arrays,
    label_column,
    or_none,
    row_starts,
    spread,
)
from analytics.remittance.scan import Entry, OpenTransaction, Scan
from analytics.remittance.tables import (
    ADJUSTMENT_SCHEMA,
    CLAIM_SCHEMA,
    DATE,
    LINE_SCHEMA,
    PAYMENT_SCHEMA,
    PLB_SCHEMA,
    REMARK_SCHEMA,
    Remittance,
    typed_frame,
)


def amounts_finite(scan: Scan) -> bool:
    """Every amount :func:`build_tables` checks is finite, so the part builds without an
    error and can be built together with other files' parts."""
    for values in (
        scan.c_charge, scan.c_paid, scan.c_pr, scan.l_charge, scan.l_paid, scan.l_units,
        scan.a_amount,
    ):  # fmt: skip
        # a finite sum means finite values; a sum that overflows is looked at value by value
        if not math.isfinite(sum(values)) and not np.isfinite(np.frombuffer(values)).all():
            return False
    if not all(math.isfinite(row[6]) for row in scan.plb):
        return False
    allowed = scan.l_more["B6"]
    return not any(math.isinf(v) for v in allowed.values())  # type: ignore[arg-type]


def repeated_text(values: Sequence[object], *, blank_is_null: bool = False) -> pa.Array | list:
    """A text column of values that repeat (codes, dates, keys), as Arrow strings: each
    distinct value is converted once and the column taken from them. ``blank_is_null`` makes
    empty strings missing. Values that are not all text are returned as a list, for
    :func:`~analytics.remittance.tables.typed_frame` to convert as it would any column."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    codes, distinct = pd.factorize(column)
    found = distinct.tolist()
    if blank_is_null:
        found = [v or None for v in found]
    try:
        dictionary = pa.array(found, type=pa.large_string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return or_none(list(values)) if blank_is_null else list(values)  # type: ignore[arg-type]
    missing = codes < 0
    return dictionary.take(pa.array(codes, mask=missing if missing.any() else None))


def _labels(labels: Sequence[str], codes: np.ndarray) -> pa.Array:
    """A text column from a few labels and each row's label number (-1: missing)."""
    missing = codes < 0
    indices = pa.array(codes, type=pa.int64(), mask=missing if missing.any() else None)
    return pa.array(labels, type=pa.large_string()).take(indices)


def build_tables(entries: Sequence[Entry]) -> tuple[Remittance, list[OpenTransaction]]:
    """Typed tables of one or more parts, then their balancing checks.

    The parts are either consecutive parts of one file (one at a time, as :func:`iter_835`
    reads them) or whole files read by :meth:`Reader.collect`. Several parts are built as one:
    rows keep their file's own indexes, segment numbers and ``file`` name, each file's rows stay
    together, and the tables equal those of :meth:`Remittance.concat` over the parts built one
    by one, for the cost of one build. Warnings and balance results go to each file's notes.

    Before an interchange's composites are split its component separator is settled. Returns
    the tables and, for each part, the sums of its transaction still open (to carry into the
    file's next part).
    """
    build = _Build(entries)
    payments = build.payment_table()
    build.claim_keys()
    build.line_keys()
    codes = build.procedure_codes()
    original = build.original_codes()
    service_date, source, claim_service = build.service_dates()
    allowed = build.allowed_amounts()
    claims = build.claim_table(claim_service)
    service_lines = build.line_table(codes, original, service_date, source, allowed)
    adjustments = build.adjustment_table()
    remarks = build.remark_table()
    plb = build.plb_table()
    balance, carries = build.balance_checks(plb["amount"].to_numpy())
    remit = Remittance(
        payments=payments,
        claims=claims,
        service_lines=service_lines,
        adjustments=adjustments,
        remarks=remarks,
        plb=plb,
        balance=balance,
    )
    return remit, carries


class _Build:
    """One build of :func:`build_tables`, step by step.

    The setup finds where each part's rows go in the stacked tables; each step then builds a
    table, or columns that later steps share, and keeps on the instance what later steps use.
    :func:`build_tables` runs the steps in a fixed order, so that of two amounts that are not
    finite the same one is reported, and the notes come out the same, whatever the parts.
    """

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = entries
        self.scans = scans = [e.scan for e in entries]
        self.names = [e.name for e in entries]
        self.single = len(entries) == 1
        self.dates = DateParser([e.notes for e in entries])
        self.file_names = None if self.single else pa.array(self.names, type=pa.large_string())
        counts, owners = self.counts, self.owners

        # Rows per part, and shifts from a part's 1-based claim and line numbers (which count on
        # from the file's earlier parts) to rows of the stacked tables.
        self.n_c, self.n_l, self.n_a = (
            counts(lambda s: s.c_seg),
            counts(lambda s: s.l_seg),
            counts(lambda s: s.a_seg),
        )
        self.n_r, self.n_p, self.n_pay = (
            counts(lambda s: s.remarks),
            counts(lambda s: s.plb),
            counts(lambda s: s.payments),
        )
        self.claim_shift = row_starts(self.n_c) - np.array(
            [s.claim_base + 1 for s in scans], dtype="int64"
        )
        self.line_shift = row_starts(self.n_l) - np.array(
            [s.line_base + 1 for s in scans], dtype="int64"
        )
        self.n_claims, self.n_lines = int(self.n_c.sum()), int(self.n_l.sum())
        self.c_files, self.l_files, self.a_files = (
            owners(self.n_c),
            owners(self.n_l),
            owners(self.n_a),
        )
        self.r_files, self.p_files, self.pay_files = (
            owners(self.n_r),
            owners(self.n_p),
            owners(self.n_pay),
        )

    # ---- helpers -------------------------------------------------------------------------

    def counts(self, rows: Callable[[Scan], Sized]) -> np.ndarray:
        return np.array([len(rows(s)) for s in self.scans], dtype="int64")

    def owners(self, per_part: np.ndarray) -> np.ndarray | None:
        """The part of each row (None for a single part)."""
        if self.single:
            return None
        return np.repeat(np.arange(len(self.entries), dtype="int64"), per_part)

    def file_column(self, files: np.ndarray | None, rows: int) -> pa.Array:
        """The ``file`` column of a table of ``rows`` rows, as Arrow strings (no Python string
        per row)."""
        if self.file_names is None:
            return pa.repeat(pa.scalar(self.names[0], type=pa.large_string()), rows)
        return self.file_names.take(pa.array(files, type=pa.int64()))

    def claim_id_column(self, rows: np.ndarray) -> pa.Array:
        """The claim id of each row, from the row of its claim."""
        return self.claim_id_text.take(pa.array(rows, type=pa.int64()))

    @staticmethod
    def placed(dicts: Iterable[dict[int, object]], shifts: np.ndarray) -> Placed:
        return list(zip(dicts, shifts.tolist(), strict=True))

    def money(
        self, values: list[array], segments: np.ndarray, what: str, files: np.ndarray | None
    ) -> np.ndarray:
        return check_finite(join_arrays(values, "float64"), segments, what, self.names, files)

    def line_values(self, key: str, fill: object = None) -> np.ndarray:
        more = [s.l_more for s in self.scans]
        return spread(self.placed([m[key] for m in more], self.line_shift), self.n_lines, fill)

    # ---- steps ---------------------------------------------------------------------------

    def payment_table(self) -> pd.DataFrame:
        """Payments: one per ST, in the part that reads its SE."""
        dates, pay_files = self.dates, self.pay_files
        per_part = [s.payments for s in self.scans]
        pays: list[dict[str, object]] = chain_lists(per_part)  # type: ignore[assignment]
        for e in self.entries:
            for pay in e.scan.payments:
                if pay.get("bpr_handling") is None:
                    e.notes.no_bpr.append(pay["segment"])  # type: ignore[arg-type]
            for pay in e.scan.payments:
                if pay.get("bpr_handling") is not None and not pay.get("payment_date"):
                    e.notes.undated.append(pay["bpr_segment"])  # type: ignore[arg-type]
        pay_columns = {c: [pay.get(c) for pay in pays] for c in PAYMENT_SCHEMA if c != "file"}
        pay_segments = [pay.get("bpr_segment", pay["segment"]) for pay in pays]
        self.pay_columns = pay_columns
        self.paid_amount = paid_amount = np.array(pay_columns["paid_amount"], dtype="float64")
        return typed_frame(
            {
                "file": self.file_column(pay_files, len(pays)),
                **pay_columns,
                "paid_amount": paid_amount,
                "payment_date": dates(
                    pay_columns["payment_date"], pay_segments, "BPR16", pay_files
                ),
                "production_date": dates(
                    pay_columns["production_date"], pay_columns["segment"], "DTM*405", pay_files
                ),
            },
            PAYMENT_SCHEMA,
        )

    def claim_keys(self) -> None:
        """Segment numbers, ids and statement dates of the claims (loop 2100)."""
        scans, placed = self.scans, self.placed
        claim_shift, n_claims = self.claim_shift, self.n_claims
        self.c_seg = c_seg = join_arrays([s.c_seg for s in scans], "int64")
        self.claim_from = self.dates(
            spread(placed([s.c_dates["232"] for s in scans], claim_shift), n_claims),
            c_seg,
            "DTM*232",
            self.c_files,
        )
        self.claim_to = self.dates(
            spread(placed([s.c_dates["233"] for s in scans], claim_shift), n_claims),
            c_seg,
            "DTM*233",
            self.c_files,
        )
        self.claim_ids = np.empty(n_claims, dtype=object)
        self.claim_ids[:] = chain_lists([s.c_id for s in scans])
        self.claim_id_text = pa.array(self.claim_ids, type=pa.large_string())

    def line_keys(self) -> None:
        """Segment numbers of the service lines (loop 2110), the row of each line's claim, and
        the rows of each interchange's lines (its component separator settled)."""
        self.l_seg = join_arrays([s.l_seg for s in self.scans], "int64")
        self.line_claim = join_arrays([s.l_claim for s in self.scans], "int64")
        # row of each line's claim
        self.pos = self.line_claim + np.repeat(self.claim_shift, self.n_l)
        ranges = []
        for e, first_row in zip(self.entries, row_starts(self.n_l).tolist(), strict=True):
            starts = [first - (e.scan.line_base + 1) for first, _ in e.scan.l_chunk]
            stops = [*starts[1:], len(e.scan.l_seg)]
            for start, stop, (_, ic) in zip(starts, stops, e.scan.l_chunk, strict=True):
                if stop > start:
                    e.settle(ic)
                    ranges.append((first_row + start, first_row + stop, ic))
        self.ranges = ranges

    def procedure_codes(self) -> list[np.ndarray | pa.Array]:
        """SVC01 decoded into qualifier, code, four modifiers and the modifiers joined."""
        # Interchanges may use different component separators; decode each one's lines with its
        # own, all lines of one separator at once.
        spans: dict[str, list[list[int]]] = {}
        for start, stop, ic in self.ranges:
            joined = spans.setdefault(ic.delimiters.component, [])
            if joined and joined[-1][1] == start:
                joined[-1][1] = stop
            else:
                joined.append([start, stop])
        svc01 = chain_lists([s.l_svc01 for s in self.scans])
        if len(spans) == 1:
            [(separator, runs)] = spans.items()
            if runs == [[0, self.n_lines]]:
                return self.procedure_columns(svc01, separator)
        parts = [np.empty(self.n_lines, dtype=object) for _ in range(7)]
        for separator, runs in spans.items():
            if len(runs) == 1:
                rows: slice | np.ndarray = slice(*runs[0])
                values = svc01[rows]
            else:
                rows = np.concatenate([np.arange(start, stop) for start, stop in runs])
                values = [svc01[i] for i in rows.tolist()]
            decoded = decode_procedures(values, separator)
            for k in range(7):
                parts[k][rows] = decoded[k]
        missing = np.flatnonzero((parts[1] == "") | (parts[1] == None))  # noqa: E711
        self.note_missing_codes(missing, svc01)
        parts[1][missing] = None
        return parts

    def procedure_columns(self, svc01: list[object], separator: str) -> list[pa.Array]:
        """The seven columns of :meth:`procedure_codes` when every line uses one component
        separator: each distinct SVC01 is decoded once and the columns taken from those, as
        Arrow strings (no Python string per line)."""
        codes, distinct = factorize(svc01)
        decoded = decode_procedures(distinct, separator)
        blank = np.flatnonzero((decoded[1] == "") | (decoded[1] == None))  # noqa: E711
        if len(blank):
            self.note_missing_codes(np.flatnonzero(np.isin(codes, blank)), svc01)
            decoded[1][blank] = None
        rows = pa.array(codes, type=pa.int64())
        return [pa.array(d, type=pa.large_string(), from_pandas=True).take(rows) for d in decoded]

    def note_missing_codes(self, missing: np.ndarray, svc01: list[object]) -> None:
        """Note the lines ``missing`` whose SVC01 holds no procedure code (its code is set
        missing); their amounts stay where SVC02 and SVC03 put them."""
        if not len(missing):
            return
        owner = np.zeros(len(missing), dtype="int64") if self.l_files is None else self.l_files[missing]
        for f in np.unique(owner).tolist():
            rows = missing[owner == f]
            shown = [f"{self.l_seg[i]} ({svc01[i]!r})" for i in rows[:5].tolist()]
            self.entries[f].notes.no_code(len(rows), shown)

    def original_codes(self) -> np.ndarray:
        """SVC06: the code as submitted, when the payer paid another one."""
        original = self.line_values("SVC06")
        has_original = np.flatnonzero(original != None)  # noqa: E711 - elementwise on objects
        if len(has_original):
            separator_of = np.empty(self.n_lines, dtype=object)
            for start, stop, ic in self.ranges:
                separator_of[start:stop] = ic.delimiters.component
            for i in has_original.tolist():
                composite = original[i].split(separator_of[i])
                original[i] = composite[1] if len(composite) > 1 and composite[1] else composite[0]
        return original

    def service_dates(self) -> tuple[np.ndarray, pa.Array, np.ndarray]:
        """Each line's service date and where it comes from, and each claim's service date."""
        dates, l_seg, l_files, pos = self.dates, self.l_seg, self.l_files, self.pos
        claim_from = self.claim_from
        d472 = dates(self.line_values("472"), l_seg, "DTM*472", l_files)
        d150 = dates(self.line_values("150"), l_seg, "DTM*150", l_files)
        claim_from_on_line, claim_to_on_line = claim_from[pos], self.claim_to[pos]
        has = [
            ~np.isnat(d472),
            ~np.isnat(d150),
            ~np.isnat(claim_from_on_line),
            ~np.isnat(claim_to_on_line),
        ]
        # Line date: DTM*472, else the DTM*150 start of a span, else the claim's statement dates
        # (TR3 loop 2110: the line DTM may be left out when the claim dates cover the line).
        service_date = np.select(has, [d472, d150, claim_from_on_line, claim_to_on_line], NAT)
        source = _labels(
            ("DTM*472", "DTM*150", "claim DTM*232", "claim DTM*233"),
            np.select(has, [0, 1, 2, 3], -1),
        )

        # claim_service_date: DTM*232, else the claim's earliest own line date
        own_date = np.where(has[0], d472, d150)
        first = np.full(self.n_claims, NAT)
        if self.n_lines:
            earliest = pd.Series(own_date).groupby(pos).min()
            first[earliest.index.to_numpy()] = earliest.to_numpy(dtype=DATE)
        claim_service = np.where(np.isnat(claim_from), first, claim_from)
        return service_date, source, claim_service

    def allowed_amounts(self) -> np.ndarray:
        """AMT*B6 of each line; NaN, not 0, when absent: the allowed amount is unknown."""
        allowed = self.line_values("B6", math.nan)
        if np.isinf(allowed).any():
            check_finite(allowed, self.l_seg, "(AMT02)", self.names, self.l_files)
        return allowed

    def claim_table(self, claim_service: np.ndarray) -> pd.DataFrame:
        """Claims: one per CLP (loop 2100)."""
        scans, money, placed = self.scans, self.money, self.placed
        c_seg, c_files = self.c_seg, self.c_files
        claim_shift, n_claims = self.claim_shift, self.n_claims
        self.claim_st = claim_st = join_arrays([s.c_st for s in scans], "int64")
        claim_charge = money([s.c_charge for s in scans], c_seg, "(CLP03)", c_files)
        claim_paid = money([s.c_paid for s in scans], c_seg, "(CLP04)", c_files)
        self.claim_charge, self.claim_paid = claim_charge, claim_paid
        c_status = chain_lists([s.c_status for s in scans])
        self.claim_index = claim_index = np.arange(n_claims) - np.repeat(claim_shift, self.n_c)
        return typed_frame(
            {
                "file": self.file_column(c_files, n_claims),
                "st_index": claim_st,
                "claim_index": claim_index,
                "claim_id": self.claim_id_text,
                "status": repeated_text(c_status),
                "charge": claim_charge,
                "paid": claim_paid,
                "patient_responsibility": money([s.c_pr for s in scans], c_seg, "(CLP05)", c_files),
                "filing_indicator": repeated_text(
                    chain_lists([s.c_filing for s in scans]), blank_is_null=True
                ),
                "payer_claim_id": or_none(chain_lists([s.c_payer_claim for s in scans])),
                "facility_code": repeated_text(
                    chain_lists([s.c_facility for s in scans]), blank_is_null=True
                ),
                "frequency": repeated_text(
                    chain_lists([s.c_freq for s in scans]), blank_is_null=True
                ),
                "patient_key": repeated_text(
                    spread(placed([s.c_key for s in scans], claim_shift), n_claims)
                ),
                "statement_from": self.claim_from,
                "statement_to": self.claim_to,
                "received_date": self.dates(
                    spread(placed([s.c_dates["050"] for s in scans], claim_shift), n_claims),
                    c_seg,
                    "DTM*050",
                    c_files,
                ),
                "claim_service_date": claim_service,
                # CLP02 22 = reversal of a previous payment; the payer has already negated its
                # amounts, so they are kept as sent (X12 RFI 1147).
                "is_reversal": np.array(c_status, dtype=object) == "22",
                "segment": c_seg,
            },
            CLAIM_SCHEMA,
        )

    def line_table(
        self,
        codes: list[np.ndarray | pa.Array],
        original: np.ndarray,
        service_date: np.ndarray,
        source: pa.Array,
        allowed: np.ndarray,
    ) -> pd.DataFrame:
        """Service lines: one per SVC (loop 2110)."""
        scans, money, line_values = self.scans, self.money, self.line_values
        l_seg, l_files, pos = self.l_seg, self.l_files, self.pos
        line_charge = money([s.l_charge for s in scans], l_seg, "(SVC02)", l_files)
        line_paid = money([s.l_paid for s in scans], l_seg, "(SVC03)", l_files)
        line_index = np.arange(self.n_lines) - np.repeat(self.line_shift, self.n_l)
        self.line_charge, self.line_paid, self.line_index = line_charge, line_paid, line_index
        return typed_frame(
            {
                "file": self.file_column(l_files, self.n_lines),
                "st_index": self.claim_st[pos],
                "claim_index": self.line_claim,
                "line_index": line_index,
                "claim_id": self.claim_id_column(pos),
                "code_qualifier": codes[0],
                "cpt": codes[1],
                "modifier_1": codes[2],
                "modifier_2": codes[3],
                "modifier_3": codes[4],
                "modifier_4": codes[5],
                "modifiers": codes[6],
                "charge": line_charge,
                "paid": line_paid,
                "revenue_code": line_values("SVC04"),
                "paid_units": money([s.l_units for s in scans], l_seg, "(SVC05)", l_files),
                "original_cpt": original,
                "service_date": service_date,
                "service_date_end": self.dates(line_values("151"), l_seg, "DTM*151", l_files),
                "service_date_source": source,
                "line_control_number": repeated_text(line_values("6R")),
                # NaN, not 0, when AMT*B6 is absent: the allowed amount is unknown.
                "allowed": allowed,
                "segment": l_seg,
            },
            LINE_SCHEMA,
        )

    def adjustment_table(self) -> pd.DataFrame:
        """Adjustments: one per CAS triplet; an owner is a line number, or minus a claim
        number."""
        scans, n_a = self.scans, self.n_a
        owner = join_arrays([s.a_owner for s in scans], "int64")
        a_seg = join_arrays([s.a_seg for s in scans], "int64")
        self.on_line = on_line = owner > 0
        adj_line = np.where(on_line, owner, 0)
        # -1: a claim's CAS
        self.line_row = line_row = np.where(on_line, owner + np.repeat(self.line_shift, n_a), -1)
        claim_of_line = self.line_claim[np.maximum(line_row, 0)] if self.n_lines else 0
        adj_claim = np.where(on_line, claim_of_line, -owner)
        self.adj_row = adj_row = adj_claim + np.repeat(self.claim_shift, n_a)
        self.adj_amount = adj_amount = self.money(
            [s.a_amount for s in scans], a_seg, "(CAS amount)", self.a_files
        )
        return typed_frame(
            {
                "file": self.file_column(self.a_files, len(a_seg)),
                "st_index": self.claim_st[adj_row],
                "claim_index": adj_claim,
                "line_index": pd.arrays.IntegerArray(adj_line, ~on_line),
                "level": label_column(("claim", "line"), on_line.astype("int64")),
                "claim_id": self.claim_id_column(adj_row),
                "group_code": repeated_text(chain_lists([s.a_group for s in scans])),
                "carc": repeated_text(chain_lists([s.a_carc for s in scans])),
                "amount": adj_amount,
                # a_qty is keyed by the 0-based position of the triplet in its scan
                "quantity": spread(
                    self.placed([s.a_qty for s in scans], row_starts(n_a)), len(a_seg), math.nan
                ),
                "segment": a_seg,
            },
            ADJUSTMENT_SCHEMA,
        )

    def remark_table(self) -> pd.DataFrame:
        """Remarks: LQ*HE of a line, MOA/MIA of a claim."""
        remark_rows = chain_lists([s.remarks for s in self.scans])
        r = list(zip(*remark_rows, strict=True)) if remark_rows else [()] * 5
        r_claim = np.array(r[1], dtype="int64")
        r_line = np.array(r[2], dtype="int64")
        r_row = r_claim + np.repeat(self.claim_shift, self.n_r)
        return typed_frame(
            {
                "file": self.file_column(self.r_files, len(r_row)),
                "st_index": self.claim_st[r_row],
                "claim_index": r_claim,
                "line_index": pd.arrays.IntegerArray(r_line, r_line == 0),
                "level": label_column(("claim", "line"), (r_line > 0).astype("int64")),
                "claim_id": self.claim_id_column(r_row),
                "code": repeated_text(r[3]),
                "source": repeated_text(r[4]),
                "segment": np.array(r[0], dtype="int64"),
            },
            REMARK_SCHEMA,
        )

    def plb_table(self) -> pd.DataFrame:
        """Provider-level adjustments: one per PLB reason and amount."""
        p_files = self.p_files
        plb_rows = chain_lists([s.plb for s in self.scans])
        p = list(zip(*plb_rows, strict=True)) if plb_rows else [()] * 7
        p_seg = np.array(p[0], dtype="int64")
        for e in self.entries:
            for ic in {id(row[5]): row[5] for row in e.scan.plb}.values():
                e.settle(ic)  # type: ignore[arg-type]
        reasons = [
            (c.split(i.delimiters.component, 1) + [""])[:2] for c, i in zip(p[4], p[5], strict=True)
        ]
        self.plb_st = plb_st = np.array(p[1], dtype="int64")
        return typed_frame(
            {
                "file": self.file_column(p_files, len(p_seg)),
                "st_index": plb_st,
                "provider_id": list(p[2]),
                "fiscal_period_date": self.dates(list(p[3]), p_seg.tolist(), "PLB02", p_files),
                "reason": [x[0] for x in reasons],
                "reference": [x[1] or None for x in reasons],
                "amount": check_finite(
                    np.array(p[6], dtype="float64"), p_seg, "(PLB amount)", self.names, p_files
                ),
                "segment": p_seg,
            },
            PLB_SCHEMA,
        )

    def bpr_sign(self) -> np.ndarray:
        """-1 for a payment the payer debits from the provider (BPR03 ``D``), else 1: the
        transaction's claims and adjustments then net to minus BPR02."""
        flags = self.pay_columns.get("credit_debit", [])
        return np.array([-1.0 if str(f or "").strip().upper() == "D" else 1.0 for f in flags], dtype="float64")

    def balance_checks(self, plb_amount: np.ndarray) -> tuple[pd.DataFrame, list[OpenTransaction]]:
        """The line, claim and transaction checks, noted in each file's notes, and each part's
        open transaction."""
        # Balancing (MLN: the 835 balances at line, claim and transaction level). Lines and claims
        # are whole in a part. The claim rule uses claim CAS plus the CAS of its lines; a claim with
        # no SVC has only claim-level CAS, so one sum over all CAS of the claim covers both cases.
        on_line, adj_amount = self.on_line, self.adj_amount
        claim_st, claim_paid, pos = self.claim_st, self.claim_paid, self.pos
        line_cas = np.zeros(self.n_lines)
        claim_cas = np.zeros(self.n_claims)
        np.add.at(line_cas, self.line_row[on_line], adj_amount[on_line])
        np.add.at(claim_cas, self.adj_row, adj_amount)
        transactions, carries = transaction_sums(
            self.entries, claim_st, claim_paid, self.n_c, self.plb_st, plb_amount, self.n_p
        )
        closed = np.array(self.pay_columns["st_index"], dtype="int64")
        closed_row = closed + np.repeat(transactions[2], self.n_pay)
        balance = balance_table(
            self.names,
            self.file_names,
            self.n_lines,
            self.n_claims,
            (self.l_files, self.c_files, self.pay_files),
            st=(claim_st[pos], claim_st, closed),
            claim_index=(self.line_claim, self.claim_index),
            line_index=self.line_index,
            claim_id=(self.claim_ids[pos], self.claim_ids),
            expected=(
                self.line_charge - line_cas,
                self.claim_charge - claim_cas,
                transactions[0][closed_row] - transactions[1][closed_row],
            ),
            actual=(self.line_paid, claim_paid, self.paid_amount * self.bpr_sign()),
        )
        note_balance(self.entries, balance, self.n_l, self.n_c, self.n_pay)
        return balance, carries
