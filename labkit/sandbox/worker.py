"""The grader's handle on its worker: a pre-imported process that forks a child per check, sandboxed as asked.

The grader (this process) talks to `labkit.sandbox.child` over a socket; each check
gets its own child and its own pair of pipes, so a crash, a hang or a stray
byte in one check cannot reach the next. Every wait has a deadline.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection
from pathlib import Path

from labkit.paths import IMPORT_ROOT
from labkit.sandbox import bwrap, container, env, reaper
from labkit.sandbox.errors import WorkerFailed
from labkit.sandbox.modes import choose
from labkit.sandbox.scratch import Scratch
from labkit.sandbox.session import START_SECONDS, Limits, Session

PROCESSES = 512  # RLIMIT_NPROC for a sandboxed uid: DDP checks need ~100 tasks (threads count), a fork bomb stops
END_SECONDS = 1.0  # at most, a closed worker's time to kill its running check's processes itself
THREAD_SECONDS = 5.0  # at exit, how long threads still grading (a class) get to unwind and close their workers

_live: set[Worker] = set()  # workers not closed yet, ended at exit whatever thread holds them
_stopping = 0  # the signal labkit is ending on (set by the CLI's handler, or at exit); 0 while it runs


class Stopping(SystemExit):
    """labkit is ending (a signal): a wait on a worker stops here, and the thread unwinds without a verdict."""


def stopping(signum: int) -> None:
    """From now on every worker refuses to start, fork or wait: the CLI calls it from its signal handler."""
    global _stopping
    _stopping = _stopping or signum


def _refuse_if_stopping() -> None:
    if not _stopping:
        return
    if _stopping == signal.SIGINT and threading.current_thread() is threading.main_thread():
        raise KeyboardInterrupt  # as Ctrl-C is anywhere else in the main thread (`labkit watch` stops on it)
    raise Stopping(128 + _stopping)


class Worker:
    """A `python -I` process with torch imported, forking one child per check; in bubblewrap when asked."""

    def __init__(self, sandbox: str = "none", preload: Collection[str] = (), huge_pages: bool = False) -> None:
        self.preload = sorted(set(preload))  # modules the worker imports once for all its children (exercise.toml)
        self.huge_pages = huge_pages  # cheaper forks for ~0.6 s once: worth it for a class, not for one check
        self.sandbox = choose(sandbox)  # "bwrap", "container", "user" or "none": what reports say
        self.proc: subprocess.Popen | None = None
        self.ctl: socket.socket | None = None
        nobody = (self.sandbox == "bwrap" and bwrap.as_nobody()) or self.sandbox == "user"
        self.uid = bwrap.NOBODY if nobody else None  # the worker's own uid, when it has one
        owner = container.owner() if self.sandbox == "container" else self.uid
        self.container: str | None = None  # the running container's name
        self._log = None  # the starting worker's stderr until it says it is ready
        self._listener: socket.socket | None = None  # container mode: where the worker connects back
        self._busy = False  # a check's child may be running: from a fork until the worker says it exited
        self._owner = threading.current_thread()  # at exit, the thread that will close this worker, if alive
        self.scratch = Scratch(owner=owner)  # kept across restarts; removed by close()
        _live.add(self)

    def start(self) -> None:
        _refuse_if_stopping()
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = None
        try:
            argv = self._argv(child.fileno())
            log = tempfile.TemporaryFile()  # the worker's own stderr, shown if it fails to start
            clean = None if self.sandbox in ("bwrap", "container") else {  # those two set their own
                **env.allowed(), "HOME": str(self.scratch.work), "TMPDIR": str(self.scratch.work)}
            self.proc = subprocess.Popen(argv, pass_fds=(child.fileno(),), start_new_session=True, env=clean,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.scratch.work)
        except BaseException:  # nothing half-started may stay: a worker that did start sees its socket close
            parent.close()
            if log is not None:
                log.close()
            self.stop()
            raise
        finally:
            child.close()
        self.ctl, self._log = parent, log  # not waited for here: the grader imports torch meanwhile (both cores)

    def _argv(self, fd: int) -> list[str]:
        """The command that starts the worker, in the sandbox asked for, with `fd` its end of the control socket."""
        start = f"from labkit.sandbox.child import main; main({fd}, {self.preload!r}, {self.huge_pages})"
        argv = [sys.executable, "-I", "-c", f"import sys; sys.path.append({str(IMPORT_ROOT)!r}); {start}"]
        if self.sandbox == "bwrap":
            return bwrap.command(argv, inputs=self.scratch.inputs, work=self.scratch.work)
        if self.sandbox == "container":  # the image's own labkit; it connects back through the mounted folder
            self.container = container.name()
            self._listener, path = container.listen(self.scratch.work, self.scratch.owner)
            code = container.bootstrap(path, self.preload, self.huge_pages)
            return container.command(code, inputs=self.scratch.inputs, work=self.scratch.work,
                                     container=self.container)
        if self.sandbox == "user":  # no namespaces (Gradescope's image): an unprivileged uid, a clean environment
            return bwrap.drop_privileges() + argv
        return argv

    def ready(self) -> None:
        """Wait, once, for the started worker to say it has imported torch; WorkerFailed if it never does."""
        if self._log is None:
            return
        log, self._log = self._log, None
        if self._listener is not None:  # a container: its worker's one connection becomes the control socket
            self.ctl = container.accept(self._listener, START_SECONDS) or self.ctl
            self._listener = None
        try:
            msg = self.receive(time.monotonic() + START_SECONDS)
        except BaseException:  # labkit is ending
            log.close()
            raise
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
        self._busy = False
        if self._listener is not None:
            self._listener.close()
            self._listener = None
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
        """End the worker and remove its files; a check still running is first killed by the worker itself."""
        _live.discard(self)
        try:
            if self._busy and self.sandbox == "none":  # the check's child has its own session, out of reach of
                self._hang_up()  # the worker's group: the worker kills it (and its tree) when its socket closes
                _wait_childless(self.proc, END_SECONDS)
            self.stop()
        finally:
            self.scratch.remove()

    def _hang_up(self) -> None:
        """Close the control socket under the worker: it kills its check's processes and exits (any thread may)."""
        ctl = self.ctl
        if ctl is not None:
            try:
                ctl.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> Worker:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def session(self, *, student: Path, module: str, workdir: Path, limits: Limits,
                seed: int) -> Session:
        """Fork a fresh child for one check; it imports the student's file and waits for calls."""
        _refuse_if_stopping()
        if not self.alive():
            self.stop()
            self.start()
        self.ready()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        job = {"student": str(student), "module": module, "workdir": str(workdir),
               "seed": seed, "nonce": secrets.token_hex(8),
               "limits": dict(limits.__dict__, processes=PROCESSES if self.uid is not None else None)}
        try:
            self._busy = True
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
        """One message from the worker, or None when it is gone or late; Stopping once labkit is ending."""
        _refuse_if_stopping()
        msg = self._receive(deadline)
        if msg is None:  # gone because labkit is ending (it hung up on the worker): no verdict from that
            _refuse_if_stopping()
        elif msg.get("kind") == "exited":
            self._busy = False
        return msg

    def _receive(self, deadline: float) -> dict | None:
        ready = select.select([self.ctl], [], [], max(0.0, deadline - time.monotonic()))[0]
        if not ready:
            return None
        try:
            data = self.ctl.recv(1 << 16)
        except OSError:
            return None
        return json.loads(data) if data else None


