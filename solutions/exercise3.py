"""exercise3 — which GPU is GPU 0? CUDA_DEVICE_ORDER and CUDA_VISIBLE_DEVICES (reference solution)."""

from __future__ import annotations

import os
import subprocess

import torch

ORDERS = ("PCI_BUS_ID", "FASTEST_FIRST")


def cuda_env(visible: list[int] | None, order: str = "PCI_BUS_ID") -> dict[str, str]:
    """The CUDA variables that show the GPUs `visible` (None: all of them) numbered in `order`."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    env = {"CUDA_DEVICE_ORDER": order}
    if visible is not None:  # None leaves the mask out: every GPU stays visible
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(int(i)) for i in visible)
    return env


def physical_index(logical: int, visible: str) -> int:
    """The physical GPU that a process started with CUDA_VISIBLE_DEVICES=`visible` calls `logical`."""
    ids = []
    for part in visible.split(",") if visible.strip() else []:  # "" is a valid mask: no GPU at all
        try:
            ids.append(int(part))  # int() itself allows the spaces around each entry
        except ValueError:
            raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: {part.strip()!r} is not a GPU index") from None
    if any(i < 0 for i in ids):
        raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: GPU indices cannot be negative")
    if len(set(ids)) != len(ids):
        raise ValueError(f"CUDA_VISIBLE_DEVICES={visible!r}: a GPU is listed twice")
    if not 0 <= logical < len(ids):  # -1 must not wrap around to the last GPU
        raise ValueError(f"logical GPU {logical} does not exist: the mask {visible!r} shows {len(ids)} GPU(s)")
    return ids[logical]


def run_on_gpus(argv: list[str], visible: list[int]) -> subprocess.CompletedProcess:
    """Run `argv` in a child process that sees only the GPUs `visible`, in PCI bus order; capture its output."""
    env = {**os.environ, **cuda_env(visible)}  # a copy: the caller's os.environ stays as it was
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)


def restrict_gpus(visible: list[int]) -> None:
    """Make this process see only the GPUs `visible`, in PCI bus order, before CUDA starts."""
    if torch.cuda.is_initialized():  # CUDA read the variables when it started; new values would be ignored
        raise RuntimeError("CUDA is already initialised in this process: set the GPU mask before any CUDA call, "
                           "or start a new process with run_on_gpus")
    os.environ.update(cuda_env(visible))
