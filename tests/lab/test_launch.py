"""The launcher: one process per rank, a crash or a hang named by rank, parallel launches on their own ports."""
# labkit.sandbox.launcher (it runs inside the sandbox, as a program's `launch` step); kept beside the lab's tests

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch

from labkit.inputs import build
from labkit.recipe import factory, module
from labkit.sandbox.launcher import TMPDIR_BYTES, LaunchError, launch, launch_tmp

MODEL = factory(module([["Linear", 3, 2]], seed=7))  # each rank builds it from the recipe: the same weights in both

ALLREDUCE = """
import os, subprocess, time
import torch
import torch.distributed as dist

def worker(rank, world_size, cfg):
    if cfg.get("crash") == rank:
        raise ValueError("boom from the student")
    if cfg.get("hang") == rank:
        child = subprocess.Popen(["sleep", "600"])
        open(cfg["pidfile"], "w").write(str(child.pid))
        time.sleep(600)
    if cfg.get("wrong_world"):  # a world of 3 that only 2 ranks ever join
        dist.init_process_group("gloo", rank=rank, world_size=3)
    if cfg.get("barrier_on_rank0"):
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
        if rank == 0:
            dist.barrier()
        time.sleep(30 if rank == 1 else 0)  # rank 1 never reaches the barrier
    if cfg.get("solo"):  # no collective: the other ranks finish while one hangs
        return {"rank": rank}
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    dist.destroy_process_group()
    torch.save(t, os.devnull)
    return {"rank": rank, "sum": t, "port": os.environ["MASTER_PORT"], "weight": cfg["model"]()[0].weight}
"""


@pytest.fixture
def files(tmp_path) -> tuple[Path, dict]:
    (tmp_path / "student.py").write_text(ALLREDUCE, encoding="utf-8")
    return tmp_path / "student.py", {"model": MODEL}


def gone(pid: int) -> bool:
    """True once `pid` no longer runs (absent, or a zombie waiting for init to reap it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_two_ranks_allreduce_and_count_saves(files, tmp_path):
    student, cfg = files
    done = launch(student, 2, cfg, tmp_path / "run", timeout=60)
    assert [v["rank"] for v in done.values] == [0, 1] and [float(v["sum"]) for v in done.values] == [3.0, 3.0]
    want = build(MODEL)()[0].weight.detach()  # the grader's own copy of what every rank built
    assert all(torch.equal(v["weight"], want) for v in done.values)
    assert [r.saves for r in done.ranks] == [1, 1]
    assert all(0 <= r.worker_seconds <= done.seconds for r in done.ranks)


def test_a_crashing_rank_is_named_with_its_traceback(files, tmp_path):
    student, cfg = files
    start = time.monotonic()
    with pytest.raises(LaunchError) as info:
        launch(student, 2, dict(cfg, crash=1), tmp_path / "run", timeout=60)
    assert "rank 1 of 2 crashed" in str(info.value) and "boom from the student" in str(info.value)
    assert time.monotonic() - start < 45  # rank 0, stuck in init, is killed after the grace, not at the deadline


def test_a_hanging_rank_is_killed_with_its_children_and_named(files, tmp_path):
    student, cfg = files
    pidfile = tmp_path / "grandchild.pid"
    start = time.monotonic()
    with pytest.raises(LaunchError) as info:
        launch(student, 2, dict(cfg, hang=1, solo=True, pidfile=str(pidfile)), tmp_path / "run", timeout=15)
    assert time.monotonic() - start < 40  # 15 s for rank 0 to finish even on a loaded machine, then the kill
    assert str(info.value).startswith("rank 1 of 2 hung")
    assert [r.status for r in info.value.ranks] == ["done", "hung"]
    deadline = time.monotonic() + 10
    while not gone(int(pidfile.read_text())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(int(pidfile.read_text())), "the hung rank's own child survived the watchdog"


def test_two_launches_at_once_do_not_collide(files, tmp_path):
    student, cfg = files
    results: dict[int, object] = {}

    def go(i: int) -> None:
        try:
            results[i] = launch(student, 2, cfg, tmp_path / f"run{i}", timeout=90)
        except Exception as exc:  # kept to be shown by the assertion below
            results[i] = exc

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, Exception) for r in results.values()), results
    ports = {v["port"] for r in results.values() for v in r.values}
    assert len(ports) == 2 and all(float(v["sum"]) == 3.0 for r in results.values() for v in r.values)


def test_two_nodes_meet_through_a_c10d_rendezvous(files, tmp_path):
    student, cfg = files
    done = launch(student, 2, cfg, tmp_path / "run", timeout=90, nodes=2)
    assert [float(v["sum"]) for v in done.values] == [3.0, 3.0] and [v["rank"] for v in done.values] == [0, 1]
    assert (tmp_path / "run" / "agent1.log").exists()  # two torchrun agents, one per node
    with pytest.raises(ValueError, match="evenly"):
        launch(student, 3, cfg, tmp_path / "odd", nodes=2)


def test_process_group_start_has_its_own_deadline(files, tmp_path):
    student, cfg = files
    start = time.monotonic()
    with pytest.raises(LaunchError) as info:
        launch(student, 2, dict(cfg, wrong_world=True), tmp_path / "run", timeout=120, start_timeout=8)
    assert time.monotonic() - start < 60  # the start deadline, not the whole launch's
    assert "init_process_group for the other ranks to join" in str(info.value)
    assert {r.status for r in info.value.ranks} == {"hung"}


def test_a_barrier_only_rank_0_reaches_is_named(files, tmp_path):
    student, cfg = files
    with pytest.raises(LaunchError) as info:
        launch(student, 2, dict(cfg, barrier_on_rank0=True), tmp_path / "run", timeout=120,
               barrier_timeout=6)
    message = str(info.value)
    assert "rank 0 of 2 hung: waited" in message and "dist.barrier() #1" in message, message
    assert "rank 0 1, rank 1 0" in message and "if rank == 0:" in message, message



TMP_STUDENT = ALLREDUCE + """
_allreduce = worker

