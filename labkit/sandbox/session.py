"""One check's child, seen from the grader: open it, call into it, close it; every wait has a deadline."""

from __future__ import annotations

import os
import select
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from labkit.checks import StudentError
from labkit.i18n import _
from labkit.sandbox import wire
from labkit.sandbox.errors import ChildGone, ImportFailed, ProgramFailed

START_SECONDS = 60.0  # importing torch on a busy machine
OUTPUT_CAP = 16 << 10  # bytes of the child's output shown as feedback
MAX_GATES = 10_000  # gate calls one request may make


@dataclass
class Limits:
    """Resource limits for one check's child."""

    call_seconds: float = 20.0  # wall clock per call
    import_seconds: float = 20.0  # wall clock to import the student's file
    cpu_seconds: int = 120  # RLIMIT_CPU for the whole child
    file_bytes: int = 64 << 20  # RLIMIT_FSIZE: output and files together
    open_files: int = 256  # RLIMIT_NOFILE
    memory_bytes: int | None = 4 << 30  # RLIMIT_AS headroom; None where CUDA is visible
    processes: int | None = None  # RLIMIT_NPROC (tasks of the worker's uid); set only for a uid of its own


class WorkerLink(Protocol):
    """What a session needs of the worker that forked its child (labkit.sandbox.worker.Worker)."""

    proc: Any

    def receive(self, deadline: float) -> dict | None: ...

    def kill_child(self) -> None: ...

    def stop(self) -> None: ...


