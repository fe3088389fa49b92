"""Exhaustive code books of the baseline formats (BASELINE-FORMATS §5.1 and §5.2).

For every family with n <= 12 and every preset: decode of every code against an independent
reference written from §2 (not from `lpq`), strictly increasing magnitudes, encode(decode(c)) = c
for every producible code, max / min normal / min subnormal, the identities of §2.2, §2.5 and
§2.6, and every decision point (midpoint, posit (n+1)-bit point, lns log midpoint) with its
float32 neighbours and both signs (ties to the even code, zero sign per §1.1).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import mpmath
import numpy as np
import pytest
import torch

from lpq.formats import parse

F32 = np.float32
MAX_N = 12


# ---------------------------------------------------------------------------------------------
# float32 helpers
# ---------------------------------------------------------------------------------------------
def prev32(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, F32), F32(-np.inf))


def next32(x: np.ndarray) -> np.ndarray:
    return np.nextafter(np.asarray(x, F32), F32(np.inf))


def rn32_exp2(q: np.ndarray) -> np.ndarray:
    """RN32(2**q) for float64 exponents q (exact dyadics), correctly rounded.

    float64 exp2 is within a few ulp; where that leaves the float32 rounding undecided the
    value is recomputed with 200-bit mpmath.
    """
    q = np.asarray(q, np.float64)
    v = np.exp2(q)
    r = v.astype(F32)
    # float32 rounding boundaries next to v: midpoints between r and its neighbours.
    lo_mid = (r.astype(np.float64) + prev32(r).astype(np.float64)) / 2
    hi_mid = (r.astype(np.float64) + next32(r).astype(np.float64)) / 2
    risky = (np.abs(v - lo_mid) <= 8 * np.spacing(v)) | (np.abs(v - hi_mid) <= 8 * np.spacing(v))
    for i in np.flatnonzero(risky):
        with mpmath.workprec(200):
            exact = mpmath.power(2, mpmath.mpf(float(q[i])))
        with mpmath.workprec(24):
            r[i] = F32(float(+exact))
    return r


def bracket32_exp2(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(largest float32 < 2**q, smallest float32 > 2**q) for irrational 2**q (q non-integer)."""
    q = np.asarray(q, np.float64)
    v = np.exp2(q)
    c = v.astype(F32)
    c64 = c.astype(np.float64)
    above = c64 > v
    risky = np.abs(c64 - v) <= 8 * np.spacing(v)
    for i in np.flatnonzero(risky):
        with mpmath.workprec(200):
            above[i] = mpmath.mpf(float(c64[i])) > mpmath.power(2, mpmath.mpf(float(q[i])))
    lo = np.where(above, prev32(c), c)
    hi = np.where(above, c, next32(c))
    return lo, hi


def assert_same_f32(got: np.ndarray, want: np.ndarray, context: str) -> None:
    """Bit-exact float32 comparison (all NaNs equal), reporting the first mismatches."""
    got = np.asarray(got)
    want = np.asarray(want, F32)
    assert got.dtype == F32, f"{context}: dtype {got.dtype}, want float32"
    gb, wb = got.view(np.uint32), want.view(np.uint32)
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    bad = (nan_g != nan_w) | (~nan_w & (gb != wb))
    if bad.any():
        idx = np.flatnonzero(bad.ravel())[:8]
        raise AssertionError(
            f"{context}: {bad.sum()} of {bad.size} differ, e.g. "
            + "; ".join(f"#{i}: got {got.ravel()[i]!r} want {want.ravel()[i]!r}" for i in idx)
        )


def assert_same_codes(got: np.ndarray, want: np.ndarray, bits: int, context: str, x=None) -> None:
    got = np.asarray(got)
    assert got.dtype == (np.uint8 if bits <= 8 else np.uint16), f"{context}: code dtype {got.dtype}"
    want = np.asarray(want).astype(np.int64)
    bad = got.astype(np.int64) != want
    if bad.any():
        idx = np.flatnonzero(bad.ravel())[:8]
        raise AssertionError(
            f"{context}: {bad.sum()} of {bad.size} codes differ, e.g. "
            + "; ".join(
                (f"x={x.ravel()[i]!r}: " if x is not None else f"#{i}: ")
                + f"got {hex(int(got.ravel()[i]))} want {hex(int(want.ravel()[i]))}"
                for i in idx
            )
        )


