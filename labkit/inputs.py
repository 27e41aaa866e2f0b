"""The objects recipes describe (labkit.recipe), built the same way in the grader and in the child.

Only inputs live here: models to hand a student function, datasets, devices. Nothing here computes an answer.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from time import perf_counter  # bound before any student code runs beside it
from typing import Any

import torch
from torch import nn
from torch.utils.data import TensorDataset

from labkit.recipe import LAYERS
from labkit.zoo import ZOO

CLASSES = 10
SIDE = 28
PATTERN_SEED = 20170608  # the classes are the task's constants, like Fashion-MNIST's; samples vary with `seed`
WARM_SECONDS = 0.05  # of products run before injected GPU work is timed: clocks ramp up from idle
SAMPLES, TRIM = 10, 2  # timings of it, and how many of the fastest and of the slowest are dropped


def build(spec: Any, saved: dict | None = None, gate_fn: Any = None) -> Any:
    """The object a recipe describes; plain data comes back as it is."""
    if isinstance(spec, list):
        return [build(x, saved, gate_fn) for x in spec]
    if type(spec) is tuple:
        return tuple(build(x, saved, gate_fn) for x in spec)
    if isinstance(spec, dict) and not isinstance(spec.get("$"), str):
        return {k: build(v, saved, gate_fn) for k, v in spec.items()}
    if not isinstance(spec, dict):
        return spec
    kind = spec["$"]
    if kind == "ref":
        value = (saved or {})[spec["name"]]
        try:
            for step in spec["path"]:
                value = value[step] if isinstance(step, int) else getattr(value, step)
        except (AttributeError, LookupError, TypeError):
            if "missing" not in spec:  # ref(..., missing=x): the check asked whether the path exists
                raise
            return spec["missing"]
        return value
    if kind == "device":
        return torch.device(spec["name"])
    if kind == "to":
        return _moved(build(spec["value"], saved, gate_fn), spec["device"])
    if kind == "tuple":
        return tuple(build(x, saved, gate_fn) for x in spec["items"])
    if kind == "python":
        return sys.executable
    if kind == "cuda_initialized":  # a fact, not an input: read where and when it is built (never starts CUDA)
        return torch.cuda.is_initialized()
    if kind == "module":
        return build_module(spec)
    if kind == "dataset":
        params = dict(spec["params"])
        if spec["kind"] == "gated":  # its base is a recipe too; its gate is the child's link to the grader
            params["base"], params["gate"] = build(params["base"], saved, gate_fn), gate_fn
        return build_dataset(spec["kind"], **params)
    if kind == "gate":
        if gate_fn is None:
            raise ValueError("a gate needs the child's link to the grader")
        return gate_fn
    if kind == "gpu_work":
        return _GpuWork(spec["device"], spec["ms"])
    if kind == "zoo":
        return ZOO[spec["name"]](**spec["params"])
    if kind == "factory":  # a constructor: each call builds the recipe afresh
        return functools.partial(build, spec["recipe"], saved, gate_fn)
    raise ValueError(f"unknown recipe {kind!r}")


def _moved(value: Any, where: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(where)
    if isinstance(value, (list, tuple)) and not hasattr(type(value), "_fields"):
        return type(value)(_moved(v, where) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, where) for k, v in value.items()}
    return value


def build_module(spec: dict) -> Any:
    """An nn.Sequential from a `module` recipe; the same seed and state give the same weights on both sides."""
    _allowed(spec["layers"])
    with torch.random.fork_rng(devices=[]):  # the constructors draw initial weights from the global generator
        if spec.get("seed") is not None:
            torch.manual_seed(spec["seed"])
        layers = [_layer(*x) for x in spec["layers"]]
    if spec.get("sequential", True):
        net = nn.Sequential(*layers)
    elif len(layers) == 1:
        net = layers[0]
    else:
        raise ValueError("a module recipe with sequential=False has exactly one layer")
    if spec.get("dtype"):
        net = net.to(getattr(torch, spec["dtype"]))
    for path, name, tensor, persistent in spec.get("buffers", []):
        owner = net.get_submodule(path) if path else net
        owner.register_buffer(name, tensor.clone(), persistent=persistent)
    if spec.get("state"):
        with torch.no_grad():
            for name, value in spec["state"].items():
                owner, _, leaf = name.rpartition(".")
                getattr(net.get_submodule(owner) if owner else net, leaf).copy_(value)
    net.train(spec.get("train", True))
    if spec.get("wrap") == "DataParallel":
        return nn.DataParallel(net, spec.get("device_ids"))  # on CPU: device_ids == [], it calls the module itself
    if spec.get("wrap"):
        raise ValueError(f"unknown wrapper {spec['wrap']!r}")
    return net


def _allowed(layers: list) -> None:
    for name, *args in layers:
        if name not in LAYERS:
            raise ValueError(f"a module recipe may not use {name!r}")
        if name == "Sequential":
            _allowed(args)


def _layer(name: str, *args: Any) -> Any:
    """One layer of a `module` recipe; ["Sequential", [layer], ...] is a nested block of them, built in order."""
    if name == "Sequential":
        return nn.Sequential(*[_layer(*x) for x in args])
    return getattr(nn, name)(*args)


def build_dataset(kind: str, **params: Any) -> Any:
    """A dataset from a recipe (see labkit.recipe.dataset)."""
    if kind == "indexed":  # row i is [i, 0, 0, ...]: a batch names the samples it holds
        length, width = int(params["length"]), int(params.get("width", 5))
        rows = torch.zeros(length, width)
        rows[:, 0] = torch.arange(length, dtype=torch.float32)
        return _Rows(rows)
    if kind == "tensors":
        return TensorDataset(*params["tensors"])
    if kind == "synthetic":
        return synthetic(int(params["n"]), int(params["seed"]), **{k: v for k, v in params.items()
                                                                 if k not in ("n", "seed")})
    if kind == "gated":
        if params.get("gate") is None:
            raise ValueError("a gated dataset needs the child's link to the grader")
        return _Gated(params["base"], params["gate"], _Busy(**params["busy"]) if params.get("busy") else None)
    raise ValueError(f"unknown dataset recipe {kind!r}")


class _Rows:
    """A map-style dataset of the rows of one tensor (not a TensorDataset: each sample is one tensor)."""

    def __init__(self, rows: Any):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Any:
        return self.rows[i]


def prototypes(pattern_seed: int = PATTERN_SEED) -> torch.Tensor:
    """The ten class patterns (10, 28, 28) in [0, 1]: smooth random blobs, fixed for the task."""
    g = torch.Generator().manual_seed(pattern_seed)
    coarse = torch.rand(CLASSES, 1, 7, 7, generator=g)
    # Upsampling a 7x7 grid gives strokes a few pixels wide: a 3x3 convolution can see them.
    smooth = torch.nn.functional.interpolate(coarse, size=(SIDE, SIDE), mode="bicubic", align_corners=False)
    smooth = smooth.squeeze(1)
    lo = smooth.amin(dim=(1, 2), keepdim=True)
    hi = smooth.amax(dim=(1, 2), keepdim=True)
    return ((smooth - lo) / (hi - lo)).pow(2.0)  # squaring leaves a few bright shapes on a dark ground


def synthetic(n: int, seed: int = 0, *, noise: float = 0.25, shift: int = 2,
              pattern_seed: int = PATTERN_SEED) -> TensorDataset:
    """`n` deterministic samples (N, 1, 28, 28) float in [0, 1] with int64 labels in 0..9, balanced by class."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % CLASSES
    labels = labels[torch.randperm(n, generator=g)]
    images = prototypes(pattern_seed)[labels]
    # Shifts make the task need convolutions (position varies); contrast and noise keep it below 100 %.
    dy = torch.randint(-shift, shift + 1, (n,), generator=g)
    dx = torch.randint(-shift, shift + 1, (n,), generator=g)
    rows = (torch.arange(SIDE).view(1, SIDE) - dy.view(n, 1)) % SIDE
    cols = (torch.arange(SIDE).view(1, SIDE) - dx.view(n, 1)) % SIDE
    images = images[torch.arange(n).view(n, 1, 1), rows.view(n, SIDE, 1), cols.view(n, 1, SIDE)]
    contrast = torch.empty(n, 1, 1).uniform_(0.6, 1.2, generator=g)
    images = images * contrast + noise * torch.randn(n, SIDE, SIDE, generator=g)
    return TensorDataset(images.clamp_(0.0, 1.0).unsqueeze(1), labels.to(torch.int64))


