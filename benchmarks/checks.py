"""Section 2: `labkit check` against plain baselines: one small check against a plain script (a paired ratio),
each exercise against the same checks run directly in one process, each exercise's wall time, and `--all`."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import LABKIT, PYTHON, ROOT, Row, clean_env, med, verdict

LIMIT = 1.0  # seconds above direct, per exercise
ROUNDS = 3  # every exercise, exercise6's ~35 s included: one round's noise there is larger than the target
ONE_CHECK = ["check", "exercise2", "--only", "replica_sizes", "--file", "solutions/exercise2.py"]
PLAIN = ["benchmarks/plain_check.py", "solutions/exercise2.py"]  # the same cases, as a script a student runs
RATIO_LIMIT = 1.3  # one small check at most this many times the plain script's wall time
PAIRS = 7  # A B, B A, ... pairs for that ratio
WALL_LIMIT = {6: 40.0}  # seconds for a whole exercise on the reference solution; 10 s for the others
ALL_LIMIT = 75.0  # `labkit check --all` over the eight reference solutions


def timed(argv: list[str], cwd: Path = ROOT) -> tuple[float, int]:
    """Wall seconds and exit status of one run."""
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=900)
    return time.perf_counter() - start, proc.returncode


def variants(n: int) -> dict[str, list[str]]:
    """The three ways to run exercise n's checks."""
    sol = f"solutions/exercise{n}.py"
    engine = [LABKIT, "check", f"exercise{n}", "--file", sol, "--sandbox"]
    return {"direct": [PYTHON, "-m", "benchmarks.harness", f"exercise{n}", sol],
            "none": [*engine, "none"], "auto": [*engine, "auto"]}


def measure(cmds: dict[str, list[str]], rounds: int, cwd: Path = ROOT) -> dict[str, tuple[list[float], list[int]]]:
    """Interleaved rounds (order reversed every other round) of each command."""
    names = list(cmds)
    out: dict[str, tuple[list[float], list[int]]] = {k: ([], []) for k in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            s, rc = timed(cmds[name], cwd)
            out[name][0].append(s)
            out[name][1].append(rc)
    return out


def one_check(pairs: int) -> Row:
    """`labkit check exercise2 --only replica_sizes` (bubblewrap where it works) over the plain script, pair by pair."""
    cmds = {"check": [LABKIT, *ONE_CHECK], "plain": [PYTHON, *PLAIN]}
    measure(cmds, 1)  # warm-up: page cache, bytecode
    data = measure(cmds, pairs)
    (a, arc), (b, brc) = data["check"], data["plain"]
    ratio = med([x / y for x, y in zip(a, b, strict=True)])
    note = "" if all(rc == 0 for rc in arc + brc) else " (a run failed)"
    return Row("checks", "one check (ex2 replica_sizes)", f"{med(a):.2f} s{note}", f"plain script {med(b):.2f} s",
               f"{ratio:.2f}x", f"<= {RATIO_LIMIT}x", verdict(ratio <= RATIO_LIMIT),
               {"median_s": med(a), "plain_s": med(b), "ratio": ratio, "runs": a, "plain_runs": b, "rcs": arc,
                "plain_rcs": brc})


def check_all(rounds: int) -> Row:
    """`labkit check --all` in a fresh workspace holding the eight reference solutions."""
    with tempfile.TemporaryDirectory(prefix="labkit-bench-all-") as folder:
        from labkit.course.workspace import init

        init(Path(folder))
        for sol in sorted((ROOT / "solutions").glob("exercise[1-8].py")):
            shutil.copyfile(sol, Path(folder) / sol.name)
        times, rcs = measure({"all": [LABKIT, "check", "--all"]}, rounds, cwd=Path(folder))["all"]
    note = "" if all(rc == 0 for rc in rcs) else " (a check failed)"
    return Row("checks", "check --all (8 solutions)", f"{med(times):.1f} s{note}", "", "", f"<= {ALL_LIMIT:.0f} s",
               verdict(med(times) <= ALL_LIMIT), {"median_s": med(times), "runs": times, "rcs": rcs})


def run(quick: bool = False) -> list[Row]:
    """The one-check ratio; two rows per exercise against direct (target +1 s) and its wall time; the --all time."""
    rows = [one_check(3 if quick else PAIRS)]
    walls = []
    for n in range(1, 4 if quick else 9):
        data = measure(variants(n), 2 if quick else ROUNDS)
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
        times = data["auto"][0]
        limit = WALL_LIMIT.get(n, 10.0)
        walls.append(Row("checks", f"wall exercise{n} [bwrap]", f"{med(times):.2f} s", "", "", f"<= {limit:.0f} s",
                         verdict(med(times) <= limit), {"median_s": med(times), "runs": times}))
    return rows + walls + [check_all(1 if quick else 2)]
