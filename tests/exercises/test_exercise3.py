"""exercise3: classic mistakes fail with a message that names them."""

from __future__ import annotations

import pytest

from conftest import result

WRONG = {
    "restrict_without_guard": (
        "def restrict_gpus(visible):\n    os.environ.update(cuda_env(visible))\n",
        "restrict_too_late", "set after CUDA initialised"),
    "physical_ignores_mask": (
        "def physical_index(logical, visible):\n    return logical\n",
        "physical_index_maps", "returned the logical index unchanged"),
    "empty_string_for_none": (
        "def cuda_env(visible, order='PCI_BUS_ID'):\n"
        "    return {'CUDA_DEVICE_ORDER': order, 'CUDA_VISIBLE_DEVICES': ','.join(map(str, visible or []))}\n",
        "cuda_env_dict", "an empty mask hides every GPU"),
    "no_device_order": (
        "def cuda_env(visible, order='PCI_BUS_ID'):\n"
        "    return {} if visible is None else {'CUDA_VISIBLE_DEVICES': ','.join(map(str, visible))}\n",
        "cuda_env_dict", "CUDA_DEVICE_ORDER is missing"),
    "run_mutates_environ": (
        "def run_on_gpus(argv, visible):\n    os.environ.update(cuda_env(visible))\n"
        "    return subprocess.run(argv, capture_output=True, text=True)\n",
        "run_keeps_caller_env", "changed the caller's os.environ"),
}


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    patch, name, phrase = WRONG[mistake]
    report = grade_source("exercise3", solution_source("exercise3") + "\n\n" + patch)
    failed = result(report, name)
    assert failed.status == "failed", (failed.status, failed.message)
    assert phrase in failed.message, failed.message
    if mistake == "run_mutates_environ":  # the child still sees the mask: only the caller's side is wrong
        assert result(report, "run_sees_mask").status == "passed"
