"""`lpq train` / `lpq evaluate` end to end, in process (PIPELINE §4.3, LPQ §11): Hydra
composition and spec quoting, the files written, qconfig round trip, determinism, and exit
code 2 with a message naming the problem for bad inputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lpq.cli import compose, main, quote_spec_overrides
from lpq.formats import parse
from lpq.quant.qconfig import QConfig

CNN_UNITS = ["stem.0", "layer1.conv1", "layer1.conv2", "layer2.conv1", "layer2.conv2", "layer2.shortcut.0", "fc"]
CNN_OUT_CHANNELS = {"stem.0": 16, "layer1.conv1": 16, "layer1.conv2": 16, "layer2.conv1": 32, "layer2.conv2": 32,
                    "layer2.shortcut.0": 32, "fc": 10}
CAL = ["calib.num_samples=64", "calib.subsample=16384"]  # small calibration keeps the suite fast
LP8 = ["quant.w_format=lp<8,*,*,*>", "quant.a_format=lp<8,*,*,*>"]  # as the shell passes 'lp<8,*,*,*>'
METRIC_KEYS = {"top1", "top5", "num_samples", "model", "avg_w_bits", "avg_a_bits", "seconds"}
TIMING_KEYS = {"seconds", "eval_seconds"}


def _read(path: Path) -> dict:
    return json.loads(Path(path).read_text())


# ---- composition and quoting ----------------------------------------------------------------------

def test_quote_spec_overrides():
    assert quote_spec_overrides(["quant.w_format=lp<8,*,*,*>"]) == ['quant.w_format="lp<8,*,*,*>"']
    assert quote_spec_overrides(["quant.a_format=int<8>@3.5"]) == ['quant.a_format="int<8>@3.5"']
    already = ["quant.w_format='lp<8,1,3,0.5>'", 'quant.a_format="lp<8,*,*,*>"']
    assert quote_spec_overrides(already) == already
    others = ["model=digits_cnn", "quant.skip=[fc,stem.0]", "out_dir=/tmp/x,y", "seed=3", "quant.config=q.json"]
    assert quote_spec_overrides(others) == others
    assert quote_spec_overrides(["+quant.w_format=lp<4,*,*,*>"]) == ['+quant.w_format="lp<4,*,*,*>"']


def test_compose_spec_strings_and_defaults():
    cfg = compose(["quant.w_format=lp<8,*,*,*>", "quant.a_format='lp<6,1,3,0.5>'", "out_dir=/tmp/o"])
    assert cfg.quant.w_format == "lp<8,*,*,*>" and cfg.quant.a_format == "lp<6,1,3,0.5>"
    d = compose([])
    assert d.model.name == "digits_cnn" and d.model.kind == "embedded" and d.data.kind == "embedded"
    assert (d.calib.num_samples, d.calib.batch, d.calib.seed, d.calib.subsample) == (256, 64, 0, 65536)  # LPQ §7
    q = d.quant
    assert (q.w_format, q.a_format, q.config, q.per_channel, list(q.skip), q.attention_matmuls) == \
        ("none", "none", None, False, [], True)
    assert d.seed == 0 and d.out_dir is None and d.device == "cpu"
    t = compose(["model=timm", "model.name=resnet18"])
    assert t.model.kind == "timm" and t.model.checkpoint is None


def test_help_and_usage(capsys):
    assert main(["--help"]) == 0
    assert "lpq train" in capsys.readouterr().out
    assert main([]) == 2


# ---- a trained digits_cnn, shared by the end-to-end tests ------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_cnn")
    assert main(["train", "model=digits_cnn", f"out_dir={out}"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(trained, tmp_path_factory):
    """Evaluations run once per module, on demand: name -> out_dir."""
    cache: dict[str, Path] = {}
    ckpt = [f"model.checkpoint={trained / 'model.pt'}"]

    def get(name: str, *extra: str) -> Path:
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            rc = main(["evaluate", "model=digits_cnn", *ckpt, f"out_dir={out}", *extra])
            assert rc == 0, name
            cache[name] = out
        return cache[name]

    return get


def test_train_outputs(trained):
    assert (trained / "model.pt").is_file()
    info = _read(trained / "train.json")
    assert info["model"] == "digits_cnn" and info["seed"] == 0
    assert info["val_top1"] > 90.0
    state = torch.load(trained / "model.pt", weights_only=True)
    assert "stem.1.running_mean" in state
    assert (trained / ".hydra" / "config.yaml").is_file() and (trained / ".hydra" / "overrides.yaml").is_file()


def test_evaluate_fp32(trained, runs):
    out = runs("fp32")
    m = _read(out / "metrics.json")
    assert METRIC_KEYS <= set(m) and m["w_format"] == "none" and m["a_format"] == "none"
    assert m["num_samples"] == 400 and m["model"] == "digits_cnn"
    assert m["avg_w_bits"] is None and m["avg_a_bits"] is None and m["quantized_layers"] == 0
    assert m["weights_source"] == f"checkpoint:{trained / 'model.pt'}" and m["data_source"].startswith("embedded")
    # BN folding keeps the network: accuracy equals the training run's (one flipped near-tie at most)
    assert abs(m["top1"] - _read(trained / "train.json")["val_top1"]) <= 0.25
    q = _read(out / "qconfig.json")
    assert q["schema_version"] == 1 and q["layers"] == {}


def test_evaluate_uniform_lp8(runs):
    out = runs("lp8", *LP8, *CAL)
    m = _read(out / "metrics.json")
    assert METRIC_KEYS <= set(m)
    assert m["w_format"] == "lp<8,*,*,*>" and m["a_format"] == "lp<8,*,*,*>" and "qconfig" not in m
    assert m["avg_w_bits"] == 8.0 and m["avg_a_bits"] == 8.0 and m["compression"] == 4.0
    assert m["quantized_layers"] == 7 and m["num_samples"] == 400
    assert 0.0 <= m["top5"] <= 100.0 and m["top1"] <= m["top5"]
    fp = _read(runs("fp32") / "metrics.json")
    assert m["top1"] >= fp["top1"] - 2.0  # 8-bit LP is near lossless
    q = _read(out / "qconfig.json")
    assert q["schema_version"] == 1
    assert set(q["layers"]) == set(CNN_UNITS)
    for name, entry in q["layers"].items():
        assert set(entry) == {"w", "a"}, name
        for side in ("w", "a"):
            assert "*" not in entry[side]
            fmt = parse(entry[side])
            # quant.unsigned_acts=auto (default): a ReLU input gets ulp, the 8-bit unsigned variant
            assert fmt.family in ("lp", "ulp") and fmt.bits == 8 and fmt.spec == entry[side]
            assert fmt.family == "lp" or (side == "a" and name != CNN_UNITS[0])


def test_written_qconfig_lists_layers_in_execution_order(runs):
    """LPQ §11: one entry per quantized layer in execution order."""
    q = _read(runs("lp8", *LP8, *CAL) / "qconfig.json")
    assert list(q["layers"]) == CNN_UNITS


def test_reevaluate_written_qconfig_gives_identical_metrics(runs):
    first = runs("lp8", *LP8, *CAL)
    again = runs("lp8_from_config", f"quant.config={first / 'qconfig.json'}")
    m1, m2 = _read(first / "metrics.json"), _read(again / "metrics.json")
    for key in ("top1", "top5", "num_samples", "avg_w_bits", "avg_a_bits", "compression", "quantized_layers", "model"):
        assert m2[key] == m1[key], key
    assert m2["qconfig"] == str(first / "qconfig.json")
    assert "w_format" not in m2 and "a_format" not in m2
    assert _read(again / "qconfig.json")["layers"] == _read(first / "qconfig.json")["layers"]


def test_determinism_same_config_same_bytes(runs):
    a = runs("lp8", *LP8, *CAL)
    b = runs("lp8_repeat", *LP8, *CAL)
    assert (a / "qconfig.json").read_bytes() == (b / "qconfig.json").read_bytes()
    ma, mb = _read(a / "metrics.json"), _read(b / "metrics.json")
    assert set(ma) == set(mb)
    assert {k: v for k, v in ma.items() if k not in TIMING_KEYS} == {k: v for k, v in mb.items() if k not in TIMING_KEYS}


@pytest.mark.parametrize("fmt", ["int<4>", "lp<4,*,*,*>"])
def test_per_channel_weights_round_trip(runs, fmt):
    tag = "pc_" + fmt.split("<")[0]
    out = runs(tag, f"quant.w_format={fmt}", "quant.per_channel=true", *CAL)
    q = _read(out / "qconfig.json")
    assert set(q["layers"]) == set(CNN_UNITS)
    for name, entry in q["layers"].items():
        assert entry["a"] is None
        assert entry["w"].endswith("@ch") and entry["w"].startswith(fmt.split("<")[0] + "<4")
        assert len(entry["w_sf"]) == CNN_OUT_CHANNELS[name], name
        assert all(isinstance(v, float) for v in entry["w_sf"])
    m = _read(out / "metrics.json")
    assert m["avg_w_bits"] == 4.0 and m["avg_a_bits"] is None
    qc = QConfig.load(out / "qconfig.json")
    wq, _ = qc.quantizers()["fc"]
    assert len(wq.channel_sf) == 10
    again = runs(tag + "_cfg", f"quant.config={out / 'qconfig.json'}")
    m2 = _read(again / "metrics.json")
    for key in ("top1", "top5", "num_samples", "avg_w_bits", "avg_a_bits"):
        assert m2[key] == m[key], key
    assert _read(again / "qconfig.json")["layers"] == q["layers"]


# ---- ViT, python entry --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vit_ckpt(tmp_path_factory) -> Path:
    from lpq.models.embedded import digits_vit

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vit") / "model.pt"
    torch.save(digits_vit().state_dict(), path)
    return path


def test_evaluate_vit_attention_matmuls(vit_ckpt, tmp_path):
    base = ["evaluate", "model=digits_vit", f"model.checkpoint={vit_ckpt}", "quant.w_format=int<8>",
            "quant.a_format=int<8>", "calib.num_samples=16", "eval.max_samples=32"]
    assert main([*base, f"out_dir={tmp_path / 'a'}"]) == 0
    layers = _read(tmp_path / "a" / "qconfig.json")["layers"]
    assert len(layers) == 20
    for i in range(3):
        for mm in ("qk", "av"):
            entry = layers[f"blocks.{i}.attn.{mm}"]
            assert all(entry[side].lstrip("u").startswith("int<8>") for side in ("w", "a"))  # softmax: uint
    m = _read(tmp_path / "a" / "metrics.json")
    assert m["num_samples"] == 32 and m["avg_a_bits"] == 8.0
    assert main([*base, "quant.attention_matmuls=false", "quant.skip=[head]", f"out_dir={tmp_path / 'b'}"]) == 0
    layers_b = _read(tmp_path / "b" / "qconfig.json")["layers"]
    assert set(layers_b) == {n for n in layers if not n.endswith((".qk", ".av")) and n != "head"}


ENTRY = """
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10))
"""


def test_evaluate_python_entry(tmp_path):
    f = tmp_path / "tiny_model.py"
    f.write_text(ENTRY)
    out = tmp_path / "out"
    rc = main(["evaluate", "model=python", f"model.entry={f}:build", "quant.w_format=int<8>", "quant.a_format=int<8>",
               "calib.num_samples=16", f"out_dir={out}"])
    assert rc == 0
    m = _read(out / "metrics.json")
    assert m["model"] == "tiny_model:build" and m["weights_source"] == f"python:{f}:build"
    assert m["num_samples"] == 400 and m["quantized_layers"] == 2
    assert set(_read(out / "qconfig.json")["layers"]) == {"0", "4"}


# ---- errors: exit code 2 and a message naming the problem ------------------------------------------------

def _fail(capsys, args) -> str:
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ")
    return err


def test_unknown_command(capsys):
    assert "unknown command 'frobnicate'" in _fail(capsys, ["frobnicate", "out_dir=x"])


def test_missing_out_dir(capsys):
    assert "out_dir is not set" in _fail(capsys, ["evaluate", "model=digits_cnn"])
    assert "out_dir is not set" in _fail(capsys, ["train", "model=digits_cnn"])


def test_unknown_model(capsys, tmp_path):
    err = _fail(capsys, ["evaluate", "model=resnet_nonexistent", f"out_dir={tmp_path}"])
    assert "resnet_nonexistent" in err and "digits_cnn" in err


def test_unknown_override_key(capsys, tmp_path):
    assert "nokey" in _fail(capsys, ["evaluate", "nokey=1", f"out_dir={tmp_path}"])


def test_bad_entry_path(capsys, tmp_path):
    err = _fail(capsys, ["evaluate", "model=python", f"model.entry={tmp_path}/nope.py:build", f"out_dir={tmp_path}"])
    assert f"{tmp_path}/nope.py does not exist" in err
    err = _fail(capsys, ["evaluate", "model=python", f"model.entry={tmp_path}/nope.py", f"out_dir={tmp_path}"])
    assert "path/to/file.py:function" in err


def test_embedded_model_without_checkpoint(capsys, tmp_path):
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"out_dir={tmp_path}"])
    assert "lpq train model=digits_cnn" in err


def test_missing_and_corrupt_checkpoint(capsys, tmp_path):
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={tmp_path}/none.pt", f"out_dir={tmp_path}"])
    assert f"model.checkpoint={tmp_path}/none.pt does not exist" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(range(256)) * 8)
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={bad}", f"out_dir={tmp_path}"])
    assert f"model.checkpoint={bad} could not be read" in err


def test_timm_without_local_weights(capsys, tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    err = _fail(capsys, ["evaluate", "model=timm", "model.name=resnet18", f"out_dir={tmp_path}"])
    assert "no local weights for timm model 'resnet18'" in err and "timm/resnet18" in err
    assert "model.checkpoint=" in err


def test_timm_unknown_name(capsys, tmp_path):
    assert "not a timm model" in _fail(capsys, ["evaluate", "model=timm", "model.name=no_such_net", f"out_dir={tmp_path}"])


@pytest.mark.parametrize("spec, needle", [
    ("lp<8,9,3,0>", "lp<8,9,3,0> is outside the float32 emulation range"),
    ("lp<8,1,3>", "'lp<8,1,3>' has 3 parameter(s); lp takes 4"),
    ("foo<3>", "unknown format family 'foo'"),
    ("lp<*,1,3,0>", "n cannot be '*'"),
])
def test_invalid_spec_strings(capsys, trained, tmp_path, spec, needle):
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={trained / 'model.pt'}",
                         f"quant.w_format={spec}", "calib.num_samples=4", f"out_dir={tmp_path}"])
    assert needle in err


def test_unknown_qconfig_layer(capsys, trained, tmp_path):
    cfg = tmp_path / "q.json"
    cfg.write_text(json.dumps({"schema_version": 1, "layers": {"fc": {"w": "int<8>", "a": None},
                                                               "layer9.conv": {"w": "int<8>", "a": None}}}))
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={trained / 'model.pt'}",
                         f"quant.config={cfg}", f"out_dir={tmp_path / 'o'}"])
    assert "unknown layers" in err and "layer9.conv" in err


@pytest.mark.parametrize("obj, needle", [
    ({"schema_version": 9, "layers": {}}, "schema_version=9"),
    ({"schema_version": 1, "layers": {"fc": {"w": "lp<8,*,*,*>", "a": None}}}, "not resolved"),
    ({"schema_version": 1, "layers": {"fc": {"w": "lp<8,1,3>", "a": None}}}, "qconfig layer 'fc'"),
])
def test_bad_qconfig_files(capsys, trained, tmp_path, obj, needle):
    cfg = tmp_path / "q.json"
    cfg.write_text(json.dumps(obj))
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={trained / 'model.pt'}",
                         f"quant.config={cfg}", f"out_dir={tmp_path / 'o'}"])
    assert needle in err
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={trained / 'model.pt'}",
                         f"quant.config={tmp_path / 'missing.json'}", f"out_dir={tmp_path / 'o'}"])
    assert "does not exist" in err


def test_imagefolder_roots(capsys, trained, tmp_path):
    base = ["evaluate", "model=digits_cnn", f"model.checkpoint={trained / 'model.pt'}", "data=imagefolder",
            f"out_dir={tmp_path / 'o'}"]
    assert "data.val_root is not set" in _fail(capsys, base)
    missing = tmp_path / "missing"
    err = _fail(capsys, [*base, f"data.val_root={missing}", f"data.calib_root={missing}"])
    assert f"data.val_root={missing} does not exist" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    err = _fail(capsys, [*base, f"data.val_root={empty}", f"data.calib_root={empty}"])
    assert "no class sub-folders" in err


def test_calibration_pool_too_small(capsys, trained, tmp_path):
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={trained / 'model.pt'}",
                         "quant.w_format=int<8>", "calib.num_samples=301", f"out_dir={tmp_path}"])
    assert "calib.num_samples=301" in err


def test_unknown_skip_layer(capsys, trained, tmp_path):
    err = _fail(capsys, ["evaluate", "model=digits_cnn", f"model.checkpoint={trained / 'model.pt'}",
                         "quant.skip=[nope]", f"out_dir={tmp_path}"])
    assert "quant.skip" in err and "nope" in err


def test_train_refuses_non_embedded(capsys, tmp_path):
    err = _fail(capsys, ["train", "model=timm", "model.name=resnet18", f"out_dir={tmp_path}"])
    assert "embedded models only" in err


# ---- the installed entry point, offline, in a fresh interpreter -----------------------------------------

def test_python_m_lpq_timm_with_empty_hf_cache(tmp_path):
    """`python -m lpq` with an empty $HF_HOME: exit 2 and what to download, nothing fetched."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HF_HOME=str(tmp_path / "hf"), LPA_PROGRESS="off", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "lpq", "evaluate", "model=timm", "model.name=test_resnet", f"out_dir={tmp_path / 'o'}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=str(Path(__file__).resolve().parents[2]),
    )
    assert proc.returncode == 2, proc.stderr
    assert "no local weights for timm model 'test_resnet'" in proc.stderr
    assert "timm/test_resnet.r160_in1k" in proc.stderr
    assert not (tmp_path / "hf" / "hub" / "models--timm--test_resnet.r160_in1k").exists()
    assert not (tmp_path / "o" / "metrics.json").exists()


