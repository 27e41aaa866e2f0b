"""Which sandbox runs the worker, strongest first: container, bwrap, user (an unprivileged uid without
namespaces, for hosts like Gradescope's where bubblewrap cannot run) and none; `choose` picks one for --sandbox."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

from labkit.paths import PACKAGE
from labkit.sandbox import bwrap, container
from labkit.sandbox.errors import SandboxError

MODES = ("auto", "bwrap", "container", "user", "none")
CLASS_FIX = ("install bubblewrap (apt-get install bubblewrap), build the grader's image (`make image`, then "
             "--sandbox container), or pass --sandbox none to grade without a sandbox on purpose")


@dataclass(frozen=True)
class SandboxStatus:
    """One sandbox on this machine, for `labkit doctor`: whether it works, and why not."""

    name: str
    works: bool
    why: str = ""  # '' when it works; else the reason and the fix


@functools.cache
def user_works() -> str:
    """'' when this Python and labkit start as `nobody` here (root, setpriv, a readable install), else why not."""
    if os.geteuid() != 0:
        return "only root can run the worker as another user (you are already unprivileged: use --sandbox none)"
    if shutil.which("setpriv") is None:
        return "setpriv is not installed (util-linux)"
    code = f"import sys; sys.path.append({str(PACKAGE.parent)!r}); import labkit.sandbox.child"
    probe = [*bwrap.drop_privileges(), sys.executable, "-I", "-c", code]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=60, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"setpriv could not start Python: {exc}"
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        why = last[0] if last else f"exit status {done.returncode}"
        return f"nobody cannot start this Python and labkit (is a folder on the way private?): {why}"
    return ""


def choose(mode: str) -> str:
    """The sandbox to use for `mode`: auto picks bwrap when it works; asking for one that cannot run is an error."""
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "none":
        return "none"
    checks = {"container": container.works, "user": user_works, "bwrap": bwrap.bwrap_works}
    if mode in checks:
        reason = checks[mode]()
        if reason:
            raise SandboxError(f"--sandbox {mode}: {reason}")
        return mode
    return "none" if bwrap.bwrap_works() else "bwrap"


def for_autograder() -> str:
    """Gradescope's image has no sandbox of its own: bubblewrap where it works, else an unprivileged user as root."""
    if not bwrap.bwrap_works():
        return "bwrap"
    return "user" if not user_works() else "none"


def for_class(mode: str) -> str:
    """The sandbox `labkit grade` uses: auto means bubblewrap, else the container, else an error; never a silent
    `none` (only an explicit --sandbox none grades a class without one)."""
    if mode != "auto":
        return choose(mode)
    if not bwrap.bwrap_works():
        return "bwrap"
    if not container.works():
        return "container"
    raise SandboxError(f"no sandbox works here ({bwrap.bwrap_works()}; container: {container.works()}), and a "
                       f"class's code must not run unconfined: {CLASS_FIX}")


def sandbox_report() -> list[SandboxStatus]:
    """Every sandbox, strongest first, with whether it works on this machine (what `labkit doctor` shows)."""
    reasons = {"container": container.works(), "bwrap": bwrap.bwrap_works(), "user": user_works(), "none": ""}
    return [SandboxStatus(name, not why, why) for name, why in reasons.items()]
