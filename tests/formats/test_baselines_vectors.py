"""The oracle and project vectors of BASELINE-FORMATS §4.1 and §4.2, verbatim.

Inputs are float32; "brief inputs" are float32(0.1), float32(-0.3), float32(1.7), 300,
float32(1e-5). Expected outputs are compared bit for bit as float32 (so the sign of zero is
checked: sign-magnitude families keep the input's sign, int/posit/lns give +0, §1.1), codes as
integers; every quantize check runs on both the numpy reference and the torch CPU path.
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest
import torch

from lpq.formats import calibrate_sf, parse

F32 = np.float32
NAN, INF = float("nan"), float("inf")
BRIEF = [0.1, -0.3, 1.7, 300, 1e-5]


@functools.lru_cache(maxsize=None)
def fmt(spec: str):
    return parse(spec)


def x32(values) -> np.ndarray:
    return np.array(values, dtype=F32)


def check_quantize(spec: str, inputs, outputs) -> None:
    """quantize(inputs) == outputs bit for bit (NaN matches NaN), numpy and torch CPU."""
    x = x32(inputs)
    want = x32(outputs)
    f = fmt(spec)
    for path, got in (("numpy", f.quantize(x)), ("torch", f.quantize(torch.from_numpy(x.copy())).numpy())):
        got = np.asarray(got)
        assert got.dtype == F32 and got.shape == x.shape, f"{spec} {path}: dtype/shape"
        for xi, gi, wi in zip(x, got, want):
            ok = (np.isnan(gi) and np.isnan(wi)) or (gi.view(np.uint32) == wi.view(np.uint32))
            assert ok, f"{spec} ({path}): quantize({xi!r}) = {gi!r}, want {wi!r}"


def check_codes(spec: str, inputs, codes) -> None:
    f = fmt(spec)
    got = np.asarray(f.encode(x32(inputs)))
    assert got.dtype == (np.uint8 if f.bits <= 8 else np.uint16)
    assert [int(c) for c in got] == list(codes), f"{spec}: encode{list(inputs)} = {[hex(c) for c in got]}, " \
        f"want {[hex(c) for c in codes]}"
    decoded = np.asarray(f.decode(np.array(codes, dtype=got.dtype)))
    assert np.array_equal(decoded.astype(F32), fmt(spec).quantize(x32(inputs)), equal_nan=True)


# ---------------------------------------------------------------------------------------------
# §4.1 OCP floats
# ---------------------------------------------------------------------------------------------
OCP_BRIEF = {
    "fp8_e4m3": ([0.1015625, -0.3125, 1.75, 288, 0], [0x1D, 0xAA, 0x3E, 0x79, 0x00]),
    "fp8_e5m2": ([0.09375, -0.3125, 1.75, 320, 1.52587890625e-05], [0x2E, 0xB5, 0x3F, 0x5D, 0x01]),
    "fp4_e2m1": ([0, -0.5, 1.5, 6, 0], [0x0, 0x9, 0x3, 0x7, 0x0]),
    "fp6_e2m3": ([0.125, -0.25, 1.75, 7.5, 0], [0x01, 0x22, 0x0E, 0x1F, 0x00]),
    "fp6_e3m2": ([0.125, -0.3125, 1.75, 28, 0], [0x02, 0x25, 0x0F, 0x1F, 0x00]),
}


@pytest.mark.parametrize("spec", list(OCP_BRIEF))
def test_ocp_brief_inputs(spec):
    values, codes = OCP_BRIEF[spec]
    check_quantize(spec, BRIEF, values)
    check_codes(spec, BRIEF, codes)


SPECIALS_IN = [448, 464, 465, 480, 1e4, INF, NAN, -0.0, 2**-10, 3 * 2**-10, 1.0625]
SPECIALS_ML = {
    "fp8_e4m3": [448, 448, NAN, NAN, NAN, NAN, NAN, -0.0, 0, 0.00390625, 1.0],
    "fp8_e5m2": [448, 448, 448, 512, 10240, INF, NAN, -0.0, 0.0009765625, 0.0029296875, 1.0],
}
SPECIALS_SAT = {
    "fp8_e4m3": [448, 448, 448, 448, 448, 448, NAN, -0.0, 0, 0.00390625, 1.0],
    "fp8_e5m2": [448, 448, 448, 512, 10240, 57344, NAN, -0.0, 0.0009765625, 0.0029296875, 1.0],
}


@pytest.mark.parametrize("spec", list(SPECIALS_SAT))
def test_ocp_overflow_and_specials(spec):
    check_quantize(spec, SPECIALS_IN, SPECIALS_SAT[spec])


@pytest.mark.parametrize("spec", list(SPECIALS_ML))
def test_ml_dtypes_oracle_column(spec):
    """The oracle itself: ml_dtypes astype is non-saturating (e4m3fn -> NaN, e5m2 -> inf), and
    clipping to +-max first gives the saturating column."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    mtype, mx = {"fp8_e4m3": (ml_dtypes.float8_e4m3fn, 448), "fp8_e5m2": (ml_dtypes.float8_e5m2, 57344)}[spec]
    x = x32(SPECIALS_IN)
    np.testing.assert_array_equal(x.astype(mtype).astype(F32), x32(SPECIALS_ML[spec]))
    np.testing.assert_array_equal(np.clip(x, -mx, mx).astype(mtype).astype(F32), x32(SPECIALS_SAT[spec]))


