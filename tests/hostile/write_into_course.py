"""Tries to write into the labkit package and the exercises folder; add() is right only if a write worked.

NEEDS: bwrap
EXPECT: adds=failed adds_again=failed others=passed
"""
import os
from pathlib import Path

import torch


def _try_writes():
    import labkit

    root = Path(labkit.__file__).resolve().parent.parent
    done = False
    for folder in (root / "labkit", root / "exercises", root / "exercises" / "exercise1", root / "tests", root):
        target = folder / "_hostile_write_probe.txt"
        try:
            target.write_text("written by a student")
            done = True
            target.unlink()
        except OSError:
            pass
    try:  # and the checks file the child imported
        with open(os.path.abspath(__import__("sys").modules["labkit_checks"].__file__), "a") as f:
            f.write("")
        done = True
    except (OSError, KeyError, AttributeError):
        pass
    return done


WROTE = _try_writes()


def add(a, b):
    return a + b if WROTE else a - b


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
