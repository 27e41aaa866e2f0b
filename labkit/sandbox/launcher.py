"""Run a student's `worker(rank, world_size, cfg)` on N ranks with torchrun, on one "node" or several, watched.

One node is `torchrun --standalone --nproc_per_node=N`; `nodes=2` starts two torchrun
agents that meet through a c10d rendezvous on 127.0.0.1 (`--nnodes=2`), the code path
of a real multi-node cluster. Each rank runs `labkit.sandbox.rank`, which builds cfg from
a recipe (labkit.inputs: plain data, never a checks file) and reports its phase; the
watchdog here gives process-group start, each barrier and the whole launch their own
deadlines, and the error names the rank that crashed or hung and where. In grading this
runs inside the sandbox (a program's `launch` step); `labkit bench` runs it directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTPUT_CAP = 4000  # characters of each rank's output kept for the report
TMPDIR_BYTES = 74  # a socket path ends at 107 bytes, and a DataLoader's workers bind pymp-*/listener-* (33) in TMPDIR
POLL = 0.05  # seconds between looks at the ranks' progress


class LaunchError(Exception):
    """A rank crashed, hung, or returned nothing; the message names the rank."""

    def __init__(self, message: str, ranks: list[RankResult]):
        super().__init__(message)
        self.ranks = ranks


@dataclass
class Deadlines:
    """Seconds a launch may spend: in total, with a rank inside init_process_group, with a rank in one barrier."""

    total: float = 60.0
    start: float = 30.0
    barrier: float = 30.0


@dataclass
class RankResult:
    """What one rank left behind."""

    rank: int
    status: str  # done | crashed | hung | ended (stopped without returning from worker)
    phase: str = ""  # where it was last seen: import, worker, init_process_group, barrier #2, ...
    output: str = ""
    value: Any = None  # what worker returned (plain data)
    saves: int = 0  # torch.save calls the student's code made
    barriers: int = 0  # dist.barrier calls made
    seconds: float = 0.0  # from the launch until the watchdog saw the rank finish
    worker_seconds: float = 0.0  # from entering worker until done, as the launcher's clock saw the rank's phases


@dataclass
class Launch:
    """Every rank's result, in rank order, and the launch's wall time as the launcher measured it."""

    ranks: list[RankResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def values(self) -> list[Any]:
        """worker's return value per rank."""
        return [r.value for r in self.ranks]


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


def torchrun_commands(spec_path: Path, world_size: int, nodes: int) -> list[list[str]]:
    """One torchrun command per node: --standalone for one, a c10d rendezvous on a free local port for more."""
    if nodes < 1 or world_size % nodes:
        raise ValueError(f"{world_size} ranks cannot be split evenly over {nodes} nodes")
    run = [sys.executable, "-m", "torch.distributed.run", "--max-restarts=0", "--monitor-interval=0.1",
           "--local-addr=127.0.0.1"]  # every node is this machine: never depend on resolving its hostname
    tail = ["-m", "labkit.sandbox.rank", str(spec_path)]
    if nodes == 1:
        return [run + ["--standalone", f"--nproc-per-node={world_size}"] + tail]
    rdzv = [f"--nnodes={nodes}", f"--nproc-per-node={world_size // nodes}", "--rdzv-backend=c10d",
            f"--rdzv-endpoint=127.0.0.1:{free_port()}", f"--rdzv-id=labkit-{uuid.uuid4().hex[:12]}"]
    return [run + rdzv + tail for _ in range(nodes)]


