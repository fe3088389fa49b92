"""ANT's eight networks with the artifact's own layer lists and precisions (HWMODEL §9 V4, V8)."""
from __future__ import annotations

import math

import pytest
import torch

from hwmodel.ant_networks import DESIGNS, load_ant_networks, published
from hwmodel.config import load_hw
from hwmodel.extract import extract_gemms
from hwmodel.precision import rule_precisions
from hwmodel.simulate import simulate

LAYERS = {"vgg16": 16, "resnet18": 21, "resnet50": 54, "inceptionv3": 95, "vit": 50, "mnli": 74, "cola": 74, "sst_2": 74}


@pytest.fixture(scope="module")
def nets():
    return load_ant_networks()


@pytest.fixture(scope="module")
def results(nets):
    """(cycles, energy) per (design, network) at batch 64, the artifact's run."""
    out = {}
    for design in DESIGNS:
        hw = load_hw(design, "ant_compat")
        for name, net in nets.items():
            s = simulate(*net.workload(hw.design), hw, name).summary
            out[design, name] = (s["cycles"]["total"], s["energy_pj"]["total"])
    return out


def test_layer_lists(nets):
    assert {n: len(net.records) for n, net in nets.items()} == LAYERS
    assert sum(r.macs for r in nets["resnet18"].records) == 1_814_073_344  # §1.5 anchor, torchvision order
    # the patch-embedding conv is in BitFusion's ViT list only
    assert nets["vit"].bits["bitfusion"][0] == 8
    assert all(nets["vit"].bits[d][0] is None for d in ("ant", "adafloat", "olaccel"))


def test_resnet18_lists_equal_the_pinned_rules(nets):
    """The artifact's ResNet-18 lists are the §7.1 rules that V4 checks on the timm extraction."""
    import timm

    with torch.device("meta"):
        records = extract_gemms(timm.create_model("resnet18", pretrained=False), (3, 224, 224))
    assert [r.macs for r in records] == [r.macs for r in nets["resnet18"].records]
    for design in DESIGNS:
        hw = load_hw(design, "ant_compat")
        rule = [p.a.bits for p in rule_precisions(hw.design, records, "resnet18")]
        assert rule == list(nets["resnet18"].bits[design]), design


def test_inception_non_square_kernels_run_as_kh_squared(nets):
    """Quirk A3: the artifact simulates a KH×KH kernel (1×7 → 1×1, 7×1 → 7×7)."""
    rec = nets["inceptionv3"].records[32]  # Mixed_6b 1×7, 128 → 128
    assert (rec.conv.KH, rec.conv.KW, rec.K) == (1, 1, 128)
    assert nets["inceptionv3"].records[33].K == 49 * 128


@pytest.mark.parametrize("metric,k,tol", [("time", 0, 0.006), ("energy", 1, 0.012)])
def test_per_network_ratios_match_the_artifact(nets, results, metric, k, tol):
    """Every network's ratio vs AdaFloat equals ant_res.csv to its rounding (two decimals; energy is a
    sum of four rounded parts)."""
    pub = published()[metric]
    for design in ("ant", "bitfusion", "olaccel"):
        got = [results[design, n][k] / results["adafloat", n][k] for n in nets]
        assert got == pytest.approx(pub[design], abs=tol), design


def test_ant_over_bitfusion_eight_network_geomean(nets, results):
    """V8: 2.8× speed-up and 2.5× energy (measured 2.83× / 2.49×), ±15 % loose check of §9 V4."""
    for k, target in ((0, 2.8), (1, 2.5)):
        ratios = [results["bitfusion", n][k] / results["ant", n][k] for n in nets]
        geomean = math.exp(sum(map(math.log, ratios)) / len(ratios))
        assert geomean == pytest.approx(target, rel=0.15)
        assert geomean == pytest.approx(target, rel=0.02)  # what the pinned lists actually give
