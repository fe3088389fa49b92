"""The `bitfusion45` profile: BitFusion's (ISCA'18) own tiling simulator (HWMODEL §7.4).

Same tiling enumeration, loop orders, promotion and stall rule as `ant_compat` (reused from
`hwmodel.ant_compat`); what differs is BitFusion's, from `get_stats_fast` in its public simulator
(hsharma35/bitfusion, bitfusion/src/optimizer/optimizer.py): the whole product P = (8/b_a')·(8/b_w')
packs the reduction dimension, only the first layer (and every linear) is lowered with im2col, the
other convolutions tile their input with the halo, output tiles are 32-bit partial sums padded to a
multiple of c that are drained to DRAM and read back, an output tile must fit half the OBUF, and the
SRAM access order inside a tile (input-, output- or weight-stationary) is the one of least traffic.
Energy: active cycles × PEs × the 8/2 unit's dynamic energy, SRAM bits × per-bit CACTI energies, DRAM
bits × 15 pJ; no leakage or static term.
"""
from __future__ import annotations

import numpy as np

from .ant_compat import (Candidates, LayerGeom, Rules, _cdiv, best_tiling, design_pe, half_buffers, pf,
                         tile_counts, tiling_space)
from .config import Design, Profile
from .memory import bits_to_bytes
from .precision import Precision
from .workload import GemmRecord

RULES = Rules(out_first_zero=False, out_reload=True)
PSUM_BITS = 32


def candidates(geo: LayerGeom, b_a: int, b_w: int, a: int, c: int, P: int, im2col: bool, half: dict) -> Candidates:
    """BitFusion's tiles and compute cycles (§7.4) for every tiling whose three tiles fit half buffers."""
    d = tiling_space(geo)
    b, oh, ow, ic, oc, kk2 = d["b"], d["oh"], d["ow"], d["ic"], d["oc"], geo.kk2
    wgt = _cdiv(kk2 * ic, a * P) * a * P * oc * b_w
    if im2col:
        act = ow * oh * kk2 * ic * b * b_a
    else:
        act = (geo.KW + (ow - 1) * geo.S) * (geo.KH + (oh - 1) * geo.S) * ic * b * b_a
    out = ow * oh * _cdiv(oc, c) * c * b * PSUM_BITS
    ok = (wgt <= half["wgt"]) & (act <= half["act"]) & (out <= half["out"])
    if not ok.any():
        raise ValueError(f"no tiling of layer {geo} fits the buffers")
    d = {k: v[ok] for k, v in d.items()}
    n = tile_counts(geo, d)
    compute = n.prod(axis=0) * _tile_cycles(d, kk2, a, c, P, im2col)
    tiles = {"wgt": wgt[ok], "act": act[ok], "out": out[ok]}
    return Candidates(d, n, tiles, compute, sram_inner(d, n, kk2, b_a, b_w, a, c, P, im2col))


def _tile_cycles(d: dict, kk2: int, a: int, c: int, P: int, im2col: bool) -> np.ndarray:
    """Compute cycles of one tile (§7.4): im2col b·oh·ow·⌈oc/c⌉·⌈K²·ic/(a·P)⌉,
    direct b·⌈oc/c⌉·ow·oh·K²·⌈ic/(a·P)⌉."""
    b, oh, ow, ic, oc = d["b"], d["oh"], d["ow"], d["ic"], d["oc"]
    if im2col:
        return b * oh * ow * _cdiv(oc, c) * _cdiv(kk2 * ic, a * P)
    return b * _cdiv(oc, c) * ow * oh * kk2 * _cdiv(ic, a * P)


def sram_inner(d: dict, n: np.ndarray, kk2: int, b_a: int, b_w: int, a: int, c: int, P: int,
               im2col: bool) -> dict[str, np.ndarray]:
    """SRAM bits inside the tile loop in the cheapest of the input-, output- and weight-stationary
    orders (BitFusion's traffic proxy; ties in that order)."""
    b, oh, ow, ic, oc = d["b"], d["oh"], d["ow"], d["ic"], d["oc"]
    n_t = n.prod(axis=0)
    is_loop = _cdiv(oc, c) * c
    os_loop = _cdiv(kk2 * ic, a * P) * a * P if im2col else _cdiv(ic, a * P) * a * P * kk2
    ws_loop = b * oh * ow
    proxy = np.stack([os_loop * ws_loop * (b_a + is_loop * (b_w + PSUM_BITS)),  # input stationary
                      is_loop * ws_loop * (PSUM_BITS + os_loop * (b_a + b_w)),  # output stationary
                      os_loop * is_loop * (b_w + ws_loop * (b_a + PSUM_BITS))])  # weight stationary
    choice = proxy.argmin(axis=0)
    red, pix = kk2 * ic, oh * ow * b
    act = np.select([choice == 0, choice == 1], [red * pix, oc * pix * red], red * oc * pix)
    psum = np.select([choice == 0, choice == 1], [red * pix * oc, oc * pix], red * oc * pix)
    wgt = np.select([choice == 0, choice == 1], [red * pix * oc, oc * pix * red], red * oc)
    return {"ibuf_read": n_t * act * b_a, "obuf": n_t * psum * PSUM_BITS, "wbuf_read": n_t * wgt * b_w}


