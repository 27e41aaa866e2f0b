"""The author's self-check over the whole course: every solution passes, every starter scores zero."""

from __future__ import annotations

import ast
import re

import pytest

from labkit.course.course import all_exercises
from labkit.grading.plan import load_checks
from labkit.grading.report import summary

EXERCISES = [ex.id for ex in all_exercises()]


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_solution_passes_every_check_this_machine_can_run(grade_source, solution_source, exercise_id):
    report = grade_source(exercise_id, solution_source(exercise_id))
    gpu_checks = {c.name for c in load_checks(next(e for e in all_exercises() if e.id == exercise_id))[0]
                  if c.needs_gpus > report_gpus(report)}
    for r in report.results:
        if r.name in gpu_checks:
            assert r.status == "skipped" and "needs" in r.message, (r.name, r.status, r.message)
        elif r.status == "inconclusive":  # a timing check on a machine other jobs load: it must say so
            assert "busy" in r.message, (r.name, r.message)
        else:
            assert r.status == "passed", (r.name, r.status, r.message)
            assert r.seconds < 90, (r.name, r.seconds)  # every CPU check inside a minute and a half on two cores
    assert report.score == report.max_score > 0  # inconclusive checks count neither way
    exercise = next(e for e in all_exercises() if e.id == exercise_id)
    if exercise.data:  # a check that trains says on what
        assert report.data == exercise.data and f"data: {exercise.data}" in summary(report, columns=0)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_starter_scores_zero_without_breaking_the_grader(grade_source, starter_source, exercise_id):
    report = grade_source(exercise_id, starter_source(exercise_id))
    assert report.score == 0 and report.count("passed") == 0, f"{exercise_id}'s starter already passes a check"
    assert {r.status for r in report.results} <= {"failed", "error", "skipped"}
    assert report.count("error") > 0
    assert all("not implemented yet" in r.message for r in report.results if r.status == "error")


def report_gpus(report) -> int:
    return len(report.fingerprint.get("gpus", []))


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_both_statements_show_every_starter_function_with_its_parameters(exercise_id):
    """The contract a student reads (README.md, README.zh-CN.md) is the one the starter and the checks use."""
    exercise = next(e for e in all_exercises() if e.id == exercise_id)
    starter = ast.parse(exercise.starter.read_text(encoding="utf-8"))
    want = {f.name: [a.arg for a in f.args.args + f.args.kwonlyargs] for f in starter.body
            if isinstance(f, ast.FunctionDef)}
    for readme in ("README.md", "README.zh-CN.md"):
        shown = {}
        for block in re.findall(r"```python\n(.*?)```", (exercise.folder / readme).read_text(encoding="utf-8"), re.S):
            for name, params in re.findall(r"^def (\w+)\((.*?)\)[ \t]*(?:->|:|$)", block, re.M | re.S):
                parts = [p.strip() for p in re.split(r",(?![^\[]*\])", params) if p.strip() not in ("", "*")]
                shown[name] = [p.split(":")[0].split("=")[0].strip().lstrip("*") for p in parts]
        assert {n: shown.get(n) for n in want} == want, f"{exercise_id}/{readme} differs from starter.py"
