"""The check registry and the assertion helpers exercises' checks.py files use.

A *check* runs in the grader's process and judges data. What it needs done in the
sandboxed child is a program of labkit's generic recipes (labkit.recipe), run with
`sub.run(program)`: no checks file is ever imported beside the student's code.
"""

from __future__ import annotations

import errno
import io
import math
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class CheckFailed(Exception):
    """The submission gave a wrong answer; the message teaches what was wrong."""


class Skip(Exception):
    """The check cannot run here (e.g. it needs GPUs); it counts neither way."""


class Inconclusive(Exception):
    """A measurement could not be trusted (a busy machine); it counts neither way."""


class StudentError(Exception):
    """The student's code raised (in the child); the exception arrives as plain data."""

    def __init__(self, info: dict):
        self.type_name = str(info.get("type", "Exception"))
        self.mro = [str(n) for n in info.get("mro", [])]
        self.message = str(info.get("message", ""))
        self.where = [str(w) for w in info.get("where", [])]
        super().__init__(f"{self.type_name}: {self.message}" if self.message else self.type_name)

    def is_a(self, name: str) -> bool:
        """True when the student's exception is `name` or a subclass of it (judged by the names it reported)."""
        return name in self.mro


@dataclass
class CheckSpec:
    """One check of an exercise, as its decorator declared it."""

    name: str  # the function name, stable across runs (used in reports and overrides)
    title: str  # one line a student reads
    points: int  # what a pass earns
    fn: Callable[..., None]  # fn(sub) runs in the parent and raises to fail
    needs_gpus: int = 0  # skipped with "needs N GPUs" where fewer CUDA devices exist
    hint: str | None = None  # shown under a failure
    timeout: float | None = None  # seconds per call, overriding exercise.toml's limit
    hidden: bool = False  # name and message withheld from students (instructors' checks)
    title_zh: str | None = None  # the title in Simplified Chinese (shown with --lang zh_CN)
    hint_zh: str | None = None  # the hint in Simplified Chinese


def check(points: int, title: str, *, needs_gpus: int = 0, hint: str | None = None,
          timeout: float | None = None, hidden: bool = False, title_zh: str | None = None,
          hint_zh: str | None = None) -> Callable:
    """Declare a trusted check: `@check(points=2, title="...")` over `def name(sub): ...`."""

    def mark(fn: Callable) -> Callable:
        fn.__labkit_check__ = CheckSpec(fn.__name__, title, points, fn, needs_gpus, hint, timeout, hidden, title_zh,
                                        hint_zh)
        return fn

    return mark


def shared(fn: Callable) -> Callable:
    """Declare work several checks judge: `sub.shared(fn)` runs `fn(sub)` once per graded file, in the child of
    the first check that asks, with inputs drawn from a seed of its own (the same whichever check asks first);
    every later check gets the same value, or the same failure, which each check words for itself. Return plain
    data: the asking check's folder is removed when that check ends."""
    fn.__labkit_shared__ = fn.__name__
    return fn


def probe(fn: Callable) -> Callable:
    """Removed: trusted code beside the student's is code the student can call. See docs/migrating-probes.md."""
    raise TypeError(f"@probe ({fn.__name__}) was removed in labkit 0.3: the child no longer imports checks files. "
                    "Rewrite it as a program of recipes run with sub.run(...); see docs/migrating-probes.md")


def collect(namespace: dict[str, Any]) -> list[CheckSpec]:
    """The checks defined in a checks module's namespace, in definition order."""
    return [v.__labkit_check__ for v in namespace.values() if hasattr(v, "__labkit_check__")]


# --- assertion helpers (parent side) ---------------------------------------------------

def expect(condition: object, message: str) -> None:
    """Fail the check with `message` unless `condition` holds."""
    if not condition:
        raise CheckFailed(message)


def fail(message: str) -> None:
    raise CheckFailed(message)


def skip(reason: str) -> None:
    raise Skip(reason)


def inconclusive(reason: str) -> None:
    raise Inconclusive(reason)


def is_tensor(value: object) -> bool:
    import torch

    return type(value) is torch.Tensor


