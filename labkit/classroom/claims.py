"""What intake passes between its steps: a student's Entry, the claims found on disk, and the helpers that name files
safely (hidden entries skipped, undecodable names shown, links listed but never followed)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from labkit.classroom import safezip
from labkit.classroom.safezip import hidden_name


class IntakeError(Exception):
    """SUBMISSIONS as a whole is unusable: missing, not a folder/.py/.zip, or a corrupt top-level zip."""


@dataclass
class Entry:
    """One student's submission: the staged file to grade, or why there is none."""

    student: str
    file: Path | None
    name: str = ""
    error: str = ""
    source: str = ""
    note: str = ""  # for the instructor: why `student` is not the id the submission gave (a clash of file names)
    stem: str = ""  # its staging folder and result file name: safe_id(student), unique in the batch, ignoring case
    late: bool = False  # the LMS marked it late (Canvas's `_late` in the file name)


@dataclass
class File:
    """A candidate file: the name it is chosen by, where it lies, and where it came from (for the report)."""

    name: str
    path: Path
    origin: str


@dataclass
class Claim:
    """One source's claim to be a student's submission, before its file is chosen and staged."""

    student: str
    keys: set[str]  # its top-level names under the root, to pin refused members of a top-level zip on it
    source: str
    name: str = ""
    files: list[File] = field(default_factory=list)
    error: str = ""
    late: bool = False


def walk(folder: Path, origin: str) -> list[File]:
    """Every visible file under `folder` (links listed, never followed), stopping past safezip.MAX_MEMBERS."""
    found: list[File] = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not hidden_name(d))
        for n in sorted(names):
            if not hidden_name(n):
                path = Path(here, n)
                found.append(File(n, path, origin + printable(path.relative_to(folder).as_posix())))
        if len(found) > safezip.MAX_MEMBERS:
            break
    return found


def visible(folder: Path) -> list[Path]:
    """A folder's entries, sorted, without hidden ones."""
    return sorted(p for p in folder.iterdir() if not hidden_name(p.name))


def valid(name: str) -> bool:
    """Whether a name from the disk is real UTF-8 (not bytes smuggled in as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """`text` with undecodable bytes shown as "?", safe to print and write into reports."""
    return text.encode("utf-8", "replace").decode("utf-8")
