"""labkit.lab.timing: warm-up excluded, synchronised clocks, medians, interleaved ratios, busy machines, no waiting."""

from __future__ import annotations

import os

import pytest

from labkit.lab import loadmeter, timing


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


def write_proc(root, busy_ticks: int, procs: dict[int, tuple[int, int, int]]) -> None:
    """A fake /proc: machine-wide busy ticks, and per pid (session, utime, stime)."""
    root.mkdir(exist_ok=True)
    (root / "stat").write_text(f"cpu  {busy_ticks} 0 0 1000 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")
    for pid, (session, utime, stime) in procs.items():
        (root / str(pid)).mkdir(exist_ok=True)
        fields = ["S", "1", "1", str(session)] + ["0"] * 7 + [str(utime), str(stime)] + ["0"] * 10
        (root / str(pid) / "stat").write_text(f"{pid} (a name (with) spaces) " + " ".join(fields) + "\n")


class StepClock:
    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def test_load_meter_counts_other_processes_but_not_ours(tmp_path):
    proc = tmp_path / "proc"
    me, child = os.getpid(), 4242
    write_proc(proc, 1000, {me: (me, 0, 0), child: (child, 0, 0), 777: (777, 0, 0)})
    meter = loadmeter.LoadMeter(sessions=[child], proc=proc, clock=StepClock(1.0), cores=2)
    start = meter.sample()
    tps = loadmeter._ticks_per_second()
    # One second on two cores: our child spun one core, another process half of one.
    write_proc(proc, 1000 + tps + tps // 2, {me: (me, 0, 0), child: (child, tps, 0), 777: (777, tps // 2, 0)})
    load = meter.since(start)
    assert load.own == pytest.approx(0.5) and load.other == pytest.approx(0.25)
    assert not load.busy(0.3) and load.busy(0.2)
    assert "25% of 2 cores" in load.describe()


def test_a_submission_spinning_itself_does_not_make_the_machine_busy(tmp_path):
    proc = tmp_path / "proc"
    child = 99
    write_proc(proc, 0, {child: (child, 0, 0)})
    meter = loadmeter.LoadMeter(sessions=[child], proc=proc, clock=StepClock(2.0), cores=2)
    start = meter.sample()
    tps = loadmeter._ticks_per_second()
    write_proc(proc, 4 * tps, {child: (child, 4 * tps, 0)})  # both cores, for two seconds, all of it the child's
    assert not meter.since(start).busy()


def test_machine_busy_sleeps_through_an_injected_sleep(tmp_path):
    proc = tmp_path / "proc"
    write_proc(proc, 0, {})
    tps = loadmeter._ticks_per_second()

    def sleep(seconds: float) -> None:
        write_proc(proc, int(2 * tps * seconds), {})  # another process keeps both cores busy

    meter = loadmeter.LoadMeter(proc=proc, clock=StepClock(0.5), cores=2)
    load = loadmeter.machine_busy(0.5, sleep=sleep, meter=meter)
    assert load is not None and load.other == pytest.approx(1.0)
    assert "100% of 2 cores" in load.describe()
    quiet = loadmeter.LoadMeter(proc=proc, clock=StepClock(0.5), cores=2)
    assert loadmeter.machine_busy(0.5, sleep=lambda seconds: None, meter=quiet) is None


def test_short_windows_and_missing_proc_never_look_busy(tmp_path):
    assert not loadmeter.Load(other=5.0, own=0.0, cores=2, seconds=0.01).busy()
    meter = loadmeter.LoadMeter(proc=tmp_path / "nowhere", clock=StepClock(1.0), cores=2)
    assert meter.since(meter.sample()).other == 0.0


def test_load_meter_as_a_context_manager_on_the_real_proc():
    with loadmeter.LoadMeter() as meter:
        pass
    assert meter.result is not None and meter.result.cores >= 1


def test_pass_recorder_bounds_each_pass_and_sleeps_where_told():
    clock, slept = FakeClock(), []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    data = timing.PassRecorder(list(range(4)), [0.5, 0.0, 2.0], clock=clock, sleep=sleep)
    start = clock.now
    for _ in range(3):  # three passes, each sample read once per pass, 0.25 s of "work" per read
        for i in (2, 0, 3, 1):
            assert data[i] == i
            clock.advance(0.25)
        clock.advance(1.0)  # evaluation between epochs: outside the passes
    spans, uppers = data.bounds(start, clock.now)
    assert slept == [0.5, 2.0] and data.epoch == 2
    assert spans == [0.5 + 0.75, 0.75, 2.0 + 0.75]
    # Reads at 0 (then the 0.5 s sleep), .75, 1, 1.25 | 2.5, 2.75, 3, 3.25 | 4.5 (then 2 s), 6.75, 7, 7.25; end 8.5.
    assert uppers == [2.5 - 0.0, 4.5 - 1.25, 8.5 - 3.25]  # next pass's first read minus the previous pass's last


def test_gpu_work_is_queued_once_in_the_last_batch_of_its_pass(monkeypatch):
    import contextlib

    import torch
    from torch.utils.data import DataLoader

    queued = []
    monkeypatch.setattr(timing, "spin_cycles", lambda device, seconds: 123)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: queued.append((data.epoch, len(data.seen), cycles)))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    data = timing.PassRecorder([(torch.zeros(3), 0)] * 8)
    net = torch.nn.Linear(3, 2)
    net.register_forward_pre_hook(data.gpu_work_at_end(1, 2, 0.5, "cuda:0"))
    for _ in range(3):
        for X, _y in DataLoader(data, batch_size=2, shuffle=True):
            net(X)
        net.eval()
        net(torch.zeros(1, 3))  # evaluation: never gets the work
        net.train()
    assert queued == [(1, 8, 123)] and data.spun == [1]
