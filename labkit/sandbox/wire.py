"""Plain-data codec and framing for the grader <-> child channel.

Values become a JSON tree plus one `torch.save` blob holding only plain tensors;
the receiver checks the blob's zip directory (stored records, sizes capped), then reads
it with `torch.load(weights_only=True)`, so nothing the child produced is ever unpickled
as an arbitrary object or inflated; decoding counts values, depth, fields and elements.
"""

from __future__ import annotations

import collections
import functools
import io
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

from labkit.checks import torch_file_problem

MAX_HEADER = 4 << 20  # bytes of JSON per frame
MAX_BLOB = 512 << 20  # bytes of tensors per frame
MAX_NODES = 200_000  # values in one answer
MAX_DEPTH = 64
MAX_TENSORS = 20_000  # tensors in one answer: torch.load spends about 0.1 ms on each
MAX_PICKLE = 8 << 20  # bytes of the blob's pickle: about 75 per tensor, and weights_only unpickles in Python
MAX_FIELDS = 256  # fields of one namedtuple
MAX_RECORD_TYPES = 64  # distinct namedtuple classes in one answer: making one costs about 0.1 ms
OUTPUT_FILE = "output.txt"  # in each check's folder: the child's stdout and stderr, read by the grader


class WireError(Exception):
    """A frame or value that breaks the protocol: missing, oversized or malformed."""


@dataclass(frozen=True)
class Opaque:
    """Something that could not travel: only its type's name and a short repr did."""

    type_name: str
    text: str

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.text}>"


def encode(value: Any) -> tuple[Any, bytes]:
    """`value` as (JSON-able tree, torch.save bytes of its tensors)."""
    import torch

    tensors: list = []
    count = [0]

    def enc(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > MAX_NODES or depth > MAX_DEPTH:
            raise WireError("the value is too large or too deeply nested to send back")
        if v is None or isinstance(v, (bool, str)) or type(v) is int:
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"__float__": repr(v)}
        if type(v) in (torch.Tensor, torch.nn.Parameter):
            t = v.detach()
            if t.device.type == "meta":
                return {"__meta__": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
                        "requires_grad": v.requires_grad}
            if len(tensors) >= MAX_TENSORS:
                raise WireError(f"the value holds more than {MAX_TENSORS} tensors, too many to send back")
            tensors.append(t.to("cpu", copy=True).contiguous())
            return {"__tensor__": len(tensors) - 1, "device": str(t.device), "requires_grad": v.requires_grad}
        if isinstance(v, torch.device):
            return {"__device__": str(v)}
        if isinstance(v, torch.dtype):
            return {"__dtype__": str(v).removeprefix("torch.")}
        if isinstance(v, torch.Size):
            return {"__tuple__": [int(x) for x in v]}
        if type(v) is list:
            return [enc(x, depth + 1) for x in v]
        if type(v) is tuple:
            return {"__tuple__": [enc(x, depth + 1) for x in v]}
        if isinstance(v, tuple) and hasattr(type(v), "_fields"):
            return {"__namedtuple__": type(v).__name__, "fields": list(type(v)._fields),
                    "values": [enc(x, depth + 1) for x in tuple.__iter__(v)]}
        if type(v) in (dict, collections.OrderedDict):
            return {"__dict__": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in dict.items(v)]}
        return {"__opaque__": _type_name(v), "text": _safe_repr(v)}

    tree = enc(value, 0)
    if not tensors:
        return tree, b""
    buf = io.BytesIO()
    torch.save(tensors, buf)
    return tree, buf.getvalue()


