"""Grades one student file against one exercise's checks and returns a Report."""

from __future__ import annotations

import hashlib
import random
import shutil
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from labkit.catalog import CatalogError, Exercise
from labkit.checks import CheckFailed, CheckSpec, Inconclusive, Skip, collect
from labkit.course import current_course
from labkit.failures import import_message, student_error_message, syntax_error
from labkit.hidden import apply as add_instructor_checks
from labkit.i18n import _, language
from labkit.runner import ChildGone, ImportFailed, Limits, Session, StudentError, Worker, WorkerFailed
from labkit.worker import import_path

STATUSES = ("passed", "failed", "error", "skipped", "inconclusive")


@dataclass
class CheckResult:
    """The verdict of one check."""

    name: str
    title: str
    status: str  # one of STATUSES
    points: float  # earned
    max_points: float
    message: str = ""  # why it failed, errored or was skipped
    hint: str | None = None  # shown on failure
    output: str = ""  # what the student's code printed during the check (capped)
    seconds: float = 0.0
    hidden: bool = False

    @property
    def counted(self) -> bool:
        """Skipped and inconclusive checks count neither for nor against the score."""
        return self.status in ("passed", "failed", "error")


@dataclass
class Report:
    """Every check's verdict for one file, with what is needed to reproduce it."""

    exercise: str
    title: str
    file: str
    sha256: str
    seed: int
    sandbox: str
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: dict = field(default_factory=dict)
    data: str | None = None  # which data the checks trained on, when they train
    only: list[str] = field(default_factory=list)  # when set, the only checks that ran (the score is partial)
    reveal_hidden: bool = False  # the instructor lets students see hidden checks' names and messages
    withheld: int = 0  # in a student's view: how many hidden checks were left out

    @property
    def score(self) -> float:
        return sum(r.points for r in self.results if r.counted)

    @property
    def max_score(self) -> float:
        return sum(r.max_points for r in self.results if r.counted)

    @property
    def ok(self) -> bool:
        """True when nothing failed or errored (what `labkit check` exits 0 on)."""
        return all(r.status not in ("failed", "error") for r in self.results)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(score=self.score, max_score=self.max_score, ok=self.ok)
        return data


