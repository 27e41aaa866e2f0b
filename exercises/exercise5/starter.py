"""exercise5 — DataParallel by hand.

Fill in the six functions below, then run `labkit check exercise5`.
Keep the names and signatures: the checks call them. A device list may hold
torch.device objects or strings: [cpu, cpu] on any machine, [cuda:0, cuda:1] on two GPUs.
"""

from __future__ import annotations

import copy  # noqa: F401  (you will need it)

import torch  # noqa: F401
from torch import Tensor, nn


def split_batch(X: Tensor, y: Tensor, devices, dim: int = 0) -> tuple[list[Tensor], list[Tensor]]:
    """Split X and y along `dim` (the batch dimension) like DataParallel's scatter and put shard i on devices[i]."""
    # TODO: tensor.chunk semantics (10 on 3 devices -> 4, 4, 2) along dim; X and y shards must line up.
    raise NotImplementedError("exercise5: split_batch")


def replicate(module: nn.Module, devices) -> list[nn.Module]:
    """One independent copy of `module` per device, with equal weights."""
    # TODO: changing one replica must change neither the others nor `module`.
    raise NotImplementedError("exercise5: replicate")


def parallel_apply(replicas: list[nn.Module], inputs: list[Tensor]) -> list[Tensor]:
    """replicas[i](inputs[i]) for every i; each runs on its own device."""
    # TODO
    raise NotImplementedError("exercise5: parallel_apply")


def gather(outputs: list[Tensor], device, dim: int = 0) -> Tensor:
    """Concatenate `outputs` along `dim` on `device`; 0-dim scalars become a vector, one entry each."""
    # TODO: like DataParallel's gather, unsqueeze scalars instead of failing on them.
    raise NotImplementedError("exercise5: gather")


def allreduce(tensors: list[Tensor]) -> None:
    """Replace every tensor's values, in place, by the sum of all of them."""
    # TODO: the caller keeps references to these very tensors (a model's .grad): write into them.
    raise NotImplementedError("exercise5: allreduce")


def data_parallel_step(model: nn.Module, X: Tensor, y: Tensor, loss_fn, lr: float, devices) -> float:
    """One plain-SGD step of `model` on (X, y) computed on `devices`; the full-batch mean loss before it."""
    # TODO: split, replicate, apply, weight each shard's mean loss by its size, backward, allreduce the
    #       gradients, update model's own parameters in place, return the loss as a float.
    raise NotImplementedError("exercise5: data_parallel_step")