# ---------------------------------------------------------------------------------------------
# Independent reference code books (BASELINE-FORMATS §2)
# ---------------------------------------------------------------------------------------------
@dataclass
class Ref:
    """Reference code book of one format at sf = 0.

    values: value of every code 0 .. 2^n-1 (float64 exact for dyadic families, RN32 for lns;
    -0.0 for a sign-magnitude negative zero; nan for NaN codes and for unused af patterns).
    order: codes of the non-negative magnitudes, increasing (first entry: the zero code).
    rule: how decision points are formed: 'linear' (value midpoints), 'flush' (af: linear
    between nonzero values, everything below the smallest normal is zero), 'posit' ((n+1)-bit
    point), 'log' (lns: log2 midpoint).
    """

    spec: str
    n: int
    values: np.ndarray
    valid: np.ndarray  # codes with a defined value (af's unused patterns excluded)
    nan: np.ndarray  # NaN / NaR codes
    producible: np.ndarray  # codes the encoder can produce
    order: np.ndarray
    negate: Callable[[np.ndarray], np.ndarray] | None  # code of -v from code of v; None: unsigned
    rule: str
    max: float
    min_positive: float
    min_normal: float | None = None
    log2_mag: np.ndarray | None = None  # lns: exact log2 of the magnitudes in `order`
    posit_es: int | None = None


def _codes(n: int) -> np.ndarray:
    return np.arange(2**n, dtype=np.int64)


def ref_int(n: int) -> Ref:
    c = _codes(n)
    half = 2 ** (n - 1)
    v = np.where(c >= half, c - 2**n, c).astype(np.float64)  # -2^(n-1) decodes as itself
    return Ref(f"int<{n}>", n, v, np.ones_like(c, bool), np.zeros_like(c, bool), c != half,
               np.arange(half), lambda k: (-k) % 2**n, "linear", half - 1, 1.0)


def ref_uint(n: int) -> Ref:
    c = _codes(n)
    return Ref(f"uint<{n}>", n, c.astype(np.float64), np.ones_like(c, bool), np.zeros_like(c, bool),
               np.ones_like(c, bool), c.copy(), None, "linear", 2.0**n - 1, 1.0)


def ref_fp(e: int, m: int, preset: str | None = None) -> Ref:
    n = 1 + e + m
    c = _codes(n)
    S, E, M = c >> (e + m), (c >> m) & (2**e - 1), c & (2**m - 1)
    b = 2 ** (e - 1) - 1
    mag = np.where(E == 0, np.ldexp(M.astype(np.float64), 1 - b - m),
                   np.ldexp((2**m + M).astype(np.float64), E - b - m))
    v = np.where(S == 1, -mag, mag)
    nan = np.zeros_like(c, bool)
    inf = np.zeros_like(c, bool)
    if preset == "fp8_e4m3":
        nan = (E == 15) & (M == 7)
    elif preset == "fp8_e5m2":
        nan = (E == 31) & (M != 0)
        inf = (E == 31) & (M == 0)
        v = np.where(inf, np.where(S == 1, -np.inf, np.inf), v)
    v = np.where(nan, np.nan, v)
    finite_pos = np.flatnonzero(~nan & ~inf & (S == 0))
    spec = preset or f"fp<{e},{m}>"
    return Ref(spec, n, v, np.ones_like(c, bool), nan, ~nan & ~inf, finite_pos,
               lambda k: k ^ (1 << (e + m)), "linear", float(v[finite_pos[-1]]),
               2.0 ** (1 - b - m), min_normal=2.0 ** (1 - b))


def posit_value(p: int, n: int, es: int) -> float:
    """Exact value of positive posit<n,es> code p (BASELINE-FORMATS §2.3); exact in float64."""
    body = format(p, f"0{n}b")[1:]
    r0 = body[0]
    run = len(body) - len(body.lstrip(r0))
    k = run - 1 if r0 == "1" else -run
    rest = body[run + 1:]  # the terminator is consumed when present
    ebits, fbits = rest[:es], rest[es:]
    e = int(ebits.ljust(es, "0"), 2) if es else 0
    f = int(fbits, 2) if fbits else 0
    return math.ldexp(1.0 + math.ldexp(f, -len(fbits)), 2**es * k + e)


