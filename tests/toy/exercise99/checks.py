"""Checks for the engine's tests: each one asks for a value the grader recomputes."""

import os

import torch

from labkit.checks import check, expect, expect_close, load_student_tensors, probe


@check(points=1, title="add works on random numbers", hint="return a + b")
def adds(sub):
    a, b = sub.rng.randint(-100, 100), sub.rng.randint(-100, 100)
    got = sub.call("add", a, b)
    expect(got == a + b and type(got) is int, f"add({a}, {b}): expected {a + b}, got {got!r}")


@check(points=1, title="scale returns a tensor")
def scales(sub):
    x = torch.randn(4, 3, generator=sub.generator())
    expect_close(sub.call("scale", x, 2.0), x * 2.0, "scale(x, 2)")


@check(points=1, title="the check asks for a file and judges it")
def writes(sub):
    path = sub.workdir / "answer.pt"
    x = torch.randn(3, generator=sub.generator())
    sub.call("save", x, str(path))
    expect(path.is_file(), "save() wrote no file")
    expect_close(load_student_tensors(path, max_bytes=1 << 20), x, "the saved tensor")


@probe
def model_info(mod):
    net = mod.model()
    return {"type": type(net).__name__, "params": sum(p.numel() for p in net.parameters()), "pid": os.getpid()}


@check(points=1, title="model() builds a Linear(3, 2)")
def builds(sub):
    info = sub.probe("model_info")
    expect(info["type"] == "Linear" and info["params"] == 8, f"expected Linear(3, 2), got {info}")


@check(points=1, title="add still works after the others")
def adds_again(sub):
    expect(sub.call("add", 2, 3) == 5, "add(2, 3) should be 5")


@check(points=1, title="a GPU-only check", needs_gpus=8)
def many_gpus(sub):
    expect(False, "never runs on this machine")
