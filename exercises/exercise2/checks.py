"""Checks for exercise2: DataParallel's split, the wrapper, the notes' linear regression, saving and plotting."""

from __future__ import annotations

import io
import math
import os

import torch
from torch import nn

from labkit.checks import check, expect, expect_equal, fail, load_student_tensors, probe, read_student_file
from labkit.i18n import _

# References taken when the checks module is imported, before the student's module is.
MODULE, DATA_PARALLEL = nn.Module, nn.DataParallel

# The course notes' 15-point linear regression.
X15 = torch.tensor([3.3, 4.4, 5.5, 6.71, 6.93, 4.168, 9.779, 6.182, 7.59, 2.167, 7.042, 10.791, 5.313, 7.997, 3.1])
Y15 = torch.tensor([1.7, 2.76, 2.09, 3.19, 1.694, 1.573, 3.366, 2.596, 2.53, 1.221, 2.827, 3.465, 1.65, 2.904, 1.3])
X15, Y15 = X15.reshape(15, 1), Y15.reshape(15, 1)  # (N, 1), as nn.Linear(1, 1) takes them
NO_LINE = ("None", "none", "", " ")  # what matplotlib reports for "no marker" / "no line style"
SEEN: list[list] = []  # (batch size, device) of every input a SizeRecorder replica saw


class SizeRecorder(nn.Module):
    """The tutorial's Model (input size 5, output size 2), recording each input it sees instead of printing it."""

    def __init__(self, input_size: int = 5, output_size: int = 2):
        super().__init__()
        self.fc = nn.Linear(input_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN.append([int(x.shape[0]), str(x.device)])
        return self.fc(x)


def chunk_sizes(batch: int, n: int) -> list[int]:
    """What DataParallel's scatter does: tensor.chunk(n) along the batch dimension."""
    return [len(c) for c in torch.arange(batch).chunk(n)]


def random_line(sub) -> tuple[torch.Tensor, torch.Tensor]:
    """The notes' x values, jittered, with y from a random line far from the default initialisation, plus noise."""
    g = sub.generator()
    x = X15 + (torch.rand(15, 1, generator=g) - 0.5) * 0.4
    slope, intercept = sub.rng.uniform(-0.5, 0.5), sub.rng.choice([-1, 1]) * sub.rng.uniform(2.0, 4.0)
    return x, slope * x + intercept + 0.4 * torch.randn(15, 1, generator=g)


def least_squares_mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """The best MSE any line reaches on (x, y), computed in float64."""
    a = torch.cat([x, torch.ones_like(x)], dim=1).double()
    return ((a @ torch.linalg.lstsq(a, y.double()).solution - y.double()) ** 2).mean().item()


# --- probes (run in the child, next to the student's module) ---------------------------
@probe
def wrapped(mod, *args):
    """What wrap_data_parallel(SizeRecorder(), *args) returned: its type and where its parameters are."""
    out = mod.wrap_data_parallel(SizeRecorder(), *args)
    params = out.parameters() if isinstance(out, MODULE) else []
    return {"type": type(out).__name__, "is_dp": isinstance(out, DATA_PARALLEL),
            "devices": sorted({str(p.device) for p in params})}


@probe
def replica_inputs(mod, data_size, batch_size):
    """Feed the tutorial's 100 samples in batches of 30 through the wrapped model; record what each replica saw."""
    net = mod.wrap_data_parallel(SizeRecorder())
    rows = []
    for batch in torch.randn(data_size, 5).split(batch_size):
        SEEN.clear()
        out = net(batch.to("cuda:0"))
        seen = sorted(SEEN, key=lambda r: int(r[1].rsplit(":", 1)[-1]))  # replica i runs on cuda:i
        rows.append({"seen": seen, "out": [list(out.shape), str(out.device)]})
    return rows


@probe
def fitted(mod, x, y, epochs, lr, device):
    """fit_line's model as its named parameters, and its losses."""
    out = mod.fit_line(x, y, epochs, lr, device)
    ok = isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], MODULE)
    return {"ok": ok, "type": type(out).__name__, "losses": out[1] if ok else None,
            "params": [[n, p.detach()] for n, p in out[0].named_parameters()] if ok else []}


