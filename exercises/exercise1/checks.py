"""Checks for exercise1: devices, nested batches, models and loaders. `meta` stands in for a second device."""

from __future__ import annotations

import random

import torch

from labkit.checks import StudentError, check, expect, expect_equal, fail
from labkit.inputs import build
from labkit.lab.trees import TENSOR, compare_trees, describe, make_tree, moved, path_text, tensors_of
from labkit.recipe import Program, dataset, factory, module, on, ref, tup

CPU = torch.device("cpu")


def model_recipe(seed: int | None) -> dict:
    """A small net with parameters and buffers (BatchNorm's running stats, a persistent and a non-persistent one)."""
    rng = random.Random(seed)
    a, b, c = (5, 8, 2) if seed is None else (rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9))
    layers = [["Linear", a, b], ["BatchNorm1d", b], ["ReLU"], ["Linear", b, c]]
    if seed is not None and rng.random() < 0.5:
        layers.append(["LayerNorm", c])
    return module(layers, seed=seed or 0, buffers=[["", "scale", torch.ones(c), True],
                                                   ["1", "seen", torch.zeros(1), False]])


def to_device_run(sub, seed: int | None, device: object) -> tuple[dict, dict]:
    """to_device(tree, device) in the child: (what it returned, the call's record: the caller's tree after it)."""
    got = sub.run(Program().call("to_device", make_tree(seed), device, save="out", keep_args=True).report("out"))
    return got["values"]["out"], got["steps"][0]


def loader_run(sub, length: int, batch_size: int, device: object, batches: bool) -> dict:
    """make_loader on a dataset whose rows carry their index: the loader's settings and one epoch's batches."""
    prog = Program().let("ds", dataset("indexed", length=length)).call("make_loader", ref("ds"), batch_size, device,
                                                                       save="loader")
    return sub.run(prog.report("loader", "batches" if batches else "loader"))["values"]["loader"]


# --- checks (run in the grader) --------------------------------------------------------

@check(points=1, title="pick_device falls back to the CPU",
       hint="return torch.device('cpu') unless prefer == 'cuda' and torch.cuda.is_available()",
       title_zh="pick_device 回退到 CPU",
       hint_zh="除非 prefer == 'cuda' 且 torch.cuda.is_available()，否则返回 torch.device('cpu')")
def picks_cpu(sub):
    for args in [(), ("cuda",)]:
        got = sub.run(Program().call("pick_device", *args, save="d", hide_cuda=True).report("d"))["values"]["d"]
        call = f"pick_device({', '.join(map(repr, args))})"
        expect(not isinstance(got, str), f"{call} returned the string {got!r}: return a torch.device")
        expect_equal(got, CPU, f"{call} without a usable GPU")
    expect_equal(sub.call("pick_device", "cpu"), CPU, "pick_device('cpu') (the CPU when asked for it, GPU or not)")


@check(points=2, title="to_device moves every tensor leaf and keeps the containers",
       hint="recurse: tensors -> t.to(device); dict/list/tuple -> a new one of the same type; a namedtuple -> "
       "type(obj)(*items); anything else comes back as it is",
       title_zh="to_device 移动每一个张量叶子，并保持容器不变",
       hint_zh="递归处理：张量 -> t.to(device)；dict/list/tuple -> 一个同类型的新容器；"
       "namedtuple -> type(obj)(*items)；其他任何东西原样返回")
def to_device_moves(sub):
    seeds = [None, sub.rng.randrange(1 << 30), sub.rng.randrange(1 << 30)]
    for seed, device in zip(seeds, ["meta", torch.device("meta"), "meta"], strict=True):
        out, _record = to_device_run(sub, seed, device)
        compare_trees(describe(out), moved(describe(make_tree(seed)), "meta"))


@check(points=2, title="to_device leaves the caller's objects alone",
       hint="build new containers and use the tensors that .to() returns; never assign into the caller's dict or "
       "list, and never move a tensor in place",
       title_zh="to_device 不改动调用方的对象",
       hint_zh="构建新的容器，并使用 .to() 返回的张量；绝不要对调用方的 dict 或 list 赋值，也绝不要原地移动张量")
