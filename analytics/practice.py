"""A practice folder, read one way by every command that takes ``--data``.

A practice folder holds::

    service_lines.csv        the charge export (.csv, .tsv, .txt, .xlsx or .parquet), or any file
                             named by ``export:`` in practice.yaml or mapping.yaml
    mapping.yaml             optional: how to read the export (analytics.intake docstring)
    payers.yaml              the payer policies, with their aliases (analytics.payers)
    practice.yaml            optional: practice name, Medicare locality, as_of, export, mapping,
                             max_set_aside
    remittances/             the 835 files, whatever their names (*.835, *.txt, *.edi, *.x12,
                             no extension): every file that starts like X12 (ISA) is read

:func:`load_practice` reads it into a :class:`PracticeData`: the accepted charge lines with
their payer ids resolved through the aliases of payers.yaml, the lines set aside (row number
as the spreadsheet shows it, and the reason), the columns left out (and why), the 835 tables
with their payers resolved the same way, and the data notes the report pages show. It stops
(an :class:`~analytics.exceptions.InputError`, exit 2 on the command line) only when nothing
usable remains or when more than ``max_set_aside`` of the lines (default 20%) were set aside,
and the message says which. A line whose code is outside the catalog, or whose payer has no
policy, is kept and marked as not priced (:func:`not_priced_reasons`).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from analytics.exceptions import InputError, QuarantineWarning
from analytics.intake import Intake, MappingSettings, read_mapping, read_service_lines
from analytics.intake.files import EXPORT_SUFFIXES
from analytics.intake.reader import HEADER_REASON, LONE_REASON, TOTAL_REASON, TOTAL_ROW
from analytics.payers import PayerPolicy, load_payers, resolve_payers
from analytics.refdata import Reference, load_reference

__all__ = [
    "PracticeFiles",
    "PracticeData",
    "locate_practice",
    "load_practice",
    "read_practice_settings",
    "practice_name",
    "not_priced_reasons",
    "is_x12_file",
    "MAX_SET_ASIDE",
    "OUTSIDE_CATALOG",
    "NO_POLICY",
]

#: The share of an export's lines that may be set aside before a run stops.
MAX_SET_ASIDE = 0.20
#: Why a line with a code outside the catalog carries no contract price.
OUTSIDE_CATALOG = "outside the catalog: not priced"
#: Why a line of a payer without a policy in payers.yaml carries no contract price.
NO_POLICY = "no policy: not priced"
_EXPORT_STEM = "service_lines"
_SETTINGS = ("practice", "name", "practice_name", "locality", "as_of", "start", "months", "export", "mapping",
             "max_set_aside")


@dataclasses.dataclass(frozen=True)
class PracticeFiles:
    """The files of a practice folder, found without reading them.

    Attributes
    ----------
    folder, export, mapping, payers, settings
        The folder, the charge export, mapping.yaml (or ``None``), payers.yaml (``None`` when
        the policies come from elsewhere) and practice.yaml (or ``None``).
    remittances
        The 835 files under ``remittances/`` (any name; each starts like X12).
    skipped
        Files under ``remittances/`` that are not X12, with the reason: ``(path, reason)``.
    """

    folder: Path
    export: Path
    mapping: Path | None
    payers: Path | None
    settings: Path | None
    remittances: tuple[Path, ...] = ()
    skipped: tuple[tuple[Path, str], ...] = ()

    @property
    def inputs(self) -> list[Path]:
        """Every file read, for hashes and cache keys."""
        found = [self.export, self.mapping, self.payers, *self.remittances, self.settings]
        return [p for p in found if p is not None]


@dataclasses.dataclass(frozen=True)
class PracticeData:
    """A practice folder, read.

    Attributes
    ----------
    files
        The files read (:class:`PracticeFiles`).
    settings
        practice.yaml (name, locality, as_of ...), ``{}`` without one.
    payers
        The payer policies by id.
    intake
        The export as read (:class:`~analytics.intake.Intake`): accepted lines, rows set
        aside, columns left out.
    lines
        The accepted lines, ``payer_id`` resolved to a policy id where a payer's id, name or
        alias matches (the export's text kept in ``payer_name``), and ``not_priced`` (``""``,
        :data:`OUTSIDE_CATALOG` or :data:`NO_POLICY`).
    remittance, remittance_errors
        The 835 tables (``None`` without 835 files), their payers resolved the same way, and
        the files that could not be read (``file``, ``error``).
    notes
        Data notes in words, for the pages.
    """

    files: PracticeFiles
    settings: Mapping[str, Any]
    payers: Mapping[str, PayerPolicy]
    intake: Intake
    lines: pd.DataFrame
    remittance: Any = None
    remittance_errors: pd.DataFrame | None = None
    notes: tuple[str, ...] = ()

    @property
    def set_aside(self) -> pd.DataFrame:
        """The rows set aside, without their values: ``source_file``, ``source_row`` (as the
        spreadsheet shows it), ``kind`` and ``reason`` (one row per problem)."""
        return self.intake.problems[["source_file", "source_row", "kind", "reason"]].copy()

    @property
    def ignored(self) -> pd.DataFrame:
        """The export's columns left out, with the reason (``column``, ``reason``)."""
        return self.intake.ignored


