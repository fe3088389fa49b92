"""Searches with per-channel weights (`quant.per_channel=true`, LPQ §2.2 and issue #4 item 3):
a weight unit's sf gene is a shift Δ of its calibrated per-channel sf vector, the vector being
the family's default scale rule per channel at the unit's structure (what `lpq evaluate
quant.per_channel=true` calibrates). Checked against `resolve` (the uniform per-channel path),
against a per-channel quantization written out by hand, and end to end through `lpq search`
and `lpq evaluate`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lpq.cli import main
from lpq.formats import parse
from lpq.quant.calibrate import resolve
from lpq.quant.quantizer import make_quantizer
from lpq.search.genome import ChannelScales, make_family

from ._util import BITS, SF_STEP, evolve, toy_data, toy_sides
from .test_search_cli import CAL

FAMILIES = ("lp", "int", "fp", "posit", "af", "ant")


def _weight(shape=(6, 3, 3, 3), seed=0) -> np.ndarray:
    """Channels with scales spread over 5 binades (where per-channel sf matters)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(shape) * (2.0 ** rng.uniform(-6, -1, size=(shape[0],) + (1,) * (len(shape) - 1)))
    return w.astype(np.float32)


@pytest.mark.parametrize("n,es,rs", [(4, 0, 2), (4, 1, 3), (3, 1, 2), (6, 2, 4), (2, 0, 1)])
def test_lp_vector_is_the_uniform_per_channel_calibration(n, es, rs):
    w = _weight()
    ch = ChannelScales(make_family("lp", BITS, SF_STEP), w, 0)
    ref = resolve(f"lp<{n},{es},{rs},*>", w, per_channel=True)
    assert ref.spec == f"lp<{n},{es},{rs},0>@ch"
    np.testing.assert_array_equal(ch.vector((n, es, rs, 0.25)), np.asarray(ref.channel_sf))


@pytest.mark.parametrize("n", [3, 4, 6])
def test_lp_best_structure_is_what_uniform_per_channel_picks(n):
    w = _weight(seed=n)
    ch = ChannelScales(make_family("lp", BITS, SF_STEP), w, 0)
    ref = resolve(f"lp<{n},*,*,*>", w, per_channel=True)
    es, rs = ch.best_structure(n)
    assert ref.spec == f"lp<{n},{es},{rs},0>@ch"
    np.testing.assert_array_equal(ch.vector((n, es, rs, 0.0)), np.asarray(ref.channel_sf))


@pytest.mark.parametrize("family,gene,template", [
    ("int", (4, 0.0), "int<4>"), ("int", (3, 1.5), "int<3>"), ("fp", (4, 2, 0.0), "fp<2,1>"),
    ("fp", (6, 3, -0.5), "fp<3,2>"), ("posit", (4, 1, 0.0), "posit<4,1>"), ("af", (5, 3, 1.0), "af<5,3>"),
    ("ant", (4, 1, 0.0), "flint<4>"), ("ant", (4, 2, 0.0), "pot<4>"),
])
def test_baseline_vector_is_the_default_rule_per_channel(family, gene, template):
    w = _weight(seed=3)
    ch = ChannelScales(make_family(family, BITS, SF_STEP), w, 0)
    ref = resolve(template, w, per_channel=True)
    assert ref.spec == f"{parse(template).spec}@ch"
    np.testing.assert_allclose(ch.vector(gene), np.asarray(ref.channel_sf), rtol=0, atol=1e-12)
    assert ch(gene) == 0.0  # as an anchor: Δ is kept when the structure changes


@pytest.mark.parametrize("t,base", [(0, "int<4>"), (1, "flint<4>"), (2, "pot<4>")])
def test_ant_vector_is_antclip_per_channel_for_every_type(t, base):
    """ANT's own rule for each type it may choose, int included (as `resolve('ant<n>')` per channel)."""
    from lpq.formats.calibrate import calibrate_sf

    w = _weight(seed=4)
    ch = ChannelScales(make_family("ant", BITS, SF_STEP), w, 0)
    expect = [calibrate_sf(base, w[c].ravel(), "antclip") for c in range(w.shape[0])]
    np.testing.assert_allclose(ch.vector((4, t, 0.0)), expect, rtol=0, atol=1e-12)


def test_delta_shifts_every_channel_together():
    """`<base>@ch±Δ` with the calibrated vector quantizes channel c with sf_c + Δ."""
    w = _weight(seed=5)
    fam = make_family("lp", BITS, SF_STEP)
    ch = ChannelScales(fam, w, 0)
    gene = (4, 1, 2, -0.75)
    vec = ch.vector(gene)
    q = make_quantizer("lp<4,1,2,0>@ch-0.75", vec)
    got = q(torch.from_numpy(w)).numpy()
    for c in range(w.shape[0]):  # by hand: a per-tensor LP with this channel's sf
        sf = float(vec[c]) - 0.75
        expect = parse(f"lp<4,1,2,{sf!r}>").quantize(torch.from_numpy(w[c])).numpy()
        np.testing.assert_array_equal(got[c], expect)


def test_structure_moves_keep_delta_and_repair_keeps_every_channel_in_range():
    fam = make_family("lp", BITS, SF_STEP)
    w = _weight(seed=7)
    ch = ChannelScales(fam, w, 0)
    g = fam.reshape((4, 1, 3, 0.5), 6, (2, 4), ch)
    assert g == (6, 2, 4, 0.5)  # Δ unchanged; the vector is recalibrated for lp<6,2,4>
    # a Δ that would push a channel's sf outside |sf| <= 126 is clamped by the vector's extremes
    huge = np.full(w.shape[0], 120.0)
    lo, hi = fam.sf_bounds((4, 1, 3, 0.0), 0.0, huge)
    assert hi <= 126 - 120 + 1e-12 and lo == -8
    for n in (2, 3, 4, 5, 6, 8):
        rep = fam.repair((n, 3, 7, 9.0), 0.0, False, ch, ch)
        vec = ch.vector(rep)
        assert -8 <= rep[-1] <= 8 and rep[-1] / SF_STEP == round(rep[-1] / SF_STEP)
        spec = f"{fam.base(rep)}@ch{rep[-1]:+}"
        make_quantizer(spec, vec)  # every channel within the format's limits


