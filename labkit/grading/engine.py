"""Grades one student file against one exercise's plan of checks, a fresh child per check, into a Report."""

from __future__ import annotations

import hashlib
import shutil
import time
import traceback
from collections.abc import Callable, Collection
from dataclasses import replace
from pathlib import Path

from labkit.checks import CheckFailed, CheckSpec, Inconclusive, Skip, StudentError
from labkit.course.catalog import Exercise
from labkit.files import sha256_of
from labkit.grading.lease import gpu_lease
from labkit.grading.messages import import_message, student_error_message, syntax_error
from labkit.grading.plan import plan
from labkit.grading.results import CheckResult, Report
from labkit.grading.submission import SharedWork, Submission
from labkit.i18n import _, language
from labkit.sandbox.errors import ChildGone, ImportFailed, WorkerFailed
from labkit.sandbox.session import Limits, Session
from labkit.sandbox.worker import Worker


def seed_for(exercise_id: str, sha256: str, salt: str = "") -> int:
    """The report's seed: a function of the exercise, the exact bytes graded and the grader's secret salt.

    `labkit grade` and Gradescope add a salt the child never sees (kept with the grader's files, so a regrade
    reproduces the verdicts): a submission cannot compute its checks' inputs ahead of time.
    """
    text = f"{exercise_id}:{sha256}" + (f":{salt}" if salt else "")
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def grade(exercise: Exercise, student: Path, *, worker: Worker | None = None, sandbox: str = "auto",
          on_result: Callable[[CheckResult], None] | None = None, time_scale: float = 1.0,
          only: Collection[str] = (), checks_dir: Path | None = None, salt: str = "",
          keep_files: Callable[[str, Path], None] | None = None) -> Report:
    """Run every check of `exercise` (or those named in `only`) against the file `student`, a fresh child each.

    `keep_files(check name, work folder)` sees each check's work folder just before it is removed.
    """
    from labkit.lab.devices import cuda_count, fingerprint

    start = time.monotonic()
    student = student.resolve()
    sha = sha256_of(student)
    the_plan = plan(exercise, gpus=cuda_count(), only=only, checks_dir=checks_dir, time_scale=time_scale)
    own = worker is None
    worker = worker or Worker(sandbox, preload=exercise.preload)
    report = Report(exercise.id, exercise.shown_title, str(student), sha, seed_for(exercise.id, sha, salt),
                    worker.sandbox, data=exercise.data, only=sorted(only), reveal_hidden=the_plan.reveal)
    gpus = the_plan.gpus
    broken: str | None = syntax_error(student)  # once the file cannot be imported, the remaining checks say so
    files: dict[Path, Path] = {}  # copies the sandbox can read; removed before the next student
    # @shared work (one launch judged by several checks): seeded by its own name, so the same whichever check asks
    shared = SharedWork(lambda name: seed_for(f"{exercise.id}.shared.{name}", str(report.seed)))
    try:
        files[student] = worker.scratch.stage(student)
        for spec in the_plan.checks:
            if spec.needs_gpus > gpus:  # first: a broken file must not change the maximum score
                result = _result(spec, "skipped", _("needs {n} GPU(s) (this machine has {have})").format(
                    n=spec.needs_gpus, have=gpus))
            elif broken is not None:
                result = _result(spec, "error", broken)
            else:
                if not worker.alive():
                    worker.start()
                with gpu_lease(spec.needs_gpus) as lease:  # a CPU check (needs 0) asks nothing, waits for nothing
                    result, import_failed = _run_one(worker, spec, exercise, files[student], report.seed, gpus,
                                                     the_plan.limits, keep_files, shared)
                if import_failed:
                    broken = result.message
                if lease.note:  # the wait is not in result.seconds: say it apart
                    result.message = "\n".join(filter(None, [result.message, lease.note]))
            report.results.append(result)
            if on_result:
                on_result(result)
    finally:
        for copy in files.values():
            worker.scratch.unstage(copy)
        if own:
            worker.close()
    report.seconds = time.monotonic() - start
    report.fingerprint = fingerprint(cuda_init=False).as_dict()
    return report


