"""LP encoding, thresholds and fast paths against the exact reference (LP-FORMAT §5, §6, §8.4–§8.6, §9.2, §9.4)."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np
import pytest

from .lp_reference import (
    F32, F64, LARGE_SAMPLE, REPRESENTATIVE, assert_bits_equal, assert_codes_equal, both_signs,
    codes_dtype, f32_bits, from_f32_bits, grid_sfs, grid_triples, impl, lp_ref, ref_from_spec,
    with_neighbours,
)

torch = pytest.importorskip("torch")
CUDA = torch.cuda.is_available()


def close10(got: float, want: float) -> bool:
    return math.isclose(got, want, rel_tol=6e-10)


def neg_code(n: int, code: int) -> int:
    return ((1 << n) - code) % (1 << n)


# ---------------------------------------------------------------------------------------------
# §8.4 encode examples (default rule): (x, format, code, t of result, quantize(x))
# ---------------------------------------------------------------------------------------------
VECTORS_8_4 = [
    (3.0, "lp<8,1,3,0>", 0x59, "1.5625", "2.953652292"),
    (3.0, "lp<8,1,3,1.5>", 0x69, "3.125", "3.084421651"),
    (-0.3, "lp<8,2,2,2>", 0xBE, "0.25", "-0.2973017788"),
    (0.1, "lp<8,1,3,0>", 0x15, "-3.375", "0.09638817659"),
    (1.7, "lp<8,1,3,0>", 0x4C, "0.75", "1.681792831"),
    (300.0, "lp<8,2,7,0>", 0x70, "8", "256"),
    (1e-5, "lp<8,2,7,0>", 0x04, "-16", "1.525878906e-05"),
    (100.0, "lp<8,1,3,0>", 0x7F, "5.875", "58.68825877"),
    (math.inf, "lp<8,1,3,0>", 0x7F, "5.875", "58.68825877"),
    (-math.inf, "lp<8,1,3,0>", 0x81, "5.875", "-58.68825877"),
    (1e-4, "lp<8,1,3,0>", 0x01, "-5.875", "0.01703918332"),
    (1e-30, "lp<8,1,3,0>", 0x01, "-5.875", "0.01703918332"),
    (-1e-30, "lp<8,1,3,0>", 0xFF, "-5.875", "-0.01703918332"),
    (math.nan, "lp<8,1,3,0>", 0x80, None, "nan"),
    (0.0, "lp<8,1,3,0>", 0x00, None, "0"),
    (-0.0, "lp<8,1,3,0>", 0x00, None, "0"),
    (2.0**22, "lp<8,2,7,0>", 0x7E, "20", "1048576"),
    (-(2.0**22), "lp<8,2,7,0>", 0x82, "20", "-1048576"),
    (4194304.5, "lp<8,2,7,0>", 0x7F, "24", "16777216"),
    (2.0**-22, "lp<8,2,7,0>", 0x02, "-20", "9.536743164e-07"),
    (1.0, "lp<5,1,3,0.25>", 0x08, "0", "0.8408964153"),
    (1.0, "lp<5,1,3,0.75>", 0x0A, "1", "1.189207115"),
    (4.0, "lp<5,1,3,0.5>", 0x0C, "2", "2.828427125"),
    (0.7071, "lp<4,1,2,0>", 0x03, "-1", "0.5"),
    (0.708, "lp<4,1,2,0>", 0x04, "0", "1"),
]


def _check_vector(x: float, spec: str, code: int, value: str, t: str | None):
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    if t is not None:
        assert ref.t_of(code) == Fraction(t)
    for dtype in (np.float32, np.float64):
        xs = np.array([x], dtype)
        got = fmt.encode(xs)
        assert got.dtype == codes_dtype(ref.n)
        assert int(got[0]) == code, (spec, dtype, x, hex(int(got[0])), hex(code))
        assert ref.encode(xs)[0] == code
        q = fmt.quantize(xs)
        assert isinstance(q, np.ndarray) and q.dtype == dtype
        assert_bits_equal(f"{spec} quantize({x!r}) {np.dtype(dtype)}", xs, q, ref.quantize(xs))
        if value == "nan":
            assert np.isnan(q[0])
        else:  # a float32 code-book value (§5.5) of the printed 10-digit value
            assert math.isclose(float(q[0]), float(value), rel_tol=2.0**-23), (spec, x, q[0], value)
    if code not in (0, ref.nar):
        assert close10(float(ref.decode([code])[0]), float(value)), (spec, code, value)
    if not (isinstance(x, float) and math.isnan(x)):
        assert ref.encode_exact(x) == code


@pytest.mark.parametrize("x,spec,code,t,value", VECTORS_8_4,
                         ids=[f"{v[1]}-{v[0]!r}" for v in VECTORS_8_4])
def test_encode_examples_8_4(x, spec, code, t, value):
    _check_vector(x, spec, code, value, t)


def test_zero_output_is_positive_zero():
    """quantize(±0) is +0.0 (§5.5: LP has a single zero)."""
    fmt = impl("lp<8,1,3,0>")
    for dtype in (np.float32, np.float64):
        q = fmt.quantize(np.array([0.0, -0.0], dtype))
        assert not np.any(np.signbit(q)), q
    q = fmt.quantize(torch.tensor([0.0, -0.0]))
    assert not torch.any(torch.signbit(q))


# ---------------------------------------------------------------------------------------------
# §8.5 option examples: (x, format, code, quantize(x))
# ---------------------------------------------------------------------------------------------
VECTORS_8_5 = [
    (0.708, "lp<4,1,2,0>", 0x04, "1"),
    (0.708, "lp<4,1,2,0,round=linear>", 0x03, "0.5"),
    (0.74, "lp<4,1,2,0>", 0x04, "1"),
    (0.74, "lp<4,1,2,0,round=linear>", 0x03, "0.5"),
    (0.76, "lp<4,1,2,0>", 0x04, "1"),
    (0.76, "lp<4,1,2,0,round=linear>", 0x04, "1"),
    (8912896.0, "lp<8,2,7,0>", 0x7F, "16777216"),
    (8912896.0, "lp<8,2,7,0,round=linear>", 0x7E, "1048576"),
    (8912897.0, "lp<8,2,7,0,round=linear>", 0x7F, "16777216"),
    (0.0625, "lp<4,1,2,0>", 0x01, "0.125"),
    (0.0625, "lp<4,1,2,0,underflow=flush>", 0x00, "0"),
    (0.0626, "lp<4,1,2,0,underflow=flush>", 0x01, "0.125"),
    (-0.03, "lp<4,1,2,0>", 0x0F, "-0.125"),
    (-0.03, "lp<4,1,2,0,underflow=flush>", 0x00, "0"),
    (0.0085, "lp<8,1,3,0>", 0x01, "0.01703918332"),
    (0.0085, "lp<8,1,3,0,underflow=flush>", 0x00, "0"),
    (0.0086, "lp<8,1,3,0,underflow=flush>", 0x01, "0.01703918332"),
]


@pytest.mark.parametrize("x,spec,code,value", VECTORS_8_5, ids=[f"{v[1]}-{v[0]!r}" for v in VECTORS_8_5])
def test_option_examples_8_5(x, spec, code, value):
    _check_vector(x, spec, code, value, None)


def test_flush_negative_gives_positive_zero():
    q = impl("lp<4,1,2,0,underflow=flush>").quantize(np.float32([-0.03, -0.0625, -1e-40]))
    assert np.all(q == 0) and not np.any(np.signbit(q)), q


def test_minpos_half_in_linear_flush():
    """Flush applies in both rounding modes; the tie at exactly minpos/2 goes to code 0 (§5.4)."""
    fmt = impl("lp<4,1,2,0,round=linear,underflow=flush>")
    x = np.float32([0.0625, np.nextafter(np.float32(0.0625), np.float32(1)), -0.0625])
    assert list(fmt.encode(x)) == [0x00, 0x01, 0x00]


# ---------------------------------------------------------------------------------------------
# §8.6 float32 thresholds: (format, lower code, upper code, midpoint t, θ, θ bits, float32 below θ)
# ---------------------------------------------------------------------------------------------
VECTORS_8_6 = [
    ("lp<8,1,3,0>", 0x3F, 0x40, "-0.03125", "0.978572071", 0x3F7A83B3, "0.978572011"),
    ("lp<8,1,3,0>", 0x40, 0x41, "0.03125", "1.0218972", 0x3F82CD87, "1.02189708"),
    ("lp<8,1,3,0>", 0x7E, 0x7F, "5.8125", "56.2000694", 0x4260CCDF, "56.2000656"),
    ("lp<8,1,3,0.5>", 0x40, 0x41, "0.03125", "0.722590446", 0x3F38FBB0, "0.722590387"),
    ("lp<8,2,7,0>", 0x7E, 0x7F, "22", "4194304.5", 0x4A800001, "4194304"),
    ("lp<8,2,7,0>", 0x01, 0x02, "-22", "2.38418579e-07", 0x34800000, "2.38418565e-07"),
    ("lp<4,1,2,0>", 0x03, 0x04, "-0.5", "0.707106829", 0x3F3504F4, "0.707106769"),
]


@pytest.mark.parametrize("spec,lo,hi,mid,theta,bits,below", VECTORS_8_6,
                         ids=[f"{v[0]}-{v[1]:#x}" for v in VECTORS_8_6])
def test_thresholds_8_6(spec, lo, hi, mid, theta, bits, below):
    ref = ref_from_spec(spec)
    assert (ref.t[lo - 1] + ref.t[hi - 1]) / 2 == Fraction(mid)
    th = from_f32_bits(np.uint32(bits))
    assert math.isclose(float(th), float(theta), rel_tol=1e-8)
    prev = np.nextafter(th, np.float32(0))
    assert math.isclose(float(prev), float(below), rel_tol=1e-8)
    assert int(f32_bits(ref.thresholds(F32)[lo - 1])) == bits  # θ_i with i = lower code
    fmt = impl(spec)
    x = np.array([th, prev, -th, -prev], np.float32)
    want = [hi, lo, neg_code(ref.n, hi), neg_code(ref.n, lo)]
    assert_codes_equal(f"{spec} encode around θ", x, fmt.encode(x), want)
    assert int(np.asarray(fmt.thresholds(np.float32), np.float32)[lo - 1].view(np.uint32)) == bits


# ---------------------------------------------------------------------------------------------
# §9.2 every threshold of every §9.1 format: encode(θ_i) = i+1, encode(prev(θ_i)) = i, both signs
# ---------------------------------------------------------------------------------------------
TRIPLES = grid_triples()
CASES = TRIPLES + list(LARGE_SAMPLE)
CASE_IDS = [f"n{n}-es{es}-rs{rs}" for n, es, rs in TRIPLES] + [
    f"n{n}-es{es}-rs{rs}-sf{sf}" for n, es, rs, sf in LARGE_SAMPLE]


def formats_for(case):
    if len(case) == 4:
        return [lp_ref(*case)]
    n, es, rs = case
    return [lp_ref(n, es, rs, sf) for sf in grid_sfs(n, es, rs)]


def threshold_inputs(ref, kind):
    """(inputs, expected codes): θ_i → i+1 and the float just below → i, both signs."""
    th = ref.thresholds(kind).astype(kind.dtype)
    upper = np.arange(2, ref.N + 1) if ref.underflow == "saturate" else np.arange(1, ref.N + 1)
    below = np.nextafter(th, kind.dtype(0))
    x = np.concatenate([th, below])
    codes = np.concatenate([upper, upper - 1])
    x = np.concatenate([x, -x])
    codes = np.concatenate([codes, ((1 << ref.n) - codes) % (1 << ref.n)])
    return x, codes


def _threshold_check(case, kind):
    for ref in formats_for(case):
        x, want = threshold_inputs(ref, kind)
        assert_codes_equal(f"{ref.spec} reference table", x, ref.encode(x), want)
        assert_codes_equal(f"{ref.spec} encode at thresholds ({kind.name})", x, impl(ref.spec).encode(x), want)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_thresholds_float32(case):
    _threshold_check(case, F32)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_thresholds_float64(case):
    """Decisions are exact for float64 inputs too (§5.1)."""
    _threshold_check(case, F64)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_threshold_table_matches_reference(case):
    for ref in formats_for(case):
        got = np.asarray(impl(ref.spec).thresholds(np.float32))
        want = ref.thresholds(F32)
        assert_bits_equal(f"{ref.spec} thresholds(float32)", np.arange(len(want)), got.astype(np.float32), want)


@pytest.mark.parametrize("spec", REPRESENTATIVE)
def test_thresholds_with_options(spec):
    """Linear and flush thresholds (§5.4, §6), float32 and float64 inputs, and the table itself."""
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    for kind in (F32, F64):
        x, want = threshold_inputs(ref, kind)
        assert_codes_equal(f"{spec} encode at thresholds ({kind.name})", x, fmt.encode(x), want)
    got = np.asarray(fmt.thresholds(np.float32)).astype(np.float32)
    assert_bits_equal(f"{spec} thresholds(float32)", np.arange(got.size), got, ref.thresholds(F32))


@pytest.mark.parametrize("spec", REPRESENTATIVE)
def test_reference_table_agrees_with_exact_encoder(spec):
    """Oracle self-check: the §6 table and the exact scalar rule of §5.1/§5.4 agree."""
    ref = ref_from_spec(spec)
    rng = np.random.default_rng(7)
    for kind in (F32, F64):
        x, want = threshold_inputs(ref, kind)
        pick = np.arange(x.size) if x.size <= 200 else rng.choice(x.size, 200, replace=False)
        for i in pick:
            assert ref.encode_exact(float(x[i])) == want[i], (spec, kind.name, float(x[i]), want[i])


# ---------------------------------------------------------------------------------------------
# §5.3 ties: x = 2^p with p + sf = m_i go to the even code, both signs, float32 and float64
# ---------------------------------------------------------------------------------------------
TIE_FORMATS = ["lp<8,2,7,0>", "lp<5,1,3,0.25>", "lp<5,1,3,0.75>", "lp<5,1,3,0.5>", "lp<8,1,3,0.03125>",
               "lp<6,3,4,0>", "lp<8,2,2,0.0625>", "lp<12,3,9,0.125>", "lp<16,2,15,0>", "lp<4,1,2,0.5>",
               "lp<8,2,7,0,underflow=flush>"]


@pytest.mark.parametrize("spec", TIE_FORMATS)
def test_ties_to_even(spec):
    ref = ref_from_spec(spec)
    xs, want = [], []
    for i, m in enumerate(ref.midpoints(), start=1):
        d = m - ref.sf_q
        if d.denominator != 1:
            continue
        x = math.ldexp(1.0, int(d))
        even = i if i % 2 == 0 else i + 1
        xs += [x, -x]
        want += [even, neg_code(ref.n, even)]
        assert ref.encode_exact(x) == even
    if not xs:
        pytest.skip(f"{spec} has no exact ties")
    fmt = impl(spec)
    for dtype in (np.float32, np.float64):
        x = np.array(xs, dtype)
        assert_codes_equal(f"{spec} ties ({np.dtype(dtype)})", x, fmt.encode(x), want)


# ---------------------------------------------------------------------------------------------
# Specials and API (§5.1, §5.5)
# ---------------------------------------------------------------------------------------------
def special_inputs(ref, kind=F32) -> np.ndarray:
    d = kind.dtype
    fi = np.finfo(d)
    tiny_sub = np.nextafter(d(0), d(1))
    base = [0.0, tiny_sub, fi.tiny, fi.max, np.inf, np.nan]
    vals = ref.values(kind)
    for v in (vals[0], vals[-1], vals[0] / 2):
        base.append(v)
    x = np.array(base, d)
    nb = []
    with np.errstate(over="ignore"):
        for v in x[np.isfinite(x)]:
            a = b = v
            for _ in range(4):
                a, b = np.nextafter(a, d(0)), np.nextafter(b, d(np.inf))
                nb += [a, b]
    x = np.concatenate([x, np.array(nb, d)])
    return np.concatenate([x, -x])


@pytest.mark.parametrize("spec", REPRESENTATIVE)
def test_specials(spec):
    """±0, ±min subnormal, ±max float, ±inf, NaN, minpos, maxpos and neighbours (§5.1, §9.4)."""
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    for kind in (F32, F64):
        x = special_inputs(ref, kind)
        assert_codes_equal(f"{spec} encode specials ({kind.name})", x, fmt.encode(x), ref.encode(x))
        assert_bits_equal(f"{spec} quantize specials ({kind.name})", x, fmt.quantize(x), ref.quantize(x))
    nan = fmt.encode(np.float32([np.nan]))
    assert int(nan[0]) == ref.nar
    big = fmt.encode(np.float32([np.inf, -np.inf, 3e38, -3e38]))
    assert list(big) == [ref.N, neg_code(ref.n, ref.N)] * 2
    small = fmt.encode(np.float32([1e-45, -1e-45]))
    want_small = [0, 0] if ref.underflow == "flush" else [1, neg_code(ref.n, 1)]
    assert list(small) == want_small


@pytest.mark.parametrize("spec", ["lp<4,1,2,0>", "lp<8,1,3,0.5>", "lp<9,1,3,0.5>", "lp<16,1,4,-2.25>"])
def test_encode_output_dtype_and_shape(spec):
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    for dtype in (np.float32, np.float64):
        got = fmt.encode(x.astype(dtype))
        assert got.shape == x.shape and got.dtype == codes_dtype(ref.n)
        assert_codes_equal(spec, x.ravel(), got.ravel(), ref.encode(x.astype(dtype).ravel()))


@pytest.mark.parametrize("spec", ["lp<8,1,3,0.5>", "lp<16,1,4,-2.25>", "lp<6,2,3,0,round=linear>"])
def test_quantize_keeps_type_shape_dtype(spec):
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 5, 7)) * 4).astype(np.float32)
    q = fmt.quantize(x)
    assert isinstance(q, np.ndarray) and q.shape == x.shape and q.dtype == np.float32
    assert_bits_equal(spec, x.ravel(), q.ravel(), ref.quantize(x.ravel()))
    q64 = fmt.quantize(x.astype(np.float64))
    assert q64.dtype == np.float64 and q64.shape == x.shape
    assert_bits_equal(spec, x.ravel(), q64.ravel(), ref.quantize(x.astype(np.float64).ravel()))
    xt = torch.from_numpy(x.copy())
    qt = fmt.quantize(xt)
    assert isinstance(qt, torch.Tensor) and qt.shape == xt.shape and qt.dtype == torch.float32
    assert qt.device == xt.device
    assert_bits_equal(spec, x.ravel(), qt.numpy().ravel(), ref.quantize(x.ravel()))
    # non-contiguous input
    xnc = xt.transpose(0, 2)
    qnc = fmt.quantize(xnc)
    assert qnc.shape == xnc.shape
    assert_bits_equal(spec + " non-contiguous", x.ravel(), qnc.contiguous().numpy().ravel(),
                      ref.quantize(xnc.contiguous().numpy().ravel()))
    # 0-d and empty inputs
    assert fmt.quantize(np.array(1.5, np.float32)).shape == ()
    assert fmt.quantize(np.zeros((0, 3), np.float32)).shape == (0, 3)


SCALES = [0.5, 4.0, 3.0, 0.75, 2.0**-20]


@pytest.mark.parametrize("spec", ["lp<8,1,3,0.5>", "lp<6,2,3,0,round=linear>", "lp<8,1,3,0,underflow=flush>",
                                  "lp<16,1,4,-2.25>"])
@pytest.mark.parametrize("scale", SCALES)
def test_quantize_scale(spec, scale):
    """quantize(x, scale=s): y = RN32(x·RN32(1/s)); out = RN32(Q(y)·s), numpy and torch CPU."""
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(4096) * np.exp2(rng.uniform(-8, 8, 4096)) * scale).astype(np.float32)
    x[:6] = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45]
    inv = np.float32(1.0 / scale)
    with np.errstate(over="ignore", invalid="ignore"):
        y = (x * inv).astype(np.float32)
        want = (ref.quantize(y) * np.float32(scale)).astype(np.float32)
    assert_bits_equal(f"{spec} scale={scale} numpy", x, fmt.quantize(x, scale=scale), want)
    got_t = fmt.quantize(torch.from_numpy(x.copy()), scale=scale)
    assert_bits_equal(f"{spec} scale={scale} torch", x, got_t.numpy(), want)


@pytest.mark.parametrize("j", [-3, 1, 5])
def test_quantize_power_of_two_scale_is_sf_shift(j):
    """scale = 2^j multiplies the grid: equals the format with sf − j."""
    a = impl("lp<8,1,3,0.5>")
    b = impl(lp_ref(8, 1, 3, 0.5 - j).spec)
    x = np.exp2(np.random.default_rng(5).uniform(-20, 20, 2048)).astype(np.float32)
    x = both_signs(x)
    assert_bits_equal("scale 2^j", x, a.quantize(x, scale=2.0**j), b.quantize(x))


# ---------------------------------------------------------------------------------------------
# §9.4 fast paths: torch CPU (and CUDA when present) bit-identical to the threshold-table reference
# ---------------------------------------------------------------------------------------------
def stratified_sweep(seed: int = 2024) -> np.ndarray:
    """Every upper-16-bit prefix with low halves {0, 1, 0x7fff, 0x8000, 0xffff, seeded random}."""
    rand = int(np.random.default_rng(seed).integers(0, 1 << 16))
    prefix = np.arange(1 << 16, dtype=np.uint32) << np.uint32(16)
    lows = np.array([0x0000, 0x0001, 0x7FFF, 0x8000, 0xFFFF, rand], np.uint32)
    return from_f32_bits((prefix[:, None] | lows[None, :]).ravel())


@functools.lru_cache(maxsize=None)
def _sweep() -> np.ndarray:
    return stratified_sweep()


def fastpath_inputs(spec: str) -> dict[str, np.ndarray]:
    ref = ref_from_spec(spec)
    th = ref.thresholds(F32)
    return {
        "thresholds±4": both_signs(with_neighbours(th, 4)),
        "specials": special_inputs(ref, F32),
        "stratified sweep": _sweep(),
    }


def _fastpath_compare(spec: str, device: str):
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    for name, x in fastpath_inputs(spec).items():
        want = ref.quantize(x)
        got_np = fmt.quantize(x)
        assert_bits_equal(f"{spec} numpy reference vs exact reference [{name}]", x, got_np, want)
        xt = torch.from_numpy(x.copy()).to(device)
        got_t = fmt.quantize(xt)
        assert got_t.device.type == device and got_t.dtype == torch.float32
        assert_bits_equal(f"{spec} torch {device} [{name}]", x, got_t.cpu().numpy(), want)
        if name != "stratified sweep":
            assert_codes_equal(f"{spec} encode [{name}]", x, fmt.encode(x), ref.encode(x))


@pytest.mark.parametrize("spec", REPRESENTATIVE)
def test_fastpath_torch_cpu_bit_exact(spec):
    _fastpath_compare(spec, "cpu")


@pytest.mark.parametrize("spec", ["lp<8,1,3,0.5>", "lp<16,1,4,-2.25>", "lp<6,2,3,0,round=linear>",
                                  "lp<8,2,7,0,underflow=flush>", "lp<7,1,6,116,underflow=flush>"])
def test_fastpath_torch_cpu_float64(spec):
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    th = ref.thresholds(F64)
    x = np.concatenate([th, np.nextafter(th, 0), np.nextafter(th, np.inf), special_inputs(ref, F64)])
    x = both_signs(x)
    want = ref.quantize(x)
    assert_bits_equal(f"{spec} numpy float64", x, fmt.quantize(x), want)
    got = fmt.quantize(torch.from_numpy(x.copy()))
    assert got.dtype == torch.float64
    assert_bits_equal(f"{spec} torch cpu float64", x, got.numpy(), want)


@pytest.mark.parametrize("spec", REPRESENTATIVE)
@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_fastpath_cuda_bit_exact(spec):
    _fastpath_compare(spec, "cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("scale", [None, 0.75, 4.0])
def test_cuda_matches_cpu_with_scale(scale):
    fmt = impl("lp<8,1,3,0.5>")
    x = torch.from_numpy(_sweep().copy())
    cpu = fmt.quantize(x, scale=scale)
    gpu_out = fmt.quantize(x.cuda(), scale=scale)
    assert gpu_out.device.type == "cuda"
    assert_bits_equal("cuda vs cpu", x.numpy(), gpu_out.cpu().numpy(), cpu.numpy())
