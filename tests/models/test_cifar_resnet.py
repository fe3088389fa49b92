"""CIFAR ResNets (option A): architecture against hand-derived counts, checkpoint layouts of the published
files (legacy pickle, `module.` prefixes, plain state dicts, safetensors), errors, taps and the hwsim workload."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from lpq.models import build_model
from lpq.models.cifar_resnet import CifarResNet, PadShortcut, cifar_resnet


def _macs(depth: int) -> int:
    """Hand-derived batch-1 MACs: stem 32²·16·27, every other 3x3 conv at its stage 2 359 296 (the two stride-2
    convs 1 179 648), Linear 640."""
    n = (depth - 2) // 6
    full = 2_359_296
    return 32 * 32 * 16 * 27 + 2 * n * full + 2 * 1_179_648 + 2 * (2 * n - 1) * full + 64 * 10


def _params(depth: int) -> int:
    """Conv weights + BN (2 per channel) + Linear, by hand."""
    n = (depth - 2) // 6
    convs = 3 * 16 * 9 + (2 * n * 16 * 16 * 9) + (16 * 32 * 9 + (2 * n - 1) * 32 * 32 * 9) + (32 * 64 * 9 + (2 * n - 1) * 64 * 64 * 9)
    bn = 2 * (16 + 2 * n * (16 + 32 + 64))
    return convs + bn + 64 * 10 + 10


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_parameter_count_and_layout(depth):
    m = cifar_resnet(depth)
    assert sum(p.numel() for p in m.parameters()) == _params(depth)
    n = (depth - 2) // 6
    keys = set(m.state_dict())
    assert {"conv1.weight", "bn1.running_var", "linear.weight", "linear.bias", f"layer3.{n - 1}.bn2.bias"} <= keys
    assert f"layer1.{n}.conv1.weight" not in keys
    assert m.lpq_taps == tuple(f"layer{s}.{i}" for s in (1, 2, 3) for i in range(n))


def test_published_sizes():
    # akamaster/pytorch_resnet_cifar10 README: ResNet-32 0.46 M, ResNet-44 0.66 M parameters
    assert round(_params(32) / 1e6, 2) == 0.46 and round(_params(44) / 1e6, 2) == 0.66


@pytest.mark.parametrize("depth", [0, 19, 21, 33])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        cifar_resnet(depth)


def test_option_a_shortcut_by_hand():
    x = torch.arange(2 * 16 * 4 * 4, dtype=torch.float32).reshape(2, 16, 4, 4)
    y = PadShortcut(8)(x)
    assert y.shape == (2, 32, 2, 2)
    assert torch.equal(y[:, :8], torch.zeros(2, 8, 2, 2)) and torch.equal(y[:, 24:], torch.zeros(2, 8, 2, 2))
    assert torch.equal(y[:, 8:24], x[:, :, 0::2, 0::2])


def test_forward_matches_a_functional_rewrite():
    """The block order (conv-BN-ReLU-conv-BN, + shortcut, ReLU) written out with torch.nn.functional."""
    torch.manual_seed(0)
    m = cifar_resnet(20)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    m.eval()
    x = torch.randn(3, 3, 32, 32)
    sd = m.state_dict()

    def bn(t, p):
        return F.batch_norm(t, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                            False, 0.0, 1e-5)

    h = F.relu(bn(F.conv2d(x, sd["conv1.weight"], padding=1), "bn1"))
    for s in (1, 2, 3):
        for i in range(3):
            p = f"layer{s}.{i}"
            stride = 2 if s > 1 and i == 0 else 1
            y = F.relu(bn(F.conv2d(h, sd[p + ".conv1.weight"], stride=stride, padding=1), p + ".bn1"))
            y = bn(F.conv2d(y, sd[p + ".conv2.weight"], padding=1), p + ".bn2")
            sc = h if stride == 1 else F.pad(h[:, :, ::2, ::2], (0, 0, 0, 0, y.shape[1] // 4, y.shape[1] // 4))
            h = F.relu(y + sc)
    ref = F.linear(h.mean((2, 3)), sd["linear.weight"], sd["linear.bias"])
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def r20_state():
    torch.manual_seed(1)
    return cifar_resnet(20).state_dict()


def _cfg(**kw):
    return OmegaConf.create({"kind": "cifar_resnet", "name": None, "depth": 20, "checkpoint": None, "taps": None, **kw})


def test_loads_published_layout_and_plain_state_dicts(tmp_path, r20_state):
    from safetensors.torch import save_file

    published = {"best_prec1": 91.7, "state_dict": {f"module.{k}": v for k, v in r20_state.items()
                                                    if not k.endswith("num_batches_tracked")}}
    torch.save(published, tmp_path / "resnet20-x.th", _use_new_zipfile_serialization=False)  # legacy pickle
    torch.save(r20_state, tmp_path / "plain.pt")
    save_file({k: v.contiguous() for k, v in r20_state.items()}, str(tmp_path / "w.safetensors"))
    x = torch.randn(2, 3, 32, 32)
    ref = cifar_resnet(20)
    ref.load_state_dict(r20_state)
    with torch.no_grad():
        want = ref.eval()(x)
        for f in ("resnet20-x.th", "plain.pt", "w.safetensors"):
            loaded = build_model(_cfg(checkpoint=str(tmp_path / f)))
            assert loaded.name == "cifar_resnet20" and loaded.input_size == (3, 32, 32)
            assert not loaded.module.training
            assert torch.equal(loaded.module(x), want), f


def test_no_checkpoint_is_an_error():
    with pytest.raises(ValueError, match="needs pretrained weights.*random weights are never used"):
        build_model(_cfg())
    with pytest.raises(ValueError, match="model.depth is not set"):
        build_model(_cfg(depth="???", checkpoint="x.th"))


def test_wrong_depth_names_the_keys(tmp_path):
    torch.save(cifar_resnet(32).state_dict(), tmp_path / "r32.pt")
    with pytest.raises(ValueError) as err:
        build_model(_cfg(checkpoint=str(tmp_path / "r32.pt")))
    msg = str(err.value)
    assert "unexpected keys" in msg and "layer1.3." in msg and "model.depth=32" in msg


def test_config_files_compose():
    from lpq.cli import compose

    for d in (20, 32, 44, 56, 110):
        cfg = compose([f"model=cifar_resnet{d}", "out_dir=x"])
        assert cfg.model.kind == "cifar_resnet" and cfg.model.depth == d and cfg.model.name == f"cifar_resnet{d}"


@pytest.mark.parametrize("depth", [20, 32, 56])
def test_hwsim_workload(depth):
    from hwmodel.workload import total_macs
    from lpq.cli import compose
    from lpq.runs.hwsim import load_workload

    cfg = compose([f"model=cifar_resnet{depth}", "out_dir=x"])
    wl, name = load_workload(cfg)
    assert name == f"cifar_resnet{depth}"
    assert total_macs(wl.records) == _macs(depth)
    assert len(wl.records) == depth  # 6n+1 convs and the Linear; option-A shortcuts have no GEMM