# ---- more end-to-end properties --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_again(trained, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("train_cnn_again")
    assert main(["train", "model=digits_cnn", f"out_dir={out}"]) == 0
    return out


def test_train_is_deterministic(trained, trained_again):
    a = torch.load(trained / "model.pt", weights_only=True)
    b = torch.load(trained_again / "model.pt", weights_only=True)
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ja, jb = _read(trained / "train.json"), _read(trained_again / "train.json")
    assert {k: v for k, v in ja.items() if k != "seconds"} == {k: v for k, v in jb.items() if k != "seconds"}


def test_train_checkpoint_bytes_reproducible(trained, trained_again):
    """PIPELINE §8: same config and seed -> byte-identical outputs (model.pt included)."""
    assert (trained / "model.pt").read_bytes() == (trained_again / "model.pt").read_bytes()


def test_outputs_are_canonical_and_atomic(runs):
    out = runs("lp8", *LP8, *CAL)
    for name in ("metrics.json", "qconfig.json"):
        text = (out / name).read_text()
        assert text.endswith("\n")
        obj = json.loads(text)
        assert list(obj) == sorted(obj)  # sorted top-level keys (PIPELINE §7)
    assert not [p for p in out.rglob("*.tmp")], "temp files left behind"
    overrides = (out / ".hydra" / "overrides.yaml").read_text()
    assert "lp<8,*,*,*>" in overrides


