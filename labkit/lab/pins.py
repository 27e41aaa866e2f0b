"""The course's pinned versions (constraints.txt, shipped inside the wheel too) against what is installed here:
`labkit doctor` warns when torch differs from the pin the checks were written and timed with."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from labkit.paths import IMPORT_ROOT, PACKAGE

CONSTRAINTS = "constraints.txt"
PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


@dataclass(frozen=True)
class Drift:
    """A pinned package installed at another version."""

    name: str
    pinned: str
    installed: str

    @property
    def message(self) -> str:
        return (f"{self.name} {self.installed} is installed but the course pins {self.pinned} ({CONSTRAINTS}): "
                f"results and timings may differ from the grader's; pip install \"{self.name}=={self.pinned}\"")


def constraints_file() -> Path | None:
    """constraints.txt: the copy inside an installed wheel, else the checkout's; None when neither is there."""
    for path in (PACKAGE / CONSTRAINTS, IMPORT_ROOT / CONSTRAINTS):
        if path.is_file():
            return path
    return None


def read_pins(path: Path | None = None) -> dict[str, str]:
    """{normalised name: version} for every `name==version` line of the constraints file ({} without one)."""
    path = path if path is not None else constraints_file()
    if path is None:
        return {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    return {normalise(m[1]): m[2] for m in map(PIN.match, lines) if m}


def installed_version(name: str) -> str | None:
    """The version pip installed for `name`, read from its metadata (never importing it), or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def drift(names: tuple[str, ...] = ("torch",), pins: dict[str, str] | None = None,
          installed: Callable[[str], str | None] | None = None) -> list[Drift]:
    """The pinned packages among `names` whose installed version differs from the pin; a build's local label
    (2.14.1+cpu, +cu126) is the same release. A package that is not installed is not drift (doctor says so)."""
    pins = read_pins() if pins is None else pins
    installed = installed or installed_version
    found = []
    for name in names:
        pinned, have = pins.get(normalise(name)), installed(name)
        if pinned and have and release(have) != release(pinned):
            found.append(Drift(name, pinned, have))
    return found


def torch_pin_warning() -> str:
    """doctor's line: '' when the installed torch is the pinned one (or either is unknown), else the warning."""
    found = drift(("torch",))
    return found[0].message if found else ""


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: PyYAML, pyyaml and py_yaml are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> str:
    """A version without its local label (+cpu): the release pip's `==` pin matches."""
    return version.split("+", 1)[0].strip().lower()
