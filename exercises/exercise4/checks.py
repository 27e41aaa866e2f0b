"""Checks for exercise4: d2l's ResNet-18, the linear scaling rule with warm-up, training with honest epoch times."""

from __future__ import annotations

import math
import statistics
import time

import torch

from labkit.checks import StudentError, check, expect, fail, inconclusive
from labkit.i18n import _
from labkit.inputs import build
from labkit.lab.calibration import data_parallel_program, data_parallel_speedup
from labkit.lab.loadmeter import LoadMeter
from labkit.recipe import Program, dataset, device, hook, module, on, ref

STAGES = ((1, 28), (2, 14), (4, 7), (8, 4))  # (width multiple of base_channels, side) after each stage
DELAY = 0.5  # seconds of GPU work queued at the end of one epoch: its reported time must show it
HELD = 340  # test images the trained network classifies for the grader, whose labels never leave the grader
WIDTH = 128  # base_channels of the timed networks: a step at batch 256 then takes tens of ms on an A100/H100, well
# above DataParallel's replicate/scatter/gather and the loader's per-batch cost (at 64 it is a few ms)
BAR, CAL_BAR = 1.3, 1.5  # the speed-up asked for; the one labkit's own model must reach before a shortfall fails
clock = time.perf_counter  # the grader's clock (the gates' records use the same one)


def resnet_params(num_classes: int, in_channels: int, c: int, bias: int = 1) -> int:
    """Parameters of d2l's ResNet-18: convolutions with bias, BatchNorm, a 1x1 shortcut where the shape changes."""
    total, prev = in_channels * c * 9 + bias * c + 2 * c, c
    for mult, _side in STAGES:
        o = mult * c  # block 1: two 3x3 convs, two BatchNorms, maybe a 1x1 shortcut; block 2: the same at o -> o
        total += prev * o * 9 + o * o * 9 + (prev * o + bias * o if prev != o else 0) + 2 * bias * o + 4 * o
        total += 2 * (o * o * 9 + bias * o) + 4 * o
        prev = o
    return total + prev * num_classes + num_classes


def lr_at_reference(step: int, warmup_steps: int, peak_lr: float) -> float:
    return peak_lr * (step + 1) / warmup_steps if step < warmup_steps else peak_lr


# --- programs: what runs in the child, as recipes; every verdict is drawn in the grader ----

def architecture_run(sub, kwargs: dict) -> tuple[dict, list, object]:
    """resnet18(**kwargs)'s facts; the (C, H, W) of every 4-D module output of a forward pass of 2 images, in
    completion order, repeats collapsed; and the network's output shape (hooks on every module)."""
    facts = sub.run(Program().call("resnet18", save="net", **kwargs).report("net", "module_shapes"))["values"]["net"]
    if facts.get("report") != "module":
        return facts, [], None
    x, watch = torch.zeros(2, kwargs.get("in_channels", 1), 28, 28), [hook(ref("net"))]
    try:  # the meta device runs the forward pass on shapes alone: no memory, no arithmetic
        prog = Program().call("resnet18", save="net", **kwargs).call(ref("net", "to"), "meta", save="net")
        events = sub.run(prog.call(ref("net"), on(x, "meta"), hooks=watch))["steps"][-1]["hooks"][0]
    except StudentError:  # a forward that builds CPU tensors itself: a small CPU pass instead
        prog = Program().call("resnet18", save="net", **kwargs).call(ref("net", "eval"))
        events = sub.run(prog.call(ref("net"), x, no_grad=True, hooks=watch))["steps"][-1]["hooks"][0]
    seen: list[list[int]] = []
    for _name, _inputs, out, _values in events:
        if isinstance(out, list) and len(out[0]) == 4 and (not seen or seen[-1] != out[0][1:]):
            seen.append(out[0][1:])
    top = [out for name, _inputs, out, _values in events if name == ""]  # the network itself finishes last
    return facts, seen, (top[-1][0] if isinstance(top[-1], list) else top[-1]) if top else "nothing"


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


# --- judging helpers (parent) -----------------------------------------------------------

