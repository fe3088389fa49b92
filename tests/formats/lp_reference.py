"""Independent exact reference for the Logarithmic Posit format LP<n, es, rs, sf> (tests only).

Written from LP-FORMAT §3–§6 without importing `lpq`: bit-level decode to an exact dyadic log
value t (§3), exact log-domain and linear encoding of real inputs (§5), the float32/float64
threshold tables of §6 and the correctly rounded value tables of §5.5.

Irrational quantities 2^q (q a non-integer dyadic) are evaluated with a private mpmath context
at 256 bits; every decision taken from such a value asserts a margin far above the evaluation
error, and scalar comparisons fall back to an exact integer test when the margin is not met.
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np

PREC = 256
_MP = mpmath.MPContext()
_MP.prec = PREC
# A decision taken from a PREC-bit approximation must be farther than 2^-MARGIN_BITS (relative,
# in units of the float quantum for roundings) from the decision point.
MARGIN_BITS = 64
# Dyadic fractions j / 2^BASE_D cover every t and midpoint of formats with n <= 12.
BASE_D = 11


# ---------------------------------------------------------------------------------------------
# Float kinds and exact rounding of binary numbers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FloatKind:
    """An IEEE binary format: p significand bits, normal exponent range [emin, emax]."""

    name: str
    p: int
    emin: int
    emax: int
    dtype: type


F32 = FloatKind("float32", 24, -126, 127, np.float32)
F64 = FloatKind("float64", 53, -1022, 1023, np.float64)


def kind_of(dtype) -> FloatKind:
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return F32
    if dtype == np.float64:
        return F64
    raise TypeError(f"no float kind for dtype {dtype}")


def round_binary(man: int, exp: int, kind: FloatKind, mode: str, approx: bool) -> tuple[float, bool]:
    """Round man * 2^exp (> 0) into `kind`; mode 'nearest' (ties to even) or 'ceil'.

    Returns (value as a Python float, whether man * 2^exp was exactly representable).
    approx=True: man * 2^exp is a PREC-bit approximation of an irrational number; the
    rounding must then be decided with a margin (asserted), and exactness never occurs.
    Overflow gives inf; values below the smallest subnormal follow the mode (ceil -> min
    subnormal, the §6 clamp).
    """
    assert man > 0
    top = exp + man.bit_length() - 1  # floor(log2(value))
    q = max(top - (kind.p - 1), kind.emin - (kind.p - 1))  # exponent of the quantum
    shift = exp - q
    if shift >= 0:
        whole, rem, den = man << shift, 0, 1
    else:
        whole = man >> -shift
        den = 1 << -shift
        rem = man - (whole << -shift)
    exact = rem == 0
    if approx:
        assert not exact, "approximation of an irrational landed on a float"
    if mode == "ceil":
        if approx:
            dist = min(rem, den - rem)
            assert dist << MARGIN_BITS > den, "ceil decision within the margin"
        result = whole + (0 if exact else 1)
    elif mode == "nearest":
        twice = 2 * rem
        if approx:
            assert abs(twice - den) << MARGIN_BITS > den, "rounding decision within the margin"
        if twice > den or (twice == den and whole % 2 == 1):
            result = whole + 1
        else:
            result = whole
    else:
        raise ValueError(f"mode={mode!r}")
    if result == 0:
        return 0.0, exact
    if result.bit_length() + q > kind.emax + 1:
        return math.inf, exact
    return math.ldexp(result, q), exact


def next_up(x: float, kind: FloatKind) -> float:
    return float(np.nextafter(kind.dtype(x), kind.dtype(np.inf)))


def _mpf_parts(y) -> tuple[int, int]:
    man, exp = int(y.man), int(y.exp)
    assert man > 0
    return man, exp


def pow2_mpf(q: Fraction):
    """2^q at PREC bits (q dyadic, so it converts to an mpf exactly)."""
    den = q.denominator
    assert den & (den - 1) == 0, "q must be dyadic"
    qq = _MP.ldexp(_MP.mpf(q.numerator), -(den.bit_length() - 1))
    return _MP.power(2, qq)


def pow2_round(q: Fraction, kind: FloatKind, mode: str) -> tuple[float, bool]:
    """Round the exact real 2^q into `kind` (mode 'nearest' or 'ceil'); returns (value, exact)."""
    if q.denominator == 1:
        return round_binary(1, int(q), kind, mode, approx=False)
    return round_binary(*_mpf_parts(pow2_mpf(q)), kind, mode, approx=True)


def pow2_cmp(q: Fraction, x: Fraction) -> int:
    """Exact sign of 2^q - x for rational x > 0 (no floating log2)."""
    assert x > 0
    if q.denominator == 1:
        lhs = Fraction(2) ** int(q)
        return (lhs > x) - (lhs < x)
    # 2^q is irrational here, so it never equals x.
    lhs = pow2_mpf(q)
    rhs = _MP.mpf(x.numerator) / x.denominator
    diff = lhs - rhs
    if abs(diff) > _MP.ldexp(rhs, -200):
        return 1 if diff > 0 else -1
    # Exact integer test: 2^(a/b) > P/Q  <=>  2^a * Q^b > P^b  (b > 0).
    a, b = q.numerator, q.denominator
    P, Q = x.numerator, x.denominator
    assert b * max(P.bit_length(), Q.bit_length()) < 4_000_000, "pow2_cmp undecidable cheaply"
    left = Q**b << a if a >= 0 else Q**b
    right = P**b if a >= 0 else P**b << -a
    assert left != right
    return 1 if left > right else -1


# ---------------------------------------------------------------------------------------------
# §3 decoding
# ---------------------------------------------------------------------------------------------
class Fields(NamedTuple):
    """Fields of a positive code p (§3): regime run m, bits used, cap, k, e, f, F, t."""

    p: int
    r0: int
    m: int
    regime_bits: int
    capped: bool
    k: int
    e: int
    f: int
    F: int
    t: Fraction


def check_params(n: int, es: int, rs: int) -> None:
    assert 2 <= n <= 16, n
    assert es >= 0, es
    assert 1 <= rs <= n - 1, rs


def decode_fields(n: int, es: int, rs: int, p: int) -> Fields:
    """Parse positive code p (1 <= p <= 2^(n-1)-1) bit by bit, MSB first (§3 steps 3–6)."""
    assert 1 <= p <= (1 << (n - 1)) - 1, p
    body = format(p, f"0{n - 1}b")  # the n-1 bits below the sign bit
    r0 = body[0]
    m = 0
    while m < len(body) and m < rs and body[m] == r0:
        m += 1
    pos = m
    capped = m == rs
    if not capped:
        assert pos < len(body) and body[pos] != r0  # the terminator
        pos += 1
    regime_bits = pos
    k = m - 1 if r0 == "1" else -m
    taken = min(es, len(body) - pos)
    e = int(body[pos : pos + taken] or "0", 2) << (es - taken)  # zero padding of cut-off bits
    pos += taken
    F = len(body) - pos
    f = int(body[pos:] or "0", 2)
    t = (1 << es) * k + e + Fraction(f, 1 << F)
    return Fields(p, int(r0), m, regime_bits, capped, k, e, f, F, t)


def positive_of(n: int, code: int) -> tuple[int, int]:
    """(sign, positive code p) of a nonzero non-NaR code (§2 two's complement)."""
    code &= (1 << n) - 1
    assert code not in (0, 1 << (n - 1))
    if code >> (n - 1):
        return -1, ((1 << n) - code) % (1 << n)
    return 1, code


@functools.lru_cache(maxsize=None)
def field_table(n: int, es: int, rs: int) -> tuple[Fields, ...]:
    """Fields of positive codes 1 .. 2^(n-1)-1 (index i holds code i+1)."""
    check_params(n, es, rs)
    return tuple(decode_fields(n, es, rs, p) for p in range(1, 1 << (n - 1)))


@functools.lru_cache(maxsize=None)
def t_numerators(n: int, es: int, rs: int) -> tuple[int, np.ndarray]:
    """(D, t * 2^D as int64) for positive codes; D = max F + 1 so midpoints are integers too."""
    fields = field_table(n, es, rs)
    D = max(fl.F for fl in fields) + 1
    num = np.array([(((1 << es) * fl.k + fl.e) << D) + (fl.f << (D - fl.F)) for fl in fields], np.int64)
    assert Fraction(int(num[-1]), 1 << D) == fields[-1].t and Fraction(int(num[0]), 1 << D) == fields[0].t
    return D, num


def t_closed_form(n: int, es: int, rs: int) -> Fraction:
    """T of §4.4 from its closed form."""
    R = n - 1 - rs
    if R >= es:
        e_max = (1 << es) - 1
        u_max = 1 - Fraction(1, 1 << (R - es))
    else:
        e_max = ((1 << R) - 1) << (es - R)
        u_max = Fraction(0)
    return (1 << es) * (rs - 1) + e_max + u_max


def f_max_closed_form(n: int, es: int, rs: int) -> int:
    return max(0, n - 1 - min(rs, 2) - es)


def fits_float32(n: int, es: int, rs: int, sf: float) -> bool:
    """§1 float32 emulation limit: -T - sf >= -126 and T - sf <= 127 (exact)."""
    T = t_closed_form(n, es, rs)
    s = Fraction(sf)
    return -T - s >= -126 and T - s <= 127


# ---------------------------------------------------------------------------------------------
# 2^(j / 2^D - frac(sf)) tables: exact dyadic fractional parts shared by all codes
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _FracTable:
    carry: np.ndarray  # 1 where j/2^D < frac(sf) (borrow from the integer part)
    exact: np.ndarray  # u_j == 0: 2^u_j == 1 exactly
    near: dict  # kind name -> float64 array of RN_kind(2^u_j), in [1, 2]
    ceil: dict  # kind name -> float64 array of the smallest kind float >= 2^u_j
    mpf: tuple  # 2^u_j at PREC bits


def _split(x: Fraction) -> tuple[int, Fraction]:
    fl = math.floor(x)
    return fl, x - fl


@functools.lru_cache(maxsize=None)
def _frac_table(D: int, sf: float) -> _FracTable:
    """Fractional powers u_j = frac(j/2^D - sf) for j in [0, 2^D) and their roundings."""
    if D < BASE_D:
        big = _frac_table(BASE_D, sf)
        step = 1 << (BASE_D - D)
        return _FracTable(
            big.carry[::step].copy(),
            big.exact[::step].copy(),
            {k: v[::step].copy() for k, v in big.near.items()},
            {k: v[::step].copy() for k, v in big.ceil.items()},
            big.mpf[::step],
        )
    size = 1 << D
    _, fs = _split(Fraction(sf))
    carry = np.zeros(size, np.int64)
    exact = np.zeros(size, bool)
    near = {F32.name: np.empty(size), F64.name: np.empty(size)}
    ceil = {F32.name: np.empty(size), F64.name: np.empty(size)}
    mpfs = []
    for j in range(size):
        u = Fraction(j, size) - fs
        if u < 0:
            u += 1
            carry[j] = 1
        if u == 0:
            exact[j] = True
            for kind in (F32, F64):
                near[kind.name][j] = ceil[kind.name][j] = 1.0
            mpfs.append(_MP.mpf(1))
            continue
        y = pow2_mpf(u)
        parts = _mpf_parts(y)
        for kind in (F32, F64):
            near[kind.name][j] = round_binary(*parts, kind, "nearest", approx=True)[0]
            ceil[kind.name][j] = round_binary(*parts, kind, "ceil", approx=True)[0]
        mpfs.append(y)
    return _FracTable(carry, exact, near, ceil, tuple(mpfs))


# ---------------------------------------------------------------------------------------------
# One format
# ---------------------------------------------------------------------------------------------
class LPRef:
    """Exact reference for LP<n, es, rs, sf> with the §5.4 options."""

    def __init__(self, n: int, es: int, rs: int, sf: float = 0.0, round: str = "log",
                 underflow: str = "saturate"):
        check_params(n, es, rs)
        assert round in ("log", "linear") and underflow in ("saturate", "flush")
        self.n, self.es, self.rs = n, es, rs
        self.sf = float(sf)
        assert math.isfinite(self.sf)
        self.sf_q = Fraction(self.sf)
        self.round, self.underflow = round, underflow
        self.N = (1 << (n - 1)) - 1
        self.nar = 1 << (n - 1)
        self.fields = field_table(n, es, rs)
        self.t = [fl.t for fl in self.fields]  # t of positive codes 1..N (index code-1)
        self.D, self.t_num = t_numerators(n, es, rs)  # t = t_num / 2^D exactly
        self.mid_num = (self.t_num[:-1] + self.t_num[1:]) // 2
        assert np.all(self.mid_num * 2 == self.t_num[:-1] + self.t_num[1:])
        self.floor_sf = math.floor(self.sf_q)
        self._cache: dict = {}

    def __repr__(self) -> str:
        return f"LPRef({self.spec})"

    @property
    def spec(self) -> str:
        opts = ""
        if self.round != "log":
            opts += f",round={self.round}"
        if self.underflow != "saturate":
            opts += f",underflow={self.underflow}"
        return f"lp<{self.n},{self.es},{self.rs},{canonical_sf(self.sf)}{opts}>"

    # ----- exact quantities
    @property
    def T(self) -> Fraction:
        return self.t[-1]

    @property
    def fits_float32(self) -> bool:
        return fits_float32(self.n, self.es, self.rs, self.sf)

    def t_of(self, code: int) -> Fraction:
        """t of the positive code decoded for `code` (§3 step 2)."""
        _, p = positive_of(self.n, code)
        return self.t[p - 1]

    def midpoints(self) -> list[Fraction]:
        return [(a + b) / 2 for a, b in zip(self.t, self.t[1:])]

    # ----- value tables (§5.5)
    def _pow2_of_num(self, num: np.ndarray, table: str, kind: FloatKind) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Round 2^(num/2^D - sf) per `table` ('near'|'ceil'); also the exponent and exact mask."""
        tab = _frac_table(self.D, self.sf)
        j = num & ((1 << self.D) - 1)
        E = (num >> self.D) - self.floor_sf - tab.carry[j]
        mant = getattr(tab, table)[kind.name][j]
        return np.ldexp(mant, E.astype(np.int64)), E, tab.exact[j]

    def values(self, kind: FloatKind = F64) -> np.ndarray:
        """Positive code values 1..N: the `kind` float nearest to 2^(t - sf), as float64."""
        key = ("values", kind.name)
        if key not in self._cache:
            if kind is F32:
                assert self.fits_float32, f"{self.spec} is outside the float32 limit"
            vals, _, _ = self._pow2_of_num(self.t_num, "near", kind)
            self._cache[key] = vals
        return self._cache[key]

    def codebook(self) -> np.ndarray:
        v = self.values(F64)
        return np.concatenate([-v[::-1], [0.0], v])

    def decode(self, codes) -> np.ndarray:
        """float64 values of n-bit codes (NaR -> nan)."""
        c = np.asarray(codes).astype(np.int64) & ((1 << self.n) - 1)
        neg = c > self.nar
        p = np.where(neg, (1 << self.n) - c, c)
        vals = self.values(F64)
        out = np.where((p >= 1) & (p <= self.N), vals[np.clip(p - 1, 0, self.N - 1)], 0.0)
        out = np.where(neg, -out, out)
        out[c == self.nar] = np.nan
        return out

    # ----- §6 thresholds
    def thresholds(self, kind: FloatKind = F32) -> np.ndarray:
        """θ_1..θ_{N-1} (flush: θ_0 = first float above minpos/2 in front), kind dtype."""
        key = ("thresholds", kind.name)
        if key not in self._cache:
            if kind is F32:
                assert self.fits_float32, f"{self.spec} is outside the float32 limit"
            th = self._log_thresholds(kind) if self.round == "log" else self._linear_thresholds(kind)
            if self.underflow == "flush":
                th = np.concatenate([[self._flush_threshold(kind)], th])
            th = th.astype(kind.dtype)
            assert np.all(np.diff(th.astype(np.float64)) > 0)
            self._cache[key] = th
        return self._cache[key]

    def _log_thresholds(self, kind: FloatKind) -> np.ndarray:
        th, E, exact = self._pow2_of_num(self.mid_num, "ceil", kind)
        upper_code = np.arange(2, self.N + 1)
        for idx in np.flatnonzero(exact):
            # d_i = E exactly: the tie goes to the even code of {i, i+1}.
            base = math.ldexp(1.0, int(E[idx]))
            th[idx] = base if upper_code[idx] % 2 == 0 else next_up(base, kind)
        return th

    def _linear_thresholds(self, kind: FloatKind) -> np.ndarray:
        tab = _frac_table(self.D, self.sf)
        j = self.t_num & ((1 << self.D) - 1)
        E = (self.t_num >> self.D) - self.floor_sf - tab.carry[j]
        out = np.empty(self.N - 1)
        for i in range(self.N - 1):
            ja, jb = int(j[i]), int(j[i + 1])
            Ea, Eb = int(E[i]), int(E[i + 1])
            upper_even = (i + 2) % 2 == 0
            if tab.exact[ja] and tab.exact[jb]:
                lo = min(Ea, Eb)
                man = (1 << (Ea - lo)) + (1 << (Eb - lo))
                val, is_exact = round_binary(man, lo - 1, kind, "ceil", approx=False)
                if is_exact and not upper_even:
                    val = next_up(val, kind)
            else:
                mean = (_MP.ldexp(tab.mpf[ja], Ea) + _MP.ldexp(tab.mpf[jb], Eb)) / 2
                val, _ = round_binary(*_mpf_parts(mean), kind, "ceil", approx=True)
            out[i] = val
        return out

    def _flush_threshold(self, kind: FloatKind) -> float:
        half_minpos = self.t[0] - self.sf_q - 1
        val, is_exact = pow2_round(half_minpos, kind, "ceil")
        # A tie at exactly minpos/2 goes to code 0: the threshold is the next float above.
        return next_up(val, kind) if is_exact else val

    # ----- encode / quantize through the threshold table (float32 or float64 arrays)
    def encode(self, x) -> np.ndarray:
        """Codes (int64) of a float32/float64 array by the §6 threshold rule."""
        x = np.asarray(x)
        kind = kind_of(x.dtype)
        th = self.thresholds(kind)
        a = np.abs(x)
        with np.errstate(invalid="ignore"):
            j = np.searchsorted(th, np.where(np.isnan(a), 0, a), side="right")
        if self.underflow == "saturate":
            j = j + 1
        j = np.minimum(j, self.N).astype(np.int64)
        code = np.where(np.signbit(x), ((1 << self.n) - j) % (1 << self.n), j)
        code = np.where(a == 0, 0, code)
        code = np.where(np.isnan(x), self.nar, code)
        return code.astype(np.int64)

    def quantize(self, x, value_kind: FloatKind = F32) -> np.ndarray:
        """decode(encode(x)) in x's dtype; codes decided in x's own precision (§5.1, §6).

        Float32 emulation (LP-FORMAT §5.5, BASELINE-FORMATS §1.1): the output values are the
        float32 code-book values for float32 *and* float64 inputs; value_kind=F64 gives the
        float64 nearest to the exact value instead.
        """
        x = np.asarray(x)
        kind = kind_of(x.dtype)
        code = self.encode(x)
        vals = self.values(value_kind)
        neg = code > self.nar
        p = np.where(neg, (1 << self.n) - code, code)
        mag = np.where((p >= 1) & (p <= self.N), vals[np.clip(p - 1, 0, self.N - 1)], 0.0)
        out = np.where(neg, -mag, mag)
        out = np.where(code == self.nar, np.nan, out)
        out = np.where(code == 0, 0.0, out)  # +0.0: LP has a single zero
        return out.astype(kind.dtype)

    # ----- scalar exact encode (§5.1, §5.4) on a float, int or Fraction
    def _goes_up(self, i: int, x: Fraction) -> bool:
        """Whether x > 0 rounds to a code >= i+1 at the decision point between codes i, i+1."""
        if self.round == "log":
            d = (self.t[i - 1] + self.t[i]) / 2 - self.sf_q
            c = pow2_cmp(d, x)
        else:
            c = self._linear_cmp(i, x)
        if c != 0:
            return c < 0
        return (i + 1) % 2 == 0  # exact tie -> the even code

    def _linear_cmp(self, i: int, x: Fraction) -> int:
        """Sign of (2^(t_i - sf) + 2^(t_{i+1} - sf)) / 2 - x."""
        a = self.t[i - 1] - self.sf_q
        b = self.t[i] - self.sf_q
        if a.denominator == 1 and b.denominator == 1:
            mean = (Fraction(2) ** int(a) + Fraction(2) ** int(b)) / 2
            return (mean > x) - (mean < x)
        mean = (pow2_mpf(a) + pow2_mpf(b)) / 2
        rhs = _MP.mpf(x.numerator) / x.denominator
        diff = mean - rhs
        assert abs(diff) > _MP.ldexp(rhs, -200), "linear decision within the margin"
        return 1 if diff > 0 else -1

    def encode_exact(self, x) -> int:
        """Code of a real x per §5.1/§5.4, decided exactly (no floating log2)."""
        if isinstance(x, float):
            if math.isnan(x):
                return self.nar
            if math.isinf(x):
                return self.N if x > 0 else (1 << self.n) - self.N
        xq = Fraction(x)
        if xq == 0:
            return 0
        mag = abs(xq)
        if self.underflow == "flush" and pow2_cmp(self.t[0] - self.sf_q - 1, mag) >= 0:
            return 0
        lo, hi = 1, self.N  # answer j in [lo, hi]; _goes_up(i) is monotone non-increasing in i
        while lo < hi:
            mid = (lo + hi) // 2
            if self._goes_up(mid, mag):
                lo = mid + 1
            else:
                hi = mid
        j = lo
        return j if xq > 0 else ((1 << self.n) - j) % (1 << self.n)


def canonical_sf(sf: float) -> str:
    """§7 canonical sf text: Python repr, trailing '.0' removed, '-0' written as '0'."""
    s = repr(float(sf))
    if s.endswith(".0"):
        s = s[:-2]
    if s == "-0":
        s = "0"
    return s


def path_safe(spec: str) -> str:
    """§7 path-safe form of a canonical spec string (independent re-statement for tests)."""
    body = spec.replace("<", "_").replace(">", "")
    parts = body.split(",")
    out = []
    for part in parts:
        if part.startswith("-"):
            part = "m" + part[1:]
        out.append(part.replace("=", "-"))
    return "_".join(out)


@functools.lru_cache(maxsize=None)
def lp_ref(n: int, es: int, rs: int, sf: float = 0.0, round: str = "log",
           underflow: str = "saturate") -> LPRef:
    """Cached LPRef constructor."""
    return LPRef(n, es, rs, sf, round, underflow)


def lns_log_values(n: int, f: int) -> list[Fraction]:
    """log2 of the positive values of lns<n, f> (BASELINE-FORMATS §2.5): L / 2^f, |L| <= Lmax."""
    lmax = (1 << (n - 2)) - 1
    return [Fraction(L, 1 << f) for L in range(-lmax, lmax + 1)]


def f32_bits(x) -> np.ndarray:
    return np.asarray(x, np.float32).view(np.uint32)


def from_f32_bits(bits) -> np.ndarray:
    return np.asarray(bits, np.uint32).view(np.float32)


# ---------------------------------------------------------------------------------------------
# Spec strings for the reference, test grids and comparison helpers shared by the test modules
# ---------------------------------------------------------------------------------------------
_SPEC_RE = re.compile(r"lp<(\d+),(\d+),(\d+),([^,>]+)((?:,[a-z]+=[a-z]+)*)>")


def ref_from_spec(spec: str) -> LPRef:
    """LPRef for a canonical lp spec string (a tiny independent parser, canonical input only)."""
    m = _SPEC_RE.fullmatch(spec)
    assert m, spec
    opts = dict(o.split("=") for o in m.group(5).split(",") if o)
    return lp_ref(int(m.group(1)), int(m.group(2)), int(m.group(3)), float(m.group(4)), **opts)


# §9.1 sf values; 37/256 is exact in float64.
SF_GRID = (0.0, 0.5, -1.25, 0.3, 37 / 256, 7.0)
# LPQ_FULL_GRID=1 runs every sf for every n; by default n = 10 takes two sf per (es, rs) and
# n = 11, 12 one, rotating through SF_GRID so every sf still meets every n.
FULL_GRID = os.environ.get("LPQ_FULL_GRID", "") == "1"


def grid_triples(n_min: int = 2, n_max: int = 12, es_max: int = 4) -> list[tuple[int, int, int]]:
    return [(n, es, rs) for n in range(n_min, n_max + 1) for es in range(es_max + 1)
            for rs in range(1, n)]


def grid_sfs(n: int, es: int, rs: int) -> list[float]:
    """The §9.1 sf values of (n, es, rs) inside the float32 limit (sampled for n >= 10)."""
    sfs = SF_GRID
    if n == 10 and not FULL_GRID:
        sfs = (SF_GRID[(es + rs) % 6], SF_GRID[(es + rs + 3) % 6])
    elif n >= 11 and not FULL_GRID:
        sfs = (SF_GRID[(es + 2 * rs + n) % 6],)
    return [sf for sf in sfs if fits_float32(n, es, rs, sf)]


# n = 13..16 sample for §9.1 (every one inside the float32 limit).
LARGE_SAMPLE = (
    (13, 0, 3, 0.5), (13, 2, 12, -1.25), (14, 1, 4, 0.3), (14, 3, 2, 37 / 256),
    (15, 2, 7, 7.0), (15, 0, 14, 0.0), (16, 1, 4, -2.25), (16, 0, 15, 0.3), (16, 2, 15, 0.0),
    (16, 1, 2, 7.0), (16, 3, 6, -1.25), (16, 4, 6, 0.5),
)

# Formats with options, n = 16, padding and odd sf: fast-path and property tests (§9.3, §9.4).
REPRESENTATIVE = (
    "lp<2,0,1,0.75>", "lp<3,5,2,0>", "lp<4,1,2,0>", "lp<5,1,3,0.25>", "lp<6,3,4,0>",
    "lp<8,1,3,0>", "lp<8,1,3,0.5>", "lp<8,2,7,0>", "lp<8,0,7,0.3>", "lp<8,2,2,2>",
    "lp<6,2,3,0,round=linear>", "lp<8,2,7,0,round=linear>", "lp<8,1,3,0.5,underflow=flush>",
    "lp<4,1,2,0,round=linear,underflow=flush>", "lp<8,2,7,0,underflow=flush>",
    "lp<10,4,7,0.3>", "lp<12,3,5,0.14453125>", "lp<7,1,6,-100.5>", "lp<7,1,6,100.25,underflow=flush>",
    "lp<7,1,6,116,underflow=flush>", "lp<7,1,6,115.5,round=linear,underflow=flush>",
    "lp<16,1,4,-2.25>", "lp<16,0,15,0.3>", "lp<16,2,15,0>", "lp<16,1,2,7>",
    "lp<16,1,4,-2.25,underflow=flush>", "lp<16,3,6,-1.25,round=linear,underflow=flush>",
)


@functools.lru_cache(maxsize=None)
def impl(spec: str):
    """The lpq Format under test, parsed once per spec for all test modules.

    The only place that touches `lpq`; nothing in the reference above depends on it.
    """
    from lpq.formats import parse

    return parse(spec)


def codes_dtype(n: int):
    return np.uint8 if n <= 8 else np.uint16


def all_codes(n: int) -> np.ndarray:
    return np.arange(1 << n, dtype=codes_dtype(n))


def signed_order(n: int) -> np.ndarray:
    """Codes except NaR in increasing two's-complement order."""
    neg = np.arange((1 << (n - 1)) + 1, 1 << n)
    pos = np.arange(0, 1 << (n - 1))
    return np.concatenate([neg, pos])


def with_neighbours(x: np.ndarray, k: int = 4) -> np.ndarray:
    """Float32 values x and their k float32 neighbours on each side (bit-pattern steps)."""
    bits = f32_bits(np.abs(x)).astype(np.int64)
    steps = np.arange(-k, k + 1)
    b = (bits[:, None] + steps[None, :]).ravel()
    b = b[(b >= 0) & (b <= 0x7F800000)]
    return from_f32_bits(b.astype(np.uint32))


def both_signs(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, -x])


