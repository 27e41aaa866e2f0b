"""Checks for exercise6: DistributedDataParallel on two processes (gloo on CPU, nccl on two GPUs)."""

from __future__ import annotations

import statistics
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler, TensorDataset

from labkit.checks import CheckFailed, check, expect, expect_close, fail, inconclusive, load_student_tensors, probe
from labkit.i18n import _

LAUNCH_SECONDS = 60.0  # the watchdog's deadline for one launch; a healthy one takes about ten seconds
RESNET = {"n": 1024, "global_batch": 256, "base": 16, "epochs": 3}  # epoch 0 warms up; 1 and 2 are timed
SPEEDUP_PLAN = (1, 2, 2, 1)  # workers per launch, interleaved ABBA: a drift in machine speed hits both alike
SPEEDUP_TARGET = 1.4  # measured on an idle two-core machine: about 1.9x


def tiny_net(seed: int) -> nn.Sequential:
    """A BatchNorm-free float64 net whose weights depend only on `seed`, in every rank and in the grader."""
    g = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) - 0.5)
    return net


def tiny_data(seed: int, n: int) -> TensorDataset:
    """n float64 samples of 4 features with labels in 0..2."""
    g = torch.Generator().manual_seed(seed + 1)
    return TensorDataset(torch.randn(n, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (n,), generator=g))


def build_cfg(rank: int, world_size: int, seed: int, n: int, epochs: int, batch_size: int, lr: float,
              checkpoint: str) -> dict:
    """cfg as CURRICULUM.md fixes it, built inside each rank: a model factory cannot travel between processes."""
    return {"model": lambda: tiny_net(seed), "dataset": tiny_data(seed, n), "epochs": epochs,
            "batch_size": batch_size, "lr": lr, "seed": seed, "checkpoint": checkpoint}


def build_resnet_cfg(rank: int, world_size: int, seed: int, n: int, global_batch: int, base: int, epochs: int,
                     checkpoint: str) -> dict:
    """The timing problem: the grader's small ResNet-18 on synthetic 28x28 images, the global batch split evenly."""
    from labkit.lab.data import synthetic
    from labkit.lab.models import small_resnet

    return {"model": lambda: small_resnet(base, seed=seed), "dataset": synthetic(n, seed), "epochs": epochs,
            "batch_size": global_batch // world_size, "lr": 0.05, "seed": seed, "checkpoint": checkpoint}


def sampler_indices(n: int, world_size: int, rank: int, epoch: int, seed: int, shuffle: bool = True) -> list[int]:
    """What torch's DistributedSampler gives; no process group needed when num_replicas and rank are explicit."""
    s = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed)
    s.set_epoch(epoch)
    return list(s)


def reference(args: dict, world_size: int) -> dict:
    """One process trained on the same global batches: the mean of the ranks' mean losses, plain SGD."""
    net, data = tiny_net(args["seed"]), tiny_data(args["seed"], args["n"])
    x_all, y_all = data.tensors
    bs = args["batch_size"]
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


# --- probes (run in the child, next to the student's module) ---------------------------

@probe
def run_ddp(mod, world_size: int, args: dict, gpus: bool = False, nodes: int = 1) -> dict:
    """Launch the student's worker with torchrun on `world_size` ranks over `nodes` agents; return what they left."""
    from labkit.lab.launch import LaunchError, launch

    workdir = Path.cwd() / "ddp"
    args = dict(args, checkpoint=str(workdir / "checkpoint.pt"))
    try:
        done = launch(Path(mod.__file__), world_size, Path(__file__), "build_cfg", args, workdir,
                      timeout=LAUNCH_SECONDS, gpus=gpus, nodes=nodes)
    except LaunchError as exc:
        return {"error": str(exc)}
    ckpt = Path(args["checkpoint"])
    loaded, load_error = None, ""
    if ckpt.exists():
        try:  # the file is the student's: no links, no FIFOs, no compressed records inflating to gigabytes
            loaded = load_student_tensors(ckpt, max_bytes=64 << 20, what="the checkpoint file")
        except CheckFailed as exc:  # a pickled module or optimizer: weights_only refuses it
            load_error = str(exc)
    return {"error": "", "values": done.values, "saves": [r.saves for r in done.ranks],
            "checkpoint": loaded, "load_error": load_error, "exists": ckpt.exists()}


