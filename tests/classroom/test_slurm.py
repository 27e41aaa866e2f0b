"""`labkit grade --executor slurm` on a real one-node Slurm cluster started here (tests/slurm_cluster.py).

The node has CPUs=2 and two fake GPUs (gres files). Proven: a class of exercise2 graded on Slurm gets the
statuses and scores the local executor gives; its tasks ask for gres gpu:2 and queue behind each other while a
CPU is free; a grader killed, then interrupted, then rerun grades every student once and loses none; a task
cancelled by scancel is retried; a task past its --time becomes the student's error. About two minutes in all:
the --time case (Slurm's one-minute floor) runs in the background meanwhile.
"""

from __future__ import annotations

import csv
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from slurm_cluster import Cluster, missing, start

from labkit.classroom.batch import class_salt, grading_key
from labkit.classroom.intake import Entry
from labkit.classroom.slurm import SlurmExecutor
from labkit.classroom.slurm_cli import doctor_lines
from labkit.classroom.slurm_job import SlurmOptions
from labkit.cli.main import cli
from labkit.course.catalog import load_exercise

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(bool(missing()), reason=missing() or "runs")

CHECKS = '''
from labkit.checks import check, expect

@check(points=2, title="add works")
def adds(sub):
    expect(sub.call("add", 2, 3) == 5, "add(2, 3) should be 5")

@check(points=1, title="nap returns its argument")
def naps(sub):
    expect(sub.call("nap", 7) == 7, "nap(7) should return 7")
'''


def toy(root: Path, name: str, call_seconds: int = 10) -> Path:
    """A tiny CPU exercise whose `nap` check lets a submission take as long as a test needs."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "exercise.toml").write_text(f'id = "{name}"\ntitle = "Toy"\norder = 1\npoints = 3\n'
                                          f'[limits]\ncall_seconds = {call_seconds}\nimport_seconds = 10\n')
    (folder / "README.md").write_text("Add two numbers.\n")
    (folder / "starter.py").write_text(f'def add(a, b):\n    raise NotImplementedError("{name}: add")\n')
    (folder / "checks.py").write_text(CHECKS)
    return folder


def student(nap: float = 0, wrong: bool = False) -> str:
    add = "a - b" if wrong else "a + b"
    return f"import time\n\ndef add(a, b):\n    return {add}\n\ndef nap(x):\n    time.sleep({nap})\n    return x\n"


def entries(folder: Path, sources: dict[str, str], filename: str) -> list[Entry]:
    found = []
    for name, source in sources.items():
        (folder / name).mkdir(parents=True)
        (folder / name / filename).write_text(source)
        found.append(Entry(name, folder / name / filename, stem=name))
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The cluster, up for the module; its daemons stopped by pid at the end."""
    c = start(tmp_path_factory.mktemp("slurm"))
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(c.conf)  # what labkit's sbatch, squeue and scontrol calls read
    yield c
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old
    procs = list(c.procs.values())
    c.stop()
    assert all(p.poll() is not None for p in procs) and not c.steps()


class Background:
    """A grading run in a thread: its outcomes, or the error it raised."""

    def __init__(self, fn) -> None:
        self.outcomes: list = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn) -> None:
        try:
            fn(self.outcomes.append)
        except BaseException as exc:  # noqa: BLE001  (handed to the test that joins)
            self.error = exc

    def join(self, seconds: float) -> list:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "the run did not end"
        if self.error:
            raise self.error
        return self.outcomes


def run_executor(exercise_folder: Path, subs: list[Entry], out: Path, options: SlurmOptions):
    """SlurmExecutor.run as run_batch calls it; returns (executor, fn taking `finish`)."""
    ex = load_exercise(exercise_folder)
    salt = class_salt(out)
    executor = SlurmExecutor(options)
    return executor, lambda finish: executor.run(subs, ex, out, checks_dir=None, sandbox="auto",
                                                 key=grading_key(ex, None, salt), salt=salt, finish=finish)


