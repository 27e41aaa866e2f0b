"""A student's first hour, through the CLI: the statement where they work, GPU points shown, hints that wait,
the files a check inspected kept, `watch`, the layout, and errors that come before the grading."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from labkit.cli.main import cli
from labkit.i18n import set_language, width

TOY = Path(__file__).parent.parent / "toy"
SOLUTION = (TOY / "exercise99" / "solution.py").read_text()
STARTER = (TOY / "exercise99" / "starter.py").read_text()
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def run(tmp_path, monkeypatch):
    """run("check", "99") -> click Result, in a fresh workspace of the toy course (exercise99, then exercise100)."""
    course = tmp_path / "course"
    shutil.copytree(TOY, course)
    shutil.copytree(course / "exercise99", course / "exercise100")  # a second exercise, to be named as the next
    toml = (course / "exercise100" / "exercise.toml").read_text()
    (course / "exercise100" / "exercise.toml").write_text(toml.replace('"exercise99"', '"exercise100"')
                                                          .replace("order = 99", "order = 100"))
    (course / "exercise99" / "README.zh-CN.md").write_text("# 练习 99\n\n把两个数相加。\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.setenv("LABKIT_EXERCISES", str(course))
    for name in ("LABKIT_LANG", "LABKIT_COURSE", "NO_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ws)
    runner = CliRunner()

    def invoke(*args: str, **kwargs):
        return runner.invoke(cli, list(args), catch_exceptions=False, **kwargs)

    yield invoke
    set_language("en")


def started(run, source: str | None = None) -> Path:
    assert run("init").exit_code == 0
    assert run("start", "99").exit_code == 0
    path = Path("exercise99.py").resolve()
    if source is not None:
        path.write_text(source)
    return path


# 1. the statement where the student works

def test_start_writes_the_statements_beside_the_file_and_show_prints_them(run):
    run("init")
    out = run("start", "99")
    assert out.exit_code == 0 and "the statement: exercise99.md" in out.output
    assert "labkit show exercise99" in out.output
    assert Path("exercise99.md").read_text() == (TOY / "exercise99" / "README.md").read_text()
    assert "把两个数相加" in Path("exercise99.zh-CN.md").read_text()
    assert run("show", "99").output.strip() == (TOY / "exercise99" / "README.md").read_text().strip()
    assert "把两个数相加" in run("--lang", "zh", "show", "exercise99").output
    assert "把两个数相加" in run("show", "99", env={"LABKIT_LANG": "zh_CN"}).output
    assert "把两个数相加" not in run("show", "100", env={"LABKIT_LANG": "zh_CN"}).output  # no twin: English
    bad = run("show", "nope")
    assert bad.exit_code == 2 and "unknown exercise" in bad.output


def test_a_statement_the_student_edited_or_wrote_is_never_replaced(run):
    Path("exercise100.md").write_text("my own notes\n")
    run("init")
    out = run("start", "100")
    assert out.exit_code == 0 and "kept your own exercise100.md" in out.output
    assert Path("exercise100.md").read_text() == "my own notes\n"
    run("start", "99")
    Path("exercise99.md").write_text("# my annotated copy\n")
    Path("exercise99.zh-CN.md").unlink()
    out = run("reset", "99")
    assert out.exit_code == 0
    assert Path("exercise99.md").read_text() == "# my annotated copy\n"
    assert run("start", "99", "--force").exit_code == 0 and Path("exercise99.zh-CN.md").is_file()  # restored
    assert Path("exercise99.md").read_text() == "# my annotated copy\n"


# 2. points that need GPUs, shown apart

def test_list_and_check_all_show_the_points_that_need_gpus(run):
    started(run, SOLUTION)
    checked = run("check", "--all")
    assert checked.exit_code == 0, checked.output
    assert "+1 need 8 GPU(s) this machine lacks: 5/5 here, 6 in all" in checked.output
    assert "total 5/5 · +1 need GPUs this machine lacks (6 in all)" in checked.output  # the scorecard of --all
    listing = run("list").output
    assert re.search(r"exercise99 +passed +5/5 \(\+1 need 8 GPU\(s\)\)", listing), listing
    assert "total 5/12 (42%) · 1 of them need GPUs this machine lacks" in listing  # exercise100: 6 more points


# 3. feedback levels: hints wait for `labkit hint`

def test_a_failure_shows_its_message_and_points_at_labkit_hint_not_the_answer(run, tmp_path):
    started(run, SOLUTION.replace("return a + b", "return a - b"))
    out = run("check", "99")
    assert out.exit_code == 1 and "add(" in out.output and "expected" in out.output
    assert "return a + b" not in out.output  # the check's hint= would give the answer away
    assert "stuck? `labkit hint exercise99`" in out.output
    assert "labkit check exercise99 --only adds" in out.output
    first = run("hint", "99").output
    assert "hint for the failing check add works on random numbers [adds]" in first and "return a + b" in first
    second = run("hint", "99").output
    assert "hint 1 of 2 for exercise99" in second and "add two numbers" in second
    again = run("hint", "99", "--all").output
    assert run("hint", "99", "--again").output == again
    assert "return a + b" in again and "add two numbers" in again and "hint 2 of 2" not in again
    assert "hint 2 of 2 (the last one)" in run("hint", "99").output


def test_a_course_can_show_each_check_hint_and_gradescope_follows_it(run, tmp_path):
    started(run, SOLUTION.replace("return a + b", "return a - b"))
    assert "hint: return a + b" not in run("check", "99", "--gradescope", "g.json").output
    assert "return a + b" not in Path("g.json").read_text()
    (tmp_path / "course.toml").write_text('feedback = "hint"\n')
    env = {"LABKIT_COURSE": str(tmp_path / "course.toml")}
    out = run("check", "99", "--gradescope", "g.json", env=env)
    assert "hint: return a + b" in out.output and "hint: return a + b" in Path("g.json").read_text()
    (tmp_path / "course.toml").write_text('feedback = "everything"\n')
    bad = run("check", "99", env=env)
    assert bad.exit_code == 2 and "course.toml:1: feedback must be" in bad.output


def test_class_feedback_files_follow_the_course_level(run, tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    (subs / "alice" / "exercise99.py").write_text(SOLUTION.replace("return a + b", "return a - b"))
    (tmp_path / "course.toml").write_text('feedback = "message"\n')
    for level, shown in (("message", False), ("hint", True)):
        (tmp_path / "course.toml").write_text(f'feedback = "{level}"\n')
        out = tmp_path / f"out-{level}"
        graded = run("grade", str(subs), "-e", "exercise99", "--out", str(out), "--sandbox", "none",
                     env={"LABKIT_COURSE": str(tmp_path / "course.toml")})
        assert graded.exit_code in (0, 1), graded.output
        feedback = (out / "feedback" / "alice.txt").read_text()
        assert "expected" in feedback and ("return a + b" in feedback) is shown, (level, feedback)
    assert not list(tmp_path.glob("**/.labkit/artifacts/**/answer.pt"))  # class grading keeps no artifacts


# 4. what a check inspected is kept

def test_the_files_a_check_inspected_are_kept_and_replaced_next_run(run):
    path = started(run, SOLUTION)
    out = run("check", "99")
    kept = Path(".labkit/artifacts/exercise99/writes/answer.pt")
    assert out.exit_code == 0 and kept.is_file()
    assert "kept the files it inspected in .labkit/artifacts/exercise99/writes" in out.output
    data = json.loads(Path(".labkit/reports/exercise99.json").read_text())
    assert next(r for r in data["results"] if r["name"] == "writes")["artifacts"].endswith("exercise99/writes")
    stale = kept.parent / "from-last-run.txt"
    stale.write_text("old")
    path.write_text(SOLUTION.replace("torch.save(", "open(path + '.extra', 'w').write('x'); torch.save("))
    assert run("check", "99").exit_code == 0
    assert not stale.exists() and kept.is_file() and (kept.parent / "answer.pt.extra").is_file()
    assert Path("exercise99.py").read_text() != SOLUTION  # the student's file is untouched


def test_links_and_partial_runs_keep_only_regular_files(run):
    started(run, SOLUTION.replace(
        "torch.save(", "import os; os.symlink('/etc/hostname', path + '.link'); torch.save("))
    assert run("check", "99", "--only", "writes").exit_code == 0
    folder = Path(".labkit/artifacts/exercise99/writes")
    assert sorted(p.name for p in folder.iterdir()) == ["answer.pt"]  # the link was neither kept nor followed


# 5. watch

def test_watch_uses_checks_sandbox_saves_and_names_the_next_exercise(run):
    started(run, SOLUTION)
    out = run("watch", "99", "--interval", "0.1", "--max-runs", "1", "--sandbox", "none")
    assert out.exit_code == 0 and "sandbox none" in out.output, out.output
    assert "Full marks on exercise99! Next: labkit start exercise100" in out.output
    assert "\x1b[2J" not in out.output  # not a terminal: nothing is cleared
    assert json.loads(Path(".labkit/reports/exercise99.json").read_text())["score"] == 5
    assert "passed" in run("list").output
    refused = run("watch", "99", "--sandbox", "nothing")
    assert refused.exit_code == 2


# 6. layout

def test_lines_fit_columns_titles_are_whole_and_no_color_is_honoured(run):
    started(run, STARTER)
    narrow = run("check", "99", env={"COLUMNS": "60"}, color=True)
    plain = [ANSI.sub("", line) for line in narrow.output.splitlines()]
    assert all(width(line) <= 59 for line in plain if not line.startswith("labkit ")), plain
    assert "\x1b[" in narrow.output  # colour where it is wanted...
    wide = run("check", "99", env={"COLUMNS": "200"})
    assert "the check asks for a file and judges it [writes]" in wide.output and "…" not in wide.output
    assert "the check asks for a file and judges it [writes]" not in narrow.output  # cut to fit 60 columns
    no_color = run("check", "99", env={"NO_COLOR": "1"}, color=True)
    assert "\x1b[" not in no_color.output and "!" in no_color.output  # ...and never colour alone
    assert "\x1b[" not in run("list", env={"NO_COLOR": "1"}, color=True).output


# 7. the rough edges

def test_an_import_error_is_told_once_with_no_unrelated_hints(run):
    started(run, "def add(a, b:\n")
    out = run("check", "99").output
    assert out.count("syntax error at line 1") == 1 and out.count("see above") == 4
    assert "labkit hint" not in out and "return a + b" not in out
    assert "5 errors, 1 skipped" in out
    assert "add two numbers" in run("hint", "99").output  # no failing check's hint: the exercise's own


def test_ids_json_list_grammar_lang_alias_and_chinese_list(run):
    started(run, SOLUTION.replace("return a + b", "return a - b"))
    out = run("check", "99").output
    assert "[adds]" in out and "[scales]" in out  # what --only takes
    assert "3 passed, 2 failed, 1 skipped" in out
    Path("exercise99.py").write_text(SOLUTION.replace("return x * k", "raise ValueError('no')"))
    assert "4 passed, 1 error, 1 skipped" in run("check", "99").output
    data = json.loads(run("check", "99", "--json").output)
    assert isinstance(data, list) and [d["exercise"] for d in data] == ["exercise99"]
    zh = run("--lang", "zh", "list")
    assert zh.exit_code == 0 and "未通过" in zh.output and "合计" in zh.output and "failing" not in zh.output
    assert "未开始" in zh.output  # exercise100
    assert run("--lang", "ZH_cn", "list").exit_code == 0
    nowhere = run("--lang", "zh", "check", "99", "-w", "/")
    assert nowhere.exit_code == 2 and "没有 labkit 工作区" in nowhere.output
    unknown = run("--lang", "zh", "show", "nope")
    assert unknown.exit_code == 2 and "没有练习 'nope'" in unknown.output


def test_bare_labkit_shows_help_and_exits_0(run):
    out = run()
    assert out.exit_code == 0 and "Usage:" in out.output and "Commands:" in out.output


def test_after_reset_list_no_longer_shows_the_old_score(run):
    started(run, SOLUTION)
    run("check", "99")
    assert "5/5" in run("list").output
    assert run("reset", "99").exit_code == 0
    listing = run("list").output
    assert "5/5" not in listing and re.search(r"exercise99 +started +-/6", listing), listing
    assert not Path(".labkit/reports/exercise99.json").exists()


# 8. output paths checked before grading

@pytest.mark.parametrize("args, words", [
    (["--junit", "/nonexistent/x.xml"], "--junit /nonexistent/x.xml: there is no folder /nonexistent"),
    (["--gradescope", "exercise99.py/g.json"], "--gradescope exercise99.py/g.json: there is no folder exercise99.py"),
])
def test_a_bad_output_path_is_refused_before_grading(run, args, words):
    started(run, SOLUTION)
    out = run("check", "99", *args)
    assert out.exit_code == 2 and words in out.output and "Score" not in out.output
    assert len(out.output.strip().splitlines()) == 1 and not Path(".labkit/reports/exercise99.json").exists()


def test_submit_refuses_a_bad_output_first_and_warns_about_a_failing_report(run):
    started(run, SOLUTION.replace("return a + b", "return a - b"))
    bad = run("submit", "99", "-o", "/nonexistent/x.zip")
    assert bad.exit_code == 2 and "there is no folder" in bad.output and "checking it now" not in bad.output
    out = run("submit", "99")
    assert out.exit_code == 0 and Path("exercise99-submission.zip").is_file()
    assert "warning: the report packed with it is failing (3/5)" in out.output
    Path("exercise99.py").write_text(SOLUTION)
    assert "warning" not in run("submit", "99", "-o", "good.zip").output
