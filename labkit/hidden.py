"""Instructors' checks: an extra checks directory adds checks to an exercise and sets which ones students see.

Layout of a checks directory (`labkit grade --checks-dir DIR`):

    DIR/exercise2/checks.py        more @check functions (hidden unless listed as visible)
    DIR/exercise2/visibility.toml  optional: hidden = [...], visible = [...], reveal = false

`hidden` and `visible` name checks, the built-in ones included; `reveal = true` lets
students' feedback name hidden checks and show their messages (after a deadline, say).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from labkit.catalog import CatalogError
from labkit.checks import CheckSpec, collect
from labkit.worker import import_path

VISIBILITY_KEYS = {"hidden", "visible", "reveal"}


@dataclass(frozen=True)
class Visibility:
    """Which checks students see; read from visibility.toml."""

    hidden: frozenset[str] = field(default_factory=frozenset)  # withheld from students
    visible: frozenset[str] = field(default_factory=frozenset)  # shown, even if added by the instructor
    reveal: bool = False  # show hidden checks' names and messages to students after all


def read_visibility(path: Path) -> Visibility:
    """visibility.toml, or the default (added checks hidden) when it does not exist."""
    if not path.is_file():
        return Visibility()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - VISIBILITY_KEYS
    if unknown:
        raise CatalogError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; expected hidden, visible, reveal")
    for key in ("hidden", "visible"):
        if not all(isinstance(v, str) for v in data.get(key, [])):
            raise CatalogError(f"{path}: {key} must be a list of check names")
    return Visibility(frozenset(data.get("hidden", [])), frozenset(data.get("visible", [])),
                      bool(data.get("reveal", False)))


def apply(exercise_id: str, builtin: list[CheckSpec], checks_dir: Path | None) -> tuple[list[CheckSpec], bool]:
    """The exercise's checks with the instructor's added and their visibility set; and whether to reveal."""
    if checks_dir is None:
        return builtin, False
    folder = Path(checks_dir) / exercise_id
    added: list[CheckSpec] = []
    if (folder / "checks.py").is_file():
        module = import_path(str(folder / "checks.py"), f"labkit_hidden_checks_{exercise_id}")
        added = [replace(c, hidden=True) for c in collect(vars(module))[0]]  # hidden unless listed visible
    names = [c.name for c in builtin + added]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise CatalogError(f"{folder / 'checks.py'} redefines check(s) {', '.join(clash)} of {exercise_id}: "
                           "give added checks new names")
    vis = read_visibility(folder / "visibility.toml")
    unknown = (vis.hidden | vis.visible) - set(names)
    if unknown:
        raise CatalogError(f"{folder / 'visibility.toml'} names no such check: {', '.join(sorted(unknown))}")
    both = vis.hidden & vis.visible
    if both:
        raise CatalogError(f"{folder / 'visibility.toml'} lists {', '.join(sorted(both))} as hidden and visible")
    checks = []
    for c in builtin + added:
        hidden = (c.hidden or c.name in vis.hidden) and c.name not in vis.visible
        checks.append(replace(c, hidden=hidden))
    return checks, vis.reveal
