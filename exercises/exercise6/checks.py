"""Checks for exercise6: DistributedDataParallel on two processes (gloo on CPU, nccl on two GPUs).

Each launch is a program step run in the student's sandbox (Program.launch): torchrun starts the student's
`worker` on every rank with a cfg that the rank builds from a recipe (plain data: the grader's tiny net and
its data, or labkit's small ResNet on synthetic images). What the ranks and the launcher report comes from
the student's processes, so the points come from what the grader recomputes here: the final parameters
against its own replay of the same training on one process, the checkpoint it reads itself, its own clock.
One two-rank launch (`two_ranks`, @shared) feeds the four checks that judge a plain two-rank run.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

from labkit.checks import CheckFailed, check, expect, expect_close, fail, inconclusive, load_student_tensors, shared
from labkit.i18n import _
from labkit.inputs import build
from labkit.lab.loadmeter import LoadMeter
from labkit.lab.scaling import PROBLEM, resnet_cfg
from labkit.recipe import Program, dataset, factory, module

LAUNCH_SECONDS = 60.0  # the watchdog's deadline for one launch; a healthy one takes about ten seconds
RESNET = dict(PROBLEM, epochs=3)  # the timing problem, as `labkit bench exercise6` runs it
SPEEDUP_PLAN = (1, 2, 2, 1)  # workers per launch, interleaved ABBA: a drift in machine speed hits both alike
SPEEDUP_TARGET = 1.4  # measured on an idle two-core machine: about 1.85x on whole training runs
clock = time.perf_counter  # the grader's own clock (the tests inject one)


# --- the small problem: a cfg recipe, and the grader's replay of it -----------------------------

def tiny_cfg(args: dict, checkpoint: str) -> dict:
    """cfg as the README fixes it, as a recipe each rank builds: a BatchNorm-free float64 net and its data."""
    g = torch.Generator().manual_seed(args["seed"] + 1)
    x = torch.randn(args["n"], 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (args["n"],), generator=g)
    net = module([["Linear", 4, 8], ["Tanh"], ["Linear", 8, 3]], seed=args["seed"], dtype="float64")
    return {"model": factory(net), "dataset": dataset("tensors", tensors=[x, y]), "epochs": args["epochs"],
            "batch_size": args["batch_size"], "lr": args["lr"], "seed": args["seed"], "checkpoint": checkpoint}


def sampler_indices(n: int, world_size: int, rank: int, epoch: int, seed: int, shuffle: bool = True) -> list[int]:
    """What torch's DistributedSampler gives; no process group needed when num_replicas and rank are explicit."""
    s = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
    s.set_epoch(epoch)
    return list(s)


def reference(args: dict, world_size: int) -> dict:
    """One process trained on the same global batches: the mean of the ranks' mean losses, plain SGD.

    DDP averages the gradients of equal shards, so this is where every rank must end (the path, proven)."""
    cfg = build(tiny_cfg(args, ""))  # the very model and data the ranks built
    net, (x_all, y_all), bs = cfg["model"](), cfg["dataset"].tensors, args["batch_size"]
    for epoch in range(args["epochs"]):
        per_rank = [sampler_indices(args["n"], world_size, r, epoch, args["seed"]) for r in range(world_size)]
        for start in range(0, len(per_rank[0]), bs):
            net.zero_grad()
            losses = [F.cross_entropy(net(x_all[ix[start:start + bs]]), y_all[ix[start:start + bs]]) for ix in per_rank]
            (sum(losses) / world_size).backward()
            with torch.no_grad():
                for p in net.parameters():
                    p -= args["lr"] * p.grad
    return net.state_dict()


