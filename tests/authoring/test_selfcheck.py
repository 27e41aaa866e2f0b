"""`labkit dev new` scaffolds an exercise that works at once; `labkit dev check` rejects each kind of breakage."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from labkit.authoring.scaffold import scaffold
from labkit.authoring.selfcheck import check_metadata
from labkit.cli.dev import dev, pack

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "broken"
cli = click.Group("labkit", commands={"dev": dev, "pack": pack})


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_new_scaffolds_an_exercise_whose_solution_passes_and_starter_fails(tmp_path):
    root = tmp_path / "exercises"
    made = run("dev", "new", "exercise9", "--title", "Scale a tensor", "--root", root)
    assert made.exit_code == 0, made.output
    for part in ("exercise.toml", "README.md", "starter.py", "checks.py"):
        assert (root / "exercise9" / part).is_file() and f"wrote {root / 'exercise9' / part}" in made.output
    assert (tmp_path / "solutions" / "exercise9.py").is_file()  # beside the exercises folder, like the repo's
    starter = (root / "exercise9" / "starter.py").read_text()
    assert starter.startswith('"""exercise9 — Scale a tensor.') and "# TODO" in starter
    assert 'raise NotImplementedError("exercise9: scale")' in starter
    checked = run("dev", "check", "--root", root)
    assert checked.exit_code == 0, checked.output
    assert "exercise9: ✓ solution 2/2" in checked.output and "starter 0/2" in checked.output
    assert "dev check: 1 exercise(s) ok" in checked.output


def test_new_refuses_to_overwrite_and_rejects_bad_ids(tmp_path):
    root = tmp_path / "exercises"
    assert run("dev", "new", "exercise9", "--title", "First", "--root", root).exit_code == 0
    (root / "exercise9" / "starter.py").write_text("# my work\n")
    again = run("dev", "new", "exercise9", "--title", "Second", "--root", root)
    assert again.exit_code == 2 and "already exists: refusing to overwrite exercise9" in again.output
    assert (root / "exercise9" / "starter.py").read_text() == "# my work\n"
    solution_only = tmp_path / "solutions" / "exercise10.py"
    solution_only.write_text("# kept\n")
    clash = run("dev", "new", "exercise10", "--title", "T", "--root", root)
    assert clash.exit_code == 2 and "exercise10.py already exists" in clash.output
    assert not (root / "exercise10").exists()
    bad = run("dev", "new", "Exercise-9", "--title", "T", "--root", root)
    assert bad.exit_code == 2 and "not a valid exercise id" in bad.output


def test_scaffold_orders_after_the_existing_exercises(tmp_path):
    scaffold("exercise1", "One", tmp_path / "ex", tmp_path / "sol")
    scaffold("exercise5", "Five", tmp_path / "ex", tmp_path / "sol")
    assert "order = 2" in (tmp_path / "ex" / "exercise5" / "exercise.toml").read_text()


@pytest.fixture(scope="module")
def broken_output() -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["dev", "check", "--root", str(BROKEN), "--solutions", str(BROKEN / "none")])
    return result.exit_code, result.output


@pytest.mark.parametrize("exercise, message", [
    ("unknown_key", "unknown_key/exercise.toml:8: unknown key 'pionts'"),
    ("unknown_key", "unknown_key/exercise.toml:13: unknown key 'memory' in [limits]"),
    ("missing_field", "missing_field/exercise.toml:8: missing field 'title'"),
    ("solution_fails", "the solution fails check adds: add(2, 3) should be 5"),
    ("starter_passes", "starter_passes's starter already passes check adds"),
    ("check_fields", "check adds has no hint (checks.py line 6)"),
    ("check_fields", "check untitled has no title"),
    ("check_fields", "check pointless has no points"),
    ("no_readme", "no_readme/README.md: the statement is missing"),
    ("points_mismatch", "points = 5 in exercise.toml, but its checks' points sum to 1"),
    ("gpus_mismatch", "needs_gpus = 2 in exercise.toml, but its checks need at most 0"),
    ("too_slow", "over 50% of its 1 s limit (exercise.toml's call_seconds=1)"),
])
def test_dev_check_rejects_each_broken_exercise_for_its_reason(broken_output, exercise, message):
    code, output = broken_output
    assert code == 1
    lines = [line for line in output.splitlines() if line.startswith(f"{exercise}: ✗")]
    assert any(message in line for line in lines), (message, lines)


def test_every_broken_exercise_is_rejected_and_counted(broken_output):
    code, output = broken_output
    folders = sorted(d.name for d in BROKEN.iterdir() if (d / "exercise.toml").is_file())
    assert len(folders) == 9
    assert all(f"{name}: ✗" in output for name in folders)
    assert "dev check: 12 problem(s) in 9 of 9 exercise(s)" in output


def test_metadata_problems_name_file_and_line(tmp_path):
    folder = tmp_path / "exercise3"
    folder.mkdir()
    (folder / "exercise.toml").write_text('id = "exercise3"\ntitle = ""\norder = "one"\npoints = 2\n'
                                          'hints = ["only one"]\n')
    problems = check_metadata(folder)
    assert any(":2: title is empty" in p for p in problems)
    assert any(":3: order should be a int, got str" in p for p in problems)
    assert any(":5: give at least 2 hints" in p for p in problems)


def test_dev_check_passes_on_a_real_exercise():
    result = run("dev", "check", "exercise1", "--root", ROOT / "exercises", "--solutions", ROOT / "solutions")
    assert result.exit_code == 0, result.output
    assert "exercise1: ✓ solution" in result.output and "starter 0/" in result.output


def test_authoring_guide_shows_the_scaffolds_real_output(tmp_path):
    guide = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    for path in scaffold("exercise9", "Scale a tensor", tmp_path / "exercises", tmp_path / "solutions"):
        assert path.read_text(encoding="utf-8").strip() in guide, f"docs/authoring.md is out of date: {path.name}"


def test_dev_check_reports_a_course_file_naming_missing_exercises(tmp_path):
    scaffold("exercise9", "Scale a tensor", tmp_path / "exercises", tmp_path / "solutions")
    (tmp_path / "course.toml").write_text('exercises = ["exercise9", "exercise10"]\n')  # found beside exercises/
    result = run("dev", "check", "--root", tmp_path / "exercises")
    assert result.exit_code == 1
    assert "course: ✗" in result.output and "course.toml:1: no exercise 'exercise10'" in result.output
    assert "exercise9: ✓" in result.output and "and the course file" in result.output
