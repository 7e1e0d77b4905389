"""The same engine on Dask: a local cluster of two worker processes gives the pandas figures."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd
import pytest
from test_pipeline import assert_same_figures, with_pseudonyms

from analytics.cli import main
from analytics.datasets import generate_practice
from analytics.payers import load_payers
from analytics.pipeline import PARTITION_COLUMN, evaluate, evaluate_dask

REPO = Path(__file__).resolve().parents[1]
PAYERS_YAML = REPO / "data" / "sample" / "payers.yaml"
PAYERS = load_payers(PAYERS_YAML)


@pytest.fixture(scope="module")
def dd():
    """``dask.dataframe``, imported when a test here runs (not when the suite is collected)."""
    return pytest.importorskip("dask.dataframe")


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    # A local cluster sets its workers' environment in this process's own (OMP_NUM_THREADS=1,
    # PYTHONHASHSEED, MALLOC_TRIM_THRESHOLD_ ...) and leaves it there: the later tests of this
    # worker process get the environment they started with back.
    environ = dict(os.environ)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        os.environ.clear()
        os.environ.update(environ)


@pytest.fixture(scope="module")
def practice() -> pd.DataFrame:
    return generate_practice(1200, seed=21, payers=PAYERS).lines


def test_dask_equals_pandas_on_a_generated_practice(client, practice, dd):
    # rows of a patient start out spread over partitions; the shuffle brings them together
    lines = dd.from_pandas(practice.sample(frac=1, random_state=0).sort_index(), npartitions=5, sort=False)
    out = evaluate_dask(lines, PAYERS, npartitions=3)
    assert out.npartitions == 3
    got = client.compute(out).result()
    assert len(got) == len(practice)
    assert (got[PARTITION_COLUMN].astype(str) == got["service_date"].dt.strftime("%Y-%m")).all()
    assert_same_figures(evaluate(practice, PAYERS), got.drop(columns=PARTITION_COLUMN))


def test_each_patient_is_in_one_partition(client, practice, dd):
    out = evaluate_dask(dd.from_pandas(practice, npartitions=4, sort=False), PAYERS)
    per_part = out.map_partitions(lambda p: pd.DataFrame({"patient_id": p["patient_id"].astype(str).unique()}),
                                  meta={"patient_id": "object"})
    patients = client.compute(per_part).result()["patient_id"]
    assert patients.is_unique and len(patients) == practice["patient_id"].nunique()


def test_evaluate_command_on_the_cluster(client, practice, tmp_path, capsys):
    src = tmp_path / "lines.parquet"
    practice.to_parquet(src, index=False)
    out = tmp_path / "out"
    code = main(["evaluate", "--lines", str(src), "--payers", str(PAYERS_YAML), "--out", str(out), "--dask",
                 "--scheduler", client.scheduler.address])
    assert code == 0
    assert f"evaluated {len(practice):,} lines on Dask" in capsys.readouterr().out
    got = pd.read_parquet(out)
    assert sorted(got[PARTITION_COLUMN].astype(str).unique()) == sorted(p.name.split("=")[1] for p in out.iterdir())
    # the written patient ids are pseudonyms; every other column is as evaluate gives it
    assert_same_figures(with_pseudonyms(evaluate(pd.read_parquet(src), PAYERS)), got.drop(columns=PARTITION_COLUMN))