def launch_two(sub, gpus: bool = False, nodes: int = 1) -> tuple[dict, dict, object]:
    """Two ranks on a fresh small problem: (args, the launch's record, the checkpoint's path for the grader)."""
    args = {"seed": sub.rng.randrange(2**20), "n": sub.rng.choice([61, 64, 70]), "epochs": 3,
            "batch_size": sub.rng.choice([4, 8]), "lr": 0.1}
    folder = f"run{sub.rng.randrange(16**6):06x}"  # a name that says nothing of the check running
    checkpoint = sub.workdir / f"{folder}.pt"  # in the grader's own folder: no link on the way to it
    prog = Program().launch("worker", 2, tiny_cfg(args, str(checkpoint)), folder=folder, nodes=nodes, gpus=gpus,
                            timeout=LAUNCH_SECONDS)
    got = sub.run(prog)["steps"][0]
    if got["error"]:
        how = "two torchrun nodes" if nodes > 1 else "2 ranks on 2 GPUs" if gpus else "2 ranks"
        advice = ("; each rank needs its own GPU: torch.cuda.set_device(local_rank) before init_process_group, "
                  "local_rank = int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()") if gpus else ""
        fail(f"worker on {how}: {got['error']}{advice}")
    for r, v in enumerate(got["values"]):
        expect(isinstance(v, dict) and all(k in v for k in ("rank", "epoch_indices", "state_dict")),
               f"rank {r}: worker must return a dict with rank, epoch_indices, epoch_seconds, state_dict")
    return args, got, checkpoint


def judge_states(args: dict, got: dict) -> None:
    """Every rank's returned state equals the grader's replay of the same training on one process: the data proves
    the path (shards, averaging)."""
    want = reference(args, 2)
    for r, v in enumerate(got["values"]):
        state = v["state_dict"]
        expect(isinstance(state, dict) and sorted(state) == sorted(want),
               f"rank {r}: state_dict keys {sorted(state) if isinstance(state, dict) else state!r}, expected "
               f"{sorted(want)} (model.module.state_dict(): no 'module.' prefix)")
        for k in want:
            expect_close(state[k], want[k], f"rank {r}'s {k} after {args['epochs']} epochs compared with one process "
                         "trained on the same global batches (DDP + DistributedSampler + plain SGD)", atol=1e-5)


@shared
def two_ranks(sub) -> dict:
    """One launch of two ranks (gloo) on a fresh small problem that four checks judge, each its own part; the
    checkpoint is read now, while the folder it was written to exists (labkit.checks.shared)."""
    args, got, path = launch_two(sub)
    try:
        return {"args": args, "got": got, "checkpoint": load_student_tensors(
            path, max_bytes=64 << 20, what="the checkpoint at cfg['checkpoint']"), "checkpoint_problem": ""}
    except CheckFailed as exc:
        return {"args": args, "got": got, "checkpoint": None, "checkpoint_problem": str(exc)}


def small_run(sub, what: str = "") -> dict:
    """The shared two-rank launch; a failure of it worded for the check asking (`what` it could not judge)."""
    try:
        return sub.shared(two_ranks)
    except CheckFailed as exc:
        fail(f"{what}: {exc}" if what else str(exc))


@check(points=3, title="shard gives the indices DistributedSampler gives (padding included)",
       hint="torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)); pad by wrapping the list "
            "to a multiple of world_size; then indices[rank::world_size].",
       title_zh="shard 给出与 DistributedSampler 相同的索引（包括补齐）",
       hint_zh="torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))；"
       "循环回绕地补齐列表，直到长度是 world_size 的倍数；然后取 indices[rank::world_size]。")
def shard_matches_sampler(sub):
    cases = [(10, 3, 2, 0, 0, True), (10, 3, 0, 1, 5, False), (7, 4, 3, 2, 1, True), (2, 3, 2, 0, 0, True)]
    cases += [(sub.rng.randint(1, 50), ws, sub.rng.randrange(ws), sub.rng.randrange(5), sub.rng.randrange(99),
               sub.rng.random() < 0.8) for ws in (sub.rng.randint(2, 8) for _ in range(6))]
    for n, ws, rank, epoch, seed, shuffle in cases:
        got, want = sub.call("shard", n, ws, rank, epoch, seed=seed, shuffle=shuffle), sampler_indices(
            n, ws, rank, epoch, seed, shuffle)
        call = f"shard(n={n}, world_size={ws}, rank={rank}, epoch={epoch}, seed={seed}, shuffle={shuffle})"
        if isinstance(got, list) and len(got) < len(want):
            fail(call + _(" returned {got} indices, expected {want}: DistributedSampler pads by wrapping around so "
                          "that every rank gets ceil(n / world_size)").format(got=len(got), want=len(want)))
        expect(got == want, f"{call} returned {got}, expected {want}")


