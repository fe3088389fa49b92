"""Simulate a workload on one design and summarise it (HWMODEL §7, §8).

`simulate` runs every batch-1 record (scaled to `hw.batch`) through the profile's model
(`default28`: systolic closed forms; `ant_compat`: ANT's tiling search; `bitfusion45`:
BitFusion's tiling search; `dac24`: the poster's peak-rate model) and returns the
layers.csv rows plus the summary.json totals; `normalise` adds the `norm.<baseline>` ratios.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ant_compat, bitfusion45, dac24, default28
from .area import design_area_mm2, iso_area_array
from .config import TILING_MODELS, HwConfig
from .energy import summary_groups
from .precision import Precision
from .workload import GemmRecord


@dataclass
class SimResult:
    """Per-layer rows (layers.csv) and the summary (summary.json) of one design run."""

    layers: list[dict]
    summary: dict


def array_size(hw: HwConfig) -> tuple[int, int, bool]:
    """(R, C, iso_area): hw.rows/hw.cols override; else the profile's table (ant_compat, bitfusion45)
    or §6.2."""
    if hw.rows is not None:
        return hw.rows, hw.cols, False
    if hw.profile.model in TILING_MODELS:
        size = hw.profile.arrays.get(hw.design.name)
        if size is None:
            raise ValueError(f"hw={hw.design.name} is not simulated by profile {hw.profile.name}: designs with an array "
                             f"there: {', '.join(sorted(hw.profile.arrays))} (or set hw.rows and hw.cols)")
        return size[0], size[1], True
    if hw.profile.model == "peak":
        dac24.design_pe(hw.design, hw.profile)  # a clear error for a design the profile does not model
    R, C = iso_area_array(hw.design, hw.profile)
    return R, C, True


def assumptions(hw: HwConfig) -> list[str]:
    """The modelling assumptions a result depends on (listed in summary.json `meta`)."""
    d, p = hw.design, hw.profile
    out = []
    if p.model == "systolic":
        out += [
            "cycles: SCALE-Sim v3 closed forms with K' = ceil(K/P) (HWMODEL §2.3, §3.2)",
            f"memory: {hw.accounting} accounting (§4 / §2.5); double-buffered halves; one DRAM channel of "
            f"{p.arch.get('dram_bw_bits')} bit/cycle; every record simulated independently",
            "b_out' = b_a' of the same record (§1.4)",
            "idle PE lanes in partial folds are clock-gated; OS output drain hops not counted (§5.2)",
            f"storage: operands stored at {'the lane width' if hw.storage == 'lane' else 'the exact format width'} (§3.4)",
            "post-processing (requantisation, bias, activation) identical for every design, 0.45 pJ per output [A]",
        ]
        if d.is_lp:
            out += [f"LP decode: {d.lp_decode} (e_dec(n) = 0.0077 n pJ [A]); encode = decode energy [A]; "
                    "operands move through the array at w_dec bits (§3.3)"]
        if not p.arch.get("static"):
            out += ["SRAM leakage and DRAM background off (§5.2 static option)"]
    elif p.model == "peak":
        out += ["DAC'24 poster model: peak-rate cycles ceil(MACs/(R·C·P)), no fill/drain or stalls; LPA lanes "
                "1x8/2x4/4x2 with one product per lane; PE areas fitted to the poster's compute areas",
                "energy: every PE burns dynamic + leakage energy per cycle (ANT artifact); LP PE energy scaled from "
                "ANT's 8/4 PE by area (equal power density) [A]; each operand moved once between DRAM and SRAM [A]"]
    elif p.model == "ant_tiling":
        out += ["ANT MICRO'22 artifact model: tiling search, no fill/drain, constants unscaled (§7.3)",
                "every PE burns dynamic energy in every non-stall cycle (no gating), as in the artifact"]
    else:
        out += ["BitFusion ISCA'18 simulator model: tiling search, first layer and linears im2col, other convs "
                "direct with input halo, 32-bit partial sums drained and reloaded (§7.4)",
                "core energy = active cycles x PEs x 8/2 unit dynamic energy; no leakage or static energy",
                "not validated against regenerated BitFusion simulator output (§7.4)"]
    return out


def _check_inputs(records: list[GemmRecord], precisions: list[Precision]) -> None:
    if len(records) != len(precisions):
        raise ValueError(f"{len(records)} records but {len(precisions)} precisions: need one precision per record")
    if not records:
        raise ValueError("the workload holds no GEMM records (no conv, linear or matmul was traced)")
    for r in records:
        if r.batch != 1:
            raise ValueError(f"record {r.name!r} is at batch {r.batch}: simulate batch-1 records, hw.batch scales them")


def simulate(records: list[GemmRecord], precisions: list[Precision], hw: HwConfig, model: str = "") -> SimResult:
    """Run the workload (batch-1 records) at `hw.batch` on `hw.design` in `hw.profile`."""
    _check_inputs(records, precisions)
    R, C, iso = array_size(hw)
    d, p = hw.design, hw.profile
    df = d.dataflow
    layers = []
    for i, (rec, prec) in enumerate(zip(records, precisions)):
        at_b = rec.at_batch(hw.batch)
        if p.model == "ant_tiling":
            layers.append(ant_compat.simulate_record(at_b, prec, d, p, R, C, df))
        elif p.model == "bitfusion_tiling":
            layers.append(bitfusion45.simulate_record(at_b, prec, d, p, R, C, first=i == 0))
        elif p.model == "peak":
            layers.append(dac24.simulate_record(at_b, prec, d, p, R, C))
        else:
            run = default28.ArrayRun(R, C, df, hw.accounting, hw.storage)
            layers.append(default28.simulate_record(at_b, prec, d, p, run))
    return SimResult(layers, summarise(layers, hw, R, C, iso, model))


def summarise(layers: list[dict], hw: HwConfig, R: int, C: int, iso_area: bool, model: str = "") -> dict:
    """summary.json totals and derived metrics (§8), without `norm`."""
    p = hw.profile
    f = p.clock_hz
    cycles = {k: sum(int(row[f"{k}_cycles"]) for row in layers) for k in ("compute", "stall", "total")}
    energy = summary_groups(layers)
    area = design_area_mm2(hw.design, p, R, C)
    macs = sum(int(row["macs"]) for row in layers)
    ops = 2 * macs
    seconds = cycles["total"] / f
    gops = ops / seconds / 1e9
    return {
        "cycles": cycles,
        "latency_ms": seconds * 1e3,
        "energy_pj": energy,
        "area_mm2": area,
        "macs": macs,
        "ops": ops,
        "gops": gops,
        "inferences_per_s": hw.batch / seconds,
        "perf_per_area_gops_mm2": gops / area["total"],
        "perf_per_area_core_gops_mm2": gops / (area["pe_array"] + area["decoders"]),
        "tops_per_w": ops / energy["total"],  # ops / (E_pJ·1e-12 J) / 1e12
        "layers": len(layers),
        "unquantized_layers": sum(1 for row in layers if row["unquantized"]),
        "meta": {
            "model": model, "design": hw.design.name, "profile": p.name, "array": [R, C], "iso_area": iso_area,
            "dataflow": hw.design.dataflow, "accounting": hw.accounting if p.model == "systolic" else p.model,
            "batch": hw.batch, "clock_hz": f, "constants_hash": p.constants_hash, "validated": p.validated,
            "storage": hw.storage, "assumptions": assumptions(hw),
        },
    }


def normalise(summary: dict, base: dict) -> dict:
    """`norm.<baseline>` ratios (§8): speedup = cycles_base/cycles, energy_ratio = E/E_base,
    perf_per_area and energy_eff = the design's value over the baseline's."""
    return {
        "speedup": base["cycles"]["total"] / summary["cycles"]["total"],
        "energy_ratio": summary["energy_pj"]["total"] / base["energy_pj"]["total"],
        "perf_per_area": summary["perf_per_area_gops_mm2"] / base["perf_per_area_gops_mm2"],
        "perf_per_area_core": summary["perf_per_area_core_gops_mm2"] / base["perf_per_area_core_gops_mm2"],
        "energy_eff": summary["tops_per_w"] / base["tops_per_w"],
    }
