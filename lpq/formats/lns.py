"""Logarithmic number system `lns<n,f>` (BASELINE-FORMATS §2.5).

Code = S | L, L an (n-1)-bit two's-complement integer, value (-1)^S * 2^(L/2^f) for
|L| <= Lmax = 2^(n-2)-1. L = -2^(n-2) is zero (S = 0) or NaN (S = 1). Rounding is nearest in
log2 (exact Pow2 midpoints, ties to even L), saturating at both ends: a nonzero never
becomes zero.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .base import Grid, Neg, even_tie_up
from .baseline import BaselineFormat, check_float32_range, parse_sf
from .exact import Pow2
from .spec import ParsedSpec, register_family

N_RANGE = (2, 16)


class LNSFormat(BaselineFormat):
    """lns<n,f>: sign bit plus a fixed-point log2 with f fraction bits (§2.5)."""

    family = "lns"

    def __init__(self, n: int, f: int, sf: float = 0.0):
        if not N_RANGE[0] <= n <= N_RANGE[1]:
            raise ValueError(f"n={n} is invalid for lns<n,f>: need {N_RANGE[0]} <= n <= {N_RANGE[1]}")
        if not 0 <= f <= n - 2:
            raise ValueError(f"f={f} is invalid for lns<{n},f>: need 0 <= f <= {n - 2}")
        self.n, self.f, self.bits = n, f, n
        self.l_max = (1 << (n - 2)) - 1
        self._set_sf(sf)
        top = Fraction(self.l_max, 1 << f)
        check_float32_range(self.body, -top, top)

    @property
    def body(self) -> str:
        return f"lns<{self.n},{self.f}>"

    @property
    def _zero_code(self) -> int:
        return 1 << (self.n - 2)  # S = 0, L = -2^(n-2)

    @property
    def nan_code(self) -> int:
        return (1 << (self.n - 1)) | (1 << (self.n - 2))  # S = 1, L = -2^(n-2)

    def _l_code(self, L: int) -> int:
        return L % (1 << (self.n - 1))

    def _build_grid(self) -> Grid:
        Ls = range(-self.l_max, self.l_max + 1)
        scale = 1 << self.f
        mags = tuple(Pow2(Fraction(L, scale)) for L in Ls)
        points = tuple(Pow2(Fraction(2 * L + 1, 2 * scale)) for L in Ls[:-1])  # log-domain midpoints
        pos = np.array([self._l_code(L) for L in Ls], dtype=np.int64)  # parity of the code = parity of L
        neg = pos | (1 << (self.n - 1))
        return Grid(mags, pos, neg, points, even_tie_up(pos))

    def _decode_exact(self) -> list:
        out: list = []
        half, sign = 1 << (self.n - 2), 1 << (self.n - 1)
        for c in range(1 << self.n):
            body = c & (sign - 1)
            L = body - sign if body >= half else body
            if L == -half:
                out.append(None if c & sign else Fraction(0))
            else:
                v = Pow2(Fraction(L, 1 << self.f))
                out.append(Neg(v) if c & sign else v)
        return out


@register_family("lns")
def _build_lns(p: ParsedSpec) -> LNSFormat:
    p.expect_args("n", "f")
    p.expect_no_options()
    return LNSFormat(p.int_arg(0, "n"), p.int_arg(1, "f"), parse_sf(p))