def to_device_copies(sub):
    for seed in [None, sub.rng.randrange(1 << 30)]:
        (_out, record), want = to_device_run(sub, seed, "meta"), make_tree(seed)
        replaced = [p for p in record["replaced"] if p and p[0] == 0]  # inside the tree (argument 0)
        expect(not replaced, f"the caller's {path_text(replaced[0][1:]) if replaced else ''} was replaced: "
               "to_device must not mutate its input; build a new container and return it")
        caller = record["args_after"][0]
        for g, w in zip(describe(caller), describe(want), strict=False):
            expect(g == w, f"the caller's {w[0]} changed to {g[1]} {g[2]}: to_device must not mutate its input")
        for g, w in zip(tensors_of(caller), tensors_of(want), strict=True):
            expect(g.device == CPU and torch.equal(g, w), "a tensor the caller passed in changed its values or "
                   "device: move copies (t.to(device)), not the caller's tensors")


@check(points=2, title="place_model puts every parameter and buffer on the device",
       hint="nn.Module.to(device) moves parameters and buffers (BatchNorm's running_mean) and returns the module",
       title_zh="place_model 把每一个参数和缓冲区都放到该设备上",
       hint_zh="nn.Module.to(device) 会移动参数和缓冲区（BatchNorm 的 running_mean），并返回模块本身")
def places_model(sub):
    for seed, device in [(None, "meta"), (sub.rng.randrange(1 << 30), torch.device("meta"))]:
        prog = Program().call("place_model", model_recipe(seed), device, save="net")
        got = sub.run(prog.report("net", "module_shapes"))["values"]["net"]
        expect(got.get("report") == "module", f"place_model returned {got['name']}, not the model: return it "
               "(model.to(device) returns the module itself)")
        net = build(model_recipe(seed))
        expect_equal([n for n, _ in got["params"]], [n for n, _ in net.named_parameters()], "the parameters' names")
        expect_equal([n for n, *_ in got["buffers"]], [n for n, _ in net.named_buffers()], "the buffers' names")
        off = {kind: [n for n, t, *_ in got[kind] if t["device"] != "meta"] for kind in ("params", "buffers")}
        expect(not off["params"], f"parameters {', '.join(off['params'])} are not on meta")
        expect(not off["buffers"], f"buffers {', '.join(off['buffers'])} are not on meta: moving parameters one by "
               "one misses buffers such as BatchNorm's running_mean; model.to(device) moves both")


def expect_loader(facts: dict, call: str, batch_size: int) -> None:
    expect(facts["type"] == "torch.utils.data.dataloader.DataLoader" and facts["torch"],
           f"{call} returned {facts['name']}, expected a torch DataLoader")
    expect(facts["dataset_is"] == ["ds"], f"{call}: the loader should read the dataset it was given")
    expect_equal(facts["batch_size"], batch_size, f"{call}: batch_size")
    sampler = facts["sampler"].rsplit(".", 1)[-1]
    expect(sampler == "RandomSampler", f"{call} does not shuffle (its sampler is {sampler}): "
           "pass shuffle=True so that every epoch sees the samples in a new order")


@check(points=1, title="make_loader shuffles and does not pin for the CPU",
       hint="DataLoader(dataset, batch_size=batch_size, shuffle=True, pin_memory=...) with pin_memory False for cpu",
       title_zh="make_loader 会打乱数据，且对 CPU 不使用固定内存",
       hint_zh="DataLoader(dataset, batch_size=batch_size, shuffle=True, pin_memory=...)，"
       "对 cpu 设置 pin_memory 为 False")
def loader_for_cpu(sub):
    cases = [(100, 30, "cpu"), (sub.rng.randint(20, 200), sub.rng.randint(1, 64), CPU)]
    for length, bs, device in cases:
        call = f"make_loader(dataset of {length}, {bs}, {device!r})"
        facts = loader_run(sub, length, bs, device, True)
        expect_loader(facts, call, bs)
        batches = [b for b, _pinned in facts["batches"]]
        expect(all(isinstance(b, TENSOR) and b.dim() == 2 for b in batches),
               f"{call}: each batch should be one tensor of rows (the dataset's samples stacked)")
        sizes, order = [len(b) for b in batches], [int(i) for b in batches for i in b[:, 0].tolist()]
        expect(facts["pin_memory"] is False, f"{call} has pin_memory={facts['pin_memory']!r}: pinned (page-locked) "
               "memory only speeds up copies to a GPU; for the CPU it just wastes memory")
        expect_equal(sizes, [len(c) for c in torch.arange(length).split(bs)], f"{call}: batch sizes")
        expect(sorted(order) == list(range(length)), f"{call}: one epoch should see every sample once")
        expect(order != list(range(length)), f"{call}: one epoch came out in dataset order; shuffle it")


