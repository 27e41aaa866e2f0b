"""Nested batches: random trees of tensors in dicts, lists, tuples and namedtuples, and how two trees compare.

The inputs of exercise1's to_device checks (and of instructors' hidden checks): the grader builds a tree, the child
moves it, and the grader compares the two trees node by node, naming the first node where they differ.
"""

from __future__ import annotations

import collections
import random

import torch

from labkit.checks import expect, fail

TENSOR = torch.Tensor
Batch = collections.namedtuple("Batch", ["inputs", "targets", "info"])


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


def path_text(path: list) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)
