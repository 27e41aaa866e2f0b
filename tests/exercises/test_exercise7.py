"""exercise7: classic pipeline mistakes fail with a message that names them."""

from __future__ import annotations

import os
import random

import pytest
import torch

from conftest import assert_fails

WRONG = {
    "pipeline_reorders_micro_batches": (
        "def pipelined_forward(model, x, micro_batches):\n"
        "    outs = [model(c) for c in reversed(x.chunk(micro_batches))]\n    return torch.cat(outs[::-1])\n",
        {"pipeline_order": "out of order"}),
    "pipeline_floor_sizes": (
        "def pipelined_forward(model, x, micro_batches):\n"
        "    return torch.cat([model(c) for c in x.split(max(1, len(x) // micro_batches))])\n",
        {"pipeline_order": "tensor.chunk sizes"}),
    "whole_batch_at_once": (
        "def pipelined_forward(model, x, micro_batches):\n    return model(x)\n",
        {"pipeline_order": "stage 0 ran 1 times"}),
    "whole_model_on_one_device": (
        "def split_model(net, devices):\n    model = SplitModel(net, [devices[0], devices[0]])\n"
        "    model.devices = list(devices)\n    return model\n",
        {"split_placement": "stage 1's parameters are on ['cpu']"}),
    "no_devices_attribute": (
        "def split_model(net, devices):\n    model = SplitModel(net, devices)\n    del model.devices\n"
        "    return model\n",
        {"split_placement": "model.devices should be [cpu, meta], got []"}),
    "no_stages_at_all": (
        "def split_model(net, devices):\n    return net.to(devices[0])\n",
        {"split_placement": "two stages, found 0", "split_matches_unsplit": "two halves of the net",
         "pipeline_order": "split_model's model needs both"}),
    "one_stage_only": (
        "class OneStage(nn.Module):\n    def __init__(self, net, devices):\n        super().__init__()\n"
        "        self.devices = [torch.device(d) for d in devices]\n"
        "        self.stages = nn.ModuleList([net.to(self.devices[0])])\n\n"
        "def split_model(net, devices):\n    return OneStage(net, devices)\n",
        {"split_placement": "two stages, found 1"}),
    "detached_between_stages": (
        "class Detached(SplitModel):\n    def forward(self, x):\n"
        "        h = self.stages[0](x.to(self.devices[0])).detach()\n"
        "        return self.stages[1](h.to(self.devices[1]))\n\n"
        "def split_model(net, devices):\n    return Detached(net, devices)\n",
        {"split_matches_unsplit": "got no gradient"}),
    "stage_1_on_the_whole_batch": (
        "def pipelined_forward(model, x, micro_batches):\n"
        "    h = torch.cat([model.stages[0](c) for c in x.chunk(micro_batches)])\n    return model.stages[1](h)\n",
        {"pipeline_order": "stage 1 ran 1 times"}),
    "stages_called_through_forward": (
        "def pipelined_forward(model, x, micro_batches):\n"
        "    return torch.cat([model.stages[1].forward(model.stages[0].forward(c)) for c in x.chunk(micro_batches)])\n",
        {"pipeline_order": "the stages were never called"}),
}


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    patch, phrases = WRONG[mistake]
    report = grade_source("exercise7", solution_source("exercise7") + "\n\n" + patch)
    assert_fails(report, phrases)


# --- the GPU check's judgement, proven on any machine with a clock the test chooses (no GPU, no waiting) ------

class FakeSub:
    """Plays the GPU check's program: the naive split and pipelined_forward take the given seconds of a fake
    clock that the gates read, as the grader's perf_counter would; `sums` gives each run's output sum."""

    def __init__(self, naive_s: float, piped_s: float, piped_sum: float = 1.0):
        self.rng, self.pid = random.Random(7), os.getpid()
        self.naive_s, self.piped_s, self.piped_sum, self.steps = naive_s, piped_s, piped_sum, []

    def generator(self):
        return torch.Generator().manual_seed(7)

    def run(self, program, gate=None):
        data = program.to_data()
        self.steps, now, gates, saved = data["steps"], 0.0, [], {}
        for step in self.steps:
            fn = step.get("fn")
            if fn == {"$": "gate"}:
                hold = gate(len(gates))
                gates.append([now, now + hold])
                now += hold
            elif fn == "pipelined_forward":
                now += self.piped_s
            elif isinstance(fn, dict) and fn.get("path") == ["stages", 0]:
                now += self.naive_s
            if step.get("save", "") and step["save"][:5] in ("naive", "piped") and step["save"][5:].isdigit():
                saved[step["save"]] = 1.0 if step["save"].startswith("naive") else self.piped_sum
        return {"values": {key: saved[name] for name, _how, key in data["reports"]}, "steps": [], "gates": gates}


def gpu_check():
    from labkit.course.course import resolve
    from labkit.grading.plan import load_checks

    return {c.name: c.fn for c in load_checks(resolve("exercise7"))[0]}["gpu_pipeline_faster"]


@pytest.mark.parametrize(("naive_s", "piped_s", "piped_sum", "phrase"), [
    (0.040, 0.025, 1.0, None),  # a real pipeline: both GPUs busy at once
    (0.040, 0.039, 1.0, "expected at least 1.15x"),  # micro-batches run one after the other
    (0.040, 0.001, 7.0, "differs from the naive split's"),  # fast because it skipped the work
])
def test_gpu_pipeline_is_timed_by_the_graders_clock(naive_s, piped_s, piped_sum, phrase):
    from labkit.checks import CheckFailed

    sub = FakeSub(naive_s, piped_s, piped_sum)
    if phrase is None:
        gpu_check()(sub)
    else:
        with pytest.raises(CheckFailed, match=phrase):
            gpu_check()(sub)
    # The grader's gates bracket every naive split and every pipelined_forward: the child reports no time at all.
    kinds = ["gate" if s.get("fn") == {"$": "gate"} else "piped" if s.get("fn") == "pipelined_forward" else "naive"
             for s in sub.steps if s.get("fn") in ({"$": "gate"}, "pipelined_forward")
             or (isinstance(s.get("fn"), dict) and s["fn"].get("path") == ["stages", 0])]
    assert kinds == ["gate", "piped", "gate", "naive", "gate"] * 7  # the pipeline first: no cache helps it