@check(points=1, title="make_loader pins memory for a CUDA device",
       hint="decide from the device argument: torch.device(device).type == 'cuda' (a DataLoader with "
       "pin_memory=True can be built on any machine)",
       title_zh="make_loader 对 CUDA 设备使用固定内存",
       hint_zh="根据 device 参数来决定：torch.device(device).type == 'cuda'（用 pin_memory=True 构建 DataLoader "
       "在任何机器上都可以）")
def loader_for_cuda(sub):
    bs = sub.rng.randint(2, 64)
    for device in ["cuda", torch.device("cuda", 0), f"cuda:{sub.rng.randint(0, 3)}"]:
        call = f"make_loader(dataset, {bs}, {device!r})"
        facts = loader_run(sub, 100, bs, device, False)
        expect_loader(facts, call, bs)
        expect(facts["pin_memory"] is True, f"{call} has pin_memory={facts['pin_memory']!r}: pin batches headed for "
               "a GPU (async copies); decide from the device argument, not from whether this machine has a GPU")


@check(points=1, title="pick_device picks cuda:0 where a GPU exists", needs_gpus=1,
       hint="torch.device('cuda', 0) — torch.device('cuda') has no index and compares unequal to it",
       title_zh="有 GPU 时 pick_device 选择 cuda:0",
       hint_zh="torch.device('cuda', 0) —— torch.device('cuda') 没有索引，与它比较时并不相等")
def picks_cuda(sub):
    expect_equal(sub.call("pick_device"), torch.device("cuda", 0), "pick_device() on a GPU machine")
    expect_equal(sub.call("pick_device", "cpu"), CPU, "pick_device('cpu') on a GPU machine")


@check(points=2, title="real copies to cuda:0, pinned batches", needs_gpus=1,
       hint="t.to(device, non_blocking=True) from pinned memory; DataLoader(..., pin_memory=True) for CUDA",
       title_zh="真正拷贝到 cuda:0，批量位于固定内存中",
       hint_zh="从固定内存执行 t.to(device, non_blocking=True)；对 CUDA 使用 DataLoader(..., pin_memory=True)")
def gpu_copies(sub):
    seed = sub.rng.randrange(1 << 30)
    prog = Program().call("to_device", make_tree(seed), "cuda:0", save="tree")
    prog.call("place_model", model_recipe(seed), torch.device("cuda", 0), save="net")
    prog.let("ds", dataset("indexed", length=100)).call("make_loader", ref("ds"), 30, "cuda:0", save="loader")
    prog.report("tree").report("tree", "devices", key="tree_devices")
    prog.report("net", "module_shapes").report("loader", "batches")
    got, want = sub.run(prog)["values"], make_tree(seed)
    compare_trees(describe(got["tree"]), describe(want))  # tensors travel back on the CPU; devices are reported
    off = [path_text(p) for p, where in got["tree_devices"] if where != "cuda:0"]
    expect(not off, f"{', '.join(off[:3])} {'is' if len(off) == 1 else 'are'} not on cuda:0 after to_device")
    for g, w in zip(tensors_of(got["tree"]), tensors_of(want), strict=True):
        expect(torch.equal(g, w), "a tensor copied to cuda:0 holds different values: synchronise before reading")
    expect_equal(got["net"]["devices"], ["cuda:0"], "the devices of the placed model's parameters and buffers")
    pinned = [p for _b, p in got["loader"]["batches"]]
    expect(pinned and all(p is True for p in pinned), "the batches of make_loader(..., 'cuda:0') are not pinned")


# --- the default device as a context, and operations that mix devices -------------------

