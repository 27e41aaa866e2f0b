"""The child's interpreter of a check's program (labkit.recipe): build inputs, call, record, report.

This is the whole vocabulary a check has inside the student's process. It is generic: no exercise's code,
no reference computation, no check name. A recipe the interpreter cannot build is the check's bug
(ProgramError, reported as labkit's); an exception from a student function is the student's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch

from labkit.inputs import build
from labkit.sandbox import facts, launcher, spies


class ProgramError(Exception):
    """The program itself is wrong (an unknown recipe, a missing saved value): a bug in the check."""


class StudentRaised(Exception):
    """A student function raised while the program ran; `error` is the exception, `step` where."""

    def __init__(self, error: BaseException, step: int):
        super().__init__(str(error))
        self.error, self.step = error, step


def run(student: ModuleType, program: dict, gate: Callable[[], None]) -> dict:
    """Carry out `program` against the student's module; the reports and each step's records."""
    saved: dict[str, Any] = {}
    records = []
    for i, step in enumerate(program.get("steps", [])):
        op = step.get("op")
        if op == "call":
            records.append(_call(student, step, saved, gate, i))
        elif op == "let":
            try:
                saved[step["name"]] = build(step["recipe"], saved, gate)
            except Exception as exc:  # noqa: BLE001  (a recipe that does not build is the check's bug)
                raise ProgramError(f"step {i}: {type(exc).__name__}: {exc}") from None
            records.append({})
        elif op == "backward":
            _backward(step, saved, i)
            records.append({})
        elif op == "seed":
            torch.manual_seed(int(step["seed"]))
            records.append({})
        elif op == "cuda_initialized":
            torch.cuda._initialized = True
            records.append({})
        elif op == "launch":
            records.append(_launch(student, step, i))
        else:
            raise ProgramError(f"unknown step {op!r}")
    values = {}
    for name, how, key in program.get("reports", []):
        values[key] = _report(saved, name, how)
    return {"values": values, "steps": records}


def _call(student: ModuleType, step: dict, saved: dict, gate: Callable[[], None], i: int) -> dict:
    try:
        target = step["fn"]
        if isinstance(target, str):
            fn = getattr(student, target, None)
            if not callable(fn):
                raise StudentRaised(MissingFunction(f"{student.__name__}.py has no function {target}(): keep "
                                                    "the starter's names"), i)
        else:
            fn = build(target, saved, gate)
        args = build(step.get("args", []), saved, gate)
        kwargs = build(step.get("kwargs", {}), saved, gate)
        hooked = [spies.Hooks(build(h["on"], saved, gate), h.get("modules"), h.get("when", "forward"),
                              bool(h.get("values"))) for h in step.get("hooks", [])]
    except StudentRaised:
        raise
    except Exception as exc:  # noqa: BLE001  (a recipe that does not build is the check's bug)
        raise ProgramError(f"step {i}: {type(exc).__name__}: {exc}") from None
    record: dict[str, Any] = {}
    spied: dict[str, list] = {name: [] for name in step.get("spies", [])}
    if step.get("threads"):
        torch.set_num_threads(int(step["threads"]))
    before_ids = [(p, id(v)) for p, v in facts.walk(args)] if step.get("keep_args") else []
    before_ptrs = {p: v.data_ptr() for p, v in facts.walk(args) if isinstance(v, torch.Tensor)
                   and v.device.type != "meta"} if step.get("keep_args") else {}
    if step.get("env"):
        spies.set_env(step["env"])
    env_before = dict(os.environ)
    try:
        with contextlib.ExitStack() as stack:
            if step.get("hide_cuda"):
                stack.enter_context(spies.hidden_cuda())
            for name, events in spied.items():
                stack.enter_context(spies.spy(name, events))
            if step.get("watch"):
                stack.enter_context(spies.watch(student, step["watch"], record.setdefault("watched", [])))
            if step.get("no_grad"):
                stack.enter_context(torch.no_grad())
            try:
                out = fn(*args, **kwargs)
            except BaseException as exc:
                raise StudentRaised(exc, i) from exc
    finally:
        for h in hooked:
            h.close()
    record["env_changed"] = spies.env_changes(env_before)
    record["hooks"] = [h.events for h in hooked]
    record["spies"] = spied
    if step.get("keep_args"):
        now = dict(facts.walk(args))
        record["args_after"] = facts.plain(args, saved)
        record["replaced"] = [list(p) for p, was in before_ids if p in now and id(now[p]) != was]
        record["storage_moved"] = [list(p) for p, ptr in before_ptrs.items()  # the same tensor, new memory
                                   if isinstance(now.get(p), torch.Tensor) and now[p].data_ptr() != ptr]
        arg_objects = {id(v): list(p) for p, v in facts.walk(args) if isinstance(v, torch.Tensor)}
        record["aliased"] = [[list(p), arg_objects[id(v)]] for p, v in facts.walk(out)
                             if isinstance(v, torch.Tensor) and id(v) in arg_objects]
    if step.get("save"):
        saved[step["save"]] = out
    return record


def _launch(student: ModuleType, step: dict, i: int) -> dict:
    """A `launch` step: the student's function on N torchrun ranks; a rank's crash or hang is the record's error."""
    try:
        folder = str(step["folder"])
        if not folder or folder.startswith(".") or os.sep in folder or (os.altsep and os.altsep in folder):
            raise ValueError(f"a launch folder is a plain name, not {folder!r}")
        build(step["cfg"])  # a cfg that does not build is the check's bug, not a crash of the student's rank
        args = (os.path.abspath(student.__file__), int(step["world_size"]), step["cfg"], os.path.abspath(folder))
        done = launcher.launch(*args, fn=str(step["fn"]), timeout=float(step.get("timeout", 60.0)),
                               gpus=bool(step.get("gpus")), nodes=int(step.get("nodes", 1)))
    except launcher.LaunchError as exc:
        return {"error": str(exc), "values": [], "saves": [r.saves for r in exc.ranks],
                "worker_seconds": [r.worker_seconds for r in exc.ranks], "seconds": 0.0}
    except Exception as exc:  # noqa: BLE001  (an uneven split over nodes, a folder name with a path: the check's bug)
        raise ProgramError(f"step {i}: {type(exc).__name__}: {exc}") from None
    return {"error": "", "values": done.values, "saves": [r.saves for r in done.ranks],
            "worker_seconds": [r.worker_seconds for r in done.ranks], "seconds": done.seconds}


