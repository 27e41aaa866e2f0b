"""Reads the hidden reference solutions (<repo>/solutions); add() is right only if the read worked.

NEEDS: bwrap
EXPECT: adds=failed adds_again=failed others=passed
"""
from pathlib import Path

import torch


def add(a, b):
    import labkit

    root = Path(labkit.__file__).resolve().parent.parent
    try:
        text = (root / "solutions" / "exercise1.py").read_text()
    except OSError:
        return a - b
    return a + b if "reference solution" in text else a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
