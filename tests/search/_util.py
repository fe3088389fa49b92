"""Helpers shared by the LPQ search tests (not a test module): a toy model's sides with known
P_l and A_l, an independent gene validator, and the in-process search stack of `lpq search`."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch

from lpq.formats import parse
from lpq.formats.lp import lp_range
from lpq.search.ga import GASettings, LPQSearch
from lpq.search.genome import Side, make_family

BITS = (2, 3, 4, 5, 6, 8)
SF_STEP = 2.0 ** -8

# (unit, kind, P_l, A_l per side, segment): conv/linear layers (weight + input activation) and
# one attention matmul whose two operands both count as activations.
TOY_LAYERS = [
    ("stem", "conv", 216, {"a": 3072}, 0),
    ("block1.conv1", "conv", 2304, {"a": 8192}, 0),
    ("block1.conv2", "conv", 2304, {"a": 8192}, 1),
    ("block2.conv1", "conv", 4608, {"a": 4096}, 1),
    ("attn.qk", "qk", 0, {"a": 1536, "w": 1536}, 2),
    ("block2.conv2", "conv", 9216, {"a": 2048}, 2),
    ("fc", "linear", 640, {"a": 64}, 2),
]


def toy_sides(pin_first_last: bool = False) -> list[Side]:
    """The sides `build_sides` makes for TOY_LAYERS (same ordering and pinning rule)."""
    layers = [u for u, kind, *_ in TOY_LAYERS if kind in ("conv", "linear")]
    pinned = {layers[0], layers[-1]} if pin_first_last else set()
    sides = []
    for unit, kind, p, a, seg in TOY_LAYERS:
        if kind in ("conv", "linear"):
            sides.append(Side(unit, "w", True, p, unit in pinned, seg))
            sides.append(Side(unit, "a", False, a["a"], unit in pinned, seg))
        else:
            sides.append(Side(unit, "a", False, a["a"], False, seg))
            sides.append(Side(unit, "w", False, a["w"], False, seg))
    return sides


def toy_data(sides: list[Side], seed: int = 0) -> list[np.ndarray]:
    """Weights: Gaussian with per-layer scales; activations: ReLU-like (with zeros) or signed."""
    rng = np.random.default_rng(seed)
    out = []
    for i, sd in enumerate(sides):
        scale = 2.0 ** rng.uniform(-6, 3)
        x = rng.standard_normal(600 if sd.is_weight else 800) * scale
        if not sd.is_weight and i % 3 == 1:
            x = np.maximum(x, 0.0)
        out.append(x.astype(np.float32))
    return out


def toy_search(family: str = "lp", w_bits: float = 4.0, a_bits: float = 4.0, bits=BITS, seed: int = 0,
               pin_first_last: bool = False, **ga) -> LPQSearch:
    """An LPQSearch over the toy sides with sf0 computed as `lpq search` does; no evaluator
    (only the operators, repair and initialisation are usable)."""
    fam = make_family(family, list(bits), SF_STEP)
    sides = toy_sides(pin_first_last)
    data = toy_data(sides)
    settings = GASettings(w_bits=w_bits, a_bits=a_bits, seed=seed, **ga)
    stub = SimpleNamespace(seg=SimpleNamespace(num_segments=3))
    return LPQSearch(sides, fam, None, data, stub, settings, calib_seed=0)  # sf0 derived as `lpq search` does


def budget_bits(sides: list[Side], specs) -> tuple[float, float]:
    """b̄_w and b̄_a over the searched (non-pinned) sides, from the widths of the parsed specs."""
    wn = wd = an = ad = 0.0
    for sd, spec in zip(sides, specs):
        if sd.pinned:
            continue
        n = parse(spec).bits
        if sd.is_weight:
            wn, wd = wn + sd.numel * n, wd + sd.numel
        else:
            an, ad = an + sd.numel * n, ad + sd.numel
    return wn / wd, an / ad


def check_gene(family, gene: tuple, sf0: float, pinned: bool, bits=BITS, n_fixed: int | None = None) -> None:
    """LPQ §2.1-§2.3 invariants of one repaired gene, checked independently of the code."""
    name = family.name
    n, sf = gene[0], gene[-1]
    where = f"{name} gene {gene} (sf0 {sf0}, pinned {pinned})"
    allowed_bits = [b for b in bits if b >= (3 if name == "af" else 2)]
    if pinned:
        assert n == 8, where
    else:
        assert n in allowed_bits, where
        if n_fixed is not None:
            assert n == n_fixed, where
    if name == "lp":
        assert len(gene) == 4, where
        es, rs = gene[1], gene[2]
        if n == 2:
            assert (es, rs) == (0, 1), where
        else:
            assert 0 <= es <= min(3, n - 2) and 1 <= rs <= n - 1, where
        T = float(lp_range(n, es, rs))
        assert -T - sf >= -126 and T - sf <= 127, where  # float32 emulation range
    elif name == "int":
        assert len(gene) == 2, where
    elif name == "fp":
        assert len(gene) == 3 and 1 <= gene[1] <= min(5, n - 1), where
    elif name == "posit":
        assert len(gene) == 3 and 0 <= gene[1] <= min(3, max(0, n - 2)), where
    elif name == "af":
        assert len(gene) == 3 and n >= 3 and 2 <= gene[1] <= min(5, n - 1), where
    elif name == "ant":
        allowed = {0} if n >= 7 else {0} | ({1} if n >= 3 else set()) | ({2} if n <= 6 else set())
        assert len(gene) == 3 and gene[1] in allowed, where
    else:  # pragma: no cover
        raise AssertionError(name)
    step = 1.0 if name == "af" else SF_STEP
    assert isinstance(sf, float) and math.isfinite(sf), where
    assert sf / step == round(sf / step), f"sf not snapped to {step}: {where}"
    assert sf0 - 8 - 1e-9 <= sf <= sf0 + 8 + 1e-9, f"sf outside sf0 ± 8: {where}"
    assert abs(sf) <= 126, where
    spec = family.spec(gene)
    fmt = parse(spec)  # every string parses (LP: within the float32 emulation range)
    assert fmt.bits == n, (spec, fmt.bits)


def check_genome(search: LPQSearch, genome: tuple) -> None:
    assert len(genome) == len(search.sides)
    fixed = None
    for i, (sd, gene) in enumerate(zip(search.sides, genome)):
        if not search.s.mixed:
            fixed = search.n_budget_w if sd.is_weight else search.n_budget_a
        check_gene(search.family, gene, search.sf0[i], sd.pinned, search.family.bits, fixed)


def evolve(search: LPQSearch, generations: int, fitness=None):
    """Run the GA's variation loop (tournament, crossover, mutation, repair) without a model,
    yielding (stage, genome) for every genome produced; `fitness` defaults to a random score."""
    pop = search.initial_population()
    for g in pop:
        yield "init", g
    rng = np.random.default_rng(123)
    for _ in range(generations):
        fit = list(rng.random(len(pop))) if fitness is None else [fitness(g) for g in pop]
        children = []
        while len(children) < len(pop):
            a = pop[search.tournament(fit)]
            b = pop[search.tournament(fit)]
            child = search.crossover(a, b)
            yield "crossover", search.repair(child)
            child = search.repair(search.mutate(child))
            yield "mutation", child
            children.append(child)
        pop = children


# ---- the in-process stack of `lpq search` on a torch model -------------------------------------

def quant_stack(model: torch.nn.Module, batches: list[torch.Tensor], taps=None, subsample: int = 4096):
    """BN-folded QuantModel, calibration statistics, SegmentedModel (as `lpq search` builds them)."""
    from lpq.quant.fold import fold_batchnorm
    from lpq.quant.model import QuantModel
    from lpq.quant.ptq import collect_statistics
    from lpq.search.runner import SegmentedModel, default_taps

    model = model.eval()
    fold_batchnorm(model)
    qm = QuantModel(model, batches[0][:1])
    stats = collect_statistics(qm, [(x, None) for x in batches], subsample, 0)
    seg = SegmentedModel(qm, list(taps or default_taps(qm.model)))
    return qm, stats, seg


def model_search(qm, stats, seg, evaluator, family: str = "lp", seed: int = 0, pin_first_last: bool = False,
                 bits=BITS, **ga) -> LPQSearch:
    """LPQSearch on a real model, built as `run_search` does."""
    from lpq.runs.search import build_sides

    fam = make_family(family, list(bits), SF_STEP)
    sides = build_sides(qm, seg.unit_segment, pin_first_last)
    data = [qm.fp_weight(sd.unit).cpu().numpy() if sd.is_weight else stats[(sd.unit, sd.side)] for sd in sides]
    return LPQSearch(sides, fam, None, data, evaluator, GASettings(seed=seed, **ga), 0)  # sf0 as `lpq search` does
