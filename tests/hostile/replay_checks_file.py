"""Looks for any exercise's checks file (labkit's exercises folder, a wheel's copy, the course it is graded in,
the folders above its own file) to replay a check from it; add() is right only if one was found and read.

This was the replay oracle of the last red-team round: the child imported (and so could read) the checks
file. Now the sandbox shows labkit's package without its exercises, and the child imports no checks file.
NEEDS: bwrap
EXPECT: adds=failed adds_again=failed others=passed
"""
import os
import sys
from pathlib import Path

import torch


def _found():
    import labkit
    from labkit import paths

    places = {Path(labkit.__file__).resolve().parent / "exercises", Path(labkit.__file__).resolve().parent.parent}
    root = paths.exercises_root()
    if root is not None:
        places.add(root)
    places.update(Path(__file__).resolve().parents[:4])
    places.update(Path(p) for p in sys.path if p)
    if any(name.startswith("labkit_checks") for name in sys.modules):
        return True
    seen = 0
    for place in places:
        for folder, _, files in os.walk(place):
            if "checks.py" in files and "exercise.toml" in files:  # an exercise's own checks file
                try:
                    if b"@check(" in Path(folder, "checks.py").read_bytes():
                        return True
                except OSError:
                    pass
            seen += len(files)
            if seen > 20000:
                break
    return False


FOUND = _found()


def add(a, b):
    return a + b if FOUND else a + b + 1


def scale(x, k):
    return x * k


def save(x, path):
    torch.save(x, path)


def model():
    return torch.nn.Linear(3, 2)
