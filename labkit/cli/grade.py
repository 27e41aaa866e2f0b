"""Grading a class (`labkit grade`) and handing work in (`labkit submit`)."""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from pathlib import Path

import click

from labkit.cli.options import UsageFailure, complete_exercises, friendly, sandbox_option
from labkit.course.course import resolve
from labkit.i18n import clip, pad
from labkit.text import block, visible


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


@click.command()
@click.argument("submissions", type=click.Path(exists=True, path_type=Path))
@click.option("--exercise", "-e", required=True, shell_complete=complete_exercises,
              help="The exercise every submission answers (exercise2, ex2, 2).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None,
              help="Submissions graded at once (default: the number of cores).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("grades"), show_default=True,
              help="Results folder; rerunning into it grades only what is missing or changed.")
@click.option("--checks-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Instructor checks: DIR/EXERCISE/checks.py and visibility.toml (hidden checks).")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with id and name columns: names in the results, missing students flagged.")
@click.option("--format", "formats", type=click.Choice(["gradescope", "junit"]), multiple=True,
              help="Also write Gradescope results.json per student, or one JUnit XML file (repeatable).")
@click.option("--student", "students", multiple=True, metavar="ID",
              help="Regrade this student even if a result is there (repeatable); the others' results are reused.")
@click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
              help="Where students are graded: here (threads), or as a Slurm job array (docs/slurm.md).")
@click.option("--partition", help="Slurm: the partition (GPU nodes for exercises whose checks need GPUs).")
@click.option("--account", help="Slurm: the account the array is charged to.")
@click.option("--qos", help="Slurm: the quality of service.")
@click.option("--max-parallel", type=click.IntRange(1), help="Slurm: array tasks running at once.")
@click.option("--cpus-per-task", type=click.IntRange(1), default=1, show_default=True,
              help="Slurm: CPUs per task (one warm worker, as one local job).")
