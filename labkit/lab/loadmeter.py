"""How busy the machine is: CPU time of other processes over a window, from /proc, for timing checks.

A timing check that would fail while others load the machine says `inconclusive` instead (the check measures
on its own clock; this module tells whether that measurement can be trusted). /proc and the clock are
injectable for tests.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from labkit.lab.devices import usable_cpus

Clock = Callable[[], float]
BUSY_FRACTION = 0.25  # of all cores, used by other processes: above it a timing check is inconclusive
MIN_WINDOW = 0.2  # seconds: shorter windows are too coarse to call the machine busy


@dataclass
class CpuSample:
    """Cumulative CPU ticks: the whole machine's busy ticks and those of the processes we own."""

    busy: int
    own: int
    when: float


@dataclass
class Load:
    """CPU used during a window, as fractions of all cores: by other processes and by our own."""

    other: float
    own: float
    cores: int
    seconds: float

    def busy(self, threshold: float = BUSY_FRACTION) -> bool:
        # /proc counts in ticks of 10 ms: a window much shorter than a second says nothing either way.
        return self.seconds >= MIN_WINDOW and self.other > threshold

    def describe(self) -> str:
        return (f"other processes used {self.other:.0%} of {self.cores} cores during {self.seconds:.1f} s "
                f"(ours {self.own:.0%})")


class LoadMeter:
    """Measures the CPU load of OTHER processes over a window (/proc/stat minus the processes we own).

    Ours are this process, `pids`, every process in `sessions`, and every descendant of `trees` (a
    sandboxed submission lives below its worker): a submission that loads the CPU itself counts as
    ours and cannot make a check inconclusive.
    """

    def __init__(self, *, pids: Iterable[int] = (), sessions: Iterable[int] = (), trees: Iterable[int] = (),
                 proc: str | Path = "/proc", clock: Clock = time.monotonic, cores: int | None = None):
        self.proc, self.clock = Path(proc), clock
        self.pids = {os.getpid(), *pids}
        self.sessions = set(sessions)
        self.trees = {t for t in trees if t}
        self.cores = cores or usable_cpus()
        self.start: CpuSample | None = None
        self.result: Load | None = None  # set when a `with LoadMeter(...)` block ends

    def sample(self) -> CpuSample:
        return CpuSample(self._machine_busy_ticks(), self._own_ticks(), self.clock())

    def __enter__(self) -> LoadMeter:
        self.start = self.sample()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.since(self.start)

    def since(self, start: CpuSample) -> Load:
        end = self.sample()
        seconds = max(end.when - start.when, 1e-9)
        ticks = seconds * _ticks_per_second() * self.cores
        own = max(0, end.own - start.own)
        other = max(0, end.busy - start.busy - own)
        return Load(other / ticks, own / ticks, self.cores, seconds)

    def _machine_busy_ticks(self) -> int:
        try:
            first = (self.proc / "stat").read_text().splitlines()[0].split()
        except (OSError, IndexError):
            return 0  # no /proc (not Linux): nothing can be said, so nothing looks busy
        values = [int(v) for v in first[1:]]
        # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
        user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
        return user + nice + system + irq + softirq + steal

    def _own_ticks(self) -> int:
        stats = {}
        for entry in self.proc.iterdir() if self.proc.is_dir() else ():
            fields = _stat_fields(entry / "stat") if entry.name.isdigit() else None
            if fields is not None:
                stats[int(entry.name)] = fields
        parent = {pid: int(f[1]) for pid, f in stats.items()}
        total = 0
        for pid, fields in stats.items():
            if pid in self.pids or int(fields[3]) in self.sessions or self._below_tree(pid, parent):
                # utime + stime, and cutime + cstime: children that ended (and were reaped) stay counted as ours
                total += sum(int(v) for v in fields[11:15])
        return total

    def _below_tree(self, pid: int, parent: dict[int, int]) -> bool:
        for _ in range(64):  # process trees are shallow; the bound guards against a cycle from pid reuse
            if pid in self.trees:
                return True
            pid = parent.get(pid, 0)
            if pid <= 1:
                return False
        return False


def _stat_fields(path: Path) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces): fields 3 onwards, state first."""
    try:
        text = path.read_text()
    except OSError:
        return None  # the process ended meanwhile
    close = text.rfind(")")
    return text[close + 2:].split() if close > 0 else None


def _ticks_per_second() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        return 100


def machine_busy(seconds: float = 0.5, *, threshold: float = BUSY_FRACTION, pids: Iterable[int] = (),
                 sessions: Iterable[int] = (), sleep: Callable[[float], None] = time.sleep,
                 meter: LoadMeter | None = None) -> Load | None:
    """Watch the CPU for `seconds`; the Load when other processes use more than `threshold` of it, else None."""
    meter = meter or LoadMeter(pids=pids, sessions=sessions)
    start = meter.sample()
    sleep(seconds)
    load = meter.since(start)
    return load if load.busy(threshold) else None
