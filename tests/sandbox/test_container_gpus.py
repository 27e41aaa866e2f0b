"""`--sandbox container`: the host's GPUs and the grader's CPUs reach the worker's container, on a fake /dev."""

from __future__ import annotations

import subprocess

import pytest

from labkit.sandbox import bwrap, container
from labkit.sandbox.errors import SandboxError
from labkit.sandbox.modes import choose


@pytest.fixture
def dev(tmp_path, monkeypatch):
    """A fake /dev (empty: no GPU) that device discovery reads instead of the real one; no nvidia-modprobe."""
    folder = tmp_path / "dev"
    folder.mkdir()
    monkeypatch.setattr(bwrap, "DEV", folder)
    monkeypatch.setattr(bwrap, "MODPROBE", ("labkit-no-such-nvidia-modprobe", "-u", "-c=0"))
    for key in container.GPU_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv(container.STORAGE_ENV, raising=False)
    return folder


def with_gpus(dev, count: int = 2) -> None:
    for name in [*(f"nvidia{i}" for i in range(count)), "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"]:
        (dev / name).touch()


def run_command(tmp_path, monkeypatch, engine: str) -> list[str]:
    monkeypatch.setattr(container, "engine", lambda: engine)
    return container.command("print(1)", inputs=tmp_path / "in", work=tmp_path / "work", container="w1")


def flag(run: list[str], name: str) -> list[str]:
    return [run[i + 1] for i, a in enumerate(run) if a == name]


def test_podman_passes_every_gpu_through_cdi(dev, tmp_path, monkeypatch):
    with_gpus(dev)
    run = run_command(tmp_path, monkeypatch, "podman")
    assert flag(run, "--device") == ["nvidia.com/gpu=all"]
    assert "--gpus" not in run  # docker's flag: podman would refuse it
    assert run.index("--device") < run.index(container.image())  # an option of `run`, not an argument of python


def test_docker_passes_every_gpu_with_gpus_all(dev, tmp_path, monkeypatch):
    with_gpus(dev)
    run = run_command(tmp_path, monkeypatch, "docker")
    assert flag(run, "--gpus") == ["all"]
    assert "--device" not in run and not any("nvidia.com/gpu" in a for a in run)
    assert run.index("--gpus") < run.index(container.image())


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_no_gpu_flag_on_a_host_without_gpus(dev, tmp_path, monkeypatch, engine):
    (dev / "nvidiactl").touch()  # a driver without a GPU: still no GPU to pass
    run = run_command(tmp_path, monkeypatch, engine)
    assert "--gpus" not in run and "--device" not in run
    assert not any("nvidia.com" in a or "CUDA_" in a for a in run)


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_gpus_hidden_from_the_grader_stay_out_of_the_container(dev, tmp_path, monkeypatch, engine):
    with_gpus(dev)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the grader counts none, so it runs no GPU check
    run = run_command(tmp_path, monkeypatch, engine)
    assert "--gpus" not in run and "--device" not in run
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert "--gpus" not in run_command(tmp_path, monkeypatch, engine)


