"""Checks for exercise7: a model split over two devices, and a micro-batched pipeline through it.

Every check runs a program of labkit's generic recipes in the child (labkit.recipe) and judges in the grader:
outputs, gradients and the activations each stage saw, against the grader's own copy of the same net
(labkit.inputs.build); the pipeline's speed against the grader's own clock.
"""

from __future__ import annotations

import statistics

import torch

from labkit.checks import check, expect, expect_close, fail, inconclusive
from labkit.inputs import build
from labkit.lab.loadmeter import LoadMeter
from labkit.recipe import Program, gate, hook, module, on, ref

CPU, META = torch.device("cpu"), torch.device("meta")
CUDA2 = [torch.device("cuda", 0), torch.device("cuda", 1)]


def mlp(seed: int, width: int = 6) -> dict:
    """A float64 Linear-Tanh stack whose weights are drawn here from `seed` and travel with the recipe."""
    layers = [["Linear", 3, width], ["Tanh"], ["Linear", width, width], ["Tanh"], ["Linear", width, 2]]
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.rand(v.shape, generator=g, dtype=torch.float64) - 0.5
             for k, v in build(module(layers, seed=0, dtype="float64")).state_dict().items()}
    return module(layers, seed=seed, dtype="float64", state=state)


def data(sub, n: int, cols: int = 3) -> torch.Tensor:
    return torch.randn(n, cols, generator=sub.generator().manual_seed(sub.rng.randrange(2**31)), dtype=torch.float64)


def split(recipe: dict, devices: list, how: str = "module_shapes", stages: int = 2) -> Program:
    """split_model(net, devices) saved as "model"; model.stages[i] reported as "s{i}" (None where it has none)."""
    prog = Program().call("split_model", recipe, devices, save="model")
    for i in range(stages):
        prog.let(f"s{i}", ref("model", "stages", i, missing=None)).report(f"s{i}", how)
    return prog


def stage_facts(got: dict, stages: int = 2) -> list:
    """The reported stages that are modules, in order, up to the first one that is not."""
    out = []
    for i in range(stages):
        if got[f"s{i}"].get("report") != "module":
            break
        out.append(got[f"s{i}"])
    return out


# --- checks (run in the grader) ---------------------------------------------------------

@check(points=2, title="split_model puts stage 0 on devices[0] and stage 1 on devices[1]",
       hint="Cut the Sequential in two (net[:k], net[k:]), move each half with .to(devices[i]), keep both in .stages.",
       title_zh="split_model 把第 0 段放在 devices[0] 上，把第 1 段放在 devices[1] 上",
       hint_zh="把 Sequential 切成两半（net[:k]、net[k:]），用 .to(devices[i]) 移动每一半，"
       "并把两者都放在 .stages 中。")
def split_placement(sub):
    recipe = mlp(sub.rng.randrange(2**31))
    prog = split(recipe, [CPU, META], stages=3).let("devices", ref("model", "devices", missing=None))
    got = sub.run(prog.report("devices"))["values"]
    stages = stage_facts(got, 3)
    expect(len(stages) == 2, f"model.stages should hold two stages, found {len(stages) if len(stages) < 3 else 'more'}")
    devices = [str(d) for d in got["devices"]] if isinstance(got["devices"], (list, tuple)) else []
    expect(devices == ["cpu", "meta"], f"model.devices should be [cpu, meta], got {devices}")
    counts, total = [s["numel"] for s in stages], sum(p.numel() for p in build(recipe).parameters())
    expect(all(counts), f"stage parameter counts {counts}: both stages need some of the layers with parameters, "
                        "or one device holds the whole model")
    expect(sum(counts) == total, f"the stages hold {sum(counts)} parameters, the model {total}")
    for i, d in enumerate(("cpu", "meta")):
        # Where a stage's parameters live is the child's word: true with one .to(devices[i]); on meta they
        # also come back as meta tensors, which hold no values at all.
        where = sorted({t["device"] for _, t in stages[i]["params"]})
        expect(where == [d], f"stage {i}'s parameters are on {where}, expected {d}")


@check(points=2, title="the split model computes the unsplit model's outputs and gradients",
       hint="forward: x.to(devices[0]) -> stage 0 -> .to(devices[1]) -> stage 1; autograd follows the copies back.",
       title_zh="切分后的模型算出与未切分模型相同的输出和梯度",
       hint_zh="forward：x.to(devices[0]) -> 第 0 段 -> .to(devices[1]) -> 第 1 段；"
       "autograd 会沿着这些拷贝反向传播回去。")
