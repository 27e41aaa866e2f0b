"""What one Slurm array asks for and runs: the executor's options, resources from the exercise, the batch script."""

from __future__ import annotations

import math
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.catalog import Exercise

START_SECONDS = 120  # a task's own start: python, torch, the worker (and a container) before the first student
MARGIN = 2.0  # --time is twice what the checks' own limits allow: labkit's limits end a hang long before Slurm does


@dataclass
class SlurmOptions:
    """Where and how the array runs: `labkit grade`'s options, and settings a test or a course may tune."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    max_parallel: int | None = None  # array tasks running at once (sbatch --array=...%N)
    container: Path | None = None  # an apptainer .sif of the student image: the task runs inside it
    scratch: Path | None = None  # staging, results, scripts and logs; on a file system the nodes see
    chunk: int = 4  # students per array task, one warm worker each
    cpus: int = 1  # per task: one, as a local job is one worker on one core
    minutes: int | None = None  # --time; default from the checks' own limits (resources())
    retries: int = 1  # a task stopped by the cluster is submitted again this many times
    poll: float = 2.0  # seconds between looks at the array
    settle: float = 5.0  # how long an ended task's results may take to appear (a shared file system's caches)
    report: Callable[[str], None] | None = field(default=None, repr=False)  # progress lines (job states)


@dataclass(frozen=True)
class Resources:
    """What one array task asks Slurm for."""

    gpus: int
    cpus: int
    minutes: int


def resources(exercise: Exercise, checks_dir: Path | None, students: int, options: SlurmOptions) -> Resources:
    """GPUs from the checks that need them, the CPUs asked for, and --time from the checks' own limits."""
    from labkit.grading.plan import plan

    p = plan(exercise, gpus=0, checks_dir=checks_dir)
    gpus = max([exercise.needs_gpus, *(c.needs_gpus for c in p.checks)])
    per_student = p.limits.import_seconds + sum(c.timeout or p.limits.call_seconds for c in p.checks)
    minutes = options.minutes or math.ceil((START_SECONDS + students * per_student * MARGIN) / 60)
    return Resources(gpus, max(1, options.cpus), minutes)


def sbatch_args(options: SlurmOptions, res: Resources, tasks: int, name: str, logs: Path) -> list[str]:
    """The array's sbatch options: resources, where, and no requeue by Slurm (labkit retries, once, itself)."""
    throttle = f"%{options.max_parallel}" if options.max_parallel else ""
    args = [f"--job-name=labkit-{name}", f"--array=0-{tasks - 1}{throttle}", "--ntasks=1",
            f"--cpus-per-task={res.cpus}", f"--time={res.minutes}", f"--output={logs}/%A_%a.out", "--no-requeue"]
    if res.gpus:
        args.append(f"--gres=gpu:{res.gpus}")
    args += [f"--{k}={v}" for k, v in (("partition", options.partition), ("account", options.account),
                                        ("qos", options.qos)) if v]
    return args


def task_command(options: SlurmOptions, spec: Path, gpus: int, binds: list[Path]) -> list[str]:
    """What an array task runs: this Python, or the image's under apptainer (--nv for GPUs, the folders bound)."""
    tail = ["-m", "labkit.classroom.slurm_task", str(spec), "$SLURM_ARRAY_TASK_ID"]
    if options.container is None:
        return [sys.executable, *tail]
    nv = ["--nv"] if gpus else []
    bound = [a for p in dict.fromkeys(binds) for a in ("--bind", str(p))]
    return ["apptainer", "exec", "--cleanenv", *nv, *bound, str(options.container), "python", *tail]


def script(command: list[str]) -> str:
    """The batch script: one line, every word quoted but the task index."""
    words = [w if w == "$SLURM_ARRAY_TASK_ID" else shlex.quote(w) for w in command]
    return "#!/bin/bash\n# labkit grade: this array task grades its chunk of students\nexec " + " ".join(words) + "\n"
