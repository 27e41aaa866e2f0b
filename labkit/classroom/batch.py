"""`labkit grade`: a whole class, in parallel, resumable, with one result file per student and class-wide summaries.

Every result is written atomically as soon as it exists, so a batch killed half-way
loses nothing: a rerun reuses each result whose file (sha256), exercise and checks
are unchanged, and grades only the rest (and the students named to be regraded).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import queue
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labkit.classroom.intake import Entry, safe_id
from labkit.course.catalog import Exercise
from labkit.files import sha256_of, write_atomic
from labkit.text import block, csv_cell, json_text

RESULTS = "students"  # one JSON per student
FEEDBACK = "feedback"  # what each student may see (hidden checks withheld)
SALT = ".salt"  # the class's secret salt (see class_salt)


@dataclass
class Outcome:
    """One student's result: graded (with a report) or not (with the reason)."""

    student: str
    name: str
    status: str  # graded | error | missing
    score: float = 0.0
    max_score: float = 0.0
    error: str = ""
    source: str = ""
    sha256: str = ""
    key: str = ""  # what the result depends on besides the file: a rerun reuses it only when equal
    seconds: float = 0.0
    checks: dict[str, dict] = field(default_factory=dict)  # name -> {status, points, max_points}
    report: dict | None = None  # Report.to_dict() for graded students
    late: bool = False  # the LMS marked the submission late (a default: result files of older runs still load)


@dataclass
class Progress:
    """Where the batch stands, for a progress bar."""

    done: int
    total: int
    reused: int
    last: Outcome
    elapsed: float

    @property
    def eta(self) -> float:
        """Seconds left at the pace of the submissions graded in this run (reused ones cost nothing)."""
        fresh = self.done - self.reused
        left = self.total - self.done
        return self.elapsed / fresh * left if fresh else 0.0


def class_salt(out: Path) -> str:
    """The class's secret salt, mixed into every seed: made once in OUT (mode 0600), so a rerun or a regrade
    reproduces the verdicts while no submission can compute its checks' inputs ahead of time."""
    path = out / SALT
    out.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    salt = secrets.token_hex(16)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(salt + "\n")
    return salt


def grading_key(exercise: Exercise, checks_dir: Path | None, salt: str = "") -> str:
    """What else a verdict depends on: the exercise, its checks file, the instructor's checks and the salt."""
    from labkit import __version__

    parts = [exercise.id, __version__, sha256_of(exercise.checks_file)]
    if salt:
        parts.append("salt:" + hashlib.sha256(salt.encode()).hexdigest()[:12])
    folder = Path(checks_dir) / exercise.id if checks_dir else None
    if folder and folder.is_dir():
        parts += [f"{p.name}:{sha256_of(p)}" for p in sorted(folder.iterdir()) if p.is_file()]
    return "|".join(parts)


def previous(out: Path, entry: Entry, sha: str, key: str) -> Outcome | None:
    """The result a killed or earlier run left for this exact file and grading key, if any."""
    path = out / RESULTS / f"{safe_id(entry.student)}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        outcome = Outcome(**data)
    except (OSError, ValueError, TypeError):
        return None
    if outcome.status != "graded" or outcome.sha256 != sha or outcome.key != key:
        return None
    outcome.late = entry.late  # the LMS's mark, as this download says (a result of an older labkit had none)
    return outcome


def grade_entry(entry: Entry, exercise: Exercise, worker: object, checks_dir: Path | None, key: str,
                salt: str = "") -> Outcome:
    """Grade one student's staged file alone in a fresh temporary folder; never raises."""
    from labkit.grading.attempt import attempt
    from labkit.grading.report import student_view, terminal

    base = Outcome(entry.student, entry.name, "error", error=entry.error, source=entry.source,
                   max_score=exercise.points, key=key, late=entry.late)
    if entry.file is None:
        return base
    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="labkit-grade-"))
    try:
        path = folder / exercise.filename
        shutil.copyfile(entry.file, path)  # only the allowed file: no conftest.py, no torch.py beside it
        report = attempt(exercise, path, worker=worker, checks_dir=checks_dir, salt=salt)
    except Exception as exc:  # noqa: BLE001  (a grader failure on one student must not stop the class)
        base.error = f"the grader could not grade this file: {type(exc).__name__}: {exc}"
        base.sha256 = sha256_of(entry.file)
        return base
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    checks = {r.name: {"status": r.status, "points": r.points, "max_points": r.max_points} for r in report.results}
    outcome = Outcome(entry.student, entry.name, "graded", report.score, report.max_score, source=entry.source,
                      sha256=report.sha256, key=key, seconds=time.monotonic() - started, checks=checks,
                      report=report.to_dict(), late=entry.late)
    outcome.report["feedback"] = terminal(student_view(report))
    return outcome


