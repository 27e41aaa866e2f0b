"""Checks for exercise5: DataParallel's scatter, replicate, parallel_apply and gather, built by hand.

Programs of labkit's recipes run in the child; the grader judges values against its own copy of the inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labkit.checks import StudentError, check, expect, expect_close, fail
from labkit.inputs import build
from labkit.lab.replicas import judge_replicate, judge_split, net_recipe
from labkit.recipe import Program, module, ref

CPU, META = torch.device("cpu"), torch.device("meta")
CUDA2 = [torch.device("cuda", 0), torch.device("cuda", 1)]
PATH = ["split_batch", "replicate", "parallel_apply", "gather"]  # the functions the step is built from


def cpus(sub) -> list[torch.device]:
    return [CPU] * sub.rng.randint(2, 4)


def data(sub, n: int, cols: int) -> torch.Tensor:
    return torch.randn(n, cols, generator=sub.generator().manual_seed(sub.rng.randrange(2**31)), dtype=torch.float64)


def judge_step(sub, devices, n_samples: int, *, want_loss: bool) -> None:
    """Run the student's data_parallel_step on the grader's net; the grader redoes the step and compares."""
    seed, lr = sub.rng.randrange(2**31), round(sub.rng.uniform(0.1, 0.5), 3)
    X, y = data(sub, n_samples, 3), data(sub, n_samples, 2)
    recipe = net_recipe(seed, X.shape[1], y.shape[1])
    names = [n for n, _ in build(recipe).named_parameters()]
    prog = Program().let("net", recipe)
    if devices[0].type != "cpu":
        prog.call(ref("net", "to"), devices[0])  # Module.to moves the parameters in place
    # "before": the model's own parameter objects, held before the step: an in-place update shows in them.
    prog.let("before", [ref("net", *n.split(".")) for n in names])
    prog.let("loss_fn", module([["MSELoss"]], sequential=False))
    prog.call("data_parallel_step", ref("net"), X, y, ref("loss_fn"), lr, devices, save="loss", watch=PATH)
    answer = sub.run(prog.report("loss").report("net", "module").report("before"))
    got, watched = answer["values"], answer["steps"][-1].get("watched", [])
    sizes = [len(c) for c in X.chunk(len(devices))]
    call = f"data_parallel_step with a batch of {n_samples} on {len(devices)} devices (shards {sizes})"
    loss, params, after = reference_step(recipe, X, y, lr)
    bad_loss, bad_params, _ = reference_step(recipe, X, y, lr, sizes)
    uneven = len(set(sizes)) > 1  # only uneven shards tell the weighted and the unweighted mean apart
    unweighted = (f"; that is what averaging the per-shard mean losses without weighting by shard size gives: "
                  f"weight shard i's mean loss by n_i / N (shards {sizes} of N = {n_samples})")
    if want_loss:
        got_loss = got["loss"]
        expect(type(got_loss) is float, f"{call} should return a Python float (loss.item()), got "
                                        f"{getattr(got_loss, 'type_name', type(got_loss).__name__)}")
        expect(not (uneven and abs(got_loss - bad_loss) < 1e-9), f"{call} returned {got_loss:.6g}, expected "
                                                                 f"{loss:.6g}{unweighted}")
        expect(abs(got_loss - after) > 1e-9, f"{call} returned the loss after the update ({after:.6g}); expected "
                                             f"the loss before it ({loss:.6g})")
        expect_close(got_loss, loss, f"{call}: the full-batch mean loss before the update", rtol=1e-6, atol=1e-9)
    else:
        now = [t for _, t in got["net"]["params"]]
        expect(len(now) == len(names) and all(torch.equal(b, t) for b, t in zip(got["before"], now, strict=True)),
               f"{call}: the model's parameters were replaced by new objects; update the model's own parameters "
               "in place (p -= lr * grad under torch.no_grad())")
        expect(got["net"]["devices"] == [str(devices[0])], f"{call}: the model's parameters ended on "
                                                           f"{got['net']['devices']}, expected {devices[0]} where "
                                                           "they started")
        pairs = list(zip(now, params, bad_params, build(recipe).parameters(), strict=True))
        diff = max((g - w).abs().max().item() for g, w, _, _ in pairs)
        expect(diff <= 1e-6 or not uneven or not all(torch.allclose(g, b, atol=1e-9) for g, _, b, _ in pairs),
               f"{call}: the parameters differ from one full-batch SGD step{unweighted}")
        expect(any(not torch.equal(g, s) for g, _, _, s in pairs), f"{call}: the parameters did not change")
        expect(diff <= 1e-6, f"{call}: the parameters differ from one full-batch SGD step by up to {diff:.3g} "
                             "(allowed 1e-6); sum the replicas' gradients (shard losses weighted by size) and take "
                             "one step")
    # A child-reported fact: which of the file's own functions the step called. It earns points only because
    # making it true is the honest path (one call each); a single-device step would pass the values above.
    skipped = [f for f in PATH if f not in watched]
    expect(not skipped, f"{call} never called your {', '.join(skipped)}: build the step from your own "
                        "split_batch, replicate, parallel_apply and gather (the data-parallel path), not one "
                        "full-batch step on one device")


def reference_step(recipe: dict, X, y, lr: float, sizes: list[int] | None = None) -> tuple[float, list, float]:
    """One SGD step on one device: loss before, parameters after, loss after; `sizes`: the unweighted mistake."""
    net = build(recipe)
    if sizes is None:
        loss = F.mse_loss(net(X), y)
    else:
        loss = sum(F.mse_loss(net(a), b) for a, b in zip(X.split(sizes), y.split(sizes), strict=True)) / len(sizes)
    loss.backward()
    with torch.no_grad():
        for p in net.parameters():
            p -= lr * p.grad
        return loss.item(), [p.detach().clone() for p in net.parameters()], F.mse_loss(net(X), y).item()


# --- checks ------------------------------------------------------------------------------

@check(points=2, title="split_batch shards X and y like DataParallel (tensor.chunk)",
       hint="X.chunk(len(devices)) and y.chunk(len(devices)), then move shard i to devices[i].",
       title_zh="split_batch 像 DataParallel 一样切分 X 和 y（tensor.chunk）",
       hint_zh="先 X.chunk(len(devices)) 和 y.chunk(len(devices))，再把第 i 个分片移动到 devices[i] 上。")
def split_chunks(sub):
    for n_samples, devices in [(10, [CPU] * 3), (2, [CPU] * 3), (30, [CPU] * 2), (7, [CPU, META]),
                               (sub.rng.randint(5, 40), cpus(sub))]:
        judge_split(sub, n_samples, devices)


@check(points=1, title="split_batch(..., dim=1) splits a time-major batch along dim 1",
       hint="Add the parameter dim: int = 0 and chunk along it: X.chunk(len(devices), dim), y.chunk(len(devices), "
       "dim).",
       title_zh="split_batch(..., dim=1) 沿第 1 维切分时间优先（time-major）的批量",
       hint_zh="加上参数 dim: int = 0 并沿它切分：X.chunk(len(devices), dim)、y.chunk(len(devices), dim)。")
def split_along_dim(sub):
    for n_samples, devices in [(10, [CPU] * 3), (7, [CPU, META]), (sub.rng.randint(5, 40), cpus(sub))]:
        try:  # X (T, N, 3) and y (T, N): the layout of nn.RNN's default batch_first=False
            judge_split(sub, n_samples, devices, dim=1)
        except StudentError as err:
            if err.is_a("TypeError") and "dim" in err.message:
                fail(f"split_batch(X, y, devices, dim=1) raised {err}: add the optional parameter dim: int = 0 "
                     "(calls without it keep splitting dim 0)")
            raise


@check(points=2, title="replicate makes independent, equal copies, one per device",
       hint="copy.deepcopy(module).to(device) for each device: never the same object twice.",
       title_zh="replicate 为每个设备生成一个相互独立且相同的副本",
       hint_zh="对每个设备执行 copy.deepcopy(module).to(device)：绝不能把同一个对象交出两次。")
def replicate_independent(sub):
    judge_replicate(sub, [CPU, CPU, META])  # meta last: a model moved there by mistake cannot come back
    judge_replicate(sub, cpus(sub))


@check(points=1, title="parallel_apply runs replica i on input i",
       hint="[replica(x) for replica, x in zip(replicas, inputs)] is correct: CUDA launches are asynchronous.",
       title_zh="parallel_apply 用第 i 个副本处理第 i 个输入",
       hint_zh="[replica(x) for replica, x in zip(replicas, inputs)] 就是正确的：CUDA 核函数的启动是异步的。")
def parallel_apply_matches(sub):
    n = sub.rng.randint(2, 4)
    seeds = [sub.rng.randrange(2**31) for _ in range(n)]
    inputs = [data(sub, sub.rng.randint(1, 5), 3) for _ in range(n)]
    nets = [net_recipe(s) for s in seeds]
    got = sub.run(Program().call("parallel_apply", nets, inputs, save="out").report("out"))["values"]["out"]
    expect(isinstance(got, (list, tuple)), f"parallel_apply returned {type(got).__name__}, expected a list")
    expect(len(got) == n, f"parallel_apply returned {len(got)} outputs for {n} replicas")
    want = [build(r)(x).detach() for r, x in zip(nets, inputs, strict=True)]
    first = [build(nets[0])(x).detach() for x in inputs]
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if i and torch.is_tensor(g) and g.shape == w.shape and torch.allclose(g, first[i]):
            fail(f"output {i} is replicas[0](inputs[{i}]): apply replica {i} to input {i}")
        expect_close(g, w, f"parallel_apply output {i} (replicas[{i}](inputs[{i}]))")


def gathered(sub, outputs, device, dim: int, what: str, advice: str = ""):
    """gather's answer, or a failure that explains a crash DataParallel's gather would not have."""
    try:
        return sub.call("gather", outputs, device, dim)
    except StudentError as err:
        if err.is_a("NotImplementedError") or err.is_a("MissingFunction"):
            raise  # the starter's 'not implemented yet' is an error, not a wrong answer
        if "stack" in err.message:
            advice = ": gather concatenates (torch.cat) along an existing dim, it does not stack"
        fail(f"{what} raised {err}{advice}")


@check(points=1, title="gather concatenates along dim onto the output device",
       hint="torch.cat([o.to(device) for o in outputs], dim=dim)",
       title_zh="gather 沿 dim 拼接，结果位于输出设备上",
       hint_zh="torch.cat([o.to(device) for o in outputs], dim=dim)")
def gather_concatenates(sub):
    shapes = [([(4, 2)] * 3, CPU, 0), ([(4, 3), (4, 3), (2, 3)], CPU, 0), ([(3, 2), (3, 4)], CPU, 1),
              ([(2, 3), (1, 3)], META, 0)]
    cases = [([data(sub, *shape) for shape in group], device, dim) for group, device, dim in shapes]
    for outputs, device, dim in cases:
        what = f"gather of shapes {[tuple(o.shape) for o in outputs]} on dim {dim} onto {device}"
        got = gathered(sub, outputs, device, dim, what)
        want = torch.cat(outputs, dim)
        if torch.is_tensor(got) and got.dim() == want.dim() + 1:
            fail(f"{what} has shape {tuple(got.shape)}, expected {tuple(want.shape)}: that looks like torch.stack, "
                 "which adds a dimension; gather concatenates along an existing one (torch.cat)")
        expect(torch.is_tensor(got) and got.device.type == device.type, f"{what} should be a tensor on {device}")
        expect(got.shape == want.shape, f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}")
        expect(device.type == "meta" or torch.equal(got, want), f"{what} differs from torch.cat(outputs, {dim})")


@check(points=1, title="gather turns 0-dim scalars (per-replica losses) into a vector",
       hint="If every output is 0-dim, unsqueeze(0) each one first: n scalars become a vector of length n.",
       title_zh="gather 把 0 维标量（每个副本的损失）变成一个向量",
       hint_zh="如果所有输出都是 0 维的，先对每一个做 unsqueeze(0)：n 个标量变成一个长度为 n 的向量。")
def gather_scalars(sub):
    for n in (2, sub.rng.randint(3, 5)):
        outputs = list(data(sub, n, 1).squeeze(1).unbind())
        what = f"gather of {n} 0-dim tensors (one loss per replica) on dim 0"
        got = gathered(sub, outputs, CPU, 0, what, ": keep every scalar and unsqueeze it into a 1-element vector "
                                                   "(torch.cat cannot join 0-dim tensors), like DataParallel's gather")
        shape = tuple(got.shape) if torch.is_tensor(got) else type(got).__name__
        expect(shape == (n,), f"{what} should be a vector of shape ({n},), got {shape}: like DataParallel's gather "
                              "(\"all input tensors were scalars; will instead unsqueeze and return a vector\"), "
                              "keep every scalar and unsqueeze it")
        expect_close(got, torch.stack(outputs), what, rtol=0, atol=0)


@check(points=2, title="allreduce writes the sum into every tensor, in place",
       hint="Sum into a fresh tensor, then t.copy_(total) for each t; never rebind tensors[i].",
       title_zh="allreduce 把总和原地写入每一个张量",
       hint_zh="先把总和算进一个新张量，再对每个 t 调用 t.copy_(total)；绝不要重新绑定 tensors[i]。")
def allreduce_in_place(sub):
    for n, shape in [(3, (2, 3)), (sub.rng.randint(2, 5), (sub.rng.randint(1, 4), sub.rng.randint(1, 4)))]:
        tensors = [data(sub, *shape) for _ in range(n)]
        total = torch.stack(tensors).sum(0)
        # The caller's list after the call, and which of its slots now hold other objects or other memory:
        # labkit's observation in the child, true with one t.copy_(total); the values are judged here.
        got = sub.run(Program().call("allreduce", tensors, keep_args=True))["steps"][0]
        values = got["args_after"][0]
        expect(len(values) == n, f"allreduce changed the list's length from {n} to {len(values)}")
        for i in [p[1] for p in got["replaced"] if len(p) == 2 and p[0] == 0][:1]:
            fail(f"allreduce rebinds list slots (tensors[{i}] = ...) instead of changing the tensors: the caller's "
                 "own tensors (a model's .grad, say) keep their old values; write into each one with t.copy_(total)")
        for i in [p[1] for p in got["storage_moved"] if len(p) == 2 and p[0] == 0][:1]:
            fail(f"tensor {i} now points at new memory (t.data = ... or t.set_(...)); write the sum into its own "
                 "storage with t.copy_(total)")
        for i, value in enumerate(values):
            if torch.equal(value, tensors[i]):
                fail(f"after allreduce tensor {i} of {n} still holds its old value; every tensor should hold the sum")
            expect_close(value, total, f"tensor {i} of {n} after allreduce (the sum of all)")


@check(points=3, title="a step on uneven shards equals one full-batch SGD step",
       hint="Weight shard i's mean loss by n_i / N, backward, sum the replicas' gradients, then p -= lr * grad.",
       title_zh="在不均匀分片上执行的一步等于在整个批量上执行的一步 SGD",
       hint_zh="用 n_i / N 给第 i 个分片的平均损失加权，执行 backward，对各副本的梯度求和，然后 p -= lr * grad。")
def step_equals_full_batch(sub):
    for n_samples, devices in [(10, [CPU] * 3), (2, [CPU] * 3), (sub.rng.randint(5, 20), cpus(sub))]:
        judge_step(sub, devices, n_samples, want_loss=False)


@check(points=1, title="data_parallel_step returns the full-batch loss before it",
       hint="The size-weighted sum of the shard losses is the full-batch mean; return it with .item().",
       title_zh="data_parallel_step 返回这一步更新之前整个批量上的损失",
       hint_zh="按分片大小加权的各分片损失之和就是整个批量上的平均损失；用 .item() 返回它。")
def step_returns_loss(sub):
    for n_samples, devices in [(10, [CPU] * 3), (sub.rng.randint(5, 20), cpus(sub))]:
        judge_step(sub, devices, n_samples, want_loss=True)


@check(points=2, title="split_batch and replicate place work on cuda:0 and cuda:1", needs_gpus=2,
       timeout=60, hint="shard.to(devices[i]) and copy.deepcopy(module).to(devices[i]).",
       title_zh="split_batch 和 replicate 把工作分配到 cuda:0 和 cuda:1 上",
       hint_zh="shard.to(devices[i]) 和 copy.deepcopy(module).to(devices[i])。")
def gpu_split_replicate(sub):
    for n_samples in (10, 7, 1):
        judge_split(sub, n_samples, CUDA2)
    judge_replicate(sub, CUDA2)


@check(points=2, title="a step on two GPUs equals the full-batch step, with its loss", needs_gpus=2,
       timeout=60, hint="Move gradients to one device to sum them; copy_ the sum back to each replica's device.",
       title_zh="在两块 GPU 上执行的一步等于在整个批量上执行的一步，返回的损失也相同",
       hint_zh="把梯度移到同一个设备上求和；再用 copy_ 把总和写回每个副本所在的设备。")
def gpu_step(sub):
    for n_samples, want_loss in [(10, False), (7, False), (7, True)]:
        judge_step(sub, CUDA2, n_samples, want_loss=want_loss)
