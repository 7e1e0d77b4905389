"""Write the tables of 835 files to Parquet and CSV as the parts of each file come.

Each file's tables are spooled to disk until the whole file has been read, so that a file
that fails half-way (truncated, a bad amount) leaves nothing in the output tables; then they
are appended to the output files, whose memory use stays that of one part.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analytics._files import csv_text
from analytics.remittance.tables import (
    BALANCE_SCHEMA,
    LEVELS,
    TABLE_SCHEMAS,
    Remittance,
    empty_frame,
)


def _arrow_schema(schema: dict[str, str]) -> pa.Schema:
    return pa.Schema.from_pandas(empty_frame(schema), preserve_index=False)


class Spool:
    """One table of one file, spooled to disk until the whole file has been read: Arrow IPC
    (cheap to write and to read back) and CSV rows without a header."""

    def __init__(self, stem: Path, schema: pa.Schema) -> None:
        self.arrow = stem.with_name(stem.name + ".arrows")
        self.csv = stem.with_name(stem.name + ".csv")
        self.schema = schema
        self.sink: pa.NativeFile | None = None
        self.writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.csv_file: BinaryIO | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        if self.writer is None:
            self.sink = pa.OSFile(str(self.arrow), "wb")
            self.writer = pa.ipc.new_stream(self.sink, self.schema)
            self.csv_file = open(self.csv, "wb")  # noqa: SIM115 - closed in close()
        self.writer.write_table(
            pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        )
        # text cells a spreadsheet would run as a formula are neutralised (the OWASP rule)
        self.csv_file.write(csv_text(frame, header=False).encode("utf-8"))

    @property
    def written(self) -> bool:
        return self.writer is not None

    def close(self) -> None:
        for handle in (self.writer, self.sink, self.csv_file):
            if handle is not None:
                handle.close()


class TableFiles:
    """One output table, written a file at a time as Parquet row groups and CSV rows."""

    def __init__(self, stem: Path, schema: dict[str, str]) -> None:
        self.parquet = stem.with_name(stem.name + ".parquet")
        self.csv = stem.with_name(stem.name + ".csv")
        self.schema = _arrow_schema(schema)
        self.header = csv_text(empty_frame(schema)).encode("utf-8")
        self.writer: pq.ParquetWriter | None = None
        self.csv_file: BinaryIO | None = None

    def _open(self) -> tuple[pq.ParquetWriter, BinaryIO]:
        if self.writer is None or self.csv_file is None:
            self.writer = pq.ParquetWriter(self.parquet, self.schema)
            self.csv_file = open(self.csv, "wb")  # noqa: SIM115 - closed in close()
            self.csv_file.write(self.header)
        return self.writer, self.csv_file

    def append(self, spool: Spool) -> None:
        """Add the rows of a closed spool after the rows already written."""
        if not spool.written:
            return
        writer, csv_file = self._open()
        with pa.OSFile(str(spool.arrow), "rb") as source:
            for batch in pa.ipc.open_stream(source):
                writer.write_batch(batch)
        with open(spool.csv, "rb") as rows:
            shutil.copyfileobj(rows, csv_file, 2**20)

    def close(self) -> None:
        """Finish the files; a table with no rows still gets them, with its columns."""
        writer, csv_file = self._open()
        writer.close()
        csv_file.close()


def _sum(values: pd.Series) -> float:
    # the same (compensated) grouped sum as Remittance.summary, for one file
    return float(values.groupby(np.zeros(len(values), dtype="int8")).sum().sum())


class FileOutput:
    """One file's tables, spooled to disk until the whole file has been read, so that a file
    that fails half-way (truncated, a bad amount) leaves nothing in the output tables. Balance
    rows are spooled by level, to come out in the order a whole-file read gives them."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name = name
        self.tables = {
            table: Spool(folder / table, _arrow_schema(schema))
            for table, schema in TABLE_SCHEMAS.items()
            if table != "balance"
        }
        balance = _arrow_schema(BALANCE_SCHEMA)
        self.balance = {level: Spool(folder / f"balance-{level}", balance) for level in LEVELS}
        self.counts = [0, 0, 0]  # claims, service lines, failed checks
        self.sums = [0.0, 0.0, 0.0]  # paid, adjustments, PLB
        self.failed: dict[str, list[pd.DataFrame]] = {level: [] for level in LEVELS}
        self.checks = dict.fromkeys(LEVELS, 0)  # balance checks, and failed ones, by level
        self.failures = dict.fromkeys(LEVELS, 0)

    def add(self, part: Remittance) -> None:
        for table, files in self.tables.items():
            files.write(getattr(part, table))
        balance = part.balance
        levels = balance["level"].to_numpy(dtype=object)
        for level, files in self.balance.items():
            rows = balance[levels == level]
            files.write(rows)
            bad = rows[~rows["balanced"].to_numpy(dtype=bool)]
            self.checks[level] += len(rows)
            self.failures[level] += len(bad)
            if len(bad):
                self.failed[level].append(bad)
                self.counts[2] += len(bad)
        self.counts[0] += len(part.claims)
        self.counts[1] += len(part.service_lines)
        self.sums[0] += _sum(part.claims["paid"])
        self.sums[1] += _sum(part.adjustments["amount"])
        self.sums[2] += _sum(part.plb["amount"])

    def close(self) -> None:
        for spool in [*self.tables.values(), *self.balance.values()]:
            spool.close()

    def commit(self, outputs: dict[str, TableFiles]) -> None:
        for table, staged in self.tables.items():
            outputs[table].append(staged)
        for level in LEVELS:
            outputs["balance"].append(self.balance[level])

    def summary_row(self) -> dict[str, object]:
        claims, lines, failed = self.counts
        paid, adjustments, plb = (float(np.round(s, 2)) for s in self.sums)
        return {
            "file": self.name,
            "claims": claims,
            "service_lines": lines,
            "paid_total": paid,
            "adjustments_total": adjustments,
            "plb_total": plb,
            "balanced": failed == 0,
        }
