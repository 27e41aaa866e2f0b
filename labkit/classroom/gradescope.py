"""Gradescope: build an autograder zip for some exercises, and grade one submission inside Gradescope's image."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.course.catalog import CatalogError, Exercise
from labkit.course.course import resolve
from labkit.course.visibility import read_visibility
from labkit.files import write_atomic, zip_entry
from labkit.paths import IMPORT_ROOT, installed_exercises, source_root

SOURCE_FILES = ("pyproject.toml", "constraints.txt", "README.md", "LICENSE")  # beside the package, the exercises
SOURCE_DIRS = ("labkit", "exercises")  # never solutions/ or tests/: students' code runs where these lie
SALT = "salt"  # in the zip beside setup.sh: mixed into every seed, so a submission cannot replay its checks
SKIPPED_PARTS = {"__pycache__", "solutions", "tests", ".git", ".venv"}

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder's image (Ubuntu), with the network on.
set -euo pipefail
SRC="$(cd "$(dirname "${{BASH_SOURCE[0]}}")" && pwd)"  # /autograder/source: this zip, unpacked

# `{python} -m venv` needs ensurepip, which Ubuntu ships apart (python3-venv); install it only when missing.
if ! command -v {python} >/dev/null || ! {python} -c "import ensurepip, venv" 2>/dev/null; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
fi

# labkit needs Python 3.11 or newer: say so now rather than failing on the first submission.
{python} -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {{
    echo "labkit needs Python >= 3.11; choose Gradescope's Ubuntu 24.04 base image" >&2; exit 1; }}

# A venv of its own: the image's Python stays untouched (and Ubuntu 24.04 refuses pip into it, PEP 668).
{python} -m venv /opt/labkit

# labkit with torch pinned by the course's constraints, so Gradescope grades with the students' versions.
# Gradescope has no GPU: the CPU wheels of torch are a fraction of the size of the CUDA ones.
/opt/labkit/bin/pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu \\
    -c "$SRC/labkit/constraints.txt" "$SRC/labkit"

# Fail the image build, not every submission, when labkit or torch cannot start.
/opt/labkit/bin/labkit gradescope --help >/dev/null
/opt/labkit/bin/python -c "import torch"
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this once per submission (in /autograder/submission); it must leave results/results.json.
# AUTOGRADER_ROOT and LABKIT may be overridden to try it on a copy of that tree.
set -uo pipefail
AUTOGRADER_ROOT="${{AUTOGRADER_ROOT:-{root}}}"
LABKIT="${{LABKIT:-/opt/labkit/bin/labkit}}"
RESULTS="$AUTOGRADER_ROOT/results/results.json"
mkdir -p "$AUTOGRADER_ROOT/results"

"$LABKIT" gradescope run {exercises} --root "$AUTOGRADER_ROOT"{checks}
status=$?

# labkit writes results.json even when grading fails; this covers labkit itself not starting.
if [ ! -s "$RESULTS" ]; then
    printf '{{"score": 0, "output": "the autograder itself failed: labkit exited with status %s and wrote no '\\
'results; please tell your instructor", "tests": []}}\\n' "$status" > "$RESULTS"
fi
exit 0
"""


@dataclass
class Found:
    """Where one exercise's file is in a submission, or why it is not there."""

    exercise: Exercise
    path: Path | None
    note: str = ""  # shown in the results' output: which file was graded, or which was expected


def repo_root() -> Path:
    """The labkit source tree (a checkout) the zip is built from; a wheel install has none."""
    root = source_root()
    if root is None:
        raise CatalogError(f"no labkit source tree at {IMPORT_ROOT} (pyproject.toml and exercises/ are missing): "
                           "build the Gradescope autograder from a checkout of the course repository")
    return root


def _source_files(root: Path) -> Iterator[tuple[Path, str]]:
    """(file, name in the zip) for the labkit source the image installs."""
    for name in SOURCE_FILES:
        if (root / name).is_file():
            yield root / name, f"labkit/{name}"
    for folder in SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not path.is_symlink() and not SKIPPED_PARTS & set(rel.parts[:-1]) \
                    and path.suffix != ".pyc":
                yield path, f"labkit/{rel.as_posix()}"


