"""`lpq calibrate`: the calibration set's IDs and the FP model's activation statistics, once per model
(out_dir/calib.pt + calib.json); `lpq search calib.cache=out_dir/calib.pt` reads them instead of recomputing."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..pipeline import atomic
from ..quant import calib_cache
from ..quant.ptq import collect_statistics
from .evaluate import build_quant_model

log = logging.getLogger("lpq")


def search_statistics(cfg, qm, model_name: str, batches: list[torch.Tensor], calib_ids: list[str]):
    """(key, statistics) exactly as `lpq search` uses them: read from `calib.cache` when set (key checked), else
    collected from the calibration batches."""
    key = calib_cache.calibration_key(model_name, qm, calib_ids, int(cfg.calib.batch), int(cfg.calib.subsample),
                                      int(cfg.calib.seed))
    cache = cfg.calib.get("cache")
    if cache:
        stats = calib_cache.load_statistics(cache, key)
        log.info("calibration statistics from %s (%d tensors)", cache, len(stats))
        return key, stats
    stats = collect_statistics(qm, [(x, None) for x in batches], int(cfg.calib.subsample), int(cfg.calib.seed),
                               cfg.device)
    return key, stats


def run_calibrate(cfg, out_dir: Path) -> dict:
    from .search import calibration_batches

    start = time.perf_counter()
    if cfg.calib.get("cache"):
        raise ValueError("calib.cache is an input of lpq search; lpq calibrate writes out_dir/calib.pt (unset it)")
    data, loaded, qm = build_quant_model(cfg)
    batches, calib_ids = calibration_batches(cfg, data)
    key, stats = search_statistics(cfg, qm, loaded.name, batches, calib_ids)
    calib_cache.save(out_dir / "calib.pt", key, calib_ids, stats)
    info = {**calib_cache.summary(key, stats), "weights_source": loaded.weights_source, "data_source": data.source,
            "seconds": round(time.perf_counter() - start, 3)}
    atomic.write_json(out_dir / "calib.json", info)
    log.info("%s: statistics of %d tensors over %d calibration images (%d batches of %d) -> %s", loaded.name,
             len(stats), len(calib_ids), len(batches), len(batches[0]), out_dir / "calib.pt")
    return info
