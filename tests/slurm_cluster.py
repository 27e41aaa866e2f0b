"""A one-node Slurm cluster on this machine, for the Slurm executor's tests: munge, slurmctld and slurmd as root.

Everything lives in one temporary folder (config, munge key and socket, state, logs, two fake GPUs as empty
files named by gres.conf); the daemons run in the foreground as this process's children and are stopped by
process id, never by name (other work may run Slurm or munge on the same machine).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel")
UP_SECONDS = 60  # the cluster came up in about 15 s here


def missing() -> str:
    """Why a cluster cannot be started here ('' when it can)."""
    if os.geteuid() != 0:
        return "the Slurm cluster fixture runs munge and slurmd as root"
    gone = [n for n in DAEMONS + CLIENTS if shutil.which(n) is None and not Path("/usr/sbin", n).exists()]
    if gone:
        return f"{', '.join(gone)} not installed (apt-get install slurm-wlm munge; .ci/run does)"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _exe(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@dataclass
class Cluster:
    """A running cluster: its folder, the environment that points Slurm's commands at it, its daemons."""

    folder: Path
    node: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF: what sbatch, squeue and labkit's executor need to reach this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str) -> str:
        """A Slurm command against this cluster; its stdout."""
        return subprocess.run(args, env=self.env, capture_output=True, text=True, check=True, timeout=30).stdout

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as key=value pairs (the first record: one array task or one job)."""
        line = self.run("scontrol", "show", "job", "-o", job_id).splitlines()[0]
        return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)

    def log(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        """Jobs cancelled and ended first (a step whose slurmd is gone lingers), then each daemon by the process id
        it was started with (TERM, then KILL after 10 s), then any job step of this cluster still there, by pid."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                self.run("scancel", "--full", "--user", "root")
                deadline = time.monotonic() + 20
                while self.run("squeue", "-h", "-o", "%i").strip() and time.monotonic() < deadline:
                    time.sleep(0.5)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass  # the controller is down: the steps are found below
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(5)
        self.procs.clear()
        for pid in self.steps():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def steps(self) -> list[int]:
        """Process ids of this cluster's slurmstepd: they carry its SLURM_CONF, inherited from its slurmd."""
        mine = f"SLURM_CONF={self.conf}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and (proc / "comm").read_text().startswith("slurmstepd") \
                        and mine in (proc / "environ").read_bytes().split(b"\0"):
                    found.append(int(proc.name))
            except OSError:
                continue  # it ended meanwhile
        return found


def write_config(folder: Path, node: str) -> None:
    """slurm.conf, gres.conf and cgroup-free settings for one node with CPUs=2 and two fake GPUs."""
    for d in ("state", "spool", "gpus"):
        (folder / d).mkdir(parents=True, exist_ok=True)
    for i in range(2):
        (folder / "gpus" / f"gpu{i}").touch()  # Slurm schedules gres:gpu by these files; nothing opens them
    munge = folder / "munge.socket"
    conf = f"""\
ClusterName=labkit
SlurmctldHost={node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge}
StateSaveLocation={folder / 'state'}
SlurmdSpoolDir={folder / 'spool'}
SlurmctldPidFile={folder / 'slurmctld.pid'}
SlurmdPidFile={folder / 'slurmd.pid'}
SlurmctldLogFile={folder / 'slurmctld.log'}
SlurmdLogFile={folder / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
MpiDefault=none
KillWait=2
OverTimeLimit=0
MinJobAge=600
SchedulerParameters=sched_interval=2,bf_interval=2
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 Gres=gpu:2 RealMemory=2000 State=UNKNOWN
PartitionName=gpu Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""
    (folder / "slurm.conf").write_text(conf)
    (folder / "gres.conf").write_text(f"NodeName={node} Name=gpu File={folder / 'gpus'}/gpu[0-1]\n")


def start(folder: Path) -> Cluster:
    """munged, slurmctld and slurmd in the foreground, as children of this process; ready when the node is idle."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)  # munged refuses a key or socket in a folder others may write
    node = socket.gethostname().split(".")[0]
    write_config(folder, node)
    key = folder / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    os.chmod(key, 0o400)
    cluster = Cluster(folder, node)
    env = cluster.env

    def spawn(name: str, *args: str) -> None:
        out = open(folder / f"{name}.out", "wb")  # noqa: SIM115  (the daemon keeps it; closed with the process)
        cluster.procs[name] = subprocess.Popen([_exe(name), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True)

    try:
        spawn("munged", "-F", "--force", f"--key-file={key}", f"--socket={folder / 'munge.socket'}",
              f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
              f"--seed-file={folder / 'munged.seed'}")
        _wait(lambda: (folder / "munge.socket").exists(), "munged", cluster)
        spawn("slurmctld", "-D", "-i", "-f", str(cluster.conf))
        spawn("slurmd", "-D", "-N", node, "-f", str(cluster.conf))
        _wait(lambda: _idle(cluster), "the node to be idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _idle(cluster: Cluster) -> bool:
    try:
        out = cluster.run("sinfo", "-h", "-o", "%t")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return False
    return out.strip() == "idle"


def _wait(ready, what: str, cluster: Cluster) -> None:
    deadline = time.monotonic() + UP_SECONDS
    while not ready():
        dead = [n for n, p in cluster.procs.items() if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            cluster.stop()
            why = f"{', '.join(dead)} exited" if dead else f"no {what} after {UP_SECONDS} s"
            raise RuntimeError(f"the test cluster did not start: {why}\n{cluster.log()}")
        time.sleep(0.25)
