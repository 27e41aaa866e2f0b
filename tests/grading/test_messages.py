"""The grader's compile of a student's file: whatever compile() raises is the student's message, not a traceback."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from labkit.cli.main import cli
from labkit.grading import messages

TOY = Path(__file__).parent.parent / "toy"
LONG = "x = " + " + ".join(["1"] * 150_000) + "\n"  # compile() nests one BinOp per term: RecursionError


def test_a_150000_term_expression_is_the_students_error(tmp_path):
    path = tmp_path / "exercise99.py"
    path.write_text(LONG)
    message = messages.syntax_error(path)
    assert message.startswith("your file could not be imported") and "RecursionError" in message
    assert "nests too deeply" in message


@pytest.mark.parametrize("error", [MemoryError(), OverflowError("too big"), ValueError("null bytes"),
                                   IndentationError("unexpected indent"), SystemError("bad"), RecursionError()])
def test_anything_compile_raises_becomes_a_message(tmp_path, monkeypatch, error):
    path = tmp_path / "exercise99.py"
    path.write_text("x = 1\n")

    def raising(*args, **kwargs):
        raise error

    monkeypatch.setattr(messages, "compile", raising, raising=False)  # the module's name shadows the builtin
    message = messages.syntax_error(path)
    assert message and message.startswith("your file could not be imported"), message


def test_syntax_errors_keep_their_line_and_a_short_text(tmp_path):
    path = tmp_path / "exercise99.py"
    path.write_text("ok = 1\ny = (" + "1, " * 100_000 + "\n")
    message = messages.syntax_error(path)
    assert "syntax error at line 2" in message and len(message) < 500
    path.write_text("x = 1\n")
    assert messages.syntax_error(path) is None


def test_an_oversized_or_odd_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "exercise99.py"
    path.write_text("#" * (messages.MAX_SOURCE + 1))
    assert "larger than" in messages.syntax_error(path)
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    out: list = []
    thread = threading.Thread(target=lambda: out.append(messages.syntax_error(fifo)), daemon=True)
    thread.start()
    thread.join(5)
    assert out and "not a regular file" in out[0]


def test_labkit_check_reports_the_long_expression_and_no_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_EXERCISES", str(TOY))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exercise99.py").write_text((TOY / "exercise99" / "solution.py").read_text() + LONG)
    result = CliRunner().invoke(cli, ["check", "exercise99", "--file", "exercise99.py", "--sandbox", "none"],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "RecursionError" in result.output and "Traceback" not in result.output


def test_every_import_failure_message_is_recognised_in_both_languages():
    from labkit import i18n

    catalog = i18n.parse_po(i18n.CATALOG)
    templates = [m for m in catalog if m.startswith("your file could not be imported")]
    assert len(templates) >= 3
    for msgid in templates:  # what the engine writes, in English and in Chinese: `labkit hint` and the
        for text in (msgid, catalog[msgid]):  # report's "see above" depend on telling them apart
            assert messages.is_import_failure(text.format(why="x", line=1, msg="y")), text
    assert not messages.is_import_failure("your code raised ValueError: bad")