def judge_architecture(sub, kwargs: dict) -> None:
    """Judged from the child's description: its class, its parameters' count, the shapes hooks saw. Making these
    true is writing the network (a few lines); forging them means a module built to emit d2l's shapes with
    exactly d2l's parameter count, which is the same work (the count is the grader's own formula)."""
    c, classes, inputs = kwargs.get("base_channels", 64), kwargs.get("num_classes", 10), kwargs.get("in_channels", 1)
    call = "resnet18(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")"
    facts, shapes, out = architecture_run(sub, kwargs)
    expect(facts.get("report") == "module", f"{call} should return an nn.Module, got {facts.get('name')}")
    maxpool = any(kind == "torch.nn.modules.pooling.MaxPool2d" for _n, kind, _torch in facts["modules"])
    want = [[m * c, side, side] for m, side in STAGES]
    stages = [s for s in shapes if s[1] > 1]  # the global average pool's 1x1 output comes after the stages
    shown = ", ".join(f"{s[1]}x{s[2]}x{s[0]}" for s in stages) or "no 4-D outputs"
    expect(stages == want, f"{call}: the stages should output {', '.join(f'{s[1]}x{s[2]}x{s[0]}' for s in want)} "
                           f"(HxWxC), got {shown}" + ("; your max-pool halves 28x28 before the first stage: d2l's "
                                                     "variant for small images has none" if maxpool else
                                                     "; check the stem (3x3, stride 1, padding 1), the widths (c, 2c, "
                                                     "4c, 8c) and stride 2 in the first block of stages 2-4"))
    expect(out == [2, classes], f"{call} should give logits of shape [2, {classes}], got {out}")
    params, want_params = int(facts["numel"]), resnet_params(classes, inputs, c)
    expect(params != resnet_params(classes, inputs, c, bias=0),
           f"{call} has {params:,} parameters: your convolutions have no bias (torchvision's style); d2l's keep "
           f"the default bias=True, which gives {want_params:,}")
    expect(params == want_params, f"{call} has {params:,} parameters, expected {want_params:,}: two residual blocks "
                                  "per stage, each with two 3x3 convolutions and two BatchNorms, a 1x1 convolution "
                                  "(no BatchNorm) on the shortcut of the first block of stages 2-4, and one Linear "
                                  "layer at the end")


def judge_formula(sub, name: str, cases: list[tuple], reference, lazy: str) -> None:
    """The student's `name(*case)` equals `reference(*case)`; `lazy` explains the classic shortcut when it shows."""
    for case in cases:
        want, got, call = reference(*case), sub.call(name, *case), f"{name}{case}"
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), f"{call} should return a float")
        shortcut = case[-1] if name == "lr_at" else case[0]  # the peak, or the unscaled base learning rate
        expect(not (math.isclose(got, shortcut) and not math.isclose(want, shortcut)),
               f"{call} returned {got:.6g}, expected {want:.6g}: {lazy}")
        expect(math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), f"{call}: expected {want:.6g}, got {got:.6g}")


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


# --- checks ------------------------------------------------------------------------------

@check(points=3, title="resnet18() is d2l's: 11,175,818 parameters, its stage shapes",
       hint="3x3 stem (stride 1, padding 1) + BatchNorm + ReLU, no max-pool; four stages of two residual blocks "
            "(64, 128, 256, 512 channels, stride 2 from stage 2 with a 1x1 shortcut); avg pool, flatten, linear.",
       title_zh="resnet18() 与 d2l 的一致：11,175,818 个参数，以及各阶段的形状",
       hint_zh="3x3 的起始层（步幅 1，填充 1）+ BatchNorm + ReLU，没有最大汇聚层；四个阶段，"
               "每个阶段两个残差块（通道数 64、128、256、512，从第 2 阶段起步幅为 2，并使用 1x1 捷径连接）；平均汇聚、"
               "展平、全连接层。")
def resnet_shapes(sub):
    judge_architecture(sub, {})


@check(points=1, title="resnet18 follows num_classes, in_channels and base_channels",
       hint="Widths c, 2c, 4c, 8c from base_channels; the stem from in_channels; the head from num_classes.",
       title_zh="resnet18 遵循 num_classes、in_channels 和 base_channels",
       hint_zh="宽度 c、2c、4c、8c 来自 base_channels；起始层取决于 in_channels；分类头取决于 num_classes。")
def resnet_options(sub):
    judge_architecture(sub, {"num_classes": sub.rng.randint(2, 20), "in_channels": sub.rng.choice([1, 3]),
                             "base_channels": sub.rng.choice([4, 8, 16])})


@check(points=1, title="scaled_lr follows the linear scaling rule",
       hint="A batch k times larger takes a learning rate k times larger: base_lr * batch / base_batch.",
       title_zh="scaled_lr 遵循线性缩放规则",
       hint_zh="批量增大 k 倍，学习率也增大 k 倍：base_lr * batch / base_batch。")
def scaling_rule(sub):
    cases = [(0.1, 256, 512), (0.1, 256, 256), (0.4, 512, 128)]
    cases += [(round(sub.rng.uniform(0.01, 0.5), 4), sub.rng.choice([32, 64, 256]), sub.rng.choice([64, 512, 1024]))]
    judge_formula(sub, "scaled_lr", cases, lambda lr, base, batch: lr * batch / base,
                  _("the base learning rate came back unchanged; when the batch grows k times, multiply the learning "
                    "rate by k (the linear scaling rule of Goyal et al., 2017)"))


