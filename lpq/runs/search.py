"""`lpq search`: the LPQ genetic search (or `search=none`: uniform calibrated PTQ) on the
calibration set; writes out_dir/qconfig.json, search_log.csv and search.json (LPQ §11)."""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch

from ..pipeline import atomic
from ..quant.ptq import average_bits
from ..quant.qconfig import LayerQ, QConfig
from ..search.fitness import FitnessEvaluator, FitnessSettings
from ..search.ga import GASettings, LPQSearch
from ..search.genome import Family, Side, make_family
from ..search.runner import SegmentedModel, default_taps
from ..quant.unsigned_acts import is_nonnegative, mode_of as unsigned_mode
from .from_config import (apply_bias_correction, build_quant_model, config_calibration_batches, equalize_labels,
                          search_statistics)

log = logging.getLogger("lpq")


def build_sides(qm, segment_of: dict, pin_first_last: bool, stats: dict | None = None,
                unsigned_acts: str = "off") -> list[Side]:
    """The searched sides (weights and activation operands) in execution order; with unsigned_acts='auto' an
    activation side that is never negative in `stats` is marked unsigned (its genes emit the unsigned variant)."""
    layers = [u.name for u in qm.units if u.kind in ("conv", "linear")]
    pinned = {layers[0], layers[-1]} if pin_first_last and layers else set()

    def unsigned(unit: str, side: str) -> bool:
        return unsigned_acts == "auto" and stats is not None and is_nonnegative(stats, unit, side)

    sides = []
    for u in qm.units:
        seg = segment_of[u.name]
        if u.kind in ("conv", "linear"):
            sides.append(Side(u.name, "w", True, u.weight_numel, u.name in pinned, seg))
            sides.append(Side(u.name, "a", False, u.side_numel.get("a", 0), u.name in pinned, seg,
                              unsigned(u.name, "a")))
        else:  # attention matmul: both operands are activations
            sides.append(Side(u.name, "a", False, u.side_numel.get("a", 0), False, seg, unsigned(u.name, "a")))
            sides.append(Side(u.name, "w", False, u.side_numel.get("w", 0), False, seg, unsigned(u.name, "w")))
    return sides


