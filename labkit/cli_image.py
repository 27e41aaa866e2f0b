"""`labkit welcome`: the course image's default command (a doctor summary, the exercises, how to start)."""

from __future__ import annotations

import click


@click.command()
def welcome() -> None:
    """Greet a student: versions, GPUs and warnings, the exercises, and how to start.

    The course image runs it when started without a command.

    Example: docker run --gpus all --shm-size=2g -v "$PWD":/work labkit
    """
    from labkit.catalog import CatalogError, all_exercises
    from labkit.devices import fingerprint, warnings

    fp = fingerprint()  # imports torch (inside, never at module import)
    notes = warnings(fp)
    gpus = ", ".join(f"{g['index']}: {g['name']} ({g['memory_gib']} GiB)" for g in fp.gpus) or "none visible"
    click.secho("labkit: a multi-GPU PyTorch course", bold=True)
    click.echo(f"  labkit {fp.labkit} · Python {fp.python} · torch {fp.torch or 'missing'} · CUDA {fp.cuda or '-'}")
    click.echo(f"  GPUs: {gpus}")
    if notes:
        click.secho(f"  {len(notes)} warning(s): run `labkit doctor` for the details and their fixes", fg="yellow")
    else:
        click.echo("  no warnings")
    click.echo("")
    click.secho("Exercises", bold=True)
    try:
        for ex in all_exercises():
            gpu = f"  (needs {ex.needs_gpus} GPUs)" if ex.needs_gpus > 1 else ""
            click.echo(f"  {ex.id:<10} {ex.title}{gpu}")
    except CatalogError as exc:
        click.echo(f"  cannot list the exercises: {exc}")
    click.echo("")
    click.secho("Start", bold=True)
    click.echo("  labkit init /work/course && cd /work/course   # your workspace (mount it: -v \"$PWD\":/work)")
    click.echo("  labkit start exercise1 && labkit check exercise1")
    click.echo("  labkit --help                                # every command; `labkit hint exercise1` for a hint")
