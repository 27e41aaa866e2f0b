"""The driver as nvidia-smi reports it and the torch build that fits: fake nvidia-smi scripts, no GPU needed."""

from __future__ import annotations

import pytest
import torch
from fake_gpu import GTX1080, H100, K80, V100, fake_smi, on_path

from labkit.lab import nvidia
from labkit.lab.nvidia import BUILDS, build_for, gpu_notes, has_kernels, in_container, query_driver, required_driver

CU130 = "sm_75 sm_80 sm_86 sm_90 sm_100 sm_120".split()


def test_the_new_query_lists_driver_names_capabilities_and_uuids(tmp_path):
    driver = query_driver(str(fake_smi(tmp_path, "580.65.06", [H100, H100])))
    assert driver.version == "580.65.06" and driver.found and driver.error is None
    assert driver.gpus == [
        {"index": 0, "name": H100[0], "uuid": "GPU-00000000-aaaa", "capability": "9.0"},
        {"index": 1, "name": H100[0], "uuid": "GPU-00000001-aaaa", "capability": "9.0"},
    ]


def test_an_old_nvidia_smi_without_compute_cap_still_gives_the_driver(tmp_path):
    driver = query_driver(str(fake_smi(tmp_path, "470.82.01", [V100], mode="old")))
    assert driver.version == "470.82.01" and driver.error is None
    assert driver.gpus == [{"index": 0, "name": V100[0], "uuid": "GPU-00000000-aaaa", "capability": None}]


def test_nvidia_smi_that_cannot_reach_the_driver_says_why(tmp_path):
    driver = query_driver(str(fake_smi(tmp_path, None, [], mode="broken")))
    assert driver.found and driver.version is None and driver.gpus == []
    assert driver.error.startswith("NVIDIA-SMI has failed because it could not communicate")


def test_no_nvidia_smi_at_all_is_no_driver(monkeypatch):
    on_path(monkeypatch, None)
    assert query_driver() == nvidia.Driver()
    assert nvidia.cached_driver() == nvidia.Driver()


def test_the_cached_query_runs_nvidia_smi_once(tmp_path, monkeypatch):
    fake_smi(tmp_path, "580.65.06", [H100])
    on_path(monkeypatch, tmp_path)
    assert nvidia.cached_driver().version == "580.65.06"
    (tmp_path / "nvidia-smi").unlink()  # the driver does not change under a running process
    assert nvidia.cached_driver().version == "580.65.06"


@pytest.mark.parametrize("cuda, need", [("13.0", (580,)), ("13.2", (580,)), ("12.6", (525, 60, 13)),
                                        ("12.1", (525, 60, 13)), ("11.8", (450, 80, 2)), (None, None), ("9.2", None)])
def test_the_driver_each_cuda_version_needs(cuda, need):
    assert required_driver(cuda) == need


@pytest.mark.parametrize("cap, arch, ok", [
    ((9, 0), CU130, True), ((8, 9), CU130, True),  # sm_86 SASS runs on an L4 / RTX 4090 (8.9)
    ((7, 0), CU130, False), ((6, 1), CU130, False), ((3, 7), CU130, False),  # V100, GTX 1080, K80
    ((6, 1), ["sm_60", "sm_70"], True),  # the cu126 build's sm_60 runs on a GTX 1080
    ((7, 0), ["sm_75", "compute_70"], True),  # PTX is compiled by the driver for any newer GPU
    ((9, 0), ["sm_100", "sm_120"], False),  # SASS never runs on an older GPU
    ((9, 0), ["sm_90a"], True), ((7, 0), [], True),  # suffixes; an unknown list is not a verdict
])
def test_capability_against_the_arch_list(cap, arch, ok):
    assert has_kernels(cap, arch) is ok


def test_our_build_table_matches_the_one_torch_ships():
    shipped = getattr(torch.cuda, "PYTORCH_RELEASES_CODE_CC", None)
    if shipped is None:
        pytest.skip("this torch does not ship its release table")
    for build in BUILDS:
        assert set(build.sm) == shipped[build.cuda]["x86_64"], build
    assert set(BUILDS[0].arch_list) == set(torch.cuda.get_arch_list())  # PyPI's build is the newest row


@pytest.mark.parametrize("caps, driver, tag", [
    ([(9, 0)], (580, 65, 6), "cu130"), ([(9, 0)], (550, 54, 15), "cu126"), ([(9, 0)], (470, 82, 1), None),
    ([(7, 0)], None, "cu126"), ([(6, 1), (9, 0)], None, "cu126"), ([(3, 7)], None, None),
    ([(12, 0)], (550, 0), None),  # Blackwell needs the CUDA 13 build, which needs driver 580
])
def test_the_newest_build_for_these_gpus_and_this_driver(caps, driver, tag):
    build = build_for(caps, driver)
    assert (build.tag if build else None) == tag


def test_container_detection(tmp_path):
    assert in_container(str(tmp_path), {}) is None
    assert in_container(str(tmp_path), {"APPTAINER_CONTAINER": "/x.sif"}) == "apptainer"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".containerenv").touch()
    assert in_container(str(tmp_path), {}) == "podman"
    (tmp_path / ".dockerenv").touch()
    assert in_container(str(tmp_path), {}) == "docker"


