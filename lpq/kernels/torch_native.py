"""Device-generic fallback: the kernels' algorithm written with torch ops (LP-FORMAT §6).

Used on CUDA when CuPy is not installed (`pip install -e ".[gpu]"` adds it) and on devices
that have no kernel of their own, so a GPU run never fails for want of CuPy. Same tables and
the same integer comparisons on float32 bit patterns as the numba and CuPy kernels: the
index of a magnitude is the number of thresholds <= its bit pattern (`searchsorted`), so the
result is bit-identical to them (tested against the CPU kernel).
"""
from __future__ import annotations

import torch

from .tables import FLAG_SIGNED, FLAG_ZERO_KEEPS_SIGN, KernelTable

_NAN_BITS = 0x7FC00000
_EXP_ALL_ONES = 0x7F800000
_SIGN = 0x80000000
_MASK = 0x7FFFFFFF


def _device_tables(table: KernelTable, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    cache = table.__dict__.setdefault("_torch_tables", {})  # the dataclass is frozen; its __dict__ is not
    key = str(device)
    if key not in cache:
        thr = torch.as_tensor(table.thresholds.astype("int64"), device=device)
        vals = torch.as_tensor(table.values.astype("int64"), device=device)
        cache[key] = (thr, vals)
    return cache[key]


def _bits(x: torch.Tensor) -> torch.Tensor:
    """float32 -> its bit pattern as a non-negative int64."""
    return x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF


def _floats(bits: torch.Tensor) -> torch.Tensor:
    """Non-negative int64 bit patterns -> float32."""
    signed = torch.where(bits >= 2**31, bits - 2**32, bits)
    return signed.to(torch.int32).view(torch.float32)


def quantize_f32(table: KernelTable, x: torch.Tensor, r: float | None, s: float | None) -> torch.Tensor:
    """Q(x) for a contiguous float32 tensor on any device; r, s: float32 scale pair or None."""
    thr, vals = _device_tables(table, x.device)
    if r is not None:
        x = x * torch.tensor(r, dtype=torch.float32, device=x.device)  # RN float32 product, as __fmul_rn
    b = _bits(x)
    sign, a = b & _SIGN, b & _MASK
    keep = bool(table.flags & FLAG_ZERO_KEEPS_SIGN)
    v = vals[torch.searchsorted(thr, a, right=True)]  # index = number of thresholds <= a
    o = v | sign if keep else torch.where(v == 0, torch.zeros_like(v), v | sign)
    if not table.flags & FLAG_SIGNED:
        o = torch.where(sign != 0, torch.zeros_like(o), o)
    o = torch.where(a == 0, b if keep else torch.zeros_like(b), o)
    o = torch.where(a > _EXP_ALL_ONES, torch.full_like(o, _NAN_BITS), o)
    out = _floats(o)
    if s is not None:
        out = out * torch.tensor(s, dtype=torch.float32, device=x.device)
    return out
