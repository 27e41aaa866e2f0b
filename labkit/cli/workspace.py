"""The student's workspace commands: `init`, `list`, `start`, `reset`, `hint`."""

from __future__ import annotations

from pathlib import Path

import click

from labkit.cli.options import exercise_argument, friendly, workspace_option
from labkit.course.course import all_exercises, resolve
from labkit.course.workspace import STATE_DIR, WorkspaceError, find, init
from labkit.i18n import _, language
from labkit.text import shown_path, terminal_columns, visible


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init_cmd(directory: Path) -> None:
    """Make DIRECTORY (default: here) a workspace.

    Example: labkit init course
    """
    ws = init(directory)
    click.echo(_("workspace ready in {root}\nnext: cd {directory} && labkit start exercise1").format(
        root=ws.root, directory=directory))


@click.command("list")
@workspace_option
@friendly
def list_cmd(workspace: Path | None) -> None:
    """Show every exercise with its status and best score, and your total.

    Points of checks that need GPUs this machine lacks are shown apart: `9/9 (+2 need 2 GPUs)`.

    Example: labkit list
    """
    from labkit.cli.check import colours
    from labkit.grading.listing import listing

    try:
        ws = find(workspace)
    except WorkspaceError:
        ws = None
    click.echo("\n".join(listing(all_exercises(), ws, colours(), terminal_columns())))


@click.command()
@exercise_argument
@click.option("--force", is_flag=True, help="Replace an existing file (it is backed up first).")
@workspace_option
@friendly
def start(exercise: str, force: bool, workspace: Path | None) -> None:
    """Copy an exercise's starter file and its statement into the workspace.

    Example: labkit start exercise1
    """
    from labkit.course.statement import place

    ex, ws = resolve(exercise), find(workspace)
    backup = ws.start(ex, force=force)
    if backup:
        click.echo(_("your previous file is kept at {backup}").format(backup=backup))
    placed = place(ex, ws.root, ws.root / STATE_DIR)
    click.echo(_("wrote {file}").format(file=shown_path(ws.file(ex))))
    for path in placed.written:
        click.echo(_("the statement: {file}").format(file=shown_path(path)))
    for path in placed.kept:
        click.echo(_("kept your own {file} (the statement is also `labkit show {exercise}`)").format(
            file=shown_path(path), exercise=ex.id))
    click.echo(_("read it here: labkit show {exercise}\nthen: labkit check {exercise}").format(exercise=ex.id))


@click.command()
@exercise_argument
@friendly
def show(exercise: str) -> None:
    """Print an exercise's statement (in Chinese with --lang zh or LABKIT_LANG=zh_CN).

    Example: labkit show exercise1
    """
    from labkit.course.statement import text

    click.echo(text(resolve(exercise), language()).rstrip("\n"))


@click.command()
@exercise_argument
@workspace_option
@friendly
def reset(exercise: str, workspace: Path | None) -> None:
    """Restore the starter file; your current file is backed up first, and its scores are forgotten.

    Example: labkit reset exercise1
    """
    ex, ws = resolve(exercise), find(workspace)
    backup = ws.reset(ex)
    click.echo(_("restored the starter of {exercise}").format(exercise=ex.id)
               + (_("; your file is kept at {backup}").format(backup=backup) if backup else ""))


@click.command()
@exercise_argument
@click.option("--all", "--again", "again", is_flag=True, help="Show again every hint shown so far (shows no new one).")
@workspace_option
@friendly
def hint(exercise: str, again: bool, workspace: Path | None) -> None:
    """Show the next hint: a failing check's own hint first (from your last check), then the exercise's.

    Example: labkit hint exercise1
    """
    from labkit.grading.hints import next_hint, shown

    ex = resolve(exercise)
    try:
        ws = find(workspace)
    except WorkspaceError:
        ws = None
    if again:
        hints = shown(ex, ws, language())
        if not hints:
            click.echo(_("no hint shown yet for {exercise}: `labkit hint {exercise}` shows the first").format(
                exercise=ex.id))
        for h in hints:
            click.echo(_hint_text(ex, h))
        return
    click.echo(_hint_text(ex, next_hint(ex, ws, language())))


def _hint_text(ex, h) -> str:
    if h.check:
        return _("hint for the failing check {title} [{check}]:").format(title=visible(h.title), check=h.check) + (
            f"\n  {visible(h.text)}")
    last = _(" (the last one)") if h.number == h.total else ""
    return _("hint {n} of {total}{last} for {exercise}:").format(n=h.number, total=h.total, last=last,
                                                                 exercise=ex.id) + f"\n  {h.text}"
