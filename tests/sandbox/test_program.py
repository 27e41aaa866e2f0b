"""The child's program interpreter (labkit.recipe + labkit.sandbox.program): each primitive, both ways."""

from __future__ import annotations

import os
import types
from pathlib import Path

import pytest
import torch

from labkit.checks import StudentError, check
from labkit.inputs import build
from labkit.recipe import Program, cuda_initialized, dataset, device, factory, gate, hook, module, on, ref, tup, zoo
from labkit.sandbox import program as interpreter
from labkit.sandbox.errors import ProgramFailed
from labkit.sandbox.session import Limits

STUDENT = '''
import os
import torch
from torch import nn


def ident(*args, **kwargs):
    return args, kwargs


def place(net, where):
    return net.to(where)


def mutate(tree):
    tree["x"].add_(1)
    tree["y"] = 5
    return tree["z"]


def rebind(ts):
    ts[0] = ts[0] + 1
    return ts


def env_touch():
    os.environ["LABKIT_TOUCHED"] = "yes"
    return torch.cuda.is_available()


def boom():
    raise KeyError("student")


def sync_bn(net):
    return nn.SyncBatchNorm.convert_sync_batchnorm(net)


class SyncBatchNorm(nn.BatchNorm1d):
    pass


def fake_sync(net):
    net[1] = SyncBatchNorm(4)
    return net


def timed(fn, n):
    import time
    out = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def loader(ds, bs):
    return torch.utils.data.DataLoader(ds, batch_size=bs)


def chain(x):
    return helper(helper(x))


def helper(x):
    return x + 1


def step(net, x):
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net(x).sum().backward()
    opt.step()
    return net
'''


@pytest.fixture
def student(tmp_path) -> types.ModuleType:
    from labkit.files import import_path

    path = tmp_path / "student.py"
    path.write_text(STUDENT)
    return import_path(str(path), "student")


def run(student, prog: Program, gate_fn=lambda: None) -> dict:
    return interpreter.run(student, prog.to_data(), gate_fn)


def test_call_builds_recipes_and_reports_values(student):
    prog = Program().call("ident", tup(1, 2), device("meta"), on(torch.ones(2), "meta"), key=[3], save="out")
    (args, kwargs) = run(student, prog.report("out"))["values"]["out"]
    assert args[0] == (1, 2) and args[1] == torch.device("meta") and args[2].device.type == "meta"
    assert kwargs == {"key": [3]}


def test_module_recipes_build_the_same_weights_on_both_sides_and_report_modules(student):
    spec = module([["Linear", 3, 4], ["BatchNorm1d", 4]], seed=5, buffers=[["", "scale", torch.ones(4), True]])
    got = run(student, Program().call("place", spec, "cpu", save="net").report("net", "module"))["values"]["net"]
    mine = build(spec)
    assert got["torch"] and got["type"] == "torch.nn.modules.container.Sequential"
    assert [n for n, _ in got["params"]] == [n for n, _ in mine.named_parameters()]
    assert all(torch.equal(t, p) for (_, t), p in zip(got["params"], mine.parameters(), strict=True))
    assert [[n, k] for n, _t, k in got["buffers"] if n == "scale"] == [["scale", True]]
    with pytest.raises(ValueError):
        build(module([["Conv3dEvil", 1]]))


def test_torch_classes_are_told_from_look_alikes(student):
    bn = module([["Linear", 3, 4], ["BatchNorm1d", 4]], seed=1)
    real = run(student, Program().call("sync_bn", bn, save="n").report("n", "module"))["values"]["n"]
    fake = run(student, Program().call("fake_sync", bn, save="n").report("n", "module"))["values"]["n"]
    sync = "torch.nn.modules.batchnorm.SyncBatchNorm"
    assert [m[1:] for m in real["modules"] if m[0] == "1"] == [[sync, True]]
    assert [m[2] for m in fake["modules"] if m[0] == "1"] == [False]  # named SyncBatchNorm, not torch's


def test_keep_args_reports_mutation_replacement_and_aliasing(student):
    tree = {"x": torch.zeros(2), "y": 1, "z": torch.ones(1)}
    rec = run(student, Program().call("mutate", tree, keep_args=True, save="r"))["steps"][0]
    after = rec["args_after"][0]
    assert torch.equal(after["x"], torch.ones(2)) and after["y"] == 5
    assert [0, "y"] in rec["replaced"] and [[], [0, "z"]] in rec["aliased"]
    rec = run(student, Program().call("rebind", [torch.zeros(1)], keep_args=True))["steps"][0]
    assert [0, 0] in rec["replaced"]


def test_hidden_cuda_and_environment_changes_are_recorded(student):
    rec = run(student, Program().call("env_touch", hide_cuda=True, env={"LABKIT_SET": "1"}, save="a").report("a"))
    assert rec["values"]["a"] is False
    assert rec["steps"][0]["env_changed"] == {"LABKIT_TOUCHED": [None, "yes"]}
    assert os.environ.pop("LABKIT_TOUCHED") == "yes" and os.environ.pop("LABKIT_SET") == "1"