def ref_posit(n: int, es: int) -> Ref:
    c = _codes(n)
    half = 2 ** (n - 1)
    v = np.zeros(2**n)
    for p in range(1, half):
        v[p] = posit_value(p, n, es)
        v[2**n - p] = -v[p]
    v[half] = np.nan
    maxpos = 2.0 ** (2**es * (n - 2))
    return Ref(f"posit<{n},{es}>", n, v, np.ones_like(c, bool), c == half, c != half,
               np.arange(half), lambda k: (-k) % 2**n, "posit", maxpos, 1 / maxpos, posit_es=es)


def ref_af(n: int, e: int) -> Ref:
    m = n - 1 - e
    c = _codes(n)
    S, E, M = c >> (n - 1), (c >> m) & (2**e - 1), c & (2**m - 1)
    zero = (E == 0) & (M == 0)
    used = zero | ((E >= 1) & (E <= 2**e - 2))
    mag = np.where(zero, 0.0, np.ldexp((2**m + M).astype(np.float64), E - (2**e - 2) - m))
    v = np.where(used, np.where(S == 1, -mag, mag), np.nan)
    order = np.flatnonzero(used & (S == 0))
    return Ref(f"af<{n},{e}>", n, v, used, np.zeros_like(c, bool), used, order,
               lambda k: k ^ (1 << (n - 1)), "flush", 2 - 2.0**-m, 2.0 ** -(2**e - 3),
               min_normal=2.0 ** -(2**e - 3))


def ref_lns(n: int, f: int) -> Ref:
    c = _codes(n)
    S = c >> (n - 1)
    raw = c & (2 ** (n - 1) - 1)
    L = np.where(raw >= 2 ** (n - 2), raw - 2 ** (n - 1), raw)
    special = L == -(2 ** (n - 2))
    zero, nan = special & (S == 0), special & (S == 1)
    mag = rn32_exp2(L / 2.0**f).astype(np.float64)
    v = np.where(S == 1, -mag, mag)
    v = np.where(zero, 0.0, np.where(nan, np.nan, v))
    lmax = 2 ** (n - 2) - 1
    Ls = np.arange(-lmax, lmax + 1)
    order = np.concatenate([[2 ** (n - 2)], Ls % 2 ** (n - 1)])  # zero code, then by L
    return Ref(f"lns<{n},{f}>", n, v, np.ones_like(c, bool), nan, ~nan, order,
               lambda k: k ^ (1 << (n - 1)), "log",
               float(rn32_exp2(np.array([lmax / 2.0**f]))[0]),
               float(rn32_exp2(np.array([-lmax / 2.0**f]))[0]),
               log2_mag=np.concatenate([[-np.inf], Ls / 2.0**f]))


def flint_magnitude(w: int, B: int) -> float:
    """flint magnitude of code w (BASELINE-FORMATS §2.6)."""
    if w < 2 ** (B - 1):
        return float(w)
    bits = format(w, f"0{B}b")
    ones = len(bits) - len(bits.lstrip("1"))
    if ones == B:
        return 2.0 ** (2 * B - 2)
    r = B - ones - 1
    mant = int(bits[ones + 1:], 2) if r else 0
    return math.ldexp(1.0 + math.ldexp(mant, -r), B + ones - 2)


def pot_magnitude(w: int, B: int) -> float:
    return 0.0 if w == 0 else 2.0 ** (w - 1)


def ref_ant(kind: str, n: int) -> Ref:
    unsigned = kind.startswith("u")
    B = n if unsigned else n - 1
    mag_of = flint_magnitude if kind.endswith("flint") else pot_magnitude
    mags = np.array([mag_of(w, B) for w in range(2**B)])
    c = _codes(n)
    w = c & (2**B - 1)
    v = mags[w] if unsigned else np.where(c >> B == 1, -mags[w], mags[w])
    return Ref(f"{kind}<{n}>", n, v, np.ones_like(c, bool), np.zeros_like(c, bool),
               np.ones_like(c, bool), np.arange(2**B), None if unsigned else (lambda k: k ^ (1 << B)),
               "linear", float(mags[-1]), 1.0)


PRESETS = {
    "fp8_e4m3": (4, 3), "fp8_e5m2": (5, 2), "fp6_e2m3": (2, 3), "fp6_e3m2": (3, 2), "fp4_e2m1": (2, 1),
}


def _in_f32(max_log2: float) -> bool:
    """Symmetric code book [2^-x, 2^x] inside the float32 normal range (§1.1)."""
    return max_log2 <= 126


