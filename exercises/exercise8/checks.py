"""Checks for exercise8: honest benchmarks, speedup arithmetic and SyncBatchNorm conversion."""

from __future__ import annotations

import time

import torch
from torch import nn

from labkit.checks import check, expect, expect_close, probe

CONVERTED = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def class_name(kind: type) -> str:
    """A class as the child reports it: its module and qualified name (torch.nn.modules.batchnorm.SyncBatchNorm)."""
    return f"{kind.__module__}.{kind.__qualname__}"


def bn_net(seed: int) -> nn.Module:
    """Nested BatchNorms of every dimension beside other layers, with seeded weights and running stats."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Sequential(nn.Conv3d(4, 4, 1), nn.BatchNorm3d(4, momentum=0.3)),
        nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(8, 5), nn.BatchNorm1d(5, eps=1e-3))),
        nn.LayerNorm(5))
    with torch.no_grad():  # running stats get values of their own: a conversion that resets them shows
        for t in [*net.parameters(), *(b for b in net.buffers() if b.is_floating_point())]:
            t.copy_(torch.rand(t.shape, generator=g) + 0.1)
    return net


# --- probes (run in the child, next to the student's module) ---------------------------

@probe
def timed_report(mod, delays_ms: list[float], warmup: int, repeats: int) -> dict:
    """Benchmark a function whose n-th call sleeps delays_ms[n] (0 past the list); count the calls."""
    sleep, calls = time.sleep, []

    def fn() -> None:
        calls.append(len(calls))
        if len(calls) <= len(delays_ms) and delays_ms[len(calls) - 1]:
            sleep(delays_ms[len(calls) - 1] / 1000)

    got = mod.benchmark(fn, device="cpu", warmup=warmup, repeats=repeats)
    return {"result": dict(got) if isinstance(got, dict) else None, "calls": len(calls)}


@probe
def convert_report(mod, seed: int) -> dict:
    net = bn_net(seed)
    out = mod.convert_batchnorm_for_ddp(net)
    return {"types": [[name, f"{type(m).__module__}.{type(m).__qualname__}"] for name, m in out.named_modules()],
            "state": {k: v.clone() for k, v in out.state_dict().items()},
            "eps": [[n, m.eps, getattr(m, "momentum", None)] for n, m in out.named_modules() if hasattr(m, "eps")]}


@probe
def cuda_report(mod, seconds: float) -> dict:
    from labkit.lab.timing import spin_cycles

    dev = torch.device("cuda", 0)
    cycles = spin_cycles(dev, seconds)

    def fn() -> None:
        with torch.cuda.device(dev):
            torch.cuda._sleep(cycles)  # queued and returned at once: only a synchronised clock sees it

    got = mod.benchmark(fn, device=dev, warmup=1, repeats=3)
    return {"result": dict(got) if isinstance(got, dict) else None}


def timed(sub, delays_ms: list[float], warmup: int, repeats: int) -> tuple[dict, int]:
    """benchmark's answer, checked for its shape, and how often it called the function."""
    got = sub.probe("timed_report", delays_ms, warmup, repeats)
    res = got["result"]
    expect(res is not None, "benchmark should return a dict with median_ms, min_ms and runs_ms")
    for key in ("median_ms", "min_ms", "runs_ms"):
        expect(key in res, f"benchmark's dict has no {key!r}: expected keys median_ms, min_ms, runs_ms")
    runs = res["runs_ms"]
    expect(isinstance(runs, list) and all(isinstance(r, (int, float)) for r in runs),
           f"runs_ms should be a list of numbers (milliseconds), got {type(runs).__name__}")
    expect(len(runs) == repeats, f"with repeats={repeats} runs_ms has {len(runs)} entries: time every repeat, "
                                 "and only the repeats (warm-up runs are not timed)")
    return res, got["calls"]


# --- checks (run in the grader) ---------------------------------------------------------

@check(points=2, title="warm-up calls run but are not timed",
       hint="Call fn() warmup times before the timed loop; time only the repeats that follow.",
       title_zh="预热调用会运行，但不计时",
       hint_zh="在计时循环之前调用 fn() warmup 次；只对随后的重复计时。")
