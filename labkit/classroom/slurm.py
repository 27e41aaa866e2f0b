"""`labkit grade --executor slurm`: the class's students graded as a Slurm job array instead of local threads.

Only where a student is graded changes. Each array task grades a chunk of students with one warm worker
(labkit.classroom.slurm_task) and writes each result as labkit's JSON, atomically, under SCRATCH/results; this
driver hands every result to the batch's `finish` (the same result files, grades.csv and feedback as the local
executor), follows the tasks' states, retries once a task the cluster stopped (node failure, preemption, --time),
then makes it the student's error row, and cancels the array on Ctrl-C. A rerun reuses every result on disk and
adopts the tasks a killed run left running, so nothing is graded twice and nothing is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from labkit.classroom import slurm_cli as sc
from labkit.classroom.batch import RESULTS, Outcome, grade_entry
from labkit.classroom.intake import Entry, safe_id
from labkit.classroom.slurm_job import Resources, SlurmOptions, resources, sbatch_args, script, task_command
from labkit.course.catalog import Exercise
from labkit.files import sha256_of, write_atomic
from labkit.text import json_text

SILENT_SECONDS = 120  # a job Slurm says nothing of for this long has ended, unseen


class SlurmExecutor:
    """run_batch's executor for Slurm: same results, graded on the cluster."""

    def __init__(self, options: SlurmOptions | None = None) -> None:
        self.options = options or SlurmOptions()
        self.submitted: list[str] = []  # job ids this run submitted (tests and the summary line read it)

    def run(self, entries: list[Entry], exercise: Exercise, out: Path, *, checks_dir: Path | None, sandbox: str,
            key: str, salt: str, finish: Callable[[Outcome], None]) -> None:
        """Grade `entries` on the cluster; call `finish` with each outcome as it lands."""
        _Run(self, entries, exercise, Path(out), checks_dir, sandbox, key, salt, finish).go()