def test_hooks_loaders_and_spies(student):
    spec = module([["Linear", 3, 4], ["ReLU"], ["Linear", 4, 1]], seed=2)
    prog = Program().let("net", spec).call(ref("net"), torch.ones(5, 3), hooks=[hook(ref("net"), modules=["0", "2"])])
    prog.let("ds", dataset("indexed", length=7)).call("loader", ref("ds"), 3, save="l").report("l", "batches")
    prog.call("step", ref("net"), torch.ones(2, 3), spies=["optimizer_steps"])
    got = run(student, prog)
    events = got["steps"][1]["hooks"][0]
    assert [e[0] for e in events] == ["0", "2"]
    assert events[0][1] == [[[5, 3], "cpu"]] and events[1][2] == [[5, 1], "cpu"]
    loader = got["values"]["l"]
    assert loader["dataset_is"] == ["ds"] and [len(b) for b, _ in loader["batches"]] == [3, 3, 1]
    assert got["steps"][4]["spies"]["optimizer_steps"] == [[0.5]]


def test_a_student_exception_and_a_broken_recipe_are_told_apart(student):
    with pytest.raises(interpreter.StudentRaised):
        run(student, Program().call("boom"))
    with pytest.raises(interpreter.StudentRaised):
        run(student, Program().call("no_such_function"))
    with pytest.raises(interpreter.ProgramError):
        run(student, Program().call("ident", ref("never_saved")))
    with pytest.raises(interpreter.ProgramError):
        run(student, Program().report("never_saved"))


def test_backward_leaves_gradients_the_grader_can_recompute(student):
    spec = module([["Linear", 3, 2]], seed=4)
    x, w = torch.randn(4, 3), torch.randn(4, 2)
    prog = Program().let("net", spec).call(ref("net"), x, save="y").backward("y", w).report("net", "module")
    grads = dict(run(student, prog)["values"]["net"]["grads"])
    mine = build(spec)
    (mine(x) * w).sum().backward()
    assert torch.allclose(grads["0.weight"], mine[0].weight.grad)


def test_watch_missing_refs_seed_and_zoo(student):
    rec = run(student, Program().call("chain", 1, watch=["helper", "ident"], save="c").report("c"))
    assert rec["values"]["c"] == 3 and rec["steps"][0]["watched"] == ["helper", "helper"]
    got = run(student, Program().let("n", module([["Linear", 1, 1]], sequential=False))
              .let("none", ref("n", "stages", 0, missing=None)).report("none").report("n", "kind"))["values"]
    assert got["none"] is None and got["n"]["type"] == "torch.nn.modules.linear.Linear"
    draws = [run(student, Program().seed(7).call("ident", save="x")) for _ in range(2)]
    assert draws and torch.initial_seed() == 7
    net = build(zoo("small_resnet", base=4, seed=3))
    again = build(factory(zoo("small_resnet", base=4, seed=3)))()
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True))
    assert run(student, Program().let("c", cuda_initialized()).report("c"))["values"]["c"] is False


# --- through the worker: the sandbox, gates, and a check's own bug ----------------------------------------

def session_for(worker, tmp_path: Path, source: str):
    path = tmp_path / "student.py"
    path.write_text(source)
    staged = worker.scratch.stage(path)
    work = worker.scratch.workdir("check-")
    sess = worker.session(student=staged, module="student", workdir=work, limits=Limits(call_seconds=10), seed=1)
    sess.open()
    return sess, staged


def test_gates_are_held_by_the_grader_and_timed_by_its_clock(worker, tmp_path):
    sess, staged = session_for(worker, tmp_path, STUDENT)
    holds = [0.05, 0.2, 0.1]
    try:
        got = sess.run(Program().call("timed", gate(), 3, save="t").report("t").to_data(), gate=lambda n: holds[n])
    finally:
        sess.close()
        worker.scratch.unstage(staged)
    spans = [b - a for a, b in got["gates"]]
    assert len(spans) == 3 and all(s >= h for s, h in zip(spans, holds, strict=True))
    assert all(abs(t - h) < 0.05 for t, h in zip(got["values"]["t"], holds, strict=True))


def test_a_recipe_that_does_not_build_is_labkit_s_error(worker, tmp_path):
    sess, staged = session_for(worker, tmp_path, STUDENT)
    try:
        with pytest.raises(ProgramFailed):
            sess.run(Program().call("ident", ref("missing")).to_data())
        with pytest.raises(StudentError):
            sess.run(Program().call("boom").to_data())
    finally:
        sess.close()
        worker.scratch.unstage(staged)


def test_a_check_whose_program_is_wrong_is_reported_as_labkit_s(worker, tmp_path, monkeypatch):
    from labkit.course.course import resolve
    from labkit.grading import engine

    @check(points=1, title="a check with a bug in its program")
    def buggy(sub):
        sub.run(Program().call("add", ref("nothing")))

    real = engine.plan

    def with_bug(*args, **kwargs):
        got = real(*args, **kwargs)
        got.checks[:] = [buggy.__labkit_check__]
        return got

    monkeypatch.setattr(engine, "plan", with_bug)
    path = tmp_path / "exercise99.py"
    path.write_text("def add(a, b):\n    return a + b\n")
    got = engine.grade(resolve("exercise99", Path(__file__).parent.parent / "toy"), path, worker=worker)
    assert [r.status for r in got.results] == ["error"] and "labkit could not judge this" in got.results[0].message
