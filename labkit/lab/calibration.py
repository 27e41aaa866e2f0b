"""What the hardware can show: labkit's own model's speed-up under nn.DataParallel, timed like a submission's.

A timing check that asks a submission for a speed-up on N GPUs runs this program in the same child and the
same run: when labkit's own model, with no student code, cannot reach the bar by a margin, a shortfall is the
hardware's (`inconclusive`, with the figures), not the student's. The program is recipes only (labkit.recipe);
the times are the grader's clock at gates, read after the device has drained.
"""

from __future__ import annotations

import statistics

import torch

from labkit.inputs import build
from labkit.recipe import Program, dataset, device, gate, module, on, ref

STAGES = (1, 2, 4, 8)  # ResNet-18's stage widths, in multiples of the base width


def stand_in(c: int, in_channels: int = 1, classes: int = 10) -> list[list]:
    """A module recipe's layers: ResNet-18's 3x3 convolutions, widths and strides at base width c, no shortcuts."""
    layers, prev = [["Conv2d", in_channels, c, 3, 1, 1], ["BatchNorm2d", c], ["ReLU"]], c
    for mult in STAGES:
        for stride in (1 if mult == 1 else 2, 1):  # two blocks of two convolutions per stage
            o = mult * c
            layers += [["Conv2d", prev, o, 3, stride, 1], ["BatchNorm2d", o], ["ReLU"],
                       ["Conv2d", o, o, 3, 1, 1], ["BatchNorm2d", o], ["ReLU"]]
            prev = o
    return layers + [["AdaptiveAvgPool2d", 1], ["Flatten"], ["Linear", prev, classes]]


def data_parallel_program(devices: list[str], width: int, batch: int, steps: int, rounds: int, seed: int) -> Program:
    """Forward and backward passes of stand_in(width): `steps` batches of `batch` on devices[0], then steps / N
    batches of N * batch under nn.DataParallel over the N `devices` (the same samples), `rounds` times in turn;
    a gate before and after each, the last gradient read back (the devices drained) before the closing one."""
    n = len(devices)
    x = build(dataset("synthetic", n=n * batch, seed=seed)).tensors[0]
    w = torch.randn(n * batch, 10, generator=torch.Generator().manual_seed(seed))  # backward of (out * w).sum()
    wrap = n > 1 and devices[0].startswith("cuda")  # on the CPU DataParallel does nothing: the program still runs
    prog = Program()
    for name, size in (("one", batch), ("many", n * batch)):
        net = module(stand_in(width), seed=seed)
        if name == "many" and wrap:
            net.update(wrap="DataParallel", device_ids=[torch.device(d).index for d in devices])
        prog.let(name, net).call(ref(name, "to"), device(devices[0]), save=name)
        prog.let(f"{name}_x", on(x[:size], devices[0])).let(f"{name}_w", on(w[:size], devices[0]))
    for _ in range(rounds):
        for name, count in (("one", steps), ("many", max(1, steps // n))):
            prog.call(gate())
            for _ in range(count):
                prog.call(ref(name), ref(f"{name}_x"), save="out").backward("out", ref(f"{name}_w"))
            inner = ["module"] if name == "many" and wrap else []
            prog.call(ref(name, *inner, "0", "weight", "grad", "tolist")).call(gate())  # computed last, on devices[0]
    return prog


def data_parallel_speedup(gates: list[list[float]]) -> dict:
    """The program's seconds per round on one device and on N (medians, the first round a warm-up) and their ratio."""
    spans = [end[0] - start[1] for start, end in zip(gates[::2], gates[1::2], strict=False)]
    if len(spans) < 4 or len(spans) % 2:
        raise ValueError(f"the calibration program passed {len(gates)} gates, expected 4 or more, in pairs of two")
    one, many = statistics.median(spans[2::2]), statistics.median(spans[3::2])
    return {"one": one, "many": many, "speedup": one / max(many, 1e-9)}
