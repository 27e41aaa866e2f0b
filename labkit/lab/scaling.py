"""`labkit bench exercise6`: how the student's DDP worker scales from 1 to N processes, against the ideal line."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labkit.recipe import dataset, factory, zoo

PROBLEM = {"n": 1024, "global_batch": 256, "base": 16}  # exercise6's timing problem: small ResNet, fixed global batch
LR = 0.05


def resnet_cfg(world_size: int, *, n: int, global_batch: int, base: int, epochs: int, seed: int,
               checkpoint: str) -> dict:
    """exercise6's timing problem as a cfg recipe (built in each rank by labkit.inputs): labkit's small ResNet on
    synthetic 28x28 images, the global batch split evenly over the ranks."""
    return {"model": factory(zoo("small_resnet", base=base, seed=seed)),
            "dataset": dataset("synthetic", n=n, seed=seed), "epochs": epochs,
            "batch_size": global_batch // world_size, "lr": LR, "seed": seed, "checkpoint": checkpoint}


BUILDERS = {"small_resnet": resnet_cfg}  # what exercise.toml's scaling_builder may name


@dataclass
class Row:
    """One worker count: seconds per epoch (median of timed epochs, slowest rank), speedup and efficiency."""

    workers: int
    seconds_per_epoch: float
    speedup: float
    efficiency: float
    epochs_timed: int


def order(workers: list[int], rounds: int) -> list[int]:
    """Launch order: forward then backward each round (ABBA...), so a drift in machine speed hits every count."""
    plan: list[int] = []
    for i in range(rounds):
        plan += workers if i % 2 == 0 else workers[::-1]
    return plan


def slowest_epochs(values: list, epochs: int) -> list[float]:
    """Seconds of each epoch after the first (a warm-up), an epoch lasting as long as its slowest rank."""
    per_rank = [v.get("epoch_seconds") if isinstance(v, dict) else None for v in values]
    if not all(isinstance(s, list) and len(s) == epochs for s in per_rank):
        raise ValueError(f"worker should return epoch_seconds with {epochs} numbers per rank, got {per_rank!r}")
    return [max(float(s[e]) for s in per_rank) for e in range(1, epochs)]


def table(times: dict[int, list[float]]) -> list[Row]:
    """Rows against the smallest worker count: speedup = its seconds / these; efficiency = speedup / scale-up."""
    base = min(times)
    base_seconds = statistics.median(times[base])
    rows = []
    for workers in sorted(times):
        seconds = statistics.median(times[workers])
        speedup = base_seconds / seconds
        rows.append(Row(workers, seconds, speedup, speedup / (workers / base), len(times[workers])))
    return rows


def run_bench(student: Path, builder: str, workers: list[int], workdir: Path, *, launch: Callable[..., Any],
              rounds: int = 2, epochs: int = 3, seed: int = 0, echo: Callable[[str], None] = print) -> list[Row]:
    """Launch `student`'s worker at each count (interleaved over `rounds`) and return the scaling table.

    Each launch's cfg is the recipe BUILDERS[builder] makes (exercise.toml's scaling_builder); `launch` is
    labkit.sandbox.launcher.launch, handed in by the caller (the lab does not reach into the sandbox).
    """
    if builder not in BUILDERS:
        raise ValueError(f"no scaling problem named {builder!r} (known: {', '.join(sorted(BUILDERS))})")
    if epochs < 2:
        raise ValueError("epochs must be at least 2: the first one is a warm-up and is not timed")
    bad = [w for w in workers if w < 1 or PROBLEM["global_batch"] % w]
    if bad:
        raise ValueError(f"worker counts must divide the global batch of {PROBLEM['global_batch']}: {bad}")
    times: dict[int, list[float]] = {w: [] for w in workers}
    for i, w in enumerate(order(workers, rounds)):
        out = workdir / f"launch{i}-{w}w"
        cfg = BUILDERS[builder](w, **PROBLEM, epochs=epochs, seed=seed, checkpoint=str(out / "checkpoint.pt"))
        done = launch(student, w, cfg, out, timeout=120 + 60 * epochs)
        times[w] += slowest_epochs(done.values, epochs)
        echo(f"  {w} worker(s): {', '.join(f'{s:.2f}' for s in times[w][-(epochs - 1):])} s per epoch")
    return table(times)


def format_table(rows: list[Row]) -> str:
    """The scaling table as text."""
    lines = [f"{'workers':>7}  {'s/epoch':>8}  {'speedup':>7}  {'ideal':>5}  {'efficiency':>10}"]
    base = rows[0].workers
    for r in rows:
        lines.append(f"{r.workers:>7}  {r.seconds_per_epoch:>8.2f}  {r.speedup:>6.2f}x  {r.workers / base:>4.0f}x  "
                     f"{r.efficiency:>10.0%}")
    return "\n".join(lines)


def plot_scaling(rows: list[Row], path: Path, title: str = "exercise6: DDP scaling") -> Path:
    """A PNG: measured speedup per worker count against the ideal (linear) line."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a GPU server or in CI
    import matplotlib.pyplot as plt

    base = rows[0].workers
    xs = [r.workers for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(xs, [w / base for w in xs], linestyle="--", color="grey", label="ideal")
    ax.plot(xs, [r.speedup for r in rows], marker="o", label="measured")
    for r in rows:
        ax.annotate(f"{r.efficiency:.0%}", (r.workers, r.speedup), textcoords="offset points", xytext=(6, -12))
    ax.set(title=title, xlabel="workers (processes)", ylabel=f"speedup over {base} worker(s)", xticks=xs)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save(rows: list[Row], out: Path) -> tuple[Path, Path]:
    """exercise6-scaling.json and exercise6-scaling.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / "exercise6-scaling.json"
    data.write_text(json.dumps([asdict(r) for r in rows], indent=2), encoding="utf-8")
    return data, plot_scaling(rows, out / "exercise6-scaling.png")
