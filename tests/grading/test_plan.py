"""Instructors' hidden checks: added from a checks directory, graded, and withheld from students' views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.course.catalog import CatalogError
from labkit.course.course import resolve
from labkit.grading.engine import grade
from labkit.grading.report import student_view, terminal, to_gradescope

from conftest import statuses

TOY = Path(__file__).parent.parent / "toy"
SOLUTION = (TOY / "exercise99" / "solution.py").read_text()

EXTRA = '''
from labkit.checks import check, expect
from labkit.recipe import Program


@check(points=2, title="add handles the secret huge case")
def secret_huge_add(sub):
    got = sub.run(Program().call("add", 10**12, -7, save="sum").report("sum"))["values"]["sum"]
    expect(got == 10**12 - 7, f"SECRET-INPUT add(10**12, -7) gave {got!r}")


@check(points=1, title="an added check the instructor shows", hidden=False)
def shown_extra(sub):
    expect(sub.call("add", 1, 1) == 2, "add(1, 1) should be 2")
'''


@pytest.fixture
def checks_dir(tmp_path) -> Path:
    folder = tmp_path / "instructor" / "exercise99"
    folder.mkdir(parents=True)
    (folder / "checks.py").write_text(EXTRA)
    (folder / "visibility.toml").write_text('hidden = ["adds_again"]\nvisible = ["shown_extra"]\n')
    return folder.parent


def grade_with(worker, tmp_path, source: str, checks_dir: Path):
    path = tmp_path / "exercise99.py"
    path.write_text(source)
    return grade(resolve("exercise99", TOY), path, worker=worker, checks_dir=checks_dir)


def test_added_checks_run_their_programs_with_their_visibility(worker, tmp_path, checks_dir):
    report = grade_with(worker, tmp_path, SOLUTION, checks_dir)
    got = statuses(report)
    assert got["secret_huge_add"] == "passed" and got["shown_extra"] == "passed", got
    assert report.score == report.max_score == 8
    hidden = {r.name for r in report.results if r.hidden}
    assert hidden == {"secret_huge_add", "adds_again"}  # added: hidden by default; built-in: hidden by the toml


def test_students_view_withholds_hidden_names_inputs_and_messages(worker, tmp_path, checks_dir):
    wrong = SOLUTION + "\ndef add(a, b):\n    return a + b if abs(a) < 10**6 else 0\n"
    report = grade_with(worker, tmp_path, wrong, checks_dir)
    assert statuses(report)["secret_huge_add"] == "failed"
    view = student_view(report)
    text = terminal(view) + json.dumps(view.to_dict())
    for secret in ("secret_huge_add", "SECRET-INPUT", "secret huge case", "adds_again"):
        assert secret not in text
    assert view.withheld == 2 and "hidden check" in terminal(view)  # every visible check passes: say so
    scored = to_gradescope([report])
    by_name = {t["name"]: t for t in scored["tests"]}
    assert by_name["exercise99: add handles the secret huge case"]["visibility"] == "hidden"
    assert "SECRET" not in scored["output"] and "2 hidden check(s)" in scored["output"]


def test_no_hidden_note_while_a_visible_check_fails(worker, tmp_path, checks_dir):
    report = grade_with(worker, tmp_path, SOLUTION + "\ndef add(a, b):\n    return a - b\n", checks_dir)
    assert "hidden check" not in terminal(student_view(report))


def test_reveal_shows_everything(worker, tmp_path, checks_dir):
    (checks_dir / "exercise99" / "visibility.toml").write_text("reveal = true\n")
    report = grade_with(worker, tmp_path, SOLUTION, checks_dir)
    assert "add handles the secret huge case" in terminal(student_view(report))
    assert all(t["visibility"] == "visible" for t in to_gradescope([report])["tests"])


@pytest.mark.parametrize("toml, checks, phrase", [
    ('hidden = ["no_such_check"]\n', "", "names no such check: no_such_check"),
    ('hiden = ["adds"]\n', "", "unknown key(s) hiden"),
    ('hidden = ["adds"]\nvisible = ["adds"]\n', "", "as hidden and visible"),
    ("", "from labkit.checks import check\n@check(points=1, title='x')\ndef adds(sub):\n    pass\n",
     "redefines check(s) adds"),
])
def test_bad_checks_directories_are_named(worker, tmp_path, toml, checks, phrase):
    folder = tmp_path / "bad" / "exercise99"
    folder.mkdir(parents=True)
    (folder / "visibility.toml").write_text(toml)
    if checks:
        (folder / "checks.py").write_text(checks)
    with pytest.raises(CatalogError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        grade_with(worker, tmp_path, SOLUTION, folder.parent)