def all_specs() -> list[str]:
    specs = list(PRESETS)
    specs += [f"int<{n}>" for n in range(2, MAX_N + 1)]
    specs += [f"uint<{n}>" for n in range(1, MAX_N + 1)]
    specs += [f"fp<{e},{m}>" for e in range(1, 8) for m in range(0, MAX_N - e)]
    specs += [f"posit<{n},{es}>" for n in range(2, MAX_N + 1) for es in range(5) if _in_f32(2**es * (n - 2))]
    specs += [f"af<{n},{e}>" for n in range(3, MAX_N + 1) for e in range(2, min(n - 1, 7) + 1)]
    specs += [f"lns<{n},{f}>" for n in range(2, MAX_N + 1) for f in range(n - 1)
              if _in_f32((2 ** (n - 2) - 1) / 2**f)]
    specs += [f"flint<{n}>" for n in range(3, 9)] + [f"pot<{n}>" for n in range(2, 7)]
    specs += [f"uflint<{n}>" for n in range(2, 8)] + [f"upot<{n}>" for n in range(1, 6)]
    return specs


@functools.lru_cache(maxsize=None)
def reference(spec: str) -> Ref:
    if spec in PRESETS:
        return ref_fp(*PRESETS[spec], preset=spec)
    name, args = spec[:-1].split("<")
    a = [int(t) for t in args.split(",")]
    if name in ("flint", "pot", "uflint", "upot"):
        return ref_ant(name, a[0])
    return {"int": ref_int, "uint": ref_uint, "fp": ref_fp, "posit": ref_posit, "af": ref_af,
            "lns": ref_lns}[name](*a)


@functools.lru_cache(maxsize=None)
def fmt(spec: str):
    return parse(spec)


def code_array(n: int) -> np.ndarray:
    return np.arange(2**n, dtype=np.uint8 if n <= 8 else np.uint16)


SPECS = all_specs()
OUT_OF_F32 = (
    [f"posit<{n},{es}>" for n in range(2, MAX_N + 1) for es in range(5) if not _in_f32(2**es * (n - 2))]
    + [f"lns<{n},{f}>" for n in range(2, MAX_N + 1) for f in range(n - 1) if not _in_f32((2 ** (n - 2) - 1) / 2**f)]
    + [f"af<{n},{e}>" for n in range(9, MAX_N + 1) for e in range(8, n)]
)


# ---------------------------------------------------------------------------------------------
# §5.1 code books
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS)
def test_spec_bits_and_sf(spec):
    f = fmt(spec)
    assert f.spec == spec
    assert f.bits == reference(spec).n
    assert f.sf == 0


@pytest.mark.parametrize("spec", OUT_OF_F32)
def test_code_book_outside_float32_normal_range_is_rejected(spec):
    """§1.1: every code book must lie in the float32 normal range, else construction fails."""
    with pytest.raises(ValueError, match=spec.split("<")[0]):
        parse(spec)


@pytest.mark.parametrize("spec", SPECS)
def test_decode_every_code(spec):
    ref, f = reference(spec), fmt(spec)
    got = np.asarray(f.decode(code_array(ref.n)))
    assert got.dtype == np.float64 and got.shape == (2**ref.n,)
    assert np.array_equal(np.isnan(got) & ref.valid, ref.nan), f"{spec}: NaN codes differ"
    ok = ref.valid & ~ref.nan
    if spec.startswith("lns"):
        # exact values are irrational: compare the float32 code-book values (§1.1)
        assert_same_f32(got[ok].astype(F32), ref.values[ok].astype(F32), f"{spec} decode")
    else:
        bad = (got[ok] != ref.values[ok]) | (np.signbit(got[ok]) != np.signbit(ref.values[ok]))
        codes = np.flatnonzero(ok)[bad]
        assert not bad.any(), f"{spec}: decode differs at codes {[hex(c) for c in codes[:8]]}: " \
            f"got {got[codes[:8]]} want {ref.values[codes[:8]]}"


@pytest.mark.parametrize("spec", SPECS)
def test_magnitudes_strictly_increase(spec):
    """Positive codes (magnitude codes for sign-magnitude, L order for lns) increase (§5.1)."""
    ref, f = reference(spec), fmt(spec)
    vals = np.asarray(f.decode(code_array(ref.n)[ref.order]))
    assert vals[0] == 0
    assert np.all(np.diff(vals.astype(F32)) > 0), f"{spec}: magnitudes not strictly increasing"
    if ref.negate is not None:
        neg = np.asarray(f.decode(code_array(ref.n)[ref.negate(ref.order[1:])]))
        assert np.array_equal(neg, -vals[1:]), f"{spec}: negative codes are not the negated values"


