"""`--sandbox container`: the grading worker inside the student image, where the kernel enforces the limits.

The student image holds labkit and the exercises, never the solutions or Gradescope's /autograder (the grader
image does): what the worker can reach, a submission can read.

The worker runs in a podman (or docker) container with no network, a read-only
root, a tmpfs for /tmp, a pids limit, a memory limit and a CPU quota (the CPUs the
grader may use: a two-worker DDP check needs two), as a non-root user, with the host's
GPUs where it has any (the grader counts them and runs the GPU checks); only the
worker's inputs (the submission, read-only) and its per-check folders are mounted.
The worker connects back once to a control socket in the mounted folder, which the
grader then closes and removes; the per-check pipes then travel over it exactly as
without a container.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path

from labkit.sandbox import bwrap, env

IMAGE_ENV = "LABKIT_IMAGE"
DEFAULT_IMAGE = "localhost/labkit:student"  # no solutions, no /autograder: never the grader image
STORAGE_ENV = "LABKIT_PODMAN_ARGS"  # e.g. "--root /var/lib/x --runroot /run/x --runtime runc" on odd hosts
IMAGE_PYTHON = "/opt/labkit/bin/python"
IMAGE_UID = 1000  # the image's unprivileged user
# the image's own labkit carries the exercises (students run `labkit check` there): an empty tmpfs covers them
# for the worker, so a submission finds no checks file to replay
IMAGE_HIDDEN = ("/opt/labkit/lib/python3.11/site-packages/labkit/exercises",)
PIDS, MEMORY = 512, "4g"
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")  # where podman finds the NVIDIA Container Toolkit's CDI spec
CDI_GPUS = "nvidia.com/gpu"
REMOTE = ("--remote", "--url", "--connection", "-r")  # podman talking to another machine: its CDI is not ours
GPU_ENV = ("CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES")  # with every GPU passed, they pick the grader's ones


def image() -> str:
    return os.environ.get(IMAGE_ENV, DEFAULT_IMAGE)


def tool() -> list[str]:
    """The container command (podman, else docker) with this host's global options ($LABKIT_PODMAN_ARGS)."""
    return [engine(), *os.environ.get(STORAGE_ENV, "").split()]


