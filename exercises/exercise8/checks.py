"""Checks for exercise8: honest benchmarks, speedup arithmetic and SyncBatchNorm conversion.

Timing is judged on the grader's clock. benchmark is handed labkit's gate as its fn: each call waits until the
grader releases it, held for a time the grader draws per call and never tells the child, and the grader reads
its own clock when each call arrives and when it lets it go. So a timed run must lie between its call's hold
and the gap from the previous call's release to the next call's arrival (a clock read around the call cannot
fall outside), within a slack for a busy machine. Every check draws holds far enough apart that no constant fits
them all, and each check judges its runs on its own: none relies on another one's windows.
"""

from __future__ import annotations

import statistics

import torch

from labkit.checks import check, expect, expect_close, fail
from labkit.inputs import build
from labkit.recipe import Program, device, gate, gpu_work, module, ref

EPS_MS = 0.05  # two readings of the same clock, rounded
WARMUP_MS = 120.0  # a warm-up call's hold: slow, as first calls are
SYNC = "torch.nn.modules.batchnorm.SyncBatchNorm"
CONVERTED = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
# Nested BatchNorms of every dimension beside other layers; a forward pass runs through all of them.
BN_LAYERS = [["Conv2d", 3, 4, 3], ["BatchNorm2d", 4], ["ReLU"], ["LayerNorm", [4, 4]],
             ["Sequential", ["Unflatten", 1, [4, 1]], ["Conv3d", 4, 4, 1], ["BatchNorm3d", 4, 1e-5, 0.3]],
             ["Sequential", ["Flatten"], ["Sequential", ["Linear", 64, 5], ["BatchNorm1d", 5, 0.1]]]]


def spread(rng, n: int, short: tuple = (8.0, 15.0), long: tuple = (60.0, 90.0)) -> list[float]:
    """n per-call lengths (ms), one short and one long among them: the windows around them share no constant."""
    lengths = [rng.uniform(*short), rng.uniform(*long)] + [rng.uniform(short[0], long[1]) for _ in range(n - 2)]
    rng.shuffle(lengths)
    return [round(x, 1) for x in lengths]


def expect_answer(res: object, repeats: int) -> list:
    """benchmark's dict, checked for its shape; its runs_ms."""
    expect(isinstance(res, dict), "benchmark should return a dict with median_ms, min_ms and runs_ms")
    for key in ("median_ms", "min_ms", "runs_ms"):
        expect(key in res, f"benchmark's dict has no {key!r}: expected keys median_ms, min_ms, runs_ms")
    runs = res["runs_ms"]
    expect(isinstance(runs, list) and all(type(r) in (int, float) for r in runs),
           f"runs_ms should be a list of numbers (milliseconds), got {type(runs).__name__}")
    expect(len(runs) == repeats, f"with repeats={repeats} runs_ms has {len(runs)} entries: time every repeat, "
                                 "and only the repeats (warm-up runs are not timed)")
    return runs


def timed(sub, holds_ms: list[float], warmup: int, repeats: int) -> tuple[dict, list]:
    """benchmark(gate, device="cpu", ...) in the child: its answer, and the grader's clock (ms) at every call as
    [arrived, released]; the last entry is the program's own gate, called after benchmark returned."""
    prog = Program().call("benchmark", gate(), device="cpu", warmup=warmup, repeats=repeats, save="res")
    got = sub.run(prog.call(gate()).report("res"), gate=lambda n: holds_ms[n] / 1000 if n < len(holds_ms) else 0.0)
    res = got["values"]["res"]
    expect_answer(res, repeats)
    return res, [[a * 1000, r * 1000] for a, r in got["gates"]]


def expect_calls(clock: list, warmup: int, repeats: int) -> None:
    calls = len(clock) - 1
    expect(calls == warmup + repeats, f"with warmup={warmup} and repeats={repeats} fn was called {calls} times, "
                                      f"expected {warmup + repeats}: warm-up calls run first, untimed")


