"""What one Slurm array asks for and runs: resources from the exercise, sbatch options, apptainer, the script."""

from __future__ import annotations

import subprocess
import sys

from labkit.classroom.slurm_job import Resources, SlurmOptions, resources, sbatch_args, script, task_command
from labkit.course.course import resolve
from labkit.grading.plan import plan


def test_a_gpu_exercise_asks_for_its_gpus_and_time_from_its_limits():
    ex = resolve("exercise2")
    res = resources(ex, None, 4, SlurmOptions())
    assert res.gpus == 2 and res.cpus == 1  # wrap_splits needs two GPUs: Slurm leases them across the cluster
    # 4 students x (the import's limit + each check's call limit) x 2, plus the task's start, in minutes
    p = plan(ex, gpus=0)
    per_student = p.limits.import_seconds + sum(c.timeout or p.limits.call_seconds for c in p.checks)
    assert per_student >= 20 + 30 * 7 and res.minutes == -(-(120 + 4 * per_student * 2) // 60)
    assert resources(ex, None, 1, SlurmOptions(minutes=7, cpus=3)) == Resources(2, 3, 7)


def test_a_check_with_its_own_timeout_lengthens_the_time_asked_for():
    short = resources(resolve("exercise3"), None, 1, SlurmOptions()).minutes
    long = resources(resolve("exercise4"), None, 1, SlurmOptions()).minutes  # a 600 s check among them
    assert long > short + 600 * 2 // 60


def test_a_cpu_exercise_asks_for_no_gres(tmp_path):
    res = Resources(0, 1, 5)
    args = sbatch_args(SlurmOptions(), res, 3, "exercise99", tmp_path)
    assert not any(a.startswith("--gres") for a in args)
    assert args[:6] == ["--job-name=labkit-exercise99", "--array=0-2", "--ntasks=1", "--cpus-per-task=1",
                        "--time=5", f"--output={tmp_path}/%A_%a.out"]
    assert "--no-requeue" in args  # labkit retries a stopped task itself, once: Slurm must not rerun it too


def test_partition_account_qos_and_throttle_reach_sbatch(tmp_path):
    opts = SlurmOptions(partition="gpu", account="cs499", qos="class", max_parallel=6)
    args = sbatch_args(opts, Resources(2, 1, 30), 10, "exercise2", tmp_path)
    assert "--array=0-9%6" in args and "--gres=gpu:2" in args
    assert args[-3:] == ["--partition=gpu", "--account=cs499", "--qos=class"]


def test_the_task_runs_this_python_or_the_image_under_apptainer(tmp_path):
    spec = tmp_path / "jobs" / "a.json"
    assert task_command(SlurmOptions(), spec, 2, [tmp_path]) == [
        sys.executable, "-m", "labkit.classroom.slurm_task", str(spec), "$SLURM_ARRAY_TASK_ID"]
    sif = tmp_path / "labkit-student.sif"
    gpu = task_command(SlurmOptions(container=sif), spec, 2, [tmp_path, tmp_path / "checks", tmp_path])
    assert gpu == ["apptainer", "exec", "--cleanenv", "--nv", "--bind", str(tmp_path), "--bind",
                   str(tmp_path / "checks"), str(sif), "python", "-m", "labkit.classroom.slurm_task", str(spec),
                   "$SLURM_ARRAY_TASK_ID"]
    cpu = task_command(SlurmOptions(container=sif), spec, 0, [tmp_path])
    assert "--nv" not in cpu  # no GPU asked for: no driver libraries bound in


def test_the_script_quotes_every_word_but_the_task_index(tmp_path):
    odd = "a folder with spaces; rm -rf $HOME"
    path = tmp_path / "job.sh"
    path.write_text(script(["printf", "%s\\n", odd, "$SLURM_ARRAY_TASK_ID"]))
    out = subprocess.run(["bash", str(path)], env={"SLURM_ARRAY_TASK_ID": "5", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [odd, "5"]
    assert path.read_text().startswith("#!/bin/bash\n")
