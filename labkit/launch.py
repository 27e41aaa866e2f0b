"""Run a student's `worker(rank, world_size, cfg)` on N fresh processes, one per rank, with a watchdog."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.worker import import_path

OUTPUT_CAP = 4000  # characters of each rank's stdout+stderr kept for the report
CRASH_GRACE = 5.0  # seconds the other ranks get to finish once one rank has failed


class LaunchError(Exception):
    """A rank crashed, hung, or returned something unusable; the message names the rank."""

    def __init__(self, message: str, ranks: list[RankResult]):
        super().__init__(message)
        self.ranks = ranks


@dataclass
class RankResult:
    """What one rank left behind."""

    rank: int
    returncode: int | None  # None: killed by the watchdog
    output: str = ""
    value: Any = None  # what worker returned (plain data)
    saves: int = 0  # torch.save calls the student's code made
    seconds: float = 0.0


@dataclass
class Launch:
    """Every rank's result, in rank order."""

    ranks: list[RankResult] = field(default_factory=list)

    @property
    def values(self) -> list[Any]:
        """worker's return value per rank."""
        return [r.value for r in self.ranks]


def free_port() -> int:
    """A TCP port nobody listens on now: each launch rendezvouses on its own, so parallel gradings never collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world_size: int, port: int, threads: int, gpus: bool) -> dict[str, str]:
    """The environment torchrun would give one rank on a single node."""
    env = dict(os.environ)
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size),
               MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    if not gpus:  # a CPU check stays on gloo even where CUDA exists
        env["CUDA_VISIBLE_DEVICES"] = ""
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # all ranks are local: keep gloo off other interfaces
    return env


def launch(student: Path, world_size: int, builder: Path, builder_fn: str, builder_args: dict, workdir: Path, *,
           timeout: float = 60.0, threads: int = 1, gpus: bool = False) -> Launch:
    """Run worker on `world_size` ranks; cfg comes from `builder_fn(rank, world_size, **builder_args)` in `builder`."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec = {"student": str(Path(student).resolve()), "builder": str(Path(builder).resolve()), "fn": builder_fn,
            "args": builder_args}
    spec_path = workdir / "launch-spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    port, procs, logs = free_port(), [], []
    started = time.monotonic()
    for rank in range(world_size):
        log = open(workdir / f"rank{rank}.log", "w+b")  # noqa: SIM115  (closed below)
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", "labkit.launch", str(spec_path)], cwd=workdir,
                                      env=rank_env(rank, world_size, port, threads, gpus), stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
    try:
        ended = watch(procs, started + timeout)
    finally:
        for p in procs:
            kill(p)
    ranks = []
    for rank, (p, log) in enumerate(zip(procs, logs, strict=True)):
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
        log.close()
        ranks.append(RankResult(rank, p.returncode if rank in ended else None, text[-OUTPUT_CAP:],
                                seconds=ended.get(rank, time.monotonic()) - started))
    raise_for(ranks, timeout)
    for r in ranks:
        if not (workdir / f"rank{r.rank}.pt").exists():  # e.g. sys.exit(0) inside worker
            raise LaunchError(f"rank {r.rank} of {len(ranks)} exited without returning from worker:\n"
                              f"{last_lines(r.output)}", ranks)
        r.value, r.saves = read_result(workdir / f"rank{r.rank}.pt")
    return Launch(ranks)


def watch(procs: list[subprocess.Popen], deadline: float) -> dict[int, float]:
    """Wait for every rank (once one fails the rest get CRASH_GRACE); returns when each rank ended, hung ones absent."""
    ended: dict[int, float] = {}
    while time.monotonic() < deadline and len(ended) < len(procs):
        for i, p in enumerate(procs):
            if i not in ended and p.poll() is not None:
                ended[i] = time.monotonic()
                if p.returncode != 0:  # the others may wait forever in a collective
                    deadline = min(deadline, time.monotonic() + CRASH_GRACE)
        time.sleep(0.05)
    return ended


def kill(p: subprocess.Popen) -> None:
    """Kill a rank's whole process group (it may have started helpers) and reap it."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    p.wait()


def raise_for(ranks: list[RankResult], timeout: float) -> None:
    """Name the rank that crashed first (its peers then fail or hang in a collective), else the ranks that hung."""
    crashed = sorted((r for r in ranks if r.returncode not in (None, 0)), key=lambda r: r.seconds)
    hung = [r.rank for r in ranks if r.returncode is None]
    if crashed:
        r = crashed[0]
        raise LaunchError(f"rank {r.rank} of {len(ranks)} crashed (exit code {r.returncode}):\n"
                          f"{last_lines(r.output)}", ranks)
    if hung:
        names = ("ranks " if len(hung) > 1 else "rank ") + ", ".join(str(i) for i in hung)
        raise LaunchError(f"{names} of {len(ranks)} hung: still running after {timeout:.0f} s and killed "
                          "(a rank waiting in a collective the others never reach? a missing barrier?)", ranks)


def last_lines(text: str, n: int = 12) -> str:
    """The tail of a rank's output, where a traceback ends."""
    return "\n".join(text.rstrip().splitlines()[-n:])


def read_result(path: Path) -> tuple[Any, int]:
    """A rank's (worker value, torch.save count), read back with weights_only so nothing runs on load."""
    import torch

    data = torch.load(path, weights_only=True)
    return data["value"], data["saves"]


def rank_main(spec_path: str) -> None:
    """Inside one rank: count torch.save, import the student's file, build cfg, run worker, save its value."""
    import torch

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    real_save, saves = torch.save, [0]

    def counted_save(*args: Any, **kwargs: Any) -> Any:
        saves[0] += 1
        return real_save(*args, **kwargs)

    torch.save = counted_save  # before the student's import, so `from torch import save` is counted too
    student = import_path(spec["student"], "student_exercise")
    builder = import_path(spec["builder"], "labkit_launch_builder")
    cfg = getattr(builder, spec["fn"])(rank, world_size, **spec["args"])
    value = student.worker(rank, world_size, cfg)
    real_save({"value": plain(value), "saves": saves[0]}, Path(spec_path).parent / f"rank{rank}.pt")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip C++ static teardown: gloo's threads can abort a finished rank at exit (std::terminate)


def plain(value: Any) -> Any:
    """Tensors detached onto the CPU, containers kept: what weights_only can load."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


if __name__ == "__main__":
    rank_main(sys.argv[1])
