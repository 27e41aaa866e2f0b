"""`labkit dev new`: a new exercise's five files, from templates that pass `labkit dev check` as written."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from labkit.course.catalog import CatalogError

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
