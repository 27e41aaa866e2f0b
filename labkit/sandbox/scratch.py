"""A worker's files on the host: inputs (read-only inside the sandbox) and one writable folder per check."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class Scratch:
    """A worker's files: `inputs` (read-only inside the sandbox) and `work` (one writable folder per check)."""

    def __init__(self, owner: int | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="labkit-worker-"))
        self.root.chmod(0o755)
        self.inputs, self.work = self.root / "inputs", self.root / "work"
        self.inputs.mkdir(mode=0o755)
        self.work.mkdir(mode=0o755)
        self.owner = owner  # the sandbox's uid when it differs from ours: it must own what it writes
        if owner is not None:
            os.chown(self.work, owner, owner)

    def stage(self, path: Path) -> Path:
        """A read-only copy of `path` under inputs (same name), visible inside the sandbox."""
        folder = Path(tempfile.mkdtemp(dir=self.inputs))
        folder.chmod(0o755)
        copy = folder / path.name
        shutil.copyfile(path, copy)
        copy.chmod(0o644)
        return copy

    def unstage(self, copy: Path) -> None:
        """Remove a staged copy, so the next student's checks cannot read it."""
        if copy.parent.parent == self.inputs:
            shutil.rmtree(copy.parent, ignore_errors=True)

    def workdir(self, prefix: str) -> Path:
        """A fresh writable folder for one check."""
        path = Path(tempfile.mkdtemp(dir=self.work, prefix=prefix))
        if self.owner is not None:
            os.chown(path, self.owner, self.owner)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
