"""A student's first commands from a built wheel in a fresh venv (borrowing this venv's torch): the statement
reaches the workspace, not only the installed package, and a starter is checked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from wheel_venv import fresh_venv


@pytest.mark.slow
def test_a_student_starts_reads_and_checks_from_a_wheel(tmp_path):
    python, site = fresh_venv(tmp_path)
    ws = tmp_path / "course"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABKIT_EXERCISES", "LABKIT_COURSE",
                                                             "LABKIT_LANG", "LABKIT_SOLUTIONS")}

    def labkit_(*args: str, cwd: Path = ws, lang: str | None = None) -> subprocess.CompletedProcess:
        extra = {"LABKIT_LANG": lang} if lang else {}
        return subprocess.run([str(python), "-m", "labkit", *args], cwd=cwd, env={**env, **extra},
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([str(python), "-c", "import labkit; print(labkit.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site)), where.stdout  # the wheel's labkit, not the checkout's
    assert labkit_("init", str(ws), cwd=tmp_path).returncode == 0
    started = labkit_("start", "exercise1")
    assert started.returncode == 0, started.stderr
    assert "the statement: exercise1.md" in started.stdout and str(site) not in started.stdout
    statement = (ws / "exercise1.md").read_text(encoding="utf-8")
    packaged = site / "labkit" / "exercises" / "exercise1"
    assert statement == (packaged / "README.md").read_text(encoding="utf-8")  # the wheel's, beside the file
    assert (ws / "exercise1.zh-CN.md").read_text(encoding="utf-8") == (packaged / "README.zh-CN.md").read_text(
        encoding="utf-8")
    shown = labkit_("show", "1")
    assert shown.returncode == 0 and shown.stdout.strip() == statement.strip()
    assert labkit_("show", "1", lang="zh").stdout.strip() == (ws / "exercise1.zh-CN.md").read_text(
        encoding="utf-8").strip()
    checked = labkit_("check", "exercise1")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "not implemented yet" in checked.stdout and "Score 0/" in checked.stdout
    assert "[picks_cpu]" in checked.stdout and "labkit hint exercise1" in checked.stdout
    assert "Traceback" not in checked.stdout + checked.stderr
    listing = labkit_("list")
    assert "failing" in listing.stdout and "total 0/" in listing.stdout
