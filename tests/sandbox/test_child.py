"""The worker's own machinery: waiting on a check's child, preloading, huge pages, and `preload` in exercise.toml."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.course.catalog import CatalogError, load_exercise
from labkit.course.course import resolve
from labkit.grading.engine import grade
from labkit.sandbox import child as worker_mod
from labkit.sandbox.worker import Worker

TOY = Path(__file__).parent.parent / "toy"


def _child(seconds: float, code: int) -> int:
    """A forked child in its own process group (as serve_child makes it), once that group exists."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()  # the worker kills the child's process group
        os.close(w)
        time.sleep(seconds)
        os._exit(code)
    os.close(w)
    os.read(r, 1)  # EOF once the child has closed its end: setsid() is done
    os.close(r)
    return pid


@pytest.fixture(params=["pidfd", "polling"])
def wait_mode(request, monkeypatch):
    if request.param == "polling":  # a kernel or seccomp profile without pidfd_open

        def refuse(pid: int) -> int:
            raise OSError("pidfd_open refused")

        monkeypatch.setattr(os, "pidfd_open", refuse)
    return request.param


def test_wait_child_returns_the_exit_status_soon_after_exit(wait_mode):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours, theirs:
        start = time.monotonic()
        assert worker_mod._wait_child(ours, _child(0.2, 3)) == 3
        assert time.monotonic() - start < 2.0


def test_wait_child_kills_on_request_and_stops_when_the_grader_goes(wait_mode):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with ours:
        theirs.send(b'{"op": "kill"}')
        assert worker_mod._wait_child(ours, _child(30, 0)) == -9  # SIGKILL, not 30 s later
        theirs.close()  # the grader is gone (closed first: a forked child would keep a copy open)
        pid = _child(30, 0)
        assert worker_mod._wait_child(ours, pid) is None  # the child is killed, the worker told to stop
        os.waitpid(pid, 0)


def test_preload_imports_modules_and_leaves_missing_ones_to_the_check():
    sys.modules.pop("colorsys", None)
    worker_mod._preload(["colorsys", "labkit_no_such_module"])
    assert "colorsys" in sys.modules


def _anon_huge_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("AnonHugePages:"))


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="needs Linux /proc/self/smaps_rollup")
def test_collapse_backs_anonymous_memory_with_huge_pages():
    code = ("import os, sys; from labkit.sandbox import hugepages; b = bytearray(64 << 20); "
            "b[::4096] = b'x' * len(b[::4096]); "
            "print(hugepages.collapse())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    collapsed = int(out)
    if collapsed == 0:
        pytest.skip("this kernel cannot collapse memory into huge pages (MADV_COLLAPSE needs Linux 6.1+ and THP)")
    assert collapsed >= 32  # most of the 64 MiB buffer, whole 2 MiB pages only


def test_a_worker_with_preload_and_huge_pages_grades_the_same(tmp_path):
    exercise = resolve("exercise99", TOY)
    path = tmp_path / "exercise99.py"
    shutil.copyfile(TOY / "exercise99" / "solution.py", path)
    with Worker("none") as plain, Worker("none", preload=["colorsys"], huge_pages=True) as tuned:
        reports = [grade(exercise, path, worker=w) for w in (plain, tuned, tuned)]  # the third after collapsing
    verdicts = [[(r.name, r.status) for r in rep.results] for rep in reports]
    assert verdicts[0] == verdicts[1] == verdicts[2]
    assert reports[0].score == reports[0].max_score


@pytest.mark.parametrize("value", ['["os; rm -rf /"]', '"torch._dynamo"', "[1]", '["torch..x"]'])
def test_preload_must_be_a_list_of_module_names(tmp_path, value):
    folder = tmp_path / "exercise98"
    folder.mkdir()
    (folder / "exercise.toml").write_text(f'id = "exercise98"\ntitle = "t"\norder = 1\npoints = 1\npreload = {value}\n')
    with pytest.raises(CatalogError, match="preload must be a list of module names"):
        load_exercise(folder)


def test_preload_of_the_curriculum():
    assert resolve("exercise2").preload == ("torch._dynamo",)
    # an operation on the meta device (exercise1's build_on and sum_on checks) imports torch._dynamo lazily, 1 s in
    # every check's child unless the worker has it: class grading fell from 830 to 97 students a minute without it
    assert resolve("exercise1").preload == ("torch._dynamo",)
    assert resolve("exercise3").preload == ()  # environment variables and device counts: nothing lazy to pay for


def test_an_operation_on_meta_imports_dynamo_lazily():
    """Why exercise1 preloads it: the claim above, held against this torch (a newer one may stop needing it)."""
    code = ("import sys, torch; a = 'torch._dynamo' in sys.modules; torch.ones(2, device='meta') + 1; "
            "print(a, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


SLOW_MODULE = """
import pathlib, time
here = pathlib.Path(__file__).parent
(here / "started").touch()
deadline = time.monotonic() + 60
while not (here / "release").exists() and time.monotonic() < deadline:
    time.sleep(0.05)
"""


def test_a_slow_preload_never_holds_up_the_check_it_runs_beside(tmp_path):
    """The worker imports `preload` in a thread while the first child runs: the grader hears 'exited' at once (a
    single --only check never waits for it), and the next fork waits for the import to end."""
    from labkit.paths import IMPORT_ROOT

    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "labkit_slow_preload.py").write_text(SLOW_MODULE)

    class SlowPreload(Worker):
        def _argv(self, fd: int) -> list[str]:
            code = (f"import sys; sys.path[:0] = [{str(mods)!r}, {str(IMPORT_ROOT)!r}]; "
                    f"from labkit.sandbox.child import main; main({fd}, ['labkit_slow_preload'], False)")
            return [sys.executable, "-I", "-c", code]

    exercise = resolve("exercise99", TOY)
    path = tmp_path / "exercise99.py"
    shutil.copyfile(TOY / "exercise99" / "solution.py", path)
    with SlowPreload("none") as worker:
        start = time.monotonic()
        first = grade(exercise, path, worker=worker, only=["adds"])
        assert time.monotonic() - start < 30  # the import blocks for 60 s: the check did not wait for it
        assert (mods / "started").exists() and not (mods / "release").exists()
        pid = worker.proc.pid
        (mods / "release").touch()
        second = grade(exercise, path, worker=worker, only=["adds", "scales"])  # its fork joins the import
        assert worker.proc.pid == pid  # the same worker all along: nothing timed out, nothing restarted
    assert [r.status for r in first.results + second.results] == ["passed"] * 3
