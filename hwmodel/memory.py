"""Memory traffic and bandwidth stalls of one GEMM (HWMODEL §4, `accounting: physical`; §2.5 for
`accounting: scalesim`).

Counts are elements converted to bits with the operand widths (b_a', b_w' storage widths,
b_out' for final outputs, psum_bits for partial sums). SRAM counts are the packed-word counts of
§2.5 evaluated with K' = ⌈K/P⌉ and multiplied by P; DRAM counts follow the pass-count model with
half-buffer (double-buffered) fit tests; stalls use one DRAM channel of `dram_bw_bits` per cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .lanes import packed_k
from .systolic import ceil_div, gemm_cycles, gemm_stats


@dataclass(frozen=True)
class MemoryArch:
    """Buffer sizes (bytes), DRAM bandwidth (bits/cycle) and partial-sum width (§5.3 defaults)."""

    ibuf_bytes: int
    wbuf_bytes: int
    obuf_bytes: int
    dram_bw_bits: int
    psum_bits: int = 32


@dataclass(frozen=True)
class Widths:
    """Stored widths in bits: ifmap, filter, final output (b_a', b_w', b_out')."""

    a: int
    w: int
    out: int


def _elements(value: Fraction | int) -> int:
    return math.ceil(value)


def bits_to_bytes(bits: int) -> int | float:
    """Bytes for a bit count: an int when whole, else the exact fraction as a float."""
    return bits // 8 if bits % 8 == 0 else bits / 8


def sram_dram_bits(M: int, N: int, K: int, u_a: int, P: Fraction, R: int, C: int, dataflow: str,
                   widths: Widths, arch: MemoryArch) -> dict[str, int]:
    """Bits moved per GEMM in `physical` accounting (§4): SRAM reads/writes per buffer, DRAM reads/writes."""
    Kp = packed_k(K, P)
    F_K = ceil_div(Kp, R) if dataflow in ("ws", "is") else 1
    if dataflow == "os":
        ibuf_rd, wbuf_rd = ceil_div(N, C) * M * Kp * P, ceil_div(M, R) * Kp * N * P
    elif dataflow == "ws":
        ibuf_rd, wbuf_rd = ceil_div(N, C) * M * Kp * P, Kp * N * P
    else:
        ibuf_rd, wbuf_rd = Kp * M * P, ceil_div(M, C) * Kp * N * P
    psum = (F_K - 1) * M * N  # WS/IS partial sums accumulate in the OBUF (Q2 removed)
    # DRAM passes (§4): half-buffer fit tests reflect double buffering
    if u_a * widths.a <= arch.ibuf_bytes * 4:  # u_a·b_a'/8 <= IBUF/2
        passes_a = 1
    else:
        passes_a = ceil_div(N, C) if dataflow in ("os", "ws") else 1
    if K * N * widths.w <= arch.wbuf_bytes * 4:
        passes_w = 1
    elif dataflow == "os":
        passes_w = 1 if K * min(N, C) * widths.w <= arch.wbuf_bytes * 4 else ceil_div(M, R)
    elif dataflow == "ws":
        passes_w = 1
    else:
        passes_w = ceil_div(M, C)
    dram_a, dram_w = u_a * passes_a, K * N * passes_w
    spill = psum if (F_K > 1 and M * N * arch.psum_bits > arch.obuf_bytes * 4) else 0
    return {
        "sram_ifmap_reads": _elements(ibuf_rd) * widths.a,
        "sram_ifmap_writes": dram_a * widths.a,
        "sram_filter_reads": _elements(wbuf_rd) * widths.w,
        "sram_filter_writes": dram_w * widths.w,
        "obuf_reads": psum * arch.psum_bits + M * N * widths.out,
        "obuf_writes": psum * arch.psum_bits + M * N * widths.out,
        "dram_reads": dram_a * widths.a + dram_w * widths.w + spill * arch.psum_bits,
        "dram_writes": M * N * widths.out + spill * arch.psum_bits,
    }


def scalesim_bits(M: int, N: int, K: int, u_a: int, P: Fraction, R: int, C: int, dataflow: str,
                  widths: Widths) -> dict[str, int]:
    """Bits moved per GEMM in `accounting: scalesim` (§2.5 word counts with K', times the widths;
    quirks Q1/Q2 kept; SRAM fills = DRAM reads; no OBUF reads)."""
    Kp = packed_k(K, P)
    s = gemm_stats(M, N, Kp, R, C, dataflow, ifmap_unique=u_a)
    return {
        "sram_ifmap_reads": _elements(s["sram_ifmap_reads"] * P) * widths.a,
        "sram_ifmap_writes": s["dram_ifmap_reads"] * widths.a,
        "sram_filter_reads": _elements(s["sram_filter_reads"] * P) * widths.w,
        "sram_filter_writes": K * N * widths.w,
        "obuf_reads": 0,
        "obuf_writes": s["sram_ofmap_writes"] * widths.out,
        "dram_reads": s["dram_ifmap_reads"] * widths.a + K * N * widths.w,
        "dram_writes": s["dram_ofmap_writes"] * widths.out,
    }


def stall_cycles(compute: int, dram_bits: int, P: Fraction, R: int, C: int, dataflow: str, widths: Widths,
                 dram_bw_bits: int) -> int:
    """stall = max(0, mem − compute) + first + last (§4; double-buffered prefetch)."""
    mem = ceil_div(dram_bits, dram_bw_bits)
    if dataflow == "ws":
        first_bits = R * C * P * widths.w
    elif dataflow == "is":
        first_bits = R * C * P * widths.a
    else:
        first_bits = (R * widths.a + C * widths.w) * P
    first = math.ceil(Fraction(first_bits) / dram_bw_bits)
    last = ceil_div(R * C * widths.out, dram_bw_bits)
    return max(0, mem - compute) + first + last


def compute_cycles(M: int, N: int, K: int, P: Fraction, R: int, C: int, dataflow: str) -> int:
    """§2.3 cycles with K' = ⌈K/P⌉ (§3.2, V2)."""
    return gemm_cycles(M, N, packed_k(K, P), R, C, dataflow)
