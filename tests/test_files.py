"""labkit.files: the one home of atomic writes, zip entries, sha256 and imports by path."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import zipfile
from pathlib import Path

import pytest

from labkit import files


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, want", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_write_atomic_gives_what_open_would_under_the_umask(tmp_path, mask, want):
    old = os.umask(mask)
    try:
        written = files.write_atomic(tmp_path / "deep" / "grades.csv", "a,b\n")
        with open(tmp_path / "plain.txt", "w") as f:  # what the user expects: a plain open()'s mode
            f.write("x")
    finally:
        os.umask(old)
    assert written.read_text() == "a,b\n" and mode_of(written) == want == mode_of(tmp_path / "plain.txt")
    assert [p.name for p in written.parent.iterdir()] == ["grades.csv"]  # no temporary file left


def test_write_atomic_replaces_whole_and_cleans_up_on_failure(tmp_path, monkeypatch):
    path = files.write_atomic(tmp_path / "r.json", b"old")
    files.write_atomic(path, "new", mode=0o640)
    assert path.read_text() == "new" and mode_of(path) == 0o640

    def broken(*_):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(OSError):
        files.write_atomic(path, "half")
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


def test_umask_is_read_without_changing_it_from_many_threads():
    old = os.umask(0o027)
    try:
        seen: list[int] = []
        threads = [threading.Thread(target=lambda: seen.append(files.umask())) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == [0o027] * 8 and os.umask(0o027) == 0o027
    finally:
        os.umask(old)


def test_zip_entries_are_reproducible_and_keep_modes(tmp_path):
    def build(name: str) -> bytes:
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            files.zip_entry(zf, "run_autograder", b"#!/bin/sh\n", 0o755)
            files.zip_entry(zf, "a.txt", b"a")
        return (tmp_path / name).read_bytes()

    assert build("one.zip") == build("two.zip")
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        info = zf.getinfo("run_autograder")
        assert info.date_time == files.EPOCH and (info.external_attr >> 16) & 0o777 == 0o755


def test_import_path_and_sha256(tmp_path):
    path = tmp_path / "mod.py"
    path.write_text("VALUE = 41 + 1\n")
    assert files.import_path(path, "labkit_test_mod").VALUE == 42
    assert files.sha256_of(path) == hashlib.sha256(b"VALUE = 41 + 1\n").hexdigest()
    with pytest.raises(ImportError):
        files.import_path(tmp_path / "data.txt", "labkit_test_txt")


def test_the_students_started_file_and_workspace_follow_the_umask(tmp_path):
    """Through the CLI, as a student meets it: `labkit init` and `labkit start` under umask 027 give 0640 files."""
    import subprocess
    import sys

    def labkit(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "labkit", *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, preexec_fn=lambda: os.umask(0o027))
        assert done.returncode == 0, done.stdout + done.stderr

    labkit("init", "ws")
    labkit("start", "exercise1", "-w", "ws")
    started = tmp_path / "ws" / "exercise1.py"
    assert started.is_file() and mode_of(started) == 0o640  # not mkstemp's 0600: the student's own editor reads it
    assert mode_of(tmp_path / "ws" / "labkit.toml") == 0o640
