"""exercise6 — DistributedDataParallel with torchrun (reference solution)."""

from __future__ import annotations

import os
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler


def shard(n: int, world_size: int, rank: int, epoch: int, seed: int = 0, shuffle: bool = True) -> list[int]:
    """The indices DistributedSampler gives `rank` in `epoch`: pad by wrapping, then take every world_size-th."""
    if shuffle:
        g = torch.Generator().manual_seed(seed + epoch)  # seed + epoch: why set_epoch changes the order
        indices = torch.randperm(n, generator=g).tolist()
    else:
        indices = list(range(n))
    total = -(-n // world_size) * world_size
    while len(indices) < total:  # wrap around until every rank gets the same count
        indices += indices[: total - len(indices)]
    return indices[rank:total:world_size]


def worker(rank: int, world_size: int, cfg: dict) -> dict:
    """One DDP process: train cfg["model"]() on its shard of cfg["dataset"], rank 0 writes the checkpoint."""
    cuda = torch.cuda.is_available()
    if cuda:  # the GPU index is the LOCAL rank (torchrun sets it; mp.spawn does not): rank 2 of node 2 is its cuda:0
        local_rank = int(os.environ.get("LOCAL_RANK", rank)) % torch.cuda.device_count()
        torch.cuda.set_device(local_rank)  # before init: nccl binds to the current device
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world_size)
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    model = DDP(cfg["model"]().to(device), device_ids=[device] if cuda else None)
    sampler = DistributedSampler(cfg["dataset"], num_replicas=world_size, rank=rank, shuffle=True, seed=cfg["seed"])
    loader = DataLoader(cfg["dataset"], batch_size=cfg["batch_size"], sampler=sampler)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    epoch_indices, epoch_seconds = [], []
    for epoch in range(cfg["epochs"]):
        sampler.set_epoch(epoch)  # without it every epoch repeats epoch 0's order
        epoch_indices.append(list(sampler))
        start = time.perf_counter()
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x.to(device)), y.to(device)).backward()  # DDP averages grads across ranks
            opt.step()
        epoch_seconds.append(time.perf_counter() - start)
    state = {k: v.detach().cpu().clone() for k, v in model.module.state_dict().items()}  # .module: no prefix
    if rank == 0:
        torch.save(state, cfg["checkpoint"])
    dist.barrier()  # nobody leaves (and nobody reads the file) before rank 0 has written it
    dist.destroy_process_group()
    return {"rank": rank, "epoch_indices": epoch_indices, "epoch_seconds": epoch_seconds, "state_dict": state}
