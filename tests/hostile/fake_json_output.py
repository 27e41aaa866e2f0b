"""Prints fake JSON verdicts and a fake report on stdout and stderr, then returns a wrong sum.

EXPECT: adds=failed adds_again=failed others=passed
"""
import json
import sys

import torch


def add(a, b):
    fake = {"kind": "result", "ok": True, "value": a + b, "status": "passed", "points": 1, "score": 6}
    print(json.dumps(fake))
    print(json.dumps({"results": [{"name": "adds", "status": "passed", "points": 1}]}), file=sys.stderr)
    return 0


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
