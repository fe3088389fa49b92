"""Helpers shared by the tests of lpq.quant (not a test module)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            c = mod.num_features
            if mod.running_mean is not None:
                mod.running_mean.copy_(torch.rand(c, generator=gen) * 2 - 1)
                mod.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.25)
            if mod.weight is not None:
                mod.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                mod.bias.copy_(torch.rand(c, generator=gen) - 0.5)


class Spy:
    """A stand-in quantizer that records every tensor it is applied to and returns
    `fn(x)` (identity by default)."""

    def __init__(self, label: str, fn=None, bits: int = 8):
        self.label = label
        self.spec = f"spy:{label}"
        self.bits = bits
        self.fn = fn
        self.calls: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(x.detach().clone())
        return self.fn(x) if self.fn is not None else x

    def __repr__(self) -> str:
        return f"Spy({self.label})"


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A deep copy of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class TinyCNN(nn.Module):
    """conv(+bias) -> BN -> ReLU -> residual conv -> pooling -> linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        y = F.relu(self.bn(self.conv1(x)))
        y = y + self.conv2(y)
        return self.fc(torch.flatten(self.pool(y), 1))


def tiny_cnn() -> TinyCNN:
    torch.manual_seed(0)
    m = TinyCNN().eval()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-0.5, 0.5)
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.bias.uniform_(-0.5, 0.5)
    return m
