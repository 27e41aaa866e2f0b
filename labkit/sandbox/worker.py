"""The grader's handle on its worker: a pre-imported process that forks a child per check, sandboxed as asked.

The grader (this process) talks to `labkit.sandbox.child` over a socket; each check
gets its own child and its own pair of pipes, so a crash, a hang or a stray
byte in one check cannot reach the next. Every wait has a deadline.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path

from labkit.paths import IMPORT_ROOT
from labkit.sandbox import bwrap, container
from labkit.sandbox.errors import SandboxError, WorkerFailed
from labkit.sandbox.scratch import Scratch
from labkit.sandbox.session import START_SECONDS, Limits, Session

MODES = ("auto", "bwrap", "container", "none")
PROCESSES = 512  # RLIMIT_NPROC for a sandboxed uid: DDP checks need ~100 tasks (threads count), a fork bomb stops


class Worker:
    """A `python -I` process with torch imported, forking one child per check; in bubblewrap when asked."""

    def __init__(self, sandbox: str = "none", preload: Collection[str] = (), huge_pages: bool = False) -> None:
        self.preload = sorted(set(preload))  # modules the worker imports once for all its children (exercise.toml)
        self.huge_pages = huge_pages  # cheaper forks for ~0.6 s once: worth it for a class, not for one check
        self.sandbox = choose(sandbox)  # "bwrap" or "none", what reports say
        self.proc: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None
        nobody = self.sandbox == "bwrap" and bwrap.as_nobody()
        self.uid = bwrap.NOBODY if nobody else None  # the worker's own uid, when it has one
        owner = container.owner() if self.sandbox == "container" else self.uid
        self.scratch = Scratch(owner=owner)  # kept across restarts; removed by close()
        self.container: str | None = None  # the running container's name
        self._log = None  # the starting worker's stderr until it says it is ready
        self._listener: socket.socket | None = None  # container mode: where the worker connects back

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = str(IMPORT_ROOT)
        start = f"from labkit.sandbox.child import main; main({child.fileno()}, {self.preload!r}, {self.huge_pages})"
        code = f"import sys; sys.path.append({root!r}); {start}"
        argv = [sys.executable, "-I", "-c", code]
        if self.sandbox == "bwrap":
            argv = bwrap.command(argv, inputs=self.scratch.inputs, work=self.scratch.work)
        elif self.sandbox == "container":  # the image's own labkit; it connects back through the mounted folder
            self.container = container.name()
            self._listener, path = container.listen(self.scratch.work, self.scratch.owner)
            code = container.bootstrap(path, self.preload, self.huge_pages)
            argv = container.command(code, inputs=self.scratch.inputs, work=self.scratch.work, container=self.container)
        log = tempfile.TemporaryFile()  # the worker's own stderr, shown if it fails to start
        self.proc = subprocess.Popen(argv, pass_fds=(child.fileno(),), start_new_session=True,
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        child.close()
        self.ctl, self._log = parent, log  # not waited for here: the grader imports torch meanwhile (both cores)

    def ready(self) -> None:
        """Wait, once, for the started worker to say it has imported torch; WorkerFailed if it never does."""
        if self._log is None:
            return
        log, self._log = self._log, None
        if self._listener is not None:  # a container: its worker's one connection becomes the control socket
            self.ctl = container.accept(self._listener, START_SECONDS) or self.ctl
            self._listener = None
        msg = self.receive(time.monotonic() + START_SECONDS)
        if msg is None or msg.get("kind") != "worker-ready":
            self.stop()
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-1:]
            raise WorkerFailed(f"the grading worker did not start: {tail[0] if tail else 'no output'}"
                               " (is torch installed? `make install` sets everything up)")
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """End the worker process (the next session starts a fresh one); staged files stay."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.ctl is not None:
            self.ctl.close()
            self.ctl = None
        if self.proc is not None:
            _kill_group(self.proc.pid)  # bwrap's --die-with-parent and PID namespace take the sandbox down too
            self.proc.wait()
            self.proc = None
        if self.container is not None:  # a container outlives its `podman run`
            container.remove(self.container)
            self.container = None

    def close(self) -> None:
        self.stop()
        self.scratch.remove()

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session(self, *, student: Path, checks: Path, module: str, workdir: Path, limits: Limits,
                seed: int) -> Session:
        """Fork a fresh child for one check; it imports the student's file and waits for calls."""
        if not self.alive():
            self.stop()
            self.start()
        self.ready()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        job = {"student": str(student), "checks": str(checks), "module": module, "workdir": str(workdir),
               "seed": seed, "nonce": secrets.token_hex(8),
               "limits": dict(limits.__dict__, processes=PROCESSES if self.uid is not None else None)}
        try:
            socket.send_fds(self.ctl, [json.dumps(job).encode()], [req_r, rep_w])
        finally:
            os.close(req_r)
            os.close(rep_w)
        return Session(self, req_w, rep_r, job, limits)  # the caller opens it, then closes it

    def kill_child(self) -> None:
        """Ask the worker to kill the running check's child and its process group."""
        try:
            self.ctl.send(json.dumps({"op": "kill"}).encode())
        except (OSError, AttributeError):
            pass

    def receive(self, deadline: float) -> dict | None:
        """One message from the worker, or None when it is gone or late."""
        ready = select.select([self.ctl], [], [], max(0.0, deadline - time.monotonic()))[0]
        if not ready:
            return None
        try:
            data = self.ctl.recv(1 << 16)
        except OSError:
            return None
        return json.loads(data) if data else None


def choose(mode: str) -> str:
    """The sandbox to use for `mode`: auto picks bwrap when it works; asking for bwrap where it cannot is an error."""
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "none":
        return "none"
    if mode == "container":
        reason = container.works()
        if reason:
            raise SandboxError(f"--sandbox container: {reason}")
        return "container"
    reason = bwrap.bwrap_works()
    if mode == "bwrap" and reason:
        raise SandboxError(f"--sandbox bwrap: {reason}")
    return "none" if reason else "bwrap"


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
