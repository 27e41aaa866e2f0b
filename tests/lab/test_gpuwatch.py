"""The live GPU view (`labkit doctor --gpus --watch S`) against fake nvidia-smi scripts: no GPU needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.lab import gpuwatch

TWO_H100 = ["0, GPU-aaaa, NVIDIA H100 80GB HBM3, 30000, 81559, 97",
            "1, GPU-bbbb, NVIDIA H100 80GB HBM3, 12000, 81559, 64"]
APPS = ["GPU-aaaa, 4242, /usr/bin/python3, 29500", "GPU-bbbb, 4242, /usr/bin/python3, 11500"]


def fake_smi(folder: Path, gpus: list[str], apps: list[str] = (), fail: str = "") -> str:
    """An `nvidia-smi` answering the two CSV queries the view makes (or failing with `fail`); its path."""
    rows = " ".join(f"'{r}'" for r in gpus)
    procs = "printf '%s\\n' " + " ".join(f"'{r}'" for r in apps) if apps else "true"
    body = (f"echo '{fail}'; exit 9" if fail else
            f"case \"$*\" in\n  *--query-gpu=*--format=csv,noheader,nounits) printf '%s\\n' {rows} ;;\n"
            f"  *--query-compute-apps=*--format=csv,noheader,nounits) {procs} ;;\n"
            "  *) echo 'unexpected arguments' >&2; exit 2 ;;\nesac")
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


def test_each_gpu_has_its_memory_utilisation_and_processes(tmp_path):
    snap = gpuwatch.snapshot(fake_smi(tmp_path, TWO_H100, APPS))
    assert [(g.index, g.used_mib, g.total_mib, g.util) for g in snap.gpus] == [(0, 30000, 81559, 97),
                                                                               (1, 12000, 81559, 64)]
    assert snap.gpus[0].processes == [(4242, "/usr/bin/python3", 29500)]
    lines = gpuwatch.table(snap)
    assert len(lines) == 4 and "30,000 / 81,559" in lines[1] and "97%" in lines[1]
    assert "4242 python3 (29,500 MiB)" in lines[1] and "4242 python3 (11,500 MiB)" in lines[2]
    assert "GPU 0 holds 2.5x the memory of the others" in lines[3] and "gathers the outputs" in lines[3]


def test_balanced_gpus_and_not_applicable_fields_get_no_note(tmp_path):
    rows = ["0, GPU-aaaa, NVIDIA A100-SXM4-40GB, 1000, 40960, [N/A]",
            "1, GPU-bbbb, NVIDIA A100-SXM4-40GB, 1010, 40960, 3"]
    lines = gpuwatch.table(gpuwatch.snapshot(fake_smi(tmp_path, rows)))
    assert len(lines) == 3 and " - " in lines[1] and lines[1].endswith("none") and "3%" in lines[2]


def test_no_nvidia_smi_or_a_broken_one_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert gpuwatch.table(gpuwatch.snapshot()) == ["no nvidia-smi here: no NVIDIA driver, so no GPU to watch"]
    why = "NVIDIA-SMI has failed because it could not communicate"
    broken = gpuwatch.snapshot(fake_smi(tmp_path, [], fail=why))
    assert broken.found and broken.problem == f"nvidia-smi failed: {why}"


def test_watch_redraws_until_ctrl_c(tmp_path):
    exe, out, naps = fake_smi(tmp_path, TWO_H100, APPS), [], []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    clears = []
    gpuwatch.watch(0.5, out.append, lambda: clears.append(1), sleep, exe)
    assert naps == [0.5] * 3 and len(clears) == 3
    assert sum(line.startswith("every 0.5 s, Ctrl-C to stop") for line in out) == 3
    assert sum("NVIDIA H100" in line for line in out) == 6


@pytest.mark.parametrize("seconds", [None, 1.0])
def test_without_nvidia_smi_it_says_so_once_and_returns(monkeypatch, seconds):
    monkeypatch.setenv("PATH", "/nonexistent")
    out = []
    gpuwatch.watch(seconds, out.append, sleep=lambda s: pytest.fail("a watch without nvidia-smi should not wait"))
    assert out == ["no nvidia-smi here: no NVIDIA driver, so no GPU to watch"]
