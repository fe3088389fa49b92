"""`lpq calibrate`: the calibration set's IDs and the FP model's activation statistics, once per model
(out_dir/calib.pt + calib.json); `lpq search calib.cache=out_dir/calib.pt` reads them instead of recomputing."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..pipeline import atomic
from ..quant import calib_cache
from .from_config import build_quant_model, config_calibration_batches, search_statistics

log = logging.getLogger("lpq")


def run_calibrate(cfg, out_dir: Path) -> dict:
    start = time.perf_counter()
    if cfg.calib.get("cache"):
        raise ValueError("calib.cache is an input of lpq search; lpq calibrate writes out_dir/calib.pt (unset it)")
    data, loaded, qm = build_quant_model(cfg)
    batches, calib_ids = config_calibration_batches(cfg, data)
    key, stats = search_statistics(cfg, qm, loaded.name, batches, calib_ids)
    calib_cache.save(out_dir / "calib.pt", key, calib_ids, stats)
    info = {**calib_cache.summary(key, stats), "weights_source": loaded.weights_source, "data_source": data.source,
            "seconds": round(time.perf_counter() - start, 3)}
    atomic.write_json(out_dir / "calib.json", info)
    log.info("%s: statistics of %d tensors over %d calibration images (%d batches of %d) -> %s", loaded.name,
             len(stats), len(calib_ids), len(batches), len(batches[0]), out_dir / "calib.pt")
    return info
