"""`python -m lpq.pipeline.ingest results/<experiment> --experiment NAME --out FILE`: the single MLflow writer
(PIPELINE §5.2). Mirrors result files into the SQLite tracking store: one parent run per experiment and one
child run per job (found again by tag `lpa.job`); a child whose `lpa.digest` is already logged is skipped, a
changed digest gets a new child and the old one is tagged `lpa.superseded=true`. Never the file store."""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

from . import atomic

RESULT_FILES = ("metrics.json", "search.json", "summary.json")
MAX_PARAM = 500


def tracking_uri(results: Path) -> str:
    """$MLFLOW_TRACKING_URI, else an absolute sqlite URI of <results>/../mlflow.db (= results/mlflow.db)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return "sqlite:///" + str((results.resolve().parent / "mlflow.db"))


def flatten(obj, prefix: str = "") -> dict:
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = obj
    return out


def numeric(d: dict) -> dict[str, float]:
    out = {}
    for k, v in flatten(d).items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            continue
        if k.startswith("layers.") or ".layers." in k:
            continue  # per-layer tables stay in the artifact
        out[k.replace("@", "_")] = float(v)
    return out


def scan_jobs(results: Path) -> list[dict]:
    """Every finished job: its env.json (rule, job key, digest, overrides) and its directory."""
    jobs = []
    for env in sorted(results.glob("*/**/env.json")):
        rec = json.loads(env.read_text())
        jobs.append({"dir": env.parent, "env": rec, "job": rec["job"], "digest": rec["cfg_digest"], "rule": rec["rule"]})
    return jobs


def _fp32_top1(results: Path) -> dict[str, float]:
    out = {}
    for p in results.glob("eval/*/none/fp32/*/s*/metrics.json"):
        out[p.parts[-6]] = float(json.loads(p.read_text())["top1"])
    return out


def _child_content(job: dict, fp32: dict[str, float]):
    from mlflow.entities import Metric, Param

    d: Path = job["dir"]
    now = int(time.time() * 1000)
    wc = dict(part.split("=", 1) for part in job["job"].split("/")[1:] if "=" in part)
    params = {f"wc.{k}": v for k, v in wc.items()}
    cfg_file = d / ".hydra" / "config.yaml"
    if cfg_file.is_file():
        from omegaconf import OmegaConf

        for k, v in flatten(OmegaConf.to_container(OmegaConf.load(cfg_file), resolve=False)).items():
            if isinstance(v, (dict, list)) and len(str(v)) > MAX_PARAM:
                continue
            params[k] = v
    metrics: dict[str, float] = {}
    for name in RESULT_FILES:
        p = d / name
        if p.is_file():
            data = json.loads(p.read_text())
            metrics.update(numeric(data))
            for key in ("weights_source", "data_source"):
                if key in data:
                    params[key] = data[key]
    if job["rule"] == "evaluate" and "top1" in metrics and wc.get("model") in fp32:
        metrics["fp32_top1"] = fp32[wc["model"]]
        metrics["delta_top1"] = metrics["top1"] - fp32[wc["model"]]
    qc = d / "qconfig.json"
    if qc.is_file():
        import hashlib

        params["qconfig_sha256"] = hashlib.sha256(qc.read_bytes()).hexdigest()
        layers = json.loads(qc.read_text()).get("layers", {})
        params["formats_used"] = ";".join(sorted({s for l in layers.values() for s in (l.get("w"), l.get("a")) if s}))
    plist = [Param(str(k)[:250], str(v)) for k, v in sorted(params.items()) if len(str(v)) <= MAX_PARAM]
    mlist = [Metric(k, v, now, 0) for k, v in sorted(metrics.items())]
    log_csv = d / "search_log.csv"
    if log_csv.is_file():
        with open(log_csv) as f:
            for row in csv.DictReader(f):
                step = int(row["generation"])
                for k in ("best_fitness", "mean_fitness"):
                    mlist.append(Metric(f"log.{k}", float(row[k]), now, step))
    return plist, mlist


def _batched(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def ingest(results: Path, experiment: str) -> dict:
    import mlflow
    from mlflow.tracking import MlflowClient

    results = results.resolve()
    uri = tracking_uri(results)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    exp_name = f"lpa/{experiment}"
    exp = client.get_experiment_by_name(exp_name)
    if exp is None:
        art = (results.parent / "mlflow-artifacts").resolve()
        exp_id = client.create_experiment(exp_name, artifact_location=art.as_uri())
    else:
        exp_id = exp.experiment_id
    base = {"lpa.experiment": experiment}
    parents = client.search_runs([exp_id], f"tags.`lpa.experiment` = '{experiment}' and tags.`lpa.role` = 'parent'")
    if parents:
        parent_id = parents[0].info.run_id
    else:
        parent_id = client.create_run(exp_id, tags={**base, "lpa.role": "parent"}, run_name=f"sweep/{experiment}").info.run_id
    existing: dict[str, list] = {}
    token = None
    while True:
        page = client.search_runs([exp_id], f"tags.`lpa.role` = 'child' and tags.`lpa.experiment` = '{experiment}'",
                                  max_results=1000, page_token=token)
        for r in page:
            existing.setdefault(r.data.tags.get("lpa.job"), []).append(r)
        token = page.token
        if not token:
            break
    fp32 = _fp32_top1(results)
    summary = {"experiment": experiment, "tracking_uri": uri, "parent_run_id": parent_id, "children": {}}
    created = skipped = 0
    for job in scan_jobs(results):
        runs = existing.get(job["job"], [])
        same = [r for r in runs if r.data.tags.get("lpa.digest") == job["digest"]]
        if same:
            summary["children"][job["job"]] = {"run_id": same[0].info.run_id, "digest": job["digest"]}
            skipped += 1
            continue
        env = job["env"]
        tags = {**base, "lpa.role": "child", "lpa.job": job["job"], "lpa.digest": job["digest"],
                "mlflow.parentRunId": parent_id, "rule": job["rule"], "cfg_digest": job["digest"],
                "git_sha": env.get("git", {}).get("commit"), "git_dirty": env.get("git", {}).get("dirty"),
                "snakemake_version": env.get("versions", {}).get("snakemake"),
                "torch_version": env.get("versions", {}).get("torch"), "hostname": env.get("hostname"),
                "slurm_job_id": env.get("slurm_job_id")}
        run = client.create_run(exp_id, tags={k: str(v) for k, v in tags.items()}, run_name=job["job"])
        rid = run.info.run_id
        plist, mlist = _child_content(job, fp32)
        for chunk in _batched(plist, 100):
            client.log_batch(rid, params=chunk)
        for chunk in _batched(mlist, 1000):
            client.log_batch(rid, metrics=chunk)
        for f in sorted(job["dir"].iterdir()):
            if f.is_file() and not f.name.startswith("."):
                client.log_artifact(rid, str(f))
        if (job["dir"] / ".hydra" / "config.yaml").is_file():
            client.log_artifact(rid, str(job["dir"] / ".hydra" / "config.yaml"), "hydra")
        client.set_terminated(rid)
        for old in runs:
            client.set_tag(old.info.run_id, "lpa.superseded", "true")
        summary["children"][job["job"]] = {"run_id": rid, "digest": job["digest"]}
        created += 1
    for sub in ("tables", "figures"):
        if (results / sub).is_dir():
            client.log_artifacts(parent_id, str(results / sub), sub)
    summary["created"], summary["skipped"] = created, skipped
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("results", type=Path)
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    summary = ingest(a.results, a.experiment)
    atomic.write_json(a.out, summary)
    print(f"mlflow ingest: {summary['created']} runs created, {summary['skipped']} already present; {summary['tracking_uri']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
