"""`--sandbox user`: where bubblewrap cannot run (Gradescope's image), the worker runs as `nobody` with a clean
environment, and can read neither root's private files nor the autograder's source and results."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labkit.course.course import resolve
from labkit.grading.engine import grade
from labkit.sandbox.modes import choose, user_works
from labkit.sandbox.worker import Worker

TOY = Path(__file__).resolve().parents[1] / "toy"
SOLUTION = (TOY / "exercise99" / "solution.py").read_text()

needs_user = pytest.mark.skipif(bool(user_works()), reason=f"--sandbox user cannot run here: {user_works()}")


@needs_user
def test_the_worker_runs_as_nobody_and_cannot_read_root_only_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the grader's eyes only")
    secret.chmod(0o600)
    spy = (f"import os\nprint('UID', os.getuid())\ntry:\n    open({str(secret)!r}).read()\n    print('READ it')\n"
           "except OSError as exc:\n    print('REFUSED', type(exc).__name__)\n")
    student = tmp_path / "exercise99.py"
    student.write_text(spy + SOLUTION)
    with Worker("user") as worker:
        report = grade(resolve("exercise99", TOY), student, worker=worker)
    assert report.sandbox == "user" and report.score == report.max_score, report.results
    out = report.results[0].output
    assert "UID 65534" in out and "REFUSED PermissionError" in out and "READ it" not in out, out


def test_user_mode_is_refused_clearly_where_it_cannot_run(monkeypatch):
    from labkit.sandbox import modes
    from labkit.sandbox.errors import SandboxError

    modes.user_works.cache_clear()
    monkeypatch.setattr(modes.os, "geteuid", lambda: 1000)
    try:
        assert "only root" in modes.user_works()
        with pytest.raises(SandboxError, match="--sandbox user: only root"):
            choose("user")
    finally:
        modes.user_works.cache_clear()


def test_the_autograder_makes_its_source_and_results_private(tmp_path):
    from labkit.classroom.gradescope import private

    (tmp_path / "source").mkdir(mode=0o755)
    private(tmp_path / "source", tmp_path / "results")
    if os.geteuid() == 0:
        assert all((tmp_path / d).stat().st_mode & 0o777 == 0o700 for d in ("source", "results"))
    else:
        assert (tmp_path / "source").stat().st_mode & 0o777 == 0o755  # nothing to protect from ourselves
