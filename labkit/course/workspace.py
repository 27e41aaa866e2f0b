"""A student's workspace: labkit.toml, one file per started exercise, progress in .labkit/."""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import labkit
from labkit.course.catalog import Exercise
from labkit.files import write_atomic
from labkit.i18n import _

MARKER = "labkit.toml"
STATE_DIR = ".labkit"


class WorkspaceError(Exception):
    """A problem the student can fix (no workspace, a file that would be overwritten)."""


@dataclass
class Progress:
    """What `labkit list` shows for one exercise."""

    status: str = "not started"  # not started | started | failing | passed
    best: float = 0.0  # best score so far
    max_score: float = 0.0
    checks: int = 0  # how many times it was checked
    hints_shown: int = 0  # of the exercise's progressive hints
    last_checked: str | None = None
    gpu_points: float = 0.0  # points of the last check's checks that need GPUs this machine lacks
    gpu_need: int = 0  # the most GPUs those checks need
    check_hints: list[str] = field(default_factory=list)  # checks whose own hint `labkit hint` has shown


class Workspace:
    """A folder holding labkit.toml; found from the current directory upward, like git."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def state_file(self) -> Path:
        return self.root / STATE_DIR / "progress.json"

    @property
    def backups(self) -> Path:
        return self.root / STATE_DIR / "backups"

    def file(self, exercise: Exercise) -> Path:
        return self.root / exercise.filename

    def artifacts(self, exercise: Exercise) -> Path:
        """Where the files its checks inspected are kept: one folder per check."""
        return self.root / STATE_DIR / "artifacts" / exercise.id

    def start(self, exercise: Exercise, force: bool = False) -> Path | None:
        """Copy the starter in; an existing file is kept unless `force`, and then backed up first.

        A fresh start forgets the exercise's scores (the file they were for is gone); hints seen stay seen.
        """
        target = self.file(exercise)
        backup = None
        if target.exists():
            if not force:
                raise WorkspaceError(_("{name} already exists; nothing was changed (use --force to replace it: "
                                       "your file is backed up first)").format(name=target.name))
            backup = self.backup(target)
        write_atomic(target, exercise.starter.read_bytes())  # never half a file
        state = self._load()
        old = state.get(exercise.id) or {}
        state[exercise.id] = asdict(Progress("started", hints_shown=int(old.get("hints_shown", 0)),
                                             check_hints=list(old.get("check_hints", []))))
        self._save(state)
        self.report_file(exercise).unlink(missing_ok=True)  # the report of a file that is no longer there
        return backup

    def reset(self, exercise: Exercise) -> Path | None:
        """Restore the starter, backing up the student's file first."""
        return self.start(exercise, force=True)

    def backup(self, path: Path) -> Path:
        """Copy `path` to .labkit/backups/NAME.TIMESTAMP.py and return the copy's path."""
        self.backups.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            dest = self.backups / f"{path.stem}.{stamp}{f'-{n}' if n else ''}{path.suffix}"
            try:
                with open(dest, "xb") as out, open(path, "rb") as src:
                    shutil.copyfileobj(src, out)
                return dest
            except FileExistsError:
                continue
        raise WorkspaceError(f"could not back up {path.name}")

    def progress(self, exercise: Exercise) -> Progress:
        data = self._load().get(exercise.id)
        data = data if isinstance(data, dict) else {}
        progress = Progress(**{k: v for k, v in data.items() if k in Progress.__dataclass_fields__})
        if not self.file(exercise).exists():
            progress.status = "not started"
        elif progress.status == "not started":
            progress.status = "started"
        return progress

    def record(self, exercise: Exercise, score: float, max_score: float, passed: bool, *, gpu_points: float = 0.0,
               gpu_need: int = 0) -> Progress:
        """Remember a check's outcome (best score kept)."""
        state = self._load()
        p = self.progress(exercise)
        p.status = "passed" if passed else "failing"
        p.best = max(p.best, score)
        p.max_score = max_score
        p.gpu_points, p.gpu_need = gpu_points, gpu_need
        p.checks += 1
        p.last_checked = datetime.now(UTC).isoformat(timespec="seconds")
        state[exercise.id] = asdict(p)
        self._save(state)
        return p

    def report_file(self, exercise: Exercise) -> Path:
        """Where the latest full check report of an exercise is kept (for `labkit submit`)."""
        return self.root / STATE_DIR / "reports" / f"{exercise.id}.json"

    def save_report(self, exercise: Exercise, report_json: str) -> None:
        """Keep the latest check report, written atomically."""
        write_atomic(self.report_file(exercise), report_json)

    def saved_report(self, exercise: Exercise) -> dict | None:
        """The latest check report kept for an exercise, as plain data; None when there is none (or it is broken)."""
        try:
            data = json.loads(self.report_file(exercise).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save_progress(self, exercise: Exercise, progress: Progress) -> None:
        state = self._load()
        state[exercise.id] = asdict(progress)
        self._save(state)

    def _load(self) -> dict:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, state: dict) -> None:
        write_atomic(self.state_file, json.dumps(state, indent=2))  # a killed command never leaves half a file


def init(path: Path) -> Workspace:
    """Make `path` a workspace (creating it if needed); an existing labkit.toml is kept."""
    path.mkdir(parents=True, exist_ok=True)
    marker = path / MARKER
    if not marker.exists():
        created = datetime.now(UTC).isoformat(timespec="seconds")
        marker.write_text(
            "# A labkit workspace: your exercise files live beside this file.\n"
            "# `labkit start exercise1` adds one; `labkit check exercise1` grades it.\n"
            f'[workspace]\nlabkit = "{labkit.__version__}"\ncreated = "{created}"\n', encoding="utf-8")
    return Workspace(path.resolve())


def find(start: Path | None = None) -> Workspace:
    """The workspace holding `start` (default: the current directory), searching upward."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        marker = folder / MARKER
        if marker.is_file():
            try:
                tomllib.loads(marker.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                why = _("{marker} is not valid TOML: {error}").format(marker=marker, error=exc)
                raise WorkspaceError(why) from None
            return Workspace(folder)
    raise WorkspaceError(_("no labkit workspace in {here} or above: run `labkit init` first").format(here=here))