@click.option("--container", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Slurm: run each task in this apptainer image (.sif of the student image; --nv for GPUs).")
@click.option("--scratch", type=click.Path(file_okay=False, path_type=Path),
              help="Slurm: staging, results and logs on a file system the nodes see (default: OUT/slurm).")
@click.option("--max-bytes", type=int, default=1_000_000, show_default=True, hidden=True)
@sandbox_option
@friendly
def grade(submissions: Path, exercise: str, jobs: int | None, out: Path, checks_dir: Path | None,
          roster: Path | None, formats: tuple[str, ...], students: tuple[str, ...], executor: str,
          partition: str | None, account: str | None, qos: str | None, max_parallel: int | None,
          cpus_per_task: int, container: Path | None, scratch: Path | None, max_bytes: int, sandbox: str) -> None:
    """Grade a whole class: a folder (one subfolder or file per student) or an LMS .zip.

    Understands Canvas downloads (name_userid_submissionid_file.py) and Gradescope's
    submission export. Writes OUT/students/ID.json (full results), OUT/feedback/ID.txt
    (what the student may see: hidden checks withheld), OUT/grades.csv and
    OUT/summary.png, and prints the class summary. A crashing or hanging submission
    never stops the batch; a killed batch resumes where it stopped. Submissions run in
    bubblewrap or the container; where neither works it refuses unless --sandbox none.

    \b
    Example:
        labkit grade submissions.zip --exercise exercise2 --roster roster.csv
        labkit grade submissions.zip -e 2 --student 1003     # regrade one student
        labkit grade submissions.zip -e 2 --executor slurm --partition gpu
    """
    from labkit.classroom import summary
    from labkit.classroom.batch import grades_csv, not_on_roster, run_batch, with_roster
    from labkit.classroom.intake import IntakeError, collect
    from labkit.classroom.roster import missing, read_roster
    from labkit.files import write_atomic
    from labkit.grading import report as rep
    from labkit.grading.results import Report
    from labkit.sandbox.modes import for_class

    ex = resolve(exercise)
    slurm = None
    given = [n for n, v in (("--partition", partition), ("--account", account), ("--qos", qos),
                            ("--max-parallel", max_parallel), ("--container", container), ("--scratch", scratch)) if v]
    if executor == "local" and given:
        raise UsageFailure(f"{given[0]} is for --executor slurm (docs/slurm.md)")
    if executor == "slurm":  # imported only here; each node chooses (or refuses) its own sandbox
        from labkit.classroom.slurm import SlurmExecutor, SlurmOptions

        slurm = SlurmExecutor(SlurmOptions(partition, account, qos, max_parallel, container, scratch,
                                           cpus=cpus_per_task, report=lambda line: click.echo(visible(line), err=True)))
    mode = sandbox if slurm else for_class(sandbox)  # before anything is unpacked: no sandbox here is a refusal
    from labkit.lab.devices import usable_cpus

    cores = usable_cpus()
    jobs = jobs or cores
    try:
        names = read_roster(roster) if roster else {}
        with tempfile.TemporaryDirectory(prefix="labkit-staging-") as staging:
            entries = collect(submissions, Path(staging), filename=ex.filename, max_bytes=max_bytes, exercise=ex.id)
            if not entries:
                raise UsageFailure(f"no submissions found in {submissions}")
            unknown = sorted(set(students) - {e.student for e in entries})
            if unknown:
                raise UsageFailure(f"--student {visible(unknown[0])}: no submission from that student in "
                                   f"{submissions}")
            unconfined = " (no isolation: rlimits only, as you asked)" if mode == "none" else ""
            click.echo(f"{ex.id}: sandbox {mode}{unconfined}; {len(entries)} submission(s), {jobs} job(s); "
                       f"results in {out}/", err=True)
            for entry in entries:  # ids that would have shared a result file were renamed: say so
                if entry.note:
                    click.echo(f"note: {visible(entry.note)}", err=True)
            show = _progress_printer()
            warm = threading.Thread(target=summary.warm, daemon=True)  # summary.png's matplotlib, meanwhile

            def progress(p) -> None:
                if warm.ident is None:  # after the first student: torch is imported and the workers are up
                    warm.start()
                show(p)

            outcomes = run_batch(entries, ex, out, jobs=jobs, checks_dir=checks_dir, sandbox=mode,
                                 on_progress=progress, regrade=frozenset(students), on_resume=_say_resumed,
                                 executor=slurm)
            if warm.ident is not None:
                warm.join()  # an import of matplotlib half-done in that thread would break the plot's own
    except IntakeError as exc:
        raise UsageFailure(visible(exc)) from None  # it may name a student's file or folder
    outcomes = with_roster(outcomes, names, ex)
    write_atomic(out / "grades.csv", grades_csv(outcomes))
    summary.plot(outcomes, out / "summary.png", ex.id)
    reports = [Report.from_dict(o.report) for o in outcomes if o.report]
    if "junit" in formats:
        write_atomic(out / "junit.xml", rep.to_junit(reports))
    if "gradescope" in formats:
        _write_gradescope(outcomes, out)
    click.echo(summary.table(outcomes, ex.id, not_on_roster(outcomes, names)))
    if names and missing(entries, names):
        click.echo(f"{len(missing(entries, names))} student(s) on the roster submitted nothing", err=True)
    click.echo(f"wrote {out / 'grades.csv'}, {out / 'summary.png'}, {out}/students/, {out}/feedback/", err=True)


def _write_gradescope(outcomes: list, out: Path) -> None:
    """One Gradescope results.json per student (instructors import them or compare with Gradescope's own)."""
    from labkit.classroom.intake import safe_id
    from labkit.files import write_atomic
    from labkit.grading.report import to_gradescope
    from labkit.grading.results import Report

    for o in outcomes:
        if o.report:
            data = to_gradescope([Report.from_dict(o.report)])
        else:
            data = {"score": 0, "execution_time": 0, "output": block(f"Not graded: {o.error}"), "tests": []}
        write_atomic(out / "gradescope" / f"{safe_id(o.student)}.json", json.dumps(data, indent=2))


def _say_resumed(reused: int, todo: int) -> None:
    """A resumed run says what it reuses: results of an earlier run into the same --out."""
    if reused:
        click.echo(f"resumed: {reused} result(s) reused from an earlier run (same file, exercise and checks), "
                   f"{todo} to grade", err=True)


def _progress_printer():
    """A one-line progress bar with an ETA on a terminal; a line per student otherwise (logs, CI)."""
    tty = sys.stderr.isatty()

    def show(p) -> None:
        width = 24
        filled = round(width * p.done / p.total)
        o = p.last
        what = f"{o.score:g}/{o.max_score:g}" if o.status == "graded" else o.status
        # The id is the student's: escaped, so a newline cannot forge a line nor ESC reach the terminal; clipped on a
        # terminal, so one long id cannot wrap the line that \r redraws.
        student = clip(visible(o.student), 30) if tty else visible(o.student)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {p.done}/{p.total} · {student}: {what} · "
                f"ETA {_clock(p.eta)}")
        click.echo(("\r" + pad(line, 79)) if tty else line, err=True, nl=not tty or p.done == p.total)

    return show
