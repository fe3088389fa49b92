"""`bitfusion45`: BitFusion's (ISCA'18) tiling simulator (HWMODEL §7.4), hand-derived small layers and
the `lpq hwsim` selection."""
from __future__ import annotations

import csv
import json

import pytest

from hwmodel import bitfusion45 as bf
from hwmodel.ant_compat import LayerGeom, design_pe
from hwmodel.config import load_hw
from lpq.cli import main


@pytest.fixture(scope="module")
def hw():
    return load_hw("bitfusion", "bitfusion45", ["hw.batch=16"])


def _search(hw, geo, bits, im2col):
    return bf.search_layer(geo, bits, bits, 16, 32, design_pe(hw.design, hw.profile), hw.profile, im2col)


def test_profile_parameters(hw):
    p = hw.profile
    assert p.arrays["bitfusion"] == (16, 32) and p.arch["if_width_bits"] == 192 and not p.validated
    assert (p.arch["wbuf_bytes"], p.arch["ibuf_bytes"], p.arch["obuf_bytes"]) == (65536, 32768, 16384)
    assert p.energy["pe82_dyn"] == pytest.approx(0.55992)
    assert p.energy["dram"] == 15.0
    assert p.energy["ibuf_read"] * 8 == pytest.approx(0.476, abs=5e-4)  # 2 KB bank, 4-byte access (§7.4)


def test_direct_conv_layer_by_hand(hw):
    """3×3 conv, 16 → 32 channels, 8×8 output, stride 1, batch 1, 8 bit (P = 1), not the first layer.
    The whole layer is one tile: wgt ⌈9·16/16⌉·16·32·8 = 36,864 bits, act with halo (3+7)²·16·8 = 12,800,
    out 8·8·⌈32/32⌉·32·32 = 65,536 (= half the OBUF); compute b·⌈oc/c⌉·ow·oh·K²·⌈ic/(a·P)⌉ = 576.
    Every operand fits, so initial = 115,200 and final = 65,536 bits: stall ⌈115200/192⌉ + ⌈65536/192⌉
    = 600 + 342 = 942, no middle traffic. The 32-bit partial sums are drained and read back: DRAM reads
    = wgt + act + out."""
    r = _search(hw, LayerGeom(1, 8, 8, 16, 32, 9, 1, S=1, KH=3, KW=3), 8, im2col=False)
    assert r["tile"] == {"b": 1, "oh": 8, "ow": 8, "ic": 16, "oc": 32}
    assert (r["compute_cycles"], r["stall_cycles"], r["total_cycles"]) == (576, 942, 1518)
    assert (r["wbuf_write_bits"], r["ibuf_write_bits"]) == (36_864, 12_800)
    assert r["dram_write_bits"] == 65_536
    assert r["dram_read_bits"] - 36_864 - 12_800 == 65_536  # partial-sum reload
    # output stationary is the cheapest SRAM order: 32·64·(9·16) operand reads of 8 bits, 32·64 psums
    assert r["ibuf_read_bits"] == r["wbuf_read_bits"] == 32 * 64 * 144 * 8
    assert r["obuf_write_bits"] == 32 * 64 * 32 + 65_536 and r["obuf_read_bits"] == 32 * 64 * 32 + 65_536


def test_first_layer_is_lowered_with_im2col(hw):
    """3×3 conv, 3 → 32, 8×8 output, first layer: act tile ow·oh·K²·ic·b·8 (no halo), compute
    b·oh·ow·⌈oc/c⌉·⌈K²·ic/(a·P)⌉ = 64·1·⌈27/16⌉ = 128; wgt ⌈27/16⌉·16·32·8 = 8,192; all tiles
    promote, so stall = ⌈(8192 + 13824 + 65536)/192⌉ + ⌈65536/192⌉ = 456 + 342."""
    r = _search(hw, LayerGeom(1, 8, 8, 3, 32, 9, 1, S=1, KH=3, KW=3), 8, im2col=True)
    assert (r["compute_cycles"], r["stall_cycles"]) == (128, 798)
    assert (r["wbuf_write_bits"], r["ibuf_write_bits"]) == (8_192, 64 * 27 * 8)
    assert (r["dram_read_bits"], r["dram_write_bits"]) == (8_192 + 13_824 + 65_536, 65_536)


def test_product_packs_the_reduction_dimension(hw):
    """Linear 64 × 256 → 32: ⌈256/(16·P)⌉ per output block, P = 1 at 8 bit, (8/4)² = 4 at 4 bit, 16 at 2."""
    geo = LayerGeom(64, 1, 1, 256, 32, 1, 1)
    assert [_search(hw, geo, b, True)["compute_cycles"] for b in (8, 4, 2)] == [64 * 16, 64 * 4, 64 * 1]


def test_only_bitfusion_has_an_array(hw):
    with pytest.raises(ValueError, match="not simulated by profile bitfusion45"):
        from hwmodel.simulate import array_size

        array_size(load_hw("ant", "bitfusion45"))


def test_lpq_hwsim_selects_bitfusion45(tmp_path):
    rc = main(["hwsim", "model=digits_cnn", "hw=bitfusion", "hw/profile=bitfusion45", "hw.batch=16",
               "hw.baseline=bitfusion", "hw.normalise_also=[]", f"out_dir={tmp_path}"])
    assert rc == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["meta"]["profile"] == "bitfusion45" and s["meta"]["validated"] is False
    assert s["meta"]["array"] == [16, 32] and s["meta"]["accounting"] == "bitfusion_tiling"
    assert s["layers"] == 7 and s["cycles"]["total"] == s["cycles"]["compute"] + s["cycles"]["stall"]
    assert s["energy_pj"]["static"] == 0.0 and s["energy_pj"]["dram"] > 0
    with open(tmp_path / "layers.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["tiling"].startswith("im2col:") and rows[1]["tiling"].startswith("direct:")
