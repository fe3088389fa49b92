"""CIFAR-10 ResNets of He et al. (2016), "option A" (parameter-free shortcuts), written here.

The layout is the one of the published pretrained checkpoints (akamaster/pytorch_resnet_cifar10,
BSD-2): `conv1`, `bn1`, `layer{1,2,3}.{i}.{conv1,bn1,conv2,bn2}`, `linear`; depth = 6 n + 2 with n
BasicBlocks per stage (20, 32, 44, 56, 110, 1202 are published). The first block of stages 2 and 3
has stride 2 and a shortcut that subsamples by 2 and zero-pads C/4 channels on each side.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embedded import ResidualBlock

PUBLISHED_DEPTHS = (20, 32, 44, 56, 110, 1202)
INPUT_SIZE = (3, 32, 32)
NUM_CLASSES = 10


class PadShortcut(nn.Module):
    """Option A: x[:, :, ::2, ::2], then `pad` zero channels before and after (no parameters)."""

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(ResidualBlock):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the option-A shortcut (identity at equal shape), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        down = stride != 1 or cin != cout
        super().__init__(cin, cout, stride, PadShortcut(cout // 4) if down else nn.Identity())


class CifarResNet(nn.Module):
    """3x3 stem (16 channels), three stages of n BasicBlocks (16, 32, 64 channels), global pooling, Linear(64, 10)."""

    def __init__(self, depth: int, num_classes: int = NUM_CLASSES):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"model.depth={depth} is invalid: a CIFAR ResNet has depth 6n+2 "
                             f"(published: {', '.join(map(str, PUBLISHED_DEPTHS))})")
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        stages, cin = [], 16
        for width, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(cin, width, stride if i == 0 else 1))
                cin = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(64, num_classes)
        # LPQ's local contrastive terms: the output of every BasicBlock
        self.lpq_taps = tuple(f"layer{s}.{i}" for s in (1, 2, 3) for i in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(self.pool(x), 1))


def cifar_resnet(depth: int, num_classes: int = NUM_CLASSES) -> CifarResNet:
    """The option-A CIFAR ResNet of the given depth (random weights: load a checkpoint before use)."""
    return CifarResNet(int(depth), num_classes)
