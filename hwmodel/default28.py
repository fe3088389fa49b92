"""The `default28` profile: one GEMM record on a systolic array (HWMODEL §2–§5, §7.2).

Cycles from the SCALE-Sim closed forms with K' = ⌈K/P⌉ (reduction packing, §3.2), memory
traffic and stalls from §4, energy from the action counts of §5.2 evaluated by the table-driven
engine. Every quantity of a record with `count` > 1 is count × the single-GEMM value.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from . import energy as energy_engine
from .config import Design, Profile
from .lanes import lane_factor, lane_width, packed_k
from .memory import MemoryArch, Widths, bits_to_bytes, compute_cycles, scalesim_bits, sram_dram_bits, stall_cycles
from .precision import Operand, Precision, default_decoded_width
from .systolic import Mapping, ceil_div, gemm_stats
from .workload import GemmRecord


@dataclass(frozen=True)
class ArrayRun:
    """Where a record runs: array size, dataflow, accounting and storage rule."""

    rows: int
    cols: int
    dataflow: str
    accounting: str = "physical"
    storage: str = "lane"


def memory_arch(profile: Profile) -> MemoryArch:
    a = profile.arch
    return MemoryArch(int(a["ibuf_bytes"]), int(a["wbuf_bytes"]), int(a["obuf_bytes"]), int(a["dram_bw_bits"]),
                      int(a.get("psum_bits", 32)))


def leak_per_pe_cycle(design: Design, profile: Profile) -> float:
    """e_leak_pe = ρ_leak·A_pe, ρ_leak = fused INT PE leakage / its area (§5.3)."""
    ref = profile.arch.get("leak_reference")
    if not ref:
        raise ValueError(f"profile {profile.name}: arch.leak_reference (power and area entries of the reference PE) is not set")
    rho = profile.e(ref["power"]) / profile.a(ref["area"])
    return rho * profile.a(design.pe_area)


def _moving_width(op: Operand, lane: int, design: Design) -> int:
    """Bits an operand occupies while moving through the array: w_dec for LP in `edge` mode (§3.3)."""
    if design.lp_decode == "edge":
        return op.dec_bits or default_decoded_width(op.bits)
    return lane


def _e_dec(profile: Profile, bits: int) -> float:
    """e_dec(n) = 32-bit shifter energy × n/32 [assumption, §5.3]."""
    return profile.e("shifter32") * bits / 32


def simulate_record(rec: GemmRecord, prec: Precision, design: Design, profile: Profile, run: ArrayRun) -> dict:
    """One layers.csv row (§8) of `rec` (already at its batch) in `default28`."""
    R, C, df = run.rows, run.cols, run.dataflow
    b_a, b_w = prec.a.bits, prec.w.bits
    la, lw = lane_width(b_a, design.lanes), lane_width(b_w, design.lanes)
    P = lane_factor(b_a, b_w, design.lanes)
    if run.storage == "lane":
        widths = Widths(la, lw, la)
    else:
        widths = Widths(b_a, b_w, b_a)
    M, N, K, n = rec.M, rec.N, rec.K, rec.count
    Kp = packed_k(K, P)
    stats = gemm_stats(M, N, Kp, R, C, df)
    compute = compute_cycles(M, N, K, P, R, C, df)
    arch = memory_arch(profile)
    if run.accounting == "physical":
        bits = sram_dram_bits(M, N, K, rec.u_a, P, R, C, df, widths, arch)
        stall = stall_cycles(compute, bits["dram_reads"] + bits["dram_writes"], P, R, C, df, widths, arch.dram_bw_bits)
    else:
        bits = scalesim_bits(M, N, K, rec.u_a, P, R, C, df, widths)
        stall = 0
    total = compute + stall
    macs = rec.macs
    # ---- action counts (§5.2), all records × count ----------------------------------------------
    a_mv, w_mv = _moving_width(prec.a, la, design), _moving_width(prec.w, lw, design)
    psum = arch.psum_bits
    per_mac = {"os": Fraction(a_mv + w_mv), "ws": a_mv + Fraction(psum) / P, "is": w_mv + Fraction(psum) / P}[df]
    folds = stats["folds_row"] * stats["folds_col"]
    stationary = {"os": 0, "ws": folds * R * C * P * w_mv, "is": folds * R * C * P * a_mv}[df]
    counts: dict[str, float] = {
        "mac": macs, "leak": R * C * total * n, "reg_move": macs * per_mac, "stationary_load": n * stationary,
        "postproc": n * M * N,
        "ibuf_read": n * bits["sram_ifmap_reads"], "ibuf_write": n * bits["sram_ifmap_writes"],
        "wbuf_read": n * bits["sram_filter_reads"], "wbuf_write": n * bits["sram_filter_writes"],
        "obuf_read": n * bits["obuf_reads"], "obuf_write": n * bits["obuf_writes"],
        "dram_read": n * bits["dram_reads"], "dram_write": n * bits["dram_writes"],
    }
    e_dram = profile.e(str(profile.arch.get("dram", "dram_lpddr4")))
    energies: dict[str, float] = {
        "mac": profile.e(design.pe_energy) / float(P), "leak": leak_per_pe_cycle(design, profile),
        "reg_move": profile.e("reg_bit"), "stationary_load": profile.e("reg_bit"), "postproc": profile.e("postproc"),
        "ibuf_read": profile.e("ibuf_read"), "ibuf_write": profile.e("ibuf_write"),
        "wbuf_read": profile.e("wbuf_read"), "wbuf_write": profile.e("wbuf_write"),
        "obuf_read": profile.e("obuf_read"), "obuf_write": profile.e("obuf_write"),
        "dram_read": e_dram, "dram_write": e_dram,
    }
    if design.lp_decode != "none":
        if design.lp_decode == "edge":
            counts["decode_a"] = n * bits["sram_ifmap_reads"] // widths.a
            counts["decode_w"] = n * bits["sram_filter_reads"] // widths.w
        else:
            counts["decode_a"] = counts["decode_w"] = macs
        counts["encode"] = n * M * N
        energies.update(decode_a=_e_dec(profile, b_a), decode_w=_e_dec(profile, b_w), encode=_e_dec(profile, widths.out))
    if profile.arch.get("static"):
        counts["static"] = total * n
        energies["static"] = sum(int(profile.arch[f"{b}_banks"]) * profile.e(f"{b}_bank_leak") for b in ("wbuf", "ibuf", "obuf")) \
            + profile.e("dram_background")
    per_action = energy_engine.evaluate(counts, energies)
    m = Mapping.of(M, N, Kp, df)
    return {
        "name": rec.name, "op": rec.op, "M": M, "N": N, "K": K, "count": n, "batch": rec.batch,
        "b_a": b_a, "b_w": b_w, "b_a_lane": la, "b_w_lane": lw, "P": float(P),
        "family_a": prec.a.family, "family_w": prec.w.family, "unquantized": prec.unquantized,
        "dataflow": df, "R": R, "C": C, "folds_row": ceil_div(m.Sr, R), "folds_col": ceil_div(m.Sc, C),
        "compute_cycles": n * compute, "stall_cycles": n * stall, "total_cycles": n * total, "macs": macs,
        "overall_util_pct": stats["overall_util_pct"], "lane_util_pct": 100.0 * float(M * N * K / (compute * R * C * P)),
        "mapping_eff_pct": stats["mapping_eff_pct"], "compute_util_pct": stats["compute_util_pct"],
        **_bytes_columns(bits, n),
        **energy_engine.layer_groups(per_action),
    }


def _bytes_columns(bits: dict[str, int], n: int) -> dict[str, float | int]:
    """Per-buffer byte columns of layers.csv for `n` identical GEMMs."""
    names = {"sram_ifmap_reads": "sram_ifmap_reads_bytes", "sram_ifmap_writes": "sram_ifmap_writes_bytes",
             "sram_filter_reads": "sram_filter_reads_bytes", "sram_filter_writes": "sram_filter_writes_bytes",
             "obuf_reads": "obuf_reads_bytes", "obuf_writes": "obuf_writes_bytes",
             "dram_reads": "dram_reads_bytes", "dram_writes": "dram_writes_bytes"}
    return {col: bits_to_bytes(n * bits[key]) for key, col in names.items()}
