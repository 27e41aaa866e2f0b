"""Checks for exercise4: d2l's ResNet-18, the linear scaling rule with warm-up, training with honest epoch times."""

from __future__ import annotations

import math
import statistics
import time

import torch
import torch.optim.optimizer as optim_hooks
from torch import nn

from labkit.checks import check, expect, fail, inconclusive, probe
from labkit.i18n import _
from labkit.lab.data import synthetic
from labkit.lab.experiment import Plan, accuracy, timed_run
from labkit.lab.loadmeter import LoadMeter
from labkit.lab.timing import PassRecorder, device_sync

# References taken before the student's module is imported: patching `time` later changes nothing here.
_perf, _hook = time.perf_counter, optim_hooks.register_optimizer_step_pre_hook
STAGES = ((1, 28), (2, 14), (4, 7), (8, 4))  # (width multiple of base_channels, side) after each stage
DELAY = 0.5  # seconds of GPU work queued at the end of one epoch: its reported time must show it


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


# --- probes (run in the child, next to the student's module) ---------------------------

@probe
def architecture_report(mod, kwargs: dict) -> dict:
    """Build resnet18(**kwargs), count its parameters, and watch a forward pass with hooks on every module."""
    net = mod.resnet18(**kwargs)
    if not isinstance(net, nn.Module):
        return {"type": type(net).__name__}
    info = {"type": "Module", "params": sum(p.numel() for p in net.parameters()),
            "maxpool": any(isinstance(m, nn.MaxPool2d) for m in net.modules())}
    x = torch.zeros(2, kwargs.get("in_channels", 1), 28, 28)
    try:  # the meta device runs the forward pass on shapes alone: no memory, no arithmetic
        info["shapes"], out = _watch(net.to("meta"), x.to("meta"))
    except Exception:  # a forward that builds CPU tensors itself: a small CPU pass instead
        with torch.no_grad():
            info["shapes"], out = _watch(mod.resnet18(**kwargs).eval(), x)
    info["out"] = list(out.shape) if torch.is_tensor(out) else type(out).__name__
    return info


def _watch(net: nn.Module, x: torch.Tensor) -> tuple[list[list[int]], object]:
    """(C, H, W) of every 4-D module output in completion order, repeats collapsed; and the network's output."""
    seen: list[list[int]] = []

    def hook(_module, _inputs, out):
        if torch.is_tensor(out) and out.dim() == 4 and (not seen or seen[-1] != list(out.shape[1:])):
            seen.append(list(out.shape[1:]))

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        return seen, net(x)
    finally:
        for h in handles:
            h.remove()


