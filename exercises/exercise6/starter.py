"""exercise6 — DistributedDataParallel with torchrun.

Fill in the two functions below, then run `labkit check exercise6`.
Keep the names and signatures: the checks call them. labkit starts `worker`
once per rank in fresh processes (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR
and MASTER_PORT are set, as torchrun sets them; LOCAL_RANK, the index on this
node, picks the GPU: `int(os.environ.get("LOCAL_RANK", rank))`, since mp.spawn
does not set it).
"""

from __future__ import annotations

import time  # noqa: F401  (you will need it)

import torch  # noqa: F401
import torch.distributed as dist  # noqa: F401
import torch.nn.functional as F  # noqa: F401
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: F401
from torch.utils.data import DataLoader, DistributedSampler  # noqa: F401


def shard(n: int, world_size: int, rank: int, epoch: int, seed: int = 0, shuffle: bool = True) -> list[int]:
    """The indices DistributedSampler(range(n), world_size, rank, shuffle, seed) gives after set_epoch(epoch)."""
    # TODO: shuffle (seeded by seed + epoch), pad by wrapping around, then take every world_size-th index.
    raise NotImplementedError("exercise6: shard")


def worker(rank: int, world_size: int, cfg: dict) -> dict:
    """One DDP process: train cfg["model"]() on its shard of cfg["dataset"]; rank 0 writes cfg["checkpoint"]."""
    # TODO: init_process_group, DDP, DistributedSampler + set_epoch, SGD on cross_entropy, checkpoint, barrier.
    raise NotImplementedError("exercise6: worker")
