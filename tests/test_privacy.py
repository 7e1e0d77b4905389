"""The privacy guard finds planted identifiers and passes clean outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.exceptions import PrivacyError
from analytics.privacy import (
    Identifiers,
    check_outputs,
    identifiers_from_835,
    identifiers_from_export,
    scan_outputs,
)

EXPORT = """patient_id,Patient Name,DOB,cpt,charge
PT-88231,"Qwertyson, Zelda",1961-03-04,97140,60
PT-88232,Vexmore Brannigan,02/11/1975,97124,55
"""


def test_identifiers_from_export(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(EXPORT)
    ids = identifiers_from_export(path)
    assert {"PT-88231", "PT-88232"} <= ids.ids
    assert {"QWERTYSON", "ZELDA", "VEXMORE", "BRANNIGAN"} <= ids.names
    assert "1961-03-04" in ids.dates_of_birth and "02/11/1975" in ids.dates_of_birth


def test_identifiers_from_835(x12_dir):
    ids = identifiers_from_835([x12_dir / "synthetic_835_massage.edi"])
    assert "SYNMBR001" in ids.ids and "SAMPLE" in ids.names


@pytest.mark.parametrize("leak", [
    "<td>PT-88231</td>", "Patient: zelda qwertyson", "born 03/04/1961", '{"member": "pt-88232"}',
])
def test_planted_identifier_is_found(tmp_path, leak):
    ids = Identifiers()
    ids.add_ids(["PT-88231", "PT-88232"])
    ids.add_names(["Qwertyson, Zelda"])
    ids.add_dates(["1961-03-04"])
    out = tmp_path / "report"
    out.mkdir()
    (out / "page.html").write_text(f"<html><body><p>Totals</p>{leak}</body></html>")
    with pytest.raises(PrivacyError, match="page.html") as err:
        check_outputs([out], ids)
    assert len(err.value.rows) >= 1
    assert "PT-88231" not in str(err.value)  # the message itself masks values


def test_clean_outputs_and_whole_tokens_only(tmp_path):
    ids = Identifiers()
    ids.add_ids(["MBR001"])
    page = tmp_path / "page.html"
    page.write_text("<p>MBR0012 is another token; 97140 paid $27.17</p>")
    pd.DataFrame({"cpt": ["97140"], "paid": [27.17]}).to_parquet(tmp_path / "t.parquet")
    assert scan_outputs([tmp_path], ids).empty
    check_outputs([tmp_path], ids)


def test_parquet_outputs_are_scanned(tmp_path):
    ids = Identifiers()
    ids.add_ids(["PT-88231"])
    pd.DataFrame({"patient_id": ["PT-88231"]}).to_parquet(tmp_path / "lines.parquet")
    assert scan_outputs([tmp_path], ids)["kind"].tolist() == ["id"]
