"""LPQ search speed: evaluations per second with and without prefix reuse (LPQ §8), and the
wall time of a default search on the embedded default.

Part 1 runs the same seeded GA (same genomes, same work) twice on a timm ResNet (random
weights: speed does not depend on them; default resnet18 at 64x64, 2 calibration batches of
16) with search.prefix_reuse on and off, and prints evaluations/s of both and the ratio.
Part 2 (--embedded CKPT_DIR) times `lpq search` with default settings on digits_cnn.

    python benchmarks/bench_search.py [--model resnet18] [--size 64] [--generations 4]
"""
from __future__ import annotations

import argparse
import time

import torch

from lpq.quant.fold import fold_batchnorm
from lpq.quant.model import QuantModel
from lpq.quant.ptq import collect_statistics
from lpq.search.fitness import FitnessEvaluator, FitnessSettings
from lpq.search.ga import GASettings, LPQSearch
from lpq.search.genome import make_family
from lpq.search.runner import SegmentedModel, default_taps
from lpq.runs.search import build_sides


def run_ga(model_name: str, size: int, batch: int, nbatches: int, generations: int, prefix_reuse: bool,
           per_pass: int = 1, population: int = 16):
    import timm

    torch.manual_seed(0)
    model = timm.create_model(model_name, pretrained=False).eval()
    fold_batchnorm(model)
    batches = [torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(i)) for i in range(nbatches)]
    qm = QuantModel(model, batches[0][:1])
    stats = collect_statistics(qm, [(x, None) for x in batches], 1 << 14, 0)
    seg = SegmentedModel(qm, default_taps(model))
    ev = FitnessEvaluator(qm, seg, batches, FitnessSettings(prefix_reuse=prefix_reuse, individuals_per_pass=per_pass))
    family = make_family("lp", [2, 3, 4, 5, 6, 8], 2**-8)
    sides = build_sides(qm, seg.unit_segment, False)
    data = [qm.fp_weight(s.unit).numpy() if s.is_weight else stats[(s.unit, s.side)] for s in sides]
    settings = GASettings(population=population, generations=generations, patience=0, max_evals=10_000, seed=0)
    search = LPQSearch(sides, family, None, data, ev, settings)  # sf0 at the 4-bit start width
    evaluate = ev.evaluate
    spent = [0.0]

    def timed(*args):
        start = time.perf_counter()
        out = evaluate(*args)
        spent[0] += time.perf_counter() - start
        return out

    ev.evaluate = timed
    best = search.run()
    return ev.stats.evaluations, spent[0], search.memo[search.key(best)]["fitness"], ev.stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--per-pass", type=int, default=0,
                    help="also time search.individuals_per_pass=K (batched individuals, LPQ §8.5)")
    args = ap.parse_args()
    # untimed warm-up (numba tables, oneDNN primitives, allocator), so neither arm pays it
    run_ga(args.model, args.size, args.batch, args.batches, 1, True)
    arms = [(False, 1), (True, 1)] + ([(True, args.per_pass)] if args.per_pass > 1 else [])
    results = {}
    for reuse, k in arms:
        n, s, f, st = run_ga(args.model, args.size, args.batch, args.batches, args.generations, reuse, k,
                             args.population)
        results[(reuse, k)] = (n, s, f)
        frac = st.segments_run / max(st.segments_total, 1)
        print(f"prefix_reuse={str(reuse):5s} individuals_per_pass={k}: {n} evaluations in {s:6.1f} s = "
              f"{n / s:6.2f} eval/s (segments run: {frac:.0%} of full forwards), best fitness {f:.6f}")
    (n0, s0, f0), (n1, s1, f1) = results[(False, 1)], results[(True, 1)]
    print(f"speed-up from prefix reuse: {(n1 / s1) / (n0 / s0):.2f}x; identical results: {n0 == n1 and f0 == f1}")
    if args.per_pass > 1:
        n2, s2, f2 = results[(True, args.per_pass)]
        print(f"speed-up from batched individuals (K={args.per_pass}) on top of prefix reuse: {(n2 / s2) / (n1 / s1):.2f}x, "
              f"over full forwards: {(n2 / s2) / (n0 / s0):.2f}x; same results: {n2 == n1 and f2 == f1}")


if __name__ == "__main__":
    main()
