"""Every location labkit uses: its package, the source checkout, the exercises and the reference solutions."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # labkit/ itself: what the sandbox binds, what a worker imports
IMPORT_ROOT = PACKAGE.parent  # the folder that holds the package: a checkout, or site-packages


def source_root() -> Path | None:
    """The labkit checkout this package runs from (pyproject.toml and exercises/ beside it); None for a wheel."""
    root = IMPORT_ROOT
    return root if (root / "pyproject.toml").is_file() and (root / "exercises").is_dir() else None


def exercises_root() -> Path | None:
    """The folder holding the exercises: $LABKIT_EXERCISES, the checkout's, or the copy a wheel installs."""
    env = os.environ.get("LABKIT_EXERCISES")
    if env:
        return Path(env).resolve()
    for candidate in (IMPORT_ROOT / "exercises", PACKAGE / "exercises"):
        if candidate.is_dir():
            return candidate
    return None


def solutions_root(explicit: Path | None = None, exercises: Path | None = None) -> Path:
    """The reference solutions: `explicit`, else $LABKIT_SOLUTIONS, else `solutions/` beside the exercises folder.

    The folder may not exist: a student's install has no solutions.
    """
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get("LABKIT_SOLUTIONS")
    if env:
        return Path(env)
    exercises = exercises or exercises_root() or IMPORT_ROOT / "exercises"
    return Path(exercises).resolve().parent / "solutions"


def installed_exercises() -> list[Path]:
    """Every copy of the exercises an install carries: the package's own (a wheel) and site-packages/labkit/exercises
    (an editable install copies them there too): what a grader hides from the worker it starts."""
    import site
    import sys
    import sysconfig

    sites = {Path(p) for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                               *site.getsitepackages(), *sys.path) if p}
    found = {s / "labkit" / "exercises" for s in sites} | {PACKAGE / "exercises"}
    return sorted(p.resolve() for p in found if p.is_dir())


def locale_dir() -> Path:
    """labkit's translations (gettext catalogs, shipped in the package)."""
    return PACKAGE / "locale"
