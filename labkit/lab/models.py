"""The grader's own small ResNet-18 (width `base`), for timing checks and benchmarks that must not use the student's."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def small_resnet(base: int = 16, in_channels: int = 1, num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    """ResNet-18's layout (2 blocks per stage, widths base..8*base) for 28x28 inputs, initialised from `seed`."""
    torch.manual_seed(seed)  # every rank builds the same weights (DDP would broadcast them anyway)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 3, 1, 1, bias=False), nn.BatchNorm2d(base), nn.ReLU()]
    cin = base
    for i, width in enumerate((base, 2 * base, 4 * base, 8 * base)):
        for j in range(2):
            layers.append(Block(cin, width, 2 if i and not j else 1))
            cin = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes)]
    return nn.Sequential(*layers)
