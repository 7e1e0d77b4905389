"""Keyed pseudonyms: how fast the practice's ids are pseudonymised, and how fast an attacker
without the key would enumerate every 6-digit account number if the key were public.

    .venv/bin/python benchmarks/bench_pseudonyms.py --ids 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time

import numpy as np
import pandas as pd

from analytics.privacy import DEFAULT_SALT, PracticeKey, pseudonymise, pseudonyms


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    key = PracticeKey(bytes(range(32)), "bench")
    accounts = np.char.zfill(np.arange(args.ids).astype(str), 6).astype(object)
    lines = pd.DataFrame({"patient_id": np.tile(accounts, 2)})  # every id twice: hashed once
    rows = {
        f"pseudonymise {2 * args.ids:,} lines ({args.ids:,} distinct ids), keyed":
            _median(lambda: pseudonymise(lines, key=key), args.repeat),
        f"enumerate {args.ids:,} account numbers, HMAC with the public key":
            _median(lambda: pseudonyms(accounts, DEFAULT_SALT), args.repeat),
        f"enumerate {args.ids:,} account numbers, the old sha256(salt + id)":
            _median(lambda: [hashlib.sha256((DEFAULT_SALT + a).encode()).hexdigest()[:16] for a in accounts],
                    args.repeat),
    }
    print("| what | seconds (median) |\n|---|---|")
    for what, seconds in rows.items():
        print(f"| {what} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
