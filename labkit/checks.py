"""The check registry and the assertion helpers exercises' checks.py files use.

A *check* runs in the grader's process and judges data; a *probe* runs in the
sandboxed child next to the student's module and returns plain data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class CheckFailed(Exception):
    """The submission gave a wrong answer; the message teaches what was wrong."""


class Skip(Exception):
    """The check cannot run here (e.g. it needs GPUs); it counts neither way."""


class Inconclusive(Exception):
    """A measurement could not be trusted (a busy machine); it counts neither way."""


class StudentError(Exception):
    """The student's code raised (in the child); the exception arrives as plain data."""

    def __init__(self, info: dict):
        self.type_name = str(info.get("type", "Exception"))
        self.mro = [str(n) for n in info.get("mro", [])]
        self.message = str(info.get("message", ""))
        self.where = [str(w) for w in info.get("where", [])]
        super().__init__(f"{self.type_name}: {self.message}" if self.message else self.type_name)

    def is_a(self, name: str) -> bool:
        """True when the student's exception is `name` or a subclass of it (judged by the names it reported)."""
        return name in self.mro


@dataclass
class CheckSpec:
    """One check of an exercise, as its decorator declared it."""

    name: str  # the function name, stable across runs (used in reports and overrides)
    title: str  # one line a student reads
    points: int  # what a pass earns
    fn: Callable[..., None]  # fn(sub) runs in the parent and raises to fail
    needs_gpus: int = 0  # skipped with "needs N GPUs" where fewer CUDA devices exist
    hint: str | None = None  # shown under a failure
    timeout: float | None = None  # seconds per call, overriding exercise.toml's limit
    hidden: bool = False  # name and message withheld from students (instructors' checks)
    title_zh: str | None = None  # the title in Simplified Chinese (shown with --lang zh_CN)
    hint_zh: str | None = None  # the hint in Simplified Chinese


def check(points: int, title: str, *, needs_gpus: int = 0, hint: str | None = None,
          timeout: float | None = None, hidden: bool = False, title_zh: str | None = None,
          hint_zh: str | None = None) -> Callable:
    """Declare a trusted check: `@check(points=2, title="...")` over `def name(sub): ...`."""

    def mark(fn: Callable) -> Callable:
        fn.__labkit_check__ = CheckSpec(fn.__name__, title, points, fn, needs_gpus, hint, timeout, hidden, title_zh,
                                        hint_zh)
        return fn

    return mark


def probe(fn: Callable) -> Callable:
    """Declare trusted code that runs in the child as `fn(module, *args)` and returns plain data."""
    fn.__labkit_probe__ = True
    return fn


def collect(namespace: dict[str, Any]) -> tuple[list[CheckSpec], dict[str, Callable]]:
    """The checks (in definition order) and probes defined in a checks module's namespace."""
    checks = [v.__labkit_check__ for v in namespace.values() if hasattr(v, "__labkit_check__")]
    probes = {k: v for k, v in namespace.items() if getattr(v, "__labkit_probe__", False)}
    return checks, probes


# --- assertion helpers (parent side) ---------------------------------------------------

def expect(condition: object, message: str) -> None:
    """Fail the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def fail(message: str) -> None:
    raise CheckFailed(message)


def skip(reason: str) -> None:
    raise Skip(reason)


def inconclusive(reason: str) -> None:
    raise Inconclusive(reason)


def is_tensor(value: object) -> bool:
    import torch

    return type(value) is torch.Tensor


def expect_tensor(value: object, what: str) -> None:
    """Fail unless `value` is a plain torch.Tensor (subclasses and look-alikes are refused)."""
    if not is_tensor(value):
        fail(f"{what} should be a torch.Tensor, got {type_name(value)}")


def expect_shape(value: object, shape: tuple[int, ...], what: str) -> None:
    expect_tensor(value, what)
    expect(tuple(value.shape) == tuple(shape), f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}")


def expect_close(got: object, want: object, what: str, *, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Tensors or floats equal within tolerance, compared by the grader's own torch."""
    import torch

    if isinstance(want, (int, float)) and not isinstance(want, bool):
        expect(isinstance(got, (int, float)) and not isinstance(got, bool) and math.isfinite(got),
               f"{what} should be a finite number, got {type_name(got)} {short(got)}")
        expect(abs(got - want) <= atol + rtol * abs(want), f"{what}: expected {want:.6g}, got {got:.6g}")
        return
    expect_shape(got, tuple(want.shape), what)
    diff = (got.double() - want.double()).abs().max().item() if got.numel() else 0.0
    expect(torch.allclose(got.double(), want.double(), rtol=rtol, atol=atol),
           f"{what} differs from the expected values (largest difference {diff:.3g})")


def expect_equal(got: object, want: object, what: str) -> None:
    """Plain-data equality checked on the grader's side, with types compared strictly."""
    expect(type(got) is type(want) and got == want, f"{what}: expected {short(want)}, got {short(got)}")


def type_name(value: object) -> str:
    return getattr(value, "type_name", None) or type(value).__name__


def short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
