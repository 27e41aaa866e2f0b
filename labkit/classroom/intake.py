"""Turn `labkit grade SUBMISSIONS` into one staged file per student: folders, files, zips, Canvas and Gradescope.

Only the file to grade is staged (staging/<stem>/<filename>), never anything importable beside it; every zip
goes through one extractor that refuses absolute paths, `..`, links, devices, duplicate members and zip bombs, with
one byte budget per student and one per batch however the zips nest. No two entries share a folder or a file name.
LMS layouts live in lms.py, choosing and copying each student's file in staging.py.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from labkit.classroom import lms, safezip
from labkit.classroom.claims import Claim, Entry, File, IntakeError, printable, valid, visible, walk
from labkit.classroom.gradescope_export import MetadataError
from labkit.classroom.ids import safe_id
from labkit.classroom.safezip import Budget, Unusable
from labkit.classroom.staging import stage

__all__ = ["Entry", "IntakeError", "collect", "safe_id"]  # batch, roster and `labkit grade` import them from here


def collect(submissions: Path, staging: Path, *, filename: str, max_bytes: int = 1_000_000,
            exercise: str = "") -> list[Entry]:
    """One Entry per student found in `submissions`, sorted by student id; files are copied under `staging`.

    With `exercise`, a submission whose manifest.json (from `labkit submit`) names another exercise is an error.
    """
    submissions, staging = Path(submissions), Path(staging)
    if not submissions.exists():
        raise IntakeError(f"{submissions} does not exist")
    staging.mkdir(parents=True, exist_ok=True)
    # Zips unpack into a hidden scratch folder: safe_id() never starts with ".", so no student folder collides.
    scratch = Path(tempfile.mkdtemp(prefix=".unpacked-", dir=staging))
    batch = safezip.batch_budget(max_bytes)  # every zip of the batch, nested or not, draws on this one
    try:
        try:
            claims = _claims(submissions, scratch, filename, max_bytes, batch)
        except OSError as exc:  # an unreadable folder or metadata file: nothing can be collected
            raise IntakeError(f"{submissions} cannot be read: {exc}")
        except MetadataError as exc:
            raise IntakeError(f"{submissions}: {exc}")
        counts = Counter(claim.student for claim in claims)
        for claim in claims:  # one student budget each: a student has one claim (two are an error, never unpacked)
            if not claim.error and counts[claim.student] == 1:
                _expand(claim, scratch, max_bytes, (safezip.student_budget(max_bytes), batch))
        return stage(claims, staging, filename, max_bytes, exercise)
    except safezip.Exhausted as exc:
        raise IntakeError(f"{submissions} is refused, nothing was graded: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _claims(submissions: Path, scratch: Path, filename: str, max_bytes: int, batch: Budget) -> list[Claim]:
    """Every claim in SUBMISSIONS; the refused members of a top-level zip are pinned on the claims they belong to."""
    if submissions.is_dir():
        return _layout(submissions, filename)
    suffix = submissions.suffix.lower()
    if submissions.is_file() and suffix == ".py":
        shown = printable(submissions.name)
        return [Claim(printable(submissions.stem), {submissions.name}, shown,
                      files=[File(submissions.name, submissions, shown)])]
    if not (submissions.is_file() and suffix == ".zip"):
        raise IntakeError(f"{submissions} is not a folder, a .py file or a .zip file")
    try:
        refused = safezip.extract(submissions, scratch / "top", max_bytes, (batch,))
    except Unusable as exc:
        raise IntakeError(f"{submissions} {exc}")
    root, prefix = _unwrap(scratch / "top", filename)
    claims = _layout(root, filename)
    stray = []
    for member, why in refused:
        key = _key(member, prefix)
        owners = [c for c in claims if key in c.keys]
        for claim in owners:
            claim.error = claim.error or f"zip member {member!r} refused: {why}"
        if not owners:
            stray.append(f"{member!r}: {why}")
    if stray:  # members that belong to no student: the whole zip gets an entry, so the instructor sees them
        claims.append(Claim(submissions.name, set(), submissions.name,
                            error=f"{len(stray)} zip member(s) refused: {'; '.join(stray)}"))
    return claims


def _layout(root: Path, filename: str) -> list[Claim]:
    """Claims in a folder: a Gradescope export, a Canvas download, or one subfolder / .py / .zip per student."""
    items = visible(root)
    if (root / lms.GRADESCOPE_METADATA).is_file():
        return lms.gradescope(root, items)
    files = [p for p in items if p.is_file() and p.suffix.lower() in (".py", ".zip")]
    if lms.is_canvas(files) and not any(p.is_dir() for p in items):
        return lms.canvas(files)
    claims = []
    for p in items:
        shown = printable(p.name)
        if p.is_dir() and not p.is_symlink():
            error = "" if valid(p.name) else f"the folder name {os.fsencode(p.name)!r} is not valid UTF-8: rename it"
            claims.append(Claim(shown, {p.name}, shown + "/", files=walk(p, shown + "/"), error=error))
        elif p.suffix.lower() in (".py", ".zip"):
            claims.append(Claim(printable(p.stem), {p.name}, shown, files=[File(p.name, p, shown)]))
    return claims


def _expand(claim: Claim, scratch: Path, max_bytes: int, budgets: tuple[Budget, ...]) -> None:
    """Replace each .zip among a claim's files by its unpacked files (one level: zips in zips stay zips), in budget."""
    files: list[File] = []
    for f in claim.files:
        if not f.name.lower().endswith(".zip"):
            files.append(f)
            continue
        dest = Path(tempfile.mkdtemp(dir=scratch))
        try:
            refused = safezip.extract(f.path, dest, max_bytes, budgets)
        except Unusable as exc:
            claim.error = f"{f.origin} {exc}"
            return
        except safezip.Exhausted as exc:
            raise safezip.Exhausted(f"{exc} (it ran out at {f.origin})") from None
        if refused:
            claim.error = f"{f.origin}: " + "; ".join(f"member {m!r} refused: {why}" for m, why in refused)
            return
        files += walk(dest, f.origin + "/")
    claim.files = files


def _key(member: str, prefix: list[str]) -> str | None:
    """The top-level name under the root that a (possibly refused) member belongs to, if any."""
    parts = member.replace("\\", "/").split("/")
    if parts[: len(prefix)] != prefix or len(parts) <= len(prefix):
        return None
    head = parts[len(prefix)]
    return None if head in ("", ".", "..") or re.match(r"^[A-Za-z]:$", head) else head


def _unwrap(top: Path, filename: str) -> tuple[Path, list[str]]:
    """Step into a lone top-level folder (a zipped `submissions/` folder) unless it holds `filename` itself."""
    root, prefix = top, []
    while len(items := visible(root)) == 1 and items[0].is_dir() and not items[0].is_symlink():
        if (items[0] / filename).exists():
            break
        root = items[0]
        prefix.append(root.name)
    return root, prefix
