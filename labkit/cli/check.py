"""Grading the student's own files: `check`, `watch` (again on every save) and `submit` (hand it in)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from labkit.cli.options import (
    UsageFailure,
    complete_exercises,
    exercise_argument,
    friendly,
    report_options,
    sandbox_option,
    workspace_option,
)
from labkit.course.catalog import Exercise
from labkit.course.course import all_exercises, current_course, resolve
from labkit.course.workspace import Workspace, find
from labkit.files import write_atomic
from labkit.i18n import _
from labkit.text import terminal_columns


@click.command()
@click.argument("exercises", nargs=-1, metavar="[EXERCISE]...", shell_complete=complete_exercises)
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
    """Grade an exercise: a line per check, the score, and why each failing check failed.

    Exit status: 0 when no check failed or errored, 1 otherwise, 2 for usage errors. --json prints a list
    with one report per exercise, even for one. Each check line ends with its id, what --only takes.

    \b
    Example:
        labkit check exercise1
        labkit check 2 --json
        labkit check --all
        labkit check exercise6 --only shard_matches_sampler
    """
    for option, path in (("--junit", junit), ("--gradescope", gradescope)):
        writable(option, path)  # before grading: a wrong path must not cost a whole run
    jobs = _jobs(exercises, every, file_, workspace)
    from labkit.grading import report as rep
    from labkit.grading.attempt import attempt
    from labkit.sandbox.worker import Worker

    ok, reports = True, []
    style = colours()
    with Worker(sandbox, preload={m for ex, _, _ in jobs for m in ex.preload}) as worker:
        for ex, path, ws in jobs:
            if not as_json:
                click.echo(rep.header_line(ex.id, ex.shown_title, style))
            lines = rep.Lines(feedback_of(ex), style)
            show = (lambda r, lines=lines: click.echo(lines(r))) if not as_json else None
            report = attempt(ex, path, worker=worker, workspace=ws, on_result=show, only=only, checks_dir=checks_dir)
            reports.append(report)
            ok &= report.ok
            if not as_json:
                click.echo(rep.summary(report, style))
                if report.full_marks and not only and len(jobs) == 1:
                    click.echo(style(next_step(ex, ws), fg="green"))
                click.echo()
    if as_json:  # always a list, one report per exercise, however many were checked
        click.echo(json.dumps([json.loads(rep.to_json(r)) for r in reports], indent=2, ensure_ascii=False))
    elif every or len(reports) > 1:  # --all ends with the total, however many exercises were started
        click.echo(rep.scorecard(reports))
    if junit:
        _write(junit, rep.to_junit(reports))
    if gradescope:
        _write(gradescope, json.dumps(rep.to_gradescope(reports), indent=2))
    sys.exit(0 if ok else 1)


def colours():
    """click.style, or plain text where NO_COLOR is set (https://no-color.org); no meaning rests on colour alone."""
    if os.environ.get("NO_COLOR"):
        return lambda text, **_: text
    return click.style


def writable(option: str, path: Path | None) -> None:
    """A usage error now, before any grading, when `path` cannot be written."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        why = _("{path} is a folder: name a file in it").format(path=path)
    elif not folder.is_dir():
        why = _("there is no folder {folder}").format(folder=folder)
    elif not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        why = _("you may not write {path}").format(path=path)
    else:
        return
    raise UsageFailure(f"{option} {path}: {why}")


def _write(path: Path, text: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UsageFailure(_("could not write {path}: {why}").format(path=path, why=exc.strerror or exc)) from None


def feedback_of(ex: Exercise) -> str:
    """The course's feedback level for this exercise's reports (course.toml's `feedback`)."""
    return current_course(root=ex.folder.parent).feedback


def next_step(ex: Exercise, ws: Workspace | None) -> str:
    """Full marks: congratulations, and the exercise to do next."""
    later = [e for e in all_exercises() if e.order > ex.order]
    if not later:
        return _("Full marks on {exercise}: that was the last exercise. Well done!").format(exercise=ex.id)
    nxt = later[0]
    started = ws is not None and ws.file(nxt).exists()
    return _("Full marks on {exercise}! Next: {command}").format(
        exercise=ex.id, command=f"labkit {'check' if started else 'start'} {nxt.id}")


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
@sandbox_option
@workspace_option
@friendly
def watch(exercise: str, interval: float, max_runs: int | None, sandbox: str, workspace: Path | None) -> None:
    """Re-check an exercise every time its file is saved (Ctrl-C stops).

    Polls the file, so it works in containers and on network file systems. Each run is graded, kept and
    counted as `labkit check` does, in the same sandbox.

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

    runs, seen, style = 0, None, colours()
    with Worker(sandbox, preload=ex.preload) as worker:  # one warm worker for every save, in check's sandbox
        try:
            while max_runs is None or runs < max_runs:
                stamp = _stamp(path)
                if stamp != seen and stamp is not None:
                    seen = stamp
                    runs += 1
                    if runs > 1:
                        click.clear()  # a terminal only: piped output keeps every run
                    click.echo(f"[{time.strftime('%H:%M:%S')}] " + _("{name} changed: checking").format(
                        name=path.name))
                    report = attempt(ex, path, worker=worker, workspace=ws)  # kept and counted, as check's is
                    click.echo(rep.terminal(report, style, terminal_columns()))
                    if report.full_marks:
                        click.echo(style(next_step(ex, ws), fg="green"))
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
    writable("--output", output or Path(f"{ex.id}-submission.zip"))  # before a regrade, not after it
    packed = hand_in(ex, ws, output, on_regrade=lambda: click.echo(
        _("{name} changed since its last check: checking it now…").format(name=ws.file(ex).name), err=True))
    click.echo(_("wrote {zip}: {file} (sha256 {sha}), its report ({score}/{max}) and your environment").format(
        zip=packed.path, file=ex.filename, sha=packed.sha256[:12], score=f"{packed.score:g}",
        max=f"{packed.max_score:g}"))
    if not packed.ok:
        click.echo(_("warning: the report packed with it is failing ({score}/{max}): `labkit check {exercise}` "
                     "shows why; hand it in anyway if you mean to").format(
            score=f"{packed.score:g}", max=f"{packed.max_score:g}", exercise=ex.id), err=True)
