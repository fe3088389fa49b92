"""Post-training quantization: calibration statistics, uniform quantization configs, bit
accounting and top-1/top-5 evaluation."""
from __future__ import annotations

import logging
import time
import zlib

import numpy as np
import torch

from ..pipeline.progress import progress
from .calibrate import resolve
from .model import QuantModel
from .qconfig import LayerQ, QConfig

log = logging.getLogger("lpq")


def make_loader(dataset, batch_size: int, num_workers: int = 0, seed: int = 0) -> torch.utils.data.DataLoader:
    """A deterministic, unshuffled loader (fixed batch composition and order)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                       generator=gen, drop_last=False)


MIN_SUFFIX = ":min"  # stats[(unit, side + MIN_SUFFIX)]: the exact minimum of that tensor over the calibration set


@torch.no_grad()
def collect_statistics(qm: QuantModel, loader, subsample: int, seed: int, device: str = "cpu") -> dict[tuple[str, str], np.ndarray]:
    """Per (unit, side): a seeded subsample of the FP model's activations over the calibration
    set, always including each batch's largest-magnitude element (so max|x| is exact); and per
    (unit, side + ':min') the exact minimum over every element (a 1-element array)."""
    per_batch = max(1, int(np.ceil(subsample / max(1, len(loader)))))
    chunks: dict[tuple[str, str], list[np.ndarray]] = {}
    minima: dict[tuple[str, str], np.float32] = {}
    batch_index = [0]

    def observe(name: str, side: str, x: torch.Tensor) -> None:
        flat = x.detach().reshape(-1).float().cpu().numpy()
        key_seed = [seed, batch_index[0], zlib.crc32(f"{name}/{side}".encode())]
        rng = np.random.default_rng(key_seed)
        take = flat if flat.size <= per_batch else flat[rng.choice(flat.size, per_batch, replace=False)]
        peak = flat[np.argmax(np.abs(flat))] if flat.size else np.float32(0)
        chunks.setdefault((name, side), []).append(np.append(take, peak).astype(np.float32))
        if flat.size:  # the exact minimum over every element: quant.unsigned_acts decides on it
            low = np.float32(flat.min())
            key = (name, side + MIN_SUFFIX)
            minima[key] = low if key not in minima else min(minima[key], low)

    qm.set_quantizers({})
    qm.observer = observe
    try:
        for images, _labels in progress(loader, desc="calibration statistics", unit="batch"):
            qm(images.to(device))
            batch_index[0] += 1
    finally:
        qm.observer = None
    out = {k: np.concatenate(v) for k, v in chunks.items()}
    out.update({k: np.array([v], dtype=np.float32) for k, v in minima.items()})
    return out


def uniform_qconfig(qm: QuantModel, stats: dict, w_format: str, a_format: str, per_channel: bool, seed: int = 0,
                    unsigned_acts: str = "off", pin_first_last: bool = False) -> QConfig:
    """Resolve uniform formats (with `*` or default scale rules) for every unit. Both operands
    of attention matmuls are activations and use a_format. unsigned_acts='auto': an activation that is
    non-negative on the calibration set gets the unsigned variant of a_format (lpq.quant.unsigned_acts).
    pin_first_last: the first and last conv/linear layers get both formats at 8 bits (`at_width`)."""
    from ..formats.widths import at_width
    from .unsigned_acts import activation_template

    layers_only = [u.name for u in qm.units if u.kind in ("conv", "linear")]
    pinned = {layers_only[0], layers_only[-1]} if pin_first_last and layers_only else set()

    def act(unit: str, side: str) -> str:
        fmt = at_width(a_format, 8) if unit in pinned else a_format
        return activation_template(fmt, stats, unit, side, unsigned_acts)

    layers: dict[str, LayerQ] = {}
    for unit in progress(qm.units, desc="calibrate formats", unit="layer"):
        if unit.kind in ("qk", "av"):
            w = resolve(act(unit.name, "w"), stats[(unit.name, "w")], False, seed)
            a = resolve(act(unit.name, "a"), stats[(unit.name, "a")], False, seed)
            w_spec, w_sf = (w.spec if w else None), None
        else:
            w_fmt = at_width(w_format, 8) if unit.name in pinned else w_format
            w = resolve(w_fmt, qm.fp_weight(unit.name).cpu().numpy(), per_channel, seed)
            a = resolve(act(unit.name, "a"), stats[(unit.name, "a")], False, seed)
            w_spec, w_sf = (w.spec, w.channel_sf) if w else (None, None)
        if w_spec is None and a is None:
            continue
        layers[unit.name] = LayerQ(w_spec, a.spec if a else None, tuple(w_sf) if w_sf else None)
    return QConfig(layers)


def average_bits(qm: QuantModel, qconfig: QConfig) -> dict[str, float | None]:
    """Parameter-weighted weight bits and element-weighted activation bits over the quantized
    sides (LPQ §4.3); compression = 32 / avg_w_bits."""
    quantizers = qconfig.quantizers()
    w_num = w_den = a_num = a_den = 0.0
    for unit in qm.units:
        wq, aq = quantizers.get(unit.name, (None, None))
        if unit.kind in ("qk", "av"):
            for side, q in (("w", wq), ("a", aq)):
                if q is not None:
                    a_num += unit.side_numel.get(side, 0) * q.bits
                    a_den += unit.side_numel.get(side, 0)
            continue
        if wq is not None:
            w_num += unit.weight_numel * wq.bits
            w_den += unit.weight_numel
        if aq is not None:
            a_num += unit.side_numel.get("a", 0) * aq.bits
            a_den += unit.side_numel.get("a", 0)
    avg_w = w_num / w_den if w_den else None
    avg_a = a_num / a_den if a_den else None
    return {"avg_w_bits": avg_w, "avg_a_bits": avg_a, "compression": (32.0 / avg_w) if avg_w else None}


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, device: str = "cpu", max_samples: int | None = None) -> dict:
    """Top-1 and top-5 accuracy (percent) over the loader, and each image's label and top-1 prediction in loader
    order (`labels`, `predictions`: what paired tests between configurations need)."""
    correct1 = correct5 = seen = 0
    all_labels: list[torch.Tensor] = []
    all_preds: list[torch.Tensor] = []
    start = time.perf_counter()
    for images, labels in progress(loader, desc="evaluate", unit="batch"):
        if max_samples is not None and seen >= max_samples:
            break
        if max_samples is not None and seen + len(labels) > max_samples:
            images, labels = images[: max_samples - seen], labels[: max_samples - seen]
        logits = model(images.to(device)).float().cpu()
        if len(labels) and int(labels.max()) >= logits.shape[1]:
            raise ValueError(f"validation label {int(labels.max())} is out of range for a model with {logits.shape[1]} "
                             "outputs: the class folders do not match the model's classes (see data.labels: folder, "
                             "imagenet, index)")
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        correct1 += int((top[:, 0] == labels).sum())
        correct5 += int((top == labels[:, None]).any(dim=1).sum())
        seen += len(labels)
        all_labels.append(labels.long())
        all_preds.append(top[:, 0].long())
    if seen == 0:
        raise ValueError("the validation set is empty")
    return {"top1": 100.0 * correct1 / seen, "top5": 100.0 * correct5 / seen, "num_samples": seen,
            "eval_seconds": time.perf_counter() - start,
            "labels": torch.cat(all_labels).tolist(), "predictions": torch.cat(all_preds).tolist()}
