"""The NVIDIA driver as nvidia-smi reports it, and which torch build fits that driver and those GPUs.

nvidia-smi talks to the driver through NVML, not through the CUDA runtime torch bundles: it answers where
torch cannot use the GPUs at all (a driver too old for torch's CUDA), which is exactly when doctor must explain.
"""

from __future__ import annotations

import csv
import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

QUERY = "driver_version,name,compute_cap,uuid"
OLD_QUERY = "driver_version,name,uuid"  # drivers before compute_cap existed (R510) refuse the field

# The oldest driver each CUDA major version runs on (NVIDIA's minor version compatibility table,
# docs.nvidia.com/deploy/cuda-compatibility): torch's wheels rely on it, so a cu126 wheel runs on a 12.x driver.
MIN_DRIVER = {13: (580,), 12: (525, 60, 13), 11: (450, 80, 2)}

WHEEL_INDEX = "https://download.pytorch.org/whl"


@dataclass(frozen=True)
class Build:
    """One CUDA build of the pinned torch on download.pytorch.org: its index, CUDA version and kernels."""

    tag: str  # "cu126": the index is WHEEL_INDEX/tag
    cuda: str
    sm: frozenset[int] = field(default_factory=frozenset)  # SASS built for (10 * major + minor)

    @property
    def index(self) -> str:
        return f"{WHEEL_INDEX}/{self.tag}"

    @property
    def arch_list(self) -> list[str]:
        return [f"sm_{sm}" for sm in sorted(self.sm)]


# The x86_64 builds of torch 2.14 (torch.cuda.PYTORCH_RELEASES_CODE_CC; tests compare the two), newest first.
# cu130 is what PyPI serves; cu126 is the one build that still has kernels for Maxwell, Pascal and Volta.
BUILDS = (
    Build("cu130", "13.0", frozenset({75, 80, 86, 90, 100, 120})),
    Build("cu126", "12.6", frozenset({50, 60, 70, 75, 80, 86, 90})),
)


def version_tuple(text: str | None) -> tuple[int, ...]:
    """ "580.65.06" -> (580, 65, 6); a part that is not a number ends it."""
    out = []
    for part in (text or "").strip().split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out)


def required_driver(cuda: str | None) -> tuple[int, ...] | None:
    """The oldest driver a torch built for this CUDA version ("13.0") runs on; None when unknown."""
    major = version_tuple(cuda)[:1]
    return MIN_DRIVER.get(major[0]) if major else None


def driver_text(version: tuple[int, ...]) -> str:
    """(525, 60, 13) -> "525.60.13"."""
    return ".".join(str(part) for part in version)


def arch_number(arch: str) -> tuple[str, int] | None:
    """ "sm_90a" -> ("sm", 90); "compute_120" -> ("compute", 120); None for anything else."""
    kind, _, number = arch.partition("_")
    number = number.rstrip("af")
    return (kind, int(number)) if kind in ("sm", "compute") and number.isdigit() else None


