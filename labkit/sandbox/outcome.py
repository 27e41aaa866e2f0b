"""What a launch left behind: every rank's result, and the message that names the rank that crashed or hung."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTPUT_CAP = 4000  # characters of each rank's output kept for the report


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


def raise_for(ranks: list[RankResult], why_hung: dict[int, str], workdir: Path) -> None:
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
            lines.append(f"rank {r.rank} of {n} hung: {why_hung.get(r.rank, f'was still in {r.phase}')}; killed")
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
