"""Authoring: scaffold a new exercise that works at once, and the author's self-check of exercises."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labkit.catalog import CatalogError, Exercise, load_exercise
from labkit.course import Course, line_of

REQUIRED = ("id", "title", "order", "points")
TOP_KEYS = {"id": str, "title": str, "order": int, "points": int, "needs_gpus": int, "hints": list,
            "hints_zh": list, "title_zh": str, "data": str, "preload": list, "limits": dict}
LIMIT_KEYS = {"call_seconds": (int, float), "import_seconds": (int, float), "memory_mb": int}
ID = re.compile(r"[a-z][a-z0-9_]*")

EXERCISE_TOML = '''\
id = "{id}"
title = "{title}"
order = {order}
points = 2             # the sum of the checks' points (`labkit dev check` keeps them equal)
needs_gpus = 0         # the most GPUs any of its checks needs
hints = [
    "scale takes a tensor and a number and returns a new tensor: multiplication does that.",
    "return x * factor: it builds a new tensor and leaves x alone (x.mul_(factor) would change the caller's tensor).",
]

[limits]
call_seconds = 20      # wall-clock limit of one call into the student's code
import_seconds = 20    # wall-clock limit for importing the student's file
'''

README = '''\
# {id} — {title}

One paragraph on the idea this exercise teaches, and why it matters on many GPUs.

## What to write (in `{id}.py`)

```python
def scale(x: torch.Tensor, factor: float) -> torch.Tensor
```
Returns a new tensor holding every element of `x` multiplied by `factor`, on the
same device as `x`. The caller's `x` must not change.

## Check your work

```console
labkit check {id}
labkit hint {id}      # stuck? one hint at a time
```
'''

STARTER = '''\
"""{id} — {title}.

Fill in the function below, then run `labkit check {id}`.
Keep the names and signatures: the checks call them.
"""

from __future__ import annotations

import torch


def scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """A new tensor: every element of `x` multiplied by `factor`; `x` itself is left unchanged."""
    # TODO: one line; return a new tensor rather than changing x in place.
    raise NotImplementedError("{id}: scale")
'''

SOLUTION = '''\
"""{id} — reference solution: {title}."""

from __future__ import annotations

import torch


def scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """A new tensor: every element of `x` multiplied by `factor`; `x` itself is left unchanged."""
    return x * factor
'''

CHECKS = '''\
"""Checks for {id}: each @check runs in the grader; sub.call runs the student's code in a sandboxed child."""

from __future__ import annotations

import torch

from labkit.checks import check, expect_close


@check(points=2, title="scale(x, k) multiplies every element by k and leaves x unchanged",
       hint="Return x * factor: a new tensor. In-place x.mul_(factor) would change the caller's x.")
def scales(sub):
    x = torch.randn(4, 3, generator=sub.generator())  # seeded: the same file always gets the same inputs
    k = sub.rng.choice([0.5, 2.0, -3.0])
    got = sub.call("scale", x, k)  # x travels to the child as a copy; the result comes back as plain data
    expect_close(got, x * k, f"scale(x, {{k}})")
'''


def solutions_dir(root: Path, explicit: Path | None = None) -> Path:
    """Where reference solutions live: --solutions, $LABKIT_SOLUTIONS, else `solutions/` beside the exercises."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("LABKIT_SOLUTIONS")
    return Path(env) if env else Path(root).resolve().parent / "solutions"


def scaffold(exercise_id: str, title: str, root: Path, solutions: Path) -> list[Path]:
    """Write ROOT/ID/{exercise.toml, README.md, starter.py, checks.py} and SOLUTIONS/ID.py; the files written."""
    if not ID.fullmatch(exercise_id):
        raise CatalogError(f"{exercise_id!r} is not a valid exercise id: lower-case letters, digits and _, "
                           "starting with a letter (e.g. exercise9)")
    if not title.strip() or '"' in title or "\n" in title:
        raise CatalogError("give a one-line --title without double quotes")
    folder, solution = Path(root) / exercise_id, Path(solutions) / f"{exercise_id}.py"
    for path in (folder, solution):
        if path.exists():
            raise CatalogError(f"{path} already exists: refusing to overwrite {exercise_id}; pick another id")
    orders = [_order(d) for d in Path(root).iterdir() if (d / "exercise.toml").is_file()] if Path(root).is_dir() else []
    fields = {"id": exercise_id, "title": title.strip(), "order": max(orders, default=0) + 1}
    files = {folder / "exercise.toml": EXERCISE_TOML, folder / "README.md": README, folder / "starter.py": STARTER,
             folder / "checks.py": CHECKS, solution: SOLUTION}
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields), encoding="utf-8")
    return list(files)


def _order(folder: Path) -> int:
    try:
        return int(tomllib.loads((folder / "exercise.toml").read_text(encoding="utf-8")).get("order", 0))
    except (OSError, ValueError, tomllib.TOMLDecodeError):
        return 0


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
    from labkit.engine import load_checks

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
    from labkit.engine import grade

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
    from labkit.runner import Worker

    outcomes, orders = [], {}
    with Worker("none") as worker:
        for folder in folders:
            outcome = check_exercise(folder, solutions, worker, course=course, margin=margin)
            order = _order(folder)
            if order in orders:
                outcome.problems.append(f"order = {order} is also {orders[order]}'s: give each exercise its own")
            orders.setdefault(order, folder.name)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes
