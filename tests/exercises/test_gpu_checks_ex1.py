"""exercise1's GPU-only checks judged on any machine: the reference solution's answers, as a GPU machine reports them.

The program runs in this process on the CPU (cuda:0 swapped for cpu), then the devices it reports are rewritten
as cuda:0 would report them; a mistake rewrites one fact the way the wrong code would have reported it.
"""

from __future__ import annotations

import random

import pytest
import torch

from labkit.checks import CheckFailed, StudentError
from labkit.course.course import resolve
from labkit.files import import_path
from labkit.grading.plan import load_checks
from labkit.paths import solutions_root
from labkit.sandbox import program as interpreter


def swap(value, devices: dict):
    """The program's data with each GPU device replaced by the CPU device that stands in for it."""
    if isinstance(value, dict):
        return {k: swap(v, devices) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(swap(v, devices) for v in value)
    if isinstance(value, (str, torch.device)) and str(value) in devices:
        return devices[str(value)] if isinstance(value, str) else torch.device(devices[str(value)])
    return value


class FakeSub:
    """Runs the check's program against the reference solution here; `answer(values)` makes it the GPU's report."""

    def __init__(self, answer=lambda values: values, mistake=None):
        self.rng, self.seed, self.gpus, self.notes = random.Random(5), 5, 1, []
        self.student = import_path(solutions_root() / "exercise1.py", "exercise1")
        self.answer, self.mistake = answer, mistake

    def generator(self):
        return torch.Generator().manual_seed(self.seed)

    def call(self, name, *args):
        if name == "pick_device" and not args:
            return self.mistake or torch.device("cuda", 0)  # what the solution returns where a GPU exists
        return getattr(self.student, name)(*args)

    def run(self, prog, gate=None):
        got = interpreter.run(self.student, swap(prog.to_data(), {"cuda:0": "cpu"}), lambda: None)
        return {"values": self.answer(got["values"]), "steps": got["steps"], "gates": []}


def check(name: str):
    return {c.name: c.fn for c in load_checks(resolve("exercise1"))[0]}[name]


def on_gpu(values: dict, mistake: str | None = None) -> dict:
    """The reference's report as cuda:0 gives it: tensors there, the model there, batches pinned."""
    values["tree_devices"] = [[p, "cuda:0"] for p, _ in values["tree_devices"]]
    values["net"]["devices"] = ["cuda:0"]
    values["loader"]["batches"] = [[b, True] for b, _ in values["loader"]["batches"]]
    if mistake == "one tensor left behind":  # t.to(device) without using the returned copy
        values["tree_devices"][-1][1] = "cpu"
    elif mistake == "model half moved":  # parameters moved one by one: the buffers stay on the CPU
        values["net"]["devices"] = ["cpu", "cuda:0"]
    elif mistake == "not pinned":  # pin_memory decided from torch.cuda.is_available() elsewhere
        values["loader"]["batches"] = [[b, False] for b, _ in values["loader"]["batches"]]
    elif mistake == "unsynchronised copy":  # a non_blocking copy back read before the GPU finished
        values["tree"]["x"] = torch.zeros_like(values["tree"]["x"])
    return values


def test_the_reference_answers_pass_both_gpu_checks():
    check("picks_cuda")(FakeSub())
    check("gpu_copies")(FakeSub(on_gpu))


def test_pick_device_without_an_index_fails():
    with pytest.raises(CheckFailed, match="pick_device\\(\\) on a GPU machine"):
        check("picks_cuda")(FakeSub(mistake=torch.device("cuda")))


@pytest.mark.parametrize(("mistake", "phrase"), [
    ("one tensor left behind", "not on cuda:0 after to_device"),
    ("model half moved", "the devices of the placed model's parameters and buffers"),
    ("not pinned", "are not pinned"),
    ("unsynchronised copy", "synchronise before reading"),
])
def test_a_wrong_gpu_answer_fails_gpu_copies(mistake, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        check("gpu_copies")(FakeSub(lambda values: on_gpu(values, mistake)))


class TwoGpus(FakeSub):
    """cuda:0, cuda:1 and a bare 'cuda' all played by the CPU; `raises`: the child's error, as CUDA reports it."""

    def __init__(self, answer=lambda values: values, gpus: int = 2, raises: str = ""):
        super().__init__(answer)
        self.gpus, self.raises = gpus, raises

    def run(self, prog, gate=None):
        if self.raises:
            raise StudentError({"type": "RuntimeError", "mro": ["RuntimeError", "Exception"], "message": self.raises})
        cpu = dict.fromkeys(("cuda", "cuda:0", "cuda:1"), "cpu")
        got = interpreter.run(self.student, swap(prog.to_data(), cpu), lambda: None)
        return {"values": self.answer(got["values"]), "steps": got["steps"], "gates": []}


def current_gpu(values: dict, mistake: str | None = None) -> dict:
    """build_on('cuda:1', ...) as two GPUs report it: the model and the bare 'cuda' tensor on cuda:1, then cuda:0."""
    values["net"]["devices"] = ["cuda:0" if mistake == "model on cuda:0" else "cuda:1"]
    values["bare"] = [[p, "cuda:0" if mistake == "no current device" else "cuda:1"] for p, _ in values["bare"]]
    values["after"] = [[p, "cuda:1" if mistake == "set_device leaks" else "cuda:0"] for p, _ in values["after"]]
    return values


def summed_on_gpu(values: dict, mistake: str | None = None) -> dict:
    values["where"] = [[[], "cpu" if mistake == "left on the cpu" else "cuda:0"]]
    if mistake == "one part dropped":
        values["out"] = values["out"] - 1.0
    return values


def test_the_reference_answers_pass_the_device_context_and_sum_checks():
    check("gpu_builds_on_current_device")(TwoGpus(current_gpu))
    check("gpu_sums_across")(TwoGpus(summed_on_gpu, gpus=1))
    check("gpu_sums_across")(TwoGpus(summed_on_gpu, gpus=2))


@pytest.mark.parametrize(("mistake", "phrase"), [
    ("no current device", "enter torch.cuda.device\\(device\\) too"),
    ("set_device leaks", "leave the current GPU as it was"),
    ("model on cuda:0", "expected cuda:1"),
])
def test_a_wrong_device_context_fails_and_says_why(mistake, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        check("gpu_builds_on_current_device")(TwoGpus(lambda values: current_gpu(values, mistake)))


@pytest.mark.parametrize(("sub", "phrase"), [
    (TwoGpus(lambda values: summed_on_gpu(values, "left on the cpu")), "should be one tensor on cuda:0"),
    (TwoGpus(lambda values: summed_on_gpu(values, "one part dropped")), "the sum differs"),
    (TwoGpus(raises="Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!"),
     "no operation mixes tensors on two devices"),
], ids=["left-on-cpu", "part-dropped", "mixes-devices"])
def test_a_wrong_sum_on_gpus_fails_and_says_why(sub, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        check("gpu_sums_across")(sub)
