"""Checks for exercise5: DataParallel's scatter, replicate, parallel_apply and gather, built by hand.

Every check runs a program of labkit's generic recipes in the child (labkit.recipe) and judges in the grader:
values against the grader's own copy of the same inputs (labkit.inputs.build), a step redone here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labkit.checks import StudentError, check, expect, expect_close, fail
from labkit.inputs import build
from labkit.recipe import Program, module, ref

CPU, META = torch.device("cpu"), torch.device("meta")
CUDA2 = [torch.device("cuda", 0), torch.device("cuda", 1)]
PATH = ["split_batch", "replicate", "parallel_apply", "gather"]  # the functions the step is built from


def tiny_net(seed: int, d_in: int = 3, d_out: int = 2, norm: bool = False) -> nn.Sequential:
    """A float64 Linear-Tanh-Linear (BatchNorm optional) whose weights depend only on `seed`, here and in the child."""
    g = torch.Generator().manual_seed(seed)
    layers = [nn.Linear(d_in, 6)] + ([nn.BatchNorm1d(6)] if norm else []) + [nn.Tanh(), nn.Linear(6, d_out)]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():  # BatchNorm's running stats get values of their own: a replica that drops them shows
        for t in [*net.parameters(), *(b for b in net.buffers() if b.is_floating_point())]:
            t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) - 0.4)
    return net


def cpus(sub) -> list[torch.device]:
    return [CPU] * sub.rng.randint(2, 4)


def data(sub, n: int, cols: int) -> torch.Tensor:
    return torch.randn(n, cols, generator=sub.generator().manual_seed(sub.rng.randrange(2**31)), dtype=torch.float64)


# --- probes (run in the child, next to the student's module) ---------------------------

@probe
def split_report(mod, X, y, devices) -> dict:
    xs, ys = mod.split_batch(X, y, devices)
    return {"xs": list(xs), "ys": list(ys), "xdev": [str(t.device) for t in xs], "ydev": [str(t.device) for t in ys]}


@probe
def replicate_report(mod, seed: int, devices) -> dict:
    """Replicate a fresh net, then nudge each replica's first weight and see whether anything else moved."""
    net = tiny_net(seed, norm=True)
    replicas = list(mod.replicate(net, devices))
    info = {"count": len(replicas), "distinct": len({id(r) for r in replicas}) == len(replicas),
            "original": [i for i, r in enumerate(replicas) if r is net],
            "devices": [sorted({str(t.device) for t in r.state_dict().values()}) for r in replicas],
            "states": [{k: v.clone() for k, v in r.state_dict().items()} for r in replicas],
            "trainable": [all(p.requires_grad for p in r.parameters()) for r in replicas],
            "original_devices": sorted({str(t.device) for t in net.state_dict().values()}), "coupled": []}
    firsts = [next(m.parameters()) for m in [net] + replicas]  # index 0: the original
    snap = [q.detach().clone() for q in firsts]
    with torch.no_grad():
        for i in [i for i, q in enumerate(firsts) if i and q.device.type != "meta"]:
            firsts[i].add_(1.0)
            info["coupled"] += [[i - 1, j] for j, q in enumerate(firsts)
                                if j != i and q.device.type != "meta" and not torch.equal(q, snap[j])]
            firsts[i].copy_(snap[i])  # (w + 1) - 1 need not be w in floating point
    return info


@probe
def apply_report(mod, seeds: list[int], inputs: list) -> list:
    return list(mod.parallel_apply([tiny_net(s) for s in seeds], list(inputs)))


@probe
def allreduce_report(mod, tensors: list) -> dict:
    originals, ptrs = list(tensors), [t.data_ptr() for t in tensors]  # the caller's own references, kept first
    mod.allreduce(tensors)
    return {"values": [t.clone() for t in originals], "length": len(tensors),
            "rebound": [i for i, t in enumerate(originals) if i >= len(tensors) or tensors[i] is not t],
            "moved": [i for i, t in enumerate(originals) if t.data_ptr() != ptrs[i]]}


