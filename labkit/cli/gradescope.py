"""`labkit gradescope`: build an autograder zip for Gradescope, and grade a submission inside it."""

from __future__ import annotations

from pathlib import Path

import click

from labkit.cli.options import complete_exercises, friendly


@click.group()
def gradescope() -> None:
    """Grade on Gradescope: build the autograder zip to upload, which runs labkit on each submission.

    \b
    Example:
        labkit gradescope build exercise2 exercise3 -o autograder.zip --checks-dir instructor/
        (upload autograder.zip as the assignment's autograder; Ubuntu 24.04 base image)
    """


@gradescope.command()
@click.argument("exercises", nargs=-1, required=True, metavar="EXERCISE...", shell_complete=complete_exercises)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the autograder zip.")
@click.option("--checks-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The instructor's checks directory (DIR/<exercise>/checks.py): its hidden checks go in the zip.")
@friendly
def build(exercises: tuple[str, ...], output: Path, checks_dir: Path | None) -> None:
    """Write the autograder zip to upload to Gradescope for these exercises.

    It holds setup.sh, run_autograder, labkit's source and the exercises; students submit
    their exercise files (exercise2.py, ...). The reference solutions are never in the zip.

    Example: labkit gradescope build exercise2 -o autograder.zip
    """
    from labkit.classroom.gradescope import build as build_zip

    path = build_zip(list(exercises), output, checks_dir=checks_dir)
    click.echo(f"wrote {path}: upload it as the Gradescope assignment's autograder (Ubuntu 24.04 base image)")


@gradescope.command(name="run")
@click.argument("exercises", nargs=-1, required=True, metavar="EXERCISE...", shell_complete=complete_exercises)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("/autograder"),
              show_default=True, help="Gradescope's folder: submission/ is graded, results/results.json written.")
@click.option("--checks-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The instructor's checks directory, for hidden checks.")
@friendly
def run_submission(exercises: tuple[str, ...], root: Path, checks_dir: Path | None) -> None:
    """Grade ROOT/submission into ROOT/results/results.json (run_autograder's job).

    Each file is copied alone into a fresh folder and graded there; results.json is written even
    when grading itself fails.

    Example: labkit gradescope run exercise2 --root /autograder
    """
    from labkit.classroom.gradescope import run

    results = run(list(exercises), root, checks_dir=checks_dir)
    most = results.get("extra_data", {}).get("max_score")
    click.echo(results["output"])
    click.echo(f"score {results['score']:g}/{'?' if most is None else f'{most:g}'} written to "
               f"{root / 'results' / 'results.json'}")
