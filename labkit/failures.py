"""What can go wrong while grading, as exceptions (the student's code, the child running it, or the worker),
and how a report says it."""

from __future__ import annotations

import re
from pathlib import Path

from labkit.i18n import _


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


def student_error_message(exc: StudentError, raised: bool = True) -> str:
    """How an exception from the student's code reads in a report."""
    if exc.is_a("NotImplementedError") and re.match(r"exercise\d+:", exc.message):  # the starter's stub
        head = _("not implemented yet ({what})").format(what=exc.message or "NotImplementedError")
    elif exc.is_a("MissingFunction"):
        head = exc.message
    else:
        head = _("your code raised {error}").format(error=exc) if raised else str(exc)
    return head + "".join("\n    " + _("at {where}").format(where=w) for w in exc.where[-3:])


def import_message(exc: ImportFailed) -> str:
    """Why the student's file could not be imported, as the report says it."""
    if exc.error is None:
        return str(exc)
    if exc.error.is_a("SystemExit"):
        return _("your file could not be imported: it called exit() at import time; keep top-level code out of it")
    return _("your file could not be imported: {why}").format(why=student_error_message(exc.error, raised=False))


def syntax_error(path: Path) -> str | None:
    """Compile (never run) the file in the grader to report a syntax error at once."""
    try:
        compile(path.read_bytes(), str(path), "exec")
    except SyntaxError as exc:
        return _("your file could not be imported: syntax error at line {line}: {msg}").format(
            line=exc.lineno, msg=exc.msg) + (f"\n    {exc.text.strip()}" if exc.text else "")
    except ValueError as exc:  # null bytes
        return _("your file could not be imported: {why}").format(why=exc)
    return None
