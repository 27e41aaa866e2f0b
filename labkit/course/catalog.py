"""Exercise metadata: exercise.toml files read into typed dataclasses."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from labkit.i18n import _
from labkit.paths import exercises_root


class CatalogError(Exception):
    """An unknown exercise name or broken metadata; the message is shown to the user."""


@dataclass(frozen=True)
class Exercise:
    """One exercise folder, as its exercise.toml describes it."""

    id: str  # "exercise3": the folder name and the student's file name without .py
    title: str  # one line shown by `labkit list`
    order: int  # position in the course
    points: int  # the sum of its checks' points (a test keeps them equal)
    folder: Path  # exercises/exercise3
    hints: tuple[str, ...] = ()  # progressive hints, `labkit hint` shows the next one
    hints_zh: tuple[str, ...] = ()  # the same hints in Simplified Chinese (hints_zh in exercise.toml)
    title_zh: str | None = None  # the title in Simplified Chinese
    needs_gpus: int = 0  # the most GPUs any of its checks needs
    call_seconds: float = 20.0  # wall-clock limit of one call into student code
    import_seconds: float = 20.0  # wall-clock limit for importing the student's file
    memory_mb: int = 4096  # address-space headroom per check where no CUDA is visible
    data: str | None = None  # the data its checks train on, shown in every report
    preload: tuple[str, ...] = ()  # modules its checks import lazily in every child (torch._dynamo): imported once
    full_run: bool = False  # `labkit run ID --full` runs lab/experiment.py's 1-vs-2-GPU comparison on the file
    scaling_builder: str | None = None  # `labkit bench ID`: a problem of labkit.lab.scaling.BUILDERS
    extra: dict = field(default_factory=dict, compare=False)  # unknown keys, kept for `dev check`

    @property
    def shown_title(self) -> str:
        """The title in the language being spoken."""
        from labkit.i18n import language

        return self.title_zh if language() == "zh_CN" and self.title_zh else self.title

    @property
    def number(self) -> int:
        return int(re.sub(r"\D", "", self.id) or 0)

    @property
    def filename(self) -> str:
        return f"{self.id}.py"

    @property
    def statement(self) -> Path:
        return self.folder / "README.md"

    @property
    def starter(self) -> Path:
        return self.folder / "starter.py"

    @property
    def checks_file(self) -> Path:
        return self.folder / "checks.py"


def course_root() -> Path:
    """The folder holding the exercises (paths.exercises_root), or a CatalogError that says how to set it."""
    root = exercises_root()
    if root is None:
        raise CatalogError(_("no exercises found: set LABKIT_EXERCISES to the course's exercises folder"))
    return root


MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def module_names(value: object, path: Path) -> tuple[str, ...]:
    """`preload`: a list of dotted module names (the trusted worker imports them, so nothing else)."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and MODULE.fullmatch(v) for v in value):
        raise CatalogError(f"{path}: preload must be a list of module names, like [\"torch._dynamo\"]")
    return tuple(value)


def load_exercise(folder: Path) -> Exercise:
    """Read one exercise folder's exercise.toml."""
    path = folder / "exercise.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: {exc}") from None
    limits = data.pop("limits", {})
    try:
        return Exercise(
            id=str(data.pop("id")), title=str(data.pop("title")), order=int(data.pop("order")),
            points=int(data.pop("points")), folder=folder, hints=tuple(data.pop("hints", ())),
            hints_zh=tuple(data.pop("hints_zh", ())), title_zh=data.pop("title_zh", None),
            needs_gpus=int(data.pop("needs_gpus", 0)), data=data.pop("data", None),
            preload=module_names(data.pop("preload", ()), path),
            full_run=bool(data.pop("full_run", False)), scaling_builder=data.pop("scaling_builder", None),
            call_seconds=float(limits.pop("call_seconds", 20.0)),
            import_seconds=float(limits.pop("import_seconds", 20.0)),
            memory_mb=int(limits.pop("memory_mb", 4096)),
            extra={**data, **{f"limits.{k}": v for k, v in limits.items()}},
        )
    except KeyError as exc:
        raise CatalogError(f"{path}: missing field {exc.args[0]!r}") from None


def find_exercises(root: Path | None = None) -> list[Exercise]:
    """Every exercise folder under `root` (default: the course's), in exercise.toml's order; course.toml aside."""
    root = (root or course_root()).resolve()
    found = [load_exercise(d) for d in sorted(root.iterdir()) if (d / "exercise.toml").is_file()]
    return sorted(found, key=lambda e: (e.order, e.id))
