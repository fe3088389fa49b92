"""Small floating-point formats: the OCP presets and generic `fp<e,m>` (BASELINE-FORMATS §2.2).

Code = S | E (e bits) | M (m bits), bias b = 2^(e-1)-1; E = 0 is subnormal. Rounding is
nearest, ties to even (the even code), with subnormals and saturation at +/-max. Specials:
`fp8_e4m3` has only S.1111.111 = NaN; `fp8_e5m2` has an IEEE exponent E = 31 (inf, NaN);
the other presets and every `fp<e,m>` use all codes for finite values.
"""
from __future__ import annotations

import functools
from fractions import Fraction

import numpy as np

from .base import Grid
from .baseline import BaselineFormat, check_float32_range, dyadic, parse_sf, sign_magnitude_decode, sign_magnitude_grid
from .spec import ParsedSpec, register_family

SPECIALS = ("none", "e4m3", "ieee")  # no specials / OCP E4M3 all-ones NaN / IEEE top exponent
PRESETS: dict[str, tuple[int, int, str]] = {
    "fp8_e4m3": (4, 3, "e4m3"),
    "fp8_e5m2": (5, 2, "ieee"),
    "fp6_e2m3": (2, 3, "none"),
    "fp6_e3m2": (3, 2, "none"),
    "fp4_e2m1": (2, 1, "none"),
}
E_RANGE = (1, 7)
MAX_BITS = 16


class FloatFormat(BaselineFormat):
    """A sign-magnitude binary float with subnormals; `preset` names an OCP format (§2.2)."""

    family = "fp"
    zero_keeps_sign = True

    def __init__(self, e: int, m: int, sf: float = 0.0, preset: str | None = None):
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"preset={preset!r} is invalid: need one of {', '.join(PRESETS)}")
            e, m, self.specials = PRESETS[preset]
        else:
            if not E_RANGE[0] <= e <= E_RANGE[1]:
                raise ValueError(f"e={e} is invalid for fp<e,m>: need {E_RANGE[0]} <= e <= {E_RANGE[1]}")
            if m < 0 or 1 + e + m > MAX_BITS:
                raise ValueError(f"m={m} is invalid for fp<{e},m>: need 0 <= m <= {MAX_BITS - 1 - e} (1+e+m <= {MAX_BITS})")
            self.specials = "none"
        self.e, self.m, self.preset = e, m, preset
        self.bits = 1 + e + m
        self.bias = (1 << (e - 1)) - 1
        self._set_sf(sf)
        top = (1 << e) - 1 - (self.specials == "ieee")
        check_float32_range(self.body, 1 - self.bias - m, top - self.bias)  # min positive, max binade

    @property
    def body(self) -> str:
        return self.preset if self.preset is not None else f"fp<{self.e},{self.m}>"

    @property
    def nan_code(self) -> int | None:
        return None if self.specials == "none" else (1 << (self.bits - 1)) - 1  # S.1111.111 / 0x7f

    def _kind(self, w: int) -> str:
        """'finite', 'inf' or 'nan' for the magnitude code w."""
        E, M = w >> self.m, w & ((1 << self.m) - 1)
        if self.specials == "e4m3" and w == (1 << (self.bits - 1)) - 1:
            return "nan"
        if self.specials == "ieee" and E == (1 << self.e) - 1:
            return "inf" if M == 0 else "nan"
        return "finite"

    def magnitude(self, w: int) -> Fraction:
        """Exact value of the magnitude code w = E << m | M (§2.2)."""
        E, M = w >> self.m, w & ((1 << self.m) - 1)
        if E == 0:
            return dyadic(M, 1 - self.bias - self.m)
        return dyadic((1 << self.m) + M, E - self.bias - self.m)

    def _magnitudes(self) -> list[Fraction | None]:
        return [self.magnitude(w) if self._kind(w) == "finite" else None for w in range(1 << (self.bits - 1))]

    def _build_grid(self) -> Grid:
        return sign_magnitude_grid(self._magnitudes(), self.bits - 1)

    def _decode_exact(self) -> list:
        return sign_magnitude_decode(self._magnitudes(), self.bits - 1)

    @functools.cached_property
    def _decode_table(self) -> np.ndarray:
        """Exact decode, with e5m2's inf codes read as +/-inf (never produced by encode)."""
        values = BaselineFormat._decode_table.func(self)
        if self.specials != "ieee":
            return values
        values = values.copy()
        inf = (1 << (self.bits - 1)) - (1 << self.m)  # E all ones, M = 0
        values[inf], values[inf | (1 << (self.bits - 1))] = np.inf, -np.inf
        values.setflags(write=False)
        return values


@register_family("fp")
def _build_fp(p: ParsedSpec) -> FloatFormat:
    p.expect_args("e", "m")
    p.expect_no_options()
    return FloatFormat(p.int_arg(0, "e"), p.int_arg(1, "m"), parse_sf(p))


@register_family(*PRESETS)
def _build_preset(p: ParsedSpec) -> FloatFormat:
    p.expect_args()
    p.expect_no_options()
    return FloatFormat(0, 0, parse_sf(p), preset=p.name)
