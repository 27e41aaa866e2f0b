"""The sandbox: chosen when it works, refused clearly when asked for and impossible, and what it hides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labkit.sandbox import bwrap
from labkit.sandbox.errors import SandboxError
from labkit.sandbox.modes import choose
from labkit.sandbox.scratch import Scratch
from labkit.sandbox.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
needs_bwrap = pytest.mark.skipif(bool(bwrap.bwrap_works()), reason=f"no bubblewrap sandbox here: "
                                 f"{bwrap.bwrap_works()} (.ci/run installs it)")


def test_auto_falls_back_and_bwrap_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(bwrap, "bwrap_works", lambda: "bubblewrap is not installed (apt-get install bubblewrap)")
    assert choose("auto") == "none" and choose("none") == "none"
    with pytest.raises(SandboxError, match="apt-get install bubblewrap"):
        choose("bwrap")
    with pytest.raises(SandboxError, match="unknown sandbox"):
        choose("docker")


def test_command_hides_the_repository_and_isolates(tmp_path):
    scratch = Scratch()
    try:
        argv = bwrap.command(["python"], inputs=scratch.inputs, work=scratch.work)
    finally:
        scratch.remove()
    for flag in ("--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session"):
        assert flag in argv
    bound = {argv[i + 1] for i, a in enumerate(argv) if a in ("--ro-bind", "--bind")}
    assert str(ROOT / "labkit") in bound and str(ROOT) not in bound  # never the whole checkout: solutions/ stay out
    assert not any("solutions" in b for b in bound)
    assert argv[argv.index("--bind") + 1] == str(scratch.work)  # the only writable place besides private tmpfs


@needs_bwrap
def test_inside_the_sandbox(tmp_path):
    secret = ROOT / "solutions" / "exercise1.py"
    (tmp_path / "other-student.py").write_text("# another student's work, in the host's /tmp\n")
    code = ("import os, socket, sys\n"
            f"print('solutions', os.path.exists({str(secret)!r}))\n"
            f"print('other', os.path.exists({str(tmp_path / 'other-student.py')!r}))\n"
            "print('pid', os.getpid() < 10)\n"
            "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); print('net True')\n"
            "except OSError:\n    print('net False')\n"
            f"try:\n    open({str(ROOT / 'labkit' / 'x.py')!r}, 'w'); print('write True')\n"
            "except OSError:\n    print('write False')\n"
            "print('uid', os.getuid())\n")
    scratch = Scratch(owner=bwrap.NOBODY if bwrap.as_nobody() else None)
    try:
        argv = bwrap.command([sys.executable, "-I", "-c", code], inputs=scratch.inputs, work=scratch.work)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
    finally:
        scratch.remove()
    facts = dict(line.split(" ", 1) for line in out.splitlines())
    assert facts["solutions"] == "False" and facts["net"] == "False" and facts["write"] == "False", out
    assert facts["other"] == "False"  # a private /tmp
    assert facts["pid"] == "True"  # a PID namespace of its own
    if bwrap.as_nobody():
        assert facts["uid"] == str(bwrap.NOBODY)


@needs_bwrap
def test_a_sandboxed_worker_grades_and_says_so(tmp_path):
    from labkit.course.course import resolve
    from labkit.grading.engine import grade

    toy = ROOT / "tests" / "toy"
    with Worker("bwrap") as worker:
        report = grade(resolve("exercise99", toy), toy / "exercise99" / "solution.py", worker=worker)
        assert report.sandbox == "bwrap" and report.score == report.max_score == 5
        inputs = worker.scratch.inputs
        assert not any(inputs.iterdir())  # the student's copy is gone before the next student


def test_the_container_command_has_every_limit_and_mounts_only_the_worker_folders(tmp_path, monkeypatch):
    from labkit.sandbox import container

    monkeypatch.setenv(container.STORAGE_ENV, "--root /x/storage --runroot /x/run --runtime runc")
    monkeypatch.delenv(container.IMAGE_ENV, raising=False)
    monkeypatch.setattr(container, "engine", lambda: "podman")
    run = container.command("print(1)", inputs=tmp_path / "in", work=tmp_path / "work", container="w1")
    assert run[:7] == ["podman", "--root", "/x/storage", "--runroot", "/x/run", "--runtime", "runc"]
    for flag in ("--network=none", "--read-only", "--pids-limit", "--memory", "--cpus", "--cap-drop",
                 "no-new-privileges"):
        assert flag in run, flag
    mounts = [run[i + 1] for i, a in enumerate(run) if a == "-v"]
    assert mounts == [f"{tmp_path / 'in'}:{tmp_path / 'in'}:ro", f"{tmp_path / 'work'}:{tmp_path / 'work'}:rw"]
    assert "--user" in run or "--userns=keep-id" in run
    # the student image by default: the grader image holds the solutions, and the worker must never reach them
    assert run[-4:] == ["localhost/labkit:student", "-I", "-c", "print(1)"]
    assert "LABKIT_PRIVATE_TMP=1" in run  # its /tmp and /dev/shm are its own: emptied after every check


def test_the_control_socket_is_one_shot():
    import socket
    import tempfile

    from labkit.sandbox import container

    folder = Path(tempfile.mkdtemp(prefix="lk-"))  # like the worker's scratch: a short path (AF_UNIX limit)
    listener, path = container.listen(folder, None)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    client.connect(path)
    conn = container.accept(listener, 5)
    conn.send(b"ready")
    assert client.recv(16) == b"ready"
    assert not Path(path).exists()  # nothing left for the submission to connect to
    late = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with pytest.raises(OSError):
        late.connect(path)
    code = container.bootstrap(path, ["torch._dynamo"], True)
    assert "s.connect(" in code and "main(s.detach(), ['torch._dynamo'], True)" in code
    folder.rmdir()


def test_container_mode_is_refused_clearly_without_podman_or_image(monkeypatch):
    from labkit.sandbox import container

    monkeypatch.setattr(container.shutil, "which", lambda name: None)
    with pytest.raises(SandboxError, match="neither podman nor docker"):
        choose("container")