class Session:
    """One check's child: `call` and `run` happen there; `close` ends it and returns its output."""

    def __init__(self, worker: WorkerLink, req: int, rep: int, job: dict, limits: Limits):
        self.worker, self.req, self.rep, self.job, self.limits = worker, req, rep, job, limits
        self.pid: int | None = None
        self.exit_status: int | None = None
        self.notes: list[str] = []  # what the grader had to do (kill a hung child, ...)
        self._buf = bytearray()
        os.set_blocking(rep, False)

    def open(self) -> None:
        """Wait for the child to start and import the student's file."""
        ready = self._next(START_SECONDS, "starting")
        if ready.get("kind") != "ready":
            self._reap(5.0)
            raise ChildGone(f"the grader could not start this check (a bug in labkit): {ready.get('error', '')}")
        self.pid = int(ready["pid"])
        try:
            imported = self._next(self.limits.import_seconds, _("importing your file"))
        except ChildGone as exc:
            raise ImportFailed(_("your file could not be imported: {why}").format(why=exc)) from None
        if not imported.get("ok"):
            error = StudentError(imported.get("error") or {})
            raise ImportFailed(f"your file could not be imported: {error}", error)

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call the student's `name(*args, **kwargs)` in the child; raise StudentError if it raised."""
        tree, blob = wire.encode((list(args), kwargs))
        reply, out = self._exchange({"op": "call", "name": name, "args": tree}, blob, f"{name}()", timeout, None)
        return self._value(reply, out, f"{name}()")

    def run(self, program: dict, *, timeout: float | None = None,
            gate: Callable[[int], float] | None = None) -> dict:
        """Carry out a check's program (labkit.recipe) in the child: {"values", "steps", "gates"}.

        `gate(n)` says how many seconds to hold the n-th call of a recipe's gate before releasing it; the
        grader's own clock readings (arrived, released) of every gate come back as "gates".
        """
        tree, blob = wire.encode(program)
        gates: list[list[float]] = []
        reply, out = self._exchange({"op": "run", "program": tree}, blob, _("the check"), timeout, (gate, gates))
        if reply.get("kind") == "result" and not reply.get("ok") and reply.get("program_error"):
            raise ProgramFailed(str(reply["program_error"]))  # the check's bug, not the student's
        got = self._value(reply, out, _("the check"))
        if not isinstance(got, dict):
            raise ChildGone("the check's program returned a malformed answer")
        return {"values": got.get("values", {}), "steps": got.get("steps", []), "gates": gates}

    def _exchange(self, header: dict, blob: bytes, what: str, timeout: float | None,
                  gating: tuple | None) -> tuple[dict, bytes]:
        """Send one request; serve its gates; return the final reply. The time limit excludes gate holds."""
        self._send(header, blob, what)
        seconds = timeout or self.limits.call_seconds
        deadline = time.monotonic() + seconds
        while True:
            reply, out = self._next(max(0.0, deadline - time.monotonic()), _("running {what}").format(what=what),
                                    want_blob=True, total=seconds)
            if reply.get("kind") != "gate":
                return reply, out
            if gating is None or gating[0] is None or len(gating[1]) >= MAX_GATES:
                self._kill(f"a malformed answer arrived while running {what}")
            hold = float(gating[0](len(gating[1])))
            arrived = time.perf_counter()
            time.sleep(max(0.0, hold))
            released = time.perf_counter()
            self._send({"op": "go"}, b"", what)
            gating[1].append([arrived, released])
            deadline += released - arrived

    def _value(self, reply: dict, out: bytes, what: str) -> Any:
        if reply.get("kind") != "result":
            raise ChildGone(f"protocol error while running {what}")
        if not reply.get("ok"):
            raise StudentError(reply.get("error") or {})
        try:
            return wire.decode(reply.get("value"), out)
        except wire.WireError as exc:
            raise ChildGone(f"{what} returned {exc}") from None

    def close(self) -> str:
        """End the child (politely, then by force) and return what it printed, capped."""
        if self.exit_status is None:
            try:
                self._send({"op": "end"}, b"", "ending", timeout=2.0)
            except ChildGone:
                pass
            self._reap(5.0)
        for fd in (self.req, self.rep):
            try:
                os.close(fd)
            except OSError:
                pass
        self.req = self.rep = -1
        return read_output(Path(self.job["workdir"]))

    def _send(self, header: dict, blob: bytes, what: str, timeout: float = 30.0) -> None:
        data = memoryview(wire.frame(header, blob))
        deadline = time.monotonic() + timeout
        os.set_blocking(self.req, False)
        while data:
            ready = select.select([], [self.req], [], max(0.0, deadline - time.monotonic()))[1]
            if not ready:
                self._kill(f"the child stopped reading while {what}")
            try:
                data = data[os.write(self.req, data):]
            except BrokenPipeError:
                self._reap(5.0)
                raise ChildGone(self._gone_message(what)) from None

    def _next(self, seconds: float, what: str, want_blob: bool = False, total: float | None = None) -> Any:
        """The next frame from the child, within `seconds`; the child is killed when late."""
        deadline = time.monotonic() + seconds
        seconds = total or seconds  # what a late student reads: the call's whole limit
        while True:
            frame = self._parse()
            if frame is not None:
                header, blob = frame
                if header.get("nonce") != self.job["nonce"]:
                    self._kill(f"a malformed answer arrived while {what}")
                return (header, blob) if want_blob else header
            left = deadline - time.monotonic()
            ready = select.select([self.rep], [], [], max(0.0, left))[0]
            if not ready:
                self._kill(_("timed out after {seconds} s while {what}").format(seconds=f"{seconds:g}", what=what),
                           timeout=True)
            try:
                chunk = os.read(self.rep, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:  # every writer is gone: the child exited
                self._reap(5.0)
                raise ChildGone(self._gone_message(what))
            self._buf += chunk
            if len(self._buf) > wire.MAX_BLOB + wire.MAX_HEADER + 12:
                self._kill(f"the answer was over the size limit while {what}")

    def _parse(self) -> tuple[dict, bytes] | None:
        try:
            return wire.parse_frame(self._buf)
        except wire.WireError as exc:
            self._kill(str(exc))

    def _kill(self, message: str, timeout: bool = False) -> None:
        if self.pid is not None:
            self.worker.kill_child()  # the worker knows the child's pid in its own PID namespace
            self.notes.append("killed the process running your code")
        self._reap(10.0)
        raise ChildGone(message)

    def _reap(self, seconds: float) -> None:
        """Wait for the worker's word that the child exited; restart the worker if it is silent."""
        if self.exit_status is not None:
            return
        msg = self.worker.receive(time.monotonic() + seconds)
        if msg is None and self.pid is not None:
            self.worker.kill_child()
            msg = self.worker.receive(time.monotonic() + 5.0)
        if msg is None or msg.get("kind") != "exited":
            self.worker.stop()  # out of step: the next session starts a fresh worker
            self.exit_status = -999
            return
        self.exit_status = int(msg["status"])
        if msg.get("leftovers"):
            self.notes.append(f"killed {msg['leftovers']} process(es) your code left running")

    def _gone_message(self, what: str) -> str:
        status = self.exit_status
        if status is None or status == -999:
            return _("the process running your code disappeared while {what}").format(what=what)
        if status < 0:
            try:
                name = signal.Signals(-status).name
            except ValueError:
                name = f"signal {-status}"
            reason = {"SIGXCPU": _(" (CPU time limit)"), "SIGXFSZ": _(" (output or file size limit)"),
                      "SIGKILL": _(" (killed, perhaps out of memory)")}.get(name, "")
            return _("your code was stopped by {signal}{reason} while {what}").format(signal=name, reason=reason,
                                                                                      what=what)
        return _("your code ended the process (exit status {status}) while {what}; do not call exit() in an "
                 "exercise").format(status=status, what=what)


def read_output(workdir: str | os.PathLike, cap: int = OUTPUT_CAP) -> str:
    """What the child printed, first `cap` bytes, with a note of how much was cut."""
    path = os.path.join(workdir, wire.OUTPUT_FILE)
    try:  # the student may have swapped the file for a symlink or a FIFO: never follow, never block
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return "(labkit: your code replaced its output file with something that is not a file; output not shown)"
        size, head = info.st_size, f.read(cap)
    text = head.decode("utf-8", "replace")
    return text + (f"\n... ({size - cap} more bytes not shown)" if size > cap else "")
