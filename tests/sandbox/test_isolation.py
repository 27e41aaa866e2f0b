"""What one check's child sees: no grader secrets, no check name, and nothing another check or student left behind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from labkit.course.course import resolve
from labkit.grading.engine import grade, seed_for

TOY = Path(__file__).resolve().parent.parent / "toy"
SOLUTION = (TOY / "exercise99" / "solution.py").read_text()
MARKERS = ("/tmp/labkit-isolation-marker", "/dev/shm/labkit-isolation-marker")
SPY = '''
import os
_rc = os.path.join(os.path.expanduser("~"), ".config", "matplotlib", "matplotlibrc")
import torch
print("VIEW", repr({"env": dict(os.environ), "cwd": os.getcwd(), "seed": torch.initial_seed(),
                    "seen": [p for p in MARKERS + (_rc,) if os.path.exists(p)]}))
_beside = os.path.join(os.path.dirname(os.getcwd()), "planted.txt")  # beside this check's own folder
SEEN_BESIDE = os.path.exists(_beside)
print("BESIDE", SEEN_BESIDE)
try:
    with open(_beside, "w") as _f:
        _f.write("left behind")
except OSError:
    pass
for _p in MARKERS:  # what a prankster leaves for the next check, or the next student
    try:
        with open(_p, "w") as _f:
            _f.write("left behind")
    except OSError:
        pass
os.makedirs(os.path.dirname(_rc), exist_ok=True)
with open(_rc, "w") as _f:
    _f.write("figure.dpi: 1\\n")
'''


def views(report) -> dict[str, dict]:
    """{check name: what its child saw at import}, from each check's captured output."""
    found = {}
    for r in report.results:
        for line in r.output.splitlines():
            if line.startswith("VIEW "):
                found[r.name] = ast.literal_eval(line[5:])
    return found


@pytest.fixture
def spied(worker, tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_TEST_SECRET", "s3cr3t-token-5d41")  # a grader's secret, e.g. an LMS token
    student = tmp_path / "exercise99.py"
    student.write_text(f"MARKERS = {MARKERS!r}\n" + SPY + SOLUTION)
    try:
        report = grade(resolve("exercise99", TOY), student, worker=worker)
        yield report, views(report), worker.sandbox
    finally:
        for p in MARKERS:
            Path(p).unlink(missing_ok=True)


def test_the_child_sees_an_allowlisted_environment_and_no_check_name(spied):
    report, seen, _ = spied
    assert report.score == report.max_score and len(seen) >= 4, report.results
    names = {r.name for r in report.results}
    for _check, view in seen.items():
        assert "LABKIT_TEST_SECRET" not in view["env"] and "s3cr3t" not in repr(view["env"])
        assert not any(n in view["cwd"] for n in names), view["cwd"]  # nothing tells it which check runs
        assert view["env"]["HOME"] == view["cwd"] and view["env"]["TMPDIR"].startswith(view["cwd"]), view["env"]
        assert view["env"]["MPLCONFIGDIR"].startswith(view["cwd"])
    assert len({v["cwd"] for v in seen.values()}) == len(seen)  # a folder of its own per check
    for check, view in seen.items():  # the child's seed does not give away the one the check draws its inputs from
        assert view["seed"] != seed_for(f"exercise99.{check}", str(report.seed)), check


def test_nothing_one_check_leaves_reaches_the_next(spied):
    report, seen, sandbox = spied
    beside = [line for r in report.results for line in r.output.splitlines() if line.startswith("BESIDE")]
    assert len(beside) >= 4 and set(beside) == {"BESIDE False"}, beside  # swept between checks
    later = [v["seen"] for v in list(seen.values())[1:]]
    assert all(not any(p.endswith("matplotlibrc") for p in s) for s in later), later  # a fresh HOME each check
    if sandbox == "bwrap":  # /tmp and /dev/shm are the sandbox's own there, emptied after every check
        assert all(not s for s in later), later


def test_a_bug_in_a_check_is_labkits_error_not_the_students_failure(worker, tmp_path):
    checks = tmp_path / "checks" / "exercise99"
    checks.mkdir(parents=True)
    (checks / "checks.py").write_text(
        "from labkit.checks import check\n\n\n"
        "@check(points=1, title='a check with a bug')\n"
        "def buggy(sub):\n"
        "    sub.call('add', 1, 2)\n"
        "    return {}['missing']\n")
    student = tmp_path / "exercise99.py"
    student.write_text(SOLUTION)
    report = grade(resolve("exercise99", TOY), student, worker=worker, checks_dir=tmp_path / "checks")
    bug = next(r for r in report.results if r.name == "buggy")
    assert bug.status == "error" and bug.message.startswith("labkit could not judge this"), bug
    assert "KeyError" in bug.message and "checks.py" in bug.message  # where it broke, for the instructor
    assert all(r.status == "passed" for r in report.results if r.name not in ("buggy", "many_gpus"))


def test_the_seed_includes_the_graders_salt(worker, tmp_path):
    student = tmp_path / "exercise99.py"
    student.write_text(SOLUTION)
    ex = resolve("exercise99", TOY)
    plain, salted = grade(ex, student, worker=worker), grade(ex, student, worker=worker, salt="class-secret")
    again = grade(ex, student, worker=worker, salt="class-secret")
    assert plain.seed == seed_for("exercise99", plain.sha256) != salted.seed == again.seed  # a regrade reproduces
    assert salted.seed == seed_for("exercise99", plain.sha256, "class-secret")