def warmup_excluded(sub):
    warmup, repeats = sub.rng.randint(2, 4), sub.rng.randint(4, 6)
    # each timed call lasts its own few milliseconds: only a clock read around every call reports them all
    lasts = [round(sub.rng.uniform(3.0, 40.0), 1) for _ in range(repeats)]
    res, calls = timed(sub, [120.0] * warmup + lasts, warmup, repeats)
    slow = [r for r in res["runs_ms"] if r > 90]
    expect(not slow, f"a function slow (120 ms) only on its first {warmup} calls measured {res['runs_ms']} ms: "
                     "the benchmark counts its warm-up runs; time only the calls after the warm-up")
    # a sleep overshoots on a loaded machine, never undershoots: the window is wider above
    off = [(r, d) for r, d in zip(res["runs_ms"], lasts, strict=True) if not d * 0.9 <= r <= d * 1.5 + 5]
    expect(not off, f"calls lasting {lasts} ms after the warm-up measured {res['runs_ms']} ms: time each call "
                    "with time.perf_counter() before and after it, in milliseconds")
    expect(calls == warmup + repeats, f"with warmup={warmup} and repeats={repeats} fn was called {calls} times, "
                                      f"expected {warmup + repeats}: warm-up calls run first, untimed")


@check(points=2, title="the median resists one slow outlier",
       hint="statistics.median(runs) (or sorted(runs)[n // 2]): one hiccup must not move the answer; not the mean.",
       title_zh="中位数不受一次缓慢的异常值影响",
       hint_zh="statistics.median(runs)（或 sorted(runs)[n // 2]）：一次意外卡顿不应改变结果；不要用平均值。")
def median_resists_outlier(sub):
    repeats = sub.rng.choice([5, 7])
    base = round(sub.rng.uniform(4.0, 30.0), 1)  # varies per seed: a constant answer cannot sit in the window
    delays = [0.0] + [base] * repeats
    delays[1 + sub.rng.randrange(repeats)] = 200.0  # one timed run hits a hiccup
    res, _ = timed(sub, delays, 1, repeats)
    med, low = res["median_ms"], res["min_ms"]
    expect(isinstance(med, (int, float)) and isinstance(low, (int, float)), "median_ms and min_ms should be numbers")
    expect(med < base * 1.25 + 5, f"{repeats} runs of {base:g} ms with one of 200 ms gave median_ms={med:.1f}: that is "
                            "the mean (or worse); the median of the runs ignores one outlier")
    expect(base * 0.9 <= med, f"median_ms={med:.2f} for runs of at least {base:g} ms: report milliseconds "
                              "((t1 - t0) * 1000)")
    expect(low <= med and abs(low - min(res["runs_ms"])) < 1e-6, f"min_ms={low:.2f} should be min(runs_ms)")


@check(points=1, title="a sleep of known length measures that length (within 10 %), in milliseconds",
       hint="time.perf_counter() around each call, times 1000 for milliseconds; median of the repeats.",
       title_zh="一次已知时长的 sleep 测得该时长（误差在 10 % 以内），单位为毫秒",
       hint_zh="在每次调用前后读取 time.perf_counter()，乘以 1000 换算成毫秒；取各次重复的中位数。")
def known_duration(sub):
    repeats = sub.rng.randint(3, 5)
    sleep_ms = round(sub.rng.uniform(25.0, 60.0), 1)  # a fresh length per seed: only a clock can report it
    res, _ = timed(sub, [sleep_ms] * (repeats + 1), 1, repeats)
    med = res["median_ms"]
    expect(isinstance(med, (int, float)), "median_ms should be a number")
    expect(med > 1, f"a {sleep_ms:g} ms sleep measured median_ms={med:.4g}: that looks like seconds; report "
                    "milliseconds")
    expect(sleep_ms * 0.9 <= med <= sleep_ms * 1.1, f"a {sleep_ms:g} ms sleep measured median_ms={med:.2f}, "
                                                    f"expected {sleep_ms:g} within 10 % (use time.perf_counter, a "
                                                    "monotonic high-resolution clock)")


