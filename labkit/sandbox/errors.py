"""What can go wrong where student code runs: the child (crashed, late, out of step) or the worker or sandbox."""

from __future__ import annotations

from labkit.checks import StudentError


class ChildGone(Exception):
    """The child crashed, timed out, exited or broke the protocol; the check errors."""


class ImportFailed(ChildGone):
    """The student's file could not be imported; every check would fail the same way."""

    def __init__(self, message: str, error: StudentError | None = None):
        super().__init__(message)
        self.error = error


class WorkerFailed(Exception):
    """The grading worker could not start: the installation, not the student, is at fault."""


class SandboxError(Exception):
    """The sandbox that was asked for cannot run here; the message says why and what to do."""


class ProgramFailed(Exception):
    """A check's program (labkit.recipe) could not be carried out as written: the check's bug, never the student's."""
