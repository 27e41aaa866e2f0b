"""A prankster's class, graded end to end: every student is graded on their own file, and every output parses.

Collisions and look-alike ids, spreadsheet formulas and control codes in ids and output, a student zip with two
members at one path, a DEFLATE bomb where a check reads a file, and a file flipped with a FIFO while it is read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sandboxes import SANDBOX

from labkit.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bombs  # noqa: E402  (the same crafted files the bombs benchmark measures)

SOLUTION = (ROOT / "solutions" / "exercise2.py").read_text()
STARTER = (ROOT / "exercises" / "exercise2" / "starter.py").read_text()
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200d\u2060\u202a-\u202e\u2066-\u2069\ufeff]")
NOISY = 'print("\\x00\\x1b]52;c;aGk=\\x07\\x1b[2J\\rDONE 11/11\\u202e")\n'


def lookalike(student: str) -> str:
    """The file-name-safe id labkit gave an unusual id before: now a different student may not take it."""
    digest = hashlib.sha256(student.encode()).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9._-]", "_", student)[:60] + f"-{digest}"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prank")
    subs, out = tmp / "subs", tmp / "out"
    small_bomb = bombs.BOMB.format(size=bombs.SMALL_BOMB_BYTES, crc=bombs.zeros_crc(bombs.SMALL_BOMB_BYTES))
    files = {
        "bob@example.edu": SOLUTION,
        lookalike("bob@example.edu"): STARTER,  # once graded in the victim's place
        '=HYPERLINK("evil.example","x")': SOLUTION,
        "noisy\x1b]0;title\x07": NOISY + SOLUTION,
        "bomber": SOLUTION + small_bomb + bombs.BOMB_FILE,
        "flipper": SOLUTION + bombs.FIFO,
    }
    for student, source in files.items():
        (subs / student).mkdir(parents=True)
        (subs / student / "exercise2.py").write_text(source)
    (subs / "dupes").mkdir()
    with zipfile.ZipFile(subs / "dupes" / "work.zip", "w") as zf:
        zf.writestr("exercise2.py", SOLUTION)
        zf.writestr("./exercise2.py", "def replica_batch_sizes(b, n):\n    return [b]\n")
    roster = tmp / "roster.csv"
    roster.write_text("id,name\n" + "".join(f'"{s}",+cmd|calc!A0\n' for s in ["absent1"]))
    result = CliRunner().invoke(cli, ["grade", str(subs), "-e", "exercise2", "--jobs", "2", "--out", str(out),
                                      "--format", "junit", "--roster", str(roster), *SANDBOX])
    return result, out, files


def rows(out: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def test_every_student_is_graded_on_their_own_file(graded):
    result, out, files = graded
    assert result.exit_code == 0, result.output
    got = rows(out)
    assert float(got["bob@example.edu"]["score"]) == 11, got["bob@example.edu"]  # the victim keeps their marks
    assert float(got[lookalike("bob@example.edu")]["score"]) == 0  # the look-alike gets the starter's
    assert float(got["'=HYPERLINK(\"evil.example\",\"x\")"]["score"]) == 11  # the cell defused, the grade intact
    assert got["dupes"]["status"] == "error" and "the same path" in got["dupes"]["error"]
    assert got["absent1"]["status"] == "missing"
    results = sorted((out / "students").glob("*.json"))
    assert len(results) == len(files) + 1  # one result file per student: nobody overwrote anybody


def test_bombs_and_blocking_files_fail_their_own_checks_only(graded):
    _, out, _ = graded
    got = rows(out)
    bomber, flipper = got["bomber"], got["flipper"]
    assert bomber["status"] == "graded" and float(bomber["saves_portable"]) == 0, bomber
    assert float(bomber["score"]) >= 11 - 4, bomber  # the other checks still graded
    assert flipper["status"] == "graded" and float(flipper["score"]) < 11, flipper
    data = json.loads(next((out / "students").glob("bomber*.json")).read_text())
    message = data["checks"]["saves_portable"]
    assert message["status"] == "failed"


def test_every_output_parses_and_holds_no_live_formula_or_control_code(graded):
    result, out, _ = graded
    for row in csv.reader(io.StringIO((out / "grades.csv").read_text())):
        for cell in row:
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r") or re.fullmatch(r"-?[\d.]+", cell), cell
    ET.parse(out / "junit.xml")  # one student's NUL/ESC output does not break the class's report
    for path in [*(out / "feedback").glob("*.txt"), out / "grades.csv"]:
        assert not RAW.search(path.read_text()), path
    assert not RAW.search(result.output), result.output
