"""Staging: choose each student's one file to grade, and copy it alone to staging/<stem>/<filename>.

A submission packed by `labkit submit` carries manifest.json naming its exercise: one for another exercise is that
student's error, never graded against the wrong checks.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from labkit.classroom import safezip
from labkit.classroom.claims import Claim, Entry, File, valid
from labkit.classroom.ids import distinct, safe_id

SHADOWING = {"conftest.py", "sitecustomize.py", "usercustomize.py", "torch.py"}
MANIFEST = "manifest.json"  # written by `labkit submit` (labkit.grading.attempt.hand_in)
MANIFEST_BYTES = 64_000  # a real one is a few hundred bytes


def stage(claims: list[Claim], staging: Path, filename: str, max_bytes: int, exercise: str = "") -> list[Entry]:
    """Group claims by student; choose each one's file and copy it alone to staging/<stem>/<filename>."""
    by_student: dict[str, list[Claim]] = {}
    for claim in claims:
        by_student.setdefault(claim.student, []).append(claim)
    renamed = distinct(list(by_student))  # the folder and the result file name: never shared, even ignoring case
    entries = []
    for student, group in by_student.items():
        first, (used, note) = group[0], renamed[student]
        if len(group) > 1:
            sources = ", ".join(c.source for c in group)
            error = f"{len(group)} submissions claim student {student}: {sources}"
            entries.append(Entry(used, None, first.name, error, sources, note, safe_id(used), first.late))
            continue
        error = first.error or (wrong_exercise(first.files, exercise) if exercise else "")
        chosen, error = (None, error) if error else choose(first.files, filename)
        dest = staging / safe_id(used) / filename
        if chosen:
            error = copy_one(chosen, dest, max_bytes)
        entries.append(Entry(used, None if error else dest, first.name, error,
                             chosen.origin if chosen else first.source, note, safe_id(used), first.late))
    return sorted(entries, key=lambda e: e.student)


def manifest_exercise(files: list[File]) -> str:
    """The exercise the submission's manifest.json (the shallowest) names, or '' when it has none that is usable."""
    found = sorted((f for f in files if f.name == MANIFEST), key=lambda f: (f.origin.count("/"), f.origin))
    for f in found[:1]:
        try:
            st = f.path.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_BYTES:
                return ""
            data = json.loads(f.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ""  # not labkit's manifest: a file of the student's that happens to share the name
        named = data.get("exercise") if isinstance(data, dict) else None
        return named.strip() if isinstance(named, str) else ""
    return ""


def wrong_exercise(files: list[File], exercise: str) -> str:
    """Why a submission packed for another exercise is not graded as `exercise`, or ''."""
    named = manifest_exercise(files)
    if not named or named.lower() == exercise.lower():
        return ""
    article = "an" if named[:1].lower() in "aeiou" else "a"
    return (f"this is {article} {named} submission (its {MANIFEST} says so), not {exercise}: "
            f"hand in `labkit submit {exercise}`")


def choose(files: list[File], filename: str) -> tuple[File | None, str]:
    """The one file to grade, or why there is none."""
    if len(files) > safezip.MAX_MEMBERS:
        return None, f"more than {safezip.MAX_MEMBERS:,} files in the submission"
    bad = [f for f in files if not valid(f.name)]
    if bad:
        return None, f"the file name {os.fsencode(bad[0].name)!r} is not valid UTF-8: rename it"
    exact = [f for f in files if f.name == filename]
    if len(exact) > 1:
        return None, f"{len(exact)} files named {filename}: submit exactly one"
    if exact:
        return exact[0], ""
    python = [f for f in files if f.name.lower().endswith(".py")]
    usable = [f for f in python if f.name not in SHADOWING]
    if len(usable) == 1:
        return usable[0], ""
    if not python:
        return None, "no Python file in the submission"
    if not usable:
        names = ", ".join(f.name for f in python)
        return None, f"no Python file to grade: {names} would shadow a module; name your file {filename}"
    return None, f"{len(python)} Python files and none named {filename}: submit exactly one"


def copy_one(f: File, dest: Path, max_bytes: int) -> str:
    """Copy the chosen file to `dest` if it is a non-empty regular file within the limit; else say why not."""
    try:
        st = f.path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return f"{f.origin} is a symbolic link: submit the file itself"
        if not stat.S_ISREG(st.st_mode):
            return f"{f.origin} is not a regular file"
        if st.st_size == 0:
            return f"empty file: {f.origin} has 0 bytes"
        if st.st_size > max_bytes:  # from the size alone: a huge file is never read
            return f"{f.origin} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit"
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(os.open(f.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as src:
            if safezip.copy_capped(src, dest, max_bytes) is None:
                return f"{f.origin} grew past the {max_bytes:,}-byte limit while it was copied"
    except OSError as exc:
        return f"{f.origin} cannot be read: {exc.strerror or exc}"
    return ""
