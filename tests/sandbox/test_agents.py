"""torchrun's agents and ranks forked with torch imported: the same launch as exec'd ones, minus the imports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from labkit.recipe import factory, module
from labkit.sandbox import agents
from labkit.sandbox.launcher import LaunchError, launch

STUDENT = """
import os, stat, sys
import torch
import torch.distributed as dist

def worker(rank, world_size, cfg):
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    dist.barrier()
    dist.destroy_process_group()
    env = {k: os.environ.get(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                                          "TORCHELASTIC_RUN_ID", "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")}
    held = [fd for fd in map(int, os.listdir("/proc/self/fd")) if fd > 2 and _pipe_inode(fd) in cfg["pipes"]]
    return {"sum": t, "env": env, "held": held, "threads": torch.get_num_threads(),
            "fresh": "labkit_agents_test_marker" not in sys.modules, "weight": cfg["model"]()[0].weight}

def _pipe_inode(fd):
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_ino if stat.S_ISFIFO(info.st_mode) else None
"""


@pytest.fixture
def student(tmp_path) -> Path:
    path = tmp_path / "student.py"
    path.write_text(STUDENT, encoding="utf-8")
    return path


CFG = {"model": factory(module([["Linear", 3, 2]], seed=5)), "pipes": []}


@pytest.mark.parametrize("nodes", [1, 2])
def test_forked_and_execd_launches_give_the_ranks_the_same_world(student, tmp_path, nodes):
    """Forked or exec'd, torchrun hands the ranks the same environment, and they compute the same thing."""
    r, w = os.pipe()  # a pipe this process holds, as a check's child holds its line to the grader
    cfg = dict(CFG, pipes=[os.fstat(r).st_ino])
    sys.modules["labkit_agents_test_marker"] = sys  # something only this process imported
    try:
        forked = launch(student, 2, cfg, tmp_path / "fork", timeout=90, nodes=nodes, fork=True)
        execd = launch(student, 2, cfg, tmp_path / "exec", timeout=90, nodes=nodes, fork=False)
    finally:
        del sys.modules["labkit_agents_test_marker"]
        os.close(r)
        os.close(w)
    for done in (forked, execd):
        assert [float(v["sum"]) for v in done.values] == [3.0, 3.0]
        assert [v["threads"] for v in done.values] == [1, 1]  # one thread per rank, as torchrun sets
        assert [r.saves for r in done.ranks] == [0, 0]
    fenv, eenv = ([{k: v for k, v in val["env"].items() if k != "TORCHELASTIC_RUN_ID"} for val in d.values]
                  for d in (forked, execd))
    assert fenv == eenv
    assert [e["LOCAL_RANK"] for e in fenv] == (["0", "0"] if nodes == 2 else ["0", "1"])
    assert all(e["CUDA_VISIBLE_DEVICES"] == "" for e in fenv)  # a CPU launch never sees a GPU
    assert all(torch.equal(a["weight"], b["weight"]) for a, b in zip(forked.values, execd.values, strict=True))
    assert [v["held"] for v in forked.values] == [[], []]  # the launcher's pipe was closed in the agent
    assert [v["fresh"] for v in forked.values] == [False, False]  # forked: the launcher's imports came along
    assert [v["fresh"] for v in execd.values] == [True, True]


def test_a_forked_rank_that_crashes_ends_its_peer_at_once(student, tmp_path):
    """A forked rank must not keep torchrun's signal handlers: the agent's SIGTERM ends the peer stuck in
    init_process_group, as it ends an exec'd one, long before the start deadline."""
    student.write_text(STUDENT.replace("    dist.init_process_group(",
                                       "    assert rank == 0, 'rank 1 gives up'\n    dist.init_process_group("))
    with pytest.raises(LaunchError) as info:
        launch(student, 2, CFG, tmp_path / "run", timeout=60, start_timeout=50, fork=True)
    assert "rank 1 of 2 crashed" in str(info.value) and "rank 1 gives up" in str(info.value)
    assert info.value.ranks[0].status != "hung"  # ended by the agent, not by the watchdog's 50 s deadline


def test_fork_is_chosen_only_for_cpu_launches_without_cuda(monkeypatch):
    assert not agents.can_fork(gpus=True)  # NCCL ranks need CUDA, which does not survive a fork
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert not agents.can_fork(gpus=False)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "_cached_device_count", 2, raising=False)
    assert not agents.can_fork(gpus=False)  # a forked CPU rank would believe in two GPUs it cannot use
    monkeypatch.setattr(torch.cuda, "_cached_device_count", None, raising=False)
    assert agents.can_fork(gpus=False) == sys.platform.startswith("linux")


def test_torchrun_arguments_for_each_way_of_starting():
    forked = agents.torchrun_args(Path("/w/spec.pt"), 2, 1, fork=True)
    assert forked == [["--max-restarts=0", "--monitor-interval=0.1", "--local-addr=127.0.0.1", "--standalone",
                       "--nproc-per-node=2", "--start-method=fork", "--run-path", str(agents.RANK_SCRIPT),
                       "/w/spec.pt"]]
    execd = agents.torchrun_args(Path("/w/spec.pt"), 4, 2, fork=False)
    assert len(execd) == 2 and execd[0] == execd[1] and execd[0][-3:] == ["-m", "labkit.sandbox.rank", "/w/spec.pt"]
    assert "--nnodes=2" in execd[0] and "--nproc-per-node=2" in execd[0]
    with pytest.raises(ValueError, match="evenly"):
        agents.torchrun_args(Path("/w/spec.pt"), 3, 2, fork=True)