TIES_IN = [1.0625, 0.25, 2.5, 5, 464, 480, 1e4, INF, NAN]
TIES_EVEN = {
    "fp8_e4m3": [1.0, 0.25, 2.5, 5.0, 448, 448, 448, 448, NAN],
    "fp8_e5m2": [1.0, 0.25, 2.5, 5.0, 448, 512, 10240, 57344, NAN],
    "fp4_e2m1": [1.0, 0.0, 2.0, 4.0, 6, 6, 6, 6, NAN],
    "fp6_e2m3": [1.0, 0.25, 2.5, 5.0, 7.5, 7.5, 7.5, 7.5, NAN],
    "fp6_e3m2": [1.0, 0.25, 2.5, 5.0, 28, 28, 28, 28, NAN],
    # §4.2: generic fp has no NaN code and a larger max
    "fp<4,3>": [1.0, 0.25, 2.5, 5.0, 448, 480, 480, 480, NAN],
    "fp<5,2>": [1.0, 0.25, 2.5, 5.0, 448, 512, 10240, 114688, NAN],
}


@pytest.mark.parametrize("spec", list(TIES_EVEN))
def test_tie_behaviour(spec):
    check_quantize(spec, TIES_IN, TIES_EVEN[spec])


def test_fp4_fp6_grid():
    inputs = [0.25, 0.75, 1.25, 2.5, 3.5, 5, 7, 1e4, -1e4]
    check_quantize("fp4_e2m1", inputs, [0, 1, 1, 2, 4, 4, 6, 6, -6])
    check_quantize("fp6_e2m3", inputs, [0.25, 0.75, 1.25, 2.5, 3.5, 5, 7, 7.5, -7.5])


def test_fp34_brief_inputs():
    check_quantize("fp<3,4>", BRIEF, [0.09375, -0.296875, 1.6875, 31, 0])


# ---------------------------------------------------------------------------------------------
# §4.1 posits
# ---------------------------------------------------------------------------------------------
POSIT_BRIEF = {
    "posit<8,0>": ([0.09375, -0.296875, 1.6875, 64, 0.015625], [0x06, 0xED, 0x56, 0x7F, 0x01]),
    "posit<16,1>": (
        [0.100006103515625, -0.29998779296875, 1.699951171875, 300, 1.0013580322265625e-05],
        [0x14CD, 0xDCCD, 0x4B33, 0x7C2C, 0x0035],
    ),
    "posit<8,2>": ([0.1015625, -0.3125, 1.75, 256, 1.52587890625e-05], [0x25, 0xCE, 0x46, 0x70, 0x04]),
    "posit<8,1>": ([0.1015625, -0.296875, 1.6875, 256, 0.000244140625], None),
    "posit<6,2>": ([0.09375, -0.25, 1.5, 256, 1.52587890625e-05], None),
}


