"""Baseline formats against packaged oracles (BASELINE-FORMATS §4.3, §5.3).

- OCP fp8/fp6/fp4 against `ml_dtypes` (ties-to-even casts; the input is clipped to +-max first
  to get this spec's saturating result; fp4/fp6 NaN inputs are skipped because ml_dtypes maps
  them to the -0 pattern): every code, every midpoint with its float32 neighbours, and the
  stratified float32 sweep of LP-FORMAT §9.4.
- posit<8,0>, posit<16,1> and posit<n,2> (n = 3..16) against SoftPosit on random log-uniform
  inputs plus every decision point ((n+1)-bit posit code 2c+1) and its float32 neighbours.
  SoftPosit maps +-inf to NaR, so infinities are checked against the spec separately.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from lpq.formats import parse

ml_dtypes = pytest.importorskip("ml_dtypes")

F32 = np.float32

OCP = {
    # spec: (ml_dtypes type, max, code mask)
    "fp8_e4m3": (ml_dtypes.float8_e4m3fn, 448.0, 0xFF),
    "fp8_e5m2": (ml_dtypes.float8_e5m2, 57344.0, 0xFF),
    "fp6_e2m3": (ml_dtypes.float6_e2m3fn, 7.5, 0x3F),
    "fp6_e3m2": (ml_dtypes.float6_e3m2fn, 28.0, 0x3F),
    "fp4_e2m1": (ml_dtypes.float4_e2m1fn, 6.0, 0x0F),
}


@functools.lru_cache(maxsize=None)
def fmt(spec: str):
    return parse(spec)


def stratified_sweep(seed: int = 0) -> np.ndarray:
    """Every upper-16-bit prefix of the float32 pattern with low halves {0x0000, 0x0001, 0x7fff,
    0x8000, 0xffff, one seeded random value} (LP-FORMAT §9.4)."""
    rng = np.random.default_rng(seed)
    prefix = np.arange(1 << 16, dtype=np.uint32) << 16
    fixed = np.array([0x0000, 0x0001, 0x7FFF, 0x8000, 0xFFFF], np.uint32)
    random_low = rng.integers(0, 1 << 16, size=prefix.size, dtype=np.uint32)
    bits = np.concatenate([(prefix[:, None] | fixed[None, :]).ravel(), prefix | random_low])
    return bits.view(F32)


def assert_same_f32(got, want, context: str, x=None) -> None:
    """Bit-exact float32 comparison (all NaNs equal), naming the first mismatching inputs."""
    got = np.asarray(got)
    want = np.asarray(want, F32)
    assert got.dtype == F32, f"{context}: dtype {got.dtype}"
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    bad = (nan_g != nan_w) | (~nan_w & (got.view(np.uint32) != want.view(np.uint32)))
    if bad.any():
        idx = np.flatnonzero(bad)[:8]
        raise AssertionError(
            f"{context}: {bad.sum()} of {bad.size} differ, e.g. "
            + "; ".join(
                (f"x={x[i]!r} ({x.view(np.uint32)[i]:#010x}): " if x is not None else f"#{i}: ")
                + f"got {got[i]!r} want {want[i]!r}"
                for i in idx
            )
        )


def assert_same_codes(got, want, context: str, x=None, equivalent_nan=None) -> None:
    """Codes equal; codes in `equivalent_nan` (NaN codes) all count as one."""
    got = np.asarray(got).astype(np.int64)
    want = np.asarray(want).astype(np.int64)
    if equivalent_nan is not None:
        got = np.where(np.isin(got, equivalent_nan), -1, got)
        want = np.where(np.isin(want, equivalent_nan), -1, want)
    bad = got != want
    if bad.any():
        idx = np.flatnonzero(bad)[:8]
        raise AssertionError(
            f"{context}: {bad.sum()} of {bad.size} codes differ, e.g. "
            + "; ".join(
                (f"x={x[i]!r}: " if x is not None else f"#{i}: ") + f"got {got[i]:#x} want {want[i]:#x}"
                for i in idx
            )
        )


# ---------------------------------------------------------------------------------------------
# OCP formats vs ml_dtypes
# ---------------------------------------------------------------------------------------------
def ml_values(spec: str) -> np.ndarray:
    """Value of every code according to ml_dtypes (float64)."""
    mtype, _, mask = OCP[spec]
    codes = np.arange(mask + 1, dtype=np.uint8)
    return codes.view(mtype).astype(np.float64)


def ml_quantize(spec: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, codes) of this spec's saturating quantizer via ml_dtypes on clipped input."""
    mtype, mx, mask = OCP[spec]
    with np.errstate(invalid="ignore"):  # NaN inputs cast to the NaN code
        q = np.clip(x, F32(-mx), F32(mx)).astype(mtype)
    return q.astype(F32), q.view(np.uint8) & mask


