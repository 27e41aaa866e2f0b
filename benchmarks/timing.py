"""The benchmarks' timer: warm-up excluded, CUDA synchronised before the clock is read, medians, ratios from one run.

It lives with the benchmarks, never in the labkit package: it is a reference answer to exercise8's `benchmark`,
and the package is what a submission can import inside the sandbox. Timing on a shared machine is noisy, so
comparisons interleave their variants and report ratios of medians measured in the same run. Clocks and
synchronisation are injectable for tests.
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
