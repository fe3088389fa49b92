"""The steps every run shares, with explicit arguments (no Hydra config): prepare a model for fake quantization,
draw the fixed calibration batches, collect activation statistics, evaluate top-1. `lpq evaluate`, `lpq calibrate`
and `lpq search` are built from them, and a script can call them directly (docs/api.md)."""
from __future__ import annotations

import numpy as np
import torch

from ..quant.equalize import equalize as equalize_layers
from ..quant.fold import fold_batchnorm
from ..quant.model import QuantModel
from ..quant.ptq import collect_statistics, evaluate, make_loader
from ..quant.qconfig import QConfig

Statistics = dict[tuple[str, str], np.ndarray]


def is_none(value) -> bool:
    """A format value meaning "not quantized": None, none, fp32 or empty."""
    return value is None or str(value).strip().lower() in ("none", "fp32", "")


def prepare(module: torch.nn.Module, example: torch.Tensor, *, skip: tuple[str, ...] = (),
            attention_matmuls: bool = True, device: str = "cpu", equalize: bool | str = False,
            absorb_sigmas: float = 0.0, equalize_rule: str = "joint") -> QuantModel:
    """Fold BatchNorm into the preceding convs (in place), optionally equalize across layers and absorb biases
    (equalize=True; "absorb": bias absorption only; exact in FP32: lpq.quant.equalize), and wrap the module for fake quantization; `example` is one
    input batch (a calibration image, never an evaluation image: LPQ §6) that traces the quantizable units."""
    model = module.to(device)
    fold_batchnorm(model)
    summary = (equalize_layers(model, scale=equalize != "absorb", sigmas=float(absorb_sigmas), rule=equalize_rule)
               if equalize not in (False, None, "off") else None)
    qm = QuantModel(model, example.to(device), skip=tuple(skip), attention_matmuls=bool(attention_matmuls))
    qm.equalize_summary = summary
    return qm


def calibration_batches(dataset: torch.utils.data.Dataset, batch: int,
                        device: str = "cpu") -> list[torch.Tensor]:
    """The calibration images as fixed batches (composition and order kept, incomplete last batch dropped: LPQ §6)."""
    if len(dataset) < batch:
        raise ValueError(f"calib.num_samples={len(dataset)} is smaller than calib.batch={batch}: no complete batch")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, drop_last=True)
    return [images.to(device) for images, _ in loader]


def activation_statistics(qm: QuantModel, batches: list[torch.Tensor], subsample: int = 65536, seed: int = 0,
                          device: str = "cpu") -> Statistics:
    """Per (unit, side) sample of the FP model's activations on the calibration batches: what format calibration
    (uniform formats, LPQ's scale factors) fits to."""
    return collect_statistics(qm, [(x, None) for x in batches], int(subsample), int(seed), device)


def top1(qm: QuantModel, qconfig: QConfig, dataset: torch.utils.data.Dataset, *, batch_size: int = 256,
         device: str = "cpu", max_samples: int | None = None, num_workers: int = 0) -> dict:
    """Apply `qconfig` (an empty QConfig = FP32) and evaluate: top1/top5 in percent, labels, predictions."""
    qm.set_quantizers(qconfig.quantizers())
    return evaluate(qm, make_loader(dataset, int(batch_size), int(num_workers)), device, max_samples)
