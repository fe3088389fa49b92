"""The Format base class and the shared threshold-table reference (LP-FORMAT §6).

Every family describes its positive code book as a `Grid`: exact magnitudes in increasing
order, the codes of +/- each magnitude, and the exact decision points between neighbours.
From that, this module builds per-dtype tables (values rounded once, thresholds = smallest
float that rounds up) and the plain reference encoder/quantizer (`numpy.searchsorted`).
Fast backends (`lpq.kernels`) consume the same tables and are tested bit-exact against it.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from .exact import Exact, threshold
from .fast_tables import round_exact_values


@dataclass(frozen=True)
class Grid:
    """A format's magnitude grid with its codes and exact decision points."""

    magnitudes: tuple[Exact, ...]  # increasing, >= 0 (Fraction(0) for a zero magnitude)
    pos_codes: np.ndarray  # code of +magnitude[j]
    neg_codes: np.ndarray | None  # code of -magnitude[j]; None for unsigned formats
    points: tuple[Exact, ...]  # decision point between magnitude j and j+1
    tie_up: np.ndarray  # an input exactly at points[j] rounds to j+1

    def __post_init__(self):
        m = len(self.magnitudes)
        if len(self.pos_codes) != m or len(self.points) != m - 1 or len(self.tie_up) != m - 1:
            raise AssertionError("inconsistent grid sizes")


def even_tie_up(pos_codes: np.ndarray) -> np.ndarray:
    """Ties go to the even code (LSB 0): up when the upper neighbour's code is even."""
    return (np.asarray(pos_codes[1:]) & 1) == 0


