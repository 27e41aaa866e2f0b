"""Checks for exercise2: DataParallel's split, the wrapper, the notes' linear regression, saving and plotting."""

from __future__ import annotations

import io
import math

import torch
from torch import nn

from labkit.checks import check, expect, expect_equal, fail, load_student_tensors, read_student_file
from labkit.i18n import _
from labkit.inputs import build
from labkit.lab.linefit import expect_descent, expect_losses, least_squares_mse, mse
from labkit.recipe import Program, hook, module, on, ref

# The course notes' 15-point linear regression.
X15 = torch.tensor([3.3, 4.4, 5.5, 6.71, 6.93, 4.168, 9.779, 6.182, 7.59, 2.167, 7.042, 10.791, 5.313, 7.997, 3.1])
Y15 = torch.tensor([1.7, 2.76, 2.09, 3.19, 1.694, 1.573, 3.366, 2.596, 2.53, 1.221, 2.827, 3.465, 1.65, 2.904, 1.3])
X15, Y15 = X15.reshape(15, 1), Y15.reshape(15, 1)  # (N, 1), as nn.Linear(1, 1) takes them
NO_LINE = ("None", "none", "", " ")  # what matplotlib reports for "no marker" / "no line style"
SEQUENTIAL = "torch.nn.modules.container.Sequential"
DATA_PARALLEL = "torch.nn.parallel.data_parallel.DataParallel"


def chunk_sizes(batch: int, n: int) -> list[int]:
    """What DataParallel's scatter does: tensor.chunk(n) along the batch dimension."""
    return [len(c) for c in torch.arange(batch).chunk(n)]


def random_line(sub) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' x values, jittered, with y from a random line far from the default initialisation, plus noise."""
    g = sub.generator()
    x = X15 + (torch.rand(15, 1, generator=g) - 0.5) * 0.4
    slope, intercept = sub.rng.uniform(-0.5, 0.5), sub.rng.choice([-1, 1]) * sub.rng.uniform(2.0, 4.0)
    return x, slope * x + intercept + 0.4 * torch.randn(15, 1, generator=g)


def linear(weight: torch.Tensor, bias: torch.Tensor, wrap: str | None = None) -> dict:
    """An nn.Linear(1, 1) holding the grader's values (inside nn.DataParallel with wrap="DataParallel")."""
    return module([["Linear", 1, 1]], sequential=False, state={"weight": weight, "bias": bias}, wrap=wrap)


def is_class(facts: dict, name: str) -> bool:
    """Judged by class: torch's own class of that name, not a look-alike that borrowed it."""
    return isinstance(facts, dict) and facts.get("type") == name and facts.get("torch") is True


