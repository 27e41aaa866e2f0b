"""Fakes for the GPU tests: an `nvidia-smi` script on PATH and a torch.cuda that sees the GPUs a test chooses."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import torch

from labkit.lab import nvidia

H100 = ("NVIDIA H100 80GB HBM3", "9.0")
V100 = ("Tesla V100-SXM2-32GB", "7.0")
GTX1080 = ("NVIDIA GeForce GTX 1080", "6.1")
K80 = ("Tesla K80", "3.7")


def quoted(rows: list[str]) -> str:
    return " ".join(f"'{row}'" for row in rows)


def fake_smi(folder: Path, driver: str | None, gpus: list[tuple[str, str]], mode: str = "new") -> Path:
    """Write `nvidia-smi` into folder: "new" answers the full query, "old" refuses compute_cap as R470 does,
    "broken" fails as it does when the kernel module is not loaded. Shell built-ins only: PATH may hold only
    this folder. Returns the script."""
    rows = [f"{driver}, {name}, {cap}, GPU-{i:08d}-aaaa" for i, (name, cap) in enumerate(gpus)]
    old_rows = [f"{driver}, {name}, GPU-{i:08d}-aaaa" for i, (name, _cap) in enumerate(gpus)]
    lines = {
        "new": ['case "$*" in', f"  *--query-gpu=*) printf '%s\\n' {quoted(rows)} ;;",
                f'  *) echo "| NVIDIA-SMI {driver}   Driver Version: {driver}   CUDA Version: 13.0 |" ;;', "esac"],
        "old": ['case "$*" in',
                "  *compute_cap*) echo 'Field \"compute_cap\" is not a valid field to query.'; exit 2 ;;",
                f"  *--query-gpu=*) printf '%s\\n' {quoted(old_rows)} ;;", "esac"],
        "broken": ["echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver. Make sure "
                   "that the latest NVIDIA driver is installed and running.'", "exit 9"],
    }[mode]
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + "\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


def on_path(monkeypatch, folder: Path | None) -> None:
    """Only `folder` on PATH (None: an empty PATH, so no nvidia-smi at all); forget the cached answer."""
    monkeypatch.setenv("PATH", str(folder) if folder else "/nonexistent")
    nvidia.cached_driver.cache_clear()
    monkeypatch.setattr(nvidia, "in_container", lambda *a, **k: None)


def fake_cuda(monkeypatch, gpus: list[tuple[str, str]], arch: str = "sm_75 sm_80 sm_86 sm_90 sm_100 sm_120") -> None:
    """torch.cuda as a CUDA build sees `gpus` (an empty list: is_available() False, as with an old driver)."""
    cuda = torch.cuda
    caps = [tuple(int(x) for x in cap.split(".")) for _name, cap in gpus]
    monkeypatch.setattr(cuda, "is_available", lambda: bool(gpus))
    monkeypatch.setattr(cuda, "device_count", lambda: len(gpus))
    monkeypatch.setattr(cuda, "get_arch_list", lambda: arch.split())
    monkeypatch.setattr(cuda, "get_device_capability", lambda i=0: caps[i])
    monkeypatch.setattr(cuda, "get_device_properties",
                        lambda i=0: SimpleNamespace(name=gpus[i][0], total_memory=80 << 30))
    monkeypatch.setattr(cuda, "can_device_access_peer", lambda i, j: True)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    # cuDNN checks the devices' capability once, when it first loads: forget an earlier load, so that the fake
    # GPUs are the ones it checks whatever ran before (the real value comes back after the test)
    monkeypatch.setitem(torch.backends.cudnn.version.__globals__, "__cudnn_version", None)  # the real module's
