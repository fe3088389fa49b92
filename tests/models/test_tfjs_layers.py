"""model=tfjs: a TF.js layers model written here (model.json + shards) loads and computes what an independent
channels-last implementation of the Keras layers computes (TF "same" padding done by hand, NHWC tensors)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lpq.models.providers import build_model
from lpq.models.tfjs_layers import build, read_weights


def _layer(cls: str, name: str, prev: str | None, **config) -> dict:
    return {"class_name": cls, "name": name, "config": {"name": name, **config},
            "inbound_nodes": [[[prev, 0, 0, {}]]] if prev else []}


def _write(root: Path, layers: list[dict], tensors: list[tuple[str, np.ndarray]], groups: int = 2) -> Path:
    """A TF.js layers model: the tensors split over `groups` groups, each group in one shard file."""
    manifest = []
    chunks = np.array_split(np.arange(len(tensors)), groups)
    for g, idx in enumerate(chunks):
        blob = b"".join(tensors[i][1].astype("<f4").tobytes() for i in idx)
        (root / f"group{g + 1}-shard1of1").write_bytes(blob)
        manifest.append({"paths": [f"group{g + 1}-shard1of1"],
                         "weights": [{"name": tensors[i][0], "shape": list(tensors[i][1].shape), "dtype": "float32"}
                                     for i in idx]})
    spec = {"modelTopology": {"model_config": {"class_name": "Model", "config": {"layers": layers}}},
            "weightsManifest": manifest}
    (root / "model.json").write_text(json.dumps(spec))
    return root / "model.json"


def _tiny_mobilenet(root: Path, size: int = 10, seed: int = 0):
    """Input size x size x 3 -> conv 3x3/2 -> BN -> relu6 -> dw 3x3/1 (x2 multiplier) -> BN -> relu6 ->
    dw 3x3/2 -> BN -> relu -> pw 1x1 -> BN -> relu6 -> GAP -> reshape -> dropout -> 1x1 conv with bias ->
    softmax -> reshape. Returns (model.json path, tensors by name)."""
    rng = np.random.default_rng(seed)
    t: list[tuple[str, np.ndarray]] = []

    def bn(name, c):
        t.extend([(f"{name}/gamma", rng.uniform(0.5, 1.5, c)), (f"{name}/beta", rng.normal(0, 0.5, c)),
                  (f"{name}/moving_mean", rng.normal(0, 0.3, c)), (f"{name}/moving_variance", rng.uniform(0.2, 2, c))])

    L = [_layer("InputLayer", "input_1", None, batch_input_shape=[None, size, size, 3], dtype="float32")]
    t.append(("conv1/kernel", rng.normal(0, 0.4, (3, 3, 3, 4))))
    L.append(_layer("Conv2D", "conv1", "input_1", filters=4, kernel_size=[3, 3], strides=[2, 2], padding="same",
                    use_bias=False, activation="linear", data_format="channels_last", dilation_rate=[1, 1]))
    bn("conv1_bn", 4)
    L.append(_layer("BatchNormalization", "conv1_bn", "conv1", epsilon=1e-3, axis=-1, center=True, scale=True))
    L.append(_layer("Activation", "conv1_relu", "conv1_bn", activation="relu6"))
    t.append(("conv_dw_1/depthwise_kernel", rng.normal(0, 0.4, (3, 3, 4, 2))))
    L.append(_layer("DepthwiseConv2D", "conv_dw_1", "conv1_relu", kernel_size=[3, 3], strides=[1, 1], padding="same",
                    depth_multiplier=2, use_bias=False, activation="linear", data_format="channels_last"))
    bn("conv_dw_1_bn", 8)
    L.append(_layer("BatchNormalization", "conv_dw_1_bn", "conv_dw_1", epsilon=1e-3, axis=-1))
    L.append(_layer("ReLU", "conv_dw_1_relu", "conv_dw_1_bn", max_value=6.0))
    t.append(("conv_dw_2/depthwise_kernel", rng.normal(0, 0.4, (3, 3, 8, 1))))
    L.append(_layer("DepthwiseConv2D", "conv_dw_2", "conv_dw_1_relu", kernel_size=[3, 3], strides=[2, 2],
                    padding="same", depth_multiplier=1, use_bias=False, activation="linear"))
    bn("conv_dw_2_bn", 8)
    L.append(_layer("BatchNormalization", "conv_dw_2_bn", "conv_dw_2", epsilon=1e-3, axis=-1))
    L.append(_layer("Activation", "conv_dw_2_relu", "conv_dw_2_bn", activation="relu"))
    t.append(("conv_pw_2/kernel", rng.normal(0, 0.4, (1, 1, 8, 6))))
    L.append(_layer("Conv2D", "conv_pw_2", "conv_dw_2_relu", filters=6, kernel_size=[1, 1], strides=[1, 1],
                    padding="same", use_bias=False, activation="linear"))
    bn("conv_pw_2_bn", 6)
    L.append(_layer("BatchNormalization", "conv_pw_2_bn", "conv_pw_2", epsilon=1e-3, axis=-1))
    L.append(_layer("Activation", "conv_pw_2_relu", "conv_pw_2_bn", activation="relu6"))
    L.append(_layer("GlobalAveragePooling2D", "gap", "conv_pw_2_relu", data_format="channels_last"))
    L.append(_layer("Reshape", "reshape_1", "gap", target_shape=[1, 1, 6]))
    L.append(_layer("Dropout", "dropout", "reshape_1", rate=0.001))
    t.extend([("conv_preds/kernel", rng.normal(0, 0.4, (1, 1, 6, 5))), ("conv_preds/bias", rng.normal(0, 0.1, 5))])
    L.append(_layer("Conv2D", "conv_preds", "dropout", filters=5, kernel_size=[1, 1], strides=[1, 1], padding="same",
                    use_bias=True, activation="linear"))
    L.append(_layer("Activation", "act_softmax", "conv_preds", activation="softmax"))
    L.append(_layer("Reshape", "reshape_2", "act_softmax", target_shape=[5]))
    return _write(root, L, t), {k: v for k, v in t}


def _same(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TF 'same' padding of an NHWC tensor (TensorFlow's documented rule: pad_total = max((ceil(n/s)-1)*s + k - n, 0),
    the smaller half before)."""
    n_h, n_w = x.shape[1], x.shape[2]
    pads = []
    for n in (n_h, n_w):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return F.pad(x, (0, 0, pads[1][0], pads[1][1], pads[0][0], pads[0][1]))


