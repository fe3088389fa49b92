"""sf re-anchoring on width and structure changes (project choice, README "LPQ search"): a
structural move keeps sf's offset to the unit's calibrated scale (`ScaleAnchor`), so the
represented range follows the tensor; `search.retune` also takes the least-MSE structure at a
new width; the derived evaluation cap of LPQ §7."""
from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from lpq.runs.search import _max_evals
from lpq.formats import parse
from lpq.formats.grid_mse import sort_magnitudes
from lpq.quant.calibrate import calibrate_lp
from lpq.search.genome import FAMILIES, ScaleAnchor, make_family

from ._util import BITS, SF_STEP, check_gene, check_genome, evolve, toy_search


def _gaussian(seed: int = 0, size: int = 4000, scale: float = 0.05) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(size) * scale).astype(np.float32)


def _top(spec: str) -> float:
    return float(parse(spec).max)


@pytest.mark.parametrize("n_old,n_new", [(4, 5), (4, 3), (4, 8), (5, 3), (3, 6)])
def test_lp_width_change_keeps_the_represented_maximum(n_old, n_new):
    """A calibrated LP gene moved to another width lands on the calibrated sf of its new
    structure, and its largest value stays within a factor 4 of max|x| (centre anchoring,
    the old rule, moves the top by 2^(T_new - T_old))."""
    fam = make_family("lp", BITS, SF_STEP)
    x = _gaussian()
    anchor = ScaleAnchor(fam, x, 0)
    g = fam.init_mse(n_old, x, 0.0, 0)
    moved = fam.repair(fam.with_n(g, n_new, anchor), fam.sf0(4, x, 0), False, anchor)
    assert moved[-1] == pytest.approx(anchor(moved) + (g[-1] - anchor(g)), abs=SF_STEP)
    es, rs, sfs = calibrate_lp(sort_magnitudes(x.astype(np.float64)), moved[0], moved[1], moved[2])
    assert moved[-1] == pytest.approx(fam.snap(float(sfs[0])), abs=SF_STEP)
    peak = float(np.max(np.abs(x)))
    assert peak / 4 <= _top(fam.spec(moved)) <= peak * 4, (fam.spec(g), fam.spec(moved), peak)


@pytest.mark.parametrize("family", FAMILIES)
def test_structural_moves_keep_the_offset_to_the_calibrated_scale(family):
    """sf + 0.5 (a GA-found offset) survives width and structure changes, for every family."""
    fam = make_family(family, BITS, SF_STEP)
    x = _gaussian(1)
    anchor = ScaleAnchor(fam, x, 0)
    n = 4
    base = fam.init_mse(n, x, 0.0, 0)
    g = base[:-1] + (anchor(base) + 0.5,)
    for n_new in fam.bits:
        for s in fam.structures(n_new):
            moved = fam.reshape(g, n_new, s, anchor)
            if fam.make(n_new, s, 0.0) == fam.make(n, fam.structure_of(g), 0.0):
                assert moved == g
                continue
            assert moved[-1] == pytest.approx(anchor(moved) + 0.5, abs=1e-12), (fam.spec(g), fam.spec(moved))


def test_af_anchor_is_its_power_of_two_rule():
    """af's scale rule (pow2max) does not depend on the structure: sf is kept, as before."""
    fam = make_family("af", BITS, SF_STEP)
    x = _gaussian(2)
    anchor = ScaleAnchor(fam, x, 0)
    g = (4, 2, 3.0)
    assert fam.with_n(g, 6, anchor)[-1] == 3.0
    assert fam.reshape(g, 6, (4,), anchor)[-1] == 3.0


def test_without_anchor_the_old_rule_applies():
    """anchor=None (search.anchor=max): int shifts by the max(Q0) ratio, lp keeps sf."""
    lp, it = make_family("lp", BITS, SF_STEP), make_family("int", BITS, SF_STEP)
    assert lp.with_n((4, 0, 2, 1.5), 6)[-1] == 1.5
    assert it.with_n((4, 2.0), 8)[-1] == pytest.approx(2.0 + math.log2(127 / 7))


def test_anchor_is_lazy_cached_and_deterministic():
    fam = make_family("lp", BITS, SF_STEP)
    x = _gaussian(3)
    a, b = ScaleAnchor(fam, x, 0), ScaleAnchor(fam, x, 0)
    assert a._prepared is None  # nothing computed before the first structural move
    g = (5, 1, 3, 0.0)
    assert a(g) == b(g) == a((5, 1, 3, 7.25))  # sf does not enter the key
    assert a.best_structure(5) == b.best_structure(5) == fam.structure_of(fam.init_mse(5, x, 0.0, 0))
    assert math.isfinite(a(g))


class _OnlyN:
    """A stand-in GA stream that selects only the n gene and moves it up (or down at the end)."""

    def __init__(self, up: bool):
        self.up = up

    def random(self, k=None):
        return np.array([0.0] + [0.9] * (k - 1)) if k is not None else (0.1 if self.up else 0.9)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("up", [True, False])
def test_retune_n_move_takes_the_least_mse_structure(family, up):
    """search.retune: after an n move the unit holds the MSE-best structure at its new width,
    sf keeps its offset to the calibrated scale, and the repaired gene stays in its domain."""
    fam = make_family(family, BITS, SF_STEP)
    x = _gaussian(4)
    anchor = ScaleAnchor(fam, x, 0)
    g = fam.init_mse(4, x, 0.0, 0)
    g = g[:-1] + (fam.snap(anchor(g) - 0.25),)
    child = fam.mutate(g, _OnlyN(up), anchor, retune=True)
    assert child[0] == (5 if up else 3)
    assert fam.structure_of(child) == anchor.best_structure(child[0])
    assert child[-1] == pytest.approx(anchor(child) + (g[-1] - anchor(g)), abs=1e-12)
    sf0 = fam.sf0(4, x, 0)
    check_gene(fam, fam.repair(child, sf0, False, anchor), sf0, False)
    plain = fam.mutate(g, _OnlyN(up), anchor, retune=False)  # without retune the structure is kept
    assert fam.structure_of(plain) == fam.clamp_structure(plain[0], fam.structure_of(g))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("retune", [False, True])
def test_anchored_operators_keep_invariants_and_are_reproducible(family, retune):
    """Every genome of the anchored GA is repaired into its domain; one seed, one trajectory."""
    runs = []
    for _ in range(2):
        s = toy_search(family, 4.5, 3.5, population=6, retune=retune)
        out = []
        for stage, g in evolve(s, 3):
            check_genome(s, g)
            out.append(s.key(g))
        runs.append(out)
    assert runs[0] == runs[1]


def test_invalid_anchor_setting_is_rejected():
    with pytest.raises(ValueError, match="search.anchor"):
        toy_search("lp", anchor="median")


def test_max_evals_is_derived_when_null():
    """LPQ §7: the cap is P + G·(P − E) unless set (50 for the small run, 1532 at paper scale)."""
    cfg = OmegaConf.create({"population": 8, "generations": 6, "elites": 1, "max_evals": None})
    assert _max_evals(cfg) == 50
    cfg = OmegaConf.create({"population": 32, "generations": 50, "elites": 2, "max_evals": None})
    assert _max_evals(cfg) == 1532
    cfg = OmegaConf.create({"population": 32, "generations": 50, "elites": 2, "max_evals": 77})
    assert _max_evals(cfg) == 77
