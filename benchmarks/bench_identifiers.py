"""The guard's identifier collection on a practice folder: the plain reading before, the fast one after.

Before is the reference copy of the plain implementation kept in
``tests/test_identifiers_fast.py``; after is :mod:`analytics.privacy.identifiers`. Each is run
``--runs`` times in this one process (a warm page cache: the files are read once first), and the
median CPU and wall seconds are printed, for the export, the 835s and the whole folder
(:func:`identifiers_from_folder`, which also reads mapping.yaml, payers.yaml and practice.yaml).
The two results are checked equal.

    ANALYTICS_PRACTICE_KEY=... .venv/bin/python benchmarks/bench_identifiers.py --data /tmp/p8_1m --runs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics.privacy import identifiers

ROOT = Path(__file__).resolve().parents[1]


def _reference() -> Any:
    """The plain implementation, as the differential test keeps it."""
    spec = importlib.util.spec_from_file_location("identifiers_reference", ROOT / "tests" / "test_identifiers_fast.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    cpu, wall, result = [], [], None
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall), result


def _folder_with(export_fn: Callable[..., Any], remit_fn: Callable[..., Any], data: Path) -> Any:
    """identifiers_from_folder with the export and 835 readings given (the plain ones for "before")."""
    saved = identifiers.identifiers_from_export, identifiers.identifiers_from_835
    identifiers.identifiers_from_export, identifiers.identifiers_from_835 = export_fn, remit_fn
    try:
        return identifiers.identifiers_from_folder(data)
    finally:
        identifiers.identifiers_from_export, identifiers.identifiers_from_835 = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/p8_1m"), help="a practice folder")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (median reported)")
    parser.add_argument("--after-only", action="store_true", help="time the fast reading only")
    parser.add_argument("--dates", type=int, default=20_000,
                        help="also time this many generated dates of birth (seeded; 0: none)")
    args = parser.parse_args()
    ref = _reference()
    export, remittances, _ = identifiers.practice_inputs(args.data)
    for path in [export, *remittances]:  # warm the page cache
        if path is not None:
            path.read_bytes()
    size = sum(p.stat().st_size for p in [export, *remittances] if p is not None) / 1e6
    print(f"{args.data}: export {export.stat().st_size / 1e6:.0f} MB, {len(remittances)} 835s, {size:.0f} MB in all; "
          f"{platform.python_implementation()} {platform.python_version()}, {args.runs} runs, medians")
    cases = {
        "export": (lambda: ref.ref_identifiers_from_export(export), lambda: identifiers.identifiers_from_export(export)),
        "835s": (lambda: ref.ref_identifiers_from_835(remittances), lambda: identifiers.identifiers_from_835(remittances)),
        "folder": (lambda: _folder_with(ref.ref_identifiers_from_export, ref.ref_identifiers_from_835, args.data),
                   lambda: identifiers.identifiers_from_folder(args.data)),
    }
    print("| part | CPU before | wall before | CPU after | wall after | CPU ratio |\n|---|---|---|---|---|---|")
    for part, (before, after) in cases.items():
        cpu_a, wall_a, got = timed(after, args.runs)
        if args.after_only:
            print(f"| {part} | | | {cpu_a:.2f} s | {wall_a:.2f} s | |")
            continue
        cpu_b, wall_b, expected = timed(before, args.runs)
        same = dataclasses.asdict(got) == dataclasses.asdict(expected)
        if not same:
            raise SystemExit(f"{part}: the fast reading differs from the plain one")
        print(f"| {part} | {cpu_b:.2f} s | {wall_b:.2f} s | {cpu_a:.2f} s | {wall_a:.2f} s | {cpu_b / cpu_a:.0f}x |")
    if args.dates and not args.after_only:
        _dates_of_birth(ref, args.dates, args.runs)


def _dates_of_birth(ref: Any, count: int, runs: int) -> None:
    """Distinct dates of birth as exports write them (ISO and M/D/YYYY), read one at a time and a form at a time."""
    rng = random.Random(1961)
    texts = sorted({f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                    for _ in range(count * 4 // 5)} | {f"{rng.randint(1, 12)}/{rng.randint(1, 28)}/{rng.randint(1930, 2020)}"
                                                        for _ in range(count // 5)})

    def read(cls: type) -> Any:
        found = cls()
        found.add_dates(texts)
        return found.dates_of_birth

    cpu_b, wall_b, expected = timed(lambda: read(ref.RefIdentifiers), runs)
    cpu_a, wall_a, got = timed(lambda: read(identifiers.Identifiers), runs)
    if got != expected:
        raise SystemExit("dates of birth: the form-at-a-time reading differs")
    print(f"| {len(texts):,} distinct dates of birth | {cpu_b:.2f} s | {wall_b:.2f} s | {cpu_a:.2f} s | {wall_a:.2f} s "
          f"| {cpu_b / cpu_a:.0f}x |")


if __name__ == "__main__":
    main()
