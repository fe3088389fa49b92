"""`ant_compat` reproduces the ANT (MICRO'22) simulator on ResNet-18 (HWMODEL §7.3, §9 V4, V8)."""
from __future__ import annotations

import pytest
import torch

from hwmodel.ant_compat import LayerGeom, pf, simulate_record
from hwmodel.config import load_hw
from hwmodel.extract import extract_gemms
from hwmodel.precision import rule_precisions
from hwmodel.simulate import simulate

DESIGNS = ("ant", "bitfusion", "adafloat", "olaccel")


@pytest.fixture(scope="module")
def resnet18():
    import timm

    with torch.device("meta"):
        model = timm.create_model("resnet18", pretrained=False)
    return extract_gemms(model, (3, 224, 224))


@pytest.fixture(scope="module")
def hw():
    return {d: load_hw(d, "ant_compat") for d in DESIGNS + ("ant_ws",)}


def _layer(records, hw, design, name, batch):
    rec = next(r for r in records if r.name == name)
    i = records.index(rec)
    h = hw[design]
    prec = rule_precisions(h.design, records, "resnet18")[i]
    R, C = h.profile.arrays[design]
    return simulate_record(rec.at_batch(batch), prec, h.design, h.profile, R, C, h.design.dataflow)


@pytest.mark.parametrize("design,name,batch,compute,total", [
    ("ant", "conv1", 1, 392 * 2 * 147, 115_408), ("bitfusion", "conv1", 1, 392 * 2 * 147, 115_408),
    ("adafloat", "conv1", 1, 392 * 3 * 147, 173_036),
    ("ant", "layer1.0.conv1", 1, 49 * 1 * 576, 28_544), ("bitfusion", "layer1.0.conv1", 1, 98 * 2 * 576, 113_024),
    ("adafloat", "layer1.0.conv1", 1, 98 * 3 * 576, 169_458),
    ("ant", "conv1", 64, 7_375_872, 7_375_984), ("bitfusion", "conv1", 64, 7_375_872, 7_375_984),
    ("adafloat", "conv1", 64, 11_063_808, 11_063_918),
    ("ant", "layer1.0.conv1", 64, 3136 * 576, 1_806_576), ("bitfusion", "layer1.0.conv1", 64, 6272 * 2 * 576, 7_225_392),
    ("adafloat", "layer1.0.conv1", 64, 6272 * 3 * 576, 10_838_060),
])
def test_v4_layer_cycles_exact(resnet18, hw, design, name, batch, compute, total):
    row = _layer(resnet18, hw, design, name, batch)
    assert (row["compute_cycles"], row["total_cycles"]) == (compute, total)


@pytest.mark.parametrize("design,rd,wr", [("ant", 513_966_080, 411_041_792), ("bitfusion", 4_932_501_504, 205_520_896),
                                          ("adafloat", 4_521_459_712, 205_520_896)])
def test_v4_layer_dram_bits_exact(resnet18, hw, design, rd, wr):
    row = _layer(resnet18, hw, design, "layer1.0.conv1", 64)
    assert (8 * row["dram_reads_bytes"], 8 * row["dram_writes_bytes"]) == (rd, wr)


@pytest.fixture(scope="module")
def network64(resnet18, hw):
    out = {}
    for d in DESIGNS:
        h = hw[d]
        out[d] = simulate(resnet18, rule_precisions(h.design, resnet18, "resnet18"), h, "resnet18")
    return out


def _parts(result, base):
    e = result.summary["energy_pj"]
    t = base.summary["energy_pj"]["total"]
    return [e["static"] / t, e["dram"] / t, e["sram"] / t, e["compute"] / t]


def test_v4_network_batch64_time_and_energy_vs_adafloat(network64):
    base = network64["adafloat"]
    assert base.summary["cycles"]["total"] == 149_187_322
    assert base.summary["energy_pj"]["total"] / 1e3 == pytest.approx(3.577e8, rel=0.001)
    expected = {"ant": (0.227, [0.092, 0.044, 0.099, 0.067], 0.302), "bitfusion": (0.687, [0.278, 0.140, 0.183, 0.202], 0.803),
                "olaccel": (0.898, None, 0.630)}
    for d, (time, parts, energy) in expected.items():
        s = network64[d].summary
        assert s["cycles"]["total"] / base.summary["cycles"]["total"] == pytest.approx(time, rel=0.02), d
        assert s["energy_pj"]["total"] / base.summary["energy_pj"]["total"] == pytest.approx(energy, rel=0.02), d
        if parts:
            assert _parts(network64[d], base) == pytest.approx(parts, abs=0.0015), d


def test_v8_ant_over_bitfusion_published_ratios(network64):
    ant, bf = network64["ant"].summary, network64["bitfusion"].summary
    assert bf["cycles"]["total"] / ant["cycles"]["total"] == pytest.approx(3.0, rel=0.02)
    assert bf["energy_pj"]["total"] / ant["energy_pj"]["total"] == pytest.approx(2.7, rel=0.02)


def test_ant_ws_variant_time(resnet18, hw, network64):
    h = hw["ant_ws"]
    ws = simulate(resnet18, rule_precisions(h.design, resnet18, "resnet18"), h, "resnet18")
    assert ws.summary["cycles"]["total"] / network64["adafloat"].summary["cycles"]["total"] == pytest.approx(0.232, rel=0.02)


def test_lane_factors_and_geometry():
    assert [pf(b, 8, 4) for b in (2, 3, 4, 5, 8)] == [2, 2, 2, 1, 1]
    assert [pf(b, 8, 2) for b in (2, 3, 4, 8)] == [4, 2, 2, 1]
    assert pf(6, 6, 6) == 1


def test_linear_layers_map_to_kk1_o1(resnet18):
    geo = LayerGeom.of(resnet18[-1].at_batch(64))
    assert (geo.B, geo.OH, geo.OW, geo.IC, geo.OC, geo.kk2) == (64, 1, 1, 512, 1000, 1)


def test_designs_without_an_artifact_array_are_rejected(resnet18):
    h = load_hw("int8", "ant_compat")
    with pytest.raises(ValueError, match="hw=int8 is not simulated by profile ant_compat"):
        simulate(resnet18, rule_precisions(h.design, resnet18), h)


@pytest.mark.parametrize("name", ["conv1", "layer1.0.conv1", "layer2.0.downsample.0", "layer4.1.conv2", "fc"])
@pytest.mark.parametrize("design", ["ant", "bitfusion", "ant_ws"])
def test_pruned_search_equals_the_exhaustive_search(resnet18, hw, name, design):
    from hwmodel.ant_compat import design_pe, search_layer

    rec = next(r for r in resnet18 if r.name == name).at_batch(8)
    h = hw[design]
    R, C = h.profile.arrays[design]
    args = (LayerGeom.of(rec), 4, 4, R, C, h.design.dataflow, design_pe(h.design, h.profile), h.profile)
    assert search_layer(*args) == search_layer(*args, prune=False)