def built_on(sub, device: object, builder: dict, after: dict) -> dict:
    """build_on(device, builder) in the child: what builder() made, and `after`, built by the caller once it returned.
    A builder that returns a tuple (a model and a dataset) is what `.to(device)` on the result cannot move."""
    prog = Program().call("build_on", device, builder, save="out").let("after", after).report("after", "module_shapes")
    prog.let("net", ref("out", 0, missing=None)).let("rows", ref("out", 1, "rows", missing=None))
    try:
        return sub.run(prog.report("net", "module_shapes").report("rows", "devices"))["values"]
    except StudentError as err:
        if err.is_a("AttributeError") and "'to'" in err.message:
            fail(f"build_on({device!r}, builder) raised {err}: it moved builder()'s result afterwards, but a builder "
                 "may return anything (here a model and a dataset in a tuple); make its tensors on the device as "
                 "they are created: with torch.device(device): return builder()")
        raise


@check(points=2, title="build_on makes every tensor the builder creates on the device, then restores the default",
       hint="with torch.device(device): return builder() — a torch.device is a context manager; "
       "torch.set_default_device would stay set after the call",
       title_zh="build_on 让构建函数创建的每个张量都位于该设备上，之后恢复默认设备",
       hint_zh="with torch.device(device): return builder() —— torch.device 本身就是上下文管理器；"
       "torch.set_default_device 在调用结束后仍然有效")
def builds_on_meta(sub):
    for device in ("meta", torch.device("meta")):
        seed, length = sub.rng.randrange(1 << 30), sub.rng.randint(3, 40)  # BatchNorm's buffers: its constructor's
        builder = factory(tup(module(model_recipe(seed)["layers"], seed=seed), dataset("indexed", length=length)))
        got = built_on(sub, device, builder, module([["Linear", 2, 3]], seed=seed))
        call = f"build_on({device!r}, builder)"
        expect(isinstance(got["net"], dict) and got["net"].get("report") == "module" and got["rows"] is not None,
               f"{call} should return what builder() returned (a model and a dataset), got {got['net']}")
        where = sorted({t["device"] for kind in ("params", "buffers") for _n, t, *_ in got["net"][kind]})
        expect(where == ["meta"], f"{call}: the model builder() made has tensors on {where}, expected only meta: "
               "create them on the device while builder() runs (with torch.device(device): ...)")
        rows = sorted({d for _p, d in got["rows"]})
        expect(rows == ["meta"], f"{call}: the dataset builder() made holds its rows on {rows}, expected meta: every "
               "factory call inside builder() (torch.zeros, torch.arange) should default to the device")
        leaked = got["after"]["devices"]
        expect(leaked == ["cpu"], f"after {call} returned, a layer the caller built has its tensors on {leaked}: "
               "the default device leaked out of build_on (torch.set_default_device stays set); a with block "
               "restores it when the block ends")


def summed(sub, tensors: list, device: object) -> tuple[object, dict, str]:
    """sum_on(tensors, device) in the child: its answer (value and devices) and the call's record."""
    prog = Program().call("sum_on", tensors, device, save="out", keep_args=True)
    call = f"sum_on([{', '.join(t['device'] if isinstance(t, dict) else 'cpu' for t in tensors)}], {device!r})"
    try:
        got = sub.run(prog.report("out").report("out", "devices", key="where"))
    except StudentError as err:
        if err.is_a("RuntimeError") and "device" in err.message:
            fail(f"{call} raised {err}: no operation mixes tensors on two devices (copy_ and .to aside); move each "
                 "tensor to `device` before adding it")
        raise
    return got["values"], got["steps"][0], call


@check(points=2, title="sum_on moves each operand to the device before adding, and changes no caller's tensor",
       hint="total = torch.zeros(shape, dtype=..., device=device); then total += t.to(device) for each t",
       title_zh="sum_on 在相加之前把每个操作数移到该设备上，并且不改动调用方的任何张量",
       hint_zh="total = torch.zeros(shape, dtype=..., device=device)；然后对每个 t 执行 total += t.to(device)")