def worker(rank, world_size, cfg):
    import tempfile
    from torch.utils.data import DataLoader, TensorDataset
    # a DataLoader's worker hands batches over through a socket it binds under TMPDIR
    batches = DataLoader(TensorDataset(torch.arange(6.0)), batch_size=2, num_workers=1)
    return dict(_allreduce(rank, world_size, cfg), tmp=tempfile.gettempdir(), left=tempfile.mkdtemp(prefix="rank-"),
                loaded=float(sum(b[0].sum() for b in batches)))
"""


def test_a_launch_leaves_nothing_in_tmpdir(files, tmp_path, monkeypatch):
    student, cfg = files
    student.write_text(TMP_STUDENT, encoding="utf-8")
    outer = tmp_path / "tmp"
    outer.mkdir()
    monkeypatch.setenv("TMPDIR", str(outer))  # torchrun's agent makes its torchelastic_* logs under gettempdir()
    done = launch(student, 2, cfg, tmp_path / "run", timeout=60)
    assert [float(v["sum"]) for v in done.values] == [3.0, 3.0]  # the ranks compute what they did before
    assert [v["loaded"] for v in done.values] == [15.0, 15.0]
    inside = tmp_path / "run" / "tmp"
    if len(os.fsencode(inside)) <= TMPDIR_BYTES:  # a long pytest folder gets a short one in /tmp instead
        assert {v["tmp"] for v in done.values} == {str(inside)}  # the agents' and the ranks' TMPDIR
    assert not any(Path(v["left"]).exists() for v in done.values)  # the launch's own temporary folder is gone
    assert sorted(p.name for p in outer.iterdir()) == []


def test_a_launch_tmpdir_leaves_room_for_a_socket_path(tmp_path):
    (tmp_path / "run").mkdir()
    deep = tmp_path / ("d" * 80)
    deep.mkdir()
    far = launch_tmp(deep)
    try:
        assert far.is_dir() and len(os.fsencode(far)) <= TMPDIR_BYTES and not far.is_relative_to(deep)
    finally:
        shutil.rmtree(far)
    inside = tmp_path / "run" / "tmp"
    if len(os.fsencode(inside)) <= TMPDIR_BYTES:  # pytest's folder is short enough here
        assert launch_tmp(tmp_path / "run") == inside and inside.is_dir()
