"""The ``init`` command: a practice folder from an export and a folder of 835s.

``python -m analytics init PRACTICE_DIR --export FILE [--remittances DIR] [--locality MAC-LOC]
[--name "Practice name"] [--force]`` writes the folder (:func:`analytics.onboarding.init_practice`)
and prints what it wrote, the export's rows (in = used + set aside), what to confirm and the
next command. ``--localities [STATE]`` lists the Medicare localities.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analytics.exceptions import InputError
from analytics.onboarding import (
    CONFIRM,
    LIST_LOCALITIES,
    PracticeFolder,
    check_practice,
    init_practice,
    known_localities,
)
from analytics.progress import Progress

__all__ = ["register_cli"]

_SHOWN = 12  # checklist items printed before "and N more"


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``init``: make a practice folder from an export and its 835s."""
    p = sub.add_parser(
        "init", help="make a practice folder from an export and its 835s, with draft payer policies",
        description="Copy a practice-management export and a folder of 835s into PRACTICE_DIR, propose how to "
                    "read the export (mapping.yaml), draft one payer policy per payer from what the 835s show "
                    "(payers.yaml, every guess marked CONFIRM), write practice.yaml and the practice's key. "
                    "Running it again refreshes the export and the 835s, keeps mapping.yaml, practice.yaml and "
                    "payers.yaml if you edited them and writes NAME.new beside them (--force replaces).",
        epilog="Example: python -m analytics init ~/practice --export ~/Downloads/charges.xlsx "
               "--remittances ~/Downloads/era --locality 01182-18 --name \"Harbor Massage\"")
    p.add_argument("folder", nargs="?", type=Path, metavar="PRACTICE_DIR", help="the practice folder (made when "
                                                                                 "missing)")
    p.add_argument("--export", type=Path, metavar="FILE", help="the practice-management export: CSV, TSV, XLSX "
                                                               "or Parquet, title rows and TOTAL rows allowed")
    p.add_argument("--remittances", type=Path, metavar="DIR", help="folder of 835 files (any names; subfolders "
                                                                   "are searched)")
    p.add_argument("--locality", metavar="MAC-LOC", help="the practice's Medicare locality, e.g. 01182-18 (list "
                                                         "them with --localities STATE)")
    p.add_argument("--name", help="the practice's name, as the pages show it")
    p.add_argument("--sheet", help="Excel sheet of the export: its name, or its position from 0 (default: the first)")
    p.add_argument("--force", action="store_true", help="replace mapping.yaml, practice.yaml and payers.yaml when "
                                                        "they differ (default: keep yours and write NAME.new)")
    p.add_argument("--check", action="store_true",
                   help="after confirming payers.yaml: check that the folder's files read and list the guesses "
                        "still marked CONFIRM (no --export needed)")
    p.add_argument("--localities", nargs="?", const="", metavar="STATE",
                   help="list the Medicare localities (of one state, e.g. CA) and stop")
    p.set_defaults(func=_run_init)


def _list_localities(state: str) -> int:
    table = known_localities(state or None)
    if table.empty:
        raise InputError(f"--localities {state!r}: no Medicare locality for that state. Give a two-letter state "
                         f"such as CA, or run `{LIST_LOCALITIES}` for all of them.", where="--localities")
    width = max(len(s) for s in table["locality_name"])
    for r in table.itertuples():
        print(f"{r.locality_id}  {r.state}  {r.locality_name.ljust(width)}  ({r.years})")
    print(f"\n{len(table)} localities. Give one to init (--locality ID) or to a report (-p locality ID).")
    return 0


def _files(result: PracticeFolder) -> list[str]:
    lines = []
    for f in result.files:
        rel = f.path.relative_to(result.folder) if f.path.is_relative_to(result.folder) else f.path
        what = {"written": "written", "unchanged": "unchanged", "replaced": "replaced",
                "kept": "kept", "new": f"YOURS KEPT; the new one is {f.written_to.name}"}[f.status]
        lines.append(f"  {str(rel):<22} {what}" + (f": {f.note}" if f.note else ""))
    if result.remittances or result.not_835:
        counts = {s: sum(p.status == s for p in result.remittances) for s in ("written", "unchanged", "replaced",
                                                                              "new")}
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        lines.append(f"  {'remittances/':<22} {len(result.remittances)} 835 file(s): {', '.join(parts) or 'none'}")
        for path, why in result.not_835[:5]:
            lines.append(f"    left out {path}: {why}")
        for name, why in result.unreadable_835[:5]:
            lines.append(f"    cannot be read {name}: {why}")
    return lines


