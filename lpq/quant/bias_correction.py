"""Bias correction (`quant.bias_correction=true`): the per-input-channel means of every conv/linear layer's FP
input over the calibration batches, which QuantModel.set_bias_correction turns into corrected biases
b − (W_q − W)·E[x] (Nagel et al. 2019, §4.2, with the expectation measured on the calibration set)."""
from __future__ import annotations

import torch

from .model import QuantModel


@torch.no_grad()
def input_channel_means(qm: QuantModel, batches: list[torch.Tensor], device: str = "cpu") -> dict[str, torch.Tensor]:
    """{layer: E[x] per input channel} of each quantized conv/linear on the FP model over `batches` (every
    element of every batch weighted equally; conv inputs are averaged over batch and space, linear inputs over
    every dimension but the last)."""
    layers = {u.name for u in qm.units if u.kind in ("conv", "linear")}
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def observe(name: str, side: str, x: torch.Tensor) -> None:
        if name not in layers or side != "a":
            return
        x = x.detach().double()
        if x.dim() == 4:
            flat = x.transpose(0, 1).reshape(x.shape[1], -1)
        else:
            flat = x.reshape(-1, x.shape[-1]).T
        sums[name] = sums.get(name, 0) + flat.sum(1)
        counts[name] = counts.get(name, 0) + flat.shape[1]

    qm.set_quantizers({})
    qm.observer = observe
    try:
        for images in batches:
            qm(images.to(device))
    finally:
        qm.observer = None
    return {name: (sums[name] / counts[name]).float() for name in sums}