# --------------------------------------------------------------------------- finding files


def read_practice_settings(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """practice.yaml as a dict (``{}`` when absent): ``practice`` (name), ``locality``,
    ``as_of``, ``export``, ``max_set_aside`` ..."""
    if path is None or not Path(path).exists():
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{line} is not valid YAML ({getattr(exc, 'problem', exc)}); quote values holding "
                         "':' or '#'.", where=str(path)) from None
    if not isinstance(data, Mapping):
        raise InputError(f"{path} must be a mapping (practice: ..., locality: ...).", where=str(path))
    out = {k: data[k] for k in _SETTINGS if k in data}
    if "practice" not in out and out.get("practice_name"):
        out["practice"] = out["practice_name"]
    return out


def practice_name(folder: str | os.PathLike[str]) -> str:
    """The practice's name from ``<folder>/practice.yaml`` (``""`` without one)."""
    settings = read_practice_settings(Path(folder) / "practice.yaml")
    return str(settings.get("practice") or settings.get("name") or "")


def is_x12_file(path: Path) -> bool:
    """True when the file starts like X12: ``ISA`` (after any byte-order mark or blanks), or a
    bare ``ST*835`` transaction."""
    try:
        with path.open("rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = text.decode("utf-16", errors="ignore").encode("ascii", errors="ignore").lstrip()
    return text.startswith(b"ISA") or (text.startswith(b"ST") and text[3:6] == b"835")


def _remittance_files(folder: Path) -> tuple[tuple[Path, ...], tuple[tuple[Path, str], ...]]:
    remit_dir = folder / "remittances"
    if not remit_dir.is_dir():
        return (), ()
    found, skipped = [], []
    for path in sorted(remit_dir.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(remit_dir).parts):
            continue
        if is_x12_file(path):
            found.append(path)
        else:
            skipped.append((path, "not an X12 file (it does not start with ISA)"))
    kept, copies = _without_copies(found, remit_dir)
    return kept, tuple(skipped) + copies


#: The start of the reason a file under remittances/ is skipped as a copy of another.
_COPY = "a copy of "


def _without_copies(paths: Sequence[Path], root: Path) -> tuple[tuple[Path, ...], tuple[tuple[Path, str], ...]]:
    """The files with byte-identical copies left out, and the copies with the file they repeat:
    an ERA downloaded twice would count its payments twice. Of copies, the one nearest the top
    of the folder (then first by name) is kept. Only files of the same size are hashed."""
    import hashlib

    size = {path: path.stat().st_size for path in paths}
    same_size = collections.Counter(size.values())
    first: dict[bytes, Path] = {}
    copy_of: dict[Path, Path] = {}
    for path in sorted(paths, key=lambda p: (len(p.relative_to(root).parts), p)):
        if same_size[size[path]] > 1:
            with path.open("rb") as f:
                digest = hashlib.file_digest(f, "sha256").digest()
            if digest in first:
                copy_of[path] = first[digest]
            else:
                first[digest] = path
    kept = tuple(p for p in paths if p not in copy_of)
    copies = tuple((p, f"{_COPY}{copy_of[p].relative_to(root)} (the same bytes), read once")
                   for p in paths if p in copy_of)
    return kept, copies


def _find_export(folder: Path, named: str | None, where: str) -> Path:
    if named:
        path = (folder / named) if not Path(named).is_absolute() else Path(named)
        if not path.is_file():
            raise InputError(f"{where} names the export {named!r}, which is not in {folder}. Put the export there, or "
                             "fix export: in that file.", where=where)
        return path
    found = [folder / f"{_EXPORT_STEM}{suffix}" for suffix in EXPORT_SUFFIXES
             if (folder / f"{_EXPORT_STEM}{suffix}").is_file()]
    if not found:
        raise InputError(
            f"Data folder {folder} has no charge export: expected service_lines.csv (or .tsv, .txt, .xlsx, .parquet), "
            "or name the export in practice.yaml (export: my_export.xlsx). `python -m analytics init` sets a "
            "folder up from an export.", where=str(folder))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise InputError(
            f"Data folder {folder} holds {len(found)} charge exports ({names}); which one is current? Keep one, or "
            f"name it in practice.yaml (export: {found[0].name}).", where=str(folder))
    return found[0]


def locate_practice(folder: str | os.PathLike[str], *, payers: Any = None,
                    mapping: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                    require_payers: bool = True) -> PracticeFiles:
    """The files of a practice folder, without reading the export or the 835s.

    Raises
    ------
    InputError
        The folder, its export or (``require_payers``) its payers.yaml is missing, or two exports
        compete.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"Data folder {folder} does not exist. Pass --data with the practice folder that holds the export, "
            "payers.yaml and remittances/ (e.g. --data data/sample).", where=str(folder))
    settings_file = folder / "practice.yaml"
    settings = read_practice_settings(settings_file)
    named_mapping = folder / str(settings["mapping"]) if settings.get("mapping") else folder / "mapping.yaml"
    if settings.get("mapping") and mapping is None and not named_mapping.is_file():
        raise InputError(f"{settings_file} names the mapping {settings['mapping']!r}, which is not in {folder}. Put it "
                         "there, or fix mapping: in practice.yaml.", where=str(settings_file))
    mapping_file = Path(mapping) if isinstance(mapping, (str, os.PathLike)) else (
        named_mapping if mapping is None and named_mapping.is_file() else None)
    named = settings.get("export")
    where = str(settings_file)
    if not named and mapping_file is not None:
        named, where = read_mapping(mapping_file).export, str(mapping_file)
    export = _find_export(folder, str(named) if named else None, where)
    payer_file = folder / "payers.yaml"
    if payers is None and require_payers and not payer_file.exists():
        raise InputError(f"Data folder {folder} has no payers.yaml; add the payer policies there "
                         "(`python -m analytics init` drafts one from the export and the 835s).", where=str(folder))
    remits, skipped = _remittance_files(folder)
    return PracticeFiles(folder=folder, export=export, mapping=mapping_file,
                         payers=payer_file if payers is None and payer_file.exists() else None,
                         settings=settings_file if settings_file.exists() else None,
                         remittances=remits, skipped=skipped)


# --------------------------------------------------------------------------- reading


def not_priced_reasons(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy],
                       reference: Reference | None = None) -> pd.Series:
    """Why each line carries no contract price: :data:`OUTSIDE_CATALOG`, :data:`NO_POLICY` or
    ``""`` (priced). Each distinct code and payer is looked up once.

    Examples
    --------
    >>> pol = load_payers({"payers": {"cash": {"kind": "cash"}}})
    >>> frame = pd.DataFrame({"cpt": ["97124", "98941", "97124"], "payer_id": ["cash", "cash", "Aetna"]})
    >>> not_priced_reasons(frame, pol).tolist()
    ['', 'outside the catalog: not priced', 'no policy: not priced']
    """
    ref = reference or load_reference()
    known = np.isin(lines["cpt"].astype("str").to_numpy(), ref.codes["cpt"].astype("str").to_numpy())
    policy = lines["payer_id"].astype("str").isin(list(payers)).to_numpy(bool)
    out = np.where(~known, OUTSIDE_CATALOG, np.where(~policy, NO_POLICY, ""))
    return pd.Series(out, index=lines.index, dtype="str", name="not_priced")


def _resolve_remittance_payers(remit: Any, payers: Mapping[str, PayerPolicy]) -> tuple[Any, list[str]]:
    """The 835 payers (payer id, then N1*PR name) as policy ids where an id or alias matches."""
    if remit is None or not len(remit.payments):
        return remit, []
    pay = remit.payments
    by_id = resolve_payers(pay["payer_id"].astype("str").fillna(""), payers)
    by_trn = resolve_payers(pay["trn_payer_id"].astype("str").fillna(""), payers) if "trn_payer_id" in pay \
        else pd.Series("", index=pay.index)
    by_name = resolve_payers(pay["payer_name"].astype("str").fillna(""), payers)
    policy = by_id.where(by_id != "", by_trn.where(by_trn != "", by_name))
    unknown = pay.loc[(policy == "").to_numpy(bool), ["payer_name", "payer_id"]].astype("str").drop_duplicates()
    notes = []
    if len(unknown):
        named = ", ".join(f"{n or '(no name)'} (id {i or 'none'})" for n, i in unknown.head(5).itertuples(index=False))
        notes.append(f"835 payer(s) {named} match no policy in payers.yaml: their lines keep the 835's payer name. Add "
                     "the name or id to a payer's aliases to join them.")
    new_pay = pay.assign(payer_id=policy.where(policy != "", pay["payer_id"].astype("str")).astype("str"))
    return dataclasses.replace(remit, payments=new_pay), notes


def _share_check(intake: Intake, export: Path, limit: float) -> None:
    """Stop when nothing usable remains or more than ``limit`` of the lines were set aside."""
    totals = intake.total_rows
    lines_in = intake.rows_in - totals
    if intake.accepted == 0:
        if lines_in <= 0:
            raise InputError(
                f"{export} has a header and no charge lines, so there is nothing to report. Export the service lines "
                "again (every line of the dates to report, not only the header).", where=str(export))
        raise InputError(
            f"Nothing usable remains: none of the {lines_in:,} charge line(s) in {export} could be read. "
            f"{_top_reasons(intake)} Run `python -m analytics intake {export} --out DIR` and read DIR/quarantine.csv "
            "for each row's reasons; fix the export or mapping.yaml and run again.", where=str(export))
    share = intake.set_aside / lines_in if lines_in else 0.0
    if share > limit:
        raise InputError(
            f"Too many lines set aside: {intake.set_aside:,} of {lines_in:,} charge lines ({share:.0%}) in {export}, "
            f"more than the {limit:.0%} a run allows. {_top_reasons(intake)} Run `python -m analytics intake "
            f"{export} --out DIR` for the list (DIR/quarantine.csv), fix the export or mapping.yaml, or raise "
            "max_set_aside in practice.yaml.", where=str(export))


def _top_reasons(intake: Intake) -> str:
    counts = {k: v for k, v in intake.reason_counts().items() if k != TOTAL_ROW}
    if not counts:
        return ""
    shown = "; ".join(f"{k} ({v})" for k, v in list(counts.items())[:3])
    return f"Most common: {shown}."


def _set_aside_note(intake: Intake, export: Path) -> list[str]:
    notes = []
    if intake.set_aside:
        rows = intake.problems.loc[intake.problems["kind"] != TOTAL_ROW, "source_row"].drop_duplicates()
        shown = ", ".join(map(str, rows.head(8))) + (" ..." if len(rows) > 8 else "")
        notes.append(
            f"{intake.set_aside} of {intake.rows_in - intake.total_rows} charge line(s) of {export.name} were set aside "
            f"and are not in these figures (spreadsheet rows {shown}). {_top_reasons(intake)} The list with each "
            f"reason: `python -m analytics intake {export.name} --out DIR` writes DIR/quarantine.csv.")
    if intake.total_rows:
        own = intake.problems[intake.problems["kind"] == TOTAL_ROW]
        counts = own.drop_duplicates(["source_file", "source_row"])["reason"].value_counts()
        words = {TOTAL_REASON: "TOTAL/subtotal row(s)", HEADER_REASON: "repeated header row(s) (page breaks)",
                 LONE_REASON: "line(s) with one cell (titles, page numbers, footers)"}
        parts = [f"{int(counts[r])} {w}" for r, w in words.items() if r in counts]
        notes.append(f"{', '.join(parts)} of {export.name} were recognised as the report's own rows, not service "
                     "lines, and left out.")
    return notes


def _not_priced_notes(lines: pd.DataFrame, payers: Mapping[str, PayerPolicy]) -> list[str]:
    notes = []
    without_policy = ~lines["payer_id"].astype("str").isin(list(payers)).to_numpy(bool)
    for reason, what in ((OUTSIDE_CATALOG, "code(s)"), (NO_POLICY, "payer(s)")):
        hit = lines[(lines["not_priced"] == OUTSIDE_CATALOG).to_numpy(bool) if reason == OUTSIDE_CATALOG
                    else without_policy]
        if len(hit):
            column = "cpt" if reason == OUTSIDE_CATALOG else "payer_name"
            values = ", ".join(sorted(set(hit[column].astype("str")))[:6])
            fix = ("the catalog holds the massage and manual-therapy codes only" if reason == OUTSIDE_CATALOG
                   else "add a policy for the payer, or its name to a payer's aliases, in payers.yaml")
            notes.append(f"{len(hit)} charge line(s) with {what} {values}: kept in the charges, {reason} ({fix}).")
    return notes


def load_practice(
    folder: str | os.PathLike[str],
    *,
    payers: Mapping[str, PayerPolicy] | str | os.PathLike[str] | None = None,
    mapping: Mapping[str, Any] | str | os.PathLike[str] | MappingSettings | None = None,
    key: Any = None,
    salt: Any = None,
    max_set_aside: float | None = None,
    today: Any = None,
    require_payers: bool = True,
    files: PracticeFiles | None = None,
) -> PracticeData:
    """Read a practice folder: the export (through mapping.yaml), payers.yaml, the 835s.

    Parameters
    ----------
    folder
        The practice folder.
    payers
        Payer policies to use instead of payers.yaml (policies or a file).
    mapping
        How to read the export, instead of the folder's mapping.yaml.
    key, salt
        The pseudonym key for the 835 ``patient_key`` (``salt``: its older name), passed to the
        remittance reader; default: :func:`analytics.privacy.resolve_key` for the folder.
    max_set_aside
        Share of lines that may be set aside (default: practice.yaml ``max_set_aside``, else 20%).
    today
        The day dates of service may not pass (default: today).
    require_payers
        Without payers.yaml, stop (True) or read every line as of a payer without a policy.
    files
        The folder's files, when already found (:func:`locate_practice`).

    Raises
    ------
    InputError
        A missing folder, export or payers.yaml; two competing exports; nothing usable left, or
        more than ``max_set_aside`` of the lines set aside.

    Examples
    --------
    >>> practice = load_practice("data/sample")  # doctest: +SKIP
    >>> practice.intake.report()  # doctest: +SKIP
    'data/sample/service_lines.csv: rows in 5169 = accepted 5169 + quarantined 0'
    """
    files = files or locate_practice(folder, payers=payers, mapping=mapping, require_payers=require_payers)
    settings = read_practice_settings(files.settings)
    if isinstance(payers, Mapping) and payers and all(isinstance(p, PayerPolicy) for p in payers.values()):
        policies = dict(payers)
    elif payers is not None:
        policies = load_payers(payers)
    else:
        policies = load_payers(files.payers) if files.payers is not None else {}
    limit = _limit(max_set_aside if max_set_aside is not None else settings.get("max_set_aside"), files)
    how = mapping if mapping is not None and not isinstance(mapping, (str, os.PathLike)) else files.mapping
    from analytics.privacy import resolve_key
    from analytics.remittance import read_835_many

    # the privacy module's key for this folder (its key file, the environment, else the public key)
    secret = resolve_key(key if key is not None else salt, near=[files.folder])

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        intake = read_service_lines(files.export, mapping=how, today=today)
        remit, errors = (read_835_many(list(files.remittances), salt=secret)
                         if files.remittances else (None, None))
    notes += _unique_messages([w for w in caught if not issubclass(w.category, QuarantineWarning)])
    _share_check(intake, files.export, limit)
    notes += _set_aside_note(intake, files.export)
    notes += list(intake.notes)
    lines = intake.lines
    resolved = resolve_payers(lines["payer_id"], policies) if policies else pd.Series("", index=lines.index)
    lines = lines.assign(payer_name=lines["payer_id"].astype("str"),
                         payer_id=resolved.where(resolved != "", lines["payer_id"].astype("str")).astype("str"))
    lines = lines.assign(not_priced=not_priced_reasons(lines, policies))
    notes += _not_priced_notes(lines, policies)
    remit, remit_notes = _resolve_remittance_payers(remit, policies)
    notes += remit_notes
    if errors is not None and len(errors):
        notes.append(f"{len(errors)} 835 file(s) could not be read and are not in these figures: "
                     + ", ".join(errors["file"].astype(str).head(5)) + ("" if len(errors) <= 5 else " ..."))
    notes += _plb_notes(remit)
    copies = [(p, why) for p, why in files.skipped if why.startswith(_COPY)]
    other = [(p, why) for p, why in files.skipped if not why.startswith(_COPY)]
    if other:
        notes.append(f"{len(other)} file(s) under remittances/ are not 835s and were skipped: "
                     + ", ".join(p.name for p, _ in other[:5]) + ("" if len(other) <= 5 else " ..."))
    if copies:
        notes.append(f"{len(copies)} 835 file(s) under remittances/ are byte-identical copies of others and were "
                     "read once: " + "; ".join(f"{_under(p, files.folder / 'remittances')} is {why}" for p, why in copies[:5])
                     + ("" if len(copies) <= 5 else " ..."))
    if not files.remittances:
        notes.append(f"No 835 remittances under {files.folder / 'remittances'}: every submitted line counts as "
                     "open A/R.")
    notes += _claim_number_notes(lines, remit, files.export)
    return PracticeData(files=files, settings=settings, payers=policies, intake=intake, lines=lines,
                        remittance=remit, remittance_errors=errors, notes=tuple(notes))


def _under(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return path.name


def _claim_number_notes(lines: pd.DataFrame, remit: Any, export: Path) -> list[str]:
    """835 lines are tied to charge lines by claim number (CLP01 echoes the claim's number): an
    export without them leaves every 835 answer unlinked, which the pages would otherwise show as
    no remittance at all."""
    if remit is None or not len(remit.service_lines) or not len(lines):
        return []
    ids = lines["claim_id"].astype("str").fillna("").str.strip() if "claim_id" in lines else pd.Series("", index=lines.index)
    blank = int((ids == "").sum())
    if blank * 2 < len(lines):
        return []
    return [f"{blank:,} of {len(lines):,} charge line(s) of {export.name} have no claim number: the 835s answer "
            "claims by the number the practice billed them under (CLP01), so their answers cannot be tied to these "
            "lines and those lines show as unanswered. Map the export's claim number column (Claim #, Claim ID, "
            "Invoice #) to claim_id in mapping.yaml."]


def _plb_notes(remit: Any) -> list[str]:
    """Provider-level adjustments (PLB) belong to a payment, not to any line: say what they
    add up to, by reason, since the line figures leave them out."""
    plb = getattr(remit, "plb", None)
    if plb is None or not len(plb):
        return []
    by_reason = plb.groupby(plb["reason"].astype("str").str.strip(), sort=True)["amount"].sum()
    parts = ", ".join(f"{reason or 'no code'} ${amount:,.2f}" for reason, amount in by_reason.items())
    return [f"{len(plb)} provider-level adjustment(s) (PLB) in {plb['file'].nunique()} 835 file(s) come to "
            f"${plb['amount'].sum():,.2f} ({parts}; a positive amount is taken from the payment, e.g. WO an "
            "overpayment recovered, a negative one added, e.g. L6 interest). They belong to the deposit, not to any "
            "service line, so the line figures leave them out."]


def _limit(value: Any, files: PracticeFiles) -> float:
    try:
        limit = float(value) if value is not None else MAX_SET_ASIDE
    except (TypeError, ValueError):
        limit = -1.0
    if not 0 <= limit <= 1:
        raise InputError(f"{files.settings or 'max_set_aside'}: max_set_aside is a share from 0 to 1 (0.2 for 20%), "
                         f"not {value!r}.", where=str(files.settings))
    return limit


def _unique_messages(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    seen: dict[str, None] = {}
    for w in caught:
        if issubclass(w.category, UserWarning):
            seen.setdefault(str(w.message), None)
    msgs = list(seen)
    if len(msgs) > 8:
        msgs = msgs[:8] + [f"... and {len(msgs) - 8} more notes of the same kinds."]
    return msgs

