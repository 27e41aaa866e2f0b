"""A student's attempt, one path for every command that grades a file: grade it, keep the report and the
progress it earned, and hand it in (`check`, `watch`, `submit`; `grade` grades each student through it too)."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from labkit.course.catalog import Exercise
from labkit.course.workspace import Workspace, WorkspaceError
from labkit.files import sha256_of, write_atomic
from labkit.grading.artifacts import Keeper
from labkit.grading.engine import grade
from labkit.grading.plan import plan
from labkit.grading.report import to_json
from labkit.grading.results import CheckResult, Report
from labkit.sandbox.worker import Worker


def attempt(exercise: Exercise, path: Path, *, worker: Worker | None = None, workspace: Workspace | None = None,
            on_result: Callable[[CheckResult], None] | None = None, only: Collection[str] = (),
            checks_dir: Path | None = None, sandbox: str = "auto", salt: str = "") -> Report:
    """Grade one file; when it is a workspace's exercise, keep the report, the progress (best score) and the
    files its checks inspected (class grading passes no workspace: it keeps none)."""
    from labkit.lab.devices import cuda_count

    the_plan = plan(exercise, gpus=cuda_count(), only=only, checks_dir=checks_dir)
    wanted = {c.name: c.needs_gpus for c in the_plan.checks if c.needs_gpus > the_plan.gpus}
    keeper = None
    if workspace is not None:
        hidden = () if the_plan.reveal else [c.name for c in the_plan.checks if c.hidden]
        keeper = Keeper(workspace.root, workspace.artifacts(exercise), hidden)

    def annotate(result: CheckResult) -> None:
        if result.status == "skipped" and result.name in wanted:  # the points this machine cannot show
            result.wants_gpus = wanted[result.name]
        if keeper is not None and result.name in keeper.kept:
            result.artifacts = str(keeper.kept[result.name])
        if on_result:
            on_result(result)

    report = grade(exercise, path, worker=worker, sandbox=sandbox, on_result=annotate, only=only,
                   checks_dir=checks_dir, salt=salt, keep_files=keeper)
    report.feedback = the_plan.feedback
    if workspace is not None and not only:  # a partial run says nothing about the exercise's progress
        workspace.save_report(exercise, to_json(report))
        workspace.record(exercise, report.score, report.max_score, report.full_marks,
                         gpu_points=report.gpu_points, gpu_need=report.gpu_need)
    return report


@dataclass
class Handin:
    """What `labkit submit` packed."""

    path: Path  # the zip
    sha256: str  # of the student's file
    score: float
    max_score: float
    regraded: bool  # the file had changed since its last check, so it was checked again first
    ok: bool = True  # the packed report has no failed or errored check


def hand_in(exercise: Exercise, workspace: Workspace, output: Path | None = None,
            on_regrade: Callable[[], None] | None = None) -> Handin:
    """Zip the exercise's file, its latest report (re-checked first if the file changed) and the environment."""
    from labkit.lab.devices import fingerprint

    path = workspace.file(exercise)
    if not path.is_file():
        raise WorkspaceError(f"{path} does not exist: run `labkit start {exercise.id}` first")
    sha = sha256_of(path)
    data = workspace.saved_report(exercise)
    regraded = data is None or data.get("sha256") != sha
    if regraded:
        if on_regrade:
            on_regrade()
        data = attempt(exercise, path, workspace=workspace).to_dict()
    output = Path(output or f"{exercise.id}-submission.zip")
    manifest = {"exercise": exercise.id, "file": exercise.filename, "sha256": sha, "score": data.get("score"),
                "max_score": data.get("max_score"), "packed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, exercise.filename)
        z.writestr("report.json", json.dumps(data, indent=2, ensure_ascii=False))
        z.writestr("environment.json", json.dumps(fingerprint(cuda_init=False).as_dict(), indent=2))
        z.writestr("manifest.json", json.dumps(manifest, indent=2))
    write_atomic(output, buf.getvalue())
    ok = bool(data.get("ok", data.get("score") == data.get("max_score")))
    return Handin(output, sha, data.get("score", 0), data.get("max_score", 0), regraded, ok)
