"""exercise8 — measure it right.

Fill in the three functions below, then run `labkit check exercise8`.
Keep the names and signatures: the checks call them.
"""

from __future__ import annotations

import statistics  # noqa: F401  (you will need it)
import time  # noqa: F401

import torch  # noqa: F401
from torch import nn


def benchmark(fn, *, device, warmup: int = 3, repeats: int = 10) -> dict:
    """Time fn() after `warmup` untimed calls: {"median_ms", "min_ms", "runs_ms"} in milliseconds."""
    # TODO: warm up untimed; synchronise a CUDA device before every clock read; take the median.
    raise NotImplementedError("exercise8: benchmark")


def speedup(t_one: float, t_many: float, n: int) -> dict:
    """{"speedup", "efficiency"} of running on n devices in t_many instead of one device in t_one."""
    # TODO
    raise NotImplementedError("exercise8: speedup")


def convert_batchnorm_for_ddp(model: nn.Module) -> nn.Module:
    """The model with every BatchNorm replaced by SyncBatchNorm, weights and statistics kept."""
    # TODO: nested BatchNorms too; nothing else may change.
    raise NotImplementedError("exercise8: convert_batchnorm_for_ddp")
