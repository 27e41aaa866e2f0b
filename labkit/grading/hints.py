"""`labkit hint`: one hint at a time, the failing checks' own hints first, then the exercise's progressive ones.

A failing check's `hint=` text nearly gives the answer away, so a report shows only its message (unless the
course says `feedback = "hint"`); the hint waits here, where the student asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.course.catalog import Exercise
from labkit.course.workspace import Workspace, WorkspaceError
from labkit.grading.messages import is_import_failure
from labkit.i18n import _


@dataclass
class Hint:
    """One hint: a failing check's own (`check` set) or the exercise's n-th of `total`."""

    text: str
    check: str | None = None  # the check's name (what `--only` takes)
    title: str = ""  # the check's title, as the report showed it
    number: int = 0
    total: int = 0


def failing(report: dict | None) -> list[Hint]:
    """The hints of the checks that failed in a saved report: not hidden ones, not an import failure's."""
    if not report:
        return []
    reveal = bool(report.get("reveal_hidden"))
    found = []
    for r in report.get("results", []):
        if not isinstance(r, dict) or r.get("status") not in ("failed", "error") or not r.get("hint"):
            continue
        if (r.get("hidden") and not reveal) or is_import_failure(str(r.get("message", ""))):
            continue  # a hidden check stays unnamed; an import failure's hints are about checks that never ran
        found.append(Hint(str(r["hint"]), str(r.get("name")), str(r.get("title", ""))))
    return found


def progressive(exercise: Exercise, lang: str) -> list[str]:
    """The exercise's hints, in Chinese when asked and every one has a twin."""
    if lang == "zh_CN" and len(exercise.hints_zh) == len(exercise.hints):
        return list(exercise.hints_zh)
    return list(exercise.hints)


def next_hint(exercise: Exercise, ws: Workspace | None, lang: str) -> Hint:
    """The next hint not yet shown; the exercise's last hint repeats once every one is."""
    hints = progressive(exercise, lang)
    if ws is None:  # no progress to keep: the first hint
        if not hints:
            raise WorkspaceError(_("{exercise} has no hints").format(exercise=exercise.id))
        return Hint(hints[0], number=1, total=len(hints))
    p = ws.progress(exercise)
    for hint in failing(ws.saved_report(exercise)):
        if hint.check not in p.check_hints:
            p.check_hints.append(hint.check)
            ws.save_progress(exercise, p)
            return hint
    if not hints:
        raise WorkspaceError(_("{exercise} has no more hints").format(exercise=exercise.id))
    index = min(p.hints_shown, len(hints) - 1)
    p.hints_shown = index + 1
    ws.save_progress(exercise, p)
    return Hint(hints[index], number=index + 1, total=len(hints))


def shown(exercise: Exercise, ws: Workspace | None, lang: str) -> list[Hint]:
    """Every hint shown so far (the failing checks' first), to read again; nothing is marked as shown."""
    if ws is None:
        return []
    p = ws.progress(exercise)
    hints = progressive(exercise, lang)
    seen = [h for h in failing(ws.saved_report(exercise)) if h.check in p.check_hints]
    return seen + [Hint(hints[i], number=i + 1, total=len(hints)) for i in range(min(p.hints_shown, len(hints)))]
