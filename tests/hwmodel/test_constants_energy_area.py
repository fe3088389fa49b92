"""Constant tables, node scaling, the energy engine and iso-area sizing (HWMODEL §5, §6, §9 V5/V6)."""
from __future__ import annotations

import pytest

from hwmodel.area import design_area_mm2, iso_area_array, rows_cols
from hwmodel.config import conf_dir, load_hw
from hwmodel.constants import load_table
from hwmodel.energy import evaluate, layer_groups
from hwmodel.scaling import scale_area, scale_energy


@pytest.fixture(scope="module")
def d28():
    return load_hw("lpa").profile


def test_node_scaling_factors():
    assert scale_energy(1.0, 45, 28) == 0.513 and scale_energy(1.0, 45, 28, 0.9) == 0.507
    assert scale_area(1.0, 45, 28) == 0.377 and scale_energy(2.0, 28, 28) == 2.0
    assert scale_energy(1.0, 40, 28) == 0.59
    assert scale_energy(1.0, 45, 40) == pytest.approx(0.513 / 0.59)
    with pytest.raises(ValueError, match="node_nm=14"):
        scale_energy(1.0, 14, 28)


@pytest.mark.parametrize("key,spec_value", [
    ("int8_mac", 0.15), ("int4_mac", 0.06), ("int2_mac", 0.03), ("int16_mac", 0.48), ("fused_int_pe_cycle", 0.286),
    ("fp8_mac", 0.27), ("af8_mac", 0.17), ("lp8_mac", 0.145), ("fused_lp_pe_cycle", 0.275), ("biscaled_pe_cycle", 0.126),
    ("reg_bit", 0.0053), ("postproc", 0.45), ("fp16_fma", 0.77), ("fp32_fma", 2.35),
])
def test_default28_energies_match_the_spec_table(d28, key, spec_value):
    assert d28.e(key) == pytest.approx(spec_value, rel=0.03)  # the spec rounds (x0.51)


def test_memory_energies_per_byte(d28):
    per_byte = {k: 8 * d28.e(k) for k in ("wbuf_read", "wbuf_write", "ibuf_read", "ibuf_write", "obuf_read", "obuf_write")}
    assert per_byte == pytest.approx({"wbuf_read": 0.264, "wbuf_write": 0.318, "ibuf_read": 0.278, "ibuf_write": 0.389,
                                      "obuf_read": 0.074, "obuf_write": 0.104}, rel=0.01)
    assert 8 * d28.e("dram_lpddr4") == 64.0
    assert d28.e("shifter32") * 8 / 32 == pytest.approx(0.06, rel=0.03)  # e_dec(8)
    rho = d28.e("fused_int_pe_leak") / d28.a("fused_int_pe")
    assert rho == pytest.approx(1.0e-4, rel=0.02)


@pytest.mark.parametrize("key,spec_value", [
    ("int8_pe", 259), ("int4_pe", 106), ("int2_pe", 47), ("int16_pe", 831), ("fused_int_pe", 653), ("fp8_pe", 470),
    ("lp8_pe", 290), ("fused_lp_pe", 731), ("lp_decoder", 60), ("af8_pe", 747), ("olaccel_pe", 2323),
    ("biscaled_pe", 261),
])
def test_default28_areas_match_the_spec_table(d28, key, spec_value):
    assert d28.a(key) == pytest.approx(spec_value, rel=0.01)


def test_lp_tables_hold_the_elma_ratios_by_construction(d28):
    assert d28.e("lp8_mac") / d28.e("int8_mac") == pytest.approx(0.96)
    assert d28.a("lp8_pe") / d28.a("int8_pe") == pytest.approx(1.12)
    assert d28.e("fused_lp_pe_cycle") / d28.e("fused_int_pe_cycle") == pytest.approx(0.96)
    assert d28.a("fused_lp_pe") / d28.a("fused_int_pe") == pytest.approx(1.12)


def test_every_entry_has_a_source():
    import yaml

    for path in (conf_dir() / "hw" / "tables").glob("*.yaml"):
        for name, entry in yaml.safe_load(path.read_text()).items():
            assert entry.get("source"), f"{path.name}:{name}"


