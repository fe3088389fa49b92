"""LP decoding against the exact reference and the spec vectors (LP-FORMAT §3, §4, §8.1–§8.3, §9.1)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from .lp_reference import (
    F32, F64, LARGE_SAMPLE, all_codes, assert_bits_equal, assert_codes_equal, codes_dtype,
    decode_fields, f_max_closed_form, field_table, fits_float32, grid_sfs, grid_triples, impl,
    lns_log_values, lp_ref, ref_from_spec, signed_order, t_closed_form,
)

torch = pytest.importorskip("torch")


def spec_of(n: int, es: int, rs: int, sf: float) -> str:
    return lp_ref(n, es, rs, sf).spec


def close10(got: float, want: float) -> bool:
    """Equal to the 10 significant digits the spec prints."""
    return math.isclose(got, want, rel_tol=6e-10, abs_tol=0.0)


def parse_num(text: str) -> float:
    return float(text.replace("−", "-"))


# ---------------------------------------------------------------------------------------------
# §8.1 / §8.2: every code of lp<4,1,2,0> and lp<5,1,3,0>, copied verbatim from the spec
# ---------------------------------------------------------------------------------------------
TABLE_8_1 = """
| 0000 | 0x00 | | | | | | | | 0 |
| 0001 | 0x01 | + | 0001 | 00 (cap) | -2 | 1 | – (0) | -3 | 0.125 |
| 0010 | 0x02 | + | 0010 | 01 | -1 | 0 | – (0) | -2 | 0.25 |
| 0011 | 0x03 | + | 0011 | 01 | -1 | 1 | – (0) | -1 | 0.5 |
| 0100 | 0x04 | + | 0100 | 10 | 0 | 0 | – (0) | 0 | 1 |
| 0101 | 0x05 | + | 0101 | 10 | 0 | 1 | – (0) | 1 | 2 |
| 0110 | 0x06 | + | 0110 | 11 (cap) | 1 | 0 | – (0) | 2 | 4 |
| 0111 | 0x07 | + | 0111 | 11 (cap) | 1 | 1 | – (0) | 3 | 8 |
| 1000 | 0x08 | | | | | | | | NaR |
| 1001 | 0x09 | - | 0111 | 11 (cap) | 1 | 1 | – (0) | 3 | -8 |
| 1010 | 0x0a | - | 0110 | 11 (cap) | 1 | 0 | – (0) | 2 | -4 |
| 1011 | 0x0b | - | 0101 | 10 | 0 | 1 | – (0) | 1 | -2 |
| 1100 | 0x0c | - | 0100 | 10 | 0 | 0 | – (0) | 0 | -1 |
| 1101 | 0x0d | - | 0011 | 01 | -1 | 1 | – (0) | -1 | -0.5 |
| 1110 | 0x0e | - | 0010 | 01 | -1 | 0 | – (0) | -2 | -0.25 |
| 1111 | 0x0f | - | 0001 | 00 (cap) | -2 | 1 | – (0) | -3 | -0.125 |
"""

TABLE_8_2 = """
| 00000 | 0x00 | | | | | | | | 0 |
| 00001 | 0x01 | + | 00001 | 000 (cap) | -3 | 1 | – (0) | -5 | 0.03125 |
| 00010 | 0x02 | + | 00010 | 001 | -2 | 0 | – (0) | -4 | 0.0625 |
| 00011 | 0x03 | + | 00011 | 001 | -2 | 1 | – (0) | -3 | 0.125 |
| 00100 | 0x04 | + | 00100 | 01 | -1 | 0 | 0 (1) | -2 | 0.25 |
| 00101 | 0x05 | + | 00101 | 01 | -1 | 0 | 1 (1) | -1.5 | 0.3535533906 |
| 00110 | 0x06 | + | 00110 | 01 | -1 | 1 | 0 (1) | -1 | 0.5 |
| 00111 | 0x07 | + | 00111 | 01 | -1 | 1 | 1 (1) | -0.5 | 0.7071067812 |
| 01000 | 0x08 | + | 01000 | 10 | 0 | 0 | 0 (1) | 0 | 1 |
| 01001 | 0x09 | + | 01001 | 10 | 0 | 0 | 1 (1) | 0.5 | 1.414213562 |
| 01010 | 0x0a | + | 01010 | 10 | 0 | 1 | 0 (1) | 1 | 2 |
| 01011 | 0x0b | + | 01011 | 10 | 0 | 1 | 1 (1) | 1.5 | 2.828427125 |
| 01100 | 0x0c | + | 01100 | 110 | 1 | 0 | – (0) | 2 | 4 |
| 01101 | 0x0d | + | 01101 | 110 | 1 | 1 | – (0) | 3 | 8 |
| 01110 | 0x0e | + | 01110 | 111 (cap) | 2 | 0 | – (0) | 4 | 16 |
| 01111 | 0x0f | + | 01111 | 111 (cap) | 2 | 1 | – (0) | 5 | 32 |
| 10000 | 0x10 | | | | | | | | NaR |
| 10001 | 0x11 | - | 01111 | 111 (cap) | 2 | 1 | – (0) | 5 | -32 |
| 10010 | 0x12 | - | 01110 | 111 (cap) | 2 | 0 | – (0) | 4 | -16 |
| 10011 | 0x13 | - | 01101 | 110 | 1 | 1 | – (0) | 3 | -8 |
| 10100 | 0x14 | - | 01100 | 110 | 1 | 0 | – (0) | 2 | -4 |
| 10101 | 0x15 | - | 01011 | 10 | 0 | 1 | 1 (1) | 1.5 | -2.828427125 |
| 10110 | 0x16 | - | 01010 | 10 | 0 | 1 | 0 (1) | 1 | -2 |
| 10111 | 0x17 | - | 01001 | 10 | 0 | 0 | 1 (1) | 0.5 | -1.414213562 |
| 11000 | 0x18 | - | 01000 | 10 | 0 | 0 | 0 (1) | 0 | -1 |
| 11001 | 0x19 | - | 00111 | 01 | -1 | 1 | 1 (1) | -0.5 | -0.7071067812 |
| 11010 | 0x1a | - | 00110 | 01 | -1 | 1 | 0 (1) | -1 | -0.5 |
| 11011 | 0x1b | - | 00101 | 01 | -1 | 0 | 1 (1) | -1.5 | -0.3535533906 |
| 11100 | 0x1c | - | 00100 | 01 | -1 | 0 | 0 (1) | -2 | -0.25 |
| 11101 | 0x1d | - | 00011 | 001 | -2 | 1 | – (0) | -3 | -0.125 |
| 11110 | 0x1e | - | 00010 | 001 | -2 | 0 | – (0) | -4 | -0.0625 |
| 11111 | 0x1f | - | 00001 | 000 (cap) | -3 | 1 | – (0) | -5 | -0.03125 |
"""


def table_rows(table: str) -> list[dict]:
    rows = []
    for line in table.strip().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        binary, hexcode, sign, p, regime, k, e, f, t, value = cells
        row = {"code": int(hexcode, 16), "binary": binary, "value": value}
        if sign:
            fbits, F = f.split(" ")
            row.update(sign=1 if sign == "+" else -1, p=int(p, 2), regime=regime.split(" ")[0],
                       capped="(cap)" in regime, k=int(k), e=int(e),
                       f=None if fbits == "–" else int(fbits, 2), F=int(F.strip("()")),
                       t=Fraction(t))
        rows.append(row)
    return rows


ROWS_8_1 = [("lp<4,1,2,0>", r) for r in table_rows(TABLE_8_1)]
ROWS_8_2 = [("lp<5,1,3,0>", r) for r in table_rows(TABLE_8_2)]


@pytest.mark.parametrize("spec,row", ROWS_8_1 + ROWS_8_2,
                         ids=[f"{s}-{r['binary']}" for s, r in ROWS_8_1 + ROWS_8_2])
def test_reference_fields_match_8_1_8_2(spec, row):
    """The oracle itself reproduces every field of the §8.1/§8.2 tables."""
    ref = ref_from_spec(spec)
    n = ref.n
    assert int(row["binary"], 2) == row["code"]
    if "sign" not in row:
        assert row["code"] in (0, ref.nar)
        return
    fl = decode_fields(n, ref.es, ref.rs, row["p"])
    body = format(row["p"], f"0{n - 1}b")
    assert body[: fl.regime_bits] == row["regime"]
    assert fl.capped == row["capped"]
    assert (fl.k, fl.e, fl.F) == (row["k"], row["e"], row["F"])
    assert fl.f == (row["f"] or 0)
    assert fl.t == row["t"] == ref.t_of(row["code"])
    assert ref.decode([row["code"]])[0] == pytest.approx(parse_num(row["value"]), rel=6e-10)


@pytest.mark.parametrize("spec,table", [("lp<4,1,2,0>", TABLE_8_1), ("lp<5,1,3,0>", TABLE_8_2)])
def test_decode_every_code_8_1_8_2(spec, table):
    rows = table_rows(table)
    ref = ref_from_spec(spec)
    codes = np.array([r["code"] for r in rows], codes_dtype(ref.n))
    got = impl(spec).decode(codes)
    assert got.dtype == np.float64
    for r, v in zip(rows, got):
        if r["value"] == "NaR":
            assert np.isnan(v), (spec, hex(r["code"]), v)
        else:
            assert close10(float(v), parse_num(r["value"])), (spec, hex(r["code"]), v, r["value"])
    assert_bits_equal(f"{spec} decode", codes, got, ref.decode(codes))


# ---------------------------------------------------------------------------------------------
# §8.3 decode examples: (format, code, k, e, f, F, t, value)
# ---------------------------------------------------------------------------------------------
VECTORS_8_3 = [
    ("lp<8,1,3,0>", 0x6B, 1, 1, 0b011, 3, "3.375", "10.37471644"),
    ("lp<8,1,3,0>", 0x75, 2, 0, 0b101, 3, "4.625", "24.67537321"),
    ("lp<8,2,2,2>", 0xD6, -1, 1, 0b010, 3, "-2.75", "-0.03716272234"),
    ("lp<6,2,3,0>", 0x01, -3, 1, 0, 0, "-11", "0.00048828125"),
    ("lp<6,1,1,0>", 0x16, 0, 0, 0b110, 3, "0.75", "1.681792831"),
    ("lp<8,2,7,0>", 0x7F, 6, 0, 0, 0, "24", "16777216"),
    ("lp<8,2,7,0>", 0x01, -6, 0, 0, 0, "-24", "5.960464478e-08"),
    ("lp<8,1,3,1.5>", 0x6B, 1, 1, 0b011, 3, "3.375", "3.668016173"),
    ("lp<6,3,4,0>", 0x1F, 3, 4, 0, 0, "28", "268435456"),
    ("lp<6,3,4,0>", 0x1E, 3, 0, 0, 0, "24", "16777216"),
    ("lp<2,0,1,0.75>", 0x1, 0, 0, 0, 0, "0", "0.5946035575"),
    ("lp<2,0,1,0.75>", 0x3, 0, 0, 0, 0, "0", "-0.5946035575"),
    ("lp<16,1,4,-2.25>", 0x5A3C, 0, 1, 0b101000111100, 12, "1.6396484375", "14.82179671"),
    ("lp<8,0,7,0>", 0x53, 0, 0, 0b10011, 5, "0.59375", "1.509164428"),
    ("lp<8,1,3,0>", 0x81, 2, 1, 0b111, 3, "5.875", "-58.68825877"),
    ("lp<8,1,3,0>", 0xFF, -3, 0, 0b001, 3, "-5.875", "-0.01703918332"),
]
# t − sf column of §8.3 where the spec prints it.
T_MINUS_SF_8_3 = {("lp<8,2,2,2>", 0xD6): "-4.75", ("lp<8,1,3,1.5>", 0x6B): "1.875",
                  ("lp<2,0,1,0.75>", 0x1): "-0.75", ("lp<16,1,4,-2.25>", 0x5A3C): "3.8896484375"}


@pytest.mark.parametrize("spec,code,k,e,f,F,t,value", VECTORS_8_3,
                         ids=[f"{v[0]}-{v[1]:#x}" for v in VECTORS_8_3])
def test_decode_examples_8_3(spec, code, k, e, f, F, t, value):
    ref = ref_from_spec(spec)
    sign, p = (-1, (1 << ref.n) - code) if code >> (ref.n - 1) else (1, code)
    fl = decode_fields(ref.n, ref.es, ref.rs, p)
    assert (fl.k, fl.e, fl.f, fl.F, fl.t) == (k, e, f, F, Fraction(t))
    if (spec, code) in T_MINUS_SF_8_3:
        assert fl.t - ref.sf_q == Fraction(T_MINUS_SF_8_3[spec, code])
    got = impl(spec).decode(np.array([code], codes_dtype(ref.n)))
    assert close10(float(got[0]), float(value)), (spec, hex(code), got[0], value)
    assert_bits_equal(f"{spec} decode", [code], got, ref.decode([code]))


def test_decode_nar_and_zero_8_3():
    fmt = impl("lp<8,1,3,0>")
    got = fmt.decode(np.array([0x80, 0x00], np.uint8))
    assert np.isnan(got[0]) and got[1] == 0.0


# ---------------------------------------------------------------------------------------------
# §4.4 range / precision table and §4.5 special cases
# ---------------------------------------------------------------------------------------------
def _taper(f_max: int):
    # "tapering 0…F…0": F_max at k ∈ {−1, 0}, one bit less per regime step, floored at 0.
    return lambda k: max(0, f_max - (k if k >= 0 else -k - 1))


TABLE_4_4 = [
    ("lp<4,1,2,0>", "3", 0, lambda k: 0),
    ("lp<6,2,2,0>", "7.5", 1, lambda k: 1),
    ("lp<6,2,3,0>", "11", 1, lambda k: 1 if k in (-1, 0) else 0),
    ("lp<6,2,5,0>", "16", 1, lambda k: 1 if k in (-1, 0) else 0),
    ("lp<8,0,2,0>", "1.96875", 5, lambda k: 5),
    ("lp<8,0,7,0>", "6", 5, lambda k: dict(zip(range(-6, 7), (0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0, 0)))[k]),
    ("lp<8,1,2,0>", "3.9375", 4, lambda k: 4),
    ("lp<8,1,3,0>", "5.875", 4, lambda k: {-3: 3, -2: 3, -1: 4, 0: 4, 1: 3, 2: 3}[k]),
    ("lp<8,1,7,0>", "12", 4, _taper(4)),
    ("lp<8,2,2,0>", "7.875", 3, lambda k: 3),
    ("lp<8,2,3,0>", "11.75", 3, lambda k: 3 if k in (-1, 0) else 2),
    ("lp<8,2,7,0>", "24", 3, _taper(3)),
]


@pytest.mark.parametrize("spec,T,f_max,f_of_k", TABLE_4_4, ids=[r[0] for r in TABLE_4_4])
def test_range_table_4_4(spec, T, f_max, f_of_k):
    ref = ref_from_spec(spec)
    assert ref.T == Fraction(T) == t_closed_form(ref.n, ref.es, ref.rs)
    assert max(fl.F for fl in ref.fields) == f_max == f_max_closed_form(ref.n, ref.es, ref.rs)
    ks = {fl.k for fl in ref.fields}
    assert ks <= set(range(-ref.rs, ref.rs)) and {-1, 0} <= ks
    for fl in ref.fields:
        assert fl.F == f_of_k(fl.k), (spec, hex(fl.p), fl.k, fl.F)
    fmt = impl(spec)
    assert math.isclose(fmt.max, 2.0 ** float(T), rel_tol=1e-7)
    assert math.isclose(fmt.min_positive, 2.0 ** -float(T), rel_tol=1e-7)


@pytest.mark.parametrize("n,es", [(n, es) for n in range(3, 13) for es in range(4)])
def test_log_posit_special_case(n, es):
    """rs = n−1, sf = 0: maxpos = 2^(2^es·(n−2)) (§4.5)."""
    ref = lp_ref(n, es, n - 1, 0.0)
    assert ref.T == (1 << es) * (n - 2)
    if ref.fits_float32:
        assert math.isclose(impl(ref.spec).max, 2.0 ** ((1 << es) * (n - 2)), rel_tol=1e-7)


@pytest.mark.parametrize("n", range(3, 13))
def test_power_of_two_special_case(n):
    """rs = 1, es = n−2: every F is 0 and the values are ±2^(j − sf) (§4.5)."""
    for sf in (0.0, 0.3):
        ref = lp_ref(n, n - 2, 1, sf)
        assert all(fl.F == 0 for fl in ref.fields)
        assert all(t.denominator == 1 for t in ref.t)
        if ref.fits_float32:
            got = impl(ref.spec).codebook()
            pos = got[got > 0]
            assert np.allclose(np.log2(pos) + sf, np.round(np.log2(pos) + sf), rtol=0, atol=1e-9)


@pytest.mark.parametrize("es", range(5))
@pytest.mark.parametrize("sf", [0.0, 0.75, -3.5, 0.3])
def test_ternary_special_case(es, sf):
    """n = 2: {−2^(−sf), 0, +2^(−sf)} plus NaR (§4.5)."""
    ref = lp_ref(2, es, 1, sf)
    fmt = impl(ref.spec)
    got = fmt.decode(np.arange(4, dtype=np.uint8))
    v = ref.values(F64)[0]
    assert v == 2.0 ** -sf or math.isclose(v, 2.0 ** -sf, rel_tol=1e-15)
    assert got[0] == 0.0 and got[1] == v and np.isnan(got[2]) and got[3] == -v
    assert_bits_equal("codebook", np.arange(3), fmt.codebook(), np.array([-v, 0.0, v]))


# ---------------------------------------------------------------------------------------------
# §9.1 exhaustive enumeration, n = 2…12 × es = 0…4 × every rs × the sf grid (+ n = 13…16 sample)
# ---------------------------------------------------------------------------------------------
TRIPLES = grid_triples()
TRIPLE_IDS = [f"n{n}-es{es}-rs{rs}" for n, es, rs in TRIPLES]
LARGE_IDS = [f"n{n}-es{es}-rs{rs}-sf{sf}" for n, es, rs, sf in LARGE_SAMPLE]


def grid_formats(n, es, rs):
    return [lp_ref(n, es, rs, sf) for sf in grid_sfs(n, es, rs)]


def formats_for(case) -> list:
    if len(case) == 4:
        return [lp_ref(*case)]
    return grid_formats(*case)


ALL_CASES = pytest.mark.parametrize("case", TRIPLES + list(LARGE_SAMPLE), ids=TRIPLE_IDS + LARGE_IDS)


def test_large_sample_inside_float32_limit():
    assert all(fits_float32(*case) for case in LARGE_SAMPLE)


@ALL_CASES
def test_reference_structure(case):
    """Oracle self-check: field layout, T, F and the §4 identities hold exactly."""
    n, es, rs = case[:3]
    fields = field_table(n, es, rs)
    N = (1 << (n - 1)) - 1
    assert len(fields) == N  # §4.1 counts
    t = [fl.t for fl in fields]
    assert all(a < b for a, b in zip(t, t[1:]))  # §4.2
    assert all(t[c - 1] == -t[(1 << (n - 1)) - c - 1] for c in range(1, N + 1))  # §4.3
    assert t[-1] == t_closed_form(n, es, rs) == -t[0]  # §4.4
    assert max(fl.F for fl in fields) == f_max_closed_form(n, es, rs)
    for fl in fields:
        bits = fl.m + 1 if fl.m < rs else rs
        assert fl.regime_bits == bits
        assert fl.F == max(0, n - 1 - bits - es)
        assert 0 <= fl.e < (1 << es) and 0 <= fl.f < (1 << fl.F)


@ALL_CASES
def test_decode_every_code(case):
    """decode(c) is the float64 nearest to 2^(t − sf) for every code; NaR → NaN (§3, §9.1)."""
    for ref in formats_for(case):
        codes = all_codes(ref.n)
        got = impl(ref.spec).decode(codes)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        assert_bits_equal(f"{ref.spec} decode", codes, got, ref.decode(codes))


@ALL_CASES
def test_float32_values_bit_exact(case):
    """quantize(v) of each float32 code value returns it bit for bit (§5.5), numpy and torch."""
    for ref in formats_for(case):
        v = ref.values(F32).astype(np.float32)
        x = np.concatenate([v, -v, np.float32([0.0])])
        fmt = impl(ref.spec)
        assert_bits_equal(f"{ref.spec} quantize(values) numpy", x, fmt.quantize(x), x)
        got_t = fmt.quantize(torch.from_numpy(x.copy()))
        assert_bits_equal(f"{ref.spec} quantize(values) torch", x, got_t.numpy(), x)


@ALL_CASES
def test_values_monotone_and_reciprocal(case):
    """Decoded values increase with the signed code (§4.2) and v(c)·v(2^(n−1)−c) = 2^(−2sf) (§4.3)."""
    for ref in formats_for(case):
        fmt = impl(ref.spec)
        order = signed_order(ref.n)
        vals = fmt.decode(order.astype(codes_dtype(ref.n)))
        assert np.all(np.diff(vals) > 0), ref.spec
        pos = fmt.decode(np.arange(1, ref.N + 1, dtype=codes_dtype(ref.n)))
        prod = np.log2(pos) + np.log2(pos[::-1])
        assert np.allclose(prod, -2 * ref.sf, rtol=0, atol=1e-9), ref.spec


@ALL_CASES
def test_range_maxpos_minpos(case):
    """fmt.max = 2^(T − sf) (code 2^(n−1)−1) and fmt.min_positive = 2^(−T − sf) (code 1), §4.4."""
    for ref in formats_for(case):
        fmt = impl(ref.spec)
        T = float(t_closed_form(ref.n, ref.es, ref.rs))
        assert math.isclose(float(fmt.max), 2.0 ** (T - ref.sf), rel_tol=1e-7), (ref.spec, fmt.max)
        assert math.isclose(float(fmt.min_positive), 2.0 ** (-T - ref.sf), rel_tol=1e-7), ref.spec
        assert fmt.bits == ref.n


@ALL_CASES
def test_codebook(case):
    for ref in formats_for(case):
        got = impl(ref.spec).codebook()
        assert_bits_equal(f"{ref.spec} codebook", np.arange(len(got)), np.asarray(got), ref.codebook())


@pytest.mark.parametrize("case", TRIPLES, ids=TRIPLE_IDS)
def test_midpoint_identity(case):
    """m_i = t of code 2i+1 in LP<n+1, es, rs> (§5.2): exactly in the oracle, numerically in lpq."""
    n, es, rs = case
    t = [fl.t for fl in field_table(n, es, rs)]
    t_up = [fl.t for fl in field_table(n + 1, es, rs)]
    for i in range(1, len(t)):
        assert t_up[2 * i + 1 - 1] == (t[i - 1] + t[i]) / 2, (n, es, rs, i)
    if n > 8:  # the exact identity above covers every n; lpq's n+1 formats cost table builds
        return
    for ref in grid_formats(n, es, rs):
        if not fits_float32(n + 1, es, rs, ref.sf):
            continue
        up = impl(lp_ref(n + 1, es, rs, ref.sf).spec)
        odd = np.arange(3, 2 * ref.N, 2, dtype=codes_dtype(n + 1))
        mids = up.decode(odd)
        v = impl(ref.spec).decode(np.arange(1, ref.N + 1, dtype=codes_dtype(n)))
        geo = np.exp2((np.log2(v[:-1]) + np.log2(v[1:])) / 2)
        assert np.allclose(mids, geo, rtol=1e-12, atol=0), ref.spec


@ALL_CASES
def test_encode_decode_roundtrip(case):
    """encode(decode(c)) = c for every code but NaR, float64 and float32; encode(NaN) = NaR (§9.1)."""
    for ref in formats_for(case):
        fmt = impl(ref.spec)
        codes = all_codes(ref.n)
        codes = codes[codes != ref.nar]
        v64 = ref.decode(codes)
        got = fmt.encode(v64)
        assert got.dtype == codes_dtype(ref.n), (ref.spec, got.dtype)
        assert_codes_equal(f"{ref.spec} encode(decode) float64", v64, got, codes)
        assert_codes_equal(f"{ref.spec} encode(own decode)", codes, fmt.encode(fmt.decode(codes)), codes)
        v32 = ref.decode(codes).astype(np.float32)
        assert_codes_equal(f"{ref.spec} encode(decode) float32", v32, fmt.encode(v32), codes)
        nan = fmt.encode(np.array([np.nan, -np.nan], np.float32))
        assert list(nan) == [ref.nar, ref.nar]
        nan64 = fmt.encode(np.array([np.nan]))
        assert list(nan64) == [ref.nar]


# ---------------------------------------------------------------------------------------------
# §4.5: rs ≤ 2 is uniform LNS; integer sf shifts scale by powers of two
# ---------------------------------------------------------------------------------------------
LNS_CASES = [(n, es, rs) for n in range(2, 13) for rs in (1, 2) if rs <= n - 1
             for es in range(0, n - rs)] + [(16, 1, 2), (14, 3, 1)]


@pytest.mark.parametrize("n,es,rs", LNS_CASES, ids=[f"n{n}-es{es}-rs{rs}" for n, es, rs in LNS_CASES])
def test_lns_equivalence(n, es, rs):
    """lp<n, es, rs, 0> with rs ≤ 2 equals lns<n, n−1−rs−es>: code c ↔ L = c − 2^(n−2) (§4.5)."""
    f = n - 1 - rs - es
    ref = lp_ref(n, es, rs, 0.0)
    lns_t = lns_log_values(n, f)
    assert ref.t == lns_t
    assert all(ref.t[c - 1] == Fraction(c - (1 << (n - 2)), 1 << f) for c in range(1, ref.N + 1))
    if not ref.fits_float32:
        return
    from lpq.formats import parse

    lp, lns = impl(ref.spec), parse(f"lns<{n},{f}>")
    assert_bits_equal(f"{ref.spec} vs lns codebook", np.arange(2 * ref.N + 1),
                      np.asarray(lp.codebook()), np.asarray(lns.codebook()))
    th = ref.thresholds(F32)
    rng = np.random.default_rng(n * 100 + es * 10 + rs)
    x = np.concatenate([th, np.nextafter(th, np.float32(0)), ref.values(F32).astype(np.float32),
                        np.exp2(rng.uniform(-float(ref.T) - 2, float(ref.T) + 2, 256)).astype(np.float32),
                        np.float32([0.0, np.inf, np.nan, 1e-45, 3e38])])
    x = np.concatenate([x, -x]).astype(np.float32)
    assert_bits_equal(f"{ref.spec} vs lns<{n},{f}> quantize", x, lp.quantize(x), lns.quantize(x))
    assert_bits_equal(f"{ref.spec} quantize", x, lp.quantize(x), ref.quantize(x))


# sf + j must stay exact in float64, so no 0.3 here.
SHIFT_CASES = [(n, es, rs, sf, j) for n, es, rs, sf in [(8, 1, 3, 0.5), (6, 2, 3, -1.25),
                                                        (10, 0, 9, 0.2998046875), (12, 2, 4, 37 / 256)]
               for j in (-7, -1, 1, 3, 40)] + [(16, 1, 4, -2.25, 3)]


@pytest.mark.parametrize("n,es,rs,sf,j", SHIFT_CASES)
def test_integer_sf_shift_codebook(n, es, rs, sf, j):
    """Changing sf by an integer j scales every value by exactly 2^(−j) (§4.5)."""
    a, b = lp_ref(n, es, rs, sf), lp_ref(n, es, rs, sf + j)
    assert [t - b.sf_q for t in b.t] == [t - a.sf_q - j for t in a.t]
    if a.fits_float32 and b.fits_float32:
        cb_a = np.asarray(impl(a.spec).codebook())
        cb_b = np.asarray(impl(b.spec).codebook())
        assert_bits_equal("shifted codebook", np.arange(len(cb_a)), cb_b, np.ldexp(cb_a, -j))


# ---------------------------------------------------------------------------------------------
# decode API
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["lp<8,1,3,0.5>", "lp<12,2,5,-1.25>", "lp<16,1,4,-2.25>"])
def test_decode_accepts_integer_arrays_and_keeps_shape(spec):
    ref = ref_from_spec(spec)
    fmt = impl(spec)
    codes = np.arange(1 << ref.n).reshape(2, -1)
    want = ref.decode(codes.ravel()).reshape(codes.shape)
    for dtype in (codes_dtype(ref.n), np.int64, np.int32):
        got = fmt.decode(codes.astype(dtype))
        assert got.shape == codes.shape and got.dtype == np.float64
        assert_bits_equal(f"{spec} decode {np.dtype(dtype)}", codes.ravel(), got.ravel(), want.ravel())
