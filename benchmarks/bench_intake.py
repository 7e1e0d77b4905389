"""Reading a practice-management export: the header found, the mapping proposed, every line checked.

A messy export is built with numpy (a title row and a blank row above the header, names that
are ordinary words, dates of birth, "$1,234.50", MM/DD/YYYY, "Dx 1".."Dx 4", credentials after
the provider's name, a notes column, a TOTAL row, about 1% of lines with a problem), written as
CSV (and, up to 100,000 lines, as XLSX). For each size the script reports, as the median of
``--repeat`` runs:

* ``sniff``: :func:`analytics.intake.sniff_export` (read the file, find the header, propose the
  mapping from headers and cells, count payers and providers);
* ``read``: :func:`analytics.intake.read_service_lines` with that mapping (every row checked,
  rows set aside with their spreadsheet row number);
* ``both``: the two in a row, which is what ``init`` spends on the export.

Run::

    .venv/bin/python benchmarks/bench_intake.py [--lines 2000 1000000] [--repeat 3] [--xlsx]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analytics.intake import read_service_lines, sniff_export, write_mapping  # noqa: E402

FIRST = np.array(["Will", "Mark", "May", "Rich", "Bill", "Page", "Donna", "Grace", "Hope", "Faith"])
LAST = np.array(["White", "Page", "Case", "Gold", "Cash", "Mark", "Will", "May", "Rich", "Bill"])
PAYERS = np.array(["Medicare Part B", "Blue Shield Gold PPO", "Progressive Auto PIP", "Silver HMO Plus", "Self Pay"])
PROVIDERS = np.array(["Hannah Reyes, PT", "Tessa Ng, LMT", "Owen Pratt, LMT", "Sam Ortiz, DC"])
CODES = np.array(["97140", "97124", "97110", "97112", "97010"])
DX = np.array(["M54.50", "M62.830", "S13.4XXA", "M54.2", "R51.9", ""])
HEADERS = ["Patient Name", "DOB", "Account #", "Date of Service", "Claim #", "CPT", "Modifier(s)", "Units",
           "Minutes", "Charge", "Primary Insurance", "Rendering Provider", "Dx 1", "Dx 2", "Dx 3", "Dx 4",
           "Date Billed", "Rx on File", "Notes"]


def messy_export(lines: int, seed: int = 0) -> pd.DataFrame:
    """The export as text, vectorised; about 1% of lines carry a problem (blank minutes on a
    timed code, a decimal comma, a two-digit year)."""
    rng = np.random.default_rng(seed)
    patients = rng.integers(0, max(lines // 8, 1), lines)
    day = pd.Timestamp("2025-01-02") + pd.to_timedelta(rng.integers(0, 420, lines), unit="D")
    cpt = CODES[rng.integers(0, len(CODES), lines)]
    minutes = np.where(cpt == "97010", "", rng.integers(8, 61, lines).astype(str))
    charge = rng.integers(20, 140, lines) * 1.0 + 0.5
    charge_text = pd.Series(charge).map("${:,.2f}".format).to_numpy(dtype=object)
    bad = rng.random(lines)
    minutes = np.where((bad < 0.004) & (cpt != "97010"), "", minutes)
    charge_text = np.where((bad >= 0.004) & (bad < 0.007), "120,50", charge_text)
    service = day.strftime("%m/%d/%Y").to_numpy(dtype=object)
    service = np.where((bad >= 0.007) & (bad < 0.01), "3/14/25", service)
    frame = pd.DataFrame({
        "Patient Name": LAST[patients % 10].astype(object) + ", " + FIRST[(patients // 10) % 10],
        "DOB": pd.Series(pd.Timestamp("1950-01-01") + pd.to_timedelta(patients % 20000, unit="D"))
        .dt.strftime("%m/%d/%Y").to_numpy(),
        "Account #": np.char.add("A", patients.astype(str)),
        "Date of Service": service,
        "Claim #": np.char.add("CLM-", (np.arange(lines) // 2).astype(str)),
        "CPT": cpt,
        "Modifier(s)": np.where(rng.random(lines) < 0.5, "GP", "GP 59"),
        "Units": rng.integers(1, 4, lines).astype(str),
        "Minutes": minutes,
        "Charge": charge_text,
        "Primary Insurance": PAYERS[patients % len(PAYERS)],
        "Rendering Provider": PROVIDERS[patients % len(PROVIDERS)],
        "Dx 1": DX[patients % 5], "Dx 2": DX[(patients + 1) % 6], "Dx 3": DX[(patients + 2) % 6], "Dx 4": "",
        "Date Billed": (day + pd.Timedelta(days=2)).strftime("%m/%d/%Y").to_numpy(dtype=object),
        "Rx on File": np.where(rng.random(lines) < 0.8, "Y", "N"),
        "Notes": np.where(rng.random(lines) < 0.05, "called the patient about the visit", ""),
    })
    total = pd.DataFrame([["TOTAL", *[""] * 8, f"${charge.sum():,.2f}", *[""] * 9]], columns=HEADERS)
    return pd.concat([frame, total], ignore_index=True)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("Harbor Massage - Service Line Detail\n\n")
        frame.to_csv(fh, index=False)
    return path


def write_xlsx(frame: pd.DataFrame, path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Lines")
    sheet.append(["Harbor Massage - Service Line Detail"])
    sheet.append([])
    sheet.append(HEADERS)
    for row in frame.itertuples(index=False, name=None):
        sheet.append(list(row))
    book.save(path)
    return path


def run(path: Path, repeat: int) -> dict[str, float]:
    """Sniff, then read, ``repeat`` times, as ``init`` does: the file is touched before each round,
    so the sniff parses it afresh (a workbook parsed by the sniff is reused by the read)."""
    sniffs, reads = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mapping = path.with_name(path.stem + ".mapping.yaml")
        for _ in range(repeat):
            os.utime(path)
            started = time.perf_counter()
            layout = sniff_export(path)
            sniffs.append(time.perf_counter() - started)
            write_mapping(layout, mapping)
            started = time.perf_counter()
            intake = read_service_lines(path, mapping=mapping)
            reads.append(time.perf_counter() - started)
    assert intake.rows_in == intake.accepted + intake.quarantined
    both = statistics.median(a + b for a, b in zip(sniffs, reads, strict=True))
    return {"sniff": statistics.median(sniffs), "read": statistics.median(reads), "both": both,
            "rows": intake.rows_in, "set_aside": intake.set_aside, "header_row": intake.header_row}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=float, nargs="+", default=[2000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--xlsx", action="store_true", help="also time XLSX (sizes up to 100,000 lines)")
    args = parser.parse_args(argv)
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"pandas {pd.__version__}; load average {os.getloadavg()[0]:.1f}")
    print("| export | lines | header row | set aside | sniff, s | read, s | sniff + read, s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as folder:
        for lines in (int(n) for n in args.lines):
            frame = messy_export(lines)
            kinds = [("CSV", write_csv(frame, Path(folder) / f"export_{lines}.csv"))]
            if args.xlsx and lines <= 100_000:
                kinds.append(("XLSX", write_xlsx(frame, Path(folder) / f"export_{lines}.xlsx")))
            for kind, path in kinds:
                r = run(path, args.repeat)
                print(f"| {kind} ({path.stat().st_size / 2**20:.1f} MB) | {r['rows']:,} | {r['header_row']} | "
                      f"{r['set_aside']:,} | {r['sniff']:.2f} | {r['read']:.2f} | {r['both']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
