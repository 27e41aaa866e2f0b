"""Bubblewrap around the grading worker: only the Python install and labkit are visible, never the exercises.

Inside: a read-only view of the system (/usr, /etc, the Python prefix), labkit's own
package at its real path (so the same imports work), the worker's inputs read-only
and its per-check folders writable. Not visible: the exercises' checks files (an
empty tmpfs covers any that lie inside what is shown), the solutions, instructors'
checks, other students' files, the network, other
processes (a new PID namespace), and /tmp (a private one). When the grader runs as
root, the worker runs as `nobody`, where RLIMIT_NPROC holds (it does not for root).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from labkit.paths import PACKAGE, exercises_root, installed_exercises, solutions_root
from labkit.sandbox import env

NOBODY = 65534  # the unprivileged uid/gid the worker takes when the grader is root
SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEV = Path("/dev")
# what CUDA opens besides /dev/nvidiaN: bound whether or not they exist yet (--dev-bind-try), so a node made
# between this command's building and bubblewrap's start is still covered; nvidia-caps holds MIG's nodes
GPU_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset", "nvidia-caps")
MODPROBE = ("nvidia-modprobe", "-u", "-c=0")  # NVIDIA's documented way: load nvidia-uvm, make its nodes


@functools.cache
def bwrap_works() -> str:
    """'' when bubblewrap can start a sandbox here, else the reason it cannot."""
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    try:
        probe = subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent",
                                "--proc", "/proc", "--dev", "/dev", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start: {exc}"
    if probe.returncode != 0:
        text = probe.stderr.decode(errors="replace").strip().splitlines()
        return f"bubblewrap cannot create namespaces here: {text[-1] if text else probe.returncode}"
    return ""


def drop_privileges() -> list[str]:
    """The command prefix that runs a program as `nobody`, with no groups and no capabilities."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all"]


def as_nobody() -> bool:
    """Drop to `nobody` inside the sandbox: only when we are root (a user's own uid is already unprivileged)."""
    return os.geteuid() == 0


def visible_paths() -> list[Path]:
    """What the worker must read besides the system: Python's prefixes, labkit (never the exercises) and the
    folder torch is installed in (inside the prefix, except where a venv borrows another's packages)."""
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent,
             PACKAGE}
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        paths.add(Path(spec.origin).resolve().parent.parent)
    return sorted(p for p in paths if not any(p != q and p.is_relative_to(q) for q in paths))


def hidden_paths() -> list[Path]:
    """Folders with checks or solutions inside what the sandbox shows (a wheel's labkit/exercises, a course
    under /usr or /opt): each is covered by an empty tmpfs, so the child finds no checks file to replay."""
    shown = [*visible_paths(), *(Path(top) for top in SYSTEM)]
    found = set()
    sites = {s / "labkit" / "exercises" for v in visible_paths() for s in [v, *v.glob("lib/python3*/site-packages")]}
    for p in (exercises_root(), solutions_root(), *installed_exercises(), *sites):
        if p is not None and p.resolve().is_dir() and any(p.resolve().is_relative_to(s) for s in shown):
            found.add(p.resolve())
    return sorted(found)


def command(argv: list[str], *, inputs: Path, work: Path, gpus: bool = True) -> list[str]:
    """`argv` wrapped in bubblewrap: `inputs` read-only, `work` writable, all else as the module docstring says."""
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--hostname", "labkit-sandbox"]
    for top in SYSTEM:
        p = Path(top)
        if p.is_symlink():  # merged-/usr systems: /lib -> usr/lib
            args += ["--symlink", os.readlink(p), top]
        elif p.exists():
            args += ["--ro-bind", top, top]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
             "--perms", "1777", "--tmpfs", "/tmp", "--ro-bind-try", "/sys", "/sys"]
    made = {"/", "/tmp", "/proc", "/dev", "/sys", *SYSTEM}
    binds = [("--ro-bind", p) for p in visible_paths() if not _under(p, SYSTEM)]
    binds += [("--ro-bind", inputs), ("--bind", work)]
    for how, p in binds:
        for parent in reversed(p.parents):  # bwrap would make them 0700: the unprivileged worker must pass
            if str(parent) not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        args += [how, str(p), str(p)]
        made.add(str(p))
    for p in hidden_paths():
        args += ["--tmpfs", str(p)]
    if gpus:
        for dev in gpu_devices():
            args += ["--dev-bind-try", dev, dev]
    hosts = inputs.parent / "hosts"  # the sandbox's own name must resolve (c10d and gloo look it up)
    hosts.write_text("127.0.0.1 localhost labkit-sandbox\n::1 localhost ip6-localhost\n", encoding="utf-8")
    args += ["--ro-bind", str(hosts), "/etc/hosts", "--clearenv"]  # the grader's variables stay out: an allowlist
    for key, value in {**env.allowed(), "HOME": str(work), "MPLCONFIGDIR": str(work / ".matplotlib"),
                       "TMPDIR": "/tmp", env.PRIVATE_TMP: "1"}.items():
        args += ["--setenv", key, value]
    args += ["--chdir", str(work)]
    if as_nobody():
        args += ["--", *drop_privileges()]
    else:
        args += ["--"]
    return args + argv


def gpu_nodes() -> list[str]:
    """The GPUs' own device nodes, /dev/nvidia0, /dev/nvidia1, ...: none on a machine without an NVIDIA GPU."""
    return sorted(str(p) for p in DEV.glob("nvidia*") if p.name[len("nvidia"):].isdigit())


def gpu_devices() -> list[str]:
    """Every NVIDIA device node the worker may need, /dev/nvidia-uvm made first where the GPUs have none yet."""
    gpus = gpu_nodes()
    if not gpus:
        return []
    ensure_uvm()
    found = {str(p) for p in DEV.glob("nvidia*")}
    return sorted({*gpus, *found, *(str(DEV / name) for name in GPU_NODES)})


def ensure_uvm() -> None:
    """Where there are GPUs but no /dev/nvidia-uvm yet (a freshly booted node), load nvidia-uvm and make it.

    Outside a sandbox CUDA runs the setuid nvidia-modprobe itself on first use; inside, with a private /dev and
    no privileges, it cannot and fails: so the grader runs it before the worker starts.
    """
    if not gpu_nodes() or (DEV / "nvidia-uvm").exists():
        return
    exe = shutil.which(MODPROBE[0])
    if exe is None:
        return  # nothing to run: CUDA inside says what is missing
    try:
        subprocess.run([exe, *MODPROBE[1:]], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _under(path: Path, tops: tuple[str, ...]) -> bool:
    return any(str(path) == top or str(path).startswith(top + "/") for top in tops)
