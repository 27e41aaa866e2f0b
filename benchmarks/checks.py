"""Section 2: `labkit check exerciseN` (sandbox none and auto) against the same checks run directly in one process."""

from __future__ import annotations

import subprocess
import time

from benchmarks.common import LABKIT, PYTHON, ROOT, Row, clean_env, med, verdict

LIMIT = 1.0  # seconds above direct, per exercise
ROUNDS = 3  # every exercise, exercise6's ~50 s included: one round's noise there is larger than the target


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


def measure(n: int, rounds: int) -> dict[str, tuple[list[float], list[int]]]:
    """Interleaved rounds (order reversed every other round) of direct / none / auto for exercise n."""
    cmds = variants(n)
    names = list(cmds)
    out: dict[str, tuple[list[float], list[int]]] = {k: ([], []) for k in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            s, rc = timed(cmds[name])
            out[name][0].append(s)
            out[name][1].append(rc)
    return out


def run(quick: bool = False) -> list[Row]:
    """Two rows per exercise: engine (sandbox none / bwrap) minus direct, round by round, target at most +1 s."""
    rows = []
    for n in range(1, 4 if quick else 9):
        data = measure(n, 2 if quick else ROUNDS)
        direct, direct_rcs = data["direct"]
        for mode, label in (("none", "none"), ("auto", "bwrap")):
            times, rcs = data[mode]
            delta = med([t - d for t, d in zip(times, direct, strict=True)])  # paired: same round, same load
            note = "" if all(rc == 0 for rc in rcs + direct_rcs) else " (a check failed)"
            rows.append(Row("checks", f"check exercise{n} [{label}]", f"{med(times):.2f} s{note}",
                            f"direct {med(direct):.2f} s", f"{delta:+.2f} s", f"<= +{LIMIT:.1f} s",
                            verdict(delta <= LIMIT),
                            {"median_s": med(times), "direct_s": med(direct), "delta_s": delta, "runs": times,
                             "direct_runs": direct, "rcs": rcs, "direct_rcs": direct_rcs}))
    return rows
