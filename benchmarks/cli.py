"""Section 1: CLI start-up time against `python -c pass`, and no torch/torchvision import."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import LABKIT, PYTHON, Row, clean_env, interleaved, med, verdict

LIMIT = 0.3  # seconds, absolute, per command
COMMANDS = {"labkit --help": ["--help"], "labkit list": ["list"], "labkit hint exercise1": ["hint", "exercise1"]}
PROBE = """
import sys
sys.argv = ["labkit", *{args!r}]
from labkit.cli.main import cli
try:
    cli()
except SystemExit:
    pass
print("HEAVY=" + ",".join(m for m in ("torch", "torchvision") if m in sys.modules))
"""


def heavy_imports(args: list[str], cwd: Path) -> list[str]:
    """Which of torch/torchvision a CLI command imports (run in a fresh interpreter)."""
    out = subprocess.run([PYTHON, "-c", PROBE.format(args=args)], cwd=cwd, env=clean_env(), capture_output=True,
                         text=True, timeout=120).stdout
    line = [x for x in out.splitlines() if x.startswith("HEAVY=")]
    return [m for m in line[-1].removeprefix("HEAVY=").split(",") if m] if line else ["(probe failed)"]


def run(quick: bool = False) -> list[Row]:
    """Median wall time of each command over interleaved runs, with the delta over a bare interpreter."""
    rounds = 7 if quick else 11
    with tempfile.TemporaryDirectory(prefix="labkit-bench-cli-") as tmp:
        ws = Path(tmp) / "course"
        subprocess.run([LABKIT, "init", str(ws)], env=clean_env(), check=True, capture_output=True)
        variants = {"python -c pass": [PYTHON, "-c", "pass"]}
        variants.update({name: [LABKIT, *args] for name, args in COMMANDS.items()})
        times = interleaved(variants, rounds, cwd=ws)
        base = med(times["python -c pass"])
        rows = []
        for name, args in COMMANDS.items():
            m = med(times[name])
            heavy = heavy_imports(args, ws)
            ok = m < LIMIT and not heavy
            note = f" (imports {'+'.join(heavy)})" if heavy else ""
            rows.append(Row("cli", name, f"{m:.3f} s{note}", f"python -c pass {base:.3f} s", f"{m - base:+.3f} s",
                            f"<{LIMIT} s, no torch", verdict(ok),
                            {"median_s": m, "baseline_s": base, "runs": times[name], "heavy": heavy}))
    return rows
