"""An exercise's statement where the student works: copied beside the started file, and printed by `labkit show`.

`labkit start exercise2` writes `exercise2.md` (and `exercise2.zh-CN.md`) into the workspace: the installed
package (or a container's) is no place to send a student's editor. A copy the student has edited is never
replaced; one they have not is refreshed when labkit's statement changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.catalog import CatalogError, Exercise
from labkit.files import write_atomic
from labkit.i18n import _

RECORD = "statements.json"  # in .labkit/: the sha256 of each statement copy labkit wrote


@dataclass
class Placed:
    """What `place` did: the copies written, and those kept because the student changed them."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def sources(exercise: Exercise) -> list[tuple[Path, str]]:
    """(the statement in the package, its name in the workspace): English first, then the Chinese twin."""
    pairs = [(exercise.folder / "README.md", f"{exercise.id}.md"),
             (exercise.folder / "README.zh-CN.md", f"{exercise.id}.zh-CN.md")]
    return [(src, name) for src, name in pairs if src.is_file()]


def place(exercise: Exercise, root: Path, state_dir: Path) -> Placed:
    """Copy the statements into `root`, never over a file the student wrote or edited."""
    record_file = state_dir / RECORD
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
        record = record if isinstance(record, dict) else {}
    except (OSError, ValueError):
        record = {}
    placed = Placed()
    for src, name in sources(exercise):
        data, dest = src.read_bytes(), root / name
        if dest.is_symlink() or (dest.exists() and not dest.is_file()):
            placed.kept.append(dest)
            continue
        if dest.exists():
            mine = _sha(dest.read_bytes())
            if mine not in (record.get(name), _sha(data)):  # not what labkit wrote: the student's own
                placed.kept.append(dest)
                continue
        write_atomic(dest, data)
        record[name] = _sha(data)
        placed.written.append(dest)
    write_atomic(record_file, json.dumps(record, indent=2))
    return placed


def text(exercise: Exercise, lang: str) -> str:
    """The statement in `lang` (zh_CN: the Chinese twin where there is one)."""
    found = dict((name, src) for src, name in sources(exercise))
    src = found.get(f"{exercise.id}.zh-CN.md") if lang == "zh_CN" else None
    src = src or found.get(f"{exercise.id}.md")
    if src is None:
        raise CatalogError(_("{exercise} has no statement").format(exercise=exercise.id))
    return src.read_text(encoding="utf-8")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
