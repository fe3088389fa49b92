"""The `ant_compat` profile: ANT's (MICRO'22) tiling simulator in closed form (HWMODEL §7.3).

Per layer, every tiling (b, ow = oh, ic, oc in powers of two, clamped) under each of the 120 loop
orders of (B, OW, OH, IC, OC) gets DRAM traffic by promotion (innermost loop first), SRAM traffic,
compute cycles without fill/drain and a stall estimate; the minimum total cycles wins, ties broken
by the artifact's tie-break energy, first the best tiling per order, then the best order.
Vectorised over tilings and orders with numpy (int64 is exact for these counts).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from .config import Design, Profile
from .memory import bits_to_bytes
from .precision import Precision
from .workload import GemmRecord

LOOPS = ("B", "OW", "OH", "IC", "OC")
ORDERS = np.array(list(itertools.permutations(range(5))), dtype=np.int64)  # first = outermost
# which loops index each operand (§7.3 step 2): B, OW, OH -> act, out; IC -> act, wgt; OC -> wgt, out
INDEXES = {
    "wgt": np.array([False, False, False, True, True]),
    "act": np.array([True, True, True, True, False]),
    "out": np.array([True, True, True, False, True]),
}


@dataclass(frozen=True)
class LayerGeom:
    """ANT's layer view: square-kernel conv (kk2 = K_k², output OH×OW) or linear (K_k = 1, O = 1, B = M)."""

    B: int
    OH: int
    OW: int
    IC: int
    OC: int
    kk2: int
    count: int
    S: int = 1  # stride and kernel sides: BitFusion's direct-convolution input halo (§7.4)
    KH: int = 1
    KW: int = 1

    @classmethod
    def of(cls, rec: GemmRecord) -> "LayerGeom":
        if rec.op == "conv" and rec.conv is not None:
            g = rec.conv
            return cls(rec.batch, g.OH, g.OW, rec.K // (g.KH * g.KW), rec.N, g.KH * g.KW, rec.count,
                       int(g.stride), g.KH, g.KW)
        return cls(rec.M, 1, 1, rec.K, rec.N, 1, rec.count)


def _space(X: int) -> np.ndarray:
    """min(2^i, X) for i = 0 … ⌈log2 X⌉ (§7.3 search space)."""
    return np.minimum(2 ** np.arange(math.ceil(math.log2(X)) + 1 if X > 1 else 1, dtype=np.int64), X)


