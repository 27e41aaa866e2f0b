"""Files a submission wrote, read by a check: no links, no waiting, a size cap, torch files checked before loading."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
import zipfile

import pytest
import torch
from torch import nn

from labkit.checks import CheckFailed, load_student_tensors, read_student_file, torch_file_problem


def bomb(path, size: int = 64 << 20) -> None:
    """A state dict whose storage record is `size` deflated zeros (64 MB in about 64 KB)."""
    buf = io.BytesIO()
    torch.save({"weight": torch.zeros(1, 1)}, buf)
    src = zipfile.ZipFile(buf)
    with zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            compressed = info.filename.endswith("data/0")
            dst.writestr(info.filename, bytes(size) if compressed else src.read(info.filename),
                         compress_type=zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED)


def finishes(fn, seconds: float = 5.0):
    """fn()'s CheckFailed message, asserting it came back within `seconds` (a blocking open would not)."""
    out: list = []

    def run():
        try:
            fn()
            out.append(None)
        except CheckFailed as exc:
            out.append(str(exc))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert out, f"still waiting after {seconds} s"
    return out[0]


def test_a_good_torch_file_loads(tmp_path):
    state = nn.Linear(3, 2).state_dict()
    torch.save(state, tmp_path / "model.pt")
    got = load_student_tensors(tmp_path / "model.pt", max_bytes=1 << 20)
    assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)
    assert read_student_file(tmp_path / "model.pt", max_bytes=1 << 20) == (tmp_path / "model.pt").read_bytes()


def test_a_symlink_is_refused_even_to_a_good_file(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "real.pt")
    (tmp_path / "link.pt").symlink_to(tmp_path / "real.pt")
    with pytest.raises(CheckFailed, match="symbolic link"):
        load_student_tensors(tmp_path / "link.pt", max_bytes=1 << 20)


def test_a_fifo_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "answer.pt")
    message = finishes(lambda: load_student_tensors(tmp_path / "answer.pt", max_bytes=1 << 20))
    assert "not a regular file" in message


def test_folders_and_missing_files_are_refused(tmp_path):
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(CheckFailed, match="not a regular file"):
        read_student_file(tmp_path / "dir.pt", max_bytes=10)
    with pytest.raises(CheckFailed, match="does not exist"):
        read_student_file(tmp_path / "none.pt", max_bytes=10, what="the plot")


def test_an_oversized_file_is_refused(tmp_path):
    (tmp_path / "big.png").write_bytes(b"x" * 101)
    with pytest.raises(CheckFailed, match="larger than 100 bytes"):
        read_student_file(tmp_path / "big.png", max_bytes=100)
    assert read_student_file(tmp_path / "big.png", max_bytes=101) == b"x" * 101


def test_a_deflate_bomb_is_refused_before_torch_load(tmp_path, monkeypatch):
    bomb(tmp_path / "bomb.pt")
    assert (tmp_path / "bomb.pt").stat().st_size < 1 << 20
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached"))
    with pytest.raises(CheckFailed, match="was not written by torch.save: its record .* is compressed"):
        load_student_tensors(tmp_path / "bomb.pt", max_bytes=1 << 20)


def test_other_formats_and_objects_are_refused_with_a_lesson(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckFailed, match="not written by torch.save: it is not a zip"):
        load_student_tensors(tmp_path / "legacy.pt", max_bytes=1 << 20)
    torch.save(nn.Linear(1, 1), tmp_path / "model.pt")
    with pytest.raises(CheckFailed, match="not the model object"):
        load_student_tensors(tmp_path / "model.pt", max_bytes=1 << 20, what="the model file")
    torch.save({"w": torch.zeros(1).expand(10**9)}, tmp_path / "expanded.pt")
    with pytest.raises(CheckFailed, match="more elements than its bytes"):
        load_student_tensors(tmp_path / "expanded.pt", max_bytes=1 << 20)


def test_a_cyclic_value_is_walked_once(tmp_path):
    loop: list = [torch.zeros(4)]
    loop.append(loop)
    torch.save(loop, tmp_path / "loop.pt")
    got = load_student_tensors(tmp_path / "loop.pt", max_bytes=1 << 20)
    assert got[1] is got


def test_the_record_cap_and_a_plain_zip():
    buf = io.BytesIO()
    torch.save([torch.zeros(1) for _ in range(20)], buf)
    assert torch_file_problem(buf.getvalue(), max_bytes=1 << 20) is None
    assert "more than 5" in torch_file_problem(buf.getvalue(), max_bytes=1 << 20, max_records=5)
    assert "not a zip" in torch_file_problem(b"", max_bytes=10)


LEASE = """
import fcntl, os, signal, sys, time
signal.signal(signal.SIGIO, signal.SIG_IGN)  # a lease break sends SIGIO, which would end this process
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
except OSError as exc:
    print("no lease:", exc, flush=True)
    sys.exit(0)
print("leased", flush=True)
time.sleep(30)
"""


def test_a_file_under_a_write_lease_is_refused_at_once(tmp_path):
    path = tmp_path / "answer.pt"
    torch.save({"w": torch.zeros(1)}, path)
    holder = subprocess.Popen([sys.executable, "-c", LEASE, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        said = holder.stdout.readline()
        if not said.startswith("leased"):
            pytest.skip(f"fcntl F_SETLEASE does not work here: {said.strip() or 'no answer'}")
        started = time.monotonic()
        message = finishes(lambda: load_student_tensors(path, max_bytes=1 << 20))
        assert "lease" in message and time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
