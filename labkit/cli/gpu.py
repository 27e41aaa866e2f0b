"""`labkit selftest --gpu`: what this machine's GPUs prove about the kit, as one table."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from labkit.cli.dev import _root, root_option, solutions_option
from labkit.cli.options import UsageFailure, friendly
from labkit.paths import solutions_root


@click.command()
@click.option("--gpu", is_flag=True, required=True, help="Run every GPU check (the only self-test so far).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the rows as JSON here.")
@root_option
@solutions_option
@friendly
def selftest(gpu: bool, json_path: Path | None, root: Path | None, solutions: Path | None) -> None:
    """Prove the kit on this machine's GPUs: one table of check, expected, got, seconds.

    Every GPU check of every exercise on the reference solution (expected: passed) and on a
    known-wrong variant (expected: failed); a GPU check under bubblewrap and under
    `--sandbox container`; `labkit run exercise4 --full --epochs 1` (on the synthetic stand-in
    where Fashion-MNIST is absent); and doctor. Rows that need more GPUs than this machine
    has say "needs N GPUs" and count neither way, as do rows whose sandbox is missing.
    Exit 0 only when every row that ran got what was expected. Sized for under 8 minutes on one GPU.

    \b
    Example:
        labkit selftest --gpu --json gpu-selftest.json
    """
    from labkit.authoring.gpu_proof import SelftestError, selftest_gpu

    try:
        sys.exit(selftest_gpu(_root(root), solutions_root(solutions, _root(root)), json_path, click.echo,
                              lambda line: click.echo(line, err=True)))
    except SelftestError as exc:
        raise UsageFailure(str(exc)) from None