def _cdiv(a, b):
    return -(-a // b)


def pf(bits: int, p_max: int, p_min: int) -> int:
    """pf(b) = ⌊p_max / max(b, p_min)⌋ (§7.3)."""
    return max(1, p_max // max(int(bits), p_min))


@dataclass
class Candidates:
    """The tilings of one layer that fit the buffers: sizes, tile counts n (5 × T, in LOOPS order),
    tile bits per operand, compute cycles and inner-loop SRAM bits (all arrays over tilings)."""

    dims: dict[str, np.ndarray]
    n: np.ndarray
    tiles: dict[str, np.ndarray]
    compute: np.ndarray
    inner: dict[str, np.ndarray]  # wbuf_read, ibuf_read, obuf (OBUF reads = writes inside the tile loop)

    def keep(self, mask: np.ndarray) -> "Candidates":
        pick = lambda d: {k: v[mask] for k, v in d.items()}  # noqa: E731
        return Candidates(pick(self.dims), self.n[:, mask], pick(self.tiles), self.compute[mask], pick(self.inner))


@dataclass(frozen=True)
class Rules:
    """Where the BitFusion tiling model differs from ANT's after the candidates (§7.3 vs §7.4)."""

    out_first_zero: bool  # quirk A2: the output's first transfer is zeroed once a promotion succeeds (ANT)
    out_reload: bool  # partial sums are read back from DRAM: DRAM reads, OBUF writes, initial latency (BitFusion)


ANT_RULES = Rules(out_first_zero=True, out_reload=False)


def tiling_space(geo: LayerGeom) -> dict[str, np.ndarray]:
    """Every (b, oh, ow, ic, oc) of the §7.3 search space, flattened; ow = oh = min(2^j, O)."""
    b, o, ic, oc = (t.ravel() for t in np.meshgrid(_space(geo.B), _space(max(geo.OH, geo.OW)), _space(geo.IC),
                                                   _space(geo.OC), indexing="ij"))
    return {"b": b, "oh": np.minimum(o, geo.OH), "ow": np.minimum(o, geo.OW), "ic": ic, "oc": oc}


def tile_counts(geo: LayerGeom, d: dict[str, np.ndarray]) -> np.ndarray:
    """n_x = ⌈X/x⌉ per loop, stacked in LOOPS order (B, OW, OH, IC, OC)."""
    return np.stack([_cdiv(geo.B, d["b"]), _cdiv(geo.OW, d["ow"]), _cdiv(geo.OH, d["oh"]), _cdiv(geo.IC, d["ic"]),
                     _cdiv(geo.OC, d["oc"])])


def _ant_candidates(geo: LayerGeom, b_a: int, b_w: int, a: int, c: int, pf_i: int, pf_w: int, dataflow: str,
                    out_bits: int, half: dict) -> Candidates:
    """§7.3 steps 1, 3 (inner loop) and 4 for every tiling that fits."""
    d = tiling_space(geo)
    b, oh, ow, ic, oc, kk2 = d["b"], d["oh"], d["ow"], d["ic"], d["oc"], geo.kk2
    wgt = _cdiv(kk2 * ic, a * pf_w) * a * pf_w * oc * b_w
    act = ow * oh * _cdiv(kk2 * ic, c * pf_i) * c * pf_i * b * b_a  # quirk A1: c for activations
    ok = (wgt <= half["wgt"]) & (act <= half["act"])
    if not ok.any():
        raise ValueError(f"no tiling of layer {geo} fits the buffers")
    d = {k: v[ok] for k, v in d.items()}
    b, oh, ow, ic, oc = d["b"], d["oh"], d["ow"], d["ic"], d["oc"]
    n = tile_counts(geo, d)
    n_t = n.prod(axis=0)
    mac_t = kk2 * ic * oc * b * oh * ow
    if dataflow == "ws":
        compute = n_t * b * oh * ow * _cdiv(oc, c * pf_w) * _cdiv(kk2 * ic, a * pf_i)
        inner = {"wbuf_read": n_t * kk2 * ic * oc * b_w, "obuf": n_t * mac_t * out_bits}
    else:
        compute = n_t * _cdiv(b * oh * ow, a * pf_i) * _cdiv(oc, c * pf_w) * kk2 * ic
        inner = {"wbuf_read": n_t * mac_t * b_w, "obuf": n_t * oc * oh * ow * b * out_bits}
    inner["ibuf_read"] = n_t * mac_t * b_a
    tiles = {"wgt": wgt[ok], "act": act[ok], "out": ow * oh * oc * b * out_bits}
    return Candidates(d, n, tiles, compute, inner)


def half_buffers(arch) -> dict[str, int]:
    """Half of each buffer in bits (double buffering)."""
    return {"wgt": int(arch["wbuf_bytes"]) * 4, "act": int(arch["ibuf_bytes"]) * 4, "out": int(arch["obuf_bytes"]) * 4}


def search_layer(geo: LayerGeom, b_a: int, b_w: int, rows: int, cols: int, dataflow: str, pe: dict,
                 profile: Profile, prune: bool = True) -> dict:
    """Best tiling of one layer (one of `count` identical GEMMs): cycles, traffic and energies (§7.3).
    `prune=False` searches every tiling under every order (the reference for the exact pruning)."""
    arch, E = profile.arch, profile.energy
    pf_i = pf(b_a, int(pe["p_max"]), int(pe["p_min"]))
    pf_w = pf(b_w, int(pe["p_max"]), int(pe["p_min"]))
    half = half_buffers(arch)
    cands = _ant_candidates(geo, b_a, b_w, rows, cols, pf_i, pf_w, dataflow, int(arch.get("out_bits", 16)), half)
    pes = rows * cols

    def tie(total, stall, sram_e, reads, writes):
        return (total * (pes * E[pe["leak"]] + E["tiebreak_sram_leak"] + E["tiebreak_dram_background"])
                + (total - stall) * pes * E[pe["dyn"]] + sram_e
                + reads * E["tiebreak_dram_read"] + writes * E["tiebreak_dram_write"])

    best = best_tiling(cands, half, int(arch["if_width_bits"]), E, tie, ANT_RULES, prune)
    return {**best, "pf_i": pf_i, "pf_w": pf_w}


def best_tiling(cands: Candidates, half: dict, if_w: int, E, tie, rules: Rules, prune: bool = True) -> dict:
    """Promotion, stalls and selection over all loop orders (§7.3 steps 2, 3, 5, 6): minimum total
    cycles, ties by `tie(total, stall, sram_energy, dram_read_bits, dram_write_bits)`, first the best
    tiling per order, then the best order."""
    # exact pruning: total >= compute, so a tiling whose compute exceeds the best total under one
    # order can never win (ties on total are all kept, in enumeration order)
    bound = _totals(ORDERS[:1], cands.n, cands.tiles, half, cands.compute, if_w, rules)[0].min() if prune \
        else cands.compute.max()
    cands = cands.keep(cands.compute <= bound)
    total, stall, traffic = _totals(ORDERS, cands.n, cands.tiles, half, cands.compute, if_w, rules)
    reload = traffic["out"] if rules.out_reload else 0
    reads, writes = traffic["wgt"] + traffic["act"] + reload, traffic["out"]
    inner = cands.inner
    sram = {"wbuf_read": inner["wbuf_read"], "wbuf_write": traffic["wgt"], "ibuf_read": inner["ibuf_read"],
            "ibuf_write": traffic["act"], "obuf_read": traffic["out"] + inner["obuf"],
            "obuf_write": inner["obuf"] + reload}
    sram_e = sum(np.asarray(v, dtype=np.float64) * E[k] for k, v in sram.items())
    energy = tie(total, stall, sram_e, reads, writes)
    best_t = total.min(axis=1, keepdims=True)
    col = np.where(total == best_t, energy, np.inf).argmin(axis=1)
    rows_idx = np.arange(len(ORDERS))
    order_total, order_e = total[rows_idx, col], energy[rows_idx, col]
    cand = np.flatnonzero(order_total == order_total.min())
    r = int(cand[np.argmin(order_e[cand])])
    k = int(col[r])

    def pick(arr) -> int:
        arr = np.asarray(arr)
        return int(arr[r, k]) if arr.ndim == 2 else int(arr[k] if arr.ndim else arr)

    return {
        "order": "-".join(LOOPS[i] for i in ORDERS[r]),
        "tile": {key: int(v[k]) for key, v in cands.dims.items()},
        "compute_cycles": pick(cands.compute), "stall_cycles": pick(stall), "total_cycles": pick(total),
        "dram_read_bits": pick(reads), "dram_write_bits": pick(writes),
        **{f"{key}_bits": pick(v) for key, v in sram.items()},
    }


def _promote(orders: np.ndarray, n: np.ndarray, tile: np.ndarray, indexes: np.ndarray, half: int,
             zero_first: bool) -> tuple[np.ndarray, np.ndarray]:
    """DRAM traffic and first-transfer size of one operand under each order (§7.3 step 2)."""
    t = np.broadcast_to(tile, (len(orders), tile.size)).copy()
    first = t.copy()
    promote = np.ones_like(t, dtype=bool)
    for pos in range(orders.shape[1] - 1, -1, -1):  # innermost loop first
        loop = orders[:, pos]
        idx = indexes[loop][:, None]
        t = np.where(idx | ~promote, t * n[loop], t)
        step = idx & promote
        fits = t <= half
        first = np.where(step & fits, 0 if zero_first else t, first)  # quirk A2 for the output
        promote = promote & ~(step & ~fits)
    return t, first


def _totals(orders: np.ndarray, n: np.ndarray, tiles: dict, half: dict, compute: np.ndarray, if_w: int,
            rules: Rules = ANT_RULES):
    """(total, stall, traffic) per (order, tiling): stall = max(0, ⌈middle/if⌉ − compute) + ⌈initial/if⌉
    + ⌈final/if⌉ (§7.3 step 5); with partial-sum reload the output counts twice and its first
    transfer is part of the initial load too (§7.4)."""
    traffic, first = {}, {}
    for key in ("wgt", "act", "out"):
        zero = key == "out" and rules.out_first_zero
        traffic[key], first[key] = _promote(orders, n, tiles[key], INDEXES[key], half[key], zero)
    initial, final = first["wgt"] + first["act"], first["out"]
    moved = traffic["wgt"] + traffic["act"] + traffic["out"]
    if rules.out_reload:
        initial, moved = initial + first["out"], moved + traffic["out"]
    middle = moved - initial - final
    stall = np.maximum(0, _cdiv(middle, if_w) - compute) + _cdiv(initial, if_w) + _cdiv(final, if_w)
    return compute + stall, stall, traffic


def design_pe(design: Design, profile: Profile) -> dict:
    """The design's PE entry of the profile (`pe.<design>` or `pe.default`)."""
    pes = profile.pe
    entry = pes.get(design.name) or pes.get(design.name.removesuffix("_ws")) or pes.get("default")
    if entry is None:
        raise ValueError(f"profile {profile.name} has no PE entry for hw={design.name} and no default")
    return entry


def simulate_record(rec: GemmRecord, prec: Precision, design: Design, profile: Profile, rows: int, cols: int,
                    dataflow: str) -> dict:
    """One layers.csv row (§8) in `ant_compat` with the artifact's four-part energy (static, DRAM, SRAM, core)."""
    pe = design_pe(design, profile)
    geo = LayerGeom.of(rec)
    best = search_layer(geo, prec.a.bits, prec.w.bits, rows, cols, dataflow, pe, profile)
    E, n = profile.energy, rec.count
    total, stall = best["total_cycles"], best["stall_cycles"]
    pes = rows * cols
    e_sram = sum(best[f"{k}_bits"] * E[k] for k in ("wbuf_read", "wbuf_write", "ibuf_read", "ibuf_write",
                                                      "obuf_read", "obuf_write"))
    macs = rec.macs
    P = best["pf_i"] * best["pf_w"]
    util = 100.0 * macs / (n * best["compute_cycles"] * pes * P)  # packed products per PE-cycle, fill/drain-free
    e = {
        "e_mac_pj": n * (total - stall) * pes * E[pe["dyn"]],
        "e_leak_pj": n * total * pes * E[pe["leak"]],
        "e_reg_pj": 0.0, "e_decode_pj": 0.0, "e_post_pj": 0.0,
        "e_sram_pj": n * e_sram,
        "e_dram_pj": n * (best["dram_read_bits"] * E["dram_read"] + best["dram_write_bits"] * E["dram_write"]),
        "e_static_pj": n * total * E["dram_background"],
    }
    e["e_total_pj"] = sum(e.values())

    def nbytes(bits: int) -> int | float:
        return bits_to_bytes(n * bits)

    return {
        "name": rec.name, "op": rec.op, "M": rec.M, "N": rec.N, "K": rec.K, "count": n, "batch": rec.batch,
        "b_a": prec.a.bits, "b_w": prec.w.bits, "b_a_lane": prec.a.bits, "b_w_lane": prec.w.bits, "P": float(P),
        "family_a": prec.a.family, "family_w": prec.w.family, "unquantized": prec.unquantized,
        "dataflow": dataflow, "R": rows, "C": cols, "folds_row": None, "folds_col": None,
        "compute_cycles": n * best["compute_cycles"], "stall_cycles": n * stall, "total_cycles": n * total,
        "macs": macs,
        "overall_util_pct": util, "lane_util_pct": util,
        "mapping_eff_pct": None, "compute_util_pct": None,
        "sram_ifmap_reads_bytes": nbytes(best["ibuf_read_bits"]), "sram_ifmap_writes_bytes": nbytes(best["ibuf_write_bits"]),
        "sram_filter_reads_bytes": nbytes(best["wbuf_read_bits"]),
        "sram_filter_writes_bytes": nbytes(best["wbuf_write_bits"]),
        "obuf_reads_bytes": nbytes(best["obuf_read_bits"]), "obuf_writes_bytes": nbytes(best["obuf_write_bits"]),
        "dram_reads_bytes": nbytes(best["dram_read_bits"]), "dram_writes_bytes": nbytes(best["dram_write_bits"]),
        **e,
        "tiling": f"{best['order']}:b{best['tile']['b']},o{best['tile']['oh']}x{best['tile']['ow']},"
                  f"ic{best['tile']['ic']},oc{best['tile']['oc']}",
    }
