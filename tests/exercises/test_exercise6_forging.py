"""exercise6: submissions that try to pass without training get no points.

Every DDP check ends where the grader's own replay of the same training on one process ends (DDP averages the
gradients of equal shards: large-batch SGD), and the speed check counts time only for a worker that also
trains a fresh small problem to that replay: a worker that sleeps, however well its sleeps "scale", stops there.
"""

from __future__ import annotations

from conftest import result

DDP_CHECKS = ("ddp_equals_single_process", "epochs_shuffled", "checkpoint_rank0", "two_nodes_same_result")

# The red team's worker: no process group, no training; it sleeps 1.6 s alone and 0.9 s beside a second rank
# (a "1.8x speedup"), and reports everything a trained run reports: DistributedSampler's own indices, timed
# epochs, the model's (untrained) state, a checkpoint written by rank 0 alone.
SLEEPER = '''
def worker(rank, world_size, cfg):
    model = cfg["model"]()
    sampler = DistributedSampler(cfg["dataset"], num_replicas=world_size, rank=rank, shuffle=True, seed=cfg["seed"])
    epoch_indices, epoch_seconds = [], []
    for epoch in range(cfg["epochs"]):
        sampler.set_epoch(epoch)
        epoch_indices.append(list(sampler))
        start = time.perf_counter()
        time.sleep((1.6 if world_size == 1 else 0.9) / cfg["epochs"])
        epoch_seconds.append(time.perf_counter() - start)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if rank == 0:
        torch.save(state, cfg["checkpoint"])
    return {"rank": rank, "epoch_indices": epoch_indices, "epoch_seconds": epoch_seconds, "state_dict": state}
'''

# Trains with DDP but never calls set_epoch, and reports the indices set_epoch would have given.
CLAIMS_SET_EPOCH = '''
_train = worker

def worker(rank, world_size, cfg):
    got = _train(rank, world_size, cfg)
    def order(epoch):
        s = DistributedSampler(cfg["dataset"], num_replicas=world_size, rank=rank, shuffle=True, seed=cfg["seed"])
        s.set_epoch(epoch)
        return list(s)
    return dict(got, epoch_indices=[order(e) for e in range(cfg["epochs"])])
'''


def test_a_worker_that_sleeps_instead_of_training_earns_nothing(grade_source, solution_source):
    only = ("two_workers_faster", *DDP_CHECKS)
    report = grade_source("exercise6", solution_source("exercise6") + SLEEPER, only=only)
    for name in DDP_CHECKS:
        got = result(report, name)
        assert got.status == "failed" and got.points == 0, (name, got.status, got.message)
        assert "compared with" in got.message or "checkpoint's" in got.message, (name, got.message)
    speed = result(report, "two_workers_faster")
    assert speed.points == 0 and speed.status in ("failed", "inconclusive"), (speed.status, speed.message)
    if speed.status == "failed":  # its sleeps "scale": the small problem it did not train is what stops it
        assert "counts only for a worker that trains" in speed.message, speed.message


def test_reported_shuffles_without_set_epoch_earn_nothing(grade_source, solution_source):
    source = solution_source("exercise6").replace("        sampler.set_epoch(epoch)", "        pass")
    report = grade_source("exercise6", source + CLAIMS_SET_EPOCH, only=("epochs_shuffled",))
    got = result(report, "epochs_shuffled")
    assert got.status == "failed" and "set_epoch(epoch) before the epoch's loop" in got.message, got.message