def _fmt(v) -> str:
    if isinstance(v, (np.floating, float)):
        return f"{float(v)!r}"
    if isinstance(v, (np.integer, int)):
        return hex(int(v))
    return repr(v)


def describe_mismatches(what: str, inputs, got, want, bad: np.ndarray, limit: int = 6) -> str:
    rows = [f"  input={_fmt(inputs[i])} expected={_fmt(want[i])} got={_fmt(got[i])}" for i in bad[:limit]]
    return f"{what}: {bad.size} mismatch(es) of {len(want)}\n" + "\n".join(rows)


def assert_codes_equal(what: str, inputs, got, want) -> None:
    got = np.asarray(got).astype(np.int64).ravel()
    want = np.asarray(want).astype(np.int64).ravel()
    assert got.shape == want.shape, (what, got.shape, want.shape)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, describe_mismatches(what, np.asarray(inputs).ravel(), got, want, bad)


def assert_bits_equal(what: str, inputs, got, want) -> None:
    """Bit-identical floats (sign of zero counts); NaN outputs compared as an isnan mask."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.dtype == want.dtype, (what, got.dtype, want.dtype)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    got, want = got.ravel(), want.ravel()
    uint = np.uint32 if want.dtype == np.float32 else np.uint64
    gn, wn = np.isnan(got), np.isnan(want)
    bad = np.flatnonzero((gn != wn) | (~wn & (got.view(uint) != want.view(uint))))
    assert bad.size == 0, describe_mismatches(what, np.asarray(inputs).ravel(), got, want, bad)
