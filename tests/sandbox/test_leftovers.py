"""However a run ends (a signal, Ctrl-C, a traceback, a worker that will not start), nothing stays behind: no
folder in the temporary directory, no process of the student's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A submission that hangs in the first check's call and leaves a process of its own behind, in its own session
# (out of reach of the check's process group): `MARKER` in its command line finds it.
HANGING = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "MARKER"], start_new_session=True)

def pick_device(*args, **kwargs):
    time.sleep(600)
"""


def marked(marker: str) -> list[int]:
    """Live processes with `marker` in their command line."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in cmdline and state != b"Z":
                found.append(int(entry))
    return found


def wait_for(what, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def labkit(tmp: Path, *args: str, code: str = "") -> subprocess.Popen:
    """`python -m labkit ARGS` (or `code` that ends in main()) with TMPDIR=`tmp`, in the repository."""
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "labkit"]
    env = dict(os.environ, TMPDIR=str(tmp), LABKIT_LANG="en")
    return subprocess.Popen([*argv, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def stop(proc: subprocess.Popen, signum: int) -> tuple[float, str]:
    """Send `signum`; (seconds until it exited, its stderr)."""
    proc.send_signal(signum)
    sent = time.monotonic()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return time.monotonic() - sent, err


def folders(tmp: Path, prefix: str) -> list[Path]:
    return [p for p in tmp.iterdir() if p.name.startswith(prefix)]


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    """The run's TMPDIR: tempfile makes every labkit-* folder there."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_worker_starts_leaves_nothing(tmp, signum):
    proc = labkit(tmp, "check", "exercise1", "--file", "solutions/exercise1.py", "--sandbox", "none")
    wait_for(lambda: folders(tmp, "labkit-worker-"))
    seconds, err = stop(proc, signum)
    assert proc.returncode == 128 + signum, err
    assert seconds < 10, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("labkit: "), err
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_a_hanging_check_kills_it_and_leaves_nothing(tmp, tmp_path, signum):
    marker = f"labkit-leftover-{uuid.uuid4().hex}"
    student = tmp_path / "exercise1.py"
    student.write_text(HANGING.replace("MARKER", marker), encoding="utf-8")
    proc = labkit(tmp, "check", "exercise1", "--file", str(student), "--sandbox", "none")
    wait_for(lambda: marked(marker))  # the student's code runs in the first check, which would wait 20 s
    seconds, err = stop(proc, signum)
    assert proc.returncode == 128 + signum, err
    assert seconds < 8, f"took {seconds:.1f} s to stop: it waited for the check instead"
    assert "Traceback" not in err, err
    assert list(tmp.iterdir()) == []
    wait_for(lambda: not marked(marker), 5)  # killed by the worker as it closed, not left to run for 10 minutes


