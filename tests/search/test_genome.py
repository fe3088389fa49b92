"""Genes, repair, budget and GA operators (LPQ §2, §3, §4.3, §5.2, §12) on a toy model with known
P_l and A_l: every genome produced by initialisation, crossover and mutation is repaired into
its domain, respects the budget in repair mode, keeps pinned units at 8 bits and frozen widths
with search.mixed=false; operators are reproducible for a seed and crossover moves whole layers."""
from __future__ import annotations

import numpy as np
import pytest

from lpq.formats import parse
from lpq.quant.calibrate import resolve
from lpq.search.genome import FAMILIES, make_family

from ._util import BITS, TOY_LAYERS, budget_bits, check_gene, check_genome, evolve, toy_search

TARGETS = [(4.0, 4.0), (4.5, 3.5), (2.5, 6.5), (8.0, 3.0), (3.25, 2.0)]


def _feasible(family: str, w: float, a: float) -> bool:
    return min(w, a) >= (3 if family == "af" else 2)


# ---- repair invariants and the budget -------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_repair_invariants_after_every_operator(family):
    """Init, crossover and mutation outputs: n in search.bits, structure in domain, sf snapped,
    within sf0 ± 8 and |sf| <= 126, LP inside the float32 range, every string parses; budget kept."""
    s = toy_search(family, 4.5, 3.5, population=8)
    stages = set()
    for stage, g in evolve(s, 4):
        stages.add(stage)
        check_genome(s, g)
        w, a = budget_bits(s.sides, s.specs(g))
        assert w <= 4.5 + 1e-12 and a <= 3.5 + 1e-12, (stage, w, a)
        assert s.avg_bits(g) == pytest.approx((w, a), rel=1e-12)
    assert stages == {"init", "crossover", "mutation"}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("w_bits,a_bits", TARGETS)
def test_budget_never_exceeded_in_repair_mode(family, w_bits, a_bits):
    if not _feasible(family, w_bits, a_bits):
        pytest.skip("below the family's smallest width (rejected, see test_infeasible_budget_rejected)")
    s = toy_search(family, w_bits, a_bits, population=6)
    w_widths = set()
    for stage, g in evolve(s, 2):
        w, a = budget_bits(s.sides, s.specs(g))
        assert w <= w_bits + 1e-12 and a <= a_bits + 1e-12, (stage, w, a)
        w_widths.update(gene[0] for sd, gene in zip(s.sides, g) if sd.is_weight)
    # a fractional target leaves headroom: some weight units go above n_budget = 4
    if w_bits == 4.5:
        assert max(w_widths) > 4


@pytest.mark.parametrize("family", ["lp", "int", "ant"])
def test_budget_repair_lowers_only_as_needed(family):
    """From an all-8-bit genome the repair reaches the target, and stops as soon as it is met:
    the result is within one width step of one side below the target."""
    s = toy_search(family, 4.5, 3.5)
    top = tuple(s.family.repair(s.family.with_n(g, 8), s.sf0[i], sd.pinned)
                for i, (sd, g) in enumerate(zip(s.sides, s.initial_population()[0])))
    for trial in range(5):
        g = s.repair(top)
        check_genome(s, g)
        w, a = s.avg_bits(g)
        assert w <= 4.5 and a <= 3.5
        wsum = sum(sd.numel for sd in s.sides if sd.is_weight)
        asum = sum(sd.numel for sd in s.sides if not sd.is_weight)
        max_drop_w = max(sd.numel * 2 for sd in s.sides if sd.is_weight) / wsum  # largest step is 8 -> 6
        max_drop_a = max(sd.numel * 2 for sd in s.sides if not sd.is_weight) / asum
        assert w > 4.5 - max_drop_w and a > 3.5 - max_drop_a, (w, a)
    # a genome already within budget is left alone (no width lowered, no randomness consumed)
    g0 = s.initial_population()[1]
    state = s.rng.bit_generator.state
    assert s.repair(g0) == g0
    assert s.rng.bit_generator.state == state


