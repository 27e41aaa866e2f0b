"""exercise4: classic mistakes fail with a message that names them."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pytest

from labkit.course.course import resolve
from labkit.grading.engine import grade

from conftest import result

WRAP_TRAIN = "_reference_train = train\n\n\ndef train(*args, **kwargs):\n    out = _reference_train(*args, **kwargs)\n"
WRAP_RESNET = ("_reference_resnet18 = resnet18\n\n\n"
               "def resnet18(num_classes=10, in_channels=1, base_channels=64):\n"
               "    net = _reference_resnet18(num_classes, in_channels, base_channels)\n")

WRONG = {
    "constant_epoch_time": (
        WRAP_TRAIN + "    out['epoch_seconds'] = [1.0] * len(out['epoch_seconds'])\n    return out\n",
        ["epoch_times_honest"], "the same time"),
    "cumulative_epoch_time": (
        "import itertools\n\n" + WRAP_TRAIN +
        "    out['epoch_seconds'] = list(itertools.accumulate(out['epoch_seconds']))\n    return out\n",
        ["epoch_times_honest"], "not the time since the start"),
    "accuracy_in_percent": (
        WRAP_TRAIN + "    out['test_acc'] = 100 * out['test_acc']\n    return out\n",
        ["train_learns"], "fraction between 0 and 1"),
    "lr_left_unscaled": (
        "def scaled_lr(base_lr, base_batch, batch):\n    return base_lr\n",
        ["scaling_rule"], "unchanged"),
    "no_warmup": (
        "def lr_at(step, warmup_steps, peak_lr):\n    return peak_lr\n",
        ["warmup_schedule", "train_learns"], "peak"),
    "maxpool_stem": (
        WRAP_RESNET + "    net[0].append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))\n    return net\n",
        ["resnet_shapes", "resnet_options"], "max-pool"),
    "last_stage_too_narrow": (
        "def resnet18(num_classes=10, in_channels=1, base_channels=64):\n    c = base_channels\n"
        "    return nn.Sequential(\n"
        "        nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU()),\n"
        "        stage(c, c, True), stage(c, 2 * c, False), stage(2 * c, 4 * c, False), stage(4 * c, 4 * c, False),\n"
        "        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * c, num_classes))\n",
        ["resnet_shapes", "resnet_options"], "the stages should output"),
    "conv_without_bias": (
        WRAP_RESNET + "    for m in net.modules():\n        if isinstance(m, nn.Conv2d):\n            m.bias = None\n"
        "    return net\n",
        ["resnet_shapes"], "no bias"),
    "init_mean_not_std": (  # the positional argument after the tensor is the mean
        "def init_weights(m):\n    if type(m) in (nn.Linear, nn.Conv2d):\n        nn.init.normal_(m.weight, 0.01)\n",
        ["init_weights_d2l"], "sets the MEAN"),
    "init_every_weight": (  # hasattr catches BatchNorm's weight too
        "def init_weights(m):\n    if getattr(m, 'weight', None) is not None:\n"
        "        nn.init.normal_(m.weight, std=0.01)\n",
        ["init_weights_d2l"], "changed 1.weight"),
    "init_biases_too": (
        "def init_weights(m):\n    if type(m) in (nn.Linear, nn.Conv2d):\n        nn.init.normal_(m.weight, std=0.01)\n"
        "        nn.init.zeros_(m.bias)\n",
        ["init_weights_d2l"], "0.bias"),
    "init_without_a_type_test": (  # ReLU has no weight: net.apply hands it over all the same
        "def init_weights(m):\n    nn.init.normal_(m.weight, std=0.01)\n",
        ["init_weights_d2l"], "act only on nn.Linear and nn.Conv2d"),
    "init_uniform": (
        "def init_weights(m):\n    if type(m) in (nn.Linear, nn.Conv2d):\n"
        "        nn.init.uniform_(m.weight, -0.01 * 3 ** 0.5, 0.01 * 3 ** 0.5)\n",
        ["init_weights_d2l"], "look uniform"),
}


@pytest.fixture
def grade_some(worker, tmp_path):
    """Grade `source` against only the named checks of exercise4 (the same checks.py, the others deleted)."""

    def run(source: str, names: list[str], extra: str = ""):
        exercise = resolve("exercise4")
        folder = tmp_path / "exercise4"
        folder.mkdir(exist_ok=True)
        text = exercise.checks_file.read_text(encoding="utf-8") + extra  # `extra`: test-only checks
        others = [n for n in _check_names(exercise) if n not in names]
        (folder / "checks.py").write_text(text + "\n" + "".join(f"del {n}\n" for n in others), encoding="utf-8")
        student = tmp_path / "exercise4.py"
        student.write_text(source, encoding="utf-8")
        return grade(dataclasses.replace(exercise, folder=folder), student, worker=worker)

    return run


def _check_names(exercise) -> list[str]:
    from labkit.grading.plan import load_checks

    return [c.name for c in load_checks(exercise)[0]]


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_some, solution_source, mistake):
    patch, names, phrase = WRONG[mistake]
    report = grade_some(solution_source("exercise4") + "\n\n" + patch, names)
    assert [r.name for r in report.results] == names
    for name in names:
        failed = result(report, name)
        assert failed.status == "failed", (name, failed.status, failed.message)
        assert phrase in failed.message, failed.message


# --- forging: a submission that does not do the work gets nothing ---------------------

FORGED = {
    # Steps an optimizer at lr_at's rates on a dummy parameter, reports falling losses and a fine accuracy: the
    # grader classifies its own images with the network and sees chance.
    "fake_training": (
        "def train(net, devices, batch_size, lr, epochs, train_set, test_set, warmup_steps=0):\n"
        "    p = torch.zeros(1, requires_grad=True)\n    opt = torch.optim.SGD([p], lr=lr)\n"
        "    steps = epochs * -(-len(train_set) // batch_size)\n    for s in range(steps):\n"
        "        opt.param_groups[0]['lr'] = lr_at(s, warmup_steps, lr)\n        p.sum().backward()\n"
        "        opt.step()\n"
        "    return {'test_acc': 0.9, 'epoch_seconds': [0.1 * (e + 1) for e in range(epochs)],\n"
        "            'losses': [2.3 - s / steps for s in range(steps)]}\n",
        ["train_learns"], "expected at least 50 %"),
    # Real training, made-up epoch times of a plausible size that differ: the grader's holds bound each epoch.
    "guessed_epoch_times": (
        WRAP_TRAIN + "    out['epoch_seconds'] = [0.5 - 0.01 * e for e in range(len(out['epoch_seconds']))]\n"
        "    return out\n", ["epoch_times_honest"], "train() reported"),
    # The right parameter count in one layer: the shapes a forward pass goes through give it away.
    "parameter_count_only": (
        "def resnet18(num_classes=10, in_channels=1, base_channels=64):\n"
        "    n = sum(p.numel() for p in _reference_resnet18(num_classes, in_channels, base_channels).parameters())\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 784, n // (in_channels * 785)))\n",
        ["resnet_shapes"], "the stages should output"),
}


@pytest.mark.parametrize("forgery", sorted(FORGED))
def test_forged_answers_get_no_points(grade_some, solution_source, forgery):
    patch, names, phrase = FORGED[forgery]
    source = solution_source("exercise4") + "\n\n_reference_resnet18 = resnet18\n\n\n" + patch
    report = grade_some(source, names)
    for name in names:
        failed = result(report, name)
        assert failed.status == "failed" and failed.points == 0, (name, failed.status, failed.message)
        assert phrase in failed.message, failed.message


CPU_FALLBACK = (WRAP_RESNET + "    class Shifted(nn.Module):\n        def __init__(self):\n"
                "            super().__init__()\n            self.net = net\n\n        def forward(self, x):\n"
                "            return self.net(x + torch.zeros(1, 1, 1, 1))  # a CPU tensor: no forward on meta\n\n"
                "    return Shifted()\n")


def test_a_forward_that_cannot_run_on_meta_is_watched_on_the_cpu(grade_some, solution_source):
    report = grade_some(solution_source("exercise4") + "\n\n" + CPU_FALLBACK, ["resnet_shapes", "resnet_options"])
    assert [(r.name, r.status) for r in report.results] == [("resnet_shapes", "passed"), ("resnet_options", "passed")]


# The GPU checks' programs are device-agnostic: run here on the CPU, as test-only checks beside the real ones.
CPU_PROGRAMS = '''

@check(points=1, title="the GPU timing program, on the CPU")
def cpu_busy_timing(sub):
    holds = [0.05, 0.12, 0.08]  # epoch 2 also gets DELAY s of device work after its gate (plain CPU work here)
    judge_epoch_times(timing_run(sub, 64, 16, holds, "cpu", [0.0, DELAY, 0.0]), holds, 1)


@check(points=1, title="the scaling program, on the CPU")
def cpu_scaling(sub):
    held = build(dataset("synthetic", n=40, seed=3))
    run, again = (scaling_run(sub, ["cpu"], 16, 0.05, 2, [1, 2, 3], held, 64, 3, 0.25, base_channels=2)
                  for _ in range(2))
    expect(run["used"] == ["cpu"] and 0 < run["epoch"] < 60 and 0 <= run["acc"] <= 1, str(run))
    expect(again["acc"] == run["acc"], "the seed step should start both runs from the same weights")


@check(points=1, title="the calibration program, on the CPU")
def cpu_calibration(sub):
    cal = data_parallel_speedup(sub.run(data_parallel_program(["cpu", "cpu"], 2, 8, 2, 2, 5), gate=lambda k: 0.0)
                                ["gates"])
    expect(cal["one"] > 0 and cal["many"] > 0 and cal["speedup"] == cal["one"] / cal["many"], str(cal))
'''


def test_the_gpu_programs_run_on_the_cpu(grade_some, solution_source):
    names = ["cpu_busy_timing", "cpu_scaling", "cpu_calibration"]
    report = grade_some(solution_source("exercise4"), names, extra=CPU_PROGRAMS)
    assert [(r.name, r.status) for r in report.results] == [(n, "passed") for n in names], \
        [r.message for r in report.results]


# --- the GPU checks' verdicts, proven on the CPU with canned answers ---------------------

def checks_module():
    from labkit.grading.plan import load_checks

    return load_checks(resolve("exercise4"))[1]


def gpu_timing_answer(epoch_seconds: list[float]) -> dict:
    """A GPU run of 3 epochs (0.02 s of work each) held 0.1, 0.2 and 0.15 s; epoch 2 got 0.5 s of queued GPU work."""
    return {"result": {"test_acc": 0.5, "epoch_seconds": epoch_seconds, "losses": [1.0] * 24},
            "gates": [[0.01, 0.11], [0.13, 0.33], [0.85, 1.0]], "start": 0.0, "end": 1.02, "used": {"cuda:0"}}


def test_gpu_timing_verdict_passes_a_synchronised_clock_and_catches_one_that_is_not():
    from labkit.checks import CheckFailed

    judge, holds = checks_module().judge_epoch_times, [0.1, 0.2, 0.15]
    judge(gpu_timing_answer([0.12, 0.72, 0.17]), holds, 1)  # synchronised: the work shows in epoch 2
    for times, phrase in (([0.12, 0.22, 0.17], "torch.cuda.synchronize"), ([0.12, 0.22, 0.67], "billed it to epoch 3"),
                          ([0.05, 0.72, 0.17], "took at least 0.10 s"), ([0.18, 0.6, 0.17], "took at most 0.13 s")):
        with pytest.raises(CheckFailed, match=phrase):
            judge(gpu_timing_answer(times), holds, 1)


def timing_answer(holds: list[float], busy: list[float], synchronised: bool, used=("cuda:0",)) -> dict:
    """What timing_run gives for a train() whose epochs take 0.02 s of work, then wait at the gate for the hold,
    then (synchronised) for the GPU work queued after it; an unsynchronised clock stops before that work."""
    t, gates, times = 0.0, [], []
    for hold, work in zip(holds, busy, strict=True):
        gates.append([t + 0.02, t + 0.02 + hold])
        times.append(0.02 + hold + (work if synchronised else 0.0))
        t += 0.02 + hold + work
    return {"result": {"test_acc": 0.5, "epoch_seconds": times, "losses": [1.0] * 32}, "gates": gates,
            "start": 0.0, "end": t + 0.01, "used": set(used)}


@pytest.mark.parametrize("synchronised, used, phrase", [
    (True, ("cuda:0",), None),
    (False, ("cuda:0",), "torch.cuda.synchronize"),
    (True, ("cpu",), "not on cuda:0"),
])
def test_gpu_epoch_times_check_with_canned_runs(monkeypatch, synchronised, used, phrase):
    from labkit.checks import CheckFailed

    module = checks_module()
    monkeypatch.setattr(module, "timing_run", lambda sub, n, batch, holds, where, busy:
                        timing_answer(holds, busy, synchronised, used))
    if phrase is None:
        module.gpu_epoch_times_synchronised(CannedSub())
        return
    with pytest.raises(CheckFailed, match=phrase):
        module.gpu_epoch_times_synchronised(CannedSub())


class CannedSub:
    """A Submission stand-in for checks whose runs are replaced by canned answers."""

    def __init__(self):
        import random

        self.rng, self.pid, self.notes = random.Random(0), None, []

    def run(self, program, gate=None):  # only the calibration program reaches here: its reading is canned too
        return {"values": {}, "steps": [], "gates": []}

    def note(self, text):
        self.notes.append(text)


def meter(other: float):
    """A LoadMeter stand-in: other processes used `other` of 2 cores during the comparison."""
    from labkit.lab.loadmeter import Load

    class Meter:
        result = Load(other=other, own=0.0, cores=2, seconds=30.0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    return lambda **kwargs: Meter()


def scaling_answer(one_epoch=10.0, two_epoch=6.0, one_acc=0.90, two_acc=0.89, used=("cuda:0", "cuda:1")):
    return {"one": {"epoch": one_epoch, "acc": one_acc, "used": ["cuda:0"]},
            "two": {"epoch": two_epoch, "acc": two_acc, "used": list(used)}}


def two_gpus(monkeypatch, answer, calibration=1.8, other=0.0):
    """two_gpus_faster on a CannedSub: canned runs, labkit's own model at `calibration`x, the load meter fixed."""
    module = checks_module()
    monkeypatch.setattr(module, "scaling_run", lambda sub, devices, *a, **k: answer["two" if devices[1:] else "one"])
    monkeypatch.setattr(module, "data_parallel_speedup", lambda gates: {"one": 2.0, "many": 2.0 / calibration,
                                                                        "speedup": calibration})
    monkeypatch.setattr(module, "LoadMeter", meter(other))
    sub = CannedSub()
    module.two_gpus_faster(sub)
    return sub


def test_two_gpu_verdict_passes_a_real_speedup_and_says_the_figures(monkeypatch):
    sub = two_gpus(monkeypatch, scaling_answer())
    assert sub.notes and "1.67x" in sub.notes[0] and "1.80x" in sub.notes[0], sub.notes


@pytest.mark.parametrize("answer, calibration, phrase", [
    (scaling_answer(two_epoch=9.0), 1.8, "1.11x .* expected at least 1.3x"),  # the hardware could: the code could not
    (scaling_answer(two_acc=0.70), 1.8, "warm-up"),
    (scaling_answer(two_acc=0.70), 1.1, "warm-up"),  # slow hardware excuses no accuracy
    (scaling_answer(two_epoch=9.8, used=["cuda:0"]), 1.1, "nn.DataParallel"),  # nor a missing DataParallel
])
def test_two_gpu_verdict_fails_wrong_answers(monkeypatch, answer, calibration, phrase):
    from labkit.checks import CheckFailed

    with pytest.raises(CheckFailed, match=phrase):
        two_gpus(monkeypatch, answer, calibration)


def test_two_gpu_verdict_is_inconclusive_where_labkits_own_model_cannot_reach_the_bar(monkeypatch):
    from labkit.checks import Inconclusive

    with pytest.raises(Inconclusive, match=r"cannot show a 1.3x speed-up: .*1.11x.* own model .*1.20x.*1.5x"):
        two_gpus(monkeypatch, scaling_answer(two_epoch=9.0), calibration=1.2)