@pytest.mark.parametrize("family", FAMILIES)
def test_ga_operators_give_valid_per_channel_genomes(family):
    """Initialisation, crossover, mutation and budget repair on toy data with per-channel
    weights: weight sides carry Δ within ±8, their strings are `@ch` strings whose quantizer
    builds with the unit's vector, the budget holds, activations stay per tensor."""
    from types import SimpleNamespace

    from lpq.search.ga import GASettings, LPQSearch

    fam = make_family(family, list(BITS), SF_STEP)
    sides = toy_sides()
    data = toy_data(sides)
    data = [_weight((8, 75), seed=i) if sd.is_weight else x for i, (sd, x) in enumerate(zip(sides, data))]
    stub = SimpleNamespace(seg=SimpleNamespace(num_segments=3))
    s = LPQSearch(sides, fam, None, data, stub, GASettings(w_bits=3.5, a_bits=4.0, seed=1), 0, per_channel=True)
    for stage, g in evolve(s, 3):
        specs = s.specs(g)
        wn = wd = 0.0
        for i, (sd, gene, spec) in enumerate(zip(sides, g, specs)):
            if sd.is_weight:
                assert "@ch" in spec and s.channels[i] is not None, (stage, spec)
                assert -8 <= gene[-1] <= 8, (stage, gene)
                q = make_quantizer(spec, s.channel_sf(g, i))
                np.testing.assert_allclose(q.channel_sf, s.channel_sf(g, i) + gene[-1], rtol=0, atol=0)
                wn, wd = wn + sd.numel * gene[0], wd + sd.numel
            else:
                assert "@ch" not in spec and s.channel_sf(g, i) is None, (stage, spec)
                make_quantizer(spec)
        if stage != "crossover":  # crossover alone is not budget-repaired in `evolve`
            assert wn / wd <= 3.5 + 1e-9, stage
    med, mse = s.seed_individual("med"), s.seed_individual("mse")
    for i, sd in enumerate(sides):
        if sd.is_weight:
            assert med[i][-1] == 0.0 and mse[i][-1] == 0.0  # seeds: the calibrated vectors, Δ = 0


# ---- end to end -----------------------------------------------------------------------------------------

def _read(p):
    return json.loads(p.read_text())


@pytest.mark.parametrize("family,w_format", [("lp", "lp<4,*,*,*>"), ("int", "int<4>"), ("ant", "ant<4>")])
def test_search_none_per_channel_equals_uniform_per_channel_ptq(cnn_ckpt, tmp_path, family, w_format):
    """`search=none quant.per_channel=true` writes the weights that `lpq evaluate` calibrates
    for uniform per-channel PTQ (LPQ §9 reference row)."""
    out, ev = tmp_path / "none", tmp_path / "ev"
    common = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "quant.per_channel=true", *CAL]
    assert main(["search", *common, "search=none", f"search.format={family}", f"out_dir={out}"]) == 0
    assert main(["evaluate", *common, f"quant.w_format={w_format}", f"quant.a_format={w_format}",
                 "eval.max_samples=32", f"out_dir={ev}"]) == 0
    got, ref = _read(out / "qconfig.json")["layers"], _read(ev / "qconfig.json")["layers"]
    assert list(got) == list(ref)
    for name in got:
        assert got[name]["w"] == ref[name]["w"] and got[name]["w"].endswith("@ch"), name
        np.testing.assert_allclose(got[name]["w_sf"], ref[name]["w_sf"], rtol=0, atol=1e-12, err_msg=name)


def test_per_channel_search_end_to_end(cnn_ckpt, tmp_path):
    """A per-channel LP search: `@ch±Δ` strings with their vectors, the budget holds, evaluate
    applies the written config, and a second run is identical."""
    args = ["model=digits_cnn", f"model.checkpoint={cnn_ckpt}", "quant.per_channel=true", *CAL,
            "search.population=4", "search.generations=2", "budget.w_bits=3.5", "budget.a_bits=4"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["search", *args, f"out_dir={a}"]) == 0
    assert main(["search", *args, f"out_dir={b}"]) == 0
    assert (a / "qconfig.json").read_bytes() == (b / "qconfig.json").read_bytes()
    q, s = _read(a / "qconfig.json"), _read(a / "search.json")
    assert s["per_channel"] is True
    wn = wd = 0
    for name, e in q["layers"].items():
        assert "@ch" in e["w"] and len(e["w_sf"]) > 1 and s["layers"][name]["P"] % len(e["w_sf"]) == 0, name
        assert "@ch" not in e["a"]
        wn, wd = wn + s["layers"][name]["P"] * parse(e["w"].partition("@")[0]).bits, wd + s["layers"][name]["P"]
    assert wn / wd <= 3.5 + 1e-12 and s["avg_w_bits"] == pytest.approx(wn / wd, rel=1e-12)
    ev = tmp_path / "ev"
    assert main(["evaluate", "model=digits_cnn", f"model.checkpoint={cnn_ckpt}", f"quant.config={a / 'qconfig.json'}",
                 "eval.max_samples=32", f"out_dir={ev}"]) == 0
    assert _read(ev / "qconfig.json")["layers"] == q["layers"]