def _rows(result: PracticeFolder) -> list[str]:
    total = f" + report rows (totals, repeated headers, page lines) {result.total_rows:,}" if result.total_rows else ""
    out = [f"Rows in {result.rows_in:,} = rows used {result.rows_used:,} + rows set aside "
           f"{result.rows_set_aside:,}{total}"]
    if result.set_aside_reasons:
        out.append("  set aside: " + "; ".join(f"{k} {v:,}" for k, v in result.set_aside_reasons.items()))
        out.append(f"  (`python -m analytics intake {result.files[0].path} --mapping "
                   f"{result.folder / 'mapping.yaml'} --out DIR` lists each row with its reasons)")
    if len(result.ignored):
        shown = "; ".join(f"{c} ({r})" for c, r in result.ignored.head(6).itertuples(index=False))
        more = f" and {len(result.ignored) - 6} more" if len(result.ignored) > 6 else ""
        out.append(f"  columns not read: {shown}{more}")
    return out


def _checklist(result: PracticeFolder) -> list[str]:
    marks = sum(d.guesses for d in result.drafts.values())
    items = list(dict.fromkeys(result.questions))
    items += [f"{d.payer_id} ({d.name}): {', '.join(d.confirm)}" for d in result.drafts.values() if d.confirm]
    payers_file = result.folder / "payers.yaml"
    head = [f"Confirm before the first report ({marks} {CONFIRM} mark(s) in {payers_file}):"]
    shown = [f"  {i}. {q}" for i, q in enumerate(items[:_SHOWN], start=1)]
    if len(items) > _SHOWN:
        shown.append(f"  ... and {len(items) - _SHOWN} more: search payers.yaml for {CONFIRM}")
    return head + shown


def _check(folder: Path) -> int:
    found = check_practice(folder)
    print(f"{folder}: practice.yaml, mapping.yaml and payers.yaml read; {len(found.payers)} payer(s): "
          f"{', '.join(found.payers)}; locality {found.settings.get('locality') or '00000-00 (national)'}.")
    print(f"The export and the 835s read as the reports read them: {found.lines:,} service line(s), "
          f"{found.remittance_files:,} 835 file(s).")
    if found.notes:
        print("The reports will note:")
        for note in found.notes:
            print(f"  - {note}")
    if found.marks:
        print(f"{len(found.marks)} guess(es) still marked {CONFIRM} (the reports use them as they stand):")
        for name, number, line in found.marks[:_SHOWN]:
            print(f"  {name}:{number}: {line}")
        if len(found.marks) > _SHOWN:
            print(f"  ... and {len(found.marks) - _SHOWN} more")
    else:
        print(f"No {CONFIRM} mark left.")
    print(f"Next: python -m analytics report all --data {folder} --out reports")
    return 0


def _run_init(args: argparse.Namespace) -> int:
    if args.localities is not None:
        return _list_localities(args.localities)
    if args.check:
        if args.folder is None:
            raise InputError("--check needs the practice folder: python -m analytics init PRACTICE_DIR --check.",
                             where="PRACTICE_DIR")
        return _check(args.folder)
    if args.folder is None or args.export is None:
        raise InputError("init needs the practice folder and the export: python -m analytics init PRACTICE_DIR "
                         "--export FILE [--remittances DIR] [--locality MAC-LOC].", where="PRACTICE_DIR")
    sheet = int(args.sheet) if args.sheet is not None and args.sheet.strip().isdigit() else args.sheet
    with Progress("init", unit="stages") as bar:
        result = init_practice(args.folder, args.export, remittances=args.remittances, locality=args.locality,
                               name=args.name, sheet=sheet, force=args.force, progress=bar)
    print(f"Practice folder {result.folder.resolve()}:")
    print("\n".join(_files(result)))
    print()
    print("\n".join(_rows(result)))
    drafts = ", ".join(f"{d.payer_id} ({d.kind}, {d.remittance_lines:,} 835 lines)" for d in result.drafts.values())
    print(f"Payers drafted: {drafts or 'none'}")
    kept = result.kept_owner_files
    if kept:
        print(f"\nYour edited files were kept; compare them with the new drafts: "
              f"{', '.join(p.written_to.name for p in kept[:6])} (run again with --force to replace them).")
    print()
    print("\n".join(_checklist(result)))
    print(f"\nNext: python -m analytics report all --data {args.folder} --out reports")
    return 0
