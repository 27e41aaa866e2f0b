"""course.toml: found, validated with file and line, and applied to exercises and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.checks import CheckSpec
from labkit.course.catalog import CatalogError
from labkit.course.course import Course, all_exercises, current_course, find_course, load_course
from labkit.grading.plan import load_checks

ROOT = Path(__file__).resolve().parents[2]


def spec(name: str, points: int, timeout: float | None = None, hidden: bool = False) -> CheckSpec:
    return CheckSpec(name, name.replace("_", " "), points, lambda sub: None, timeout=timeout, hidden=hidden)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "course.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_repository_course_is_the_full_curriculum_unchanged():
    course = load_course(ROOT / "course.toml")
    found = all_exercises(ROOT / "exercises")
    assert [e.id for e in course.exercises(found)] == [f"exercise{n}" for n in range(1, 9)]
    for ex in course.exercises(found):
        checks = load_checks(ex)[0]
        applied = course.apply(ex.id, checks)
        assert [c.points for c in applied] == [c.points for c in checks] and sum(c.points for c in applied) == ex.points
        assert [c.hidden for c in applied] == [c.hidden for c in checks] and course.time_scale_for(ex.id) == 1.0


def test_found_by_flag_then_environment_then_beside_the_exercises(tmp_path, monkeypatch):
    (tmp_path / "exercises").mkdir()
    monkeypatch.delenv("LABKIT_COURSE", raising=False)
    assert find_course(root=tmp_path / "exercises") is None
    assert current_course(root=tmp_path / "exercises") == Course()  # the default: every exercise, unchanged
    beside = write(tmp_path, 'exercises = []\n')
    assert find_course(root=tmp_path / "exercises") == beside
    monkeypatch.setenv("LABKIT_COURSE", str(tmp_path / "env.toml"))
    assert find_course(root=tmp_path / "exercises") == tmp_path / "env.toml"
    assert find_course(tmp_path / "flag.toml", root=tmp_path / "exercises") == tmp_path / "flag.toml"


def test_default_course_keeps_every_exercise():
    found = all_exercises(ROOT / "exercises")
    assert Course().exercises(found) == found
    checks = [spec("a", 1), spec("b", 2)]
    assert Course().apply("exercise1", checks) is checks


def test_order_points_overrides_visibility_and_time_scale(tmp_path):
    course = load_course(write(tmp_path, '''\
title = "hw1"
time_scale = 1.5
exercises = ["exercise2", "exercise1"]

[exercise.exercise1]
points = 10
time_scale = 2
hidden = ["b"]
reveal = true

[exercise.exercise1.checks]
a = 3
'''))
    chosen = course.exercises(all_exercises(ROOT / "exercises"))
    assert [(e.id, e.order) for e in chosen] == [("exercise2", 1), ("exercise1", 2)]
    assert chosen[1].points == 10 and chosen[0].points == 13
    checks = [spec("a", 1), spec("b", 2, timeout=4), spec("c", 5, hidden=True)]
    applied = course.apply("exercise1", checks)
    assert [c.points for c in applied] == [3, 2, 5]  # 3 + 2 + 5 = 10: no scaling needed
    assert [c.hidden for c in applied] == [False, True, True]
    assert applied[1].timeout == 12 and applied[0].timeout is None and course.time_scale_for("exercise1") == 3
    assert course.points_for("exercise1", "a", checks) == 3
    assert course.visibility("exercise1").hidden == {"b"} and course.visibility("exercise1").reveal
    assert course.time_scale_for("exercise2") == 1.5


def test_points_scale_to_the_exercise_total(tmp_path):
    course = load_course(write(tmp_path, 'exercises = ["exercise1"]\n[exercise.exercise1]\npoints = 5\n'))
    assert [c.points for c in course.apply("exercise1", [spec("a", 1), spec("b", 3)])] == [1.25, 3.75]


@pytest.mark.parametrize("text, message", [
    ('title = "x"\ntime_scal = 2\n', "course.toml:2: unknown key 'time_scal'"),
    ('exercises = ["exercise1"]\n\n[exercise.exercise1]\npionts = 3\n',
     "course.toml:4: unknown key 'pionts' in [exercise.exercise1]"),
    ('exercises = ["exercise1"]\n[exercise.exercise2]\npoints = 3\n',
     "course.toml:2: [exercise.exercise2] configures an exercise not listed"),
    ('time_scale = 0\n', "course.toml:1: time_scale must be a number > 0"),
    ('exercises = "exercise1"\n', "course.toml:1: exercises must be a list"),
    ('[exercise.exercise1]\nhidden = "a"\n', "course.toml:2: hidden must be a list of check names"),
    ('[exercise.exercise1]\nhidden = ["a"]\nvisible = ["a"]\n', "course.toml:3: a listed as hidden and visible"),
    ('[exercise.exercise1]\npoints = -1\n', "course.toml:2: points must be a positive number"),
    ('title = \n', "not valid TOML"),
    ('title = "x"\nfeedback = "answers"\n', "course.toml:2: feedback must be \"message\""),
    ('feedback = true\n', "course.toml:1: feedback must be"),
])
def test_invalid_course_files_are_reported_with_their_line(tmp_path, text, message):
    with pytest.raises(CatalogError) as err:
        load_course(write(tmp_path, text))
    assert message in str(err.value)


def test_unknown_exercises_and_checks_are_reported_with_their_line(tmp_path):
    course = load_course(write(tmp_path, 'exercises = ["exercise1", "exercise42"]\n\n[exercise.exercise1]\n'
                                         'hidden = ["nope"]\n[exercise.exercise1.checks]\nalso_nope = 2\n'))
    with pytest.raises(CatalogError, match=r"course.toml:1: no exercise 'exercise42'"):
        course.exercises(all_exercises(ROOT / "exercises"))
    problems = course.unknown_checks("exercise1", {"a"})
    assert any("course.toml:6: exercise1 has no check 'also_nope'" in p for p in problems)
    assert any("course.toml:4: exercise1 has no check 'nope' (hidden)" in p for p in problems)
    with pytest.raises(CatalogError, match="has no check"):
        course.apply("exercise1", [spec("a", 1)])


def test_the_feedback_level_defaults_to_the_message_and_the_repository_course_says_so(tmp_path):
    assert Course().feedback == "message" and load_course(write(tmp_path, "")).feedback == "message"
    assert load_course(write(tmp_path, 'feedback = "hint"\n')).feedback == "hint"
    assert load_course(Path(__file__).parents[2] / "course.toml").feedback == "message"
