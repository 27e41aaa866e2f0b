"""`labkit selftest --gpu`: every GPU check on the solution (passes) and on a known-wrong variant (fails), a GPU
check under bubblewrap and in the container, `labkit run --full --epochs 1` and doctor, as one table. Rows needing
more GPUs than are here, or a missing tool, count neither way."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labkit.authoring.mutants import MUTANTS
from labkit.authoring.selfcheck import _first_line as first_line
from labkit.course.catalog import Exercise, find_exercises
from labkit.grading import engine
from labkit.grading.plan import load_checks
from labkit.lab import devices
from labkit.paths import IMPORT_ROOT

SANDBOX_CHECK = "exercise1.gpu_copies"  # real copies to cuda:0 and pinned memory: the device nodes must all work
FULL_RUN_IMAGES = (16384, 2048)  # the synthetic stand-in's training and test images, when Fashion-MNIST is absent
FULL_RUN_SECONDS, DOCTOR_SECONDS = 300, 120  # limits of the two commands run in a process of their own


class SelftestError(Exception):
    """The self-test cannot start; the message says why."""


@dataclass
class Row:
    """One line of the table."""

    check: str
    expected: str
    got: str = ""
    seconds: float = 0.0
    outcome: str = "ok"  # ok, unexpected, needs (more GPUs than here), skipped (a tool or image missing)
    detail: str = ""


@dataclass
class Summary:
    """Every row, and what they add up to."""

    gpus: int
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 only when every row that ran got what was expected."""
        return 1 if self.count("unexpected") else 0

    def as_dict(self) -> dict:
        return {"gpus": self.gpus, "seconds": round(self.seconds, 1), "exit_code": self.exit_code,
                "counts": {o: self.count(o) for o in ("ok", "unexpected", "needs", "skipped")},
                "rows": [asdict(r) | {"seconds": round(r.seconds, 2)} for r in self.rows]}


def needs(check: str, expected: str, n: int, detail: str = "") -> Row:
    return Row(check, expected, f"needs {n} GPU{'s' if n != 1 else ''}", outcome="needs", detail=detail)


def verdict(check: str, expected: str, result: tuple[str, float, str]) -> Row:
    """A row from (status, seconds, message): the message is kept only when the status is not the one expected."""
    status, seconds, message = result
    return Row(check, expected, status, seconds, "ok" if status == expected else "unexpected",
               "" if status == expected else message)


def wrong_label(ex: Exercise, check: str) -> str:
    return f"wrong: {MUTANTS[f'{ex.id}.{check}'][2]}" if f"{ex.id}.{check}" in MUTANTS else "starter"


def wrong_variant(ex: Exercise, check: str, solution: Path, tmp: Path) -> tuple[str, Path]:
    """(label, file): the solution with the check's mutation applied, else the untouched starter; ValueError when
    the mutation no longer matches the solution."""
    if f"{ex.id}.{check}" not in MUTANTS:  # an added check with no mutation written for it
        return "starter", ex.starter
    pattern, replacement, _why = MUTANTS[f"{ex.id}.{check}"]
    text, hits = re.subn(pattern, lambda _m: replacement, solution.read_text(encoding="utf-8"))
    if not hits:
        raise ValueError(f"the mutation {pattern!r} no longer matches {solution}: update labkit/authoring/mutants.py")
    path = tmp / f"{ex.id}-{check}" / ex.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return wrong_label(ex, check), path


def grade_rows(ex: Exercise, solutions: Path, gpus: int, worker: Callable[[], object], tmp: Path) -> list[Row]:
    """The exercise's GPU checks on the solution (expected: passed) and on a known-wrong variant (failed)."""
    specs = [c for c in load_checks(ex)[0] if c.needs_gpus > 0]
    rows = [needs(f"{ex.id}.{c.name} · {which}", want, c.needs_gpus) for c in specs if c.needs_gpus > gpus
            for which, want in (("solution", "passed"), (wrong_label(ex, c.name), "failed"))]
    runnable = [c.name for c in specs if c.needs_gpus <= gpus]
    solution = next((p for p in (solutions / ex.filename, ex.folder / "solution.py") if p.is_file()), None)
    if not runnable:
        return rows
    if solution is None:
        missing = ("error", 0.0, f"no reference solution: expected {solutions / ex.filename}")
        return rows + [verdict(f"{ex.id}.{n} · solution", "passed", missing) for n in runnable]
    got = grade(ex, solution, runnable, worker())
    for name in runnable:
        rows.append(verdict(f"{ex.id}.{name} · solution", "passed", got[name]))
        try:
            label, wrong = wrong_variant(ex, name, solution, tmp)
        except ValueError as exc:
            rows.append(verdict(f"{ex.id}.{name} · {wrong_label(ex, name)}", "failed", ("error", 0.0, str(exc))))
            continue
        rows.append(verdict(f"{ex.id}.{name} · {label}", "failed", grade(ex, wrong, [name], worker())[name]))
    return rows


