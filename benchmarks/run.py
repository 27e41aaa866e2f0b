"""`python benchmarks/run.py [--quick] [--only NAME...]`: every speed figure of labkit in one table.

Sections: cli, checks, batch, ddp, memory. Every figure is a ratio or a difference measured in this run;
the table goes to stdout and everything to benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make `benchmarks` and `labkit` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import batch, bombs, checks, cli, ddp, memory  # noqa: E402
from benchmarks.common import Row, format_table  # noqa: E402

SECTIONS = {"cli": cli.run, "checks": checks.run, "batch": batch.run, "ddp": ddp.run, "memory": memory.run,
            "bombs": bombs.run}
RESULTS = Path(__file__).resolve().parent / "results.json"


def run_sections(names: list[str], quick: bool) -> list[Row]:
    """Run each named section; a section that crashes gives one MISSED row with the reason, not a lost table."""
    rows: list[Row] = []
    for name in names:
        started = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        try:
            rows += SECTIONS[name](quick=quick)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            rows.append(Row(name, f"{name} (crashed)", f"{type(exc).__name__}: {str(exc)[:60]}", verdict="MISSED"))
        print(f"[bench] {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return rows


def save(rows: list[Row], quick: bool, seconds: float, path: Path = RESULTS) -> None:
    """results.json: the machine, when, how long, and every row."""
    from labkit.lab.devices import fingerprint

    data = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "quick": quick, "seconds": seconds,
            "machine": fingerprint().as_dict(), "rows": [r.as_dict() for r in rows]}
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print the table, write results.json; exit 0 (MISSED targets are reported, not fatal)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds; exercises 1-3 only for checks")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), metavar="NAME",
                        help=f"run only these sections: {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run_sections(args.only or list(SECTIONS), args.quick)
    seconds = time.perf_counter() - started
    print(format_table(rows))
    print(f"\n{sum(r.verdict == 'MISSED' for r in rows)} target(s) missed; {seconds:.0f} s in all")
    save(rows, args.quick, seconds, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
