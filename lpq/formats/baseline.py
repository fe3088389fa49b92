"""Shared pieces of the baseline families (BASELINE-FORMATS §1): the external scale `@sf`,
the float32 range check, value-nearest grids and sign-magnitude code books.

Each family module (integer, floating, posit, adaptivfloat, lns, ant) builds on these, so the
rules of §1.1-§1.2 are written once.
"""
from __future__ import annotations

from abc import abstractmethod
from fractions import Fraction
from typing import Sequence

import numpy as np

from .base import Format, Grid, Neg, even_tie_up
from .exact import Exact
from .spec import ParsedSpec, format_real, parse_real

SF_LIMIT = 126  # |sf| <= 126 keeps RN32(2^sf) and RN32(2^-sf) normal (§1.2)
F32_MIN_LOG2, F32_MAX_LOG2 = -126, 127  # floor(log2 |v|) of float32 normal numbers


def check_sf(sf: float, spec: str) -> float:
    """Validate an external scale exponent (§1.2); returns it with -0.0 folded to 0.0."""
    sf = float(sf)
    if not np.isfinite(sf) or abs(sf) > SF_LIMIT:
        raise ValueError(f"sf={sf!r} is invalid for {spec}: need a finite real with |sf| <= {SF_LIMIT}")
    return sf + 0.0


def parse_sf(p: ParsedSpec) -> float:
    """The `@sf` suffix of a baseline quantizer string (0.0 when absent)."""
    return 0.0 if p.sf_text is None else parse_real(p.sf_text, "sf", p.text)


def check_float32_range(spec: str, min_log2: Fraction | int, max_log2: Fraction | int) -> None:
    """Reject a code book whose nonzero magnitudes leave the float32 normal range (§1.1).

    min_log2 / max_log2 are log2 of the smallest nonzero and the largest magnitude (or any
    value with the same floor)."""
    lo, hi = Fraction(min_log2), Fraction(max_log2)
    if lo < F32_MIN_LOG2 or hi >= F32_MAX_LOG2 + 1:
        raise ValueError(
            f"{spec} is outside the float32 normal range: its magnitudes span "
            f"2^{float(lo):g} .. 2^{float(hi):g}; need 2^{F32_MIN_LOG2} <= |v| < 2^{F32_MAX_LOG2 + 1}"
        )


def dyadic(sig: int, exp: int) -> Fraction:
    """The exact rational sig * 2^exp."""
    return Fraction(sig << exp) if exp >= 0 else Fraction(sig, 1 << -exp)


def midpoint(a: Fraction, b: Fraction) -> Fraction:
    """(a + b) / 2, exactly (integer arithmetic: cheaper than Fraction addition)."""
    return Fraction(a.numerator * b.denominator + b.numerator * a.denominator, 2 * a.denominator * b.denominator)


def value_nearest_grid(mags: Sequence[Fraction], pos_codes: Sequence[int], neg_codes: Sequence[int] | None) -> Grid:
    """Grid rounding to the nearest value, ties to the even code (§1.1): the decision points
    are the arithmetic midpoints of neighbouring magnitudes."""
    pos = np.asarray(pos_codes, dtype=np.int64)
    neg = None if neg_codes is None else np.asarray(neg_codes, dtype=np.int64)
    points = tuple(midpoint(mags[j], mags[j + 1]) for j in range(len(mags) - 1))
    return Grid(tuple(mags), pos, neg, points, even_tie_up(pos))


def sign_magnitude_grid(mag_values: Sequence[Fraction | None], sign_bit: int | None) -> Grid:
    """Value-nearest grid of a sign-magnitude code book: magnitude code w has value
    mag_values[w] (None for codes never produced); -v is code w | 2^sign_bit (None: unsigned)."""
    used = [w for w, v in enumerate(mag_values) if v is not None]
    mags = [mag_values[w] for w in used]
    if any(b <= a for a, b in zip(mags, mags[1:])):
        raise AssertionError("sign-magnitude code book must increase with the magnitude code")
    neg = None if sign_bit is None else [w | (1 << sign_bit) for w in used]
    return value_nearest_grid(mags, used, neg)


def sign_magnitude_decode(mag_values: Sequence[Exact | None], sign_bit: int | None) -> list:
    """Exact value of every code of a sign-magnitude format (negative zero is Neg(0))."""
    out: list = list(mag_values)
    if sign_bit is None:
        return out
    for v in mag_values:
        if v is None:
            out.append(None)
        elif isinstance(v, Fraction) and v != 0:
            out.append(-v)
        else:
            out.append(Neg(v))
    return out


class BaselineFormat(Format):
    """A baseline family: unscaled code book Q0 plus the external scale sf (§1.2)."""

    @property
    @abstractmethod
    def body(self) -> str:
        """Spec string without the `@sf` suffix."""

    @property
    def spec(self) -> str:
        return self.body if self.sf == 0 else f"{self.body}@{format_real(self.sf)}"

    def _set_sf(self, sf: float) -> None:
        self.sf = check_sf(sf, self.body)
