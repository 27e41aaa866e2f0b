"""`labkit grade`: a generated class of 20+ (correct, wrong, crashing, hanging), bad inputs, kill and resume."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sandboxes import SANDBOX

from labkit.cli.main import cli
from labkit.files import umask

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "solutions" / "exercise1.py").read_text()
SCHEMA = ROOT / "tests" / "gradescope_results.schema.json"


def wrong_pick(src: str) -> str:
    return src + "\n\ndef pick_device(prefer='cuda'):\n    return torch.device('cuda')\n"


def wrong_to_device(src: str) -> str:
    return src + "\n\ndef to_device(obj, device):\n    return obj\n"


CLASS = {
    **{f"good{i:02d}": GOOD + f"\n# student {i}\n" for i in range(8)},
    **{f"wrongpick{i}": wrong_pick(GOOD) + f"# {i}\n" for i in range(3)},
    **{f"wrongmove{i}": wrong_to_device(GOOD) + f"# {i}\n" for i in range(3)},
    "crash_import": "raise RuntimeError('student crashed at import')\n",
    "crash_call": GOOD + "\n\ndef to_device(obj, device):\n    raise ValueError('oops')\n",
    "exit_import": "import sys\nprint('ALL PASSED 13/13')\nsys.exit(0)\n",
    "hang_import": "while True:\n    pass\n",
    "syntax": "def pick_device(:\n",
    "starter": (ROOT / "exercises" / "exercise1" / "starter.py").read_text(),
}


def make_class(root: Path) -> Path:
    for student, source in CLASS.items():
        (root / student).mkdir(parents=True)
        (root / student / "exercise1.py").write_text(source)
    (root / "good00" / "conftest.py").write_text("raise SystemExit('conftest must never be imported')\n")
    (root / "good01" / "torch.py").write_text("raise SystemExit('a torch.py must never shadow torch')\n")
    (root / "empty").mkdir()
    (root / "twofiles").mkdir()
    (root / "twofiles" / "a.py").write_text(GOOD)
    (root / "twofiles" / "b.py").write_text(GOOD)
    return root


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The generated class graded once with two jobs, a roster, and both extra formats."""
    tmp = tmp_path_factory.mktemp("class")
    subs, out = make_class(tmp / "subs"), tmp / "out"
    roster = tmp / "roster.csv"
    roster.write_text("id,name\n" + "".join(f"{s},Name of {s}\n" for s in CLASS) + "absent1,Ann Absent\n")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["grade", str(subs), "--exercise", "exercise1", "--jobs", "2", "--out", str(out),
                                      "--roster", str(roster), "--format", "junit", "--format", "gradescope", *SANDBOX])
    return result, out, time.monotonic() - started


def rows(out: Path) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def test_the_whole_class_is_graded_and_bad_submissions_never_stop_it(graded):
    result, out, seconds = graded
    assert result.exit_code == 0, result.output
    got = rows(out)
    assert len(got) == len(CLASS) + 3  # + empty, twofiles, and the absent student
    full = float(got["good00"]["max_score"])
    for i in range(8):
        assert float(got[f"good{i:02d}"]["score"]) == full, got[f"good{i:02d}"]  # conftest/torch.py not copied
    for s in ("wrongpick0", "wrongmove1", "crash_call"):
        assert 0 < float(got[s]["score"]) < full, got[s]
    for s in ("crash_import", "exit_import", "hang_import", "syntax", "starter"):
        assert float(got[s]["score"]) == 0 and got[s]["status"] == "graded", got[s]
    assert got["empty"]["status"] == "error" and got["twofiles"]["status"] == "error"
    assert got["absent1"]["status"] == "missing" and got["absent1"]["name"] == "Ann Absent"
    assert got["good03"]["name"] == "Name of good03"
    assert seconds < 240, seconds


def test_per_student_results_feedback_and_pass_rates(graded):
    result, out, _ = graded
    data = json.loads((out / "students" / "wrongpick0.json").read_text())
    assert data["status"] == "graded" and data["checks"]["picks_cpu"]["status"] == "failed", data["checks"]
    assert data["checks"]["to_device_moves"]["status"] == "passed"  # one mistake costs only its checks
    assert (out / "feedback" / "wrongpick0.txt").read_text().startswith("exercise1")
    hang = json.loads((out / "students" / "hang_import.json").read_text())
    assert all(c["status"] == "error" for c in hang["checks"].values() if c["status"] != "skipped")
    assert "pass rate" in result.output and "not gradable: empty" in result.output
    assert "missing: absent1 (Ann Absent)" in result.output
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
    want = 0o666 & ~umask()  # what the instructor's own tools would write: not mkstemp's 0600
    for path in [out / "grades.csv", out / "junit.xml", *(out / "students").glob("*"), *(out / "feedback").glob("*"),
                 *(out / "gradescope").glob("*")]:
        assert path.stat().st_mode & 0o777 == want, path


def test_junit_parses_back_and_gradescope_files_validate(graded):
    _, out, _ = graded
    suites = ET.parse(out / "junit.xml").getroot()
    assert len(suites.findall("testsuite")) == len(CLASS)  # every graded student; errors have no report
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.exists():
        pytest.skip("the Gradescope schema is not in this checkout")
    schema = json.loads(SCHEMA.read_text())
    for path in (out / "gradescope").glob("*.json"):
        jsonschema.validate(json.loads(path.read_text()), schema)
    assert len(list((out / "gradescope").glob("*.json"))) == len(CLASS) + 3  # + empty, twofiles, absent1


def test_a_zip_slip_archive_writes_nothing_outside_and_the_rest_is_graded(tmp_path):
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("alice/exercise1.py", GOOD)
        z.writestr("../escaped.py", "print('pwned')\n")
        z.writestr("bob/../../escaped2.py", "print('pwned')\n")
    result = CliRunner().invoke(cli, ["grade", str(archive), "-e", "1", "--jobs", "1", "--out", str(tmp_path / "o"),
                                      *SANDBOX])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "escaped.py").exists() and not (tmp_path.parent / "escaped2.py").exists()
    assert float(rows(tmp_path / "o")["alice"]["score"]) > 0


def test_usage_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    for args, phrase in ((["grade", str(bad), "-e", "1"], "zip"), (["grade", str(tmp_path), "-e", "nope"], "nope")):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2 and phrase in result.output and "Traceback" not in result.output, result.output


def test_a_batch_killed_half_way_resumes_without_losing_or_duplicating(tmp_path):
    subs = tmp_path / "subs"
    for i in range(6):
        (subs / f"s{i}").mkdir(parents=True)
        (subs / f"s{i}" / "exercise1.py").write_text(GOOD + f"# {i}\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "labkit", "grade", str(subs), "-e", "1", "--jobs", "1", "--out", str(out), *SANDBOX]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((out / "students").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "students").glob("*.json")}
    assert 2 <= len(done) < 6, done.keys()
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    after = {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "students").glob("*.json")}
    assert sorted(after) == [f"s{i}.json" for i in range(6)]
    assert all(after[name] == done[name] for name in done)  # graded before the kill: reused, not regraded
    assert sorted(rows(out)) == [f"s{i}" for i in range(6)]
    assert not [p for p in (out / "students").iterdir() if p.name.startswith(".")]  # no half-written files


def test_the_class_salt_is_kept_private_and_reused_so_a_regrade_reproduces(graded, tmp_path):
    from labkit.classroom.batch import SALT, class_salt
    from labkit.grading.engine import seed_for

    _, out, _ = graded
    salt_file = out / SALT
    assert salt_file.stat().st_mode & 0o777 == 0o600 and class_salt(out) == salt_file.read_text().strip()
    data = json.loads((out / "students" / "good00.json").read_text())
    assert data["report"]["seed"] == seed_for("exercise1", data["sha256"], class_salt(out))
    assert data["report"]["seed"] != seed_for("exercise1", data["sha256"])  # not computable without the salt
    assert class_salt(tmp_path / "other") != class_salt(out)  # each class draws its own