class _Gated:
    """A dataset that waits at the grader's gate once every len(base) samples read (once per epoch): the
    grader alone decides how long each wait lasts, so only a real clock can report the epochs' times."""

    def __init__(self, base: Any, gate: Any, busy: Any = None):
        self.base, self.gate, self.reads, self.busy = base, gate, 0, busy

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> Any:
        item = self.base[i]
        self.reads += 1
        if self.reads % len(self.base) == 0:
            self.gate()
            if self.busy is not None:
                self.busy.queue(self.reads // len(self.base) - 1)
        return item


class _Busy:
    """About `seconds[n]` of matrix products queued on `device` after the n-th gate, on a side stream: the
    training loop's copies and kernels do not wait for them, torch.cuda.synchronize(device) does. Calibrated
    when built (before any student function runs); on the CPU the products run for `seconds[n]` (a busy wait)."""

    def __init__(self, device: str, seconds: list[float]):
        self.device, self.seconds = torch.device(device), [float(s) for s in seconds]
        cuda = self.device.type == "cuda"
        self.stream = torch.cuda.Stream(self.device) if cuda else None
        self._resize(256)
        self.per = self._size() if cuda else 0.0  # on the CPU queue() waits on the clock: nothing to calibrate

    def _resize(self, side: int) -> None:
        self.a = torch.full((side, side), 1.0 / side, device=self.device)  # a @ a == a: no overflow, no RNG
        self.out = torch.empty_like(self.a)

    def _size(self) -> float:
        """Seconds per product, at the first size (doubling from 256) whose few hundred launches fill the longest
        wait: CUDA's launch queue is finite, and a full one would block the caller like a synchronize."""
        while True:
            per = self._calibrated()
            if per * 300 >= max(self.seconds, default=0.0) or self.a.shape[0] >= 8192:
                return per
            self._resize(2 * self.a.shape[0])

    def _calibrated(self) -> float:
        """A trimmed mean of SAMPLES timings after a warm-up (as torch's own get_cycles_per_ms): the first launches
        load the kernel and run at idle clocks, and a slow reading would queue too little work."""
        spent = 0.0
        for _ in range(200):
            if spent >= WARM_SECONDS:
                break
            spent += 3 * self._sample(3)
        runs = sorted(self._sample(3) for _ in range(SAMPLES))
        return sum(runs[TRIM:-TRIM]) / (SAMPLES - 2 * TRIM)

    def _sample(self, count: int) -> float:
        """Seconds per product over `count` products, on the GPU's own clock (CUDA events, not the host's)."""
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(self.stream):
            self._products(1)  # keeps the device busy while the timed ones are launched: no launch gaps inside
            start.record()
            self._products(count)
            end.record()
        end.synchronize()
        return max(start.elapsed_time(end) / 1000 / count, 1e-9)

    def _products(self, count: int) -> None:
        with torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext():
            for _ in range(count):
                torch.mm(self.a, self.a, out=self.out)

    def queue(self, n: int) -> None:
        if n >= len(self.seconds) or self.seconds[n] <= 0:
            return
        if self.device.type == "cuda":
            self._products(max(1, round(self.seconds[n] / self.per)))
            return
        end = perf_counter() + self.seconds[n]  # on the CPU the products run at once: no calibration to trust
        while perf_counter() < end:
            self._products(1)


class _GpuWork:
    """The `gpu_work` recipe: call n queues about ms[n % len(ms)] milliseconds of products (see _Busy) and returns."""

    def __init__(self, device: str, ms: list[float]):
        self.busy, self.calls = _Busy(device, [float(m) / 1000 for m in ms]), 0
        self.busy.stream = None  # on the current stream, as the caller's own kernels would be

    def __call__(self) -> None:
        self.busy.queue(self.calls % max(1, len(self.busy.seconds)))
        self.calls += 1
