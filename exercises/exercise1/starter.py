"""exercise1 — put tensors and models where the work happens.

Fill in the six functions below, then run `labkit check exercise1`.
Keep the names and signatures: the checks call them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def pick_device(prefer: str = "cuda") -> torch.device:
    """The device to compute on: torch.device("cuda", 0) when CUDA is usable and preferred, else the CPU."""
    # TODO: prefer is "cuda" or "cpu"; ask torch whether CUDA is usable.
    raise NotImplementedError("exercise1: pick_device")


def to_device(obj: Any, device: str | torch.device) -> Any:
    """A copy of `obj` with every tensor inside dicts, lists, tuples and namedtuples moved to `device`."""
    # TODO: recurse into containers, keep their types, leave non-tensors alone, never change the caller's objects.
    raise NotImplementedError("exercise1: to_device")


def place_model(model: nn.Module, device: str | torch.device) -> nn.Module:
    """The model with every parameter and buffer on `device`."""
    # TODO: one line is enough; return the model.
    raise NotImplementedError("exercise1: place_model")


def make_loader(dataset: Dataset, batch_size: int, device: str | torch.device) -> DataLoader:
    """A shuffling DataLoader whose batches are pinned when they are headed for a CUDA device."""
    # TODO: shuffle every epoch; pin_memory only when `device` is a CUDA device.
    raise NotImplementedError("exercise1: make_loader")


def build_on(device: str | torch.device, builder: Callable[[], Any]) -> Any:
    """builder()'s result, every tensor it creates without naming a device made on `device`; the caller's defaults
    are unchanged afterwards."""
    # TODO: a torch.device is a context manager (with torch.device(device): ...); for a CUDA device also enter
    #       torch.cuda.device(device), so that "cuda" inside builder() means that GPU.
    raise NotImplementedError("exercise1: build_on")


def sum_on(tensors: list[torch.Tensor], device: str | torch.device) -> torch.Tensor:
    """The elementwise sum of `tensors` (one shape, any devices) as a new tensor on `device`."""
    # TODO: no operation mixes tensors on two devices (copy_ aside): move each one to `device` before adding;
    #       start from a new tensor, never from one of the caller's.
    raise NotImplementedError("exercise1: sum_on")
