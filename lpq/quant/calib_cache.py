"""The calibration cache `calib.pt` (PIPELINE §3.2 rule `calibrate`): calibration sample IDs and the FP model's
activation statistics, computed once per model and read by every `lpq search` job of that model
(`calib.cache=PATH`), so dozens of search and reference jobs do not each repeat the calibration forward passes.

A cache is only used when its key equals the consumer's: model name, a sha256 of the FP32 (BatchNorm-folded)
weights, the calibration IDs, batch size, statistics subsample and seed, and the quantized units. Any mismatch is
an error naming the field, never a silent recomputation or a stale reuse.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..pipeline import atomic

SCHEMA = 1


def weights_digest(qm) -> str:
    """sha256 over the FP32 weights of every quantized unit, in execution order."""
    h = hashlib.sha256()
    for unit in qm.units:
        if unit.kind in ("conv", "linear"):  # attention matmuls have no weight
            name = unit.name
            w = qm.fp_weight(name).detach().float().cpu().contiguous().numpy()
            h.update(name.encode())
            h.update(str(w.shape).encode())
            h.update(w.tobytes())
    return h.hexdigest()


def calibration_key(model_name: str, qm, calib_ids: list[str], batch: int, subsample: int, seed: int) -> dict:
    return {
        "schema": SCHEMA, "model": str(model_name), "weights_sha256": weights_digest(qm),
        "calib_ids_sha256": hashlib.sha256("\n".join(calib_ids).encode()).hexdigest(), "num_samples": len(calib_ids),
        "batch": int(batch), "subsample": int(subsample), "seed": int(seed), "units": list(qm.unit_names),
    }


def save(path: str | Path, key: dict, calib_ids: list[str], stats: dict[tuple[str, str], np.ndarray]) -> None:
    """Atomically write calib.pt (torch.save of plain tensors, loadable with weights_only=True)."""
    obj = {"key": key, "ids": list(calib_ids),
           "stats": {f"{u}|{s}": torch.from_numpy(np.ascontiguousarray(v)) for (u, s), v in stats.items()}}
    atomic.torch_save(path, obj)


def load_statistics(path: str | Path, key: dict) -> dict[tuple[str, str], np.ndarray]:
    """The statistics of a cache whose key equals `key`; ValueError naming the first differing field otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"calib.cache={path} does not exist (run `lpq calibrate ... out_dir=DIR` first)")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign file
        raise ValueError(f"calib.cache={path} is not a calibration cache: {err}") from None
    stored = obj.get("key", {}) if isinstance(obj, dict) else {}
    for field in key:
        if stored.get(field) != key[field]:
            shown = (lambda v: v if not isinstance(v, list) else f"{len(v)} entries")
            raise ValueError(f"calib.cache={path} does not match this run: {field} is {shown(stored.get(field))!r} "
                             f"in the cache, {shown(key[field])!r} here (rerun `lpq calibrate` with the same "
                             "model, weights and calib.* settings)")
    out = {}
    for k, v in obj["stats"].items():
        unit, side = k.rsplit("|", 1)
        out[(unit, side)] = v.numpy()
    return out


def summary(key: dict, stats: dict[tuple[str, str], np.ndarray]) -> dict:
    """calib.json: the key and per-(unit, side) sample count and max |x| (human-readable companion of calib.pt)."""
    return {"key": {k: v for k, v in key.items() if k != "units"}, "units": len(key["units"]),
            "statistics": {f"{u}|{s}": {"samples": int(v.size), "absmax": float(np.abs(v).max()) if v.size else 0.0}
                           for (u, s), v in stats.items()}}