@pytest.fixture(scope="module")
def overtime(cluster, tmp_path_factory):
    """A student whose grading outlasts --time (1 min, Slurm's floor) while labkit's own limit is longer: started
    first, in the background, because Slurm ends such a task only 60 to 90 s after it starts."""
    tmp = tmp_path_factory.mktemp("overtime")
    folder = toy(tmp / "ex", "toyslow", call_seconds=600)
    subs = entries(tmp / "subs", {"sleeper": student(nap=500)}, "toyslow.py")
    options = SlurmOptions(chunk=1, minutes=1, retries=0, poll=1, settle=0.5)
    executor, fn = run_executor(folder, subs, tmp / "out", options)
    return executor, Background(fn)


def test_doctor_shows_sbatch_and_the_gpu_partition(cluster, overtime):
    rows = doctor_lines()
    assert rows[0][0] == "slurm" and rows[0][1] and "sbatch" in rows[0][2]
    gpu = [r for r in rows if r[0] == "slurm partition gpu"]
    assert gpu and gpu[0][1] and gpu[0][2].startswith("2 GPU(s) per node, 1 node(s)"), rows


def wait_for(predicate, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"no {what} after {seconds} s")


def test_a_task_cancelled_by_scancel_is_retried_once(cluster, tmp_path):
    folder = toy(tmp_path / "ex", "toyretry")
    subs = entries(tmp_path / "subs", {"napper": student(nap=4)}, "toyretry.py")
    executor, fn = run_executor(folder, subs, tmp_path / "out", SlurmOptions(chunk=1, poll=0.5, settle=0.5))
    run = Background(fn)
    first = wait_for(lambda: executor.submitted[:1], 30, "submission")[0]
    wait_for(lambda: "RUNNING" in cluster.run("squeue", "-h", "-j", first, "-o", "%T"), 60, "running task")
    time.sleep(1)
    cluster.run("scancel", f"{first}_0")  # stands in for a node failure
    [outcome] = run.join(90)
    assert outcome.status == "graded" and outcome.score == 3, outcome.error
    assert len(executor.submitted) == 2  # the student went to the cluster again, once
    assert cluster.job(f"{first}_0")["JobState"] == "CANCELLED"


def test_kill_interrupt_and_rerun_grade_everyone_once(cluster, tmp_path):
    """SIGKILL leaves the array running (the rerun follows it); Ctrl-C cancels it (the rerun resumes)."""
    toy(tmp_path / "ex", "toykill")
    subs, out = tmp_path / "subs", tmp_path / "out"
    entries(subs, {f"s{i}": student(nap=2) for i in range(8)}, "toykill.py")
    env = {**cluster.env, "LABKIT_EXERCISES": str(tmp_path / "ex")}
    cmd = [sys.executable, "-m", "labkit", "grade", str(subs), "-e", "toykill", "--out", str(out),
           "--executor", "slurm"]

    def graded() -> int:
        return len(list((out / "students").glob("*.json"))) if (out / "students").is_dir() else 0

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: graded() >= 1, 90, "first result")
    proc.kill()
    proc.wait(10)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: graded() >= 4, 90, "half the class")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "cancelled job" in err, err
    assert "following job" in err  # the killed run's array was followed, not submitted again
    job = re.findall(r"cancelled job (\d+)", err)[0]
    assert all(s not in ("RUNNING", "PENDING") for s in _states(cluster, job)), "Ctrl-C left tasks running"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}
    assert sorted(rows) == [f"s{i}" for i in range(8)] and {r["score"] for r in rows.values()} == {"3"}
    logs = "".join(p.read_text() for p in (out / "slurm" / "logs").glob("*.out"))
    times = {f"s{i}": len(re.findall(rf"graded s{i}: ", logs)) for i in range(8)}
    assert set(times.values()) == {1}, times  # nothing graded twice, nothing lost


def _states(cluster: Cluster, job: str) -> list[str]:
    return re.findall(r"JobState=(\w+)", cluster.run("scontrol", "show", "job", "-o", job))