def decode(tree: Any, blob: bytes) -> Any:
    """The inverse of `encode`, reading tensors with `weights_only=True`; oversized or malformed answers fail."""
    import torch

    tensors = _load_tensors(blob)
    count, kinds = [0], set()

    def dec(v: Any, depth: int) -> Any:
        count[0] += 1
        if count[0] > MAX_NODES or depth > MAX_DEPTH:
            raise WireError(f"the answer has more than {MAX_NODES} values or is nested more than {MAX_DEPTH} deep")
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [dec(x, depth + 1) for x in v]
        if not isinstance(v, dict) or len(v) == 0:
            raise WireError("malformed value")
        if "__tensor__" in v:
            i = v["__tensor__"]
            if type(i) is not int or not 0 <= i < len(tensors):
                raise WireError("malformed tensor reference")
            return tensors[i]
        if "__meta__" in v:
            return _meta(v["__meta__"], v.get("dtype"))
        if "__float__" in v:
            return float(v["__float__"])
        if "__device__" in v:
            return torch.device(v["__device__"])
        if "__dtype__" in v:
            return _dtype(v["__dtype__"])
        if "__tuple__" in v:
            return tuple(dec(x, depth + 1) for x in _list(v["__tuple__"]))
        if "__namedtuple__" in v:
            key = (v["__namedtuple__"], tuple(_list(v["fields"])))
            values = _list(v["values"])
            names = (key[0], *key[1])
            if len(key[1]) > MAX_FIELDS or len(values) != len(key[1]) or any(
                    type(n) is not str or len(n) > 200 for n in names):  # cached classes keep their names
                raise WireError("malformed record")
            kinds.add(key)
            if len(kinds) > MAX_RECORD_TYPES:
                raise WireError(f"the answer has more than {MAX_RECORD_TYPES} kinds of namedtuple")
            return _record_class(*key)(*[dec(x, depth + 1) for x in values])
        if "__dict__" in v:
            return {_hashable(dec(k, depth + 1)): dec(x, depth + 1) for k, x in _list(v["__dict__"])}
        if "__opaque__" in v:
            return Opaque(str(v["__opaque__"])[:200], str(v.get("text", ""))[:300])
        raise WireError("malformed value")

    try:
        return dec(tree, 0)
    except (WireError, IndexError, KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise WireError(f"malformed answer: {exc}") from None


def _load_tensors(blob: bytes) -> list:
    """The blob's tensors, its zip directory checked first: a compressed record could inflate to gigabytes."""
    if not blob:
        return []
    import torch

    problem = torch_file_problem(blob, max_bytes=MAX_BLOB, max_records=MAX_TENSORS + 16, max_pickle=MAX_PICKLE)
    if problem:
        raise WireError(f"unreadable tensor data: {problem}")
    try:
        tensors = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as exc:  # a forged or truncated blob fails closed
        raise WireError(f"unreadable tensor data: {exc}") from None
    if type(tensors) is not list or len(tensors) > MAX_TENSORS or any(type(t) is not torch.Tensor for t in tensors):
        raise WireError("tensor data holds something other than tensors")
    # encode sends contiguous copies, at least a byte an element: more elements means expanded (stride 0) views
    if sum(t.numel() for t in tensors) > len(blob):
        raise WireError("tensor data holds more elements than bytes (an expanded or overlapping tensor)")
    return tensors


@functools.lru_cache(maxsize=256)
def _record_class(name: str, fields: tuple[str, ...]) -> type:
    """One namedtuple class per (name, fields), made once: making one costs as much as decoding a thousand values."""
    return collections.namedtuple(name, fields)


def _meta(shape: Any, dtype: Any) -> Any:
    import torch

    if type(shape) is not list or len(shape) > MAX_DEPTH or any(type(n) is not int or n < 0 for n in shape):
        raise WireError("malformed meta tensor")
    return torch.empty(shape, dtype=_dtype(dtype), device="meta")


def _dtype(name: Any) -> Any:
    import torch

    dtype = getattr(torch, name, None) if type(name) is str else None
    if not isinstance(dtype, torch.dtype):
        raise WireError("malformed dtype")
    return dtype


def _list(v: Any) -> list:
    if type(v) is not list:
        raise WireError("malformed value")
    return v


def write_frame(fd: int, header: dict, blob: bytes = b"") -> None:
    """Send one frame: a JSON header and an optional blob, each length-prefixed."""
    view = memoryview(frame(header, blob))
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exact(fd: int, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("channel closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_blob: int = MAX_BLOB) -> tuple[dict, bytes]:
    """Receive one frame, refusing oversized or malformed ones."""
    (n,) = struct.unpack(">I", read_exact(fd, 4))
    if n > MAX_HEADER:
        raise WireError(f"answer header of {n} bytes is over the limit")
    try:
        header = json.loads(read_exact(fd, n))
    except (ValueError, RecursionError):  # deep nesting exhausts json's recursion
        raise WireError("answer header is not JSON") from None
    (m,) = struct.unpack(">Q", read_exact(fd, 8))
    if m > max_blob:
        raise WireError(f"answer of {m} bytes is over the {max_blob >> 20} MB limit")
    if not isinstance(header, dict):
        raise WireError("answer header is not an object")
    return header, read_exact(fd, m) if m else b""


def parse_frame(buf: bytearray, max_blob: int = MAX_BLOB) -> tuple[dict, bytes] | None:
    """Take one whole frame off the front of `buf`, or None while it is incomplete."""
    if len(buf) < 4:
        return None
    (n,) = struct.unpack(">I", buf[:4])
    if n > MAX_HEADER:
        raise WireError("an oversized answer header arrived")
    if len(buf) < 12 + n:
        return None
    (m,) = struct.unpack(">Q", buf[4 + n: 12 + n])
    if m > max_blob:
        raise WireError("an oversized answer arrived")
    if len(buf) < 12 + n + m:
        return None
    try:
        header = json.loads(bytes(buf[4: 4 + n]))
    except (ValueError, RecursionError):  # deep nesting exhausts json's recursion
        header = None
    blob = bytes(buf[12 + n: 12 + n + m])
    del buf[: 12 + n + m]
    if not isinstance(header, dict):
        raise WireError("a malformed answer arrived")
    return header, blob


def frame(header: dict, blob: bytes = b"") -> bytes:
    """One frame's bytes: a length-prefixed JSON header, then a length-prefixed blob."""
    head = json.dumps(header, allow_nan=False).encode()
    return struct.pack(">I", len(head)) + head + struct.pack(">Q", len(blob)) + blob


def _type_name(v: Any) -> str:
    t = type(v)
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ not in ("builtins", None) else t.__qualname__


def _safe_repr(v: Any) -> str:
    try:
        text = repr(v)
    except BaseException:  # a hostile __repr__ must not break the reply
        text = "?"
    return text[:300]


def _hashable(k: Any) -> Any:
    return k if not isinstance(k, list) else tuple(k)
