"""Device discovery, CUDA environment handling and the environment fingerprint."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field

import labkit

CUDA_VARS = ("CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


@dataclass
class Fingerprint:
    """What a grade was produced on: enough to reproduce it or explain a difference."""

    labkit: str
    python: str
    platform: str
    cpu_count: int
    torch: str | None = None
    torchvision: str | None = None
    cuda: str | None = None  # the CUDA version torch was built with
    cudnn: int | None = None
    nccl: str | None = None
    gpus: list[dict] = field(default_factory=list)  # name and memory of each visible GPU
    env: dict[str, str] = field(default_factory=dict)  # the CUDA_* variables that are set

    def short(self) -> str:
        """One line for the bottom of a report."""
        gpus = f"{len(self.gpus)} GPU" + ("s" if len(self.gpus) != 1 else "") if self.gpus else "no GPU"
        return (f"labkit {self.labkit} · Python {self.python} · torch {self.torch or 'missing'}"
                f" · CUDA {self.cuda or '-'} · {gpus} · {self.cpu_count} CPUs")

    def as_dict(self) -> dict:
        return asdict(self)


def fingerprint(with_torch: bool = True) -> Fingerprint:
    """Collect versions, GPUs and CUDA variables; `with_torch=False` avoids importing torch."""
    fp = Fingerprint(
        labkit=labkit.__version__, python=platform.python_version(), platform=platform.platform(terse=True),
        cpu_count=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        env={k: os.environ[k] for k in CUDA_VARS if k in os.environ},
    )
    if not with_torch:
        return fp
    try:
        import torch
    except ImportError:
        return fp
    fp.torch = torch.__version__
    fp.cuda = torch.version.cuda
    if "torchvision" in sys.modules:  # never import it just to report it (about 2 s)
        fp.torchvision = sys.modules["torchvision"].__version__
    else:
        from importlib.metadata import PackageNotFoundError, version

        try:
            fp.torchvision = version("torchvision")
        except PackageNotFoundError:
            pass
    for count in range(cuda_count()):
        props = torch.cuda.get_device_properties(count)
        fp.gpus.append({"index": count, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1)})
    if fp.gpus:
        fp.cudnn = torch.backends.cudnn.version()
        try:
            fp.nccl = ".".join(str(x) for x in torch.cuda.nccl.version())
        except (AttributeError, RuntimeError, TypeError):
            pass
    return fp


def cuda_count() -> int:
    """How many CUDA devices torch can use here (0 on a CUDA build without a GPU)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def warnings(fp: Fingerprint) -> list[str]:
    """Problems a student should fix before the GPU lessons, each with its fix."""
    out = []
    if fp.torch is None:
        out.append("torch is not installed: run `make demo` or `pip install -c constraints.txt torch torchvision`")
    elif not fp.gpus:
        out.append("no CUDA device is visible: GPU checks will be skipped (CPU checks still grade everything else)")
    order = fp.env.get("CUDA_DEVICE_ORDER")
    if "CUDA_VISIBLE_DEVICES" in fp.env and order != "PCI_BUS_ID":
        out.append("CUDA_VISIBLE_DEVICES is set without CUDA_DEVICE_ORDER=PCI_BUS_ID: indices follow CUDA's "
                   "FASTEST_FIRST order, not nvidia-smi's; export CUDA_DEVICE_ORDER=PCI_BUS_ID")
    if len(fp.gpus) == 1:
        out.append("one GPU: the 2-GPU checks will be skipped (needs 2 GPUs)")
    return out
