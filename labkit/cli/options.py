"""Options and error handling shared by the `labkit` commands."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from labkit.course.catalog import CatalogError
from labkit.course.workspace import WorkspaceError
from labkit.sandbox.errors import SandboxError, WorkerFailed


class UsageFailure(click.ClickException):
    """A one-line error and exit code 2 (unknown exercise, no workspace, missing file)."""

    exit_code = 2


def friendly(fn):
    """Turn the package's own errors into one-line messages instead of tracebacks."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (CatalogError, WorkspaceError, WorkerFailed, SandboxError) as exc:
            raise UsageFailure(str(exc)) from None

    return wrapper


def complete_exercises(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion: the course's exercise ids that start with what was typed (no torch, no grading)."""
    from labkit.course.course import all_exercises

    try:
        ids = [ex.id for ex in all_exercises()]
    except CatalogError:  # no exercises here: nothing to offer, never a traceback in the shell
        return []
    return [i for i in ids if i.startswith(incomplete.lower())]


def exercise_argument(fn):
    """The EXERCISE argument: exercise3, ex3 or 3 (the shell completes the ids)."""
    return click.argument("exercise", metavar="EXERCISE", shell_complete=complete_exercises)(fn)


def workspace_option(fn):
    return click.option("-w", "--workspace", type=click.Path(file_okay=False, path_type=Path),
                        help="The workspace folder (default: found from the current folder upward).")(fn)


def report_options(fn):
    fn = click.option("--gradescope", type=click.Path(dir_okay=False, path_type=Path),
                      help="Also write Gradescope's results.json here.")(fn)
    fn = click.option("--junit", type=click.Path(dir_okay=False, path_type=Path),
                      help="Also write a JUnit XML report here.")(fn)
    fn = click.option("--json", "as_json", is_flag=True,
                      help="Print the reports as JSON instead of text: a list, one report per exercise.")(fn)
    return fn


def data_dir_option(fn):
    return click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Where Fashion-MNIST lives (default: $LABKIT_DATA, else ~/.cache/labkit/data).")(fn)


def sandbox_option(fn):
    return click.option("--sandbox", type=click.Choice(["auto", "bwrap", "container", "user", "none"]),
                        default="auto", show_default=True,
                        help="Where submissions run: bubblewrap (auto: when it works here; `labkit grade` then tries "
                        "the container and refuses rather than run a class unconfined), the student image "
                        "(container, podman), as nobody without namespaces (user, as root), or none; the report "
                        "says which.")(fn)
