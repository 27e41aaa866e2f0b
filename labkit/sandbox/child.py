"""The grading worker: imports torch once, then forks a fresh child per check.

Started by `labkit.sandbox.worker` as `python -I`; it takes `fork` commands on a
socket, each with a fresh pair of pipes that the child uses to answer calls.
Only trusted code lives here; the student's module is imported by the forked
child, never by the worker itself. Do not initialise
CUDA in the worker: each child must be free to do so after the fork.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Sequence

from labkit.files import import_path
from labkit.sandbox import env, hugepages, reaper, wire


def main(ctl_fd: int, preload: Sequence[str] = (), huge_pages: bool = False) -> None:
    """Serve `fork` commands on the control socket until `quit` or the grader goes away."""
    import torch  # noqa: F401  (loaded once, shared by every forked child)

    import labkit.checks  # noqa: F401  (StudentError and the check API)
    import labkit.sandbox.program  # noqa: F401  (the checks' interpreter: its references taken before any student code)

    pending = list(preload)  # exercise.toml's `preload`: imported while the first check runs, not before
    preloading: threading.Thread | None = None
    reaper.become_subreaper()  # orphans of a check (a setsid() grandchild) come back to us, to be killed
    reaper.not_dumpable()  # a child of the same uid must not write our memory through /proc/<pid>/mem
    ctl = socket.socket(fileno=ctl_fd)
    ctl.send(json.dumps({"kind": "worker-ready", "pid": os.getpid()}).encode())
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 2)
        except OSError:
            data, fds = b"", []
        if not data:  # the grader is done with us: no need to tear torch down (~0.6 s)
            reaper.kill_tree(os.getpid())
            os._exit(0)
        job = json.loads(data)
        if job.get("op") == "kill":  # late: that child is already gone
            for fd in fds:
                os.close(fd)
            continue
        if len(fds) != 2:
            return
        _join(preloading)  # a fork with a thread mid-import would hand the child a held import lock
        preloading = None
        pid = os.fork()
        if pid == 0:
            try:
                ctl.close()  # the student's code must not reach the worker
                serve_child(fds[0], fds[1], job)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        if pending:  # off the critical path: imported beside the first child, joined before the next fork
            preloading = threading.Thread(target=_preload, args=(pending,), daemon=True)
            preloading.start()
            pending = []
        status = _wait_child(ctl, pid)
        if status is None:  # the grader went away: no need to tear torch down (~0.6 s)
            reaper.kill_tree(os.getpid())
            os._exit(0)
        leftovers = reaper.kill_tree(os.getpid())
        env.wipe_private_tmp(keep=(job["workdir"], job["student"]))  # the next check starts clean
        ctl.send(json.dumps({"kind": "exited", "pid": pid, "status": status, "leftovers": leftovers}).encode())
        if huge_pages:  # once, with no child sharing our pages, while the grader judges the first check
            huge_pages = False
            _join(preloading)  # the preloaded modules' memory is collapsed too
            preloading = None
            gc.collect()
            gc.freeze()  # a child's full collection must not touch (and so copy) every inherited object
            hugepages.collapse()


def _join(thread: threading.Thread | None) -> None:
    if thread is not None:
        thread.join()


def _preload(modules: Sequence[str]) -> None:
    """Import what later children would each import lazily (torch._dynamo costs ~1 s on the first optimizer
    step or Python meta kernel); a module that fails to import is left for the check to report.

    Runs in a thread while the worker waits on the first child, so the grader hears 'exited' the moment that
    child ends (a single `--only` check never waits for it); the next fork joins it first."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001  (the check that needs it will say why)
            pass


def _wait_child(ctl: socket.socket, pid: int) -> int | None:
    """Wait for the check's child, killing its process group when the grader asks; None if the grader is gone."""
    try:  # a pidfd is readable the moment the child exits: no polling delay on every check
        exited = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3, or a seccomp profile that refuses it: poll
        exited = None
    try:
        return _wait_loop(ctl, pid, exited)
    finally:
        if exited is not None:
            os.close(exited)


def _wait_loop(ctl: socket.socket, pid: int, exited: int | None) -> int | None:
    while True:
        watch = [ctl] if exited is None else [ctl, exited]
        ready, _, _ = select.select(watch, [], [], 0.05 if exited is None else None)
        if ctl in ready:
            try:
                data = ctl.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                _signal_group(pid)
                return None
            if json.loads(data).get("op") == "kill":
                _signal_group(pid)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)


