"""Gradescope: the autograder zip, its run_autograder script, and results.json checked against the spec's schema."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from labkit.classroom import gradescope as gs
from labkit.cli.gradescope import gradescope
from labkit.course.catalog import CatalogError
from labkit.course.course import resolve
from labkit.paths import solutions_root

HERE = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((HERE / "gradescope_results.schema.json").read_text())
LABKIT = Path(sys.executable).parent / "labkit"
EXERCISE2 = resolve("exercise2")

HIDDEN = '''
from labkit.checks import check, expect


@check(points=1, title="replica_batch_sizes on the instructor's secret case")
def secret_sizes(sub):
    got = sub.call("replica_batch_sizes", 7, 3)
    expect(got == [3, 3, 1], f"SECRET replica_batch_sizes(7, 3) gave {got!r}")
'''


def valid(results: dict) -> dict:
    """`results` after checking it against Gradescope's results.json schema."""
    jsonschema.Draft202012Validator(SCHEMA).validate(results)
    return results


def most(results: dict) -> float:
    """The points the tests can give here (checks skipped for want of GPUs carry none)."""
    return sum(t.get("max_score", 0) for t in results["tests"])


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """An /autograder-like tree whose submission/ holds `files`."""
    root = tmp_path / "autograder"
    for name, text in files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_text(text)
    return root


def written(root: Path) -> dict:
    return valid(json.loads((root / "results" / "results.json").read_text()))


@pytest.fixture(scope="module")
def solution() -> str:
    return (solutions_root() / "exercise2.py").read_text()


@pytest.fixture
def checks_dir(tmp_path) -> Path:
    for ex in ("exercise2", "exercise3"):
        (tmp_path / "instructor" / ex).mkdir(parents=True)
        (tmp_path / "instructor" / ex / "checks.py").write_text(HIDDEN)
    return tmp_path / "instructor"


@pytest.fixture(scope="module")
def plain_zip(tmp_path_factory) -> Path:
    return gs.build(["exercise2"], tmp_path_factory.mktemp("zip") / "autograder.zip")


def test_the_zip_holds_the_scripts_and_the_source_but_no_solutions_or_tests(plain_zip):
    with zipfile.ZipFile(plain_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in zf.infolist()}
        script = zf.read("run_autograder").decode()
        setup = zf.read("setup.sh").decode()
        salt = zf.read(gs.SALT).decode()
    assert {"setup.sh", "run_autograder", "labkit/pyproject.toml", "labkit/constraints.txt", "labkit/LICENSE",
            "labkit/labkit/grading/engine.py", "labkit/exercises/exercise2/checks.py"} <= names
    assert modes["run_autograder"] == modes["setup.sh"] == 0o755
    assert modes[gs.SALT] == 0o600 and len(salt) == 32  # the seeds' secret, readable by the grader alone
    assert not [n for n in names if "solutions/" in n or "tests/" in n or "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("hidden/")]
    assert "gradescope run exercise2 --root" in script and "--checks-dir" not in script
    assert "python3 -m venv /opt/labkit" in setup and "-c \"$SRC/labkit/constraints.txt\"" in setup
    for text in (script, setup):
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0  # valid bash


def test_the_zip_carries_only_the_named_exercises_hidden_checks(tmp_path, checks_dir):
    path = gs.build(["ex2"], tmp_path / "autograder.zip", checks_dir=checks_dir)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        script = zf.read("run_autograder").decode()
    assert "hidden/exercise2/checks.py" in names
    assert not [n for n in names if n.startswith("hidden/exercise3")]
    assert '--checks-dir "$AUTOGRADER_ROOT/source/hidden"' in script


def test_build_refuses_unknown_exercises_and_empty_checks_dirs(tmp_path):
    with pytest.raises(CatalogError, match="unknown exercise 'exercise42'"):
        gs.build(["exercise42"], tmp_path / "a.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="has no folder for exercise2"):
        gs.build(["exercise2"], tmp_path / "a.zip", checks_dir=tmp_path / "empty")
    got = CliRunner().invoke(gradescope, ["build", "exercise42", "-o", str(tmp_path / "a.zip")])
    assert got.exit_code == 2 and "unknown exercise 'exercise42'" in got.output
    assert not (tmp_path / "a.zip").exists()


def test_build_without_a_source_tree_says_so(tmp_path, monkeypatch):
    from labkit import paths

    monkeypatch.setenv("LABKIT_EXERCISES", str(paths.exercises_root()))  # a wheel carries its exercises, but
    monkeypatch.setattr(paths, "IMPORT_ROOT", tmp_path / "site-packages")  # no checkout around the package
    with pytest.raises(CatalogError, match="no labkit source tree"):
        gs.build(["exercise2"], tmp_path / "a.zip")


def test_the_cli_builds_a_zip(tmp_path):
    got = CliRunner().invoke(gradescope, ["build", "exercise2", "-o", str(tmp_path / "out" / "ag.zip")])
    assert got.exit_code == 0, got.output
    assert zipfile.is_zipfile(tmp_path / "out" / "ag.zip")


def test_the_solution_passes_every_check_this_machine_can_run(worker, tmp_path, solution):
    root = tree(tmp_path, {"exercise2.py": solution})
    results = gs.run(["exercise2"], root, worker=worker)
    assert written(root) == results
    assert results["score"] == most(results) == results["extra_data"]["max_score"] > 0
    assert results["execution_time"] >= 0 and "exercise2: graded exercise2.py" in results["output"]


def test_the_autograders_salt_goes_into_every_seed(worker, tmp_path, solution, plain_zip):
    from labkit.grading.engine import seed_for

    root = tree(tmp_path, {"exercise2.py": solution})
    with zipfile.ZipFile(plain_zip) as zf:
        (root / "source").mkdir(exist_ok=True)
        (root / "source" / gs.SALT).write_bytes(zf.read(gs.SALT))
    gs.run(["exercise2"], root, worker=worker)
    first = gs.run(["exercise2"], root, worker=worker)["output"]
    sha = hashlib.sha256(solution.encode()).hexdigest()
    salted = seed_for("exercise2", sha, (root / "source" / gs.SALT).read_text())
    assert f"seed {salted}" in first and f"seed {seed_for('exercise2', sha)}" not in first
    assert gs.run(["exercise2"], root, worker=worker)["output"] == first  # a regrade reproduces the verdicts


def test_files_beside_the_submission_are_not_importable(worker, tmp_path, solution):
    boom = "raise SystemExit('this file must never be imported')\n"
    root = tree(tmp_path, {"exercise2.py": solution, "conftest.py": boom, "torch.py": boom,
                           "matplotlib/__init__.py": boom})
    results = gs.run(["exercise2"], root, worker=worker)
    assert results["score"] == most(results) > 0, results["output"]


def test_the_starter_scores_zero(worker, tmp_path):
    root = tree(tmp_path, {"exercise2.py": EXERCISE2.starter.read_text()})
    gs.run(["exercise2"], root, worker=worker)
    results = written(root)
    assert results["score"] == 0 < most(results)


def test_a_syntax_error_still_gives_valid_results(worker, tmp_path, solution):
    root = tree(tmp_path, {"exercise2.py": solution + "\ndef broken(:\n"})
    results = gs.run(["exercise2"], root, worker=worker)
    assert written(root)["score"] == 0
    assert any("syntax error" in t["output"] for t in results["tests"])


def test_a_missing_file_names_the_expected_one(tmp_path):
    root = tree(tmp_path, {"notes.txt": "hi", "a.py": "", "b.py": ""})
    got = CliRunner().invoke(gradescope, ["run", "exercise2", "--root", str(root)])
    assert got.exit_code == 0, got.output
    results = written(root)
    assert results["score"] == 0 and "exercise2.py" in results["output"]
    (test,) = results["tests"]
    assert test["status"] == "failed" and test["max_score"] == EXERCISE2.points and "exercise2.py" in test["output"]


def test_the_submission_is_found_nested_but_never_through_a_link(tmp_path):
    sub = tmp_path / "submission"
    (sub / "repo" / "deep").mkdir(parents=True)
    (sub / "repo" / "exercise2.py").write_text("# nearest")
    (sub / "repo" / "deep" / "exercise2.py").write_text("# deeper")
    assert gs.find_submission(EXERCISE2, sub).path == sub / "repo" / "exercise2.py"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "exercise2.py").write_text("# not the student's")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "exercise2.py").symlink_to(outside / "exercise2.py")
    (linked / "dir").symlink_to(outside, target_is_directory=True)
    found = gs.find_submission(EXERCISE2, linked)
    assert found.path is None and "expected a file named exercise2.py" in found.note
    (linked / "mine.py").write_text("# the only Python file")
    assert gs.find_submission(EXERCISE2, linked).path == linked / "mine.py"
    assert gs.find_submission(EXERCISE2, linked, alone=False).path is None


