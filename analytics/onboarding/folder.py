"""The practice folder ``init`` writes: the export, mapping.yaml, the 835s, practice.yaml,
payers.yaml and the key, never losing an owner's edits."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.onboarding.drafts import (
    CONFIRM,
    PayerDraft,
    count_of,
    draft_policies,
    payers_yaml,
    yaml_scalar,
)
from analytics.onboarding.locality import (
    LIST_LOCALITIES,
    PRACTICE_FILE,
    check_locality,
    check_practice_settings,
)
from analytics.refdata import Reference, load_reference

__all__ = ["PracticeFolder", "Placed", "PracticeCheck", "init_practice", "check_practice", "place_file",
           "place_remittances", "practice_yaml",
           "MAPPING_FILE", "PAYERS_FILE", "REMITTANCE_DIR"]


# ---------------------------------------------------------------------------------------
# The practice folder
# ---------------------------------------------------------------------------------------

#: File names in a practice folder (the export is ``service_lines`` + its format's suffix).
MAPPING_FILE = "mapping.yaml"
PAYERS_FILE = "payers.yaml"
REMITTANCE_DIR = "remittances"
EXPORT_STEM = "service_lines"
_EXPORT_SUFFIX = {".csv": ".csv", ".tsv": ".tsv", ".tab": ".tsv", ".txt": ".csv", ".xlsx": ".xlsx",
                  ".xlsm": ".xlsm", ".parquet": ".parquet", ".pq": ".parquet"}


@dataclasses.dataclass(frozen=True)
class Placed:
    """One file ``init`` wrote, kept or set beside the owner's copy.

    ``status`` is ``written`` (new), ``unchanged`` (same content already there), ``replaced``
    (``force``, or data the command was given: the export, an 835), ``new`` (the owner's file
    differs and is kept: the new content is in
    ``<name>.new``) or ``kept`` (the practice key, never replaced).
    """

    path: Path
    status: str
    note: str = ""

    @property
    def written_to(self) -> Path:
        return self.path.with_name(self.path.name + ".new") if self.status == "new" else self.path


@dataclasses.dataclass
class PracticeFolder:
    """What :func:`init_practice` made of a practice folder.

    Attributes
    ----------
    folder
        The practice folder.
    files
        Every file placed, in order (export, mapping, practice.yaml, payers.yaml, key).
    remittances
        The 835 files placed under ``remittances/``.
    not_835
        Files of the remittance folder left out, with the reason (``file``, ``reason``).
    rows_in, rows_used, rows_set_aside, total_rows
        The export's rows: in = used + set aside + TOTAL rows.
    set_aside_reasons
        Rows set aside per reason (a row with two problems counts under both).
    ignored
        Export columns not read, with the reason (``column``, ``reason``).
    drafts
        The drafted payer policies.
    questions
        What the owner should confirm, in words (the mapping's questions, the locality, the
        payers' guesses).
    locality
        The practice's Medicare locality; ``locality_given`` is False when it defaulted to
        national rates.
    """

    folder: Path
    files: list[Placed] = dataclasses.field(default_factory=list)
    remittances: list[Placed] = dataclasses.field(default_factory=list)
    not_835: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    unreadable_835: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    rows_in: int = 0
    rows_used: int = 0
    rows_set_aside: int = 0
    total_rows: int = 0
    set_aside_reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    ignored: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame(columns=["column", "reason"]))
    drafts: dict[str, PayerDraft] = dataclasses.field(default_factory=dict)
    questions: list[str] = dataclasses.field(default_factory=list)
    locality: str = "00000-00"
    locality_given: bool = True
    remittance_lines: int = 0

    @property
    def kept_owner_files(self) -> list[Placed]:
        """Files the owner had that differ from what init would write (see ``<name>.new``)."""
        return [p for p in [*self.files, *self.remittances] if p.status == "new"]


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with a.open("rb") as fa, b.open("rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _copy_whole(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` through a temporary file and a rename (a reader never sees half)."""
    import shutil
    import tempfile

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def place_file(dest: Path, *, text: str | None = None, source: Path | None = None, force: bool = False,
               note: str = "") -> Placed:
    """Write ``text`` (or a copy of ``source``) to ``dest`` without losing the owner's edits.

    A file already there with the same content is left alone. A text file ``init`` wrote and
    nobody changed since (its digest is the one :data:`WRITTEN_FILE` recorded) is replaced by
    the new draft. Any other file is kept and the new content goes to ``<dest>.new``, unless
    ``force``.
    """
    from analytics._files import atomic_write

    if source is not None and dest.exists() and source.resolve() == dest.resolve():
        return Placed(dest, "unchanged", note)
    if dest.exists():
        same = (_same_bytes(source, dest) if source is not None
                else dest.read_bytes() == (text or "").encode("utf-8"))
        if same:
            return Placed(dest, "unchanged", note)
        untouched = text is not None and _written_digests(dest.parent).get(dest.name) == _digest(dest.read_bytes())
        status = "replaced" if force or untouched else "new"
        if untouched and not force:
            note = f"{note}; not edited since init wrote it" if note else "not edited since init wrote it"
    else:
        status = "written"
    target = dest if status != "new" else dest.with_name(dest.name + ".new")
    if source is not None:
        _copy_whole(source, target)
    else:
        atomic_write(target, text or "")
        if target == dest:
            _record_written(dest)
    return Placed(dest, status, note)


#: Where ``init`` records the digest of each file it wrote in a practice folder: a file still
#: matching it was not edited, so a new draft may replace it.
WRITTEN_FILE = ".analytics-init.json"


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _written_digests(folder: Path) -> dict[str, str]:
    import json

    try:
        found = json.loads((folder / WRITTEN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _record_written(path: Path) -> None:
    import json

    from analytics._files import atomic_write

    found = _written_digests(path.parent)
    found[path.name] = _digest(path.read_bytes())
    atomic_write(path.parent / WRITTEN_FILE, json.dumps(found, indent=1, sort_keys=True) + "\n")


def _remittance_sources(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob("*") if p.is_file() and not any(part.startswith(".")
                                                                           for part in p.relative_to(source).parts))


def place_remittances(source: Path, folder: Path) -> tuple[list[Placed], list[tuple[str, str]]]:
    """Copy the 835s found in ``source`` (a file, or a folder searched through its subfolders)
    into ``folder/remittances/``, under their own names.

    Files in subfolders with the same name are told apart by their folder's name. A file that
    is not X12 (:func:`analytics.practice.is_x12_file`) is left out and returned with the reason.
    """
    from analytics.practice import is_x12_file

    target_dir = folder / REMITTANCE_DIR
    placed: list[Placed] = []
    skipped: list[tuple[str, str]] = []
    files = _remittance_sources(source)
    names = [p.name for p in files]
    for path in files:
        if not is_x12_file(path):
            skipped.append((str(path), "not an X12 file (it does not start with ISA)"))
            continue
        name = path.name if names.count(path.name) == 1 else f"{path.parent.name}_{path.name}"
        note = "" if name == path.name else f"from {path.parent.name}/"
        # data, not settings: a corrected file of the same name replaces the old one (a .new
        # copy in remittances/ would be read as a second 835)
        placed.append(place_file(target_dir / name, source=path, force=True, note=note))
    return placed, skipped


def practice_yaml(name: str, locality: str, export: str, *, locality_given: bool = True) -> str:
    """The text of ``practice.yaml``: the practice's name, its locality and its export."""
    where = "" if locality_given else f"  # {CONFIRM}: national rates; give yours, see `{LIST_LOCALITIES} CA`"
    return "\n".join([
        "# The practice, as every command that reads this folder sees it (written by `python -m analytics init`).",
        f"name: {yaml_scalar(name)}",
        f"locality: {yaml_scalar(locality)}{where or '  # Medicare MAC-locality: `' + LIST_LOCALITIES + '` lists them'}",
        f"export: {yaml_scalar(export)}  # the practice-management export; {MAPPING_FILE} says how to read it",
        f"mapping: {yaml_scalar(MAPPING_FILE)}",
        "",
    ])


def _payers_header(export: str, rows: int, files: int, lines: int, locality: str) -> list[str]:
    return [
        f"Payer policies drafted by `python -m analytics init` from {export} ({rows:,} lines) and",
        f"{count_of(files, '835 file')} ({lines:,} service lines), at Medicare locality {locality}.",
        "Schema: analytics/payers.py. Each learned figure says how many 835 lines it rests on; each guess",
        f"is marked {CONFIRM}. Check every {CONFIRM} against the payer's contract, change what differs and",
        "delete the mark. Then run: python -m analytics report all --data <this folder> --out reports",
        "",
    ]


def _export_name(export: Path, delimiter: str | None) -> str:
    suffix = _EXPORT_SUFFIX.get(export.suffix.lower(), export.suffix.lower())
    if export.suffix.lower() in (".txt", ".tab") and delimiter is not None:
        suffix = ".tsv" if delimiter == "\t" else ".csv"
    return EXPORT_STEM + suffix


def _check_inputs(folder: Path, export: Path, remittances: Path | None) -> None:
    from analytics.exceptions import InputError
    from analytics.intake.files import EXPORT_SUFFIXES

    if not export.is_file():
        raise InputError(f"--export {export}: no such file. Give the practice-management export (CSV, TSV, XLSX "
                         "or Parquet), e.g. --export ~/Downloads/charges.xlsx.", where="--export")
    if export.suffix.lower() not in EXPORT_SUFFIXES:
        raise InputError(f"--export {export} is a {export.suffix or 'file without a suffix'}; the export must be "
                         f"one of {', '.join(EXPORT_SUFFIXES)}. Save it from the practice system (or Excel) as "
                         ".xlsx or .csv and run init again.", where="--export")
    if remittances is not None and not remittances.exists():
        raise InputError(f"--remittances {remittances}: no such folder. Give the folder the clearinghouse's 835 "
                         "files are in (any names, subfolders are searched).", where="--remittances")
    if folder.exists() and not folder.is_dir():
        raise InputError(f"PRACTICE_DIR {folder} is a file; give a folder for the practice (it is made when "
                         "missing).", where="PRACTICE_DIR")


def _other_exports(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f"{EXPORT_STEM}.*")
                  if p.name != keep and p.suffix.lower() in set(_EXPORT_SUFFIX.values()))


def _read_export(export: Path, mapping: Placed) -> tuple[Any, str]:
    """The export read with the owner's mapping.yaml when one is kept, else the proposal."""
    import warnings

    from analytics.exceptions import InputError
    from analytics.intake import read_service_lines

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the counts are printed instead
        if mapping.status == "new":
            try:
                return read_service_lines(export, mapping=mapping.path), ""
            except InputError as exc:
                note = (f"{mapping.path} does not read this export ({exc}); the proposal in "
                        f"{mapping.written_to.name} was used to draft payers.yaml.")
                return read_service_lines(export, mapping=mapping.written_to), note
        return read_service_lines(export, mapping=mapping.path), ""


def _remittance_files(folder: Path) -> list[Path]:
    """The 835s the reports will read: every X12 file under ``remittances/``."""
    from analytics.practice import is_x12_file

    remit = folder / REMITTANCE_DIR
    if not remit.is_dir():
        return []
    return [p for p in sorted(remit.rglob("*")) if p.is_file() and not p.name.startswith(".") and is_x12_file(p)]


def _key(folder: Path) -> Placed:
    from analytics import privacy

    path = folder / privacy.KEY_FILE
    if path.exists():
        return Placed(path, "kept", "the practice's pseudonym key (never replaced; `rekey` makes a new one)")
    privacy.create_key(folder)
    return Placed(path, "written", "the practice's pseudonym key: back it up with the practice's files, never "
                                   "send it with a report")


#: Stages init_practice reports to its ``progress`` callback.
INIT_STAGES = 6


def init_practice(
    folder: str | os.PathLike[str],
    export: str | os.PathLike[str],
    *,
    remittances: str | os.PathLike[str] | None = None,
    locality: str | None = None,
    name: str | None = None,
    sheet: str | int | None = None,
    force: bool = False,
    reference: Reference | None = None,
    progress: Callable[..., None] | None = None,
) -> PracticeFolder:
    """Make (or refresh) a practice folder from an export and a folder of 835s.

    Parameters
    ----------
    folder
        The practice folder (made when missing).
    export
        The practice-management export (CSV, TSV, XLSX or Parquet), in any layout
        :func:`analytics.intake.sniff_export` can read: title rows above the header, a TOTAL
        row, ``Dx 1`` .. ``Dx 4``, credentials after provider names.
    remittances
        A folder of 835 files (searched through its subfolders; any file names) or one file.
    locality
        The practice's Medicare locality (MAC-locality id); default: the one in the folder's
        practice.yaml, else national rates (marked for the owner to confirm).
    name
        The practice's name (default: practice.yaml's, else the folder's name).
    sheet
        Excel sheet of the export (default: the first).
    force
        Replace mapping.yaml, practice.yaml and payers.yaml when they differ from what would
        be written (default: keep them and write ``<name>.new`` beside them). The export and
        the 835s are always refreshed.
    progress
        Called as ``progress(1, stage=...)`` as each of the :data:`INIT_STAGES` stages ends
        (an :class:`analytics.progress.Progress` draws it on a terminal).

    Returns
    -------
    PracticeFolder
        The files placed, the export's row counts, the drafts and the questions to confirm.

    Raises
    ------
    InputError, ParameterError
        A missing export or remittance folder, an export format the intake cannot read, an
        unknown locality, or another export already in the folder under a different format.
    """
    from analytics.exceptions import InputError
    from analytics.intake import sniff_export
    from analytics.remittance import read_835_many

    folder, export = Path(folder), Path(export)
    source = Path(remittances) if remittances is not None else None
    _check_inputs(folder, export, source)
    from analytics.practice import MAX_SET_ASIDE, read_practice_settings

    ref = reference or load_reference()
    settings = read_practice_settings(folder / PRACTICE_FILE)
    given = locality not in (None, "")
    loc = (check_locality(locality, where="--locality", reference=ref) if given
           else check_locality(settings["locality"], where=f"{folder / PRACTICE_FILE} (locality:)", reference=ref)
           if settings.get("locality") else "00000-00")
    out = PracticeFolder(folder=folder, locality=loc, locality_given=given or bool(settings.get("locality")))
    step = progress or (lambda *_, **__: None)
    step(0, stage="reading the export's layout", total=INIT_STAGES)

    layout = sniff_export(export, sheet=sheet)
    export_name = _export_name(export, layout.delimiter)
    others = _other_exports(folder, export_name) if folder.is_dir() else []
    if others and not force:
        raise InputError(f"PRACTICE_DIR {folder} already holds the export {others[0]}; this export would be "
                         f"{export_name}, and two exports in one folder would be read as one practice twice. Move "
                         f"{others[0]} away (or run init again with --force to add this one anyway).",
                         where="PRACTICE_DIR")
    folder.mkdir(parents=True, exist_ok=True)
    # The export and the 835s are the data the command was given: a newer copy replaces the old one.
    placed_export = place_file(folder / export_name, source=export, force=True, note=f"copy of {export.name}")
    mapping = place_file(folder / MAPPING_FILE, text=layout.to_yaml(export=export_name), force=force,
                         note=f"header on row {layout.header_row}; {len(layout.mapping)} columns read, "
                              f"{len(layout.ignored)} not read")
    out.files += [placed_export, mapping]
    out.ignored = layout.ignored
    out.questions += list(layout.questions)
    step(1, stage="copying the 835s")
    if source is not None:
        out.remittances, out.not_835 = place_remittances(source, folder)
    step(1, stage="reading the export")

    intake, note = _read_export(placed_export.path, mapping)
    if note:
        out.questions.append(note)
    out.rows_in, out.rows_used = intake.rows_in, intake.accepted
    out.total_rows = intake.total_rows
    out.rows_set_aside = intake.quarantined - intake.total_rows
    out.set_aside_reasons = {k: v for k, v in intake.reason_counts().items() if k != "total row"}
    out.questions += list(intake.notes)
    lines_in = out.rows_in - out.total_rows
    if lines_in and out.rows_set_aside > MAX_SET_ASIDE * lines_in:
        out.questions.insert(0, f"{out.rows_set_aside:,} of {lines_in:,} lines are set aside, more than "
                                f"{MAX_SET_ASIDE:.0%}: the reports stop until mapping.yaml reads the export (the "
                                "reasons are printed above).")

    step(1, stage="reading the 835s")
    remit_files = _remittance_files(folder)
    remit, errors = read_835_many(remit_files) if remit_files else (None, None)
    step(1, stage="drafting payer policies")
    if errors is not None and len(errors):
        out.unreadable_835 = list(zip(errors["file"].astype(str), errors["error"].astype(str), strict=True))
    out.remittance_lines = 0 if remit is None else len(remit.service_lines)
    drafts = draft_policies(intake.lines, remit, loc, reference=ref)
    out.drafts = drafts
    step(1, stage="writing the folder")
    header = _payers_header(export_name, intake.accepted, len(remit_files), out.remittance_lines, loc)
    practice_name = name or settings.get("name") or settings.get("practice") or folder.resolve().name
    out.files.append(place_file(folder / PRACTICE_FILE, text=practice_yaml(
        str(practice_name), loc, export_name, locality_given=out.locality_given), force=force,
        note=f"locality {loc}"))
    out.files.append(place_file(folder / PAYERS_FILE, text=payers_yaml(drafts, header=header), force=force,
                                note=f"{count_of(len(drafts), 'draft')}"))
    out.files.append(_key(folder))
    if not out.locality_given:
        out.questions.insert(0, f"No --locality: Medicare is priced at national rates (00000-00). Find the "
                                f"practice's locality with `{LIST_LOCALITIES} STATE` and run init again with "
                                "--locality.")
    step(1)
    return out


@dataclasses.dataclass
class PracticeCheck:
    """What ``init PRACTICE_DIR --check`` found: the guesses left and whether the files read.

    Attributes
    ----------
    folder
        The practice folder.
    payers
        The payer ids payers.yaml defines (it read without an error).
    marks
        Every line still marked ``CONFIRM``: ``(file name, line number, the line)``.
    settings
        practice.yaml, checked.
    notes
        What the reports will say of the data, read as they read it: lines set aside, the
        report's own rows, 835 files that could not be read or were skipped, codes and payers
        not priced.
    lines, remittance_files
        The service lines read and the 835 files read.
    """

    folder: Path
    payers: list[str]
    marks: list[tuple[str, int, str]]
    settings: dict[str, Any]
    notes: tuple[str, ...] = ()
    lines: int = 0
    remittance_files: int = 0


def check_practice(folder: str | os.PathLike[str], *, reference: Reference | None = None) -> PracticeCheck:
    """Check a practice folder after the owner confirmed payers.yaml: every file reads.

    practice.yaml (its locality and export), mapping.yaml (read against the export),
    payers.yaml (the policy schema, aliases each naming one payer), the export and the 835s
    are read as the reports read them; an error names the file, the line or key and the fix,
    and what the reports will note of the data is returned. The guesses still marked
    ``CONFIRM`` are listed; they do not stop a report (the drafts are valid policies), but each
    is a figure nobody has checked yet.

    Raises
    ------
    InputError, PayerPolicyError
        A file that does not read, or a folder without payers.yaml.
    """
    from analytics.exceptions import InputError
    from analytics.intake import read_mapping
    from analytics.payers import load_payers

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"PRACTICE_DIR {folder} does not exist. Make it with `python -m analytics init {folder} "
                         "--export FILE --remittances DIR`.", where="PRACTICE_DIR")
    settings = check_practice_settings(folder, reference=reference)
    payers_path = folder / PAYERS_FILE
    if not payers_path.is_file():
        raise InputError(f"{folder} has no {PAYERS_FILE}. Run `python -m analytics init {folder} --export FILE` to "
                         "draft it.", where=str(payers_path))
    policies = load_payers(payers_path)
    if (folder / MAPPING_FILE).is_file():
        read_mapping(folder / MAPPING_FILE)
    marks = []
    for name in (PAYERS_FILE, PRACTICE_FILE, MAPPING_FILE):
        path = folder / name
        if path.is_file():
            for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if f"# {CONFIRM}" in line:
                    marks.append((name, number, line.strip()))
    from analytics.practice import load_practice

    practice = load_practice(folder)  # the export through mapping.yaml, and the 835s, as a report reads them
    return PracticeCheck(folder=folder, payers=list(policies), marks=marks, settings=settings, notes=practice.notes,
                         lines=len(practice.lines), remittance_files=len(practice.files.remittances))