def test_two_gpu_verdict_is_inconclusive_when_other_processes_load_the_machine(monkeypatch):
    from labkit.checks import Inconclusive

    with pytest.raises(Inconclusive, match="90% of 2 cores"):
        two_gpus(monkeypatch, scaling_answer(two_epoch=9.0), other=0.9)


def test_the_calibration_program_wraps_labkits_model_in_data_parallel_over_the_two_gpus():
    from labkit.lab.calibration import data_parallel_program, data_parallel_speedup

    steps = data_parallel_program(["cuda:0", "cuda:1"], 128, 256, 16, 4, 7).to_data()["steps"]
    nets = {s["name"]: s["recipe"] for s in steps if s["op"] == "let" and s["recipe"].get("$") == "module"}
    assert nets["many"]["wrap"] == "DataParallel" and nets["many"]["device_ids"] == [0, 1]
    assert nets["one"]["wrap"] is None and nets["one"]["layers"][0] == ["Conv2d", 1, 128, 3, 1, 1]
    calls = [s for s in steps if s["op"] == "call"]
    assert sum(s["fn"] == {"$": "gate"} for s in calls) == 16  # a gate before and after each of 2 runs x 4 rounds
    assert sum(s["op"] == "backward" for s in steps) == 4 * (16 + 8)  # the same samples on one GPU and on two
    # rounds of (one, many): 2 s and 1 s after a slow first round; the grader's clock between each pair of gates
    gates = [[0, 0], [5, 5], [5, 5], [8, 8], [8, 8], [10, 10], [10, 10], [11, 11], [11, 11], [13.1, 13.1],
             [13.1, 13.1], [14.2, 14.2], [14.2, 14.2], [16, 16], [16, 16], [17, 17]]
    assert data_parallel_speedup(gates) == {"one": 2.0, "many": 1.0, "speedup": 2.0}
    with pytest.raises(ValueError, match="gates"):
        data_parallel_speedup(gates[:3])


