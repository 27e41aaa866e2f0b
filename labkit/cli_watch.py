"""`labkit watch`: re-check an exercise each time its file is saved."""

from __future__ import annotations

import time
from pathlib import Path

import click

from labkit.catalog import resolve
from labkit.cli_options import UsageFailure, exercise_argument, friendly, workspace_option
from labkit.i18n import _
from labkit.workspace import find


@click.command()
@exercise_argument
@click.option("--interval", default=1.0, show_default=True, help="Seconds between looks at the file.")
@click.option("--max-runs", type=int, default=None, hidden=True)  # lets tests end the loop
@workspace_option
@friendly
def watch(exercise: str, interval: float, max_runs: int | None, workspace: Path | None) -> None:
    """Re-check an exercise every time its file is saved (Ctrl-C stops).

    Polls the file, so it works in containers and on network file systems.

    Example: labkit watch exercise1
    """
    ex, ws = resolve(exercise), find(workspace)
    path = ws.file(ex)
    if not path.is_file():
        raise UsageFailure(_("{file} does not exist: run `labkit start {exercise}` first").format(
            file=path, exercise=ex.id))
    from labkit import report as rep
    from labkit.engine import grade
    from labkit.runner import Worker

    runs, seen = 0, None
    with Worker(preload=ex.preload) as worker:  # one warm worker for every save
        try:
            while max_runs is None or runs < max_runs:
                stamp = _stamp(path)
                if stamp != seen and stamp is not None:
                    seen = stamp
                    runs += 1
                    click.echo(f"\n[{time.strftime('%H:%M:%S')}] " + _("{name} changed: checking").format(
                        name=path.name))
                    report = grade(ex, path, worker=worker)
                    ws.record(ex, report.score, report.max_score, report.ok and report.score == report.max_score)
                    click.echo(rep.terminal(report, click.style))
                    click.echo(_("watching {name} (Ctrl-C to stop)").format(name=path.name))
                time.sleep(interval)
        except KeyboardInterrupt:
            click.echo("\n" + _("stopped watching"))


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