@pytest.mark.parametrize("spec", SPECS)
def test_encode_decode_roundtrip(spec):
    """encode(decode(c)) = c for every producible code (§5.1), fed as float32 values."""
    ref, f = reference(spec), fmt(spec)
    codes = np.flatnonzero(ref.producible)
    x = ref.values[codes].astype(F32)
    got = f.encode(x)
    assert_same_codes(got, codes, ref.n, f"{spec} encode(decode(c))", x)
    assert_same_f32(f.quantize(x), x, f"{spec} quantize(code-book value)")


@pytest.mark.parametrize("spec", SPECS)
def test_codebook_max_min_positive(spec):
    ref, f = reference(spec), fmt(spec)
    book = np.asarray(f.codebook())
    assert book.dtype == np.float64
    want = np.unique(ref.values[ref.producible & ~ref.nan & np.isfinite(ref.values)])
    if spec.startswith("lns"):
        assert_same_f32(book.astype(F32), want.astype(F32), f"{spec} codebook")
        assert F32(f.max) == F32(ref.max) and F32(f.min_positive) == F32(ref.min_positive)
    else:
        assert np.array_equal(book, want), f"{spec}: codebook differs"
        assert f.max == ref.max, f"{spec}: max {f.max} want {ref.max}"
        assert f.min_positive == ref.min_positive, f"{spec}: min_positive {f.min_positive} want {ref.min_positive}"
    assert np.all(np.diff(book) > 0) and 0 in book


# ---------------------------------------------------------------------------------------------
# §2.2 table: presets and the generic formula
# ---------------------------------------------------------------------------------------------
PRESET_TABLE = {
    # spec: (max, min normal, min subnormal, positive finite values, special codes)
    "fp8_e4m3": (448.0, 2.0**-6, 2.0**-9, 126, [0x7F, 0xFF]),
    "fp8_e5m2": (57344.0, 2.0**-14, 2.0**-16, 123, [0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF]),
    "fp6_e2m3": (7.5, 1.0, 0.125, 31, []),
    "fp6_e3m2": (28.0, 0.25, 0.0625, 31, []),
    "fp4_e2m1": (6.0, 1.0, 0.5, 7, []),
}


@pytest.mark.parametrize("spec", list(PRESET_TABLE))
def test_preset_table(spec):
    mx, mn, sub, count, nan_codes = PRESET_TABLE[spec]
    f = fmt(spec)
    e, m = PRESETS[spec]
    book = np.asarray(f.codebook())
    assert f.max == mx and f.min_positive == sub
    assert (book > 0).sum() == count
    assert f.decode(code_array(f.bits)[[1 << m]])[0] == mn  # E = 1, M = 0: min normal
    decoded = np.asarray(f.decode(code_array(f.bits)))
    assert sorted(np.flatnonzero(np.isnan(decoded)).tolist()) == nan_codes
    if spec == "fp4_e2m1":
        assert book[book > 0].tolist() == [0.5, 1, 1.5, 2, 3, 4, 6]
    if spec == "fp8_e5m2":
        assert decoded[0x7C] == np.inf and decoded[0xFC] == -np.inf  # inf codes, never produced


@pytest.mark.parametrize("spec", [s for s in SPECS if s.startswith("fp<")])
def test_generic_fp_table_formula(spec):
    e, m = (int(t) for t in spec[3:-1].split(","))
    b = 2 ** (e - 1) - 1
    f = fmt(spec)
    book = np.asarray(f.codebook())
    assert f.max == 2.0 ** (2**e - 1 - b) * (2 - 2.0**-m)
    assert f.min_positive == 2.0 ** (1 - b - m)
    assert 2.0 ** (1 - b) in book  # min normal
    assert (book > 0).sum() == 2 ** (e + m) - 1  # every code is finite
    assert not np.isnan(np.asarray(f.decode(code_array(1 + e + m)))).any()


@pytest.mark.parametrize("spec", [s for s in SPECS if s.startswith("af<")])
def test_af_range(spec):
    n, e = (int(t) for t in spec[3:-1].split(","))
    m = n - 1 - e
    f = fmt(spec)
    assert f.max == 2 - 2.0**-m
    assert f.min_positive == 2.0 ** -(2**e - 3)  # smallest normal; no subnormals
    assert (np.asarray(f.codebook()) > 0).sum() == (2**e - 2) * 2**m


