"""The `dac24` profile: the DAC'24 poster's hardware charts (arXiv 2403.05465; PAPER-RESULTS §3).

Peak-rate model: a record at P products per PE-cycle takes ⌈MACs/(R·C·P)⌉ cycles (every PE busy,
no fill/drain, no stalls), which is what the poster's AdaptivFloat bar (64.0 GOPS = 8·8 PEs × 2 ×
500 MHz) implies. Lane rules: `product` P = (p_max/b_a')(p_max/b_w') (ANT's 8/4 PE), `mode`
P = p_max/max(b_a', b_w') (LPA's 1×8 / 2×4 / 4×2 lanes, one product per lane). Energy: every PE
burns its dynamic and leakage energy per cycle (ANT artifact), OS-dataflow SRAM reads, each
operand moved once between DRAM and SRAM, static energy per cycle. `chart_rows` gives the
compute-area / throughput chart and the PE-type ablation.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Mapping

from .config import Design, Profile
from .lanes import check_lanes, lane_factor, lane_width
from .memory import bits_to_bytes
from .precision import Precision
from .systolic import ceil_div
from .workload import GemmRecord

LANE_RULES = ("product", "mode")


def lane_rate(b_a: int, b_w: int, lanes, rule: str) -> Fraction:
    """Products per PE-cycle P under `rule` (module docstring); wider than p_max: temporal passes."""
    lanes = check_lanes(lanes)
    if rule == "product":
        return lane_factor(b_a, b_w, lanes)
    if rule != "mode":
        raise ValueError(f"lane rule={rule!r} is invalid: need one of {', '.join(LANE_RULES)}")
    p_max = lanes[-1]
    la, lw = lane_width(b_a, lanes), lane_width(b_w, lanes)
    if max(la, lw) <= p_max:
        return Fraction(p_max, max(la, lw))
    return Fraction(1, ceil_div(la, p_max) * ceil_div(lw, p_max))


def design_pe(design: Design, profile: Profile) -> dict:
    """The design's `pe` entry in the profile (area, dyn, leak, lanes, rule)."""
    entry = profile.pe.get(design.name)
    if entry is None:
        raise ValueError(f"hw={design.name} is not modelled by profile {profile.name}: designs there: "
                         f"{', '.join(sorted(profile.pe))}")
    for key in ("area", "dyn", "leak", "lanes", "rule"):
        if key not in entry:
            raise ValueError(f"profile {profile.name}: pe.{design.name} has no {key!r}")
    return entry


def peak_cycles(macs: int, rows: int, cols: int, P: Fraction) -> int:
    """⌈MACs / (R·C·P)⌉: cycles of one GEMM at full utilisation."""
    return ceil_div(macs * P.denominator, rows * cols * P.numerator)


