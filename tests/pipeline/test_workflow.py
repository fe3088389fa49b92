"""Snakemake checks of PIPELINE §10: lint, dry runs (demo; paper with the SLURM profile and stand-in assets),
the asset stop, and a smoke run of the whole workflow on a reduced grid (marked slow)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")
pytestmark = pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed")


def snakemake(*args, cwd=REPO, env=None, timeout=600):
    e = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
         "LPA_PROGRESS": "off", "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=timeout)


def test_lint():
    r = snakemake("--lint", "--directory", str(REPO))
    assert r.returncode == 0, r.stdout + r.stderr


def test_dry_run_demo_full_grid(tmp_path):
    r = snakemake("-n", "--directory", str(tmp_path), "all", "--config", "experiment=demo")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for rule, n in (("train", 2), ("search", 48), ("reference", 36), ("evaluate", 86), ("hwsim", 20)):
        assert any(line.split() == [rule, str(n)] for line in out.splitlines()), (rule, out[-2000:])


@pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                    reason="snakemake-executor-plugin-slurm not installed (extra `cluster`)")
def test_dry_run_paper_slurm_profile(tmp_path, fake_assets):
    env = {"LPA_IMAGENET": os.environ["LPA_IMAGENET"], "LPA_WEIGHTS_DIR": os.environ["LPA_WEIGHTS_DIR"],
           "LPA_SLURM_ACCOUNT": "acct", "LPA_SLURM_PARTITION": "gpu"}
    r = snakemake("-n", "--profile", str(REPO / "profiles/slurm"), "--workflow-profile", "none",
                  "--directory", str(tmp_path), "all", "--config", "experiment=paper", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "slurm_account=acct" in r.stdout and "cpus_per_gpu=8" in r.stdout
    assert any(line.split() == ["search", str(6 * 6 * 4 * 3)] for line in r.stdout.splitlines())


def test_paper_without_assets_stops_before_any_job(tmp_path):
    env = {"LPA_IMAGENET": str(tmp_path / "none"), "LPA_WEIGHTS_DIR": "", "HF_HUB_CACHE": str(tmp_path / "hf")}
    r = snakemake("-n", "--directory", str(tmp_path), "all", env=env)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "required local assets are missing" in text and "make demo" in text and "huggingface-cli" in text
    assert not (tmp_path / "results").exists()


def _cifar_stand_ins(base: Path, depths=(20, 32, 44, 56)) -> dict:
    """Stand-in CIFAR-10 folders and published-name checkpoints (the asset check reads existence only)."""
    for split in ("test", "train"):
        (base / "cifar" / split / "cat").mkdir(parents=True)
        (base / "cifar" / split / "cat" / "0.png").write_bytes(b"stand-in")
    (base / "w").mkdir()
    for d in depths:
        (base / "w" / f"resnet{d}-0123abcd.th").write_bytes(b"stand-in")
    return {"LPA_CIFAR10": str(base / "cifar"), "LPA_CIFAR_WEIGHTS": str(base / "w")}


def test_dry_run_cifar_full_grid(tmp_path):
    """4 published ResNets x 6 families x 5 budgets x 3 seeds; references at the 3 fixed budgets; FP32."""
    env = _cifar_stand_ins(tmp_path / "assets")
    r = snakemake("-n", "--directory", str(tmp_path), "all", "--config", "experiment=cifar", env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    counts = {"calibrate": 4, "search": 4 * 6 * 5 * 3, "reference": 4 * 6 * 3, "evaluate": 360 + 72 + 4}
    for rule, n in counts.items():
        assert any(line.split() == [rule, str(n)] for line in r.stdout.splitlines()), (rule, r.stdout[-2000:])
    assert "model.checkpoint=" + str(tmp_path / "assets/w/resnet56-0123abcd.th") in r.stdout
    assert "lpq search experiment=cifar model=cifar_resnet20" in r.stdout


def test_cifar_reference_budgets_narrow_the_grid(tmp_path):
    env = _cifar_stand_ins(tmp_path / "assets", depths=(32,))
    r = snakemake("-n", "--directory", str(tmp_path), "all", "--config", "experiment=cifar",
                  'overrides=["experiment.models=[cifar_resnet32]","experiment.formats=[lp,int]",'
                  '"experiment.budgets=[w4a4-mix,w4a8-mix]","experiment.reference_budgets=[w8a8,w4a4]",'
                  '"experiment.seeds=[0]"]', env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for rule, n in (("search", 4), ("reference", 4), ("evaluate", 4 + 4 + 1)):
        assert any(line.split() == [rule, str(n)] for line in r.stdout.splitlines()), (rule, r.stdout[-2000:])
    assert "ref/cifar_resnet32/lp/w8a8/qconfig.json" in r.stdout


def test_reconstruct_stage_between_search_and_evaluate(tmp_path):
    """quant.reconstruct=brecq adds one reconstruct job per quantized evaluation point (its own digest); each
    evaluate job reads that job's rounding.pt; no search or reference job depends on it."""
    env = _cifar_stand_ins(tmp_path / "assets", depths=(32,))
    r = snakemake("-n", "-p", "--directory", str(tmp_path), "all", "--config", "experiment=cifar",
                  'overrides=["experiment.models=[cifar_resnet32]","experiment.formats=[lp,int]",'
                  '"experiment.budgets=[w4a4-mix]","experiment.reference_budgets=[w4a4]",'
                  '"experiment.seeds=[0]","quant.reconstruct=brecq","quant.recon.iters=200"]', env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for rule, n in (("search", 2), ("reference", 2), ("reconstruct", 4), ("evaluate", 4 + 1)):
        assert any(line.split() == [rule, str(n)] for line in r.stdout.splitlines()), (rule, r.stdout[-2000:])
    recon = "results/cifar/recon/cifar_resnet32/lpq/lp/w4a4-mix/s0/rounding.pt"
    assert "lpq reconstruct " in r.stdout and "quant.config=results/cifar/search/cifar_resnet32/lp/w4a4-mix/s0/qconfig.json" in r.stdout
    assert f"quant.rounding={recon}" in r.stdout
    from lpq.pipeline.grid import Grid

    base = ["experiment.models=[cifar_resnet32]", "experiment.seeds=[0]"]
    off, on = Grid("cifar", base), Grid("cifar", [*base, "quant.reconstruct=brecq"])
    wc = {"model": "cifar_resnet32", "fmt": "lp", "wa": "w4a4-mix", "seed": "0"}
    assert off.cfg_digest("search", wc) == on.cfg_digest("search", wc)  # reconstruction reruns no search
    assert off.cfg_digest("reconstruct", wc) != on.cfg_digest("reconstruct", wc)
    assert not off.reconstruct and on.reconstruct


def test_cifar_without_assets_stops_before_any_job(tmp_path):
    env = {"LPA_CIFAR10": str(tmp_path / "none"), "LPA_CIFAR_WEIGHTS": str(tmp_path)}
    r = snakemake("-n", "--directory", str(tmp_path), "all", "--config", "experiment=cifar", env=env)
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "required local assets are missing" in text
    assert f"{tmp_path}/resnet32-<hash>.th does not exist" in text
    assert "akamaster/pytorch_resnet_cifar10" in text and "LPA_CIFAR_WEIGHTS" in text
    assert f"data.root={tmp_path / 'none'} does not exist" in text and "LPA_CIFAR10" in text
    assert not (tmp_path / "results").exists()


# Timing fields are the only run-to-run differences allowed in result files (PIPELINE §8; the issue keeps
# `seconds` in search_log.csv and wall time in search.json); env.json, logs, benchmarks and MLflow bookkeeping
# are excluded as the spec says.
TIMING_KEYS = {"seconds", "eval_seconds", "wall_s"}
NOT_COMPARED = {"env.json", "mlflow_ingest.json"}
INTERNAL_DIRS = {".ckpt"}  # the search's resume state (holds per-generation timings), not a result


def _masked(path: Path) -> bytes:
    if path.suffix == ".json":
        obj = json.loads(path.read_text())
        if isinstance(obj, dict):
            obj = {k: ("<timing>" if k in TIMING_KEYS else v) for k, v in obj.items()}
        return json.dumps(obj, sort_keys=True).encode()
    if path.name == "search_log.csv" or path.parent.name == "tables" and path.suffix in (".csv", ".md", ".tex"):
        return _mask_columns(path.read_text(), path.suffix)
    return path.read_bytes()


def _mask_columns(text: str, suffix: str) -> bytes:
    """Mask the timing columns (header in TIMING_KEYS) of a CSV, Markdown or LaTeX table."""
    split, join = {".csv": (lambda l: l.split(","), ","), ".md": (lambda l: l.split("|"), "|"),
                   ".tex": (lambda l: l.split("&"), "&")}[suffix]
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines) if {c.strip().replace("\\_", "_") for c in split(line)} & TIMING_KEYS), None)
    if header is None:
        return text.encode()
    cols = [i for i, c in enumerate(split(lines[header])) if c.strip().replace("\\_", "_") in TIMING_KEYS]
    out = []
    for n, line in enumerate(lines):
        cells = split(line)
        if n > header and len(cells) == len(split(lines[header])):
            cells = ["<timing>" if i in cols else c for i, c in enumerate(cells)]
        out.append(join.join(cells))
    return "\n".join(out).encode()


