"""Fuzzing the 835 reader and the export loader, seeded from the fixtures.

CI tries 400 mutated 835s and 200 mutated exports per run (each input one to three stacked
mutations); ANALYTICS_FUZZ_835 and ANALYTICS_FUZZ_CSV set other counts for a longer search.

For every input the outcome is a correct load or one of the package's own errors with a
message; never another exception, never a hang (a deadline per input), never a silent loss
(intake counts reconcile; an 835 that loads reports its balance differences).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.exceptions import AnalyticsError, AnalyticsWarning
from analytics.intake import read_service_lines
from analytics.remittance import read_835

FIXTURES = Path(__file__).resolve().parent / "data" / "x12-835"
SYNTHETIC = """ISA*00*          *00*          *ZZ*SYNTHPAYER01   *ZZ*SYNTHCLINIC01  *260316*0930*^*00501*000000101*0*T*:~
GS*HP*SYNTHPAYER01*SYNTHCLINIC01*20260316*0930*101*X*005010X221A1~ST*835*0001~
BPR*I*40.44*C*ACH*CCP*01*999999999*DA*000111222*1999999999**01*888888888*DA*333444555*20260318~
TRN*1*SYNEFT000001*1999999999~DTM*405*20260316~N1*PR*SYNTHETIC HEALTH PLAN~N1*PE*EXAMPLE*XX*1234567893~
LX*1~CLP*PCN1001*1*120*45.44*10*12*SYNCLM0001*11*1~NM1*QC*1*SAMPLE*PAT****MI*SYNMBR001~
SVC*HC:97140:GP*120*45.44**2~DTM*472*20260302~CAS*CO*45*64.56~CAS*PR*3*10~REF*6R*L1~AMT*B6*55.44~
CLP*PCN1002*1*70*0*0*12*SYNCLM0002*11*1~SVC*HC:97124:GP*45*0**1~DTM*472*20260302~CAS*CO*97*45~
LQ*HE*M80~SVC*HC:97010:GP*25*0**1~CAS*CO*97*25~PLB*1234567893*20261231*WO:SYNCLM0000*5~SE*29*0001~
GE*1*101~IEA*1*000000101~"""


def seeds() -> list[str]:
    texts = [SYNTHETIC]
    if FIXTURES.exists():
        texts += [p.read_text(errors="replace") for p in sorted(FIXTURES.iterdir()) if p.is_file()]
    return texts


SEEDS = seeds()


@st.composite
def mutated_835(draw) -> str:
    """A fixture with one to three mutations stacked (each may undo part of another)."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        text = _mutate_835(draw, text)
    return text


def _mutate_835(draw, text: str) -> str:
    segs = text.split("~")
    kind = draw(st.sampled_from(["truncate", "delete", "duplicate", "swap", "bytes", "huge", "empty", "shuffle"]))
    if kind == "truncate":
        return text[: draw(st.integers(0, len(text)))]
    if kind == "delete" and len(segs) > 1:
        i = draw(st.integers(0, len(segs) - 1))
        return "~".join(segs[:i] + segs[i + 1:])
    if kind == "duplicate" and segs:
        i = draw(st.integers(0, len(segs) - 1))
        return "~".join(segs[: i + 1] + segs[i:])
    if kind == "swap":
        a, b = draw(st.sampled_from([("*", "|"), ("~", "\n"), (":", ">"), ("*", "~"), ("~", "*")]))
        return text.replace(a, "\0").replace(b, a).replace("\0", b)
    if kind == "bytes":
        pos = draw(st.integers(0, len(text)))
        junk = draw(st.text(min_size=1, max_size=20))
        return text[:pos] + junk + text[pos:]
    if kind == "huge":
        return text.replace("*45.44", "*" + "9" * draw(st.integers(15, 400)), 1)
    if kind == "empty" and segs:
        i = draw(st.integers(0, len(segs) - 1))
        parts = segs[i].split("*")
        j = draw(st.integers(0, len(parts) - 1))
        parts[j] = ""
        segs[i] = "*".join(parts)
        return "~".join(segs)
    if kind == "shuffle" and len(segs) > 2:
        return "~".join(draw(st.permutations(segs)))
    return text


FUZZ_835 = int(os.environ.get("ANALYTICS_FUZZ_835", "400"))
FUZZ_CSV = int(os.environ.get("ANALYTICS_FUZZ_CSV", "200"))


@settings(max_examples=FUZZ_835, deadline=2000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_835())
def test_835_reader_never_fails_unclearly(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalyticsWarning)
        try:
            remit = read_835(text, source_name="fuzz.835")
        except AnalyticsError as exc:
            assert "fuzz.835" in str(exc), str(exc)  # the error names the file
            return
    # nothing silently lost: every line belongs to a claim and balance reports any difference
    assert set(remit.service_lines["claim_index"]) <= set(remit.claims["claim_index"])
    # every check has a verdict (a missing BPR02 shows as an unbalanced transaction)
    assert remit.balance["balanced"].notna().all()


CSV = """patient_id,service_date,provider_id,provider_type,payer_id,cpt,minutes,modifiers,dx_codes,charge
p1,2026-03-02,pt1,pt,medicare,97140,30,GP,M54.50,60
p1,2026-03-02,pt1,pt,medicare,97124,25,"GP,59",M54.50,55
p2,2026-03-03,lmt1,lmt,ppo_gold,97124,60,,M62.830,110
p3,2026-03-04,dc1,dc,auto_pip,97010,,,S13.4XXA,20
"""