def expect_tensor(value: object, what: str) -> None:
    """Fail unless `value` is a plain torch.Tensor (subclasses and look-alikes are refused)."""
    if not is_tensor(value):
        fail(f"{what} should be a torch.Tensor, got {type_name(value)}")


def expect_shape(value: object, shape: tuple[int, ...], what: str) -> None:
    expect_tensor(value, what)
    expect(tuple(value.shape) == tuple(shape), f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}")


def expect_close(got: object, want: object, what: str, *, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Tensors or floats equal within tolerance, compared by the grader's own torch."""
    import torch

    if isinstance(want, (int, float)) and not isinstance(want, bool):
        expect(isinstance(got, (int, float)) and not isinstance(got, bool) and math.isfinite(got),
               f"{what} should be a finite number, got {type_name(got)} {short(got)}")
        expect(abs(got - want) <= atol + rtol * abs(want), f"{what}: expected {want:.6g}, got {got:.6g}")
        return
    expect_shape(got, tuple(want.shape), what)
    diff = (got.double() - want.double()).abs().max().item() if got.numel() else 0.0
    expect(torch.allclose(got.double(), want.double(), rtol=rtol, atol=atol),
           f"{what} differs from the expected values (largest difference {diff:.3g})")


def expect_equal(got: object, want: object, what: str) -> None:
    """Plain-data equality checked on the grader's side, with types compared strictly."""
    expect(type(got) is type(want) and got == want, f"{what}: expected {short(want)}, got {short(got)}")


def type_name(value: object) -> str:
    return getattr(value, "type_name", None) or type(value).__name__


def short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- files the submission wrote (parent side) ------------------------------------------------

TORCH_MAX_RECORDS = 65_536  # records of one torch.save file; a large model's state dict holds a few thousand
_EOCD = struct.Struct("<4s4H2LH")  # zip's end of central directory
_LOCATOR = struct.Struct("<4sLQL")  # zip64's pointer to its own end of directory
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64's end of central directory
_ENTRY = struct.Struct("<4s6H3L5H2L")  # one central directory entry
_LOCAL = struct.Struct("<4s5H3L2H")  # one record's local header


def read_student_file(path: str | os.PathLike, *, max_bytes: int, what: str | None = None) -> bytes:
    """The bytes of a file the submission wrote: a regular file of at most `max_bytes`, never a link, never a wait."""
    what = what or f"the file {os.path.basename(path)}"
    try:  # a link may point at the grader's own files; a FIFO or a write lease would hang the grader
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        fail(f"{what} does not exist")
    except OSError as exc:
        fail(f"{what} cannot be opened: {_open_error(exc)}")
    chunks: list[bytes] = []
    try:
        info = os.fstat(fd)
        expect(stat.S_ISREG(info.st_mode), f"{what} is not a regular file (a FIFO, socket, device or folder): "
               "write an ordinary file at the path you were given")
        expect(info.st_size <= max_bytes, f"{what} is larger than {max_bytes:,} bytes")
        left = max_bytes + 1  # one byte more than allowed tells a file that grew after fstat
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        fail(f"{what} cannot be read: {_open_error(exc)}")
    finally:
        os.close(fd)
    data = b"".join(chunks)
    expect(len(data) <= max_bytes, f"{what} is larger than {max_bytes:,} bytes")
    return data


def load_student_tensors(path: str | os.PathLike, *, max_bytes: int, what: str | None = None) -> Any:
    """torch.load(weights_only=True) of a file the submission wrote, read safely and checked before it is unpickled."""
    import torch

    what = what or f"the file {os.path.basename(path)}"
    data = read_student_file(path, max_bytes=max_bytes, what=what)
    problem = torch_file_problem(data, max_bytes=max_bytes)
    expect(problem is None, f"{what} was not written by torch.save: {problem}; save it with torch.save(obj, path)")
    try:
        value = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickled object, a truncated or forged archive: weights_only refuses it
        fail(f"{what} cannot be read with torch.load(weights_only=True) ({type(exc).__name__}): save tensors in "
             "plain containers, such as a state dict (names -> tensors), not the model object")
    # an expanded view (stride 0) holds many elements in few bytes: a check would materialise them all
    expect(tensor_elements(value) <= max_bytes, f"{what} holds tensors with more elements than its bytes: save "
           "tensors that own their data (.clone() or .contiguous()), not expanded views")
    return value


def tensor_elements(value: Any) -> int:
    """Elements of every tensor in a loaded value, each object once (loaded values may share or cycle)."""
    import torch

    seen, stack, total = set(), [value], 0
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if isinstance(v, torch.Tensor):
            total += v.numel()
        elif isinstance(v, dict):
            stack += [*v.keys(), *v.values()]
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack += v
    return total


def torch_file_problem(data: bytes, *, max_bytes: int, max_records: int = TORCH_MAX_RECORDS,
                       max_pickle: int | None = None) -> str | None:
    """Why `data` is not a torch.save zip (records stored, at most `max_bytes` in all), or None; read from memory."""
    malformed = "its zip directory is malformed"
    end = len(data) - _EOCD.size
    if end < 0 or data[end:end + 4] != b"PK\x05\x06":
        return "it is not a zip archive as torch.save writes"
    _, disk, cd_disk, _, count, cd_size, cd_offset, comment = _EOCD.unpack_from(data, end)
    directory_end = end
    at = end - _LOCATOR.size - _EOCD64.size
    if at >= 0 and data[end - _LOCATOR.size:end - _LOCATOR.size + 4] == b"PK\x06\x07":  # torch.save writes zip64
        pointer = _LOCATOR.unpack_from(data, end - _LOCATOR.size)[2]
        if pointer != at or data[at:at + 4] != b"PK\x06\x06":
            return malformed
        _, size, _, _, disk64, cd_disk64, _, count64, cd_size64, cd_offset64 = _EOCD64.unpack_from(data, at)
        pairs = ((count, count64, 0xFFFF), (cd_size, cd_size64, 0xFFFFFFFF), (cd_offset, cd_offset64, 0xFFFFFFFF))
        if size != _EOCD64.size - 12 or any(short not in (long, full) for short, long, full in pairs):
            return malformed  # readers that trust either directory must see the same records
        count, cd_size, cd_offset, disk, cd_disk, directory_end = count64, cd_size64, cd_offset64, disk64, cd_disk64, at
    if disk or cd_disk or comment or cd_offset + cd_size != directory_end:
        return malformed
    if count > max_records:
        return f"it holds {count:,} records, more than {max_records:,}"
    pos, total, names = cd_offset, 0, set()
    for _ in range(count):
        if pos + _ENTRY.size > directory_end or data[pos:pos + 4] != b"PK\x01\x02":
            return malformed
        entry = _ENTRY.unpack_from(data, pos)
        flags, method, size, declared, name_len, local = entry[3], entry[4], entry[8], entry[9], entry[10], entry[16]
        name = data[pos + _ENTRY.size:pos + _ENTRY.size + name_len]
        pos += _ENTRY.size + name_len + entry[11] + entry[12]
        shown = name.decode("utf-8", "replace")[:80]
        if pos > directory_end or name in names:
            return f"it holds the record {shown!r} twice" if name in names else malformed
        names.add(name)
        if method != 0 or flags & 1 or size != declared:
            return f"its record {shown!r} is compressed or encrypted (torch.save stores every record as it is)"
        total += declared
        if total > min(max_bytes, len(data)):  # stored records hold their own bytes: more means overlaps
            return f"its records declare more than {min(max_bytes, len(data)):,} bytes in all"
        if max_pickle is not None and name.endswith(b"data.pkl") and declared > max_pickle:
            return f"its pickle {shown!r} is over {max_pickle:,} bytes"
        if local + _LOCAL.size > cd_offset or data[local:local + 4] != b"PK\x03\x04":
            return malformed
        head = _LOCAL.unpack_from(data, local)
        if head[3] != 0:
            return f"its record {shown!r} is compressed (torch.save stores every record as it is)"
        if local + _LOCAL.size + head[9] + head[10] + declared > cd_offset:
            return malformed
    return None if pos == directory_end else malformed


def _open_error(exc: OSError) -> str:
    """Why an open or read failed, in the words a student needs."""
    if exc.errno == errno.ELOOP:
        return "it is a symbolic link; write the file itself"
    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
        return "another process holds it (a lease or lock); close it before returning"
    return os.strerror(exc.errno) if exc.errno else str(exc)
