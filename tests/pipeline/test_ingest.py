"""MLflow ingestion on a temporary SQLite store: idempotence and supersession (PIPELINE §5.2, §5.4)."""
from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("mlflow")
pytestmark = pytest.mark.filterwarnings("ignore")

from lpq.pipeline import ingest  # noqa: E402


def _runs(uri):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name("lpa/demo")
    return c.search_runs([exp.experiment_id], max_results=5000)


def test_ingest_twice_creates_no_duplicates(fake_results, mlflow_db):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = ingest.ingest(fake_results, "demo")
        n = len(_runs(mlflow_db))
        second = ingest.ingest(fake_results, "demo")
    assert first["created"] == len(ingest.scan_jobs(fake_results)) == 20 and first["skipped"] == 0
    assert second["created"] == 0 and second["skipped"] == 20
    assert len(_runs(mlflow_db)) == n == 21  # one parent + 20 children
    assert first["parent_run_id"] == second["parent_run_id"]


def test_changed_digest_supersedes(fake_results, mlflow_db):
    ingest.ingest(fake_results, "demo")
    env = fake_results / "eval/m1/lpq/lp/w4a4/s0/env.json"
    rec = json.loads(env.read_text())
    rec["cfg_digest"] = "d1"
    env.write_text(json.dumps(rec))
    out = ingest.ingest(fake_results, "demo")
    assert out["created"] == 1
    runs = [r for r in _runs(mlflow_db) if r.data.tags.get("lpa.job") == rec["job"]]
    assert len(runs) == 2
    assert sorted(r.data.tags.get("lpa.superseded", "false") for r in runs) == ["false", "true"]


def test_child_content(fake_results, mlflow_db):
    out = ingest.ingest(fake_results, "demo")
    rid = out["children"]["evaluate/model=m1/method=lpq/fmt=lp/wa=w4a4/seed=0"]["run_id"]
    from mlflow.tracking import MlflowClient

    run = MlflowClient(tracking_uri=mlflow_db).get_run(rid)
    assert run.data.metrics["top1"] == 88.0 and run.data.metrics["fp32_top1"] == 90.0
    assert run.data.metrics["delta_top1"] == -2.0
    assert run.data.params["formats_used"] == "lp<4>" and run.data.params["wc.fmt"] == "lp"
    assert run.data.tags["mlflow.parentRunId"] == out["parent_run_id"]
    sid = out["children"]["search/model=m1/fmt=lp/wa=w4a4/seed=0"]["run_id"]
    hist = MlflowClient(tracking_uri=mlflow_db).get_metric_history(sid, "log.best_fitness")
    assert [m.step for m in hist] == [0, 1]
