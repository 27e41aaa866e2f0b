"""exercise1 — reference solution: put tensors and models where the work happens."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


def pick_device(prefer: str = "cuda") -> torch.device:
    """The device to compute on: the first CUDA device when one is usable and preferred, else the CPU."""
    if prefer == "cuda" and torch.cuda.is_available():
        return torch.device("cuda", 0)
    return torch.device("cpu")


def to_device(obj: Any, device: str | torch.device) -> Any:
    """A copy of `obj` with every tensor inside dicts, lists, tuples and namedtuples moved to `device`."""
    device = torch.device(device)
    if isinstance(obj, torch.Tensor):
        # Host -> GPU copies may overlap with compute; from pinned memory they really are asynchronous.
        return obj.to(device, non_blocking=device.type == "cuda")
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple takes its fields as arguments
        return type(obj)(*(to_device(v, device) for v in obj))
    if isinstance(obj, dict):
        return type(obj)((k, to_device(v, device)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj  # numbers, strings, None, ...: nothing to move


def place_model(model: nn.Module, device: str | torch.device) -> nn.Module:
    """The model with every parameter and buffer on `device`."""
    return model.to(torch.device(device))  # Module.to moves parameters AND buffers, in place, and returns self


def make_loader(dataset: Dataset, batch_size: int, device: str | torch.device) -> DataLoader:
    """A shuffling DataLoader whose batches are pinned when they are headed for a CUDA device."""
    pin = torch.device(device).type == "cuda"  # page-locked host memory only speeds up host -> GPU copies
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, pin_memory=pin)


def build_on(device: str | torch.device, builder: Callable[[], Any]) -> Any:
    """builder()'s result, every tensor it creates without naming a device made on `device`; the caller's defaults
    are unchanged afterwards."""
    device = torch.device(device)
    # On CUDA the current GPU is what "cuda" and .cuda() mean inside builder(); elsewhere there is none to set.
    gpu = torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()
    with gpu, device:  # a torch.device as a context: factory functions (torch.zeros, nn.Linear) default to it
        return builder()


def sum_on(tensors: list[torch.Tensor], device: str | torch.device) -> torch.Tensor:
    """The elementwise sum of `tensors` (one shape, any devices) as a new tensor on `device`."""
    device = torch.device(device)
    total = torch.zeros(tensors[0].shape, dtype=tensors[0].dtype, device=device)  # new: never a caller's tensor
    for t in tensors:
        total += t.to(device)  # no operation mixes devices (copy_ aside): bring each operand to `device` first
    return total