def works() -> str:
    """'' when podman can run the worker's image here, else why not (and what to do)."""
    if shutil.which("podman") is None and shutil.which("docker") is None:
        return "neither podman nor docker is installed"
    try:
        found = subprocess.run([*tool(), "image", "inspect", image()], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{engine()} does not answer: {exc}"
    if found.returncode != 0:
        return f"the image {image()} is not built here (`make image`, or set {IMAGE_ENV})"
    return gpu_problem()


def gpu_problem() -> str:
    """'' unless this host has GPUs that podman cannot pass (no CDI spec): then why, and the fix."""
    if not host_gpus() or engine() != "podman" or any(a in REMOTE for a in tool()):
        return ""  # docker's --gpus needs no spec here; its own error names the missing toolkit
    for spec in (spec for folder in CDI_DIRS for spec in sorted(Path(folder).glob("*"))):
        try:
            if CDI_GPUS in spec.read_text(encoding="utf-8", errors="replace"):
                return ""
        except OSError:
            continue  # a folder, or unreadable: not the spec podman would use
    return (f"this host has GPUs but podman has no CDI spec for them in {' or '.join(CDI_DIRS)}, so the GPU "
            "checks would fail in the container: `sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml` "
            "(NVIDIA Container Toolkit), or grade without GPUs: `CUDA_VISIBLE_DEVICES= labkit grade ...`")


def host_gpus() -> int:
    """The GPUs the grader may use, from their device nodes: no CUDA call, so nothing here can poison a fork.

    CUDA_VISIBLE_DEVICES empty (or starting with an invalid index) hides them all from the grader's count too.
    """
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and (not hidden.strip() or hidden.strip().startswith("-")):
        return 0
    return len(bwrap.gpu_nodes())


def cpus() -> int:
    """The CPUs the grader may run on (its affinity: Slurm or a container may give fewer than the machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def gpu_args() -> list[str]:
    """The flags that pass every GPU of this host into the container, and the grader's choice among them."""
    if not host_gpus():
        return []
    bwrap.ensure_uvm()  # a freshly booted node may lack /dev/nvidia-uvm, which CDI and --gpus pass in
    wanted = [a for k in GPU_ENV if k in os.environ for a in ("--env", f"{k}={os.environ[k]}")]
    if engine() == "podman":
        return ["--device", f"{CDI_GPUS}=all", *wanted]
    return ["--gpus", "all", *wanted]


def name() -> str:
    return f"labkit-worker-{uuid.uuid4().hex[:12]}"


def engine() -> str:
    """podman where it exists (rootless-friendly), else docker."""
    return "podman" if shutil.which("podman") else "docker"


def listen(folder: Path, owner: int | None) -> tuple[socket.socket, str]:
    """A one-shot control socket in the folder the container mounts: its worker connects, then the path is gone."""
    path = str(folder / f".ctl-{uuid.uuid4().hex[:12]}")  # short: AF_UNIX paths end at 107 bytes
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    if owner is not None:
        os.chown(path, owner, owner)
    os.chmod(path, 0o600)  # only the container's user may connect
    listener.listen(1)
    return listener, path


def accept(listener: socket.socket, seconds: float) -> socket.socket | None:
    """The worker's connection (None if it never came); the listener is closed and its path removed either way."""
    path = listener.getsockname()
    listener.settimeout(seconds)
    try:
        conn = listener.accept()[0]
        conn.settimeout(None)
        return conn
    except OSError:
        return None
    finally:
        listener.close()
        try:
            os.unlink(path)  # nothing the submission could later connect to
        except OSError:
            pass


def bootstrap(path: str, preload: list[str], huge_pages: bool = False) -> str:
    """The worker's start inside the container: connect back, then serve as usual."""
    return (f"import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect({path!r}); "
            f"from labkit.sandbox.child import main; main(s.detach(), {preload!r}, {huge_pages})")


def command(code: str, *, inputs: Path, work: Path, container: str) -> list[str]:
    """`podman run` (or `docker run`) of the worker's `python -I -c code` in the grader image, every limit set."""
    if os.geteuid() == 0:
        user = ["--user", f"{IMAGE_UID}:{IMAGE_UID}"]
    else:  # rootless podman maps our uid in; docker runs as us directly
        user = ["--userns=keep-id"] if engine() == "podman" else ["--user", f"{os.getuid()}:{os.getgid()}"]
    return [*tool(), "run", "--rm", "--name", container, "--network=none", "--read-only",
            "--tmpfs", "/tmp:rw,size=1g,mode=1777", *hide(),
            "--pids-limit", str(PIDS), "--memory", MEMORY, "--cpus", str(cpus()),
            "--shm-size", "1g", *gpu_args(), *user, "--security-opt", "no-new-privileges", "--cap-drop", "all",
            "-v", f"{inputs}:{inputs}:ro", "-v", f"{work}:{work}:rw", "--workdir", str(work),
            "--env", f"HOME={work}", "--env", f"MPLCONFIGDIR={work}/.matplotlib", "--env", f"{env.PRIVATE_TMP}=1",
            "--entrypoint", IMAGE_PYTHON, image(), "-I", "-c", code]


def hide() -> list[str]:
    """An empty read-only tmpfs over each of IMAGE_HIDDEN (podman would copy the folder's files into it unasked)."""
    extra = ",notmpcopyup" if engine() == "podman" else ""
    return [a for p in IMAGE_HIDDEN for a in ("--tmpfs", f"{p}:ro,size=4k{extra}")]


def owner() -> int | None:
    """The uid that must own the per-check folders: the image's user when we are root (rootless keeps ours)."""
    return IMAGE_UID if os.geteuid() == 0 else None


def remove(container: str) -> None:
    """Stop and remove a worker's container (killing `podman run` alone leaves it running)."""
    try:
        wait = ["--time", "0"] if engine() == "podman" else []  # PID 1 ignores SIGTERM: do not wait for it
        subprocess.run([*tool(), "rm", "--force", *wait, container], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass
