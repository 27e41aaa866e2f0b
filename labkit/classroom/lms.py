"""What learning-management systems download: Canvas's file names and Gradescope's submission export, as claims."""

from __future__ import annotations

import re
from pathlib import Path

from labkit.classroom.claims import Claim, File, printable, walk
from labkit.classroom.gradescope_export import parse_metadata

CANVAS = re.compile(r"^(?P<name>[a-z0-9]+)(?P<late>_late)?_(?P<userid>\d+)_(?P<subid>\d+)_(?P<file>.+)$",
                    re.IGNORECASE)
RESUBMITTED = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<ext>\.[^.]+)?$")  # Canvas: exercise2-1.py, exercise2-2.py
GRADESCOPE_METADATA = "submission_metadata.yml"


def is_canvas(files: list[Path]) -> bool:
    """Whether these files are a Canvas download (every one named name_[late_]userid_subid_file)."""
    return bool(files) and all(CANVAS.match(p.name) for p in files)


def canvas(files: list[Path]) -> list[Claim]:
    """Canvas: name_[LATE_]userid_subid_file; of `file`, `file-1`, `file-2` the highest is the latest resubmission."""
    latest: dict[tuple[str, str], tuple[int, list[tuple[re.Match[str], Path]]]] = {}  # (userid, file): newest
    keys: dict[str, set[str]] = {}
    for p in files:
        if not (m := CANVAS.match(p.name)):
            continue
        r = RESUBMITTED.match(m["file"])
        base, n = (r["stem"] + (r["ext"] or ""), int(r["n"])) if r else (m["file"], 0)
        keys.setdefault(m["userid"], set()).add(p.name)
        newest = latest.setdefault((m["userid"], base), (n, []))
        if n > newest[0]:
            latest[m["userid"], base] = newest = (n, [])
        if n == newest[0]:  # a tie (same name in two submissions) keeps both: the student gets a clear error
            newest[1].append((m, p))
    # The files of one submission (one subid) make one claim; two subids for one user make two claims (an error).
    claims: dict[tuple[str, str], Claim] = {}
    for (userid, base), (_, found) in sorted(latest.items()):
        for m, p in found:
            claim = claims.setdefault((userid, m["subid"]), Claim(userid, keys[userid], "", m["name"]))
            claim.files.append(File(base, p, p.name))
            claim.source = ", ".join(f.origin for f in claim.files)
            claim.late = claim.late or bool(m["late"])  # Canvas marks every file of a late submission
    return list(claims.values())


def gradescope(root: Path, items: list[Path]) -> list[Claim]:
    """Gradescope export: submission_metadata.yml names the submitters of each submission_NNN/ folder."""
    meta = parse_metadata((root / GRADESCOPE_METADATA).read_text(encoding="utf-8", errors="replace"))
    folders = {p.name: p for p in items if p.is_dir() and not p.is_symlink()}  # never a path the YAML makes up
    claims = []
    for key, people in meta.items():
        folder = folders.get(key)
        files = walk(folder, key + "/") if folder else []
        for person in people or [{}]:
            student = person.get("sid") or person.get("email") or ""
            error = "" if folder else f"{key}/ is missing from the export"
            error = error or ("" if student else f"{GRADESCOPE_METADATA} gives no sid or email for it")
            claims.append(Claim(student or key, {key}, key + "/", person.get("name", ""), list(files), error))
    for key in sorted(set(folders) - set(meta)):
        claims.append(Claim(printable(key), {key}, printable(key) + "/",
                            error=f"this folder is not listed in {GRADESCOPE_METADATA}"))
    return claims
