"""The benchmarks' own pieces: the direct harness, the table, and a quick `run.py --only cli`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import Row, format_table  # noqa: E402
from benchmarks.harness import run_direct  # noqa: E402


def test_direct_harness_passes_exercise1_with_the_solution() -> None:
    out = run_direct("exercise1", ROOT / "solutions/exercise1.py")
    statuses = out["results"]
    ran = {k: v for k, v in statuses.items() if v != "skipped"}
    assert ran, statuses
    assert set(ran.values()) == {"passed"}, out["messages"]


def test_table_renders_a_missed_row() -> None:
    rows = [Row("checks", "check exercise1 [none]", "4.10 s", "direct 1.50 s", "+2.60 s", "<= +1.0 s", "MISSED"),
            Row("cli", "labkit list", "0.120 s", "python -c pass 0.020 s", "+0.100 s", "<0.3 s", "ok")]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["name", "measured"]
    missed = next(line for line in lines if "exercise1" in line)
    assert missed.rstrip().endswith("MISSED") and "+2.60 s" in missed
    assert lines[0].index("verdict") == missed.index("MISSED")  # the columns line up


def test_run_only_cli_quick(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks/run.py"), "--only", "cli", "--quick",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "labkit --help" in proc.stdout and "verdict" in proc.stdout
    assert out.exists()


def test_batch_split_separates_start_up_from_the_price_per_submission() -> None:
    from benchmarks.batch import split

    per, fixed = split(2.0 + 24 * 0.15, 2.0 + 72 * 0.15, 24, 72)  # T(n) = 2 s + 0.15 s per submission
    assert abs(per - 0.15) < 1e-9 and abs(fixed - 2.0) < 1e-9


def test_the_plain_script_baseline_runs_the_checks_cases(tmp_path: Path) -> None:
    script = [sys.executable, str(ROOT / "benchmarks/plain_check.py")]
    good = subprocess.run([*script, str(ROOT / "solutions/exercise2.py")], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0 and good.stdout.strip() == "14/14 cases agree", good.stdout + good.stderr
    wrong = tmp_path / "exercise2.py"
    wrong.write_text("def replica_batch_sizes(batch_size, num_devices):\n"
                     "    return [batch_size // num_devices] * num_devices\n")
    bad = subprocess.run([*script, str(wrong)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "wrong: [(10, 3)" in bad.stdout, bad.stdout


def test_checks_rows_pair_the_runs_and_say_the_targets(monkeypatch) -> None:
    from benchmarks import checks

    canned = {"labkit": [2.6, 2.4, 2.5], "python": [2.0, 2.0, 2.0]}  # per pair: 1.30x, 1.20x, 1.25x

    def fake_timed(argv, cwd=ROOT):
        kind = "labkit" if argv[0].endswith("labkit") else "python"
        return (canned[kind].pop(0) if len(canned[kind]) > 1 else canned[kind][0]), 0

    monkeypatch.setattr(checks, "timed", fake_timed)
    row = checks.one_check(2)  # one warm-up pair, then two counted: 1.20x and 1.25x
    assert row.compare == "1.23x" and row.target == "<= 1.3x" and row.verdict == "ok"
    assert row.values["runs"] == [2.4, 2.5] and row.values["plain_s"] == 2.0
    monkeypatch.setattr(checks, "timed", lambda argv, cwd=ROOT: (80.0, 0))
    slow = checks.check_all(1)
    assert slow.measured == "80.0 s" and slow.target == "<= 75 s" and slow.verdict == "MISSED"
