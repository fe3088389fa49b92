"""`lpq evaluate`: calibrate (if needed), fake-quantize and evaluate a model; writes
out_dir/metrics.json, out_dir/qconfig.json (exactly what was applied) and out_dir/predictions.csv (per
validation image: id, label, top-1 prediction; the input of `lpq compare`)."""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from ..data import calibration_subset
from ..pipeline import atomic
from ..pipeline.compare import PREDICTION_COLUMNS, PREDICTIONS
from ..quant.model import QuantModel
from ..quant.ptq import average_bits, evaluate, make_loader, uniform_qconfig
from ..quant.reconstruct import (ReconSettings, Reconstructor, load_rounding, rounding_key, save_rounding,
                                 with_rounding)
from ..search.runner import default_taps
from ..quant.qconfig import QConfig
from ..quant.bias_correction import mode_of
from .from_config import apply_bias_correction, build_quant_model, equalize_labels
from ..quant.unsigned_acts import mode_of as unsigned_mode, summary as unsigned_summary
from .steps import activation_statistics, is_none, top1

log = logging.getLogger("lpq")


def resolve_qconfig(cfg, data, qm: QuantModel) -> tuple[QConfig, dict]:
    """The qconfig to apply (from quant.config or calibrated uniform formats) and its labels; with bias
    correction (quant.bias_correction, or a qconfig searched with it) turned on in `qm` from the calibration set."""
    q = cfg.quant
    calib_ids: list[str] = []

    def calib_batches():  # drawn only when needed: a qconfig without bias correction reads no calibration image
        calib, ids = calibration_subset(data, int(cfg.calib.num_samples), int(cfg.calib.seed))
        calib_ids[:] = ids
        return [images for images, _ in make_loader(calib, int(cfg.calib.batch))]  # the last batch may be partial

    if q.get("config"):
        if q.get("pin_first_last", False):
            raise ValueError("quant.pin_first_last=true applies to uniform formats (quant.w_format / quant.a_format); a "
                             "searched qconfig pins its layers with search.pin_first_last=true")
        qc = QConfig.load(q.config)
        labels = {"qconfig": str(q.config), **equalize_labels(qm)}
        mode = mode_of(q.get("bias_correction"))
        recorded = mode_of((qc.extra or {}).get("bias_correction", "off"))
        if mode == "off" and recorded != "off":  # a qconfig searched with bias correction records its mode ...
            recon = reconstruct_settings(cfg).mode
            if recon != "none":  # ... which learned rounding replaces: it already matches each block's output
                log.info("%s: recorded bias correction (%s) replaced by quant.reconstruct=%s", q.config, recorded,
                         recon)
                labels["bias_correction_replaced_by"] = recon
            else:
                mode = recorded
        if mode != "off":
            apply_bias_correction(mode, qm, calib_batches(), cfg.device, int(cfg.calib.seed))
            labels.update(bias_correction=mode, calib_samples=len(calib_ids))
        return qc, labels
    w_fmt, a_fmt = str(q.w_format), str(q.a_format)
    labels = {"w_format": w_fmt, "a_format": a_fmt, **equalize_labels(qm)}
    if is_none(w_fmt) and is_none(a_fmt):
        return QConfig({}), labels
    batches = calib_batches()
    stats = activation_statistics(qm, batches, int(cfg.calib.subsample), int(cfg.calib.seed), cfg.device)
    unsigned = unsigned_mode(q.get("unsigned_acts", "off"))
    pin = bool(q.get("pin_first_last", False))
    qc = uniform_qconfig(qm, stats, w_fmt, a_fmt, bool(q.per_channel), int(cfg.calib.seed), unsigned_acts=unsigned,
                         pin_first_last=pin)
    if pin:
        labels["pin_first_last"] = True
    labels["calib_samples"] = len(calib_ids)
    if unsigned != "off":
        labels["unsigned_acts"] = unsigned
    mode = apply_bias_correction(q.get("bias_correction"), qm, batches, cfg.device, int(cfg.calib.seed))
    if mode != "off":
        labels["bias_correction"] = mode
    return qc, labels


def reconstruct_settings(cfg) -> ReconSettings:
    """quant.reconstruct and quant.recon.* as ReconSettings (errors name the key)."""
    q = cfg.quant
    mode = str(q.get("reconstruct", "none") or "none").lower()
    r = q.get("recon") or {}
    fields = {k: r.get(k) for k in ("iters", "lr", "batch", "samples", "reg_weight", "beta_start", "beta_end",
                                     "warmup", "drop_prob", "store_mb") if r.get(k) is not None}
    try:
        fields = {k: (int(v) if k in ("iters", "batch", "samples") else float(v)) for k, v in fields.items()}
    except (TypeError, ValueError) as err:
        raise ValueError(f"quant.recon: {err}") from None
    return ReconSettings(mode=mode, seed=int(cfg.calib.seed), **fields)


