"""GPU leases: at most one GPU check at a time on a GPU, across the jobs of a grade and across labkit processes.

A lease is an exclusive flock on one file per GPU, named by the GPU's UUID (never its index, which
CUDA_VISIBLE_DEVICES and Slurm renumber), in a folder every labkit process on the machine shares. The GPUs are
told apart with `nvidia-smi`, so the grader never initialises CUDA (its children fork after this runs).
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.sandbox.errors import WorkerFailed

ENV_DIR = "LABKIT_GPU_LEASES"  # where the lock files live; the default is shared by every user of the machine
SHARED_DIR = Path("/var/tmp/labkit-gpu-leases")
UNKNOWN = "gpu-unknown"  # one lock for every GPU when they cannot be told apart: slower, never unsafe
NOTE_AFTER = 1.0  # seconds; a shorter wait is not worth a line in the report


class LeaseError(WorkerFailed):
    """The lease folder or a lock file cannot be used: the installation, not the student."""


@dataclass(frozen=True)
class Gpu:
    """One physical GPU as nvidia-smi lists it (PCI bus order)."""

    index: int
    uuid: str
    bus_id: str
    name: str

    @property
    def key(self) -> str:
        """The lock's name: the UUID, else the PCI bus id."""
        return self.uuid if self.uuid.startswith("GPU-") else f"pci-{self.bus_id}".lower()


def parse_smi(text: str) -> list[Gpu]:
    """`nvidia-smi --query-gpu=index,uuid,pci.bus_id,name --format=csv,noheader` into Gpus; odd lines dropped."""
    gpus = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",", 3)]
        if len(cells) == 4 and cells[0].isdigit() and (cells[1].startswith("GPU-") or ":" in cells[2]):
            gpus.append(Gpu(int(cells[0]), cells[1], cells[2], cells[3]))
    return gpus