@probe
def train_report(mod, seed: int, n: int, batch: int, lr: float, epochs: int, warmup: int) -> dict:
    """Train resnet18(base_channels=8) on seeded synthetic data: the check's own test accuracy, every step's lr."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # two OpenMP threads on a loaded two-core machine run 10x slower, one thread 1.5x
    train_set, test_set = synthetic(n, seed), synthetic(n // 3, seed + 1)
    net, lrs = mod.resnet18(base_channels=8), []
    handle = _hook(lambda opt, args, kwargs: lrs.append([float(g["lr"]) for g in opt.param_groups]))
    try:
        result = mod.train(net, [torch.device("cpu")], batch, lr, epochs, train_set, test_set, warmup_steps=warmup)
    finally:
        handle.remove()
    return {"result": result, "lrs": lrs[:5000], "acc": accuracy(net, test_set, "cpu")}


@probe
def timing_report(mod, seed: int, n: int, batch: int, delays: list[float], slow: int, device: str) -> dict:
    """Train a tiny network while epochs sleep `delays` s (CPU) or the `slow` one queues DELAY s of GPU work."""
    torch.manual_seed(seed)
    dev, gpu = torch.device(device), device.startswith("cuda")
    torch.set_num_threads(1)  # a loaded machine slows one thread evenly, two OpenMP threads erratically
    train_set = PassRecorder(synthetic(n, seed), [] if gpu else delays)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))  # the grader's: only train()'s clock is judged here
    if gpu:  # a first forward and backward start cuBLAS, so that the first epoch is not the slow one
        nn.Linear(784, 10).to(dev)(torch.zeros(1, 784, device=dev)).sum().backward()
        net.register_forward_pre_hook(train_set.gpu_work_at_end(slow, batch, DELAY, dev))
    start = _perf()
    result = mod.train(net, [dev], batch, 0.05, len(delays), train_set, synthetic(batch, seed + 1), warmup_steps=0)
    device_sync(dev)()  # GPU work still queued belongs to the call
    end = _perf()
    spans, uppers = train_set.bounds(start, end)
    return {"result": result, "wall": end - start, "spans": spans, "uppers": uppers, "spun": train_set.spun}


@probe
def scaling_report(mod, seed: int, n: int, epochs: int, noise: float) -> dict:
    """resnet18() on one GPU (batch 256, lr 0.1) and on two (batch 512, lr 0.2, warm-up): wall time and accuracy."""
    train_set, test_set = synthetic(n, seed, noise=noise), synthetic(n // 4, seed + 1, noise=noise)
    plans = [Plan("one", ["cuda:0"], 256, 0.1), Plan("two", ["cuda:0", "cuda:1"], 512, 0.2, n // 512)]
    runs = {p.label: timed_run(mod, p, epochs, train_set, test_set, seed) for p in plans}
    return {label: {k: run[k] for k in ("wall", "acc", "used")} for label, run in runs.items()}


# --- judging helpers (parent) -----------------------------------------------------------

def judge_architecture(sub, kwargs: dict) -> None:
    c, classes, inputs = kwargs.get("base_channels", 64), kwargs.get("num_classes", 10), kwargs.get("in_channels", 1)
    call = "resnet18(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")"
    info = sub.probe("architecture_report", kwargs)
    expect(info["type"] == "Module", f"{call} should return an nn.Module, got {info['type']}")
    want = [[m * c, side, side] for m, side in STAGES]
    stages = [s for s in info["shapes"] if s[1] > 1]  # the global average pool's 1x1 output comes after the stages
    shown = ", ".join(f"{s[1]}x{s[2]}x{s[0]}" for s in stages) or "no 4-D outputs"
    expect(stages == want, f"{call}: the stages should output {', '.join(f'{s[1]}x{s[2]}x{s[0]}' for s in want)} "
                           f"(HxWxC), got {shown}" + ("; your max-pool halves 28x28 before the first stage: d2l's "
                                                     "variant for small images has none" if info["maxpool"] else
                                                     "; check the stem (3x3, stride 1, padding 1), the widths (c, 2c, "
                                                     "4c, 8c) and stride 2 in the first block of stages 2-4"))
    expect(info["out"] == [2, classes], f"{call} should give logits of shape [2, {classes}], got {info['out']}")
    params, ref = info["params"], resnet_params(classes, inputs, c)
    expect(params != resnet_params(classes, inputs, c, bias=0),
           f"{call} has {params:,} parameters: your convolutions have no bias (torchvision's style); d2l's keep "
           f"the default bias=True, which gives {ref:,}")
    expect(params == ref, f"{call} has {params:,} parameters, expected {ref:,}: two residual blocks per stage, "
                          "each with two 3x3 convolutions and two BatchNorms, a 1x1 convolution (no BatchNorm) on "
                          "the shortcut of the first block of stages 2-4, and one Linear layer at the end")


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


def judge_epoch_times(got: dict, delays: list[float], slow: int | None) -> None:
    """Each reported epoch time lies between what the check saw of that epoch and the gap around it."""
    epochs = len(delays)
    times = number_list(result_dict(got["result"])["epoch_seconds"], "epoch_seconds", epochs)
    spans, uppers, wall = got["spans"], got["uppers"], got["wall"]
    expect(len(spans) == epochs, f"train() read every sample of train_set {len(spans)} times for epochs={epochs}; "
                                 "each epoch should iterate once over a DataLoader of train_set")
    if epochs > 1 and len(set(times)) == 1:
        fail(f"every epoch reported the same time ({times[0]:.3g} s), but the check made the epochs last differently "
             f"({', '.join(f'{d:.2f} s' for d in delays if d) or 'GPU work in one'}): measure each epoch with the "
             "clock (time.perf_counter() before and after its loop)")
    expect(sum(times) <= wall * 1.05 + 0.02,
           f"the epoch times add up to {sum(times):.2f} s but the whole train() call took {wall:.2f} s: report "
           "each epoch's own duration (not made-up numbers, not the time since the start)")
    for e, (t, low, high) in enumerate(zip(times, spans, uppers, strict=True)):
        expect(t >= 0.8 * low - 0.005,
               f"epoch {e + 1} took at least {low:.2f} s (its first to its last sample, timed by the check) but "
               f"train() reported {t:.2f} s: time the whole epoch, data loading included")
        expect(t <= 1.05 * high + 0.02,
               f"epoch {e + 1} took at most {high:.2f} s (from the previous epoch's last sample to the next one's "
               f"first) but train() reported {t:.2f} s: report each epoch's own duration, not the time since the start")
    others = statistics.median([t for e, t in enumerate(times) if e != slow]) if epochs > 1 else 0.0
    if slow is not None and times[slow] - others < 0.6 * DELAY:
        late = slow + 1 < epochs and times[slow + 1] - others >= 0.5 * DELAY
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
    got = sub.probe("train_report", sub.rng.randrange(2**31), n, batch, lr, epochs, warmup)
    result, lrs = result_dict(got["result"]), got["lrs"]
    expect(lrs, "train() never called optimizer.step() of a torch.optim optimizer: use torch.optim.SGD")
    want = [lr_at_reference(s, warmup, lr) for s in range(len(lrs))]
    for s, (groups, w) in enumerate(zip(lrs, want, strict=True)):
        peak = " (the peak, during warm-up)" if s < warmup and math.isclose(groups[0], lr) else ""
        expect(all(math.isclose(g, w, rel_tol=1e-6) for g in groups), f"step {s} ran at learning rate "
               f"{groups[0]:.6g}{peak}; lr_at({s}, {warmup}, {lr}) is {w:.6g}: set every param group's lr to "
               "lr_at(step, warmup_steps, lr) before each optimizer.step()")
    losses = number_list(result["losses"], "losses")
    expect(len(losses) == len(lrs), f"losses should hold one value per step ({len(lrs)}), got {len(losses)}")
    per = len(losses) // epochs
    first, last = statistics.mean(losses[:per]), statistics.mean(losses[-per:])
    expect(last < first, f"the mean loss of the last epoch ({last:.3f}) is not below the first's ({first:.3f})")
    acc, reported = got["acc"], result["test_acc"]
    expect(acc >= 0.5, f"after {epochs} epochs on {n} samples, resnet18(base_channels=8) classifies {acc:.0%} of the "
                       "test set (chance: 10 %); expected at least 50 %: update every parameter with SGD each step")
    expect(isinstance(reported, (int, float)) and not isinstance(reported, bool) and 0 <= reported <= 1,
           f"test_acc should be a fraction between 0 and 1, got {str(reported)[:40]}")
    expect(abs(reported - acc) <= 0.1, f"train() reported test_acc {reported:.3f} but the trained network "
                                       f"classifies {acc:.3f} of the test set: evaluate with net.eval() after training")


@check(points=2, title="epoch_seconds are real, per-epoch wall-clock times", timeout=60,
       hint="start = time.perf_counter() before each epoch's loop, append time.perf_counter() - start after it.",
       title_zh="epoch_seconds 是真实的、按 epoch 测量的挂钟时间",
       hint_zh="在每个 epoch 的循环之前执行 start = time.perf_counter()，在循环之后追加 time.perf_counter() - start。")
def epoch_times_honest(sub):
    delays = [0.15, 0.3, 0.45]
    sub.rng.shuffle(delays)
    got = sub.probe("timing_report", sub.rng.randrange(2**31), 256, 32, delays, -1, "cpu")
    judge_epoch_times(got, delays, None)


@check(points=2, title="on a GPU, epoch times wait for the queued kernels", needs_gpus=1, timeout=120,
       hint="torch.cuda.synchronize(device) before starting and before reading the clock at the end of an epoch.",
       title_zh="在 GPU 上，epoch 的时间要等待排队中的核函数执行完",
       hint_zh="在开始计时之前，以及在 epoch 结束读取时钟之前，调用 torch.cuda.synchronize(device)。")
def gpu_epoch_times_synchronised(sub):
    slow, epochs = sub.rng.randrange(4), [0.0] * 4  # the median of three other epochs shrugs off a slow first one
    got = sub.probe("timing_report", sub.rng.randrange(2**31), 1024, 128, epochs, slow, "cuda:0")
    expect(got["spun"] == [slow], f"the check could not add GPU work to epoch {slow + 1}: does train() call the "
                                  "network it was given, on the device it was given?")
    judge_epoch_times(got, epochs, slow)


@check(points=3, title="two GPUs, scaled lr, warm-up: 1.3x faster, accuracy kept",
       needs_gpus=2, timeout=600,
       hint="With two or more CUDA devices wrap the network in nn.DataParallel(net, device_ids=devices) and move "
            "each batch to devices[0]; the check passes batch 512, lr 0.2 and a warm-up to your train().",
       title_zh="两块 GPU、缩放后的 lr、预热：快 1.3 倍，且精度保持不变",
       hint_zh="有两个或更多 CUDA 设备时，用 nn.DataParallel(net, device_ids=devices) 包装网络，并把每个批量移到 "
               "devices[0] 上；检查会向你的 train() 传入批量 512、lr 0.2 和预热。")
def two_gpus_faster(sub):
    child = sub.pid  # the submission's own load (its whole process tree) is not an excuse
    with LoadMeter(trees=[child]) as meter:
        runs = sub.probe("scaling_report", sub.rng.randrange(2**31), 16384, 4, 0.6)
    if meter.result.busy():  # other processes, not this submission's own: a spinning submission still fails
        inconclusive(f"the 1-GPU against 2-GPU comparison could not be measured fairly: {meter.result.describe()}")
    one, two = runs["one"], runs["two"]
    expect(len(two["used"]) >= 2, f"with devices [cuda:0, cuda:1] the network only ran on {two['used']}: wrap it "
                                   "in nn.DataParallel when train() is given two or more CUDA devices")
    speedup = one["wall"] / two["wall"]
    expect(speedup >= 1.3, f"training on two GPUs (batch 512) took {two['wall']:.1f} s against {one['wall']:.1f} s "
                           f"on one (batch 256): {speedup:.2f}x, expected at least 1.3x")
    expect(two["acc"] >= one["acc"] - 0.03,
           f"test accuracy fell from {one['acc']:.1%} on one GPU to {two['acc']:.1%} on two: with lr 0.2 use the "
           "warm-up (lr_at) from the first step, as Goyal et al. (2017) do")
