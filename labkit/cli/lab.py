"""The course's long-running commands: `labkit data fetch`, `labkit run EX --full`, `labkit bench EX`.

Which exercise offers `run` or `bench` is its exercise.toml's to say (full_run, scaling_builder)."""

from __future__ import annotations

from pathlib import Path

import click

from labkit.cli.options import UsageFailure, data_dir_option, exercise_argument, friendly, workspace_option
from labkit.course.course import resolve
from labkit.course.workspace import find


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
    from labkit.lab.data import DataError
    from labkit.lab.data import fetch as fetch_data

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
    if not ex.full_run:
        raise UsageFailure(f"{ex.id} has no full experiment (`labkit run --full` needs full_run = true)")
    path = ws.file(ex)
    if not path.is_file():
        raise UsageFailure(f"{path} does not exist: run `labkit start {ex.id}` first")
    from labkit.lab.data import DataError
    from labkit.lab.experiment import ExperimentError, load_module, run_full

    try:
        run_full(load_module(path), data_dir=data_dir, force=force, out_dir=out, epochs=epochs, echo=click.echo)
    except (ExperimentError, DataError) as exc:
        raise click.ClickException(str(exc)) from None


def worker_counts(_ctx: click.Context, _param: click.Parameter, value: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4], sorted and unique."""
    try:
        counts = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"expected worker counts like 1,2 or 1,2,4; got {value!r}") from None
    if not counts or counts[0] < 1:
        raise click.BadParameter("worker counts must be positive")
    return counts


@click.command()
@exercise_argument
@click.option("--workers", default="1,2", show_default=True, callback=worker_counts,
              help="Worker counts to launch, comma-separated.")
@click.option("--rounds", type=click.IntRange(1, 10), default=2, show_default=True,
              help="Launches per count, interleaved between counts.")
@click.option("--epochs", type=click.IntRange(2, 50), default=3, show_default=True,
              help="Epochs per launch; the first is a warm-up and is not timed.")
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Benchmark this file instead of the workspace's.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              help="Where exercise6-scaling.json and .png go.")
@workspace_option
@friendly
def bench(exercise: str, workers: list[int], rounds: int, epochs: int, file_: Path | None, out: Path,
          workspace: Path | None) -> None:
    """Measure how your DDP worker scales: seconds per epoch, speedup and efficiency per worker count.

    Launches your exercise6 worker with torchrun (one thread per process) on the small
    ResNet of the speedup check, prints the table and plots it against the ideal line.

    Example: labkit bench exercise6 --workers 1,2
    """
    import tempfile

    ex = resolve(exercise)
    if ex.scaling_builder is None:
        raise UsageFailure(f"{ex.id} has no scaling benchmark (`labkit bench` is for exercises with a scaling_builder)")
    path = file_ or find(workspace).file(ex)
    if not path.is_file():
        raise UsageFailure(f"{path} does not exist: run `labkit start {ex.id}` first")
    from labkit.lab.devices import usable_cpus

    cores = usable_cpus()
    if workers[-1] > cores:
        click.echo(f"note: {workers[-1]} one-thread workers on {cores} cores: expect no gain past {cores}")
    from labkit.lab.scaling import format_table, run_bench, save
    from labkit.sandbox.launcher import LaunchError, launch

    click.echo(f"{ex.id}: {', '.join(map(str, workers))} worker(s), {rounds} round(s) of {epochs} epochs "
               f"(the first untimed); file {path}")
    try:
        with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
            rows = run_bench(path, ex.scaling_builder, workers, Path(tmp), launch=launch, rounds=rounds,
                             epochs=epochs, echo=click.echo)
    except (LaunchError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(format_table(rows))
    data, plot = save(rows, out)
    click.echo(f"numbers: {data}; plot: {plot}")