@functools.cache
def query_gpus() -> tuple[Gpu, ...] | None:
    """The machine's GPUs from nvidia-smi (never CUDA), once per process; None where it is absent or fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, "--query-gpu=index,uuid,pci.bus_id,name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    gpus = parse_smi(done.stdout) if done.returncode == 0 else []
    return tuple(gpus) or None


def visible_keys(gpus: Sequence[Gpu], env: Mapping[str, str]) -> tuple[list[str], bool]:
    """The lock keys of the GPUs CUDA numbers 0, 1, ... here, and whether that order is certain.

    CUDA_VISIBLE_DEVICES holds indices, GPU UUIDs (or unique prefixes) or MIG ids; CUDA stops at the first entry
    it cannot resolve. CUDA orders FASTEST_FIRST unless CUDA_DEVICE_ORDER=PCI_BUS_ID: with identical GPUs that is
    PCI order (ties go by bus id), with mixed models it is not, and then indices name uncertain GPUs.
    """
    pci = env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID" or len({g.name for g in gpus}) <= 1
    raw = env.get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return [g.key for g in gpus], pci
    keys: list[str] = []
    for entry in (e.strip() for e in raw.split(",")):
        if re.fullmatch(r"\d+", entry) and int(entry) < len(gpus):
            if not pci:  # which physical GPU an index means depends on speeds we do not know
                return [g.key for g in gpus], False
            keys.append(gpus[int(entry)].key)
        elif entry.startswith("MIG-"):
            keys.append(entry)  # a MIG instance is its own device with its own id
        elif found := _by_uuid(entry, gpus):
            keys.append(found.key)
        else:
            break
    return keys, True


def _by_uuid(entry: str, gpus: Sequence[Gpu]) -> Gpu | None:
    """The one GPU whose UUID `entry` starts (CUDA accepts a unique prefix, with or without "GPU-")."""
    prefix = entry if entry.startswith("GPU-") else f"GPU-{entry}"
    found = [g for g in gpus if g.uuid.startswith(prefix)] if entry else []
    return found[0] if len(found) == 1 else None


def keys_for(count: int, env: Mapping[str, str] | None = None,
             gpus: Sequence[Gpu] | None = None) -> list[tuple[str, str]]:
    """(lock key, label for people) of the GPUs a check that needs `count` GPUs runs on: cuda:0 .. cuda:count-1."""
    if count <= 0:
        return []
    env = os.environ if env is None else env
    gpus = query_gpus() if gpus is None else gpus
    keys, certain = visible_keys(gpus, env) if gpus else ([], False)
    if len(keys) < count:  # torch sees GPUs nvidia-smi does not name: lock them all as one
        return [(UNKNOWN, "the GPUs")]
    if not certain:  # cuda:0 may be any of them: hold every one
        return [(k, f"GPU {i}") for i, k in enumerate(keys)]
    return [(k, f"GPU {i}") for i, k in enumerate(keys[:count])]


def lease_dir(env: Mapping[str, str] | None = None) -> Path:
    """The lock folder: $LABKIT_GPU_LEASES, else the machine-wide one, else (not writable) one of this user's."""
    env = os.environ if env is None else env
    if env.get(ENV_DIR):
        return _ensure(Path(env[ENV_DIR]), 0o700)
    try:
        return _ensure(SHARED_DIR, 0o1777)  # sticky, like /tmp: every user's labkit locks, nobody deletes another's
    except LeaseError:
        mine = Path(env.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
        return _ensure(mine / f"labkit-gpu-leases-{os.geteuid()}", 0o700)


def _ensure(folder: Path, mode: int) -> Path:
    """Make `folder` (mode `mode`, whatever the umask) or check the one there: a real folder nobody can plant in."""
    try:
        try:
            os.mkdir(folder, mode)
            os.chmod(folder, mode)
        except FileExistsError:
            pass
        st = os.lstat(folder)
    except OSError as exc:
        raise LeaseError(f"labkit cannot use {folder} for GPU leases ({exc.strerror}): set {ENV_DIR} "
                         "to a folder it may write") from None
    if not stat.S_ISDIR(st.st_mode):
        raise LeaseError(f"labkit cannot use {folder} for GPU leases: it is not a folder (set {ENV_DIR})")
    if st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:
        raise LeaseError(f"labkit will not use {folder} for GPU leases: anyone may replace its files "
                         f"(chmod +t {folder}, or set {ENV_DIR})")
    return folder


def _open_lock(path: Path) -> int:
    """A descriptor on the regular file `path` (made if missing), never through a link, never blocking on a FIFO."""
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise LeaseError(f"labkit cannot open the GPU lease {path} ({exc.strerror}): set {ENV_DIR}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise LeaseError(f"labkit will not use the GPU lease {path}: it is not a regular file")
    if st.st_uid == os.geteuid() and st.st_mode & 0o044 != 0o044:
        os.fchmod(fd, 0o644)  # under umask 077 other users could not open it, and so not wait on it
    return fd


class Lease:
    """Exclusive hold of some GPUs for one check: `with Lease(keys_for(n)) as held:`; `held.note` says the wait."""

    def __init__(self, keys: Sequence[tuple[str, str]], folder: Path | None = None):
        self.labels = [label for _key, label in keys]
        self.keys = sorted({key for key, _label in keys})  # one order for all: nobody holds one and waits on another
        self.folder = folder
        self.waited = 0.0
        self._fds: list[int] = []

    def __enter__(self) -> Lease:
        if not self.keys:
            return self
        folder = self.folder or lease_dir()
        start = time.monotonic()
        # UNKNOWN first, for all: held alone by a process that cannot tell GPUs apart, shared by those that can
        plan = [(UNKNOWN, fcntl.LOCK_EX if self.keys == [UNKNOWN] else fcntl.LOCK_SH)]
        plan += [(key, fcntl.LOCK_EX) for key in self.keys if key != UNKNOWN]
        try:
            for key, mode in plan:
                self._fds.append(_open_lock(folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.lock"))
                fcntl.flock(self._fds[-1], mode)  # blocks until the holder's check ends, or the holder dies
        except BaseException:
            self._release()
            raise
        self.waited = time.monotonic() - start
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        while self._fds:
            os.close(self._fds.pop())  # closing the only descriptor drops its flock

    @property
    def note(self) -> str:
        """'(labkit waited 12 s for GPU 0)' after a wait worth telling; '' otherwise."""
        if self.waited < NOTE_AFTER:
            return ""
        return f"(labkit waited {self.waited:.0f} s for {', '.join(self.labels)})"


def gpu_lease(count: int) -> Lease:
    """The lease a check needing `count` GPUs takes (none for a CPU check: nothing is asked, nothing waits)."""
    return Lease(keys_for(count))
