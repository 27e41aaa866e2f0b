"""exercise6's GPU-only check (two ranks on two GPUs, nccl) judged on any machine with canned launch records."""

from __future__ import annotations

import random

import pytest

from labkit.checks import CheckFailed
from labkit.course.course import resolve
from labkit.grading.plan import load_checks
from labkit.inputs import build

DUPLICATE = ("rank 1 exited with code 1: torch.distributed.DistBackendError: NCCL error: invalid usage, "
             "Duplicate GPU detected : rank 1 and rank 0 both on CUDA device 1000")


def checks_module():
    specs = {c.name: c for c in load_checks(resolve("exercise6"))[0]}
    return specs["ddp_nccl"].fn, specs["ddp_nccl"].fn.__globals__


class FakeSub:
    """Answers the check's launch like the launcher does: {"error", "values" (one dict per rank), ...}."""

    def __init__(self, tmp_path, mistake: str | None = None):
        self.rng, self.seed, self.gpus, self.workdir, self.notes = random.Random(3), 3, 2, tmp_path, []
        self.mistake, self.launches = mistake, []

    def run(self, prog, gate=None):
        step = prog.to_data()["steps"][0]
        self.launches.append(step)
        cfg = build(step["cfg"])
        args = {k: cfg[k] for k in ("seed", "epochs", "batch_size", "lr")} | {"n": len(cfg["dataset"])}
        reference = checks_module()[1]["reference"]
        state = reference(args, 1 if self.mistake == "no sampler" else 2)  # no sampler: every rank sees it all
        if self.mistake == "prefix":
            state = {f"module.{k}": v for k, v in state.items()}
        values = [{"rank": r, "epoch_indices": [], "epoch_seconds": [0.1] * args["epochs"], "state_dict": state}
                  for r in range(2)]
        record = {"error": DUPLICATE if self.mistake == "same gpu" else "", "values": values,
                  "saves": [1, 0], "worker_seconds": [0.5, 0.5], "seconds": 1.0}
        return {"values": {}, "steps": [record], "gates": []}


def test_the_right_ranks_pass_on_two_gpus(tmp_path):
    sub = FakeSub(tmp_path)
    checks_module()[0](sub)
    assert [s["gpus"] for s in sub.launches] == [True]  # the launch asks for one GPU per rank


@pytest.mark.parametrize(("mistake", "phrase"), [
    ("same gpu", "each rank needs its own GPU: torch.cuda.set_device\\(local_rank\\)"),
    ("no sampler", "compared with one process trained on the same global batches"),
    ("prefix", "no 'module.' prefix"),
])
def test_a_wrong_nccl_run_fails_and_says_why(tmp_path, mistake, phrase):
    with pytest.raises(CheckFailed, match=phrase) as failed:
        checks_module()[0](FakeSub(tmp_path, mistake))
    assert "LOCAL_RANK" in str(failed.value) or mistake != "same gpu"
