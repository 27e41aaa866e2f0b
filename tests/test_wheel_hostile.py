"""The hostile suite again, from a built wheel installed in a fresh venv (which borrows this venv's torch).

An editable checkout is not what students and graders install: in a wheel the exercises (and their checks
files) sit inside the package the sandbox shows. This proves the attacks fail there too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from wheel_venv import fresh_venv

ROOT = Path(__file__).resolve().parent.parent
SUITE = ["conftest.py", "hostile", "toy", "sandbox/test_hostile.py"]


@pytest.mark.slow
def test_the_hostile_suite_fails_every_attack_from_a_wheel(tmp_path):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed: the attacks that read files are only meaningful inside it")
    python, site = fresh_venv(tmp_path)
    where = subprocess.run([str(python), "-c", "import labkit, labkit.paths as p; print(labkit.__file__); "
                            "print(p.exercises_root())"], capture_output=True, text=True, cwd=tmp_path, check=True)
    package, exercises = where.stdout.split()
    assert package.startswith(str(site)) and exercises.startswith(str(site)), where.stdout
    suite = tmp_path / "suite" / "tests"
    for part in SUITE:
        src, dst = ROOT / "tests" / part, suite / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABKIT_EXERCISES")}
    env["LABKIT_SOLUTIONS"] = str(ROOT / "solutions")  # a grader keeps them apart from the wheel
    # every attack file, from the wheel; exercise6's faked-clock speed check (a minute of DDP launches) runs in
    # the main suite: what it proves does not depend on how labkit was installed
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                          "ignore::pytest.PytestUnknownMarkWarning", "-x", "-k",
                          "not faked_clock", str(suite / "sandbox" / "test_hostile.py")],
                         capture_output=True, text=True, cwd=suite.parent, env=env, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout.split("\n")[-2], run.stdout[-1500:]
