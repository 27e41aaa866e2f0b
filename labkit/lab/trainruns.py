"""Programs that run a student's train() for the grader, and the judging of what it reports.

train(net, devices, batch_size, lr, epochs, train_set, test_set, warmup_steps) is exercise4's contract (and the
full run's, labkit.lab.experiment). Each epoch ends at a gate of a gated dataset, timed on the grader's clock: the
reported epoch times are judged against holds only the grader knows, and accuracy against labels the grader kept.
Nothing here computes a submission's answer.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from labkit.checks import expect, fail
from labkit.inputs import build
from labkit.recipe import Program, dataset, device, hook, module, on, ref

DELAY = 0.5  # seconds of GPU work queued at the end of one epoch: its reported time must show it
clock = time.perf_counter  # the grader's clock (the gates' records use the same one)
HELD = 340  # test images the trained network classifies for the grader, whose labels never leave the grader


def train_run(sub, n: int, batch: int, lr: float, epochs: int, warmup: int) -> dict:
    """Train resnet18(base_channels=8) on seeded data, then have it classify the test set and HELD images drawn
    from a secret seed (sub.rng), sent without labels: the grader computes the accuracies from the logits.

    Still forgeable: the network's forward is the student's code, so a hand-built classifier (the ten class
    templates matched under shifts, contrast and noise) plus a loop stepping an optimizer at lr_at's rates with
    falling losses would pass. That is more work than the training loop asked for, and nothing can be replayed:
    the images change with every check and every graded file.
    """
    s_train, s_test, s_held = (sub.rng.randrange(2**31) for _ in range(3))
    test, held = build(dataset("synthetic", n=n // 3, seed=s_test)), build(dataset("synthetic", n=HELD, seed=s_held))
    images = torch.cat([test.tensors[0], held.tensors[0]])  # the labels stay here
    prog = Program().call("resnet18", base_channels=8, save="net")
    prog.call("train", ref("net"), [device("cpu")], batch, lr, epochs, dataset("synthetic", n=n, seed=s_train),
              dataset("synthetic", n=n // 3, seed=s_test), warmup_steps=warmup, spies=["optimizer_steps"],
              threads=1, save="result")  # one thread: two OpenMP threads on a loaded two-core machine run 10x slower
    prog.call(ref("net", "eval")).call(ref("net"), images, no_grad=True, save="logits")
    got = sub.run(prog.report("result").report("logits"))
    right = correct(got["values"]["logits"], torch.cat([test.tensors[1], held.tensors[1]]))
    return {"result": got["values"]["result"], "lrs": got["steps"][1]["spies"]["optimizer_steps"],
            "test_acc": right[:len(test)].mean().item(), "held_acc": right[len(test):].mean().item()}


def correct(logits: object, labels: torch.Tensor) -> torch.Tensor:
    """1.0 where the network's logits pick the label the grader kept, else 0.0."""
    expect(isinstance(logits, torch.Tensor) and list(logits.shape) == [len(labels), 10],
           f"the trained network should map {len(labels)} images to logits of shape [{len(labels)}, 10], got "
           f"{list(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    return (logits.argmax(1) == labels).float()


def devices_seen(step: dict) -> list[str]:
    """The devices of the network's input in every call that a pre-forward hook on it saw during a step."""
    return sorted({str(ins[0][1]) for _n, ins, _o, _v in step["hooks"][0] if ins and isinstance(ins[0], list)})


def timing_run(sub, n: int, batch: int, holds: list[float], where: str, busy: list[float] | None = None) -> dict:
    """train() on the grader's tiny network while epoch e waits `holds[e]` s at the gate of a gated dataset (at its
    last sample), on the grader's clock; `busy`: seconds of device work queued on a side stream after gate e."""
    seed = sub.rng.randrange(2**31)
    gated = dataset("gated", base=dataset("synthetic", n=n, seed=seed),
                    **({"busy": {"device": where, "seconds": busy}} if busy else {}))
    prog = Program().let("train_set", gated).let("net", module([["Flatten"], ["Linear", 784, 10]], seed=seed))
    prog.call("train", ref("net"), [device(where)], batch, 0.05, len(holds), ref("train_set"),
              dataset("synthetic", n=batch, seed=seed + 1), warmup_steps=0, threads=1, save="result",
              hooks=[hook(ref("net"), modules=[""], when="pre")])
    start = clock()
    got = sub.run(prog.report("result"), gate=lambda k: holds[k] if k < len(holds) else 0.0)
    return {"result": got["values"]["result"], "gates": got["gates"], "start": start, "end": clock(),
            "used": devices_seen(got["steps"][2])}


def scaling_run(sub, devices: list[str], batch: int, lr: float, warmup: int, seeds: list[int], held: object,
                n: int, epochs: int, noise: float, **resnet: int) -> dict:
    """resnet18() trained on `devices`: the median seconds of its epochs after the first, between the gates its
    gated train_set reaches at each epoch's last sample (the grader's clock; no set-up, no first epoch's kernel
    loading), the devices its forward ran on (DataParallel's replicas keep the hook) and its accuracy on `held`.
    The gates sit in labkit's dataset object: calling one by hand to shorten an epoch costs more than the one line
    of DataParallel."""
    gated = dataset("gated", base=dataset("synthetic", n=n, seed=seeds[0], noise=noise))
    prog = Program().let("train_set", gated).let("test_set", dataset("synthetic", n=n // 32, seed=seeds[1]))
    prog.seed(seeds[2]).call("resnet18", 10, save="net", **resnet)  # both runs start from the same weights
    prog.call("train", ref("net"), [device(d) for d in devices], batch, lr, epochs, ref("train_set"),
              ref("test_set"), warmup_steps=warmup, hooks=[hook(ref("net"), modules=[""], when="pre")])
    prog.call(ref("net", "to"), device(devices[0])).call(ref("net", "eval"))
    for i, chunk in enumerate(held.tensors[0].split(1024)):
        prog.call(ref("net"), on(chunk, devices[0]), no_grad=True, save=f"logits{i}").report(f"logits{i}")
    got = sub.run(prog, gate=lambda k: 0.0)
    gates = got["gates"]
    expect(len(gates) == epochs, f"train() read every sample of train_set {len(gates)} times for epochs={epochs}; "
                                 "each epoch should iterate once over a DataLoader of train_set")
    right = torch.cat([correct(got["values"][f"logits{i}"], labels)
                       for i, labels in enumerate(held.tensors[1].split(1024))])
    return {"epoch": statistics.median([gates[e][0] - gates[e - 1][1] for e in range(1, epochs)]),
            "acc": right.mean().item(), "used": devices_seen(got["steps"][4])}


def number_list(value: object, what: str, length: int | None = None) -> list[float]:
    """A list of finite numbers (of `length` entries), or a failure that says what came instead."""
    expect(isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    and math.isfinite(v) for v in value),
           f"{what} should be a list of finite floats, got {str(value)[:120]}")
    expect(length is None or len(value) == length, f"{what} should have {length} entries, got {len(value)}")
    return [float(v) for v in value]


def result_dict(got: object) -> dict:
    expect(isinstance(got, dict) and {"test_acc", "epoch_seconds", "losses"} <= set(got),
           f"train() should return a dict with test_acc, epoch_seconds and losses, got {str(got)[:120]}")
    return got


def judge_epoch_times(got: dict, holds: list[float], slow: int | None) -> None:
    """Each reported epoch time holds its gate's wait and fits between its neighbours' gates (the grader's clock).

    The holds differ per epoch and per check and nobody but the grader knows them before they happen: only a clock
    around each epoch passes. (The busy seconds sit in labkit's dataset object: digging them out costs more than
    the one line, torch.cuda.synchronize, that makes them show honestly.)"""
    epochs, gates, start, end = len(holds), got["gates"], got["start"], got["end"]
    times = number_list(result_dict(got["result"])["epoch_seconds"], "epoch_seconds", epochs)
    expect(len(gates) == epochs, f"train() read every sample of train_set {len(gates)} times for epochs={epochs}; "
                                 "each epoch should iterate once over a DataLoader of train_set")
    held = [released - arrived for arrived, released in gates]
    if epochs > 1 and len(set(times)) == 1:
        fail(f"every epoch reported the same time ({times[0]:.3g} s), but the check made the epochs last differently "
             f"(it held them {', '.join(f'{h:.2f} s' for h in held)} while they read their data): measure each "
             "epoch with the clock (time.perf_counter() before and after its loop)")
    expect(sum(times) <= (end - start) * 1.05 + 0.02,
           f"the epoch times add up to {sum(times):.2f} s but the whole train() call took {end - start:.2f} s: report "
           "each epoch's own duration (not made-up numbers, not the time since the start)")
    for e, (t, low) in enumerate(zip(times, held, strict=True)):
        high = (gates[e + 1][0] if e + 1 < epochs else end) - (gates[e - 1][1] if e else start)
        expect(t >= low - 0.005,
               f"epoch {e + 1} took at least {low:.2f} s (the check held its last batch that long, timed by the "
               f"check's clock) but train() reported {t:.2f} s: time the whole epoch, data loading included")
        expect(t <= 1.05 * high + 0.02,
               f"epoch {e + 1} took at most {high:.2f} s (between the neighbouring epochs' last batches, timed by "
               f"the check) but train() reported {t:.2f} s: report each epoch's own duration, not the time since "
               "the start")
    if slow is None:
        return
    extra = [t - h for t, h in zip(times, held, strict=True)]  # each epoch's own work, its hold taken out
    others = statistics.median([x for e, x in enumerate(extra) if e != slow])  # shrugs off a slow first epoch
    if extra[slow] - others < 0.6 * DELAY:
        late = slow + 1 < epochs and extra[slow + 1] - others >= 0.5 * DELAY
        fail(f"epoch {slow + 1} ended with {DELAY:.1f} s of GPU work still queued (the check added it) but train() "
             f"reported {times[slow]:.2f} s" + (f" and billed it to epoch {slow + 2}" if late else "") +
             ": CUDA kernels run asynchronously; call torch.cuda.synchronize(device) before reading the clock")
