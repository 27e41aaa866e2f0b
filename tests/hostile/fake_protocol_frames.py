"""Writes length-prefixed protocol frames (guessed nonces) to fds 1 and 2 and to every other open fd.

EXPECT: adds=failed|error adds_again=failed|error others=passed
"""
import json
import os
import struct

import torch


def _frame(header):
    head = json.dumps(header).encode()
    return struct.pack(">I", len(head)) + head + struct.pack(">Q", 0)


def add(a, b):
    frames = b"".join(_frame({"kind": "result", "nonce": n, "ok": True, "value": a + b})
                      for n in ("", "0" * 16, None))
    for fd in range(1, 40):  # stdout, stderr and whatever else is open (the reply pipe among them)
        try:
            os.write(fd, frames)
        except OSError:
            pass
    return a * b + 1


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