@probe
def step_report(mod, seed: int, X, y, lr: float, devices) -> dict:
    net = tiny_net(seed, X.shape[1], y.shape[1]).to(devices[0])
    params = list(net.parameters())
    loss = mod.data_parallel_step(net, X, y, nn.MSELoss(), lr, devices)
    return {"loss": float(loss) if isinstance(loss, float) else None, "loss_type": type(loss).__name__,
            "params": [p.detach() for p in params], "devices": sorted({str(p.device) for p in params}),
            "in_place": [id(p) for p in net.parameters()] == [id(p) for p in params]}


def judge_split(sub, n_samples: int, devices) -> None:
    X, y = data(sub, n_samples, 3), data(sub, n_samples, 1).squeeze(1)
    want = [len(c) for c in X.chunk(len(devices))]
    got = sub.probe("split_report", X, y, devices)
    sizes, ysizes = [len(t) for t in got["xs"]], [len(t) for t in got["ys"]]
    call = f"split_batch on a batch of {n_samples} for {len(devices)} devices"
    expect(sizes == want, f"{call}: shard sizes {sizes}, expected {want} (tensor.chunk semantics: ceil(N/n) per "
                          "shard, the last one smaller; fewer samples than devices give fewer shards)")
    expect(ysizes == sizes, f"{call}: y shards have sizes {ysizes} but X shards {sizes}; they must line up")
    for i, (x, t) in enumerate(zip(X.chunk(len(devices)), y.chunk(len(devices)), strict=True)):
        where, d = (got["xdev"][i], got["ydev"][i]), devices[i]
        expect(where == (str(d), str(d)), f"{call}: shard {i} is on {where[0]} (X) and {where[1]} (y), expected {d}")
        expect(d.type == "meta" or (torch.equal(got["xs"][i], x) and torch.equal(got["ys"][i], t)),
               f"{call}: shard {i} should hold X.chunk(n)[{i}] and the matching y.chunk(n)[{i}]")


def judge_replicate(sub, devices) -> None:
    seed = sub.rng.randrange(2**31)
    info = sub.probe("replicate_report", seed, devices)  # judged for the CPU and the GPU checks alike
    expect(info["count"] == len(devices), f"replicate returned {info['count']} replicas for {len(devices)} devices")
    expect(info["distinct"], "replicate returned the same module object more than once ([module] * n): a change to "
                             "one replica is a change to all; make one copy per device (copy.deepcopy)")
    expect(not info["original"], "replicate returned the original module as a replica: copy it (copy.deepcopy)")
    expect(info["original_devices"] == ["cpu"], f"replicate moved the original model to {info['original_devices']}: "
                                                "copy it first (copy.deepcopy; copy.copy shares the parameters)")
    ref = tiny_net(seed, norm=True).state_dict()
    for i, d in enumerate(devices):
        state = info["states"][i]
        expect(list(state) == list(ref), f"replica {i} has state {list(state)}, expected a copy's {list(ref)}")
        expect(info["devices"][i] == [str(d)], f"replica {i} has tensors on {info['devices'][i]}, expected {d}")
        expect(info["trainable"][i], f"replica {i} has parameters with requires_grad=False: it could not learn")
        for k, v in ref.items():
            same = state[k].shape == v.shape if d.type == "meta" else torch.equal(state[k], v)
            expect(same, f"replica {i}'s {k} differs from the original's: replicas start with equal weights")
    for i, j in info["coupled"][:1]:
        fail(f"changing replica {i}'s weight also changed {'the original' if j == 0 else f'replica {j - 1}'}: "
             "they share tensors (a shallow copy?); each replica needs its own copy of every parameter and buffer")


