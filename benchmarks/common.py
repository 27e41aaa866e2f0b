"""Shared pieces of the benchmarks: the result row, the table, timing helpers, paths."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent if (Path(sys.executable).parent / "labkit").exists() else ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python")
LABKIT = str(VENV_BIN / "labkit")


@dataclass
class Row:
    """One figure: what was measured, against what, the ratio or delta, the target and the verdict."""

    section: str
    name: str
    measured: str
    baseline: str = ""
    compare: str = ""  # "ratio 1.80x" or "+0.12 s"
    target: str = ""
    verdict: str = "n/a"  # ok | MISSED | n/a
    values: dict | None = None  # raw numbers for results.json

    def as_dict(self) -> dict:
        return asdict(self)


def verdict(ok: bool | None) -> str:
    """ok / MISSED, or n/a when there is no target."""
    return "n/a" if ok is None else ("ok" if ok else "MISSED")


HEADERS = ("name", "measured", "baseline", "ratio/delta", "target", "verdict")


def format_table(rows: Sequence[Row]) -> str:
    """The rows as one aligned plain-text table."""
    cells = [HEADERS] + [(r.name, r.measured, r.baseline, r.compare, r.target, r.verdict) for r in rows]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(HEADERS))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip() for cell in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for timed subprocesses: LABKIT_EXERCISES unset, quiet, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_EXERCISES"}
    env.update(extra)
    return env


def time_cmd(argv: Sequence[str], cwd: str | Path | None = None, env: dict | None = None,
             check: bool = True, timeout: float = 600) -> float:
    """Wall seconds of one subprocess run (output discarded); raises when it fails and `check`."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), cwd=cwd, env=env or clean_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout)
    seconds = time.perf_counter() - start
    if check and proc.returncode != 0:
        tail = proc.stdout.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}")
    return seconds


def interleaved(variants: dict[str, Sequence[str]], rounds: int, cwd: str | Path | None = None,
                env: dict | None = None, warmup: int = 1) -> dict[str, list[float]]:
    """Run every command `rounds` times, interleaved (order reversed each round); wall seconds per run."""
    names = list(variants)
    for _ in range(warmup):
        for n in names:
            time_cmd(variants[n], cwd, env)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        for n in names if i % 2 == 0 else names[::-1]:
            times[n].append(time_cmd(variants[n], cwd, env))
    return times


def med(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)