def learned_rounding(cfg, data, qm: QuantModel, qc: QConfig, labels: dict, out_dir: Path) -> dict:
    """quant.reconstruct: the learned rounding of every quantized weight (reused from quant.rounding or
    out_dir/rounding.pt when made for the same weights, quantizers, settings and images; else learned, with a
    per-block checkpoint in out_dir/.recon/) and the quantizers that apply it."""
    s = reconstruct_settings(cfg)
    quantizers = qc.quantizers()
    if s.mode == "none" or not quantizers:  # FP32 (e.g. the workflow's fp32 reference): nothing to round
        return quantizers
    if labels.get("bias_correction"):
        raise ValueError("quant.reconstruct and quant.bias_correction are exclusive: the learned rounding already "
                         "matches each block's output on the calibration set")
    calib, ids = calibration_subset(data, int(s.samples), int(cfg.calib.seed), "quant.recon.samples")
    images = [x.to(cfg.device) for x, _ in make_loader(calib, int(s.batch))]
    key = rounding_key(qm, quantizers, s, ids)
    found = None
    for path in ([Path(str(cfg.quant.rounding))] if cfg.quant.get("rounding") else []) + [out_dir / "rounding.pt"]:
        found = load_rounding(path, key)
        if found is not None:
            log.info("learned rounding from %s", path)
            break
        if path != out_dir / "rounding.pt":
            raise ValueError(f"quant.rounding={path}: not a rounding.pt made for these weights, quantizers, "
                             f"quant.recon settings and calibration images")
    if found is None:
        taps = list(cfg.model.get("taps") or []) or default_taps(qm.model)
        rec = Reconstructor(qm, quantizers, images, s, taps, ckpt=out_dir / ".recon" / "blocks.pt", key=key)
        hardened = rec.run(progress=None)
        found = (hardened, rec.report)
        save_rounding(out_dir / "rounding.pt", key, hardened, rec.report)
        shutil.rmtree(out_dir / ".recon", ignore_errors=True)  # the per-block checkpoint is no longer needed
    hardened, report = found
    labels.update(reconstruct=s.mode, recon_samples=len(ids), recon_iters=s.iters, reconstructed=sorted(hardened),
                  recon_blocks=[{k: v for k, v in b.items() if k != "layers"} for b in report])
    return with_rounding(quantizers, hardened)


def run_evaluate(cfg, out_dir: Path) -> dict:
    start = time.perf_counter()
    data, loaded, qm = build_quant_model(cfg)
    qc, labels = resolve_qconfig(cfg, data, qm)
    quantizers = learned_rounding(cfg, data, qm, qc, labels, Path(out_dir))
    qm.clamp_counts = {}
    qm.set_quantizers(quantizers)
    result = evaluate(qm, make_loader(data.val, int(cfg.eval.batch_size), int(cfg.data.get("num_workers", 0) or 0)),
                      cfg.device, cfg.eval.get("max_samples"))
    clamped = unsigned_summary(qm.clamp_counts)
    qm.clamp_counts = None
    bits = average_bits(qm, qc)
    metrics = {
        "top1": result["top1"], "top5": result["top5"], "num_samples": result["num_samples"],
        "model": loaded.name, **labels, **bits,
        "quantized_layers": len(qc.layers), "weights_source": loaded.weights_source, "data_source": data.source,
        **({"preprocess": data.preprocess} if data.preprocess else {}),
        **({"labels": data.labels} if data.labels else {}),
        **({"equalization": qm.equalize_summary} if qm.equalize_summary else {}),
        **clamped,
        "eval_seconds": round(result["eval_seconds"], 3), "seconds": round(time.perf_counter() - start, 3),
    }
    qc.extra = {"model": loaded.name, **{k: v for k, v in labels.items() if k not in ("qconfig", "recon_blocks")}}
    qc.save(out_dir / "qconfig.json")
    ids = data.val_ids[: result["num_samples"]]
    atomic.write_csv(out_dir / PREDICTIONS, PREDICTION_COLUMNS,
                     zip(ids, result["labels"], result["predictions"]))
    atomic.write_json(out_dir / "metrics.json", metrics)
    log.info("%s %s: top-1 %.2f%% top-5 %.2f%% on %d images (w %s bits, a %s bits)", loaded.name,
             labels.get("qconfig") or f"W={labels['w_format']} A={labels['a_format']}", metrics["top1"], metrics["top5"],
             metrics["num_samples"], bits["avg_w_bits"], bits["avg_a_bits"])
    return metrics
