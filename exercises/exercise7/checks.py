"""Checks for exercise7: a model split over two devices, and a micro-batched pipeline through it."""

from __future__ import annotations

import torch
from torch import nn

from labkit.checks import check, expect, expect_close, fail, inconclusive, probe
from labkit.lab.loadmeter import LoadMeter

CPU, META = torch.device("cpu"), torch.device("meta")


def mlp(seed: int, width: int = 6) -> nn.Sequential:
    """A float64 Linear-Tanh stack whose weights depend only on `seed`, here and in the child."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=g) - 0.5)
    return net.double()


def data(sub, n: int, cols: int = 3) -> torch.Tensor:
    return torch.randn(n, cols, generator=sub.generator().manual_seed(sub.rng.randrange(2**31)), dtype=torch.float64)


# --- probes (run in the child, next to the student's module) ---------------------------

@probe
def placement_report(mod, seed: int) -> dict:
    model = mod.split_model(mlp(seed), [CPU, META])
    stages = list(getattr(model, "stages", []))
    return {"n": len(stages), "devices": [str(torch.device(d)) for d in getattr(model, "devices", [])],
            "where": [sorted({str(p.device) for p in s.parameters()}) for s in stages],
            "counts": [sum(p.numel() for p in s.parameters()) for s in stages]}


@probe
def grad_report(mod, seed: int, x, w) -> dict:
    model = mod.split_model(mlp(seed), [CPU, CPU])
    out = model(x)
    (out * w).sum().backward()
    params = [p for s in model.stages for p in s.parameters()]
    return {"out": out.detach(), "grads": [p.grad for p in params]}


@probe
def order_report(mod, seed: int, x, micro_batches: int) -> dict:
    """Record every stage call: stage 0's input and output, stage 1's input, in the order they ran."""
    model = mod.split_model(mlp(seed), [CPU, CPU])
    events: list = []
    model.stages[0].register_forward_hook(lambda m, a, out: events.append([0, a[0].detach().clone(), out.detach()]))
    model.stages[1].register_forward_pre_hook(lambda m, a: events.append([1, a[0].detach().clone(), None]))
    with torch.no_grad():
        out = mod.pipelined_forward(model, x, micro_batches)
    return {"events": events, "out": out.detach() if isinstance(out, torch.Tensor) else None}


@probe
def gpu_pipeline_report(mod, micro_batches: int) -> dict:
    from labkit.lab.timing import compare

    devs = [torch.device("cuda", 0), torch.device("cuda", 1)]
    layers = [m for _ in range(8) for m in (nn.Linear(4096, 4096), nn.ReLU())]
    model = mod.split_model(nn.Sequential(*layers), devs)
    x = torch.randn(8192, 4096, device=devs[0])

    def sync() -> None:
        for d in devs:
            torch.cuda.synchronize(d)

    with torch.no_grad():
        cmp = compare({"naive": lambda: model(x), "pipelined": lambda: mod.pipelined_forward(model, x, micro_batches)},
                      rounds=5, warmup=2, sync=sync)
    return {"ratio": cmp.ratios["pipelined"], "naive_ms": cmp.timings["naive"].median * 1000,
            "pipelined_ms": cmp.timings["pipelined"].median * 1000}


# --- checks (run in the grader) ---------------------------------------------------------

@check(points=2, title="split_model puts stage 0 on devices[0] and stage 1 on devices[1]",
       hint="Cut the Sequential in two (net[:k], net[k:]), move each half with .to(devices[i]), keep both in .stages.",
       title_zh="split_model 把第 0 段放在 devices[0] 上，把第 1 段放在 devices[1] 上",
       hint_zh="把 Sequential 切成两半（net[:k]、net[k:]），用 .to(devices[i]) 移动每一半，"
       "并把两者都放在 .stages 中。")
def split_placement(sub):
    got = sub.probe("placement_report", sub.rng.randrange(2**31))
    expect(got["n"] == 2, f"model.stages should hold two stages, found {got['n']}")
    expect(got["devices"] == ["cpu", "meta"], f"model.devices should be [cpu, meta], got {got['devices']}")
    expect(all(got["counts"]), f"stage parameter counts {got['counts']}: both stages need some of the layers "
                               "with parameters, or one device holds the whole model")
    expect(sum(got["counts"]) == sum(p.numel() for p in mlp(0).parameters()),
           f"the stages hold {sum(got['counts'])} parameters, the model {sum(p.numel() for p in mlp(0).parameters())}")
    for i, d in enumerate(("cpu", "meta")):
        expect(got["where"][i] == [d], f"stage {i}'s parameters are on {got['where'][i]}, expected {d}")


@check(points=2, title="the split model computes the unsplit model's outputs and gradients",
       hint="forward: x.to(devices[0]) -> stage 0 -> .to(devices[1]) -> stage 1; autograd follows the copies back.",
       title_zh="切分后的模型算出与未切分模型相同的输出和梯度",
       hint_zh="forward：x.to(devices[0]) -> 第 0 段 -> .to(devices[1]) -> 第 1 段；"
       "autograd 会沿着这些拷贝反向传播回去。")
def split_matches_unsplit(sub):
    seed, x = sub.rng.randrange(2**31), data(sub, sub.rng.randint(3, 9))
    w = data(sub, x.shape[0], 2)
    got = sub.probe("grad_report", seed, x, w)
    net = mlp(seed)
    out = net(x)
    (out * w).sum().backward()
    expect_close(got["out"], out.detach(), "the split model's output on [cpu, cpu]", rtol=1e-9, atol=1e-12)
    want = [p.grad for p in net.parameters()]
    expect(len(got["grads"]) == len(want), f"the stages hold {len(got['grads'])} parameters, the net {len(want)}")
    for i, (g, r) in enumerate(zip(got["grads"], want, strict=True)):
        expect(g is not None, f"parameter {i} got no gradient: is the copy between stages detached?")
        expect_close(g, r, f"the gradient of parameter {i}", rtol=1e-9, atol=1e-12)


def judge_order(sub, n: int, micro_batches: int) -> None:
    seed, x = sub.rng.randrange(2**31), data(sub, n)
    got = sub.probe("order_report", seed, x, micro_batches)
    call = f"pipelined_forward on a batch of {n} with micro_batches={micro_batches}"
    chunks = list(x.chunk(micro_batches))
    want = [len(c) for c in chunks]
    first = [e + [k] for k, e in enumerate(got["events"]) if e[0] == 0]  # e[3]: when it ran
    second = [e + [k] for k, e in enumerate(got["events"]) if e[0] == 1]
    expect(first and second, f"{call}: the stages were never called; call model.stages[i](x), not .forward")
    sizes = [len(e[1]) for e in first]
    expect(len(first) == len(chunks), f"{call}: stage 0 ran {len(first)} times (sizes {sizes}), expected "
                                      f"{len(chunks)} micro-batches of sizes {want} (tensor.chunk sizes)")
    expect(sizes == want or sorted(sizes) == sorted(want), f"{call}: stage 0 saw micro-batches of sizes {sizes}, "
                                                           f"expected {want} (tensor.chunk sizes)")
    seen = [next((j for j, c in enumerate(chunks) if torch.equal(e[1], c)), None) for e in first]
    expect(None not in seen, f"{call}: stage 0 saw inputs that are not x.chunk(micro_batches)'s pieces")
    expect(seen == sorted(seen), f"{call}: stage 0 ran micro-batches in order {seen}: out of order; "
                                 "keep x.chunk's order")
    order = [next((j for j, e0 in enumerate(first) if torch.equal(e[1], e0[2])), None) for e in second]
    expect(len(second) == len(first) and None not in order,
           f"{call}: stage 1 ran {len(second)} times, not once on each of stage 0's outputs")
    expect(order == sorted(order), f"{call}: stage 1 ran micro-batches in order {order}: out of order; "
                                   "each must pass stage 0, then stage 1, in x.chunk's order")
    for i in range(len(first)):
        expect(first[i][3] < second[i][3], f"{call}: micro-batch {i} reached stage 1 before stage 0")
    out = got["out"]
    expect(out is not None, f"{call} should return a tensor")
    expect_close(out, mlp(seed)(x).detach(), f"{call}: the output (micro-batch outputs concatenated in order)",
                 rtol=1e-9, atol=1e-12)


@check(points=3, title="every micro-batch passes stage 0 then stage 1, in order, with chunk sizes",
       hint="for c in x.chunk(m): run stage 0, move to devices[1], run stage 1; torch.cat the outputs in order.",
       title_zh="每个微批次按顺序先经过第 0 段再经过第 1 段，大小与分块大小一致",
       hint_zh="for c in x.chunk(m)：运行第 0 段，移动到 devices[1]，运行第 1 段；按顺序用 torch.cat 拼接输出。")
def pipeline_order(sub):
    for n, m in [(12, 4), (10, 3), (sub.rng.randint(5, 20), sub.rng.randint(2, 5))]:
        judge_order(sub, n, m)


@check(points=2, title="two GPUs: the pipelined forward beats the naive split", needs_gpus=2, timeout=300,
       hint="Queue micro-batch i+1 on stage 0 before waiting for anything: CUDA calls return at once, so both "
            "GPUs work at the same time. Never call .item() or synchronise inside the loop.",
       title_zh="两块 GPU：流水线前向传播比朴素切分更快",
       hint_zh="在等待任何东西之前，先把微批次 i+1 排入第 0 段的队列：CUDA 调用会立即返回，"
       "因此两块 GPU 会同时工作。绝不要在循环中调用 .item() 或进行同步。")
def gpu_pipeline_faster(sub):
    child = sub.pid  # the submission's own load (its whole process tree) is not an excuse
    with LoadMeter(trees=[child]) as meter:
        got = sub.probe("gpu_pipeline_report", 4)
    ratio = got["ratio"]
    if ratio < 1.15 and meter.result.busy():
        inconclusive(f"the pipeline could not be timed fairly: {meter.result.describe()}")
    if ratio < 1.15:
        fail(f"the pipelined forward (4 micro-batches) took {got['pipelined_ms']:.1f} ms against "
             f"{got['naive_ms']:.1f} ms for the naive split: {ratio:.2f}x, expected at least 1.15x; while GPU 1 "
             "runs micro-batch i, GPU 0 should already run micro-batch i+1")