@dataclass(frozen=True)
class FloatTable:
    """A grid rounded to one float dtype: magnitudes and thresholds (theta_j = smallest
    float |x| whose magnitude index is >= j+1)."""

    values: np.ndarray
    thresholds: np.ndarray


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Format(ABC):
    """A number format: spec string, code book, exact rounding, fast fake quantization.

    Subclasses set `bits`, `sf` and implement `spec`, `_build_grid` and `_decode_exact`.
    `sf` is a scale exponent: the grid is multiplied by 2**-sf. For LP it is part of the
    format (applied exactly in the log domain); for baselines it is an external scale applied
    as y = RN(x * RN(2**sf)), out = RN(Q0(y) * RN(2**-sf)) (BASELINE-FORMATS §1.2).
    """

    family: ClassVar[str] = ""
    sf_is_external: ClassVar[bool] = True
    signed: ClassVar[bool] = True
    zero_keeps_sign: ClassVar[bool] = False  # sign-magnitude families keep -0.0 on zero results
    bits: int
    sf: float = 0.0

    # ---- family hooks -------------------------------------------------------------------
    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec string."""

    @abstractmethod
    def _build_grid(self) -> Grid:
        """The positive grid (magnitudes in the unscaled code book, codes, decision points)."""

    @abstractmethod
    def _decode_exact(self) -> list["Exact | Neg | None"]:
        """Exact unscaled value of every code 0 .. 2**bits-1 (Neg(v) for -v; None for NaN)."""

    @property
    def nan_code(self) -> int | None:
        """Code produced for NaN inputs, or None when the family has no NaN code."""
        return None

    # ---- identity -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"parse({self.spec!r})"

    def __str__(self) -> str:
        return self.spec

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Format) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def __reduce__(self):
        from .spec import parse

        return (parse, (self.spec,))

    # ---- cached tables ------------------------------------------------------------------
    @functools.cached_property
    def grid(self) -> Grid:
        return self._build_grid()

    def table(self, dtype: Any = np.float32) -> FloatTable:
        """Magnitudes and thresholds rounded to float32 or float64 (built once, cached)."""
        dtype = np.dtype(dtype)
        if dtype not in _FLOAT_DTYPES:
            raise ValueError(f"dtype={dtype} is invalid: need float32 or float64")
        cache = self.__dict__.setdefault("_tables", {})
        if dtype not in cache:
            cache[dtype] = _build_table(self.grid, dtype)
        return cache[dtype]

    def thresholds(self, dtype: Any = np.float32) -> np.ndarray:
        """Decision thresholds on |x| in the unscaled grid (LP-FORMAT §6)."""
        return self.table(dtype).thresholds

    @functools.cached_property
    def _decode_table(self) -> np.ndarray:
        """float64 value of every code (nearest to the exact value, times the scale)."""
        exact = self._decode_exact()
        negative = np.array([isinstance(v, Neg) or (isinstance(v, Fraction) and v < 0) for v in exact])
        mags = [Fraction(0) if v is None else v.v if isinstance(v, Neg) else abs(v) if isinstance(v, Fraction) else v
                for v in exact]
        values, _ = round_exact_values(mags, np.dtype(np.float64), ceil=False)
        values = np.where(negative, -values, values)
        values[[v is None for v in exact]] = np.nan
        values = values * self._scale64
        values.setflags(write=False)
        return values

    @functools.cached_property
    def _scale64(self) -> float:
        """RN64(2**-sf) for external scales, 1.0 otherwise."""
        return 2.0 ** -self.sf if self.sf_is_external else 1.0

    @functools.cached_property
    def _zero_code(self) -> int:
        return 0

    # ---- public value properties --------------------------------------------------------
    @property
    def max(self) -> float:
        """Largest finite value (float64)."""
        return self._magnitude64(-1)

    @property
    def min_positive(self) -> float:
        """Smallest positive value, subnormals included (float64)."""
        return self._magnitude64(1 if self.grid.magnitudes[0] == 0 else 0)

    def _magnitude64(self, index: int) -> float:
        """float64 of one grid magnitude (times the scale), without building whole tables."""
        cached = self.__dict__.get("_tables", {}).get(np.dtype(np.float64))
        if cached is not None:
            return float(cached.values[index]) * self._scale64
        value, _ = round_exact_values([self.grid.magnitudes[index]], np.dtype(np.float64), ceil=False)
        return float(value[0]) * self._scale64

    def codebook(self) -> np.ndarray:
        """All finite values, sorted, including zero (float64)."""
        mags = self.table(np.float64).values * self._scale64
        vals = np.concatenate([-mags[::-1], [0.0], mags]) if self.signed else np.concatenate([[0.0], mags])
        return np.unique(vals)

    # ---- decode / encode / quantize -----------------------------------------------------
    def decode(self, codes: Any) -> Any:
        """Codes (unsigned ints in [0, 2**bits)) -> float64 values; NaN/NaR codes -> nan."""
        codes_np, back = _to_numpy(codes)
        if codes_np.dtype.kind not in "iu":
            raise ValueError(f"codes must be integers, got dtype {codes_np.dtype}")
        c = codes_np.astype(np.int64)
        if c.size and (c.min() < 0 or c.max() >= 1 << self.bits):
            bad = int(c.min()) if c.min() < 0 else int(c.max())
            raise ValueError(f"code {bad} is invalid for {self.spec}: need 0 <= code < {1 << self.bits}")
        return back(self._decode_table[c])

    def encode(self, x: Any, scale: Any = None) -> Any:
        """Values -> codes (uint8 for bits <= 8, else uint16), rounding and saturating as the
        format specifies. Exact decisions for float32 and float64 inputs."""
        y, back = _to_numpy(x)
        y = _as_float(y)
        nan = np.isnan(y)
        if self.nan_code is None and nan.any():
            raise ValueError(f"{self.spec} has no NaN code: cannot encode NaN")
        y = self._apply_input_scale(y, scale)
        g = self.grid
        j = np.searchsorted(self.table(y.dtype).thresholds, np.abs(y), side="right")
        neg = np.signbit(y)
        pos_codes = np.asarray(g.pos_codes, dtype=np.int64)
        if g.neg_codes is None:  # unsigned: every negative input encodes to zero
            codes = np.where(neg, self._zero_code, pos_codes[j])
        else:
            codes = np.where(neg, np.asarray(g.neg_codes, dtype=np.int64)[j], pos_codes[j])
        zero = y == 0
        if g.magnitudes[0] != 0 or not self.zero_keeps_sign:
            codes = np.where(zero, self._zero_code, codes)
        if self.nan_code is not None:
            codes = np.where(nan, self.nan_code, codes)
        out_dtype = np.uint8 if self.bits <= 8 else np.uint16
        return back(codes.astype(out_dtype))

    def quantize(self, x: Any, scale: Any = None) -> Any:
        """Fake-quantize: decode(encode(x)) as values of x's dtype, same type/shape/device.

        numpy arrays use the plain threshold-table reference; torch tensors use the fast
        kernels (`lpq.kernels`), which agree with it bit for bit. `scale` multiplies the grid.
        """
        if _is_torch(x):
            from lpq.kernels import quantize_tensor

            return quantize_tensor(self, x, scale)
        return self.quantize_reference(x, scale)

    def quantize_reference(self, x: Any, scale: Any = None) -> np.ndarray:
        """The plain threshold-table fake quantizer on numpy arrays (the oracle for fast paths).

        Float32 emulation (BASELINE-FORMATS §1.1-1.2, LP-FORMAT §5.5): outputs are float32
        code-book values, returned in the input dtype. For float64 inputs the code is decided
        exactly on the float64 value (float64 threshold table, y = RN64(x * r)); the output is
        then the same float32 value RN32(Q(y) * s) that a float32 input with that code gets.
        """
        arr = np.asarray(x)
        orig_dtype = arr.dtype
        y = _as_float(arr)
        r, s = self.scale_pair(scale, np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            if r is not None:
                y = y * np.asarray(r, dtype=y.dtype)
            out = self._quantize_grid(y)
            if s is not None:
                out = out * s
        return out.astype(orig_dtype, copy=False) if orig_dtype != out.dtype else out

    def _quantize_grid(self, y: np.ndarray) -> np.ndarray:
        """Unscaled quantization to float32 values; decisions in y's own precision."""
        thresholds = self.table(y.dtype).thresholds
        values = self.table(np.float32).values
        a = np.abs(y)
        j = np.searchsorted(thresholds, a, side="right")
        j = np.minimum(j, len(values) - 1)  # NaN sorts last; replaced below
        mag = values[j]
        out = np.where(np.signbit(y), -mag, mag)
        out = np.where(a == 0, y.astype(np.float32), out)
        if not self.zero_keeps_sign:
            out = out + np.float32(0.0)  # -0.0 + 0.0 == +0.0
        if not self.signed:
            out = np.where(np.signbit(y), np.float32(0.0), out)
        return np.where(np.isnan(y), np.float32(np.nan), out).astype(np.float32, copy=False)

    def scale_pair(self, scale: Any, dtype: Any) -> tuple[Any, Any]:
        """(r, s) with y = RN(x*r), out = RN(Q(y)*s); (None, None) when there is no scaling.

        r = RN(1/g), s = RN(g) for the grid scale g = scale * 2**-sf (external sf only),
        each computed in float64 and rounded once to dtype (BASELINE-FORMATS §1.2).
        """
        dtype = np.dtype(dtype)
        ext_sf = self.sf if self.sf_is_external else 0.0
        if scale is None and ext_sf == 0:
            return None, None
        if scale is None:
            r64, s64 = 2.0 ** ext_sf, 2.0 ** -ext_sf
        else:
            g = np.asarray(scale, dtype=np.float64)
            if not np.all(np.isfinite(g)) or np.any(g <= 0):
                raise ValueError(f"scale must be finite and > 0, got {scale!r}")
            r64, s64 = (1.0 / g) * 2.0 ** ext_sf, g * 2.0 ** -ext_sf
        r = np.asarray(r64).astype(dtype)
        s = np.asarray(s64).astype(dtype)
        if np.any(r == 0) or np.any(s == 0) or not np.all(np.isfinite(r)) or not np.all(np.isfinite(s)):
            raise ValueError(f"scale {scale!r} with sf={ext_sf} is outside the {dtype.name} range")
        return (r[()] if r.ndim == 0 else r), (s[()] if s.ndim == 0 else s)

    def _apply_input_scale(self, y: np.ndarray, scale: Any) -> np.ndarray:
        """y = RN(x * r) with the normative float32 r (BASELINE-FORMATS §1.2)."""
        r, _ = self.scale_pair(scale, np.float32)
        if r is None:
            return y
        with np.errstate(over="ignore", invalid="ignore"):
            return y * np.asarray(r, dtype=y.dtype)


