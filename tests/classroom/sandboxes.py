"""The sandbox for tests that grade a class: `auto` where bubblewrap or the container works, else `none` by name
(`labkit grade` refuses to run a class unconfined unless asked, and CI may lack bubblewrap)."""

from __future__ import annotations

from labkit.sandbox import modes
from labkit.sandbox.errors import SandboxError


def grade_sandbox() -> list[str]:
    """Extra `labkit grade` arguments: none where a sandbox works here, else an explicit `--sandbox none`."""
    try:
        modes.for_class("auto")
    except SandboxError:
        return ["--sandbox", "none"]
    return []


SANDBOX = grade_sandbox()
