"""course.toml: which exercises a course has, in what order, their points, visibility and time limits.

Found via `--course FILE`, $LABKIT_COURSE, else `course.toml` beside the exercises folder (the repo root);
without one the course is every exercise, unchanged. docs/authoring.md documents the schema.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from labkit.checks import CheckSpec
from labkit.course.catalog import CatalogError, Exercise, course_root, find_exercises
from labkit.course.visibility import Visibility
from labkit.i18n import _

COURSE_KEYS = {"title", "time_scale", "checks_dir", "exercises", "exercise", "feedback"}
FEEDBACK = ("message", "hint")  # what a failing check shows: its message, or its message and its hint
ENTRY_KEYS = {"points", "time_scale", "hidden", "visible", "reveal", "checks"}


@dataclass(frozen=True)
class Entry:
    """One exercise's settings in course.toml ([exercise.ID])."""

    id: str
    points: float | None = None  # the exercise's total: its checks' points are scaled to sum to it
    time_scale: float = 1.0  # multiplies the course's time_scale for this exercise
    checks: dict[str, float] = field(default_factory=dict)  # per-check point overrides
    hidden: frozenset[str] = frozenset()  # built-in checks withheld from students
    visible: frozenset[str] = frozenset()  # checks shown even though hidden by default
    reveal: bool = False  # students see hidden checks' names and messages


@dataclass(frozen=True)
class Course:
    """A course: the default one (every exercise, unchanged) when `path` is None."""

    path: Path | None = None
    title: str = ""
    time_scale: float = 1.0  # every time limit multiplied (1.5 on a slower machine)
    checks_dir: Path | None = None  # the instructor's hidden checks (resolved against course.toml's folder)
    order: tuple[str, ...] | None = None  # the exercises, in course order; None: every exercise found
    entries: dict[str, Entry] = field(default_factory=dict)
    feedback: str = "message"  # "message": hints wait for `labkit hint`; "hint": each failing check shows its own
    text: str = field(default="", repr=False)

    def where(self, key: str, table: str = "") -> str:
        """`course.toml:LINE` for a key (or table) of this file, for error messages."""
        line = line_of(self.text, key, table) if self.text else None
        return f"{self.path}:{line}" if line else str(self.path)

    def exercises(self, found: list[Exercise]) -> list[Exercise]:
        """The course's exercises from those found on disk, in course order, with the course's points."""
        if self.order is None:
            return [self._with_points(e) for e in found]
        by_id = {e.id: e for e in found}
        chosen = []
        for n, ex_id in enumerate(self.order, 1):
            if ex_id not in by_id:
                raise CatalogError(f"{self.where('exercises')}: no exercise {ex_id!r} in the exercises folder; "
                                   f"found: {', '.join(by_id) or 'none'}")
            chosen.append(replace(self._with_points(by_id[ex_id]), order=n))
        return chosen

    def _with_points(self, ex: Exercise) -> Exercise:
        entry = self.entries.get(ex.id)
        return replace(ex, points=_number(entry.points)) if entry and entry.points is not None else ex

    def time_scale_for(self, exercise_id: str) -> float:
        entry = self.entries.get(exercise_id)
        return self.time_scale * (entry.time_scale if entry else 1.0)

    def visibility(self, exercise_id: str) -> Visibility:
        entry = self.entries.get(exercise_id) or Entry(exercise_id)
        return Visibility(entry.hidden, entry.visible, entry.reveal)

    def resolve(self, name: str, exercises: list[Exercise]) -> Exercise:
        """`exercise3`, `ex3`, `3` (any case) -> one of `exercises`, or a CatalogError listing the choices."""
        key = name.strip().lower()
        m = re.fullmatch(r"(?:exercise|ex)?\s*0*(\d+)(?:\.py)?", key)
        for ex in exercises:
            if key == ex.id.lower() or (m and ex.number == int(m.group(1))):
                return ex
        raise CatalogError(_("unknown exercise {name}; choose one of: {choices}").format(
            name=repr(name), choices=", ".join(e.id for e in exercises)))

    def points_for(self, exercise_id: str, check_name: str, checks: list[CheckSpec]) -> float:
        """What `check_name` is worth in this course, given all of the exercise's checks."""
        return next(c.points for c in self.apply(exercise_id, checks) if c.name == check_name)

    def unknown_checks(self, exercise_id: str, names: set[str]) -> list[str]:
        """'course.toml:LINE: ...' for each check course.toml names that the exercise does not have."""
        entry = self.entries.get(exercise_id)
        if entry is None:
            return []
        table = f"exercise.{exercise_id}"
        problems = [f"{self.where(n, table + '.checks')}: {exercise_id} has no check {n!r} (points override)"
                    for n in sorted(set(entry.checks) - names)]
        for key, listed in (("hidden", entry.hidden), ("visible", entry.visible)):
            problems += [f"{self.where(key, table)}: {exercise_id} has no check {n!r} ({key})"
                         for n in sorted(listed - names)]
        return problems

    def apply(self, exercise_id: str, checks: list[CheckSpec]) -> list[CheckSpec]:
        """The checks with this course's points, visibility and time scale applied."""
        entry = self.entries.get(exercise_id)
        scale = self.time_scale_for(exercise_id)
        if entry is None and scale == 1.0:
            return checks
        entry = entry or Entry(exercise_id)
        unknown = self.unknown_checks(exercise_id, {c.name for c in checks})
        if unknown:
            raise CatalogError(unknown[0] + "; its checks: " + ", ".join(c.name for c in checks))
        base = [entry.checks.get(c.name, c.points) for c in checks]
        factor = entry.points / sum(base) if entry.points is not None and sum(base) else 1.0
        scaled = [replace(c, points=_number(b * factor), timeout=c.timeout * scale if c.timeout else None)
                  for c, b in zip(checks, base, strict=True)]
        return self.visibility(exercise_id).apply(scaled)


