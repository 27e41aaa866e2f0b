"""Section 5: peak RSS of a `labkit check exercise1` run and of a grading worker."""

from __future__ import annotations

import subprocess
from pathlib import Path

from benchmarks.common import LABKIT, PYTHON, ROOT, Row, clean_env


def check_peak_mib() -> float:
    """ru_maxrss of the biggest process of a `labkit check exercise1` run (sandbox none), seen from a fresh parent."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    argv = [PYTHON, "-c", code, LABKIT, "check", "exercise1", "--file", "solutions/exercise1.py", "--sandbox", "none"]
    out = subprocess.run(argv, cwd=ROOT, env=clean_env(), capture_output=True, text=True, check=True).stdout
    return int(out.split()[-1]) / 1024  # a fresh parent: no earlier, bigger child hides the figure


def worker_peak_mib() -> float:
    """VmHWM of a batch grading worker (huge pages on) after two exercise1 submissions, children not included."""
    from labkit.course.course import resolve
    from labkit.grading.engine import grade
    from labkit.sandbox.worker import Worker

    with Worker("none", huge_pages=True) as worker:  # as `labkit grade` starts it
        for _ in range(2):  # the second submission runs after the worker collapsed into huge pages
            grade(resolve("exercise1"), ROOT / "solutions/exercise1.py", worker=worker)
        status = Path(f"/proc/{worker.proc.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def run(quick: bool = False) -> list[Row]:
    """Two rows, no targets."""
    check = check_peak_mib()
    work = worker_peak_mib()
    return [Row("memory", "peak RSS labkit check exercise1", f"{check:.0f} MiB", "", "", "(report)", "n/a",
                {"mib": check, "how": "ru_maxrss of children (largest process: grader or worker)"}),
            Row("memory", "peak RSS grading worker", f"{work:.0f} MiB", "", "", "(report)", "n/a",
                {"mib": work, "how": "VmHWM of Worker('none', huge_pages=True) after exercise1 twice"})]
