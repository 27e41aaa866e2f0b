"""The two halves of an assignment: a student pack (starters and statements) and a grader pack (everything)."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.catalog import CatalogError, Exercise, find_exercises
from labkit.course.course import Course
from labkit.course.visibility import read_visibility
from labkit.files import write_atomic, zip_entry
from labkit.paths import IMPORT_ROOT

# visible checks are public anyway; both statements travel
STUDENT_PARTS = ("exercise.toml", "README.md", "README.zh-CN.md", "starter.py", "checks.py")
SOURCE_FILES = ("pyproject.toml", "constraints.txt", "README.md", "LICENSE")  # a checkout: it can build
SKIPPED = {"__pycache__", ".pytest_cache"}
GRADER_README = """\
# Grader pack{title}

Everything needed to grade {ids}: labkit's source, the exercises, the reference
solutions{hidden}, and course.toml. Keep it away from students.

    pip install -c constraints.txt .        # labkit, with torch pinned
    labkit dev check                         # the solutions pass, the starters score zero
    labkit grade submissions.zip -e {first}{checks}
    labkit gradescope build {ids} -o autograder.zip{checks}
"""


@dataclass
class Packed:
    """What a pack holds, for the command's summary."""

    path: Path
    exercises: list[str]
    names: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def chosen(course: Course, names: tuple[str, ...] = (), root: Path | None = None) -> list[Exercise]:
    """The exercises to pack: those named, else the course's."""
    exercises = course.exercises(find_exercises(root))  # every folder: the course given, not the default one, chooses
    found, outside = [], []
    for name in names:
        try:
            found.append(course.resolve(name, exercises))
        except CatalogError:
            outside.append(name)
    if outside:
        raise CatalogError(f"{', '.join(outside)} not in the course ({course.path or 'every exercise'}); "
                           f"its exercises: {', '.join(e.id for e in exercises)}")
    return found if names else exercises


def _files(folder: Path) -> list[Path]:
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
            and not SKIPPED & set(p.relative_to(folder).parts) and p.suffix != ".pyc"]


def _write(out: Path, entries: dict[str, bytes]) -> list[str]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(entries):
            zip_entry(zf, name, entries[name])
    write_atomic(Path(out), buf.getvalue())
    return sorted(entries)


def student_pack(out: Path, course: Course, names: tuple[str, ...] = (), root: Path | None = None) -> Packed:
    """Starters, statements, exercise.toml, the public checks.py and course.toml: no solutions, no hidden checks."""
    exercises = chosen(course, names, root)
    entries: dict[str, bytes] = {}
    warnings = []
    for ex in exercises:
        for part in STUDENT_PARTS:
            path = ex.folder / part
            if path.is_file():
                entries[f"exercises/{ex.id}/{part}"] = path.read_bytes()
        hidden = sorted(course.visibility(ex.id).hidden)
        if hidden:
            warnings.append(f"{ex.id}: {', '.join(hidden)} hidden by course.toml but defined in its public "
                            "checks.py: students can read their code (move secret checks to the checks dir)")
    if course.path is not None:
        entries["course.toml"] = _course_text(course, None).encode()
    entries["README.md"] = _student_readme(exercises, course).encode()
    return Packed(Path(out), [e.id for e in exercises], _write(out, entries), warnings)


def grader_pack(out: Path, course: Course, solutions: Path, *, names: tuple[str, ...] = (),
                checks_dir: Path | None = None, root: Path | None = None, source: Path | None = None) -> Packed:
    """labkit's source, the exercises, their solutions, the hidden checks and course.toml."""
    exercises = chosen(course, names, root)
    checks_dir = checks_dir or course.checks_dir
    entries: dict[str, bytes] = {}
    for ex in exercises:
        for path in _files(ex.folder):
            entries[f"exercises/{ex.id}/{path.relative_to(ex.folder).as_posix()}"] = path.read_bytes()
        solution = Path(solutions) / ex.filename
        if not solution.is_file():
            raise CatalogError(f"no reference solution for {ex.id} at {solution}: the grader pack needs it "
                               "(--solutions DIR)")
        entries[f"solutions/{ex.filename}"] = solution.read_bytes()
        if checks_dir is not None and (Path(checks_dir) / ex.id).is_dir():
            read_visibility(Path(checks_dir) / ex.id / "visibility.toml")  # a broken file fails now
            for path in _files(Path(checks_dir) / ex.id):
                entries[f"checks/{ex.id}/{path.relative_to(checks_dir).relative_to(ex.id).as_posix()}"] = \
                    path.read_bytes()
    if checks_dir is not None and not Path(checks_dir).is_dir():
        raise CatalogError(f"checks directory {checks_dir} does not exist")
    has_checks = any(n.startswith("checks/") for n in entries)
    source = Path(source) if source else IMPORT_ROOT  # a checkout, or site-packages (the package alone)
    if (source / "labkit" / "__init__.py").is_file():
        for name in SOURCE_FILES:
            if (source / name).is_file():
                entries[name] = (source / name).read_bytes()
        for path in _files(source / "labkit"):
            entries[f"labkit/{path.relative_to(source / 'labkit').as_posix()}"] = path.read_bytes()
    entries["course.toml"] = _course_text(course, "checks" if has_checks else None, [e.id for e in exercises]).encode()
    ids = " ".join(e.id for e in exercises)
    entries["GRADER.md"] = GRADER_README.format(
        title=f": {course.title}" if course.title else "", ids=ids, first=exercises[0].id if exercises else "",
        hidden=", the hidden checks (checks/)" if has_checks else "",
        checks=" --checks-dir checks" if has_checks else "").encode()
    return Packed(Path(out), [e.id for e in exercises], _write(out, entries))


def _course_text(course: Course, checks_dir: str | None, ids: list[str] | None = None) -> str:
    """course.toml for a pack: the course's own text, its checks_dir pointing into the pack (or dropped)."""
    if course.path is None:
        listed = ", ".join(f'"{i}"' for i in ids or [])
        text = f"# The default course: every exercise, unchanged.\nexercises = [{listed}]\n"
    else:
        text = course.text
    text = re.sub(r"(?m)^checks_dir\s*=.*\n?", "", text)  # a top-level key: the only one of that name
    if checks_dir:
        text = f'checks_dir = "{checks_dir}"  # the hidden checks, in this pack\n' + text
    return text


def _student_readme(exercises: list[Exercise], course: Course) -> str:
    rows = "\n".join(f"- `{e.id}` ({e.points:g} points): {e.title}" for e in exercises)
    return (f"# {course.title or 'Assignment'}\n\n{rows}\n\nFor each exercise: read exercises/ID/README.md, copy "
            "exercises/ID/starter.py to ID.py, fill it in, then\n\n    LABKIT_EXERCISES=exercises labkit check ID "
            "--file ID.py\n")
