"""Integer formats `int<n>` (symmetric two's complement) and `uint<n>` (BASELINE-FORMATS §2.1).

Q0(y) = clamp(round_half_even(y), -(2^(n-1)-1), 2^(n-1)-1) for int<n>; uint<n> clamps to
[0, 2^n-1] and maps negative inputs to +0.
"""
from __future__ import annotations

from fractions import Fraction

from .base import Grid
from .baseline import BaselineFormat, parse_sf, value_nearest_grid
from .spec import ParsedSpec, register_family

INT_N_RANGE = (2, 16)
UINT_N_RANGE = (1, 16)


def _check_n(name: str, n: int, allowed: tuple[int, int]) -> None:
    if not allowed[0] <= n <= allowed[1]:
        raise ValueError(f"n={n} is invalid for {name}<n>: need {allowed[0]} <= n <= {allowed[1]}")


class IntFormat(BaselineFormat):
    """int<n>: two's-complement codes restricted to the symmetric range (§2.1)."""

    family = "int"

    def __init__(self, n: int, sf: float = 0.0):
        _check_n("int", n, INT_N_RANGE)
        self.n = self.bits = n
        self._set_sf(sf)

    @property
    def body(self) -> str:
        return f"int<{self.n}>"

    def _build_grid(self) -> Grid:
        top = (1 << (self.n - 1)) - 1
        mags = [Fraction(q) for q in range(top + 1)]
        neg = [(-q) % (1 << self.n) for q in range(top + 1)]  # same parity as q: ties to even integer
        return value_nearest_grid(mags, range(top + 1), neg)

    def _decode_exact(self) -> list:
        half = 1 << (self.n - 1)
        return [Fraction(c if c < half else c - (1 << self.n)) for c in range(1 << self.n)]


class UIntFormat(BaselineFormat):
    """uint<n>: codes 0 .. 2^n-1, negative inputs give +0 (§2.1)."""

    family = "uint"
    signed = False

    def __init__(self, n: int, sf: float = 0.0):
        _check_n("uint", n, UINT_N_RANGE)
        self.n = self.bits = n
        self._set_sf(sf)

    @property
    def body(self) -> str:
        return f"uint<{self.n}>"

    def _build_grid(self) -> Grid:
        count = 1 << self.n
        return value_nearest_grid([Fraction(q) for q in range(count)], range(count), None)

    def _decode_exact(self) -> list:
        return [Fraction(c) for c in range(1 << self.n)]


@register_family("int")
def _build_int(p: ParsedSpec) -> IntFormat:
    p.expect_args("n")
    p.expect_no_options()
    return IntFormat(p.int_arg(0, "n"), parse_sf(p))


@register_family("uint")
def _build_uint(p: ParsedSpec) -> UIntFormat:
    p.expect_args("n")
    p.expect_no_options()
    return UIntFormat(p.int_arg(0, "n"), parse_sf(p))