def test_hidden_checks_are_graded_and_hidden(worker, tmp_path, solution, checks_dir):
    root = tree(tmp_path, {"exercise2.py": solution})
    results = gs.run(["exercise2"], root, checks_dir=checks_dir, worker=worker)
    by_name = {t["name"]: t for t in written(root)["tests"]}
    secret = by_name["exercise2: replica_batch_sizes on the instructor's secret case"]
    assert secret["visibility"] == "hidden" and secret["status"] == "passed"
    assert results["score"] == most(results)
    assert {t["visibility"] for t in results["tests"] if t["name"] != secret["name"]} == {"visible"}


def test_a_broken_grader_still_writes_results(tmp_path, monkeypatch):
    def explode(*_args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(gs, "_grade_all", explode)
    root = tree(tmp_path, {"exercise2.py": ""})
    results = gs.run(["exercise2"], root)
    assert written(root)["score"] == 0
    assert "the autograder itself failed: RuntimeError: disk on fire" in results["output"]


def run_script(zip_path: Path, tmp_path: Path, labkit: Path, solution: str) -> dict:
    """Unpack the zip as Gradescope does and run its real run_autograder with bash."""
    root = tree(tmp_path, {"exercise2.py": solution})
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(root / "source")
    script = root / "source" / "run_autograder"
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "LABKIT": str(labkit)}
    done = subprocess.run(["bash", str(script)], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    results = written(root)
    assert results["score"] == most(results) > 0, done.stdout + done.stderr
    assert "execution_time" in results
    return results


def test_run_autograder_with_the_installed_labkit(plain_zip, tmp_path, solution):
    assert LABKIT.exists(), "the tests run from the venv that `make install` builds"
    run_script(plain_zip, tmp_path, LABKIT, solution)


def test_run_autograder_writes_results_even_when_labkit_cannot_start(plain_zip, tmp_path):
    root = tree(tmp_path, {"exercise2.py": ""})
    with zipfile.ZipFile(plain_zip) as zf:
        zf.extractall(root / "source")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "LABKIT": str(tmp_path / "no-such-labkit")}
    subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, check=True)
    results = written(root)
    assert results["score"] == 0 and "the autograder itself failed" in results["output"]
    shutil.rmtree(root)
