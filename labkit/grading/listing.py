"""`labkit list`: every exercise with its status and best score, the points that need GPUs shown apart, a total."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from labkit.course.catalog import Exercise
from labkit.course.workspace import Workspace
from labkit.grading.report import ANSI, gpu_note
from labkit.i18n import _, clip, pad, width
from labkit.text import visible

STATUS_COLOURS = {"passed": "green", "failing": "red", "started": "yellow"}


@dataclass
class Row:
    """One exercise's line."""

    exercise: Exercise
    status: str = ""  # the English key: not started | started | failing | passed
    best: str = ""  # "9/9", or "-/12" before its first check
    note: str = ""  # "(+2 need 2 GPUs)"
    best_points: float = 0.0
    gpu_points: float = 0.0


def status_label(status: str) -> str:
    """A progress status as people read it (the English word stays the key in progress.json)."""
    return {"passed": _("passed"), "failing": _("failing"), "started": _("started"),
            "not started": _("not started")}.get(status, status)


def rows(exercises: list[Exercise], ws: Workspace) -> list[Row]:
    found = []
    for ex in exercises:
        p = ws.progress(ex)
        if not p.checks:
            found.append(Row(ex, p.status, f"-/{ex.points}"))
            continue
        note = gpu_note(p.gpu_points, p.gpu_need)
        found.append(Row(ex, p.status, f"{p.best:g}/{p.max_score:g}", f"({note})" if note else "", p.best,
                         p.gpu_points))
    return found


def listing(exercises: list[Exercise], ws: Workspace | None, style: Callable[..., str], columns: int) -> list[str]:
    """The lines `labkit list` prints, each fitted to `columns`; without a workspace, the exercises alone."""
    table = rows(exercises, ws) if ws is not None else [Row(ex) for ex in exercises]
    status_w = max(width(status_label(r.status)) for r in table) if table else 0
    note_w = max((width(r.note) for r in table), default=0)
    lines = []
    for r in table:
        gpu = "  " + _("[{n} GPU]").format(n=r.exercise.needs_gpus) if r.exercise.needs_gpus else ""
        head = f"{r.exercise.id:<11} "
        if ws is not None:
            label = style(pad(status_label(r.status), status_w), fg=STATUS_COLOURS.get(r.status))
            head += f"{label} {r.best:>7} " + (pad(r.note, note_w) + " " if note_w else "")
        room = max(10, columns - 1 - width(ANSI.sub("", head)) - width(gpu))
        lines.append(head + clip(visible(r.exercise.shown_title), room) + gpu)
    if ws is None:
        return lines + ["", _("(not in a workspace: `labkit init` makes one and then shows your progress here)")]
    best, total = sum(r.best_points for r in table), sum(ex.points for ex in exercises)
    line = _("total {score}/{max} ({percent}%)").format(score=f"{best:g}", max=total,
                                                       percent=f"{100 * best / total:.0f}" if total else "0")
    gpu_points = sum(r.gpu_points for r in table)
    if gpu_points:
        line += " · " + _("{points} of them need GPUs this machine lacks").format(points=f"{gpu_points:g}")
    return lines + ["", line]