def test_budget_arithmetic_on_toy_model():
    """b̄_w = Σ P_l n_w,l / Σ P_l and b̄_a = Σ A_l n_a,l / Σ A_l (matmul operands count as
    activations), over searched layers only when first/last are pinned."""
    s = toy_search("lp", 8, 8)
    widths = {"stem": (2, 3), "block1.conv1": (3, 4), "block1.conv2": (4, 5), "block2.conv1": (5, 6),
              "attn.qk": (6, 8), "block2.conv2": (8, 2), "fc": (6, 4)}  # (w, a); for qk: (w operand, a operand)
    g = []
    for sd, gene in zip(s.sides, s.initial_population()[0]):
        n = widths[sd.unit][0 if sd.side == "w" else 1]
        g.append(s.family.with_n(gene, n))
    g = tuple(g)
    P = {u: p for u, _, p, _, _ in TOY_LAYERS}
    conv = [u for u, kind, *_ in TOY_LAYERS if kind != "qk"]
    exp_w = sum(P[u] * widths[u][0] for u in conv) / sum(P[u] for u in conv)
    # activations: conv inputs (side a) and both operands of attn.qk
    a_num = 3072 * 3 + 8192 * 4 + 8192 * 5 + 4096 * 6 + 1536 * 8 + 1536 * 6 + 2048 * 2 + 64 * 4
    a_den = 3072 + 8192 + 8192 + 4096 + 1536 + 1536 + 2048 + 64
    assert s.avg_bits(g) == pytest.approx((exp_w, a_num / a_den), rel=1e-12)
    assert exp_w == pytest.approx((216 * 2 + 2304 * 3 + 2304 * 4 + 4608 * 5 + 9216 * 8 + 640 * 6) / 19288, rel=1e-12)
    # with first/last pinned (8 bits), the budget is over the other layers
    sp = toy_search("lp", 8, 8, pin_first_last=True)
    g8 = tuple(sp.family.with_n(gene, 8) if sd.pinned else gene for sd, gene in zip(sp.sides, g))
    w_s, a_s = sp.avg_bits(g8)
    mid = ["block1.conv1", "block1.conv2", "block2.conv1", "block2.conv2"]
    assert w_s == pytest.approx(sum(P[u] * widths[u][0] for u in mid) / sum(P[u] for u in mid), rel=1e-12)
    assert a_s == pytest.approx((a_num - 3072 * 3 - 64 * 4) / (a_den - 3072 - 64), rel=1e-12)
    w_all, _ = sp.avg_bits(g8, searched_only=False)
    assert w_all == pytest.approx((216 * 8 + 640 * 8 + sum(P[u] * widths[u][0] for u in mid)) / 19288, rel=1e-12)


@pytest.mark.parametrize("family", ["lp", "fp", "af"])
def test_pinned_units_stay_at_8(family):
    s = toy_search(family, 3.0, 3.0, pin_first_last=True, population=6)
    pinned = [i for i, sd in enumerate(s.sides) if sd.pinned]
    assert [s.sides[i].unit for i in pinned] == ["stem", "stem", "fc", "fc"]
    for stage, g in evolve(s, 3):
        check_genome(s, g)
        assert all(g[i][0] == 8 for i in pinned), stage
        w, a = s.avg_bits(g)  # the budget is over the searched layers: pinned 8-bit layers do not break it
        assert w <= 3.0 and a <= 3.0
    # mutation never touches a pinned unit
    g = s.initial_population()[0]
    for _ in range(200):
        m = s.mutate(g)
        assert all(m[i] == g[i] for i in pinned)


@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_false_freezes_widths(family):
    s = toy_search(family, 4.5, 3.5, mixed=False, pin_first_last=True, population=6)
    assert (s.n_budget_w, s.n_budget_a) == (4, 3)
    others = set()
    for stage, g in evolve(s, 3):
        check_genome(s, g)  # n fixed at n_budget for non-pinned units, 8 for pinned
        others.add(tuple(gene[1:] for gene in g))
    assert len(others) > 1  # the other genes are still searched


def test_infeasible_budget_rejected():
    with pytest.raises(ValueError, match=r"budget.w_bits=1.0 is infeasible.*smallest allowed width 2"):
        toy_search("lp", 1.0, 4.0)
    with pytest.raises(ValueError, match=r"budget.a_bits=1.5 is infeasible"):
        toy_search("int", 4.0, 1.5)
    with pytest.raises(ValueError, match=r"budget.a_bits=2.5 is infeasible.*search.format=af"):
        toy_search("af", 4.0, 2.5)  # AdaptivFloat needs n >= 3
    with pytest.raises(ValueError, match="no width usable"):
        make_family("af", [2], 2 ** -8)


# ---- single-gene repair ---------------------------------------------------------------------------

@pytest.mark.parametrize("bits,cases", [
    (BITS, {1: 2, 2: 2, 7: 6, 9: 8, 12: 8, 3: 3}),
    ((2, 4, 8), {3: 2, 5: 4, 6: 4, 7: 8, 1: 2}),  # ties go down
])
def test_n_snaps_to_nearest_allowed_width(bits, cases):
    fam = make_family("lp", bits, 2 ** -8)
    for n, want in cases.items():
        assert fam.nearest_bits(n) == want
        g = fam.repair((n, 1, 1, 0.3), 0.0, False)
        assert g[0] == want
        check_gene(fam, g, 0.0, False, bits)
        assert fam.repair((n, 1, 1, 0.3), 0.0, True)[0] == 8  # pinned -> 8


