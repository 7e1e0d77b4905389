"""Unit allocation (CMS 8-minute rule) three ways, on the same lines in the same run.

1. ``loop``: a plain per-visit Python loop, the way one would first write the rule: group
   the lines by visit in a dict, then per visit add the timed minutes, take the units, hand
   out the whole 15-minute units and give the units left over to the largest leftovers.
2. ``duckdb``: the same rule as one DuckDB SQL query with window functions (total minutes
   per visit, units, whole units, leftover rank), on the pandas frame, result back in
   row order. Timed with DuckDB's default threads (all cores) and with one thread.
3. ``vectorised``: the allocation as ``compute_units`` does it (visit codes, timed minutes,
   totals, whole units, leftovers ranked by sorting only the visits where they compete), the
   same work as 1 and 2; and the whole public ``compute_units(lines, "cms")``, which also
   validates the input and writes a reason for every line.

All three must give the same units for every line (ties between equal leftovers broken by
code, then modifiers, then line id, as ``compute_units`` does); the script stops if not.
The lines come from the synthetic practice generator (cached under ``--data-dir``). When the
loop would take long, it runs on a random sample of whole visits and its time is scaled by
the number of visits (``--loop-visits``); the table says so.

Run::

    .venv/bin/python benchmarks/bench_units_alternatives.py [--lines 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import DATA_DIR, machine, practice_lines  # noqa: E402

from analytics.refdata import load_reference  # noqa: E402
from analytics.units import LineKeys, _count_units, compute_units  # noqa: E402

VISIT = ["patient_id", "service_date", "provider_id"]


def units_loop(lines: pd.DataFrame, timed_codes: set[str]) -> np.ndarray:
    """The 8-minute rule, one visit at a time (Pub. 100-04 ch. 5 sec. 20.2)."""
    visits: dict[tuple, list[tuple]] = {}
    for i, (patient, date, provider, cpt, minutes, mods, line_id) in enumerate(zip(
            lines["patient_id"], lines["service_date"], lines["provider_id"], lines["cpt"], lines["minutes"],
            lines["modifiers"], lines["line_id"], strict=True)):
        visits.setdefault((patient, date, provider), []).append((i, cpt, minutes, mods, line_id))
    units = np.zeros(len(lines), dtype=np.int64)
    for visit_lines in visits.values():
        timed = []
        for i, cpt, minutes, mods, line_id in visit_lines:
            if cpt in timed_codes:
                timed.append((i, str(cpt), int(minutes), "" if pd.isna(mods) else str(mods), str(line_id)))
            else:
                units[i] = 1  # untimed: one unit per session
        total = sum(m for _, _, m, _, _ in timed)
        visit_units = (total + 7) // 15 if total >= 8 else 0
        left = visit_units
        for i, _, m, _, _ in timed:
            units[i] = m // 15
            left -= m // 15
        # units left over go to the largest leftovers (then more minutes, code, modifiers, line id)
        for i, _, m, _, _ in sorted(timed, key=lambda t: (-(t[2] % 15), -t[2], t[1], t[3], t[4])):
            if left <= 0:
                break
            if m % 15:
                units[i] += 1
                left -= 1
    return units


UNITS_SQL = """
WITH t AS (
    SELECT i, patient_id, service_date, provider_id, cpt::VARCHAR AS cpt,
           COALESCE(modifiers::VARCHAR, '') AS mods, line_id::VARCHAR AS line_id,
           cpt::VARCHAR IN (SELECT cpt FROM timed_codes) AS timed,
           CASE WHEN cpt::VARCHAR IN (SELECT cpt FROM timed_codes) THEN CAST(minutes AS BIGINT) ELSE 0 END AS m
    FROM lines
), v AS (
    SELECT *,
           SUM(m) OVER visit AS total,
           SUM(m // 15) OVER visit AS whole_sum,
           ROW_NUMBER() OVER (PARTITION BY patient_id, service_date, provider_id
                              ORDER BY m % 15 DESC, m DESC, cpt, mods, line_id) - 1 AS leftover_rank
    FROM t
    WINDOW visit AS (PARTITION BY patient_id, service_date, provider_id)
)
SELECT CASE WHEN NOT timed THEN 1
            ELSE m // 15 + CASE WHEN m % 15 > 0
                                 AND leftover_rank < (CASE WHEN total >= 8 THEN (total + 7) // 15 ELSE 0 END)
                                                     - whole_sum
                                THEN 1 ELSE 0 END
       END AS units
FROM v
ORDER BY i
"""


def units_duckdb(con, lines: pd.DataFrame) -> np.ndarray:
    con.register("lines", lines.assign(i=np.arange(len(lines))))
    try:
        return con.execute(UNITS_SQL).fetchnumpy()["units"].astype(np.int64)
    finally:
        con.unregister("lines")


def timed_runs(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=float, default=1e6, help="target lines (the generator makes about this many)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each method (median reported)")
    ap.add_argument("--loop-visits", type=int, default=500_000,
                    help="run the loop on at most this many visits (a sample) and scale its time")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = ap.parse_args()
    import duckdb

    lines = practice_lines(int(args.lines), args.data_dir)
    n = len(lines)
    ref = load_reference()
    timed_codes = set(ref.codes.loc[ref.codes["timed"], "cpt"])
    warnings.simplefilter("ignore")

    t_vec, vec = timed_runs(lambda: compute_units(lines, "cms")["units"].to_numpy(), args.repeat)
    every_cms = np.ones(n, dtype=bool)
    t_alloc, alloc = timed_runs(lambda: _count_units(lines, every_cms, ref, LineKeys(lines))["units"], args.repeat)

    con = duckdb.connect()
    con.register("timed_codes", pd.DataFrame({"cpt": sorted(timed_codes)}))
    units_duckdb(con, lines.iloc[:1000])  # warm up
    t_sql, sql = timed_runs(lambda: units_duckdb(con, lines), args.repeat)
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    t_sql1, sql1 = timed_runs(lambda: units_duckdb(con, lines), args.repeat)

    visit = lines.groupby(VISIT, sort=False, observed=True).ngroup().to_numpy()
    n_visits = int(visit.max()) + 1
    if n_visits > args.loop_visits:
        pick = np.zeros(n_visits, dtype=bool)
        pick[np.random.default_rng(0).choice(n_visits, args.loop_visits, replace=False)] = True
        rows = np.flatnonzero(pick[visit])
        sample = lines.iloc[rows]
        note = f"sample of {args.loop_visits:,} visits ({len(rows):,} lines), time x {n_visits / args.loop_visits:.2f}"
    else:
        rows, sample, note = np.arange(n), lines, "all visits"
    t_loop, loop = timed_runs(lambda: units_loop(sample, timed_codes), args.repeat)
    t_loop *= n_visits / len(np.unique(visit[rows]))

    for name, got in (("allocation", alloc), ("duckdb", sql), ("duckdb 1 thread", sql1), ("loop", loop)):
        expect = vec if name != "loop" else vec[rows]
        bad = np.flatnonzero(got != expect)
        if len(bad):
            sys.exit(f"{name} disagrees with compute_units on {len(bad)} line(s), e.g. row {bad[0]}")

    print(machine())
    print(f"unit allocation (CMS 8-minute rule), {n:,} lines in {n_visits:,} visits, median of {args.repeat} runs; "
          "all three give the same units on every line")
    print("| method | seconds | lines/s | x the vectorised allocation | x compute_units |")
    print("|---|---:|---:|---:|---:|")
    rows_out = [
        (f"per-visit Python loop ({note})", t_loop),
        (f"DuckDB SQL, window functions ({threads} threads)", t_sql),
        ("DuckDB SQL, window functions (1 thread)", t_sql1),
        ("vectorised allocation (1 thread, units only)", t_alloc),
        ("vectorised compute_units (1 thread, validation and reasons too)", t_vec),
    ]
    for name, t in rows_out:
        print(f"| {name} | {t:.3f} | {n / t:,.0f} | {t / t_alloc:.1f} | {t / t_vec:.1f} |")
    print(f"acceptance (same work, units only): vectorised {t_loop / t_alloc:.0f}x the loop "
          f"({'meets' if t_loop / t_alloc >= 30 else 'BELOW'} 30x), {t_sql / t_alloc:.2f}x DuckDB on {threads} threads "
          f"({'no slower' if t_alloc <= t_sql else 'SLOWER'}); the whole compute_units: {t_loop / t_vec:.0f}x the loop, "
          f"{t_sql / t_vec:.2f}x DuckDB")


if __name__ == "__main__":
    main()
