"""Quantizer placement (LPQ §1): every Conv2d/Linear weight and input, and both operands of
Q·Kᵀ and attention·V in timm ViTs, pass through a quantizer; nothing else does (biases,
norms, softmax, GELU/ReLU, residual adds, pooling, position embeddings, class token stay FP32)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lpq.models.embedded import digits_cnn, digits_vit
from lpq.quant.model import QuantModel
from lpq.quant.quantizer import make_quantizer

from ._util import Spy, tiny_cnn, snapshot

torch.manual_seed(0)


def _vit() -> nn.Module:
    torch.manual_seed(0)
    return digits_vit().eval()


VIT_UNITS = ["patch_embed.proj"] + [
    f"blocks.{i}.{s}" for i in range(3)
    for s in ("attn.qkv", "attn.qk", "attn.av", "attn.proj", "mlp.fc1", "mlp.fc2")
] + ["head"]


def _spies(qm: QuantModel, fn=None) -> dict[str, tuple[Spy, Spy]]:
    return {u.name: (Spy(u.name + "/w", fn), Spy(u.name + "/a", fn)) for u in qm.units}


def _record_inputs(model: nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """FP inputs of the named modules for one forward pass."""
    seen: dict[str, torch.Tensor] = {}
    mods = dict(model.named_modules())
    handles = [mods[n].register_forward_pre_hook(lambda m, a, n=n: seen.__setitem__(n, a[0].detach().clone()))
               for n in names]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return seen


# ---- CNNs -------------------------------------------------------------------------------------

def test_cnn_units_are_every_conv_and_linear_in_execution_order():
    x = torch.randn(2, 1, 8, 8)
    qm = QuantModel(digits_cnn().eval(), x)
    assert qm.unit_names == ["stem.0", "layer1.conv1", "layer1.conv2", "layer2.conv1", "layer2.conv2",
                             "layer2.shortcut.0", "fc"]
    assert {u.kind for u in qm.units} == {"conv", "linear"}
    qm2 = QuantModel(tiny_cnn(), x)
    units = {u.name: u for u in qm2.units}
    assert list(units) == ["conv1", "conv2", "fc"]
    assert (units["conv1"].weight_numel, units["conv1"].act_numel) == (36, 64)
    assert (units["conv2"].weight_numel, units["conv2"].act_numel) == (144, 256)
    assert (units["fc"].weight_numel, units["fc"].act_numel) == (80, 16)


def test_cnn_spies_see_exactly_weights_and_inputs():
    model = tiny_cnn()
    x = torch.randn(3, 1, 8, 8)
    fp_inputs = _record_inputs(model, ["conv1", "conv2", "fc"], x)
    fp_weights = {n: model.get_submodule(n).weight.detach().clone() for n in ("conv1", "conv2", "fc")}
    qm = QuantModel(model, x[:1])
    spies = _spies(qm)
    qm.set_quantizers(spies)
    for name, (w, a) in spies.items():
        assert len(w.calls) == 1 and torch.equal(w.calls[0], fp_weights[name])  # weights: once, at set time
        assert a.calls == []
    with torch.no_grad():
        qm(x)
        qm(x)
    for name, (w, a) in spies.items():
        assert len(w.calls) == 1, "weights must not be re-quantized per forward"
        assert len(a.calls) == 2
        assert torch.equal(a.calls[0], fp_inputs[name])


def test_cnn_quantized_forward_equals_manual_reference():
    """Only conv/linear weights and inputs are quantized: the quantized model equals a hand-written
    forward that applies the quantizers at exactly those points and nothing else."""
    model = tiny_cnn()
    ref = copy.deepcopy(model)
    x = torch.randn(4, 1, 8, 8)
    qw = {"conv1": make_quantizer("int<3>@2"), "conv2": make_quantizer("lp<4,1,2,2>"), "fc": make_quantizer("int<4>@3")}
    qa = {"conv1": make_quantizer("lp<5,1,3,0>"), "conv2": make_quantizer("int<4>@2"), "fc": make_quantizer("int<3>@1")}
    qm = QuantModel(model, x[:1])
    qm.set_quantizers({n: (qw[n], qa[n]) for n in qw})
    with torch.no_grad():
        got = qm(x)
        y = F.conv2d(qa["conv1"](x), qw["conv1"](ref.conv1.weight), ref.conv1.bias, padding=1)
        y = F.relu(ref.bn(y))
        y = y + F.conv2d(qa["conv2"](y), qw["conv2"](ref.conv2.weight), ref.conv2.bias, padding=1)
        y = torch.flatten(ref.pool(y), 1)
        want = F.linear(qa["fc"](y), qw["fc"](ref.fc.weight), ref.fc.bias)
        fp = ref(x)
    assert torch.equal(got, want)
    assert not torch.allclose(got, fp), "the quantizers should change the output"


def test_cnn_coarse_format_changes_weights_not_biases_or_bn():
    model = tiny_cnn()
    before = snapshot(model)
    qm = QuantModel(model, torch.randn(1, 1, 8, 8))
    q = make_quantizer("int<2>@0")
    qm.set_quantizers({n: (q, q) for n in qm.unit_names})
    after = snapshot(model)
    weights = {f"{n}.weight" for n in qm.unit_names}
    for key in before:
        if key in weights:
            assert not torch.equal(after[key], before[key]), key
            assert set(after[key].unique().tolist()) <= {-1.0, 0.0, 1.0}
        else:
            assert torch.equal(after[key], before[key]), f"{key} must stay FP32"
    qm.set_quantizers({})  # back to FP32: the original weights, bit for bit
    for key, value in snapshot(model).items():
        assert torch.equal(value, before[key]), key


def test_units_not_listed_run_fp32():
    model = tiny_cnn()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        fp = model(x).clone()
    qm = QuantModel(model, x[:1])
    spies = _spies(qm)
    qm.set_quantizers({"conv2": spies["conv2"]})
    with torch.no_grad():
        out = qm(x)
    torch.testing.assert_close(out, fp, rtol=0, atol=0)
    assert len(spies["conv2"][1].calls) == 1 and spies["conv1"][1].calls == []


def test_set_quantizers_rejects_unknown_layer():
    qm = QuantModel(tiny_cnn(), torch.randn(1, 1, 8, 8))
    q = make_quantizer("int<8>")
    with pytest.raises(ValueError, match="unknown layers.*'nope'"):
        qm.set_quantizers({"nope": (q, q)})


def test_skip_and_unknown_skip():
    x = torch.randn(1, 1, 8, 8)
    qm = QuantModel(tiny_cnn(), x, skip=("fc",))
    assert qm.unit_names == ["conv1", "conv2"]
    with pytest.raises(ValueError, match="fc"):
        qm.set_quantizers({"fc": (None, None)})
    with pytest.raises(ValueError, match="quant.skip.*'nope'"):
        QuantModel(tiny_cnn(), x, skip=("nope",))


def test_observer_sees_every_unit_input():
    model = tiny_cnn()
    x = torch.randn(2, 1, 8, 8)
    fp_inputs = _record_inputs(model, ["conv1", "conv2", "fc"], x)
    qm = QuantModel(model, x[:1])
    seen = []
    qm.observer = lambda name, side, t: seen.append((name, side, t.clone()))
    with torch.no_grad():
        qm(x)
    assert [(n, s) for n, s, _ in seen] == [("conv1", "a"), ("conv2", "a"), ("fc", "a")]
    for n, _, t in seen:
        assert torch.equal(t, fp_inputs[n])


# ---- ViTs -------------------------------------------------------------------------------------

def test_vit_units():
    qm = QuantModel(_vit(), torch.randn(1, 1, 8, 8))
    assert qm.unit_names == VIT_UNITS
    kinds = {u.name: u.kind for u in qm.units}
    assert kinds["patch_embed.proj"] == "conv" and kinds["head"] == "linear"
    assert kinds["blocks.1.attn.qk"] == "qk" and kinds["blocks.1.attn.av"] == "av"
    u = {u.name: u for u in qm.units}
    # 3 heads x 17 tokens x 16 dims; probabilities 3 x 17 x 17
    assert u["blocks.0.attn.qk"].side_numel == {"a": 816, "w": 816}
    assert u["blocks.0.attn.av"].side_numel == {"a": 867, "w": 816}
    assert u["blocks.0.attn.qk"].weight_numel == 0
    assert u["blocks.0.attn.qk"].act_numel == 1632


def test_vit_patched_attention_matches_timm():
    model = _vit()
    ref = copy.deepcopy(model)
    x = torch.randn(4, 1, 8, 8)
    qm = QuantModel(model, x[:1])
    with torch.no_grad():
        torch.testing.assert_close(qm(x), ref(x), rtol=1e-5, atol=1e-5)


def test_vit_matmul_operands_are_q_k_probabilities_v():
    model = _vit()
    x = torch.randn(2, 1, 8, 8)
    attn = model.blocks[1].attn
    qkv_out = {}
    attn.qkv.register_forward_hook(lambda m, a, out: qkv_out.__setitem__("y", out.detach().clone()))
    qm = QuantModel(model, x[:1])
    spies = _spies(qm)
    qm.set_quantizers(spies)
    qkv_out.clear()
    with torch.no_grad():
        qm(x)
    B, N, _ = qkv_out["y"].shape
    q, k, v = qkv_out["y"].reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q = q * attn.scale
    probs = (q @ k.transpose(-2, -1)).softmax(-1)
    w_qk, a_qk = spies["blocks.1.attn.qk"]
    w_av, a_av = spies["blocks.1.attn.av"]
    for spy, want in ((a_qk, q), (w_qk, k), (a_av, probs), (w_av, v)):
        assert len(spy.calls) == 1, spy
        torch.testing.assert_close(spy.calls[0], want, rtol=1e-6, atol=1e-6)


def test_vit_matmul_quantizer_outputs_are_used():
    """Q·Kᵀ and attention·V consume what their quantizers return."""
    model = _vit()
    x = torch.randn(2, 1, 8, 8)
    attn = model.blocks[0].attn
    proj_in = {}
    qm = QuantModel(model, x[:1])
    attn.proj.register_forward_pre_hook(lambda m, a: proj_in.__setitem__("x", a[0].detach().clone()))
    zero = lambda t: torch.zeros_like(t)  # noqa: E731
    # V -> 0: the attention output (input of proj) is 0
    qm.set_quantizers({"blocks.0.attn.av": (Spy("v", zero), None)})
    with torch.no_grad():
        qm(x)
    assert torch.count_nonzero(proj_in["x"]) == 0
    # Q -> 0: uniform attention probabilities 1/N reach attention·V
    spy_p = Spy("p")
    qm.set_quantizers({"blocks.0.attn.qk": (None, Spy("q", zero)), "blocks.0.attn.av": (None, spy_p)})
    with torch.no_grad():
        qm(x)
    p = spy_p.calls[0]
    torch.testing.assert_close(p, torch.full_like(p, 1.0 / p.shape[-1]))


def test_vit_only_conv_linear_matmuls_quantized_reference():
    """With conv/linear quantizers only, the quantized ViT equals timm's own forward with the
    same weights and inputs quantized: LayerNorm, softmax, GELU, residual adds, position
    embeddings and class token are not touched."""
    model = _vit()
    ref = copy.deepcopy(model)
    x = torch.randn(3, 1, 8, 8)
    qm = QuantModel(model, x[:1])
    qw, qa = make_quantizer("int<4>@3"), make_quantizer("lp<6,1,3,0>")
    lin = [u.name for u in qm.units if u.kind in ("conv", "linear")]
    qm.set_quantizers({n: (qw, qa) for n in lin})
    mods = dict(ref.named_modules())
    with torch.no_grad():
        for n in lin:
            mods[n].weight.copy_(qw(mods[n].weight))
            mods[n].register_forward_pre_hook(lambda m, a: (qa(a[0]),) + tuple(a[1:]))
        for blk in ref.blocks:
            blk.attn.fused_attn = False
        got, want, fp = qm(x), ref(x), _vit()(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got, fp, atol=1e-3)


def test_vit_spy_call_counts_and_tensors():
    """Per forward: one activation call per conv/linear, one per matmul operand; nothing more."""
    model = _vit()
    x = torch.randn(2, 1, 8, 8)
    lin = [n for n in VIT_UNITS if not n.endswith((".qk", ".av"))]
    fp_inputs = _record_inputs(model, lin, x)
    qm = QuantModel(model, x[:1])
    spies = _spies(qm)
    qm.set_quantizers(spies)
    with torch.no_grad():
        qm(x)
    for name, (w, a) in spies.items():
        assert len(a.calls) == 1, name
        if name.endswith((".qk", ".av")):
            assert len(w.calls) == 1 and w.calls[0].shape[:2] == (2, 3)
        else:
            assert len(w.calls) == 1 and torch.equal(w.calls[0], qm.fp_weight(name))
            torch.testing.assert_close(a.calls[0], fp_inputs[name], rtol=1e-6, atol=1e-6)


def test_vit_coarse_format_changes_weights_only():
    model = _vit()
    before = snapshot(model)
    qm = QuantModel(model, torch.randn(1, 1, 8, 8))
    q = make_quantizer("int<2>@0")
    qm.set_quantizers({n: (q, q) for n in qm.unit_names})
    after = snapshot(model)
    weights = {f"{n}.weight" for n in qm.unit_names if not n.endswith((".qk", ".av"))}
    assert len(weights) == 14
    untouched = [k for k in before if k not in weights]
    assert {"cls_token", "pos_embed", "norm.weight", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias", "head.bias"} <= set(untouched)
    for key in before:
        if key in weights:
            assert not torch.equal(after[key], before[key]), key
        else:
            assert torch.equal(after[key], before[key]), f"{key} must stay FP32"


def test_vit_attention_matmuls_off_and_skip():
    x = torch.randn(2, 1, 8, 8)
    model = _vit()
    ref = copy.deepcopy(model)
    qm = QuantModel(model, x[:1], attention_matmuls=False)
    assert qm.unit_names == [n for n in VIT_UNITS if not n.endswith((".qk", ".av"))]
    with torch.no_grad():
        torch.testing.assert_close(qm(x), ref(x))
    qm2 = QuantModel(_vit(), x[:1], skip=("blocks.0.attn.qk", "blocks.2.attn.av", "head"))
    assert qm2.unit_names == [n for n in VIT_UNITS if n not in ("blocks.0.attn.qk", "blocks.2.attn.av", "head")]
    spies = _spies(qm2)
    qm2.set_quantizers(spies)
    with torch.no_grad():
        qm2(x)
    assert all(len(a.calls) == 1 for _, a in spies.values())
