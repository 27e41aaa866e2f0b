"""The launch's watchdog: follows every rank's phase through its state file, enforces the deadlines, stops it all."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from labkit.sandbox.outcome import Deadlines, RankResult, read_log

POLL = 0.05  # seconds between looks at the ranks' progress


class Process(Protocol):
    """What the watchdog needs of an agent (labkit.sandbox.agents.Agent)."""

    pid: int

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


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

    def run(self, agents: Sequence[Process]) -> None:
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


def stop(agents: Sequence[Process], rank_pids: list[int]) -> None:
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
