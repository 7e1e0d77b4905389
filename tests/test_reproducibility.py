"""Same inputs and parameters give byte-identical tables, charts and pages.

Two computations of the tables and charts in one process agree byte for byte. The report
pack's pages, tables and charts agree byte for byte across runs in test_cache.py (the session's
run, a warm run, and a run without the cache in kernels started afresh, one at a time). Here:
the session's two runs of ``report all`` on the sample (``sample_pack_runs``, tests/conftest.py),
started at the same time into one output folder and one cache, each finish, keep their own
run and period folders, and publish every page, table and chart their manifest names.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from analytics import kpis, plots, reports
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


def test_two_computations_are_byte_identical():
    first, second = _tables_and_figures(), _tables_and_figures()
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name
        assert len(first[name]) > 100, name


@pytest.fixture(scope="module")
def two_runs(sample_pack_runs) -> list[reports.RunResult]:
    """The session's runs of ``report all`` on the sample, started at once into one folder."""
    return list(sample_pack_runs.runs)


def _files(run: reports.RunResult) -> dict[str, bytes]:
    """Every page, table and chart one run made, by path inside its run folder."""
    found = {p.relative_to(run.run_folder).as_posix(): p.read_bytes() for p in run.run_folder.rglob("*")
             if p.is_file() and p.suffix in (".html", ".csv", ".png")}
    return found


def test_two_report_runs_at_once_each_keep_their_pages_tables_and_charts(two_runs):
    assert all(r.ok for r in two_runs), [(r.name, r.status, r.error) for run in two_runs for r in run.failed]
    assert len({r.run_folder for r in two_runs}) == len(two_runs)
    for run in two_runs:
        made = _files(run)
        assert {Path(k).suffix for k in made} == {".html", ".csv", ".png"}, run.folder
        for report in reports.REPORTS:
            assert any(k.startswith(f"{report}/tables/") for k in made), f"{report} saved no table"
            assert any(k.startswith(f"{report}/figures/") for k in made), f"{report} saved no chart"
        # the period folder publishes what this run made, not the other run's
        for report in run.reports:
            assert report.html.read_bytes() == made[f"{report.name}.html"], report.html


def test_published_tables_match_the_manifest(two_runs):
    for run in two_runs:
        folder = run.folder
        manifest = json.loads((folder / "manifest.json").read_text())
        assert set(manifest["runs"]) == {run.run_id}, folder
        for name, entry in manifest["reports"].items():
            assert entry["status"] == "ok", name
            assert entry["run_id"] == run.run_id, name
            assert entry["outputs"], f"{name} lists no tables or charts"
            for rel, digest in entry["outputs"].items():
                assert rel.startswith((f"tables/{name}/", f"figures/{name}/")), rel
                assert reports._sha256(folder / rel) == digest, rel
        assert not list(folder.rglob(".*.tmp"))


def test_saved_tables_hold_the_whole_frame(two_runs):
    run = two_runs[0]
    params = run.reports[0].parameters
    history = kpis.load_history(SAMPLE).select(start=params["period_start"], end=params["period_end"],
                                                as_of=params["as_of"])
    by_payer = pd.read_csv(run.folder / "tables" / "revenue" / "by_payer.csv")
    expected = kpis.by_payer(history)
    assert len(by_payer) == len(expected) and list(by_payer.columns) == list(expected.columns)
    assert by_payer["charges"].sum() == pytest.approx(expected["charges"].sum(), abs=0.005)