@probe
def saved(mod, weight, bias, path, wrap):
    """save_portable on an nn.Linear(1, 1) with the grader's values, bare or inside nn.DataParallel."""
    net = nn.Linear(1, 1)
    with torch.no_grad():
        net.weight.copy_(weight)
        net.bias.copy_(bias)
    mod.save_portable(DATA_PARALLEL(net) if wrap else net, path)  # on CPU, DataParallel keeps device_ids == []


@probe
def plotted(mod, x, y, weight, bias, path):
    """plot_fit with a spy on Figure.savefig that records the figure's lines and scatters as they are saved."""
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.getcwd(), ".matplotlib"))
    import matplotlib
    matplotlib.use("Agg")  # no screen in the grader
    from matplotlib.figure import Figure
    real_savefig, saves = Figure.savefig, []

    def xy(points) -> list:
        return [[float(a), float(b)] for a, b in list(points)[:1000]]

    def spy(fig, *args, **kwargs):
        lines = [{"xy": xy(ln.get_xydata()), "marker": str(ln.get_marker()), "style": str(ln.get_linestyle())}
                 for ax in fig.axes for ln in ax.get_lines() if ln.get_visible()]
        dots = [{"xy": xy(c.get_offsets())} for ax in fig.axes for c in ax.collections if c.get_visible()]
        saves.append({"lines": lines, "dots": dots})
        return real_savefig(fig, *args, **kwargs)

    net = nn.Linear(1, 1)
    with torch.no_grad():
        net.weight.fill_(weight)
        net.bias.fill_(bias)
    Figure.savefig = spy
    try:
        mod.plot_fit(x, y, net, path)
    finally:
        Figure.savefig = real_savefig
    return saves


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
        got = sub.probe("wrapped", *args)
        call = f"wrap_data_parallel(model{''.join(f', {a!r}' for a in args)}) with {sub.gpus} CUDA device(s)"
        expect(not got.get("is_dp"), call + _(" returned a DataParallel: with fewer than two GPUs the wrapper does no "
               "parallel work and only adds a 'module.' prefix to every state-dict key; return the bare model"))
        expect(got["type"] == "SizeRecorder", f"{call} returned a {got['type']}, expected the model itself")
        expect_equal(got["devices"], [primary], f"{call}: devices of the parameters")


@check(points=2, title="the wrapped model splits a batch of 30 into 15 and 15 on two GPUs", needs_gpus=2,
       hint="nn.DataParallel(model.to('cuda:0'), device_ids=...) with every visible GPU when device_ids is None",
       title_zh="被包装的模型在两块 GPU 上把大小为 30 的批量切分为 15 和 15",
       hint_zh="nn.DataParallel(model.to('cuda:0'), device_ids=...)，device_ids 为 None 时使用所有可见的 GPU")
def wrap_splits(sub):
    n = sub.gpus
    rows = sub.probe("replica_inputs", 100, 30)
    for batch, row in zip([30, 30, 30, 10], rows, strict=True):
        want = [[size, f"cuda:{i}"] for i, size in enumerate(chunk_sizes(batch, n))]
        expect(row["seen"] == want, f"a batch of {batch} on {n} GPUs: the replicas saw {row['seen']}, "
               f"expected {want} ([size, device] per replica)")
        expect_equal(row["out"], [[batch, 2], "cuda:0"], f"the gathered output of a batch of {batch}")
        expect_equal(sub.call("replica_batch_sizes", batch, n), chunk_sizes(batch, n),
                     f"replica_batch_sizes({batch}, {n}) next to what DataParallel did")


def mse(got: dict, x: torch.Tensor, y: torch.Tensor, call: str) -> float:
    """The MSE of the returned model, computed here from its weight and bias (its only parameters)."""
    expect(got["ok"], f"{call} should return (model, losses), got {got.get('type')}")
    params = {name.rsplit(".", 1)[-1]: t for name, t in got["params"]}
    expect(len(got["params"]) == 2 and set(params) == {"weight", "bias"} and all(
        t.numel() == 1 for t in params.values()), f"{call}: the model should be an nn.Linear(1, 1) (one weight, "
           f"one bias), got parameters {[(n, tuple(t.shape)) for n, t in got['params']]}")
    w, b = params["weight"].double().item(), params["bias"].double().item()
    return ((w * x.double() + b - y.double()) ** 2).mean().item()