@check(points=1, title="speedup and efficiency arithmetic",
       hint="speedup = t_one / t_many; efficiency = speedup / n (1.0 is perfect scaling).",
       title_zh="加速比与效率的计算",
       hint_zh="speedup = t_one / t_many；efficiency = speedup / n（1.0 表示完美扩展）。")
def speedup_arithmetic(sub):
    cases = [(10.0, 5.0, 2), (12.0, 4.0, 4), (sub.rng.uniform(5, 50), sub.rng.uniform(1, 20), sub.rng.randint(2, 8))]
    for one, many, n in cases:
        got = sub.call("speedup", one, many, n)
        what = f"speedup({one:.4g}, {many:.4g}, {n})"
        expect(isinstance(got, dict) and "speedup" in got and "efficiency" in got,
               f"{what} should return a dict with 'speedup' and 'efficiency'")
        expect_close(got["speedup"], one / many, f"{what}['speedup'] (t_one / t_many)")
        expect(abs(got["efficiency"] - one / many) > 1e-9 or n == 1,
               f"{what}['efficiency'] equals the speedup: efficiency is the speedup divided by n")
        expect_close(got["efficiency"], one / many / n, f"{what}['efficiency'] (speedup divided by n)")


@check(points=2, title="every BatchNorm becomes SyncBatchNorm, nothing else changes",
       hint="nn.SyncBatchNorm.convert_sync_batchnorm(model) walks every submodule and keeps weights and stats.",
       title_zh="每一个 BatchNorm 都变成 SyncBatchNorm，其他一切保持不变",
       hint_zh="nn.SyncBatchNorm.convert_sync_batchnorm(model) 会遍历每一个子模块，并保留权重和统计量。")
def batchnorm_converted(sub):
    seed = sub.rng.randrange(2**31)
    got = sub.probe("convert_report", seed)
    ref = bn_net(seed)
    want = {name: type(m) for name, m in ref.named_modules()}
    types = dict((name, kind) for name, kind in got["types"])
    for name, kind in want.items():
        expect(name in types, f"module {name or '(root)'} is missing after the conversion")
        if issubclass(kind, CONVERTED):  # judged by the class itself: a look-alike named SyncBatchNorm is not it
            now = f"still {kind.__name__}" if types[name] == class_name(kind) else f"a {types[name]}"
            expect(types[name] == class_name(nn.SyncBatchNorm), f"module {name} is {now}: every BatchNorm, nested "
                                                                "ones included, must become torch's nn.SyncBatchNorm")
        else:
            expect(types[name] == class_name(kind), f"module {name or '(root)'} became {types[name]}, expected it "
                                                    f"untouched ({kind.__name__})")
    expect(len(types) == len(want), f"the converted model has {len(types)} modules, the original {len(want)}")
    state, ref_state = got["state"], ref.state_dict()
    expect(list(state) == list(ref_state), "the converted model's state_dict keys differ from the original's")
    for k, v in ref_state.items():
        expect(torch.equal(state[k], v), f"{k} changed in the conversion: weights and running stats must be kept")
    ref_eps = [[n, m.eps, getattr(m, "momentum", None)] for n, m in ref.named_modules() if hasattr(m, "eps")]
    expect(got["eps"] == ref_eps, "eps or momentum changed in the conversion: keep every layer's settings")


@check(points=2, title="CUDA work is synchronised before the clock is read", needs_gpus=1, timeout=120,
       hint="torch.cuda.synchronize(device) before reading the clock at the start and at the end of each run.",
       title_zh="读取时钟之前先同步 CUDA 工作",
       hint_zh="在每次运行的开始和结束读取时钟之前，调用 torch.cuda.synchronize(device)。")
def cuda_synchronised(sub):
    got = sub.probe("cuda_report", 0.05)  # a busy machine only makes runs longer: no inconclusive needed
    res = got["result"]
    expect(res is not None and "median_ms" in res, "benchmark should return a dict with median_ms")
    med = res["median_ms"]
    # Half the expected time: the cycle calibration is rough, and an unsynchronised clock reads microseconds.
    expect(med >= 25, f"about 50 ms of queued GPU work measured median_ms={med:.3g}: CUDA kernels are asynchronous, "
                      "so the clock read when they were queued; call torch.cuda.synchronize(device) before each read")