# ---- helpers ------------------------------------------------------------------------------

def _build_table(grid: Grid, dtype: np.dtype) -> FloatTable:
    """Round a grid once to dtype: values to nearest, thresholds = smallest float that rounds
    up (LP-FORMAT §5.5, §6); exact points get the tie direction of `grid.tie_up`."""
    values, _ = round_exact_values(grid.magnitudes, dtype, ceil=False)
    thresholds, exact = round_exact_values(grid.points, dtype, ceil=True)
    up = np.asarray(grid.tie_up, dtype=bool)
    tie_down = exact & ~up  # an input exactly at the point rounds down: threshold = next float
    thresholds[tie_down] = np.nextafter(thresholds[tie_down], dtype.type(np.inf))
    for i in np.nonzero(np.isnan(thresholds))[0]:
        thresholds[i] = threshold(grid.points[i], bool(up[i]), dtype)
    values.setflags(write=False)
    thresholds.setflags(write=False)
    return FloatTable(values, thresholds)


class Neg:
    """A negative exact value in `_decode_exact` lists: Neg(v) stands for -v (v > 0)."""

    __slots__ = ("v",)

    def __init__(self, v: Exact):
        self.v = v


def _is_torch(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "device") and hasattr(x, "dtype")


def _to_numpy(x: Any):
    """(numpy view of x, function mapping a numpy result back to x's type and device)."""
    if _is_torch(x):
        import torch

        device = x.device
        arr = x.detach().to("cpu").numpy()

        def back(res: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(res)).to(device)

        return arr, back
    return np.asarray(x), (lambda res: res)


def _as_float(arr: np.ndarray) -> np.ndarray:
    """float32/float64 view of a floating array (other float widths compute in float32)."""
    if arr.dtype in _FLOAT_DTYPES:
        return arr
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    raise ValueError(f"x must be a floating-point array, got dtype {arr.dtype}")