def _conv_nhwc(x, kernel, s, depthwise=False):
    """Direct NHWC convolution by explicit windows (no torch conv): out[n,i,j,o] = sum window * kernel."""
    k = kernel.shape[0]
    x = _same(x, k, s)
    H = (x.shape[1] - k) // s + 1
    W = (x.shape[2] - k) // s + 1
    win = torch.stack([torch.stack([x[:, i * s:i * s + k, j * s:j * s + k, :] for j in range(W)], 1)
                       for i in range(H)], 1)  # [N, H, W, k, k, C]
    if depthwise:  # kernel [k, k, C, M] -> out channel c*M + m
        out = torch.einsum("nhwabc,abcm->nhwcm", win, kernel)
        return out.reshape(out.shape[0], H, W, -1)
    return torch.einsum("nhwabc,abco->nhwo", win, kernel)


def _reference(x_nchw: torch.Tensor, T: dict) -> torch.Tensor:
    T = {k: torch.tensor(v, dtype=torch.float64) for k, v in T.items()}
    x = x_nchw.double().permute(0, 2, 3, 1)

    def bn(y, name):
        return T[f"{name}/gamma"] * (y - T[f"{name}/moving_mean"]) / torch.sqrt(T[f"{name}/moving_variance"] + 1e-3) \
            + T[f"{name}/beta"]

    y = bn(_conv_nhwc(x, T["conv1/kernel"], 2), "conv1_bn").clamp(0, 6)
    y = bn(_conv_nhwc(y, T["conv_dw_1/depthwise_kernel"], 1, True), "conv_dw_1_bn").clamp(0, 6)
    y = bn(_conv_nhwc(y, T["conv_dw_2/depthwise_kernel"], 2, True), "conv_dw_2_bn").clamp(min=0)
    y = bn(_conv_nhwc(y, T["conv_pw_2/kernel"], 1), "conv_pw_2_bn").clamp(0, 6)
    y = y.mean(dim=(1, 2))
    return y @ T["conv_preds/kernel"][0, 0] + T["conv_preds/bias"]


