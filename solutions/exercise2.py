"""exercise2 — reference solution: one model, many replicas with nn.DataParallel."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def replica_batch_sizes(batch_size: int, num_devices: int) -> list[int]:
    """The batch size each replica gets when DataParallel scatters `batch_size` samples over `num_devices`."""
    if batch_size < 1 or num_devices < 1:
        raise ValueError(f"batch_size and num_devices must be at least 1, got {batch_size} and {num_devices}")
    chunk = -(-batch_size // num_devices)  # scatter uses tensor.chunk: ceil(batch / n) per replica, the rest last
    sizes = []
    left = batch_size
    while left > 0:
        sizes.append(min(chunk, left))
        left -= chunk
    return sizes


def wrap_data_parallel(model: nn.Module, device_ids: list[int] | None = None) -> nn.Module:
    """`model` on its primary device, wrapped in nn.DataParallel only when there are two GPUs or more to use."""
    if device_ids is None:
        device_ids = list(range(torch.cuda.device_count()))
    primary = torch.device("cuda", device_ids[0]) if device_ids else torch.device("cpu")
    model = model.to(primary)  # DataParallel wants the module's parameters on device_ids[0]
    if len(device_ids) < 2:
        return model  # one device or none: the wrapper would only add the "module." prefix
    return nn.DataParallel(model, device_ids=device_ids)


def fit_line(x: Tensor, y: Tensor, epochs: int, lr: float, device) -> tuple[nn.Module, list[float]]:
    """Fit y ≈ w·x + b by full-batch SGD on the MSE; return the model and one loss per epoch."""
    device = torch.device(device)
    model: nn.Module = nn.Linear(1, 1)
    if device.type == "cuda":
        first = device.index or 0
        ids = [first] + [i for i in range(torch.cuda.device_count()) if i != first]
        model = wrap_data_parallel(model, ids)  # as in the course notes: every GPU when there are several
    else:
        model = model.to(device)
    x, y = x.to(device), y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.MSELoss()
    losses = []
    for _ in range(epochs):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())  # a float, not a tensor that keeps the graph alive
    return model, losses


def save_portable(model: nn.Module, path: str) -> None:
    """Save the weights so that a bare model loads them strictly: no "module." prefix, CPU tensors."""
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module  # the wrapper's state dict prefixes every key with "module."
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


def plot_fit(x: Tensor, y: Tensor, model: nn.Module, path: str) -> None:
    """Save a PNG with the data as red dots and the model's fitted line."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

    xs = x.detach().cpu().flatten()
    order = xs.argsort()  # draw the line left to right
    device = next(model.parameters()).device
    with torch.no_grad():
        fitted = model(x.detach().reshape(-1, 1).to(device)).cpu().flatten()
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(xs.tolist(), y.detach().cpu().flatten().tolist(), "ro", label="Original data")
    ax.plot(xs[order].tolist(), fitted[order].tolist(), "b-", label="Fitting line")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend()
    fig.savefig(path)