def expect_losses(losses: object, epochs: int, call: str) -> None:
    expect(type(losses) is list, f"{call}: losses should be a list, got {type(losses).__name__}")
    expect(len(losses) == epochs, f"{call}: expected {epochs} losses (one per epoch), got {len(losses)}")
    odd = [type(v).__name__ for v in losses if type(v) is not float]
    expect(not odd, f"{call}: losses should be Python floats (loss.item()), got {odd[0] if odd else ''}; keeping "
           "tensors keeps every epoch's autograd graph alive")


@check(points=3, title="fit_line reaches the least-squares fit (lr 0.02, 1000 epochs), one loss per epoch",
       hint="full-batch: for each epoch, loss = MSELoss()(model(x), y); zero_grad; backward; step; "
       "losses.append(loss.item()) — with SGD(model.parameters(), lr=lr) and range(epochs)", timeout=60,
       title_zh="fit_line 达到最小二乘拟合（lr 0.02，1000 个 epoch），每个 epoch 一个损失值",
       hint_zh="在整个批量上训练：每个 epoch 执行 loss = MSELoss()(model(x), y); zero_grad; backward; step; "
       "losses.append(loss.item()) —— 使用 SGD(model.parameters(), lr=lr) 和 range(epochs)")
def fit_converges(sub):
    for (x, y), device in [((X15, Y15), "cpu"), (random_line(sub), torch.device("cpu"))]:
        call = f"fit_line(x, y, 1000, 0.02, {device!r})"
        got = sub.probe("fitted", x, y, 1000, 0.02, device)
        best, reached = least_squares_mse(x, y), mse(got, x, y, call)
        expect_losses(got["losses"], 1000, call)
        expect(reached <= best * 1.01, f"{call}: the model's MSE is {reached:.5g}, not within 1% of the "
               f"least-squares MSE {best:.5g}; use the lr and epochs you are given (the notes' lr 1e-4 needs far "
               "more than 1000 epochs)")
        last = got["losses"][-1]
        expect(abs(last - reached) <= 0.01 * best, f"{call}: the last loss {last:.5g} should be the MSE the model "
               f"reaches ({reached:.5g}): record loss.item() of each epoch's forward pass")
    (x, y), epochs = random_line(sub), sub.rng.randint(5, 60)  # a count that hard-coding 1000 does not meet
    call = f"fit_line(x, y, {epochs}, 0.02, 'cpu')"
    got = sub.probe("fitted", x, y, epochs, 0.02, "cpu")
    losses = got["losses"]
    expect_losses(losses, epochs, call)
    expect(losses[-1] < losses[0], f"{call}: the loss went from {losses[0]:.4g} to {losses[-1]:.4g}; it should fall")
    expect(mse(got, x, y, call) <= losses[-1] * 1.001 + 1e-9, f"{call}: the returned model is worse than the last "
           "loss says; return the model you trained")


@check(points=2, title="save_portable writes a state dict that loads strictly into a bare nn.Linear(1, 1)",
       hint="save model.module.state_dict() when model is an nn.DataParallel (else model.state_dict())",
       title_zh="save_portable 写出的 state dict 能以 strict 方式加载到裸的 nn.Linear(1, 1) 中",
       hint_zh="当 model 是 nn.DataParallel 时保存 model.module.state_dict()（否则保存 model.state_dict()）")
def saves_portable(sub):
    g = sub.generator()
    for wrap in (True, False):
        weight, bias = torch.randn(1, 1, generator=g), torch.randn(1, generator=g)
        path = sub.workdir / f"linear-{'wrapped' if wrap else 'bare'}.pth"
        what = f"the file saved from {'nn.DataParallel(nn.Linear(1, 1))' if wrap else 'a bare nn.Linear(1, 1)'}"
        sub.probe("saved", weight, bias, str(path), wrap)
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
    order = sub.rng.sample(range(15), 15)
    x, y = X15[order], Y15[order]
    w, b = round(sub.rng.uniform(0.1, 0.5), 4), round(sub.rng.uniform(0.2, 1.2), 4)
    path = sub.workdir / "fit.png"
    saves = sub.probe("plotted", x, y, w, b, str(path))
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