@check(points=4, title="two ranks (gloo) end equal to one process trained on the same global batches",
       hint="init_process_group('gloo'), DDP(cfg['model']()), DataLoader with a DistributedSampler, SGD(lr), "
            "cross_entropy; return model.module.state_dict().", timeout=120,
       title_zh="两个 rank（gloo）训练结束时与在相同全局批次上训练的单个进程结果相同",
       hint_zh="init_process_group('gloo')、DDP(cfg['model']())、带 DistributedSampler 的 DataLoader、"
       "SGD(lr)、cross_entropy；返回 model.module.state_dict()。")
def ddp_equals_single_process(sub):
    run = small_run(sub)
    judge_states(run["args"], run["got"])


@check(points=2, title="every epoch is shuffled differently (set_epoch)",
       hint="Call sampler.set_epoch(epoch) at the start of every epoch, before iterating the DataLoader.", timeout=120,
       title_zh="每一轮的打乱顺序都不同（set_epoch）",
       hint_zh="在每一轮开始时、遍历 DataLoader 之前调用 sampler.set_epoch(epoch)。")
def epochs_shuffled(sub):
    run = small_run(sub, "no epochs to judge")
    args, got = run["args"], run["got"]
    for r, v in enumerate(got["values"]):  # what the ranks say they saw: it explains; the replay below proves
        seen = v["epoch_indices"]
        expect(isinstance(seen, list) and all(isinstance(e, list) for e in seen),
               f"rank {r}: epoch_indices should be a list per epoch (list(sampler)), got {str(seen)[:80]}")
        expect(len(seen) == args["epochs"], f"rank {r} reported {len(seen)} epochs of indices, expected "
                                            f"{args['epochs']}")
        expect(len({tuple(e) for e in seen}) == len(seen), _("rank {r} saw the same order in every epoch: "
               "call sampler.set_epoch(epoch) each epoch, or DistributedSampler repeats epoch 0's shuffle").format(r=r))
        for e, ix in enumerate(seen):
            want = sampler_indices(args["n"], 2, r, e, args["seed"])
            expect(ix == want, f"rank {r}, epoch {e}: saw {ix}, expected DistributedSampler's {want} "
                               "(shuffle=True, seed=cfg['seed'], set_epoch(epoch))")
    want = reference(args, 2)  # trained on each epoch's own shuffle, or the weights end elsewhere
    for r, v in enumerate(got["values"]):
        state = v["state_dict"] if isinstance(v["state_dict"], dict) else {}
        for k in want:
            expect(k in state, f"rank {r}'s state_dict has no {k!r}")
            expect_close(state[k], want[k], f"rank {r}'s {k} compared with training on DistributedSampler's "
                         "order of each epoch (set_epoch(epoch) before the epoch's loop)", atol=1e-5)


@check(points=3, title="rank 0 alone writes the checkpoint once, without the 'module.' prefix",
       hint="if rank == 0: torch.save(model.module.state_dict(), cfg['checkpoint']); then dist.barrier().", timeout=120,
       title_zh="只有 rank 0 写入检查点，只写一次，且不带 'module.' 前缀",
       hint_zh="if rank == 0: torch.save(model.module.state_dict(), cfg['checkpoint'])；然后调用 dist.barrier()。")
