"""The `labkit` command: parse, call the package, print. No grading logic lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

import labkit
from labkit.catalog import Exercise, all_exercises, resolve
from labkit.cli_course import bench, data, run
from labkit.cli_dev import dev, pack
from labkit.cli_grade import grade, submit
from labkit.cli_gradescope import gradescope as gradescope_group
from labkit.cli_image import welcome
from labkit.cli_options import (
    UsageFailure,
    exercise_argument,
    friendly,
    report_options,
    sandbox_option,
    workspace_option,
)
from labkit.cli_watch import watch
from labkit.i18n import _, choose, language, set_language
from labkit.workspace import WorkspaceError, find, init


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(labkit.__version__, prog_name="labkit")
@click.option("--lang", type=click.Choice(["en", "zh_CN"]), default=None,
              help="Language of the output (default: $LABKIT_LANG, then the locale, e.g. LANG=zh_CN.UTF-8).")
def cli(lang: str | None) -> None:
    """labkit: exercises for multi-GPU PyTorch, graded on your machine.

    \b
    Example:
        labkit init course && cd course
        labkit start exercise1      # copy the starter into the workspace
        labkit check exercise1      # grade it: a line per check, a score
        labkit hint exercise1       # stuck? one hint at a time
        labkit --lang zh_CN check exercise1   # 中文输出
    """
    set_language(choose(lang))


@cli.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init_cmd(directory: Path) -> None:
    """Make DIRECTORY (default: here) a workspace.

    Example: labkit init course
    """
    ws = init(directory)
    click.echo(_("workspace ready in {root}\nnext: cd {directory} && labkit start exercise1").format(
        root=ws.root, directory=directory))


@cli.command("list")
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


@cli.command()
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


@cli.command()
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


@cli.command()
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


@cli.command()
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
    from labkit import report as rep
    from labkit.engine import grade
    from labkit.runner import Worker

    ok, reports = True, []
    style = click.style if not as_json else (lambda text, **_: text)
    with Worker(sandbox, preload={m for ex, _, _ in jobs for m in ex.preload}) as worker:
        for ex, path, ws in jobs:
            if not as_json:
                click.echo(rep.header_line(ex.id, ex.shown_title, style))
            show = (lambda r: click.echo(rep.check_line(r, style))) if not as_json else None
            report = grade(ex, path, worker=worker, on_result=show, only=only, checks_dir=checks_dir)
            reports.append(report)
            ok &= report.ok
            if ws is not None and not only:  # a partial run says nothing about the exercise's progress
                ws.save_report(ex, rep.to_json(report))
                ws.record(ex, report.score, report.max_score, report.ok and report.score == report.max_score)
            if not as_json:
                click.echo(rep.summary(report, style) + "\n")
    if as_json:
        data = [json.loads(rep.to_json(r)) for r in reports]
        click.echo(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
    elif len(reports) > 1:
        click.echo(rep.scorecard(reports))
    if junit:
        junit.write_text(rep.to_junit(reports), encoding="utf-8")
    if gradescope:
        gradescope.write_text(json.dumps(rep.to_gradescope(reports), indent=2), encoding="utf-8")
    sys.exit(0 if ok else 1)


def _jobs(names: tuple[str, ...], every: bool, file_: Path | None,
          workspace: Path | None) -> list[tuple[Exercise, Path, object]]:
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


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the fingerprint as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when there is any warning.")
def doctor(as_json: bool, strict: bool) -> None:
    """Print the environment fingerprint: versions, GPUs, CUDA variables, warnings.

    Example: labkit doctor
    """
    from labkit.devices import fingerprint, format_p2p, warnings

    fp = fingerprint()
    notes = warnings(fp)
    if as_json:
        click.echo(json.dumps({**fp.as_dict(), "warnings": notes}, indent=2))
    else:
        for key, value in fp.as_dict().items():
            if key == "gpus":
                value = "; ".join(f"{g['index']}: {g['name']} ({g['memory_gib']} GiB)" for g in value) or "none"
            elif key == "env":
                value = " ".join(f"{k}={v}" for k, v in value.items()) or "no CUDA_* variables set"
            elif key == "p2p":  # a matrix: its own lines below, only where there are GPU pairs
                continue
            click.echo(f"{key:<12} {value if value is not None else '-'}")
        if len(fp.gpus) >= 2:
            click.echo(_("peer-to-peer access (can the row GPU read the column GPU directly?):"))
            for line in format_p2p(fp.p2p):
                click.echo(f"  {line}")
        for note in notes:
            click.echo(click.style(_("warning: {note}").format(note=note), fg="yellow"))
    sys.exit(1 if strict and notes else 0)


cli.add_command(data)
cli.add_command(run)
cli.add_command(bench)
cli.add_command(grade)
cli.add_command(submit)
cli.add_command(gradescope_group)
cli.add_command(welcome)
cli.add_command(dev)
cli.add_command(pack)
cli.add_command(watch)


def main() -> None:
    cli(prog_name="labkit")
