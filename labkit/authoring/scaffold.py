"""`labkit dev new`: a new exercise's five files, from templates that pass `labkit dev check` as written, and its
place in course.toml (where course.toml lists the exercises, an exercise it does not list is unknown to students)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from labkit.course.catalog import CatalogError
from labkit.files import write_atomic
from labkit.paths import PACKAGE, source_root

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


def site_dirs() -> list[Path]:
    """Where pip installs packages for this Python (a wheel's labkit and its exercises live there)."""
    import site
    import sysconfig

    found = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    if site.ENABLE_USER_SITE:
        found.add(site.getusersitepackages())
    return sorted(Path(p).resolve() for p in found if p)


def installed_home(path: Path) -> Path | None:
    """The installed package folder (or site-packages) that `path` lies in, or None for a course of one's own."""
    path = Path(path).resolve()
    homes = [*site_dirs(), *([] if source_root() else [PACKAGE])]  # a checkout's own package folder is a source
    return next((home for home in homes if path == home or home in path.parents), None)


def scaffold(exercise_id: str, title: str, root: Path, solutions: Path) -> list[Path]:
    """Write ROOT/ID/{exercise.toml, README.md, starter.py, checks.py} and SOLUTIONS/ID.py; the files written."""
    home = installed_home(root) or installed_home(solutions)
    if home is not None:
        raise CatalogError(f"{root} is inside the installed labkit ({home}): an upgrade would lose the exercise and "
                           "every student would get it. Write it into a course of your own: "
                           "labkit dev new ID --title ... --root my-course/exercises (course.toml beside it)")
    if not ID.fullmatch(exercise_id):
        raise CatalogError(f"{exercise_id!r} is not a valid exercise id: lower-case letters, digits and _, "
                           "starting with a letter (e.g. exercise9)")
    if not title.strip() or '"' in title or "\n" in title:
        raise CatalogError("give a one-line --title without double quotes")
    folder, solution = Path(root) / exercise_id, Path(solutions) / f"{exercise_id}.py"
    for path in (folder, solution):
        if path.exists():
            raise CatalogError(f"{path} already exists: refusing to overwrite {exercise_id}; pick another id")
    siblings = [d for d in Path(root).iterdir() if (d / "exercise.toml").is_file()] if Path(root).is_dir() else []
    orders = [order_of(d) for d in siblings]
    fields = {"id": exercise_id, "title": title.strip(), "order": max(orders, default=0) + 1}
    files = {folder / "exercise.toml": EXERCISE_TOML, folder / "README.md": README, folder / "starter.py": STARTER,
             folder / "checks.py": CHECKS, solution: SOLUTION}
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields), encoding="utf-8")
    return list(files)


def order_of(folder: Path) -> int:
    """An exercise folder's `order` (0 when its exercise.toml cannot be read)."""
    try:
        return int(tomllib.loads((folder / "exercise.toml").read_text(encoding="utf-8")).get("order", 0))
    except (OSError, ValueError, tomllib.TOMLDecodeError):
        return 0


def add_to_course(course: Path | None, exercise_id: str) -> str:
    """Append the exercise to course.toml's `exercises` list when it has one; what was done, or what to add."""
    if course is None:
        return ""  # no course.toml: the course is every exercise, the new one included
    path = Path(course)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return f"{path} cannot be read ({exc}): add \"{exercise_id}\" to its exercises list yourself"
    listed = data.get("exercises")
    if not isinstance(listed, list) or exercise_id in listed:
        return ""  # every exercise is in the course, or this one already is
    ask = (f"{path} lists the course's exercises: add \"{exercise_id}\" to `exercises = [...]`, or "
           f"`labkit check {exercise_id}` will call it unknown")
    m = re.search(r"(?ms)^exercises\s*=\s*\[(?P<items>.*?)(?P<tail>\s*)\]", text)
    if m is None:
        return ask
    items = m["items"].rstrip()
    joined = f'{items} "{exercise_id}"' if not items or items.endswith((",", "[")) else f'{items}, "{exercise_id}"'
    edited = text[: m.start("items")] + joined + text[m.end("items"):]
    try:
        again = tomllib.loads(edited)
    except tomllib.TOMLDecodeError:
        return ask
    if again.get("exercises") != [*listed, exercise_id] or {**again, "exercises": listed} != data:
        return ask  # the list holds something this edit cannot keep whole (a comment after the last id): by hand
    write_atomic(path, edited)
    return f"added \"{exercise_id}\" to the exercises of {path}"
