"""The class roster: {student id: name} from a CSV, and who on it submitted nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from labkit.classroom.intake import Entry, IntakeError

ID_COLUMNS = ("id", "student_id", "sid", "user_id", "login", "email")
NAME_COLUMNS = ("name", "student_name", "full_name")


def read_roster(path: Path) -> dict[str, str]:
    """{student id: name} from a CSV with a header; raises IntakeError with a clear message when unusable."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IntakeError(f"roster {path} does not exist")
    except (OSError, UnicodeDecodeError) as exc:
        raise IntakeError(f"roster {path} cannot be read: {exc}")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise IntakeError(f"roster {path} is not a valid CSV file: {exc}")
    header = [h.strip().lower() for h in rows[0]] if rows else []
    id_col = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    if id_col is None:
        raise IntakeError(f"roster {path} has no id column: its first row must be a header naming one of "
                          f"{', '.join(ID_COLUMNS)}")
    name_col = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
    roster: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        student = cells[id_col] if id_col < len(cells) else ""
        if not student:
            raise IntakeError(f"roster {path}, line {line}: no student id")
        if student in roster:
            raise IntakeError(f"roster {path} lists student {student} twice")
        roster[student] = cells[name_col] if name_col is not None and name_col < len(cells) else ""
    return roster


def missing(entries: list[Entry], roster: dict[str, str]) -> list[str]:
    """Roster ids with no entry, sorted."""
    return sorted(set(roster) - {e.student for e in entries})
