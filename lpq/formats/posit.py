"""Standard posits `posit<n,es>` (BASELINE-FORMATS §2.3).

A positive code is | regime (uncapped run) | es exponent bits | F fraction bits | with value
2^(2^es*k + e) * (1 + f/2^F). The decision point between codes c and c+1 is the value of the
(n+1)-bit code 2c+1; ties go to the even code. Saturating at both ends: no underflow to zero.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .base import Grid, even_tie_up
from .baseline import BaselineFormat, check_float32_range, dyadic, parse_sf
from .lp import lp_fields
from .spec import ParsedSpec, register_family

N_RANGE = (2, 16)


def posit_values(n: int, es: int) -> list[Fraction]:
    """Exact values of the positive codes 1 .. 2^(n-1)-1 of posit<n,es> (regime run up to n-1)."""
    k, e, f, F = lp_fields(n, es, n - 1)  # rs = n-1: the regime is never capped
    return [
        dyadic((1 << FF) + ff, (kk << es) + ee - FF)
        for kk, ee, ff, FF in zip(k.tolist(), e.tolist(), f.tolist(), F.tolist())
    ]


class PositFormat(BaselineFormat):
    """posit<n,es> with NaR = 2^(n-1) and two's-complement negatives (§2.3)."""

    family = "posit"

    def __init__(self, n: int, es: int, sf: float = 0.0):
        if not N_RANGE[0] <= n <= N_RANGE[1]:
            raise ValueError(f"n={n} is invalid for posit<n,es>: need {N_RANGE[0]} <= n <= {N_RANGE[1]}")
        if es < 0:
            raise ValueError(f"es={es} is invalid for posit<{n},es>: need es >= 0")
        self.n, self.es, self.bits = n, es, n
        self._set_sf(sf)
        if n > 2 and es > 7:  # 2^es*(n-2) >= 256: no need to form the huge exponent
            raise ValueError(
                f"es={es} is invalid for posit<{n},es>: maxpos = 2^(2^es*(n-2)) must fit float32, "
                f"need 2^es*(n-2) <= 126"
            )
        top = 0 if n == 2 else (1 << es) * (n - 2)  # maxpos = 2^top = 1/minpos
        check_float32_range(self.body, -top, top)

    @property
    def body(self) -> str:
        return f"posit<{self.n},{self.es}>"

    @property
    def nan_code(self) -> int:
        return 1 << (self.n - 1)  # NaR

    def _build_grid(self) -> Grid:
        mags = posit_values(self.n, self.es)
        codes = np.arange(1, len(mags) + 1, dtype=np.int64)
        if len(mags) > 1:
            wide = posit_values(self.n + 1, self.es)  # wide[i] is the (n+1)-bit code i+1
            points = tuple(wide[2 * c] for c in range(1, len(mags)))  # code 2c+1, c = 1 .. N-1
        else:
            points = ()
        return Grid(tuple(mags), codes, (1 << self.n) - codes, points, even_tie_up(codes))

    def _decode_exact(self) -> list:
        mags = posit_values(self.n, self.es)
        half = 1 << (self.n - 1)
        out: list = [Fraction(0)] + mags + [None]
        out += [-mags[(1 << self.n) - c - 1] for c in range(half + 1, 1 << self.n)]
        return out


@register_family("posit")
def _build_posit(p: ParsedSpec) -> PositFormat:
    p.expect_args("n", "es")
    p.expect_no_options()
    return PositFormat(p.int_arg(0, "n"), p.int_arg(1, "es"), parse_sf(p))