EX2 = (ROOT / "solutions" / "exercise2.py").read_text()
CLASS = {
    "good1": EX2 + "\n# one\n",
    "good2": EX2 + "\n# two\n",
    "wrongsplit": EX2 + "\n\ndef replica_batch_sizes(batch_size, num_devices):\n"
                        "    return [batch_size // num_devices] * num_devices\n",
    "crashcall": EX2 + "\n\ndef replica_batch_sizes(batch_size, num_devices):\n    raise RuntimeError('oops')\n",
    "crashimport": "raise RuntimeError('student crashed at import')\n",
    "hang": "while True:\n    pass\n",
    "syntax": "def replica_batch_sizes(:\n",
    "empty": "",
    "starter": (ROOT / "exercises" / "exercise2" / "starter.py").read_text(),
}


def test_exercise2_class_on_slurm_grades_as_local_and_queues_on_gpus(cluster, overtime, tmp_path, monkeypatch):
    subs = tmp_path / "subs"
    entries(subs, CLASS, "exercise2.py")
    # half the time limits (a hang costs 10 s, not 20), the same course for both executors and on the node
    (tmp_path / "course.toml").write_text('title = "test"\ntime_scale = 0.5\n')
    monkeypatch.setenv("LABKIT_COURSE", str(tmp_path / "course.toml"))
    local = CliRunner().invoke(cli, ["grade", str(subs), "-e", "exercise2", "--out", str(tmp_path / "local"),
                                     "--jobs", "2"])
    assert local.exit_code == 0, local.output
    overtime[1].join(150)  # its task holds a CPU: the GPU queue below is seen with a CPU free
    watch = Background(lambda add: _watch_queue(cluster, add))
    slurm = CliRunner().invoke(cli, ["grade", str(subs), "-e", "exercise2", "--out", str(tmp_path / "slurm"),
                                     "--executor", "slurm"])
    assert slurm.exit_code == 0, slurm.output
    stop_watch.set()
    samples = watch.join(10)
    assert _table(tmp_path / "slurm") == _table(tmp_path / "local")
    assert {r["status"] for r in _table(tmp_path / "slurm").values()} == {"graded", "error"}
    job = re.findall(r"slurm: job (\d+): 8 student\(s\) in 2 task\(s\)", slurm.output)[0]  # `empty` needs none
    tasks = [cluster.job(f"{job}_{i}") for i in range(2)]
    assert all(t["TresPerNode"] == "gres:gpu:2" and t["NumCPUs"] == "1" for t in tasks), tasks
    first, second = sorted(tasks, key=lambda t: t["StartTime"])
    assert second["StartTime"] >= first["EndTime"]  # never on the two GPUs at once
    assert any(s == (1, "Resources", 1) for s in samples), samples  # one ran, one waited for GPUs, a CPU idle


stop_watch = threading.Event()


def _watch_queue(cluster: Cluster, add) -> None:
    """(running tasks, why the pending one waits, CPUs allocated on the node), sampled while the class grades."""
    while not stop_watch.is_set():
        queue = cluster.run("squeue", "-h", "-n", "labkit-exercise2", "-o", "%T|%r").split()
        running = sum(q.startswith("RUNNING") for q in queue)
        pending = [q.split("|")[1] for q in queue if q.startswith("PENDING")]
        cpus = re.search(r"CPUAlloc=(\d+)", cluster.run("scontrol", "show", "node"))
        if pending:
            add((running, pending[0], int(cpus.group(1)) if cpus else -1))
        time.sleep(0.5)


def _table(out: Path) -> dict[str, dict]:
    """grades.csv by student: every column must agree between the executors."""
    return {r["student"]: r for r in csv.DictReader(io.StringIO((out / "grades.csv").read_text()))}


def test_a_task_past_its_time_is_the_students_error(overtime):
    executor, run = overtime
    [outcome] = run.join(150)
    assert outcome.status == "error" and outcome.student == "sleeper"
    assert "TIMEOUT (it ran past its --time)" in outcome.error and executor.submitted[0] in outcome.error