def _number(value: float) -> float:
    """Points as an int when whole (12, not 12.0), else rounded to 4 places."""
    value = round(float(value), 4)
    return int(value) if value.is_integer() else value


def line_of(text: str, key: str, table: str = "") -> int | None:
    """The line (1-based) where `key =` is set in `[table]`, or where the table `[table.key]` starts."""
    current, header = "", None
    for n, line in enumerate(text.splitlines(), 1):
        m = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", line)
        if m:
            current = re.sub(r"\s*\.\s*", ".", m.group(1)).replace('"', "").replace("'", "")
            if header is None and current == (f"{table}.{key}" if table else key):
                header = n
            continue
        if current == table and re.match(rf"""^\s*["']?{re.escape(key)}["']?\s*=""", line):
            return n
    return header


def all_exercises(root: Path | None = None, course: Course | None = None) -> list[Exercise]:
    """Every exercise of the course, in course order, with the course's points (course.toml chooses)."""
    root = (root or course_root()).resolve()
    return (course or current_course(root=root)).exercises(find_exercises(root))


def resolve(name: str, root: Path | None = None) -> Exercise:
    """`exercise3`, `ex3`, `3` (any case) -> the course's exercise, or a CatalogError listing the choices."""
    root = (root or course_root()).resolve()
    course = current_course(root=root)
    return course.resolve(name, course.exercises(find_exercises(root)))