def test_a_data_parallel_recipe_with_device_ids_builds_on_a_cpu(monkeypatch):
    import torch

    from labkit.inputs import build
    from labkit.recipe import module

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    net = build({**module([["Linear", 3, 2]]), "wrap": "DataParallel", "device_ids": [0, 1]})
    assert isinstance(net, torch.nn.DataParallel) and net.device_ids == []  # no CUDA: it calls the module itself
    assert net(torch.ones(4, 3)).shape == (4, 2)


# --- `labkit run exercise4 --full` and its plot -----------------------------------------

def test_plot_comparison_writes_a_png_from_fake_runs(tmp_path):
    import matplotlib.pyplot as plt

    from labkit.lab.experiment import plot_comparison

    runs = [{"label": "1 GPU", "test_acc": 0.92, "epoch_seconds": [14.2, 14.0, 13.9], "epoch_acc": [0.8, 0.88, 0.92],
             "losses": [2.3 - 0.01 * i for i in range(30)]},
            {"label": "2 GPUs", "test_acc": 0.72, "epoch_seconds": [9.5, 9.3, 9.2], "losses": [2.3] * 15}]
    path = plot_comparison(runs, tmp_path / "cmp.png")
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 600


def test_full_run_refuses_on_a_cpu_without_force(monkeypatch, tmp_path):
    import torch

    from labkit.lab.experiment import NeedsGPU, run_full

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NeedsGPU, match="--force"):
        run_full(object(), data_dir=tmp_path, force=False, out_dir=tmp_path)
    assert not list(tmp_path.iterdir())


