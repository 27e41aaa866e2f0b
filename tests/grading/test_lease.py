"""GPU leases: one GPU check at a time per GPU (by UUID), across threads and processes, never touching CUDA."""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from labkit.course.course import resolve
from labkit.grading import engine, lease
from labkit.grading.lease import UNKNOWN, Gpu, Lease, LeaseError, keys_for, visible_keys
from labkit.grading.results import CheckResult

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "tests" / "toy"
A, B, C = "GPU-aaaa1111-0000", "GPU-bbbb2222-0000", "GPU-cccc3333-0000"
SMI_ROWS = f"0, {A}, 00000000:17:00.0, NVIDIA H100\n1, {B}, 00000000:65:00.0, NVIDIA H100\n"


def gpus(*names: str) -> list[Gpu]:
    uuids = (A, B, C)
    return [Gpu(i, uuids[i], f"0000:{i}0:00.0", n) for i, n in enumerate(names)]


@pytest.fixture(autouse=True)
def fresh_query():
    lease.query_gpus.cache_clear()
    yield
    lease.query_gpus.cache_clear()


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """A fake nvidia-smi first on PATH: prints `rows`, logs each call to calls.log; returns (set rows, log)."""
    bin_dir, log, rows = tmp_path / "bin", tmp_path / "calls.log", tmp_path / "rows.txt"
    bin_dir.mkdir()
    rows.write_text(SMI_ROWS)
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncat {rows}\n')
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(lease.ENV_DIR, str(tmp_path / "leases"))
    return rows, log


# which GPUs a check runs on ------------------------------------------------------------------------------------

def test_nvidia_smi_rows_become_gpus_and_noise_is_dropped():
    text = SMI_ROWS + "2, [N/A], 00000000:B3:00.0, Tesla, odd name\nNo devices were found\n\n"
    found = lease.parse_smi(text)
    assert [g.key for g in found] == [A, B, "pci-00000000:b3:00.0"]  # no UUID: keyed by the bus id
    assert found[2].name == "Tesla, odd name"


def test_the_fake_nvidia_smi_is_asked_for_uuids_once_per_process(fake_smi):
    rows, log = fake_smi
    assert [g.uuid for g in lease.query_gpus()] == [A, B]
    lease.query_gpus()
    assert log.read_text().split("\n")[:-1] == ["--query-gpu=index,uuid,pci.bus_id,name --format=csv,noheader"]


def test_no_or_failing_nvidia_smi_means_unknown_gpus(fake_smi, monkeypatch, tmp_path):
    rows, _log = fake_smi
    rows.write_text("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver\n")
    assert lease.query_gpus() is None
    assert keys_for(1) == [(UNKNOWN, "the GPUs")]
    lease.query_gpus.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert lease.query_gpus() is None


@pytest.mark.parametrize("cvd, want", [
    (None, [A, B, C]),
    ("2,0", [C, A]),  # CUDA's cuda:0 is the third GPU: the lock follows the GPU, not the index
    ("GPU-cccc3333-0000,GPU-aaaa1111", [C, A]),  # full UUIDs and unique prefixes
    ("bbbb", [B]),  # a prefix without "GPU-", as CUDA accepts it
    ("1,7,0", [B]),  # CUDA stops at the first entry it cannot resolve
    ("GPU-", []),  # ambiguous: matches every GPU, so CUDA resolves none
    ("", []),
    ("MIG-5f0e7b2a-1111, 0", ["MIG-5f0e7b2a-1111", A]),
])
def test_cuda_visible_devices_names_gpus_by_index_uuid_prefix_or_mig(cvd, want):
    env = {} if cvd is None else {"CUDA_VISIBLE_DEVICES": cvd}
    assert visible_keys(gpus("H100", "H100", "H100"), env) == (want, True)