def judge_step(sub, devices, n_samples: int, *, want_loss: bool) -> None:
    seed, lr = sub.rng.randrange(2**31), round(sub.rng.uniform(0.1, 0.5), 3)
    X, y = data(sub, n_samples, 3), data(sub, n_samples, 2)
    sizes = [len(c) for c in X.chunk(len(devices))]
    got = sub.probe("step_report", seed, X, y, lr, devices)
    call = f"data_parallel_step with a batch of {n_samples} on {len(devices)} devices (shards {sizes})"
    loss, params, after = reference_step(seed, X, y, lr)
    bad_loss, bad_params, _ = reference_step(seed, X, y, lr, sizes)
    uneven = len(set(sizes)) > 1  # only uneven shards tell the weighted and the unweighted mean apart
    unweighted = (f"; that is what averaging the per-shard mean losses without weighting by shard size gives: "
                  f"weight shard i's mean loss by n_i / N (shards {sizes} of N = {n_samples})")
    if want_loss:
        got_loss = got["loss"]
        expect(got_loss is not None, f"{call} should return a Python float (loss.item()), got {got['loss_type']}")
        expect(not (uneven and abs(got_loss - bad_loss) < 1e-9), f"{call} returned {got_loss:.6g}, expected "
                                                                 f"{loss:.6g}{unweighted}")
        expect(abs(got_loss - after) > 1e-9, f"{call} returned the loss after the update ({after:.6g}); expected "
                                             f"the loss before it ({loss:.6g})")
        expect_close(got_loss, loss, f"{call}: the full-batch mean loss before the update", rtol=1e-6, atol=1e-9)
        return
    expect(got["in_place"], f"{call}: the model's parameters were replaced by new objects; update the model's "
                            "own parameters in place (p -= lr * grad under torch.no_grad())")
    expect(got["devices"] == [str(devices[0])], f"{call}: the model's parameters ended on {got['devices']}, "
                                                f"expected {devices[0]} where they started")
    pairs = list(zip(got["params"], params, bad_params, tiny_net(seed).parameters(), strict=True))
    diff = max((g - w).abs().max().item() for g, w, _, _ in pairs)
    expect(diff <= 1e-6 or not uneven or not all(torch.allclose(g, b, atol=1e-9) for g, _, b, _ in pairs),
           f"{call}: the parameters differ from one full-batch SGD step{unweighted}")
    expect(any(not torch.equal(g, s) for g, _, _, s in pairs), f"{call}: the parameters did not change")
    expect(diff <= 1e-6, f"{call}: the parameters differ from one full-batch SGD step by up to {diff:.3g} (allowed "
                         "1e-6); sum the replicas' gradients (shard losses weighted by size) and take one step")


def reference_step(seed: int, X, y, lr: float, sizes: list[int] | None = None) -> tuple[float, list, float]:
    """One SGD step on one device: loss before, parameters after, loss after; `sizes`: the unweighted mistake."""
    net = tiny_net(seed, X.shape[1], y.shape[1])
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
    got = sub.probe("apply_report", seeds, inputs)
    expect(len(got) == n, f"parallel_apply returned {len(got)} outputs for {n} replicas")
    want = [tiny_net(s)(x).detach() for s, x in zip(seeds, inputs, strict=True)]
    first = [tiny_net(seeds[0])(x).detach() for x in inputs]
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
        got = sub.probe("allreduce_report", tensors)
        expect(got["length"] == n, f"allreduce changed the list's length from {n} to {got['length']}")
        for i in got["rebound"][:1]:
            fail(f"allreduce rebinds list slots (tensors[{i}] = ...) instead of changing the tensors: the caller's "
                 "own tensors (a model's .grad, say) keep their old values; write into each one with t.copy_(total)")
        for i in got["moved"][:1]:
            fail(f"tensor {i} now points at new memory (t.data = ... or t.set_(...)); write the sum into its own "
                 "storage with t.copy_(total)")
        for i, value in enumerate(got["values"]):
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
