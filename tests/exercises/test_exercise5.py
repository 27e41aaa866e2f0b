"""exercise5: classic mistakes fail with a message that names them."""

from __future__ import annotations

import pytest

from conftest import assert_fails

WRONG = {
    "allreduce_rebinds_slots": (
        "def allreduce(tensors):\n    total = sum(t.to(tensors[0].device) for t in tensors)\n"
        "    for i in range(len(tensors)):\n        tensors[i] = total.clone()\n",
        ["allreduce_in_place"], "rebinds list slots"),
    "unweighted_shard_losses": (
        "def data_parallel_step(model, X, y, loss_fn, lr, devices):\n"
        "    xs, ys = split_batch(X, y, devices)\n    replicas = replicate(model, devices[: len(xs)])\n"
        "    losses = [loss_fn(out, t) for out, t in zip(parallel_apply(replicas, xs), ys)]\n"
        "    total = gather(losses, devices[0]).mean()\n    total.backward()\n"
        "    for params in zip(*(r.parameters() for r in replicas)):\n        allreduce([p.grad for p in params])\n"
        "    with torch.no_grad():\n        for p, q in zip(model.parameters(), replicas[0].parameters()):\n"
        "            p -= lr * q.grad.to(p.device)\n    return total.item()\n",
        ["step_equals_full_batch", "step_returns_loss"], "without weighting by shard size"),
    "gather_drops_scalars": (
        "def gather(outputs, device, dim=0):\n"
        "    return torch.cat([o.to(device) for o in outputs if o.dim() > 0], dim=dim)\n",
        ["gather_scalars"], "unsqueeze"),
    "gather_stacks": (
        "def gather(outputs, device, dim=0):\n    return torch.stack([o.to(device) for o in outputs], dim=dim)\n",
        ["gather_concatenates"], "torch.stack"),
    "split_floor_division": (
        "def split_batch(X, y, devices):\n    size = X.shape[0] // len(devices)\n"
        "    parts = [slice(i * size, (i + 1) * size) for i in range(len(devices))]\n"
        "    return [X[s].to(d) for s, d in zip(parts, devices)], [y[s].to(d) for s, d in zip(parts, devices)]\n",
        ["split_chunks"], "tensor.chunk semantics"),
    "replicate_same_object": (
        "def replicate(module, devices):\n    return [module] * len(devices)\n",
        ["replicate_independent"], "same module object"),
}


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    patch, names, phrase = WRONG[mistake]
    report = grade_source("exercise5", solution_source("exercise5") + "\n\n" + patch)
    assert_fails(report, dict.fromkeys(names, phrase))
