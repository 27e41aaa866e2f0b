"""Bubblewrap and the GPUs' device nodes: /dev/nvidia-uvm made on a freshly booted node, every node bound."""

from __future__ import annotations

import subprocess

import pytest

from labkit.sandbox import bwrap
from labkit.sandbox.scratch import Scratch

needs_bwrap = pytest.mark.skipif(bool(bwrap.bwrap_works()), reason=f"no bubblewrap sandbox here: "
                                 f"{bwrap.bwrap_works()} (.ci/run installs it)")


@pytest.fixture
def dev(tmp_path, monkeypatch):
    """A fake /dev with two GPUs and nvidiactl but no nvidia-uvm yet (a node just booted), and no nvidia-modprobe."""
    folder = tmp_path / "dev"
    folder.mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl"):
        (folder / name).touch()
    monkeypatch.setattr(bwrap, "DEV", folder)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    return folder


@pytest.fixture
def modprobe(tmp_path, dev, monkeypatch):
    """A fake nvidia-modprobe on PATH: logs its arguments and makes the uvm nodes, as the real one does."""
    log = tmp_path / "modprobe.log"
    fake = tmp_path / "bin" / "nvidia-modprobe"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\ntouch {dev}/nvidia-uvm {dev}/nvidia-uvm-tools\n',
                    encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    return log


def build(gpus: bool = True) -> list[str]:
    scratch = Scratch()
    try:
        return bwrap.command(["python"], inputs=scratch.inputs, work=scratch.work, gpus=gpus)
    finally:
        scratch.remove()


def bound(argv: list[str], how: str) -> list[str]:
    found = [argv[i + 1] for i, a in enumerate(argv) if a == how]
    assert all(argv[i + 1] == argv[i + 2] for i, a in enumerate(argv) if a == how)  # same path inside
    return found


def test_a_missing_uvm_node_is_made_the_documented_way_before_the_worker_starts(dev, modprobe):
    argv = build()
    assert modprobe.read_text().split() == ["-u", "-c=0"]
    nodes = bound(argv, "--dev-bind-try")
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"):
        assert str(dev / name) in nodes, name
    assert "--dev-bind" not in argv  # a node missing at bwrap's start must not stop the worker


def test_modprobe_is_not_run_when_uvm_is_there(dev, modprobe):
    (dev / "nvidia-uvm").touch()
    argv = build()
    assert not modprobe.exists()
    assert str(dev / "nvidia-uvm") in bound(argv, "--dev-bind-try")


def test_without_nvidia_modprobe_the_expected_nodes_are_still_bound_if_present(dev):
    argv = build()  # no nvidia-modprobe on PATH: nothing to run, no error
    nodes = bound(argv, "--dev-bind-try")
    for name in bwrap.GPU_NODES:  # made later (by udev, by another CUDA process): covered when bwrap starts
        assert str(dev / name) in nodes, name
    assert str(dev / "nvidia0") in nodes


def test_a_failing_modprobe_does_not_stop_the_worker(dev, tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-modprobe"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'cannot load nvidia-uvm' >&2\nexit 1\n", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    assert str(dev / "nvidia-uvm") in bound(build(), "--dev-bind-try")


def test_no_gpu_means_no_nvidia_node_and_no_modprobe(dev, modprobe):
    for name in ("nvidia0", "nvidia1"):
        (dev / name).unlink()
    argv = build()  # nvidiactl alone (a driver without a GPU) is not a GPU
    assert not modprobe.exists()
    assert not bound(argv, "--dev-bind-try") and not any(a.startswith(str(dev)) for a in argv)


def test_a_cpu_only_worker_gets_no_gpu_node(dev, modprobe):
    argv = build(gpus=False)
    assert not modprobe.exists()
    assert not bound(argv, "--dev-bind-try") and not any(a.startswith(str(dev)) for a in argv)


def test_gpu_nodes_are_the_numbered_ones_only(dev):
    (dev / "nvidia-caps").mkdir()
    (dev / "nvidia12").touch()
    assert bwrap.gpu_nodes() == [str(dev / "nvidia0"), str(dev / "nvidia1"), str(dev / "nvidia12")]


@needs_bwrap
def test_bubblewrap_starts_with_a_node_that_does_not_exist():
    """--dev-bind-try, as this bubblewrap reads it: a missing node is skipped, not an error."""
    missing = "/dev/nvidia-labkit-test-missing"
    done = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--dev-bind-try", missing, missing,
                           "--dev-bind-try", "/dev/null", "/dev/null", "true"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
