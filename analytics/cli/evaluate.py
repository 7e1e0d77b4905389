"""The ``evaluate`` command: every rule stage on service lines stored as Parquet.

The lines are evaluated by :func:`analytics.pipeline.evaluate_parquet` (chunks of whole
patients, in parallel processes) or, with ``--dask``, by
:func:`analytics.pipeline.evaluate_dask` on a Dask cluster, and written partitioned by
year-month with pseudonymised patient ids and without identifying columns.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from analytics.exceptions import InputError
from analytics.payers import load_payers
from analytics.pipeline import (
    CHUNK_LINES,
    PARTITION_COLUMN,
    evaluate_dask,
    evaluate_parquet,
    keep_freed_memory,
    prepare_output,
    write_dask_parquet,
)
from analytics.privacy import identifying_columns, marked_pseudonymous
from analytics.units import VISIT_KEYS

__all__ = ["register_cli"]


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="evaluate service lines from Parquet and write them partitioned by year-month "
                         "(patient ids pseudonymised)",
        description="Run every rule stage (units, edits, pricing, KX, cost share, denial risk) on service "
                    "lines stored as Parquet and write the evaluated lines to OUT/year_month=YYYY-MM/. "
                    "Lines are processed in chunks of whole patients, in parallel processes; with --dask "
                    "the same engine runs on a Dask cluster. The written lines carry no direct "
                    "identifiers: patient ids are pseudonymised with ANALYTICS_ID_SALT (the scheme of "
                    "`intake`) and columns holding patient names, dates of birth, member, subscriber or "
                    "account ids or contact details are dropped.")
    p.add_argument("--lines", required=True, help="service lines: a Parquet file or a directory of them")
    p.add_argument("--payers", type=Path, required=True, help="payer policy YAML")
    p.add_argument("--out", required=True, help="output directory (must be empty unless --overwrite)")
    p.add_argument("--workers", type=int, help="processes (default: the CPU count)")
    p.add_argument("--chunk-lines", type=int, default=CHUNK_LINES, help=f"lines per chunk (default {CHUNK_LINES:,})")
    p.add_argument("--overwrite", action="store_true", help="replace the partitions of a previous run in --out")
    p.add_argument("--dask", action="store_true", help="run on Dask (a local cluster unless --scheduler is given)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: the lines of ``--lines`` evaluated and written to ``--out`` with
    pseudonymised patient ids and without identifying columns."""
    payers = load_payers(args.payers)
    if args.dask or args.scheduler:
        lines, seconds, dropped = _run_dask(args, payers)
        print(f"evaluated {lines:,} lines on Dask in {seconds:.1f} s; wrote {args.out} partitioned by "
              f"{PARTITION_COLUMN}, patient ids pseudonymised")
        _say_dropped(dropped)
        return 0
    keep_freed_memory()  # this process only evaluates chunks from here on
    run = evaluate_parquet(args.lines, args.out, payers, chunk_lines=args.chunk_lines, workers=args.workers,
                           overwrite=args.overwrite, pseudonymise=True)
    _say_dropped(run.dropped_columns)
    print(f"evaluated {run.lines_out:,} lines ({run.patients:,} patients) in {run.chunks} chunk(s) on "
          f"{run.workers} process(es) in {run.seconds:.1f} s")
    print(f"wrote {len(run.files)} files in {len(run.partitions)} partitions ({run.partitions[0]} .. "
          f"{run.partitions[-1]}) to {args.out}, patient ids pseudonymised" if run.partitions
          else f"wrote nothing to {args.out}")
    return 0


def _say_dropped(columns: Sequence[str]) -> None:
    if columns:
        print(f"dropped for privacy: {', '.join(columns)}", file=sys.stderr)


def _run_dask(args: argparse.Namespace, payers) -> tuple[int, float, list[str]]:
    try:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError('--dask needs Dask: pip install "massage-billing-analytics[dask]".') from exc
    started = time.perf_counter()
    out = Path(args.out) if "://" not in args.out else None
    if out is not None:
        prepare_output(out, PARTITION_COLUMN, args.overwrite)
    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        import pyarrow.parquet as pq

        lines = dd.read_parquet(args.lines)
        dropped = identifying_columns(list(lines.columns))
        evaluated = evaluate_dask(lines.drop(columns=dropped), payers)  # identifying columns are never read
        # ids intake already pseudonymised keep their pseudonyms (hashing twice would break the link)
        hashed = VISIT_KEYS[0] in marked_pseudonymous(pq.ParquetDataset(args.lines).schema)
        write_dask_parquet(evaluated, args.out, pseudonymise=not hashed)
        n = int(dd.read_parquet(args.out, columns=["units"]).shape[0].compute())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return n, time.perf_counter() - started, dropped
