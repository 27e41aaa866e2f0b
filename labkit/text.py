"""Text a student controls, made safe wherever it goes: the terminal, feedback files, CSV cells, XML."""

from __future__ import annotations

import json
import shutil
import unicodedata
from pathlib import Path

# Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width, BOM), lone surrogates and the
# line/paragraph separators: a terminal obeys or hides them, so they are shown as escapes instead.
HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet run a cell (OWASP's CSV-injection rule)
TAB = 4  # columns a tab becomes: tabs are kept as spaces so a line's width is what it shows
_SHORT = {"\r": "\\r", "\n": "\\n"}  # as Python writes them: easier to read than \x0d
_NONCHARS = "\ufffe\uffff"  # outside XML 1.0's Char production, yet no control character


def escape(char: str) -> str:
    """One character as Python writes it in a literal: ESC -> \\x1b, U+202E -> \\u202e, CR -> \\r."""
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def visible(text: object) -> str:
    """`text` on one line for a terminal or a file: every control, bidi and zero-width character escaped."""
    text = str(text)
    if text.isprintable():  # the common case (ASCII, Chinese) costs one C-level scan
        return text
    text = text.expandtabs(TAB)
    return "".join(escape(c) if unicodedata.category(c) in HIDDEN else c for c in text)


def visible_lines(text: object) -> list[str]:
    """Multi-line text (output, messages) as lines, each made visible; only a newline (or CRLF) ends a line."""
    # Not str.splitlines(): it also splits at a lone CR, VT, FF and U+2028, which a student could use to forge lines.
    lines = str(text).replace("\r\n", "\n").split("\n")
    if lines[-1] == "":  # like splitlines(): a final newline ends the last line, it does not start another
        lines.pop()
    return [visible(line) for line in lines]


def block(text: object) -> str:
    """Multi-line text made visible, its newlines kept (what a feedback file holds)."""
    return "\n".join(visible_lines(text))


def csv_cell(value: object) -> object:
    """A CSV cell that no spreadsheet runs as a formula: text starting with = + - @ tab or CR gets a leading '.

    Numbers stay numbers (the grader writes scores itself); text is made visible too, as instructors also `cat` CSVs.
    """
    if not isinstance(value, str):
        return value
    if value.lstrip(" ").startswith(FORMULA):  # `value.startswith` alone misses " =1+1", which some apps trim
        return "'" + visible(value)
    return visible(value)


def xml_text(text: object) -> str:
    """`text` for XML 1.0 (JUnit): what XML forbids escaped (NUL, ESC, lone surrogates, U+FFFE), newlines and tabs kept.

    CR, C1, bidi and zero-width characters are escaped too: XML allows them, but CI pages show them to people.
    """
    text = str(text).replace("\r\n", "\n")
    if text.isprintable():
        return text
    return "".join(escape(c) if c in _NONCHARS or (unicodedata.category(c) in HIDDEN and c not in "\n\t") else c
                   for c in text)


def json_text(data: object, indent: int | None = 2) -> str:
    """JSON that UTF-8 can hold: non-ASCII as is, unless a lone surrogate (a student's exception) forces escapes."""
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # writing it would raise and lose the student's result: \udc80 escapes round-trip
        return json.dumps(data, indent=indent)
    return text


def width(text: str) -> int:
    """Columns `text` takes in a terminal: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def terminal_columns() -> int:
    """The terminal's width in columns ($COLUMNS first, as shutil reads it); 80 when it cannot be told."""
    return max(40, shutil.get_terminal_size((80, 24)).columns)


def wrapped(lines: list[str], indent: str, columns: int) -> list[str]:
    """Each line after `indent`, broken (at a space where there is one) to fit `columns - 1` terminal columns."""
    room = max(20, columns - 1 - width(indent))
    out = []
    for line in lines:
        first = True
        while width(line) > room - (0 if first else 2):
            limit, used, cut = room - (0 if first else 2), 0, 0
            for i, char in enumerate(line):
                used += width(char)
                if used > limit:
                    break
                cut = i + 1
            space = line.rfind(" ", 0, cut + 1)
            cut = space if space > limit // 2 else cut  # a word stays whole unless it is most of the line
            out.append(indent + ("" if first else "  ") + line[:cut].rstrip())
            line, first = line[cut:].lstrip(" "), False
        out.append((indent + ("" if first else "  ") + line).rstrip())
    return out


def shown_path(path: str | Path) -> str:
    """A path as a student reads it: relative to the current folder when it lies below it."""
    path = Path(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
