"""Property tests of the baseline quantizers (BASELINE-FORMATS §1.1, §1.2, §5.4, §5.5).

Random formats, scales and float32 inputs (subnormals, +-0, +-inf, NaN included): monotone,
odd symmetry with the family's zero sign, idempotence, outputs in the scaled code book,
saturation, NaN propagation, the normative float32 scale evaluation of §1.2, exact
power-of-two scaling for integer sf, and the torch CPU path bit-exact against the numpy
reference (and the GPU path too when a GPU is present).
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lpq.formats import parse

F32 = np.float32

SPECS = [
    "int<2>", "int<4>", "int<8>", "int<16>", "uint<1>", "uint<4>", "uint<8>",
    "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1",
    "fp<1,0>", "fp<3,0>", "fp<1,3>", "fp<3,4>", "fp<4,3>", "fp<5,10>",
    "posit<2,0>", "posit<3,2>", "posit<5,1>", "posit<8,0>", "posit<8,2>", "posit<16,1>",
    "af<3,2>", "af<6,3>", "af<8,4>", "af<16,5>",
    "lns<2,0>", "lns<8,3>", "lns<10,5>",
    "flint<3>", "flint<5>", "flint<8>", "pot<2>", "pot<4>", "pot<6>",
    "uflint<2>", "uflint<4>", "upot<1>", "upot<3>",
]
SFS = [0.0, 1.0, -3.0, 7.0, 0.5, 3.25, -2.75, 0.3, -1.1]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def family(spec: str) -> str:
    return re.match(r"[a-z]+", spec).group(0)


def zero_sign(spec: str) -> str:
    """§1.1: 'keep' (sign-magnitude), 'plus' (int, posit, lns), 'unsigned'."""
    fam = family(spec)
    if fam in ("uint", "uflint", "upot", "uant"):
        return "unsigned"
    if fam in ("int", "posit", "lns"):
        return "plus"
    return "keep"


def sf_text(sf: float) -> str:
    """sf as printed in spec strings (shortest repr, no trailing '.0')."""
    text = repr(float(sf))
    return text[:-2] if text.endswith(".0") else text


@functools.lru_cache(maxsize=None)
def quantizer(spec: str, sf: float):
    return parse(spec if sf == 0 else f"{spec}@{sf_text(sf)}")


@functools.lru_cache(maxsize=None)
def scaled_book(spec: str, sf: float) -> np.ndarray:
    """{RN32(v * s)} for v in the unscaled code book, s = RN32(2^-sf) (§1.2 step 3)."""
    book = np.asarray(parse(spec).codebook()).astype(F32)
    s = F32(2.0**-sf)
    return np.unique(book * s)


WIDE = {"int<16>", "fp<5,10>", "posit<16,1>", "af<16,5>"}  # 16-bit: fewer scales (table build time)


def allowed_sfs(spec: str) -> list[float]:
    # AdaptivFloat's scale is an integer (pow2max, §2.4): with a fractional sf, an output at
    # the smallest normal can be flushed when re-quantized, so idempotence is not promised.
    sfs = [0.0, 3.0, -2.75] if spec in WIDE else SFS
    return [s for s in sfs if s == int(s)] if family(spec) == "af" else sfs


any_f32 = st.one_of(
    st.floats(width=32),  # everything: subnormals, +-0, +-inf, NaN
    st.floats(min_value=-600, max_value=600, width=32),  # dense near the code books
    st.sampled_from([0.5, 1.5, 2.5, 3.0, 0.25, 448.0, 464.0, 1.0625, 6.0, 7.0, 9.0, 11.0]),
)


def arrays(elements=any_f32):
    return hnp.arrays(F32, st.integers(1, 48), elements=elements)


@st.composite
def cases(draw, elements=any_f32, integer_sf=False):
    spec = draw(st.sampled_from(SPECS))
    sfs = [s for s in allowed_sfs(spec) if s == int(s)] if integer_sf else allowed_sfs(spec)
    sf = draw(st.sampled_from(sfs))
    x = draw(arrays(elements))
    return spec, sf, x


def bits(a: np.ndarray) -> np.ndarray:
    """float32 bit patterns with every NaN mapped to one pattern."""
    a = np.asarray(a, F32)
    return np.where(np.isnan(a), np.uint32(0x7FC00000), a.view(np.uint32))


def assert_bits_equal(got, want, context: str, x=None) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == F32 and got.shape == want.shape, f"{context}: dtype/shape {got.dtype} {got.shape}"
    bad = bits(got) != bits(want)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f"x={x.ravel()[i]!r}: " if x is not None else ""
        raise AssertionError(f"{context}: {where}got {got.ravel()[i]!r}, want {want.ravel()[i]!r}")


# ---------------------------------------------------------------------------------------------
@given(cases())
@SETTINGS
def test_torch_cpu_matches_numpy_reference(case):
    spec, sf, x = case
    q = quantizer(spec, sf)
    ref = q.quantize(x)
    assert isinstance(ref, np.ndarray) and ref.dtype == F32 and ref.shape == x.shape
    t = torch.from_numpy(x.copy())
    out = q.quantize(t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert out.shape == t.shape
    assert_bits_equal(out.numpy(), ref, f"{q.spec} torch cpu vs numpy", x)


@pytest.mark.parametrize("spec", SPECS)
def test_torch_shape_and_noncontiguous(spec):
    q = quantizer(spec, allowed_sfs(spec)[-1])
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 6, 5)) * 4).astype(F32)
    ref = q.quantize(x)
    assert ref.shape == x.shape
    t = torch.from_numpy(x).permute(2, 0, 1)  # non-contiguous view
    out = q.quantize(t)
    assert out.shape == t.shape
    assert_bits_equal(out.numpy(), np.transpose(ref, (2, 0, 1)), f"{q.spec} permuted tensor")
    x64 = x.astype(np.float64)
    out64 = q.quantize(x64)
    assert isinstance(out64, np.ndarray) and out64.dtype == np.float64 and out64.shape == x.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
@pytest.mark.parametrize("spec,sf", [(s, sf) for s in SPECS for sf in (0.0, 3.0, -2.75) if sf in allowed_sfs(s)])
def test_gpu_matches_numpy_reference(spec, sf):
    q = quantizer(spec, sf)
    rng = np.random.default_rng(7)
    prefix = np.arange(1 << 16, dtype=np.uint32) << 16
    lows = rng.integers(0, 1 << 16, prefix.size, dtype=np.uint32)
    x = np.concatenate([prefix, prefix | lows, prefix | 0xFFFF]).view(F32)
    out = q.quantize(torch.from_numpy(x).cuda())
    assert out.device.type == "cuda"
    assert_bits_equal(out.cpu().numpy(), q.quantize(x), f"{q.spec} cuda vs numpy")


@given(cases())
@SETTINGS
def test_monotone(case):
    spec, sf, x = case
    x = np.sort(x[~np.isnan(x)])
    q = quantizer(spec, sf).quantize(x)
    assert np.all(np.diff(q.astype(np.float64)) >= 0), f"{spec}@{sf}: not monotone on {x}"


@given(cases())
@SETTINGS
def test_odd_symmetry_and_zero_sign(case):
    spec, sf, x = case
    q = quantizer(spec, sf)
    pos, neg = q.quantize(x), q.quantize(-x)
    kind = zero_sign(spec)
    nan = np.isnan(x)
    if kind == "unsigned":
        neg_in = np.signbit(x) & ~nan
        assert np.all(bits(pos[neg_in]) == 0), f"{spec}: negative inputs must give +0.0"
        return
    assert np.array_equal(neg[~nan], -pos[~nan]), f"{q.spec}: quantize(-x) != -quantize(x)"
    for xs, qs in ((x, pos), (-x, neg)):
        zero = (qs == 0) & ~np.isnan(xs)
        if kind == "plus":
            assert not np.signbit(qs[zero]).any(), f"{q.spec}: zero results must be +0.0"
        else:
            assert np.array_equal(np.signbit(qs[zero]), np.signbit(xs[zero])), \
                f"{q.spec}: zero results must keep the input's sign"


@given(cases())
@SETTINGS
def test_idempotent(case):
    spec, sf, x = case
    q = quantizer(spec, sf)
    once = q.quantize(x)
    assert_bits_equal(q.quantize(once), once, f"{q.spec} idempotence", x)


@given(cases())
@SETTINGS
def test_outputs_in_scaled_codebook(case):
    spec, sf, x = case
    out = quantizer(spec, sf).quantize(x)
    finite = out[~np.isnan(out)]
    assert np.all(np.isin(np.abs(finite), scaled_book(spec, sf))), \
        f"{spec}@{sf}: {finite[~np.isin(np.abs(finite), scaled_book(spec, sf))]} not in the code book"
    assert not np.isinf(out).any(), "a baseline never outputs inf"


@given(cases())
@SETTINGS
def test_nan_propagates(case):
    spec, sf, x = case
    out = quantizer(spec, sf).quantize(x)
    assert np.array_equal(np.isnan(out), np.isnan(x))


@pytest.mark.parametrize("spec,sf", [(s, sf) for s in SPECS for sf in (0.0, 3.0, -2.75, 0.3) if sf in allowed_sfs(s)])
def test_saturation(spec, sf):
    """|x| beyond the largest value (and +-inf) gives +-RN32(max * s) (§1.1)."""
    q = quantizer(spec, sf)
    top = scaled_book(spec, sf)[-1]
    x = np.array([np.inf, np.finfo(F32).max, 1e30, 4 * top, np.nextafter(top, F32(np.inf))], F32)
    assert_bits_equal(q.quantize(x), np.full(x.size, top, F32), f"{q.spec} saturation", x)
    if zero_sign(spec) != "unsigned":
        assert_bits_equal(q.quantize(-x), np.full(x.size, -top, F32), f"{q.spec} saturation", -x)


@given(cases())
@SETTINGS
def test_scale_evaluation_is_float32_exact(case):
    """out = RN32(Q0(RN32(x * r)) * s), r = RN32(2^sf), s = RN32(2^-sf) (§1.2), Q0 = sf 0."""
    spec, sf, x = case
    r, s = F32(2.0**sf), F32(2.0**-sf)
    base = quantizer(spec, 0.0)
    want = base.quantize((x * r).astype(F32)) * s
    assert_bits_equal(quantizer(spec, sf).quantize(x), want.astype(F32), f"{spec}@{sf} vs §1.2", x)


@given(cases(elements=st.floats(min_value=2.0**-90, max_value=2.0**90, width=32), integer_sf=True),
       st.booleans())
@SETTINGS
def test_integer_sf_is_exact_power_of_two_scaling(case, negate):
    """Integer sf: quantize_sf(x) = 2^-sf * Q0(2^sf * x) exactly (§1.2, §5.4)."""
    spec, sf, x = case
    if negate:
        x = -x
    base = quantizer(spec, 0.0).quantize(np.ldexp(x, int(sf)).astype(F32))
    want = np.ldexp(base.astype(np.float64), -int(sf)).astype(F32)
    assert np.array_equal(want.astype(np.float64), np.ldexp(base.astype(np.float64), -int(sf)))
    assert_bits_equal(quantizer(spec, sf).quantize(x), want, f"{spec}@{sf} exact scaling", x)


SCALED = [("int<8>", 0.3), ("int<4>", 3.25), ("uint<4>", -1.1), ("fp8_e4m3", -2.75), ("fp8_e5m2", 0.5),
          ("fp4_e2m1", 0.3), ("fp<3,4>", -1.1), ("posit<8,2>", 3.25), ("posit<5,1>", -2.75), ("af<6,3>", 0.3),
          ("lns<8,3>", 0.3), ("flint<5>", -2.75), ("pot<4>", 0.5), ("uflint<4>", 3.25)]


@pytest.mark.parametrize("spec,sf", SCALED)
def test_scaled_decision_points_follow_section_1_2(spec, sf):
    """Around every scaled code-book value and value midpoint (and their float32 neighbours),
    a fractional sf gives exactly RN32(Q0(RN32(x * r)) * s) on numpy and torch CPU (§1.2, §5.4)."""
    book = np.asarray(parse(spec).codebook())
    pos = book[book > 0]
    pts = np.concatenate([pos, (pos[:-1] + pos[1:]) / 2, [pos[0] / 2]])
    s, r = F32(2.0**-sf), F32(2.0**sf)
    x = (pts * float(s)).astype(F32)
    up1 = np.nextafter(x, F32(np.inf))
    dn1 = np.nextafter(x, F32(0))
    x = np.concatenate([x, up1, dn1, np.nextafter(up1, F32(np.inf)), np.nextafter(dn1, F32(0))])
    x = np.concatenate([x, -x])
    want = (quantizer(spec, 0.0).quantize((x * r).astype(F32)) * s).astype(F32)
    q = quantizer(spec, sf)
    assert_bits_equal(q.quantize(x), want, f"{q.spec} numpy vs §1.2", x)
    assert_bits_equal(q.quantize(torch.from_numpy(x)).numpy(), want, f"{q.spec} torch vs §1.2", x)


@pytest.mark.parametrize("spec,sf", [("lns<8,3>", 0.0), ("int<8>", 0.3), ("fp8_e4m3", -2.75), ("posit<8,1>", 0.5),
                                     ("af<6,3>", -8.0), ("flint<5>", 3.25)])
def test_float64_input_gives_float32_codebook_values(spec, sf):
    """Outputs are float32 code-book values returned in the input's dtype (§1.1), evaluated in
    float32 (§1.2): a float64 input that is a float32 number gives the float32 result widened."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(512) * 30).astype(F32)
    q = quantizer(spec, sf)
    out64 = q.quantize(x.astype(np.float64))
    assert out64.dtype == np.float64
    want = q.quantize(x).astype(np.float64)
    bad = out64 != want
    assert not bad.any(), f"{q.spec}: float64 input {x[bad][:3]} gives {out64[bad][:3]}, float32 path {want[bad][:3]}"
    t64 = q.quantize(torch.from_numpy(x.astype(np.float64)))
    assert t64.dtype == torch.float64 and torch.equal(t64, torch.from_numpy(want))


@pytest.mark.parametrize("spec", SPECS)
def test_nan_and_specials(spec):
    q = quantizer(spec, 0.0)
    x = np.array([np.nan, -np.nan, 0.0, -0.0], F32)
    out = q.quantize(x)
    assert np.isnan(out[:2]).all()
    assert out[2] == 0 and not np.signbit(out[2])
    assert out[3] == 0 and np.signbit(out[3]) == (zero_sign(spec) == "keep")
