"""The CLI through CliRunner and through the installed script, on the toy exercise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from labkit.cli.main import cli

TOY = Path(__file__).parent.parent / "toy"
SOLUTION = (TOY / "exercise99" / "solution.py").read_text()
BIN = Path(sys.executable).parent


@pytest.fixture
def run(tmp_path, monkeypatch):
    """run("check", "99") -> click Result, inside a fresh workspace of the toy course."""
    monkeypatch.setenv("LABKIT_EXERCISES", str(TOY))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_every_command_has_help_with_an_example(run):
    commands = [([name], c) for name, c in cli.commands.items()]
    for group, g in cli.commands.items():
        commands += [([group, name], c) for name, c in getattr(g, "commands", {}).items()]
    for path, command in commands:
        assert command.help and "Example" in command.help, path
        assert run(*path, "--help").exit_code == 0
    assert "Example" in run("--help").output
    assert run("--version").output.strip().startswith("labkit, version")


@pytest.mark.parametrize("args", [["--help"], ["list"], ["hint", "exercise99"], ["init", "ws"], ["show", "99"], []])
def test_light_commands_import_neither_torch_nor_torchvision(tmp_path, args):
    code = ("import sys; from labkit.cli.main import cli\n"
            f"try:\n    cli({args!r}, prog_name='labkit')\nexcept SystemExit:\n    pass\n"
            "bad = [m for m in ('torch', 'torchvision') if m in sys.modules]\n"
            "assert not bad, bad")
    env = {**os.environ, "LABKIT_EXERCISES": str(TOY)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env, capture_output=True)


def test_init_start_refuses_to_overwrite_and_force_backs_up(run, tmp_path):
    assert run("init").exit_code == 0 and (tmp_path / "labkit.toml").is_file()
    assert run("init").exit_code == 0  # idempotent
    assert run("start", "ex99").exit_code == 0
    mine = tmp_path / "exercise99.py"
    mine.write_text("# my work\n")
    refused = run("start", "exercise99")
    assert refused.exit_code == 2 and "already exists" in refused.output
    assert mine.read_text() == "# my work\n"
    forced = run("start", "99", "--force")
    assert forced.exit_code == 0 and "NotImplementedError" in mine.read_text()
    backups = list((tmp_path / ".labkit" / "backups").iterdir())
    assert [b.read_text() for b in backups] == ["# my work\n"]


def test_reset_keeps_a_backup(run, tmp_path):
    run("init")
    run("start", "99")
    (tmp_path / "exercise99.py").write_text(SOLUTION)
    out = run("reset", "99")
    assert out.exit_code == 0 and "kept at" in out.output
    assert "NotImplementedError" in (tmp_path / "exercise99.py").read_text()
    assert [b.read_text() for b in (tmp_path / ".labkit" / "backups").iterdir()] == [SOLUTION]


@pytest.mark.parametrize("args, words", [
    (["check", "exercise42"], "unknown exercise 'exercise42'"),
    (["check", "99"], "no labkit workspace"),
    (["check"], "name an exercise"),
    (["start", "nope"], "unknown exercise"),
    (["check", "99", "--file", "missing.py"], "no such file"),
])
def test_usage_errors_are_one_line_and_exit_2(run, args, words):
    out = run(*args)
    assert out.exit_code == 2 and words in out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1


def test_check_without_a_started_file_says_how_to_start(run):
    run("init")
    out = run("check", "99")
    assert out.exit_code == 2 and "labkit start exercise99" in out.output


def test_check_reports_and_exit_codes(run, tmp_path):
    run("init")
    run("start", "99")
    starter = run("check", "99", "--junit", "j.xml", "--gradescope", "g.json")
    assert starter.exit_code == 1
    assert "✗" in starter.output or "!" in starter.output
    assert "not implemented yet" in starter.output and "Score 0/5" in starter.output and "seed" in starter.output
    suite = ET.parse(tmp_path / "j.xml").getroot().find("testsuite")
    assert suite.get("errors") == "5" and suite.get("skipped") == "1"
    gs = json.loads((tmp_path / "g.json").read_text())
    assert gs["score"] == 0 and gs["extra_data"]["max_score"] == 5 and len(gs["tests"]) == 6
    assert {"name", "output", "visibility"} <= set(gs["tests"][0]) and "score" not in gs["tests"][-1]

    (tmp_path / "exercise99.py").write_text(SOLUTION)
    solved = run("check", "exercise99", "--json")
    (data,) = json.loads(solved.output)  # always a list, even of one
    assert solved.exit_code == 0 and data["score"] == data["max_score"] == 5 and data["ok"]
    assert data["fingerprint"]["torch"] and len(data["sha256"]) == 64
    listing = run("list").output
    assert "passed" in listing and "5/5" in listing


def test_hints_come_one_at_a_time(run):
    run("init")
    assert "hint 1 of 2" in run("hint", "99").output
    second = run("hint", "99").output
    assert "hint 2 of 2 (the last one)" in second and "return a + b" in second
    assert "hint 2 of 2" in run("hint", "99").output


def test_watch_rechecks_when_the_file_is_saved(run, tmp_path):
    run("init")
    run("start", "99")
    path = tmp_path / "exercise99.py"

    def save_later():
        time.sleep(6)
        path.write_text(SOLUTION)

    threading.Thread(target=save_later, daemon=True).start()
    out = run("watch", "99", "--interval", "0.2", "--max-runs", "2")
    assert out.output.count("changed: checking") == 2
    assert "Score 0/5" in out.output and "Score 5/5" in out.output
    # watch keeps the report as check does, so submit packs it without grading again
    saved = json.loads((tmp_path / ".labkit" / "reports" / "exercise99.json").read_text())
    assert saved["score"] == 5 and "passed" in run("list").output
    submitted = run("submit", "99")
    assert submitted.exit_code == 0 and "checking it now" not in submitted.output


def test_files_written_for_the_user_follow_the_umask(run, tmp_path):
    old = os.umask(0o022)
    try:
        run("init")
        run("start", "99")
        assert (tmp_path / "exercise99.py").stat().st_mode & 0o777 == 0o644  # the started file, not 0600
        (tmp_path / "exercise99.py").write_text(SOLUTION)
        run("check", "99", "--junit", "out.xml", "--gradescope", "gs.json")
        run("submit", "99")
    finally:
        os.umask(old)
    for name in ("exercise99.py", "out.xml", "gs.json", "exercise99-submission.zip", ".labkit/progress.json",
                 ".labkit/reports/exercise99.json"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_doctor_prints_the_fingerprint(run):
    out = run("doctor", "--json")
    data = json.loads(out.output)
    assert out.exit_code == 0 and data["torch"] and data["cpu_count"] >= 1 and "warnings" in data
    assert "python" in run("doctor").output


def test_installed_script_and_python_m(tmp_path):
    env = {**os.environ, "LABKIT_EXERCISES": str(TOY)}
    (tmp_path / "exercise99.py").write_text(SOLUTION)
    out = subprocess.run([BIN / "labkit", "check", "99", "--file", "exercise99.py"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "Score 5/5" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "labkit", "check", "nope", "--file", "exercise99.py"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "unknown exercise" in bad.stderr


def test_full_run_refuses_on_cpu_and_for_other_exercises(run, tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_EXERCISES")
    run("init")
    assert run("run", "exercise1", "--full").exit_code == 2
    assert "labkit start exercise4" in run("run", "exercise4", "--full").output
    (tmp_path / "exercise4.py").write_text((TOY.parent.parent / "solutions" / "exercise4.py").read_text())
    out = run("run", "4", "--full")
    assert out.exit_code == 1 and "no CUDA device here" in out.output and "Traceback" not in out.output


def test_only_runs_the_named_checks_and_says_the_score_is_partial(run, tmp_path):
    run("init")
    run("start", "99")
    (tmp_path / "exercise99.py").write_text(SOLUTION)
    result = run("check", "99", "--only", "adds", "--only", "builds")
    assert result.exit_code == 0 and "Score 2/2" in result.output and "the score is partial" in result.output
    assert "scale returns a tensor" not in result.output
    assert "(not started)" not in run("list").output and "2/2" not in run("list").output  # progress untouched
    unknown = run("check", "99", "--only", "nope")
    assert unknown.exit_code == 2 and "no check named nope" in unknown.output


def test_submit_packs_the_file_its_report_and_the_environment(run, tmp_path):
    import zipfile

    run("init")
    run("start", "99")
    (tmp_path / "exercise99.py").write_text(SOLUTION)
    assert run("check", "99").exit_code == 0
    result = run("submit", "99")
    assert result.exit_code == 0 and "checking it now" not in result.output, result.output
    with zipfile.ZipFile(tmp_path / "exercise99-submission.zip") as z:
        assert sorted(z.namelist()) == ["environment.json", "exercise99.py", "manifest.json", "report.json"]
        report, manifest = json.loads(z.read("report.json")), json.loads(z.read("manifest.json"))
        assert z.read("exercise99.py").decode() == SOLUTION and "torch" in json.loads(z.read("environment.json"))
    assert report["sha256"] == manifest["sha256"] and report["score"] == manifest["score"] == 5
    (tmp_path / "exercise99.py").write_text(SOLUTION + "# changed after the check\n")
    again = run("submit", "99", "-o", "again.zip")
    assert again.exit_code == 0 and "checking it now" in again.output
    with zipfile.ZipFile(tmp_path / "again.zip") as z:
        assert json.loads(z.read("report.json"))["sha256"] == json.loads(z.read("manifest.json"))["sha256"]