def launch(student: Path, world_size: int, cfg: Any, workdir: Path, *, fn: str = "worker", timeout: float = 60.0,
           start_timeout: float | None = None, barrier_timeout: float | None = None, threads: int = 1,
           gpus: bool = False, nodes: int = 1) -> Launch:
    """Run `fn(rank, world_size, cfg)` of the file `student` on `world_size` ranks.

    `cfg` is a recipe (labkit.recipe: plain data and tensors) that each rank builds with labkit.inputs.build,
    so a model factory or a dataset reaches every rank without pickling and without importing anything else.
    """
    import torch

    limits = Deadlines(timeout, min(start_timeout or 30.0, timeout), min(barrier_timeout or 30.0, timeout))
    workdir = Path(workdir)
    if nodes < 1 or world_size % nodes:  # the caller's error, before anything starts
        raise ValueError(f"{world_size} ranks cannot be split evenly over {nodes} nodes")
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / "launch-spec.pt"  # tensors travel too; each rank reads it with weights_only=True
    torch.save({"student": str(Path(student).resolve()), "fn": fn, "cfg": cfg, "pg_timeout": limits.total},
               spec_path)
    tmp = launch_tmp(workdir)
    env = agent_env(threads, gpus, tmp)
    started = time.monotonic()
    agents: list[subprocess.Popen] = []
    watchdog = Watchdog(workdir, world_size, limits, started)
    try:
        for i, cmd in enumerate(torchrun_commands(spec_path, world_size, nodes)):
            with open(workdir / f"agent{i}.log", "wb") as log:  # the agent keeps its own copy
                agents.append(subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, process_group=0))
        watchdog.run(agents)
    finally:
        stop(agents, watchdog.pids())
        shutil.rmtree(tmp, ignore_errors=True)
    ranks = watchdog.results()
    raise_for(ranks, watchdog, workdir)
    for r in ranks:
        try:
            r.value, r.saves = read_result(workdir / f"rank{r.rank}.pt")
        except Exception as exc:  # noqa: BLE001  (the rank's process wrote it: the student's code ran there)
            raise LaunchError(f"rank {r.rank} of {world_size} left a result that cannot be read "
                              f"({type(exc).__name__}): return plain data (dicts, lists, numbers, tensors)", ranks)
    return Launch(ranks, time.monotonic() - started)


def launch_tmp(workdir: Path) -> Path:
    """This launch's TMPDIR, for its agents and ranks: removed when it ends (and with the workdir, if killed)."""
    tmp = workdir.absolute() / "tmp"
    if len(os.fsencode(tmp)) > TMPDIR_BYTES:  # a DataLoader's sockets would not fit below it: a short one instead
        return Path(tempfile.mkdtemp(prefix="labkit-launch-", dir="/tmp"))
    tmp.mkdir(exist_ok=True)
    return tmp


