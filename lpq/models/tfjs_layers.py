"""Load a TensorFlow.js "layers" model (Keras topology in `model.json` + binary weight shards) as
a PyTorch module, offline and without TensorFlow (model=tfjs).

Supported: a chain of InputLayer, Conv2D, DepthwiseConv2D, BatchNormalization, Activation /
ReLU (linear, relu, relu6, softmax), ZeroPadding2D, GlobalAveragePooling2D, Reshape, Dropout and
Flatten / Dense — what Keras-applications MobileNet v1 uses. Each layer must have exactly one
input (no branches). Weights keep the Keras layer names as module names (`conv_dw_1`, ...), so
qconfig.json and per-layer tables read like the Keras summary.

Two conventions differ from PyTorch and are handled here:
- TensorFlow "same" padding is asymmetric for stride 2 on even inputs (the extra pixel goes to
  the bottom/right); the pads are computed from the declared input size and made explicit
  (`nn.ZeroPad2d` before a `padding=0` conv when they are uneven).
- Keras tensors are channels-last: kernels are permuted ([kh,kw,Cin,Cout] -> [Cout,Cin,kh,kw]),
  and a Reshape is accepted only where it is a no-op on NCHW data ([1,1,C] after global pooling,
  [C] before the output).
A trailing softmax is dropped: the model returns logits, which rank the classes the same way.
"""
from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

SUPPORTED = ("InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "Activation", "ReLU",
             "ZeroPadding2D", "GlobalAveragePooling2D", "Reshape", "Dropout", "Flatten", "Dense")


class GlobalAvgPool(nn.Module):
    """[N, C, H, W] -> [N, C] (Keras GlobalAveragePooling2D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class ChannelsToMap(nn.Module):
    """[N, C] -> [N, C, 1, 1] (Keras Reshape((1, 1, C)) after global pooling)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1, 1, 1)


def model_json_path(path: str | Path) -> Path:
    """`path` itself when it is a model.json, else `path/model.json`; errors say what was expected."""
    p = Path(str(path)).expanduser()
    if p.is_dir():
        p = p / "model.json"
    if not p.is_file():
        raise ValueError(f"model.checkpoint={path}: no TensorFlow.js model.json there (need the model.json of a "
                         f"TF.js layers model, or the folder holding it with its groupN-shardKofM weight files)")
    return p


def read_weights(model_json: Path) -> dict[str, np.ndarray]:
    """Every tensor of the weights manifest, by name: each group's shard files concatenated, tensors
    in manifest order, little-endian float32 (the only dtype accepted)."""
    spec = json.loads(model_json.read_text())
    if "weightsManifest" not in spec or "modelTopology" not in spec:
        raise ValueError(f"{model_json} is not a TF.js layers model (needs modelTopology and weightsManifest)")
    out: dict[str, np.ndarray] = {}
    for g, group in enumerate(spec["weightsManifest"]):
        blob = b""
        for rel in group["paths"]:
            f = model_json.parent / rel
            if not f.is_file():
                raise ValueError(f"{model_json}: weight shard {rel} (group {g + 1}) is missing")
            blob += f.read_bytes()
        offset = 0
        for w in group["weights"]:
            if w.get("dtype", "float32") != "float32" or "quantization" in w:
                raise ValueError(f"{model_json}: tensor {w['name']} is {w.get('dtype')} "
                                 f"{'(quantized) ' if 'quantization' in w else ''}- only float32 weights are supported")
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            nbytes = 4 * count
            if offset + nbytes > len(blob):
                raise ValueError(f"{model_json}: group {g + 1} shards hold {len(blob)} bytes, "
                                 f"tensor {w['name']} needs bytes {offset}..{offset + nbytes}")
            out[w["name"]] = np.frombuffer(blob, dtype="<f4", count=count, offset=offset).reshape(w["shape"]).copy()
            offset += nbytes
        if offset != len(blob):
            raise ValueError(f"{model_json}: group {g + 1} shards hold {len(blob)} bytes, the manifest lists {offset}")
    return out


