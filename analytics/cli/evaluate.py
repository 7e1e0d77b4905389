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
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from analytics.cli.rekey import add_key_options, key_from_args
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
from analytics.privacy import (
    PracticeKey,
    identifying_columns,
    marked_pseudonymous,
    pseudonym_metadata,
)
from analytics.progress import Progress
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
                    "identifiers: patient ids are pseudonymised with the practice's key (.analytics-key "
                    "beside the inputs, else ANALYTICS_PRACTICE_KEY; the scheme of `intake`) and "
                    "columns holding patient names, dates of birth, member, subscriber or "
                    "account ids or contact details are dropped.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--lines", help="service lines: a Parquet file or a directory of them")
    source.add_argument("--data", type=Path, metavar="DIR",
                        help="a practice folder, read as `report --data` reads it (the export in any format, through "
                             "mapping.yaml; payers.yaml)")
    p.add_argument("--payers", type=Path, help="payer policy YAML (required with --lines; default with --data: "
                                              "DIR/payers.yaml)")
    p.add_argument("--out", required=True, help="output directory (must be empty unless --overwrite)")
    p.add_argument("--workers", type=int, help="processes (default: the CPU count)")
    p.add_argument("--chunk-lines", type=int, default=CHUNK_LINES, help=f"lines per chunk (default {CHUNK_LINES:,})")
    p.add_argument("--overwrite", action="store_true", help="replace the partitions of a previous run in --out")
    p.add_argument("--dask", action="store_true", help="run on Dask (a local cluster unless --scheduler is given)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    add_key_options(p)
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: the lines of ``--lines`` (or of the practice folder ``--data``) evaluated and
    written to ``--out`` with pseudonymised patient ids and without identifying columns."""
    if args.data is None and args.payers is None:
        raise InputError("evaluate --lines needs --payers FILE (the payer policies, e.g. data/sample/payers.yaml).")
    key = key_from_args(args, [args.lines or args.data], "the evaluated tables")
    if args.data is not None:
        with tempfile.TemporaryDirectory(prefix="analytics-evaluate-") as folder:
            args.lines, payers = _practice_lines(args, Path(folder), key)
            return _evaluate(args, payers, key)
    return _evaluate(args, load_payers(args.payers), key)


def _practice_lines(args: argparse.Namespace, folder: Path, key: PracticeKey) -> tuple[str, dict]:
    """The practice folder's priced lines as a Parquet file in ``folder``, patient ids already
    pseudonymised (and marked so), with its payer policies."""
    import pyarrow
    import pyarrow.parquet

    from analytics.practice import load_practice
    from analytics.privacy import pseudonymise

    practice = load_practice(args.data, payers=args.payers)
    for note in practice.notes:
        print(f"note: {note}", file=sys.stderr)
    lines = practice.lines[practice.lines["not_priced"] == ""]
    lines = lines.drop(columns=["not_priced", "payer_name", "source_row", "source_file"], errors="ignore")
    lines = pseudonymise(lines, key=key)
    table = pyarrow.Table.from_pandas(lines.reset_index(drop=True), preserve_index=False)
    marked = {**(table.schema.metadata or {}), **pseudonym_metadata(key, [VISIT_KEYS[0]])}
    path = folder / "lines.parquet"
    pyarrow.parquet.write_table(table.replace_schema_metadata(marked), path)
    return str(path), dict(practice.payers)


def _evaluate(args: argparse.Namespace, payers, key: PracticeKey) -> int:
    if args.dask or args.scheduler:
        lines, seconds, dropped = _run_dask(args, payers, key)
        print(f"evaluated {lines:,} lines on Dask in {seconds:.1f} s; wrote {args.out} partitioned by "
              f"{PARTITION_COLUMN}, patient ids pseudonymised")
        _say_dropped(dropped)
        return 0
    keep_freed_memory()  # this process only evaluates chunks from here on
    with Progress("evaluate", unit="lines", stage="reading lines", scale=True) as bar:
        run = evaluate_parquet(args.lines, args.out, payers, chunk_lines=args.chunk_lines, workers=args.workers,
                               overwrite=args.overwrite, pseudonymise=True, salt=key, progress=bar)
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


def _run_dask(args: argparse.Namespace, payers, key: PracticeKey) -> tuple[int, float, list[str]]:
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
        write_dask_parquet(evaluated, args.out, pseudonymise=not hashed, salt=key)
        n = int(dd.read_parquet(args.out, columns=["units"]).shape[0].compute())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return n, time.perf_counter() - started, dropped