@check(points=2, title="lr_at warms up linearly, then holds the peak",
       hint="peak_lr * (step + 1) / warmup_steps while step < warmup_steps, then peak_lr; warmup_steps=0: peak_lr.",
       title_zh="lr_at 先线性预热，然后保持峰值",
       hint_zh="当 step < warmup_steps 时为 peak_lr * (step + 1) / warmup_steps，之后为 peak_lr；warmup_steps=0 时为 "
               "peak_lr。")
def warmup_schedule(sub):
    w, peak = sub.rng.randint(3, 40), round(sub.rng.uniform(0.05, 0.8), 4)
    cases = [(0, 5, 0.2), (4, 5, 0.2), (5, 5, 0.2), (0, 0, 0.1), (7, 0, 0.1), (2, 10, 1.0)]
    cases += [(s, w, peak) for s in (0, sub.rng.randrange(w), w - 1, w, w + sub.rng.randint(1, 100))]
    judge_formula(sub, "lr_at", cases, lr_at_reference,
                  _("the peak already, during warm-up; without warm-up a large batch's large learning rate hits the "
                    "untrained network at once: ramp up as peak_lr * (step + 1) / warmup_steps"))


@check(points=4, title="train() learns on a CPU, at lr_at(step) every step", timeout=60,
       hint="torch.optim.SGD, cross-entropy, DataLoader(shuffle=True); before each step set every param group's "
            "lr to lr_at(step, warmup_steps, lr); test accuracy with net.eval() under torch.no_grad().",
       title_zh="train() 在 CPU 上能学到东西，每一步都使用 lr_at(step)",
       hint_zh="torch.optim.SGD、交叉熵损失、DataLoader(shuffle=True)；在每一步之前把每个参数组的 lr 设为 lr_at(step, "
               "warmup_steps, lr)；在 torch.no_grad() 下用 net.eval() 测量测试精度。")
