"""BatchNorm folding (LPQ §1): the folded model computes the same function, every conv->BN
pair is folded, and nothing that is not such a pair is touched."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lpq.models.embedded import digits_cnn
from lpq.quant.fold import fold_batchnorm

from ._util import randomize_batchnorm

RTOL, ATOL = 1e-5, 1e-5


def _bns(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def _fold_and_compare(model: nn.Module, x: torch.Tensor, atol: float = ATOL):
    model.eval()
    before = model(x)
    pairs = fold_batchnorm(model)
    after = model(x)
    assert after.shape == before.shape
    torch.testing.assert_close(after, before, rtol=RTOL, atol=atol * max(1.0, float(before.abs().max())))
    return pairs


class ConvBNNet(nn.Module):
    def __init__(self, conv_bias: bool, affine: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=conv_bias)
        self.bn1 = nn.BatchNorm2d(8, affine=affine)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=conv_bias)  # depthwise
        self.bn2 = nn.BatchNorm2d(8, affine=affine)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = y + self.relu(self.bn2(self.dw(y)))
        return self.fc(y.mean((2, 3)))


@pytest.mark.parametrize("conv_bias", [False, True])
@pytest.mark.parametrize("affine", [True, False])
def test_fold_small_net_same_outputs(conv_bias, affine):
    torch.manual_seed(0)
    model = ConvBNNet(conv_bias, affine)
    randomize_batchnorm(model, seed=1)
    x = torch.randn(4, 3, 9, 7)
    pairs = _fold_and_compare(model, x)
    assert sorted(pairs) == [("conv1", "bn1"), ("dw", "bn2")]
    assert isinstance(model.bn1, nn.Identity) and isinstance(model.bn2, nn.Identity)
    assert model.conv1.bias is not None and model.dw.bias is not None
    assert _bns(model) == []


def test_fold_matches_float64_formula():
    """Folded weight and bias equal W·γ/√(σ²+ε) and β + (b − μ)·γ/√(σ²+ε)."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(2, 5, 3, bias=True), nn.BatchNorm2d(5, eps=1e-3)).eval()
    randomize_batchnorm(model, seed=2)
    conv, bn = model[0], model[1]
    w, b = conv.weight.detach().double().clone(), conv.bias.detach().double().clone()
    factor = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    want_w = w * factor.view(-1, 1, 1, 1)
    want_b = bn.bias.double() + (b - bn.running_mean.double()) * factor
    assert fold_batchnorm(model) == [("0", "1")]
    torch.testing.assert_close(model[0].weight.double(), want_w.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(model[0].bias.double(), want_b.detach(), rtol=1e-6, atol=1e-7)
    assert isinstance(model[1], nn.Identity)


def test_fold_digits_cnn_random_stats():
    torch.manual_seed(0)
    model = digits_cnn().eval()
    randomize_batchnorm(model, seed=3)
    x = torch.randn(8, 1, 8, 8)
    pairs = _fold_and_compare(model, x)
    assert len(pairs) == 6
    assert ("layer2.shortcut.0", "layer2.shortcut.1") in pairs
    assert _bns(model) == []


class SharedConvOutput(nn.Module):
    """The conv output feeds the BN and a second branch: folding would change the branch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class BNNotAfterConv(nn.Module):
    """BNs fed by the input and by a ReLU: no conv to fold into."""

    def __init__(self):
        super().__init__()
        self.bn_in = nn.BatchNorm2d(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.bn_after_relu = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn_after_relu(self.relu(self.conv(self.bn_in(x))))


@pytest.mark.parametrize("cls", [SharedConvOutput, BNNotAfterConv])
def test_fold_leaves_non_pairs_alone(cls):
    torch.manual_seed(0)
    model = cls().eval()
    randomize_batchnorm(model, seed=4)
    bns_before = _bns(model)
    pairs = _fold_and_compare(model, torch.randn(2, 3, 5, 5))
    assert pairs == []
    assert _bns(model) == bns_before


def test_fold_skips_bn_without_running_stats():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)).eval()
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        before = model(x)
        fold_batchnorm(model)
        after = model(x)
    assert isinstance(model[1], nn.BatchNorm2d)
    torch.testing.assert_close(after, before)


@pytest.mark.parametrize("name", ["test_efficientnet", "mobilenetv2_050"])
def test_fold_timm_batchnormact(name):
    """timm's BatchNormAct2d (BN + activation) is folded; its activation stays in place."""
    timm = pytest.importorskip("timm")
    from timm.layers import BatchNormAct2d

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    randomize_batchnorm(model, seed=5)
    bnact = {n: type(m.act) for n, m in model.named_modules() if isinstance(m, BatchNormAct2d)}
    assert bnact, "the model should contain BatchNormAct2d"
    x = torch.randn(2, 3, 48, 48)
    pairs = _fold_and_compare(model, x)
    assert len(pairs) == len(_bns_of(name))
    assert _bns(model) == []
    mods = dict(model.named_modules())
    for n, act_type in bnact.items():
        replaced = mods[n]
        if act_type is nn.Identity:
            assert isinstance(replaced, nn.Identity)
        else:  # the activation (possibly behind a drop) replaces the BN
            assert isinstance(replaced, act_type) or any(isinstance(c, act_type) for c in replaced.children())


def _bns_of(name: str) -> list[str]:
    import timm

    return _bns(timm.create_model(name, pretrained=False))


def test_fold_timm_resnet_plain_batchnorm():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", pretrained=False).eval()
    randomize_batchnorm(model, seed=6)
    n_bn = len(_bns(model))
    pairs = _fold_and_compare(model, torch.randn(2, 3, 40, 40))
    assert len(pairs) == n_bn
    assert _bns(model) == []


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, so folding uses module order."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU())
        self.conv = nn.Conv2d(6, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        y = self.body(x)
        if float(y.sum()) > 0:
            return self.bn(self.conv(y))
        return -self.bn(self.conv(y))


def test_fold_fallback_for_untraceable_models():
    torch.manual_seed(0)
    model = Untraceable().eval()
    randomize_batchnorm(model, seed=7)
    pairs = _fold_and_compare(model, torch.randn(2, 3, 6, 6))
    assert ("body.0", "body.1") in pairs  # a Sequential conv -> BN is always safe to fold
    assert set(pairs) <= {("body.0", "body.1"), ("conv", "bn")}


class UntraceableMisleadingOrder(nn.Module):
    """Registered conv then BN (same width, same parent), but the BN reads the block input,
    not the conv output: folding it into the conv would change the function."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        if float(x.sum()) > 0:
            return self.conv(x) + self.bn(x)
        return self.conv(x) - self.bn(x)


def test_fold_fallback_never_changes_the_function():
    """Folding must preserve outputs for every model it accepts, traceable or not (LPQ §1)."""
    torch.manual_seed(0)
    model = UntraceableMisleadingOrder().eval()
    randomize_batchnorm(model, seed=8)
    reference = copy.deepcopy(model)
    x = torch.randn(2, 4, 5, 5).abs()
    with torch.no_grad():
        fold_batchnorm(model)
        torch.testing.assert_close(model(x), reference(x), rtol=RTOL, atol=ATOL)