def simulate_record(rec: GemmRecord, prec: Precision, design: Design, profile: Profile, rows: int, cols: int) -> dict:
    """One layers.csv row (§8) of `rec` (already at its batch) in `dac24`."""
    pe = design_pe(design, profile)
    lanes = check_lanes(pe["lanes"])
    b_a, b_w = prec.a.bits, prec.w.bits
    la, lw = lane_width(b_a, lanes), lane_width(b_w, lanes)
    P = lane_rate(b_a, b_w, lanes, str(pe["rule"]))
    M, N, K, n = rec.M, rec.N, rec.K, rec.count
    cycles = peak_cycles(M * N * K, rows, cols, P)
    b_out = int(profile.arch.get("out_bits", 16))
    u_a = rec.u_a or M * K
    bits = {  # OS dataflow reads (§2.5 without Q1), each operand moved once between DRAM and SRAM [A]
        "ibuf_read": ceil_div(N, cols) * M * K * la, "ibuf_write": u_a * la,
        "wbuf_read": ceil_div(M, rows) * K * N * lw, "wbuf_write": K * N * lw,
        "obuf_read": M * N * b_out, "obuf_write": M * N * b_out,
        "dram_read": u_a * la + K * N * lw, "dram_write": M * N * b_out,
    }
    E = profile.e
    pes = rows * cols
    e_dec = 0.0
    if design.is_lp:  # edge decoders on every operand read from SRAM, an encoder per output
        e_dec = E("lp_decode_bit") * (ceil_div(N, cols) * M * K * b_a + ceil_div(M, rows) * K * N * b_w + M * N * b_out)
    e = {
        "e_mac_pj": n * cycles * pes * E(pe["dyn"]),
        "e_leak_pj": n * cycles * pes * E(pe["leak"]),
        "e_reg_pj": 0.0, "e_decode_pj": n * e_dec, "e_post_pj": 0.0,
        "e_sram_pj": n * sum(bits[k] * E(k) for k in ("ibuf_read", "ibuf_write", "wbuf_read", "wbuf_write",
                                                       "obuf_read", "obuf_write")),
        "e_dram_pj": n * (bits["dram_read"] * E("dram_read") + bits["dram_write"] * E("dram_write")),
        "e_static_pj": n * cycles * E("dram_background") if profile.arch.get("static", True) else 0.0,
    }
    e["e_total_pj"] = sum(e.values())
    util = 100.0 * float(Fraction(M * N * K) / (cycles * pes * P))
    return {
        "name": rec.name, "op": rec.op, "M": M, "N": N, "K": K, "count": n, "batch": rec.batch,
        "b_a": b_a, "b_w": b_w, "b_a_lane": la, "b_w_lane": lw, "P": float(P),
        "family_a": prec.a.family, "family_w": prec.w.family, "unquantized": prec.unquantized,
        "dataflow": design.dataflow, "R": rows, "C": cols, "folds_row": None, "folds_col": None,
        "compute_cycles": n * cycles, "stall_cycles": 0, "total_cycles": n * cycles, "macs": rec.macs,
        "overall_util_pct": util, "lane_util_pct": util, "mapping_eff_pct": None, "compute_util_pct": None,
        "sram_ifmap_reads_bytes": bits_to_bytes(n * bits["ibuf_read"]),
        "sram_ifmap_writes_bytes": bits_to_bytes(n * bits["ibuf_write"]),
        "sram_filter_reads_bytes": bits_to_bytes(n * bits["wbuf_read"]),
        "sram_filter_writes_bytes": bits_to_bytes(n * bits["wbuf_write"]),
        "obuf_reads_bytes": bits_to_bytes(n * bits["obuf_read"]), "obuf_writes_bytes": bits_to_bytes(n * bits["obuf_write"]),
        "dram_reads_bytes": bits_to_bytes(n * bits["dram_read"]), "dram_writes_bytes": bits_to_bytes(n * bits["dram_write"]),
        **e,
    }


def mean_rate(mix: Mapping, lanes, rule: str) -> Fraction:
    """Mean products per PE-cycle of a precision mix {bits: fraction of MACs} (harmonic: time adds up)."""
    if not mix:
        raise ValueError("mix is empty: need {bits: fraction of MACs}")
    shares = {int(b): Fraction(str(f)) for b, f in mix.items()}
    if any(f < 0 for f in shares.values()) or sum(shares.values()) != 1:
        raise ValueError(f"mix={dict(mix)!r} is invalid: need non-negative fractions of MACs that sum to 1")
    return 1 / sum(f / lane_rate(b, b, lanes, rule) for b, f in shares.items())


def peak_bar(pe_area_um2: float, rows: int, cols: int, mix: Mapping, lanes, rule: str, clock_hz: float) -> dict:
    """Compute area (mm², PE array), throughput (GOPS) and TOPS/mm² of an R×C array at a precision mix."""
    if rows < 1 or cols < 1:
        raise ValueError(f"array=[{rows}, {cols}] is invalid: need positive rows and columns")
    area = rows * cols * pe_area_um2 / 1e6
    gops = 2 * rows * cols * float(mean_rate(mix, lanes, rule)) * clock_hz / 1e9
    return {"compute_area_mm2": area, "gops": gops, "tops_per_mm2": gops / 1e3 / area}


def chart_rows(profile: Profile, section: str = "chart") -> list[dict]:
    """The poster's compute-area / throughput chart (`chart`) or PE-type ablation (`ablation`) under
    `profile`, each bar next to the poster's value."""
    bars = profile.extra.get(section)
    if not bars:
        raise ValueError(f"profile {profile.name} has no {section!r} section (hw/profile=dac24 has one)")
    poster = profile.extra.get("poster", {})
    key = "tops_per_mm2" if section == "chart" else "ablation_tops_per_mm2"
    rows = []
    for name, bar in bars.items():
        R, C = (int(v) for v in bar["array"])
        row = {"bar": name, "array": f"{R}x{C}",
               **peak_bar(profile.a(str(bar["pe"])), R, C, bar["mix"], bar["lanes"], str(bar["rule"]), profile.clock_hz)}
        row["poster_tops_per_mm2"] = (poster.get(key) or {}).get(name)
        if section == "chart":
            row["poster_compute_area_mm2"] = (poster.get("compute_area_mm2") or {}).get(name)
            row["poster_gops"] = (poster.get("gops") or {}).get(name)
        rows.append(row)
    return rows
