"""exercise4: classic mistakes fail with a message that names them."""

from __future__ import annotations

import dataclasses

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
}


@pytest.fixture
def grade_some(worker, tmp_path):
    """Grade `source` against only the named checks of exercise4 (the same checks.py, the others deleted)."""

    def run(source: str, names: list[str]):
        exercise = resolve("exercise4")
        folder = tmp_path / "exercise4"
        folder.mkdir(exist_ok=True)
        text = exercise.checks_file.read_text(encoding="utf-8")
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


# --- the GPU checks' verdicts, proven on the CPU with canned probe answers ---------------

def checks_module():
    from labkit.grading.plan import load_checks

    return load_checks(resolve("exercise4"))[1]


def gpu_timing_answer(epoch_seconds: list[float]) -> dict:
    """What timing_report would send back from a GPU run where epoch 2 (index 1) got 0.5 s of queued GPU work."""
    return {"result": {"test_acc": 0.5, "epoch_seconds": epoch_seconds, "losses": [1.0] * 24},
            "wall": 0.9, "spans": [0.05, 0.05, 0.05], "uppers": [0.12, 0.62, 0.62], "spun": [1]}


def test_gpu_timing_verdict_passes_a_synchronised_clock_and_catches_one_that_is_not():
    from labkit.checks import CheckFailed

    judge = checks_module().judge_epoch_times
    judge(gpu_timing_answer([0.07, 0.58, 0.07]), [0.0, 0.0, 0.0], 1)  # synchronised: the work shows in epoch 2
    for times, phrase in (([0.07, 0.08, 0.07], "torch.cuda.synchronize"), ([0.07, 0.08, 0.57], "billed it to epoch 3")):
        with pytest.raises(CheckFailed, match=phrase):
            judge(gpu_timing_answer(times), [0.0, 0.0, 0.0], 1)


class CannedSub:
    """A Submission stand-in whose probe returns a prepared answer (the verdict logic runs in this process)."""

    def __init__(self, answer):
        import random

        self.rng, self.answer, self.pid = random.Random(0), answer, None

    def probe(self, name, *args, **kwargs):
        return self.answer


def scaling_answer(one_wall=40.0, two_wall=25.0, one_acc=0.90, two_acc=0.89, used=("cuda:0", "cuda:1")):
    return {"one": {"wall": one_wall, "acc": one_acc, "used": ["cuda:0"], "reported": {}},
            "two": {"wall": two_wall, "acc": two_acc, "used": list(used), "reported": {}}}


@pytest.mark.parametrize("answer, phrase", [
    (scaling_answer(), None),
    (scaling_answer(two_wall=36.0), "expected at least 1.3x"),
    (scaling_answer(two_acc=0.70), "warm-up"),
    (scaling_answer(two_wall=39.0, used=["cuda:0"]), "nn.DataParallel"),
])
def test_two_gpu_verdict(answer, phrase):
    from labkit.checks import CheckFailed

    two_gpus_faster = checks_module().two_gpus_faster
    if phrase is None:
        two_gpus_faster(CannedSub(answer))
        return
    with pytest.raises(CheckFailed, match=phrase):
        two_gpus_faster(CannedSub(answer))


def test_two_gpu_verdict_is_inconclusive_when_other_processes_load_the_machine(monkeypatch):
    from labkit.checks import Inconclusive
    from labkit.lab.loadmeter import Load

    class BusyMeter:  # what LoadMeter reports when other processes kept both cores 90 % busy
        result = Load(other=0.9, own=0.0, cores=2, seconds=30.0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    module = checks_module()
    monkeypatch.setattr(module, "LoadMeter", lambda **kwargs: BusyMeter())
    with pytest.raises(Inconclusive, match="90% of 2 cores"):
        module.two_gpus_faster(CannedSub(scaling_answer(two_wall=39.0)))


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
    from test_data import fake_fashion

    from labkit.lab.experiment import PLOT, RESULTS, load_module, run_full

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake_fashion(tmp_path / "data", n_train=64, n_test=16)
    (tmp_path / "exercise4.py").write_text(solution_source("exercise4"), encoding="utf-8")
    solution = load_module(tmp_path / "exercise4.py", "exercise4_full_run_test")
    tiny = types.SimpleNamespace(resnet18=lambda n: solution.resnet18(n, base_channels=2), train=solution.train)
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