@pytest.mark.parametrize("spec", [s for s in SPECS if s.startswith("posit<")])
def test_posit_maxpos_minpos(spec):
    n, es = (int(t) for t in spec[6:-1].split(","))
    f = fmt(spec)
    assert f.max == 2.0 ** (2**es * (n - 2)) and f.min_positive == 2.0 ** -(2**es * (n - 2))


# ---------------------------------------------------------------------------------------------
# Identities (§2.2, §2.5, §2.6)
# ---------------------------------------------------------------------------------------------
def _probe_inputs() -> np.ndarray:
    rng = np.random.default_rng(1234)
    x = np.exp2(rng.uniform(-40, 40, 4000)).astype(F32) * rng.choice([-1, 1], 4000).astype(F32)
    fine = rng.uniform(-600, 600, 4000).astype(F32)
    special = np.array([0, -0.0, np.inf, -np.inf, 2.0**-149, -(2.0**-149)], F32)
    return np.concatenate([x, fine, special])


@pytest.mark.parametrize("generic,preset", [("fp<2,3>", "fp6_e2m3"), ("fp<3,2>", "fp6_e3m2"), ("fp<2,1>", "fp4_e2m1")])
def test_generic_fp_equals_fp6_fp4_presets(generic, preset):
    g, p = fmt(generic), fmt(preset)
    codes = code_array(g.bits)
    assert np.array_equal(np.asarray(g.decode(codes)), np.asarray(p.decode(codes)))
    x = _probe_inputs()
    assert_same_codes(g.encode(x), p.encode(x), g.bits, f"{generic} vs {preset}", x)
    assert_same_f32(g.quantize(x), p.quantize(x), f"{generic} vs {preset}")


def test_generic_fp_differs_from_fp8_presets():
    assert fmt("fp<4,3>").max == 480 and fmt("fp8_e4m3").max == 448
    assert fmt("fp<5,2>").max == 114688 and fmt("fp8_e5m2").max == 57344
    assert not np.isnan(np.asarray(fmt("fp<4,3>").decode(np.array([0x7F], np.uint8))))[0]


LNS_LP = [(s, rs) for s in SPECS if s.startswith("lns<") for rs in (1, 2)
          if int(s[4:-1].split(",")[0]) - 1 - rs - int(s[4:-1].split(",")[1]) >= 0]


@pytest.mark.parametrize("spec,rs", LNS_LP)
def test_lns_equals_lp_uniform(spec, rs):
    """lns<n,f> = lp<n, n-1-rs-f, rs, 0> for rs in {1, 2}: value sets and rounding (§2.5)."""
    n, fb = (int(t) for t in spec[4:-1].split(","))
    lp = fmt(f"lp<{n},{n - 1 - rs - fb},{rs},0>")
    lns = fmt(spec)
    assert_same_f32(np.asarray(lns.codebook()).astype(F32), np.asarray(lp.codebook()).astype(F32),
                    f"{spec} vs {lp.spec} code book")
    x = np.concatenate([_probe_inputs(), *_decision_inputs(reference(spec))[:1]])
    x = np.concatenate([x, -x])
    assert_same_f32(lns.quantize(x), lp.quantize(x), f"{spec} vs {lp.spec} quantize")


@pytest.mark.parametrize("n,unsigned", [(n, False) for n in range(3, 9)] + [(n, True) for n in range(2, 8)])
def test_flint_is_scaled_posit_n0(n, unsigned):
    """flint magnitudes are 2^(B-1) times the positive values of posit<B+1,0> (§2.6)."""
    B = n if unsigned else n - 1
    flint = np.asarray(fmt(f"{'u' if unsigned else ''}flint<{n}>").codebook())
    posit = np.asarray(fmt(f"posit<{B + 1},0>").codebook())
    assert np.array_equal(flint[flint > 0], 2.0 ** (B - 1) * posit[posit > 0])
    if not unsigned:  # signed flint<n> has the value set of posit<n,0> up to scale
        assert np.array_equal(flint, 2.0 ** (B - 1) * posit)


def test_flint5_magnitudes_table():
    """§2.6: B = 4 gives {0, 1, ..., 8, 10, 12, 14, 16, 24, 32, 64}."""
    book = np.asarray(fmt("flint<5>").codebook())
    assert book[book >= 0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 24, 32, 64]
    assert np.asarray(fmt("flint<4>").codebook())[7:].tolist() == [0, 1, 2, 3, 4, 6, 8, 16]
    assert np.asarray(fmt("pot<4>").codebook())[7:].tolist() == [0, 1, 2, 4, 8, 16, 32, 64]
    assert np.asarray(fmt("int<4>").codebook())[7:].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]


