"""CPU fast path: one fused, multithreaded numba kernel over float32 bit patterns.

Measured on 2 cores: one pass at memory speed, about 2x faster than torch's own
float32 -> float8_e4m3fn -> float32 round trip (benchmarks/bench_quantize.py).
"""
from __future__ import annotations

import numba as nb
import numpy as np

from .tables import FLAG_SIGNED, FLAG_ZERO_KEEPS_SIGN, PREFIX_SHIFT, KernelTable

_PARALLEL_MIN = 1 << 15  # below this many elements the serial kernel is faster


def _body(xb, xf, ob, of, lut, thr, vals, flags, r, s, use_scale, i):
    b = xb[i]
    if use_scale:
        of[i] = xf[i] * r  # one float32 multiply: y = RN32(x * r)
        b = ob[i]
    sign = b & np.uint32(0x80000000)
    a = b & np.uint32(0x7FFFFFFF)
    if a > np.uint32(0x7F800000):
        ob[i] = np.uint32(0x7FC00000)  # NaN in, canonical NaN out
        return
    if a == 0:
        ob[i] = b if (flags & FLAG_ZERO_KEEPS_SIGN) else np.uint32(0)
    elif sign and not (flags & FLAG_SIGNED):
        ob[i] = np.uint32(0)  # unsigned formats: negative -> +0
    else:
        packed = lut[a >> PREFIX_SHIFT]
        j = packed & np.uint32(0xFFFF)
        end = j + (packed >> np.uint32(16))
        while j < end and thr[j] <= a:
            j += np.uint32(1)
        v = vals[j]
        if v == 0 and not (flags & FLAG_ZERO_KEEPS_SIGN):
            ob[i] = np.uint32(0)
        else:
            ob[i] = v | sign
    if use_scale:
        of[i] = of[i] * s  # out = RN32(Q(y) * s)


_body_jit = nb.njit(inline="always", cache=True)(_body)


@nb.njit(parallel=True, cache=True, nogil=True)
def _quantize_parallel(xb, xf, ob, of, lut, thr, vals, flags, r, s, use_scale):
    for i in nb.prange(xb.shape[0]):
        _body_jit(xb, xf, ob, of, lut, thr, vals, flags, r, s, use_scale, i)


@nb.njit(cache=True, nogil=True)
def _quantize_serial(xb, xf, ob, of, lut, thr, vals, flags, r, s, use_scale):
    for i in range(xb.shape[0]):
        _body_jit(xb, xf, ob, of, lut, thr, vals, flags, r, s, use_scale, i)


def quantize_f32(table: KernelTable, x: np.ndarray, out: np.ndarray, r: float | None, s: float | None) -> None:
    """out[:] = Q(x) for contiguous 1-D float32 arrays (out may alias x)."""
    xb = x.view(np.uint32)
    ob = out.view(np.uint32)
    use_scale = r is not None
    rr = np.float32(r if use_scale else 1.0)
    ss = np.float32(s if use_scale else 1.0)
    kernel = _quantize_parallel if x.shape[0] >= _PARALLEL_MIN else _quantize_serial
    kernel(xb, x, ob, out, table.lut, table.thresholds, table.values, np.uint32(table.flags), rr, ss, use_scale)
