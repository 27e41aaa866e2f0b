"""`labkit dev new` and course.toml agree: the new exercise is added to a course that lists its exercises (or the
author is told exactly what to add), and an installed labkit is never written into."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from labkit.authoring import scaffold
from labkit.cli.main import cli

COURSE = '''\
title = "Spring"   # a comment that must survive
exercises = ["alpha",
             "beta"]

[exercise.alpha]
points = 2
'''


def run(*args, **env):
    return CliRunner().invoke(cli, [str(a) for a in args], env={"LABKIT_COURSE": None, **env})


@pytest.fixture
def course(tmp_path) -> Path:
    root = tmp_path / "exercises"
    for name in ("alpha", "beta"):
        assert run("dev", "new", name, "--title", name.title(), "--root", root).exit_code == 0  # no course yet
    (tmp_path / "course.toml").write_text(COURSE)
    return tmp_path


def test_new_adds_the_exercise_to_the_course_and_check_knows_it(course):
    made = run("dev", "new", "gamma", "--title", "Gamma", "--root", course / "exercises")
    assert made.exit_code == 0, made.output
    assert f'added "gamma" to the exercises of {course / "course.toml"}' in made.output
    text = (course / "course.toml").read_text()
    assert tomllib.loads(text)["exercises"] == ["alpha", "beta", "gamma"]
    assert text.replace(',\n             "beta", "gamma"]', ',\n             "beta"]') == COURSE  # nothing else moved
    env = {"LABKIT_EXERCISES": str(course / "exercises")}
    checked = run("check", "gamma", "--file", course / "solutions" / "gamma.py", **env)
    assert checked.exit_code == 0 and "unknown exercise" not in checked.output, checked.output
    listed = run("dev", "check", "gamma", "--root", course / "exercises")
    assert listed.exit_code == 0, listed.output


def test_new_says_what_to_add_when_the_list_cannot_be_edited_safely(course):
    tricky = COURSE.replace('"beta"]', '"beta",  # last one ]\n]')
    (course / "course.toml").write_text(tricky)
    made = run("dev", "new", "gamma", "--title", "Gamma", "--root", course / "exercises")
    assert made.exit_code == 0, made.output
    assert 'lists the course\'s exercises: add "gamma" to `exercises = [...]`' in made.output
    assert (course / "course.toml").read_text() == tricky  # left as it was


def test_new_leaves_a_course_without_a_list_alone(tmp_path):
    (tmp_path / "course.toml").write_text('title = "All of them"\n')
    made = run("dev", "new", "alpha", "--title", "Alpha", "--root", tmp_path / "exercises")
    assert made.exit_code == 0 and "course.toml" not in made.output, made.output
    assert (tmp_path / "course.toml").read_text() == 'title = "All of them"\n'


def test_new_refuses_to_write_into_an_installed_labkit(tmp_path, monkeypatch):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "labkit" / "exercises").mkdir(parents=True)
    monkeypatch.setattr(scaffold, "site_dirs", lambda: [site.resolve()])
    made = run("dev", "new", "gamma", "--title", "Gamma", "--root", site / "labkit" / "exercises")
    assert made.exit_code == 2 and "Traceback" not in made.output, made.output
    assert "is inside the installed labkit" in made.output and "--root my-course/exercises" in made.output
    assert not (site / "labkit" / "exercises" / "gamma").exists() and not (site / "labkit" / "solutions").exists()
    mine = run("dev", "new", "gamma", "--title", "Gamma", "--root", tmp_path / "course" / "exercises")
    assert mine.exit_code == 0, mine.output  # a course folder of one's own is fine


def test_the_checkout_is_not_an_installed_package():
    assert scaffold.installed_home(scaffold.PACKAGE.parent / "exercises") is None
