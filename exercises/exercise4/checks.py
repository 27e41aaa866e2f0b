"""Checks for exercise4: d2l's ResNet-18, the linear scaling rule with warm-up, training with honest epoch times."""

from __future__ import annotations

import math
import statistics

import torch

from labkit.checks import StudentError, check, expect, fail, inconclusive
from labkit.i18n import _
from labkit.inputs import build
from labkit.lab.calibration import data_parallel_program, data_parallel_speedup
from labkit.lab.loadmeter import LoadMeter
from labkit.lab.trainruns import (
    DELAY,
    HELD,
    judge_epoch_times,
    number_list,
    result_dict,
    scaling_run,
    timing_run,
    train_run,
)
from labkit.recipe import Program, dataset, hook, module, on, ref

STAGES = ((1, 28), (2, 14), (4, 7), (8, 4))  # (width multiple of base_channels, side) after each stage
WIDTH = 128  # base_channels of the timed networks: a step at batch 256 then takes tens of ms on an A100/H100, well
# above DataParallel's replicate/scatter/gather and the loader's per-batch cost (at 64 it is a few ms)
BAR, CAL_BAR = 1.3, 1.5  # the speed-up asked for; the one labkit's own model must reach before a shortfall fails


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


# Where init_weights is tried: a convolution, a BatchNorm, layers without weights, two Linear layers, the net itself.
INIT_LAYERS = [["Conv2d", 3, 64, 3], ["BatchNorm2d", 64], ["ReLU"], ["AdaptiveAvgPool2d", 1], ["Flatten"],
               ["Linear", 64, 512], ["ReLU"], ["Linear", 512, 10]]


def judge_init(name: str, got: torch.Tensor, was: torch.Tensor) -> None:
    """A weight init_weights drew: changed, mean 0, std 0.01, normal (a uniform draw has kurtosis 1.8, a normal 3)."""
    mean, std = got.double().mean().item(), got.double().std().item()
    kurtosis = (((got.double() - mean) / max(std, 1e-12)) ** 4).mean().item()
    expect(not torch.equal(got, was), f"init_weights left {name} as PyTorch initialised it: draw it with "
           "nn.init.normal_(m.weight, std=0.01) for every nn.Linear and nn.Conv2d")
    expect(abs(std - 1) >= 0.1, f"{name} has std {std:.3f}, normal_'s default: nn.init.normal_(w, 0.01) sets the "
           "MEAN (its signature is normal_(tensor, mean=0.0, std=1.0)); pass std=0.01 by keyword")
    expect(abs(std - 0.01) <= 0.001 and abs(mean) <= 6 * 0.01 / got.numel() ** 0.5, f"{name} has mean {mean:.4f} and "
           f"std {std:.4f}; d2l's init_weights draws it from a normal distribution with mean 0 and std 0.01")
    expect(kurtosis > 2.4, f"{name} has std 0.01 but its values look uniform (kurtosis {kurtosis:.2f}, a normal "
           "distribution's is 3): use nn.init.normal_")


@check(points=2, title="init_weights draws Linear and Conv2d weights from N(0, 0.01²), nothing else",
       hint="if type(m) in (nn.Linear, nn.Conv2d): nn.init.normal_(m.weight, std=0.01) — std by keyword; biases and "
            "BatchNorm stay as they are",
       title_zh="init_weights 从 N(0, 0.01²) 中抽取 Linear 和 Conv2d 的权重，其他一概不动",
       hint_zh="if type(m) in (nn.Linear, nn.Conv2d): nn.init.normal_(m.weight, std=0.01) —— std 要用关键字传入；"
               "偏置和 BatchNorm 保持不变")
def init_weights_d2l(sub):
    seed = sub.rng.randrange(2**31)
    prog = Program().let("net", module(INIT_LAYERS, seed=seed))
    for i in [*range(len(INIT_LAYERS)), None]:  # as net.apply(init_weights) calls it: every child, then the net
        prog.call("init_weights", ref("net", str(i)) if i is not None else ref("net"))
    try:
        got = sub.run(prog.report("net", "module"))["values"]["net"]
    except StudentError as err:
        if err.is_a("NotImplementedError") or err.is_a("MissingFunction"):
            raise
        fail(f"init_weights raised {err} on one of the modules net.apply hands it (a ReLU, a Flatten, the network "
             "itself have no weight): act only on nn.Linear and nn.Conv2d")
    was = build(module(INIT_LAYERS, seed=seed)).state_dict()
    now = {**dict(got["params"]), **{n: t for n, t, _keep in got["buffers"]}}
    for key in ("0.weight", "5.weight", "7.weight"):
        judge_init(f"the {INIT_LAYERS[int(key[0])][0]} layer's weight", now[key], was[key])
    changed = [k for k in was if k not in ("0.weight", "5.weight", "7.weight") and not torch.equal(now[k], was[k])]
    expect(not changed, f"init_weights changed {', '.join(changed)}: d2l's init_weights draws only the weights of "
           "nn.Linear and nn.Conv2d; biases and BatchNorm's parameters and statistics keep their values")


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