def test_lp_structure_and_sf_repair():
    fam = make_family("lp", BITS, 2 ** -8)
    assert fam.repair((2, 3, 1, 0.5), 0.0, False)[:3] == (2, 0, 1)  # n = 2 canonicalises to es=0, rs=1
    assert fam.repair((3, 3, 7, 0.5), 0.0, False)[:3] == (3, 1, 2)  # es <= n-2, rs <= n-1
    assert fam.repair((8, 5, 0, 0.5), 0.0, False)[:3] == (8, 3, 1)  # es <= es_max, rs >= 1
    g = fam.repair((4, 1, 2, 1.0 + 1e-3), 0.0, False)
    assert g[3] == 1.0  # snapped to 2^-8
    assert fam.repair((4, 1, 2, 30.0), 1.5, False)[3] == 9.5  # clamped to sf0 + 8
    assert fam.repair((4, 1, 2, -30.0), 1.5, False)[3] == -6.5
    g = fam.repair((8, 3, 1, 125.0), 125.0, False)  # near |sf| <= 126 and the float32 range
    check_gene(fam, g, 125.0, False)
    g = fam.repair((8, 3, 1, -125.0), -125.0, False)
    check_gene(fam, g, -125.0, False)
    nosnap = make_family("lp", BITS, 0.0)  # search.sf_step=0 disables snapping
    assert nosnap.repair((4, 1, 2, 1.0 + 1e-3), 0.0, False)[3] == 1.0 + 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_repair_is_idempotent(family):
    s = toy_search(family, 4.5, 3.5, population=6)
    for _, g in evolve(s, 2):
        assert s.repair(g) == g


def test_initial_population_seeds():
    """I_med: n_budget, es = 1, rs = min(3, n-1), sf = sf0; I_mse = the uniform calibrated LP
    of LP-FORMAT §7 (`lp<n,*,*,*>`), so generation 0 holds uniform PTQ at n_budget."""
    s = toy_search("lp", 4.5, 3.5, population=7, pin_first_last=True)
    pop = s.initial_population()
    assert len(pop) == 7
    i_med, i_mse = pop[0], pop[1]
    for i, sd in enumerate(s.sides):
        n = 8 if sd.pinned else (4 if sd.is_weight else 3)
        assert i_med[i] == (n, 1, min(3, n - 1), s.sf0[i])
        assert i_mse[i][0] == n
        assert s.family.spec(i_mse[i]) == resolve(f"lp<{n},*,*,*>", s.data[i]).spec
    assert len({s.key(g) for g in pop}) > 2  # the others are mutated copies
    for g in pop:
        check_genome(s, g)


# ---- operators --------------------------------------------------------------------------------------

def _trace(seed: int, family: str = "lp") -> list:
    s = toy_search(family, 4.5, 3.5, seed=seed, population=6)
    out = [s.key(g) for _, g in evolve(s, 3)]
    fit = [0.5, 0.1, 0.9, 0.1, 0.3, 0.7]
    out += [s.tournament(fit) for _ in range(30)]
    return out


@pytest.mark.parametrize("family", ["lp", "fp"])
def test_operators_reproducible_for_a_seed(family):
    a, b, c = _trace(0, family), _trace(0, family), _trace(1, family)
    assert a == b
    assert a != c


def test_crossover_keeps_each_layer_record():
    s = toy_search("lp", 8, 8)
    a = s.initial_population()[0]
    b = tuple(s.family.repair((g[0], g[1], g[2], g[3] + 0.5), s.sf0[i], False) for i, g in enumerate(a))
    assert all(x != y for x, y in zip(a, b))
    from_b = []
    for _ in range(300):
        child = s.crossover(a, b)
        for u, idx in s.unit_sides.items():
            assert len(idx) == 2  # both sides of every layer
            src = {("a" if child[i] == a[i] else "b" if child[i] == b[i] else "?") for i in idx}
            assert src in ({"a"}, {"b"}), (u, src)
            from_b.append(src == {"b"})
    assert 0.45 < np.mean(from_b) < 0.55  # each layer from either parent with probability 1/2