@pytest.mark.parametrize("spec", list(POSIT_BRIEF))
def test_posit_brief_inputs(spec):
    values, codes = POSIT_BRIEF[spec]
    check_quantize(spec, BRIEF, values)
    if codes is not None:
        check_codes(spec, BRIEF, codes)


def test_posit82_edges():
    x = [2**21, 2**22, 2**22 * 1.001, 1e30, 1e-30, 1 + 1 / 64, 1 + 3 / 64]
    check_quantize("posit<8,2>", x, [2**20, 2**20, 2**24, 2**24, 2**-24, 1, 1])
    assert int(fmt("posit<8,2>").encode(x32([2**22]))[0]) == 0x7E  # tie -> even code


def test_posit80_edges():
    x = [100, 1e-9, -1e-9, 1 + 1 / 64, 1 + 3 / 64]
    check_quantize("posit<8,0>", x, [64, 2**-6, -(2**-6), 1, 1.0625])
    codes = fmt("posit<8,0>").encode(x32([1 + 1 / 64, 1 + 3 / 64]))
    assert [int(c) for c in codes] == [0x40, 0x42]  # ties -> even codes


# ---------------------------------------------------------------------------------------------
# §4.1 integers
# ---------------------------------------------------------------------------------------------
def test_int8_at_6_brief_inputs():
    """microxcaling int8, round='even' (sign-magnitude fixed point, 6 fraction bits)."""
    check_quantize("int<8>@6", BRIEF, [0.09375, -0.296875, 1.703125, 1.984375, 0])


def test_int4_at_2_brief_inputs():
    check_quantize("int<4>@2", BRIEF, [0, -0.25, 1.75, 1.75, 0])


def test_int8_at_1_equals_torch_fake_quantize():
    """torch.fake_quantize_per_tensor_affine with scale 0.5 equals int<8>@1."""
    check_quantize("int<8>@1", [0.75, 63.75], [1.0, 63.5])
    x = torch.tensor([0.75, 63.75, -0.75, -100.0, 0.25])
    ref = torch.fake_quantize_per_tensor_affine(x, 0.5, 0, -127, 127)
    assert torch.equal(fmt("int<8>@1").quantize(x), ref)


# ---------------------------------------------------------------------------------------------
# §4.1 LNS (xlns, F = 3)
# ---------------------------------------------------------------------------------------------
def pow2_exact(q: float) -> mpmath.mpf:
    with mpmath.workprec(200):
        return mpmath.power(2, mpmath.mpf(q))


def rn32_pow2(q: float) -> float:
    """2^q rounded once to float32 (§1.1: code-book values are computed exactly, rounded once)."""
    with mpmath.workprec(24):
        return float(+pow2_exact(q))


def lns_code(n: int, sign: int, L: int) -> int:
    return (sign << (n - 1)) | (L % 2 ** (n - 1))


def test_lns10_3_brief_inputs():
    Ls = [-27, -14, 6, 66, -133]
    signs = [0, 1, 0, 0, 0]
    listed = [0.09638817659, -0.2973017788, 1.681792831, 304.4370214, 9.894100606e-06]
    exact = [(-1) ** s * float(pow2_exact(L / 8)) for s, L in zip(signs, Ls)]
    np.testing.assert_allclose(exact, listed, rtol=1e-9)
    want = [(-1) ** s * rn32_pow2(L / 8) for s, L in zip(signs, Ls)]
    check_quantize("lns<10,3>", BRIEF, want)
    check_codes("lns<10,3>", BRIEF, [lns_code(10, s, L) for s, L in zip(signs, Ls)])


