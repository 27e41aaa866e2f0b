"""`labkit doctor` end to end on a CPU: a fake nvidia-smi on PATH and a torch.cuda that sees what each test says."""

from __future__ import annotations

import functools
import json

import pytest
from click.testing import CliRunner
from fake_gpu import H100, V100, fake_cuda, fake_smi, on_path

from labkit.cli.main import cli
from labkit.lab import nvidia


@pytest.fixture
def doctor():
    def run(*args: str):
        result = CliRunner().invoke(cli, ["doctor", *args])
        assert "Traceback" not in result.output, result.output
        return result

    return run


def test_an_old_driver_torch_cannot_use_is_named_with_its_fix(doctor, tmp_path, monkeypatch):
    fake_smi(tmp_path, "550.54.15", [H100, H100])
    on_path(monkeypatch, tmp_path)
    fake_cuda(monkeypatch, [])  # torch.cuda.is_available() is False under a driver older than its CUDA
    out = doctor()
    assert out.exit_code == 0
    assert "driver       550.54.15" in out.output
    assert "GPUs         the driver sees 2, torch sees 0" in out.output
    assert f"0: {H100[0]} (compute capability 9.0) GPU-00000000-aaaa" in out.output
    assert "driver 550.54.15 is too old" in out.output and "upgrade the driver to >= 580" in out.output
    assert "--index-url https://download.pytorch.org/whl/cu126" in out.output
    assert doctor("--strict").exit_code == 1


def test_json_carries_the_driver_view_and_the_warnings(doctor, tmp_path, monkeypatch):
    fake_smi(tmp_path, "550.54.15", [V100], mode="old")  # an nvidia-smi without compute_cap
    on_path(monkeypatch, tmp_path)
    fake_cuda(monkeypatch, [])
    data = json.loads(doctor("--json").output)
    assert data["driver"] == "550.54.15" and data["driver_gpus"][0]["name"] == V100[0]
    assert data["arch_list"][0] == "sm_75" and data["gpus"] == []
    assert any("too old" in note for note in data["warnings"])


def test_a_v100_that_torch_sees_gets_the_no_kernel_image_warning(doctor, tmp_path, monkeypatch):
    fake_smi(tmp_path, "580.65.06", [V100])
    on_path(monkeypatch, tmp_path)
    fake_cuda(monkeypatch, [V100])
    out = doctor().output
    assert "compute capability 7.0" in out and "no kernel image is available" in out and "whl/cu126" in out
    assert "GPUs         the driver sees 1, torch sees 1" in out


def test_a_healthy_gpu_machine_has_no_gpu_warning(doctor, tmp_path, monkeypatch):
    fake_smi(tmp_path, "580.65.06", [H100, H100])
    on_path(monkeypatch, tmp_path)
    fake_cuda(monkeypatch, [H100, H100])
    data = json.loads(doctor("--json").output)
    assert len(data["gpus"]) == 2 and data["gpus"][0]["capability"] == "9.0"
    gpu_words = ("driver", "kernel", "GPU(s)", "CUDA device", "container")
    assert [n for n in data["warnings"] if any(w in n for w in gpu_words)] == []


def test_a_container_without_gpus_says_how_to_pass_the_hosts(doctor, monkeypatch):
    on_path(monkeypatch, None)  # no nvidia-smi: the toolkit mounts it only with --gpus
    monkeypatch.setattr(nvidia, "in_container", lambda *a, **k: "docker")
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "all")  # the image's default
    fake_cuda(monkeypatch, [])
    out = doctor().output
    assert "GPUs         the driver sees ?, torch sees 0" in out
    assert "the host's GPUs, if it has any, cannot be seen from here" in out and "docker run --gpus all" in out


def test_no_nvidia_and_no_container_is_just_a_cpu_machine(doctor, monkeypatch):
    on_path(monkeypatch, None)
    fake_cuda(monkeypatch, [])
    out = doctor().output
    assert "no CUDA device is visible" in out and "cannot be seen from here" not in out


def test_a_broken_driver_says_nvidia_smi_cannot_reach_it(doctor, tmp_path, monkeypatch):
    fake_smi(tmp_path, None, [], mode="broken")
    on_path(monkeypatch, tmp_path)
    fake_cuda(monkeypatch, [])
    out = doctor().output
    assert "nvidia-smi cannot talk to the NVIDIA driver (NVIDIA-SMI has failed" in out