def train_learns(sub):
    n, batch, lr, epochs, warmup = 512, 32, 0.1, 5, sub.rng.randint(4, 12)
    got = train_run(sub, n, batch, lr, epochs, warmup)
    result, lrs = result_dict(got["result"]), got["lrs"]  # lrs: every optimizer step's, seen by labkit's spy
    expect(lrs, "train() never called optimizer.step() of a torch.optim optimizer: use torch.optim.SGD")
    want = [lr_at_reference(s, warmup, lr) for s in range(len(lrs))]
    for s, (groups, w) in enumerate(zip(lrs, want, strict=True)):
        peak = " (the peak, during warm-up)" if s < warmup and math.isclose(groups[0], lr) else ""
        expect(all(math.isclose(g, w, rel_tol=1e-6) for g in groups), f"step {s} ran at learning rate "
               f"{groups[0]:.6g}{peak}; lr_at({s}, {warmup}, {lr}) is {w:.6g}: set every param group's lr to "
               "lr_at(step, warmup_steps, lr) before each optimizer.step()")
    steps = epochs * -(-n // batch)
    expect(len(lrs) == steps, f"train() took {len(lrs)} optimizer steps, expected {steps}: one per batch of "
                              f"train_set ({n} samples, batch {batch}) in each of the {epochs} epochs")
    losses = number_list(result["losses"], "losses")
    expect(len(losses) == len(lrs), f"losses should hold one value per step ({len(lrs)}), got {len(losses)}")
    per = len(losses) // epochs
    first, last = statistics.mean(losses[:per]), statistics.mean(losses[-per:])
    expect(last < first, f"the mean loss of the last epoch ({last:.3f}) is not below the first's ({first:.3f})")
    acc, reported = got["held_acc"], result["test_acc"]
    expect(acc >= 0.5, f"after {epochs} epochs on {n} samples, resnet18(base_channels=8) classifies {acc:.0%} of "
                       f"{HELD} new test images (chance: 10 %); expected at least 50 %: update every parameter with "
                       "SGD each step")
    expect(isinstance(reported, (int, float)) and not isinstance(reported, bool) and 0 <= reported <= 1,
           f"test_acc should be a fraction between 0 and 1, got {str(reported)[:40]}")
    expect(abs(reported - got["test_acc"]) <= 0.1,
           f"train() reported test_acc {reported:.3f} but the trained network classifies {got['test_acc']:.3f} of "
           "the test set: evaluate with net.eval() after training")


@check(points=2, title="epoch_seconds are real, per-epoch wall-clock times", timeout=60,
       hint="start = time.perf_counter() before each epoch's loop, append time.perf_counter() - start after it.",
       title_zh="epoch_seconds 是真实的、按 epoch 测量的挂钟时间",
       hint_zh="在每个 epoch 的循环之前执行 start = time.perf_counter()，在循环之后追加 time.perf_counter() - start。")
def epoch_times_honest(sub):
    holds = [round(base + sub.rng.uniform(-0.05, 0.05), 3) for base in (0.15, 0.3, 0.45)]
    sub.rng.shuffle(holds)  # secret, different every check: only a clock around each epoch reports them
    judge_epoch_times(timing_run(sub, 256, 32, holds, "cpu"), holds, None)


@check(points=2, title="on a GPU, epoch times wait for the queued kernels", needs_gpus=1, timeout=120,
       hint="torch.cuda.synchronize(device) before starting and before reading the clock at the end of an epoch.",
       title_zh="在 GPU 上，epoch 的时间要等待排队中的核函数执行完",
       hint_zh="在开始计时之前，以及在 epoch 结束读取时钟之前，调用 torch.cuda.synchronize(device)。")
def gpu_epoch_times_synchronised(sub):
    slow, holds = sub.rng.randrange(4), [round(sub.rng.uniform(0.05, 0.25), 3) for _ in range(4)]
    busy = [DELAY if e == slow else 0.0 for e in range(4)]  # queued after the slow epoch's gate, on the GPU
    got = timing_run(sub, 1024, 128, holds, "cuda:0", busy)
    expect(any(d.startswith("cuda") for d in got["used"]), f"the network ran on {sorted(got['used'])}, not on "
           "cuda:0: does train() call the network it was given, on the device it was given?")
    judge_epoch_times(got, holds, slow)


@check(points=3, title="two GPUs, scaled lr, warm-up: 1.3x faster, accuracy kept",
       needs_gpus=2, timeout=600,
       hint="With two or more CUDA devices wrap the network in nn.DataParallel(net, device_ids=devices) and move "
            "each batch to devices[0]; the check passes batch 512, lr 0.2 and a warm-up to your train().",
       title_zh="两块 GPU、缩放后的 lr、预热：快 1.3 倍，且精度保持不变",
       hint_zh="有两个或更多 CUDA 设备时，用 nn.DataParallel(net, device_ids=devices) 包装网络，并把每个批量移到 "
               "devices[0] 上；检查会向你的 train() 传入批量 512、lr 0.2 和预热。")
def two_gpus_faster(sub):
    """Epoch times on the grader's clock against labkit's own model's speed-up under DataParallel in the same run
    (labkit.lab.calibration); accuracy from logits on images whose labels the grader kept; the devices from a hook
    in the child (wrapping in DataParallel is the honest one line)."""
    n, epochs, noise, seeds = 16384, 4, 0.6, [sub.rng.randrange(2**31) for _ in range(4)]
    held, gpus = build(dataset("synthetic", n=n // 4, seed=seeds[3], noise=noise)), ["cuda:0", "cuda:1"]
    with LoadMeter(trees=[sub.pid]) as meter:  # the submission's own load (its whole process tree) is not an excuse
        prog = data_parallel_program(gpus, WIDTH, 256, 16, 4, seeds[0])
        cal = data_parallel_speedup(sub.run(prog, gate=lambda k: 0.0)["gates"])
        one = scaling_run(sub, gpus[:1], 256, 0.1, 0, seeds, held, n, epochs, noise, base_channels=WIDTH)
        two = scaling_run(sub, gpus, 512, 0.2, n // 512, seeds, held, n, epochs, noise, base_channels=WIDTH)
    expect(len(two["used"]) >= 2, f"with devices [cuda:0, cuda:1] the network only ran on {two['used']}: wrap it "
                                   "in nn.DataParallel when train() is given two or more CUDA devices")
    expect(two["acc"] >= one["acc"] - 0.03,
           f"test accuracy fell from {one['acc']:.1%} on one GPU to {two['acc']:.1%} on two: with lr 0.2 use the "
           "warm-up (lr_at) from the first step, as Goyal et al. (2017) do")
    speedup = one["epoch"] / two["epoch"]
    figures = (f"an epoch on two GPUs (batch 512) took {two['epoch']:.2f} s against {one['epoch']:.2f} s on one "
               f"(batch 256): {speedup:.2f}x (medians of epochs 2-{epochs}); labkit's own model under "
               f"nn.DataParallel: {cal['speedup']:.2f}x")
    if meter.result.busy():  # other processes, not this submission's own: a spinning submission still fails
        inconclusive(f"the 1-GPU against 2-GPU comparison could not be measured fairly: {meter.result.describe()}")
    if speedup < BAR and cal["speedup"] < CAL_BAR:  # the hardware's limit, not the submission's
        inconclusive(f"these GPUs cannot show a {BAR}x speed-up: {figures}, under the {CAL_BAR}x it must reach "
                     "before a slower submission fails")
    expect(speedup >= BAR, f"{figures}: expected at least {BAR}x")
    sub.note(figures)
