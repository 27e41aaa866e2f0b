"""exercise5 — DataParallel by hand (reference solution)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def split_batch(X: Tensor, y: Tensor, devices, dim: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Split X and y along `dim` (the batch dimension) like DataParallel's scatter and put shard i on devices[i]."""
    xs = X.chunk(len(devices), dim)  # chunk semantics: 10 on 3 -> 4, 4, 2; fewer samples -> fewer shards
    ys = y.chunk(len(devices), dim)  # dim=1: time-major batches (seq_len, batch, ...), as DataParallel(dim=1) splits
    return [x.to(devices[i]) for i, x in enumerate(xs)], [t.to(devices[i]) for i, t in enumerate(ys)]


def replicate(module: nn.Module, devices) -> list[nn.Module]:
    """One independent copy of `module` per device, with equal weights."""
    return [copy.deepcopy(module).to(d) for d in devices]  # deepcopy: no replica shares a tensor with another


def parallel_apply(replicas: list[nn.Module], inputs: list[Tensor]) -> list[Tensor]:
    """replicas[i](inputs[i]) for every i; each runs on its own device."""
    # CUDA kernels are launched asynchronously, so a plain loop already lets the GPUs overlap.
    return [replica(x) for replica, x in zip(replicas, inputs, strict=True)]


def gather(outputs: list[Tensor], device, dim: int = 0) -> Tensor:
    """Concatenate `outputs` along `dim` on `device`; 0-dim scalars become a vector, one entry each."""
    if all(o.dim() == 0 for o in outputs):  # like DataParallel's gather: unsqueeze scalars into a vector
        outputs = [o.unsqueeze(0) for o in outputs]
        dim = 0
    return torch.cat([o.to(device) for o in outputs], dim=dim)


def allreduce(tensors: list[Tensor]) -> None:
    """Replace every tensor's values, in place, by the sum of all of them."""
    total = tensors[0].detach().clone()
    for t in tensors[1:]:
        total += t.detach().to(total.device)
    for t in tensors:
        t.copy_(total)  # write into the caller's tensors; copy_ crosses devices


def data_parallel_step(model: nn.Module, X: Tensor, y: Tensor, loss_fn, lr: float, devices) -> float:
    """One plain-SGD step of `model` on (X, y) computed on `devices`; the full-batch mean loss before it."""
    xs, ys = split_batch(X, y, devices)
    replicas = replicate(model, devices[: len(xs)])
    outputs = parallel_apply(replicas, xs)
    n = X.shape[0]
    # A shard's mean loss weighted by its share of the batch: the weighted sum is the full-batch mean.
    losses = [loss_fn(out, t) * (t.shape[0] / n) for out, t in zip(outputs, ys, strict=True)]
    total = gather(losses, devices[0]).sum()
    total.backward()  # one backward through the gather fills every replica's own .grad
    for params in zip(*(r.parameters() for r in replicas), strict=True):
        grads = [p.grad for p in params]
        if all(g is not None for g in grads):
            allreduce(grads)
    with torch.no_grad():
        for p, q in zip(model.parameters(), replicas[0].parameters(), strict=True):
            if q.grad is not None:
                p -= lr * q.grad.to(p.device)
    return total.item()
