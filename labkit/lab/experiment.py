"""`labkit run exercise4 --full`: the course's real experiment, ResNet-18 on Fashion-MNIST on one GPU and on two.

The course notes' figures: test accuracy 0.92 at 14.0 s/epoch on one GPU (batch
256, lr 0.1); 0.72 at 9.3 s/epoch on two (batch 512, lr 0.2, no warm-up). The
third run adds the gradual warm-up that closes that gap (Goyal et al., 2017).
Every run starts from the same fresh network with d2l's init_weights applied, as
the notes' train() does (the notes' second run re-used the trained network).
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter  # bound at import, before any student code runs beside it
from types import ModuleType
from typing import Any

from labkit.files import import_path
from labkit.lab.data import DataError, data_root, fashion_mnist, has_fashion_mnist, raw_folder, subset

EPOCHS = 10
WARMUP_SHARE = 5  # warm up over the first fifth of the epochs: Goyal et al. used 5 of 90, a short run needs more
PLOT = "exercise4-full.png"
RESULTS = "exercise4-full.json"
TABLE, TABLE_CSV = "exercise4-full.md", "exercise4-full.csv"  # the handout: this run beside the notes
COURSE = {"1 GPU": (0.92, 14.0), "2 GPUs": (0.72, 9.3)}  # what the notes printed: test accuracy, seconds per epoch


class ExperimentError(Exception):
    """The full run cannot go ahead here; the message says why and what to do."""


class NeedsGPU(ExperimentError):
    """No CUDA device: the full run would take hours on a CPU."""


@dataclass
class Plan:
    """One training run of the comparison."""

    label: str
    devices: list[str]
    batch_size: int
    lr: float
    warmup_steps: int = 0
    note: str = ""  # e.g. that two "devices" are one because the machine has only one


@dataclass
class Run:
    """A finished run: its plan and what train() reported."""

    plan: Plan
    test_acc: float
    epoch_seconds: list[float]
    epoch_acc: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    wall: float = 0.0  # seconds around the whole train() call, synchronised: what the reported times add up to
    used: list[str] = field(default_factory=list)  # the devices the network's forward actually ran on

    @property
    def seconds_per_epoch(self) -> float:
        return statistics.mean(self.epoch_seconds) if self.epoch_seconds else float("nan")


def load_module(path: str | Path, name: str = "exercise4") -> ModuleType:
    """Import a student's (or the reference) exercise4.py: on the student's own machine, as their own code."""
    if not Path(path).suffix == ".py":
        raise ExperimentError(f"cannot import {path}")
    return import_path(path, name)


def accuracy(net: Any, dataset: Any, device: Any, batch: int = 1024) -> float:
    """Share of a TensorDataset that `net` classifies right, BatchNorm in evaluation mode."""
    import torch

    X, y = dataset.tensors
    right = 0
    with torch.no_grad():
        net.to(device).eval()
        for images, labels in zip(X.split(batch), y.split(batch), strict=True):
            right += (net(images.to(device)).argmax(1).cpu() == labels).sum().item()
    return right / max(len(y), 1)


def timed_run(module: ModuleType, plan: Plan, epochs: int, train_set: Any, test_set: Any, seed: int = 0) -> dict:
    """One run of `plan` with the module's resnet18 and train(): its answer, wall time, own accuracy, devices used."""
    import torch

    devices = [torch.device(d) for d in plan.devices]
    torch.manual_seed(seed)  # every run starts from the same weights: the runs differ only in their plan
    net, used = module.resnet18(10), set()
    if callable(getattr(module, "init_weights", None)):
        net.apply(module.init_weights)  # d2l's N(0, 0.01^2) weights, as the notes' train() does
    net.register_forward_pre_hook(lambda _m, args: used.add(str(args[0].device)))  # DataParallel's replicas too
    cuda = [d for d in devices if d.type == "cuda"]
    for d in cuda:
        torch.cuda.synchronize(d)
    start = perf_counter()
    got = module.train(net, devices, plan.batch_size, plan.lr, epochs, train_set, test_set,
                       warmup_steps=plan.warmup_steps)
    for d in cuda:
        torch.cuda.synchronize(d)  # kernels still queued belong to this run
    return {"reported": got, "wall": perf_counter() - start, "acc": accuracy(net, test_set, devices[0]),
            "used": sorted(used)}


