"""One zip extractor for every archive a class hands in: nothing written outside its folder, no bombs."""

from __future__ import annotations

import contextlib
import re
import stat
import unicodedata
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

MAX_MEMBERS = 10_000  # per zip, per student (all their zips together), and per student's folder
TOTAL_FACTOR = 200  # one zip, or all of one student's zips together, unpack to at most this many times max_bytes
BATCH_FACTOR = 500  # a whole batch: its class zip (at most TOTAL_FACTOR) and every student zip, times max_bytes
BATCH_MEMBERS = 100_000  # members of every zip in one batch


class Unusable(Exception):
    """A zip that cannot be used at all (corrupt, or over the limits); the message follows the zip's name."""


class Exhausted(Exception):
    """A fatal budget (the whole batch's) ran out: nothing more may be unpacked, the batch is refused."""


class Budget:
    """Bytes and members that several extractions share, so that zips in zips never get a fresh allowance each."""

    def __init__(self, what: str, max_bytes: int, members: int, *, fatal: bool = False) -> None:
        self.what, self.max_bytes, self.max_members, self.fatal = what, max_bytes, members, fatal
        self.bytes = self.members = 0

    def refuse(self, why: str) -> None:
        """Raise: Exhausted for a fatal budget, else Unusable (that student's error)."""
        if self.fatal:
            raise Exhausted(f"{why} across {self.what}")
        raise Unusable(f"is too large to unpack: {why} across {self.what}")

    def declare(self, members: int, size: int) -> None:
        """Take a zip's member count now and check its declared size, before anything is written."""
        self.members += members
        if self.members > self.max_members:
            self.refuse(f"more than {self.max_members:,} zip members")
        if self.bytes + size > self.max_bytes:
            self.refuse(f"it declares more than {self.max_bytes:,} bytes")

    def spend(self, written: int) -> None:
        """Count bytes actually written (a lying header is caught here, at most one member late)."""
        self.bytes += written
        if self.bytes > self.max_bytes:
            self.refuse(f"more than {self.max_bytes:,} bytes unpacked")


def student_budget(max_bytes: int) -> Budget:
    """What all of one student's zips may unpack together: as much as one zip may."""
    return Budget("all of this student's zips", TOTAL_FACTOR * max_bytes, MAX_MEMBERS)


def batch_budget(max_bytes: int) -> Budget:
    """What one batch may unpack in all; over it the batch is refused."""
    return Budget("the whole batch", BATCH_FACTOR * max_bytes, BATCH_MEMBERS, fatal=True)


def hidden_name(name: str) -> bool:
    """.DS_Store, .git, __MACOSX: never a submission."""
    return name.startswith(".") or name == "__MACOSX"


def extract(archive: Path, dest: Path, max_bytes: int, budgets: Sequence[Budget] = ()) -> list[tuple[str, str]]:
    """Unpack `archive` under `dest`, writing nothing outside it; returns (member, why) for each member refused.

    `budgets` (a student's, the batch's) are shared with the other zips they are passed to.
    """
    dest.mkdir(parents=True, exist_ok=True)
    root, budget, total = dest.resolve(), TOTAL_FACTOR * max_bytes, 0
    refused: list[tuple[str, str]] = []
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
        raise Unusable(f"is not a readable zip file: {exc}")
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise Unusable(f"is too large to unpack: more than {MAX_MEMBERS:,} members")
        if sum(i.file_size for i in infos) > budget:
            raise Unusable(f"is too large to unpack: it declares more than {budget:,} bytes in all")
        writable = sum(i.file_size for i in infos if i.file_size <= max_bytes)  # larger ones are never written
        for shared in budgets:
            shared.declare(len(infos), writable)
        seen: dict[str, tuple[str, bool, str]] = {}  # path as any disk sees it -> (spelling, is a file, member)
        for info in infos:
            name = member_name(info)
            shown = info.filename if name is None else name  # the cp437 reading when the bytes are not UTF-8
            why = unsafe_path(shown)
            if why:
                refused.append((shown, why))
                continue
            parts = [p for p in shown.replace("\\", "/").split("/") if p not in ("", ".")]
            if not parts or any(hidden_name(p) for p in parts):
                continue  # .DS_Store, __MACOSX/ and .git are noise
            target = dest.joinpath(*parts)
            if not target.resolve().is_relative_to(root):  # defence in depth: unsafe_path refused these already
                refused.append((shown, "its path leaves the folder"))
                continue
            first = _clash(seen, parts, shown, info.is_dir())
            mode = info.external_attr >> 16
            if first == shown:  # written twice, the last would win silently: refused (its student's error)
                why = "the zip holds two members of this name"
            elif first:  # one file (or two folders merged) on some disk: both refused, each naming the other
                why = f"it has the same path as member {first!r}"
                refused.append((first, f"it has the same path as member {shown!r}"))
            elif name is None:  # still leaves a placeholder (cp437 name), so the student gets the error
                why = "its name is not valid UTF-8"
            elif stat.S_ISLNK(mode):
                why = "it is a symbolic link"
            elif stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                why = "it is a device, fifo or socket"
            elif info.is_dir():
                continue  # folders are made on demand
            elif info.file_size > max_bytes:  # the declared size: refuse before reading anything
                why = f"{info.file_size:,} bytes, over the {max_bytes:,}-byte limit"
            else:
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src:
                        written = copy_capped(src, target, max_bytes)  # a lying header cannot get past this
                    why = "" if written is not None else f"it unpacks to more than the {max_bytes:,}-byte limit"
                    total += written or 0
                    for shared in budgets:
                        shared.spend(written or 0)
                except (Unusable, Exhausted):
                    raise
                except Exception as exc:  # noqa: BLE001  (a bad member refuses that member, not the whole batch)
                    why = f"it cannot be read: {exc}"
            if why:
                refused.append((shown, why))
                with contextlib.suppress(OSError):  # an empty placeholder, so its student still gets an entry
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(b"")
            if total > budget:
                raise Unusable(f"is too large to unpack: more than {budget:,} bytes in all")
    return refused


def _clash(seen: dict[str, tuple[str, bool, str]], parts: list[str], member: str, is_dir: bool) -> str:
    """The earlier member that one disk (case-insensitive, normalising Unicode) would put at this path; else ""."""
    for i in range(1, len(parts) + 1):
        spelt, is_file = "/".join(parts[:i]), i == len(parts) and not is_dir
        key = unicodedata.normalize("NFC", spelt).casefold()
        if key not in seen:
            seen[key] = (spelt, is_file, member)
        elif is_file or seen[key][1] or seen[key][0] != spelt:  # the same file twice, or one folder spelt two ways
            return seen[key][2]
    return ""


def member_name(info: zipfile.ZipInfo) -> str | None:
    """The member's name; None when its bytes are not UTF-8 (zipfile decodes unflagged names as cp437)."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:
        return None


def unsafe_path(name: str) -> str:
    """Why a member's name must not become a path at all ("" when it may)."""
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "its path is absolute"
    if ".." in path.split("/"):
        return "its path climbs out of the folder (..)"
    return ""


def copy_capped(src: BinaryIO, target: Path, cap: int) -> int | None:
    """Copy at most `cap` bytes; None (and no file left) when `src` holds more, whatever a header declared."""
    total = 0
    with open(target, "wb") as out:
        while chunk := src.read(min(1 << 16, cap + 1 - total)):
            total += len(chunk)
            if total > cap:
                break
            out.write(chunk)
    if total > cap:
        target.unlink()
        return None
    return total
