"""labkit doctor's warnings, each both ways, on a CPU with hand-made fingerprints (no GPU, no container needed)."""

from __future__ import annotations

import pytest

from labkit.lab.devices import Fingerprint, format_p2p, p2p_matrix, shm_size, warnings

GIB = 1 << 30


def fp(**kw) -> Fingerprint:
    """A healthy 2-GPU fingerprint: no warnings unless a test breaks something."""
    base = dict(labkit="0", python="3.11", platform="linux", cpu_count=8, torch="2.14.1", cuda="13.0",
                gpus=[{"index": 0, "name": "A", "memory_gib": 80.0}, {"index": 1, "name": "A", "memory_gib": 80.0}],
                env={}, driver_cuda="13.0", p2p=[[True, True], [True, True]], shm_bytes=2 * GIB, uid=1000)
    return Fingerprint(**{**base, **kw})


def has(notes: list[str], text: str) -> bool:
    return any(text in note for note in notes)


def test_a_healthy_machine_has_no_warnings():
    assert warnings(fp()) == []


def test_small_dev_shm_warns_with_the_fix():
    assert has(warnings(fp(shm_bytes=64 << 20)), "--shm-size=2g")
    assert not has(warnings(fp(shm_bytes=GIB)), "/dev/shm")
    assert not has(warnings(fp(shm_bytes=None)), "/dev/shm")  # no /dev/shm (macOS): nothing to say


def test_shm_size_reads_a_path(tmp_path):
    assert shm_size(str(tmp_path)) > 0
    assert shm_size(str(tmp_path / "missing")) is None


@pytest.mark.parametrize("var", ["CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"])
def test_visible_devices_disagreeing_with_torch_warns(var):
    order = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert has(warnings(fp(env={var: "0,1,2,3", **order})), f"{var}=0,1,2,3 asks for 4 GPU(s) but torch sees 2")
    assert warnings(fp(env={var: "0,1", **order})) == []
    assert warnings(fp(env={var: "GPU-aaa,GPU-bbb", **order})) == []  # UUIDs count too


def test_nvidia_visible_devices_all_is_checked_against_the_physical_count():
    assert has(warnings(fp(env={"NVIDIA_VISIBLE_DEVICES": "all"}), physical_gpus=4), "asks for 4 GPU(s)")
    assert warnings(fp(env={"NVIDIA_VISIBLE_DEVICES": "all"}), physical_gpus=2) == []
    assert warnings(fp(env={"NVIDIA_VISIBLE_DEVICES": "all"})) == []  # unknown physical count: nothing to say


def test_the_images_nvidia_default_on_a_cpu_machine_says_nothing_about_visibility():
    notes = warnings(fp(gpus=[], p2p=[], driver_cuda=None, env={"NVIDIA_VISIBLE_DEVICES": "all"}), physical_gpus=0)
    assert not has(notes, "NVIDIA_VISIBLE_DEVICES")
    assert has(notes, "no CUDA device is visible")


def test_gpus_hidden_from_the_container_warn_with_the_gpus_flag():
    notes = warnings(fp(gpus=[], p2p=[], driver_cuda="13.0", env={"NVIDIA_VISIBLE_DEVICES": "0,1"}))
    assert has(notes, "--gpus all")


def test_cuda_visible_devices_takes_precedence_over_nvidia():
    notes = warnings(fp(env={"NVIDIA_VISIBLE_DEVICES": "all", "CUDA_VISIBLE_DEVICES": "0,1",
                             "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}), physical_gpus=8)
    assert notes == []


def test_an_old_driver_warns_and_a_cpu_says_nothing():
    assert has(warnings(fp(driver_cuda="12.4")), "driver supports CUDA 12.4 but torch 2.14.1 was built for CUDA 13.0")
    assert not has(warnings(fp(driver_cuda="13.1")), "driver")
    assert not has(warnings(fp(driver_cuda="13.0")), "driver")
    cpu = warnings(fp(gpus=[], p2p=[], driver_cuda=None, cuda=None))
    assert not has(cpu, "driver")


def test_p2p_matrix_from_an_injected_probe():
    matrix = p2p_matrix(3, can_access=lambda i, j: {i, j} != {0, 2})
    assert matrix == [[True, True, False], [True, True, True], [False, True, True]]
    assert p2p_matrix(1, can_access=lambda i, j: False) == []
    assert p2p_matrix(0) == []
    table = format_p2p(matrix)
    assert table[0].split() == ["GPU0", "GPU1", "GPU2"] and table[1].split() == ["GPU0", "-", "yes", "no"]


def test_missing_p2p_warns():
    assert has(warnings(fp(p2p=[[True, False], [False, True]])), "NCCL_P2P_DISABLE=1")
    assert not has(warnings(fp()), "p2p")


def test_root_warns():
    assert has(warnings(fp(uid=0)), "running as root")
    assert not has(warnings(fp(uid=1000)), "root")
    assert not has(warnings(fp(uid=None)), "root")


def test_the_real_fingerprint_carries_the_new_fields():
    from labkit.lab.devices import fingerprint

    real = fingerprint(with_torch=False)
    assert real.uid is not None and "shm_bytes" in real.as_dict() and "p2p" in real.as_dict()
