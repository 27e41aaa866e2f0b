"""Which checks students see: one rule for course.toml's [exercise.ID] and a checks directory's visibility.toml.

A check is hidden when its author hid it (an instructor's added checks are) or a course lists it
under `hidden`, unless it is listed under `visible`; `reveal = true` shows hidden checks after all.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from labkit.checks import CheckSpec
from labkit.course.catalog import CatalogError

KEYS = {"hidden", "visible", "reveal"}


@dataclass(frozen=True)
class Visibility:
    """Which checks students see, as course.toml or visibility.toml says."""

    hidden: frozenset[str] = field(default_factory=frozenset)  # withheld from students
    visible: frozenset[str] = field(default_factory=frozenset)  # shown, even if hidden by default
    reveal: bool = False  # show hidden checks' names and messages to students after all

    def hides(self, spec: CheckSpec) -> bool:
        """The resolution rule, the one place it is written."""
        return (spec.hidden or spec.name in self.hidden) and spec.name not in self.visible

    def apply(self, checks: list[CheckSpec]) -> list[CheckSpec]:
        """`checks` with their `hidden` flag set by this rule."""
        return [replace(c, hidden=self.hides(c)) for c in checks]

    def unknown(self, names: set[str]) -> list[str]:
        """Check names listed here that are not among `names`."""
        return sorted((self.hidden | self.visible) - names)


def read_visibility(path: Path) -> Visibility:
    """visibility.toml, or the default (added checks hidden) when it does not exist."""
    if not path.is_file():
        return Visibility()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - KEYS
    if unknown:
        raise CatalogError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; expected hidden, visible, reveal")
    for key in ("hidden", "visible"):
        if not all(isinstance(v, str) for v in data.get(key, [])):
            raise CatalogError(f"{path}: {key} must be a list of check names")
    vis = Visibility(frozenset(data.get("hidden", [])), frozenset(data.get("visible", [])),
                     bool(data.get("reveal", False)))
    both = vis.hidden & vis.visible
    if both:
        raise CatalogError(f"{path} lists {', '.join(sorted(both))} as hidden and visible")
    return vis
