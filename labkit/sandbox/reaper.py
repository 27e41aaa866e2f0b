"""Leftover processes: the worker adopts its checks' orphans (subreaper) and kills whatever outlives a check."""

from __future__ import annotations

import os
import signal
import time


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


def kill_tree(root: int) -> int:
    """Kill every descendant of `root` (all are leftovers once the check's child has exited); how many were."""
    killed: set[int] = set()
    for _ in range(100):  # a fork bomb keeps forking while we kill: repeat until nothing is left
        found = descendants(root)
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        killed |= set(found)
        time.sleep(0.01)
        reap_all()
    reap_all()
    return len(killed)


def descendants(root: int) -> list[int]:
    """Every live process below `root`, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    text = f.read()
            except OSError:
                continue
            fields = text[text.rfind(b")") + 2:].split()
            if fields and fields[0] != b"Z":  # zombies are reaped below, not killed
                children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def reap_all() -> None:
    """Collect every child that has exited (we are their subreaper)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
