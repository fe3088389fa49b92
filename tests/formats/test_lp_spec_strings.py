"""LP spec strings: grammar, canonical form, errors and the path-safe form (LP-FORMAT §1, §7)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .lp_reference import canonical_sf, fits_float32, path_safe as ref_path_safe


def parse(spec: str):
    from lpq.formats import parse as _parse

    return _parse(spec)


CANONICAL = [
    "lp<8,1,3,0.5>", "lp<8,2,7,0>", "lp<4,0,3,-1.25>", "lp<16,1,4,-2.25>",
    "lp<6,2,3,0,round=linear>", "lp<8,1,3,0.5,underflow=flush>",
    "lp<8,1,3,0.5,round=linear,underflow=flush>", "lp<2,0,1,0.75>", "lp<8,1,3,0.3>",
    "lp<8,1,3,1e-05>", "lp<12,3,5,0.14453125>", "lp<8,0,7,-100>",
]


@pytest.mark.parametrize("spec", CANONICAL)
def test_canonical_round_trip(spec):
    fmt = parse(spec)
    assert fmt.spec == spec
    assert format(fmt) == spec
    assert str(fmt) == spec
    assert parse(fmt.spec) == fmt


@pytest.mark.parametrize("spec,n,es,rs,sf,rnd,uf", [
    ("lp<8,1,3,0.5>", 8, 1, 3, 0.5, "log", "saturate"),
    ("lp<16,1,4,-2.25>", 16, 1, 4, -2.25, "log", "saturate"),
    ("lp<6,2,3,0,round=linear>", 6, 2, 3, 0.0, "linear", "saturate"),
    ("lp<8,1,3,0.5,underflow=flush>", 8, 1, 3, 0.5, "log", "flush"),
    ("lp<8,1,3,0.3>", 8, 1, 3, 0.3, "log", "saturate"),
])
def test_parameters(spec, n, es, rs, sf, rnd, uf):
    fmt = parse(spec)
    assert (fmt.n, fmt.es, fmt.rs, fmt.round, fmt.underflow) == (n, es, rs, rnd, uf)
    assert fmt.bits == n
    assert isinstance(fmt.sf, float) and fmt.sf == sf


NON_CANONICAL = [
    ("LP<8,1,3,0.5>", "lp<8,1,3,0.5>"),
    ("lp< 8 , 1 , 3 , 0.5 >", "lp<8,1,3,0.5>"),
    ("Lp<8, 1, 3, 0.5, underflow=flush>", "lp<8,1,3,0.5,underflow=flush>"),
    ("lp<8,1,3,0.50>", "lp<8,1,3,0.5>"),
    ("lp<8,1,3,1.0>", "lp<8,1,3,1>"),
    ("lp<8,1,3,7.000>", "lp<8,1,3,7>"),
    ("lp<8,1,3,-2.250>", "lp<8,1,3,-2.25>"),
    ("lp<8,1,3,-0>", "lp<8,1,3,0>"),
    ("lp<8,1,3,-0.0>", "lp<8,1,3,0>"),
    ("lp<8,1,3,0.0>", "lp<8,1,3,0>"),
    ("lp<8,1,3,0.00001>", "lp<8,1,3,1e-05>"),
    ("lp<8,1,3,1e2>", "lp<8,1,3,100>"),
    ("lp<8,1,3,2.5e-1>", "lp<8,1,3,0.25>"),
    ("lp<8,1,3,0.5,round=log>", "lp<8,1,3,0.5>"),
    ("lp<8,1,3,0.5,underflow=saturate>", "lp<8,1,3,0.5>"),
    ("lp<8,1,3,0.5,round=log,underflow=saturate>", "lp<8,1,3,0.5>"),
    ("lp<8,1,3,0.5,underflow=flush,round=linear>", "lp<8,1,3,0.5,round=linear,underflow=flush>"),
    ("lp<8,1,3,0.5,underflow=saturate,round=linear>", "lp<8,1,3,0.5,round=linear>"),
]


@pytest.mark.parametrize("text,canonical", NON_CANONICAL)
def test_canonicalisation(text, canonical):
    fmt = parse(text)
    assert fmt.spec == canonical
    assert fmt == parse(canonical)
    assert hash(fmt) == hash(parse(canonical))


def test_options_distinguish_formats():
    base = parse("lp<8,1,3,0.5>")
    assert base != parse("lp<8,1,3,0.5,round=linear>")
    assert base != parse("lp<8,1,3,0.5,underflow=flush>")
    assert base != parse("lp<8,1,3,0.25>")


@settings(max_examples=200, deadline=None, database=None)
@given(st.floats(min_value=-121.125, max_value=120.125, allow_nan=False, allow_infinity=False))
def test_sf_canonical_text_round_trips(sf):
    """sf prints as the shortest round-tripping decimal (Python repr, no '.0', no '-0')."""
    fmt = parse(f"lp<8,1,3,{sf!r}>")
    expected = canonical_sf(sf)
    assert fmt.spec == f"lp<8,1,3,{expected}>"
    assert fmt.sf == sf
    assert not expected.endswith(".0") and expected != "-0"
    assert parse(fmt.spec).spec == fmt.spec


# ---------------------------------------------------------------------------------------------
# Errors: ValueError naming the parameter and the value (§1, §7)
# ---------------------------------------------------------------------------------------------
ERRORS = [
    ("lp<1,0,1,0>", ["n", "1"]),
    ("lp<0,0,1,0>", ["n", "0"]),
    ("lp<17,1,3,0>", ["n", "17"]),
    ("lp<8,1,8,0>", ["rs", "8"]),
    ("lp<8,1,0,0>", ["rs", "0"]),
    ("lp<2,0,2,0>", ["rs", "2"]),
    ("lp<8,-1,3,0>", ["es"]),
    ("lp<8,1,3,abc>", ["sf", "abc"]),
    ("lp<8,1,3,inf>", ["sf", "inf"]),
    ("lp<8,1,3,-inf>", ["sf", "inf"]),
    ("lp<8,1,3,nan>", ["sf", "nan"]),
    ("lp<8,1,3,0,foo=bar>", ["foo"]),
    ("lp<8,1,3,0,round=linear,round=log>", ["round"]),
    ("lp<8,1,3,0,underflow=flush,underflow=flush>", ["underflow"]),
    ("lp<8,1,3,0,round=cubic>", ["round", "cubic"]),
    ("lp<8,1,3,0,underflow=zero>", ["underflow", "zero"]),
]


@pytest.mark.parametrize("spec,fragments", ERRORS, ids=[e[0] for e in ERRORS])
def test_invalid_parameters_raise(spec, fragments):
    with pytest.raises(ValueError) as info:
        parse(spec)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, f"{spec!r}: message {msg!r} does not name {frag!r}"


def test_rs_error_message_states_the_range():
    with pytest.raises(ValueError) as info:
        parse("lp<8,1,8,0>")
    msg = str(info.value)
    assert "rs=8" in msg and "7" in msg, msg


@pytest.mark.parametrize("spec", ["lp<8,1,3>", "lp<8,1,3,0", "lp<8,1,3,0,0>", "lp<8.5,1,3,0>", "lp<8,1,3,0,round>",
                                  "lp8,1,3,0", "lp<a,1,3,0>", "", "lp<8,1,3,>"])
def test_malformed_strings_raise(spec):
    with pytest.raises(ValueError):
        parse(spec)


FLOAT32_LIMIT = [
    ("lp<16,4,15,0>", "127"),      # T = 224
    ("lp<8,2,7,200>", "126"),      # −T − sf = −224
    ("lp<8,1,3,-125>", "127"),     # T − sf = 130.875
    ("lp<12,4,11,0>", "127"),      # T = 160
]


@pytest.mark.parametrize("spec,bound", FLOAT32_LIMIT)
def test_float32_limit_rejected(spec, bound):
    """Formats whose code book leaves the float32 normal range fail at parse (§1)."""
    n, es, rs, sf = re.fullmatch(r"lp<(\d+),(\d+),(\d+),([^>]+)>", spec).groups()
    assert not fits_float32(int(n), int(es), int(rs), float(sf))
    with pytest.raises(ValueError) as info:
        parse(spec)
    msg = str(info.value)
    for frag in (n, es, rs, sf, bound):
        assert frag in msg, f"{spec}: message {msg!r} does not name {frag!r}"


@pytest.mark.parametrize("spec", ["lp<8,1,3,-121.125>", "lp<8,1,3,120.125>", "lp<7,1,6,116>",
                                  "lp<7,1,6,-117>"])
def test_float32_limit_edges_accepted(spec):
    """−T − sf = −126 and T − sf = 127 are inside the limit."""
    n, es, rs, sf = re.fullmatch(r"lp<(\d+),(\d+),(\d+),([^>]+)>", spec).groups()
    assert fits_float32(int(n), int(es), int(rs), float(sf))
    assert parse(spec).spec == spec


# ---------------------------------------------------------------------------------------------
# Path-safe form (§7)
# ---------------------------------------------------------------------------------------------
def test_path_safe_examples():
    from lpq.formats import from_path_safe, path_safe

    assert path_safe("lp<8,1,3,-0.5>") == "lp_8_1_3_m0.5"
    assert path_safe("lp<6,2,3,0,round=linear>") == "lp_6_2_3_0_round-linear"
    assert from_path_safe("lp_8_1_3_m0.5") == "lp<8,1,3,-0.5>"
    assert from_path_safe("lp_6_2_3_0_round-linear") == "lp<6,2,3,0,round=linear>"


@pytest.mark.parametrize("spec", CANONICAL + ["lp<8,1,3,-0.5,underflow=flush>", "lp<6,2,3,-7,round=linear,underflow=flush>"])
def test_path_safe_round_trip(spec):
    from lpq.formats import from_path_safe, path_safe

    safe = path_safe(spec)
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", safe), safe
    assert from_path_safe(safe) == spec
    if "e-" not in spec:
        assert safe == ref_path_safe(spec)


@pytest.mark.parametrize("spec", ["lp<8,1,3,1e-05>", "lp<8,1,3,-1e-05>", "lp<8,1,3,1e-05,round=linear>"])
def test_path_safe_round_trip_exponent_sf(spec):
    """The mapping is reversible even when sf is written with a negative exponent (§7)."""
    from lpq.formats import from_path_safe, path_safe

    assert from_path_safe(path_safe(spec)) == spec
