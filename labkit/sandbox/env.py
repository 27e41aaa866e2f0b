"""The environment student code sees: an allowlist of the grader's variables, and per check a home, a temporary
folder and a matplotlib folder of its own, so nothing the grader holds (tokens, paths) or a previous student left
(a matplotlibrc, files in /tmp or /dev/shm) reaches it."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping

ALLOWED = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TERM", "LD_LIBRARY_PATH",
           "CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES",
           "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PRIVATE_TMP = "LABKIT_PRIVATE_TMP"  # "1" where /tmp and /dev/shm belong to the sandbox alone (bwrap, container)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
SOCKET_ROOM = 70  # AF_UNIX paths end at 107 bytes: a DataLoader's socket below TMPDIR needs the rest


def allowed(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of `env` (default: ours) that student code may see; never secrets, never the grader's paths."""
    env = os.environ if env is None else env
    kept = {k: env[k] for k in ALLOWED if k in env}
    kept.setdefault("PATH", DEFAULT_PATH)
    return kept


def for_check(workdir: str) -> dict[str, str]:
    """HOME, TMPDIR and the caches of one check: inside its own folder, which is removed after it."""
    tmp = os.path.join(workdir, "tmp")
    if len(tmp) > SOCKET_ROOM and os.environ.get(PRIVATE_TMP) == "1":
        tmp = "/tmp"  # the sandbox's own, emptied after every check; a long path breaks AF_UNIX sockets below it
    return {"HOME": workdir, "TMPDIR": tmp, "MPLCONFIGDIR": os.path.join(workdir, ".config"),
            "XDG_CONFIG_HOME": os.path.join(workdir, ".config"), "XDG_CACHE_HOME": os.path.join(workdir, ".cache")}


def enter_check(workdir: str) -> None:
    """In the check's child, before the student's file is imported: the clean environment, its folders made."""
    private = os.environ.get(PRIVATE_TMP) == "1"
    fresh = {**allowed(), **for_check(workdir)}
    if private:
        fresh[PRIVATE_TMP] = "1"
    os.environ.clear()
    os.environ.update(fresh)
    for key in ("TMPDIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        os.makedirs(fresh[key], exist_ok=True)
    tempfile.tempdir = None  # the worker may have cached /tmp before the fork


def wipe_private_tmp(keep: Iterable[str] = ()) -> int:
    """After a check, in the worker: empty /tmp and /dev/shm where they are the sandbox's own; entries removed.

    `keep`: paths of the worker's own folders (bound in below /tmp): never removed, never entered. Nothing on
    another file system (a bind mount) is entered either.
    """
    if os.environ.get(PRIVATE_TMP) != "1":
        return 0  # without a sandbox /tmp is the host's: never touch it
    keep = {os.path.normpath(k) for k in keep}
    removed = 0
    for top in ("/tmp", "/dev/shm"):
        try:
            device = os.lstat(top).st_dev
            entries = os.listdir(top)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(top, name)
            if not any(k == path or k.startswith(path + os.sep) for k in keep):
                removed += _remove(path, device)
    return removed


def _remove(path: str, device: int) -> int:
    """Remove `path` (a file, or a folder and what it holds) without leaving `device`; 1 when it is gone."""
    try:
        info = os.lstat(path)
        if info.st_dev != device:
            return 0  # a mount point: not ours to empty
        if stat.S_ISDIR(info.st_mode):
            for name in os.listdir(path):
                _remove(os.path.join(path, name), device)
            os.rmdir(path)
        else:
            os.unlink(path)
        return 1
    except OSError:
        return 0


def own_output(path: str, mode: int) -> None:
    """stdout and stderr into the file `path` (line-buffered, never failing on a bad byte), stdin from /dev/null."""
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(out)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115  (the process's life)
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