# Cell values an export holds that must never pass silently: decimal commas and bad grouping,
# numbers X12 and spreadsheets disagree on, digits of other scripts, two-digit years, dates of
# service in the future, formula cells, line breaks inside a cell.
_CELLS = ["", "-5", "abc", "1e308", "9" * 40, "NaN", "nan", "inf", "+5", "1_000", "2026-13-45", "\u00e9\u00e8",
          '"120,50"', '"1.234,56"', '"$ 1,2,3"', "\u0661\u0662\u0663", "\uff15", "3/14/68", "12/31/2099",
          "=HYPERLINK(\"http://x\")", "@SUM(A1)", '"a\rb"', '"x\ny"', "TOTAL"]


@st.composite
def mutated_export(draw) -> tuple[bytes, str]:
    """The export with one to three mutations stacked, as bytes, with the delimiter it uses."""
    rows = CSV.splitlines()
    delimiter = ","
    encoding = "utf-8"
    for _ in range(draw(st.integers(1, 3))):
        rows, delimiter, encoding = _mutate_export(draw, rows, delimiter, encoding)
    text = "\n".join(rows) + "\n"
    if encoding == "truncate":
        return text.encode("utf-8")[: draw(st.integers(0, len(text)))], delimiter
    if encoding == "junk":  # a byte that is neither UTF-8 nor cp1252
        data = text.encode("utf-8")
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\x81" + data[at:], delimiter
    return text.encode(encoding, errors="replace"), delimiter


def _mutate_export(draw, rows: list[str], delimiter: str, encoding: str) -> tuple[list[str], str, str]:
    kinds = ["cell", "delete", "duplicate", "bytes", "drop_header", "blank_header", "title", "total",
             "semicolons", "cp1252", "junk", "truncate", "wide_row"]
    kind = draw(st.sampled_from(kinds))
    if len(rows) < 2 and kind in ("cell", "delete", "duplicate", "bytes", "wide_row"):
        return rows, delimiter, encoding
    i = draw(st.integers(1, max(len(rows) - 1, 1)))
    if kind == "cell":
        cells = rows[i].split(delimiter)
        j = draw(st.integers(0, len(cells) - 1))
        cells[j] = draw(st.sampled_from(_CELLS))
        rows[i] = delimiter.join(cells)
    elif kind == "delete":
        rows.pop(i)
    elif kind == "duplicate":
        rows.insert(i, rows[i])
    elif kind == "bytes":
        pos = draw(st.integers(0, len(rows[i])))
        rows[i] = rows[i][:pos] + draw(st.text(max_size=8)) + rows[i][pos:]
    elif kind in ("drop_header", "blank_header"):
        cols = rows[0].split(delimiter)
        j = draw(st.integers(0, len(cols) - 1))
        if kind == "drop_header":
            cols.pop(j)
        else:
            cols[j] = ""
        rows[0] = delimiter.join(cols)
    elif kind == "title":
        rows[:0] = ["Service line detail, March 2026", ""]
    elif kind == "total":
        rows.append(delimiter.join(["TOTAL", *[""] * 8, "245"]))
    elif kind == "semicolons" and delimiter == ",":  # consistently: a European export
        rows = [r.replace(";", ",").replace(",", ";") for r in rows]
        delimiter = ";"
    elif kind == "wide_row":
        rows[i] = rows[i] + delimiter + "surplus"
    elif kind in ("cp1252", "junk", "truncate"):
        encoding = kind
    return rows, delimiter, encoding


def _records_below_header(data: bytes, delimiter: str, header_row: int) -> int:
    """An independent count of the data rows: non-blank records after the header, read by the
    csv module (not by pandas, which the intake uses)."""
    import csv
    import io

    for codec in ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(codec)
            break
        except UnicodeDecodeError:
            continue
    records = list(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter))
    return sum(1 for r in records[header_row:] if any(c.strip() for c in r))


@settings(max_examples=FUZZ_CSV, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_export())
def test_export_loader_reconciles_or_fails_clearly(tmp_path_factory, export):
    data, delimiter = export
    path = tmp_path_factory.mktemp("fuzz") / "export.csv"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalyticsWarning)
        try:
            intake = read_service_lines(path, today="2026-04-01")
        except AnalyticsError as exc:
            assert "export.csv" in str(exc), str(exc)
            return
    # nothing lost: every non-blank row below the header is read or set aside, with a reason
    assert intake.rows_in == len(intake.lines) + len(intake.quarantine)
    assert intake.rows_in == _records_below_header(data, delimiter, intake.header_row)
    assert intake.quarantine["reason"].str.len().gt(0).all()
    lines = intake.lines
    # nothing ambiguous accepted: amounts are plain numbers below ten million dollars, minutes
    # are ASCII numbers, dates of service are four-digit-year dates not after the day read
    assert lines["charge"].between(0, 9_999_999.99).all()
    assert lines["minutes"].dropna().between(0, 10**9).all()
    assert (lines["service_date"] <= pd.Timestamp("2026-04-01")).all()
    assert (lines["service_date"] >= pd.Timestamp("1900-01-01")).all()
    # no line break survives in a cell (a written CSV would read back with extra rows)
    text = lines.select_dtypes(include=["object", "string"]).astype(str)
    assert not text.apply(lambda c: c.str.contains("[\r\n]", regex=True)).any().any()


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x02", b"\xff\xfe" + "ISA*".encode("utf-16-le"), b"ISA" * 50])
def test_binary_garbage(data):
    with pytest.raises(AnalyticsError):
        read_835(data, source_name="garbage.835")
