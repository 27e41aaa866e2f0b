"""How a report says what went wrong: the student's exception, a failed import, a syntax error."""

from __future__ import annotations

import re
from pathlib import Path

from labkit.checks import StudentError
from labkit.i18n import _
from labkit.sandbox.errors import ImportFailed


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