def _run_smoke(root: Path, mlflow_template: Path):
    db = root / "mlflow.db"
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(mlflow_template, db)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    r = snakemake("--cores", "2", "--directory", str(root), "all", "--config", "experiment=smoke", env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return env


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, mlflow_template) -> tuple[Path, dict]:
    """One smoke run of the whole workflow per module (its directory and the env it ran with)."""
    root = tmp_path_factory.mktemp("smoke")
    return root, _run_smoke(root, mlflow_template)


@pytest.mark.slow
def test_smoke_workflow_end_to_end(smoke_run, tmp_path, mlflow_template):
    """Whole workflow on the smoke grid in a scratch directory, then idempotent re-run, the report, and a second
    run elsewhere whose result files are byte-identical (timing fields masked)."""
    root, env = smoke_run
    res = root / "results" / "smoke"
    for name in ("summary", "accuracy", "compression", "hardware", "paired", "search"):
        for ext in ("md", "csv", "tex"):
            assert (res / "tables" / f"{name}.{ext}").is_file()
    acc = (res / "tables" / "accuracy.md").read_text()
    assert "| digits_cnn | lp | w4a4-mix | lpq |" in acc and "| digits_cnn | int | w4a4 | none |" in acc
    for name in ("accuracy_vs_bits", "bit_allocation", "hardware", "weights_digits_cnn_w4a4-mix_s0"):
        assert (res / "figures" / f"{name}.png").is_file()
    assert (root / "logs/smoke/search/digits_cnn/lp/w4a4-mix/s0.log").is_file()
    assert (root / "benchmarks/smoke/search/digits_cnn/lp/w4a4-mix/s0.tsv").is_file()
    ingest = json.loads((res / "mlflow_ingest.json").read_text())
    assert ingest["created"] > 0
    record = json.loads((res / "search/digits_cnn/lp/w4a4-mix/s0/env.json").read_text())
    for key in ("device", "seeds", "start_utc", "end_utc", "wall_s", "cfg_digest", "versions", "git"):
        assert key in record, key
    assert record["seeds"] == {"seed": 0, "calib.seed": 0}
    # nothing to do the second time (params/digests unchanged)
    r2 = snakemake("-n", "--directory", str(root), "all", "--config", "experiment=smoke", env=env)
    assert r2.returncode == 0 and "Nothing to be done" in r2.stdout + r2.stderr, r2.stdout[-2000:]
    r3 = snakemake("--directory", str(root), "all", "--config", "experiment=smoke",
                   "--report", str(res / "report.html"), env=env)
    assert r3.returncode == 0, r3.stdout[-2000:] + r3.stderr[-2000:]
    assert (res / "report.html").stat().st_size > 10000

    # PIPELINE §8 reproducibility: the same smoke run in another directory gives the same result files
    again = tmp_path / "again"
    _run_smoke(again, mlflow_template)
    res2 = again / "results" / "smoke"
    def compared(root: Path) -> list[Path]:
        return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.name not in NOT_COMPARED
                      and p.name != "report.html" and not INTERNAL_DIRS & set(p.relative_to(root).parts))

    files, files2 = compared(res), compared(res2)
    assert files == files2
    differing = [str(f) for f in files if _masked(res / f) != _masked(res2 / f)]
    assert not differing, differing
    assert len(files) > 40