def sums_across_devices(sub):
    g, shape = sub.generator(), (sub.rng.randint(1, 5), sub.rng.randint(1, 5))
    tensors = [torch.randn(shape, generator=g) for _ in range(sub.rng.randint(2, 4))]
    got, record, call = summed(sub, tensors, "cpu")
    changed = [i for i, (t, was) in enumerate(zip(record["args_after"][0], tensors, strict=True))
               if not torch.equal(t, was)]
    expect(not changed, f"{call} changed the caller's tensors[{changed[0] if changed else 0}]: t.to(device) returns "
           "t itself when it is already on the device, so adding into it changes the caller's tensor; start from a "
           "new tensor (torch.zeros(..., device=device))")
    expect(isinstance(got["out"], torch.Tensor) and not record["aliased"], f"{call} should return a new tensor")
    expect(torch.allclose(got["out"], sum(tensors), atol=1e-6), f"{call}: the sum differs from the grader's")
    for mixed, device in (([tensors[0], on(tensors[1], "meta")], "meta"),
                          ([on(tensors[0], "meta"), tensors[1], tensors[-1]], torch.device("meta"))):
        got, _record, call = summed(sub, mixed, device)
        expect(isinstance(got["out"], torch.Tensor) and tuple(got["out"].shape) == shape
               and got["where"] == [[[], "meta"]],
               f"{call} should be one tensor of shape {shape} on meta, got {got['where']}")


@check(points=2, title="inside build_on('cuda:1', ...), 'cuda' means cuda:1; afterwards cuda:0 again", needs_gpus=2,
       hint="for a CUDA device also enter torch.cuda.device(device): it sets the current GPU, which 'cuda' and "
       ".cuda() mean; torch.device(device) as a context only sets the default of factory functions",
       title_zh="在 build_on('cuda:1', ...) 内部，'cuda' 指 cuda:1；结束后又是 cuda:0",
       hint_zh="对 CUDA 设备还要进入 torch.cuda.device(device)：它设置当前 GPU，也就是 'cuda' 和 .cuda() 所指的 GPU；"
       "把 torch.device(device) 当作上下文只会设置工厂函数的默认设备")
def gpu_builds_on_current_device(sub):
    x, y = torch.randn(3, generator=sub.generator()), torch.randn(2, generator=sub.generator())
    builder = factory(tup(module(model_recipe(None)["layers"]), on(x, "cuda")))
    prog = Program().call("build_on", "cuda:1", builder, save="out").let("after", on(y, "cuda"))
    prog.let("net", ref("out", 0, missing=None)).let("bare", ref("out", 1, missing=None))
    got = sub.run(prog.report("net", "module_shapes").report("bare", "devices").report("after", "devices"))["values"]
    expect(isinstance(got["net"], dict) and got["net"].get("devices") == ["cuda:1"],
           f"the model built inside build_on('cuda:1', ...) is on {got['net'].get('devices')}, expected cuda:1")
    bare = sorted({d for _p, d in got["bare"] or []})
    expect(bare == ["cuda:1"], f"inside build_on('cuda:1', ...) a tensor moved to 'cuda' landed on {bare}: 'cuda' "
           "without an index is the current GPU; enter torch.cuda.device(device) too")
    after = sorted({d for _p, d in got["after"]})
    expect(after == ["cuda:0"], f"after build_on('cuda:1', ...) returned, 'cuda' means {after}, expected cuda:0: "
           "leave the current GPU as it was (torch.cuda.device as a context; torch.cuda.set_device stays set)")


@check(points=1, title="sum_on adds tensors from the CPU and other GPUs on cuda:0", needs_gpus=1,
       hint="t.to(device) for every operand before adding (or copy_ into a tensor on the device): CUDA refuses to "
       "add a CPU tensor or another GPU's tensor to one on cuda:0",
       title_zh="sum_on 在 cuda:0 上把来自 CPU 和其他 GPU 的张量相加",
       hint_zh="相加之前对每个操作数执行 t.to(device)（或者用 copy_ 拷贝到该设备上的张量中）："
       "CUDA 拒绝把 CPU 上或另一块 GPU 上的张量加到 cuda:0 上的张量")
def gpu_sums_across(sub):
    where = ["cuda:0", "cpu", "cuda:0", "cuda:1"][:4 if sub.gpus >= 2 else 3]
    tensors = [torch.randn(4, 3, generator=sub.generator().manual_seed(i)) for i in range(len(where))]
    got, _record, call = summed(sub, [t if d == "cpu" else on(t, d) for t, d in zip(tensors, where, strict=True)],
                                "cuda:0")
    expect(got["where"] == [[[], "cuda:0"]], f"{call} should be one tensor on cuda:0, got {got['where']}")
    expect(torch.allclose(got["out"], sum(tensors), atol=1e-5), f"{call}: the sum differs from the grader's")