def split_matches_unsplit(sub):
    seed, x = sub.rng.randrange(2**31), data(sub, sub.rng.randint(3, 9))
    w = data(sub, x.shape[0], 2)  # the grader's weights: (out * w).sum().backward() in the child and here
    recipe = mlp(seed)
    prog = split(recipe, [CPU, CPU], "module").call(ref("model"), x, save="out").backward("out", w)
    got = sub.run(prog.report("out"))["values"]  # the stages are reported after the backward: with their grads
    net = build(recipe)
    out = net(x)
    (out * w).sum().backward()
    expect_close(got["out"], out.detach(), "the split model's output on [cpu, cpu]", rtol=1e-9, atol=1e-12)
    stages = stage_facts(got)
    expect(len(stages) == 2, "model.stages[0] and model.stages[1] should be the two halves of the net")
    grads = [dict(s["grads"]).get(name) for s in stages for name, _ in s["params"]]
    want = [p.grad for p in net.parameters()]
    expect(len(grads) == len(want), f"the stages hold {len(grads)} parameters, the net {len(want)}")
    for i, (g, r) in enumerate(zip(grads, want, strict=True)):
        expect(g is not None, f"parameter {i} got no gradient: is the copy between stages detached?")
        expect_close(g, r, f"the gradient of parameter {i}", rtol=1e-9, atol=1e-12)


def judge_order(sub, n: int, micro_batches: int) -> None:
    """Hooks record stage 0's input and output and stage 1's input, with values; matched here against x.chunk
    and against each other, they show which micro-batch each stage ran, in which order."""
    seed, x = sub.rng.randrange(2**31), data(sub, n)
    hooks = [hook(ref("model", "stages", 0), modules=[""], values=True),
             hook(ref("model", "stages", 1), modules=[""], when="pre", values=True)]
    prog = split(mlp(seed), [CPU, CPU]).call("pipelined_forward", ref("model"), x, micro_batches, save="out",
                                              hooks=hooks, no_grad=True)
    answer = sub.run(prog.report("out"))
    events0, events1 = answer["steps"][-1]["hooks"]
    first = [e[3] if isinstance(e[3], (list, tuple)) else [None, None] for e in events0]  # [input, output]
    second = [e[3] for e in events1]  # stage 1's input
    call = f"pipelined_forward on a batch of {n} with micro_batches={micro_batches}"
    chunks = list(x.chunk(micro_batches))
    want = [len(c) for c in chunks]
    expect(first and second, f"{call}: the stages were never called; call model.stages[i](x), not .forward")
    sizes = [len(i) if torch.is_tensor(i) else 0 for i, _ in first]
    expect(len(first) == len(chunks), f"{call}: stage 0 ran {len(first)} times (sizes {sizes}), expected "
                                      f"{len(chunks)} micro-batches of sizes {want} (tensor.chunk sizes)")
    expect(sizes == want or sorted(sizes) == sorted(want), f"{call}: stage 0 saw micro-batches of sizes {sizes}, "
                                                           f"expected {want} (tensor.chunk sizes)")

    def same(a, b) -> bool:
        return torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and torch.equal(a, b)

    seen = [next((j for j, c in enumerate(chunks) if same(i, c)), None) for i, _ in first]
    expect(None not in seen, f"{call}: stage 0 saw inputs that are not x.chunk(micro_batches)'s pieces")
    expect(seen == sorted(seen), f"{call}: stage 0 ran micro-batches in order {seen}: out of order; "
                                 "keep x.chunk's order")
    order = [next((j for j, (_, o) in enumerate(first) if same(i, o)), None) for i in second]
    expect(len(second) == len(first) and None not in order,
           f"{call}: stage 1 ran {len(second)} times, not once on each of stage 0's outputs")
    expect(order == sorted(order), f"{call}: stage 1 ran micro-batches in order {order}: out of order; "
                                   "each must pass stage 0, then stage 1, in x.chunk's order")
    out = answer["values"]["out"]
    expect(torch.is_tensor(out), f"{call} should return a tensor")
    expect_close(out, build(mlp(seed))(x).detach(), f"{call}: the output (micro-batch outputs concatenated in "
                                                    "order)", rtol=1e-9, atol=1e-12)


@check(points=3, title="every micro-batch passes stage 0 then stage 1, in order, with chunk sizes",
       hint="for c in x.chunk(m): run stage 0, move to devices[1], run stage 1; torch.cat the outputs in order.",
       title_zh="每个微批次按顺序先经过第 0 段再经过第 1 段，大小与分块大小一致",
       hint_zh="for c in x.chunk(m)：运行第 0 段，移动到 devices[1]，运行第 1 段；按顺序用 torch.cat 拼接输出。")
def pipeline_order(sub):
    got = sub.run(split(mlp(0), [CPU, CPU]))["values"]  # the hooks below need both stages to exist
    expect(len(stage_facts(got)) == 2,
           "pipelined_forward runs model.stages[0] and model.stages[1]: split_model's model needs both")
    for n, m in [(12, 4), (10, 3), (sub.rng.randint(5, 20), sub.rng.randint(2, 5))]:
        judge_order(sub, n, m)


