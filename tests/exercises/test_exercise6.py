"""exercise6: classic DDP mistakes fail with a message that names them."""

from __future__ import annotations

import pytest

from conftest import result

NO_PADDING = (
    "def shard(n, world_size, rank, epoch, seed=0, shuffle=True):\n"
    "    g = torch.Generator().manual_seed(seed + epoch)\n"
    "    indices = torch.randperm(n, generator=g).tolist() if shuffle else list(range(n))\n"
    "    return indices[rank::world_size]\n")

# (old text in the solution's worker, new text): the edited worker is appended, so it replaces the right one
WORKER_EDITS = {
    "no_set_epoch": ("        sampler.set_epoch(epoch)", "        pass"),
    "every_rank_writes_checkpoint": ("    if rank == 0:\n        torch.save", "    if rank >= 0:\n        torch.save"),
    "checkpoint_keeps_module_prefix": ('torch.save(state, cfg["checkpoint"])',
                                      'torch.save(model.state_dict(), cfg["checkpoint"])'),
    "rank_1_crashes": ("    cuda = torch.cuda.is_available()\n",
                       "    assert rank == 0, 'only rank 0 is ready'\n    cuda = torch.cuda.is_available()\n"),
    "local_rank_as_rank": ("rank=rank, world_size", "rank=int(__import__('os').environ['LOCAL_RANK']), world_size"),
    "no_sampler_every_rank_trains_everything": ("sampler=sampler)", "shuffle=False)"),
    "epoch_time_divided_by_world_size": ("epoch_seconds.append(time.perf_counter() - start)",
                                         "epoch_seconds.append((time.perf_counter() - start) / world_size)"),
}

WRONG = {
    "no_set_epoch": (["epochs_shuffled", "ddp_equals_single_process"], ["set_epoch", "same global batches"]),
    "every_rank_writes_checkpoint": (["checkpoint_rank0"], ["every rank writes the checkpoint"]),
    "checkpoint_keeps_module_prefix": (["checkpoint_rank0"], ["keeps the 'module.' prefix"]),
    "rank_1_crashes": (["ddp_equals_single_process"], ["rank 1 of 2 crashed"]),
    "shard_without_padding": (["shard_matches_sampler"], ["pads by wrapping"]),
    "local_rank_as_rank": (["two_nodes_same_result"], ["two torchrun nodes"]),
    "no_sampler_every_rank_trains_everything": (["two_workers_faster"], ["expected at least 1.4x"]),
    "epoch_time_divided_by_world_size": (["two_workers_faster"], ["not divided or estimated"]),
}


def patched(solution: str, mistake: str) -> str:
    """The solution with the mistake appended as a redefinition."""
    if mistake == "shard_without_padding":
        return solution + "\n\n" + NO_PADDING
    old, new = WORKER_EDITS[mistake]
    body = solution[solution.index("def worker("):]
    assert old in body, mistake
    return solution + "\n\n" + body.replace(old, new)


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    names, phrases = WRONG[mistake]
    report = grade_source("exercise6", patched(solution_source("exercise6"), mistake), only=names)
    for name, phrase in zip(names, phrases, strict=True):
        failed = result(report, name)
        if mistake == "no_sampler_every_rank_trains_everything" and failed.status == "inconclusive":
            assert "busy" in failed.message and "below 1.4x" in failed.message  # loaded CI: says so, no points
            continue
        assert failed.status == "failed", (name, failed.status, failed.message)
        assert phrase in failed.message, failed.message


class CannedSub:
    """A Submission stand-in whose time_ddp probe returns canned launches: the verdict logic alone, no noise."""

    def __init__(self, one: float, two: float, busy: bool):
        import random

        self.rng, self.notes = random.Random(0), []
        run = lambda ws, s: {"world_size": ws, "worker_seconds": [4 * s + 0.5] * ws,  # noqa: E731
                             "epoch_seconds": [[s * 2, s, s]] * ws}
        self.answer = {"error": "", "busy": busy, "load": "other processes used 90% of 2 cores",
                       "runs": [run(1, one), run(2, two), run(2, two), run(1, one)]}

    def probe(self, name, *args):
        assert name == "time_ddp"
        return self.answer

    def note(self, text):
        self.notes.append(text)


@pytest.mark.parametrize("busy", [False, True])
def test_speedup_verdicts_do_not_flip_on_load(busy):
    from labkit.checks import CheckFailed, Inconclusive
    from labkit.course.course import resolve
    from labkit.grading.plan import load_checks

    checks = {c.name: c.fn for c in load_checks(resolve("exercise6"))[0]}
    fast = CannedSub(1.8, 1.0, busy)
    checks["two_workers_faster"](fast)  # 1.8x passes, busy or not: load only ever slows two workers down
    assert "1.80x" in fast.notes[0]
    slow = CannedSub(1.2, 1.0, busy)
    with pytest.raises(Inconclusive if busy else CheckFailed) as info:
        checks["two_workers_faster"](slow)
    assert "1.20x" in str(info.value) and ("busy" in str(info.value)) == busy
