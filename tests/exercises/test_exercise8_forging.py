"""exercise8: submissions that try to pass without measuring (or without converting) get no points.

The timing checks judge benchmark's runs against the grader's own clock around each call of a gate it holds for
lengths only it knows; the conversion is judged by torch's own class and by values the grader recomputes.
"""

from __future__ import annotations

import importlib.util
import random

import pytest

from labkit.course.course import resolve

from conftest import result

TIMING = ("warmup_excluded", "median_resists_outlier", "known_duration")

CONSTANT = (  # the old flaw: one made-up number fitted every timing window
    "def benchmark(fn, *, device, warmup=3, repeats=10):\n    for _ in range(warmup + repeats):\n        fn()\n"
    "    return {'median_ms': {ms}, 'min_ms': {ms}, 'runs_ms': [{ms}] * repeats}\n")

FORGERS = {
    # sleeps between the calls so that the gap around each one is wide, then reports a number from the top of
    # the published range: the windows are capped near each call's own length, so no gap makes room for it
    "wide_gaps_and_a_constant": (
        "def benchmark(fn, *, device, warmup=3, repeats=10):\n"
        "    for _ in range(warmup + repeats):\n        fn()\n        time.sleep(0.15)\n"
        "    return {'median_ms': 75.0, 'min_ms': 75.0, 'runs_ms': [75.0] * repeats}\n"),
    # a CPU clock: a call that waits costs no CPU time, so it reads (nearly) nothing
    "cpu_time_not_wall_time": (
        "def benchmark(fn, *, device, warmup=3, repeats=10):\n    for _ in range(warmup):\n        fn()\n"
        "    runs = []\n    for _ in range(repeats):\n        t0 = time.process_time()\n        fn()\n"
        "        runs.append((time.process_time() - t0) * 1000)\n"
        "    return {'median_ms': statistics.median(runs), 'min_ms': min(runs), 'runs_ms': runs}\n"),
    # one clock around the whole loop, shared out evenly: right in total, wrong for every call
    "whole_loop_shared_out": (
        "def benchmark(fn, *, device, warmup=3, repeats=10):\n    for _ in range(warmup):\n        fn()\n"
        "    t0 = time.perf_counter()\n    for _ in range(repeats):\n        fn()\n"
        "    each = (time.perf_counter() - t0) * 1000 / repeats\n"
        "    return {'median_ms': each, 'min_ms': each, 'runs_ms': [each] * repeats}\n"),
    # no clock at all: plausible numbers from a seeded generator
    "made_up_numbers": (
        "import random as _random\n\ndef benchmark(fn, *, device, warmup=3, repeats=10):\n"
        "    for _ in range(warmup + repeats):\n        fn()\n"
        "    runs = [_random.Random(7).uniform(10, 80) for _ in range(repeats)]\n"
        "    return {'median_ms': statistics.median(runs), 'min_ms': min(runs), 'runs_ms': runs}\n"),
}

SUBCLASS = (  # torch's conversion, then every SyncBatchNorm made a subclass that borrows torch's name
    "class SyncBatchNorm(nn.SyncBatchNorm):\n    pass\n\n"
    "SyncBatchNorm.__module__, SyncBatchNorm.__qualname__ = 'torch.nn.modules.batchnorm', 'SyncBatchNorm'\n\n"
    "def convert_batchnorm_for_ddp(model):\n    model = nn.SyncBatchNorm.convert_sync_batchnorm(model)\n"
    "    for m in model.modules():\n        if type(m) is nn.SyncBatchNorm:\n            m.__class__ = SyncBatchNorm\n"
    "    return model\n")


@pytest.mark.parametrize("ms", [5.0, 28.0, 60.0, 120.0])
def test_a_constant_answer_fails_every_timing_check(grade_source, solution_source, ms):
    report = grade_source("exercise8", solution_source("exercise8") + "\n\n" + CONSTANT.replace("{ms}", str(ms)),
                          only=TIMING)
    for name in TIMING:
        assert result(report, name).status == "failed", (name, result(report, name).message)
    assert report.score == 0


@pytest.mark.parametrize("forger", sorted(FORGERS))
def test_a_benchmark_without_a_clock_around_each_call_gets_no_timing_points(grade_source, solution_source, forger):
    report = grade_source("exercise8", solution_source("exercise8") + "\n\n" + FORGERS[forger], only=TIMING)
    for name in TIMING:
        r = result(report, name)
        assert r.status == "failed", (name, r.status, r.message)
        assert "time each call" in r.message or "seconds" in r.message, (name, r.message)
    assert report.score == 0


def test_a_subclass_that_borrows_torchs_name_is_not_syncbatchnorm(grade_source, solution_source):
    report = grade_source("exercise8", solution_source("exercise8") + "\n\n" + SUBCLASS, only=("batchnorm_converted",))
    failed = result(report, "batchnorm_converted")
    assert failed.status == "failed", (failed.status, failed.message)
    assert "not torch's own class" in failed.message and "must become torch's nn.SyncBatchNorm" in failed.message
    assert report.score == 0


# --- the GPU check's judgement, proven on any machine with answers shaped like a GPU's ---------------------

class FakeSub:
    """Stands in for the submission: answers the GPU check's program with a chosen benchmark result."""

    def __init__(self, answer):
        self.rng, self.answer, self.program = random.Random(5), answer, None

    def run(self, program, gate=None):
        self.program = program.to_data()
        work = next(s["recipe"]["ms"] for s in self.program["steps"] if s["op"] == "let")
        runs, wall = self.answer(work)
        return {"values": {"res": {"median_ms": sorted(runs)[1], "min_ms": min(runs), "runs_ms": runs}},
                "steps": [], "gates": [[0.0, 1.0], [1.0 + wall / 1000, 1.0 + wall / 1000]]}


def cuda_check():
    path = resolve("exercise8").checks_file
    spec = importlib.util.spec_from_file_location("labkit_checks_exercise8_gpu", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cuda_synchronised


ANSWERS = {  # (runs_ms, the benchmark's wall time in ms on the grader's clock) from the queued work per call
    "synchronised": lambda w: ([x * 1.03 + 0.2 for x in w[1:]], sum(w) * 1.05 + 3),
    # the injected work ran 25 % short or 40 % long of what was asked (a calibration off, a GPU throttling)
    "synchronised_work_short": lambda w: ([x * 0.75 + 0.2 for x in w[1:]], sum(w) * 0.8 + 3),
    "synchronised_work_long": lambda w: ([x * 1.4 + 0.2 for x in w[1:]], sum(w) * 1.45 + 3),
    "never_synchronised": lambda w: ([0.02, 0.02, 0.02], 0.5),
    "synchronised_at_the_end_only": lambda w: ([w[0] + w[1], w[2], w[3]], sum(w) + 1),
    "a_constant_after_one_final_wait": lambda w: ([50.0, 50.0, 50.0], sum(w) + 1),
    "numbers_larger_than_the_wall_clock": lambda w: ([x * 1.03 for x in w[1:]], 2.0),
}


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_cuda_check_passes_only_a_synchronised_clock(answer):
    from labkit.checks import CheckFailed

    sub = FakeSub(ANSWERS[answer])
    if answer in ("synchronised", "synchronised_work_short", "synchronised_work_long"):
        cuda_check()(sub)
    else:
        with pytest.raises(CheckFailed):
            cuda_check()(sub)
    steps = sub.program["steps"]
    assert steps[0]["recipe"]["$"] == "gpu_work" and steps[2]["fn"] == "benchmark"
    assert steps[1]["fn"] == steps[3]["fn"] == {"$": "gate"}  # the grader's clock brackets the benchmark
