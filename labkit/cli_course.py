"""The course's long-running commands: `labkit data fetch` and `labkit run exercise4 --full`."""

from __future__ import annotations

from pathlib import Path

import click

from labkit.catalog import resolve
from labkit.cli_options import UsageFailure, data_dir_option, exercise_argument, friendly, workspace_option
from labkit.workspace import find


@click.group()
def data() -> None:
    """Get the course's data set (Fashion-MNIST); checks fall back to a synthetic stand-in.

    Example: labkit data fetch
    """


@data.command()
@data_dir_option
def fetch(data_dir: Path | None) -> None:
    """Download Fashion-MNIST where the network allows, and say clearly when it cannot.

    Example: labkit data fetch --data-dir ~/data
    """
    from labkit.data import DataError
    from labkit.data import fetch as fetch_data

    try:
        click.echo(fetch_data(data_dir))
    except DataError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@exercise_argument
@click.option("--full", is_flag=True, required=True, help="The course's real experiment (GPU machines).")
@click.option("--force", is_flag=True, help="Run it even without a GPU (hours on a CPU).")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              help="Where the JSON results and the comparison plot go.")
@data_dir_option
@workspace_option
@friendly
def run(exercise: str, full: bool, force: bool, epochs: int, out: Path, data_dir: Path | None,
        workspace: Path | None) -> None:
    """Run your exercise4 for real: Fashion-MNIST on one GPU and on two, as the course notes did.

    Uses your workspace's exercise4.py (resnet18 and train) and prints test accuracy and
    seconds per epoch for each run, then writes exercise4-full.png.

    Example: labkit run exercise4 --full
    """
    ex, ws = resolve(exercise), find(workspace)
    if ex.id != "exercise4":
        raise UsageFailure(f"`labkit run --full` is the exercise4 experiment; {ex.id} has none")
    path = ws.file(ex)
    if not path.is_file():
        raise UsageFailure(f"{path} does not exist: run `labkit start {ex.id}` first")
    from labkit.data import DataError
    from labkit.experiment import ExperimentError, load_module, run_full

    try:
        run_full(load_module(path), data_dir=data_dir, force=force, out_dir=out, epochs=epochs, echo=click.echo)
    except (ExperimentError, DataError) as exc:
        raise click.ClickException(str(exc)) from None
