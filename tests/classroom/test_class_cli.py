"""`labkit grade` as a TA meets it: the sandbox on the first line, manifests honoured, roster strangers flagged,
Canvas's late marker kept, one student regraded, and a resumed run saying what it reused."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sandboxes import SANDBOX

from labkit.cli.main import cli
from labkit.sandbox import bwrap, container, modes

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "solutions" / "exercise1.py").read_text()
WRONG = GOOD + "\n\ndef pick_device(prefer='cuda'):\n    return torch.device('cuda')\n"


def handed_in(path: Path, exercise: str, filename: str, source: str) -> Path:
    """A zip shaped like `labkit submit`'s: the file, report.json, environment.json and manifest.json."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(filename, source)
        z.writestr("report.json", "{}")
        z.writestr("environment.json", "{}")
        z.writestr("manifest.json", json.dumps({"exercise": exercise, "file": filename, "sha256": "0" * 64}))
    return path


def canvas_class(root: Path) -> Path:
    """A Canvas download: name_[late_]userid_subid_file."""
    root.mkdir(parents=True)
    (root / "alice_12_100_exercise1.py").write_text(GOOD)
    (root / "bob_late_13_101_exercise1.py").write_text(GOOD + "# handed in after the deadline\n")
    handed_in(root / "carol_14_102_exercise3-submission.zip", "exercise3", "exercise3.py", "x = 3\n")
    handed_in(root / "erin_16_104_exercise1-submission.zip", "exercise1", "exercise1.py", GOOD + "# erin\n")
    (root / "dave_15_103_exercise1.py").write_text(WRONG)
    return root


def rows(out: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def results(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (out / "students").glob("*.json")}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("canvas")
    subs, out, roster = canvas_class(tmp / "subs"), tmp / "out", tmp / "roster.csv"
    roster.write_text("id,name\n12,Alice A\n13,Bob B\n14,Carol C\n16,Erin E\n99,Absent Person\n")
    args = ["grade", str(subs), "-e", "exercise1", "--jobs", "2", "--out", str(out), "--roster", str(roster), *SANDBOX]
    return args, out, CliRunner().invoke(cli, args)


def test_the_first_line_names_the_sandbox(graded):
    _, _, result = graded
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    want = "none" if SANDBOX else "bwrap" if not bwrap.bwrap_works() else "container"
    assert first.startswith(f"exercise1: sandbox {want};"), first


def test_a_submission_for_another_exercise_is_that_students_error(graded):
    _, out, result = graded
    got = rows(out)
    assert got["14"]["status"] == "error", got["14"]
    assert "this is an exercise3 submission" in got["14"]["error"] and "labkit submit exercise1" in got["14"]["error"]
    assert "not gradable: 14: this is an exercise3 submission" in result.output
    assert got["16"]["status"] == "graded" and float(got["16"]["score"]) == float(got["16"]["max_score"])  # its own


def test_students_not_on_the_roster_are_flagged_and_rostered_absentees_missing(graded):
    _, out, result = graded
    assert "not on the roster (1; a mistyped id?): 15" in result.output
    assert rows(out)["99"]["status"] == "missing"


def test_canvas_late_marker_is_a_column(graded):
    _, out, result = graded
    got = rows(out)
    assert got["13"]["late"] == "yes" and got["12"]["late"] == "" and got["15"]["late"] == ""
    assert json.loads((out / "students" / "13.json").read_text())["late"] is True
    assert "exercise1: 4 graded, 1 not gradable, 1 missing, 1 late" in result.output


def test_a_rerun_says_how_many_results_it_reused_and_grades_nothing(graded):
    args, out, _ = graded
    before = results(out)
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "resumed: 4 result(s) reused from an earlier run (same file, exercise and checks), 0 to grade" \
        in again.output  # the exercise3 submission is re-decided at intake: nothing of it to grade
    assert "Traceback" not in again.output
    assert results(out) == before
    assert rows(out)["13"]["late"] == "yes"  # a reused result keeps the LMS's mark


def test_student_regrades_one_and_reuses_the_rest(graded):
    args, out, _ = graded
    before = results(out)
    again = CliRunner().invoke(cli, [*args, "--student", "15"])
    assert again.exit_code == 0, again.output
    assert "resumed: 3 result(s) reused" in again.output and "1 to grade" in again.output
    after = results(out)
    assert after["15.json"] != before["15.json"]  # graded again (its time differs), same verdicts
    assert json.loads(after["15.json"])["checks"] == json.loads(before["15.json"])["checks"]
    assert {k: v for k, v in after.items() if k != "15.json"} == {k: v for k, v in before.items() if k != "15.json"}
    unknown = CliRunner().invoke(cli, [*args, "--student", "nobody"])
    assert unknown.exit_code == 2 and "--student nobody: no submission from that student" in unknown.output
    assert "Traceback" not in unknown.output


def test_grading_refuses_without_a_sandbox_unless_none_is_explicit(tmp_path, monkeypatch):
    monkeypatch.setattr(bwrap, "bwrap_works", lambda: "bubblewrap is not installed (apt-get install bubblewrap)")
    monkeypatch.setattr(container, "works", lambda: "neither podman nor docker is installed")
    (tmp_path / "subs" / "a").mkdir(parents=True)
    (tmp_path / "subs" / "a" / "exercise1.py").write_text(GOOD)
    out = tmp_path / "out"
    refused = CliRunner().invoke(cli, ["grade", str(tmp_path / "subs"), "-e", "1", "--out", str(out)])
    assert refused.exit_code == 2 and "Traceback" not in refused.output, refused.output
    assert "no sandbox works here" in refused.output and "--sandbox none" in refused.output
    assert "apt-get install bubblewrap" in refused.output and not out.exists()  # nothing graded, nothing written
    plain = CliRunner().invoke(cli, ["grade", str(tmp_path / "subs"), "-e", "1", "--out", str(out), "--jobs", "1",
                                     "--sandbox", "none"])
    assert plain.exit_code == 0, plain.output
    assert plain.output.splitlines()[0].startswith("exercise1: sandbox none (no isolation: rlimits only")
    assert json.loads((out / "students" / "a.json").read_text())["report"]["sandbox"] == "none"


def test_for_class_prefers_bwrap_then_the_container(monkeypatch):
    monkeypatch.setattr(bwrap, "bwrap_works", lambda: "")
    assert modes.for_class("auto") == "bwrap"
    monkeypatch.setattr(bwrap, "bwrap_works", lambda: "no namespaces")
    monkeypatch.setattr(container, "works", lambda: "")
    assert modes.for_class("auto") == "container"
    assert modes.for_class("none") == "none"


def test_files_grading_writes_follow_the_umask(tmp_path):
    """grades.csv, feedback, results, junit, Gradescope files and summary.png: what a plain open() would give."""
    (tmp_path / "subs" / "a").mkdir(parents=True)
    (tmp_path / "subs" / "a" / "exercise1.py").write_text(GOOD)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "labkit", "grade", str(tmp_path / "subs"), "-e", "1", "--jobs", "1", "--out",
           str(out), "--format", "junit", "--format", "gradescope", *SANDBOX]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o027),
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    written = [out / "grades.csv", out / "summary.png", out / "junit.xml", out / "students" / "a.json",
               out / "feedback" / "a.txt", out / "gradescope" / "a.json"]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {p.name: "0o640" for p in written}
    assert (out / ".salt").stat().st_mode & 0o777 == 0o600  # the class's secret stays private whatever the umask