def test_full_run_needs_the_real_data(monkeypatch, tmp_path):
    import torch

    from labkit.lab.data import DataError
    from labkit.lab.experiment import run_full

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DataError, match="labkit data fetch"):
        run_full(object(), data_dir=tmp_path, force=True, out_dir=tmp_path)


def test_full_run_forced_on_a_cpu_prints_plots_and_saves(monkeypatch, tmp_path, solution_source):
    import json
    import types

    import torch

    from labkit.files import import_path

    fake_fashion = import_path(Path(__file__).parent.parent / "lab" / "test_data.py", "lab_test_data").fake_fashion

    from labkit.lab.experiment import COLUMNS, PLOT, RESULTS, TABLE, TABLE_CSV, load_module, run_full

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake_fashion(tmp_path / "data", n_train=64, n_test=16)
    (tmp_path / "exercise4.py").write_text(solution_source("exercise4"), encoding="utf-8")
    solution = load_module(tmp_path / "exercise4.py", "exercise4_full_run_test")
    inits = []

    def init_weights(m):  # the student's, counted: every run applies it to its fresh network, as the notes do
        inits.append(type(m).__name__)
        solution.init_weights(m)

    tiny = types.SimpleNamespace(resnet18=lambda n: solution.resnet18(n, base_channels=2), train=solution.train,
                                 init_weights=init_weights)
    lines = []
    runs = run_full(tiny, data_dir=tmp_path / "data", force=True, out_dir=tmp_path / "out", epochs=2,
                    echo=lines.append)
    assert [r.plan.label for r in runs] == ["1 GPU", "2 GPUs", "2 GPUs + warm-up"]
    assert runs[2].plan.warmup_steps == 1 and runs[1].plan.warmup_steps == 0  # one epoch of batch-512 steps
    assert "only cpu here" in runs[1].plan.note
    assert any("course notes: 0.92 at 14.0 s/epoch" in line for line in lines)
    assert all(len(r.epoch_seconds) == 2 and r.used == ["cpu"] and r.wall >= sum(r.epoch_seconds) for r in runs)
    assert "speed-up" in lines[-1] and "(one device only)" in lines[-1]
    saved = json.loads((tmp_path / "out" / RESULTS).read_text())
    assert [s["batch_size"] for s in saved] == [256, 512, 512]
    assert (tmp_path / "out" / PLOT).stat().st_size > 10_000
    assert inits.count("Linear") == 3 and inits.count("Sequential") > 3  # each run: every module, once
    assert not any("no init_weights" in line for line in lines) and TABLE in lines[-1] and TABLE_CSV in lines[-1]
    table = (tmp_path / "out" / TABLE).read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0] == "| " + " | ".join(COLUMNS) + " |" and len(rows) == 4
    assert rows[1].startswith("| 1 GPU | cpu | 256 | 0.1 | 0 | 2 | ") and rows[1].endswith(" | 0.92 | 14.0 |")
    assert rows[2].startswith("| 2 GPUs | cpu | 512 | 0.2 | 0 | 2 | ") and rows[2].endswith(" | 0.72 | 9.3 |")
    assert rows[3].startswith("| 2 GPUs + warm-up | cpu | 512 | 0.2 | 1 | 2 | ") and rows[3].endswith(" | - | - |")
    assert f"| {runs[0].test_acc:.2f} | " in rows[1] and f"| {runs[0].seconds_per_epoch:.1f} | " in rows[1]
    assert "1.51x in the notes" in table and "not a clean batch-size effect" in table and "only cpu here" in table
    sheet = list(csv.reader(io.StringIO((tmp_path / "out" / TABLE_CSV).read_text())))
    assert sheet[0] == COLUMNS and [r[0] for r in sheet[1:]] == ["1 GPU", "2 GPUs", "2 GPUs + warm-up"]
    assert sheet[2][-2:] == ["0.72", "9.3"] and sheet[3][-2:] == ["-", "-"]


def test_full_run_without_init_weights_says_so_and_an_unfinished_file_is_a_clear_error(monkeypatch, tmp_path):
    import types

    import torch

    from labkit.files import import_path
    from labkit.lab.experiment import ExperimentError, run_full

    fake_fashion = import_path(Path(__file__).parent.parent / "lab" / "test_data.py", "lab_test_data").fake_fashion
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake_fashion(tmp_path / "data", n_train=16, n_test=8)

    def resnet18(n):
        raise NotImplementedError("exercise4: resnet18")

    lines = []
    with pytest.raises(ExperimentError, match="exercise4: resnet18 is not implemented yet: finish it first"):
        run_full(types.SimpleNamespace(resnet18=resnet18, train=None), data_dir=tmp_path / "data", force=True,
                 out_dir=tmp_path / "out", epochs=1, echo=lines.append)
    assert any("no init_weights" in line and "std 0.01" in line for line in lines)