@probe
def time_ddp(mod, plan: list[int], args: dict) -> dict:
    """Launch the timing problem once per entry of `plan` (workers per launch), watching the machine's load."""
    from labkit.lab.launch import LaunchError, launch
    from labkit.lab.loadmeter import LoadMeter

    runs = []
    with LoadMeter() as meter:  # ranks that ended are still counted as ours (their parents' cutime)
        for i, world_size in enumerate(plan):
            workdir = Path.cwd() / f"speed{i}"
            try:
                done = launch(Path(mod.__file__), world_size, Path(__file__), "build_resnet_cfg",
                              dict(args, checkpoint=str(workdir / "checkpoint.pt")), workdir, timeout=LAUNCH_SECONDS)
            except LaunchError as exc:
                return {"error": f"{world_size} worker(s): {exc}"}
            runs.append({"world_size": world_size, "worker_seconds": [r.worker_seconds for r in done.ranks],
                         "epoch_seconds": [v.get("epoch_seconds") if isinstance(v, dict) else None
                                           for v in done.values]})
    return {"error": "", "runs": runs, "busy": meter.result.busy(), "load": meter.result.describe()}


def launch_two(sub, gpus: bool = False, nodes: int = 1) -> tuple[dict, dict]:
    """Two ranks on a fresh small problem: (args, probe result); a crash or hang fails the check naming the rank."""
    args = {"seed": sub.rng.randrange(2**20), "n": sub.rng.choice([61, 64, 70]), "epochs": 3,
            "batch_size": sub.rng.choice([4, 8]), "lr": 0.1}
    got = sub.probe("run_ddp", 2, args, gpus, nodes)
    if got["error"]:
        how = "two torchrun nodes" if nodes > 1 else "2 ranks"
        fail(f"worker on {how}: {got['error']}")
    for r, v in enumerate(got["values"]):
        expect(isinstance(v, dict) and all(k in v for k in ("rank", "epoch_indices", "state_dict")),
               f"rank {r}: worker must return a dict with rank, epoch_indices, epoch_seconds, state_dict")
    return args, got


def judge_equal_to_single(sub, gpus: bool, nodes: int = 1) -> None:
    args, got = launch_two(sub, gpus, nodes)
    want = reference(args, 2)
    for r, v in enumerate(got["values"]):
        state = v["state_dict"]
        expect(sorted(state) == sorted(want), f"rank {r}: state_dict keys {sorted(state)}, expected "
                                              f"{sorted(want)} (model.module.state_dict(): no 'module.' prefix)")
        for k in want:
            expect_close(state[k], want[k], f"rank {r}'s {k} after {args['epochs']} epochs compared with one process "
                         "trained on the same global batches (DDP + DistributedSampler + plain SGD)", atol=1e-5)


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
    judge_equal_to_single(sub, gpus=False)


@check(points=2, title="every epoch is shuffled differently (set_epoch)",
       hint="Call sampler.set_epoch(epoch) at the start of every epoch, before iterating the DataLoader.",
       timeout=120,
       title_zh="每一轮的打乱顺序都不同（set_epoch）",
       hint_zh="在每一轮开始时、遍历 DataLoader 之前调用 sampler.set_epoch(epoch)。")
def epochs_shuffled(sub):
    args, got = launch_two(sub)
    for r, v in enumerate(got["values"]):
        seen = [list(e) for e in v["epoch_indices"]]
        expect(len(seen) == args["epochs"], f"rank {r} reported {len(seen)} epochs of indices, expected "
                                            f"{args['epochs']}")
        expect(len({tuple(e) for e in seen}) == len(seen), _("rank {r} saw the same order in every epoch: "
               "call sampler.set_epoch(epoch) each epoch, or DistributedSampler repeats epoch 0's shuffle").format(r=r))
        for e, ix in enumerate(seen):
            want = sampler_indices(args["n"], 2, r, e, args["seed"])
            expect(ix == want, f"rank {r}, epoch {e}: saw {ix}, expected DistributedSampler's {want} "
                               "(shuffle=True, seed=cfg['seed'], set_epoch(epoch))")


@check(points=3, title="rank 0 alone writes the checkpoint once, without the 'module.' prefix",
       hint="if rank == 0: torch.save(model.module.state_dict(), cfg['checkpoint']); then dist.barrier().",
       timeout=120,
       title_zh="只有 rank 0 写入检查点，只写一次，且不带 'module.' 前缀",
       hint_zh="if rank == 0: torch.save(model.module.state_dict(), cfg['checkpoint'])；然后调用 dist.barrier()。")
