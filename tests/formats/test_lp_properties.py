"""Property tests of LP quantization with hypothesis (LP-FORMAT §5, §9.3)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from .lp_reference import (
    F32, REPRESENTATIVE, assert_bits_equal, assert_codes_equal, fits_float32, impl, lp_ref,
    ref_from_spec,
)

torch = pytest.importorskip("torch")

PROPERTY_SETTINGS = settings(max_examples=80, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])

# Random formats come from a fixed pool so that table construction is paid once per format.
POOL = REPRESENTATIVE + (
    "lp<3,0,2,-1.25>", "lp<5,4,4,0.3>", "lp<7,2,5,7>", "lp<9,1,8,-0.0625>", "lp<11,0,4,0.5>",
    "lp<12,4,3,0.14453125>", "lp<13,1,12,0>", "lp<14,2,3,-3.75>",
    "lp<10,3,9,0.1,round=linear>", "lp<9,2,4,-1,underflow=flush>",
)


def any_float32() -> st.SearchStrategy:
    return st.floats(width=32, allow_nan=True, allow_infinity=True, allow_subnormal=True)


@st.composite
def format_and_inputs(draw, pool=POOL, max_size: int = 48):
    """A pool format and a float32 array mixing arbitrary floats with values in its range."""
    spec = draw(st.sampled_from(pool))
    ref = ref_from_spec(spec)
    lo = float(-ref.T - ref.sf_q) - 3
    hi = min(float(ref.T - ref.sf_q) + 3, 127.9)
    in_range = st.builds(lambda e, s: s * 2.0**e, st.floats(lo, hi), st.sampled_from([1.0, -1.0]))
    elem = st.one_of(any_float32(), in_range.map(lambda v: float(np.float32(v))))
    xs = draw(st.lists(elem, min_size=1, max_size=max_size))
    return spec, np.array(xs, np.float32)


@PROPERTY_SETTINGS
@given(format_and_inputs())
def test_monotone(case):
    spec, x = case
    x = np.sort(x[~np.isnan(x)])
    q = impl(spec).quantize(x)
    assert np.all(np.diff(q.astype(np.float64)) >= 0), (spec, x, q)


@PROPERTY_SETTINGS
@given(format_and_inputs())
def test_odd_symmetry_and_positive_zero(case):
    spec, x = case
    fmt = impl(spec)
    q, qn = fmt.quantize(x), fmt.quantize(-x)
    both_nan = np.isnan(q) & np.isnan(qn)
    assert np.all(both_nan | (qn == -q)), (spec, x, q, qn)
    zeros = np.concatenate([q[q == 0], qn[qn == 0]])
    assert not np.any(np.signbit(zeros)), (spec, x)


@PROPERTY_SETTINGS
@given(format_and_inputs())
def test_idempotent(case):
    spec, x = case
    fmt = impl(spec)
    q = fmt.quantize(x)
    assert_bits_equal(f"{spec} idempotence", x, fmt.quantize(q), q)
    assert_codes_equal(f"{spec} encode(quantize(x)) = encode(x)", x, fmt.encode(q), fmt.encode(x))


@PROPERTY_SETTINGS
@given(format_and_inputs())
def test_in_codebook_and_matches_reference(case):
    spec, x = case
    ref = ref_from_spec(spec)
    q = impl(spec).quantize(x)
    book = np.concatenate([ref.values(F32), -ref.values(F32), [0.0]]).astype(np.float32)
    assert np.array_equal(np.isnan(q), np.isnan(x))
    assert np.all(np.isin(q[~np.isnan(q)], book)), (spec, x, q)
    assert_bits_equal(spec, x, q, ref.quantize(x))


@PROPERTY_SETTINGS
@given(format_and_inputs())
def test_saturation_and_underflow(case):
    spec, x = case
    ref = ref_from_spec(spec)
    q = impl(spec).quantize(x).astype(np.float64)
    vals = ref.values(F32)
    maxpos, minpos = vals[-1], vals[0]
    a = np.abs(x.astype(np.float64))
    big = a >= maxpos
    assert np.all(np.abs(q[big]) == maxpos), (spec, x[big], q[big])
    assert np.all(np.sign(q[big]) == np.sign(x[big]))
    exact_minpos = ref.values()[0]
    if ref.underflow == "saturate":
        nonzero = (a > 0) & ~np.isnan(a)
        assert np.all(q[nonzero] != 0), (spec, x[nonzero], q[nonzero])  # no underflow
        small = nonzero & (a <= exact_minpos * (1 - 1e-12))
        assert np.all(np.abs(q[small]) == minpos), (spec, x[small], q[small])
    else:
        flushed = a <= exact_minpos / 2 * (1 - 1e-12)
        assert np.all(q[flushed] == 0), (spec, x[flushed], q[flushed])
        kept = (a >= exact_minpos / 2 * (1 + 1e-12)) & ~np.isnan(a)
        assert np.all(q[kept] != 0), (spec, x[kept], q[kept])


@PROPERTY_SETTINGS
@given(format_and_inputs())
def test_log_error_bound(case):
    """For minpos ≤ |x| ≤ maxpos, |log2|Q(x)| − log2|x|| ≤ half the log gap of the bracketing codes."""
    spec, x = case
    ref = ref_from_spec(spec)
    q = impl(spec).quantize(x).astype(np.float64)
    v = ref.values()
    a = np.abs(x.astype(np.float64))
    inside = (a >= v[0]) & (a <= v[-1])
    for xi, qi in zip(a[inside], np.abs(q[inside])):
        i = min(int(np.searchsorted(v, xi, side="right")), ref.N - 1)  # v[i-1] <= xi <= v[i]
        gap = float(ref.t[i] - ref.t[i - 1])
        err = abs(math.log2(qi) - math.log2(xi))
        bound = gap / 2 if ref.round == "log" else gap
        assert err <= bound + 2.0**-20, (spec, xi, qi, err, gap)


# Every shifted sf is a new format to build, so the shift pool stays small (n <= 8).
SHIFT_POOL = tuple(s for s in POOL if int(s[3:s.index(",")]) <= 8)


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(st.sampled_from(SHIFT_POOL), st.integers(-24, 24), st.data())
def test_integer_sf_shift(spec, j, data):
    """Q_{sf+j}(x) = 2^(−j)·Q_sf(2^j·x) for integer j inside the float32 range (§4.5, §9.3)."""
    ref = ref_from_spec(spec)
    assume(Fraction(ref.sf + j) == ref.sf_q + j)  # sf + j exact in float64
    assume(fits_float32(ref.n, ref.es, ref.rs, ref.sf + j))
    shifted = lp_ref(ref.n, ref.es, ref.rs, ref.sf + j, ref.round, ref.underflow)
    _, x = data.draw(format_and_inputs(pool=(shifted.spec,)))
    with np.errstate(over="ignore"):
        y = np.ldexp(x, j).astype(np.float32)
    exact = np.isnan(x) | (np.ldexp(y.astype(np.float64), -j) == x.astype(np.float64))
    exact &= ~(np.isinf(y) & ~np.isinf(x))
    x, y = x[exact], y[exact]
    assume(x.size > 0)
    got = impl(shifted.spec).quantize(x)
    want = np.ldexp(impl(ref.spec).quantize(y).astype(np.float64), -j).astype(np.float32)
    assert_bits_equal(f"{shifted.spec} vs 2^-{j}·{spec}(2^{j}·x)", x, got, want)


@PROPERTY_SETTINGS
@given(format_and_inputs(pool=tuple(s for s in POOL if int(s[3:s.index(",")]) <= 12), max_size=8))
def test_float64_encode_is_exact(case):
    """float64 inputs are decided exactly (§5.1): compare with the scalar rational encoder."""
    spec, x32 = case
    ref = ref_from_spec(spec)
    rng = np.random.default_rng(int(x32.view(np.uint32).astype(np.uint64).sum()))
    x = x32.astype(np.float64) * (1 + rng.uniform(-1e-7, 1e-7, x32.size))
    got = impl(spec).encode(x)
    want = [ref.encode_exact(float(v)) for v in x]
    assert_codes_equal(f"{spec} float64 encode", x, got, want)
    assert_codes_equal(f"{spec} reference float64 table", x, ref.encode(x), want)


@PROPERTY_SETTINGS
@given(format_and_inputs(max_size=256))
def test_torch_cpu_equals_numpy(case):
    spec, x = case
    fmt = impl(spec)
    got = fmt.quantize(torch.from_numpy(x.copy()))
    assert_bits_equal(f"{spec} torch vs numpy", x, got.numpy(), fmt.quantize(x))