def test_sigterm_while_a_class_is_graded_leaves_nothing_and_records_nothing(tmp, tmp_path):
    marker = f"labkit-leftover-{uuid.uuid4().hex}"
    for who in ("alice", "bob"):
        (tmp_path / "class" / who).mkdir(parents=True)
        (tmp_path / "class" / who / "exercise1.py").write_text(HANGING.replace("MARKER", marker), encoding="utf-8")
    out = tmp_path / "grades"
    proc = labkit(tmp, "grade", str(tmp_path / "class"), "-e", "exercise1", "--jobs", "2", "--sandbox", "none",
                  "--out", str(out))
    wait_for(lambda: len(marked(marker)) == 2)  # both students' first checks hang, each in its grading thread
    assert len(folders(tmp, "labkit-grade-")) == 2 and folders(tmp, "labkit-staging-")
    seconds, err = stop(proc, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert seconds < 15, f"took {seconds:.1f} s to stop"
    assert list(tmp.iterdir()) == []  # the grading threads unwound: their labkit-grade-* and workers are gone
    assert not list(out.glob("students/*.json"))  # an interrupted student has no verdict, not even an error
    wait_for(lambda: not marked(marker), 5)


BROKEN_LINE = """
from labkit.grading import report
def check_line(*args, **kwargs):
    raise RuntimeError("a bug in labkit")
report.check_line = check_line
"""
NO_WORKER = """
import subprocess
class Popen(subprocess.Popen):
    def __init__(self, args, *rest, **kwargs):
        if "-I" in args:  # the grading worker's `python -I`
            raise OSError("the worker cannot start")
        super().__init__(args, *rest, **kwargs)
subprocess.Popen = Popen
"""


@pytest.mark.parametrize("patch, error", [(BROKEN_LINE, "RuntimeError: a bug in labkit"),
                                          (NO_WORKER, "OSError: the worker cannot start")])
def test_a_run_that_ends_in_a_traceback_leaves_nothing(tmp, patch, error):
    code = patch + "\nimport sys\nfrom labkit.cli.main import main\nsys.argv[0] = 'labkit'\nmain()\n"
    proc = labkit(tmp, "check", "exercise1", "--file", "solutions/exercise1.py", "--sandbox", "none", code=code)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and error in err, err
    assert list(tmp.iterdir()) == []


HOPPER = """
import os, sys, time
out = int(sys.argv[1])
end = time.monotonic() + 8  # never longer, even if the test fails
while time.monotonic() < end:
    if os.fork():
        os._exit(0)  # the child carries on: a new pid every hop, each one an orphan
    os.setsid()  # out of every process group a group kill would reach
    os.write(out, b".")
"""

REAPER = """
import json, os, select, subprocess, sys, time
from labkit.sandbox import reaper
reaper.become_subreaper()  # as the worker is: every orphan of the tree comes back to us
r, w = os.pipe()
subprocess.Popen([sys.executable, "-c", sys.argv[1], str(w), sys.argv[2]], pass_fds=(w,))
os.close(w)
hops = 0
deadline = time.monotonic() + 0.5
while time.monotonic() < deadline:  # let it hop a few hundred times first
    if select.select([r], [], [], 0.05)[0]:
        hops += len(os.read(r, 1 << 16))
started = time.monotonic()
killed = reaper.kill_tree(os.getpid())
seconds = time.monotonic() - started
deadline, alive = time.monotonic() + 3, True  # the write end closes when the last hopper is gone
while alive and time.monotonic() < deadline:
    if select.select([r], [], [], 0.1)[0]:
        data = os.read(r, 1 << 16)
        alive = bool(data)
print(json.dumps({"hops": hops, "killed": killed, "seconds": seconds, "alive": alive}))
"""


def test_kill_tree_kills_a_process_that_keeps_forking_and_exiting():
    marker = f"labkit-hopper-{uuid.uuid4().hex}"
    done = subprocess.run([sys.executable, "-c", REAPER, HOPPER, marker], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result["hops"] > 20, result  # it was hopping: a new pid every time
    assert result["killed"] >= 1 and not result["alive"], result
    assert result["seconds"] < 5, result
    assert not marked(marker)


@pytest.mark.skipif(os.geteuid() != 0 or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root, to run a Python as nobody (a check as another user locks its own folders)")
def test_folders_a_check_locked_are_removed_by_their_owner():
    base = Path(tempfile.mkdtemp(prefix="labkit-test-", dir="/tmp"))  # nobody must reach it: not under tmp_path
    base.chmod(0o777)
    # a copy of the package nobody can read: CI's checkout lies below a private (0700) folder
    shutil.copytree(ROOT / "labkit", base / "pkg" / "labkit", ignore=shutil.ignore_patterns("__pycache__"))
    for folder in (base / "pkg", *(p for p in (base / "pkg").rglob("*") if p.is_dir())):
        folder.chmod(0o755)
    code = f"""
import os, sys
sys.path.insert(0, {str(base / "pkg")!r})
from pathlib import Path
from labkit.sandbox.scratch import remove_tree
top = Path({str(base)!r}) / "scratch"
(top / "a" / "b" / "c").mkdir(parents=True)
(top / "a" / "b" / "c" / "out.txt").write_text("x")
os.chmod(top / "a" / "b", 0o000)  # cannot be listed, entered or emptied
os.chmod(top / "a", 0o500)  # its entries cannot be removed
print(remove_tree(top), top.exists())
"""
    try:
        done = subprocess.run(["/usr/bin/python3", "-c", code], user=65534, group=65534, capture_output=True,
                              text=True, timeout=60, cwd="/")
        assert done.stdout.split() == ["True", "False"], done.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_scratch_left_open_is_removed_at_exit(tmp):
    code = ("import sys; from labkit.sandbox.scratch import Scratch; s = Scratch(); "
            "(s.work / 'f').write_text('x'); print(s.root); sys.exit(3)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, TMPDIR=str(tmp)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout.strip().startswith(str(tmp))
    assert list(tmp.iterdir()) == []
