"""AdaptivFloat `af<n,e>`, 2022 revision of the authors' reference code (BASELINE-FORMATS §2.4).

Unscaled code book: zero and +/-2^j*(1 + M/2^m) for j = -(2^e-3) .. 0, m = n-1-e; code
S | E | M with E = j + 2^e - 2. Below the smallest normal the value flushes to +/-0 (the
smallest normal itself rounds up); above, the mantissa rounds half to even; |y| > max -> max.
The per-tensor exponent bias is the external sf (`pow2max` rule, §1.3).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from .base import Grid
from .baseline import BaselineFormat, check_float32_range, dyadic, parse_sf, sign_magnitude_decode, sign_magnitude_grid
from .spec import ParsedSpec, register_family

MAX_BITS = 16


class AdaptivFloatFormat(BaselineFormat):
    """af<n,e>: 2^e - 2 binades below 2, no subnormals, no inf/NaN (§2.4)."""

    family = "af"
    zero_keeps_sign = True

    def __init__(self, n: int, e: int, sf: float = 0.0):
        if not 3 <= n <= MAX_BITS:
            raise ValueError(f"n={n} is invalid for af<n,e>: need 3 <= n <= {MAX_BITS}")
        if not 2 <= e <= n - 1:
            raise ValueError(f"e={e} is invalid for af<{n},e>: need 2 <= e <= {n - 1}")
        self.n, self.e, self.m, self.bits = n, e, n - 1 - e, n
        self._set_sf(sf)
        check_float32_range(self.body, -self.binades + 1, 0)

    @property
    def body(self) -> str:
        return f"af<{self.n},{self.e}>"

    @property
    def binades(self) -> int:
        """Number of binades 2^e - 2 (E = 1 .. 2^e-2)."""
        return (1 << self.e) - 2

    def _magnitudes(self) -> list[Fraction | None]:
        """Value of each magnitude code w = E << m | M; None for the unused patterns."""
        out: list[Fraction | None] = []
        for w in range(1 << (self.n - 1)):
            E, M = w >> self.m, w & ((1 << self.m) - 1)
            if E == 0:
                out.append(Fraction(0) if M == 0 else None)
            elif E > self.binades:
                out.append(None)
            else:
                out.append(dyadic((1 << self.m) + M, E - self.binades - self.m))
        return out

    def _build_grid(self) -> Grid:
        g = sign_magnitude_grid(self._magnitudes(), self.n - 1)
        # flush: the point between 0 and the smallest normal is that normal, which rounds up
        tie_up = np.concatenate([[True], g.tie_up[1:]])
        return Grid(g.magnitudes, g.pos_codes, g.neg_codes, (g.magnitudes[1],) + g.points[1:], tie_up)

    def _decode_exact(self) -> list:
        return sign_magnitude_decode(self._magnitudes(), self.n - 1)


@register_family("af")
def _build_af(p: ParsedSpec) -> AdaptivFloatFormat:
    p.expect_args("n", "e")
    p.expect_no_options()
    return AdaptivFloatFormat(p.int_arg(0, "n"), p.int_arg(1, "e"), parse_sf(p))
