"""Does the search's calibration fitness rank configurations the way validation accuracy does? (docs/results.md)

    python benchmarks/fitness_vs_accuracy.py SEARCH_DIR [overrides of the search ...] [--images 2000]

Reads the final population and fitness memo of an `lpq search` run (SEARCH_DIR/.ckpt/search.json), evaluates every
member on the first `--images` validation images with the same model, data and quant options, and prints the
Spearman rank correlation between fitness (lower is better) and top-1 (higher is better; reported as the
correlation of fitness with the error rate), plus how the best-by-fitness member ranks by accuracy. Also reports,
from search.json's history, how often the best genome's structure (n, es, rs, ...) changed between generations and
how far the final best is from the MSE seed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lpq.config import compose  # noqa: E402
from lpq.quant.ptq import evaluate, make_loader  # noqa: E402
from lpq.runs.from_config import (apply_bias_correction, build_quant_model,  # noqa: E402
                                  config_calibration_batches, search_statistics)
from lpq.runs.search import prepare_search  # noqa: E402
from lpq.search.ga import GASettings  # noqa: E402
from lpq.search.genome import make_family  # noqa: E402
from lpq.quant.unsigned_acts import mode_of  # noqa: E402


def spearman(a, b) -> float:
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("search_dir")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--images", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sd = Path(args.search_dir)
    report = json.loads((sd / "search.json").read_text())
    state = json.loads((sd / ".ckpt" / "search.json").read_text())
    cfg = compose(list(args.overrides))
    s = cfg.search
    family = make_family(report["family"], report["bits"], float(s.sf_step), int(s.es_max),
                         lp_underflow=str(s.get("lp_underflow", "saturate")))
    data, loaded, qm = build_quant_model(cfg)
    batches, ids = config_calibration_batches(cfg, data)
    _, stats = search_statistics(cfg, qm, loaded.name, batches, ids)
    apply_bias_correction(cfg.quant.get("bias_correction"), qm, batches, cfg.device, int(cfg.calib.seed))
    settings = GASettings(**{k: v for k, v in report["settings"].items()})
    lpq, _ = prepare_search(qm, batches, stats, family, settings, per_channel=bool(cfg.quant.per_channel),
                            calib_seed=int(cfg.calib.seed), unsigned_acts=mode_of(cfg.quant.get("unsigned_acts")))
    population = [tuple(tuple(x) for x in g) for g in state["population"]]
    memo = state["memo"]
    val = torch.utils.data.Subset(data.val, range(min(args.images, len(data.val))))
    loader = make_loader(val, 500)
    fits, tops = [], []
    seen = set()
    for g in population:
        key = lpq.key(g)
        if key in seen:
            continue
        seen.add(key)
        qm.set_quantizers(lpq.quantizers(g))
        tops.append(evaluate(qm, loader)["top1"])
        fits.append(memo[key]["fitness"])
        print(f"  fitness {fits[-1]:.5f}  top-1 {tops[-1]:.2f}", flush=True)
    rho = spearman(fits, -np.asarray(tops))
    best = int(np.argmin(fits))
    rank = int(np.sum(np.asarray(tops) > tops[best])) + 1
    hist = report_history(sd)
    print(f"{len(fits)} distinct members: Spearman(fitness, error rate) = {rho:.3f}; the best-by-fitness member "
          f"(top-1 {tops[best]:.2f}) ranks {rank} of {len(fits)} by accuracy (best {max(tops):.2f}, worst "
          f"{min(tops):.2f})")
    print(hist)
    return 0


def report_history(sd: Path) -> str:
    import csv  # noqa: F401

    state = json.loads((sd / ".ckpt" / "search.json").read_text())
    bests = [tuple(tuple(x) for x in h["best_genome"]) for h in state["history"]]
    changes = sum(1 for a, b in zip(bests, bests[1:]) if [g[:-1] for g in a] != [g[:-1] for g in b])
    first, last = bests[0], bests[-1]
    differ = sum(1 for a, b in zip(first, last) if a[:-1] != b[:-1])
    return (f"best genome's structure changed in {changes} of {len(bests) - 1} generations; the final best differs "
            f"from generation 0's best in the structure of {differ} of {len(last)} sides")


if __name__ == "__main__":
    sys.exit(main())
