"""Hostile submissions (tests/hostile/*.py) never earn the points they attack and never stop the grader.

Each file is a whole exercise99 submission whose docstring says, on its first line, what it attacks, then
`EXPECT: check=status|status ... others=status` (the statuses each check may end with; `others` covers every
other check that runs here) and, for attacks that are only safe or meaningful inside a sandbox (bubblewrap,
or `--sandbox container` in image-test), `NEEDS: bwrap`.
`BESIDE: name.py` asks the test to write the file's COMPANION text next to the graded file.
"""

from __future__ import annotations

import ast
import os
import re
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from labkit.course.course import resolve
from labkit.grading.engine import grade
from labkit.grading.results import Report
from labkit.paths import solutions_root

from conftest import result, statuses

HERE = Path(__file__).parent.parent
TOY = HERE / "toy"
HOSTILE = HERE / "hostile"
SOLUTION = TOY / "exercise99" / "solution.py"
FILES = sorted(HOSTILE.glob("*.py"))
GPU_CHECKS = {"many_gpus"}
PICKLE_MARKER = Path("/tmp/labkit-hostile-pickle-marker")
SLEEP_MARKER = b"987654"
HIDDEN_MARKER = "HIDDEN-CHECKS-MARKER-5d41402a"
HIDDEN_CHECKS = f'''
from labkit.checks import check, expect

MARKER = "{HIDDEN_MARKER}"


@check(points=1, title="a hidden check")
def secret_adds(sub):
    expect(sub.call("add", 20, 22) == 42, "add(20, 22) should be 42")
'''

# Attacks that found a hole in labkit: each is described in its reason; strict, so a fix shows up at once.
HOLES: dict[str, str] = {}


def parse(path: Path) -> dict:
    """The attack's docstring: its summary line, EXPECT (check -> allowed statuses), NEEDS and BESIDE."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    expect: dict[str, set[str]] = {}
    needs = beside = None
    for line in doc.splitlines():
        if line.startswith("EXPECT:"):
            for item in line.removeprefix("EXPECT:").split():
                name, allowed = item.split("=")
                expect[name] = set(allowed.split("|"))
        elif line.startswith("NEEDS:"):
            needs = line.removeprefix("NEEDS:").strip()
        elif line.startswith("BESIDE:"):
            beside = line.removeprefix("BESIDE:").strip()
    companion = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["COMPANION"]:
            companion = ast.literal_eval(node.value)
    return {"summary": doc.splitlines()[0] if doc else "", "expect": expect, "needs": needs, "beside": beside,
            "companion": companion}


def allowed(spec: dict, name: str) -> set[str]:
    return spec["expect"].get(name, spec["expect"].get("others", {"passed"}))


def sleepers() -> list[int]:
    """Host pids of processes whose command line carries the setsid attack's marker (`sleep 987654`)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            args = cmdline.split(b"\0")
            if args[0].endswith(b"sleep") and SLEEP_MARKER in args[1:]:
                found.append(int(entry))
    return found


def stray_course_files() -> list[Path]:
    root = HERE.parent
    return [p for p in (root / "labkit", root / "exercises", root / "exercises" / "exercise1", root / "tests", root)
            if (p / "_hostile_write_probe.txt").exists()]


def grade_with_watchdog(worker, exercise, path: Path, seconds: float, **kwargs) -> tuple[Report, bool]:
    """Grade, and whether the grader was still busy after `seconds` with a FIFO in a check's folder.

    The grading stays in this (the main) thread: bubblewrap's --die-with-parent is tied to the thread that
    started the worker, so a worker started in a short-lived thread would die with it. A helper thread
    waits instead, and once `seconds` have passed it opens every FIFO in the worker's folders for writing
    (then closes it), so a grader stuck opening one reads EOF and goes on.
    """
    done = threading.Event()
    stuck = threading.Event()

    def watch() -> None:
        if done.wait(seconds):
            return
        while not done.is_set():
            for folder, _, files in os.walk(worker.scratch.work):
                for name in files:
                    full = os.path.join(folder, name)
                    try:
                        if stat.S_ISFIFO(os.lstat(full).st_mode):
                            os.close(os.open(full, os.O_WRONLY | os.O_NONBLOCK))
                            stuck.set()
                    except OSError:
                        pass
            done.wait(0.5)

    helper = threading.Thread(target=watch, daemon=True)
    helper.start()
    try:
        report = grade(exercise, path, worker=worker, **kwargs)
    finally:
        done.set()
        helper.join()
    return report, stuck.is_set()


