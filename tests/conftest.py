"""Shared fixtures: grade a source text against an exercise with one warm worker per session."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from labkit.course.course import resolve
from labkit.grading.engine import grade
from labkit.grading.results import Report
from labkit.paths import solutions_root
from labkit.sandbox.worker import Worker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def worker():
    """One pre-imported grading worker shared by every test (a fresh child per check all the same).

    Sandboxed in bubblewrap wherever it works (CI installs it), so the suite proves the sandbox too.
    """
    with Worker(os.environ.get("LABKIT_TEST_SANDBOX", "auto")) as w:  # image-test: container
        yield w


@pytest.fixture
def grade_source(worker, tmp_path) -> Callable[..., Report]:
    """grade_source("exercise1", text, only=()) -> Report, grading `text` saved as the student's file."""

    def run(exercise_id: str, source: str, only: tuple[str, ...] | list[str] = ()) -> Report:
        exercise = resolve(exercise_id)
        path = tmp_path / exercise.filename
        path.write_text(source, encoding="utf-8")
        return grade(exercise, path, worker=worker, only=only)

    return run


@pytest.fixture
def solution_source() -> Callable[[str], str]:
    def read(exercise_id: str) -> str:
        return (solutions_root() / resolve(exercise_id).filename).read_text(encoding="utf-8")

    return read


@pytest.fixture
def starter_source() -> Callable[[str], str]:
    def read(exercise_id: str) -> str:
        return resolve(exercise_id).starter.read_text(encoding="utf-8")

    return read


def statuses(report: Report) -> dict[str, str]:
    """{check name: status}, for compact assertions."""
    return {r.name: r.status for r in report.results}


def result(report: Report, name: str):
    """The CheckResult called `name`."""
    return next(r for r in report.results if r.name == name)


def assert_fails(report: Report, phrases: dict[str, str]) -> None:
    """Each named check failed (not errored) with a message containing its phrase."""
    for name, phrase in phrases.items():
        failed = result(report, name)
        assert failed.status == "failed", (name, failed.status, failed.message)
        assert phrase in failed.message, failed.message
