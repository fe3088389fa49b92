"""Unsigned variants (lpq/formats/unsigned.py) against independent references, over every code for n <= 8.

- ulp<n,es,rs,sf>: a from-scratch decoder of the n magnitude bits (regime run capped at rs, es exponent bits,
  log fraction; LP-FORMAT §3 fields read without a sign bit) and a brute-force log-domain nearest quantizer (ties to
  the even code, saturating, never underflowing unless underflow=flush);
- ufp<e,m>: a from-scratch decoder (bias 2^(e-1)-1, subnormals, no specials) and a brute-force value-nearest
  quantizer (ties to the even code, saturating);
- every family: the non-negative half of the (n+1)-bit signed format (values, codes, quantization of x >= 0) and
  +0 for every negative input; the fast path (torch) equal to the reference at every threshold and its float32
  neighbours.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from lpq.formats import is_unsigned, parse, unsigned_variant


def threshold_neighbours(fmt, steps: int) -> np.ndarray:
    """Every float32 decision threshold of fmt's unscaled grid and `steps` float32 neighbours on each side."""
    thr = np.asarray(fmt.table(np.float32).thresholds, np.float32)
    thr = thr[np.isfinite(thr) & (thr > 0)]
    out, lo, hi = [thr], thr, thr
    for _ in range(steps):
        lo, hi = np.nextafter(lo, np.float32(0)), np.nextafter(hi, np.float32(np.inf))
        out += [lo, hi]
    return np.concatenate(out)


def _ulp_value(code: int, n: int, es: int, rs: int, sf: float) -> float:
    """Independent decoder: the n bits are regime | exponent | log fraction (no sign bit)."""
    if code == 0:
        return 0.0
    bits = [(code >> (n - 1 - i)) & 1 for i in range(n)]
    r0, m, pos = bits[0], 0, 0
    while pos < n and m < rs and bits[pos] == r0:
        m += 1
        pos += 1
    if m < rs:
        pos += 1  # terminator
    rest = bits[pos:] if pos < n else []
    ebits = rest[:es]
    e = 0
    for b in ebits:
        e = 2 * e + b
    e <<= es - len(ebits)
    fbits = rest[es:]
    f = 0
    for b in fbits:
        f = 2 * f + b
    k = m - 1 if r0 else -m
    t = Fraction(k * (1 << es) + e) + Fraction(f, 1 << len(fbits))
    return float(t) - sf  # log2 of the value


def _ulp_reference(x: np.ndarray, n: int, es: int, rs: int, sf: float, flush: bool) -> np.ndarray:
    logs = np.array([_ulp_value(c, n, es, rs, sf) for c in range(1, 1 << n)])
    order = np.argsort(logs)
    logs, codes = logs[order], np.arange(1, 1 << n)[order]
    assert np.all(np.diff(logs) > 0)
    out = np.zeros_like(x, dtype=np.float64)
    for i, v in enumerate(x.astype(np.float64)):
        if not v > 0:
            continue
        lv = math.log2(v)
        if flush and lv < logs[0] - 1:  # below minpos/2: zero
            continue
        if flush and lv == logs[0] - 1:
            continue  # the tie at minpos/2 goes to the even code 0
        d = np.abs(logs - lv)
        best = np.flatnonzero(d == d.min())
        j = best[0] if len(best) == 1 else next(b for b in best if codes[b] % 2 == 0)
        out[i] = 2.0 ** logs[j]
    return out.astype(np.float32)


def _ufp_values(e: int, m: int) -> np.ndarray:
    bias = (1 << (e - 1)) - 1
    vals = []
    for code in range(1 << (e + m)):
        E, M = code >> m, code & ((1 << m) - 1)
        vals.append((M / (1 << m)) * 2.0 ** (1 - bias) if E == 0 else (1 + M / (1 << m)) * 2.0 ** (E - bias))
    return np.array(vals)


def _ufp_reference(x: np.ndarray, e: int, m: int) -> np.ndarray:
    vals = _ufp_values(e, m)
    out = np.zeros(x.shape, np.float64)
    for i, v in enumerate(x.astype(np.float64)):
        if not v > 0:
            continue
        if v >= vals[-1]:  # saturate (a float64 distance would round to a false tie far above max)
            out[i] = vals[-1]
            continue
        d = np.abs(vals - v)
        best = np.flatnonzero(d == d.min())
        j = best[0] if len(best) == 1 else next(b for b in best if b % 2 == 0)
        out[i] = vals[j]
    return out.astype(np.float32)


def _bits_equal(a, b) -> bool:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.array_equal(a.view(np.uint32), b.view(np.uint32))


def _probe(fmt) -> np.ndarray:
    near = threshold_neighbours(fmt, 2)
    book = fmt.codebook().astype(np.float32)
    rng = np.random.default_rng(fmt.bits)
    rand = (np.exp2(rng.uniform(-30, 30, 400))).astype(np.float32)
    return np.concatenate([near, book, rand, np.float32([0.0, 1e-45, 3e38])])


ULP_CASES = [(n, es, rs, sf, flush) for n in (1, 2, 3, 4, 5, 6, 8) for es in range(0, min(3, n) + 1)
             for rs in range(1, n + 1) for sf, flush in ((0.0, False), (0.75, False), (-1.25, True))
             if not (n >= 6 and rs not in (1, 2, n - 1, n))]