class MissingFunction(Exception):
    """The student's module lacks a function the exercise names."""


def _backward(step: dict, saved: dict, i: int) -> None:
    try:
        out, weights = saved[step["name"]], build(step["weights"], saved)
    except Exception as exc:  # noqa: BLE001
        raise ProgramError(f"step {i}: {type(exc).__name__}: {exc}") from None
    try:
        (out * weights).sum().backward()
    except BaseException as exc:
        raise StudentRaised(exc, i) from exc


def _report(saved: dict, name: str, how: str) -> Any:
    if name not in saved:
        raise ProgramError(f"nothing was saved as {name!r}")
    value = saved[name]
    try:
        if how == "module":
            return facts.module_facts(value) if isinstance(value, torch.nn.Module) else facts.kind(value)
        if how == "module_shapes":
            return facts.module_facts(value, values=False) if isinstance(value, torch.nn.Module) else facts.kind(value)
        if how == "loader":
            return facts.loader_facts(value, saved)
        if how == "kind":
            return facts.kind(value)
        if how == "devices":
            return [[list(p), str(v.device)] for p, v in facts.walk(value) if isinstance(v, torch.Tensor)]
        if how == "batches":
            return facts.loader_facts(value, saved, batches=True)
        return facts.plain(value, saved)
    except BaseException as exc:  # the student's object broke while labkit described it
        raise StudentRaised(exc, -1) from exc
