"""Checks for the engine's tests: each one asks for a value the grader recomputes."""

import torch

from labkit.checks import check, expect, expect_close, load_student_tensors
from labkit.recipe import Program, ref


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


@check(points=1, title="model() builds a Linear(3, 2)")
def builds(sub):
    x = torch.randn(5, 3, generator=sub.generator())
    prog = Program().call("model", save="net").call(ref("net"), x, save="y", no_grad=True)
    got = sub.run(prog.report("net", "module").report("y"))["values"]
    info = got["net"]
    expect(info["type"] == "torch.nn.modules.linear.Linear" and info["torch"], f"expected torch's Linear, got "
           f"{info.get('type')}")
    params = dict(info["params"])  # the parameters themselves, not a count the child could make up
    shapes = {name: tuple(t.shape) for name, t in params.items()}
    expect(shapes == {"weight": (2, 3), "bias": (2,)}, f"expected Linear(3, 2), got {shapes}")
    # the model's answer on the grader's input must be what those parameters compute: a report made up
    # without a working Linear(3, 2) does not add up
    expect_close(got["y"], torch.nn.functional.linear(x, params["weight"], params["bias"]), "model()(x)")


@check(points=1, title="add still works after the others")
def adds_again(sub):
    expect(sub.call("add", 2, 3) == 5, "add(2, 3) should be 5")


@check(points=1, title="a GPU-only check", needs_gpus=8)
def many_gpus(sub):
    expect(False, "never runs on this machine")
