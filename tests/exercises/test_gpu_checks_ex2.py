"""exercise2's GPU-only check (DataParallel on two GPUs) judged on any machine with canned answers.

The canned answers are what the child reports on two GPUs: the replicas' forward hooks ([name, [[shape, device]],
...] per replica), the gathered output on cuda:0, computed here with the tutorial model on the CPU."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from labkit.checks import CheckFailed
from labkit.course.course import resolve
from labkit.grading.plan import load_checks
from labkit.inputs import build
from labkit.sandbox import facts


def wrap_splits():
    return {c.name: c.fn for c in load_checks(resolve("exercise2"))[0]}["wrap_splits"]


class FakeSub:
    """Two GPUs as the child sees them; `mistake` changes one fact the way the wrong code would."""

    def __init__(self, mistake: str | None = None):
        self.rng, self.seed, self.gpus, self.notes, self.mistake = random.Random(2), 2, 2, [], mistake

    def generator(self):
        return torch.Generator().manual_seed(self.seed)

    def call(self, name, *args):
        assert name == "replica_batch_sizes"
        return [len(c) for c in torch.arange(args[0]).chunk(args[1])]

    def run(self, prog, gate=None):
        steps = prog.to_data()["steps"]
        net = build(steps[0]["args"][0])
        if len(steps) == 1:  # the first program asks only what wrap_data_parallel returned
            return {"values": {"net": facts.kind(net if self.mistake == "bare" else nn.DataParallel(net))},
                    "steps": [{}], "gates": []}
        values, records = {}, [{}]
        for i, step in enumerate(steps[1:]):
            batch = step["args"][0]["value"]
            ids = [0] if self.mistake == "one gpu" else [0, 1]
            events = [["module", [[[len(c), 5], f"cuda:{j}"]], [[len(c), 2], f"cuda:{j}"], None]
                      for j, c in zip(ids, batch.chunk(len(ids)), strict=False)]
            records.append({"hooks": [events]})
            out = net(batch).detach()
            values[f"out{i}"] = out * 2 if self.mistake == "wrong outputs" else out
            values[f"where{i}"] = [[[], "cuda:1" if self.mistake == "output on cuda:1" else "cuda:0"]]
        return {"values": values, "steps": records, "gates": []}


def test_the_right_wrapper_passes_on_two_gpus():
    wrap_splits()(FakeSub())


@pytest.mark.parametrize(("mistake", "phrase"), [
    ("bare", "expected torch's nn.DataParallel"),
    ("one gpu", "the replicas saw \\[\\[30, 'cuda:0'\\]\\]"),
    ("output on cuda:1", "should be one tensor on cuda:0"),
    ("wrong outputs", "is not the model's output for that batch"),
])
def test_a_wrong_wrapper_fails_and_says_why(mistake, phrase):
    with pytest.raises(CheckFailed, match=phrase):
        wrap_splits()(FakeSub(mistake))