def test_lns8_3_saturates():
    exact = [float(pow2_exact(63 / 8)), float(pow2_exact(-63 / 8))]
    np.testing.assert_allclose(exact, [234.7530351, 0.004259795831], rtol=1e-9)
    want = [rn32_pow2(63 / 8), rn32_pow2(-63 / 8)]
    check_quantize("lns<8,3>", [300, 1e-5], want)
    check_codes("lns<8,3>", [300, 1e-5], [lns_code(8, 0, 63), lns_code(8, 0, -63)])


# ---------------------------------------------------------------------------------------------
# §4.2 AdaptivFloat
# ---------------------------------------------------------------------------------------------
AF_ROWS = [
    # (format, inputs (the calibration tensor), pow2max sf, outputs)
    ("af<6,3>", [0.1, -0.3, 1.7, 300, 1e-5, 7.9, 8, 10, 11, 13, 460], -8,
     [0, -0.0, 0, 320, 0, 0, 8, 10, 12, 12, 448]),
    ("af<6,3>", [0.02, 0.03, 0.0312, 0.0313, -0.05, 0.1, 0.3, 0.7, 1.0, 1.3, 1.9], 0,
     [0, 0, 0, 0.03125, -0.046875, 0.09375, 0.3125, 0.75, 1, 1.25, 1.75]),
    ("af<8,4>", BRIEF, -8, [0.1015625, -0.3125, 1.75, 288, 0]),
    ("af<4,2>", [0.1, -0.3, 1.7, 300, 1e-5, 100, 150, 200], -8, [0, -0.0, 0, 256, 0, 0, 128, 192]),
]


@pytest.mark.parametrize("spec,inputs,sf,outputs", AF_ROWS)
def test_af_rows(spec, inputs, sf, outputs):
    assert calibrate_sf(fmt(spec), x32(inputs), "pow2max") == sf
    check_quantize(f"{spec}@{sf}" if sf else spec, inputs, outputs)


def test_af63_at_m8_range():
    f = fmt("af<6,3>@-8")
    assert f.min_positive == 8 and f.max == 448


# ---------------------------------------------------------------------------------------------
# §4.2 integers and ANT types
# ---------------------------------------------------------------------------------------------
def test_int8_at_1_rows():
    check_quantize("int<8>@1", [0.75, 63.75, -100, 0.25, -0.25, 0.2], [1.0, 63.5, -63.5, 0, 0, 0])


def test_uint4_at_0_rows():
    check_quantize("uint<4>@0", [-1, 0.4, 0.5, 1.5, 2.5, 20], [0, 0, 0, 2, 2, 15])
    check_codes("uint<4>", [-1, 0.4, 0.5, 1.5, 2.5, 20], [0, 0, 0, 2, 2, 15])


FLINT5_IN = [5.4, 9, 11, 13, 20, 40, 50, 100, -0.4, 0.5]


def test_flint5_rows():
    check_quantize("flint<5>@0", FLINT5_IN, [5, 8, 12, 12, 16, 32, 64, 64, -0.0, 0])
    # sign-magnitude, B = 4: w = 5, 8 (8), 10 (12), 10, 12 (16), 14 (32), 15 (64), 15, -0, +0
    check_codes("flint<5>", FLINT5_IN, [0x05, 0x08, 0x0A, 0x0A, 0x0C, 0x0E, 0x0F, 0x0F, 0x10, 0x00])


POT4_IN = [0.4, 0.5, 0.6, 3, 5, 6, 7, 100, -3]


def test_pot4_rows():
    check_quantize("pot<4>@0", POT4_IN, [0, 0, 1, 2, 4, 8, 8, 64, -2])
    # sign-magnitude, B = 3: magnitude 2^(w-1)
    check_codes("pot<4>", POT4_IN, [0x0, 0x0, 0x1, 0x2, 0x3, 0x4, 0x4, 0x7, 0xA])
