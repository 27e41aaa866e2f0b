"""Finds the reply pipe and the nonce in the child's stack and forges the program's whole answer for builds.

model() returns a wrong model (Linear(5, 5)) but first writes a well-formed reply frame, with the real
nonce, claiming torch's Linear(3, 2) with made-up parameters, then stops before the real reply: the
grader reads only the forgery. It fails because the check also asks for the model's output on the
grader's input and recomputes it from the reported parameters; a forger who computes that consistently
has written a linear layer, which is what the exercise asks.
EXPECT: builds=failed|error others=passed
"""
import os
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
        linear = "torch.nn.modules.linear.Linear"
        report = {"type": linear, "name": "Linear", "torch": True, "mro": [linear], "report": "module",
                  "params": [["weight", torch.zeros(2, 3)], ["bias", torch.zeros(2)]]}
        tree, blob = wire.encode({"values": {"net": report, "y": torch.ones(5, 2)}, "steps": []})
        wire.write_frame(frame.f_locals["rep"], {"kind": "result", "nonce": frame.f_locals["nonce"], "ok": True,
                                                 "value": tree}, blob)
        sys.stdout.flush()
        os._exit(0)  # the real reply never follows
    return torch.nn.Linear(5, 5)
