"""Real pretrained CIFAR-10 ResNets of ../shared/realmodels (the pack's README gives the exact FP32 counts):
`lpq evaluate` reproduces them, uniform W8A8 LP and INT stay within 0.5 point, and a narrowed `cifar` workflow
run produces its tables. Skipped, with the reason, when the pack is not next to the project."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACK = REPO.parent / "shared" / "realmodels"
CKPT = {32: PACK / "resnet32-d509ac18.th", 44: PACK / "resnet44-014dd654.th"}
FP32_CORRECT = {32: 8256, 44: 8267}  # pack README, "Measured FP32 top-1 on cifar10_jpeg/test"
IMAGES = PACK / "cifar10_jpeg"

pytestmark = [
    pytest.mark.skipif(not (IMAGES / "test").is_dir() or not all(p.is_file() for p in CKPT.values()),
                       reason=f"real-model pack not found at {PACK} (CIFAR-10 ResNet-32/44 checkpoints and "
                              "cifar10_jpeg/): see README 'Real networks'"),
    pytest.mark.slow,
]


def _lpq(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "LPA_PROGRESS": "off", "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, "-m", "lpq", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=REPO)


def _evaluate(depth: int, out: Path, *extra: str) -> tuple[dict, int]:
    r = _lpq("evaluate", f"model=cifar_resnet{depth}", f"model.checkpoint={CKPT[depth]}", "data=cifar10",
             f"data.root={IMAGES}", *extra, f"out_dir={out}")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    with open(out / "predictions.csv") as fh:
        correct = sum(row["label"] == row["top1"] for row in csv.DictReader(fh))
    return metrics, correct


@pytest.fixture(scope="module")
def fp32(tmp_path_factory):
    return {d: _evaluate(d, tmp_path_factory.mktemp(f"fp32_{d}")) for d in (32, 44)}


@pytest.mark.parametrize("depth", [32, 44])
def test_fp32_reproduces_the_pack_count(fp32, depth):
    metrics, correct = fp32[depth]
    assert metrics["num_samples"] == 10_000
    assert correct == FP32_CORRECT[depth]
    assert metrics["top1"] == pytest.approx(FP32_CORRECT[depth] / 100)


@pytest.mark.parametrize("depth", [32, 44])
@pytest.mark.parametrize("fmt", ["lp<8,*,*,*>", "int<8>"])
def test_uniform_w8a8_within_half_a_point(fp32, tmp_path, depth, fmt):
    metrics, correct = _evaluate(depth, tmp_path, f"quant.w_format={fmt}", f"quant.a_format={fmt}")
    assert metrics["avg_w_bits"] == 8 and metrics["avg_a_bits"] == 8
    assert abs(correct - FP32_CORRECT[depth]) <= 50, (fmt, correct)  # 0.5 point of 10 000 images


def test_narrowed_cifar_workflow_on_the_pack(tmp_path):
    """ResNet-32, two families, one mixed budget (with its uniform reference), a tiny GA, 500 validation images."""
    snakemake = shutil.which("snakemake", path=str(Path(sys.executable).parent))
    if snakemake is None:
        pytest.skip("snakemake is not installed")
    overrides = ["experiment.models=[cifar_resnet32]", "experiment.formats=[lp,int]", "experiment.seeds=[0]",
                 "experiment.budgets=[w4a4-mix]", "experiment.reference_budgets=[w4a4]",
                 "experiment.designs=[lpa,int8]", "experiment.hw_baseline=int8",
                 "search.population=4", "search.generations=1", "search.patience=1", "search.max_evals=8",
                 "calib.num_samples=64", "eval.max_samples=500"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "LPA_PROGRESS": "off", "LPA_CIFAR_WEIGHTS": str(PACK), "LPA_CIFAR10": str(IMAGES)}
    r = subprocess.run([snakemake, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
                        "--cores", "2", "all", "--config", "experiment=cifar",
                        "overrides=[" + ",".join(f'"{o}"' for o in overrides) + "]"],
                       capture_output=True, text=True, env=env, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    root = tmp_path / "results" / "cifar"
    for name in ("summary", "accuracy", "compression", "hardware", "paired", "search"):
        for ext in ("md", "csv", "tex"):
            assert (root / "tables" / f"{name}.{ext}").is_file(), (name, ext)
    acc = list(csv.DictReader(open(root / "tables" / "accuracy.csv")))
    got = {(row["format"], row["method"], row["budget"]) for row in acc}
    assert got == {("lp", "lpq", "w4a4-mix"), ("int", "lpq", "w4a4-mix"), ("lp", "none", "w4a4"),
                   ("int", "none", "w4a4")}
    fp = json.loads((root / "eval/cifar_resnet32/none/fp32/w32a32/s0/metrics.json").read_text())
    assert fp["num_samples"] == 500 and fp["model"] == "cifar_resnet32"
    assert "cifar_resnet32" in (root / "tables" / "paired.md").read_text()
