"""The students' language: English, or Simplified Chinese through the standard library's gettext.

The catalog lives in the repository as `labkit/locale/zh_CN/LC_MESSAGES/labkit.po`; it is
compiled to gettext's binary form in memory when first needed (no build step, no .mo file
to keep in sync). Choice: `--lang`, then $LABKIT_LANG, then the locale ($LC_ALL,
$LC_MESSAGES, $LANG: zh_CN.UTF-8 and friends), English otherwise. Machine reports keep
stable English keys; only the words people read are translated.
"""

from __future__ import annotations

import ast
import gettext
import io
import os
import struct
from pathlib import Path

from labkit.paths import locale_dir
from labkit.text import width  # noqa: F401  (its home is labkit.text; pad and clip, and callers, use it from here)

LANGUAGES = ("en", "zh_CN")
CATALOG = locale_dir() / "zh_CN" / "LC_MESSAGES" / "labkit.po"
_current: gettext.NullTranslations = gettext.NullTranslations()
_lang = "en"


def choose(explicit: str | None = None, env: dict[str, str] | None = None) -> str:
    """The language to speak: --lang, then LABKIT_LANG, then the locale; 'en' or 'zh_CN'."""
    env = os.environ if env is None else env
    for value in (explicit, env.get("LABKIT_LANG"), env.get("LC_ALL"), env.get("LC_MESSAGES"), env.get("LANG")):
        if value:
            return "zh_CN" if value.lower().replace("-", "_").startswith("zh") else "en"
    return "en"


def set_language(lang: str) -> None:
    """Speak `lang` from now on in this process."""
    global _current, _lang
    _lang = lang if lang in LANGUAGES else "en"
    _current = gettext.GNUTranslations(io.BytesIO(compile_po(CATALOG))) if _lang == "zh_CN" else (
        gettext.NullTranslations())


def language() -> str:
    return _lang


def _(message: str) -> str:
    """The message in the current language (the English text is the key)."""
    return _current.gettext(message)


def parse_po(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po file (plain entries; the header entry has the empty msgid)."""
    entries: dict[str, str] = {}
    msgid = msgstr = None
    field = None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if line.startswith("msgid "):
            if msgid is not None:
                entries[msgid] = msgstr or ""
            msgid, msgstr, field = ast.literal_eval(line[6:]), None, "id"
        elif line.startswith("msgstr "):
            msgstr, field = ast.literal_eval(line[7:]), "str"
        elif line.startswith('"') and field:
            if field == "id":
                msgid += ast.literal_eval(line)
            else:
                msgstr += ast.literal_eval(line)
        elif not line or line.startswith("#"):
            field = None
    if msgid is not None:
        entries[msgid] = msgstr or ""
    return entries


def compile_po(path: Path) -> bytes:
    """The .po file as gettext's .mo bytes (what msgfmt writes), untranslated entries left out."""
    entries = {k: v for k, v in parse_po(path).items() if v or not k}
    keys = sorted(entries)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(entries[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    offsets, pos = [], 0
    for k in keys:
        offsets.append((len(k.encode()), start + pos))
        pos += len(k.encode()) + 1
    soffsets, pos = [], 0
    for k in keys:
        soffsets.append((len(entries[k].encode()), start + len(ids) + pos))
        pos += len(entries[k].encode()) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    table = b"".join(struct.pack("ii", n, o) for n, o in offsets + soffsets)
    return header + table + ids + strs


def pad(text: str, columns: int) -> str:
    """`text` padded with spaces to `columns` terminal columns."""
    return text + " " * max(0, columns - width(text))


def clip(text: str, columns: int) -> str:
    """`text` cut to at most `columns` terminal columns, with an ellipsis when cut."""
    if width(text) <= columns:
        return text
    out, used = "", 0
    for c in text:
        w = width(c)
        if used + w > columns - 1:
            break
        out, used = out + c, used + w
    return out + "…"


def extract(paths: list[Path]) -> list[str]:
    """Every literal passed to `_()` in these Python files, in order of first appearance (what xgettext finds)."""
    found: list[str] = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                if node.args[0].value not in found:
                    found.append(node.args[0].value)
    return found
