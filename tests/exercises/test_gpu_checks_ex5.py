"""exercise5's GPU-only checks (cuda:0 and cuda:1) judged on any machine: the answers as two GPUs report them.

The check's programs run here against the reference solution with cuda:0 and cuda:1 swapped for the CPU; the
devices the child reports are then rewritten as two GPUs would report them (shard i and replica i on cuda:i, the
stepped model back on cuda:0). A mistake is one function of the file rewritten the way a student gets it wrong,
run for real, or one reported device changed the way the wrong code would have placed it.
"""

from __future__ import annotations

import random

import pytest
import torch

from labkit.checks import CheckFailed
from labkit.course.course import resolve
from labkit.files import import_path
from labkit.grading.plan import load_checks
from labkit.paths import solutions_root
from labkit.sandbox import program as interpreter

GPUS = ("cuda:0", "cuda:1")
MISTAKES = {
    "same replica": "def replicate(module, devices):\n"
                    "    return [module] * len(devices)\n",
    "unweighted loss": "def data_parallel_step(model, X, y, loss_fn, lr, devices):\n"
                       "    xs, ys = split_batch(X, y, devices)\n"
                       "    replicas = replicate(model, devices[: len(xs)])\n"
                       "    outputs = parallel_apply(replicas, xs)\n"
                       "    total = gather([loss_fn(o, t) for o, t in zip(outputs, ys)], devices[0]).mean()\n"
                       "    total.backward()\n"
                       "    for params in zip(*(r.parameters() for r in replicas)):\n"
                       "        allreduce([p.grad for p in params])\n"
                       "    with torch.no_grad():\n"
                       "        for p, q in zip(model.parameters(), replicas[0].parameters()):\n"
                       "            p -= lr * q.grad.to(p.device)\n"
                       "    return total.item()\n",
}


def swap(value):
    """The program's data with cuda:0 and cuda:1 both played by the CPU."""
    if isinstance(value, dict):
        return {k: swap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(swap(v) for v in value)
    if isinstance(value, torch.device) and str(value) in GPUS:
        return torch.device("cpu")
    return value


class FakeSub:
    """Two GPUs as the check's child sees them; `mistake` names one wrong answer (see MISTAKES and `on_gpus`)."""

    def __init__(self, mistake: str | None = None):
        self.rng, self.seed, self.gpus, self.notes, self.mistake, self.called = random.Random(5), 5, 2, [], mistake, []
        self.student = import_path(solutions_root() / "exercise5.py", "exercise5")
        if mistake in MISTAKES:
            exec(MISTAKES[mistake], vars(self.student))  # noqa: S102  (the wrong function, in the file's namespace)

    def generator(self):
        return torch.Generator().manual_seed(self.seed)

    def run(self, prog, gate=None):
        data = prog.to_data()
        calls = [s["fn"] for s in data["steps"] if s["op"] == "call" and isinstance(s["fn"], str)]
        assert any(str(d) in GPUS for d in _devices(data)), "the program names no GPU"
        self.called.append(calls[0])
        got = interpreter.run(self.student, swap(data), lambda: None)
        return {"values": self.on_gpus(calls[0], got["values"]), "steps": got["steps"], "gates": []}

    def on_gpus(self, fn: str, values: dict) -> dict:
        """The devices two GPUs report for what the (possibly wrong) code did."""
        if fn == "split_batch":  # shard i on devices[i]; the mistake moves every shard with .to(devices[0])
            values["where"] = [[p, "cuda:0" if self.mistake == "shard on cuda:0" else f"cuda:{p[1]}"]
                               for p, _ in values["where"]]
        elif fn == "replicate" and self.mistake != "same replica":  # [module] * n: the original stays on the CPU
            for i, rep in enumerate(values["reps"]):
                rep["devices"] = [f"cuda:{i}"]
        elif fn == "data_parallel_step":  # the check moved the model to cuda:0; the step updates it in place
            values["net"]["devices"] = ["cuda:0"]
        return values


def _devices(value):
    if isinstance(value, dict):
        return [d for v in value.values() for d in _devices(v)]
    if isinstance(value, (list, tuple)):
        return [d for v in value for d in _devices(v)]
    return [value] if isinstance(value, torch.device) else []


def check(name: str):
    return {c.name: c.fn for c in load_checks(resolve("exercise5"))[0]}[name]


def test_the_reference_passes_both_gpu_checks():
    sub = FakeSub()
    check("gpu_split_replicate")(sub)
    check("gpu_step")(sub)
    assert sub.called == ["split_batch"] * 3 + ["replicate"] * 2 + ["data_parallel_step"] * 3


@pytest.mark.parametrize(("name", "mistake", "phrase"), [
    ("gpu_split_replicate", "shard on cuda:0", "shard 1 is on cuda:0 \\(X\\) and cuda:0 \\(y\\), expected cuda:1"),
    ("gpu_split_replicate", "same replica", "the same module object more than once \\(\\[module\\] \\* n\\)"),
    ("gpu_step", "unweighted loss", "averaging the per-shard mean losses without weighting by shard size"),
])
def test_a_wrong_answer_fails_and_says_why(name, mistake, phrase):
    sub = FakeSub(mistake)
    with pytest.raises(CheckFailed, match=phrase):
        check(name)(sub)
    if mistake == "unweighted loss":  # even shards (10 on 2) cannot tell the two means apart; 7 on 2 can
        assert sub.called == ["data_parallel_step"] * 2
