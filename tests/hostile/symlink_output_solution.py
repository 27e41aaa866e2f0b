"""Replaces the child's output file by a symlink to the hidden reference solution: the report must not show it.

The sandbox hides <repo>/solutions; the grader reads the output file after the check, outside the sandbox.
NEEDS: bwrap
EXPECT: adds=failed adds_again=failed others=passed
"""
import os
from pathlib import Path

import torch


def add(a, b):
    import labkit

    secret = Path(labkit.__file__).resolve().parent.parent / "solutions" / "exercise1.py"
    os.remove("output.txt")
    os.symlink(str(secret), "output.txt")
    return a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