def plans(gpus: int, n_train: int, epochs: int = EPOCHS) -> list[Plan]:
    """The course's three runs on the devices this machine has (CPU stands in only when forced)."""
    devices = [f"cuda:{i}" for i in range(gpus)] or ["cpu"]
    two = devices[:2]
    note = ""
    if len(two) < 2:  # the batch and lr of the two-device runs still show the accuracy effect, not the speed-up
        note = f"only {devices[0]} here: batch 512 runs on one device, so no speed-up is expected"
    warmup = max(1, epochs // WARMUP_SHARE) * -(-n_train // 512)  # steps of batch 512 in those epochs
    return [Plan("1 GPU", devices[:1], 256, 0.1),
            Plan("2 GPUs", two, 512, 0.2, 0, note),
            Plan("2 GPUs + warm-up", two, 512, 0.2, warmup, note)]


def run_full(module: ModuleType, data_dir: str | Path | None = None, force: bool = False, out_dir: str | Path = ".",
             *, epochs: int = EPOCHS, n_train: int | None = None, n_test: int | None = None,
             echo: Callable[[str], None] = print) -> list[Run]:
    """Train `module`'s resnet18 with its train() as the course did; print, plot and save the comparison."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus == 0 and not force:
        raise NeedsGPU("no CUDA device here: the full run trains ResNet-18 on Fashion-MNIST for 10 epochs, three "
                       "times, about 12 minutes per epoch on a CPU (6 hours). Run it on a GPU machine, or pass "
                       "--force to run it here anyway; `labkit check exercise4` grades your code on a CPU in seconds")
    root = data_root(data_dir)
    if not has_fashion_mnist(root):
        raise DataError(f"Fashion-MNIST is not in {raw_folder(root)}: run `labkit data fetch"
                        f"{' --data-dir ' + str(data_dir) if data_dir else ''}` first (or set LABKIT_DATA)")
    train_set = subset(fashion_mnist(root, train=True), n_train, seed=0)
    test_set = subset(fashion_mnist(root, train=False), n_test, seed=1)
    echo(f"Fashion-MNIST from {raw_folder(root)}: {len(train_set)} training and {len(test_set)} test images; "
         f"{gpus} GPU{'s' if gpus != 1 else ''}")
    if not callable(getattr(module, "init_weights", None)):
        echo("note: your exercise4.py has no init_weights: the runs start from PyTorch's default initialisation, "
             "not from d2l's (normal, std 0.01) as in the notes")
    runs = []
    for plan in plans(gpus, len(train_set), epochs):
        echo(f"{plan.label}: batch {plan.batch_size}, lr {plan.lr}, warm-up {plan.warmup_steps} steps on "
             f"{plan.devices}" + (f" ({plan.note})" if plan.note else ""))
        try:
            timed = timed_run(module, plan, epochs, train_set, test_set)
        except NotImplementedError as exc:
            raise ExperimentError(f"{exc} is not implemented yet: finish it first (`labkit check exercise4`)") from None
        got = timed["reported"]
        run = Run(plan, float(got["test_acc"]), [float(s) for s in got["epoch_seconds"]],
                  [float(a) for a in got.get("epoch_acc", [])], [float(x) for x in got.get("losses", [])],
                  timed["wall"], timed["used"])
        runs.append(run)
        course = COURSE.get(plan.label)
        echo(f"  test acc: {run.test_acc:.2f}, {run.seconds_per_epoch:.1f} sec/epoch on {plan.devices}"
             + (f"   (course notes: {course[0]:.2f} at {course[1]:.1f} s/epoch)" if course else ""))
        if abs(sum(run.epoch_seconds) - run.wall) > 0.5 * run.wall or abs(timed["acc"] - run.test_acc) > 0.05:
            echo(f"  note: the whole call took {run.wall:.1f} s and the network scores {timed['acc']:.2f} on the "
                 "test set: check how train() measures its times and its accuracy")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_text(json.dumps([asdict(r.plan) | {"test_acc": r.test_acc, "epoch_seconds": r.epoch_seconds,
                                                             "epoch_acc": r.epoch_acc, "wall": r.wall,
                                                             "used": r.used} for r in runs], indent=2))
    plot_comparison(runs, out / PLOT)
    (out / TABLE).write_text(table_markdown(runs, len(train_set)), encoding="utf-8")
    (out / TABLE_CSV).write_text(table_csv(runs), encoding="utf-8")
    echo(f"speed-up of the 2-device run over the 1-device run: {speedup(runs)}; plot: {out / PLOT}; "
         f"numbers: {out / RESULTS}; table beside the notes' figures: {out / TABLE} and {out / TABLE_CSV}")
    return runs


def speedup(runs: list[Run]) -> str:
    """The 2-device run's speed-up over the 1-device run, as the table and the summary line say it."""
    one, two = runs[0].seconds_per_epoch, runs[1].seconds_per_epoch
    speed = f"{one / two:.2f}x" if two > 0 else "not measurable"
    return speed + (" (one device only)" if runs[1].plan.note else "")


COLUMNS = ["run", "devices", "batch", "lr", "warm-up steps", "epochs", "test acc (last epoch)", "best epoch acc",
           "s/epoch", "notes: test acc", "notes: s/epoch"]


def table_rows(runs: list[Run]) -> list[list[str]]:
    """One row per run: its plan, its figures, and the notes' figures for the same configuration ("-": none)."""
    rows = []
    for r in runs:
        acc, sec = COURSE.get(r.plan.label, (None, None))
        best = f"{max(r.epoch_acc):.2f}" if r.epoch_acc else "-"
        rows.append([r.plan.label, " ".join(r.plan.devices), str(r.plan.batch_size), f"{r.plan.lr:g}",
                     str(r.plan.warmup_steps), str(len(r.epoch_seconds)), f"{r.test_acc:.2f}", best,
                     f"{r.seconds_per_epoch:.1f}", "-" if acc is None else f"{acc:.2f}",
                     "-" if sec is None else f"{sec:.1f}"])
    return rows


def table_markdown(runs: list[Run], n_train: int) -> str:
    """The handout: a Markdown table of this run beside the course notes, and what the comparison can and cannot say."""
    lines = ["# ResNet-18 on Fashion-MNIST: this run beside the course notes", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(runs)]
    notes = [r.plan.note for r in runs if r.plan.note][:1]
    lines += ["", f"Speed-up of the 2-device run over the 1-device run: {speedup(runs)} here; "
              f"{COURSE['1 GPU'][1] / COURSE['2 GPUs'][1]:.2f}x in the notes (14.0 s against 9.3 s).", "",
              f"Every run here starts from the same freshly built network with d2l's init_weights (normal, std 0.01) "
              f"and trains on {n_train} images; the accuracy is measured after every epoch. The notes' 0.72 is not a "
              "clean batch-size effect: their second train() reused the network the first one had trained, "
              "net.apply(init_weights) redrew only the Linear and Conv2d weights (the biases and BatchNorm's "
              "parameters and running statistics stayed trained), and only the last epoch's accuracy was printed."]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def table_csv(runs: list[Run]) -> str:
    """The same table as CSV, for a spreadsheet."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(table_rows(runs))
    return buf.getvalue()


def plot_comparison(runs: list[Run] | list[dict], path: str | Path) -> Path:
    """A PNG: training loss per epoch, test accuracy per epoch and seconds per epoch, one line per run."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a GPU server or in CI
    import matplotlib.pyplot as plt

    rows = [_as_row(r) for r in runs]
    fig, (loss_ax, acc_ax, sec_ax) = plt.subplots(1, 3, figsize=(15, 4.2))
    for row in rows:
        epochs = len(row["epoch_seconds"])
        x = range(1, epochs + 1)
        losses = row["losses"]
        if losses and epochs:
            per = len(losses) / epochs  # batch 512 takes half the steps of batch 256: plot against epochs
            loss_ax.plot([(i + 1) / per for i in range(len(losses))], losses, label=row["label"], linewidth=0.8)
        if row["epoch_acc"]:
            acc_ax.plot(range(1, len(row["epoch_acc"]) + 1), row["epoch_acc"], marker="o", label=row["label"])
        else:  # a train() without epoch_acc: only its final accuracy is known
            acc_ax.plot([epochs], [row["test_acc"]], marker="s", linestyle="none", label=row["label"])
        mean = statistics.mean(row["epoch_seconds"]) if epochs else float("nan")
        sec_ax.plot(x, row["epoch_seconds"], marker="o", label=f"{row['label']} (mean {mean:.1f} s)")
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.set(title="test accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    sec_ax.set(title="seconds per epoch", xlabel="epoch", ylabel="seconds")
    sec_ax.set_ylim(bottom=0)
    for ax in (loss_ax, acc_ax, sec_ax):
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    fig.suptitle("ResNet-18 on one device and on two")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _as_row(run: Run | dict) -> dict:
    """A run as plain data, whether a Run or a dict like the JSON file's entries."""
    if isinstance(run, Run):
        return {"label": run.plan.label, "test_acc": run.test_acc, "epoch_seconds": run.epoch_seconds,
                "epoch_acc": run.epoch_acc, "losses": run.losses}
    return {"label": str(run.get("label", "run")), "test_acc": float(run.get("test_acc", float("nan"))),
            "epoch_seconds": list(run.get("epoch_seconds", [])), "epoch_acc": list(run.get("epoch_acc", [])),
            "losses": list(run.get("losses", []))}
