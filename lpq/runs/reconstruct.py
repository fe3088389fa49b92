"""`lpq reconstruct`: learn the rounding of one fixed format assignment (a qconfig.json or calibrated uniform formats)
once, as its own step: out_dir/rounding.pt (the hardened codes, keyed by weights, quantizers, quant.recon settings
and calibration images) and out_dir/reconstruct.json (per-block errors, wall time). `lpq evaluate
quant.rounding=out_dir/rounding.pt` reuses it and refuses one made for anything else; the workflow's `reconstruct`
rule sits between `search` and `evaluate` this way."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from ..pipeline import atomic
from .evaluate import learned_rounding, reconstruct_settings, resolve_qconfig
from .from_config import build_quant_model

log = logging.getLogger("lpq")


def run_reconstruct(cfg, out_dir: Path) -> dict:
    """Learned rounding for the qconfig `cfg` describes; writes out_dir/rounding.pt and out_dir/reconstruct.json."""
    settings = reconstruct_settings(cfg)
    if settings.mode == "none":
        raise ValueError("quant.reconstruct=none: lpq reconstruct needs quant.reconstruct=adaround|brecq|qdrop")
    start = time.perf_counter()
    out_dir = Path(out_dir)
    data, loaded, qm = build_quant_model(cfg)
    qc, labels = resolve_qconfig(cfg, data, qm)
    if not qc.layers:
        raise ValueError("lpq reconstruct: no quantized layer (set quant.config, or quant.w_format / quant.a_format)")
    learned_rounding(cfg, data, qm, qc, labels, out_dir)
    summary = {"model": loaded.name, **labels, "rounding": str(out_dir / "rounding.pt"),
               "seconds": round(time.perf_counter() - start, 3)}
    atomic.write_json(out_dir / "reconstruct.json", summary)
    log.info("%s: learned rounding of %d layers (%s) in %.1f s -> %s", loaded.name, len(labels["reconstructed"]),
             settings.mode, summary["seconds"], out_dir / "rounding.pt")
    return summary
