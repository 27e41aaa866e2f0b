"""Gradescope's submission export: `submission_metadata.yml`, read without a YAML library (Ruby symbol keys)."""

from __future__ import annotations

import re


def parse_metadata(text: str) -> dict[str, list[dict[str, str]]]:
    """{submission folder: [{name, sid, email}]} from Gradescope's YAML (Ruby symbol keys), any key order."""
    subs: dict[str, list[dict[str, str]]] = {}
    current, section, top, person, person_indent = "", "", -1, None, -1
    for raw in text.splitlines():
        body = raw.strip()
        if not body or body.startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip())
        if indent == 0:  # a new submission: "submission_123456:"
            current = body[:-1] if body.endswith(":") else ""
            if current:
                subs[current] = []
            section, top, person = "", -1, None
            continue
        item = body.startswith("- ")
        match = re.match(r"^:?([A-Za-z_]\w*):(?:\s+(.*))?$", body[2:] if item else body)
        if not current or not match:
            continue
        key, value = match[1], _scalar(match[2] or "")
        if item:  # a list item opens a new submitter, but only in the :submitters: list
            person = {} if section == "submitters" else None
            if person is not None:
                subs[current].append(person)
                person[key] = value
            person_indent = indent + 2
        elif person is not None and indent == person_indent:
            person[key] = value
        elif top < 0 or indent <= top:  # a key of the submission itself (:submitters:, :score:, ...)
            top, section, person = indent, key, None
    return subs


def _scalar(text: str) -> str:
    """A YAML scalar as Gradescope writes it: quoted or plain; "" for empty or null."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].replace("''", "'") if text[0] == "'" else text[1:-1].replace('\\"', '"')
    return "" if text in ("~", "null") else text
