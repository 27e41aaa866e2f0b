"""benchmarks/timing.py: warm-up excluded, synchronised clocks, medians, interleaved ratios, no waiting."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import timing  # noqa: E402


class FakeClock:
    """A clock that only moves when the code under test 'works' (advance) — nothing really waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.log: list[str] = []

    def __call__(self) -> float:
        self.log.append("clock")
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_measure_excludes_warmup_and_takes_the_median():
    clock = FakeClock()
    durations = iter([5.0, 1.0, 1.25, 9.0, 1.125, 0.875])  # the first call is slow (warm-up), one is an outlier
    t = timing.measure(lambda: clock.advance(next(durations)), warmup=1, repeats=5, clock=clock)
    assert t.runs == [1.0, 1.25, 9.0, 1.125, 0.875]  # exact in binary floating point
    assert t.median == 1.125 and t.min == 0.875


def test_measure_synchronises_before_each_clock_read():
    clock = FakeClock()
    queued = []  # work "launched" but not finished: only sync() makes the time pass, like CUDA kernels

    def launch():
        queued.append(2.0)

    def sync():
        clock.log.append("sync")
        while queued:
            clock.advance(queued.pop())

    t = timing.measure(launch, warmup=1, repeats=3, clock=clock, sync=sync)
    assert t.runs == [2.0, 2.0, 2.0]  # without the sync the asynchronous work would look free
    reads = [i for i, e in enumerate(clock.log) if e == "clock"]
    assert all(clock.log[i - 1] == "sync" for i in reads)


def test_measure_without_sync_shows_what_it_would_miss():
    clock, queued = FakeClock(), []
    t = timing.measure(lambda: queued.append(2.0), warmup=0, repeats=2, clock=clock, sync=lambda: None)
    assert t.runs == [0.0, 0.0]


def test_measure_refuses_zero_repeats():
    with pytest.raises(ValueError):
        timing.measure(lambda: None, repeats=0)


def test_device_sync_is_a_no_op_off_cuda():
    for device in (None, "cpu", "meta"):
        assert timing.device_sync(device)() is None


def test_compare_interleaves_and_gives_ratios_of_medians():
    clock, order = FakeClock(), []

    def variant(name: str, seconds: float):
        def run():
            order.append(name)
            clock.advance(seconds)
        return run

    c = timing.compare({"one": variant("one", 2.0), "two": variant("two", 1.0)}, rounds=4, warmup=1, clock=clock,
                       sync=lambda: None)
    assert order == ["one", "two"] + ["one", "two", "two", "one", "one", "two", "two", "one"]
    assert c.baseline == "one" and c.timings["one"].median == 2.0
    assert c.ratios["two"] == pytest.approx(2.0) and c.ratios["one"] == 1.0


def test_compare_checks_its_arguments():
    with pytest.raises(ValueError):
        timing.compare({})
    with pytest.raises(ValueError):
        timing.compare({"a": lambda: None}, baseline="b")


