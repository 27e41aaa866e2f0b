"""Slurm's commands as labkit reads them, with fake sbatch/sinfo/scontrol/sacct on PATH: no cluster needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from labkit.classroom import slurm_cli as sc
from labkit.cli.main import cli


def fake(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path, monkeypatch) -> Path:
    """A PATH holding only the fakes a test writes: no real Slurm command is found."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def test_array_task_ids_as_scontrol_prints_them():
    assert sc.task_ids("3") == [3]
    assert sc.task_ids("1-4%2") == [1, 2, 3, 4]
    assert sc.task_ids("0,2-3") == [0, 2, 3]
    assert sc.task_ids("") == [] and sc.task_ids("(null)") == []


def test_states_from_scontrol_cover_pending_ranges_and_ended_tasks(bin_dir):
    fake(bin_dir, "scontrol", 'echo "JobId=12 ArrayJobId=12 ArrayTaskId=2-3%1 JobState=PENDING Reason=Resources"\n'
                              'echo "JobId=13 ArrayJobId=12 ArrayTaskId=0 JobState=TIMEOUT Reason=TimeLimit"\n'
                              'echo "JobId=14 ArrayJobId=12 ArrayTaskId=1 JobState=RUNNING Reason=None"')
    assert sc.states("12") == {2: "PENDING", 3: "PENDING", 0: "TIMEOUT", 1: "RUNNING"}
    assert [sc.kind(s) for s in ("PENDING", "RUNNING", "COMPLETED", "TIMEOUT", "NODE_FAIL")] == \
        ["pending", "running", "done", "failed", "failed"]


def test_a_job_the_controller_forgot_is_read_from_sacct(bin_dir):
    fake(bin_dir, "scontrol", 'echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1')
    fake(bin_dir, "sacct", 'printf "12_0|COMPLETED\\n12_1|CANCELLED by 0\\n12_[2-3]|PENDING\\n"')
    assert sc.states("12") == {0: "COMPLETED", 1: "CANCELLED", 2: "PENDING", 3: "PENDING"}


def test_with_neither_answering_no_state_is_made_up(bin_dir):
    fake(bin_dir, "scontrol", "exit 1")
    assert sc.states("12") == {}  # sacct is missing too: the executor waits, it does not guess


def test_submit_returns_the_job_id_and_names_a_refusal(bin_dir):
    fake(bin_dir, "sbatch", 'echo "4242;cluster"')
    assert sc.submit(["--array=0-1"], "job.sh") == "4242"
    fake(bin_dir, "sbatch", 'echo "sbatch: error: invalid partition specified: nope" >&2; exit 1')
    with pytest.raises(sc.SlurmError, match="sbatch --parsable failed: sbatch: error: invalid partition"):
        sc.submit(["--partition=nope"], "job.sh")


def test_doctor_names_sbatch_and_each_gpu_partition(bin_dir):
    fake(bin_dir, "sbatch", "exit 0")
    fake(bin_dir, "sinfo", 'printf "cpu*|up|4|1-00:00:00|(null)\\ngpu|up|2|4:00:00|gpu:a100:4(S:0-1)\\n'
                           'gpu|up|1|4:00:00|gpu:a100:8\\nold|down|1|infinite|gpu:2\\n"')
    rows = sc.doctor_lines()
    assert rows[0] == ("slurm", True, f"{bin_dir / 'sbatch'}: 3 partition(s) reachable")
    assert rows[1] == ("slurm partition gpu", True, "8 GPU(s) per node, 3 node(s), time limit 4:00:00, up")
    assert rows[2] == ("slurm partition old", False, "2 GPU(s) per node, 1 node(s), time limit infinite, down")


def test_doctor_without_gpus_or_without_slurm(bin_dir):
    fake(bin_dir, "sbatch", "exit 0")
    fake(bin_dir, "sinfo", 'echo "debug*|up|1|infinite|(null)"')
    assert sc.doctor_lines()[1] == ("slurm GPUs", False, "no partition offers GPUs (gres gpu): GPU checks will be "
                                                         "skipped")
    fake(bin_dir, "sinfo", 'echo "sinfo: error: Unable to contact slurm controller" >&2; exit 1')
    assert not sc.doctor_lines()[0][1] and "does not answer" in sc.doctor_lines()[0][2]
    (bin_dir / "sbatch").unlink()
    assert sc.doctor_lines() == [("slurm", False, "sbatch not found: --executor slurm needs a Slurm login node "
                                                  "(docs/slurm.md)")]


def test_without_sbatch_the_grader_says_so_in_one_line(tmp_path, monkeypatch):
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "exercise1.py").write_text("def pick_device(prefer='cuda'):\n    return None\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    result = CliRunner().invoke(cli, ["grade", str(tmp_path / "subs"), "-e", "exercise1", "--out",
                                      str(tmp_path / "out"), "--executor", "slurm"])
    assert result.exit_code == 2, result.output
    assert "sbatch not found: --executor slurm runs on a Slurm login node" in result.output
    assert "Traceback" not in result.output


def test_slurm_options_without_the_slurm_executor_are_refused(tmp_path):
    (tmp_path / "subs" / "ann").mkdir(parents=True)
    (tmp_path / "subs" / "ann" / "exercise1.py").write_text("x = 1\n")
    result = CliRunner().invoke(cli, ["grade", str(tmp_path / "subs"), "-e", "exercise1", "--out",
                                      str(tmp_path / "out"), "--partition", "gpu"])
    assert result.exit_code == 2 and "--partition is for --executor slurm" in result.output
    assert not (tmp_path / "out").exists()  # refused before anything was graded
