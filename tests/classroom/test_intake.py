"""classroom.intake: every SUBMISSIONS layout becomes one staged file per student; no zip writes outside staging."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest

from labkit.classroom import safezip
from labkit.classroom.intake import Entry, IntakeError, collect, safe_id
from labkit.classroom.roster import missing, read_roster

FILENAME = "exercise2.py"


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def run(tmp_path: Path, submissions: Path, **kw) -> dict[str, Entry]:
    entries = collect(submissions, tmp_path / "staging", filename=FILENAME, **kw)
    assert [e.student for e in entries] == sorted(e.student for e in entries)
    return {e.student: e for e in entries}


def staged(entry: Entry) -> str:
    assert entry.error == "" and entry.file is not None, entry.error
    assert entry.file.name == FILENAME
    assert sorted(p.name for p in entry.file.parent.iterdir()) == [FILENAME]  # nothing importable beside it
    return entry.file.read_text(encoding="utf-8")


def test_folder_per_student(tmp_path):
    subs = tmp_path / "subs"
    write(subs / "alice" / FILENAME, "alice = 1\n")
    write(subs / "alice" / "notes.txt", "hi")
    write(subs / "bob" / "src" / "my_solution.py", "bob = 1\n")  # the only .py, any name, any depth
    (subs / "carol").mkdir()
    write(subs / ".DS_Store", "junk")
    write(subs / "__MACOSX" / "alice" / "._exercise2.py", "junk")
    write(subs / "dave" / ".git" / "hooks.py", "junk")
    write(subs / "dave" / FILENAME, "dave = 1\n")
    got = run(tmp_path, subs)
    assert sorted(got) == ["alice", "bob", "carol", "dave"]
    assert staged(got["alice"]) == "alice = 1\n"
    assert staged(got["bob"]) == "bob = 1\n"
    assert got["bob"].source == "bob/src/my_solution.py"
    assert got["carol"].file is None and got["carol"].error == "no Python file in the submission"
    assert staged(got["dave"]) == "dave = 1\n"
    assert got["alice"].file == tmp_path / "staging" / "alice" / FILENAME
    assert not list((tmp_path / "staging").glob(".unpacked-*"))  # scratch is cleaned up


def test_file_per_student_with_student_zip(tmp_path):
    subs = tmp_path / "subs"
    write(subs / "alice.py", "alice = 1\n")
    make_zip(subs / "bob.zip", {"bob/exercise2.py": "bob = 1\n", "bob/conftest.py": "evil", "bob/torch.py": "evil"})
    write(subs / "README.txt", "not a student")
    got = run(tmp_path, subs)
    assert sorted(got) == ["alice", "bob"]
    assert staged(got["alice"]) == "alice = 1\n"
    assert staged(got["bob"]) == "bob = 1\n"
    assert got["bob"].source == "bob.zip/bob/exercise2.py"


def test_empty_folder_and_empty_file(tmp_path):
    (tmp_path / "none").mkdir()
    assert collect(tmp_path / "none", tmp_path / "staging", filename=FILENAME) == []
    write(tmp_path / "subs" / "alice" / FILENAME, "")
    got = run(tmp_path, tmp_path / "subs")
    assert got["alice"].file is None and "empty file" in got["alice"].error


def test_single_py(tmp_path):
    got = run(tmp_path, write(tmp_path / "alice.py", "a = 1\n"))
    assert list(got) == ["alice"] and staged(got["alice"]) == "a = 1\n"


def test_not_usable_raises(tmp_path):
    with pytest.raises(IntakeError, match="does not exist"):
        collect(tmp_path / "nope", tmp_path / "staging", filename=FILENAME)
    with pytest.raises(IntakeError, match="not a folder, a .py file or a .zip file"):
        collect(write(tmp_path / "grades.csv", "a,b\n"), tmp_path / "staging", filename=FILENAME)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(IntakeError, match="bad.zip is not a readable zip file"):
        collect(tmp_path / "bad.zip", tmp_path / "staging", filename=FILENAME)


CANVAS = {
    "liddellalice_1001_501_exercise2.py": "alice = 1\n",
    "stonebob_late_1002_502_exercise2.py": "bob = 0\n",
    "stonebob_late_1002_502_exercise2-2.py": "bob = 2\n",
    "stonebob_late_1002_502_exercise2-1.py": "bob = 1\n",
    "carrolcarol_1003_503_helper.py": "helper = 1\n",
    "carrolcarol_1003_503_exercise2.py": "carol = 1\n",
    "doedan_1004_504_solution-1.py": "dan = 1\n",
    "evee_1005_505_a.py": "eve = 1\n",
    "evee_1005_506_b.py": "eve = 2\n",
    "foxfay_1006_507_exercise2.py": "fay = 1\n",
    "foxfay_1006_508_exercise2.py": "fay = 2\n",
}


def check_canvas(got: dict[str, Entry]) -> None:
    assert sorted(got) == ["1001", "1002", "1003", "1004", "1005", "1006"]
    assert staged(got["1001"]) == "alice = 1\n" and got["1001"].name == "liddellalice"
    assert staged(got["1002"]) == "bob = 2\n"  # LATE, and -2 is the latest resubmission
    assert got["1002"].source == "stonebob_late_1002_502_exercise2-2.py"
    assert staged(got["1003"]) == "carol = 1\n"  # two files in one submission: exercise2.py wins
    assert staged(got["1004"]) == "dan = 1\n"
    assert got["1005"].file is None
    assert got["1005"].error.startswith("2 submissions claim student 1005: ")
    assert "evee_1005_505_a.py" in got["1005"].error and "evee_1005_506_b.py" in got["1005"].error
    assert got["1006"].file is None and got["1006"].error.startswith("2 submissions claim student 1006")


def test_canvas_folder(tmp_path):
    for name, text in CANVAS.items():
        write(tmp_path / "canvas" / name, text)
    check_canvas(run(tmp_path, tmp_path / "canvas"))


def test_canvas_zip(tmp_path):
    check_canvas(run(tmp_path, make_zip(tmp_path / "submissions.zip", CANVAS)))


METADATA = """\
submission_1:
  :submitters:
  - :name: Alice Liddell
    :sid: '1001'
    :email: alice@example.edu
  :created_at: 2026-11-20 10:00:00.000000000 -08:00
  :score:\x20
submission_2:
  :score: 3.0
  :submitters:
  - :email: bob@example.edu
    :sid: ''
    :name: Bob Stone
  :history:
  - :submitters:
    - :name: Not A Submitter
      :sid: '9999'
submission_3:
  :submitters:
  - :name: "Carol O'Hara"
    :sid: 1003
    :email: carol@example.edu
  - :name: 'Dan D''Souza'
    :sid: '1004'
    :email: dan@example.edu
"""


def test_gradescope_export_zip(tmp_path):
    archive = make_zip(tmp_path / "export.zip", {
        "assignment_42_export/submission_metadata.yml": METADATA,
        "assignment_42_export/submission_1/exercise2.py": "alice = 1\n",
        "assignment_42_export/submission_2/answer.py": "bob = 1\n",
        "assignment_42_export/submission_3/exercise2.py": "group = 1\n",
        "assignment_42_export/submission_3/sitecustomize.py": "evil",
    })
    got = run(tmp_path, archive)
    assert sorted(got) == ["1001", "1003", "1004", "bob@example.edu"]
    assert staged(got["1001"]) == "alice = 1\n" and got["1001"].name == "Alice Liddell"
    assert staged(got["bob@example.edu"]) == "bob = 1\n" and got["bob@example.edu"].name == "Bob Stone"
    assert staged(got["1003"]) == staged(got["1004"]) == "group = 1\n"
    assert got["1003"].name == "Carol O'Hara" and got["1004"].name == "Dan D'Souza"
    assert got["1001"].source == "submission_1/exercise2.py"


def test_gradescope_folder_missing_submission(tmp_path):
    write(tmp_path / "gs" / "submission_metadata.yml", METADATA)
    write(tmp_path / "gs" / "submission_1" / FILENAME, "alice = 1\n")
    got = run(tmp_path, tmp_path / "gs")
    assert staged(got["1001"]) == "alice = 1\n"
    assert got["bob@example.edu"].error == "submission_2/ is missing from the export"


def test_zip_slip_top_level(tmp_path):
    outside = tmp_path / "outside.py"
    write(outside, "secret = 1\n")
    absolute = tmp_path / "abs.py"
    archive = tmp_path / "in" / "submissions.zip"
    make_zip(archive, {
        "alice/exercise2.py": "alice = 1\n",
        "bob/exercise2.py": "bob = 1\n",
        "bob/../../../../../evil1.py": "evil",  # pinned on bob (its first component)
        "../evil2.py": "evil",
        "../../../../../evil3.py": "evil",
        str(absolute): "evil",
        "..\\..\\..\\evil4.py": "evil",
    })
    with zipfile.ZipFile(archive, "a") as zf:  # a symlink member that would expose a file outside
        link = zipfile.ZipInfo("carol/exercise2.py")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, str(outside))
    got = collect(archive, tmp_path / "deep" / "er" / "staging", filename=FILENAME)
    by = {e.student: e for e in got}
    assert not absolute.exists()
    assert not [p for p in tmp_path.parent.rglob("evil*.py")]
    assert staged(by["alice"]) == "alice = 1\n"
    assert by["bob"].file is None and "climbs out of the folder" in by["bob"].error
    assert by["carol"].file is None and "symbolic link" in by["carol"].error
    stray = by["submissions.zip"].error
    assert stray.startswith("4 zip member(s) refused") and "is absolute" in stray and "evil2.py" in stray


def test_zip_slip_student_zip(tmp_path):
    outside = write(tmp_path / "outside.py", "secret = 1\n")
    subs = tmp_path / "subs"
    write(subs / "alice" / FILENAME, "alice = 1\n")
    for i, name in enumerate(["../../../../evil.py", str(tmp_path / "abs.py"), "a/../../evil.py", "link"]):
        archive = make_zip(subs / f"s{i}.zip", {FILENAME: "ok = 1\n"})
        with zipfile.ZipFile(archive, "a") as zf:
            info = zipfile.ZipInfo(name)
            if name == "link":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, str(outside) if name == "link" else "evil")
    got = run(tmp_path, subs)
    assert not (tmp_path / "abs.py").exists() and not list(tmp_path.parent.rglob("evil.py"))
    assert staged(got["alice"]) == "alice = 1\n"
    assert {s: got[s].file for s in ("s0", "s1", "s2", "s3")} == dict.fromkeys(("s0", "s1", "s2", "s3"))
    assert "climbs out" in got["s0"].error and "absolute" in got["s1"].error
    assert "climbs out" in got["s2"].error and "symbolic link" in got["s3"].error


def test_member_over_limit_and_lying_header(tmp_path):
    archive = make_zip(tmp_path / "subs.zip", {"alice/exercise2.py": "a" * 5000, "bob/exercise2.py": "b = 1\n"})
    got = run(tmp_path, archive, max_bytes=1000)
    assert got["alice"].file is None and "5,000 bytes, over the 1,000-byte limit" in got["alice"].error
    assert staged(got["bob"]) == "b = 1\n"
    # A central directory that declares 10 bytes for a 5000-byte member: never more than the limit is written.
    data = bytearray((tmp_path / "subs.zip").read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 24:central + 28] = (10).to_bytes(4, "little")
    (tmp_path / "lying.zip").write_bytes(bytes(data))
    got = collect(tmp_path / "lying.zip", tmp_path / "staging2", filename=FILENAME, max_bytes=1000)
    assert got[0].student == "alice" and got[0].file is None and "refused" in got[0].error
    assert not (tmp_path / "staging2" / "alice").exists()


def test_copy_capped_stops_at_the_cap(tmp_path):
    target = tmp_path / "out.py"
    assert safezip.copy_capped(io.BytesIO(b"x" * 100), target, 100) == 100 and target.stat().st_size == 100
    assert safezip.copy_capped(io.BytesIO(b"x" * 10**6), target, 100) is None and not target.exists()


def test_zip_bomb_limits(tmp_path, monkeypatch):
    archive = make_zip(tmp_path / "bomb.zip", {f"s{i}/exercise2.py": "0" * 900 for i in range(5)})
    monkeypatch.setattr(safezip, "TOTAL_FACTOR", 2)
    with pytest.raises(IntakeError, match="too large to unpack"):
        collect(archive, tmp_path / "staging", filename=FILENAME, max_bytes=1000)
    monkeypatch.setattr(safezip, "MAX_MEMBERS", 3)
    with pytest.raises(IntakeError, match="more than 3 members"):
        collect(archive, tmp_path / "staging", filename=FILENAME)


def test_corrupt_student_zip(tmp_path):
    subs = tmp_path / "subs"
    write(subs / "alice.py", "alice = 1\n")
    (subs / "bob.zip").write_bytes(b"garbage, not a zip")
    got = run(tmp_path, subs)
    assert staged(got["alice"]) == "alice = 1\n"
    assert got["bob"].file is None and got["bob"].error.startswith("bob.zip is not a readable zip file")


def test_huge_sparse_file_is_not_read(tmp_path):
    big = tmp_path / "subs" / "alice" / FILENAME
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:
        f.truncate(2 * 1024**3)
    write(tmp_path / "subs" / "bob" / FILENAME, "bob = 1\n")
    started = time.monotonic()
    got = run(tmp_path, tmp_path / "subs")
    assert time.monotonic() - started < 2
    assert got["alice"].file is None and "2,147,483,648 bytes, over the 1,000,000-byte limit" in got["alice"].error
    assert staged(got["bob"]) == "bob = 1\n"


def test_non_utf8_file_names(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    os.close(os.open(os.fsencode(str(subs / "alice")) + b"/\xff\xfe.py", os.O_CREAT | os.O_WRONLY))
    os.close(os.open(os.fsencode(str(subs)) + b"/\xff.py", os.O_CREAT | os.O_WRONLY))
    (subs / "bob").mkdir()
    (subs / "bob" / FILENAME).write_bytes(b"x = '\xff'\n")  # bad content is still staged: the grader reports it
    got = run(tmp_path, subs)
    assert got["alice"].file is None and "is not valid UTF-8" in got["alice"].error
    assert got["?"].file is None and "is not valid UTF-8" in got["?"].error
    assert got["bob"].file.read_bytes() == b"x = '\xff'\n"


def test_non_utf8_zip_member_name(tmp_path):
    archive = make_zip(tmp_path / "subs.zip", {"alice/XY.py": "a = 1\n", "bob/exercise2.py": "b = 1\n",
                                               "carol/ZZ.py": "c = 1\n"})
    # Unflagged member names are raw bytes: alice's become invalid UTF-8, carol's valid UTF-8 (é) without the flag.
    data = archive.read_bytes().replace(b"alice/XY.py", b"alice/\xff\xfe.py")
    archive.write_bytes(data.replace(b"carol/ZZ.py", b"carol/\xc3\xa9.py"))
    got = run(tmp_path, archive)
    assert got["alice"].file is None and "not valid UTF-8" in got["alice"].error
    assert staged(got["bob"]) == "b = 1\n"
    assert staged(got["carol"]) == "c = 1\n" and got["carol"].source == "carol/\u00e9.py"


def test_two_sources_claim_one_student(tmp_path):
    subs = tmp_path / "subs"
    write(subs / "alice.py")
    write(subs / "alice" / FILENAME)
    write(subs / "bob.py", "bob = 1\n")
    got = run(tmp_path, subs)
    assert got["alice"].file is None
    assert got["alice"].error == "2 submissions claim student alice: alice/, alice.py"
    assert staged(got["bob"]) == "bob = 1\n"


def test_shadowing_files_are_never_staged(tmp_path):
    subs = tmp_path / "subs"
    for name in ("conftest.py", "sitecustomize.py", "usercustomize.py", "torch.py", "evil.pth"):
        write(subs / "alice" / name, "import os\n")
    write(subs / "alice" / "solution.py", "alice = 1\n")  # the one usable Python file
    write(subs / "bob" / "conftest.py", "evil")
    write(subs / "bob" / "torch.py", "evil")
    got = run(tmp_path, subs)
    assert staged(got["alice"]) == "alice = 1\n"
    assert got["bob"].file is None and "would shadow a module" in got["bob"].error
    assert not (tmp_path / "staging" / "bob").exists()


def test_several_python_files(tmp_path):
    subs = tmp_path / "subs"
    for name in ("a.py", "b.py", FILENAME):
        write(subs / "alice" / name, f"# {name}\n")
    for name in ("a.py", "b.py", "c.py"):
        write(subs / "bob" / name)
    write(subs / "carol" / FILENAME, "top\n")
    write(subs / "carol" / "old" / FILENAME, "old\n")
    got = run(tmp_path, subs)
    assert staged(got["alice"]) == f"# {FILENAME}\n"
    assert got["bob"].error == f"3 Python files and none named {FILENAME}: submit exactly one"
    assert got["carol"].error == f"2 files named {FILENAME}: submit exactly one"


def test_safe_id():
    assert safe_id("alice") == "alice" and safe_id("1001") == "1001" and safe_id("a.b-c_d") == "a.b-c_d"
    for weird in ("bob@example.edu", "..", ".hidden", "a/b", "", "x" * 200, "\udcff"):
        out = safe_id(weird)
        assert out and not out.startswith(".") and all(c.isalnum() or c in "._-" for c in out), weird
        assert out != safe_id(weird + "!")
    assert safe_id("a/b") != safe_id("a_b")


def test_read_roster_and_missing(tmp_path):
    roster = write(tmp_path / "roster.csv", "\ufeffEmail, Name ,SID\n alice@x.edu , Alice L ,1001\n\n,,\n"
                                             "bob@x.edu,Bob S,1002\ncarol@x.edu,,1003\n")
    names = read_roster(roster)
    assert names == {"1001": "Alice L", "1002": "Bob S", "1003": ""}  # sid comes before email
    entries = [Entry("1002", None, error="no Python file in the submission")]
    assert missing(entries, names) == ["1001", "1003"]
    assert read_roster(write(tmp_path / "ids.csv", "login\nalice\n")) == {"alice": ""}


@pytest.mark.parametrize("text, match", [
    ("name,score\nAlice,3\n", "has no id column"),
    ("", "has no id column"),
    ("id,name\n1,A\n2,B\n1,C\n", "lists student 1 twice"),
])
def test_read_roster_errors(tmp_path, text, match):
    with pytest.raises(IntakeError, match=match):
        read_roster(write(tmp_path / "roster.csv", text))
    with pytest.raises(IntakeError, match="does not exist"):
        read_roster(tmp_path / "nope.csv")
