"""Device discovery, CUDA environment handling and the environment fingerprint."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict, dataclass, field

import labkit
from labkit.i18n import _
from labkit.lab import nvidia

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
    cudnn_error: str | None = None  # why torch's cuDNN refused these GPUs, where it did
    nccl: str | None = None
    gpus: list[dict] = field(default_factory=list)  # name and memory of each visible GPU
    env: dict[str, str] = field(default_factory=dict)  # the CUDA_* variables that are set
    driver_cuda: str | None = None  # the newest CUDA version the NVIDIA driver supports ("12.4"), when known
    p2p: list[list[bool]] = field(default_factory=list)  # p2p[i][j]: GPU i can access GPU j's memory directly
    shm_bytes: int | None = None  # the size of /dev/shm (DataLoader workers and NCCL live there)
    uid: int | None = None  # the effective user id labkit runs as
    driver: str | None = None  # the NVIDIA driver version nvidia-smi reports ("580.65.06"), torch or not
    driver_gpus: list[dict] = field(default_factory=list)  # the GPUs the driver sees: name, capability, uuid
    driver_error: str | None = None  # nvidia-smi is installed but could not talk to the driver
    arch_list: list[str] = field(default_factory=list)  # the GPU kernels torch was built with (sm_75 ...)
    container: str | None = None  # the container runtime labkit runs in (docker, podman, apptainer), if any

    def short(self) -> str:
        """One line for the bottom of a report."""
        gpus = f"{len(self.gpus)} GPU" + ("s" if len(self.gpus) != 1 else "") if self.gpus else "no GPU"
        return (f"labkit {self.labkit} · Python {self.python} · torch {self.torch or 'missing'}"
                f" · CUDA {self.cuda or '-'} · {gpus} · {self.cpu_count} CPUs")

    def as_dict(self) -> dict:
        return asdict(self)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container or Slurm may give fewer than the machine)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def fingerprint(with_torch: bool = True, cuda_init: bool = True) -> Fingerprint:
    """Collect versions, GPUs and CUDA variables; `with_torch=False` avoids importing torch.

    `cuda_init=False` (a grader's report) names the GPUs from the driver instead of asking CUDA: the grader must
    never hold a CUDA context (batch grading would keep one on GPU 0 for the whole class).
    """
    fp = Fingerprint(
        labkit=labkit.__version__, python=platform.python_version(), platform=platform.platform(terse=True),
        cpu_count=usable_cpus(),
        env={k: os.environ[k] for k in CUDA_VARS if k in os.environ},
    )
    fp.shm_bytes = shm_size()
    fp.uid = os.geteuid() if hasattr(os, "geteuid") else None
    fp.container = nvidia.in_container()
    if not with_torch:
        return fp
    driver = nvidia.cached_driver()  # a subprocess, never CUDA: safe before the worker forks
    fp.driver, fp.driver_gpus, fp.driver_error = driver.version, driver.gpus, driver.error
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
    fp.arch_list = list(torch.cuda.get_arch_list())  # compiled in: needs no driver
    if not cuda_init:
        named = {i: g for i, g in enumerate(driver.gpus)}  # the driver's order: a close match, never CUDA's init
        fp.gpus = [{"index": i, "name": named.get(i, {}).get("name"), "capability": named.get(i, {}).get("capability")}
                   for i in range(cuda_count())]
        return fp
    for count in range(cuda_count()):
        props = torch.cuda.get_device_properties(count)
        major, minor = torch.cuda.get_device_capability(count)
        fp.gpus.append({"index": count, "name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                        "capability": f"{major}.{minor}"})
    if fp.gpus:
        try:
            fp.cudnn = torch.backends.cudnn.version()
        except RuntimeError as exc:  # cuDNN >= 9.11 refuses GPUs below sm_75: doctor must still explain why
            fp.cudnn_error = str(exc).split(". ")[0][:200]
        try:
            fp.nccl = ".".join(str(x) for x in torch.cuda.nccl.version())
        except (AttributeError, RuntimeError, TypeError):
            pass
        fp.driver_cuda = driver_cuda_version()
        fp.p2p = p2p_matrix(len(fp.gpus))
    return fp


def cuda_count() -> int:
    """How many CUDA devices torch can use here (0 on a CUDA build without a GPU)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


SHM_MIN = 1 << 30  # below 1 GiB, DataLoader workers and NCCL run out of shared memory


def shm_size(path: str = "/dev/shm") -> int | None:
    """The size of the shared-memory filesystem in bytes (None where there is none, as on macOS)."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    return st.f_blocks * st.f_frsize


def driver_cuda_version() -> str | None:
    """The newest CUDA version the installed NVIDIA driver supports ("12.4"), or None where unknown (no GPU)."""
    try:
        import torch

        raw = torch.cuda.driver_version() if hasattr(torch.cuda, "driver_version") else None
    except (ImportError, RuntimeError, AttributeError):
        raw = None
    if raw:  # cudaDriverGetVersion's encoding: 12040 -> "12.4"
        return f"{int(raw) // 1000}.{int(raw) % 1000 // 10}"
    return _nvidia_smi_cuda()


def _nvidia_smi_cuda() -> str | None:
    import re
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"CUDA Version:\s*([0-9]+\.[0-9]+)", out)
    return found.group(1) if found else None


def p2p_matrix(count: int | None = None, can_access=None) -> list[list[bool]]:
    """p2p[i][j]: whether GPU i can read and write GPU j's memory directly (NVLink or PCIe peer-to-peer).

    `can_access(i, j)` defaults to torch.cuda.can_device_access_peer; the diagonal is True.
    """
    if count is None:
        count = cuda_count()
    if count < 2:
        return []
    if can_access is None:
        import torch

        can_access = torch.cuda.can_device_access_peer
    return [[i == j or bool(can_access(i, j)) for j in range(count)] for i in range(count)]


def format_p2p(matrix: list[list[bool]]) -> list[str]:
    """The peer-to-peer matrix as lines of a table: "yes" where GPU row can access GPU column directly."""
    if not matrix:
        return []
    n = len(matrix)
    lines = ["      " + " ".join(f"GPU{j:<3}" for j in range(n))]
    for i, row in enumerate(matrix):
        cells = ("-" if i == j else "yes" if ok else "no" for j, ok in enumerate(row))
        lines.append(f"GPU{i:<3}" + " ".join(f"{cell:<6}" for cell in cells))
    return lines


def _visible_count(value: str | None, physical: int | None) -> int | None:
    """How many GPUs a CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES value exposes; None when it cannot be told."""
    if value is None:
        return None
    value = value.strip()
    if value in ("", "none", "void"):
        return 0
    if value == "all":
        return physical
    count = 0
    for item in value.split(","):
        item = item.strip()
        if item.lstrip("-").isdigit() and int(item) < 0:  # CUDA stops at the first invalid index
            break
        if item:
            count += 1
    return count


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def warnings(fp: Fingerprint, physical_gpus: int | None = None) -> list[str]:
    """Problems a student should fix before the GPU lessons, each with its fix.

    Every input comes from `fp` (tests build one by hand). `physical_gpus` (the GPUs the driver sees, for
    NVIDIA_VISIBLE_DEVICES=all) defaults to the GPUs nvidia-smi listed in `fp`.
    """
    if physical_gpus is None and fp.driver:
        physical_gpus = len(fp.driver_gpus)
    cause = nvidia.gpu_notes(fp.as_dict())  # why torch cannot use the GPUs the driver sees, with the fix
    out = []
    if fp.torch is None:
        out.append(_("torch is not installed: run `make demo` or `pip install -c constraints.txt torch torchvision`"))
    elif not fp.gpus and not cause:
        out.append(_("no CUDA device is visible: GPU checks will be skipped (CPU checks still grade everything else)"))
    out += cause
    order = fp.env.get("CUDA_DEVICE_ORDER")
    if "CUDA_VISIBLE_DEVICES" in fp.env and order != "PCI_BUS_ID":
        out.append(_("CUDA_VISIBLE_DEVICES is set without CUDA_DEVICE_ORDER=PCI_BUS_ID: indices follow CUDA's "
                     "FASTEST_FIRST order, not nvidia-smi's; export CUDA_DEVICE_ORDER=PCI_BUS_ID"))
    if len(fp.gpus) == 1:
        out.append(_("one GPU: the 2-GPU checks will be skipped (needs 2 GPUs)"))
    if fp.shm_bytes is not None and fp.shm_bytes < SHM_MIN:
        out.append(_("/dev/shm is only {mib} MiB: DataLoader workers and NCCL need more than Docker's 64 MB "
                     "default; run the container with --shm-size=2g (or --ipc=host)").format(
                         mib=f"{fp.shm_bytes / 2**20:.0f}"))
    if not cause:  # a known cause explains a count that differs better than the count does
        out += _visibility_warnings(fp, physical_gpus)
    old = not fp.driver and fp.cuda and fp.driver_cuda  # no nvidia-smi: fall back on the CUDA version it supports
    if old and _version_tuple(fp.driver_cuda)[:1] < _version_tuple(fp.cuda)[:1]:
        out.append(_("the NVIDIA driver supports CUDA {driver} but torch {torch} was built for CUDA {cuda}: "
                     "update the driver, or install a torch build for CUDA {driver}").format(
                         driver=fp.driver_cuda, torch=fp.torch, cuda=fp.cuda))
    if fp.p2p and not all(all(row) for row in fp.p2p):
        out.append(_("some GPU pairs cannot access each other's memory directly (see p2p in `labkit doctor`): "
                     "NCCL and DataParallel copy through host memory there; export NCCL_P2P_DISABLE=1 if NCCL hangs"))
    if fp.uid == 0:
        out.append(_("running as root: run as an ordinary user (the image's `student`, or `docker run --user "
                     "\"$(id -u):$(id -g)\"`) so the files written to your workspace stay yours"))
    return out


def _visibility_warnings(fp: Fingerprint, physical_gpus: int | None) -> list[str]:
    """The GPU count torch sees against what CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES ask for."""
    if fp.torch is None:
        return []
    if "CUDA_VISIBLE_DEVICES" in fp.env:  # it narrows whatever the container runtime exposed
        var, fix = "CUDA_VISIBLE_DEVICES", "compare it with `nvidia-smi -L` (indices, or GPU-UUIDs)"
    elif "NVIDIA_VISIBLE_DEVICES" in fp.env:
        var, fix = "NVIDIA_VISIBLE_DEVICES", ("start the container with --gpus all (or --gpus '\"device=0,1\"') "
                                              "and the NVIDIA Container Toolkit installed on the host")
    else:
        return []
    want = _visible_count(fp.env[var], physical_gpus)
    if want is None or want == len(fp.gpus):
        return []
    if var == "NVIDIA_VISIBLE_DEVICES" and not fp.gpus and not fp.driver_cuda and fp.env[var] == "all":
        return []  # the image's default on a machine without GPUs: nothing was asked for
    return [f"{var}={fp.env[var]} asks for {want} GPU(s) but torch sees {len(fp.gpus)}: {fix}"]
