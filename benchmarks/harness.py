"""The direct baseline: an exercise's CPU checks run in ONE process against the solution, no worker, no fork.

`python -m benchmarks.harness exerciseN FILE` prints one JSON line: each check's status and the seconds taken.
"""

from __future__ import annotations

import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

if __package__ in (None, ""):  # run as a file: make `benchmarks` and `labkit` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from labkit.checks import StudentError  # noqa: E402
from labkit.course.course import resolve  # noqa: E402
from labkit.files import import_path  # noqa: E402
from labkit.grading.engine import judge, seed_for  # noqa: E402
from labkit.grading.plan import load_checks  # noqa: E402
from labkit.grading.submission import SharedWork, Submission  # noqa: E402
from labkit.sandbox import wire  # noqa: E402
from labkit.sandbox.child import describe  # noqa: E402


def roundtrip(value: Any) -> Any:
    """`value` through the grader's wire codec, as a call's arguments and answers travel."""
    tree, blob = wire.encode(value)
    return wire.decode(tree, blob)


class DirectSession:
    """What `Submission` needs from a Session, calling the student's module in this very process."""

    def __init__(self, student: ModuleType, path: str):
        self.student, self.path = student, path
        self.worker = SimpleNamespace(proc=SimpleNamespace(pid=os.getpid()))  # Submission.pid: our own tree

    def _run(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        args, kwargs = roundtrip((list(args), kwargs))
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  (the student's exception, as the child would report it)
            raise StudentError(describe(exc, self.path)) from None
        return roundtrip(value)

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """The student's `name(*args, **kwargs)`, here."""
        fn = getattr(self.student, name, None)
        if not callable(fn):
            raise StudentError({"type": "MissingFunction", "mro": ["MissingFunction"], "message": name})
        return self._run(fn, args, kwargs)

    def run(self, program: dict, *, timeout: float | None = None, gate: Any = None) -> dict:
        """A check's program (labkit.recipe), interpreted here; gates are held by sleeping, timed by our clock."""
        from labkit.sandbox import program as interpreter

        gates: list[list[float]] = []

        def hold() -> None:
            arrived = time.perf_counter()
            time.sleep(max(0.0, float(gate(len(gates)))) if gate else 0.0)
            gates.append([arrived, time.perf_counter()])

        try:
            got = interpreter.run(self.student, roundtrip(program), hold)
        except interpreter.StudentRaised as exc:
            raise StudentError(describe(exc.error, self.path)) from None
        return {**roundtrip(got), "gates": gates}


def run_direct(exercise_id: str, solution: Path) -> dict:
    """Run every CPU check of the exercise in this process; statuses and seconds (import of torch excluded)."""
    import torch

    ex = resolve(exercise_id)
    solution = Path(solution).resolve()
    started = time.perf_counter()
    specs, _module = load_checks(ex)
    student = import_path(str(solution), ex.id)
    results: dict[str, str] = {}
    messages: dict[str, str] = {}
    seed = seed_for(ex.id, "direct")
    shared = SharedWork(lambda name: seed_for(f"{ex.id}.shared.{name}", str(seed)))  # as the engine seeds it
    here = os.getcwd()
    for spec in specs:
        if spec.needs_gpus > 0:
            results[spec.name] = "skipped"
            continue
        check_seed = seed_for(f"{ex.id}.{spec.name}", str(seed))
        random.seed(check_seed)  # as the worker seeds each child
        torch.manual_seed(check_seed)
        with tempfile.TemporaryDirectory(prefix=f"direct-{ex.id}-") as workdir:
            os.chdir(workdir)
            sub = Submission(DirectSession(student, str(solution)), check_seed, Path(workdir), 0,
                             spec.timeout, shared)
            try:
                status, msg, _ = judge(lambda sub=sub, spec=spec: spec.fn(sub) or "")
            finally:
                os.chdir(here)
        results[spec.name] = status
        if msg and status != "passed":
            messages[spec.name] = msg[:300]
    return {"exercise": ex.id, "results": results, "messages": messages,
            "seconds": time.perf_counter() - started}


def main(argv: list[str]) -> int:
    """CLI: exercise id and solution file; prints JSON; exit 0 unless a check failed or errored."""
    out = run_direct(argv[0], Path(argv[1]))
    print(json.dumps(out))
    return 0 if not {"failed", "error"} & set(out["results"].values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