class Submission:
    """What a check sees: `call` and `probe` in the child, seeded randomness, a scratch folder."""

    def __init__(self, session: Session, seed: int, workdir: Path, gpus: int, timeout: float | None):
        self._session, self.seed, self.workdir, self.gpus = session, seed, workdir, gpus
        self.rng = random.Random(seed)
        self._timeout = timeout
        self.notes: list[str] = []  # shown under a passed check: what it measured

    def note(self, text: str) -> None:
        """Say what a passing check measured (a speedup, a time): students learn from the numbers too."""
        self.notes.append(text)

    @property
    def pid(self) -> int | None:
        """A pid (on this machine) whose process tree holds all the submission runs: for LoadMeter(trees=...)."""
        proc = self._session.worker.proc
        return proc.pid if proc is not None else None

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The student's `name(*args, **kwargs)`, run in the child; its value comes back as plain data."""
        return self._session.call(name, *args, timeout=self._timeout, **kwargs)

    def probe(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """The trusted probe `name(module, *args, **kwargs)`, run in the child."""
        return self._session.probe(name, *args, timeout=self._timeout, **kwargs)

    def raises(self, name: str, *args: Any, **kwargs: Any) -> StudentError | None:
        """The exception the student's `name(...)` raised, or None when it returned."""
        try:
            self.call(name, *args, **kwargs)
        except StudentError as exc:
            return exc
        return None

    def generator(self) -> Any:
        """A torch.Generator seeded like `rng`, for random tensors built in the grader."""
        import torch

        return torch.Generator().manual_seed(self.seed)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_for(exercise_id: str, sha256: str) -> int:
    """The report's seed: a function of the exercise and the exact bytes graded."""
    return int(hashlib.sha256(f"{exercise_id}:{sha256}".encode()).hexdigest()[:12], 16)


def load_checks(exercise: Exercise) -> tuple[list[CheckSpec], ModuleType]:
    """Import an exercise's checks.py in the grader (trusted code) and list its checks."""
    module = import_path(str(exercise.checks_file), f"labkit_checks_{exercise.id}")
    checks = collect(vars(module))[0]
    return checks, module


def checks_file_of(spec: CheckSpec) -> Path:
    """The file that defines a check: its probes live there too (the exercise's, or an instructor's)."""
    return Path(spec.fn.__code__.co_filename).resolve()


def probes_file(spec: CheckSpec, exercise: Exercise) -> Path:
    """The checks file the child imports for `spec`: an instructor's file only when it has probes of its own.

    The child runs the student's code, so whatever it imports the submission can read: a hidden check
    that only calls the student's functions keeps its file out of the sandbox altogether.
    """
    own = checks_file_of(spec)
    if own != exercise.checks_file.resolve() and not collect(spec.fn.__globals__)[1]:  # its module's probes
        return exercise.checks_file.resolve()
    return own


def limits_for(exercise: Exercise, gpus: int, scale: float = 1.0) -> Limits:
    call = exercise.call_seconds * scale
    return Limits(call_seconds=call, import_seconds=exercise.import_seconds * scale,
                  cpu_seconds=int(max(60, call * 4)),
                  memory_bytes=None if gpus else exercise.memory_mb << 20)


def grade(exercise: Exercise, student: Path, *, worker: Worker | None = None, sandbox: str = "auto",
          on_result: Callable[[CheckResult], None] | None = None, time_scale: float = 1.0,
          only: Collection[str] = (), checks_dir: Path | None = None) -> Report:
    """Run every check of `exercise` (or those named in `only`) against the file `student`, a fresh child each."""
    from labkit.devices import cuda_count, fingerprint

    start = time.monotonic()
    student = student.resolve()
    sha = file_sha256(student)
    own = worker is None
    worker = worker or Worker(sandbox, preload=exercise.preload)
    report = Report(exercise.id, exercise.shown_title, str(student), sha, seed_for(exercise.id, sha), worker.sandbox,
                    data=exercise.data, only=sorted(only))
    course = current_course(root=exercise.folder.parent)
    checks, report.reveal_hidden = add_instructor_checks(exercise.id, load_checks(exercise)[0],
                                                         checks_dir or course.checks_dir)
    checks = course.apply(exercise.id, checks)  # course.toml: points, visibility, checks' own time limits
    report.reveal_hidden = report.reveal_hidden or course.visibility(exercise.id).reveal
    unknown = set(only) - {c.name for c in checks}
    if unknown:
        raise CatalogError(f"{exercise.id} has no check named {', '.join(sorted(unknown))}; its checks: "
                           + ", ".join(c.name for c in checks))
    checks = [c for c in checks if not only or c.name in only]
    gpus = cuda_count()
    limits = limits_for(exercise, gpus, time_scale * course.time_scale_for(exercise.id))
    broken: str | None = syntax_error(student)  # once the file cannot be imported, the remaining checks say so
    files = {student: worker.scratch.stage(student)}  # copies the sandbox can read; removed before the next student
    try:
        for spec in checks:
            if spec.needs_gpus > gpus:  # first: a broken file must not change the maximum score
                result = _result(spec, "skipped", _("needs {n} GPU(s) (this machine has {have})").format(
                    n=spec.needs_gpus, have=gpus))
            elif broken is not None:
                result = _result(spec, "error", broken)
            else:
                if not worker.alive():
                    worker.start()
                probes = probes_file(spec, exercise)
                if probes not in files:  # a read-only copy inside the sandbox's view
                    files[probes] = worker.scratch.stage(probes)
                try:
                    result, import_failed = _run_one(worker, spec, exercise, files[student], files[probes],
                                                     report.seed, gpus, limits)
                finally:
                    if probes != exercise.checks_file.resolve():  # an instructor's probes: only for their check
                        worker.scratch.unstage(files.pop(probes))
                if import_failed:
                    broken = result.message
            report.results.append(result)
            if on_result:
                on_result(result)
    finally:
        for copy in files.values():
            worker.scratch.unstage(copy)
        if own:
            worker.close()
    report.seconds = time.monotonic() - start
    report.fingerprint = fingerprint().as_dict()
    return report


def _run_one(worker: Worker, spec: CheckSpec, exercise: Exercise, student: Path, probes: Path, seed: int, gpus: int,
             limits: Limits) -> tuple[CheckResult, bool]:
    """One check in a fresh child; also says whether the student's file failed to import."""
    check_seed = seed_for(f"{exercise.id}.{spec.name}", str(seed))
    workdir = worker.scratch.workdir(f"{exercise.id}-{spec.name}-")
    started = time.monotonic()
    session = None
    output = ""
    import_failed = False
    try:
        if spec.timeout:  # a slow check gets CPU time in proportion to its own wall-clock limit
            limits = replace(limits, cpu_seconds=max(limits.cpu_seconds, int(spec.timeout * 4)))
        session = worker.session(student=student, checks=probes, module=exercise.id,
                                 workdir=workdir, limits=limits, seed=check_seed)
        session.open()
        sub = Submission(session, check_seed, workdir, gpus, spec.timeout)
        spec.fn(sub)
        status, message = "passed", "\n".join(sub.notes)
    except CheckFailed as exc:
        status, message = "failed", str(exc)
    except Skip as exc:
        status, message = "skipped", str(exc)
    except Inconclusive as exc:
        status, message = "inconclusive", str(exc)
    except ImportFailed as exc:
        status, message, import_failed = "error", import_message(exc), True
    except ChildGone as exc:
        status, message = "error", str(exc)
    except StudentError as exc:
        status, message = "error", student_error_message(exc)
    except WorkerFailed:  # the installation, not the student: stop grading, say so once
        raise
    except Exception as exc:  # the answer broke the check's own judging code: it cannot pass
        status, message = "failed", f"the answer could not be judged ({type(exc).__name__}: {exc})"
    finally:
        if session is not None:
            output = session.close()
            if session.notes:  # the grader had to step in: say so, whatever the verdict
                message = "\n".join(filter(None, [message, *(f"(labkit {n})" for n in session.notes)]))
        shutil.rmtree(workdir, ignore_errors=True)
    result = _result(spec, status, message)
    result.output, result.seconds = output, time.monotonic() - started
    return result, import_failed


def _result(spec: CheckSpec, status: str, message: str) -> CheckResult:
    zh = language() == "zh_CN"  # the words people read follow the language; the name stays the key
    title = spec.title_zh if zh and spec.title_zh else spec.title
    hint = spec.hint_zh if zh and spec.hint_zh else spec.hint
    return CheckResult(spec.name, title, status, spec.points if status == "passed" else 0, spec.points,
                       message, hint if status in ("failed", "error") else None, hidden=spec.hidden)