def _wait_childless(proc: subprocess.Popen | None, seconds: float) -> None:
    """Wait up to `seconds` until `proc` exits or has no live process below it; not reaped: killpg comes next."""
    deadline = time.monotonic() + seconds
    while proc is not None and time.monotonic() < deadline:
        time.sleep(0.01)
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        if not reaper.descendants(proc.pid):
            return


@atexit.register
def _end_all() -> None:
    """At exit, end the workers nobody closed: threads still grading (a class) unwind and close theirs, if quick."""
    if not _live:
        return
    stopping(signal.SIGTERM)  # whatever those threads wait for now raises Stopping: no verdict is recorded
    me = threading.current_thread()
    for worker in list(_live):
        try:
            if worker._owner is me or not worker._owner.is_alive():
                worker.close()
            else:
                worker._hang_up()
        except Exception:  # noqa: BLE001  (best effort at exit: the next worker still gets its turn)
            pass
    deadline = time.monotonic() + THREAD_SECONDS
    while _live and time.monotonic() < deadline:
        time.sleep(0.01)
    for worker in list(_live):  # a thread that did not unwind in time: its files go with Scratch's exit handler
        proc = worker.proc
        if proc is not None:
            _kill_group(proc.pid)


os.register_at_fork(after_in_child=_live.clear)  # a forked child has no workers of its own to end


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