def checkpoint_rank0(sub):
    run = small_run(sub, "no checkpoint to judge")
    args, got = run["args"], run["got"]
    # Counted by labkit inside each rank (a fact only the ranks see): making it true is one honest line
    # (`if rank == 0:`); hiding a second writer means saving under another name on purpose, and gains nothing:
    # the file itself is read by the grader and compared with its own replay.
    saves = got["saves"]
    expect(saves[1] == 0, _("rank 1 called torch.save {n} time(s): every rank writes the checkpoint; only rank 0 "
                            "may (if rank == 0: ...), or the ranks race on one file").format(n=saves[1]))
    expect(saves[0] == 1, f"rank 0 called torch.save {saves[0]} time(s), expected exactly once")
    expect(not run["checkpoint_problem"], run["checkpoint_problem"])
    ckpt = run["checkpoint"]
    expect(isinstance(ckpt, dict), "the checkpoint should be a state_dict")
    prefixed = [k for k in ckpt if str(k).startswith("module.")]
    expect(not prefixed, _("the checkpoint keeps the 'module.' prefix ({keys}...): save model.module.state_dict(), "
                           "so a bare model loads it").format(keys=prefixed[:2]))
    bare = build(tiny_cfg(args, ""))["model"]()
    try:
        bare.load_state_dict(ckpt)
    except (RuntimeError, TypeError, AttributeError) as exc:
        fail(f"a bare model cannot load the checkpoint: {exc}")
    want = reference(args, 2)
    for k in want:
        expect_close(ckpt[k], want[k], f"checkpoint's {k}", atol=1e-5)


@check(points=2, title="two ranks on two GPUs (nccl, one GPU per rank) end equal to one process", needs_gpus=2,
       hint="torch.cuda.set_device(local_rank) before init_process_group('nccl'), with local_rank = "
       "int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count() (torchrun sets LOCAL_RANK, mp.spawn "
       "does not); DDP(model, device_ids=[local_rank]).", timeout=120,
       title_zh="两块 GPU 上的两个 rank（nccl，每个 rank 一块 GPU）训练结束时与单个进程结果相同",
       hint_zh="在 init_process_group('nccl') 之前调用 torch.cuda.set_device(local_rank)，其中 local_rank = "
       "int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()（torchrun 会设置 LOCAL_RANK，"
       "mp.spawn 不会）；DDP(model, device_ids=[local_rank])。")
def ddp_nccl(sub):
    judge_states(*launch_two(sub, gpus=True)[:2])


@check(points=2, title="the same result when launched as two torchrun nodes (c10d rendezvous, 127.0.0.1)",
       hint="Use the rank and world_size worker receives (torchrun's RANK and WORLD_SIZE): LOCAL_RANK is the rank "
            "within one node, 0 on both nodes here; it only picks the GPU.", timeout=120,
       title_zh="以两个 torchrun 节点启动时（c10d rendezvous，127.0.0.1）结果相同",
       hint_zh="使用 worker 接收到的 rank 和 world_size（即 torchrun 的 RANK 和 WORLD_SIZE）："
       "LOCAL_RANK 是节点内的 rank，在这里两个节点上都是 0；它只用来选择 GPU。")
def two_nodes_same_result(sub):
    judge_states(*launch_two(sub, nodes=2)[:2])


# --- the speed check ----------------------------------------------------------------------------

def timed_launch(sub, world_size: int) -> dict:
    """One launch of the ResNet problem (a fresh seed each: nothing to cache between launches), timed here."""
    folder = f"run{sub.rng.randrange(16**6):06x}"
    cfg = resnet_cfg(world_size, **RESNET, seed=sub.rng.randrange(2**20), checkpoint=str(sub.workdir / f"{folder}.pt"))
    start = clock()
    got = sub.run(Program().launch("worker", world_size, cfg, folder=folder, timeout=LAUNCH_SECONDS))["steps"][0]
    wall = clock() - start
    if got["error"]:
        fail(f"timing launch with {world_size} worker(s): {got['error']}")
    seconds = [float(s) for s in got["worker_seconds"]]
    # The launcher runs in the student's process too: what it says is bounded by the grader's own clock.
    expect(len(seconds) == world_size and all(0 < s <= wall for s in seconds),
           f"{world_size} worker(s): the launcher reported {seconds} s of work in a launch that took {wall:.1f} s on "
           "the grader's clock")
    return {"world_size": world_size, "worker_seconds": seconds, "wall": wall,
            "epoch_seconds": [v.get("epoch_seconds") if isinstance(v, dict) else None for v in got["values"]]}


