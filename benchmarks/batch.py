"""Section 3: batch grading throughput (`labkit grade`) at one and two jobs."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import LABKIT, ROOT, Row, clean_env, med, time_cmd, verdict

CLASS_SIZE = 12
SPEEDUP = 1.7  # jobs 2 over jobs 1
RATE = 30.0  # exercise1 submissions per minute at two jobs


def make_class(folder: Path, exercise: str, size: int) -> Path:
    """`size` students, each a copy of the solution with its own comment (distinct sha256)."""
    source = (ROOT / "solutions" / f"{exercise}.py").read_text(encoding="utf-8")
    for i in range(size):
        student = folder / f"student{i:02d}"
        student.mkdir(parents=True)
        (student / f"{exercise}.py").write_text(f"# submission of student {i:02d}\n{source}", encoding="utf-8")
    return folder


def grade_seconds(submissions: Path, exercise: str, jobs: int, scratch: Path, tag: str) -> float:
    """Wall seconds of one `labkit grade` into a fresh results folder."""
    out = scratch / f"out-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    argv = [LABKIT, "grade", str(submissions), "-e", exercise, "--jobs", str(jobs), "--out", str(out),
            "--sandbox", "auto"]
    return time_cmd(argv, cwd=scratch, env=clean_env(MPLBACKEND="Agg"))


def measure(exercise: str, size: int, rounds: int, scratch: Path) -> dict[int, list[float]]:
    """Interleaved runs at jobs 1 and 2 (ABBA): wall seconds for the whole class."""
    subs = make_class(scratch / f"class-{exercise}", exercise, size)
    times: dict[int, list[float]] = {1: [], 2: []}
    for i in range(rounds):
        for jobs in (1, 2) if i % 2 == 0 else (2, 1):
            times[jobs].append(grade_seconds(subs, exercise, jobs, scratch, f"{exercise}-{jobs}-{i}"))
    return times


def skipped(reason: str) -> list[Row]:
    """A row saying why there is no batch figure."""
    print(f"batch: skipped: {reason}")
    return [Row("batch", "grade exercise1 (batch)", "skipped", "", "", f">={SPEEDUP}x, >={RATE:.0f}/min", "n/a",
                {"skipped": reason})]


def run(quick: bool = False) -> list[Row]:
    """Submissions/min of exercise1 at jobs 1 and 2, and seconds per exercise2 submission at jobs 1 and 2."""
    if importlib.util.find_spec("labkit.intake") is None:
        return skipped("labkit.intake is missing, so `labkit grade` cannot read a class yet")
    rows = []
    with tempfile.TemporaryDirectory(prefix="labkit-bench-batch-") as tmp:
        t1 = measure("exercise1", CLASS_SIZE, 1 if quick else 2, Path(tmp))
        one, two = med(t1[1]), med(t1[2])
        rate1, rate2 = CLASS_SIZE / one * 60, CLASS_SIZE / two * 60
        speedup = one / two
        rows.append(Row("batch", "grade exercise1 jobs=2 speedup", f"{rate2:.1f}/min", f"jobs=1 {rate1:.1f}/min",
                        f"{speedup:.2f}x", f">={SPEEDUP}x", verdict(speedup >= SPEEDUP),
                        {"class": CLASS_SIZE, "jobs1_s": t1[1], "jobs2_s": t1[2]}))
        rows.append(Row("batch", "grade exercise1 jobs=2 rate", f"{rate2:.1f}/min", "", "", f">={RATE:.0f}/min",
                        verdict(rate2 >= RATE), {"per_min": rate2}))
        size2 = 4 if quick else 6
        t2 = measure("exercise2", size2, 1, Path(tmp))
        s1, s2 = med(t2[1]) / size2, med(t2[2]) / size2
        rows.append(Row("batch", "grade exercise2 s/submission", f"jobs=2 {s2:.2f} s", f"jobs=1 {s1:.2f} s",
                        f"{s1 / s2:.2f}x", "", "n/a", {"class": size2, "jobs1_s": t2[1], "jobs2_s": t2[2]}))
    return rows