# what docs/workflow.md says a user compares in the MLflow UI, by job rule
USER_METRICS = {"evaluate": ("top1", "delta_top1", "fp32_top1", "avg_w_bits", "avg_a_bits", "compression"),
                "search": ("fitness", "avg_w_bits", "compression", "evaluations", "wall_s"),
                "hwsim": ("energy_pj.total", "latency_ms", "tops_per_w", "perf_per_area_gops_mm2")}


@pytest.mark.slow
def test_mlflow_server_shows_the_smoke_run(smoke_run):
    """A real `mlflow server` on 127.0.0.1 over the smoke run's database: through its REST API the experiment, the
    parent run, one child per job (each family x budget) and the metrics a user compares are there, by name."""
    from lpq.pipeline.mlflow_server import api, search_runs, serve

    root, _env = smoke_run
    with serve(root / "mlflow.db") as url:
        exp, runs = search_runs(url, "lpa/smoke")

        def kv(run, part):
            return {x["key"]: x["value"] for x in run["data"].get(part, [])}

        parents = [r for r in runs if kv(r, "tags").get("lpa.role") == "parent"]
        assert len(parents) == 1 and parents[0]["info"]["run_name"] == "sweep/smoke"
        parent = parents[0]["info"]["run_id"]
        children = [r for r in runs if kv(r, "tags").get("mlflow.parentRunId") == parent]
        jobs = list((root / "results" / "smoke").glob("*/**/env.json"))
        assert len(children) == len(runs) - 1 == len(jobs) >= 15, (len(children), len(runs), len(jobs))
        by_rule: dict[str, list] = {}
        for r in children:
            by_rule.setdefault(kv(r, "tags")["lpa.job"].split("/", 1)[0], []).append(r)
        assert {"evaluate", "search", "reference", "hwsim", "calibrate"} <= set(by_rule), sorted(by_rule)
        for rule, names in USER_METRICS.items():
            for r in by_rule[rule]:
                missing = set(names) - set(kv(r, "metrics"))
                if rule == "evaluate" and kv(r, "params").get("wc.fmt") == "fp32":
                    missing -= {"avg_w_bits", "avg_a_bits", "compression"}  # the FP32 reference has no bit widths
                assert not missing, (kv(r, "tags")["lpa.job"], missing)
        searched = {(kv(r, "params")["wc.fmt"], kv(r, "params")["wc.wa"]) for r in by_rule["evaluate"]
                    if kv(r, "params").get("wc.method") == "lpq"}
        assert searched == {(f, b) for f in ("lp", "int") for b in ("w4a4", "w4a4-mix")}, searched
        lp = next(r for r in by_rule["evaluate"] if kv(r, "params").get("wc.method") == "lpq"
                  and kv(r, "params")["wc.fmt"] == "lp" and kv(r, "params")["wc.wa"] == "w4a4-mix")
        metrics = kv(lp, "metrics")
        assert abs(metrics["delta_top1"] - (metrics["top1"] - metrics["fp32_top1"])) < 1e-9
        search = next(r for r in by_rule["search"] if kv(r, "tags")["lpa.job"].endswith("fmt=lp/wa=w4a4-mix/seed=0"))
        history = api(url, f"metrics/get-history?run_id={search['info']['run_id']}&metric_key=log.best_fitness")
        assert len(history["metrics"]) >= 2  # per generation, so the UI draws the search curve