def grade(ex: Exercise, path: Path, names: list[str], worker: object, sandbox: str = "none") -> dict:
    """{check: (status, seconds, first line of its message)}; labkit's own failure is every check's error."""
    try:
        report = engine.grade(ex, path, worker=worker, sandbox=sandbox, only=names)
    except Exception as exc:  # a broken worker or plan: the rows say so, the other exercises still run
        return {n: ("error", 0.0, f"{type(exc).__name__}: {first_line(str(exc))}") for n in names}
    got = {r.name: (r.status, r.seconds, first_line(r.message)) for r in report.results}
    return {n: got.get(n, ("error", 0.0, "not graded")) for n in names}


def sandbox_rows(exercises: list[Exercise], solutions: Path, gpus: int) -> list[Row]:
    """One GPU check on the solution in each sandbox that isolates a class: bubblewrap and the container."""
    from labkit.sandbox import bwrap, container

    ex_id, name = SANDBOX_CHECK.split(".")
    ex = next((e for e in exercises if e.id == ex_id), None)
    rows = []
    for mode, problem in (("bwrap", bwrap.bwrap_works), ("container", container.works)):
        check, solution = f"{SANDBOX_CHECK} · solution · --sandbox {mode}", solutions / f"{ex_id}.py"
        if gpus < 1:
            rows.append(needs(check, "passed", 1))
        elif reason := (problem() if ex and solution.is_file() else f"no {ex_id} or no {solution}"):
            rows.append(Row(check, "passed", "skipped", outcome="skipped", detail=reason))
        else:
            rows.append(verdict(check, "passed", grade(ex, solution, [name], None, mode)[name]))
    return rows


def labkit(args: list[str], timeout: float, env: dict | None = None) -> tuple[int, str, str]:
    """`labkit ARGS` in a fresh process (this checkout's labkit first): exit status, stdout, stderr."""
    path = os.pathsep.join(filter(None, [str(IMPORT_ROOT), os.environ.get("PYTHONPATH")]))
    try:
        done = subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "PYTHONPATH": path, **(env or {})})
    except subprocess.TimeoutExpired:
        return 124, "", f"did not finish in {timeout:g} s"
    return done.returncode, done.stdout, done.stderr


def measured(check: str, expected: str, got: str, ok: bool, start: float, detail: str = "") -> Row:
    """A row for a command whose result is judged here; its seconds since `start`."""
    return Row(check, expected, got, time.monotonic() - start, "ok" if ok else "unexpected", detail)


def doctor_row(gpus: int) -> Row:
    """`labkit doctor --json` runs, and sees the GPUs the grader sees; its warnings go in the detail."""
    check, expected, start = "labkit doctor", f"exit 0; sees {gpus} GPU(s)", time.monotonic()
    rc, out, err = labkit(["doctor", "--json"], DOCTOR_SECONDS)
    try:
        data = json.loads(out)
        seen, notes = len(data["gpus"]), [str(w) for w in data["warnings"]]
    except (ValueError, KeyError, TypeError):
        return measured(check, expected, f"exit {rc}", False, start, first_line(err or out))
    return measured(check, expected, f"exit {rc}; sees {seen} GPU(s); {len(notes)} warning(s)",
                    rc == 0 and seen == gpus, start, "\n".join(notes))


def full_run_row(exercises: list[Exercise], solutions: Path, gpus: int, tmp: Path) -> list[Row]:
    """`labkit run EX --full --epochs 1` on the solution: every run trains its one epoch and is saved."""
    from labkit.course.workspace import init
    from labkit.lab.data import has_fashion_mnist, write_stand_in
    from labkit.lab.experiment import RESULTS

    ex = next((e for e in exercises if e.full_run), None)
    if ex is None:
        return []
    real = has_fashion_mnist()
    name = f"labkit run {ex.id} --full --epochs 1 (" + ("Fashion-MNIST)" if real else
                                                        f"synthetic stand-in, {FULL_RUN_IMAGES[0]} images)")
    expected = "exit 0; every run 1 epoch"
    if gpus < 1:
        return [needs(name, expected, 1, "on a CPU it takes hours: `labkit run` refuses without --force")]
    start, ws, out = time.monotonic(), init(tmp / "workspace"), tmp / "full-run"
    (ws.root / ex.filename).write_bytes((solutions / ex.filename).read_bytes())
    args = ["run", ex.id, "--full", "--epochs", "1", "--workspace", str(ws.root), "--out", str(out)]
    if not real:
        args += ["--data-dir", str(write_stand_in(tmp / "data", *FULL_RUN_IMAGES))]
    rc, stdout, err = labkit(args, FULL_RUN_SECONDS, {"LABKIT_EXERCISES": str(ex.folder.parent)})
    try:
        runs = json.loads((out / RESULTS).read_text(encoding="utf-8"))
        ok = rc == 0 and bool(runs) and all(len(r["epoch_seconds"]) == 1 for r in runs)
        detail = "; ".join(f"{r['label']}: acc {r['test_acc']:.2f}, {r['epoch_seconds'][0]:.1f} s" for r in runs)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return [measured(name, expected, f"exit {rc}", False, start, first_line(err or stdout))]
    return [measured(name, expected, f"exit {rc}; {len(runs)} run(s)", ok, start, detail)]