def judge(attempt: Callable[[], str]) -> tuple[str, str, bool]:
    """Run a check (`attempt` returns what it measured) and turn how it ended into a verdict.

    (status, message, whether the student's file failed to import): the one ladder from exceptions to
    verdicts, which benchmarks/harness.py uses too.
    """
    try:
        return "passed", attempt(), False
    except CheckFailed as exc:
        return "failed", str(exc), False
    except Skip as exc:
        return "skipped", str(exc), False
    except Inconclusive as exc:
        return "inconclusive", str(exc), False
    except ImportFailed as exc:
        return "error", import_message(exc), True
    except ChildGone as exc:
        return "error", str(exc), False
    except StudentError as exc:
        return "error", student_error_message(exc), False
    except WorkerFailed:  # the installation, not the student: stop grading, say so once
        raise
    except Exception as exc:  # a bug in the check's own code (or labkit's): never the student's failure
        return "error", _grader_error(exc), False


def _run_one(worker: Worker, spec: CheckSpec, exercise: Exercise, student: Path, seed: int, gpus: int,
             limits: Limits, keep_files: Callable[[str, Path], None] | None = None,
             shared: SharedWork | None = None) -> tuple[CheckResult, bool]:
    """One check in a fresh child; also says whether the student's file failed to import."""
    check_seed = seed_for(f"{exercise.id}.{spec.name}", str(seed))
    # the child's own seed is a one-way function of the check's: knowing it, a submission cannot redraw the
    # check's inputs (sub.rng) and replay the check to learn the expected answers
    child_seed = seed_for("child", str(check_seed))
    workdir = worker.scratch.workdir("check-")  # no check name reaches the child: it cannot tell which one runs
    if spec.timeout:  # a slow check gets CPU time in proportion to its own wall-clock limit
        limits = replace(limits, cpu_seconds=max(limits.cpu_seconds, int(spec.timeout * 4)))
    started = time.monotonic()
    opened: list[Session] = []

    def attempt() -> str:
        opened.append(worker.session(student=student, module=exercise.id, workdir=workdir,
                                     limits=limits, seed=child_seed))
        opened[0].open()
        sub = Submission(opened[0], check_seed, workdir, gpus, spec.timeout, shared)
        spec.fn(sub)
        return "\n".join(sub.notes)

    output = ""
    try:
        status, message, import_failed = judge(attempt)
    finally:
        if opened:
            output = opened[0].close()
        _keep(keep_files, spec.name, workdir)
        shutil.rmtree(workdir, ignore_errors=True)
        worker.scratch.sweep()  # and whatever the check planted beside its folder, for the next one to find
    if opened and opened[0].notes:  # the grader had to step in: say so, whatever the verdict
        message = "\n".join(filter(None, [message, *(f"(labkit {n})" for n in opened[0].notes)]))
    result = _result(spec, status, message)
    result.output, result.seconds = output, time.monotonic() - started
    return result, import_failed


def _keep(keep_files: Callable[[str, Path], None] | None, name: str, workdir: Path) -> None:
    """Hand the check's work folder to the caller before it goes; nothing the hook does changes the verdict."""
    if keep_files is None:
        return
    try:
        keep_files(name, workdir)
    except Exception:  # noqa: BLE001 - keeping files is a courtesy: a full disk must not fail the student
        pass


def _grader_error(exc: Exception) -> str:
    """How a bug in a check's code (or labkit's) reads: labkit's fault, with where it broke for the instructor."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames)
    return (_("labkit could not judge this (a bug in the check, not in your code: tell your instructor)")
            + f"\n    {type(exc).__name__}: {str(exc)[:300]}" + (f"\n    at {where}" if where else ""))


def _result(spec: CheckSpec, status: str, message: str) -> CheckResult:
    zh = language() == "zh_CN"  # the words people read follow the language; the name stays the key
    title = spec.title_zh if zh and spec.title_zh else spec.title
    hint = spec.hint_zh if zh and spec.hint_zh else spec.hint
    return CheckResult(spec.name, title, status, spec.points if status == "passed" else 0, spec.points,
                       message, hint if status in ("failed", "error") else None, hidden=spec.hidden)
