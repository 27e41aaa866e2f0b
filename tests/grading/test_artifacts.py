"""The keeper of what a check inspected: regular files only, no link followed, capped, and only its own folder."""

from __future__ import annotations

import os
from pathlib import Path

from labkit.grading import artifacts
from labkit.grading.artifacts import Keeper


def keeper(tmp_path: Path, **kwargs) -> Keeper:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    return Keeper(ws, ws / ".labkit" / "artifacts" / "exercise2", **kwargs)


def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "plots").mkdir(parents=True)
    (work / "plots" / "loss.png").write_bytes(b"\x89PNG fake")
    (work / "output.txt").write_text("the child's output: the report has it already")
    return work


def test_regular_files_are_kept_under_the_check_and_replace_the_last_run(tmp_path):
    keep, work = keeper(tmp_path), workdir(tmp_path)
    keep("plot_saved", work)
    folder = keep.folder / "plot_saved"
    assert keep.kept == {"plot_saved": folder}
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == ["plots/loss.png"]
    (work / "plots" / "loss.png").unlink()
    (work / "ckpt.pt").write_bytes(b"weights")
    keep("plot_saved", work)
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["ckpt.pt"]  # the old figure went
    (work / "ckpt.pt").unlink()
    keep("plot_saved", work)
    assert not folder.exists()  # nothing inspected this time: nothing stale left either


def test_links_fifos_and_oversized_files_are_left_out(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "MAX_FILE", 100)
    secret = tmp_path / "secret.txt"
    secret.write_text("the student's own file, elsewhere")
    work = workdir(tmp_path)
    (work / "link.txt").symlink_to(secret)
    (work / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(work / "pipe")  # opening it without O_NONBLOCK would hang the grader
    (work / "big.bin").write_bytes(b"x" * 101)
    keep = keeper(tmp_path)
    keep("figure", work)
    kept = sorted(p.name for p in (keep.folder / "figure").rglob("*") if p.is_file() or p.is_symlink())
    assert kept == ["loss.png"] and any("big.bin" in why for why in keep.left_out["figure"])
    assert secret.read_text() == "the student's own file, elsewhere"


def test_caps_on_count_and_total_size(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "MAX_FILES", 3)
    monkeypatch.setattr(artifacts, "MAX_CHECK", 25)
    work = tmp_path / "work"
    work.mkdir()
    for n in range(6):
        (work / f"f{n}.bin").write_bytes(b"y" * 10)
    keep = keeper(tmp_path)
    keep("many", work)
    assert len(list((keep.folder / "many").iterdir())) == 2  # 3 files would be 30 bytes: over the 25 kept
    assert len(keep.left_out["many"]) == 4


def test_hidden_checks_odd_names_and_a_linked_state_folder_keep_nothing(tmp_path):
    work = workdir(tmp_path)
    keep = keeper(tmp_path, hidden={"secret_case"})
    keep("secret_case", work)
    keep("../escape", work)
    assert keep.kept == {} and not keep.folder.exists()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "exercise2" / "figure").mkdir(parents=True)
    (elsewhere / "exercise2" / "figure" / "mine.txt").write_text("not labkit's")
    (tmp_path / "ws" / ".labkit").mkdir()
    (tmp_path / "ws" / ".labkit" / "artifacts").symlink_to(elsewhere)  # a link would send rmtree elsewhere
    keep("figure", work)
    assert keep.kept == {} and (elsewhere / "exercise2" / "figure" / "mine.txt").read_text() == "not labkit's"