def run_selftest(root: Path, solutions: Path, on_row: Callable[[Row], None] | None = None) -> Summary:
    """Every row of the GPU self-test on this machine, in order: doctor, checks, sandboxes, the full run."""
    from labkit.sandbox.worker import Worker

    summary, started = Summary(devices.cuda_count()), time.monotonic()
    exercises, solutions = find_exercises(root), Path(solutions)
    shared: list = []  # one grading worker for every check, started only when a row needs it

    def worker() -> object:
        if not shared:
            shared.append(Worker("none"))
        return shared[0]

    def add(rows: list[Row]) -> None:
        summary.rows.extend(rows)
        for row in rows if on_row else ():
            on_row(row)

    with tempfile.TemporaryDirectory(prefix="labkit-selftest-") as tmp:
        try:
            add([doctor_row(summary.gpus)])
            for ex in exercises:
                add(grade_rows(ex, solutions, summary.gpus, worker, Path(tmp)))
        finally:
            for w in shared:
                w.close()
        add(sandbox_rows(exercises, solutions, summary.gpus))
        add(full_run_row(exercises, solutions, summary.gpus, Path(tmp)))
    summary.seconds = time.monotonic() - started
    return summary


MARKS = {"ok": "✓", "unexpected": "✗", "needs": "–", "skipped": "–"}


def format_table(summary: Summary) -> str:
    """The table (check, expected, got, seconds), a row's detail below it where it says why, and the totals."""
    cells = [("", "check", "expected", "got", "seconds")] + [
        (MARKS[r.outcome], r.check, r.expected, r.got, f"{r.seconds:.1f}" if r.seconds else "-") for r in summary.rows]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    lines = []
    for row, cell in zip([None, *summary.rows], cells, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip())
        if row and row.detail and (row.outcome != "ok" or row.check == "labkit doctor"):  # doctor: its warnings
            lines += [f"{'':{widths[0] + 4}}{line}" for line in row.detail.splitlines()]
    return "\n".join([*lines, f"gpu selftest: {summary.count('ok')} as expected, {summary.count('unexpected')} not, "
                       f"{summary.count('needs')} need more GPUs than the {summary.gpus} here, "
                       f"{summary.count('skipped')} skipped; {summary.seconds:.0f} s"])


def writable(path: Path) -> Path:
    """`path` when the JSON can be written there, else a SelftestError saying why (before minutes of work)."""
    why = ("is a folder: give a file name" if path.is_dir() else
           f"the folder {path.parent} does not exist" if not path.parent.is_dir() else
           "cannot be written here" if not os.access(path if path.exists() else path.parent, os.W_OK) else "")
    if why:
        raise SelftestError(f"--json {path}: {why}")
    return path


def selftest_gpu(root: Path, solutions: Path, json_path: Path | None = None, echo: Callable[[str], None] = print,
                 progress: Callable[[str], None] | None = None) -> int:
    """Run the GPU self-test (a line per row to `progress` as it ends), print the table, write the JSON; exit code."""
    if not Path(root).is_dir() or not any((d / "exercise.toml").is_file() for d in Path(root).iterdir()):
        raise SelftestError(f"no exercises in {root} (--root, or $LABKIT_EXERCISES)")
    if json_path is not None:
        writable(json_path)
    summary = run_selftest(root, solutions, on_row=progress and (lambda r: progress(f"{MARKS[r.outcome]} {r.check}"
                                                                                    f": {r.got}")))
    echo(format_table(summary))
    if json_path is not None:
        try:
            json_path.write_text(json.dumps(summary.as_dict(), indent=2), encoding="utf-8")
        except OSError as exc:
            raise SelftestError(f"--json {json_path}: cannot write it: {exc.strerror or exc}") from None
    return summary.exit_code
