"""Section 2: `labkit check exerciseN` (sandbox none and auto) against the same checks run directly in one process."""

from __future__ import annotations

import subprocess
import time

from benchmarks.common import LABKIT, PYTHON, ROOT, Row, clean_env, med, verdict

LIMIT = 1.0  # seconds above direct, per exercise
MAX_ROUNDS = 3
BUDGET = 90.0  # seconds per exercise: slow exercises stop after fewer rounds (at least one)


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and exit status of one run."""
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=900)
    return time.perf_counter() - start, proc.returncode


def variants(n: int) -> dict[str, list[str]]:
    """The three ways to run exercise n's checks."""
    sol = f"solutions/exercise{n}.py"
    engine = [LABKIT, "check", f"exercise{n}", "--file", sol, "--sandbox"]
    return {"direct": [PYTHON, "-m", "benchmarks.harness", f"exercise{n}", sol],
            "none": [*engine, "none"], "auto": [*engine, "auto"]}


def measure(n: int) -> dict[str, tuple[list[float], list[int]]]:
    """Interleaved rounds (order reversed every other round) of direct / none / auto for exercise n."""
    cmds = variants(n)
    names = list(cmds)
    out: dict[str, tuple[list[float], list[int]]] = {k: ([], []) for k in names}
    start = time.perf_counter()
    for i in range(MAX_ROUNDS):
        for name in names if i % 2 == 0 else names[::-1]:
            s, rc = timed(cmds[name])
            out[name][0].append(s)
            out[name][1].append(rc)
        if time.perf_counter() - start > BUDGET:
            break
    return out


def run(quick: bool = False) -> list[Row]:
    """Two rows per exercise: engine (sandbox none / bwrap) minus direct, target at most +1 s."""
    rows = []
    for n in range(1, 4 if quick else 9):
        data = measure(n)
        direct = med(data["direct"][0])
        direct_ok = all(rc == 0 for rc in data["direct"][1])
        for mode, label in (("none", "none"), ("auto", "bwrap")):
            times, rcs = data[mode]
            m = med(times)
            ok = m - direct <= LIMIT
            note = "" if all(rc == 0 for rc in rcs) and direct_ok else " (a check failed)"
            rows.append(Row("checks", f"check exercise{n} [{label}]", f"{m:.2f} s{note}",
                            f"direct {direct:.2f} s", f"{m - direct:+.2f} s", f"<= +{LIMIT:.1f} s", verdict(ok),
                            {"median_s": m, "direct_s": direct, "runs": times, "direct_runs": data["direct"][0],
                             "rcs": rcs, "direct_rcs": data["direct"][1]}))
    return rows
