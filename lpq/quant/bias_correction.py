"""Bias correction (`quant.bias_correction`): statistics of every conv/linear layer's FP input over the
calibration batches, which QuantModel.set_bias_correction turns into corrected biases.

- `weights` (or `true`): b − (W_q − W)·E[x], the expected output shift of weight quantization removed (Nagel et
  al. 2019, §4.2, with E[x] measured on the calibration set).
- `inputs`: b − (W_q·E[aq(x)] − W·E[x]), also removing the mean shift the layer's own activation quantizer
  causes (E[aq(x)] from a seeded sample of FP input vectors). This project's extension: formats whose rounding is
  biased in value (LP rounds in the log domain and never underflows to 0) shift every activation's mean."""
from __future__ import annotations

import torch

from .model import QuantModel

MODES = ("off", "weights", "inputs")


def mode_of(value) -> str:
    """quant.bias_correction as a mode: false/none/off -> off, true/weights -> weights, inputs -> inputs."""
    text = str(value).strip().lower()
    if text in ("false", "none", "off", "0", ""):
        return "off"
    if text in ("true", "weights", "1"):
        return "weights"
    if text == "inputs":
        return "inputs"
    raise ValueError(f"quant.bias_correction={value!r} is invalid: need false, true (= weights), weights or inputs")


@torch.no_grad()
def input_channel_stats(qm: QuantModel, batches: list[torch.Tensor], samples: int = 2048, seed: int = 0,
                        device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """({layer: E[x] per input channel}, {layer: [C, S] sampled FP input vectors}) of each quantized conv/linear
    over `batches` (every element weighted equally; conv inputs are vectors over channels at one batch and spatial
    position, linear inputs vectors over the last dimension; the sampled positions are seeded)."""
    layers = {u.name for u in qm.units if u.kind in ("conv", "linear")}
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    picks: dict[str, list[torch.Tensor]] = {}
    per_batch = max(1, -(-samples // max(1, len(batches))))
    gen = torch.Generator().manual_seed(int(seed))

    def observe(name: str, side: str, x: torch.Tensor) -> None:
        if name not in layers or side != "a":
            return
        x = x.detach()
        flat = x.transpose(0, 1).reshape(x.shape[1], -1) if x.dim() == 4 else x.reshape(-1, x.shape[-1]).T
        sums[name] = sums.get(name, 0) + flat.double().sum(1)
        counts[name] = counts.get(name, 0) + flat.shape[1]
        idx = torch.randperm(flat.shape[1], generator=gen)[:per_batch].to(flat.device)
        picks.setdefault(name, []).append(flat[:, idx].float().cpu())

    qm.set_quantizers({})
    qm.observer = observe
    try:
        for images in batches:
            qm(images.to(device))
    finally:
        qm.observer = None
    means = {name: (sums[name] / counts[name]).float() for name in sums}
    return means, {name: torch.cat(v, 1)[:, :samples] for name, v in picks.items()}


def input_channel_means(qm: QuantModel, batches: list[torch.Tensor], device: str = "cpu") -> dict[str, torch.Tensor]:
    """{layer: E[x] per input channel} of each quantized conv/linear's FP input over `batches`."""
    return input_channel_stats(qm, batches, samples=1, device=device)[0]


def enable(qm: QuantModel, mode: str, batches: list[torch.Tensor], seed: int = 0, device: str = "cpu") -> str:
    """Bias correction in `mode` (see mode_of) on `qm` from `batches`; returns the mode."""
    mode = mode_of(mode)
    if mode == "off":
        qm.set_bias_correction(None)
        return mode
    means, samples = input_channel_stats(qm, batches, seed=seed, device=device)
    qm.set_bias_correction(means, samples if mode == "inputs" else None)
    return mode