def _elites(s) -> int:
    """search.elites, or when null max(1, P // 16): 1 at the small-run population 8, 2 at the paper's 32 (LPQ §7)."""
    return int(s.elites) if s.get("elites") is not None else max(1, int(s.population) // 16)


def _patience(s) -> int:
    """search.patience, or when null max(3, G // 5): 3 at the small-run 6 generations, 10 at the paper's 50
    (LPQ §7), so a paper-scale search is not stopped by the small-run patience."""
    return int(s.patience) if s.get("patience") is not None else max(3, int(s.generations) // 5)


def _max_evals(s) -> int:
    """search.max_evals, or when null the cap LPQ §7 derives: P + G·(P − E)."""
    if s.get("max_evals") is not None:
        return int(s.max_evals)
    p = int(s.population)
    return p + int(s.generations) * max(0, p - _elites(s))


def _loop_length(s, algorithm: str) -> tuple[int, int]:
    """(iterations, patience) of the loop. The GA: search.generations and the patience above. The paper loop
    evaluates 1 + diversity candidates per iteration, so it gets the GA's evaluation count, P + G·(P − E) = max_evals:
    ceil((max_evals − P) / (1 + D)) iterations, and a patience of the same number of evaluations."""
    if algorithm != "paper":
        return int(s.generations), _patience(s)
    per = 1 + max(0, int(s.get("diversity", 4)))
    p = int(s.population)
    iterations = max(1, math.ceil((_max_evals(s) - p) / per))
    patience = math.ceil(_patience(s) * max(1, p - _elites(s)) / per) if _patience(s) else 0
    return iterations, patience


def run_search(cfg, out_dir: Path) -> dict:
    start = time.perf_counter()
    s = cfg.search
    lp_underflow = str(s.get("lp_underflow", "saturate"))
    family = make_family(str(s.format), list(s.bits), float(s.sf_step), int(s.es_max), lp_underflow=lp_underflow)
    algorithm = str(s.get("algorithm", "ga"))
    if algorithm not in ("ga", "paper"):
        raise ValueError(f"search.algorithm={algorithm!r} is invalid: need ga (generational GA) or paper (the "
                         f"authors' EMQ-style loop)")
    generations, patience = _loop_length(s, algorithm)
    settings = GASettings(
        population=int(s.population), generations=generations, tournament=int(s.tournament),
        elites=_elites(s), p_crossover=float(s.p_crossover), k_mut=float(s.k_mut), patience=patience,
        max_evals=_max_evals(s), w_bits=float(cfg.budget.w_bits), a_bits=float(cfg.budget.a_bits),
        mode=str(cfg.budget.mode), mixed=bool(s.mixed), seed=int(cfg.seed), anchor=str(s.get("anchor", "calibrated")),
        retune=bool(s.get("retune", False)), algorithm=algorithm, diversity=int(s.get("diversity", 4)),
    )
    if settings.mode not in ("repair", "penalty"):
        raise ValueError(f"budget.mode={settings.mode!r} is invalid: need repair or penalty")
    if min(family.bits) > min(settings.w_bits, settings.a_bits):  # reject before any work
        raise ValueError(f"budget w_bits={settings.w_bits}, a_bits={settings.a_bits} is infeasible: below the "
                         f"smallest allowed width {min(family.bits)} of search.bits={list(family.bits)}")
    data, loaded, qm = build_quant_model(cfg)
    batches, calib_ids = config_calibration_batches(cfg, data)
    _, stats = search_statistics(cfg, qm, loaded.name, batches, calib_ids)  # from calib.cache when set
    bias_mode = apply_bias_correction(cfg.quant.get("bias_correction"), qm, batches, cfg.device, int(cfg.calib.seed))
    unsigned = unsigned_mode(cfg.quant.get("unsigned_acts", "off"))
    fit_settings = FitnessSettings(objective=str(s.objective), tau=float(s.tau),
                                   lam=0.0 if s.objective == "global_only" else float(s.lam),
                                   pooling=str(cfg.calib.pooling), prefix_reuse=bool(s.prefix_reuse),
                                   prefix_cache_mb=float(s.prefix_cache_mb),
                                   individuals_per_pass=int(s.get("individuals_per_pass", 1)),
                                   cr_lambda=float(s.get("cr_lambda", 0.0)))
    lpq, evaluator = prepare_search(qm, batches, stats, family, settings, fit_settings,
                                    taps=list(cfg.model.get("taps") or []) or None,
                                    pin_first_last=bool(s.pin_first_last), per_channel=bool(cfg.quant.per_channel),
                                    calib_seed=int(cfg.calib.seed), unsigned_acts=unsigned)
    log.info("%s: %d units (%d sides), taps %s, %d calibration batches of %d", loaded.name, len(qm.units),
             len(lpq.sides), evaluator.seg.taps, len(batches), len(batches[0]))
    digest = lpq.digest({"model": loaded.name, "weights": loaded.weights_source, "calib_ids": calib_ids,
                         "taps": evaluator.seg.taps, "per_channel": lpq.per_channel,
                         **({"bias_correction": bias_mode} if bias_mode != "off" else {}),
                         **equalize_labels(qm), **({"unsigned_acts": unsigned} if unsigned != "off" else {}),
                         **({"lp_underflow": lp_underflow} if family.name == "lp" and lp_underflow != "saturate" else {}),
                         "fitness": {k: v for k, v in vars(fit_settings).items() if not k.startswith("prefix_")}})
    if s.name == "none":
        best = lpq.uniform()
        lpq.population = [best]
        lpq._record(lpq.fitness_of([best]), start)
    else:
        best = lpq.run(out_dir / ".ckpt" / "search.json", resume=bool(s.resume), digest=digest)
    return _write_outputs(cfg, out_dir, qm, lpq, best, evaluator, loaded, start, digest, bias_mode)


def prepare_search(qm, batches: list[torch.Tensor], stats: dict, family: Family, settings: GASettings,
                   fitness: FitnessSettings | None = None, *, taps: list[str] | None = None,
                   pin_first_last: bool = False, per_channel: bool = False,
                   calib_seed: int = 0, unsigned_acts: str = "off") -> tuple[LPQSearch, FitnessEvaluator]:
    """The LPQ search of one format family over a prepared model (lpq.runs.steps.prepare) and its calibration
    batches and statistics, ready to run: `search.run()` returns the best genome, `best_qconfig` turns it into a
    QConfig. `taps` are the module names of the local InfoNCE terms (default: the model's residual blocks).
    unsigned_acts='auto': never-negative activations search the unsigned variant of the family."""
    seg = SegmentedModel(qm, list(taps) if taps else default_taps(qm.model))
    evaluator = FitnessEvaluator(qm, seg, batches, fitness or FitnessSettings())
    sides = build_sides(qm, seg.unit_segment, pin_first_last, stats, unsigned_acts)
    side_data = [qm.fp_weight(sd.unit).cpu().numpy() if sd.is_weight else stats[(sd.unit, sd.side)] for sd in sides]
    return LPQSearch(sides, family, None, side_data, evaluator, settings, int(calib_seed), bool(per_channel)), evaluator


def best_qconfig(lpq: LPQSearch, best, extra: dict | None = None) -> QConfig:
    """The per-layer formats of a genome as a QConfig (what `lpq evaluate quant.config=` and `lpq hwsim` read)."""
    specs = lpq.specs(best)
    layers = {}
    for u in lpq.units:
        entry = {"w": None, "a": None}
        w_sf = None
        for i in lpq.unit_sides[u]:
            entry[lpq.sides[i].side] = specs[i]
            vec = lpq.channel_sf(best, i)
            if vec is not None:
                w_sf = tuple(float(v) for v in vec)
        layers[u] = LayerQ(entry["w"], entry["a"], w_sf)
    extra = dict(extra or {})
    head = {"model": extra.pop("model")} if "model" in extra else {}
    return QConfig(layers, {**head, "search_format": lpq.family.name, **extra})


def _write_outputs(cfg, out_dir, qm, lpq: LPQSearch, best, evaluator, loaded, start, digest: str = "",
                   bias_mode: str = "off") -> dict:
    from omegaconf import OmegaConf

    bc = {"bias_correction": bias_mode} if bias_mode != "off" else {}
    bc.update(equalize_labels(qm))
    unsigned_sides = sum(sd.unsigned for sd in lpq.sides)
    if unsigned_sides:
        bc["unsigned_acts"] = "auto"
    qc = best_qconfig(lpq, best, {"model": loaded.name, "source": "lpq search", **bc})
    qc.save(out_dir / "qconfig.json")
    rows = [[h["generation"], h["best_fitness"], h["mean_fitness"], h["avg_w_bits"], h["avg_a_bits"], h["evaluations"],
             h["seconds"]] for h in lpq.history]
    atomic.write_csv(out_dir / "search_log.csv", ["generation", "best_fitness", "mean_fitness", "avg_w_bits",
                                                  "avg_a_bits", "evaluations", "seconds"], rows)
    terms = lpq.memo[lpq.key(best)]
    w_s, a_s = lpq.avg_bits(best, searched_only=True)
    bits_all = average_bits(qm, qc)
    quantizers = qc.quantizers()
    weights_bits = sum(u.weight_numel * (quantizers[u.name][0].bits if quantizers.get(u.name, (None,))[0] else 32)
                       for u in qm.units if u.kind in ("conv", "linear"))
    other_params = sum(p.numel() for p in qm.model.parameters()) - sum(u.weight_numel for u in qm.units)
    report = {
        "model": loaded.name, "family": lpq.family.name, "search": str(cfg.search.name), "per_channel": lpq.per_channel,
        "bias_correction": bias_mode, "equalize": equalize_labels(qm).get("equalize", False),
        "unsigned_acts": unsigned_mode(cfg.quant.get("unsigned_acts", "off")), "unsigned_sides": unsigned_sides,
        "targets": {"w_bits": lpq.s.w_bits, "a_bits": lpq.s.a_bits, "mode": lpq.s.mode},
        "settings": {k: v for k, v in vars(lpq.s).items()}, "bits": list(lpq.family.bits), "seed": int(cfg.seed),
        "search_config": OmegaConf.to_container(cfg.search, resolve=True),
        "fitness_settings": {k: v for k, v in vars(evaluator.s).items()}, "digest": digest,
        "calib_seed": int(cfg.calib.seed), "calib_samples": int(cfg.calib.num_samples),
        "taps": evaluator.seg.taps,
        "layers": {u.name: {"P": u.weight_numel, "A": u.act_numel} for u in qm.units},
        "fitness": terms["fitness"], "fitness_terms": {k: v for k, v in terms.items() if k != "fitness"},
        "fitness_fp_reference": evaluator.reference["fitness"],
        "fitness_minus_fp": terms["fitness"] - evaluator.reference["fitness"],
        "avg_w_bits_searched": w_s, "avg_a_bits_searched": a_s,
        "avg_w_bits": bits_all["avg_w_bits"], "avg_a_bits": bits_all["avg_a_bits"],
        "compression": bits_all["compression"],
        "weights_mb": (weights_bits + 32 * other_params) / 8 / 2**20,
        "evaluations": len(lpq.memo), "generations_run": lpq.generation,
        "prefix_reuse": {"segments_run": evaluator.stats.segments_run, "segments_total": evaluator.stats.segments_total},
        "wall_s": round(time.perf_counter() - start, 3),
    }
    atomic.write_json(out_dir / "search.json", report)
    log.info("%s %s: fitness %.5f (FP reference %.5f), bits w %.3f a %.3f, compression %.2fx, %d evaluations, %.1f s",
             loaded.name, lpq.family.name, report["fitness"], report["fitness_fp_reference"], report["avg_w_bits"] or 0,
             report["avg_a_bits"] or 0, report["compression"] or 0, report["evaluations"], report["wall_s"])
    return report
