"""Leftover processes: the worker adopts its checks' orphans (subreaper) and kills whatever outlives a check."""

from __future__ import annotations

import os
import signal
import time

KILL_SECONDS = 5.0  # at most this long per kill_tree: a process stuck in the kernel (D state) must not hang us
QUIET_SCANS = 2  # scans in a row that must find nothing: one can miss a child forked while it read /proc


def become_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER): Linux only; elsewhere orphans go to init as before."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def not_dumpable() -> None:
    """prctl(PR_SET_DUMPABLE, 0): /proc/<pid>/mem and ptrace closed to processes of the same uid (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def kill_tree(root: int, seconds: float = KILL_SECONDS) -> int:
    """Kill every descendant of `root` (all are leftovers once the check's child has exited); how many it killed."""
    # A process that forks and exits again and again outruns one scan of /proc: each process is killed the moment
    # a scan sees it, and scanning goes on until two scans in a row find nothing and nothing below us exited in
    # between (every exit in the tree leaves us, its subreaper, a zombie), or until `seconds` have passed.
    killed: set[int] = set()
    quiet, deadline = 0, time.monotonic() + seconds
    while quiet < QUIET_SCANS and time.monotonic() < deadline:
        exited = reap_all()  # also keeps /proc short: thousands of zombies would make a scan slower than a fork
        found = set(descendants(root, kill=True))
        if found and found <= killed:  # only the dying: give them a moment instead of spinning
            time.sleep(0.002)
        killed |= found
        quiet = 0 if found or exited else quiet + 1
    reap_all()
    return len(killed)


def descendants(root: int, kill: bool = False) -> list[int]:
    """Every live process below `root`, from /proc's parent links; with `kill`, each is sent SIGKILL when seen."""
    procs: dict[int, tuple[bytes, int]] = {}  # pid -> (state, parent pid), each read once per scan
    found: list[int] = []
    for pid in sorted((int(e) for e in os.listdir("/proc") if e.isdigit()), reverse=True):
        stat = procs.get(pid) or _read(pid, procs)  # newest first: the latest of a chain of forks, before it forks
        if stat is not None and stat[0] != b"Z" and _below(pid, root, procs):  # zombies are reaped, not killed
            found.append(pid)
            if kill:
                _kill(pid)
    return found


def _read(pid: int, procs: dict[int, tuple[bytes, int]]) -> tuple[bytes, int] | None:
    """(state, parent pid) of a process, also kept in `procs`; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2:].split()
    if len(fields) < 2:
        return None
    procs[pid] = (fields[0], int(fields[1]))
    return procs[pid]


def _below(pid: int, root: int, procs: dict[int, tuple[bytes, int]]) -> bool:
    """Whether `root` is an ancestor of `pid`, from the parent links read so far (reading more when needed)."""
    seen: set[int] = set()
    while pid not in seen:
        seen.add(pid)
        ppid = procs[pid][1]
        if ppid == root:
            return True
        if ppid <= 1:
            return False
        if ppid not in procs and _read(ppid, procs) is None:  # its parent exited since we read it: it has a new
            procs.pop(pid)  # one now (us, the subreaper, for an orphan of the tree), so read it again
            if _read(pid, procs) is None or procs[pid][1] == ppid:
                return False
            seen.discard(pid)
            continue
        pid = ppid
    return False


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap_all() -> int:
    """Collect every child that has exited (we are their subreaper); how many there were."""
    count = 0
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            count += 1
    except ChildProcessError:
        pass
    return count