def facts(**kw) -> dict:
    """A healthy machine: driver 580, two H100s that torch sees, PyPI's cu130 torch, not in a container."""
    gpus = [{"index": i, "name": H100[0], "capability": "9.0", "uuid": f"GPU-{i}"} for i in range(2)]
    base = dict(torch="2.14.1+cu130", torchvision="0.29.1", cuda="13.0", arch_list=CU130, gpus=gpus,
                driver="580.65.06", driver_gpus=gpus, driver_error=None, container=None, env={})
    return {**base, **kw}


def smi_gpus(*models) -> list[dict]:
    return [{"index": i, "name": name, "capability": cap, "uuid": f"GPU-{i}"} for i, (name, cap) in enumerate(models)]


def test_a_healthy_machine_has_no_gpu_notes():
    assert gpu_notes(facts()) == []
    assert gpu_notes(facts(torch=None)) == []
    assert gpu_notes(facts(gpus=[], driver=None, driver_gpus=[])) == []  # a laptop without NVIDIA: nothing wrong


def test_an_old_driver_names_the_version_it_needs_and_the_build_that_runs_on_it():
    (note,) = gpu_notes(facts(gpus=[], driver="550.54.15"))
    assert "driver 550.54.15 is too old for torch 2.14.1+cu130" in note and "needs driver >= 580" in note
    assert "torch cannot use the 2 GPU(s)" in note and "upgrade the driver to >= 580" in note
    assert "pip install --force-reinstall torch==2.14.1 torchvision==0.29.1 " \
           "--index-url https://download.pytorch.org/whl/cu126" in note


def test_an_old_driver_in_the_image_names_the_build_argument():
    (note,) = gpu_notes(facts(gpus=[], driver="535.129.03", container="docker"))
    assert "driver 535.129.03 is too old" in note
    assert "--build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126" in note and "pip" not in note


def test_a_driver_older_than_every_build_only_says_upgrade():
    (note,) = gpu_notes(facts(gpus=[], driver="470.82.01"))
    assert "upgrade the driver to >= 580" in note and "index-url" not in note


def test_a_v100_gets_the_no_kernel_image_note_and_the_cu126_build():
    v100 = smi_gpus(V100, V100)
    (note,) = gpu_notes(facts(gpus=v100, driver_gpus=v100))
    assert f"no kernels for {V100[0]} (compute capability 7.0)" in note  # once, not once per GPU
    assert "no kernel image is available" in note and "sm_75 sm_80" in note
    assert "CUDA 12.6 build" in note and "whl/cu126" in note and "upgrade" not in note


def test_a_gtx_1080_on_an_old_driver_needs_both_an_upgrade_and_the_cu126_build():
    (note,) = gpu_notes(facts(gpus=[], driver="470.82.01", driver_gpus=smi_gpus(GTX1080)))
    assert "no kernels for NVIDIA GeForce GTX 1080" in note
    assert "upgrade the NVIDIA driver to >= 525.60.13 and use torch's CUDA 12.6 build" in note


def test_a_gpu_no_build_supports_says_so():
    (note,) = gpu_notes(facts(gpus=[], driver="470.82.01", driver_gpus=smi_gpus(K80)))
    assert "no CUDA build of torch 2.14.1 has kernels for it" in note


def test_the_capability_torch_reports_is_used_when_nvidia_smi_has_none():
    v100 = smi_gpus(V100)
    (note,) = gpu_notes(facts(gpus=v100, driver=None, driver_gpus=[]))  # no nvidia-smi, torch sees a V100
    assert "no kernels for Tesla V100" in note


def test_a_cpu_only_torch_beside_gpus_says_to_install_the_cuda_build():
    (note,) = gpu_notes(facts(cuda=None, arch_list=[], gpus=[]))
    assert "CPU-only build but the driver sees 2 GPU(s)" in note


def test_a_driver_that_cannot_be_reached_says_so():
    (note,) = gpu_notes(facts(gpus=[], driver=None, driver_gpus=[], driver_error="NVIDIA-SMI has failed"))
    assert "cannot talk to the NVIDIA driver (NVIDIA-SMI has failed)" in note


@pytest.mark.parametrize("runtime, flag", [("docker", "--gpus all"), ("podman", "--device nvidia.com/gpu=all"),
                                           ("apptainer", "--nv"), ("container", "--gpus all")])
def test_a_container_without_gpus_says_the_host_gpus_cannot_be_seen_and_how_to_pass_them(runtime, flag):
    (note,) = gpu_notes(facts(gpus=[], driver=None, driver_gpus=[], container=runtime))
    assert "the host's GPUs, if it has any, cannot be seen from here" in note and flag in note


def test_fewer_gpus_for_torch_than_for_the_driver_points_at_cudas_own_error():
    (note,) = gpu_notes(facts(gpus=[]))
    assert "the driver sees 2 GPU(s) but torch sees 0" in note and "torch.cuda.init()" in note
    assert gpu_notes(facts(gpus=smi_gpus(H100), env={"CUDA_VISIBLE_DEVICES": "0"})) == []  # asked for


def test_a_cudnn_that_refuses_the_gpus_is_named_when_the_kernels_are_there():
    error = "cuDNN version 92400 is not compatible with devices with SM < 7.5"
    (note,) = gpu_notes(facts(arch_list=["sm_60", "sm_70"], gpus=smi_gpus(V100), driver_gpus=smi_gpus(V100),
                              cudnn_error=error))
    assert error in note and "torch.backends.cudnn.enabled = False" in note
