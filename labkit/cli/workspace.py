"""The student's workspace commands: `init`, `list`, `start`, `reset`, `hint`."""

from __future__ import annotations

from pathlib import Path

import click

from labkit.cli.options import exercise_argument, friendly, workspace_option
from labkit.course.course import all_exercises, resolve
from labkit.course.workspace import WorkspaceError, find, init
from labkit.i18n import _, language


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
    """Show every exercise with its status and best score.

    Example: labkit list
    """
    try:
        ws = find(workspace)
    except WorkspaceError:
        ws = None
    for ex in all_exercises():
        gpu = f"  [{ex.needs_gpus} GPU]" if ex.needs_gpus else ""
        if ws is None:
            click.echo(f"{ex.id:<11} {ex.shown_title}{gpu}")
            continue
        p = ws.progress(ex)
        best = f"{p.best:g}/{p.max_score:g}" if p.checks else f"-/{ex.points}"
        colour = {"passed": "green", "failing": "red", "started": "yellow"}.get(p.status)
        click.echo(f"{ex.id:<11} {click.style(f'{p.status:<11}', fg=colour)} {best:>7}  {ex.shown_title}{gpu}")
    if ws is None:
        click.echo("\n" + _("(not in a workspace: `labkit init` makes one and then shows your progress here)"))


@click.command()
@exercise_argument
@click.option("--force", is_flag=True, help="Replace an existing file (it is backed up first).")
@workspace_option
@friendly
def start(exercise: str, force: bool, workspace: Path | None) -> None:
    """Copy an exercise's starter file into the workspace.

    Example: labkit start exercise1
    """
    ex, ws = resolve(exercise), find(workspace)
    backup = ws.start(ex, force=force)
    if backup:
        click.echo(_("your previous file is kept at {backup}").format(backup=backup))
    click.echo(_("wrote {file}\nread {statement}\nthen: labkit check {exercise}").format(
        file=ws.file(ex), statement=ex.statement, exercise=ex.id))


@click.command()
@exercise_argument
@workspace_option
@friendly
def reset(exercise: str, workspace: Path | None) -> None:
    """Restore the starter file; your current file is backed up first.

    Example: labkit reset exercise1
    """
    ex, ws = resolve(exercise), find(workspace)
    backup = ws.reset(ex)
    click.echo(_("restored the starter of {exercise}").format(exercise=ex.id)
               + (_("; your file is kept at {backup}").format(backup=backup) if backup else ""))


@click.command()
@exercise_argument
@workspace_option
@friendly
def hint(exercise: str, workspace: Path | None) -> None:
    """Show the next hint for an exercise.

    Example: labkit hint exercise1
    """
    ex = resolve(exercise)
    try:
        ws = find(workspace)
    except WorkspaceError:
        ws = None
    if ws is None:
        number, text = 1, ex.hints[0] if ex.hints else ""
    else:
        number, text = ws.next_hint(ex)
    if language() == "zh_CN" and len(ex.hints_zh) == len(ex.hints):  # the same hint, in Chinese
        text = ex.hints_zh[number - 1]
    last = _(" (the last one)") if number == len(ex.hints) else ""
    click.echo(_("hint {n} of {total}{last} for {exercise}:").format(n=number, total=len(ex.hints), last=last,
                                                                       exercise=ex.id) + f"\n  {text}")
