"""How a launch's torchrun agents start: exec'd (`python -m torch.distributed.run`), or forked from this process.

A forked agent is torchrun itself, called in a fork of a process that has torch imported already, with
torchrun's own `--run-path` and `--start-method=fork`: the agent then forks its ranks, which run
labkit.sandbox.rank with torch (and whatever the worker preloaded) already in memory. The rendezvous, the
environment the ranks see (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, ...) and the multi-node c10d path are
torchrun's, unchanged; what goes is about 1.5 s of imports in the agent and 2-3 s in every rank, per launch.
CUDA does not survive a fork once initialised, so GPU launches (and a process that touched CUDA) exec.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
import tempfile
import traceback
import uuid
from pathlib import Path

from labkit.sandbox.env import own_output

RANK_SCRIPT = Path(__file__).with_name("rank.py")  # what a forked rank runs (torchrun's --run-path: runpy)


def free_port() -> int:
    """A TCP port nobody listens on now: each launch rendezvouses on its own, so parallel gradings never collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agent_env(threads: int, gpus: bool, tmp: Path | None = None) -> dict[str, str]:
    """The environment of a torchrun agent and so of its ranks; `tmp`, when given, is their TMPDIR."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    if tmp is not None:  # the agent makes its torchelastic_* logs under gettempdir(): inside the launch, not /tmp
        env["TMPDIR"] = str(tmp)
    if not gpus:  # a CPU check stays on gloo even where CUDA exists
        env["CUDA_VISIBLE_DEVICES"] = ""
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # all ranks are local: keep gloo off other interfaces
    return env


def can_fork(gpus: bool) -> bool:
    """Whether ranks may be forked from this process: a CPU launch, on Linux, with CUDA never touched here."""
    if gpus or not sys.platform.startswith("linux"):
        return False
    cuda = sys.modules.get("torch.cuda")
    if cuda is None:
        return True
    # a forked rank inherits a CUDA context that no longer works, and a cached device count it must not see
    return not cuda.is_initialized() and getattr(cuda, "_cached_device_count", None) in (None, 0)


def torchrun_args(spec_path: Path, world_size: int, nodes: int, fork: bool) -> list[list[str]]:
    """torchrun's arguments for each node: --standalone for one, a c10d rendezvous on a free local port for more."""
    if nodes < 1 or world_size % nodes:
        raise ValueError(f"{world_size} ranks cannot be split evenly over {nodes} nodes")
    common = ["--max-restarts=0", "--monitor-interval=0.1",
              "--local-addr=127.0.0.1"]  # every node is this machine: never depend on resolving its hostname
    tail = (["--start-method=fork", "--run-path", str(RANK_SCRIPT)] if fork else ["-m", "labkit.sandbox.rank"])
    tail.append(str(spec_path))
    if nodes == 1:
        return [common + ["--standalone", f"--nproc-per-node={world_size}"] + tail]
    rdzv = [f"--nnodes={nodes}", f"--nproc-per-node={world_size // nodes}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{free_port()}", f"--rdzv-id=labkit-{uuid.uuid4().hex[:12]}"]
    return [common + rdzv + tail for _ in range(nodes)]


class Agent:
    """One torchrun agent in its own process group: exec'd or forked, waited for alike."""

    def __init__(self, args: list[str], *, env: dict[str, str], cwd: Path, log: Path, fork: bool):
        self._proc = None
        self.returncode: int | None = None
        if fork:
            self.pid = _fork_agent(args, env, cwd, log)
            return
        import subprocess

        with open(log, "wb") as out:  # the agent keeps its own copy
            self._proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *args], cwd=cwd, env=env,
                                          stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          process_group=0)
        self.pid = self._proc.pid

    def poll(self) -> int | None:
        """The exit status once the agent has ended (reaped), else None."""
        if self._proc is not None:
            return self._proc.poll()
        if self.returncode is None:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self._proc is not None:
            return self._proc.wait()
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def _fork_agent(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> int:
    """Fork; the child becomes torchrun's agent (`torch.distributed.run.main(args)`) and never returns."""
    import torch._dynamo  # noqa: F401  (DDP's constructor imports it, ~1.5 s: once here, not in every rank)
    import torch.distributed.run  # noqa: F401  (the agent's own code)

    for stream in (sys.stdout, sys.stderr):  # nothing buffered here may be written twice
        stream.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setpgid(0, 0)  # one group with its ranks: stopping the launch kills it whole
        own_output(str(log), 0o644)
        _close_pipes()
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None  # gettempdir() reads the new TMPDIR
        from torch.distributed.run import main

        sys.argv = ["torchrun", *args]
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001  (the agent's own failure: into its log, which the launcher shows)
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001
                pass
        os._exit(code)


def _close_pipes() -> None:
    """Close the pipes inherited from the process that forked us (a check child's line to the grader among them):
    an exec'd agent would not have them either."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd < 3:
            continue
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.close(fd)
        except OSError:
            pass