ROUNDS, WARMUP, WIDTH, ROWS = 7, 2, 4096, 8192


def pipeline_program(sub, devices: list, micro_batches: int) -> Program:
    """Per round, each between the grader's gates: the student's pipelined_forward, then labkit's own naive split
    (stage 0 on the whole batch, then stage 1), on a fresh batch, each ended by .item(), which waits for the
    GPUs. The pipeline runs first, so nothing it could keep from a run speeds it up. Their sums come back: the
    pipeline must compute the same thing."""
    layers = [layer for _ in range(8) for layer in (["Linear", WIDTH, WIDTH], ["ReLU"])]
    prog = Program().call("split_model", module(layers, seed=sub.rng.randrange(2**31)), devices, save="model")
    prog.let("gen", module([["Linear", 16, WIDTH]], seed=sub.rng.randrange(2**31))).call(ref("gen", "to"), devices[0])
    g = sub.generator()
    for r in range(ROUNDS):  # a fresh batch each round, made on the GPU from a small random tensor
        prog.call(ref("gen"), on(torch.randn(ROWS, 16, generator=g), str(devices[0])), save="x", no_grad=True)
        prog.call(ref("x", "sum"), save="xs").call(ref("xs", "item")).call(gate())
        prog.call("pipelined_forward", ref("model"), ref("x"), micro_batches, save="piped", no_grad=True)
        prog.call(ref("piped", "sum"), save="ps").call(ref("ps", "item"), save=f"piped{r}").report(f"piped{r}")
        prog.call(gate()).call(ref("model", "stages", 0), ref("x"), save="h", no_grad=True)
        prog.call(ref("h", "to"), devices[1], save="h")
        prog.call(ref("model", "stages", 1), ref("h"), save="naive", no_grad=True).call(ref("naive", "sum"), save="ns")
        prog.call(ref("ns", "item"), save=f"naive{r}").report(f"naive{r}").call(gate())
    return prog


def pipeline_times(sub, devices: list, micro_batches: int) -> tuple[float, float, list]:
    """Median seconds of the naive split and of the pipeline, by the grader's clock; rounds whose sums differ."""
    holds = [sub.rng.uniform(0.01, 0.05) for _ in range(3 * ROUNDS)]  # how long each gate waits: ours alone
    got = sub.run(pipeline_program(sub, devices, micro_batches), gate=lambda k: holds[k % len(holds)])
    t = got["gates"]  # [arrived, released] per gate, by the grader's perf_counter
    expect(len(t) == 3 * ROUNDS, "the timed program did not run to its end")
    piped = [t[3 * r + 1][0] - t[3 * r][1] for r in range(WARMUP, ROUNDS)]
    naive = [t[3 * r + 2][0] - t[3 * r + 1][1] for r in range(WARMUP, ROUNDS)]
    sums = [(got["values"][f"naive{r}"], got["values"][f"piped{r}"]) for r in range(ROUNDS)]
    wrong = [r for r, (a, b) in enumerate(sums) if type(b) is not float or abs(a - b) > 1e-3 * abs(a) + 1e-3]
    return statistics.median(naive), statistics.median(piped), wrong


@check(points=2, title="two GPUs: the pipelined forward beats the naive split", needs_gpus=2, timeout=300,
       hint="Queue micro-batch i+1 on stage 0 before waiting for anything: CUDA calls return at once, so both "
            "GPUs work at the same time. Never call .item() or synchronise inside the loop.",
       title_zh="两块 GPU：流水线前向传播比朴素切分更快",
       hint_zh="在等待任何东西之前，先把微批次 i+1 排入第 0 段的队列：CUDA 调用会立即返回，"
       "因此两块 GPU 会同时工作。绝不要在循环中调用 .item() 或进行同步。")
def gpu_pipeline_faster(sub):
    with LoadMeter(trees=[sub.pid]) as meter:  # the submission's own load (its whole process tree) is no excuse
        naive, piped, wrong = pipeline_times(sub, CUDA2, 4)
    expect(not wrong, f"pipelined_forward's output (summed) differs from the naive split's on the same batch "
                      f"(round {wrong[0] if wrong else 0}): every micro-batch must pass both stages")
    ratio = naive / piped
    if ratio < 1.15 and meter.result.busy():
        inconclusive(f"the pipeline could not be timed fairly: {meter.result.describe()}")
    if ratio < 1.15:
        fail(f"the pipelined forward (4 micro-batches) took {piped * 1000:.1f} ms against {naive * 1000:.1f} ms "
             f"for the naive split: {ratio:.2f}x, expected at least 1.15x; while GPU 1 runs micro-batch i, GPU 0 "
             "should already run micro-batch i+1")
