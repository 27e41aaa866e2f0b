"""Run a student's `worker(rank, world_size, cfg)` on N ranks with torchrun, on one "node" or several, watched.

One node is `torchrun --standalone --nproc_per_node=N`; `nodes=2` starts two torchrun
agents that meet through a c10d rendezvous on 127.0.0.1 (`--nnodes=2`), the code path
of a real multi-node cluster. Each rank runs `labkit.sandbox.rank`, which builds cfg from
a recipe (labkit.inputs: plain data, never a checks file) and reports its phase; the
watchdog (labkit.sandbox.watchdog) gives process-group start, each barrier and the whole
launch their own deadlines, and the error names the rank that crashed or hung and where
(labkit.sandbox.outcome). Agents and ranks are forked with torch already imported where
that is safe (labkit.sandbox.agents). In grading this runs inside the sandbox (a program's
`launch` step); `labkit bench` runs it directly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from labkit.sandbox.agents import Agent, agent_env, can_fork, free_port, torchrun_args
from labkit.sandbox.outcome import Deadlines, Launch, LaunchError, RankResult, raise_for, read_result
from labkit.sandbox.watchdog import Watchdog, stop

__all__ = ["Deadlines", "Launch", "LaunchError", "RankResult", "TMPDIR_BYTES", "free_port", "launch", "launch_tmp"]

TMPDIR_BYTES = 74  # a socket path ends at 107 bytes, and a DataLoader's workers bind pymp-*/listener-* (33) in TMPDIR


def launch(student: Path, world_size: int, cfg: Any, workdir: Path, *, fn: str = "worker", timeout: float = 60.0,
           start_timeout: float | None = None, barrier_timeout: float | None = None, threads: int = 1,
           gpus: bool = False, nodes: int = 1, fork: bool | None = None) -> Launch:
    """Run `fn(rank, world_size, cfg)` of the file `student` on `world_size` ranks.

    `cfg` is a recipe (labkit.recipe: plain data and tensors) that each rank builds with labkit.inputs.build,
    so a model factory or a dataset reaches every rank without pickling and without importing anything else.
    `fork` (default: where it is safe, labkit.sandbox.agents.can_fork) starts the agents and ranks from this
    process, torch already imported, instead of exec'ing fresh interpreters.
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
    fork = can_fork(gpus) if fork is None else fork
    started = time.monotonic()
    agents: list[Agent] = []
    watchdog = Watchdog(workdir, world_size, limits, started)
    try:
        for i, args in enumerate(torchrun_args(spec_path, world_size, nodes, fork)):
            agents.append(Agent(args, env=env, cwd=workdir, log=workdir / f"agent{i}.log", fork=fork))
        watchdog.run(agents)
    finally:
        stop(agents, watchdog.pids())
        shutil.rmtree(tmp, ignore_errors=True)
    ranks = watchdog.results()
    raise_for(ranks, watchdog.hung, workdir)
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
