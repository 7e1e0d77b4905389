"""Rebuild the CMS extracts in ``tests/data/cms/`` from the full files CMS publishes.

Run from the repository root with the folder holding the unzipped CMS releases::

    python tests/data/extract_cms.py /path/to/cms

where ``/path/to/cms`` has ``rvu25d/`` (RVU25D: ``PPRRVU2025_Oct.csv``, ``GPCI2025.csv``,
``25LOCCO.csv``) and ``rvu26c/`` (RVU26C: ``PPRRVU2026_Jul_nonQPP.csv``, ``GPCI2026.csv``).

The PPRRVU extract keeps every title and header line as CMS wrote it, and of the data rows only
those of the codes in :data:`KEEP`, with the DESCRIPTION cell left empty: CPT descriptors are AMA
copyright and must not be copied into the project (CMS repeats the notice in the file's second
line). Every other cell, the line endings (CRLF) and the column order stay as published, so the
loaders in ``analytics/cms.py`` read an extract exactly as they read the full file. The GPCI and
locality files carry no AMA text and are copied whole.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Codes kept from the PPRRVU files, and why:
# - 97xxx: physical medicine and rehabilitation (97010-97799, the therapy codes the toolkit
#   prices, incl. 97124 massage and 97140 manual therapy) and 97802-97814 (nutrition therapy,
#   acupuncture);
# - 98925-98943: osteopathic and chiropractic manipulative treatment;
# - G0283: unattended electrical stimulation, used in the intake tests;
# - 95851, 95852 (range-of-motion and muscle testing) and 95860, 95907 (EMG, nerve conduction),
#   which have professional (26) and technical (TC) component rows, so the extract keeps the
#   modifier layout of the full file.
KEEP = re.compile(r"97\d{3}|989(2[5-9]|4[0-3])|G0283|9585[12]|95860|95907")

PPRRVU = {
    "rvu25d": "PPRRVU2025_Oct.csv",
    "rvu26c": "PPRRVU2026_Jul_nonQPP.csv",
}
WHOLE = {
    "rvu25d": ["GPCI2025.csv", "25LOCCO.csv"],
    "rvu26c": ["GPCI2026.csv"],
}


def extract_pprrvu(source: Path, target: Path) -> int:
    """Write the kept rows of one PPRRVU file, descriptions blanked; return the row count."""
    raw = source.read_bytes().decode("latin-1")
    lines = raw.splitlines(keepends=True)
    header_at = next(i for i, line in enumerate(lines) if line.startswith("HCPCS,"))
    desc = next(csv.reader([lines[header_at]])).index("DESCRIPTION")
    out = lines[: header_at + 1]
    kept = 0
    for line in lines[header_at + 1 :]:
        cells = next(csv.reader([line]), [])
        if not cells or not KEEP.fullmatch(cells[0].strip()):
            continue
        cells[desc] = ""
        buffer = io.StringIO()
        ending = line[len(line.rstrip("\r\n")) :]
        csv.writer(buffer, lineterminator=ending).writerow(cells)
        out.append(buffer.getvalue())
        kept += 1
    target.write_bytes("".join(out).encode("latin-1"))
    return kept


def main(cms: Path) -> None:
    for release, name in PPRRVU.items():
        target = HERE / "cms" / release
        target.mkdir(parents=True, exist_ok=True)
        rows = extract_pprrvu(cms / release / name, target / name)
        print(f"{release}/{name}: {rows} rows")
        for whole in WHOLE[release]:
            shutil.copyfile(cms / release / whole, target / whole)
            print(f"{release}/{whole}: copied")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / "shared" / "cms")