def checkpoint_rank0(sub):
    args, got = launch_two(sub)
    saves = got["saves"]
    expect(saves[1] == 0, _("rank 1 called torch.save {n} time(s): every rank writes the checkpoint; only rank 0 "
                            "may (if rank == 0: ...), or the ranks race on one file").format(n=saves[1]))
    expect(saves[0] == 1, f"rank 0 called torch.save {saves[0]} time(s), expected exactly once")
    expect(got["exists"], "no checkpoint at cfg['checkpoint'] after the launch")
    expect(not got["load_error"], f"the checkpoint does not load with weights_only=True ({got['load_error']}): "
                                  "save a state_dict, not the model")
    ckpt = got["checkpoint"]
    expect(isinstance(ckpt, dict), "the checkpoint should be a state_dict")
    prefixed = [k for k in ckpt if str(k).startswith("module.")]
    expect(not prefixed, _("the checkpoint keeps the 'module.' prefix ({keys}...): save model.module.state_dict(), "
                           "so a bare model loads it").format(keys=prefixed[:2]))
    bare = tiny_net(0)
    try:
        bare.load_state_dict(ckpt)
    except RuntimeError as exc:
        fail(f"a bare model cannot load the checkpoint: {exc}")
    want = reference(args, 2)
    for k in want:
        expect_close(ckpt[k], want[k], f"checkpoint's {k}", atol=1e-5)


@check(points=2, title="two ranks on two GPUs (nccl, one GPU per rank) end equal to one process", needs_gpus=2,
       hint="torch.cuda.set_device(local_rank) before init_process_group('nccl'); DDP(model, device_ids=[rank]).",
       timeout=120,
       title_zh="两块 GPU 上的两个 rank（nccl，每个 rank 一块 GPU）训练结束时与单个进程结果相同",
       hint_zh="在 init_process_group('nccl') 之前调用 torch.cuda.set_device(local_rank)；"
       "DDP(model, device_ids=[rank])。")
def ddp_nccl(sub):
    judge_equal_to_single(sub, gpus=True)


@check(points=2, title="the same result when launched as two torchrun nodes (c10d rendezvous, 127.0.0.1)",
       hint="Use the rank and world_size worker receives (torchrun's RANK and WORLD_SIZE): LOCAL_RANK is the rank "
            "within one node, 0 on both nodes here.", timeout=120,
       title_zh="以两个 torchrun 节点启动时（c10d rendezvous，127.0.0.1）结果相同",
       hint_zh="使用 worker 接收到的 rank 和 world_size（即 torchrun 的 RANK 和 WORLD_SIZE）："
       "LOCAL_RANK 是节点内的 rank，在这里两个节点上都是 0。")
def two_nodes_same_result(sub):
    judge_equal_to_single(sub, gpus=False, nodes=2)


def epoch_times(run: dict, epochs: int) -> list[float]:
    """Per timed epoch, the slowest rank's seconds (an epoch ends when every rank has ended it)."""
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
    args = dict(RESNET, seed=sub.rng.randrange(2**20))
    got = sub.probe("time_ddp", list(SPEEDUP_PLAN), args)
    if got["error"]:
        fail(f"timing launch with {got['error']}")
    by = {1: [], 2: []}
    launcher = {1: [], 2: []}
    for run in got["runs"]:
        by[run["world_size"]] += epoch_times(run, args["epochs"])
        launcher[run["world_size"]].append(max(run["worker_seconds"]))
    one, two = statistics.median(by[1]), statistics.median(by[2])
    speedup, wall = one / two, statistics.median(launcher[1]) / statistics.median(launcher[2])
    measured = (f"one worker {one:.2f} s per epoch, two workers {two:.2f} s: {speedup:.2f}x "
                f"(median of {len(by[1])} epochs each, warm-up excluded)")
    expect(speedup <= 1.5 * wall, f"{measured}, but the workers' run times, on the launcher's clock, give only "
           f"{wall:.2f}x: epoch_seconds must be each epoch's real wall time, not divided or estimated")
    if speedup < SPEEDUP_TARGET:
        if got["busy"]:
            inconclusive(f"{measured}, below {SPEEDUP_TARGET}x, but the machine was busy: {got['load']}; "
                         "check again when nothing else runs")
        fail(f"{measured}; expected at least {SPEEDUP_TARGET}x. Does each rank train only its shard "
             "(DistributedSampler) with batch_size=cfg['batch_size'] (already the per-rank share)?")
    sub.note(f"{measured}; efficiency {speedup / 2:.0%}")