def test_mixed_models_make_indices_uncertain_unless_pci_order_is_asked():
    mixed = gpus("NVIDIA A100", "NVIDIA H100")
    assert visible_keys(mixed, {"CUDA_VISIBLE_DEVICES": "1"}) == ([A, B], False)  # FASTEST_FIRST: which is 1?
    assert visible_keys(mixed, {"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}) == ([B], True)
    assert visible_keys(mixed, {"CUDA_VISIBLE_DEVICES": B}) == ([B], True)  # a UUID is never uncertain
    assert keys_for(1, {}, mixed) == [(A, "GPU 0"), (B, "GPU 1")]  # cuda:0 may be either: hold both


def test_a_check_leases_the_first_gpus_it_needs_and_a_cpu_check_none():
    three = gpus("H100", "H100", "H100")
    assert keys_for(1, {"CUDA_VISIBLE_DEVICES": "2,1"}, three) == [(C, "GPU 0")]
    assert keys_for(2, {}, three) == [(A, "GPU 0"), (B, "GPU 1")]
    assert keys_for(2, {"CUDA_VISIBLE_DEVICES": "0"}, three) == [(UNKNOWN, "the GPUs")]  # torch sees more
    assert keys_for(0, {}, None) == []  # a CPU check does not even ask nvidia-smi


# the lock folder ----------------------------------------------------------------------------------------------

def test_the_shared_folder_is_sticky_and_world_writable_whatever_the_umask(tmp_path, monkeypatch):
    monkeypatch.setattr(lease, "SHARED_DIR", tmp_path / "shared")
    old = os.umask(0o077)
    try:
        folder = lease.lease_dir({})
    finally:
        os.umask(old)
    assert folder == tmp_path / "shared" and stat.S_IMODE(folder.stat().st_mode) == 0o1777
    assert lease.lease_dir({lease.ENV_DIR: str(tmp_path / "mine")}) == tmp_path / "mine"
    assert stat.S_IMODE((tmp_path / "mine").stat().st_mode) == 0o700


def test_an_unusable_shared_folder_falls_back_to_this_users_own(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(lease, "SHARED_DIR", tmp_path / "file" / "leases")
    folder = lease.lease_dir({"XDG_RUNTIME_DIR": str(tmp_path)})
    assert folder == tmp_path / f"labkit-gpu-leases-{os.geteuid()}" and folder.is_dir()


def test_a_planted_folder_or_lock_file_is_refused_with_a_clear_error(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(LeaseError, match="not a folder .*LABKIT_GPU_LEASES"):
        lease.lease_dir({lease.ENV_DIR: str(tmp_path / "link")})
    (tmp_path / "open").mkdir(mode=0o777)
    (tmp_path / "open").chmod(0o777)
    with pytest.raises(LeaseError, match="anyone may replace"):
        lease.lease_dir({lease.ENV_DIR: str(tmp_path / "open")})
    (tmp_path / "real" / "x.lock").symlink_to(tmp_path / "elsewhere")
    os.mkfifo(tmp_path / "real" / "y.lock")
    with pytest.raises(LeaseError, match="cannot open"):
        Lease([("x", "GPU 0")], tmp_path / "real").__enter__()
    with pytest.raises(LeaseError, match="not a regular file"):
        Lease([("y", "GPU 0")], tmp_path / "real").__enter__()
    assert not (tmp_path / "elsewhere").exists()


# holding and waiting ------------------------------------------------------------------------------------------

HOLDER = """
import json, sys, time
from pathlib import Path
from labkit.grading.lease import Lease
keys, folder, out, hold = json.loads(sys.argv[1])
with Lease([(k, k) for k in keys], Path(folder)) as held:
    start = time.time()
    time.sleep(hold)
    Path(out).write_text(json.dumps([start, time.time(), held.waited]))
"""


def hold_in_processes(tmp_path: Path, *key_sets: list[str], hold: float = 0.8) -> list[list[float]]:
    """Each key set leased by its own Python process at once; their [start, end, waited] of the hold."""
    procs, outs = [], []
    for i, keys in enumerate(key_sets):
        outs.append(tmp_path / f"held{i}.json")
        arg = json.dumps([keys, str(tmp_path), str(outs[-1]), hold])
        procs.append(subprocess.Popen([sys.executable, "-c", HOLDER, arg], cwd=ROOT))
    assert [p.wait(timeout=30) for p in procs] == [0] * len(procs)
    return sorted(json.loads(o.read_text()) for o in outs)


def test_two_processes_on_the_same_gpu_take_turns(tmp_path):
    first, second = hold_in_processes(tmp_path, [A], [A])
    assert first[1] <= second[0]  # the second began only after the first let go


def test_processes_on_different_gpus_run_at_once(tmp_path):
    first, second = hold_in_processes(tmp_path, [A], [B], hold=2.0)
    assert second[0] < first[1]  # overlapping holds
    assert first[2] < 1 and second[2] < 1


def test_a_two_gpu_check_waits_for_either_gpu(tmp_path):
    held = hold_in_processes(tmp_path, [A, B], [B])
    assert held[0][1] <= held[1][0]


def hold_raw(folder: Path, key: str, mode: int = fcntl.LOCK_EX) -> int:
    fd = os.open(folder / f"{key}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
    fcntl.flock(fd, mode)
    return fd


def is_locked(folder: Path, key: str) -> bool:
    fd = os.open(folder / f"{key}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def enter_in_thread(held: Lease) -> threading.Thread:
    thread = threading.Thread(target=held.__enter__, daemon=True)
    thread.start()
    return thread


def test_leases_are_taken_in_one_fixed_order_whatever_order_they_are_asked_in(tmp_path):
    blocker = hold_raw(tmp_path, B)
    held = Lease([(B, "GPU 1"), (A, "GPU 0")], tmp_path)
    thread = enter_in_thread(held)
    deadline = time.monotonic() + 10
    while not is_locked(tmp_path, A) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert is_locked(tmp_path, A) and thread.is_alive()  # A taken first, now waiting on B
    os.close(blocker)
    thread.join(10)
    assert not thread.is_alive() and is_locked(tmp_path, B)
    held.__exit__(None, None, None)
    assert not is_locked(tmp_path, A) and not is_locked(tmp_path, B)


def test_a_process_that_cannot_tell_gpus_apart_excludes_every_gpu_lease(tmp_path):
    with Lease([(UNKNOWN, "the GPUs")], tmp_path):
        held = Lease([(A, "GPU 0")], tmp_path)
        thread = enter_in_thread(held)
        thread.join(0.5)
        assert thread.is_alive()  # waits on the machine-wide lock
    thread.join(10)
    assert not thread.is_alive()
    with Lease([(B, "GPU 1")], tmp_path):  # while A is held, another GPU's lease goes through at once
        pass
    held.__exit__(None, None, None)


def test_the_note_tells_a_wait_worth_telling():
    held = Lease([(B, "GPU 1"), (A, "GPU 0")])
    held.waited = 0.4
    assert held.note == ""
    held.waited = 12.3
    assert held.note == "(labkit waited 12 s for GPU 1, GPU 0)"


def test_the_lease_never_initialises_cuda(fake_smi, monkeypatch):
    torch = pytest.importorskip("torch")

    def refuse(*a, **k):
        raise AssertionError("the lease initialised CUDA")

    monkeypatch.setattr(torch.cuda, "_lazy_init", refuse)
    monkeypatch.setattr(torch.cuda, "init", refuse)
    with lease.gpu_lease(2) as held:
        assert [k for k in held.keys] == [A, B]
    assert not torch.cuda.is_initialized()
    code = ("import sys; from labkit.grading.lease import gpu_lease\n"
            "with gpu_lease(1): pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr  # it does not even import torch


# in the engine ------------------------------------------------------------------------------------------------

class FakeWorker:
    sandbox = "none"
    scratch = SimpleNamespace(stage=lambda p: p, unstage=lambda p: None)

    def alive(self) -> bool:
        return True


@pytest.fixture
def graded(monkeypatch, tmp_path, fake_smi):
    """grade(toy, gpus=n, only=...) with each check's run replaced by a stamp of when it ran."""
    from labkit.lab import devices

    rows, _log = fake_smi
    rows.write_text("".join(f"{i}, GPU-{i:04d}aaaa, 0000:{i:02x}:00.0, NVIDIA H100\n" for i in range(8)))
    ran: dict[str, float] = {}

    def run_one(worker, spec, *args):
        ran[spec.name] = time.monotonic()
        return CheckResult(spec.name, spec.title, "passed", spec.points, spec.points, "ok"), False

    monkeypatch.setattr(engine, "_run_one", run_one)
    monkeypatch.setattr(devices, "fingerprint", lambda **_kw: SimpleNamespace(as_dict=dict))
    student = tmp_path / "exercise99.py"
    student.write_text("")

    def grade(count: int, only=()):
        ran.clear()
        monkeypatch.setattr(devices, "cuda_count", lambda: count)
        return engine.grade(resolve("exercise99", TOY), student, worker=FakeWorker(), only=only), ran

    return grade


def test_a_gpu_check_waits_for_its_lease_and_says_so_while_cpu_checks_do_not_wait(graded, tmp_path):
    folder = tmp_path / "leases"
    folder.mkdir()
    blocker = hold_raw(folder, "GPU-0003aaaa")  # another labkit process holds GPU 3
    start = time.monotonic()
    threading.Timer(1.3, os.close, [blocker]).start()
    report, ran = graded(8)
    cpu = [ran[n] - start for n in ("adds", "scales", "writes", "builds", "adds_again")]
    assert max(cpu) < 1.0  # the CPU checks ran while GPU 3 was held
    assert ran["many_gpus"] - start >= 1.2
    gpu = next(r for r in report.results if r.name == "many_gpus")
    assert re.fullmatch(r"ok\n\(labkit waited [12] s for GPU 0, GPU 1, GPU 2, GPU 3, GPU 4, GPU 5, GPU 6, GPU 7\)",
                        gpu.message), gpu.message
    assert all(r.message == "ok" for r in report.results if r.name != "many_gpus")


def test_without_gpus_nothing_is_asked_and_no_folder_is_made(graded, fake_smi, tmp_path):
    _rows, log = fake_smi
    report, ran = graded(0)
    assert "many_gpus" not in ran and report.results[-1].status == "skipped"
    report, ran = graded(8, only=["adds"])  # GPUs, but only a CPU check
    assert list(ran) == ["adds"]
    assert not log.exists() and not (tmp_path / "leases").exists()