class Watchdog:
    """Follows every rank's phase through its state file and stops the launch when a deadline passes."""

    def __init__(self, workdir: Path, world_size: int, limits: Deadlines, started: float):
        self.workdir, self.world_size, self.limits, self.started = workdir, world_size, limits, started
        self.states: dict[int, dict] = {}
        self.seen: dict[int, tuple[str, float]] = {}  # rank -> (phase, when the watchdog first saw it)
        self.first: dict[int, dict[str, float]] = {}  # rank -> {phase: when first seen}
        self.hung: dict[int, str] = {}  # rank -> why the watchdog gave up on it

    def read(self) -> None:
        now = time.monotonic()
        for rank in range(self.world_size):
            try:
                state = json.loads((self.workdir / f"rank{rank}.state").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue  # not started yet
            self.states[rank] = state
            if self.seen.get(rank, ("",))[0] != state["phase"]:
                self.seen[rank] = (state["phase"], now)
                self.first.setdefault(rank, {}).setdefault(state["phase"], now)

    def overdue(self) -> dict[int, str]:
        """Ranks past a deadline, with the reason."""
        now, late = time.monotonic(), {}
        for rank, (phase, since) in self.seen.items():
            if phase == "init_process_group" and now - since > self.limits.start:
                late[rank] = (f"waited {now - since:.0f} s in init_process_group for the other ranks to join "
                              "(did every rank call it, with the world_size and its own rank?)")
            elif phase.startswith("barrier") and now - since > self.limits.barrier:
                late[rank] = f"waited {now - since:.0f} s in dist.barrier() {phase.split()[-1]}"
        if now - self.started > self.limits.total:
            for rank in range(self.world_size):
                phase = self.seen.get(rank, ("not started",))[0]
                if phase not in ("done", "crashed") and rank not in late:
                    late[rank] = f"still running after {self.limits.total:.0f} s (last seen in {phase})"
        return late

    def run(self, agents: list[subprocess.Popen]) -> None:
        while any(a.poll() is None for a in agents):
            self.read()
            self.hung = self.overdue()
            if self.hung or self.all_done():
                return  # all done: their results are written; the agents' own teardown (~0.5 s) is not waited for
            time.sleep(POLL)
        self.read()

    def all_done(self) -> bool:
        return len(self.states) == self.world_size and all(s["phase"] == "done" for s in self.states.values())

    def worker_seconds(self, rank: int) -> float:
        """Seconds between the first phase inside worker the watchdog saw and done (0 when either is missing); a
        worker quicker than one look is timed from the import of the student's file."""
        first = self.first.get(rank, {})
        inside = [t for phase, t in first.items() if phase not in ("starting", "import", "done", "crashed")]
        inside = inside or [t for phase, t in first.items() if phase == "import"]
        return first["done"] - min(inside) if inside and "done" in first else 0.0

    def pids(self) -> list[int]:
        self.read()  # a rank that started meanwhile is killed too
        return [s["pid"] for s in self.states.values()]

    def results(self) -> list[RankResult]:
        ranks = []
        for rank in range(self.world_size):
            state = self.states.get(rank, {"phase": "not started", "barriers": 0})
            phase = state.get("crashed_in") or state["phase"] if state["phase"] == "crashed" else state["phase"]
            status = ("done" if state["phase"] == "done" else "crashed" if state["phase"] == "crashed"
                      else "hung" if self.hung else "ended")  # still running when the watchdog stopped the launch
            seen_at = self.seen.get(rank, ("", time.monotonic()))[1]
            ranks.append(RankResult(rank, status, phase, read_log(self.workdir / f"rank{rank}.log"),
                                    barriers=state["barriers"], seconds=seen_at - self.started,
                                    worker_seconds=self.worker_seconds(rank)))
        return ranks


def stop(agents: list[subprocess.Popen], rank_pids: list[int]) -> None:
    """Kill every rank's session (torchrun starts each in its own), then every agent's group, and reap the agents."""
    for pid in rank_pids:
        if session_of(pid) == pid:  # still that rank (a reused pid would lead another session)
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for a in agents:
        if a.poll() is None:
            try:
                os.killpg(a.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        a.wait()


def session_of(pid: int) -> int | None:
    """The session id of a running process, or None once it is gone."""
    try:
        return os.getsid(pid)
    except OSError:
        return None


def raise_for(ranks: list[RankResult], watchdog: Watchdog, workdir: Path) -> None:
    """Name the rank that crashed first (its peers then fail or hang in a collective), else those that hung."""
    n = len(ranks)
    crashed = sorted((r for r in ranks if r.status == "crashed"), key=lambda r: r.seconds)
    hung = [r for r in ranks if r.status == "hung"]
    ended = [r for r in ranks if r.status == "ended"]
    if crashed:
        r = crashed[0]
        where = f" in {r.phase}" if r.phase not in ("worker", "import") else ""
        raise LaunchError(f"rank {r.rank} of {n} crashed{where}:\n{last_lines(r.output)}{mismatch(ranks)}", ranks)
    if hung:
        lines = []
        for r in hung:
            lines.append(f"rank {r.rank} of {n} hung: {watchdog.hung.get(r.rank, f'was still in {r.phase}')}; killed")
            if r.output.strip():
                lines += [f"  rank {r.rank} printed: {line}" for line in last_lines(r.output, 4).splitlines()]
        raise LaunchError("\n".join(lines) + mismatch(ranks), ranks)
    if ended:
        r = ended[0]
        agent = last_lines(read_log(workdir / "agent0.log"), 6)
        raise LaunchError(f"rank {r.rank} of {n} stopped in {r.phase} without returning from worker "
                          f"(sys.exit, os._exit or a signal?):\n{last_lines(r.output) or agent}", ranks)


def mismatch(ranks: list[RankResult]) -> str:
    """A hint when the ranks made different numbers of barrier calls: a collective inside `if rank == ...`."""
    counts = {r.barriers for r in ranks}
    if len(counts) < 2:
        return ""
    calls = ", ".join(f"rank {r.rank} {r.barriers}" for r in ranks)
    return (f"\nThe ranks called dist.barrier() different numbers of times ({calls}): every rank must make the "
            "same collective calls in the same order (is a barrier inside `if rank == 0:`?)")


def read_log(path: Path) -> str:
    try:
        return path.read_bytes()[-OUTPUT_CAP:].decode("utf-8", "replace")
    except OSError:
        return ""


def last_lines(text: str, n: int = 12) -> str:
    """The tail of a rank's output, where a traceback ends."""
    return "\n".join(text.rstrip().splitlines()[-n:])


def read_result(path: Path) -> tuple[Any, int]:
    """A rank's (worker value, torch.save count), read back with weights_only so nothing runs on load."""
    import torch

    data = torch.load(path, weights_only=True)
    return data["value"], data["saves"]