def _signal_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def serve_child(req: int, rep: int, job: dict) -> None:
    """Run in the forked child: isolate, import the student's module, answer calls."""
    from labkit.sandbox import program  # loaded by the worker: a lookup

    os.setsid()
    nonce = job["nonce"]
    try:
        _isolate(job["workdir"], job["limits"])
    except BaseException:
        wire.write_frame(rep, {"kind": "internal", "nonce": nonce, "error": traceback.format_exc()[-3000:]})
        return
    wire.write_frame(rep, {"kind": "ready", "nonce": nonce, "pid": os.getpid()})

    _seed(job["seed"])
    try:
        student = import_path(job["student"], job["module"])
    except BaseException as exc:  # SyntaxError, SystemExit, anything raised at import
        _flush()
        wire.write_frame(rep, {"kind": "imported", "nonce": nonce, "ok": False, "error": describe(exc, job["student"])})
        return
    _flush()
    wire.write_frame(rep, {"kind": "imported", "nonce": nonce, "ok": True})

    def gate() -> None:
        """A recipe's gate: wait for the grader to release this call (it alone knows how long it holds it)."""
        wire.write_frame(rep, {"kind": "gate", "nonce": nonce})
        header, _ = wire.read_frame(req)
        if header.get("op") != "go":
            raise RuntimeError("the grader ended the check")

    while True:
        header, blob = wire.read_frame(req)
        if header.get("op") not in ("call", "run"):
            return
        out, reply = b"", {"kind": "result", "nonce": nonce, "ok": False}
        try:
            if header["op"] == "run":
                value = program.run(student, wire.decode(header["program"], blob), gate)
            else:
                args, kwargs = wire.decode(header["args"], blob)
                fn = getattr(student, header["name"], None)
                if not callable(fn):
                    raise program.MissingFunction(f"{job['module']}.py has no function {header['name']}(): keep "
                                                  "the starter's names")
                value = fn(*args, **kwargs)
            tree, out = wire.encode(value)
            reply.update(ok=True, value=tree)
        except program.ProgramError as exc:
            reply["program_error"] = str(exc)[:2000]
        except program.StudentRaised as exc:
            reply["error"] = describe(exc.error, job["student"])
        except BaseException as exc:
            out, reply["error"] = b"", describe(exc, job["student"])
        _flush()
        wire.write_frame(rep, reply, out)


def describe(exc: BaseException, student_path: str) -> dict:
    """An exception as plain data, with the traceback trimmed to the student's own lines."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename == student_path]  # the grader's own frames teach nothing
    if isinstance(exc, SyntaxError) and exc.filename == student_path:
        where = [f"line {exc.lineno}: {(exc.text or '').strip()}"]
    else:
        where = [f"line {f.lineno}, in {f.name}: {(f.line or '').strip()}" for f in mine[-6:]]
    try:
        message = str(exc)
    except BaseException:
        message = "?"
    return {
        "type": type(exc).__name__,
        "mro": [c.__name__ for c in type(exc).__mro__],
        "message": message[:2000],
        "where": where,
    }


def _isolate(workdir: str, limits: dict) -> None:
    """Own output file, no stdin, a private working directory, and rlimits."""
    env.own_output(os.path.join(workdir, wire.OUTPUT_FILE), 0o600)
    sys.stdin = open(0, closefd=False)
    os.chdir(workdir)
    env.enter_check(workdir)  # an allowlisted environment; HOME, TMPDIR and MPLCONFIGDIR of this check's own
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _limit(resource.RLIMIT_FSIZE, int(limits["file_bytes"]))
    _limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if limits.get("processes"):  # only for a uid of the sandbox's own: the limit counts all of its tasks
        _limit(resource.RLIMIT_NPROC, int(limits["processes"]))
    if limits.get("memory_bytes"):  # only set where no CUDA is visible: a CUDA context needs far more
        _limit(resource.RLIMIT_AS, _address_space() + int(limits["memory_bytes"]))


def _limit(which: int, value: int) -> None:
    """Set soft and hard limits alike, so the student's code cannot raise them again."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    grace = 2 if which == resource.RLIMIT_CPU else 0  # SIGXCPU first, SIGKILL two seconds later
    resource.setrlimit(which, (value, value + grace))


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _seed(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
