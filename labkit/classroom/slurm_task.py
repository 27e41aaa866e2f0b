"""One Slurm array task: `python -m labkit.classroom.slurm_task SPEC INDEX` grades chunk INDEX of SPEC's students.

One warm worker for the chunk, the same sandbox and the same `grade_entry` as a local batch; each Outcome is
written as labkit's JSON, atomically, to the shared results folder as soon as it exists. A student whose result
for this exact file and grading key is already there (an earlier try of this task) is not graded again.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from labkit.classroom.batch import Outcome, grade_entry, grading_key
from labkit.classroom.intake import Entry
from labkit.course.catalog import Exercise, load_exercise
from labkit.files import sha256_of, write_atomic
from labkit.text import json_text


def exercise_for(spec: dict) -> Exercise:
    """The grader's exercise folder where this node sees it, else the same exercise id from this install (an image)."""
    from labkit.course.course import resolve

    folder = Path(spec["folder"])
    return load_exercise(folder) if (folder / "exercise.toml").is_file() else resolve(spec["exercise"])


def done(path: Path, sha: str, key: str) -> bool:
    """A graded result for this file and key is already in place."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return data.get("status") == "graded" and data.get("sha256") == sha and data.get("key") == key


def grade_chunk(spec: dict, index: int) -> int:
    """Grade chunk `index`; return how many students were graded now."""
    from labkit.sandbox.errors import SandboxError
    from labkit.sandbox.modes import for_class
    from labkit.sandbox.worker import Worker

    exercise = exercise_for(spec)
    checks_dir = Path(spec["checks_dir"]) if spec["checks_dir"] else None
    results = Path(spec["results"])
    entries = [Entry(**{**e, "file": Path(e["file"])}) for e in spec["chunks"][index]]
    todo = [e for e in entries if not done(results / f"{e.stem}.json", sha256_of(e.file), spec["key"])]
    key = grading_key(exercise, checks_dir, spec["salt"])
    if key != spec["key"]:  # this node would judge with other checks, or another labkit, than the grader's
        why = ("this node grades with other checks or another labkit version than the grader's "
               f"(grading key {key!r}, grader's {spec['key']!r}): install the same labkit on the nodes")
        for e in todo:
            outcome = grade_entry(replace(e, file=None, error=why), exercise, None, checks_dir, spec["key"])
            outcome.sha256 = sha256_of(e.file)
            _write(results, outcome, e.stem)
        return 0
    try:
        mode = for_class(spec["sandbox"])  # as `labkit grade` does locally: never a silent `none` for a class
    except SandboxError as exc:
        for e in todo:
            outcome = grade_entry(replace(e, file=None, error=f"this node cannot sandbox it: {exc}"), exercise, None,
                                  checks_dir, key)
            outcome.sha256 = sha256_of(e.file)
            _write(results, outcome, e.stem)
        return 0
    print(f"labkit: task {index}: {len(todo)} of {len(entries)} student(s) to grade, sandbox {mode}", flush=True)
    with Worker(mode, preload=exercise.preload, huge_pages=True) as worker:
        for e in todo:
            outcome = grade_entry(e, exercise, worker, checks_dir, key, spec["salt"])
            _write(results, outcome, e.stem)
            # the stem only: ids are the students' text, and this log is read on terminals
            print(f"labkit: graded {e.stem}: {outcome.status} {outcome.score:g}/{outcome.max_score:g} "
                  f"in {outcome.seconds:.1f} s", flush=True)
    return len(todo)


def _write(results: Path, outcome: Outcome, stem: str) -> None:
    write_atomic(results / f"{stem}.json", json_text(asdict(outcome)), mode=0o600)


def main(argv: list[str] | None = None) -> int:
    """Entry point of an array task; the index defaults to $SLURM_ARRAY_TASK_ID."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or len(argv) > 2:
        print("usage: python -m labkit.classroom.slurm_task SPEC [INDEX]", file=sys.stderr)
        return 2
    index = int(argv[1] if len(argv) > 1 else os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    grade_chunk(spec, index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