def params():
    out = []
    for path in FILES:
        marks = []
        if path.stem in HOLES:
            marks.append(pytest.mark.xfail(strict=True, reason=HOLES[path.stem]))
        out.append(pytest.param(path, id=path.stem, marks=marks))
    return out


def test_the_corpus_is_complete_and_well_formed():
    assert len(FILES) >= 30
    for path in FILES:
        spec = parse(path)
        assert spec["summary"] and spec["expect"], path.name
        assert spec["needs"] in (None, "bwrap"), path.name
        for name, statuses_ in spec["expect"].items():
            assert statuses_ <= {"passed", "failed", "error", "skipped", "inconclusive"}, (path.name, name)
        assert (spec["beside"] is None) == (spec["companion"] is None), path.name


@pytest.mark.parametrize("path", params())
def test_hostile_submission(worker, tmp_path, path):
    spec = parse(path)
    if spec["needs"] == "bwrap" and worker.sandbox not in ("bwrap", "container"):
        pytest.skip(f"{path.stem} is only safe and meaningful inside a sandbox, bubblewrap or a container (this "
                    f"worker: {worker.sandbox}); install bubblewrap to run it")
    source = path.read_text(encoding="utf-8")
    kwargs: dict = {}
    listener = None
    if "__HOST_PORT__" in source:  # a socket in the host that the sandboxed code must not reach
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        source = source.replace("__HOST_PORT__", str(listener.getsockname()[1]))
    if path.stem == "read_hidden_checks":
        (tmp_path / "checks" / "exercise99").mkdir(parents=True)
        (tmp_path / "checks" / "exercise99" / "checks.py").write_text(HIDDEN_CHECKS, encoding="utf-8")
        kwargs["checks_dir"] = tmp_path / "checks"
    student = tmp_path / "exercise99.py"
    student.write_text(source, encoding="utf-8")
    if spec["beside"]:
        (tmp_path / spec["beside"]).write_text(spec["companion"], encoding="utf-8")
    PICKLE_MARKER.unlink(missing_ok=True)

    start = time.monotonic()
    try:
        patience = 8.0 if path.stem == "fifo_output" else 25.0  # a known hang: do not wait long for it
        report, hung = grade_with_watchdog(worker, resolve("exercise99", TOY), student, patience, **kwargs)
    finally:
        if path.stem == "worker_memory_write":
            worker.stop()  # whatever the attack did to the worker's memory, the next test starts a fresh one
    elapsed = time.monotonic() - start
    assert not hung, f"{path.stem}: the grader was blocked on a FIFO after {patience:g} s"
    assert elapsed < 60, f"{path.stem}: grading took {elapsed:.0f} s"

    got = statuses(report)
    assert got.get("many_gpus") == "skipped"
    for name, status in got.items():
        if name in GPU_CHECKS:
            continue
        ok = allowed(spec, name)
        r = result(report, name)
        assert status in ok, f"{path.stem}: {name} {status} (allowed {sorted(ok)}): {r.message}"
        if "passed" not in ok:
            assert r.points == 0, (path.stem, name, r.points)
    assert report.score <= sum("passed" in allowed(spec, n) for n in got if n not in GPU_CHECKS)

    # What each attack must also not have achieved.
    outputs = "\n".join(r.output for r in report.results)
    assert not PICKLE_MARKER.exists(), "a pickle payload ran in the grader"
    if path.stem == "setsid_grandchild":
        assert "killed" in result(report, "adds").message and "left running" in result(report, "adds").message
        assert not sleepers(), "the setsid() grandchild outlived its check"
    if path.stem == "output_flood":
        assert len(result(report, "adds").output) < 20_000 and "more bytes not shown" in result(report, "adds").output
    if path.stem == "symlink_output_passwd":
        assert "root:" not in outputs, "the grader showed the file the output symlink points to"
    if path.stem == "symlink_output_solution":
        secret = (solutions_root() / "exercise1.py").read_text(encoding="utf-8").splitlines()[0]
        assert secret not in outputs, "the grader showed a hidden solution through the output symlink"
    if path.stem == "write_into_course":
        stray = stray_course_files()
        for p in stray:
            (p / "_hostile_write_probe.txt").unlink()
        assert not stray
    if listener is not None:
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected from inside the sandbox
        listener.close()
    if path.stem in ("fork_bomb", "thread_bomb") and result(report, "adds").status == "error":
        assert "labkit killed" in result(report, "adds").message


