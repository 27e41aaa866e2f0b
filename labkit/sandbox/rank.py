"""Inside one rank started by torchrun: run the student's `worker` and leave its result and progress for the launcher.

`python -m labkit.sandbox.rank SPEC` is what torchrun starts on every rank (or, forked by torchrun's
`--run-path` with torch already imported, this file run as a script: labkit.sandbox.agents). SPEC (written
by labkit.sandbox.launcher, read with weights_only) names the student's file, the function
and cfg as a recipe, which labkit.inputs builds here: nothing but labkit and the student's
file is imported. Output goes to `rank{RANK}.log`; the rank's progress (which phase it
is in, how many barriers it has passed) goes to `rank{RANK}.state`, which the launcher's
watchdog reads to say where a rank hung; the value `worker` returned goes to `rank{RANK}.pt`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from labkit.files import import_path, write_atomic


class RankState:
    """This rank's progress, rewritten atomically at every change of phase."""

    def __init__(self, path: Path, rank: int):
        self.path, self.rank = path, rank
        self.phase, self.barriers, self.crashed_in = "starting", 0, ""
        self.write()

    def enter(self, phase: str) -> str:
        previous, self.phase = self.phase, phase
        self.write()
        return previous

    def write(self) -> None:
        write_atomic(self.path, json.dumps({"rank": self.rank, "pid": os.getpid(), "phase": self.phase,
                                            "barriers": self.barriers, "crashed_in": self.crashed_in}))


def traced(state: RankState, name: str, fn: Any, default_timeout: float | None = None) -> Any:
    """`fn` wrapped so the launcher sees the rank inside it (a rank that never leaves a barrier has hung there)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if default_timeout and name == "init_process_group" and kwargs.get("timeout") is None:
            # collectives then fail on their own after this long instead of waiting forever
            kwargs["timeout"] = timedelta(seconds=default_timeout)
        if name == "barrier":
            state.barriers += 1
        previous = state.enter(f"{name} #{state.barriers}" if name == "barrier" else name)
        result = fn(*args, **kwargs)
        state.enter(previous)
        return result

    return wrapper


def rank_main(spec_path: str) -> None:
    """Count torch.save, trace init/barrier, import the student's file, build cfg, run `fn`, save its value."""
    _default_signals()
    workdir = Path(spec_path).parent
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    log = os.open(workdir / f"rank{rank}.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    _rebind_streams()  # a forked rank inherits its launcher's sys.stdout/sys.stderr objects: write to the log
    state = RankState(workdir / f"rank{rank}.state", rank)
    try:
        import torch
        import torch._dynamo  # noqa: F401  (DDP's constructor imports it, ~1 s: starting a rank, not the rank's work)
        import torch.distributed as dist

        from labkit.inputs import build

        spec = torch.load(spec_path, weights_only=True)

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        real_save, saves = torch.save, [0]

        def counted_save(*args: Any, **kwargs: Any) -> Any:
            saves[0] += 1
            return real_save(*args, **kwargs)

        torch.save = counted_save  # before the student's import, so `from torch import save` is counted too
        dist.init_process_group = traced(state, "init_process_group", dist.init_process_group, spec["pg_timeout"])
        dist.barrier = traced(state, "barrier", dist.barrier)
        state.enter("import")
        student = import_path(spec["student"], "student_exercise")
        cfg = build(spec["cfg"])
        state.enter("worker")
        value = getattr(student, spec["fn"])(rank, world_size, cfg)
        real_save({"value": plain(value), "saves": saves[0]}, workdir / f"rank{rank}.pt")
    except BaseException:  # noqa: BLE001  (SystemExit included: the launcher must hear why the rank stopped)
        traceback.print_exc()
        state.crashed_in = state.phase
        state.enter("crashed")
        sys.stderr.flush()
        os._exit(1)
    state.enter("done")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip C++ static teardown: gloo's threads can abort a finished rank at exit (std::terminate)


def _default_signals() -> None:
    """A forked rank inherits its torchrun agent's handlers: SIGTERM must end it even inside a collective, as it
    ends an exec'd rank (the agent stops the other ranks that way when one crashes)."""
    for name in ("SIGTERM", "SIGHUP", "SIGQUIT"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _rebind_streams() -> None:
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115  (for the process's life)
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115


def plain(value: Any) -> Any:
    """Tensors detached onto the CPU, containers kept: what weights_only can load."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


if __name__ == "__main__":
    rank_main(sys.argv[1])