def nan_codes(spec: str) -> np.ndarray:
    return np.flatnonzero(np.isnan(ml_values(spec)))


def check_ocp(spec: str, x: np.ndarray) -> None:
    f = fmt(spec)
    want, want_codes = ml_quantize(spec, x)
    assert_same_f32(f.quantize(x), want, f"{spec} numpy quantize vs ml_dtypes", x)
    got_t = f.quantize(torch.from_numpy(x))
    assert isinstance(got_t, torch.Tensor) and got_t.dtype == torch.float32
    assert_same_f32(got_t.numpy(), want, f"{spec} torch quantize vs ml_dtypes", x)
    got_codes = f.encode(x)
    assert got_codes.dtype == np.uint8
    assert_same_codes(got_codes, want_codes, f"{spec} encode vs ml_dtypes", x, nan_codes(spec))


@pytest.mark.parametrize("spec", list(OCP))
def test_ocp_decode_every_code(spec):
    f = fmt(spec)
    codes = np.arange(2**f.bits, dtype=np.uint8)
    got = np.asarray(f.decode(codes))
    want = ml_values(spec)
    assert got.dtype == np.float64
    same = (got == want) & (np.signbit(got) == np.signbit(want))
    assert np.all(same | (np.isnan(got) & np.isnan(want))), f"{spec}: decode differs at {np.flatnonzero(~same)}"


@pytest.mark.parametrize("spec", list(OCP))
def test_ocp_every_value_roundtrips(spec):
    """Every finite ml_dtypes value (both zeros included) encodes to its own code."""
    vals = ml_values(spec)
    finite = np.flatnonzero(np.isfinite(vals))
    x = vals[finite].astype(F32)
    assert_same_codes(fmt(spec).encode(x), finite, f"{spec} encode(value of code)", x)
    check_ocp(spec, x)


@pytest.mark.parametrize("spec", list(OCP))
def test_ocp_midpoints_and_neighbours(spec):
    vals = ml_values(spec)
    pos = np.unique(vals[np.isfinite(vals) & (vals >= 0)])
    mids = ((pos[:-1] + pos[1:]) / 2).astype(F32)
    assert np.array_equal(mids.astype(np.float64), (pos[:-1] + pos[1:]) / 2)  # exact in float32
    pts = np.concatenate([mids, pos.astype(F32)])
    x = np.concatenate([pts, np.nextafter(pts, F32(np.inf)), np.nextafter(pts, F32(0))])
    x = np.concatenate([x, -x])
    check_ocp(spec, x)


@pytest.mark.parametrize("spec", list(OCP))
def test_ocp_stratified_float32_sweep(spec):
    x = stratified_sweep()
    if spec.startswith(("fp4", "fp6")):
        x = x[~np.isnan(x)]  # ml_dtypes maps NaN to the -0 pattern there
    check_ocp(spec, x)


# ---------------------------------------------------------------------------------------------
# Posits vs SoftPosit
# ---------------------------------------------------------------------------------------------
POSIT_CASES = ["posit<8,0>", "posit<16,1>"] + [f"posit<{n},2>" for n in range(3, 17)]