def test_same_wrong_submission_same_verdicts_twenty_times(worker, tmp_path):
    student = tmp_path / "exercise99.py"
    student.write_text((HOSTILE / "fake_pass_print.py").read_text(encoding="utf-8"), encoding="utf-8")
    exercise = resolve("exercise99", TOY)
    seen = set()
    for _ in range(20):
        report = grade(exercise, student, worker=worker)
        seen.add(tuple((r.name, r.status, r.points, r.message.splitlines()[0] if r.message else "")
                       for r in report.results))
    assert len(seen) == 1, seen
    (verdicts,) = seen
    assert {name: status for name, status, _, _ in verdicts} == {
        "adds": "failed", "scales": "passed", "writes": "passed", "builds": "passed", "adds_again": "failed",
        "many_gpus": "skipped"}


def test_a_batch_goes_on_after_hostile_files(worker, tmp_path):
    exercise = resolve("exercise99", TOY)
    for stem in ("kill_worker", "os_exit_in_call", "memory_bomb", "cpu_spin", "output_flood"):
        spec = parse(HOSTILE / f"{stem}.py")
        student = tmp_path / stem / "exercise99.py"
        student.parent.mkdir()
        student.write_text((HOSTILE / f"{stem}.py").read_text(encoding="utf-8"), encoding="utf-8")
        report = grade(exercise, student, worker=worker)
        for name, status in statuses(report).items():
            if name not in GPU_CHECKS:
                assert status in allowed(spec, name), (stem, name, status, result(report, name).message)
    report = grade(exercise, SOLUTION, worker=worker)
    assert (report.score, report.max_score) == (5, 5), statuses(report)


@pytest.mark.slow
def test_faked_clock_in_a_speed_check_fails(worker, tmp_path):
    """exercise6's speed check: epoch times from a perf_counter that runs 3x slower for one worker are caught.

    The launcher's own clock catches it: the epochs then add up to more than the single worker ran.
    """
    fake_clock = '''

import time as _real_time


class _SlowClock:
    """time, but perf_counter runs 3x slower while a single worker trains: a fake 3x speedup."""

    world_size = 2

    def __getattr__(self, name):
        return getattr(_real_time, name)

    def perf_counter(self):
        now = _real_time.perf_counter()
        return now * 3 if _SlowClock.world_size == 1 else now


time = _SlowClock()
_real_worker = worker


def worker(rank, world_size, cfg):
    _SlowClock.world_size = world_size
    return _real_worker(rank, world_size, cfg)
'''
    student = tmp_path / "exercise6.py"
    student.write_text((solutions_root() / "exercise6.py").read_text(encoding="utf-8") + fake_clock, encoding="utf-8")
    report = grade(resolve("exercise6"), student, worker=worker, only=["two_workers_faster"])
    r = result(report, "two_workers_faster")
    assert r.status == "failed" and r.points == 0, (r.status, r.message)
    # Either guard may catch it: epochs longer than the worker ran, or a speedup the launcher's clock denies.
    assert "by the launcher's clock" in r.message or "not divided or estimated" in r.message, r.message


def test_zz_the_grader_survived_everything(worker):
    """Runs last: the shared worker (restarted as needed) still grades the reference solution 5/5."""
    report = grade(resolve("exercise99", TOY), SOLUTION, worker=worker)
    assert (report.score, report.max_score) == (5, 5), statuses(report)
    assert [r.status for r in report.results] == ["passed"] * 5 + ["skipped"]
    assert not re.search(r"labkit (killed|restarted)", " ".join(r.message for r in report.results))
