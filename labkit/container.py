"""`--sandbox container`: the grading worker inside the grader image, where the kernel enforces the limits.

The worker runs in a podman container with no network, a read-only root, a tmpfs
for /tmp, a pids limit, a memory limit and a CPU quota, as a non-root user; only
the worker's inputs (the submission, read-only) and its per-check folders are
mounted. The grader's private control socket is handed in as fd 3
(`--preserve-fds`), so the per-check pipes travel exactly as without a container.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

IMAGE_ENV = "LABKIT_IMAGE"
DEFAULT_IMAGE = "localhost/labkit:grader"
STORAGE_ENV = "LABKIT_PODMAN_ARGS"  # e.g. "--root /var/lib/x --runroot /run/x --runtime runc" on odd hosts
IMAGE_PYTHON = "/opt/labkit/bin/python"
IMAGE_UID = 1000  # the image's unprivileged user
PIDS, MEMORY, CPUS = 512, "4g", "1"


def image() -> str:
    return os.environ.get(IMAGE_ENV, DEFAULT_IMAGE)


def podman() -> list[str]:
    """The podman command with this host's storage/runtime options."""
    return ["podman", *os.environ.get(STORAGE_ENV, "").split()]


def works() -> str:
    """'' when podman can run the grader image here, else why not (and what to do)."""
    if shutil.which("podman") is None:
        hint = " (docker cannot hand the grader's private socket to a container: --preserve-fds is podman's)"
        return "podman is not installed" + (hint if shutil.which("docker") else "")
    try:
        found = subprocess.run([*podman(), "image", "exists", image()], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman does not answer: {exc}"
    if found.returncode != 0:
        return f"the grader image {image()} is not built here (`make image`, or set {IMAGE_ENV})"
    return ""


def name() -> str:
    return f"labkit-worker-{uuid.uuid4().hex[:12]}"


def command(code: str, ctl_fd: int, *, inputs: Path, work: Path, container: str) -> list[str]:
    """A command that starts the worker's `python -I -c code` in the grader image with fd `ctl_fd` as fd 3."""
    user = ["--user", f"{IMAGE_UID}:{IMAGE_UID}"] if os.geteuid() == 0 else ["--userns=keep-id"]
    run = [*podman(), "run", "--rm", "--name", container, "--preserve-fds=1", "--network=none", "--read-only",
           "--tmpfs", "/tmp:rw,size=1g,mode=1777", "--pids-limit", str(PIDS), "--memory", MEMORY, "--cpus", CPUS,
           "--shm-size", "1g", *user, "--security-opt", "no-new-privileges", "--cap-drop", "all",
           "-v", f"{inputs}:{inputs}:ro", "-v", f"{work}:{work}:rw", "--workdir", str(work),
           "--env", f"HOME={work}", "--env", f"MPLCONFIGDIR={work}/.matplotlib",
           "--entrypoint", IMAGE_PYTHON, image(), "-I", "-c", code]
    # podman passes fds 3.. to the container: move the grader's socket there first, then close the original
    return ["sh", "-c", f'exec 3<&{ctl_fd} {ctl_fd}<&- && exec "$@"', "sh", *run]


def owner() -> int | None:
    """The uid that must own the per-check folders: the image's user when we are root (rootless keeps ours)."""
    return IMAGE_UID if os.geteuid() == 0 else None


def remove(container: str) -> None:
    """Stop and remove a worker's container (killing `podman run` alone leaves it running)."""
    try:
        subprocess.run([*podman(), "rm", "--force", "--time", "0", container], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass
