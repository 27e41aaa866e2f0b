"""exercise7 — when the model does not fit: model and pipeline parallelism.

Fill in the two functions below, then run `labkit check exercise7`.
Keep the names and signatures: the checks call them. A device list may hold
torch.device objects or strings: [cpu, cpu] (or [cpu, meta]) anywhere, [cuda:0, cuda:1] on two GPUs.
"""

from __future__ import annotations

import torch  # noqa: F401  (you will need it)
from torch import Tensor, nn


def split_model(net: nn.Sequential, devices) -> nn.Module:
    """A module with .stages (two halves of net, stage i on devices[i]) and .devices, running them in turn."""
    # TODO: both stages must hold parameters; forward moves the activations between devices.
    raise NotImplementedError("exercise7: split_model")


def pipelined_forward(model: nn.Module, x: Tensor, micro_batches: int) -> Tensor:
    """model's output on x, computed micro-batch by micro-batch (x.chunk) through the two stages."""
    # TODO: every micro-batch passes stage 0 then stage 1, in order; concatenate the outputs in order.
    raise NotImplementedError("exercise7: pipelined_forward")