def softposit_codes(spec: str, x: np.ndarray) -> np.ndarray:
    sp = pytest.importorskip("softposit")
    n, es = (int(t) for t in spec[6:-1].split(","))
    xs = [float(v) for v in x]
    if (n, es) == (8, 0):
        return np.array([sp.posit8(v).v.v for v in xs], np.int64)
    if (n, es) == (16, 1):
        return np.array([sp.posit16(v).v.v for v in xs], np.int64)
    assert es == 2
    return np.array([sp.posit_2(v, n).v.v for v in xs], np.int64) >> (32 - n)  # left-aligned


def posit_value(p: int, n: int, es: int) -> float:
    """Exact value of positive posit<n,es> code p (BASELINE-FORMATS §2.3)."""
    body = format(p, f"0{n}b")[1:]
    r0 = body[0]
    run = len(body) - len(body.lstrip(r0))
    k = run - 1 if r0 == "1" else -run
    rest = body[run + 1:]
    ebits, fbits = rest[:es], rest[es:]
    e = int(ebits.ljust(es, "0"), 2) if es else 0
    f = int(fbits, 2) if fbits else 0
    return math.ldexp(1.0 + math.ldexp(f, -len(fbits)), 2**es * k + e)


def posit_inputs(n: int, es: int, seed: int) -> np.ndarray:
    """Decision points (posit<n+1,es> codes 2c+1), code values, their float32 neighbours,
    random log-uniform values beyond both ends, both signs, and zeros."""
    points = [posit_value(p, n + 1, es) for p in range(1, 2**n, 2)] if n >= 2 else []
    values = [posit_value(p, n, es) for p in range(1, 2 ** (n - 1))]
    base = np.array(points + values, F32)
    rng = np.random.default_rng(seed)
    top = 2**es * (n - 2)
    rand = np.exp2(rng.uniform(-top - 6, top + 6, 3000)).astype(F32)
    big = np.array([np.finfo(F32).max, 2.0**-149, 2.0**-126, 1e30, 1e-30], F32)
    x = np.concatenate([base, np.nextafter(base, F32(np.inf)), np.nextafter(base, F32(0)), rand, big])
    return np.concatenate([x, -x, np.array([0.0, -0.0], F32)])


@pytest.mark.parametrize("spec", POSIT_CASES)
def test_posit_vs_softposit(spec):
    n, es = (int(t) for t in spec[6:-1].split(","))
    x = posit_inputs(n, es, seed=n * 10 + es)
    want_codes = softposit_codes(spec, x)
    f = fmt(spec)
    got_codes = f.encode(x)
    assert got_codes.dtype == (np.uint8 if n <= 8 else np.uint16)
    assert_same_codes(got_codes, want_codes, f"{spec} encode vs SoftPosit", x)
    # values: SoftPosit's code decoded exactly (posit values are float32-exact)
    half = 2 ** (n - 1)
    table = np.zeros(2**n)
    for p in range(1, half):
        table[p] = posit_value(p, n, es)
        table[2**n - p] = -table[p]
    table[half] = np.nan
    want = table[want_codes].astype(F32)
    assert_same_f32(f.quantize(x), want, f"{spec} numpy quantize vs SoftPosit", x)
    assert_same_f32(f.quantize(torch.from_numpy(x)).numpy(), want, f"{spec} torch quantize vs SoftPosit", x)


@pytest.mark.parametrize("spec", POSIT_CASES)
def test_posit_infinities_and_nan(spec):
    """±inf saturate to ±maxpos (SoftPosit gives NaR there); NaN gives NaR (§2.3)."""
    n, es = (int(t) for t in spec[6:-1].split(","))
    f = fmt(spec)
    x = np.array([np.inf, -np.inf, np.nan], F32)
    maxpos = 2.0 ** (2**es * (n - 2))
    assert_same_codes(f.encode(x), [2 ** (n - 1) - 1, 2 ** (n - 1) + 1, 2 ** (n - 1)], f"{spec} specials", x)
    assert_same_f32(f.quantize(x), np.array([maxpos, -maxpos, np.nan], F32), f"{spec} specials", x)
