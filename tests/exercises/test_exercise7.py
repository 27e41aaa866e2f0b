"""exercise7: classic pipeline mistakes fail with a message that names them."""

from __future__ import annotations

import pytest

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
}


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    patch, phrases = WRONG[mistake]
    report = grade_source("exercise7", solution_source("exercise7") + "\n\n" + patch)
    assert_fails(report, phrases)
