"""`labkit selftest --gpu` on a CPU machine: GPU rows say what they need; with torch faking GPUs, each row's
expectation and the exit code; the known-wrong variants apply to today's solutions; bad input is one clear line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from labkit.authoring import gpu_proof as st
from labkit.cli.main import cli
from labkit.course.catalog import find_exercises, load_exercise
from labkit.grading import engine
from labkit.grading.plan import load_checks
from labkit.lab import devices
from labkit.sandbox import bwrap, container

ROOT = Path(__file__).resolve().parents[2]
EXERCISES, SOLUTIONS = ROOT / "exercises", ROOT / "solutions"


def gpu_checks() -> list[tuple[str, str, int]]:
    return [(ex.id, c.name, c.needs_gpus) for ex in find_exercises(EXERCISES) for c in load_checks(ex)[0]
            if c.needs_gpus > 0]


def fake_gpus(monkeypatch, n: int) -> None:
    """torch as a CUDA build with `n` GPUs sees it (the grader's count; nothing here touches a device)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_on_a_cpu_machine_every_gpu_row_needs_gpus_and_doctor_runs(monkeypatch, tmp_path):
    fake_gpus(monkeypatch, 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # doctor's own process sees none either, on any machine
    out, progress = [], []
    code = st.selftest_gpu(EXERCISES, SOLUTIONS, tmp_path / "gpu.json", out.append, progress.append)
    table = out[0]
    assert code == 0
    data = json.loads((tmp_path / "gpu.json").read_text())
    rows = {r["check"]: r for r in data["rows"]}
    assert rows["labkit doctor"]["outcome"] == "ok" and rows["labkit doctor"]["got"].startswith("exit 0; sees 0 GPU")
    for ex_id, name, n in gpu_checks():  # 11 GPU checks, each on the solution and a wrong variant
        solution = rows[f"{ex_id}.{name} · solution"]
        assert solution["got"] == f"needs {n} GPU{'s' if n > 1 else ''}" and solution["outcome"] == "needs"
        wrong = [r for c, r in rows.items() if c.startswith(f"{ex_id}.{name} · wrong: ")]
        assert len(wrong) == 1 and wrong[0]["expected"] == "failed" and wrong[0]["outcome"] == "needs"
    run = next(r for c, r in rows.items() if c.startswith("labkit run exercise4 --full --epochs 1"))
    assert run["outcome"] == "needs" and "refuses without --force" in run["detail"]
    assert data["counts"] == {"ok": 1, "unexpected": 0, "needs": 2 * len(gpu_checks()) + 3, "skipped": 0}
    assert "needs 2 GPUs" in table and "needs 1 GPU " in table and table.splitlines()[0].split() == [
        "check", "expected", "got", "seconds"]
    assert len(progress) == len(data["rows"])  # a line as each row ends, on stderr in the command


@pytest.mark.parametrize("key", sorted(st.MUTANTS))
def test_each_wrong_variant_applies_to_todays_solution_and_compiles(key, tmp_path):
    ex_id, name = key.split(".")
    ex = load_exercise(EXERCISES / ex_id)
    assert name in {c.name for c in load_checks(ex)[0] if c.needs_gpus > 0}, f"{key} is no GPU check"
    label, path = st.wrong_variant(ex, name, SOLUTIONS / ex.filename, tmp_path)
    text, original = path.read_text(), (SOLUTIONS / ex.filename).read_text()
    assert label.startswith("wrong: ") and text != original
    compile(text, str(path), "exec")


def test_every_gpu_check_has_a_wrong_variant():
    assert {f"{e}.{n}" for e, n, _ in gpu_checks()} == set(st.MUTANTS)


def test_a_mutation_that_no_longer_matches_is_an_unexpected_row(monkeypatch, tmp_path):
    monkeypatch.setitem(st.MUTANTS, "exercise8.cuda_synchronised", (r"no such text", "", "gone"))
    ex = load_exercise(EXERCISES / "exercise8")
    with pytest.raises(ValueError, match="no longer matches"):
        st.wrong_variant(ex, "cuda_synchronised", SOLUTIONS / ex.filename, tmp_path)


class FakeGrading:
    """engine.grade as a GPU machine would answer: the solution passes, a mutant fails; `answers` overrides."""

    def __init__(self, answers: dict | None = None):
        self.answers, self.calls = answers or {}, []

    def __call__(self, ex, path, *, worker, sandbox, only):
        self.calls.append((ex.id, Path(path), sandbox, list(only), Path(path).read_text()))
        solution = Path(path) == SOLUTIONS / ex.filename
        results = []
        for name in only:
            status = self.answers.get((ex.id, name, solution, sandbox), "passed" if solution else "failed")
            if isinstance(status, Exception):
                raise status
            results.append(SimpleNamespace(name=name, status=status, seconds=0.5, message=f"{status}: because"))
        return SimpleNamespace(results=results)


def fake_machine(monkeypatch, tmp_path, gpus: int, grading: FakeGrading, runs: int = 3) -> list:
    """GPUs in torch, grading answered by `grading`, no bubblewrap or podman, doctor and `labkit run` canned."""
    fake_gpus(monkeypatch, gpus)
    monkeypatch.setattr(engine, "grade", grading)
    monkeypatch.setattr(bwrap, "bwrap_works", lambda: "bubblewrap is not installed")
    monkeypatch.setattr(container, "works", lambda: "neither podman nor docker is installed")
    monkeypatch.setattr(st, "FULL_RUN_IMAGES", (20, 10))
    monkeypatch.setenv("LABKIT_DATA", str(tmp_path / "no-data"))  # Fashion-MNIST absent: the stand-in is used
    commands = []

    def labkit(args, timeout, env=None):
        commands.append(args)
        if args[0] == "doctor":
            return 0, json.dumps({"gpus": [{"index": i} for i in range(gpus)], "warnings": ["torch 2.11"]}), ""
        out = Path(args[args.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "exercise4-full.json").write_text(json.dumps(
            [{"label": f"run {i}", "test_acc": 0.5, "epoch_seconds": [1.0]} for i in range(runs)]))
        return 0, "", ""

    monkeypatch.setattr(st, "labkit", labkit)
    return commands


def test_with_one_gpu_the_one_gpu_rows_run_and_meet_their_expectations(monkeypatch, tmp_path):
    grading = FakeGrading()
    commands = fake_machine(monkeypatch, tmp_path, 1, grading)
    summary = st.run_selftest(EXERCISES, SOLUTIONS)
    rows = {r.check: r for r in summary.rows}
    one = [(e, n) for e, n, g in gpu_checks() if g == 1]
    assert len(one) == 6 and summary.exit_code == 0
    for ex_id, name in one:
        assert rows[f"{ex_id}.{name} · solution"].outcome == "ok"
        wrong = next(r for c, r in rows.items() if c.startswith(f"{ex_id}.{name} · wrong: "))
        assert (wrong.expected, wrong.got, wrong.outcome) == ("failed", "failed", "ok")
    assert all(r.got == "needs 2 GPUs" for r in summary.rows if r.outcome == "needs")
    assert summary.count("needs") == 2 * (len(gpu_checks()) - 6)
    # a mutant is graded on its own check alone, from a file holding the mutated solution
    mutant = next(c for c in grading.calls if c[0] == "exercise8" and c[1] != SOLUTIONS / "exercise8.py")
    assert mutant[3] == ["cuda_synchronised"] and "(lambda *_: None)(" in mutant[4]
    assert not mutant[1].exists()  # the variants lived in a temporary folder, gone with the run
    for mode, why in (("bwrap", "bubblewrap is not installed"), ("container", "neither podman")):
        row = rows[f"exercise1.gpu_copies · solution · --sandbox {mode}"]
        assert row.outcome == "skipped" and why in row.detail
    run = next(r for c, r in rows.items() if c.startswith("labkit run exercise4"))
    assert "synthetic stand-in, 20 images" in run.check and run.outcome == "ok" and run.got == "exit 0; 3 run(s)"
    args = commands[-1]
    assert args[:5] == ["run", "exercise4", "--full", "--epochs", "1"] and "--data-dir" in args
    assert rows["labkit doctor"].got == "exit 0; sees 1 GPU(s); 1 warning(s)"


def test_sandboxes_that_work_grade_the_solution_in_them(monkeypatch, tmp_path):
    grading = FakeGrading({("exercise1", "gpu_copies", True, "container"): "error"})
    fake_machine(monkeypatch, tmp_path, 1, grading)
    monkeypatch.setattr(bwrap, "bwrap_works", lambda: "")
    monkeypatch.setattr(container, "works", lambda: "")
    summary = st.run_selftest(EXERCISES, SOLUTIONS)
    rows = {r.check: r for r in summary.rows}
    assert rows["exercise1.gpu_copies · solution · --sandbox bwrap"].outcome == "ok"
    boxed = rows["exercise1.gpu_copies · solution · --sandbox container"]
    assert (boxed.got, boxed.outcome, boxed.detail) == ("error", "unexpected", "error: because")
    assert summary.exit_code == 1
    assert {c[2] for c in grading.calls if c[1] == SOLUTIONS / "exercise1.py"} >= {"bwrap", "container", "none"}


@pytest.mark.parametrize("answer, solution", [("passed", False), ("inconclusive", False), ("error", False),
                                              ("inconclusive", True), ("failed", True)])
def test_a_row_that_gets_anything_but_its_expectation_fails_the_run(monkeypatch, tmp_path, answer, solution):
    grading = FakeGrading({("exercise8", "cuda_synchronised", solution, "none"): answer})
    fake_machine(monkeypatch, tmp_path, 1, grading)
    out = []
    code = st.selftest_gpu(EXERCISES, SOLUTIONS, tmp_path / "gpu.json", out.append)
    bad = [r for r in json.loads((tmp_path / "gpu.json").read_text())["rows"] if r["outcome"] == "unexpected"]
    assert code == 1 and len(bad) == 1 and bad[0]["got"] == answer
    assert bad[0]["check"].startswith("exercise8.cuda_synchronised · " + ("solution" if solution else "wrong: "))
    assert bad[0]["detail"] == f"{answer}: because"  # the check's own message says why
    assert re.search(rf"✗\s+{re.escape(bad[0]['check'])}", out[0]) and "1 not" in out[0]


def test_labkit_failing_to_grade_is_reported_and_the_rest_still_runs(monkeypatch, tmp_path):
    grading = FakeGrading({("exercise3", "gpu_count_in_child", True, "none"): RuntimeError("worker died")})
    fake_machine(monkeypatch, tmp_path, 1, grading)
    summary = st.run_selftest(EXERCISES, SOLUTIONS)
    row = next(r for r in summary.rows if r.check == "exercise3.gpu_count_in_child · solution")
    assert (row.got, row.detail) == ("error", "RuntimeError: worker died") and summary.exit_code == 1
    assert any(r.check.startswith("exercise8.cuda_synchronised") and r.outcome == "ok" for r in summary.rows)


def test_a_full_run_that_skips_epochs_or_doctor_blind_to_the_gpus_fail(monkeypatch, tmp_path):
    fake_machine(monkeypatch, tmp_path, 1, FakeGrading(), runs=0)
    monkeypatch.setattr(st, "MUTANTS", {})  # fewer rows: the starter stands in as the wrong variant
    doctor = st.doctor_row(2)  # the canned doctor sees one GPU
    assert doctor.outcome == "unexpected" and doctor.expected == "exit 0; sees 2 GPU(s)"
    run = st.full_run_row(find_exercises(EXERCISES), SOLUTIONS, 1, tmp_path)[0]
    assert run.outcome == "unexpected" and run.got == "exit 0; 0 run(s)"


def test_without_a_mutation_the_starter_is_the_wrong_variant(monkeypatch, tmp_path):
    grading = FakeGrading()
    fake_machine(monkeypatch, tmp_path, 1, grading)
    monkeypatch.setattr(st, "MUTANTS", {})
    rows = st.grade_rows(load_exercise(EXERCISES / "exercise8"), SOLUTIONS, 1, lambda: None, tmp_path)
    assert [(r.check, r.expected, r.outcome) for r in rows] == [
        ("exercise8.cuda_synchronised · solution", "passed", "ok"),
        ("exercise8.cuda_synchronised · starter", "failed", "ok")]
    assert grading.calls[-1][1] == EXERCISES / "exercise8" / "starter.py"


def test_the_command_has_help_and_refuses_bad_input_in_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["selftest", "--help"])
    assert result.exit_code == 0 and "labkit selftest --gpu --json" in result.output and "needs N GPUs" in result.output
    assert "selftest" in runner.invoke(cli, ["--help"]).output
    result = runner.invoke(cli, ["selftest"])
    assert result.exit_code == 2 and "Missing option '--gpu'" in result.output
    for bad, why in ((tmp_path / "missing" / "x.json", "does not exist"), (tmp_path, "is a folder")):
        result = runner.invoke(cli, ["selftest", "--gpu", "--json", str(bad)])
        assert result.exit_code == 2 and why in result.output and "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    for root in (tmp_path / "nowhere", tmp_path):  # missing, and a folder without exercises
        result = runner.invoke(cli, ["selftest", "--gpu", "--root", str(root)])
        assert result.exit_code == 2 and f"no exercises in {root}" in result.output


def test_a_real_worker_grades_the_solution_and_its_mutant(monkeypatch, tmp_path):
    """The rows' grading end to end (worker, staging, `only`), on a toy whose 'GPU' check runs anywhere."""
    root, solutions = tmp_path / "exercises", tmp_path / "solutions"
    (root / "toy1").mkdir(parents=True)
    solutions.mkdir()
    (root / "toy1" / "exercise.toml").write_text('id = "toy1"\ntitle = "Toy"\norder = 1\npoints = 2\nneeds_gpus = 2\n'
                                                 'hints = ["double it", "x * 2"]\n')
    (root / "toy1" / "README.md").write_text("Double a number.\n")
    (root / "toy1" / "starter.py").write_text('def double(x):\n    raise NotImplementedError("toy1: double")\n')
    (root / "toy1" / "checks.py").write_text(
        "from labkit.checks import check, expect\n\n\n"
        '@check(points=1, title="doubles", needs_gpus=1, hint="x * 2")\n'
        'def doubles(sub):\n    expect(sub.call("double", 21) == 42, "double(21) should be 42")\n\n\n'
        '@check(points=1, title="on two", needs_gpus=2, hint="x * 2")\n'
        'def on_two(sub):\n    expect(sub.call("double", 1) == 2, "double(1) should be 2")\n')
    (solutions / "toy1.py").write_text("def double(x):\n    return x * 2\n")
    fake_gpus(monkeypatch, 1)
    plain = devices.fingerprint
    monkeypatch.setattr(devices, "fingerprint", lambda *_a, **_k: plain(with_torch=False))  # asks no device
    monkeypatch.setenv("LABKIT_GPU_LEASES", str(tmp_path / "leases"))
    monkeypatch.setattr(st, "labkit", lambda args, timeout, env=None: (0, '{"gpus": [{}], "warnings": []}', ""))
    monkeypatch.setitem(st.MUTANTS, "toy1.doubles", (r"x \* 2", "x + 2", "adds instead"))
    summary = st.run_selftest(root, solutions)
    got = [(r.check, r.got, r.outcome) for r in summary.rows]
    assert got[1:5] == [("toy1.on_two · solution", "needs 2 GPUs", "needs"),
                        ("toy1.on_two · starter", "needs 2 GPUs", "needs"),
                        ("toy1.doubles · solution", "passed", "ok"),
                        ("toy1.doubles · wrong: adds instead", "failed", "ok")]
    assert [r.outcome for r in summary.rows[5:]] == ["skipped", "skipped"]  # no exercise1 for the sandboxes
    assert summary.exit_code == 0
