"""The machine as labkit sees it: `doctor` (the environment fingerprint and its warnings) and `welcome`."""

from __future__ import annotations

import json
import sys

import click

from labkit.i18n import _


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the fingerprint as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when there is any warning.")
@click.option("--gpus", "gpu_view", is_flag=True,
              help="Each GPU's memory, utilisation and processes (nvidia-smi), instead of the fingerprint.")
@click.option("--watch", "watch_seconds", type=click.FloatRange(min=0.1), metavar="SECONDS",
              help="With --gpus: redraw every SECONDS until Ctrl-C, like `watch -n 1 nvidia-smi`.")
def doctor(as_json: bool, strict: bool, gpu_view: bool, watch_seconds: float | None) -> None:
    """Print the environment fingerprint: versions, GPUs, CUDA variables, warnings.

    Example: labkit doctor; labkit doctor --gpus --watch 1 (beside a training run)
    """
    if watch_seconds is not None and not gpu_view:
        raise click.UsageError("--watch redraws the GPU view: use it with --gpus (labkit doctor --gpus --watch 1)")
    if gpu_view:
        from labkit.lab.gpuwatch import watch

        watch(watch_seconds, click.echo, click.clear)
        return
    from labkit.classroom.slurm_cli import doctor_lines
    from labkit.lab.devices import fingerprint, format_p2p, warnings
    from labkit.lab.pins import torch_pin_warning
    from labkit.sandbox.modes import sandbox_report

    fp = fingerprint()
    notes = warnings(fp) + [w for w in [torch_pin_warning()] if w]
    sandboxes, slurm = sandbox_report(), doctor_lines()
    if as_json:
        click.echo(json.dumps({**fp.as_dict(), "warnings": notes,
                               "sandboxes": {s.name: {"works": s.works, "why": s.why} for s in sandboxes},
                               "slurm": [{"what": w, "ok": ok, "detail": d} for w, ok, d in slurm]}, indent=2))
    else:
        for key, value in fp.as_dict().items():
            if key == "gpus":
                value = "; ".join(f"{g['index']}: {g['name']} ({g['memory_gib']} GiB, compute capability "
                                  f"{g.get('capability', '?')})" for g in value) or "none"
            elif key == "driver_gpus":  # what nvidia-smi lists, whether or not torch can use them
                value = "; ".join(f"{g['index']}: {g['name']} (compute capability {g['capability'] or '?'}) "
                                  f"{g['uuid']}" for g in value) or ("none" if fp.driver else "-")
            elif key == "arch_list":
                value = " ".join(value) or "-"
            elif key == "env":
                value = " ".join(f"{k}={v}" for k, v in value.items()) or "no CUDA_* variables set"
            elif key == "p2p":  # a matrix: its own lines below, only where there are GPU pairs
                continue
            click.echo(f"{key:<12} {value if value is not None else '-'}")
        seen = str(len(fp.driver_gpus)) if fp.driver else "?"
        click.echo(f"{'GPUs':<12} the driver sees {seen}, torch sees {len(fp.gpus)}")
        if len(fp.gpus) >= 2:
            click.echo(_("peer-to-peer access (can the row GPU read the column GPU directly?):"))
            for line in format_p2p(fp.p2p):
                click.echo(f"  {line}")
        for box in sandboxes:  # what `check --sandbox` and `grade --sandbox` can use here
            state = _("works") if box.works else _("no: {why}").format(why=box.why)
            click.echo(f"{'sandbox ' + box.name:<12} {state}")
        for what, ok, detail in slurm:  # `labkit grade --executor slurm` (docs/slurm.md)
            click.echo(f"{what:<12} {'ok' if ok else 'no'}: {detail}")
        for note in notes:
            click.echo(click.style(_("warning: {note}").format(note=note), fg="yellow"))
    sys.exit(1 if strict and notes else 0)


@click.command()
def welcome() -> None:
    """Greet a student: versions, GPUs and warnings, the exercises, and how to start.

    The course image runs it when started without a command.

    Example: docker run --gpus all --shm-size=2g -v "$PWD":/work labkit
    """
    from labkit.course.catalog import CatalogError
    from labkit.course.course import all_exercises
    from labkit.lab.devices import fingerprint, warnings

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
