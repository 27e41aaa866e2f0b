"""Plain-data codec and framing for the grader <-> child channel.

Values become a JSON tree plus one `torch.save` blob holding only plain tensors;
the receiver reads the blob with `torch.load(weights_only=True)`, so nothing the
child produced is ever unpickled as an arbitrary object.
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

MAX_HEADER = 4 << 20  # bytes of JSON per frame
MAX_BLOB = 512 << 20  # bytes of tensors per frame
MAX_NODES = 200_000  # values in one answer
MAX_DEPTH = 64
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
    """The inverse of `encode`, reading tensors with `weights_only=True`."""
    import torch

    tensors = []
    if blob:
        try:
            tensors = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        except Exception as exc:  # a forged or truncated blob fails closed
            raise WireError(f"unreadable tensor data: {exc}") from None
        if type(tensors) is not list or any(type(t) is not torch.Tensor for t in tensors):
            raise WireError("tensor data holds something other than tensors")

    def dec(v: Any) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [dec(x) for x in v]
        if not isinstance(v, dict) or len(v) == 0:
            raise WireError("malformed value")
        if "__tensor__" in v:
            return tensors[int(v["__tensor__"])]
        if "__meta__" in v:
            return torch.empty(v["__meta__"], dtype=getattr(torch, v["dtype"]), device="meta")
        if "__float__" in v:
            return float(v["__float__"])
        if "__device__" in v:
            return torch.device(v["__device__"])
        if "__dtype__" in v:
            dtype = getattr(torch, v["__dtype__"], None)
            if not isinstance(dtype, torch.dtype):
                raise WireError("malformed dtype")
            return dtype
        if "__tuple__" in v:
            return tuple(dec(x) for x in v["__tuple__"])
        if "__namedtuple__" in v:
            cls = collections.namedtuple(v["__namedtuple__"], v["fields"])
            return cls(*[dec(x) for x in v["values"]])
        if "__dict__" in v:
            return {_hashable(dec(k)): dec(x) for k, x in v["__dict__"]}
        if "__opaque__" in v:
            return Opaque(str(v["__opaque__"])[:200], str(v.get("text", ""))[:300])
        raise WireError("malformed value")

    try:
        return dec(tree)
    except (WireError, IndexError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise WireError(f"malformed answer: {exc}") from None


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
    except ValueError:
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
    except ValueError:
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
