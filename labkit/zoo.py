"""labkit's own model zoo: models a `zoo` recipe (labkit.recipe) may name. Inputs handed to a student's code,
never answers: built the same way in the grader, in a sandboxed rank and by `labkit bench`."""

from __future__ import annotations

import torch
from torch import nn


class _Block(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with BatchNorm, an identity (or 1x1 projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))


def small_resnet(base: int = 16, in_channels: int = 1, num_classes: int = 10, seed: int = 0) -> nn.Sequential:
    """ResNet-18's layout (2 blocks per stage, widths base..8*base) for 28x28 inputs, initialised from `seed`."""
    with torch.random.fork_rng(devices=[]):  # the same weights in every rank, the caller's generator untouched
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 3, 1, 1, bias=False), nn.BatchNorm2d(base), nn.ReLU()]
        cin = base
        for i, width in enumerate([base, base, 2 * base, 2 * base, 4 * base, 4 * base, 8 * base, 8 * base]):
            layers.append(_Block(cin, width, 2 if i in (2, 4, 6) else 1))
            cin = width
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


ZOO = {"small_resnet": small_resnet}  # labkit.recipe.MODELS: the models a `zoo` recipe may name
