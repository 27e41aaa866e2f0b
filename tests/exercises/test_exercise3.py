"""exercise3: classic mistakes fail with a message that names them."""

from __future__ import annotations

import pytest

from conftest import result, statuses

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
    "run_returns_output": (
        "def run_on_gpus(argv, visible):\n"
        "    return subprocess.check_output(argv, env={**os.environ, **cuda_env(visible)}, text=True)\n",
        "run_sees_mask", "should return subprocess.run's CompletedProcess, got str"),
    "run_output_bytes": (
        "def run_on_gpus(argv, visible):\n"
        "    return subprocess.run(argv, env={**os.environ, **cuda_env(visible)}, capture_output=True)\n",
        "run_sees_mask", "(capture_output=True, text=True), got bytes"),
    "run_env_replaced": (
        "def run_on_gpus(argv, visible):\n"
        "    return subprocess.run(argv, env=cuda_env(visible), capture_output=True, text=True)\n",
        "run_sees_mask", "the child lost the rest of the environment"),
    "restrict_always_raises": (
        "def restrict_gpus(visible):\n    raise RuntimeError('too late')\n",
        "restrict_too_late", "although CUDA had not started"),
}

# Forgeries: answers that try to pass without doing the work get no points for it.
FORGED_OUTPUT = """
def run_on_gpus(argv, visible):  # prints what the script would print, without running it
    lines = [",".join(map(str, visible)), "PCI_BUS_ID", os.environ.get("LABKIT_MARK")]
    return subprocess.CompletedProcess(argv, 0, stdout="\\n".join(lines) + "\\n", stderr="")
"""


@pytest.mark.parametrize("mistake", sorted(WRONG))
def test_wrong_answer_fails_its_check_and_says_why(grade_source, solution_source, mistake):
    patch, name, phrase = WRONG[mistake]
    report = grade_source("exercise3", solution_source("exercise3") + "\n\n" + patch)
    failed = result(report, name)
    assert failed.status == "failed", (failed.status, failed.message)
    assert phrase in failed.message, failed.message
    if mistake == "run_mutates_environ":  # the child still sees the mask: only the caller's side is wrong
        assert result(report, "run_sees_mask").status == "passed"


def test_output_made_up_without_running_the_script_fails(grade_source, solution_source):
    report = grade_source("exercise3", solution_source("exercise3") + FORGED_OUTPUT)
    failed = result(report, "run_sees_mask")
    assert failed.status == "failed", (failed.status, failed.message)
    assert "the child saw" in failed.message, failed.message


def test_restrict_gpus_that_always_raises_scores_nothing(grade_source, solution_source):
    patch = "\n\ndef restrict_gpus(visible):\n    raise RuntimeError('too late')\n"
    report = grade_source("exercise3", solution_source("exercise3") + patch)
    got = statuses(report)
    assert got["restrict_too_late"] == "failed" and got["restrict_sets"] in ("failed", "error"), got
