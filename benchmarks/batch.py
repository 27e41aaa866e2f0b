"""Section 3: batch grading (`labkit grade`) at one and two jobs.

A run costs a fixed start (interpreter, torch imported by the grader and by each job's worker, the summary)
plus a price per submission. Two class sizes, n and 3n, separate them: (T(3n) - T(n)) / 2n is the price per
submission, and 60 over it the throughput in submissions per minute, the figure the 1.7x target is about.
The end-to-end time of the larger class is reported beside it, start-up included.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import LABKIT, PYTHON, ROOT, Row, clean_env, med, time_cmd, verdict

SPEEDUP = 1.7  # throughput at jobs 2 over jobs 1
RATE = 30.0  # exercise1 submissions per minute at two jobs, end to end


def make_class(folder: Path, exercise: str, size: int) -> Path:
    """`size` students, each a copy of the solution with its own comment (distinct sha256)."""
    source = (ROOT / "solutions" / f"{exercise}.py").read_text(encoding="utf-8")
    for i in range(size):
        student = folder / f"student{i:03d}"
        student.mkdir(parents=True)
        (student / f"{exercise}.py").write_text(f"# submission of student {i:03d}\n{source}", encoding="utf-8")
    return folder


def class_sandbox() -> str:
    """What a class is graded in here: auto (bubblewrap, else the container) where one works; else an explicit
    `none`, which `labkit grade` requires before it runs a class unconfined (the figure then says so)."""
    from labkit.sandbox.errors import SandboxError
    from labkit.sandbox.modes import for_class

    try:
        for_class("auto")
    except SandboxError:
        return "none"
    return "auto"


def grade_seconds(submissions: Path, exercise: str, jobs: int, scratch: Path, tag: str) -> float:
    """Wall seconds of one `labkit grade` into a fresh results folder."""
    out = scratch / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    argv = [LABKIT, "grade", str(submissions), "-e", exercise, "--jobs", str(jobs), "--out", str(out),
            "--sandbox", class_sandbox()]
    seconds = time_cmd(argv, cwd=scratch, env=clean_env(MPLBACKEND="Agg"))
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def measure(exercise: str, sizes: tuple[int, ...], rounds: int, scratch: Path) -> dict[tuple[int, int], list[float]]:
    """Wall seconds per (jobs, class size), runs interleaved ABBA so drift in the machine's load hits both."""
    classes = {n: make_class(scratch / f"class-{exercise}-{n}", exercise, n) for n in sizes}
    times: dict[tuple[int, int], list[float]] = {(j, n): [] for j in (1, 2) for n in sizes}
    for i in range(rounds):
        for jobs in (1, 2) if i % 2 == 0 else (2, 1):
            for n in sizes:
                times[jobs, n].append(grade_seconds(classes[n], exercise, jobs, scratch, f"{exercise}-{jobs}-{n}-{i}"))
    return times


def split(small: float, large: float, n: int, big: int) -> tuple[float, float]:
    """Seconds per submission and fixed seconds from two class sizes' wall times."""
    per = max(1e-9, (large - small) / (big - n))
    return per, small - n * per


def fork_ceiling(n: int) -> Row:
    """How well forking a torch-loaded process scales from one process to two on this machine."""
    proc = subprocess.run([PYTHON, "-m", "benchmarks.forks", str(n)], cwd=ROOT, env=clean_env(), capture_output=True,
                          text=True, timeout=600, check=True)
    rates = {int(k): v for k, v in json.loads(proc.stdout).items()}
    return Row("batch", "fork ceiling (the machine)", f"2 procs {rates[2]:.0f} forks/s",
               f"1 proc {rates[1]:.0f} forks/s", f"{rates[2] / rates[1]:.2f}x", "", "n/a", {"forks_per_s": rates})


def skipped(reason: str) -> list[Row]:
    """A row saying why there is no batch figure."""
    print(f"batch: skipped: {reason}")
    return [Row("batch", "grade exercise1 (batch)", "skipped", "", "", f">={SPEEDUP}x, >={RATE:.0f}/min", "n/a",
                {"skipped": reason})]


def run(quick: bool = False) -> list[Row]:
    """Exercise 1: throughput and start-up at jobs 1 and 2, and a class end to end; exercise 2: s/submission."""
    if importlib.util.find_spec("labkit.classroom.intake") is None:
        return skipped("labkit.classroom.intake is missing, so `labkit grade` cannot read a class yet")
    n = 12 if quick else 24
    big = 3 * n
    rows = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-batch-") as tmp:
        t = measure("exercise1", (n, big), 1 if quick else 2, Path(tmp))
        wall = {key: med(v) for key, v in t.items()}
        (per1, fixed1), (per2, fixed2) = (split(wall[j, n], wall[j, big], n, big) for j in (1, 2))
        speedup = per1 / per2
        values = {"sizes": [n, big], "runs": {f"jobs{j}_n{s}": v for (j, s), v in t.items()},
                  "per_submission_s": {"jobs1": per1, "jobs2": per2}, "fixed_s": {"jobs1": fixed1, "jobs2": fixed2}}
        rows.append(Row("batch", "grade exercise1 throughput", f"jobs=2 {60 / per2:.0f}/min",
                        f"jobs=1 {60 / per1:.0f}/min", f"{speedup:.2f}x", f">={SPEEDUP}x", verdict(speedup >= SPEEDUP),
                        values))
        rows.append(Row("batch", "grade exercise1 start-up (fixed)", f"jobs=2 {fixed2:.2f} s", f"jobs=1 {fixed1:.2f} s",
                        "", "", "n/a", values["fixed_s"]))
        rate = big / wall[2, big] * 60
        rows.append(Row("batch", f"grade exercise1 class of {big}", f"jobs=2 {wall[2, big]:.1f} s ({rate:.0f}/min)",
                        f"jobs=1 {wall[1, big]:.1f} s", f"{wall[1, big] / wall[2, big]:.2f}x", f">={RATE:.0f}/min",
                        verdict(rate >= RATE), {"jobs1_s": wall[1, big], "jobs2_s": wall[2, big], "per_min": rate}))
        rows.append(fork_ceiling(60 if quick else 150))
        size2 = 4 if quick else 6
        t2 = measure("exercise2", (size2,), 1, Path(tmp))
        s1, s2 = med(t2[1, size2]) / size2, med(t2[2, size2]) / size2
        rows.append(Row("batch", "grade exercise2 s/submission", f"jobs=2 {s2:.2f} s", f"jobs=1 {s1:.2f} s",
                        f"{s1 / s2:.2f}x", "", "n/a",
                        {"class": size2, "jobs1_s": t2[1, size2], "jobs2_s": t2[2, size2]}))
    return rows
