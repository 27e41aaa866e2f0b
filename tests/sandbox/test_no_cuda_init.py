"""Nothing the grader or the worker does before a check's child is forked initialises CUDA.

A forked child cannot use CUDA once its parent initialised it ("Cannot re-initialize CUDA in forked subprocess"),
and a grader holding a CUDA context takes memory on GPU 0 from every check. torch.cuda._lazy_init is the one
door to initialisation: it is patched to record (and raise) here, with torch told that two GPUs exist so that
every GPU branch of the grader is taken.
"""

from __future__ import annotations

import subprocess
import sys
import traceback

import torch

from labkit.course.course import resolve
from labkit.grading.engine import grade
from labkit.paths import solutions_root
from labkit.sandbox.worker import Worker


def test_the_grader_never_initialises_cuda_while_checks_run(tmp_path, monkeypatch):
    calls: list[str] = []
    cpu_checks = ["picks_cpu", "to_device_moves", "places_model", "loader_for_cuda"]

    def lazy_init() -> None:
        calls.append("".join(traceback.format_stack(limit=8)))
        raise RuntimeError("labkit test: CUDA initialised in the grader")

    seen: list[tuple[str, int]] = []
    monkeypatch.setattr(torch.cuda, "_lazy_init", lazy_init)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    exercise = resolve("exercise1")
    student = tmp_path / exercise.filename
    student.write_text((solutions_root() / exercise.filename).read_text(encoding="utf-8"), encoding="utf-8")

    def on_result(result) -> None:  # every check's child was forked and judged by now
        seen.append((result.name, len(calls)))

    with Worker("none") as worker:
        report = grade(exercise, student, worker=worker, only=cpu_checks, on_result=on_result)
    assert [name for name, _ in seen] == cpu_checks
    assert all(r.status == "passed" for r in report.results), [(r.name, r.message) for r in report.results]
    assert [n for _name, n in seen] == [0] * len(cpu_checks), calls[:1]
    assert not calls, calls[:1]  # the report's fingerprint too: it names GPUs from the driver, never from CUDA
    assert [g["index"] for g in report.fingerprint["gpus"]] == [0, 1]


WORKER_SIDE = """
import gc, sys
import torch
calls = []
def lazy_init():
    calls.append(1)
    raise RuntimeError("labkit test: CUDA initialised in the worker")
torch.cuda._lazy_init = lazy_init
import labkit.checks, labkit.sandbox.program  # what child.main imports before its first fork
from labkit.sandbox import child, env, hugepages, reaper, wire  # noqa: F401
child._preload(sys.argv[1:])  # exercise.toml's preloads: imported before the second fork
gc.collect(); gc.freeze()
assert not calls and not torch.cuda.is_initialized(), calls
print("clean", sorted(set(sys.argv[1:]) & set(sys.modules)))
"""


def test_the_workers_pre_fork_imports_never_initialise_cuda():
    exercises = ("exercise2", "exercise4", "exercise5", "exercise6")
    preloads = sorted({name for e in exercises for name in resolve(e).preload})
    assert preloads, "no exercise preloads a module: this test proves only the fixed imports"
    done = subprocess.run([sys.executable, "-c", WORKER_SIDE, *preloads], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"clean {preloads}", done.stdout
