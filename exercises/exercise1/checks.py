"""Checks for exercise1: devices, nested batches, models and loaders. `meta` stands in for a second device."""

from __future__ import annotations

import collections
import random

import torch

from labkit.checks import check, expect, expect_equal, fail
from labkit.inputs import build
from labkit.recipe import Program, dataset, module, ref

TENSOR = torch.Tensor
CPU = torch.device("cpu")
Batch = collections.namedtuple("Batch", ["inputs", "targets", "info"])


# --- inputs: built here, sent to the child as data or as recipes ----------------------

def make_tree(seed: int | None) -> dict:
    """A nested batch: the fixed one for None, else a random one drawn from `seed`."""
    g = torch.Generator().manual_seed(seed or 0)
    if seed is None:
        return {"batch": Batch(torch.randn(30, 5, generator=g), torch.randint(0, 2, (30,), generator=g), "epoch 1"),
                "extras": [torch.zeros(3, dtype=torch.int64), 7, None, (torch.ones(2, 2), "tag", 0.5)], "step": 12}
    rng = random.Random(seed)

    def leaf() -> object:
        kind = rng.choice(["tensor", "tensor", "int", "str", "none", "float"])
        if kind == "tensor":
            shape = [rng.randint(1, 4) for _ in range(rng.randint(0, 3))]
            return torch.randn(shape, generator=g).to(rng.choice([torch.float32, torch.float64, torch.int64]))
        return {"int": rng.randint(-9, 99), "str": f"s{rng.randint(0, 99)}", "none": None, "float": rng.random()}[kind]

    def node(depth: int) -> object:
        if depth >= 3 or rng.random() < 0.3:
            return leaf()
        items = [node(depth + 1) for _ in range(3)]
        kind = rng.choice(["dict", "list", "tuple", "batch"])
        if kind == "dict":
            return {f"k{i}": v for i, v in enumerate(items)}
        return {"list": list, "tuple": tuple, "batch": lambda vs: Batch(*vs)}[kind](items)

    return {"x": torch.randn(rng.randint(1, 8), 5, generator=g), "rest": node(1), "more": [node(2), node(2)]}


def model_recipe(seed: int | None) -> dict:
    """A small net with parameters and buffers (BatchNorm's running stats, a persistent and a non-persistent one)."""
    rng = random.Random(seed)
    a, b, c = (5, 8, 2) if seed is None else (rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9))
    layers = [["Linear", a, b], ["BatchNorm1d", b], ["ReLU"], ["Linear", b, c]]
    if seed is not None and rng.random() < 0.5:
        layers.append(["LayerNorm", c])
    return module(layers, seed=seed or 0, buffers=[["", "scale", torch.ones(c), True],
                                                   ["1", "seen", torch.zeros(1), False]])


def walk(obj: object, path: str = "obj") -> list[tuple[str, object]]:
    """Every node of a nested structure with its path, parents first."""
    rows, kids = [(path, obj)], []
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        kids = [(f"{path}.{f}", v) for f, v in zip(obj._fields, tuple.__iter__(obj), strict=False)]
    elif isinstance(obj, dict):
        kids = [(f"{path}[{k!r}]", v) for k, v in dict.items(obj)]
    elif isinstance(obj, (list, tuple)):
        kids = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
    for p, v in kids:
        rows += walk(v, p)
    return rows


def tensors_of(obj: object) -> list[torch.Tensor]:
    return [v for _, v in walk(obj) if isinstance(v, TENSOR)]


def detail(v: object) -> object:
    if isinstance(v, TENSOR):
        return [str(v.device), list(v.shape), str(v.dtype)]
    return len(v) if isinstance(v, (dict, list, tuple)) else repr(v)[:80]


def describe(obj: object) -> list[list]:
    """[path, type name, detail] per node: what is compared between the grader's and the student's trees."""
    return [[path, type(v).__name__, detail(v)] for path, v in walk(obj)]


def compare_trees(got: list, want: list) -> None:
    """Fail with a message naming the first node where the student's tree differs from the expected one."""
    for g, w in zip(got, want, strict=False):
        path, kind = w[0], w[1]
        if g[0] != path or g[1] != kind:
            if kind == "Batch" and g[1] == "tuple":
                fail(f"{path} is a namedtuple Batch but came back as a plain tuple: rebuild it with type(obj)(*items)")
            fail(f"{path} should come back as a {kind} (the type it was given), got {g[1]} at {g[0]}: "
                 "keep every container's type")
        if kind == "Tensor" and g[2][0] != w[2][0]:
            fail(f"{path} is on {g[2][0]}, expected {w[2][0]}: tensor.to(device) returns a moved COPY and leaves "
                 "the tensor where it was; use the returned tensor (t = t.to(device))")
        if g[2] != w[2]:
            what = "tensors keep their shape and dtype" if kind == "Tensor" else "non-tensor leaves come back untouched"
            fail(f"{path}: {what}; expected {w[2]}, got {g[2]}")
    expect(len(got) == len(want), f"the result has {len(got)} nodes, expected {len(want)}: keep every item")


def moved(rows: list[list], device: str) -> list[list]:
    """The grader's expectation: the same tree with every tensor on `device`."""
    return [[p, k, [device, *d[1:]] if k == "Tensor" else d] for p, k, d in rows]


def to_device_run(sub, seed: int | None, device: object) -> tuple[dict, dict]:
    """to_device(tree, device) in the child: (what it returned, the call's record: the caller's tree after it)."""
    got = sub.run(Program().call("to_device", make_tree(seed), device, save="out", keep_args=True).report("out"))
    return got["values"]["out"], got["steps"][0]


def loader_run(sub, length: int, batch_size: int, device: object, batches: bool) -> dict:
    """make_loader on a dataset whose rows carry their index: the loader's settings and one epoch's batches."""
    prog = Program().let("ds", dataset("indexed", length=length)).call("make_loader", ref("ds"), batch_size, device,
                                                                       save="loader")
    return sub.run(prog.report("loader", "batches" if batches else "loader"))["values"]["loader"]


def path_text(path: list) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


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
