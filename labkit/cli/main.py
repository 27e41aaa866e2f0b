"""The `labkit` command: one group; each family of commands lives in its own module beside this one."""

from __future__ import annotations

import click

import labkit
from labkit.cli.check import check, submit, watch
from labkit.cli.dev import dev, pack
from labkit.cli.doctor import doctor, welcome
from labkit.cli.grade import grade
from labkit.cli.gradescope import gradescope
from labkit.cli.lab import bench, data, run
from labkit.cli.workspace import hint, init_cmd, list_cmd, reset, start
from labkit.i18n import choose, set_language


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


for command in (init_cmd, list_cmd, start, reset, hint, check, watch, submit, doctor, welcome, data, run, bench,
                grade, gradescope, dev, pack):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="labkit")
