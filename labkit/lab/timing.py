"""Honest timing: warm-up excluded, CUDA synchronised before the clock is read, medians, ratios from one run.

Timing on a shared machine is noisy, so comparisons interleave their variants
and report ratios of medians measured in the same run; `machine_busy` tells a
check when other processes load the machine, so it can say `inconclusive`
instead of failing (labkit/lab/loadmeter.py). Clocks and synchronisation are injectable for tests.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]


@dataclass
class Timing:
    """Seconds per run of one function, warm-up excluded."""

    runs: list[float]
    median: float
    min: float

    @classmethod
    def of(cls, runs: list[float]) -> Timing:
        if not runs:
            raise ValueError("no runs were timed (repeats must be >= 1)")
        return cls(list(runs), statistics.median(runs), min(runs))


@dataclass
class Comparison:
    """Several variants timed in one interleaved run; `ratios[name]` = median(baseline) / median(name)."""

    timings: dict[str, Timing]
    baseline: str
    ratios: dict[str, float] = field(default_factory=dict)  # above 1: faster than the baseline


def device_sync(device: Any) -> Callable[[], None]:
    """A function that waits for `device`'s queued work: torch.cuda.synchronize for CUDA, nothing otherwise."""
    if device is None or (getattr(device, "type", None) or str(device).split(":")[0]) != "cuda":
        return lambda: None
    import torch

    dev = torch.device(device)
    return lambda: torch.cuda.synchronize(dev)


def measure(fn: Callable[[], Any], *, device: Any = None, warmup: int = 1, repeats: int = 5,
            clock: Clock = time.perf_counter, sync: Callable[[], None] | None = None) -> Timing:
    """Time `fn()` `repeats` times after `warmup` untimed calls, synchronising the device around each run."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = sync or device_sync(device)
    for _ in range(max(0, warmup)):  # first calls pay for allocation, autotuning, lazy initialisation
        fn()
    runs = []
    for _ in range(repeats):
        sync()  # earlier work still queued on the device must not be billed to this run
        start = clock()
        fn()
        sync()  # CUDA kernels are asynchronous: without this the clock reads when they were queued
        runs.append(clock() - start)
    return Timing.of(runs)


def compare(variants: dict[str, Callable[[], Any]], *, rounds: int = 5, warmup: int = 1, device: Any = None,
            clock: Clock = time.perf_counter, sync: Callable[[], None] | None = None,
            baseline: str | None = None) -> Comparison:
    """Time every variant in interleaved rounds (order reversed every other round); ratios of medians."""
    if not variants:
        raise ValueError("compare needs at least one variant")
    names = list(variants)
    baseline = baseline or names[0]
    if baseline not in variants:
        raise ValueError(f"baseline {baseline!r} is not one of {names}")
    sync = sync or device_sync(device)
    for name in names:
        for _ in range(max(0, warmup)):
            variants[name]()
    runs: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        # Interleaving spreads slow drifts (thermal, other jobs) over every variant alike.
        for name in names if r % 2 == 0 else reversed(names):
            sync()
            start = clock()
            variants[name]()
            sync()
            runs[name].append(clock() - start)
    timings = {name: Timing.of(runs[name]) for name in names}
    base = timings[baseline].median
    ratios = {name: (base / t.median if t.median > 0 else float("inf")) for name, t in timings.items()}
    return Comparison(timings, baseline, ratios)


class PassRecorder:
    """A map-style dataset over `samples` that notes when each one is read and sleeps `delays[e]` s in pass e.

    Checks hand it to a training loop: the reading times bound each epoch from outside (its first to its
    last sample, at least; the gap between its neighbours, at most), and the sleeps make epochs differ.
    """

    def __init__(self, samples: Any, delays: list[float] = (), *, clock: Clock = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep):
        self.samples, self.delays, self.clock, self.sleep = samples, list(delays), clock, sleep
        self.epoch, self.seen, self.stamps = 0, set(), []  # stamps: (pass, time) per sample read
        self.spun: list[int] = []  # passes that got queued GPU work (gpu_work_at_end)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Any:
        i = int(i)
        if i in self.seen:  # a sample read twice: a new pass over the data has begun
            self.epoch, self.seen = self.epoch + 1, set()
        first = not self.seen
        self.seen.add(i)
        self.stamps.append((self.epoch, self.clock()))
        if first and self.epoch < len(self.delays) and self.delays[self.epoch]:
            self.sleep(self.delays[self.epoch])
        return self.samples[i]

    def bounds(self, start: float, end: float) -> tuple[list[float], list[float]]:
        """Per pass: seconds from its first to its last read, and from the previous pass's end to the next's start."""
        passes: dict[int, list[float]] = {}
        for epoch, t in self.stamps:
            passes.setdefault(epoch, []).append(t)
        runs = [ts for _, ts in sorted(passes.items())]
        spans = [ts[-1] - ts[0] for ts in runs]
        uppers = [(runs[e + 1][0] if e + 1 < len(runs) else end) - (runs[e - 1][-1] if e else start)
                  for e in range(len(runs))]
        return spans, uppers

    def gpu_work_at_end(self, epoch: int, batch: int, seconds: float, device: Any) -> Callable:
        """A forward pre-hook that queues `seconds` of GPU work in pass `epoch`'s last training batch, once."""
        import torch

        cycles = spin_cycles(device, seconds)

        def hook(module: Any, args: tuple) -> None:
            last = len(self.seen) + batch > len(self)  # no full batch is left in this pass
            if module.training and last and self.epoch == epoch and epoch not in self.spun:
                self.spun.append(epoch)
                with torch.cuda.device(args[0].device):
                    torch.cuda._sleep(cycles)  # asynchronous: only a synchronised clock sees it

        return hook


def spin_cycles(device: Any, seconds: float, clock: Clock = time.perf_counter) -> int:
    """GPU cycles for torch.cuda._sleep to keep `device` busy about `seconds` (queued work a clock must wait for)."""
    import torch

    torch.cuda.synchronize(device)  # also starts CUDA, so the calibration below does not time that
    cycles = 20_000_000
    with torch.cuda.device(device):
        start = clock()
        torch.cuda._sleep(cycles)
        torch.cuda.synchronize(device)
    return int(cycles * seconds / max(clock() - start, 1e-6))


# --- how busy is the machine? -------------------------------------------------------------
