"""A worker's files on the host: inputs (read-only inside the sandbox) and one writable folder per check."""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
from pathlib import Path

_roots: set[Path] = set()  # every Scratch not removed yet: what a signal or a crash left is removed at exit


class Scratch:
    """A worker's files: `inputs` (read-only inside the sandbox) and `work` (one writable folder per check)."""

    def __init__(self, owner: int | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="labkit-worker-"))
        _roots.add(self.root)  # at once: from here on, however the run ends, the folder goes
        self.inputs, self.work = self.root / "inputs", self.root / "work"
        self.owner = owner  # the sandbox's uid when it differs from ours: it must own what it writes
        try:
            self.root.chmod(0o755)
            self.inputs.mkdir(mode=0o755)
            self.work.mkdir(mode=0o755)
            if owner is not None:
                os.chown(self.work, owner, owner)
        except BaseException:
            self.remove()
            raise

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

    def sweep(self) -> None:
        """Between checks: remove whatever a check left in `work` beside its own folder (files, links, folders),
        so nothing one student's code plants there reaches the next check or the next student."""
        for entry in list(self.work.iterdir()):
            if entry.is_symlink() or not entry.is_dir():
                entry.unlink(missing_ok=True)
            elif not entry.name.startswith(".ctl-"):  # a container's control socket lives there while it starts
                remove_tree(entry)

    def remove(self) -> None:
        """Remove every file, those a check made read-only included; kept for the exit handler if that fails."""
        if remove_tree(self.root):
            _roots.discard(self.root)


def remove_tree(path: Path) -> bool:
    """Remove `path` and everything below it; True once it is gone."""
    for _ in range(3):  # a process being killed may still add a file while we remove
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return True
        if os.geteuid() != 0:  # root removes whatever a check did to the modes; we, its owner, must first undo it
            _owner_rwx_below(path)
    return not os.path.lexists(path)


def _owner_rwx_below(top: Path) -> None:
    """Give back the owner's read, write and search bits on every folder under `top`, top-down, not following links."""
    _owner_rwx(str(top))
    for folder, dirs, _ in os.walk(top):
        for name in dirs:
            _owner_rwx(os.path.join(folder, name))


def _owner_rwx(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISDIR(mode):  # never through a link: it could point at anything of ours
            os.chmod(path, stat.S_IMODE(mode) | stat.S_IRWXU)
    except OSError:
        pass


@atexit.register
def _remove_leftovers() -> None:
    """At exit, the folders no close() removed (a signal mid-close, a worker another thread still held)."""
    for root in list(_roots):
        if remove_tree(root):
            _roots.discard(root)


os.register_at_fork(after_in_child=_roots.clear)  # a forked child that exits must not remove its parent's folders
