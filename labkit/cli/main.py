"""The `labkit` command: one group; each family of commands lives in its own module beside this one."""

from __future__ import annotations

import errno
import os
import signal
import sys

import click

import labkit
from labkit.cli.check import check, submit, watch
from labkit.cli.dev import dev, pack
from labkit.cli.doctor import doctor, welcome
from labkit.cli.gpu import selftest
from labkit.cli.grade import grade
from labkit.cli.gradescope import gradescope
from labkit.cli.lab import bench, data, run
from labkit.cli.workspace import hint, init_cmd, list_cmd, reset, show, start
from labkit.i18n import choose, set_language


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, invoke_without_command=True)
@click.version_option(labkit.__version__, prog_name="labkit")
@click.option("--lang", type=click.Choice(["en", "zh", "zh_CN", "zh-CN"], case_sensitive=False), default=None,
              help="Language of the output: en or zh (zh_CN) (default: $LABKIT_LANG, then the locale, "
              "e.g. LANG=zh_CN.UTF-8).")
@click.pass_context
def cli(ctx: click.Context, lang: str | None) -> None:
    """labkit: exercises for multi-GPU PyTorch, graded on your machine.

    \b
    Example:
        labkit init course && cd course
        labkit start exercise1      # copy the starter into the workspace
        labkit check exercise1      # grade it: a line per check, a score
        labkit hint exercise1       # stuck? one hint at a time
        labkit --lang zh check exercise1   # 中文输出
    """
    set_language(choose(lang))
    if ctx.invoked_subcommand is None:  # bare `labkit`: the help, and success
        click.echo(ctx.get_help())


for command in (init_cmd, list_cmd, start, show, reset, hint, check, watch, submit, doctor, welcome, data, run, bench,
                grade, gradescope, dev, pack):
    cli.add_command(command)
cli.add_command(selftest)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, `kill`, the terminal closing
_signalled = 0  # the first of them received
_ending = False  # main() has decided the exit status: a signal now would only break the interpreter's cleanup


def main() -> None:
    """The `labkit` script; Ctrl-C, SIGTERM and SIGHUP unwind it (workers stop, folders go) and exit 128 + signal."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # `nohup` and `cmd &` ignore some: so do we
            signal.signal(signum, _stop)
    global _ending
    try:
        code = _run()
    except BaseException:
        if not _signalled:
            raise
        how = "interrupted (Ctrl-C)" if _signalled == signal.SIGINT else f"stopped by {signal.Signals(_signalled).name}"
        try:
            click.echo(f"labkit: {how}", err=True)
        except OSError:  # SIGHUP: the terminal is gone
            pass
        code = 128 + _signalled
    finally:
        _ending = True
    sys.exit(code)


def _stop(signum: int, frame: object) -> None:
    """The first stop signal unwinds the program; a repeat, or one during the exit, is ignored (waits are bounded)."""
    global _signalled
    if _signalled or _ending:
        return
    _signalled = signum
    worker = sys.modules.get("labkit.sandbox.worker")  # loaded only by commands that grade
    if worker is not None:
        worker.stopping(signum)  # waits on the grading worker end at once, in every thread
    if signum == signal.SIGINT:
        raise KeyboardInterrupt  # what `labkit watch` stops on
    raise SystemExit(128 + signum)


def _run() -> int:
    """The group as Click's standalone mode runs it, except that an interruption is left to main()."""
    try:
        code = cli.main(prog_name="labkit", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:  # Ctrl-C, or the end of input at a prompt
        if _signalled:
            raise
        click.echo("Aborted!", err=True)
        return 1
    except OSError as exc:  # `labkit list | head`: the reader went away; say nothing more
        if exc.errno != errno.EPIPE:
            raise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code if isinstance(code, int) else 0
