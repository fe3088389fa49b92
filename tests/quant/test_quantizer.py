"""Quantizer strings -> callables: per-tensor specs, per-channel `@ch` / `@ch±Δ` forms with their
sf vector, and the errors for bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lpq.formats import parse
from lpq.quant.quantizer import channel_spec, make_quantizer, split_channel_spec


@pytest.mark.parametrize("spec", ["lp<8,1,3,0.5>", "lp<4,0,3,-1.25>", "int<4>@3.25", "int<8>", "fp8_e4m3", "posit<8,1>"])
def test_per_tensor_quantizer_is_the_format(spec):
    q = make_quantizer(spec)
    fmt = parse(spec)
    assert q.spec == fmt.spec and q.fmt == fmt and q.bits == fmt.bits and q.channel_sf is None
    x = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(q(x), fmt.quantize(x))
    np.testing.assert_array_equal(q(x).numpy(), fmt.quantize_reference(x.numpy()))


def test_spec_is_canonicalised():
    assert make_quantizer(" INT<4>@1.50 ").spec == "int<4>@1.5"
    assert make_quantizer("lp<8,1,3,0.50>").spec == "lp<8,1,3,0.5>"


@pytest.mark.parametrize("base, in_format", [
    ("lp<4,1,2,0>", lambda sf: f"lp<4,1,2,{sf:g}>"),
    ("int<4>", lambda sf: f"int<4>@{sf:g}"),
    ("fp<6,3>", lambda sf: f"fp<6,3>@{sf:g}"),
])
def test_per_channel_equals_per_tensor_with_each_channels_sf(base, in_format):
    """Integer sf: exact; each channel is quantized like the per-tensor format with its own sf."""
    sfs = [1.0, -2.0, 0.0, 3.0]
    q = make_quantizer(channel_spec(base), sfs)
    assert q.spec == f"{parse(base).spec}@ch"
    np.testing.assert_array_equal(q.channel_sf, sfs)
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(2)) * 3
    out = q(x)
    for c, sf in enumerate(sfs):
        assert torch.equal(out[c], parse(in_format(sf)).quantize(x[c])), c


def test_per_channel_fractional_sf_within_one_rounding():
    sfs = [0.5, -1.25, 2.375]
    q = make_quantizer("lp<6,1,3,0>@ch", sfs)
    x = torch.randn(3, 40, generator=torch.Generator().manual_seed(3))
    out = q(x)
    for c, sf in enumerate(sfs):
        want = parse(f"lp<6,1,3,{sf}>").quantize(x[c])
        torch.testing.assert_close(out[c], want, rtol=2.0 ** -22, atol=0)


def test_per_channel_delta():
    q = make_quantizer("int<4>@ch-0.5", [1.0, 2.0])
    assert q.spec == "int<4>@ch-0.5"
    np.testing.assert_array_equal(q.channel_sf, [0.5, 1.5])
    q = make_quantizer("int<4>@ch+2", [1.0, 2.0])
    assert q.spec == "int<4>@ch+2"
    np.testing.assert_array_equal(q.channel_sf, [3.0, 4.0])
    x = torch.randn(2, 8, generator=torch.Generator().manual_seed(4))
    assert torch.equal(q(x)[1], parse("int<4>@4").quantize(x[1]))


def test_split_and_channel_spec():
    assert split_channel_spec("int<4>@ch") == ("int<4>", 0.0)
    assert split_channel_spec("lp<4,1,2,0>@ch+1.25") == ("lp<4,1,2,0>", 1.25)
    assert split_channel_spec("int<4>@ch-0.5") == ("int<4>", -0.5)
    assert split_channel_spec("int<4>@3") is None
    assert split_channel_spec("lp<8,1,3,0>") is None
    assert channel_spec("int<4>") == "int<4>@ch"
    assert channel_spec("int<4>", 0.25) == "int<4>@ch+0.25"
    assert channel_spec("int<4>", -0.5) == "int<4>@ch-0.5"
    for d in (0.0, 0.25, -3.5):
        assert split_channel_spec(channel_spec("int<8>", d)) == ("int<8>", d)


@pytest.mark.parametrize("spec, sf, match", [
    ("int<4>@ch", None, "needs its sf vector"),
    ("int<4>", [1.0, 2.0], "per tensor"),
    ("int<4>@ch", [1.0, float("nan")], "finite"),
    ("int<4>@ch", [1.0, 127.0], "126"),
    ("lp<8,9,3,0>", None, "float32 emulation range"),
    ("lp<8,1,3>", None, "lp<n,es,rs,sf>"),
    ("lp<8,*,*,*>", None, r"\*"),
    ("foo<3>", None, "unknown format family 'foo'"),
    ("int<4>@", None, "empty scale"),
])
def test_bad_quantizer_strings(spec, sf, match):
    with pytest.raises(ValueError, match=match):
        make_quantizer(spec, sf)


def test_channel_count_mismatch():
    q = make_quantizer("int<4>@ch", [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="3"):
        q(torch.zeros(4, 2))


def test_quantizer_value_semantics():
    """Quantizers built from the same string (and sf vector) compare equal and hash alike, so a
    round-tripped qconfig yields `==` quantizers; a different sf vector compares unequal."""
    assert make_quantizer("int<4>@2") == make_quantizer("int<4>@2.0")
    assert make_quantizer("int<4>@2") != make_quantizer("int<4>@3")
    a, b = make_quantizer("int<4>@ch", [1.0, 2.0]), make_quantizer("int<4>@ch", [1.0, 2.0])
    assert a == b and hash(a) == hash(b)
    assert a != make_quantizer("int<4>@ch", [1.0, 2.5])
