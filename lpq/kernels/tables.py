"""Kernel tables: a format's float32 thresholds and values as bit patterns plus a prefix
lookup table, shared by the CPU and CUDA fast paths (LP-FORMAT §6, §9.4).

For a positive float32 bit pattern a, the top 16 bits below the sign (a >> 15) select a
bucket; lut[bucket] packs the number of thresholds <= the bucket's first pattern (low 16
bits) and how many more thresholds fall inside the bucket (high 16 bits). The kernel then
compares against those few thresholds only, so no float log2 ever decides a rounding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PREFIX_SHIFT = 15  # 31 magnitude bits -> 16-bit bucket index
FLAG_SIGNED = 1
FLAG_ZERO_KEEPS_SIGN = 2


@dataclass(frozen=True)
class KernelTable:
    thresholds: np.ndarray  # uint32 bit patterns of the float32 thresholds (positive, sorted)
    values: np.ndarray  # uint32 bit patterns of the float32 magnitudes
    lut: np.ndarray  # uint32: lo | (count << 16) per 16-bit prefix
    flags: int
    max_scan: int  # largest count of thresholds inside one bucket


def build_kernel_table(fmt) -> KernelTable:
    """Build (once per format; cached on the format object) the bit-pattern tables."""
    cached = fmt.__dict__.get("_kernel_table")
    if cached is not None:
        return cached
    tab = fmt.table(np.float32)
    thr = np.ascontiguousarray(tab.thresholds, dtype=np.float32).view(np.uint32)
    vals = np.ascontiguousarray(tab.values, dtype=np.float32).view(np.uint32)
    first = np.arange(1 << 16, dtype=np.uint64) << PREFIX_SHIFT
    last = first + ((1 << PREFIX_SHIFT) - 1)
    lo = np.searchsorted(thr, first, side="right")
    hi = np.searchsorted(thr, last, side="right")
    count = hi - lo
    if len(vals) > 0xFFFF + 1 or count.max(initial=0) > 0xFFFF:
        raise AssertionError("kernel table does not fit its 16-bit fields")
    lut = (lo.astype(np.uint32) | (count.astype(np.uint32) << 16)).astype(np.uint32)
    flags = (FLAG_SIGNED if fmt.signed else 0) | (FLAG_ZERO_KEEPS_SIGN if fmt.zero_keeps_sign else 0)
    table = KernelTable(thr, vals, lut, flags, int(count.max(initial=0)))
    fmt.__dict__["_kernel_table"] = table
    return table
