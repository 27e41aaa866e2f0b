"""labkit doctor's warnings, each both ways, on a CPU with hand-made fingerprints (no GPU, no container needed)."""

from __future__ import annotations

import pytest
from fake_gpu import GTX1080, H100, fake_cuda, fake_smi, on_path

from labkit.lab.devices import Fingerprint, fingerprint, format_p2p, p2p_matrix, shm_size, warnings

GIB = 1 << 30
CU130 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


def fp(**kw) -> Fingerprint:
    """A healthy 2-GPU fingerprint: no warnings unless a test breaks something."""
    gpus = [{"index": i, "name": "A", "memory_gib": 80.0, "capability": "9.0"} for i in range(2)]
    smi = [{"index": i, "name": "A", "capability": "9.0", "uuid": f"GPU-{i}"} for i in range(2)]
    base = dict(labkit="0", python="3.11", platform="linux", cpu_count=8, torch="2.14.1", cuda="13.0",
                gpus=gpus, env={}, driver_cuda="13.0", p2p=[[True, True], [True, True]], shm_bytes=2 * GIB, uid=1000,
                driver="580.65.06", driver_gpus=smi, arch_list=CU130, container=None)
    return Fingerprint(**{**base, **kw})


def no_driver(**kw) -> Fingerprint:
    """A machine whose driver labkit cannot see (no nvidia-smi): only torch's view is left."""
    return fp(**{"driver": None, "driver_gpus": [], **kw})


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
    assert has(warnings(no_driver(env={"NVIDIA_VISIBLE_DEVICES": "all"}), physical_gpus=4), "asks for 4 GPU(s)")
    assert warnings(no_driver(env={"NVIDIA_VISIBLE_DEVICES": "all"}), physical_gpus=2) == []
    assert warnings(no_driver(env={"NVIDIA_VISIBLE_DEVICES": "all"})) == []  # unknown physical count: nothing to say


def test_the_physical_count_comes_from_the_driver_when_not_given():
    four = [{"index": i, "name": "A", "capability": "9.0", "uuid": f"GPU-{i}"} for i in range(4)]
    notes = warnings(fp(driver_gpus=four, env={"NVIDIA_VISIBLE_DEVICES": "all", "CUDA_VISIBLE_DEVICES": "0,1,2,3",
                                                "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}))
    assert has(notes, "CUDA_VISIBLE_DEVICES=0,1,2,3 asks for 4 GPU(s) but torch sees 2")


def test_the_images_nvidia_default_on_a_cpu_machine_says_nothing_about_visibility():
    notes = warnings(no_driver(gpus=[], p2p=[], driver_cuda=None, env={"NVIDIA_VISIBLE_DEVICES": "all"}),
                     physical_gpus=0)
    assert not has(notes, "NVIDIA_VISIBLE_DEVICES")
    assert has(notes, "no CUDA device is visible")


def test_gpus_hidden_from_the_container_warn_with_the_gpus_flag():
    notes = warnings(no_driver(gpus=[], p2p=[], driver_cuda="13.0", env={"NVIDIA_VISIBLE_DEVICES": "0,1"}))
    assert has(notes, "--gpus all")


def test_a_container_started_without_gpus_says_how_to_pass_them():
    notes = warnings(no_driver(gpus=[], p2p=[], driver_cuda=None, container="docker",
                               env={"NVIDIA_VISIBLE_DEVICES": "all"}))
    assert has(notes, "the host's GPUs, if it has any, cannot be seen from here") and has(notes, "--gpus all")
    assert not has(notes, "no CUDA device is visible")  # the cause replaces the bare symptom


def test_cuda_visible_devices_takes_precedence_over_nvidia():
    notes = warnings(fp(env={"NVIDIA_VISIBLE_DEVICES": "all", "CUDA_VISIBLE_DEVICES": "0,1",
                             "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}), physical_gpus=8)
    assert notes == []


def test_an_old_driver_warns_whether_or_not_torch_sees_a_gpu():
    notes = warnings(fp(gpus=[], p2p=[], driver="550.54.15", driver_cuda=None))  # torch sees none: the usual case
    assert has(notes, "driver 550.54.15 is too old for torch 2.14.1") and has(notes, "whl/cu126")
    assert not has(notes, "no CUDA device is visible") and not has(notes, "asks for")  # the cause, not the symptom
    assert not has(warnings(fp(driver="580.65.06")), "driver")
    assert not has(warnings(fp(driver="590.1")), "driver")


def test_without_nvidia_smi_the_cuda_version_the_driver_supports_is_compared_by_major():
    assert has(warnings(no_driver(driver_cuda="12.4")), "driver supports CUDA 12.4 but torch 2.14.1 was built for")
    assert not has(warnings(no_driver(driver_cuda="13.1")), "driver")
    assert not has(warnings(no_driver(driver_cuda="12.4", cuda="12.6")), "driver")  # minor version compatibility
    cpu = warnings(no_driver(gpus=[], p2p=[], driver_cuda=None, cuda=None))
    assert not has(cpu, "driver")


def test_a_gpu_without_kernels_warns_with_the_build_for_it():
    old = [{"index": 0, "name": GTX1080[0], "capability": "6.1", "uuid": "GPU-0"}]
    notes = warnings(fp(driver_gpus=old, gpus=[{**old[0], "memory_gib": 8.0}], p2p=[]))
    assert has(notes, "no kernels for NVIDIA GeForce GTX 1080 (compute capability 6.1)") and has(notes, "cu126")


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
    real = fingerprint(with_torch=False)
    assert real.uid is not None and "shm_bytes" in real.as_dict() and "p2p" in real.as_dict()
    assert {"driver", "driver_gpus", "arch_list", "container"} <= set(real.as_dict())


def test_fingerprint_reads_an_old_driver_that_torch_cannot_use(tmp_path, monkeypatch):
    fake_smi(tmp_path, "535.129.03", [H100, H100])
    on_path(monkeypatch, tmp_path)
    fake_cuda(monkeypatch, [])  # what torch says when the driver is too old: no CUDA at all
    got = fingerprint()
    assert got.driver == "535.129.03" and [g["uuid"] for g in got.driver_gpus] == ["GPU-00000000-aaaa",
                                                                               "GPU-00000001-aaaa"]
    assert got.gpus == [] and got.arch_list == CU130
    assert has(warnings(got), "driver 535.129.03 is too old")


def test_fingerprint_reads_capabilities_from_torch(tmp_path, monkeypatch):
    fake_smi(tmp_path, "580.65.06", [GTX1080])
    on_path(monkeypatch, tmp_path)
    fake_cuda(monkeypatch, [GTX1080])
    got = fingerprint()
    assert got.gpus[0]["capability"] == "6.1" and got.driver_gpus[0]["capability"] == "6.1"
    assert got.cudnn is None and "SM < 7.5" in got.cudnn_error  # it raises below sm_75; the fingerprint must not
    assert has(warnings(got), "no kernels for NVIDIA GeForce GTX 1080")


def test_fingerprint_without_nvidia_smi(monkeypatch):
    on_path(monkeypatch, None)
    fake_cuda(monkeypatch, [])
    got = fingerprint()
    assert got.driver is None and got.driver_gpus == [] and got.driver_error is None
    assert has(warnings(got), "no CUDA device is visible")
