"""ANT data types (MICRO'22): `flint<n>`, `pot<n>`, their unsigned variants, and the adaptive
`ant<n>` / `uant<n>` whose type is chosen per tensor (BASELINE-FORMATS §2.6).

All are sign-magnitude with a B-bit magnitude code w (B = n-1 signed, B = n unsigned), rounded
to the nearest value with ties to the even w. The adaptive type is resolved by
`choose_ant_type`, which returns a fixed-type quantizer string such as ``flint<4>@2.5``.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from .base import Grid
from .baseline import BaselineFormat, dyadic, parse_sf, sign_magnitude_decode, sign_magnitude_grid
from .calibrate import antclip_search
from .spec import ParsedSpec, format_real, parse, register_family

# valid n per spec name (§2.6)
N_RANGES: dict[str, tuple[int, int]] = {
    "flint": (3, 8), "pot": (2, 6), "ant": (3, 8),
    "uflint": (2, 7), "upot": (1, 5), "uant": (2, 7),
}
INT_ONLY_FROM = 7  # n >= 7: the adaptive type is int only, as in ANT's artifact


def _check_n(name: str, n: int) -> None:
    lo, hi = N_RANGES[name]
    if not lo <= n <= hi:
        raise ValueError(f"n={n} is invalid for {name}<n>: need {lo} <= n <= {hi}")


def flint_magnitude(w: int, B: int) -> Fraction:
    """Value of the B-bit flint magnitude code w (§2.6): integers below 2^(B-1), then an
    exponent coded by the run of leading ones and a mantissa of r = B - m - 1 bits."""
    if w < 1 << (B - 1):
        return Fraction(w)
    m = 0
    while m < B and (w >> (B - 1 - m)) & 1:
        m += 1
    if m == B:
        return dyadic(1, 2 * B - 2)
    r = B - m - 1
    M = w & ((1 << r) - 1)
    return dyadic((1 << r) + M, B + m - 2 - r)


def pot_magnitude(w: int, B: int) -> Fraction:
    """Value of the B-bit power-of-two magnitude code w: 0, then 2^(w-1) (§2.6)."""
    return Fraction(0) if w == 0 else dyadic(1, w - 1)


_MAGNITUDE = {"flint": flint_magnitude, "pot": pot_magnitude}


class ANTTypeFormat(BaselineFormat):
    """A fixed ANT type: flint/pot, signed (B = n-1) or unsigned (B = n) (§2.6)."""

    def __init__(self, kind: str, n: int, unsigned: bool = False, sf: float = 0.0):
        if kind not in _MAGNITUDE:
            raise ValueError(f"kind={kind!r} is invalid: need one of {', '.join(_MAGNITUDE)}")
        self.kind, self.unsigned = kind, unsigned
        self.family = self.name = ("u" if unsigned else "") + kind
        self.signed = self.zero_keeps_sign = not unsigned  # unsigned: every negative input -> +0
        _check_n(self.name, n)
        self.n = self.bits = n
        self.B = n if unsigned else n - 1
        self._set_sf(sf)

    @property
    def body(self) -> str:
        return f"{self.name}<{self.n}>"

    def _magnitudes(self) -> list[Fraction]:
        value = _MAGNITUDE[self.kind]
        return [value(w, self.B) for w in range(1 << self.B)]

    def _build_grid(self) -> Grid:
        return sign_magnitude_grid(self._magnitudes(), None if self.unsigned else self.B)

    def _decode_exact(self) -> list:
        return sign_magnitude_decode(self._magnitudes(), None if self.unsigned else self.B)


class AdaptiveANTFormat(BaselineFormat):
    """`ant<n>` / `uant<n>` before calibration: a placeholder that names the choice to make.

    It cannot quantize; `choose_ant_type(x, n, unsigned)` picks the concrete type and scale."""

    def __init__(self, n: int, unsigned: bool = False):
        self.unsigned = unsigned
        self.signed = self.zero_keeps_sign = not unsigned
        self.family = self.name = "uant" if unsigned else "ant"
        _check_n(self.name, n)
        self.n = self.bits = n
        self.sf = 0.0

    @property
    def body(self) -> str:
        return f"{self.name}<{self.n}>"

    def _uncalibrated(self) -> ValueError:
        return ValueError(
            f"{self.spec} is an adaptive ANT type that has no code book until calibrated: "
            f"call choose_ant_type(x, n={self.n}, unsigned={self.unsigned}) and parse its result"
        )

    def _build_grid(self) -> Grid:
        raise self._uncalibrated()

    def _decode_exact(self) -> list:
        raise self._uncalibrated()

    def encode(self, x: Any, scale: Any = None) -> Any:
        raise self._uncalibrated()

    def decode(self, codes: Any) -> Any:
        raise self._uncalibrated()

    def quantize(self, x: Any, scale: Any = None) -> Any:
        raise self._uncalibrated()

    def quantize_reference(self, x: Any, scale: Any = None) -> np.ndarray:
        raise self._uncalibrated()


def ant_kinds(n: int, unsigned: bool = False) -> list[str]:
    """The ANT types usable at width n, in preference order: int, then flint and pot where their (signed or
    unsigned) range of n allows them; int only from n = 7 (§2.6). Shared by `ant<n>` and the LPQ search's genes."""
    u = "u" if unsigned else ""
    kinds = ["int"]
    if n < INT_ONLY_FROM:
        kinds += [k for k in ("flint", "pot") if N_RANGES[u + k][0] <= n <= N_RANGES[u + k][1]]
    return kinds


def ant_candidates(n: int, unsigned: bool = False) -> list[str]:
    """Candidate fixed types of ant<n>/uant<n> in preference order: int, flint, pot (§2.6)."""
    _check_n("uant" if unsigned else "ant", n)
    u = "u" if unsigned else ""
    return [f"{u}{kind}<{n}>" for kind in ant_kinds(n, unsigned)]


def choose_ant_type(x: np.ndarray, n: int, unsigned: bool = False, seed: int = 0) -> str:
    """ANT's per-tensor type choice (§2.6): each candidate gets its `antclip` scale and MSE;
    the smallest MSE wins, ties keep the earlier type. Returns e.g. ``flint<4>@2.5``."""
    best: tuple[float, str] | None = None
    for name in ant_candidates(n, unsigned):
        sf, mse = antclip_search(parse(name), x, seed=seed)
        if best is None or mse < best[0]:
            best = (mse, f"{name}@{format_real(sf)}")
    assert best is not None
    return best[1]


@register_family("flint", "pot", "uflint", "upot")
def _build_ant_type(p: ParsedSpec) -> ANTTypeFormat:
    p.expect_args("n")
    p.expect_no_options()
    unsigned = p.name.startswith("u")
    return ANTTypeFormat(p.name[1:] if unsigned else p.name, p.int_arg(0, "n"), unsigned, parse_sf(p))


@register_family("ant", "uant")
def _build_adaptive(p: ParsedSpec) -> AdaptiveANTFormat:
    p.expect_args("n")
    p.expect_no_options()
    if p.sf_text is not None:
        raise ValueError(
            f"{p.text!r}: {p.name}<n> takes no '@' scale; choose_ant_type returns the calibrated "
            f"fixed-type quantizer (e.g. flint<4>@2.5)"
        )
    return AdaptiveANTFormat(p.int_arg(0, "n"), unsigned=p.name == "uant")
