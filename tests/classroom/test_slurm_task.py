"""One array task as a node runs it (`python -m labkit.classroom.slurm_task SPEC INDEX`), without Slurm."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from labkit.classroom.batch import Outcome, grading_key
from labkit.classroom.intake import Entry
from labkit.course.catalog import load_exercise

TOY = Path(__file__).resolve().parents[1] / "toy" / "exercise99"
GOOD = (TOY / "solution.py").read_text()


def spec_for(tmp: Path, sources: dict[str, str], key: str | None = None) -> Path:
    ex = load_exercise(TOY)
    chunk = []
    for name, source in sources.items():
        (tmp / "staging" / name).mkdir(parents=True)
        path = tmp / "staging" / name / "exercise99.py"
        path.write_text(source)
        chunk.append({**asdict(Entry(name, path, name=f"Name {name}", stem=name)), "file": str(path)})
    spec = {"exercise": ex.id, "folder": str(TOY), "checks_dir": None, "sandbox": "auto",
            "key": key or grading_key(ex, None, "s3cret"), "salt": "s3cret", "results": str(tmp / "results"),
            "chunks": [[], chunk]}
    path = tmp / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def task(spec: Path, index: str = "1") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit.classroom.slurm_task", str(spec), index],
                          capture_output=True, text=True, timeout=120)


def result(tmp: Path, stem: str) -> Outcome:
    return Outcome(**json.loads((tmp / "results" / f"{stem}.json").read_text()))


@pytest.mark.slow
def test_a_task_grades_its_chunk_and_never_twice(tmp_path):
    spec = spec_for(tmp_path, {"good": GOOD, "wrong": GOOD.replace("return a + b", "return a - b")})
    run = task(spec)
    assert run.returncode == 0, run.stderr
    good, wrong = result(tmp_path, "good"), result(tmp_path, "wrong")
    assert (good.status, good.score, good.name) == ("graded", 5, "Name good")
    assert wrong.status == "graded" and wrong.checks["adds"]["status"] == "failed"
    assert stat.S_IMODE((tmp_path / "results" / "good.json").stat().st_mode) == 0o600  # results hold verdicts
    assert "graded good: graded 5/5" in run.stdout
    before = (tmp_path / "results" / "good.json").stat().st_mtime_ns
    again = task(spec)  # Slurm or labkit ran the task again: what is there is kept
    assert again.returncode == 0 and "0 of 2 student(s) to grade" in again.stdout
    assert (tmp_path / "results" / "good.json").stat().st_mtime_ns == before


def test_a_node_with_other_checks_grades_nobody(tmp_path):
    spec = spec_for(tmp_path, {"good": GOOD}, key="exercise99|0.0.0|another-checks-file")
    run = task(spec)
    assert run.returncode == 0, run.stderr
    outcome = result(tmp_path, "good")
    assert outcome.status == "error" and "other checks or another labkit version" in outcome.error
    assert outcome.sha256 and outcome.key == "exercise99|0.0.0|another-checks-file"


def test_usage():
    run = subprocess.run([sys.executable, "-m", "labkit.classroom.slurm_task"], capture_output=True, text=True)
    assert run.returncode == 2 and "usage: python -m labkit.classroom.slurm_task SPEC [INDEX]" in run.stderr
