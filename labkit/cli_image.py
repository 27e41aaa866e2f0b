"""`labkit welcome`: the course image's default command (a doctor summary, the exercises, how to start)."""

from __future__ import annotations

import click

from labkit.i18n import _


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
    gpus = ", ".join(f"{g['index']}: {g['name']} ({g['memory_gib']} GiB)" for g in fp.gpus) or _("none visible")
    click.secho(_("labkit: a multi-GPU PyTorch course"), bold=True)
    click.echo(f"  labkit {fp.labkit} · Python {fp.python} · torch {fp.torch or 'missing'} · CUDA {fp.cuda or '-'}")
    click.echo("  " + _("GPUs: {gpus}").format(gpus=gpus))
    if notes:
        click.secho("  " + _("{n} warning(s): run `labkit doctor` for the details and their fixes").format(
            n=len(notes)), fg="yellow")
    else:
        click.echo("  " + _("no warnings"))
    click.echo("")
    click.secho(_("Exercises"), bold=True)
    try:
        for ex in all_exercises():
            gpu = "  " + _("(needs {n} GPUs)").format(n=ex.needs_gpus) if ex.needs_gpus > 1 else ""
            click.echo(f"  {ex.id:<10} {ex.shown_title}{gpu}")
    except CatalogError as exc:
        click.echo("  " + _("cannot list the exercises: {error}").format(error=exc))
    click.echo("")
    click.secho(_("Start"), bold=True)
    click.echo("  labkit init /work/course && cd /work/course   # " + _("your workspace (mount it: -v \"$PWD\":/work)"))
    click.echo("  labkit start exercise1 && labkit check exercise1")
    click.echo("  labkit --help                                # "
               + _("every command; `labkit hint exercise1` for a hint"))
