"""Where the seconds of one `labkit check` go: `python benchmarks/profile_check.py [exerciseN] [--sandbox none]`.

Wraps the engine's phases (imports, worker start, each check's fork+import, calls, close) with timers,
in the same order `labkit check --file` runs them, and prints a breakdown.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

T0 = time.perf_counter()
SPENT: dict[str, float] = defaultdict(float)
COUNT: dict[str, int] = defaultdict(int)


def timed(label: str, fn: Callable) -> Callable:
    """`fn` with its wall time added to SPENT[label]."""

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[label] += time.perf_counter() - start
            COUNT[label] += 1

    return wrapper


def main() -> None:
    """Profile one grade() of the reference solution and print the phases."""
    parser = argparse.ArgumentParser()
    parser.add_argument("exercise", nargs="?", default="exercise1")
    parser.add_argument("--sandbox", default="none")
    args = parser.parse_args()
    start = time.perf_counter()
    import labkit.cli.main  # noqa: F401  (what the `labkit` entry point imports first)
    SPENT["import labkit.cli.main (no torch)"] = time.perf_counter() - start
    start = time.perf_counter()
    import torch  # noqa: F401
    SPENT["import torch in the grader"] = time.perf_counter() - start
    from labkit.course.course import resolve
    from labkit.grading import engine
    from labkit.lab import devices
    from labkit.sandbox import worker as runner

    runner.Worker.start = timed("worker start (python -I + import torch + meta op)", runner.Worker.start)
    runner.Session.open = timed("per check: fork + import checks.py + student file", runner.Session.open)
    runner.Session._exchange = timed("per check: calls and programs (round trips)", runner.Session._exchange)
    runner.Session.close = timed("per check: close child + read output", runner.Session.close)
    engine.load_checks = timed("load checks.py in the grader", engine.load_checks)
    devices.fingerprint = timed("fingerprint", devices.fingerprint)
    start = time.perf_counter()
    with runner.Worker(args.sandbox) as worker:
        report = engine.grade(resolve(args.exercise), Path(__file__).resolve().parent.parent / "solutions" /
                              f"{args.exercise}.py", worker=worker)
        SPENT["grade() + worker start, total"] = time.perf_counter() - start
    SPENT["worker close"] = time.perf_counter() - start - SPENT["grade() + worker start, total"]
    checks_wall = sum(r.seconds for r in report.results)
    SPENT["sum of per-check wall (engine's own)"] = checks_wall
    total = time.perf_counter() - T0
    print(f"{args.exercise} [{args.sandbox}]: {total:.2f} s in this process (plus ~interpreter start)")
    for label, seconds in SPENT.items():
        n = f" x{COUNT[label]}" if COUNT[label] > 1 else ""
        print(f"  {seconds:6.2f} s  {label}{n}")
    ran = [r for r in report.results if r.status != "skipped"]
    print(f"  checks run: {len(ran)}, statuses: {sorted({r.status for r in report.results})}")


if __name__ == "__main__":
    main()
