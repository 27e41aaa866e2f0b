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
    "split_ignores_dim": (
        "def split_batch(X, y, devices, dim=0):\n"
        "    return ([x.to(d) for x, d in zip(X.chunk(len(devices)), devices)],\n"
        "            [t.to(d) for t, d in zip(y.chunk(len(devices)), devices)])\n",
        ["split_along_dim"], "the shards split dim 0"),
    "split_without_dim": (  # the signature before dim was added: every call with two arguments still works
        "def split_batch(X, y, devices):\n"
        "    return ([x.to(d) for x, d in zip(X.chunk(len(devices)), devices)],\n"
        "            [t.to(d) for t, d in zip(y.chunk(len(devices)), devices)])\n",
        ["split_along_dim"], "add the optional parameter dim: int = 0"),
    "replicate_same_object": (
        "def replicate(module, devices):\n    return [module] * len(devices)\n",
        ["replicate_independent"], "same module object"),
    "replicate_keeps_the_original": (
        "def replicate(module, devices):\n"
        "    return [module.to(devices[0])] + [copy.deepcopy(module).to(d) for d in devices[1:]]\n",
        ["replicate_independent"], "original module as a replica"),
    "replicate_shallow_copies": (
        "def replicate(module, devices):\n    return [copy.copy(module).to(d) for d in devices]\n",
        ["replicate_independent"], "copy.copy shares the parameters"),
    "replicate_shares_one_weight": (  # deep copies, but every replica's first layer is the original's
        "def replicate(module, devices):\n    reps = [copy.deepcopy(module).to(d) for d in devices]\n"
        "    for r in reps:\n        if r[0].weight.device == module[0].weight.device:\n"
        "            r[0].weight = module[0].weight\n    return reps\n",
        ["replicate_independent"], "they share tensors"),
    "parallel_apply_one_replica": (
        "def parallel_apply(replicas, inputs):\n    return [replicas[0](x) for x in inputs]\n",
        ["parallel_apply_matches"], "is replicas[0](inputs["),
    "allreduce_swaps_storage": (
        "def allreduce(tensors):\n    total = sum(t.detach().to(tensors[0].device) for t in tensors)\n"
        "    for t in tensors:\n        t.data = total.clone()\n",
        ["allreduce_in_place"], "new memory"),
    "step_replaces_parameters": (
        "def data_parallel_step(model, X, y, loss_fn, lr, devices):\n"
        "    xs, ys = split_batch(X, y, devices)\n    replicas = replicate(model, devices[: len(xs)])\n"
        "    losses = [loss_fn(o, t) * (t.shape[0] / X.shape[0]) for o, t in zip(parallel_apply(replicas, xs), ys)]\n"
        "    total = gather(losses, devices[0]).sum()\n    total.backward()\n"
        "    for params in zip(*(r.parameters() for r in replicas)):\n        allreduce([p.grad for p in params])\n"
        "    for (name, p), q in zip(list(model.named_parameters()), replicas[0].parameters()):\n"
        "        owner, _, leaf = name.rpartition('.')\n"
        "        setattr(model.get_submodule(owner), leaf, nn.Parameter((p - lr * q.grad).detach()))\n"
        "    return total.item()\n",
        ["step_equals_full_batch"], "replaced by new objects"),
    "step_returns_the_loss_after": (
        "_step = data_parallel_step\n\n"
        "def data_parallel_step(model, X, y, loss_fn, lr, devices):\n"
        "    _step(model, X, y, loss_fn, lr, devices)\n"
        "    with torch.no_grad():\n        return loss_fn(model(X), y).item()\n",
        ["step_returns_loss"], "the loss after the update"),
}

# Forging: a plain single-device SGD step gives the very numbers a data-parallel step must give. It earns no
# points: the step must go through the file's own split_batch, replicate, parallel_apply and gather.
SINGLE_DEVICE_STEP = """
def data_parallel_step(model, X, y, loss_fn, lr, devices):
    loss = loss_fn(model(X), y)
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return loss.item()
"""


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    patch, names, phrase = WRONG[mistake]
    report = grade_source("exercise5", solution_source("exercise5") + "\n\n" + patch)
    assert_fails(report, dict.fromkeys(names, phrase))


def test_a_single_device_step_earns_no_step_points(grade_source, solution_source):
    steps = ("step_equals_full_batch", "step_returns_loss")
    report = grade_source("exercise5", solution_source("exercise5") + "\n" + SINGLE_DEVICE_STEP, only=steps)
    assert_fails(report, dict.fromkeys(steps, "never called your split_batch, replicate, parallel_apply, gather"))
    assert report.score == 0
