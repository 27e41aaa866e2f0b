"""One zip extractor for every archive a class hands in: nothing written outside its folder, no bombs."""

from __future__ import annotations

import contextlib
import re
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

MAX_MEMBERS = 10_000  # per zip, and per student's folder
TOTAL_FACTOR = 200  # one zip may unpack to at most this many times max_bytes (zip bombs)


class Unusable(Exception):
    """A zip that cannot be used at all (corrupt, or over the limits); the message follows the zip's name."""


def hidden_name(name: str) -> bool:
    """.DS_Store, .git, __MACOSX: never a submission."""
    return name.startswith(".") or name == "__MACOSX"


def extract(archive: Path, dest: Path, max_bytes: int) -> list[tuple[str, str]]:
    """Unpack `archive` under `dest`, writing nothing outside it; returns (member, why) for each member refused."""
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
            mode = info.external_attr >> 16
            if name is None:  # still leaves a placeholder (cp437 name), so the student gets the error
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
