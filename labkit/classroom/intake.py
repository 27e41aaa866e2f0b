"""Turn `labkit grade SUBMISSIONS` into one staged file per student: folders, files, zips, Canvas and Gradescope.

Only the file to grade is staged (staging/<stem>/<filename>), never anything importable beside it; every zip
goes through one extractor that refuses absolute paths, `..`, links, devices, duplicate members and zip bombs, with
one byte budget per student and one per batch however the zips nest. No two entries share a folder or a file name.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from labkit.classroom import safezip
from labkit.classroom.gradescope_export import parse_metadata
from labkit.classroom.ids import distinct, safe_id  # batch and `labkit grade` import safe_id from here
from labkit.classroom.safezip import Budget, Unusable, hidden_name

SHADOWING = {"conftest.py", "sitecustomize.py", "usercustomize.py", "torch.py"}
CANVAS = re.compile(r"^(?P<name>[a-z0-9]+)(_late)?_(?P<userid>\d+)_(?P<subid>\d+)_(?P<file>.+)$", re.IGNORECASE)
RESUBMITTED = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<ext>\.[^.]+)?$")  # Canvas: exercise2-1.py, exercise2-2.py


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


@dataclass
class _File:
    """A candidate file: the name it is chosen by, where it lies, and where it came from (for the report)."""

    name: str
    path: Path
    origin: str


@dataclass
class _Claim:
    """One source's claim to be a student's submission, before its file is chosen and staged."""

    student: str
    keys: set[str]  # its top-level names under the root, to pin refused members of a top-level zip on it
    source: str
    name: str = ""
    files: list[_File] = field(default_factory=list)
    error: str = ""


def collect(submissions: Path, staging: Path, *, filename: str, max_bytes: int = 1_000_000) -> list[Entry]:
    """One Entry per student found in `submissions`, sorted by student id; files are copied under `staging`."""
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
        counts = Counter(claim.student for claim in claims)
        for claim in claims:  # one student budget each: a student has one claim (two are an error, never unpacked)
            if not claim.error and counts[claim.student] == 1:
                _expand(claim, scratch, max_bytes, (safezip.student_budget(max_bytes), batch))
        return _stage(claims, staging, filename, max_bytes)
    except safezip.Exhausted as exc:
        raise IntakeError(f"{submissions} is refused, nothing was graded: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _claims(submissions: Path, scratch: Path, filename: str, max_bytes: int, batch: Budget) -> list[_Claim]:
    """Every claim in SUBMISSIONS; the refused members of a top-level zip are pinned on the claims they belong to."""
    if submissions.is_dir():
        return _layout(submissions, filename)
    suffix = submissions.suffix.lower()
    if submissions.is_file() and suffix == ".py":
        shown = _printable(submissions.name)
        return [_Claim(_printable(submissions.stem), {submissions.name}, shown,
                       files=[_File(submissions.name, submissions, shown)])]
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
        claims.append(_Claim(submissions.name, set(), submissions.name,
                             error=f"{len(stray)} zip member(s) refused: {'; '.join(stray)}"))
    return claims


def _layout(root: Path, filename: str) -> list[_Claim]:
    """Claims in a folder: a Gradescope export, a Canvas download, or one subfolder / .py / .zip per student."""
    items = _visible(root)
    if (root / "submission_metadata.yml").is_file():
        return _gradescope(root, items)
    files = [p for p in items if p.is_file() and p.suffix.lower() in (".py", ".zip")]
    if files and all(CANVAS.match(p.name) for p in files) and not any(p.is_dir() for p in items):
        return _canvas(files)
    claims = []
    for p in items:
        shown = _printable(p.name)
        if p.is_dir() and not p.is_symlink():
            error = "" if _valid(p.name) else f"the folder name {os.fsencode(p.name)!r} is not valid UTF-8: rename it"
            claims.append(_Claim(shown, {p.name}, shown + "/", files=_walk(p, shown + "/"), error=error))
        elif p.suffix.lower() in (".py", ".zip"):
            claims.append(_Claim(_printable(p.stem), {p.name}, shown, files=[_File(p.name, p, shown)]))
    return claims


def _canvas(files: list[Path]) -> list[_Claim]:
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
    claims: dict[tuple[str, str], _Claim] = {}
    for (userid, base), (_, found) in sorted(latest.items()):
        for m, p in found:
            claim = claims.setdefault((userid, m["subid"]), _Claim(userid, keys[userid], "", m["name"]))
            claim.files.append(_File(base, p, p.name))
            claim.source = ", ".join(f.origin for f in claim.files)
    return list(claims.values())


def _gradescope(root: Path, items: list[Path]) -> list[_Claim]:
    """Gradescope export: submission_metadata.yml names the submitters of each submission_NNN/ folder."""
    meta = parse_metadata((root / "submission_metadata.yml").read_text(encoding="utf-8", errors="replace"))
    folders = {p.name: p for p in items if p.is_dir() and not p.is_symlink()}  # never a path the YAML makes up
    claims = []
    for key, people in meta.items():
        folder = folders.get(key)
        files = _walk(folder, key + "/") if folder else []
        for person in people or [{}]:
            student = person.get("sid") or person.get("email") or ""
            error = "" if folder else f"{key}/ is missing from the export"
            error = error or ("" if student else "submission_metadata.yml gives no sid or email for it")
            claims.append(_Claim(student or key, {key}, key + "/", person.get("name", ""), list(files), error))
    for key in sorted(set(folders) - set(meta)):
        claims.append(_Claim(_printable(key), {key}, _printable(key) + "/",
                             error="this folder is not listed in submission_metadata.yml"))
    return claims


def _expand(claim: _Claim, scratch: Path, max_bytes: int, budgets: tuple[Budget, ...]) -> None:
    """Replace each .zip among a claim's files by its unpacked files (one level: zips in zips stay zips), in budget."""
    files: list[_File] = []
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
        files += _walk(dest, f.origin + "/")
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
    while len(items := _visible(root)) == 1 and items[0].is_dir() and not items[0].is_symlink():
        if (items[0] / filename).exists():
            break
        root = items[0]
        prefix.append(root.name)
    return root, prefix