# --- checks (run in the grader) --------------------------------------------------------
def explain_sizes(batch: int, n: int, got: object, want: list[int]) -> str:
    """Why `got` is not DataParallel's split, naming the usual mistakes."""
    head = f"replica_batch_sizes({batch}, {n}): expected {want}, got {got!r}"
    if got == [batch // n] * n:
        return head + _("; that is [batch // n] * n, which loses the remainder. DataParallel's scatter uses "
                        "tensor.chunk: ceil(batch / n) per replica, the last one gets what is left")
    if got == [batch // n + (i < batch % n) for i in range(n)]:
        return head + _("; that spreads the remainder one by one (like numpy.array_split). tensor.chunk gives "
                        "ceil(batch / n) to each replica and the rest to the last, so fewer replicas may run")
    return head + "; follow tensor.chunk: 10 on 3 gives [4, 4, 2], 10 on 8 gives five replicas of 2"


@check(points=2, title="replica_batch_sizes follows DataParallel's scatter",
       hint="ceil(batch / n) per replica until the batch runs out: [len(c) for c in torch.arange(batch).chunk(n)]",
       title_zh="replica_batch_sizes 与 DataParallel 的分发（scatter）方式一致",
       hint_zh="每个副本依次分到 ceil(batch / n) 个样本，直到批量分完为止："
       "[len(c) for c in torch.arange(batch).chunk(n)]")
def replica_sizes(sub):
    cases = [(30, 2), (10, 3), (10, 8), (3, 8), (100, 1), (1, 1)]
    cases += [(sub.rng.randint(1, 512), sub.rng.randint(2, 16)) for _ in range(8)]
    for batch, n in cases:
        got, want = sub.call("replica_batch_sizes", batch, n), chunk_sizes(batch, n)
        expect(type(got) is list and all(type(v) is int for v in got), f"replica_batch_sizes({batch}, {n}) "
               f"should return a list of ints, got {got!r}")
        expect(got == want, explain_sizes(batch, n, got, want))


@check(points=1, title="replica_batch_sizes refuses a batch or device count below 1",
       hint="raise ValueError(...) when batch_size < 1 or num_devices < 1",
       title_zh="批量大小或设备数小于 1 时，replica_batch_sizes 拒绝执行",
       hint_zh="当 batch_size < 1 或 num_devices < 1 时抛出 ValueError(...)")
def replica_sizes_invalid(sub):
    cases = [(0, 2), (30, 0), (-3, 2), (30, -1), (-sub.rng.randint(1, 99), sub.rng.randint(1, 8))]
    for batch, n in cases:
        err = sub.raises("replica_batch_sizes", batch, n)
        expect(err is not None, f"replica_batch_sizes({batch}, {n}) returned instead of raising ValueError")
        expect(err.is_a("ValueError"), f"replica_batch_sizes({batch}, {n}) raised {err.type_name}, expected "
               "ValueError")


def tutorial_model(seed: int) -> dict:  # the tutorial's Model (input 5, output 2): the grader builds the same
    return module([["Linear", 5, 2]], seed=seed)


@check(points=1, title="without two GPUs the bare model comes back, on the primary device",
       hint="device_ids None means range(torch.cuda.device_count()); with fewer than two ids return "
       "model.to(primary) (cuda:ids[0], or cpu when there is no GPU)",
       title_zh="GPU 少于两块时返回裸模型，且位于主设备上",
       hint_zh="device_ids 为 None 表示 range(torch.cuda.device_count())；编号少于两个时返回 model.to(primary)（即 "
       "cuda:ids[0]，没有 GPU 时为 cpu）")
def wrap_bare(sub):
    calls = [([0],)] if sub.gpus >= 2 else [(), (None,)]
    primary = "cuda:0" if sub.gpus else "cpu"
    for args in calls:
        seed = sub.rng.randrange(1 << 30)
        prog = Program().call("wrap_data_parallel", tutorial_model(seed), *args, save="out")
        got = sub.run(prog.report("out", "module"))["values"]["out"]
        call = f"wrap_data_parallel(model{''.join(f', {a!r}' for a in args)}) with {sub.gpus} CUDA device(s)"
        expect(not is_class(got, DATA_PARALLEL), call + _(" returned a DataParallel: with fewer than two GPUs the "
               "wrapper does no parallel work and only adds a 'module.' prefix to every state-dict key; return the "
               "bare model"))
        # The model itself: torch's own Sequential that was passed in, with the weights the grader built.
        expect(is_class(got, SEQUENTIAL), f"{call} returned a {got['name']}, expected the model itself")
        want = [[n, p.detach()] for n, p in build(tutorial_model(seed)).named_parameters()]
        expect([n for n, _ in got["params"]] == [n for n, _ in want] and all(
            torch.equal(g, w) for (_, g), (_, w) in zip(got["params"], want, strict=True)),
            f"{call} returned a model with other weights than the one it was given: return the model itself")
        expect_equal(got["devices"], [primary], f"{call}: devices of the parameters")


@check(points=2, title="the wrapped model splits a batch of 30 into 15 and 15 on two GPUs", needs_gpus=2,
       hint="nn.DataParallel(model.to('cuda:0'), device_ids=...) with every visible GPU when device_ids is None",
       title_zh="被包装的模型在两块 GPU 上把大小为 30 的批量切分为 15 和 15",
       hint_zh="nn.DataParallel(model.to('cuda:0'), device_ids=...)，device_ids 为 None 时使用所有可见的 GPU")
def wrap_splits(sub):
    n, seed = sub.gpus, sub.rng.randrange(1 << 30)
    got = sub.run(Program().call("wrap_data_parallel", tutorial_model(seed), save="net").report("net", "kind"))
    kind = got["values"]["net"]
    expect(is_class(kind, DATA_PARALLEL), f"wrap_data_parallel(model) with {n} GPUs returned a {kind['name']}, "
           "expected torch's nn.DataParallel")
    # The tutorial's 100 samples in batches of 30. Replicas share the wrapped module's hooks, so each replica's call
    # is recorded: forging that means running the inner module per GPU on its slice, DataParallel's own job. The
    # outputs are judged here against the grader's own model on the same inputs.
    batches = torch.randn(100, 5, generator=sub.generator()).split(30)
    prog = Program().call("wrap_data_parallel", tutorial_model(seed), save="net")
    for i, batch in enumerate(batches):
        prog.call(ref("net"), on(batch, "cuda:0"), save=f"out{i}", no_grad=True,
                  hooks=[hook(ref("net"), modules=["module"])])
        prog.report(f"out{i}").report(f"out{i}", "devices", key=f"where{i}")
    got = sub.run(prog)
    reference = build(tutorial_model(seed))
    for i, batch in enumerate(batches):
        seen = sorted(([(a[0][0] or [None])[0], a[0][1]] for _n, a, *_ in got["steps"][i + 1]["hooks"][0]
                       if a and isinstance(a[0], list)), key=lambda r: (len(str(r[1])), str(r[1])))  # cuda:0 first
        want = [[size, f"cuda:{j}"] for j, size in enumerate(chunk_sizes(len(batch), n))]
        expect(seen == want, f"a batch of {len(batch)} on {n} GPUs: the replicas saw {seen}, "
               f"expected {want} ([size, device] per replica)")
        out = got["values"][f"out{i}"]
        expect(isinstance(out, torch.Tensor) and got["values"][f"where{i}"] == [[[], "cuda:0"]],
               f"the gathered output of a batch of {len(batch)} should be one tensor on cuda:0")
        expect(out.shape == (len(batch), 2) and torch.allclose(out, reference(batch).detach(), atol=1e-4),
               f"the gathered output of a batch of {len(batch)} is not the model's output for that batch")
        expect_equal(sub.call("replica_batch_sizes", len(batch), n), chunk_sizes(len(batch), n),
                     f"replica_batch_sizes({len(batch)}, {n}) next to what DataParallel did")


def fitted(sub, x: torch.Tensor, y: torch.Tensor, epochs: int, device: object) -> object:
    """What fit_line(x, y, epochs, 0.02, device) returned: a model arrives as its facts (parameters with values)."""
    prog = Program().call("fit_line", x, y, epochs, 0.02, device, save="out")
    return sub.run(prog.report("out"))["values"]["out"]


@check(points=3, title="fit_line reaches the least-squares fit (lr 0.02, 1000 epochs), one loss per epoch",
       hint="full-batch: for each epoch, loss = MSELoss()(model(x), y); zero_grad; backward; step; "
       "losses.append(loss.item()) — with SGD(model.parameters(), lr=lr) and range(epochs)", timeout=60,
       title_zh="fit_line 达到最小二乘拟合（lr 0.02，1000 个 epoch），每个 epoch 一个损失值",
       hint_zh="在整个批量上训练：每个 epoch 执行 loss = MSELoss()(model(x), y); zero_grad; backward; step; "
       "losses.append(loss.item()) —— 使用 SGD(model.parameters(), lr=lr) 和 range(epochs)")
def fit_converges(sub):
    # Judged here: the returned weight and bias against the grader's own least squares, and the losses against
    # gradient descent's own trajectory on these points (expect_descent).
    for (x, y), device in [((X15, Y15), "cpu"), (random_line(sub), torch.device("cpu"))]:
        call = f"fit_line(x, y, 1000, 0.02, {device!r})"
        got = fitted(sub, x, y, 1000, device)
        best, reached = least_squares_mse(x, y), mse(got, x, y, call)
        expect_losses(got[1], 1000, call)
        expect(reached <= best * 1.01, f"{call}: the model's MSE is {reached:.5g}, not within 1% of the "
               f"least-squares MSE {best:.5g}; use the lr and epochs you are given (the notes' lr 1e-4 needs far "
               "more than 1000 epochs)")
        last = got[1][-1]
        expect(abs(last - reached) <= 0.01 * best, f"{call}: the last loss {last:.5g} should be the MSE the model "
               f"reaches ({reached:.5g}): record loss.item() of each epoch's forward pass")
        expect_descent(got[1], reached, x, y, call, far=x is not X15)
    (x, y), epochs = random_line(sub), sub.rng.randint(5, 60)  # a count that hard-coding 1000 does not meet
    call = f"fit_line(x, y, {epochs}, 0.02, 'cpu')"
    got = fitted(sub, x, y, epochs, "cpu")
    reached, losses = mse(got, x, y, call), got[1]
    expect_losses(losses, epochs, call)
    expect(losses[-1] < losses[0], f"{call}: the loss went from {losses[0]:.4g} to {losses[-1]:.4g}; it should fall")
    expect_descent(losses, reached, x, y, call, far=True)


@check(points=2, title="save_portable writes a state dict that loads strictly into a bare nn.Linear(1, 1)",
       hint="save model.module.state_dict() when model is an nn.DataParallel (else model.state_dict())",
       title_zh="save_portable 写出的 state dict 能以 strict 方式加载到裸的 nn.Linear(1, 1) 中",
       hint_zh="当 model 是 nn.DataParallel 时保存 model.module.state_dict()（否则保存 model.state_dict()）")
def saves_portable(sub):
    # Judged here: the file at the path the grader chose, read after the call, against the grader's own values.
    g = sub.generator()
    for wrap in (True, False):
        weight, bias = torch.randn(1, 1, generator=g), torch.randn(1, generator=g)
        path = sub.workdir / f"linear-{'wrapped' if wrap else 'bare'}.pth"
        what = f"the file saved from {'nn.DataParallel(nn.Linear(1, 1))' if wrap else 'a bare nn.Linear(1, 1)'}"
        model = linear(weight, bias, "DataParallel" if wrap else None)  # on CPU, DataParallel keeps device_ids == []
        sub.run(Program().call("save_portable", model, str(path)))
        expect(path.is_file(), f"save_portable wrote nothing at the path it was given ({path.name})")
        state = load_student_tensors(path, max_bytes=1 << 20, what=what)  # a Linear(1, 1) state dict: 2 KB
        expect(isinstance(state, dict), f"{what} holds a {type(state).__name__}, expected a state dict")
        prefixed = [k for k in state if str(k).startswith("module.")]
        expect(not prefixed, f"{what} has keys {prefixed}: 'module.' is DataParallel's prefix; save "
               "model.module.state_dict() (or strip it with consume_prefix_in_state_dict_if_present)")
        bare = nn.Linear(1, 1)
        try:
            bare.load_state_dict(state, strict=True)
        except Exception as exc:
            fail(f"{what} does not load strictly into nn.Linear(1, 1): {str(exc)[:300]}")
        expect(torch.equal(bare.weight.detach(), weight) and torch.equal(bare.bias.detach(), bias),
               f"{what} holds other values than the model's weight and bias")


def matches(points: list, want: list[tuple[float, float]], tol: float = 1e-4) -> bool:
    """The same set of (x, y) points, in any order."""
    got, want = sorted(map(tuple, points)), sorted(want)
    return len(got) == len(want) and all(math.dist(p, q) <= tol for p, q in zip(got, want, strict=True))


@check(points=2, title="plot_fit saves a PNG with the 15 points and the fitted line",
       hint="ax.plot(x, y, 'ro') for the data, ax.plot(x, model(x).detach(), 'b-') for the fit, then "
       "fig.savefig(path) (or plt.savefig(path))",
       title_zh="plot_fit 保存一张包含 15 个数据点和拟合直线的 PNG",
       hint_zh="用 ax.plot(x, y, 'ro') 画数据点，用 ax.plot(x, model(x).detach(), 'b-') 画拟合结果，然后调用 "
       "fig.savefig(path)（或 plt.savefig(path)）")
def plots_fit(sub):
    # The figure's data arrive from the savefig spy (the child's word); they are judged here against the grader's
    # own points and line, drawn afresh for every check. Faking them means building that figure, which is the task.
    order = sub.rng.sample(range(15), 15)
    x, y = X15[order], Y15[order]
    w, b = round(sub.rng.uniform(0.1, 0.5), 4), round(sub.rng.uniform(0.2, 1.2), 4)
    path = sub.workdir / "fit.png"
    prog = Program().call("plot_fit", x, y, linear(torch.tensor([[w]]), torch.tensor([b])), str(path),
                          spies=["savefig"])
    saves = sub.run(prog)["steps"][0]["spies"]["savefig"]
    expect(path.is_file(), "plot_fit wrote no file at the path it was given")
    import matplotlib.image
    data = read_student_file(path, max_bytes=16 << 20, what="the file plot_fit wrote")  # a plot's PNG: ~50 KB
    try:
        image = matplotlib.image.imread(io.BytesIO(data), format="png")
    except Exception as exc:
        fail(f"the file plot_fit wrote does not decode as a PNG ({type(exc).__name__}: {exc})")
    expect(image.ndim == 3 and min(image.shape[:2]) >= 50, f"the PNG is {image.shape}, too small to show a plot")
    expect(saves, "the PNG was not written by matplotlib's savefig (plt.savefig or fig.savefig)")
    fig = saves[-1]
    data = list(zip(x.flatten().tolist(), y.flatten().tolist(), strict=True))
    marked = [ln["xy"] for ln in fig["lines"] if ln["marker"] not in NO_LINE] + [d["xy"] for d in fig["dots"]]
    expect(any(matches(pts, data) for pts in marked), "the saved figure has no markers at the 15 data points: "
           "draw them with ax.plot(x, y, 'ro') or ax.scatter(x, y)")
    drawn = [ln["xy"] for ln in fig["lines"] if ln["style"] not in NO_LINE and len(ln["xy"]) >= 2]
    expect(drawn, "the saved figure has no line: draw the model's fitted values with a line style, e.g. 'b-'")
    lo, hi = min(a for a, _ in data), max(a for a, _ in data)
    fits = [pts for pts in drawn if min(pts)[0] <= lo + 1e-3 and max(pts)[0] >= hi - 1e-3  # spans the data
            and all(abs(c - (w * a + b)) <= 1e-3 * (1 + abs(c)) for a, c in pts)]  # on the model's line
    expect(fits, f"no line in the saved figure follows the model's predictions "
           f"y = {w}·x + {b} across the data's x range [{lo}, {hi}]: plot model(x) against x")
