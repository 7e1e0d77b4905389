"""The identifier collection's fast readers equal the plain ones, input for input.

The guard's identifier collection reads a practice's raw export and 835s on every report run.
Its fast paths (Arrow's CSV reader for regularly quoted CSV/TSV exports, totals labels looked
for in distinct values only, the 835s searched for their NM1/N1/DMG segments only) must give
exactly the identifiers the plain reading gives. The plain reading is kept below as the
reference: a copy of the implementation the fast paths replaced. Inputs: every export and 835
under ``tests/data`` and ``data/sample``, generated messy exports (title rows, blank headers,
ragged rows, quoted commas and line ends, cp1252 bytes, totals rows, byte order marks, TSV,
Excel), random CSV texts, and 835 fixtures mutated (wrapped lines, spaces before separators,
other element separators, white space of every kind). Seeds are fixed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics.privacy import identifiers as fast
from analytics.privacy.headers import (
    ID_COLUMNS,
    NAME_COLUMNS,
    header_key,
    is_birth_date_header,
    is_identifying,
    is_name_header,
)
from analytics.privacy.identifiers import (
    Identifiers,
    identifiers_from_835,
    identifiers_from_export,
    name_words,
    read_export_cells,
    read_raw_export,
    totals_rows,
)

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# The reference: a copy of the plain implementation (analytics/privacy/identifiers.py before its
# fast paths), kept as it was so that the fast paths are compared with it.
# ---------------------------------------------------------------------------------------------
REF_TOTALS = frozenset({"TOTAL", "TOTALS", "GRAND TOTAL", "SUBTOTAL", "SUB TOTAL", "TOTAL CHARGES", "REPORT TOTAL",
                        "TOTAL ALL", "ALL PATIENTS", "ALL PAYERS"})
REF_HEADER_HINTS = frozenset({"cpt", "code", "charge", "charges", "dos", "service_date", "date_of_service", "units",
                              "minutes", "payer", "provider", "modifier", "modifiers", "claim", "account", "dx"})
REF_ID_WORDS = frozenset({"account", "acct", "mrn", "chart", "member", "subscriber", "insured", "ssn", "patient", "pt"})
REF_NUMBER_WORDS = frozenset({"id", "no", "num", "number", "nbr"})
REF_PAYER_WORDS = frozenset({"payer", "insurance", "carrier", "plan", "insurer", "primary", "secondary"})
REF_PROVIDER_WORDS = frozenset({"provider", "rendering", "therapist", "clinician", "referring", "doctor", "physician"})


def ref_totals_rows(frame: pd.DataFrame) -> pd.Series:
    hit = pd.Series(False, index=frame.index)
    for col in frame.columns:
        words = frame[col].astype("str").str.upper().str.replace(r"[\W_]+", " ", regex=True).str.strip()
        hit |= words.isin(REF_TOTALS).fillna(False)
    return hit


def ref_read_raw_export(path: str | Path, *, sheet: str | int | None = None) -> pd.DataFrame:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
        return frame.astype("str").where(frame.notna(), "")
    if suffix in (".xlsx", ".xlsm"):
        grid = pd.read_excel(path, dtype=str, sheet_name=sheet or 0, header=None, keep_default_na=False)
        rows = grid.fillna("").astype(str).to_numpy().tolist()
    else:
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","))
    start = next((i for i, row in enumerate(rows[:30]) if ref_looks_like_header(row)), 0)
    if not rows:
        return pd.DataFrame()
    header = [str(h).strip() or f"column {j + 1}" for j, h in enumerate(rows[start])]
    width = len(header)
    body = [(list(r) + [""] * width)[:width] for r in rows[start + 1:]]
    return pd.DataFrame(body, columns=pd.Index(header, dtype=object)).astype(str)


def ref_looks_like_header(row: list[Any]) -> bool:
    cells = [str(c).strip() for c in row if str(c).strip()]
    if len(cells) < 2:
        return False
    return any(is_identifying(c) or is_name_header(c) or is_birth_date_header(c) or header_key(c) in REF_HEADER_HINTS
               or set(header_key(c).split("_")) & REF_HEADER_HINTS for c in cells)


def ref_id_header(header: str) -> bool:
    key = header_key(header)
    words = set(key.split("_"))
    if key in ID_COLUMNS:
        return True
    if words & {"claim", "payer", "provider", "npi", "tax", "auth", "line"}:
        return False
    return bool(words & REF_ID_WORDS) and (bool(words & REF_NUMBER_WORDS) or "#" in header or key in {
        "account", "acct", "mrn", "chart", "ssn"})


def ref_identifiers_from_export(path: str | Path, *, sheet: str | int | None = None,
                                mapping: Mapping[str, Any] | None = None) -> Identifiers:
    frame = ref_read_raw_export(path, sheet=sheet)
    columns = dict((mapping or {}).get("columns", mapping or {})) if mapping else {}
    frame = frame[~ref_totals_rows(frame)]
    found = RefIdentifiers()
    firsts: list[pd.Series] = []
    lasts: list[pd.Series] = []
    for col in frame.columns:
        key = header_key(col)
        values = frame[col].dropna()
        target = str(columns.get(col) or "")
        words = set(key.split("_"))
        if key in ("first_name", "firstname", "patient_first_name") or (words >= {"first", "name"} and not
                                                                         words & REF_PROVIDER_WORDS):
            firsts.append(values)
        elif key in ("last_name", "lastname", "patient_last_name", "surname") or (
                words >= {"last", "name"} and not words & REF_PROVIDER_WORDS):
            lasts.append(values)
        elif key in NAME_COLUMNS or is_name_header(col):
            found.add_names(values.unique())
        elif is_birth_date_header(col):
            found.add_dates(values.unique())
        elif target == "patient_id" or ref_id_header(str(col)):
            found.add_ids(values.unique())
        elif target in ("payer_id", "provider_id") or words & (REF_PAYER_WORDS | REF_PROVIDER_WORDS):
            found.add_protected(values.unique())
    for values in (*firsts, *lasts):
        found.names |= {w for v in values.unique() for w in name_words(v) if len(w) >= 3}
    if firsts and lasts:
        pairs = pd.DataFrame({"first": firsts[0], "last": lasts[0]}).drop_duplicates()
        for first, last in pairs.itertuples(index=False):
            found.add_person(first, last)
    return found


def ref_add_dates(found: Identifiers, values: Iterable[object]) -> None:
    for v in values:
        text = str(v).strip()
        if not text:
            continue
        ts = pd.to_datetime(text, errors="coerce", format="%Y%m%d" if re.fullmatch(r"\d{8}", text) else None)
        if pd.isna(ts):
            continue
        found.dates_of_birth |= {ts.strftime("%Y-%m-%d"), ts.strftime("%m/%d/%Y"), ts.strftime("%Y%m%d"),
                                 f"{ts.month}/{ts.day}/{ts.year}"}


class RefIdentifiers(Identifiers):
    """Identifiers as they were collected: dates of birth read one at a time."""

    def add_dates(self, values: Iterable[object]) -> None:
        ref_add_dates(self, values)

    def __or__(self, other: Identifiers) -> Identifiers:
        return RefIdentifiers(**{f.name: getattr(self, f.name) | getattr(other, f.name)
                                 for f in dataclasses.fields(self)})


def ref_identifiers_from_835(paths: Iterable[str | Path]) -> Identifiers:
    found = RefIdentifiers()
    for path in paths:
        text = Path(path).read_text(errors="replace").lstrip("\ufeff")
        element = text[3] if text.startswith("ISA") and len(text) > 3 else "*"
        for seg in re.split(r"~\s*|\r?\n", text):
            parts = seg.strip().split(element)
            tag = parts[0].strip()
            if tag == "NM1" and len(parts) > 2 and parts[1] in ("QC", "IL", "74"):
                last = parts[3] if len(parts) > 3 else ""
                first = parts[4] if len(parts) > 4 else ""
                middle = parts[5] if len(parts) > 5 else ""
                if len(parts) > 2 and parts[2] == "2":
                    found.add_names([last])
                else:
                    found.add_person(first, last, middle=middle)
                    found.names |= {w for w in name_words(last) if len(w) >= 3}
                if len(parts) > 9 and parts[9]:
                    found.add_ids([parts[9]])
            elif tag == "NM1" and len(parts) > 3 and parts[1] == "82":
                found.add_protected([" ".join(p for p in (parts[4] if len(parts) > 4 else "", parts[3]) if p)])
            elif tag == "N1" and len(parts) > 2 and parts[1] in ("PR", "PE"):
                found.add_protected([parts[2]])
            elif tag == "DMG" and len(parts) > 2:
                found.add_dates([parts[2]])
    return found


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def as_dict(found: Identifiers) -> dict[str, set]:
    return {f.name: getattr(found, f.name) for f in dataclasses.fields(found)}


def assert_same_export(path: Path, *, mapping: Mapping[str, Any] | None = None, sheet: Any = None) -> None:
    """The fast reading of ``path`` equals the reference: the whole frame, the identifiers, the totals rows."""
    try:
        expected_frame = ref_read_raw_export(path, sheet=sheet)
    except Exception as exc:  # the reference refuses it: so must the fast reading
        with pytest.raises(type(exc)):
            read_raw_export(path, sheet=sheet)
        return
    pd.testing.assert_frame_equal(read_raw_export(path, sheet=sheet), expected_frame, check_column_type=True,
                                  check_index_type=True)
    read = read_export_cells(path, sheet=sheet, columns=lambda h: "cpt" not in str(h).lower())
    keep = [j for j, h in enumerate(expected_frame.columns) if "cpt" not in str(h).lower()]
    pd.testing.assert_frame_equal(read.cells, expected_frame.iloc[:, keep])
    if expected_frame.columns.is_unique:  # the reference stops on a header written twice
        pd.testing.assert_series_equal(read.totals, ref_totals_rows(expected_frame), check_names=False)
        expected = ref_identifiers_from_export(path, mapping=mapping, sheet=sheet)
        assert as_dict(identifiers_from_export(path, mapping=mapping, sheet=sheet)) == as_dict(expected), path


@pytest.fixture
def plain_reads(monkeypatch):
    """The exports that went to the csv-module path (the fast path refused them)."""
    calls: set[Path] = set()
    plain = fast._read_raw_export_plain

    def counted(path, sheet):
        calls.add(path)
        return plain(path, sheet)

    monkeypatch.setattr(fast, "_read_raw_export_plain", counted)
    return calls


# ---------------------------------------------------------------------------------------------
# The shipped files
# ---------------------------------------------------------------------------------------------
SHIPPED_TABLES = sorted(p for folder in (ROOT / "tests" / "data", ROOT / "data" / "sample")
                        for p in folder.rglob("*") if p.suffix.lower() in (".csv", ".tsv", ".xlsx", ".parquet"))
SHIPPED_835 = sorted([*(ROOT / "tests" / "data" / "x12-835").iterdir(),
                      *(ROOT / "data" / "sample" / "remittances").iterdir()])


def test_shipped_files_are_there():
    assert (ROOT / "data" / "sample" / "service_lines.csv") in SHIPPED_TABLES
    assert len(SHIPPED_TABLES) > 20 and len(SHIPPED_835) > 10


@pytest.mark.parametrize("path", SHIPPED_TABLES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_shipped_table_reads_alike(path, plain_reads):
    assert_same_export(path)
    if path.suffix == ".csv":  # the sample export, the CMS extracts and the saved tables are regular CSV
        assert not plain_reads


def test_sample_export_identifiers_with_a_mapping():
    path = ROOT / "data" / "sample" / "service_lines.csv"
    assert_same_export(path, mapping={"columns": {"claim_id": "patient_id", "cpt": "payer_id"}})
    found = identifiers_from_export(path)
    assert found.ids and found.protected and not found.names  # the sample has patient ids, payers, no names


def test_every_shipped_835_reads_alike():
    for path in SHIPPED_835:
        assert as_dict(identifiers_from_835([path])) == as_dict(ref_identifiers_from_835([path])), path
    assert as_dict(identifiers_from_835(SHIPPED_835)) == as_dict(ref_identifiers_from_835(SHIPPED_835))


def test_public_835_identifiers_are_found(x12_dir):
    """The synthetic massage 835 (tests/data/x12-835) names its patient SAMPLE with member id SYNMBR001."""
    found = identifiers_from_835([x12_dir / "synthetic_835_massage.edi"])
    assert "SYNMBR001" in found.ids and "SAMPLE" in found.names


# ---------------------------------------------------------------------------------------------
# Generated exports
# ---------------------------------------------------------------------------------------------
LASTS = ["Qwertyson", "O'Brien", "Hall", "Núñez", "Allen", "Smith-Jones", "Tal", "Zed", "Vexmore", "Totalis"]
FIRSTS = ["Zelda", "Ann Marie", "Björn", "Al", "Jo", "Talia", "Mark", "Éva", "Li", "Grant"]
HEADER_POOL = ["Patient Name", "First Name", "Last Name", "DOB", "Pt DOB", "Patient ID", "Member ID", "Acct #",
               "CPT", "Charge", "Payer", "Provider Name", "Rendering Provider", "Notes", "", "Claim ID", "MRN",
               "Date of Service", "Units", "Insurance Plan", " Minutes ", "Modifiers"]
TOTALS = ["TOTAL", "Totals:", "Grand Total", "grand  total", "SUB-TOTAL", "Total Charges", "ALL PATIENTS",
          "all payers", "Total, Mark", "Totally", "TOTAL_ALL"]


def _cell(rng: random.Random, header: str) -> str:
    key = header.strip().lower()
    if key == "patient name":
        last, first = rng.choice(LASTS), rng.choice(FIRSTS)
        return rng.choice([f"{last}, {first}", f"{first} {last}", f"{last},{first} Q", last, ""])
    if key == "first name":
        return rng.choice(FIRSTS)
    if key == "last name":
        return rng.choice(LASTS)
    if "dob" in key:
        y, m, d = rng.randint(1930, 2010), rng.randint(1, 13), rng.randint(1, 31)
        return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{m}/{d}/{y}", f"{y}{m:02d}{d:02d}", "unknown", ""])
    if key in ("patient id", "member id", "acct #", "mrn", "claim id"):
        return rng.choice([f"P{rng.randint(0, 99999):05d}", f"  M{rng.randint(0, 999)} ", "12", "ab-" * 3])
    if key == "cpt":
        return rng.choice(["97124", "97140", "97112", "097110"])
    if key == "charge":
        return rng.choice(["60", "55.00", "$1,200.00", "-5"])
    if key in ("payer", "insurance plan"):
        return rng.choice(["Allstate", "Blue Cross, Blue Shield", "Medicare", "Aetna PPO", ""])
    if key in ("provider name", "rendering provider"):
        return rng.choice(["Dr. Hall", "LMT Talbot", "Lee, Ann"])
    if key == "notes":
        return rng.choice(["", "called, left message", 'said "ouch"', "line one\nline two", "totally fine",
                           "tab\there", "crlf\r\nnote", "a \"quoted\" word, and a comma"])
    return rng.choice(["1", "2", "", "x", "GP", "59,GP"])


def _grid(rng: random.Random) -> list[list[str]]:
    header = rng.sample(HEADER_POOL, rng.randint(2, 9))
    rows = [[_cell(rng, h) for h in header] for _ in range(rng.randint(0, 25))]
    for _ in range(rng.randint(0, 2)):  # totals rows, anywhere
        row = ["" for _ in header]
        row[rng.randrange(len(header))] = rng.choice(TOTALS)
        rows.insert(rng.randint(0, len(rows)), row)
    titles = [[rng.choice(["Harbor Street Massage", "Billing report", "Run: 2025-03-01", "Totals by payer"])]
              + [""] * rng.randint(0, 2) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.3:
        titles.insert(rng.randint(0, len(titles)), [])  # a blank line above the header
    return [*titles, header, *rows]


def _damage(rng: random.Random, text: str) -> str:
    """One of the things real exports do that a reader must take as the csv module does."""
    kind = rng.choice(["ragged", "blank", "trailing", "stray quote", "space quote", "after quote", "none", "none"])
    lines = text.split("\n")
    if len(lines) < 3:
        return text
    i = rng.randrange(1, len(lines) - 1)
    if kind == "ragged":
        lines[i] = lines[i] + rng.choice([",extra", ",,", ""]) if rng.random() < 0.5 else lines[i].rsplit(",", 1)[0]
    elif kind == "blank":
        lines.insert(i, "")
    elif kind == "trailing":
        lines.append("")
    elif kind == "stray quote":
        lines[i] = lines[i] + ',ab"c'
    elif kind == "space quote":
        lines[i] = lines[i] + ', "x"'
    elif kind == "after quote":
        lines[i] = lines[i] + ',"TOT"AL'
    return "\n".join(lines)


def _write(rng: random.Random, grid: list[list[str]], folder: Path, n: int) -> Path:
    form = rng.choice(["csv", "csv", "csv", "tsv", "cp1252", "bom", "crlf", "cr", "quote all", "csv", "tsv", "csv",
                       "crlf", "xlsx" if rng.random() < 0.5 else "csv"])
    if form == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        for row in grid:
            sheet.append([c.replace("\r", "") or None for c in row] or [None])
        path = folder / f"export_{n}.xlsx"
        book.save(path)
        return path
    out = io.StringIO()
    delimiter = "\t" if form == "tsv" else ","
    quoting = csv.QUOTE_ALL if form == "quote all" else csv.QUOTE_MINIMAL
    csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\n").writerows(grid)
    text = _damage(rng, out.getvalue()) if delimiter == "," else out.getvalue()
    if form == "crlf":
        text = text.replace("\n", "\r\n")
    elif form == "cr":
        text = text.replace("\n", "\r")
    path = folder / f"export_{n}.{'tsv' if form == 'tsv' else 'csv'}"
    if form == "cp1252":
        path.write_bytes(text.encode("cp1252", errors="replace"))
    elif form == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


@pytest.mark.parametrize("seed", range(10))
def test_generated_messy_exports_read_alike(tmp_path, plain_reads, seed):
    rng = random.Random(20250301 + seed)
    delimited = 0
    for n in range(15):
        path = _write(rng, _grid(rng), tmp_path, n)
        delimited += path.suffix != ".xlsx"
        mapping = {"columns": {"Claim ID": "patient_id", "Notes": "payer_id"}} if n % 3 == 0 else None
        assert_same_export(path, mapping=mapping)
    fast_reads = delimited - sum(p.suffix != ".xlsx" for p in plain_reads)
    assert fast_reads >= delimited / 4, "the fast path read too few of the regular exports"
    assert len(plain_reads) >= 2, "the messy exports should reach the csv-module path"


def test_totals_rows_are_left_out(tmp_path):
    """A totals row's patient cells are no patient: labels as exports write them (Totals:, Grand total)."""
    path = tmp_path / "export.csv"
    path.write_text("Patient Name,Patient ID,Charge\nQwertyson Zelda,PT-88231,60\nTotals:,TOTALID9,120\n"
                    "Vexmore Brannigan,PT-88232,60\n,Grand total,180\n")
    found = identifiers_from_export(path)
    assert found.ids == {"PT-88231", "PT-88232"}
    assert read_export_cells(path).totals.tolist() == [False, True, False, True]
    assert_same_export(path)


