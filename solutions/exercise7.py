"""exercise7 — model and pipeline parallelism (reference solution)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SplitModel(nn.Module):
    """Two stages of one Sequential, stage i on devices[i]."""

    def __init__(self, net: nn.Sequential, devices) -> None:
        super().__init__()
        self.devices = [torch.device(d) for d in devices]
        half = max(1, len(net) // 2)  # by layer count; a real split balances compute
        self.stages = nn.ModuleList([net[:half].to(self.devices[0]), net[half:].to(self.devices[1])])

    def forward(self, x: Tensor) -> Tensor:
        h = self.stages[0](x.to(self.devices[0]))
        return self.stages[1](h.to(self.devices[1]))  # autograd carries the gradient back across the copy


def split_model(net: nn.Sequential, devices) -> nn.Module:
    """A module with .stages (two halves of net, stage i on devices[i]) and .devices, running them in turn."""
    return SplitModel(net, devices)


def pipelined_forward(model: nn.Module, x: Tensor, micro_batches: int) -> Tensor:
    """model's output on x, computed micro-batch by micro-batch (x.chunk) through the two stages."""
    first, second = model.stages
    outs, waiting = [], None
    for chunk in x.chunk(micro_batches):
        # GPipe order: queue stage 0 of this chunk before stage 1 of the previous one, so both devices work.
        h = first(chunk.to(model.devices[0])).to(model.devices[1])
        if waiting is not None:
            outs.append(second(waiting))
        waiting = h
    outs.append(second(waiting))
    return torch.cat(outs)
