"""Bias correction (quant.bias_correction): hand-computed shift, per-layer calibration-set output error reduced,
group mode identical to single mode, and switching it off restores the FP biases exactly."""
from __future__ import annotations

import torch
from torch import nn

from lpq.quant.bias_correction import input_channel_means
from lpq.quant.model import QuantModel, weight_shift
from lpq.quant.quantizer import make_quantizer


def test_linear_shift_by_hand():
    layer = nn.Linear(2, 2)
    dw = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    mean = torch.tensor([2.0, 3.0])
    # output 0: 0.5*2 - 1*3 = -2; output 1: 0*2 + 2*3 = 6
    assert torch.equal(weight_shift(layer, dw, mean), torch.tensor([-2.0, 6.0]))


def test_grouped_conv_shift_by_hand():
    conv = nn.Conv2d(4, 2, 1, groups=2)
    dw = torch.tensor([[[[1.0]], [[2.0]]], [[[3.0]], [[-1.0]]]])  # [out=2, in/groups=2, 1, 1]
    mean = torch.tensor([1.0, 10.0, 100.0, 1000.0])
    # out 0 reads inputs 0,1: 1*1 + 2*10 = 21; out 1 reads inputs 2,3: 3*100 - 1*1000 = -700
    assert torch.equal(weight_shift(conv, dw, mean), torch.tensor([21.0, -700.0]))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x)) + 0.5
        return self.fc(x.mean((2, 3)))


def _setup(seed=0):
    torch.manual_seed(seed)
    net = Net().eval()
    batches = [torch.randn(16, 3, 12, 12) + 0.3 for _ in range(3)]
    qm = QuantModel(net, batches[0][:1])
    quantizers = {u.name: (make_quantizer("int<3>@2"), None) for u in qm.units}
    return qm, batches, quantizers


def _layer_io(qm, batches):
    """Each layer's (FP input, output) on the batches, the model running with its current quantizers."""
    got: dict[str, list] = {}
    handles = [qm._layers[n].register_forward_hook(lambda m, a, y, n=n: got.setdefault(n, []).append((a[0], y)))
               for n in qm._layers]
    with torch.no_grad():
        for b in batches:
            qm(b)
    for h in handles:
        h.remove()
    return got


def test_bias_correction_reduces_every_layers_calibration_output_error():
    qm, batches, quantizers = _setup()
    means = input_channel_means(qm, batches)
    assert set(means) == {"c1", "c2", "fc"} and means["c1"].shape == (3,) and means["fc"].shape == (8,)
    fp_io = _layer_io(qm, batches)  # FP model: the inputs every layer sees, and its FP outputs
    errors = {}
    for on in (False, True):
        qm.set_bias_correction(means if on else None)
        qm.set_quantizers(quantizers)
        for name, layer in qm._layers.items():
            with torch.no_grad():
                err = torch.cat([(layer(x) - y).transpose(0, 1).reshape(y.shape[1], -1) for x, y in fp_io[name]], 1)
            errors[(name, on)] = (err.mean(1).abs().max().item(), err.pow(2).mean().item())
    for name in qm._layers:
        mean_off, mse_off = errors[(name, False)]
        mean_on, mse_on = errors[(name, True)]
        assert mse_on < mse_off, (name, mse_on, mse_off)
        if name == "fc":  # no padding: the calibration-set mean output error is removed exactly
            assert mean_on < 1e-4 * max(1.0, mean_off)


def test_group_mode_equals_single_mode_with_bias_correction():
    qm, batches, quantizers = _setup(1)
    qm.set_bias_correction(input_channel_means(qm, batches))
    qm.set_quantizers(quantizers)
    expected_bias = {n: qm.bias_for(n, quantizers[n][0]) for n in qm._layers}
    assert all(torch.equal(qm._layers[n].bias, expected_bias[n]) for n in qm._layers)  # single mode applied it
    qm.set_group([quantizers, quantizers])
    try:
        for name, layer in qm._layers.items():
            inp = torch.randn(4, layer.weight.shape[1], 5, 5) if isinstance(layer, nn.Conv2d) else torch.randn(4, 8)
            ref = layer._conv_forward(inp, layer.weight, layer.bias) if isinstance(layer, nn.Conv2d) \
                else nn.functional.linear(inp, layer.weight, layer.bias)
            assert torch.allclose(qm.group_forward(name, layer, inp), ref, atol=0, rtol=0)
    finally:
        qm.set_group(None)