def _finished_jobs(log_text: str) -> dict[int, list[str]]:
    """jobid -> output files of each job a Snakemake log reports as finished ("Finished jobid: N")."""
    import re

    outputs: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in log_text.splitlines():
        if re.match(r"^(local)?rule \w+:$", line.strip()):
            current = []
        elif current is not None and line.strip().startswith("output:"):
            current = [o.strip() for o in line.strip()[len("output:"):].split(",") if o.strip()]
        elif current is not None and line.strip().startswith("jobid:"):
            outputs[int(line.split(":")[1])] = current
            current = None
    done = {int(m) for m in re.findall(r"Finished jobid: (\d+)", log_text)}
    return {j: outs for j, outs in outputs.items() if j in done}


def _job_models(dry_run_text: str) -> list[tuple[str, str | None]]:
    """(rule, model wildcard or None) of every job a dry run lists."""
    jobs, rule = [], None
    for line in dry_run_text.splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            if rule is not None:
                jobs.append((rule, None))
            rule = line.split()[1].rstrip(":")
        elif line.startswith("wildcards:") and rule is not None:
            wc = dict(kv.strip().split("=", 1) for kv in line[len("wildcards:"):].split(","))
            jobs.append((rule, wc.get("model")))
            rule = None
    if rule is not None:
        jobs.append((rule, None))
    return jobs


