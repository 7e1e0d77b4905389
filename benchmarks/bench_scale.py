"""Throughput of every rule stage, and of the Parquet pipeline end to end, at 1e5 to 1e7 lines.

The lines are a synthetic practice from ``python -m analytics sample --no-835`` (made once
per size and kept under ``--data-dir``). For each size the script reports, as the median of
``--repeat`` runs:

* each stage of :func:`analytics.pipeline.evaluate` on the whole frame in memory, in the
  order evaluate runs them and on the line keys it shares between them: coding the keys
  (visits, patients, codes, payers, dates), units, edits, pricing, the KX threshold, cost
  share, and the denial risk with expected collections; then one ``evaluate`` call;
* above 1.5 million lines, where evaluate works in blocks of about a million lines of whole
  patients, the same stages summed over those blocks (how evaluate and evaluate_parquet
  run them);
* :func:`analytics.pipeline.evaluate_parquet` end to end (read the Parquet file, evaluate in
  chunks of whole patients, write Parquet partitioned by year-month) with 1 and 2 processes:
  wall seconds, and CPU seconds of the process and its workers (what a shared machine does
  not distort); with 1 process, the CPU seconds outside the rule stages (reading, coding and
  pseudonymising the patients, writing) are those of the run less those of one ``evaluate``
  of the same lines in memory;
* the CPU seconds of each step of those runs (``ParquetRun.cpu_seconds``: reading and dealing
  the patients in the parent; taking, evaluating and writing each chunk in the workers), and
  the wall time they imply on a quiet machine with as many cores as processes: the larger of
  the critical path (the parent's steps, then the rounds of chunks each process runs) and
  the CPU seconds shared by the processes.

Run::

    .venv/bin/python benchmarks/bench_scale.py [--sizes 1e5 1e6 1e7] [--repeat 3] [--workers 1 2]
    .venv/bin/python benchmarks/bench_scale.py --lines /tmp/p10m/service_lines.parquet --end-to-end --workers 2

Before and after a change, and the command line with its memory::

    .venv/bin/python benchmarks/bench_scale.py --lines /tmp/p10m/service_lines.parquet --end-to-end --workers 2 \
        --repeat 3 --baseline /tmp/before      # /tmp/before/analytics: the package before the change
    .venv/bin/python benchmarks/bench_scale.py --lines /tmp/p10m/service_lines.parquet --command --workers 2 \
        --repeat 3 [--baseline /tmp/before]

``--baseline DIR`` runs each end-to-end (or command) run once with the package in ``DIR`` and
once with this checkout's, in turn, each in a new process, and prints the medians side by side
(on a shared machine, turns spread the load over both). ``--command`` runs ``python -m
analytics evaluate`` itself and samples the process tree's proportional set size (PSS, every
0.1 s) for its peak; a key for the pseudonyms is set for that run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from analytics._frame import key_codes
from analytics.edits import DISPOSITIONS, apply_edits_with_keys, apply_threshold_edits_with_keys
from analytics.payers import load_payers, payer_columns
from analytics.pipeline import evaluate, evaluate_parquet, keep_freed_memory
from analytics.pricing import price_lines_with_keys, split_cost_share_with_keys
from analytics.refdata import load_reference
from analytics.units import BLOCK_LINES, VISIT_KEYS, LineKeys, compute_units_with_keys

REPO = Path(__file__).resolve().parents[1]
PAYERS = REPO / "data" / "sample" / "payers.yaml"
DATA_DIR = REPO / "benchmarks" / "out" / "scale"
LINES_PER_VISIT = 2.115  # the generator's sessions average about 2.1 service lines per visit
SEED = 1


def machine() -> str:
    """One line naming the machine: CPU model and count, RAM, Python and library versions, load."""
    import pyarrow

    model = platform.processor() or platform.machine()
    try:
        for row in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if row.startswith("Model name:"):
                model = row.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30 if hasattr(os, "sysconf") else float("nan")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (f"machine: {model}, {os.cpu_count()} CPUs, {ram:.0f} GiB RAM; Python {platform.python_version()}, "
            f"pandas {pd.__version__}, numpy {np.__version__}, pyarrow {pyarrow.__version__}; load average {load}")


def practice_file(lines: int, data_dir: Path = DATA_DIR) -> Path:
    """Parquet service lines of a generated practice of about ``lines`` lines (made once, then reused)."""
    visits = max(1, round(lines / LINES_PER_VISIT))
    out = data_dir / f"practice_{visits}_visits_seed{SEED}"
    path = out / "service_lines.parquet"
    if not path.exists():
        print(f"generating {visits:,} visits into {out} ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "analytics", "sample", "--out", str(out), "--seed", str(SEED),
                        "--visits", str(visits), "--no-835"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return path


def practice_lines(lines: int, data_dir: Path = DATA_DIR) -> pd.DataFrame:
    return pd.read_parquet(practice_file(lines, data_dir))


def stage_times(lines: pd.DataFrame, payers, ref) -> dict[str, float]:
    """Seconds of each stage, run as evaluate runs them (one LineKeys shared by all)."""
    t = {}
    start = time.perf_counter()
    keys = LineKeys(lines, VISIT_KEYS)
    for name in ("cpt", "payer", "modifiers", "visit", "patient", "date", "year", "date_rank", "visit_first"):
        getattr(keys, name)
    pol = payer_columns(lines, payers, keys)
    t["line keys (visits, patients, codes, dates)"] = time.perf_counter() - start

    start = time.perf_counter()
    out = compute_units_with_keys(lines, (pol.per_payer("unit_method", object) == "cms")[pol.codes], ref, keys)
    t["units (8-minute rule / midpoint, reasons)"] = time.perf_counter() - start
    start = time.perf_counter()
    out = apply_edits_with_keys(out, payers, ref, keys)
    t["edits (NCCI, MUE, coverage, limits ...)"] = time.perf_counter() - start
    start = time.perf_counter()
    out = price_lines_with_keys(out, payers, ref, keys)
    t["pricing (fee schedule, MPPR, contracts, caps)"] = time.perf_counter() - start
    start = time.perf_counter()
    out = apply_threshold_edits_with_keys(out, payers, ref, keys)
    t["KX threshold"] = time.perf_counter() - start
    start = time.perf_counter()
    out = split_cost_share_with_keys(out, payers, ref, keys)
    t["cost share"] = time.perf_counter() - start
    start = time.perf_counter()
    disp = np.asarray(pd.Categorical(out["disposition"], categories=DISPOSITIONS).codes)
    p = np.where(np.isin(disp, [2, 3]), 1.0, pol.array("denial_prior"))
    out.assign(p_deny=p, expected=np.round(np.nan_to_num(out["allowed"].to_numpy(dtype=float)) * (1 - p), 2))
    t["denial risk, expected collections"] = time.perf_counter() - start
    return t


def block_stage_times(lines: pd.DataFrame, payers, ref) -> dict[str, float]:
    """Stage seconds summed over blocks of whole patients, as evaluate splits a large frame."""
    k = max(1, -(-len(lines) // BLOCK_LINES))
    block = key_codes(lines["patient_id"])[0] % k
    total: dict[str, float] = {}
    for b in range(k):
        part = lines.iloc[np.flatnonzero(block == b)]
        for name, t in stage_times(part, payers, ref).items():
            total[name] = total.get(name, 0.0) + t
    return total


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished child processes."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def end_to_end(src: Path, payers, workers: int) -> tuple[float, str, float, dict[str, float]]:
    """Wall seconds of one evaluate_parquet run, its chunks and processes, its CPU seconds
    (this process and the workers, which have ended when it returns), and the CPU seconds of
    each step with the implied quiet-machine wall time under ``"quiet wall (estimate)"``."""
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        cpu, start = cpu_seconds(), time.perf_counter()
        run = evaluate_parquet(src, Path(tmp) / "out", payers, workers=workers)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    how = f"{run.chunks} chunk{'s' if run.chunks > 1 else ''}, {run.workers} process{'es' if run.workers > 1 else ''}"
    return seconds, how, cpu, {**run.cpu_seconds, "quiet wall (estimate)": quiet_wall(run, cpu)}


PARENT_STEPS = ("read the lines", "code the patients, deal them to chunks")


def quiet_wall(run, cpu: float) -> float:
    """Wall seconds of ``run`` on a quiet machine with a core per process: the larger of the
    critical path (the parent's steps, then the rounds of chunks of the busiest process, at
    the mean chunk's CPU time) and the run's CPU seconds shared by its processes."""
    parent = sum(run.cpu_seconds.get(k, 0.0) for k in PARENT_STEPS)
    chunks = sum(v for k, v in run.cpu_seconds.items() if k not in PARENT_STEPS)
    rounds = -(-run.chunks // run.workers)
    return max(parent + rounds * chunks / max(run.chunks, 1), cpu / run.workers)


def print_end_to_end(n: int, e2e: dict, whole_cpu: list[float]) -> None:
    """The end-to-end rows (one per distinct chunks x processes) and the CPU of each step."""
    shown = set()
    for w, runs_of_w in e2e.items():
        if runs_of_w[0][1] in shown:
            continue
        shown.add(runs_of_w[0][1])
        t = statistics.median(r[0] for r in runs_of_w)
        cpu = statistics.median(r[2] for r in runs_of_w)
        print(f"| evaluate_parquet end to end: read, evaluate, write Parquet ({runs_of_w[0][1]}) | {t:.3f} | "
              f"{n / t:,.0f} | CPU {cpu:.2f} s |", flush=True)
        if w == 1 and whole_cpu:
            rules = statistics.median(whole_cpu)
            print(f"| of which outside the rule stages (read, patients, pseudonyms, write), CPU | {cpu - rules:.3f} "
                  f"| {n / max(cpu - rules, 1e-9):,.0f} | rules CPU {rules:.2f} s |", flush=True)
        for step in runs_of_w[0][3]:
            value = statistics.median(r[3].get(step, 0.0) for r in runs_of_w)
            what = "wall seconds on a quiet machine, a core per process" if step == "quiet wall (estimate)" else (
                "CPU seconds")
            print(f"|   {step}: {what} | {value:.3f} | | |", flush=True)


def run_json(args: list[str], package: Path | None) -> dict:
    """This script's ``--json`` result of one run in a new process, with the ``analytics``
    package of ``package`` (a folder holding it) first on the path, or this checkout's."""
    env = dict(os.environ)
    if package is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(package), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run([sys.executable, __file__, *args, "--json"], capture_output=True, text=True, env=env,
                          cwd=REPO, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def command_run(src: Path, payers: Path, workers: int) -> dict:
    """``python -m analytics evaluate`` on ``src``: wall and CPU seconds (the command and its
    workers), peak PSS of the process tree and of its largest process, chunks."""
    with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
        env = {**os.environ, "ANALYTICS_PRACTICE_KEY": "ab" * 32}
        cmd = [sys.executable, "-m", "analytics", "evaluate", "--lines", str(src.resolve()), "--payers",
               str(payers.resolve()), "--out", str(Path(tmp).resolve() / "out"), "--workers", str(workers)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        # run from the temporary folder: the package comes from PYTHONPATH (--baseline) or the install
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        peak = largest = 0
        while proc.poll() is None:
            sizes = [pss(pid) for pid in process_tree(proc.pid)]
            peak, largest = max(peak, sum(sizes)), max([largest, *sizes])
            time.sleep(0.1)
        wall = time.perf_counter() - start
        out = proc.stdout.read() if proc.stdout else ""
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"evaluate failed ({proc.returncode}): {' '.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "sys": after.ru_stime - before.ru_stime, "pss": peak / 2**30,
            "largest": largest / 2**30, "how": out.strip().splitlines()[0] if out.strip() else ""}


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc``)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return [pid]
    return [pid] + [p for c in children for p in process_tree(c)]


def pss(pid: int) -> int:
    """Proportional set size of a process in bytes (0 once it has ended)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for row in f:
                if row.startswith("Pss:"):
                    return int(row.split()[1]) * 1024
    except OSError:
        pass
    return 0


def compare(args, src: Path) -> None:
    """Runs of the baseline package and of this checkout in turn; medians side by side."""
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    mode = ["--command"] if args.command else ["--end-to-end"]
    for _ in range(args.repeat):
        for label, package in (("before", args.baseline), ("after", None)):
            runs[label].append(run_json(["--lines", str(src), *mode, "--workers", str(args.workers[0]),
                                         "--repeat", "1"], package))
            print(f"{label}: {json.dumps(runs[label][-1])}", file=sys.stderr, flush=True)
    print(f"\n{src}, {args.workers[0]} process(es), medians of {args.repeat} runs in turn (before: {args.baseline})")
    print("| figure | before | after |\n|---|---:|---:|")
    for name in runs["after"][0]:
        if isinstance(runs["after"][0][name], float):
            med = [statistics.median(r.get(name, float("nan")) for r in runs[k]) for k in ("before", "after")]
            print(f"| {name} | {med[0]:.2f} | {med[1]:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e5, 1e6, 1e7], help="target lines per size")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="processes for the end-to-end runs")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    ap.add_argument("--lines", type=Path, help="an existing Parquet file of service lines (instead of --sizes)")
    ap.add_argument("--end-to-end", action="store_true", help="only the evaluate_parquet runs (no in-memory stages)")
    ap.add_argument("--command", action="store_true",
                    help="run `python -m analytics evaluate` and sample its process tree's memory")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="a folder holding the analytics package before a change: its runs and this checkout's "
                         "in turn (with --end-to-end or --command)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one run's figures, for --baseline
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    keep_freed_memory()  # as the command line does: this process only evaluates
    payers, ref = load_payers(PAYERS), load_reference()
    sources = [args.lines] if args.lines else [practice_file(int(size), args.data_dir) for size in args.sizes]
    if args.baseline or args.json:
        src = sources[0]
        if args.baseline:
            print(machine())
            compare(args, src)
            print(machine().split("; ")[-1])
        elif args.command:
            print(json.dumps(command_run(src, PAYERS, args.workers[0])))
        else:
            seconds, how, cpu, steps = end_to_end(src, payers, args.workers[0])
            print(json.dumps({"wall": seconds, "cpu": cpu, **steps, "how": how}))
        return
    print(machine())
    for src in sources:
        if args.command:
            runs = [command_run(src, PAYERS, w) for w in args.workers for _ in range(args.repeat)]
            for r in runs:
                print(f"| {r['how']} | wall {r['wall']:.1f} s | CPU {r['cpu']:.2f} s (sys {r['sys']:.2f}) | "
                      f"tree PSS {r['pss']:.2f} GiB | largest {r['largest']:.2f} GiB |", flush=True)
            continue
        if args.end_to_end:
            import pyarrow.parquet as pq

            n = pq.ParquetFile(src).metadata.num_rows
            e2e = {w: [end_to_end(src, payers, w) for _ in range(args.repeat)] for w in args.workers}
            print(f"\n{n:,} lines ({src}), median of {args.repeat} runs")
            print("| stage | seconds | lines/s | |\n|---|---:|---:|---|")
            print_end_to_end(n, e2e, [])
            continue
        lines = pd.read_parquet(src)
        n = len(lines)
        runs = [stage_times(lines, payers, ref) for _ in range(args.repeat)]
        blocked = [block_stage_times(lines, payers, ref) for _ in range(args.repeat)] if n > 1.5 * BLOCK_LINES else []
        whole, whole_cpu = [], []
        for _ in range(args.repeat):
            cpu, start = time.process_time(), time.perf_counter()
            evaluate(lines, payers, ref)
            whole.append(time.perf_counter() - start)
            whole_cpu.append(time.process_time() - cpu)
        del lines
        e2e = {w: [end_to_end(src, payers, w) for _ in range(args.repeat)] for w in args.workers}
        print(f"\n{n:,} lines (generated practice, seed {SEED}), median of {args.repeat} runs")
        print("| stage | seconds | lines/s |" + (" in blocks of ~1M lines: seconds | lines/s |" if blocked else ""))
        print("|---|---:|---:|" + ("---:|---:|" if blocked else ""))
        for name in runs[0]:
            t = statistics.median(r[name] for r in runs)
            row = f"| {name} | {t:.3f} | {n / t:,.0f} |"
            if blocked:
                tb = statistics.median(r[name] for r in blocked)
                row += f" {tb:.3f} | {n / tb:,.0f} |"
            print(row)
        t = statistics.median(whole)
        how = "in blocks of whole patients" if blocked else "one pass"
        print(f"| evaluate, all stages in one call (in memory, {how}) | {t:.3f} | {n / t:,.0f} |")
        print_end_to_end(n, e2e, whole_cpu)
    print(machine().split("; ")[-1])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--clean":
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    else:
        main()
