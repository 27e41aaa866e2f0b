"""What the child records during one call: hooks on submodules, calls to named functions, the environment.

Each recorder is a context manager whose `.events` the program step reports. All of them are labkit's own
code, parameterised by the check's recipe; the references they patch are taken when the worker imports this
module, before any student code runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.optim.optimizer as _optimizer

from labkit.sandbox.facts import MAX_SHAPES, figure_facts

_register_step_hook = _optimizer.register_optimizer_step_pre_hook
_torch_save = torch.save
_CUDA = torch.cuda
_is_available, _device_count = torch.cuda.is_available, torch.cuda.device_count


def _shape(t: Any) -> Any:
    if isinstance(t, torch.Tensor):
        return [list(t.shape), str(t.device)]
    return type(t).__name__


class Hooks:
    """Forward (or pre-forward) hooks on a module's named submodules; each event is one submodule call."""

    def __init__(self, net: Any, modules: list[str] | None, when: str, values: bool):
        self.events: list[list] = []
        self.handles = []
        chosen = [(n, m) for n, m in net.named_modules() if modules is None or n in modules]
        for name, m in chosen:
            if when == "pre":
                self.handles.append(m.register_forward_pre_hook(self._pre(name, values)))
            else:
                self.handles.append(m.register_forward_hook(self._post(name, values)))

    def _pre(self, name: str, values: bool) -> Any:
        def hook(_m: Any, args: tuple) -> None:
            if len(self.events) < MAX_SHAPES:
                first = args[0] if args else None
                self.events.append([name, [_shape(a) for a in args], None,
                                    first.detach().clone() if values and isinstance(first, torch.Tensor) else None])
        return hook

    def _post(self, name: str, values: bool) -> Any:
        def hook(_m: Any, args: tuple, out: Any) -> None:
            if len(self.events) < MAX_SHAPES:
                first = args[0] if args else None
                keep = values and isinstance(first, torch.Tensor)
                self.events.append([name, [_shape(a) for a in args], _shape(out),
                                    [first.detach().clone(), out.detach() if isinstance(out, torch.Tensor) else None]
                                    if keep else None])
        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@contextlib.contextmanager
def spy(name: str, events: list) -> Iterator[None]:
    """Record calls to one of labkit.recipe.SPIES for the duration of the block."""
    if name == "optimizer_steps":  # every step of every optimizer: the learning rate of each group
        handle = _register_step_hook(lambda opt, a, k: events.append([float(g["lr"]) for g in opt.param_groups])
                                     if len(events) < 5000 else None)
        try:
            yield
        finally:
            handle.remove()
    elif name == "torch_save":
        def saving(obj: Any, f: Any, *args: Any, **kwargs: Any) -> Any:
            events.append({"type": type(obj).__name__, "path": str(f) if isinstance(f, (str, os.PathLike)) else None})
            return _torch_save(obj, f, *args, **kwargs)
        torch.save = saving
        try:
            yield
        finally:
            torch.save = _torch_save
    elif name == "savefig":  # the figure's data as it is saved
        import matplotlib

        matplotlib.use("Agg")  # no screen in the grader
        from matplotlib.figure import Figure

        real = Figure.savefig

        def saving_fig(fig: Any, *args: Any, **kwargs: Any) -> Any:
            events.append(figure_facts(fig))
            return real(fig, *args, **kwargs)
        Figure.savefig = saving_fig
        try:
            yield
        finally:
            Figure.savefig = real
    else:
        raise ValueError(f"unknown spy {name!r}")


@contextlib.contextmanager
def watch(student: Any, names: list[str], events: list) -> Iterator[None]:
    """Record the names of the student's module-level functions `names` as they are called during the block
    (through the module's globals: one function of the file calling another). Read and written in the
    module's own dict, so no student code runs to install or remove the wrappers."""
    space = vars(student)
    real = {n: space[n] for n in names if isinstance(n, str) and callable(space.get(n))}

    def wrapped(name: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if len(events) < MAX_SHAPES:
                events.append(name)
            return fn(*args, **kwargs)
        return call

    space.update({n: wrapped(n, fn) for n, fn in real.items()})
    try:
        yield
    finally:
        space.update(real)


@contextlib.contextmanager
def hidden_cuda() -> Iterator[None]:
    """CUDA looks absent, as on a machine without a GPU (the worker never initialised it)."""
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # read when CUDA initialises
    _CUDA.is_available, _CUDA.device_count = (lambda: False), (lambda: 0)
    try:
        yield
    finally:
        _CUDA.is_available, _CUDA.device_count = _is_available, _device_count
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        if saved is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = saved


def set_env(changes: dict[str, str | None]) -> None:
    for key, value in changes.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def env_changes(before: dict[str, str]) -> dict[str, list]:
    """The variables that differ from `before`: name -> [before, after] (None where absent)."""
    after = dict(os.environ)
    return {k: [before.get(k), after.get(k)] for k in sorted(before.keys() | after.keys())
            if before.get(k) != after.get(k)}