def build(exercise_ids: list[str], out_zip: Path, *, checks_dir: Path | None = None, root: str = "/autograder",
          python: str = "python3") -> Path:
    """Write Gradescope's autograder zip for `exercise_ids` (with the instructor's hidden checks, when given)."""
    if not exercise_ids:
        raise CatalogError("name at least one exercise to grade")
    exercises = list({ex.id: ex for ex in map(resolve, exercise_ids)}.values())
    source = repo_root()
    hidden: list[tuple[Path, str]] = []
    if checks_dir is not None:
        checks_dir = Path(checks_dir)
        if not checks_dir.is_dir():
            raise CatalogError(f"checks directory {checks_dir} does not exist")
        for ex in exercises:
            folder = checks_dir / ex.id
            if folder.is_dir():
                read_visibility(folder / "visibility.toml")  # a broken file fails here, not on every submission
                hidden += [(p, f"hidden/{p.relative_to(checks_dir).as_posix()}") for p in sorted(folder.rglob("*"))
                           if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
        if not hidden:
            raise CatalogError(f"{checks_dir} has no folder for {', '.join(ex.id for ex in exercises)}: "
                               "hidden checks live in DIR/<exercise>/checks.py")
    checks = ' --checks-dir "$AUTOGRADER_ROOT/source/hidden"' if hidden else ""
    script = RUN_AUTOGRADER.format(root=root, exercises=" ".join(shlex.quote(ex.id) for ex in exercises),
                                   checks=checks)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w") as zf:
        zip_entry(zf, "setup.sh", SETUP_SH.format(python=python).encode(), 0o755)
        zip_entry(zf, "run_autograder", script.encode(), 0o755)
        zip_entry(zf, SALT, secrets.token_hex(16).encode(), 0o600)  # the seeds' secret: one per autograder build
        for path, name in [*_source_files(source), *hidden]:
            zip_entry(zf, name, path.read_bytes())
    return out_zip


def _python_files(folder: Path) -> list[Path]:
    """Every .py file under `folder`, never following a symbolic link (to a file or a folder)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk does not descend into linked folders
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith(".py") and not path.is_symlink() and path.is_file():
                found.append(path)
    return found


def find_submission(exercise: Exercise, submission: Path, alone: bool = True) -> Found:
    """The student's file for `exercise`: its exact name anywhere (the shallowest), else the only .py file."""
    files = _python_files(submission) if submission.is_dir() else []
    exact = sorted((p for p in files if p.name == exercise.filename),
                   key=lambda p: (len(p.relative_to(submission).parts), str(p)))
    if exact:
        rel = exact[0].relative_to(submission)
        more = f" (of {len(exact)} files named {exercise.filename}, the one nearest the top)" if len(exact) > 1 else ""
        return Found(exercise, exact[0], f"{exercise.id}: graded {rel}{more}")
    if alone and len(files) == 1:
        rel = files[0].relative_to(submission)
        return Found(exercise, files[0], f"{exercise.id}: no file named {exercise.filename}; graded {rel}, the "
                     "submission's only Python file")
    names = ", ".join(str(p.relative_to(submission)) for p in files[:10]) or "no Python file"
    return Found(exercise, None, f"{exercise.id}: expected a file named {exercise.filename} in your submission; "
                 f"found {names}")


def missing_test(found: Found) -> dict[str, Any]:
    """The results.json test that says an exercise's file was not submitted."""
    ex = found.exercise
    return {"name": f"{ex.id}: {ex.filename} submitted", "score": 0, "max_score": ex.points, "status": "failed",
            "output": found.note + f"\nsubmit your file named exactly {ex.filename}", "visibility": "visible"}


def failure_results(message: str, seconds: float = 0.0) -> dict[str, Any]:
    """Results for when the grader itself broke: Gradescope still gets a valid file, and the student a reason."""
    return {"score": 0, "execution_time": round(seconds, 2),
            "output": f"the autograder itself failed: {message}\nThis is not your code's fault; please tell your "
                      "instructor.", "tests": []}


def write_results(results: dict[str, Any], path: Path) -> None:
    """Write results.json atomically."""
    write_atomic(path, json.dumps(results, indent=2, ensure_ascii=False))


def read_salt(path: Path) -> str:
    """The autograder's secret salt (its zip carries one; a rebuilt zip draws a new one), or '' where there is none."""
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _grade_all(exercise_ids: list[str], root: Path, checks_dir: Path | None, worker: Any) -> dict[str, Any]:
    """Grade each exercise's file, each copied alone into a fresh folder, with one shared worker."""
    from labkit.grading.attempt import attempt
    from labkit.grading.report import to_gradescope
    from labkit.sandbox.modes import for_autograder
    from labkit.sandbox.worker import Worker

    salt = read_salt(root / "source" / SALT)

    exercises = list({ex.id: ex for ex in map(resolve, exercise_ids)}.values())
    found = [find_submission(ex, root / "submission", alone=len(exercises) == 1) for ex in exercises]
    reports = []
    with ExitStack() as stack:
        if worker is None and any(f.path for f in found):
            worker = stack.enter_context(Worker(for_autograder(), preload={m for ex in exercises for m in ex.preload}))
        for f in found:
            if f.path is None:
                continue
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="labkit-gradescope-")))
            copy = folder / f.exercise.filename  # alone: a conftest.py or torch.py beside it is never importable
            shutil.copyfile(f.path, copy)
            reports.append(attempt(f.exercise, copy, worker=worker, checks_dir=checks_dir, salt=salt))
    results = to_gradescope(reports)
    most = results["extra_data"]["max_score"]
    results["tests"] += [missing_test(f) for f in found if f.path is None]
    most += sum(f.exercise.points for f in found if f.path is None)
    results["output"] = "\n".join(filter(None, [*(f.note for f in found), results["output"]]))
    results["extra_data"] = {"max_score": most, "exercises": [ex.id for ex in exercises]}
    return results


def private(*folders: Path) -> None:
    """As root (Gradescope runs us so), make the checks (the course's and every installed copy), the salt and the
    results unreadable to the worker's user."""
    if os.geteuid() != 0:
        return
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)
        except OSError:
            pass


def run(exercise_ids: list[str], root: Path, *, checks_dir: Path | None = None, worker: Any = None) -> dict:
    """Grade a Gradescope submission under `root` and write root/results/results.json; never leave it missing."""
    start = time.monotonic()
    root = Path(root)
    path = root / "results" / "results.json"
    private(root / "source", root / "results", *installed_exercises())  # no checks file the worker could replay
    try:  # first a placeholder: if the grader is killed (Gradescope's time limit), the student still learns why
        write_results(failure_results("it was stopped before it finished (the time limit?)"), path)
    except OSError as exc:
        print(f"labkit: cannot write {path}: {exc}", file=sys.stderr)
    try:
        results = _grade_all(exercise_ids, root, checks_dir, worker)
    except Exception as exc:  # anything at all: Gradescope must get a valid results.json
        traceback.print_exc()  # into Gradescope's stdout, which instructors see
        results = failure_results(f"{type(exc).__name__}: {exc}")
    results["execution_time"] = round(time.monotonic() - start, 2)
    write_results(results, path)
    return results
