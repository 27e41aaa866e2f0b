"""What can go wrong while grading, as exceptions: the student's code, the child running it, or the worker."""

from __future__ import annotations


class StudentError(Exception):
    """The student's code raised; carries the exception as plain data."""

    def __init__(self, info: dict):
        self.type_name = str(info.get("type", "Exception"))
        self.mro = [str(n) for n in info.get("mro", [])]
        self.message = str(info.get("message", ""))
        self.where = [str(w) for w in info.get("where", [])]
        super().__init__(f"{self.type_name}: {self.message}" if self.message else self.type_name)

    def is_a(self, name: str) -> bool:
        """True when the student's exception is `name` or a subclass of it."""
        return name in self.mro


class ChildGone(Exception):
    """The child crashed, timed out, exited or broke the protocol; the check errors."""


class ImportFailed(ChildGone):
    """The student's file could not be imported; every check would fail the same way."""

    def __init__(self, message: str, error: StudentError | None = None):
        super().__init__(message)
        self.error = error


class WorkerFailed(Exception):
    """The grading worker could not start: the installation, not the student, is at fault."""
