"""labkit.text: a student's text escaped for the terminal, defused for spreadsheets, valid for XML; plain text as is."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest

from labkit.grading.report import check_line, to_gradescope, to_junit
from labkit.grading.results import CheckResult, Report
from labkit.i18n import width
from labkit.text import block, csv_cell, escape, json_text, visible, visible_lines, xml_text

PLAIN = ["", "alice", "s1234567", "Ann O'Neil", "学生 张三 ✓", "résumé — naïve", "x = 1 + 2", "C:\\Users\\a",
         "🙂 emoji", "a\u00a0b", "全角\u3000空格", "مرحبا", "שלום"]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
CONTROLS = [chr(c) for c in range(0x20) if c not in (9, 10)] + ["\x7f"] + [chr(c) for c in range(0x80, 0xa0)]
HOSTILE = CONTROLS + BIDI + ZERO_WIDTH + ["\u2028", "\u2029", "\udc80", "\ud800"]


@pytest.mark.parametrize("text", PLAIN)
def test_ordinary_text_chinese_and_numbers_are_unchanged(text):
    assert visible(text) == text and block(text) == text and xml_text(text) == text
    assert csv_cell(text) == text
    assert visible(42) == "42" and csv_cell(42) == 42 and csv_cell(-2.5) == -2.5 and csv_cell(None) is None


@pytest.mark.parametrize("char", HOSTILE)
def test_every_control_bidi_and_zero_width_character_is_escaped(char):
    shown = visible(f"a{char}b")
    assert shown == f"a{escape(char)}b" and shown.isprintable() and shown.isascii()
    assert csv_cell(f"a{char}b") == shown and block(f"a{char}b") == shown


def test_escapes_read_like_python_literals():
    assert visible("name\x1b]52;c;aGk=\x07") == "name\\x1b]52;c;aGk=\\x07"  # OSC 52: the clipboard
    assert visible("\x1b]0;title\x07") == "\\x1b]0;title\\x07"  # the window title
    assert visible("evil\u202ereversed") == "evil\\u202ereversed"
    assert visible("a\rb\nc") == "a\\rb\\nc"  # one line: a newline cannot start a forged one
    assert visible("\x9b31m\x00\x7f") == "\\x9b31m\\x00\\x7f"
    assert visible("tag\U000e0041") == "tag\\U000e0041"
    assert visible("a\tb") == "a   b"  # tabs are kept as spaces


def test_multi_line_text_keeps_its_lines_but_not_cr_or_other_line_breaks():
    assert visible_lines("one\ntwo\r\nthree\n") == ["one", "two", "three"]  # like splitlines() for real lines
    assert visible_lines("") == [] and visible_lines("\n") == [""] and visible_lines("a\n\nb") == ["a", "", "b"]
    assert visible_lines("ok\rFAKE ✓ passed") == ["ok\\rFAKE ✓ passed"]  # CR cannot overwrite the line
    assert visible_lines("a\x0bb\x0cc\x1cd\u2028e\x85f") == ["a\\x0bb\\x0cc\\x1cd\\u2028e\\x85f"]
    assert block("\x1b[2J\n\t中文\n") == "\\x1b[2J\n    中文"


def test_visible_is_idempotent_so_a_sink_may_apply_it_again():
    for text in ["\x1b[31mred\x1b[0m\r\n\u202e", *HOSTILE, *PLAIN]:
        assert visible(visible(text)) == visible(text) and block(block(text)) == block(text)


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://evil","click")', "@SUM(1+1)", "+cmd|' /C calc'!A0", "-2+3",
                                  "\t=1+1", "\r=1+1", " =1+1", "=1+1\n"])
def test_spreadsheet_formulas_are_defused(cell):
    safe = csv_cell(cell)
    assert safe.startswith("'") and safe[1:] == visible(cell)
    row = next(csv.reader(io.StringIO(_csv_row([safe, 3.5, -1]))))
    assert row == [safe, "3.5", "-1"] and not row[0].startswith(("=", "+", "-", "@", "\t", "\r"))


def test_numbers_stay_numbers_and_inner_formula_characters_stay():
    assert csv_cell(-1) == -1 and csv_cell(0.5) == 0.5
    assert csv_cell("a=b+c-d@e") == "a=b+c-d@e" and csv_cell("学生=1") == "学生=1"


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x07", "\x0b", "\x0c", "\x1f", "\udc80", "\ud800", "\ufffe",
                                  "\uffff", "\r", "\x85", "\u202e", "\u200b"])
def test_xml_text_makes_every_string_xml_1_0(char):
    text = xml_text(f"a{char}b\nnext\tline")
    assert text == f"a{escape(char)}b\nnext\tline"  # newlines and tabs kept: XML has them
    element = ET.Element("t", message=text)
    element.text = text
    back = ET.fromstring(ET.tostring(element, encoding="utf-8"))  # the strict expat parser reads it
    assert back.text == text and back.get("message") == text


def test_xml_text_keeps_crlf_as_a_newline_and_astral_text():
    assert xml_text("a\r\nb") == "a\nb" and xml_text("𝔘 🙂 中") == "𝔘 🙂 中"


def test_json_text_writes_what_utf8_can_hold():
    assert json_text({"a": "中文"}, indent=None) == '{"a": "中文"}'  # readable where it can be
    text = json_text({"a": "x\udc80y"}, indent=None)
    text.encode("utf-8")
    assert json.loads(text) == {"a": "x\udc80y"}  # escaped, not lost


def test_reports_escape_what_the_student_controls():
    r = CheckResult("moves", "moves tensors", "failed", 0, 2, message="got \x1b]52;c;aGk=\x07\rforged\nline 2",
                    output="out\x00\x1b[2J\rFAKE\n\u202eevil\r\nok\n", hint="recurse")
    lines = check_line(r).splitlines()
    assert "      got \\x1b]52;c;aGk=\\x07\\rforged" in lines and "      line 2" in lines
    assert "        | out\\x00\\x1b[2J\\rFAKE" in lines and "        | \\u202eevil" in lines and "        | ok" in lines
    assert all(line.isprintable() for line in lines)
    assert width(lines[0]) == width(check_line(CheckResult("x", "moves tensors", "failed", 0, 2)).splitlines()[0])
    report = Report("exercise1", "Devices", "exercise1.py", "0" * 64, 1, "none", results=[r])
    suites = ET.fromstring(to_junit([report]).encode("utf-8"))
    assert suites.find(".//system-out").text.startswith("out\\x00\\x1b[2J\\rFAKE\n\\u202eevil\nok")
    assert suites.find(".//failure").get("message") == "got \\x1b]52;c;aGk=\\x07"
    gradescope = to_gradescope([report])["tests"][0]["output"]
    assert "\\x1b]52;c;aGk=\\x07\\rforged\nline 2" in gradescope and "\x1b" not in gradescope


def _csv_row(cells: list[object]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)
    return buf.getvalue()