def find_course(explicit: Path | None = None, root: Path | None = None) -> Path | None:
    """course.toml: the one named, else $LABKIT_COURSE, else the one beside the exercises folder, else None."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("LABKIT_COURSE")
    if env:
        return Path(env)
    candidate = (root or course_root()).resolve().parent / "course.toml"
    return candidate if candidate.is_file() else None


def current_course(explicit: Path | None = None, root: Path | None = None) -> Course:
    """The course in force: course.toml as found by find_course, or the default course."""
    path = find_course(explicit, root)
    return load_course(path) if path is not None else Course()


def load_course(path: Path) -> Course:
    """Read and validate course.toml; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such course file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    course = Course(path=path, text=text)

    def bad(key: str, table: str, message: str) -> CatalogError:
        return CatalogError(f"{course.where(key, table)}: {message}")

    for key in sorted(set(data) - COURSE_KEYS):
        raise bad(key, "", f"unknown key {key!r}; expected one of {', '.join(sorted(COURSE_KEYS))}")
    scale = _scale(data.get("time_scale", 1.0), lambda m: bad("time_scale", "", m))
    order = data.get("exercises")
    if order is not None and (not isinstance(order, list) or not all(isinstance(x, str) for x in order)):
        raise bad("exercises", "", "exercises must be a list of exercise ids, e.g. [\"exercise1\", \"exercise2\"]")
    if order is not None and len(set(order)) != len(order):
        raise bad("exercises", "", f"exercises lists {sorted({x for x in order if order.count(x) > 1})} twice")
    tables = data.get("exercise", {})
    if not isinstance(tables, dict):
        raise bad("exercise", "", "exercise must be tables: [exercise.exercise1]")
    entries = {}
    for ex_id, table in tables.items():
        name = f"exercise.{ex_id}"
        if order is not None and ex_id not in order:
            raise bad(ex_id, "exercise", f"[{name}] configures an exercise not listed in exercises")
        if not isinstance(table, dict):
            raise bad(ex_id, "exercise", f"{name} must be a table")
        entries[ex_id] = _entry(ex_id, table, lambda k, m, t=name: bad(k, t, m))
    feedback = data.get("feedback", "message")
    if feedback not in FEEDBACK:
        raise bad("feedback", "", f"feedback must be \"message\" (hints wait for `labkit hint`) or \"hint\" "
                  f"(each failing check shows its hint), got {feedback!r}")
    checks_dir = data.get("checks_dir")
    if checks_dir is not None and not isinstance(checks_dir, str):
        raise bad("checks_dir", "", "checks_dir must be a path (a string), relative to course.toml")
    return replace(course, title=str(data.get("title", "")), time_scale=scale,
                   checks_dir=(path.parent / checks_dir).resolve() if checks_dir else None,
                   order=tuple(order) if order is not None else None, entries=entries, feedback=feedback)


def _entry(ex_id: str, table: dict, bad) -> Entry:
    for key in sorted(set(table) - ENTRY_KEYS):
        raise bad(key, f"unknown key {key!r} in [exercise.{ex_id}]; expected one of {', '.join(sorted(ENTRY_KEYS))}")
    points = table.get("points")
    if points is not None and (isinstance(points, bool) or not isinstance(points, (int, float)) or points <= 0):
        raise bad("points", "points must be a positive number (the exercise's total)")
    overrides = table.get("checks", {})
    if not isinstance(overrides, dict):
        raise bad("checks", "checks must be a table of check name = points")
    for name, value in overrides.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise bad("checks", f"the points of check {name!r} must be a number >= 0")
    lists = {}
    for key in ("hidden", "visible"):
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(key, f"{key} must be a list of check names")
        lists[key] = frozenset(value)
    both = lists["hidden"] & lists["visible"]
    if both:
        raise bad("visible", f"{', '.join(sorted(both))} listed as hidden and visible")
    reveal = table.get("reveal", False)
    if not isinstance(reveal, bool):
        raise bad("reveal", "reveal must be true or false")
    return Entry(ex_id, points, _scale(table.get("time_scale", 1.0), lambda m: bad("time_scale", m)),
                 dict(overrides), lists["hidden"], lists["visible"], reveal)


def _scale(value: object, bad) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 100:
        raise bad(f"time_scale must be a number > 0 (1.5: limits 50% longer), got {value!r}")
    return float(value)
