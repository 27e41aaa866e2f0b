"""The machine's own ceiling for batch grading: forks per second of a torch-loaded process, one process vs two.

`python -m benchmarks.forks N` prints JSON {procs: forks_per_second}. Each fork imports exercise1's checks and
solution and exits, as a check's child does; the engine cannot scale from one job to two better than this.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fork_loop(n: int, ready: mp.Queue, go: mp.Queue) -> None:
    """Import torch, collapse into huge pages like a batch worker, then fork n short children."""
    import torch  # noqa: F401

    from labkit.files import import_path
    from labkit.sandbox import hugepages

    hugepages.collapse()
    ready.put(1)
    go.get()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            import_path(str(ROOT / "exercises/exercise1/checks.py"), "labkit_checks")
            import_path(str(ROOT / "solutions/exercise1.py"), "exercise1")
            os._exit(0)
        os.waitpid(pid, 0)


def forks_per_second(procs: int, n: int) -> float:
    """Total forks per second of `procs` processes started together, each forking n times."""
    ready, go = mp.Queue(), mp.Queue()
    workers = [mp.get_context("fork").Process(target=fork_loop, args=(n, ready, go)) for _ in range(procs)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get()
    start = time.perf_counter()
    for _ in workers:
        go.put(1)
    for w in workers:
        w.join()
    return procs * n / (time.perf_counter() - start)


def main(argv: list[str]) -> int:
    """ABBA rounds of one and two processes; the median forks per second of each."""
    n = int(argv[0]) if argv else 150
    runs: dict[int, list[float]] = {1: [], 2: []}
    for procs in (1, 2, 2, 1):
        runs[procs].append(forks_per_second(procs, n))
    print(json.dumps({p: statistics.median(v) for p, v in runs.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