def runs_on_the_clock(res: dict, clock: list, warmup: int) -> tuple[list, list]:
    """Fail unless every timed run fits its call on the grader's clock; (held, room) per run in ms."""
    held, room, ok = [], [], True
    for i, r in enumerate(res["runs_ms"]):
        k = warmup + i
        held.append(clock[k][1] - clock[k][0])
        room.append(clock[k + 1][0] - (clock[k - 1][1] if k else clock[k][0]))  # between the neighbouring calls
        # at least the hold (the clock was read before the call arrived and after it was let go), at most the
        # gap between the calls around it, and within a busy machine's slack of the hold: sleeping between
        # calls to widen that gap buys a made-up number nothing
        ok = ok and held[-1] - EPS_MS <= r <= min(room[-1], held[-1] * 1.5 + 10) + EPS_MS
    expect(ok, f"calls lasting {[round(h, 1) for h in held]} ms after the warm-up measured "
               f"{[round(r, 1) for r in res['runs_ms']]} ms: time each call with time.perf_counter() before and "
               "after it, in milliseconds")
    return held, room


# --- checks (run in the grader) ---------------------------------------------------------

@check(points=2, title="warm-up calls run but are not timed",
       hint="Call fn() warmup times before the timed loop; time only the repeats that follow.",
       title_zh="预热调用会运行，但不计时",
       hint_zh="在计时循环之前调用 fn() warmup 次；只对随后的重复计时。")
def warmup_excluded(sub):
    warmup, repeats = sub.rng.randint(2, 4), sub.rng.randint(4, 6)
    res, clock = timed(sub, [WARMUP_MS] * warmup + spread(sub.rng, repeats), warmup, repeats)
    calls = len(clock) - 1
    billed = [k for k in range(calls - repeats, calls) if k < warmup]  # timed runs that were (slow) warm-up calls
    expect(not billed, f"a function slow ({WARMUP_MS:g} ms) only on its first {warmup} calls measured "
                       f"{[round(r, 1) for r in res['runs_ms']]} ms: the benchmark counts its warm-up runs; time "
                       "only the calls after the warm-up")
    expect_calls(clock, warmup, repeats)
    runs_on_the_clock(res, clock, warmup)


@check(points=2, title="the median resists one slow outlier",
       hint="statistics.median(runs) (or sorted(runs)[n // 2]): one hiccup must not move the answer; not the mean.",
       title_zh="中位数不受一次缓慢的异常值影响",
       hint_zh="statistics.median(runs)（或 sorted(runs)[n // 2]）：一次意外卡顿不应改变结果；不要用平均值。")
def median_resists_outlier(sub):
    repeats = sub.rng.choice([5, 7])  # odd: statistics.median and sorted(runs)[n // 2] agree
    base = round(sub.rng.uniform(8.0, 30.0), 1)
    lasts = [round(base * sub.rng.uniform(0.8, 1.25), 1) for _ in range(repeats)]
    lasts[sub.rng.randrange(repeats)] = 200.0  # one timed run hits a hiccup
    res, clock = timed(sub, [2.0] + lasts, 1, repeats)
    expect_calls(clock, 1, repeats)
    runs_on_the_clock(res, clock, 1)
    runs, med, low = res["runs_ms"], res["median_ms"], res["min_ms"]
    expect(type(med) in (int, float) and type(low) in (int, float), "median_ms and min_ms should be numbers")
    middle = statistics.median(runs)
    tol = 1e-6 * max(1.0, abs(middle))
    expect(med <= middle + tol, f"{repeats} runs of about {base:g} ms with one of 200 ms gave median_ms={med:.1f}: "
                                "that is the mean (or worse); the median of the runs ignores one outlier")
    expect(med >= middle - tol, f"median_ms={med:.2f} for runs_ms of {[round(r, 1) for r in runs]}: report the "
                                "median of the runs, in milliseconds ((t1 - t0) * 1000)")
    expect(low <= med and abs(low - min(runs)) < 1e-6, f"min_ms={low:.2f} should be min(runs_ms)")


