"""Time of ``python -m analytics init`` on a practice-management export and its 835s.

Run: ``.venv/bin/python benchmarks/bench_init.py [--lines 2000 1000000] [--formats xlsx csv] [--repeat 3]``.

The export is built from a synthetic practice (:func:`analytics.datasets.generate_practice`)
the way a practice-management system writes one: a title row and a blank row above the header,
patient names, DOB and account numbers, MM/DD/YYYY dates, "$1,234.50" charges, full payer names,
"Name, PT" providers, ``Dx 1``..``Dx 4``, a TOTAL row. Exports larger than the generated practice
repeat it with new claim and account numbers. The 835s are the generated practice's own (one
file per payer and week), named ``*.txt``. Each run is a fresh practice folder: sniffing the
export, copying it and the 835s, reading the export with its mapping, reading every 835,
drafting the payer policies, writing the files and the key. Prints one markdown row per size
and format: lines, 835 files, median seconds of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

from analytics.datasets import generate_practice, write_remittances
from analytics.onboarding import init_practice

PAYER_NAMES = {"medicare": "Medicare Part B", "ppo_gold": "Blue Shield Gold PPO", "hmo_capped": "Silver HMO Plus",
               "auto_pip": "Progressive Auto PIP", "workers_comp": "State Fund Workers Comp", "cash": "Self Pay"}
PROVIDERS = {"LMT1": "Tessa Ng, LMT", "LMT2": "Owen Pratt, LMT", "LMT3": "Rosa Diaz, LMT",
             "PT1": "Hannah Reyes, PT", "DC1": "Sam Ortiz, DC"}
LINES_PER_VISIT = 2.12


def _us(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates)
    return d.dt.strftime("%m/%d/%Y").where(d.notna(), "")


def export_frame(practice, lines_wanted: int) -> pd.DataFrame:
    lines = practice.lines.reset_index(drop=True)
    units = practice.adjudicated["units"].reset_index(drop=True)
    number = lines["patient_id"].astype(str).str.extract(r"(\d+)")[0].astype(int)
    dx = lines["dx_codes"].astype(str).str.split(",", expand=True).reindex(columns=range(4)).astype(object)
    dx = dx.where(dx.notna(), "")
    one = pd.DataFrame({
        "Patient Name": "White, " + number.map(lambda n: ("Will", "Mark", "May", "Rich", "Bill")[n % 5]),
        "DOB": (pd.Timestamp("1960-01-01") + pd.to_timedelta(number % 9000, unit="D")).dt.strftime("%m/%d/%Y"),
        "Account #": number,
        "Date of Service": _us(lines["service_date"]),
        "Claim #": lines["claim_id"].astype(str),
        "CPT": lines["cpt"].astype(str),
        "Modifier(s)": lines["modifiers"].fillna("").astype(str).str.replace(",", " "),
        "Units": units.astype(int),
        "Minutes": lines["minutes"].astype("Float64").astype(object).where(lines["minutes"].notna(), ""),
        "Charge": lines["charge"].map(lambda x: f"${x:,.2f}"),
        "Primary Insurance": lines["payer_id"].map(PAYER_NAMES),
        "Rendering Provider": lines["provider_id"].map(PROVIDERS),
        "Dx 1": dx[0], "Dx 2": dx[1], "Dx 3": dx[2], "Dx 4": dx[3],
        "Date Billed": _us(lines["submission_date"]),
        "Rx on File": lines["prescription_on_file"].map({True: "Y", False: "N"}),
    })
    copies = -(-lines_wanted // len(one))
    parts = []
    for k in range(copies):
        part = one.copy()
        if k:
            part["Claim #"] = part["Claim #"] + f"-{k}"
            part["Account #"] = part["Account #"] + 10_000_000 * k
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True).iloc[:lines_wanted]
    frame["Account #"] = "A" + frame["Account #"].astype(str)
    return frame


def write_export(frame: pd.DataFrame, path: Path) -> None:
    total = dict.fromkeys(frame.columns, "")
    total["Patient Name"], total["Charge"] = "TOTAL", "$0.00"
    if path.suffix == ".csv":
        with path.open("w", newline="") as fh:
            fh.write("Charge Detail Report - all providers\n\n")
            pd.concat([frame, pd.DataFrame([total])], ignore_index=True).to_csv(fh, index=False)
        return
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Charge Detail Report - all providers"])
    sheet.append([])
    sheet.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        sheet.append([None if v == "" else v for v in row])
    sheet.append([total[c] or None for c in frame.columns])
    book.save(path)


def bench(lines: int, fmt: str, repeat: int, work: Path) -> tuple[int, int, float]:
    visits = max(50, round(min(lines, 20_000) / LINES_PER_VISIT))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        practice = generate_practice(visits, seed=5)
    era = work / f"era-{lines}"
    if not era.exists():
        for f in write_remittances(practice, era):
            f.rename(f.with_suffix(".txt"))
    export = work / f"charges-{lines}.{fmt}"
    if not export.exists():
        write_export(export_frame(practice, lines), export)
    times = []
    for i in range(repeat):
        folder = work / f"practice-{lines}-{fmt}-{i}"
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = init_practice(folder, export, remittances=era, locality="01182-18", name="Bench")
        times.append(time.perf_counter() - start)
        assert result.rows_in == lines + 1, (result.rows_in, lines)
        shutil.rmtree(folder)
    return lines, len(list(era.iterdir())), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=float, nargs="+", default=[2_000, 1_000_000])
    parser.add_argument("--formats", nargs="+", default=["xlsx", "csv"], choices=("xlsx", "csv"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-init-"))
    try:
        print(f"init_practice on {platform.processor() or platform.machine()}, median of {args.repeat}")
        print("| export lines | format | 835 files | seconds |")
        print("|---:|---|---:|---:|")
        for target in args.lines:
            for fmt in args.formats:
                if fmt == "xlsx" and target > 100_000:
                    continue  # Excel sheets stop at 1,048,576 rows; large exports come as CSV
                made, files, seconds = bench(int(target), fmt, args.repeat, work)
                print(f"| {made:,} | {fmt} | {files:,} | {seconds:.2f} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
