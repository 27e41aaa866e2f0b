"""Grading the student's own files: `check`, `watch` (again on every save) and `submit` (hand it in)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from labkit.cli.options import (
    UsageFailure,
    exercise_argument,
    friendly,
    report_options,
    sandbox_option,
    workspace_option,
)
from labkit.course.catalog import Exercise
from labkit.course.course import all_exercises, resolve
from labkit.course.workspace import Workspace, find
from labkit.files import write_atomic
from labkit.i18n import _


@click.command()
@click.argument("exercises", nargs=-1, metavar="[EXERCISE]...")
@click.option("--all", "every", is_flag=True, help="Check every exercise started in the workspace.")
@click.option("--file", "file_", type=click.Path(dir_okay=False, path_type=Path),
              help="Grade this file instead of the workspace's (no workspace needed).")
@click.option("--only", multiple=True, metavar="CHECK", help="Run only this check (repeatable); the score is partial.")
@click.option("--checks-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Instructors: add the hidden checks in DIR/EXERCISE/ (shown to you in full).")
@sandbox_option
@report_options
@workspace_option
@friendly
def check(exercises: tuple[str, ...], every: bool, file_: Path | None, only: tuple[str, ...],
          checks_dir: Path | None, sandbox: str,
          as_json: bool, junit: Path | None, gradescope: Path | None, workspace: Path | None) -> None:
    """Grade an exercise: a line per check, the score, and hints on failures.

    Exit status: 0 when no check failed or errored, 1 otherwise, 2 for usage errors.

    \b
    Example:
        labkit check exercise1
        labkit check 2 --json
        labkit check --all
        labkit check exercise6 --only shard_matches_sampler
    """
    jobs = _jobs(exercises, every, file_, workspace)
    from labkit.grading import report as rep
    from labkit.grading.attempt import attempt
    from labkit.sandbox.worker import Worker

    ok, reports = True, []
    style = click.style if not as_json else (lambda text, **_: text)
    with Worker(sandbox, preload={m for ex, _, _ in jobs for m in ex.preload}) as worker:
        for ex, path, ws in jobs:
            if not as_json:
                click.echo(rep.header_line(ex.id, ex.shown_title, style))
            show = (lambda r: click.echo(rep.check_line(r, style))) if not as_json else None
            report = attempt(ex, path, worker=worker, workspace=ws, on_result=show, only=only, checks_dir=checks_dir)
            reports.append(report)
            ok &= report.ok
            if not as_json:
                click.echo(rep.summary(report, style) + "\n")
    if as_json:
        data = [json.loads(rep.to_json(r)) for r in reports]
        click.echo(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
    elif len(reports) > 1:
        click.echo(rep.scorecard(reports))
    if junit:
        write_atomic(junit, rep.to_junit(reports))
    if gradescope:
        write_atomic(gradescope, json.dumps(rep.to_gradescope(reports), indent=2))
    sys.exit(0 if ok else 1)


def _jobs(names: tuple[str, ...], every: bool, file_: Path | None,
          workspace: Path | None) -> list[tuple[Exercise, Path, Workspace | None]]:
    """(exercise, file, workspace or None) for each thing to grade, or a usage error."""
    if file_ is not None:
        if len(names) != 1:
            raise UsageFailure(_("--file grades one exercise: name it, e.g. `labkit check exercise1 --file my.py`"))
        if not file_.is_file():
            raise UsageFailure(_("no such file: {file}").format(file=file_))
        return [(resolve(names[0]), file_, None)]
    if not names and not every:
        raise UsageFailure(_("name an exercise (e.g. `labkit check exercise1`) or use --all"))
    chosen = [resolve(n) for n in names]  # an unknown name is reported before a missing workspace
    ws = find(workspace)
    if every:
        chosen = [ex for ex in all_exercises() if ws.file(ex).exists()]
        if not chosen:
            raise UsageFailure(_("no exercise started yet: `labkit start exercise1` first"))
    for ex in chosen:
        if not ws.file(ex).is_file():
            raise UsageFailure(_("{file} does not exist: run `labkit start {exercise}` first").format(
                file=ws.file(ex), exercise=ex.id))
    return [(ex, ws.file(ex), ws) for ex in chosen]


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
    from labkit.grading import report as rep
    from labkit.grading.attempt import attempt
    from labkit.sandbox.worker import Worker

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
                    report = attempt(ex, path, worker=worker, workspace=ws)  # its report is kept, as check's is
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


@click.command()
@exercise_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The zip to write (default: EXERCISE-submission.zip in the current folder).")
@workspace_option
@friendly
def submit(exercise: str, output: Path | None, workspace: Path | None) -> None:
    """Pack your exercise file with its latest check report and your environment, ready to upload.

    Checks the file first when it changed since your last `labkit check`.

    Example: labkit submit exercise2
    """
    from labkit.grading.attempt import hand_in

    ex, ws = resolve(exercise), find(workspace)
    packed = hand_in(ex, ws, output, on_regrade=lambda: click.echo(
        f"{ws.file(ex).name} changed since its last check: checking it now…", err=True))
    click.echo(f"wrote {packed.path}: {ex.filename} (sha256 {packed.sha256[:12]}), its report "
               f"({packed.score:g}/{packed.max_score:g}) and your environment")
