"""Lane rule for mixed-precision PEs (HWMODEL §3.1, §3.2).

A PE with lane widths {p_min, …, p_max} runs an operand of b bits at lane width b' (smallest
supported width ≥ b); P(b_a', b_w') = (p_max/b_a')·(p_max/b_w') products per PE-cycle, and
operands wider than p_max run temporally (⌈b/p_max⌉ passes each, P = 1/(passes_a·passes_w)).
A fixed PE has one lane width, so P = 1 for every b ≤ p_max.
"""
from __future__ import annotations

from fractions import Fraction

from .systolic import ceil_div


def check_lanes(lanes) -> tuple[int, ...]:
    """Sorted lane widths; each must divide the widest (a fused PE splits its widest lane)."""
    out = tuple(sorted({int(w) for w in lanes}))
    if not out or out[0] < 1 or any(out[-1] % w for w in out):
        raise ValueError(f"lanes={list(lanes)!r} is invalid: need positive widths that divide the widest, e.g. [2, 4, 8]")
    return out


def lane_width(bits: int, lanes) -> int:
    """b': the storage/lane width of a b-bit operand; wider than p_max → ⌈b/p_max⌉·p_max (§3.1)."""
    lanes = check_lanes(lanes)
    if not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits={bits!r} is invalid: need a positive integer")
    for w in lanes:
        if w >= bits:
            return w
    return ceil_div(bits, lanes[-1]) * lanes[-1]


def operand_factor(bits: int, lanes) -> Fraction:
    """Per-operand throughput factor: p_max/b' for b' ≤ p_max, else 1/⌈b/p_max⌉ (§3.1)."""
    lanes = check_lanes(lanes)
    b_lane = lane_width(bits, lanes)
    if b_lane <= lanes[-1]:
        return Fraction(lanes[-1], b_lane)
    return Fraction(1, b_lane // lanes[-1])


def lane_factor(b_a: int, b_w: int, lanes) -> Fraction:
    """P(b_a', b_w'): products per PE per cycle (a Fraction below 1 for temporal passes)."""
    return operand_factor(b_a, lanes) * operand_factor(b_w, lanes)


def packed_k(K: int, P: Fraction) -> int:
    """K' = ⌈K/P⌉: the reduction length the array sees under reduction packing (§3.2)."""
    return ceil_div(K * P.denominator, P.numerator)
