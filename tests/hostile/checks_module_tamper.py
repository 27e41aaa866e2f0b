"""Deletes sys.modules['labkit_checks'] and rebinds its probe and helpers from the student module.

The worker collected the probes before importing the student, so the rebinding must change nothing.
EXPECT: builds=failed|error others=passed
"""
import sys

import torch


def _fake_probe(mod):
    return {"type": "Linear", "params": 8, "pid": 0}


_checks = sys.modules.pop("labkit_checks", None)
if _checks is not None:
    _checks.model_info = _fake_probe
    _checks.expect = lambda *a, **k: None
    _checks.expect_close = lambda *a, **k: None


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
