"""`labkit grade` on a class whose ids, names, output and exceptions attack the instructor's tools.

Formulas for the spreadsheet, terminal escapes for the progress line and the feedback files, NUL and ESC for
the JUnit parser: each must arrive neutralised (DESIGN.md: "Text a student controls ... is neutralised").
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from sandboxes import SANDBOX

from labkit.classroom.batch import Outcome, Progress, grades_csv
from labkit.classroom.summary import table
from labkit.cli.grade import _progress_printer
from labkit.cli.main import cli
from labkit.i18n import width

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "solutions" / "exercise1.py").read_text()
# What the student prints and raises: NUL, a screen clear, a CR that overwrites the line, a title, a bidi flip, and
# a lone surrogate that UTF-8 cannot write (it must not cost the student their result).
NOISY = GOOD + '''

def to_device(obj, device):
    print("out\\x00put\\x1b[2J\\rFAKE all checks passed\\x1b]0;pwned\\x07 \\u202eevil\\u200b")
    raise ValueError("bad\\x1b]52;c;aGk=\\x07 value\\r\\x1b[1A\\u2066forged\\x00\\x7f\\x9b \\udc80")
'''
CLASS = {
    '=HYPERLINK("evil.example","x")': GOOD,
    "@SUM(1)": GOOD,
    "-2+3": GOOD,
    "name\x1b]52;c;aGk=\x07": GOOD,
    "evil\u202ereversed\u200b": GOOD,
    "noisy": NOISY,
}
NEWLINE_ID = "forged\n[####] 9 of 9 · admin: 10 of 10"  # no "/": a folder name
ROSTER_NAMES = {"noisy": "+cmd|' /C calc'!A0", "-2+3": "\t=1+1", "absent\x1b[31m": "=HYPERLINK(\"a\")"}
# What must never reach a terminal or a file raw: C0 (but newline), DEL, C1, bidi, zero-width, BOM, separators.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
LIVE = ("=", "+", "-", "@", "\t", "\r")


def newline_ids_allowed(folder: Path) -> bool:
    try:
        (folder / "probe\nname").mkdir()
    except OSError:
        return False
    (folder / "probe\nname").rmdir()
    return True


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The crafted class graded once through the CLI, with a roster and JUnit output."""
    tmp = tmp_path_factory.mktemp("hostile-class")
    subs, out = tmp / "subs", tmp / "out"
    subs.mkdir()
    students = dict(CLASS)
    if newline_ids_allowed(subs):
        students[NEWLINE_ID] = GOOD
    for student, source in students.items():
        (subs / student).mkdir()
        (subs / student / "exercise1.py").write_text(source)
    roster = tmp / "roster.csv"
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["id", "name"])
    writer.writerows([s, ROSTER_NAMES.get(s, "")] for s in students)
    writer.writerows([s, name] for s, name in ROSTER_NAMES.items() if s not in students)
    roster.write_text(buf.getvalue())
    result = CliRunner().invoke(cli, ["grade", str(subs), "-e", "exercise1", "--jobs", "2", "--out", str(out),
                                      "--format", "junit", "--roster", str(roster), *SANDBOX])
    return result, out, students


def test_the_class_is_graded(graded):
    result, out, students = graded
    assert result.exit_code == 0, result.output
    got = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8")))}
    assert len(got) == len(students) + 1  # + the absent student
    noisy = got["noisy"]
    assert noisy["status"] == "graded" and 0 < float(noisy["score"]) < float(noisy["max_score"]), noisy


def test_grades_csv_holds_no_live_formula_and_scores_stay_numbers(graded):
    _, out, students = graded
    rows = list(csv.reader(io.StringIO((out / "grades.csv").read_text(encoding="utf-8"))))
    assert all(not cell.startswith(LIVE) for row in rows for cell in row), rows
    assert all(not RAW.search(cell) for row in rows for cell in row), rows
    by_id = {row[0]: row for row in rows[1:]}
    assert "'=HYPERLINK(\"evil.example\",\"x\")" in by_id and "'@SUM(1)" in by_id and "'-2+3" in by_id
    assert by_id["noisy"][1] == "'+cmd|' /C calc'!A0" and by_id["'-2+3"][1] == "'=1+1"  # the roster strips the tab
    assert by_id["absent\\x1b[31m"][1:3] == ["'=HYPERLINK(\"a\")", "missing"]
    for row in rows[1:]:
        float(row[3]), float(row[4])  # scores are plain numbers, never quoted into text


