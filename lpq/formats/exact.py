"""Exact and high-precision arithmetic for building float tables (LP-FORMAT §5.5, §6).

Code-book values and decision points are exact numbers of two kinds: rationals
(`fractions.Fraction`) and powers of two with a rational exponent (`Pow2`). This module
rounds them to float32/float64 correctly (nearest, or smallest float >= point) using exact
rational comparisons where possible and >= 160-bit mpmath arithmetic otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Union

import functools

import mpmath
import mpmath.libmp as mlib
import numpy as np

_PREC = 192  # working precision in bits for irrational powers of two
_MARGIN = mpmath.mpf(2) ** -100  # required relative distance from a decision (LP-FORMAT §6 step 3)


@dataclass(frozen=True)
class Pow2:
    """The exact real 2**exponent, exponent a rational number."""

    exponent: Fraction


@dataclass(frozen=True)
class Mean2:
    """The exact real (a + b) / 2 of two powers of two (linear-rounding decision points)."""

    a: Pow2
    b: Pow2


Exact = Union[Fraction, Pow2, Mean2]


def _finfo(dtype: np.dtype) -> np.finfo:
    return np.finfo(np.dtype(dtype))


def _as_fraction_if_rational(v: Exact) -> Fraction | None:
    """The value as a Fraction when it is rational (always for Fraction; integer exponents)."""
    if isinstance(v, Fraction):
        return v
    if isinstance(v, Mean2):
        a, b = _as_fraction_if_rational(v.a), _as_fraction_if_rational(v.b)
        return None if a is None or b is None else (a + b) / 2
    if v.exponent.denominator == 1:
        return Fraction(2) ** int(v.exponent)
    return None


def _mpf(v: Exact) -> mpmath.mpf:
    with mpmath.workprec(_PREC):
        if isinstance(v, Fraction):
            return mpmath.mpf(v.numerator) / v.denominator
        if isinstance(v, Mean2):
            return (_mpf(v.a) + _mpf(v.b)) / 2
        e = v.exponent
        return mpmath.power(2, mpmath.mpf(e.numerator) / e.denominator)


def _next(f, dtype, direction: float):
    return np.nextafter(dtype.type(f), dtype.type(direction))


def _compare(f, v_rational: Fraction | None, v_mp) -> int:
    """Sign of (float f) - v, computed exactly (rational) or at high precision (irrational)."""
    if np.isinf(f):
        return 1 if f > 0 else -1
    if v_rational is not None:
        d = Fraction(float(f)) - v_rational
        return (d > 0) - (d < 0)
    with mpmath.workprec(_PREC):
        fm = mpmath.mpf(float(f))
        diff = fm - v_mp
        if abs(diff) <= _MARGIN * abs(v_mp):
            raise ArithmeticError(f"float {f!r} lies within 2^-100 of an irrational decision point")
        return 1 if diff > 0 else -1


def _initial_guess(v_rational: Fraction | None, v_mp, dtype: np.dtype):
    with np.errstate(over="ignore", under="ignore"):
        approx = float(v_rational) if v_rational is not None else float(v_mp)
        return dtype.type(approx)


def is_representable(v: Exact, dtype) -> bool:
    """True when v is exactly a finite float of dtype."""
    dtype = np.dtype(dtype)
    q = _as_fraction_if_rational(v)
    if q is None:
        return False
    with np.errstate(over="ignore", under="ignore"):
        f = dtype.type(float(q)) if abs(q) < 2**1100 else dtype.type(np.inf)
    return bool(np.isfinite(f)) and Fraction(float(f)) == q


# ---- fast path: irrational values in the normal range, rounded with libmp at _PREC bits ----

@functools.lru_cache(maxsize=1 << 16)
def _pow2_frac(r: Fraction):
    """2**r for 0 <= r < 1 as a libmp mpf at _PREC bits (cached: LP tables reuse fractions)."""
    x = mlib.mpf_div(mlib.from_int(r.numerator), mlib.from_int(r.denominator), _PREC + 8)
    return mlib.mpf_exp(mlib.mpf_mul(x, mlib.mpf_ln2(_PREC + 8), _PREC + 8), _PREC)


def _mpf_fast(v: Exact):
    """v as a libmp mpf (relative error < 2**-(_PREC-4)), for Pow2 and Mean2 values."""
    if isinstance(v, Pow2):
        q = v.exponent.numerator // v.exponent.denominator
        return mlib.mpf_shift(_pow2_frac(v.exponent - q), q)
    if isinstance(v, Mean2):
        return mlib.mpf_shift(mlib.mpf_add(_mpf_fast(v.a), _mpf_fast(v.b), _PREC), -1)
    return mlib.from_rational(v.numerator, v.denominator, _PREC)


_DTYPE_BITS = {np.dtype(np.float32): (24, -126, 127), np.dtype(np.float64): (53, -1022, 1023)}


def _round_fast(v: Exact, dtype: np.dtype, rnd: str):
    """Round an irrational v > 0 to dtype ('n' nearest, 'c' ceiling) when it lies in the
    normal range; None when the slow path must decide (rational or out of range)."""
    if _as_fraction_if_rational(v) is not None:
        return None
    prec, emin, emax = _DTYPE_BITS[dtype]
    x = _mpf_fast(v)
    _, man, exp, bc = x
    top = exp + bc - 1  # floor(log2 x)
    if top < emin or top >= emax:
        return None
    lo = mlib.mpf_pos(x, prec, "f")
    hi = mlib.mpf_pos(x, prec, "c")
    # the decision needs x to be clearly away from lo, hi and (for nearest) their midpoint
    margin = mlib.mpf_shift(x, -100)
    gaps = [mlib.mpf_sub(x, lo), mlib.mpf_sub(hi, x)]
    if any(mlib.mpf_lt(g, margin) for g in gaps):
        raise ArithmeticError(f"irrational value {v} lies within 2^-100 of a {dtype.name}")
    if rnd == "c":
        out = hi
    else:
        mid = mlib.mpf_shift(mlib.mpf_add(lo, hi, prec + 2), -1)
        d = mlib.mpf_sub(x, mid, _PREC)
        if mlib.mpf_lt(mlib.mpf_abs(d), margin):
            raise ArithmeticError(f"irrational value {v} lies within 2^-100 of a {dtype.name} midpoint")
        out = hi if mlib.mpf_gt(d, mlib.fzero) else lo
    return dtype.type(mlib.to_float(out))


def float_ceil(v: Exact, dtype) -> float:
    """Smallest float of dtype that is >= v (v > 0); +inf above the largest finite float."""
    dtype = np.dtype(dtype)
    fast = _round_fast(v, dtype, "c")
    if fast is not None:
        return fast
    q = _as_fraction_if_rational(v)
    mp = None if q is not None else _mpf(v)
    f = _initial_guess(q, mp, dtype)
    if f == 0:
        f = dtype.type(_finfo(dtype).smallest_subnormal)
    while _compare(f, q, mp) < 0:
        f = _next(f, dtype, np.inf)
    while True:
        below = _next(f, dtype, -np.inf)
        if below <= 0 or _compare(below, q, mp) < 0:
            return f
        f = below


def float_nearest(v: Exact, dtype) -> float:
    """The float of dtype nearest to v > 0, ties to even (LP-FORMAT §5.5)."""
    dtype = np.dtype(dtype)
    fast = _round_fast(v, dtype, "n")
    if fast is not None:
        return fast
    hi = float_ceil(v, dtype)
    q = _as_fraction_if_rational(v)
    if q is not None and np.isfinite(hi) and Fraction(float(hi)) == q:
        return hi
    lo = _next(hi, dtype, -np.inf)
    if not np.isfinite(hi):
        raise OverflowError(f"value {v} exceeds the largest finite {dtype.name}")
    # compare v with the midpoint of lo and hi (exact rational)
    mid = (Fraction(float(lo)) + Fraction(float(hi))) / 2
    sign = _compare_exact_to(v, q, mid)
    if sign > 0:
        return hi
    if sign < 0:
        return lo
    # exact tie: even significand
    return lo if (np.array(lo, dtype=dtype).view(_uint_of(dtype)) & 1) == 0 else hi


def _compare_exact_to(v: Exact, q: Fraction | None, r: Fraction) -> int:
    """Sign of v - r for rational r."""
    if q is not None:
        d = q - r
        return (d > 0) - (d < 0)
    mp = _mpf(v)
    with mpmath.workprec(_PREC):
        diff = mp - (mpmath.mpf(r.numerator) / r.denominator)
        if abs(diff) <= _MARGIN * abs(mp):
            raise ArithmeticError(f"irrational value {v} lies within 2^-100 of a float midpoint")
        return 1 if diff > 0 else -1


def _uint_of(dtype: np.dtype):
    return {4: np.uint32, 8: np.uint64, 2: np.uint16}[np.dtype(dtype).itemsize]


def threshold(point: Exact, tie_up: bool, dtype) -> float:
    """Smallest float x of dtype that rounds to the upper side of `point` (LP-FORMAT §6).

    When `point` is exactly a float of dtype, an input equal to it is a tie: it goes up when
    `tie_up`, so the threshold is the point itself, otherwise the next float above.
    """
    dtype = np.dtype(dtype)
    if is_representable(point, dtype):
        f = dtype.type(float(_as_fraction_if_rational(point)))
        return f if tie_up else _next(f, dtype, np.inf)
    return float_ceil(point, dtype)
