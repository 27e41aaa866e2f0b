"""exercise3's GPU-only check (a child counts the GPUs its mask shows) judged on any machine.

The check's programs run here against the reference solution, so run_on_gpus really starts the child; only the
child's script changes: instead of asking torch, it counts the GPUs the way CUDA reads its mask on a machine with
`GPUS` cards (entries up to the first invalid one, none repeated). A mistake is one function of the file rewritten
the way a student gets it wrong, run for real.
"""

from __future__ import annotations

import random

import pytest

from labkit.checks import CheckFailed
from labkit.course.course import resolve
from labkit.files import import_path
from labkit.grading.plan import load_checks
from labkit.paths import solutions_root
from labkit.sandbox import program as interpreter

COUNT = "import torch; print(torch.cuda.device_count())"  # the script the check asks the child to run
CUDA_COUNT = """import os
mask, seen = os.environ.get('CUDA_VISIBLE_DEVICES'), []
for p in (mask.split(',') if mask is not None else [str(i) for i in range({gpus})]):
    if not p.strip().isdigit() or int(p) >= {gpus} or int(p) in seen:
        break
    seen.append(int(p))
print(len(seen))
"""

MISTAKES = {
    "ignores the mask": "def run_on_gpus(argv, visible):\n"
                        "    return subprocess.run(argv, capture_output=True, text=True)\n",
    "caller's mask wins": "def run_on_gpus(argv, visible):\n"
                          "    env = {**cuda_env(visible), **os.environ}\n"
                          "    return subprocess.run(argv, env=env, capture_output=True, text=True)\n",
    "empty list as None": "def cuda_env(visible, order='PCI_BUS_ID'):\n"
                          "    env = {'CUDA_DEVICE_ORDER': order}\n"
                          "    if visible:\n"
                          "        env['CUDA_VISIBLE_DEVICES'] = ','.join(map(str, visible))\n"
                          "    return env\n",
}


def swap(value, old: str, new: str):
    if isinstance(value, dict):
        return {k: swap(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [swap(v, old, new) for v in value]
    return new if value == old else value


class FakeSub:
    """A machine with `gpus` GPUs as the check's child sees it; `mistake` rewrites one function of the file."""

    def __init__(self, gpus: int = 2, mistake: str | None = None):
        self.rng, self.seed, self.gpus, self.notes = random.Random(3), 3, gpus, []
        self.student = import_path(solutions_root() / "exercise3.py", "exercise3")
        if mistake:
            exec(MISTAKES[mistake], vars(self.student))  # noqa: S102  (the wrong function, in the file's namespace)
        self.script, self.masks = CUDA_COUNT.format(gpus=gpus), []

    def run(self, prog, gate=None):
        data = prog.to_data()
        assert COUNT in str(data), "the check no longer runs torch.cuda.device_count() in the child"
        self.masks.append(data["steps"][0]["args"][1])
        got = interpreter.run(self.student, swap(data, COUNT, self.script), lambda: None)
        return {**got, "gates": []}


def gpu_count_in_child():
    return {c.name: c.fn for c in load_checks(resolve("exercise3"))[0]}["gpu_count_in_child"]


def test_the_reference_passes_on_two_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sub = FakeSub()
    gpu_count_in_child()(sub)
    assert sub.masks == [[0], [0], [], [], [1, 0], [1, 0]]  # each case asks twice: the class, then the output


def test_the_reference_passes_where_the_grader_is_lent_two_of_eight(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,2")
    sub = FakeSub(gpus=8)
    gpu_count_in_child()(sub)
    assert sub.masks[::2] == [[6], [], [2, 6]]  # the GPUs lent to the grader, not cuda:0 and cuda:1


@pytest.mark.parametrize(("mask", "gpus", "mistake", "phrase"), [
    (None, 2, "ignores the mask", r"\[0\]\): the child printed '2\\n' .*expected 1"),
    ("6,2", 8, "ignores the mask", r"\[6\]\): the child printed '2\\n' .*expected 1"),
    ("6,2", 8, "caller's mask wins", r"\[6\]\): the child printed '2\\n' .*expected 1"),
    (None, 2, "empty list as None", r"\[\]\): the child printed '2\\n' .*expected 0"),
])
def test_a_child_that_sees_the_wrong_gpus_fails(monkeypatch, mask, gpus, mistake, phrase):
    if mask is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
    with pytest.raises(CheckFailed, match=phrase) as failed:
        gpu_count_in_child()(FakeSub(gpus, mistake))
    assert "run_on_gpus(['python', '-c', " in str(failed.value)