def test_tournament_rules():
    s = toy_search("lp", 4, 4, population=5)
    fit = [0.3, 0.1, 0.9, 0.5, 0.7]  # worst: 2, second worst: 4
    wins = [s.tournament(fit) for _ in range(3000)]
    assert set(wins) <= {0, 1, 3}  # k = 3 distinct: the two worst can never win
    assert np.mean(np.array(wins) == 1) == pytest.approx(3 / 5, abs=0.04)  # best is drawn w.p. k/P
    ties = [s.tournament([1.0] * 5) for _ in range(3000)]
    assert set(ties) == {0, 1, 2}  # ties -> lower population index
    assert np.mean(np.array(ties) == 0) == pytest.approx(3 / 5, abs=0.04)


def test_mutation_selects_about_k_mut_units():
    s = toy_search("lp", 8, 8)
    g = s.initial_population()[0]
    changed = []
    for _ in range(2000):
        m = s.mutate(g)
        diff = [i for i in range(len(g)) if m[i] != g[i]]
        assert diff, "mutation changed nothing"
        changed.append(len(diff))
    U = len(s.sides)
    p = min(1.0, 2.0 / U)
    expected = U * p + (1 - p) ** U  # selected units, or one when none was selected
    assert np.mean(changed) == pytest.approx(expected, abs=0.15)


@pytest.mark.parametrize("family", FAMILIES)
def test_n_move_goes_to_a_neighbouring_width(family):
    fam = make_family(family, BITS, 2 ** -8)
    rng = np.random.default_rng(0)
    bits = fam.bits
    for k, n in enumerate(bits):
        g = fam.make(n, fam.default_structure(n), 0.0)
        moves = {fam.move(g, 0, rng) for _ in range(60)}
        want = {bits[j] for j in (k - 1, k + 1) if 0 <= j < len(bits)}
        assert moves == want, (n, moves)


def test_af_sf_moves_by_one_and_lp_sigma_grows_with_es():
    af = make_family("af", BITS, 2 ** -8)
    rng = np.random.default_rng(0)
    g = (5, 3, 2.0)
    assert {af.move(g, 2, rng) for _ in range(50)} == {1.0, 3.0}
    lp = make_family("lp", BITS, 2 ** -8)
    for es in (0, 1, 2, 3):
        d = np.array([lp.move((8, es, 3, 0.0), 3, rng) for _ in range(4000)])
        assert d.std() == pytest.approx(0.25 * 2 ** es, rel=0.08)


@pytest.mark.parametrize("family", FAMILIES)
def test_spec_strings_round_trip(family):
    """Each gene prints a quantizer string that parses to a format of the gene's width."""
    s = toy_search(family, 8, 8, population=4)
    for _, g in evolve(s, 1):
        for gene, spec in zip(g, s.specs(g)):
            fmt = parse(spec)
            assert fmt.bits == gene[0]
            assert parse(fmt.spec).spec == fmt.spec


def test_lp_underflow_gene():
    """search.lp_underflow: `flush` writes underflow=flush on every LP gene; `search` adds a gene uf in {0, 1}
    between rs and sf that mutation flips and the spec carries; the MSE seed takes the rule of least MSE."""
    import numpy as np

    from lpq.formats import parse
    from lpq.search.genome import make_family

    flush = make_family("lp", [2, 4, 8], 2 ** -8, lp_underflow="flush")
    assert flush.spec((4, 1, 2, 0.5)) == "lp<4,1,2,0.5,underflow=flush>"
    fam = make_family("lp", [2, 4, 8], 2 ** -8, lp_underflow="search")
    assert (1, 2, 0) in fam.structures(4) and (1, 2, 1) in fam.structures(4) and fam.default_structure(4) == (1, 3, 0)
    assert fam.spec((4, 1, 2, 1, 0.5)) == "lp<4,1,2,0.5,underflow=flush>" and fam.spec((4, 1, 2, 0, 0.5)) == "lp<4,1,2,0.5>"
    assert fam.clamp_structure(4, (1, 2, 5)) == (1, 2, 1)
    rng = np.random.default_rng(0)
    seen = {fam.mutate((4, 1, 2, 0, 0.5), rng)[3] for _ in range(200)}
    assert seen == {0, 1}
    x = np.concatenate([np.zeros(5000), np.random.default_rng(1).standard_normal(3000) * 1e-3,
                        np.random.default_rng(2).standard_normal(2000)]).astype(np.float32)
    gene = fam.init_mse(4, x, 0.0, 0)
    assert len(gene) == 5 and gene[3] == 1  # many tiny values: flushing them to 0 has the lower MSE
    assert parse(fam.unsigned_view().spec(gene)).family == "ulp"
    with pytest.raises(ValueError, match="search.lp_underflow='never' is invalid"):
        make_family("lp", [4], 2 ** -8, lp_underflow="never")
