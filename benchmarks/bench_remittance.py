"""Benchmark: ``read_835`` throughput on a generated 835 of 50,000 claims (about 16 MB).

The file is built with a fixed seed: each claim has one to three massage/therapy service lines
with one or two CAS segments each, REF*6R, AMT*B6 and some LQ*HE remarks, and the file
balances at line, claim and transaction level. ``write_835`` writes such a file of any size
block by block (``bench_remittance_memory.py`` uses it for the 500 MB memory benchmark). Run::

    .venv/bin/python benchmarks/bench_remittance.py [--claims 50000] [--runs 3] [--files 1000]

Prints the median time, MB/s and a markdown line for benchmarks/RESULTS.md. Target: 10 MB/s.

With ``--files N`` it also times ``read_835_many`` on N small files (``--claims-per-file``
claims each, like a practice's weekly remittances from several payers) against ``read_835`` on
one file holding the same interchanges: reading many small files should cost about what one file
of their total size does.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from analytics.remittance import read_835, read_835_many

TARGET_MB_S = 10.0
OUT = Path(__file__).resolve().parent / "out"

_CODES = ("97140", "97124", "97112", "97110", "97010", "97530")
_MODIFIERS = ("GP", "GP:59", "GP:KX", "")


_ISA = (
    "ISA*00*          *00*          *ZZ*SYNTHPAYER01   *ZZ*SYNTHCLINIC01  "
    "*260316*0930*^*00501*000000101*0*T*:~\n"
)
_GS = "GS*HP*SYNTHPAYER01*SYNTHCLINIC01*20260316*0930*101*X*005010X221A1~\n"
_TRAILER = "GE*1*101~\nIEA*1*000000101~\n"
_HEADER = [
    "TRN*1*BENCH000001*1999999999",
    "DTM*405*20260316",
    "N1*PR*BENCHMARK HEALTH PLAN",
    "N3*100 EXAMPLE WAY",
    "N4*ANYTOWN*CA*90000",
    "N1*PE*EXAMPLE MASSAGE AND REHAB*XX*1234567893",
    "REF*TJ*990000001",
    "LX*1",
]
_PLB = "PLB*1234567893*20261231*WO:BENCH0000*5.00"
_PLB_CENTS = 500


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _bpr(cents: int, width: int = 0) -> str:
    amount = f"{cents // 100:0{width}d}.{cents % 100:02d}"
    return (
        f"BPR*I*{amount}*C*ACH*CCP*01*999999999*DA*000111222*1999999999**01*888888888*DA*"
        f"333444555*20260318"
    )


def _claims(rng: np.random.Generator, n_claims: int, first: int = 0) -> tuple[list[str], int]:
    """Segments of ``n_claims`` balanced claims numbered from ``first``, and their paid total in
    cents; amounts are whole cents, so sums are exact."""
    n_lines = rng.integers(1, 4, size=n_claims)
    total = int(n_lines.sum())
    charge = rng.integers(2_000, 20_000, size=total)  # cents
    contractual = (charge * rng.uniform(0.0, 0.6, size=total)).astype(np.int64)
    copay = np.where(rng.random(total) < 0.4, rng.integers(0, 2_000, size=total), 0)
    copay = np.minimum(copay, charge - contractual)
    paid = charge - contractual - copay
    code = rng.integers(0, len(_CODES), size=total)
    modifier = rng.integers(0, len(_MODIFIERS), size=total)
    units = rng.integers(1, 5, size=total)
    remark = rng.random(total) < 0.15

    segs: list[str] = []
    paid_total = 0
    j = 0
    for k in range(n_claims):
        c = first + k
        m = int(n_lines[k])
        lines = range(j, j + m)
        c_charge = int(charge[j : j + m].sum())
        c_paid = int(paid[j : j + m].sum())
        c_copay = int(copay[j : j + m].sum())
        paid_total += c_paid
        segs.append(
            f"CLP*PCN{c:07d}*1*{_money(c_charge)}*{_money(c_paid)}*{_money(c_copay)}*12*CLM{c:09d}*11*1"
        )
        segs.append(f"NM1*QC*1*DOE*JANE****MI*M{c % 9000:07d}")
        segs.append("DTM*050*20260310")
        for i, line in enumerate(lines, start=1):
            mods = _MODIFIERS[modifier[line]]
            svc01 = f"HC:{_CODES[code[line]]}" + (f":{mods}" if mods else "")
            segs.append(
                f"SVC*{svc01}*{_money(int(charge[line]))}*{_money(int(paid[line]))}**{units[line]}"
            )
            segs.append(f"DTM*472*202603{1 + line % 28:02d}")
            segs.append(f"CAS*CO*45*{_money(int(contractual[line]))}")
            if copay[line]:
                segs.append(f"CAS*PR*3*{_money(int(copay[line]))}")
            segs.append(f"REF*6R*L{i}")
            segs.append(f"AMT*B6*{_money(int(charge[line] - contractual[line]))}")
            if remark[line]:
                segs.append("LQ*HE*M15")
        j += m
    return segs, paid_total


def build_835(n_claims: int, *, seed: int = 0) -> str:
    """A balanced 835 with ``n_claims`` claims; amounts are whole cents, so sums are exact."""
    claims, paid_total = _claims(np.random.default_rng(seed), n_claims)
    segs = ["ST*835*0001", _bpr(paid_total - _PLB_CENTS), *_HEADER, *claims, _PLB]
    segs.append(f"SE*{len(segs) + 1}*0001")
    body = "~\n".join(segs)
    return f"{_ISA}{_GS}{body}~\n{_TRAILER}"


def write_835(path: Path, n_claims: int, *, seed: int = 0, block: int = 20_000) -> int:
    """Write a balanced 835 of ``n_claims`` claims to ``path``, ``block`` claims at a time, as
    one interchange with one transaction (a single check covering every claim). BPR02 is
    written zero-padded to a fixed width and filled in once the total is known, so the file
    is never held in memory. Returns the file size in bytes."""
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(f"{_ISA}{_GS}ST*835*0001~\n".encode())
        bpr_at = f.tell()
        f.write(f"{_bpr(0, width=12)}~\n".encode())
        f.write("".join(s + "~\n" for s in _HEADER).encode())
        count = 2 + len(_HEADER)
        paid_total = 0
        for start in range(0, n_claims, block):
            segs, paid = _claims(rng, min(block, n_claims - start), first=start)
            f.write("".join(s + "~\n" for s in segs).encode())
            count += len(segs)
            paid_total += paid
        count += 2  # PLB and SE
        f.write(f"{_PLB}~\nSE*{count}*0001~\n{_TRAILER}".encode())
        size = f.tell()
        f.seek(bpr_at)
        f.write(_bpr(paid_total - _PLB_CENTS, width=12).encode())
    return size


def _median_time(read: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        read()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_many(n_files: int, claims_per_file: int, runs: int) -> None:
    """``read_835_many`` on ``n_files`` small files against ``read_835`` on one file holding
    the same interchanges, one after the other."""
    folder = OUT / f"many_{n_files}x{claims_per_file}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.835"):
        old.unlink()
    texts = [build_835(claims_per_file, seed=1 + i) for i in range(n_files)]
    paths = []
    for i, text in enumerate(texts):
        paths.append(folder / f"era_{i:05d}.835")
        paths[-1].write_text(text, encoding="ascii")
    whole = OUT / f"many_{n_files}x{claims_per_file}_as_one.edi"
    whole.write_text("".join(texts), encoding="ascii")
    size_mb = whole.stat().st_size / 1e6

    remit, errors = read_835_many(paths)  # warm-up, and the check that every file was read
    assert errors.empty and len(remit.claims) == n_files * claims_per_file
    assert bool(remit.balance["balanced"].all())
    many, many_times = _median_time(lambda: read_835_many(paths), runs)
    one, one_times = _median_time(lambda: read_835(whole), runs)
    print(
        f"{n_files:,} files of {claims_per_file:,} claims ({size_mb:.1f} MB in all): "
        f"read_835_many median {many:.3f} s ({1000 * many / n_files:.2f} ms a file; runs "
        + ", ".join(f"{t:.3f}s" for t in many_times)
        + f"); read_835 of one file with the same interchanges median {one:.3f} s (runs "
        + ", ".join(f"{t:.3f}s" for t in one_times)
        + f"); ratio {many / one:.2f}"
    )
    print(
        f"| remittance.read_835_many | {n_files:,} files x {claims_per_file:,} claims, "
        f"{size_mb:.1f} MB | median of {runs}: {many:.3f} s | one file of the same size: "
        f"{one:.3f} s | Python {platform.python_version()} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--files", type=int, default=0, help="also time N small files")
    parser.add_argument("--claims-per-file", type=int, default=10)
    args = parser.parse_args(argv)

    OUT.mkdir(exist_ok=True)
    path = OUT / f"bench_835_{args.claims}.edi"
    path.write_text(build_835(args.claims), encoding="ascii")
    size_mb = path.stat().st_size / 1e6

    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        remit = read_835(path)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    rate = size_mb / median
    assert len(remit.claims) == args.claims
    assert bool(remit.balance["balanced"].all())

    print(
        f"{args.claims:,} claims, {len(remit.service_lines):,} service lines, "
        f"{len(remit.adjustments):,} CAS rows, {size_mb:.1f} MB; runs: "
        + ", ".join(f"{t:.3f}s" for t in times)
    )
    print(f"median {median:.3f} s -> {rate:.1f} MB/s (target >= {TARGET_MB_S:g} MB/s)")
    status = "meets" if rate >= TARGET_MB_S else "BELOW"
    print(
        f"| remittance.read_835 | {args.claims:,} claims, {size_mb:.1f} MB | median of "
        f"{args.runs}: {median:.2f} s | {rate:.1f} MB/s | {status} target {TARGET_MB_S:g} MB/s | "
        f"Python {platform.python_version()} |"
    )
    if args.files:
        bench_many(args.files, args.claims_per_file, args.runs)
    return 0 if rate >= TARGET_MB_S else 1


if __name__ == "__main__":
    sys.exit(main())
