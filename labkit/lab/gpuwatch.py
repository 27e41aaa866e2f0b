"""`labkit doctor --gpus [--watch S]`: each GPU's memory, utilisation and processes, as `watch -n 1 nvidia-smi` shows.

Read from nvidia-smi's CSV queries (no torch, no CUDA context of our own): the view a student keeps open beside a
DataParallel run to see GPU 0 hold more memory than the others (it gathers the outputs and computes the loss).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

GPU_FIELDS = "index,uuid,name,memory.used,memory.total,utilization.gpu"
APP_FIELDS = "gpu_uuid,pid,process_name,used_memory"
IMBALANCE = 1.25  # GPU 0's memory over the others' mean at which the view names DataParallel's imbalance


@dataclass
class Gpu:
    """One GPU's row: memory in MiB and utilisation in percent (None where nvidia-smi reports N/A)."""

    index: int
    name: str
    used_mib: int | None
    total_mib: int | None
    util: int | None
    processes: list[tuple[int, str, int | None]] = field(default_factory=list)  # (pid, name, MiB)


@dataclass
class Snapshot:
    """What nvidia-smi said at one moment, or why it could not say."""

    gpus: list[Gpu] = field(default_factory=list)
    problem: str = ""  # no nvidia-smi, or nvidia-smi failed: the one line to show instead of the table
    found: bool = True  # whether nvidia-smi is there at all (without it there is nothing to watch)


def _number(text: str) -> int | None:
    """ "1234" -> 1234; "[N/A]", "[Not Supported]" (MIG, some laptops) -> None."""
    try:
        return int(float(text))
    except ValueError:
        return None


def _query(exe: str, args: list[str]) -> tuple[list[list[str]], str]:
    """Rows of a --format=csv,noheader,nounits query, or ([], the first line of the error)."""
    try:
        done = subprocess.run([exe, *args, "--format=csv,noheader,nounits"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], str(exc)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
        return [], (lines[0] if lines else f"exit status {done.returncode}")[:300]
    rows = csv.reader(done.stdout.splitlines(), skipinitialspace=True)
    return [[cell.strip() for cell in row] for row in rows if row], ""


def snapshot(exe: str | None = None) -> Snapshot:
    """Every GPU nvidia-smi sees, with the compute processes on it."""
    exe = exe or shutil.which("nvidia-smi")
    if exe is None:
        return Snapshot(problem="no nvidia-smi here: no NVIDIA driver, so no GPU to watch", found=False)
    rows, error = _query(exe, [f"--query-gpu={GPU_FIELDS}"])
    if error:
        return Snapshot(problem=f"nvidia-smi failed: {error}")
    gpus, by_uuid = [], {}
    for row in rows:
        if len(row) != 6:
            continue
        gpu = Gpu(_number(row[0]) if _number(row[0]) is not None else len(gpus), row[2], _number(row[3]),
                  _number(row[4]), _number(row[5]))
        gpus.append(gpu)
        by_uuid[row[1]] = gpu
    if not gpus:
        return Snapshot(problem="nvidia-smi lists no GPU")
    apps, _error = _query(exe, [f"--query-compute-apps={APP_FIELDS}"])  # none listed is not an error
    for row in apps:
        if len(row) == 4 and row[0] in by_uuid and _number(row[1]) is not None:
            by_uuid[row[0]].processes.append((int(row[1]), row[2], _number(row[3])))
    return Snapshot(gpus)


def _mib(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def table(snap: Snapshot) -> list[str]:
    """The view's lines: one row per GPU (memory, utilisation, processes), and a note on GPU 0's extra memory."""
    if snap.problem:
        return [snap.problem]
    lines = [f"{'GPU':<4} {'name':<28} {'memory used / total (MiB)':>27} {'util':>5}  processes"]
    for g in snap.gpus:
        memory = f"{_mib(g.used_mib)} / {_mib(g.total_mib)}"
        util = "-" if g.util is None else f"{g.util}%"
        procs = ", ".join(f"{pid} {name.rsplit('/', 1)[-1]} ({_mib(mib)} MiB)" for pid, name, mib in g.processes)
        lines.append(f"{g.index:<4} {g.name[:28]:<28} {memory:>27} {util:>5}  {procs or 'none'}")
    used = [g.used_mib for g in snap.gpus]
    if len(used) >= 2 and all(u is not None for u in used):
        rest = sum(used[1:]) / len(used[1:])
        if used[0] > IMBALANCE * rest and used[0] - rest >= 256:
            lines.append(f"GPU {snap.gpus[0].index} holds {used[0] / max(rest, 1):.1f}x the memory of the others: "
                         "under nn.DataParallel it also gathers the outputs and computes the loss")
    return lines


def watch(seconds: float | None, echo: Callable[[str], None], clear: Callable[[], None] = lambda: None,
          sleep: Callable[[float], None] = time.sleep, exe: str | None = None) -> None:
    """Print the view once (seconds None), or redraw it every `seconds` until Ctrl-C; no nvidia-smi: say so once."""
    try:
        while True:
            snap = snapshot(exe)
            again = seconds is not None and snap.found
            if again:
                clear()
                echo(f"every {seconds:g} s, Ctrl-C to stop · {time.strftime('%H:%M:%S')}")
            for line in table(snap):
                echo(line)
            if not again:
                return
            sleep(seconds)
    except KeyboardInterrupt:  # Ctrl-C is how a watch ends: not an error
        return