def test_a_label_split_by_quotes_is_still_a_totals_label(tmp_path, plain_reads):
    """To the csv module "TOT"AL is the cell TOTAL (characters after a closing quote are kept): that
    row is a totals row, and its id no patient's. Such quoting goes to the csv-module path."""
    path = tmp_path / "export.csv"
    path.write_text('Patient ID,Charge,Payer\nPT-88231,60,Aetna\n"TOT"AL,120,SUMID999\nPT-88232,60,Aetna\n')
    assert read_raw_export(path).iloc[1, 0] == "TOTAL"
    assert identifiers_from_export(path).ids == {"PT-88231", "PT-88232"}
    assert plain_reads == {path}
    assert_same_export(path)


def test_long_title_rows_and_a_late_header(tmp_path):
    """The header row is looked for past the first megabyte when the title rows above it are long."""
    path = tmp_path / "export.csv"
    path.write_text("".join(f"Report part {i} " + "x" * 100_000 + "\n" for i in range(15))
                    + "\nPatient ID,CPT,Charge\nP00001,97140,60\nP00002,97124,55\n")
    assert read_raw_export(path)["Patient ID"].tolist() == ["P00001", "P00002"]
    assert_same_export(path)


@pytest.mark.parametrize("quoted", [False, True])
def test_a_field_longer_than_the_csv_modules_limit(tmp_path, plain_reads, quoted):
    """The csv module refuses a field over csv.field_size_limit() characters (131,072), anywhere in the
    file, so both readings stop there; a long file whose fields are all shorter is read by the fast path."""
    rows = "Patient ID,Notes\n" + "".join(f"P{i:05d},{'x' * 20_000}\n" for i in range(40))

    def note(length: int) -> str:  # quoted: lines of 100,000 characters at most, one field
        return '"' + "\n".join(["n" * 100_000] * (length // 100_000) + ["n" * (length % 100_000)]) + '"' if quoted \
            else "n" * length

    too_long, long = tmp_path / "too_long.csv", tmp_path / "long.csv"
    too_long.write_text(rows + f"P99999,{note(200_000)}\n")
    long.write_text(rows + f"P99999,{note(131_000)}\n")
    with pytest.raises(csv.Error, match="field limit"):
        ref_read_raw_export(too_long)
    assert_same_export(too_long)
    assert_same_export(long)
    assert plain_reads == {too_long} and len(read_raw_export(long)) == 41


def test_a_header_written_twice_no_longer_stops_the_collection(tmp_path):
    """The plain reading failed on a repeated header (AttributeError); each column is now read on its own."""
    path = tmp_path / "export.csv"
    path.write_text("Patient ID,Charge,Patient ID\nP00001,60,M77777\nTOTAL,120,\n")
    with pytest.raises(AttributeError):
        ref_identifiers_from_export(path)
    assert identifiers_from_export(path).ids == {"P00001", "M77777"}


def test_parquet_export(tmp_path):
    path = tmp_path / "service_lines.parquet"
    pd.DataFrame({"Patient ID": ["P00001", None, "TOTAL"], "Charge": [60.0, np.nan, 120.0],
                  "Payer": ["Aetna", "Total", None]}).to_parquet(path)
    assert_same_export(path)


def test_totals_rows_equal_the_reference_on_any_frame():
    rng = random.Random(7)
    values = ["TOTAL", "total:", "Tot al", "x", None, np.nan, "ALL  payers", "Grand-Total", "ſub total", "TOTAL\u2028"]
    frame = pd.DataFrame({"a": [rng.choice(values) for _ in range(200)], "b": [rng.choice(values) for _ in range(200)],
                          "n": rng.choices([1, 2, np.nan], k=200)}, index=range(5, 205))
    pd.testing.assert_series_equal(totals_rows(frame), ref_totals_rows(frame))
    assert totals_rows(frame).any()


# ---------------------------------------------------------------------------------------------
# Random CSV texts: every field split as the csv module splits it, or the csv-module path
# ---------------------------------------------------------------------------------------------
ALPHABET = ["a", "l", "T", ",", '"', "\n", "\r", " ", "\t", "é", "0"]


def _random_text(rng: random.Random) -> str:
    if rng.random() < 0.5:  # random characters
        return "".join(rng.choices(ALPHABET, k=rng.randint(0, 40)))
    rows = []
    width = rng.randint(1, 4)
    for _ in range(rng.randint(0, 6)):
        fields = []
        for _ in range(width if rng.random() < 0.85 else rng.randint(0, 6)):
            content = "".join(rng.choices(ALPHABET, k=rng.randint(0, 6)))
            if rng.random() < 0.5 or any(c in content for c in ',"\n\r'):
                fields.append('"' + content.replace('"', '""') + '"')
            else:
                fields.append(content)
        rows.append(",".join(fields))
    return rng.choice(["patient_id,cpt,charge\n", "", "title\n\n"]) + rng.choice(["\n", "\r\n", "\r"]).join(rows) + \
        rng.choice(["", "\n", "\r\n"])


@pytest.mark.parametrize("seed", range(5))
def test_random_csv_texts_read_alike(tmp_path, plain_reads, seed):
    rng = random.Random(835 + seed)
    fast_reads = 0
    for n in range(300):
        path = tmp_path / f"export_{n}.csv"
        path.write_bytes(_random_text(rng).encode("utf-8"))
        try:
            expected = ref_read_raw_export(path)
        except csv.Error:
            with pytest.raises(csv.Error):
                read_raw_export(path)
            continue
        pd.testing.assert_frame_equal(read_raw_export(path), expected, check_column_type=True, obj=f"text {n}")
        fast_reads += path not in plain_reads
    assert fast_reads > 60


def test_no_other_character_upper_cases_to_the_letters_of_a_totals_label():
    """The export is searched for "tal" and "all" in any case before any label is looked for: that
    holds only if no character but t, a and l (either case) has T, A or L in its upper case."""
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    upper = pd.Series(chars, dtype="str").str.upper()
    letters = upper.str.contains("[TAL]", regex=True)
    assert sorted(np.asarray(chars, dtype=object)[letters.to_numpy(bool)]) == ["A", "L", "T", "a", "l", "t"]
    assert pd.Series([], dtype="str").dtype.storage == "pyarrow"  # the fast path reads only into Arrow text


@pytest.mark.parametrize("year", [1900, 1904, 1961, 2000, 2001, 2024, 2099])
def test_dates_of_birth_read_a_form_at_a_time_equal_one_at_a_time(year):
    """Every month and day field (padded or not, valid or not: 2/30, 4/31) in the three forms read
    together, each compared with the date pandas reads from the text alone."""
    texts = [f"{year}{m:02d}{d:02d}" for m in range(1, 13) for d in range(1, 32)]
    texts += [f"{year}-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 32)]
    texts += [f"{m}/{d}/{year}" for m in range(1, 13) for d in range(1, 32)]
    texts += [f"{m:02d}/{d:02d}/{year}" for m in range(1, 13) for d in range(1, 32) if m < 10 or d < 10]
    texts += [f"{year}-00-10", f"{year}-13-01", f"00/10/{year}", f"13/04/{year}", f" {year}0304 ", f"{year}0230",
              f"{year - 1}-12-31", "18991231", "2100-01-01", "1/2/21000", "19610304x", "March 4, 1961", "", "unknown"]
    one_at_a_time = {}
    for text in texts:
        expected = RefIdentifiers()
        expected.add_dates([text])
        one_at_a_time[text] = expected.dates_of_birth
    together = Identifiers()
    together.add_dates(texts)
    assert together.dates_of_birth == set().union(*one_at_a_time.values())
    # read together, a wrong date could hide behind another text's right one: the invalid ones add
    # nothing, and each day gives its forms once per text
    invalid = [t for t, forms in one_at_a_time.items() if not forms]
    assert len(invalid) >= 9
    nothing = Identifiers()
    nothing.add_dates(invalid)
    assert not nothing.dates_of_birth
    for text in texts:
        alone = Identifiers()
        alone.add_dates([text])
        assert alone.dates_of_birth == one_at_a_time[text], text


# ---------------------------------------------------------------------------------------------
# Fuzzed 835s
# ---------------------------------------------------------------------------------------------
WHITE = [" ", "\t", "\r\n", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\xa0", "  \n  "]


def _mutate_835(rng: random.Random, text: str) -> str:
    kind = rng.choice(["wrap", "space before separator", "separator", "white", "names", "bom", "crlf", "lines",
                       "no ISA"])
    if kind == "wrap":  # lines cut at random places, as mail and terminals do
        width = rng.randint(20, 90)
        text = "\n".join(text[i:i + width] for i in range(0, len(text), width))
    elif kind == "space before separator":
        text = re.sub(r"(NM1|N1|DMG)\*", lambda m: m.group(1) + rng.choice([" ", "  ", "\t", ""]) + "*", text)
        text = re.sub(r"~", lambda m: rng.choice(["~", "~ ", " ~", "~\n  "]), text)
    elif kind == "separator" and text.startswith("ISA"):
        element = rng.choice(["|", "^", ".", "+", " ", "N"])
        text = text.replace("*", element)
    elif kind == "white":
        text = re.sub(r"~\s*", lambda m: "~" + rng.choice(WHITE), text)
    elif kind == "names":  # the segment names inside other segments and at odd places
        text = text.replace("REF*", rng.choice(["REF*NM1*", "REF*XN1*", "REF*DMG*"]), 3)
        text = rng.choice(["NM1*QC*1*FIRSTSEG*X****MI*AB12~", "  DMG*D8*19610304~", ""]) + text
    elif kind == "bom":
        text = "\ufeff" * rng.randint(1, 2) + text
    elif kind == "crlf":
        text = text.replace("~", "~\r\n")
    elif kind == "lines":
        text = text.replace("~", "\n")
    elif kind == "no ISA":
        text = text[text.find("GS"):]
    return text


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed_835s_read_alike(tmp_path, seed):
    rng = random.Random(20260220 + seed)
    sources = [p.read_text(errors="replace") for p in SHIPPED_835[:12]]
    dmg = "DMG*D8*19610304*F~NM1*IL*1*BRANNIGAN*VEXMORE*Q***MI*MBR77777~NM1*82*1*HALL*ANN~NM1*74*2*ACME CO~"
    sources.append(sources[0].replace("SE*", dmg + "SE*", 1))
    for n in range(100):
        text = _mutate_835(rng, rng.choice(sources))
        if rng.random() < 0.3:
            text = _mutate_835(rng, text)
        path = tmp_path / f"r{n}.835"
        path.write_bytes(text.encode("utf-8"))
        assert as_dict(identifiers_from_835([path])) == as_dict(ref_identifiers_from_835([path])), (n, text[:200])


def test_segments_named_finds_the_segments_as_the_split_does():
    text = "ISA*00~ NM1*QC*1*DOE*JANE~\n\tN1 *PR*ACME\nXNM1*QC*1*NOT*THIS~DMG*D8*19610304~NM1"
    assert fast.segments_named(text) == {"NM1*QC*1*DOE*JANE", "N1 *PR*ACME", "DMG*D8*19610304", "NM1"}
