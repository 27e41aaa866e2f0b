"""How a report says what went wrong: the student's exception, a failed import, a syntax error."""

from __future__ import annotations

import re
from pathlib import Path

from labkit.checks import CheckFailed, StudentError, read_student_file
from labkit.i18n import _
from labkit.sandbox.errors import ImportFailed

MAX_SOURCE = 2 << 20  # bytes of a student's file compiled in the grader; a solution is a few kilobytes
IMPORT_FAILED = ("your file could not be imported", "无法导入你的文件")  # how every import failure begins, en and zh


def is_import_failure(message: str) -> bool:
    """Whether a check's message says the file could not be imported (in either language it was graded in)."""
    return message.startswith(IMPORT_FAILED)


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
    """Compile (never run) the file in the grader to report a syntax error at once; never raises."""
    try:
        source = read_student_file(path, max_bytes=MAX_SOURCE, what="your file")
        compile(source, str(path), "exec")
    except CheckFailed as exc:  # a link, a FIFO, an oversized file
        return _("your file could not be imported: {why}").format(why=exc)
    except SyntaxError as exc:
        text = (exc.text or "").strip()[:200]  # the line may be megabytes long
        return _("your file could not be imported: syntax error at line {line}: {msg}").format(
            line=exc.lineno, msg=exc.msg) + (f"\n    {text}" if text else "")
    except ValueError as exc:  # null bytes
        return _("your file could not be imported: {why}").format(why=str(exc)[:200])
    except Exception as exc:  # noqa: BLE001  (RecursionError, MemoryError, OverflowError: never the grader's traceback)
        why = f"Python cannot compile it ({type(exc).__name__}: {str(exc)[:200]})"
        if isinstance(exc, RecursionError):
            why += "; an expression or a block nests too deeply"
        return _("your file could not be imported: {why}").format(why=why)
    return None
