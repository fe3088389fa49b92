"""The embedded default models, trained by `lpq train` on the embedded digits dataset:
a small residual CNN with BatchNorm and a small timm VisionTransformer."""
from __future__ import annotations

import torch
from torch import nn

from ..data.embedded import INPUT_SHAPE, NUM_CLASSES


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a (projected) shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, shortcut: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        if shortcut is not None:  # e.g. the parameter-free option A of the CIFAR ResNets
            self.shortcut = shortcut
        elif stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class DigitsCNN(nn.Module):
    """A ResNet-style CNN for 8x8 digits: stem, two residual stages, pooling, classifier."""

    lpq_taps = ("stem", "layer1", "layer2")  # LPQ local terms: each conv / residual block

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(INPUT_SHAPE[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = ResidualBlock(width, width)
        self.layer2 = ResidualBlock(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def digits_cnn() -> nn.Module:
    return DigitsCNN()


def digits_vit() -> nn.Module:
    """timm's VisionTransformer at toy size: 2x2 patches of the 8x8 image, 3 blocks."""
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(
        img_size=INPUT_SHAPE[1], patch_size=2, in_chans=INPUT_SHAPE[0], num_classes=NUM_CLASSES,
        embed_dim=48, depth=3, num_heads=3, mlp_ratio=2.0,
    )


EMBEDDED_MODELS = {"digits_cnn": digits_cnn, "digits_vit": digits_vit}