class _Run:
    """One executor run: staged entries, tasks in flight, tries per student."""

    def __init__(self, ex: SlurmExecutor, entries: list[Entry], exercise: Exercise, out: Path,
                 checks_dir: Path | None, sandbox: str, key: str, salt: str, finish: Callable[[Outcome], None]):
        self.ex, self.opt, self.exercise, self.finish = ex, ex.options, exercise, finish
        self.checks_dir, self.sandbox, self.key, self.salt, self.out = checks_dir, sandbox, key, salt, out
        self.scratch = (self.opt.scratch or out / "slurm").resolve()
        for d in ("staging", "results", "jobs", "logs"):
            (self.scratch / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o700)  # the specs hold the class's salt
        self.waiting: dict[str, Entry] = {}
        self.sha: dict[str, str] = {}
        self.tries: Counter[str] = Counter()
        self.jobs: dict[str, list[list[str]]] = {}  # job id -> its tasks' stems (jobs still to watch)
        self.ended: dict[tuple[str, int], tuple[str, float]] = {}  # (job, task) -> (state, first seen ended)
        self.silent: dict[str, float] = {}  # job -> since when neither scontrol nor sacct knows it
        self.res: Resources | None = None
        self.shown = ""
        for entry in entries:
            if entry.file is None:  # nothing to grade: the intake's reason is the verdict, as locally
                finish(grade_entry(entry, exercise, None, checks_dir, key, salt))
            else:
                self._stage(entry)

    def _stage(self, entry: Entry) -> None:
        stem = entry.stem or safe_id(entry.student)
        staged = self.scratch / "staging" / stem / self.exercise.filename
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry.file, staged)
        self.waiting[stem] = replace(entry, file=staged, stem=stem)
        self.sha[stem] = sha256_of(staged)

    def go(self) -> None:
        try:
            self._harvest(first=True)
            self._adopt()
            while self.waiting:
                free = [s for s in self.waiting if not any(s in c for cs in self.jobs.values() for c in cs)]
                if free:
                    self._submit(free)
                time.sleep(self.opt.poll)
                self._watch()
            self._tidy()
        except BaseException:  # Ctrl-C, SIGTERM, a Slurm error: nothing keeps running for a grader that left
            for job in list(self.jobs):
                sc.cancel(job)
                self._say(f"slurm: cancelled job {job}; rerun the same command to resume")
            self.jobs.clear()
            self._save_jobs()
            raise

    def _tidy(self) -> None:
        """Every student has a result: the staged copies and the specs (they hold the salt) go; logs stay."""
        shutil.rmtree(self.scratch / "staging", ignore_errors=True)
        for spec in (self.scratch / "jobs").glob("*.json"):
            spec.unlink(missing_ok=True)

    def _result(self, stem: str) -> Outcome | None:
        """A task's result for this exact file and grading key, if one has landed."""
        try:
            outcome = Outcome(**json.loads((self.scratch / "results" / f"{stem}.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        entry = self.waiting[stem]
        same = outcome.student == entry.student and outcome.sha256 == self.sha[stem] and outcome.key == self.key
        return outcome if same else None

    def _harvest(self, first: bool = False) -> None:
        for stem in list(self.waiting):
            outcome = self._result(stem)
            if first and outcome is not None and (outcome.status != "graded" or self._delivered(outcome)):
                # the batch asks for this student although this result was delivered: a regrade (--student)
                (self.scratch / "results" / f"{stem}.json").unlink(missing_ok=True)
                continue
            if outcome is not None:
                entry = self.waiting.pop(stem)
                outcome.name, outcome.source = entry.name, entry.source
                self.finish(outcome)

    def _delivered(self, outcome: Outcome) -> bool:
        """The batch's result file already holds this outcome (a killed grader may not have saved it)."""
        try:
            saved = json.loads((self.out / RESULTS / f"{safe_id(outcome.student)}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return saved == json.loads(json_text(asdict(outcome)))

    def _adopt(self) -> None:
        """Tasks a killed run left pending or running still grade their students: watch them, submit nothing."""
        path = self.scratch / "jobs.json"
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for job, record in old.items():
            states = sc.states(job)
            live = any(sc.kind(s) in ("pending", "running") for s in states.values())
            if live and record.get("key") == self.key:
                self.jobs[job] = record["tasks"]
                self._say(f"slurm: following job {job}, left running by an earlier run")
            elif live:
                sc.cancel(job)  # it grades with other checks or another salt: its results would not be used
        self._save_jobs()

    def _submit(self, stems: list[str]) -> None:
        size = max(1, self.opt.chunk)
        tasks = [stems[i:i + size] for i in range(0, len(stems), size)]
        res = self.res = self.res or resources(self.exercise, self.checks_dir, size, self.opt)
        name = uuid.uuid4().hex[:12]
        spec = self.scratch / "jobs" / f"{name}.json"
        entries = [[self._entry_data(s) for s in chunk] for chunk in tasks]
        data = {"exercise": self.exercise.id, "folder": str(self.exercise.folder),
                "checks_dir": str(Path(self.checks_dir).resolve()) if self.checks_dir else None,
                "sandbox": self.sandbox, "key": self.key, "salt": self.salt,
                "results": str(self.scratch / "results"), "chunks": entries}
        write_atomic(spec, json.dumps(data, indent=1), mode=0o600)
        binds = [self.scratch] + ([Path(self.checks_dir).resolve()] if self.checks_dir else [])
        batch = self.scratch / "jobs" / f"{name}.sh"
        write_atomic(batch, script(task_command(self.opt, spec, res.gpus, binds)), mode=0o700)
        args = sbatch_args(self.opt, res, len(tasks), self.exercise.id, self.scratch / "logs")
        job = sc.submit([*args, f"--chdir={self.scratch}"], str(batch))
        self.jobs[job] = tasks
        self.ex.submitted.append(job)
        self._save_jobs()
        gres = f", gres gpu:{res.gpus}" if res.gpus else ""
        self._say(f"slurm: job {job}: {len(stems)} student(s) in {len(tasks)} task(s), {res.cpus} CPU(s){gres}, "
                  f"--time {res.minutes} min each")

    def _entry_data(self, stem: str) -> dict:
        return {**asdict(self.waiting[stem]), "file": str(self.waiting[stem].file)}

    def _save_jobs(self) -> None:
        data = {job: {"key": self.key, "tasks": tasks} for job, tasks in self.jobs.items()}
        write_atomic(self.scratch / "jobs.json", json.dumps(data, indent=1), mode=0o600)

    def _watch(self) -> None:
        """Read the tasks' states, then the results (a task writes them before it ends), then judge ended tasks."""
        now = time.monotonic()
        seen = {}
        for job in self.jobs:
            states = sc.states(job)
            if states or now - self.silent.setdefault(job, now) >= SILENT_SECONDS:
                seen[job] = states  # no answer for a while: the controller forgot the job, its tasks are UNKNOWN
        self._harvest()
        counts: Counter[str] = Counter()
        for job, states in seen.items():
            if states:
                self.silent.pop(job, None)
            tasks = self.jobs[job]
            for i, stems in enumerate(tasks):
                state = states.get(i, "UNKNOWN")
                counts[sc.kind(state)] += 1
                if sc.kind(state) in ("pending", "running"):
                    continue
                first = self.ended.setdefault((job, i), (state, now))[1]
                lost = [s for s in stems if s in self.waiting]
                if lost and now - first < self.opt.settle:
                    continue
                if lost:
                    self._lost(job, i, state, lost)
                tasks[i] = []
            if not any(tasks):
                del self.jobs[job]
                self._save_jobs()
        line = " · ".join(f"{counts[k]} {k}" for k in ("pending", "running", "done", "failed"))
        if seen and line != self.shown:
            self.shown = line
            self._say(f"slurm: tasks {line}")

    def _lost(self, job: str, task: int, state: str, stems: list[str]) -> None:
        """A task ended without these students' results: submit them again, or, past the retries, their error."""
        why = sc.WHY.get(state, f"it ended {state}")
        log = self.scratch / "logs" / f"{job}_{task}.out"
        for stem in stems:
            self.tries[stem] += 1
            if self.tries[stem] <= self.opt.retries:
                self._say(f"slurm: task {job}_{task} ended {state} ({why}): {stem} goes to the cluster again")
                continue
            error = (f"the cluster stopped grading this file {self.tries[stem]} time(s); last: Slurm task "
                     f"{job}_{task} {state} ({why}); log: {log}")
            entry = replace(self.waiting.pop(stem), file=None, error=error)
            outcome = grade_entry(entry, self.exercise, None, self.checks_dir, self.key, self.salt)  # its error row
            outcome.sha256 = self.sha[stem]
            self.finish(outcome)

    def _say(self, line: str) -> None:
        if self.opt.report:
            self.opt.report(line)
