"""The guard's scan of a report run's outputs as the practice's patients grow: dates of birth.

A run's pages, notebooks and tables (``--outputs``, a folder ``report all`` wrote; without it,
``report all`` on ``--data`` is run first into a temporary folder) are scanned
(:func:`analytics.privacy.guard.scan_outputs`) against identifiers holding the sample's names
and ids and the dates of birth of ``N`` patients (each in the four forms pages print). Before:
each text searched for every date, one at a time (the guard's former ``Matcher._dates``);
after: the text's date-shaped tokens looked up among the dates. The two find the same (checked).
Medians of ``--runs`` runs in this one process, CPU and wall seconds.

    .venv/bin/python -m analytics report all --data data/sample --out /tmp/guard-out
    .venv/bin/python benchmarks/bench_guard.py --outputs /tmp/guard-out --runs 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import tempfile
from pathlib import Path

from bench_identifiers import timed  # medians of CPU and wall seconds, and the result

from analytics.privacy import identifiers_from_folder
from analytics.privacy.guard import Matcher, scan_outputs

ROOT = Path(__file__).resolve().parents[1]


def _alone(text: str, date: str) -> bool:
    """The date occurs in the text with no digit on either side."""
    at = text.find(date)
    while at >= 0:
        end = at + len(date)
        if not (at and text[at - 1].isdigit()) and not (end < len(text) and text[end].isdigit()):
            return True
        at = text.find(date, at + 1)
    return False


class OneDateAtATime(Matcher):
    """The former search: every date of birth looked for in every text."""

    def _dates(self, text: str) -> list[tuple[str, str]]:
        return [("date_of_birth", d) for d in self.dates if d in text and _alone(text, d)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outputs", type=Path, help="a folder report all wrote (default: run it on --data)")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "sample")
    parser.add_argument("--patients", type=int, nargs="+", default=[100, 2000, 20000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.outputs is not None:
        _bench(args)
        return
    from analytics.reports import run_reports

    with tempfile.TemporaryDirectory(prefix="bench-guard-") as folder:
        args.outputs = Path(folder)
        run_reports("all", args.data, args.outputs)
        _bench(args)


def _bench(args: argparse.Namespace) -> None:
    base = identifiers_from_folder(args.data)
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{sum(1 for p in args.outputs.rglob('*') if p.is_file())} files under {args.outputs}")
    print("| patients | dates (4 forms each) | before CPU / wall s | after CPU / wall s |")
    print("|---:|---:|---:|---:|")
    for n in args.patients:
        ids = base | type(base)()
        first = dt.date(1930, 1, 1)
        ids.add_dates([(first + dt.timedelta(days=17 * i)).isoformat() for i in range(n)])
        before = timed(lambda ids=ids: scan_outputs([args.outputs], OneDateAtATime(ids)), args.runs)
        after = timed(lambda ids=ids: scan_outputs([args.outputs], Matcher(ids)), args.runs)
        assert before[2].equals(after[2]), "the two searches found different things"
        print(f"| {n:,} | {len(ids.dates_of_birth):,} | {before[0]:.2f} / {before[1]:.2f} | "
              f"{after[0]:.2f} / {after[1]:.2f} |")


if __name__ == "__main__":
    main()
