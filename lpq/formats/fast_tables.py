"""Fast exact construction of float tables for grids of rationals and powers of two.

Produces exactly what `Format.table` builds with `lpq.formats.exact` (values rounded to
nearest, thresholds = smallest float that rounds up; LP-FORMAT §6, BASELINE-FORMATS §1.1),
but decides most entries vectorised: dyadic rationals are exact floats, and irrational powers
of two 2^(q+r) are rounded once per distinct fractional part r with the high-precision
rounding of `lpq.formats.exact` and scaled by 2^q.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np

from .exact import Exact, Pow2, float_ceil, float_nearest

_NORMAL_EXPONENTS = {np.dtype(np.float32): (-126, 127), np.dtype(np.float64): (-1022, 1023)}


def _exact_in_float64(q: Fraction) -> bool:
    """True when q is a dyadic rational that float64 holds exactly as a normal number (or 0)."""
    n, d = q.numerator, q.denominator
    if n == 0:
        return True
    if d & (d - 1):
        return False
    n = abs(n)
    significand = n >> ((n & -n).bit_length() - 1)  # strip trailing zero bits
    return significand.bit_length() <= 53 and d.bit_length() <= 1023 and n.bit_length() <= 1023


def _split_exact(values: Sequence[Exact]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per value: its float64 when that is exact and the mask of those; the mask of
    irrational powers of two 2^e (e not an integer)."""
    out = np.zeros(len(values))
    dyadic = np.zeros(len(values), dtype=bool)
    irrational = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, Pow2):
            e = v.exponent
            if e.denominator != 1:
                irrational[i] = True
                continue
            v = Fraction(2) ** int(e)
        if isinstance(v, Fraction) and _exact_in_float64(v):
            out[i], dyadic[i] = float(v), True
    return out, dyadic, irrational


def round_exact_values(values: Sequence[Exact], dtype: np.dtype, ceil: bool) -> tuple[np.ndarray, np.ndarray]:
    """Round every exact value to dtype (nearest, or ceil) -> (floats, mask of exact ones).

    Exact dyadics are cast; an irrational 2^(q+r) in the normal range is rounded as
    2^q * round(2^r) (scaling by 2^q is exact there), so only distinct fractional parts r need
    the >= 192-bit rounding of `lpq.formats.exact`; anything else goes through it directly."""
    approx, dyadic, irrational = _split_exact(values)
    with np.errstate(over="ignore", under="ignore"):
        out = approx.astype(dtype)
    exact = dyadic & (out.astype(np.float64) == approx)
    done = exact.copy()
    lo_exp, hi_exp = _NORMAL_EXPONENTS[dtype]
    rounding = float_ceil if ceil else float_nearest
    unit_cache: dict = {}
    for i in np.nonzero(~done)[0]:
        v = values[i]
        if irrational[i] and lo_exp <= math.floor(v.exponent) < hi_exp:
            q = math.floor(v.exponent)
            r = v.exponent - q
            if r not in unit_cache:
                unit_cache[r] = rounding(Pow2(r), dtype)
            out[i] = np.ldexp(float(unit_cache[r]), q)
        elif not ceil:
            out[i] = 0.0 if v == 0 else float_nearest(v, dtype)
        else:
            out[i] = np.nan  # threshold(): left to the caller, which knows the tie direction
    return out, exact
