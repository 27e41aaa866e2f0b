"""What a check inspected (a figure, a checkpoint), kept under the workspace before its work folder goes.

The engine hands each check's work folder to a Keeper (engine.grade's `keep_files`) just before removing it.
The folder is the student code's own: only regular files are copied, never through a link, within caps, into
`.labkit/artifacts/EXERCISE/CHECK/`, which replaces the previous run's copy of that check and nothing else.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Collection
from pathlib import Path

from labkit.sandbox.wire import OUTPUT_FILE

MAX_FILE = 32 << 20  # bytes of one kept file: a figure or a small checkpoint, not a data set
MAX_CHECK = 64 << 20  # bytes kept for one check
MAX_FILES = 50  # files kept for one check
MAX_SCAN = 5000  # entries looked at in a work folder (a child may leave a million empty files)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a check's name is a Python function's: a safe folder name


class Keeper:
    """`keeper(check, workdir)` copies the check's files under `root/EXERCISE/CHECK`; `kept` says where."""

    def __init__(self, workspace: Path, folder: Path, hidden: Collection[str] = ()):
        self.workspace = workspace  # nothing above it is looked at; no link inside it is followed
        self.folder = folder  # .labkit/artifacts/EXERCISE
        self.hidden = set(hidden)  # checks a student must not learn of: nothing of theirs is kept
        self.kept: dict[str, Path] = {}
        self.left_out: dict[str, list[str]] = {}  # check -> files not kept (too big, too many)

    def __call__(self, check: str, workdir: Path) -> None:
        if check in self.hidden or not NAME.fullmatch(check):
            return
        dest = self.folder / check
        if not self._safe(dest):
            return
        if dest.exists():
            shutil.rmtree(dest)  # the previous run's copy of this check: ours alone (no link on the way)
        total, count, left_out = 0, 0, []
        for rel in regular_files(workdir):
            if rel == Path(OUTPUT_FILE):  # the child's output, which the report already holds
                continue
            if count >= MAX_FILES:
                left_out.append(f"{rel} (more than {MAX_FILES} files)")
                continue
            data = read_regular(workdir / rel, MAX_FILE)
            if data is None:
                left_out.append(f"{rel} (over {MAX_FILE >> 20} MB, or not a plain file)")
                continue
            if total + len(data) > MAX_CHECK:
                left_out.append(f"{rel} (the check's files are over {MAX_CHECK >> 20} MB)")
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as out:  # a fresh folder: nothing there to overwrite
                out.write(data)
            total, count = total + len(data), count + 1
        if count:
            self.kept[check] = dest
        if left_out:
            self.left_out[check] = left_out

    def _safe(self, dest: Path) -> bool:
        """No link between the workspace and `dest`: a link there would send the copy (and rmtree) elsewhere."""
        try:
            rel = dest.relative_to(self.workspace)
        except ValueError:
            return False
        here = self.workspace
        for part in rel.parts:
            here = here / part
            if here.is_symlink() or (here.exists() and not here.is_dir()):
                return False
        return True


def regular_files(folder: Path) -> list[Path]:
    """Regular files under `folder`, relative to it, sorted; links and special files are never followed."""
    found: list[Path] = []
    seen = 0
    for top, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(top, d)))
        for name in sorted(files):
            seen += 1
            if seen > MAX_SCAN:
                return found
            path = os.path.join(top, name)
            try:
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found.append(Path(path).relative_to(folder))
            except OSError:
                continue
    return found


def read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of at most `limit` bytes, opened without following a link; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        data = f.read(limit + 1)
    return data if len(data) <= limit else None