def test_evaluate_folds_batchnorm_before_quantizing(trained):
    """The quantized weights are those of the BN-folded network (LPQ §1)."""
    from torch import nn

    from lpq.runs.from_config import build_quant_model
    from lpq.models.embedded import digits_cnn
    from lpq.quant.fold import fold_batchnorm

    cfg = compose([f"model.checkpoint={trained / 'model.pt'}", "out_dir=unused"])
    _, _, qm = build_quant_model(cfg)
    assert qm.unit_names == CNN_UNITS
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in qm.modules())
    ref = digits_cnn()
    ref.load_state_dict(torch.load(trained / "model.pt", weights_only=True))
    fold_batchnorm(ref.eval())
    for name in CNN_UNITS:
        assert torch.equal(qm.fp_weight(name), ref.get_submodule(name).weight), name


# ---- ImageNet-style folders end to end --------------------------------------------------------------------

RGB_ENTRY = """
import torch
from torch import nn

def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
"""


def _png_folders(root: Path, classes: dict[str, int], seed: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for cls, count in classes.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.fixture
def folder_run(tmp_path):
    f = tmp_path / "rgb_model.py"
    f.write_text(RGB_ENTRY)
    val = _png_folders(tmp_path / "val", {"c": 2, "a": 3, "b": 2}, seed=0)
    calib = _png_folders(tmp_path / "train", {"a": 3, "b": 3, "c": 3}, seed=1)
    base = ["evaluate", "model=python", f"model.entry={f}:build", "data=imagefolder", "data.resize=null",
            "data.crop=null", "data.num_workers=0"]
    return base, val, calib


def test_evaluate_imagefolder(folder_run, tmp_path):
    base, val, calib = folder_run
    out = tmp_path / "o"
    rc = main([*base, f"data.val_root={val}", f"data.calib_root={calib}", "quant.w_format=int<8>",
               "quant.a_format=int<8>", "calib.num_samples=5", "calib.batch=2", f"out_dir={out}"])
    assert rc == 0
    m = _read(out / "metrics.json")
    assert m["num_samples"] == 7 and m["data_source"] == f"imagefolder:{val}" and m["calib_samples"] == 5
    assert set(_read(out / "qconfig.json")["layers"]) == {"0", "3"}


def test_evaluate_imagefolder_labels(capsys, folder_run, tmp_path):
    """metrics.json records how folder names became labels; a label the model cannot predict (3 outputs, folder
    "7") is an error naming data.labels (exit 2, no metrics.json), not a silent 0 % top-1."""
    base, _, calib = folder_run
    val = _png_folders(tmp_path / "val_idx", {"0": 1, "2": 1, "1": 2}, seed=3)
    out = tmp_path / "o"
    assert main([*base, f"data.val_root={val}", f"data.calib_root={calib}", f"out_dir={out}"]) == 0
    metrics = _read(out / "metrics.json")
    assert metrics["labels"] == "index"
    import csv

    with open(out / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [f"{val.resolve()}/{c}/{n}.png" for c, n in (("0", 0), ("1", 0), ("1", 1), ("2", 0))]
    assert [int(r["label"]) for r in rows] == [0, 1, 1, 2]
    assert 100 * sum(r["label"] == r["top1"] for r in rows) / 4 == metrics["top1"]
    far = _png_folders(tmp_path / "val_far", {"0": 1, "7": 1}, seed=4)
    err = _fail(capsys, [*base, f"data.val_root={far}", f"data.calib_root={calib}", f"out_dir={tmp_path / 'o2'}"])
    assert "validation label 7 is out of range for a model with 3 outputs" in err and "data.labels" in err
    assert not (tmp_path / "o2" / "metrics.json").exists()
    assert main([*base, f"data.val_root={far}", f"data.calib_root={calib}", "data.labels=folder",
                 f"out_dir={tmp_path / 'o3'}"]) == 0


def test_imagefolder_same_folder_for_calibration_and_evaluation(capsys, folder_run, tmp_path):
    base, val, _ = folder_run
    err = _fail(capsys, [*base, f"data.val_root={val}", f"data.calib_root={val}", "quant.w_format=int<8>",
                         "calib.num_samples=3", f"out_dir={tmp_path / 'o'}"])
    assert "overlap" in err


def test_imagefolder_class_folder_without_images(capsys, folder_run, tmp_path):
    """An empty class folder is a bad data root: exit 2 with a message, not a traceback."""
    base, val, calib = folder_run
    (val / "d_empty").mkdir()
    err = _fail(capsys, [*base, f"data.val_root={val}", f"data.calib_root={calib}", f"out_dir={tmp_path / 'o'}"])
    assert "d_empty" in err


def test_runtime_is_deterministic_without_importing_inductor_timm_or_sklearn():
    """Job start-up stays cheap (PIPELINE §8 settings still applied): no torch._inductor, no timm for a CNN,
    no scikit-learn for the embedded data."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from lpq.cli import _setup_runtime\n"
        "_setup_runtime()\n"
        "assert torch.are_deterministic_algorithms_enabled()\n"
        "assert torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "from lpq.data.embedded import digits_split\n"
        "from lpq.models.embedded import DigitsCNN\n"
        "from lpq.quant.model import QuantModel\n"
        "QuantModel(DigitsCNN(), digits_split('calib').images[:1])\n"
        "print(sorted(m for m in ('torch._inductor', 'timm', 'sklearn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
