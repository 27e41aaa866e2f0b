"""Finds the reply pipe and the nonce in the child's own stack and forges the probe's answer for builds.

model() returns a wrong model (Linear(5, 5)) but first writes a well-formed reply frame, with the real
nonce, claiming the trusted probe found a Linear(3, 2).
EXPECT: builds=failed|error others=passed
"""
import sys

import torch


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    from labkit.sandbox import wire

    frame = sys._getframe()
    while frame is not None and not {"rep", "nonce"} <= frame.f_locals.keys():
        frame = frame.f_back
    if frame is not None:
        forged = {"__dict__": [["type", "Linear"], ["params", 8], ["pid", 1]]}
        wire.write_frame(frame.f_locals["rep"], {"kind": "result", "nonce": frame.f_locals["nonce"], "ok": True,
                                                 "value": forged})
    return torch.nn.Linear(5, 5)