def epoch_times(run: dict, epochs: int) -> list[float]:
    """Per epoch after the first, the slowest rank's seconds as the worker reported them (explains, never decides)."""
    for rank, seconds in enumerate(run["epoch_seconds"]):
        ok = isinstance(seconds, list) and len(seconds) == epochs and all(
            isinstance(s, (int, float)) and s > 0 for s in seconds)
        expect(ok, f"{run['world_size']} worker(s), rank {rank}: epoch_seconds should hold {epochs} positive "
                   f"numbers (time.perf_counter() around each epoch's loop), got {seconds!r}")
        spent = sum(seconds)
        expect(spent <= run["worker_seconds"][rank] + 0.3, f"rank {rank}'s epoch_seconds add up to {spent:.1f} s, "
               f"but its worker ran {run['worker_seconds'][rank]:.1f} s by the launcher's clock")
    return [max(s[e] for s in run["epoch_seconds"]) for e in range(1, epochs)]


@check(points=3, title="two one-thread workers train the small ResNet at least 1.4x faster than one",
       hint="Each rank must train only its shard (DistributedSampler) with the per-rank cfg['batch_size'], and "
            "epoch_seconds must time the epoch's loop alone.", timeout=300,
       title_zh="两个单线程 worker 训练小型 ResNet 的速度至少是一个 worker 的 1.4x",
       hint_zh="每个 rank 只能用每个 rank 的 cfg['batch_size'] 训练属于自己的分片（DistributedSampler），"
       "并且 epoch_seconds 只能计时该轮的循环本身。")
def two_workers_faster(sub):
    with LoadMeter(trees=[sub.pid]) as meter:  # the submission's own processes count as ours, never as "busy"
        runs = [timed_launch(sub, w) for w in SPEEDUP_PLAN]
    # The verdict's clock: each launch's training on the launcher's clock (start-up excluded, the slowest rank's).
    by = {w: [max(r["worker_seconds"]) for r in runs if r["world_size"] == w] for w in (1, 2)}
    epochs = {w: [t for r in runs if r["world_size"] == w for t in epoch_times(r, RESNET["epochs"])] for w in (1, 2)}
    one, two = statistics.median(by[1]), statistics.median(by[2])
    speedup, reported = one / two, statistics.median(epochs[1]) / statistics.median(epochs[2])
    measured = (f"one worker trained in {one:.2f} s, two workers in {two:.2f} s: {speedup:.2f}x (median of "
                f"{len(by[1])} launches each, on the launcher's clock, start-up excluded)")
    expect(reported <= 1.5 * speedup, f"{measured}, but your epoch_seconds give {reported:.2f}x: epoch_seconds "
           "must be each epoch's real wall time, not divided or estimated")
    if speedup < SPEEDUP_TARGET:
        if meter.result.busy():
            inconclusive(f"{measured}, below {SPEEDUP_TARGET}x, but the machine was busy: {meter.result.describe()}; "
                         "check again when nothing else runs")
        fail(f"{measured}; expected at least {SPEEDUP_TARGET}x. Does each rank train only its shard "
             "(DistributedSampler) with batch_size=cfg['batch_size'] (already the per-rank share)?")
    # Time counts only for a worker that trains: on the small problem (the launch the other checks judge) the
    # ranks must end where the grader's replay ends. A worker that sleeps instead of training stops here.
    try:
        run = small_run(sub)
        judge_states(run["args"], run["got"])
    except CheckFailed as exc:
        fail(f"{measured}, but a speedup counts only for a worker that trains: {exc}")
    sub.note(f"{measured}; efficiency {speedup / 2:.0%}")