def _same_pads(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    eff = (k - 1) * d + 1
    total = max((math.ceil(size / s) - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def _out(size: int, k: int, s: int, d: int, pad: int) -> int:
    return (size + pad - (k - 1) * d - 1) // s + 1


def _tensor(weights: dict[str, np.ndarray], name: str) -> torch.Tensor:
    if name not in weights:
        raise ValueError(f"TF.js weights: tensor {name!r} is missing from the manifest")
    return torch.from_numpy(weights.pop(name))


def _conv(layer: dict, weights: dict, shape: list[int], depthwise: bool) -> tuple[list[tuple[str, nn.Module]], list[int]]:
    c = layer["config"]
    name = c["name"]
    if c.get("data_format", "channels_last") != "channels_last":
        raise ValueError(f"layer {name}: data_format={c['data_format']!r} is not supported (channels_last only)")
    kh, kw = c["kernel_size"]
    sh, sw = c["strides"]
    dh, dw = c.get("dilation_rate", [1, 1])
    cin, h, w = shape
    if depthwise:
        kernel = _tensor(weights, f"{name}/depthwise_kernel")  # [kh, kw, C, M]
        mult = int(c.get("depth_multiplier", 1))
        cout, groups = cin * mult, cin
        weight = kernel.permute(2, 3, 0, 1).reshape(cout, 1, kh, kw)
    else:
        kernel = _tensor(weights, f"{name}/kernel")  # [kh, kw, Cin, Cout]
        cout, groups = int(c["filters"]), 1
        weight = kernel.permute(3, 2, 0, 1)
    if tuple(weight.shape[1:]) != (cin // groups, kh, kw):
        raise ValueError(f"layer {name}: kernel shape {tuple(kernel.shape)} does not fit an input with {cin} channels")
    mods: list[tuple[str, nn.Module]] = []
    pads = (0, 0, 0, 0)
    if c["padding"] == "same":
        top, bottom = _same_pads(h, kh, sh, dh)
        left, right = _same_pads(w, kw, sw, dw)
        pads = (left, right, top, bottom)
    elif c["padding"] != "valid":
        raise ValueError(f"layer {name}: padding={c['padding']!r} is not supported (same | valid)")
    left, right, top, bottom = pads
    symmetric = left == right and top == bottom
    if not symmetric:
        mods.append((f"{name}_pad", nn.ZeroPad2d(pads)))
    conv = nn.Conv2d(cin, cout, (kh, kw), stride=(sh, sw), dilation=(dh, dw), groups=groups,
                     padding=(top, left) if symmetric else 0, bias=bool(c.get("use_bias", True)))
    with torch.no_grad():
        conv.weight.copy_(weight)
        if conv.bias is not None:
            conv.bias.copy_(_tensor(weights, f"{name}/bias"))
    mods.append((name, conv))
    if c.get("activation", "linear") != "linear":
        mods.append(_activation(f"{name}_act", c["activation"], last=False))
    return mods, [cout, _out(h, kh, sh, dh, top + bottom), _out(w, kw, sw, dw, left + right)]


def _batchnorm(layer: dict, weights: dict, shape: list[int]) -> nn.Module:
    c = layer["config"]
    name = c["name"]
    if c.get("axis", -1) not in (-1, 3, [-1], [3]):
        raise ValueError(f"layer {name}: BatchNormalization axis={c['axis']!r} is not supported (channel axis only)")
    bn = nn.BatchNorm2d(shape[0], eps=float(c.get("epsilon", 1e-3)))
    with torch.no_grad():
        bn.weight.copy_(_tensor(weights, f"{name}/gamma") if c.get("scale", True) else torch.ones(shape[0]))
        bn.bias.copy_(_tensor(weights, f"{name}/beta") if c.get("center", True) else torch.zeros(shape[0]))
        bn.running_mean.copy_(_tensor(weights, f"{name}/moving_mean"))
        bn.running_var.copy_(_tensor(weights, f"{name}/moving_variance"))
    return bn


def _activation(name: str, kind: str, last: bool) -> tuple[str, nn.Module]:
    table = {"relu": nn.ReLU(), "relu6": nn.ReLU6(), "linear": nn.Identity(), "sigmoid": nn.Sigmoid(), "tanh": nn.Tanh()}
    if kind == "softmax":
        return name, nn.Identity() if last else nn.Softmax(dim=1)
    if kind not in table:
        raise ValueError(f"layer {name}: activation {kind!r} is not supported ({', '.join([*table, 'softmax'])})")
    return name, table[kind]


def _input_shape(layers: list[dict]) -> list[int]:
    first = layers[0]
    shape = first["config"].get("batch_input_shape")
    if first["class_name"] != "InputLayer" or not shape or len(shape) != 4 or None in shape[1:]:
        raise ValueError(f"TF.js model: the first layer must be an InputLayer with a fixed [None, H, W, C] "
                         f"batch_input_shape, got {first['class_name']} {shape}")
    _, h, w, c = shape
    return [int(c), int(h), int(w)]


def _check_chain(layers: list[dict]) -> None:
    prev = None
    for layer in layers:
        nodes = layer.get("inbound_nodes") or []
        if prev is not None:
            ins = [n[0] for node in nodes for n in node]
            if ins != [prev]:
                raise ValueError(f"TF.js model: layer {layer['name']} takes {ins}, not only the previous layer {prev!r}: "
                                 f"only chains of layers (no branches or merges) are supported")
        prev = layer["name"]


def build(model_json: str | Path) -> tuple[nn.Sequential, tuple[int, int, int], list[str]]:
    """(module, input size (C, H, W), tap names) for the TF.js layers model at `model_json` (a file or its
    folder). Every weight of the manifest must be used; a tensor left over is an error."""
    path = model_json_path(model_json)
    spec = json.loads(path.read_text())
    topo = spec["modelTopology"]
    cfg = topo.get("model_config", topo)
    layers = cfg["config"]["layers"] if isinstance(cfg.get("config"), dict) else cfg["config"]
    unknown = sorted({l["class_name"] for l in layers} - set(SUPPORTED))
    if unknown:
        raise ValueError(f"{path}: layer types {unknown} are not supported (supported: {', '.join(SUPPORTED)})")
    if cfg.get("class_name") == "Model":
        _check_chain(layers)
    weights = read_weights(path)
    shape = _input_shape(layers)
    input_size = tuple(shape)
    mods: list[tuple[str, nn.Module]] = []
    taps: list[str] = []
    flat = False  # the data is [N, C] (after global pooling / flatten)
    after_full_conv = False
    meaningful = [l for l in layers if l["class_name"] not in ("Reshape", "Dropout", "InputLayer")]
    last_name = meaningful[-1]["name"] if meaningful else None
    for layer in layers[1:]:
        kind, name, c = layer["class_name"], layer["name"], layer["config"]
        if kind in ("Conv2D", "DepthwiseConv2D"):
            if flat:
                mods.append((f"{name}_to_map", ChannelsToMap()))
                flat = False
            new, shape = _conv(layer, weights, shape, kind == "DepthwiseConv2D")
            mods += new
        elif kind == "BatchNormalization":
            mods.append((name, _batchnorm(layer, weights, shape)))
        elif kind == "Activation":
            mods.append(_activation(name, c["activation"], last=name == last_name))
        elif kind == "ReLU":
            top = c.get("max_value")
            mods.append((name, nn.ReLU6() if top == 6 else nn.ReLU() if top is None else nn.Hardtanh(0.0, float(top))))
        elif kind == "ZeroPadding2D":
            p = c["padding"]
            (t, b), (l, r) = (p, p) if isinstance(p[0], list) else ((p[0], p[0]), (p[1], p[1]))
            mods.append((name, nn.ZeroPad2d((l, r, t, b))))
            shape = [shape[0], shape[1] + t + b, shape[2] + l + r]
        elif kind == "GlobalAveragePooling2D":
            mods.append((name, GlobalAvgPool()))
            shape, flat = [shape[0], 1, 1], True
        elif kind == "Reshape":
            target = list(c["target_shape"])
            channels = shape[0]
            if not (target == [1, 1, channels] and flat) and not (target == [channels] and shape[1:] == [1, 1]):
                raise ValueError(f"layer {name}: Reshape to {target} from {'[C]' if flat else shape} is not a "
                                 f"channel-order no-op; only [1,1,C] after pooling and [C] from 1x1 maps are supported")
            if target == [channels]:
                mods.append((name, nn.Flatten()))
                flat = True
            # [1, 1, C] after pooling: kept flat; a following conv adds the [N, C, 1, 1] view.
        elif kind == "Flatten":
            if not flat and shape[1:] != [1, 1]:
                raise ValueError(f"layer {name}: Flatten of a {shape[1]}x{shape[2]} map needs channels-last order; "
                                 f"only 1x1 maps are supported")
            mods.append((name, nn.Flatten()))
            flat = True
        elif kind == "Dense":
            if not flat:
                mods.append((f"{name}_flatten", nn.Flatten()))
                flat = True
            kernel = _tensor(weights, f"{name}/kernel")
            lin = nn.Linear(kernel.shape[0], kernel.shape[1], bias=bool(c.get("use_bias", True)))
            with torch.no_grad():
                lin.weight.copy_(kernel.T)
                if lin.bias is not None:
                    lin.bias.copy_(_tensor(weights, f"{name}/bias"))
            mods.append((name, lin))
            shape = [kernel.shape[1], 1, 1]
            if c.get("activation", "linear") != "linear":
                mods.append(_activation(f"{name}_act", c["activation"], last=name == last_name))
        elif kind == "Dropout":
            continue  # the identity at inference
        if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
            after_full_conv = kind != "DepthwiseConv2D"
        elif kind in ("Activation", "ReLU") and isinstance(mods[-1][1], (nn.ReLU, nn.ReLU6)) and after_full_conv:
            taps.append(name)  # a block output: the activation after a full (non-depthwise) conv
    if flat is False and shape[1:] == [1, 1]:
        mods.append(("flatten", nn.Flatten()))
    if weights:
        raise ValueError(f"{path}: tensors {sorted(weights)[:5]} of the manifest belong to no layer")
    model = nn.Sequential(OrderedDict(mods))
    model.lpq_taps = taps or [n for n, m in mods if isinstance(m, (nn.ReLU, nn.ReLU6))]
    return model.eval(), input_size, model.lpq_taps
