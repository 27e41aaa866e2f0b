"""exercise2 — one model, many replicas: nn.DataParallel.

Fill in the five functions below, then run `labkit check exercise2`.
Keep the names and signatures: the checks call them.
"""

from __future__ import annotations

import torch  # noqa: F401  (you will need it)
from torch import Tensor, nn


def replica_batch_sizes(batch_size: int, num_devices: int) -> list[int]:
    """The batch size each replica gets when DataParallel scatters `batch_size` samples over `num_devices`."""
    # TODO: follow tensor.chunk (30 on 2 -> [15, 15]; 10 on 3 -> [4, 4, 2]); ValueError below 1.
    raise NotImplementedError("exercise2: replica_batch_sizes")


def wrap_data_parallel(model: nn.Module, device_ids: list[int] | None = None) -> nn.Module:
    """`model` on its primary device, wrapped in nn.DataParallel only when there are two GPUs or more to use."""
    # TODO: device_ids None means every visible GPU; with fewer than two, return the bare model.
    raise NotImplementedError("exercise2: wrap_data_parallel")


def fit_line(x: Tensor, y: Tensor, epochs: int, lr: float, device) -> tuple[nn.Module, list[float]]:
    """Fit y ≈ w·x + b by full-batch SGD on the MSE; return the model and one loss per epoch."""
    # TODO: nn.Linear(1, 1), nn.MSELoss, torch.optim.SGD(lr=lr); x and y have shape (N, 1).
    raise NotImplementedError("exercise2: fit_line")


def save_portable(model: nn.Module, path: str) -> None:
    """Save the weights so that a bare model loads them strictly: no "module." prefix, CPU tensors."""
    # TODO: a state dict (tensors only), from the wrapped module when `model` is a DataParallel.
    raise NotImplementedError("exercise2: save_portable")


def plot_fit(x: Tensor, y: Tensor, model: nn.Module, path: str) -> None:
    """Save a PNG with the data as red dots and the model's fitted line."""
    # TODO: matplotlib (import it here); the points as markers, the fitted values as a line; save to `path`.
    raise NotImplementedError("exercise2: plot_fit")
