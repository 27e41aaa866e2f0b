"""Section 6: hostile exercise2 submissions against `labkit check`: the grader's peak memory and extra time.

Each run is `labkit check exercise2 --file F --sandbox none` under a fresh parent: (a) the reference solution;
(b) save_portable writes a DEFLATE bomb (4.3 GB of zeros in 4 MB, and 1 GB in under 1 MiB); (c) every
answer's tensor blob is the 4.3 GB bomb (the submission replaces the child's wire.encode); (d) the files the
checks read flip between the real file and a FIFO while the grader reads them; (e) a 150,000-term expression.
Targets: no process of the run above 2 GiB, and at most 30 s more than the solution.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from benchmarks.common import LABKIT, PYTHON, ROOT, Row, clean_env, verdict

RSS_LIMIT_MIB = 2048
EXTRA_LIMIT_S = 30.0
BOMB_BYTES = 4095 << 20  # the most one zip32 record can declare: 4.3 GB of zeros, in about 4 MB
SMALL_BOMB_BYTES = 960 << 20  # 1 GB of zeros in under 1 MiB: below exercise2's size cap, so the zip check meets it
TIMEOUT_S = 300.0  # a grader stuck on a FIFO is killed here, and the row says so

# Runs in the child, as the student's code: torch.save's bytes with the first storage record swapped for
# `size` deflated zeros. After a full flush every MiB of zeros compresses to the same block, so this is instant.
BOMB = '''
def _bomb_zip(value, size={size}, crc={crc}):
    import io, struct, zipfile, zlib
    import torch
    buf = io.BytesIO()
    torch.save(value, buf)
    src = zipfile.ZipFile(buf)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = packer.compress(bytes(1 << 20)) + packer.flush(zlib.Z_FULL_FLUSH)
    stream = block * (size >> 20) + packer.flush()
    out, central = bytearray(), bytearray()
    for info in src.infolist():
        name = info.filename.encode()
        data = stream if name.endswith(b"/data/0") else src.read(info.filename)
        method, check, full = (8, crc, size) if data is stream else (0, zlib.crc32(data), len(data))
        central += struct.pack("<4s6H3L5H2L", b"PK" + bytes([1, 2]), 20, 20, 0, method, 0, 33, check, len(data),
                               full, len(name), 0, 0, 0, 0, 0, len(out)) + name
        out += struct.pack("<4s5H3L2H", b"PK" + bytes([3, 4]), 20, 0, method, 0, 33, check, len(data), full,
                           len(name), 0) + name + data
    n = len(src.infolist())
    end = struct.pack("<4s4H2LH", b"PK" + bytes([5, 6]), 0, 0, n, n, len(central), len(out), 0)
    return bytes(out + central + end)
'''

BOMB_FILE = '''
def save_portable(model, path):
    import torch
    with open(path, "wb") as f:
        f.write(_bomb_zip({"weight": torch.zeros(1, 1), "bias": torch.zeros(1)}))
'''

BOMB_BLOB = '''
def _patch_wire():
    try:
        from labkit.sandbox import wire
    except ImportError:
        return
    import torch
    real, blob = wire.encode, []

    def encode(value):
        if not blob:
            blob.append(_bomb_zip([torch.zeros(2)]))
        return real(value)[0], blob[0]

    wire.encode = encode


_patch_wire()
'''

FIFO = '''
_real_save, _real_plot = save_portable, plot_fit


def _flip(path, seconds=5.0):
    import ctypes, os, threading, time
    fifo = path + ".fifo"
    os.mkfifo(fifo)
    swap = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if swap is None:
        os.replace(fifo, path)
        return

    def run():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(1000):  # RENAME_EXCHANGE: the path is the file, the FIFO, the file... one syscall each
                swap(-100, path.encode(), -100, fifo.encode(), 2)
        if not os.path.exists(fifo) or not os.path.isfile(path):
            return
        swap(-100, path.encode(), -100, fifo.encode(), 2)

    threading.Thread(target=run, daemon=True).start()


def save_portable(model, path):
    _real_save(model, path)
    _flip(path)


def plot_fit(x, y, model, path):
    _real_plot(x, y, model, path)
    _flip(path)
'''

LONG = "\n_long = " + " + ".join(["1"] * 150_000) + "\n"

# A fresh parent per run: RUSAGE_CHILDREN's ru_maxrss is the biggest process it ever waited for, grader or child.
WRAP = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stdout.write(p.stdout); print(); "
        "print('RUSAGE', p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def zeros_crc(size: int) -> int:
    """CRC-32 of `size` zero bytes (what the bomb's record header declares)."""
    crc, mib = 0, bytes(1 << 20)
    for _ in range(size >> 20):
        crc = zlib.crc32(mib, crc)
    return crc


def submissions() -> dict[str, str]:
    """name -> source of each graded file."""
    solution = (ROOT / "solutions/exercise2.py").read_text(encoding="utf-8")
    bomb = BOMB.format(size=BOMB_BYTES, crc=zeros_crc(BOMB_BYTES))
    small = BOMB.format(size=SMALL_BOMB_BYTES, crc=zeros_crc(SMALL_BOMB_BYTES))
    return {"solution": solution, "bomb file 4.3 GB": solution + bomb + BOMB_FILE,
            "bomb file 1 GB": solution + small + BOMB_FILE, "bomb blob": solution + bomb + BOMB_BLOB,
            "fifo": solution + FIFO, "150k-term expression": solution + LONG}


def tree_pss_mib(root: int) -> float:
    """Memory of `root` and every descendant now, in MiB, as PSS: pages shared after fork count once in all."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("Pss:")), 0)
        except OSError:
            pass
        todo += children.get(pid, [])
    return total / 1024


def grade_once(path: Path) -> dict:
    """Wall seconds, peak RSS of the biggest process, polled peak PSS of the tree, exit status and statuses."""
    argv = [PYTHON, "-c", WRAP, LABKIT, "check", "exercise2", "--file", str(path), "--sandbox", "none", "--json"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    tree, hung = 0.0, False
    while proc.poll() is None:
        tree = max(tree, tree_pss_mib(proc.pid))
        if time.perf_counter() - start > TIMEOUT_S:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: the grader and the child with it
            hung = True
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    out = proc.stdout.read()
    proc.stdout.close()
    lines = out.strip().splitlines()
    _, rc, kib = lines[-1].split() if lines and lines[-1].startswith("RUSAGE") else ("", "-1", "0")
    try:
        (report,) = json.loads("\n".join(lines[:-1]))  # `check --json`: a list, one report per exercise
        outcome = {r["name"]: [r["status"], r["message"][:160]] for r in report["results"]}
    except (ValueError, KeyError, TypeError):
        outcome = {"report": ["none", "killed after a timeout" if hung else f"no JSON report (exit {rc})"]}
    return {"seconds": seconds, "peak_mib": int(kib) / 1024, "tree_mib": tree, "rc": int(rc), "hung": hung,
            "outcome": outcome}


def run(quick: bool = False) -> list[Row]:
    """One row per submission: peak RSS under 2 GiB and wall time within 30 s of the solution's."""
    rows, runs = [], {}
    with tempfile.TemporaryDirectory(prefix="labkit-bombs-") as tmp:
        for name, source in submissions().items():
            path = Path(tmp) / name.replace(" ", "_") / "exercise2.py"
            path.parent.mkdir()
            path.write_text(source, encoding="utf-8")
            runs[name] = grade_once(path)
            print(f"[bombs] {name}: {json.dumps(runs[name])}", file=sys.stderr, flush=True)
    base = runs["solution"]
    for name, r in runs.items():
        extra = r["seconds"] - base["seconds"]
        ok = r["peak_mib"] < RSS_LIMIT_MIB and not r["hung"] and (name == "solution" or extra <= EXTRA_LIMIT_S)
        measured = f"{r['peak_mib']:.0f} MiB peak (tree {r['tree_mib']:.0f}), {r['seconds']:.1f} s"
        rows.append(Row("bombs", f"exercise2 {name}", measured,
                        f"solution {base['seconds']:.1f} s", f"{extra:+.1f} s",
                        f"< {RSS_LIMIT_MIB} MiB, <= +{EXTRA_LIMIT_S:.0f} s", verdict(ok), r))
    return rows


if __name__ == "__main__":
    from benchmarks.common import format_table

    print(format_table(run()))
