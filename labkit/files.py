"""Small file helpers with one home each: atomic writes (with the user's umask), reproducible zip entries,
a file's sha256, and importing a Python file by path."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from types import ModuleType

EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same sources give the same bytes


def umask() -> int:
    """The process's umask, read without changing it (os.umask would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> Path:
    """Write `data` through a temporary file and a rename: a reader sees the old file or the new, never half.

    The file gets `mode`, else what a plain open() would give it (0666 less the umask), not mkstemp's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            os.fchmod(f.fileno(), mode if mode is not None else 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def zip_entry(zf: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    """Add `name` with a fixed timestamp and Unix permissions, so the same sources give the same zip bytes."""
    info = zipfile.ZipInfo(name, EPOCH)
    info.external_attr = mode << 16  # a script must stay executable (Gradescope's run_autograder)
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def import_path(path: str | os.PathLike, name: str) -> ModuleType:
    """Import a Python file by path under `name` (a student's file, a checks file)."""
    spec = importlib.util.spec_from_file_location(name, str(path))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