@pytest.mark.parametrize("engine", ["podman", "docker"])
def test_the_graders_choice_of_gpus_goes_in_with_them(dev, tmp_path, monkeypatch, engine):
    with_gpus(dev, 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    envs = flag(run_command(tmp_path, monkeypatch, engine), "--env")
    assert "CUDA_VISIBLE_DEVICES=2,3" in envs and "CUDA_DEVICE_ORDER=PCI_BUS_ID" in envs


@pytest.mark.parametrize("engine", ["podman", "docker"])
@pytest.mark.parametrize("gpus", [0, 2])
def test_the_cpu_quota_is_the_cpus_the_grader_may_use_and_the_limits_stay(dev, tmp_path, monkeypatch, engine,
                                                                          gpus):
    with_gpus(dev, gpus)
    monkeypatch.setattr(container.os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    run = run_command(tmp_path, monkeypatch, engine)
    assert flag(run, "--cpus") == ["3"]  # not 1: exercise6's two-worker speed check needs two CPUs
    assert flag(run, "--memory") == [container.MEMORY] and flag(run, "--pids-limit") == [str(container.PIDS)]
    hidden = [t.split(":")[0] for t in flag(run, "--tmpfs")]
    assert set(container.IMAGE_HIDDEN) <= set(hidden)  # the checks files stay hidden, GPUs or not
    assert run[-4:] == [container.image(), "-I", "-c", "print(1)"]


def test_a_missing_uvm_node_is_made_before_the_container_starts(dev, tmp_path, monkeypatch):
    with_gpus(dev)
    (dev / "nvidia-uvm").unlink()
    log = tmp_path / "modprobe.log"
    fake = tmp_path / "bin" / "nvidia-modprobe"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\ntouch {dev}/nvidia-uvm\n', encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setattr(bwrap, "MODPROBE", ("nvidia-modprobe", "-u", "-c=0"))
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    run = run_command(tmp_path, monkeypatch, "podman")
    assert log.read_text().split() == ["-u", "-c=0"] and (dev / "nvidia-uvm").exists()
    assert flag(run, "--device") == ["nvidia.com/gpu=all"]


def test_deciding_calls_no_cuda(dev, tmp_path, monkeypatch):
    """The grader forks workers: whether to pass GPUs is read from /dev, never from an initialised CUDA."""
    torch = pytest.importorskip("torch")

    def refuse(*args, **kwargs):
        raise AssertionError("CUDA was touched")

    for name in ("_lazy_init", "device_count", "is_available", "init"):
        monkeypatch.setattr(torch.cuda, name, refuse)
    with_gpus(dev)
    assert container.host_gpus() == 2
    assert "--device" in run_command(tmp_path, monkeypatch, "podman")


def cdi_host(dev, tmp_path, monkeypatch, engine: str = "podman"):
    """GPUs, an image that exists, and an empty CDI folder: what choose('container') sees."""
    with_gpus(dev)
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    monkeypatch.setattr(container, "CDI_DIRS", (str(cdi), str(tmp_path / "no-such-cdi")))
    monkeypatch.setattr(container, "engine", lambda: engine)
    monkeypatch.setattr(container.shutil, "which", lambda exe: f"/usr/bin/{exe}" if exe == engine else None)
    real = subprocess.run

    def fake_run(argv, *args, **kwargs):
        if argv[0] == engine:  # `image inspect`: the image is built
            return subprocess.CompletedProcess(argv, 0, b"[]", b"")
        return real(argv, *args, **kwargs)

    monkeypatch.setattr(container.subprocess, "run", fake_run)
    return cdi


def test_podman_without_a_cdi_spec_is_refused_with_the_fix(dev, tmp_path, monkeypatch):
    cdi_host(dev, tmp_path, monkeypatch)
    with pytest.raises(SandboxError) as err:
        choose("container")
    assert "nvidia-ctk cdi generate" in str(err.value) and "CUDA_VISIBLE_DEVICES=" in str(err.value)


def test_podman_with_a_cdi_spec_for_the_gpus_is_accepted(dev, tmp_path, monkeypatch):
    cdi = cdi_host(dev, tmp_path, monkeypatch)
    (cdi / "other.yaml").write_text("kind: example.com/fpga\n", encoding="utf-8")
    assert container.works() != ""  # a spec for something else does not pass GPUs
    (cdi / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices: []\n", encoding="utf-8")
    assert container.works() == ""
    assert choose("container") == "container"


def test_no_cdi_spec_is_asked_for_without_gpus_or_with_docker(dev, tmp_path, monkeypatch):
    cdi_host(dev, tmp_path, monkeypatch, engine="docker")
    assert container.works() == ""  # docker's --gpus needs no CDI spec
    monkeypatch.setattr(container, "engine", lambda: "podman")
    for name in ("nvidia0", "nvidia1"):
        (dev / name).unlink()
    assert container.gpu_problem() == ""  # no GPU: nothing to pass