@check(points=1, title="a sleep of known length measures that length (within 10 %), in milliseconds",
       hint="time.perf_counter() around each call, times 1000 for milliseconds; median of the repeats.",
       title_zh="一次已知时长的 sleep 测得该时长（误差在 10 % 以内），单位为毫秒",
       hint_zh="在每次调用前后读取 time.perf_counter()，乘以 1000 换算成毫秒；取各次重复的中位数。")
def known_duration(sub):
    repeats = sub.rng.randint(3, 5)
    res, clock = timed(sub, [5.0] + spread(sub.rng, repeats), 1, repeats)
    expect_calls(clock, 1, repeats)
    med = res["median_ms"]
    expect(type(med) in (int, float), "median_ms should be a number")
    expect(med > 1, f"calls of about 8 to 90 ms measured median_ms={med:.4g}: that looks like seconds; report "
                    "milliseconds")
    held, room = runs_on_the_clock(res, clock, 1)
    want = statistics.median(held)  # the length the grader held them, on its own clock
    expect(want * 0.9 <= med <= max(want * 1.1, statistics.median(room)),
           f"calls whose median length is {want:.1f} ms measured median_ms={med:.2f}, expected {want:.1f} within "
           "10 % (use time.perf_counter, a monotonic high-resolution clock)")


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


def bn_recipe(seed: int) -> dict:
    """BN_LAYERS with weights and running stats of their own (state=...): a conversion that resets them shows."""
    g = torch.Generator().manual_seed(seed)
    net = build(module(BN_LAYERS, seed=seed))
    return module(BN_LAYERS, seed=seed, state={n: torch.rand(t.shape, generator=g) + 0.1
                                               for n, t in net.state_dict().items() if t.is_floating_point()})


def expect_same(got: list, want: list, message: str) -> None:
    """[[name, tensor], ...] from the child against the grader's own, name by name."""
    expect([n for n, *_ in got] == [n for n, _ in want], "the converted model's state_dict keys differ from the "
                                                         "original's")
    for (name, value, *_), (_, mine) in zip(got, want, strict=True):
        mine = mine.detach()
        expect(isinstance(value, torch.Tensor) and value.dtype == mine.dtype and value.shape == mine.shape
               and torch.allclose(value, mine, rtol=1e-5, atol=1e-6), message.format(name=name))


@check(points=2, title="every BatchNorm becomes SyncBatchNorm, nothing else changes",
       hint="nn.SyncBatchNorm.convert_sync_batchnorm(model) walks every submodule and keeps weights and stats.",
       title_zh="每一个 BatchNorm 都变成 SyncBatchNorm，其他一切保持不变",
       hint_zh="nn.SyncBatchNorm.convert_sync_batchnorm(model) 会遍历每一个子模块，并保留权重和统计量。")
