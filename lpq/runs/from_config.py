"""The shared steps of a run driven by a composed config (what the `lpq` commands and the workflow jobs use):
model + data from the `model` and `data` groups, calibration batches from `calib`, statistics from `calib.cache`
or collected. Thin over lpq.runs.steps, which takes explicit arguments."""
from __future__ import annotations

import logging

import torch

from ..data import build_data, calibration_subset, resolve_data_cfg
from ..models import build_model
from ..quant import calib_cache
from ..quant import bias_correction
from ..quant.model import QuantModel
from .steps import Statistics, activation_statistics, calibration_batches, prepare

log = logging.getLogger("lpq")


def build_quant_model(cfg):
    """(data, loaded model, QuantModel): data, BN-folded model wrapped for quantization, and the provenance of both."""
    loaded = build_model(cfg.model)
    data = build_data(resolve_data_cfg(cfg.data, loaded.module))
    example = data.calib[0][0].unsqueeze(0)  # never read an evaluation image in lpq search (LPQ §6)
    qm = prepare(loaded.module, example, skip=tuple(cfg.quant.skip), attention_matmuls=bool(cfg.quant.attention_matmuls),
                 device=cfg.device, equalize=equalize_of(cfg), absorb_sigmas=absorb_sigmas_of(cfg),
                 equalize_rule=equalize_rule_of(cfg))
    return data, loaded, qm


def config_calibration_batches(cfg, data) -> tuple[list[torch.Tensor], list[str]]:
    """The `calib.num_samples` images drawn with `calib.seed` as fixed batches of `calib.batch`, and their IDs."""
    calib, ids = calibration_subset(data, int(cfg.calib.num_samples), int(cfg.calib.seed))
    return calibration_batches(calib, int(cfg.calib.batch), cfg.device), ids


def search_statistics(cfg, qm: QuantModel, model_name: str, batches: list[torch.Tensor],
                      calib_ids: list[str]) -> tuple[str, Statistics]:
    """(key, statistics) exactly as `lpq search` uses them: read from `calib.cache` when set (key checked), else
    collected from the calibration batches."""
    key = calib_cache.calibration_key(model_name, qm, calib_ids, int(cfg.calib.batch), int(cfg.calib.subsample),
                                      int(cfg.calib.seed))
    cache = cfg.calib.get("cache")
    if cache:
        stats = calib_cache.load_statistics(cache, key)
        log.info("calibration statistics from %s (%d tensors)", cache, len(stats))
        return key, stats
    return key, activation_statistics(qm, batches, int(cfg.calib.subsample), int(cfg.calib.seed), cfg.device)


def apply_bias_correction(value, qm: QuantModel, batches: list[torch.Tensor], device: str = "cpu",
                          seed: int = 0) -> str:
    """quant.bias_correction (false | true = weights | inputs) on `qm` from the calibration batches; the mode."""
    mode = bias_correction.enable(qm, bias_correction.mode_of(value), batches, seed, device)
    if mode != "off":
        log.info("bias correction (%s) from %d calibration batches", mode, len(batches))
    return mode


EQUALIZE = (False, True, "absorb")


def _recorded(cfg, key: str):
    """`key` as recorded in the quant.config qconfig (None when there is none or it lacks the key)."""
    if not cfg.quant.get("config"):
        return None
    import json
    from pathlib import Path

    path = Path(str(cfg.quant.config))
    try:
        return json.loads(path.read_text()).get(key) if path.is_file() else None
    except (json.JSONDecodeError, AttributeError):
        return None  # QConfig.load reports the file's problem


def equalize_of(cfg) -> bool | str:
    """quant.equalize (false | true | absorb), or the mode a quant.config qconfig was made with (its per-layer
    formats fit the equalized weights only)."""
    value = cfg.quant.get("equalize", False)
    if value not in EQUALIZE or (value != "absorb" and not isinstance(value, bool)):
        raise ValueError(f"quant.equalize={value!r} is invalid: need false, true (cross-layer equalization + bias "
                         f"absorption) or absorb (bias absorption only)")
    if value is False:
        value = _recorded(cfg, "equalize") or False
    return value


def equalize_rule_of(cfg) -> str:
    recorded = _recorded(cfg, "equalize_rule") if cfg.quant.get("equalize", False) is False else None
    return str(recorded or cfg.quant.get("equalize_rule", "joint"))


def absorb_sigmas_of(cfg) -> float:
    recorded = _recorded(cfg, "absorb_sigmas") if cfg.quant.get("equalize", False) is False else None
    value = recorded if recorded is not None else cfg.quant.get("absorb_sigmas", 0.0)
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = -1.0
    if not value >= 0:
        raise ValueError(f"quant.absorb_sigmas={cfg.quant.get('absorb_sigmas')!r} is invalid: need a number >= 0 "
                         f"(0 centres each channel at its mean; DFQ uses 3)")
    return value


def equalize_labels(qm: QuantModel) -> dict:
    """What a qconfig made on equalized weights records (lpq evaluate quant.config= re-applies it)."""
    eq = qm.equalize_summary
    if not eq:
        return {}
    out = {"equalize": True if eq["scaled"] else "absorb", "absorb_sigmas": eq["absorb_sigmas"]}
    if eq["scaled"]:
        out["equalize_rule"] = eq["rule"]
    return out
