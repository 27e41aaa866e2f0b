"""`labkit dev` (author and self-check exercises) and `labkit pack` (the student and grader halves)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labkit.cli.options import UsageFailure, complete_exercises, friendly
from labkit.course.catalog import CatalogError, course_root
from labkit.course.course import resolve
from labkit.paths import solutions_root


def root_option(fn):
    return click.option("--root", type=click.Path(file_okay=False, path_type=Path),
                        help="The exercises folder (default: $LABKIT_EXERCISES, else the checkout's exercises/).")(fn)


def solutions_option(fn):
    return click.option("--solutions", type=click.Path(file_okay=False, path_type=Path),
                        help="The reference solutions (default: $LABKIT_SOLUTIONS, else solutions/ beside "
                             "the exercises folder).")(fn)


def course_option(fn):
    return click.option("--course", type=click.Path(dir_okay=False, path_type=Path),
                        help="The course file (default: $LABKIT_COURSE, else course.toml beside the exercises "
                             "folder, else every exercise).")(fn)


def _root(root: Path | None) -> Path:
    return Path(root).resolve() if root else course_root()


@click.group()
def dev() -> None:
    """Author exercises: scaffold a new one, and self-check the course.

    \b
    Example:
        labkit dev new exercise9 --title "Gradient accumulation"
        labkit dev check exercise9
    """


@dev.command()
@click.argument("exercise_id", metavar="EXERCISE_ID")
@click.option("--title", required=True, help="The one-line title `labkit list` shows.")
@root_option
@solutions_option
@course_option
@friendly
def new(exercise_id: str, title: str, root: Path | None, solutions: Path | None, course: Path | None) -> None:
    """Scaffold a new exercise that works at once: its solution passes, its starter fails.

    Writes ROOT/EXERCISE_ID/{exercise.toml, README.md, starter.py, checks.py} and
    SOLUTIONS/EXERCISE_ID.py, and adds it to course.toml's exercises when the course lists
    them; refuses to overwrite an existing exercise or to write into an installed labkit.

    \b
    Example:
        labkit dev new exercise9 --title "Gradient accumulation"
    """
    from labkit.authoring.scaffold import add_to_course, scaffold
    from labkit.course.course import find_course

    written = scaffold(exercise_id, title, _root(root), solutions_root(solutions, _root(root)))
    for path in written:
        click.echo(f"wrote {path}")
    said = add_to_course(find_course(course, _root(root)), exercise_id)
    if said:
        click.echo(said)
    click.echo(f"next: edit them, then `labkit dev check {exercise_id}" + (f" --root {root}`" if root else "`"))


def _folders(names: tuple[str, ...], root: Path) -> list[Path]:
    """The exercise folders named (a folder name, or exercise3 / ex3 / 3), else every one under root."""
    if not names:
        folders = sorted(d for d in root.iterdir() if (d / "exercise.toml").is_file())
        if not folders:
            raise UsageFailure(f"no exercises in {root}")
        return folders
    return [root / n if (root / n / "exercise.toml").is_file() else resolve(n, root).folder for n in names]


@dev.command(name="check")
@click.argument("exercises", nargs=-1, metavar="[EXERCISE]...", shell_complete=complete_exercises)
@root_option
@solutions_option
@course_option
@click.option("--margin", type=click.FloatRange(0.05, 1.0), default=0.5, show_default=True,
              help="A check's time on the solution must stay under this fraction of its limit.")
@friendly
def check(exercises: tuple[str, ...], root: Path | None, solutions: Path | None, course: Path | None,
          margin: float) -> None:
    """Self-check exercises (all, or those named): what CI runs over the course.

    Metadata valid (unknown keys, missing fields: file and line); statement present; every
    check has a title, points and a hint; points and needs_gpus match the checks; the
    reference solution passes every check this machine can run, well inside its time
    limits; the starter scores zero; course.toml valid. One line per problem; exit 1 on any.

    \b
    Example:
        labkit dev check
        labkit dev check exercise9 --root my-exercises
    """
    from labkit.authoring.selfcheck import course_problems, self_check
    from labkit.course.course import current_course, load_course

    root = _root(root)
    course, course_bad = None, 0
    try:
        course = load_course(course) if course else current_course(root=root)
    except CatalogError as exc:
        click.echo(f"course: {click.style('✗', fg='red')} {exc}")
        course_bad = 1
    folders = _folders(exercises, root)
    if course is not None and not exercises:
        for problem in course_problems(course, folders):
            click.echo(f"course: {click.style('✗', fg='red')} {problem}")
            course_bad += 1

    def show(outcome) -> None:
        for problem in outcome.problems:
            click.echo(f"{outcome.id}: {click.style('✗', fg='red')} {problem}")
        if not outcome.problems:
            click.echo(f"{outcome.id}: {click.style('✓', fg='green')} " + "; ".join(outcome.notes[:2]))
        for note in outcome.notes[2:]:
            click.echo(f"{outcome.id}:   note: {note}")

    outcomes = self_check(folders, solutions_root(solutions, root), course=course, margin=margin, on_outcome=show)
    bad = [o for o in outcomes if o.problems]
    count = sum(len(o.problems) for o in bad) + course_bad
    if count:
        click.echo(f"dev check: {count} problem(s) in {len(bad)} of {len(outcomes)} exercise(s)"
                   + (" and the course file" if course_bad else ""))
        sys.exit(1)
    click.echo(f"dev check: {len(outcomes)} exercise(s) ok")


@click.command()
@click.argument("half", type=click.Choice(["student", "grader"]))
@click.argument("exercises", nargs=-1, metavar="[EXERCISE]...", shell_complete=complete_exercises)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The zip to write.")
@course_option
@click.option("--checks-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Grader pack: the hidden checks (default: course.toml's checks_dir).")
@root_option
@solutions_option
@friendly
def pack(half: str, exercises: tuple[str, ...], output: Path, course: Path | None, checks_dir: Path | None,
         root: Path | None, solutions: Path | None) -> None:
    """Build an assignment's student or grader half from the course file (or only the EXERCISEs named).

    student: starters, statements, exercise.toml, the public checks.py and course.toml;
    never solutions or hidden checks. grader: labkit's source, the exercises, solutions,
    hidden checks (checks/) and course.toml: all `labkit grade` and `labkit gradescope build` need.

    \b
    Example:
        labkit pack student -o hw1.zip --course hw1.toml
        labkit pack grader -o hw1-grader.zip --course hw1.toml --checks-dir hidden-checks
    """
    from labkit.authoring.pack import grader_pack, student_pack
    from labkit.course.course import current_course, load_course

    root = _root(root)
    the_course = load_course(course) if course else current_course(root=root)
    if half == "student":
        if checks_dir:
            raise UsageFailure("--checks-dir is for the grader pack: hidden checks never go to students")
        packed = student_pack(output, the_course, exercises, root)
    else:
        packed = grader_pack(output, the_course, solutions_root(solutions, root), names=exercises,
                             checks_dir=checks_dir, root=root)
    for warning in packed.warnings:
        click.echo(click.style(f"warning: {warning}", fg="yellow"), err=True)
    click.echo(f"wrote {packed.path}: {half} pack of {', '.join(packed.exercises)} ({len(packed.names)} files)")