def has_kernels(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a GPU of this compute capability can run a torch built for `arch_list`.

    SASS for sm_XY runs on the same major with minor >= Y (sm_60 on a GTX 1080, sm_61); PTX (compute_XY) is
    compiled by the driver for any capability >= XY. An empty list (unknown) is taken as yes.
    """
    if not arch_list:
        return True
    cc = 10 * capability[0] + capability[1]
    for arch in arch_list:
        found = arch_number(arch)
        if found is None:
            continue
        kind, code = found
        if kind == "sm" and cc // 10 == code // 10 and cc >= code:
            return True
        if kind == "compute" and cc >= code:
            return True
    return False


def parse_capability(text: str | None) -> tuple[int, int] | None:
    """ "8.6" -> (8, 6); None for "[N/A]" or nothing."""
    parts = version_tuple(text)
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def build_for(caps: list[tuple[int, int]], driver: tuple[int, ...] | None = None) -> Build | None:
    """The newest torch build with kernels for every one of these GPUs that runs on `driver` (None: any)."""
    for build in BUILDS:
        need = required_driver(build.cuda)
        if driver and need and driver < need:
            continue
        if all(has_kernels(cap, build.arch_list) for cap in caps):
            return build
    return None


@dataclass
class Driver:
    """What nvidia-smi says: the driver version and the GPUs it sees, or why it could not say."""

    version: str | None = None
    gpus: list[dict] = field(default_factory=list)  # index, name, capability ("8.6" or None), uuid
    error: str | None = None  # nvidia-smi is installed but failed (no driver loaded, a mismatch)
    found: bool = False  # whether nvidia-smi is on PATH


def _run(args: list[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, (done.stdout if done.returncode == 0 else (done.stdout + done.stderr))


def query_driver(exe: str | None = None) -> Driver:
    """Ask nvidia-smi for the driver version and each GPU's name, compute capability and UUID."""
    exe = exe or shutil.which("nvidia-smi")
    if exe is None:
        return Driver()
    fields = QUERY
    code, out = _run([exe, f"--query-gpu={fields}", "--format=csv,noheader"])
    if code != 0 and "compute_cap" in out:
        fields = OLD_QUERY
        code, out = _run([exe, f"--query-gpu={fields}", "--format=csv,noheader"])
    if code != 0:
        first = next((line.strip() for line in out.splitlines() if line.strip()), f"exit status {code}")
        return Driver(error=first[:300], found=True)
    names = fields.split(",")
    gpus = []
    for row in csv.reader(out.splitlines(), skipinitialspace=True):
        if len(row) != len(names):
            continue
        values = dict(zip(names, (cell.strip() for cell in row), strict=True))
        cap = parse_capability(values.get("compute_cap"))
        gpus.append({"index": len(gpus), "name": values["name"], "uuid": values["uuid"],
                     "capability": f"{cap[0]}.{cap[1]}" if cap else None, "driver": values["driver_version"]})
    version = gpus[0]["driver"] if gpus else None
    for gpu in gpus:
        del gpu["driver"]
    return Driver(version=version, gpus=gpus, found=True)


@functools.lru_cache(maxsize=1)
def cached_driver() -> Driver:
    """query_driver() once per process: every report carries it, and the driver does not change under us."""
    return query_driver()


def in_container(root: str = "/", environ: dict | None = None) -> str | None:
    """The container runtime this process runs in ("docker", "podman", "apptainer", "container"), or None."""
    environ = os.environ if environ is None else environ
    if environ.get("APPTAINER_CONTAINER") or environ.get("SINGULARITY_CONTAINER"):
        return "apptainer"
    if os.path.exists(os.path.join(root, ".dockerenv")):
        return "docker"
    if os.path.exists(os.path.join(root, "run", ".containerenv")):
        return "podman"
    if environ.get("container"):  # podman, systemd-nspawn and LXC set it for PID 1
        return "container"
    return None


RUN_FLAGS = {"docker": "`docker run --gpus all` (the NVIDIA Container Toolkit on the host)",
             "podman": "`podman run --device nvidia.com/gpu=all` (CDI: `sudo nvidia-ctk cdi generate` on the host)",
             "apptainer": "`apptainer run --nv`"}


def install_fix(facts: dict, build: Build) -> str:
    """How to get torch's `build` here: the image's build argument in a container, pip elsewhere."""
    if facts.get("container"):
        return (f"rebuild the course image with `--build-arg TORCH_INDEX_URL={build.index}` (docs/docker.md)")
    pins = " ".join(f"{name}=={str(facts[name]).split('+')[0]}" for name in ("torch", "torchvision") if facts.get(name))
    return f"`pip install --force-reinstall {pins} --index-url {build.index}`"


def gpu_notes(facts: dict) -> list[str]:
    """Why torch cannot use the GPUs the driver sees, each with its exact fix; [] when nothing is wrong.

    `facts` is a Fingerprint's as_dict(): torch, cuda, arch_list, gpus (torch's), driver, driver_gpus,
    driver_error, container, env.
    """
    if not facts.get("torch"):
        return []
    torch, seen, usable = facts["torch"], facts.get("driver_gpus") or [], facts.get("gpus") or []
    driver = version_tuple(facts.get("driver"))
    if facts.get("driver_error") and not usable:
        return [f"nvidia-smi cannot talk to the NVIDIA driver ({facts['driver_error']}): GPU checks are skipped; "
                "load the driver (reboot after installing it, or check `lsmod | grep nvidia`)"]
    if not driver and not usable:
        runtime = facts.get("container")
        if runtime is None:
            return []
        how = RUN_FLAGS.get(runtime) or ", ".join(RUN_FLAGS.values())
        return [f"this is a {runtime} container started without GPUs: the host's GPUs, if it has any, cannot be "
                f"seen from here (GPU checks are skipped); start it with {how}"]
    if seen and not facts.get("cuda"):
        return [f"torch {torch} is a CPU-only build but the driver sees {len(seen)} GPU(s): install the CUDA build "
                "(`pip install --force-reinstall -c constraints.txt torch torchvision` from PyPI)"]
    caps = [cap for gpu in (seen or usable) if (cap := parse_capability(gpu.get("capability")))]
    arch = facts.get("arch_list") or []
    missing = [gpu for gpu in (seen or usable) if (cap := parse_capability(gpu.get("capability")))
               and not has_kernels(cap, arch)]
    if missing:
        return [_kernel_note(facts, missing, caps, driver)]
    need = required_driver(facts.get("cuda"))
    if driver and need and driver < need:
        return [_driver_note(facts, seen, caps, driver, need)]
    if facts.get("cudnn_error"):
        return [f"torch's cuDNN refuses these GPUs ({facts['cudnn_error']}): convolutions fail; use a torch build "
                "whose cuDNN supports them (PyTorch's release compatibility matrix), or set "
                "`torch.backends.cudnn.enabled = False`"]
    if len(seen) > len(usable) and "CUDA_VISIBLE_DEVICES" not in (facts.get("env") or {}):
        return [f"the driver sees {len(seen)} GPU(s) but torch sees {len(usable)}: run "
                "`python -c 'import torch; torch.cuda.init()'` for CUDA's own reason (a missing /dev/nvidia-uvm: "
                "`nvidia-modprobe -u -c=0`; no permission on /dev/nvidia*; a GPU in MIG mode or held exclusively)"]
    return []


def _kernel_note(facts: dict, missing: list[dict], caps: list, driver: tuple[int, ...]) -> str:
    names = sorted({f"{gpu['name']} (compute capability {gpu['capability']})" for gpu in missing})
    head = (f"torch {facts['torch']} has no kernels for {', '.join(names)}: it was built for "
            f"{' '.join(facts.get('arch_list') or [])}, so every GPU operation fails with \"no kernel image is "
            "available for execution on the device\"")
    build = build_for(caps, None)
    if build is None:
        return head + f"; no CUDA build of torch {facts['torch'].split('+')[0]} has kernels for it: use a newer GPU"
    need = required_driver(build.cuda)
    upgrade = f"upgrade the NVIDIA driver to >= {driver_text(need)} and " if driver and need and driver < need else ""
    return head + f"; fix: {upgrade}use torch's CUDA {build.cuda} build: {install_fix(facts, build)}"


def _driver_note(facts: dict, seen: list, caps: list, driver: tuple[int, ...], need: tuple[int, ...]) -> str:
    head = (f"the NVIDIA driver {facts['driver']} is too old for torch {facts['torch']} (built for CUDA "
            f"{facts['cuda']}, which needs driver >= {driver_text(need)}): torch cannot use the {len(seen)} GPU(s) "
            f"the driver sees, so GPU checks are skipped; fix: upgrade the driver to >= {driver_text(need)}")
    build = build_for(caps, driver)
    if build is None:
        return head
    return head + f", or use torch's CUDA {build.cuda} build, which runs on this driver: {install_fix(facts, build)}"
