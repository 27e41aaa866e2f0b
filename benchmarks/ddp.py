"""Section 4: DDP on CPU (exercise6's small ResNet, 2 one-thread workers vs 1) and exercise5's by-hand step."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, Row, verdict

SPEEDUP = 1.6  # two workers over one, idle machine


def ddp_rows(quick: bool = False) -> list[Row]:
    """labkit.lab.scaling.run_bench on the reference solution, with the other processes' load over the window."""
    from labkit.lab.loadmeter import LoadMeter
    from labkit.lab.scaling import run_bench
    from labkit.sandbox.launcher import launch

    with tempfile.TemporaryDirectory(prefix="labkit-bench-ddp-") as tmp:
        with LoadMeter(trees=[os.getpid()]) as meter:
            rows = run_bench(ROOT / "solutions/exercise6.py", "small_resnet", [1, 2], Path(tmp), launch=launch,
                             rounds=2, epochs=3, echo=lambda line: None)
    load = meter.result
    one, two = rows[0], rows[1]
    busy = load.busy()
    measured = f"{two.seconds_per_epoch:.2f} s/epoch"
    note = f"other load {load.other:.0%} of {load.cores} cores" + (" (busy: verdict n/a)" if busy else "")
    ok = None if busy else two.speedup >= SPEEDUP
    return [Row("ddp", "DDP 2 workers vs 1 (ex6 ResNet)", measured, f"1 worker {one.seconds_per_epoch:.2f} s/epoch",
                f"{two.speedup:.2f}x", f">={SPEEDUP}x idle", verdict(ok),
                {"one_s": one.seconds_per_epoch, "two_s": two.seconds_per_epoch, "speedup": two.speedup,
                 "load_other": load.other, "load_own": load.own, "cores": load.cores, "note": note})]


def dp_step_rows(quick: bool = False) -> list[Row]:
    """exercise5's data_parallel_step on [cpu, cpu] against one plain SGD step on the whole batch."""
    import torch
    from torch import nn

    from benchmarks.timing import compare
    from labkit.files import import_path

    sol = import_path(str(ROOT / "solutions/exercise5.py"), "bench_exercise5")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    X, y = torch.randn(512, 64), torch.randint(0, 10, (512,))
    loss_fn, lr = nn.CrossEntropyLoss(), 0.01

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        loss = loss_fn(model(X), y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        loss.item()

    def by_hand() -> None:
        sol.data_parallel_step(model, X, y, loss_fn, lr, [torch.device("cpu")] * 2)

    cmp = compare({"plain": plain, "by_hand": by_hand}, rounds=9 if quick else 21, warmup=2, baseline="plain")
    a, b = cmp.timings["plain"].median, cmp.timings["by_hand"].median
    return [Row("ddp", "ex5 by-hand DP step [cpu,cpu]", f"{b * 1e3:.2f} ms", f"plain step {a * 1e3:.2f} ms",
                f"{b / a:.2f}x slower", "(report)", "n/a", {"plain_s": a, "by_hand_s": b, "batch": 512})]


def run(quick: bool = False) -> list[Row]:
    """The DDP scaling row and the by-hand step row."""
    return ddp_rows(quick) + dp_step_rows(quick)