def run_batch(entries: list[Entry], exercise: Exercise, out: Path, *, jobs: int = 1, checks_dir: Path | None = None,
              sandbox: str = "auto", on_progress: Callable[[Progress], None] | None = None,
              regrade: frozenset[str] = frozenset(),
              on_resume: Callable[[int, int], None] | None = None, executor: object | None = None) -> list[Outcome]:
    """Grade every entry with `jobs` workers in parallel; write each result as it comes; return them all.

    A result an earlier run left for the same file and key is reused, except for the students in `regrade`;
    `on_resume(reused, to_grade)` is told the split before grading starts.
    """
    from labkit.sandbox.worker import Worker

    salt = class_salt(out)
    key = grading_key(exercise, checks_dir, salt)
    for folder in (out / RESULTS, out / FEEDBACK):  # half-written files of a killed run: never read, so remove
        for stale in folder.glob(".*") if folder.is_dir() else ():
            stale.unlink(missing_ok=True)
    outcomes: list[Outcome] = []
    todo: queue.Queue[Entry] = queue.Queue()
    reused = 0
    for entry in entries:
        old = previous(out, entry, sha256_of(entry.file), key) if entry.file and entry.student not in regrade else None
        if old is not None:
            outcomes.append(old)
            reused += 1
        else:
            todo.put(entry)
    if on_resume:  # entries without a file become their error at once: nothing to grade there
        on_resume(reused, sum(1 for e in list(todo.queue) if e.file))
    lock, started = threading.Lock(), time.monotonic()

    def finish(outcome: Outcome) -> None:
        save(out, outcome)
        with lock:
            outcomes.append(outcome)
            if on_progress:
                on_progress(Progress(len(outcomes), len(entries), reused, outcome, time.monotonic() - started))

    if executor is not None:  # graded elsewhere (classroom.slurm): the same resume keys, results and `finish`
        executor.run(list(todo.queue), exercise, out, checks_dir=checks_dir, sandbox=sandbox, key=key, salt=salt,
                     finish=finish)
        return sorted(outcomes, key=lambda o: o.student)
    stop = threading.Event()  # set when the batch is interrupted: no thread takes another student

    def work() -> None:
        # one warm worker per job: torch imported once, huge pages to make its many forks cheaper
        with Worker(sandbox, preload=exercise.preload, huge_pages=True) as worker:
            while not stop.is_set():
                try:
                    entry = todo.get_nowait()
                except queue.Empty:
                    return
                outcome = grade_entry(entry, exercise, worker, checks_dir, key, salt)
                if not stop.is_set():  # a student graded while the batch stops may have lost its staged file
                    finish(outcome)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(max(1, min(jobs, todo.qsize())))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except BaseException:  # Ctrl-C, SIGTERM: the workers unwind, nothing more is written
        stop.set()
        raise
    return sorted(outcomes, key=lambda o: o.student)


def save(out: Path, outcome: Outcome) -> None:
    """The student's full result (for instructors) and their feedback (hidden checks withheld)."""
    stem = safe_id(outcome.student)
    write_atomic(out / RESULTS / f"{stem}.json", json_text(asdict(outcome)))
    text = outcome.report["feedback"] if outcome.report else f"Not graded: {outcome.error}"
    write_atomic(out / FEEDBACK / f"{stem}.txt", block(text) + "\n")  # students read it in terminals too


def with_roster(outcomes: list[Outcome], roster: dict[str, str], exercise: Exercise) -> list[Outcome]:
    """Names from the roster, and a `missing` row for every rostered student with no submission."""
    seen = {o.student for o in outcomes}
    for o in outcomes:
        o.name = roster.get(o.student, o.name)
    missing = [Outcome(s, roster[s], "missing", max_score=exercise.points, error="no submission")
               for s in sorted(set(roster) - seen)]
    return sorted(outcomes + missing, key=lambda o: o.student)


def not_on_roster(outcomes: list[Outcome], roster: dict[str, str]) -> list[str]:
    """Ids that handed something in but are not on the roster (a typo in an id, a student who switched class)."""
    return sorted(o.student for o in outcomes if o.status != "missing" and o.student not in roster) if roster else []


def check_names(outcomes: list[Outcome]) -> list[str]:
    """Every check seen in the class, in the order the reports list them."""
    names: list[str] = []
    for o in outcomes:
        names += [n for n in o.checks if n not in names]
    return names


def grades_csv(outcomes: list[Outcome]) -> str:
    """student, name, status, score, max_score, error, late, then points per check; no text cell is a live formula."""
    names = check_names(outcomes)
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ("student", "name", "status", "score", "max_score", "error", "late", *names)
    writer.writerow([csv_cell(c) for c in header])
    for o in outcomes:
        points = [o.checks[n]["points"] if n in o.checks else "" for n in names]
        # ids, names and errors come from students (folder names, Gradescope metadata): defused; scores stay numbers
        row = (o.student, o.name, o.status, o.score, o.max_score, o.error, "yes" if o.late else "", *points)
        writer.writerow([csv_cell(c) for c in row])
    return buf.getvalue()


def pass_rates(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """check -> (passed, counted) over graded students: which concept did the class miss?"""
    rates: dict[str, tuple[int, int]] = {}
    for name in check_names(outcomes):
        counted = [o.checks[name]["status"] for o in outcomes
                   if name in o.checks and o.checks[name]["status"] in ("passed", "failed", "error")]
        rates[name] = (counted.count("passed"), len(counted))
    return rates