def gpu_smi(folder, used: tuple[int, int]) -> None:
    """An nvidia-smi for the live view: two GPUs with `used` MiB, one process on each."""
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\ncase \"$*\" in\n"
                      f"  *--query-gpu=*nounits) printf '%s\\n' '0, GPU-a, {H100[0]}, {used[0]}, 81559, 90' "
                      f"'1, GPU-b, {H100[0]}, {used[1]}, 81559, 40' ;;\n"
                      "  *--query-compute-apps=*nounits) printf '%s\\n' 'GPU-a, 77, python3, 100' "
                      "'GPU-b, 77, python3, 90' ;;\n"
                      "  *) exit 2 ;;\nesac\n")
    script.chmod(0o755)


def test_the_gpu_view_shows_one_row_per_gpu_and_never_imports_torch(tmp_path):
    import os
    import subprocess
    import sys

    gpu_smi(tmp_path, (30000, 12000))
    code = ("import sys; from labkit.cli.main import cli; sys.argv = ['labkit', 'doctor', '--gpus']\n"
            "try:\n    cli()\nexcept SystemExit as e:\n    assert 'torch' not in sys.modules, 'torch was imported'\n"
            "    raise")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    rows = done.stdout.splitlines()
    assert rows[1].startswith("0    NVIDIA H100") and "30,000 / 81,559" in rows[1] and "77 python3 (100 MiB)" in rows[1]
    assert rows[2].startswith("1    NVIDIA H100") and "GPU 0 holds 2.5x the memory" in rows[3]


def test_watch_redraws_until_ctrl_c_and_exits_0(doctor, tmp_path, monkeypatch):
    from labkit.lab import gpuwatch

    gpu_smi(tmp_path, (1000, 1000))
    on_path(monkeypatch, tmp_path)
    naps = []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(gpuwatch, "watch", functools.partial(gpuwatch.watch, sleep=sleep))
    out = doctor("--gpus", "--watch", "2")
    assert out.exit_code == 0 and naps == [2.0, 2.0]
    assert out.output.count("every 2 s, Ctrl-C to stop") == 2 and out.output.count("NVIDIA H100") == 4


def test_the_gpu_view_without_nvidia_smi_says_so_and_exits_0(doctor, monkeypatch):
    on_path(monkeypatch, None)
    out = doctor("--gpus", "--watch", "1")
    assert out.exit_code == 0 and out.output == "no nvidia-smi here: no NVIDIA driver, so no GPU to watch\n"


def test_watch_without_the_gpu_view_is_a_usage_error(doctor):
    out = doctor("--watch", "1")
    assert out.exit_code == 2 and "use it with --gpus" in out.output


def test_doctor_says_which_sandboxes_work_and_whether_slurm_is_reachable(doctor, monkeypatch):
    from labkit.classroom import slurm_cli
    from labkit.sandbox import modes

    monkeypatch.setattr(modes, "sandbox_report", lambda: [
        modes.SandboxStatus("bwrap", False, "bubblewrap is not installed (apt-get install bubblewrap)"),
        modes.SandboxStatus("none", True)])
    monkeypatch.setattr(slurm_cli, "doctor_lines", lambda: [("slurm", False, "sbatch not found")])
    out = doctor()
    assert out.exit_code == 0
    assert "sandbox bwrap no: bubblewrap is not installed (apt-get install bubblewrap)" in out.output
    assert "sandbox none works" in out.output
    assert "slurm        no: sbatch not found" in out.output
    data = json.loads(doctor("--json").output)
    why = "bubblewrap is not installed (apt-get install bubblewrap)"
    assert data["sandboxes"]["bwrap"] == {"works": False, "why": why}
    assert data["slurm"] == [{"what": "slurm", "ok": False, "detail": "sbatch not found"}]


def test_a_torch_other_than_the_pinned_one_is_a_warning(doctor, monkeypatch):
    from labkit.lab import pins

    monkeypatch.setattr(pins, "installed_version", lambda name: "2.13.0" if name == "torch" else None)
    out = doctor()
    assert "warning:" in out.output and "2.13.0" in out.output and "2.14.1" in out.output
    assert doctor("--strict").exit_code == 1