def search_layer(geo: LayerGeom, b_a: int, b_w: int, rows: int, cols: int, pe: dict, profile: Profile,
                 im2col: bool) -> dict:
    """Best tiling of one layer in `bitfusion45` (one of `count` identical GEMMs)."""
    arch, E = profile.arch, profile.energy
    P = pf(b_a, int(pe["p_max"]), int(pe["p_min"])) * pf(b_w, int(pe["p_max"]), int(pe["p_min"]))
    half = half_buffers(arch)
    cands = candidates(geo, b_a, b_w, rows, cols, P, im2col, half)
    core = rows * cols * E[pe["dyn"]]

    def energy(total, stall, sram_e, reads, writes):
        return (total - stall) * core + sram_e + (reads + writes) * E["dram"]

    best = best_tiling(cands, half, int(arch["if_width_bits"]), E, energy, RULES)
    return {**best, "P": P, "im2col": im2col}


def simulate_record(rec: GemmRecord, prec: Precision, design: Design, profile: Profile, rows: int, cols: int,
                    first: bool) -> dict:
    """One layers.csv row (§8) in `bitfusion45`: core, SRAM and DRAM energy, no static part."""
    pe = design_pe(design, profile)
    im2col = first or rec.op != "conv"
    best = search_layer(LayerGeom.of(rec), prec.a.bits, prec.w.bits, rows, cols, pe, profile, im2col)
    E, n = profile.energy, rec.count
    total, stall = best["total_cycles"], best["stall_cycles"]
    e_sram = sum(best[f"{k}_bits"] * E[k] for k in ("wbuf_read", "wbuf_write", "ibuf_read", "ibuf_write",
                                                      "obuf_read", "obuf_write"))
    e = {"e_mac_pj": n * (total - stall) * rows * cols * E[pe["dyn"]], "e_leak_pj": 0.0, "e_reg_pj": 0.0,
         "e_decode_pj": 0.0, "e_post_pj": 0.0, "e_sram_pj": n * e_sram,
         "e_dram_pj": n * (best["dram_read_bits"] + best["dram_write_bits"]) * E["dram"], "e_static_pj": 0.0}
    e["e_total_pj"] = sum(e.values())
    util = 100.0 * rec.macs / (n * best["compute_cycles"] * rows * cols * best["P"])
    t = best["tile"]

    def nbytes(key: str) -> int | float:
        return bits_to_bytes(n * best[f"{key}_bits"])

    return {
        "name": rec.name, "op": rec.op, "M": rec.M, "N": rec.N, "K": rec.K, "count": n, "batch": rec.batch,
        "b_a": prec.a.bits, "b_w": prec.w.bits, "b_a_lane": prec.a.bits, "b_w_lane": prec.w.bits,
        "P": float(best["P"]), "family_a": prec.a.family, "family_w": prec.w.family,
        "unquantized": prec.unquantized, "dataflow": "os", "R": rows, "C": cols,
        "folds_row": None, "folds_col": None,
        "compute_cycles": n * best["compute_cycles"], "stall_cycles": n * stall, "total_cycles": n * total,
        "macs": rec.macs, "overall_util_pct": util, "lane_util_pct": util, "mapping_eff_pct": None,
        "compute_util_pct": None,
        "sram_ifmap_reads_bytes": nbytes("ibuf_read"), "sram_ifmap_writes_bytes": nbytes("ibuf_write"),
        "sram_filter_reads_bytes": nbytes("wbuf_read"), "sram_filter_writes_bytes": nbytes("wbuf_write"),
        "obuf_reads_bytes": nbytes("obuf_read"), "obuf_writes_bytes": nbytes("obuf_write"),
        "dram_reads_bytes": nbytes("dram_read"), "dram_writes_bytes": nbytes("dram_write"),
        **e,
        "tiling": f"{'im2col' if im2col else 'direct'}:{best['order']}:"
                  f"b{t['b']},o{t['oh']}x{t['ow']},ic{t['ic']},oc{t['oc']}",
    }
