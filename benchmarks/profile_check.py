"""The critical path of one `labkit check`, as a timeline: `python benchmarks/profile_check.py [CLI ARGS...]`.

Runs the real CLI (`labkit check ...`, default: exercise2 --only replica_sizes on the reference solution) in this
process with timers around each step of the engine, the worker and the child's protocol, and prints when each
step began and ended, counted from this process's start (its exec, read from /proc), to stderr at exit.
"""

from __future__ import annotations

import atexit
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT = ["check", "exercise2", "--only", "replica_sizes", "--file", "solutions/exercise2.py"]
EVENTS: list[tuple[float, float, str]] = []


def since_exec() -> float:
    """Seconds since this process was exec'd (the kernel's start time, in clock ticks since boot)."""
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")


OFFSET = since_exec() - time.perf_counter()  # perf_counter() + OFFSET = seconds since exec


def now() -> float:
    return time.perf_counter() + OFFSET


def timed(label: str, fn: Callable) -> Callable:
    """`fn`, recording (start, end, label) for each call."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = now()
        try:
            return fn(*args, **kwargs)
        finally:
            EVENTS.append((start, now(), label))

    return wrapper


def patch(owner: object, name: str, label: str) -> None:
    setattr(owner, name, timed(label, getattr(owner, name)))


def report() -> None:
    EVENTS.append((now(), now(), "atexit (interpreter teardown follows)"))
    print("\n   start     end   took  step", file=sys.stderr)
    for start, end, label in sorted(EVENTS):
        print(f"  {start:6.3f}  {end:6.3f}  {end - start:5.3f}  {label}", file=sys.stderr)


def main() -> None:
    args = sys.argv[1:] or DEFAULT
    EVENTS.append((0.0, now(), "interpreter start and site (before this script's first line)"))
    start = now()
    from labkit.cli import main as cli

    EVENTS.append((start, now(), "import labkit.cli.main (no torch)"))
    from labkit.grading import engine, plan
    from labkit.lab import devices
    from labkit.sandbox import bwrap, session, worker

    patch(bwrap, "bwrap_works", "probe: does bubblewrap work here")
    patch(worker.Worker, "start", "worker: spawn (returns at once; python -I + import torch run on)")
    patch(worker.Worker, "ready", "worker: wait for worker-ready (its torch import)")
    patch(plan, "load_checks", "grader: load checks.py (import torch here)")
    patch(engine, "plan", "grader: plan (course.toml, checks.py)")
    patch(worker.Worker, "session", "check: fork request sent")
    patch(session.Session, "open", "check: child ready + student file imported")
    patch(session.Session, "_exchange", "check: one call (round trip)")
    patch(session.Session, "close", "check: end child, wait for 'exited', read output")
    patch(devices, "fingerprint", "report: environment fingerprint")
    patch(engine, "grade", "grade() in all")
    patch(worker.Worker, "close", "worker: close (kill its group, remove scratch)")
    atexit.register(report)  # registered last: runs first, before the workers' own exit handlers
    sys.argv = ["labkit", *args]
    cli.main()


if __name__ == "__main__":
    main()
