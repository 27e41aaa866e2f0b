"""Slurm's own commands, as labkit uses them: submit an array, read its tasks' states, cancel it; and `doctor`'s view.

labkit talks to Slurm through sbatch, squeue, scontrol, sacct and scancel, the client every cluster installs, rather
than through a Python client: submitit (the first candidate) reads job states only from sacct, which needs the
accounting database many course clusters (and the CI cluster) do not run, ships work and results as pickles, and
requeues preempted jobs on its own. Here states come from scontrol (live and recently ended jobs), then sacct.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from labkit.sandbox.errors import WorkerFailed

PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED",
           "SPECIAL_EXIT", "RESIZING"}
RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT", "UPDATE_DB", "POWER_UP_NODE"}
DONE = {"COMPLETED"}
# Every other state ends the task without its work done: CANCELLED, FAILED, TIMEOUT, NODE_FAIL, PREEMPTED,
# BOOT_FAIL, DEADLINE, OUT_OF_MEMORY, REVOKED; UNKNOWN is a task Slurm no longer knows.
WHY = {"TIMEOUT": "it ran past its --time", "NODE_FAIL": "its node failed", "PREEMPTED": "it was preempted",
       "CANCELLED": "it was cancelled outside labkit", "BOOT_FAIL": "its node did not boot",
       "OUT_OF_MEMORY": "it ran out of memory", "FAILED": "the task itself failed (see its log)",
       "DEADLINE": "it reached its deadline", "UNKNOWN": "Slurm no longer knows the task"}
TIMEOUT_S = 60  # one Slurm command; a controller that does not answer in a minute is down


class SlurmError(WorkerFailed):
    """A Slurm command failed or is missing: where the class's workers run cannot be reached; the message says why."""


def _run(args: list[str]) -> str:
    if shutil.which(args[0]) is None:
        raise SlurmError(f"{args[0]} not found: --executor slurm runs on a Slurm login node (docs/slurm.md)")
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{args[0]} did not answer in {TIMEOUT_S} s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise SlurmError(f"{' '.join(args[:2])} failed: {lines[-1] if lines else f'exit {proc.returncode}'}")
    return proc.stdout


def submit(args: list[str], script: str) -> str:
    """`sbatch --parsable ARGS SCRIPT` -> the array's job id."""
    out = _run(["sbatch", "--parsable", *args, script]).strip()
    job = out.split(";")[0]  # "12345" or "12345;cluster"
    if not job.isdigit():
        raise SlurmError(f"sbatch answered {out!r}, not a job id")
    return job


def cancel(job: str) -> None:
    """scancel the whole array (a task already finished is left as it ended)."""
    try:
        _run(["scancel", job])
    except SlurmError:
        pass  # the job may have ended meanwhile; a rerun sees what is left


def task_ids(text: str) -> list[int]:
    """An ArrayTaskId as scontrol prints it ("3", "1-4%2", "0,2-3") -> [3] / [1, 2, 3, 4] / [0, 2, 3]."""
    ids: list[int] = []
    for part in text.split("%")[0].split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            ids += list(range(int(lo), int(hi or lo) + 1))
    return ids


def states(job: str) -> dict[int, str]:
    """Array task -> its state (PENDING, RUNNING, COMPLETED, TIMEOUT, ...): scontrol, else sacct, else {}."""
    try:
        return _scontrol_states(_run(["scontrol", "show", "job", "-o", job]))
    except SlurmError:
        pass  # ended long enough ago that the controller forgot it (MinJobAge)
    try:
        return _sacct_states(_run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", job]), job)
    except SlurmError:
        return {}


def _scontrol_states(text: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for line in text.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        for i in task_ids(fields.get("ArrayTaskId", "")):
            found[i] = fields.get("JobState", "UNKNOWN")
    return found


def _sacct_states(text: str, job: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for line in text.splitlines():
        jobid, _, state = line.partition("|")
        m = re.fullmatch(rf"{job}_\[?([\d,%-]+)\]?", jobid)
        for i in task_ids(m.group(1)) if m else ():
            found[i] = state.split()[0] if state else "UNKNOWN"  # "CANCELLED by 0"
    return found


def kind(state: str) -> str:
    """pending | running | done | failed: what the progress display shows."""
    return "pending" if state in PENDING else "running" if state in RUNNING else "done" if state in DONE else "failed"


@dataclass
class Partition:
    """One partition as sinfo reports it: name, state, nodes, time limit and GPUs per node (0 without)."""

    name: str
    available: str
    nodes: int
    time_limit: str
    gpus: int


def partitions() -> list[Partition]:
    """Every partition this login node sees (sinfo), with the GPUs its nodes offer."""
    found: dict[str, Partition] = {}
    for line in _run(["sinfo", "-h", "-o", "%P|%a|%D|%l|%G"]).splitlines():
        name, avail, nodes, limit, gres = (line.split("|") + [""] * 5)[:5]
        name = name.rstrip("*")
        gpus = max([int(m) for m in re.findall(r"gpu(?::[\w.-]+)*?:(\d+)", gres)] or [0])
        old = found.get(name)
        found[name] = Partition(name, avail, (old.nodes if old else 0) + int(nodes or 0), limit,
                                max(gpus, old.gpus if old else 0))
    return list(found.values())


def doctor_lines() -> list[tuple[str, bool, str]]:
    """(what, ok, detail) rows for `labkit doctor`: is sbatch reachable, and which partitions have GPUs."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        return [("slurm", False, "sbatch not found: --executor slurm needs a Slurm login node (docs/slurm.md)")]
    try:
        found = partitions()
    except SlurmError as exc:
        return [("slurm", False, f"{sbatch} found, but the controller does not answer: {exc}")]
    rows = [("slurm", True, f"{sbatch}: {len(found)} partition(s) reachable")]
    gpu = [p for p in found if p.gpus]
    rows += [(f"slurm partition {p.name}", p.available == "up",
              f"{p.gpus} GPU(s) per node, {p.nodes} node(s), time limit {p.time_limit}, {p.available}") for p in gpu]
    if not gpu:
        rows.append(("slurm GPUs", False, "no partition offers GPUs (gres gpu): GPU checks will be skipped"))
    return rows
