"""exercise8 — measure it right (reference solution)."""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


def benchmark(fn, *, device, warmup: int = 3, repeats: int = 10) -> dict:
    """Time fn() after `warmup` untimed calls: {"median_ms", "min_ms", "runs_ms"} in milliseconds."""
    dev = torch.device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):  # first calls pay for allocation, autotuning, lazy initialisation
        fn()
    runs = []
    for _ in range(repeats):
        sync()  # work queued earlier must not be billed to this run
        start = time.perf_counter()
        fn()
        sync()  # kernels are asynchronous: wait for them before reading the clock
        runs.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(runs), "min_ms": min(runs), "runs_ms": runs}


def speedup(t_one: float, t_many: float, n: int) -> dict:
    """{"speedup", "efficiency"} of running on n devices in t_many instead of one device in t_one."""
    s = t_one / t_many
    return {"speedup": s, "efficiency": s / n}


def convert_batchnorm_for_ddp(model: nn.Module) -> nn.Module:
    """The model with every BatchNorm replaced by SyncBatchNorm, weights and statistics kept."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)  # recursive; copies weights and running stats
