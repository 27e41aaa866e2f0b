"""labkit.lab.loadmeter: busy machines are told apart from our own work, and nothing really waits."""

from __future__ import annotations

import os

import pytest

from labkit.lab import loadmeter


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