def _default_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.isolated  # its own pytest process (see the README: a single SIGINT was once swallowed)
def test_workflow_kill_resume_and_targeted_rerun(tmp_path):
    """PIPELINE acceptance: a run killed midway completes on restart without redoing finished jobs; a second run
    does nothing; editing one model's config reruns exactly that model's jobs (plus the aggregates)."""
    import signal
    import time

    conf = tmp_path / "conf"
    shutil.copytree(REPO / "conf", conf)
    env = {"LPQ_CONF_DIR": str(conf)}
    grid = ('overrides=["experiment.models=[digits_cnn,digits_vit]","experiment.formats=[int]",'
            '"experiment.budgets=[w4a4]","experiment.designs=[int8]","tracking=off"]')
    args = ["--cores", "2", "--directory", str(tmp_path), "all", "--config", "experiment=smoke", grid]
    res = tmp_path / "results" / "smoke"

    # 1. start, wait until the first jobs are finished, interrupt like Ctrl-C (SIGINT to the process group)
    e = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
         "LPA_PROGRESS": "off", "HF_HUB_OFFLINE": "1", **env}
    first = res / "train" / "digits_cnn" / "model.pt"
    for attempt in range(3):  # on a loaded machine the interruption can miss the running jobs: start over
        shutil.rmtree(tmp_path / "results", ignore_errors=True)
        shutil.rmtree(tmp_path / ".snakemake", ignore_errors=True)
        log_file = tmp_path / f"interrupted-{attempt}.log"
        with open(log_file, "w") as log_out:
            # SIGINT back to its default before exec: a process started in the background of a non-interactive
            # shell (`make test &`, some CI runners) inherits SIGINT as ignored, and Python then never raises
            # KeyboardInterrupt (seen: the workflow ran to completion through 40 SIGINTs)
            proc = subprocess.Popen([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), *args], cwd=REPO, env=e,
                                    stdout=log_out, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_default_sigint)
        # wait until Snakemake itself records the digits_cnn train job as finished ("Finished jobid: N"): an
        # output file can exist while its job still runs (the job writes env.json after model.pt)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            if any(str(first.relative_to(tmp_path)) in outs for outs in _finished_jobs(log_file.read_text()).values()):
                break
            time.sleep(0.5)
        assert any(str(first.relative_to(tmp_path)) in outs for outs in _finished_jobs(log_file.read_text()).values()), \
            "the first job never finished:\n" + log_file.read_text()[-3000:]
        time.sleep(2.0)  # let the next jobs start, so the interruption hits running jobs
        # Ctrl-C, repeated every 3 s until the workflow stops: Snakemake can swallow a single SIGINT that
        # arrives while it schedules jobs (seen on CI: it then ran to completion)
        rc = None
        for _ in range(40):
            if proc.poll() is not None:
                break
            os.killpg(proc.pid, signal.SIGINT)
            try:
                rc = proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                continue
        rc = proc.wait(timeout=120) if rc is None else rc
        if rc != 0:
            break
    else:
        raise AssertionError("the run finished before it could be interrupted (3 attempts); last log:\n"
                             + log_file.read_text()[-4000:])
    # every output of every job Snakemake finished before the interruption, with its mtime
    finished = _finished_jobs(log_file.read_text())
    done_before = {tmp_path / o: (tmp_path / o).stat().st_mtime_ns for outs in finished.values() for o in outs}
    assert first in done_before

    # 2. start again: completes; no finished job is redone (every output it wrote is kept as it was)
    r = snakemake(*args, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    redone = [str(p) for p, t in done_before.items() if not p.exists() or p.stat().st_mtime_ns != t]
    assert not redone, ("finished before the interruption, redone after it", redone, log_file.read_text()[-3000:])
    assert (res / "tables" / "accuracy.md").is_file()

    # 3. nothing to do the second time
    r = snakemake("-n", *args, env=env)
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr, r.stdout[-2000:]

    # 4. edit one model's config: only its jobs (and the tables/figures built from all jobs) rerun
    cfg = conf / "model" / "digits_vit.yaml"
    cfg.write_text(cfg.read_text() + "note: edited by the targeted-rerun test\n")
    r = snakemake("-n", *args, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs = _job_models(r.stdout)
    per_model = {m for _, m in jobs if m is not None}
    assert per_model == {"digits_vit"}, jobs
    assert {rule for rule, m in jobs if m is None} <= {"tables", "figures", "all"}, jobs
    assert {rule for rule, _ in jobs} >= {"train", "reference", "search", "evaluate"}