def test_horowitz_table_at_its_own_node_is_verbatim():
    table = {"add8": {"value": 0.03, "unit": "pJ", "node_nm": 45, "source": "Horowitz"},
             "mult32": {"value": 3.1, "unit": "pJ", "node_nm": 45, "vdd": 0.9, "source": "Horowitz"},
             "sram64b_8kB": {"value": 10.0, "unit": "pJ", "node_nm": 45, "source": "Horowitz"}}
    assert load_table(table, 45, 5e8) == {"add8": 0.03, "mult32": 3.1, "sram64b_8kB": 10.0}


def test_ant_constants_are_unscaled():
    p = load_hw("ant", "ant_compat").profile
    assert p.e("pe84_dyn") == 0.55992 and p.e("pe84_leak") == 0.128628
    assert p.e("dram_background") == pytest.approx(969.23)  # 0.96923 nJ per cycle
    assert p.e("pe_lp_dyn") == pytest.approx(0.96 * 0.55992)


def test_engine_is_sum_of_count_times_energy_timeloop_style_table():
    # a custom 45 nm table: 16x16 WS array (Timeloop reference style)
    table = load_table({
        "mac": {"value": 0.315, "unit": "pJ", "node_nm": 45, "source": "custom"},
        "reg_access": {"value": 0.144, "unit": "pJ", "node_nm": 45, "source": "custom", "note": "16-bit"},
        "glb_read": {"value": 32.4, "unit": "pJ", "node_nm": 45, "source": "custom", "note": "64-bit"},
        "glb_write": {"value": 26.2, "unit": "pJ", "node_nm": 45, "source": "custom"},
        "dram_access": {"value": 512.0, "unit": "pJ", "node_nm": 45, "source": "custom"},
    }, 45, 5e8)
    counts = {"mac": 16 * 16 * 1000, "reg_access": 3 * 16 * 16 * 1000, "glb_read": 4000, "glb_write": 1000,
              "dram_access": 250}
    per_action = evaluate(counts, table)
    assert per_action == {k: counts[k] * table[k] for k in counts}
    assert sum(per_action.values()) == pytest.approx(256000 * 0.315 + 768000 * 0.144 + 4000 * 32.4 + 1000 * 26.2 + 250 * 512)
    with pytest.raises(ValueError, match="no energy"):
        evaluate({"mac": 1, "leak": 2}, {"mac": 1.0})
    with pytest.raises(ValueError, match="no report group"):
        layer_groups({"mystery": 1.0})


def test_ratio_entries_and_errors():
    raw = {"a": {"value": 2.0, "unit": "pJ", "source": "x"}, "b": {"ratio": "3/2", "of": "a", "source": "y"}}
    assert load_table(raw, None, 5e8) == {"a": 2.0, "b": 3.0}
    with pytest.raises(ValueError, match="unit"):
        load_table({"a": {"value": 1, "unit": "eV", "source": "x"}}, None, 5e8)
    with pytest.raises(ValueError, match="no source"):
        load_table({"a": {"value": 1, "unit": "pJ"}}, None, 5e8)
    with pytest.raises(ValueError, match="itself"):
        load_table({"a": {"ratio": 1, "of": "a", "source": "x"}}, None, 5e8)


@pytest.mark.parametrize("n_pe,size", [(896, (32, 28)), (288, (16, 18)), (2560, (32, 80)), (1024, (32, 32))])
def test_v5_iso_area_rule_from_pe_counts(n_pe, size):
    assert rows_cols(n_pe) == size


@pytest.mark.parametrize("design,size", [("lpa", (32, 28)), ("int8", (32, 80)), ("fp8", (32, 44)), ("lp8", (32, 71)),
                                         ("ant", (32, 32)), ("adafloat", (32, 28)), ("olaccel", (16, 18)),
                                         ("biscaled", (32, 80)), ("bitfusion", (32, 32))])
def test_default28_iso_area_sizes(design, size):
    hw = load_hw(design)
    assert iso_area_array(hw.design, hw.profile) == size
    area = design_area_mm2(hw.design, hw.profile, *size)
    assert area["pe_array"] + area["decoders"] == pytest.approx(0.6687, rel=0.02)  # iso core area (§6.2)
    assert area["sram"] == pytest.approx(1.474 + 1.779 + 1.050, rel=0.005)  # 1024 x 0.00103 = 1.055 for the OBUF
