"""Same inputs and parameters give byte-identical tables and figures."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from analytics import kpis, plots
from analytics.payers import load_payers
from analytics.pipeline import evaluate

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def _tables_and_figures() -> dict[str, bytes]:
    history = kpis.load_history(SAMPLE, salt="fixed-salt")
    out = {
        "summary.csv": kpis.summary(history).to_csv().encode(),
        "monthly.csv": kpis.monthly(history).to_csv(index=False).encode(),
        "by_payer.csv": kpis.by_payer(history).to_csv(index=False).encode(),
        "aging.csv": kpis.ar_aging(history).to_csv().encode(),
        "denials.csv": kpis.denials_by_payer(history).to_csv(index=False).encode(),
        "reasons.csv": kpis.denial_reasons(history).to_csv(index=False).encode(),
    }
    lines = pd.read_csv(SAMPLE / "service_lines.csv", dtype={"cpt": str, "claim_id": str, "line_id": str},
                        parse_dates=["service_date", "submission_date"])
    evaluated = evaluate(lines, load_payers(SAMPLE / "payers.yaml"))
    out["evaluated.csv"] = evaluated.drop(columns=["patient_id"]).to_csv(index=False).encode()
    for name, fig in (("monthly.png", plots.monthly_charges_collections(kpis.monthly(history))),
                      ("aging.png", plots.ar_aging(kpis.ar_aging(history)))):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        out[name] = buf.getvalue()
    return out


def test_two_runs_are_byte_identical():
    first, second = _tables_and_figures(), _tables_and_figures()
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name
        assert len(first[name]) > 100, name
