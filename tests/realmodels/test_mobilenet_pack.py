"""The pack's real ImageNet MobileNet v1 0.25 (TF.js layers files) and its 500 ImageNet images: the FP32 count of
the pack README exactly, the equalized model computing the same predictions, and the 8-bit results of
docs/results.md (class-disjoint split data.split_every=5: 100 calibration / 400 validation images). Skipped, with
the reason, when the pack is not next to the project."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACK = REPO.parent / "shared" / "realmodels"
MODEL = PACK / "imagenet_mobilenet_v1_025"
IMAGES = PACK / "imagenet_sample500"
FP32_CORRECT, FP32_TOP5 = 293, 79.6  # pack README, "Measured FP32 top-1 on imagenet_sample500/"
SPLIT_FP32 = 57.5  # 230 / 400 on the validation part of data.split_every=5

pytestmark = [
    pytest.mark.skipif(not (MODEL / "model.json").is_file() or not IMAGES.is_dir(),
                       reason=f"real-model pack not found at {PACK} (imagenet_mobilenet_v1_025/ and "
                              "imagenet_sample500/): see README 'Real networks'"),
    pytest.mark.slow,
]

BASE = ["model=mobilenet_v1_025_tfjs", f"model.checkpoint={MODEL}", "data=imagefolder", f"data.val_root={IMAGES}"]
SPLIT = ["data.split_every=5", "calib.num_samples=100", "calib.batch=50"]


def _evaluate(out: Path, *extra: str) -> tuple[dict, list[dict]]:
    env = {**os.environ, "LPA_PROGRESS": "off", "OMP_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, "-m", "lpq", "evaluate", *BASE, *extra, f"out_dir={out}"],
                       capture_output=True, text=True, timeout=900, env=env, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with open(out / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    return json.loads((out / "metrics.json").read_text()), rows


def test_fp32_reproduces_the_pack_count(tmp_path):
    metrics, rows = _evaluate(tmp_path, f"data.calib_root={IMAGES}")
    assert metrics["num_samples"] == 500 and metrics["labels"] == "imagenet"
    assert sum(r["label"] == r["top1"] for r in rows) == FP32_CORRECT
    assert metrics["top5"] == pytest.approx(FP32_TOP5)
    assert metrics["preprocess"]["rounding"] == "round_floor" and metrics["preprocess"]["mean"] == [0.5] * 3


@pytest.fixture(scope="module")
def split_fp32(tmp_path_factory):
    return _evaluate(tmp_path_factory.mktemp("fp32"), *SPLIT)


@pytest.mark.parametrize("mode", ["true", "absorb"])
def test_equalized_fp32_model_predicts_the_same(split_fp32, tmp_path, mode):
    metrics, rows = _evaluate(tmp_path, *SPLIT, f"quant.equalize={mode}")
    assert split_fp32[0]["top1"] == pytest.approx(SPLIT_FP32)
    same = sum(a["top1"] == b["top1"] for a, b in zip(rows, split_fp32[1]))
    assert same == len(rows) == 400
    assert metrics["equalization"]["chains"] == 27


# (format, overrides, least top-1 measured minus 1 point): the 8-bit results in docs/results.md that the defects'
# fixes brought within reach; what they still miss is reported there, not asserted here.
CASES = {
    "lp_activations_absorb": ("lp<8,*,*,*>", ["quant.a_format={f}", "quant.equalize=absorb"], 56.0),
    "int_activations_absorb": ("int<8>", ["quant.a_format={f}", "quant.equalize=absorb"], 56.0),
    "fp8_activations_absorb": ("fp8_e4m3", ["quant.a_format={f}", "quant.equalize=absorb"], 53.5),
    "lp_per_tensor_equalized": ("lp<8,*,*,*>", ["quant.w_format={f}", "quant.a_format={f}", "quant.equalize=true"],
                                55.5),
    "int_per_channel_fixed": ("int<8>", ["quant.w_format={f}", "quant.a_format={f}", "quant.per_channel=true",
                                         "quant.equalize=absorb", "quant.bias_correction=true"], 55.0),
    "lp_per_channel_fixed": ("lp<8,*,*,*>", ["quant.w_format={f}", "quant.a_format={f}", "quant.per_channel=true",
                                             "quant.equalize=absorb", "quant.bias_correction=true"], 55.25),
    "fp8_per_channel_fixed": ("fp8_e4m3", ["quant.w_format={f}", "quant.a_format={f}", "quant.per_channel=true",
                                           "quant.equalize=absorb", "quant.bias_correction=true"], 53.0),
    # the LP per-channel sf window (lpq.quant.calibrate.sf_candidates): 39.50 before, 53.50 after, INT8 52.50
    "lp_weights_per_channel": ("lp<8,*,*,*>", ["quant.w_format={f}", "quant.per_channel=true"], 52.5),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_eight_bit_results(split_fp32, tmp_path, case):
    fmt, over, least = CASES[case]
    # the 8-bit table of docs/results.md was measured with signed activations (the default then)
    metrics, _ = _evaluate(tmp_path, *SPLIT, "quant.unsigned_acts=off", *[o.format(f=fmt) for o in over])
    assert metrics["top1"] >= least, (case, metrics["top1"])
