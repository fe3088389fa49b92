"""Error messages of the baseline formats (BASELINE-FORMATS §1.1, §1.2, §3).

Bad spec strings and parameters raise ValueError naming the parameter, the value and the
allowed range; code books outside the float32 normal range fail naming the format; encode(NaN)
for a family without a NaN code fails naming the format; NaN-code families return their code.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from lpq.formats import parse

F32 = np.float32

# (spec, parameter, value text, violated bound text)
BAD_PARAMETERS = [
    ("int<1>", "n", "1", "2"),
    ("int<17>", "n", "17", "16"),
    ("uint<0>", "n", "0", "1"),
    ("uint<17>", "n", "17", "16"),
    ("fp<0,3>", "e", "0", "1"),
    ("fp<8,1>", "e", "8", "7"),
    ("fp<3,-1>", "m", "-1", "0"),
    ("posit<1,0>", "n", "1", "2"),
    ("posit<17,1>", "n", "17", "16"),
    ("posit<8,-1>", "es", "-1", "0"),
    ("af<8,1>", "e", "1", "2"),
    ("af<8,8>", "e", "8", "7"),
    ("af<17,4>", "n", "17", "16"),
    ("lns<1,0>", "n", "1", "2"),
    ("lns<17,0>", "n", "17", "16"),
    ("lns<8,7>", "f", "7", "6"),
    ("lns<8,-1>", "f", "-1", "0"),
    ("flint<2>", "n", "2", "3"),
    ("flint<9>", "n", "9", "8"),
    ("pot<1>", "n", "1", "2"),
    ("pot<7>", "n", "7", "6"),
    ("ant<2>", "n", "2", "3"),
    ("ant<9>", "n", "9", "8"),
    ("uflint<1>", "n", "1", "2"),
    ("uflint<8>", "n", "8", "7"),
    ("upot<0>", "n", "0", "1"),
    ("upot<6>", "n", "6", "5"),
    ("uant<1>", "n", "1", "2"),
    ("uant<8>", "n", "8", "7"),
]


@pytest.mark.parametrize("spec,param,value,bound", BAD_PARAMETERS)
def test_bad_parameter_names_parameter_value_and_range(spec, param, value, bound):
    with pytest.raises(ValueError) as err:
        parse(spec)
    msg = str(err.value)
    assert re.search(rf"(?<![A-Za-z_]){param}(?![A-Za-z_])", msg), f"{spec}: {msg!r} does not name {param}"
    assert re.search(rf"(?<![\d.]){re.escape(value)}(?![\d.])", msg), f"{spec}: {msg!r} lacks the value {value}"
    assert re.search(rf"(?<![\d.]){re.escape(bound)}(?![\d.])", msg), f"{spec}: {msg!r} lacks the bound {bound}"


@pytest.mark.parametrize("spec", ["fp<5,11>", "fp<7,9>"])
def test_fp_total_width(spec):
    """1 + e + m <= 16."""
    with pytest.raises(ValueError, match="16"):
        parse(spec)


@pytest.mark.parametrize("spec", ["posit<16,4>", "posit<12,4>", "lns<12,0>", "lns<10,1>",
                                  "lns<9,0>", "af<9,8>", "af<16,10>"])
def test_code_book_outside_float32_range_names_the_format(spec):
    with pytest.raises(ValueError) as err:
        parse(spec)
    family = spec.split("<")[0]
    assert family in str(err.value).lower(), f"{spec}: {err.value!r} does not name the format"


@pytest.mark.parametrize("spec", ["int<8>@127", "int<8>@-126.5", "fp8_e4m3@1000"])
def test_scale_outside_float32_range(spec):
    """r and s must be normal float32 numbers: |sf| <= 126 (§1.2)."""
    with pytest.raises(ValueError, match="126|sf|scale"):
        parse(spec)


@pytest.mark.parametrize("spec", ["int<8>@nan", "int<8>@inf", "int<8>@", "int<8>@x", "foo<4>", "int<4", "int<a>",
                                  "fp8_e4m4", "int<4,2>", "fp<3>", "posit<8>", "", "lp<4>@1"])
def test_malformed_spec_strings(spec):
    with pytest.raises(ValueError):
        parse(spec)


@pytest.mark.parametrize("text,canonical", [
    ("int<4>@3.25", "int<4>@3.25"),
    ("fp8_e4m3@-2", "fp8_e4m3@-2"),
    ("fp8_e4m3@-2.0", "fp8_e4m3@-2"),
    ("af<6,3>@-8", "af<6,3>@-8"),
    ("INT<8>", "int<8>"),
    ("posit< 8 , 2 >", "posit<8,2>"),
    ("FP8_E5M2", "fp8_e5m2"),
    ("fp<4,3>", "fp<4,3>"),
    ("lns<10,3>@0.5", "lns<10,3>@0.5"),
])
def test_canonical_spec(text, canonical):
    f = parse(text)
    assert f.spec == canonical
    assert parse(f.spec).spec == canonical


def test_sf_attribute():
    assert parse("int<4>@3.25").sf == 3.25
    assert parse("fp8_e4m3@-2").sf == -2
    assert parse("int<4>").sf == 0


NO_NAN_CODE = ["int<8>", "uint<4>", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1", "fp<4,3>", "fp<5,2>", "af<6,3>",
               "flint<5>", "pot<4>", "uflint<4>", "upot<3>"]


@pytest.mark.parametrize("spec", NO_NAN_CODE)
def test_encode_nan_without_nan_code_names_the_format(spec):
    f = parse(spec)
    with pytest.raises(ValueError) as err:
        f.encode(np.array([1.0, np.nan], F32))
    assert f.spec in str(err.value), f"{spec}: {err.value!r} does not name the format"
    assert np.isnan(f.quantize(np.array([np.nan], F32)))[0]  # quantize still propagates NaN


@pytest.mark.parametrize("spec,codes", [
    ("fp8_e4m3", {0x7F, 0xFF}),
    ("fp8_e5m2", {0x7F, 0xFF}),
    ("posit<8,0>", {0x80}),
    ("posit<16,1>", {0x8000}),
    ("posit<5,2>", {0x10}),
    ("lns<8,3>", {0xC0}),  # S = 1, L = -2^(n-2)
    ("lns<10,3>", {0x300}),
])
def test_encode_nan_gives_nan_code(spec, codes):
    f = parse(spec)
    got = f.encode(np.array([np.nan, -np.nan], F32))
    assert {int(c) for c in got} <= codes
    assert np.isnan(np.asarray(f.decode(got))).all()


def test_lns_zero_code():
    """lns: S = 0 with L = -2^(n-2) is zero; +-0 both encode to it (single zero, +0.0)."""
    f = parse("lns<8,3>")
    assert [int(c) for c in f.encode(np.array([0.0, -0.0], F32))] == [0x40, 0x40]
    out = f.decode(np.array([0x40], np.uint8))
    assert out[0] == 0 and not np.signbit(out[0])