# ---------------------------------------------------------------------------------------------
# §5.2 decision points
# ---------------------------------------------------------------------------------------------
def _decision_inputs(ref: Ref) -> tuple[np.ndarray, np.ndarray]:
    """Positive float32 inputs around every decision point and the expected codes."""
    order = ref.order
    mags = ref.values[order]
    xs: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    lo, hi = order[:-1], order[1:]
    if ref.rule in ("linear", "flush", "posit"):
        if ref.rule == "posit":
            d = np.array([posit_value(2 * int(c) + 1, ref.n + 1, ref.posit_es) for c in lo[1:]])
            lo, hi = lo[1:], hi[1:]
        else:
            d = (mags[:-1] + mags[1:]) / 2  # exact: dyadic values with few bits
            if ref.rule == "flush":  # zero | smallest normal: a threshold at the normal itself
                mn = F32(mags[1])
                xs += [np.array([prev32(mn), mn], F32)]
                cs += [np.array([order[0], order[1]])]
                d, lo, hi = d[1:], lo[1:], hi[1:]
        d32 = d.astype(F32)
        exact = d32.astype(np.float64) == d
        even = np.where(hi % 2 == 0, hi, lo)
        xs += [d32[exact], prev32(d32[exact]), next32(d32[exact])]
        cs += [even[exact], lo[exact], hi[exact]]
        below = np.where(d32[~exact] < d[~exact], d32[~exact], prev32(d32[~exact]))
        xs += [below, next32(below)]
        cs += [lo[~exact], hi[~exact]]
    else:  # lns: irrational log midpoints, never a tie
        lg = ref.log2_mag[1:]
        below, above = bracket32_exp2((lg[:-1] + lg[1:]) / 2)
        xs += [below, above]
        cs += [order[1:-1], order[2:]]
    # saturation and underflow ends
    top = F32(ref.values[order[-1]])
    xs += [np.array([top, next32(top), F32(2) * top, np.inf, np.finfo(F32).max], F32)]
    cs += [np.full(5, order[-1])]
    tiny = np.array([2.0**-149, 2.0**-126], F32)
    xs += [tiny]
    first = order[1] if ref.rule in ("posit", "log") else order[0]
    cs += [np.full(2, first)]
    return np.concatenate(xs).astype(F32), np.concatenate(cs).astype(np.int64)


@pytest.mark.parametrize("spec", SPECS)
def test_decision_points(spec):
    """Every decision point, its float32 neighbours, both signs: codes and values (§5.2).

    Exact ties go to the even code (code LSB = 0, §1.1). For m = 0 formats (fp<e,0>,
    af<n,n-1>) a tie between two binades therefore goes to the even exponent field; §2.4's
    "mantissa half to even, carry to the next binade" reading would always round up there.
    """
    ref, f = reference(spec), fmt(spec)
    x, codes = _decision_inputs(ref)
    want_codes = codes
    if ref.negate is not None:
        x = np.concatenate([x, -x])
        want_codes = np.concatenate([codes, ref.negate(codes)])
    assert_same_codes(f.encode(x), want_codes, ref.n, f"{spec} encode", x)
    want = ref.values[want_codes].astype(F32)
    assert_same_f32(f.quantize(x), want, f"{spec} quantize (numpy)")
    assert_same_f32(f.quantize(torch.from_numpy(x)).numpy(), want, f"{spec} quantize (torch cpu)")


@pytest.mark.parametrize("spec", [s for s in SPECS if s.startswith(("uint", "uflint", "upot"))])
def test_unsigned_negative_inputs_give_plus_zero(spec):
    f = fmt(spec)
    x = np.array([-0.0, -2.0**-149, -0.4, -1, -3, -1e30, -np.inf], F32)
    assert_same_codes(f.encode(x), np.zeros(x.size), f.bits, f"{spec} encode", x)
    assert_same_f32(f.quantize(x), np.zeros(x.size, F32), f"{spec} quantize (numpy)")
    assert_same_f32(f.quantize(torch.from_numpy(x)).numpy(), np.zeros(x.size, F32), f"{spec} quantize (torch cpu)")