def test_switching_off_restores_fp_biases_and_weights():
    qm, batches, quantizers = _setup(2)
    fp_bias = {n: (None if l.bias is None else l.bias.detach().clone()) for n, l in qm._layers.items()}
    fp_out = qm(batches[0]).detach()
    qm.set_bias_correction(input_channel_means(qm, batches))
    qm.set_quantizers(quantizers)
    corrected = qm(batches[0]).detach()
    assert not torch.equal(corrected, fp_out)
    assert qm._layers["c2"].bias is not None  # a zero bias was added to the bias-free layer
    qm.set_bias_correction(None)
    qm.set_quantizers({})
    assert torch.equal(qm(batches[0]).detach(), fp_out)
    for n in ("c1", "fc"):
        assert torch.equal(qm._layers[n].bias, fp_bias[n])


def test_input_aware_correction_removes_the_activation_quantizers_mean_shift():
    from lpq.quant.bias_correction import input_channel_stats, mode_of

    qm, batches, _ = _setup(3)
    aq = make_quantizer("lp<4,1,2,0>")
    quantizers = {u.name: (make_quantizer("int<3>@2"), aq) for u in qm.units}
    means, samples = input_channel_stats(qm, batches, samples=10**6)  # every position: the sample mean is exact
    assert samples["fc"].shape == (8, 48) and samples["c1"].shape[0] == 3
    fp_io = _layer_io(qm, batches)
    shift = {}
    for aware in (False, True):
        qm.set_bias_correction(means, samples if aware else None)
        qm.set_quantizers(quantizers)
        layer = qm._layers["fc"]
        with torch.no_grad():
            err = torch.cat([layer(aq(x)) - y for x, y in fp_io["fc"]], 0)
        shift[aware] = err.mean(0).abs().max().item()
    assert shift[True] < 1e-4 < shift[False]
    assert [mode_of(v) for v in (False, True, "weights", "inputs", "none")] == ["off", "weights", "weights", "inputs", "off"]


def test_offset_inputs_depthwise_regression():
    """Regression (MobileNet v1 on the pack, docs/results.md): a depthwise 3x3 layer whose input channels sit on a
    large mean with a small spread (ReLU6 outputs, mean 2.88, std 0.61). Per-channel FP8 weights then shift every
    output pixel by dW.E[x], which dominates the output error; bias correction removes that shift, and the remaining
    error is what the spread alone carries (here more than 4x smaller)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3, padding=1, groups=16)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(16, 1, 3, 3) * 0.3)
        conv.weight[:, 0, 1, 1] = -3.1 * torch.sign(torch.randn(16))  # a dominant centre tap
    model = nn.Sequential(conv)
    x = (2.88 + 0.61 * torch.randn(64, 16, 12, 12)).clamp(0, 6)
    qm = QuantModel(model, x[:1])
    rows = qm.fp_weight("0").reshape(16, -1).numpy()
    from lpq.quant.calibrate import resolve

    r = resolve("fp8_e4m3", qm.fp_weight("0").numpy(), per_channel=True)
    quantizers = {"0": (make_quantizer(r.spec, r.channel_sf), None)}
    assert rows.shape == (16, 9)
    with torch.no_grad():
        y = model(x)
    err = {}
    for on in (False, True):
        qm.set_bias_correction(input_channel_means(qm, [x[:32]]) if on else None)
        qm.set_quantizers(quantizers)
        with torch.no_grad():
            d = qm(x[32:]) - y[32:]
        err[on] = (d.pow(2).mean() / y[32:].var()).item()
    assert err[True] * 4 < err[False], err
