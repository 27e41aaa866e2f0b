"""Student ids as file names: `safe_id` (one id) and `distinct` (a whole batch, no two sharing a folder or a file)."""

from __future__ import annotations

import hashlib
import re

# Lower case only, so that no two passed-through ids are one file on a case-insensitive disk (macOS, Windows);
# never starts with "." (the scratch folder is hidden).
_PLAIN = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,79}")
# The tail of every hashed name: an id shaped like one is hashed too, so a look-alike id never equals another's name.
_HASHED = re.compile(r"-[0-9a-f]{10}$", re.IGNORECASE)


def safe_id(student: str) -> str:
    """A file-name-safe form of an id: plain lower-case ids as they are, others cleaned plus `-<sha256[:10]>`."""
    if _PLAIN.fullmatch(student) and not _HASHED.search(student):
        return student
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", student)[:60].lstrip(".") or "id"
    return f"{cleaned}-{_digest(student)}"


def distinct(students: list[str]) -> dict[str, tuple[str, str]]:
    """{id: (id to use, note)}: ids whose safe names still clash (ignoring case) are all renamed `id~N`, and told.

    safe_id alone leaves only a forged 40-bit hash collision; every member of such a group is renamed (none keeps
    the name, so sorting first wins nothing), in sorted order, until no two names are one file on any disk.
    """
    groups: dict[str, list[str]] = {}
    for student in sorted(set(students)):
        groups.setdefault(_key(student), []).append(student)
    ids, names = set(students), set(groups)
    chosen: dict[str, tuple[str, str]] = {}
    for group in groups.values():  # filled in sorted order: deterministic
        if len(group) == 1:
            chosen[group[0]] = (group[0], "")
            continue
        for student in group:
            n = 1
            while f"{student}~{n}" in ids or _key(f"{student}~{n}") in names:
                n += 1
            renamed = f"{student}~{n}"
            ids.add(renamed)
            names.add(_key(renamed))
            others = ", ".join(repr(s) for s in group if s != student)
            chosen[student] = (renamed, f"student id {student!r} has the same file name ({safe_id(student)}) as "
                                        f"{others}: graded as {renamed!r}")
    return chosen


def _key(student: str) -> str:
    """The file name as a case-insensitive disk sees it."""
    return safe_id(student).casefold()


def _digest(student: str) -> str:
    """40 bits of the id's sha256: readable names; a forged collision is caught by `distinct`."""
    return hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:10]
