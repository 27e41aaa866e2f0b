"""Recipes: what a check needs done in the child, as plain data, and the shared builder of its inputs.

A check writes a `Program` (call these student functions with these inputs, record this, report that) and
runs it with `sub.run(program)`. The child's generic interpreter (labkit.sandbox.program) carries it out: no
checks file, no reference computation and no check name ever reaches the student's process. `build` makes an
input from its recipe; the grader calls the same function to hold its own copy of what the student received.

    prog = Program()
    prog.call("place_model", module([["Linear", 3, 4]], seed=7), device("cpu"), save="net")
    got = sub.run(prog.report("net", "module"))
    got["net"]["params"]          # [[name, tensor], ...] of the student's returned model
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LAYERS = {  # the torch.nn classes a `module` recipe may name: inputs, never answers
    "Linear", "Conv2d", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "ReLU", "Tanh", "Sigmoid", "Flatten",
    "Dropout", "MaxPool2d", "AdaptiveAvgPool2d", "Identity", "Softmax", "GELU",
    "Conv3d", "BatchNorm3d", "Unflatten",
    "MSELoss",  # a loss function to hand a student: module([["MSELoss"]], sequential=False)
    "Sequential",  # ["Sequential", [layer], [layer], ...]: a nested block (see `module`)
}
DATASETS = {"indexed", "tensors", "synthetic", "gated"}  # see labkit.inputs.build_dataset
SPIES = {"optimizer_steps", "savefig", "torch_save"}  # see labkit.sandbox.spies
REPORTS = {"value", "kind", "module", "module_shapes", "loader", "batches", "devices"}


# --- input recipes (arguments of a call) -----------------------------------------------------

def ref(name: str, *path: str | int, **missing: Any) -> dict:
    """A value saved earlier in the program (`save=`), or an attribute/item path inside it: ref("net", "stages", 0).

    ref(..., missing=None): that value instead where the path does not exist (an attribute, key or index the
    student's object lacks), so a check can ask whether it is there rather than fail as labkit's error.
    """
    if set(missing) - {"missing"}:
        raise TypeError(f"ref() got unexpected keywords {sorted(set(missing) - {'missing'})}")
    return {"$": "ref", "name": name, "path": list(path), **missing}


def device(name: str) -> dict:
    return {"$": "device", "name": name}


def on(value: Any, where: str) -> dict:
    """A tensor (or a tree of them) moved to device `where` in the child: tensors always travel on the CPU."""
    return {"$": "to", "value": value, "device": where}


def tup(*items: Any) -> dict:
    """A real tuple of recipes (a bare tuple of plain data travels as itself)."""
    return {"$": "tuple", "items": list(items)}


def python() -> dict:
    """The child's own interpreter (sys.executable), for commands a student function runs."""
    return {"$": "python"}


def module(layers: list[list], *, seed: int | None = None, state: dict | None = None, dtype: str | None = None,
           buffers: list[list] = (), wrap: str | None = None, train: bool = True, sequential: bool = True) -> dict:
    """An nn.Sequential of `layers` ([[class name, *args], ...]), initialised from `seed` then `state`.

    `buffers`: [[submodule path ('' for the top), name, tensor, persistent], ...]; `wrap`: "DataParallel".
    A layer ["Sequential", [class name, *args], ...] is a nested block (its submodules are "3.0", "3.1", ...).
    `sequential=False`: the one layer itself, not inside an nn.Sequential (state keys "weight", not "0.weight").
    """
    return {"$": "module", "layers": [list(x) for x in layers], "seed": seed, "state": state or {}, "dtype": dtype,
            "buffers": [list(b) for b in buffers], "wrap": wrap, "train": train, "sequential": sequential}


def dataset(kind: str, **params: Any) -> dict:
    """A dataset: `indexed` (length, width: row i starts with i), `tensors` (tensors=[...]: a TensorDataset),
    `synthetic` (n, seed, noise...: labkit.inputs.synthetic), `gated` (base=a dataset recipe: after every
    len(base) samples read, one epoch, it waits at the program's gate; see Program and sub.run(gate=);
    busy={"device": d, "seconds": [s0, s1, ...]}: after the n-th gate it also queues about s_n seconds of
    matrix products on device d, on a side stream: work that only a clock which waits for the device sees)."""
    if kind not in DATASETS:
        raise ValueError(f"unknown dataset recipe {kind!r}")
    return {"$": "dataset", "kind": kind, "params": params}


def gate() -> dict:
    """A callable that, on each call, waits until the grader releases it: only the grader knows for how long."""
    return {"$": "gate"}


MODELS = {"small_resnet"}  # labkit's own model zoo (labkit.zoo.ZOO): inputs, never answers


def zoo(name: str, **params: Any) -> dict:
    """A model from labkit's zoo: small_resnet(base=16, in_channels=1, num_classes=10, seed=0), a ResNet-18
    layout for 28x28 images whose weights depend only on `seed`."""
    if name not in MODELS:
        raise ValueError(f"unknown zoo model {name!r}")
    return {"$": "zoo", "name": name, "params": params}


def factory(recipe: Any) -> dict:
    """A zero-argument callable that builds `recipe` afresh at each call (a cfg's model constructor)."""
    return {"$": "factory", "recipe": recipe}


def gpu_work(where: str, ms: list[float]) -> dict:
    """A callable whose n-th call queues about ms[n % len(ms)] milliseconds of GPU work on CUDA device `where`
    (calibrated when built) and returns at once, as kernels do: only a clock read after a synchronize sees it."""
    return {"$": "gpu_work", "device": where, "ms": [float(x) for x in ms]}


def cuda_initialized() -> dict:
    """torch.cuda.is_initialized() where it is built: `let` it after a call to learn whether the call started CUDA."""
    return {"$": "cuda_initialized"}


# --- the program -------------------------------------------------------------------------------

@dataclass
class Program:
    """Steps the child runs in order, and the values it reports back (by the names steps saved them under)."""

    steps: list[dict] = field(default_factory=list)
    reports: list[list] = field(default_factory=list)

    def call(self, fn: str | dict, *args: Any, save: str | None = None, hide_cuda: bool = False,
             env: dict[str, str | None] | None = None, hooks: list[dict] = (), spies: list[str] = (),
             keep_args: bool = False, no_grad: bool = False, threads: int | None = None, watch: list[str] = (),
             **kwargs: Any) -> Program:
        """Call the student's function `fn` (or a saved value: ref("net")) with recipes as arguments.

        hide_cuda: CUDA looks absent during the call. env: variables set (None: removed) before it; the step
        then reports which variables the call itself changed. hooks: see `hook`. spies: names from SPIES.
        keep_args: the step's record gets "args_after" (the arguments after the call), "replaced" (paths
        whose objects were swapped), "storage_moved" (tensors whose memory changed) and "aliased" ([result
        path, argument path] of tensors returned as the very objects passed in). no_grad: run under
        torch.no_grad(). threads: torch.set_num_threads first. Every step's record also has "env_changed",
        "hooks" (events per hook) and "spies" (events per spy). watch: names of the student's own module-level
        functions; the record's "watched" lists those called during the call, in order (a function of the
        file calling its neighbours through the module's globals).
        """
        for name in spies:
            if name not in SPIES:
                raise ValueError(f"unknown spy {name!r}")
        self.steps.append({"op": "call", "fn": fn, "args": list(args), "kwargs": kwargs, "save": save,
                           "hide_cuda": hide_cuda, "env": env, "hooks": list(hooks), "spies": list(spies),
                           "keep_args": keep_args, "no_grad": no_grad, "threads": threads, "watch": list(watch)})
        return self

    def let(self, name: str, recipe: Any) -> Program:
        """Build `recipe` in the child and save it as `name` (so a report can say a loader reads *that* dataset)."""
        self.steps.append({"op": "let", "name": name, "recipe": recipe})
        return self

    def backward(self, name: str, weights: Any) -> Program:
        """(saved[name] * weights).sum().backward(): gradients the grader can compare with its own."""
        self.steps.append({"op": "backward", "name": name, "weights": weights})
        return self

    def seed(self, value: int) -> Program:
        """torch.manual_seed(value) in the child: two programs that build a model start from the same weights."""
        self.steps.append({"op": "seed", "seed": int(value)})
        return self

    def launch(self, fn: str, world_size: int, cfg: Any, *, folder: str, nodes: int = 1, gpus: bool = False,
               timeout: float = 60.0) -> Program:
        """Start the student's `fn(rank, world_size, cfg)` with torchrun on `world_size` fresh processes (over
        `nodes` agents meeting at a c10d rendezvous on 127.0.0.1), each building `cfg` from its recipe (a dict
        of recipes and plain data; `factory` for a model constructor). `folder`: a new folder in the check's
        own (a plain name: the ranks' working directory; the grader finds it at sub.workdir / folder). gpus:
        CUDA stays visible (else a CPU launch); timeout: seconds for the whole launch. The step's record:
        "error" (the rank that crashed or hung, where, and its output; "" when every rank returned), "values"
        (what each rank returned, plain), "saves" (torch.save calls per rank), "worker_seconds" (per rank, the
        launcher's clock from the rank's start-up until every rank had ended), "seconds" (the whole launch).
        All of it comes from the student's processes: judge it against what the grader recomputes.
        """
        self.steps.append({"op": "launch", "fn": fn, "world_size": world_size, "cfg": cfg, "folder": folder,
                           "nodes": nodes, "gpus": gpus, "timeout": timeout})
        return self

    def pretend_cuda_initialized(self) -> Program:
        """Make torch believe CUDA has started, as after a first tensor on 'cuda' (no GPU needed)."""
        self.steps.append({"op": "cuda_initialized"})
        return self

    def report(self, name: str, how: str = "value", key: str | None = None) -> Program:
        """Send back saved[name] as `how`: value (tensors arrive on the CPU), kind (its class: type, name, mro,
        and whether it is torch's own class), module (with values), module_shapes,
        loader, batches (a loader's settings and one epoch), devices ([path, device] of every tensor in a tree)."""
        if how not in REPORTS:
            raise ValueError(f"unknown report {how!r}")
        self.reports.append([name, how, key or name])  # `key`: where it lands in the answer (default: name)
        return self

    def to_data(self) -> dict:
        return {"steps": self.steps, "reports": self.reports}


def hook(on: dict, *, modules: list[str] | None = None, when: str = "forward", values: bool = False) -> dict:
    """Forward hooks on the submodules of a built or saved module: each call's input/output shapes and devices.

    modules: submodule paths (None: every module); when: "forward" (after) or "pre" (before); values: also
    the tensors themselves (first input and output).
    """
    return {"on": on, "modules": modules, "when": when, "values": values}