def batchnorm_converted(sub):
    seed = sub.rng.randrange(2**31)
    recipe, mine = bn_recipe(seed), build(bn_recipe(seed))
    got = sub.run(Program().call("convert_batchnorm_for_ddp", recipe, save="net").report("net", "module"))
    got = got["values"]["net"]
    expect(got.get("report") == "module", f"convert_batchnorm_for_ddp returned {got.get('name')}, not the model: "
                                          "return the converted model")
    # Classes are judged by the class itself: its qualified name AND whether it is torch's own class, as the
    # child captured it before the student's file ran. A subclass or a look-alike named SyncBatchNorm is not it.
    # The child reports this fact; the honest answer is one line, forging it means patching labkit's own code.
    kinds = {name: (kind, own) for name, kind, own in got["modules"]}
    for name, m in mine.named_modules():
        expect(name in kinds, f"module {name or '(root)'} is missing after the conversion")
        kind, own = kinds[name]
        if isinstance(m, CONVERTED):
            now = (f"still {type(m).__name__}" if kind == f"{type(m).__module__}.{type(m).__qualname__}" else
                   "a SyncBatchNorm that is not torch's own class" if kind == SYNC else f"a {kind}")
            expect(kind == SYNC and own, f"module {name} is {now}: every BatchNorm, nested ones included, must "
                                         "become torch's nn.SyncBatchNorm")
        else:
            expect(kind == f"{type(m).__module__}.{type(m).__qualname__}" and own,
                   f"module {name or '(root)'} became {kind}, expected it untouched ({type(m).__name__})")
    count = len(list(mine.named_modules()))
    expect(len(kinds) == count, f"the converted model has {len(kinds)} modules, the original {count}")
    # The values are compared with the grader's own copy of the same recipe, never with what the child claims.
    message = "{name} changed in the conversion: weights and running stats must be kept"
    expect_same(got["params"], list(mine.named_parameters()), message)
    expect_same(got["buffers"], list(mine.named_buffers()), message)
    # One training step's forward pass, redone here: its output shows every eps, the running stats it leaves
    # behind every momentum.
    x = torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(seed))
    prog = Program().call("convert_batchnorm_for_ddp", recipe, save="net").call(ref("net"), x, save="out")
    got = sub.run(prog.report("out").report("net", "module"))["values"]
    expect(got["net"].get("training") is True, "the converted model is in eval mode: keep the model's mode")
    want = mine(x).detach()
    out = got["out"]
    expect(isinstance(out, torch.Tensor) and out.shape == want.shape and torch.allclose(out, want, atol=1e-5),
           "the converted model computes a different output: eps or momentum changed in the conversion: keep "
           "every layer's settings")
    expect_same(got["net"]["buffers"], list(mine.named_buffers()),
                "eps or momentum changed in the conversion ({name} after one step): keep every layer's settings")


@check(points=2, title="CUDA work is synchronised before the clock is read", needs_gpus=1, timeout=120,
       hint="torch.cuda.synchronize(device) before reading the clock at the start and at the end of each run.",
       title_zh="读取时钟之前先同步 CUDA 工作",
       hint_zh="在每次运行的开始和结束读取时钟之前，调用 torch.cuda.synchronize(device)。")
def cuda_synchronised(sub):
    # fn queues matrix products on the GPU and returns at once. The timed calls' lengths spread (calibrated in
    # the child by CUDA events after a warm-up, so within a few per cent; the windows below are wide anyway, a
    # throttling GPU's too, yet share no constant); the warm-up's is
    # longer than any window leaves room for, so a run that does not wait for it first is billed for it.
    work = [round(sub.rng.uniform(100.0, 120.0), 1)] + spread(sub.rng, 3, short=(8.0, 10.0), long=(60.0, 80.0))
    prog = Program().let("work", gpu_work("cuda:0", work)).call(gate())
    prog.call("benchmark", ref("work"), device=device("cuda:0"), warmup=1, repeats=3, save="res").call(gate())
    got = sub.run(prog.report("res"), gate=lambda n: 0.0)
    res = got["values"]["res"]
    runs = expect_answer(res, 3)
    expect(len(got["gates"]) == 2, "benchmark reached labkit's own gate: call only the fn it is given")
    (_, start), (end, _) = got["gates"]  # the grader's clock just before benchmark was called and after it returned
    for r, w in zip(runs, work[1:], strict=True):
        expect(r >= 0.5 * w, f"about {w:g} ms of queued GPU work measured {r:.3g} ms: CUDA kernels are "
                             "asynchronous, so the clock read when they were queued; call "
                             "torch.cuda.synchronize(device) before each read")
        expect(r <= 1.8 * w + 5, f"about {w:g} ms of queued GPU work measured {r:.3g} ms: work queued before the "
                                 "run (the warm-up's) was billed to it; synchronise before the start read too")
    expect(sum(runs) <= (end - start) * 1000 + EPS_MS,
           f"runs_ms adds up to {sum(runs):.1f} ms, but benchmark took {(end - start) * 1000:.1f} ms on the "
           "grader's clock: report what the clock measured")
    med = res["median_ms"]
    if not (type(med) in (int, float) and abs(med - statistics.median(runs)) <= 1e-6 * max(1.0, med)):
        fail(f"median_ms={med!r} should be the median of runs_ms {[round(r, 1) for r in runs]}")
