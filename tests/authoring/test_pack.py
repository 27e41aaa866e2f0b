"""`labkit pack`: the student half holds no solution and no hidden check; the grader half can grade."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from labkit.cli.dev import pack

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hidden-check-secret-7f3a"
HIDDEN = f'''"""An instructor's hidden check."""

from labkit.checks import check, expect


@check(points=1, title="pick_device('cpu') answers", hint="return torch.device('cpu')")
def secret_cpu(sub):
    expect(sub.call("pick_device", "cpu") is not None, "{SECRET}")
'''
cli = click.Group("labkit", commands={"pack": pack})


@pytest.fixture
def assignment(tmp_path) -> Path:
    """hw1: exercise1 and exercise2, with hidden checks for exercise1."""
    (tmp_path / "hidden" / "exercise1").mkdir(parents=True)
    (tmp_path / "hidden" / "exercise1" / "checks.py").write_text(HIDDEN)
    (tmp_path / "hidden" / "exercise1" / "visibility.toml").write_text('hidden = ["to_device_copies"]\n')
    course = tmp_path / "hw1.toml"
    course.write_text('title = "Homework 1"\nchecks_dir = "hidden"\nexercises = ["exercise1", "exercise2"]\n'
                      '[exercise.exercise2]\npoints = 10\n')
    return course


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def contents(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n).decode("utf-8") for n in z.namelist()}


def test_student_pack_has_starters_and_statements_but_no_solution_and_no_hidden_check(tmp_path, assignment):
    out = tmp_path / "hw1.zip"
    result = run("pack", "student", "-o", out, "--course", assignment, "--root", ROOT / "exercises")
    assert result.exit_code == 0, result.output
    files = contents(out)
    expected = {f"exercises/{ex}/{part}" for ex in ("exercise1", "exercise2")
                for part in ("exercise.toml", "README.md", "README.zh-CN.md", "starter.py", "checks.py")}
    assert set(files) == expected | {"course.toml", "README.md"}
    assert not [n for n in files if "solution" in n.lower() or n.startswith(("checks/", "hidden/"))]
    assert "checks_dir" not in files["course.toml"] and 'exercises = ["exercise1", "exercise2"]' in files["course.toml"]
    everything = "\n".join(files.values())
    assert SECRET not in everything and "secret_cpu" not in everything
    for ex in ("exercise1", "exercise2"):
        solution = (ROOT / "solutions" / f"{ex}.py").read_text()
        starter = (ROOT / "exercises" / ex / "starter.py").read_text()
        assert files[f"exercises/{ex}/starter.py"] == starter
        # every substantial line of the solution that the starter lacks stays out of the pack
        answers = {line.strip() for line in solution.splitlines() if len(line.strip()) > 30} - \
            {line.strip() for line in starter.splitlines()}
        assert answers, ex
        leaked = [line for line in answers if line in everything and line not in files[f"exercises/{ex}/checks.py"]]
        assert not leaked, leaked
    assert "- `exercise2` (10 points)" in files["README.md"]


def test_student_pack_refuses_hidden_checks_and_warns_about_hidden_builtins(tmp_path, assignment):
    refused = run("pack", "student", "-o", tmp_path / "x.zip", "--checks-dir", tmp_path / "hidden",
                  "--course", assignment, "--root", ROOT / "exercises")
    assert refused.exit_code == 2 and "hidden checks never go to students" in refused.output
    assignment.write_text(assignment.read_text() + 'hidden = ["wrap_bare"]\n')
    warned = run("pack", "student", "-o", tmp_path / "x.zip", "--course", assignment, "--root", ROOT / "exercises")
    assert warned.exit_code == 0 and "warning: exercise2: wrap_bare hidden by course.toml" in warned.output


def test_grader_pack_holds_everything_and_grades_with_the_hidden_checks(tmp_path, assignment):
    out = tmp_path / "hw1-grader.zip"
    result = run("pack", "grader", "-o", out, "--course", assignment, "--root", ROOT / "exercises",
                 "--solutions", ROOT / "solutions")
    assert result.exit_code == 0, result.output
    files = contents(out)
    for name in ("solutions/exercise1.py", "solutions/exercise2.py", "checks/exercise1/checks.py",
                 "checks/exercise1/visibility.toml", "exercises/exercise2/checks.py", "labkit/grading/engine.py",
                 "pyproject.toml", "constraints.txt", "LICENSE", "course.toml", "GRADER.md"):
        assert name in files, name
    assert not [n for n in files if "exercise3" in n or "__pycache__" in n]
    assert files["course.toml"].startswith('checks_dir = "checks"')
    unpacked = tmp_path / "grader"
    zipfile.ZipFile(out).extractall(unpacked)
    env = {**os.environ, "PYTHONPATH": str(unpacked), "LABKIT_EXERCISES": str(unpacked / "exercises")}
    env.pop("LABKIT_COURSE", None)
    graded = subprocess.run([sys.executable, "-m", "labkit", "check", "exercise1", "--file", "solutions/exercise1.py",
                             "--checks-dir", "checks", "--sandbox", "none", "--json"],
                            cwd=unpacked, env=env, capture_output=True, text=True, timeout=120)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert '"secret_cpu"' in graded.stdout and str(unpacked / "labkit") in subprocess.run(
        [sys.executable, "-c", "import labkit; print(labkit.__file__)"], cwd=unpacked, env=env,
        capture_output=True, text=True).stdout
    built = subprocess.run([sys.executable, "-m", "labkit", "gradescope", "build", "exercise1", "-o", "ag.zip",
                            "--checks-dir", "checks"], cwd=unpacked, env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert "hidden/exercise1/checks.py" in zipfile.ZipFile(unpacked / "ag.zip").namelist()


def test_grader_pack_needs_every_solution(tmp_path, assignment):
    result = run("pack", "grader", "-o", tmp_path / "g.zip", "--course", assignment, "--root", ROOT / "exercises",
                 "--solutions", tmp_path)
    assert result.exit_code == 2 and "no reference solution for exercise1" in result.output
    assert not (tmp_path / "g.zip").exists()


def test_packs_of_named_exercises_and_the_default_course(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_COURSE", raising=False)
    out = tmp_path / "ex3.zip"
    result = run("pack", "student", "exercise3", "-o", out, "--root", ROOT / "exercises")
    assert result.exit_code == 0, result.output
    assert {n.split("/")[1] for n in contents(out) if n.startswith("exercises/")} == {"exercise3"}


def test_named_exercises_must_belong_to_the_course(tmp_path, assignment):
    result = run("pack", "student", "ex2", "exercise1", "-o", tmp_path / "a.zip", "--course", assignment,
                 "--root", ROOT / "exercises")
    assert result.exit_code == 0, result.output
    assert "pack of exercise2, exercise1" in result.output
    outside = run("pack", "student", "3", "-o", tmp_path / "b.zip", "--course", assignment,
                  "--root", ROOT / "exercises")
    assert outside.exit_code == 2 and "3 not in the course" in outside.output
