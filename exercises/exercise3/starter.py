"""exercise3 — which GPU is GPU 0? CUDA_DEVICE_ORDER and CUDA_VISIBLE_DEVICES.

Fill in the four functions below, then run `labkit check exercise3`.
Keep the names and signatures: the checks call them.
"""

from __future__ import annotations

import os  # noqa: F401  (you will need it)
import subprocess

import torch  # noqa: F401  (torch.cuda.is_initialized)


def cuda_env(visible: list[int] | None, order: str = "PCI_BUS_ID") -> dict[str, str]:
    """The CUDA variables that show the GPUs `visible` (None: all of them) numbered in `order`."""
    # TODO: always CUDA_DEVICE_ORDER; CUDA_VISIBLE_DEVICES is "5,6,7" for [5, 6, 7], "" for [], absent for None.
    raise NotImplementedError("exercise3: cuda_env")


def physical_index(logical: int, visible: str) -> int:
    """The physical GPU that a process started with CUDA_VISIBLE_DEVICES=`visible` calls `logical`."""
    # TODO: parse the mask (spaces allowed); ValueError for non-integers, negative or repeated entries,
    #       and for a logical index that the mask does not have.
    raise NotImplementedError("exercise3: physical_index")


def run_on_gpus(argv: list[str], visible: list[int]) -> subprocess.CompletedProcess:
    """Run `argv` in a child process that sees only the GPUs `visible`, in PCI bus order; capture its output."""
    # TODO: give the child its own environment; the caller's os.environ must not change.
    raise NotImplementedError("exercise3: run_on_gpus")


def restrict_gpus(visible: list[int]) -> None:
    """Make this process see only the GPUs `visible`, in PCI bus order, before CUDA starts."""
    # TODO: raise RuntimeError when it is too late (CUDA already initialised); otherwise set os.environ.
    raise NotImplementedError("exercise3: restrict_gpus")