def test_junit_parses_back(graded):
    _, out, students = graded
    text = (out / "junit.xml").read_text(encoding="utf-8")
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", text)
    suites = ET.fromstring(text.encode("utf-8"))
    assert len(suites.findall("testsuite")) == len(students)
    verdicts = [e for tag in ("error", "failure") for e in suites.iter(tag)]
    shown = [e.text or "" for e in [*suites.iter("system-out"), *verdicts]] + [e.get("message") for e in verdicts]
    assert any("out\\x00put\\x1b[2J" in t for t in shown), shown  # the student's output is kept, made visible
    assert any("bad\\x1b]52;c;aGk=\\x07 value" in t for t in shown), shown


def test_feedback_and_the_command_output_hold_no_raw_control_character(graded):
    result, out, students = graded
    files = sorted((out / "feedback").glob("*.txt"))
    assert len(files) == len(students)
    for path in files:
        assert not RAW.search(path.read_text(encoding="utf-8")), path
    noisy = (out / "feedback" / "noisy.txt").read_text(encoding="utf-8")
    assert "| out\\x00put\\x1b[2J\\rFAKE all checks passed\\x1b]0;pwned\\x07 \\u202eevil\\u200b" in noisy, noisy
    assert "bad\\x1b]52;c;aGk=\\x07 value\\r\\x1b[1A\\u2066forged\\x00\\x7f\\x9b \\udc80" in noisy, noisy
    assert not RAW.search(result.output), result.output
    assert "name\\x1b]52;c;aGk=\\x07" in result.output and "evil\\u202ereversed\\u200b" in result.output
    assert "absent\\x1b[31m (=HYPERLINK(\"a\"))" in result.output  # the missing line: escaped, one line
    progress = [line for line in result.output.splitlines() if line.startswith("[")]
    assert len(progress) == len(students), progress  # a newline in an id forges no progress line
    if NEWLINE_ID in students:
        assert any("forged\\n[####] 9 of 9 · admin: 10 of 10" in line for line in progress), progress
    data = json.loads((out / "students" / "noisy.json").read_text(encoding="utf-8"))
    assert data["status"] == "graded" and "\\udc80" in json.dumps(data)  # the facts kept; JSON escapes them itself


def test_grades_csv_and_the_table_from_crafted_outcomes():
    outcomes = [Outcome("=1+1", "@me\r\n", "error", -1.5, 10, error="-oops\x1b[2J\nline two"),
                Outcome("学生", "张三", "graded", 7, 10), Outcome("plain", "Ann", "missing", error="no submission")]
    rows = list(csv.reader(io.StringIO(grades_csv(outcomes))))
    assert rows[1][:6] == ["'=1+1", "'@me\\r\\n", "error", "-1.5", "10", "'-oops\\x1b[2J\\nline two"]
    assert rows[2][:5] == ["学生", "张三", "graded", "7", "10"]  # Chinese and numbers unchanged
    text = table(outcomes, "exercise1")
    assert "not gradable: =1+1: -oops\\x1b[2J\\nline two" in text and not RAW.search(text)
    assert len(text.splitlines()) == 4  # counts, scores, one not-gradable line, one missing line: none forged


def test_the_terminal_progress_line_stays_one_line_whatever_the_id(monkeypatch, capsys):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    show = _progress_printer()
    student = "x\n[#] 9\x1b]0;t\x07\u202e" + "学" * 40  # a forged line, a window title, a bidi flip, a long CJK id
    show(Progress(1, 2, 0, Outcome(student, "", "graded", 1, 2), 1.0))
    err = capsys.readouterr().err
    assert err.startswith("\r") and not RAW.search(err[1:]) and "\n" not in err, err
    assert "x\\n[#] 9\\x1b]0;t\\x07\\u202e学" in err and "…" in err  # escaped, clipped
    assert width(err[1:]) == 79, err  # the line \r redraws never wraps
