"""Which checks grade a file, worth what, seen by whom, under which limits: one call, `plan`.

The exercise's own checks.py comes first; an instructor's checks directory adds more:

    DIR/exercise2/checks.py        more @check functions (hidden unless listed as visible)
    DIR/exercise2/visibility.toml  optional: hidden = [...], visible = [...], reveal = false

then course.toml sets points, visibility and time scale (labkit/course/).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from labkit.checks import CheckSpec, collect
from labkit.course.catalog import CatalogError, Exercise
from labkit.course.course import current_course
from labkit.course.visibility import read_visibility
from labkit.files import import_path
from labkit.sandbox.session import Limits


@dataclass
class Plan:
    """The checks to run, in order, with what the course says of them."""

    checks: list[CheckSpec]
    limits: Limits
    reveal: bool  # students may see hidden checks' names and messages
    gpus: int  # CUDA devices on this machine: checks that need more are skipped
    feedback: str = "message"  # course.toml: "message" (hints one at a time via `labkit hint`) or "hint" (inline)


def plan(exercise: Exercise, *, gpus: int, only: Collection[str] = (), checks_dir: Path | None = None,
         time_scale: float = 1.0) -> Plan:
    """The exercise's checks, the instructor's added, course.toml applied, narrowed to `only` when given."""
    course = current_course(root=exercise.folder.parent)
    checks, reveal = instructor_checks(exercise.id, load_checks(exercise)[0], checks_dir or course.checks_dir)
    checks = course.apply(exercise.id, checks)  # course.toml: points, visibility, checks' own time limits
    unknown = set(only) - {c.name for c in checks}
    if unknown:
        raise CatalogError(f"{exercise.id} has no check named {', '.join(sorted(unknown))}; its checks: "
                           + ", ".join(c.name for c in checks))
    return Plan([c for c in checks if not only or c.name in only],
                limits_for(exercise, gpus, time_scale * course.time_scale_for(exercise.id)),
                reveal or course.visibility(exercise.id).reveal, gpus, course.feedback)


def load_checks(exercise: Exercise) -> tuple[list[CheckSpec], ModuleType]:
    """Import an exercise's checks.py in the grader (trusted code) and list its checks."""
    module = import_path(exercise.checks_file, f"labkit_checks_{exercise.id}")
    return collect(vars(module)), module


def instructor_checks(exercise_id: str, builtin: list[CheckSpec],
                      checks_dir: Path | None) -> tuple[list[CheckSpec], bool]:
    """The exercise's checks with the instructor's added and their visibility set; and whether to reveal."""
    if checks_dir is None:
        return builtin, False
    folder = Path(checks_dir) / exercise_id
    added: list[CheckSpec] = []
    if (folder / "checks.py").is_file():
        module = import_path(folder / "checks.py", f"labkit_hidden_checks_{exercise_id}")
        added = [replace(c, hidden=True) for c in collect(vars(module))]  # hidden unless listed visible
    names = [c.name for c in builtin + added]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise CatalogError(f"{folder / 'checks.py'} redefines check(s) {', '.join(clash)} of {exercise_id}: "
                           "give added checks new names")
    vis = read_visibility(folder / "visibility.toml")
    unknown = vis.unknown(set(names))
    if unknown:
        raise CatalogError(f"{folder / 'visibility.toml'} names no such check: {', '.join(unknown)}")
    return vis.apply(builtin + added), vis.reveal


def limits_for(exercise: Exercise, gpus: int, scale: float = 1.0) -> Limits:
    """exercise.toml's limits, scaled (course.toml's time_scale)."""
    call = exercise.call_seconds * scale
    return Limits(call_seconds=call, import_seconds=exercise.import_seconds * scale,
                  cpu_seconds=int(max(60, call * 4)),
                  memory_bytes=None if gpus else exercise.memory_mb << 20)
