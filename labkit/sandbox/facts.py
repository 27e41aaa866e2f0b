"""What the child reports about objects a student function returned: modules, loaders, figures, as plain data.

Every fact here is the student's process describing itself, so it can be forged; checks earn points from
what the grader can recompute (parameters loaded into its own model, a step redone), and use these facts to
explain. Class identity is judged against torch's own classes, captured when the worker imported this
module, before any student code ran: a subclass or a look-alike named `SyncBatchNorm` is not torch's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

MAX_BATCHES = 200  # batches a `batches` report sends back
MAX_SHAPES = 2000  # hook events a step keeps


def _torch_classes() -> dict[str, type]:
    found, stack = {}, [nn.Module, DataLoader, torch.utils.data.Sampler]
    while stack:
        cls = stack.pop()
        if cls.__module__.startswith("torch"):
            found.setdefault(qualified(cls), cls)
        stack += type.__subclasses__(cls)
    return found


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_torch_class(value: Any) -> bool:
    """True when `value`'s class is torch's own class of that name (captured before the student ran)."""
    cls = type(value)
    return TORCH_CLASSES.get(qualified(cls)) is cls


TORCH_CLASSES = _torch_classes()


def kind(value: Any) -> dict:
    """A value's class as the grader judges it: its name, its ancestors, and whether it is torch's own."""
    cls = type(value)
    return {"type": qualified(cls), "name": cls.__name__, "torch": is_torch_class(value),
            "mro": [qualified(c) for c in cls.__mro__[:12]]}


def module_facts(net: nn.Module, values: bool = True) -> dict:
    """A module: its class, submodules, parameters and buffers (tensors, or shape/dtype/device when `values` is off)."""
    persistent = set(net.state_dict().keys())

    def tensor(t: torch.Tensor) -> Any:
        return t.detach() if values else {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
                                          "device": str(t.device)}

    params = list(net.named_parameters())
    return {**kind(net), "report": "module", "training": bool(net.training),
            "modules": [[name, qualified(type(m)), is_torch_class(m)] for name, m in net.named_modules()],
            "params": [[n, tensor(p)] for n, p in params],
            "requires_grad": [n for n, p in params if p.requires_grad],
            "grads": [[n, tensor(p.grad)] for n, p in params if p.grad is not None],
            "devices": sorted({str(t.device) for t in [*net.parameters(), *net.buffers()]}),
            "numel": sum(p.numel() for _, p in params),
            "buffers": [[n, tensor(b), n in persistent] for n, b in net.named_buffers()]}


def loader_facts(loader: Any, saved: dict[str, Any], batches: bool = False) -> dict:
    """A DataLoader's settings, which saved value is its dataset, and (when asked) the batches of one epoch."""
    facts = {**kind(loader), "report": "loader"}
    if not isinstance(loader, DataLoader):
        return facts
    facts.update({"batch_size": loader.batch_size, "pin_memory": bool(loader.pin_memory),
                  "drop_last": bool(loader.drop_last), "num_workers": int(loader.num_workers),
                  "sampler": qualified(type(loader.sampler)),
                  "dataset_is": [k for k, v in saved.items() if v is loader.dataset]})
    if batches:
        facts["batches"] = epoch(loader)
    return facts


def epoch(loader: Any) -> list:
    """The batches one pass over `loader` yields, with whether each is in pinned memory."""
    out = []
    for batch in loader:
        if len(out) >= MAX_BATCHES:
            break
        out.append([batch, _pinned(batch)])
    return out


def _pinned(batch: Any) -> bool | None:
    tensors = [t for t in (batch if isinstance(batch, (list, tuple)) else [batch]) if isinstance(t, torch.Tensor)]
    if not tensors or not torch.cuda.is_available():
        return None
    return all(t.is_pinned() for t in tensors)


def plain(value: Any, saved: dict[str, Any], depth: int = 0) -> Any:
    """`value` ready for the wire: modules and loaders become their facts, containers are walked."""
    if depth > 20:
        return value
    if isinstance(value, nn.Module):
        return module_facts(value)
    if isinstance(value, DataLoader):
        return loader_facts(value, saved)
    if type(value) is list:
        return [plain(v, saved, depth + 1) for v in value]
    if type(value) is tuple:
        return tuple(plain(v, saved, depth + 1) for v in value)
    if type(value) is dict:
        return {k: plain(v, saved, depth + 1) for k, v in value.items()}
    return value


def walk(value: Any, path: tuple = (), depth: int = 0):
    """(path, object) for every node of a tree of lists, tuples, namedtuples and dicts, the root first."""
    yield path, value
    if depth > 20:
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(tuple.__iter__(value) if isinstance(value, tuple) else list.__iter__(value)):
            yield from walk(v, (*path, i), depth + 1)
    elif type(value) is dict:
        for k, v in dict.items(value):
            yield from walk(v, (*path, k), depth + 1)


def figure_facts(fig: Any) -> dict:
    """The data of a matplotlib figure's visible lines and scatter collections, axis by axis."""
    def xy(points: Any) -> list:
        return [[float(a), float(b)] for a, b in list(points)[:1000]]

    return {"lines": [{"xy": xy(ln.get_xydata()), "marker": str(ln.get_marker()), "style": str(ln.get_linestyle())}
                      for ax in fig.axes for ln in ax.get_lines() if ln.get_visible()],
            "dots": [{"xy": xy(c.get_offsets())} for ax in fig.axes for c in ax.collections if c.get_visible()]}
