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


@pytest.mark.slow
def test_smoke_workflow_end_to_end(tmp_path, mlflow_template):
    """Whole workflow on the smoke grid in a scratch directory, then idempotent re-run and the report."""
    db = tmp_path / "mlflow.db"
    shutil.copy(mlflow_template, db)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    r = snakemake("--cores", "2", "--directory", str(tmp_path), "all", "--config", "experiment=smoke", env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    res = tmp_path / "results" / "smoke"
    for name in ("accuracy", "compression", "hardware"):
        for ext in ("md", "csv", "tex"):
            assert (res / "tables" / f"{name}.{ext}").is_file()
    acc = (res / "tables" / "accuracy.md").read_text()
    assert "| digits_cnn | lp | w4a4-mix | lpq |" in acc and "| digits_cnn | int | w4a4 | none |" in acc
    for name in ("accuracy_vs_bits", "bit_allocation", "hardware"):
        assert (res / "figures" / f"{name}.png").is_file()
    assert (tmp_path / "logs/smoke/search/digits_cnn/lp/w4a4-mix/s0.log").is_file()
    assert (tmp_path / "benchmarks/smoke/search/digits_cnn/lp/w4a4-mix/s0.tsv").is_file()
    ingest = json.loads((res / "mlflow_ingest.json").read_text())
    assert ingest["created"] > 0
    # nothing to do the second time (params/digests unchanged)
    r2 = snakemake("-n", "--directory", str(tmp_path), "all", "--config", "experiment=smoke", env=env)
    assert r2.returncode == 0 and "Nothing to be done" in r2.stdout + r2.stderr, r2.stdout[-2000:]
    r3 = snakemake("--directory", str(tmp_path), "all", "--config", "experiment=smoke",
                   "--report", str(res / "report.html"), env=env)
    assert r3.returncode == 0, r3.stdout[-2000:] + r3.stderr[-2000:]
    assert (res / "report.html").stat().st_size > 10000