def _walk(folder: Path, origin: str) -> list[_File]:
    """Every visible file under `folder` (links listed, never followed), stopping past safezip.MAX_MEMBERS."""
    found: list[_File] = []
    for here, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not hidden_name(d))
        for n in sorted(names):
            if not hidden_name(n):
                path = Path(here, n)
                found.append(_File(n, path, origin + _printable(path.relative_to(folder).as_posix())))
        if len(found) > safezip.MAX_MEMBERS:
            break
    return found


def _choose(files: list[_File], filename: str) -> tuple[_File | None, str]:
    """The one file to grade, or why there is none."""
    if len(files) > safezip.MAX_MEMBERS:
        return None, f"more than {safezip.MAX_MEMBERS:,} files in the submission"
    bad = [f for f in files if not _valid(f.name)]
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


def _stage(claims: list[_Claim], staging: Path, filename: str, max_bytes: int) -> list[Entry]:
    """Group claims by student; choose each one's file and copy it alone to staging/<stem>/<filename>."""
    by_student: dict[str, list[_Claim]] = {}
    for claim in claims:
        by_student.setdefault(claim.student, []).append(claim)
    renamed = distinct(list(by_student))  # the folder and the result file name: never shared, even ignoring case
    entries = []
    for student, group in by_student.items():
        first, (used, note) = group[0], renamed[student]
        if len(group) > 1:
            sources = ", ".join(c.source for c in group)
            error = f"{len(group)} submissions claim student {student}: {sources}"
            entries.append(Entry(used, None, first.name, error, sources, note, safe_id(used)))
            continue
        chosen, error = (None, first.error) if first.error else _choose(first.files, filename)
        dest = staging / safe_id(used) / filename
        if chosen:
            error = _copy_one(chosen, dest, max_bytes)
        entries.append(Entry(used, None if error else dest, first.name, error,
                             chosen.origin if chosen else first.source, note, safe_id(used)))
    return sorted(entries, key=lambda e: e.student)


def _copy_one(f: _File, dest: Path, max_bytes: int) -> str:
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


def _visible(folder: Path) -> list[Path]:
    """A folder's entries, sorted, without hidden ones."""
    return sorted(p for p in folder.iterdir() if not hidden_name(p.name))


def _valid(name: str) -> bool:
    """Whether a name from the disk is real UTF-8 (not bytes smuggled in as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """`text` with undecodable bytes shown as "?", safe to print and write into reports."""
    return text.encode("utf-8", "replace").decode("utf-8")