@pytest.mark.parametrize("n,es,rs,sf,flush", ULP_CASES)
def test_ulp_every_code_and_threshold(n, es, rs, sf, flush):
    spec = f"ulp<{n},{es},{rs},{sf}" + (",underflow=flush>" if flush else ">")
    fmt = parse(spec)
    assert fmt.bits == n and not fmt.signed
    codes = np.arange(1 << n)
    got = fmt.decode(codes)
    want = np.array([0.0] + [2.0 ** _ulp_value(c, n, es, rs, sf) for c in range(1, 1 << n)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    x = _probe(fmt) if n <= 6 or rs in (1, n) else _probe(fmt)[::7]
    assert _bits_equal(fmt.quantize(x), _ulp_reference(x, n, es, rs, sf, flush))
    assert _bits_equal(fmt.quantize(-x), np.zeros_like(x))  # negative inputs give +0


@pytest.mark.parametrize("e,m", [(1, 0), (1, 3), (2, 2), (3, 1), (2, 4), (4, 4), (3, 5)])
def test_ufp_every_code_and_threshold(e, m):
    fmt = parse(f"ufp<{e},{m}>")
    assert fmt.bits == e + m
    np.testing.assert_array_equal(fmt.decode(np.arange(1 << (e + m))), _ufp_values(e, m))
    x = _probe(fmt)
    assert _bits_equal(fmt.quantize(x), _ufp_reference(x, e, m))
    assert _bits_equal(fmt.quantize(-x), np.zeros_like(x))


HALF_OF = [("ulp<4,1,3,0.5>", "lp<5,1,3,0.5>"), ("ulp<3,0,3,0,round=linear>", "lp<4,0,3,0,round=linear>"),
           ("ufp<2,2>", "fp<2,2>"), ("ufp<4,4>@3", "fp<4,4>@3"), ("uposit<4,1>", "posit<5,1>"),
           ("uposit<8,2>", "posit<9,2>"), ("uaf<4,2>", "af<5,2>"), ("uaf<6,3>@-2", "af<7,3>@-2"),
           ("ulns<4,1>", "lns<5,1>"), ("ulns<8,3>", "lns<9,3>"), ("uint<4>", "int<5>"), ("uint<8>@2.5", "int<9>@2.5")]


@pytest.mark.parametrize("uspec,sspec", HALF_OF)
def test_non_negative_half_of_the_wider_signed_format(uspec, sspec):
    u, s = parse(uspec), parse(sspec)
    assert u.bits == s.bits - 1 and u.spec == uspec
    assert np.array_equal(u.codebook(), s.codebook()[s.codebook() >= 0])
    codes = np.arange(1 << u.bits)
    assert np.array_equal(u.decode(codes), s.decode(codes), equal_nan=True)  # af: unused patterns decode to NaN
    x = _probe(u)
    assert _bits_equal(u.quantize(x), s.quantize(x))
    assert np.array_equal(u.encode(x), s.encode(x).astype(u.encode(x).dtype))
    assert _bits_equal(u.quantize(-x), np.zeros_like(x))
    assert np.all(u.encode(-x[x > 0]) == u.encode(np.float32([0.0]))[0])


@pytest.mark.parametrize("spec", ["ulp<4,1,3,0.5>", "ulp<8,2,5,-1,underflow=flush>", "ufp<2,2>", "ufp<4,4>@3",
                                  "uposit<6,1>", "uaf<5,2>@1", "ulns<6,2>", "uint<4>"])
@pytest.mark.parametrize("scale", [None, 0.375])
def test_fast_path_bit_exact(spec, scale):
    fmt = parse(spec)
    x = _probe(fmt)
    x = np.concatenate([x, -x, np.float32([0.0, -0.0])])
    ref = fmt.quantize(x, scale=scale)
    fast = fmt.quantize(torch.from_numpy(x), scale=scale).numpy()
    assert _bits_equal(ref, fast)
    assert not np.signbit(fast).any()  # -0.0 and negatives come out as +0


def test_unsigned_variant_mapping():
    cases = {"lp<4,*,*,*>": "ulp<4,*,*,*>", "lp<4,1,2,0.5,underflow=flush>": "ulp<4,1,2,0.5,underflow=flush>",
             "int<4>": "uint<4>", "int<8>@3": "uint<8>@3", "fp4_e2m1": "ufp<2,2>", "fp8_e4m3": "ufp<4,4>",
             "fp8_e5m2@1.5": "ufp<5,3>@1.5", "fp<3,2>": "ufp<3,3>", "posit<4,1>": "uposit<4,1>", "af<4,2>": "uaf<4,2>",
             "lns<6,2>": "ulns<6,2>", "ant<4>": "uant<4>", "flint<4>": "uflint<4>", "pot<4>": "upot<4>",
             "uint<4>": "uint<4>", "ulp<4,1,2,0>": "ulp<4,1,2,0>", "none": "none"}
    for signed, unsigned in cases.items():
        assert unsigned_variant(signed) == unsigned
        assert is_unsigned(unsigned) or unsigned == "none"
        if "*" not in unsigned and unsigned != "none" and "ant<" not in unsigned:
            assert parse(unsigned).bits == parse(signed).bits  # same width
    assert not is_unsigned("fp8_e4m3") and not is_unsigned("lp<4,1,2,0>")


@pytest.mark.parametrize("bad,match", [("ulp<4,1,5,0>", "rs=5 is invalid for ulp<4"),
                                       ("ulp<16,1,3,0>", "n=16 is invalid for ulp"),
                                       ("ulp<4,1,3,0>@2", "no '@' scale"),
                                       ("ulns<4,4>", "non-negative half of lns<5,4>"),
                                       ("uaf<4,1>", "non-negative half of af<5,1>")])
def test_errors_name_the_parameter(bad, match):
    with pytest.raises(ValueError, match=match):
        parse(bad)
    with pytest.raises(ValueError, match="has no unsigned variant"):
        unsigned_variant("foo<4>")
