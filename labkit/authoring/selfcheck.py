"""Authoring: the author's self-check of exercises (`labkit dev check`)."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labkit.authoring.scaffold import order_of
from labkit.course.catalog import CatalogError, Exercise, load_exercise
from labkit.course.course import Course, line_of

REQUIRED = ("id", "title", "order", "points")
TOP_KEYS = {"id": str, "title": str, "order": int, "points": int, "needs_gpus": int, "hints": list,
            "hints_zh": list, "title_zh": str, "data": str, "preload": list, "limits": dict, "full_run": bool,
            "scaling_builder": str}
LIMIT_KEYS = {"call_seconds": (int, float), "import_seconds": (int, float), "memory_mb": int}
@dataclass
class Outcome:
    """What the self-check found for one exercise."""

    id: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts worth a line when all is well


def check_metadata(folder: Path) -> list[str]:
    """Problems in exercise.toml, each as 'FILE:LINE: what is wrong'."""
    path = _short(folder / "exercise.toml")
    if not path.is_file():
        return [f"{path}: missing (every exercise folder needs an exercise.toml)"]
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [f"{path}: not valid TOML: {exc}"]
    problems = []
    at = lambda key, table="": f"{path}:{line_of(text, key, table) or 1}"  # noqa: E731
    top_end = next((n for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("[")
                    and not line.lstrip().startswith("[\"")), len(text.splitlines()) or 1)
    for key in REQUIRED:
        if key not in data:
            problems.append(f"{path}:{top_end}: missing field {key!r} (add it to the top-level table, above this line)")
    for key, value in data.items():
        want = TOP_KEYS.get(key)
        if want is None:
            problems.append(f"{at(key)}: unknown key {key!r}; expected one of {', '.join(TOP_KEYS)}")
        elif not isinstance(value, want) or (isinstance(value, bool) and want is not bool):
            problems.append(f"{at(key)}: {key} should be a {want.__name__}, got {type(value).__name__}")
    for key, value in (data.get("limits") if isinstance(data.get("limits"), dict) else {}).items():
        want = LIMIT_KEYS.get(key)
        if want is None:
            problems.append(f"{at(key, 'limits')}: unknown key {key!r} in [limits]; expected one of "
                            f"{', '.join(LIMIT_KEYS)}")
        elif not isinstance(value, want) or isinstance(value, bool) or value <= 0:
            problems.append(f"{at(key, 'limits')}: limits.{key} should be a positive number, got {value!r}")
    if isinstance(data.get("id"), str) and data["id"] != folder.name:
        problems.append(f"{at('id')}: id {data['id']!r} differs from its folder's name {folder.name!r}")
    if isinstance(data.get("title"), str) and not data["title"].strip():
        problems.append(f"{at('title')}: title is empty")
    hints = data.get("hints", [])
    if isinstance(hints, list) and (len(hints) < 2 or not all(isinstance(h, str) and h.strip() for h in hints)):
        problems.append(f"{at('hints') if 'hints' in data else f'{path}:{top_end}'}: give at least 2 hints "
                        f"(non-empty strings; `labkit hint` shows them one at a time), found {len(hints)}")
    return problems


def check_exercise(folder: Path, solutions: Path, worker, *, course: Course | None = None, margin: float = 0.5,
                   gpus: int | None = None) -> Outcome:
    """The self-check of one exercise folder: metadata, statement, checks, solution, starter and time limits."""
    out = Outcome(folder.name)
    out.problems += check_metadata(folder)
    statement = _short(folder / "README.md")
    if not statement.is_file() or not statement.read_text(encoding="utf-8").strip():
        out.problems.append(f"{statement}: the statement is {'empty' if statement.is_file() else 'missing'}")
    if not (folder / "starter.py").is_file():
        out.problems.append(f"{_short(folder / 'starter.py')}: the starter is missing")
    try:
        ex = load_exercise(folder)
    except (CatalogError, ValueError, TypeError) as exc:
        if not out.problems:  # otherwise check_metadata said why, with the line
            out.problems.append(f"exercise.toml cannot be loaded: {exc}")
        return out
    from labkit.grading.plan import load_checks

    try:
        specs = load_checks(ex)[0]
    except Exception as exc:  # an author's checks.py that cannot be imported
        out.problems.append(f"{ex.checks_file}: cannot be imported: {type(exc).__name__}: {exc}")
        return out
    if not specs:
        out.problems.append(f"{ex.checks_file}: defines no @check")
        return out
    for c in specs:
        missing = [what for what, value in (("title", c.title), ("hint", c.hint)) if not (value or "").strip()]
        if not isinstance(c.points, int) or c.points <= 0:
            missing.append("points (a positive int)")
        if missing:
            out.problems.append(f"check {c.name} has no {' and no '.join(missing)} (checks.py line "
                                f"{c.fn.__code__.co_firstlineno})")
    if ex.points != sum(c.points for c in specs):
        out.problems.append(f"points = {ex.points} in exercise.toml, but its checks' points sum to "
                            f"{sum(c.points for c in specs)}")
    if ex.needs_gpus != max(c.needs_gpus for c in specs):
        out.problems.append(f"needs_gpus = {ex.needs_gpus} in exercise.toml, but its checks need at most "
                            f"{max(c.needs_gpus for c in specs)}")
    if course is not None:
        out.problems += course.unknown_checks(ex.id, {c.name for c in specs})
    _check_runs(ex, specs, solutions, worker, course, margin, out)
    return out


def _check_runs(ex: Exercise, specs: list, solutions: Path, worker, course: Course | None, margin: float,
                out: Outcome) -> None:
    """Grade the solution (every runnable check passes, in time) and the starter (scores zero)."""
    from labkit.grading.engine import grade

    scale = course.time_scale_for(ex.id) if course else 1.0
    solution = next((p for p in (Path(solutions) / ex.filename, ex.folder / "solution.py") if p.is_file()), None)
    if solution is None:
        out.problems.append(f"no reference solution: expected {Path(solutions) / ex.filename}")
    else:
        report = grade(ex, solution, worker=worker, sandbox="none")
        by_name = {c.name: c for c in specs}
        worst = 0.0
        for r in report.results:
            if r.status in ("failed", "error"):
                out.problems.append(f"the solution fails check {r.name}: {_first_line(r.message)}")
            elif r.status == "skipped":
                out.notes.append(f"{r.name} skipped ({r.message})")
            elif r.status == "inconclusive":
                out.notes.append(f"{r.name} inconclusive on the solution ({r.message}): rerun on a quiet machine")
            if r.status == "passed":
                spec = by_name[r.name]
                limit, which = ((spec.timeout, f"the check's own timeout={spec.timeout:g}") if spec.timeout
                                else (ex.call_seconds, f"exercise.toml's call_seconds={ex.call_seconds:g}"))
                limit *= scale
                worst = max(worst, r.seconds / limit)
                if r.seconds > margin * limit:
                    out.problems.append(f"check {r.name} took {r.seconds:.2f} s on the solution, over {margin:.0%} "
                                        f"of its {limit:g} s limit ({which}): raise the limit or make it faster")
        ran = report.count("passed")
        out.notes.insert(0, f"solution {report.score:g}/{report.max_score:g} ({ran} check(s) ran, slowest at "
                            f"{worst:.0%} of its limit)")
    starter = ex.starter
    if starter.is_file():
        report = grade(ex, starter, worker=worker, sandbox="none")
        for r in report.results:
            if r.status == "passed":
                out.problems.append(f"{ex.id}'s starter already passes check {r.name}: make the starter fail it "
                                    f"(raise NotImplementedError(\"{ex.id}: ...\"))")
            elif r.status == "error" and "could not be imported" in r.message:
                out.problems.append(f"the starter cannot be imported: {_first_line(r.message)}")
                break
        out.notes.insert(1, f"starter {report.score:g}/{report.max_score:g}")


def _short(path: Path) -> Path:
    """`path` relative to the current folder when it lies below it (shorter messages), else as is."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def course_problems(course: Course, folders: list[Path]) -> list[str]:
    """course.toml naming exercises that are not among `folders`."""
    names = {f.name for f in folders}
    order = list(course.order or ())
    problems = [f"{course.where('exercises')}: no exercise {i!r} in the exercises folder" for i in order
                if i not in names]
    return problems + [f"{course.where(i, 'exercise')}: [exercise.{i}]: no exercise {i!r} in the exercises folder"
                       for i in course.entries if i not in order and i not in names]


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else "(no message)"


def self_check(folders: list[Path], solutions: Path, *, course: Course | None = None, margin: float = 0.5,
               on_outcome: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Self-check each exercise folder with one shared grading worker (no sandbox: the author's own code)."""
    from labkit.sandbox.worker import Worker

    outcomes, orders = [], {}
    with Worker("none") as worker:
        for folder in folders:
            outcome = check_exercise(folder, solutions, worker, course=course, margin=margin)
            order = order_of(folder)
            if order in orders:
                outcome.problems.append(f"order = {order} is also {orders[order]}'s: give each exercise its own")
            orders.setdefault(order, folder.name)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes
