"""classroom.intake against a prankster classmate: no shared folder or result file, one unpack budget, no twins."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from labkit.classroom import ids, safezip
from labkit.classroom.batch import Outcome, save
from labkit.classroom.intake import Entry, IntakeError, collect, safe_id

FILENAME = "exercise2.py"
VICTIM = "bob@example.edu"
LOOKALIKE = "bob_example.edu-" + ids._digest(VICTIM)  # what safe_id(VICTIM) used to be, as a literal id


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def zip_bytes(members: dict[str, str | bytes] | list[tuple[str, str | bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items() if isinstance(members, dict) else members:
            zf.writestr(name, data)
    return buf.getvalue()


def write_zip(path: Path, members: dict[str, str | bytes] | list[tuple[str, str | bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zip_bytes(members))
    return path


def run(tmp_path: Path, submissions: Path, staging: str = "staging", **kw) -> dict[str, Entry]:
    entries = collect(submissions, tmp_path / staging, filename=FILENAME, **kw)
    assert [e.student for e in entries] == sorted(e.student for e in entries)
    assert_distinct(entries)
    return {e.student: e for e in entries}


def assert_distinct(entries: list[Entry]) -> None:
    """Every entry: its own folder and result file name, even on a case-insensitive disk; what batch.py will use."""
    assert all(e.stem == safe_id(e.student) for e in entries)
    assert len({e.stem.casefold() for e in entries}) == len(entries)
    staged = [e.file for e in entries if e.file]
    assert len({str(f.parent).casefold() for f in staged}) == len(staged)
    assert all(f.parent.name == safe_id(e.student) for e in entries if (f := e.file))


def text(entry: Entry) -> str:
    assert entry.error == "" and entry.file is not None, entry.error
    return entry.file.read_text(encoding="utf-8")


def counting_writes(monkeypatch) -> list[int]:
    """Bytes the extractor writes, whatever it unpacks."""
    written = [0]
    real = safezip.copy_capped

    def count(src, target, cap):
        n = real(src, target, cap)
        written[0] += n or 0
        return n

    monkeypatch.setattr(safezip, "copy_capped", count)
    return written


# 1. One student takes another's grade -----------------------------------------------------------------------------


def test_lookalike_folder_id_keeps_its_own_file(tmp_path):
    subs = tmp_path / "subs"
    write(subs / VICTIM / FILENAME, "victim = 11\n")
    write(subs / LOOKALIKE / FILENAME, "raise SystemExit\n")  # the starter, under the victim's old file name
    got = run(tmp_path, subs)
    assert sorted(got) == sorted([VICTIM, LOOKALIKE])  # both keep the ids they gave
    assert text(got[VICTIM]) == "victim = 11\n" and text(got[LOOKALIKE]) == "raise SystemExit\n"
    assert got[VICTIM].stem == LOOKALIKE  # the victim's name is unchanged; the look-alike is hashed instead
    assert got[LOOKALIKE].stem.startswith(LOOKALIKE + "-")


def test_lookalike_sid_in_gradescope_export_and_result_files(tmp_path):
    meta = "".join(f"submission_{i}:\n  :submitters:\n  - :name: N{i}\n    :sid: '{sid}'\n"
                   for i, sid in enumerate([LOOKALIKE, VICTIM, LOOKALIKE.upper()]))  # students set their own SID
    archive = write_zip(tmp_path / "export.zip", {"submission_metadata.yml": meta, **{
        f"submission_{i}/{FILENAME}": f"me = {i}\n" for i in range(3)}})
    got = run(tmp_path, archive)
    assert {s: text(e) for s, e in got.items()} == {LOOKALIKE: "me = 0\n", VICTIM: "me = 1\n",
                                                     LOOKALIKE.upper(): "me = 2\n"}
    out = tmp_path / "grades"
    for entry in got.values():  # what `labkit grade` writes per student, unchanged: one file each, never shared
        save(out, Outcome(entry.student, entry.name, "graded", score=float(text(entry)[5:])))
    results = {json.loads(p.read_text())["student"]: json.loads(p.read_text())["score"]
               for p in (out / "students").glob("*.json")}
    assert results == {LOOKALIKE: 0.0, VICTIM: 1.0, LOOKALIKE.upper(): 2.0}
    assert len(list((out / "feedback").glob("*.txt"))) == 3


def test_ids_differing_only_in_case_get_their_own_folders(tmp_path):
    subs = tmp_path / "subs"
    for student in ("alice", "Alice", "ALICE"):
        write(subs / student / FILENAME, f"who = {student!r}\n")
    got = run(tmp_path, subs)
    assert {s: text(e) for s, e in got.items()} == {s: f"who = {s!r}\n" for s in ("alice", "Alice", "ALICE")}
    assert got["alice"].stem == "alice" and got["alice"].note == ""
    assert got["Alice"].stem.startswith("Alice-") and got["ALICE"].stem.startswith("ALICE-")


def test_safe_id_never_clashes_ignoring_case():
    tricky = ["alice", "Alice", "ALICE", VICTIM, VICTIM.upper(), LOOKALIKE, LOOKALIKE.upper(), safe_id(LOOKALIKE),
              "", ".", "..", "id", safe_id(""), "2024001234", "jdoe-2024123456", "a" * 80, "a" * 81, "x" * 200,
              "x" * 201, "caf\u00e9", "cafe\u0301", "CON", "con"]
    assert len({safe_id(s).casefold() for s in tricky}) == len(tricky)
    assert safe_id("2024001234") == "2024001234" and safe_id("a" * 80) == "a" * 80  # plain ids stay readable
    assert safe_id(VICTIM) == LOOKALIKE  # hashed names are as before (resumed batches still find them)
    assert safe_id("") == "id-" + ids._digest("")


def test_forged_hash_collision_renames_every_claimant(tmp_path, monkeypatch):
    real = ids._digest  # as if a 40-bit collision had been forged for these two
    monkeypatch.setattr(ids, "_digest", lambda s: "0123456789" if s in ("bob@x.edu", "bob#x.edu") else real(s))
    subs = tmp_path / "subs"
    for student in ("bob@x.edu", "bob#x.edu", "bob@x.edu~1", "carol"):
        write(subs / student / FILENAME, f"who = {student!r}\n")
    first = run(tmp_path, subs)
    assert sorted(first) == ["bob#x.edu~1", "bob@x.edu~1", "bob@x.edu~2", "carol"]  # "bob@x.edu~1" was taken
    assert text(first["bob@x.edu~2"]) == "who = 'bob@x.edu'\n" and text(first["bob#x.edu~1"]) == "who = 'bob#x.edu'\n"
    assert text(first["bob@x.edu~1"]) == "who = 'bob@x.edu~1'\n" and first["bob@x.edu~1"].note == ""
    note = first["bob@x.edu~2"].note
    assert "'bob@x.edu'" in note and "'bob#x.edu'" in note and "graded as 'bob@x.edu~2'" in note
    again = run(tmp_path, subs, staging="staging2")  # deterministic
    assert {s: (e.stem, e.note) for s, e in again.items()} == {s: (e.stem, e.note) for s, e in first.items()}


def test_distinct_alone():
    assert ids.distinct(["b", "a"]) == {"a": ("a", ""), "b": ("b", "")}
    assert ids.distinct([]) == {}


# 2. Nested zips share one budget per student and one per batch -------------------------------------------------------

MAX = 1_000  # max_bytes in these tests; with TOTAL_FACTOR 10, one zip or one student's zips unpack 10,000 bytes


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(safezip, "TOTAL_FACTOR", 10)


def bomb() -> bytes:
    """A student zip under every per-zip limit: 6 members of MAX bytes, 6,000 < 10,000, itself under MAX bytes."""
    return zip_bytes({f"d{i}.txt": b"\0" * MAX for i in range(6)})


def test_student_zips_share_one_budget(tmp_path, monkeypatch, small):
    written = counting_writes(monkeypatch)
    archive = write_zip(tmp_path / "class.zip", [("alice/exercise2.py", "alice = 1\n"),
                                                  ("mallory/exercise2.py", "m = 1\n"),
                                                  *[(f"mallory/b{k}.zip", bomb()) for k in range(3)]])
    got = run(tmp_path, archive, max_bytes=MAX)
    assert text(got["alice"]) == "alice = 1\n"
    error = got["mallory"].error
    assert got["mallory"].file is None and error.startswith("mallory/b1.zip is too large to unpack: ")
    assert error.endswith("it declares more than 10,000 bytes across all of this student's zips")
    top = 10 + 6 + 3 * len(bomb())
    # b0 unpacked, b1 refused from its declared size (not one of its bytes written), b2 never opened; alice staged
    assert written[0] == top + 6 * MAX + len("alice = 1\n")
    # before: each zip had its own 10,000 bytes: all three unpacked (18,000 bytes) and mallory was graded


def test_student_zips_share_one_member_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(safezip, "MAX_MEMBERS", 5)
    subs = tmp_path / "subs"
    write_zip(subs / "mallory" / "a.zip", {FILENAME: "m = 1\n", "x1": "", "x2": ""})
    write_zip(subs / "mallory" / "b.zip", {"y1": "", "y2": "", "y3": ""})  # 3 + 3 members: over 5 together
    write_zip(subs / "alice.zip", {FILENAME: "alice = 1\n", "z1": "", "z2": "", "z3": ""})
    got = run(tmp_path, subs)
    assert text(got["alice"]) == "alice = 1\n"
    assert got["mallory"].error == ("mallory/b.zip is too large to unpack: more than 5 zip members across all of this "
                                    "student's zips")


def test_batch_budget_refuses_the_batch_nothing_staged(tmp_path, monkeypatch, small):
    written = counting_writes(monkeypatch)
    monkeypatch.setattr(safezip, "BATCH_FACTOR", 15)  # 15,000 bytes for the whole batch: the class zip and s0, s1
    archive = write_zip(tmp_path / "class.zip", [(f"s{k}/s{k}.zip", bomb()) for k in range(3)])
    with pytest.raises(IntakeError) as caught:
        collect(archive, tmp_path / "staging", filename=FILENAME, max_bytes=MAX)
    assert str(caught.value) == (f"{archive} is refused, nothing was graded: it declares more than 15,000 bytes "
                                 "across the whole batch (it ran out at s2/s2.zip)")
    assert written[0] == 3 * len(bomb()) + 2 * 6 * MAX  # s2's zip is refused before it writes anything
    assert list((tmp_path / "staging").iterdir()) == []  # scratch removed, nothing staged


def test_batch_member_cap_counts_every_zip(tmp_path, monkeypatch):
    monkeypatch.setattr(safezip, "BATCH_MEMBERS", 10)
    subs = tmp_path / "subs"
    for k in range(3):
        write_zip(subs / f"s{k}.zip", {FILENAME: "", "a": "", "b": "", "c": ""})
    with pytest.raises(IntakeError, match=r"more than 10 zip members across the whole batch \(it ran out at s2.zip\)"):
        collect(subs, tmp_path / "staging", filename=FILENAME)


def test_an_honest_class_zip_of_student_zips_is_graded(tmp_path):
    students = [(f"s{k:02d}/s{k:02d}.zip", zip_bytes({f"ws/{FILENAME}": f"k = {k}\n", "ws/notes.md": "# hi\n" * 50,
                                                      "ws/data/": "", "ws/data/x.csv": "1,2\n" * 1000}))
                for k in range(40)]
    got = run(tmp_path, write_zip(tmp_path / "class.zip", students))
    assert {s: text(e) for s, e in got.items()} == {f"s{k:02d}": f"k = {k}\n" for k in range(40)}


# 3. A duplicate zip member never silently wins ------------------------------------------------------------------------


@pytest.mark.parametrize("twin", [FILENAME, f"./{FILENAME}", f"x/../{FILENAME}", f"\\{FILENAME}", "Exercise2.py",
                                  f"{FILENAME}/"])
def test_twin_member_in_class_zip(tmp_path, twin):
    members = [(f"alice/{FILENAME}", "good = 1\n"), (f"alice/{twin}", "evil = 1\n"), (f"bob/{FILENAME}", "b = 1\n")]
    with pytest.warns(UserWarning, match="Duplicate name") if twin == FILENAME else contextlib.nullcontext():
        archive = write_zip(tmp_path / "class.zip", members)
    got = run(tmp_path, archive)
    assert text(got["bob"]) == "b = 1\n"
    alice = got["alice"]
    assert alice.file is None and "refused" in alice.error, alice.error
    if twin.startswith("x/"):  # refused for its `..` before it could be a twin
        assert "climbs out" in alice.error
    else:
        assert "the zip holds two members of this name" in alice.error if twin == FILENAME else \
            f"it has the same path as member {'alice/' + twin!r}" in alice.error


def test_twin_member_in_student_zip_names_both(tmp_path):
    subs = tmp_path / "subs"
    with pytest.warns(UserWarning, match="Duplicate name"):
        write_zip(subs / "dave.zip", [(FILENAME, "good = 1\n"), (FILENAME, "evil = 1\n")])
    write_zip(subs / "erin.zip", {"src/caf\u00e9.py": "a = 1\n", "src/cafe\u0301.py": "b = 1\n"})  # NFC == NFD
    with pytest.warns(UserWarning, match="Duplicate name"):  # a folder listed twice is harmless: still graded
        write_zip(subs / "gina.zip", [("src/", ""), ("src/", ""), (f"src/{FILENAME}", "g = 1\n")])
    got = run(tmp_path, subs)
    assert got["dave"].file is None
    assert got["dave"].error == f"dave.zip: member '{FILENAME}' refused: the zip holds two members of this name"
    assert got["erin"].file is None and "it has the same path as member 'src/cafe\u0301.py'" in got["erin"].error
    assert text(got["gina"]) == "g = 1\n"


def test_folders_differing_in_case_never_merge(tmp_path):
    archive = write_zip(tmp_path / "class.zip", {f"Erin/{FILENAME}": "E = 1\n", "erin/notes.txt": "e",
                                                 f"frank/{FILENAME}": "f = 1\n"})
    got = run(tmp_path, archive)
    assert text(got["frank"]) == "f = 1\n"
    for student in ("Erin", "erin"):  # one disk would make them one folder: both refused, and told why
        assert got[student].file is None and "it has the same path as member" in got[student].error
