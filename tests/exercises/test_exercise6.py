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
    """A Submission stand-in: canned timing launches, the grader's own replay for the small problem, an injected
    clock and load: the verdict logic alone, no noise, no waiting."""

    def __init__(self, checks, one: float, two: float, workdir):
        import random

        self.rng, self.notes, self.workdir, self.pid, self.checks = random.Random(0), [], workdir, None, checks
        self.seconds, self.now = {1: one, 2: two}, 0.0

    def clock(self) -> float:
        return self.now

    def run(self, program):
        step = program.to_data()["steps"][0]
        cfg, ws = step["cfg"], step["world_size"]
        if cfg["model"]["recipe"]["$"] == "zoo":  # a timing launch: 3 epochs of s seconds, the first one longer
            s = self.seconds[ws]
            self.now += 4 * s + 2.0  # the grader's clock sees the start-up too
            values = [{"epoch_seconds": [2 * s, s, s]}] * ws
            record = {"worker_seconds": [4 * s + 0.5] * ws, "values": values}
        else:  # the small problem: a worker that trains ends where the grader's replay ends
            args = dict(n=len(cfg["dataset"]["params"]["tensors"][1]),
                        **{k: cfg[k] for k in ("epochs", "batch_size", "lr", "seed")})
            state = self.checks["reference"](args, 2)
            record = {"values": [{"rank": r, "epoch_indices": [], "state_dict": state} for r in range(2)]}
        return {"values": {}, "steps": [{"error": "", "saves": [1] + [0] * (ws - 1), **record}], "gates": []}

    def shared(self, fn):
        return fn(self)  # the engine's SharedWork caches it per graded file; one call per check here

    def note(self, text):
        self.notes.append(text)


class CannedLoad:
    """LoadMeter's stand-in: the machine is busy or it is not."""

    def __init__(self, busy: bool):
        from labkit.lab.loadmeter import Load

        self.result = Load(0.9 if busy else 0.0, 0.5, 2, 60.0)

    def __call__(self, **kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


@pytest.mark.parametrize("busy", [False, True])
def test_speedup_verdicts_do_not_flip_on_load(busy, monkeypatch, tmp_path):
    from labkit.checks import CheckFailed, Inconclusive
    from labkit.course.course import resolve
    from labkit.grading.plan import load_checks

    check = {c.name: c.fn for c in load_checks(resolve("exercise6"))[0]}["two_workers_faster"]
    checks = check.__globals__
    monkeypatch.setitem(checks, "LoadMeter", CannedLoad(busy))
    fast = CannedSub(checks, 1.8, 1.0, tmp_path)
    monkeypatch.setitem(checks, "clock", fast.clock)
    check(fast)  # 1.71x passes, busy or not: load only ever slows two workers down
    assert "1.71x" in fast.notes[0] and "launcher's clock" in fast.notes[0]
    slow = CannedSub(checks, 1.2, 1.0, tmp_path)
    monkeypatch.setitem(checks, "clock", slow.clock)
    with pytest.raises(Inconclusive if busy else CheckFailed) as info:
        check(slow)
    assert "1.18x" in str(info.value) and ("busy" in str(info.value)) == busy


def test_the_launcher_cannot_report_more_time_than_the_grader_saw(monkeypatch, tmp_path):
    from labkit.checks import CheckFailed
    from labkit.course.course import resolve
    from labkit.grading.plan import load_checks

    check = {c.name: c.fn for c in load_checks(resolve("exercise6"))[0]}["two_workers_faster"]
    checks = check.__globals__
    monkeypatch.setitem(checks, "LoadMeter", CannedLoad(False))
    inflated = CannedSub(checks, 9.0, 1.0, tmp_path)  # one worker "took" 36.5 s of a launch 38 s long...
    monkeypatch.setitem(checks, "clock", lambda: inflated.now / 4)  # ...that the grader timed at a quarter of it
    with pytest.raises(CheckFailed, match="on the grader's clock"):
        check(inflated)


def test_a_crashed_shared_launch_fails_each_check_that_judges_it_in_its_own_words(grade_source, solution_source):
    """One two-rank launch feeds four checks: when it crashes, each of them fails and says what it could not
    judge; a check that does not depend on it is not touched."""
    source = patched(solution_source("exercise6"), "rank_1_crashes")
    report = grade_source("exercise6", source, only=["shard_matches_sampler", "ddp_equals_single_process",
                                                     "epochs_shuffled", "checkpoint_rank0"])
    assert result(report, "shard_matches_sampler").status == "passed"
    for name, lead in (("ddp_equals_single_process", "worker on 2 ranks: rank 1 of 2 crashed"),
                       ("epochs_shuffled", "no epochs to judge: worker on 2 ranks: rank 1 of 2 crashed"),
                       ("checkpoint_rank0", "no checkpoint to judge: worker on 2 ranks: rank 1 of 2 crashed")):
        got = result(report, name)
        assert got.status == "failed" and got.message.startswith(lead), (name, got.status, got.message)
        assert "only rank 0 is ready" in got.message  # the rank's own traceback, in every one of them