@pytest.mark.parametrize("size", [10, 9])  # even input: asymmetric stride-2 pads; odd: symmetric
def test_tfjs_model_matches_an_nhwc_reference(tmp_path, size):
    path, tensors = _tiny_mobilenet(tmp_path, size)
    model, input_size, taps = build(tmp_path)  # the folder, or model.json itself
    assert input_size == (3, size, size)
    assert taps == ["conv1_relu", "conv_pw_2_relu"]  # activations after full (non-depthwise) convs
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        out = model(x)
    ref = _reference(x, tensors)
    assert out.shape == (3, 5)
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    assert build(path)[0].state_dict().keys() == model.state_dict().keys()


def test_weights_are_read_in_manifest_order_across_groups(tmp_path):
    path, tensors = _tiny_mobilenet(tmp_path)
    got = read_weights(path)
    assert list(got) == list(tensors)
    for name, value in tensors.items():
        np.testing.assert_array_equal(got[name], value.astype(np.float32))


def test_provider_requires_a_checkpoint_and_records_preprocessing(tmp_path):
    from omegaconf import OmegaConf

    with pytest.raises(ValueError, match="model=tfjs needs model.checkpoint"):
        build_model(OmegaConf.create({"kind": "tfjs", "checkpoint": None}))
    _tiny_mobilenet(tmp_path)
    pre = {"resize": 12, "crop": 10, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear",
           "rounding": "round_floor"}
    loaded = build_model(OmegaConf.create({"kind": "tfjs", "checkpoint": str(tmp_path), "preprocess": pre}))
    assert loaded.input_size == (3, 10, 10) and loaded.name == tmp_path.name
    assert loaded.module.lpq_preprocess == pre
    from lpq.data.datasets import model_preprocess

    assert model_preprocess(loaded.module) == pre


def test_tfjs_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="no TensorFlow.js model.json"):
        build(tmp_path)
    path, _ = _tiny_mobilenet(tmp_path)
    spec = json.loads(path.read_text())
    (tmp_path / "group2-shard1of1").unlink()
    with pytest.raises(ValueError, match="weight shard group2-shard1of1 .* missing"):
        build(path)
    _tiny_mobilenet(tmp_path)
    bad = json.loads(path.read_text())
    bad["weightsManifest"][0]["weights"][0]["dtype"] = "int32"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="only float32"):
        build(path)
    layers = spec["modelTopology"]["model_config"]["config"]["layers"]
    branch = [*layers[:3], _layer("Add", "add", "conv1_bn"), *layers[3:]]
    spec["modelTopology"]["model_config"]["config"]["layers"] = branch
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=r"layer types \['Add'\] are not supported"):
        build(path)
    layers[4]["inbound_nodes"] = [[["conv1", 0, 0, {}], ["conv1_bn", 0, 0, {}]]]
    spec["modelTopology"]["model_config"]["config"]["layers"] = layers
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="only chains of layers"):
        build(path)


def test_leftover_tensors_are_an_error(tmp_path):
    path, tensors = _tiny_mobilenet(tmp_path)
    spec = json.loads(path.read_text())
    spec["weightsManifest"][-1]["weights"].append({"name": "stray/kernel", "shape": [2], "dtype": "float32"})
    path.write_text(json.dumps(spec))
    shard = tmp_path / spec["weightsManifest"][-1]["paths"][0]
    shard.write_bytes(shard.read_bytes() + np.zeros(2, "<f4").tobytes())
    with pytest.raises(ValueError, match=r"tensors \['stray/kernel'\] of the manifest belong to no layer"):
        build(path)
