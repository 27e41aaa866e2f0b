"""Replaces the trusted probe's code (model_info.__code__) in labkit_checks at import time.

The probe keeps a reference to the function object, but its code object can still be swapped.
EXPECT: builds=failed|error others=passed
"""
import sys

import torch


def _fake_probe(mod):
    return {"type": "Linear", "params": 8, "pid": 0}


_checks = sys.modules.get("labkit_checks")
if _checks is not None and hasattr(_checks, "model_info"):
    _checks.model_info.__code__ = _fake_probe.__code__


def add(a, b):
    return a + b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(5, 5)
